// The NoiseHandshakePayload protobuf: round trips, extensions, unknown fields, malformed input,
// and verification of the identity signature.
#include <gtest/gtest.h>

#include <random>

#include "p2p/crypto/key.h"
#include "p2p/noise/payload.h"
#include "p2p/wire/protobuf.h"

namespace an::p2p::noise {
namespace {

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

TEST(NoisePayload, RoundTripWithExtensions) {
  HandshakePayload payload;
  payload.identity_key = {1, 2, 3};
  payload.identity_sig = {4, 5};
  payload.webtransport_certhashes = {Bytes{9, 9}, Bytes{8}};
  payload.stream_muxers = {"/yamux/1.0.0", "/mplex/6.7.0"};
  const Bytes encoded = encode_payload(payload);
  auto decoded = decode_payload(encoded);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(*decoded, payload);
}

TEST(NoisePayload, WireLayoutMatchesTheSchema) {
  HandshakePayload payload;
  payload.identity_key = {0xaa};
  payload.identity_sig = {0xbb};
  EXPECT_EQ(encode_payload(payload), (Bytes{0x0a, 0x01, 0xaa, 0x12, 0x01, 0xbb}));
  payload.stream_muxers = {"/y"};
  // extensions (field 4) holding stream_muxers (field 2).
  EXPECT_EQ(encode_payload(payload),
            (Bytes{0x0a, 0x01, 0xaa, 0x12, 0x01, 0xbb, 0x22, 0x04, 0x12, 0x02, '/', 'y'}));
}

TEST(NoisePayload, UnknownFieldsAreIgnoredAndExtensionsMerge) {
  Bytes encoded;
  pb::Writer writer(encoded);
  writer.varint_field(7, 1);
  writer.bytes_field(1, Bytes{1});
  writer.bytes_field(3, Bytes{0xde, 0xad});
  writer.bytes_field(2, Bytes{2});
  Bytes extensions;
  pb::Writer extensions_writer(extensions);
  extensions_writer.string_field(2, "/a");
  extensions_writer.varint_field(5, 3);
  writer.bytes_field(4, extensions);
  writer.bytes_field(4, extensions);
  auto decoded = decode_payload(encoded);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(decoded->identity_key, Bytes{1});
  EXPECT_EQ(decoded->identity_sig, Bytes{2});
  EXPECT_EQ(decoded->stream_muxers, (std::vector<std::string>{"/a", "/a"}));
}

TEST(NoisePayload, MalformedInputIsAnError) {
  const std::vector<Bytes> malformed = {
      {0x0a},                    // tag without a length
      {0x0a, 0x05, 1, 2},        // length beyond the input
      {0x08, 0x01},              // identity_key as a varint
      {0x0a, 0x00, 0x0a, 0x00},  // identity_key twice
      {0x12, 0x00, 0x12, 0x00},  // identity_sig twice
      {0x22, 0x02, 0x10, 0x01},  // stream_muxers as a varint
      {0x22, 0x01, 0x0a},        // broken extensions
      {0x00},                    // field number 0
  };
  for (const Bytes& input : malformed) {
    auto decoded = decode_payload(input);
    ASSERT_FALSE(decoded) << "input of " << input.size() << " bytes";
    EXPECT_TRUE(contains(decoded.error().message, "malformed noise handshake payload"))
        << decoded.error().message;
  }
  EXPECT_TRUE(decode_payload({})) << "every field is optional in the encoding";
}

TEST(NoisePayload, SignedPayloadVerifies) {
  auto identity = PrivateKey::generate(KeyType::kEd25519);
  auto static_key = X25519KeyPair::generate();
  ASSERT_TRUE(identity && static_key);
  auto payload = make_payload(*identity, static_key->public_key(), {"/yamux/1.0.0"});
  ASSERT_TRUE(payload);
  auto verified = verify_payload(*payload, static_key->public_key());
  ASSERT_TRUE(verified) << verified.error().message;
  EXPECT_EQ(verified->peer, PeerId::from_public_key(identity->public_key()));
  EXPECT_EQ(verified->public_key, identity->public_key());
  const Bytes message = static_key_signature_message(static_key->public_key());
  EXPECT_EQ(message.size(), 24u + 32u);
  EXPECT_TRUE(identity->public_key().verify(message, payload->identity_sig));

  X25519PublicKey other = static_key->public_key();
  other[0] ^= 1;
  EXPECT_FALSE(verify_payload(*payload, other));
  HandshakePayload no_key = *payload;
  no_key.identity_key.clear();
  auto missing = verify_payload(no_key, static_key->public_key());
  ASSERT_FALSE(missing);
  EXPECT_TRUE(contains(missing.error().message, "no identity_key"));
}

TEST(NoisePayload, RandomBytesNeverCrash) {
  std::mt19937 random(5);
  for (int round = 0; round < 5000; ++round) {
    Bytes input(random() % 64);
    for (auto& byte : input)
      byte = static_cast<std::uint8_t>(random());
    if (auto decoded = decode_payload(input)) (void)verify_payload(*decoded, X25519PublicKey{});
  }
}

}  // namespace
}  // namespace an::p2p::noise
