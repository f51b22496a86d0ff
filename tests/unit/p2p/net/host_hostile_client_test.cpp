// A listening Host against raw TCP clients that break the protocol at each stage of the upgrade
// (multistream, the Noise handshake, Noise transport frames). The host must close each such
// connection itself, promptly and for the right reason (not by its handshake timeout), and keep
// serving well-behaved peers.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "p2p/multistream/multistream.h"
#include "p2p/noise/noise.h"
#include "unit/p2p/net/net_test_support.h"

namespace an::p2p::net::test {
namespace {

using asio::ip::tcp;

// The client's wait for the host to hang up. Shorter than kUpgradeTimeout on purpose: a host
// that only drops the client when its handshake deadline expires fails these tests.
constexpr std::chrono::seconds kHangUpLimit{10};
static_assert(kHangUpLimit < kUpgradeTimeout);

bool is_hang_up(const std::error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::connection_aborted || ec == asio::error::broken_pipe;
}

Bytes multistream_message(std::string_view text) {
  auto message = multistream::encode_message(text);
  EXPECT_TRUE(message);
  return message ? *message : Bytes{};
}

Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes all;
  for (const auto& part : parts)
    all.insert(all.end(), part.begin(), part.end());
  return all;
}

// The start of a valid outbound upgrade, up to the Noise handshake.
Bytes noise_proposal() {
  return concat(
      {multistream_message(multistream::kProtocolId), multistream_message(noise::kProtocolId)});
}

Bytes noise_frame_header(std::size_t length) {
  return Bytes{static_cast<std::uint8_t>(length >> 8), static_cast<std::uint8_t>(length & 0xff)};
}

class HostHostileClientTest : public ::testing::Test {
 protected:
  // Connects a raw client to Bob, sends `bytes` (then half-closes when asked) and reads until
  // Bob hangs up; returns the error that ended the read.
  std::error_code send_and_wait_for_hang_up(const Bytes& bytes, bool half_close = false) {
    const tcp::endpoint bob_endpoint(asio::ip::make_address("127.0.0.1"), bob.port());
    auto ended = run_coroutine(
        io,
        [&]() -> asio::awaitable<std::error_code> {
          tcp::socket socket(co_await asio::this_coro::executor);
          auto [connect_error] = co_await socket.async_connect(bob_endpoint, use_tuple);
          if (connect_error) co_return connect_error;
          // A host that hangs up early may make the write fail; the read below still tells.
          (void)co_await asio::async_write(socket, asio::buffer(bytes), use_tuple);
          if (half_close) {
            std::error_code ignored;
            socket.shutdown(tcp::socket::shutdown_send, ignored);
          }
          Bytes buffer(4096);
          for (;;) {
            auto [read_error, count] =
                co_await socket.async_read_some(asio::buffer(buffer), use_tuple);
            (void)count;
            if (read_error) co_return read_error;
          }
        },
        kHangUpLimit);
    if (!ended) return asio::error::timed_out;
    return *ended;
  }

  // Waits for Bob's report of the failed inbound handshake and returns its reason.
  std::string inbound_failure_reason() {
    EXPECT_TRUE(run_until(io, [&] { return !bob.inbound_failures.empty(); }));
    return bob.inbound_failures.empty() ? std::string() : bob.inbound_failures.back();
  }

  // A well-behaved peer can still connect to Bob, and they can ping.
  void expect_bob_still_serves() {
    TestPeer alice(io, "test-agent/alice");
    auto connected =
        run_coroutine(io, [&]() -> asio::awaitable<Expected<std::shared_ptr<Connection>>> {
          co_return co_await alice.host().connect(bob.dial_address());
        });
    ASSERT_TRUE(connected.has_value());
    ASSERT_TRUE(*connected) << connected->error().message;
    auto rtt = run_coroutine(io, [&]() -> asio::awaitable<Expected<std::chrono::nanoseconds>> {
      co_return co_await alice.host().ping(bob.id());
    });
    ASSERT_TRUE(rtt.has_value());
    EXPECT_TRUE(*rtt) << rtt->error().message;
    EXPECT_TRUE(run_until(io, [&] { return bob.host().connection_to(alice.id()) != nullptr; }));
    alice.host().close();
    EXPECT_TRUE(run_until(io, [&] {
      return alice.disconnect_events() == 1 && bob.host().connection_to(alice.id()) == nullptr;
    }));
  }

  // A client that completes a genuine upgrade (so Bob adopts the connection), then writes
  // `garbage` straight onto the TCP socket under the Noise layer. Returns how its read ended.
  std::string upgrade_then_send_raw(const Bytes& garbage) {
    LocalIdentity mallory = make_identity();
    auto client_ended = run_coroutine(
        io,
        [&]() -> asio::awaitable<Expected<std::size_t>> {
          tcp::socket socket(co_await asio::this_coro::executor);
          const tcp::endpoint bob_endpoint(asio::ip::make_address("127.0.0.1"), bob.port());
          auto [connect_error] = co_await socket.async_connect(bob_endpoint, use_tuple);
          if (connect_error) co_return fail("connect: " + connect_error.message());
          auto transport = std::make_unique<TcpByteStream>(std::move(socket));
          std::optional<PeerId> expected = bob.id();
          auto upgraded = co_await upgrade_outbound(std::move(transport), mallory, expected);
          if (!upgraded) co_return tl::unexpected(upgraded.error());
          ByteStream& raw = upgraded->secure->transport();
          if (auto written = co_await raw.write_all(garbage); !written) {
            co_return tl::unexpected(written.error());
          }
          // Bob may send yamux frames (identify) before he notices; skip them until he hangs up.
          Bytes buffer(64 * 1024);
          for (;;) {
            auto got = co_await raw.read_some(buffer);
            if (!got || *got == 0) co_return got;
          }
        },
        kHangUpLimit);
    if (!client_ended) return "client did not finish";
    if (*client_ended) {
      EXPECT_EQ(**client_ended, 0u);
      return "eof";
    }
    return client_ended->error().message;
  }

  asio::io_context io;
  TestPeer bob{io, "test-agent/bob"};
};

TEST_F(HostHostileClientTest, GarbageBytesAreDropped) {
  Bytes garbage(256, 0xff);  // a varint length that never ends
  auto ended = send_and_wait_for_hang_up(garbage);
  EXPECT_TRUE(is_hang_up(ended)) << ended.message();
  std::string reason = inbound_failure_reason();
  EXPECT_TRUE(contains(reason, "multistream")) << reason;
  EXPECT_FALSE(contains(reason, "timed out")) << reason;
  expect_bob_still_serves();
}

TEST_F(HostHostileClientTest, AnHttpRequestIsDropped) {
  std::string request =
      "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n"
      "Connection: keep-alive\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
  auto ended = send_and_wait_for_hang_up(text_bytes(request));
  EXPECT_TRUE(is_hang_up(ended)) << ended.message();
  std::string reason = inbound_failure_reason();
  EXPECT_FALSE(contains(reason, "timed out")) << reason;
  expect_bob_still_serves();
}

TEST_F(HostHostileClientTest, AWrongMultistreamHeaderIsDropped) {
  Bytes bytes =
      concat({multistream_message("/multistream/2.0.0"), multistream_message(noise::kProtocolId)});
  auto ended = send_and_wait_for_hang_up(bytes);
  EXPECT_TRUE(is_hang_up(ended)) << ended.message();
  std::string reason = inbound_failure_reason();
  EXPECT_TRUE(contains(reason, "header")) << reason;
  EXPECT_FALSE(contains(reason, "timed out")) << reason;
  expect_bob_still_serves();
}

TEST_F(HostHostileClientTest, GarbageNoiseHandshakeBytesAreDropped) {
  // A frame too short to hold even the initiator's ephemeral key.
  Bytes bytes = concat({noise_proposal(), noise_frame_header(10), Bytes(10, 0x5a)});
  auto ended = send_and_wait_for_hang_up(bytes);
  EXPECT_TRUE(is_hang_up(ended)) << ended.message();
  std::string reason = inbound_failure_reason();
  EXPECT_FALSE(reason.empty());
  EXPECT_FALSE(contains(reason, "timed out")) << reason;
  expect_bob_still_serves();
}

TEST_F(HostHostileClientTest, AMaximumLengthNoiseFrameWithALowOrderKeyIsDropped) {
  // The largest frame a 2-byte length allows, whose ephemeral key is the all-zero (low-order)
  // point: answering it would need a Diffie-Hellman result everyone knows.
  Bytes bytes = concat(
      {noise_proposal(), noise_frame_header(noise::kMaxMessage), Bytes(noise::kMaxMessage, 0x00)});
  auto ended = send_and_wait_for_hang_up(bytes);
  EXPECT_TRUE(is_hang_up(ended)) << ended.message();
  std::string reason = inbound_failure_reason();
  EXPECT_FALSE(reason.empty());
  EXPECT_FALSE(contains(reason, "timed out")) << reason;
  expect_bob_still_serves();
}

TEST_F(HostHostileClientTest, AnOversizedNoiseFrameLengthWithoutTheBodyIsDropped) {
  // Announces a maximum-length frame, sends a fraction of it and stops sending: the host must
  // not wait for the rest once the client's side is closed.
  Bytes bytes = concat({noise_proposal(), noise_frame_header(noise::kMaxMessage), Bytes(100, 1)});
  auto ended = send_and_wait_for_hang_up(bytes, /*half_close=*/true);
  EXPECT_TRUE(is_hang_up(ended)) << ended.message();
  std::string reason = inbound_failure_reason();
  EXPECT_FALSE(reason.empty());
  EXPECT_FALSE(contains(reason, "timed out")) << reason;
  expect_bob_still_serves();
}

TEST_F(HostHostileClientTest, GarbageAfterTheHandshakeDropsTheConnection) {
  // A maximum-length transport frame that does not decrypt.
  Bytes garbage =
      concat({noise_frame_header(noise::kMaxMessage), patterned_bytes(noise::kMaxMessage)});
  std::string ended = upgrade_then_send_raw(garbage);
  EXPECT_TRUE(ended == "eof" || contains(ended, "read")) << ended;
  ASSERT_TRUE(run_until(io, [&] { return bob.disconnect_events() == 1; }));
  EXPECT_TRUE(contains(bob.events.back().reason, "noise")) << bob.events.back().reason;
  EXPECT_TRUE(bob.host().connected_peers().empty());
  expect_bob_still_serves();
}

TEST_F(HostHostileClientTest, ATransportFrameShorterThanItsTagDropsTheConnection) {
  Bytes garbage = concat({noise_frame_header(3), Bytes{1, 2, 3}});
  std::string ended = upgrade_then_send_raw(garbage);
  EXPECT_TRUE(ended == "eof" || contains(ended, "read")) << ended;
  ASSERT_TRUE(run_until(io, [&] { return bob.disconnect_events() == 1; }));
  EXPECT_TRUE(contains(bob.events.back().reason, "tag")) << bob.events.back().reason;
  EXPECT_TRUE(bob.host().connected_peers().empty());
  expect_bob_still_serves();
}

TEST_F(HostHostileClientTest, SeveralHostileClientsAtOnceDoNotDisturbAPeer) {
  std::vector<Bytes> attacks{Bytes(64, 0xff), concat({multistream_message("/multistream/2.0.0")}),
                             concat({noise_proposal(), noise_frame_header(10), Bytes(10, 7)})};
  int hung_up = 0;
  int finished = 0;
  const tcp::endpoint bob_endpoint(asio::ip::make_address("127.0.0.1"), bob.port());
  for (const Bytes& attack : attacks) {
    asio::co_spawn(
        io,
        [&, attack]() -> asio::awaitable<void> {
          tcp::socket socket(co_await asio::this_coro::executor);
          auto [connect_error] = co_await socket.async_connect(bob_endpoint, use_tuple);
          if (!connect_error) {
            (void)co_await asio::async_write(socket, asio::buffer(attack), use_tuple);
            Bytes buffer(4096);
            for (;;) {
              auto [read_error, count] =
                  co_await socket.async_read_some(asio::buffer(buffer), use_tuple);
              (void)count;
              if (read_error) {
                if (is_hang_up(read_error)) ++hung_up;
                break;
              }
            }
          }
          ++finished;
        },
        asio::detached);
  }
  expect_bob_still_serves();
  ASSERT_TRUE(run_until(
      io, [&] { return finished == static_cast<int>(attacks.size()); }, kHangUpLimit));
  EXPECT_EQ(hung_up, static_cast<int>(attacks.size()));
  EXPECT_TRUE(run_until(io, [&] { return bob.inbound_failures.size() == attacks.size(); }));
}

TEST_F(HostHostileClientTest, DestroyingAHostDuringAnInboundHandshakeIsSafe) {
  // The handshake coroutine outlives its Host when the io_context keeps running (other hosts,
  // other work): it must not use the destroyed host's state (under ASan this shows).
  auto carol = std::make_unique<TestPeer>(io, "test-agent/carol");
  const tcp::endpoint carol_endpoint(asio::ip::make_address("127.0.0.1"), carol->port());
  tcp::socket socket(io);
  const Bytes header = multistream_message(multistream::kProtocolId);
  auto greeted = run_coroutine(io, [&]() -> asio::awaitable<bool> {
    auto [connect_error] = co_await socket.async_connect(carol_endpoint, use_tuple);
    if (connect_error) co_return false;
    // Carol's responder announces itself at once: once we have her header, her inbound
    // upgrade is waiting for our proposal.
    Bytes received(header.size());
    auto [read_error, count] = co_await asio::async_read(socket, asio::buffer(received), use_tuple);
    co_return !read_error && count == header.size() && received == header;
  });
  ASSERT_TRUE(greeted.has_value() && *greeted);

  carol.reset();

  // The orphaned upgrade now gets a valid proposal (so it moves on to the Noise handshake),
  // then our end of the stream.
  auto ended = run_coroutine(
      io,
      [&]() -> asio::awaitable<std::error_code> {
        Bytes rest = multistream_message(noise::kProtocolId);
        Bytes proposal = concat({header, rest});
        (void)co_await asio::async_write(socket, asio::buffer(proposal), use_tuple);
        std::error_code ignored;
        socket.shutdown(tcp::socket::shutdown_send, ignored);
        Bytes buffer(4096);
        for (;;) {
          auto [read_error, count] =
              co_await socket.async_read_some(asio::buffer(buffer), use_tuple);
          (void)count;
          if (read_error) co_return read_error;
        }
      },
      kHangUpLimit);
  ASSERT_TRUE(ended.has_value());
  EXPECT_TRUE(is_hang_up(*ended)) << ended->message();
  expect_bob_still_serves();
}

}  // namespace
}  // namespace an::p2p::net::test
