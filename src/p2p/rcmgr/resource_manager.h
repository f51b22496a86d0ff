// The resource manager (go-libp2p's rcmgr model): everything a remote peer can make the node
// hold is reserved from a DAG of scopes before it is held, and refused when a scope is full.
//
//   connection: its own scope -> transient (until authenticated) or peer -> system
//   stream:     its own scope -> transient (until its protocol is known) or protocol and
//               protocol+peer -> peer -> system
//
// Allowed addresses and peers (-allow, bootstrap peers) fall back on the allowlisted system and
// transient scopes when the normal ones are full. A refusal is counted per scope and resource
// and reported to the refusal listener at most once per kRefusalReportInterval per key (with
// the number refused meanwhile), so that a flood makes one log line, not thousands.
//
// Sans-I/O: no sockets, no asio. Single-threaded: the manager and every scope handle belong to
// the network thread. Handles keep the manager's state alive, so they may outlive the manager.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "p2p/crypto/peer_id.h"
#include "p2p/rcmgr/connection_gate.h"
#include "p2p/rcmgr/ip.h"
#include "p2p/rcmgr/limits.h"
#include "util/expected.h"

namespace an::p2p::rcmgr {

inline constexpr std::chrono::seconds kRefusalReportInterval{10};

enum class Direction { kInbound, kOutbound };

struct Usage {
  std::int64_t memory = 0;
  std::int64_t streams_inbound = 0;
  std::int64_t streams_outbound = 0;
  std::int64_t conns_inbound = 0;
  std::int64_t conns_outbound = 0;
  std::int64_t fds = 0;

  // kStreams and kConns are the sums of their two directions.
  std::int64_t operator[](Resource resource) const;
  bool empty() const;
};

// What a refusal report says: "system.conns_inbound", how many refusals since the last report.
struct RefusalReport {
  std::string key;
  std::uint64_t count = 0;
};

struct ScopeSnapshot {
  std::string name;  // "system", "peer:12D3KooW…", "protocol:/ipfs/kad/1.0.0"
  Limit limit;
  Usage usage;
};

struct Snapshot {
  std::vector<ScopeSnapshot> scopes;  // system, transient, the allowlisted two, protocols
  std::vector<ScopeSnapshot> peers;   // the busiest peers first (memory, then streams)
  std::size_t peer_count = 0;         // peers with a scope (something reserved)
  std::map<std::string, std::uint64_t> refusals;  // by key, since start
  std::size_t handshakes_in_flight = 0;           // inbound, as the gate counts them
};

class ResourceManager;
struct ManagerState;
struct ScopeState;

// Memory reserved for something that is not a connection or a stream (DHT records, relay
// reservations): charged to a protocol scope and the system. Released on destruction.
class MemoryReservation {
 public:
  MemoryReservation() = default;
  MemoryReservation(MemoryReservation&&) noexcept;
  MemoryReservation& operator=(MemoryReservation&&) noexcept;
  ~MemoryReservation();

  // Reserves `bytes` more; false (and a refusal counted) when a scope is full.
  bool reserve(std::int64_t bytes);
  void release(std::int64_t bytes);
  // Makes the reservation exactly `bytes`, releasing or reserving the difference; false when
  // growing is refused (the reservation stays as it was).
  bool resize(std::int64_t bytes);
  std::int64_t reserved() const { return reserved_; }

 private:
  friend class ResourceManager;
  void release_all();

  std::shared_ptr<ManagerState> state_;
  std::vector<ScopeState*> scopes_;
  std::int64_t reserved_ = 0;
};

class StreamScope;

class ConnectionScope {
 public:
  ConnectionScope() = default;
  ConnectionScope(ConnectionScope&&) noexcept;
  ConnectionScope& operator=(ConnectionScope&&) noexcept;
  ~ConnectionScope();

  // Moves the connection from the transient scope to the peer's. Fails when the peer has too
  // many connections (or the system, for a connection that was allowlisted only by address);
  // the caller closes the connection.
  Expected<void> set_peer(const PeerId& peer);
  // A stream on this connection (its peer must be set). Fails when a scope is full: the caller
  // resets an inbound stream, or reports the error for an outbound one.
  Expected<StreamScope> open_stream(Direction direction);
  // Memory the connection holds (muxer buffers); false when a scope is full.
  bool reserve_memory(std::int64_t bytes);
  void release_memory(std::int64_t bytes);

  bool valid() const { return state_ != nullptr; }
  bool allowlisted() const { return allowlisted_; }

 private:
  friend class ResourceManager;
  void release_all();

  std::shared_ptr<ManagerState> state_;
  std::vector<ScopeState*> scopes_;  // own, then transient|peer, then system
  ScopeState* own_ = nullptr;
  Direction direction_ = Direction::kInbound;
  bool uses_fd_ = false;
  bool allowlisted_ = false;
  std::optional<PeerId> peer_;
  std::int64_t memory_ = 0;
};

class StreamScope {
 public:
  StreamScope() = default;
  StreamScope(StreamScope&&) noexcept;
  StreamScope& operator=(StreamScope&&) noexcept;
  ~StreamScope();

  // Moves the stream from the transient scope to its protocol's (and protocol+peer's). Fails
  // when those are full: the caller resets the stream.
  Expected<void> set_protocol(const std::string& protocol);
  // Memory the stream holds (data received and not yet read, a message being reassembled);
  // false when a scope is full: the caller resets the stream.
  bool reserve_memory(std::int64_t bytes);
  void release_memory(std::int64_t bytes);

  bool valid() const { return state_ != nullptr; }

 private:
  friend class ConnectionScope;
  void release_all();

  std::shared_ptr<ManagerState> state_;
  std::vector<ScopeState*> scopes_;  // own, then transient|protocol+protocol_peer, peer, system
  ScopeState* own_ = nullptr;
  std::optional<PeerId> peer_;
  Direction direction_ = Direction::kInbound;
  bool allowlisted_ = false;
  std::int64_t memory_ = 0;
};

class ResourceManager {
 public:
  using Clock = std::chrono::steady_clock;
  using RefusalListener = std::function<void(const RefusalReport&)>;

  explicit ResourceManager(LimitConfig config,
                           std::function<Clock::time_point()> clock = &Clock::now);
  ~ResourceManager();
  ResourceManager(const ResourceManager&) = delete;
  ResourceManager& operator=(const ResourceManager&) = delete;

  // The gate's verdict on a new inbound connection from `address` (connection_gate.h); a
  // refusal is counted as "gate.<reason>".
  ConnectionGate::Admission admit_inbound(const IpAddress& address);
  // The handshake admitted as `id` ended; `established` connections count toward the gate's
  // per-address limit until inbound_closed().
  void handshake_finished(ConnectionGate::HandshakeId id, bool established);
  void inbound_closed(const IpAddress& address);

  // A new connection, before its handshake (inbound) or dial (outbound). `remote` is the peer's
  // IP when known (not for relayed connections), `peer` the peer dialled (outbound).
  Expected<ConnectionScope> open_connection(Direction direction, bool uses_fd,
                                            const std::optional<IpAddress>& remote,
                                            const std::optional<PeerId>& peer = std::nullopt);
  // Memory for a protocol's long-lived state (records, reservations).
  MemoryReservation protocol_memory(const std::string& protocol);

  bool is_allowed(const IpAddress& address) const;
  bool is_allowed(const PeerId& peer) const;
  // Bootstrap peers and the relays in use join the allow list while the node runs.
  void allow_peer(const PeerId& peer);

  void on_refusal(RefusalListener listener);
  Snapshot snapshot(std::size_t busiest_peers = 10) const;
  const LimitConfig& limits() const;

 private:
  std::shared_ptr<ManagerState> state_;
};

}  // namespace an::p2p::rcmgr
