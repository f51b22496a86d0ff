#include "p2p/mplex/frame.h"

namespace an::p2p::mplex {
namespace {

enum class VarintStatus { kComplete, kIncomplete, kTooLong };

// Unsigned LEB128 of at most kMaxVarintLength bytes; `offset` moves past it when complete.
VarintStatus read_header_varint(ByteView bytes, std::size_t& offset, std::uint64_t& value) {
  value = 0;
  for (std::size_t i = 0; i < kMaxVarintLength; ++i) {
    if (offset + i >= bytes.size()) return VarintStatus::kIncomplete;
    const std::uint8_t byte = bytes[offset + i];
    value |= std::uint64_t{byte & 0x7fu} << (7 * i);
    if ((byte & 0x80u) == 0) {
      offset += i + 1;
      return VarintStatus::kComplete;
    }
  }
  return VarintStatus::kTooLong;
}

const char* flag_name(Flag flag) {
  switch (flag) {
    case Flag::kNewStream:
      return "NewStream";
    case Flag::kMessageReceiver:
      return "Message(receiver)";
    case Flag::kMessageInitiator:
      return "Message(initiator)";
    case Flag::kCloseReceiver:
      return "Close(receiver)";
    case Flag::kCloseInitiator:
      return "Close(initiator)";
    case Flag::kResetReceiver:
      return "Reset(receiver)";
    case Flag::kResetInitiator:
      return "Reset(initiator)";
  }
  return "unknown";
}

}  // namespace

bool sent_by_initiator(Flag flag) {
  return flag == Flag::kNewStream || flag == Flag::kMessageInitiator ||
         flag == Flag::kCloseInitiator || flag == Flag::kResetInitiator;
}

Flag message_flag(bool opened_locally) {
  return opened_locally ? Flag::kMessageInitiator : Flag::kMessageReceiver;
}

Flag close_flag(bool opened_locally) {
  return opened_locally ? Flag::kCloseInitiator : Flag::kCloseReceiver;
}

Flag reset_flag(bool opened_locally) {
  return opened_locally ? Flag::kResetInitiator : Flag::kResetReceiver;
}

void append_header(Bytes& out, const FrameHeader& header) {
  append_varint(out, (header.stream_id << 3) | static_cast<std::uint8_t>(header.flag));
  append_varint(out, header.length);
}

Expected<std::optional<DecodedHeader>> decode_header(ByteView bytes, std::uint64_t max_length) {
  std::size_t offset = 0;
  std::uint64_t tag = 0;
  switch (read_header_varint(bytes, offset, tag)) {
    case VarintStatus::kIncomplete:
      return std::optional<DecodedHeader>{};
    case VarintStatus::kTooLong:
      return fail("mplex: header varint longer than 9 bytes");
    case VarintStatus::kComplete:
      break;
  }
  const std::uint64_t flag = tag & 0x7u;
  if (flag > static_cast<std::uint8_t>(Flag::kResetInitiator)) {
    return fail("mplex: unknown flag " + std::to_string(flag) + " on stream " +
                std::to_string(tag >> 3));
  }
  std::uint64_t length = 0;
  switch (read_header_varint(bytes, offset, length)) {
    case VarintStatus::kIncomplete:
      return std::optional<DecodedHeader>{};
    case VarintStatus::kTooLong:
      return fail("mplex: length varint longer than 9 bytes");
    case VarintStatus::kComplete:
      break;
  }
  FrameHeader header{tag >> 3, static_cast<Flag>(flag), length};
  if (length > max_length) {
    return fail("mplex: " + describe(header) + " exceeds the maximum message size of " +
                std::to_string(max_length) + " bytes");
  }
  return std::optional<DecodedHeader>{DecodedHeader{header, offset}};
}

std::string describe(const FrameHeader& header) {
  return std::string(flag_name(header.flag)) + " stream=" + std::to_string(header.stream_id) +
         " length=" + std::to_string(header.length);
}

}  // namespace an::p2p::mplex
