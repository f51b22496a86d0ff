// Ed25519 keys (RFC 8032) on top of OpenSSL 3. Keys are immutable values: any thread may use
// one, concurrently too; each object owns its OpenSSL handle (copies share it by refcount).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <utility>

#include "p2p/multiformats/varint.h"
#include "util/expected.h"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY, kept out of this header.

namespace an::p2p {

inline constexpr std::size_t kEd25519SeedSize = 32;
inline constexpr std::size_t kEd25519PublicKeySize = 32;
inline constexpr std::size_t kEd25519SignatureSize = 64;

using Ed25519Seed = std::array<std::uint8_t, kEd25519SeedSize>;
using Ed25519Signature = std::array<std::uint8_t, kEd25519SignatureSize>;

class Ed25519PublicKey {
 public:
  // Any 32 bytes are accepted; a value that is not a curve point simply never verifies.
  static Expected<Ed25519PublicKey> from_bytes(ByteView raw);

  const std::array<std::uint8_t, kEd25519PublicKeySize>& bytes() const { return bytes_; }

  // False for a wrong signature, a signature of the wrong size, or a key that is not a point.
  bool verify(ByteView message, ByteView signature) const;

  bool operator==(const Ed25519PublicKey&) const = default;

 private:
  explicit Ed25519PublicKey(const std::array<std::uint8_t, kEd25519PublicKeySize>& raw)
      : bytes_(raw) {}
  std::array<std::uint8_t, kEd25519PublicKeySize> bytes_{};

  friend class Ed25519PrivateKey;
};

class Ed25519PrivateKey {
 public:
  // A fresh key from OpenSSL's CSPRNG.
  static Expected<Ed25519PrivateKey> generate();
  // The RFC 8032 "private key": the 32-byte seed the signing scalar is derived from.
  static Expected<Ed25519PrivateKey> from_seed(ByteView seed);

  Ed25519PrivateKey(const Ed25519PrivateKey& other);
  Ed25519PrivateKey& operator=(const Ed25519PrivateKey& other);
  Ed25519PrivateKey(Ed25519PrivateKey&&) noexcept = default;
  Ed25519PrivateKey& operator=(Ed25519PrivateKey&&) noexcept = default;
  ~Ed25519PrivateKey();

  const Ed25519PublicKey& public_key() const { return public_key_; }

  // The secret seed, for serialization only. The caller should wipe its copy
  // (OPENSSL_cleanse or secure_wipe of keys.h) once done.
  Expected<Ed25519Seed> seed() const;

  Expected<Ed25519Signature> sign(ByteView message) const;

 private:
  struct KeyDeleter {
    void operator()(evp_pkey_st* key) const;
  };
  using KeyHandle = std::unique_ptr<evp_pkey_st, KeyDeleter>;

  Ed25519PrivateKey(KeyHandle key, const Ed25519PublicKey& public_key)
      : key_(std::move(key)), public_key_(public_key) {}
  static Expected<Ed25519PrivateKey> from_handle(KeyHandle key);

  KeyHandle key_;
  Ed25519PublicKey public_key_;
};

}  // namespace an::p2p
