// A stand-in for the node process in the daemon lifecycle tests: it goes through the daemon
// layer exactly as the real node does (data-dir lock, rotating log with captured stdio, PID and
// status files, ready report, graceful stop and its own cleanup) but has no network, so the
// lifecycle can be tested on every platform the daemon layer builds for.
//
//   an-standin-node --data DIR [options]
//
//   --lines N, --line-bytes B   after ready, write N numbered log lines ("line <n> xxx..."), each
//                               padded to B bytes; a graceful stop waits until all are written
//   --raw-every K               every K-th line also a "raw <m>" line straight to stdout or
//                               stderr (alternately), which the log captures
//   --pause-every K --pause-ms T  pause T ms after every K lines, to pace the rotations
//   --write-when FILE           start writing the lines only once FILE exists
//   --log-max-bytes B, --log-max-files N   rotation settings, as the node's options
//   --ignore-stop               log stop requests and ignore them (a hung node)
//   --crash-after-ready         die of an uncaught exception right after reporting ready,
//                               leaving the PID and status files behind
//   --hold-start-until FILE     between taking the lock and writing the PID file (where the
//                               real node listens and starts its API), wait until FILE exists
//   --as-starter                play `start` instead: start the stand-in detached, relay its
//                               ready report, exit
//
// Started by spawn_detached, it reports {"ok":true,"pid":..,"console":..} or
// {"ok":false,"error":..,"running_pid":..} on the ready channel.
//
// Threads: main (start, the stop wait and the rotation checks, cleanup), one line writer, and
// the stop listener's own thread on Windows; they share only the stop flag and the log.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "daemon/control.h"
#include "daemon/log_file.h"
#include "daemon/log_sink.h"
#include "daemon/paths.h"
#include "daemon/platform.h"
#include "daemon/status_file.h"

namespace {

namespace daemon = an::daemon;

// As the real node: raw stdout growth is checked against the size limit once a second.
constexpr auto kRotationCheckInterval = std::chrono::seconds(1);
// A signal handler may only set a flag; the main thread looks at it this often.
constexpr auto kStopPollInterval = std::chrono::milliseconds(20);
// --hold-start-until and --write-when give up after this, so that a test that fails early leaves
// no hung child.
constexpr auto kMaxFileWait = std::chrono::seconds(60);
// How long --as-starter waits for the node's report (an emulator makes process starts slow).
constexpr auto kStarterReadyTimeout = std::chrono::seconds(30);

struct Options {
  std::filesystem::path data_dir;
  long long lines = 0;
  long long line_bytes = 80;
  long long raw_every = 0;
  bool ignore_stop = false;
  bool crash_after_ready = false;
  std::filesystem::path hold_start_until;
  std::filesystem::path write_when;
  long long pause_every = 0;
  long long pause_ms = 0;
  std::uint64_t log_max_bytes = 10 * 1024 * 1024;
  int log_max_files = 5;
};

std::optional<long long> parse_number(std::string_view text) {
  if (text.empty() || text.size() > 18) return std::nullopt;
  long long value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

// Empty on success, else the complaint.
std::string parse_options(const std::vector<std::string>& args, Options& options) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view name = args[i];
    if (name == "--ignore-stop") {
      options.ignore_stop = true;
      continue;
    }
    if (name == "--crash-after-ready") {
      options.crash_after_ready = true;
      continue;
    }
    if (i + 1 >= args.size()) return "missing value after " + std::string(name);
    std::string_view value = args[++i];
    if (name == "--data") {
      options.data_dir = std::filesystem::path(std::string(value));
      continue;
    }
    if (name == "--hold-start-until") {
      options.hold_start_until = std::filesystem::path(std::string(value));
      continue;
    }
    if (name == "--write-when") {
      options.write_when = std::filesystem::path(std::string(value));
      continue;
    }
    auto number = parse_number(value);
    if (!number) return "not a number: " + std::string(name) + " " + std::string(value);
    if (name == "--lines") {
      options.lines = *number;
    } else if (name == "--line-bytes") {
      options.line_bytes = *number;
    } else if (name == "--pause-every") {
      options.pause_every = *number;
    } else if (name == "--pause-ms") {
      options.pause_ms = *number;
    } else if (name == "--raw-every") {
      options.raw_every = *number;
    } else if (name == "--log-max-bytes" && *number > 0) {
      options.log_max_bytes = static_cast<std::uint64_t>(*number);
    } else if (name == "--log-max-files" && *number > 0 && *number < 100000) {
      options.log_max_files = static_cast<int>(*number);
    } else {
      return "unknown option or bad value: " + std::string(name) + " " + std::string(value);
    }
  }
  if (options.data_dir.empty()) return "--data DIR is required";
  return {};
}

// Set by SIGTERM/SIGINT (POSIX) or the stop listener (Windows); read by the main thread.
std::atomic<bool> stop_requested{false};
std::mutex stop_mutex;
std::condition_variable stop_changed;

extern "C" void on_stop_signal(int) {
  stop_requested.store(true);
}

void request_stop() {
  {
    std::lock_guard<std::mutex> lock(stop_mutex);
    stop_requested.store(true);
  }
  stop_changed.notify_all();
}

class StandinNode {
 public:
  explicit StandinNode(Options options)
      : options_(std::move(options)),
        paths_(options_.data_dir),
        detached_(daemon::is_daemon_process()) {
    if (detached_) {
      ready_ = daemon::ReadyWriter::from_environment();
      (void)daemon::redirect_stdin_to_null();
    }
  }

  int run() {
    if (auto made = daemon::make_directory(paths_.data_dir, false); !made) {
      return fail_start(made.error().message);
    }
    daemon::ProcessId running_pid = 0;
    auto lock = daemon::acquire_node_lock(paths_, running_pid);
    if (!lock) return fail_start(lock.error().message, running_pid);
    if (auto made = daemon::make_directory(paths_.logs_dir, false); !made) {
      return fail_start(made.error().message);
    }
    daemon::LogFileOptions log_options;
    log_options.logs_dir = paths_.logs_dir;
    log_options.max_bytes = options_.log_max_bytes;
    log_options.max_files = options_.log_max_files;
    log_options.capture_stdio = detached_;
    auto log_file = daemon::RotatingLogFile::open(log_options);
    if (!log_file) return fail_start(log_file.error().message);
    log_file_ = *log_file;
    logger_ = daemon::make_node_logger(log_file_, !detached_);
    daemon::install_crash_reporter();

    const auto pid = daemon::current_process_id();
    const bool console = daemon::attached_to_console();
    logger_->info("stand-in node starting: pid {}, data dir {}, console {}", pid,
                  paths_.data_dir.string(), console);
    // The real node loads its key, listens and starts its control API here, which takes a while.
    if (!options_.hold_start_until.empty()) hold_start();

    std::signal(SIGTERM, on_stop_signal);
    std::signal(SIGINT, on_stop_signal);
    auto listener = daemon::StopRequestListener::start(request_stop);
    if (!listener) return fail_start(listener.error().message);

    if (auto written = daemon::write_pid_file(paths_.pid_file, pid); !written) {
      return fail_start(written.error().message);
    }
    daemon::NodeStatus status;
    status.running = true;
    status.pid = pid;
    status.start_time = std::chrono::system_clock::now();
    status.updated_at = status.start_time;
    status.role = "stand-in";
    status.data_dir = paths_.data_dir.string();
    status.log_file = paths_.log_file.string();
    status.pid_file = paths_.pid_file.string();
    if (auto written = daemon::write_status_file(paths_.status_file, status); !written) {
      std::error_code ignored;
      std::filesystem::remove(paths_.pid_file, ignored);
      return fail_start(written.error().message);
    }

    std::thread writer;
    if (options_.lines > 0) writer = std::thread([this] { write_lines(); });

    logger_->info("node ready");
    if (ready_) {
      nlohmann::json report;
      report["ok"] = true;
      report["pid"] = pid;
      report["console"] = console;
      ready_->send_and_close(report.dump());
      ready_.reset();
    }
    if (options_.crash_after_ready) {
      if (writer.joinable()) writer.join();
      // Uncaught, so that it ends in std::terminate as a bug in the node would.
      throw std::runtime_error("stand-in crash on request");
    }

    wait_for_stop();
    logger_->info("shutting down");
    if (writer.joinable()) writer.join();
    (*listener).reset();
    // The PID file goes last, as in the real node: while it exists the node counts as alive.
    std::error_code ignored;
    std::filesystem::remove(paths_.status_file, ignored);
    std::filesystem::remove(paths_.pid_file, ignored);
    logger_->info("removed {} and {}; releasing the lock", paths_.status_file.filename().string(),
                  paths_.pid_file.filename().string());
    logger_->flush();
    return 0;
  }

 private:
  int fail_start(const std::string& reason, daemon::ProcessId running_pid = 0) {
    if (logger_) {
      logger_->error("start failed: {}", reason);
      logger_->flush();
    } else if (!detached_) {
      std::fprintf(stderr, "error: %s\n", reason.c_str());
    }
    if (ready_) {
      nlohmann::json report;
      report["ok"] = false;
      report["error"] = reason;
      if (running_pid != 0) report["running_pid"] = running_pid;
      ready_->send_and_close(report.dump());
    }
    return 1;
  }

  void hold_start() {
    logger_->info("holding the start until {} exists", options_.hold_start_until.string());
    wait_for_file(options_.hold_start_until);
  }

  static void wait_for_file(const std::filesystem::path& path) {
    const auto deadline = std::chrono::steady_clock::now() + kMaxFileWait;
    std::error_code ec;
    while (!std::filesystem::exists(path, ec) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(kStopPollInterval);
    }
  }

  void wait_for_stop() {
    auto next_rotation_check = std::chrono::steady_clock::now() + kRotationCheckInterval;
    std::unique_lock<std::mutex> lock(stop_mutex);
    for (;;) {
      stop_changed.wait_for(lock, kStopPollInterval);
      if (stop_requested.exchange(false)) {
        if (!options_.ignore_stop) return;
        logger_->warn("stop request ignored (--ignore-stop)");
      }
      if (std::chrono::steady_clock::now() >= next_rotation_check) {
        log_file_->check_rotation();
        next_rotation_check = std::chrono::steady_clock::now() + kRotationCheckInterval;
      }
    }
  }

  void write_lines() {
    if (!options_.write_when.empty()) wait_for_file(options_.write_when);
    for (long long n = 1; n <= options_.lines; ++n) {
      std::string line = "line " + std::to_string(n) + " ";
      if (static_cast<long long>(line.size()) < options_.line_bytes) {
        line.append(static_cast<std::size_t>(options_.line_bytes) - line.size(), 'x');
      }
      logger_->info("{}", line);
      if (options_.raw_every > 0 && n % options_.raw_every == 0) {
        std::string raw = "raw " + std::to_string(n / options_.raw_every) + "\n";
        // Alternately through stdout and stderr, which capture_stdio both points at the log.
        std::FILE* stream = (n / options_.raw_every) % 2 == 0 ? stdout : stderr;
        std::fwrite(raw.data(), 1, raw.size(), stream);
        std::fflush(stream);
      }
      if (options_.pause_every > 0 && n % options_.pause_every == 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(options_.pause_ms));
      }
    }
    logger_->info("all {} lines written", options_.lines);
  }

  Options options_;
  daemon::DataPaths paths_;
  bool detached_;
  std::optional<daemon::ReadyWriter> ready_;
  std::shared_ptr<daemon::RotatingLogFile> log_file_;
  std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace

// --as-starter: plays `start` instead of the node. Starts the stand-in (the other arguments)
// detached, relays its ready report to whoever started this process, and exits, leaving the
// node to outlive it.
int run_as_starter(const Options& options, const std::vector<std::string>& node_args) {
  std::optional<daemon::ReadyWriter> ready = daemon::ReadyWriter::from_environment();
  auto relay = [&](const std::string& message) {
    if (ready) ready->send_and_close(message);
  };
  daemon::DataPaths paths(options.data_dir);
  auto child = daemon::spawn_detached(daemon::current_executable(), node_args,
                                      {{daemon::kDaemonEnvVar, "1"}}, paths.data_dir.root_path(),
                                      paths.log_file);
  if (!child) {
    nlohmann::json report;
    report["ok"] = false;
    report["error"] = child.error().message;
    relay(report.dump());
    return 1;
  }
  auto message = child->ready.read_all(kStarterReadyTimeout);
  if (!message || !message->has_value()) {
    nlohmann::json report;
    report["ok"] = false;
    report["error"] = message ? "no ready report from the node" : message.error().message;
    relay(report.dump());
    return 1;
  }
  relay(**message);
  return 0;
}

int main(int argc, char** argv) {
  std::vector<std::string> node_args;
  bool as_starter = false;
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--as-starter") {
      as_starter = true;
    } else {
      node_args.emplace_back(argv[i]);
    }
  }
  Options options;
  if (std::string problem = parse_options(node_args, options); !problem.empty()) {
    std::fprintf(stderr, "an-standin-node: %s\n", problem.c_str());
    return 2;
  }
  if (as_starter) return run_as_starter(options, node_args);
  StandinNode node(std::move(options));
  return node.run();
}
