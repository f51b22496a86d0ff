#include "p2p/noise/symmetric_state.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <memory>
#include <string>

#include "p2p/crypto/openssl.h"

namespace an::p2p::noise::detail {
namespace {

using openssl::DigestContextDeleter;

struct MacDeleter {
  void operator()(EVP_MAC* mac) const { EVP_MAC_free(mac); }
};
struct MacContextDeleter {
  void operator()(EVP_MAC_CTX* context) const { EVP_MAC_CTX_free(context); }
};

// Fetched once: fetching HMAC costs a provider lookup, and the handshake uses it a dozen times.
// EVP_MAC objects are safe to share between threads once fetched.
EVP_MAC* hmac_algorithm() {
  static const std::unique_ptr<EVP_MAC, MacDeleter> mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  return mac.get();
}

template <class T>
void cleanse(T& secret) {
  OPENSSL_cleanse(secret.data(), secret.size());
}

}  // namespace

Expected<Hash> sha256(ByteView first, ByteView second) {
  std::unique_ptr<EVP_MD_CTX, DigestContextDeleter> context(EVP_MD_CTX_new());
  Hash out{};
  unsigned int size = 0;
  if (!context || EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(context.get(), first.data(), first.size()) != 1 ||
      EVP_DigestUpdate(context.get(), second.data(), second.size()) != 1 ||
      EVP_DigestFinal_ex(context.get(), out.data(), &size) != 1 || size != out.size()) {
    return fail(openssl::failure("SHA-256"));
  }
  return out;
}

Expected<Hash> hmac_sha256(ByteView key, ByteView first, ByteView second) {
  EVP_MAC* mac = hmac_algorithm();
  if (!mac) return fail(openssl::failure("fetching HMAC"));
  std::unique_ptr<EVP_MAC_CTX, MacContextDeleter> context(EVP_MAC_CTX_new(mac));
  char digest_name[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_utf8_string("digest", digest_name, 0), OSSL_PARAM_END};
  Hash out{};
  std::size_t size = 0;
  // An empty key is legal HMAC; OpenSSL wants a non-null pointer for it.
  static const std::uint8_t kNoKey = 0;
  if (!context ||
      EVP_MAC_init(context.get(), key.empty() ? &kNoKey : key.data(), key.size(), params) != 1 ||
      EVP_MAC_update(context.get(), first.data(), first.size()) != 1 ||
      EVP_MAC_update(context.get(), second.data(), second.size()) != 1 ||
      EVP_MAC_final(context.get(), out.data(), &size, out.size()) != 1 || size != out.size()) {
    return fail(openssl::failure("HMAC-SHA256"));
  }
  return out;
}

Expected<std::pair<Hash, Hash>> hkdf2(ByteView chaining_key, ByteView input_key_material) {
  auto temp_key = hmac_sha256(chaining_key, input_key_material);
  if (!temp_key) return tl::unexpected(temp_key.error());
  static const std::uint8_t kOne = 0x01;
  static const std::uint8_t kTwo = 0x02;
  auto output1 = hmac_sha256(*temp_key, ByteView(&kOne, 1));
  Expected<Hash> output2 = output1 ? hmac_sha256(*temp_key, *output1, ByteView(&kTwo, 1))
                                   : tl::unexpected(output1.error());
  cleanse(*temp_key);
  if (!output2) {
    if (output1) cleanse(*output1);
    return tl::unexpected(output2.error());
  }
  std::pair<Hash, Hash> outputs{*output1, *output2};
  cleanse(*output1);
  cleanse(*output2);
  return outputs;
}

Expected<SymmetricState> SymmetricState::initialize(std::string_view protocol_name) {
  SymmetricState state;
  const ByteView name(reinterpret_cast<const std::uint8_t*>(protocol_name.data()),
                      protocol_name.size());
  if (name.size() <= kHashSize) {
    std::copy(name.begin(), name.end(), state.hash_.begin());  // zero-padded
  } else {
    auto hashed = sha256(name);
    if (!hashed) return tl::unexpected(hashed.error());
    state.hash_ = *hashed;
  }
  state.chaining_key_ = state.hash_;
  return state;
}

SymmetricState::~SymmetricState() {
  cleanse(chaining_key_);
  cleanse(hash_);
}

Expected<void> SymmetricState::mix_hash(ByteView data) {
  auto mixed = sha256(hash_, data);
  if (!mixed) return tl::unexpected(mixed.error());
  hash_ = *mixed;
  return {};
}

Expected<void> SymmetricState::mix_key(ByteView input_key_material) {
  auto outputs = hkdf2(chaining_key_, input_key_material);
  if (!outputs) return tl::unexpected(outputs.error());
  chaining_key_ = outputs->first;
  // HASHLEN is 32 = the key size, so no truncation is needed.
  auto keyed = cipher_.initialize_key(outputs->second);
  cleanse(outputs->first);
  cleanse(outputs->second);
  return keyed;
}

Expected<void> SymmetricState::encrypt_and_hash(ByteView plaintext, Bytes& out) {
  const std::size_t start = out.size();
  out.resize(start + plaintext.size() + (cipher_.has_key() ? kTagSize : 0));
  auto written = cipher_.encrypt_with_ad(hash_, plaintext, out.data() + start);
  if (!written) {
    out.resize(start);
    return tl::unexpected(written.error());
  }
  return mix_hash(ByteView(out).subspan(start, *written));
}

Expected<void> SymmetricState::decrypt_and_hash(ByteView ciphertext, Bytes& out) {
  const std::size_t start = out.size();
  out.resize(start + ciphertext.size());
  auto written = cipher_.decrypt_with_ad(hash_, ciphertext, out.data() + start);
  if (!written) {
    out.resize(start);
    return tl::unexpected(written.error());
  }
  out.resize(start + *written);
  return mix_hash(ciphertext);
}

Expected<std::pair<CipherState, CipherState>> SymmetricState::split() {
  auto outputs = hkdf2(chaining_key_, {});
  if (!outputs) return tl::unexpected(outputs.error());
  std::pair<CipherState, CipherState> states;
  auto first = states.first.initialize_key(outputs->first);
  auto second = states.second.initialize_key(outputs->second);
  cleanse(outputs->first);
  cleanse(outputs->second);
  if (!first) return tl::unexpected(first.error());
  if (!second) return tl::unexpected(second.error());
  return states;
}

}  // namespace an::p2p::noise::detail
