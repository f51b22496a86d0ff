// an-p2p: our side of the interoperability tests. It mirrors tests/interop/peer.mjs (the
// js-libp2p peer) flag for flag and field for field, so the runner can put either
// implementation in either role. Built on the same host as the node.
//
//   an-p2p listen [--listen MULTIADDR] [--key FILE]
//   an-p2p dial MULTIADDR/p2p/ID [--identify] [--ping N] [--echo BYTES]
//                [--streams N --stream-bytes B] [--timeout SEC] [--key FILE]
// Both modes take --muxers LIST: comma-separated muxer protocol IDs in our order of preference
// (default /yamux/1.0.0), e.g. --muxers /mplex/6.7.0 or --muxers /yamux/1.0.0,/mplex/6.7.0.
//
// Benchmark actions (bench/p2p_bench.py), each adding one field to the dial output:
//   --send BYTES         one stream on /bench/sink/1.0.0: write BYTES, close, wait for the
//                        remote's close; "send": {bytes, seconds} (stream open included).
//   --connect-latency N  before the main connection: N fresh connections one after the other,
//                        each timed from TCP connect start to the first echoed byte of its
//                        first stream; "connect_latency_ms": [...].
//   --connections N [--concurrency C]  N bare upgrades (TCP, multistream, Noise, muxer), each
//                        with its own peer ID, at most C (default 32) in flight, each done when
//                        the listener's first frame arrives (its identify stream), then closed;
//                        "connections": {opened, ok, failed, seconds}.
//   --hold N [--concurrency C]  N idle connections, each from its own host (own peer ID),
//                        identified; prints {"holding": N, ...} once all are up, keeps them
//                        until stdin closes (or --timeout), then the usual result line.
// Listeners also serve /bench/sink/1.0.0 (read to EOF, then close).
//
// Either mode: --security LIST  the security protocols to offer, comma-separated in order of
// preference (default /noise), e.g. /tls/1.0.0,/noise.
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/resource.h>
#include <unistd.h>

#include <asio.hpp>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "node/identity.h"
#include "p2p/crypto/key.h"
#include "p2p/net/async.h"
#include "p2p/net/host.h"
#include "p2p/net/tcp_transport.h"
#include "p2p/net/upgrade.h"
#include "util/version.h"

namespace {

using namespace an;
using namespace an::p2p;
using net::Host;
using net::Stream;

constexpr std::string_view kEchoProtocol = "/echo/1.0.0";
constexpr std::string_view kSinkProtocol = "/bench/sink/1.0.0";
constexpr std::size_t kChunk = 256 * 1024;

struct Options {
  std::string mode;
  std::string listen = "/ip4/127.0.0.1/tcp/0";
  std::string key;
  std::string target;
  bool identify = false;
  int ping = 0;
  std::uint64_t echo = 0;
  int streams = 0;
  std::uint64_t stream_bytes = 65536;
  double timeout = 60;
  std::uint64_t send = 0;
  int connect_latency = 0;
  int connections = 0;
  int concurrency = 32;
  int hold = 0;
  std::vector<std::string> security{"/noise"};
  std::vector<std::string> muxers;
};

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> items;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    if (comma > start) items.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return items;
}

[[noreturn]] void die(const std::string& message) {
  std::printf("%s\n", nlohmann::json{{"error", message}}.dump().c_str());
  std::fflush(stdout);
  std::_Exit(1);
}

Options parse(int argc, char** argv) {
  Options options;
  if (argc < 2) die("usage: an-p2p listen|dial ...");
  options.mode = argv[1];
  if (options.mode != "listen" && options.mode != "dial") die("unknown mode " + options.mode);
  for (int i = 2; i < argc; ++i) {
    std::string word = argv[i];
    if (word.rfind("--", 0) != 0) {
      if (!options.target.empty()) die("unexpected argument " + word);
      options.target = word;
      continue;
    }
    std::string name = word.substr(2);
    std::string value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_value = true;
    }
    if (name == "identify") {
      options.identify = true;
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argc) die("--" + name + " needs a value");
      value = argv[++i];
    }
    try {
      if (name == "listen")
        options.listen = value;
      else if (name == "key")
        options.key = value;
      else if (name == "ping")
        options.ping = std::stoi(value);
      else if (name == "echo")
        options.echo = std::stoull(value);
      else if (name == "streams")
        options.streams = std::stoi(value);
      else if (name == "stream-bytes")
        options.stream_bytes = std::stoull(value);
      else if (name == "timeout")
        options.timeout = std::stod(value);
      else if (name == "send")
        options.send = std::stoull(value);
      else if (name == "connect-latency")
        options.connect_latency = std::stoi(value);
      else if (name == "connections")
        options.connections = std::stoi(value);
      else if (name == "concurrency")
        options.concurrency = std::max(1, std::stoi(value));
      else if (name == "hold")
        options.hold = std::stoi(value);
      else if (name == "security")
        options.security = split_list(value);
      else if (name == "muxers")
        options.muxers = split_list(value);
      else
        die("unknown option --" + name);
    } catch (const std::exception&) {
      die("bad value for --" + name + ": " + value);
    }
  }
  if (options.mode == "dial" && options.target.empty()) die("dial needs a MULTIADDR");
  return options;
}

net::LocalIdentity make_identity(const std::string& key_file,
                                 const std::vector<std::string>& security,
                                 const std::vector<std::string>& muxers) {
  PrivateKey key = [&] {
    if (key_file.empty()) {
      auto generated = PrivateKey::generate(KeyType::kEd25519);
      if (!generated) die(generated.error().message);
      return std::move(*generated);
    }
    auto loaded = node::load_or_create_identity(key_file);
    if (!loaded) die(loaded.error().message);
    return std::move(loaded->first.key);
  }();
  auto noise_static = noise::X25519KeyPair::generate();
  if (!noise_static) die(noise_static.error().message);
  PeerId peer = key.peer_id();
  net::LocalIdentity identity{std::move(key), std::move(peer), std::move(*noise_static)};
  identity.security_protocols = security;
  if (!muxers.empty()) identity.muxers = muxers;
  if (auto valid = net::validate_upgrade_protocols(identity); !valid) die(valid.error().message);
  return identity;
}

std::string hex(const unsigned char* data, std::size_t size) {
  static const char* digits = "0123456789abcdef";
  std::string text;
  for (std::size_t i = 0; i < size; ++i) {
    text += digits[data[i] >> 4];
    text += digits[data[i] & 15];
  }
  return text;
}

class Sha256 {
 public:
  Sha256() : context_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(context_, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(context_); }
  void update(ByteView data) { EVP_DigestUpdate(context_, data.data(), data.size()); }
  std::string finish() {
    unsigned char digest[32];
    unsigned int length = 0;
    EVP_DigestFinal_ex(context_, digest, &length);
    return hex(digest, length);
  }

 private:
  EVP_MD_CTX* context_;
};

asio::awaitable<void> serve_echo(std::shared_ptr<Stream> stream) {
  Bytes buffer(kChunk);
  for (;;) {
    auto got = co_await stream->read_some(buffer);
    if (!got || *got == 0) break;
    auto written = co_await stream->write_all(ByteView(buffer.data(), *got));
    if (!written) co_return;
  }
  (void)co_await stream->close_write();
}

struct EchoResult {
  bool ok = false;
  std::string error;
  std::string sent_hash;
  std::string received_hash;
  std::uint64_t received = 0;
};

// Writes `bytes` random bytes while reading the echo back, concurrently (flow control would
// stall a writer that does not read).
asio::awaitable<EchoResult> echo_once(Host& host, PeerId peer, std::uint64_t bytes) {
  EchoResult result;
  std::vector<std::string> protocols{std::string(kEchoProtocol)};
  auto stream = co_await host.new_stream(peer, std::move(protocols));
  if (!stream) {
    result.error = stream.error().message;
    co_return result;
  }
  auto writer = [](std::shared_ptr<Stream> s, std::uint64_t total,
                   std::string& hash) -> asio::awaitable<std::string> {
    Sha256 sha;
    Bytes chunk(kChunk);
    std::uint64_t left = total;
    while (left > 0) {
      std::size_t size = static_cast<std::size_t>(std::min<std::uint64_t>(left, chunk.size()));
      RAND_bytes(chunk.data(), static_cast<int>(size));
      sha.update(ByteView(chunk.data(), size));
      auto written = co_await s->write_all(ByteView(chunk.data(), size));
      if (!written) co_return written.error().message;
      left -= size;
    }
    hash = sha.finish();
    auto closed = co_await s->close_write();
    co_return closed ? std::string() : closed.error().message;
  };
  auto reader = [](std::shared_ptr<Stream> s, std::string& hash,
                   std::uint64_t& received) -> asio::awaitable<std::string> {
    Sha256 sha;
    Bytes buffer(kChunk);
    for (;;) {
      auto got = co_await s->read_some(buffer);
      if (!got) co_return got.error().message;
      if (*got == 0) break;
      sha.update(ByteView(buffer.data(), *got));
      received += *got;
    }
    hash = sha.finish();
    co_return std::string();
  };
  using namespace asio::experimental::awaitable_operators;
  auto [write_error, read_error] =
      co_await (writer(*stream, bytes, result.sent_hash) &&
                reader(*stream, result.received_hash, result.received));
  result.error = !write_error.empty() ? write_error : read_error;
  result.ok =
      result.error.empty() && result.received == bytes && result.sent_hash == result.received_hash;
  if (result.error.empty() && !result.ok) result.error = "echo differs from what was sent";
  co_return result;
}

// ---- Benchmark actions ----------------------------------------------------------------------

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Reads to EOF and discards, then closes our side: the dialer's "done" signal.
asio::awaitable<void> serve_sink(std::shared_ptr<Stream> stream) {
  Bytes buffer(kChunk);
  for (;;) {
    auto got = co_await stream->read_some(buffer);
    if (!got || *got == 0) break;
  }
  (void)co_await stream->close_write();
}

// One stream, one direction: `bytes` bytes (one random chunk, repeated) to the sink, then our
// close, then the sink's close, which says that it has read everything.
asio::awaitable<Expected<double>> send_once(Host& host, PeerId peer, std::uint64_t bytes) {
  Bytes chunk(kChunk);
  RAND_bytes(chunk.data(), static_cast<int>(chunk.size()));
  auto start = Clock::now();
  std::vector<std::string> protocols{std::string(kSinkProtocol)};
  auto stream = co_await host.new_stream(peer, std::move(protocols));
  if (!stream) co_return tl::unexpected(stream.error());
  std::uint64_t left = bytes;
  while (left > 0) {
    std::size_t size = static_cast<std::size_t>(std::min<std::uint64_t>(left, chunk.size()));
    auto written = co_await (*stream)->write_all(ByteView(chunk.data(), size));
    if (!written) co_return tl::unexpected(written.error());
    left -= size;
  }
  auto closed = co_await (*stream)->close_write();
  if (!closed) co_return tl::unexpected(closed.error());
  Bytes buffer(4096);
  for (;;) {
    auto got = co_await (*stream)->read_some(buffer);
    if (!got) co_return tl::unexpected(got.error());
    if (*got == 0) break;
  }
  co_return seconds_since(start);
}

asio::awaitable<void> sleep_for(std::chrono::milliseconds duration) {
  asio::steady_timer timer(co_await asio::this_coro::executor, duration);
  co_await timer.async_wait(net::use_tuple);
}

// N fresh connections in sequence; each timed from the TCP connect to the first byte echoed on
// its first stream, then closed (and waited for) so that the next one is new too.
asio::awaitable<Expected<std::vector<double>>> connect_latency(Host& host, const Multiaddr& address,
                                                               const PeerId& peer, int count) {
  std::vector<double> samples;
  for (int i = 0; i < count; ++i) {
    auto start = Clock::now();
    auto connection = co_await host.connect(address);
    if (!connection) co_return tl::unexpected(connection.error());
    // Lazy negotiation, as go-libp2p's NewStream does: the first byte follows the proposal.
    auto stream = host.new_stream_optimistic(peer, std::string(kEchoProtocol));
    if (!stream) co_return tl::unexpected(stream.error());
    std::uint8_t byte = static_cast<std::uint8_t>(i);
    auto written = co_await (*stream)->write_all(ByteView(&byte, 1));
    if (!written) co_return tl::unexpected(written.error());
    std::uint8_t echoed = 0;
    auto read = co_await net::read_exact(**stream, std::span<std::uint8_t>(&echoed, 1));
    if (!read) co_return tl::unexpected(read.error());
    samples.push_back(seconds_since(start) * 1000);
    (void)co_await (*stream)->close_write();
    *stream = nullptr;
    host.disconnect(peer);
    for (int wait = 0; wait < 5000 && host.connection_to(peer); ++wait)
      co_await sleep_for(std::chrono::milliseconds(1));
    if (host.connection_to(peer)) co_return fail("connection did not close");
  }
  co_return samples;
}

// One bare upgrade, done when the first secured byte from the listener arrives (its identify
// stream opening): proof that the listener finished its side too. Then closed.
asio::awaitable<Expected<void>> upgrade_once(const net::LocalIdentity& identity,
                                             const Multiaddr& address, const PeerId& peer) {
  auto socket = co_await net::dial_tcp(address, std::chrono::milliseconds(10000));
  if (!socket) co_return tl::unexpected(socket.error());
  auto transport = std::make_unique<net::TcpByteStream>(std::move(*socket));
  auto upgraded = co_await net::upgrade_outbound(std::move(transport), identity, peer);
  if (!upgraded) co_return tl::unexpected(upgraded.error());
  auto& secure = *upgraded->secure;
  Bytes buffer(4096);
  auto got = co_await secure.read_some(buffer);
  secure.abort();
  if (!got) co_return tl::unexpected(got.error());
  if (*got == 0) co_return fail("closed by the listener before its first frame");
  co_return Expected<void>{};
}

// Runs `count` jobs with at most `concurrency` in flight; returns how many failed and the first
// error.
template <class Job>
asio::awaitable<std::pair<int, std::string>> run_bounded(int count, int concurrency, Job job) {
  auto executor = co_await asio::this_coro::executor;
  int next = 0;
  int finished = 0;
  int failed = 0;
  std::string first_error;
  net::Signal done(executor);
  auto worker = [&]() -> asio::awaitable<void> {
    while (next < count) {
      int index = next++;
      Expected<void> result = co_await job(index);
      if (!result) {
        ++failed;
        if (first_error.empty()) first_error = result.error().message;
      }
      ++finished;
      done.notify();
    }
  };
  for (int i = 0; i < std::min(count, concurrency); ++i)
    asio::co_spawn(executor, worker(), asio::detached);
  while (finished < count)
    co_await done.wait();
  co_return std::make_pair(failed, first_error);
}

// Completes when stdin reaches EOF (or fails).
asio::awaitable<void> wait_for_stdin_eof() {
  asio::posix::stream_descriptor input(co_await asio::this_coro::executor, ::dup(STDIN_FILENO));
  std::array<char, 256> sink;
  for (;;) {
    auto [ec, count] = co_await input.async_read_some(asio::buffer(sink), net::use_tuple);
    (void)count;
    if (ec) break;
  }
}

void raise_fd_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
}

asio::awaitable<void> run_dial(asio::io_context& io, Host& host, Options options,
                               nlohmann::json& out, int& exit_code) {
  auto address = Multiaddr::parse(options.target);
  if (!address) {
    out = {{"error", address.error().message}};
    co_return;
  }
  // Benchmark actions that make connections of their own run before the main connection.
  if (options.connect_latency > 0 || options.connections > 0 || options.hold > 0) {
    auto peer_text = address->peer_id_component();
    auto target_peer = PeerId::parse(peer_text ? *peer_text : std::string());
    if (!target_peer) {
      out = {{"error", "the dial address must end in /p2p/<peer id>"}};
      co_return;
    }
    if (options.connect_latency > 0) {
      auto samples =
          co_await connect_latency(host, *address, *target_peer, options.connect_latency);
      if (!samples) {
        out = {{"error", "connect-latency: " + samples.error().message}};
        co_return;
      }
      out["connect_latency_ms"] = *samples;
    }
    if (options.connections > 0) {
      // One identity per connection, made before the clock starts: the listener sees distinct
      // peers (as from a crowd of dialers), and with one peer ID it would open identify on
      // whichever connection to that peer it finds first, not necessarily the new one.
      std::vector<net::LocalIdentity> identities;
      for (int i = 0; i < options.connections; ++i)
        identities.push_back(make_identity("", options.security, options.muxers));
      auto start = Clock::now();
      auto [failed, first_error] = co_await run_bounded(
          options.connections, options.concurrency,
          [&](int index) { return upgrade_once(identities[index], *address, *target_peer); });
      double seconds = seconds_since(start);
      out["connections"] = {{"opened", options.connections},
                            {"ok", options.connections - failed},
                            {"failed", failed},
                            {"seconds", seconds}};
      if (failed > 0) {
        out["error"] = std::to_string(failed) + " connections failed; first error: " + first_error;
        co_return;
      }
    }
    if (options.hold > 0) {
      // Each connection from its own host: the listener sees `hold` distinct peers.
      std::vector<std::unique_ptr<Host>> hosts;
      net::HostConfig config;
      config.agent_version = std::string("agentnetwork/") + kVersion;
      for (int i = 0; i < options.hold; ++i)
        hosts.push_back(std::make_unique<Host>(
            io, make_identity("", options.security, options.muxers), config));
      auto start = Clock::now();
      auto [failed, first_error] = co_await run_bounded(
          options.hold, options.concurrency, [&](int index) -> asio::awaitable<Expected<void>> {
            auto connection = co_await hosts[index]->connect(*address);
            if (!connection) co_return tl::unexpected(connection.error());
            for (int wait = 0; wait < 10000; ++wait) {
              auto info = hosts[index]->peer_info(*target_peer);
              if (info && info->identified) co_return Expected<void>{};
              co_await sleep_for(std::chrono::milliseconds(1));
            }
            co_return fail("identify: no answer from the peer");
          });
      double seconds = seconds_since(start);
      out["hold"] = {{"opened", options.hold},
                     {"ok", options.hold - failed},
                     {"failed", failed},
                     {"seconds", seconds}};
      std::printf("%s\n",
                  nlohmann::json{
                      {"holding", options.hold - failed}, {"failed", failed}, {"seconds", seconds}}
                      .dump()
                      .c_str());
      std::fflush(stdout);
      if (failed > 0) {
        out["error"] = std::to_string(failed) + " connections failed; first error: " + first_error;
      } else {
        co_await wait_for_stdin_eof();
      }
      for (auto& each : hosts)
        each->close();
      if (failed > 0) co_return;
    }
  }
  auto connection = co_await host.connect(*address);
  if (!connection) {
    out = {{"error", connection.error().message}};
    co_return;
  }
  PeerId peer = (*connection)->remote_peer();
  out["remote_peer"] = peer.to_string();
  auto executor = co_await asio::this_coro::executor;

  if (options.identify) {
    asio::steady_timer wait(executor);
    for (int i = 0; i < 1000; ++i) {
      auto info = host.peer_info(peer);
      if (info && info->identified) break;
      wait.expires_after(std::chrono::milliseconds(10));
      co_await wait.async_wait(net::use_tuple);
    }
    auto info = host.peer_info(peer);
    if (!info || !info->identified) {
      out = {{"error", "identify: no answer from the peer"}};
      co_return;
    }
    nlohmann::json identify;
    identify["agent_version"] = info->agent_version;
    identify["protocol_version"] = info->protocol_version;
    identify["protocols"] = info->protocols;
    std::vector<std::string> addrs;
    for (const auto& a : info->addresses)
      addrs.push_back(a.to_string());
    identify["listen_addrs"] = addrs;
    identify["observed_addr"] =
        info->observed_address ? nlohmann::json(info->observed_address->to_string()) : nullptr;
    identify["public_key_peer_id"] = peer.to_string();
    out["identify"] = identify;
  }
  if (options.ping > 0) {
    std::vector<double> rtts;
    for (int i = 0; i < options.ping; ++i) {
      auto rtt = co_await host.ping(peer);
      if (!rtt) {
        out = {{"error", "ping: " + rtt.error().message}};
        co_return;
      }
      rtts.push_back(std::chrono::duration<double, std::milli>(*rtt).count());
    }
    out["ping_rtts_ms"] = rtts;
  }
  if (options.echo > 0) {
    auto start = std::chrono::steady_clock::now();
    auto result = co_await echo_once(host, peer, options.echo);
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!result.ok) {
      out = {{"error", "echo: " + result.error}};
      co_return;
    }
    out["echo"] = {{"bytes", options.echo},
                   {"sha256_sent", result.sent_hash},
                   {"sha256_received", result.received_hash},
                   {"seconds", seconds}};
  }
  if (options.streams > 0) {
    int ok = 0;
    int failed = 0;
    int finished = 0;
    std::string first_error;
    net::Signal done(executor);
    for (int i = 0; i < options.streams; ++i) {
      asio::co_spawn(
          executor,
          [&host, &ok, &failed, &finished, &done, &first_error, peer,
           bytes = options.stream_bytes]() -> asio::awaitable<void> {
            auto result = co_await echo_once(host, peer, bytes);
            (result.ok ? ok : failed) += 1;
            if (!result.ok && first_error.empty()) first_error = result.error;
            ++finished;
            done.notify();
          },
          asio::detached);
    }
    while (finished < options.streams)
      co_await done.wait();
    out["streams"] = {{"opened", options.streams}, {"ok", ok}, {"failed", failed}};
    if (failed > 0) {
      out["error"] = std::to_string(failed) + " streams failed; first error: " + first_error;
      co_return;
    }
  }
  if (options.send > 0) {
    auto seconds = co_await send_once(host, peer, options.send);
    if (!seconds) {
      out = {{"error", "send: " + seconds.error().message}};
      co_return;
    }
    out["send"] = {{"bytes", options.send}, {"seconds", *seconds}};
  }
  exit_code = 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options = parse(argc, argv);
  raise_fd_limit();  // --hold and many inbound connections need more than 1024 descriptors
  asio::io_context io(1);
  net::HostConfig config;
  config.agent_version = std::string("agentnetwork/") + kVersion;
  Host host(io, make_identity(options.key, options.security, options.muxers), config);
  host.set_handler(std::string(kEchoProtocol),
                   [](std::shared_ptr<Stream> stream) { return serve_echo(std::move(stream)); });
  host.set_handler(std::string(kSinkProtocol),
                   [](std::shared_ptr<Stream> stream) { return serve_sink(std::move(stream)); });

  if (options.mode == "listen") {
    auto address = Multiaddr::parse(options.listen);
    if (!address) die(address.error().message);
    auto bound = host.listen(*address);
    if (!bound) die(bound.error().message);
    std::string with_id = bound->to_string() + "/p2p/" + host.peer_id().to_string();
    std::printf("%s\n",
                nlohmann::json{{"peer_id", host.peer_id().to_string()}, {"addrs", {with_id}}}
                    .dump()
                    .c_str());
    std::fflush(stdout);
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const std::error_code&, int) { io.stop(); });
    asio::posix::stream_descriptor input(io, ::dup(STDIN_FILENO));
    std::array<char, 256> sink;
    std::function<void(const std::error_code&, std::size_t)> on_read;
    on_read = [&](const std::error_code& ec, std::size_t) {
      if (ec) {
        io.stop();
        return;
      }
      input.async_read_some(asio::buffer(sink), on_read);
    };
    input.async_read_some(asio::buffer(sink), on_read);
    io.run();
    return 0;
  }

  nlohmann::json out = nlohmann::json::object();
  int exit_code = 1;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        using namespace asio::experimental::awaitable_operators;
        asio::steady_timer deadline(io, std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::duration<double>(options.timeout)));
        auto result = co_await (run_dial(io, host, options, out, exit_code) ||
                                deadline.async_wait(net::use_tuple));
        if (result.index() == 1) {
          out = {{"error", "timed out"}};
          exit_code = 1;
        }
        host.close();
        io.stop();
      },
      asio::detached);
  io.run();
  if (exit_code != 0 && !out.contains("error")) out["error"] = "failed";
  std::printf("%s\n", out.dump().c_str());
  std::fflush(stdout);
  return exit_code;
}
