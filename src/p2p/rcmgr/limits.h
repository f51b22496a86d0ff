// The resource manager's limits (go-libp2p's rcmgr model): what each scope may hold, defaults
// that scale with the machine's memory and descriptor limit as go's autoscaled limits do, and
// the operator's overrides ("system.conns_inbound=256"). Value types; any thread.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "p2p/rcmgr/ip.h"
#include "util/expected.h"

namespace an::p2p::rcmgr {

inline constexpr std::int64_t kUnlimited = std::numeric_limits<std::int64_t>::max();

enum class Resource {
  kMemory,
  kStreamsInbound,
  kStreamsOutbound,
  kStreams,
  kConnsInbound,
  kConnsOutbound,
  kConns,
  kFds,
};
inline constexpr Resource kAllResources[] = {Resource::kMemory,          Resource::kStreamsInbound,
                                             Resource::kStreamsOutbound, Resource::kStreams,
                                             Resource::kConnsInbound,    Resource::kConnsOutbound,
                                             Resource::kConns,           Resource::kFds};
// "memory", "streams_inbound", ... as in config keys and `agentnetwork resources`.
std::string_view resource_name(Resource resource);

// What one scope may hold; kUnlimited for no limit.
struct Limit {
  std::int64_t memory = kUnlimited;
  std::int64_t streams_inbound = kUnlimited;
  std::int64_t streams_outbound = kUnlimited;
  std::int64_t streams = kUnlimited;
  std::int64_t conns_inbound = kUnlimited;
  std::int64_t conns_outbound = kUnlimited;
  std::int64_t conns = kUnlimited;
  std::int64_t fds = kUnlimited;

  std::int64_t& operator[](Resource resource);
  std::int64_t operator[](Resource resource) const;
  bool operator==(const Limit&) const = default;
};

// Limits on the connections the node is asked to accept, before any scope: handshakes in flight
// per address, per subnet and in total (the oldest stalled handshake of the busiest address
// gives way when the total is reached), established connections per address, and the rate of
// new connections per address and subnet (a token bucket). Loopback is exempt from the rate and
// established-connection limits, as in go-libp2p, but not from the handshake limits.
struct GateConfig {
  std::int64_t handshakes_per_ip = 8;
  std::int64_t handshakes_per_ipv4_subnet = 32;  // a /24
  std::int64_t handshakes_per_ipv6_subnet = 32;  // a /48
  std::int64_t handshakes_total = 64;
  // Per address: an IPv4 /32 or an IPv6 /56 (go's connLimiter allows 8 per address).
  std::int64_t conns_per_ip = 8;
  // New connections per second and burst, per address and per subnet (IPv4 /24, IPv6 /48):
  // go's defaults are 0.2/s with a burst of 16 per address, 0.5/s with a burst of 80 per IPv6
  // /48 (go has no IPv4 subnet rate; the same applies to a /24 here).
  double rate_per_ip = 0.2;
  std::int64_t burst_per_ip = 16;
  double rate_per_subnet = 0.5;
  std::int64_t burst_per_subnet = 80;
};

struct LimitConfig {
  Limit system;
  Limit transient;  // connections and streams not yet authenticated / negotiated
  // Used instead of system and transient when those are full, for allowed addresses and peers
  // (go's allowlisted scopes).
  Limit allowlisted_system;
  Limit allowlisted_transient;
  Limit peer;           // each peer
  Limit connection;     // each connection
  Limit stream;         // each stream
  Limit protocol;       // each protocol, unless `protocols` names it
  Limit protocol_peer;  // each protocol with each peer
  std::map<std::string, Limit> protocols;
  GateConfig gate;
  // -allow: addresses (CIDR) and peer IDs given the allowlisted scopes.
  std::vector<IpPrefix> allowed_networks;
  std::vector<std::string> allowed_peers;
};

// go-libp2p's DefaultLimits scaled to a memory and descriptor budget the way its Scale does.
// go's AutoScale passes an eighth of the machine's memory and half its descriptor limit.
LimitConfig scaled_default_limits(std::int64_t memory_budget, std::int64_t fd_budget);

// No limit anywhere, the gate's included (a Host built without a resource manager).
LimitConfig unlimited_limits();

// Applies one override "SCOPE.RESOURCE=VALUE": SCOPE is system, transient,
// allowlisted_system, allowlisted_transient, peer, connection, stream, protocol,
// protocol_peer, protocol:/ID (one protocol) or gate; RESOURCE one of resource_name()'s (for
// gate: the GateConfig field names); VALUE a whole number, "unlimited", or for memory a size
// with KiB, MiB or GiB. Errors name the bad part.
Expected<void> apply_limit_override(LimitConfig& config, std::string_view text);

// A memory size: a whole number of bytes, optionally with KiB, MiB or GiB ("512MiB").
Expected<std::int64_t> parse_memory_size(std::string_view text);
// The exact form parse_memory_size reads back, in the largest unit that divides it ("2GiB").
std::string format_memory_size(std::int64_t bytes);

// "128 MiB", "unlimited", "17".
std::string format_limit(Resource resource, std::int64_t value);

}  // namespace an::p2p::rcmgr
