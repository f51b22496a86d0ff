// PubSub end to end over 127.0.0.1: Hosts with the service subscribe and publish; raw streams
// play a hostile or a slow peer. Every wait is bounded (run_until), none is a timed assertion.
#include "p2p/pubsub/io/pubsub.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "p2p/multiformats/varint.h"
#include "p2p/rcmgr/limits.h"
#include "unit/p2p/net/net_test_support.h"

namespace an::p2p::net::test {
namespace {

using pubsub::PubSub;
using pubsub::PubSubConfig;
using pubsub::ReceivedMessage;
using pubsub::Subscription;

constexpr std::string_view kTopic = "agents";

// go-libp2p's default limits for a machine of 1 GiB of memory budget, as a node runs with.
rcmgr::LimitConfig default_limits() {
  return rcmgr::scaled_default_limits(std::int64_t{1} << 30, 1024);
}

Bytes framed(const Bytes& body) {
  Bytes frame;
  append_varint(frame, body.size());
  frame.insert(frame.end(), body.begin(), body.end());
  return frame;
}

bool contains_peer(const std::vector<PeerId>& peers, const PeerId& peer) {
  return std::find(peers.begin(), peers.end(), peer) != peers.end();
}

// A Host with the service, recording what its subscriptions receive.
struct Node {
  Node(asio::io_context& io, std::string name, PubSubConfig config = {})
      : peer(io, std::move(name), default_limits()),
        pubsub(peer.host(), peer.host().identity().key, std::move(config)) {
    pubsub.set_log([this](std::string_view line) { log.emplace_back(line); });
    pubsub.start();
  }

  std::unique_ptr<Subscription> subscribe(std::string_view topic) {
    auto subscription =
        pubsub.subscribe(std::string(topic),
                         [this](const ReceivedMessage& message) { received.push_back(message); });
    EXPECT_TRUE(subscription) << (subscription ? "" : subscription.error().message);
    return subscription ? std::move(*subscription) : nullptr;
  }

  std::size_t count_of(const pubsub::MessageId& id) const {
    return static_cast<std::size_t>(std::count_if(
        received.begin(), received.end(), [&](const ReceivedMessage& m) { return m.id == id; }));
  }

  TestPeer peer;
  PubSub pubsub;
  std::vector<ReceivedMessage> received;
  std::vector<std::string> log;
};

class PubSubTest : public ::testing::Test {
 protected:
  void connect(TestPeer& from, TestPeer& to) {
    auto connection =
        run_coroutine(io, [&]() -> asio::awaitable<Expected<std::shared_ptr<Connection>>> {
          co_return co_await from.host().connect(to.dial_address());
        });
    ASSERT_TRUE(connection && *connection) << (connection ? connection->error().message : "");
  }

  // Waits until `node` knows each of `peers` as subscribed to `topic`.
  bool wait_topic_peers(Node& node, std::string_view topic, const std::vector<const Node*>& peers) {
    return run_until(io, [&] {
      auto known = node.pubsub.topic_peers(topic);
      return std::all_of(peers.begin(), peers.end(),
                         [&](const Node* peer) { return contains_peer(known, peer->peer.id()); });
    });
  }

  pubsub::MessageId publish(Node& node, std::string_view text, std::string_view topic = kTopic) {
    auto id = node.pubsub.publish(topic, text_bytes(text));
    EXPECT_TRUE(id) << (id ? "" : id.error().message);
    return id ? *id : pubsub::MessageId{};
  }

  // A raw stream from `from` (a host without the service) to `to` on a pubsub protocol.
  std::shared_ptr<Stream> open_raw(TestPeer& from, const TestPeer& to,
                                   std::string_view protocol = pubsub::kMeshsub11Protocol) {
    auto stream = run_coroutine(io, [&]() -> asio::awaitable<Expected<std::shared_ptr<Stream>>> {
      std::vector<std::string> protocols(1, std::string(protocol));
      co_return co_await from.host().new_stream(to.id(), std::move(protocols));
    });
    EXPECT_TRUE(stream && *stream) << (stream ? stream->error().message : "");
    if (!stream || !*stream) return nullptr;
    return **stream;
  }

  Expected<void> write_raw(Stream& stream, const Bytes& bytes) {
    auto written = run_coroutine(io, [&]() -> asio::awaitable<Expected<void>> {
      co_return co_await stream.write_all(bytes);
    });
    if (!written) return fail("write did not finish");
    return *written;
  }

  asio::io_context io;
};

TEST_F(PubSubTest, EverySubscriberGetsEveryMessageOnce) {
  std::vector<std::unique_ptr<Node>> nodes;
  for (int i = 0; i < 5; ++i)
    nodes.push_back(std::make_unique<Node>(io, "pubsub-" + std::to_string(i)));
  // A ring with one chord: messages from node 0 reach node 3 only through others.
  connect(nodes[0]->peer, nodes[1]->peer);
  connect(nodes[1]->peer, nodes[2]->peer);
  connect(nodes[2]->peer, nodes[3]->peer);
  connect(nodes[3]->peer, nodes[4]->peer);
  connect(nodes[4]->peer, nodes[0]->peer);
  connect(nodes[1]->peer, nodes[3]->peer);
  std::vector<std::unique_ptr<Subscription>> subscriptions;
  for (auto& node : nodes)
    subscriptions.push_back(node->subscribe(kTopic));
  ASSERT_TRUE(wait_topic_peers(*nodes[0], kTopic, {nodes[1].get(), nodes[4].get()}));
  ASSERT_TRUE(
      wait_topic_peers(*nodes[3], kTopic, {nodes[1].get(), nodes[2].get(), nodes[4].get()}));
  ASSERT_TRUE(run_until(io, [&] {
    return std::all_of(nodes.begin(), nodes.end(),
                       [](const auto& node) { return !node->pubsub.mesh_peers(kTopic).empty(); });
  }));

  std::vector<pubsub::MessageId> ids;
  for (int i = 0; i < 3; ++i)
    ids.push_back(publish(*nodes[0], "from zero " + std::to_string(i)));
  ids.push_back(publish(*nodes[3], "from three"));
  auto all_have = [&](const std::vector<pubsub::MessageId>& wanted) {
    return std::all_of(nodes.begin(), nodes.end(), [&](const auto& node) {
      return std::all_of(wanted.begin(), wanted.end(),
                         [&](const auto& id) { return node->count_of(id) > 0; });
    });
  };
  ASSERT_TRUE(run_until(io, [&] { return all_have(ids); }));
  // A last message from the far side: by the time everyone has it, copies of the earlier ones
  // that took longer paths have arrived too.
  const auto marker = publish(*nodes[2], "marker");
  ASSERT_TRUE(run_until(io, [&] { return all_have({marker}); }));
  ids.push_back(marker);

  for (const auto& node : nodes) {
    for (const auto& id : ids)
      EXPECT_EQ(node->count_of(id), 1u) << node->peer.id().to_string();
    EXPECT_EQ(node->received.size(), ids.size());
    EXPECT_EQ(node->pubsub.stats().bad_frames, 0u);
  }
  // Node 4 may hear node 3's message first: it is looked up by ID.
  auto first = std::find_if(nodes[4]->received.begin(), nodes[4]->received.end(),
                            [&](const ReceivedMessage& m) { return m.id == ids[0]; });
  ASSERT_NE(first, nodes[4]->received.end());
  EXPECT_EQ(first->author, nodes[0]->peer.id());
  EXPECT_EQ(first->topic, kTopic);
  EXPECT_EQ(first->data, text_bytes("from zero 0"));
  // The publisher hears its own message, as from itself.
  EXPECT_EQ(nodes[0]->received.front().received_from, nodes[0]->peer.id());
  EXPECT_EQ(nodes[1]->pubsub.stats().peers, 3u);
}

TEST_F(PubSubTest, GarbageFrameResetsThatStreamOnly) {
  Node a(io, "pubsub-a");
  Node b(io, "pubsub-b");
  TestPeer hostile(io, "hostile", default_limits());
  // It accepts our stream (so that its own is read) and drops whatever arrives there.
  hostile.host().set_handler(std::string(pubsub::kMeshsub11Protocol),
                             [](std::shared_ptr<Stream> stream) -> asio::awaitable<void> {
                               (void)co_await read_until_eof(*stream);
                             });
  connect(a.peer, b.peer);
  connect(hostile, a.peer);
  auto sub_a = a.subscribe(kTopic);
  auto sub_b = b.subscribe(kTopic);
  ASSERT_TRUE(wait_topic_peers(a, kTopic, {&b}));
  ASSERT_TRUE(run_until(io, [&] { return a.pubsub.stats().peers == 2; }));

  // A frame whose body is no protobuf (wire type 7 does not exist).
  auto garbage = open_raw(hostile, a.peer);
  ASSERT_TRUE(garbage);
  ASSERT_TRUE(write_raw(*garbage, framed(Bytes{0x0f, 0x0f, 0x0f})));
  auto reply = run_coroutine(io, [&]() -> asio::awaitable<Expected<Bytes>> {
    co_return co_await read_until_eof(*garbage);
  });
  ASSERT_TRUE(reply);
  EXPECT_FALSE(*reply) << "the stream was not reset";
  EXPECT_EQ(a.pubsub.stats().bad_frames, 1u);

  // A length over the 1 MiB cap is refused before its body is read.
  auto oversized = open_raw(hostile, a.peer);
  ASSERT_TRUE(oversized);
  Bytes length;
  append_varint(length, pubsub::kMaxRpcSize + 1);
  ASSERT_TRUE(write_raw(*oversized, length));
  ASSERT_TRUE(run_until(io, [&] { return a.pubsub.stats().bad_frames == 2; }));
  EXPECT_TRUE(std::any_of(a.log.begin(), a.log.end(), [&](const std::string& line) {
    return contains(line, "bad") && contains(line, hostile.id().to_string());
  }));

  // The others keep working, both ways.
  const auto from_a = publish(a, "still here");
  const auto from_b = publish(b, "me too");
  ASSERT_TRUE(run_until(io, [&] { return b.count_of(from_a) == 1 && a.count_of(from_b) == 1; }));
}

TEST_F(PubSubTest, SlowPeerLosesMessagesNotOurMemory) {
  PubSubConfig config;
  Node a(io, "pubsub-a", config);
  Node b(io, "pubsub-b");
  TestPeer slow(io, "slow", default_limits());
  // Takes our stream and never reads it: its flow-control window fills, then our queue.
  std::vector<std::shared_ptr<Stream>> held;
  slow.host().set_handler(std::string(pubsub::kMeshsub11Protocol),
                          [&held](std::shared_ptr<Stream> stream) -> asio::awaitable<void> {
                            held.push_back(std::move(stream));
                            co_return;
                          });
  connect(a.peer, b.peer);
  connect(slow, a.peer);
  auto sub_b = b.subscribe(kTopic);
  ASSERT_TRUE(run_until(io, [&] { return a.pubsub.stats().peers == 2 && !held.empty(); }));
  auto subscribe = open_raw(slow, a.peer);
  ASSERT_TRUE(subscribe);
  pubsub::Rpc announce;
  announce.subscriptions.push_back(pubsub::SubOpts{true, std::string(kTopic)});
  ASSERT_TRUE(write_raw(*subscribe, framed(pubsub::encode_rpc(announce))));
  ASSERT_TRUE(wait_topic_peers(a, kTopic, {&b}));
  ASSERT_TRUE(
      run_until(io, [&] { return contains_peer(a.pubsub.topic_peers(kTopic), slow.id()); }));

  // Flood publishing sends each message to both; b reads, slow does not. Published in rounds
  // that b takes in full, so that only slow's queue overflows.
  const Bytes payload = patterned_bytes(64 * 1024);
  std::size_t published = 0;
  std::size_t most_queued_rpcs = 0;
  std::size_t most_queued_bytes = 0;
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 4; ++i) {
      auto id = a.pubsub.publish(kTopic, payload);
      ASSERT_TRUE(id) << id.error().message;
      ++published;
    }
    const auto stats = a.pubsub.stats();
    most_queued_rpcs = std::max(most_queued_rpcs, stats.queued_rpcs);
    most_queued_bytes = std::max(most_queued_bytes, stats.queued_bytes);
    ASSERT_TRUE(run_until(io, [&] { return b.received.size() == published; }));
  }
  const auto stats = a.pubsub.stats();
  EXPECT_GT(stats.queue_drops, 0u);
  EXPECT_GT(stats.router.dropped_rpcs, 0u);
  // Everything beyond slow's window and queue was dropped, not held.
  // slow's queue at its cap, b's with at most one round.
  EXPECT_LE(most_queued_rpcs, config.outbound_queue_per_peer + 4);
  EXPECT_LE(most_queued_bytes, config.outbound_queue_bytes_per_peer + 4 * (payload.size() + 1024));
  EXPECT_LE(stats.queued_rpcs, config.outbound_queue_per_peer);
  EXPECT_EQ(b.received.size(), published);
}

TEST_F(PubSubTest, UnsubscribingTheLastHandlerLeavesTheTopic) {
  Node a(io, "pubsub-a");
  Node b(io, "pubsub-b");
  connect(a.peer, b.peer);
  auto sub_b = b.subscribe(kTopic);
  auto first = a.subscribe(kTopic);
  auto second = a.subscribe(kTopic);
  ASSERT_TRUE(wait_topic_peers(b, kTopic, {&a}));
  EXPECT_EQ(a.pubsub.topics(), std::vector<std::string>{std::string(kTopic)});

  first.reset();
  EXPECT_EQ(a.pubsub.topics(), std::vector<std::string>{std::string(kTopic)});
  const auto kept = publish(b, "one handler left");
  ASSERT_TRUE(run_until(io, [&] { return a.count_of(kept) == 1; }));

  second->cancel();
  EXPECT_TRUE(a.pubsub.topics().empty());
  ASSERT_TRUE(
      run_until(io, [&] { return !contains_peer(b.pubsub.topic_peers(kTopic), a.peer.id()); }));
  second.reset();  // after cancel: nothing more to do
  EXPECT_EQ(a.received.size(), 1u);
}

TEST_F(PubSubTest, SubscribeChecksTopicsAndLimits) {
  PubSubConfig config;
  config.max_subscriptions_per_topic = 2;
  Node a(io, "pubsub-a", config);
  auto ignore = [](const ReceivedMessage&) {};
  EXPECT_FALSE(a.pubsub.subscribe("", ignore));
  EXPECT_FALSE(a.pubsub.subscribe(std::string(pubsub::kMaxTopicLength + 1, 't'), ignore));
  EXPECT_FALSE(a.pubsub.subscribe("t", nullptr));
  auto one = a.pubsub.subscribe("t", ignore);
  auto two = a.pubsub.subscribe("t", ignore);
  ASSERT_TRUE(one && two);
  EXPECT_FALSE(a.pubsub.subscribe("t", ignore));

  a.pubsub.stop();
  EXPECT_FALSE(a.pubsub.publish("t", text_bytes("after stop")));
  EXPECT_FALSE(a.pubsub.subscribe("u", ignore));
}

TEST_F(PubSubTest, FloodsubNodeAndGossipsubNodesHearEachOther) {
  PubSubConfig flood_config;
  flood_config.router.floodsub_only = true;
  Node flood(io, "floodsub", flood_config);
  Node gossip(io, "gossipsub");
  Node far(io, "gossipsub-far");
  connect(flood.peer, gossip.peer);
  connect(gossip.peer, far.peer);
  auto sub_flood = flood.subscribe(kTopic);
  auto sub_gossip = gossip.subscribe(kTopic);
  auto sub_far = far.subscribe(kTopic);
  ASSERT_TRUE(wait_topic_peers(gossip, kTopic, {&flood, &far}));
  ASSERT_TRUE(wait_topic_peers(flood, kTopic, {&gossip}));
  ASSERT_TRUE(run_until(io, [&] { return !far.pubsub.mesh_peers(kTopic).empty(); }));

  const auto from_flood = publish(flood, "floodsub says");
  const auto from_far = publish(far, "gossipsub says");
  ASSERT_TRUE(run_until(io, [&] {
    return gossip.count_of(from_flood) == 1 && far.count_of(from_flood) == 1 &&
           flood.count_of(from_far) == 1 && gossip.count_of(from_far) == 1;
  }));
  // The floodsub side speaks only /floodsub/1.0.0.
  const PeerInfo* info = gossip.peer.host().peer_info(flood.peer.id());
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(std::count(info->protocols.begin(), info->protocols.end(),
                       std::string(pubsub::kFloodsubProtocol)),
            1);
  EXPECT_EQ(std::count(info->protocols.begin(), info->protocols.end(),
                       std::string(pubsub::kMeshsub11Protocol)),
            0);
}

}  // namespace
}  // namespace an::p2p::net::test
