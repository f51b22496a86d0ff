// Gossipsub (and floodsub) on a Host: the Router (p2p/pubsub/router.h) driven by streams and a
// heartbeat timer. Per peer one outbound stream, written by one coroutine from a bounded queue
// (a slow peer loses RPCs, not our memory), and inbound streams read frame by frame. Local
// subscribers get messages through Subscription handles. Network thread only; owned by its user,
// who keeps the Host alive longer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "p2p/crypto/key.h"
#include "p2p/crypto/peer_id.h"
#include "p2p/net/async.h"
#include "p2p/net/host.h"
#include "p2p/pubsub/router.h"
#include "p2p/pubsub/rpc.h"

namespace an::p2p::pubsub {

// go-libp2p-pubsub's peerOutboundQueueSize.
inline constexpr std::size_t kDefaultOutboundQueuePerPeer = 32;
// 32 RPCs of up to 1 MiB would let each slow peer hold 32 MiB of ours: the bytes queued for one
// peer are capped too, at a few maximal RPCs (a backlog of small messages fits the count first).
inline constexpr std::size_t kDefaultOutboundQueueBytesPerPeer = 4 * kMaxRpcSize;
inline constexpr std::size_t kDefaultMaxSubscriptionsPerTopic = 64;
// Peer exchange: dials in flight at once, and addresses tried per peer named.
inline constexpr std::size_t kMaxPeerExchangeDials = 8;
inline constexpr std::size_t kMaxPeerExchangeAddresses = 4;

struct PubSubConfig {
  RouterConfig router;
  std::size_t outbound_queue_per_peer = kDefaultOutboundQueuePerPeer;
  std::size_t outbound_queue_bytes_per_peer = kDefaultOutboundQueueBytesPerPeer;
  std::size_t max_subscriptions_per_topic = kDefaultMaxSubscriptionsPerTopic;
  // Peers named by peer exchange are dialled only while fewer than this many are connected (the
  // node passes its connection manager's low-water mark); 0: never.
  std::size_t px_connection_target = 0;
};

struct PubSubStats {
  RouterStats router;
  std::uint64_t queue_drops = 0;  // RPCs not sent because the peer's queue was full
  std::uint64_t bad_frames = 0;   // inbound frames that did not decode; the stream is reset
  std::uint64_t px_dials = 0;     // peers named by peer exchange that we dialled
  std::size_t peers = 0;          // peers with a pubsub stream
  std::size_t queued_rpcs = 0;    // RPCs waiting in the peers' queues, now
  std::size_t queued_bytes = 0;   // their bytes
};

class PubSub;

// A local subscriber's handle. Destroying it (or cancel) removes the handler; when the last
// subscription of a topic goes, the router leaves the topic.
class Subscription {
 public:
  ~Subscription();
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;
  const std::string& topic() const { return topic_; }
  void cancel();

 private:
  friend class PubSub;
  Subscription(std::weak_ptr<void> owner_alive, PubSub* owner, std::string topic, std::uint64_t id);
  std::weak_ptr<void> owner_alive_;
  PubSub* owner_;
  std::string topic_;
  std::uint64_t id_;
};

class PubSub {
 public:
  using LogCallback = std::function<void(std::string_view)>;
  using MessageHandler = std::function<void(const ReceivedMessage&)>;

  PubSub(net::Host& host, PrivateKey key, PubSubConfig config);
  ~PubSub();
  PubSub(const PubSub&) = delete;
  PubSub& operator=(const PubSub&) = delete;

  void set_log(LogCallback log);
  // Handlers for the pubsub protocols (identify then advertises them), peers' events, the
  // heartbeat. Call once, before connections.
  void start();
  // Closes the streams and stops the heartbeat; subscriptions get no more messages.
  void stop();

  // The handler runs on the network thread for every new message of the topic, our own
  // publications included.
  Expected<std::unique_ptr<Subscription>> subscribe(std::string topic, MessageHandler handler);
  Expected<MessageId> publish(std::string_view topic, Bytes data);

  std::vector<std::string> topics() const;
  std::vector<PeerId> topic_peers(std::string_view topic) const;
  std::vector<PeerId> mesh_peers(std::string_view topic) const;
  PubSubStats stats() const;
  const PeerId& local_peer() const;

 private:
  friend class Subscription;
  void unsubscribe(const std::string& topic, std::uint64_t id);
  struct State;
  std::unique_ptr<State> state_;
  std::shared_ptr<void> alive_;
};

}  // namespace an::p2p::pubsub
