#include "p2p/yamux/frame.h"

namespace an::p2p::yamux {
namespace {

void put_u16(std::uint8_t* out, std::uint16_t value) {
  out[0] = static_cast<std::uint8_t>(value >> 8);
  out[1] = static_cast<std::uint8_t>(value);
}

void put_u32(std::uint8_t* out, std::uint32_t value) {
  out[0] = static_cast<std::uint8_t>(value >> 24);
  out[1] = static_cast<std::uint8_t>(value >> 16);
  out[2] = static_cast<std::uint8_t>(value >> 8);
  out[3] = static_cast<std::uint8_t>(value);
}

std::uint16_t get_u16(const std::uint8_t* in) {
  return static_cast<std::uint16_t>((std::uint16_t{in[0]} << 8) | in[1]);
}

std::uint32_t get_u32(const std::uint8_t* in) {
  return (std::uint32_t{in[0]} << 24) | (std::uint32_t{in[1]} << 16) | (std::uint32_t{in[2]} << 8) |
         std::uint32_t{in[3]};
}

const char* type_name(FrameType type) {
  switch (type) {
    case FrameType::kData:
      return "Data";
    case FrameType::kWindowUpdate:
      return "WindowUpdate";
    case FrameType::kPing:
      return "Ping";
    case FrameType::kGoAway:
      return "GoAway";
  }
  return "Unknown";
}

}  // namespace

EncodedHeader encode_header(const FrameHeader& header) {
  EncodedHeader out{};
  out[0] = kVersion;
  out[1] = static_cast<std::uint8_t>(header.type);
  put_u16(&out[2], header.flags);
  put_u32(&out[4], header.stream_id);
  put_u32(&out[8], header.length);
  return out;
}

void append_header(Bytes& out, const FrameHeader& header) {
  const EncodedHeader encoded = encode_header(header);
  out.insert(out.end(), encoded.begin(), encoded.end());
}

Expected<FrameHeader> decode_header(ByteView bytes) {
  if (bytes.size() < kHeaderSize) {
    return fail("yamux: truncated frame header: " + std::to_string(bytes.size()) + " of " +
                std::to_string(kHeaderSize) + " bytes");
  }
  if (bytes[0] != kVersion) {
    return fail("yamux: unsupported protocol version " + std::to_string(bytes[0]) +
                " (only version 0 exists)");
  }
  if (bytes[1] > static_cast<std::uint8_t>(FrameType::kGoAway)) {
    return fail("yamux: unknown frame type " + std::to_string(bytes[1]));
  }
  FrameHeader header;
  header.type = static_cast<FrameType>(bytes[1]);
  header.flags = get_u16(&bytes[2]);
  header.stream_id = get_u32(&bytes[4]);
  header.length = get_u32(&bytes[8]);
  return header;
}

std::string describe(const FrameHeader& header) {
  std::string text = type_name(header.type);
  std::string flags;
  const auto add = [&](std::uint16_t flag, const char* name) {
    if (!header.has(flag)) return;
    if (!flags.empty()) flags += '|';
    flags += name;
  };
  add(kFlagSyn, "SYN");
  add(kFlagAck, "ACK");
  add(kFlagFin, "FIN");
  add(kFlagRst, "RST");
  if (!flags.empty()) text += "(" + flags + ")";
  text += " stream=" + std::to_string(header.stream_id);
  text += " length=" + std::to_string(header.length);
  return text;
}

}  // namespace an::p2p::yamux
