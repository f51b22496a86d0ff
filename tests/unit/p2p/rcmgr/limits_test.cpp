#include "p2p/rcmgr/limits.h"

#include <gtest/gtest.h>

namespace an::p2p::rcmgr {
namespace {

constexpr std::int64_t kMiB = std::int64_t{1} << 20;
constexpr std::int64_t kGiB = std::int64_t{1} << 30;

TEST(LimitsTest, DefaultsScaleLikeGoLibp2p) {
  // go-libp2p's base limits below 128 MiB of budget.
  const auto base = scaled_default_limits(64 * kMiB, 128);
  EXPECT_EQ(base.system.conns_inbound, 64);
  EXPECT_EQ(base.system.memory, 128 * kMiB);
  EXPECT_EQ(base.system.fds, 256);
  EXPECT_EQ(base.transient.conns_inbound, 32);
  EXPECT_EQ(base.peer.conns, 8);
  EXPECT_EQ(base.peer.streams_inbound, 256);
  EXPECT_EQ(base.gate.handshakes_total, 32);
  // A 3 GiB budget (24 GiB of memory / 8) and 512 descriptors.
  const auto scaled = scaled_default_limits(3 * kGiB, 512);
  EXPECT_EQ(scaled.system.conns_inbound, 64 + 3 * 64);
  EXPECT_EQ(scaled.system.memory, 128 * kMiB + 3 * kGiB);
  EXPECT_EQ(scaled.system.fds, 512);
  EXPECT_EQ(scaled.transient.fds, 128);
  EXPECT_EQ(scaled.transient.conns_inbound, 32 + 3 * 16);
  EXPECT_EQ(scaled.peer.memory, 64 * kMiB + 3 * 128 * kMiB);
  EXPECT_EQ(scaled.peer.fds, 8);
  EXPECT_EQ(scaled.stream.streams_inbound, 1);
  EXPECT_EQ(scaled.connection.memory, 32 * kMiB);
  EXPECT_EQ(scaled.allowlisted_system, scaled.system);
}

TEST(LimitsTest, OverridesSetOneLimitEach) {
  auto config = scaled_default_limits(0, 0);
  ASSERT_TRUE(apply_limit_override(config, "system.conns_inbound=500"));
  EXPECT_EQ(config.system.conns_inbound, 500);
  ASSERT_TRUE(apply_limit_override(config, "peer.memory=16MiB"));
  EXPECT_EQ(config.peer.memory, 16 * kMiB);
  ASSERT_TRUE(apply_limit_override(config, "transient.streams=unlimited"));
  EXPECT_EQ(config.transient.streams, kUnlimited);
  ASSERT_TRUE(apply_limit_override(config, "protocol:/ipfs/kad/1.0.0.streams_inbound=10"));
  EXPECT_EQ(config.protocols.at("/ipfs/kad/1.0.0").streams_inbound, 10);
  EXPECT_EQ(config.protocols.at("/ipfs/kad/1.0.0").streams_outbound,
            config.protocol.streams_outbound);
  ASSERT_TRUE(apply_limit_override(config, "gate.rate_per_ip=0.5"));
  EXPECT_DOUBLE_EQ(config.gate.rate_per_ip, 0.5);
  ASSERT_TRUE(apply_limit_override(config, "gate.handshakes_per_ip=4"));
  EXPECT_EQ(config.gate.handshakes_per_ip, 4);
}

TEST(LimitsTest, BadOverridesNameTheBadPart) {
  auto config = scaled_default_limits(0, 0);
  const auto before = config.system;
  struct Case {
    const char* text;
    const char* expected;
  };
  for (const Case& c :
       {Case{"system.conns_inbound", "SCOPE.RESOURCE=VALUE"},
        Case{"galaxy.memory=1", "unknown scope"}, Case{"system.bandwidth=1", "unknown resource"},
        Case{"system.memory=-1", "bad value"}, Case{"system.memory=12TB", "bad value"},
        Case{"system.conns=1MiB", "bad value"}, Case{"gate.rate_per_ip=fast", "bad rate"},
        Case{"gate.speed=1", "unknown gate limit"}, Case{"protocol:.memory=1", "unknown scope"}}) {
    auto result = apply_limit_override(config, c.text);
    ASSERT_FALSE(result) << c.text;
    EXPECT_NE(result.error().message.find(c.expected), std::string::npos)
        << c.text << ": " << result.error().message;
  }
  EXPECT_EQ(config.system, before) << "a refused override changes nothing";
}

TEST(LimitsTest, FormatsForPeople) {
  EXPECT_EQ(format_limit(Resource::kMemory, 128 * kMiB), "128.0 MiB");
  EXPECT_EQ(format_limit(Resource::kMemory, 3 * kGiB), "3.0 GiB");
  EXPECT_EQ(format_limit(Resource::kConns, kUnlimited), "unlimited");
  EXPECT_EQ(format_limit(Resource::kConns, 17), "17");
}

}  // namespace
}  // namespace an::p2p::rcmgr
