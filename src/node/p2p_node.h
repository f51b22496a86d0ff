// The P2P side of a node, assembled in one place (the composition root, as Bitcoin Core's
// NodeContext): the Host with its identify and ping services, the connection manager, the
// Kademlia DHT, DAAN discovery on it, publish/subscribe (gossipsub), the circuit relay client
// and hop service, bootstrap peers kept connected and relays kept reserved. The daemon (node.cpp)
// and the p2pd mode (p2pd_process.cpp) differ only in the P2pConfig they pass and in what they do
// with the events. A new protocol's service is constructed, started and stopped here, in the
// order of P2pContext's members.
//
// Network thread only: start, stop, the callbacks and destruction happen on the io_context's
// thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "node/identity.h"
#include "p2p/connmgr/connection_manager.h"
#include "p2p/daan/io/discovery.h"
#include "p2p/daan/io/messenger.h"
#include "p2p/kad/io/dht.h"
#include "p2p/net/host.h"
#include "p2p/pubsub/io/pubsub.h"
#include "p2p/rcmgr/resource_manager.h"
#include "p2p/relay/io/relay_client.h"
#include "p2p/relay/io/relay_service.h"
#include "p2p/relay/resources.h"
#include "util/expected.h"

namespace an::node {

enum class P2pLogLevel { kDebug, kInfo, kWarn };

// Lines about peers' refused or malformed /daan and pubsub streams logged per window; the rest
// are counted.
inline constexpr std::size_t kMaxMisbehaviourLinesPerWindow = 20;
inline constexpr std::chrono::seconds kMisbehaviourLogWindow{10};

struct P2pConfig {
  std::string agent_version;
  // Offered in this order of preference (protocol IDs).
  std::vector<std::string> security_protocols{"/noise", "/tls/1.0.0"};
  std::vector<std::string> muxers{"/yamux/1.0.0"};
  // Bound at start; a failure to bind fails the start.
  std::vector<p2p::Multiaddr> listen;
  // What peers are told instead of the bound addresses (expanded per interface); empty: those.
  std::vector<p2p::Multiaddr> announce;
  // nullopt: no DHT.
  std::optional<p2p::kad::DhtMode> dht;
  // DAAN discovery on the DHT (advertise and look up namespaces, join the DAAN network); only
  // with a DHT. nullopt: none. Its log callback, when unset, is the node's.
  std::optional<p2p::daan::DiscoveryConfig> daan_discovery;
  p2p::connmgr::Limits connection_limits;
  // What peers may make the node hold (docs/security.md); bootstrap peers and the relays in use
  // are added to its allow list.
  p2p::rcmgr::LimitConfig resource_limits = p2p::rcmgr::unlimited_limits();
  // Close connections above the high-water mark (else only tags and protection are kept, as
  // go's p2pd without -connManager).
  bool trim_connections = true;
  // The relay client: accept relayed connections and dial circuit addresses.
  bool relay_client = true;
  // nullopt: no hop service (we relay nobody).
  std::optional<p2p::relay::RelayLimits> relay_service;
  // Peers dialled at start and redialled with backoff while disconnected; never trimmed.
  // Each ends in /p2p/<peer id>.
  std::vector<p2p::Multiaddr> bootstrap;
  // Relays to keep a reservation on (ending in /p2p/<peer id>).
  std::vector<p2p::Multiaddr> static_relays;
  // With no listen address and no static relay, reserve on bootstrap peers that offer the hop
  // protocol, so that the node is reachable through them.
  bool reserve_on_bootstrap_relays = true;
  // Agents' messages and requests (/daan/message/1.0.0, /daan/request/1.0.0) go to this sink;
  // null: the node does not serve them (p2pd).
  p2p::daan::MessageSink* daan_sink = nullptr;
  p2p::daan::MessengerLimits daan_limits;
  // Publish/subscribe (gossipsub, or floodsub with router.floodsub_only); nullopt: off. Peer
  // exchange dials only below the connection manager's low-water mark.
  std::optional<p2p::pubsub::PubSubConfig> pubsub;
  // Where the assembly reports what it does (connections, bootstrap, relays). Per-peer events
  // come at kDebug, so that a peer cannot flood the log.
  std::function<void(P2pLogLevel, const std::string&)> log;
};

// The owned parts, in construction order; torn down in reverse.
struct P2pContext {
  // Shared with the handles of every connection and stream, which may outlive the node.
  std::shared_ptr<p2p::rcmgr::ResourceManager> resources;
  std::unique_ptr<p2p::connmgr::ConnectionManager> connection_manager;
  std::unique_ptr<p2p::net::Host> host;
  std::unique_ptr<p2p::daan::Messenger> messenger;
  std::unique_ptr<p2p::pubsub::PubSub> pubsub;
  std::unique_ptr<p2p::kad::Dht> dht;
  std::unique_ptr<p2p::daan::Discovery> discovery;
  std::unique_ptr<p2p::relay::RelayClient> relay_client;
  std::unique_ptr<p2p::relay::RelayService> relay_service;
};

class P2pNode {
 public:
  // Binds the listen addresses, builds every part, starts them and the bootstrap dials.
  static Expected<std::unique_ptr<P2pNode>> start(asio::io_context& io, Identity identity,
                                                  P2pConfig config);
  ~P2pNode();
  P2pNode(const P2pNode&) = delete;
  P2pNode& operator=(const P2pNode&) = delete;

  // Begins the shutdown: stops redialling and reserving, stops the DHT, closes the listeners and
  // every connection (each puts its GoAway on the wire when the io_context runs on). Returns
  // whether any peer was connected (callers give those a moment). Idempotent.
  bool stop();

  p2p::net::Host& host() { return *context_.host; }
  p2p::kad::Dht* dht() { return context_.dht.get(); }
  // Null when P2pConfig::daan_sink is.
  p2p::daan::Messenger* messenger() { return context_.messenger.get(); }
  // Null when P2pConfig::pubsub is unset.
  p2p::pubsub::PubSub* pubsub() { return context_.pubsub.get(); }
  // Null without a DHT or when P2pConfig::daan_discovery is unset.
  p2p::daan::Discovery* discovery() { return context_.discovery.get(); }
  p2p::connmgr::ConnectionManager& connection_manager() { return *context_.connection_manager; }
  p2p::rcmgr::ResourceManager& resources() { return *context_.resources; }
  // The listen addresses as told to peers (without /p2p/), relayed ones included.
  const std::vector<p2p::Multiaddr>& advertised_addresses() const;
  // The direct part of them: bound (expanded) or announced.
  const std::vector<p2p::Multiaddr>& direct_addresses() const { return direct_addresses_; }
  // The peers the node keeps a connection to (bootstrap) or a reservation on.
  bool is_bootstrap_peer(const p2p::PeerId& peer) const { return bootstrap_peers_.count(peer); }

  // Called when a peer connects, disconnects or is identified.
  void on_peers_changed(std::function<void()> listener) { peers_changed_ = std::move(listener); }
  // Called after the advertised addresses changed (a relay reservation gained or lost).
  void on_addresses_changed(std::function<void()> listener) {
    addresses_changed_ = std::move(listener);
  }

 private:
  P2pNode(asio::io_context& io, P2pConfig config);
  Expected<void> assemble(Identity identity);
  void start_services();
  void on_connection_event(const p2p::net::ConnectionEvent& event);
  void trim_connections();
  void schedule_trim();
  void keep_relay(const p2p::Multiaddr& relay_address, const char* why);
  void maybe_reserve_on(const p2p::PeerId& peer, const p2p::net::PeerInfo& info);
  void relayed_addresses_changed(const std::vector<p2p::Multiaddr>& relayed);
  asio::awaitable<void> keep_bootstrap_connected(p2p::Multiaddr address, p2p::PeerId peer);
  void log(P2pLogLevel level, const std::string& message) const;
  void log_peer_misbehaviour(std::string_view line);

  asio::io_context& io_;
  P2pConfig config_;
  P2pContext context_;
  std::vector<p2p::Multiaddr> direct_addresses_;
  std::set<p2p::PeerId> bootstrap_peers_;
  std::set<p2p::PeerId> kept_relays_;
  std::function<void()> peers_changed_;
  std::function<void()> addresses_changed_;
  // Wakes bootstrap dialers when peers come and go, and at stop; the second ends their dials.
  std::unique_ptr<p2p::net::Signal> connections_changed_;
  std::unique_ptr<p2p::net::Signal> stop_requested_;
  std::unique_ptr<asio::steady_timer> trim_timer_;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point misbehaviour_window_start_{};
  std::size_t misbehaviour_logged_ = 0;
  std::size_t misbehaviour_suppressed_ = 0;
  p2p::net::Lifetime lifetime_;
};

}  // namespace an::node
