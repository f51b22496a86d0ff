// The circuit relay v2 hop service's admission policy: which RESERVE and CONNECT requests to
// accept, under which limits. No I/O and no clock: time and addresses are passed in. One owner
// (the network thread) calls it; not thread-safe. It owns its bookkeeping, nothing else.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "p2p/crypto/peer_id.h"
#include "p2p/multiformats/multiaddr.h"
#include "p2p/relay/messages.h"

namespace an::p2p::relay {

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;

// Defaults of go-libp2p (p2p/protocol/circuitv2/relay/resources.go, DefaultResources and
// DefaultLimit) unless said otherwise. js-libp2p (@libp2p/circuit-relay-v2 constants.ts) differs:
// 15 reservations, a 2 h TTL, no per-IP cap, the same 2 min / 128 KiB circuit limit.
inline constexpr std::chrono::seconds kDefaultReservationTtl = std::chrono::hours(1);
inline constexpr std::size_t kDefaultMaxReservations = 128;
inline constexpr std::size_t kDefaultMaxReservationsPerIp = 8;
// go's MaxCircuits: open circuits per peer, counting those it is the source or the target of.
inline constexpr std::size_t kDefaultMaxCircuitsPerPeer = 16;
// go has no such counter: its resource manager caps the relay service at 256 streams (limits.go,
// base scale), and each circuit holds two (hop and stop), hence 128.
inline constexpr std::size_t kDefaultMaxCircuits = 128;
inline constexpr std::chrono::seconds kDefaultCircuitDuration = std::chrono::minutes(2);
inline constexpr std::uint64_t kDefaultCircuitData = 128 * 1024;  // in each direction
// Size of each of the two buffers a circuit copies through.
inline constexpr std::size_t kDefaultCircuitBufferSize = 2048;

// The limits of one relayed connection; 0 means none for that dimension.
struct CircuitLimit {
  std::chrono::seconds duration = kDefaultCircuitDuration;
  std::uint64_t data_bytes = kDefaultCircuitData;
};

struct RelayLimits {
  std::chrono::seconds reservation_ttl = kDefaultReservationTtl;
  std::size_t max_reservations = kDefaultMaxReservations;
  // A peer holds at most one reservation: a second RESERVE refreshes it (go and js alike; go's
  // MaxReservationsPerPeer is deprecated and defaults to 1). go's per-ASN cap is not applied.
  std::size_t max_reservations_per_ip = kDefaultMaxReservationsPerIp;
  std::size_t max_circuits = kDefaultMaxCircuits;
  std::size_t max_circuits_per_peer = kDefaultMaxCircuitsPerPeer;
  // nullopt: circuits are not limited and no Limit is sent.
  std::optional<CircuitLimit> circuit_limit = CircuitLimit{};
  std::size_t buffer_size = kDefaultCircuitBufferSize;
};

// The Limit to send in the RESERVE answer, the STOP CONNECT and the CONNECT answer: durations
// are whole seconds (as go: truncated; a limit over 2^32-1 s is sent as that).
std::optional<Limit> to_wire_limit(const std::optional<CircuitLimit>& limit);

struct ReservationDecision {
  Status status = Status::kOk;
  // When kOk: the reservation's end, and its UTC Unix seconds for Reservation.expire and the
  // voucher (the time truncated to seconds, as go does).
  TimePoint expires{};
  std::uint64_t expire_unix = 0;
  bool refreshed = false;  // the peer already held a live reservation
  std::optional<Limit> limit;
  // Reservations found expired and dropped on the way (whatever the status), as expire() returns.
  std::vector<PeerId> swept;
};

using CircuitId = std::uint64_t;

struct CircuitDecision {
  Status status = Status::kOk;
  CircuitId id = 0;  // when kOk: to release() once the circuit ends
  std::optional<Limit> limit;
};

class RelayResources {
 public:
  explicit RelayResources(RelayLimits limits = {});

  const RelayLimits& limits() const { return limits_; }

  // A RESERVE from `peer` over a connection from `remote` (its remote multiaddr):
  // PERMISSION_DENIED over a relayed connection (/p2p-circuit, as go and js refuse);
  // RESERVATION_REFUSED when `remote` has no IP, or the total or per-IP cap is reached.
  // Expired reservations are swept first (listed in `swept`); a refresh does not count the peer
  // twice and, when refused, leaves the existing reservation as it was.
  ReservationDecision reserve(const PeerId& peer, const Multiaddr& remote, TimePoint now);

  // The peer's connection to the relay closed: its reservation ends (the spec: "If the peer
  // disconnects, the reservation is no longer valid"). Circuits are released on their own.
  void remove_reservation(const PeerId& peer);

  // Whether `peer` holds a reservation still valid at `now`.
  bool has_reservation(const PeerId& peer, TimePoint now) const;

  // A CONNECT from `source` (over `source_remote`) to `target`: PERMISSION_DENIED over a
  // relayed connection; NO_RESERVATION unless the target holds a live reservation;
  // RESOURCE_LIMIT_EXCEEDED when the source or the target has max_circuits_per_peer circuits or
  // the relay max_circuits. Admitted circuits count until release(), also while the stop
  // handshake runs (release it if that fails).
  CircuitDecision connect(const PeerId& source, const Multiaddr& source_remote,
                          const PeerId& target, TimePoint now);

  // Ends an admitted circuit; unknown ids are ignored (released twice is harmless).
  void release(CircuitId id);

  // Drops reservations expired at `now` (valid up to and including their end) and returns
  // their peers, so that the caller can untag them.
  std::vector<PeerId> expire(TimePoint now);

  std::size_t reservation_count() const { return reservations_.size(); }
  std::size_t circuit_count() const { return circuits_.size(); }
  std::size_t circuits_of(const PeerId& peer) const;
  std::size_t reservations_from_ip(const std::string& ip) const;

 private:
  struct Held {
    TimePoint expires;
    std::string ip;
  };
  struct Circuit {
    PeerId source;
    PeerId target;
  };

  void drop_reservation(const PeerId& peer);
  void count_circuit(const PeerId& peer);
  void uncount_circuit(const PeerId& peer);

  RelayLimits limits_;
  std::unordered_map<PeerId, Held> reservations_;
  std::unordered_map<std::string, std::size_t> per_ip_;
  std::unordered_map<CircuitId, Circuit> circuits_;
  std::unordered_map<PeerId, std::size_t> per_peer_circuits_;
  CircuitId next_circuit_ = 1;
};

}  // namespace an::p2p::relay
