// Peer IDs: the multihash of a peer's encoded public key, with its two text forms (base58btc
// multihash and CIDv1). Immutable values: any thread may use them; each owns its bytes.
#pragma once

#include <compare>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "p2p/crypto/ed25519.h"
#include "p2p/multiformats/varint.h"
#include "util/expected.h"

namespace an::p2p {

class PublicKey;

// The libp2p-key multicodec of CIDs that name peers.
inline constexpr std::uint64_t kLibp2pKeyCodec = 0x72;
// Encoded public keys up to this size are inlined (identity multihash); longer ones are hashed.
inline constexpr std::size_t kMaxInlineKeyLength = 42;

class PeerId {
 public:
  // Cannot fail: an encoded Ed25519 key (36 bytes) is always inlined.
  static PeerId from_public_key(const Ed25519PublicKey& key);
  // Any key type; the same as key.peer_id().
  static PeerId from_public_key(const PublicKey& key);

  // From a PublicKey protobuf of any key type (RSA peers too): identity multihash when it is
  // at most 42 bytes, sha2-256 otherwise. Only the message structure is checked.
  static Expected<PeerId> from_encoded_public_key(ByteView encoded_public_key);

  // From multihash bytes (as in binary multiaddrs): an identity multihash of at most 42 bytes
  // or a sha2-256 multihash, nothing else.
  static Expected<PeerId> from_multihash(ByteView multihash);

  // Either text form: a base58btc multihash ("12D3KooW...", "Qm...", "16Uiu2..."), or a CIDv1
  // with the libp2p-key codec in multibase base32 ('b'), base36 ('k') or base58btc ('z').
  static Expected<PeerId> parse(std::string_view text);

  // The canonical text form, base58btc.
  std::string to_base58() const;
  std::string to_string() const { return to_base58(); }
  // CIDv1, libp2p-key, multibase base32 ("bafz...").
  std::string to_cid_text() const;

  // The multihash bytes.
  const Bytes& bytes() const { return multihash_; }

  // True when the public key is inlined in the ID (identity multihash).
  bool has_inline_public_key() const;
  // The Ed25519 key inlined in the ID; an error for hashed IDs and for other key types.
  Expected<Ed25519PublicKey> ed25519_public_key() const;
  // The key inlined in the ID, of any type (Ed25519 and Secp256k1 keys fit); an error for
  // hashed IDs.
  Expected<PublicKey> inline_public_key() const;

  bool operator==(const PeerId&) const = default;
  std::strong_ordering operator<=>(const PeerId&) const = default;

 private:
  explicit PeerId(Bytes multihash) : multihash_(std::move(multihash)) {}
  Bytes multihash_;
};

}  // namespace an::p2p

template <>
struct std::hash<an::p2p::PeerId> {
  std::size_t operator()(const an::p2p::PeerId& id) const noexcept;
};
