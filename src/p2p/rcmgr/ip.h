// IP addresses and prefixes as the resource manager keys its per-address and per-subnet limits:
// plain values, no sockets. Any thread.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "p2p/multiformats/multiaddr.h"
#include "util/expected.h"

namespace an::p2p::rcmgr {

struct IpAddress {
  // IPv4 addresses use the first 4 bytes.
  std::array<std::uint8_t, 16> bytes{};
  bool v4 = true;

  // The host of /ip4/A/... or /ip6/A/...; nullopt for other addresses (relayed, DNS).
  static std::optional<IpAddress> from_multiaddr(const Multiaddr& address);
  static Expected<IpAddress> parse(std::string_view text);

  int bits() const { return v4 ? 32 : 128; }
  bool is_loopback() const;
  // The first `prefix_length` bits, the rest zero: the subnet this address is in.
  IpAddress masked(int prefix_length) const;
  std::string to_string() const;

  bool operator==(const IpAddress&) const = default;
  auto operator<=>(const IpAddress&) const = default;
};

// "10.0.0.0/8", "2001:db8::/32", or a bare address (all its bits).
struct IpPrefix {
  IpAddress network;
  int length = 0;

  static Expected<IpPrefix> parse(std::string_view text);
  bool contains(const IpAddress& address) const;
  std::string to_string() const;
};

}  // namespace an::p2p::rcmgr

template <>
struct std::hash<an::p2p::rcmgr::IpAddress> {
  std::size_t operator()(const an::p2p::rcmgr::IpAddress& address) const noexcept;
};
