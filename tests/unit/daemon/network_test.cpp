// interface_addresses() on every platform the daemon layer builds for: the node expands
// 0.0.0.0 and :: listen addresses with it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "daemon/platform.h"

namespace an::daemon {
namespace {

bool is_dotted_quad(const std::string& text) {
  int dots = 0;
  int digits = 0;
  for (char c : text) {
    if (c == '.') {
      if (digits == 0 || digits > 3) return false;
      ++dots;
      digits = 0;
    } else if (c >= '0' && c <= '9') {
      ++digits;
    } else {
      return false;
    }
  }
  return dots == 3 && digits >= 1 && digits <= 3;
}

TEST(InterfaceAddressesTest, Ipv4AddressesAreNumericUniqueAndIncludeLoopback) {
  const std::vector<std::string> addresses = interface_addresses(/*ipv6=*/false);
  for (const auto& address : addresses)
    EXPECT_TRUE(is_dotted_quad(address)) << address;
  EXPECT_NE(std::find(addresses.begin(), addresses.end(), "127.0.0.1"), addresses.end())
      << "the loopback interface is up on every machine that runs these tests";
  std::vector<std::string> sorted = addresses;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end());
}

// A machine may have IPv6 turned off, so no address is required; those listed must be usable.
TEST(InterfaceAddressesTest, Ipv6AddressesHaveNoScopeAndNoLinkLocal) {
  const std::vector<std::string> addresses = interface_addresses(/*ipv6=*/true);
  std::printf("IPv6 interface addresses: %zu\n", addresses.size());
  for (const auto& address : addresses) {
    EXPECT_NE(address.find(':'), std::string::npos) << address;
    EXPECT_EQ(address.find('%'), std::string::npos) << address;
    EXPECT_NE(address.rfind("fe80:", 0), 0u) << address;
  }
  for (const auto& address : interface_addresses(/*ipv6=*/false))
    EXPECT_EQ(address.find(':'), std::string::npos) << "IPv6 in the IPv4 list: " << address;
}

}  // namespace
}  // namespace an::daemon
