// The libFuzzer entry of the Go AgentNetwork's broadcast envelope: hostile bytes must decode to
// an envelope or an error, never to a crash, an out-of-bounds read or unbounded work; what
// decodes must survive a round trip through the encoder (Go's canonical form).
#include <cstdlib>

#include "fuzz/harness/harness.h"
#include "p2p/daan/broadcast.h"

namespace an::p2p::daan {
namespace {

void run_harness(const std::uint8_t* data, std::size_t size) {
  auto envelope = decode_broadcast(ByteView(data, size));
  if (!envelope) return;
  // Go writes an empty sender as "" and then refuses to read it back (peer.Decode("") fails),
  // so only envelopes with a sender make the round trip.
  if (envelope->sender.empty()) return;
  const Bytes json = encode_broadcast(*envelope);
  auto again = decode_broadcast(json);
  if (!again || !(*again == *envelope)) std::abort();
  if (encode_broadcast(*again) != json) std::abort();  // the canonical form is a fixed point
}

}  // namespace
}  // namespace an::p2p::daan

namespace an::fuzz {

void daan_broadcast(const std::uint8_t* data, std::size_t size) {
  p2p::daan::run_harness(data, size);
}

}  // namespace an::fuzz
