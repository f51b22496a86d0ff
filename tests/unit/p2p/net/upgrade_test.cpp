// upgrade_outbound / upgrade_inbound over a real loopback TCP connection, and the secured
// channel they produce: authentication both ways, muxer choice, peer ID checks, bulk data in
// many Noise frames, half-close, and hostile frames under the Noise layer.
#include <gtest/gtest.h>

#include <tuple>

#include "p2p/net/negotiate.h"
#include "p2p/noise/noise.h"
#include "p2p/yamux/session.h"
#include "unit/p2p/net/net_test_support.h"

namespace an::p2p::net::test {
namespace {

using Upgraded = Expected<UpgradedConnection>;

Bytes noise_frame_header(std::size_t length) {
  return Bytes{static_cast<std::uint8_t>(length >> 8), static_cast<std::uint8_t>(length & 0xff)};
}

class UpgradeTest : public ::testing::Test {
 protected:
  // Runs both sides of the upgrade concurrently over a fresh loopback connection.
  std::pair<Upgraded, Upgraded> upgrade_both(std::optional<PeerId> expected_listener) {
    auto sockets = connect_loopback(io);
    auto client = std::make_unique<TcpByteStream>(std::move(sockets.client));
    auto server = std::make_unique<TcpByteStream>(std::move(sockets.server));
    auto result = run_coroutine(io, [&]() -> asio::awaitable<std::tuple<Upgraded, Upgraded>> {
      using namespace asio::experimental::awaitable_operators;
      auto outbound = upgrade_outbound(std::move(client), dialer, expected_listener);
      auto inbound = upgrade_inbound(std::move(server), listener);
      co_return co_await (std::move(outbound) && std::move(inbound));
    });
    if (!result) return {fail("upgrade did not finish"), fail("upgrade did not finish")};
    return {std::move(std::get<0>(*result)), std::move(std::get<1>(*result))};
  }

  // A successful upgrade, checked. Tests that use the two sides in a lambda name them through
  // .first and .second: clang before 16 cannot capture a structured binding.
  std::pair<std::unique_ptr<SecureConnection>, std::unique_ptr<SecureConnection>> secure_pair() {
    auto [outbound, inbound] = upgrade_both(listener.peer_id);
    EXPECT_TRUE(outbound) << outbound.error().message;
    EXPECT_TRUE(inbound) << inbound.error().message;
    if (!outbound || !inbound) return {};
    return {std::move(outbound->secure), std::move(inbound->secure)};
  }

  Expected<std::size_t> read_once(ByteStream& stream) {
    auto result = run_coroutine(io, [&]() -> asio::awaitable<Expected<std::size_t>> {
      Bytes buffer(1024);
      co_return co_await stream.read_some(buffer);
    });
    if (!result) return fail("read did not finish");
    return *result;
  }

  asio::io_context io;
  LocalIdentity dialer = make_identity();
  LocalIdentity listener = make_identity();
};

TEST_F(UpgradeTest, BothSidesAuthenticateEachOtherAndChooseYamux) {
  auto [outbound, inbound] = upgrade_both(listener.peer_id);
  ASSERT_TRUE(outbound) << outbound.error().message;
  ASSERT_TRUE(inbound) << inbound.error().message;
  EXPECT_EQ(outbound->secure->remote_peer(), listener.peer_id);
  EXPECT_EQ(inbound->secure->remote_peer(), dialer.peer_id);
  EXPECT_EQ(outbound->muxer, yamux::kProtocolId);
  EXPECT_EQ(inbound->muxer, yamux::kProtocolId);
}

TEST_F(UpgradeTest, DialerWithoutAnExpectedPeerLearnsWhoAnswered) {
  auto [outbound, inbound] = upgrade_both(std::nullopt);
  ASSERT_TRUE(outbound) << outbound.error().message;
  ASSERT_TRUE(inbound) << inbound.error().message;
  EXPECT_EQ(outbound->secure->remote_peer(), listener.peer_id);
}

TEST_F(UpgradeTest, AnUnexpectedListenerFailsBothSidesAndTheDialerNamesBothPeers) {
  const PeerId someone_else = make_identity().peer_id;
  auto [outbound, inbound] = upgrade_both(someone_else);
  ASSERT_FALSE(outbound);
  EXPECT_TRUE(contains(outbound.error().message, "mismatch")) << outbound.error().message;
  EXPECT_TRUE(contains(outbound.error().message, someone_else.to_string()))
      << outbound.error().message;
  EXPECT_TRUE(contains(outbound.error().message, listener.peer_id.to_string()))
      << outbound.error().message;
  EXPECT_FALSE(inbound) << "the listener finished a handshake the dialer abandoned";
}

TEST_F(UpgradeTest, SecureChannelCarriesMultiFrameDataBothWaysAtOnce) {
  auto connections = secure_pair();
  auto& outbound = connections.first;
  auto& inbound = connections.second;
  ASSERT_TRUE(outbound && inbound);
  // Not a multiple of the frame size, and far more than one frame and one read chunk.
  const Bytes to_listener = patterned_bytes(3 * 1024 * 1024 + 17, 1);
  const Bytes to_dialer = patterned_bytes(2 * 1024 * 1024 + 5, 2);
  auto result =
      run_coroutine(io, [&]() -> asio::awaitable<std::tuple<Expected<Bytes>, Expected<Bytes>>> {
        using namespace asio::experimental::awaitable_operators;
        co_return co_await (send_and_receive(*outbound, to_listener) &&
                            send_and_receive(*inbound, to_dialer));
      });
  ASSERT_TRUE(result.has_value());
  auto& [received_by_dialer, received_by_listener] = *result;
  ASSERT_TRUE(received_by_dialer) << received_by_dialer.error().message;
  ASSERT_TRUE(received_by_listener) << received_by_listener.error().message;
  EXPECT_TRUE(*received_by_dialer == to_dialer);
  EXPECT_TRUE(*received_by_listener == to_listener);
}

TEST_F(UpgradeTest, EmptyWriteSendsNothingVisible) {
  auto connections = secure_pair();
  auto& outbound = connections.first;
  auto& inbound = connections.second;
  ASSERT_TRUE(outbound && inbound);
  auto written = run_coroutine(io, [&]() -> asio::awaitable<Expected<void>> {
    auto empty = co_await outbound->write_all(ByteView{});
    if (!empty) co_return empty;
    co_return co_await write_and_close(*outbound, text_bytes("after"));
  });
  ASSERT_TRUE(written.has_value());
  ASSERT_TRUE(*written) << written->error().message;
  auto received = run_coroutine(io, [&]() -> asio::awaitable<Expected<Bytes>> {
    co_return co_await read_until_eof(*inbound);
  });
  ASSERT_TRUE(received.has_value());
  ASSERT_TRUE(*received) << received->error().message;
  EXPECT_EQ(**received, text_bytes("after"));
}

TEST_F(UpgradeTest, FrameThatDoesNotDecryptFailsTheReader) {
  auto connections = secure_pair();
  auto& outbound = connections.first;
  auto& inbound = connections.second;
  ASSERT_TRUE(outbound && inbound);
  Bytes forged = noise_frame_header(40);
  Bytes body = patterned_bytes(40, 9);
  forged.insert(forged.end(), body.begin(), body.end());
  auto written = run_coroutine(io, [&]() -> asio::awaitable<Expected<void>> {
    co_return co_await outbound->transport().write_all(forged);
  });
  ASSERT_TRUE(written.has_value() && *written);
  auto read = read_once(*inbound);
  ASSERT_FALSE(read);
  EXPECT_TRUE(contains(read.error().message, "noise")) << read.error().message;
}

TEST_F(UpgradeTest, FrameShorterThanItsTagFailsTheReader) {
  auto connections = secure_pair();
  auto& outbound = connections.first;
  auto& inbound = connections.second;
  ASSERT_TRUE(outbound && inbound);
  Bytes forged = noise_frame_header(5);
  forged.insert(forged.end(), {1, 2, 3, 4, 5});
  auto written = run_coroutine(io, [&]() -> asio::awaitable<Expected<void>> {
    co_return co_await outbound->transport().write_all(forged);
  });
  ASSERT_TRUE(written.has_value() && *written);
  auto read = read_once(*inbound);
  ASSERT_FALSE(read);
  EXPECT_TRUE(contains(read.error().message, "tag")) << read.error().message;
}

TEST_F(UpgradeTest, EofInsideAFrameIsAnErrorNotACleanEnd) {
  auto connections = secure_pair();
  auto& outbound = connections.first;
  auto& inbound = connections.second;
  ASSERT_TRUE(outbound && inbound);
  Bytes partial = noise_frame_header(noise::kMaxMessage);
  partial.resize(partial.size() + 100, 0x33);
  auto written = run_coroutine(io, [&]() -> asio::awaitable<Expected<void>> {
    co_return co_await write_and_close(outbound->transport(), partial);
  });
  ASSERT_TRUE(written.has_value() && *written);
  auto read = read_once(*inbound);
  ASSERT_FALSE(read);
  EXPECT_TRUE(contains(read.error().message, "mid-frame")) << read.error().message;
}

TEST_F(UpgradeTest, CloseWriteGivesEofAfterAllDataAndTheOtherWayStaysOpen) {
  auto connections = secure_pair();
  auto& outbound = connections.first;
  auto& inbound = connections.second;
  ASSERT_TRUE(outbound && inbound);
  const Bytes data = patterned_bytes(200 * 1024, 4);
  auto written = run_coroutine(io, [&]() -> asio::awaitable<Expected<void>> {
    co_return co_await write_and_close(*outbound, data);
  });
  ASSERT_TRUE(written.has_value());
  ASSERT_TRUE(*written) << written->error().message;
  auto received = run_coroutine(io, [&]() -> asio::awaitable<Expected<Bytes>> {
    co_return co_await read_until_eof(*inbound);
  });
  ASSERT_TRUE(received.has_value());
  ASSERT_TRUE(*received) << received->error().message;
  EXPECT_TRUE(**received == data);

  auto answer = run_coroutine(io, [&]() -> asio::awaitable<Expected<Bytes>> {
    auto sent = co_await write_and_close(*inbound, text_bytes("still here"));
    if (!sent) co_return tl::unexpected(sent.error());
    co_return co_await read_until_eof(*outbound);
  });
  ASSERT_TRUE(answer.has_value());
  ASSERT_TRUE(*answer) << answer->error().message;
  EXPECT_EQ(**answer, text_bytes("still here"));
}

TEST_F(UpgradeTest, AbortFailsThePeersRead) {
  auto [outbound, inbound] = secure_pair();
  ASSERT_TRUE(outbound && inbound);
  auto pending = std::make_shared<std::optional<Expected<std::size_t>>>();
  asio::co_spawn(
      io,
      [stream = inbound.get(), pending]() -> asio::awaitable<void> {
        Bytes buffer(64);
        pending->emplace(co_await stream->read_some(buffer));
      },
      asio::detached);
  run_pending(io);
  EXPECT_FALSE(pending->has_value());
  outbound->abort();
  ASSERT_TRUE(run_until(io, [&] { return pending->has_value(); }));
  // A plain close shows as EOF, a reset as an error; both end the read without data.
  if (**pending) {
    EXPECT_EQ(***pending, 0u);
  }
}

TEST_F(UpgradeTest, ListenerDropsAClientThatProposesOnlyAnotherSecurityProtocol) {
  auto sockets = connect_loopback(io);
  auto server = std::make_unique<TcpByteStream>(std::move(sockets.server));
  auto client = std::make_unique<TcpByteStream>(std::move(sockets.client));
  auto result =
      run_coroutine(io, [&]() -> asio::awaitable<std::tuple<Upgraded, Expected<std::string>>> {
        using namespace asio::experimental::awaitable_operators;
        auto inbound = upgrade_inbound(std::move(server), listener);
        // The client asks for TLS only; once refused it gives up and closes its side.
        auto propose_tls = [&]() -> asio::awaitable<Expected<std::string>> {
          std::vector<std::string> protocols{"/tls/1.0.0"};
          auto selected = co_await negotiate_outbound(*client, std::move(protocols));
          (void)co_await client->close_write();
          co_return selected;
        };
        co_return co_await (std::move(inbound) && propose_tls());
      });
  ASSERT_TRUE(result.has_value());
  auto& [inbound, selected] = *result;
  ASSERT_FALSE(selected);
  EXPECT_TRUE(contains(selected.error().message, "/tls/1.0.0")) << selected.error().message;
  EXPECT_FALSE(inbound);
}

}  // namespace
}  // namespace an::p2p::net::test
