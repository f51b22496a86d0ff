#include "p2p/pubsub/io/pubsub.h"

#include <algorithm>
#include <array>
#include <deque>
#include <map>
#include <unordered_map>
#include <utility>

#include "p2p/multiformats/varint.h"
#include "p2p/net/framed.h"
#include "p2p/rcmgr/resource_manager.h"
#include "p2p/record/peer_record.h"

namespace an::p2p::pubsub {
namespace {

// go-libp2p-pubsub's GossipSubHeartbeatInitialDelay: the first heartbeat soon after start, so
// that a node started with peers builds its meshes at once.
constexpr auto kFirstHeartbeatDelay = std::chrono::milliseconds(100);
// Opening our stream to a peer (or reopening it after it broke) is tried this often, this far
// apart, before the peer is left out of pubsub until it reconnects.
constexpr std::size_t kMaxOutboundStreamAttempts = 3;
constexpr auto kOutboundStreamRetryDelay = std::chrono::seconds(1);
// Queued RPCs are written together up to this many bytes: fewer muxer frames and syscalls when a
// peer has a backlog, and a batch still small next to a stream's flow-control window.
constexpr std::size_t kMaxWriteBatchBytes = 64 * 1024;
// Dialling a peer named by peer exchange, all its addresses together.
constexpr auto kPeerExchangeDialTimeout = std::chrono::seconds(15);
// Log lines (bad frames, refused streams, the router's reports) per window; the rest are
// counted, so that a peer cannot flood the log.
constexpr std::size_t kMaxLogLinesPerWindow = 20;
constexpr auto kLogWindow = std::chrono::seconds(10);

std::vector<std::string> supported_protocols(bool floodsub_only) {
  if (floodsub_only) return {std::string(kFloodsubProtocol)};
  // Our preference when we open a stream: the newest first, as go and js propose them.
  return {std::string(kMeshsub12Protocol), std::string(kMeshsub11Protocol),
          std::string(kMeshsub10Protocol), std::string(kFloodsubProtocol)};
}

// The remote IP for the colocation score; "" for a relayed connection, whose address is the
// relay's.
std::string remote_ip(const net::Connection& connection) {
  if (connection.relayed()) return {};
  const Multiaddr& address = connection.remote_address();
  if (auto ip4 = address.value_of(kProtocolIp4)) return *ip4;
  if (auto ip6 = address.value_of(kProtocolIp6)) return *ip6;
  return {};
}

// read_framed's errors that the peer's bytes caused (as opposed to a reset or a closed
// connection): a bad length, an over-size frame, a frame cut short.
bool is_malformed_frame(const std::string& error) {
  return error.starts_with("malformed message length") || error.starts_with("message of ") ||
         error.starts_with("the stream ended inside");
}

Bytes framed(const Bytes& body) {
  Bytes frame;
  frame.reserve(kMaxVarintLength + body.size());
  append_varint(frame, body.size());
  frame.insert(frame.end(), body.begin(), body.end());
  return frame;
}

// One peer speaking pubsub: our stream to it and its queue, its stream to us.
struct PeerState {
  PeerState(PeerId peer_id, const asio::any_io_executor& executor)
      : id(std::move(peer_id)), wake(executor), ready(executor) {}

  PeerId id;
  bool gone = false;     // disconnected, or the service stopped
  bool added = false;    // known to the router (our stream is open)
  bool gave_up = false;  // no stream of ours could be opened
  bool outbound_broken = false;
  PeerProtocol protocol = PeerProtocol::kFloodsub;
  std::shared_ptr<net::Stream> outbound;
  std::shared_ptr<net::Stream> inbound;
  // Framed RPCs waiting for the writer, and their bytes reserved on the protocol's scope.
  std::deque<Bytes> queue;
  std::size_t queued_bytes = 0;
  std::size_t writing_bytes = 0;  // taken from the queue, being written
  rcmgr::MemoryReservation memory;
  net::Signal wake;   // the writer: something queued, the stream broke, or the peer is gone
  net::Signal ready;  // inbound readers: added, gave up, or gone

  void clear_queue() {
    queue.clear();
    queued_bytes = 0;
    writing_bytes = 0;
    (void)memory.resize(0);
  }
};

}  // namespace

struct PubSub::State {
  State(net::Host& service_host, PrivateKey key, PubSubConfig service_config)
      : host(service_host),
        config(std::move(service_config)),
        protocols(supported_protocols(config.router.floodsub_only)),
        router(std::move(key), config.router,
               Router::Callbacks{
                   .send = [this](const PeerId& peer, Rpc rpc) { queue_rpc(peer, std::move(rpc)); },
                   .deliver = [this](const ReceivedMessage& message) { queue_delivery(message); },
                   .px_candidate = [this](const PeerId& peer,
                                          const Bytes& record) { peer_exchange(peer, record); },
                   .log = [this](std::string_view line) { log("pubsub: " + std::string(line)); },
               }) {}

  asio::any_io_executor executor() { return host.io_context().get_executor(); }

  void start();
  void stop();
  std::shared_ptr<PeerState> ensure_peer(const PeerId& peer);
  void drop_peer(const std::shared_ptr<PeerState>& peer);
  void peer_disconnected(const PeerId& peer);
  bool speaks_pubsub(const net::PeerInfo& info) const;

  asio::awaitable<void> serve_inbound(std::shared_ptr<net::Stream> stream);
  asio::awaitable<void> run_writer(std::shared_ptr<PeerState> peer);
  asio::awaitable<void> write_queue(std::shared_ptr<PeerState> peer,
                                    std::shared_ptr<net::Stream> stream);
  asio::awaitable<void> watch_outbound(std::shared_ptr<PeerState> peer,
                                       std::shared_ptr<net::Stream> stream);
  asio::awaitable<void> dial_exchanged_peer(PeerId peer, std::vector<Multiaddr> addresses);

  // Router callbacks: they run inside a Router call, so whatever calls the Router again (drops
  // for the score, local handlers that may publish or unsubscribe) is deferred.
  void queue_rpc(const PeerId& peer, Rpc rpc);
  void queue_delivery(const ReceivedMessage& message);
  void peer_exchange(const PeerId& peer, const Bytes& signed_peer_record);
  void flush_drops();
  void flush_deliveries();

  void schedule_heartbeat(std::chrono::steady_clock::duration delay);
  void log(std::string_view line);

  net::Host& host;
  PubSubConfig config;
  std::vector<std::string> protocols;
  Router router;
  LogCallback log_callback;
  bool started = false;
  bool running = false;
  std::unordered_map<PeerId, std::shared_ptr<PeerState>> peers;
  std::map<std::string, std::map<std::uint64_t, MessageHandler>, std::less<>> subscriptions;
  std::uint64_t last_subscription_id = 0;
  std::vector<ReceivedMessage> pending_deliveries;
  bool deliveries_scheduled = false;
  std::unordered_map<PeerId, std::size_t> pending_drops;
  bool drops_scheduled = false;
  std::size_t exchange_dials_in_flight = 0;
  std::uint64_t queue_drops = 0;
  std::uint64_t bad_frames = 0;
  std::uint64_t px_dials = 0;
  std::unique_ptr<asio::steady_timer> heartbeat_timer;
  std::chrono::steady_clock::time_point log_window_start{};
  std::size_t log_lines = 0;
  std::size_t log_suppressed = 0;
  net::Lifetime lifetime;
};

void PubSub::State::log(std::string_view line) {
  if (!log_callback) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - log_window_start >= kLogWindow) {
    if (log_suppressed > 0) {
      log_callback(std::to_string(log_suppressed) + " more pubsub lines were not logged");
    }
    log_window_start = now;
    log_lines = 0;
    log_suppressed = 0;
  }
  if (log_lines < kMaxLogLinesPerWindow) {
    ++log_lines;
    log_callback(line);
  } else {
    ++log_suppressed;
  }
}

bool PubSub::State::speaks_pubsub(const net::PeerInfo& info) const {
  return std::any_of(info.protocols.begin(), info.protocols.end(), [this](const std::string& id) {
    return std::find(protocols.begin(), protocols.end(), id) != protocols.end();
  });
}

void PubSub::State::start() {
  if (started) return;
  started = true;
  running = true;
  for (const auto& protocol : protocols) {
    host.set_handler(protocol,
                     [this, alive = lifetime.token()](
                         std::shared_ptr<net::Stream> stream) -> asio::awaitable<void> {
                       if (!alive) {
                         stream->abort();
                         co_return;
                       }
                       co_await serve_inbound(std::move(stream));
                     });
  }
  host.on_connection(lifetime.guard([this](const net::ConnectionEvent& event) {
    if (!event.connected) peer_disconnected(event.peer);
  }));
  host.on_peer_identified(lifetime.guard([this](const PeerId& peer, const net::PeerInfo& info) {
    if (running && speaks_pubsub(info)) (void)ensure_peer(peer);
  }));
  // Peers identified before the start (a caller that starts late).
  for (const auto& peer : host.connected_peers()) {
    const net::PeerInfo* info = host.peer_info(peer);
    if (info != nullptr && speaks_pubsub(*info)) (void)ensure_peer(peer);
  }
  heartbeat_timer = std::make_unique<asio::steady_timer>(executor());
  schedule_heartbeat(kFirstHeartbeatDelay);
}

void PubSub::State::stop() {
  if (!running) return;
  running = false;
  if (heartbeat_timer) heartbeat_timer->cancel();
  std::vector<std::shared_ptr<PeerState>> all;
  all.reserve(peers.size());
  for (const auto& [id, peer] : peers)
    all.push_back(peer);
  for (const auto& peer : all)
    drop_peer(peer);
  pending_deliveries.clear();
}

void PubSub::State::schedule_heartbeat(std::chrono::steady_clock::duration delay) {
  heartbeat_timer->expires_after(delay);
  heartbeat_timer->async_wait(lifetime.guard([this](const std::error_code& error) {
    if (error || !running) return;
    router.heartbeat(Clock::now());
    schedule_heartbeat(config.router.params.heartbeat_interval);
  }));
}

std::shared_ptr<PeerState> PubSub::State::ensure_peer(const PeerId& id) {
  if (!running) return nullptr;
  auto found = peers.find(id);
  if (found != peers.end()) return found->second;
  if (!host.connection_to(id)) return nullptr;
  if (peers.size() >= config.router.limits.max_peers) {
    log("pubsub: not serving " + id.to_string() + ": " + std::to_string(peers.size()) +
        " peers already");
    return nullptr;
  }
  auto peer = std::make_shared<PeerState>(id, executor());
  peers.emplace(id, peer);
  asio::co_spawn(executor(), run_writer(peer), net::report_exception);
  return peer;
}

void PubSub::State::drop_peer(const std::shared_ptr<PeerState>& peer) {
  peer->gone = true;
  if (peer->added) {
    peer->added = false;
    router.remove_peer(peer->id, Clock::now());
  }
  if (peer->outbound) peer->outbound->abort();
  if (peer->inbound) peer->inbound->abort();
  peer->outbound.reset();
  peer->inbound.reset();
  peer->clear_queue();
  pending_drops.erase(peer->id);
  peer->wake.notify();
  peer->ready.notify();
  peers.erase(peer->id);
}

void PubSub::State::peer_disconnected(const PeerId& id) {
  auto found = peers.find(id);
  if (found == peers.end()) return;
  drop_peer(std::shared_ptr<PeerState>(found->second));
}

asio::awaitable<void> PubSub::State::serve_inbound(std::shared_ptr<net::Stream> stream) {
  auto alive = lifetime.token();
  const PeerId from = stream->remote_peer();
  auto peer = ensure_peer(from);
  if (!peer) {
    stream->abort();
    co_return;
  }
  // One stream from each peer, the newest, as go keeps it.
  if (peer->inbound) peer->inbound->abort();
  peer->inbound = stream;
  peer->ready.notify();
  // Its RPCs mean something to the router once our own stream told it the peer's protocol.
  while (alive && !peer->added && !peer->gave_up && !peer->gone && peer->inbound == stream) {
    co_await peer->ready.wait();
  }
  if (!alive || !peer->added || peer->gone || peer->inbound != stream) {
    stream->abort();
    co_return;
  }
  for (;;) {
    // A quiet stream holds no read buffer meanwhile.
    auto readable = co_await stream->wait_readable();
    if (!alive) co_return;
    if (!readable || peer->gone || peer->inbound != stream) {
      stream->abort();
      break;
    }
    auto frame = co_await net::read_framed(*stream, kMaxRpcSize);
    if (!alive) co_return;
    if (peer->gone || peer->inbound != stream) {
      stream->abort();
      break;
    }
    if (!frame) {
      const std::string& reason = frame.error().message;
      if (is_malformed_frame(reason)) {
        ++bad_frames;
        log("pubsub: bad frame from " + from.to_string() + ": " + reason);
      } else if (reason.starts_with("resource limit")) {
        log("pubsub: refused a frame from " + from.to_string() + ": " + reason);
      }
      stream->abort();
      break;
    }
    if (!*frame) {
      // The peer closed its side: it sends nothing more, which is no fault.
      (void)co_await stream->close_write();
      if (!alive) co_return;
      break;
    }
    auto rpc = decode_rpc(**frame, config.router.rpc_limits);
    if (!rpc) {
      ++bad_frames;
      log("pubsub: bad RPC from " + from.to_string() + ": " + rpc.error().message);
      stream->abort();
      break;
    }
    router.handle_rpc(from, std::move(*rpc), Clock::now());
  }
  if (peer->inbound == stream) peer->inbound.reset();
}

asio::awaitable<void> PubSub::State::run_writer(std::shared_ptr<PeerState> peer) {
  auto alive = lifetime.token();
  auto executor = co_await asio::this_coro::executor;
  std::size_t attempts = 0;
  std::string last_error;
  for (;;) {
    if (!alive || peer->gone) co_return;
    if (attempts > 0) {
      if (attempts >= kMaxOutboundStreamAttempts) {
        log("pubsub: giving up on " + peer->id.to_string() + " after " + std::to_string(attempts) +
            " attempts: " + last_error);
        peer->gave_up = true;
        if (peer->inbound) peer->inbound->abort();
        peer->ready.notify();
        co_return;
      }
      asio::steady_timer pause(executor, kOutboundStreamRetryDelay);
      (void)co_await pause.async_wait(net::use_tuple);
      if (!alive || peer->gone) co_return;
    }
    ++attempts;
    auto opened = co_await host.new_stream(peer->id, protocols);
    if (!alive || peer->gone) {
      if (opened) (*opened)->abort();
      co_return;
    }
    if (!opened) {
      last_error = opened.error().message;
      continue;
    }
    std::shared_ptr<net::Stream> stream = std::move(*opened);
    auto protocol = parse_protocol_id(stream->protocol());
    if (!protocol) {
      stream->abort();
      last_error = "negotiated an unknown protocol " + stream->protocol();
      continue;
    }
    peer->outbound = stream;
    peer->outbound_broken = false;
    peer->protocol = *protocol;
    peer->memory = host.resources().protocol_memory(std::string(protocol_id(*protocol)));
    net::Connection& connection = stream->connection();
    peer->added = true;
    router.add_peer(peer->id, *protocol, connection.direction() == net::Direction::kOutbound,
                    remote_ip(connection), Clock::now());
    peer->ready.notify();
    asio::co_spawn(executor, watch_outbound(peer, stream), net::report_exception);

    co_await write_queue(peer, stream);
    if (!alive || peer->gone) co_return;
    // The stream broke: the router forgets the peer until a new one is open.
    last_error = "our stream broke";
    stream->abort();
    peer->outbound.reset();
    peer->clear_queue();
    if (peer->added) {
      peer->added = false;
      router.remove_peer(peer->id, Clock::now());
    }
  }
}

asio::awaitable<void> PubSub::State::write_queue(std::shared_ptr<PeerState> peer,
                                                 std::shared_ptr<net::Stream> stream) {
  auto alive = lifetime.token();
  for (;;) {
    while (alive && peer->queue.empty() && !peer->gone && !peer->outbound_broken) {
      co_await peer->wake.wait();
    }
    if (!alive || peer->gone || peer->outbound_broken) co_return;
    Bytes batch = std::move(peer->queue.front());
    peer->queue.pop_front();
    while (!peer->queue.empty() &&
           batch.size() + peer->queue.front().size() <= kMaxWriteBatchBytes) {
      const Bytes& next = peer->queue.front();
      batch.insert(batch.end(), next.begin(), next.end());
      peer->queue.pop_front();
    }
    peer->queued_bytes -= batch.size();
    peer->writing_bytes = batch.size();
    auto written = co_await stream->write_all(batch);
    if (!alive) co_return;
    peer->memory.release(static_cast<std::int64_t>(peer->writing_bytes));
    peer->writing_bytes = 0;
    if (!written) {
      peer->outbound_broken = true;
      co_return;
    }
  }
}

asio::awaitable<void> PubSub::State::watch_outbound(std::shared_ptr<PeerState> peer,
                                                    std::shared_ptr<net::Stream> stream) {
  // Nothing comes back on our stream; a reset (or data, which no pubsub peer writes) means it is
  // broken, which the writer would otherwise learn only at its next write.
  std::array<std::uint8_t, 64> buffer{};
  auto got = co_await stream->read_some(buffer);
  if (!lifetime.token() || peer->gone || peer->outbound != stream) co_return;
  if (got && *got == 0) co_return;  // the peer closed its side: it may still read ours
  if (got) log("pubsub: " + peer->id.to_string() + " wrote on our outbound stream");
  peer->outbound_broken = true;
  peer->wake.notify();
}

void PubSub::State::queue_rpc(const PeerId& id, Rpc rpc) {
  auto found = peers.find(id);
  if (found == peers.end() || !found->second->added) return;
  PeerState& peer = *found->second;
  std::vector<Bytes> bodies;
  Bytes whole = encode_rpc(rpc);
  if (whole.size() <= kMaxRpcSize) {
    bodies.push_back(std::move(whole));
  } else {
    whole = Bytes();
    auto parts = split_rpc(std::move(rpc), kMaxRpcSize);
    if (!parts) {
      log("pubsub: an RPC to " + id.to_string() + " cannot be sent: " + parts.error().message);
      return;
    }
    for (const auto& part : *parts)
      bodies.push_back(encode_rpc(part));
  }
  bool dropped = false;
  for (const auto& body : bodies) {
    Bytes frame = framed(body);
    if (peer.queue.size() >= config.outbound_queue_per_peer ||
        peer.queued_bytes + frame.size() > config.outbound_queue_bytes_per_peer ||
        !peer.memory.reserve(static_cast<std::int64_t>(frame.size()))) {
      dropped = true;
      continue;
    }
    peer.queued_bytes += frame.size();
    peer.queue.push_back(std::move(frame));
  }
  if (dropped) {
    ++queue_drops;
    ++pending_drops[id];
    if (!drops_scheduled) {
      drops_scheduled = true;
      asio::post(executor(), lifetime.guard([this] { flush_drops(); }));
    }
  }
  peer.wake.notify();
}

void PubSub::State::flush_drops() {
  drops_scheduled = false;
  auto drops = std::move(pending_drops);
  pending_drops.clear();
  for (const auto& [id, count] : drops) {
    auto found = peers.find(id);
    if (found == peers.end() || !found->second->added) continue;
    for (std::size_t i = 0; i < count; ++i)
      router.rpc_dropped(id);
  }
}

void PubSub::State::queue_delivery(const ReceivedMessage& message) {
  if (!running || subscriptions.find(message.topic) == subscriptions.end()) return;
  pending_deliveries.push_back(message);
  if (!deliveries_scheduled) {
    deliveries_scheduled = true;
    asio::post(executor(), lifetime.guard([this] { flush_deliveries(); }));
  }
}

void PubSub::State::flush_deliveries() {
  deliveries_scheduled = false;
  auto batch = std::move(pending_deliveries);
  pending_deliveries.clear();
  auto alive = lifetime.token();
  for (const auto& message : batch) {
    if (!alive || !running) return;
    auto topic = subscriptions.find(message.topic);
    if (topic == subscriptions.end()) continue;
    std::vector<std::uint64_t> ids;
    ids.reserve(topic->second.size());
    for (const auto& [id, handler] : topic->second)
      ids.push_back(id);
    for (std::uint64_t id : ids) {
      // A handler may cancel subscriptions (its own too) or stop the service.
      if (!alive || !running) return;
      topic = subscriptions.find(message.topic);
      if (topic == subscriptions.end()) break;
      auto entry = topic->second.find(id);
      if (entry == topic->second.end()) continue;
      MessageHandler handler = entry->second;
      handler(message);
    }
  }
}

void PubSub::State::peer_exchange(const PeerId& peer, const Bytes& signed_peer_record) {
  if (!running || config.px_connection_target == 0 || peer == host.peer_id()) return;
  if (host.connection_to(peer)) return;
  if (exchange_dials_in_flight >= kMaxPeerExchangeDials ||
      host.connected_peers().size() + exchange_dials_in_flight >= config.px_connection_target) {
    return;
  }
  std::vector<Multiaddr> addresses;
  if (!signed_peer_record.empty()) {
    auto record = record::verify_signed_peer_record(signed_peer_record);
    if (record && record->peer_id == peer) {
      addresses = record->addresses;
      host.peer_store().learn_addresses(peer, addresses, net::PeerStoreClock::now());
    }
  }
  if (addresses.empty()) {
    if (const net::PeerInfo* info = host.peer_info(peer)) addresses = info->addresses;
  }
  if (addresses.empty()) return;
  if (addresses.size() > kMaxPeerExchangeAddresses) addresses.resize(kMaxPeerExchangeAddresses);
  ++exchange_dials_in_flight;
  ++px_dials;
  asio::co_spawn(executor(), dial_exchanged_peer(peer, std::move(addresses)),
                 net::report_exception);
}

asio::awaitable<void> PubSub::State::dial_exchanged_peer(PeerId peer,
                                                         std::vector<Multiaddr> addresses) {
  auto alive = lifetime.token();
  auto dial = [&]() -> asio::awaitable<Expected<void>> {
    std::string last_error = "no address";
    for (const auto& address : addresses) {
      auto connected = co_await host.connect(address.without_p2p().with_peer_id(peer));
      if (connected) co_return Expected<void>{};
      last_error = connected.error().message;
      if (!alive || !running) break;
    }
    co_return fail(last_error);
  };
  auto dialled = co_await net::with_timeout(dial(), kPeerExchangeDialTimeout, "dial");
  if (!alive) co_return;
  --exchange_dials_in_flight;
  (void)dialled;  // a peer exchange dial that fails is routine: the peer may be gone
}

PubSub::PubSub(net::Host& host, PrivateKey key, PubSubConfig config)
    : state_(std::make_unique<State>(host, std::move(key), std::move(config))),
      alive_(std::make_shared<char>(0)) {}

PubSub::~PubSub() {
  alive_.reset();
  state_->lifetime.end();
  for (const auto& [id, peer] : state_->peers) {
    peer->gone = true;
    if (peer->outbound) peer->outbound->abort();
    if (peer->inbound) peer->inbound->abort();
    peer->wake.notify();
    peer->ready.notify();
  }
}

void PubSub::set_log(LogCallback log) {
  state_->log_callback = std::move(log);
}

void PubSub::start() {
  state_->start();
}

void PubSub::stop() {
  state_->stop();
}

Expected<std::unique_ptr<Subscription>> PubSub::subscribe(std::string topic,
                                                          MessageHandler handler) {
  State& state = *state_;
  if (state.started && !state.running) return fail("pubsub is stopped");
  if (!handler) return fail("a subscription needs a handler");
  if (topic.empty()) return fail("empty topic");
  if (topic.size() > kMaxTopicLength) {
    return fail("topic of " + std::to_string(topic.size()) + " bytes is over the limit of " +
                std::to_string(kMaxTopicLength));
  }
  auto found = state.subscriptions.find(topic);
  if (found == state.subscriptions.end()) {
    if (auto joined = state.router.join(topic, Clock::now()); !joined) {
      return tl::unexpected(joined.error());
    }
    found = state.subscriptions.emplace(topic, std::map<std::uint64_t, MessageHandler>{}).first;
  } else if (found->second.size() >= state.config.max_subscriptions_per_topic) {
    return fail("topic " + topic + " has " + std::to_string(found->second.size()) +
                " subscriptions already, the limit");
  }
  const std::uint64_t id = ++state.last_subscription_id;
  found->second.emplace(id, std::move(handler));
  return std::unique_ptr<Subscription>(new Subscription(alive_, this, std::move(topic), id));
}

void PubSub::unsubscribe(const std::string& topic, std::uint64_t id) {
  State& state = *state_;
  auto found = state.subscriptions.find(topic);
  if (found == state.subscriptions.end()) return;
  found->second.erase(id);
  if (!found->second.empty()) return;
  state.subscriptions.erase(found);
  state.router.leave(topic, Clock::now());
}

Expected<MessageId> PubSub::publish(std::string_view topic, Bytes data) {
  State& state = *state_;
  if (!state.running) return fail("pubsub is not running");
  return state.router.publish(topic, std::move(data), Clock::now());
}

std::vector<std::string> PubSub::topics() const {
  return state_->router.topics();
}

std::vector<PeerId> PubSub::topic_peers(std::string_view topic) const {
  return state_->router.topic_peers(topic);
}

std::vector<PeerId> PubSub::mesh_peers(std::string_view topic) const {
  return state_->router.mesh_peers(topic);
}

PubSubStats PubSub::stats() const {
  const State& state = *state_;
  PubSubStats stats;
  stats.router = state.router.stats();
  stats.queue_drops = state.queue_drops;
  stats.bad_frames = state.bad_frames;
  stats.px_dials = state.px_dials;
  for (const auto& [id, peer] : state.peers) {
    if (peer->added) ++stats.peers;
    stats.queued_rpcs += peer->queue.size();
    stats.queued_bytes += peer->queued_bytes;
  }
  return stats;
}

const PeerId& PubSub::local_peer() const {
  return state_->router.local_peer();
}

Subscription::Subscription(std::weak_ptr<void> owner_alive, PubSub* owner, std::string topic,
                           std::uint64_t id)
    : owner_alive_(std::move(owner_alive)), owner_(owner), topic_(std::move(topic)), id_(id) {}

Subscription::~Subscription() {
  cancel();
}

void Subscription::cancel() {
  if (auto alive = owner_alive_.lock()) owner_->unsubscribe(topic_, id_);
  owner_alive_.reset();
}

}  // namespace an::p2p::pubsub
