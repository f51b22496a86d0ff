// Byte buffers and their text forms, shared by every layer. Header-only; pure functions, any
// thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace an {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

inline char hex_digit(unsigned nibble) {
  return "0123456789abcdef"[nibble & 0x0f];
}

// Lower-case hex, two digits a byte.
inline std::string to_hex(ByteView bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::uint8_t byte : bytes) {
    out += hex_digit(byte >> 4);
    out += hex_digit(byte);
  }
  return out;
}

inline Bytes to_bytes(ByteView view) {
  return Bytes(view.begin(), view.end());
}

inline Bytes to_bytes(std::string_view text) {
  return Bytes(text.begin(), text.end());
}

// A character of untrusted text for an error message: itself when printable, else its code.
inline std::string describe_character(char c) {
  const auto byte = static_cast<unsigned char>(c);
  if (byte >= 0x21 && byte < 0x7f) return std::string("'") + c + "'";
  return std::string("byte 0x") + hex_digit(byte >> 4) + hex_digit(byte);
}

}  // namespace an
