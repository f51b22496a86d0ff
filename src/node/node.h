// The node process: from a validated launch to a serving node and back (SPEC §3). run_node owns
// everything it builds and is called once, from main's thread, which becomes the network thread.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "daemon/platform.h"
#include "node/options.h"

namespace an::node {

struct NodeLaunch {
  NodeOptions options;
  // Started by `start`: stdout/stderr belong to the log, no terminal output, readiness goes
  // through `ready`.
  bool detached = false;
  std::optional<daemon::ReadyWriter> ready;
  // Node options as the user gave them, canonical form (recorded for `restart`).
  std::vector<std::string> launch_args;
};

// Runs the node until SIGTERM/SIGINT (or Windows' stop event). Returns the process exit code:
// 0 after a clean stop, 1 when it could not start (the reason has been reported).
int run_node(NodeLaunch launch);

// The ready message's fields, as sent by the node to the waiting `start`.
struct ReadyReport {
  bool ok = false;
  std::string error;
  daemon::ProcessId pid = 0;
  std::string node_id;
  std::vector<std::string> listen_addrs;
  std::string log_file;
  // Set when the start failed because another node holds the data directory.
  daemon::ProcessId running_pid = 0;
};
std::string encode_ready_report(const ReadyReport& report);
ReadyReport decode_ready_report(const std::string& message);

}  // namespace an::node
