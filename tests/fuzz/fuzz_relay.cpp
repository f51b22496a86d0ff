// Fuzz target: circuit relay v2 hop/stop messages, their framing and reservation vouchers from a
// hostile peer. Whatever decodes must encode and decode again to the same value.
#include <cstdlib>

#include "p2p/relay/messages.h"
#include "p2p/relay/voucher.h"
#include "p2p/wire/length_prefixed.h"

namespace {

using an::p2p::ByteView;
using an::p2p::PeerId;

// Two fixed peer IDs (identity multihashes of made-up Ed25519 keys) for the voucher checks.
PeerId fixed_peer(std::uint8_t fill) {
  an::p2p::Bytes multihash = {0x00, 0x24, 0x08, 0x01, 0x12, 0x20};
  multihash.resize(multihash.size() + 32, fill);
  return *PeerId::from_multihash(multihash);
}

template <class Message, class Decode>
void check_round_trip(const Message& message, Decode decode) {
  auto again = decode(an::p2p::relay::encode(message));
  if (!again || !(*again == message)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace relay = an::p2p::relay;
  const ByteView input(data, size);

  if (auto hop = relay::decode_hop(input)) {
    // Skipped addresses are not re-encoded, so compare from the re-encoded form onwards.
    auto canonical = relay::decode_hop(relay::encode(*hop));
    if (!canonical) std::abort();
    check_round_trip(*canonical, relay::decode_hop);
    if (hop->reservation && hop->reservation->voucher) {
      (void)relay::open_voucher(*hop->reservation->voucher, fixed_peer(1), fixed_peer(2), 0);
    }
  }
  if (auto stop = relay::decode_stop(input)) {
    auto canonical = relay::decode_stop(relay::encode(*stop));
    if (!canonical) std::abort();
    check_round_trip(*canonical, relay::decode_stop);
  }
  if (auto voucher = relay::decode_voucher(input)) {
    auto again = relay::decode_voucher(relay::encode_voucher(*voucher));
    if (!again || !(*again == *voucher)) std::abort();
  }
  (void)relay::open_voucher(input, fixed_peer(1), fixed_peer(2), 0);

  // The same bytes as a stream of frames.
  ByteView rest = input;
  for (int frames = 0; frames < 1000; ++frames) {
    const std::size_t before = rest.size();
    auto frame = an::p2p::take_frame(rest, relay::kMaxMessageSize);
    if (!frame || !frame->has_value()) {
      if (rest.size() != before) std::abort();
      break;
    }
    if ((*frame)->size() > relay::kMaxMessageSize) std::abort();
    if (before - rest.size() > relay::kMaxLengthPrefixSize + (*frame)->size()) std::abort();
    (void)relay::decode_hop(**frame);
  }
  return 0;
}
