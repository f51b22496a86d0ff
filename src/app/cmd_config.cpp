// config init|show|validate.
#include <cstdio>
#include <filesystem>

#include "app/cli.h"
#include "app/commands.h"
#include "daemon/paths.h"
#include "daemon/platform.h"

namespace an::app {

int command_config(const Words& words) {
  int exit_code = kExitOk;
  auto parsed = parse_or_report("config", words, exit_code);
  if (!parsed) return exit_code;
  if (parsed->positionals.empty()) {
    print_error("config needs an action: init, show or validate");
    return kExitUsage;
  }
  const std::string action = parsed->positionals[0];
  daemon::DataPaths paths(data_dir_option(*parsed));

  if (action == "init") {
    std::error_code ec;
    if (std::filesystem::exists(paths.config_file, ec)) {
      print_error(paths.config_file.string() + " already exists; not overwriting it");
      return kExitFailure;
    }
    if (auto made = daemon::make_directory(paths.data_dir, false); !made) {
      print_error(made.error().message);
      return kExitFailure;
    }
    auto content = node::options_to_config_json(node::NodeOptions{}).dump(2) + "\n";
    auto created = daemon::create_file_exclusively(paths.config_file, content, false);
    if (!created) {
      print_error(created.error().message);
      return kExitFailure;
    }
    if (created->already_exists) {
      print_error(paths.config_file.string() + " already exists; not overwriting it");
      return kExitFailure;
    }
    std::printf("Wrote %s\n", paths.config_file.string().c_str());
    return kExitOk;
  }
  if (action == "show" || action == "validate") {
    ParsedArgs data_only;
    data_only.options.emplace_back("data", paths.data_dir.string());
    auto resolved = resolve_node_options(data_only);
    if (!resolved) {
      print_error(resolved.error().message);
      return kExitFailure;
    }
    if (action == "show") {
      auto json = node::options_to_config_json(resolved->options);
      json["key"] = node::effective_key_file(resolved->options).string();
      std::printf("%s\n", json.dump(2).c_str());
      return kExitOk;
    }
    if (auto valid = node::validate_for_start(resolved->options); !valid) {
      print_error(paths.config_file.string() + ": " + valid.error().message);
      return kExitFailure;
    }
    std::error_code ec;
    bool exists = std::filesystem::exists(paths.config_file, ec);
    std::printf("%s: %s\n", paths.config_file.string().c_str(),
                exists ? "valid" : "not present (the defaults apply)");
    return kExitOk;
  }
  print_error("unknown config action \"" + action + "\" (expected init, show or validate)");
  return kExitUsage;
}

}  // namespace an::app
