// Mplex frame headers (/mplex/6.7.0, libp2p/specs mplex/README.md): a varint of
// (stream ID << 3 | flag), then a varint payload length. Pure functions over caller-owned
// buffers; any thread may call them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "p2p/multiformats/varint.h"
#include "util/expected.h"

namespace an::p2p::mplex {

// "Initiator" flags are sent by the side that opened the stream, "Receiver" flags by the other
// side; IDs are chosen by the opener, so each side's streams form their own ID space.
enum class Flag : std::uint8_t {
  kNewStream = 0,
  kMessageReceiver = 1,
  kMessageInitiator = 2,
  kCloseReceiver = 3,
  kCloseInitiator = 4,
  kResetReceiver = 5,
  kResetInitiator = 6,
};

// Two varints of at most kMaxVarintLength bytes each.
inline constexpr std::size_t kMaxHeaderSize = 2 * kMaxVarintLength;
// Stream IDs must fit the header varint next to the 3 flag bits.
inline constexpr std::uint64_t kMaxWireStreamId = kMaxVarintValue >> 3;

struct FrameHeader {
  std::uint64_t stream_id = 0;
  Flag flag = Flag::kNewStream;
  std::uint64_t length = 0;

  friend bool operator==(const FrameHeader&, const FrameHeader&) = default;
};

// True for the flags the opener of a stream sends (and NewStream).
bool sent_by_initiator(Flag flag);

// The flag for a Message, Close or Reset on a stream we opened (`opened_locally`) or not.
Flag message_flag(bool opened_locally);
Flag close_flag(bool opened_locally);
Flag reset_flag(bool opened_locally);

void append_header(Bytes& out, const FrameHeader& header);

struct DecodedHeader {
  FrameHeader header;
  std::size_t size = 0;  // bytes the header took
};

// Decodes the header at the front of `bytes`: nullopt when it is not complete yet. Errors for
// a varint longer than 9 bytes, an unknown flag (7) and a length above `max_length`. Non-minimal
// varints are accepted, as go-mplex and js-libp2p do.
Expected<std::optional<DecodedHeader>> decode_header(ByteView bytes, std::uint64_t max_length);

// "Message(initiator) stream=3 length=5", for error messages and logs.
std::string describe(const FrameHeader& header);

}  // namespace an::p2p::mplex
