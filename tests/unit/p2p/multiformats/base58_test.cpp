// Base58btc and base36: bitcoin's base58_encode_decode.json vectors, multibase test vectors,
// hostile input.
#include "p2p/multiformats/base58.h"

#include <gtest/gtest.h>

#include "support/hex.h"

#include <random>
#include <string>
#include <utility>
#include <vector>

namespace an::p2p {
namespace {

using test::from_hex;

Bytes from_text(std::string_view text) {
  return Bytes(text.begin(), text.end());
}

TEST(Base58, BitcoinVectors) {
  // bitcoin/bitcoin src/test/data/base58_encode_decode.json
  const std::vector<std::pair<std::string, std::string>> vectors = {
      {"", ""},
      {"61", "2g"},
      {"626262", "a3gV"},
      {"636363", "aPEr"},
      {"73696d706c792061206c6f6e6720737472696e67", "2cFupjhnEsSn59qHXstmK2ffpLv2"},
      {"00eb15231dfceb60925886b67d065299925915aeb172c06647", "1NS17iag9jJgTHD1VXjvLCEnZuQ3rJDE9L"},
      {"516b6fcd0f", "ABnLTmg"},
      {"bf4f89001e670274dd", "3SEo3LWLoPntC"},
      {"572e4794", "3EFU7m"},
      {"ecac89cad93923c02321", "EJDM8drfXA6uyA"},
      {"10c8511e", "Rt5zm"},
      {"00000000000000000000", "1111111111"},
      {"000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
       "0000000000000000000000000000000000000000000000000000000000000000000000000000000000ec39d04c"
       "37e71e5d591881f6",
       "111111111111111111111111111111111111111111111111111111111111111111111111111111111111115TYz"
       "LYH1udmLdzCLM"},
      {"000111d38e5fc9071ffcd20b4a763cc9ae4f252bb4e48fd66a835e252ada93ff480d6dd43dc62a641155a5",
       "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"},
      {"271F359E", "zzzzy"},
      {"271F359F", "zzzzz"},
      {"271F35A0", "211111"},
      {"271F35A1", "211112"},
  };
  for (const auto& [hex, text] : vectors) {
    const Bytes bytes = from_hex(hex);
    EXPECT_EQ(base58btc_encode(bytes), text) << hex;
    auto decoded = base58btc_decode(text);
    ASSERT_TRUE(decoded) << text << ": " << decoded.error().message;
    EXPECT_EQ(*decoded, bytes) << text;
  }
}

TEST(Base58, AllByteValues) {
  // The last vector of bitcoin's file: 0x00..0xff.
  Bytes bytes(256);
  for (int i = 0; i < 256; ++i)
    bytes[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i);
  const std::string text = base58btc_encode(bytes);
  EXPECT_EQ(
      text,
      "1cWB5HCBdLjAuqGGReWE3R3CguuwSjw6RHn39s2yuDRTS5NsBgNiFpWgAnEx6VQi8csexkgYw3mdYrMHr8x9i7aE"
      "wP8kZ7vccXWqKDvGv3u1GxFKPuAkn8JCPPGDMf3vMMnbzm6Nh9zh1gcNsMvH3ZNLmP5fSG6DGbbi2tuwMWPthr4b"
      "oWwCxf7ewSgNQeacyozhKDDQQ1qL5fQFUW52QKUZDZ5fw3KXNQJMcNTcaB723LchjeKun7MuGW5qyCBZYzA1Kjof"
      "N1gYBV3NqyhQJ3Ns746GNuf9N2pQPmHz4xpnSrrfCvy6TVVz5d4PdrjeshsWQwpZsZGzvbdAdN8MKV5QsBDY");
  auto decoded = base58btc_decode(text);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(*decoded, bytes);
}

TEST(Base58, MultibaseVectors) {
  // multiformats/multibase tests/{basic,leading_zero,two_leading_zeros}.csv, prefix 'z' removed.
  EXPECT_EQ(base58btc_encode(from_text("yes mani !")), "7paNL19xttacUY");
  EXPECT_EQ(base58btc_encode(from_text(std::string("\0yes mani !", 11))), "17paNL19xttacUY");
  EXPECT_EQ(base58btc_encode(from_text(std::string("\0\0yes mani !", 12))), "117paNL19xttacUY");
  EXPECT_EQ(*base58btc_decode("117paNL19xttacUY"), from_text(std::string("\0\0yes mani !", 12)));
}

TEST(Base58, MultihashReadmeExample) {
  // multiformats/multihash README: sha2-256("multihash").
  const Bytes multihash =
      from_hex("12209cbc07c3f991725836a3aa2a581ca2029198aa420b9d99bc0e131d9f3e2cbe47");
  EXPECT_EQ(base58btc_encode(multihash), "QmYtUc4iTCbbfVSDNKvtQqrfyezPPnFvE33wFmutw9PBBk");
}

TEST(Base58, RejectsCharactersOutsideTheAlphabet) {
  // 0, O, I and l are left out of the alphabet on purpose; the rest is garbage.
  for (const std::string text : {"0", "O", "I", "l", "abc+", "12 3", "Qm\n", "-", "=="}) {
    auto decoded = base58btc_decode(text);
    EXPECT_FALSE(decoded) << text;
  }
  auto decoded = base58btc_decode("ab0c");
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.error().message, "invalid base58btc character '0' at position 2");
  auto binary = base58btc_decode(std::string("a\xff", 2));
  ASSERT_FALSE(binary);
  EXPECT_EQ(binary.error().message, "invalid base58btc character byte 0xff at position 1");
}

TEST(Base58, RefusesOversizedText) {
  const std::string huge(kMaxBaseXTextLength + 1, 'z');
  auto decoded = base58btc_decode(huge);
  ASSERT_FALSE(decoded);
  EXPECT_NE(decoded.error().message.find("more than the 8192 accepted"), std::string::npos);
  EXPECT_TRUE(base58btc_decode(std::string(kMaxBaseXTextLength, '1')));
}

TEST(Base36, MultibaseVectors) {
  // multiformats/multibase tests, prefix 'k' removed.
  EXPECT_EQ(base36_encode(from_text("yes mani !")), "2lcpzo5yikidynfl");
  EXPECT_EQ(base36_encode(from_text(std::string("\0yes mani !", 11))), "02lcpzo5yikidynfl");
  EXPECT_EQ(base36_encode(from_text(std::string("\0\0yes mani !", 12))), "002lcpzo5yikidynfl");
  EXPECT_EQ(*base36_decode("002lcpzo5yikidynfl"), from_text(std::string("\0\0yes mani !", 12)));
  EXPECT_FALSE(base36_decode("2LCPZO"));  // Multibase 'k' is lowercase.
  EXPECT_FALSE(base36_decode("abc-"));
}

TEST(BaseX, RandomRoundTripsAndGarbage) {
  std::mt19937 random(1);
  for (int trial = 0; trial < 2000; ++trial) {
    Bytes bytes(random() % 70);
    // Some leading zeros now and then, to exercise the '1' / '0' prefix.
    for (auto& byte : bytes)
      byte = static_cast<std::uint8_t>(random() % 4 == 0 ? 0 : random());
    auto b58 = base58btc_decode(base58btc_encode(bytes));
    ASSERT_TRUE(b58);
    EXPECT_EQ(*b58, bytes);
    auto b36 = base36_decode(base36_encode(bytes));
    ASSERT_TRUE(b36);
    EXPECT_EQ(*b36, bytes);

    std::string garbage(random() % 60, '\0');
    for (auto& c : garbage)
      c = static_cast<char>(random());
    if (auto decoded = base58btc_decode(garbage)) {
      EXPECT_EQ(base58btc_encode(*decoded), garbage);
    }
    if (auto decoded = base36_decode(garbage)) {
      EXPECT_EQ(base36_encode(*decoded), garbage);
    }
  }
}

}  // namespace
}  // namespace an::p2p
