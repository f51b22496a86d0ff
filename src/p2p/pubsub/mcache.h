// The message cache of gossipsub (go-libp2p-pubsub mcache.go): the messages of the last
// `history_length` heartbeats, served to IWANT requests, whose IDs of the last `history_gossip`
// heartbeats are advertised in IHAVE gossip. Also bounded in bytes, since a peer can send us
// many large valid messages within one window. One thread (the Router's).
#pragma once

#include <cstddef>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "p2p/crypto/peer_id.h"
#include "p2p/pubsub/rpc.h"

namespace an::p2p::pubsub {

// Hashes opaque byte strings (message IDs) as text.
struct BytesHash {
  std::size_t operator()(const Bytes& bytes) const noexcept {
    return std::hash<std::string_view>{}(
        std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  }
};

class MessageCache {
 public:
  MessageCache(int history_length, int history_gossip, std::size_t max_bytes);

  // Adds a message to the newest window. Returns false when the message is already cached.
  // When the byte bound is reached, the oldest messages leave first.
  bool put(const MessageId& id, const Message& message);
  const Message* get(const MessageId& id) const;
  // For an IWANT: the message and how many times this peer has now asked for it.
  const Message* get_for_peer(const MessageId& id, const PeerId& peer, int& times_asked);
  // The IDs of the newest `history_gossip` windows in a topic, oldest window first.
  std::vector<MessageId> gossip_ids(std::string_view topic) const;
  // Opens a new window at each heartbeat and forgets the oldest one.
  void shift();

  std::size_t size() const { return entries_.size(); }
  std::size_t bytes() const { return bytes_; }
  std::uint64_t evicted_over_limit() const { return evicted_over_limit_; }

 private:
  struct Entry {
    Message message;
    std::size_t bytes = 0;
    // Peers that asked for it with IWANT, and how often (gossip_retransmission).
    std::unordered_map<PeerId, int> asked;
  };
  struct WindowEntry {
    MessageId id;
    std::string topic;
  };

  void erase(const MessageId& id);
  static std::size_t message_bytes(const Message& message);

  int history_gossip_;
  std::size_t max_bytes_;
  std::size_t bytes_ = 0;
  std::uint64_t evicted_over_limit_ = 0;
  std::unordered_map<MessageId, Entry, BytesHash> entries_;
  // Front: the newest window. A window is a deque because the byte bound evicts from the front
  // of the oldest one on every put once the cache is full.
  std::deque<std::deque<WindowEntry>> windows_;
};

}  // namespace an::p2p::pubsub
