// Yamux frame header codec: byte-exact vectors for each frame type (hashicorp/yamux spec.md
// layout: version, type, flags, stream ID, length, all big-endian) and hostile headers.
#include "p2p/yamux/frame.h"

#include <gtest/gtest.h>

#include <chrono>

#include "p2p/yamux/session.h"

namespace an::p2p::yamux {
namespace {

struct Vector {
  FrameHeader header;
  Bytes encoded;
};

TEST(YamuxFrame, EncodesEachFrameTypeByteExact) {
  const Vector vectors[] = {
      // Data(SYN) on stream 1 with 5 payload bytes.
      {{FrameType::kData, kFlagSyn, 1, 5},
       {0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x05}},
      // WindowUpdate(ACK) on stream 2 granting 256 KiB more.
      {{FrameType::kWindowUpdate, kFlagAck, 2, 0x40000},
       {0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00}},
      // Data(FIN) with no payload on a large stream ID.
      {{FrameType::kData, kFlagFin, 0x01020304, 0},
       {0x00, 0x00, 0x00, 0x04, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00}},
      // WindowUpdate(RST) with error code 0.
      {{FrameType::kWindowUpdate, kFlagRst, 7, 0},
       {0x00, 0x01, 0x00, 0x08, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00}},
      // Ping(SYN) and its Ping(ACK) reply with the opaque value 0xdeadbeef.
      {{FrameType::kPing, kFlagSyn, 0, 0xdeadbeef},
       {0x00, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef}},
      {{FrameType::kPing, kFlagAck, 0, 0xdeadbeef},
       {0x00, 0x02, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef}},
      // GoAway(protocol error).
      {{FrameType::kGoAway, 0, 0, 1},
       {0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01}},
      // All flags at once, maximal values.
      {{FrameType::kWindowUpdate, 0x000f, 0xffffffff, 0xffffffff},
       {0x00, 0x01, 0x00, 0x0f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
  };
  for (const Vector& vector : vectors) {
    Bytes encoded;
    append_header(encoded, vector.header);
    EXPECT_EQ(encoded, vector.encoded) << describe(vector.header);
    auto decoded = decode_header(vector.encoded);
    ASSERT_TRUE(decoded) << decoded.error().message;
    EXPECT_EQ(*decoded, vector.header) << describe(vector.header);
  }
}

TEST(YamuxFrame, DescribesFramesForErrorMessages) {
  EXPECT_EQ(describe({FrameType::kData, kFlagSyn | kFlagFin, 3, 5}),
            "Data(SYN|FIN) stream=3 length=5");
  EXPECT_EQ(describe({FrameType::kGoAway, 0, 0, 2}), "GoAway stream=0 length=2");
}

TEST(YamuxFrame, RejectsBadVersionUnknownTypeAndShortInput) {
  const Bytes bad_version = {0x01, 0x00, 0x00, 0x00, 0, 0, 0, 1, 0, 0, 0, 0};
  auto decoded = decode_header(bad_version);
  ASSERT_FALSE(decoded);
  EXPECT_NE(decoded.error().message.find("version 1"), std::string::npos);

  const Bytes unknown_type = {0x00, 0x04, 0x00, 0x00, 0, 0, 0, 1, 0, 0, 0, 0};
  decoded = decode_header(unknown_type);
  ASSERT_FALSE(decoded);
  EXPECT_NE(decoded.error().message.find("type 4"), std::string::npos);

  const Bytes short_header = {0x00, 0x00, 0x00};
  decoded = decode_header(short_header);
  ASSERT_FALSE(decoded);
  EXPECT_NE(decoded.error().message.find("truncated"), std::string::npos);
}

TEST(YamuxFrame, UnknownFlagBitsAreKept) {
  const Bytes encoded = {0x00, 0x00, 0x80, 0x01, 0, 0, 0, 1, 0, 0, 0, 0};
  auto decoded = decode_header(encoded);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->flags, 0x8001);
  EXPECT_TRUE(decoded->has(kFlagSyn));
}

// The session's own frames, byte for byte, as a go-yamux or js-libp2p-yamux peer expects them.
TEST(YamuxFrame, SessionEmitsByteExactFrames) {
  Config config;
  config.is_initiator = true;
  config.rtt_probe_interval = Clock::duration::zero();
  auto session = Session::create(config);
  ASSERT_TRUE(session);
  Bytes out;

  auto id = session->open_stream();
  ASSERT_TRUE(id);
  EXPECT_EQ(*id, 1u);
  session->take_output(out);
  EXPECT_EQ(out, (Bytes{0x00, 0x01, 0x00, 0x01, 0, 0, 0, 1, 0, 0, 0, 0}));  // WU(SYN) delta 0

  out.clear();
  const Bytes hello = {'h', 'i'};
  ASSERT_EQ(session->write(*id, hello).value(), 2u);
  session->take_output(out);
  EXPECT_EQ(out, (Bytes{0x00, 0x00, 0x00, 0x00, 0, 0, 0, 1, 0, 0, 0, 2, 'h', 'i'}));

  out.clear();
  ASSERT_TRUE(session->close_write(*id));
  session->take_output(out);
  EXPECT_EQ(out, (Bytes{0x00, 0x01, 0x00, 0x04, 0, 0, 0, 1, 0, 0, 0, 0}));  // WU(FIN)

  out.clear();
  const std::uint32_t value = session->ping(Clock::time_point{});
  session->take_output(out);
  EXPECT_EQ(out,
            (Bytes{0x00, 0x02, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, static_cast<std::uint8_t>(value)}));

  out.clear();
  session->go_away(GoAwayCode::kInternalError);
  session->take_output(out);
  EXPECT_EQ(out, (Bytes{0x00, 0x03, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 2}));
}

TEST(YamuxFrame, LargerInitialWindowRidesOnTheSyn) {
  Config config;
  config.is_initiator = true;
  config.initial_window = 1024 * 1024;
  config.rtt_probe_interval = Clock::duration::zero();
  auto session = Session::create(config);
  ASSERT_TRUE(session);
  ASSERT_TRUE(session->open_stream());
  Bytes out;
  session->take_output(out);
  // 1 MiB - 256 KiB = 0x000c0000.
  EXPECT_EQ(out, (Bytes{0x00, 0x01, 0x00, 0x01, 0, 0, 0, 1, 0x00, 0x0c, 0x00, 0x00}));
}

}  // namespace
}  // namespace an::p2p::yamux
