// keygen: create (or with -force replace) the node's key.
#include <cstdio>

#include "app/cli.h"
#include "app/commands.h"
#include "daemon/paths.h"
#include "node/identity.h"

namespace an::app {

int command_keygen(const Words& words) {
  int exit_code = kExitOk;
  auto parsed = parse_or_report("keygen", words, exit_code);
  if (!parsed) return exit_code;
  daemon::DataPaths paths(data_dir_option(*parsed));
  auto key_file = paths.default_key_file;
  if (auto key = parsed->value("key")) {
    if (key->empty()) {
      print_error("invalid -key: the file name must not be empty");
      return kExitUsage;
    }
    key_file = daemon::make_absolute(*key);
  }
  const bool force = parsed->has("force");
  auto identity = node::generate_identity(key_file, force);
  if (!identity) {
    print_error(identity.error().message);
    return kExitFailure;
  }
  std::printf("Key file:    %s\n", key_file.string().c_str());
  std::printf("Node ID:     %s\n", identity->peer_id.to_string().c_str());
  return kExitOk;
}

}  // namespace an::app
