// Byte-exact interop vectors made by js-libp2p's circuit relay (npm @libp2p/circuit-relay-v2
// 4.2.13, source in libp2p/js-libp2p packages/transport-circuit-relay-v2): what its relay writes
// in answer to RESERVE, and the messages of its client and relay. No vector made by go-libp2p or
// js-libp2p was found in their repositories, so these were generated with the package itself:
//   relay key, peer key = Ed25519 from seeds of 32 bytes 0x01 and 0x02 (generateKeyPairFromSeed);
//   voucher = RecordEnvelope.seal(new ReservationVoucherRecord({relay, peer,
//             expiration: 1764150000n}), relayKey).marshal()   (server/reservation-voucher.ts)
//   hop     = HopMessage.encode() of what server/index.ts handleReserve writes: STATUS, OK, a
//             Reservation {expire, addrs [/ip4/1.2.3.4/tcp/4001/p2p/RELAY], voucher} and js's
//             default Limit {duration: 2 * minute, data: 1 << 17}               (src/pb/index.ts)
//   reserve, connect (to the relay's ID), stop (CONNECT from the peer, same limit) likewise.
#include <gtest/gtest.h>

#include "support/hex.h"

#include "p2p/relay/messages.h"
#include "p2p/relay/voucher.h"

namespace an::p2p::relay {
namespace {

using test::from_hex;

constexpr std::string_view kRelayId = "12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5";
constexpr std::string_view kPeerId = "12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq";
constexpr std::uint64_t kExpiration = 1764150000;

constexpr std::string_view kJsVoucher =
    "0a24080112208a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c120203021a560a26"
    "0024080112208a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c1226002408011220"
    "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b39418f0959bc9062a40b8493adc16c6"
    "a4c05bd88b94f8e98e6ac12d786e8b25caf4ec74edb04f02d6d4f3e294e032b7b6c9908c07a2b69802d1005f42f3"
    "014f240f2c5d214255acb705";

constexpr std::string_view kJsReservationAnswer =
    "08021a800208f0959bc90612310401020304060fa1a503260024080112208a88e3dd7409f195fd52db2d3cba5d72"
    "ca6709bf1d94121bf3748801b40f6f5c1ac4010a24080112208a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d"
    "94121bf3748801b40f6f5c120203021a560a260024080112208a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d"
    "94121bf3748801b40f6f5c12260024080112208139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f"
    "5b8fc9b39418f0959bc9062a40b8493adc16c6a4c05bd88b94f8e98e6ac12d786e8b25caf4ec74edb04f02d6d4f3"
    "e294e032b7b6c9908c07a2b69802d1005f42f3014f240f2c5d214255acb705220808c0a907108080082864";

constexpr std::string_view kJsReserve = "0800";
constexpr std::string_view kJsConnect =
    "080112280a260024080112208a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c";
constexpr std::string_view kJsStopConnect =
    "080012280a260024080112208139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b3941a08"
    "08c0a90710808008";

PrivateKey key_from_byte(std::uint8_t fill) {
  auto key = Ed25519PrivateKey::from_seed(Bytes(kEd25519SeedSize, fill));
  EXPECT_TRUE(key.has_value());
  return PrivateKey::from_ed25519(*key);
}

PeerId parse_id(std::string_view text) {
  auto id = PeerId::parse(text);
  EXPECT_TRUE(id.has_value()) << text;
  return *id;
}

TEST(RelayJsVectors, KeysAgree) {
  EXPECT_EQ(PeerId::from_public_key(key_from_byte(1).public_key()).to_base58(), kRelayId);
  EXPECT_EQ(PeerId::from_public_key(key_from_byte(2).public_key()).to_base58(), kPeerId);
}

TEST(RelayJsVectors, JsVoucherOpensAndOursIsIdentical) {
  const PeerId relay = parse_id(kRelayId);
  const PeerId peer = parse_id(kPeerId);
  auto opened = open_voucher(from_hex(kJsVoucher), relay, peer, kExpiration - 3600);
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  EXPECT_EQ(opened->relay, relay);
  EXPECT_EQ(opened->peer, peer);
  EXPECT_EQ(opened->expiration, kExpiration);
  // Ed25519 signatures are deterministic: our relay seals the very same bytes.
  auto ours = seal_voucher(key_from_byte(1), ReservationVoucher{relay, peer, kExpiration});
  ASSERT_TRUE(ours.has_value());
  EXPECT_EQ(*ours, from_hex(kJsVoucher));
  // And it is refused for another reserving peer or after it expired.
  EXPECT_FALSE(open_voucher(from_hex(kJsVoucher), relay, relay, kExpiration).has_value());
  EXPECT_FALSE(open_voucher(from_hex(kJsVoucher), relay, peer, kExpiration + 1).has_value());
}

TEST(RelayJsVectors, JsReservationAnswerDecodesAndReencodes) {
  const Bytes bytes = from_hex(kJsReservationAnswer);
  auto message = decode_hop(bytes);
  ASSERT_TRUE(message.has_value()) << message.error().message;
  EXPECT_EQ(message->type, HopType::kStatus);
  EXPECT_EQ(message->status, Status::kOk);
  ASSERT_TRUE(message->reservation.has_value());
  EXPECT_EQ(message->reservation->expire, kExpiration);
  ASSERT_EQ(message->reservation->addrs.size(), 1u);
  EXPECT_EQ(message->reservation->addrs[0].to_string(),
            "/ip4/1.2.3.4/tcp/4001/p2p/" + std::string(kRelayId));
  ASSERT_TRUE(message->reservation->voucher.has_value());
  EXPECT_EQ(*message->reservation->voucher, from_hex(kJsVoucher));
  ASSERT_TRUE(message->limit.has_value());
  // js sends its default duration in milliseconds (2 * minute = 120000) where the spec says
  // seconds; its own client reads it as seconds (LimitTracker). We read what is on the wire.
  EXPECT_EQ(message->limit->duration_seconds, 120000u);
  EXPECT_EQ(message->limit->data_bytes, 131072u);
  EXPECT_EQ(encode(*message), bytes);
  auto voucher = open_voucher(*message->reservation->voucher, parse_id(kRelayId), parse_id(kPeerId),
                              kExpiration);
  EXPECT_TRUE(voucher.has_value());
}

TEST(RelayJsVectors, ClientAndStopMessagesAreByteIdentical) {
  HopMessage reserve;
  EXPECT_EQ(encode(reserve), from_hex(kJsReserve));

  HopMessage connect;
  connect.type = HopType::kConnect;
  connect.peer = Peer{parse_id(kRelayId), {}, 0};
  EXPECT_EQ(encode(connect), from_hex(kJsConnect));
  auto connect_decoded = decode_hop(from_hex(kJsConnect));
  ASSERT_TRUE(connect_decoded.has_value());
  EXPECT_EQ(*connect_decoded, connect);

  StopMessage stop;
  stop.type = StopType::kConnect;
  stop.peer = Peer{parse_id(kPeerId), {}, 0};
  stop.limit = Limit{120000, 131072};
  EXPECT_EQ(encode(stop), from_hex(kJsStopConnect));
  auto stop_decoded = decode_stop(from_hex(kJsStopConnect));
  ASSERT_TRUE(stop_decoded.has_value());
  EXPECT_EQ(*stop_decoded, stop);
}

TEST(RelayJsVectors, JsMisencodedLargeExpirationIsRefused) {
  // The same js package writes a uint64 in [2^31, 2^32) as its low bits without continuation
  // bits: expiration 2^31 came out as 18 00 00 00 00 00 (field 3 = 0, then four 00 bytes, which
  // are not a field). Such times are after 2038-01-19; until then js vouchers are well formed.
  const Bytes relay_id = parse_id(kRelayId).bytes();
  const Bytes peer_id = parse_id(kPeerId).bytes();
  Bytes payload = from_hex("0a26");
  payload.insert(payload.end(), relay_id.begin(), relay_id.end());
  payload.insert(payload.end(), {0x12, 0x26});
  payload.insert(payload.end(), peer_id.begin(), peer_id.end());
  const Bytes misencoded = from_hex("180000000000");
  payload.insert(payload.end(), misencoded.begin(), misencoded.end());
  EXPECT_FALSE(decode_voucher(payload).has_value());
}

}  // namespace
}  // namespace an::p2p::relay
