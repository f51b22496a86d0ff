// Fuzz target: mplex frames from a hostile peer fed to a session.
#include "fuzz/harness/harness.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  an::fuzz::mplex(data, size);
  return 0;
}
