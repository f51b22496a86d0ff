#include "app/args.h"

namespace an::app {

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
      continue;
    }
    const OptionSpec* option = nullptr;
    for (const auto& candidate : spec.options) {
      if (candidate.name == body) option = &candidate;
    }
    if (option == nullptr) {
      return fail("unknown option \"" + word + "\" for " + spec.name + " (see: agentnetwork " +
                  spec.name + " -h)");
    }
    std::string value;
    if (option->value_name.empty()) {
      if (inline_value) return fail("option -" + body + " takes no value");
      value = "true";
    } else if (inline_value) {
      value = *inline_value;
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return fail("option -" + body + " needs a value (" + option->value_name + ")");
    }
    bool seen = false;
    for (auto& [name, existing] : parsed.options) {
      if (name != body) continue;
      if (!option->repeatable) return fail("option -" + body + " given more than once");
      existing += "," + value;
      seen = true;
    }
    if (!seen) parsed.options.emplace_back(body, value);
  }
  return parsed;
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
      if (left.size() < 26)
        left.resize(26, ' ');
      else
        left += "  ";
      text += left + option.help + "\n";
    }
  }
  text += "  -h, --help              show this help\n";
  if (!spec.details.empty()) text += "\n" + spec.details;
  return text;
}

}  // namespace an::app
