// DhtClient over 127.0.0.1: requests against a DhtServer and against misbehaving kad handlers,
// then lookups in a small in-process network of kad servers bootstrapped through one host.
// Every wait is bounded.
#include "p2p/kad/io/dht_client.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "p2p/crypto/keys.h"
#include "p2p/kad/io/dht_server.h"
#include "p2p/kad/key.h"
#include "p2p/kad/message.h"
#include "p2p/net/framed.h"
#include "unit/p2p/net/net_test_support.h"

namespace an::p2p::net::test {
namespace {

using kad::DhtClient;
using kad::DhtClientConfig;
using kad::DhtProvider;
using kad::DhtServer;
using kad::LookupOutcome;

kad::Message request_of(kad::MessageType type, const Bytes& key) {
  kad::Message message;
  message.type = type;
  message.key = key;
  return message;
}

class DhtClientTest : public ::testing::Test {
 protected:
  DhtClientTest() { server.start(); }

  void connect_and_identify(TestPeer& from, TestPeer& to) {
    auto connection =
        run_coroutine(io, [&]() -> asio::awaitable<Expected<std::shared_ptr<Connection>>> {
          co_return co_await from.host().connect(to.dial_address());
        });
    ASSERT_TRUE(connection && *connection) << (connection ? connection->error().message : "");
    ASSERT_TRUE(run_until(io, [&] { return from.identified(to.id()) && to.identified(from.id()); }))
        << "identify did not complete";
  }

  Expected<kad::Message> request(DhtClient& dht, const PeerId& peer, const kad::Message& message,
                                 std::vector<Multiaddr> addresses = {}) {
    auto answer = run_coroutine(io, [&]() -> asio::awaitable<Expected<kad::Message>> {
      co_return co_await dht.request(peer, message, addresses);
    });
    if (!answer) return fail("request did not finish");
    return std::move(*answer);
  }

  asio::io_context io;
  TestPeer a{io, "test-agent/a"};
  TestPeer b{io, "test-agent/b"};
  DhtServer server{a.host()};
  DhtServer b_server{b.host()};
  DhtClient client{b.host(), b_server.routing_table()};
};

TEST_F(DhtClientTest, PingAndFindNodeRoundTripsAgainstAServer) {
  connect_and_identify(b, a);
  auto pong = request(client, a.id(), request_of(kad::MessageType::kPing, {}));
  ASSERT_TRUE(pong) << pong.error().message;
  EXPECT_EQ(pong->type, kad::MessageType::kPing);

  auto self = request(client, a.id(), request_of(kad::MessageType::kFindNode, a.id().bytes()));
  ASSERT_TRUE(self) << self.error().message;
  EXPECT_EQ(self->type, kad::MessageType::kFindNode);
  ASSERT_EQ(self->closer_peers.size(), 1u);
  EXPECT_EQ(self->closer_peers[0].id, a.id());
  // The stream was closed: the server is done with it.
  EXPECT_TRUE(run_until(io, [&] { return server.active_streams() == 0; }));
}

TEST_F(DhtClientTest, DialsAPeerThatIsNotConnectedWithTheGivenAddresses) {
  ASSERT_EQ(b.host().connection_to(a.id()), nullptr);
  auto pong =
      request(client, a.id(), request_of(kad::MessageType::kPing, {}), {a.listen_address()});
  ASSERT_TRUE(pong) << pong.error().message;
  EXPECT_NE(b.host().connection_to(a.id()), nullptr);
  // Without addresses and without a connection there is nobody to ask.
  const LocalIdentity stranger = make_identity();
  auto nowhere = request(client, stranger.peer_id, request_of(kad::MessageType::kPing, {}));
  EXPECT_FALSE(nowhere);
}

TEST_F(DhtClientTest, APeerThatNeverAnswersTimesOut) {
  TestPeer c{io, "test-agent/c"};
  // Reads the request, then holds the stream without answering.
  c.host().set_handler(std::string(kad::kProtocolId),
                       [&c](std::shared_ptr<Stream> stream) -> asio::awaitable<void> {
                         c.held_streams.push_back(stream);
                         (void)co_await read_framed(*stream, kad::kMaxMessageSize);
                       });
  connect_and_identify(b, c);
  DhtClientConfig config;
  config.request_timeout = std::chrono::milliseconds(300);
  DhtClient impatient(b.host(), b_server.routing_table(), config);
  auto answer = request(impatient, c.id(), request_of(kad::MessageType::kPing, {}));
  ASSERT_FALSE(answer);
  EXPECT_TRUE(contains(answer.error().message, "timed out")) << answer.error().message;
  EXPECT_FALSE(c.held_streams.empty());
}

TEST_F(DhtClientTest, AnAnswerOfAnotherTypeIsRefused) {
  TestPeer c{io, "test-agent/c"};
  // Answers every request with a PING.
  c.host().set_handler(std::string(kad::kProtocolId),
                       [](std::shared_ptr<Stream> stream) -> asio::awaitable<void> {
                         auto received = co_await read_framed(*stream, kad::kMaxMessageSize);
                         if (!received || !received->has_value()) co_return;
                         const Bytes answer = kad::encode(request_of(kad::MessageType::kPing, {}));
                         (void)co_await write_framed(*stream, answer);
                         (void)co_await stream->close_write();
                       });
  connect_and_identify(b, c);
  auto answer = request(client, c.id(), request_of(kad::MessageType::kFindNode, c.id().bytes()));
  ASSERT_FALSE(answer);
  EXPECT_TRUE(contains(answer.error().message, "PING")) << answer.error().message;
}

TEST_F(DhtClientTest, ALookupWithAnEmptyRoutingTableEndsAtOnceEmpty) {
  auto outcome = run_coroutine(io, [&]() -> asio::awaitable<Expected<LookupOutcome>> {
    co_return co_await client.find_closest_peers(a.id().bytes(),
                                                 std::chrono::steady_clock::now() + kWaitLimit);
  });
  ASSERT_TRUE(outcome && *outcome);
  EXPECT_TRUE((*outcome)->completed);
  EXPECT_TRUE((*outcome)->closest.empty());
  EXPECT_EQ((*outcome)->stats.queries_sent, 0u);
}

// A network of kad servers on 127.0.0.1, each connected to host 0 only at first.
class DhtClientNetworkTest : public ::testing::Test {
 protected:
  static constexpr std::size_t kHosts = 12;

  void SetUp() override {
    for (std::size_t i = 0; i < kHosts; ++i) {
      peers.push_back(std::make_unique<TestPeer>(io, "test-agent/" + std::to_string(i)));
      servers.push_back(std::make_unique<DhtServer>(peers[i]->host()));
      servers[i]->start();
      clients.push_back(std::make_unique<DhtClient>(peers[i]->host(), servers[i]->routing_table()));
    }
    for (std::size_t i = 1; i < kHosts; ++i) {
      TestPeer& from = *peers[i];
      TestPeer& to = *peers[0];
      auto connection =
          run_coroutine(io, [&]() -> asio::awaitable<Expected<std::shared_ptr<Connection>>> {
            co_return co_await from.host().connect(to.dial_address());
          });
      ASSERT_TRUE(connection && *connection) << (connection ? connection->error().message : "");
    }
    ASSERT_TRUE(run_until(io, [&] {
      for (std::size_t i = 1; i < kHosts; ++i) {
        if (!servers[0]->routing_table().contains(peers[i]->id())) return false;
        if (!servers[i]->routing_table().contains(peers[0]->id())) return false;
      }
      return true;
    })) << "bootstrap identify did not complete";
  }

  void TearDown() override {
    clients.clear();
    servers.clear();
    peers.clear();
  }

  Expected<LookupOutcome> lookup(DhtClient& client, const Bytes& target) {
    auto outcome = run_coroutine(io, [&]() -> asio::awaitable<Expected<LookupOutcome>> {
      co_return co_await client.find_closest_peers(target,
                                                   std::chrono::steady_clock::now() + kWaitLimit);
    });
    if (!outcome) return fail("lookup did not finish");
    return std::move(*outcome);
  }

  // The `count` hosts other than `requester` closest to the key of `target`, closest first.
  std::vector<PeerId> true_closest(const Bytes& target, std::size_t requester,
                                   std::size_t count) const {
    const kad::Key key = kad::Key::hash(target);
    std::vector<PeerId> others;
    for (std::size_t i = 0; i < kHosts; ++i)
      if (i != requester) others.push_back(peers[i]->id());
    std::sort(others.begin(), others.end(), [&](const PeerId& x, const PeerId& y) {
      return kad::compare_distance(key, kad::Key::of_peer(x), kad::Key::of_peer(y)) < 0;
    });
    if (others.size() > count)
      others.erase(others.begin() + static_cast<long>(count), others.end());
    return others;
  }

  void self_lookups() {
    for (std::size_t i = 0; i < kHosts; ++i) {
      auto outcome = lookup(*clients[i], peers[i]->id().bytes());
      ASSERT_TRUE(outcome) << outcome.error().message;
      EXPECT_TRUE(outcome->completed);
      EXPECT_FALSE(outcome->closest.empty());
    }
  }

  asio::io_context io;
  std::vector<std::unique_ptr<TestPeer>> peers;
  std::vector<std::unique_ptr<DhtServer>> servers;
  std::vector<std::unique_ptr<DhtClient>> clients;
};

TEST_F(DhtClientNetworkTest, SelfLookupsThenARandomKeyFindsTheTrueClosestPeers) {
  ASSERT_NO_FATAL_FAILURE(self_lookups());
  // After the self-lookups every host has learned of (and dialled) the others.
  for (std::size_t i = 1; i < kHosts; ++i) {
    EXPECT_GT(servers[i]->routing_table().size(), 1u) << "host " << i;
  }

  std::random_device device;
  const unsigned seed = device();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 random(seed);
  const std::size_t requester = random() % kHosts;
  Bytes target(32);
  for (auto& byte : target)
    byte = static_cast<std::uint8_t>(random());

  // k = 20 > the 11 other hosts: all of them, ordered by distance.
  auto all = lookup(*clients[requester], target);
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_TRUE(all->completed);
  EXPECT_EQ(all->closest, true_closest(target, requester, kad::kBucketSize));
  EXPECT_GT(all->stats.queries_sent, 0u);

  // k = 4: exactly the 4 closest.
  DhtClientConfig small;
  small.lookup.k = 4;
  small.lookup.alpha = 3;
  DhtClient narrow(peers[requester]->host(), servers[requester]->routing_table(), small);
  auto four = lookup(narrow, target);
  ASSERT_TRUE(four) << four.error().message;
  EXPECT_TRUE(four->completed);
  EXPECT_EQ(four->closest, true_closest(target, requester, 4));
  EXPECT_GE(four->stats.responses, 4u);
}

TEST_F(DhtClientNetworkTest, ALookupFromABootstrappedHostReachesPeersItWasNotConnectedTo) {
  // Host 5 knows only host 0; a lookup with k = 3 must dial peers learned from host 0's answer.
  const std::size_t requester = 5;
  ASSERT_EQ(servers[requester]->routing_table().size(), 1u);
  DhtClientConfig small;
  small.lookup.k = 3;
  DhtClient narrow(peers[requester]->host(), servers[requester]->routing_table(), small);
  const Bytes target = text_bytes("some record key");
  auto outcome = lookup(narrow, target);
  ASSERT_TRUE(outcome) << outcome.error().message;
  EXPECT_TRUE(outcome->completed);
  EXPECT_EQ(outcome->closest, true_closest(target, requester, 3));
  EXPECT_GE(outcome->hops, 1);
}

TEST_F(DhtClientNetworkTest, TheDeadlineEndsALookupWithTheBestSoFar) {
  // A peer that holds kad streams without answering, known to host 0's table.
  TestPeer silent{io, "test-agent/silent"};
  silent.host().set_handler(std::string(kad::kProtocolId),
                            [&silent](std::shared_ptr<Stream> stream) -> asio::awaitable<void> {
                              silent.held_streams.push_back(std::move(stream));
                              co_return;
                            });
  auto connection =
      run_coroutine(io, [&]() -> asio::awaitable<Expected<std::shared_ptr<Connection>>> {
        co_return co_await silent.host().connect(peers[0]->dial_address());
      });
  ASSERT_TRUE(connection && *connection);
  ASSERT_TRUE(run_until(io, [&] { return servers[0]->routing_table().contains(silent.id()); }));

  auto outcome = run_coroutine(io, [&]() -> asio::awaitable<Expected<LookupOutcome>> {
    co_return co_await clients[3]->find_closest_peers(
        silent.id().bytes(), std::chrono::steady_clock::now() + std::chrono::seconds(2));
  });
  ASSERT_TRUE(outcome && *outcome);
  // The silent peer never answers within the 10 s request timeout: the deadline ends the lookup.
  EXPECT_FALSE((*outcome)->completed);
  EXPECT_EQ(std::find((*outcome)->closest.begin(), (*outcome)->closest.end(), silent.id()),
            (*outcome)->closest.end());
  EXPECT_FALSE((*outcome)->closest.empty());
  clients.clear();
  run_pending(io);
}

TEST_F(DhtClientNetworkTest, PutValueStoresAtTheClosestPeersAndGetValueFindsIt) {
  ASSERT_NO_FATAL_FAILURE(self_lookups());
  const std::size_t publisher = 4;
  Bytes key = text_bytes("/pk/");
  const Bytes& id = peers[publisher]->id().bytes();
  key.insert(key.end(), id.begin(), id.end());
  const Bytes value = peers[publisher]->host().identity().key.public_key().protobuf();

  auto stored = run_coroutine(io, [&]() -> asio::awaitable<Expected<std::size_t>> {
    co_return co_await clients[publisher]->put_value(key, value,
                                                     std::chrono::steady_clock::now() + kWaitLimit);
  });
  ASSERT_TRUE(stored && *stored) << (stored ? stored->error().message : "");
  // k = 20: every other host stores it.
  EXPECT_EQ(**stored, kHosts - 1);
  EXPECT_EQ(servers[publisher]->records().size(), 0u);
  EXPECT_EQ(servers[9]->records().size(), 1u);

  auto got = run_coroutine(io, [&]() -> asio::awaitable<Expected<Bytes>> {
    co_return co_await clients[9]->get_value(key, std::chrono::steady_clock::now() + kWaitLimit);
  });
  ASSERT_TRUE(got && *got) << (got ? got->error().message : "");
  EXPECT_EQ(**got, value);

  // A value the validator refuses is not sent.
  const Bytes wrong = peers[0]->host().identity().key.public_key().protobuf();
  auto refused = run_coroutine(io, [&]() -> asio::awaitable<Expected<std::size_t>> {
    co_return co_await clients[publisher]->put_value(key, wrong,
                                                     std::chrono::steady_clock::now() + kWaitLimit);
  });
  ASSERT_TRUE(refused);
  EXPECT_FALSE(*refused);
  // An absent key: an error, not a hang.
  auto missing = run_coroutine(io, [&]() -> asio::awaitable<Expected<Bytes>> {
    Bytes other = text_bytes("/pk/");
    const Bytes& other_id = peers[2]->id().bytes();
    other.insert(other.end(), other_id.begin(), other_id.end());
    co_return co_await clients[9]->get_value(other, std::chrono::steady_clock::now() + kWaitLimit);
  });
  ASSERT_TRUE(missing);
  EXPECT_FALSE(*missing);
}

TEST_F(DhtClientNetworkTest, GetValueWalksAndFindsARecordHeldOffTheClosestPeers) {
  // Host 5 knows only host 0, which alone holds the record; with k = 3 and host 0 not among
  // the 3 hosts closest to the key, only a lookup whose requests are GET_VALUE (go's walk)
  // sees it: asking the 3 closest at the end would not.
  const std::size_t requester = 5;
  const std::size_t holder_index = 0;
  std::optional<std::size_t> publisher;
  Bytes key;
  for (std::size_t candidate = 1; candidate < kHosts && !publisher; ++candidate) {
    if (candidate == requester) continue;
    Bytes candidate_key = text_bytes("/pk/");
    const Bytes& id = peers[candidate]->id().bytes();
    candidate_key.insert(candidate_key.end(), id.begin(), id.end());
    const auto closest = true_closest(candidate_key, requester, 3);
    if (std::find(closest.begin(), closest.end(), peers[holder_index]->id()) == closest.end()) {
      publisher = candidate;
      key = candidate_key;
    }
  }
  ASSERT_TRUE(publisher) << "no key with host 0 outside its 3 closest (odds about 1 in 10^4)";
  const Bytes value = peers[*publisher]->host().identity().key.public_key().protobuf();
  ASSERT_TRUE(servers[holder_index]->records().put(key, value, std::chrono::system_clock::now()));

  DhtClientConfig small;
  small.lookup.k = 3;
  DhtClient narrow(peers[requester]->host(), servers[requester]->routing_table(), small);
  auto got = run_coroutine(io, [&]() -> asio::awaitable<Expected<Bytes>> {
    co_return co_await narrow.get_value(key, std::chrono::steady_clock::now() + kWaitLimit);
  });
  ASSERT_TRUE(got && *got) << (got ? got->error().message : "");
  EXPECT_EQ(**got, value);
}

TEST_F(DhtClientNetworkTest, AddProviderReachesTheClosestPeersAndGetProvidersFindsIt) {
  ASSERT_NO_FATAL_FAILURE(self_lookups());
  const std::size_t publisher = 4;
  const Bytes key = text_bytes("some content multihash");
  DhtProvider announced{peers[publisher]->id(), {peers[publisher]->listen_address()}};
  auto accepted = run_coroutine(io, [&]() -> asio::awaitable<Expected<std::size_t>> {
    co_return co_await clients[publisher]->add_provider(
        key, announced, std::chrono::steady_clock::now() + kWaitLimit);
  });
  ASSERT_TRUE(accepted && *accepted) << (accepted ? accepted->error().message : "");
  // k = 20: every other host took it, and holds it.
  EXPECT_EQ(**accepted, kHosts - 1);
  for (std::size_t i = 0; i < kHosts; ++i) {
    if (i == publisher) continue;
    auto held = servers[i]->providers().get(key, std::chrono::system_clock::now());
    ASSERT_EQ(held.size(), 1u) << "host " << i;
    EXPECT_EQ(held[0].id, peers[publisher]->id());
  }

  std::vector<DhtProvider> streamed;
  auto found = run_coroutine(io, [&]() -> asio::awaitable<Expected<LookupOutcome>> {
    co_return co_await clients[9]->get_providers(
        key, 0, std::chrono::steady_clock::now() + kWaitLimit, {},
        [&streamed](const DhtProvider& provider) { streamed.push_back(provider); });
  });
  ASSERT_TRUE(found && *found) << (found ? found->error().message : "");
  ASSERT_EQ((*found)->providers.size(), 1u);
  EXPECT_EQ((*found)->providers[0], announced);
  EXPECT_EQ(streamed, (*found)->providers);
  // A provider the caller knows already is not reported again.
  auto known = run_coroutine(io, [&]() -> asio::awaitable<Expected<LookupOutcome>> {
    std::vector<PeerId> already{peers[publisher]->id()};
    co_return co_await clients[9]->get_providers(
        key, 0, std::chrono::steady_clock::now() + kWaitLimit, std::move(already));
  });
  ASSERT_TRUE(known && *known);
  EXPECT_TRUE((*known)->providers.empty());
}

TEST_F(DhtClientNetworkTest, GetProvidersWalksAndStopsAtTheCountAsked) {
  // Host 5 knows only host 0, which alone holds three providers of the key: with k = 3 and host 0
  // outside the 3 closest, only a walk (GET_PROVIDERS all along) sees them.
  const std::size_t requester = 5;
  std::optional<Bytes> key;
  for (int attempt = 0; attempt < 64 && !key; ++attempt) {
    Bytes candidate = text_bytes("content " + std::to_string(attempt));
    const auto closest = true_closest(candidate, requester, 3);
    if (std::find(closest.begin(), closest.end(), peers[0]->id()) == closest.end()) key = candidate;
  }
  ASSERT_TRUE(key) << "no key with host 0 outside its 3 closest (odds about 1 in 10^7)";
  std::vector<LocalIdentity> providers;
  for (int i = 0; i < 3; ++i) {
    providers.push_back(make_identity());
    ASSERT_TRUE(servers[0]->providers().add(*key, providers.back().peer_id,
                                            {peers[1]->listen_address()},
                                            std::chrono::system_clock::now()));
  }
  DhtClientConfig small;
  small.lookup.k = 3;
  DhtClient narrow(peers[requester]->host(), servers[requester]->routing_table(), small);
  auto all = run_coroutine(io, [&]() -> asio::awaitable<Expected<LookupOutcome>> {
    co_return co_await narrow.get_providers(*key, 0, std::chrono::steady_clock::now() + kWaitLimit);
  });
  ASSERT_TRUE(all && *all) << (all ? all->error().message : "");
  EXPECT_EQ((*all)->providers.size(), 3u);
  EXPECT_TRUE((*all)->completed);

  // The walk has connected host 5 to peers nearer the key than host 0, so that a k = 3 walk
  // would no longer ask host 0; k = 20 asks everybody, unless it stops at the count first.
  auto two = run_coroutine(io, [&]() -> asio::awaitable<Expected<LookupOutcome>> {
    co_return co_await clients[requester]->get_providers(
        *key, 2, std::chrono::steady_clock::now() + kWaitLimit);
  });
  ASSERT_TRUE(two && *two) << (two ? two->error().message : "");
  EXPECT_EQ((*two)->providers.size(), 2u);
}

}  // namespace
}  // namespace an::p2p::net::test
