#include "p2p/rcmgr/ip.h"

#include <algorithm>
#include <charconv>

namespace an::p2p::rcmgr {

std::optional<IpAddress> IpAddress::from_multiaddr(const Multiaddr& address) {
  const auto& parts = address.components();
  if (parts.empty()) return std::nullopt;
  const auto& host = parts.front();
  IpAddress ip;
  if (host.code == kProtocolIp4 && host.raw_value.size() == 4) {
    std::copy(host.raw_value.begin(), host.raw_value.end(), ip.bytes.begin());
    return ip;
  }
  if (host.code == kProtocolIp6 && host.raw_value.size() == 16) {
    std::copy(host.raw_value.begin(), host.raw_value.end(), ip.bytes.begin());
    ip.v4 = false;
    // An IPv4-mapped address (::ffff:a.b.c.d) is the IPv4 peer it stands for: limits keyed by
    // address must not be dodged by writing it the other way.
    static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::equal(kMapped, kMapped + 12, ip.bytes.begin())) {
      std::copy(ip.bytes.begin() + 12, ip.bytes.end(), ip.bytes.begin());
      std::fill(ip.bytes.begin() + 4, ip.bytes.end(), 0);
      ip.v4 = true;
    }
    return ip;
  }
  return std::nullopt;
}

Expected<IpAddress> IpAddress::parse(std::string_view text) {
  const bool v6 = text.find(':') != std::string_view::npos;
  auto address = Multiaddr::parse((v6 ? "/ip6/" : "/ip4/") + std::string(text));
  if (!address || address->components().size() != 1) {
    return fail("bad IP address \"" + std::string(text) + "\"");
  }
  auto ip = from_multiaddr(*address);
  if (!ip) return fail("bad IP address \"" + std::string(text) + "\"");
  return *ip;
}

bool IpAddress::is_loopback() const {
  if (v4) return bytes[0] == 127;
  return std::all_of(bytes.begin(), bytes.begin() + 15, [](std::uint8_t b) { return b == 0; }) &&
         bytes[15] == 1;
}

IpAddress IpAddress::masked(int prefix_length) const {
  IpAddress result = *this;
  const int total = bits();
  for (int bit = std::max(prefix_length, 0); bit < total; ++bit) {
    result.bytes[static_cast<std::size_t>(bit / 8)] &=
        static_cast<std::uint8_t>(~(0x80u >> (bit % 8)));
  }
  return result;
}

std::string IpAddress::to_string() const {
  Multiaddr address;
  Bytes raw(bytes.begin(), bytes.begin() + (v4 ? 4 : 16));
  Bytes encoded;
  append_varint(encoded, v4 ? kProtocolIp4 : kProtocolIp6);
  encoded.insert(encoded.end(), raw.begin(), raw.end());
  auto parsed = Multiaddr::from_bytes(encoded);
  if (!parsed || parsed->components().empty()) return "?";
  return parsed->components().front().value;
}

Expected<IpPrefix> IpPrefix::parse(std::string_view text) {
  const auto slash = text.find('/');
  auto address = IpAddress::parse(text.substr(0, slash));
  if (!address) return tl::unexpected(address.error());
  IpPrefix prefix{*address, address->bits()};
  if (slash != std::string_view::npos) {
    const auto digits = text.substr(slash + 1);
    int length = -1;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), length);
    if (ec != std::errc() || end != digits.data() + digits.size() || length < 0 ||
        length > address->bits()) {
      return fail("bad prefix length in \"" + std::string(text) + "\"");
    }
    prefix.length = length;
  }
  prefix.network = prefix.network.masked(prefix.length);
  return prefix;
}

bool IpPrefix::contains(const IpAddress& address) const {
  return address.v4 == network.v4 && address.masked(length) == network;
}

std::string IpPrefix::to_string() const {
  return network.to_string() + "/" + std::to_string(length);
}

}  // namespace an::p2p::rcmgr

std::size_t std::hash<an::p2p::rcmgr::IpAddress>::operator()(
    const an::p2p::rcmgr::IpAddress& address) const noexcept {
  std::size_t value = address.v4 ? 0x9e3779b9u : 0x7f4a7c15u;
  for (std::uint8_t byte : address.bytes)
    value = value * 131 + byte;
  return value;
}
