#include "node/p2p_node.h"

#include <algorithm>
#include <functional>

#include "daemon/platform.h"
#include "node/listen_addresses.h"
#include "p2p/noise/x25519.h"
#include "p2p/relay/messages.h"

namespace an::node {
namespace {

using p2p::Multiaddr;
using p2p::PeerId;

// Bootstrap redial: exponential backoff while disconnected, with jitter so that many nodes
// restarted together do not dial in lockstep.
constexpr auto kBootstrapInitialBackoff = std::chrono::seconds(1);
constexpr auto kBootstrapMaxBackoff = std::chrono::seconds(60);
// Peers out of their grace period are trimmed on this beat too, not only when another connects.
constexpr auto kTrimCheckInterval = std::chrono::seconds(10);
// go's relay tags the peers it holds a slot for: the trim keeps them over idle peers.
constexpr std::int64_t kRelayReservationTagValue = 10;

std::string join_addresses(const std::vector<Multiaddr>& addresses) {
  std::string joined;
  for (const auto& address : addresses)
    joined += (joined.empty() ? "" : ", ") + address.to_string();
  return joined.empty() ? "none" : joined;
}

P2pLogLevel discovery_log_level(p2p::daan::DiscoveryLogLevel level) {
  switch (level) {
    case p2p::daan::DiscoveryLogLevel::kInfo:
      return P2pLogLevel::kInfo;
    case p2p::daan::DiscoveryLogLevel::kWarn:
      return P2pLogLevel::kWarn;
    case p2p::daan::DiscoveryLogLevel::kDebug:
      break;
  }
  return P2pLogLevel::kDebug;
}

}  // namespace

P2pNode::P2pNode(asio::io_context& io, P2pConfig config) : io_(io), config_(std::move(config)) {}

P2pNode::~P2pNode() {
  lifetime_.end();
  context_.relay_service.reset();
  context_.relay_client.reset();
  context_.discovery.reset();
  context_.dht.reset();
  context_.pubsub.reset();
  context_.messenger.reset();
  context_.host.reset();
  context_.connection_manager.reset();
  context_.resources.reset();
}

Expected<std::unique_ptr<P2pNode>> P2pNode::start(asio::io_context& io, Identity identity,
                                                  P2pConfig config) {
  std::unique_ptr<P2pNode> node(new P2pNode(io, std::move(config)));
  if (auto assembled = node->assemble(std::move(identity)); !assembled) {
    return tl::unexpected(assembled.error());
  }
  node->start_services();
  return node;
}

void P2pNode::log_peer_misbehaviour(std::string_view line) {
  // Bad frames and refused streams are worth an operator's eye, but a peer can make any number
  // of them: a few lines per window, then one line saying how many were left out.
  const auto now = std::chrono::steady_clock::now();
  if (now - misbehaviour_window_start_ >= kMisbehaviourLogWindow) {
    if (misbehaviour_suppressed_ > 0) {
      log(P2pLogLevel::kInfo,
          std::to_string(misbehaviour_suppressed_) +
              " more lines about refused or malformed /daan or pubsub streams were not logged");
    }
    misbehaviour_window_start_ = now;
    misbehaviour_logged_ = 0;
    misbehaviour_suppressed_ = 0;
  }
  if (misbehaviour_logged_ < kMaxMisbehaviourLinesPerWindow) {
    ++misbehaviour_logged_;
    log(P2pLogLevel::kInfo, std::string(line));
  } else {
    ++misbehaviour_suppressed_;
  }
}

void P2pNode::log(P2pLogLevel level, const std::string& message) const {
  if (config_.log) config_.log(level, message);
}

Expected<void> P2pNode::assemble(Identity identity) {
  auto noise_static = p2p::noise::X25519KeyPair::generate();
  if (!noise_static) return tl::unexpected(noise_static.error());
  p2p::net::LocalIdentity local{std::move(identity.key), std::move(identity.peer_id),
                                std::move(*noise_static)};
  local.security_protocols = config_.security_protocols;
  local.muxers = config_.muxers;
  if (auto usable = p2p::net::validate_upgrade_protocols(local); !usable) return usable;

  context_.resources = std::make_shared<p2p::rcmgr::ResourceManager>(config_.resource_limits);
  context_.resources->on_refusal(lifetime_.guard([this](const p2p::rcmgr::RefusalReport& report) {
    // One line per limit and interval (the manager counts the rest), so that a flood is visible
    // without flooding the log.
    log(P2pLogLevel::kWarn,
        "resource limit reached: " + report.key + " (" + std::to_string(report.count) +
            (report.count == 1 ? " refusal" : " refusals since the last report") +
            "; agentnetwork resources shows the limits)");
  }));
  context_.connection_manager =
      std::make_unique<p2p::connmgr::ConnectionManager>(config_.connection_limits);
  p2p::net::HostConfig host_config;
  host_config.agent_version = config_.agent_version;
  host_config.resources = context_.resources;
  context_.host = std::make_unique<p2p::net::Host>(io_, std::move(local), host_config);
  connections_changed_ = std::make_unique<p2p::net::Signal>(io_.get_executor());
  stop_requested_ = std::make_unique<p2p::net::Signal>(io_.get_executor());

  std::vector<Multiaddr> bound;
  for (const auto& address : config_.listen) {
    auto listening = context_.host->listen(address);
    if (!listening) return tl::unexpected(listening.error());
    bound.push_back(*listening);
  }
  direct_addresses_ = config_.announce.empty() ? expand_unspecified(bound) : config_.announce;
  context_.host->set_advertised_addresses(direct_addresses_);

  if (config_.daan_sink != nullptr) {
    context_.messenger = std::make_unique<p2p::daan::Messenger>(*context_.host, config_.daan_limits,
                                                                *config_.daan_sink);
    context_.messenger->set_log(
        lifetime_.guard([this](std::string_view line) { log_peer_misbehaviour(line); }));
  }

  if (config_.pubsub) {
    p2p::pubsub::PubSubConfig pubsub_config = *config_.pubsub;
    // As the DHT's: peer exchange dials only below the low-water mark, so that no trimmed peer
    // is redialled.
    pubsub_config.px_connection_target = config_.connection_limits.low_water;
    context_.pubsub = std::make_unique<p2p::pubsub::PubSub>(
        *context_.host, context_.host->identity().key, std::move(pubsub_config));
    context_.pubsub->set_log(
        lifetime_.guard([this](std::string_view line) { log_peer_misbehaviour(line); }));
  }

  if (config_.dht) {
    p2p::kad::DhtConfig dht_config;
    dht_config.mode = *config_.dht;
    dht_config.connection_target = config_.connection_limits.low_water;
    context_.dht = std::make_unique<p2p::kad::Dht>(*context_.host, io_.get_executor(), dht_config);
    if (config_.daan_discovery) {
      p2p::daan::DiscoveryConfig discovery_config = *config_.daan_discovery;
      // As the DHT's: below the low-water mark only, so that no trimmed peer is redialled.
      discovery_config.connection_target = config_.connection_limits.low_water;
      if (!discovery_config.log) {
        discovery_config.log =
            lifetime_.guard([this](p2p::daan::DiscoveryLogLevel level, const std::string& message) {
              log(discovery_log_level(level), "discovery: " + message);
            });
      }
      context_.discovery = std::make_unique<p2p::daan::Discovery>(*context_.host, *context_.dht,
                                                                  std::move(discovery_config));
    }
  }
  if (config_.relay_client) {
    context_.relay_client = std::make_unique<p2p::relay::RelayClient>(*context_.host);
  }
  if (config_.relay_service) {
    context_.relay_service =
        std::make_unique<p2p::relay::RelayService>(*context_.host, *config_.relay_service);
  }
  return {};
}

void P2pNode::start_services() {
  auto& host = *context_.host;
  host.on_connection(lifetime_.guard(
      [this](const p2p::net::ConnectionEvent& event) { on_connection_event(event); }));
  host.on_inbound_failure(
      lifetime_.guard([this](const Multiaddr& remote, const std::string& reason) {
        const auto& parts = remote.components();
        std::string where =
            parts.size() == 2 ? parts[0].value + ":" + parts[1].value : remote.to_string();
        log(P2pLogLevel::kDebug, "closing inbound connection from " + where + ": " + reason);
      }));
  host.on_peer_identified(
      lifetime_.guard([this](const PeerId& peer, const p2p::net::PeerInfo& info) {
        if (peers_changed_) peers_changed_();
        maybe_reserve_on(peer, info);
      }));
  // Before any connection exists, so that identify advertises the DHT protocol from the first.
  if (context_.messenger) context_.messenger->start();
  if (context_.pubsub) context_.pubsub->start();
  if (context_.dht) context_.dht->start();
  // Its first attempts find no DHT peer; it retries as peers are identified.
  if (context_.discovery) context_.discovery->start();
  if (context_.relay_client) {
    context_.relay_client->on_addresses_changed(lifetime_.guard(
        [this](const std::vector<Multiaddr>& relayed) { relayed_addresses_changed(relayed); }));
    context_.relay_client->start();
  }
  if (context_.relay_service) {
    context_.relay_service->on_reservation(lifetime_.guard([this](const PeerId& peer, bool active) {
      if (active) {
        context_.connection_manager->set_tag(peer, "relay-reservation", kRelayReservationTagValue);
      } else {
        context_.connection_manager->remove_tag(peer, "relay-reservation");
      }
      log(P2pLogLevel::kDebug,
          "relay reservation of " + peer.to_string() + " " + (active ? "held" : "ended"));
    }));
    context_.relay_service->start();
    const auto& limits = *config_.relay_service;
    const auto duration = limits.circuit_limit ? limits.circuit_limit->duration.count() : 0;
    const auto bytes = limits.circuit_limit ? limits.circuit_limit->data_bytes : 0;
    log(P2pLogLevel::kInfo, "relay service on: at most " + std::to_string(limits.max_reservations) +
                                " reservations, circuits limited to " + std::to_string(duration) +
                                " s and " + std::to_string(bytes) +
                                " bytes per direction (0: no limit)");
  }

  for (const auto& address : config_.bootstrap) {
    auto peer = PeerId::parse(address.peer_id_component().value_or(""));
    if (!peer) continue;  // validated by the caller
    bootstrap_peers_.insert(*peer);
    context_.connection_manager->protect(*peer, "bootstrap");
    context_.resources->allow_peer(*peer);
    context_.host->peer_store().pin(*peer, "bootstrap");
    asio::co_spawn(io_, keep_bootstrap_connected(address, *peer), p2p::net::report_exception);
  }
  for (const auto& address : config_.static_relays)
    keep_relay(address, "static relay");
  if (config_.trim_connections) schedule_trim();
}

bool P2pNode::stop() {
  if (stopping_) return false;
  stopping_ = true;
  connections_changed_->notify();
  stop_requested_->notify();
  if (trim_timer_) trim_timer_->cancel();
  if (context_.messenger) context_.messenger->stop();
  if (context_.pubsub) context_.pubsub->stop();
  // Before the DHT, so that no renewal or lookup starts on a stopped DHT.
  if (context_.discovery) context_.discovery->stop();
  if (context_.dht) context_.dht->stop();
  if (context_.relay_client) {
    for (const auto& relay : kept_relays_)
      context_.relay_client->stop_keeping(relay);
  }
  const bool had_peers = !context_.host->connected_peers().empty();
  context_.host->close();
  return had_peers;
}

const std::vector<Multiaddr>& P2pNode::advertised_addresses() const {
  return context_.host->advertised_addresses();
}

void P2pNode::on_connection_event(const p2p::net::ConnectionEvent& event) {
  // Bootstrap peers are few and matter to the operator; other peers' comings and goings are
  // per-peer chatter.
  const auto level = is_bootstrap_peer(event.peer) ? P2pLogLevel::kInfo : P2pLogLevel::kDebug;
  if (event.connected) {
    log(level,
        "peer connected: " + event.peer.to_string() + " (" +
            (event.direction == p2p::net::Direction::kInbound ? "inbound from " : "outbound to ") +
            event.remote_address.to_string() + ")");
    context_.connection_manager->connected(event.peer,
                                           event.direction == p2p::net::Direction::kInbound
                                               ? p2p::connmgr::PeerDirection::kInbound
                                               : p2p::connmgr::PeerDirection::kOutbound,
                                           std::chrono::steady_clock::now());
    trim_connections();
  } else {
    log(level, "peer disconnected: " + event.peer.to_string() + " (" + event.reason + ")");
    context_.connection_manager->disconnected(event.peer);
  }
  if (peers_changed_) peers_changed_();
  connections_changed_->notify();
}

void P2pNode::trim_connections() {
  if (stopping_ || !config_.trim_connections) return;
  auto& manager = *context_.connection_manager;
  auto excess = manager.select_for_trim(std::chrono::steady_clock::now());
  if (excess.empty()) return;
  log(P2pLogLevel::kInfo, std::to_string(manager.peer_count()) +
                              " peers connected, over the high-water mark of " +
                              std::to_string(manager.limits().high_water) + ": closing " +
                              std::to_string(excess.size()) + " connections");
  for (const auto& peer : excess)
    context_.host->disconnect(peer);
}

void P2pNode::schedule_trim() {
  if (!trim_timer_) trim_timer_ = std::make_unique<asio::steady_timer>(io_);
  trim_timer_->expires_after(kTrimCheckInterval);
  trim_timer_->async_wait(lifetime_.guard([this](const std::error_code& ec) {
    if (ec || stopping_) return;
    trim_connections();
    schedule_trim();
  }));
}

void P2pNode::keep_relay(const Multiaddr& relay_address, const char* why) {
  if (!context_.relay_client) return;
  auto peer = PeerId::parse(relay_address.peer_id_component().value_or(""));
  if (!peer || !kept_relays_.insert(*peer).second) return;
  // The relay carries our reachability: never trimmed nor forgotten while we use it, and
  // allowed past full limits.
  context_.connection_manager->protect(*peer, "relay");
  context_.host->peer_store().pin(*peer, "relay");
  context_.resources->allow_peer(*peer);
  log(P2pLogLevel::kInfo,
      "reserving a relay slot on " + relay_address.to_string() + " (" + why + ")");
  context_.relay_client->keep_reservation(relay_address);
}

void P2pNode::maybe_reserve_on(const PeerId& peer, const p2p::net::PeerInfo& info) {
  // A node that peers cannot dial (no listen address) and that was given no relay makes its
  // bootstrap peers its relays when they offer the hop protocol, so that it is reachable.
  if (stopping_ || !config_.reserve_on_bootstrap_relays || !direct_addresses_.empty() ||
      !config_.static_relays.empty()) {
    return;
  }
  if (!is_bootstrap_peer(peer) || kept_relays_.count(peer) > 0) return;
  const auto hop = std::string(p2p::relay::kHopProtocolId);
  if (std::find(info.protocols.begin(), info.protocols.end(), hop) == info.protocols.end()) return;
  for (const auto& address : config_.bootstrap) {
    if (address.peer_id_component() == peer.to_string()) {
      keep_relay(address, "bootstrap peer offering the relay service");
      return;
    }
  }
}

void P2pNode::relayed_addresses_changed(const std::vector<Multiaddr>& relayed) {
  if (stopping_) return;
  std::vector<Multiaddr> advertised = direct_addresses_;
  // Identify carries addresses without our own /p2p/ part.
  for (const auto& address : relayed)
    advertised.push_back(address.without_p2p());
  context_.host->set_advertised_addresses(advertised);
  log(P2pLogLevel::kInfo, "relayed addresses: " + join_addresses(relayed));
  if (addresses_changed_) addresses_changed_();
}

asio::awaitable<void> P2pNode::keep_bootstrap_connected(Multiaddr address, PeerId peer) {
  auto alive = lifetime_.token();
  auto backoff = std::chrono::duration_cast<std::chrono::milliseconds>(kBootstrapInitialBackoff);
  std::uint32_t jitter_state =
      static_cast<std::uint32_t>(daemon::current_process_id()) ^
      static_cast<std::uint32_t>(std::hash<std::string>{}(address.to_string()));
  while (alive && !stopping_) {
    if (context_.host->connection_to(peer)) {
      // Connected: wait for a change, then look again.
      co_await connections_changed_->wait();
      backoff = std::chrono::duration_cast<std::chrono::milliseconds>(kBootstrapInitialBackoff);
      continue;
    }
    using namespace asio::experimental::awaitable_operators;
    auto attempt = co_await (context_.host->connect(address) || stop_requested_->wait());
    if (!alive || stopping_ || attempt.index() == 1) break;
    auto& connected = std::get<0>(attempt);
    if (connected) {
      backoff = std::chrono::duration_cast<std::chrono::milliseconds>(kBootstrapInitialBackoff);
      continue;
    }
    log(P2pLogLevel::kWarn, "bootstrap peer " + address.to_string() + ": " +
                                connected.error().message + " (retrying in " +
                                std::to_string(backoff.count()) + " ms)");
    jitter_state = jitter_state * 1664525u + 1013904223u;
    auto jitter = std::chrono::milliseconds(backoff.count() / 5 * (jitter_state % 100) / 100);
    co_await connections_changed_->wait_until(std::chrono::steady_clock::now() + backoff + jitter);
    backoff = std::min(backoff * 2,
                       std::chrono::duration_cast<std::chrono::milliseconds>(kBootstrapMaxBackoff));
  }
}

}  // namespace an::node
