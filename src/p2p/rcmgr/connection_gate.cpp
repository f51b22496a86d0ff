#include "p2p/rcmgr/connection_gate.h"

#include <algorithm>

namespace an::p2p::rcmgr {
namespace {

// "Per address" is a /32 for IPv4 and a /56 for IPv6 (one site's allocation), as go keys its
// per-IP limits; a subnet is an IPv4 /24 or an IPv6 /48.
constexpr int kIpv6AddressPrefix = 56;
constexpr int kIpv4SubnetPrefix = 24;
constexpr int kIpv6SubnetPrefix = 48;
// Buckets that have refilled are dropped this often, so that the table stays as large as the
// set of addresses seen within a refill time.
constexpr auto kBucketCleanupInterval = std::chrono::seconds(60);

IpAddress address_key(const IpAddress& address) {
  return address.v4 ? address : address.masked(kIpv6AddressPrefix);
}

}  // namespace

ConnectionGate::ConnectionGate(GateConfig config, std::vector<IpPrefix> allowed_networks)
    : config_(config), allowed_networks_(std::move(allowed_networks)) {}

bool ConnectionGate::allowed(const IpAddress& address) const {
  return std::any_of(allowed_networks_.begin(), allowed_networks_.end(),
                     [&](const IpPrefix& prefix) { return prefix.contains(address); });
}

IpAddress ConnectionGate::subnet_of(const IpAddress& address) const {
  return address.masked(address.v4 ? kIpv4SubnetPrefix : kIpv6SubnetPrefix);
}

bool ConnectionGate::take_token(std::unordered_map<IpAddress, Bucket>& buckets,
                                const IpAddress& key, double rate, std::int64_t burst,
                                Clock::time_point now) {
  auto [found, inserted] = buckets.try_emplace(key);
  Bucket& bucket = found->second;
  if (inserted) {
    bucket.tokens = static_cast<double>(burst);
  } else {
    const double elapsed = std::chrono::duration<double>(now - bucket.updated).count();
    bucket.tokens = std::min(static_cast<double>(burst), bucket.tokens + elapsed * rate);
  }
  bucket.updated = now;
  if (bucket.tokens < 1) return false;
  bucket.tokens -= 1;
  return true;
}

void ConnectionGate::forget_idle_buckets(Clock::time_point now) {
  if (now - last_cleanup_ < kBucketCleanupInterval) return;
  last_cleanup_ = now;
  auto sweep = [&](std::unordered_map<IpAddress, Bucket>& buckets, double rate,
                   std::int64_t burst) {
    for (auto it = buckets.begin(); it != buckets.end();) {
      const double elapsed = std::chrono::duration<double>(now - it->second.updated).count();
      if (it->second.tokens + elapsed * rate >= static_cast<double>(burst)) {
        it = buckets.erase(it);
      } else {
        ++it;
      }
    }
  };
  sweep(ip_buckets_, config_.rate_per_ip, config_.burst_per_ip);
  sweep(subnet_buckets_, config_.rate_per_subnet, config_.burst_per_subnet);
}

std::size_t ConnectionGate::count_from(const IpAddress& address) const {
  const IpAddress key = address_key(address);
  return static_cast<std::size_t>(
      std::count_if(handshakes_.begin(), handshakes_.end(),
                    [&](const auto& entry) { return address_key(entry.second.address) == key; }));
}

std::size_t ConnectionGate::count_in_subnet(const IpAddress& subnet) const {
  return static_cast<std::size_t>(
      std::count_if(handshakes_.begin(), handshakes_.end(), [&](const auto& entry) {
        return entry.second.address.v4 == subnet.v4 && subnet_of(entry.second.address) == subnet;
      }));
}

std::size_t ConnectionGate::established_from(const IpAddress& address) const {
  auto found = established_.find(address_key(address));
  return found == established_.end() ? 0 : found->second;
}

template <class Predicate>
std::optional<ConnectionGate::HandshakeId> ConnectionGate::victim(const IpAddress& newcomer,
                                                                  Predicate in_scope) const {
  std::map<IpAddress, std::size_t> per_address;
  for (const auto& [id, handshake] : handshakes_) {
    if (in_scope(handshake.address) && !allowed(handshake.address)) {
      ++per_address[address_key(handshake.address)];
    }
  }
  std::optional<IpAddress> busiest;
  std::size_t most = 0;
  for (const auto& [address, count] : per_address) {
    if (count > most) {
      most = count;
      busiest = address;
    }
  }
  if (!busiest) return std::nullopt;
  // A newcomer from the busiest address would only replace one of its own.
  const auto newcomer_count = per_address.count(address_key(newcomer))
                                  ? per_address.at(address_key(newcomer))
                                  : std::size_t{0};
  if (newcomer_count + 1 >= most) return std::nullopt;
  for (const auto& [id, handshake] : handshakes_) {
    if (address_key(handshake.address) == *busiest) return id;  // ids grow: the oldest
  }
  return std::nullopt;
}

ConnectionGate::Admission ConnectionGate::admit(const IpAddress& address, Clock::time_point now) {
  forget_idle_buckets(now);
  Admission admission;
  auto refuse = [&](const char* reason) {
    admission.refused_because = reason;
    return admission;
  };
  const bool is_allowed = allowed(address);
  if (!is_allowed) {
    if (!address.is_loopback()) {
      if (!take_token(ip_buckets_, address_key(address), config_.rate_per_ip, config_.burst_per_ip,
                      now) ||
          !take_token(subnet_buckets_, subnet_of(address), config_.rate_per_subnet,
                      config_.burst_per_subnet, now)) {
        return refuse("rate");
      }
      if (static_cast<std::int64_t>(established_from(address)) >= config_.conns_per_ip) {
        return refuse("conns_per_ip");
      }
    }
    if (static_cast<std::int64_t>(count_from(address)) >= config_.handshakes_per_ip) {
      return refuse("handshakes_per_ip");
    }
    const IpAddress subnet = subnet_of(address);
    const std::int64_t subnet_limit =
        address.v4 ? config_.handshakes_per_ipv4_subnet : config_.handshakes_per_ipv6_subnet;
    if (static_cast<std::int64_t>(count_in_subnet(subnet)) >= subnet_limit) {
      admission.evict = victim(address, [&](const IpAddress& other) {
        return other.v4 == subnet.v4 && subnet_of(other) == subnet;
      });
      if (!admission.evict) return refuse("handshakes_per_subnet");
    }
    const std::int64_t in_flight =
        static_cast<std::int64_t>(handshakes_.size()) - (admission.evict ? 1 : 0);
    if (in_flight >= config_.handshakes_total && !admission.evict) {
      admission.evict = victim(address, [](const IpAddress&) { return true; });
      if (!admission.evict) return refuse("handshakes_total");
    }
  }
  if (admission.evict) handshakes_.erase(*admission.evict);
  admission.accepted = true;
  admission.id = next_id_++;
  handshakes_.emplace(admission.id, Handshake{address, now});
  return admission;
}

void ConnectionGate::handshake_finished(HandshakeId id, bool established) {
  auto found = handshakes_.find(id);
  if (found == handshakes_.end()) return;
  if (established) ++established_[address_key(found->second.address)];
  handshakes_.erase(found);
}

void ConnectionGate::connection_closed(const IpAddress& address) {
  auto found = established_.find(address_key(address));
  if (found == established_.end()) return;
  if (--found->second == 0) established_.erase(found);
}

}  // namespace an::p2p::rcmgr
