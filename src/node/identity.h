// The node's key (Ed25519 by default; RSA, Secp256k1 and ECDSA too), in a private key file
// (libp2p PrivateKey protobuf, as go-libp2p writes it), and its peer ID. Any thread may call these;
// the caller owns the returned Identity.
#pragma once

#include <cstdint>
#include <filesystem>
#include <utility>

#include "p2p/crypto/key.h"
#include "p2p/crypto/peer_id.h"
#include "util/expected.h"

namespace an::node {

// Key files are a few dozen bytes; anything much larger is not a key file.
inline constexpr std::uintmax_t kMaxKeyFileSize = 64 * 1024;

struct Identity {
  p2p::PrivateKey key;
  p2p::PeerId peer_id;
};

// Loads the key file. Refuses (without touching the file) one that is missing, not a regular
// file, readable by group or others (checked before the content is read), larger than
// kMaxKeyFileSize, empty, corrupt, or holding a weak or invalid key (e.g. RSA under 2048 bits).
Expected<Identity> load_identity(const std::filesystem::path& key_file);

// Loads the key file or, when it does not exist, creates it (0600; a missing parent directory
// is created 0700) with a fresh Ed25519 key. Concurrent callers on the same missing file agree on
// one key: only one creation wins and the others load the winner's file. `second` is true for the
// caller whose key was written.
Expected<std::pair<Identity, bool>> load_or_create_identity(const std::filesystem::path& key_file);

// The keygen command: writes a fresh key of `type` (`rsa_bits` for RSA only, 2048 to 8192). An
// existing file (even a corrupt one) is only replaced when `force` is set; it is then kept as
// "<key_file>.bak", replacing an older backup.
Expected<Identity> generate_identity(const std::filesystem::path& key_file, bool force,
                                     p2p::KeyType type = p2p::KeyType::kEd25519,
                                     unsigned rsa_bits = p2p::kDefaultRsaBits);

}  // namespace an::node
