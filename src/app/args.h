// Command-line parsing shared by every command: options with one or two dashes, "=value" or a
// separate value, "--" to end options. Pure functions; any thread.
//
// A small parser rather than CLI11 (Debian's 2.1): SPEC §1 wants every long option with one
// dash as well as two (-data, --data=x), while CLI11 allows one character after a single dash
// (it refuses "-data" as a name, and reads it on the command line as -d -a -t -a); `p2pd` needs
// Go's flag syntax (-x=false for booleans, every occurrence applied in turn); and the node
// option table also drives config.json and the arguments `restart` reuses, which CLI11 would
// not. Tables supply names, value names and help; this file only tokenizes and lays out help.
#pragma once

#include <optional>
#include <string>
#include <string_view>
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

// How flags (options without a value) and repeated options are read.
enum class FlagSyntax {
  // -json only; a repeated option is an error unless repeatable. -h is noted and parsing goes on.
  kStandard,
  // Go's flag package (go-libp2p-daemon's command line): -x or -x=true|false|1|0|t|f|...;
  // every occurrence is kept, in order; -h ends parsing; errors use Go's wording.
  kGo,
};

struct CommandSpec {
  std::string name;
  std::string synopsis;  // "[-data DIR] [-json]"
  std::string summary;   // one sentence, for the overview of all commands
  std::vector<OptionSpec> options;
  std::size_t max_positionals = 0;
  std::string details;           // extra help text, after the options
  std::string description = {};  // extra help text, between the summary and the options
  FlagSyntax flag_syntax = FlagSyntax::kStandard;
};

struct ParsedArgs {
  bool help = false;
  // Options in the order given, values for flags are "true" (Go syntax: "true" or "false");
  // names without dashes.
  std::vector<std::pair<std::string, std::string>> options;
  std::vector<std::string> positionals;

  bool has(const std::string& name) const;
  std::optional<std::string> value(const std::string& name) const;
};

// Parses `args` (the words after the command). Errors are one line naming the bad word.
Expected<ParsedArgs> parse_args(const CommandSpec& spec, const std::vector<std::string>& args);

// One row of an option list in help: `left` ("  -data DIR") in a 26-column field, then `help`
// wrapped to the help width; when `left` fills the field, the help starts on the next line.
std::string help_row(std::string left, std::string_view help);

// `text` broken at spaces into lines of the help width, each ending in a newline.
std::string wrap_text(std::string_view text);

// The help text of one command.
std::string command_help(const CommandSpec& spec);

}  // namespace an::app
