// Helpers for the p2p net tests: identities, driving coroutines on one io_context in the test
// thread with bounded waits, patterned payloads, loopback socket pairs and a test peer (a Host
// with recorded events and a few test protocols).
#pragma once

#include <gtest/gtest.h>

#include <asio.hpp>
#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "p2p/crypto/ed25519.h"
#include "p2p/crypto/peer_id.h"
#include "p2p/net/async.h"
#include "p2p/net/host.h"
#include "p2p/net/upgrade.h"
#include "p2p/noise/x25519.h"

namespace an::p2p::net::test {

// Every wait in these tests is bounded by this, only so that a broken build fails instead of
// hanging; on a healthy build everything finishes far sooner.
inline constexpr std::chrono::seconds kWaitLimit{20};

inline constexpr std::string_view kEchoProtocol = "/test/echo/1.0.0";
inline constexpr std::string_view kHoldProtocol = "/test/hold/1.0.0";
inline constexpr std::string_view kHalfCloseProtocol = "/test/half-close/1.0.0";

// Ed25519 unless asked otherwise.
inline LocalIdentity make_identity(KeyType type = KeyType::kEd25519) {
  auto key = PrivateKey::generate(type);
  auto noise_static = noise::X25519KeyPair::generate();
  EXPECT_TRUE(key && noise_static);
  PeerId peer_id = key->peer_id();
  return LocalIdentity{std::move(*key), std::move(peer_id), std::move(*noise_static)};
}

inline bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

// Runs `io` in the test thread until `done()` or until `limit` has passed; false on the latter.
template <class Predicate>
bool run_until(asio::io_context& io, Predicate done,
               std::chrono::steady_clock::duration limit = kWaitLimit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    if (io.stopped()) io.restart();
    io.run_for(std::chrono::milliseconds(2));
  }
  return true;
}

// Runs whatever is ready now (e.g. lets freshly spawned coroutines reach their first wait).
inline void run_pending(asio::io_context& io) {
  for (int i = 0; i < 20; ++i) {
    if (io.stopped()) io.restart();
    io.poll();
  }
}

// Runs the coroutine made by `function` (a callable returning asio::awaitable<T>) to completion
// and returns its value; nullopt (and a test failure) when it does not finish within `limit`.
// The completion state is shared, so a coroutine that outlives the wait writes nowhere stale.
template <class Function>
auto run_coroutine(asio::io_context& io, Function function,
                   std::chrono::steady_clock::duration limit = kWaitLimit) {
  using Awaitable = std::invoke_result_t<Function&>;
  using Value = typename Awaitable::value_type;
  if constexpr (std::is_void_v<Value>) {
    auto finished = std::make_shared<bool>(false);
    auto error = std::make_shared<std::exception_ptr>();
    asio::co_spawn(io, std::move(function), [finished, error](std::exception_ptr thrown) {
      *error = thrown;
      *finished = true;
    });
    bool in_time = run_until(
        io, [&] { return *finished; }, limit);
    EXPECT_TRUE(in_time) << "coroutine did not finish in time";
    if (*error) std::rethrow_exception(*error);
    return in_time;
  } else {
    auto result = std::make_shared<std::optional<Value>>();
    auto error = std::make_shared<std::exception_ptr>();
    asio::co_spawn(io, std::move(function),
                   [result, error](std::exception_ptr thrown, Value value) {
                     *error = thrown;
                     result->emplace(std::move(value));
                   });
    bool in_time = run_until(
        io, [&] { return result->has_value(); }, limit);
    EXPECT_TRUE(in_time) << "coroutine did not finish in time";
    if (*error) std::rethrow_exception(*error);
    return std::move(*result);
  }
}

// Bytes whose value depends on their position and on `seed`, so that a lost, duplicated or
// reordered chunk shows up when compared.
inline Bytes patterned_bytes(std::size_t size, std::uint32_t seed = 0) {
  Bytes bytes(size);
  for (std::size_t i = 0; i < size; ++i) {
    bytes[i] = static_cast<std::uint8_t>((i * 31 + (i >> 8) * 7 + seed * 13) & 0xff);
  }
  return bytes;
}

inline Bytes text_bytes(std::string_view text) {
  return Bytes(text.begin(), text.end());
}

// Reads until EOF; the error of the first failed read otherwise.
inline asio::awaitable<Expected<Bytes>> read_until_eof(ByteStream& stream) {
  Bytes data;
  Bytes buffer(64 * 1024);
  for (;;) {
    auto got = co_await stream.read_some(buffer);
    if (!got) co_return tl::unexpected(got.error());
    if (*got == 0) co_return data;
    data.insert(data.end(), buffer.begin(), buffer.begin() + static_cast<long>(*got));
  }
}

// Writes `data`, then half-closes.
inline asio::awaitable<Expected<void>> write_and_close(ByteStream& stream, ByteView data) {
  auto written = co_await stream.write_all(data);
  if (!written) co_return written;
  co_return co_await stream.close_write();
}

// Writes `data` and half-closes while reading everything the peer sends back, concurrently (an
// echo of a large payload would otherwise fill both flow-control windows and stall).
inline asio::awaitable<Expected<Bytes>> send_and_receive(ByteStream& stream, ByteView data) {
  using namespace asio::experimental::awaitable_operators;
  auto [written, received] = co_await (write_and_close(stream, data) && read_until_eof(stream));
  if (!written) co_return tl::unexpected(written.error());
  co_return received;
}

// Echoes everything until EOF, then half-closes.
inline asio::awaitable<void> serve_echo(std::shared_ptr<Stream> stream) {
  Bytes buffer(64 * 1024);
  for (;;) {
    auto got = co_await stream->read_some(buffer);
    if (!got || *got == 0) break;
    auto written = co_await stream->write_all(ByteView(buffer.data(), *got));
    if (!written) co_return;
  }
  (void)co_await stream->close_write();
}

// Two connected TCP sockets on 127.0.0.1.
struct SocketPair {
  asio::ip::tcp::socket client;
  asio::ip::tcp::socket server;
};

inline SocketPair connect_loopback(asio::io_context& io) {
  asio::ip::tcp::acceptor acceptor(io,
                                   asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  asio::ip::tcp::socket client(io);
  client.connect(acceptor.local_endpoint());
  asio::ip::tcp::socket server = acceptor.accept();
  return SocketPair{std::move(client), std::move(server)};
}

// A Host listening on 127.0.0.1 (port 0) that records what happens to it and serves the test
// protocols: echo, hold (keeps the inbound stream for the test) and half-close (reads to EOF,
// then answers with what it got).
inline LocalIdentity with_muxers(LocalIdentity identity, std::vector<std::string> muxers) {
  if (!muxers.empty()) identity.muxers = std::move(muxers);
  return identity;
}

class TestPeer {
 public:
  struct HalfCloseRecord {
    Expected<Bytes> received;
  };

  TestPeer(asio::io_context& io, std::string agent_version, KeyType key_type = KeyType::kEd25519)
      : TestPeer(io, std::move(agent_version), make_identity(key_type)) {}

  // `muxers` replaces the default muxer list when not empty.
  TestPeer(asio::io_context& io, std::string agent_version, std::vector<std::string> muxers)
      : TestPeer(io, std::move(agent_version), with_muxers(make_identity(), std::move(muxers))) {}

  // A host whose resource manager enforces `limits`.
  TestPeer(asio::io_context& io, std::string agent_version, rcmgr::LimitConfig limits)
      : TestPeer(io, std::move(agent_version), make_identity(),
                 std::make_shared<rcmgr::ResourceManager>(std::move(limits))) {}

  TestPeer(asio::io_context& io, std::string agent_version, LocalIdentity identity,
           std::shared_ptr<rcmgr::ResourceManager> resources = nullptr) {
    HostConfig config;
    config.agent_version = std::move(agent_version);
    config.resources = std::move(resources);
    host_ = std::make_unique<Host>(io, std::move(identity), config);
    host_->set_handler(std::string(kEchoProtocol), serve_echo);
    host_->set_handler(std::string(kHoldProtocol),
                       [this](std::shared_ptr<Stream> stream) -> asio::awaitable<void> {
                         held_streams.push_back(std::move(stream));
                         co_return;
                       });
    host_->set_handler(std::string(kHalfCloseProtocol),
                       [this](std::shared_ptr<Stream> stream) -> asio::awaitable<void> {
                         auto received = co_await read_until_eof(*stream);
                         half_close_records.push_back(HalfCloseRecord{received});
                         if (!received) co_return;
                         std::string answer = "received " + std::to_string(received->size());
                         (void)co_await write_and_close(*stream, text_bytes(answer));
                       });
    host_->on_connection([this](const ConnectionEvent& event) { events.push_back(event); });
    host_->on_inbound_failure([this](const Multiaddr&, const std::string& reason) {
      inbound_failures.push_back(reason);
    });
    host_->on_peer_identified(
        [this](const PeerId& peer, const PeerInfo&) { identified_peers.push_back(peer); });
    auto listen_on = Multiaddr::parse("/ip4/127.0.0.1/tcp/0");
    EXPECT_TRUE(listen_on);
    auto bound = host_->listen(*listen_on);
    EXPECT_TRUE(bound) << (bound ? "" : bound.error().message);
    if (bound) listen_address_ = *bound;
  }

  Host& host() { return *host_; }
  const PeerId& id() const { return host_->peer_id(); }
  // /ip4/127.0.0.1/tcp/P
  const Multiaddr& listen_address() const { return listen_address_; }
  // /ip4/127.0.0.1/tcp/P/p2p/ID
  Multiaddr dial_address() const { return listen_address_.with_peer_id(id()); }
  std::uint16_t port() const {
    return static_cast<std::uint16_t>(std::stoul(*listen_address_.value_of(kProtocolTcp)));
  }

  bool identified(const PeerId& peer) const {
    const PeerInfo* info = host_->peer_info(peer);
    return info != nullptr && info->identified;
  }
  std::size_t disconnect_events() const {
    std::size_t count = 0;
    for (const auto& event : events)
      count += event.connected ? 0 : 1;
    return count;
  }

  std::vector<ConnectionEvent> events;
  std::vector<std::string> inbound_failures;
  std::vector<PeerId> identified_peers;
  std::vector<std::shared_ptr<Stream>> held_streams;
  std::vector<HalfCloseRecord> half_close_records;

 private:
  std::unique_ptr<Host> host_;
  Multiaddr listen_address_;
};

}  // namespace an::p2p::net::test
