#include "p2p/noise/handshake_state.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <string>

namespace an::p2p::noise::detail {
namespace {

constexpr std::size_t kEncryptedKeySize = kX25519KeySize + kTagSize;
// The fixed part of each message: e | e + encrypted s + payload tag | encrypted s + payload tag.
constexpr std::size_t kMinimumMessageSize[kHandshakeMessageCount] = {
    kX25519KeySize, kX25519KeySize + kEncryptedKeySize + kTagSize, kEncryptedKeySize + kTagSize};

std::string message_label(std::size_t index) {
  return "noise handshake message " + std::to_string(index + 1) + " of 3";
}

X25519PublicKey to_key(ByteView bytes) {
  X25519PublicKey key{};
  std::copy(bytes.begin(), bytes.begin() + kX25519KeySize, key.begin());
  return key;
}

}  // namespace

Expected<XXHandshakeState> XXHandshakeState::create(Role role, const X25519KeyPair& static_key,
                                                    ByteView prologue,
                                                    std::optional<X25519KeyPair> ephemeral) {
  auto symmetric = SymmetricState::initialize(kNoiseProtocolName);
  if (!symmetric) return tl::unexpected(symmetric.error());
  if (auto mixed = symmetric->mix_hash(prologue); !mixed) return tl::unexpected(mixed.error());
  return XXHandshakeState(role, static_key, std::move(*symmetric), std::move(ephemeral));
}

bool XXHandshakeState::my_turn_to_write() const {
  if (failed_ || next_message_ >= kHandshakeMessageCount) return false;
  // The initiator writes messages 1 and 3 (indexes 0 and 2), the responder message 2.
  const bool initiator_turn = next_message_ % 2 == 0;
  return initiator_turn == (role_ == Role::kInitiator);
}

Expected<void> XXHandshakeState::mix_dh(const X25519KeyPair& local, const X25519PublicKey& remote,
                                        std::string_view token) {
  auto secret = local.agree(remote);
  if (!secret) {
    return fail(message_label(next_message_) + ": token " + std::string(token) + ": " +
                secret.error().message);
  }
  auto mixed = symmetric_.mix_key(*secret);
  OPENSSL_cleanse(secret->data(), secret->size());
  return mixed;
}

Expected<void> XXHandshakeState::write_message(ByteView payload, Bytes& out) {
  if (failed_) return fail("noise handshake: the handshake already failed");
  if (next_message_ >= kHandshakeMessageCount) {
    return fail("noise handshake: the handshake is complete, there is nothing more to write");
  }
  if (!my_turn_to_write()) {
    return fail(message_label(next_message_) + ": it is the peer's turn to write, not ours");
  }
  const std::size_t overhead = kMinimumMessageSize[next_message_];
  if (payload.size() > kMaxMessage - overhead) {
    failed_ = true;
    return fail(message_label(next_message_) + ": a payload of " + std::to_string(payload.size()) +
                " bytes makes the message exceed " + std::to_string(kMaxMessage) + " bytes");
  }
  const std::size_t start = out.size();
  auto written = write_steps(payload, out);
  if (!written) {
    failed_ = true;
    out.resize(start);
    return written;
  }
  ++next_message_;
  return {};
}

Expected<void> XXHandshakeState::write_steps(ByteView payload, Bytes& out) {
  switch (next_message_) {
    case 0:    // -> e
    case 1: {  // <- e, ee, s, es
      if (!ephemeral_) {
        auto generated = X25519KeyPair::generate();
        if (!generated) return tl::unexpected(generated.error());
        ephemeral_ = std::move(*generated);
      }
      const X25519PublicKey& ephemeral_public = ephemeral_->public_key();
      out.insert(out.end(), ephemeral_public.begin(), ephemeral_public.end());
      if (auto mixed = symmetric_.mix_hash(ephemeral_public); !mixed) return mixed;
      if (next_message_ == 1) {
        if (auto mixed = mix_dh(*ephemeral_, *remote_ephemeral_, "ee"); !mixed) return mixed;
        if (auto encrypted = symmetric_.encrypt_and_hash(static_key_.public_key(), out);
            !encrypted) {
          return encrypted;
        }
        // es: the responder holds the s half.
        if (auto mixed = mix_dh(static_key_, *remote_ephemeral_, "es"); !mixed) return mixed;
      }
      break;
    }
    default: {  // -> s, se
      if (auto encrypted = symmetric_.encrypt_and_hash(static_key_.public_key(), out); !encrypted) {
        return encrypted;
      }
      // se: the initiator holds the s half.
      if (auto mixed = mix_dh(static_key_, *remote_ephemeral_, "se"); !mixed) return mixed;
      break;
    }
  }
  return symmetric_.encrypt_and_hash(payload, out);
}

Expected<void> XXHandshakeState::read_message(ByteView message, Bytes& payload_out) {
  if (failed_) return fail("noise handshake: the handshake already failed");
  if (next_message_ >= kHandshakeMessageCount) {
    return fail(
        "noise handshake: the handshake is complete, no more handshake messages are "
        "expected");
  }
  if (my_turn_to_write()) {
    failed_ = true;
    return fail(message_label(next_message_) + ": received out of order: it is our turn to write");
  }
  if (message.size() > kMaxMessage) {
    failed_ = true;
    return fail(message_label(next_message_) + " is " + std::to_string(message.size()) +
                " bytes, more than the " + std::to_string(kMaxMessage) + "-byte maximum");
  }
  if (message.size() < kMinimumMessageSize[next_message_]) {
    failed_ = true;
    return fail(message_label(next_message_) + " is truncated: " + std::to_string(message.size()) +
                " bytes, it needs at least " + std::to_string(kMinimumMessageSize[next_message_]));
  }
  const std::size_t start = payload_out.size();
  auto read = read_steps(message, payload_out);
  if (!read) {
    failed_ = true;
    OPENSSL_cleanse(payload_out.data() + start, payload_out.size() - start);
    payload_out.resize(start);
    return read;
  }
  ++next_message_;
  return {};
}

Expected<void> XXHandshakeState::read_steps(ByteView message, Bytes& payload_out) {
  // Each step below consumes the front of `rest`; the sizes were checked by the caller.
  ByteView rest = message;
  auto read_static = [&]() -> Expected<void> {
    Bytes decrypted;
    auto opened = symmetric_.decrypt_and_hash(rest.first(kEncryptedKeySize), decrypted);
    if (!opened) {
      return fail(message_label(next_message_) +
                  ": the remote static key does not decrypt: " + opened.error().message);
    }
    remote_static_ = to_key(decrypted);
    rest = rest.subspan(kEncryptedKeySize);
    return {};
  };
  switch (next_message_) {
    case 0:    // -> e
    case 1: {  // <- e, ee, s, es
      remote_ephemeral_ = to_key(rest);
      rest = rest.subspan(kX25519KeySize);
      if (auto mixed = symmetric_.mix_hash(*remote_ephemeral_); !mixed) return mixed;
      if (next_message_ == 1) {
        if (auto mixed = mix_dh(*ephemeral_, *remote_ephemeral_, "ee"); !mixed) return mixed;
        if (auto opened = read_static(); !opened) return opened;
        // es: the initiator holds the e half.
        if (auto mixed = mix_dh(*ephemeral_, *remote_static_, "es"); !mixed) return mixed;
      }
      break;
    }
    default: {  // -> s, se
      if (auto opened = read_static(); !opened) return opened;
      // se: the responder holds the e half.
      if (auto mixed = mix_dh(*ephemeral_, *remote_static_, "se"); !mixed) return mixed;
      break;
    }
  }
  auto opened = symmetric_.decrypt_and_hash(rest, payload_out);
  if (!opened) {
    return fail(message_label(next_message_) +
                ": the payload does not decrypt: " + opened.error().message);
  }
  return {};
}

Expected<TransportStates> XXHandshakeState::split() {
  if (!is_complete()) return fail("noise handshake: cannot split before the handshake completes");
  if (split_done_) return fail("noise handshake: the transport keys were already taken");
  auto states = symmetric_.split();
  if (!states) return tl::unexpected(states.error());
  split_done_ = true;
  TransportStates result;
  result.handshake_hash = symmetric_.handshake_hash();
  // The first key encrypts initiator-to-responder traffic.
  if (role_ == Role::kInitiator) {
    result.send = std::move(states->first);
    result.receive = std::move(states->second);
  } else {
    result.send = std::move(states->second);
    result.receive = std::move(states->first);
  }
  return result;
}

}  // namespace an::p2p::noise::detail
