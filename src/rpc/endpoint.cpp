#include "rpc/endpoint.h"

#include <openssl/rand.h>

#include <fstream>
#include <sstream>

#include "daemon/platform.h"
#include "util/bytes.h"

namespace an::rpc {
namespace {

bool is_token_character(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
         c == '_' || c == '.' || c == '~' || c == '+' || c == '/' || c == '=';
}

// Bearer tokens are RFC 6750 token68 characters; a trailing newline (as editors write) is fine.
Expected<std::string> parse_token(const std::filesystem::path& path, std::string content) {
  while (!content.empty() && (content.back() == '\n' || content.back() == '\r'))
    content.pop_back();
  if (content.empty()) return fail(path.string() + " is empty (delete it to get a new token)");
  if (content.size() > 4096) return fail(path.string() + " is too long to be a token");
  for (char c : content) {
    if (!is_token_character(c)) {
      return fail(path.string() + " is not a token (only letters, digits and -._~+/= allowed)");
    }
  }
  return content;
}

Expected<std::string> read_whole_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail("cannot read " + path.string());
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) return fail("cannot read " + path.string());
  return content.str();
}

}  // namespace

bool is_loopback_host(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

ApiEndpoint choose_endpoint(const daemon::DataPaths& paths, const std::string& grpc_option) {
  ApiEndpoint endpoint;
  if (!grpc_option.empty()) {
    endpoint.bind_address = grpc_option;
    auto host = std::string_view(grpc_option).substr(0, grpc_option.rfind(':'));
    endpoint.requires_token = !is_loopback_host(host);
    return endpoint;
  }
#if defined(_WIN32)
  endpoint.bind_address = "127.0.0.1:0";
#else
  const std::string socket = paths.api_socket.string();
  if (socket.size() <= kMaxUnixSocketPath) {
    endpoint.bind_address = "unix:" + socket;
    endpoint.socket_path = paths.api_socket;
  } else {
    endpoint.bind_address = "127.0.0.1:0";
  }
#endif
  return endpoint;
}

Expected<std::optional<std::string>> read_token(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::optional<std::string>();
  auto content = read_whole_file(path);
  if (!content) return tl::unexpected(content.error());
  auto token = parse_token(path, std::move(*content));
  if (!token) return tl::unexpected(token.error());
  return std::optional<std::string>(std::move(*token));
}

Expected<std::string> load_or_create_token(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    unsigned char random[kTokenBytes];
    if (RAND_bytes(random, sizeof random) != 1) return fail("cannot generate an API token");
    std::string token = to_hex(ByteView(random, sizeof random));
    auto created = daemon::create_file_exclusively(path, token + "\n", true);
    if (!created) return tl::unexpected(created.error());
    // Another process created it first: use theirs.
    if (!created->already_exists) return token;
  }
  if (const std::string loose = daemon::describe_loose_permissions(path); !loose.empty()) {
    return fail(loose + "; the API token must be private (" +
                daemon::private_permissions_fix(path) + ")");
  }
  auto token = read_token(path);
  if (!token) return tl::unexpected(token.error());
  if (!token->has_value()) return fail(path.string() + " disappeared while being read");
  return std::move(**token);
}

}  // namespace an::rpc
