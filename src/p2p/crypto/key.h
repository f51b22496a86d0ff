// libp2p identity keys of every type of the peer-ids spec: Ed25519 (the default, on the fast
// code of ed25519.h), RSA (PKCS#1 v1.5 with SHA-256, 2048 to 8192 bits), Secp256k1 and ECDSA
// P-256 (both SHA-256, DER signatures), on top of OpenSSL 3. Keys are immutable values: any
// thread may use one, concurrently too; copies share their OpenSSL handle.
#pragma once

#include <memory>
#include <optional>

#include "p2p/crypto/ed25519.h"
#include "p2p/crypto/keys.h"
#include "p2p/crypto/peer_id.h"
#include "p2p/multiformats/varint.h"
#include "util/expected.h"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY, kept out of this header.

namespace an::p2p {

inline constexpr unsigned kMinRsaBits = 2048;
inline constexpr unsigned kMaxRsaBits = 8192;
inline constexpr unsigned kDefaultRsaBits = 2048;

// "ed25519", "rsa", "secp256k1", "ecdsa" (case-insensitive), as on the command line.
Expected<KeyType> parse_key_type(std::string_view text);

class PublicKey {
 public:
  // A libp2p PublicKey protobuf of any key type. The key itself is checked: RSA size limits,
  // points on the right curve, DER with nothing after it. Errors start with
  // "not a libp2p public key: " or "invalid <type> public key: ".
  static Expected<PublicKey> from_protobuf(ByteView message);
  static PublicKey from_ed25519(const Ed25519PublicKey& key);

  KeyType type() const { return type_; }
  // The canonical encoding (what go-libp2p marshals): a Secp256k1 key received uncompressed is
  // written compressed. Peer IDs hash these bytes.
  const Bytes& protobuf() const { return protobuf_; }
  const PeerId& peer_id() const { return peer_id_; }
  // The Ed25519 key, for Ed25519 keys only.
  const std::optional<Ed25519PublicKey>& ed25519() const { return ed25519_; }

  // False for a wrong or malformed signature.
  bool verify(ByteView message, ByteView signature) const;

  bool operator==(const PublicKey& other) const { return protobuf_ == other.protobuf_; }

 private:
  PublicKey(KeyType type, Bytes protobuf, PeerId peer_id)
      : type_(type), protobuf_(std::move(protobuf)), peer_id_(std::move(peer_id)) {}

  KeyType type_;
  Bytes protobuf_;
  PeerId peer_id_;
  std::optional<Ed25519PublicKey> ed25519_;
  std::shared_ptr<evp_pkey_st> key_;  // every other type

  friend class PrivateKey;
  friend struct KeyBuilder;
};

class PrivateKey {
 public:
  // A fresh key from OpenSSL's CSPRNG. `rsa_bits` is for RSA only (2048 to 8192).
  static Expected<PrivateKey> generate(KeyType type, unsigned rsa_bits = kDefaultRsaBits);
  // A libp2p PrivateKey protobuf (as go-libp2p and js-libp2p store keys): Ed25519 64 or 96
  // bytes, RSA PKCS#1 DER, Secp256k1 the 32-byte scalar, ECDSA SEC1 DER. A key whose public
  // part does not match its private part is refused.
  static Expected<PrivateKey> from_protobuf(ByteView message);
  static PrivateKey from_ed25519(Ed25519PrivateKey key);

  KeyType type() const { return public_key_.type(); }
  const PublicKey& public_key() const { return public_key_; }
  const PeerId& peer_id() const { return public_key_.peer_id(); }

  // The libp2p PrivateKey protobuf. It holds the secret: wipe it with secure_wipe when done.
  Expected<Bytes> to_protobuf() const;

  // Ed25519: 64 bytes; RSA: the modulus size; ECDSA and Secp256k1: DER (Secp256k1 with low S,
  // as Bitcoin's rules ask).
  Expected<Bytes> sign(ByteView message) const;

 private:
  explicit PrivateKey(PublicKey public_key) : public_key_(std::move(public_key)) {}

  PublicKey public_key_;
  std::optional<Ed25519PrivateKey> ed25519_;
  std::shared_ptr<evp_pkey_st> key_;  // every other type

  friend struct KeyBuilder;
};

}  // namespace an::p2p
