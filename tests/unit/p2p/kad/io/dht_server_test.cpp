// DhtServer end to end over 127.0.0.1: host A serves /ipfs/kad/1.0.0, host B sends hand-built
// requests, host C is a kad server that A learns through identify. Every wait is bounded.
#include "p2p/kad/io/dht_server.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "p2p/crypto/keys.h"
#include "p2p/identify/identify.h"
#include "p2p/kad/message.h"
#include "p2p/net/framed.h"
#include "unit/p2p/net/net_test_support.h"

namespace an::p2p::net::test {
namespace {

using kad::DhtServer;
using kad::kMaxDhtProviderKeySize;
using kad::kMaxDhtStreamsPerPeer;

using Strings = std::vector<std::string>;

const kad::Peer* find_peer(const std::vector<kad::Peer>& peers, const PeerId& id) {
  auto found = std::find_if(peers.begin(), peers.end(),
                            [&](const kad::Peer& peer) { return peer.id == id; });
  return found == peers.end() ? nullptr : &*found;
}

bool lists(const std::vector<Multiaddr>& addresses, const Multiaddr& address) {
  return std::find(addresses.begin(), addresses.end(), address) != addresses.end();
}

Bytes pk_key(const PeerId& peer) {
  Bytes key = text_bytes("/pk/");
  key.insert(key.end(), peer.bytes().begin(), peer.bytes().end());
  return key;
}

kad::Message put_value(const Bytes& key, const Bytes& value) {
  kad::Message message;
  message.type = kad::MessageType::kPutValue;
  message.key = key;
  message.record = kad::Record{key, value, ""};
  return message;
}

kad::Message request_of(kad::MessageType type, const Bytes& key) {
  kad::Message message;
  message.type = type;
  message.key = key;
  return message;
}

class DhtServerTest : public ::testing::Test {
 protected:
  DhtServerTest() { server.start(); }

  void connect_and_identify(TestPeer& from, TestPeer& to) {
    auto connection =
        run_coroutine(io, [&]() -> asio::awaitable<Expected<std::shared_ptr<Connection>>> {
          co_return co_await from.host().connect(to.dial_address());
        });
    ASSERT_TRUE(connection && *connection) << (connection ? connection->error().message : "");
    ASSERT_TRUE(run_until(io, [&] { return from.identified(to.id()) && to.identified(from.id()); }))
        << "identify did not complete";
  }

  std::shared_ptr<Stream> open_kad(TestPeer& from, const PeerId& to) {
    auto stream = run_coroutine(io, [&]() -> asio::awaitable<Expected<std::shared_ptr<Stream>>> {
      Strings protocols(1, std::string(kad::kProtocolId));
      co_return co_await from.host().new_stream(to, std::move(protocols));
    });
    EXPECT_TRUE(stream && *stream) << (stream ? stream->error().message : "");
    if (!stream || !*stream) return nullptr;
    return **stream;
  }

  Expected<void> send_raw(Stream& stream, const Bytes& bytes) {
    auto written = run_coroutine(io, [&]() -> asio::awaitable<Expected<void>> {
      co_return co_await stream.write_all(bytes);
    });
    if (!written) return fail("write did not finish");
    return *written;
  }

  Expected<void> send(Stream& stream, const kad::Message& message) {
    auto written = run_coroutine(io, [&]() -> asio::awaitable<Expected<void>> {
      const Bytes encoded = kad::encode(message);
      co_return co_await write_framed(stream, encoded);
    });
    if (!written) return fail("write did not finish");
    return *written;
  }

  // The next message, or an error when the stream ended or broke.
  Expected<kad::Message> receive(Stream& stream) {
    auto received = run_coroutine(io, [&]() -> asio::awaitable<Expected<std::optional<Bytes>>> {
      co_return co_await read_framed(stream, kad::kMaxMessageSize);
    });
    if (!received) return fail("read did not finish");
    if (!*received) return tl::unexpected(received->error());
    if (!(*received)->has_value()) return fail("end of stream");
    return kad::decode(***received);
  }

  Expected<kad::Message> exchange(Stream& stream, const kad::Message& request) {
    auto sent = send(stream, request);
    if (!sent) return tl::unexpected(sent.error());
    return receive(stream);
  }

  // True when the server closed or reset the stream (nothing more to read).
  bool closed_by_server(Stream& stream) {
    auto received = run_coroutine(io, [&]() -> asio::awaitable<Expected<std::optional<Bytes>>> {
      co_return co_await read_framed(stream, kad::kMaxMessageSize);
    });
    return received && (!*received || !(*received)->has_value());
  }

  // The server answers a PING on a new stream from B.
  void expect_serving_new_stream() {
    auto stream = open_kad(b, a.id());
    ASSERT_NE(stream, nullptr);
    auto pong = exchange(*stream, request_of(kad::MessageType::kPing, {}));
    ASSERT_TRUE(pong) << pong.error().message;
    EXPECT_EQ(pong->type, kad::MessageType::kPing);
  }

  asio::io_context io;
  TestPeer a{io, "test-agent/a"};
  TestPeer b{io, "test-agent/b"};
  DhtServer server{a.host()};
};

TEST_F(DhtServerTest, IdentifyOfAKadServerFillsTheRoutingTableAndFindNodeReturnsIt) {
  TestPeer c{io, "test-agent/c"};
  c.host().set_handler(std::string(kad::kProtocolId),
                       [&c](std::shared_ptr<Stream> stream) -> asio::awaitable<void> {
                         c.held_streams.push_back(std::move(stream));
                         co_return;
                       });
  connect_and_identify(c, a);
  ASSERT_TRUE(run_until(io, [&] { return server.routing_table().contains(c.id()); }));
  // A routing-table peer stays in the peer store whatever its connection does.
  EXPECT_TRUE(a.host().peer_store().is_pinned(c.id()));
  connect_and_identify(b, a);
  // B does not serve kad (client): it stays out of the table.
  EXPECT_FALSE(server.routing_table().contains(b.id()));
  EXPECT_EQ(server.routing_table().size(), 1u);

  auto stream = open_kad(b, a.id());
  ASSERT_NE(stream, nullptr);
  auto reply = exchange(*stream, request_of(kad::MessageType::kFindNode, b.id().bytes()));
  ASSERT_TRUE(reply) << reply.error().message;
  EXPECT_EQ(reply->type, kad::MessageType::kFindNode);
  EXPECT_TRUE(reply->key.empty());
  const kad::Peer* found = find_peer(reply->closer_peers, c.id());
  ASSERT_NE(found, nullptr);
  EXPECT_TRUE(lists(found->addrs, c.listen_address()));
  EXPECT_EQ(found->connection, kad::ConnectionType::kConnected);
  // Never the requester itself, even when it asks for its own ID.
  EXPECT_EQ(find_peer(reply->closer_peers, b.id()), nullptr);

  // Asking for A's own ID returns A alone, with its addresses, as go does.
  auto self = exchange(*stream, request_of(kad::MessageType::kFindNode, a.id().bytes()));
  ASSERT_TRUE(self) << self.error().message;
  const kad::Peer* server_itself = find_peer(self->closer_peers, a.id());
  ASSERT_NE(server_itself, nullptr);
  EXPECT_TRUE(lists(server_itself->addrs, a.listen_address()));
  EXPECT_EQ(self->closer_peers.size(), 1u);

  // Any key, not only peer IDs: the table's nearest peers.
  auto any = exchange(*stream, request_of(kad::MessageType::kFindNode, text_bytes("any key")));
  ASSERT_TRUE(any) << any.error().message;
  EXPECT_NE(find_peer(any->closer_peers, c.id()), nullptr);
}

TEST_F(DhtServerTest, APeerThatStopsServingKadLeavesTheRoutingTable) {
  TestPeer c{io, "test-agent/c"};
  c.host().set_handler(std::string(kad::kProtocolId),
                       [&c](std::shared_ptr<Stream> stream) -> asio::awaitable<void> {
                         c.held_streams.push_back(std::move(stream));
                         co_return;
                       });
  connect_and_identify(c, a);
  ASSERT_TRUE(run_until(io, [&] { return server.routing_table().contains(c.id()); }));
  // A routing-table peer stays in the peer store whatever its connection does.
  EXPECT_TRUE(a.host().peer_store().is_pinned(c.id()));

  // C pushes an identify whose protocols no longer list kad (client mode).
  identify::Identify update;
  update.protocols = {std::string(identify::kProtocolId)};
  const Bytes pushed = identify::encode_stream(update);
  auto sent = run_coroutine(io, [&]() -> asio::awaitable<Expected<void>> {
    Strings protocols(1, std::string(identify::kPushProtocolId));
    auto stream = co_await c.host().new_stream(a.id(), std::move(protocols));
    if (!stream) co_return tl::unexpected(stream.error());
    co_return co_await write_and_close(**stream, pushed);
  });
  ASSERT_TRUE(sent && *sent);
  EXPECT_TRUE(run_until(io, [&] { return !server.routing_table().contains(c.id()); }));
  EXPECT_FALSE(a.host().peer_store().is_pinned(c.id()));
}

TEST_F(DhtServerTest, FindNodeOfAConnectedPeerOutsideTheTableReturnsIt) {
  // D does not serve kad, so it stays out of the table; A is connected to it and knows its
  // address, so a FIND_NODE for D's ID names it (go's handleFindPeer does the same).
  TestPeer d{io, "test-agent/d"};
  connect_and_identify(d, a);
  connect_and_identify(b, a);
  EXPECT_FALSE(server.routing_table().contains(d.id()));
  auto stream = open_kad(b, a.id());
  ASSERT_NE(stream, nullptr);
  auto reply = exchange(*stream, request_of(kad::MessageType::kFindNode, d.id().bytes()));
  ASSERT_TRUE(reply) << reply.error().message;
  ASSERT_EQ(reply->closer_peers.size(), 1u);
  EXPECT_EQ(reply->closer_peers[0].id, d.id());
  EXPECT_TRUE(lists(reply->closer_peers[0].addrs, d.listen_address()));
  // A peer A knows nothing of: no answer peers (no addresses to give).
  const LocalIdentity stranger = make_identity();
  auto unknown =
      exchange(*stream, request_of(kad::MessageType::kFindNode, stranger.peer_id.bytes()));
  ASSERT_TRUE(unknown) << unknown.error().message;
  EXPECT_TRUE(unknown->closer_peers.empty());
}

TEST_F(DhtServerTest, StreamsOutliveADestroyedServerWithoutHarm) {
  TestPeer e{io, "test-agent/e"};
  auto other = std::make_unique<DhtServer>(e.host());
  other->start();
  connect_and_identify(b, e);
  auto stream = open_kad(b, e.id());
  ASSERT_NE(stream, nullptr);
  auto pong = exchange(*stream, request_of(kad::MessageType::kPing, {}));
  ASSERT_TRUE(pong) << pong.error().message;
  other.reset();
  // The open stream is dropped at its next request, new streams are refused.
  (void)send(*stream, request_of(kad::MessageType::kPing, {}));
  EXPECT_TRUE(closed_by_server(*stream));
  auto late = open_kad(b, e.id());
  ASSERT_NE(late, nullptr);
  (void)send(*late, request_of(kad::MessageType::kPing, {}));
  EXPECT_TRUE(closed_by_server(*late));
}

TEST_F(DhtServerTest, PutThenGetOfAValidPublicKeyRecord) {
  connect_and_identify(b, a);
  auto stream = open_kad(b, a.id());
  ASSERT_NE(stream, nullptr);
  const Bytes key = pk_key(b.id());
  const Bytes value = b.host().identity().key.public_key().protobuf();

  auto put = exchange(*stream, put_value(key, value));
  ASSERT_TRUE(put) << put.error().message;
  EXPECT_EQ(put->type, kad::MessageType::kPutValue);
  EXPECT_EQ(put->key, key);
  ASSERT_TRUE(put->record.has_value());
  EXPECT_EQ(put->record->key, key);
  EXPECT_EQ(put->record->value, value);
  EXPECT_FALSE(put->record->time_received.empty());
  EXPECT_EQ(server.records().size(), 1u);

  auto got = exchange(*stream, request_of(kad::MessageType::kGetValue, key));
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->type, kad::MessageType::kGetValue);
  EXPECT_EQ(got->key, key);
  ASSERT_TRUE(got->record.has_value());
  EXPECT_EQ(got->record->key, key);
  EXPECT_EQ(got->record->value, value);
  EXPECT_TRUE(kad::parse_rfc3339(got->record->time_received));

  // A key with no record: an answer without one.
  auto missing = exchange(*stream, request_of(kad::MessageType::kGetValue, pk_key(a.id())));
  ASSERT_TRUE(missing) << missing.error().message;
  EXPECT_FALSE(missing->record.has_value());
}

TEST_F(DhtServerTest, AnInvalidRecordResetsTheStreamAndTheServerGoesOn) {
  connect_and_identify(b, a);
  auto stream = open_kad(b, a.id());
  ASSERT_NE(stream, nullptr);
  // B's key name with A's public key: not the key of that peer ID.
  const Bytes wrong_value = a.host().identity().key.public_key().protobuf();
  ASSERT_TRUE(send(*stream, put_value(pk_key(b.id()), wrong_value)));
  EXPECT_TRUE(closed_by_server(*stream));
  EXPECT_EQ(server.records().size(), 0u);
  expect_serving_new_stream();
}

TEST_F(DhtServerTest, AMessageKeyThatDiffersFromTheRecordKeyIsRefused) {
  connect_and_identify(b, a);
  auto stream = open_kad(b, a.id());
  ASSERT_NE(stream, nullptr);
  kad::Message request = put_value(pk_key(b.id()), b.host().identity().key.public_key().protobuf());
  request.key = pk_key(a.id());
  ASSERT_TRUE(send(*stream, request));
  EXPECT_TRUE(closed_by_server(*stream));
  EXPECT_EQ(server.records().size(), 0u);
  expect_serving_new_stream();
}

TEST_F(DhtServerTest, AddProviderStoresOnlyTheSenderAndGetProvidersReturnsIt) {
  connect_and_identify(b, a);
  auto stream = open_kad(b, a.id());
  ASSERT_NE(stream, nullptr);
  const Bytes key = text_bytes("some-content-multihash");
  const LocalIdentity forged = make_identity();
  auto forged_address = Multiaddr::parse("/ip4/127.0.0.1/tcp/1");
  ASSERT_TRUE(forged_address);

  kad::Message add = request_of(kad::MessageType::kAddProvider, key);
  add.provider_peers.push_back(
      kad::Peer{b.id(), {b.listen_address()}, kad::ConnectionType::kConnected});
  add.provider_peers.push_back(
      kad::Peer{forged.peer_id, {*forged_address}, kad::ConnectionType::kConnected});
  // No answer to ADD_PROVIDER (as go): the next message on the stream answers GET_PROVIDERS.
  ASSERT_TRUE(send(*stream, add));
  auto providers = exchange(*stream, request_of(kad::MessageType::kGetProviders, key));
  ASSERT_TRUE(providers) << providers.error().message;
  EXPECT_EQ(providers->type, kad::MessageType::kGetProviders);
  EXPECT_EQ(providers->key, key);
  ASSERT_EQ(providers->provider_peers.size(), 1u);
  EXPECT_EQ(providers->provider_peers[0].id, b.id());
  EXPECT_EQ(providers->provider_peers[0].addrs, std::vector<Multiaddr>{b.listen_address()});
  EXPECT_EQ(find_peer(providers->provider_peers, forged.peer_id), nullptr);
  EXPECT_EQ(server.providers().size(), 1u);

  // A key nobody provides: no providers.
  auto none = exchange(*stream, request_of(kad::MessageType::kGetProviders, text_bytes("other")));
  ASSERT_TRUE(none) << none.error().message;
  EXPECT_TRUE(none->provider_peers.empty());
}

TEST_F(DhtServerTest, SeveralRequestsOnOneStreamThenEndOfStreamClosesIt) {
  connect_and_identify(b, a);
  auto stream = open_kad(b, a.id());
  ASSERT_NE(stream, nullptr);
  kad::Message ping = request_of(kad::MessageType::kPing, {});
  auto first = exchange(*stream, ping);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->type, kad::MessageType::kPing);
  auto second = exchange(*stream, request_of(kad::MessageType::kFindNode, a.id().bytes()));
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(second->type, kad::MessageType::kFindNode);
  EXPECT_EQ(server.active_streams(), 1u);

  auto closed = run_coroutine(
      io, [&]() -> asio::awaitable<Expected<void>> { co_return co_await stream->close_write(); });
  ASSERT_TRUE(closed && *closed);
  EXPECT_TRUE(closed_by_server(*stream));
  EXPECT_TRUE(run_until(io, [&] { return server.active_streams() == 0; }));
}

TEST_F(DhtServerTest, GarbageClosesTheStream) {
  connect_and_identify(b, a);
  auto stream = open_kad(b, a.id());
  ASSERT_NE(stream, nullptr);
  // A 5-byte message that is not protobuf (a field tag with wire type 7).
  ASSERT_TRUE(send_raw(*stream, Bytes{0x05, 0xff, 0xff, 0xff, 0xff, 0xff}));
  EXPECT_TRUE(closed_by_server(*stream));
  expect_serving_new_stream();
}

TEST_F(DhtServerTest, AnUnknownMessageTypeClosesTheStream) {
  connect_and_identify(b, a);
  auto stream = open_kad(b, a.id());
  ASSERT_NE(stream, nullptr);
  // type = 9 (field 1, varint).
  ASSERT_TRUE(send_raw(*stream, Bytes{0x02, 0x08, 0x09}));
  EXPECT_TRUE(closed_by_server(*stream));
  expect_serving_new_stream();
}

TEST_F(DhtServerTest, AnOversizeLengthClosesTheStream) {
  connect_and_identify(b, a);
  auto stream = open_kad(b, a.id());
  ASSERT_NE(stream, nullptr);
  Bytes prefix;
  append_varint(prefix, kad::kMaxMessageSize + 1);
  ASSERT_TRUE(send_raw(*stream, prefix));
  EXPECT_TRUE(closed_by_server(*stream));
  expect_serving_new_stream();
}

TEST_F(DhtServerTest, TooManyStreamsFromOnePeerAreReset) {
  connect_and_identify(b, a);
  std::vector<std::shared_ptr<Stream>> streams;
  for (std::size_t i = 0; i < kMaxDhtStreamsPerPeer; ++i) {
    auto stream = open_kad(b, a.id());
    ASSERT_NE(stream, nullptr);
    auto pong = exchange(*stream, request_of(kad::MessageType::kPing, {}));
    ASSERT_TRUE(pong) << pong.error().message;
    streams.push_back(std::move(stream));
  }
  EXPECT_EQ(server.active_streams(), kMaxDhtStreamsPerPeer);
  auto extra = open_kad(b, a.id());
  ASSERT_NE(extra, nullptr);
  // The reset may arrive before the request goes out: the write may fail, the read must.
  (void)send(*extra, request_of(kad::MessageType::kPing, {}));
  EXPECT_TRUE(closed_by_server(*extra));
  // Once one ends, another is served.
  streams.front()->abort();
  ASSERT_TRUE(run_until(io, [&] { return server.active_streams() < kMaxDhtStreamsPerPeer; }));
  expect_serving_new_stream();
}

TEST_F(DhtServerTest, HandleRequestAnswersPingAndRefusesAKeylessGetValue) {
  kad::Message ping = request_of(kad::MessageType::kPing, {});
  auto pong = server.handle_request(b.id(), ping);
  ASSERT_TRUE(pong && pong->has_value());
  EXPECT_EQ(**pong, ping);
  EXPECT_FALSE(server.handle_request(b.id(), request_of(kad::MessageType::kGetValue, {})));
  EXPECT_FALSE(server.handle_request(b.id(), request_of(kad::MessageType::kFindNode, {})));
  EXPECT_FALSE(server.handle_request(b.id(), request_of(kad::MessageType::kPutValue, {})));
  EXPECT_FALSE(server.handle_request(b.id(), request_of(kad::MessageType::kGetProviders, {})));
  EXPECT_FALSE(server.handle_request(
      b.id(), request_of(kad::MessageType::kGetProviders, Bytes(kMaxDhtProviderKeySize + 1, 1))));
}

}  // namespace
}  // namespace an::p2p::net::test
