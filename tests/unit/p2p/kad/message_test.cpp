// Kademlia messages: exact bytes built by hand from the spec's protobuf, round trips, framing and
// hostile input.
//
// How the expected bytes are built: every protobuf field starts with the varint
// (field number << 3 | wire type), wire type 0 for varints and enums, 2 for bytes and nested
// messages (followed by a varint length). So Message.type (1) is 0x08, key (2) 0x12, record (3)
// 0x1a, closerPeers (8) 0x42, providerPeers (9) 0x4a, clusterLevelRaw (10) 0x50; Peer.id (1)
// 0x0a, addrs (2) 0x12, connection (3) 0x18; Record.key 0x0a, value 0x12, timeReceived (5) 0x2a.
// proto3 leaves zero values out, and go writes fields in field-number order.
#include "p2p/kad/message.h"

#include <gtest/gtest.h>

#include <random>

#include "p2p/crypto/keys.h"
#include "p2p/wire/length_prefixed.h"
#include "support/hex.h"

namespace an::p2p::kad {
namespace {

using an::test::from_hex;

PeerId test_peer(std::uint8_t seed_byte) {
  auto key = Ed25519PrivateKey::from_seed(Bytes(kEd25519SeedSize, seed_byte));
  EXPECT_TRUE(key.has_value());
  return PeerId::from_public_key(key->public_key());
}

Multiaddr address(std::string_view text) {
  auto parsed = Multiaddr::parse(text);
  EXPECT_TRUE(parsed.has_value()) << text;
  return parsed ? *parsed : Multiaddr();
}

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& part : parts)
    out.insert(out.end(), part.begin(), part.end());
  return out;
}

// A length-delimited field: tag, varint length, content.
Bytes nested(std::uint8_t tag, const Bytes& content) {
  Bytes out{tag};
  append_varint(out, content.size());
  out.insert(out.end(), content.begin(), content.end());
  return out;
}

Bytes raw(std::string_view text) {
  return Bytes(text.begin(), text.end());
}

Message full_message() {
  Message message;
  message.type = MessageType::kGetValue;
  message.cluster_level_raw = 1;
  message.key = raw("/pk/some-key");
  message.record = Record{raw("/pk/some-key"), raw("value bytes"), "2026-11-26T10:00:00Z"};
  message.closer_peers = {Peer{test_peer(1),
                               {address("/ip4/192.0.2.1/tcp/4001"), address("/ip6/::1/tcp/4002")},
                               ConnectionType::kConnected},
                          Peer{test_peer(2), {}, ConnectionType::kCannotConnect}};
  message.provider_peers = {
      Peer{test_peer(3), {address("/dns4/example.com/tcp/443")}, ConnectionType::kCanConnect}};
  return message;
}

TEST(KadMessage, FindNodeRequestBytes) {
  const PeerId target = test_peer(7);
  ASSERT_EQ(target.bytes().size(), 38u);  // identity multihash: 00 24 + 36-byte PublicKey
  Message request;
  request.type = MessageType::kFindNode;
  request.key = target.bytes();
  request.cluster_level_raw = 1;  // what go-libp2p-kad-dht sends
  const Bytes expected =
      cat({from_hex("0804"), from_hex("1226"), target.bytes(), from_hex("5001")});
  EXPECT_EQ(encode(request), expected);
  auto decoded = decode(expected);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
  EXPECT_EQ(*decoded, request);
  // Framed: a one-byte uvarint length (44 = 0x2c) first.
  EXPECT_EQ(encode_frame(request), cat({from_hex("2c"), expected}));
}

TEST(KadMessage, CloserPeerBytes) {
  const PeerId peer = test_peer(8);
  Message response;
  response.type = MessageType::kFindNode;
  response.closer_peers = {
      Peer{peer, {address("/ip4/1.2.3.4/tcp/4001")}, ConnectionType::kConnected}};
  // /ip4/1.2.3.4/tcp/4001 = 04 01020304 06 0fa1 (8 bytes); the Peer is 2+38 + 2+8 + 2 = 52.
  const Bytes peer_bytes = cat({from_hex("0a26"), peer.bytes(), from_hex("1208"),
                                from_hex("0401020304060fa1"), from_hex("1801")});
  ASSERT_EQ(peer_bytes.size(), 52u);
  const Bytes expected = cat({from_hex("0804"), from_hex("4234"), peer_bytes});
  EXPECT_EQ(encode(response), expected);
  auto decoded = decode(expected);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
  EXPECT_EQ(*decoded, response);
}

TEST(KadMessage, PutValueBytesLeaveZeroTypeOut) {
  Message put;
  put.type = MessageType::kPutValue;  // 0: not written
  put.key = raw("/a");
  put.record = Record{raw("/a"), raw("v"), "t"};
  // record: 0a 02 "/a" 12 01 "v" 2a 01 "t" = 10 bytes
  const Bytes expected = from_hex(
      "12022f61"
      "1a0a"
      "0a022f61"
      "120176"
      "2a0174");
  EXPECT_EQ(encode(put), expected);
  auto decoded = decode(expected);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, put);
  // An empty message is a PUT_VALUE with nothing in it.
  auto empty = decode({});
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(empty->type, MessageType::kPutValue);
  EXPECT_FALSE(empty->record.has_value());
}

TEST(KadMessage, PingAndProviderTypes) {
  for (auto type : {MessageType::kPing, MessageType::kAddProvider, MessageType::kGetProviders,
                    MessageType::kGetValue}) {
    Message message;
    message.type = type;
    auto decoded = decode(encode(message));
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(decoded->type, type) << message_type_name(type);
  }
  EXPECT_EQ(encode(Message{}), from_hex("0805"));  // default type is PING
}

TEST(KadMessage, RoundTripFullMessage) {
  const Message message = full_message();
  auto decoded = decode(encode(message));
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
  EXPECT_EQ(*decoded, message);
  EXPECT_EQ(decoded->skipped_peers, 0u);
  EXPECT_EQ(decoded->skipped_addresses, 0u);
}

TEST(KadMessage, NegativeClusterLevel) {
  Message message;
  message.cluster_level_raw = -1;
  const Bytes bytes = encode(message);
  // Written as its 32 bits (5 bytes), which every protobuf reader truncates back to int32 -1.
  EXPECT_EQ(bytes, from_hex("0805"
                            "50ffffffff0f"));
  auto decoded = decode(bytes);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->cluster_level_raw, -1);
  // The sign-extended 10-byte form protobuf itself writes is beyond the 9-byte varint cap of our
  // reader (the multiformats rule): refused. No implementation sends a negative level.
  EXPECT_FALSE(decode(from_hex("0805"
                               "50ffffffffffffffffff01"))
                   .has_value());
}

TEST(KadMessage, UnknownFieldsAreSkipped) {
  // Message field 20 (varint), field 21 (bytes); Record author (3) and signature (4).
  const Bytes bytes = from_hex(
      "0801"
      "a00105"
      "aa0102abcd"
      "1a0c"
      "0a012f"
      "1a0161"
      "22026868"
      "2a00");
  auto decoded = decode(bytes);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
  EXPECT_EQ(decoded->type, MessageType::kGetValue);
  ASSERT_TRUE(decoded->record.has_value());
  EXPECT_EQ(decoded->record->key, raw("/"));
  EXPECT_TRUE(decoded->record->value.empty());
}

TEST(KadMessage, WrongWireTypesAreErrors) {
  const PeerId peer = test_peer(9);
  const std::vector<Bytes> bad = {
      from_hex("0a0104"),              // type as bytes
      from_hex("1201"),                // truncated key
      from_hex("1001"),                // key as varint
      from_hex("1801"),                // record as varint
      from_hex("4001"),                // closer peer as varint
      from_hex("4801"),                // provider peer as varint
      from_hex("520101"),              // clusterLevelRaw as bytes
      from_hex("1a020801"),            // record key as varint
      from_hex("1a022801"),            // record timeReceived as varint
      nested(0x42, from_hex("0801")),  // peer id as varint
      nested(0x42, cat({from_hex("0a26"), peer.bytes(), from_hex("1001")})),    // addrs as varint
      nested(0x4a, cat({from_hex("0a26"), peer.bytes(), from_hex("1a0101")})),  // connection
      nested(0x42, from_hex("0a05")),                                           // truncated peer id
      from_hex("0806"),          // type 6 does not exist
      from_hex("08ffffffff0f"),  // nor does 2^32-1
      from_hex("0b"),            // group start
      from_hex("00"),            // field 0
  };
  for (const auto& bytes : bad) {
    EXPECT_FALSE(decode(bytes).has_value()) << to_hex(bytes);
  }
}

TEST(KadMessage, BadPeersAndAddressesAreSkipped) {
  const PeerId good = test_peer(10);
  // A peer whose id is not a multihash, a peer with no id, and a good peer with one address we
  // cannot read (protocol code 0x7fff) next to one we can.
  const Bytes bad_id = from_hex("0a03616263");
  const Bytes no_id = from_hex("1801");
  const Bytes good_peer = cat({from_hex("0a26"), good.bytes(), from_hex("1203ffff01"),
                               from_hex("1208"), from_hex("0401020304060fa1")});
  const Bytes bytes =
      cat({from_hex("0804"), nested(0x42, bad_id), nested(0x42, no_id), nested(0x42, good_peer)});
  auto decoded = decode(bytes);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
  ASSERT_EQ(decoded->closer_peers.size(), 1u);
  EXPECT_EQ(decoded->closer_peers[0].id, good);
  ASSERT_EQ(decoded->closer_peers[0].addrs.size(), 1u);
  EXPECT_EQ(decoded->closer_peers[0].addrs[0].to_string(), "/ip4/1.2.3.4/tcp/4001");
  EXPECT_EQ(decoded->skipped_peers, 2u);
  EXPECT_EQ(decoded->skipped_addresses, 1u);
}

TEST(KadMessage, UnknownConnectionTypeReadsAsNotConnected) {
  const PeerId peer = test_peer(11);
  const Bytes peer_bytes = cat({from_hex("0a26"), peer.bytes(), from_hex("1809")});
  const Bytes bytes =
      cat({from_hex("4a"), Bytes{static_cast<std::uint8_t>(peer_bytes.size())}, peer_bytes});
  auto decoded = decode(bytes);
  ASSERT_TRUE(decoded.has_value());
  ASSERT_EQ(decoded->provider_peers.size(), 1u);
  EXPECT_EQ(decoded->provider_peers[0].connection, ConnectionType::kNotConnected);
}

TEST(KadMessage, ListAndAddressCaps) {
  Message message;
  message.type = MessageType::kGetProviders;
  Peer peer{test_peer(12), {}, ConnectionType::kNotConnected};
  for (std::size_t i = 0; i < kMaxAddrsPerPeer + 3; ++i) {
    peer.addrs.push_back(address("/ip4/10.0.0.1/tcp/" + std::to_string(1000 + i)));
  }
  message.provider_peers.assign(kMaxPeersPerList + 5, peer);
  auto decoded = decode(encode(message));
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message;
  EXPECT_EQ(decoded->provider_peers.size(), kMaxPeersPerList);
  EXPECT_EQ(decoded->skipped_peers, 5u);
  EXPECT_EQ(decoded->provider_peers[0].addrs.size(), kMaxAddrsPerPeer);
  EXPECT_EQ(decoded->skipped_addresses, 3u * (kMaxPeersPerList + 5));
}

TEST(KadMessage, OversizeMessageIsRefused) {
  Message message;
  message.type = MessageType::kPutValue;
  message.record = Record{raw("/k"), Bytes(kMaxMessageSize, 0x61), ""};
  const Bytes bytes = encode(message);
  ASSERT_GT(bytes.size(), kMaxMessageSize);
  EXPECT_FALSE(decode(bytes).has_value());
}

TEST(KadMessage, HugeNestedLengthsAreErrors) {
  EXPECT_FALSE(decode(from_hex("42ffffffff0f00")).has_value());
  EXPECT_FALSE(decode(from_hex("1affffffffffffffff7f")).has_value());
  EXPECT_FALSE(decode(from_hex("1a05"
                               "0aff7f0000"))
                   .has_value());
}

TEST(KadMessage, TruncationAtEveryByte) {
  const Bytes bytes = encode(full_message());
  std::size_t failures = 0;
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    auto decoded = decode(ByteView(bytes.data(), cut));
    if (!decoded) {
      ++failures;
    } else {
      EXPECT_NE(*decoded, full_message()) << "cut at " << cut;
    }
  }
  // Cutting inside a field is an error; cutting at a field boundary is a shorter message.
  EXPECT_GT(failures, bytes.size() / 2);
}

TEST(KadMessage, RandomGarbageNeverCrashes) {
  std::mt19937 random(42);
  const Bytes valid = encode(full_message());
  for (int round = 0; round < 20000; ++round) {
    Bytes bytes;
    if (round % 2 == 0) {
      bytes.resize(random() % 200);
      for (auto& byte : bytes)
        byte = static_cast<std::uint8_t>(random());
    } else {
      bytes = valid;
      for (int flips = 0; flips < 3; ++flips)
        bytes[random() % bytes.size()] = static_cast<std::uint8_t>(random());
    }
    auto decoded = decode(bytes);
    if (decoded) {
      // Whatever decodes re-encodes and decodes to the same message.
      auto again = decode(encode(*decoded));
      ASSERT_TRUE(again.has_value());
      EXPECT_EQ(*again, *decoded);
    }
  }
}

TEST(KadMessage, ProvidersFromSender) {
  const PeerId sender = test_peer(13);
  Message request;
  request.type = MessageType::kAddProvider;
  request.provider_peers = {
      Peer{test_peer(14), {address("/ip4/10.0.0.2/tcp/1")}, ConnectionType::kNotConnected},
      Peer{sender, {}, ConnectionType::kNotConnected},
      Peer{sender, {address("/ip4/10.0.0.1/tcp/1")}, ConnectionType::kConnected}};
  auto accepted = providers_from_sender(request, sender);
  ASSERT_EQ(accepted.size(), 1u);
  EXPECT_EQ(accepted[0].id, sender);
  EXPECT_EQ(accepted[0].addrs.size(), 1u);
}

// The framing cases without kad messages are in length_prefixed_test.cpp.
TEST(KadMessage, FramesTakenByteByByteAndBatched) {
  const Message a = full_message();
  Message b;
  b.type = MessageType::kPing;
  const Bytes stream = cat({encode_frame(a), encode_frame(b), encode_frame(a)});

  std::vector<Bytes> messages;
  Bytes pending;
  for (std::uint8_t byte : stream) {
    pending.push_back(byte);
    ByteView rest(pending);
    while (true) {
      auto next = take_frame(rest, kMaxMessageSize);
      ASSERT_TRUE(next.has_value());
      if (!next->has_value()) break;
      messages.emplace_back((*next)->begin(), (*next)->end());
    }
    pending = Bytes(rest.begin(), rest.end());
  }
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_EQ(*decode(messages[0]), a);
  EXPECT_EQ(*decode(messages[1]), b);
  EXPECT_EQ(*decode(messages[2]), a);
  EXPECT_TRUE(pending.empty());

  ByteView rest(stream);
  std::size_t count = 0;
  while (true) {
    auto next = take_frame(rest, kMaxMessageSize);
    ASSERT_TRUE(next.has_value());
    if (!next->has_value()) break;
    ++count;
  }
  EXPECT_EQ(count, 3u);
  EXPECT_TRUE(rest.empty());
}

}  // namespace
}  // namespace an::p2p::kad
