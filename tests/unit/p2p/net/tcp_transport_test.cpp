#include "p2p/net/tcp_transport.h"

#include <gtest/gtest.h>
#include <netinet/tcp.h>

#include "unit/p2p/net/net_test_support.h"

namespace an::p2p::net::test {
namespace {

TEST(TcpTransportTest, DialedSocketsProbeSilentPeers) {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io,
                                   asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  auto address =
      Multiaddr::parse("/ip4/127.0.0.1/tcp/" + std::to_string(acceptor.local_endpoint().port()));
  ASSERT_TRUE(address);
  std::optional<Expected<asio::ip::tcp::socket>> socket;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        socket.emplace(co_await dial_tcp(*address, std::chrono::seconds(5)));
      },
      asio::detached);
  ASSERT_TRUE(run_until(io, [&] { return socket.has_value(); }));
  ASSERT_TRUE(*socket) << (*socket).error().message;
  asio::socket_base::keep_alive keep_alive;
  (*socket)->get_option(keep_alive);
  EXPECT_TRUE(keep_alive.value());
  asio::ip::tcp::no_delay no_delay;
  (*socket)->get_option(no_delay);
  EXPECT_TRUE(no_delay.value());
#if defined(TCP_KEEPIDLE)
  asio::detail::socket_option::integer<IPPROTO_TCP, TCP_KEEPIDLE> idle;
  (*socket)->get_option(idle);
  EXPECT_EQ(idle.value(), 30);
#endif
}

TEST(TcpTransportTest, RejectsAddressesItCannotDial) {
  for (const char* text :
       {"/ip4/127.0.0.1/udp/1", "/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/tcp/1/p2p-circuit"}) {
    auto address = Multiaddr::parse(text);
    ASSERT_TRUE(address) << text;
    EXPECT_FALSE(tcp_dial_target(*address)) << text;
  }
}

}  // namespace
}  // namespace an::p2p::net::test
