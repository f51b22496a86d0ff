#include "p2p/connmgr/connection_manager.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "p2p/crypto/ed25519.h"

namespace an::p2p::connmgr {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

PeerId random_peer() {
  auto key = Ed25519PrivateKey::generate();
  EXPECT_TRUE(key);
  return PeerId::from_public_key(key->public_key());
}

std::vector<PeerId> random_peers(std::size_t count) {
  std::vector<PeerId> peers;
  for (std::size_t i = 0; i < count; ++i)
    peers.push_back(random_peer());
  return peers;
}

Limits small_limits() {
  Limits limits;
  limits.low_water = 3;
  limits.high_water = 5;
  limits.grace_period = seconds(20);
  limits.silence_period = seconds(10);
  return limits;
}

bool contains(const std::vector<PeerId>& peers, const PeerId& peer) {
  return std::find(peers.begin(), peers.end(), peer) != peers.end();
}

const Clock::time_point kStart = Clock::time_point() + std::chrono::hours(1);

TEST(ConnectionManagerTest, NothingIsTrimmedUpToTheHighWaterMark) {
  ConnectionManager manager(small_limits());
  for (const auto& peer : random_peers(5))
    manager.connected(peer, PeerDirection::kInbound, kStart);
  EXPECT_TRUE(manager.select_for_trim(kStart + seconds(60)).empty());
  EXPECT_EQ(manager.peer_count(), 5u);
}

TEST(ConnectionManagerTest, AboveTheHighWaterMarkTrimsDownToTheLowWaterMark) {
  ConnectionManager manager(small_limits());
  auto peers = random_peers(8);
  for (const auto& peer : peers)
    manager.connected(peer, PeerDirection::kInbound, kStart);
  auto trimmed = manager.select_for_trim(kStart + seconds(60));
  EXPECT_EQ(trimmed.size(), 5u);  // 8 - low water 3
  for (const auto& peer : trimmed)
    EXPECT_TRUE(contains(peers, peer));
}

TEST(ConnectionManagerTest, PeersInTheirGracePeriodAreKept) {
  ConnectionManager manager(small_limits());
  auto old_peers = random_peers(4);
  auto new_peers = random_peers(4);
  for (const auto& peer : old_peers)
    manager.connected(peer, PeerDirection::kInbound, kStart);
  for (const auto& peer : new_peers)
    manager.connected(peer, PeerDirection::kInbound, kStart + seconds(50));
  auto trimmed = manager.select_for_trim(kStart + seconds(60));
  // Five would have to go, but only the four old peers are out of their grace period.
  EXPECT_EQ(trimmed.size(), 4u);
  for (const auto& peer : new_peers)
    EXPECT_FALSE(contains(trimmed, peer));
}

TEST(ConnectionManagerTest, ProtectedPeersAreNeverTrimmedEvenAfterReconnecting) {
  ConnectionManager manager(small_limits());
  auto peers = random_peers(8);
  manager.protect(peers[0], "bootstrap");
  manager.protect(peers[1], "relay");
  manager.protect(peers[1], "bootstrap");
  EXPECT_TRUE(manager.unprotect(peers[1], "relay"));  // still protected as a bootstrap peer
  for (const auto& peer : peers)
    manager.connected(peer, PeerDirection::kInbound, kStart);
  manager.disconnected(peers[0]);
  manager.connected(peers[0], PeerDirection::kOutbound, kStart);
  auto trimmed = manager.select_for_trim(kStart + seconds(60));
  EXPECT_EQ(trimmed.size(), 5u);
  EXPECT_FALSE(contains(trimmed, peers[0]));
  EXPECT_FALSE(contains(trimmed, peers[1]));
  EXPECT_FALSE(manager.unprotect(peers[1], "bootstrap"));
  EXPECT_FALSE(manager.is_protected(peers[1]));
}

TEST(ConnectionManagerTest, WhenEveryoneMustBeKeptNothingIsTrimmed) {
  ConnectionManager manager(small_limits());
  for (const auto& peer : random_peers(8)) {
    manager.protect(peer, "bootstrap");
    manager.connected(peer, PeerDirection::kInbound, kStart);
  }
  EXPECT_TRUE(manager.select_for_trim(kStart + seconds(60)).empty());
}

TEST(ConnectionManagerTest, InboundAndLowValuePeersGoFirst) {
  Limits limits = small_limits();
  limits.low_water = 4;
  limits.high_water = 5;
  ConnectionManager manager(limits);
  auto outbound = random_peers(3);
  auto inbound_valuable = random_peer();
  auto inbound_plain = random_peers(2);
  for (const auto& peer : outbound)
    manager.connected(peer, PeerDirection::kOutbound, kStart);
  manager.connected(inbound_valuable, PeerDirection::kInbound, kStart);
  manager.set_tag(inbound_valuable, "kad", 10);
  EXPECT_EQ(manager.value_of(inbound_valuable), 10);
  for (const auto& peer : inbound_plain)
    manager.connected(peer, PeerDirection::kInbound, kStart);
  // 6 peers, low water 4: the two plain inbound peers go; the tagged inbound and the outbound
  // peers stay.
  auto trimmed = manager.select_for_trim(kStart + seconds(60));
  ASSERT_EQ(trimmed.size(), 2u);
  EXPECT_TRUE(contains(trimmed, inbound_plain[0]));
  EXPECT_TRUE(contains(trimmed, inbound_plain[1]));
}

TEST(ConnectionManagerTest, NewerPeersGoBeforeOlderOnes) {
  Limits limits = small_limits();
  limits.low_water = 5;
  limits.high_water = 5;
  ConnectionManager manager(limits);
  auto peers = random_peers(6);
  for (std::size_t i = 0; i < peers.size(); ++i)
    manager.connected(peers[i], PeerDirection::kInbound, kStart + seconds(i));
  auto trimmed = manager.select_for_trim(kStart + seconds(120));
  ASSERT_EQ(trimmed.size(), 1u);
  EXPECT_EQ(trimmed[0], peers.back());
}

TEST(ConnectionManagerTest, TheSilencePeriodSpacesTrims) {
  ConnectionManager manager(small_limits());
  for (const auto& peer : random_peers(8))
    manager.connected(peer, PeerDirection::kInbound, kStart);
  auto first = manager.select_for_trim(kStart + seconds(60));
  ASSERT_FALSE(first.empty());
  for (const auto& peer : first)
    manager.disconnected(peer);
  for (const auto& peer : random_peers(5))
    manager.connected(peer, PeerDirection::kInbound, kStart);
  EXPECT_TRUE(manager.select_for_trim(kStart + seconds(65)).empty());
  EXPECT_EQ(manager.select_for_trim(kStart + seconds(71)).size(), 5u);
}

TEST(ConnectionManagerTest, DisconnectDropsValueTagsButKeepsProtection) {
  ConnectionManager manager(small_limits());
  auto peer = random_peer();
  manager.connected(peer, PeerDirection::kInbound, kStart);
  manager.set_tag(peer, "kad", 5);
  manager.protect(peer, "relay");
  manager.disconnected(peer);
  EXPECT_EQ(manager.value_of(peer), 0);
  EXPECT_TRUE(manager.is_protected(peer));
  EXPECT_EQ(manager.peer_count(), 0u);
}

TEST(ConnectionManagerTest, TagsOfPeersThatNeverConnectArePrunedBeyondTheCap) {
  ConnectionManager manager(small_limits());
  const auto connected = random_peer();
  manager.connected(connected, PeerDirection::kOutbound, kStart);
  manager.set_tag(connected, "kad", 7);
  // Early tags are kept for a peer that connects later...
  const auto early = random_peer();
  manager.set_tag(early, "relay-reservation", 10);
  EXPECT_EQ(manager.value_of(early), 10);
  // ...but strangers that never come cannot grow them without end.
  for (std::size_t i = 0; i < kMaxEarlyTaggedPeers + 10; ++i)
    manager.set_tag(random_peer(), "p2pd", 1);
  EXPECT_EQ(manager.value_of(early), 0);
  EXPECT_EQ(manager.value_of(connected), 7);
}

}  // namespace
}  // namespace an::p2p::connmgr
