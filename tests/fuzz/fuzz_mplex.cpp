// Fuzz target: mplex frames from a hostile peer fed to a session.
#include "p2p/mplex/session.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  an::p2p::mplex::fuzz_one_input(data, size);
  return 0;
}
