// Fuzz target: the Go AgentNetwork's broadcast envelopes (JSON in gossipsub messages) from a
// hostile publisher.
#include "fuzz/harness/harness.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  an::fuzz::daan_broadcast(data, size);
  return 0;
}
