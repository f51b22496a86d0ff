// Fuzz harnesses: each feeds arbitrary bytes to one parser of the wire protocols and must never
// crash, read out of bounds or do unbounded work, whatever the input. The libFuzzer targets in
// tests/fuzz call them, and the unit tests replay their seeds and hostile inputs through them.
// Any thread; they only read `data`.
#pragma once

#include <cstddef>
#include <cstdint>

namespace an::fuzz {

// Identify decoding (single message and stream) and signed peer record verification.
void identify(const std::uint8_t* data, std::size_t size);
// A MessageReader, an Initiator and a Responder of multistream-select.
void multistream(const std::uint8_t* data, std::size_t size);
// The first byte picks a target: 0 the payload decoder, 1 a responder, 2 an initiator, 3 a
// transport receiver. The rest is a stream of 2-byte-length frames fed to the target in order.
void noise(const std::uint8_t* data, std::size_t size);
// An mplex session that accepts, answers and consumes whatever arrives.
void mplex(const std::uint8_t* data, std::size_t size);
// A yamux responder session that accepts and consumes whatever arrives.
void yamux(const std::uint8_t* data, std::size_t size);
// A /daan frame: the input as a JSON body, and as a 4-byte length prefix plus body. Whatever
// decodes must encode again and decode to the same frame.
void daan_frame(const std::uint8_t* data, std::size_t size);
// A pubsub RPC body (floodsub/gossipsub): whatever decodes must encode to bytes that decode to
// the same RPC, split into parts that fit and keep every entry, and have its messages' signatures
// checked without a crash.
void pubsub_rpc(const std::uint8_t* data, std::size_t size);
// The Go AgentNetwork's broadcast envelope (JSON): whatever decodes must encode again (Go's
// canonical form) and decode to the same envelope.
void daan_broadcast(const std::uint8_t* data, std::size_t size);

}  // namespace an::fuzz
