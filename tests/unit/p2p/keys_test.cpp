// libp2p key protobufs: the test vectors of libp2p/specs peer-ids/peer-ids.md, the legacy
// 96-byte Ed25519 form, unsupported key types and malformed messages.
#include "p2p/crypto/keys.h"

#include <gtest/gtest.h>

#include "support/hex.h"

#include <random>
#include <string>

namespace an::p2p {
namespace {

using test::from_hex;

Bytes to_bytes(ByteView view) {
  return Bytes(view.begin(), view.end());
}

// libp2p/specs peer-ids/peer-ids.md, "Test vectors" (hex of the protobuf messages).
constexpr std::string_view kEcdsaPrivate =
    "08031279307702010104203e5b1fe9712e6c314942a750bd67485de3c1efe85b1bfb520ae8f9ae3dfa4a4ca00a"
    "06082a8648ce3d030107a14403420004de3d300fa36ae0e8f5d530899d83abab44abf3161f162a4bc901d8e6ec"
    "da020e8b6d5f8da30525e71d6851510c098e5c47c646a597fb4dcec034e9f77c409e62";
constexpr std::string_view kEcdsaPublic =
    "0803125b3059301306072a8648ce3d020106082a8648ce3d03010703420004de3d300fa36ae0e8f5d530899d83"
    "abab44abf3161f162a4bc901d8e6ecda020e8b6d5f8da30525e71d6851510c098e5c47c646a597fb4dcec034e9"
    "f77c409e62";
constexpr std::string_view kEd25519Private =
    "080112407e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d1ed1e8fae2c4a144b8"
    "be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e";
constexpr std::string_view kEd25519Public =
    "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e";
constexpr std::string_view kSecp256k1Private =
    "0802122053dadf1d5a164d6b4acdb15e24aa4c5b1d3461bdbd42abedb0a4404d56ced8fb";
constexpr std::string_view kSecp256k1Public =
    "08021221037777e994e452c21604f91de093ce415f5432f701dd8cd1a7a6fea0e630bfca99";
constexpr std::string_view kRsaPrivate =
    "080012ae123082092a0201000282020100e1beab071d08200bde24eef00d049449b07770ff9910257b2d7d5dda"
    "242ce8f0e2f12e1af4b32d9efd2c090f66b0f29986dbb645dae9880089704a94e5066d594162ae6ee8892e6ec7"
    "0701db0a6c445c04778eb3de1293aa1a23c3825b85c6620a2bc3f82f9b0c309bc0ab3aeb1873282bebd3da03c3"
    "3e76c21e9beb172fd44c9e43be32e2c99827033cf8d0f0c606f4579326c930eb4e854395ad941256542c793902"
    "185153c474bed109d6ff5141ebf9cd256cf58893a37f83729f97e7cb435ec679d2e33901d27bb35aa0d7e20561"
    "da08885ef0abbf8e2fb48d6a5487047a9ecb1ad41fa7ed84f6e3e8ecd5d98b3982d2a901b4454991766da295ab"
    "78822add5612a2df83bcee814cf50973e80d7ef38111b1bd87da2ae92438a2c8cbcc70b31ee319939a3b9c761d"
    "bc13b5c086d6b64bf7ae7dacc14622375d92a8ff9af7eb962162bbddebf90acb32adb5e4e4029f1c96019949ec"
    "fbfeffd7ac1e3fbcc6b6168c34be3d5a2e5999fcbb39bba7adbca78eab09b9bc39f7fa4b93411f4cc175e70c0a"
    "083e96bfaefb04a9580b4753c1738a6a760ae1afd851a1a4bdad231cf56e9284d832483df215a46c1c21bdf0c6"
    "cfe951c18f1ee4078c79c13d63edb6e14feaeffabc90ad317e4875fe648101b0864097e998f0ca3025ef9638cd"
    "2b0caecd3770ab54a1d9c6ca959b0f5dcbc90caeefc4135baca6fd475224269bbe1b02030100010282020100a4"
    "72ffa858efd8588ce59ee264b957452f3673acdf5631d7bfd5ba0ef59779c231b0bc838a8b14cae367b6d9ef57"
    "2c03c7883b0a3c652f5c24c316b1ccfd979f13d0cd7da20c7d34d9ec32dfdc81ee7292167e706d705efde5b8f3"
    "edfcba41409e642f8897357df5d320d21c43b33600a7ae4e505db957c1afbc189d73f0b5d972d9aaaeeb232ca2"
    "0eebd5de6fe7f29d01470354413cc9a0af1154b7af7c1029adcd67c74b4798afeb69e09f2cb387305e73a1b5f4"
    "50202d54f0ef096fe1bde340219a1194d1ac9026e90b366cce0c59b239d10e4888f52ca1780824d39ae01a6b9f"
    "4dd6059191a7f12b2a3d8db3c2868cd4e5a5862b8b625a4197d52c6ac77710116ebd3ced81c4d91ad5fdfbed68"
    "312ebce7eea45c1833ca3acf7da2052820eacf5c6b07d086dabeb893391c71417fd8a4b1829ae2cf60d1749d0e"
    "25da19530d889461c21da3492a8dc6ccac7de83ac1c2185262c7473c8cc42f547cc9864b02a8073b6aa54a037d"
    "8c0de3914784e6205e83d97918b944f11b877b12084c0dd1d36592f8a4f8b8da5bb404c3d2c079b22b6ceabfbc"
    "b637c0dbe0201f0909d533f8bf308ada47aee641a012a494d31b54c974e58b87f140258258bb82f31692659db7"
    "aa07e17a5b2a0832c24e122d3a8babcc9ee74cbb07d3058bb85b15f6f6b2674aba9fd34367be9782d444335fbe"
    "d31e3c4086c652597c27104938b47fa10282010100e9fdf843c1550070ca711cb8ff28411466198f0e212511c3"
    "186623890c0071bf6561219682fe7dbdfd81176eba7c4faba21614a20721e0fcd63768e6d925688ecc90992059"
    "ac89256e0524de90bf3d8a052ce6a9f6adafa712f3107a016e20c80255c9e37d8206d1bc327e06e66eb24288da"
    "866b55904fd8b59e6b2ab31bc5eab47e597093c63fab7872102d57b4c589c66077f534a61f5f65127459a33c91"
    "f6db61fc431b1ae90be92b4149a3255291baf94304e3efb77b1107b5a3bda911359c40a53c347ff9100baf8f36"
    "dc5cd991066b5bdc28b39ed644f404afe9213f4d31c9d4e40f3a5f5e3c39bebeb244e84137544e1a1839c1c8aa"
    "ebf0c78a7fad590282010100f6fa1f1e6b803742d5490b7441152f500970f46feb0b73a6e4baba2aaf3c0e245e"
    "d852fc31d86a8e46eb48e90fac409989dfee45238f97e8f1f8e83a136488c1b04b8a7fb695f37b8616307ff8a8"
    "d63e8cfa0b4fb9b9167ffaebabf111aa5a4344afbabd002ae8961c38c02da76a9149abdde93eb389eb32595c29"
    "ba30d8283a7885218a5a9d33f7f01dbdf85f3aad016c071395491338ec318d39220e1c7bd69d3d6b520a13a30d"
    "745c102b827ad9984b0dd6aed73916ffa82a06c1c111e7047dcd2668f988a0570a71474992eecf416e068f029e"
    "c323d5d635fd24694fc9bf96973c255d26c772a95bf8b7f876547a5beabf86f06cd21b67994f944e7a54930282"
    "01010095b02fd30069e547426a8bea58e8a2816f33688dac6c6f6974415af8402244a22133baedf34ce499d703"
    "6f3f19b38eb00897c18949b0c5a25953c71aeeccfc8f6594173157cc854bd98f16dffe8f28ca13b77eb43a2730"
    "585c49fc3f608cd811bb54b03b84bddaa8ef910988567f783012266199667a546a18fd88271fbf63a45ae4fd48"
    "84706da8befb9117c0a4d73de5172f8640b1091ed8a4aea3ed4641463f5ff6a5e3401ad7d0c92811f87956d1fd"
    "5f9a1d15c7f3839a08698d9f35f9d966e5000f7cb2655d7b6c4adcd8a9d950ea5f61bb7c9a33c17508f9baa313"
    "eecfee4ae493249ebe05a5d7770bbd3551b2eeb752e3649e0636de08e3d672e66cb90282010100ad93e4c31072"
    "b063fc5ab5fe22afacece775c795d0efdf7c704cfc027bde0d626a7646fc905bb5a80117e3ca49059af14e0160"
    "089f9190065be9bfecf12c3b2145b211c8e89e42dd91c38e9aa23ca73697063564f6f6aa6590088a738722df05"
    "6004d18d7bccac62b3bafef6172fc2a4b071ea37f31eff7a076bcab7dd144e51a9da8754219352aef2c7347897"
    "1539fa41de4759285ea626fa3c72e7085be47d554d915bbb5149cb6ef835351f231043049cd941506a034bf2f8"
    "767f3e1e42ead92f91cb3d75549b57ef7d56ac39c2d80d67f6a2b4ca192974bfc5060e2dd171217971002193db"
    "a12e7e4133ab201f07500a90495a38610279b13a48d54f0c99028201003e3a1ac0c2b67d54ed5c4bbe04a7db99"
    "103659d33a4f9d35809e1f60c282e5988dddc964527f3b05e6cc890eab3dcb571d66debf3a5527704c87264b39"
    "54d7265f4e8d2c637dd89b491b9cf23f264801f804b90454d65af0c4c830d1aef76f597ef61b26ca857ecce9cb"
    "78d4f6c2218c00d2975d46c2b013fbf59b750c3b92d8d3ed9e6d1fd0ef1ec091a5c286a3fe2dead292f40f3800"
    "65731e2079ebb9f2a7ef2c415ecbb488da98f3a12609ca1b6ec8c734032c8bd513292ff842c375d4acd1b02dfb"
    "206b24cd815f8e2f9d4af8e7dea0370b19c1b23cc531d78b40e06e1119ee2e08f6f31c6e2e8444c568d13c5d45"
    "1a291ae0c9f1d4f27d23b3a00d60ad";
constexpr std::string_view kRsaPublic =
    "080012a60430820222300d06092a864886f70d01010105000382020f003082020a0282020100e1beab071d0820"
    "0bde24eef00d049449b07770ff9910257b2d7d5dda242ce8f0e2f12e1af4b32d9efd2c090f66b0f29986dbb645"
    "dae9880089704a94e5066d594162ae6ee8892e6ec70701db0a6c445c04778eb3de1293aa1a23c3825b85c6620a"
    "2bc3f82f9b0c309bc0ab3aeb1873282bebd3da03c33e76c21e9beb172fd44c9e43be32e2c99827033cf8d0f0c6"
    "06f4579326c930eb4e854395ad941256542c793902185153c474bed109d6ff5141ebf9cd256cf58893a37f8372"
    "9f97e7cb435ec679d2e33901d27bb35aa0d7e20561da08885ef0abbf8e2fb48d6a5487047a9ecb1ad41fa7ed84"
    "f6e3e8ecd5d98b3982d2a901b4454991766da295ab78822add5612a2df83bcee814cf50973e80d7ef38111b1bd"
    "87da2ae92438a2c8cbcc70b31ee319939a3b9c761dbc13b5c086d6b64bf7ae7dacc14622375d92a8ff9af7eb96"
    "2162bbddebf90acb32adb5e4e4029f1c96019949ecfbfeffd7ac1e3fbcc6b6168c34be3d5a2e5999fcbb39bba7"
    "adbca78eab09b9bc39f7fa4b93411f4cc175e70c0a083e96bfaefb04a9580b4753c1738a6a760ae1afd851a1a4"
    "bdad231cf56e9284d832483df215a46c1c21bdf0c6cfe951c18f1ee4078c79c13d63edb6e14feaeffabc90ad31"
    "7e4875fe648101b0864097e998f0ca3025ef9638cd2b0caecd3770ab54a1d9c6ca959b0f5dcbc90caeefc4135b"
    "aca6fd475224269bbe1b0203010001";
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

TEST(Keys, OtherKeyTypesAreNotSupportedYet) {
  const std::pair<std::string_view, std::string_view> private_keys[] = {
      {kRsaPrivate, "RSA"}, {kSecp256k1Private, "Secp256k1"}, {kEcdsaPrivate, "ECDSA"}};
  for (const auto& [hex, name] : private_keys) {
    auto key = decode_private_key(from_hex(hex));
    ASSERT_FALSE(key) << name;
    EXPECT_EQ(key.error().message, "key type " + std::string(name) + " is not supported yet");
  }
  const std::pair<std::string_view, std::string_view> public_keys[] = {
      {kRsaPublic, "RSA"}, {kSecp256k1Public, "Secp256k1"}, {kEcdsaPublic, "ECDSA"}};
  for (const auto& [hex, name] : public_keys) {
    auto key = decode_public_key(from_hex(hex));
    ASSERT_FALSE(key) << name;
    EXPECT_EQ(key.error().message, "key type " + std::string(name) + " is not supported yet");
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
