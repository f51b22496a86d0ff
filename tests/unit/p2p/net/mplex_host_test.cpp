// Hosts over mplex (/mplex/6.7.0) on 127.0.0.1, driven from the test thread: connecting,
// identify, ping, a bulk echo, half-close, many concurrent streams, and the muxer choice
// when the dialer offers both yamux and mplex.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "p2p/mplex/session.h"
#include "p2p/yamux/session.h"
#include "unit/p2p/net/net_test_support.h"

namespace an::p2p::net::test {
namespace {

using Strings = std::vector<std::string>;

Strings mplex_only() {
  return {std::string(mplex::kProtocolId)};
}

class MplexHostTest : public ::testing::Test {
 protected:
  Expected<std::shared_ptr<Connection>> connect(TestPeer& from, TestPeer& to) {
    auto result =
        run_coroutine(io, [&]() -> asio::awaitable<Expected<std::shared_ptr<Connection>>> {
          co_return co_await from.host().connect(to.dial_address());
        });
    if (!result) return fail("connect did not finish");
    return std::move(*result);
  }

  void connect_and_identify(TestPeer& from, TestPeer& to) {
    auto connection = connect(from, to);
    ASSERT_TRUE(connection) << connection.error().message;
    ASSERT_TRUE(run_until(io, [&] { return from.identified(to.id()) && to.identified(from.id()); }))
        << "identify did not complete";
  }

  Expected<std::shared_ptr<Stream>> open_stream(TestPeer& from, const PeerId& to,
                                                Strings protocols) {
    auto result = run_coroutine(io, [&]() -> asio::awaitable<Expected<std::shared_ptr<Stream>>> {
      co_return co_await from.host().new_stream(to, std::move(protocols));
    });
    if (!result) return fail("new_stream did not finish");
    return std::move(*result);
  }

  Expected<std::chrono::nanoseconds> ping(TestPeer& from, const PeerId& to) {
    auto result = run_coroutine(io, [&]() -> asio::awaitable<Expected<std::chrono::nanoseconds>> {
      co_return co_await from.host().ping(to);
    });
    if (!result) return fail("ping did not finish");
    return *result;
  }

  asio::io_context io;
  TestPeer alice{io, "test-agent/alice", mplex_only()};
  TestPeer bob{io, "test-agent/bob", mplex_only()};
};

TEST_F(MplexHostTest, ConnectsIdentifiesPingsAndEchoesEightMebibytes) {
  connect_and_identify(alice, bob);
  auto alices = alice.host().connection_to(bob.id());
  auto bobs = bob.host().connection_to(alice.id());
  ASSERT_NE(alices, nullptr);
  ASSERT_NE(bobs, nullptr);
  EXPECT_EQ(alices->muxer(), mplex::kProtocolId);
  EXPECT_EQ(bobs->muxer(), mplex::kProtocolId);
  EXPECT_FALSE(alices->rtt().has_value()) << "mplex has no ping of its own";

  for (int i = 0; i < 3; ++i) {
    auto rtt = ping(alice, bob.id());
    ASSERT_TRUE(rtt) << rtt.error().message;
    EXPECT_GT(rtt->count(), 0);
  }
  auto back = ping(bob, alice.id());
  ASSERT_TRUE(back) << back.error().message;

  auto stream = open_stream(alice, bob.id(), {std::string(kEchoProtocol)});
  ASSERT_TRUE(stream) << stream.error().message;
  const Bytes payload = patterned_bytes(8 * 1024 * 1024, 11);
  auto echoed = run_coroutine(io, [&]() -> asio::awaitable<Expected<Bytes>> {
    co_return co_await send_and_receive(**stream, payload);
  });
  ASSERT_TRUE(echoed.has_value());
  ASSERT_TRUE(*echoed) << echoed->error().message;
  ASSERT_EQ((*echoed)->size(), payload.size());
  EXPECT_TRUE(**echoed == payload) << "echoed bytes differ";
  EXPECT_EQ(alice.host().connected_peers().size(), 1u);
}

TEST_F(MplexHostTest, ASlowReaderSlowsTheSenderInsteadOfLosingItsStream) {
  connect_and_identify(alice, bob);
  auto stream = open_stream(alice, bob.id(), {std::string(kHoldProtocol)});
  ASSERT_TRUE(stream) << stream.error().message;
  ASSERT_TRUE(run_until(io, [&] { return bob.held_streams.size() == 1; }));
  std::shared_ptr<Stream> bobs_end = bob.held_streams[0];

  // Three times the 4 MiB unread cap, while Bob does not read at all yet.
  const Bytes payload = patterned_bytes(12 * 1024 * 1024, 5);
  auto written = std::make_shared<std::optional<Expected<void>>>();
  asio::co_spawn(
      io,
      [writer = *stream, &payload, written]() -> asio::awaitable<void> {
        written->emplace(co_await write_and_close(*writer, payload));
      },
      asio::detached);
  for (int i = 0; i < 50; ++i)
    run_pending(io);

  auto received = run_coroutine(io, [&]() -> asio::awaitable<Expected<Bytes>> {
    co_return co_await read_until_eof(*bobs_end);
  });
  ASSERT_TRUE(received.has_value());
  ASSERT_TRUE(*received) << received->error().message;
  ASSERT_EQ((*received)->size(), payload.size());
  EXPECT_TRUE(**received == payload) << "received bytes differ";
  ASSERT_TRUE(run_until(io, [&] { return written->has_value(); }));
  EXPECT_TRUE(**written) << (*written)->error().message;
}

TEST_F(MplexHostTest, HalfCloseDeliversEofAndKeepsTheOtherDirection) {
  connect_and_identify(alice, bob);
  auto stream = open_stream(alice, bob.id(), {std::string(kHalfCloseProtocol)});
  ASSERT_TRUE(stream) << stream.error().message;
  auto closed = run_coroutine(io, [&]() -> asio::awaitable<Expected<void>> {
    co_return co_await write_and_close(**stream, text_bytes("hello"));
  });
  ASSERT_TRUE(closed.has_value());
  ASSERT_TRUE(*closed) << closed->error().message;
  ASSERT_TRUE(run_until(io, [&] { return bob.half_close_records.size() == 1; }));
  ASSERT_TRUE(bob.half_close_records[0].received);
  EXPECT_EQ(*bob.half_close_records[0].received, text_bytes("hello"));
  auto answer = run_coroutine(io, [&]() -> asio::awaitable<Expected<Bytes>> {
    co_return co_await read_until_eof(**stream);
  });
  ASSERT_TRUE(answer.has_value());
  ASSERT_TRUE(*answer) << answer->error().message;
  EXPECT_EQ(**answer, text_bytes("received 5"));
}

TEST_F(MplexHostTest, AbortFailsThePeersReadAndLeavesTheConnectionUp) {
  connect_and_identify(alice, bob);
  auto stream = open_stream(alice, bob.id(), {std::string(kHoldProtocol)});
  ASSERT_TRUE(stream) << stream.error().message;
  ASSERT_TRUE(run_until(io, [&] { return bob.held_streams.size() == 1; }));
  std::shared_ptr<Stream> bobs_end = bob.held_streams[0];
  (*stream)->abort();
  auto bob_read = run_coroutine(io, [&]() -> asio::awaitable<Expected<std::size_t>> {
    Bytes buffer(16);
    co_return co_await bobs_end->read_some(buffer);
  });
  ASSERT_TRUE(bob_read.has_value());
  EXPECT_FALSE(*bob_read) << "read after the peer's abort succeeded";
  auto rtt = ping(alice, bob.id());
  EXPECT_TRUE(rtt) << rtt.error().message;
}

TEST_F(MplexHostTest, OneHundredConcurrentStreamsAllCompleteAnEcho) {
  connect_and_identify(alice, bob);
  constexpr int kStreams = 100;
  int succeeded = 0;
  int finished = 0;
  std::vector<std::string> failures;
  for (int i = 0; i < kStreams; ++i) {
    asio::co_spawn(
        io,
        [&, i]() -> asio::awaitable<void> {
          Strings protocols{std::string(kEchoProtocol)};
          auto stream = co_await alice.host().new_stream(bob.id(), std::move(protocols));
          if (!stream) {
            failures.push_back("stream " + std::to_string(i) + ": " + stream.error().message);
          } else {
            const Bytes payload = patterned_bytes(16 * 1024, static_cast<std::uint32_t>(i));
            auto echoed = co_await send_and_receive(**stream, payload);
            if (!echoed) {
              failures.push_back("stream " + std::to_string(i) + ": " + echoed.error().message);
            } else if (*echoed != payload) {
              failures.push_back("stream " + std::to_string(i) + ": echo differs");
            } else {
              ++succeeded;
            }
          }
          ++finished;
        },
        asio::detached);
  }
  ASSERT_TRUE(run_until(io, [&] { return finished == kStreams; }))
      << finished << " of " << kStreams << " streams finished";
  EXPECT_EQ(succeeded, kStreams);
  for (const auto& failure : failures)
    ADD_FAILURE() << failure;
}

TEST(MplexHostChoice, DialerOfferingYamuxThenMplexGetsMplexFromAnMplexOnlyListener) {
  asio::io_context io;
  TestPeer dialer(io, "test-agent/dialer",
                  {std::string(yamux::kProtocolId), std::string(mplex::kProtocolId)});
  TestPeer listener(io, "test-agent/listener", mplex_only());
  auto connection =
      run_coroutine(io, [&]() -> asio::awaitable<Expected<std::shared_ptr<Connection>>> {
        co_return co_await dialer.host().connect(listener.dial_address());
      });
  ASSERT_TRUE(connection.has_value());
  ASSERT_TRUE(*connection) << connection->error().message;
  EXPECT_EQ((**connection)->muxer(), mplex::kProtocolId);
  ASSERT_TRUE(run_until(
      io, [&] { return dialer.identified(listener.id()) && listener.identified(dialer.id()); }));
  auto inbound = listener.host().connection_to(dialer.id());
  ASSERT_NE(inbound, nullptr);
  EXPECT_EQ(inbound->muxer(), mplex::kProtocolId);
}

TEST(MplexHostChoice, DefaultHostsStillUseYamux) {
  asio::io_context io;
  TestPeer dialer(io, "test-agent/dialer");
  TestPeer listener(io, "test-agent/listener", mplex_only());
  TestPeer yamux_listener(io, "test-agent/yamux");
  auto connection =
      run_coroutine(io, [&]() -> asio::awaitable<Expected<std::shared_ptr<Connection>>> {
        co_return co_await dialer.host().connect(yamux_listener.dial_address());
      });
  ASSERT_TRUE(connection.has_value());
  ASSERT_TRUE(*connection) << connection->error().message;
  EXPECT_EQ((**connection)->muxer(), yamux::kProtocolId);
  // No muxer in common: the upgrade fails and says so.
  auto refused = run_coroutine(io, [&]() -> asio::awaitable<Expected<std::shared_ptr<Connection>>> {
    co_return co_await dialer.host().connect(listener.dial_address());
  });
  ASSERT_TRUE(refused.has_value());
  ASSERT_FALSE(*refused);
  EXPECT_TRUE(contains(refused->error().message, "muxer")) << refused->error().message;
}

}  // namespace
}  // namespace an::p2p::net::test
