// an-api-load: load and latency tool for the control API (agentnetwork.v1.Node), driven by
// bench/api_bench.py. Every mode prints one JSON line on stdout (errors included, as
// {"error": "..."}, with exit code 1); every loop is bounded in count and in time.
//
//   an-api-load load --target T --clients N --seconds S [--rate R] [--max-calls M]
//                    [--deadline-ms D] [--token X]
//       N threads, each with its own channel and connection, call GetStatus back to back for S
//       seconds (or M calls in all); with --rate, R calls per second in all, each client on a
//       fixed schedule. Before the clock starts every client has made one call.
//       {"calls", "errors": {CODE: n}, "calls_per_s", "latency_us": {p50, p90, p99, max},
//        "client_cpu_s", "peer_count": {min, max}, ...}
//   an-api-load ping --target T --peer ID --count C --interval-ms I [--deadline-ms D]
//       C Ping calls (count=1), one every I ms (fixed schedule). "rtt_us": the round trip the
//       node measured on /ipfs/ping/1.0.0; "call_us": the whole API call seen by this client.
//   an-api-load churn --nodes T1,T2,... --to MULTIADDR/p2p/ID --seconds S [--max-cycles M]
//                     [--hold-ms H] [--pause-ms P]
//       One thread per node: Connect(MULTIADDR), hold H ms, Disconnect(ID), pause P ms, again.
//   an-api-load connect --target T --to MULTIADDR/p2p/ID
//       One Connect call.
//   an-api-load baseline-server --listen unix:PATH [--copy-from T] [--max-seconds S]
//       The reference: a bare gRPC callback server of the same service whose GetStatus answers
//       a fixed response on gRPC's own thread (with --copy-from, the response a node gave).
//       Prints {"ready": true, "endpoint": ...} once listening; stops when stdin closes (or after
//       S seconds, default 600).
#include <grpcpp/grpcpp.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "agentnetwork/v1/node.grpc.pb.h"
#include "load_support.h"

namespace {

namespace v1 = agentnetwork::v1;
using an::bench::Clock;
using an::bench::code_name;
using an::bench::cpu_seconds_self;
using an::bench::die;
using an::bench::ErrorTally;
using an::bench::Json;
using an::bench::nanoseconds_since;
using an::bench::percentiles_us;
using an::bench::to_number;

constexpr int kMaxClients = 512;
constexpr double kMaxSeconds = 600;
constexpr std::uint64_t kMaxCalls = 50'000'000;
constexpr int kMaxPings = 100'000;
constexpr int kMaxChurnNodes = 64;

struct Options {
  std::string mode;
  std::string target;
  std::string token;
  std::string peer;
  std::string to;
  std::string listen;
  std::string copy_from;
  std::vector<std::string> nodes;
  int clients = 1;
  double seconds = 1;
  std::uint64_t max_calls = 5'000'000;
  int deadline_ms = 5000;
  int count = 1;
  int interval_ms = 20;
  int hold_ms = 50;
  int pause_ms = 50;
  std::uint64_t max_cycles = 100'000;
  double max_seconds = kMaxSeconds;
  double rate = 0;  // calls per second in all; 0: back to back
};

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::size_t begin = 0;
  while (begin <= text.size()) {
    auto end = text.find(separator, begin);
    if (end == std::string::npos) end = text.size();
    if (end > begin) parts.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return parts;
}

Options parse(int argc, char** argv) {
  if (argc < 2) die("usage: an-api-load load|ping|churn|connect|baseline-server [options]");
  Options options;
  options.mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string name = argv[i];
    if (name.rfind("--", 0) != 0 || i + 1 >= argc) die("expected --option VALUE at " + name);
    name = name.substr(2);
    std::string value = argv[++i];
    if (name == "target") {
      options.target = value;
    } else if (name == "token") {
      options.token = value;
    } else if (name == "peer") {
      options.peer = value;
    } else if (name == "to") {
      options.to = value;
    } else if (name == "listen") {
      options.listen = value;
    } else if (name == "copy-from") {
      options.copy_from = value;
    } else if (name == "nodes") {
      options.nodes = split(value, ',');
    } else if (name == "clients") {
      options.clients = static_cast<int>(to_number(name, value, 1, kMaxClients));
    } else if (name == "seconds") {
      options.seconds = to_number(name, value, 0.1, kMaxSeconds);
    } else if (name == "max-seconds") {
      options.max_seconds = to_number(name, value, 0.1, kMaxSeconds);
    } else if (name == "rate") {
      options.rate = to_number(name, value, 0, 1e7);
    } else if (name == "max-calls") {
      options.max_calls = static_cast<std::uint64_t>(to_number(name, value, 1, kMaxCalls));
    } else if (name == "deadline-ms") {
      options.deadline_ms = static_cast<int>(to_number(name, value, 1, 60'000));
    } else if (name == "count") {
      options.count = static_cast<int>(to_number(name, value, 1, kMaxPings));
    } else if (name == "interval-ms") {
      options.interval_ms = static_cast<int>(to_number(name, value, 0, 10'000));
    } else if (name == "hold-ms") {
      options.hold_ms = static_cast<int>(to_number(name, value, 0, 10'000));
    } else if (name == "pause-ms") {
      options.pause_ms = static_cast<int>(to_number(name, value, 0, 10'000));
    } else if (name == "max-cycles") {
      options.max_cycles = static_cast<std::uint64_t>(to_number(name, value, 1, kMaxCalls));
    } else {
      die("unknown option --" + name);
    }
  }
  return options;
}

// A channel with its own connection: gRPC shares subchannels between channels to the same
// target unless told not to, and N clients are meant to be N connections, as N processes are.
std::shared_ptr<grpc::Channel> open_channel(const std::string& target) {
  grpc::ChannelArguments arguments;
  arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), arguments);
}

void prepare(grpc::ClientContext& context, const Options& options, int deadline_ms) {
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms));
  if (!options.token.empty()) context.AddMetadata("authorization", "Bearer " + options.token);
}

// ---- load ------------------------------------------------------------------------------------

struct ClientResult {
  std::uint64_t calls = 0;
  ErrorTally errors;
  std::vector<std::int64_t> latency_ns;
  std::uint32_t peer_min = UINT32_MAX;
  std::uint32_t peer_max = 0;
  std::string setup_error;
};

int run_load(const Options& options) {
  if (options.target.empty()) die("load needs --target");
  const int clients = options.clients;
  const std::uint64_t per_client =
      std::max<std::uint64_t>(1, options.max_calls / static_cast<std::uint64_t>(clients));
  std::vector<ClientResult> results(static_cast<std::size_t>(clients));
  std::atomic<int> prepared{0};
  std::atomic<bool> go{false};
  std::atomic<bool> abort{false};
  std::atomic<std::int64_t> end_ns{0};  // steady clock, set before `go`
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(clients));
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      auto& result = results[static_cast<std::size_t>(i)];
      auto channel = open_channel(options.target);
      auto stub = v1::Node::NewStub(channel);
      {
        grpc::ClientContext context;
        prepare(context, options, options.deadline_ms);
        v1::GetStatusResponse response;
        auto status = stub->GetStatus(&context, {}, &response);
        if (!status.ok()) {
          result.setup_error = code_name(status.error_code()) + ": " + status.error_message();
        }
      }
      prepared.fetch_add(1);
      while (!go.load() && !abort.load())
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      if (abort.load() || !result.setup_error.empty()) return;
      const Clock::time_point end{Clock::duration(end_ns.load())};
      // With --rate: this client's calls are `period` apart, the clients spread over one period.
      const auto period = std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double>(options.rate > 0 ? clients / options.rate : 0.0));
      auto next = end -
                  std::chrono::duration_cast<Clock::duration>(
                      std::chrono::duration<double>(options.seconds)) +
                  period * i / clients;
      result.latency_ns.reserve(
          static_cast<std::size_t>(std::min<std::uint64_t>(per_client, 1 << 16)));
      v1::GetStatusRequest request;
      while (result.calls + result.errors.total < per_client && Clock::now() < end) {
        if (options.rate > 0) {
          if (next >= end) break;
          std::this_thread::sleep_until(next);
          next += period;
        }
        grpc::ClientContext context;
        prepare(context, options, options.deadline_ms);
        v1::GetStatusResponse response;
        auto begin = Clock::now();
        auto status = stub->GetStatus(&context, request, &response);
        auto elapsed = nanoseconds_since(begin);
        if (status.ok()) {
          ++result.calls;
          result.latency_ns.push_back(elapsed);
          result.peer_min = std::min(result.peer_min, response.peer_count());
          result.peer_max = std::max(result.peer_max, response.peer_count());
        } else {
          result.errors.add(status);
        }
      }
    });
  }
  // Every client connected and made one call (bounded: each has a deadline).
  while (prepared.load() < clients)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::string setup_error;
  for (const auto& result : results) {
    if (!result.setup_error.empty()) setup_error = result.setup_error;
  }
  if (!setup_error.empty()) {
    abort.store(true);
    for (auto& thread : threads)
      thread.join();
    die("a client's first call failed: " + setup_error);
  }
  const double cpu_before = cpu_seconds_self();
  const auto begin = Clock::now();
  end_ns.store((begin + std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(options.seconds)))
                   .time_since_epoch()
                   .count());
  go.store(true);
  for (auto& thread : threads)
    thread.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - begin).count();
  const double cpu = cpu_seconds_self() - cpu_before;

  std::uint64_t calls = 0;
  ErrorTally errors;
  std::vector<std::int64_t> latency;
  std::uint32_t peer_min = UINT32_MAX;
  std::uint32_t peer_max = 0;
  std::vector<double> per_client_rate;
  for (auto& result : results) {
    calls += result.calls;
    errors.merge(result.errors);
    latency.insert(latency.end(), result.latency_ns.begin(), result.latency_ns.end());
    peer_min = std::min(peer_min, result.peer_min);
    peer_max = std::max(peer_max, result.peer_max);
    per_client_rate.push_back(static_cast<double>(result.calls) / elapsed);
  }
  std::sort(per_client_rate.begin(), per_client_rate.end());
  Json out;
  out["mode"] = "load";
  out["clients"] = clients;
  out["rate"] = options.rate;
  out["seconds"] = elapsed;
  out["calls"] = calls;
  out["errors_total"] = errors.total;
  out["errors"] = errors.counts_json();
  out["error_messages"] = errors.messages_json();
  out["calls_per_s"] = static_cast<double>(calls) / elapsed;
  out["latency_us"] = percentiles_us(std::move(latency));
  out["client_calls_per_s"] =
      Json{{"min", per_client_rate.front()}, {"max", per_client_rate.back()}};
  out["client_cpu_s"] = cpu;
  out["peer_count"] = calls > 0 ? Json{{"min", peer_min}, {"max", peer_max}} : Json(nullptr);
  out["capped_by_max_calls"] =
      calls + errors.total >= per_client * static_cast<std::uint64_t>(clients);
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

// ---- ping ------------------------------------------------------------------------------------

int run_ping(const Options& options) {
  if (options.target.empty() || options.peer.empty()) die("ping needs --target and --peer");
  auto stub = v1::Node::NewStub(open_channel(options.target));
  std::vector<std::int64_t> rtt;
  std::vector<std::int64_t> call;
  ErrorTally errors;
  const auto interval = std::chrono::milliseconds(options.interval_ms);
  const auto begin = Clock::now();
  for (int i = 0; i < options.count; ++i) {
    std::this_thread::sleep_until(begin + interval * i);
    grpc::ClientContext context;
    prepare(context, options, options.deadline_ms);
    v1::PingRequest request;
    request.set_peer_id(options.peer);
    request.set_count(1);
    v1::PingResponse response;
    auto started = Clock::now();
    auto status = stub->Ping(&context, request, &response);
    auto elapsed = nanoseconds_since(started);
    if (status.ok() && response.rtt_ns_size() == 1) {
      rtt.push_back(response.rtt_ns(0));
      call.push_back(elapsed);
    } else if (status.ok()) {
      errors.add(grpc::Status(grpc::StatusCode::INTERNAL, "answer without one rtt_ns"));
    } else {
      errors.add(status);
    }
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - begin).count();
  Json out;
  out["mode"] = "ping";
  out["pings"] = rtt.size();
  out["seconds"] = elapsed;
  out["errors_total"] = errors.total;
  out["errors"] = errors.counts_json();
  out["error_messages"] = errors.messages_json();
  out["rtt_us"] = percentiles_us(rtt);
  out["call_us"] = percentiles_us(call);
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

// ---- churn -----------------------------------------------------------------------------------

int run_churn(const Options& options) {
  if (options.nodes.empty() || options.to.empty()) die("churn needs --nodes and --to");
  if (options.nodes.size() > kMaxChurnNodes) die("at most 64 --nodes");
  auto at = options.to.rfind("/p2p/");
  if (at == std::string::npos) die("--to must end in /p2p/<peer id>");
  const std::string peer_id = options.to.substr(at + 5);
  const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(options.seconds));
  struct NodeResult {
    std::uint64_t cycles = 0;
    ErrorTally errors;
    std::vector<std::int64_t> connect_ns;
  };
  std::vector<NodeResult> results(options.nodes.size());
  std::vector<std::thread> threads;
  const auto begin = Clock::now();
  for (std::size_t i = 0; i < options.nodes.size(); ++i) {
    threads.emplace_back([&, i] {
      auto& result = results[i];
      auto stub = v1::Node::NewStub(open_channel(options.nodes[i]));
      while (result.cycles < options.max_cycles && Clock::now() < end) {
        {
          grpc::ClientContext context;
          prepare(context, options, options.deadline_ms);
          v1::ConnectRequest request;
          request.set_address(options.to);
          v1::ConnectResponse response;
          auto started = Clock::now();
          auto status = stub->Connect(&context, request, &response);
          if (!status.ok()) {
            result.errors.add(status);
            std::this_thread::sleep_for(std::chrono::milliseconds(options.pause_ms + 10));
            continue;
          }
          result.connect_ns.push_back(nanoseconds_since(started));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(options.hold_ms));
        {
          grpc::ClientContext context;
          prepare(context, options, options.deadline_ms);
          v1::DisconnectRequest request;
          request.set_peer_id(peer_id);
          v1::DisconnectResponse response;
          auto status = stub->Disconnect(&context, request, &response);
          if (!status.ok()) result.errors.add(status);
        }
        ++result.cycles;
        std::this_thread::sleep_for(std::chrono::milliseconds(options.pause_ms));
      }
    });
  }
  for (auto& thread : threads)
    thread.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - begin).count();
  std::uint64_t cycles = 0;
  ErrorTally errors;
  std::vector<std::int64_t> connect;
  for (auto& result : results) {
    cycles += result.cycles;
    errors.merge(result.errors);
    connect.insert(connect.end(), result.connect_ns.begin(), result.connect_ns.end());
  }
  Json out;
  out["mode"] = "churn";
  out["nodes"] = options.nodes.size();
  out["seconds"] = elapsed;
  out["cycles"] = cycles;
  out["cycles_per_s"] = static_cast<double>(cycles) / elapsed;
  out["errors_total"] = errors.total;
  out["errors"] = errors.counts_json();
  out["error_messages"] = errors.messages_json();
  out["connect_us"] = percentiles_us(std::move(connect));
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

// ---- connect ---------------------------------------------------------------------------------

int run_connect(const Options& options) {
  if (options.target.empty() || options.to.empty()) die("connect needs --target and --to");
  auto stub = v1::Node::NewStub(open_channel(options.target));
  grpc::ClientContext context;
  prepare(context, options, options.deadline_ms);
  v1::ConnectRequest request;
  request.set_address(options.to);
  v1::ConnectResponse response;
  auto status = stub->Connect(&context, request, &response);
  if (!status.ok())
    die("Connect: " + code_name(status.error_code()) + ": " + status.error_message());
  std::printf("%s\n", Json{{"mode", "connect"},
                           {"peer_id", response.peer().peer_id()},
                           {"address", response.peer().address()}}
                          .dump()
                          .c_str());
  return 0;
}

// ---- baseline server -------------------------------------------------------------------------

// GetStatus answers a fixed response at once, on the gRPC thread that received the call: what
// gRPC itself costs. The other methods are left UNIMPLEMENTED (the base class's answer).
class BaselineService final : public v1::Node::CallbackService {
 public:
  explicit BaselineService(v1::GetStatusResponse fixed) : fixed_(std::move(fixed)) {}

  grpc::ServerUnaryReactor* GetStatus(grpc::CallbackServerContext* context,
                                      const v1::GetStatusRequest*,
                                      v1::GetStatusResponse* response) override {
    *response = fixed_;
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  const v1::GetStatusResponse fixed_;
};

// A response of the same shape and size as a node's when there is no node to copy it from.
v1::GetStatusResponse made_up_status() {
  v1::GetStatusResponse status;
  const std::string id = "12D3KooWBaseLineBaseLineBaseLineBaseLineBaseLineBaseLi";
  status.set_peer_id(id);
  status.set_version("0.1.0");
  status.set_agent_version("agentnetwork/0.1.0");
  status.set_role("normal");
  status.set_pid(12345);
  status.set_start_time_unix_ms(1'800'000'000'000);
  status.set_uptime_ms(1000);
  status.add_listen_addrs("/ip4/127.0.0.1/tcp/40000/p2p/" + id);
  status.set_peer_count(1);
  status.set_data_dir("/var/lib/agentnetwork");
  status.set_log_file("/var/lib/agentnetwork/logs/node.log");
  status.set_api_endpoint("unix:/var/lib/agentnetwork/api.sock");
  status.add_protocols("/ipfs/id/1.0.0");
  status.add_protocols("/ipfs/id/push/1.0.0");
  status.add_protocols("/ipfs/ping/1.0.0");
  return status;
}

int run_baseline_server(const Options& options) {
  if (options.listen.empty()) die("baseline-server needs --listen");
  v1::GetStatusResponse fixed = made_up_status();
  if (!options.copy_from.empty()) {
    auto stub = v1::Node::NewStub(open_channel(options.copy_from));
    grpc::ClientContext context;
    prepare(context, options, options.deadline_ms);
    auto status = stub->GetStatus(&context, {}, &fixed);
    if (!status.ok()) die("--copy-from: " + status.error_message());
  }
  BaselineService service(fixed);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(), &port);
  // As the node's server is configured.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(256 * 1024);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server || port == 0) die("cannot listen on " + options.listen);
  std::printf(
      "%s\n",
      Json{{"ready", true}, {"endpoint", options.listen}, {"response_bytes", fixed.ByteSizeLong()}}
          .dump()
          .c_str());
  std::fflush(stdout);
  // Until stdin closes (EOF or error), at most max_seconds.
  const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(options.max_seconds));
  char sink[256];
  while (Clock::now() < end) {
    pollfd input{STDIN_FILENO, POLLIN, 0};
    int ready = ::poll(&input, 1, 200);
    if (ready < 0 && errno != EINTR) break;
    if (ready > 0) {
      if (input.revents & (POLLHUP | POLLERR | POLLNVAL)) {
        if (::read(STDIN_FILENO, sink, sizeof sink) <= 0) break;
      } else if (::read(STDIN_FILENO, sink, sizeof sink) <= 0) {
        break;
      }
    }
  }
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options = parse(argc, argv);
  if (options.mode == "load") return run_load(options);
  if (options.mode == "ping") return run_ping(options);
  if (options.mode == "churn") return run_churn(options);
  if (options.mode == "connect") return run_connect(options);
  if (options.mode == "baseline-server") return run_baseline_server(options);
  die("unknown mode \"" + options.mode + "\" (load, ping, churn, connect, baseline-server)");
}
