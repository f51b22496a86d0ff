// Ed25519 through OpenSSL: RFC 8032 section 7.1 vectors, signing round trips, bad input.
#include "p2p/crypto/ed25519.h"

#include <gtest/gtest.h>

#include "support/hex.h"

#include <string>

namespace an::p2p {
namespace {

using test::from_hex;

struct Rfc8032Vector {
  const char* seed;
  const char* public_key;
  const char* message;
  const char* signature;
};

// RFC 8032 section 7.1, TEST 1 to 3.
const Rfc8032Vector kVectors[] = {
    {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b"
     "4"
     "6bd25bf5f0595bbe24655141438e7a100b"},
    {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11"
     "d"
     "8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc"
     "6"
     "594a7c15e9716ed28dc027beceea1ec40a"},
};

TEST(Ed25519, Rfc8032Vectors) {
  for (const auto& vector : kVectors) {
    auto key = Ed25519PrivateKey::from_seed(from_hex(vector.seed));
    ASSERT_TRUE(key) << key.error().message;
    EXPECT_EQ(to_bytes(key->public_key().bytes()), from_hex(vector.public_key));
    auto seed = key->seed();
    ASSERT_TRUE(seed);
    EXPECT_EQ(to_bytes(*seed), from_hex(vector.seed));

    const Bytes message = from_hex(vector.message);
    auto signature = key->sign(message);
    ASSERT_TRUE(signature) << signature.error().message;
    EXPECT_EQ(to_bytes(*signature), from_hex(vector.signature));

    auto public_key = Ed25519PublicKey::from_bytes(from_hex(vector.public_key));
    ASSERT_TRUE(public_key);
    EXPECT_TRUE(public_key->verify(message, from_hex(vector.signature)));
  }
}

TEST(Ed25519, VerifyRejectsTamperingAndBadSizes) {
  auto key = Ed25519PrivateKey::generate();
  ASSERT_TRUE(key) << key.error().message;
  const Bytes message = {'h', 'e', 'l', 'l', 'o'};
  auto signature = key->sign(message);
  ASSERT_TRUE(signature);
  const auto& public_key = key->public_key();
  EXPECT_TRUE(public_key.verify(message, *signature));

  Bytes other_message = message;
  other_message[0] ^= 1;
  EXPECT_FALSE(public_key.verify(other_message, *signature));
  Bytes bad_signature = to_bytes(*signature);
  bad_signature[10] ^= 0x40;
  EXPECT_FALSE(public_key.verify(message, bad_signature));
  EXPECT_FALSE(public_key.verify(message, Bytes(63, 0)));
  EXPECT_FALSE(public_key.verify(message, Bytes(65, 0)));
  EXPECT_FALSE(public_key.verify(message, Bytes{}));

  auto other_key = Ed25519PrivateKey::generate();
  ASSERT_TRUE(other_key);
  EXPECT_NE(other_key->public_key(), public_key);
  EXPECT_FALSE(other_key->public_key().verify(message, *signature));

  // Not a curve point (y >= p): never verifies, never crashes.
  auto not_a_point = Ed25519PublicKey::from_bytes(Bytes(32, 0xff));
  ASSERT_TRUE(not_a_point);
  EXPECT_FALSE(not_a_point->verify(message, *signature));
}

TEST(Ed25519, RejectsWrongSizes) {
  for (std::size_t size : {0u, 31u, 33u, 64u}) {
    auto key = Ed25519PrivateKey::from_seed(Bytes(size, 1));
    ASSERT_FALSE(key);
    EXPECT_EQ(key.error().message,
              "an Ed25519 private key seed is 32 bytes, not " + std::to_string(size));
    auto public_key = Ed25519PublicKey::from_bytes(Bytes(size, 1));
    ASSERT_FALSE(public_key);
    EXPECT_EQ(public_key.error().message,
              "an Ed25519 public key is 32 bytes, not " + std::to_string(size));
  }
}

TEST(Ed25519, CopiesShareTheKeyAndMovedFromKeysFailCleanly) {
  auto key = Ed25519PrivateKey::generate();
  ASSERT_TRUE(key);
  Ed25519PrivateKey copy = *key;
  EXPECT_EQ(copy.public_key(), key->public_key());
  const Bytes message = {1, 2, 3};
  auto signature = copy.sign(message);
  ASSERT_TRUE(signature);
  EXPECT_TRUE(key->public_key().verify(message, *signature));

  Ed25519PrivateKey moved = std::move(copy);
  EXPECT_TRUE(moved.sign(message));
  // A moved-from key is empty: it reports errors instead of crashing.
  EXPECT_FALSE(copy.sign(message));  // NOLINT(bugprone-use-after-move)
  EXPECT_FALSE(copy.seed());         // NOLINT(bugprone-use-after-move)

  copy = moved;
  EXPECT_TRUE(copy.sign(message));
}

TEST(Ed25519, GeneratedKeysDiffer) {
  auto first = Ed25519PrivateKey::generate();
  auto second = Ed25519PrivateKey::generate();
  ASSERT_TRUE(first && second);
  EXPECT_NE(*first->seed(), *second->seed());
}

}  // namespace
}  // namespace an::p2p
