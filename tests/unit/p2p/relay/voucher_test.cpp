// Reservation vouchers: the payload and envelope layout byte by byte (from the spec's .proto and
// RFC 0002), sign/open round trips, and every check of open_voucher failing on its own.
#include "p2p/relay/voucher.h"

#include <gtest/gtest.h>

#include "support/hex.h"

#include <initializer_list>
#include <string>

#include "p2p/crypto/key.h"
#include "p2p/record/envelope.h"
#include "p2p/record/peer_record.h"

namespace an::p2p::relay {
namespace {

using test::from_hex;

PrivateKey key_from_byte(std::uint8_t fill) {
  auto key = Ed25519PrivateKey::from_seed(Bytes(kEd25519SeedSize, fill));
  EXPECT_TRUE(key.has_value());
  return PrivateKey::from_ed25519(*key);
}

PeerId id_of(const PrivateKey& key) {
  return PeerId::from_public_key(key.public_key());
}

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& part : parts)
    out.insert(out.end(), part.begin(), part.end());
  return out;
}

constexpr std::uint64_t kExpiration = std::uint64_t{1} << 31;  // varint 80 80 80 80 08
constexpr std::uint64_t kNow = kExpiration - 3600;

class RelayVoucherTest : public ::testing::Test {
 protected:
  PrivateKey relay_key = key_from_byte(1);
  PrivateKey peer_key = key_from_byte(2);
  PrivateKey other_key = key_from_byte(3);
  PeerId relay = id_of(relay_key);
  PeerId peer = id_of(peer_key);
  PeerId other = id_of(other_key);
  ReservationVoucher voucher{relay, peer, kExpiration};

  Bytes sealed() {
    auto bytes = seal_voucher(relay_key, voucher);
    EXPECT_TRUE(bytes.has_value());
    return bytes ? *bytes : Bytes{};
  }

  std::string open_error(const Bytes& envelope, std::uint64_t now = kNow) {
    auto opened = open_voucher(envelope, relay, peer, now);
    return opened ? std::string("(no error)") : opened.error().message;
  }
};

TEST(RelayVoucher, RelaysWithKeysOfOtherTypesSealVouchers) {
  for (const KeyType type : {KeyType::kRsa, KeyType::kSecp256k1, KeyType::kEcdsa}) {
    auto relay_key = PrivateKey::generate(type);
    ASSERT_TRUE(relay_key) << relay_key.error().message;
    const PeerId peer = id_of(key_from_byte(2));
    const ReservationVoucher voucher{relay_key->peer_id(), peer, kExpiration};
    auto sealed = seal_voucher(*relay_key, voucher);
    ASSERT_TRUE(sealed) << sealed.error().message;
    auto opened = open_voucher(*sealed, relay_key->peer_id(), peer, kNow);
    ASSERT_TRUE(opened) << opened.error().message;
    EXPECT_EQ(*opened, voucher);
  }
}

TEST_F(RelayVoucherTest, PayloadByteExact) {
  // ReservationVoucher { relay = 1: 0a 26 <id>; peer = 2: 12 26 <id>; expiration = 3: 18 <varint> }
  const Bytes expected = cat({from_hex("0a26"), relay.bytes(), from_hex("1226"), peer.bytes(),
                              from_hex("18"
                                       "8080808008")});
  EXPECT_EQ(encode_voucher(voucher), expected);
  auto decoded = decode_voucher(expected);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
  EXPECT_EQ(*decoded, voucher);
}

TEST_F(RelayVoucherTest, EnvelopeLayoutAndSignatureInput) {
  const Bytes envelope = sealed();
  const Bytes payload = encode_voucher(voucher);
  ASSERT_EQ(payload.size(), 86u);  // 40 + 40 + 6
  // Envelope { public_key = 1: 0a 24 (08 01 12 20 <32 key bytes>); payload_type = 2: 12 02 03 02;
  // payload = 3: 1a 56 <payload>; signature = 5: 2a 40 <64 bytes> }.
  const Bytes public_key(relay_key.public_key().protobuf().begin() + 4,
                         relay_key.public_key().protobuf().end());
  const Bytes head = cat({from_hex("0a24"
                                   "08011220"),
                          public_key,
                          from_hex("1202"
                                   "0302"),
                          from_hex("1a56"), payload, from_hex("2a40")});
  ASSERT_EQ(envelope.size(), head.size() + 64);
  EXPECT_EQ(Bytes(envelope.begin(), envelope.begin() + static_cast<std::ptrdiff_t>(head.size())),
            head);
  // The signature covers uvarint-prefixed domain, payload type and payload (RFC 0002):
  // 11 "libp2p-relay-rsvp" 02 03 02 56 <payload>.
  const std::string domain = "libp2p-relay-rsvp";
  const Bytes signed_input = cat({from_hex("11"), Bytes(domain.begin(), domain.end()),
                                  from_hex("020302"
                                           "56"),
                                  payload});
  const Bytes signature(envelope.end() - 64, envelope.end());
  EXPECT_TRUE(relay_key.public_key().verify(signed_input, signature));
  // Ed25519 is deterministic: sealing twice gives the same bytes.
  EXPECT_EQ(sealed(), envelope);
}

TEST_F(RelayVoucherTest, ValidVoucherOpens) {
  auto opened = open_voucher(sealed(), relay, peer, kNow);
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  EXPECT_EQ(*opened, voucher);
  // Valid up to and including its expiration second.
  EXPECT_EQ(open_error(sealed(), kExpiration), "(no error)");
}

TEST_F(RelayVoucherTest, ExpiredIsRefused) {
  EXPECT_NE(open_error(sealed(), kExpiration + 1).find("expired"), std::string::npos);
}

TEST_F(RelayVoucherTest, WrongRelayIsRefused) {
  auto opened = open_voucher(sealed(), other, peer, kNow);
  ASSERT_FALSE(opened.has_value());
  EXPECT_NE(opened.error().message.find("is for relay"), std::string::npos);
}

TEST_F(RelayVoucherTest, WrongPeerIsRefused) {
  auto opened = open_voucher(sealed(), relay, other, kNow);
  ASSERT_FALSE(opened.has_value());
  EXPECT_NE(opened.error().message.find("is for peer"), std::string::npos);
}

TEST_F(RelayVoucherTest, SignedByAnotherKeyIsRefused) {
  // A voucher naming `relay` but signed by someone else (go's client test "invalid voucher 2").
  auto envelope = record::seal_envelope(other_key, kVoucherDomain, kVoucherPayloadType,
                                        encode_voucher(voucher));
  ASSERT_TRUE(envelope.has_value());
  EXPECT_NE(open_error(*envelope).find("signed by"), std::string::npos);
  // And seal_voucher refuses to make one.
  EXPECT_FALSE(seal_voucher(other_key, voucher).has_value());
}

TEST_F(RelayVoucherTest, TamperedPayloadIsRefused) {
  const Bytes envelope = sealed();
  auto decoded = record::decode_envelope(envelope);
  ASSERT_TRUE(decoded.has_value());
  record::Envelope tampered = *decoded;
  tampered.payload.back() ^= 0x01;  // the expiration changes
  EXPECT_NE(open_error(record::encode_envelope(tampered)).find("signature"), std::string::npos);
  // Flipping any single byte of the envelope breaks it one way or another.
  for (std::size_t i = 0; i < envelope.size(); ++i) {
    Bytes flipped = envelope;
    flipped[i] ^= 0x20;
    EXPECT_FALSE(open_voucher(flipped, relay, peer, kNow).has_value()) << "byte " << i;
  }
}

TEST_F(RelayVoucherTest, WrongDomainOrPayloadTypeIsRefused) {
  const Bytes payload = encode_voucher(voucher);
  auto peer_record_domain =
      record::seal_envelope(relay_key, record::kPeerRecordDomain, kVoucherPayloadType, payload);
  ASSERT_TRUE(peer_record_domain.has_value());
  EXPECT_NE(open_error(*peer_record_domain).find("signature"), std::string::npos);
  auto peer_record_type =
      record::seal_envelope(relay_key, kVoucherDomain, record::kPeerRecordPayloadType, payload);
  ASSERT_TRUE(peer_record_type.has_value());
  EXPECT_NE(open_error(*peer_record_type).find("payload type"), std::string::npos);
  // The multicodec as a uvarint (82 06) is not what go and js send.
  auto varint_type = record::seal_envelope(relay_key, kVoucherDomain, from_hex("8206"), payload);
  ASSERT_TRUE(varint_type.has_value());
  EXPECT_NE(open_error(*varint_type).find("payload type"), std::string::npos);
}

TEST_F(RelayVoucherTest, TruncationAtEveryByteIsRefused) {
  const Bytes envelope = sealed();
  for (std::size_t cut = 0; cut < envelope.size(); ++cut) {
    const Bytes prefix(envelope.begin(), envelope.begin() + static_cast<std::ptrdiff_t>(cut));
    EXPECT_FALSE(open_voucher(prefix, relay, peer, kNow).has_value()) << "cut at " << cut;
  }
  EXPECT_FALSE(open_voucher(Bytes(kMaxVoucherSize + 1, 0), relay, peer, kNow).has_value());
  EXPECT_FALSE(open_voucher(from_hex("666f6f626172"), relay, peer, kNow).has_value());  // "foobar"
}

TEST_F(RelayVoucherTest, MalformedPayloads) {
  const Bytes relay_field = cat({from_hex("0a26"), relay.bytes()});
  const Bytes peer_field = cat({from_hex("1226"), peer.bytes()});
  const Bytes expiration_field = from_hex("1801");
  auto error_of = [](const Bytes& payload) {
    auto decoded = decode_voucher(payload);
    return decoded ? std::string("(no error)") : decoded.error().message;
  };
  EXPECT_NE(error_of(cat({peer_field, expiration_field})).find("no relay"), std::string::npos);
  EXPECT_NE(error_of(cat({relay_field, expiration_field})).find("no peer"), std::string::npos);
  EXPECT_NE(error_of(cat({relay_field, peer_field})).find("no expiration"), std::string::npos);
  EXPECT_NE(
      error_of(cat({relay_field, relay_field, peer_field, expiration_field})).find("appears twice"),
      std::string::npos);
  EXPECT_NE(error_of(cat({relay_field, peer_field, expiration_field, expiration_field}))
                .find("appears twice"),
            std::string::npos);
  EXPECT_NE(error_of(cat({from_hex("0a020102"), peer_field, expiration_field})).find("bad relay"),
            std::string::npos);
  EXPECT_NE(error_of(cat({relay_field, peer_field, from_hex("1a00")})).find("wrong wire type"),
            std::string::npos);
  // Unknown fields are skipped, wherever they are.
  auto with_unknown = decode_voucher(
      cat({from_hex("2001"), relay_field, peer_field, expiration_field, from_hex("2a00")}));
  ASSERT_TRUE(with_unknown.has_value()) << with_unknown.error().message;
  EXPECT_EQ(with_unknown->expiration, 1u);
}

}  // namespace
}  // namespace an::p2p::relay
