#include "rpc/control_client.h"

#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <map>
#include <string_view>

#include "agentnetwork/v1/agent.grpc.pb.h"
#include "agentnetwork/v1/node.grpc.pb.h"
#include "agentnetwork/v1/pubsub.grpc.pb.h"
#include "daemon/control.h"
#include "daemon/status_file.h"
#include "rpc/endpoint.h"

namespace an::rpc {
namespace {

// Inbox messages carry payloads up to what a 16 MiB /daan frame holds (12 MiB in base64).
constexpr int kMaxClientMessageBytes = 13 * 1024 * 1024;
// What the node's Subscribe answers carry once it has joined the topic (pubsub_service.h).
constexpr std::string_view kSubscribedHeader = "agentnetwork-subscribed";

class ClientErrorCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "control client"; }
  std::string message(int value) const override {
    switch (static_cast<ClientErrc>(value)) {
      case ClientErrc::kNotRunning:
        return "node is not running";
      case ClientErrc::kNotReady:
        return "the node has not written its status yet";
      case ClientErrc::kNoEndpoint:
        return "the node does not serve the control API";
      case ClientErrc::kSystem:
        return "cannot find the node";
    }
    return "unknown control client error";
  }
};

class CallStatusCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "grpc"; }
  std::string message(int value) const override {
    return std::string(call_status_name(static_cast<CallStatus>(value)));
  }
};

std::string format_seconds(std::chrono::milliseconds timeout) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%gs", std::chrono::duration<double>(timeout).count());
  return buffer;
}

Error call_error(const grpc::Status& status, std::chrono::milliseconds timeout) {
  auto code = static_cast<CallStatus>(status.error_code());
  std::string message = status.error_message();
  // gRPC's own text for a local deadline says nothing useful.
  if (code == CallStatus::kDeadlineExceeded &&
      (message.empty() || message == "Deadline Exceeded")) {
    message = "the node did not answer within " + format_seconds(timeout);
  }
  std::string text(call_status_name(code));
  if (!message.empty()) text += ": " + message;
  return Error{std::move(text), make_error_code(code)};
}

}  // namespace

const std::error_category& client_error_category() {
  static const ClientErrorCategory category;
  return category;
}

std::error_code make_error_code(ClientErrc code) {
  return {static_cast<int>(code), client_error_category()};
}

const std::error_category& call_status_category() {
  static const CallStatusCategory category;
  return category;
}

std::error_code make_error_code(CallStatus code) {
  return {static_cast<int>(code), call_status_category()};
}

std::string_view call_status_name(CallStatus code) {
  switch (code) {
    case CallStatus::kOk:
      return "OK";
    case CallStatus::kCancelled:
      return "CANCELLED";
    case CallStatus::kUnknown:
      return "UNKNOWN";
    case CallStatus::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case CallStatus::kDeadlineExceeded:
      return "DEADLINE_EXCEEDED";
    case CallStatus::kNotFound:
      return "NOT_FOUND";
    case CallStatus::kAlreadyExists:
      return "ALREADY_EXISTS";
    case CallStatus::kPermissionDenied:
      return "PERMISSION_DENIED";
    case CallStatus::kResourceExhausted:
      return "RESOURCE_EXHAUSTED";
    case CallStatus::kFailedPrecondition:
      return "FAILED_PRECONDITION";
    case CallStatus::kAborted:
      return "ABORTED";
    case CallStatus::kOutOfRange:
      return "OUT_OF_RANGE";
    case CallStatus::kUnimplemented:
      return "UNIMPLEMENTED";
    case CallStatus::kInternal:
      return "INTERNAL";
    case CallStatus::kUnavailable:
      return "UNAVAILABLE";
    case CallStatus::kDataLoss:
      return "DATA_LOSS";
    case CallStatus::kUnauthenticated:
      return "UNAUTHENTICATED";
  }
  return "UNKNOWN_STATUS";
}

std::optional<CallStatus> call_status(const Error& error) {
  if (error.code.category() != call_status_category()) return std::nullopt;
  return static_cast<CallStatus>(error.code.value());
}

std::string_view direction_name(v1::Direction direction) {
  switch (direction) {
    case v1::DIRECTION_INBOUND:
      return "inbound";
    case v1::DIRECTION_OUTBOUND:
      return "outbound";
    default:
      return "";
  }
}

struct ControlClient::Impl {
  using Metadata = std::multimap<grpc::string_ref, grpc::string_ref>;

  std::string target;
  std::string authorization;  // "Bearer <token>", or empty
  daemon::ProcessId pid = 0;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Node::Stub> stub;
  std::unique_ptr<v1::Agent::Stub> agent;
  std::unique_ptr<v1::PubSub::Stub> pubsub;

  void prepare(grpc::ClientContext& context, std::chrono::milliseconds timeout) const {
    context.set_deadline(std::chrono::system_clock::now() + timeout);
    if (!authorization.empty()) context.AddMetadata("authorization", authorization);
  }

  // One unary call: `invoke(context, response)` runs the stub's method.
  template <class Response, class Invoke>
  Expected<Response> unary(std::chrono::milliseconds timeout, const Invoke& invoke) const {
    grpc::ClientContext context;
    prepare(context, timeout);
    Response response;
    grpc::Status status = invoke(&context, &response);
    if (!status.ok()) return tl::unexpected(call_error(status, timeout));
    return response;
  }

  // One server-streaming call: `open(context)` starts it; each message goes to `on_message`
  // until it returns false (the call is then cancelled, which counts as success).
  template <class Message, class Open>
  Expected<void> read_stream(std::chrono::milliseconds timeout, const Open& open,
                             const std::function<bool(const Message&)>& on_message,
                             const std::function<void(const Metadata&)>& on_headers = {}) const {
    grpc::ClientContext context;
    prepare(context, timeout);
    auto reader = open(&context);
    if (on_headers) {
      reader->WaitForInitialMetadata();
      on_headers(context.GetServerInitialMetadata());
    }
    Message message;
    bool cancelled = false;
    while (reader->Read(&message)) {
      if (!on_message(message)) {
        cancelled = true;
        context.TryCancel();
        break;
      }
    }
    grpc::Status status = reader->Finish();
    if (cancelled || status.ok()) return {};
    return tl::unexpected(call_error(status, timeout));
  }
};

ControlClient::ControlClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ControlClient::ControlClient(ControlClient&& other) noexcept = default;
ControlClient& ControlClient::operator=(ControlClient&& other) noexcept = default;
ControlClient::~ControlClient() = default;

ControlClient ControlClient::for_target(const std::string& target, const std::string& token) {
  auto impl = std::make_unique<Impl>();
  impl->target = target;
  if (!token.empty()) impl->authorization = "Bearer " + token;
  grpc::ChannelArguments arguments;
  // The endpoint is local (or named explicitly): an http_proxy in the environment must not
  // reroute it.
  arguments.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  arguments.SetMaxReceiveMessageSize(kMaxClientMessageBytes);
  impl->channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), arguments);
  impl->stub = v1::Node::NewStub(impl->channel);
  impl->agent = v1::Agent::NewStub(impl->channel);
  impl->pubsub = v1::PubSub::NewStub(impl->channel);
  return ControlClient(std::move(impl));
}

Expected<ControlClient> ControlClient::open(const daemon::DataPaths& paths) {
  auto running = daemon::running_node_pid(paths);
  if (!running) return fail(running.error().message, ClientErrc::kSystem);
  if (!running->has_value()) {
    return fail("node is not running (data directory " + paths.data_dir.string() + ")",
                ClientErrc::kNotRunning);
  }
  const daemon::ProcessId pid = **running;
  auto status = daemon::read_status_file(paths.status_file);
  if (!status || (pid > 0 && status->pid != pid)) {
    return fail("the node (PID " + std::to_string(pid) + ") is starting: no " +
                    paths.status_file.string() + " yet",
                ClientErrc::kNotReady);
  }
  if (status->grpc.empty()) {
    return fail("the node does not serve the control API (node.status has no endpoint)",
                ClientErrc::kNoEndpoint);
  }
  // Sent whenever the token can be read; an unreadable token file is the node's business
  // only when the endpoint requires it, and then the node's UNAUTHENTICATED says so.
  std::string token;
  if (auto read = read_token(paths.api_token); read && read->has_value()) token = **read;
  auto client = for_target(status->grpc, token);
  client.impl_->pid = pid;
  return client;
}

const std::string& ControlClient::target() const {
  return impl_->target;
}

daemon::ProcessId ControlClient::node_pid() const {
  return impl_->pid;
}

Expected<v1::GetStatusResponse> ControlClient::get_status(std::chrono::milliseconds timeout) {
  v1::GetStatusRequest request;
  return impl_->unary<v1::GetStatusResponse>(timeout, [&](auto* context, auto* response) {
    return impl_->stub->GetStatus(context, request, response);
  });
}

Expected<v1::ListPeersResponse> ControlClient::list_peers(std::chrono::milliseconds timeout) {
  v1::ListPeersRequest request;
  return impl_->unary<v1::ListPeersResponse>(timeout, [&](auto* context, auto* response) {
    return impl_->stub->ListPeers(context, request, response);
  });
}

Expected<v1::GetResourcesResponse> ControlClient::get_resources(std::uint32_t peers,
                                                                std::chrono::milliseconds timeout) {
  v1::GetResourcesRequest request;
  request.set_peers(peers);
  return impl_->unary<v1::GetResourcesResponse>(timeout, [&](auto* context, auto* response) {
    return impl_->stub->GetResources(context, request, response);
  });
}

Expected<v1::ConnectResponse> ControlClient::connect(const std::string& multiaddr,
                                                     std::chrono::milliseconds timeout) {
  v1::ConnectRequest request;
  request.set_address(multiaddr);
  return impl_->unary<v1::ConnectResponse>(timeout, [&](auto* context, auto* response) {
    return impl_->stub->Connect(context, request, response);
  });
}

Expected<v1::DisconnectResponse> ControlClient::disconnect(const std::string& peer_id,
                                                           std::chrono::milliseconds timeout) {
  v1::DisconnectRequest request;
  request.set_peer_id(peer_id);
  return impl_->unary<v1::DisconnectResponse>(timeout, [&](auto* context, auto* response) {
    return impl_->stub->Disconnect(context, request, response);
  });
}

Expected<v1::PingResponse> ControlClient::ping(const std::string& peer_id, std::uint32_t count,
                                               std::chrono::milliseconds timeout) {
  v1::PingRequest request;
  request.set_peer_id(peer_id);
  request.set_count(count);
  return impl_->unary<v1::PingResponse>(timeout, [&](auto* context, auto* response) {
    return impl_->stub->Ping(context, request, response);
  });
}

Expected<v1::FindPeerResponse> ControlClient::find_peer(const std::string& peer_id,
                                                        std::chrono::milliseconds timeout) {
  v1::FindPeerRequest request;
  request.set_peer_id(peer_id);
  return impl_->unary<v1::FindPeerResponse>(timeout, [&](auto* context, auto* response) {
    return impl_->stub->FindPeer(context, request, response);
  });
}

Expected<v1::GetClosestPeersResponse> ControlClient::get_closest_peers(
    const std::string& key, std::chrono::milliseconds timeout) {
  v1::GetClosestPeersRequest request;
  request.set_key(key);
  return impl_->unary<v1::GetClosestPeersResponse>(timeout, [&](auto* context, auto* response) {
    return impl_->stub->GetClosestPeers(context, request, response);
  });
}

Expected<v1::PutValueResponse> ControlClient::put_value(const std::string& key,
                                                        const std::string& value,
                                                        std::chrono::milliseconds timeout) {
  v1::PutValueRequest request;
  request.set_key(key);
  request.set_value(value);
  return impl_->unary<v1::PutValueResponse>(timeout, [&](auto* context, auto* response) {
    return impl_->stub->PutValue(context, request, response);
  });
}

Expected<v1::GetValueResponse> ControlClient::get_value(const std::string& key,
                                                        std::chrono::milliseconds timeout) {
  v1::GetValueRequest request;
  request.set_key(key);
  return impl_->unary<v1::GetValueResponse>(timeout, [&](auto* context, auto* response) {
    return impl_->stub->GetValue(context, request, response);
  });
}

Expected<v1::ShutdownResponse> ControlClient::shutdown(std::chrono::milliseconds timeout) {
  v1::ShutdownRequest request;
  return impl_->unary<v1::ShutdownResponse>(timeout, [&](auto* context, auto* response) {
    return impl_->stub->Shutdown(context, request, response);
  });
}

Expected<v1::SendMessageResponse> ControlClient::send_message(const std::string& peer,
                                                              std::string payload,
                                                              std::chrono::milliseconds timeout) {
  v1::SendMessageRequest request;
  request.set_peer(peer);
  request.set_payload(std::move(payload));
  return impl_->unary<v1::SendMessageResponse>(timeout, [&](auto* context, auto* response) {
    return impl_->agent->SendMessage(context, request, response);
  });
}

Expected<v1::SendRequestResponse> ControlClient::send_request(
    const std::string& peer, std::string payload, std::chrono::milliseconds request_timeout,
    std::chrono::milliseconds timeout) {
  v1::SendRequestRequest request;
  request.set_peer(peer);
  request.set_payload(std::move(payload));
  request.set_timeout_ms(static_cast<std::uint32_t>(request_timeout.count()));
  return impl_->unary<v1::SendRequestResponse>(timeout, [&](auto* context, auto* response) {
    return impl_->agent->SendRequest(context, request, response);
  });
}

Expected<v1::ListInboxResponse> ControlClient::list_inbox(std::int64_t after_id,
                                                          std::uint32_t limit,
                                                          std::chrono::milliseconds timeout) {
  v1::ListInboxRequest request;
  request.set_after_id(after_id);
  request.set_limit(limit);
  return impl_->unary<v1::ListInboxResponse>(timeout, [&](auto* context, auto* response) {
    return impl_->agent->ListInbox(context, request, response);
  });
}

Expected<v1::AckMessagesResponse> ControlClient::ack_messages(const std::vector<std::int64_t>& ids,
                                                              std::chrono::milliseconds timeout) {
  v1::AckMessagesRequest request;
  for (auto id : ids)
    request.add_ids(id);
  return impl_->unary<v1::AckMessagesResponse>(timeout, [&](auto* context, auto* response) {
    return impl_->agent->AckMessages(context, request, response);
  });
}

Expected<void> ControlClient::receive_messages(
    std::int64_t after_id, const std::function<bool(const v1::InboxMessage&)>& on_message,
    std::chrono::milliseconds timeout) {
  v1::ReceiveMessagesRequest request;
  request.set_after_id(after_id);
  return impl_->read_stream<v1::InboxMessage>(
      timeout,
      [&](grpc::ClientContext* context) { return impl_->agent->ReceiveMessages(context, request); },
      on_message);
}

Expected<v1::AdvertiseResponse> ControlClient::advertise(const std::string& name,
                                                         std::chrono::milliseconds timeout) {
  v1::AdvertiseRequest request;
  request.set_namespace_(name);
  return impl_->unary<v1::AdvertiseResponse>(timeout, [&](auto* context, auto* response) {
    return impl_->agent->Advertise(context, request, response);
  });
}

Expected<v1::DiscoverResponse> ControlClient::discover(const std::string& name, std::uint32_t limit,
                                                       std::chrono::milliseconds timeout) {
  v1::DiscoverRequest request;
  request.set_namespace_(name);
  request.set_limit(limit);
  return impl_->unary<v1::DiscoverResponse>(timeout, [&](auto* context, auto* response) {
    return impl_->agent->Discover(context, request, response);
  });
}

Expected<v1::PublishResponse> ControlClient::publish(const std::string& topic, std::string data,
                                                     bool raw, std::chrono::milliseconds timeout) {
  v1::PublishRequest request;
  request.set_topic(topic);
  request.set_data(std::move(data));
  request.set_raw(raw);
  return impl_->unary<v1::PublishResponse>(timeout, [&](auto* context, auto* response) {
    return impl_->pubsub->Publish(context, request, response);
  });
}

Expected<void> ControlClient::subscribe(
    const std::string& topic, bool raw, const std::function<void()>& on_subscribed,
    const std::function<bool(const v1::PubSubMessage&)>& on_message,
    std::chrono::milliseconds timeout) {
  v1::SubscribeRequest request;
  request.set_topic(topic);
  request.set_raw(raw);
  return impl_->read_stream<v1::PubSubMessage>(
      timeout,
      [&](grpc::ClientContext* context) { return impl_->pubsub->Subscribe(context, request); },
      on_message,
      [&](const Impl::Metadata& headers) {
        // A refused call answers with its status alone: no header, and the read that follows
        // reports the error.
        if (on_subscribed &&
            headers.find(grpc::string_ref(kSubscribedHeader.data(), kSubscribedHeader.size())) !=
                headers.end())
          on_subscribed();
      });
}

Expected<v1::ListTopicsResponse> ControlClient::list_topics(std::chrono::milliseconds timeout) {
  v1::ListTopicsRequest request;
  return impl_->unary<v1::ListTopicsResponse>(timeout, [&](auto* context, auto* response) {
    return impl_->pubsub->ListTopics(context, request, response);
  });
}

Expected<v1::ListTopicPeersResponse> ControlClient::list_topic_peers(
    const std::string& topic, std::chrono::milliseconds timeout) {
  v1::ListTopicPeersRequest request;
  request.set_topic(topic);
  return impl_->unary<v1::ListTopicPeersResponse>(timeout, [&](auto* context, auto* response) {
    return impl_->pubsub->ListPeers(context, request, response);
  });
}

Expected<void> ControlClient::watch_peers(bool include_current,
                                          const std::function<bool(const v1::PeerEvent&)>& on_event,
                                          std::chrono::milliseconds timeout) {
  v1::WatchPeersRequest request;
  request.set_include_current(include_current);
  return impl_->read_stream<v1::PeerEvent>(
      timeout,
      [&](grpc::ClientContext* context) { return impl_->stub->WatchPeers(context, request); },
      on_event);
}

}  // namespace an::rpc
