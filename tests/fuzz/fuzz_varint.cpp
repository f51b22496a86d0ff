// Fuzz target: unsigned varint decoding must never crash, and what it accepts re-encodes to the
// same bytes.
#include <cstdlib>

#include "p2p/multiformats/varint.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  an::p2p::ByteView input(data, size);
  auto start = input;
  auto value = an::p2p::read_varint(input);
  if (value) {
    an::p2p::Bytes encoded;
    an::p2p::append_varint(encoded, *value);
    std::size_t consumed = start.size() - input.size();
    if (encoded.size() != consumed || !std::equal(encoded.begin(), encoded.end(), data)) {
      std::abort();
    }
  }
  return 0;
}
