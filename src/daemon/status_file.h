// The node's status record (SPEC §3): what `node.status` and `status -json` contain, and the
// atomic read/write of the file. Value types; any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/platform.h"
#include "util/expected.h"

namespace an::daemon {

// One connected peer as shown in status.
struct PeerSummary {
  std::string peer_id;
  std::string address;    // remote multiaddr of the connection
  std::string direction;  // "inbound" or "outbound"
  std::string agent_version;
  bool operator==(const PeerSummary&) const = default;
};

struct NodeStatus {
  bool running = false;
  ProcessId pid = 0;
  std::chrono::system_clock::time_point start_time{};
  std::string node_id;
  std::string version;
  std::string role;
  std::vector<std::string> listen_addrs;
  std::uint64_t peer_count = 0;
  std::vector<PeerSummary> peers;
  std::string data_dir;
  std::string log_file;
  std::string pid_file;
  // Additions beyond the Go implementation's keys.
  std::string grpc;                      // control API endpoint, empty until it exists
  std::vector<std::string> launch_args;  // node options the node was started with (restart)
  // The agents' inbox: messages and payload bytes waiting, messages refused (full) since start.
  std::uint64_t inbox_messages = 0;
  std::uint64_t inbox_bytes = 0;
  std::uint64_t inbox_refused = 0;
  std::chrono::system_clock::time_point updated_at{};
};

// Go's time.Duration formatting truncated to seconds: "2h30m15s", "4m0s", "7s".
std::string format_uptime(std::chrono::seconds uptime);

// RFC 3339 in UTC with seconds ("2026-11-26T06:14:28Z") and its parser (accepts fractions and
// numeric offsets, as Go writes them).
std::string format_rfc3339(std::chrono::system_clock::time_point time);
Expected<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text);

// JSON with the keys of SPEC §3; `uptime` is computed against `now`.
nlohmann::ordered_json status_to_json(const NodeStatus& status,
                                      std::chrono::system_clock::time_point now);
Expected<NodeStatus> status_from_json(const nlohmann::json& json);

// Atomic (readers see a whole file) but not flushed to disk: the node rewrites it often and at
// every start, and a reader treats a missing or malformed file as "no status".
Expected<void> write_status_file(const std::filesystem::path& path, const NodeStatus& status);
Expected<NodeStatus> read_status_file(const std::filesystem::path& path);

// PID file: the decimal PID and a newline, written atomically.
Expected<void> write_pid_file(const std::filesystem::path& path, ProcessId pid);
// nullopt when the file does not exist; an error when it is unreadable or malformed.
Expected<std::optional<ProcessId>> read_pid_file(const std::filesystem::path& path);

}  // namespace an::daemon
