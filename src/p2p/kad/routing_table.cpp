#include "p2p/kad/routing_table.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "p2p/multiformats/multihash.h"

namespace an::p2p::kad {

RoutingTable::RoutingTable(PeerId local, RoutingTableConfig config)
    : local_(std::move(local)), local_key_(Key::of_peer(local_)), config_(config) {
  if (config_.bucket_size == 0) config_.bucket_size = 1;
}

AddOutcome RoutingTable::add(const PeerId& peer, Clock::time_point now, bool replaceable) {
  const Key key = Key::of_peer(peer);
  const int cpl = bucket_index(key);
  if (cpl >= kKeyBits) return {AddResult::self, std::nullopt};
  Bucket& bucket = buckets_[static_cast<std::size_t>(cpl)];
  for (const RoutingEntry& entry : bucket) {
    if (entry.key == key) return {AddResult::already_present, std::nullopt};
  }

  RoutingEntry entry{peer, key, now, now, std::nullopt, replaceable};
  if (bucket.size() < config_.bucket_size) {
    bucket.push_back(std::move(entry));
    ++size_;
    deepest_ = std::max(deepest_, cpl);
    if (membership_) membership_(peer, true);
    return {AddResult::added, std::nullopt};
  }

  // Full: a replaceable peer goes first, else the stalest peer past stale_after. Among several
  // replaceable peers the one with the oldest successful query goes.
  auto victim = bucket.end();
  for (auto it = bucket.begin(); it != bucket.end(); ++it) {
    const bool stale = now - it->last_successful_query > config_.stale_after;
    if (!it->replaceable && !stale) continue;
    if (victim == bucket.end()) {
      victim = it;
      continue;
    }
    const bool better = (it->replaceable && !victim->replaceable) ||
                        (it->replaceable == victim->replaceable &&
                         it->last_successful_query < victim->last_successful_query);
    if (better) victim = it;
  }
  if (victim == bucket.end()) return {AddResult::bucket_full, std::nullopt};
  PeerId evicted = std::move(victim->id);
  *victim = std::move(entry);
  if (membership_) {
    membership_(evicted, false);
    membership_(peer, true);
  }
  return {AddResult::added, std::move(evicted)};
}

bool RoutingTable::remove(const PeerId& peer) {
  const Key key = Key::of_peer(peer);
  const int cpl = bucket_index(key);
  if (cpl >= kKeyBits) return false;
  Bucket& bucket = buckets_[static_cast<std::size_t>(cpl)];
  auto it = std::find_if(bucket.begin(), bucket.end(),
                         [&](const RoutingEntry& entry) { return entry.key == key; });
  if (it == bucket.end()) return false;
  // `peer` may be the entry's own ID.
  PeerId removed = std::move(it->id);
  bucket.erase(it);
  --size_;
  while (deepest_ >= 0 && buckets_[static_cast<std::size_t>(deepest_)].empty())
    --deepest_;
  if (membership_) membership_(removed, false);
  return true;
}

const RoutingEntry* RoutingTable::find(const PeerId& peer) const {
  return const_cast<RoutingTable*>(this)->find_mutable(peer);
}

RoutingEntry* RoutingTable::find_mutable(const PeerId& peer) {
  const Key key = Key::of_peer(peer);
  const int cpl = bucket_index(key);
  if (cpl >= kKeyBits) return nullptr;
  for (RoutingEntry& entry : buckets_[static_cast<std::size_t>(cpl)]) {
    if (entry.key == key) return &entry;
  }
  return nullptr;
}

bool RoutingTable::mark_successful_query(const PeerId& peer, Clock::time_point now) {
  RoutingEntry* entry = find_mutable(peer);
  if (entry == nullptr) return false;
  entry->last_successful_query = std::max(entry->last_successful_query, now);
  return true;
}

bool RoutingTable::mark_useful(const PeerId& peer, Clock::time_point now) {
  RoutingEntry* entry = find_mutable(peer);
  if (entry == nullptr) return false;
  entry->last_useful = now;
  return true;
}

bool RoutingTable::set_replaceable(const PeerId& peer, bool replaceable) {
  RoutingEntry* entry = find_mutable(peer);
  if (entry == nullptr) return false;
  entry->replaceable = replaceable;
  return true;
}

std::vector<PeerId> RoutingTable::nearest(const Key& target, std::size_t count) const {
  // Every bucket is a contiguous range of distances to target, so whole buckets are taken in
  // order of distance and only the entries inside one bucket need sorting. With
  // c = cpl(target, local):
  // - bucket c comes first: its peers share at least c + 1 leading bits with target;
  // - then the buckets j > c (exactly c shared bits). Their distances agree with
  //   local XOR target on bits c+1 .. j-1 and have bit j equal to NOT local_j XOR target_j; so
  //   where target_j != local_j bucket j is closer than every deeper bucket, else farther:
  //   the j with target_j != local_j in increasing order, then the others in decreasing order;
  // - then buckets c - 1, c - 2, ... 0, each one shared bit fewer.
  std::vector<PeerId> out;
  if (count == 0 || size_ == 0) return out;
  out.reserve(std::min(count, size_));
  const int c = bucket_index(target);
  auto bit = [](const Key& key, int index) {
    return (key.bytes()[static_cast<std::size_t>(index / 8)] >> (7 - index % 8)) & 1;
  };
  // Buckets deeper than the deepest non-empty one are empty: they are left out.
  std::vector<int> order;
  order.reserve(static_cast<std::size_t>(std::max(c, deepest_)) + 1);
  if (c <= deepest_) order.push_back(c);
  for (int j = c + 1; j <= deepest_; ++j) {
    if (bit(target, j) != bit(local_key_, j)) order.push_back(j);
  }
  for (int j = deepest_; j > c; --j) {
    if (bit(target, j) == bit(local_key_, j)) order.push_back(j);
  }
  for (int j = std::min(c, deepest_ + 1) - 1; j >= 0; --j)
    order.push_back(j);

  std::vector<std::pair<Key, const RoutingEntry*>> bucket;  // (distance to target, entry)
  bucket.reserve(config_.bucket_size);
  for (int index : order) {
    if (out.size() == count) break;
    const Bucket& entries = buckets_[static_cast<std::size_t>(index)];
    if (entries.empty()) continue;
    bucket.clear();
    for (const RoutingEntry& entry : entries) {
      bucket.emplace_back(distance(entry.key, target), &entry);
    }
    // Distances are distinct (XOR with target is a bijection): the entries never compare.
    std::sort(bucket.begin(), bucket.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [d, entry] : bucket) {
      if (out.size() == count) break;
      out.push_back(entry->id);
    }
  }
  return out;
}

std::size_t RoutingTable::bucket_size(int cpl) const {
  if (cpl < 0 || cpl >= kKeyBits) return 0;
  return buckets_[static_cast<std::size_t>(cpl)].size();
}

std::vector<PeerId> RoutingTable::peers() const {
  std::vector<PeerId> out;
  out.reserve(size_);
  for (const Bucket& bucket : buckets_) {
    for (const RoutingEntry& entry : bucket)
      out.push_back(entry.id);
  }
  return out;
}

std::vector<int> RoutingTable::cpls_needing_refresh(Clock::time_point now,
                                                    Clock::duration interval) const {
  std::vector<int> out;
  const int last = std::min(max_common_prefix_length(), kMaxCplForRefresh);
  for (int cpl = 0; cpl <= last; ++cpl) {
    const auto& at = refreshed_at_[static_cast<std::size_t>(cpl)];
    if (!at || now - *at >= interval) out.push_back(cpl);
  }
  return out;
}

void RoutingTable::mark_refreshed(const Key& target, Clock::time_point now) {
  const int cpl = bucket_index(target);
  if (cpl > kMaxCplForRefresh) return;
  refreshed_at_[static_cast<std::size_t>(cpl)] = now;
}

std::optional<PeerId> random_peer_id_in_bucket(const Key& local, int cpl,
                                               const std::function<std::uint64_t()>& random) {
  if (cpl < 0 || cpl > kMaxCplForRefresh) return std::nullopt;
  Bytes multihash(2 + kSha256DigestSize);
  multihash[0] = static_cast<std::uint8_t>(kSha2_256MultihashCode);
  multihash[1] = static_cast<std::uint8_t>(kSha256DigestSize);
  const std::uint64_t tries = kRefreshTargetTriesPerBucketSpan << (cpl + 1);
  for (std::uint64_t attempt = 0; attempt < tries; ++attempt) {
    for (std::size_t i = 0; i < kSha256DigestSize; i += sizeof(std::uint64_t)) {
      const std::uint64_t word = random();
      std::memcpy(multihash.data() + 2 + i, &word, sizeof(word));
    }
    if (common_prefix_length(local, Key::hash(multihash)) != cpl) continue;
    auto peer = PeerId::from_multihash(multihash);
    if (peer) return std::move(*peer);
  }
  return std::nullopt;
}

}  // namespace an::p2p::kad
