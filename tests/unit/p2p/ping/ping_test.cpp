// /ipfs/ping/1.0.0: constants from the spec, random payloads and the echo check.
#include "p2p/ping/ping.h"

#include <gtest/gtest.h>

namespace an::p2p::ping {
namespace {

TEST(PingConstants, MatchTheSpec) {
  EXPECT_EQ(kProtocolId, "/ipfs/ping/1.0.0");
  EXPECT_EQ(kPayloadSize, 32u);
  EXPECT_LT(kPingTimeout, kResponderStreamLifetime);
}

TEST(PingPayload, IsRandom) {
  auto first = make_payload();
  auto second = make_payload();
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(second.has_value());
  // Two equal 32-byte random payloads would mean a broken generator (chance 2^-256).
  EXPECT_NE(*first, *second);
}

TEST(PingEcho, AcceptsExactlyThePayload) {
  auto payload = make_payload();
  ASSERT_TRUE(payload.has_value());
  EXPECT_TRUE(verify_echo(*payload, *payload).has_value());

  auto altered = *payload;
  altered[31] ^= 0x80;
  auto differs = verify_echo(*payload, altered);
  ASSERT_FALSE(differs.has_value());
  EXPECT_EQ(differs.error().message, "ping: the echo differs from the payload sent");

  auto short_echo = verify_echo(*payload, ByteView(*payload).first(31));
  ASSERT_FALSE(short_echo.has_value());
  EXPECT_EQ(short_echo.error().message, "ping: echo of 31 bytes, expected 32");

  Bytes long_echo(payload->begin(), payload->end());
  long_echo.push_back(0);
  EXPECT_FALSE(verify_echo(*payload, long_echo).has_value());
  EXPECT_FALSE(verify_echo(*payload, ByteView()).has_value());
}

}  // namespace
}  // namespace an::p2p::ping
