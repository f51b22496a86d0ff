// Fuzz target: Noise handshake messages, payloads and transport frames from a hostile peer.
#include "fuzz/harness/harness.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  an::fuzz::noise(data, size);
  return 0;
}
