// The node-level Dht over 127.0.0.1: hosts told only one bootstrap host find the others through
// the upkeep (self-lookup, refresh, dialling to the connection target), client mode stays out of
// routing tables, find_peer / put_value / get_value across hosts. Every wait is bounded.
#include "p2p/kad/io/dht.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "p2p/kad/message.h"
#include "unit/p2p/net/net_test_support.h"

namespace an::p2p::net::test {
namespace {

using kad::Dht;
using kad::DhtConfig;
using kad::DhtMode;
using kad::FoundPeer;
using kad::kDhtRequestTimeout;

using namespace std::chrono_literals;

// The /pk/ record of a peer: its key is "/pk/" + the peer ID's multihash, its value the
// protobuf public key that an Ed25519 identity multihash carries after its two header bytes.
// A test that uses them in a lambda names them through .first and .second: clang before 16
// cannot capture a structured binding.
std::pair<Bytes, Bytes> public_key_record(const PeerId& peer) {
  const Bytes& multihash = peer.bytes();
  Bytes key = text_bytes("/pk/");
  key.insert(key.end(), multihash.begin(), multihash.end());
  Bytes value(multihash.begin() + 2, multihash.end());
  return {key, value};
}

class DhtTest : public ::testing::Test {
 protected:
  static constexpr std::size_t kHosts = 10;  // host 0 is everybody's bootstrap peer

  void add_host(DhtMode mode, std::size_t connection_target = 100,
                std::chrono::steady_clock::duration request_timeout = kDhtRequestTimeout) {
    peers.push_back(std::make_unique<TestPeer>(io, "test-agent/" + std::to_string(peers.size())));
    DhtConfig config;
    config.mode = mode;
    config.connection_target = connection_target;
    config.check_interval = 200ms;
    config.client.request_timeout = request_timeout;
    dhts.push_back(std::make_unique<Dht>(peers.back()->host(), io.get_executor(), config));
    dhts.back()->start();
  }

  void connect(std::size_t from, std::size_t to) {
    auto connection =
        run_coroutine(io, [&]() -> asio::awaitable<Expected<std::shared_ptr<Connection>>> {
          co_return co_await peers[from]->host().connect(peers[to]->dial_address());
        });
    ASSERT_TRUE(connection && *connection) << (connection ? connection->error().message : "");
  }

  std::size_t connected_count(std::size_t index) {
    return peers[index]->host().connected_peers().size();
  }

  void TearDown() override {
    for (auto& dht : dhts)
      dht->stop();
    run_pending(io);
  }

  asio::io_context io;
  std::vector<std::unique_ptr<TestPeer>> peers;
  std::vector<std::unique_ptr<Dht>> dhts;
};

TEST_F(DhtTest, HostsToldOnlyTheBootstrapPeerFindEachOther) {
  for (std::size_t i = 0; i < kHosts; ++i)
    add_host(DhtMode::kServer);
  for (std::size_t i = 1; i < kHosts; ++i)
    ASSERT_NO_FATAL_FAILURE(connect(i, 0));
  // Everybody ends up connected to everybody: the self-lookups connect each host to the peers
  // closest to it, the dialling to the connection target does the rest.
  const bool meshed = run_until(
      io,
      [&] {
        for (std::size_t i = 0; i < kHosts; ++i) {
          if (connected_count(i) < kHosts - 1) return false;
          // Identify follows each connection: it is what puts a peer in the table.
          if (dhts[i]->routing_table_size() < kHosts - 1) return false;
        }
        return true;
      },
      30s);
  for (std::size_t i = 0; i < kHosts; ++i) {
    EXPECT_EQ(connected_count(i), kHosts - 1) << "host " << i;
    EXPECT_EQ(dhts[i]->routing_table_size(), kHosts - 1) << "host " << i;
  }
  ASSERT_TRUE(meshed);
  for (std::size_t i = 1; i < kHosts; ++i) {
    EXPECT_GE(dhts[i]->upkeep_stats().self_lookups, 1u) << "host " << i;
  }
}

TEST_F(DhtTest, TheConnectionTargetLimitsTheDialling) {
  add_host(DhtMode::kServer);
  for (std::size_t i = 1; i < kHosts; ++i)
    add_host(DhtMode::kServer, /*connection_target=*/0);
  for (std::size_t i = 1; i < kHosts; ++i)
    ASSERT_NO_FATAL_FAILURE(connect(i, 0));
  ASSERT_TRUE(run_until(
      io,
      [&] {
        for (std::size_t i = 1; i < kHosts; ++i) {
          if (dhts[i]->upkeep_stats().self_lookups == 0) return false;
        }
        return true;
      },
      30s));
  // With no connection target nothing is dialled beyond what the lookups themselves reach.
  for (std::size_t i = 1; i < kHosts; ++i)
    EXPECT_EQ(dhts[i]->upkeep_stats().dials, 0u) << "host " << i;
}

TEST_F(DhtTest, AClientModeHostUsesTheDhtButStaysOutOfRoutingTables) {
  add_host(DhtMode::kServer);
  add_host(DhtMode::kServer);
  add_host(DhtMode::kClient);
  const auto protocols = peers[2]->host().protocols();
  EXPECT_EQ(std::find(protocols.begin(), protocols.end(), std::string(kad::kProtocolId)),
            protocols.end());
  ASSERT_NO_FATAL_FAILURE(connect(1, 0));
  ASSERT_NO_FATAL_FAILURE(connect(2, 0));
  ASSERT_TRUE(run_until(io, [&] { return peers[0]->identified(peers[2]->id()); }));
  ASSERT_TRUE(run_until(io, [&] { return dhts[2]->routing_table_size() >= 1; }));
  EXPECT_FALSE(dhts[0]->routing_table().contains(peers[2]->id()));

  // The client finds host 1 through host 0.
  auto found = run_coroutine(io, [&]() -> asio::awaitable<Expected<FoundPeer>> {
    co_return co_await dhts[2]->find_peer(peers[1]->id(), std::chrono::steady_clock::now() + 10s);
  });
  ASSERT_TRUE(found && *found) << (found ? found->error().message : "");
  EXPECT_FALSE((*found)->addresses.empty());
  EXPECT_TRUE((*found)->connected);
  EXPECT_FALSE(dhts[1]->routing_table().contains(peers[2]->id()));
}

TEST_F(DhtTest, FindPeerPutAndGetAcrossHosts) {
  for (std::size_t i = 0; i < 4; ++i)
    add_host(DhtMode::kServer, /*connection_target=*/0);
  // A chain: 1 - 0 - 2, and 3 - 2. Host 1 reaches 3 only through lookups.
  ASSERT_NO_FATAL_FAILURE(connect(1, 0));
  ASSERT_NO_FATAL_FAILURE(connect(2, 0));
  ASSERT_NO_FATAL_FAILURE(connect(3, 2));
  // The hosts' own self-lookups may connect 1 and 3 (lookups connect to the peers they
  // query): once they are over (no further upkeep dials with a connection target of 0), the
  // connection is closed, so that find_peer has to look host 3 up.
  ASSERT_TRUE(run_until(io, [&] {
    for (const auto& dht : dhts) {
      if (dht->upkeep_stats().rounds == 0) return false;
    }
    return true;
  }));
  ASSERT_TRUE(run_until(io, [&] {
    peers[1]->host().disconnect(peers[3]->id());
    return peers[1]->host().connection_to(peers[3]->id()) == nullptr;
  }));

  auto found = run_coroutine(io, [&]() -> asio::awaitable<Expected<FoundPeer>> {
    co_return co_await dhts[1]->find_peer(peers[3]->id(), std::chrono::steady_clock::now() + 10s);
  });
  ASSERT_TRUE(found && *found) << (found ? found->error().message : "");
  EXPECT_TRUE((*found)->through_dht);
  EXPECT_TRUE((*found)->connected);
  const auto& addresses = (*found)->addresses;
  EXPECT_NE(std::find(addresses.begin(), addresses.end(), peers[3]->listen_address()),
            addresses.end());

  auto record = public_key_record(peers[1]->id());
  auto& key = record.first;
  auto& value = record.second;
  auto stored = run_coroutine(io, [&]() -> asio::awaitable<Expected<std::size_t>> {
    co_return co_await dhts[1]->put_value(key, value, std::chrono::steady_clock::now() + 10s);
  });
  ASSERT_TRUE(stored && *stored) << (stored ? stored->error().message : "");
  EXPECT_GE(**stored, 1u);
  auto read = run_coroutine(io, [&]() -> asio::awaitable<Expected<Bytes>> {
    co_return co_await dhts[3]->get_value(key, std::chrono::steady_clock::now() + 10s);
  });
  ASSERT_TRUE(read && *read) << (read ? read->error().message : "");
  EXPECT_EQ(**read, value);

  // A record no validator accepts is refused before anything is sent.
  Bytes bad_value = value;
  bad_value.push_back(0);
  auto refused = run_coroutine(io, [&]() -> asio::awaitable<Expected<std::size_t>> {
    co_return co_await dhts[1]->put_value(key, bad_value, std::chrono::steady_clock::now() + 10s);
  });
  ASSERT_TRUE(refused);
  EXPECT_FALSE(*refused);
}

TEST_F(DhtTest, AnUnknownPeerIsNotFound) {
  add_host(DhtMode::kServer, 0);
  add_host(DhtMode::kServer, 0);
  ASSERT_NO_FATAL_FAILURE(connect(1, 0));
  ASSERT_TRUE(run_until(io, [&] { return dhts[1]->routing_table_size() >= 1; }));
  const LocalIdentity stranger = make_identity();
  auto found = run_coroutine(io, [&]() -> asio::awaitable<Expected<FoundPeer>> {
    co_return co_await dhts[1]->find_peer(stranger.peer_id, std::chrono::steady_clock::now() + 10s);
  });
  ASSERT_TRUE(found);
  ASSERT_FALSE(*found);
  EXPECT_TRUE(contains(found->error().message, "not found")) << found->error().message;
}

TEST_F(DhtTest, ALookupGivesUpWhenItsCallerStopsWaiting) {
  add_host(DhtMode::kServer, 0);
  add_host(DhtMode::kServer, 0, /*request_timeout=*/1h);
  // Host 0 reads requests and never answers.
  std::vector<std::shared_ptr<Stream>> held;
  peers[0]->host().set_handler(std::string(kad::kProtocolId),
                               [&held](std::shared_ptr<Stream> stream) -> asio::awaitable<void> {
                                 held.push_back(stream);
                                 co_return;
                               });
  ASSERT_NO_FATAL_FAILURE(connect(1, 0));
  ASSERT_TRUE(run_until(io, [&] { return dhts[1]->routing_table_size() >= 1; }));
  // The lookup's deadline and its request's timeout are far beyond the test's wait limit: only
  // the cancellation by the timer can end it in time.
  auto outcome = run_coroutine(io, [&]() -> asio::awaitable<int> {
    using namespace asio::experimental::awaitable_operators;
    asio::steady_timer timer(co_await asio::this_coro::executor, 100ms);
    auto raced = co_await (
        dhts[1]->closest_peers(text_bytes("key"), std::chrono::steady_clock::now() + 1h) ||
        timer.async_wait(use_tuple));
    co_return static_cast<int>(raced.index());
  });
  ASSERT_TRUE(outcome);
  EXPECT_EQ(*outcome, 1);
}

}  // namespace
}  // namespace an::p2p::net::test
