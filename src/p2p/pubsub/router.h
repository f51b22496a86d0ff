// The GossipSub v1.1 router (libp2p/specs pubsub/gossipsub/gossipsub-v1.1.md; IDONTWANT of
// v1.2), serving floodsub peers too: mesh, fanout, gossip, peer exchange, backoff, scoring. A
// state machine without I/O: fed RPCs, peers and time, it emits RPCs through callbacks, so that
// hundreds of routers can be simulated on a virtual clock. One thread (the network thread in the
// node); callbacks run inside the call that causes them and must not call back into the Router.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "p2p/crypto/key.h"
#include "p2p/crypto/peer_id.h"
#include "p2p/pubsub/rpc.h"
#include "p2p/pubsub/score.h"
#include "util/bytes.h"
#include "util/expected.h"

namespace an::p2p::pubsub {

using Clock = std::chrono::steady_clock;

// go-libp2p-pubsub's defaults (gossipsub.go, GossipSubDefaultParameters).
struct GossipSubParams {
  int d = 6;
  int d_lo = 5;
  int d_hi = 12;
  int d_score = 4;
  int d_out = 2;
  int d_lazy = 6;
  double gossip_factor = 0.25;
  std::chrono::milliseconds heartbeat_interval{1000};
  std::chrono::seconds fanout_ttl{60};
  int history_length = 5;
  int history_gossip = 3;
  std::chrono::seconds seen_ttl{120};
  std::chrono::seconds prune_backoff{60};
  std::chrono::seconds unsubscribe_backoff{10};
  int prune_peers = 16;
  int gossip_retransmission = 3;
  int max_ihave_length = 5000;
  int max_ihave_messages = 10;
  std::chrono::seconds iwant_followup_time{3};
  int opportunistic_graft_ticks = 60;
  int opportunistic_graft_peers = 2;
  int graft_flood_threshold_seconds = 10;
  bool flood_publish = true;
  // IDONTWANT is sent for messages at least this large (go's IDontWantMessageThreshold).
  std::size_t idontwant_threshold = 1024;
};

// Counts no scope of the resource manager covers: what one peer, and all peers together, can
// make the router remember.
struct RouterLimits {
  std::size_t max_topics_per_peer = 1024;
  std::size_t max_known_topics = 16 * 1024;
  std::size_t max_peers = 4096;
  std::size_t max_local_topics = 1024;
  // Message IDs a peer told us it does not want, kept until the next heartbeats expire them.
  std::size_t max_idontwant_per_peer = 5000;
};

struct RouterConfig {
  GossipSubParams params;
  PeerScoreParams score;
  PeerScoreThresholds thresholds;
  RouterLimits limits;
  RpcLimits rpc_limits;
  // p2pd -pubsubRouter floodsub: every message to every peer subscribed to its topic, no mesh.
  bool floodsub_only = false;
  // Seeds the router's choices of peers (shuffles); 0 seeds from std::random_device. A fixed
  // seed makes a simulated network reproducible.
  std::uint64_t rng_seed = 0;
};

struct ReceivedMessage {
  PeerId author;
  Bytes seqno;
  std::string topic;
  Bytes data;
  MessageId id;
  PeerId received_from;  // our own ID for a message we published
  // The author's signature and, for keys not inlined in the peer ID, its public key, as
  // go-libp2p-daemon's PSMessage passes them on.
  Bytes signature;
  Bytes key;
};

struct RouterStats {
  std::uint64_t published = 0;
  std::uint64_t delivered = 0;   // new valid messages in joined topics
  std::uint64_t forwarded = 0;   // message copies sent to peers
  std::uint64_t duplicates = 0;  // messages already seen
  std::uint64_t invalid = 0;     // bad signature, missing seqno, over-size, bad topic
  std::uint64_t graylisted_rpcs = 0;
  std::uint64_t over_limit = 0;  // subscriptions, IHAVE/IWANT entries dropped by a limit
  std::uint64_t dropped_rpcs = 0;
  std::uint64_t iwant_served = 0;
  std::uint64_t grafts = 0;
  std::uint64_t prunes = 0;
};

class Router {
 public:
  struct Callbacks {
    // Queue one RPC for a peer; the I/O side splits it to kMaxRpcSize and may drop it (it then
    // calls rpc_dropped).
    std::function<void(const PeerId&, Rpc)> send;
    // A new valid message in a topic we joined: exactly once per message ID.
    std::function<void(const ReceivedMessage&)> deliver;
    // Peer exchange: a PRUNE from a well-scored peer named this peer; the node may dial it.
    std::function<void(const PeerId&, const Bytes& signed_peer_record)> px_candidate;
    std::function<void(std::string_view)> log;
  };

  Router(PrivateKey key, RouterConfig config, Callbacks callbacks);
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // `ip`: the remote IP's text, for the colocation score ("" when unknown).
  void add_peer(const PeerId& peer, PeerProtocol protocol, bool outbound, std::string ip,
                Clock::time_point now);
  void remove_peer(const PeerId& peer, Clock::time_point now);
  // From a peer added before; ignored otherwise, and ignored when the peer is graylisted.
  void handle_rpc(const PeerId& from, Rpc rpc, Clock::time_point now);
  // Signs and sends `data` (at most kMaxDataSize) to the topic's mesh, or fanout, or every
  // subscribed peer with flood publishing; delivers it locally when the topic is joined.
  Expected<MessageId> publish(std::string_view topic, Bytes data, Clock::time_point now);
  Expected<void> join(std::string_view topic, Clock::time_point now);
  void leave(std::string_view topic, Clock::time_point now);
  // Every params.heartbeat_interval.
  void heartbeat(Clock::time_point now);
  void rpc_dropped(const PeerId& peer);

  const PeerId& local_peer() const;
  std::vector<std::string> topics() const;  // joined, sorted
  // Peers subscribed to the topic; the empty topic: every peer.
  std::vector<PeerId> topic_peers(std::string_view topic) const;
  std::vector<PeerId> mesh_peers(std::string_view topic) const;
  double score(const PeerId& peer) const;
  const RouterStats& stats() const;
  const RouterConfig& config() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace an::p2p::pubsub
