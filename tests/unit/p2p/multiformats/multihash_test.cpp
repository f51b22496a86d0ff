// Multihash: multihash README and test_cases.csv vectors, identity, malformed input.
#include "p2p/multiformats/multihash.h"

#include <gtest/gtest.h>

#include "support/hex.h"

#include <random>
#include <string>

namespace an::p2p {
namespace {

using test::from_hex;

Bytes from_text(std::string_view text) {
  return Bytes(text.begin(), text.end());
}

TEST(Multihash, Sha256OfTheReadmeExample) {
  // multiformats/multihash README: sha2-256("multihash").
  auto multihash = sha256_multihash(from_text("multihash"));
  ASSERT_TRUE(multihash);
  EXPECT_EQ(multihash->encode(),
            from_hex("12209cbc07c3f991725836a3aa2a581ca2029198aa420b9d99bc0e131d9f3e2cbe47"));
}

TEST(Multihash, Sha256OfNothing) {
  // multiformats/multihash tests/values/test_cases.csv, sha2-256 with all 256 bits.
  auto multihash = sha256_multihash(Bytes{});
  ASSERT_TRUE(multihash);
  EXPECT_EQ(multihash->encode(),
            from_hex("1220e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
}

TEST(Multihash, IdentityWrapsTheData) {
  const Bytes data = from_text("hello");
  const Multihash multihash = identity_multihash(data);
  EXPECT_EQ(multihash.encode(), (Bytes{0x00, 0x05, 'h', 'e', 'l', 'l', 'o'}));
  auto parsed = parse_multihash(multihash.encode());
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*parsed, multihash);
  EXPECT_EQ(identity_multihash(Bytes{}).encode(), (Bytes{0x00, 0x00}));
}

TEST(Multihash, ParsesOtherFunctionsGenerically) {
  // sha1, 80 bits, from test_cases.csv: the code is kept, the digest is not checked.
  auto parsed = parse_multihash(from_hex("110ada39a3ee5e6b4b0d3255"));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->code, 0x11u);
  EXPECT_EQ(parsed->digest.size(), 10u);
  EXPECT_EQ(multihash_code_name(0x11), "0x11");
  EXPECT_EQ(multihash_code_name(0x12), "sha2-256");
}

TEST(Multihash, RejectsMalformedInput) {
  const std::vector<std::pair<Bytes, std::string>> cases = {
      {{}, "bad multihash function code: truncated varint: no bytes left"},
      {{0x12}, "bad multihash digest length: truncated varint: no bytes left"},
      {{0x12, 0x20, 0x01},
       "truncated multihash: the sha2-256 digest should be 32 bytes but only 1 are left"},
      // A sha2-256 digest cut to 80 bits (test_cases.csv) is not a hash we trust.
      {from_hex("120ae3b0c44298fc1c149afb"),
       "a sha2-256 multihash digest must be 32 bytes, not 10"},
      {{0x80, 0x00, 0x00}, "bad multihash function code: varint is not minimally encoded"},
      {{0x00, 0x01, 0xaa, 0xbb}, "1 unexpected byte(s) after the multihash"},
  };
  for (const auto& [bytes, message] : cases) {
    auto parsed = parse_multihash(bytes);
    ASSERT_FALSE(parsed) << message;
    EXPECT_EQ(parsed.error().message, message);
  }
  // From go-multiaddr: "QmxoHT6iViN5xAjoz1VZ553cL31U9F94ht3QvWR1FrEbZY", a 33-byte "sha256".
  Bytes too_long = {0x12, 0x21};
  too_long.resize(2 + 33, 0xff);
  EXPECT_FALSE(parse_multihash(too_long));
}

TEST(Multihash, RandomBytesNeverCrash) {
  std::mt19937 random(11);
  for (int trial = 0; trial < 20000; ++trial) {
    Bytes bytes(random() % 40);
    for (auto& byte : bytes)
      byte = static_cast<std::uint8_t>(random() % 3 == 0 ? random() % 0x22 : random());
    if (auto parsed = parse_multihash(bytes)) {
      EXPECT_EQ(parsed->encode(), bytes);
    }
  }
}

}  // namespace
}  // namespace an::p2p
