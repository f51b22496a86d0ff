#include "node/node.h"

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <set>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "daemon/control.h"
#include "daemon/log_file.h"
#include "daemon/log_sink.h"
#include "daemon/paths.h"
#include "daemon/status_file.h"
#include "node/identity.h"
#include "node/listen_addresses.h"
#include "node/p2pd_server.h"
#include "p2p/connmgr/connection_manager.h"
#include "p2p/kad/io/dht.h"
#include "p2p/net/host.h"
#include "p2p/relay/io/relay_client.h"
#include "p2p/relay/io/relay_service.h"
#include "rpc/control_server.h"
#include "rpc/endpoint.h"
#include "util/version.h"

namespace an::node {
namespace {

// How often the status file is rewritten even when nothing changed (readers judge staleness by
// updated_at), and how often raw stdout/stderr growth is checked against the size limit.
constexpr auto kStatusInterval = std::chrono::seconds(10);
constexpr auto kRotationCheckInterval = std::chrono::seconds(1);
// Peer changes come in bursts (connect, identify, a bootstrap wave): the status file is written
// once per burst, at most this long after the change.
constexpr auto kStatusWriteDelay = std::chrono::milliseconds(200);

// Bootstrap redial: exponential backoff while disconnected, with jitter so that many nodes
// restarted together do not dial in lockstep.
constexpr auto kBootstrapInitialBackoff = std::chrono::seconds(1);
constexpr auto kBootstrapMaxBackoff = std::chrono::seconds(60);
constexpr auto kShutdownGrace = std::chrono::milliseconds(100);

// AGENTNETWORK_LOG_LEVEL (trace, debug, info, warn, error) sets the log level, like
// GOLOG_LOG_LEVEL does for go-libp2p nodes. Returns a warning for an unknown value.
std::string apply_log_level_from_environment(spdlog::logger& logger) {
  logger.set_level(spdlog::level::info);
  const char* value = std::getenv("AGENTNETWORK_LOG_LEVEL");
  if (value == nullptr || value[0] == '\0') return {};
  auto level = spdlog::level::from_str(value);
  // from_str answers "off" for anything it does not know; only an explicit "off" means off.
  if (level == spdlog::level::off && std::string_view(value) != "off") {
    return std::string("ignoring AGENTNETWORK_LOG_LEVEL=") + value +
           " (expected trace, debug, info, warn, error or off)";
  }
  logger.set_level(level);
  return {};
}

class NodeProcess {
 public:
  explicit NodeProcess(NodeLaunch launch)
      : launch_(std::move(launch)), paths_(launch_.options.data_dir) {}

  int run();

 private:
  int fail_start(const std::string& reason, daemon::ProcessId running_pid = 0);
  void write_status();
  void request_status_write();
  void schedule_status();
  void schedule_rotation_check();
  void wait_for_signals();
  void shutdown_requested(const char* reason);
  void shutdown();
  Expected<void> start_control_api();
  void stop_io_when_quiet();
  void on_connection_event(const p2p::net::ConnectionEvent& event);
  void trim_connections();
  void refresh_peers();
  void start_relay(const p2p::Multiaddr& relay_address, const char* why);
  void relayed_addresses_changed(const std::vector<p2p::Multiaddr>& relayed);
  void maybe_reserve_on(const p2p::PeerId& peer, const p2p::net::PeerInfo& info);
  asio::awaitable<void> keep_bootstrap_connected(p2p::Multiaddr address, p2p::PeerId peer);

  NodeLaunch launch_;
  daemon::DataPaths paths_;
  std::shared_ptr<daemon::RotatingLogFile> log_file_;
  std::shared_ptr<spdlog::logger> logger_;
  asio::io_context io_;
  std::unique_ptr<p2p::net::Host> host_;
  std::unique_ptr<p2p::kad::Dht> dht_;
  std::unique_ptr<p2p::relay::RelayService> relay_service_;
  std::unique_ptr<p2p::relay::RelayClient> relay_client_;
  // Direct listen addresses (without /p2p/), and the relays whose reservation we keep.
  std::vector<p2p::Multiaddr> direct_addresses_;
  std::set<p2p::PeerId> kept_relays_;
  std::unique_ptr<rpc::ControlServer> control_server_;
  std::unique_ptr<P2pdServer> p2pd_server_;
  // Both must be true before the io_context stops: the connections' grace period is over, and
  // the control API has answered (or abandoned) every call posted to the network thread.
  bool grace_elapsed_ = false;
  bool control_api_stopped_ = false;
  std::set<p2p::PeerId> bootstrap_peers_;
  std::unique_ptr<p2p::connmgr::ConnectionManager> connection_manager_;
  // Wakes bootstrap dialers when peers come and go, and at shutdown.
  std::unique_ptr<p2p::net::Signal> peers_changed_;
  std::unique_ptr<p2p::net::Signal> stop_requested_;
  std::unique_ptr<asio::steady_timer> shutdown_grace_;
  daemon::NodeStatus status_;
  std::unique_ptr<asio::steady_timer> status_timer_;
  std::unique_ptr<asio::steady_timer> status_write_timer_;
  bool status_write_pending_ = false;
  std::unique_ptr<asio::steady_timer> rotation_timer_;
  std::unique_ptr<asio::signal_set> signals_;
  std::unique_ptr<daemon::StopRequestListener> stop_listener_;
  bool stopping_ = false;
};

int NodeProcess::fail_start(const std::string& reason, daemon::ProcessId running_pid) {
  if (logger_) {
    logger_->error("start failed: {}", reason);
    logger_->flush();
  } else if (!launch_.detached) {
    std::fprintf(stderr, "error: %s\n", reason.c_str());
  }
  if (launch_.ready) {
    ReadyReport report;
    report.ok = false;
    report.error = reason;
    report.running_pid = running_pid;
    launch_.ready->send_and_close(encode_ready_report(report));
  }
  return 1;
}

int NodeProcess::run() {
  const auto& options = launch_.options;
  if (auto made = daemon::make_directory(paths_.data_dir, false); !made) {
    return fail_start(made.error().message);
  }
  daemon::ProcessId running_pid = 0;
  auto lock = daemon::acquire_node_lock(paths_, running_pid);
  if (!lock) return fail_start(lock.error().message, running_pid);

  if (auto made = daemon::make_directory(paths_.logs_dir, false); !made) {
    return fail_start(made.error().message);
  }
  daemon::LogFileOptions log_options;
  log_options.logs_dir = paths_.logs_dir;
  log_options.max_bytes = daemon::log_size_limit_bytes(options.log_max_size_mb);
  log_options.max_files = options.log_max_files;
  log_options.capture_stdio = launch_.detached;
  auto log_file = daemon::RotatingLogFile::open(log_options);
  if (!log_file) return fail_start(log_file.error().message);
  log_file_ = *log_file;
  logger_ = daemon::make_node_logger(log_file_, !launch_.detached);
  std::string level_warning = apply_log_level_from_environment(*logger_);
  if (!level_warning.empty()) logger_->warn("{}", level_warning);
  daemon::install_crash_reporter();
  daemon::ignore_broken_pipe_signal();

  const auto pid = daemon::current_process_id();
  const auto dht_mode =
      dht_server_mode(options) ? p2p::kad::DhtMode::kServer : p2p::kad::DhtMode::kClient;
  logger_->info("agentnetwork {} starting: pid {}, data dir {}, role {}, DHT {} mode", kVersion,
                pid, paths_.data_dir.string(), role_name(options.role),
                p2p::kad::dht_mode_name(dht_mode));

  auto identity = launch_.detached
                      ? load_identity(effective_key_file(options))
                      : load_or_create_identity(effective_key_file(options)).map([](auto pair) {
                          return std::move(pair.first);
                        });
  if (!identity) return fail_start(identity.error().message);
  const std::string peer_id = identity->peer_id.to_string();
  logger_->info("node ID {}", peer_id);

  auto noise_static = p2p::noise::X25519KeyPair::generate();
  if (!noise_static) return fail_start(noise_static.error().message);
  p2p::net::HostConfig host_config;
  host_config.agent_version = std::string("agentnetwork/") + kVersion;
  p2p::net::LocalIdentity local{identity->key, identity->peer_id, std::move(*noise_static)};
  local.security_protocols = security_protocol_ids(options);
  local.muxers = muxer_protocol_ids(options);
  if (auto usable = p2p::net::validate_upgrade_protocols(local); !usable) {
    return fail_start(usable.error().message);
  }
  if (plaintext_enabled(options)) {
    logger_->warn(
        "INSECURE: -security includes plaintext: connections using /plaintext/2.0.0 are neither "
        "encrypted nor authenticated; use it for tests only");
  }
  host_ = std::make_unique<p2p::net::Host>(io_, std::move(local), host_config);
  peers_changed_ = std::make_unique<p2p::net::Signal>(io_.get_executor());
  stop_requested_ = std::make_unique<p2p::net::Signal>(io_.get_executor());
  for (const auto& text : options.listen) {
    auto address = p2p::Multiaddr::parse(text);
    if (!address) return fail_start(address.error().message);
    auto bound = host_->listen(*address);
    if (!bound) return fail_start(bound.error().message);
  }
  auto advertised = expand_unspecified(host_->listen_addresses());
  host_->set_advertised_addresses(advertised);
  direct_addresses_ = advertised;
  p2p::connmgr::Limits connection_limits;
  connection_limits.low_water = static_cast<std::size_t>(options.conn_low_water);
  connection_limits.high_water = static_cast<std::size_t>(options.conn_high_water);
  connection_limits.grace_period =
      std::chrono::milliseconds(static_cast<long long>(options.conn_grace_seconds * 1000));
  connection_manager_ = std::make_unique<p2p::connmgr::ConnectionManager>(connection_limits);
  host_->on_connection(
      [this](const p2p::net::ConnectionEvent& event) { on_connection_event(event); });
  host_->on_inbound_failure([this](const p2p::Multiaddr& remote, const std::string& reason) {
    // Per-peer chatter stays at debug level, so that a peer cannot flood the log.
    const auto& parts = remote.components();
    std::string where =
        parts.size() == 2 ? parts[0].value + ":" + parts[1].value : remote.to_string();
    logger_->debug("closing inbound connection from {}: {}", where, reason);
  });
  host_->on_peer_identified([this](const p2p::PeerId& peer, const p2p::net::PeerInfo& info) {
    refresh_peers();
    request_status_write();
    maybe_reserve_on(peer, info);
  });
  // Before any connection exists, so that identify advertises the DHT protocol from the first.
  p2p::kad::DhtConfig dht_config;
  dht_config.mode = dht_mode;
  dht_config.connection_target = static_cast<std::size_t>(options.conn_low_water);
  dht_ = std::make_unique<p2p::kad::Dht>(*host_, io_.get_executor(), dht_config);
  dht_->start();
  // Every node is a relay client: it accepts connections relayed to it (the stop protocol)
  // and dials circuit addresses.
  relay_client_ = std::make_unique<p2p::relay::RelayClient>(*host_);
  relay_client_->on_addresses_changed(
      [this](const std::vector<p2p::Multiaddr>& relayed) { relayed_addresses_changed(relayed); });
  relay_client_->start();
  if (options.role != Role::kNormal) {
    p2p::relay::RelayLimits relay_limits;
    relay_limits.max_reservations = static_cast<std::size_t>(options.relay_max_reservations);
    if (options.relay_circuit_duration_seconds == 0 && options.relay_circuit_bytes == 0) {
      relay_limits.circuit_limit.reset();
    } else {
      relay_limits.circuit_limit =
          p2p::relay::CircuitLimit{std::chrono::seconds(options.relay_circuit_duration_seconds),
                                   static_cast<std::uint64_t>(options.relay_circuit_bytes)};
    }
    relay_service_ = std::make_unique<p2p::relay::RelayService>(*host_, relay_limits);
    relay_service_->on_reservation([this](const p2p::PeerId& peer, bool active) {
      // go's relay tags the peers it holds a slot for: the trim keeps them over idle peers.
      if (active) {
        connection_manager_->set_tag(peer, "relay-reservation", 10);
      } else {
        connection_manager_->remove_tag(peer, "relay-reservation");
      }
      logger_->debug("relay reservation of {} {}", peer.to_string(), active ? "held" : "ended");
    });
    relay_service_->start();
    logger_->info(
        "relay service on: at most {} reservations, circuits limited to {} s and {} "
        "bytes per direction (0: no limit)",
        options.relay_max_reservations, options.relay_circuit_duration_seconds,
        options.relay_circuit_bytes);
  }

  status_.running = true;
  status_.pid = pid;
  status_.start_time = std::chrono::system_clock::now();
  status_.node_id = peer_id;
  status_.version = kVersion;
  status_.role = std::string(role_name(options.role));
  for (const auto& address : advertised) {
    status_.listen_addrs.push_back(address.to_string() + "/p2p/" + peer_id);
  }
  status_.peer_count = 0;
  status_.data_dir = paths_.data_dir.string();
  status_.log_file = paths_.log_file.string();
  status_.pid_file = paths_.pid_file.string();
  status_.launch_args = launch_.launch_args;

  if (auto started = start_control_api(); !started) return fail_start(started.error().message);
  status_.grpc = control_server_->endpoint();
  logger_->info("control API on {}", status_.grpc);

  if (!options.p2pd_listen.empty()) {
    P2pdServerConfig p2pd_config;
    p2pd_config.listen = options.p2pd_listen;
    p2pd_config.dht = dht_.get();
    p2pd_config.connection_manager = connection_manager_.get();
    auto p2pd = P2pdServer::start(*host_, std::move(p2pd_config));
    if (!p2pd) return fail_start(p2pd.error().message);
    p2pd_server_ = std::move(*p2pd);
    logger_->info("p2pd control protocol on {}", p2pd_server_->listen_address());
  }

  if (auto written = daemon::write_pid_file(paths_.pid_file, pid); !written) {
    return fail_start(written.error().message);
  }
  status_.updated_at = std::chrono::system_clock::now();
  if (auto written = daemon::write_status_file(paths_.status_file, status_); !written) {
    std::error_code ignored;
    std::filesystem::remove(paths_.pid_file, ignored);
    return fail_start(written.error().message);
  }

  for (const auto& text : options.bootstrap) {
    auto address = p2p::Multiaddr::parse(text);
    auto peer = address ? p2p::PeerId::parse(address->peer_id_component().value_or(""))
                        : p2p::PeerId::parse("");
    if (!address || !peer) continue;  // validated before start
    bootstrap_peers_.insert(*peer);
    connection_manager_->protect(*peer, "bootstrap");
    asio::co_spawn(io_, keep_bootstrap_connected(*address, *peer), p2p::net::report_exception);
  }
  for (const auto& text : options.static_relays) {
    auto address = p2p::Multiaddr::parse(text);
    if (address) start_relay(*address, "static relay");  // validated before start
  }
  wait_for_signals();
  schedule_status();
  schedule_rotation_check();

  for (const auto& address : status_.listen_addrs)
    logger_->info("listening on {}", address);
  logger_->info("node ready");
  if (launch_.ready) {
    ReadyReport report;
    report.ok = true;
    report.pid = pid;
    report.node_id = peer_id;
    report.listen_addrs = status_.listen_addrs;
    report.log_file = paths_.log_file.string();
    launch_.ready->send_and_close(encode_ready_report(report));
    launch_.ready.reset();
  }
  daemon::notify_service_manager("READY=1\nMAINPID=" + std::to_string(pid));

  io_.run();

  shutdown();
  return 0;
}

void NodeProcess::write_status() {
  status_.updated_at = std::chrono::system_clock::now();
  if (auto written = daemon::write_status_file(paths_.status_file, status_); !written) {
    logger_->warn("cannot write status: {}", written.error().message);
  }
}

void NodeProcess::request_status_write() {
  if (stopping_ || status_write_pending_) return;
  status_write_pending_ = true;
  if (!status_write_timer_) status_write_timer_ = std::make_unique<asio::steady_timer>(io_);
  status_write_timer_->expires_after(kStatusWriteDelay);
  status_write_timer_->async_wait([this](const std::error_code& ec) {
    status_write_pending_ = false;
    if (ec || stopping_) return;
    write_status();
  });
}

void NodeProcess::schedule_status() {
  if (!status_timer_) status_timer_ = std::make_unique<asio::steady_timer>(io_);
  status_timer_->expires_after(kStatusInterval);
  status_timer_->async_wait([this](const std::error_code& ec) {
    if (ec || stopping_) return;
    write_status();
    // Peers out of their grace period are trimmed here too, not only when another connects.
    trim_connections();
    schedule_status();
  });
}

void NodeProcess::schedule_rotation_check() {
  if (!rotation_timer_) rotation_timer_ = std::make_unique<asio::steady_timer>(io_);
  rotation_timer_->expires_after(kRotationCheckInterval);
  rotation_timer_->async_wait([this](const std::error_code& ec) {
    if (ec || stopping_) return;
    log_file_->check_rotation();
    schedule_rotation_check();
  });
}

void NodeProcess::wait_for_signals() {
  if (!signals_) {
    signals_ = std::make_unique<asio::signal_set>(io_, SIGINT, SIGTERM);
#if defined(SIGHUP)
    signals_->add(SIGHUP);
#endif
    auto listener = daemon::StopRequestListener::start(
        [this] { asio::post(io_, [this] { shutdown_requested("stop request"); }); });
    if (listener) stop_listener_ = std::move(*listener);
  }
  signals_->async_wait([this](const std::error_code& ec, int signal_number) {
    if (ec) return;
#if defined(SIGHUP)
    if (signal_number == SIGHUP) {
      // Logged after the reopen, so that the line lands in the new file.
      if (auto reopened = log_file_->reopen(); !reopened) {
        logger_->error("SIGHUP: cannot reopen the log file: {}", reopened.error().message);
      } else {
        logger_->info("SIGHUP: log file reopened");
      }
      wait_for_signals();
      return;
    }
#endif
    shutdown_requested(signal_number == SIGINT ? "SIGINT" : "SIGTERM");
  });
}

void NodeProcess::shutdown_requested(const char* reason) {
  if (stopping_) return;
  stopping_ = true;
  logger_->info("{}: shutting down", reason);
  daemon::notify_service_manager("STOPPING=1");
  std::error_code ignored;
  if (peers_changed_) peers_changed_->notify();
  if (stop_requested_) stop_requested_->notify();
  if (p2pd_server_) p2pd_server_->stop();
  if (dht_) dht_->stop();
  if (relay_client_) {
    for (const auto& relay : kept_relays_)
      relay_client_->stop_keeping(relay);
  }
  bool had_peers = host_ && !host_->connected_peers().empty();
  if (host_) host_->close();
  // Connections get a moment to put their GoAway on the wire; handshakes still in progress
  // are abandoned (io_context::stop), so a stalled peer cannot delay the stop.
  shutdown_grace_ = std::make_unique<asio::steady_timer>(io_, kShutdownGrace);
  if (!had_peers) shutdown_grace_->expires_after(std::chrono::milliseconds(0));
  shutdown_grace_->async_wait([this](const std::error_code&) {
    grace_elapsed_ = true;
    stop_io_when_quiet();
  });
  if (control_server_) {
    control_server_->stop([this] {
      control_api_stopped_ = true;
      stop_io_when_quiet();
    });
  } else {
    control_api_stopped_ = true;
  }
  if (status_timer_) status_timer_->cancel();
  if (status_write_timer_) status_write_timer_->cancel();
  if (rotation_timer_) rotation_timer_->cancel();
  if (signals_) signals_->cancel(ignored);
  stop_listener_.reset();
}

Expected<void> NodeProcess::start_control_api() {
  const auto& options = launch_.options;
  rpc::ControlServerConfig config;
  config.endpoint = rpc::choose_endpoint(paths_, options.grpc);
  if (config.endpoint.requires_token) {
    auto token = rpc::load_or_create_token(paths_.api_token);
    if (!token) return tl::unexpected(token.error());
    config.token = std::move(*token);
  }
  config.facts.version = kVersion;
  config.facts.agent_version = std::string("agentnetwork/") + kVersion;
  config.facts.role = status_.role;
  config.facts.pid = status_.pid;
  config.facts.start_time = status_.start_time;
  config.facts.listen_addrs = status_.listen_addrs;
  config.facts.data_dir = status_.data_dir;
  config.facts.log_file = status_.log_file;
  config.request_shutdown = [this] { shutdown_requested("Shutdown call"); };
  config.dht = dht_.get();
  auto server = rpc::ControlServer::start(io_, *host_, std::move(config));
  if (!server) return tl::unexpected(server.error());
  control_server_ = std::move(*server);
  return {};
}

void NodeProcess::stop_io_when_quiet() {
  if (grace_elapsed_ && control_api_stopped_) io_.stop();
}

void NodeProcess::trim_connections() {
  if (stopping_) return;
  auto excess = connection_manager_->select_for_trim(std::chrono::steady_clock::now());
  if (excess.empty()) return;
  logger_->info("{} peers connected, over the high-water mark of {}: closing {} connections",
                connection_manager_->peer_count(), connection_manager_->limits().high_water,
                excess.size());
  for (const auto& peer : excess)
    host_->disconnect(peer);
}

void NodeProcess::refresh_peers() {
  status_.peers.clear();
  for (const auto& peer : host_->connected_peers()) {
    auto connection = host_->connection_to(peer);
    daemon::PeerSummary summary;
    summary.peer_id = peer.to_string();
    if (connection) {
      summary.address = connection->remote_address().to_string();
      summary.direction =
          connection->direction() == p2p::net::Direction::kInbound ? "inbound" : "outbound";
    }
    if (const auto* info = host_->peer_info(peer)) summary.agent_version = info->agent_version;
    status_.peers.push_back(std::move(summary));
  }
  status_.peer_count = status_.peers.size();
}

void NodeProcess::start_relay(const p2p::Multiaddr& relay_address, const char* why) {
  auto peer_text = relay_address.peer_id_component();
  auto peer = p2p::PeerId::parse(peer_text.value_or(""));
  if (!peer || !kept_relays_.insert(*peer).second) return;
  // The relay carries our reachability: never trimmed while we use it.
  connection_manager_->protect(*peer, "relay");
  logger_->info("reserving a relay slot on {} ({})", relay_address.to_string(), why);
  relay_client_->keep_reservation(relay_address);
}

void NodeProcess::maybe_reserve_on(const p2p::PeerId& peer, const p2p::net::PeerInfo& info) {
  // A node that peers cannot dial (no listen address) and that was given no relay makes its
  // bootstrap peers its relays when they offer the hop protocol, so that it is reachable.
  if (stopping_ || !direct_addresses_.empty() || !launch_.options.static_relays.empty()) return;
  if (bootstrap_peers_.count(peer) == 0 || kept_relays_.count(peer) > 0) return;
  const auto hop = std::string(p2p::relay::kHopProtocolId);
  if (std::find(info.protocols.begin(), info.protocols.end(), hop) == info.protocols.end()) return;
  for (const auto& text : launch_.options.bootstrap) {
    auto address = p2p::Multiaddr::parse(text);
    if (address && address->peer_id_component() == peer.to_string()) {
      start_relay(*address, "bootstrap peer offering the relay service");
      return;
    }
  }
}

void NodeProcess::relayed_addresses_changed(const std::vector<p2p::Multiaddr>& relayed) {
  if (stopping_) return;
  const std::string self = "/p2p/" + host_->peer_id().to_string();
  std::vector<p2p::Multiaddr> advertised = direct_addresses_;
  std::vector<std::string> listen_addrs;
  for (const auto& address : direct_addresses_)
    listen_addrs.push_back(address.to_string() + self);
  for (const auto& address : relayed) {
    // Identify carries addresses without our own /p2p/ part.
    advertised.push_back(address.without_p2p());
    listen_addrs.push_back(address.to_string());
  }
  host_->set_advertised_addresses(advertised);
  logger_->info(
      "relayed addresses: {}", relayed.empty() ? std::string("none") : [&] {
        std::string joined;
        for (const auto& address : relayed)
          joined += (joined.empty() ? "" : ", ") + address.to_string();
        return joined;
      }());
  status_.listen_addrs = listen_addrs;
  if (control_server_) control_server_->set_listen_addrs(std::move(listen_addrs));
  request_status_write();
}

void NodeProcess::on_connection_event(const p2p::net::ConnectionEvent& event) {
  bool bootstrap = bootstrap_peers_.count(event.peer) > 0;
  auto level = bootstrap ? spdlog::level::info : spdlog::level::debug;
  if (event.connected) {
    logger_->log(level, "peer connected: {} ({} {})", event.peer.to_string(),
                 event.direction == p2p::net::Direction::kInbound ? "inbound from" : "outbound to",
                 event.remote_address.to_string());
  } else {
    logger_->log(level, "peer disconnected: {} ({})", event.peer.to_string(), event.reason);
  }
  if (event.connected) {
    connection_manager_->connected(event.peer,
                                   event.direction == p2p::net::Direction::kInbound
                                       ? p2p::connmgr::PeerDirection::kInbound
                                       : p2p::connmgr::PeerDirection::kOutbound,
                                   std::chrono::steady_clock::now());
    trim_connections();
  } else {
    connection_manager_->disconnected(event.peer);
  }
  refresh_peers();
  request_status_write();
  peers_changed_->notify();
}

asio::awaitable<void> NodeProcess::keep_bootstrap_connected(p2p::Multiaddr address,
                                                            p2p::PeerId peer) {
  auto backoff = std::chrono::duration_cast<std::chrono::milliseconds>(kBootstrapInitialBackoff);
  std::uint32_t jitter_state =
      static_cast<std::uint32_t>(daemon::current_process_id()) ^
      static_cast<std::uint32_t>(std::hash<std::string>{}(address.to_string()));
  while (!stopping_) {
    if (host_->connection_to(peer)) {
      // Connected: wait for a change, then look again.
      co_await peers_changed_->wait();
      backoff = std::chrono::duration_cast<std::chrono::milliseconds>(kBootstrapInitialBackoff);
      continue;
    }
    using namespace asio::experimental::awaitable_operators;
    auto attempt = co_await (host_->connect(address) || stop_requested_->wait());
    if (stopping_ || attempt.index() == 1) break;
    auto& connected = std::get<0>(attempt);
    if (connected) {
      backoff = std::chrono::duration_cast<std::chrono::milliseconds>(kBootstrapInitialBackoff);
      continue;
    }
    logger_->warn("bootstrap peer {}: {} (retrying in {} ms)", address.to_string(),
                  connected.error().message, backoff.count());
    jitter_state = jitter_state * 1664525u + 1013904223u;
    auto jitter = std::chrono::milliseconds(backoff.count() / 5 * (jitter_state % 100) / 100);
    co_await peers_changed_->wait_until(std::chrono::steady_clock::now() + backoff + jitter);
    backoff = std::min(backoff * 2,
                       std::chrono::duration_cast<std::chrono::milliseconds>(kBootstrapMaxBackoff));
  }
}

void NodeProcess::shutdown() {
  logger_->info("node stopped");
  logger_->flush();
  // The PID file goes last: while it exists, tools may take the node for alive. The lock itself
  // is released by the kernel when the process exits.
  std::error_code ignored;
  std::filesystem::remove(paths_.status_file, ignored);
  std::filesystem::remove(paths_.pid_file, ignored);
}

}  // namespace

int run_node(NodeLaunch launch) {
  NodeProcess process(std::move(launch));
  return process.run();
}

std::string encode_ready_report(const ReadyReport& report) {
  nlohmann::json json;
  json["ok"] = report.ok;
  if (report.ok) {
    json["pid"] = report.pid;
    json["node_id"] = report.node_id;
    json["listen_addrs"] = report.listen_addrs;
    json["log_file"] = report.log_file;
  } else {
    json["error"] = report.error;
    if (report.running_pid != 0) json["running_pid"] = report.running_pid;
  }
  return json.dump();
}

ReadyReport decode_ready_report(const std::string& message) {
  ReadyReport report;
  auto json = nlohmann::json::parse(message, nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    report.error =
        message.empty() ? "the node exited before reporting" : "garbled report: " + message;
    return report;
  }
  report.ok = json.value("ok", false);
  report.error = json.value("error", std::string());
  report.pid = json.value("pid", daemon::ProcessId{0});
  report.node_id = json.value("node_id", std::string());
  if (json.contains("listen_addrs") && json["listen_addrs"].is_array()) {
    for (const auto& address : json["listen_addrs"]) {
      if (address.is_string()) report.listen_addrs.push_back(address.get<std::string>());
    }
  }
  report.log_file = json.value("log_file", std::string());
  report.running_pid = json.value("running_pid", daemon::ProcessId{0});
  if (!report.ok && report.error.empty()) report.error = "the node reported a failure";
  return report;
}

}  // namespace an::node
