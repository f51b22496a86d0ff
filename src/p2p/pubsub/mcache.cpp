#include "p2p/pubsub/mcache.h"

#include <algorithm>

namespace an::p2p::pubsub {

MessageCache::MessageCache(int history_length, int history_gossip, std::size_t max_bytes)
    : history_gossip_(std::max(history_gossip, 0)), max_bytes_(max_bytes) {
  windows_.resize(static_cast<std::size_t>(std::max(history_length, 1)));
}

std::size_t MessageCache::message_bytes(const Message& message) {
  // The payload fields, plus a rough allowance for the entry's own bookkeeping.
  constexpr std::size_t kEntryOverhead = 128;
  return message.from.size() + message.data.size() + message.seqno.size() + message.topic.size() +
         message.signature.size() + message.key.size() + kEntryOverhead;
}

bool MessageCache::put(const MessageId& id, const Message& message) {
  if (entries_.contains(id)) return false;
  const std::size_t size = message_bytes(message);
  // Evict from the oldest window until the new message fits.
  while (bytes_ + size > max_bytes_ && !entries_.empty()) {
    auto window = std::find_if(windows_.rbegin(), windows_.rend(),
                               [](const auto& entries) { return !entries.empty(); });
    if (window == windows_.rend()) break;
    erase(window->front().id);
    window->pop_front();
    ++evicted_over_limit_;
  }
  entries_.emplace(id, Entry{message, size, {}});
  bytes_ += size;
  windows_.front().push_back(WindowEntry{id, message.topic});
  return true;
}

const Message* MessageCache::get(const MessageId& id) const {
  auto it = entries_.find(id);
  return it == entries_.end() ? nullptr : &it->second.message;
}

const Message* MessageCache::get_for_peer(const MessageId& id, const PeerId& peer,
                                          int& times_asked) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return nullptr;
  times_asked = ++it->second.asked[peer];
  return &it->second.message;
}

std::vector<MessageId> MessageCache::gossip_ids(std::string_view topic) const {
  std::vector<MessageId> ids;
  const std::size_t windows = std::min(windows_.size(), static_cast<std::size_t>(history_gossip_));
  for (std::size_t i = 0; i < windows; ++i) {
    for (const WindowEntry& entry : windows_[i]) {
      if (entry.topic == topic) ids.push_back(entry.id);
    }
  }
  return ids;
}

void MessageCache::shift() {
  for (const WindowEntry& entry : windows_.back())
    erase(entry.id);
  windows_.pop_back();
  windows_.emplace_front();
}

void MessageCache::erase(const MessageId& id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  bytes_ -= it->second.bytes;
  entries_.erase(it);
}

}  // namespace an::p2p::pubsub
