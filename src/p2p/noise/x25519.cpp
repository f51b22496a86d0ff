#include "p2p/noise/x25519.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <string>

#include "p2p/crypto/openssl.h"

namespace an::p2p::noise {
namespace {

using openssl::KeyContext;

struct PublicKeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};

bool all_zero(const SharedSecret& secret) {
  std::uint8_t accumulated = 0;
  for (std::uint8_t byte : secret)
    accumulated |= byte;
  return accumulated == 0;
}

}  // namespace

void X25519KeyPair::KeyDeleter::operator()(evp_pkey_st* key) const {
  EVP_PKEY_free(key);
}

Expected<X25519KeyPair> X25519KeyPair::from_handle(evp_pkey_st* raw_key) {
  std::shared_ptr<evp_pkey_st> key(raw_key, KeyDeleter{});
  X25519PublicKey public_key{};
  std::size_t size = public_key.size();
  if (EVP_PKEY_get_raw_public_key(key.get(), public_key.data(), &size) != 1 ||
      size != public_key.size()) {
    return fail(openssl::failure("deriving the X25519 public key"));
  }
  return X25519KeyPair(std::move(key), public_key);
}

Expected<X25519KeyPair> X25519KeyPair::generate() {
  KeyContext context(EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, nullptr));
  EVP_PKEY* key = nullptr;
  if (!context || EVP_PKEY_keygen_init(context.get()) != 1 ||
      EVP_PKEY_keygen(context.get(), &key) != 1) {
    return fail(openssl::failure("generating an X25519 key"));
  }
  return from_handle(key);
}

Expected<X25519KeyPair> X25519KeyPair::from_private(ByteView private_key) {
  if (private_key.size() != kX25519KeySize) {
    return fail("an X25519 private key is 32 bytes, not " + std::to_string(private_key.size()));
  }
  EVP_PKEY* key = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, private_key.data(),
                                               private_key.size());
  if (!key) return fail(openssl::failure("loading an X25519 private key"));
  return from_handle(key);
}

Expected<SharedSecret> X25519KeyPair::agree(ByteView remote_public_key) const {
  if (remote_public_key.size() != kX25519KeySize) {
    return fail("an X25519 public key is 32 bytes, not " +
                std::to_string(remote_public_key.size()));
  }
  std::unique_ptr<EVP_PKEY, PublicKeyDeleter> remote(EVP_PKEY_new_raw_public_key(
      EVP_PKEY_X25519, nullptr, remote_public_key.data(), remote_public_key.size()));
  if (!remote) return fail(openssl::failure("loading the remote X25519 public key"));
  KeyContext context(EVP_PKEY_CTX_new_from_pkey(nullptr, key_.get(), nullptr));
  if (!context || EVP_PKEY_derive_init(context.get()) != 1 ||
      EVP_PKEY_derive_set_peer(context.get(), remote.get()) != 1) {
    return fail(openssl::failure("setting up X25519 key agreement"));
  }
  SharedSecret secret{};
  std::size_t size = secret.size();
  const bool derived = EVP_PKEY_derive(context.get(), secret.data(), &size) == 1;
  ERR_clear_error();
  // OpenSSL itself refuses an all-zero result; check again so that the guarantee does not
  // hinge on a provider detail.
  if (!derived || size != secret.size() || all_zero(secret)) {
    OPENSSL_cleanse(secret.data(), secret.size());
    return fail(
        "X25519 key agreement failed: the remote public key is a low-order point "
        "(the shared secret would be all zeros)");
  }
  return secret;
}

}  // namespace an::p2p::noise
