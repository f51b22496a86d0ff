// A network of pubsub Routers without sockets for the router's tests: RPCs go through one
// in-memory FIFO queue, time is a virtual clock, and every random choice comes from a seed, so
// a run is reproducible. Nodes are Routers; "raw" peers are identities the test drives by hand
// (hostile or scripted peers) whose received RPCs are recorded.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "p2p/crypto/key.h"
#include "p2p/pubsub/router.h"

namespace an::p2p::pubsub::testing {

inline PrivateKey key_from_index(std::uint64_t index) {
  Bytes seed(32, 0);
  for (int i = 0; i < 8; ++i)
    seed[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(index >> (8 * i));
  seed[31] = 0xa5;
  auto ed25519 = Ed25519PrivateKey::from_seed(seed);
  EXPECT_TRUE(ed25519.has_value());
  return PrivateKey::from_ed25519(std::move(*ed25519));
}

// A message signed by `key`, as a peer would publish it.
inline Message signed_message(const PrivateKey& key, std::string topic, Bytes data,
                              std::uint64_t seqno) {
  Message message;
  message.topic = std::move(topic);
  message.data = std::move(data);
  message.seqno.resize(8);
  for (int i = 7; i >= 0; --i) {
    message.seqno[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(seqno & 0xff);
    seqno >>= 8;
  }
  EXPECT_TRUE(sign_message(message, key).has_value());
  return message;
}

class SimNetwork {
 public:
  using Clock = std::chrono::steady_clock;

  struct Node {
    PrivateKey key;
    PeerId id;
    std::unique_ptr<Router> router;  // null for a raw peer
    std::map<MessageId, int> delivered;
    std::vector<Rpc> received;          // raw peers only
    std::uint64_t copies_received = 0;  // message copies that arrived, duplicates included
  };

  explicit SimNetwork(std::uint64_t seed, RouterConfig config = {})
      : seed_(seed), config_(config) {}

  std::size_t add_router() { return add_node(true, config_); }
  std::size_t add_router(RouterConfig config) { return add_node(true, std::move(config)); }
  std::size_t add_raw_peer() { return add_node(false, config_); }

  Node& node(std::size_t index) { return *nodes_[index]; }
  Router& router(std::size_t index) { return *nodes_[index]->router; }
  std::size_t size() const { return nodes_.size(); }
  Clock::time_point now() const { return now_; }

  // `a` dialled `b`.
  void connect(std::size_t a, std::size_t b, PeerProtocol protocol = PeerProtocol::kMeshsub11,
               std::string ip_a = "", std::string ip_b = "") {
    if (a == b || links_.contains({std::min(a, b), std::max(a, b)})) return;
    links_.insert({std::min(a, b), std::max(a, b)});
    if (nodes_[a]->router) nodes_[a]->router->add_peer(nodes_[b]->id, protocol, true, ip_b, now_);
    if (nodes_[b]->router) nodes_[b]->router->add_peer(nodes_[a]->id, protocol, false, ip_a, now_);
  }
  void disconnect(std::size_t a, std::size_t b) {
    if (links_.erase({std::min(a, b), std::max(a, b)}) == 0) return;
    if (nodes_[a]->router) nodes_[a]->router->remove_peer(nodes_[b]->id, now_);
    if (nodes_[b]->router) nodes_[b]->router->remove_peer(nodes_[a]->id, now_);
  }
  bool connected(std::size_t a, std::size_t b) const {
    return links_.contains({std::min(a, b), std::max(a, b)});
  }

  // A raw peer sends an RPC to a node.
  void inject(std::size_t from, std::size_t to, Rpc rpc) {
    queue_.push_back(Envelope{from, to, std::move(rpc)});
  }

  // Delivers queued RPCs until none are left. RPCs over a link that no longer exists are lost,
  // as they would be with a closed connection.
  void run() {
    while (!queue_.empty()) {
      Envelope envelope = std::move(queue_.front());
      queue_.pop_front();
      ++rpcs_delivered_;
      if (!connected(envelope.from, envelope.to)) continue;
      Node& target = *nodes_[envelope.to];
      target.copies_received += envelope.rpc.publish.size();
      if (target.router) {
        target.router->handle_rpc(nodes_[envelope.from]->id, std::move(envelope.rpc), now_);
      } else {
        target.received.push_back(std::move(envelope.rpc));
      }
    }
  }

  void advance(Clock::duration step) { now_ += step; }

  // One heartbeat interval passes: every router beats, then the network settles.
  void heartbeat() {
    now_ += config_.params.heartbeat_interval;
    for (auto& node : nodes_) {
      if (node->router) node->router->heartbeat(now_);
    }
    run();
  }
  void heartbeats(int count) {
    for (int i = 0; i < count; ++i)
      heartbeat();
  }

  std::uint64_t rpcs_delivered() const { return rpcs_delivered_; }

 private:
  struct Envelope {
    std::size_t from;
    std::size_t to;
    Rpc rpc;
  };

  std::size_t add_node(bool with_router, RouterConfig config) {
    const std::size_t index = nodes_.size();
    PrivateKey key = key_from_index(seed_ * 1000003 + index);
    auto node = std::make_unique<Node>(Node{key, key.peer_id(), nullptr, {}, {}, 0});
    if (with_router) {
      config.rng_seed = seed_ * 7919 + index + 1;
      Router::Callbacks callbacks;
      callbacks.send = [this, index](const PeerId& to, Rpc rpc) {
        auto it = index_by_id_.find(to);
        ASSERT_NE(it, index_by_id_.end());
        queue_.push_back(Envelope{index, it->second, std::move(rpc)});
      };
      Node* raw = node.get();
      callbacks.deliver = [raw](const ReceivedMessage& message) { ++raw->delivered[message.id]; };
      callbacks.px_candidate = [this, index](const PeerId& peer, const Bytes&) {
        px_candidates_[index].push_back(peer);
      };
      node->router = std::make_unique<Router>(key, config, callbacks);
    }
    index_by_id_.emplace(node->id, index);
    nodes_.push_back(std::move(node));
    return index;
  }

 public:
  std::map<std::size_t, std::vector<PeerId>> px_candidates_;

 private:
  std::uint64_t seed_;
  RouterConfig config_;
  Clock::time_point now_ = Clock::time_point{} + std::chrono::hours(1);
  std::vector<std::unique_ptr<Node>> nodes_;
  std::map<PeerId, std::size_t> index_by_id_;
  std::set<std::pair<std::size_t, std::size_t>> links_;
  std::deque<Envelope> queue_;
  std::uint64_t rpcs_delivered_ = 0;
};

}  // namespace an::p2p::pubsub::testing
