// Kademlia over a simulated network without sockets: 1,000 nodes (500 under sanitizers) join
// one by one through a bootstrap node with a self-lookup and a refresh of their buckets, as
// go-libp2p-kad-dht does at start; then lookups from random nodes for random targets must find
// the true 20 closest nodes (brute force). Hops, queries and simulated latency per lookup are
// printed and recorded as test properties; nothing here depends on wall time.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <queue>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "p2p/kad/lookup.h"
#include "p2p/kad/routing_table.h"
#include "unit/p2p/kad/kad_test_peers.h"

namespace an::p2p::kad {
namespace {

using namespace std::chrono_literals;

// Sanitizer builds (which CI runs every test under) are ~10x slower: they run the same code
// on a 500-node network, enough to check its memory use; the numbers to quote come from the
// normal build's 1,000 nodes.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif
constexpr std::size_t kNodes = kSanitized ? 500 : 1000;
constexpr std::size_t kMeasuredLookups = 300;
// Each request's round trip in the simulation: uniform in [10, 100] ms.
constexpr int kMinLatencyMs = 10;
constexpr int kMaxLatencyMs = 100;

struct LookupRun {
  std::vector<PeerId> result;
  int hops = 0;
  std::size_t queries = 0;
  std::size_t failures = 0;
  int elapsed_ms = 0;  // simulated
  bool done = false;
};

class SimulatedNetwork {
 public:
  SimulatedNetwork(std::size_t size, std::uint64_t seed) : rng_(seed) {
    nodes_.reserve(size);
    for (std::size_t i = 0; i < size; ++i) {
      PeerId id = test::random_peer(rng_);
      index_.emplace(id, i);
      nodes_.push_back(Node{id, Key::of_peer(id), RoutingTable(id)});
    }
  }

  std::size_t size() const { return nodes_.size(); }
  std::size_t lookups_run() const { return lookups_run_; }
  std::size_t queries_sent() const { return queries_sent_; }
  const PeerId& id(std::size_t node) const { return nodes_[node].id; }
  const RoutingTable& table(std::size_t node) const { return nodes_[node].table; }
  std::mt19937_64& rng() { return rng_; }
  void set_down(std::size_t node, bool down) { nodes_[node].down = down; }

  // Node `joining` knows only `bootstrap`, looks itself up, then refreshes every bucket the
  // way go does right after start (a lookup for a random key of each tracked prefix length).
  void join(std::size_t joining, std::size_t bootstrap) {
    nodes_[joining].table.add(nodes_[bootstrap].id, now_);
    lookup(joining, nodes_[joining].key, /*learn=*/true);
    refresh(joining);
  }

  void refresh(std::size_t node) {
    RoutingTable& table = nodes_[node].table;
    for (int cpl : table.cpls_needing_refresh(now_, kDefaultRefreshInterval)) {
      lookup(node, random_key_with_cpl(table.local_key(), cpl), /*learn=*/true);
    }
  }

  // One lookup driven by simulated time: requests complete after a random latency, and every
  // completion is reported before the next requests are taken. With `learn`, the nodes update
  // their tables as a real network does: the asked node adds the asking one (an inbound query
  // from a DHT server), the asking node adds every node that answered.
  LookupRun lookup(std::size_t from, const Key& target, bool learn) {
    Node& self = nodes_[from];
    Lookup lookup(self.id, target, self.table.nearest(target, kBucketSize));
    using Event = std::pair<int, std::size_t>;  // completion time, node asked
    std::priority_queue<Event, std::vector<Event>, std::greater<>> in_flight;
    std::uniform_int_distribution<int> latency(kMinLatencyMs, kMaxLatencyMs);
    int clock_ms = 0;
    auto send = [&] {
      for (const PeerId& peer : lookup.next_requests()) {
        in_flight.emplace(clock_ms + latency(rng_), index_.at(peer));
      }
    };
    send();
    while (!lookup.done() && !in_flight.empty()) {
      const auto [at, asked] = in_flight.top();
      in_flight.pop();
      clock_ms = at;
      Node& peer = nodes_[asked];
      if (peer.down) {
        lookup.on_failure(peer.id);
      } else {
        if (learn) peer.table.add(self.id, now_);
        // As go's handler (betterPeersToQuery): the k nearest of its table, less the requester.
        std::vector<PeerId> closer = peer.table.nearest(target, kBucketSize);
        std::erase(closer, self.id);
        lookup.on_response(peer.id, closer);
        if (learn) {
          self.table.add(peer.id, now_);
          self.table.mark_successful_query(peer.id, now_);
        }
      }
      send();
    }
    if (learn) self.table.mark_refreshed(target, now_);
    now_ += 1s;
    ++lookups_run_;
    queries_sent_ += lookup.stats().queries_sent;
    return LookupRun{lookup.result(),         lookup.hops(), lookup.stats().queries_sent,
                     lookup.stats().failures, clock_ms,      lookup.done()};
  }

  // The `count` live nodes closest to target, by brute force.
  std::vector<PeerId> true_closest(const Key& target, std::size_t count) const {
    std::vector<std::pair<Key, std::size_t>> by_distance;
    by_distance.reserve(nodes_.size());
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      if (!nodes_[i].down) by_distance.emplace_back(distance(nodes_[i].key, target), i);
    }
    const std::size_t n = std::min(count, by_distance.size());
    std::partial_sort(by_distance.begin(), by_distance.begin() + static_cast<std::ptrdiff_t>(n),
                      by_distance.end());
    std::vector<PeerId> out;
    for (std::size_t i = 0; i < n; ++i)
      out.push_back(nodes_[by_distance[i].second].id);
    return out;
  }

  Key random_key_with_cpl(const Key& local, int cpl) {
    Key::Array bytes = test::random_key(rng_).bytes();
    for (int bit = 0; bit <= cpl; ++bit) {
      const auto byte = static_cast<std::size_t>(bit / 8);
      const auto mask = static_cast<std::uint8_t>(0x80 >> (bit % 8));
      const bool local_bit = (local.bytes()[byte] & mask) != 0;
      const bool want = bit < cpl ? local_bit : !local_bit;
      bytes[byte] = static_cast<std::uint8_t>(want ? (bytes[byte] | mask) : (bytes[byte] & ~mask));
    }
    return Key(bytes);
  }

 private:
  struct Node {
    PeerId id;
    Key key;
    RoutingTable table;
    bool down = false;
  };

  std::mt19937_64 rng_;
  std::vector<Node> nodes_;
  std::unordered_map<PeerId, std::size_t> index_;
  Clock::time_point now_ = Clock::time_point() + 1000h;
  std::size_t lookups_run_ = 0;
  std::size_t queries_sent_ = 0;
};

struct Summary {
  double mean_correct = 0;
  std::size_t all_correct = 0;
  std::size_t lookups = 0;
  double mean_hops = 0;
  int max_hops = 0;
  double mean_queries = 0;
  std::size_t p50_queries = 0, p95_queries = 0, max_queries = 0;
  double mean_ms = 0;
  int p95_ms = 0;
  std::vector<std::size_t> hop_histogram;
};

std::size_t overlap(const std::vector<PeerId>& a, const std::vector<PeerId>& b) {
  std::size_t n = 0;
  for (const PeerId& peer : a)
    n += std::count(b.begin(), b.end(), peer) > 0 ? 1 : 0;
  return n;
}

Summary measure(SimulatedNetwork& network, std::size_t lookups,
                const std::vector<std::size_t>& live) {
  Summary s;
  std::vector<std::size_t> queries;
  std::vector<int> elapsed;
  for (std::size_t i = 0; i < lookups; ++i) {
    const std::size_t from = live[network.rng()() % live.size()];
    const Key target = test::random_key(network.rng());
    const LookupRun run = network.lookup(from, target, /*learn=*/false);
    EXPECT_TRUE(run.done);
    const std::size_t correct = overlap(run.result, network.true_closest(target, kBucketSize));
    s.mean_correct += static_cast<double>(correct);
    if (correct == kBucketSize) ++s.all_correct;
    s.mean_hops += run.hops;
    s.max_hops = std::max(s.max_hops, run.hops);
    if (s.hop_histogram.size() <= static_cast<std::size_t>(run.hops)) {
      s.hop_histogram.resize(static_cast<std::size_t>(run.hops) + 1);
    }
    ++s.hop_histogram[static_cast<std::size_t>(run.hops)];
    queries.push_back(run.queries);
    elapsed.push_back(run.elapsed_ms);
    s.mean_queries += static_cast<double>(run.queries);
    s.mean_ms += run.elapsed_ms;
  }
  const auto n = static_cast<double>(lookups);
  s.lookups = lookups;
  s.mean_correct /= n;
  s.mean_hops /= n;
  s.mean_queries /= n;
  s.mean_ms /= n;
  std::sort(queries.begin(), queries.end());
  std::sort(elapsed.begin(), elapsed.end());
  s.p50_queries = queries[lookups / 2];
  s.p95_queries = queries[lookups * 95 / 100];
  s.max_queries = queries.back();
  s.p95_ms = elapsed[lookups * 95 / 100];
  return s;
}

void report(const std::string& name, const Summary& s) {
  char line[512];
  std::snprintf(line, sizeof(line),
                "%s: %zu lookups, correct %.2f/20 on average, 20/20 in %zu; hops mean %.2f "
                "max %d; queries mean %.1f p50 %zu p95 %zu max %zu; simulated latency "
                "(10-100 ms per request) mean %.0f ms p95 %d ms",
                name.c_str(), s.lookups, s.mean_correct, s.all_correct, s.mean_hops, s.max_hops,
                s.mean_queries, s.p50_queries, s.p95_queries, s.max_queries, s.mean_ms, s.p95_ms);
  std::string histogram = "  hops histogram:";
  for (std::size_t h = 0; h < s.hop_histogram.size(); ++h) {
    histogram += " " + std::to_string(h) + ":" + std::to_string(s.hop_histogram[h]);
  }
  std::printf("%s\n%s\n", line, histogram.c_str());
  std::fflush(stdout);
  ::testing::Test::RecordProperty(name + "_mean_correct", std::to_string(s.mean_correct));
  ::testing::Test::RecordProperty(name + "_all_correct", std::to_string(s.all_correct));
  ::testing::Test::RecordProperty(name + "_mean_hops", std::to_string(s.mean_hops));
  ::testing::Test::RecordProperty(name + "_max_hops", s.max_hops);
  ::testing::Test::RecordProperty(name + "_mean_queries", std::to_string(s.mean_queries));
  ::testing::Test::RecordProperty(name + "_p95_queries", std::to_string(s.p95_queries));
}

SimulatedNetwork& shared_network() {
  // Built once for both tests: node 0 starts alone, then the others join through it one by one.
  static SimulatedNetwork network = [] {
    SimulatedNetwork built(kNodes, 2026);
    for (std::size_t i = 1; i < built.size(); ++i)
      built.join(i, 0);
    std::size_t table_sizes = 0;
    for (std::size_t i = 0; i < built.size(); ++i)
      table_sizes += built.table(i).size();
    std::printf(
        "%zu nodes joined with %zu lookups (%zu queries); routing tables hold %.1f peers "
        "on average\n",
        built.size(), built.lookups_run(), built.queries_sent(),
        static_cast<double>(table_sizes) / static_cast<double>(built.size()));
    return built;
  }();
  return network;
}

TEST(KadSimulation, LookupsFindTheTrueClosestNodes) {
  SimulatedNetwork& network = shared_network();
  std::vector<std::size_t> everyone(network.size());
  for (std::size_t i = 0; i < everyone.size(); ++i)
    everyone[i] = i;

  const Summary s = measure(network, kMeasuredLookups, everyone);
  report("all_up", s);
  EXPECT_GE(s.mean_correct, 19.0);
  EXPECT_GE(s.all_correct, kMeasuredLookups * 8 / 10);
}

TEST(KadSimulation, LookupsRouteAroundTenPercentOfNodesDown) {
  SimulatedNetwork& network = shared_network();
  std::vector<std::size_t> live;
  std::vector<std::size_t> down;
  for (std::size_t i = 0; i < network.size(); ++i)
    (i % 10 == 3 ? down : live).push_back(i);
  for (std::size_t i : down)
    network.set_down(i, true);
  const Summary s = measure(network, kMeasuredLookups, live);
  for (std::size_t i : down)
    network.set_down(i, false);
  report("ten_percent_down", s);
  // The true closest are the closest live nodes; tables still name the dead ones.
  EXPECT_GE(s.mean_correct, 19.0);
  EXPECT_GE(s.all_correct, kMeasuredLookups * 7 / 10);
}

}  // namespace
}  // namespace an::p2p::kad
