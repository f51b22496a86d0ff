// The libFuzzer entry of the /daan frame codec: hostile bytes must decode to a frame or an
// error, never to a crash, an out-of-bounds read or unbounded work; what decodes must survive a
// round trip through the encoder (Go's canonical form).
#include <cstdlib>

#include "fuzz/harness/harness.h"
#include "p2p/daan/frame.h"

namespace an::p2p::daan {
namespace {

void check_round_trip(const Frame& frame) {
  const Bytes body = encode_frame_body(frame);
  if (body.size() != frame_body_size(frame)) std::abort();
  auto again = decode_frame_body(body);
  if (!again || !(*again == frame)) std::abort();
  // The canonical form is a fixed point.
  if (encode_frame_body(*again) != body) std::abort();
  const Bytes framed = encode_frame(frame);
  if (framed.size() != kFrameLengthSize + body.size()) std::abort();
  auto length = decode_frame_length(ByteView(framed).first(kFrameLengthSize));
  if (!length || *length != body.size()) std::abort();
}

void run_harness(const std::uint8_t* data, std::size_t size) {
  const ByteView input(data, size);
  if (auto frame = decode_frame_body(input)) check_round_trip(*frame);
  if (input.size() < kFrameLengthSize) return;
  auto length = decode_frame_length(input.first(kFrameLengthSize));
  if (!length) return;
  if (*length == 0 || *length > kMaxFrameSize) std::abort();
  const ByteView rest = input.subspan(kFrameLengthSize);
  if (rest.size() < *length) return;  // truncated: a reader waits for more
  if (auto frame = decode_frame_body(rest.first(*length))) check_round_trip(*frame);
}

}  // namespace
}  // namespace an::p2p::daan

namespace an::fuzz {

void daan_frame(const std::uint8_t* data, std::size_t size) {
  p2p::daan::run_harness(data, size);
}

}  // namespace an::fuzz
