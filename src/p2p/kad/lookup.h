// One iterative Kademlia lookup (FIND_NODE and the walks of GET_VALUE/GET_PROVIDERS) as a state
// machine without I/O or clocks. One owner thread at a time; it owns its copies of peer IDs.
#pragma once

#include <cstddef>
#include <map>
#include <span>
#include <vector>

#include "p2p/crypto/peer_id.h"
#include "p2p/kad/key.h"
#include "p2p/kad/routing_table.h"

namespace an::p2p::kad {

// α, the requests in flight per lookup. libp2p/specs kad-dht, go-libp2p-kad-dht
// (amino.DefaultConcurrency) and js-libp2p kad-dht (ALPHA) all say 10. js splits the seeds
// over k disjoint paths and allows α per path, so it may have more in flight in total; go
// allows α per lookup, as here.
inline constexpr std::size_t kDefaultAlpha = 10;
// Closer peers taken from one response; the rest are ignored. An honest peer sends at most k;
// go-libp2p-kad-dht keeps the first 2k, and so do we, so that a hostile peer cannot grow a
// lookup's state by more than this per answer.
inline constexpr std::size_t kMaxCloserPeersPerResponse = 2 * kBucketSize;
// Peers a lookup remembers. Beyond this the farthest ones not yet queried are forgotten: they
// could matter only if nearly every closer peer failed.
inline constexpr std::size_t kMaxLookupPeers = 4096;

struct LookupConfig {
  std::size_t k = kBucketSize;  // result size, and how many closest peers must answer
  std::size_t alpha = kDefaultAlpha;
};

struct LookupStats {
  std::size_t queries_sent = 0;          // peers returned by next_requests()
  std::size_t responses = 0;             // on_response() for a peer in flight
  std::size_t failures = 0;              // on_failure() for a peer in flight
  std::size_t peers_seen = 0;            // distinct peers that entered the lookup, seeds included
  std::size_t closer_peers_ignored = 0;  // beyond kMaxCloserPeersPerResponse, or self
  std::size_t unexpected = 0;            // answers from peers not in flight (or after done())
};

// The lookup follows libp2p/specs kad-dht "Peer routing": it ends when the k closest peers it
// knows of (failed peers excluded) have all answered, or when it runs out of peers to ask. go
// reaches the same end differently: it stops once the β = 3 closest have answered and then
// queries the rest of the k closest (runLookupWithFollowup). Only peers among the k closest
// known, not yet asked, are asked, closest first; a farther peer cannot change the result
// unless closer ones fail, and then it moves up into the k closest and is asked.
//
// Caller's contract:
// - seeds: the k closest peers of the routing table (RoutingTable::nearest(target, k)); no
//   seeds means done() at once with an empty result.
// - Send FIND_NODE (or the operation's request) to each peer next_requests() returns, and report
//   each outcome exactly once: on_response() with the peers it returned, or on_failure() for a
//   dial or stream error, a malformed reply, or the per-request timeout expiring. Call
//   next_requests() again after every report; it returns nothing while α are in flight.
// - Deadline: the caller owns the clock. At the lookup's deadline it stops waiting, abandons
//   requests in flight and takes result(): the k closest peers that answered so far. Once done()
//   the lookup ignores further reports (they count as unexpected), so in-flight requests may
//   simply be abandoned too.
// - Whether a peer in a response is worth asking (addresses, dialability) is the caller's; a
//   peer it cannot dial is reported with on_failure().
class Lookup {
 public:
  enum class PeerState {
    heard,        // known, not asked
    waiting,      // asked, no answer yet
    queried,      // answered
    unreachable,  // failed
  };

  Lookup(PeerId self, Key target, std::span<const PeerId> seeds, LookupConfig config = {});

  // Peers to ask now, closest first; they are in flight from here on. At most α in flight.
  std::vector<PeerId> next_requests();
  // `from` answered with these closer peers (only the first kMaxCloserPeersPerResponse count;
  // self and duplicates are skipped).
  void on_response(const PeerId& from, std::span<const PeerId> closer_peers);
  void on_failure(const PeerId& from);

  // Sticky once true.
  bool done() const { return done_; }
  // The k closest peers that answered, closest first.
  std::vector<PeerId> result() const;

  // Hops: for every peer, the length of the shortest chain of responses through which the
  // lookup learned of it (a seed: 0; a peer first named by a seed: 1; ...). hops() is the
  // largest of these over result(): the number of responses one after another that the lookup
  // needed to learn of all of its result peers (asking them takes one more round trip).
  // 0 when the result is empty or made of seeds only.
  int hops() const;
  const LookupStats& stats() const { return stats_; }
  std::size_t in_flight() const { return in_flight_; }
  // Peers the lookup remembers now (at most kMaxLookupPeers plus those asked or failed).
  std::size_t known_peers() const { return peers_.size(); }
  const Key& target() const { return target_; }

 private:
  struct Entry {
    PeerId id;
    PeerState state = PeerState::heard;
    int depth = 0;  // responses in the shortest referral chain from a seed
  };
  // Ordered by distance to the target: the distance is a bijection of the key, so it identifies
  // the peer too (two peer IDs with one SHA-256 would be a collision).
  using Peers = std::map<Key, Entry>;

  void add_peer(const PeerId& peer, int depth);
  Peers::iterator find_in_flight(const PeerId& peer);
  void forget_farthest_heard();
  void update_done();

  PeerId self_;
  Key self_distance_;
  Key target_;
  LookupConfig config_;
  Peers peers_;
  std::size_t in_flight_ = 0;
  bool done_ = false;
  LookupStats stats_;
};

}  // namespace an::p2p::kad
