// status and stop: the commands that look at or end a running node.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <thread>

#include "app/cli.h"
#include "app/commands.h"
#include "daemon/control.h"
#include "daemon/paths.h"
#include "daemon/status_file.h"
#include "rpc/control_client.h"
#include "util/decimal.h"

namespace an::app {
namespace {

// `status` must stay quick when the node is busy or stuck: it falls back to node.status.
constexpr auto kLiveStatusTimeout = std::chrono::seconds(2);
// Shutdown's deadline: the -timeout, within these bounds.
constexpr auto kShutdownCallMin = std::chrono::milliseconds(500);
constexpr auto kShutdownCallMax = std::chrono::seconds(2);

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
  const char* inbox;  // a printf format: messages, bytes, refused
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
                                "Inbox:       %llu messages (%llu bytes), %llu refused\n",
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
                                "收件箱:   %llu 条消息 (%llu 字节), 拒收 %llu 条\n",
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
    std::printf(l.inbox, static_cast<unsigned long long>(status.inbox_messages),
                static_cast<unsigned long long>(status.inbox_bytes),
                static_cast<unsigned long long>(status.inbox_refused));
  }
  std::printf("%s%s\n", l.data_dir, status.data_dir.c_str());
  std::printf("%s%s\n", l.log_file, status.log_file.c_str());
  std::printf("%s\n", l.footer);
}

// Replaces the recorded values of `status` with the node's live ones (SPEC §3: peer count and
// uptime are live). `now` becomes the moment the node's uptime refers to. The API client is
// gone when this returns.
Expected<void> ask_node_for_status(const daemon::DataPaths& paths, bool with_peers,
                                   daemon::NodeStatus& status,
                                   std::chrono::system_clock::time_point& now) {
  auto client = rpc::ControlClient::open(paths);
  if (!client) return tl::unexpected(client.error());
  auto live = client->get_status(kLiveStatusTimeout);
  if (!live) return tl::unexpected(live.error());
  std::vector<daemon::PeerSummary> peers;
  if (with_peers) {
    auto listed = client->list_peers(kLiveStatusTimeout);
    if (!listed) return tl::unexpected(listed.error());
    for (const auto& peer : listed->peers()) {
      peers.push_back(daemon::PeerSummary{peer.peer_id(), peer.address(),
                                          std::string(rpc::direction_name(peer.direction())),
                                          peer.agent_version()});
    }
    std::stable_sort(peers.begin(), peers.end(),
                     [](const auto& a, const auto& b) { return a.peer_id < b.peer_id; });
  }
  if (!live->peer_id().empty()) status.node_id = live->peer_id();
  if (!live->version().empty()) status.version = live->version();
  if (!live->role().empty()) status.role = live->role();
  status.listen_addrs.assign(live->listen_addrs().begin(), live->listen_addrs().end());
  if (live->start_time_unix_ms() > 0) {
    status.start_time = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::milliseconds(live->start_time_unix_ms())));
    now = status.start_time + std::chrono::milliseconds(live->uptime_ms());
  }
  if (with_peers) {
    // One snapshot: the count matches the list printed with it.
    status.peers = std::move(peers);
    status.peer_count = status.peers.size();
  } else {
    status.peer_count = live->peer_count();
  }
  status.inbox_messages = live->inbox_messages();
  status.inbox_bytes = live->inbox_bytes();
  status.inbox_refused = live->inbox_refused();
  return {};
}

void print_line(std::string_view line) {
  std::printf("%.*s\n", static_cast<int>(line.size()), line.data());
  std::fflush(stdout);
}

Expected<std::chrono::milliseconds> parse_timeout(const std::string& text) {
  auto seconds = parse_decimal(text);
  if (!seconds || !std::isfinite(*seconds) || *seconds < 0 || *seconds > 86400) {
    return fail("invalid -timeout \"" + text + "\" (expected seconds, 0-86400)");
  }
  return std::chrono::milliseconds(static_cast<long long>(*seconds * 1000));
}

}  // namespace

int command_status(const Words& words) {
  int exit_code = kExitOk;
  auto parsed = parse_or_report("status", words, exit_code);
  if (!parsed) return exit_code;
  daemon::DataPaths paths(data_dir_option(*parsed));
  const bool json_output = parsed->has("json");
  auto now = std::chrono::system_clock::now();

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
      if (auto asked = ask_node_for_status(paths, json_output, status, now); !asked) {
        status = *recorded;
        now = std::chrono::system_clock::now();
        std::fprintf(stderr,
                     "warning: no live status from the node's control API (%s); showing "
                     "node.status as the node last wrote it\n",
                     asked.error().message.c_str());
      }
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

Expected<daemon::StopResult> stop_running_node(
    const daemon::DataPaths& paths, std::chrono::milliseconds timeout,
    const std::function<void(std::string_view)>& progress) {
  auto ask_through_api = [&](daemon::ProcessId) {
    // The channel lives only inside this call: `restart` forks right after a stop.
    auto client = rpc::ControlClient::open(paths);
    if (!client) {
      if (client.error().code != rpc::ClientErrc::kNotRunning) {
        progress("cannot reach the control API (" + client.error().message + "); sending SIGTERM");
      }
      return false;
    }
    auto answered = client->shutdown(
        std::clamp<std::chrono::milliseconds>(timeout, kShutdownCallMin, kShutdownCallMax));
    if (!answered) {
      progress("Shutdown through the control API failed (" + answered.error().message +
               "); sending SIGTERM");
    }
    return answered.has_value();
  };
  return daemon::stop_node(paths, timeout, progress, ask_through_api);
}

void print_stop_outcome(const daemon::StopResult& result) {
  switch (result.outcome) {
    case daemon::StopResult::Outcome::kNotRunning:
      std::printf("node is not running%s\n",
                  result.removed_stale_files ? " (removed a stale PID file)" : "");
      break;
    case daemon::StopResult::Outcome::kStopped:
      std::printf("Node stopped\n");
      break;
    case daemon::StopResult::Outcome::kKilled:
      std::printf("Node killed (SIGKILL) after the timeout\n");
      break;
  }
  std::fflush(stdout);
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
  auto result = stop_running_node(paths, *timeout, print_line);
  if (!result) {
    print_error(result.error().message);
    return kExitFailure;
  }
  print_stop_outcome(*result);
  return kExitOk;
}

}  // namespace an::app
