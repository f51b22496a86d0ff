// TCP for libp2p: multiaddr <-> endpoint, dialing with DNS resolution and a deadline.
// Coroutines run on the caller's executor (the network thread).
#pragma once

#include <asio.hpp>
#include <chrono>
#include <string>

#include "p2p/multiformats/multiaddr.h"
#include "util/expected.h"

namespace an::p2p::net {

// How long a TCP connect (including name resolution) may take.
inline constexpr std::chrono::seconds kDialTimeout{10};

struct TcpDialTarget {
  std::string host;  // an IP literal or a DNS name
  std::uint16_t port = 0;
  bool dns = false;
  bool ipv4_only = false;  // dns4
  bool ipv6_only = false;  // dns6
};

// /ip4|ip6|dns|dns4|dns6/HOST/tcp/PORT, optionally followed by /p2p/ID; anything else is an
// error naming the address.
Expected<TcpDialTarget> tcp_dial_target(const Multiaddr& address);

// /ip4/A/tcp/P or /ip6/A/tcp/P for an endpoint (IPv4-mapped IPv6 shown as IPv4).
Multiaddr endpoint_to_multiaddr(const asio::ip::tcp::endpoint& endpoint);

// Socket options for every libp2p TCP connection: TCP_NODELAY (handshakes are small messages)
// and TCP keepalive probing after 30 s of silence, so that a peer that vanished without a FIN
// or RST is noticed within about a minute and its connection (say, to a bootstrap peer, which
// is then redialled) closed.
void tune_socket(asio::ip::tcp::socket& socket);

// Resolves (for DNS addresses) and connects, trying each resolved address in turn, all within
// `timeout`. TCP_NODELAY is set: libp2p writes small handshake messages.
asio::awaitable<Expected<asio::ip::tcp::socket>> dial_tcp(const Multiaddr& address,
                                                          std::chrono::milliseconds timeout);

}  // namespace an::p2p::net
