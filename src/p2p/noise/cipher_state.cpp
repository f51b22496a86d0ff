#include "p2p/noise/cipher_state.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <algorithm>
#include <string>

#include "p2p/crypto/openssl.h"

namespace an::p2p::noise {
namespace {

constexpr std::size_t kNonceSize = 12;

}  // namespace

void CipherState::ContextDeleter::operator()(evp_cipher_ctx_st* context) const {
  EVP_CIPHER_CTX_free(context);
}

CipherState::CipherState() = default;

CipherState::CipherState(CipherState&& other) noexcept
    : nonce_(other.nonce_), has_key_(other.has_key_), context_(std::move(other.context_)) {
  other.nonce_ = 0;
  other.has_key_ = false;
}

CipherState& CipherState::operator=(CipherState&& other) noexcept {
  if (this != &other) {
    nonce_ = other.nonce_;
    has_key_ = other.has_key_;
    context_ = std::move(other.context_);
    other.nonce_ = 0;
    other.has_key_ = false;
  }
  return *this;
}

CipherState::~CipherState() = default;

Expected<void> CipherState::initialize_key(const CipherKey& key) {
  nonce_ = 0;
  has_key_ = false;
  if (!context_) context_.reset(EVP_CIPHER_CTX_new());
  if (!context_ || EVP_CipherInit_ex2(context_.get(), EVP_chacha20_poly1305(), key.data(), nullptr,
                                      1, nullptr) != 1) {
    context_.reset();
    return fail(openssl::failure("setting the ChaCha20-Poly1305 key"));
  }
  has_key_ = true;
  return {};
}

Expected<void> CipherState::start_message(bool encrypting, ByteView associated_data) {
  if (nonce_ == kMaxNonce) {
    return fail(
        "noise cipher state: the nonce space is exhausted (2^64-1 messages); the "
        "connection must be closed");
  }
  // ChaChaPoly nonce (Noise section 12.3): 32 zero bits, then the counter in little-endian.
  std::uint8_t nonce[kNonceSize] = {};
  for (std::size_t i = 0; i < 8; ++i) {
    nonce[4 + i] = static_cast<std::uint8_t>(nonce_ >> (8 * i));
  }
  if (EVP_CipherInit_ex2(context_.get(), nullptr, nullptr, nonce, encrypting ? 1 : 0, nullptr) !=
      1) {
    return fail(openssl::failure("setting the ChaCha20-Poly1305 nonce"));
  }
  if (!associated_data.empty()) {
    int ignored = 0;
    if (EVP_CipherUpdate(context_.get(), nullptr, &ignored, associated_data.data(),
                         static_cast<int>(associated_data.size())) != 1) {
      return fail(openssl::failure("ChaCha20-Poly1305 associated data"));
    }
  }
  return {};
}

Expected<std::size_t> CipherState::encrypt_with_ad(ByteView associated_data, ByteView plaintext,
                                                   std::uint8_t* out) {
  if (!has_key_) {
    // Noise: without a key, EncryptWithAd returns the plaintext.
    if (!plaintext.empty() && out != plaintext.data()) {
      std::copy(plaintext.begin(), plaintext.end(), out);
    }
    return plaintext.size();
  }
  // Only OpenSSL's int lengths bound this; the callers keep far below.
  if (plaintext.size() > static_cast<std::size_t>(INT32_MAX) - kTagSize) {
    return fail("noise cipher state: plaintext of " + std::to_string(plaintext.size()) +
                " bytes is too large");
  }
  if (auto started = start_message(true, associated_data); !started)
    return tl::unexpected(started.error());
  int written = 0;
  if (!plaintext.empty() && EVP_CipherUpdate(context_.get(), out, &written, plaintext.data(),
                                             static_cast<int>(plaintext.size())) != 1) {
    return fail(openssl::failure("ChaCha20-Poly1305 encryption"));
  }
  int final_written = 0;
  if (EVP_CipherFinal_ex(context_.get(), out + written, &final_written) != 1 ||
      EVP_CIPHER_CTX_ctrl(context_.get(), EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kTagSize),
                          out + plaintext.size()) != 1) {
    return fail(openssl::failure("ChaCha20-Poly1305 encryption"));
  }
  ++nonce_;
  return plaintext.size() + kTagSize;
}

Expected<std::size_t> CipherState::decrypt_with_ad(ByteView associated_data, ByteView ciphertext,
                                                   std::uint8_t* out) {
  if (!has_key_) {
    if (!ciphertext.empty() && out != ciphertext.data()) {
      std::copy(ciphertext.begin(), ciphertext.end(), out);
    }
    return ciphertext.size();
  }
  if (ciphertext.size() < kTagSize) {
    return fail("noise: ciphertext of " + std::to_string(ciphertext.size()) +
                " bytes is shorter than the 16-byte authentication tag");
  }
  if (ciphertext.size() > static_cast<std::size_t>(INT32_MAX)) {
    return fail("noise cipher state: ciphertext of " + std::to_string(ciphertext.size()) +
                " bytes is too large");
  }
  const std::size_t plaintext_size = ciphertext.size() - kTagSize;
  // Copied out first: decrypting in place must not depend on the tag bytes staying put.
  std::uint8_t tag[kTagSize];
  std::copy(ciphertext.end() - kTagSize, ciphertext.end(), tag);
  if (auto started = start_message(false, associated_data); !started)
    return tl::unexpected(started.error());
  if (EVP_CIPHER_CTX_ctrl(context_.get(), EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kTagSize), tag) !=
      1) {
    return fail(openssl::failure("setting the ChaCha20-Poly1305 tag"));
  }
  int written = 0;
  if (plaintext_size > 0 && EVP_CipherUpdate(context_.get(), out, &written, ciphertext.data(),
                                             static_cast<int>(plaintext_size)) != 1) {
    OPENSSL_cleanse(out, plaintext_size);
    return fail(openssl::failure("ChaCha20-Poly1305 decryption"));
  }
  int final_written = 0;
  if (EVP_CipherFinal_ex(context_.get(), out + written, &final_written) != 1) {
    ERR_clear_error();  // a forged or corrupted message is an answer, not an OpenSSL fault
    OPENSSL_cleanse(out, plaintext_size);
    return fail(
        "noise: decryption failed: the message was corrupted or forged (bad "
        "authentication tag at nonce " +
        std::to_string(nonce_) + ")");
  }
  ++nonce_;
  return plaintext_size;
}

Expected<std::size_t> CipherState::encrypt(ByteView plaintext, std::uint8_t* out) {
  if (!has_key_)
    return fail("noise: cannot encrypt a transport message: the cipher state has no key");
  if (plaintext.size() > kMaxPlaintext) {
    return fail("noise: a transport message carries at most " + std::to_string(kMaxPlaintext) +
                " plaintext bytes, not " + std::to_string(plaintext.size()));
  }
  return encrypt_with_ad({}, plaintext, out);
}

Expected<std::size_t> CipherState::decrypt(ByteView ciphertext, std::uint8_t* out) {
  if (!has_key_)
    return fail("noise: cannot decrypt a transport message: the cipher state has no key");
  if (ciphertext.size() > kMaxCiphertext) {
    return fail("noise: a transport message is at most " + std::to_string(kMaxCiphertext) +
                " bytes, not " + std::to_string(ciphertext.size()));
  }
  return decrypt_with_ad({}, ciphertext, out);
}

Expected<Bytes> CipherState::encrypt(ByteView plaintext) {
  Bytes out(plaintext.size() + kTagSize);
  auto written = encrypt(plaintext, out.data());
  if (!written) return tl::unexpected(written.error());
  out.resize(*written);
  return out;
}

Expected<Bytes> CipherState::decrypt(ByteView ciphertext) {
  Bytes out(ciphertext.size() >= kTagSize ? ciphertext.size() - kTagSize : 0);
  auto written = decrypt(ciphertext, out.data());
  if (!written) return tl::unexpected(written.error());
  out.resize(*written);
  return out;
}

}  // namespace an::p2p::noise
