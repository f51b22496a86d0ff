// physical_memory_bytes() and descriptor_limit() on every platform the daemon layer builds for:
// the resource manager scales its default limits with them.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

#include "daemon/platform.h"

#ifndef _WIN32
#include <sys/resource.h>
#endif

namespace an::daemon {
namespace {

constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;

TEST(MachineLimitsTest, PhysicalMemoryIsPlausible) {
  const std::uint64_t bytes = physical_memory_bytes();
  // Any machine that runs a node has more than 64 MiB and less than 64 TiB.
  EXPECT_GT(bytes, 64 * kMiB);
  EXPECT_LT(bytes, 64 * kMiB * kMiB);
}

#ifdef __linux__
TEST(MachineLimitsTest, PhysicalMemoryIsMemTotal) {
  std::ifstream meminfo("/proc/meminfo");
  ASSERT_TRUE(meminfo) << "no /proc/meminfo";
  std::string line;
  std::uint64_t total_kib = 0;
  while (std::getline(meminfo, line)) {
    if (line.rfind("MemTotal:", 0) != 0) continue;
    std::istringstream(line.substr(9)) >> total_kib;
    break;
  }
  ASSERT_GT(total_kib, 0u);
  EXPECT_EQ(physical_memory_bytes(), total_kib * 1024);
}
#endif

#ifdef _WIN32
TEST(MachineLimitsTest, HandlesAreTakenAsUnbounded) {
  EXPECT_EQ(descriptor_limit(), std::uint64_t{1} << 24);
}
#else
// The soft limit is the one that refuses an open(); the test lowers it and puts it back.
TEST(MachineLimitsTest, DescriptorLimitFollowsTheSoftLimit) {
  struct rlimit original {};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &original), 0);
  const rlim_t lowered = 200;
  if (original.rlim_max != RLIM_INFINITY && original.rlim_max < lowered) {
    GTEST_SKIP() << "hard descriptor limit below " << lowered;
  }
  struct rlimit changed = original;
  changed.rlim_cur = lowered;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &changed), 0);
  const std::uint64_t seen = descriptor_limit();
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &original), 0);
  EXPECT_EQ(seen, lowered);
}
#endif

}  // namespace
}  // namespace an::daemon
