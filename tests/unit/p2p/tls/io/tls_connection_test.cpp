// /tls/1.0.0 over loopback TCP and over a non-TCP stream: mutual authentication, early muxer
// negotiation through ALPN, bulk data both ways, half-close, idle buffer release, refusal of the
// wrong peer, of a client without a certificate, of a non-TLS peer, of a peer that leaves
// mid-handshake and of a tampered record, and a silent peer cut off by the caller's timeout;
// then the whole upgrade and two Hosts that connect and ping over TLS, or fall back to Noise
// when the listener lacks TLS.
#include "p2p/tls/io/tls_connection.h"

#include <gtest/gtest.h>

#include <openssl/ssl.h>

#include <thread>
#include <tuple>

#include "p2p/multistream/multistream.h"
#include "p2p/net/negotiate.h"
#include "p2p/noise/noise.h"
#include "p2p/tls/host_key.h"
#include "p2p/yamux/session.h"
#include "unit/p2p/net/net_test_support.h"

namespace an::p2p::net::test {
namespace {

using tls::secure_tls;
using tls::TlsSecured;

using Secured = Expected<TlsSecured>;

struct TlsPeer {
  LocalIdentity identity = make_identity();
  tls::TlsHostKey host_key = tls::libp2p_host_key(identity.key);
};

class TlsConnectionTest : public ::testing::Test {
 protected:
  // Runs both handshakes concurrently over `client_transport` / `server_transport`.
  std::pair<Secured, Secured> handshake_over(std::unique_ptr<ByteStream> client_transport,
                                             std::unique_ptr<ByteStream> server_transport,
                                             std::optional<PeerId> expected_server,
                                             std::vector<std::string> client_muxers,
                                             std::vector<std::string> server_muxers) {
    auto result = run_coroutine(io, [&]() -> asio::awaitable<std::tuple<Secured, Secured>> {
      using namespace asio::experimental::awaitable_operators;
      auto outbound = secure_tls(std::move(client_transport), true, client.host_key,
                                 tls::verify_signed_key, expected_server, client_muxers);
      auto inbound = secure_tls(std::move(server_transport), false, server.host_key,
                                tls::verify_signed_key, std::nullopt, server_muxers);
      co_return co_await (std::move(outbound) && std::move(inbound));
    });
    if (!result) return {fail("handshake did not finish"), fail("handshake did not finish")};
    return {std::move(std::get<0>(*result)), std::move(std::get<1>(*result))};
  }

  // Tests that use the two sides in a lambda name them through .first and .second: clang before
  // 16 cannot capture a structured binding.
  std::pair<Secured, Secured> handshake_tcp(
      std::optional<PeerId> expected_server,
      std::vector<std::string> client_muxers = {"/yamux/1.0.0"},
      std::vector<std::string> server_muxers = {"/yamux/1.0.0"}) {
    auto sockets = connect_loopback(io);
    return handshake_over(std::make_unique<TcpByteStream>(std::move(sockets.client)),
                          std::make_unique<TcpByteStream>(std::move(sockets.server)),
                          std::move(expected_server), std::move(client_muxers),
                          std::move(server_muxers));
  }

  // Both sides run the handshake; only one side's result is kept (the other is raw bytes).
  Secured handshake_one_side(bool is_client, std::unique_ptr<ByteStream> transport) {
    auto result = run_coroutine(io, [&]() -> asio::awaitable<Secured> {
      std::vector<std::string> no_muxers;
      co_return co_await secure_tls(std::move(transport), is_client, client.host_key,
                                    tls::verify_signed_key, std::nullopt, std::move(no_muxers));
    });
    if (!result) return fail("handshake did not finish");
    return std::move(*result);
  }

  void exchange_bulk_data(SecureConnection& dialer, SecureConnection& listener) {
    // Not a multiple of the record size, and far more than one read buffer.
    const Bytes to_listener = patterned_bytes(3 * 1024 * 1024 + 17, 1);
    const Bytes to_dialer = patterned_bytes(2 * 1024 * 1024 + 5, 2);
    auto result =
        run_coroutine(io, [&]() -> asio::awaitable<std::tuple<Expected<Bytes>, Expected<Bytes>>> {
          using namespace asio::experimental::awaitable_operators;
          co_return co_await (send_and_receive(dialer, to_listener) &&
                              send_and_receive(listener, to_dialer));
        });
    ASSERT_TRUE(result.has_value());
    auto& [received_by_dialer, received_by_listener] = *result;
    ASSERT_TRUE(received_by_dialer) << received_by_dialer.error().message;
    ASSERT_TRUE(received_by_listener) << received_by_listener.error().message;
    EXPECT_TRUE(*received_by_dialer == to_dialer);
    EXPECT_TRUE(*received_by_listener == to_listener);
  }

  asio::io_context io;
  TlsPeer client;
  TlsPeer server;
};

TEST_F(TlsConnectionTest, BothSidesAuthenticateAndAgreeOnTheMuxerThroughAlpn) {
  auto [outbound, inbound] = handshake_tcp(server.identity.peer_id);
  ASSERT_TRUE(outbound) << outbound.error().message;
  ASSERT_TRUE(inbound) << inbound.error().message;
  EXPECT_EQ(outbound->connection->remote_peer(), server.identity.peer_id);
  EXPECT_EQ(inbound->connection->remote_peer(), client.identity.peer_id);
  EXPECT_EQ(outbound->connection->protocol(), "/tls/1.0.0");
  EXPECT_EQ(outbound->early_muxer, std::optional<std::string>("/yamux/1.0.0"));
  EXPECT_EQ(inbound->early_muxer, std::optional<std::string>("/yamux/1.0.0"));
}

TEST_F(TlsConnectionTest, TheDialersMuxerPreferenceWins) {
  auto [outbound, inbound] = handshake_tcp(std::nullopt, {"/mplex/6.7.0", "/yamux/1.0.0"},
                                           {"/yamux/1.0.0", "/mplex/6.7.0"});
  ASSERT_TRUE(outbound) << outbound.error().message;
  ASSERT_TRUE(inbound) << inbound.error().message;
  EXPECT_EQ(outbound->early_muxer, std::optional<std::string>("/mplex/6.7.0"));
  EXPECT_EQ(inbound->early_muxer, std::optional<std::string>("/mplex/6.7.0"));
}

TEST_F(TlsConnectionTest, NoCommonMuxerFallsBackToTheLibp2pAlpnWithoutAnEarlyMuxer) {
  auto [outbound, inbound] = handshake_tcp(std::nullopt, {"/yamux/1.0.0"}, {"/mplex/6.7.0"});
  ASSERT_TRUE(outbound) << outbound.error().message;
  ASSERT_TRUE(inbound) << inbound.error().message;
  EXPECT_FALSE(outbound->early_muxer);
  EXPECT_FALSE(inbound->early_muxer);
  EXPECT_EQ(outbound->connection->remote_peer(), server.identity.peer_id);
}

TEST_F(TlsConnectionTest, MultistreamSelectRunsOverTheChannelWhenAlpnPickedNoMuxer) {
  auto connections = handshake_tcp(server.identity.peer_id, {}, {});
  auto& outbound = connections.first;
  auto& inbound = connections.second;
  ASSERT_TRUE(outbound) << outbound.error().message;
  ASSERT_TRUE(inbound) << inbound.error().message;
  ASSERT_FALSE(outbound->early_muxer);
  using Selected = Expected<std::string>;
  auto result = run_coroutine(io, [&]() -> asio::awaitable<std::tuple<Selected, Selected>> {
    using namespace asio::experimental::awaitable_operators;
    std::vector<std::string> offered{std::string(yamux::kProtocolId)};
    multistream::Responder responder(offered);
    co_return co_await (negotiate_outbound(*outbound->connection, offered) &&
                        negotiate_inbound(*inbound->connection, std::move(responder)));
  });
  ASSERT_TRUE(result.has_value());
  auto& [dialer_choice, listener_choice] = *result;
  ASSERT_TRUE(dialer_choice) << dialer_choice.error().message;
  ASSERT_TRUE(listener_choice) << listener_choice.error().message;
  EXPECT_EQ(*dialer_choice, yamux::kProtocolId);
  EXPECT_EQ(*listener_choice, yamux::kProtocolId);
}

TEST_F(TlsConnectionTest, CarriesMegabytesBothWaysAtOnceAndHalfCloses) {
  auto [outbound, inbound] = handshake_tcp(server.identity.peer_id);
  ASSERT_TRUE(outbound && inbound);
  exchange_bulk_data(*outbound->connection, *inbound->connection);
}

TEST_F(TlsConnectionTest, WorksOverATransportThatIsNotTcp) {
  // SharedByteStream hides the socket: the generic, buffered path (a relayed connection's).
  auto sockets = connect_loopback(io);
  auto client_stream =
      std::make_shared<TcpByteStream>(asio::ip::tcp::socket(std::move(sockets.client)));
  auto server_stream =
      std::make_shared<TcpByteStream>(asio::ip::tcp::socket(std::move(sockets.server)));
  auto [outbound, inbound] =
      handshake_over(std::make_unique<SharedByteStream>(client_stream),
                     std::make_unique<SharedByteStream>(server_stream), server.identity.peer_id,
                     {"/yamux/1.0.0"}, {"/yamux/1.0.0"});
  ASSERT_TRUE(outbound) << outbound.error().message;
  ASSERT_TRUE(inbound) << inbound.error().message;
  EXPECT_EQ(inbound->connection->remote_peer(), client.identity.peer_id);
  exchange_bulk_data(*outbound->connection, *inbound->connection);
}

TEST_F(TlsConnectionTest, BuffersAreReleasedWhenIdleAndReallocatedOnDemand) {
  auto connections = handshake_tcp(server.identity.peer_id);
  auto& outbound = connections.first;
  auto& inbound = connections.second;
  ASSERT_TRUE(outbound && inbound);
  for (int round = 0; round < 3; ++round) {
    outbound->connection->release_write_buffer();
    outbound->connection->release_read_buffer();
    inbound->connection->release_write_buffer();
    inbound->connection->release_read_buffer();
    const Bytes message = patterned_bytes(100 * 1024, static_cast<std::uint32_t>(round));
    auto received = run_coroutine(io, [&]() -> asio::awaitable<Expected<Bytes>> {
      auto written = co_await outbound->connection->write_all(message);
      if (!written) co_return tl::unexpected(written.error());
      Bytes data;
      while (data.size() < message.size()) {
        auto view = co_await inbound->connection->read_view();
        if (!view) co_return tl::unexpected(view.error());
        if (view->empty()) co_return fail("early EOF");
        data.insert(data.end(), view->begin(), view->end());
      }
      co_return data;
    });
    ASSERT_TRUE(received.has_value());
    ASSERT_TRUE(*received) << received->error().message;
    EXPECT_TRUE(**received == message) << "round " << round;
  }
}

TEST_F(TlsConnectionTest, AnUnexpectedServerIsRefusedByBothSides) {
  const PeerId someone_else = make_identity().peer_id;
  auto [outbound, inbound] = handshake_tcp(someone_else);
  ASSERT_FALSE(outbound);
  EXPECT_TRUE(contains(outbound.error().message, "mismatch")) << outbound.error().message;
  EXPECT_TRUE(contains(outbound.error().message, someone_else.to_string()))
      << outbound.error().message;
  EXPECT_TRUE(contains(outbound.error().message, server.identity.peer_id.to_string()))
      << outbound.error().message;
  EXPECT_FALSE(inbound) << "the server finished a handshake the client refused";
}

TEST_F(TlsConnectionTest, APeerSendingGarbageIsRefused) {
  auto sockets = connect_loopback(io);
  asio::ip::tcp::socket raw = std::move(sockets.client);
  const Bytes garbage = text_bytes("GET / HTTP/1.1\r\nHost: example\r\n\r\n");
  asio::write(raw, asio::buffer(garbage));
  auto inbound =
      handshake_one_side(false, std::make_unique<TcpByteStream>(std::move(sockets.server)));
  ASSERT_FALSE(inbound);
  EXPECT_TRUE(contains(inbound.error().message, "tls handshake")) << inbound.error().message;

  // The client side too: the "server" answers its ClientHello with garbage.
  auto pair = connect_loopback(io);
  asio::ip::tcp::socket raw_server = std::move(pair.server);
  Bytes noise(600);
  for (std::size_t i = 0; i < noise.size(); ++i)
    noise[i] = static_cast<std::uint8_t>(i * 97 + 5);
  asio::write(raw_server, asio::buffer(noise));
  auto outbound = handshake_one_side(true, std::make_unique<TcpByteStream>(std::move(pair.client)));
  ASSERT_FALSE(outbound);
  EXPECT_TRUE(contains(outbound.error().message, "tls handshake")) << outbound.error().message;
}

TEST_F(TlsConnectionTest, TheServerRequiresAClientCertificate) {
  // A plain TLS 1.3 client without a certificate, blocking, on its own thread.
  auto sockets = connect_loopback(io);
  asio::ip::tcp::socket raw_client = std::move(sockets.client);
  const int client_fd = raw_client.native_handle();
  std::thread client_thread([client_fd] {
    SSL_CTX* context = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(context, TLS1_3_VERSION);
    SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nullptr);
    SSL* ssl = SSL_new(context);
    SSL_set_fd(ssl, client_fd);
    if (SSL_connect(ssl) == 1) {
      char byte = 0;
      (void)SSL_read(ssl, &byte, 1);  // the server's alert arrives here
    }
    SSL_free(ssl);
    SSL_CTX_free(context);
  });
  auto inbound =
      handshake_one_side(false, std::make_unique<TcpByteStream>(std::move(sockets.server)));
  raw_client.shutdown(asio::ip::tcp::socket::shutdown_both);
  client_thread.join();
  ASSERT_FALSE(inbound);
  EXPECT_TRUE(contains(inbound.error().message, "certificate")) << inbound.error().message;
}

TEST_F(TlsConnectionTest, ASilentPeerIsCutOffByTheCallersTimeout) {
  // Over TCP (OpenSSL reads the socket) and over a wrapped stream (buffered path).
  for (bool wrapped : {false, true}) {
    auto sockets = connect_loopback(io);
    asio::ip::tcp::socket silent = std::move(sockets.server);
    std::unique_ptr<ByteStream> transport;
    if (wrapped) {
      transport = std::make_unique<SharedByteStream>(
          std::make_shared<TcpByteStream>(std::move(sockets.client)));
    } else {
      transport = std::make_unique<TcpByteStream>(std::move(sockets.client));
    }
    auto result = run_coroutine(io, [&]() -> asio::awaitable<Secured> {
      std::vector<std::string> no_muxers;
      auto handshake = secure_tls(std::move(transport), true, client.host_key,
                                  tls::verify_signed_key, std::nullopt, std::move(no_muxers));
      co_return co_await with_timeout(std::move(handshake), std::chrono::milliseconds(100),
                                      "tls handshake");
    });
    ASSERT_TRUE(result.has_value()) << "wrapped: " << wrapped;
    ASSERT_FALSE(*result) << "wrapped: " << wrapped;
    EXPECT_TRUE(contains(result->error().message, "timed out")) << result->error().message;
  }
}

TEST_F(TlsConnectionTest, APeerClosingMidHandshakeFailsTheHandshake) {
  // The "server" reads part of the ClientHello and hangs up.
  auto sockets = connect_loopback(io);
  auto raw_server = std::make_shared<asio::ip::tcp::socket>(std::move(sockets.server));
  asio::co_spawn(
      io,
      [raw_server]() -> asio::awaitable<void> {
        Bytes buffer(10);
        (void)co_await asio::async_read(*raw_server, asio::buffer(buffer), use_tuple);
        raw_server->close();
      },
      asio::detached);
  auto outbound =
      handshake_one_side(true, std::make_unique<TcpByteStream>(std::move(sockets.client)));
  ASSERT_FALSE(outbound);
  EXPECT_TRUE(contains(outbound.error().message, "tls handshake")) << outbound.error().message;

  // A client that sends half a ClientHello and then closes.
  auto pair = connect_loopback(io);
  asio::ip::tcp::socket raw_client = std::move(pair.client);
  // A handshake record header announcing 512 bytes, followed by only 20.
  Bytes partial = {0x16, 0x03, 0x01, 0x02, 0x00};
  partial.resize(partial.size() + 20, 0x01);
  asio::write(raw_client, asio::buffer(partial));
  raw_client.shutdown(asio::ip::tcp::socket::shutdown_send);
  auto inbound = handshake_one_side(false, std::make_unique<TcpByteStream>(std::move(pair.server)));
  ASSERT_FALSE(inbound);
  EXPECT_TRUE(contains(inbound.error().message, "closed the connection during the handshake"))
      << inbound.error().message;
}

TEST_F(TlsConnectionTest, ATamperedRecordFailsTheReader) {
  auto connections = handshake_tcp(server.identity.peer_id);
  auto& outbound = connections.first;
  auto& inbound = connections.second;
  ASSERT_TRUE(outbound && inbound);
  // An application-data record whose authentication tag cannot verify.
  Bytes forged = {0x17, 0x03, 0x03, 0x00, 0x40};
  Bytes body = patterned_bytes(0x40, 9);
  forged.insert(forged.end(), body.begin(), body.end());
  auto read = run_coroutine(io, [&]() -> asio::awaitable<Expected<ByteView>> {
    auto written = co_await outbound->connection->transport().write_all(forged);
    if (!written) co_return tl::unexpected(written.error());
    co_return co_await inbound->connection->read_view();
  });
  ASSERT_TRUE(read.has_value());
  ASSERT_FALSE(*read);
  EXPECT_TRUE(contains(read->error().message, "tls read")) << read->error().message;
}

// The whole upgrade: multistream-select of /tls/1.0.0, then the muxer from ALPN.
class TlsUpgradeTest : public ::testing::Test {
 protected:
  std::pair<Expected<UpgradedConnection>, Expected<UpgradedConnection>> upgrade_both() {
    auto sockets = connect_loopback(io);
    auto client = std::make_unique<TcpByteStream>(std::move(sockets.client));
    auto server = std::make_unique<TcpByteStream>(std::move(sockets.server));
    using Upgraded = Expected<UpgradedConnection>;
    auto result = run_coroutine(io, [&]() -> asio::awaitable<std::tuple<Upgraded, Upgraded>> {
      using namespace asio::experimental::awaitable_operators;
      auto outbound = upgrade_outbound(std::move(client), dialer, listener.peer_id);
      auto inbound = upgrade_inbound(std::move(server), listener);
      co_return co_await (std::move(outbound) && std::move(inbound));
    });
    if (!result) return {fail("upgrade did not finish"), fail("upgrade did not finish")};
    return {std::move(std::get<0>(*result)), std::move(std::get<1>(*result))};
  }

  asio::io_context io;
  LocalIdentity dialer = make_identity();
  LocalIdentity listener = make_identity();
};

TEST_F(TlsUpgradeTest, TlsIsChosenWhenBothOfferItFirst) {
  dialer.security_protocols = {"/tls/1.0.0", "/noise"};
  listener.security_protocols = {"/noise", "/tls/1.0.0"};
  auto [outbound, inbound] = upgrade_both();
  ASSERT_TRUE(outbound) << outbound.error().message;
  ASSERT_TRUE(inbound) << inbound.error().message;
  EXPECT_EQ(outbound->secure->protocol(), "/tls/1.0.0");
  EXPECT_EQ(inbound->secure->protocol(), "/tls/1.0.0");
  EXPECT_EQ(outbound->secure->remote_peer(), listener.peer_id);
  EXPECT_EQ(inbound->secure->remote_peer(), dialer.peer_id);
  EXPECT_EQ(outbound->muxer, yamux::kProtocolId);
  EXPECT_EQ(inbound->muxer, yamux::kProtocolId);
}

TEST_F(TlsUpgradeTest, DialerOfferingTlsThenNoiseFallsBackToNoise) {
  dialer.security_protocols = {"/tls/1.0.0", "/noise"};
  listener.security_protocols = {"/noise"};
  auto [outbound, inbound] = upgrade_both();
  ASSERT_TRUE(outbound) << outbound.error().message;
  ASSERT_TRUE(inbound) << inbound.error().message;
  EXPECT_EQ(outbound->secure->protocol(), noise::kProtocolId);
  EXPECT_EQ(inbound->secure->protocol(), noise::kProtocolId);
}

TEST(TlsUpgradeValidation, TlsIsASupportedSecurityProtocol) {
  LocalIdentity identity = make_identity();
  identity.security_protocols = {"/tls/1.0.0", "/noise"};
  EXPECT_TRUE(validate_upgrade_protocols(identity));
}

// Two Hosts over TLS: connect, identify and ping like over Noise.
class TlsHostTest : public ::testing::Test {
 protected:
  std::unique_ptr<Host> make_host(std::vector<std::string> security_protocols, Multiaddr* bound) {
    LocalIdentity identity = make_identity();
    identity.security_protocols = std::move(security_protocols);
    HostConfig config;
    config.agent_version = "tls-test";
    auto host = std::make_unique<Host>(io, std::move(identity), config);
    auto listen_on = Multiaddr::parse("/ip4/127.0.0.1/tcp/0");
    EXPECT_TRUE(listen_on);
    auto address = host->listen(*listen_on);
    EXPECT_TRUE(address) << (address ? "" : address.error().message);
    if (address && bound != nullptr) *bound = address->with_peer_id(host->peer_id());
    return host;
  }

  void connect_and_ping(Host& from, Host& to, const Multiaddr& address) {
    auto connection =
        run_coroutine(io, [&]() -> asio::awaitable<Expected<std::shared_ptr<Connection>>> {
          co_return co_await from.connect(address);
        });
    ASSERT_TRUE(connection.has_value());
    ASSERT_TRUE(*connection) << connection->error().message;
    EXPECT_EQ((**connection)->remote_peer(), to.peer_id());
    for (int i = 0; i < 3; ++i) {
      auto rtt = run_coroutine(io, [&]() -> asio::awaitable<Expected<std::chrono::nanoseconds>> {
        co_return co_await from.ping(to.peer_id());
      });
      ASSERT_TRUE(rtt.has_value());
      ASSERT_TRUE(*rtt) << "ping " << i << ": " << rtt->error().message;
    }
    auto back = run_coroutine(io, [&]() -> asio::awaitable<Expected<std::chrono::nanoseconds>> {
      co_return co_await to.ping(from.peer_id());
    });
    ASSERT_TRUE(back.has_value());
    ASSERT_TRUE(*back) << "ping back: " << back->error().message;
  }

  asio::io_context io;
};

TEST_F(TlsHostTest, TwoTlsOnlyHostsConnectAndPing) {
  Multiaddr listener_address;
  auto listener = make_host({"/tls/1.0.0"}, &listener_address);
  auto dialer = make_host({"/tls/1.0.0"}, nullptr);
  connect_and_ping(*dialer, *listener, listener_address);
}

TEST_F(TlsHostTest, DialerOfferingTlsAndNoiseReachesANoiseOnlyListener) {
  Multiaddr listener_address;
  auto listener = make_host({"/noise"}, &listener_address);
  auto dialer = make_host({"/tls/1.0.0", "/noise"}, nullptr);
  connect_and_ping(*dialer, *listener, listener_address);
}

}  // namespace
}  // namespace an::p2p::net::test
