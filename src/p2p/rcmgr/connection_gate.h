// The first check on an inbound connection, before any byte is read: the rate of new
// connections per address and subnet, established connections per address, and handshakes in
// flight per address, per subnet and in total. When a subnet or the total is full, the oldest
// handshake of the busiest address there gives way (unless the newcomer's address is that
// busiest one), so that one address's stalled connections never keep another address out.
// Loopback is exempt from the rate and established-connection limits, as in go-libp2p; the
// handshake limits apply to every address. Allowed networks (-allow) pass every check.
//
// Sans-I/O: the caller passes the time and closes what it is told. Network thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "p2p/rcmgr/ip.h"
#include "p2p/rcmgr/limits.h"

namespace an::p2p::rcmgr {

class ConnectionGate {
 public:
  using Clock = std::chrono::steady_clock;
  using HandshakeId = std::uint64_t;

  struct Admission {
    bool accepted = false;
    // Why not: "rate", "conns_per_ip", "handshakes_per_ip", "handshakes_per_subnet",
    // "handshakes_total" (as in the refusal counts, "gate.<reason>").
    std::string refused_because;
    HandshakeId id = 0;
    // A handshake to abort to make room for this one.
    std::optional<HandshakeId> evict;
  };

  ConnectionGate(GateConfig config, std::vector<IpPrefix> allowed_networks);

  Admission admit(const IpAddress& address, Clock::time_point now);
  // The handshake ended: `established` connections count toward conns_per_ip until closed.
  // Unknown ids (an evicted handshake reported again) are ignored.
  void handshake_finished(HandshakeId id, bool established);
  // An established inbound connection from `address` closed.
  void connection_closed(const IpAddress& address);

  std::size_t handshakes_in_flight() const { return handshakes_.size(); }
  std::size_t established_from(const IpAddress& address) const;
  const GateConfig& config() const { return config_; }

 private:
  struct Handshake {
    IpAddress address;
    Clock::time_point started;
  };
  struct Bucket {
    double tokens = 0;
    Clock::time_point updated{};
  };

  bool allowed(const IpAddress& address) const;
  IpAddress subnet_of(const IpAddress& address) const;
  bool take_token(std::unordered_map<IpAddress, Bucket>& buckets, const IpAddress& key, double rate,
                  std::int64_t burst, Clock::time_point now);
  std::size_t count_from(const IpAddress& address) const;
  std::size_t count_in_subnet(const IpAddress& subnet) const;
  // The oldest handshake of the busiest address among those `in_scope` accepts, unless
  // `newcomer` is (one of) the busiest.
  template <class Predicate>
  std::optional<HandshakeId> victim(const IpAddress& newcomer, Predicate in_scope) const;
  void forget_idle_buckets(Clock::time_point now);

  GateConfig config_;
  std::vector<IpPrefix> allowed_networks_;
  HandshakeId next_id_ = 1;
  std::map<HandshakeId, Handshake> handshakes_;  // ordered by id: oldest first
  std::unordered_map<IpAddress, std::size_t> established_;
  std::unordered_map<IpAddress, Bucket> ip_buckets_;
  std::unordered_map<IpAddress, Bucket> subnet_buckets_;
  Clock::time_point last_cleanup_{};
};

}  // namespace an::p2p::rcmgr
