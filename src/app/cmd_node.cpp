// start, run and restart: the commands that launch a node.
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "app/cli.h"
#include "app/commands.h"
#include "daemon/control.h"
#include "daemon/log_reader.h"
#include "daemon/paths.h"
#include "daemon/platform.h"
#include "daemon/status_file.h"
#include "node/identity.h"
#include "node/node.h"

namespace an::app {
namespace {

// A healthy node is ready in milliseconds; this only bounds a hung start.
constexpr auto kReadyTimeout = std::chrono::seconds(30);
constexpr std::size_t kFailureLogLines = 10;
constexpr auto kDefaultStopTimeout = std::chrono::seconds(10);

void print_last_log_lines(const daemon::DataPaths& paths) {
  auto lines = daemon::tail_lines(paths.logs_dir, kFailureLogLines);
  if (!lines || lines->empty()) return;
  std::fprintf(stderr, "Last log lines (%s):\n", paths.log_file.string().c_str());
  for (const auto& line : *lines)
    std::fprintf(stderr, "  %s\n", line.c_str());
}

void wait_until_gone(daemon::ProcessId pid) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (daemon::process_exists(pid) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// Validates in the foreground, detaches the node and waits for its word (SPEC §3).
int start_node(const ResolvedNodeOptions& resolved) {
  const auto& options = resolved.options;
  daemon::DataPaths paths(options.data_dir);
  if (auto made = daemon::make_directory(paths.data_dir, false); !made) {
    print_error(made.error().message);
    return kExitFailure;
  }
  if (auto made = daemon::make_directory(paths.logs_dir, false); !made) {
    print_error(made.error().message);
    return kExitFailure;
  }
  auto running = daemon::running_node_pid(paths);
  if (!running) {
    print_error(running.error().message);
    return kExitFailure;
  }
  if (running->has_value()) {
    print_error("already running (PID " + std::to_string(**running) + ")");
    return kExitFailure;
  }
  auto identity = node::load_or_create_identity(node::effective_key_file(options));
  if (!identity) {
    print_error(identity.error().message);
    return kExitFailure;
  }
  if (identity->second) {
    std::printf("Created a new node key: %s\n", node::effective_key_file(options).string().c_str());
  }

  std::vector<std::string> child_args{"run"};
  child_args.insert(child_args.end(), resolved.launch_args.begin(), resolved.launch_args.end());
  auto child = daemon::spawn_detached(daemon::current_executable(), child_args,
                                      {{daemon::kDaemonEnvVar, "1"}}, paths.data_dir.root_path(),
                                      paths.log_file);
  if (!child) {
    print_error(child.error().message);
    return kExitFailure;
  }
  auto message = child->ready.read_all(kReadyTimeout);
  if (!message) {
    print_error(message.error().message);
    return kExitFailure;
  }
  if (!message->has_value()) {
    print_error("the node did not report ready within " + std::to_string(kReadyTimeout.count()) +
                "s; killing it (PID " + std::to_string(child->pid) + ")");
    (void)daemon::kill_process(child->pid);
    wait_until_gone(child->pid);
    daemon::remove_stale_files(paths);
    print_last_log_lines(paths);
    return kExitFailure;
  }
  auto report = node::decode_ready_report(**message);
  if (!report.ok) {
    wait_until_gone(child->pid);
    if (report.running_pid != 0 || report.error.rfind("already running", 0) == 0) {
      print_error(report.error);
      return kExitFailure;
    }
    print_error(report.error);
    daemon::remove_stale_files(paths);
    print_last_log_lines(paths);
    return kExitFailure;
  }
  std::printf("Node started\n");
  std::printf("PID:         %lld\n", static_cast<long long>(report.pid));
  std::printf("Node ID:     %s\n", report.node_id.c_str());
  std::printf("Listen addresses:\n");
  for (const auto& address : report.listen_addrs)
    std::printf("  - %s\n", address.c_str());
  std::printf("Log file:    %s\n", report.log_file.c_str());
  return kExitOk;
}

std::optional<ResolvedNodeOptions> resolve_or_report(const ParsedArgs& parsed, int& exit_code) {
  auto resolved = resolve_node_options(parsed);
  if (!resolved) {
    print_error(resolved.error().message);
    exit_code = kExitUsage;
    return std::nullopt;
  }
  if (auto valid = node::validate_for_start(resolved->options); !valid) {
    print_error(valid.error().message);
    exit_code = kExitUsage;
    return std::nullopt;
  }
  if (node::plaintext_enabled(resolved->options)) {
    std::fprintf(stderr,
                 "WARNING: -security includes plaintext: connections that use /plaintext/2.0.0 "
                 "are NOT encrypted and NOT authenticated. Use it for tests only.\n");
  }
  return std::move(*resolved);
}

}  // namespace

std::string data_dir_option(const ParsedArgs& parsed) {
  auto value = parsed.value("data");
  return value ? *value : node::NodeOptions{}.data_dir.string();
}

Expected<ResolvedNodeOptions> resolve_node_options(const ParsedArgs& parsed) {
  ResolvedNodeOptions resolved;
  auto& options = resolved.options;
  if (auto applied = node::apply_node_option(options, "data", data_dir_option(parsed)); !applied) {
    return tl::unexpected(applied.error());
  }
  daemon::DataPaths paths(options.data_dir);
  options.data_dir = paths.data_dir;
  if (auto applied = node::apply_config_file(options, paths.config_file); !applied) {
    return tl::unexpected(applied.error());
  }
  resolved.launch_args = {"--data", paths.data_dir.string()};
  for (const auto& [name, value] : parsed.options) {
    const auto* option = node::find_node_option(name);
    if (name == "data" || option == nullptr) continue;
    if (auto applied = option->apply(options, value); !applied) {
      return tl::unexpected(applied.error());
    }
    resolved.launch_args.insert(resolved.launch_args.end(),
                                {"--" + name, node::canonical_option_text(*option, value)});
  }
  if (!options.key_file.empty()) options.key_file = daemon::make_absolute(options.key_file);
  return resolved;
}

int command_start(const Words& words) {
  int exit_code = kExitOk;
  auto parsed = parse_or_report("start", words, exit_code);
  if (!parsed) return exit_code;
  auto resolved = resolve_or_report(*parsed, exit_code);
  if (!resolved) return exit_code;
  return start_node(*resolved);
}

int command_run(const Words& words) {
  int exit_code = kExitOk;
  auto parsed = parse_or_report("run", words, exit_code);
  if (!parsed) return exit_code;
  auto resolved = resolve_or_report(*parsed, exit_code);
  if (!resolved) return exit_code;

  node::NodeLaunch launch;
  launch.options = resolved->options;
  launch.launch_args = resolved->launch_args;
  launch.detached = daemon::is_daemon_process();
  if (launch.detached) {
    launch.ready = daemon::ReadyWriter::from_environment();
    (void)daemon::redirect_stdin_to_null();
  }
  return node::run_node(std::move(launch));
}

int command_restart(const Words& words) {
  int exit_code = kExitOk;
  auto parsed = parse_or_report("restart", words, exit_code);
  if (!parsed) return exit_code;
  daemon::DataPaths paths(data_dir_option(*parsed));
  auto running = daemon::running_node_pid(paths);
  if (!running) {
    print_error(running.error().message);
    return kExitFailure;
  }

  bool options_given = false;
  for (const auto& [name, value] : parsed->options)
    options_given |= name != "data";
  ParsedArgs effective = *parsed;
  if (!options_given && running->has_value()) {
    // Reuse what the running node was started with; it is recorded in its status.
    auto status = daemon::read_status_file(paths.status_file);
    if (status && !status->launch_args.empty()) {
      auto reparsed = parse_args(spec_of("start"), status->launch_args);
      if (reparsed) effective = *reparsed;
    }
  }
  // Check the new settings before stopping anything: bad options must not cost a running node.
  auto resolved = resolve_or_report(effective, exit_code);
  if (!resolved) return exit_code;

  if (running->has_value()) {
    // Its API client is destroyed when it returns: no gRPC channel is alive when start forks.
    auto stopped = stop_running_node(paths, kDefaultStopTimeout, [](std::string_view line) {
      std::printf("%.*s\n", static_cast<int>(line.size()), line.data());
      std::fflush(stdout);
    });
    if (!stopped) {
      print_error(stopped.error().message);
      return kExitFailure;
    }
    print_stop_outcome(*stopped);
  }
  return start_node(*resolved);
}

}  // namespace an::app
