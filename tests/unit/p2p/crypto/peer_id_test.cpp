// Peer IDs: derived from the key vectors of libp2p/specs peer-ids.md, the spec's example IDs,
// go-multiaddr's peer ID strings, and malformed text.
#include "p2p/crypto/peer_id.h"

#include <gtest/gtest.h>

#include "support/hex.h"

#include <random>
#include <string>
#include <unordered_set>

#include "p2p/crypto/key.h"
#include "p2p/crypto/keys.h"
#include "p2p/multiformats/base32.h"
#include "p2p/multiformats/base58.h"

namespace an::p2p {
namespace {

using test::from_hex;

// libp2p/specs peer-ids/peer-ids.md, "Test vectors": encoded public keys.
constexpr std::string_view kEcdsaPublic =
    "0803125b3059301306072a8648ce3d020106082a8648ce3d03010703420004de3d300fa36ae0e8f5d530899d83"
    "abab44abf3161f162a4bc901d8e6ecda020e8b6d5f8da30525e71d6851510c098e5c47c646a597fb4dcec034e9"
    "f77c409e62";
constexpr std::string_view kEd25519Public =
    "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e";
constexpr std::string_view kSecp256k1Public =
    "08021221037777e994e452c21604f91de093ce415f5432f701dd8cd1a7a6fea0e630bfca99";
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
// The peer IDs of those keys follow from the spec's rules (identity multihash up to 42 bytes,
// sha2-256 above) and agree with what other libp2p implementations print for these vectors.
constexpr std::string_view kEd25519PeerId = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq";
constexpr std::string_view kEd25519Cid =
    "bafzaajaiaejcahwr5d5ofrfbis4l5d6uwr57hu5tjodrypfm6yaq6dsc2r2pzyt6";
constexpr std::string_view kSecp256k1PeerId =
    "16Uiu2HAmLhLvBoYaoZfaMUKuibM6ac163GwKY74c5kiSLg5KvLpY";
constexpr std::string_view kEcdsaPeerId = "QmVMT29id3TUASyfZZ6k9hmNyc2nYabCo4uMSpDw4zrgDk";
constexpr std::string_view kRsaPeerId = "QmaeANgBs1DTSxWSrPPtobgQuxW8XTfsS4ydbK4rCHzqxG";

TEST(PeerId, FromTheSpecEd25519Key) {
  auto public_key = decode_public_key(from_hex(kEd25519Public));
  ASSERT_TRUE(public_key);
  const PeerId id = PeerId::from_public_key(*public_key);
  EXPECT_EQ(id.to_base58(), kEd25519PeerId);
  EXPECT_EQ(id.to_string(), kEd25519PeerId);
  EXPECT_EQ(id.to_cid_text(), kEd25519Cid);
  // Identity multihash: 0x00, length 36, then the encoded key.
  EXPECT_EQ(id.bytes().size(), 38u);
  EXPECT_EQ(id.bytes()[0], 0x00);
  EXPECT_EQ(id.bytes()[1], 36);
  EXPECT_TRUE(id.has_inline_public_key());
  auto extracted = id.ed25519_public_key();
  ASSERT_TRUE(extracted) << extracted.error().message;
  EXPECT_EQ(*extracted, *public_key);

  auto from_encoded = PeerId::from_encoded_public_key(from_hex(kEd25519Public));
  ASSERT_TRUE(from_encoded);
  EXPECT_EQ(*from_encoded, id);
}

TEST(PeerId, FromTheSpecKeysOfOtherTypes) {
  // secp256k1: 37 bytes, inlined. ECDSA (95) and RSA (555): hashed with sha2-256.
  const std::pair<std::string_view, std::string_view> cases[] = {
      {kSecp256k1Public, kSecp256k1PeerId},
      {kEcdsaPublic, kEcdsaPeerId},
      {kRsaPublic, kRsaPeerId},
  };
  for (const auto& [public_hex, expected] : cases) {
    auto id = PeerId::from_encoded_public_key(from_hex(public_hex));
    ASSERT_TRUE(id) << id.error().message;
    EXPECT_EQ(id->to_base58(), expected);
    auto parsed = PeerId::parse(expected);
    ASSERT_TRUE(parsed) << parsed.error().message;
    EXPECT_EQ(*parsed, *id);
  }
  auto secp = PeerId::parse(kSecp256k1PeerId);
  ASSERT_TRUE(secp);
  EXPECT_TRUE(secp->has_inline_public_key());
  auto secp_key = secp->ed25519_public_key();
  ASSERT_FALSE(secp_key);
  EXPECT_NE(secp_key.error().message.find("a key of type Secp256k1 where an Ed25519 key"),
            std::string::npos);
  auto inlined = secp->inline_public_key();
  ASSERT_TRUE(inlined) << inlined.error().message;
  EXPECT_EQ(inlined->type(), KeyType::kSecp256k1);
  EXPECT_EQ(inlined->protobuf(), from_hex(kSecp256k1Public));
  EXPECT_EQ(inlined->peer_id(), *secp);
  EXPECT_FALSE(PeerId::parse(kRsaPeerId)->inline_public_key());

  auto rsa = PeerId::parse(kRsaPeerId);
  ASSERT_TRUE(rsa);
  EXPECT_FALSE(rsa->has_inline_public_key());
  auto rsa_key = rsa->ed25519_public_key();
  ASSERT_FALSE(rsa_key);
  EXPECT_EQ(rsa_key.error().message,
            "peer ID " + std::string(kRsaPeerId) +
                " is a hash of its public key: the key itself must come from the peer");
}

TEST(PeerId, SpecExamplesInBothTextForms) {
  // peer-ids.md: the same sha256 peer ID as a CID and as a raw base58btc multihash.
  auto from_cid = PeerId::parse("bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe");
  ASSERT_TRUE(from_cid) << from_cid.error().message;
  auto from_base58 = PeerId::parse("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N");
  ASSERT_TRUE(from_base58) << from_base58.error().message;
  EXPECT_EQ(*from_cid, *from_base58);
  EXPECT_EQ(from_cid->to_base58(), "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N");
  EXPECT_EQ(from_base58->to_cid_text(),
            "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe");

  // peer-ids.md: an Ed25519 peer ID with its key inlined.
  auto ed25519 = PeerId::parse("12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA");
  ASSERT_TRUE(ed25519) << ed25519.error().message;
  EXPECT_EQ(ed25519->to_base58(), "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA");
  auto key = ed25519->ed25519_public_key();
  ASSERT_TRUE(key) << key.error().message;
  EXPECT_EQ(PeerId::from_public_key(*key), *ed25519);
  auto round_trip = PeerId::parse(ed25519->to_cid_text());
  ASSERT_TRUE(round_trip);
  EXPECT_EQ(*round_trip, *ed25519);
}

TEST(PeerId, GoMultiaddrPeerIdStrings) {
  // Peer IDs that go-multiaddr's tests accept after /p2p/: base58, base32 and base36 CIDs.
  for (const char* text : {"QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC",
                           "k2k4r8oqamigqdo6o7hsbfwd45y70oyynp98usk7zmyfrzpqxh1pohl7",
                           "bafzbeigvf25ytwc3akrijfecaotc74udrhcxzh2cx3we5qqnw5vgrei4bm",
                           "12D3KooWCryG7Mon9orvQxcS1rYZjotPgpwoJNHHKcLLfE4Hf5mV",
                           "k51qzi5uqu5dhb6l8spkdx7yxafegfkee5by8h7lmjh2ehc2sgg34z7c15vzqs",
                           "bafzaajaiaejcalj543iwv2d7pkjt7ykvefrkfu7qjfi6sduakhso4lay6abn2d5u"}) {
    auto id = PeerId::parse(text);
    ASSERT_TRUE(id) << text << ": " << id.error().message;
    auto again = PeerId::parse(id->to_base58());
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, *id);
  }
  // The base36 and base32 CIDs of go's tests name the same Ed25519 peer.
  EXPECT_EQ(*PeerId::parse("k51qzi5uqu5dhb6l8spkdx7yxafegfkee5by8h7lmjh2ehc2sgg34z7c15vzqs"),
            *PeerId::parse("bafzaajaiaejcalj543iwv2d7pkjt7ykvefrkfu7qjfi6sduakhso4lay6abn2d5u"));
}

Bytes oversized_inline_cid() {
  Bytes cid = {0x01, 0x72, 0x00, 43};
  cid.resize(cid.size() + 43, 0x08);
  return cid;
}

TEST(PeerId, RejectsMalformedText) {
  const std::pair<std::string, std::string> cases[] = {
      {"", "invalid peer ID \"\": empty text"},
      // go-multiaddr TestInvalidP2PAddrString: bad base36, unknown multibase, wrong codec.
      {"k2k4r8oqamigqdo6o7hsbfwd45y70oyynp98usk7zmyfrzpqxh1pohl-",
       "invalid peer ID \"k2k4r8oqamigqdo6o7hsbfwd45y70oyynp98usk7zmyfrzpqxh1pohl-\": invalid "
       "base36 character '-' at position 54"},
      {"?unknownmultibase",
       "invalid peer ID \"?unknownmultibase\": unsupported multibase prefix '?' (expected 'b' "
       "base32, 'k' base36 or 'z' base58btc)"},
      {"k2jmtxwoe2phm1hbqp0e7nufqf6umvuu2e9qd7ana7h411a0haqj6i2z",
       "invalid peer ID \"k2jmtxwoe2phm1hbqp0e7nufqf6umvuu2e9qd7ana7h411a0haqj6i2z\": the CID "
       "codec is 0x70, not libp2p-key (0x72): it does not name a peer"},
      // go-multiaddr TestConstructFails: claims a 33-byte "sha256" digest and holds 32.
      {"QmxoHT6iViN5xAjoz1VZ553cL31U9F94ht3QvWR1FrEbZY",
       "invalid peer ID \"QmxoHT6iViN5xAjoz1VZ553cL31U9F94ht3QvWR1FrEbZY\": not a peer ID: "
       "truncated multihash: the sha2-256 digest should be 33 bytes but only 32 are left"},
      {"Qm",
       "invalid peer ID \"Qm\": not a peer ID: truncated multihash: the 0x5 digest should "
       "be 98 bytes but only 0 are left"},
      {"12D3KooW", ""},
      {"12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3p", ""},    // One character short.
      {"12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pqq", ""},  // One too many.
      {"12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3p0", ""},   // '0' is not base58.
      {"/ip4/1.2.3.4", ""},
      {"BAFZBEIE5745RPV2M6TJYUUGYWY4D5EWRQGQQHFNF445HE3OMZPJBX5XQXE", ""},
      // CIDv0 inside multibase, and a CID of version 2.
      {"z" + base58btc_encode(from_hex("12209dff3b17d74cf4d38a50d8b6383e92d181a10395a5e73a726dcccb"
                                       "d21bf6f0b9")),
       ""},
      {"z" + base58btc_encode(from_hex("027200020102")),
       "invalid peer ID \"z" + base58btc_encode(from_hex("027200020102")) +
           "\": CID version 2 is not supported (expected 1)"},
      {"ba", "invalid peer ID \"ba\": invalid base32 length 1 (truncated or padded text?)"},
      // A CID whose identity multihash holds more than 42 bytes of key.
      {"b" + base32_encode(oversized_inline_cid()), ""},
  };
  for (const auto& [text, message] : cases) {
    auto id = PeerId::parse(text);
    ASSERT_FALSE(id) << text;
    if (!message.empty()) {
      EXPECT_EQ(id.error().message, message) << text;
    }
    EXPECT_EQ(id.error().message.rfind("invalid peer ID ", 0), 0u) << id.error().message;
  }
}

TEST(PeerId, FromMultihashAcceptsOnlyPeerIdShapes) {
  Bytes too_big = {0x00, 43};
  too_big.resize(2 + 43, 1);
  auto inline_too_big = PeerId::from_multihash(too_big);
  ASSERT_FALSE(inline_too_big);
  EXPECT_EQ(inline_too_big.error().message,
            "not a peer ID: an identity multihash holds at most 42 bytes of key, not 43");
  Bytes sha1 = {0x11, 0x14};
  sha1.resize(2 + 20, 1);
  auto wrong_function = PeerId::from_multihash(sha1);
  ASSERT_FALSE(wrong_function);
  EXPECT_EQ(wrong_function.error().message,
            "not a peer ID: multihash function 0x11 (a peer ID is an identity or sha2-256 "
            "multihash)");
  EXPECT_FALSE(PeerId::from_multihash(Bytes{0x00, 0x00}));
  EXPECT_FALSE(PeerId::from_multihash(Bytes{}));
  EXPECT_FALSE(PeerId::from_encoded_public_key(Bytes{0x08, 0x01}));
}

TEST(PeerId, EqualityHashAndOrder) {
  auto first = PeerId::parse(kEd25519PeerId);
  auto second = PeerId::parse(kEd25519Cid);
  auto third = PeerId::parse(kRsaPeerId);
  ASSERT_TRUE(first && second && third);
  EXPECT_EQ(*first, *second);
  EXPECT_NE(*first, *third);
  EXPECT_TRUE(*first < *third || *third < *first);
  std::unordered_set<PeerId> set = {*first, *second, *third};
  EXPECT_EQ(set.size(), 2u);
  EXPECT_EQ(std::hash<PeerId>{}(*first), std::hash<PeerId>{}(*second));
}

TEST(PeerId, GeneratedKeysGiveEd25519StyleIds) {
  for (int i = 0; i < 10; ++i) {
    auto key = Ed25519PrivateKey::generate();
    ASSERT_TRUE(key);
    const PeerId id = PeerId::from_public_key(key->public_key());
    EXPECT_EQ(id.to_base58().substr(0, 8), "12D3KooW");
    EXPECT_EQ(id.to_cid_text().substr(0, 5), "bafza");
    auto parsed = PeerId::parse(id.to_cid_text());
    ASSERT_TRUE(parsed);
    EXPECT_EQ(*parsed, id);
  }
}

TEST(PeerId, RandomTextNeverCrashes) {
  std::mt19937 random(9);
  const std::string_view pool = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0Il/-=";
  for (int trial = 0; trial < 3000; ++trial) {
    std::string text(random() % 70, ' ');
    for (auto& c : text)
      c = pool[random() % pool.size()];
    if (trial % 3 == 0) text = "12D3KooW" + text;
    if (trial % 3 == 1) text = "bafz" + text;
    if (auto id = PeerId::parse(text)) {
      EXPECT_TRUE(PeerId::parse(id->to_base58()));
    }
  }
}

}  // namespace
}  // namespace an::p2p
