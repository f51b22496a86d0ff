#include "p2p/net/host.h"

#include <algorithm>

#include "p2p/identify/io/identify_service.h"
#include "p2p/net/negotiate.h"
#include "p2p/net/tcp_transport.h"
#include "p2p/ping/io/ping_service.h"

namespace an::p2p::net {
namespace {

using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

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

bool is_circuit_address(const Multiaddr& address) {
  const auto& parts = address.components();
  return std::any_of(parts.begin(), parts.end(),
                     [](const auto& part) { return part.code == kProtocolP2pCircuit; });
}

}  // namespace

Host::Host(asio::io_context& io, LocalIdentity identity, HostConfig config)
    : io_(io),
      identity_(std::move(identity)),
      config_(std::move(config)),
      peer_store_(config_.peer_store),
      resources_(config_.resources
                     ? config_.resources
                     : std::make_shared<rcmgr::ResourceManager>(rcmgr::unlimited_limits())),
      identify_(std::make_unique<identify::IdentifyService>(*this, config_.agent_version,
                                                            config_.protocol_version)),
      ping_(std::make_unique<ping::PingService>(*this)) {
  identify_->start();
  ping_->start();
}

Host::~Host() {
  lifetime_.end();
  close();
}

void Host::on_peer_identified(PeerIdentifiedListener listener) {
  identify_->on_identified(std::move(listener));
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
  auto alive = lifetime_.token();
  for (;;) {
    auto [ec, socket] = co_await acceptor->async_accept(use_tuple);
    if (!alive || closed_ || !acceptor->is_open()) co_return;
    if (ec) {
      // Out of descriptors and the like: pause instead of spinning.
      asio::steady_timer pause(io_, std::chrono::milliseconds(100));
      co_await pause.async_wait(use_tuple);
      continue;
    }
    std::error_code endpoint_error;
    auto remote_ip = rcmgr::IpAddress::from_multiaddr(
        endpoint_to_multiaddr(socket.remote_endpoint(endpoint_error)));
    if (!remote_ip) {
      std::error_code ignored;
      socket.close(ignored);
      continue;
    }
    // Refused before a byte is read: the gate (rate, handshakes per address), then the
    // transient scope (connections not yet authenticated) and the system.
    auto admission = resources_->admit_inbound(*remote_ip);
    if (!admission.accepted) {
      std::error_code ignored;
      socket.close(ignored);
      continue;
    }
    if (admission.evict) {
      if (auto victim = handshakes_.find(*admission.evict); victim != handshakes_.end()) {
        victim->second->notify();
        handshakes_.erase(victim);
      }
    }
    auto scope = resources_->open_connection(rcmgr::Direction::kInbound, true, *remote_ip);
    if (!scope) {
      resources_->handshake_finished(admission.id, false);
      std::error_code ignored;
      socket.close(ignored);
      continue;
    }
    asio::co_spawn(
        io_,
        upgrade_inbound_connection(std::move(socket), *remote_ip, admission.id, std::move(*scope)),
        report_exception);
  }
}

asio::awaitable<void> Host::upgrade_inbound_connection(tcp::socket socket,
                                                       rcmgr::IpAddress remote_ip,
                                                       rcmgr::ConnectionGate::HandshakeId handshake,
                                                       rcmgr::ConnectionScope scope) {
  using namespace asio::experimental::awaitable_operators;
  auto alive = lifetime_.token();
  auto evicted = std::make_shared<Signal>(io_.get_executor());
  handshakes_[handshake] = evicted;
  std::error_code ec;
  auto remote = endpoint_to_multiaddr(socket.remote_endpoint(ec));
  auto local = endpoint_to_multiaddr(socket.local_endpoint(ec));
  tune_socket(socket);
  auto transport = std::make_unique<TcpByteStream>(std::move(socket));
  auto outcome = co_await (with_timeout(upgrade_inbound(std::move(transport), identity_),
                                        kUpgradeTimeout, "inbound handshake") ||
                           evicted->wait());
  if (!alive) co_return;
  handshakes_.erase(handshake);
  if (outcome.index() == 1) {
    // The gate already forgot it.
    if (inbound_failure_listener_) {
      inbound_failure_listener_(remote, "handshake evicted to make room for another address");
    }
    co_return;
  }
  auto& upgraded = std::get<0>(outcome);
  if (!upgraded || closed_) {
    resources_->handshake_finished(handshake, false);
    if (!upgraded && inbound_failure_listener_) {
      inbound_failure_listener_(remote, upgraded.error().message);
    }
    co_return;
  }
  auto connection =
      adopt(std::move(*upgraded), Direction::kInbound, remote, local, std::move(scope));
  resources_->handshake_finished(handshake, connection.has_value());
  if (!connection) {
    if (inbound_failure_listener_) inbound_failure_listener_(remote, connection.error().message);
    co_return;
  }
  gated_connections_[connection->get()] = remote_ip;
}

Expected<std::shared_ptr<Connection>> Host::adopt(UpgradedConnection upgraded, Direction direction,
                                                  Multiaddr remote, Multiaddr local,
                                                  rcmgr::ConnectionScope scope, bool relayed) {
  if (auto placed = scope.set_peer(upgraded.secure->remote_peer()); !placed) {
    upgraded.secure->abort();
    return tl::unexpected(placed.error());
  }
  auto connection =
      make_connection(std::move(upgraded), direction, remote, local, std::move(scope), relayed);
  if (!connection) return connection;
  auto started = (*connection)
                     ->start(lifetime_.guard([this](std::shared_ptr<Stream> stream) {
                       handle_inbound_stream(std::move(stream));
                     }),
                             lifetime_.guard([this](Connection& closed, const std::string& reason) {
                               connection_closed(closed, reason);
                             }));
  if (!started) return tl::unexpected(started.error());
  const PeerId& peer = (*connection)->remote_peer();
  auto& list = connections_[peer];
  list.push_back(*connection);
  peer_store_.connected(peer);
  if (direction == Direction::kOutbound) peer_store_.add_address(peer, remote);
  if (list.size() == 1) {
    ConnectionEvent event{true, peer, direction, remote, {}};
    for (const auto& listener : connection_listeners_)
      listener(event);
  }
  identify_->identify_connection(*connection);
  return connection;
}

void Host::connection_closed(Connection& connection, const std::string& reason) {
  if (auto gated = gated_connections_.find(&connection); gated != gated_connections_.end()) {
    resources_->inbound_closed(gated->second);
    gated_connections_.erase(gated);
  }
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
  peer_store_.disconnected(event.peer, std::chrono::steady_clock::now());
  for (const auto& listener : connection_listeners_)
    listener(event);
}

void Host::handle_inbound_stream(std::shared_ptr<Stream> stream) {
  asio::co_spawn(io_, serve_stream(std::move(stream)), report_exception);
}

asio::awaitable<void> Host::serve_stream(std::shared_ptr<Stream> stream) {
  auto alive = lifetime_.token();
  std::vector<std::string> supported = protocols();
  multistream::Responder responder(supported);
  auto selected = co_await with_timeout(negotiate_inbound(*stream, std::move(responder)),
                                        kStreamNegotiationTimeout, "stream negotiation");
  if (!alive) co_return;
  if (!selected) {
    stream->abort();
    co_return;
  }
  auto handler = handlers_.find(*selected);
  if (handler == handlers_.end()) {
    stream->abort();
    co_return;
  }
  if (auto placed = stream->set_protocol(*selected); !placed) {
    stream->abort();
    co_return;
  }
  StreamHandler serve = handler->second;
  co_await serve(std::move(stream));
}

asio::awaitable<Expected<std::shared_ptr<Connection>>> Host::connect(const Multiaddr& address) {
  auto alive = lifetime_.token();
  auto peer_text = address.peer_id_component();
  if (!peer_text) co_return fail("cannot dial " + address.to_string() + ": no /p2p/ peer ID");
  auto peer = PeerId::parse(*peer_text);
  if (!peer) co_return tl::unexpected(peer.error());
  if (*peer == identity_.peer_id) co_return fail("cannot dial ourselves");
  const bool circuit = is_circuit_address(address);
  // A relayed connection does not stop us dialing a direct one (as go: it is only "limited").
  auto existing = connection_to(*peer);
  if (existing && (!existing->relayed() || circuit)) co_return existing;
  if (circuit) {
    if (!circuit_dialer_) {
      co_return fail("cannot dial " + address.to_string() + ": circuit relay is not enabled");
    }
    co_return co_await circuit_dialer_(address, *peer);
  }
  auto scope = resources_->open_connection(rcmgr::Direction::kOutbound, true,
                                           rcmgr::IpAddress::from_multiaddr(address), *peer);
  if (!scope) co_return fail("cannot dial " + peer->to_string() + ": " + scope.error().message);
  auto socket = co_await dial_tcp(
      address, std::chrono::duration_cast<std::chrono::milliseconds>(kDialTimeout));
  if (!alive) co_return fail("host closed");
  if (!socket) co_return tl::unexpected(socket.error());
  std::error_code ec;
  auto remote = endpoint_to_multiaddr(socket->remote_endpoint(ec));
  auto local = endpoint_to_multiaddr(socket->local_endpoint(ec));
  auto transport = std::make_unique<TcpByteStream>(std::move(*socket));
  auto upgraded = co_await with_timeout(upgrade_outbound(std::move(transport), identity_, *peer),
                                        kUpgradeTimeout, "handshake with " + peer->to_string());
  if (!alive || closed_) co_return fail("host closed");
  if (!upgraded) co_return tl::unexpected(upgraded.error());
  co_return adopt(std::move(*upgraded), Direction::kOutbound, remote, local, std::move(*scope));
}

asio::awaitable<Expected<std::shared_ptr<Connection>>> Host::dial_relayed(
    std::shared_ptr<Stream> stream, PeerId target, Multiaddr remote_address) {
  auto alive = lifetime_.token();
  auto scope =
      resources_->open_connection(rcmgr::Direction::kOutbound, false, std::nullopt, target);
  if (!scope) {
    stream->abort();
    co_return fail("cannot dial " + target.to_string() + ": " + scope.error().message);
  }
  Multiaddr local = stream->connection().local_address();
  auto transport = std::make_unique<SharedByteStream>(stream);
  auto upgraded =
      co_await with_timeout(upgrade_outbound(std::move(transport), identity_, target),
                            kUpgradeTimeout, "relayed handshake with " + target.to_string());
  if (!alive || closed_) co_return fail("host closed");
  if (!upgraded) {
    stream->abort();
    co_return tl::unexpected(upgraded.error());
  }
  co_return adopt(std::move(*upgraded), Direction::kOutbound, std::move(remote_address),
                  std::move(local), std::move(*scope), true);
}

asio::awaitable<Expected<std::shared_ptr<Connection>>> Host::accept_relayed(
    std::shared_ptr<Stream> stream, PeerId source, Multiaddr remote_address) {
  auto alive = lifetime_.token();
  auto scope = resources_->open_connection(rcmgr::Direction::kInbound, false, std::nullopt);
  if (!scope) {
    stream->abort();
    co_return fail("relayed connection from " + source.to_string() + ": " + scope.error().message);
  }
  Multiaddr local = stream->connection().local_address();
  auto transport = std::make_unique<SharedByteStream>(stream);
  // identity_ is copied: the handshake may outlive the host (see upgrade_inbound).
  auto upgraded = co_await with_timeout(upgrade_inbound(std::move(transport), identity_),
                                        kUpgradeTimeout, "relayed inbound handshake");
  if (!alive || closed_) co_return fail("host closed");
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
                  std::move(local), std::move(*scope), true);
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
  if (auto placed = (*stream)->set_protocol(*selected); !placed) {
    (*stream)->abort();
    co_return tl::unexpected(placed.error());
  }
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
  if (auto placed = (*stream)->set_protocol(protocol); !placed) {
    (*stream)->abort();
    return tl::unexpected(placed.error());
  }
  return stream;
}

asio::awaitable<Expected<std::chrono::nanoseconds>> Host::ping(const PeerId& peer) {
  co_return co_await ping_->ping(peer);
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

}  // namespace an::p2p::net
