// The gossipsub router's rules, one at a time: a router under test talks to scripted peers
// whose RPCs the test writes and whose received RPCs it reads. Time is virtual.
#include "p2p/pubsub/router.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "p2p/pubsub/peer_score.h"
#include "sim_network.h"

namespace an::p2p::pubsub {
namespace {

using testing::signed_message;
using testing::SimNetwork;

constexpr std::string_view kTopic = "topic";

Rpc subscribe(std::string_view topic) {
  Rpc rpc;
  rpc.subscriptions.push_back(SubOpts{true, std::string(topic)});
  return rpc;
}

Rpc control(ControlMessage control) {
  Rpc rpc;
  rpc.control = std::move(control);
  return rpc;
}

Rpc publish(Message message) {
  Rpc rpc;
  rpc.publish.push_back(std::move(message));
  return rpc;
}

// What a scripted peer received, summed up.
struct Received {
  std::vector<Message> messages;
  std::vector<ControlIHave> ihave;
  std::vector<ControlIWant> iwant;
  std::vector<ControlGraft> graft;
  std::vector<ControlPrune> prune;
  std::vector<ControlIDontWant> idontwant;
};

Received take(SimNetwork::Node& node) {
  Received out;
  for (Rpc& rpc : node.received) {
    for (Message& message : rpc.publish)
      out.messages.push_back(std::move(message));
    if (!rpc.control) continue;
    for (auto& entry : rpc.control->ihave)
      out.ihave.push_back(std::move(entry));
    for (auto& entry : rpc.control->iwant)
      out.iwant.push_back(std::move(entry));
    for (auto& entry : rpc.control->graft)
      out.graft.push_back(std::move(entry));
    for (auto& entry : rpc.control->prune)
      out.prune.push_back(std::move(entry));
    for (auto& entry : rpc.control->idontwant)
      out.idontwant.push_back(std::move(entry));
  }
  node.received.clear();
  return out;
}

// A router (index 0) that joined kTopic, and `peers` scripted peers subscribed to it.
struct Fixture {
  explicit Fixture(int peers, RouterConfig config = {},
                   PeerProtocol protocol = PeerProtocol::kMeshsub11)
      : net(42, config) {
    net.add_router();
    EXPECT_TRUE(net.router(0).join(kTopic, net.now()).has_value());
    for (int i = 0; i < peers; ++i) {
      const std::size_t peer = net.add_raw_peer();
      net.connect(peer, 0, protocol);
      net.inject(peer, 0, subscribe(kTopic));
    }
    net.run();
    net.heartbeat();  // the router grafts its mesh
    for (std::size_t i = 1; i < net.size(); ++i)
      take(net.node(i));
  }
  Router& router() { return net.router(0); }
  const PeerId& id(std::size_t index) { return net.node(index).id; }
  bool in_mesh(std::size_t index) {
    auto mesh = router().mesh_peers(kTopic);
    return std::find(mesh.begin(), mesh.end(), id(index)) != mesh.end();
  }
  SimNetwork net;
};

TEST(PubSubRouter, JoinGraftsDPeersAndAnnouncesTheSubscription) {
  Fixture f(10);
  EXPECT_EQ(f.router().mesh_peers(kTopic).size(), 6u);
  EXPECT_EQ(f.router().topic_peers(kTopic).size(), 10u);
  EXPECT_EQ(f.router().topics(), std::vector<std::string>{std::string(kTopic)});
}

TEST(PubSubRouter, HelloCarriesSubscriptions) {
  SimNetwork net(1);
  net.add_router();
  ASSERT_TRUE(net.router(0).join("a", net.now()));
  const std::size_t peer = net.add_raw_peer();
  net.connect(0, peer);
  net.run();
  ASSERT_EQ(net.node(peer).received.size(), 1u);
  EXPECT_EQ(net.node(peer).received[0].subscriptions, (std::vector<SubOpts>{{true, "a"}}));
}

TEST(PubSubRouter, RefusesBadTopicsAndOversizeData) {
  SimNetwork net(1);
  net.add_router();
  EXPECT_FALSE(net.router(0).join("", net.now()));
  EXPECT_FALSE(net.router(0).join(std::string(kMaxTopicLength + 1, 'x'), net.now()));
  EXPECT_FALSE(net.router(0).publish("t", Bytes(kMaxDataSize + 1), net.now()));
  EXPECT_TRUE(net.router(0).publish("t", Bytes(16), net.now()));
}

TEST(PubSubRouter, MeshPeersBeyondDHiArePrunedToDWithBackoff) {
  Fixture f(20);
  // Every other peer grafts us; at D_hi the router refuses inbound peers.
  for (std::size_t i = 1; i <= 20; ++i) {
    if (f.in_mesh(i)) continue;
    ControlMessage graft;
    graft.graft.push_back(ControlGraft{std::string(kTopic)});
    f.net.inject(i, 0, control(graft));
  }
  f.net.run();
  EXPECT_EQ(f.router().mesh_peers(kTopic).size(), 12u);  // D_hi: the rest were refused
  std::size_t refused = 0;
  for (std::size_t i = 1; i <= 20; ++i)
    refused += take(f.net.node(i)).prune.size();
  EXPECT_EQ(refused, 20u - 12u);
  f.net.heartbeat();
  EXPECT_EQ(f.router().mesh_peers(kTopic).size(), 6u);
  std::size_t pruned = 0;
  for (std::size_t i = 1; i <= 20; ++i) {
    for (const ControlPrune& prune : take(f.net.node(i)).prune) {
      ++pruned;
      EXPECT_EQ(prune.backoff_seconds, std::optional<std::uint64_t>(60));
    }
  }
  EXPECT_EQ(pruned, 6u);
}

TEST(PubSubRouter, MeshKeepsDOutOutboundPeers) {
  SimNetwork net(3);
  net.add_router();
  std::vector<std::size_t> outbound;
  for (int i = 0; i < 30; ++i) {
    const std::size_t peer = net.add_raw_peer();
    if (i < 3) {
      net.connect(0, peer);  // we dialled these
      outbound.push_back(peer);
    } else {
      net.connect(peer, 0);
    }
    net.inject(peer, 0, subscribe(kTopic));
  }
  net.run();
  ASSERT_TRUE(net.router(0).join(kTopic, net.now()));
  net.run();
  net.heartbeats(2);
  auto mesh = net.router(0).mesh_peers(kTopic);
  std::size_t outbound_in_mesh = 0;
  for (std::size_t peer : outbound) {
    if (std::find(mesh.begin(), mesh.end(), net.node(peer).id) != mesh.end()) ++outbound_in_mesh;
  }
  EXPECT_GE(outbound_in_mesh, 2u);
}

TEST(PubSubRouter, PublishFloodsAllSubscribersAboveThePublishThreshold) {
  Fixture f(10);
  auto id = f.router().publish(kTopic, to_bytes(std::string_view("hello")), f.net.now());
  ASSERT_TRUE(id);
  f.net.run();
  for (std::size_t i = 1; i <= 10; ++i) {
    Received got = take(f.net.node(i));
    ASSERT_EQ(got.messages.size(), 1u);
    EXPECT_EQ(default_message_id(got.messages[0]), *id);
    EXPECT_EQ(got.messages[0].seqno.size(), 8u);
    EXPECT_TRUE(verify_message(got.messages[0]));
  }
  EXPECT_EQ(f.net.node(0).delivered[*id], 1);
  // Seqnos count up.
  auto second = f.router().publish(kTopic, Bytes{1}, f.net.now());
  f.net.run();
  Received got = take(f.net.node(1));
  ASSERT_EQ(got.messages.size(), 1u);
  EXPECT_NE(*second, *id);
}

TEST(PubSubRouter, WithoutFloodPublishOnlyTheMeshGetsOurMessage) {
  RouterConfig config;
  config.params.flood_publish = false;
  Fixture f(10, config);
  ASSERT_TRUE(f.router().publish(kTopic, Bytes{1, 2}, f.net.now()));
  f.net.run();
  for (std::size_t i = 1; i <= 10; ++i) {
    EXPECT_EQ(take(f.net.node(i)).messages.size(), f.in_mesh(i) ? 1u : 0u) << i;
  }
}

TEST(PubSubRouter, ReceivedMessagesAreDeliveredOnceAndForwardedToTheMesh) {
  Fixture f(10);
  std::size_t source = 1;
  Message message = signed_message(f.net.node(source).key, std::string(kTopic), Bytes{7}, 1);
  const MessageId id = default_message_id(message);
  f.net.inject(source, 0, publish(message));
  f.net.inject(2, 0, publish(message));  // a duplicate
  f.net.run();
  EXPECT_EQ(f.net.node(0).delivered[id], 1);
  EXPECT_EQ(f.router().stats().duplicates, 1u);
  for (std::size_t i = 2; i <= 10; ++i) {
    const bool expected = f.in_mesh(i) && i != source;
    EXPECT_EQ(take(f.net.node(i)).messages.size(), expected ? 1u : 0u) << i;
  }
}

TEST(PubSubRouter, MessagesInTopicsWeDidNotJoinAreNotRelayed) {
  Fixture f(3);
  Message message = signed_message(f.net.node(1).key, "other", Bytes{7}, 1);
  f.net.inject(2, 0, subscribe("other"));
  f.net.inject(1, 0, publish(message));
  f.net.run();
  EXPECT_EQ(f.router().stats().delivered, 0u);
  EXPECT_TRUE(take(f.net.node(2)).messages.empty());
}

TEST(PubSubRouter, GossipAdvertisesToNonMeshPeersAndServesIWant) {
  RouterConfig config;
  config.params.flood_publish = false;
  Fixture f(10, config);
  auto id = f.router().publish(kTopic, Bytes{9}, f.net.now());
  f.net.run();
  for (std::size_t i = 1; i <= 10; ++i)
    take(f.net.node(i));
  f.net.heartbeat();
  std::size_t advertised_to = 0;
  std::size_t outsider = 0;
  for (std::size_t i = 1; i <= 10; ++i) {
    Received got = take(f.net.node(i));
    if (got.ihave.empty()) continue;
    EXPECT_FALSE(f.in_mesh(i)) << "IHAVE to a mesh peer " << i;
    ASSERT_EQ(got.ihave[0].message_ids, std::vector<MessageId>{*id});
    ++advertised_to;
    outsider = i;
  }
  EXPECT_EQ(advertised_to, 4u);  // the 4 non-mesh peers (D_lazy 6 > 4)
  // IWANT is served gossip_retransmission (3) times, then refused and penalised.
  for (int ask = 0; ask < 4; ++ask) {
    ControlMessage iwant;
    iwant.iwant.push_back(ControlIWant{{*id}});
    f.net.inject(outsider, 0, control(iwant));
  }
  f.net.run();
  EXPECT_EQ(take(f.net.node(outsider)).messages.size(), 3u);
  EXPECT_EQ(f.router().stats().iwant_served, 3u);
  EXPECT_LT(f.router().score(f.id(outsider)), 0);
}

TEST(PubSubRouter, IHaveIsAnsweredWithIWantAndABrokenPromiseIsPenalised) {
  Fixture f(2);
  Message message = signed_message(f.net.node(1).key, std::string(kTopic), Bytes{5}, 1);
  const MessageId id = default_message_id(message);
  ControlMessage ihave;
  ihave.ihave.push_back(ControlIHave{std::string(kTopic), {id}});
  f.net.inject(1, 0, control(ihave));
  f.net.inject(2, 0, control(ihave));
  f.net.run();
  for (std::size_t i : {1u, 2u}) {
    Received got = take(f.net.node(i));
    ASSERT_EQ(got.iwant.size(), 1u);
    EXPECT_EQ(got.iwant[0].message_ids, std::vector<MessageId>{id});
  }
  // Peer 1 keeps its promise; peer 2 never sends the message. Only ask once: it is seen now.
  f.net.inject(1, 0, publish(message));
  f.net.run();
  f.net.advance(std::chrono::seconds(3));
  f.net.heartbeat();
  EXPECT_EQ(f.router().score(f.id(1)), 0);
  EXPECT_EQ(f.router().score(f.id(1)), 0);
  // Peer 2 was promised too, but the message came (from 1): promises of a message end when it
  // arrives from anyone, as in go.
  EXPECT_EQ(f.router().score(f.id(2)), 0);

  // A promise nobody keeps.
  Message never = signed_message(f.net.node(2).key, std::string(kTopic), Bytes{6}, 2);
  ControlMessage ihave2;
  ihave2.ihave.push_back(ControlIHave{std::string(kTopic), {default_message_id(never)}});
  f.net.inject(2, 0, control(ihave2));
  f.net.run();
  f.net.advance(std::chrono::seconds(4));
  f.net.heartbeat();
  EXPECT_LT(f.router().score(f.id(2)), 0);  // P7: one broken promise
}

TEST(PubSubRouter, IHaveFloodsAreBounded) {
  Fixture f(1);
  ControlMessage ihave;
  ControlIHave entry{std::string(kTopic), {}};
  for (int i = 0; i < 5000; ++i) {
    Message m = Message{};
    m.from = f.id(1).bytes();
    m.seqno = Bytes{static_cast<std::uint8_t>(i >> 8), static_cast<std::uint8_t>(i)};
    entry.message_ids.push_back(default_message_id(m));
  }
  ihave.ihave.push_back(entry);
  for (int rpc = 0; rpc < 20; ++rpc)
    f.net.inject(1, 0, control(ihave));
  f.net.run();
  std::size_t asked = 0;
  for (const ControlIWant& iwant : take(f.net.node(1)).iwant)
    asked += iwant.message_ids.size();
  EXPECT_EQ(asked, 5000u);  // max_ihave_length per heartbeat, however many IHAVEs
  EXPECT_GT(f.router().stats().over_limit, 0u);
}

TEST(PubSubRouter, GraftDuringBackoffIsPenalisedAndPruned) {
  Fixture f(8);
  std::size_t peer = 1;
  while (!f.in_mesh(peer))
    ++peer;
  ControlMessage prune;
  prune.prune.push_back(ControlPrune{std::string(kTopic), {}, 60});
  f.net.inject(peer, 0, control(prune));
  f.net.run();
  EXPECT_FALSE(f.in_mesh(peer));
  ControlMessage graft;
  graft.graft.push_back(ControlGraft{std::string(kTopic)});
  f.net.inject(peer, 0, control(graft));
  f.net.run();
  EXPECT_FALSE(f.in_mesh(peer));
  Received got = take(f.net.node(peer));
  ASSERT_EQ(got.prune.size(), 1u);
  EXPECT_TRUE(got.prune[0].peers.empty());  // no PX to a misbehaving peer
  // Two penalties (within the flood threshold): (2 - 0)^2 * -10.
  EXPECT_DOUBLE_EQ(f.router().score(f.id(peer)), -40);
  // The heartbeat does not graft it back while the backoff lasts.
  f.net.heartbeats(3);
  EXPECT_FALSE(f.in_mesh(peer));
}

TEST(PubSubRouter, NoGraftUntilTheBackoffHasExpiredWithSlack) {
  // The pruning peer starts its backoff when it sends the PRUNE, we when it arrives; a GRAFT
  // sent the moment our backoff ends could reach it inside its own and cost us a penalty. go and
  // js wait two heartbeats past the expiry (libp2p/specs#289), and so must we.
  Fixture f(5);
  ASSERT_TRUE(f.in_mesh(1));
  ControlMessage prune;
  prune.prune.push_back(ControlPrune{std::string(kTopic), {}, 60});
  f.net.inject(1, 0, control(prune));
  f.net.run();
  ASSERT_FALSE(f.in_mesh(1));
  f.net.heartbeats(62);  // the mesh is below D_lo and wants peer 1 back every heartbeat
  EXPECT_FALSE(f.in_mesh(1));
  EXPECT_TRUE(take(f.net.node(1)).graft.empty());
  f.net.heartbeat();
  EXPECT_TRUE(f.in_mesh(1));
  EXPECT_EQ(take(f.net.node(1)).graft.size(), 1u);
}

TEST(PubSubRouter, LeaveSendsPruneWithUnsubscribeBackoffAndNoBackoffFieldToV10Peers) {
  for (PeerProtocol protocol : {PeerProtocol::kMeshsub11, PeerProtocol::kMeshsub10}) {
    Fixture f(4, {}, protocol);
    f.router().leave(kTopic, f.net.now());
    f.net.run();
    for (std::size_t i = 1; i <= 4; ++i) {
      Received got = take(f.net.node(i));
      ASSERT_EQ(got.prune.size(), 1u);
      if (protocol == PeerProtocol::kMeshsub10) {
        EXPECT_FALSE(got.prune[0].backoff_seconds.has_value());
      } else {
        EXPECT_EQ(got.prune[0].backoff_seconds, std::optional<std::uint64_t>(10));
      }
    }
    EXPECT_TRUE(f.router().topics().empty());
  }
}

TEST(PubSubRouter, PeerExchangeOnlyFromPeersAboveTheAcceptThreshold) {
  for (double threshold : {0.0, 10.0}) {
    RouterConfig config;
    config.thresholds.accept_px_threshold = threshold;
    Fixture f(2, config);
    const PeerId named = testing::key_from_index(999).peer_id();
    ControlMessage prune;
    prune.prune.push_back(
        ControlPrune{std::string(kTopic), {PeerInfo{named.bytes(), Bytes{1, 2, 3}}}, 60});
    f.net.inject(1, 0, control(prune));
    f.net.run();
    // A neutral peer scores 0: enough for threshold 0, not for 10.
    if (threshold == 0) {
      ASSERT_EQ(f.net.px_candidates_[0].size(), 1u);
      EXPECT_EQ(f.net.px_candidates_[0][0], named);
    } else {
      EXPECT_TRUE(f.net.px_candidates_[0].empty());
    }
  }
}

TEST(PubSubRouter, PruneCarriesPeerExchangeToTrustedPeers) {
  RouterConfig config;
  config.thresholds.accept_px_threshold = 0;
  Fixture f(20, config);
  for (std::size_t i = 1; i <= 20; ++i) {
    if (f.in_mesh(i)) continue;
    ControlMessage graft;
    graft.graft.push_back(ControlGraft{std::string(kTopic)});
    f.net.inject(i, 0, control(graft));
  }
  f.net.run();
  for (std::size_t i = 1; i <= 20; ++i)
    take(f.net.node(i));
  f.net.heartbeat();
  std::size_t with_px = 0;
  for (std::size_t i = 1; i <= 20; ++i) {
    for (const ControlPrune& prune : take(f.net.node(i)).prune) {
      if (!prune.peers.empty()) ++with_px;
      for (const PeerInfo& info : prune.peers)
        EXPECT_NE(info.peer_id, f.id(i).bytes());
    }
  }
  EXPECT_GT(with_px, 0u);
}

TEST(PubSubRouter, BadSignaturesAreDroppedAndGraylistTheForwarder) {
  Fixture f(3);
  for (int i = 0; i < 12; ++i) {
    Message message = signed_message(f.net.node(1).key, std::string(kTopic), Bytes{1},
                                     static_cast<std::uint64_t>(i));
    message.data = Bytes{2};  // no longer what was signed
    f.net.inject(1, 0, publish(message));
  }
  Message unsigned_message;
  unsigned_message.topic = std::string(kTopic);
  unsigned_message.from = f.id(1).bytes();
  unsigned_message.seqno = Bytes(8, 1);
  f.net.inject(1, 0, publish(unsigned_message));
  f.net.run();
  EXPECT_EQ(f.router().stats().delivered, 0u);
  // Nine invalid messages (9^2 * -1 = -81) graylist the peer: the rest are not even looked at.
  EXPECT_EQ(f.router().stats().invalid, 9u);
  EXPECT_LT(f.router().score(f.id(1)), f.router().config().thresholds.graylist_threshold);
  // Graylisted: even a valid message is ignored now.
  f.net.inject(1, 0, publish(signed_message(f.net.node(1).key, std::string(kTopic), Bytes{3}, 99)));
  f.net.run();
  EXPECT_EQ(f.router().stats().delivered, 0u);
  EXPECT_GT(f.router().stats().graylisted_rpcs, 0u);
  // Nothing reached the other peers.
  EXPECT_TRUE(take(f.net.node(2)).messages.empty());
  // The penalty decays: after ten minutes the peer is heard again.
  for (int i = 0; i < 700; ++i) {
    f.net.advance(std::chrono::seconds(1));
    f.router().heartbeat(f.net.now());
  }
  EXPECT_GT(f.router().score(f.id(1)), f.router().config().thresholds.graylist_threshold);
}

TEST(PubSubRouter, FloodsubPeersGetMessagesAndNoControl) {
  RouterConfig config;
  config.params.flood_publish = false;
  SimNetwork net(5, config);
  net.add_router();
  ASSERT_TRUE(net.router(0).join(kTopic, net.now()));
  const std::size_t flood = net.add_raw_peer();
  net.connect(flood, 0, PeerProtocol::kFloodsub);
  net.inject(flood, 0, subscribe(kTopic));
  std::vector<std::size_t> mesh_peers;
  for (int i = 0; i < 8; ++i) {
    mesh_peers.push_back(net.add_raw_peer());
    net.connect(mesh_peers.back(), 0);
    net.inject(mesh_peers.back(), 0, subscribe(kTopic));
  }
  net.run();
  net.heartbeat();
  ASSERT_TRUE(net.router(0).publish(kTopic, Bytes{1}, net.now()));
  net.run();
  net.heartbeats(2);
  Received got = take(net.node(flood));
  EXPECT_EQ(got.messages.size(), 1u);
  EXPECT_TRUE(got.ihave.empty() && got.graft.empty() && got.prune.empty());
  auto mesh = net.router(0).mesh_peers(kTopic);
  EXPECT_EQ(std::find(mesh.begin(), mesh.end(), net.node(flood).id), mesh.end());
  // A GRAFT from a floodsub peer means nothing.
  ControlMessage graft;
  graft.graft.push_back(ControlGraft{std::string(kTopic)});
  net.inject(flood, 0, control(graft));
  net.run();
  EXPECT_TRUE(take(net.node(flood)).prune.empty());
}

TEST(PubSubRouter, FloodsubOnlyModeSendsEveryMessageToEverySubscriber) {
  RouterConfig config;
  config.floodsub_only = true;
  SimNetwork net(6, config);
  net.add_router();
  ASSERT_TRUE(net.router(0).join(kTopic, net.now()));
  for (int i = 0; i < 20; ++i) {
    const std::size_t peer = net.add_raw_peer();
    net.connect(peer, 0);
    net.inject(peer, 0, subscribe(kTopic));
  }
  net.run();
  net.heartbeats(2);
  EXPECT_TRUE(net.router(0).mesh_peers(kTopic).empty());
  Message message = signed_message(net.node(1).key, std::string(kTopic), Bytes{4}, 1);
  net.inject(1, 0, publish(message));
  net.run();
  net.heartbeat();
  for (std::size_t i = 2; i <= 20; ++i) {
    Received got = take(net.node(i));
    EXPECT_EQ(got.messages.size(), 1u);
    EXPECT_TRUE(got.ihave.empty() && got.graft.empty() && got.prune.empty());
  }
}

TEST(PubSubRouter, IDontWantIsSentForLargeMessagesAndHonoured) {
  RouterConfig config;
  Fixture f(8, config, PeerProtocol::kMeshsub12);
  std::vector<std::size_t> mesh;
  for (std::size_t i = 1; i <= 8; ++i) {
    if (f.in_mesh(i)) mesh.push_back(i);
  }
  ASSERT_GE(mesh.size(), 3u);
  Message big = signed_message(f.net.node(mesh[0]).key, std::string(kTopic), Bytes(2000, 1), 1);
  const MessageId id = default_message_id(big);
  // mesh[1] says it does not want the message; then mesh[0] sends it.
  ControlMessage idontwant;
  idontwant.idontwant.push_back(ControlIDontWant{{id}});
  f.net.inject(mesh[1], 0, control(idontwant));
  f.net.inject(mesh[0], 0, publish(big));
  f.net.run();
  Received to_sender = take(f.net.node(mesh[0]));
  EXPECT_TRUE(to_sender.idontwant.empty());
  Received to_unwanting = take(f.net.node(mesh[1]));
  EXPECT_TRUE(to_unwanting.messages.empty());
  EXPECT_EQ(to_unwanting.idontwant.size(), 1u);
  Received to_other = take(f.net.node(mesh[2]));
  EXPECT_EQ(to_other.messages.size(), 1u);
  ASSERT_EQ(to_other.idontwant.size(), 1u);
  EXPECT_EQ(to_other.idontwant[0].message_ids, std::vector<MessageId>{id});
}

TEST(PubSubRouter, IDontWantIdsPerPeerAreBounded) {
  Fixture f(1, {}, PeerProtocol::kMeshsub12);
  ControlMessage idontwant;
  ControlIDontWant entry;
  for (int i = 0; i < 5000; ++i)
    entry.message_ids.push_back(
        Bytes{static_cast<std::uint8_t>(i >> 8), static_cast<std::uint8_t>(i), 1});
  idontwant.idontwant.push_back(entry);
  f.net.inject(1, 0, control(idontwant));
  for (auto& id : entry.message_ids)
    id.back() = 2;
  idontwant.idontwant[0] = entry;
  f.net.inject(1, 0, control(idontwant));
  f.net.run();
  EXPECT_EQ(f.router().stats().over_limit, 5000u);
}

TEST(PubSubRouter, IdsLongerThanAnyMessageIdAreNeitherAskedForNorKept) {
  // Our message IDs are a peer ID and an 8-byte seqno; a longer ID names no message, and
  // asking for it (and keeping it as an IWANT promise) or keeping it as unwanted would let a
  // peer grow our memory by the megabyte.
  Fixture f(8, {}, PeerProtocol::kMeshsub12);
  std::vector<std::size_t> mesh;
  for (std::size_t i = 1; i <= 8; ++i) {
    if (f.in_mesh(i)) mesh.push_back(i);
  }
  ASSERT_GE(mesh.size(), 2u);
  const std::size_t hostile = mesh[0];
  ControlMessage ihave;
  ihave.ihave.push_back(ControlIHave{std::string(kTopic), {Bytes(100 * 1024, 7)}});
  f.net.inject(hostile, 0, control(ihave));
  f.net.run();
  EXPECT_TRUE(take(f.net.node(hostile)).iwant.empty());

  // Long junk IDs do not use up the IDs a peer may tell us it does not want.
  ControlMessage junk;
  junk.idontwant.emplace_back();
  for (int i = 0; i < 5000; ++i) {
    Bytes id(100, 0);
    id[0] = static_cast<std::uint8_t>(i >> 8);
    id[1] = static_cast<std::uint8_t>(i);
    junk.idontwant[0].message_ids.push_back(std::move(id));
  }
  f.net.inject(hostile, 0, control(junk));
  Message big = signed_message(f.net.node(mesh[1]).key, std::string(kTopic), Bytes(2000, 1), 1);
  ControlMessage idontwant;
  idontwant.idontwant.push_back(ControlIDontWant{{default_message_id(big)}});
  f.net.inject(hostile, 0, control(idontwant));
  f.net.inject(mesh[1], 0, publish(big));
  f.net.run();
  EXPECT_TRUE(take(f.net.node(hostile)).messages.empty());
}

TEST(PubSubRouter, SubscriptionFloodsAreBoundedAndPenalised) {
  RouterConfig config;
  config.limits.max_topics_per_peer = 16;
  config.limits.max_known_topics = 40;
  Fixture f(0, config);
  std::vector<std::size_t> peers;
  for (int p = 0; p < 4; ++p) {
    peers.push_back(f.net.add_raw_peer());
    f.net.connect(peers.back(), 0);
  }
  for (std::size_t peer : peers) {
    Rpc flood;
    for (int i = 0; i < 1000; ++i) {
      flood.subscriptions.push_back(
          SubOpts{true, "t" + std::to_string(peer) + "-" + std::to_string(i)});
    }
    f.net.inject(peer, 0, flood);
  }
  f.net.run();
  std::size_t known = 0;
  for (std::size_t peer : peers) {
    EXPECT_LT(f.router().score(f.net.node(peer).id), 0);
    (void)peer;
  }
  std::set<PeerId> seen;
  for (const PeerId& peer : f.router().topic_peers(""))
    seen.insert(peer);
  EXPECT_EQ(seen.size(), 4u);
  // 16 per peer, and at most 40 topics in all.
  for (std::size_t peer : peers) {
    for (int i = 0; i < 1000; ++i) {
      known += f.router().topic_peers("t" + std::to_string(peer) + "-" + std::to_string(i)).size();
    }
  }
  EXPECT_EQ(known, 40u);
  EXPECT_EQ(f.router().stats().over_limit, 4u * 1000u - 40u);
}

TEST(PubSubRouter, FanoutPeersStayUntilTheTtlExpires) {
  RouterConfig config;
  config.params.flood_publish = false;
  SimNetwork net(8, config);
  net.add_router();
  for (int i = 0; i < 12; ++i) {
    const std::size_t peer = net.add_raw_peer();
    net.connect(peer, 0);
    net.inject(peer, 0, subscribe(kTopic));
  }
  net.run();
  auto recipients = [&] {
    std::set<std::size_t> out;
    net.run();
    for (std::size_t i = 1; i < net.size(); ++i) {
      if (!take(net.node(i)).messages.empty()) out.insert(i);
    }
    return out;
  };
  std::uint64_t seq = 0;
  ASSERT_TRUE(net.router(0).publish(kTopic, Bytes{static_cast<std::uint8_t>(seq++)}, net.now()));
  const std::set<std::size_t> fanout = recipients();
  EXPECT_EQ(fanout.size(), 6u);
  for (int i = 0; i < 5; ++i) {
    net.heartbeats(10);  // 50 s: within the 60 s TTL of the last publication
    ASSERT_TRUE(net.router(0).publish(kTopic, Bytes{static_cast<std::uint8_t>(seq++)}, net.now()));
    EXPECT_EQ(recipients(), fanout);
  }
  bool changed = false;
  for (int i = 0; i < 5; ++i) {
    net.heartbeats(61);
    ASSERT_TRUE(net.router(0).publish(kTopic, Bytes{static_cast<std::uint8_t>(seq++)}, net.now()));
    auto now_recipients = recipients();
    EXPECT_EQ(now_recipients.size(), 6u);
    changed = changed || now_recipients != fanout;
  }
  EXPECT_TRUE(changed);  // new peers were chosen after expiry (chance of none: 924^-5)
}

TEST(PubSubRouter, IpColocationPenalisesSharedPublicAddressesOnly) {
  SimNetwork net(9);
  net.add_router();
  std::vector<std::size_t> public_peers;
  std::vector<std::size_t> private_peers;
  for (int i = 0; i < 12; ++i) {
    public_peers.push_back(net.add_raw_peer());
    net.connect(public_peers.back(), 0, PeerProtocol::kMeshsub11, "203.0.113.7");
    private_peers.push_back(net.add_raw_peer());
    net.connect(private_peers.back(), 0, PeerProtocol::kMeshsub11, "192.168.1.2");
  }
  // 12 on one public IP: 2 over the threshold of 10, (2^2) * -100.
  EXPECT_DOUBLE_EQ(net.router(0).score(net.node(public_peers[0]).id), -400);
  EXPECT_DOUBLE_EQ(net.router(0).score(net.node(private_peers[0]).id), 0);
  EXPECT_TRUE(is_private_or_loopback_ip("127.0.0.1"));
  EXPECT_TRUE(is_private_or_loopback_ip("::1"));
  EXPECT_TRUE(is_private_or_loopback_ip("fd00::1"));
  EXPECT_TRUE(is_private_or_loopback_ip("fe80::1"));
  EXPECT_TRUE(is_private_or_loopback_ip("172.20.0.1"));
  EXPECT_FALSE(is_private_or_loopback_ip("172.32.0.1"));
  EXPECT_FALSE(is_private_or_loopback_ip("2001:db8::1"));
  EXPECT_FALSE(is_private_or_loopback_ip("8.8.8.8"));
}

TEST(PubSubRouter, NegativeScoresAreRetainedAcrossReconnects) {
  Fixture f(2);
  ControlMessage prune;
  prune.prune.push_back(ControlPrune{std::string(kTopic), {}, 60});
  ControlMessage graft;
  graft.graft.push_back(ControlGraft{std::string(kTopic)});
  f.net.inject(1, 0, control(prune));
  f.net.inject(1, 0, control(graft));
  f.net.run();
  const double before = f.router().score(f.id(1));
  ASSERT_LT(before, 0);
  f.net.disconnect(1, 0);
  f.net.connect(1, 0);
  EXPECT_DOUBLE_EQ(f.router().score(f.id(1)), before);
}

TEST(PubSubRouter, TopicScoresRewardTimeInMeshAndFirstDeliveries) {
  RouterConfig config;
  TopicScoreParams topic;
  topic.topic_weight = 1;
  topic.time_in_mesh_weight = 0.1;
  topic.time_in_mesh_cap = 100;
  topic.first_message_deliveries_weight = 1;
  topic.first_message_deliveries_decay = 0.9;
  topic.first_message_deliveries_cap = 50;
  config.score.topics[std::string(kTopic)] = topic;
  config.score.topic_score_cap = 0;  // no cap, to see the sum
  Fixture f(8, config);
  std::size_t peer = 1;
  while (!f.in_mesh(peer))
    ++peer;
  f.net.heartbeats(10);
  const double in_mesh = f.router().score(f.id(peer));
  EXPECT_NEAR(in_mesh, 1.0, 0.11);  // 10 s in the mesh at 0.1 a second
  f.net.inject(peer, 0,
               publish(signed_message(f.net.node(peer).key, std::string(kTopic), Bytes{1}, 1)));
  f.net.run();
  EXPECT_NEAR(f.router().score(f.id(peer)) - in_mesh, 1.0, 1e-9);
}

}  // namespace
}  // namespace an::p2p::pubsub
