// status and stop: the commands that look at or end a running node.
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "app/cli.h"
#include "app/commands.h"
#include "daemon/control.h"
#include "daemon/paths.h"
#include "daemon/status_file.h"

namespace an::app {
namespace {

struct StatusLabels {
  const char* header;
  const char* footer;
  const char* status;
  const char* running;
  const char* starting;
  const char* stopped;
  const char* pid;
  const char* node_id;
  const char* role;
  const char* version;
  const char* uptime;
  const char* listen;
  const char* peers;
  const char* data_dir;
  const char* log_file;
};

constexpr StatusLabels kEnglish{"======== Node Status ========",
                                "=============================",
                                "Status:      ",
                                "running",
                                "starting",
                                "stopped",
                                "PID:         ",
                                "Node ID:     ",
                                "Role:        ",
                                "Version:     ",
                                "Uptime:      ",
                                "Listen addresses:",
                                "Peers:       ",
                                "Data dir:    ",
                                "Log file:    "};

// The seed's own labels.
constexpr StatusLabels kChinese{"======== 节点状态 ========",
                                "==========================",
                                "状态:     ",
                                "运行中",
                                "启动中",
                                "已停止",
                                "PID:      ",
                                "节点ID:   ",
                                "角色:     ",
                                "版本:     ",
                                "运行时间: ",
                                "监听地址:",
                                "连接节点: ",
                                "数据目录: ",
                                "日志文件: "};

// POSIX precedence: LC_ALL, then LC_MESSAGES, then LANG; the first one set decides.
const StatusLabels& labels_for_locale() {
  for (const char* name : {"LC_ALL", "LC_MESSAGES", "LANG"}) {
    const char* value = std::getenv(name);
    if (value == nullptr || value[0] == '\0') continue;
    return std::string_view(value).rfind("zh", 0) == 0 ? kChinese : kEnglish;
  }
  return kEnglish;
}

void print_status_block(const daemon::NodeStatus& status, const char* state,
                        std::chrono::system_clock::time_point now) {
  const auto& l = labels_for_locale();
  std::printf("%s\n", l.header);
  std::printf("%s%s\n", l.status, state);
  if (status.pid != 0) {
    std::printf("%s%lld\n", l.pid, static_cast<long long>(status.pid));
  }
  if (!status.node_id.empty()) {
    std::printf("%s%s\n", l.node_id, status.node_id.c_str());
    std::printf("%s%s\n", l.role, status.role.c_str());
    std::printf("%s%s\n", l.version, status.version.c_str());
    auto uptime = std::chrono::duration_cast<std::chrono::seconds>(now - status.start_time);
    std::printf("%s%s\n", l.uptime, daemon::format_uptime(uptime).c_str());
    std::printf("%s\n", l.listen);
    for (const auto& address : status.listen_addrs)
      std::printf("  - %s\n", address.c_str());
    std::printf("%s%llu\n", l.peers, static_cast<unsigned long long>(status.peer_count));
  }
  std::printf("%s%s\n", l.data_dir, status.data_dir.c_str());
  std::printf("%s%s\n", l.log_file, status.log_file.c_str());
  std::printf("%s\n", l.footer);
}

Expected<std::chrono::milliseconds> parse_timeout(const std::string& text) {
  double seconds = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(seconds) ||
      seconds < 0 || seconds > 86400) {
    return fail("invalid -timeout \"" + text + "\" (expected seconds, 0-86400)");
  }
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

}  // namespace

int command_status(const Words& words) {
  int exit_code = kExitOk;
  auto parsed = parse_or_report("status", words, exit_code);
  if (!parsed) return exit_code;
  daemon::DataPaths paths(data_dir_option(*parsed));
  const bool json_output = parsed->has("json");
  const auto now = std::chrono::system_clock::now();

  auto running = daemon::running_node_pid(paths);
  if (!running) {
    print_error(running.error().message);
    return kExitFailure;
  }
  daemon::NodeStatus status;
  const char* state = labels_for_locale().stopped;
  if (running->has_value()) {
    auto recorded = daemon::read_status_file(paths.status_file);
    if (recorded && recorded->pid == **running) {
      status = *recorded;
      state = labels_for_locale().running;
    } else {
      // Locked but no status yet: the node is between its lock and its first status write.
      state = labels_for_locale().starting;
      status.pid = **running;
    }
    status.running = true;
  }
  status.data_dir = paths.data_dir.string();
  status.log_file = paths.log_file.string();
  status.pid_file = paths.pid_file.string();
  if (!running->has_value()) status.start_time = {};

  if (json_output) {
    auto json = daemon::status_to_json(status, now);
    if (!running->has_value()) json["start_time"] = "";
    std::printf("%s\n", json.dump(2).c_str());
  } else {
    print_status_block(status, state, now);
  }
  return running->has_value() ? kExitOk : kExitNotRunning;
}

int command_stop(const Words& words) {
  int exit_code = kExitOk;
  auto parsed = parse_or_report("stop", words, exit_code);
  if (!parsed) return exit_code;
  auto timeout = parse_timeout(parsed->value("timeout").value_or("10"));
  if (!timeout) {
    print_error(timeout.error().message);
    return kExitUsage;
  }
  daemon::DataPaths paths(data_dir_option(*parsed));
  auto result = daemon::stop_node(paths, *timeout, [](std::string_view line) {
    std::printf("%.*s\n", static_cast<int>(line.size()), line.data());
    std::fflush(stdout);
  });
  if (!result) {
    print_error(result.error().message);
    return kExitFailure;
  }
  switch (result->outcome) {
    case daemon::StopResult::Outcome::kNotRunning:
      std::printf("node is not running%s\n",
                  result->removed_stale_files ? " (removed a stale PID file)" : "");
      break;
    case daemon::StopResult::Outcome::kStopped:
      std::printf("Node stopped\n");
      break;
    case daemon::StopResult::Outcome::kKilled:
      std::printf("Node killed (SIGKILL) after the timeout\n");
      break;
  }
  return kExitOk;
}

}  // namespace an::app
