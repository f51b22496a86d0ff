// One function per command; each gets the words after the command name and returns the exit
// code. Shared helpers for the commands. Main thread only.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "app/args.h"
#include "daemon/control.h"
#include "node/options.h"

namespace an::app {

using Words = std::vector<std::string>;

int command_start(const Words& words);
int command_run(const Words& words);
int command_restart(const Words& words);
int command_stop(const Words& words);
int command_status(const Words& words);
int command_logs(const Words& words);
int command_keygen(const Words& words);
int command_config(const Words& words);
// Commands that talk to the running node over its control API (cmd_api.cpp).
int command_id(const Words& words);
int command_peers(const Words& words);
int command_connect(const Words& words);
int command_ping(const Words& words);
int command_find(const Words& words);
int command_resources(const Words& words);
// The agents' commands: messages, requests, the inbox and discovery (cmd_agent.cpp).
int command_send(const Words& words);
int command_request(const Words& words);
int command_inbox(const Words& words);
int command_advertise(const Words& words);
int command_discover(const Words& words);
// Broadcast on gossipsub topics (cmd_pubsub.cpp).
int command_pub(const Words& words);
int command_sub(const Words& words);
int command_topics(const Words& words);
// The node in the foreground as a libp2p daemon, with go-libp2p-daemon's flags (cmd_p2pd.cpp).
int command_p2pd(const Words& words);

const CommandSpec& spec_of(const std::string& command);
const std::vector<CommandSpec>& all_command_specs();

// Prints "error: <message>" on stderr.
void print_error(const std::string& message);

// Parses the words of `command`; on -h prints help and sets exit_code 0, on a usage error
// prints it and sets exit_code 2. Returns nullopt in both cases.
std::optional<ParsedArgs> parse_or_report(const std::string& command, const Words& words,
                                          int& exit_code);

// Node options from defaults, DIR/config.json and the parsed command line, in that order.
// Also returns the command-line options in canonical form (for `restart`).
struct ResolvedNodeOptions {
  node::NodeOptions options;
  std::vector<std::string> launch_args;
};
Expected<ResolvedNodeOptions> resolve_node_options(const ParsedArgs& parsed);

// The data directory named by -data (default ./data).
std::string data_dir_option(const ParsedArgs& parsed);

// Stops the node of a data directory (`stop`, `restart`): Shutdown through the control API
// first; when the API does not answer, or the node is still running `timeout` after the stop
// began, the signal path of daemon::stop_node (SIGTERM, then SIGKILL). Returns once the
// process is gone and no PID file is left. Creates and destroys its own API client: no gRPC
// channel outlives the call. `progress` receives one-line messages for people.
Expected<daemon::StopResult> stop_running_node(
    const daemon::DataPaths& paths, std::chrono::milliseconds timeout,
    const std::function<void(std::string_view)>& progress);

// The last line of `stop`: "Node stopped", "Node killed (SIGKILL) after the timeout" or
// "node is not running".
void print_stop_outcome(const daemon::StopResult& result);

}  // namespace an::app
