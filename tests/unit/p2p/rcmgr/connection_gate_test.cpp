#include "p2p/rcmgr/connection_gate.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

namespace an::p2p::rcmgr {
namespace {

IpAddress ip(const char* text) {
  return IpAddress::parse(text).value();
}

class ConnectionGateTest : public ::testing::Test {
 protected:
  ConnectionGate::Clock::time_point now{std::chrono::hours(1)};

  static GateConfig config() {
    GateConfig gate;
    gate.handshakes_per_ip = 3;
    gate.handshakes_per_ipv4_subnet = 5;
    gate.handshakes_per_ipv6_subnet = 5;
    gate.handshakes_total = 8;
    gate.conns_per_ip = 2;
    gate.rate_per_ip = 1;
    gate.burst_per_ip = 4;
    gate.rate_per_subnet = 2;
    gate.burst_per_subnet = 100;
    return gate;
  }
};

TEST_F(ConnectionGateTest, HandshakesPerAddressApplyToLoopbackToo) {
  ConnectionGate gate(config(), {});
  std::vector<ConnectionGate::HandshakeId> held;
  for (int i = 0; i < 3; ++i) {
    auto admission = gate.admit(ip("127.0.0.2"), now);
    ASSERT_TRUE(admission.accepted);
    EXPECT_FALSE(admission.evict);
    held.push_back(admission.id);
  }
  auto refused = gate.admit(ip("127.0.0.2"), now);
  EXPECT_FALSE(refused.accepted);
  EXPECT_EQ(refused.refused_because, "handshakes_per_ip");
  // Another address is not kept out.
  EXPECT_TRUE(gate.admit(ip("127.0.0.1"), now).accepted);
  gate.handshake_finished(held[0], false);
  EXPECT_TRUE(gate.admit(ip("127.0.0.2"), now).accepted);
}

TEST_F(ConnectionGateTest, AFullSubnetMakesTheBusiestAddressGiveWayToAnother) {
  ConnectionGate gate(config(), {});
  std::vector<ConnectionGate::HandshakeId> attacker;
  for (int i = 0; i < 3; ++i)
    attacker.push_back(gate.admit(ip("127.0.0.2"), now).id);
  ASSERT_TRUE(gate.admit(ip("127.0.0.3"), now).accepted);
  ASSERT_TRUE(gate.admit(ip("127.0.0.4"), now).accepted);
  // 127.0.0.0/24 holds 5: a newcomer evicts the oldest handshake of the busiest address.
  auto honest = gate.admit(ip("127.0.0.1"), now);
  ASSERT_TRUE(honest.accepted);
  ASSERT_TRUE(honest.evict);
  EXPECT_EQ(*honest.evict, attacker[0]);
  EXPECT_EQ(gate.handshakes_in_flight(), 5u);
  // The evicted handshake reported later is ignored.
  gate.handshake_finished(attacker[0], false);
  EXPECT_EQ(gate.handshakes_in_flight(), 5u);
}

TEST_F(ConnectionGateTest, TheBusiestAddressCannotEvictItsOwnOrAnEqual) {
  ConnectionGate gate(config(), {});
  for (int i = 0; i < 2; ++i)
    ASSERT_TRUE(gate.admit(ip("10.0.0.1"), now).accepted);
  for (int i = 0; i < 2; ++i)
    ASSERT_TRUE(gate.admit(ip("10.0.0.2"), now).accepted);
  ASSERT_TRUE(gate.admit(ip("10.0.0.3"), now).accepted);
  // The subnet is full; a third handshake from .1 would only replace one of .1's or .2's
  // equals: refused.
  auto refused = gate.admit(ip("10.0.0.1"), now);
  EXPECT_FALSE(refused.accepted);
  EXPECT_EQ(refused.refused_because, "handshakes_per_subnet");
}

TEST_F(ConnectionGateTest, AFullTotalEvictsAcrossSubnets) {
  ConnectionGate gate(config(), {});
  std::set<ConnectionGate::HandshakeId> from_a;
  for (int i = 0; i < 3; ++i)
    from_a.insert(gate.admit(ip("10.0.1.1"), now).id);
  for (const char* address : {"10.0.2.1", "10.0.3.1", "10.0.4.1", "10.0.5.1", "10.0.6.1"}) {
    ASSERT_TRUE(gate.admit(ip(address), now).accepted);
  }
  ASSERT_EQ(gate.handshakes_in_flight(), 8u);
  auto admission = gate.admit(ip("10.0.7.1"), now);
  ASSERT_TRUE(admission.accepted);
  ASSERT_TRUE(admission.evict);
  EXPECT_TRUE(from_a.count(*admission.evict));
}

TEST_F(ConnectionGateTest, NewConnectionsAreRateLimitedPerAddressButNotOnLoopback) {
  auto gate_config = config();
  gate_config.handshakes_per_ip = 100;
  gate_config.handshakes_per_ipv4_subnet = 100;
  gate_config.handshakes_total = 100;
  gate_config.conns_per_ip = 100;
  ConnectionGate gate(gate_config, {});
  for (int i = 0; i < 4; ++i) {
    auto admission = gate.admit(ip("192.0.2.7"), now);
    ASSERT_TRUE(admission.accepted);
    gate.handshake_finished(admission.id, false);
  }
  auto refused = gate.admit(ip("192.0.2.7"), now);
  EXPECT_FALSE(refused.accepted);
  EXPECT_EQ(refused.refused_because, "rate");
  now += std::chrono::seconds(1);  // one token back
  EXPECT_TRUE(gate.admit(ip("192.0.2.7"), now).accepted);
  for (int i = 0; i < 50; ++i) {
    auto admission = gate.admit(ip("127.0.0.9"), now);
    ASSERT_TRUE(admission.accepted) << i;
    gate.handshake_finished(admission.id, false);
  }
}

TEST_F(ConnectionGateTest, EstablishedConnectionsPerAddressExceptLoopback) {
  ConnectionGate gate(config(), {});
  for (int i = 0; i < 2; ++i)
    gate.handshake_finished(gate.admit(ip("192.0.2.8"), now).id, true);
  EXPECT_EQ(gate.established_from(ip("192.0.2.8")), 2u);
  auto refused = gate.admit(ip("192.0.2.8"), now);
  EXPECT_EQ(refused.refused_because, "conns_per_ip");
  gate.connection_closed(ip("192.0.2.8"));
  EXPECT_TRUE(gate.admit(ip("192.0.2.8"), now).accepted);
  for (int i = 0; i < 5; ++i)
    gate.handshake_finished(gate.admit(ip("127.0.0.1"), now).id, true);
  EXPECT_TRUE(gate.admit(ip("127.0.0.1"), now).accepted);
}

TEST_F(ConnectionGateTest, Ipv6AddressesAreGroupedByTheirSite) {
  ConnectionGate gate(config(), {});
  // Three addresses of one /56 count as one address.
  ASSERT_TRUE(gate.admit(ip("2001:db8:0:1::1"), now).accepted);
  ASSERT_TRUE(gate.admit(ip("2001:db8:0:2::1"), now).accepted);
  ASSERT_TRUE(gate.admit(ip("2001:db8:0:3::1"), now).accepted);
  EXPECT_EQ(gate.admit(ip("2001:db8:0:4::1"), now).refused_because, "handshakes_per_ip");
  EXPECT_TRUE(gate.admit(ip("2001:db8:1::1"), now).accepted);
  // An IPv4-mapped address is its IPv4 peer.
  auto mapped = IpAddress::from_multiaddr(*Multiaddr::parse("/ip6/::ffff:10.9.9.9/tcp/1"));
  ASSERT_TRUE(mapped);
  EXPECT_TRUE(mapped->v4);
  EXPECT_EQ(mapped->to_string(), "10.9.9.9");
}

TEST_F(ConnectionGateTest, AllowedNetworksPassEveryCheck) {
  ConnectionGate gate(config(), {*IpPrefix::parse("192.0.2.0/24")});
  for (int i = 0; i < 20; ++i)
    EXPECT_TRUE(gate.admit(ip("192.0.2.1"), now).accepted);
}

TEST(IpTest, PrefixesAndLoopback) {
  auto prefix = IpPrefix::parse("10.1.2.3/16");
  ASSERT_TRUE(prefix);
  EXPECT_EQ(prefix->to_string(), "10.1.0.0/16");
  EXPECT_TRUE(prefix->contains(ip("10.1.200.1")));
  EXPECT_FALSE(prefix->contains(ip("10.2.0.1")));
  EXPECT_FALSE(prefix->contains(ip("::1")));
  EXPECT_TRUE(ip("127.5.5.5").is_loopback());
  EXPECT_TRUE(ip("::1").is_loopback());
  EXPECT_FALSE(ip("::2").is_loopback());
  EXPECT_FALSE(IpPrefix::parse("10.0.0.0/33"));
  EXPECT_FALSE(IpPrefix::parse("10.0.0/8"));
  EXPECT_FALSE(IpPrefix::parse("not an address"));
  EXPECT_EQ(IpPrefix::parse("2001:db8::1")->length, 128);
}

}  // namespace
}  // namespace an::p2p::rcmgr
