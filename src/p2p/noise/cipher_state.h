// Noise CipherState for ChaChaPoly (rev 34, 5.1 and 12.3): a key, a 64-bit nonce, one OpenSSL
// context. One thread at a time per object; send and receive states may live on two threads.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>

#include "p2p/multiformats/varint.h"
#include "util/expected.h"

struct evp_cipher_ctx_st;  // OpenSSL's EVP_CIPHER_CTX, kept out of this header.

namespace an::p2p::noise {

inline constexpr std::size_t kKeySize = 32;
inline constexpr std::size_t kTagSize = 16;
// Every Noise message, handshake or transport, fits the 2-byte length prefix of libp2p framing.
inline constexpr std::size_t kMaxMessage = 65535;
inline constexpr std::size_t kMaxCiphertext = kMaxMessage;
inline constexpr std::size_t kMaxPlaintext = kMaxCiphertext - kTagSize;
// Noise reserves the all-ones nonce (section 5.1): a state that reaches it refuses to go on.
inline constexpr std::uint64_t kMaxNonce = std::numeric_limits<std::uint64_t>::max();

using CipherKey = std::array<std::uint8_t, kKeySize>;

class CipherState {
 public:
  // A state without a key: encrypt_with_ad/decrypt_with_ad copy bytes unchanged (what Noise
  // wants before the first MixKey); the transport calls encrypt/decrypt refuse to work.
  CipherState();
  CipherState(CipherState&& other) noexcept;
  CipherState& operator=(CipherState&& other) noexcept;
  CipherState(const CipherState&) = delete;
  CipherState& operator=(const CipherState&) = delete;
  ~CipherState();  // OpenSSL wipes the key schedule when it frees the context

  // Noise InitializeKey: a new key, nonce back to 0. Fails only when OpenSSL does, and then
  // leaves the state without a key.
  Expected<void> initialize_key(const CipherKey& key);
  bool has_key() const { return has_key_; }

  // The nonce of the next message, i.e. how many messages went through so far.
  std::uint64_t nonce() const { return nonce_; }
  // Noise SetNonce. Public so that tests can reach the end of the nonce space.
  void set_nonce(std::uint64_t nonce) { nonce_ = nonce; }

  // Noise EncryptWithAd: writes plaintext.size() + kTagSize bytes to `out` (plaintext.size()
  // without a key) and returns that count. `out` may equal plaintext.data() (in place) but must
  // not overlap it otherwise. Fails when the nonce is exhausted or OpenSSL fails.
  Expected<std::size_t> encrypt_with_ad(ByteView associated_data, ByteView plaintext,
                                        std::uint8_t* out);
  // Noise DecryptWithAd: writes ciphertext.size() - kTagSize bytes to `out`. On a bad tag the
  // nonce is not advanced and `out` is wiped, so no unauthenticated byte is left behind.
  Expected<std::size_t> decrypt_with_ad(ByteView associated_data, ByteView ciphertext,
                                        std::uint8_t* out);

  // Transport messages (libp2p: empty associated data). Refuse a state without a key and
  // sizes beyond kMaxPlaintext / kMaxCiphertext. Same buffer rules as above; the hot path
  // allocates nothing.
  Expected<std::size_t> encrypt(ByteView plaintext, std::uint8_t* out);
  Expected<std::size_t> decrypt(ByteView ciphertext, std::uint8_t* out);
  // Allocating conveniences for callers off the hot path.
  Expected<Bytes> encrypt(ByteView plaintext);
  Expected<Bytes> decrypt(ByteView ciphertext);

 private:
  struct ContextDeleter {
    void operator()(evp_cipher_ctx_st* context) const;
  };

  Expected<void> start_message(bool encrypting, ByteView associated_data);

  std::uint64_t nonce_ = 0;
  bool has_key_ = false;
  // Keyed once per key; each message only sets the nonce, which spares OpenSSL the key setup.
  // The key itself lives only in there: no second copy to wipe.
  std::unique_ptr<evp_cipher_ctx_st, ContextDeleter> context_;
};

}  // namespace an::p2p::noise
