#include "node/listen_addresses.h"

#include <string>

#include "daemon/platform.h"

namespace an::node {

std::vector<p2p::Multiaddr> expand_unspecified(const std::vector<p2p::Multiaddr>& bound) {
  std::vector<p2p::Multiaddr> result;
  for (const auto& address : bound) {
    const auto& parts = address.components();
    if (parts.size() != 2) continue;
    const bool ipv6 = parts[0].code == p2p::kProtocolIp6;
    const std::string& host = parts[0].value;
    if (host != "0.0.0.0" && host != "::") {
      result.push_back(address);
      continue;
    }
    for (const auto& interface_address : daemon::interface_addresses(ipv6)) {
      auto expanded = p2p::Multiaddr::parse((ipv6 ? "/ip6/" : "/ip4/") + interface_address +
                                            "/tcp/" + parts[1].value);
      if (expanded) result.push_back(*expanded);
    }
  }
  return result;
}

}  // namespace an::node
