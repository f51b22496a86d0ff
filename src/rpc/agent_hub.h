// Where the /daan protocols meet the agents: the node's MessageSink. A one-way message goes
// into the durable inbox (and the sender learns it was taken only once it is on disk); agents
// read the inbox through the Agent API's ReceiveMessages and ListInbox. A request goes to one
// of the agents serving requests (ServeRequests), or is answered "no handler registered" when
// none serves, as the Go AgentNetwork answers.
//
// Network thread only, except `inbox()` (thread-safe). Owned by the node, which keeps it alive
// longer than the Messenger that calls it and the API server that registers agents with it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <asio/io_context.hpp>

#include "p2p/daan/io/messenger.h"
#include "p2p/net/async.h"
#include "store/inbox.h"

namespace an::rpc {

// What Go's messenger answers when nothing serves requests.
inline constexpr std::string_view kNoHandlerError = "no handler registered";
// Requests one serving agent may hold unanswered; past it on every agent, new ones are refused.
inline constexpr std::size_t kMaxRequestsPerServingAgent = 256;
// Serving agents at once (each is one gRPC stream).
inline constexpr std::size_t kMaxServingAgents = 64;
// How long a serving agent has to answer. The requester gives up at 30 s (Go's request
// timeout); answering a little earlier lets the requester read a reason instead of a timeout.
inline constexpr std::chrono::seconds kServingAgentAnswerTimeout{28};

struct IncomingRequestData {
  std::uint64_t request_id = 0;
  p2p::PeerId from;
  Bytes payload;
  std::chrono::system_clock::time_point received_at;
};

// One agent serving requests, as the API server sees it (a gRPC stream). `push` hands it a
// request and returns false when the agent is gone. Network thread.
class RequestServer {
 public:
  virtual ~RequestServer() = default;
  virtual bool push(IncomingRequestData request) = 0;
};

struct AgentHubStats {
  std::uint64_t messages_stored = 0;
  std::uint64_t messages_refused = 0;   // inbox full or not writable: the sender's stream reset
  std::uint64_t requests_served = 0;    // answered by an agent
  std::uint64_t requests_unserved = 0;  // answered with an error by the node
};

class AgentHub final : public p2p::daan::MessageSink {
 public:
  using ServerId = std::uint64_t;
  // Returns false to be removed (the listener's stream ended).
  using InboxListener = std::function<bool()>;
  using LogCallback = std::function<void(const std::string&)>;

  AgentHub(asio::io_context& io, store::Inbox& inbox, LogCallback log = {});
  ~AgentHub() override;
  AgentHub(const AgentHub&) = delete;
  AgentHub& operator=(const AgentHub&) = delete;

  asio::awaitable<Expected<void>> deliver_message(const p2p::PeerId& from, Bytes payload) override;
  asio::awaitable<p2p::daan::RequestAnswer> handle_request(const p2p::PeerId& from,
                                                           Bytes payload) override;

  // Called after each message stored, and once at stop().
  void add_inbox_listener(InboxListener listener);

  // An agent starts serving; nullopt when kMaxServingAgents serve already.
  std::optional<ServerId> add_server(std::shared_ptr<RequestServer> server);
  // The agent's stream ended: its unanswered requests are answered with an error.
  void remove_server(ServerId server);
  // The agent's answer; ignored when the request is not (or no longer) that agent's.
  void answer(ServerId server, std::uint64_t request_id, p2p::daan::RequestAnswer answer);

  // Answers everything pending with an error and refuses new work.
  void stop();

  store::Inbox& inbox() { return inbox_; }
  const AgentHubStats& stats() const { return stats_; }

 private:
  struct PendingRequest {
    ServerId server = 0;
    std::optional<p2p::daan::RequestAnswer> answer;
    std::unique_ptr<p2p::net::Signal> answered;
  };
  struct ServingAgent {
    std::shared_ptr<RequestServer> server;
    std::size_t outstanding = 0;
  };

  void finish_request(std::uint64_t request_id, p2p::daan::RequestAnswer answer);
  void notify_inbox_listeners();
  void log(const std::string& line) const;

  asio::io_context& io_;
  store::Inbox& inbox_;
  LogCallback log_;
  std::vector<InboxListener> inbox_listeners_;
  std::map<ServerId, ServingAgent> servers_;
  std::map<std::uint64_t, std::shared_ptr<PendingRequest>> pending_;
  ServerId next_server_id_ = 1;
  std::uint64_t next_request_id_ = 1;
  AgentHubStats stats_;
  std::chrono::steady_clock::time_point last_refusal_report_{};
  std::uint64_t unreported_refusals_ = 0;
  bool stopped_ = false;
  p2p::net::Lifetime lifetime_;
};

}  // namespace an::rpc
