// keygen: create (or with -force replace) the node's key, of any libp2p key type.
#include <charconv>
#include <cstdio>
#include <string>

#include "app/cli.h"
#include "app/commands.h"
#include "daemon/paths.h"
#include "node/identity.h"
#include "p2p/crypto/key.h"

namespace an::app {
namespace {

Expected<unsigned> parse_rsa_bits(const std::string& text) {
  unsigned bits = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), bits);
  if (error != std::errc() || end != text.data() + text.size() || bits < p2p::kMinRsaBits ||
      bits > p2p::kMaxRsaBits) {
    return fail("invalid -bits \"" + text.substr(0, 40) + "\": an RSA key size is " +
                std::to_string(p2p::kMinRsaBits) + " to " + std::to_string(p2p::kMaxRsaBits) +
                " bits");
  }
  return bits;
}

}  // namespace

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
  p2p::KeyType type = p2p::KeyType::kEd25519;
  if (auto type_text = parsed->value("type")) {
    auto parsed_type = p2p::parse_key_type(*type_text);
    if (!parsed_type) {
      print_error("invalid -type: " + parsed_type.error().message);
      return kExitUsage;
    }
    type = *parsed_type;
  }
  unsigned rsa_bits = p2p::kDefaultRsaBits;
  if (auto bits_text = parsed->value("bits")) {
    if (type != p2p::KeyType::kRsa) {
      print_error("-bits is for RSA keys only (-type rsa)");
      return kExitUsage;
    }
    auto bits = parse_rsa_bits(*bits_text);
    if (!bits) {
      print_error(bits.error().message);
      return kExitUsage;
    }
    rsa_bits = *bits;
  }
  const bool force = parsed->has("force");
  auto identity = node::generate_identity(key_file, force, type, rsa_bits);
  if (!identity) {
    print_error(identity.error().message);
    return kExitFailure;
  }
  std::printf("Key file:    %s\n", key_file.string().c_str());
  std::printf("Key type:    %s\n", std::string(p2p::key_type_name(identity->key.type())).c_str());
  std::printf("Node ID:     %s\n", identity->peer_id.to_string().c_str());
  return kExitOk;
}

}  // namespace an::app
