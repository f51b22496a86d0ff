// The libp2p host: listeners, dialing, one connection per peer, the protocol router, the peer
// store, and the identify and ping services every node runs (identify/io, ping/io). Circuit
// addresses are dialled by the relay client when one is installed (relay/io). Owned by its user;
// every call and every callback happens on the io_context's single thread (the network thread).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "p2p/net/connection.h"
#include "p2p/net/peer_store.h"
#include "p2p/net/upgrade.h"
#include "p2p/rcmgr/resource_manager.h"

namespace an::p2p::identify {
class IdentifyService;
}
namespace an::p2p::ping {
class PingService;
}

namespace an::p2p::net {

// Limits (named here, next to what they protect).
inline constexpr std::chrono::seconds kStreamNegotiationTimeout{10};
// Streams we open on a new connection before the peer shows that its side is set up: js-libp2p
// aborts a connection on which more than 10 streams arrive that early.
inline constexpr std::size_t kMaxEarlyStreams = 8;

struct HostConfig {
  std::string agent_version = "agentnetwork";
  std::string protocol_version = "ipfs/0.1.0";
  // What connections and streams may hold; null: a manager without limits.
  std::shared_ptr<rcmgr::ResourceManager> resources;
  PeerStoreLimits peer_store;
};

struct ConnectionEvent {
  bool connected = false;  // false: the last connection to the peer closed
  PeerId peer;
  Direction direction = Direction::kOutbound;
  Multiaddr remote_address;
  std::string reason;  // for disconnects
};

class Host {
 public:
  using StreamHandler = std::function<asio::awaitable<void>(std::shared_ptr<Stream>)>;
  using ConnectionListener = std::function<void(const ConnectionEvent&)>;
  using PeerIdentifiedListener = std::function<void(const PeerId&, const PeerInfo&)>;
  // Dials a circuit address (RELAY/p2p-circuit/p2p/TARGET) through the relay: the relay client
  // installs one (relay/io/relay_client.h).
  using CircuitDialer = std::function<asio::awaitable<Expected<std::shared_ptr<Connection>>>(
      Multiaddr address, PeerId target)>;
  // An inbound connection that failed its handshake (remote address, reason).
  using InboundFailureListener = std::function<void(const Multiaddr&, const std::string&)>;

  Host(asio::io_context& io, LocalIdentity identity, HostConfig config);
  ~Host();
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  // Binds a TCP listener (/ip4|ip6/A/tcp/P) and starts accepting. Returns the bound address.
  Expected<Multiaddr> listen(const Multiaddr& address);
  const std::vector<Multiaddr>& listen_addresses() const { return listen_addresses_; }
  // Addresses to tell peers (identify): listen addresses, unspecified hosts expanded.
  void set_advertised_addresses(std::vector<Multiaddr> addresses);
  // What identify tells peers: the advertised addresses, or the listen addresses if none are set.
  const std::vector<Multiaddr>& advertised_addresses() const {
    return advertised_addresses_.empty() ? listen_addresses_ : advertised_addresses_;
  }

  // Registers a protocol handler; the stream's protocol is negotiated before it is called.
  void set_handler(const std::string& protocol, StreamHandler handler);
  std::vector<std::string> protocols() const;

  // Connects (or reuses the connection) to the peer named by the /p2p/ part of `address`. Only
  // a circuit address reuses a relayed connection; others dial a direct one next to it.
  // A circuit address goes to the circuit dialer and yields a relayed() connection; without
  // one it is an error.
  asio::awaitable<Expected<std::shared_ptr<Connection>>> connect(const Multiaddr& address);
  void set_circuit_dialer(CircuitDialer dialer) { circuit_dialer_ = std::move(dialer); }
  // Secures (as the dialer) and adopts a stream through a relay that reached `target`, as a
  // relayed outbound connection with `remote_address` (the circuit address dialled).
  asio::awaitable<Expected<std::shared_ptr<Connection>>> dial_relayed(
      std::shared_ptr<Stream> stream, PeerId target, Multiaddr remote_address);
  // Secures (as the responder) and adopts a stream that a relay handed us with a STOP CONNECT
  // from `source`, as a relayed inbound connection with `remote_address`. The authenticated
  // peer must be `source`.
  asio::awaitable<Expected<std::shared_ptr<Connection>>> accept_relayed(
      std::shared_ptr<Stream> stream, PeerId source, Multiaddr remote_address);
  // Opens a stream to a connected peer and negotiates one of `protocols`.
  asio::awaitable<Expected<std::shared_ptr<Stream>>> new_stream(const PeerId& peer,
                                                                std::vector<std::string> protocols);
  // The same on one given connection.
  asio::awaitable<Expected<std::shared_ptr<Stream>>> new_stream_on(
      std::shared_ptr<Connection> connection, std::vector<std::string> protocols);
  // Opens a stream for one protocol without waiting for the peer's answer (go-libp2p's lazy
  // negotiation): the caller may write at once, saving a round trip; a refusal surfaces as an
  // error on the first read.
  Expected<std::shared_ptr<Stream>> new_stream_optimistic(const PeerId& peer,
                                                          const std::string& protocol);
  // Round trip of one ping on /ipfs/ping/1.0.0 (the ping service's).
  asio::awaitable<Expected<std::chrono::nanoseconds>> ping(const PeerId& peer);

  void disconnect(const PeerId& peer);
  // A connection to the peer that can carry new streams (not closing), or nullptr. A direct
  // connection is preferred to a relayed one.
  std::shared_ptr<Connection> connection_to(const PeerId& peer) const;
  std::vector<PeerId> connected_peers() const;
  const PeerInfo* peer_info(const PeerId& peer) const { return peer_store_.find(peer); }
  PeerStore& peer_store() { return peer_store_; }

  void on_connection(ConnectionListener listener) {
    connection_listeners_.push_back(std::move(listener));
  }
  void on_inbound_failure(InboundFailureListener listener) {
    inbound_failure_listener_ = std::move(listener);
  }
  // After each identify or identify push of a peer has been recorded in the peer store.
  void on_peer_identified(PeerIdentifiedListener listener);

  // Stops listening and closes every connection.
  void close();

  rcmgr::ResourceManager& resources() { return *resources_; }
  const PeerId& peer_id() const { return identity_.peer_id; }
  asio::io_context& io_context() { return io_; }
  const LocalIdentity& identity() const { return identity_; }

 private:
  asio::awaitable<void> accept_loop(std::shared_ptr<asio::ip::tcp::acceptor> acceptor);
  asio::awaitable<void> upgrade_inbound_connection(asio::ip::tcp::socket socket,
                                                   rcmgr::IpAddress remote_ip,
                                                   rcmgr::ConnectionGate::HandshakeId handshake,
                                                   rcmgr::ConnectionScope scope);
  // Gives the connection its peer's resource scope and starts it; fails (and aborts it) when
  // the peer has too many connections.
  Expected<std::shared_ptr<Connection>> adopt(UpgradedConnection upgraded, Direction direction,
                                              Multiaddr remote, Multiaddr local,
                                              rcmgr::ConnectionScope scope, bool relayed = false);
  void handle_inbound_stream(std::shared_ptr<Stream> stream);
  asio::awaitable<void> serve_stream(std::shared_ptr<Stream> stream);
  void connection_closed(Connection& connection, const std::string& reason);

  asio::io_context& io_;
  LocalIdentity identity_;
  HostConfig config_;
  std::vector<std::shared_ptr<asio::ip::tcp::acceptor>> acceptors_;
  std::vector<Multiaddr> listen_addresses_;
  std::vector<Multiaddr> advertised_addresses_;
  std::map<std::string, StreamHandler> handlers_;
  std::unordered_map<PeerId, std::vector<std::shared_ptr<Connection>>> connections_;
  PeerStore peer_store_;
  std::vector<ConnectionListener> connection_listeners_;
  InboundFailureListener inbound_failure_listener_;
  CircuitDialer circuit_dialer_;
  std::shared_ptr<rcmgr::ResourceManager> resources_;
  // Inbound handshakes in flight, to abort the one the gate evicts.
  std::unordered_map<rcmgr::ConnectionGate::HandshakeId, std::shared_ptr<Signal>> handshakes_;
  // Inbound connections the gate counts, by the address it counts them under.
  std::unordered_map<const Connection*, rcmgr::IpAddress> gated_connections_;
  bool closed_ = false;
  std::unique_ptr<identify::IdentifyService> identify_;
  std::unique_ptr<ping::PingService> ping_;
  Lifetime lifetime_;
};

}  // namespace an::p2p::net
