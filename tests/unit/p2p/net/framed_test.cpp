#include "p2p/net/framed.h"

#include <gtest/gtest.h>

#include <deque>

#include "unit/p2p/net/net_test_support.h"

namespace an::p2p::net {
namespace {

using test::run_coroutine;

// A stream whose reads return the scripted chunks, in order (each split further when the
// reader's buffer is smaller), then EOF; writes are recorded.
class ScriptedStream final : public ByteStream {
 public:
  std::deque<Bytes> chunks;
  Bytes written;
  std::size_t reads = 0;

  asio::awaitable<Expected<void>> write_all(ByteView bytes) override {
    written.insert(written.end(), bytes.begin(), bytes.end());
    co_return Expected<void>{};
  }
  asio::awaitable<Expected<void>> close_write() override { co_return Expected<void>{}; }
  void abort() override {}

 protected:
  asio::awaitable<Expected<std::size_t>> read_some_from_source(
      std::span<std::uint8_t> buffer) override {
    ++reads;
    if (chunks.empty()) co_return std::size_t{0};
    auto& front = chunks.front();
    std::size_t count = std::min(buffer.size(), front.size());
    std::copy_n(front.begin(), count, buffer.begin());
    front.erase(front.begin(), front.begin() + static_cast<long>(count));
    if (front.empty()) chunks.pop_front();
    co_return count;
  }
};

Bytes framed(ByteView message) {
  Bytes out = encode_varint(message.size());
  out.insert(out.end(), message.begin(), message.end());
  return out;
}

Expected<std::optional<Bytes>> read_one(asio::io_context& io, ScriptedStream& stream,
                                        std::size_t max_size) {
  auto result = run_coroutine(io, [&]() { return read_framed(stream, max_size); });
  EXPECT_TRUE(result.has_value());
  return result ? std::move(*result) : fail("did not finish");
}

TEST(FramedTest, WritesTheLengthThenTheMessage) {
  asio::io_context io;
  ScriptedStream stream;
  Bytes message(300, 0x5a);
  auto written = run_coroutine(io, [&]() { return write_framed(stream, message); });
  ASSERT_TRUE(written && *written);
  ASSERT_EQ(stream.written.size(), 302u);
  EXPECT_EQ(stream.written[0], 0xac);  // 300 = 0b10_0101100 -> ac 02
  EXPECT_EQ(stream.written[1], 0x02);
}

TEST(FramedTest, ReadsBackToBackMessagesFromOneChunkAndKeepsTheRest) {
  asio::io_context io;
  ScriptedStream stream;
  Bytes first = test::text_bytes("first");
  Bytes second(200, 0x01);
  Bytes chunk = framed(first);
  auto more = framed(second);
  chunk.insert(chunk.end(), more.begin(), more.end());
  chunk.push_back(0x42);  // the start of something else
  stream.chunks.push_back(chunk);
  auto one = read_one(io, stream, 1024);
  ASSERT_TRUE(one && *one);
  EXPECT_EQ(**one, first);
  auto two = read_one(io, stream, 1024);
  ASSERT_TRUE(two && *two);
  EXPECT_EQ(**two, second);
  EXPECT_EQ(stream.take_unread(), Bytes{0x42});
}

TEST(FramedTest, ReadsAMessageDeliveredOneByteAtATime) {
  asio::io_context io;
  ScriptedStream stream;
  Bytes message = test::patterned_bytes(1000);
  for (auto byte : framed(message))
    stream.chunks.push_back(Bytes{byte});
  auto read = read_one(io, stream, 4096);
  ASSERT_TRUE(read && *read);
  EXPECT_EQ(**read, message);
}

TEST(FramedTest, AnEmptyMessageIsAMessage) {
  asio::io_context io;
  ScriptedStream stream;
  stream.chunks.push_back(Bytes{0x00});
  auto read = read_one(io, stream, 16);
  ASSERT_TRUE(read && *read);
  EXPECT_TRUE((*read)->empty());
}

TEST(FramedTest, CleanEndBeforeAMessageIsNotAnError) {
  asio::io_context io;
  ScriptedStream stream;
  auto read = read_one(io, stream, 16);
  ASSERT_TRUE(read);
  EXPECT_FALSE(read->has_value());
}

TEST(FramedTest, AnOversizedLengthIsRefusedBeforeItsBodyIsRead) {
  asio::io_context io;
  ScriptedStream stream;
  stream.chunks.push_back(encode_varint(std::uint64_t{1} << 40));
  stream.chunks.push_back(Bytes(64, 0));
  auto read = read_one(io, stream, 4 * 1024 * 1024);
  ASSERT_FALSE(read);
  EXPECT_NE(read.error().message.find("over the limit"), std::string::npos);
  EXPECT_EQ(stream.chunks.size(), 1u);  // the body was never read
}

TEST(FramedTest, MalformedOrTruncatedInputIsAnError) {
  {
    asio::io_context io;
    ScriptedStream stream;
    stream.chunks.push_back(Bytes(12, 0x80));  // a length that never ends
    EXPECT_FALSE(read_one(io, stream, 1024));
  }
  {
    asio::io_context io;
    ScriptedStream stream;
    stream.chunks.push_back(Bytes{0x81, 0x00});  // non-minimal length
    EXPECT_FALSE(read_one(io, stream, 1024));
  }
  {
    asio::io_context io;
    ScriptedStream stream;
    stream.chunks.push_back(Bytes{0x85});  // EOF inside the length
    EXPECT_FALSE(read_one(io, stream, 1024));
  }
  {
    asio::io_context io;
    ScriptedStream stream;
    stream.chunks.push_back(Bytes{0x05, 1, 2});  // EOF inside the body
    auto read = read_one(io, stream, 1024);
    ASSERT_FALSE(read);
    EXPECT_NE(read.error().message.find("inside a message"), std::string::npos);
  }
}

}  // namespace
}  // namespace an::p2p::net
