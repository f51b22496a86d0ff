// Noise SymmetricState (rev 34, 5.2), SHA-256 + ChaChaPoly: internal to the handshake and its
// tests. One object per handshake, one thread at a time; it wipes its secrets on destruction.
#pragma once

#include <array>
#include <string_view>
#include <utility>

#include "p2p/multiformats/varint.h"
#include "p2p/noise/cipher_state.h"
#include "util/expected.h"

namespace an::p2p::noise::detail {

inline constexpr std::size_t kHashSize = 32;
using Hash = std::array<std::uint8_t, kHashSize>;

Expected<Hash> sha256(ByteView first, ByteView second = {});
Expected<Hash> hmac_sha256(ByteView key, ByteView first, ByteView second = {});
// Noise HKDF(chaining_key, input_key_material, 2): the two outputs.
Expected<std::pair<Hash, Hash>> hkdf2(ByteView chaining_key, ByteView input_key_material);

class SymmetricState {
 public:
  // Noise InitializeSymmetric. Fails only when OpenSSL does.
  static Expected<SymmetricState> initialize(std::string_view protocol_name);

  SymmetricState(SymmetricState&&) noexcept = default;
  SymmetricState& operator=(SymmetricState&&) noexcept = default;
  ~SymmetricState();

  Expected<void> mix_hash(ByteView data);
  Expected<void> mix_key(ByteView input_key_material);
  // Append the ciphertext (the plaintext itself before the first mix_key) to `out`.
  Expected<void> encrypt_and_hash(ByteView plaintext, Bytes& out);
  // Append the plaintext to `out`; on failure `out` is left as it was.
  Expected<void> decrypt_and_hash(ByteView ciphertext, Bytes& out);
  // Noise Split: the initiator-to-responder and responder-to-initiator states.
  Expected<std::pair<CipherState, CipherState>> split();

  bool has_key() const { return cipher_.has_key(); }
  const Hash& handshake_hash() const { return hash_; }

 private:
  SymmetricState() = default;

  Hash chaining_key_{};
  Hash hash_{};
  CipherState cipher_;
};

}  // namespace an::p2p::noise::detail
