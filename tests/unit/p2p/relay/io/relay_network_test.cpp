// Circuit relay v2 end to end over 127.0.0.1: a relay A (RelayService), a peer B without a TCP
// listener that reserves on A (RelayClient), and a peer C that reaches B through A. Identify,
// ping and an echo protocol over the circuit both ways, the circuit limits, refusals, a hostile
// hop client, reservations ending and being refreshed, and teardown with work in flight.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "p2p/net/framed.h"
#include "p2p/relay/io/relay_client.h"
#include "p2p/relay/io/relay_service.h"
#include "p2p/relay/messages.h"
#include "unit/p2p/net/net_test_support.h"

namespace an::p2p::net::test {
namespace {

using relay::circuit_duration;
using relay::RelayClient;
using relay::RelayClientConfig;
using relay::RelayReservation;
using relay::RelayService;

using Strings = std::vector<std::string>;

// A host that only dials out (no TCP listener): reachable through a relay alone.
class ListenlessPeer {
 public:
  ListenlessPeer(asio::io_context& io, std::string agent_version) {
    HostConfig config;
    config.agent_version = std::move(agent_version);
    host_ = std::make_unique<Host>(io, make_identity(), config);
    host_->set_handler(std::string(kEchoProtocol), serve_echo);
  }
  Host& host() { return *host_; }
  const PeerId& id() const { return host_->peer_id(); }
  bool identified(const PeerId& peer) const {
    const PeerInfo* info = host_->peer_info(peer);
    return info != nullptr && info->identified;
  }
  void reset() { host_.reset(); }

 private:
  std::unique_ptr<Host> host_;
};

Multiaddr parse(const std::string& text) {
  auto parsed = Multiaddr::parse(text);
  EXPECT_TRUE(parsed) << text;
  return parsed ? *parsed : Multiaddr();
}

class RelayNetworkTest : public ::testing::Test {
 protected:
  // C dials circuit addresses: its relay client is the host's circuit dialer.
  RelayNetworkTest() { c_client.start(); }

  void start_relay(relay::RelayLimits limits = {}) {
    service = std::make_unique<RelayService>(relay_peer.host(), limits);
    service->on_reservation(
        [this](const PeerId& peer, bool active) { reservation_events.emplace_back(peer, active); });
    service->start();
  }

  void start_b_client(RelayClientConfig config = {}) {
    b_client = std::make_unique<RelayClient>(b.host(), config);
    b_client->on_addresses_changed([this](const std::vector<Multiaddr>& addresses) {
      b_address_changes.push_back(addresses);
    });
    b_client->start();
  }

  Expected<std::shared_ptr<Connection>> connect(Host& from, const Multiaddr& address) {
    auto result =
        run_coroutine(io, [&]() -> asio::awaitable<Expected<std::shared_ptr<Connection>>> {
          co_return co_await from.connect(address);
        });
    if (!result) return fail("connect did not finish");
    return std::move(*result);
  }

  Expected<RelayReservation> reserve(RelayClient& client, const PeerId& relay) {
    // co_spawn needs a default-constructible result, which a reservation is not.
    using Result = std::shared_ptr<Expected<RelayReservation>>;
    auto result = run_coroutine(io, [&]() -> asio::awaitable<Result> {
      co_return std::make_shared<Expected<RelayReservation>>(co_await client.reserve(relay));
    });
    if (!result || !*result) return fail("reserve did not finish");
    return std::move(**result);
  }

  // B connects to the relay and reserves a slot.
  void b_reserves() {
    if (!b_client) start_b_client();
    auto connected = connect(b.host(), relay_peer.dial_address());
    ASSERT_TRUE(connected) << connected.error().message;
    auto reservation = reserve(*b_client, relay_peer.id());
    ASSERT_TRUE(reservation) << reservation.error().message;
  }

  // /ip4/127.0.0.1/tcp/P/p2p/A/p2p-circuit/p2p/B
  Multiaddr b_circuit_address() {
    return parse(relay_peer.dial_address().to_string() + "/p2p-circuit/p2p/" + b.id().to_string());
  }

  Expected<std::shared_ptr<Connection>> c_dials_b() {
    return connect(c.host(), b_circuit_address());
  }

  Expected<std::shared_ptr<Stream>> open_stream(Host& from, const PeerId& to, Strings protocols) {
    auto result = run_coroutine(io, [&]() -> asio::awaitable<Expected<std::shared_ptr<Stream>>> {
      co_return co_await from.new_stream(to, std::move(protocols));
    });
    if (!result) return fail("new_stream did not finish");
    return std::move(*result);
  }

  Expected<Bytes> echo(Host& from, const PeerId& to, const Bytes& data) {
    auto stream = open_stream(from, to, Strings{std::string(kEchoProtocol)});
    if (!stream) return tl::unexpected(stream.error());
    auto result = run_coroutine(io, [&]() -> asio::awaitable<Expected<Bytes>> {
      co_return co_await send_and_receive(**stream, data);
    });
    if (!result) return fail("echo did not finish");
    return std::move(*result);
  }

  Expected<std::chrono::nanoseconds> ping(Host& from, const PeerId& to) {
    auto result = run_coroutine(io, [&]() -> asio::awaitable<Expected<std::chrono::nanoseconds>> {
      co_return co_await from.ping(to);
    });
    if (!result) return fail("ping did not finish");
    return *result;
  }

  // Sends raw bytes on a fresh hop stream to the relay and reads its answer, if any.
  Expected<std::optional<Bytes>> raw_hop_exchange(Host& from, const Bytes& raw) {
    auto stream = open_stream(from, relay_peer.id(), Strings{std::string(relay::kHopProtocolId)});
    if (!stream) return tl::unexpected(stream.error());
    auto result = run_coroutine(io, [&]() -> asio::awaitable<Expected<std::optional<Bytes>>> {
      auto written = co_await (*stream)->write_all(raw);
      if (!written) co_return tl::unexpected(written.error());
      co_return co_await read_framed(**stream, relay::kMaxMessageSize);
    });
    if (!result) return fail("hop exchange did not finish");
    return std::move(*result);
  }

  bool has_event(const PeerId& peer, bool active) const {
    return std::find(reservation_events.begin(), reservation_events.end(),
                     std::make_pair(peer, active)) != reservation_events.end();
  }

  asio::io_context io;
  TestPeer relay_peer{io, "test-agent/relay"};
  ListenlessPeer b{io, "test-agent/b"};
  TestPeer c{io, "test-agent/c"};
  RelayClient c_client{c.host()};
  std::unique_ptr<RelayService> service;
  std::unique_ptr<RelayClient> b_client;
  std::vector<std::pair<PeerId, bool>> reservation_events;
  std::vector<std::vector<Multiaddr>> b_address_changes;
};

TEST_F(RelayNetworkTest, ReservationCarriesExpiryAddressesLimitAndVoucher) {
  relay::RelayLimits limits;
  limits.reservation_ttl = std::chrono::minutes(10);
  start_relay(limits);
  start_b_client();
  ASSERT_TRUE(connect(b.host(), relay_peer.dial_address()));
  const auto before = std::chrono::system_clock::now();
  auto reservation = reserve(*b_client, relay_peer.id());
  ASSERT_TRUE(reservation) << reservation.error().message;

  EXPECT_EQ(reservation->relay, relay_peer.id());
  EXPECT_GE(reservation->expires, before + std::chrono::minutes(10) - std::chrono::seconds(2));
  EXPECT_LE(reservation->expires, std::chrono::system_clock::now() + std::chrono::minutes(10));
  EXPECT_EQ(reservation->relay_addresses, std::vector<Multiaddr>{relay_peer.dial_address()});
  EXPECT_EQ(reservation->voucher.relay, relay_peer.id());
  EXPECT_EQ(reservation->voucher.peer, b.id());
  EXPECT_EQ(reservation->voucher.expiration, reservation->expire_unix);
  ASSERT_TRUE(reservation->limit);
  EXPECT_EQ(reservation->limit->duration_seconds, 120u);
  EXPECT_EQ(reservation->limit->data_bytes, relay::kDefaultCircuitData);

  const std::vector<Multiaddr> expected{b_circuit_address()};
  EXPECT_EQ(b_client->relayed_addresses(), expected);
  ASSERT_FALSE(b_address_changes.empty());
  EXPECT_EQ(b_address_changes.back(), expected);
  EXPECT_EQ(service->reservation_count(), 1u);
  EXPECT_TRUE(has_event(b.id(), true));
}

TEST_F(RelayNetworkTest, IdentifyPingAndEchoWorkOverTheCircuitBothWays) {
  start_relay();
  b_reserves();
  auto connection = c_dials_b();
  ASSERT_TRUE(connection) << connection.error().message;
  EXPECT_TRUE((*connection)->relayed());
  EXPECT_EQ((*connection)->remote_peer(), b.id());
  EXPECT_EQ((*connection)->remote_address(), b_circuit_address());
  EXPECT_EQ(service->circuit_count(), 1u);

  ASSERT_TRUE(run_until(io, [&] { return c.identified(b.id()) && b.identified(c.id()); }))
      << "identify over the circuit did not complete";
  const PeerInfo* c_seen_by_b = b.host().peer_info(c.id());
  ASSERT_NE(c_seen_by_b, nullptr);
  EXPECT_EQ(c_seen_by_b->agent_version, "test-agent/c");

  auto b_side = b.host().connection_to(c.id());
  ASSERT_NE(b_side, nullptr);
  EXPECT_TRUE(b_side->relayed());
  EXPECT_EQ(b_side->direction(), Direction::kInbound);
  EXPECT_EQ(b_side->remote_address(), parse(relay_peer.dial_address().to_string() +
                                            "/p2p-circuit/p2p/" + c.id().to_string()));
  // Identify's observed addresses take go's form for relayed connections (no trailing /p2p/;
  // js refuses an observed address that does not start with an IP or DNS part).
  const PeerInfo* b_seen_by_c = c.host().peer_info(b.id());
  ASSERT_NE(b_seen_by_c, nullptr);
  ASSERT_TRUE(b_seen_by_c->observed_address);
  EXPECT_EQ(*b_seen_by_c->observed_address,
            parse(relay_peer.dial_address().to_string() + "/p2p-circuit"));
  ASSERT_TRUE(c_seen_by_b->observed_address);
  EXPECT_EQ(*c_seen_by_b->observed_address,
            parse(relay_peer.dial_address().to_string() + "/p2p-circuit"));

  auto c_to_b = ping(c.host(), b.id());
  EXPECT_TRUE(c_to_b) << c_to_b.error().message;
  auto b_to_c = ping(b.host(), c.id());
  EXPECT_TRUE(b_to_c) << b_to_c.error().message;

  const Bytes payload = patterned_bytes(20000, 1);
  auto echoed = echo(c.host(), b.id(), payload);
  ASSERT_TRUE(echoed) << echoed.error().message;
  EXPECT_EQ(*echoed, payload);
  const Bytes other = patterned_bytes(20000, 2);
  auto echoed_back = echo(b.host(), c.id(), other);
  ASSERT_TRUE(echoed_back) << echoed_back.error().message;
  EXPECT_EQ(*echoed_back, other);

  // Dialing again reuses the relayed connection.
  auto again = c_dials_b();
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->get(), connection->get());
}

TEST_F(RelayNetworkTest, ShortCircuitAddressUsesTheConnectedRelay) {
  start_relay();
  b_reserves();
  ASSERT_TRUE(connect(c.host(), relay_peer.dial_address()));
  auto short_form =
      parse("/p2p/" + relay_peer.id().to_string() + "/p2p-circuit/p2p/" + b.id().to_string());
  auto connection = connect(c.host(), short_form);
  ASSERT_TRUE(connection) << connection.error().message;
  EXPECT_TRUE((*connection)->relayed());
  EXPECT_EQ((*connection)->remote_address(), short_form);
  auto echoed = echo(c.host(), b.id(), text_bytes("short"));
  ASSERT_TRUE(echoed) << echoed.error().message;
  EXPECT_EQ(*echoed, text_bytes("short"));
}

TEST_F(RelayNetworkTest, DirectConnectionIsPreferredToTheRelayedOne) {
  start_relay();
  b_reserves();
  auto relayed = c_dials_b();
  ASSERT_TRUE(relayed) << relayed.error().message;
  ASSERT_TRUE(run_until(io, [&] { return b.host().connection_to(c.id()) != nullptr; }));
  EXPECT_TRUE(b.host().connection_to(c.id())->relayed());
  // C listens: B dials it directly although a relayed connection exists.
  auto direct = connect(b.host(), c.dial_address());
  ASSERT_TRUE(direct) << direct.error().message;
  EXPECT_FALSE((*direct)->relayed());
  EXPECT_EQ(b.host().connection_to(c.id()), *direct);
  ASSERT_TRUE(run_until(io, [&] {
    auto chosen = c.host().connection_to(b.id());
    return chosen != nullptr && !chosen->relayed();
  }));
  // The relayed connection is still there, just not chosen.
  EXPECT_TRUE((*relayed)->is_open());
  auto echoed = echo(c.host(), b.id(), text_bytes("direct"));
  ASSERT_TRUE(echoed) << echoed.error().message;
  EXPECT_EQ(*echoed, text_bytes("direct"));
}

TEST_F(RelayNetworkTest, DataLimitCutsTheCircuit) {
  relay::RelayLimits limits;
  limits.circuit_limit = relay::CircuitLimit{std::chrono::seconds(60), 16 * 1024};
  start_relay(limits);
  b_reserves();
  auto connection = c_dials_b();
  ASSERT_TRUE(connection) << connection.error().message;
  ASSERT_TRUE(run_until(io, [&] { return c.identified(b.id()) && b.identified(c.id()); }));

  auto echoed = echo(c.host(), b.id(), patterned_bytes(64 * 1024));
  EXPECT_FALSE(echoed && echoed->size() == 64 * 1024) << "64 KiB crossed a 16 KiB circuit";
  EXPECT_TRUE(run_until(io, [&] { return !(*connection)->is_open(); }))
      << "the relayed connection outlived its data limit";
  EXPECT_TRUE(run_until(io, [&] { return service->circuit_count() == 0; }));
  EXPECT_TRUE(run_until(io, [&] { return b.host().connection_to(c.id()) == nullptr; }));
  // The relay itself stays connected to both.
  EXPECT_NE(relay_peer.host().connection_to(b.id()), nullptr);
  EXPECT_NE(relay_peer.host().connection_to(c.id()), nullptr);
}

TEST_F(RelayNetworkTest, DurationLimitCutsTheCircuit) {
  relay::RelayLimits limits;
  limits.circuit_limit = relay::CircuitLimit{std::chrono::seconds(1), 0};
  start_relay(limits);
  b_reserves();
  const auto started = std::chrono::steady_clock::now();
  auto connection = c_dials_b();
  ASSERT_TRUE(connection) << connection.error().message;
  auto echoed = echo(c.host(), b.id(), text_bytes("in time"));
  ASSERT_TRUE(echoed) << echoed.error().message;
  EXPECT_TRUE(run_until(
      io, [&] { return !(*connection)->is_open(); }, std::chrono::seconds(10)))
      << "the relayed connection outlived its duration limit";
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(900));
  EXPECT_TRUE(run_until(io, [&] { return service->circuit_count() == 0; }));
}

TEST_F(RelayNetworkTest, ReservationBeyondTheCapIsRefused) {
  relay::RelayLimits limits;
  limits.max_reservations = 1;
  start_relay(limits);
  b_reserves();

  ListenlessPeer d{io, "test-agent/d"};
  RelayClient d_client(d.host());
  d_client.start();
  ASSERT_TRUE(connect(d.host(), relay_peer.dial_address()));
  auto refused = reserve(d_client, relay_peer.id());
  ASSERT_FALSE(refused);
  EXPECT_TRUE(contains(refused.error().message, "RESERVATION_REFUSED")) << refused.error().message;
  EXPECT_TRUE(d_client.relayed_addresses().empty());
  // B's own refresh still fits.
  auto refreshed = reserve(*b_client, relay_peer.id());
  EXPECT_TRUE(refreshed) << refreshed.error().message;
  EXPECT_EQ(service->reservation_count(), 1u);
}

TEST_F(RelayNetworkTest, ConnectToAPeerWithoutReservationIsRefused) {
  start_relay();
  start_b_client();
  ASSERT_TRUE(connect(b.host(), relay_peer.dial_address()));  // connected, not reserved
  auto connection = c_dials_b();
  ASSERT_FALSE(connection);
  EXPECT_TRUE(contains(connection.error().message, "NO_RESERVATION")) << connection.error().message;
  EXPECT_EQ(service->circuit_count(), 0u);
}

TEST_F(RelayNetworkTest, MalformedHopMessagesAreRefusedAndTheRelayKeepsServing) {
  start_relay();
  ASSERT_TRUE(connect(c.host(), relay_peer.dial_address()));

  // A framed message that is not a HopMessage: answered MALFORMED_MESSAGE, then reset.
  Bytes garbage = relay::frame(Bytes{0xff, 0xff, 0xff, 0xff});
  auto answer = raw_hop_exchange(c.host(), garbage);
  ASSERT_TRUE(answer && answer->has_value()) << (answer ? "no answer" : answer.error().message);
  auto malformed = relay::decode_hop(**answer);
  ASSERT_TRUE(malformed) << malformed.error().message;
  EXPECT_EQ(malformed->status, relay::Status::kMalformedMessage);
  // A length over the 4 KiB cap: reset without an answer.
  Bytes oversized;
  append_varint(oversized, 1 << 20);
  auto reset = raw_hop_exchange(c.host(), oversized);
  EXPECT_TRUE(!reset || !reset->has_value());

  // An unexpected type (STATUS) gets UNEXPECTED_MESSAGE.
  relay::HopMessage status;
  status.type = relay::HopType::kStatus;
  status.status = relay::Status::kOk;
  auto unexpected = raw_hop_exchange(c.host(), relay::encode_framed(status));
  ASSERT_TRUE(unexpected && unexpected->has_value());
  auto decoded = relay::decode_hop(**unexpected);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->status, relay::Status::kUnexpectedMessage);

  b_reserves();
  EXPECT_NE(relay_peer.host().connection_to(c.id()), nullptr);
  auto connection = c_dials_b();
  EXPECT_TRUE(connection) << connection.error().message;
}

TEST_F(RelayNetworkTest, DisconnectingEndsTheReservation) {
  start_relay();
  b_reserves();
  ASSERT_EQ(service->reservation_count(), 1u);
  ASSERT_FALSE(b_client->relayed_addresses().empty());

  b.host().disconnect(relay_peer.id());
  EXPECT_TRUE(run_until(io, [&] { return service->reservation_count() == 0; }));
  EXPECT_TRUE(has_event(b.id(), false));
  EXPECT_TRUE(run_until(io, [&] { return b_client->relayed_addresses().empty(); }));
  ASSERT_FALSE(b_address_changes.empty());
  EXPECT_TRUE(b_address_changes.back().empty());

  auto connection = c_dials_b();
  ASSERT_FALSE(connection);
  EXPECT_TRUE(contains(connection.error().message, "NO_RESERVATION")) << connection.error().message;
}

TEST_F(RelayNetworkTest, KeptReservationIsRefreshedAndRenewedAfterReconnecting) {
  relay::RelayLimits limits;
  limits.reservation_ttl = std::chrono::seconds(3);
  start_relay(limits);
  RelayClientConfig config;
  config.refresh_margin = std::chrono::seconds(2);
  config.retry_delay = std::chrono::milliseconds(200);
  start_b_client(config);
  b_client->keep_reservation(relay_peer.dial_address());

  ASSERT_TRUE(run_until(io, [&] { return b_client->reservation(relay_peer.id()).has_value(); }));
  const auto first = b_client->reservation(relay_peer.id())->expire_unix;
  EXPECT_EQ(b_client->relayed_addresses(), std::vector<Multiaddr>{b_circuit_address()});
  // Refreshed before it runs out: the expiry moves on while the reservation stays.
  ASSERT_TRUE(run_until(io, [&] {
    auto current = b_client->reservation(relay_peer.id());
    return current && current->expire_unix > first;
  }));
  // Well past the first expiry, still held.
  run_until(
      io, [] { return false; }, std::chrono::seconds(4));
  EXPECT_TRUE(b_client->reservation(relay_peer.id()).has_value());
  EXPECT_EQ(service->reservation_count(), 1u);

  const std::size_t changes = b_address_changes.size();
  b.host().disconnect(relay_peer.id());
  ASSERT_TRUE(run_until(io, [&] { return b_address_changes.size() >= changes + 2; }))
      << "the reservation was not lost and renewed";
  EXPECT_TRUE(b_address_changes[changes].empty());
  EXPECT_EQ(b_address_changes[changes + 1], std::vector<Multiaddr>{b_circuit_address()});
  EXPECT_TRUE(run_until(io, [&] { return service->reservation_count() == 1; }));
  auto connection = c_dials_b();
  EXPECT_TRUE(connection) << connection.error().message;
}

TEST_F(RelayNetworkTest, ReservationNoLongerKeptRunsOut) {
  relay::RelayLimits limits;
  limits.reservation_ttl = std::chrono::seconds(2);
  start_relay(limits);
  RelayClientConfig config;
  config.refresh_margin = std::chrono::seconds(1);
  start_b_client(config);
  b_client->keep_reservation(relay_peer.dial_address());
  ASSERT_TRUE(run_until(io, [&] { return !b_client->relayed_addresses().empty(); }));
  b_client->stop_keeping(relay_peer.id());
  EXPECT_TRUE(run_until(
      io, [&] { return b_client->relayed_addresses().empty(); }, std::chrono::seconds(5)));
  EXPECT_FALSE(relay_peer.host().connection_to(b.id()) == nullptr);
}

TEST_F(RelayNetworkTest, StopFromARelayWithoutReservationFollowsTheConfiguration) {
  start_relay();
  RelayClientConfig strict;
  strict.accept_without_reservation = false;
  start_b_client(strict);
  b_reserves();
  // C, acting as a relay B holds no reservation on, hands B a circuit: refused.
  ASSERT_TRUE(connect(c.host(), relay_peer.dial_address()));
  ASSERT_TRUE(connect(b.host(), c.dial_address()));
  ASSERT_TRUE(run_until(io, [&] { return c.host().connection_to(b.id()) != nullptr; }));
  auto stream = open_stream(c.host(), b.id(), Strings{std::string(relay::kStopProtocolId)});
  ASSERT_TRUE(stream) << stream.error().message;
  relay::StopMessage connect_message;
  connect_message.type = relay::StopType::kConnect;
  connect_message.peer = relay::Peer{relay_peer.id(), {}, 0};
  auto answer = run_coroutine(io, [&]() -> asio::awaitable<Expected<std::optional<Bytes>>> {
    auto written = co_await write_framed(**stream, relay::encode(connect_message));
    if (!written) co_return tl::unexpected(written.error());
    co_return co_await read_framed(**stream, relay::kMaxMessageSize);
  });
  ASSERT_TRUE(answer && *answer && (*answer)->has_value());
  auto decoded = relay::decode_stop(***answer);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->status, relay::Status::kPermissionDenied);
}

TEST_F(RelayNetworkTest, DestroyingEverythingWithWorkInFlightIsSafe) {
  start_relay();
  start_b_client(RelayClientConfig{std::chrono::seconds(2), std::chrono::milliseconds(100), true});
  b_client->keep_reservation(relay_peer.dial_address());
  ASSERT_TRUE(run_until(io, [&] { return !b_client->relayed_addresses().empty(); }));
  auto connection = c_dials_b();
  ASSERT_TRUE(connection) << connection.error().message;

  // An echo in flight on the circuit, a second dial in its handshake, then everything goes.
  auto stream = open_stream(c.host(), b.id(), Strings{std::string(kEchoProtocol)});
  ASSERT_TRUE(stream) << stream.error().message;
  const Bytes payload = patterned_bytes(100 * 1024);
  asio::co_spawn(
      io,
      [stream = *stream, &payload]() -> asio::awaitable<void> {
        (void)co_await send_and_receive(*stream, payload);
      },
      report_exception);
  ListenlessPeer d{io, "test-agent/d"};
  asio::co_spawn(
      io,
      [&d, address = b_circuit_address()]() -> asio::awaitable<void> {
        (void)co_await d.host().connect(address);
      },
      report_exception);
  run_pending(io);
  io.run_for(std::chrono::milliseconds(5));

  service.reset();
  run_pending(io);
  b_client.reset();
  run_pending(io);
  d.reset();
  b.reset();
  run_until(
      io, [] { return false; }, std::chrono::milliseconds(300));
  SUCCEED();
}

TEST_F(RelayNetworkTest, DestroyingTheRelayHostFirstEndsTheCircuits) {
  start_relay();
  b_reserves();
  auto connection = c_dials_b();
  ASSERT_TRUE(connection) << connection.error().message;
  relay_peer.host().close();
  EXPECT_TRUE(run_until(io, [&] { return !(*connection)->is_open(); }));
  EXPECT_TRUE(run_until(io, [&] { return b.host().connection_to(c.id()) == nullptr; }));
  service.reset();
  b_client.reset();
  run_until(
      io, [] { return false; }, std::chrono::milliseconds(100));
}

TEST(RelayLimitDuration, ReadsSecondsAndJsMilliseconds) {
  relay::Limit limit;
  EXPECT_FALSE(circuit_duration(limit));
  limit.duration_seconds = 120;
  EXPECT_EQ(circuit_duration(limit), std::chrono::milliseconds(120000));
  limit.duration_seconds = 120000;  // js-libp2p's default, sent in milliseconds
  EXPECT_EQ(circuit_duration(limit), std::chrono::milliseconds(120000));
  limit.duration_seconds = 0;
  EXPECT_FALSE(circuit_duration(limit));
}

}  // namespace
}  // namespace an::p2p::net::test
