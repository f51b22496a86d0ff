// Identify messages: exact bytes, round trips, skipped addresses, limits, the stream form (split
// and merged messages as go-libp2p writes them) and hostile input.
#include "p2p/identify/identify.h"
#include "fuzz/harness/harness.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "p2p/crypto/key.h"
#include "p2p/record/peer_record.h"
#include "p2p/wire/protobuf.h"

namespace an::p2p::identify {
namespace {

Multiaddr address(std::string_view text) {
  auto parsed = Multiaddr::parse(text);
  EXPECT_TRUE(parsed.has_value()) << text;
  return parsed ? *parsed : Multiaddr();
}

Bytes raw(std::string_view text) {
  return Bytes(text.begin(), text.end());
}

Bytes frame(const Bytes& message) {
  Bytes out;
  append_varint(out, message.size());
  out.insert(out.end(), message.begin(), message.end());
  return out;
}

PrivateKey test_key() {
  auto key = Ed25519PrivateKey::from_seed(Bytes(kEd25519SeedSize, 0x42));
  EXPECT_TRUE(key.has_value());
  return PrivateKey::from_ed25519(*key);
}

Identify full_message() {
  const auto key = test_key();
  Identify message;
  message.protocol_version = "ipfs/0.1.0";
  message.agent_version = "agentnetwork/0.1.0";
  message.public_key = key.public_key().protobuf();
  message.listen_addrs = {address("/ip4/192.0.2.1/tcp/4001"), address("/ip6/::1/udp/4001/quic-v1")};
  message.observed_addr = address("/ip4/198.51.100.7/tcp/50000");
  message.protocols = {"/ipfs/id/1.0.0", "/ipfs/id/push/1.0.0", "/ipfs/ping/1.0.0"};
  auto record = record::make_signed_peer_record(key, 1, message.listen_addrs);
  EXPECT_TRUE(record.has_value());
  message.signed_peer_record = *record;
  return message;
}

void expect_same(const Identify& actual, const Identify& expected) {
  EXPECT_EQ(actual.protocol_version, expected.protocol_version);
  EXPECT_EQ(actual.agent_version, expected.agent_version);
  EXPECT_EQ(actual.public_key, expected.public_key);
  EXPECT_EQ(actual.listen_addrs, expected.listen_addrs);
  EXPECT_EQ(actual.observed_addr, expected.observed_addr);
  EXPECT_EQ(actual.protocols, expected.protocols);
  EXPECT_EQ(actual.signed_peer_record, expected.signed_peer_record);
}

TEST(IdentifyConstants, ProtocolIdsAndLimits) {
  EXPECT_EQ(kProtocolId, "/ipfs/id/1.0.0");
  EXPECT_EQ(kPushProtocolId, "/ipfs/id/push/1.0.0");
  EXPECT_EQ(kMaxMessageSize, 8192u);
  EXPECT_LT(kMaxOwnMessageSize, kMaxMessageSize);
}

TEST(IdentifyMessage, EncodesInFieldOrderWithExactBytes) {
  Identify message;
  message.protocol_version = "ipfs/0.1.0";
  message.listen_addrs = {address("/ip4/127.0.0.1/tcp/4001")};
  message.protocols = {"/a"};
  const Bytes expected = {
      0x12, 0x08, 0x04, 0x7f, 0x00, 0x00, 0x01, 0x06, 0x0f, 0xa1,            // 2: listenAddrs
      0x1a, 0x02, '/',  'a',                                                 // 3: protocols
      0x2a, 0x0a, 'i',  'p',  'f',  's',  '/',  '0',  '.',  '1',  '.', '0',  // 5
  };
  EXPECT_EQ(encode(message), expected);
  EXPECT_TRUE(encode(Identify{}).empty());
}

TEST(IdentifyMessage, RoundTripsEveryField) {
  const Identify message = full_message();
  auto decoded = decode(encode(message));
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
  expect_same(*decoded, message);
  EXPECT_EQ(decoded->skipped_addresses, 0u);
  ASSERT_TRUE(decoded->signed_peer_record.has_value());
  auto record = record::verify_signed_peer_record(*decoded->signed_peer_record);
  ASSERT_TRUE(record.has_value()) << record.error().message;
  EXPECT_EQ(record->addresses, message.listen_addrs);
}

TEST(IdentifyMessage, PresentButEmptyFieldsStayPresent) {
  Identify message;
  message.agent_version = "";
  message.public_key = Bytes{};
  auto decoded = decode(encode(message));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->agent_version, std::optional<std::string>(""));
  EXPECT_EQ(decoded->public_key, std::optional<Bytes>(Bytes{}));
  EXPECT_FALSE(decoded->protocol_version.has_value());
}

TEST(IdentifyMessage, UnparseableAddressesAreSkippedAndCounted) {
  Bytes bytes;
  pb::Writer writer(bytes);
  writer.bytes_field(2, address("/ip4/10.0.0.1/tcp/1").to_bytes());
  writer.bytes_field(2, Bytes{0xdd, 0x03});  // /ws: not a protocol we know
  writer.bytes_field(2, Bytes{});
  writer.bytes_field(2, address("/ip4/10.0.0.2/tcp/2").to_bytes());
  writer.bytes_field(4, Bytes{0x04, 0x7f});  // observedAddr cut short
  writer.string_field(3, "/ipfs/id/1.0.0");
  auto decoded = decode(bytes);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
  EXPECT_EQ(decoded->listen_addrs, (std::vector<Multiaddr>{address("/ip4/10.0.0.1/tcp/1"),
                                                           address("/ip4/10.0.0.2/tcp/2")}));
  EXPECT_FALSE(decoded->observed_addr.has_value());
  EXPECT_EQ(decoded->skipped_addresses, 3u);
  EXPECT_EQ(decoded->protocols, std::vector<std::string>{"/ipfs/id/1.0.0"});
}

TEST(IdentifyMessage, UnknownFieldsAreSkippedAndLastValueWins) {
  Bytes bytes;
  pb::Writer writer(bytes);
  writer.varint_field(7, 99);
  writer.string_field(6, "first");
  writer.bytes_field(100, raw("future"));
  writer.string_field(6, "second");
  auto decoded = decode(bytes);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
  EXPECT_EQ(decoded->agent_version, std::optional<std::string>("second"));
}

TEST(IdentifyMessage, MalformedInputIsAnError) {
  // protocolVersion as a varint.
  auto wrong_type = decode(Bytes{0x28, 0x01});
  ASSERT_FALSE(wrong_type.has_value());
  EXPECT_NE(wrong_type.error().message.find("field 5 is not length-delimited"), std::string::npos);
  // Length past the end, truncated key, group wire type.
  EXPECT_FALSE(decode(Bytes{0x2a, 0x05, 'a'}).has_value());
  EXPECT_FALSE(decode(Bytes{0x80}).has_value());
  EXPECT_FALSE(decode(Bytes{0x0b}).has_value());
}

TEST(IdentifyMessage, SizeLimit) {
  Identify message;
  message.agent_version = "";
  // Tag and two length bytes: 3 bytes of overhead.
  message.agent_version->assign(kMaxMessageSize - 3, 'a');
  const Bytes at_limit = encode(message);
  ASSERT_EQ(at_limit.size(), kMaxMessageSize);
  EXPECT_TRUE(decode(at_limit).has_value());
  message.agent_version->push_back('a');
  auto over = decode(encode(message));
  ASSERT_FALSE(over.has_value());
  EXPECT_NE(over.error().message.find("exceeds the limit of 8192"), std::string::npos);
}

TEST(IdentifyStream, SmallMessageIsOneFrame) {
  const Identify message = full_message();
  const Bytes encoded = encode(message);
  ASSERT_LE(encoded.size(), kLegacyMessageSize);
  EXPECT_EQ(encode_stream(message), frame(encoded));
  auto decoded = decode_stream(encode_stream(message));
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
  expect_same(*decoded, message);
}

TEST(IdentifyStream, LargeMessageSendsTheRecordSeparatelyLikeGo) {
  Identify message = full_message();
  for (int i = 0; i < 100; ++i)
    message.protocols.push_back("/app/protocol/" + std::to_string(i));
  ASSERT_GT(encode(message).size(), kLegacyMessageSize);

  Identify without_record = message;
  without_record.signed_peer_record.reset();
  Identify record_only;
  record_only.signed_peer_record = message.signed_peer_record;
  const Bytes stream = encode_stream(message);
  Bytes expected = frame(encode(without_record));
  const Bytes second = frame(encode(record_only));
  expected.insert(expected.end(), second.begin(), second.end());
  EXPECT_EQ(stream, expected);

  auto decoded = decode_stream(stream);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
  expect_same(*decoded, message);
}

TEST(IdentifyStream, MergesLikeProtobuf) {
  Identify first;
  first.agent_version = "old";
  first.protocols = {"/a"};
  first.listen_addrs = {address("/ip4/10.0.0.1/tcp/1")};
  Identify second;
  second.agent_version = "new";
  second.protocols = {"/b"};
  second.listen_addrs = {address("/ip4/10.0.0.2/tcp/2")};
  Bytes stream = frame(encode(first));
  const Bytes more = frame(encode(second));
  stream.insert(stream.end(), more.begin(), more.end());
  auto merged = decode_stream(stream);
  ASSERT_TRUE(merged.has_value()) << merged.error().message;
  EXPECT_EQ(merged->agent_version, std::optional<std::string>("new"));
  EXPECT_EQ(merged->protocols, (std::vector<std::string>{"/a", "/b"}));
  EXPECT_EQ(merged->listen_addrs.size(), 2u);
}

TEST(IdentifyStream, Limits) {
  Identify part;
  part.protocols = {"/p"};
  const Bytes one = frame(encode(part));
  Bytes ten;
  for (std::size_t i = 0; i < kMaxMessagesPerStream; ++i)
    ten.insert(ten.end(), one.begin(), one.end());
  auto merged = decode_stream(ten);
  ASSERT_TRUE(merged.has_value());
  EXPECT_EQ(merged->protocols.size(), kMaxMessagesPerStream);
  Bytes eleven = ten;
  eleven.insert(eleven.end(), one.begin(), one.end());
  auto too_many = decode_stream(eleven);
  ASSERT_FALSE(too_many.has_value());
  EXPECT_NE(too_many.error().message.find("more than 10 messages"), std::string::npos);

  // A frame announcing more than 8 KiB is refused before any of it is parsed.
  Bytes oversized;
  append_varint(oversized, kMaxMessageSize + 1);
  oversized.resize(oversized.size() + kMaxMessageSize + 1, 0);
  EXPECT_FALSE(decode_stream(oversized).has_value());

  auto truncated = decode_stream(Bytes(one.begin(), one.end() - 1));
  ASSERT_FALSE(truncated.has_value());
  EXPECT_NE(truncated.error().message.find("truncated"), std::string::npos);
  EXPECT_FALSE(decode_stream(Bytes{}).has_value());
  EXPECT_FALSE(decode_stream(Bytes{0xff}).has_value());  // Length prefix cut short.

  // An empty frame is an empty message: valid protobuf, nothing learned.
  auto empty = decode_stream(Bytes{0x00});
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->protocols.empty());
}

TEST(IdentifyHostile, MutatedAndRandomMessagesNeverCrash) {
  std::mt19937 random(7);
  std::uniform_int_distribution<int> byte(0, 255);
  const Bytes valid = encode_stream(full_message());
  for (int round = 0; round < 3000; ++round) {
    Bytes input = valid;
    const int flips = 1 + round % 5;
    for (int i = 0; i < flips; ++i) {
      input[static_cast<std::size_t>(byte(random)) % input.size()] =
          static_cast<std::uint8_t>(byte(random));
    }
    if (round % 4 == 0) input.resize(static_cast<std::size_t>(byte(random)) % input.size());
    fuzz::identify(input.data(), input.size());
    if (input.size() > 2) fuzz::identify(input.data() + 2, input.size() - 2);
  }
  for (int round = 0; round < 2000; ++round) {
    Bytes input(static_cast<std::size_t>(byte(random)) * 4);
    for (auto& value : input)
      value = static_cast<std::uint8_t>(byte(random));
    fuzz::identify(input.data(), input.size());
  }
  fuzz::identify(nullptr, 0);
}

}  // namespace
}  // namespace an::p2p::identify
