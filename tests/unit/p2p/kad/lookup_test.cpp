// The lookup state machine with scripted answers: termination, the α bound, failures, self and
// duplicate peers, hostile answers, reports out of place, the deadline contract and hops.
#include "p2p/kad/lookup.h"

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "unit/p2p/kad/kad_test_peers.h"

namespace an::p2p::kad {
namespace {

// Answers for a peer: closer peers, or nullopt for a failure.
using Answer = std::function<std::optional<std::vector<PeerId>>(const PeerId&)>;

// Runs the lookup to done(), answering in the order the requests went out, one at a time, and
// checks the α bound all along. Returns the peers asked, in order.
std::vector<PeerId> run(Lookup& lookup, const Answer& answer, std::size_t alpha) {
  std::vector<PeerId> asked;
  std::deque<PeerId> in_flight;
  while (!lookup.done()) {
    for (PeerId& peer : lookup.next_requests()) {
      asked.push_back(peer);
      in_flight.push_back(std::move(peer));
    }
    EXPECT_LE(lookup.in_flight(), alpha);
    EXPECT_EQ(lookup.in_flight(), in_flight.size());
    if (in_flight.empty()) {
      ADD_FAILURE() << "the lookup stalled: not done, nothing to ask, nothing in flight";
      break;
    }
    const PeerId peer = in_flight.front();
    in_flight.pop_front();
    if (auto closer = answer(peer)) {
      lookup.on_response(peer, *closer);
    } else {
      lookup.on_failure(peer);
    }
  }
  EXPECT_TRUE(lookup.next_requests().empty());
  return asked;
}

// A network where every peer knows every other peer and answers with the k closest to the
// target (itself excluded), except the peers in `down`, which fail.
Answer perfect_network(const std::vector<PeerId>& universe, const Key& target,
                       std::set<PeerId> down = {}) {
  auto closest = test::closest_by_brute_force(universe, target, kBucketSize + 1);
  return [closest, down](const PeerId& peer) -> std::optional<std::vector<PeerId>> {
    if (down.contains(peer)) return std::nullopt;
    std::vector<PeerId> out;
    for (const PeerId& p : closest) {
      if (p != peer && out.size() < kBucketSize) out.push_back(p);
    }
    return out;
  };
}

std::vector<PeerId> without(const std::vector<PeerId>& peers, const std::set<PeerId>& removed) {
  std::vector<PeerId> out;
  for (const PeerId& peer : peers) {
    if (!removed.contains(peer)) out.push_back(peer);
  }
  return out;
}

void expect_distinct(const std::vector<PeerId>& peers) {
  EXPECT_EQ(std::set<PeerId>(peers.begin(), peers.end()).size(), peers.size());
}

TEST(KadLookup, ConvergesToTheTrueClosestPeers) {
  std::mt19937_64 rng(21);
  const PeerId self = test::random_peer(rng);
  const auto universe = test::random_peers(rng, 300);
  for (int round = 0; round < 20; ++round) {
    const Key target = test::random_key(rng);
    // Seeds: three peers far from the target.
    auto by_distance = test::closest_by_brute_force(universe, target, universe.size());
    const std::vector<PeerId> seeds(by_distance.end() - 3, by_distance.end());
    Lookup lookup(self, target, seeds);
    EXPECT_FALSE(lookup.done());
    const auto asked = run(lookup, perfect_network(universe, target), kDefaultAlpha);
    ASSERT_TRUE(lookup.done());
    EXPECT_EQ(lookup.result(), test::closest_by_brute_force(universe, target, kBucketSize));
    expect_distinct(asked);
    EXPECT_EQ(lookup.stats().queries_sent, asked.size());
    EXPECT_EQ(lookup.stats().responses, asked.size());
    EXPECT_EQ(lookup.stats().failures, 0u);
    EXPECT_EQ(lookup.stats().unexpected, 0u);
    // Three seeds and, after the first answer, the true 20: nobody else is worth asking.
    EXPECT_LE(asked.size(), 3u + kBucketSize);
    EXPECT_GE(lookup.hops(), 1);
  }
}

TEST(KadLookup, AlphaBoundsTheRequestsInFlight) {
  std::mt19937_64 rng(22);
  const PeerId self = test::random_peer(rng);
  const Key target = test::random_key(rng);
  const auto seeds = test::random_peers(rng, 50);
  const auto sorted = test::closest_by_brute_force(seeds, target, seeds.size());

  Lookup lookup(self, target, seeds);
  auto first = lookup.next_requests();
  // The α closest seeds, closest first.
  EXPECT_EQ(first, std::vector<PeerId>(sorted.begin(), sorted.begin() + kDefaultAlpha));
  EXPECT_TRUE(lookup.next_requests().empty());
  EXPECT_EQ(lookup.in_flight(), kDefaultAlpha);
  lookup.on_response(first[4], {});
  auto second = lookup.next_requests();
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0], sorted[kDefaultAlpha]);
  lookup.on_failure(first[0]);
  EXPECT_EQ(lookup.next_requests(), std::vector<PeerId>{sorted[kDefaultAlpha + 1]});

  LookupConfig narrow;
  narrow.alpha = 3;
  Lookup small(self, target, seeds, narrow);
  const auto asked = run(
      small, [](const PeerId&) { return std::vector<PeerId>{}; }, 3);
  EXPECT_EQ(asked, std::vector<PeerId>(sorted.begin(), sorted.begin() + kBucketSize));
}

TEST(KadLookup, AsksOnlyTheKClosestKnownPeers) {
  std::mt19937_64 rng(23);
  const PeerId self = test::random_peer(rng);
  const Key target = test::random_key(rng);
  const auto seeds = test::random_peers(rng, 30);
  LookupConfig config;
  config.k = 5;
  Lookup lookup(self, target, seeds, config);
  const auto asked = run(
      lookup, [](const PeerId&) { return std::vector<PeerId>{}; }, 10);
  const auto closest = test::closest_by_brute_force(seeds, target, 5);
  EXPECT_EQ(asked, closest);
  EXPECT_EQ(lookup.result(), closest);
  EXPECT_EQ(lookup.hops(), 0);  // seeds only
}

TEST(KadLookup, NoSeedsMeansDoneAtOnce) {
  std::mt19937_64 rng(24);
  Lookup lookup(test::random_peer(rng), test::random_key(rng), {});
  EXPECT_TRUE(lookup.done());
  EXPECT_TRUE(lookup.next_requests().empty());
  EXPECT_TRUE(lookup.result().empty());
  EXPECT_EQ(lookup.hops(), 0);
}

TEST(KadLookup, EndsWhenFewerThanKPeersAllAnswered) {
  std::mt19937_64 rng(25);
  const PeerId self = test::random_peer(rng);
  const auto universe = test::random_peers(rng, 5);
  const Key target = test::random_key(rng);
  Lookup lookup(self, target, std::vector<PeerId>{universe[0]});
  const auto asked = run(
      lookup, [&](const PeerId&) { return universe; }, kDefaultAlpha);
  EXPECT_EQ(asked.size(), 5u);
  EXPECT_EQ(lookup.result(), test::closest_by_brute_force(universe, target, kBucketSize));
}

TEST(KadLookup, FailedPeersAreLeftOutAndFartherOnesAsked) {
  std::mt19937_64 rng(26);
  const PeerId self = test::random_peer(rng);
  const auto universe = test::random_peers(rng, 300);
  const Key target = test::random_key(rng);
  const auto truth = test::closest_by_brute_force(universe, target, universe.size());
  // The 5 closest peers and every 3rd of the next 30 are down.
  std::set<PeerId> down(truth.begin(), truth.begin() + 5);
  for (std::size_t i = 5; i < 35; i += 3)
    down.insert(truth[i]);
  const auto live = without(universe, down);
  // The perfect network names the true closest, including the dead ones, so the lookup must
  // go past them; answers list the 40 closest here so that enough live ones are named.
  auto named = test::closest_by_brute_force(universe, target, kBucketSize + 20);
  Answer answer = [&](const PeerId& peer) -> std::optional<std::vector<PeerId>> {
    if (down.contains(peer)) return std::nullopt;
    return named;
  };
  Lookup lookup(self, target, std::vector<PeerId>(truth.end() - 2, truth.end()));
  const auto asked = run(lookup, answer, kDefaultAlpha);
  EXPECT_EQ(lookup.result(), test::closest_by_brute_force(live, target, kBucketSize));
  EXPECT_EQ(lookup.stats().failures, down.size());
  expect_distinct(asked);

  // k = 2: the two closest seeds fail, the next two are asked and make the result.
  LookupConfig config;
  config.k = 2;
  const auto seeds = test::random_peers(rng, 4);
  const auto order = test::closest_by_brute_force(seeds, target, 4);
  Lookup small(self, target, seeds, config);
  std::set<PeerId> small_down{order[0], order[1]};
  run(
      small,
      [&](const PeerId& peer) -> std::optional<std::vector<PeerId>> {
        if (small_down.contains(peer)) return std::nullopt;
        return std::vector<PeerId>{};
      },
      kDefaultAlpha);
  EXPECT_EQ(small.result(), (std::vector<PeerId>{order[2], order[3]}));
}

TEST(KadLookup, AllPeersFailingEndsWithAnEmptyResult) {
  std::mt19937_64 rng(27);
  const auto seeds = test::random_peers(rng, 8);
  Lookup lookup(test::random_peer(rng), test::random_key(rng), seeds);
  const auto asked = run(
      lookup, [](const PeerId&) { return std::optional<std::vector<PeerId>>(); }, 10);
  EXPECT_EQ(asked.size(), 8u);
  EXPECT_TRUE(lookup.result().empty());
  EXPECT_EQ(lookup.stats().failures, 8u);
}

TEST(KadLookup, SelfAndDuplicatesAreSkipped) {
  std::mt19937_64 rng(28);
  const PeerId self = test::random_peer(rng);
  const auto universe = test::random_peers(rng, 10);
  // The target is our own key (a self-lookup): we are the closest peer to it, and every
  // answer names us, the responder itself and duplicates.
  const Key target = Key::of_peer(self);
  Answer answer = [&](const PeerId& peer) -> std::optional<std::vector<PeerId>> {
    std::vector<PeerId> out{self, peer, self};
    for (const PeerId& p : universe)
      out.push_back(p);
    for (const PeerId& p : universe)
      out.push_back(p);
    return out;
  };
  Lookup lookup(self, target, std::vector<PeerId>{universe[3], self, universe[3]});
  const auto asked = run(lookup, answer, kDefaultAlpha);
  expect_distinct(asked);
  EXPECT_EQ(asked.size(), universe.size());
  EXPECT_EQ(std::set<PeerId>(asked.begin(), asked.end()).count(self), 0u);
  EXPECT_EQ(lookup.stats().peers_seen, universe.size());
  EXPECT_EQ(lookup.result(), test::closest_by_brute_force(universe, target, kBucketSize));
}

TEST(KadLookup, HostileHugeResponseIsCapped) {
  std::mt19937_64 rng(29);
  const PeerId self = test::random_peer(rng);
  const Key target = test::random_key(rng);
  const auto seeds = test::random_peers(rng, 2);
  const auto flood = test::random_peers(rng, 10'000);
  Lookup lookup(self, target, seeds);
  const auto first = lookup.next_requests();
  ASSERT_EQ(first.size(), 2u);
  lookup.on_response(first[0], flood);
  EXPECT_EQ(lookup.stats().peers_seen, 2u + kMaxCloserPeersPerResponse);
  EXPECT_EQ(lookup.stats().closer_peers_ignored, flood.size() - kMaxCloserPeersPerResponse);
  // The peers taken are the first ones of the list; the lookup goes on with them.
  const std::vector<PeerId> taken(flood.begin(), flood.begin() + kMaxCloserPeersPerResponse);
  lookup.on_response(first[1], {});
  const auto asked = run(
      lookup, [](const PeerId&) { return std::vector<PeerId>{}; }, 10);
  for (const PeerId& peer : asked) {
    EXPECT_NE(std::find(taken.begin(), taken.end(), peer), taken.end());
  }
  const auto seen = [&] {
    std::vector<PeerId> all = taken;
    all.insert(all.end(), seeds.begin(), seeds.end());
    return all;
  }();
  EXPECT_EQ(lookup.result(), test::closest_by_brute_force(seen, target, kBucketSize));
}

TEST(KadLookup, EndlessNetworkKeepsTheStateBoundedAndEnds) {
  // Every answer names 40 peers never seen before, as an endless network would: the lookup
  // still ends, because fewer and fewer new names beat its k-th closest peer. (The cap on what
  // it remembers is exercised by the next test.)
  std::mt19937_64 rng(30);
  const PeerId self = test::random_peer(rng);
  const Key target = test::random_key(rng);
  Lookup lookup(self, target, test::random_peers(rng, kBucketSize));
  std::size_t most_known = 0;
  Answer answer = [&](const PeerId&) -> std::optional<std::vector<PeerId>> {
    most_known = std::max(most_known, lookup.known_peers());
    return test::random_peers(rng, kMaxCloserPeersPerResponse);
  };
  run(lookup, answer, kDefaultAlpha);
  EXPECT_TRUE(lookup.done());
  EXPECT_EQ(lookup.result().size(), kBucketSize);
  EXPECT_LE(most_known, kMaxLookupPeers);
  EXPECT_LE(lookup.known_peers(), kMaxLookupPeers);
  std::cout << "endless network: " << lookup.stats().queries_sent << " queries, "
            << lookup.stats().peers_seen << " peers seen, " << lookup.known_peers()
            << " remembered\n";
}

TEST(KadLookup, BeyondTheCapTheFarthestUnaskedPeersAreForgotten) {
  // 200 seeds in flight at once each name 40 new peers: 8,000 peers, twice the cap.
  std::mt19937_64 rng(34);
  const PeerId self = test::random_peer(rng);
  const Key target = test::random_key(rng);
  LookupConfig config;
  config.k = 200;
  config.alpha = 200;
  const auto seeds = test::random_peers(rng, 200);
  Lookup lookup(self, target, seeds, config);
  const auto first = lookup.next_requests();
  ASSERT_EQ(first.size(), seeds.size());
  std::vector<PeerId> everyone = seeds;
  for (const PeerId& peer : first) {
    const auto named = test::random_peers(rng, kMaxCloserPeersPerResponse);
    everyone.insert(everyone.end(), named.begin(), named.end());
    lookup.on_response(peer, named);
    EXPECT_LE(lookup.known_peers(), kMaxLookupPeers);
  }
  EXPECT_EQ(lookup.known_peers(), kMaxLookupPeers);
  EXPECT_EQ(lookup.stats().peers_seen, everyone.size());
  // What is asked next comes from the closest peers: the forgotten ones were the farthest.
  const auto kept = test::closest_by_brute_force(everyone, target, kMaxLookupPeers);
  const std::set<PeerId> kept_set(kept.begin(), kept.end());
  const auto next = lookup.next_requests();
  EXPECT_FALSE(next.empty());
  for (const PeerId& peer : next)
    EXPECT_TRUE(kept_set.contains(peer));
}

TEST(KadLookup, ReportsOutOfPlaceAreIgnored) {
  std::mt19937_64 rng(31);
  const PeerId self = test::random_peer(rng);
  const Key target = test::random_key(rng);
  const auto seeds = test::random_peers(rng, 3);
  const PeerId stranger = test::random_peer(rng);
  Lookup lookup(self, target, seeds);
  // Not asked yet: a response is unexpected and does not count as an answer.
  lookup.on_response(seeds[0], std::vector<PeerId>{stranger});
  lookup.on_failure(stranger);
  EXPECT_EQ(lookup.stats().unexpected, 2u);
  EXPECT_EQ(lookup.stats().peers_seen, 3u);
  const auto asked = lookup.next_requests();
  ASSERT_EQ(asked.size(), 3u);
  lookup.on_response(asked[0], {});
  lookup.on_response(asked[0], {});  // twice
  lookup.on_failure(asked[0]);       // after its answer
  EXPECT_EQ(lookup.stats().unexpected, 4u);
  EXPECT_EQ(lookup.stats().responses, 1u);
  lookup.on_response(asked[1], {});
  lookup.on_response(asked[2], {});
  ASSERT_TRUE(lookup.done());
  const auto result = lookup.result();
  // Done is sticky: later reports change nothing.
  lookup.on_response(asked[2], std::vector<PeerId>{stranger});
  EXPECT_TRUE(lookup.done());
  EXPECT_EQ(lookup.result(), result);
  EXPECT_TRUE(lookup.next_requests().empty());
}

TEST(KadLookup, AtTheDeadlineTheResultIsTheBestSoFar) {
  std::mt19937_64 rng(32);
  const PeerId self = test::random_peer(rng);
  const auto universe = test::random_peers(rng, 300);
  const Key target = test::random_key(rng);
  const auto truth = test::closest_by_brute_force(universe, target, universe.size());
  Lookup lookup(self, target, std::vector<PeerId>(truth.end() - 5, truth.end()));
  auto answer = perfect_network(universe, target);
  // The first round answers; then the deadline passes with the second round in flight.
  const auto first = lookup.next_requests();
  ASSERT_EQ(first.size(), 5u);
  for (const PeerId& peer : first)
    lookup.on_response(peer, *answer(peer));
  const auto second = lookup.next_requests();
  EXPECT_EQ(second.size(), kDefaultAlpha);
  lookup.on_response(second[0], *answer(second[0]));
  EXPECT_FALSE(lookup.done());
  // The caller abandons the lookup here: result() holds the six peers that answered.
  std::vector<PeerId> answered(first.begin(), first.end());
  answered.push_back(second[0]);
  EXPECT_EQ(lookup.result(), test::closest_by_brute_force(answered, target, kBucketSize));
}

TEST(KadLookup, HopsFollowTheShortestReferralChain) {
  std::mt19937_64 rng(33);
  const PeerId self = test::random_peer(rng);
  const Key target = test::random_key(rng);
  const auto p = test::random_peers(rng, 4);  // seed p0 names p1, p1 names p2, p2 names p3
  std::map<PeerId, std::vector<PeerId>> knows{{p[0], {p[1]}}, {p[1], {p[2]}}, {p[2], {p[3]}}};
  Answer answer = [&](const PeerId& peer) { return knows[peer]; };
  Lookup chain(self, target, std::vector<PeerId>{p[0]});
  run(chain, answer, kDefaultAlpha);
  EXPECT_EQ(chain.result().size(), 4u);
  EXPECT_EQ(chain.hops(), 3);

  // When p0 also names p3, p3 is one response away and p2 is the deepest, at two.
  knows[p[0]] = {p[1], p[3]};
  Lookup shortcut(self, target, std::vector<PeerId>{p[0]});
  run(shortcut, answer, kDefaultAlpha);
  EXPECT_EQ(shortcut.result().size(), 4u);
  EXPECT_EQ(shortcut.hops(), 2);
}

}  // namespace
}  // namespace an::p2p::kad
