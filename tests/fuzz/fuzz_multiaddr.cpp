// Fuzz target: multiaddr parsing from binary and from text must never crash; what parses
// round-trips through both forms.
#include <cstdlib>
#include <string_view>

#include "p2p/multiformats/multiaddr.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using an::p2p::Multiaddr;
  if (auto binary = Multiaddr::from_bytes(an::p2p::ByteView(data, size))) {
    auto text = binary->to_string();
    auto reparsed = Multiaddr::parse(text);
    if (!reparsed || reparsed->to_bytes() != binary->to_bytes()) std::abort();
  }
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto parsed = Multiaddr::parse(text)) {
    auto again = Multiaddr::from_bytes(parsed->to_bytes());
    if (!again || !(*again == *parsed)) std::abort();
  }
  return 0;
}
