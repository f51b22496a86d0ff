// agentnetwork.v1.Agent (proto/agentnetwork/v1/agent.proto): the agents' side of the /daan
// protocols, served by the ControlServer next to agentnetwork.v1.Node and through the same
// CallRunner (token, network thread, caps). Internal to src/rpc.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "agentnetwork/v1/agent.grpc.pb.h"
#include "p2p/daan/io/discovery.h"
#include "p2p/daan/io/messenger.h"
#include "p2p/kad/io/dht.h"
#include "p2p/net/host.h"
#include "rpc/agent_hub.h"
#include "rpc/call_runner.h"
#include "rpc/control_server.h"

namespace an::rpc {

// The largest payload whose frame fits the 16 MiB the Go node accepts: the JSON carries it in
// base64 (4 bytes for every 3) next to a few dozen bytes of keys.
inline constexpr std::size_t kMaxAgentPayloadBytes = (p2p::daan::kMaxFrameSize - 64) / 4 * 3;
// What a call may bring: the largest payload and its message's other fields.
inline constexpr int kMaxAgentCallBytes = static_cast<int>(kMaxAgentPayloadBytes + 64 * 1024);
// How long a call may spend reaching a peer that is not connected (a DHT lookup included).
inline constexpr std::chrono::seconds kReachPeerCap{30};
inline constexpr std::chrono::seconds kDiscoveryCallCap{60};
inline constexpr std::uint32_t kDefaultInboxListLimit = 100;
inline constexpr std::uint32_t kMaxInboxListLimit = 1000;
// ListInbox stops adding messages past this many payload bytes (the first always goes).
inline constexpr std::size_t kMaxInboxListBytes = 4 * 1024 * 1024;
inline constexpr std::uint32_t kMaxAckIds = 10000;
inline constexpr std::uint32_t kDefaultDiscoverLimit = 20;
inline constexpr std::uint32_t kMaxDiscoverLimit = 100;

struct ReceiveState;
struct ServeState;

class AgentService final : public agentnetwork::v1::Agent::CallbackService {
 public:
  AgentService(CallRunner& runner, p2p::net::Host& host, AgentApiParts parts);
  ~AgentService() override;

  // Network thread: ends the open ReceiveMessages and ServeRequests streams.
  void stop();

  grpc::ServerUnaryReactor* SendMessage(grpc::CallbackServerContext* context,
                                        const agentnetwork::v1::SendMessageRequest* request,
                                        agentnetwork::v1::SendMessageResponse* response) override;
  grpc::ServerUnaryReactor* SendRequest(grpc::CallbackServerContext* context,
                                        const agentnetwork::v1::SendRequestRequest* request,
                                        agentnetwork::v1::SendRequestResponse* response) override;
  grpc::ServerWriteReactor<agentnetwork::v1::InboxMessage>* ReceiveMessages(
      grpc::CallbackServerContext* context,
      const agentnetwork::v1::ReceiveMessagesRequest* request) override;
  grpc::ServerUnaryReactor* AckMessages(grpc::CallbackServerContext* context,
                                        const agentnetwork::v1::AckMessagesRequest* request,
                                        agentnetwork::v1::AckMessagesResponse* response) override;
  grpc::ServerUnaryReactor* ListInbox(grpc::CallbackServerContext* context,
                                      const agentnetwork::v1::ListInboxRequest* request,
                                      agentnetwork::v1::ListInboxResponse* response) override;
  grpc::ServerBidiReactor<agentnetwork::v1::RequestAnswer, agentnetwork::v1::IncomingRequest>*
  ServeRequests(grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* Advertise(grpc::CallbackServerContext* context,
                                      const agentnetwork::v1::AdvertiseRequest* request,
                                      agentnetwork::v1::AdvertiseResponse* response) override;
  grpc::ServerUnaryReactor* Discover(grpc::CallbackServerContext* context,
                                     const agentnetwork::v1::DiscoverRequest* request,
                                     agentnetwork::v1::DiscoverResponse* response) override;

 private:
  // Network thread: a connection to the peer named by `target` (peer ID or multiaddr with
  // /p2p/), dialling it if needed: the multiaddr, else the peer store's addresses, else a DHT
  // lookup. The status says why not.
  asio::awaitable<std::pair<grpc::Status, p2p::PeerId>> reach(
      std::string target, std::chrono::steady_clock::time_point deadline);

  CallRunner& runner_;
  p2p::net::Host& host_;
  AgentApiParts parts_;
  // Network thread.
  std::vector<std::shared_ptr<ReceiveState>> receivers_;
  std::vector<std::shared_ptr<ServeState>> servers_;
  p2p::net::Lifetime lifetime_;
};

}  // namespace an::rpc
