// libp2p key protobufs: the test vectors of libp2p/specs peer-ids/peer-ids.md, the legacy
// 96-byte Ed25519 form, unsupported key types and malformed messages.
#include "p2p/crypto/keys.h"

#include <gtest/gtest.h>

#include "support/hex.h"
#include "unit/p2p/crypto/spec_key_vectors.h"

#include <random>
#include <string>

namespace an::p2p {
namespace {

using test::from_hex;
using namespace spec_vectors;

// The Ed25519 private key Data: 32-byte seed then 32-byte public key.
constexpr std::string_view kEd25519Seed =
    "7e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d";
constexpr std::string_view kEd25519PublicRaw =
    "1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e";

TEST(Keys, SpecEd25519PrivateKeyDecodesToTheSpecPublicKey) {
  auto key = decode_private_key(from_hex(kEd25519Private));
  ASSERT_TRUE(key) << key.error().message;
  EXPECT_EQ(to_bytes(key->public_key().bytes()), from_hex(kEd25519PublicRaw));
  EXPECT_EQ(to_bytes(*key->seed()), from_hex(kEd25519Seed));
  EXPECT_EQ(encode_public_key(key->public_key()), from_hex(kEd25519Public));
  // Re-encoding gives the spec's bytes back: the 64-byte form, as go-libp2p writes it.
  auto encoded = encode_private_key(*key);
  ASSERT_TRUE(encoded);
  EXPECT_EQ(*encoded, from_hex(kEd25519Private));
}

TEST(Keys, SpecEd25519PublicKeyDecodes) {
  auto key = decode_public_key(from_hex(kEd25519Public));
  ASSERT_TRUE(key) << key.error().message;
  EXPECT_EQ(to_bytes(key->bytes()), from_hex(kEd25519PublicRaw));
  const Bytes encoded = encode_public_key(*key);
  ASSERT_EQ(encoded.size(), 36u);
  EXPECT_EQ(Bytes(encoded.begin(), encoded.begin() + 4), (Bytes{0x08, 0x01, 0x12, 0x20}));
}

TEST(Keys, AcceptsTheLegacy96ByteForm) {
  Bytes legacy = {0x08, 0x01, 0x12, 0x60};
  for (auto part : {kEd25519Seed, kEd25519PublicRaw, kEd25519PublicRaw}) {
    const Bytes bytes = from_hex(part);
    legacy.insert(legacy.end(), bytes.begin(), bytes.end());
  }
  auto key = decode_private_key(legacy);
  ASSERT_TRUE(key) << key.error().message;
  EXPECT_EQ(to_bytes(key->public_key().bytes()), from_hex(kEd25519PublicRaw));
  // It is written back in the current 64-byte form.
  EXPECT_EQ(*encode_private_key(*key), from_hex(kEd25519Private));

  legacy.back() ^= 1;
  auto mismatched = decode_private_key(legacy);
  ASSERT_FALSE(mismatched);
  EXPECT_EQ(mismatched.error().message,
            "corrupt key: the two copies of the public key in the legacy 96-byte form differ");
}

TEST(Keys, RejectsAPublicHalfThatDoesNotMatchTheSeed) {
  Bytes corrupt = from_hex(kEd25519Private);
  corrupt.back() ^= 0x01;
  auto key = decode_private_key(corrupt);
  ASSERT_FALSE(key);
  EXPECT_EQ(key.error().message,
            "corrupt key: the public key stored in it is not the one its private key derives");
  Bytes corrupt_seed = from_hex(kEd25519Private);
  corrupt_seed[4] ^= 0x80;
  EXPECT_FALSE(decode_private_key(corrupt_seed));
}

TEST(Keys, TheEd25519OnlyDecodersRefuseOtherKeyTypes) {
  const std::pair<std::string_view, std::string_view> private_keys[] = {
      {kRsaPrivate, "RSA"}, {kSecp256k1Private, "Secp256k1"}, {kEcdsaPrivate, "ECDSA"}};
  for (const auto& [hex, name] : private_keys) {
    auto key = decode_private_key(from_hex(hex));
    ASSERT_FALSE(key) << name;
    EXPECT_EQ(key.error().message,
              "a key of type " + std::string(name) + " where an Ed25519 key was expected");
  }
  const std::pair<std::string_view, std::string_view> public_keys[] = {
      {kRsaPublic, "RSA"}, {kSecp256k1Public, "Secp256k1"}, {kEcdsaPublic, "ECDSA"}};
  for (const auto& [hex, name] : public_keys) {
    auto key = decode_public_key(from_hex(hex));
    ASSERT_FALSE(key) << name;
    EXPECT_EQ(key.error().message,
              "a key of type " + std::string(name) + " where an Ed25519 key was expected");
    // The structure still parses: enough to derive such a peer's ID.
    auto message = parse_public_key_message(from_hex(hex));
    ASSERT_TRUE(message) << message.error().message;
    EXPECT_EQ(key_type_name(message->type), name);
  }
}

TEST(Keys, RejectsMalformedMessages) {
  const Bytes valid = from_hex(kEd25519Private);
  const auto with = [&](Bytes prefix, const Bytes& suffix) {
    prefix.insert(prefix.end(), suffix.begin(), suffix.end());
    return prefix;
  };
  const Bytes data_field(valid.begin() + 2, valid.end());  // 0x12 0x40 + 64 bytes
  const std::vector<std::pair<Bytes, std::string>> cases = {
      {{}, "not a libp2p private key: no bytes"},
      {{0x08}, "not a libp2p private key: bad Type field: truncated varint: no bytes left"},
      {{0x08, 0x01}, "not a libp2p private key: the Data field is missing"},
      {data_field, "not a libp2p private key: the Type field is missing"},
      {{0x08, 0x01, 0x12, 0x40, 0x00},
       "not a libp2p private key: truncated: the Data field should be 64 bytes but only 1 are "
       "left"},
      {with(valid, {0x08, 0x01}), "not a libp2p private key: the Type field appears twice"},
      {with(valid, {0x12, 0x00}), "not a libp2p private key: the Data field appears twice"},
      {with(valid, {0x18, 0x01}),
       "not a libp2p private key: unexpected field 3 (varint) at byte 68"},
      {with(valid, {0x00}), "not a libp2p private key: unexpected field 0 (varint) at byte 68"},
      {with({0x0a, 0x00}, data_field),
       "not a libp2p private key: the Type field is length-delimited, expected varint"},
      {{0x08, 0x01, 0x10, 0x40},
       "not a libp2p private key: the Data field is varint, expected length-delimited"},
      {with({0x08, 0x09}, data_field), "not a libp2p private key: unknown key type 9"},
      {with({0x08, 0x81, 0x00}, data_field),
       "not a libp2p private key: bad Type field: varint is not minimally encoded"},
      {{0x08, 0x01, 0x12, 0x20, 1, 2},
       "not a libp2p private key: truncated: the Data field should be 32 bytes but only 2 are "
       "left"},
      {with({0x08, 0x01, 0x12, 0x20}, Bytes(32, 7)),
       "not a libp2p private key: Ed25519 key data is 32 bytes, expected 64 (or the legacy 96)"},
      {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
       "not a libp2p private key: bad field tag at byte 0: varint longer than 9 bytes"},
  };
  for (const auto& [bytes, message] : cases) {
    auto key = decode_private_key(bytes);
    ASSERT_FALSE(key) << message;
    EXPECT_EQ(key.error().message, message);
  }
  auto bad_public = decode_public_key(Bytes{0x08, 0x01, 0x12, 0x1f});
  ASSERT_FALSE(bad_public);
  EXPECT_EQ(bad_public.error().message,
            "not a libp2p public key: truncated: the Data field should be 31 bytes but only 0 are "
            "left");
  auto short_public = decode_public_key(with({0x08, 0x01, 0x12, 0x1f}, Bytes(31, 1)));
  ASSERT_FALSE(short_public);
  EXPECT_EQ(short_public.error().message,
            "not a libp2p public key: an Ed25519 public key is 32 bytes, not 31");
}

TEST(Keys, FieldsInReverseOrderAreAccepted) {
  // The spec asks encoders for tag order; protobuf readers accept any order, and so do we.
  const Bytes valid = from_hex(kEd25519Private);
  Bytes reversed(valid.begin() + 2, valid.end());
  reversed.push_back(0x08);
  reversed.push_back(0x01);
  EXPECT_TRUE(decode_private_key(reversed));
}

TEST(Keys, EveryTruncationOfTheSpecKeyFails) {
  const Bytes valid = from_hex(kEd25519Private);
  for (std::size_t size = 0; size < valid.size(); ++size) {
    EXPECT_FALSE(decode_private_key(ByteView(valid).first(size))) << size;
  }
  const Bytes public_key = from_hex(kEd25519Public);
  for (std::size_t size = 0; size < public_key.size(); ++size) {
    EXPECT_FALSE(decode_public_key(ByteView(public_key).first(size))) << size;
  }
}

TEST(Keys, RandomBytesAndBitFlipsNeverCrash) {
  std::mt19937 random(5);
  const Bytes valid = from_hex(kEd25519Private);
  for (int trial = 0; trial < 3000; ++trial) {
    Bytes bytes(random() % 80);
    for (auto& byte : bytes)
      byte = static_cast<std::uint8_t>(random());
    EXPECT_FALSE(decode_private_key(bytes));
    (void)decode_public_key(bytes);

    Bytes flipped = valid;
    flipped[random() % flipped.size()] ^= static_cast<std::uint8_t>(1u << (random() % 8));
    EXPECT_FALSE(decode_private_key(flipped));
  }
}

TEST(Keys, GeneratedKeysRoundTrip) {
  for (int i = 0; i < 20; ++i) {
    auto key = Ed25519PrivateKey::generate();
    ASSERT_TRUE(key);
    auto encoded = encode_private_key(*key);
    ASSERT_TRUE(encoded);
    ASSERT_EQ(encoded->size(), 68u);
    auto decoded = decode_private_key(*encoded);
    ASSERT_TRUE(decoded);
    EXPECT_EQ(decoded->public_key(), key->public_key());
    auto public_key = decode_public_key(encode_public_key(key->public_key()));
    ASSERT_TRUE(public_key);
    EXPECT_EQ(*public_key, key->public_key());
    secure_wipe(*encoded);
    EXPECT_TRUE(encoded->empty());
  }
}

}  // namespace
}  // namespace an::p2p
