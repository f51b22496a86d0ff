// The Kademlia routing table: k-buckets of peers by common prefix length with the local key. No
// I/O and no clock: time is passed in. One owner thread (the network thread); it owns its entries.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "p2p/crypto/peer_id.h"
#include "p2p/kad/key.h"

namespace an::p2p::kad {

using Clock = std::chrono::steady_clock;

// k, the replication parameter and bucket size (libp2p/specs kad-dht; go and js use 20).
inline constexpr std::size_t kBucketSize = 20;
// Buckets are refreshed for common prefix lengths 0..15 only, as go-libp2p-kbucket
// (maxCplForRefresh): a refresh looks up a random key with that prefix, and deeper buckets are
// covered by the self-lookup, which fills the buckets nearest to us.
inline constexpr int kMaxCplForRefresh = 15;
// go-libp2p-kad-dht's RoutingTable.RefreshInterval.
inline constexpr Clock::duration kDefaultRefreshInterval = std::chrono::minutes(10);
// A peer with no successful query for this long may be evicted for a new one: go-libp2p-kad-dht
// gives a peer twice the refresh interval (its usefulnessGracePeriod) to prove itself.
inline constexpr Clock::duration kDefaultStaleAfter = 2 * kDefaultRefreshInterval;

struct RoutingTableConfig {
  std::size_t bucket_size = kBucketSize;
  Clock::duration stale_after = kDefaultStaleAfter;
};

struct RoutingEntry {
  PeerId id;
  Key key;  // Key::of_peer(id), kept to avoid hashing again
  Clock::time_point added_at;
  // Starts at added_at (as go does): a new peer gets a full stale_after to answer a query.
  Clock::time_point last_successful_query;
  // Set when the peer was useful to one of our lookups (mark_useful); informational for now.
  std::optional<Clock::time_point> last_useful;
  // A replaceable peer yields its place to any new peer when its bucket is full. go marks peers
  // replaceable when the table already had enough peers as they came in; the caller decides.
  bool replaceable = false;
};

enum class AddResult {
  added,            // new in the table (perhaps in place of `evicted`)
  already_present,  // nothing changed
  self,             // the local peer never enters its own table
  bucket_full,      // refused: its bucket is full of peers that are neither replaceable nor stale
};

struct AddOutcome {
  AddResult result;
  std::optional<PeerId> evicted;  // the peer removed to make room, if any
};

// One bucket per common prefix length 0..255 with the local key (256 fixed buckets). go's table
// keeps one list and splits its last bucket lazily; that saves memory only while a table is
// small, and it holds at most k peers per prefix length exactly like fixed buckets (fixed
// buckets never refuse a peer that a split would have admitted). Fixed buckets need no
// split/merge logic and find a peer's bucket in O(1); the empty ones cost an empty vector each.
//
// Who enters: only the caller knows whether a peer is worth routing to. The caller must add a
// peer only when identify shows it serves /ipfs/kad/1.0.0 (DHT server mode; libp2p/specs kad-dht
// "Client and server mode"), and remove it when it stops doing so or keeps failing queries.
class RoutingTable {
 public:
  explicit RoutingTable(PeerId local, RoutingTableConfig config = {});

  const PeerId& local_peer() const { return local_; }
  const Key& local_key() const { return local_key_; }
  const RoutingTableConfig& config() const { return config_; }

  // Called with true when a peer enters the table and with false when it leaves (removed or
  // evicted for a newcomer), so that its owner can keep what the table needs of its peers.
  using MembershipListener = std::function<void(const PeerId&, bool present)>;
  void on_membership(MembershipListener listener) { membership_ = std::move(listener); }

  // Adds a peer. A full bucket admits it only in place of a replaceable peer or, failing that,
  // of a stale one (no successful query within stale_after): the stalest such peer goes, the
  // peers that answered queries recently are never pushed out (go-libp2p-kbucket's policy, plus
  // staleness). An already present peer is left as it is (use mark_* to update it).
  AddOutcome add(const PeerId& peer, Clock::time_point now, bool replaceable = false);

  // True when the peer was in the table.
  bool remove(const PeerId& peer);

  bool contains(const PeerId& peer) const { return find(peer) != nullptr; }
  // The entry, or null; valid until the table next changes.
  const RoutingEntry* find(const PeerId& peer) const;

  // The peer answered one of our queries; false when it is not in the table.
  bool mark_successful_query(const PeerId& peer, Clock::time_point now);
  // The peer helped one of our lookups to its result; false when it is not in the table.
  bool mark_useful(const PeerId& peer, Clock::time_point now);
  // The peer may be replaced by any newcomer (or, with false, no longer).
  bool set_replaceable(const PeerId& peer, bool replaceable);

  // Up to `count` peers closest to target, closest first.
  std::vector<PeerId> nearest(const Key& target, std::size_t count) const;

  std::size_t size() const { return size_; }
  // Peers sharing exactly `cpl` leading bits with the local key.
  std::size_t bucket_size(int cpl) const;
  // The largest common prefix length of a peer in the table; 0 when it is empty.
  int max_common_prefix_length() const { return std::max(deepest_, 0); }
  std::vector<PeerId> peers() const;

  // Common prefix lengths 0..min(max_common_prefix_length(), kMaxCplForRefresh) whose last
  // lookup (mark_refreshed) is older than `interval`, or that were never looked up, in
  // increasing order (go's GetTrackedCplsForRefresh, with the time test done here). The caller
  // refreshes one by looking up a random key with that prefix.
  std::vector<int> cpls_needing_refresh(Clock::time_point now, Clock::duration interval) const;
  // A lookup for `target` completed at `now`: it refreshed the bucket of target's prefix length.
  void mark_refreshed(const Key& target, Clock::time_point now);

 private:
  using Bucket = std::vector<RoutingEntry>;

  int bucket_index(const Key& key) const { return common_prefix_length(local_key_, key); }
  RoutingEntry* find_mutable(const PeerId& peer);

  PeerId local_;
  Key local_key_;
  RoutingTableConfig config_;
  std::array<Bucket, kKeyBits> buckets_;  // index = common prefix length with local_key_
  std::size_t size_ = 0;
  int deepest_ = -1;  // the deepest non-empty bucket; -1 when the table is empty
  std::array<std::optional<Clock::time_point>, kMaxCplForRefresh + 1> refreshed_at_;
  MembershipListener membership_;
};

// The key to look up to refresh bucket `cpl`: a peer ID (sha2-256 multihash of a random digest,
// like go's GenRandPeerID) whose key shares exactly `cpl` leading bits with `local`. FIND_NODE
// carries the key's bytes, not its hash, so a random point of the key space will not do: this
// draws digests from `random` until one hashes into the bucket, about 2^(cpl + 1) tries (65,536
// SHA-256 for cpl 15). go uses a precomputed table of preimages instead. nullopt for a cpl past
// kMaxCplForRefresh or, with odds below 2^-90, when kRefreshTargetTriesPerBucketSpan x
// 2^(cpl + 1) tries all missed.
inline constexpr std::uint64_t kRefreshTargetTriesPerBucketSpan = 64;
std::optional<PeerId> random_peer_id_in_bucket(const Key& local, int cpl,
                                               const std::function<std::uint64_t()>& random);

}  // namespace an::p2p::kad
