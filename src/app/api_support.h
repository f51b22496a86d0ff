// Helpers of the commands that talk to the running node over its control API (cmd_api.cpp,
// cmd_agent.cpp). Main thread only.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/args.h"
#include "rpc/control_client.h"
#include "util/expected.h"

namespace an::app {

// Exit codes of SPEC §1 for an API error: 3 when no node runs, 2 when the node calls the
// argument invalid, 1 otherwise.
int exit_code_for(const Error& error);
// Prints the error and returns its exit code.
int report(const Error& error);

// PEER on the command line: a peer ID in any text form (sent in its base58btc form), or, when
// `allow_multiaddr`, a multiaddr ending in /p2p/<peer id>.
struct PeerArgument {
  std::string peer_id;
  std::optional<std::string> multiaddr;
};
Expected<std::string> parse_dialable_multiaddr(const std::string& text);
Expected<PeerArgument> parse_peer_argument(const std::string& text, bool allow_multiaddr);

// The one positional argument of `command`, or a usage error naming what is missing.
std::optional<std::string> single_positional(const std::string& command, const ParsedArgs& parsed,
                                             const char* what, int& exit_code);
// The client of the node in -data DIR; on failure reports it and sets exit_code.
std::optional<rpc::ControlClient> open_client(const ParsedArgs& parsed, int& exit_code);

void print_json(const nlohmann::ordered_json& json);
// Columns padded to their widest cell, two spaces apart.
void print_table(const std::vector<std::string>& headers,
                 const std::vector<std::vector<std::string>>& rows);

}  // namespace an::app
