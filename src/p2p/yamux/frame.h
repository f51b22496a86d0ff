// Yamux frame headers (/yamux/1.0.0, hashicorp/yamux spec.md): the 12-byte header codec.
// Pure functions over caller-owned buffers; any thread may call them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "p2p/multiformats/varint.h"
#include "util/expected.h"

namespace an::p2p::yamux {

// Version 0 is the only one the spec defines; anything else is a protocol error.
inline constexpr std::uint8_t kVersion = 0;
inline constexpr std::size_t kHeaderSize = 12;

enum class FrameType : std::uint8_t {
  kData = 0,          // length = number of payload bytes after the header
  kWindowUpdate = 1,  // length = send-window delta (with RST: an error code)
  kPing = 2,          // length = opaque value echoed by the peer
  kGoAway = 3,        // length = GoAwayCode
};

// Flag bits; several may be combined on one frame.
inline constexpr std::uint16_t kFlagSyn = 0x1;
inline constexpr std::uint16_t kFlagAck = 0x2;
inline constexpr std::uint16_t kFlagFin = 0x4;
inline constexpr std::uint16_t kFlagRst = 0x8;

// Codes carried by GoAway frames.
enum class GoAwayCode : std::uint32_t {
  kNormal = 0,
  kProtocolError = 1,
  kInternalError = 2,
};

// Stream ID 0 addresses the session itself (Ping, GoAway).
inline constexpr std::uint32_t kSessionStreamId = 0;

struct FrameHeader {
  FrameType type = FrameType::kData;
  std::uint16_t flags = 0;
  std::uint32_t stream_id = 0;
  std::uint32_t length = 0;

  bool has(std::uint16_t flag) const { return (flags & flag) == flag; }
  friend bool operator==(const FrameHeader&, const FrameHeader&) = default;
};

using EncodedHeader = std::array<std::uint8_t, kHeaderSize>;

// Big-endian encoding with version 0.
EncodedHeader encode_header(const FrameHeader& header);
void append_header(Bytes& out, const FrameHeader& header);

// Decodes exactly kHeaderSize bytes. Rejects a short buffer, a version other than 0 and an
// unknown type; unknown flag bits are kept (peers ignore them, and so do we).
Expected<FrameHeader> decode_header(ByteView bytes);

// "Data(SYN|FIN) stream=3 length=5", for error messages and logs.
std::string describe(const FrameHeader& header);

}  // namespace an::p2p::yamux
