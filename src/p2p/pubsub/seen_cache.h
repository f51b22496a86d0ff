// The seen cache of pubsub (go-libp2p-pubsub's seenMessages, a timecache of SeenTTL): message
// IDs already delivered, so that each message is processed once. Each entry also remembers
// when the message was first seen and which mesh peers were credited with delivering it, for
// the P3 score. Bounded in entries: when full, the oldest entries leave early. One thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <unordered_map>
#include <vector>

#include "p2p/crypto/peer_id.h"
#include "p2p/pubsub/mcache.h"
#include "p2p/pubsub/rpc.h"

namespace an::p2p::pubsub {

class SeenCache {
 public:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    Clock::time_point first_seen;
    std::vector<PeerId> credited;  // peers whose copy counted for mesh deliveries (P3)
  };

  SeenCache(Clock::duration ttl, std::size_t max_entries) : ttl_(ttl), max_entries_(max_entries) {}

  Entry* find(const MessageId& id) {
    auto it = entries_.find(id);
    return it == entries_.end() ? nullptr : &it->second;
  }
  bool contains(const MessageId& id) const { return entries_.contains(id); }

  // Adds an ID not seen before.
  Entry& add(const MessageId& id, Clock::time_point now) {
    while (entries_.size() >= max_entries_ && !order_.empty()) {
      entries_.erase(order_.front().second);
      order_.pop_front();
      ++evicted_over_limit_;
    }
    order_.emplace_back(now + ttl_, id);
    return entries_.insert_or_assign(id, Entry{now, {}}).first->second;
  }

  void expire(Clock::time_point now) {
    while (!order_.empty() && order_.front().first <= now) {
      entries_.erase(order_.front().second);
      order_.pop_front();
    }
  }

  std::size_t size() const { return entries_.size(); }
  std::uint64_t evicted_over_limit() const { return evicted_over_limit_; }

 private:
  Clock::duration ttl_;
  std::size_t max_entries_;
  std::uint64_t evicted_over_limit_ = 0;
  std::unordered_map<MessageId, Entry, BytesHash> entries_;
  std::deque<std::pair<Clock::time_point, MessageId>> order_;  // by expiry, oldest first
};

}  // namespace an::p2p::pubsub
