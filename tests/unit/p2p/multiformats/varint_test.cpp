// Unsigned varint: examples from the multiformats unsigned-varint spec, limits, hostile input.
#include "p2p/multiformats/varint.h"

#include <gtest/gtest.h>

#include <random>
#include <utility>
#include <vector>

namespace an::p2p {
namespace {

TEST(Varint, EncodesTheSpecExamples) {
  // multiformats/unsigned-varint README, "Examples".
  const std::vector<std::pair<std::uint64_t, Bytes>> examples = {
      {1, {0x01}},         {127, {0x7f}},       {128, {0x80, 0x01}},
      {255, {0xff, 0x01}}, {300, {0xac, 0x02}}, {16384, {0x80, 0x80, 0x01}},
      {0, {0x00}},
  };
  for (const auto& [value, encoded] : examples) {
    EXPECT_EQ(encode_varint(value), encoded) << value;
    auto decoded = decode_varint(encoded);
    ASSERT_TRUE(decoded) << value << ": " << decoded.error().message;
    EXPECT_EQ(*decoded, value);
  }
}

TEST(Varint, LargestValueTakesNineBytes) {
  const Bytes encoded = encode_varint(kMaxVarintValue);
  EXPECT_EQ(encoded, (Bytes{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}));
  auto decoded = decode_varint(encoded);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(*decoded, kMaxVarintValue);
}

TEST(Varint, RejectsMoreThanNineBytes) {
  // 2^63 needs a 10th byte: it encodes, but the spec forbids decoding it.
  const Bytes ten_bytes = encode_varint(kMaxVarintValue + 1);
  EXPECT_EQ(ten_bytes.size(), 10u);
  auto decoded = decode_varint(ten_bytes);
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.error().message, "varint longer than 9 bytes");

  const Bytes nine_continuations(9, 0x80);
  EXPECT_FALSE(decode_varint(nine_continuations));
  const Bytes many_continuations(1000, 0xff);
  EXPECT_FALSE(decode_varint(many_continuations));
}

TEST(Varint, RejectsNonMinimalEncodings) {
  // The spec's own example: 0x81 0x00 is Go's encoding of 1, not a multiformats varint.
  for (const Bytes& encoded : {Bytes{0x81, 0x00}, Bytes{0x80, 0x00}, Bytes{0xff, 0x80, 0x00},
                               Bytes{0x80, 0x80, 0x80, 0x00}}) {
    auto decoded = decode_varint(encoded);
    ASSERT_FALSE(decoded);
    EXPECT_EQ(decoded.error().message, "varint is not minimally encoded");
  }
}

TEST(Varint, RejectsTruncatedInput) {
  auto empty = decode_varint(Bytes{});
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().message, "truncated varint: no bytes left");
  for (const Bytes& encoded : {Bytes{0x80}, Bytes{0xff, 0xff}, Bytes{0xac}}) {
    auto decoded = decode_varint(encoded);
    ASSERT_FALSE(decoded);
    EXPECT_NE(decoded.error().message.find("truncated varint"), std::string::npos);
  }
}

TEST(Varint, ReadAdvancesOnlyOnSuccess) {
  const Bytes buffer = {0xac, 0x02, 0x7f, 0x80};
  ByteView input = buffer;
  auto first = read_varint(input);
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, 300u);
  EXPECT_EQ(input.size(), 2u);
  auto second = read_varint(input);
  ASSERT_TRUE(second);
  EXPECT_EQ(*second, 127u);
  ASSERT_EQ(input.size(), 1u);
  EXPECT_FALSE(read_varint(input));
  EXPECT_EQ(input.size(), 1u);  // Untouched by the failure.
}

TEST(Varint, DecodeRejectsTrailingBytes) {
  auto decoded = decode_varint(Bytes{0x01, 0x02});
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.error().message, "1 unexpected byte(s) after the varint");
}

TEST(Varint, RoundTripsEveryBitLength) {
  std::mt19937_64 random(42);
  for (int bits = 0; bits <= 63; ++bits) {
    for (int trial = 0; trial < 20; ++trial) {
      const std::uint64_t value = bits == 0 ? 0 : (random() >> (64 - bits)) | (1ull << (bits - 1));
      const Bytes encoded = encode_varint(value);
      EXPECT_EQ(encoded.size(), bits == 0 ? 1u : static_cast<std::size_t>((bits + 6) / 7));
      auto decoded = decode_varint(encoded);
      ASSERT_TRUE(decoded) << value;
      EXPECT_EQ(*decoded, value);
    }
  }
}

TEST(Varint, RandomBytesNeverCrashAndDecodeCanonically) {
  std::mt19937 random(7);
  for (int trial = 0; trial < 20000; ++trial) {
    Bytes input(random() % 12);
    for (auto& byte : input)
      byte = static_cast<std::uint8_t>(random());
    ByteView rest = input;
    auto value = read_varint(rest);
    if (!value) continue;
    // Whatever decodes must be the one encoding of its value.
    const Bytes consumed(input.begin(), input.end() - static_cast<std::ptrdiff_t>(rest.size()));
    EXPECT_EQ(encode_varint(*value), consumed);
  }
}

}  // namespace
}  // namespace an::p2p
