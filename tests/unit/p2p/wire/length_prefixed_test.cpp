// Length-prefixed framing without I/O: every split of the input, refusals before the body, and
// which refusal a hostile prefix gets. Cases carried over from the decoders that kad and relay
// used to have, with their caps (4 MiB, 4 KiB).
#include "p2p/wire/length_prefixed.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "support/hex.h"

namespace an::p2p {
namespace {

using test::from_hex;

constexpr std::size_t kKadCap = 4 * 1024 * 1024;
constexpr std::size_t kRelayCap = 4096;
constexpr std::size_t kNoCap = std::numeric_limits<std::size_t>::max();

Bytes framed(const Bytes& message) {
  Bytes out = encode_varint(message.size());
  out.insert(out.end(), message.begin(), message.end());
  return out;
}

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& part : parts)
    out.insert(out.end(), part.begin(), part.end());
  return out;
}

// take_frame on a copy of `bytes`; checks that the buffer moves only with a message.
Expected<std::optional<ByteView>> take_from(const Bytes& bytes, std::size_t max_size) {
  ByteView view(bytes);
  auto taken = take_frame(view, max_size);
  if (!taken || !taken->has_value()) {
    EXPECT_EQ(view.size(), bytes.size());
  }
  return taken;
}

bool needs_more(const Expected<std::optional<ByteView>>& taken) {
  return taken.has_value() && !taken->has_value();
}

bool refused_as(const Expected<std::optional<ByteView>>& taken, std::errc kind) {
  return !taken.has_value() && taken.error().code == kind;
}

// Takes every whole message out of `stream`, as if it arrived one byte at a time: the bytes not
// yet taken are kept and the next byte appended before trying again.
Expected<std::vector<Bytes>> take_byte_by_byte(const Bytes& stream, std::size_t max_size) {
  std::vector<Bytes> messages;
  Bytes pending;
  for (std::uint8_t byte : stream) {
    pending.push_back(byte);
    ByteView rest(pending);
    for (;;) {
      auto taken = take_frame(rest, max_size);
      if (!taken) return tl::unexpected(taken.error());
      if (!taken->has_value()) break;
      messages.emplace_back((*taken)->begin(), (*taken)->end());
    }
    pending = Bytes(rest.begin(), rest.end());
  }
  return messages;
}

TEST(LengthPrefixedFrame, TakesBackToBackMessagesAndLeavesTheRest) {
  const Bytes first = from_hex("0800");
  const Bytes second(300, 0x5a);  // a two-byte prefix: ac 02
  const Bytes stream = cat({framed(first), framed({}), framed(second), from_hex("05")});
  ByteView rest(stream);
  auto one = take_frame(rest, kRelayCap);
  ASSERT_TRUE(one && *one);
  EXPECT_EQ(Bytes((*one)->begin(), (*one)->end()), first);
  auto empty = take_frame(rest, kRelayCap);  // an empty message is a message
  ASSERT_TRUE(empty && *empty);
  EXPECT_TRUE((*empty)->empty());
  auto two = take_frame(rest, kRelayCap);
  ASSERT_TRUE(two && *two);
  EXPECT_EQ(Bytes((*two)->begin(), (*two)->end()), second);
  EXPECT_TRUE(needs_more(take_frame(rest, kRelayCap)));  // the start of a fourth
  EXPECT_EQ(rest.size(), 1u);
}

TEST(LengthPrefixedFrame, EveryCutNeedsMoreBytes) {
  const Bytes stream = framed(Bytes(300, 0x01));
  for (std::size_t cut = 0; cut < stream.size(); ++cut) {
    const Bytes prefix(stream.begin(), stream.begin() + static_cast<std::ptrdiff_t>(cut));
    EXPECT_TRUE(needs_more(take_from(prefix, kRelayCap))) << "cut at " << cut;
  }
  EXPECT_TRUE(take_from(stream, kRelayCap).value().has_value());
}

TEST(LengthPrefixedFrame, ByteByByteGivesWhatOneBatchGives) {
  const Bytes stream = cat(
      {framed(Bytes(200, 0x07)), framed({}), framed(from_hex("0805")), framed(Bytes(20000, 0x09))});
  auto slow = take_byte_by_byte(stream, kKadCap);
  ASSERT_TRUE(slow) << slow.error().message;
  std::vector<Bytes> fast;
  ByteView rest(stream);
  for (;;) {
    auto taken = take_frame(rest, kKadCap);
    ASSERT_TRUE(taken) << taken.error().message;
    if (!*taken) break;
    fast.emplace_back((*taken)->begin(), (*taken)->end());
  }
  EXPECT_TRUE(rest.empty());
  ASSERT_EQ(fast.size(), 4u);
  EXPECT_EQ(*slow, fast);
  EXPECT_EQ(fast[3].size(), 20000u);
}

TEST(LengthPrefixedFrame, PartialBodyWaits) {
  const Bytes stream = from_hex(
      "00"
      "05"
      "0805");
  ByteView rest(stream);
  auto first = take_frame(rest, kKadCap);
  ASSERT_TRUE(first && *first);
  EXPECT_TRUE((*first)->empty());
  EXPECT_TRUE(needs_more(take_frame(rest, kKadCap)));  // 5 bytes announced, 2 received
  EXPECT_EQ(rest.size(), 3u);
}

TEST(LengthPrefixedFrame, OversizeIsRefusedBeforeTheBody) {
  EXPECT_TRUE(refused_as(take_from(encode_varint(kKadCap + 1), kKadCap), kFrameTooLarge));
  EXPECT_TRUE(needs_more(take_from(encode_varint(kKadCap), kKadCap)));
  EXPECT_TRUE(needs_more(take_from(from_hex("10"), 16)));
  EXPECT_TRUE(refused_as(take_from(from_hex("11"), 16), kFrameTooLarge));
  EXPECT_TRUE(refused_as(take_from(from_hex("05"), 4), kFrameTooLarge));
  // 4096 = 80 20 is the largest length under the relay's cap; 4097 = 81 20 is refused. A prefix
  // whose first two bytes both continue can only announce more: refused before its end.
  EXPECT_TRUE(needs_more(take_from(from_hex("8020"), kRelayCap)));
  for (const char* prefix : {"8120", "ffff03", "8080", "ffffffffffffffffff7f"}) {
    auto taken = take_from(from_hex(prefix), kRelayCap);
    EXPECT_TRUE(refused_as(taken, kFrameTooLarge)) << prefix;
    if (!taken) {
      EXPECT_NE(taken.error().message.find("limit of 4096"), std::string::npos);
    }
  }
}

TEST(LengthPrefixedFrame, OversizeSecondMessageIsRefused) {
  const Bytes stream = from_hex(
      "020805"
      "09");
  ByteView rest(stream);
  auto first = take_frame(rest, 8);
  ASSERT_TRUE(first && *first);
  EXPECT_TRUE(refused_as(take_frame(rest, 8), kFrameTooLarge));
  EXPECT_EQ(rest.size(), 1u);
}

TEST(LengthPrefixedFrame, MalformedPrefixes) {
  EXPECT_TRUE(refused_as(take_from(from_hex("8000"), kKadCap), kMalformedLength));  // non-minimal
  EXPECT_TRUE(refused_as(take_from(from_hex("8000"), kRelayCap), kMalformedLength));
  // Nine bytes with the continuation bit are more than any varint may have; under a cap they are
  // refused earlier, as too large.
  EXPECT_TRUE(refused_as(take_from(from_hex("ffffffffffffffffff"), kNoCap), kMalformedLength));
  EXPECT_TRUE(refused_as(take_from(from_hex("ffffffffffffffffff"), kKadCap), kFrameTooLarge));
  EXPECT_TRUE(refused_as(take_from(from_hex("ffffffffffffffff7f"), kKadCap), kFrameTooLarge));
  EXPECT_TRUE(needs_more(take_from(from_hex("8080"), kKadCap)));  // incomplete, not yet wrong
  EXPECT_TRUE(needs_more(take_from(from_hex("ffffffffffffffff"), kNoCap)));
}

TEST(LengthPrefixedFrame, TheRefusalDoesNotDependOnTheSplit) {
  // Non-minimal and too long for the cap: too large, whether its end has arrived or not.
  const Bytes hostile = from_hex("8080808000");
  for (std::size_t cut = 2; cut <= hostile.size(); ++cut) {
    const Bytes prefix(hostile.begin(), hostile.begin() + static_cast<std::ptrdiff_t>(cut));
    EXPECT_TRUE(refused_as(take_from(prefix, 1024), kFrameTooLarge)) << "cut at " << cut;
  }
  auto split = take_byte_by_byte(hostile, 1024);
  ASSERT_FALSE(split);
  EXPECT_EQ(split.error().code, std::make_error_code(kFrameTooLarge));
}

TEST(LengthPrefixedFrame, ReadLengthPrefix) {
  auto complete = read_length_prefix(from_hex("ac02ffff"));  // 300, then body bytes
  ASSERT_TRUE(complete && *complete);
  EXPECT_EQ((*complete)->size, 2u);
  EXPECT_EQ((*complete)->length, 300u);
  auto largest = read_length_prefix(encode_varint(kMaxVarintValue));  // not bounded here
  ASSERT_TRUE(largest && *largest);
  EXPECT_EQ((*largest)->length, kMaxVarintValue);
  for (std::size_t size = 0; size < kMaxVarintLength; ++size) {
    auto incomplete = read_length_prefix(Bytes(size, 0x80));
    ASSERT_TRUE(incomplete) << size;
    EXPECT_FALSE(incomplete->has_value()) << size;
  }
  for (const char* prefix : {"808080808080808080", "8000", "ff00"}) {
    auto malformed = read_length_prefix(from_hex(prefix));
    ASSERT_FALSE(malformed) << prefix;
    EXPECT_EQ(malformed.error().code, std::make_error_code(kMalformedLength)) << prefix;
  }
}

}  // namespace
}  // namespace an::p2p
