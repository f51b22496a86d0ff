#include <optional>

#include "fuzz/harness/harness.h"
#include "p2p/noise/framing.h"
#include "p2p/noise/handshake.h"
#include "p2p/noise/payload.h"

namespace an::p2p::noise {
namespace {

// Fixed keys keep runs reproducible: the same input always takes the same path.
struct FuzzKeys {
  std::optional<PrivateKey> identity;
  std::optional<X25519KeyPair> static_key;
};

const FuzzKeys& fuzz_keys() {
  static const FuzzKeys keys = [] {
    FuzzKeys made;
    const Bytes identity_seed(32, 0x11);
    const Bytes static_private(32, 0x22);
    if (auto identity = Ed25519PrivateKey::from_seed(identity_seed)) {
      made.identity = PrivateKey::from_ed25519(*identity);
    }
    if (auto static_key = X25519KeyPair::from_private(static_private))
      made.static_key = *static_key;
    return made;
  }();
  return keys;
}

void drive_handshake(Role role, FrameReader& frames) {
  const FuzzKeys& keys = fuzz_keys();
  if (!keys.identity || !keys.static_key) return;
  HandshakeOptions options;
  options.role = role;
  options.identity = &*keys.identity;
  options.static_key = &*keys.static_key;
  options.fixed_ephemeral_private = Bytes(32, 0x33);
  auto handshake = Handshake::create(options);
  if (!handshake) return;
  std::optional<Handshake::Result> session;
  while (auto frame = frames.next_frame()) {
    if (session) {
      (void)session->receive.decrypt(*frame, frame->data());
      continue;
    }
    while (handshake->my_turn_to_write()) {
      if (!handshake->write_message()) return;
    }
    if (!handshake->read_message(*frame)) return;
    while (handshake->my_turn_to_write()) {
      if (!handshake->write_message()) return;
    }
    if (handshake->is_complete()) {
      auto finished = handshake->finish();
      if (!finished) return;
      session.emplace(std::move(*finished));
    }
  }
}

}  // namespace

void run_harness(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return;
  const ByteView rest(data + 1, size - 1);
  FrameReader frames;
  frames.feed(rest);
  switch (data[0] % 4) {
    case 0: {
      if (auto payload = decode_payload(rest)) {
        (void)verify_payload(*payload, X25519PublicKey{1});
        (void)decode_payload(encode_payload(*payload));
      }
      break;
    }
    case 1:
      drive_handshake(Role::kResponder, frames);
      break;
    case 2:
      drive_handshake(Role::kInitiator, frames);
      break;
    default: {
      CipherState receive;
      CipherKey key{};
      key.fill(0x44);
      if (!receive.initialize_key(key)) return;
      while (auto frame = frames.next_frame())
        (void)receive.decrypt(*frame, frame->data());
      break;
    }
  }
}

}  // namespace an::p2p::noise

namespace an::fuzz {

void noise(const std::uint8_t* data, std::size_t size) {
  p2p::noise::run_harness(data, size);
}

}  // namespace an::fuzz
