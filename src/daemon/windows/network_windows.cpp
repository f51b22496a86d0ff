// Windows implementation of interface_addresses() from platform.h. A file of its own because
// the IP Helper headers need winsock2.h ahead of everything else.

// Order matters (winsock2.h before anything that pulls in windows.h): one block each, so that
// include sorting keeps it.
#include <winsock2.h>

#include <ws2tcpip.h>

#include <iphlpapi.h>

#include <mutex>
#include <string>
#include <vector>

#include "daemon/platform.h"

namespace an::daemon {
namespace {

// inet_ntop is part of Winsock, which wants WSAStartup first; one reference for the whole
// process life is harmless and never released, as the node keeps using sockets anyway.
void ensure_winsock() {
  static std::once_flag once;
  std::call_once(once, [] {
    WSADATA data;
    ::WSAStartup(MAKEWORD(2, 2), &data);
  });
}

bool is_usable(const IP_ADAPTER_UNICAST_ADDRESS* address) {
  // Tentative and duplicate addresses are not reachable yet (or ever); deprecated ones still
  // work for existing peers.
  return address->DadState == IpDadStatePreferred || address->DadState == IpDadStateDeprecated;
}

}  // namespace

std::vector<std::string> interface_addresses(bool ipv6) {
  std::vector<std::string> result;
  ensure_winsock();
  const ULONG family = ipv6 ? AF_INET6 : AF_INET;
  const ULONG flags = GAA_FLAG_SKIP_ANYCAST | GAA_FLAG_SKIP_MULTICAST | GAA_FLAG_SKIP_DNS_SERVER |
                      GAA_FLAG_SKIP_FRIENDLY_NAME;
  // The list can grow between the size query and the call, hence the loop; 15 KB is Microsoft's
  // suggested first guess, which avoids the second call on most machines.
  std::vector<unsigned char> buffer(15 * 1024);
  ULONG rc = ERROR_BUFFER_OVERFLOW;
  for (int attempt = 0; attempt < 4 && rc == ERROR_BUFFER_OVERFLOW; ++attempt) {
    ULONG size = static_cast<ULONG>(buffer.size());
    rc = ::GetAdaptersAddresses(family, flags, nullptr,
                                reinterpret_cast<IP_ADAPTER_ADDRESSES*>(buffer.data()), &size);
    if (rc == ERROR_BUFFER_OVERFLOW) buffer.resize(size);
  }
  if (rc != NO_ERROR) return result;

  for (auto* adapter = reinterpret_cast<IP_ADAPTER_ADDRESSES*>(buffer.data()); adapter != nullptr;
       adapter = adapter->Next) {
    if (adapter->OperStatus != IfOperStatusUp) continue;
    for (auto* address = adapter->FirstUnicastAddress; address != nullptr;
         address = address->Next) {
      if (!is_usable(address)) continue;
      const sockaddr* socket_address = address->Address.lpSockaddr;
      if (socket_address == nullptr) continue;
      char text[INET6_ADDRSTRLEN] = {};
      if (!ipv6 && socket_address->sa_family == AF_INET) {
        auto* v4 = reinterpret_cast<const sockaddr_in*>(socket_address);
        if (::inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text)) == nullptr) continue;
      } else if (ipv6 && socket_address->sa_family == AF_INET6) {
        auto* v6 = reinterpret_cast<const sockaddr_in6*>(socket_address);
        if (IN6_IS_ADDR_LINKLOCAL(&v6->sin6_addr)) continue;
        if (::inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text)) == nullptr) continue;
      } else {
        continue;
      }
      std::string value(text);
      bool seen = false;
      for (const auto& existing : result) {
        seen = seen || existing == value;
      }
      if (!seen) result.push_back(std::move(value));
    }
  }
  return result;
}

}  // namespace an::daemon
