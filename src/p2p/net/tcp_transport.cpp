#include "p2p/net/tcp_transport.h"

#include "p2p/net/async.h"

namespace an::p2p::net {

using asio::ip::tcp;

namespace {
constexpr int kKeepAliveIdleSeconds = 30;
constexpr int kKeepAliveIntervalSeconds = 10;
constexpr int kKeepAliveProbes = 3;
}  // namespace

Expected<TcpDialTarget> tcp_dial_target(const Multiaddr& address) {
  const auto& parts = address.components();
  bool shape_ok = parts.size() == 2 || (parts.size() == 3 && parts[2].code == kProtocolP2p);
  if (!shape_ok || parts[1].code != kProtocolTcp) {
    return fail("cannot dial " + address.to_string() + ": not a TCP address");
  }
  TcpDialTarget target;
  target.host = parts[0].value;
  switch (parts[0].code) {
    case kProtocolIp4:
    case kProtocolIp6:
      break;
    case kProtocolDns:
      target.dns = true;
      break;
    case kProtocolDns4:
      target.dns = true;
      target.ipv4_only = true;
      break;
    case kProtocolDns6:
      target.dns = true;
      target.ipv6_only = true;
      break;
    default:
      return fail("cannot dial " + address.to_string() + ": unsupported network protocol");
  }
  unsigned long port = std::stoul(parts[1].value);
  if (port == 0) return fail("cannot dial " + address.to_string() + ": port 0");
  target.port = static_cast<std::uint16_t>(port);
  return target;
}

Multiaddr endpoint_to_multiaddr(const tcp::endpoint& endpoint) {
  auto ip = endpoint.address();
  if (ip.is_v6() && ip.to_v6().is_v4_mapped()) {
    ip = asio::ip::make_address_v4(asio::ip::v4_mapped, ip.to_v6());
  }
  std::string text =
      (ip.is_v4() ? "/ip4/" : "/ip6/") + ip.to_string() + "/tcp/" + std::to_string(endpoint.port());
  auto parsed = Multiaddr::parse(text);
  return parsed ? *parsed : Multiaddr();
}

#if defined(TCP_KEEPIDLE)
#define AN_TCP_KEEPIDLE TCP_KEEPIDLE
#elif defined(__APPLE__) && defined(TCP_KEEPALIVE)
// macOS names the idle time before the first keep-alive probe TCP_KEEPALIVE.
#define AN_TCP_KEEPIDLE TCP_KEEPALIVE
#endif

void tune_socket(tcp::socket& socket) {
  std::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  socket.set_option(asio::socket_base::keep_alive(true), ignored);
#if defined(AN_TCP_KEEPIDLE) && defined(TCP_KEEPINTVL) && defined(TCP_KEEPCNT)
  using KeepIdle = asio::detail::socket_option::integer<IPPROTO_TCP, AN_TCP_KEEPIDLE>;
  using KeepInterval = asio::detail::socket_option::integer<IPPROTO_TCP, TCP_KEEPINTVL>;
  using KeepCount = asio::detail::socket_option::integer<IPPROTO_TCP, TCP_KEEPCNT>;
  socket.set_option(KeepIdle(kKeepAliveIdleSeconds), ignored);
  socket.set_option(KeepInterval(kKeepAliveIntervalSeconds), ignored);
  socket.set_option(KeepCount(kKeepAliveProbes), ignored);
#endif
}

asio::awaitable<Expected<tcp::socket>> dial_tcp(const Multiaddr& address,
                                                std::chrono::milliseconds timeout) {
  using namespace asio::experimental::awaitable_operators;
  auto executor = co_await asio::this_coro::executor;
  auto target = tcp_dial_target(address);
  if (!target) co_return tl::unexpected(target.error());
  const auto deadline = std::chrono::steady_clock::now() + timeout;

  std::vector<tcp::endpoint> endpoints;
  if (!target->dns) {
    std::error_code ec;
    auto ip = asio::ip::make_address(target->host, ec);
    if (ec) co_return fail("cannot dial " + address.to_string() + ": " + ec.message());
    endpoints.emplace_back(ip, target->port);
  } else {
    tcp::resolver resolver(executor);
    asio::steady_timer timer(executor, deadline);
    auto result =
        co_await (resolver.async_resolve(target->host, std::to_string(target->port), use_tuple) ||
                  timer.async_wait(use_tuple));
    if (result.index() == 1) co_return fail("cannot resolve " + target->host + ": timed out");
    auto [ec, resolved] = std::get<0>(result);
    if (ec) co_return fail("cannot resolve " + target->host + ": " + ec.message());
    for (const auto& entry : resolved) {
      const auto& endpoint = entry.endpoint();
      if (target->ipv4_only && !endpoint.address().is_v4()) continue;
      if (target->ipv6_only && !endpoint.address().is_v6()) continue;
      endpoints.push_back(endpoint);
    }
    if (endpoints.empty()) co_return fail("cannot resolve " + target->host + ": no usable address");
  }

  std::string last_error = "no address";
  for (const auto& endpoint : endpoints) {
    if (std::chrono::steady_clock::now() >= deadline) break;
    tcp::socket socket(executor);
    asio::steady_timer timer(executor, deadline);
    auto result =
        co_await (socket.async_connect(endpoint, use_tuple) || timer.async_wait(use_tuple));
    if (result.index() == 1) {
      last_error = "timed out";
      break;
    }
    auto [ec] = std::get<0>(result);
    if (ec) {
      last_error = ec.message();
      continue;
    }
    tune_socket(socket);
    co_return std::move(socket);
  }
  co_return fail("cannot connect to " + address.to_string() + ": " + last_error);
}

}  // namespace an::p2p::net
