#include "p2p/rcmgr/resource_manager.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "unit/p2p/kad/kad_test_peers.h"

namespace an::p2p::rcmgr {
namespace {

// Small limits everywhere, so that each test reaches the one it is about; scopes a test does
// not limit are unlimited.
LimitConfig small_limits() {
  LimitConfig config;
  config.system.conns_inbound = 4;
  config.system.conns = 6;
  config.system.fds = 5;
  config.system.streams = 20;
  config.system.memory = 1000;
  config.transient.conns_inbound = 2;
  config.transient.streams = 3;
  config.peer.conns = 2;
  config.peer.streams_inbound = 4;
  config.peer.memory = 600;
  config.connection.memory = 400;
  config.stream.memory = 300;
  config.protocol.streams_inbound = 3;
  config.protocol_peer.streams_inbound = 2;
  return config;
}

class ResourceManagerTest : public ::testing::Test {
 protected:
  std::mt19937_64 rng{7};
  PeerId alice = kad::test::random_peer(rng);
  PeerId bob = kad::test::random_peer(rng);
  ResourceManager::Clock::time_point now{};
  std::vector<RefusalReport> reports;

  static Usage usage_of(const Snapshot& snapshot, const std::string& name) {
    for (const auto& scope : snapshot.scopes) {
      if (scope.name == name) return scope.usage;
    }
    for (const auto& scope : snapshot.peers) {
      if (scope.name == name) return scope.usage;
    }
    return Usage{};
  }

  ConnectionScope connected(ResourceManager& manager, const PeerId& peer) {
    auto connection = manager.open_connection(Direction::kInbound, true, std::nullopt);
    EXPECT_TRUE(connection) << connection.error().message;
    EXPECT_TRUE(connection->set_peer(peer));
    return std::move(*connection);
  }
};

TEST_F(ResourceManagerTest, TransientConnectionsAreLimitedAndReleasedOnEveryPath) {
  ResourceManager manager(small_limits());
  std::vector<ConnectionScope> held;
  for (int i = 0; i < 2; ++i) {
    auto connection = manager.open_connection(Direction::kInbound, true, std::nullopt);
    ASSERT_TRUE(connection);
    held.push_back(std::move(*connection));
  }
  auto third = manager.open_connection(Direction::kInbound, true, std::nullopt);
  ASSERT_FALSE(third);
  EXPECT_EQ(manager.snapshot().refusals.at("transient.conns_inbound"), 1u);
  EXPECT_EQ(usage_of(manager.snapshot(), "transient").conns_inbound, 2);
  EXPECT_EQ(usage_of(manager.snapshot(), "system").fds, 2);
  // A handshake that fails: the handle goes, and so does everything it held.
  held.pop_back();
  EXPECT_EQ(usage_of(manager.snapshot(), "transient").conns_inbound, 1);
  EXPECT_EQ(usage_of(manager.snapshot(), "system").fds, 1);
  // An authenticated one leaves the transient scope for its peer's.
  ASSERT_TRUE(held.front().set_peer(alice));
  EXPECT_EQ(usage_of(manager.snapshot(), "transient").conns_inbound, 0);
  EXPECT_EQ(usage_of(manager.snapshot(), "peer:" + alice.to_string()).conns_inbound, 1);
  EXPECT_EQ(usage_of(manager.snapshot(), "system").conns_inbound, 1);
  held.clear();
  const auto snapshot = manager.snapshot();
  EXPECT_TRUE(usage_of(snapshot, "system").empty());
  EXPECT_EQ(snapshot.peer_count, 0u) << "a peer scope without holdings is forgotten";
}

TEST_F(ResourceManagerTest, PeerConnectionLimitRefusesAtSetPeer) {
  ResourceManager manager(small_limits());
  auto first = connected(manager, alice);
  auto second = connected(manager, alice);
  auto third = manager.open_connection(Direction::kInbound, true, std::nullopt);
  ASSERT_TRUE(third);
  auto refused = third->set_peer(alice);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("conns"), std::string::npos);
  EXPECT_EQ(manager.snapshot().refusals.at("peer.conns"), 1u);
  // Another peer is not affected.
  EXPECT_TRUE(third->set_peer(bob));
}

TEST_F(ResourceManagerTest, SystemLimitsCountBothDirectionsAndDescriptors) {
  auto config = small_limits();
  config.transient.conns_inbound = kUnlimited;
  config.peer.conns = kUnlimited;
  ResourceManager manager(config);
  std::vector<ConnectionScope> held;
  for (int i = 0; i < 4; ++i)
    held.push_back(connected(manager, alice));
  EXPECT_FALSE(manager.open_connection(Direction::kInbound, true, std::nullopt));
  EXPECT_EQ(manager.snapshot().refusals.at("system.conns_inbound"), 1u);
  // Outbound still fits the total (6) but not the descriptors (5).
  auto outbound = manager.open_connection(Direction::kOutbound, true, std::nullopt, bob);
  ASSERT_TRUE(outbound);
  EXPECT_FALSE(manager.open_connection(Direction::kOutbound, true, std::nullopt, bob));
  EXPECT_EQ(manager.snapshot().refusals.at("system.fds"), 1u);
  // A relayed connection uses no descriptor.
  auto relayed = manager.open_connection(Direction::kOutbound, false, std::nullopt, bob);
  ASSERT_TRUE(relayed);
  EXPECT_FALSE(manager.open_connection(Direction::kOutbound, false, std::nullopt, bob));
  EXPECT_EQ(manager.snapshot().refusals.at("system.conns"), 1u);
}

TEST_F(ResourceManagerTest, StreamsMoveFromTransientToTheirProtocol) {
  ResourceManager manager(small_limits());
  auto connection = connected(manager, alice);
  std::vector<StreamScope> streams;
  for (int i = 0; i < 3; ++i) {
    auto stream = connection.open_stream(Direction::kInbound);
    ASSERT_TRUE(stream);
    streams.push_back(std::move(*stream));
  }
  // Three streams still negotiating fill the transient scope.
  EXPECT_FALSE(connection.open_stream(Direction::kInbound));
  EXPECT_EQ(manager.snapshot().refusals.at("transient.streams"), 1u);
  ASSERT_TRUE(streams[0].set_protocol("/echo"));
  ASSERT_TRUE(streams[1].set_protocol("/echo"));
  // Two /echo streams with alice fill the protocol+peer scope.
  auto third = streams[2].set_protocol("/echo");
  ASSERT_FALSE(third);
  EXPECT_EQ(manager.snapshot().refusals.at("protocol_peer:/echo.streams_inbound"), 1u);
  EXPECT_EQ(usage_of(manager.snapshot(), "protocol:/echo").streams_inbound, 2);
  EXPECT_EQ(usage_of(manager.snapshot(), "transient").streams_inbound, 1);
  // Room in the transient scope again.
  EXPECT_TRUE(connection.open_stream(Direction::kInbound));
  streams.clear();
  const auto snapshot = manager.snapshot();
  EXPECT_EQ(usage_of(snapshot, "peer:" + alice.to_string()).streams_inbound, 0);
  for (const auto& scope : snapshot.scopes) {
    EXPECT_NE(scope.name, "protocol:/echo") << "an unused protocol scope is forgotten";
  }
}

TEST_F(ResourceManagerTest, PeerStreamLimit) {
  auto config = small_limits();
  config.transient.streams = kUnlimited;
  ResourceManager manager(config);
  auto connection = connected(manager, alice);
  std::vector<StreamScope> streams;
  for (int i = 0; i < 4; ++i)
    streams.push_back(std::move(*connection.open_stream(Direction::kInbound)));
  EXPECT_FALSE(connection.open_stream(Direction::kInbound));
  EXPECT_EQ(manager.snapshot().refusals.at("peer.streams_inbound"), 1u);
  // Outbound streams are limited separately (not here).
  EXPECT_TRUE(connection.open_stream(Direction::kOutbound));
}

TEST_F(ResourceManagerTest, MemoryIsCheckedAtEveryLevel) {
  ResourceManager manager(small_limits());
  auto connection = connected(manager, alice);
  auto stream = connection.open_stream(Direction::kInbound);
  ASSERT_TRUE(stream);
  // The stream's own limit (300).
  EXPECT_TRUE(stream->reserve_memory(300));
  EXPECT_FALSE(stream->reserve_memory(1));
  EXPECT_EQ(manager.snapshot().refusals.at("stream.memory"), 1u);
  // The connection's (400) and then the peer's (600: 300 + 300 from the connection).
  EXPECT_FALSE(connection.reserve_memory(401));
  EXPECT_TRUE(connection.reserve_memory(300));
  EXPECT_FALSE(connection.reserve_memory(1));
  EXPECT_EQ(manager.snapshot().refusals.at("peer.memory"), 1u);
  EXPECT_EQ(usage_of(manager.snapshot(), "system").memory, 600);
  stream->release_memory(1000);  // more than held: releases what it holds
  connection.release_memory(100);
  EXPECT_EQ(usage_of(manager.snapshot(), "system").memory, 200);
  // Memory moves with the stream when its protocol is set.
  ASSERT_TRUE(stream->reserve_memory(50));
  ASSERT_TRUE(stream->set_protocol("/big"));
  EXPECT_EQ(usage_of(manager.snapshot(), "protocol:/big").memory, 50);
}

TEST_F(ResourceManagerTest, ProtocolMemoryReservationsAreReleasedWhenDestroyed) {
  auto config = small_limits();
  config.protocols["/ipfs/kad/1.0.0"].memory = 100;
  ResourceManager manager(config);
  {
    auto records = manager.protocol_memory("/ipfs/kad/1.0.0");
    EXPECT_TRUE(records.reserve(60));
    EXPECT_FALSE(records.reserve(41));
    EXPECT_EQ(manager.snapshot().refusals.at("protocol:/ipfs/kad/1.0.0.memory"), 1u);
    records.release(10);
    EXPECT_TRUE(records.reserve(50));
    EXPECT_EQ(records.reserved(), 100);
  }
  EXPECT_TRUE(usage_of(manager.snapshot(), "system").empty());
}

TEST_F(ResourceManagerTest, AllowedAddressesAndPeersUseTheAllowlistedScopesWhenFull) {
  auto config = small_limits();
  config.allowed_networks.push_back(*IpPrefix::parse("10.1.0.0/16"));
  config.allowed_peers.push_back(bob.to_string());
  ResourceManager manager(config);
  std::vector<ConnectionScope> held;
  for (int i = 0; i < 2; ++i) {
    held.push_back(std::move(*manager.open_connection(Direction::kInbound, true, std::nullopt)));
  }
  EXPECT_FALSE(
      manager.open_connection(Direction::kInbound, true, IpAddress::parse("10.2.0.1").value()));
  auto allowed =
      manager.open_connection(Direction::kInbound, true, IpAddress::parse("10.1.2.3").value());
  ASSERT_TRUE(allowed);
  EXPECT_TRUE(allowed->allowlisted());
  EXPECT_EQ(usage_of(manager.snapshot(), "allowlisted_transient").conns_inbound, 1);
  // An outbound dial to an allowed peer too.
  EXPECT_TRUE(manager.is_allowed(bob));
  EXPECT_FALSE(manager.is_allowed(alice));
  manager.allow_peer(alice);
  EXPECT_TRUE(manager.is_allowed(alice));
}

TEST_F(ResourceManagerTest, RefusalsAreReportedOncePerIntervalWithTheCount) {
  auto config = small_limits();
  config.transient.conns_inbound = 0;
  ResourceManager manager(config, [this] { return now; });
  manager.on_refusal([this](const RefusalReport& report) { reports.push_back(report); });
  for (int i = 0; i < 50; ++i) {
    EXPECT_FALSE(manager.open_connection(Direction::kInbound, true, std::nullopt));
  }
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].key, "transient.conns_inbound");
  EXPECT_EQ(reports[0].count, 1u);
  now += kRefusalReportInterval;
  EXPECT_FALSE(manager.open_connection(Direction::kInbound, true, std::nullopt));
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[1].count, 50u) << "the 49 refused meanwhile, and this one";
  EXPECT_EQ(manager.snapshot().refusals.at("transient.conns_inbound"), 51u);
}

TEST_F(ResourceManagerTest, HandlesMayOutliveTheManager) {
  std::optional<ConnectionScope> connection;
  std::optional<StreamScope> stream;
  {
    ResourceManager manager(small_limits());
    connection = connected(manager, alice);
    auto opened = connection->open_stream(Direction::kOutbound);
    ASSERT_TRUE(opened);
    stream = std::move(*opened);
    ASSERT_TRUE(stream->reserve_memory(10));
  }
  EXPECT_TRUE(stream->reserve_memory(10));
  stream.reset();
  connection.reset();  // nothing to check but that nothing crashes (ASan runs this)
}

TEST_F(ResourceManagerTest, SnapshotListsTheBusiestPeersFirst) {
  ResourceManager manager(small_limits());
  auto a = connected(manager, alice);
  auto b = connected(manager, bob);
  ASSERT_TRUE(b.reserve_memory(100));
  ASSERT_TRUE(a.reserve_memory(10));
  const auto snapshot = manager.snapshot(1);
  EXPECT_EQ(snapshot.peer_count, 2u);
  ASSERT_EQ(snapshot.peers.size(), 1u);
  EXPECT_EQ(snapshot.peers[0].name, "peer:" + bob.to_string());
}

}  // namespace
}  // namespace an::p2p::rcmgr
