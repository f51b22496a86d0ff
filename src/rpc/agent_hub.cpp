#include "rpc/agent_hub.h"

#include <asio.hpp>

#include "p2p/daan/frame.h"

namespace an::rpc {
namespace {

// A full inbox under a flood would otherwise log every refused message.
constexpr std::chrono::seconds kRefusalLogInterval{10};

p2p::daan::RequestAnswer error_answer(std::string_view text) {
  return p2p::daan::RequestAnswer{true, Bytes(text.begin(), text.end())};
}

}  // namespace

AgentHub::AgentHub(asio::io_context& io, store::Inbox& inbox, LogCallback log)
    : io_(io), inbox_(inbox), log_(std::move(log)) {}

AgentHub::~AgentHub() {
  lifetime_.end();
}

void AgentHub::log(const std::string& line) const {
  if (log_) log_(line);
}

asio::awaitable<Expected<void>> AgentHub::deliver_message(const p2p::PeerId& from, Bytes payload) {
  if (stopped_) co_return fail("the node is stopping");
  // The inbox's writer thread reports here through the io_context; the state it fills is
  // shared so that it stays valid whatever happens to this coroutine meanwhile.
  struct Outcome {
    explicit Outcome(const asio::any_io_executor& executor) : stored(executor) {}
    std::optional<Expected<store::StoredMessage>> result;
    p2p::net::Signal stored;
  };
  auto outcome = std::make_shared<Outcome>(io_.get_executor());
  store::StoredMessage message;
  message.from = from.to_string();
  message.protocol = std::string(p2p::daan::kMessageProtocol);
  message.received_at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  message.payload = std::move(payload);
  inbox_.append_async(std::move(message),
                      [outcome, &io = io_](Expected<store::StoredMessage> result) {
                        asio::post(io, [outcome, result = std::move(result)]() mutable {
                          outcome->result = std::move(result);
                          outcome->stored.notify();
                        });
                      });
  auto alive = lifetime_.token();
  while (!outcome->result)
    co_await outcome->stored.wait();
  if (!alive) co_return fail("the node is stopping");
  if (!*outcome->result) {
    ++stats_.messages_refused;
    ++unreported_refusals_;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_refusal_report_ >= kRefusalLogInterval) {
      log("inbox: refused a message from " + from.to_string() + " (" +
          outcome->result->error().message + ")" +
          (unreported_refusals_ > 1
               ? "; " + std::to_string(unreported_refusals_) + " refused since the last report"
               : std::string()));
      last_refusal_report_ = now;
      unreported_refusals_ = 0;
    }
    co_return tl::unexpected(outcome->result->error());
  }
  ++stats_.messages_stored;
  notify_inbox_listeners();
  co_return Expected<void>{};
}

asio::awaitable<p2p::daan::RequestAnswer> AgentHub::handle_request(const p2p::PeerId& from,
                                                                   Bytes payload) {
  if (stopped_) co_return error_answer("the node is stopping");
  auto alive = lifetime_.token();
  auto pending = std::make_shared<PendingRequest>();
  pending->answered = std::make_unique<p2p::net::Signal>(io_.get_executor());
  const auto request_id = next_request_id_++;
  IncomingRequestData request{request_id, from, std::move(payload),
                              std::chrono::system_clock::now()};
  // The agent with the fewest unanswered requests; agents whose stream ended are dropped.
  bool handed_over = false;
  while (!handed_over) {
    auto chosen = servers_.end();
    for (auto it = servers_.begin(); it != servers_.end(); ++it) {
      if (it->second.outstanding >= kMaxRequestsPerServingAgent) continue;
      if (chosen == servers_.end() || it->second.outstanding < chosen->second.outstanding) {
        chosen = it;
      }
    }
    if (chosen == servers_.end()) {
      ++stats_.requests_unserved;
      co_return error_answer(servers_.empty() ? kNoHandlerError
                                              : "every request handler is busy; retry later");
    }
    // `push` takes the request by value: keep the payload for a retry on another agent.
    if (chosen->second.server->push(request)) {
      ++chosen->second.outstanding;
      pending->server = chosen->first;
      handed_over = true;
    } else {
      remove_server(chosen->first);
    }
  }
  pending_.emplace(request_id, pending);
  const auto deadline = std::chrono::steady_clock::now() + kServingAgentAnswerTimeout;
  while (!pending->answer) {
    if (!co_await pending->answered->wait_until(deadline)) break;
  }
  if (!alive) co_return error_answer("the node is stopping");
  if (!pending->answer) {
    finish_request(request_id, error_answer("the request handler did not answer in time"));
  }
  ++(pending->answer->error ? stats_.requests_unserved : stats_.requests_served);
  co_return std::move(*pending->answer);
}

void AgentHub::finish_request(std::uint64_t request_id, p2p::daan::RequestAnswer answer) {
  auto found = pending_.find(request_id);
  if (found == pending_.end()) return;
  auto pending = found->second;
  pending_.erase(found);
  if (auto server = servers_.find(pending->server); server != servers_.end()) {
    --server->second.outstanding;
  }
  pending->answer = std::move(answer);
  pending->answered->notify();
}

void AgentHub::add_inbox_listener(InboxListener listener) {
  inbox_listeners_.push_back(std::move(listener));
}

void AgentHub::notify_inbox_listeners() {
  std::erase_if(inbox_listeners_, [](const InboxListener& listener) { return !listener(); });
}

std::optional<AgentHub::ServerId> AgentHub::add_server(std::shared_ptr<RequestServer> server) {
  if (stopped_ || servers_.size() >= kMaxServingAgents) return std::nullopt;
  const auto id = next_server_id_++;
  servers_.emplace(id, ServingAgent{std::move(server), 0});
  return id;
}

void AgentHub::remove_server(ServerId server) {
  if (servers_.erase(server) == 0) return;
  std::vector<std::uint64_t> orphaned;
  for (const auto& [request_id, pending] : pending_) {
    if (pending->server == server) orphaned.push_back(request_id);
  }
  for (auto request_id : orphaned)
    finish_request(request_id, error_answer("the request handler went away"));
}

void AgentHub::answer(ServerId server, std::uint64_t request_id, p2p::daan::RequestAnswer answer) {
  auto found = pending_.find(request_id);
  if (found == pending_.end() || found->second->server != server) return;
  finish_request(request_id, std::move(answer));
}

void AgentHub::stop() {
  if (stopped_) return;
  stopped_ = true;
  std::vector<std::uint64_t> all;
  for (const auto& [request_id, pending] : pending_)
    all.push_back(request_id);
  for (auto request_id : all)
    finish_request(request_id, error_answer("the node is stopping"));
  servers_.clear();
  notify_inbox_listeners();
}

}  // namespace an::rpc
