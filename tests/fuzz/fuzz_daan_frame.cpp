// Fuzz target: /daan/message and /daan/request frames (length prefix and JSON body) from a
// hostile peer.
#include "fuzz/harness/harness.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  an::fuzz::daan_frame(data, size);
  return 0;
}
