// Where everything lives inside a data directory (SPEC §2). Plain value type; any thread.
#pragma once

#include <filesystem>

namespace an::daemon {

struct DataPaths {
  // `data_dir` is made absolute (and lexically normal) so that a detached node keeps working
  // whatever its working directory is.
  explicit DataPaths(const std::filesystem::path& data_dir);

  std::filesystem::path data_dir;
  std::filesystem::path logs_dir;     // DIR/logs
  std::filesystem::path log_file;     // DIR/logs/node.log
  std::filesystem::path pid_file;     // DIR/node.pid
  std::filesystem::path status_file;  // DIR/node.status
  // The exclusive lock is a file of its own: node.pid is replaced atomically (temp + rename),
  // and a lock on a file that gets replaced protects nothing.
  std::filesystem::path lock_file;         // DIR/node.lock
  std::filesystem::path config_file;       // DIR/config.json
  std::filesystem::path keys_dir;          // DIR/keys
  std::filesystem::path default_key_file;  // DIR/keys/node.key
  std::filesystem::path api_socket;        // DIR/api.sock, the control API's default endpoint
  std::filesystem::path api_token;         // DIR/api.token, bearer token for remote API clients
};

// Absolute, lexically normal form of `path` relative to the current directory.
std::filesystem::path make_absolute(const std::filesystem::path& path);

}  // namespace an::daemon
