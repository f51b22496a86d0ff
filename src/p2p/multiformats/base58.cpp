#include "p2p/multiformats/base58.h"

#include <algorithm>
#include <array>
#include <cstdint>

namespace an::p2p {
namespace {

struct Alphabet {
  std::string_view name;
  std::string_view digits;
};

constexpr Alphabet kBase58Btc{"base58btc",
                              "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"};
constexpr Alphabet kBase36{"base36", "0123456789abcdefghijklmnopqrstuvwxyz"};

std::string encode(ByteView bytes, const Alphabet& alphabet) {
  const std::uint32_t base = static_cast<std::uint32_t>(alphabet.digits.size());
  std::size_t leading_zeros = 0;
  while (leading_zeros < bytes.size() && bytes[leading_zeros] == 0)
    ++leading_zeros;

  // Digits of the number, least significant first, each below `base`.
  std::vector<std::uint8_t> digits;
  digits.reserve(bytes.size() * 2);
  for (std::size_t i = leading_zeros; i < bytes.size(); ++i) {
    std::uint32_t carry = bytes[i];
    for (auto& digit : digits) {
      carry += static_cast<std::uint32_t>(digit) << 8;
      digit = static_cast<std::uint8_t>(carry % base);
      carry /= base;
    }
    while (carry > 0) {
      digits.push_back(static_cast<std::uint8_t>(carry % base));
      carry /= base;
    }
  }

  std::string text(leading_zeros, alphabet.digits[0]);
  text.reserve(leading_zeros + digits.size());
  for (auto it = digits.rbegin(); it != digits.rend(); ++it)
    text.push_back(alphabet.digits[*it]);
  return text;
}

Expected<Bytes> decode(std::string_view text, const Alphabet& alphabet) {
  if (text.size() > kMaxBaseXTextLength) {
    return fail(std::string(alphabet.name) + " text is " + std::to_string(text.size()) +
                " characters long, more than the " + std::to_string(kMaxBaseXTextLength) +
                " accepted");
  }
  std::array<int, 256> value_of{};
  value_of.fill(-1);
  for (std::size_t i = 0; i < alphabet.digits.size(); ++i) {
    value_of[static_cast<unsigned char>(alphabet.digits[i])] = static_cast<int>(i);
  }
  const std::uint32_t base = static_cast<std::uint32_t>(alphabet.digits.size());

  std::size_t leading_zeros = 0;
  while (leading_zeros < text.size() && text[leading_zeros] == alphabet.digits[0]) {
    ++leading_zeros;
  }
  // Bytes of the number, least significant first.
  Bytes bytes;
  bytes.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const int value = value_of[static_cast<unsigned char>(text[i])];
    if (value < 0) {
      return fail("invalid " + std::string(alphabet.name) + " character " +
                  describe_character(text[i]) + " at position " + std::to_string(i));
    }
    if (i < leading_zeros) continue;
    std::uint32_t carry = static_cast<std::uint32_t>(value);
    for (auto& byte : bytes) {
      carry += static_cast<std::uint32_t>(byte) * base;
      byte = static_cast<std::uint8_t>(carry & 0xff);
      carry >>= 8;
    }
    while (carry > 0) {
      bytes.push_back(static_cast<std::uint8_t>(carry & 0xff));
      carry >>= 8;
    }
  }
  bytes.insert(bytes.end(), leading_zeros, 0);
  std::reverse(bytes.begin(), bytes.end());
  return bytes;
}

}  // namespace

std::string base58btc_encode(ByteView bytes) {
  return encode(bytes, kBase58Btc);
}
Expected<Bytes> base58btc_decode(std::string_view text) {
  return decode(text, kBase58Btc);
}
std::string base36_encode(ByteView bytes) {
  return encode(bytes, kBase36);
}
Expected<Bytes> base36_decode(std::string_view text) {
  return decode(text, kBase36);
}

}  // namespace an::p2p
