// Base32 (multibase 'b'): RFC 4648 section 10 vectors, multibase vectors, hostile input.
#include "p2p/multiformats/base32.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <utility>
#include <vector>

namespace an::p2p {
namespace {

Bytes from_text(std::string_view text) {
  return Bytes(text.begin(), text.end());
}

TEST(Base32, Rfc4648VectorsLowercaseWithoutPadding) {
  // RFC 4648 section 10 ("MZXW6YTBOI======" for "foobar"), lowercased, padding removed.
  const std::vector<std::pair<std::string, std::string>> vectors = {
      {"", ""},
      {"f", "my"},
      {"fo", "mzxq"},
      {"foo", "mzxw6"},
      {"foob", "mzxw6yq"},
      {"fooba", "mzxw6ytb"},
      {"foobar", "mzxw6ytboi"},
  };
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base32_encode(from_text(plain)), encoded);
    auto decoded = base32_decode(encoded);
    ASSERT_TRUE(decoded) << encoded << ": " << decoded.error().message;
    EXPECT_EQ(*decoded, from_text(plain));
  }
}

TEST(Base32, MultibaseVectors) {
  // multiformats/multibase tests/{basic,leading_zero,two_leading_zeros}.csv, prefix 'b' removed.
  EXPECT_EQ(base32_encode(from_text("yes mani !")), "pfsxgidnmfxgsibb");
  EXPECT_EQ(base32_encode(from_text(std::string("\0yes mani !", 11))), "ab4wk4zanvqw42jaee");
  EXPECT_EQ(base32_encode(from_text(std::string("\0\0yes mani !", 12))), "aaahszltebwwc3tjeaqq");
  EXPECT_EQ(*base32_decode("aaahszltebwwc3tjeaqq"), from_text(std::string("\0\0yes mani !", 12)));
}

TEST(Base32, RejectsPaddingUppercaseAndForeignCharacters) {
  auto padded = base32_decode("my======");
  ASSERT_FALSE(padded);
  EXPECT_EQ(padded.error().message,
            "invalid base32 character '=' at position 2 (padding is not used here)");
  auto upper = base32_decode("MZXQ");
  ASSERT_FALSE(upper);
  EXPECT_EQ(upper.error().message,
            "invalid base32 character 'M' at position 0 (this base32 is lowercase)");
  for (const std::string& text :
       std::vector<std::string>{"mzx1", "mzx8", "mzx0", "mz q", std::string("mz\0q", 4)}) {
    EXPECT_FALSE(base32_decode(text)) << text;
  }
}

TEST(Base32, RejectsImpossibleLengthsAndStrayBits) {
  for (const std::string text : {"m", "mzx", "mzxw6y", "mzxw6ytbo"}) {
    auto decoded = base32_decode(text);
    ASSERT_FALSE(decoded) << text;
    EXPECT_NE(decoded.error().message.find("invalid base32 length"), std::string::npos);
  }
  // "my" is "f"; "mz" would be "f" plus two set bits that no encoder writes.
  auto stray = base32_decode("mz");
  ASSERT_FALSE(stray);
  EXPECT_EQ(stray.error().message, "invalid base32 text: the last character has stray bits set");
}

TEST(Base32, RandomRoundTripsAndGarbage) {
  std::mt19937 random(3);
  for (int trial = 0; trial < 3000; ++trial) {
    Bytes bytes(random() % 50);
    for (auto& byte : bytes)
      byte = static_cast<std::uint8_t>(random());
    auto decoded = base32_decode(base32_encode(bytes));
    ASSERT_TRUE(decoded);
    EXPECT_EQ(*decoded, bytes);

    std::string garbage(random() % 40, '\0');
    const std::string_view pool = "abcdefghijklmnopqrstuvwxyz234567=A1";
    for (auto& c : garbage)
      c = pool[random() % pool.size()];
    // Anything accepted must be the one canonical spelling of its bytes.
    if (auto accepted = base32_decode(garbage)) {
      EXPECT_EQ(base32_encode(*accepted), garbage);
    }
  }
}

}  // namespace
}  // namespace an::p2p
