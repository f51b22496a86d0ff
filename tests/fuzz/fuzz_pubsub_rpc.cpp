// Fuzz target: pubsub RPC frames (floodsub, gossipsub) from a hostile peer.
#include "fuzz/harness/harness.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  an::fuzz::pubsub_rpc(data, size);
  return 0;
}
