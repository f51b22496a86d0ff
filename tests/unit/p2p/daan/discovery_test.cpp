// DAAN discovery over the node-level Dht on 127.0.0.1: a namespace advertised at one end of a
// chain is discovered at the other with its addresses (and dialled by ID from the peer store),
// the network namespace brings two DAAN nodes that only know a bootstrap peer together, bad
// namespaces are refused, and advertisements are renewed at the DHT peers by one loop per
// namespace until stop(). Every wait is bounded.
//
// The DAAN nodes run the DHT in client mode: a DHT server would be named in the middle peer's
// answers and queried (so dialled) by the others' lookups, and a connection between them would
// then prove nothing about discovery.
#include "p2p/daan/io/discovery.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "unit/p2p/net/net_test_support.h"

namespace an::p2p::daan {
namespace {

using kad::Dht;
using kad::DhtConfig;
using kad::DhtMode;
using net::test::run_coroutine;
using net::test::run_pending;
using net::test::run_until;
using net::test::TestPeer;

using namespace std::chrono_literals;

constexpr std::string_view kReverseNamespace = "/daan/capability/reverse";

DiscoveryConfig quiet_config() {
  DiscoveryConfig config;
  config.join_network = false;
  return config;
}

class DaanDiscoveryTest : public ::testing::Test {
 protected:
  std::size_t add_node(DhtMode mode) {
    peers.push_back(std::make_unique<TestPeer>(io, "daan-test/" + std::to_string(peers.size())));
    DhtConfig config;
    config.mode = mode;
    config.connection_target = 0;  // only discovery dials peers it did not look up
    config.check_interval = 200ms;
    dhts.push_back(std::make_unique<Dht>(peers.back()->host(), io.get_executor(), config));
    dhts.back()->start();
    discoveries.emplace_back();
    return peers.size() - 1;
  }

  Discovery& add_discovery(std::size_t node, DiscoveryConfig config) {
    discoveries[node] = std::make_unique<Discovery>(peers[node]->host(), *dhts[node], config);
    discoveries[node]->start();
    return *discoveries[node];
  }

  void connect(std::size_t from, std::size_t to) {
    auto connection =
        run_coroutine(io, [&]() -> asio::awaitable<Expected<std::shared_ptr<net::Connection>>> {
          co_return co_await peers[from]->host().connect(peers[to]->dial_address());
        });
    ASSERT_TRUE(connection && *connection) << (connection ? connection->error().message : "");
  }

  // Until each node's DHT knows a DHT server (identify has run).
  void wait_for_dht_peers(std::vector<std::size_t> nodes) {
    ASSERT_TRUE(run_until(io, [&] {
      return std::all_of(nodes.begin(), nodes.end(),
                         [&](std::size_t node) { return dhts[node]->routing_table_size() > 0; });
    }));
  }

  Expected<std::size_t> advertise(std::size_t node, std::string ns) {
    auto result = run_coroutine(io, [&]() -> asio::awaitable<Expected<std::size_t>> {
      co_return co_await discoveries[node]->advertise(ns, Clock::now() + 10s);
    });
    if (!result) return fail("advertise did not finish");
    return std::move(*result);
  }

  Expected<std::vector<DiscoveredPeer>> discover(std::size_t node, std::string ns,
                                                 std::size_t limit) {
    auto result =
        run_coroutine(io, [&]() -> asio::awaitable<Expected<std::vector<DiscoveredPeer>>> {
          co_return co_await discoveries[node]->discover(ns, limit, Clock::now() + 10s);
        });
    if (!result) return fail("discover did not finish");
    return std::move(*result);
  }

  // When the record of `provider` for `ns` at `node` expires (nullopt: no record).
  std::optional<kad::TimePoint> provider_record_expiry(std::size_t node, std::string_view ns,
                                                       const PeerId& provider) {
    for (const auto& record : dhts[node]->server().providers().get(
             namespace_provider_key(ns), std::chrono::system_clock::now())) {
      if (record.id == provider) return record.expires;
    }
    return std::nullopt;
  }

  void TearDown() override {
    for (auto& discovery : discoveries) {
      if (discovery) discovery->stop();
    }
    for (auto& dht : dhts)
      dht->stop();
    run_pending(io);
  }

  asio::io_context io;
  std::vector<std::unique_ptr<TestPeer>> peers;
  std::vector<std::unique_ptr<Dht>> dhts;
  std::vector<std::unique_ptr<Discovery>> discoveries;  // destroyed before the DHTs
};

TEST_F(DaanDiscoveryTest, AnAdvertisedNamespaceIsFoundTwoHopsAwayWithItsAddresses) {
  const auto a = add_node(DhtMode::kClient);
  const auto b = add_node(DhtMode::kServer);
  const auto c = add_node(DhtMode::kClient);
  for (auto node : {a, b, c})
    add_discovery(node, quiet_config());
  ASSERT_NO_FATAL_FAILURE(connect(a, b));
  ASSERT_NO_FATAL_FAILURE(connect(c, b));
  ASSERT_NO_FATAL_FAILURE(wait_for_dht_peers({a, c}));

  auto taken = advertise(a, std::string(kReverseNamespace));
  ASSERT_TRUE(taken) << taken.error().message;
  EXPECT_GE(*taken, 1u);
  EXPECT_EQ(discoveries[a]->advertised(), std::vector<std::string>{std::string(kReverseNamespace)});

  const PeerId a_id = peers[a]->id();
  ASSERT_EQ(peers[c]->host().connection_to(a_id), nullptr);
  auto found = discover(c, std::string(kReverseNamespace), 0);
  ASSERT_TRUE(found) << found.error().message;
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0].peer, a_id);
  const auto& addresses = (*found)[0].addresses;
  EXPECT_NE(std::find(addresses.begin(), addresses.end(), peers[a]->listen_address()),
            addresses.end());
  EXPECT_EQ(peers[c]->host().connection_to(a_id), nullptr) << "found without dialling A";

  // The addresses went to the peer store: A can be dialled by its ID alone now.
  const net::PeerInfo* known = peers[c]->host().peer_info(a_id);
  ASSERT_NE(known, nullptr);
  ASSERT_FALSE(known->addresses.empty());
  auto dialled =
      run_coroutine(io, [&]() -> asio::awaitable<Expected<std::shared_ptr<net::Connection>>> {
        co_return co_await peers[c]->host().connect(known->addresses.front().with_peer_id(a_id));
      });
  ASSERT_TRUE(dialled && *dialled) << (dialled ? dialled->error().message : "");

  // C provides the namespace too: its own record answers first, and it is left out.
  auto also = advertise(c, std::string(kReverseNamespace));
  ASSERT_TRUE(also) << also.error().message;
  auto one = discover(c, std::string(kReverseNamespace), 1);
  ASSERT_TRUE(one) << one.error().message;
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].peer, a_id);

  auto nobody = discover(c, "/daan/capability/nobody-has-this", 0);
  ASSERT_TRUE(nobody) << nobody.error().message;
  EXPECT_TRUE(nobody->empty());
}

TEST_F(DaanDiscoveryTest, TheNetworkNamespaceConnectsDaanNodesThatOnlyKnowTheBootstrapPeer) {
  const auto a = add_node(DhtMode::kClient);
  const auto bootstrap = add_node(DhtMode::kServer);
  const auto c = add_node(DhtMode::kClient);
  DiscoveryConfig config;
  config.lookup_interval = 1s;
  // Started before any connection, as in a node: the first attempts find no DHT peer.
  add_discovery(a, config);
  add_discovery(c, config);
  EXPECT_EQ(discoveries[a]->advertised(), std::vector<std::string>{std::string(kNetworkNamespace)});
  run_until(
      io, [] { return false; }, 300ms);
  EXPECT_GE(discoveries[a]->stats().unheard_provides, 1u) << "tried before it had a DHT peer";
  ASSERT_NO_FATAL_FAILURE(connect(a, bootstrap));
  ASSERT_NO_FATAL_FAILURE(connect(c, bootstrap));

  const PeerId a_id = peers[a]->id();
  const PeerId c_id = peers[c]->id();
  // Connected by a discovery dial (the dialler counts it once its connect returns).
  ASSERT_TRUE(run_until(io, [&] {
    return peers[a]->host().connection_to(c_id) != nullptr &&
           peers[c]->host().connection_to(a_id) != nullptr &&
           discoveries[a]->stats().dials_connected + discoveries[c]->stats().dials_connected >= 1;
  })) << "A and C did not find each other";
  EXPECT_TRUE(provider_record_expiry(bootstrap, kNetworkNamespace, a_id));
  EXPECT_TRUE(provider_record_expiry(bootstrap, kNetworkNamespace, c_id));
  EXPECT_EQ(dhts[a]->upkeep_stats().dials + dhts[c]->upkeep_stats().dials, 0u)
      << "the DHT's own dialling is off here";
}

TEST_F(DaanDiscoveryTest, TheNetworkLookupDialsOnlyBelowTheConnectionTarget) {
  const auto a = add_node(DhtMode::kClient);
  const auto bootstrap = add_node(DhtMode::kServer);
  const auto c = add_node(DhtMode::kClient);
  DiscoveryConfig config;
  config.lookup_interval = 1s;
  config.connection_target = 1;  // the bootstrap peer is enough
  add_discovery(a, config);
  add_discovery(c, config);
  ASSERT_NO_FATAL_FAILURE(connect(a, bootstrap));
  ASSERT_NO_FATAL_FAILURE(connect(c, bootstrap));

  // Once A's record is at the bootstrap peer, C's lookups find A but dial nobody.
  ASSERT_TRUE(run_until(io, [&] {
    return provider_record_expiry(bootstrap, kNetworkNamespace, peers[a]->id()).has_value();
  }));
  const std::size_t lookups_before = discoveries[c]->stats().network_lookups;
  ASSERT_TRUE(
      run_until(io, [&] { return discoveries[c]->stats().network_lookups >= lookups_before + 2; }));
  auto found = discover(c, std::string(kNetworkNamespace), 0);
  ASSERT_TRUE(found) << found.error().message;
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0].peer, peers[a]->id());
  EXPECT_EQ(discoveries[a]->stats().dials + discoveries[c]->stats().dials, 0u);
  EXPECT_EQ(peers[c]->host().connection_to(peers[a]->id()), nullptr);
}

TEST_F(DaanDiscoveryTest, BadNamespacesAreRefused) {
  const auto node = add_node(DhtMode::kServer);
  add_discovery(node, quiet_config());

  auto empty = advertise(node, "");
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.error().message.find("empty"), std::string::npos) << empty.error().message;
  EXPECT_FALSE(advertise(node, std::string(kMaxNamespaceLength + 1, 'n')));
  EXPECT_FALSE(discover(node, "", 0));
  EXPECT_FALSE(discover(node, std::string(kMaxNamespaceLength + 1, 'n'), 0));
  EXPECT_TRUE(discoveries[node]->advertised().empty());
  EXPECT_EQ(discoveries[node]->stats().provides, 0u) << "nothing reached the DHT";

  // The number of namespaces kept advertised is bounded too.
  for (std::size_t i = 0; i < kMaxAdvertisedNamespaces; ++i) {
    auto taken = advertise(node, std::string(kCapabilityNamespacePrefix) + std::to_string(i));
    ASSERT_TRUE(taken) << taken.error().message;
    EXPECT_EQ(*taken, 0u) << "no DHT peer: stored here only";
  }
  EXPECT_FALSE(advertise(node, "/daan/capability/one-too-many"));
  EXPECT_TRUE(advertise(node, std::string(kCapabilityNamespacePrefix) + "0"))
      << "one already advertised may be advertised again";
  EXPECT_EQ(discoveries[node]->advertised().size(), kMaxAdvertisedNamespaces);

  discoveries[node]->stop();
  auto stopped = advertise(node, "/daan/capability/late");
  ASSERT_FALSE(stopped);
  EXPECT_NE(stopped.error().message.find("stopped"), std::string::npos) << stopped.error().message;
  EXPECT_FALSE(discover(node, "/daan/capability/late", 0));
}

TEST_F(DaanDiscoveryTest, AdvertisementsAreRenewedAtTheDhtPeersByOneLoopUntilStop) {
  const auto provider = add_node(DhtMode::kClient);
  const auto server = add_node(DhtMode::kServer);
  DiscoveryConfig config = quiet_config();
  config.readvertise_interval = 1s;
  Discovery& discovery = add_discovery(provider, config);
  ASSERT_NO_FATAL_FAILURE(connect(provider, server));
  ASSERT_NO_FATAL_FAILURE(wait_for_dht_peers({provider}));

  auto taken = advertise(provider, std::string(kReverseNamespace));
  ASSERT_TRUE(taken) << taken.error().message;
  ASSERT_GE(*taken, 1u);
  const PeerId provider_id = peers[provider]->id();
  const auto first_expiry = provider_record_expiry(server, kReverseNamespace, provider_id);
  ASSERT_TRUE(first_expiry);

  // The server's record is renewed: it expires later than the first one did.
  ASSERT_TRUE(run_until(io, [&] {
    auto expiry = provider_record_expiry(server, kReverseNamespace, provider_id);
    return expiry && *expiry > *first_expiry;
  })) << "no renewal reached the DHT server";

  // Advertised again: still one loop, renewing once per interval. Two loops would make four
  // renewals within about two intervals; one loop needs more than three.
  ASSERT_TRUE(advertise(provider, std::string(kReverseNamespace)));
  EXPECT_EQ(discovery.advertised(), std::vector<std::string>{std::string(kReverseNamespace)});
  const std::size_t provides_before = discovery.stats().provides;
  const auto since = Clock::now();
  ASSERT_TRUE(run_until(io, [&] { return discovery.stats().provides >= provides_before + 4; }));
  EXPECT_GT(Clock::now() - since, 3 * config.readvertise_interval - 100ms);
  EXPECT_EQ(discovery.stats().unheard_provides, 0u);

  // Stopped: no more renewals.
  discovery.stop();
  run_pending(io);
  const std::size_t provides_at_stop = discovery.stats().provides;
  run_until(
      io, [] { return false; }, 1500ms);
  EXPECT_EQ(discovery.stats().provides, provides_at_stop);
}

}  // namespace
}  // namespace an::p2p::daan
