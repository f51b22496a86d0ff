#include "daemon/paths.h"

namespace an::daemon {

std::filesystem::path make_absolute(const std::filesystem::path& path) {
  std::error_code ec;
  auto absolute = std::filesystem::absolute(path, ec);
  if (ec) absolute = path;
  auto normal = absolute.lexically_normal();
  // "dir/" normalises to "dir/" with an empty last element; drop it so names compare equal.
  if (!normal.has_filename() && normal.has_parent_path() && normal != normal.root_path()) {
    normal = normal.parent_path();
  }
  return normal;
}

DataPaths::DataPaths(const std::filesystem::path& dir)
    : data_dir(make_absolute(dir)),
      logs_dir(data_dir / "logs"),
      log_file(logs_dir / "node.log"),
      pid_file(data_dir / "node.pid"),
      status_file(data_dir / "node.status"),
      lock_file(data_dir / "node.lock"),
      config_file(data_dir / "config.json"),
      keys_dir(data_dir / "keys"),
      default_key_file(keys_dir / "node.key"),
      api_socket(data_dir / "api.sock"),
      api_token(data_dir / "api.token") {}

}  // namespace an::daemon
