// agentnetwork.v1.PubSub (proto/agentnetwork/v1/pubsub.proto): publish, subscribe and list
// gossipsub topics, with the Go AgentNetwork's broadcast envelope by default. Served by the
// ControlServer next to agentnetwork.v1.Node and through the same CallRunner (token, network
// thread). Internal to src/rpc.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agentnetwork/v1/pubsub.grpc.pb.h"
#include "p2p/net/host.h"
#include "p2p/pubsub/rpc.h"
#include "rpc/call_runner.h"
#include "rpc/control_server.h"

namespace an::rpc {

// What a Publish may bring: the largest message and the request's other fields.
inline constexpr int kMaxPubSubCallBytes = static_cast<int>(p2p::pubsub::kMaxDataSize + 64 * 1024);
// Subscribe streams open at once, over every topic: each may hold a queue (below).
inline constexpr std::size_t kMaxSubscribeStreams = 64;
// Undelivered messages one Subscribe stream may hold, by count and by data bytes; past either,
// new messages are dropped (and counted) until the client catches up. Together with
// kMaxSubscribeStreams this bounds what slow clients make the node hold (256 MiB at worst).
inline constexpr std::size_t kMaxQueuedPubSubMessages = 1024;
inline constexpr std::size_t kMaxQueuedPubSubBytes = 4 * 1024 * 1024;
// In a Subscribe stream's response headers once the node has joined the topic (a refused
// call's answer has no such header).
inline constexpr std::string_view kSubscribedMetadataKey = "agentnetwork-subscribed";

struct SubscribeState;

class PubSubService final : public agentnetwork::v1::PubSub::CallbackService {
 public:
  PubSubService(CallRunner& runner, p2p::net::Host& host, PubSubApiParts parts);
  ~PubSubService() override;

  // Network thread: ends the open Subscribe streams (OK) and leaves their topics.
  void stop();

  grpc::ServerUnaryReactor* Publish(grpc::CallbackServerContext* context,
                                    const agentnetwork::v1::PublishRequest* request,
                                    agentnetwork::v1::PublishResponse* response) override;
  grpc::ServerWriteReactor<agentnetwork::v1::PubSubMessage>* Subscribe(
      grpc::CallbackServerContext* context,
      const agentnetwork::v1::SubscribeRequest* request) override;
  grpc::ServerUnaryReactor* ListTopics(grpc::CallbackServerContext* context,
                                       const agentnetwork::v1::ListTopicsRequest* request,
                                       agentnetwork::v1::ListTopicsResponse* response) override;
  grpc::ServerUnaryReactor* ListPeers(grpc::CallbackServerContext* context,
                                      const agentnetwork::v1::ListTopicPeersRequest* request,
                                      agentnetwork::v1::ListTopicPeersResponse* response) override;

 private:
  CallRunner& runner_;
  PubSubApiParts parts_;
  // The envelope's sender: our peer ID as text.
  std::string local_peer_text_;
  // Network thread: the Subscribe streams registered with pubsub.
  std::vector<std::shared_ptr<SubscribeState>> subscribers_;
};

}  // namespace an::rpc
