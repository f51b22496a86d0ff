// X25519 key pairs (RFC 7748) for Noise's static and ephemeral keys, on OpenSSL 3. Immutable
// values: any thread may use one, concurrently too; copies share the OpenSSL handle by refcount.
#pragma once

#include <array>
#include <cstdint>
#include <memory>

#include "p2p/multiformats/varint.h"
#include "util/expected.h"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY, kept out of this header.

namespace an::p2p::noise {

inline constexpr std::size_t kX25519KeySize = 32;
using X25519PublicKey = std::array<std::uint8_t, kX25519KeySize>;
using SharedSecret = std::array<std::uint8_t, kX25519KeySize>;

class X25519KeyPair {
 public:
  // A fresh key pair from OpenSSL's CSPRNG. libp2p nodes make one static pair per process.
  static Expected<X25519KeyPair> generate();
  // From the 32 private bytes (clamping is X25519's business, any 32 bytes are a key).
  static Expected<X25519KeyPair> from_private(ByteView private_key);

  const X25519PublicKey& public_key() const { return public_key_; }

  // DH(our private key, remote public key). Rejects a remote key that is not 32 bytes and an
  // all-zero result, which only low-order points (e.g. the all-zero key) produce: such a
  // "shared" secret is known to everyone. The caller should OPENSSL_cleanse the result.
  Expected<SharedSecret> agree(ByteView remote_public_key) const;

 private:
  struct KeyDeleter {
    void operator()(evp_pkey_st* key) const;
  };
  X25519KeyPair(std::shared_ptr<evp_pkey_st> key, const X25519PublicKey& public_key)
      : key_(std::move(key)), public_key_(public_key) {}
  static Expected<X25519KeyPair> from_handle(evp_pkey_st* key);

  std::shared_ptr<evp_pkey_st> key_;  // OpenSSL wipes the private key when it frees it
  X25519PublicKey public_key_{};
};

}  // namespace an::p2p::noise
