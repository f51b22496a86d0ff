#include "p2p/crypto/ed25519.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <algorithm>
#include <string>

#include "p2p/crypto/openssl.h"

namespace an::p2p {
namespace {

using openssl::DigestContext;
using openssl::KeyContext;

}  // namespace

Expected<Ed25519PublicKey> Ed25519PublicKey::from_bytes(ByteView raw) {
  if (raw.size() != kEd25519PublicKeySize) {
    return fail("an Ed25519 public key is 32 bytes, not " + std::to_string(raw.size()));
  }
  std::array<std::uint8_t, kEd25519PublicKeySize> bytes{};
  std::copy(raw.begin(), raw.end(), bytes.begin());
  return Ed25519PublicKey(bytes);
}

bool Ed25519PublicKey::verify(ByteView message, ByteView signature) const {
  if (signature.size() != kEd25519SignatureSize) return false;
  std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> key(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, bytes_.data(), bytes_.size()),
      EVP_PKEY_free);
  DigestContext context(EVP_MD_CTX_new());
  const bool verified =
      key && context &&
      EVP_DigestVerifyInit(context.get(), nullptr, nullptr, nullptr, key.get()) == 1 &&
      EVP_DigestVerify(context.get(), signature.data(), signature.size(), message.data(),
                       message.size()) == 1;
  ERR_clear_error();  // A bad signature leaves an entry; it is an answer, not a fault.
  return verified;
}

void Ed25519PrivateKey::KeyDeleter::operator()(evp_pkey_st* key) const {
  EVP_PKEY_free(key);
}

Expected<Ed25519PrivateKey> Ed25519PrivateKey::from_handle(KeyHandle key) {
  std::array<std::uint8_t, kEd25519PublicKeySize> public_bytes{};
  std::size_t size = public_bytes.size();
  if (EVP_PKEY_get_raw_public_key(key.get(), public_bytes.data(), &size) != 1 ||
      size != public_bytes.size()) {
    return fail(openssl::failure("deriving the Ed25519 public key"));
  }
  return Ed25519PrivateKey(std::move(key), Ed25519PublicKey(public_bytes));
}

Expected<Ed25519PrivateKey> Ed25519PrivateKey::generate() {
  KeyContext context(EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr));
  EVP_PKEY* raw_key = nullptr;
  if (!context || EVP_PKEY_keygen_init(context.get()) != 1 ||
      EVP_PKEY_keygen(context.get(), &raw_key) != 1) {
    return fail(openssl::failure("generating an Ed25519 key"));
  }
  return from_handle(KeyHandle(raw_key));
}

Expected<Ed25519PrivateKey> Ed25519PrivateKey::from_seed(ByteView seed) {
  if (seed.size() != kEd25519SeedSize) {
    return fail("an Ed25519 private key seed is 32 bytes, not " + std::to_string(seed.size()));
  }
  KeyHandle key(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size()));
  if (!key) return fail(openssl::failure("loading an Ed25519 private key"));
  return from_handle(std::move(key));
}

Ed25519PrivateKey::Ed25519PrivateKey(const Ed25519PrivateKey& other)
    : public_key_(other.public_key_) {
  // EVP_PKEY is reference counted and immutable once built, so copies can share it.
  if (other.key_ && EVP_PKEY_up_ref(other.key_.get()) == 1) key_.reset(other.key_.get());
}

Ed25519PrivateKey& Ed25519PrivateKey::operator=(const Ed25519PrivateKey& other) {
  if (this != &other) *this = Ed25519PrivateKey(other);
  return *this;
}

Ed25519PrivateKey::~Ed25519PrivateKey() = default;

Expected<Ed25519Seed> Ed25519PrivateKey::seed() const {
  Ed25519Seed seed{};
  std::size_t size = seed.size();
  if (!key_ || EVP_PKEY_get_raw_private_key(key_.get(), seed.data(), &size) != 1 ||
      size != seed.size()) {
    OPENSSL_cleanse(seed.data(), seed.size());
    return fail(openssl::failure("reading the Ed25519 private key"));
  }
  return seed;
}

Expected<Ed25519Signature> Ed25519PrivateKey::sign(ByteView message) const {
  DigestContext context(EVP_MD_CTX_new());
  Ed25519Signature signature{};
  std::size_t size = signature.size();
  // Ed25519 hashes internally: one-shot EVP_DigestSign with no digest is the only way in.
  if (!key_ || !context ||
      EVP_DigestSignInit(context.get(), nullptr, nullptr, nullptr, key_.get()) != 1 ||
      EVP_DigestSign(context.get(), signature.data(), &size, message.data(), message.size()) != 1 ||
      size != signature.size()) {
    return fail(openssl::failure("Ed25519 signing"));
  }
  return signature;
}

}  // namespace an::p2p
