// The resource manager at work in a Host, one attack class each (issue 16's regressions):
// stalled handshakes from one address and from many, a stream flood from one peer, a peer that
// writes to a stream nobody reads, and a DHT record flood. The limits are set small so that each
// test reaches the one it is about; the attacker is raw TCP or a Host, the honest peer a Host.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "p2p/crypto/keys.h"
#include "p2p/kad/io/dht_server.h"
#include "p2p/kad/message.h"
#include "unit/p2p/net/net_test_support.h"

namespace an::p2p::net::test {
namespace {

using asio::ip::tcp;

// Half a multistream header: a length prefix announcing 19 bytes, then fewer.
const Bytes kPartialHeader{0x13, '/', 'm', 'u', 'l', 't', 'i'};

std::uint64_t refusals(Host& host, const std::string& key) {
  const auto snapshot = host.resources().snapshot();
  auto found = snapshot.refusals.find(key);
  return found == snapshot.refusals.end() ? 0 : found->second;
}

// Raw TCP clients that connect from `source` and stall after half a multistream header.
class StallingClients {
 public:
  StallingClients(asio::io_context& io, std::uint16_t port) : io_(io), port_(port) {}

  void open(const char* source, std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) {
      auto socket = std::make_shared<tcp::socket>(io_);
      std::error_code ec;
      socket->open(tcp::v4(), ec);
      socket->bind(tcp::endpoint(asio::ip::make_address(source), 0), ec);
      ASSERT_FALSE(ec) << ec.message();
      socket->connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ec);
      ASSERT_FALSE(ec) << ec.message();
      asio::write(*socket, asio::buffer(kPartialHeader), ec);
      sockets_.push_back(socket);
      hung_up_.push_back(false);
      watch(sockets_.size() - 1);
    }
  }

  std::size_t hung_up() const {
    return static_cast<std::size_t>(std::count(hung_up_.begin(), hung_up_.end(), true));
  }
  bool hung_up(std::size_t index) const { return hung_up_[index]; }

 private:
  // Reads until the host closes the socket.
  void watch(std::size_t index) {
    auto buffer = std::make_shared<std::array<std::uint8_t, 64>>();
    sockets_[index]->async_read_some(asio::buffer(*buffer),
                                     [this, index, buffer](const std::error_code& ec, std::size_t) {
                                       if (ec) {
                                         hung_up_[index] = true;
                                         return;
                                       }
                                       watch(index);
                                     });
  }

  asio::io_context& io_;
  std::uint16_t port_;
  std::vector<std::shared_ptr<tcp::socket>> sockets_;
  std::vector<bool> hung_up_;
};

Expected<std::chrono::nanoseconds> ping(asio::io_context& io, TestPeer& from, TestPeer& to) {
  auto result = run_coroutine(io, [&]() -> asio::awaitable<Expected<std::chrono::nanoseconds>> {
    auto connected = co_await from.host().connect(to.dial_address());
    if (!connected) co_return tl::unexpected(connected.error());
    co_return co_await from.host().ping(to.id());
  });
  if (!result) return fail("ping did not finish");
  return *result;
}

rcmgr::LimitConfig gate_limits(std::int64_t per_ip, std::int64_t total) {
  auto limits = rcmgr::unlimited_limits();
  limits.gate.handshakes_per_ip = per_ip;
  limits.gate.handshakes_total = total;
  return limits;
}

TEST(HostResourcesTest, StalledHandshakesFromOneAddressDoNotKeepAnotherOut) {
  asio::io_context io;
  TestPeer bob(io, "test-agent/bob", gate_limits(4, 64));
  TestPeer alice(io, "test-agent/alice");
  StallingClients attacker(io, bob.port());
  attacker.open("127.0.0.2", 40);
  // All but the address's share are closed before a byte is read.
  EXPECT_TRUE(run_until(io, [&] { return attacker.hung_up() >= 36; }));
  EXPECT_EQ(refusals(bob.host(), "gate.handshakes_per_ip"), 36u);
  EXPECT_EQ(bob.host().resources().snapshot().handshakes_in_flight, 4u);
  // The honest peer, from another address, gets in and is served.
  auto rtt = ping(io, alice, bob);
  ASSERT_TRUE(rtt) << rtt.error().message;
  EXPECT_EQ(attacker.hung_up(), 36u) << "nobody else had to give way";
}

TEST(HostResourcesTest, AFullTotalEvictsTheBusiestAddressesOldestHandshake) {
  asio::io_context io;
  auto limits = gate_limits(3, 6);
  TestPeer bob(io, "test-agent/bob", limits);
  TestPeer alice(io, "test-agent/alice");
  StallingClients attacker(io, bob.port());
  attacker.open("127.0.0.2", 3);
  attacker.open("127.0.0.3", 2);
  attacker.open("127.0.0.4", 1);
  run_pending(io);
  ASSERT_EQ(bob.host().resources().snapshot().handshakes_in_flight, 6u);
  ASSERT_EQ(attacker.hung_up(), 0u);
  // Alice's handshake makes the oldest of 127.0.0.2's give way.
  auto rtt = ping(io, alice, bob);
  ASSERT_TRUE(rtt) << rtt.error().message;
  EXPECT_TRUE(run_until(io, [&] { return attacker.hung_up(0); }));
  EXPECT_EQ(attacker.hung_up(), 1u);
}

TEST(HostResourcesTest, AStreamFloodIsResetAtThePeersLimitAndTheConnectionLives) {
  asio::io_context io;
  auto limits = rcmgr::unlimited_limits();
  limits.peer.streams_inbound = 5;
  TestPeer bob(io, "test-agent/bob", limits);
  TestPeer alice(io, "test-agent/alice");
  ASSERT_TRUE(ping(io, alice, bob));
  // The ping stream is closed; now five held streams fill alice's share.
  auto open_hold = [&]() {
    return run_coroutine(io, [&]() -> asio::awaitable<Expected<std::shared_ptr<Stream>>> {
      std::vector<std::string> protocols{std::string(kHoldProtocol)};
      co_return co_await alice.host().new_stream(bob.id(), std::move(protocols));
    });
  };
  EXPECT_TRUE(run_until(io, [&] {
    return bob.host().resources().snapshot().peers.empty() ||
           bob.host().resources().snapshot().peers[0].usage.streams_inbound == 0;
  }));
  std::vector<std::shared_ptr<Stream>> held;
  for (int i = 0; i < 5; ++i) {
    auto stream = open_hold();
    ASSERT_TRUE(stream && *stream) << i;
    held.push_back(**stream);
  }
  ASSERT_TRUE(run_until(io, [&] { return bob.held_streams.size() == 5; }));
  std::size_t refused = 0;
  for (int i = 0; i < 50; ++i) {
    auto stream = open_hold();
    if (!stream || !*stream) ++refused;
  }
  EXPECT_EQ(refused, 50u);
  EXPECT_GE(refusals(bob.host(), "peer.streams_inbound"), 50u);
  EXPECT_TRUE(bob.host().connection_to(alice.id()));
  // Streams freed, streams again.
  bob.held_streams.clear();
  held.clear();
  EXPECT_TRUE(run_until(io, [&] {
    auto stream = open_hold();
    return stream && *stream;
  }));
}

TEST(HostResourcesTest, DataNobodyReadsIsBoundedByTheStreamsMemory) {
  asio::io_context io;
  auto limits = rcmgr::unlimited_limits();
  limits.stream.memory = 64 * 1024;
  TestPeer bob(io, "test-agent/bob", limits);
  TestPeer alice(io, "test-agent/alice");
  ASSERT_TRUE(ping(io, alice, bob));
  auto written = run_coroutine(io, [&]() -> asio::awaitable<Expected<void>> {
    std::vector<std::string> protocols{std::string(kHoldProtocol)};
    auto stream = co_await alice.host().new_stream(bob.id(), std::move(protocols));
    if (!stream) co_return tl::unexpected(stream.error());
    // Bob holds the stream and never reads: past 64 KiB it is reset, and the write fails.
    co_return co_await (*stream)->write_all(patterned_bytes(1024 * 1024));
  });
  ASSERT_TRUE(written);
  EXPECT_FALSE(*written);
  EXPECT_GE(refusals(bob.host(), "stream.memory"), 1u);
  const auto snapshot = bob.host().resources().snapshot();
  EXPECT_LE(snapshot.scopes[0].usage.memory, 64 * 1024) << "what stays charged is bounded";
  EXPECT_TRUE(ping(io, alice, bob)) << "the connection still carries other streams";
}

TEST(HostResourcesTest, ADhtRecordFloodStopsAtTheProtocolsMemory) {
  asio::io_context io;
  auto limits = rcmgr::unlimited_limits();
  limits.protocols[std::string(kad::kProtocolId)].memory = 16 * 1024;
  TestPeer bob(io, "test-agent/bob", limits);
  kad::DhtServer server(bob.host());
  server.start();
  const PeerId attacker = make_identity().peer_id;
  std::size_t stored = 0;
  std::size_t refused = 0;
  for (int i = 0; i < 200; ++i) {
    auto key = PrivateKey::generate(KeyType::kEd25519);
    ASSERT_TRUE(key);
    Bytes record_key = text_bytes("/pk/");
    const auto& id = key->peer_id().bytes();
    record_key.insert(record_key.end(), id.begin(), id.end());
    kad::Message put;
    put.type = kad::MessageType::kPutValue;
    put.key = record_key;
    put.record = kad::Record{record_key, key->public_key().protobuf(), ""};
    auto answer = server.handle_request(attacker, put);
    if (answer) {
      ++stored;
    } else {
      ++refused;
      EXPECT_NE(answer.error().message.find("resource limit"), std::string::npos);
    }
  }
  EXPECT_GT(stored, 10u);
  EXPECT_GT(refused, 100u);
  EXPECT_EQ(server.records().size(), stored);
  const auto snapshot = bob.host().resources().snapshot();
  for (const auto& scope : snapshot.scopes) {
    if (scope.name == "protocol:" + std::string(kad::kProtocolId)) {
      EXPECT_LE(scope.usage.memory, 16 * 1024);
      EXPECT_GT(scope.usage.memory, 0);
    }
  }
}

}  // namespace
}  // namespace an::p2p::net::test
