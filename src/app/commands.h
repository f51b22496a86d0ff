// One function per command; each gets the words after the command name and returns the exit
// code. Shared helpers for the commands. Main thread only.
#pragma once

#include <string>
#include <vector>

#include "app/args.h"
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

}  // namespace an::app
