// The p2pd control protocol server against in-process hosts on 127.0.0.1, driven by a raw
// control client written here (varint-delimited protobuf over the control socket): identify,
// connect / list peers / disconnect, stream handler and stream open piped both ways, DHT
// values and closest peers, connection manager tags and trim, pubsub topics, peers, publish and
// subscribe streams, refused and malformed requests.
// Everything runs on the test thread's io_context; every wait is bounded.
#include "node/p2pd_server.h"

#include <gtest/gtest.h>

#include <asio.hpp>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "p2p/crypto/keys.h"
#include "p2p/multiformats/varint.h"
#include "p2p/pubsub/io/pubsub.h"
#include "p2pd.pb.h"
#include "support/temp_dir.h"
#include "unit/p2p/net/net_test_support.h"

namespace an::node {
namespace {

using namespace std::chrono_literals;
namespace pb = ::p2pd::pb;
using p2p::Bytes;
using p2p::net::test::run_coroutine;
using p2p::net::test::run_pending;
using p2p::net::test::run_until;
using p2p::net::test::TestPeer;
using UnixSocket = asio::local::stream_protocol::socket;

std::string as_string(const Bytes& bytes) {
  return std::string(bytes.begin(), bytes.end());
}

// A control connection: writes and reads varint-delimited messages, then raw bytes.
class ControlClient {
 public:
  explicit ControlClient(UnixSocket socket) : socket_(std::move(socket)) {}

  asio::awaitable<bool> send_raw(Bytes bytes) {
    auto [ec, written] =
        co_await asio::async_write(socket_, asio::buffer(bytes), p2p::net::use_tuple);
    (void)written;
    co_return !ec;
  }
  asio::awaitable<bool> send(const google::protobuf::MessageLite& message) {
    std::string body = message.SerializeAsString();
    Bytes framed = p2p::encode_varint(body.size());
    framed.insert(framed.end(), body.begin(), body.end());
    co_return co_await send_raw(std::move(framed));
  }
  // The next message's bytes; nullopt on EOF or error.
  asio::awaitable<std::optional<std::string>> receive() {
    std::uint64_t length = 0;
    int shift = 0;
    for (;;) {
      std::uint8_t byte = 0;
      auto [ec, count] =
          co_await asio::async_read(socket_, asio::buffer(&byte, 1), p2p::net::use_tuple);
      if (ec || count != 1) co_return std::nullopt;
      length |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
      shift += 7;
      if ((byte & 0x80) == 0) break;
    }
    std::string body(length, '\0');
    if (length > 0) {
      auto [ec, count] =
          co_await asio::async_read(socket_, asio::buffer(body), p2p::net::use_tuple);
      if (ec || count != length) co_return std::nullopt;
    }
    co_return body;
  }
  asio::awaitable<std::optional<pb::Response>> request(pb::Request request) {
    if (!co_await send(request)) co_return std::nullopt;
    auto body = co_await receive();
    if (!body) co_return std::nullopt;
    pb::Response response;
    if (!response.ParseFromString(*body)) co_return std::nullopt;
    co_return response;
  }
  // Everything until EOF.
  asio::awaitable<std::string> read_to_end() {
    std::string data;
    char buffer[4096];
    for (;;) {
      auto [ec, count] =
          co_await socket_.async_read_some(asio::buffer(buffer), p2p::net::use_tuple);
      data.append(buffer, count);
      if (ec) co_return data;
    }
  }
  void close_write() {
    std::error_code ignored;
    socket_.shutdown(asio::socket_base::shutdown_send, ignored);
  }
  UnixSocket& socket() { return socket_; }

 private:
  UnixSocket socket_;
};

class P2pdServerTest : public ::testing::Test {
 protected:
  struct Node {
    // Outlives the host, whose connection listener uses it.
    std::unique_ptr<p2p::connmgr::ConnectionManager> connection_manager;
    std::unique_ptr<TestPeer> peer;
    std::unique_ptr<p2p::kad::Dht> dht;
    std::unique_ptr<p2p::pubsub::PubSub> pubsub;  // after the host, before the server
    std::unique_ptr<P2pdServer> server;
    std::string socket_path;
  };

  void add_node(bool with_pubsub = false) {
    auto node = std::make_unique<Node>();
    node->peer = std::make_unique<TestPeer>(io, "p2pd-test/" + std::to_string(nodes.size()));
    if (with_pubsub) {
      node->pubsub = std::make_unique<p2p::pubsub::PubSub>(
          node->peer->host(), node->peer->host().identity().key, p2p::pubsub::PubSubConfig{});
      node->pubsub->start();
    }
    p2p::kad::DhtConfig dht_config;
    dht_config.mode = p2p::kad::DhtMode::kServer;
    node->dht = std::make_unique<p2p::kad::Dht>(node->peer->host(), io.get_executor(), dht_config);
    node->dht->start();
    p2p::connmgr::Limits limits;
    limits.low_water = 0;
    limits.high_water = 0;
    limits.grace_period = 0ms;
    limits.silence_period = 0ms;
    node->connection_manager = std::make_unique<p2p::connmgr::ConnectionManager>(limits);
    auto* manager = node->connection_manager.get();
    node->peer->host().on_connection([manager](const p2p::net::ConnectionEvent& event) {
      if (event.connected) {
        manager->connected(event.peer, p2p::connmgr::PeerDirection::kOutbound,
                           std::chrono::steady_clock::now());
      } else {
        manager->disconnected(event.peer);
      }
    });
    node->socket_path = (dir.path() / ("p2pd-" + std::to_string(nodes.size()) + ".sock")).string();
    P2pdServerConfig config;
    config.listen = "/unix" + node->socket_path;
    config.dht = node->dht.get();
    config.connection_manager = manager;
    config.pubsub = node->pubsub.get();
    auto server = P2pdServer::start(node->peer->host(), config);
    ASSERT_TRUE(server) << server.error().message;
    node->server = std::move(*server);
    nodes.push_back(std::move(node));
  }

  std::unique_ptr<ControlClient> client_of(std::size_t index) {
    UnixSocket socket(io);
    std::error_code ec;
    socket.connect(asio::local::stream_protocol::endpoint(nodes[index]->socket_path), ec);
    EXPECT_FALSE(ec) << ec.message();
    return std::make_unique<ControlClient>(std::move(socket));
  }

  std::optional<pb::Response> call(std::size_t index, const pb::Request& request) {
    auto client = client_of(index);
    auto response = run_coroutine(io, [&]() -> asio::awaitable<std::optional<pb::Response>> {
      co_return co_await client->request(request);
    });
    if (!response) return std::nullopt;
    return *response;
  }

  pb::Request connect_request(std::size_t from, std::size_t to) {
    pb::Request request;
    request.set_type(pb::Request::CONNECT);
    request.mutable_connect()->set_peer(as_string(nodes[to]->peer->id().bytes()));
    request.mutable_connect()->add_addrs(as_string(nodes[to]->peer->listen_address().to_bytes()));
    (void)from;
    return request;
  }

  void TearDown() override {
    for (auto& node : nodes) {
      node->server->stop();
      if (node->pubsub) node->pubsub->stop();
      node->dht->stop();
    }
    run_pending(io);
  }

  test::TempDir dir;
  asio::io_context io;
  std::vector<std::unique_ptr<Node>> nodes;
};

TEST_F(P2pdServerTest, IdentifyAnswersThePeerIdAndAddresses) {
  ASSERT_NO_FATAL_FAILURE(add_node());
  EXPECT_EQ(nodes[0]->server->listen_address(), "/unix" + nodes[0]->socket_path);
  auto mode = std::filesystem::status(nodes[0]->socket_path).permissions();
  EXPECT_EQ(mode & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  pb::Request request;
  request.set_type(pb::Request::IDENTIFY);
  auto response = call(0, request);
  ASSERT_TRUE(response);
  ASSERT_EQ(response->type(), pb::Response::OK);
  EXPECT_EQ(response->identify().id(), as_string(nodes[0]->peer->id().bytes()));
  ASSERT_EQ(response->identify().addrs_size(), 1);
  EXPECT_EQ(response->identify().addrs(0), as_string(nodes[0]->peer->listen_address().to_bytes()));
}

TEST_F(P2pdServerTest, ConnectListPeersAndDisconnect) {
  ASSERT_NO_FATAL_FAILURE(add_node());
  ASSERT_NO_FATAL_FAILURE(add_node());
  auto connected = call(0, connect_request(0, 1));
  ASSERT_TRUE(connected);
  ASSERT_EQ(connected->type(), pb::Response::OK) << connected->error().msg();
  EXPECT_TRUE(nodes[0]->peer->host().connection_to(nodes[1]->peer->id()));

  pb::Request list;
  list.set_type(pb::Request::LIST_PEERS);
  auto peers = call(0, list);
  ASSERT_TRUE(peers);
  ASSERT_EQ(peers->peers_size(), 1);
  EXPECT_EQ(peers->peers(0).id(), as_string(nodes[1]->peer->id().bytes()));
  ASSERT_EQ(peers->peers(0).addrs_size(), 1);

  pb::Request disconnect;
  disconnect.set_type(pb::Request::DISCONNECT);
  disconnect.mutable_disconnect()->set_peer(as_string(nodes[1]->peer->id().bytes()));
  auto disconnected = call(0, disconnect);
  ASSERT_TRUE(disconnected);
  EXPECT_EQ(disconnected->type(), pb::Response::OK);
  ASSERT_TRUE(
      run_until(io, [&] { return !nodes[0]->peer->host().connection_to(nodes[1]->peer->id()); }));
  auto after = call(0, list);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->peers_size(), 0);
}

TEST_F(P2pdServerTest, ConnectToAnUnreachableAddressIsAnError) {
  ASSERT_NO_FATAL_FAILURE(add_node());
  ASSERT_NO_FATAL_FAILURE(add_node());
  auto request = connect_request(0, 1);
  // A port nobody listens on (the peer's own port + its listener closed is racy; port 1 is not).
  request.mutable_connect()->set_addrs(
      0, as_string(p2p::Multiaddr::parse("/ip4/127.0.0.1/tcp/1")->to_bytes()));
  request.mutable_connect()->set_timeout(5);
  auto response = call(0, request);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->type(), pb::Response::ERROR);
  EXPECT_FALSE(response->error().msg().empty());
}

TEST_F(P2pdServerTest, StreamHandlerAndStreamOpenPipeBothWays) {
  ASSERT_NO_FATAL_FAILURE(add_node());
  ASSERT_NO_FATAL_FAILURE(add_node());
  const std::string protocol = "/p2pd-test/echo/1.0.0";
  // Node 1's client handles the protocol on a unix socket of its own: it echoes, upper-cased.
  const auto handler_path = (dir.path() / "handler.sock").string();
  asio::local::stream_protocol::acceptor acceptor(
      io, asio::local::stream_protocol::endpoint(handler_path));
  std::optional<pb::StreamInfo> inbound_info;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto [ec, socket] = co_await acceptor.async_accept(p2p::net::use_tuple);
        if (ec) co_return;
        ControlClient handler(std::move(socket));
        auto info_body = co_await handler.receive();
        if (!info_body) co_return;
        pb::StreamInfo info;
        if (!info.ParseFromString(*info_body)) co_return;
        inbound_info = info;
        auto data = co_await handler.read_to_end();
        for (auto& c : data)
          c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        co_await handler.send_raw(Bytes(data.begin(), data.end()));
        handler.close_write();
      },
      p2p::net::report_exception);

  // The handler address as a binary /unix multiaddr: code 400, then the length-prefixed path.
  Bytes handler_address = p2p::encode_varint(400);
  p2p::append_varint(handler_address, handler_path.size());
  handler_address.insert(handler_address.end(), handler_path.begin(), handler_path.end());
  pb::Request register_handler;
  register_handler.set_type(pb::Request::STREAM_HANDLER);
  register_handler.mutable_streamhandler()->set_addr(as_string(handler_address));
  register_handler.mutable_streamhandler()->add_proto(protocol);
  auto registered = call(1, register_handler);
  ASSERT_TRUE(registered);
  ASSERT_EQ(registered->type(), pb::Response::OK) << registered->error().msg();

  auto connected = call(0, connect_request(0, 1));
  ASSERT_TRUE(connected && connected->type() == pb::Response::OK);

  auto opener = client_of(0);
  pb::Request open;
  open.set_type(pb::Request::STREAM_OPEN);
  open.mutable_streamopen()->set_peer(as_string(nodes[1]->peer->id().bytes()));
  open.mutable_streamopen()->add_proto("/not-served/1.0.0");
  open.mutable_streamopen()->add_proto(protocol);
  auto opened = run_coroutine(io, [&]() -> asio::awaitable<std::optional<pb::Response>> {
    co_return co_await opener->request(open);
  });
  ASSERT_TRUE(opened && *opened);
  const auto& response = **opened;
  ASSERT_EQ(response.type(), pb::Response::OK) << response.error().msg();
  EXPECT_EQ(response.streaminfo().proto(), protocol);
  EXPECT_EQ(response.streaminfo().peer(), as_string(nodes[1]->peer->id().bytes()));

  // The control connection is now the stream: what goes in comes back upper-cased after the
  // half-close crossed both pipes.
  auto echoed = run_coroutine(io, [&]() -> asio::awaitable<std::string> {
    const std::string text = "hello through two daemons";
    co_await opener->send_raw(Bytes(text.begin(), text.end()));
    opener->close_write();
    co_return co_await opener->read_to_end();
  });
  ASSERT_TRUE(echoed);
  EXPECT_EQ(*echoed, "HELLO THROUGH TWO DAEMONS");
  ASSERT_TRUE(inbound_info);
  EXPECT_EQ(inbound_info->peer(), as_string(nodes[0]->peer->id().bytes()));
  EXPECT_EQ(inbound_info->proto(), protocol);
}

TEST_F(P2pdServerTest, StreamHandlerOnATcpAddressGetsInboundStreams) {
  ASSERT_NO_FATAL_FAILURE(add_node());
  ASSERT_NO_FATAL_FAILURE(add_node());
  const std::string protocol = "/p2pd-test/tcp-handler/1.0.0";
  asio::ip::tcp::acceptor acceptor(io,
                                   asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto port = acceptor.local_endpoint().port();
  std::string received;
  bool handled = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto [ec, socket] = co_await acceptor.async_accept(p2p::net::use_tuple);
        if (ec) co_return;
        // Read the varint-delimited StreamInfo, then the stream's bytes until EOF.
        std::string data;
        char buffer[1024];
        for (;;) {
          auto [read_error, count] =
              co_await socket.async_read_some(asio::buffer(buffer), p2p::net::use_tuple);
          data.append(buffer, count);
          if (read_error) break;
        }
        received = data;
        handled = true;
      },
      p2p::net::report_exception);

  auto handler_address = p2p::Multiaddr::parse("/ip4/127.0.0.1/tcp/" + std::to_string(port));
  pb::Request register_handler;
  register_handler.set_type(pb::Request::STREAM_HANDLER);
  register_handler.mutable_streamhandler()->set_addr(as_string(handler_address->to_bytes()));
  register_handler.mutable_streamhandler()->add_proto(protocol);
  auto registered = call(1, register_handler);
  ASSERT_TRUE(registered);
  ASSERT_EQ(registered->type(), pb::Response::OK) << registered->error().msg();

  // Node 0's host opens the stream directly and writes, then half-closes.
  auto connected = call(0, connect_request(0, 1));
  ASSERT_TRUE(connected && connected->type() == pb::Response::OK);
  auto sent = run_coroutine(io, [&]() -> asio::awaitable<bool> {
    std::vector<std::string> protocols{protocol};
    auto stream = co_await nodes[0]->peer->host().new_stream(nodes[1]->peer->id(), protocols);
    if (!stream) co_return false;
    const std::string text = "over tcp";
    auto written = co_await (*stream)->write_all(
        p2p::ByteView(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
    if (!written) co_return false;
    co_return (co_await (*stream)->close_write()).has_value();
  });
  ASSERT_TRUE(sent && *sent);
  ASSERT_TRUE(run_until(io, [&] { return handled; }));
  // StreamInfo first: its length prefix, then the message; the payload follows it.
  ASSERT_FALSE(received.empty());
  const auto length = static_cast<std::size_t>(static_cast<unsigned char>(received[0]));
  ASSERT_GT(received.size(), 1 + length);
  pb::StreamInfo info;
  ASSERT_TRUE(info.ParseFromString(received.substr(1, length)));
  EXPECT_EQ(info.proto(), protocol);
  EXPECT_EQ(info.peer(), as_string(nodes[0]->peer->id().bytes()));
  EXPECT_EQ(received.substr(1 + length), "over tcp");
}

TEST_F(P2pdServerTest, StreamOpenOfAProtocolNobodyServesIsAnError) {
  ASSERT_NO_FATAL_FAILURE(add_node());
  ASSERT_NO_FATAL_FAILURE(add_node());
  auto connected = call(0, connect_request(0, 1));
  ASSERT_TRUE(connected && connected->type() == pb::Response::OK);
  pb::Request open;
  open.set_type(pb::Request::STREAM_OPEN);
  open.mutable_streamopen()->set_peer(as_string(nodes[1]->peer->id().bytes()));
  open.mutable_streamopen()->add_proto("/not-served/1.0.0");
  auto response = call(0, open);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->type(), pb::Response::ERROR);
}

TEST_F(P2pdServerTest, DhtPutGetValueAndClosestPeers) {
  ASSERT_NO_FATAL_FAILURE(add_node());
  ASSERT_NO_FATAL_FAILURE(add_node());
  auto connected = call(0, connect_request(0, 1));
  ASSERT_TRUE(connected && connected->type() == pb::Response::OK);
  ASSERT_TRUE(run_until(io, [&] { return nodes[0]->dht->routing_table_size() >= 1; }));

  // A /pk/ record: "/pk/" + the peer ID multihash → the protobuf public key.
  const auto& self = nodes[0]->peer->id();
  std::string key = "/pk/" + as_string(self.bytes());
  std::string value = as_string(p2p::encode_public_key(*self.ed25519_public_key()));
  pb::Request put;
  put.set_type(pb::Request::DHT);
  put.mutable_dht()->set_type(pb::DHTRequest::PUT_VALUE);
  put.mutable_dht()->set_key(key);
  put.mutable_dht()->set_value(value);
  put.mutable_dht()->set_timeout(10);
  auto stored = call(0, put);
  ASSERT_TRUE(stored);
  ASSERT_EQ(stored->type(), pb::Response::OK) << stored->error().msg();

  pb::Request get;
  get.set_type(pb::Request::DHT);
  get.mutable_dht()->set_type(pb::DHTRequest::GET_VALUE);
  get.mutable_dht()->set_key(key);
  get.mutable_dht()->set_timeout(10);
  auto got = call(1, get);
  ASSERT_TRUE(got);
  ASSERT_EQ(got->type(), pb::Response::OK) << got->error().msg();
  EXPECT_EQ(got->dht().type(), pb::DHTResponse::VALUE);
  EXPECT_EQ(got->dht().value(), value);

  // GET_CLOSEST_PEERS streams: a Response with BEGIN, DHTResponse VALUEs, END.
  auto client = client_of(1);
  pb::Request closest;
  closest.set_type(pb::Request::DHT);
  closest.mutable_dht()->set_type(pb::DHTRequest::GET_CLOSEST_PEERS);
  closest.mutable_dht()->set_key("some key");
  closest.mutable_dht()->set_timeout(10);
  auto streamed = run_coroutine(io, [&]() -> asio::awaitable<std::vector<std::string>> {
    std::vector<std::string> out;
    auto begin = co_await client->request(closest);
    if (!begin || begin->type() != pb::Response::OK ||
        begin->dht().type() != pb::DHTResponse::BEGIN) {
      co_return out;
    }
    for (;;) {
      auto body = co_await client->receive();
      pb::DHTResponse item;
      if (!body || !item.ParseFromString(*body)) co_return std::vector<std::string>{"bad"};
      if (item.type() == pb::DHTResponse::END) co_return out;
      out.push_back(item.value());
    }
  });
  ASSERT_TRUE(streamed);
  ASSERT_EQ(streamed->size(), 1u);
  EXPECT_EQ((*streamed)[0], as_string(self.bytes()));

  // FIND_PEER answers one PeerInfo with the peer's addresses.
  pb::Request find;
  find.set_type(pb::Request::DHT);
  find.mutable_dht()->set_type(pb::DHTRequest::FIND_PEER);
  find.mutable_dht()->set_peer(as_string(self.bytes()));
  find.mutable_dht()->set_timeout(10);
  auto found = call(1, find);
  ASSERT_TRUE(found);
  ASSERT_EQ(found->type(), pb::Response::OK) << found->error().msg();
  EXPECT_EQ(found->dht().type(), pb::DHTResponse::VALUE);
  EXPECT_EQ(found->dht().peer().id(), as_string(self.bytes()));
  EXPECT_GE(found->dht().peer().addrs_size(), 1);

  // PROVIDE with bytes that are no CID is refused before the DHT is asked.
  pb::Request provide;
  provide.set_type(pb::Request::DHT);
  provide.mutable_dht()->set_type(pb::DHTRequest::PROVIDE);
  provide.mutable_dht()->set_cid("not a cid");
  auto not_provided = call(1, provide);
  ASSERT_TRUE(not_provided);
  EXPECT_EQ(not_provided->type(), pb::Response::ERROR);
  EXPECT_NE(not_provided->error().msg().find("CID"), std::string::npos);

  // An Ed25519 peer ID's public key comes from the ID itself.
  pb::Request public_key;
  public_key.set_type(pb::Request::DHT);
  public_key.mutable_dht()->set_type(pb::DHTRequest::GET_PUBLIC_KEY);
  public_key.mutable_dht()->set_peer(as_string(self.bytes()));
  auto key_response = call(1, public_key);
  ASSERT_TRUE(key_response);
  ASSERT_EQ(key_response->type(), pb::Response::OK) << key_response->error().msg();
  EXPECT_EQ(key_response->dht().type(), pb::DHTResponse::VALUE);
  EXPECT_EQ(key_response->dht().value(), value);

  // FIND_PEERS_CONNECTED_TO_PEER is refused, not faked.
  pb::Request unsupported;
  unsupported.set_type(pb::Request::DHT);
  unsupported.mutable_dht()->set_type(pb::DHTRequest::FIND_PEERS_CONNECTED_TO_PEER);
  unsupported.mutable_dht()->set_peer(as_string(self.bytes()));
  auto refused = call(1, unsupported);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->type(), pb::Response::ERROR);
  EXPECT_NE(refused->error().msg().find("not supported yet"), std::string::npos);
}

TEST_F(P2pdServerTest, ConnManagerTagUntagAndTrim) {
  ASSERT_NO_FATAL_FAILURE(add_node());
  ASSERT_NO_FATAL_FAILURE(add_node());
  auto connected = call(0, connect_request(0, 1));
  ASSERT_TRUE(connected && connected->type() == pb::Response::OK);
  const auto& other = nodes[1]->peer->id();

  pb::Request tag;
  tag.set_type(pb::Request::CONNMANAGER);
  tag.mutable_connmanager()->set_type(pb::ConnManagerRequest::TAG_PEER);
  tag.mutable_connmanager()->set_peer(as_string(other.bytes()));
  tag.mutable_connmanager()->set_tag("important");
  tag.mutable_connmanager()->set_weight(42);
  auto tagged = call(0, tag);
  ASSERT_TRUE(tagged);
  ASSERT_EQ(tagged->type(), pb::Response::OK) << tagged->error().msg();
  EXPECT_EQ(nodes[0]->connection_manager->value_of(other), 42);

  pb::Request untag = tag;
  untag.mutable_connmanager()->set_type(pb::ConnManagerRequest::UNTAG_PEER);
  auto untagged = call(0, untag);
  ASSERT_TRUE(untagged);
  ASSERT_EQ(untagged->type(), pb::Response::OK);
  EXPECT_EQ(nodes[0]->connection_manager->value_of(other), 0);

  // High water 0: the trim closes the connection.
  pb::Request trim;
  trim.set_type(pb::Request::CONNMANAGER);
  trim.mutable_connmanager()->set_type(pb::ConnManagerRequest::TRIM);
  auto trimmed = call(0, trim);
  ASSERT_TRUE(trimmed);
  ASSERT_EQ(trimmed->type(), pb::Response::OK);
  EXPECT_TRUE(run_until(io, [&] { return !nodes[0]->peer->host().connection_to(other); }));
}

TEST_F(P2pdServerTest, PubsubWithoutTheServiceAndPeerstoreAreRefused) {
  ASSERT_NO_FATAL_FAILURE(add_node());
  pb::Request pubsub;
  pubsub.set_type(pb::Request::PUBSUB);
  pubsub.mutable_pubsub()->set_type(pb::PSRequest::GET_TOPICS);
  auto refused = call(0, pubsub);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->type(), pb::Response::ERROR);
  EXPECT_EQ(refused->error().msg(), "PubSub not enabled");  // go-libp2p-daemon's text

  pb::Request peerstore;
  peerstore.set_type(pb::Request::PEERSTORE);
  peerstore.mutable_peerstore()->set_type(pb::PeerstoreRequest::GET_PROTOCOLS);
  auto also_refused = call(0, peerstore);
  ASSERT_TRUE(also_refused);
  EXPECT_EQ(also_refused->type(), pb::Response::ERROR);
  EXPECT_NE(also_refused->error().msg().find("not supported yet"), std::string::npos);
}

pb::Request pubsub_request(pb::PSRequest::Type type, std::optional<std::string> topic,
                           std::string data = {}) {
  pb::Request request;
  request.set_type(pb::Request::PUBSUB);
  request.mutable_pubsub()->set_type(type);
  if (topic) request.mutable_pubsub()->set_topic(*topic);
  if (!data.empty()) request.mutable_pubsub()->set_data(data);
  return request;
}

TEST_F(P2pdServerTest, PubsubSubscribeStreamsPublishedMessagesAndListsTopicsAndPeers) {
  ASSERT_NO_FATAL_FAILURE(add_node(true));
  ASSERT_NO_FATAL_FAILURE(add_node(true));
  const std::string topic = "p2pd-topic";
  auto connected = call(0, connect_request(0, 1));
  ASSERT_TRUE(connected);
  ASSERT_EQ(connected->type(), pb::Response::OK) << connected->error().msg();

  // SUBSCRIBE answers OK, then the connection carries PSMessages.
  auto subscriber = client_of(1);
  auto subscribed = run_coroutine(io, [&]() -> asio::awaitable<std::optional<pb::Response>> {
    co_return co_await subscriber->request(pubsub_request(pb::PSRequest::SUBSCRIBE, topic));
  });
  ASSERT_TRUE(subscribed && *subscribed);
  ASSERT_EQ((*subscribed)->type(), pb::Response::OK) << (*subscribed)->error().msg();

  auto topics = call(1, pubsub_request(pb::PSRequest::GET_TOPICS, std::nullopt));
  ASSERT_TRUE(topics);
  ASSERT_EQ(topics->type(), pb::Response::OK);
  ASSERT_EQ(topics->pubsub().topics_size(), 1);
  EXPECT_EQ(topics->pubsub().topics(0), topic);

  const auto subscriber_id = as_string(nodes[1]->peer->id().bytes());
  ASSERT_TRUE(run_until(io, [&] { return !nodes[0]->pubsub->topic_peers(topic).empty(); }));
  auto peers = call(0, pubsub_request(pb::PSRequest::LIST_PEERS, topic));
  ASSERT_TRUE(peers);
  ASSERT_EQ(peers->type(), pb::Response::OK);
  ASSERT_EQ(peers->pubsub().peerids_size(), 1);
  EXPECT_EQ(peers->pubsub().peerids(0), subscriber_id);
  auto all_peers = call(0, pubsub_request(pb::PSRequest::LIST_PEERS, ""));
  ASSERT_TRUE(all_peers);
  EXPECT_EQ(all_peers->pubsub().peerids_size(), 1);

  auto published =
      call(0, pubsub_request(pb::PSRequest::PUBLISH, topic, std::string("hello through p2pd")));
  ASSERT_TRUE(published);
  ASSERT_EQ(published->type(), pb::Response::OK) << published->error().msg();
  auto frame = run_coroutine(io, [&]() -> asio::awaitable<std::optional<std::string>> {
    co_return co_await subscriber->receive();
  });
  ASSERT_TRUE(frame && *frame);
  pb::PSMessage message;
  ASSERT_TRUE(message.ParseFromString(**frame));
  EXPECT_EQ(message.data(), "hello through p2pd");
  EXPECT_EQ(message.from(), as_string(nodes[0]->peer->id().bytes()));
  EXPECT_EQ(message.seqno().size(), 8u);
  ASSERT_EQ(message.topicids_size(), 1);
  EXPECT_EQ(message.topicids(0), topic);
  // The author's signature is passed on, and it checks out over the fields passed with it (an
  // Ed25519 key is inlined in the ID, so no key is sent).
  EXPECT_TRUE(message.key().empty());
  p2p::pubsub::Message rebuilt;
  rebuilt.from = Bytes(message.from().begin(), message.from().end());
  rebuilt.data = Bytes(message.data().begin(), message.data().end());
  rebuilt.seqno = Bytes(message.seqno().begin(), message.seqno().end());
  rebuilt.topic = message.topicids(0);
  rebuilt.signature = Bytes(message.signature().begin(), message.signature().end());
  auto author = p2p::pubsub::verify_message(rebuilt);
  ASSERT_TRUE(author) << author.error().message;
  EXPECT_EQ(*author, nodes[0]->peer->id());

  // Closing the connection ends the subscription: the node leaves the topic.
  subscriber->close_write();
  EXPECT_TRUE(run_until(io, [&] { return nodes[1]->pubsub->topics().empty(); }));
}

TEST_F(P2pdServerTest, PubsubRequestsWithoutTopicOrOfUnknownTypeAreErrors) {
  ASSERT_NO_FATAL_FAILURE(add_node(true));
  for (auto type : {pb::PSRequest::LIST_PEERS, pb::PSRequest::PUBLISH, pb::PSRequest::SUBSCRIBE}) {
    auto refused = call(0, pubsub_request(type, std::nullopt, "data"));
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->type(), pb::Response::ERROR);
    EXPECT_EQ(refused->error().msg(), "Malformed request; missing topic parameter");
  }
  pb::Request missing;
  missing.set_type(pb::Request::PUBSUB);
  auto malformed = call(0, missing);
  ASSERT_TRUE(malformed);
  EXPECT_EQ(malformed->error().msg(), "Malformed request; missing parameters");
}

TEST_F(P2pdServerTest, UnknownTypesGarbageAndOversizedRequestsGetAnErrorNotACrash) {
  ASSERT_NO_FATAL_FAILURE(add_node());
  // Field 1 (type) = 77: a type this protocol version does not know.
  auto client = client_of(0);
  const Bytes unknown_type{0x02, 0x08, 77};
  auto unknown = run_coroutine(io, [&]() -> asio::awaitable<std::optional<std::string>> {
    Bytes request = unknown_type;
    co_await client->send_raw(std::move(request));
    co_return co_await client->receive();
  });
  ASSERT_TRUE(unknown && *unknown);
  pb::Response unknown_response;
  ASSERT_TRUE(unknown_response.ParseFromString(**unknown));
  EXPECT_EQ(unknown_response.type(), pb::Response::ERROR);

  // Not a protobuf message at all.
  auto garbage_client = client_of(0);
  const Bytes garbage_bytes{0x04, 0xff, 0xff, 0xff, 0xff};
  auto garbage = run_coroutine(io, [&]() -> asio::awaitable<std::optional<std::string>> {
    Bytes request = garbage_bytes;
    co_await garbage_client->send_raw(std::move(request));
    co_return co_await garbage_client->receive();
  });
  ASSERT_TRUE(garbage && *garbage);
  pb::Response garbage_response;
  ASSERT_TRUE(garbage_response.ParseFromString(**garbage));
  EXPECT_EQ(garbage_response.type(), pb::Response::ERROR);

  // A length prefix of 1 GiB: refused before anything is allocated, then closed.
  auto large_client = client_of(0);
  auto large = run_coroutine(
      io,
      [&]() -> asio::awaitable<std::pair<std::optional<std::string>, std::optional<std::string>>> {
        co_await large_client->send_raw(p2p::encode_varint(std::uint64_t{1} << 30));
        auto first = co_await large_client->receive();
        auto second = co_await large_client->receive();
        co_return std::make_pair(first, second);
      });
  ASSERT_TRUE(large);
  ASSERT_TRUE(large->first);
  pb::Response large_response;
  ASSERT_TRUE(large_response.ParseFromString(*large->first));
  EXPECT_EQ(large_response.type(), pb::Response::ERROR);
  EXPECT_FALSE(large->second) << "the connection should be closed";

  // The server still serves.
  pb::Request identify;
  identify.set_type(pb::Request::IDENTIFY);
  auto response = call(0, identify);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->type(), pb::Response::OK);
}

TEST_F(P2pdServerTest, TcpListenerAndStaleSocketFile) {
  ASSERT_NO_FATAL_FAILURE(add_node());
  P2pdServerConfig config;
  config.listen = "/ip4/127.0.0.1/tcp/0";
  auto tcp_server = P2pdServer::start(nodes[0]->peer->host(), config);
  ASSERT_TRUE(tcp_server) << tcp_server.error().message;
  EXPECT_EQ((*tcp_server)->listen_address().rfind("/ip4/127.0.0.1/tcp/", 0), 0u);
  EXPECT_NE((*tcp_server)->listen_address(), "/ip4/127.0.0.1/tcp/0");

  // A socket in use is refused; once its server stopped (file removed) or left a stale file, a
  // new server takes the path.
  P2pdServerConfig same_path;
  same_path.listen = "/unix" + nodes[0]->socket_path;
  EXPECT_FALSE(P2pdServer::start(nodes[0]->peer->host(), same_path));
  nodes[0]->server->stop();
  EXPECT_FALSE(std::filesystem::exists(nodes[0]->socket_path));
  {
    // A stale socket file: bound, then its listener closed without removing the file.
    asio::local::stream_protocol::acceptor stale(
        io, asio::local::stream_protocol::endpoint(nodes[0]->socket_path));
  }
  ASSERT_TRUE(std::filesystem::exists(nodes[0]->socket_path));
  auto replacement = P2pdServer::start(nodes[0]->peer->host(), same_path);
  ASSERT_TRUE(replacement) << replacement.error().message;
  (*replacement)->stop();
  (*tcp_server)->stop();

  P2pdServerConfig bad;
  bad.listen = "/dns4/example/tcp/1";
  EXPECT_FALSE(P2pdServer::start(nodes[0]->peer->host(), bad));
}

}  // namespace
}  // namespace an::node
