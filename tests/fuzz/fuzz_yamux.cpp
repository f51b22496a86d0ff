// Fuzz target: yamux frames from a hostile peer fed to a session.
#include "p2p/yamux/session.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  an::p2p::yamux::fuzz_one_input(data, size);
  return 0;
}
