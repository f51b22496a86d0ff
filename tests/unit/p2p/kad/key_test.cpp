// Kademlia keys: SHA-256 vectors computed outside this code base, XOR distance, common prefix
// length and distance ordering.
#include "p2p/kad/key.h"

#include <gtest/gtest.h>

#include "support/hex.h"

#include <random>
#include <string_view>

#include "unit/p2p/kad/kad_test_peers.h"

namespace an::p2p::kad {
namespace {

using an::test::from_hex;

Key key_from_hex(std::string_view hex) {
  const Bytes bytes = an::test::from_hex(hex);
  Key::Array array{};
  std::copy(bytes.begin(), bytes.end(), array.begin());
  return Key(array);
}

Key key_with_byte(std::size_t index, std::uint8_t value) {
  Key::Array array{};
  array[index] = value;
  return Key(array);
}

TEST(KadKey, HashesArbitraryBytesWithSha256) {
  // printf '' | sha256sum ; printf 'hello' | sha256sum
  EXPECT_EQ(Key::hash({}).to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  const std::string_view hello = "hello";
  EXPECT_EQ(Key::hash(ByteView(reinterpret_cast<const std::uint8_t*>(hello.data()), hello.size()))
                .to_hex(),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
}

TEST(KadKey, PeerKeyIsSha256OfTheMultihashBytes) {
  // The Ed25519 key of libp2p/specs peer-ids.md; its ID is the identity multihash 0x00 0x24 and
  // the 36-byte encoded key. Expected value from the shell:
  //   echo -n 0024080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e |
  //     xxd -r -p | sha256sum
  auto ed25519 = PeerId::parse("12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq");
  ASSERT_TRUE(ed25519);
  EXPECT_EQ(
      ed25519->bytes(),
      from_hex("0024080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"));
  EXPECT_EQ(Key::of_peer(*ed25519).to_hex(),
            "dfd53212a4bd2beda3ea8e82d08285370c70a70cfe9c588e28754b23c8033121");

  // The secp256k1 key of the same vectors (identity multihash 0x00 0x25, 37 bytes), same way:
  //   echo -n 002508021221037777e994e452c21604f91de093ce415f5432f701dd8cd1a7a6fea0e630bfca99 |
  //     xxd -r -p | sha256sum
  auto secp = PeerId::from_multihash(
      from_hex("002508021221037777e994e452c21604f91de093ce415f5432f701dd8cd1a7a6fea0e630bfca99"));
  ASSERT_TRUE(secp);
  EXPECT_EQ(Key::of_peer(*secp).to_hex(),
            "9d903983cbc42aee57123942e5cac1ab62dd70e4b817e4520025cbbccb72ab63");
}

TEST(KadKey, DistanceIsXor) {
  // The two digests above, XORed byte by byte (python3: bytes(a ^ b for a, b in zip(x, y))).
  const Key a = key_from_hex("dfd53212a4bd2beda3ea8e82d08285370c70a70cfe9c588e28754b23c8033121");
  const Key b = key_from_hex("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  EXPECT_EQ(distance(a, b).to_hex(),
            "f3277fa8fb0d88e38502b5a8153b67a91766b950e13b1ad05b7178415b88a905");
  EXPECT_EQ(distance(a, b), distance(b, a));
  EXPECT_EQ(distance(a, a), Key());
  EXPECT_EQ(distance(a, Key()), a);
  EXPECT_EQ(common_prefix_length(a, b), 0);  // 0xdf vs 0x2c: the first bit differs
}

TEST(KadKey, CommonPrefixLength) {
  const Key zero;
  EXPECT_EQ(common_prefix_length(zero, zero), kKeyBits);
  EXPECT_EQ(common_prefix_length(zero, key_with_byte(0, 0x80)), 0);
  EXPECT_EQ(common_prefix_length(zero, key_with_byte(0, 0x40)), 1);
  EXPECT_EQ(common_prefix_length(zero, key_with_byte(0, 0x01)), 7);
  EXPECT_EQ(common_prefix_length(zero, key_with_byte(1, 0x80)), 8);
  EXPECT_EQ(common_prefix_length(zero, key_with_byte(17, 0x10)), 17 * 8 + 3);
  EXPECT_EQ(common_prefix_length(zero, key_with_byte(31, 0x01)), 255);
  const Key ones = key_from_hex("ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff");
  EXPECT_EQ(common_prefix_length(ones, zero), 0);
  EXPECT_EQ(common_prefix_length(ones, ones), kKeyBits);
}

TEST(KadKey, OrderIsNumeric) {
  EXPECT_LT(key_with_byte(31, 0xff), key_with_byte(30, 0x01));
  EXPECT_LT(key_with_byte(0, 0x7f), key_with_byte(0, 0x80));
  EXPECT_LT(Key(), key_with_byte(31, 0x01));
}

TEST(KadKey, CompareDistanceAgreesWithComparingDistances) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 2000; ++i) {
    const Key target = test::random_key(rng);
    Key a = test::random_key(rng);
    Key b = test::random_key(rng);
    if (i % 3 == 0) {
      // Share a long prefix so that the comparison is decided deep in the keys.
      Key::Array bytes = a.bytes();
      bytes[31] ^= 0x01;
      b = Key(bytes);
    }
    EXPECT_EQ(compare_distance(target, a, b), distance(a, target) <=> distance(b, target));
    EXPECT_EQ(compare_distance(target, a, a), std::strong_ordering::equal);
  }
  // Nothing is closer to a key than the key itself.
  const Key target = test::random_key(rng);
  EXPECT_EQ(compare_distance(target, target, test::random_key(rng)), std::strong_ordering::less);
}

TEST(KadKey, CommonPrefixLengthMatchesTheDistanceBitLength) {
  std::mt19937_64 rng(11);
  for (int i = 0; i < 1000; ++i) {
    const Key a = test::random_key(rng);
    Key::Array bytes = a.bytes();
    const int bit = static_cast<int>(rng() % kKeyBits);
    bytes[static_cast<std::size_t>(bit / 8)] ^= static_cast<std::uint8_t>(0x80 >> (bit % 8));
    EXPECT_EQ(common_prefix_length(a, Key(bytes)), bit);
  }
}

}  // namespace
}  // namespace an::p2p::kad
