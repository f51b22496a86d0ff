#include "node/node.h"

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "daemon/log_file.h"
#include "daemon/log_sink.h"
#include "daemon/paths.h"
#include "daemon/status_file.h"
#include "node/identity.h"
#include "util/version.h"

namespace an::node {
namespace {

// How often the status file is rewritten even when nothing changed (readers judge staleness by
// updated_at), and how often raw stdout/stderr growth is checked against the size limit.
constexpr auto kStatusInterval = std::chrono::seconds(10);
constexpr auto kRotationCheckInterval = std::chrono::seconds(1);
// How long a starting node waits for a transient lock holder (a CLI cleaning stale files) before
// concluding that another node runs here.
constexpr auto kLockRetryWindow = std::chrono::milliseconds(500);

using asio::ip::tcp;

struct Listener {
  std::string requested;  // the -listen multiaddr
  TcpListenAddress address;
  std::unique_ptr<tcp::acceptor> acceptor;
  unsigned short bound_port = 0;
};

std::string format_bind_error(const std::string& multiaddr, const std::error_code& ec) {
  return "cannot listen on " + multiaddr + ": " + ec.message();
}

Expected<Listener> bind_listener(asio::io_context& io, const std::string& multiaddr) {
  auto address = parse_listen_address(multiaddr);
  if (!address) return tl::unexpected(address.error());
  Listener listener;
  listener.requested = multiaddr;
  listener.address = *address;
  std::error_code ec;
  auto ip = asio::ip::make_address(address->host, ec);
  if (ec) return fail(format_bind_error(multiaddr, ec));
  tcp::endpoint endpoint(ip, address->port);
  listener.acceptor = std::make_unique<tcp::acceptor>(io);
  auto& acceptor = *listener.acceptor;
  if (acceptor.open(endpoint.protocol(), ec); ec) return fail(format_bind_error(multiaddr, ec));
  // SO_REUSEADDR only lets a restarted node bind while old connections sit in TIME_WAIT; it
  // does not let two live listeners share a port on Linux.
  acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (ip.is_v6()) acceptor.set_option(asio::ip::v6_only(true), ec);
  if (acceptor.bind(endpoint, ec); ec) return fail(format_bind_error(multiaddr, ec));
  if (acceptor.listen(asio::socket_base::max_listen_connections, ec); ec) {
    return fail(format_bind_error(multiaddr, ec));
  }
  listener.bound_port = acceptor.local_endpoint(ec).port();
  if (ec) return fail(format_bind_error(multiaddr, ec));
  return listener;
}

// Listen addresses as peers can dial them: unspecified hosts expanded per interface, the real
// port, and our peer ID.
std::vector<std::string> advertised_addresses(const std::vector<Listener>& listeners,
                                              const std::string& peer_id) {
  std::vector<std::string> result;
  for (const auto& listener : listeners) {
    const auto& address = listener.address;
    const char* family = address.ipv6 ? "ip6" : "ip4";
    std::vector<std::string> hosts;
    if (address.host == "0.0.0.0" || address.host == "::") {
      hosts = daemon::interface_addresses(address.ipv6);
    } else {
      hosts.push_back(asio::ip::make_address(address.host).to_string());
    }
    for (const auto& host : hosts) {
      result.push_back("/" + std::string(family) + "/" + host + "/tcp/" +
                       std::to_string(listener.bound_port) + "/p2p/" + peer_id);
    }
  }
  return result;
}

// Until libp2p arrives (the next stage), inbound connections are accepted only to be closed:
// the node must not pretend to speak a protocol it does not.
asio::awaitable<void> refuse_connections(tcp::acceptor& acceptor,
                                         std::shared_ptr<spdlog::logger> logger) {
  for (;;) {
    auto [ec, socket] =
        co_await acceptor.async_accept(asio::experimental::as_tuple(asio::use_awaitable));
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      logger->warn("accept failed: {}", ec.message());
      // Out of descriptors and the like: back off instead of spinning.
      asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
      continue;
    }
    std::error_code ignored;
    auto remote = socket.remote_endpoint(ignored);
    logger->debug("closing inbound connection from {}:{}: libp2p is not supported yet",
                  remote.address().to_string(), remote.port());
    socket.close(ignored);
  }
}

void log_coroutine_exception(const std::shared_ptr<spdlog::logger>& logger, std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& error) {
    logger->error("internal task failed: {}", error.what());
  }
}

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
  Expected<daemon::FileLock> acquire_lock(daemon::ProcessId& running_pid);
  void write_status();
  void schedule_status();
  void schedule_rotation_check();
  void wait_for_signals();
  void shutdown_requested(const char* reason);
  void shutdown();

  NodeLaunch launch_;
  daemon::DataPaths paths_;
  std::shared_ptr<daemon::RotatingLogFile> log_file_;
  std::shared_ptr<spdlog::logger> logger_;
  asio::io_context io_;
  std::vector<Listener> listeners_;
  daemon::NodeStatus status_;
  std::unique_ptr<asio::steady_timer> status_timer_;
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

Expected<daemon::FileLock> NodeProcess::acquire_lock(daemon::ProcessId& running_pid) {
  auto deadline = std::chrono::steady_clock::now() + kLockRetryWindow;
  for (;;) {
    auto lock = daemon::FileLock::try_acquire(paths_.lock_file);
    if (!lock) return tl::unexpected(lock.error());
    if (lock->has_value()) return std::move(**lock);
    auto holder = daemon::FileLock::holder(paths_.lock_file);
    auto recorded = daemon::read_pid_file(paths_.pid_file);
    running_pid = holder && holder->has_value() ? **holder : 0;
    bool holder_is_node =
        running_pid != 0 && recorded && recorded->has_value() && **recorded == running_pid;
    if (holder_is_node || std::chrono::steady_clock::now() >= deadline) {
      if (running_pid == 0 && recorded && recorded->has_value()) running_pid = **recorded;
      return fail("already running (PID " + std::to_string(running_pid) + ")");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

int NodeProcess::run() {
  const auto& options = launch_.options;
  if (auto made = daemon::make_directory(paths_.data_dir, false); !made) {
    return fail_start(made.error().message);
  }
  daemon::ProcessId running_pid = 0;
  auto lock = acquire_lock(running_pid);
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
  std::signal(SIGPIPE, SIG_IGN);

  const auto pid = daemon::current_process_id();
  logger_->info("agentnetwork {} starting: pid {}, data dir {}, role {}", kVersion, pid,
                paths_.data_dir.string(), role_name(options.role));
  if (options.role != Role::kNormal) {
    logger_->warn("role {}: the DHT and relay services are not supported yet",
                  role_name(options.role));
  }

  auto identity = launch_.detached
                      ? load_identity(effective_key_file(options))
                      : load_or_create_identity(effective_key_file(options)).map([](auto pair) {
                          return std::move(pair.first);
                        });
  if (!identity) return fail_start(identity.error().message);
  const std::string peer_id = identity->peer_id.to_string();
  logger_->info("node ID {}", peer_id);

  for (const auto& multiaddr : options.listen) {
    auto listener = bind_listener(io_, multiaddr);
    if (!listener) return fail_start(listener.error().message);
    listeners_.push_back(std::move(*listener));
  }

  status_.running = true;
  status_.pid = pid;
  status_.start_time = std::chrono::system_clock::now();
  status_.node_id = peer_id;
  status_.version = kVersion;
  status_.role = std::string(role_name(options.role));
  status_.listen_addrs = advertised_addresses(listeners_, peer_id);
  status_.peer_count = 0;
  status_.data_dir = paths_.data_dir.string();
  status_.log_file = paths_.log_file.string();
  status_.pid_file = paths_.pid_file.string();
  status_.launch_args = launch_.launch_args;

  if (auto written = daemon::write_pid_file(paths_.pid_file, pid); !written) {
    return fail_start(written.error().message);
  }
  status_.updated_at = std::chrono::system_clock::now();
  if (auto written = daemon::write_status_file(paths_.status_file, status_); !written) {
    std::error_code ignored;
    std::filesystem::remove(paths_.pid_file, ignored);
    return fail_start(written.error().message);
  }

  for (auto& listener : listeners_) {
    asio::co_spawn(
        io_, refuse_connections(*listener.acceptor, logger_),
        [logger = logger_](std::exception_ptr e) { log_coroutine_exception(logger, e); });
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
  for (auto& listener : listeners_)
    listener.acceptor->close(ignored);
  if (status_timer_) status_timer_->cancel();
  if (rotation_timer_) rotation_timer_->cancel();
  if (signals_) signals_->cancel(ignored);
  stop_listener_.reset();
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
