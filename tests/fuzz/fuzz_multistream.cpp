// Fuzz target: multistream-select messages from a hostile peer, both roles.
#include "p2p/multistream/multistream.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  an::p2p::multistream::fuzz_one_input(data, size);
  return 0;
}
