#include "rpc/control_server.h"

#include <grpcpp/grpcpp.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <asio.hpp>
#include <atomic>
#include <deque>
#include <mutex>
#include <thread>

#include "agentnetwork/v1/node.grpc.pb.h"
#include "daemon/platform.h"
#include "p2p/net/async.h"
#include "rpc/agent_hub.h"
#include "rpc/agent_service.h"
#include "rpc/call_runner.h"
#include "rpc/pubsub_service.h"

namespace an::rpc {
namespace v1 = agentnetwork::v1;
namespace {

std::int64_t unix_ms(std::chrono::system_clock::time_point time) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

Expected<p2p::PeerId> parse_peer_argument(const std::string& text) {
  if (text.empty()) return fail("peer_id is empty");
  auto peer = p2p::PeerId::parse(text);
  if (!peer) return tl::unexpected(peer.error());
  return peer;
}

void describe_peer(const p2p::net::Host& host, const p2p::PeerId& peer, v1::Peer& out) {
  out.set_peer_id(peer.to_string());
  if (auto connection = host.connection_to(peer)) {
    out.set_address(connection->remote_address().to_string());
    out.set_direction(connection->direction() == p2p::net::Direction::kInbound
                          ? v1::DIRECTION_INBOUND
                          : v1::DIRECTION_OUTBOUND);
    out.set_connected_at_unix_ms(unix_ms(connection->opened_at()));
    out.set_stream_count(static_cast<std::uint32_t>(connection->stream_count()));
  }
  if (const auto* info = host.peer_info(peer); info != nullptr && info->identified) {
    out.set_agent_version(info->agent_version);
    out.set_protocol_version(info->protocol_version);
    for (const auto& protocol : info->protocols)
      out.add_protocols(protocol);
    for (const auto& address : info->addresses)
      out.add_listen_addrs(address.to_string());
  }
}

void describe_scope(const p2p::rcmgr::ScopeSnapshot& scope, v1::ResourceScope& out) {
  using p2p::rcmgr::Resource;
  auto fill = [](auto&& value_of, v1::ResourceAmounts& amounts) {
    amounts.set_memory(value_of(Resource::kMemory));
    amounts.set_streams_inbound(value_of(Resource::kStreamsInbound));
    amounts.set_streams_outbound(value_of(Resource::kStreamsOutbound));
    amounts.set_streams(value_of(Resource::kStreams));
    amounts.set_conns_inbound(value_of(Resource::kConnsInbound));
    amounts.set_conns_outbound(value_of(Resource::kConnsOutbound));
    amounts.set_conns(value_of(Resource::kConns));
    amounts.set_fds(value_of(Resource::kFds));
  };
  out.set_name(scope.name);
  fill(
      [&](Resource resource) {
        const auto limit = scope.limit[resource];
        return limit == p2p::rcmgr::kUnlimited ? std::int64_t{-1} : limit;
      },
      *out.mutable_limit());
  fill([&](Resource resource) { return scope.usage[resource]; }, *out.mutable_used());
}

// The dialable form of a TCP endpoint: an unspecified host becomes loopback.
std::string dialable_tcp_endpoint(const std::string& bind_address, int port) {
  std::string host = bind_address.substr(0, bind_address.rfind(':'));
  if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
  if (host == "[::]") host = "[::1]";
  return host + ":" + std::to_string(port);
}

// gRPC reports a failed bind only in its own log; a probe bind on an explicit numeric TCP
// address gives the reason ("Address already in use") for the start error.
Expected<void> check_tcp_port_free(const std::string& bind_address) {
  if (bind_address.rfind("unix:", 0) == 0) return {};
  auto colon = bind_address.rfind(':');
  std::string host = bind_address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  std::error_code ec;
  auto ip = asio::ip::make_address(host, ec);
  const int port = std::atoi(bind_address.c_str() + colon + 1);
  if (ec || port == 0) return {};
  asio::io_context probe_context;
  asio::ip::tcp::acceptor probe(probe_context);
  asio::ip::tcp::endpoint where(ip, static_cast<unsigned short>(port));
  probe.open(where.protocol(), ec);
  if (!ec) probe.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) probe.bind(where, ec);
  if (ec) return fail("cannot serve the control API on " + bind_address + ": " + ec.message());
  return {};
}

}  // namespace

// One WatchPeers stream. Events are queued by the network thread; gRPC reports each write's
// completion on its own threads. The reactor deletes itself in OnDone, which gRPC calls only
// after Finish; the network thread therefore holds the shared state, never the reactor, and
// whoever sets `writing` or `finished` under the mutex is the only one to call StartWrite or
// Finish on the reactor, which is alive at that moment.
class PeerWatch;
struct PeerWatchState {
  std::mutex mutex;
  PeerWatch* reactor = nullptr;
  std::deque<v1::PeerEvent> queue;
  v1::PeerEvent current;  // the event being written
  bool writing = false;
  bool closing = false;
  bool finished = false;
  grpc::Status close_status;
};
using PeerWatchHandle = std::shared_ptr<PeerWatchState>;

class PeerWatch final : public grpc::ServerWriteReactor<v1::PeerEvent> {
 public:
  PeerWatch() : state_(std::make_shared<PeerWatchState>()) { state_->reactor = this; }
  const PeerWatchHandle& handle() const { return state_; }

  void OnSendInitialMetadataDone(bool ok) override { OnWriteDone(ok); }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard lock(state_->mutex);
      state_->writing = false;
      if (!ok && !state_->closing) {
        // The client went away (or the server is stopping): nothing more can be delivered.
        state_->queue.clear();
        state_->closing = true;
        state_->close_status = grpc::Status(grpc::StatusCode::CANCELLED, "stream broken");
      }
    }
    pump(state_);
  }

  void OnCancel() override {
    {
      std::lock_guard lock(state_->mutex);
      state_->queue.clear();
      if (!state_->closing) {
        state_->closing = true;
        state_->close_status = grpc::Status::CANCELLED;
      }
    }
    pump(state_);
  }

  void OnDone() override { delete this; }

  // Starts the next write or the finish; the gRPC calls are made outside the lock.
  static void pump(const PeerWatchHandle& state) {
    PeerWatch* write_on = nullptr;
    PeerWatch* finish_on = nullptr;
    grpc::Status status;
    {
      std::lock_guard lock(state->mutex);
      if (state->writing || state->finished) return;
      if (!state->queue.empty()) {
        state->current = std::move(state->queue.front());
        state->queue.pop_front();
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

  // Tells the client that the watch is registered: every event after the initial metadata
  // reaches it. Counts as a write, so that the stream cannot finish under it.
  static void send_initial_metadata(const PeerWatchHandle& state) {
    PeerWatch* send_on = nullptr;
    {
      std::lock_guard lock(state->mutex);
      if (state->finished || state->closing || state->writing) return;
      state->writing = true;
      send_on = state->reactor;
    }
    send_on->StartSendInitialMetadata();
  }

  // Returns false once the stream has ended (the caller drops it).
  static bool push(const PeerWatchHandle& state, v1::PeerEvent event) {
    {
      std::lock_guard lock(state->mutex);
      if (state->finished) return false;
      if (state->closing) return true;
      if (state->queue.size() >= kMaxQueuedPeerEvents) {
        state->queue.clear();
        state->closing = true;
        state->close_status = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                           "the client fell behind by more than " +
                                               std::to_string(kMaxQueuedPeerEvents) + " events");
      } else {
        state->queue.push_back(std::move(event));
      }
    }
    pump(state);
    return true;
  }

  // Ends the stream once the queued events are written.
  static void close(const PeerWatchHandle& state, grpc::Status status) {
    {
      std::lock_guard lock(state->mutex);
      if (state->finished || state->closing) return;
      state->closing = true;
      state->close_status = std::move(status);
    }
    pump(state);
  }

 private:
  PeerWatchHandle state_;
};

// GetClosestPeers keys: as long as a record key may be.
constexpr std::size_t kMaxDhtKeyBytes = p2p::kad::kMaxRecordKeySize;

struct ControlServer::Impl final : public v1::Node::CallbackService, public CallRunner {
  Impl(asio::io_context& io_context, p2p::net::Host& p2p_host, ControlServerConfig server_config)
      : CallRunner(io_context, server_config.token),
        host(p2p_host),
        config(std::move(server_config)),
        peers_changed(std::make_unique<p2p::net::Signal>(io_context.get_executor())) {}

  p2p::net::Host& host;
  ControlServerConfig config;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<AgentService> agent_service;
  std::unique_ptr<PubSubService> pubsub_service;
  std::string endpoint;
  std::thread shutdown_thread;
  std::unique_ptr<p2p::net::Signal> peers_changed;
  // Written once before serving; read by gRPC's threads.
  std::string peer_id_text;
  std::vector<std::string> protocols;
  // Published by the network thread for GetStatus.
  std::atomic<std::uint32_t> live_peer_count{0};
  std::mutex listen_addrs_mutex;
  std::vector<std::string> listen_addrs;
  // Network-thread state.
  std::vector<PeerWatchHandle> watches;
  // The listeners that start() gives the Host outlive the server.
  p2p::net::Lifetime lifetime;
  // Stateless after construction: used on gRPC's threads to refuse bad records early.
  const p2p::kad::NamespacedValidator validator = p2p::kad::NamespacedValidator::with_defaults();

  // ---- the methods -------------------------------------------------------------------------

  grpc::ServerUnaryReactor* GetStatus(grpc::CallbackServerContext* context,
                                      const v1::GetStatusRequest*,
                                      v1::GetStatusResponse* response) override {
    // Answered here, on gRPC's thread, from what the network thread publishes: the most
    // frequent call (every `status`, every monitoring loop) costs the network thread nothing.
    auto* reactor = context->DefaultReactor();
    if (auto denied = authorize(*context); !denied.ok()) {
      reactor->Finish(denied);
      return reactor;
    }
    if (stopping.load()) {
      reactor->Finish(shutting_down());
      return reactor;
    }
    const auto& facts = config.facts;
    response->set_peer_id(peer_id_text);
    response->set_version(facts.version);
    response->set_agent_version(facts.agent_version);
    response->set_role(facts.role);
    response->set_pid(facts.pid);
    response->set_start_time_unix_ms(unix_ms(facts.start_time));
    response->set_uptime_ms(std::max<std::int64_t>(
        0, unix_ms(std::chrono::system_clock::now()) - unix_ms(facts.start_time)));
    {
      std::lock_guard lock(listen_addrs_mutex);
      for (const auto& address : listen_addrs)
        response->add_listen_addrs(address);
    }
    response->set_peer_count(live_peer_count.load());
    response->set_data_dir(facts.data_dir);
    response->set_log_file(facts.log_file);
    response->set_api_endpoint(endpoint);
    for (const auto& protocol : protocols)
      response->add_protocols(protocol);
    if (config.agent.hub != nullptr) {
      // The inbox is thread-safe.
      const auto counts = config.agent.hub->inbox().counts();
      response->set_inbox_messages(counts.messages);
      response->set_inbox_bytes(counts.bytes);
      response->set_inbox_refused(counts.refused);
    }
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* GetResources(grpc::CallbackServerContext* context,
                                         const v1::GetResourcesRequest* request,
                                         v1::GetResourcesResponse* response) override {
    const std::size_t peers =
        request->peers() == 0 ? 10 : std::min<std::size_t>(request->peers(), 100);
    return answer_on_network_thread(context, [this, response, peers] {
      const auto snapshot = host.resources().snapshot(peers);
      for (const auto& scope : snapshot.scopes)
        describe_scope(scope, *response->add_scopes());
      for (const auto& scope : snapshot.peers)
        describe_scope(scope, *response->add_peers());
      response->set_peer_count(snapshot.peer_count);
      for (const auto& [key, count] : snapshot.refusals)
        (*response->mutable_refusals())[key] = count;
      response->set_handshakes_in_flight(snapshot.handshakes_in_flight);
      return grpc::Status::OK;
    });
  }

  grpc::ServerUnaryReactor* ListPeers(grpc::CallbackServerContext* context,
                                      const v1::ListPeersRequest*,
                                      v1::ListPeersResponse* response) override {
    return answer_on_network_thread(context, [this, response] {
      auto peers = host.connected_peers();
      std::sort(peers.begin(), peers.end(), [](const p2p::PeerId& a, const p2p::PeerId& b) {
        return a.to_string() < b.to_string();
      });
      for (const auto& peer : peers)
        describe_peer(host, peer, *response->add_peers());
      return grpc::Status::OK;
    });
  }

  grpc::ServerUnaryReactor* Connect(grpc::CallbackServerContext* context,
                                    const v1::ConnectRequest* request,
                                    v1::ConnectResponse* response) override {
    auto address = p2p::Multiaddr::parse(request->address());
    grpc::Status invalid;
    if (!address) {
      invalid = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, address.error().message);
    } else if (auto peer_text = address->peer_id_component(); !peer_text) {
      invalid = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                             "\"" + request->address() + "\" has no /p2p/<peer id> part");
    } else if (auto peer = p2p::PeerId::parse(*peer_text); !peer) {
      invalid = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                             "invalid peer ID in \"" + request->address() + "\"");
    } else if (*peer == host.peer_id()) {
      invalid = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "cannot connect to ourselves");
    }
    if (!invalid.ok()) return finish_now(context, invalid);
    auto target = std::move(*address);
    return run_on_network_thread(
        context, kConnectCap,
        [this, target = std::move(target), response]() -> asio::awaitable<grpc::Status> {
          auto connected = co_await host.connect(target);
          if (!connected) {
            co_return grpc::Status(grpc::StatusCode::UNAVAILABLE, connected.error().message);
          }
          describe_peer(host, (*connected)->remote_peer(), *response->mutable_peer());
          co_return grpc::Status::OK;
        });
  }

  grpc::ServerUnaryReactor* Disconnect(grpc::CallbackServerContext* context,
                                       const v1::DisconnectRequest* request,
                                       v1::DisconnectResponse*) override {
    auto peer = parse_peer_argument(request->peer_id());
    if (!peer) return invalid_argument(context, peer.error().message);
    return run_on_network_thread(context, kDisconnectCap,
                                 [this, peer = *peer]() -> asio::awaitable<grpc::Status> {
                                   if (!host.connection_to(peer)) {
                                     co_return grpc::Status(grpc::StatusCode::NOT_FOUND,
                                                            "not connected to " + peer.to_string());
                                   }
                                   // Answered once the connections are gone, so that ListPeers no
                                   // longer shows them.
                                   host.disconnect(peer);
                                   while (host.connection_to(peer))
                                     co_await peers_changed->wait();
                                   co_return grpc::Status::OK;
                                 });
  }

  grpc::ServerUnaryReactor* Ping(grpc::CallbackServerContext* context,
                                 const v1::PingRequest* request,
                                 v1::PingResponse* response) override {
    auto peer = parse_peer_argument(request->peer_id());
    if (!peer) return invalid_argument(context, peer.error().message);
    if (request->count() > kMaxPingCount) {
      return invalid_argument(context, "count " + std::to_string(request->count()) +
                                           " is over the limit of " +
                                           std::to_string(kMaxPingCount));
    }
    const std::uint32_t count = std::max<std::uint32_t>(1, request->count());
    return run_on_network_thread(
        context, std::chrono::milliseconds(kPingCap) * count,
        [this, peer = *peer, count, response]() -> asio::awaitable<grpc::Status> {
          if (!host.connection_to(peer)) {
            co_return grpc::Status(grpc::StatusCode::NOT_FOUND,
                                   "not connected to " + peer.to_string() + " (connect first)");
          }
          for (std::uint32_t i = 0; i < count; ++i) {
            auto rtt = co_await host.ping(peer);
            if (!rtt) {
              co_return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                     "ping " + std::to_string(i + 1) + " of " +
                                         std::to_string(count) + ": " + rtt.error().message);
            }
            response->add_rtt_ns(rtt->count());
          }
          co_return grpc::Status::OK;
        });
  }

  grpc::ServerUnaryReactor* FindPeer(grpc::CallbackServerContext* context,
                                     const v1::FindPeerRequest* request,
                                     v1::FindPeerResponse* response) override {
    auto peer = parse_peer_argument(request->peer_id());
    if (!peer) return invalid_argument(context, peer.error().message);
    if (*peer == host.peer_id()) return invalid_argument(context, "that is this node's own ID");
    return run_on_network_thread(
        context, kDhtCallCap,
        [this, peer = *peer, response](
            std::chrono::steady_clock::time_point deadline) -> asio::awaitable<grpc::Status> {
          response->set_peer_id(peer.to_string());
          if (config.dht == nullptr) {
            // Without a DHT, what the node knows is all there is.
            const bool connected = host.connection_to(peer) != nullptr;
            const auto* info = host.peer_info(peer);
            if (!connected && (info == nullptr || info->addresses.empty())) co_return no_dht();
            response->set_connected(connected);
            if (info != nullptr) {
              for (const auto& address : info->addresses)
                response->add_addresses(address.to_string());
            }
            co_return grpc::Status::OK;
          }
          auto found = co_await config.dht->find_peer(peer, deadline);
          if (!found) {
            auto code = config.dht->routing_table_size() == 0 ? grpc::StatusCode::UNAVAILABLE
                                                              : grpc::StatusCode::NOT_FOUND;
            co_return grpc::Status(code, found.error().message);
          }
          for (const auto& address : found->addresses)
            response->add_addresses(address.to_string());
          response->set_connected(found->connected);
          response->set_found_through_dht(found->through_dht);
          response->set_lookup_hops(static_cast<std::uint32_t>(found->hops));
          co_return grpc::Status::OK;
        });
  }

  grpc::ServerUnaryReactor* GetClosestPeers(grpc::CallbackServerContext* context,
                                            const v1::GetClosestPeersRequest* request,
                                            v1::GetClosestPeersResponse* response) override {
    if (request->key().empty()) return invalid_argument(context, "key is empty");
    if (request->key().size() > kMaxDhtKeyBytes) {
      return invalid_argument(context,
                              "key is longer than " + std::to_string(kMaxDhtKeyBytes) + " bytes");
    }
    p2p::Bytes key(request->key().begin(), request->key().end());
    return run_on_network_thread(
        context, kDhtCallCap,
        [this, key = std::move(key), response](
            std::chrono::steady_clock::time_point deadline) -> asio::awaitable<grpc::Status> {
          if (config.dht == nullptr) co_return no_dht();
          if (config.dht->routing_table_size() == 0) co_return no_dht_peers();
          auto outcome = co_await config.dht->closest_peers(key, deadline);
          if (!outcome) {
            co_return grpc::Status(grpc::StatusCode::UNAVAILABLE, outcome.error().message);
          }
          for (const auto& peer : outcome->closest)
            response->add_peer_ids(peer.to_string());
          co_return grpc::Status::OK;
        });
  }

  grpc::ServerUnaryReactor* PutValue(grpc::CallbackServerContext* context,
                                     const v1::PutValueRequest* request,
                                     v1::PutValueResponse* response) override {
    if (request->key().empty()) return invalid_argument(context, "key is empty");
    if (request->value().size() > kMaxRecordValueBytes) {
      return invalid_argument(
          context, "value is larger than " + std::to_string(kMaxRecordValueBytes) + " bytes");
    }
    p2p::Bytes key(request->key().begin(), request->key().end());
    p2p::Bytes value(request->value().begin(), request->value().end());
    // Checked here, on gRPC's thread (no shared state): a bad record costs the network nothing.
    auto valid = validator.validate(key, value, std::chrono::system_clock::now());
    if (!valid) return invalid_argument(context, valid.error().message);
    return run_on_network_thread(
        context, kDhtCallCap,
        [this, key = std::move(key), value = std::move(value), response](
            std::chrono::steady_clock::time_point deadline) -> asio::awaitable<grpc::Status> {
          if (config.dht == nullptr) co_return no_dht();
          const bool had_peers = config.dht->routing_table_size() > 0;
          auto stored = co_await config.dht->put_value(key, value, deadline);
          if (!stored) {
            co_return grpc::Status(grpc::StatusCode::UNAVAILABLE, stored.error().message);
          }
          if (had_peers && *stored == 0) {
            co_return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                   "stored on this node, but no DHT peer accepted the record");
          }
          response->set_stored_at(static_cast<std::uint32_t>(*stored));
          co_return grpc::Status::OK;
        });
  }

  grpc::ServerUnaryReactor* GetValue(grpc::CallbackServerContext* context,
                                     const v1::GetValueRequest* request,
                                     v1::GetValueResponse* response) override {
    if (request->key().empty()) return invalid_argument(context, "key is empty");
    p2p::Bytes key(request->key().begin(), request->key().end());
    if (auto known = validator.lookup(key); !known) {
      return invalid_argument(context, known.error().message);
    }
    return run_on_network_thread(
        context, kDhtCallCap,
        [this, key = std::move(key), response](
            std::chrono::steady_clock::time_point deadline) -> asio::awaitable<grpc::Status> {
          if (config.dht == nullptr) co_return no_dht();
          auto value = co_await config.dht->get_value(key, deadline);
          if (!value) co_return grpc::Status(grpc::StatusCode::NOT_FOUND, value.error().message);
          response->set_value(value->data(), value->size());
          co_return grpc::Status::OK;
        });
  }

  grpc::ServerUnaryReactor* Shutdown(grpc::CallbackServerContext* context,
                                     const v1::ShutdownRequest*, v1::ShutdownResponse*) override {
    auto* reactor = context->DefaultReactor();
    if (auto denied = authorize(*context); !denied.ok()) {
      reactor->Finish(denied);
      return reactor;
    }
    asio::post(io, [this, reactor] {
      // Answered first: gRPC's own shutdown waits for this reply to be sent.
      reactor->Finish(grpc::Status::OK);
      if (!stopping && config.request_shutdown) config.request_shutdown();
    });
    return reactor;
  }

  grpc::ServerWriteReactor<v1::PeerEvent>* WatchPeers(
      grpc::CallbackServerContext* context, const v1::WatchPeersRequest* request) override {
    auto* watch = new PeerWatch();
    auto handle = watch->handle();
    if (auto denied = authorize(*context); !denied.ok()) {
      PeerWatch::close(handle, denied);
      return watch;
    }
    const bool include_current = request->include_current();
    asio::post(io, [this, handle, include_current] {
      if (stopping) {
        PeerWatch::close(handle, shutting_down());
        return;
      }
      PeerWatch::send_initial_metadata(handle);
      if (include_current) {
        for (const auto& peer : host.connected_peers()) {
          v1::PeerEvent event;
          event.set_type(v1::PeerEvent::TYPE_CONNECTED);
          event.set_time_unix_ms(unix_ms(std::chrono::system_clock::now()));
          describe_peer(host, peer, *event.mutable_peer());
          if (!PeerWatch::push(handle, std::move(event))) return;
        }
      }
      watches.push_back(handle);
    });
    return watch;
  }

  // ---- helpers -------------------------------------------------------------------------------

  static grpc::Status no_dht() {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "this node runs without the DHT");
  }
  static grpc::Status no_dht_peers() {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "no DHT peers known yet (is the node connected to a bootstrap peer?)");
  }

  // Network thread: delivers one event to every watcher, dropping ended streams.
  void broadcast(const v1::PeerEvent& event) {
    std::erase_if(watches,
                  [&](const PeerWatchHandle& watch) { return !PeerWatch::push(watch, event); });
  }

  void on_connection_event(const p2p::net::ConnectionEvent& change) {
    live_peer_count.store(static_cast<std::uint32_t>(host.connected_peers().size()));
    peers_changed->notify();
    if (watches.empty()) return;
    v1::PeerEvent event;
    event.set_type(change.connected ? v1::PeerEvent::TYPE_CONNECTED
                                    : v1::PeerEvent::TYPE_DISCONNECTED);
    event.set_time_unix_ms(unix_ms(std::chrono::system_clock::now()));
    auto* peer = event.mutable_peer();
    describe_peer(host, change.peer, *peer);
    if (peer->address().empty()) {
      peer->set_address(change.remote_address.to_string());
      peer->set_direction(change.direction == p2p::net::Direction::kInbound
                              ? v1::DIRECTION_INBOUND
                              : v1::DIRECTION_OUTBOUND);
    }
    if (!change.connected) event.set_reason(change.reason);
    broadcast(event);
  }

  void on_peer_identified(const p2p::PeerId& peer) {
    if (watches.empty()) return;
    v1::PeerEvent event;
    event.set_type(v1::PeerEvent::TYPE_IDENTIFIED);
    event.set_time_unix_ms(unix_ms(std::chrono::system_clock::now()));
    describe_peer(host, peer, *event.mutable_peer());
    broadcast(event);
  }
};

ControlServer::ControlServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ControlServer::~ControlServer() {
  impl_->lifetime.end();
  if (impl_->server && !impl_->shutdown_thread.joinable()) {
    // Not stopped through stop(): calls still posted to the io_context will never be answered,
    // so cancel them at once.
    impl_->server->Shutdown(std::chrono::system_clock::now());
  }
  if (impl_->shutdown_thread.joinable()) impl_->shutdown_thread.join();
}

const std::string& ControlServer::endpoint() const {
  return impl_->endpoint;
}

void ControlServer::set_listen_addrs(std::vector<std::string> addresses) {
  std::lock_guard lock(impl_->listen_addrs_mutex);
  impl_->listen_addrs = std::move(addresses);
}

Expected<std::unique_ptr<ControlServer>> ControlServer::start(asio::io_context& io,
                                                              p2p::net::Host& host,
                                                              ControlServerConfig config) {
  if (config.endpoint.requires_token && config.token.empty()) {
    return fail("a non-loopback control API endpoint requires a token");
  }
  auto impl = std::make_unique<Impl>(io, host, std::move(config));
  impl->peer_id_text = host.peer_id().to_string();
  impl->listen_addrs = impl->config.facts.listen_addrs;
  impl->protocols = host.protocols();
  impl->live_peer_count = static_cast<std::uint32_t>(host.connected_peers().size());
  const auto& endpoint = impl->config.endpoint;

  if (endpoint.socket_path) {
    // We hold the data directory's lock: a socket file here is a crashed node's leftover.
    std::error_code ec;
    auto status = std::filesystem::symlink_status(*endpoint.socket_path, ec);
    if (status.type() == std::filesystem::file_type::socket) {
      std::filesystem::remove(*endpoint.socket_path, ec);
    } else if (status.type() != std::filesystem::file_type::not_found) {
      return fail("cannot create the control API socket " + endpoint.socket_path->string() +
                  ": something else is in the way");
    }
  }

  if (auto available = check_tcp_port_free(endpoint.bind_address); !available) {
    return tl::unexpected(available.error());
  }

  grpc::ServerBuilder builder;
  int selected_port = 0;
  builder.AddListeningPort(endpoint.bind_address, grpc::InsecureServerCredentials(),
                           &selected_port);
  // gRPC sets SO_REUSEPORT by default, which would let a second node bind the same port.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(impl.get());
  if (impl->config.agent.hub != nullptr) {
    impl->agent_service = std::make_unique<AgentService>(*impl, host, impl->config.agent);
    builder.RegisterService(impl->agent_service.get());
  }
  // Served even with pubsub off, so that its calls say so (FAILED_PRECONDITION).
  impl->pubsub_service = std::make_unique<PubSubService>(*impl, host, impl->config.pubsub);
  builder.RegisterService(impl->pubsub_service.get());
  builder.SetMaxReceiveMessageSize(
      std::max({kMaxRequestBytes, kMaxPubSubCallBytes,
                impl->agent_service ? kMaxAgentCallBytes : kMaxRequestBytes}));
  {
    // The socket is created with the umask's mode; make it private from its first instant.
    daemon::PrivateCreationScope private_socket;
    impl->server = builder.BuildAndStart();
  }
  if (!impl->server || selected_port == 0) {
    impl->server.reset();
    std::string why = endpoint.socket_path ? "" : " (address in use or not available?)";
    return fail("cannot serve the control API on " + endpoint.bind_address + why);
  }
  if (endpoint.socket_path) {
    if (auto made_private = daemon::make_private(*endpoint.socket_path); !made_private) {
      impl->server->Shutdown(std::chrono::system_clock::now());
      return tl::unexpected(made_private.error());
    }
    impl->endpoint = endpoint.bind_address;
  } else {
    impl->endpoint = dialable_tcp_endpoint(endpoint.bind_address, selected_port);
  }

  auto* raw = impl.get();
  host.on_connection(impl->lifetime.guard(
      [raw](const p2p::net::ConnectionEvent& event) { raw->on_connection_event(event); }));
  host.on_peer_identified(
      impl->lifetime.guard([raw](const p2p::PeerId& peer, const p2p::net::PeerInfo&) {
        raw->on_peer_identified(peer);
      }));
  return std::unique_ptr<ControlServer>(new ControlServer(std::move(impl)));
}

void ControlServer::stop(std::function<void()> done) {
  auto& impl = *impl_;
  if (impl.stopping.load()) return;
  impl.stopping.store(true);
  impl.stop_signal->notify();
  for (const auto& watch : impl.watches)
    PeerWatch::close(watch, grpc::Status::OK);
  impl.watches.clear();
  if (impl.agent_service) impl.agent_service->stop();
  impl.pubsub_service->stop();
  impl.shutdown_thread = std::thread([&impl, done = std::move(done)] {
    impl.server->Shutdown(std::chrono::system_clock::now() + kShutdownDeadline);
    if (impl.config.endpoint.socket_path) {
      std::error_code ignored;
      std::filesystem::remove(*impl.config.endpoint.socket_path, ignored);
    }
    asio::post(impl.io, done);
  });
}

}  // namespace an::rpc
