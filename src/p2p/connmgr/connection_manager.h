// Which peers to disconnect when a node has too many (SPEC §4 "Limits"; go-libp2p's basic
// connection manager): above the high-water mark, trim down to the low-water mark, least
// valuable peers first; protected peers (bootstrap peers, the relays in use) and peers connected
// for less than the grace period are kept. No I/O and no clock: the caller passes the time and
// closes what it is told. Network thread only.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "p2p/crypto/peer_id.h"

namespace an::p2p::connmgr {

using Clock = std::chrono::steady_clock;

struct Limits {
  std::size_t low_water = 100;
  std::size_t high_water = 400;
  // New peers get this long to prove useful before they may be trimmed (kubo's default).
  std::chrono::milliseconds grace_period{20'000};
  // After a trim, the next one waits this long (go-libp2p's silence period), so that a burst
  // of inbound connections does not cause a trim per connection.
  std::chrono::milliseconds silence_period{10'000};
};

// Peers not connected that may hold value tags (set before their connection) before those are
// pruned.
inline constexpr std::size_t kMaxEarlyTaggedPeers = 1024;

enum class PeerDirection { kInbound, kOutbound };

class ConnectionManager {
 public:
  explicit ConnectionManager(Limits limits) : limits_(limits) {}

  // The peer's first connection opened / its last one closed.
  void connected(const PeerId& peer, PeerDirection direction, Clock::time_point now);
  void disconnected(const PeerId& peer);

  // Protection by tag ("bootstrap", "relay"): a peer is protected while it has any tag. Works
  // for peers not (yet) connected, so a bootstrap peer is protected from its first connection.
  void protect(const PeerId& peer, const std::string& tag);
  // Returns whether the peer is still protected (by other tags).
  bool unprotect(const PeerId& peer, const std::string& tag);
  bool is_protected(const PeerId& peer) const;

  // Value tags: a peer's value is the sum of its tags; lower values are trimmed first. Tags of a
  // peer not connected are kept until it connects (and dropped when it disconnects), for at most
  // kMaxEarlyTaggedPeers such peers: beyond, they are all pruned.
  void set_tag(const PeerId& peer, const std::string& tag, std::int64_t value);
  void remove_tag(const PeerId& peer, const std::string& tag);
  std::int64_t value_of(const PeerId& peer) const;

  // The peers to disconnect now: empty unless more than high_water peers are connected and the
  // silence period since the last trim has passed. Order: not protected, out of grace; inbound
  // before outbound (we did not choose them), lower value first, then the most recent first
  // (older connections have proven stable). Stops at low_water, or when only peers that must be
  // kept remain. The caller disconnects them and reports each through disconnected().
  std::vector<PeerId> select_for_trim(Clock::time_point now);

  std::size_t peer_count() const { return peers_.size(); }
  const Limits& limits() const { return limits_; }

 private:
  struct PeerState {
    PeerDirection direction = PeerDirection::kOutbound;
    Clock::time_point connected_at{};
  };

  Limits limits_;
  std::unordered_map<PeerId, PeerState> peers_;
  std::unordered_map<PeerId, std::set<std::string>> protections_;
  std::unordered_map<PeerId, std::map<std::string, std::int64_t>> tags_;
  Clock::time_point last_trim_{};
  bool trimmed_before_ = false;
};

}  // namespace an::p2p::connmgr
