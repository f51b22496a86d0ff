// The libFuzzer entry of Identify: hostile bytes must decode to a value or an error, never to a
// crash, an out-of-bounds read or unbounded work.
#include "p2p/identify/identify.h"
#include "p2p/identify/peer_record.h"

namespace an::p2p::identify {

void fuzz_one_input(const std::uint8_t* data, std::size_t size) {
  const ByteView input(data, size);
  if (auto message = decode(input)) {
    // What decodes must encode again, and the signed record it carries must be checkable.
    (void)encode_stream(*message);
    if (message->signed_peer_record) (void)verify_signed_peer_record(*message->signed_peer_record);
  }
  (void)decode_stream(input);
  (void)decode_envelope(input);
  (void)decode_peer_record(input);
  (void)verify_signed_peer_record(input);
}

}  // namespace an::p2p::identify
