// Client of a running node's control API (SPEC §5, proto/agentnetwork/v1/node.proto), as the
// CLI uses it: the endpoint and the bearer token are found from the data directory alone.
//
// Threads: one ControlClient is used by one thread at a time (the CLI's main thread). Each
// client owns a gRPC channel, created when the client is made (never at static-init time) and
// closed when it is destroyed; gRPC starts its own threads meanwhile, so destroy every client
// before the process forks (`start`, `restart`). Every call blocks until the node answers or
// the call's deadline passes.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "agentnetwork/v1/agent.pb.h"
#include "agentnetwork/v1/node.pb.h"
#include "agentnetwork/v1/pubsub.pb.h"
#include "daemon/paths.h"
#include "daemon/platform.h"
#include "util/expected.h"

namespace an::rpc {

namespace v1 = ::agentnetwork::v1;

// Why no client could be made, before any call (Error::code, in client_error_category()).
enum class ClientErrc {
  kNotRunning = 1,  // no node holds the data directory
  kNotReady,        // a node holds it but has not written (its own) node.status yet
  kNoEndpoint,      // node.status names no control API endpoint
  kSystem,          // the lock or the status could not be read
};
const std::error_category& client_error_category();
std::error_code make_error_code(ClientErrc code);

// The gRPC status of a failed call (Error::code, in call_status_category()); the values are
// those of grpc::StatusCode.
enum class CallStatus {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};
const std::error_category& call_status_category();
std::error_code make_error_code(CallStatus code);

// "INVALID_ARGUMENT", "NOT_FOUND", ...
std::string_view call_status_name(CallStatus code);

// The status of a failed call; nullopt when the error did not come from a call.
std::optional<CallStatus> call_status(const Error& error);

// "inbound", "outbound", or "" when unspecified: a peer's direction as node.status writes it.
std::string_view direction_name(v1::Direction direction);

class ControlClient {
 public:
  // Deadlines of the calls that do not name one. The node caps Connect at 30 s and each ping
  // at 10 s; the client waits a little longer so that the node's own answer arrives.
  static constexpr std::chrono::milliseconds kDefaultTimeout{10'000};
  static constexpr std::chrono::milliseconds kConnectTimeout{35'000};
  static constexpr std::chrono::milliseconds kPingTimeoutPerPing{12'000};

  // The client of the node running in this data directory: the endpoint is the "grpc" key of
  // DIR/node.status, the token the content of DIR/api.token when that file exists and is
  // readable (local endpoints ignore it). Errors carry a ClientErrc.
  static Expected<ControlClient> open(const daemon::DataPaths& paths);

  // A client of an explicit gRPC target ("unix:/path", "HOST:PORT"); an empty token sends no
  // authorization header.
  static ControlClient for_target(const std::string& target, const std::string& token = {});

  ControlClient(ControlClient&& other) noexcept;
  ControlClient& operator=(ControlClient&& other) noexcept;
  ControlClient(const ControlClient&) = delete;
  ControlClient& operator=(const ControlClient&) = delete;
  ~ControlClient();

  const std::string& target() const;
  // The PID of the node found by open(); 0 for for_target().
  daemon::ProcessId node_pid() const;

  // One method per RPC. Errors: the message is "<STATUS_NAME>: <the node's message>", the
  // code a CallStatus.
  Expected<v1::GetStatusResponse> get_status(std::chrono::milliseconds timeout = kDefaultTimeout);
  Expected<v1::ListPeersResponse> list_peers(std::chrono::milliseconds timeout = kDefaultTimeout);
  Expected<v1::ConnectResponse> connect(const std::string& multiaddr,
                                        std::chrono::milliseconds timeout = kConnectTimeout);
  Expected<v1::DisconnectResponse> disconnect(const std::string& peer_id,
                                              std::chrono::milliseconds timeout = kDefaultTimeout);
  Expected<v1::PingResponse> ping(const std::string& peer_id, std::uint32_t count,
                                  std::chrono::milliseconds timeout = kPingTimeoutPerPing);
  Expected<v1::FindPeerResponse> find_peer(const std::string& peer_id,
                                           std::chrono::milliseconds timeout = kDefaultTimeout);
  Expected<v1::GetClosestPeersResponse> get_closest_peers(
      const std::string& key, std::chrono::milliseconds timeout = kDefaultTimeout);
  Expected<v1::PutValueResponse> put_value(const std::string& key, const std::string& value,
                                           std::chrono::milliseconds timeout = kDefaultTimeout);
  Expected<v1::GetValueResponse> get_value(const std::string& key,
                                           std::chrono::milliseconds timeout = kDefaultTimeout);
  Expected<v1::ShutdownResponse> shutdown(std::chrono::milliseconds timeout = kDefaultTimeout);
  Expected<v1::GetResourcesResponse> get_resources(
      std::uint32_t peers, std::chrono::milliseconds timeout = kDefaultTimeout);

  // The Agent service (agent.proto).
  Expected<v1::SendMessageResponse> send_message(const std::string& peer, std::string payload,
                                                 std::chrono::milliseconds timeout);
  Expected<v1::SendRequestResponse> send_request(const std::string& peer, std::string payload,
                                                 std::chrono::milliseconds request_timeout,
                                                 std::chrono::milliseconds timeout);
  Expected<v1::ListInboxResponse> list_inbox(std::int64_t after_id, std::uint32_t limit,
                                             std::chrono::milliseconds timeout = kDefaultTimeout);
  Expected<v1::AckMessagesResponse> ack_messages(
      const std::vector<std::int64_t>& ids, std::chrono::milliseconds timeout = kDefaultTimeout);
  // Reads ReceiveMessages into `on_message` until it returns false (the call is then cancelled,
  // which counts as success), the node ends the stream, or the deadline passes.
  Expected<void> receive_messages(std::int64_t after_id,
                                  const std::function<bool(const v1::InboxMessage&)>& on_message,
                                  std::chrono::milliseconds timeout);
  Expected<v1::AdvertiseResponse> advertise(const std::string& name,
                                            std::chrono::milliseconds timeout);
  Expected<v1::DiscoverResponse> discover(const std::string& name, std::uint32_t limit,
                                          std::chrono::milliseconds timeout);

  // The PubSub service (pubsub.proto).
  Expected<v1::PublishResponse> publish(const std::string& topic, std::string data, bool raw,
                                        std::chrono::milliseconds timeout = kDefaultTimeout);
  // Reads Subscribe into `on_message` until it returns false (the call is then cancelled, which
  // counts as success), the node ends the stream, or the deadline passes. `on_subscribed` runs
  // once the node's response headers came: it has joined the topic (or is about to refuse).
  Expected<void> subscribe(const std::string& topic, bool raw,
                           const std::function<void()>& on_subscribed,
                           const std::function<bool(const v1::PubSubMessage&)>& on_message,
                           std::chrono::milliseconds timeout);
  Expected<v1::ListTopicsResponse> list_topics(std::chrono::milliseconds timeout = kDefaultTimeout);
  Expected<v1::ListTopicPeersResponse> list_topic_peers(
      const std::string& topic, std::chrono::milliseconds timeout = kDefaultTimeout);

  // Reads WatchPeers events into `on_event` until it returns false (the call is then cancelled,
  // which counts as success), the node ends the stream, or the deadline passes.
  Expected<void> watch_peers(bool include_current,
                             const std::function<bool(const v1::PeerEvent&)>& on_event,
                             std::chrono::milliseconds timeout);

 private:
  struct Impl;
  explicit ControlClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace an::rpc

template <>
struct std::is_error_code_enum<an::rpc::ClientErrc> : std::true_type {};
template <>
struct std::is_error_code_enum<an::rpc::CallStatus> : std::true_type {};
