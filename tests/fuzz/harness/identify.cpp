// The libFuzzer entry of Identify: hostile bytes must decode to a value or an error, never to a
// crash, an out-of-bounds read or unbounded work.
#include "p2p/identify/identify.h"
#include "fuzz/harness/harness.h"
#include "p2p/record/peer_record.h"

namespace an::p2p::identify {

void run_harness(const std::uint8_t* data, std::size_t size) {
  const ByteView input(data, size);
  if (auto message = decode(input)) {
    // What decodes must encode again, and the signed record it carries must be checkable.
    (void)encode_stream(*message);
    if (message->signed_peer_record)
      (void)record::verify_signed_peer_record(*message->signed_peer_record);
  }
  (void)decode_stream(input);
  (void)record::decode_envelope(input);
  (void)record::decode_peer_record(input);
  (void)record::verify_signed_peer_record(input);
}

}  // namespace an::p2p::identify

namespace an::fuzz {

void identify(const std::uint8_t* data, std::size_t size) {
  p2p::identify::run_harness(data, size);
}

}  // namespace an::fuzz
