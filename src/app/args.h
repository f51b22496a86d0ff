// Command-line parsing shared by every command: options with one or two dashes, "=value" or a
// separate value, "--" to end options. Pure functions; any thread.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "util/expected.h"

namespace an::app {

struct OptionSpec {
  std::string name;        // without dashes: "data", "n"
  std::string value_name;  // empty for a flag
  std::string help;
  bool repeatable = false;  // later occurrences are appended with a comma
};

struct CommandSpec {
  std::string name;
  std::string synopsis;  // "[-data DIR] [-json]"
  std::string summary;   // one sentence, for the overview of all commands
  std::vector<OptionSpec> options;
  std::size_t max_positionals = 0;
  std::string details;           // extra help text, after the options
  std::string description = {};  // extra help text, between the summary and the options
};

struct ParsedArgs {
  bool help = false;
  // Options in the order given, values for flags are "true"; names without dashes.
  std::vector<std::pair<std::string, std::string>> options;
  std::vector<std::string> positionals;

  bool has(const std::string& name) const;
  std::optional<std::string> value(const std::string& name) const;
};

// Parses `args` (the words after the command). Errors are one line naming the bad word.
Expected<ParsedArgs> parse_args(const CommandSpec& spec, const std::vector<std::string>& args);

// The help text of one command.
std::string command_help(const CommandSpec& spec);

}  // namespace an::app
