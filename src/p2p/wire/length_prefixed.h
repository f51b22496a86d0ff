// Length-prefixed messages (an unsigned varint length, then that many bytes) taken out of bytes
// already received, without I/O: the framing of kad-dht, circuit relay and most libp2p
// request/response protocols. net/framed.h reads and writes the same framing on a stream. Pure
// functions over caller-owned buffers; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <system_error>

#include "p2p/multiformats/varint.h"
#include "util/expected.h"

namespace an::p2p {

// Error::code of the two refusals, so that a caller can tell a peer that sends too much from one
// that does not speak the framing at all.
inline constexpr std::errc kFrameTooLarge = std::errc::message_size;
inline constexpr std::errc kMalformedLength = std::errc::bad_message;

struct LengthPrefix {
  std::size_t size = 0;      // bytes taken by the prefix itself
  std::uint64_t length = 0;  // bytes of message it announces
};

// The length prefix at the front of `buffer`; nothing is consumed. nullopt: more bytes are
// needed (fewer than 9 so far, every one with the continuation bit). Error (kMalformedLength): a
// non-minimal varint or one longer than 9 bytes. The length is not bounded here.
Expected<std::optional<LengthPrefix>> read_length_prefix(ByteView buffer);

// Takes one message from the front of `buffer` (the bytes received so far). Returns the message
// without its prefix, pointing into `buffer`, which is advanced past it; nullopt when more bytes
// are needed; or an error: kFrameTooLarge when the length is over `max_size`, kMalformedLength
// when the prefix is malformed. `buffer` is untouched unless a message is returned. Too large is
// reported as soon as the prefix has more bytes than `max_size` needs (every minimal varint that
// long is bigger), so the caller never buffers the rest of the prefix nor the body; whether a
// hostile prefix is called too large or malformed does not depend on how the bytes were split.
// After an error the stream has lost its message boundaries: give it up.
Expected<std::optional<ByteView>> take_frame(ByteView& buffer, std::size_t max_size);

}  // namespace an::p2p
