#include "p2p/noise/handshake.h"

#include <openssl/crypto.h>

#include <string>

namespace an::p2p::noise {

Expected<Handshake> Handshake::create(const HandshakeOptions& options) {
  if (!options.identity) return fail("noise handshake options: no identity key");
  if (!options.static_key) return fail("noise handshake options: no static X25519 key");
  std::optional<X25519KeyPair> ephemeral;
  if (options.fixed_ephemeral_private) {
    auto fixed = X25519KeyPair::from_private(*options.fixed_ephemeral_private);
    if (!fixed)
      return fail("noise handshake options: fixed ephemeral key: " + fixed.error().message);
    ephemeral = std::move(*fixed);
  }
  auto payload =
      make_payload(*options.identity, options.static_key->public_key(), options.stream_muxers);
  if (!payload) return tl::unexpected(payload.error());
  // libp2p uses an empty prologue: the multistream-select negotiation is not bound in.
  auto state =
      detail::XXHandshakeState::create(options.role, *options.static_key, {}, std::move(ephemeral));
  if (!state) return tl::unexpected(state.error());
  return Handshake(std::move(*state), encode_payload(*payload), options.expected_remote);
}

Expected<Bytes> Handshake::write_message() {
  if (payload_rejected_) return fail("noise handshake: the handshake already failed");
  // Message 1 goes out in the clear, so it carries no payload; ours goes in message 2 or 3.
  const ByteView payload = state_.next_message() == 0 ? ByteView{} : ByteView(local_payload_);
  Bytes message;
  if (auto written = state_.write_message(payload, message); !written) {
    return tl::unexpected(written.error());
  }
  return message;
}

Expected<void> Handshake::read_message(ByteView message) {
  if (payload_rejected_) return fail("noise handshake: the handshake already failed");
  const std::size_t index = state_.next_message();
  Bytes payload;
  if (auto read = state_.read_message(message, payload); !read) return read;
  // Message 1 has no key yet, hence nothing authenticated to look at: its payload (empty from
  // every known implementation) is ignored.
  if (index == 0) return {};
  auto accepted = accept_remote_payload(payload);
  OPENSSL_cleanse(payload.data(), payload.size());
  return accepted;
}

Expected<void> Handshake::accept_remote_payload(ByteView encoded) {
  // Called right after the message that carried the remote static key, so it is known.
  auto fail_handshake = [this](const std::string& message) {
    payload_rejected_ = true;
    return fail(message);
  };
  auto payload = decode_payload(encoded);
  if (!payload) return fail_handshake(payload.error().message);
  auto identity = verify_payload(*payload, *state_.remote_static());
  if (!identity) return fail_handshake(identity.error().message);
  if (expected_remote_ && *expected_remote_ != identity->peer) {
    return fail_handshake("noise handshake: peer ID mismatch: expected to reach peer " +
                          expected_remote_->to_string() + " but the remote is peer " +
                          identity->peer.to_string());
  }
  remote_peer_ = identity->peer;
  remote_identity_key_ = std::move(payload->identity_key);
  remote_stream_muxers_ = std::move(payload->stream_muxers);
  return {};
}

Expected<Handshake::Result> Handshake::finish() {
  if (payload_rejected_) return fail("noise handshake: the handshake already failed");
  if (!state_.is_complete()) return fail("noise handshake: not complete yet");
  if (finished_) return fail("noise handshake: finish() was already called");
  auto states = state_.split();
  if (!states) return tl::unexpected(states.error());
  finished_ = true;
  return Result{*remote_peer_,
                std::move(remote_identity_key_),
                std::move(remote_stream_muxers_),
                std::move(states->send),
                std::move(states->receive),
                Bytes(states->handshake_hash.begin(), states->handshake_hash.end())};
}

}  // namespace an::p2p::noise
