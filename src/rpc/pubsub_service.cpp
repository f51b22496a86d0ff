#include "rpc/pubsub_service.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <mutex>

#include "p2p/daan/broadcast.h"
#include "p2p/pubsub/io/pubsub.h"

namespace an::rpc {
namespace v1 = agentnetwork::v1;
namespace {

grpc::Status pubsub_off() {
  return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "pubsub is off (-pubsub off)");
}

// Why a topic cannot be used; empty when it can.
std::string topic_problem(const std::string& topic) {
  if (topic.empty()) return "topic is empty";
  if (topic.size() > p2p::pubsub::kMaxTopicLength) {
    return "topic is " + std::to_string(topic.size()) + " bytes, over the limit of " +
           std::to_string(p2p::pubsub::kMaxTopicLength);
  }
  return {};
}

std::string too_large(std::size_t size, bool enveloped) {
  return std::string("the message is ") + std::to_string(size) + " bytes" +
         (enveloped ? " in its envelope (the payload grows by a third in base64)" : "") +
         ", over the limit of " + std::to_string(p2p::pubsub::kMaxDataSize) + " bytes" +
         (enveloped ? "" : " (gossipsub's 1 MiB message, less its fields)");
}

v1::PubSubMessage describe_message(const p2p::pubsub::ReceivedMessage& message, bool raw) {
  v1::PubSubMessage out;
  out.set_from(message.author.to_string());
  out.set_seqno(message.seqno.data(), message.seqno.size());
  out.set_topic(message.topic);
  out.set_id(message.id.data(), message.id.size());
  out.set_received_from(message.received_from.to_string());
  if (!raw) {
    // A peer's data that is not an envelope still reaches the agent, flagged: dropping it, as
    // the Go node does, would hide other applications' traffic on the topic.
    if (auto envelope = p2p::daan::decode_broadcast(message.data)) {
      out.set_data(envelope->payload.data(), envelope->payload.size());
      out.set_sender(envelope->sender);
      out.set_timestamp(envelope->timestamp);
      return out;
    }
    out.set_envelope_malformed(true);
  }
  out.set_data(message.data.data(), message.data.size());
  return out;
}

}  // namespace

// ---- Subscribe ---------------------------------------------------------------------------------
//
// Messages are queued by the network thread (the subscription's handler) and written one at a
// time; gRPC reports each write's completion on its own threads. As in WatchPeers, the reactor
// deletes itself in OnDone, which gRPC calls only after Finish; the network thread therefore
// holds the shared state, never the reactor, and whoever sets `writing` or `finished` under the
// mutex is the only one to call StartWrite or Finish. The pubsub Subscription lives in the state
// and is only touched (created, destroyed) on the network thread.

class SubscribeStream;
struct SubscribeState {
  std::mutex mutex;
  SubscribeStream* reactor = nullptr;
  grpc::CallbackServerContext* context = nullptr;  // valid while the reactor is
  std::deque<v1::PubSubMessage> queue;
  std::size_t queued_bytes = 0;
  // Messages lost since the last one queued; told with the next.
  std::uint64_t dropped = 0;
  v1::PubSubMessage current;
  bool writing = false;
  bool closing = false;
  bool finished = false;
  grpc::Status close_status;
  // Network thread only.
  std::unique_ptr<p2p::pubsub::Subscription> subscription;
};
using SubscribeHandle = std::shared_ptr<SubscribeState>;

class SubscribeStream final : public grpc::ServerWriteReactor<v1::PubSubMessage> {
 public:
  SubscribeStream(asio::io_context& io, grpc::CallbackServerContext* context)
      : io_(io), state_(std::make_shared<SubscribeState>()) {
    state_->reactor = this;
    state_->context = context;
  }
  const SubscribeHandle& handle() const { return state_; }

  void OnSendInitialMetadataDone(bool ok) override { OnWriteDone(ok); }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard lock(state_->mutex);
      state_->writing = false;
      if (!ok && !state_->closing) {
        // The client went away (or the server is stopping): nothing more can be delivered.
        drop_queue(*state_);
        state_->closing = true;
        state_->close_status = grpc::Status(grpc::StatusCode::CANCELLED, "stream broken");
      }
    }
    pump(state_);
  }

  void OnCancel() override {
    {
      std::lock_guard lock(state_->mutex);
      drop_queue(*state_);
      if (!state_->closing) {
        state_->closing = true;
        state_->close_status = grpc::Status::CANCELLED;
      }
    }
    pump(state_);
  }

  void OnDone() override {
    // Leaves the topic (when no other subscriber has it) on the network thread, which owns
    // pubsub. Posted after the registration, so it never runs before it.
    asio::post(io_, [state = state_] { state->subscription.reset(); });
    delete this;
  }

  static void pump(const SubscribeHandle& state) {
    SubscribeStream* write_on = nullptr;
    SubscribeStream* finish_on = nullptr;
    grpc::Status status;
    {
      std::lock_guard lock(state->mutex);
      if (state->writing || state->finished) return;
      if (!state->queue.empty()) {
        state->current = std::move(state->queue.front());
        state->queue.pop_front();
        state->queued_bytes -= state->current.data().size();
        state->writing = true;
        write_on = state->reactor;
      } else if (state->closing) {
        state->finished = true;
        finish_on = state->reactor;
        status = state->close_status;
      }
    }
    if (write_on != nullptr) write_on->StartWrite(&state->current);
    if (finish_on != nullptr) finish_on->Finish(status);
  }

  // Tells the client that the topic is joined: every message after the initial metadata reaches
  // it. The headers carry kSubscribedMetadataKey, which a refused call's (trailers-only) answer
  // lacks. Counts as a write, so that the stream cannot finish under it (nor gRPC read the
  // metadata while it is added).
  static void send_initial_metadata(const SubscribeHandle& state) {
    SubscribeStream* send_on = nullptr;
    grpc::CallbackServerContext* context = nullptr;
    {
      std::lock_guard lock(state->mutex);
      if (state->finished || state->closing || state->writing) return;
      state->writing = true;
      send_on = state->reactor;
      context = state->context;
    }
    context->AddInitialMetadata(std::string(kSubscribedMetadataKey), "1");
    send_on->StartSendInitialMetadata();
  }

  // Whether a message of `data_size` bytes would be queued now; when not, it is counted as
  // dropped. Lets the network thread skip describing (and unwrapping) what it would drop.
  static bool admit(const SubscribeHandle& state, std::size_t data_size) {
    std::lock_guard lock(state->mutex);
    if (state->finished || state->closing) return false;
    const bool full =
        state->queue.size() >= kMaxQueuedPubSubMessages ||
        (!state->queue.empty() && state->queued_bytes + data_size > kMaxQueuedPubSubBytes);
    if (full) ++state->dropped;
    return !full;
  }

  static void push(const SubscribeHandle& state, v1::PubSubMessage message) {
    {
      std::lock_guard lock(state->mutex);
      if (state->finished || state->closing) return;
      message.set_dropped(state->dropped);
      state->dropped = 0;
      state->queued_bytes += message.data().size();
      state->queue.push_back(std::move(message));
    }
    pump(state);
  }

  // Ends the stream once the queued messages are written.
  static void close(const SubscribeHandle& state, grpc::Status status) {
    {
      std::lock_guard lock(state->mutex);
      if (state->finished || state->closing) return;
      state->closing = true;
      state->close_status = std::move(status);
    }
    pump(state);
  }

  static bool ended(const SubscribeHandle& state) {
    std::lock_guard lock(state->mutex);
    return state->finished || state->closing;
  }

 private:
  static void drop_queue(SubscribeState& state) {
    state.queue.clear();
    state.queued_bytes = 0;
  }

  asio::io_context& io_;
  SubscribeHandle state_;
};

// ---- the service -------------------------------------------------------------------------------

PubSubService::PubSubService(CallRunner& runner, p2p::net::Host& host, PubSubApiParts parts)
    : runner_(runner), parts_(parts), local_peer_text_(host.peer_id().to_string()) {}

PubSubService::~PubSubService() = default;

void PubSubService::stop() {
  for (const auto& subscriber : subscribers_) {
    SubscribeStream::close(subscriber, grpc::Status::OK);
    subscriber->subscription.reset();
  }
  subscribers_.clear();
}

grpc::ServerUnaryReactor* PubSubService::Publish(grpc::CallbackServerContext* context,
                                                 const v1::PublishRequest* request,
                                                 v1::PublishResponse* response) {
  if (auto problem = topic_problem(request->topic()); !problem.empty()) {
    return runner_.invalid_argument(context, problem);
  }
  if (request->data().size() > p2p::pubsub::kMaxDataSize) {
    return runner_.invalid_argument(context, too_large(request->data().size(), false));
  }
  if (parts_.pubsub == nullptr) return runner_.finish_now(context, pubsub_off());
  Bytes data(request->data().begin(), request->data().end());
  if (!request->raw()) {
    p2p::daan::BroadcastEnvelope envelope;
    envelope.topic = request->topic();
    envelope.sender = local_peer_text_;
    envelope.timestamp = p2p::daan::go_rfc3339_nano(std::chrono::system_clock::now());
    envelope.payload = std::move(data);
    data = p2p::daan::encode_broadcast(envelope);
    if (data.size() > p2p::pubsub::kMaxDataSize) {
      return runner_.invalid_argument(context, too_large(data.size(), true));
    }
  }
  return runner_.answer_on_network_thread(context, [this, topic = request->topic(),
                                                    data = std::move(data), response]() mutable {
    auto published = parts_.pubsub->publish(topic, std::move(data));
    if (!published) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          "cannot publish: " + published.error().message);
    }
    response->set_id(published->data(), published->size());
    response->set_topic_peers(static_cast<std::uint32_t>(parts_.pubsub->topic_peers(topic).size()));
    return grpc::Status::OK;
  });
}

grpc::ServerWriteReactor<v1::PubSubMessage>* PubSubService::Subscribe(
    grpc::CallbackServerContext* context, const v1::SubscribeRequest* request) {
  auto* stream = new SubscribeStream(runner_.io, context);
  auto state = stream->handle();
  if (auto denied = runner_.authorize(*context); !denied.ok()) {
    SubscribeStream::close(state, denied);
    return stream;
  }
  if (auto problem = topic_problem(request->topic()); !problem.empty()) {
    SubscribeStream::close(state, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, problem));
    return stream;
  }
  if (parts_.pubsub == nullptr) {
    SubscribeStream::close(state, pubsub_off());
    return stream;
  }
  asio::post(runner_.io, [this, state, topic = request->topic(), raw = request->raw()] {
    if (runner_.stopping) {
      SubscribeStream::close(state, shutting_down());
      return;
    }
    // The client may be gone already (cancelled before this ran).
    if (SubscribeStream::ended(state)) return;
    std::erase_if(subscribers_, [](const SubscribeHandle& subscriber) {
      return SubscribeStream::ended(subscriber);
    });
    if (subscribers_.size() >= kMaxSubscribeStreams) {
      SubscribeStream::close(state, grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                                 "too many Subscribe streams open already (" +
                                                     std::to_string(kMaxSubscribeStreams) + ")"));
      return;
    }
    // The handler holds the state weakly: the Subscription lives in the state, so a strong
    // reference would keep both alive forever.
    std::weak_ptr<SubscribeState> weak = state;
    auto subscribed =
        parts_.pubsub->subscribe(topic, [weak, raw](const p2p::pubsub::ReceivedMessage& message) {
          auto target = weak.lock();
          if (!target || !SubscribeStream::admit(target, message.data.size())) return;
          SubscribeStream::push(target, describe_message(message, raw));
        });
    if (!subscribed) {
      SubscribeStream::close(state, grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                                 "cannot subscribe to \"" + topic +
                                                     "\": " + subscribed.error().message));
      return;
    }
    state->subscription = std::move(*subscribed);
    subscribers_.push_back(state);
    SubscribeStream::send_initial_metadata(state);
  });
  return stream;
}

grpc::ServerUnaryReactor* PubSubService::ListTopics(grpc::CallbackServerContext* context,
                                                    const v1::ListTopicsRequest*,
                                                    v1::ListTopicsResponse* response) {
  if (parts_.pubsub == nullptr) return runner_.finish_now(context, pubsub_off());
  return runner_.answer_on_network_thread(context, [this, response] {
    for (const auto& topic : parts_.pubsub->topics()) {
      auto* out = response->add_topics();
      out->set_topic(topic);
      out->set_peers(static_cast<std::uint32_t>(parts_.pubsub->topic_peers(topic).size()));
      out->set_mesh_peers(static_cast<std::uint32_t>(parts_.pubsub->mesh_peers(topic).size()));
    }
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* PubSubService::ListPeers(grpc::CallbackServerContext* context,
                                                   const v1::ListTopicPeersRequest* request,
                                                   v1::ListTopicPeersResponse* response) {
  if (request->topic().size() > p2p::pubsub::kMaxTopicLength) {
    return runner_.invalid_argument(context, topic_problem(request->topic()));
  }
  if (parts_.pubsub == nullptr) return runner_.finish_now(context, pubsub_off());
  return runner_.answer_on_network_thread(context, [this, topic = request->topic(), response] {
    auto sorted_text = [](const std::vector<p2p::PeerId>& peers) {
      std::vector<std::string> texts;
      texts.reserve(peers.size());
      for (const auto& peer : peers)
        texts.push_back(peer.to_string());
      std::sort(texts.begin(), texts.end());
      return texts;
    };
    for (auto& peer : sorted_text(parts_.pubsub->topic_peers(topic)))
      response->add_peer_ids(std::move(peer));
    if (!topic.empty()) {
      for (auto& peer : sorted_text(parts_.pubsub->mesh_peers(topic)))
        response->add_mesh_peer_ids(std::move(peer));
    }
    return grpc::Status::OK;
  });
}

}  // namespace an::rpc
