#include "app/args.h"

namespace an::app {
namespace {

constexpr std::size_t kHelpWidth = 90;
constexpr std::size_t kHelpColumn = 26;

// The words of `text` from column `column` on, in lines of kHelpWidth; continuation lines start
// with `indent` spaces.
std::string wrap(std::string_view text, std::size_t column, std::size_t indent) {
  std::string wrapped;
  std::size_t at = column;
  bool line_empty = true;
  while (!text.empty()) {
    auto space = text.find(' ');
    auto word = text.substr(0, space);
    text = space == std::string_view::npos ? std::string_view() : text.substr(space + 1);
    if (word.empty()) continue;
    if (!line_empty && at + 1 + word.size() > kHelpWidth) {
      wrapped += "\n" + std::string(indent, ' ');
      at = indent;
      line_empty = true;
    }
    if (!line_empty) {
      wrapped += ' ';
      ++at;
    }
    wrapped += word;
    at += word.size();
    line_empty = false;
  }
  return wrapped;
}

// Go's strconv.ParseBool, which its flag package uses for boolean flags.
Expected<bool> parse_go_bool(const std::string& name, const std::string& value) {
  for (const char* yes : {"1", "t", "T", "true", "TRUE", "True"}) {
    if (value == yes) return true;
  }
  for (const char* no : {"0", "f", "F", "false", "FALSE", "False"}) {
    if (value == no) return false;
  }
  return fail("invalid boolean value \"" + value + "\" for -" + name);
}

// The value of a flag (an option without a value name): "true" when given bare.
Expected<std::string> flag_value(const CommandSpec& spec, const std::string& name,
                                 const std::optional<std::string>& inline_value) {
  if (!inline_value) return std::string("true");
  if (spec.flag_syntax != FlagSyntax::kGo) return fail("option -" + name + " takes no value");
  auto on = parse_go_bool(name, *inline_value);
  if (!on) return tl::unexpected(on.error());
  return std::string(*on ? "true" : "false");
}

}  // namespace

bool ParsedArgs::has(const std::string& name) const {
  return value(name).has_value();
}

std::optional<std::string> ParsedArgs::value(const std::string& name) const {
  std::optional<std::string> found;
  for (const auto& [option, value] : options) {
    if (option == name) found = value;
  }
  return found;
}

Expected<ParsedArgs> parse_args(const CommandSpec& spec, const std::vector<std::string>& args) {
  const bool go_syntax = spec.flag_syntax == FlagSyntax::kGo;
  ParsedArgs parsed;
  bool options_ended = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& word = args[i];
    if (options_ended || word.size() < 2 || word[0] != '-') {
      if (parsed.positionals.size() >= spec.max_positionals) {
        return fail("unexpected argument \"" + word + "\" for " + spec.name);
      }
      parsed.positionals.push_back(word);
      continue;
    }
    if (word == "--") {
      options_ended = true;
      continue;
    }
    std::string body = word.substr(word[1] == '-' ? 2 : 1);
    std::optional<std::string> inline_value;
    if (auto eq = body.find('='); eq != std::string::npos) {
      inline_value = body.substr(eq + 1);
      body.resize(eq);
    }
    if (body == "h" || body == "help") {
      parsed.help = true;
      if (go_syntax) return parsed;
      continue;
    }
    const OptionSpec* option = nullptr;
    for (const auto& candidate : spec.options) {
      if (candidate.name == body) option = &candidate;
    }
    if (option == nullptr) {
      return fail("unknown " + std::string(go_syntax ? "flag" : "option") + " \"" + word +
                  "\" for " + spec.name + " (see: agentnetwork " + spec.name + " -h)");
    }
    std::string value;
    if (option->value_name.empty()) {
      auto given = flag_value(spec, body, inline_value);
      if (!given) return tl::unexpected(given.error());
      value = *given;
    } else if (inline_value) {
      value = *inline_value;
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else if (go_syntax) {
      return fail("flag needs an argument: -" + body);
    } else {
      return fail("option -" + body + " needs a value (" + option->value_name + ")");
    }
    bool seen = false;
    for (auto& [name, existing] : parsed.options) {
      if (go_syntax || name != body) continue;
      if (!option->repeatable) return fail("option -" + body + " given more than once");
      existing += "," + value;
      seen = true;
    }
    if (!seen) parsed.options.emplace_back(body, value);
  }
  return parsed;
}

std::string help_row(std::string left, std::string_view help) {
  if (left.size() + 2 > kHelpColumn) {
    left += "\n";
    left.append(kHelpColumn, ' ');
  } else {
    left.resize(kHelpColumn, ' ');
  }
  return left + wrap(help, kHelpColumn, kHelpColumn) + "\n";
}

std::string wrap_text(std::string_view text) {
  return wrap(text, 0, 0) + "\n";
}

std::string command_help(const CommandSpec& spec) {
  std::string text = "Usage: agentnetwork " + spec.name;
  if (!spec.synopsis.empty()) text += " " + spec.synopsis;
  text += "\n\n" + spec.summary + "\n";
  if (!spec.description.empty()) text += spec.description + "\n";
  if (!spec.options.empty()) {
    text += "\nOptions (one dash or two; -opt VALUE or -opt=VALUE):\n";
    for (const auto& option : spec.options) {
      std::string left = "  -" + option.name;
      if (!option.value_name.empty()) left += " " + option.value_name;
      text += help_row(left, option.help);
    }
  }
  text += help_row("  -h, --help", "show this help");
  if (!spec.details.empty()) text += "\n" + spec.details;
  return text;
}

}  // namespace an::app
