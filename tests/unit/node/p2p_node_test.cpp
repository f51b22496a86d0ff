// P2pNode keeps what the node needs in the Host's peer store: bootstrap peers and the relays it
// reserves on are pinned, so that the store's expiry and eviction never forget them.
#include "node/p2p_node.h"

#include <gtest/gtest.h>

#include <asio.hpp>

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

}  // namespace
}  // namespace an::node
