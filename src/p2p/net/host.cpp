#include "p2p/net/host.h"

#include <openssl/rand.h>

#include <algorithm>

#include "p2p/crypto/key.h"
#include "p2p/identify/peer_record.h"
#include "p2p/net/framed.h"
#include "p2p/net/negotiate.h"
#include "p2p/net/tcp_transport.h"
#include "p2p/ping/ping.h"
#include "p2p/relay/messages.h"

namespace an::p2p::net {
namespace {

using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

asio::awaitable<Expected<Bytes>> read_to_end(ByteStream& stream, std::size_t limit) {
  Bytes data;
  Bytes buffer(4096);
  for (;;) {
    auto got = co_await stream.read_some(buffer);
    if (!got) co_return tl::unexpected(got.error());
    if (*got == 0) co_return data;
    if (data.size() + *got > limit) co_return fail("message larger than " + std::to_string(limit));
    data.insert(data.end(), buffer.begin(), buffer.begin() + static_cast<long>(*got));
  }
}

Expected<tcp::endpoint> listen_endpoint(const Multiaddr& address) {
  const auto& parts = address.components();
  if (parts.size() != 2 || (parts[0].code != kProtocolIp4 && parts[0].code != kProtocolIp6) ||
      parts[1].code != kProtocolTcp) {
    return fail("cannot listen on " + address.to_string() + ": expected /ip4|ip6/ADDRESS/tcp/PORT");
  }
  std::error_code ec;
  auto ip = asio::ip::make_address(parts[0].value, ec);
  if (ec) return fail("cannot listen on " + address.to_string() + ": " + ec.message());
  return tcp::endpoint(ip, static_cast<unsigned short>(std::stoul(parts[1].value)));
}

struct CircuitAddress {
  Multiaddr relay_address;  // ends in /p2p/RELAY
  PeerId relay;
};

// RELAY/p2p-circuit/p2p/TARGET split at the circuit; nullopt for an address without one.
Expected<std::optional<CircuitAddress>> split_circuit_address(const Multiaddr& address) {
  const std::string text = address.to_string();
  static constexpr std::string_view kCircuit = "/p2p-circuit";
  const auto at = text.find(kCircuit);
  if (at == std::string::npos) return std::optional<CircuitAddress>();
  auto relay_address = Multiaddr::parse(text.substr(0, at));
  auto target_part = Multiaddr::parse(text.substr(at + kCircuit.size()));
  const bool target_only = target_part && target_part->components().size() == 1 &&
                           target_part->components()[0].code == kProtocolP2p;
  if (!relay_address || !target_only) {
    return fail("cannot dial " + text + ": expected RELAY/p2p/ID/p2p-circuit/p2p/ID");
  }
  auto relay_text = relay_address->peer_id_component();
  if (!relay_text) return fail("cannot dial " + text + ": the relay part has no /p2p/ peer ID");
  auto relay = PeerId::parse(*relay_text);
  if (!relay) return tl::unexpected(relay.error());
  return std::optional<CircuitAddress>(CircuitAddress{std::move(*relay_address), *relay});
}

// The peer's known addresses that lead to it directly, with its /p2p/ ID.
std::vector<Multiaddr> direct_addresses(const PeerInfo* info, const PeerId& peer) {
  std::vector<Multiaddr> result;
  if (info == nullptr) return result;
  for (const auto& address : info->addresses) {
    const auto& parts = address.components();
    const bool relayed = std::any_of(parts.begin(), parts.end(), [](const auto& component) {
      return component.code == kProtocolP2pCircuit;
    });
    if (!relayed) result.push_back(address.without_p2p().with_peer_id(peer));
  }
  return result;
}

// One hop request and its answer.
asio::awaitable<Expected<relay::HopMessage>> hop_exchange(ByteStream& stream, Bytes request) {
  auto written = co_await write_framed(stream, request);
  if (!written) co_return tl::unexpected(written.error());
  auto answer = co_await read_framed(stream, relay::kMaxMessageSize);
  if (!answer) co_return tl::unexpected(answer.error());
  if (!answer->has_value()) co_return fail("the relay closed the stream without answering");
  co_return relay::decode_hop(**answer);
}

}  // namespace

Host::Host(asio::io_context& io, LocalIdentity identity, HostConfig config)
    : io_(io),
      identity_(std::move(identity)),
      config_(std::move(config)),
      ping_finished_(std::make_unique<Signal>(io.get_executor())) {
  set_handler(std::string(identify::kProtocolId),
              [this](std::shared_ptr<Stream> stream) { return serve_identify(std::move(stream)); });
  set_handler(std::string(identify::kPushProtocolId), [this](std::shared_ptr<Stream> stream) {
    return serve_identify_push(std::move(stream));
  });
  set_handler(std::string(ping::kProtocolId),
              [this](std::shared_ptr<Stream> stream) { return serve_ping(std::move(stream)); });
}

Host::~Host() {
  *alive_ = false;
  close();
}

Expected<Multiaddr> Host::listen(const Multiaddr& address) {
  auto endpoint = listen_endpoint(address);
  if (!endpoint) return tl::unexpected(endpoint.error());
  auto acceptor = std::make_shared<tcp::acceptor>(io_);
  std::error_code ec;
  auto failure = [&](const std::error_code& code) {
    return fail("cannot listen on " + address.to_string() + ": " + code.message(), code);
  };
  if (acceptor->open(endpoint->protocol(), ec); ec) return failure(ec);
  // Lets a restarted node bind while old connections sit in TIME_WAIT; two live listeners
  // still cannot share a port.
  acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
  if (endpoint->address().is_v6()) acceptor->set_option(asio::ip::v6_only(true), ec);
  if (acceptor->bind(*endpoint, ec); ec) return failure(ec);
  if (acceptor->listen(asio::socket_base::max_listen_connections, ec); ec) return failure(ec);
  auto bound = acceptor->local_endpoint(ec);
  if (ec) return failure(ec);
  auto bound_address = endpoint_to_multiaddr(bound);
  acceptors_.push_back(acceptor);
  listen_addresses_.push_back(bound_address);
  asio::co_spawn(io_, accept_loop(acceptor), report_exception);
  return bound_address;
}

void Host::set_advertised_addresses(std::vector<Multiaddr> addresses) {
  advertised_addresses_ = std::move(addresses);
}

void Host::set_handler(const std::string& protocol, StreamHandler handler) {
  handlers_[protocol] = std::move(handler);
}

std::vector<std::string> Host::protocols() const {
  std::vector<std::string> result;
  for (const auto& [protocol, handler] : handlers_)
    result.push_back(protocol);
  return result;
}

asio::awaitable<void> Host::accept_loop(std::shared_ptr<tcp::acceptor> acceptor) {
  auto alive = alive_;
  for (;;) {
    auto [ec, socket] = co_await acceptor->async_accept(use_tuple);
    if (!*alive || closed_ || !acceptor->is_open()) co_return;
    if (ec) {
      // Out of descriptors and the like: pause instead of spinning.
      asio::steady_timer pause(io_, std::chrono::milliseconds(100));
      co_await pause.async_wait(use_tuple);
      continue;
    }
    if (pending_inbound_ >= kMaxPendingInboundUpgrades) {
      std::error_code ignored;
      socket.close(ignored);
      continue;
    }
    asio::co_spawn(io_, upgrade_inbound_connection(std::move(socket)), report_exception);
  }
}

asio::awaitable<void> Host::upgrade_inbound_connection(tcp::socket socket) {
  auto alive = alive_;
  ++pending_inbound_;
  std::error_code ec;
  auto remote = endpoint_to_multiaddr(socket.remote_endpoint(ec));
  auto local = endpoint_to_multiaddr(socket.local_endpoint(ec));
  tune_socket(socket);
  auto transport = std::make_unique<TcpByteStream>(std::move(socket));
  auto upgraded = co_await with_timeout(upgrade_inbound(std::move(transport), identity_),
                                        kUpgradeTimeout, "inbound handshake");
  if (!*alive) co_return;
  --pending_inbound_;
  if (!upgraded) {
    if (inbound_failure_listener_) inbound_failure_listener_(remote, upgraded.error().message);
    co_return;
  }
  if (closed_) co_return;
  (void)adopt(std::move(*upgraded), Direction::kInbound, remote, local);
}

Expected<std::shared_ptr<Connection>> Host::adopt(UpgradedConnection upgraded, Direction direction,
                                                  Multiaddr remote, Multiaddr local, bool relayed) {
  auto connection = make_connection(std::move(upgraded), direction, remote, local, relayed);
  if (!connection) return connection;
  auto alive = alive_;
  auto started = (*connection)
                     ->start(
                         [this, alive](std::shared_ptr<Stream> stream) {
                           if (*alive) handle_inbound_stream(std::move(stream));
                         },
                         [this, alive](Connection& closed, const std::string& reason) {
                           if (*alive) connection_closed(closed, reason);
                         });
  if (!started) return tl::unexpected(started.error());
  const PeerId& peer = (*connection)->remote_peer();
  auto& list = connections_[peer];
  list.push_back(*connection);
  auto& info = peers_[peer];
  if (std::find(info.addresses.begin(), info.addresses.end(), remote) == info.addresses.end() &&
      direction == Direction::kOutbound) {
    info.addresses.push_back(remote);
  }
  if (list.size() == 1) {
    ConnectionEvent event{true, peer, direction, remote, {}};
    for (const auto& listener : connection_listeners_)
      listener(event);
  }
  asio::co_spawn(io_, run_identify(*connection), report_exception);
  return connection;
}

void Host::connection_closed(Connection& connection, const std::string& reason) {
  auto found = connections_.find(connection.remote_peer());
  if (found == connections_.end()) return;
  auto& list = found->second;
  list.erase(std::remove_if(list.begin(), list.end(),
                            [&](const auto& candidate) { return candidate.get() == &connection; }),
             list.end());
  if (!list.empty()) return;
  ConnectionEvent event{false, connection.remote_peer(), connection.direction(),
                        connection.remote_address(), reason};
  connections_.erase(found);
  for (const auto& listener : connection_listeners_)
    listener(event);
}

void Host::handle_inbound_stream(std::shared_ptr<Stream> stream) {
  asio::co_spawn(io_, serve_stream(std::move(stream)), report_exception);
}

asio::awaitable<void> Host::serve_stream(std::shared_ptr<Stream> stream) {
  auto alive = alive_;
  std::vector<std::string> supported = protocols();
  multistream::Responder responder(supported);
  auto selected = co_await with_timeout(negotiate_inbound(*stream, std::move(responder)),
                                        kStreamNegotiationTimeout, "stream negotiation");
  if (!*alive) co_return;
  if (!selected) {
    stream->abort();
    co_return;
  }
  auto handler = handlers_.find(*selected);
  if (handler == handlers_.end()) {
    stream->abort();
    co_return;
  }
  stream->set_protocol(*selected);
  StreamHandler serve = handler->second;
  co_await serve(std::move(stream));
}

asio::awaitable<Expected<std::shared_ptr<Connection>>> Host::connect(const Multiaddr& address) {
  auto alive = alive_;
  auto peer_text = address.peer_id_component();
  if (!peer_text) co_return fail("cannot dial " + address.to_string() + ": no /p2p/ peer ID");
  auto peer = PeerId::parse(*peer_text);
  if (!peer) co_return tl::unexpected(peer.error());
  if (*peer == identity_.peer_id) co_return fail("cannot dial ourselves");
  auto circuit = split_circuit_address(address);
  if (!circuit) co_return tl::unexpected(circuit.error());
  // A relayed connection does not stop us dialing a direct one (as go: it is only "limited").
  auto existing = connection_to(*peer);
  if (existing && (!existing->relayed() || circuit->has_value())) co_return existing;
  if (circuit->has_value()) {
    CircuitAddress parts = std::move(**circuit);
    co_return co_await connect_via_relay(address, std::move(parts.relay_address), parts.relay,
                                         *peer);
  }
  auto socket = co_await dial_tcp(
      address, std::chrono::duration_cast<std::chrono::milliseconds>(kDialTimeout));
  if (!*alive) co_return fail("host closed");
  if (!socket) co_return tl::unexpected(socket.error());
  std::error_code ec;
  auto remote = endpoint_to_multiaddr(socket->remote_endpoint(ec));
  auto local = endpoint_to_multiaddr(socket->local_endpoint(ec));
  auto transport = std::make_unique<TcpByteStream>(std::move(*socket));
  auto upgraded = co_await with_timeout(upgrade_outbound(std::move(transport), identity_, *peer),
                                        kUpgradeTimeout, "handshake with " + peer->to_string());
  if (!*alive || closed_) co_return fail("host closed");
  if (!upgraded) co_return tl::unexpected(upgraded.error());
  co_return adopt(std::move(*upgraded), Direction::kOutbound, remote, local);
}

asio::awaitable<Expected<std::shared_ptr<Connection>>> Host::connect_to_relay(
    Multiaddr relay_address, PeerId relay) {
  if (relay == identity_.peer_id) co_return fail("cannot relay through ourselves");
  if (auto existing = connection_to(relay)) co_return existing;
  if (relay_address.components().size() > 1) co_return co_await connect(relay_address);
  // Only /p2p/RELAY: the addresses we know for it.
  std::vector<Multiaddr> candidates = direct_addresses(peer_info(relay), relay);
  auto alive = alive_;
  std::string last_error = "no known address";
  for (const auto& candidate : candidates) {
    auto connected = co_await connect(candidate);
    if (!*alive) co_return fail("host closed");
    if (connected) co_return connected;
    last_error = connected.error().message;
  }
  co_return fail("cannot reach relay " + relay.to_string() + ": " + last_error);
}

asio::awaitable<Expected<std::shared_ptr<Connection>>> Host::connect_via_relay(
    Multiaddr address, Multiaddr relay_address, PeerId relay, PeerId target) {
  auto alive = alive_;
  auto relay_connection = co_await connect_to_relay(std::move(relay_address), relay);
  if (!*alive || closed_) co_return fail("host closed");
  if (!relay_connection) co_return tl::unexpected(relay_connection.error());
  std::vector<std::string> protocols{std::string(relay::kHopProtocolId)};
  auto opened = co_await new_stream_on(*relay_connection, std::move(protocols));
  if (!*alive || closed_) co_return fail("host closed");
  if (!opened) co_return tl::unexpected(opened.error());
  std::shared_ptr<Stream> stream = std::move(*opened);

  relay::HopMessage request;
  request.type = relay::HopType::kConnect;
  request.peer = relay::Peer{target, {}, 0};
  auto answer = co_await with_timeout(hop_exchange(*stream, relay::encode(request)),
                                      kRelayDialTimeout, "relay CONNECT");
  if (!*alive || closed_) co_return fail("host closed");
  if (!answer) {
    stream->abort();
    co_return fail("relay " + relay.to_string() + ": " + answer.error().message);
  }
  if (answer->type != relay::HopType::kStatus || !answer->status) {
    stream->abort();
    co_return fail("relay " + relay.to_string() + " answered CONNECT with a non-STATUS message");
  }
  if (*answer->status != relay::Status::kOk) {
    stream->abort();
    co_return fail("relay " + relay.to_string() + " refused to connect to " + target.to_string() +
                   ": " + std::string(relay::status_name(*answer->status)));
  }

  Multiaddr local = (*relay_connection)->local_address();
  auto transport = std::make_unique<SharedByteStream>(stream);
  auto upgraded =
      co_await with_timeout(upgrade_outbound(std::move(transport), identity_, target),
                            kUpgradeTimeout, "relayed handshake with " + target.to_string());
  if (!*alive || closed_) co_return fail("host closed");
  if (!upgraded) {
    stream->abort();
    co_return tl::unexpected(upgraded.error());
  }
  co_return adopt(std::move(*upgraded), Direction::kOutbound, std::move(address), std::move(local),
                  true);
}

asio::awaitable<Expected<std::shared_ptr<Connection>>> Host::accept_relayed(
    std::shared_ptr<Stream> stream, PeerId source, Multiaddr remote_address) {
  auto alive = alive_;
  Multiaddr local = stream->connection().local_address();
  auto transport = std::make_unique<SharedByteStream>(stream);
  // identity_ is copied: the handshake may outlive the host (see upgrade_inbound).
  auto upgraded = co_await with_timeout(upgrade_inbound(std::move(transport), identity_),
                                        kUpgradeTimeout, "relayed inbound handshake");
  if (!*alive || closed_) co_return fail("host closed");
  if (!upgraded) {
    stream->abort();
    co_return tl::unexpected(upgraded.error());
  }
  if (!(upgraded->secure->remote_peer() == source)) {
    upgraded->secure->abort();
    co_return fail("relayed connection: the relay announced " + source.to_string() +
                   " but the peer authenticated as " + upgraded->secure->remote_peer().to_string());
  }
  co_return adopt(std::move(*upgraded), Direction::kInbound, std::move(remote_address),
                  std::move(local), true);
}

asio::awaitable<Expected<std::shared_ptr<Stream>>> Host::new_stream(
    const PeerId& peer, std::vector<std::string> protocols) {
  auto connection = connection_to(peer);
  if (!connection) co_return fail("not connected to " + peer.to_string());
  co_return co_await new_stream_on(connection, std::move(protocols));
}

asio::awaitable<Expected<std::shared_ptr<Stream>>> Host::new_stream_on(
    std::shared_ptr<Connection> connection, std::vector<std::string> protocols) {
  auto deadline = std::chrono::steady_clock::now() + kStreamNegotiationTimeout;
  while (!connection->peer_ready() && connection->stream_count() >= kMaxEarlyStreams) {
    bool ready = co_await connection->wait_peer_ready(deadline);
    if (!ready) break;
  }
  if (!connection->is_open()) co_return fail("connection closed");
  auto stream = connection->open_stream();
  if (!stream) co_return tl::unexpected(stream.error());
  auto selected = co_await with_timeout(negotiate_outbound(**stream, std::move(protocols)),
                                        kStreamNegotiationTimeout, "stream negotiation");
  if (!selected) {
    (*stream)->abort();
    co_return tl::unexpected(selected.error());
  }
  (*stream)->set_protocol(*selected);
  co_return *stream;
}

Expected<std::shared_ptr<Stream>> Host::new_stream_optimistic(const PeerId& peer,
                                                              const std::string& protocol) {
  auto connection = connection_to(peer);
  if (!connection) return fail("not connected to " + peer.to_string());
  auto initiator = multistream::Initiator::create(std::vector<std::string>{protocol},
                                                  multistream::InitiatorMode::kOptimistic);
  if (!initiator) return tl::unexpected(initiator.error());
  auto stream = connection->open_stream();
  if (!stream) return stream;
  Bytes proposal;
  initiator->take_output(proposal);
  if (auto queued = (*stream)->queue_write(proposal); !queued)
    return tl::unexpected(queued.error());
  (*stream)->expect_negotiation_answer(
      std::make_unique<multistream::Initiator>(std::move(*initiator)));
  (*stream)->set_protocol(protocol);
  return stream;
}

asio::awaitable<Expected<std::chrono::nanoseconds>> Host::ping(const PeerId& peer) {
  auto alive = alive_;
  while (pinging_.count(peer) > 0) {
    co_await ping_finished_->wait();
    if (!*alive) co_return fail("host closed");
  }
  pinging_.insert(peer);
  auto result = co_await ping_once(peer);
  if (!*alive) co_return result;
  pinging_.erase(peer);
  ping_finished_->notify();
  co_return result;
}

asio::awaitable<Expected<std::chrono::nanoseconds>> Host::ping_once(const PeerId& peer) {
  std::vector<std::string> protocols{std::string(ping::kProtocolId)};
  auto stream = co_await new_stream(peer, std::move(protocols));
  if (!stream) co_return tl::unexpected(stream.error());
  Bytes payload(ping::kPayloadSize);
  RAND_bytes(payload.data(), static_cast<int>(payload.size()));
  auto start = std::chrono::steady_clock::now();
  auto exchange = [&]() -> asio::awaitable<Expected<std::chrono::nanoseconds>> {
    auto written = co_await (*stream)->write_all(payload);
    if (!written) co_return tl::unexpected(written.error());
    Bytes echo(ping::kPayloadSize);
    auto read = co_await read_exact(**stream, echo);
    if (!read) co_return tl::unexpected(read.error());
    if (echo != payload) co_return fail("ping: the peer answered with other bytes");
    co_return std::chrono::steady_clock::now() - start;
  };
  auto rtt = co_await with_timeout(exchange(), kPingTimeout, "ping");
  // One ping stream per peer at a time: close ours and let the peer close its side.
  (void)co_await (*stream)->close_write();
  co_return rtt;
}

void Host::disconnect(const PeerId& peer) {
  auto found = connections_.find(peer);
  if (found == connections_.end()) return;
  auto list = found->second;
  for (auto& connection : list)
    connection->close("disconnect requested");
}

std::shared_ptr<Connection> Host::connection_to(const PeerId& peer) const {
  auto found = connections_.find(peer);
  if (found == connections_.end()) return nullptr;
  // A connection that is closing (either side sent GoAway) cannot carry new streams: callers
  // get a fresh connection instead.
  std::shared_ptr<Connection> relayed;
  for (const auto& connection : found->second) {
    if (!connection->accepts_new_streams()) continue;
    if (!connection->relayed()) return connection;
    if (!relayed) relayed = connection;
  }
  return relayed;
}

std::vector<PeerId> Host::connected_peers() const {
  std::vector<PeerId> peers;
  for (const auto& [peer, list] : connections_) {
    if (!list.empty()) peers.push_back(peer);
  }
  return peers;
}

const PeerInfo* Host::peer_info(const PeerId& peer) const {
  auto found = peers_.find(peer);
  return found == peers_.end() ? nullptr : &found->second;
}

void Host::close() {
  if (closed_) return;
  closed_ = true;
  std::error_code ignored;
  for (auto& acceptor : acceptors_)
    acceptor->close(ignored);
  auto all = connections_;
  for (auto& [peer, list] : all) {
    for (auto& connection : list)
      connection->close("host shutting down");
  }
}

namespace {

// How we see the peer, for its identify. A relayed connection is seen as go's relayed
// connections report it: the relay's transport address, /p2p/RELAY/p2p-circuit (without the
// peer's own /p2p/). js-libp2p's identify refuses the whole message when the observed address
// does not start with an IP or DNS component, so nothing is sent then.
std::optional<Multiaddr> observed_address_for_identify(const Connection& connection) {
  Multiaddr observed = connection.remote_address();
  if (connection.relayed()) observed = observed.without_p2p();
  const auto& parts = observed.components();
  if (parts.empty()) return std::nullopt;
  switch (parts.front().code) {
    case kProtocolIp4:
    case kProtocolIp6:
    case kProtocolDns:
    case kProtocolDns4:
    case kProtocolDns6:
    case kProtocolDnsaddr:
      return observed;
    default:
      return std::nullopt;
  }
}

}  // namespace

identify::Identify Host::own_identify(const Connection& connection) const {
  identify::Identify message;
  message.protocol_version = config_.protocol_version;
  message.agent_version = config_.agent_version;
  message.public_key = identity_.key.public_key().protobuf();
  message.listen_addrs = advertised_addresses_.empty() ? listen_addresses_ : advertised_addresses_;
  message.observed_addr = observed_address_for_identify(connection);
  message.protocols = protocols();
  // A record without addresses would only make a js-libp2p peer replace the addresses it knows
  // us by (e.g. the circuit address it dialled) with none, and then fail to open streams on the
  // relayed connection it holds.
  if (message.listen_addrs.empty()) return message;
  if (auto record = identify::make_signed_peer_record(identity_.key, peer_record_seq_,
                                                      message.listen_addrs)) {
    message.signed_peer_record = std::move(*record);
  }
  return message;
}

void Host::apply_identify(const PeerId& peer, identify::Identify message) {
  auto& info = peers_[peer];
  if (message.public_key) {
    auto key = PublicKey::from_protobuf(*message.public_key);
    if (!key || key->peer_id() != peer) return;  // not the peer we authenticated
    info.public_key = key->protobuf();
  }
  if (!message.listen_addrs.empty()) info.addresses = message.listen_addrs;
  if (!message.protocols.empty()) info.protocols = message.protocols;
  if (message.agent_version) info.agent_version = *message.agent_version;
  if (message.protocol_version) info.protocol_version = *message.protocol_version;
  if (message.observed_addr) info.observed_address = message.observed_addr;
  info.identified = true;
  for (const auto& listener : identified_listeners_)
    listener(peer, info);
}

asio::awaitable<void> Host::run_identify(std::shared_ptr<Connection> connection) {
  auto alive = alive_;
  std::vector<std::string> protocols{std::string(identify::kProtocolId)};
  // On this very connection: with several connections to one peer, each is identified.
  auto stream = co_await new_stream_on(connection, std::move(protocols));
  if (!*alive || !stream) co_return;
  auto data = co_await with_timeout(read_to_end(**stream, identify::kMaxStreamSize),
                                    kIdentifyTimeout, "identify");
  if (!*alive || !data) co_return;
  (void)co_await (*stream)->close_write();
  auto message = identify::decode_stream(*data);
  if (!message) co_return;
  apply_identify(connection->remote_peer(), std::move(*message));
}

asio::awaitable<void> Host::serve_identify(std::shared_ptr<Stream> stream) {
  auto message = identify::encode_stream(own_identify(stream->connection()));
  auto written = co_await stream->write_all(message);
  if (written) (void)co_await stream->close_write();
}

asio::awaitable<void> Host::serve_identify_push(std::shared_ptr<Stream> stream) {
  auto alive = alive_;
  auto data = co_await with_timeout(read_to_end(*stream, identify::kMaxStreamSize),
                                    kIdentifyTimeout, "identify push");
  if (!*alive || !data) co_return;
  auto message = identify::decode_stream(*data);
  if (!message) co_return;
  apply_identify(stream->remote_peer(), std::move(*message));
}

asio::awaitable<void> Host::serve_ping(std::shared_ptr<Stream> stream) {
  Bytes payload(ping::kPayloadSize);
  for (;;) {
    auto read = co_await read_exact(*stream, payload);
    if (!read) break;
    auto written = co_await stream->write_all(payload);
    if (!written) break;
  }
  (void)co_await stream->close_write();
}

}  // namespace an::p2p::net
