// The libp2p Noise handshake (XX, empty prologue, signed identity payloads), doing no I/O: the
// caller moves its messages. One object per connection, one thread at a time; it owns copies.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "p2p/crypto/key.h"
#include "p2p/crypto/peer_id.h"
#include "p2p/multiformats/varint.h"
#include "p2p/noise/cipher_state.h"
#include "p2p/noise/handshake_state.h"
#include "p2p/noise/payload.h"
#include "p2p/noise/x25519.h"
#include "util/expected.h"

namespace an::p2p::noise {

struct HandshakeOptions {
  Role role = Role::kInitiator;
  // Both must be non-null; they are copied by Handshake::create, so they only need to live
  // until it returns. The static key is normally made once per process.
  const PrivateKey* identity = nullptr;
  const X25519KeyPair* static_key = nullptr;
  // Dialers know whom they dial: a different remote identity fails the handshake.
  std::optional<PeerId> expected_remote;
  // Advertised in the NoiseExtensions of our payload (e.g. "/yamux/1.0.0").
  std::vector<std::string> stream_muxers;
  // Test hook: a fixed 32-byte ephemeral private key. Never set it in production.
  std::optional<Bytes> fixed_ephemeral_private;
};

class Handshake {
 public:
  struct Result {
    PeerId remote_peer;
    Bytes remote_identity_key;  // the remote PublicKey protobuf
    std::vector<std::string> remote_stream_muxers;
    CipherState send;
    CipherState receive;
    Bytes handshake_hash;  // Noise's final h: unique to this session (channel binding)
  };

  // Checks the options and signs our payload. Errors: a null key, a bad fixed ephemeral key,
  // OpenSSL failures.
  static Expected<Handshake> create(const HandshakeOptions& options);

  bool my_turn_to_write() const { return !payload_rejected_ && state_.my_turn_to_write(); }
  bool is_complete() const { return !payload_rejected_ && state_.is_complete(); }
  bool has_failed() const { return payload_rejected_ || state_.has_failed(); }

  // The next handshake message, without the 2-byte length prefix. Only when it is our turn.
  Expected<Bytes> write_message();
  // One handshake message from the peer, without the length prefix. Verifies the remote
  // payload in messages 2 and 3. Any error ends the handshake for good.
  Expected<void> read_message(ByteView message);

  // The verified remote peer (initiator: after message 2; responder: after message 3).
  const std::optional<PeerId>& remote_peer() const { return remote_peer_; }

  // The session: only once complete, and only once (the cipher states move out).
  Expected<Result> finish();

 private:
  Handshake(detail::XXHandshakeState state, Bytes local_payload,
            std::optional<PeerId> expected_remote)
      : state_(std::move(state)),
        local_payload_(std::move(local_payload)),
        expected_remote_(std::move(expected_remote)) {}

  Expected<void> accept_remote_payload(ByteView encoded);

  detail::XXHandshakeState state_;
  Bytes local_payload_;
  std::optional<PeerId> expected_remote_;
  std::optional<PeerId> remote_peer_;
  Bytes remote_identity_key_;
  std::vector<std::string> remote_stream_muxers_;
  // The Noise layer accepted the message but the libp2p layer did not (e.g. a bad signature).
  bool payload_rejected_ = false;
  bool finished_ = false;
};

}  // namespace an::p2p::noise
