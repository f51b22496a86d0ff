// an-p2p: our side of the interoperability tests. It mirrors tests/interop/peer.mjs (the
// js-libp2p peer) flag for flag and field for field, so the runner can put either
// implementation in either role. Built on the same host as the node.
//
//   an-p2p listen [--listen MULTIADDR] [--key FILE]
//   an-p2p dial MULTIADDR/p2p/ID [--identify] [--ping N] [--echo BYTES]
//                [--streams N --stream-bytes B] [--timeout SEC] [--key FILE]
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <asio.hpp>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "node/identity.h"
#include "p2p/crypto/keys.h"
#include "p2p/net/async.h"
#include "p2p/net/host.h"
#include "util/version.h"

namespace {

using namespace an;
using namespace an::p2p;
using net::Host;
using net::Stream;

constexpr std::string_view kEchoProtocol = "/echo/1.0.0";
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
};

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
      else
        die("unknown option --" + name);
    } catch (const std::exception&) {
      die("bad value for --" + name + ": " + value);
    }
  }
  if (options.mode == "dial" && options.target.empty()) die("dial needs a MULTIADDR");
  return options;
}

net::LocalIdentity make_identity(const std::string& key_file) {
  Ed25519PrivateKey key = [&] {
    if (key_file.empty()) {
      auto generated = Ed25519PrivateKey::generate();
      if (!generated) die(generated.error().message);
      return std::move(*generated);
    }
    auto loaded = node::load_or_create_identity(key_file);
    if (!loaded) die(loaded.error().message);
    return std::move(loaded->first.key);
  }();
  auto noise_static = noise::X25519KeyPair::generate();
  if (!noise_static) die(noise_static.error().message);
  auto peer = PeerId::from_public_key(key.public_key());
  return net::LocalIdentity{std::move(key), std::move(peer), std::move(*noise_static)};
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

asio::awaitable<void> run_dial(Host& host, Options options, nlohmann::json& out, int& exit_code) {
  auto address = Multiaddr::parse(options.target);
  if (!address) {
    out = {{"error", address.error().message}};
    co_return;
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
  exit_code = 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options = parse(argc, argv);
  asio::io_context io(1);
  net::HostConfig config;
  config.agent_version = std::string("agentnetwork/") + kVersion;
  Host host(io, make_identity(options.key), config);
  host.set_handler(std::string(kEchoProtocol),
                   [](std::shared_ptr<Stream> stream) { return serve_echo(std::move(stream)); });

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
        auto result = co_await (run_dial(host, options, out, exit_code) ||
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
