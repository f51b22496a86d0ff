// Circuit relay v2 messages: byte-exact encodings built by hand from the spec's .proto, round
// trips, and hostile input (truncation, oversize lengths, wrong wire types, duplicates).
//
// How the expected bytes are built: each field is its key byte, (field number << 3) | wire
// type (0 varint, 2 length-delimited), then a varint value or a varint length and the bytes.
// E.g. HopMessage.type = CONNECT is 08 01 (field 1, varint, 1); HopMessage.peer is 12 LL ...
// (field 2, length-delimited). An Ed25519 peer ID is 38 bytes (00 24 08 01 12 20 + 32 key
// bytes), so Peer { id } is 0a 26 <id> (40 bytes) and its HopMessage field is 12 28 0a 26 <id>.
#include "p2p/relay/messages.h"

#include <gtest/gtest.h>

#include "p2p/wire/length_prefixed.h"
#include "support/hex.h"

#include <initializer_list>
#include <string>

namespace an::p2p::relay {
namespace {

using test::from_hex;

PeerId peer_from_byte(std::uint8_t fill) {
  auto key = Ed25519PrivateKey::from_seed(Bytes(kEd25519SeedSize, fill));
  EXPECT_TRUE(key.has_value());
  return PeerId::from_public_key(key->public_key());
}

Multiaddr address(std::string_view text) {
  auto parsed = Multiaddr::parse(text);
  EXPECT_TRUE(parsed.has_value()) << text;
  return parsed ? *parsed : Multiaddr();
}

// Concatenates byte pieces: literal bytes and spliced-in buffers.
Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& part : parts)
    out.insert(out.end(), part.begin(), part.end());
  return out;
}

// The spec's numbers, spelled out once so that the vectors below read like the .proto.
// 2^17 = 131072 as a varint: 80 80 08. 120 s: 78. 2^31 (an expire time): 80 80 80 80 08.
const Bytes& limit_bytes() {
  // Limit { duration = 120 (08 78), data = 131072 (10 80 80 08) }
  static const Bytes bytes = from_hex(
      "0878"
      "10808008");
  return bytes;
}

HopMessage go_reservation_answer(const Bytes& voucher) {
  HopMessage message;
  message.type = HopType::kStatus;
  message.status = Status::kOk;
  Reservation reservation;
  reservation.expire = std::uint64_t{1} << 31;
  reservation.addrs = {address("/ip4/1.2.3.4/tcp/4001")};
  reservation.voucher = voucher;
  message.reservation = reservation;
  message.limit = Limit{120, std::uint64_t{1} << 17};
  return message;
}

TEST(RelayMessages, StatusNames) {
  EXPECT_EQ(status_name(Status::kOk), "OK");
  EXPECT_EQ(status_name(Status::kNoReservation), "NO_RESERVATION");
  EXPECT_EQ(status_name(Status::kUnexpectedMessage), "UNEXPECTED_MESSAGE");
  EXPECT_EQ(status_name(static_cast<Status>(1337)), "UNKNOWN");
  EXPECT_EQ(static_cast<std::uint32_t>(Status::kReservationRefused), 200u);
  EXPECT_EQ(static_cast<std::uint32_t>(Status::kResourceLimitExceeded), 201u);
  EXPECT_EQ(static_cast<std::uint32_t>(Status::kPermissionDenied), 202u);
  EXPECT_EQ(static_cast<std::uint32_t>(Status::kConnectionFailed), 203u);
  EXPECT_EQ(static_cast<std::uint32_t>(Status::kMalformedMessage), 400u);
}

TEST(RelayMessages, ReserveIsTypeZeroWrittenExplicitly) {
  // go: HopMessage{Type: HopMessage_RESERVE.Enum()} -> 08 00; framed: 02 08 00.
  HopMessage reserve;
  reserve.type = HopType::kReserve;
  EXPECT_EQ(encode(reserve), from_hex("0800"));
  EXPECT_EQ(encode_framed(reserve), from_hex("020800"));
  auto decoded = decode_hop(from_hex("0800"));
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
  EXPECT_EQ(*decoded, reserve);
}

TEST(RelayMessages, ConnectByteExact) {
  const PeerId target = peer_from_byte(7);
  ASSERT_EQ(target.bytes().size(), 38u);
  HopMessage connect;
  connect.type = HopType::kConnect;
  connect.peer = Peer{target, {}, 0};
  const Bytes expected = cat({from_hex("0801"
                                       "1228"
                                       "0a26"),
                              target.bytes()});
  EXPECT_EQ(encode(connect), expected);
  auto decoded = decode_hop(expected);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
  EXPECT_EQ(*decoded, connect);
}

TEST(RelayMessages, StatusAnswersByteExact) {
  // STATUS (08 02), status = NO_RESERVATION: field 5 varint (28), 204 = cc 01.
  HopMessage refused;
  refused.type = HopType::kStatus;
  refused.status = Status::kNoReservation;
  EXPECT_EQ(encode(refused), from_hex("0802"
                                      "28cc01"));
  // StopMessage STATUS (08 01) OK: field 4 varint (20), 100 = 64.
  StopMessage ok;
  ok.type = StopType::kStatus;
  ok.status = Status::kOk;
  EXPECT_EQ(encode(ok), from_hex("0801"
                                 "2064"));
  auto decoded = decode_stop(from_hex("08012064"));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, ok);
}

TEST(RelayMessages, ReservationAnswerByteExact) {
  const Bytes voucher = from_hex("aabbcc");
  // Reservation { expire = 2^31: 08 80 80 80 80 08; addrs: 12 08 + /ip4/1.2.3.4/tcp/4001
  // (04 01020304 06 0fa1); voucher: 1a 03 aabbcc } = 21 bytes (0x15).
  const Bytes reservation = from_hex(
      "088080808008"
      "1208"
      "0401020304060fa1"
      "1a03aabbcc");
  ASSERT_EQ(reservation.size(), 0x15u);
  const Bytes expected = cat({from_hex("0802"), from_hex("1a15"), reservation, from_hex("2206"),
                              limit_bytes(), from_hex("2864")});
  const HopMessage message = go_reservation_answer(voucher);
  EXPECT_EQ(encode(message), expected);
  auto decoded = decode_hop(expected);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
  EXPECT_EQ(*decoded, message);
}

TEST(RelayMessages, StopConnectByteExact) {
  // What a go relay sends the target: StopMessage { type CONNECT (08 00), peer { id } (12 28 0a
  // 26 <id>), limit (1a 06 <limit>) }.
  const PeerId source = peer_from_byte(9);
  StopMessage connect;
  connect.type = StopType::kConnect;
  connect.peer = Peer{source, {}, 0};
  connect.limit = Limit{120, std::uint64_t{1} << 17};
  const Bytes expected = cat({from_hex("0800"
                                       "1228"
                                       "0a26"),
                              source.bytes(), from_hex("1a06"), limit_bytes()});
  EXPECT_EQ(encode(connect), expected);
  auto decoded = decode_stop(expected);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
  EXPECT_EQ(*decoded, connect);
}

TEST(RelayMessages, RoundTripsWithAddresses) {
  HopMessage message;
  message.type = HopType::kConnect;
  message.peer =
      Peer{peer_from_byte(3), {address("/ip4/10.0.0.1/tcp/1"), address("/ip6/::1/tcp/2")}, 0};
  message.limit = Limit{std::nullopt, 5};
  auto decoded = decode_hop(encode(message));
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
  EXPECT_EQ(*decoded, message);

  StopMessage stop;
  stop.type = StopType::kStatus;
  stop.status = Status::kConnectionFailed;
  auto stop_decoded = decode_stop(encode(stop));
  ASSERT_TRUE(stop_decoded.has_value());
  EXPECT_EQ(*stop_decoded, stop);

  // An empty Limit (no limits) and a Reservation with nothing in it survive too.
  HopMessage empty_parts;
  empty_parts.type = HopType::kStatus;
  empty_parts.limit = Limit{};
  empty_parts.reservation = Reservation{};
  auto empty_decoded = decode_hop(encode(empty_parts));
  ASSERT_TRUE(empty_decoded.has_value());
  EXPECT_EQ(*empty_decoded, empty_parts);
}

TEST(RelayMessages, UnknownFieldsAreSkipped) {
  const Bytes base = from_hex(
      "0802"
      "2864");
  // field 15 varint (78 01), field 16 bytes (82 01 02 aabb), field 17 fixed64 (89 01 + 8 bytes),
  // field 18 fixed32 (95 01 + 4 bytes).
  const Bytes extra = cat({base, from_hex("7801"
                                          "820102aabb"
                                          "8901"
                                          "0102030405060708"
                                          "9501"
                                          "01020304")});
  auto decoded = decode_hop(extra);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
  EXPECT_EQ(*decoded, *decode_hop(base));
  // Inside a Limit and a Peer too.
  auto limit =
      decode_limit(from_hex("0878"
                            "7801"));
  ASSERT_TRUE(limit.has_value());
  EXPECT_EQ(limit->duration_seconds, 120u);
}

TEST(RelayMessages, UnknownEnumValuesAreKept) {
  // go answers an unknown type with MALFORMED_MESSAGE, js with UNEXPECTED_MESSAGE: the handler
  // decides, so the value is kept. An unknown status (go's test uses 1337) is reported as is.
  auto unknown_type = decode_hop(from_hex("0807"));
  ASSERT_TRUE(unknown_type.has_value());
  EXPECT_EQ(static_cast<std::uint32_t>(unknown_type->type), 7u);
  auto unknown_status =
      decode_hop(from_hex("0802"
                          "28b90a"));  // 1337 = b9 0a
  ASSERT_TRUE(unknown_status.has_value());
  EXPECT_EQ(static_cast<std::uint32_t>(*unknown_status->status), 1337u);
}

TEST(RelayMessages, UnparsableAddressesAreSkipped) {
  const PeerId id = peer_from_byte(4);
  // Peer { id, addrs: [ /ip4/1.2.3.4/tcp/4001, ff ff (no such protocol) ] }
  const Bytes peer = cat({from_hex("0a26"), id.bytes(),
                          from_hex("1208"
                                   "0401020304060fa1"),
                          from_hex("1202ffff")});
  auto decoded = decode_peer(peer);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
  EXPECT_EQ(decoded->addrs.size(), 1u);
  EXPECT_EQ(decoded->skipped_addrs, 1u);
}

void expect_error(const Bytes& bytes, std::string_view fragment) {
  auto decoded = decode_hop(bytes);
  ASSERT_FALSE(decoded.has_value()) << "decoded " << bytes.size() << " bytes";
  EXPECT_NE(decoded.error().message.find(fragment), std::string::npos) << decoded.error().message;
}

TEST(RelayMessages, MissingOrBadRequiredFields) {
  expect_error(from_hex(""), "no type");
  expect_error(from_hex("2864"), "no type");
  // Peer without an ID, with an empty ID, with an ID that is not a multihash.
  expect_error(from_hex("0801"
                        "1200"),
               "no peer ID");
  expect_error(from_hex("0801"
                        "12020a00"),
               "bad peer ID");
  expect_error(from_hex("0801"
                        "12040a020102"),
               "bad peer ID");
  auto stop = decode_stop(from_hex("2064"));
  ASSERT_FALSE(stop.has_value());
  EXPECT_NE(stop.error().message.find("no type"), std::string::npos);
}

TEST(RelayMessages, WrongWireTypesAreErrors) {
  expect_error(from_hex("0a00"), "wrong wire type");  // type as bytes
  expect_error(from_hex("0801"
                        "1001"),
               "wrong wire type");  // peer as varint
  expect_error(from_hex("0802"
                        "1801"),
               "wrong wire type");  // reservation as varint
  expect_error(from_hex("0802"
                        "2001"),
               "wrong wire type");  // limit as varint
  expect_error(from_hex("0802"
                        "2a0164"),
               "wrong wire type");  // status as bytes
  expect_error(from_hex("0802"
                        "2d64000000"),
               "wrong wire type");  // status as fixed32
  expect_error(from_hex("0802"
                        "22020a00"),
               "wrong wire type");  // Limit.duration as bytes
  expect_error(from_hex("0802"
                        "1a020a00"),
               "wrong wire type");  // Reservation.expire bytes
  expect_error(from_hex("0802"
                        "1a021801"),
               "wrong wire type");  // Reservation.voucher varint
  expect_error(from_hex("0802"
                        "0b"),
               "unsupported wire type");  // group start
}

TEST(RelayMessages, SingularFieldsTwiceAreErrors) {
  expect_error(from_hex("0800"
                        "0801"),
               "appears twice");
  expect_error(from_hex("0802"
                        "2864"
                        "2864"),
               "appears twice");
  expect_error(from_hex("0802"
                        "2200"
                        "2200"),
               "appears twice");
  expect_error(from_hex("0802"
                        "22040878"
                        "0878"),
               "appears twice");  // Limit.duration twice
  expect_error(from_hex("0802"
                        "1a0408010802"),
               "appears twice");  // Reservation.expire twice
}

TEST(RelayMessages, OutOfRangeNumbersAreErrors) {
  // An enum beyond int32: 2^31 = 80 80 80 80 08.
  expect_error(from_hex("088080808008"), "out of range");
  expect_error(from_hex("0802"
                        "288080808008"),
               "out of range");
  // Limit.duration is a uint32: 2^32 = 80 80 80 80 10 does not fit.
  expect_error(from_hex("0802"
                        "2206"
                        "088080808010"),
               "32 bits");
  auto max_duration = decode_limit(from_hex("08ffffffff0f"));
  ASSERT_TRUE(max_duration.has_value());
  EXPECT_EQ(max_duration->duration_seconds, 0xffffffffu);
}

TEST(RelayMessages, TruncationAtEveryByte) {
  const Bytes voucher(40, 0x5a);
  const Bytes whole = encode(go_reservation_answer(voucher));
  const Bytes framed = frame(whole);
  for (std::size_t cut = 0; cut < whole.size(); ++cut) {
    const Bytes prefix(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(cut));
    auto decoded = decode_hop(prefix);
    // A cut between two top-level fields leaves a shorter, valid message; any other cut fails.
    if (decoded) {
      EXPECT_NE(*decoded, go_reservation_answer(voucher)) << "cut at " << cut;
    }
  }
  for (std::size_t cut = 0; cut < framed.size(); ++cut) {
    const Bytes prefix(framed.begin(), framed.begin() + static_cast<std::ptrdiff_t>(cut));
    ByteView view(prefix);
    auto taken = take_frame(view, kMaxMessageSize);
    ASSERT_TRUE(taken.has_value()) << "cut at " << cut << ": " << taken.error().message;
    EXPECT_FALSE(taken->has_value()) << "cut at " << cut;
    EXPECT_EQ(view.size(), prefix.size());
  }
  // Cutting inside the nested Reservation (08 02 1a LL, then LL bytes) always fails.
  ASSERT_EQ(whole[2], 0x1a);
  for (std::size_t cut = 3; cut < 4 + std::size_t{whole[3]}; ++cut) {
    const Bytes prefix(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(cut));
    EXPECT_FALSE(decode_hop(prefix).has_value()) << "cut at " << cut;
  }
}

TEST(RelayMessages, FramingTakesMessagesOneByOne) {
  HopMessage reserve;
  const Bytes one = encode_framed(reserve);
  HopMessage status;
  status.type = HopType::kStatus;
  status.status = Status::kOk;
  const Bytes two = encode_framed(status);
  const Bytes stream = cat({one, two, from_hex("05")});  // and the start of a third
  ByteView rest(stream);
  auto first = take_frame(rest, kMaxMessageSize);
  ASSERT_TRUE(first.has_value() && first->has_value());
  EXPECT_EQ(*decode_hop(**first), reserve);
  auto second = take_frame(rest, kMaxMessageSize);
  ASSERT_TRUE(second.has_value() && second->has_value());
  EXPECT_EQ(*decode_hop(**second), status);
  auto third = take_frame(rest, kMaxMessageSize);
  ASSERT_TRUE(third.has_value());
  EXPECT_FALSE(third->has_value());
  EXPECT_EQ(rest.size(), 1u);
  // An empty message is a valid frame (it then fails to decode: no type).
  Bytes empty = from_hex("00");
  ByteView empty_view(empty);
  auto zero = take_frame(empty_view, kMaxMessageSize);
  ASSERT_TRUE(zero.has_value() && zero->has_value());
  EXPECT_TRUE((*zero)->empty());
  EXPECT_FALSE(decode_hop(**zero).has_value());
}

TEST(RelayMessages, OversizeIsRefused) {
  // 4096 = 80 20 is the largest length accepted; 4097 = 81 20 is refused before the body comes.
  // The other framing cases are in length_prefixed_test.cpp.
  Bytes at_limit = from_hex("8020");
  ByteView at_limit_view(at_limit);
  auto waiting = take_frame(at_limit_view, kMaxMessageSize);
  ASSERT_TRUE(waiting.has_value());
  EXPECT_FALSE(waiting->has_value());
  Bytes over_limit = from_hex("8120");
  ByteView over_limit_view(over_limit);
  auto refused_frame = take_frame(over_limit_view, kMaxMessageSize);
  ASSERT_FALSE(refused_frame.has_value());
  EXPECT_EQ(refused_frame.error().code, std::make_error_code(kFrameTooLarge));
  // And the decoders refuse more than kMaxMessageSize bytes whatever their content.
  Bytes big = from_hex("0802");
  big.resize(kMaxMessageSize + 1, 0);  // padded with... zeros are field 0: refused anyway
  EXPECT_FALSE(decode_hop(big).has_value());
  Bytes big_unknown = from_hex("0802");
  big_unknown.push_back(0x82);  // field 16, bytes
  big_unknown.push_back(0x01);
  append_varint(big_unknown, kMaxMessageSize);
  big_unknown.resize(big_unknown.size() + kMaxMessageSize, 0);
  auto refused = decode_hop(big_unknown);
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.error().message.find("exceeds the limit"), std::string::npos);
}

}  // namespace
}  // namespace an::p2p::relay
