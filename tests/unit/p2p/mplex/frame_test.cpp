// Mplex frame header codec: byte-exact vectors (varint of ID << 3 | flag, varint length, per
// libp2p/specs mplex/README.md), partial headers, and hostile headers.
#include "p2p/mplex/frame.h"

#include <gtest/gtest.h>

namespace an::p2p::mplex {
namespace {

constexpr std::uint64_t kOneMebibyte = 1024 * 1024;

struct Vector {
  FrameHeader header;
  Bytes encoded;
};

TEST(MplexFrame, EncodesHeadersByteExact) {
  const Vector vectors[] = {
      // NewStream on stream 0 with a 1-byte name: tag 0, length 1.
      {{0, Flag::kNewStream, 1}, {0x00, 0x01}},
      // Message(initiator) on stream 1 with 5 bytes: tag 1 << 3 | 2 = 10.
      {{1, Flag::kMessageInitiator, 5}, {0x0a, 0x05}},
      // Message(receiver) on stream 16: tag 16 << 3 | 1 = 129, two varint bytes.
      {{16, Flag::kMessageReceiver, 300}, {0x81, 0x01, 0xac, 0x02}},
      // Close(initiator) on stream 2: tag 20.
      {{2, Flag::kCloseInitiator, 0}, {0x14, 0x00}},
      // Close(receiver) on stream 3: tag 27.
      {{3, Flag::kCloseReceiver, 0}, {0x1b, 0x00}},
      // Reset(receiver) on stream 4: tag 37; Reset(initiator) on stream 5: tag 46.
      {{4, Flag::kResetReceiver, 0}, {0x25, 0x00}},
      {{5, Flag::kResetInitiator, 0}, {0x2e, 0x00}},
      // 1 MiB message: length 0x100000 = 0x80 0x80 0x40.
      {{0, Flag::kMessageInitiator, kOneMebibyte}, {0x02, 0x80, 0x80, 0x40}},
  };
  for (const auto& vector : vectors) {
    Bytes out;
    append_header(out, vector.header);
    EXPECT_EQ(out, vector.encoded) << describe(vector.header);
    auto decoded = decode_header(vector.encoded, kOneMebibyte);
    ASSERT_TRUE(decoded) << decoded.error().message;
    ASSERT_TRUE(decoded->has_value()) << describe(vector.header);
    EXPECT_EQ((*decoded)->header, vector.header);
    EXPECT_EQ((*decoded)->size, vector.encoded.size());
  }
}

TEST(MplexFrame, FlagsFollowWhoOpenedTheStream) {
  EXPECT_EQ(message_flag(true), Flag::kMessageInitiator);
  EXPECT_EQ(message_flag(false), Flag::kMessageReceiver);
  EXPECT_EQ(close_flag(true), Flag::kCloseInitiator);
  EXPECT_EQ(close_flag(false), Flag::kCloseReceiver);
  EXPECT_EQ(reset_flag(true), Flag::kResetInitiator);
  EXPECT_EQ(reset_flag(false), Flag::kResetReceiver);
  EXPECT_TRUE(sent_by_initiator(Flag::kNewStream));
  EXPECT_FALSE(sent_by_initiator(Flag::kResetReceiver));
}

TEST(MplexFrame, IncompleteHeadersAskForMoreAtEveryLength) {
  Bytes encoded;
  append_header(encoded, FrameHeader{1234567, Flag::kMessageReceiver, 70000});
  for (std::size_t length = 0; length < encoded.size(); ++length) {
    auto decoded = decode_header(ByteView(encoded.data(), length), kOneMebibyte);
    ASSERT_TRUE(decoded) << "prefix of " << length << ": " << decoded.error().message;
    EXPECT_FALSE(decoded->has_value()) << "prefix of " << length;
  }
}

TEST(MplexFrame, DecodingLeavesFollowingBytesAlone) {
  const Bytes encoded = {0x0a, 0x03, 'a', 'b', 'c'};
  auto decoded = decode_header(encoded, kOneMebibyte);
  ASSERT_TRUE(decoded && decoded->has_value());
  EXPECT_EQ((*decoded)->size, 2u);
}

TEST(MplexFrame, AcceptsNonMinimalVarintsAsGoAndJsDo) {
  // Tag 10 padded to two bytes, length 5 padded to three.
  const Bytes encoded = {0x8a, 0x00, 0x85, 0x80, 0x00};
  auto decoded = decode_header(encoded, kOneMebibyte);
  ASSERT_TRUE(decoded && decoded->has_value());
  EXPECT_EQ((*decoded)->header, (FrameHeader{1, Flag::kMessageInitiator, 5}));
}

TEST(MplexFrame, RejectsAnUnknownFlag) {
  auto decoded = decode_header(Bytes{0x0f, 0x00}, kOneMebibyte);  // stream 1, flag 7
  ASSERT_FALSE(decoded);
  EXPECT_NE(decoded.error().message.find("unknown flag 7"), std::string::npos)
      << decoded.error().message;
}

TEST(MplexFrame, RejectsVarintsLongerThanNineBytes) {
  const Bytes long_tag = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00};
  auto tag = decode_header(long_tag, kOneMebibyte);
  ASSERT_FALSE(tag);
  EXPECT_NE(tag.error().message.find("longer than 9 bytes"), std::string::npos);

  const Bytes long_length = {0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
  auto length = decode_header(long_length, kOneMebibyte);
  ASSERT_FALSE(length);
  EXPECT_NE(length.error().message.find("longer than 9 bytes"), std::string::npos);
}

TEST(MplexFrame, RejectsALengthAboveTheMaximum) {
  Bytes encoded;
  append_header(encoded, FrameHeader{0, Flag::kMessageInitiator, kOneMebibyte + 1});
  auto decoded = decode_header(encoded, kOneMebibyte);
  ASSERT_FALSE(decoded);
  EXPECT_NE(decoded.error().message.find("maximum message size"), std::string::npos)
      << decoded.error().message;
  // Exactly the maximum is fine.
  encoded.clear();
  append_header(encoded, FrameHeader{0, Flag::kMessageInitiator, kOneMebibyte});
  EXPECT_TRUE(decode_header(encoded, kOneMebibyte));
}

}  // namespace
}  // namespace an::p2p::mplex
