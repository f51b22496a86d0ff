// The hop service's admission policy: every limit refuses with the status go-libp2p answers,
// expiry frees slots, refreshes do not count twice, circuits count until released.
#include "p2p/relay/resources.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace an::p2p::relay {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

PeerId peer(std::uint32_t n) {
  Bytes seed(kEd25519SeedSize, 0);
  seed[0] = static_cast<std::uint8_t>(n);
  seed[1] = static_cast<std::uint8_t>(n >> 8);
  auto key = Ed25519PrivateKey::from_seed(seed);
  EXPECT_TRUE(key.has_value());
  return PeerId::from_public_key(key->public_key());
}

Multiaddr address(const std::string& text) {
  auto parsed = Multiaddr::parse(text);
  EXPECT_TRUE(parsed.has_value()) << text;
  return parsed ? *parsed : Multiaddr();
}

Multiaddr from_ip(int n) {
  return address("/ip4/10.0." + std::to_string(n / 256) + "." + std::to_string(n % 256) +
                 "/tcp/4001");
}

const TimePoint kStart = TimePoint(seconds(1'700'000'000));

TEST(RelayResources, DefaultsAreGoLibp2ps) {
  const RelayLimits limits;
  EXPECT_EQ(limits.reservation_ttl, hours(1));
  EXPECT_EQ(limits.max_reservations, 128u);
  EXPECT_EQ(limits.max_reservations_per_ip, 8u);
  EXPECT_EQ(limits.max_circuits_per_peer, 16u);
  EXPECT_EQ(limits.max_circuits, 128u);
  ASSERT_TRUE(limits.circuit_limit.has_value());
  EXPECT_EQ(limits.circuit_limit->duration, minutes(2));
  EXPECT_EQ(limits.circuit_limit->data_bytes, 131072u);
  EXPECT_EQ(limits.buffer_size, 2048u);
  const auto wire = to_wire_limit(limits.circuit_limit);
  ASSERT_TRUE(wire.has_value());
  EXPECT_EQ(wire->duration_seconds, 120u);
  EXPECT_EQ(wire->data_bytes, 131072u);
  EXPECT_FALSE(to_wire_limit(std::nullopt).has_value());
}

TEST(RelayResources, ReserveGrantsTtlAndLimit) {
  RelayResources relay;
  const auto decision = relay.reserve(peer(1), from_ip(1), kStart + std::chrono::milliseconds(900));
  ASSERT_EQ(decision.status, Status::kOk);
  EXPECT_FALSE(decision.refreshed);
  EXPECT_EQ(decision.expires, kStart + std::chrono::milliseconds(900) + hours(1));
  EXPECT_EQ(decision.expire_unix, 1'700'000'000u + 3600u);  // truncated to the second
  ASSERT_TRUE(decision.limit.has_value());
  EXPECT_EQ(decision.limit->duration_seconds, 120u);
  EXPECT_TRUE(relay.has_reservation(peer(1), kStart));
  EXPECT_FALSE(relay.has_reservation(peer(2), kStart));
}

TEST(RelayResources, UnlimitedCircuitsSendNoLimit) {
  RelayLimits limits;
  limits.circuit_limit.reset();
  RelayResources relay(limits);
  EXPECT_FALSE(relay.reserve(peer(1), from_ip(1), kStart).limit.has_value());
  EXPECT_FALSE(relay.connect(peer(2), from_ip(2), peer(1), kStart).limit.has_value());
}

TEST(RelayResources, RelayedConnectionsAreDenied) {
  RelayResources relay;
  const auto relayed = address("/ip4/1.2.3.4/tcp/1/p2p/" + peer(9).to_base58() + "/p2p-circuit");
  EXPECT_EQ(relay.reserve(peer(1), relayed, kStart).status, Status::kPermissionDenied);
  EXPECT_EQ(relay.reservation_count(), 0u);
  ASSERT_EQ(relay.reserve(peer(1), from_ip(1), kStart).status, Status::kOk);
  EXPECT_EQ(relay.connect(peer(2), relayed, peer(1), kStart).status, Status::kPermissionDenied);
  EXPECT_EQ(relay.circuit_count(), 0u);
}

TEST(RelayResources, NoIpIsRefused) {
  RelayResources relay;
  EXPECT_EQ(relay.reserve(peer(1), address("/dns4/example.com/tcp/1"), kStart).status,
            Status::kReservationRefused);
  EXPECT_EQ(relay.reserve(peer(1), Multiaddr(), kStart).status, Status::kReservationRefused);
}

TEST(RelayResources, TotalCapRefusesAndExpiryFreesSlots) {
  RelayLimits limits;
  limits.max_reservations = 3;
  RelayResources relay(limits);
  for (std::uint32_t n = 1; n <= 3; ++n) {
    ASSERT_EQ(relay.reserve(peer(n), from_ip(static_cast<int>(n)), kStart).status, Status::kOk);
  }
  EXPECT_EQ(relay.reserve(peer(4), from_ip(4), kStart + minutes(1)).status,
            Status::kReservationRefused);
  EXPECT_EQ(relay.reservation_count(), 3u);
  // At their end they still hold; one second later they are gone and the slot is free.
  EXPECT_EQ(relay.reserve(peer(4), from_ip(4), kStart + hours(1)).status,
            Status::kReservationRefused);
  const auto after = relay.reserve(peer(4), from_ip(4), kStart + hours(1) + seconds(1));
  EXPECT_EQ(after.status, Status::kOk);
  EXPECT_EQ(after.swept.size(), 3u);  // the caller learns whose reservations ended
  EXPECT_EQ(relay.reservation_count(), 1u);
}

TEST(RelayResources, PerIpCapRefuses) {
  RelayLimits limits;
  limits.max_reservations_per_ip = 2;
  RelayResources relay(limits);
  const auto shared = address("/ip4/192.0.2.1/tcp/1000");
  const auto shared_other_port = address("/ip4/192.0.2.1/tcp/2000");
  ASSERT_EQ(relay.reserve(peer(1), shared, kStart).status, Status::kOk);
  ASSERT_EQ(relay.reserve(peer(2), shared_other_port, kStart).status, Status::kOk);
  EXPECT_EQ(relay.reserve(peer(3), shared, kStart).status, Status::kReservationRefused);
  EXPECT_EQ(relay.reservations_from_ip("192.0.2.1"), 2u);
  // Another address is fine; IPv6 addresses count on their own.
  EXPECT_EQ(relay.reserve(peer(3), address("/ip6/2001:db8::1/tcp/1"), kStart).status, Status::kOk);
  EXPECT_EQ(relay.reservations_from_ip("2001:db8::1"), 1u);
  // A reservation that ends frees its IP slot.
  relay.remove_reservation(peer(1));
  EXPECT_EQ(relay.reservations_from_ip("192.0.2.1"), 1u);
  EXPECT_EQ(relay.reserve(peer(4), shared, kStart).status, Status::kOk);
}

TEST(RelayResources, RefreshDoesNotDoubleCount) {
  RelayLimits limits;
  limits.max_reservations = 1;
  limits.max_reservations_per_ip = 1;
  RelayResources relay(limits);
  ASSERT_EQ(relay.reserve(peer(1), from_ip(1), kStart).status, Status::kOk);
  const auto refreshed = relay.reserve(peer(1), from_ip(1), kStart + minutes(30));
  ASSERT_EQ(refreshed.status, Status::kOk);
  EXPECT_TRUE(refreshed.refreshed);
  EXPECT_EQ(refreshed.expires, kStart + minutes(90));
  EXPECT_EQ(relay.reservation_count(), 1u);
  EXPECT_EQ(relay.reservations_from_ip("10.0.0.1"), 1u);
  // The refresh moved the end: still valid after the first hour.
  EXPECT_TRUE(relay.has_reservation(peer(1), kStart + minutes(80)));
  EXPECT_TRUE(relay.expire(kStart + minutes(80)).empty());
  // Refreshing from another IP moves the count.
  ASSERT_EQ(relay.reserve(peer(1), from_ip(2), kStart + minutes(31)).status, Status::kOk);
  EXPECT_EQ(relay.reservations_from_ip("10.0.0.1"), 0u);
  EXPECT_EQ(relay.reservations_from_ip("10.0.0.2"), 1u);
}

TEST(RelayResources, RefusedRefreshKeepsTheReservation) {
  RelayLimits limits;
  limits.max_reservations_per_ip = 1;
  RelayResources relay(limits);
  ASSERT_EQ(relay.reserve(peer(1), from_ip(1), kStart).status, Status::kOk);
  ASSERT_EQ(relay.reserve(peer(2), from_ip(2), kStart).status, Status::kOk);
  // peer 1 refreshes from peer 2's IP, which is full: refused, and its old reservation stays.
  EXPECT_EQ(relay.reserve(peer(1), from_ip(2), kStart + minutes(1)).status,
            Status::kReservationRefused);
  EXPECT_TRUE(relay.has_reservation(peer(1), kStart + minutes(59)));
  EXPECT_EQ(relay.reservations_from_ip("10.0.0.1"), 1u);
}

TEST(RelayResources, ExpireSweepReturnsPeers) {
  RelayResources relay;
  ASSERT_EQ(relay.reserve(peer(1), from_ip(1), kStart).status, Status::kOk);
  ASSERT_EQ(relay.reserve(peer(2), from_ip(1), kStart + minutes(10)).status, Status::kOk);
  EXPECT_TRUE(relay.expire(kStart + hours(1)).empty());
  const auto expired = relay.expire(kStart + hours(1) + seconds(1));
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0], peer(1));
  EXPECT_EQ(relay.reservation_count(), 1u);
  EXPECT_EQ(relay.reservations_from_ip("10.0.0.1"), 1u);
  EXPECT_FALSE(relay.has_reservation(peer(1), kStart + hours(1) + seconds(1)));
}

TEST(RelayResources, ConnectNeedsALiveReservation) {
  RelayResources relay;
  EXPECT_EQ(relay.connect(peer(2), from_ip(2), peer(1), kStart).status, Status::kNoReservation);
  ASSERT_EQ(relay.reserve(peer(1), from_ip(1), kStart).status, Status::kOk);
  const auto admitted = relay.connect(peer(2), from_ip(2), peer(1), kStart + minutes(5));
  ASSERT_EQ(admitted.status, Status::kOk);
  ASSERT_TRUE(admitted.limit.has_value());
  EXPECT_EQ(admitted.limit->data_bytes, 131072u);
  // Expired (not yet swept) is no reservation; so is one removed on disconnect.
  EXPECT_EQ(relay.connect(peer(2), from_ip(2), peer(1), kStart + hours(2)).status,
            Status::kNoReservation);
  relay.remove_reservation(peer(1));
  EXPECT_EQ(relay.connect(peer(2), from_ip(2), peer(1), kStart).status, Status::kNoReservation);
  // The circuit admitted earlier still counts until released.
  EXPECT_EQ(relay.circuit_count(), 1u);
  relay.release(admitted.id);
  EXPECT_EQ(relay.circuit_count(), 0u);
}

TEST(RelayResources, PerPeerCircuitCaps) {
  RelayLimits limits;
  limits.max_circuits_per_peer = 2;
  RelayResources relay(limits);
  for (std::uint32_t n = 1; n <= 3; ++n) {
    ASSERT_EQ(relay.reserve(peer(n), from_ip(static_cast<int>(n)), kStart).status, Status::kOk);
  }
  // Target cap: peer 1 already receives two circuits.
  std::vector<CircuitId> to_one;
  for (std::uint32_t source = 10; source < 12; ++source) {
    const auto decision = relay.connect(peer(source), from_ip(20), peer(1), kStart);
    ASSERT_EQ(decision.status, Status::kOk);
    to_one.push_back(decision.id);
  }
  EXPECT_EQ(relay.connect(peer(12), from_ip(20), peer(1), kStart).status,
            Status::kResourceLimitExceeded);
  EXPECT_EQ(relay.circuits_of(peer(1)), 2u);
  // Source cap: peer 10 opens one more (to peer 2), then is at its cap for peer 3.
  ASSERT_EQ(relay.connect(peer(10), from_ip(20), peer(2), kStart).status, Status::kOk);
  EXPECT_EQ(relay.connect(peer(10), from_ip(20), peer(3), kStart).status,
            Status::kResourceLimitExceeded);
  // Releasing frees the slot, and a second release of the same id changes nothing.
  relay.release(to_one[0]);
  relay.release(to_one[0]);
  EXPECT_EQ(relay.circuits_of(peer(1)), 1u);
  EXPECT_EQ(relay.circuits_of(peer(10)), 1u);
  EXPECT_EQ(relay.connect(peer(12), from_ip(20), peer(1), kStart).status, Status::kOk);
  EXPECT_EQ(relay.connect(peer(10), from_ip(20), peer(3), kStart).status, Status::kOk);
}

TEST(RelayResources, TotalCircuitCap) {
  RelayLimits limits;
  limits.max_circuits = 3;
  RelayResources relay(limits);
  ASSERT_EQ(relay.reserve(peer(1), from_ip(1), kStart).status, Status::kOk);
  std::vector<CircuitId> ids;
  for (std::uint32_t source = 10; source < 13; ++source) {
    const auto decision = relay.connect(peer(source), from_ip(2), peer(1), kStart);
    ASSERT_EQ(decision.status, Status::kOk);
    ids.push_back(decision.id);
  }
  EXPECT_EQ(relay.connect(peer(13), from_ip(2), peer(1), kStart).status,
            Status::kResourceLimitExceeded);
  relay.release(ids[1]);
  EXPECT_EQ(relay.connect(peer(13), from_ip(2), peer(1), kStart).status, Status::kOk);
  EXPECT_EQ(relay.circuit_count(), 3u);
  // Ids are never reused.
  EXPECT_EQ(std::set<CircuitId>(ids.begin(), ids.end()).size(), 3u);
}

TEST(RelayResources, SelfCircuitCountsTwice) {
  RelayLimits limits;
  limits.max_circuits_per_peer = 2;
  RelayResources relay(limits);
  ASSERT_EQ(relay.reserve(peer(1), from_ip(1), kStart).status, Status::kOk);
  const auto self = relay.connect(peer(1), from_ip(1), peer(1), kStart);
  ASSERT_EQ(self.status, Status::kOk);
  EXPECT_EQ(relay.circuits_of(peer(1)), 2u);
  EXPECT_EQ(relay.connect(peer(1), from_ip(1), peer(1), kStart).status,
            Status::kResourceLimitExceeded);
  relay.release(self.id);
  EXPECT_EQ(relay.circuits_of(peer(1)), 0u);
}

TEST(RelayResources, ManyReservationsAtTheDefaultCap) {
  RelayResources relay;
  for (std::uint32_t n = 0; n < kDefaultMaxReservations; ++n) {
    ASSERT_EQ(relay.reserve(peer(n + 1), from_ip(static_cast<int>(n / 8)), kStart).status,
              Status::kOk)
        << n;
  }
  EXPECT_EQ(relay.reserve(peer(1000), from_ip(999), kStart).status, Status::kReservationRefused);
  // Every refresh still succeeds at the cap.
  EXPECT_EQ(relay.reserve(peer(5), from_ip(0), kStart + minutes(1)).status, Status::kOk);
  EXPECT_EQ(relay.reservation_count(), kDefaultMaxReservations);
}

}  // namespace
}  // namespace an::p2p::relay
