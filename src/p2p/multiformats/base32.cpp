#include "p2p/multiformats/base32.h"

#include <cstdint>

namespace an::p2p {
namespace {

constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz234567";

int value_of(char c) {
  if (c >= 'a' && c <= 'z') return c - 'a';
  if (c >= '2' && c <= '7') return c - '2' + 26;
  return -1;
}

}  // namespace

std::string base32_encode(ByteView bytes) {
  std::string text;
  text.reserve((bytes.size() * 8 + 4) / 5);
  std::uint32_t buffer = 0;
  int buffered_bits = 0;
  for (const std::uint8_t byte : bytes) {
    buffer = (buffer << 8) | byte;
    buffered_bits += 8;
    while (buffered_bits >= 5) {
      buffered_bits -= 5;
      text.push_back(kAlphabet[(buffer >> buffered_bits) & 0x1f]);
    }
    buffer &= (1u << buffered_bits) - 1;
  }
  if (buffered_bits > 0) text.push_back(kAlphabet[(buffer << (5 - buffered_bits)) & 0x1f]);
  return text;
}

Expected<Bytes> base32_decode(std::string_view text) {
  // 8 characters carry 5 bytes; a tail of 1, 3 or 6 characters cannot come from whole bytes.
  const std::size_t tail = text.size() % 8;
  if (tail == 1 || tail == 3 || tail == 6) {
    return fail("invalid base32 length " + std::to_string(text.size()) +
                " (truncated or padded text?)");
  }
  Bytes bytes;
  bytes.reserve(text.size() * 5 / 8);
  std::uint32_t buffer = 0;
  int buffered_bits = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const int value = value_of(text[i]);
    if (value < 0) {
      std::string message = "invalid base32 character " + describe_character(text[i]) +
                            " at position " + std::to_string(i);
      if (text[i] == '=') message += " (padding is not used here)";
      if (text[i] >= 'A' && text[i] <= 'Z') message += " (this base32 is lowercase)";
      return fail(std::move(message));
    }
    buffer = (buffer << 5) | static_cast<std::uint32_t>(value);
    buffered_bits += 5;
    if (buffered_bits >= 8) {
      buffered_bits -= 8;
      bytes.push_back(static_cast<std::uint8_t>(buffer >> buffered_bits));
      buffer &= (1u << buffered_bits) - 1;
    }
  }
  if (buffer != 0) return fail("invalid base32 text: the last character has stray bits set");
  return bytes;
}

}  // namespace an::p2p
