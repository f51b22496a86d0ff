// Connection (yamux over Noise) without a Host: two Connections built from a real upgrade over
// loopback. Streams from both sides, graceful close with data in flight, stream drop semantics
// and behaviour once closed.
#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

#include "unit/p2p/net/net_test_support.h"

namespace an::p2p::net::test {
namespace {

class ConnectionTest : public ::testing::Test {
 protected:
  struct Side {
    std::shared_ptr<Connection> connection;
    std::vector<std::shared_ptr<Stream>> inbound;
    std::optional<std::string> closed_reason;
  };

  void SetUp() override {
    auto sockets = connect_loopback(io);
    auto client = std::make_unique<TcpByteStream>(std::move(sockets.client));
    auto server = std::make_unique<TcpByteStream>(std::move(sockets.server));
    auto upgraded = run_coroutine(
        io,
        [&]() -> asio::awaitable<
                  std::tuple<Expected<UpgradedConnection>, Expected<UpgradedConnection>>> {
          using namespace asio::experimental::awaitable_operators;
          auto outbound = upgrade_outbound(std::move(client), dialer_identity, std::nullopt);
          auto inbound = upgrade_inbound(std::move(server), listener_identity);
          co_return co_await (std::move(outbound) && std::move(inbound));
        });
    ASSERT_TRUE(upgraded.has_value());
    auto& [outbound, inbound] = *upgraded;
    ASSERT_TRUE(outbound) << outbound.error().message;
    ASSERT_TRUE(inbound) << inbound.error().message;
    start(dialer, std::move(*outbound), Direction::kOutbound);
    start(listener, std::move(*inbound), Direction::kInbound);
  }

  void start(Side& side, UpgradedConnection upgraded, Direction direction) {
    auto address = Multiaddr::parse("/ip4/127.0.0.1/tcp/1");
    auto connection = make_connection(std::move(upgraded), direction, *address, *address);
    ASSERT_TRUE(connection) << connection.error().message;
    side.connection = *connection;
    auto started = side.connection->start(
        [&side](std::shared_ptr<Stream> stream) { side.inbound.push_back(std::move(stream)); },
        [&side](Connection&, const std::string& reason) { side.closed_reason = reason; });
    ASSERT_TRUE(started) << started.error().message;
  }

  void TearDown() override {
    for (Side* side : {&dialer, &listener}) {
      if (side->connection) side->connection->close("test over");
    }
    run_until(io, [&] { return dialer.closed_reason && listener.closed_reason; });
  }

  std::shared_ptr<Stream> open(Side& side) {
    auto stream = side.connection->open_stream();
    EXPECT_TRUE(stream) << stream.error().message;
    return stream ? *stream : nullptr;
  }

  Expected<void> write_and_close_now(Stream& stream, const Bytes& data) {
    auto result = run_coroutine(io, [&]() -> asio::awaitable<Expected<void>> {
      co_return co_await write_and_close(stream, data);
    });
    return result ? *result : fail("write did not finish");
  }

  Expected<Bytes> read_all(Stream& stream) {
    auto result = run_coroutine(io, [&]() -> asio::awaitable<Expected<Bytes>> {
      co_return co_await read_until_eof(stream);
    });
    return result ? std::move(*result) : fail("read did not finish");
  }

  asio::io_context io;
  LocalIdentity dialer_identity = make_identity();
  LocalIdentity listener_identity = make_identity();
  Side dialer;
  Side listener;
};

TEST_F(ConnectionTest, KnowsItsPeerAndDirection) {
  EXPECT_EQ(dialer.connection->remote_peer(), listener_identity.peer_id);
  EXPECT_EQ(listener.connection->remote_peer(), dialer_identity.peer_id);
  EXPECT_EQ(dialer.connection->direction(), Direction::kOutbound);
  EXPECT_EQ(listener.connection->direction(), Direction::kInbound);
  EXPECT_TRUE(dialer.connection->is_open());
  EXPECT_TRUE(listener.connection->is_open());
}

TEST_F(ConnectionTest, StreamsOpenedFromBothSidesCarryDataWithYamuxIdParity) {
  auto from_dialer = open(dialer);
  auto from_listener = open(listener);
  ASSERT_TRUE(from_dialer && from_listener);
  EXPECT_EQ(from_dialer->id() % 2, 1u) << "the dialer opens odd stream IDs";
  EXPECT_EQ(from_listener->id() % 2, 0u) << "the listener opens even stream IDs";

  ASSERT_TRUE(write_and_close_now(*from_dialer, text_bytes("to listener")));
  ASSERT_TRUE(write_and_close_now(*from_listener, text_bytes("to dialer")));
  ASSERT_TRUE(
      run_until(io, [&] { return listener.inbound.size() == 1 && dialer.inbound.size() == 1; }));
  EXPECT_EQ(listener.inbound[0]->id(), from_dialer->id());
  EXPECT_EQ(listener.inbound[0]->direction(), Direction::kInbound);
  EXPECT_EQ(listener.inbound[0]->remote_peer(), dialer_identity.peer_id);

  auto at_listener = read_all(*listener.inbound[0]);
  ASSERT_TRUE(at_listener) << at_listener.error().message;
  EXPECT_EQ(*at_listener, text_bytes("to listener"));
  auto at_dialer = read_all(*dialer.inbound[0]);
  ASSERT_TRUE(at_dialer) << at_dialer.error().message;
  EXPECT_EQ(*at_dialer, text_bytes("to dialer"));
}

TEST_F(ConnectionTest, DataWrittenBeforeCloseIsDeliveredBeforeTheConnectionEnds) {
  auto stream = open(dialer);
  ASSERT_TRUE(stream);
  // Within the initial window, so the write does not wait for the peer's window updates.
  const Bytes data = patterned_bytes(200 * 1024, 5);
  ASSERT_TRUE(write_and_close_now(*stream, data));
  dialer.connection->close("done");
  EXPECT_FALSE(dialer.connection->open_stream()) << "open_stream succeeded while closing";

  ASSERT_TRUE(run_until(io, [&] { return dialer.closed_reason && listener.closed_reason; }));
  EXPECT_EQ(*dialer.closed_reason, "done");
  EXPECT_FALSE(dialer.connection->is_open());
  EXPECT_FALSE(listener.connection->is_open());
  ASSERT_EQ(listener.inbound.size(), 1u);
  auto received = read_all(*listener.inbound[0]);
  ASSERT_TRUE(received) << received.error().message;
  EXPECT_TRUE(*received == data);
}

TEST_F(ConnectionTest, AStreamDroppedWithoutClosingIsResetForThePeer) {
  auto stream = open(dialer);
  ASSERT_TRUE(stream);
  auto written = run_coroutine(io, [&]() -> asio::awaitable<Expected<void>> {
    co_return co_await stream->write_all(text_bytes("partial"));
  });
  ASSERT_TRUE(written.has_value() && *written);
  ASSERT_TRUE(run_until(io, [&] { return listener.inbound.size() == 1; }));
  stream.reset();

  auto received = read_all(*listener.inbound[0]);
  ASSERT_FALSE(received) << "a dropped stream looked like a clean end";
  EXPECT_TRUE(contains(received.error().message, "reset")) << received.error().message;
  EXPECT_TRUE(dialer.connection->is_open());
}

TEST_F(ConnectionTest, AHalfClosedStreamDroppedAfterEofIsNotAnError) {
  auto stream = open(dialer);
  ASSERT_TRUE(stream);
  ASSERT_TRUE(write_and_close_now(*stream, text_bytes("complete")));
  stream.reset();
  ASSERT_TRUE(run_until(io, [&] { return listener.inbound.size() == 1; }));
  auto received = read_all(*listener.inbound[0]);
  ASSERT_TRUE(received) << received.error().message;
  EXPECT_EQ(*received, text_bytes("complete"));
}

TEST_F(ConnectionTest, PeerClosingFailsPendingReadsAndLaterOperations) {
  auto stream = open(dialer);
  ASSERT_TRUE(stream);
  auto written = run_coroutine(io, [&]() -> asio::awaitable<Expected<void>> {
    co_return co_await stream->write_all(text_bytes("hi"));
  });
  ASSERT_TRUE(written.has_value() && *written);
  ASSERT_TRUE(run_until(io, [&] { return listener.inbound.size() == 1; }));

  auto pending = std::make_shared<std::optional<Expected<std::size_t>>>();
  asio::co_spawn(
      io,
      [stream, pending]() -> asio::awaitable<void> {
        Bytes buffer(16);
        pending->emplace(co_await stream->read_some(buffer));
      },
      asio::detached);
  run_pending(io);
  listener.connection->close("listener leaves");
  ASSERT_TRUE(run_until(io, [&] { return pending->has_value(); }));
  EXPECT_FALSE(**pending);
  ASSERT_TRUE(run_until(io, [&] { return dialer.closed_reason.has_value(); }));
  EXPECT_FALSE(dialer.connection->is_open());
  EXPECT_FALSE(dialer.connection->open_stream());
  auto write_after = run_coroutine(io, [&]() -> asio::awaitable<Expected<void>> {
    co_return co_await stream->write_all(text_bytes("late"));
  });
  ASSERT_TRUE(write_after.has_value());
  EXPECT_FALSE(*write_after);
  auto close_after = run_coroutine(
      io, [&]() -> asio::awaitable<Expected<void>> { co_return co_await stream->close_write(); });
  ASSERT_TRUE(close_after.has_value());
  EXPECT_FALSE(*close_after);
  stream->abort();  // harmless once everything is gone
}

}  // namespace
}  // namespace an::p2p::net::test
