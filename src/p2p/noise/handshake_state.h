// Bare Noise_XX_25519_ChaChaPoly_SHA256 (rev 34, 5.3 and 7.5), any prologue and payloads: the
// engine under Handshake, exposed for test vectors. One thread at a time; owns copies of its keys.
#pragma once

#include <optional>
#include <string_view>

#include "p2p/multiformats/varint.h"
#include "p2p/noise/cipher_state.h"
#include "p2p/noise/symmetric_state.h"
#include "p2p/noise/x25519.h"
#include "util/expected.h"

namespace an::p2p::noise {

enum class Role { kInitiator, kResponder };

}  // namespace an::p2p::noise

namespace an::p2p::noise::detail {

inline constexpr std::string_view kNoiseProtocolName = "Noise_XX_25519_ChaChaPoly_SHA256";
inline constexpr std::size_t kHandshakeMessageCount = 3;

struct TransportStates {
  CipherState send;
  CipherState receive;
  Hash handshake_hash{};
};

class XXHandshakeState {
 public:
  // `ephemeral` is for test vectors only; without it each write of an `e` token makes a fresh
  // key pair.
  static Expected<XXHandshakeState> create(Role role, const X25519KeyPair& static_key,
                                           ByteView prologue,
                                           std::optional<X25519KeyPair> ephemeral = std::nullopt);

  Role role() const { return role_; }
  // 0, 1 or 2 while in progress; 3 once all messages went through.
  std::size_t next_message() const { return next_message_; }
  bool my_turn_to_write() const;
  bool is_complete() const { return next_message_ == kHandshakeMessageCount && !failed_; }
  bool has_failed() const { return failed_; }

  // Append the next handshake message carrying `payload` to `out` (no length prefix). The
  // message must fit kMaxMessage. Any error poisons the state: Noise cannot roll back.
  Expected<void> write_message(ByteView payload, Bytes& out);
  // Process the next handshake message and append its payload to `payload_out`. Errors
  // (truncated, oversized, forged, low-order keys, out of turn) poison the state.
  Expected<void> read_message(ByteView message, Bytes& payload_out);

  // The remote static key, known once the message carrying it was read.
  const std::optional<X25519PublicKey>& remote_static() const { return remote_static_; }
  const X25519KeyPair& local_static() const { return static_key_; }
  // The running handshake hash h; the final one once complete (channel binding).
  const Hash& handshake_hash() const { return symmetric_.handshake_hash(); }

  // Noise Split, ordered for this side. Only once complete, and only once.
  Expected<TransportStates> split();

 private:
  XXHandshakeState(Role role, X25519KeyPair static_key, SymmetricState symmetric,
                   std::optional<X25519KeyPair> ephemeral)
      : role_(role),
        static_key_(std::move(static_key)),
        symmetric_(std::move(symmetric)),
        ephemeral_(std::move(ephemeral)) {}

  Expected<void> write_steps(ByteView payload, Bytes& out);
  Expected<void> read_steps(ByteView message, Bytes& payload_out);
  Expected<void> mix_dh(const X25519KeyPair& local, const X25519PublicKey& remote,
                        std::string_view token);

  Role role_;
  X25519KeyPair static_key_;
  SymmetricState symmetric_;
  std::optional<X25519KeyPair> ephemeral_;
  std::optional<X25519PublicKey> remote_ephemeral_;
  std::optional<X25519PublicKey> remote_static_;
  std::size_t next_message_ = 0;
  bool failed_ = false;
  bool split_done_ = false;
};

}  // namespace an::p2p::noise::detail
