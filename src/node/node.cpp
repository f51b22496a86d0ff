#include "node/node.h"

#include <asio.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "daemon/control.h"
#include "daemon/log_file.h"
#include "daemon/log_sink.h"
#include "daemon/paths.h"
#include "daemon/status_file.h"
#include "node/identity.h"
#include "node/p2p_node.h"
#include "node/p2pd_server.h"
#include "p2p/daan/io/discovery.h"
#include "rpc/agent_hub.h"
#include "rpc/control_server.h"
#include "rpc/endpoint.h"
#include "store/inbox.h"
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

// The node's start in SPEC §3's stages, each a function: lock the data directory, open the
// logs, open the agents' inbox, start the P2P side, start the APIs, publish the status, report
// ready. A stage that fails
// reports why and the node exits; what earlier stages built is torn down in reverse.
class NodeProcess {
 public:
  explicit NodeProcess(NodeLaunch launch)
      : launch_(std::move(launch)), paths_(launch_.options.data_dir) {}

  int run();

 private:
  Expected<void> lock_data_directory(daemon::ProcessId& running_pid);
  Expected<void> open_logs();
  Expected<void> open_inbox();
  Expected<void> start_p2p();
  Expected<void> start_apis();
  Expected<void> publish_status();
  void report_ready();
  int fail_start(const std::string& reason, daemon::ProcessId running_pid = 0);

  P2pConfig p2p_config() const;
  void log_p2p(P2pLogLevel level, const std::string& message) const;
  void write_status();
  void request_status_write();
  void schedule_status();
  void schedule_rotation_check();
  void wait_for_signals();
  void shutdown_requested(const char* reason);
  void shutdown();
  void stop_io_when_quiet();
  void refresh_peers();
  void addresses_changed();

  NodeLaunch launch_;
  daemon::DataPaths paths_;
  std::optional<daemon::FileLock> lock_;
  std::shared_ptr<daemon::RotatingLogFile> log_file_;
  std::shared_ptr<spdlog::logger> logger_;
  asio::io_context io_;
  // The agents' inbox and the hub that fills it; they outlive the P2P side and the control API
  // that use them.
  std::unique_ptr<store::Inbox> inbox_;
  std::unique_ptr<rpc::AgentHub> agent_hub_;
  std::unique_ptr<P2pNode> p2p_;
  std::unique_ptr<rpc::ControlServer> control_server_;
  std::unique_ptr<P2pdServer> p2pd_server_;
  // Both must be true before the io_context stops: the connections' grace period is over, and
  // the control API has answered (or abandoned) every call posted to the network thread.
  bool grace_elapsed_ = false;
  bool control_api_stopped_ = false;
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
  daemon::ProcessId running_pid = 0;
  if (auto locked = lock_data_directory(running_pid); !locked) {
    return fail_start(locked.error().message, running_pid);
  }
  if (auto opened = open_logs(); !opened) return fail_start(opened.error().message);
  if (auto opened = open_inbox(); !opened) return fail_start(opened.error().message);
  if (auto started = start_p2p(); !started) return fail_start(started.error().message);
  if (auto started = start_apis(); !started) return fail_start(started.error().message);
  if (auto published = publish_status(); !published) {
    return fail_start(published.error().message);
  }
  report_ready();

  io_.run();

  shutdown();
  return 0;
}

Expected<void> NodeProcess::lock_data_directory(daemon::ProcessId& running_pid) {
  if (auto made = daemon::make_directory(paths_.data_dir, false); !made) return made;
  auto lock = daemon::acquire_node_lock(paths_, running_pid);
  if (!lock) return tl::unexpected(lock.error());
  lock_.emplace(std::move(*lock));
  return {};
}

Expected<void> NodeProcess::open_logs() {
  const auto& options = launch_.options;
  if (auto made = daemon::make_directory(paths_.logs_dir, false); !made) return made;
  daemon::LogFileOptions log_options;
  log_options.logs_dir = paths_.logs_dir;
  log_options.max_bytes = daemon::log_size_limit_bytes(options.log_max_size_mb);
  log_options.max_files = options.log_max_files;
  log_options.capture_stdio = launch_.detached;
  auto log_file = daemon::RotatingLogFile::open(log_options);
  if (!log_file) return tl::unexpected(log_file.error());
  log_file_ = *log_file;
  logger_ = daemon::make_node_logger(log_file_, !launch_.detached);
  std::string level_warning = apply_log_level_from_environment(*logger_);
  if (!level_warning.empty()) logger_->warn("{}", level_warning);
  daemon::install_crash_reporter();
  daemon::ignore_broken_pipe_signal();
  return {};
}

P2pConfig NodeProcess::p2p_config() const {
  const auto& options = launch_.options;
  P2pConfig config;
  config.agent_version = std::string("agentnetwork/") + kVersion;
  config.security_protocols = security_protocol_ids(options);
  config.muxers = muxer_protocol_ids(options);
  // Every address was validated before the start.
  auto parse_all = [](const std::vector<std::string>& texts) {
    std::vector<p2p::Multiaddr> addresses;
    for (const auto& text : texts) {
      if (auto address = p2p::Multiaddr::parse(text)) addresses.push_back(std::move(*address));
    }
    return addresses;
  };
  config.listen = parse_all(options.listen);
  config.bootstrap = parse_all(options.bootstrap);
  config.static_relays = parse_all(options.static_relays);
  config.dht = dht_server_mode(options) ? p2p::kad::DhtMode::kServer : p2p::kad::DhtMode::kClient;
  p2p::daan::DiscoveryConfig discovery;
  discovery.join_network = options.daan_network;
  config.daan_discovery = discovery;
  config.connection_limits.low_water = static_cast<std::size_t>(options.conn_low_water);
  config.connection_limits.high_water = static_cast<std::size_t>(options.conn_high_water);
  config.connection_limits.grace_period =
      std::chrono::milliseconds(static_cast<long long>(options.conn_grace_seconds * 1000));
  config.resource_limits = resource_limits(options);
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
    config.relay_service = relay_limits;
  }
  config.log = [this](P2pLogLevel level, const std::string& message) { log_p2p(level, message); };
  config.daan_sink = agent_hub_.get();
  if (options.pubsub) {
    p2p::pubsub::PubSubConfig pubsub;
    pubsub.router.floodsub_only = options.pubsub_router == PubSubRouterSetting::kFloodSub;
    config.pubsub = std::move(pubsub);
  }
  return config;
}

void NodeProcess::log_p2p(P2pLogLevel level, const std::string& message) const {
  switch (level) {
    case P2pLogLevel::kDebug:
      logger_->debug("{}", message);
      break;
    case P2pLogLevel::kInfo:
      logger_->info("{}", message);
      break;
    case P2pLogLevel::kWarn:
      logger_->warn("{}", message);
      break;
  }
}

Expected<void> NodeProcess::open_inbox() {
  const auto& options = launch_.options;
  store::InboxLimits limits;
  limits.max_messages = static_cast<std::uint64_t>(options.inbox_max_messages);
  limits.max_bytes = static_cast<std::uint64_t>(options.inbox_max_bytes);
  // A file that cannot be opened as our inbox is reported and left as it is: it may hold
  // messages the operator wants back.
  auto inbox = store::Inbox::open(paths_.data_dir / "inbox.db", limits);
  if (!inbox) return tl::unexpected(inbox.error());
  inbox_ = std::move(*inbox);
  const auto counts = inbox_->counts();
  logger_->info("inbox {}: {} messages ({} bytes) waiting; limits {} messages, {} bytes",
                (paths_.data_dir / "inbox.db").string(), counts.messages, counts.bytes,
                limits.max_messages, limits.max_bytes);
  agent_hub_ = std::make_unique<rpc::AgentHub>(
      io_, *inbox_, [this](const std::string& line) { logger_->warn("{}", line); });
  return {};
}

Expected<void> NodeProcess::start_p2p() {
  const auto& options = launch_.options;
  const auto pid = daemon::current_process_id();
  logger_->info("agentnetwork {} starting: pid {}, data dir {}, role {}, DHT {} mode", kVersion,
                pid, paths_.data_dir.string(), role_name(options.role),
                dht_server_mode(options) ? "server" : "client");

  auto identity = launch_.detached
                      ? load_identity(effective_key_file(options))
                      : load_or_create_identity(effective_key_file(options)).map([](auto pair) {
                          return std::move(pair.first);
                        });
  if (!identity) return tl::unexpected(identity.error());
  const std::string peer_id = identity->peer_id.to_string();
  logger_->info("node ID {}", peer_id);
  if (plaintext_enabled(options)) {
    logger_->warn(
        "INSECURE: -security includes plaintext: connections using /plaintext/2.0.0 are neither "
        "encrypted nor authenticated; use it for tests only");
  }

  auto p2p = P2pNode::start(io_, std::move(*identity), p2p_config());
  if (!p2p) return tl::unexpected(p2p.error());
  p2p_ = std::move(*p2p);
  p2p_->on_peers_changed([this] {
    refresh_peers();
    request_status_write();
  });
  p2p_->on_addresses_changed([this] { addresses_changed(); });

  status_.running = true;
  status_.pid = pid;
  status_.start_time = std::chrono::system_clock::now();
  status_.node_id = peer_id;
  status_.version = kVersion;
  status_.role = std::string(role_name(options.role));
  for (const auto& address : p2p_->direct_addresses()) {
    status_.listen_addrs.push_back(address.to_string() + "/p2p/" + peer_id);
  }
  status_.peer_count = 0;
  status_.data_dir = paths_.data_dir.string();
  status_.log_file = paths_.log_file.string();
  status_.pid_file = paths_.pid_file.string();
  status_.launch_args = launch_.launch_args;
  return {};
}

Expected<void> NodeProcess::start_apis() {
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
  config.dht = p2p_->dht();
  config.agent.hub = agent_hub_.get();
  config.agent.messenger = p2p_->messenger();
  config.agent.discovery = p2p_->discovery();
  config.agent.dht = p2p_->dht();
  config.pubsub.pubsub = p2p_->pubsub();
  auto server = rpc::ControlServer::start(io_, p2p_->host(), std::move(config));
  if (!server) return tl::unexpected(server.error());
  control_server_ = std::move(*server);
  status_.grpc = control_server_->endpoint();
  logger_->info("control API on {}", status_.grpc);

  if (!options.p2pd_listen.empty()) {
    P2pdServerConfig p2pd_config;
    p2pd_config.listen = options.p2pd_listen;
    p2pd_config.dht = p2p_->dht();
    p2pd_config.connection_manager = &p2p_->connection_manager();
    p2pd_config.pubsub = p2p_->pubsub();
    auto p2pd = P2pdServer::start(p2p_->host(), std::move(p2pd_config));
    if (!p2pd) return tl::unexpected(p2pd.error());
    p2pd_server_ = std::move(*p2pd);
    logger_->info("p2pd control protocol on {}", p2pd_server_->listen_address());
  }
  return {};
}

Expected<void> NodeProcess::publish_status() {
  if (auto written = daemon::write_pid_file(paths_.pid_file, status_.pid); !written) {
    return written;
  }
  status_.updated_at = std::chrono::system_clock::now();
  if (auto written = daemon::write_status_file(paths_.status_file, status_); !written) {
    std::error_code ignored;
    std::filesystem::remove(paths_.pid_file, ignored);
    return written;
  }
  wait_for_signals();
  schedule_status();
  schedule_rotation_check();
  return {};
}

void NodeProcess::report_ready() {
  for (const auto& address : status_.listen_addrs)
    logger_->info("listening on {}", address);
  logger_->info("node ready");
  if (launch_.ready) {
    ReadyReport report;
    report.ok = true;
    report.pid = status_.pid;
    report.node_id = status_.node_id;
    report.listen_addrs = status_.listen_addrs;
    report.log_file = paths_.log_file.string();
    launch_.ready->send_and_close(encode_ready_report(report));
    launch_.ready.reset();
  }
  daemon::notify_service_manager("READY=1\nMAINPID=" + std::to_string(status_.pid));
}

void NodeProcess::write_status() {
  status_.updated_at = std::chrono::system_clock::now();
  if (inbox_) {
    const auto counts = inbox_->counts();
    status_.inbox_messages = counts.messages;
    status_.inbox_bytes = counts.bytes;
    status_.inbox_refused = counts.refused;
  }
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
  if (p2pd_server_) p2pd_server_->stop();
  // Requests waiting for an agent are answered before the connections go.
  if (agent_hub_) agent_hub_->stop();
  const bool had_peers = p2p_ && p2p_->stop();
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

void NodeProcess::stop_io_when_quiet() {
  if (grace_elapsed_ && control_api_stopped_) io_.stop();
}

void NodeProcess::refresh_peers() {
  auto& host = p2p_->host();
  status_.peers.clear();
  for (const auto& peer : host.connected_peers()) {
    auto connection = host.connection_to(peer);
    daemon::PeerSummary summary;
    summary.peer_id = peer.to_string();
    if (connection) {
      summary.address = connection->remote_address().to_string();
      summary.direction =
          connection->direction() == p2p::net::Direction::kInbound ? "inbound" : "outbound";
    }
    if (const auto* info = host.peer_info(peer)) summary.agent_version = info->agent_version;
    status_.peers.push_back(std::move(summary));
  }
  status_.peer_count = status_.peers.size();
}

void NodeProcess::addresses_changed() {
  if (stopping_) return;
  // Advertised addresses carry no /p2p/ part of ours (relayed ones end in /p2p-circuit); the
  // status shows each with it.
  const std::string self = "/p2p/" + p2p_->host().peer_id().to_string();
  std::vector<std::string> listen_addrs;
  for (const auto& address : p2p_->advertised_addresses())
    listen_addrs.push_back(address.to_string() + self);
  status_.listen_addrs = listen_addrs;
  if (control_server_) control_server_->set_listen_addrs(std::move(listen_addrs));
  request_status_write();
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
