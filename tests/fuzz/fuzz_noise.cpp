// Fuzz target: Noise handshake messages, payloads and transport frames from a hostile peer.
#include "p2p/noise/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  an::p2p::noise::fuzz_one_input(data, size);
  return 0;
}
