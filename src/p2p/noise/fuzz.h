// A libFuzzer-ready entry point for the Noise code: wire it to LLVMFuzzerTestOneInput. Any
// thread; it only reads `data`. It must never crash, whatever the bytes.
#pragma once

#include <cstddef>
#include <cstdint>

namespace an::p2p::noise {

// The first byte picks a target: 0 the payload decoder, 1 a responder, 2 an initiator, 3 a
// transport receiver. The rest is a stream of 2-byte-length frames fed to the target in order.
void fuzz_one_input(const std::uint8_t* data, std::size_t size);

}  // namespace an::p2p::noise
