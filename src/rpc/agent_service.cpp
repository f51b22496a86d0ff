#include "rpc/agent_service.h"

#include <deque>

namespace an::rpc {
namespace v1 = agentnetwork::v1;
namespace {

using Clock = std::chrono::steady_clock;

void describe_message(const store::StoredMessage& message, v1::InboxMessage& out) {
  out.set_id(message.id);
  out.set_from(message.from);
  out.set_received_at_unix_ms(message.received_at_ms);
  out.set_payload(message.payload.data(), message.payload.size());
}

grpc::Status inbox_error(const Error& error) {
  return grpc::Status(grpc::StatusCode::INTERNAL, "inbox: " + error.message);
}

}  // namespace

// ---- ReceiveMessages ---------------------------------------------------------------------------
//
// The stream reads the inbox itself, one message after another past the last one written, so
// that a slow client holds nothing but its position: the inbox is the queue. The network thread
// only says "there may be more" (notify). Whoever claims `busy` under the mutex is the only one
// to look up the inbox and call StartWrite; whoever sets `finished` the only one to call Finish;
// the reactor lives until OnDone, which gRPC calls only after Finish.

class InboxStream;
struct ReceiveState {
  std::mutex mutex;
  InboxStream* reactor = nullptr;
  store::Inbox* inbox = nullptr;
  std::int64_t last_id = 0;
  v1::InboxMessage current;
  bool busy = false;
  bool dirty = false;  // messages may have arrived since the last lookup
  bool closing = false;
  bool finished = false;
  grpc::Status close_status;
};

class InboxStream final : public grpc::ServerWriteReactor<v1::InboxMessage> {
 public:
  InboxStream(store::Inbox& inbox, std::int64_t after_id)
      : state_(std::make_shared<ReceiveState>()) {
    state_->reactor = this;
    state_->inbox = &inbox;
    state_->last_id = after_id;
  }
  const std::shared_ptr<ReceiveState>& state() const { return state_; }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard lock(state_->mutex);
      state_->busy = false;
      if (!ok && !state_->closing) {
        state_->closing = true;
        state_->close_status = grpc::Status(grpc::StatusCode::CANCELLED, "stream broken");
      }
    }
    pump(state_);
  }

  void OnCancel() override { close(state_, grpc::Status::CANCELLED); }
  void OnDone() override { delete this; }

  static void pump(const std::shared_ptr<ReceiveState>& state) {
    for (;;) {
      std::int64_t after = 0;
      {
        std::unique_lock lock(state->mutex);
        if (state->busy || state->finished) return;
        if (state->closing) {
          state->finished = true;
          auto* reactor = state->reactor;
          auto status = state->close_status;
          lock.unlock();
          reactor->Finish(status);
          return;
        }
        state->busy = true;
        state->dirty = false;
        after = state->last_id;
      }
      auto listed = state->inbox->list(after, 1);
      InboxStream* write_on = nullptr;
      {
        std::lock_guard lock(state->mutex);
        if (!listed) {
          state->busy = false;
          if (!state->closing) {
            state->closing = true;
            state->close_status = inbox_error(listed.error());
          }
          continue;
        }
        if (listed->empty()) {
          state->busy = false;
          if (state->dirty || state->closing) continue;
          return;
        }
        state->current.Clear();
        describe_message(listed->front(), state->current);
        state->last_id = listed->front().id;
        write_on = state->reactor;
      }
      write_on->StartWrite(&state->current);
      return;
    }
  }

  // New messages may be in the inbox; false once the stream has ended.
  static bool notify(const std::shared_ptr<ReceiveState>& state) {
    {
      std::lock_guard lock(state->mutex);
      if (state->finished) return false;
      state->dirty = true;
    }
    pump(state);
    return true;
  }

  static void close(const std::shared_ptr<ReceiveState>& state, grpc::Status status) {
    {
      std::lock_guard lock(state->mutex);
      if (state->finished || state->closing) return;
      state->closing = true;
      state->close_status = std::move(status);
    }
    pump(state);
  }

 private:
  std::shared_ptr<ReceiveState> state_;
};

// ---- ServeRequests -----------------------------------------------------------------------------
//
// Requests are queued by the network thread (at most kMaxRequestsPerServingAgent per agent, the
// hub's cap) and written one at a time; answers are read continuously and posted to the network
// thread. The same ownership rules as above: `writing` and `finished` are claimed under the mutex.

class ServeStream;
struct ServeState {
  std::mutex mutex;
  ServeStream* reactor = nullptr;
  std::deque<v1::IncomingRequest> queue;
  v1::IncomingRequest current;
  bool writing = false;
  bool closing = false;
  bool finished = false;
  grpc::Status close_status;
  // Network thread: the agent's ID at the hub, once registered.
  std::optional<AgentHub::ServerId> id;
};

class ServeStream final : public grpc::ServerBidiReactor<v1::RequestAnswer, v1::IncomingRequest> {
 public:
  ServeStream(asio::io_context& io, AgentHub& hub)
      : io_(io), hub_(hub), state_(std::make_shared<ServeState>()) {
    state_->reactor = this;
  }
  const std::shared_ptr<ServeState>& state() const { return state_; }

  void start_reading() { StartRead(&answer_); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The agent closed its side (or went away): it answers nothing more.
      close(state_, grpc::Status::OK);
      return;
    }
    p2p::daan::RequestAnswer answer{answer_.error(),
                                    Bytes(answer_.payload().begin(), answer_.payload().end())};
    asio::post(io_, [&hub = hub_, state = state_, request_id = answer_.request_id(),
                     answer = std::move(answer)]() mutable {
      if (state->id) hub.answer(*state->id, request_id, std::move(answer));
    });
    {
      std::lock_guard lock(state_->mutex);
      if (state_->closing || state_->finished) return;
    }
    StartRead(&answer_);
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard lock(state_->mutex);
      state_->writing = false;
      if (!ok && !state_->closing) {
        state_->queue.clear();
        state_->closing = true;
        state_->close_status = grpc::Status(grpc::StatusCode::CANCELLED, "stream broken");
      }
    }
    pump(state_);
  }

  void OnSendInitialMetadataDone(bool ok) override { OnWriteDone(ok); }

  void OnCancel() override { close(state_, grpc::Status::CANCELLED); }

  void OnDone() override {
    // Unanswered requests of this agent are answered with an error by the hub.
    asio::post(io_, [&hub = hub_, state = state_] {
      if (state->id) hub.remove_server(*state->id);
    });
    delete this;
  }

  static void pump(const std::shared_ptr<ServeState>& state) {
    ServeStream* write_on = nullptr;
    ServeStream* finish_on = nullptr;
    grpc::Status status;
    {
      std::lock_guard lock(state->mutex);
      if (state->writing || state->finished) return;
      if (state->closing) {
        state->finished = true;
        finish_on = state->reactor;
        status = state->close_status;
      } else if (!state->queue.empty()) {
        state->current = std::move(state->queue.front());
        state->queue.pop_front();
        state->writing = true;
        write_on = state->reactor;
      }
    }
    if (write_on != nullptr) write_on->StartWrite(&state->current);
    if (finish_on != nullptr) finish_on->Finish(status);
  }

  // Tells the agent that it is registered: every request after the response headers reaches
  // it. Counts as a write, so that no request is written before them.
  static void send_initial_metadata(const std::shared_ptr<ServeState>& state) {
    ServeStream* send_on = nullptr;
    {
      std::lock_guard lock(state->mutex);
      if (state->finished || state->closing || state->writing) return;
      state->writing = true;
      send_on = state->reactor;
    }
    send_on->StartSendInitialMetadata();
  }

  static bool push(const std::shared_ptr<ServeState>& state, v1::IncomingRequest request) {
    {
      std::lock_guard lock(state->mutex);
      if (state->finished || state->closing) return false;
      state->queue.push_back(std::move(request));
    }
    pump(state);
    return true;
  }

  static void close(const std::shared_ptr<ServeState>& state, grpc::Status status) {
    {
      std::lock_guard lock(state->mutex);
      if (state->finished || state->closing) return;
      state->closing = true;
      state->close_status = std::move(status);
    }
    pump(state);
  }

 private:
  asio::io_context& io_;
  AgentHub& hub_;
  std::shared_ptr<ServeState> state_;
  v1::RequestAnswer answer_;
};

namespace {

// The hub's view of one serving agent.
class ServeStreamServer final : public RequestServer {
 public:
  explicit ServeStreamServer(std::shared_ptr<ServeState> state) : state_(std::move(state)) {}
  bool push(IncomingRequestData request) override {
    v1::IncomingRequest out;
    out.set_request_id(request.request_id);
    out.set_from(request.from.to_string());
    out.set_payload(request.payload.data(), request.payload.size());
    out.set_received_at_unix_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    request.received_at.time_since_epoch())
                                    .count());
    return ServeStream::push(state_, std::move(out));
  }

 private:
  std::shared_ptr<ServeState> state_;
};

}  // namespace

// ---- the service -------------------------------------------------------------------------------

AgentService::AgentService(CallRunner& runner, p2p::net::Host& host, AgentApiParts parts)
    : runner_(runner), host_(host), parts_(parts) {}

AgentService::~AgentService() {
  lifetime_.end();
}

void AgentService::stop() {
  for (const auto& receiver : receivers_)
    InboxStream::close(receiver, grpc::Status::OK);
  receivers_.clear();
  for (const auto& server : servers_)
    ServeStream::close(server, shutting_down());
  servers_.clear();
}

asio::awaitable<std::pair<grpc::Status, p2p::PeerId>> AgentService::reach(
    std::string target, Clock::time_point deadline) {
  using grpc::Status;
  using grpc::StatusCode;
  auto invalid = [&](const std::string& why) {
    return std::pair{Status(StatusCode::INVALID_ARGUMENT, why), host_.peer_id()};
  };
  std::optional<p2p::Multiaddr> address;
  std::string peer_text = target;
  if (!target.empty() && target.front() == '/') {
    auto parsed = p2p::Multiaddr::parse(target);
    if (!parsed) co_return invalid(parsed.error().message);
    auto component = parsed->peer_id_component();
    if (!component) co_return invalid("\"" + target + "\" has no /p2p/<peer id> part");
    peer_text = *component;
    address = std::move(*parsed);
  }
  auto peer = p2p::PeerId::parse(peer_text);
  if (!peer) co_return invalid("\"" + target + "\" is neither a peer ID nor a multiaddr");
  if (*peer == host_.peer_id()) co_return invalid("that is this node's own ID");
  if (host_.connection_to(*peer)) co_return std::pair{Status::OK, *peer};

  auto alive = lifetime_.token();
  std::string last_error;
  auto try_address = [&](const p2p::Multiaddr& full) -> asio::awaitable<bool> {
    auto connected = co_await host_.connect(full);
    if (connected) co_return true;
    last_error = connected.error().message;
    co_return false;
  };
  if (address) {
    if (co_await try_address(*address)) co_return std::pair{Status::OK, *peer};
    co_return std::pair{Status(StatusCode::UNAVAILABLE, last_error), *peer};
  }
  std::vector<p2p::Multiaddr> known;
  if (const auto* info = host_.peer_info(*peer); info != nullptr) known = info->addresses;
  for (const auto& known_address : known) {
    auto full = p2p::Multiaddr::parse(known_address.to_string() + "/p2p/" + peer->to_string());
    if (!full) continue;
    if (co_await try_address(*full)) co_return std::pair{Status::OK, *peer};
    if (!alive) co_return std::pair{shutting_down(), *peer};
  }
  if (parts_.dht != nullptr) {
    auto found = co_await parts_.dht->find_peer(*peer, deadline);
    if (!alive) co_return std::pair{shutting_down(), *peer};
    if (host_.connection_to(*peer)) co_return std::pair{Status::OK, *peer};
    if (found) {
      for (const auto& found_address : found->addresses) {
        auto full = p2p::Multiaddr::parse(found_address.to_string() + "/p2p/" + peer->to_string());
        if (!full) continue;
        if (co_await try_address(*full)) co_return std::pair{Status::OK, *peer};
        if (!alive) co_return std::pair{shutting_down(), *peer};
      }
    } else if (last_error.empty()) {
      last_error = found.error().message;
      co_return std::pair{
          Status(StatusCode::NOT_FOUND, "cannot find " + peer->to_string() + ": " + last_error),
          *peer};
    }
  }
  if (last_error.empty()) {
    co_return std::pair{
        Status(StatusCode::NOT_FOUND, "no known address for " + peer->to_string() +
                                          (parts_.dht == nullptr ? " (and no DHT to ask)" : "")),
        *peer};
  }
  co_return std::pair{
      Status(StatusCode::UNAVAILABLE, "cannot reach " + peer->to_string() + ": " + last_error),
      *peer};
}

grpc::ServerUnaryReactor* AgentService::SendMessage(grpc::CallbackServerContext* context,
                                                    const v1::SendMessageRequest* request,
                                                    v1::SendMessageResponse* response) {
  if (request->peer().empty()) return runner_.invalid_argument(context, "peer is empty");
  if (request->payload().size() > kMaxAgentPayloadBytes) {
    return runner_.invalid_argument(context, "payload is larger than " +
                                                 std::to_string(kMaxAgentPayloadBytes) +
                                                 " bytes (a 16 MiB frame)");
  }
  Bytes payload(request->payload().begin(), request->payload().end());
  return runner_.run_on_network_thread(
      context, kReachPeerCap + p2p::daan::kMessageTimeout,
      [this, target = request->peer(), payload = std::move(payload),
       response](Clock::time_point deadline) mutable -> asio::awaitable<grpc::Status> {
        auto [reached, peer] = co_await reach(target, deadline);
        if (!reached.ok()) co_return reached;
        auto sent = co_await parts_.messenger->send(
            peer, std::move(payload),
            std::min(deadline, Clock::now() + p2p::daan::kMessageTimeout));
        if (!sent) {
          co_return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                 "message to " + peer.to_string() + ": " + sent.error().message);
        }
        response->set_peer_id(peer.to_string());
        co_return grpc::Status::OK;
      });
}

grpc::ServerUnaryReactor* AgentService::SendRequest(grpc::CallbackServerContext* context,
                                                    const v1::SendRequestRequest* request,
                                                    v1::SendRequestResponse* response) {
  if (request->peer().empty()) return runner_.invalid_argument(context, "peer is empty");
  if (request->payload().size() > kMaxAgentPayloadBytes) {
    return runner_.invalid_argument(context, "payload is larger than " +
                                                 std::to_string(kMaxAgentPayloadBytes) +
                                                 " bytes (a 16 MiB frame)");
  }
  const auto max_timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(p2p::daan::kRequestTimeout);
  if (request->timeout_ms() > static_cast<std::uint64_t>(max_timeout.count())) {
    return runner_.invalid_argument(
        context, "timeout_ms is over the limit of " + std::to_string(max_timeout.count()));
  }
  const auto timeout =
      request->timeout_ms() == 0 ? max_timeout : std::chrono::milliseconds(request->timeout_ms());
  Bytes payload(request->payload().begin(), request->payload().end());
  return runner_.run_on_network_thread(
      context, kReachPeerCap + timeout,
      [this, target = request->peer(), payload = std::move(payload), timeout,
       response](Clock::time_point deadline) mutable -> asio::awaitable<grpc::Status> {
        auto [reached, peer] = co_await reach(target, deadline);
        if (!reached.ok()) co_return reached;
        const auto start = Clock::now();
        auto answer = co_await parts_.messenger->request(peer, std::move(payload), start + timeout);
        if (!answer) {
          const bool timed_out = Clock::now() >= start + timeout;
          co_return grpc::Status(
              timed_out ? grpc::StatusCode::DEADLINE_EXCEEDED : grpc::StatusCode::UNAVAILABLE,
              "request to " + peer.to_string() + ": " + answer.error().message);
        }
        response->set_peer_id(peer.to_string());
        response->set_payload(answer->payload.data(), answer->payload.size());
        response->set_error(answer->error);
        response->set_rtt_ns(
            std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count());
        co_return grpc::Status::OK;
      });
}

grpc::ServerWriteReactor<v1::InboxMessage>* AgentService::ReceiveMessages(
    grpc::CallbackServerContext* context, const v1::ReceiveMessagesRequest* request) {
  auto* stream =
      new InboxStream(parts_.hub->inbox(), std::max<std::int64_t>(0, request->after_id()));
  auto state = stream->state();
  if (auto denied = runner_.authorize(*context); !denied.ok()) {
    InboxStream::close(state, denied);
    return stream;
  }
  asio::post(runner_.io, [this, state] {
    if (runner_.stopping) {
      InboxStream::close(state, shutting_down());
      return;
    }
    std::erase_if(receivers_, [](const std::shared_ptr<ReceiveState>& receiver) {
      std::lock_guard lock(receiver->mutex);
      return receiver->finished;
    });
    receivers_.push_back(state);
    parts_.hub->add_inbox_listener([state] { return InboxStream::notify(state); });
    // What is stored already goes out first.
    InboxStream::notify(state);
  });
  return stream;
}

grpc::ServerUnaryReactor* AgentService::AckMessages(grpc::CallbackServerContext* context,
                                                    const v1::AckMessagesRequest* request,
                                                    v1::AckMessagesResponse* response) {
  if (request->ids_size() > static_cast<int>(kMaxAckIds)) {
    return runner_.invalid_argument(context,
                                    "at most " + std::to_string(kMaxAckIds) + " IDs per call");
  }
  auto* reactor = context->DefaultReactor();
  if (auto denied = runner_.authorize(*context); !denied.ok()) {
    reactor->Finish(denied);
    return reactor;
  }
  // The inbox is thread-safe: answered here, without the network thread.
  std::vector<std::int64_t> ids(request->ids().begin(), request->ids().end());
  auto removed = parts_.hub->inbox().remove(ids);
  if (!removed) {
    reactor->Finish(inbox_error(removed.error()));
    return reactor;
  }
  response->set_removed(static_cast<std::uint32_t>(*removed));
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* AgentService::ListInbox(grpc::CallbackServerContext* context,
                                                  const v1::ListInboxRequest* request,
                                                  v1::ListInboxResponse* response) {
  if (request->limit() > kMaxInboxListLimit) {
    return runner_.invalid_argument(
        context, "limit is over the maximum of " + std::to_string(kMaxInboxListLimit));
  }
  auto* reactor = context->DefaultReactor();
  if (auto denied = runner_.authorize(*context); !denied.ok()) {
    reactor->Finish(denied);
    return reactor;
  }
  const std::size_t limit = request->limit() == 0 ? kDefaultInboxListLimit : request->limit();
  auto& inbox = parts_.hub->inbox();
  auto listed = inbox.list(std::max<std::int64_t>(0, request->after_id()), limit);
  if (!listed) {
    reactor->Finish(inbox_error(listed.error()));
    return reactor;
  }
  std::size_t payload_bytes = 0;
  for (const auto& message : *listed) {
    // One message always fits (the client's limit must allow the largest payload); more only
    // while the answer stays small.
    if (payload_bytes > 0 && payload_bytes + message.payload.size() > kMaxInboxListBytes) break;
    payload_bytes += message.payload.size();
    describe_message(message, *response->add_messages());
  }
  const auto counts = inbox.counts();
  response->set_total_messages(counts.messages);
  response->set_total_bytes(counts.bytes);
  response->set_refused(counts.refused);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerBidiReactor<v1::RequestAnswer, v1::IncomingRequest>* AgentService::ServeRequests(
    grpc::CallbackServerContext* context) {
  auto* stream = new ServeStream(runner_.io, *parts_.hub);
  auto state = stream->state();
  if (auto denied = runner_.authorize(*context); !denied.ok()) {
    ServeStream::close(state, denied);
    return stream;
  }
  // Reading starts at once: the reactor must always have an operation or a Finish pending, and
  // answers can only come after requests, which come after the registration below.
  stream->start_reading();
  asio::post(runner_.io, [this, state] {
    if (runner_.stopping) {
      ServeStream::close(state, shutting_down());
      return;
    }
    auto id = parts_.hub->add_server(std::make_shared<ServeStreamServer>(state));
    if (!id) {
      ServeStream::close(state, grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                             "too many agents serve requests already (" +
                                                 std::to_string(kMaxServingAgents) + ")"));
      return;
    }
    state->id = *id;
    ServeStream::send_initial_metadata(state);
    std::erase_if(servers_, [](const std::shared_ptr<ServeState>& server) {
      std::lock_guard lock(server->mutex);
      return server->finished;
    });
    servers_.push_back(state);
  });
  return stream;
}

grpc::ServerUnaryReactor* AgentService::Advertise(grpc::CallbackServerContext* context,
                                                  const v1::AdvertiseRequest* request,
                                                  v1::AdvertiseResponse* response) {
  if (request->namespace_().empty()) return runner_.invalid_argument(context, "namespace is empty");
  if (parts_.discovery == nullptr) {
    return runner_.finish_now(context, grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                                    "this node runs without the DHT"));
  }
  return runner_.run_on_network_thread(
      context, kDiscoveryCallCap,
      [this, name = request->namespace_(),
       response](Clock::time_point deadline) -> asio::awaitable<grpc::Status> {
        auto provided = co_await parts_.discovery->advertise(name, deadline);
        if (!provided) {
          co_return grpc::Status(grpc::StatusCode::UNAVAILABLE, provided.error().message);
        }
        response->set_peers(static_cast<std::uint32_t>(*provided));
        co_return grpc::Status::OK;
      });
}

grpc::ServerUnaryReactor* AgentService::Discover(grpc::CallbackServerContext* context,
                                                 const v1::DiscoverRequest* request,
                                                 v1::DiscoverResponse* response) {
  if (request->namespace_().empty()) return runner_.invalid_argument(context, "namespace is empty");
  if (request->limit() > kMaxDiscoverLimit) {
    return runner_.invalid_argument(
        context, "limit is over the maximum of " + std::to_string(kMaxDiscoverLimit));
  }
  if (parts_.discovery == nullptr) {
    return runner_.finish_now(context, grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                                    "this node runs without the DHT"));
  }
  const std::size_t limit = request->limit() == 0 ? kDefaultDiscoverLimit : request->limit();
  return runner_.run_on_network_thread(
      context, kDiscoveryCallCap,
      [this, name = request->namespace_(), limit,
       response](Clock::time_point deadline) -> asio::awaitable<grpc::Status> {
        auto found = co_await parts_.discovery->discover(name, limit, deadline);
        if (!found) co_return grpc::Status(grpc::StatusCode::UNAVAILABLE, found.error().message);
        for (const auto& peer : *found) {
          auto* out = response->add_peers();
          out->set_peer_id(peer.peer.to_string());
          for (const auto& address : peer.addresses)
            out->add_addresses(address.to_string());
        }
        co_return grpc::Status::OK;
      });
}

}  // namespace an::rpc
