#include "p2p/multiformats/varint.h"

#include <string>

namespace an::p2p {

void append_varint(Bytes& out, std::uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<std::uint8_t>(value | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<std::uint8_t>(value));
}

Bytes encode_varint(std::uint64_t value) {
  Bytes out;
  append_varint(out, value);
  return out;
}

Expected<std::uint64_t> read_varint(ByteView& input) {
  std::uint64_t value = 0;
  for (std::size_t index = 0; index < input.size(); ++index) {
    if (index == kMaxVarintLength) {
      return fail("varint longer than " + std::to_string(kMaxVarintLength) + " bytes");
    }
    const std::uint8_t byte = input[index];
    value |= static_cast<std::uint64_t>(byte & 0x7f) << (7 * index);
    if ((byte & 0x80) == 0) {
      // A last byte of zero adds nothing: the same number has a shorter encoding.
      if (byte == 0 && index > 0) return fail("varint is not minimally encoded");
      input = input.subspan(index + 1);
      return value;
    }
  }
  if (input.empty()) return fail("truncated varint: no bytes left");
  if (input.size() >= kMaxVarintLength) {
    return fail("varint longer than " + std::to_string(kMaxVarintLength) + " bytes");
  }
  return fail("truncated varint: " + std::to_string(input.size()) +
              " byte(s), all with the continuation bit set");
}

Expected<std::uint64_t> decode_varint(ByteView input) {
  auto value = read_varint(input);
  if (!value) return value;
  if (!input.empty()) {
    return fail(std::to_string(input.size()) + " unexpected byte(s) after the varint");
  }
  return value;
}

}  // namespace an::p2p
