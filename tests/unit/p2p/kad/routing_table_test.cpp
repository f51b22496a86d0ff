// The routing table: bucket limits, the eviction policy, nearest() against brute force over
// random peers, refresh bookkeeping.
#include "p2p/kad/routing_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

#include "unit/p2p/kad/kad_test_peers.h"

namespace an::p2p::kad {
namespace {

using namespace std::chrono_literals;

const Clock::time_point kStart = Clock::time_point() + 1000h;

// Random peers whose key shares exactly `cpl` leading bits with `local`.
std::vector<PeerId> peers_in_bucket(std::mt19937_64& rng, const PeerId& local, int cpl,
                                    std::size_t count) {
  const Key local_key = Key::of_peer(local);
  std::vector<PeerId> out;
  while (out.size() < count) {
    PeerId peer = test::random_peer(rng);
    if (common_prefix_length(local_key, Key::of_peer(peer)) == cpl) out.push_back(peer);
  }
  return out;
}

TEST(KadRoutingTable, AddFindRemove) {
  std::mt19937_64 rng(1);
  RoutingTable table(test::random_peer(rng));
  const PeerId peer = test::random_peer(rng);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_FALSE(table.contains(peer));

  auto added = table.add(peer, kStart);
  EXPECT_EQ(added.result, AddResult::added);
  EXPECT_FALSE(added.evicted);
  EXPECT_EQ(table.size(), 1u);
  ASSERT_NE(table.find(peer), nullptr);
  EXPECT_EQ(table.find(peer)->id, peer);
  EXPECT_EQ(table.find(peer)->key, Key::of_peer(peer));
  EXPECT_EQ(table.find(peer)->added_at, kStart);
  EXPECT_EQ(table.find(peer)->last_successful_query, kStart);
  EXPECT_FALSE(table.find(peer)->replaceable);

  EXPECT_EQ(table.add(peer, kStart + 1s).result, AddResult::already_present);
  EXPECT_EQ(table.find(peer)->added_at, kStart);
  EXPECT_EQ(table.size(), 1u);

  EXPECT_TRUE(table.mark_successful_query(peer, kStart + 5s));
  EXPECT_EQ(table.find(peer)->last_successful_query, kStart + 5s);
  EXPECT_TRUE(table.mark_useful(peer, kStart + 6s));
  EXPECT_EQ(table.find(peer)->last_useful, kStart + 6s);

  EXPECT_TRUE(table.remove(peer));
  EXPECT_FALSE(table.remove(peer));
  EXPECT_EQ(table.size(), 0u);
  EXPECT_FALSE(table.mark_successful_query(peer, kStart));
  EXPECT_TRUE(table.nearest(Key::of_peer(peer), 5).empty());
}

TEST(KadRoutingTable, RefusesItself) {
  std::mt19937_64 rng(2);
  const PeerId local = test::random_peer(rng);
  RoutingTable table(local);
  EXPECT_EQ(table.add(local, kStart).result, AddResult::self);
  EXPECT_EQ(table.size(), 0u);
  EXPECT_FALSE(table.remove(local));
}

TEST(KadRoutingTable, FullBucketRefusesWhenNoPeerIsReplaceableOrStale) {
  std::mt19937_64 rng(3);
  const PeerId local = test::random_peer(rng);
  RoutingTable table(local);
  const auto peers = peers_in_bucket(rng, local, 1, kBucketSize + 5);
  for (std::size_t i = 0; i < kBucketSize; ++i) {
    EXPECT_EQ(table.add(peers[i], kStart).result, AddResult::added);
  }
  EXPECT_EQ(table.bucket_size(1), kBucketSize);
  for (std::size_t i = kBucketSize; i < peers.size(); ++i) {
    auto outcome = table.add(peers[i], kStart + 1min);
    EXPECT_EQ(outcome.result, AddResult::bucket_full);
    EXPECT_FALSE(outcome.evicted);
    EXPECT_FALSE(table.contains(peers[i]));
  }
  EXPECT_EQ(table.size(), kBucketSize);
  // Other buckets are not affected.
  const auto other = peers_in_bucket(rng, local, 0, 1);
  EXPECT_EQ(table.add(other[0], kStart).result, AddResult::added);
  EXPECT_EQ(table.size(), kBucketSize + 1);
  // Removing one makes room again.
  EXPECT_TRUE(table.remove(peers[3]));
  EXPECT_EQ(table.add(peers[kBucketSize], kStart).result, AddResult::added);
}

TEST(KadRoutingTable, FullBucketEvictsAReplaceablePeerFirst) {
  std::mt19937_64 rng(4);
  const PeerId local = test::random_peer(rng);
  RoutingTable table(local);
  const auto peers = peers_in_bucket(rng, local, 0, kBucketSize + 2);
  for (std::size_t i = 0; i < kBucketSize; ++i) {
    table.add(peers[i], kStart, /*replaceable=*/i == 7);
  }
  // Peer 2 is also stale by now, but a replaceable peer goes first.
  const Clock::time_point later = kStart + kDefaultStaleAfter + 1s;
  for (std::size_t i = 0; i < kBucketSize; ++i) {
    if (i != 2) table.mark_successful_query(peers[i], later);
  }
  auto outcome = table.add(peers[kBucketSize], later);
  EXPECT_EQ(outcome.result, AddResult::added);
  ASSERT_TRUE(outcome.evicted);
  EXPECT_EQ(*outcome.evicted, peers[7]);
  EXPECT_FALSE(table.contains(peers[7]));
  EXPECT_TRUE(table.contains(peers[kBucketSize]));
  EXPECT_EQ(table.bucket_size(0), kBucketSize);

  // Now the stale one.
  outcome = table.add(peers[kBucketSize + 1], later);
  EXPECT_EQ(outcome.result, AddResult::added);
  ASSERT_TRUE(outcome.evicted);
  EXPECT_EQ(*outcome.evicted, peers[2]);
  EXPECT_EQ(table.size(), kBucketSize);
}

TEST(KadRoutingTable, MembershipIsReportedOnAddEvictionAndRemoval) {
  std::mt19937_64 rng(9);
  const PeerId local = test::random_peer(rng);
  RoutingTable table(local, RoutingTableConfig{2, kDefaultStaleAfter});
  std::vector<std::pair<PeerId, bool>> changes;
  table.on_membership(
      [&](const PeerId& peer, bool present) { changes.emplace_back(peer, present); });
  const auto peers = peers_in_bucket(rng, local, 0, 3);
  table.add(peers[0], kStart, /*replaceable=*/true);
  table.add(peers[1], kStart);
  table.add(peers[1], kStart);  // already there: nothing to report
  table.add(local, kStart);     // never enters
  table.add(peers[2], kStart);  // evicts the replaceable peer 0
  table.remove(peers[1]);
  table.remove(peers[1]);  // gone already
  const std::vector<std::pair<PeerId, bool>> expected{
      {peers[0], true}, {peers[1], true}, {peers[0], false}, {peers[2], true}, {peers[1], false}};
  EXPECT_EQ(changes, expected);
}

TEST(KadRoutingTable, StalePeersGoStalestFirstAndFreshOnesStay) {
  std::mt19937_64 rng(5);
  const PeerId local = test::random_peer(rng);
  RoutingTable table(local);
  const auto peers = peers_in_bucket(rng, local, 0, kBucketSize + 3);
  for (std::size_t i = 0; i < kBucketSize; ++i) {
    table.add(peers[i], kStart + std::chrono::seconds(i));  // peer 0 is the oldest
  }
  // Just at the limit nobody is stale.
  EXPECT_EQ(table.add(peers[kBucketSize], kStart + kDefaultStaleAfter).result,
            AddResult::bucket_full);
  // Peer 0 answered a query recently: peer 1 is now the stalest.
  const Clock::time_point later = kStart + kDefaultStaleAfter + 30s;
  table.mark_successful_query(peers[0], later - 1s);
  auto outcome = table.add(peers[kBucketSize], later);
  ASSERT_TRUE(outcome.evicted);
  EXPECT_EQ(*outcome.evicted, peers[1]);
  outcome = table.add(peers[kBucketSize + 1], later);
  ASSERT_TRUE(outcome.evicted);
  EXPECT_EQ(*outcome.evicted, peers[2]);
  EXPECT_TRUE(table.contains(peers[0]));
  // Once every peer has answered recently, the bucket is closed again.
  for (std::size_t i = 0; i < kBucketSize; ++i)
    table.mark_successful_query(peers[i], later);
  table.mark_successful_query(peers[kBucketSize], later);
  table.mark_successful_query(peers[kBucketSize + 1], later);
  EXPECT_EQ(table.add(peers[kBucketSize + 2], later + 1s).result, AddResult::bucket_full);
}

TEST(KadRoutingTable, ConfiguredBucketSize) {
  std::mt19937_64 rng(6);
  const PeerId local = test::random_peer(rng);
  RoutingTable table(local, RoutingTableConfig{3, 1h});
  const auto peers = peers_in_bucket(rng, local, 2, 4);
  for (std::size_t i = 0; i < 3; ++i)
    EXPECT_EQ(table.add(peers[i], kStart).result, AddResult::added);
  EXPECT_EQ(table.add(peers[3], kStart).result, AddResult::bucket_full);
  ASSERT_TRUE(table.set_replaceable(peers[1], true));
  auto outcome = table.add(peers[3], kStart);
  ASSERT_TRUE(outcome.evicted);
  EXPECT_EQ(*outcome.evicted, peers[1]);
}

TEST(KadRoutingTable, NearestMatchesBruteForce) {
  std::mt19937_64 rng(7);
  const PeerId local = test::random_peer(rng);
  RoutingTable table(local);
  std::vector<PeerId> in_table;
  for (const PeerId& peer : test::random_peers(rng, 3000)) {
    if (table.add(peer, kStart).result == AddResult::added) in_table.push_back(peer);
  }
  ASSERT_EQ(in_table.size(), table.size());
  // Random peers fill the first buckets to k and leave the deep ones sparse.
  EXPECT_EQ(table.bucket_size(0), kBucketSize);
  EXPECT_EQ(table.bucket_size(3), kBucketSize);
  EXPECT_LT(table.size(), 3000u);
  {
    const auto all = table.peers();
    EXPECT_EQ(std::set<PeerId>(all.begin(), all.end()),
              std::set<PeerId>(in_table.begin(), in_table.end()));
  }

  std::vector<Key> targets{table.local_key(), Key::of_peer(in_table[5])};
  for (int i = 0; i < 200; ++i)
    targets.push_back(test::random_key(rng));
  for (int i = 0; i < 50; ++i) {
    // Targets near the local key exercise the deep buckets.
    Key::Array bytes = table.local_key().bytes();
    const int bit = static_cast<int>(rng() % 24);
    bytes[static_cast<std::size_t>(bit / 8)] ^= static_cast<std::uint8_t>(0x80 >> (bit % 8));
    bytes[31] = static_cast<std::uint8_t>(rng());
    targets.push_back(Key(bytes));
  }
  for (const Key& target : targets) {
    for (std::size_t count : {std::size_t{1}, std::size_t{7}, kBucketSize, std::size_t{50}}) {
      EXPECT_EQ(table.nearest(target, count), test::closest_by_brute_force(in_table, target, count))
          << "target " << target.to_hex() << " count " << count;
    }
  }
  EXPECT_TRUE(table.nearest(targets[0], 0).empty());
  EXPECT_EQ(table.nearest(targets[0], 100000).size(), table.size());

  // After removing the deeper half of the peers (and so emptying the deepest buckets).
  std::sort(in_table.begin(), in_table.end(), [&](const PeerId& a, const PeerId& b) {
    return common_prefix_length(table.local_key(), Key::of_peer(a)) >
           common_prefix_length(table.local_key(), Key::of_peer(b));
  });
  const std::size_t half = in_table.size() / 2;
  for (std::size_t i = 0; i < half; ++i)
    EXPECT_TRUE(table.remove(in_table[i]));
  in_table.erase(in_table.begin(), in_table.begin() + static_cast<std::ptrdiff_t>(half));
  EXPECT_EQ(table.size(), in_table.size());
  EXPECT_EQ(table.max_common_prefix_length(),
            common_prefix_length(table.local_key(), Key::of_peer(in_table.front())));
  for (const Key& target : targets) {
    EXPECT_EQ(table.nearest(target, kBucketSize),
              test::closest_by_brute_force(in_table, target, kBucketSize));
  }
  for (const PeerId& peer : in_table)
    EXPECT_TRUE(table.remove(peer));
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.max_common_prefix_length(), 0);
  EXPECT_TRUE(table.nearest(targets[0], kBucketSize).empty());
}

TEST(KadRoutingTable, BucketsNeedingRefresh) {
  std::mt19937_64 rng(8);
  const PeerId local = test::random_peer(rng);
  RoutingTable table(local);
  // An empty table still asks for bucket 0 (as go does).
  EXPECT_EQ(table.cpls_needing_refresh(kStart, kDefaultRefreshInterval), std::vector<int>{0});

  table.add(peers_in_bucket(rng, local, 3, 1)[0], kStart);
  EXPECT_EQ(table.max_common_prefix_length(), 3);
  EXPECT_EQ(table.cpls_needing_refresh(kStart, kDefaultRefreshInterval),
            (std::vector<int>{0, 1, 2, 3}));

  // Looking up keys in buckets 0 and 2 refreshes them.
  table.mark_refreshed(Key::of_peer(peers_in_bucket(rng, local, 0, 1)[0]), kStart);
  table.mark_refreshed(Key::of_peer(peers_in_bucket(rng, local, 2, 1)[0]), kStart + 5min);
  EXPECT_EQ(table.cpls_needing_refresh(kStart + 1min, kDefaultRefreshInterval),
            (std::vector<int>{1, 3}));
  EXPECT_EQ(table.cpls_needing_refresh(kStart + kDefaultRefreshInterval, kDefaultRefreshInterval),
            (std::vector<int>{0, 1, 3}));
  EXPECT_EQ(
      table.cpls_needing_refresh(kStart + 5min + kDefaultRefreshInterval, kDefaultRefreshInterval),
      (std::vector<int>{0, 1, 2, 3}));

  // Deep buckets are not tracked past kMaxCplForRefresh; a self-lookup covers them.
  Key::Array deep = table.local_key().bytes();
  deep[3] ^= 0x01;  // common prefix length 31
  table.mark_refreshed(Key(deep), kStart);
  table.mark_refreshed(table.local_key(), kStart);
  EXPECT_EQ(table.cpls_needing_refresh(kStart + 1min, kDefaultRefreshInterval),
            (std::vector<int>{1, 3}));
}

TEST(KadRoutingTable, RefreshTargetsFallInTheirBucket) {
  std::mt19937_64 rng(9);
  const Key local = Key::of_peer(test::random_peer(rng));
  auto random = [&] { return rng(); };
  for (int cpl : {0, 1, 2, 5, 8, 11, kMaxCplForRefresh}) {
    auto peer = random_peer_id_in_bucket(local, cpl, random);
    ASSERT_TRUE(peer) << cpl;
    EXPECT_EQ(common_prefix_length(local, Key::of_peer(*peer)), cpl);
    EXPECT_EQ(peer->bytes().size(), 34u);  // a sha2-256 multihash, like go's random peer IDs
  }
  EXPECT_FALSE(random_peer_id_in_bucket(local, kMaxCplForRefresh + 1, random));
  EXPECT_FALSE(random_peer_id_in_bucket(local, -1, random));
}

}  // namespace
}  // namespace an::p2p::kad
