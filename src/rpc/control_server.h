// The node's gRPC control service, agentnetwork.v1.Node (SPEC §5, proto/agentnetwork/v1/).
// Created, stopped and destroyed on the network thread. gRPC's own threads only authenticate a
// call and post it to the io_context; answers are computed on the network thread, so P2P state
// is never shared. The exception is GetStatus, answered on gRPC's thread from values fixed at
// start and a peer count the network thread publishes (an atomic). The io_context must keep
// running until stop() reports completion.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <asio/io_context.hpp>

#include "p2p/kad/io/dht.h"
#include "p2p/net/host.h"
#include "rpc/endpoint.h"
#include "util/expected.h"

namespace an::p2p::daan {
class Messenger;
class Discovery;
}  // namespace an::p2p::daan

namespace an::p2p::pubsub {
class PubSub;
}  // namespace an::p2p::pubsub

namespace an::rpc {

class AgentHub;

// What the Agent service (agent.proto) works with; without a hub it is not served.
struct AgentApiParts {
  AgentHub* hub = nullptr;
  p2p::daan::Messenger* messenger = nullptr;
  p2p::daan::Discovery* discovery = nullptr;  // null without the DHT
  p2p::kad::Dht* dht = nullptr;
};

// What the PubSub service (pubsub.proto) works with. It is always served; without pubsub its
// calls answer FAILED_PRECONDITION.
struct PubSubApiParts {
  p2p::pubsub::PubSub* pubsub = nullptr;  // null: the node runs with -pubsub off
};

// How long the node works on one call when the client sets no (or a longer) deadline.
inline constexpr std::chrono::seconds kConnectCap{30};
inline constexpr std::chrono::seconds kPingCap{10};  // per ping
inline constexpr std::chrono::seconds kDisconnectCap{10};
// FindPeer, GetClosestPeers, PutValue, GetValue: one iterative lookup plus one round of requests.
inline constexpr std::chrono::seconds kDhtCallCap{60};
inline constexpr std::uint32_t kMaxPingCount = 100;
// Undelivered WatchPeers events per client before its stream is ended.
inline constexpr std::size_t kMaxQueuedPeerEvents = 4096;
// Largest request accepted (PutValue records are at most 64 KiB).
inline constexpr int kMaxRequestBytes = 256 * 1024;
inline constexpr std::size_t kMaxRecordValueBytes = 64 * 1024;
// At stop: how long in-flight calls get before gRPC cancels them.
inline constexpr std::chrono::seconds kShutdownDeadline{2};

// Facts about the node that GetStatus reports besides the host's live state.
struct NodeFacts {
  std::string version;
  std::string agent_version;
  std::string role;
  std::int64_t pid = 0;
  std::chrono::system_clock::time_point start_time{};
  std::vector<std::string> listen_addrs;  // dialable, each ending in /p2p/<id>
  std::string data_dir;
  std::string log_file;
};

struct ControlServerConfig {
  ApiEndpoint endpoint;
  std::string token;  // required from callers when endpoint.requires_token
  NodeFacts facts;
  // Called on the network thread once a Shutdown call has been answered.
  std::function<void()> request_shutdown;
  // The node's DHT, used on the network thread; null: the DHT methods answer UNAVAILABLE.
  p2p::kad::Dht* dht = nullptr;
  // The agents' API; its parts must outlive the server.
  AgentApiParts agent;
  // Broadcast (gossipsub); its parts must outlive the server.
  PubSubApiParts pubsub;
};

class ControlServer {
 public:
  // Binds the endpoint and starts serving. A Unix socket is created mode 0600 (any stale socket
  // file at its path is replaced: the caller holds the data directory's lock).
  static Expected<std::unique_ptr<ControlServer>> start(asio::io_context& io, p2p::net::Host& host,
                                                        ControlServerConfig config);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // The endpoint as a gRPC target clients can dial ("unix:/...", "127.0.0.1:PORT").
  const std::string& endpoint() const;

  // Replaces the listen addresses GetStatus reports (they change when relay reservations come
  // and go). Any thread.
  void set_listen_addrs(std::vector<std::string> addresses);

  // Refuses new work, ends calls in flight (UNAVAILABLE) and WatchPeers streams (OK), shuts gRPC
  // down on a helper thread, removes the socket file, then posts `done` to the io_context.
  void stop(std::function<void()> done);

  struct Impl;

 private:
  explicit ControlServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace an::rpc
