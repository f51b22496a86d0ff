#include "p2p/relay/resources.h"

#include <algorithm>
#include <limits>
#include <utility>

namespace an::p2p::relay {
namespace {

bool is_relayed(const Multiaddr& address) {
  return std::any_of(address.components().begin(), address.components().end(),
                     [](const MultiaddrComponent& c) { return c.code == kProtocolP2pCircuit; });
}

// The IP the peer connects from, in text form; nullopt when the address has none.
std::optional<std::string> ip_of(const Multiaddr& address) {
  for (const auto& component : address.components()) {
    if (component.code == kProtocolIp4 || component.code == kProtocolIp6) return component.value;
  }
  return std::nullopt;
}

std::uint64_t unix_seconds(TimePoint time) {
  const auto seconds =
      std::chrono::duration_cast<std::chrono::seconds>(time.time_since_epoch()).count();
  return seconds < 0 ? 0 : static_cast<std::uint64_t>(seconds);
}

}  // namespace

std::optional<Limit> to_wire_limit(const std::optional<CircuitLimit>& limit) {
  if (!limit) return std::nullopt;
  const auto seconds = std::max<std::chrono::seconds::rep>(limit->duration.count(), 0);
  constexpr auto kMaxSeconds = std::numeric_limits<std::uint32_t>::max();
  Limit wire;
  wire.duration_seconds =
      static_cast<std::uint32_t>(std::min<std::chrono::seconds::rep>(seconds, kMaxSeconds));
  wire.data_bytes = limit->data_bytes;
  return wire;
}

RelayResources::RelayResources(RelayLimits limits) : limits_(std::move(limits)) {}

ReservationDecision RelayResources::reserve(const PeerId& peer, const Multiaddr& remote,
                                            TimePoint now) {
  ReservationDecision decision;
  if (is_relayed(remote)) {
    decision.status = Status::kPermissionDenied;
    return decision;
  }
  decision.swept = expire(now);
  const auto ip = ip_of(remote);
  if (!ip) {
    decision.status = Status::kReservationRefused;
    return decision;
  }
  // A refresh replaces the peer's own reservation, which therefore does not count against it.
  const auto existing = reservations_.find(peer);
  const bool refresh = existing != reservations_.end();
  const std::size_t others_total = reservations_.size() - (refresh ? 1 : 0);
  std::size_t others_on_ip = reservations_from_ip(*ip);
  if (refresh && existing->second.ip == *ip) --others_on_ip;
  if (others_total >= limits_.max_reservations || others_on_ip >= limits_.max_reservations_per_ip) {
    decision.status = Status::kReservationRefused;
    return decision;
  }
  if (refresh) drop_reservation(peer);
  const TimePoint expires = now + limits_.reservation_ttl;
  reservations_.emplace(peer, Held{expires, *ip});
  ++per_ip_[*ip];
  decision.expires = expires;
  decision.expire_unix = unix_seconds(expires);
  decision.refreshed = refresh;
  decision.limit = to_wire_limit(limits_.circuit_limit);
  return decision;
}

void RelayResources::remove_reservation(const PeerId& peer) {
  drop_reservation(peer);
}

bool RelayResources::has_reservation(const PeerId& peer, TimePoint now) const {
  const auto found = reservations_.find(peer);
  return found != reservations_.end() && found->second.expires >= now;
}

CircuitDecision RelayResources::connect(const PeerId& source, const Multiaddr& source_remote,
                                        const PeerId& target, TimePoint now) {
  CircuitDecision decision;
  if (is_relayed(source_remote)) {
    decision.status = Status::kPermissionDenied;
    return decision;
  }
  if (!has_reservation(target, now)) {
    decision.status = Status::kNoReservation;
    return decision;
  }
  // A peer relaying to itself would count twice: check what it would reach, as go's counters do.
  const std::size_t source_after = circuits_of(source) + 1 + (source == target ? 1 : 0);
  const std::size_t target_after = circuits_of(target) + 1 + (source == target ? 1 : 0);
  if (source_after > limits_.max_circuits_per_peer ||
      target_after > limits_.max_circuits_per_peer || circuits_.size() >= limits_.max_circuits) {
    decision.status = Status::kResourceLimitExceeded;
    return decision;
  }
  const CircuitId id = next_circuit_++;
  circuits_.emplace(id, Circuit{source, target});
  count_circuit(source);
  count_circuit(target);
  decision.id = id;
  decision.limit = to_wire_limit(limits_.circuit_limit);
  return decision;
}

void RelayResources::release(CircuitId id) {
  const auto found = circuits_.find(id);
  if (found == circuits_.end()) return;
  uncount_circuit(found->second.source);
  uncount_circuit(found->second.target);
  circuits_.erase(found);
}

std::vector<PeerId> RelayResources::expire(TimePoint now) {
  std::vector<PeerId> expired;
  for (const auto& [peer, held] : reservations_) {
    if (held.expires < now) expired.push_back(peer);
  }
  for (const auto& peer : expired)
    drop_reservation(peer);
  return expired;
}

std::size_t RelayResources::circuits_of(const PeerId& peer) const {
  const auto found = per_peer_circuits_.find(peer);
  return found == per_peer_circuits_.end() ? 0 : found->second;
}

std::size_t RelayResources::reservations_from_ip(const std::string& ip) const {
  const auto found = per_ip_.find(ip);
  return found == per_ip_.end() ? 0 : found->second;
}

void RelayResources::drop_reservation(const PeerId& peer) {
  const auto found = reservations_.find(peer);
  if (found == reservations_.end()) return;
  const auto ip = per_ip_.find(found->second.ip);
  if (ip != per_ip_.end() && --ip->second == 0) per_ip_.erase(ip);
  reservations_.erase(found);
}

void RelayResources::count_circuit(const PeerId& peer) {
  ++per_peer_circuits_[peer];
}

void RelayResources::uncount_circuit(const PeerId& peer) {
  const auto found = per_peer_circuits_.find(peer);
  if (found == per_peer_circuits_.end()) return;
  if (--found->second == 0) per_peer_circuits_.erase(found);
}

}  // namespace an::p2p::relay
