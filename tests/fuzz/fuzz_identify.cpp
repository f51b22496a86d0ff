// Fuzz target: identify messages and signed peer records from a hostile peer.
#include "p2p/identify/identify.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  an::p2p::identify::fuzz_one_input(data, size);
  return 0;
}
