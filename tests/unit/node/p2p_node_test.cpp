// P2pNode keeps what the node needs in the Host's peer store: bootstrap peers and the relays it
// reserves on are pinned, so that the store's expiry and eviction never forget them. With DAAN
// discovery on, a node advertises the network namespace at its bootstrap peer by itself. With
// pubsub configured, two nodes carry a message.
#include "node/p2p_node.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <asio.hpp>
#include <chrono>
#include <memory>
#include <vector>

namespace an::node {
namespace {

p2p::PeerId random_peer_id() {
  auto key = p2p::PrivateKey::generate(p2p::KeyType::kEd25519);
  EXPECT_TRUE(key);
  return key->peer_id();
}

TEST(P2pNodeTest, BootstrapPeersAndKeptRelaysArePinnedInThePeerStore) {
  asio::io_context io;
  auto key = p2p::PrivateKey::generate(p2p::KeyType::kEd25519);
  ASSERT_TRUE(key);
  const p2p::PeerId self = key->peer_id();
  Identity identity{std::move(*key), self};
  const p2p::PeerId bootstrap = random_peer_id();
  const p2p::PeerId relay = random_peer_id();
  P2pConfig config;
  config.agent_version = "p2p-node-test";
  config.listen = {*p2p::Multiaddr::parse("/ip4/127.0.0.1/tcp/0")};
  // Nobody listens there: the dials fail, the pins stay.
  config.bootstrap = {*p2p::Multiaddr::parse("/ip4/127.0.0.1/tcp/1/p2p/" + bootstrap.to_string())};
  config.static_relays = {*p2p::Multiaddr::parse("/ip4/127.0.0.1/tcp/1/p2p/" + relay.to_string())};
  auto node = P2pNode::start(io, std::move(identity), config);
  ASSERT_TRUE(node) << node.error().message;
  auto& store = (*node)->host().peer_store();
  EXPECT_TRUE(store.is_pinned(bootstrap));
  EXPECT_TRUE(store.is_pinned(relay));
  store.expire(std::chrono::steady_clock::now() + std::chrono::hours(24));
  EXPECT_NE((*node)->host().peer_info(bootstrap), nullptr);
  EXPECT_NE((*node)->host().peer_info(relay), nullptr);
  (*node)->stop();
  io.run_for(std::chrono::milliseconds(50));
}

Identity fresh_identity() {
  auto key = p2p::PrivateKey::generate(p2p::KeyType::kEd25519);
  EXPECT_TRUE(key);
  const p2p::PeerId id = key->peer_id();
  return Identity{std::move(*key), id};
}

P2pConfig loopback_config() {
  P2pConfig config;
  config.agent_version = "p2p-node-test";
  config.listen = {*p2p::Multiaddr::parse("/ip4/127.0.0.1/tcp/0")};
  config.dht = p2p::kad::DhtMode::kServer;
  return config;
}

TEST(P2pNodeTest, DaanDiscoveryAdvertisesTheNetworkAtTheBootstrapPeer) {
  asio::io_context io;
  auto bootstrap = P2pNode::start(io, fresh_identity(), loopback_config());
  ASSERT_TRUE(bootstrap) << bootstrap.error().message;
  EXPECT_EQ((*bootstrap)->discovery(), nullptr) << "off unless configured";

  P2pConfig config = loopback_config();
  config.daan_discovery = p2p::daan::DiscoveryConfig{};
  std::vector<std::string> logged;
  config.log = [&logged](P2pLogLevel, const std::string& message) { logged.push_back(message); };
  const auto& bootstrap_host = (*bootstrap)->host();
  config.bootstrap = {
      bootstrap_host.listen_addresses().front().with_peer_id(bootstrap_host.peer_id())};
  auto node = P2pNode::start(io, fresh_identity(), config);
  ASSERT_TRUE(node) << node.error().message;
  ASSERT_NE((*node)->discovery(), nullptr);
  EXPECT_EQ((*node)->discovery()->advertised(),
            std::vector<std::string>{std::string(p2p::daan::kNetworkNamespace)});

  const p2p::Bytes key = p2p::daan::namespace_provider_key(p2p::daan::kNetworkNamespace);
  const p2p::PeerId advertiser = (*node)->host().peer_id();
  auto advertised_at_bootstrap = [&] {
    for (const auto& provider :
         (*bootstrap)->dht()->server().providers().get(key, std::chrono::system_clock::now())) {
      if (provider.id == advertiser) return true;
    }
    return false;
  };
  const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!advertised_at_bootstrap() && std::chrono::steady_clock::now() < limit)
    io.run_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(advertised_at_bootstrap());
  bool reported = false;
  for (const auto& line : logged)
    reported = reported || line.rfind("discovery: advertised /daan/1.0.0", 0) == 0;
  EXPECT_TRUE(reported) << "the node's log tells of the advertisement";

  // Without a DHT there is nothing to discover on.
  P2pConfig no_dht = loopback_config();
  no_dht.dht.reset();
  no_dht.daan_discovery = p2p::daan::DiscoveryConfig{};
  auto plain = P2pNode::start(io, fresh_identity(), no_dht);
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_EQ((*plain)->discovery(), nullptr);

  for (auto* stopping : {node->get(), bootstrap->get(), plain->get()})
    stopping->stop();
  io.run_for(std::chrono::milliseconds(50));
}

TEST(P2pNodeTest, PubSubIsBuiltWhenConfiguredAndCarriesMessages) {
  asio::io_context io;
  auto off = P2pNode::start(io, fresh_identity(), loopback_config());
  ASSERT_TRUE(off) << off.error().message;
  EXPECT_EQ((*off)->pubsub(), nullptr) << "off unless configured";

  P2pConfig config = loopback_config();
  config.pubsub = p2p::pubsub::PubSubConfig{};
  auto first = P2pNode::start(io, fresh_identity(), config);
  ASSERT_TRUE(first) << first.error().message;
  const auto& first_host = (*first)->host();
  config.bootstrap = {first_host.listen_addresses().front().with_peer_id(first_host.peer_id())};
  auto second = P2pNode::start(io, fresh_identity(), config);
  ASSERT_TRUE(second) << second.error().message;
  ASSERT_NE((*first)->pubsub(), nullptr);
  ASSERT_NE((*second)->pubsub(), nullptr);

  std::vector<p2p::Bytes> received;
  auto subscription = (*first)->pubsub()->subscribe(
      "news",
      [&](const p2p::pubsub::ReceivedMessage& message) { received.push_back(message.data); });
  ASSERT_TRUE(subscription) << subscription.error().message;
  auto run_until = [&](auto done) {
    const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done() && std::chrono::steady_clock::now() < limit)
      io.run_for(std::chrono::milliseconds(10));
    return done();
  };
  const p2p::PeerId first_id = first_host.peer_id();
  ASSERT_TRUE(run_until([&] {
    auto peers = (*second)->pubsub()->topic_peers("news");
    return std::find(peers.begin(), peers.end(), first_id) != peers.end();
  }));
  const p2p::Bytes hello = {'h', 'i'};
  ASSERT_TRUE((*second)->pubsub()->publish("news", hello));
  ASSERT_TRUE(run_until([&] { return !received.empty(); }));
  EXPECT_EQ(received, std::vector<p2p::Bytes>{hello});

  for (auto* stopping : {second->get(), first->get(), off->get()})
    stopping->stop();
  io.run_for(std::chrono::milliseconds(50));
}

}  // namespace
}  // namespace an::node
