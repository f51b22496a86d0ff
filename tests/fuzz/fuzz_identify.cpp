// Fuzz target: identify messages and signed peer records from a hostile peer.
#include "fuzz/harness/harness.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  an::fuzz::identify(data, size);
  return 0;
}
