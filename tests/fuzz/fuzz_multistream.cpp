// Fuzz target: multistream-select messages from a hostile peer, both roles.
#include "fuzz/harness/harness.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  an::fuzz::multistream(data, size);
  return 0;
}
