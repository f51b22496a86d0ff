// Helpers of the commands that talk to the running node over its control API (cmd_api.cpp,
// cmd_agent.cpp, cmd_pubsub.cpp). Main thread only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
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

bool is_valid_utf8(std::string_view text);
// Standard base64 with padding.
std::string base64(std::string_view bytes);

// The message of `send`, `request` and `pub`: the TEXT positional after `target` (PEER, TOPIC),
// "-" for standard input, or -file F. Usage errors are reported and set exit_code.
std::optional<std::string> read_payload(const std::string& command, const ParsedArgs& parsed,
                                        const char* target, int& exit_code);
// The value of -NAME as a number from 1 to `maximum`; `fallback` when absent.
std::optional<std::uint32_t> read_count(const ParsedArgs& parsed, const char* name,
                                        std::uint32_t fallback, std::uint32_t maximum,
                                        int& exit_code);
// Columns padded to their widest cell, two spaces apart.
void print_table(const std::vector<std::string>& headers,
                 const std::vector<std::vector<std::string>>& rows);

}  // namespace an::app
