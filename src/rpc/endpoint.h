// Where a node's control API listens and how its callers authenticate (SPEC §5): the endpoint
// chosen from the data directory and -grpc, and the bearer token file. Any thread.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/paths.h"
#include "util/expected.h"

namespace an::rpc {

// Longest Unix socket path the kernel accepts: sun_path holds the path and its final NUL in 108
// bytes on Linux (and Windows), 104 on macOS and the BSDs.
#if defined(__linux__) || defined(_WIN32)
inline constexpr std::size_t kMaxUnixSocketPath = 107;
#else
inline constexpr std::size_t kMaxUnixSocketPath = 103;
#endif
// Random bytes in a new api.token (written as hex).
inline constexpr std::size_t kTokenBytes = 32;

struct ApiEndpoint {
  // Address for the gRPC server: "unix:/abs/DIR/api.sock", "127.0.0.1:0" or the -grpc value.
  std::string bind_address;
  // Set when the endpoint is a Unix domain socket.
  std::optional<std::filesystem::path> socket_path;
  // A non-loopback TCP bind: calls must carry the token of DIR/api.token.
  bool requires_token = false;
};

// The default is the socket DIR/api.sock, or loopback TCP on an ephemeral port when that path
// is too long for a socket. `grpc_option` ("HOST:PORT", validated by the node options) binds
// TCP instead.
ApiEndpoint choose_endpoint(const daemon::DataPaths& paths, const std::string& grpc_option);

// 127.0.0.0/8, ::1 and "localhost" (with or without IPv6 brackets).
bool is_loopback_host(std::string_view host);

// The token of DIR/api.token, created (0600, random) when missing. An existing file is used as
// it is, but refused when it is empty, malformed or readable by others; it is never rewritten.
Expected<std::string> load_or_create_token(const std::filesystem::path& path);

// For clients: the token when the file exists, nullopt when it does not.
Expected<std::optional<std::string>> read_token(const std::filesystem::path& path);

}  // namespace an::rpc
