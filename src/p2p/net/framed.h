// Length-prefixed messages on a byte stream (an unsigned varint length, then that many bytes):
// the framing of kad-dht, circuit relay and most libp2p request/response protocols. Network
// thread only; one reader and one writer at a time, as for the stream itself. Reads are bounded
// in size here and in time by the caller.
#pragma once

#include <asio.hpp>
#include <optional>

#include "p2p/net/byte_stream.h"

namespace an::p2p::net {

// Reads one message. nullopt: the stream ended cleanly before the message's first byte. Errors:
// a length over `max_size` (refused before its body is read), a malformed length, or the end of
// the stream inside a message. Bytes read beyond the message are pushed back into the stream.
asio::awaitable<Expected<std::optional<Bytes>>> read_framed(ByteStream& stream,
                                                            std::size_t max_size);

// Writes the length and the message in one write.
asio::awaitable<Expected<void>> write_framed(ByteStream& stream, ByteView message);

}  // namespace an::p2p::net
