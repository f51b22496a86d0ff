// Messenger end to end over 127.0.0.1: host A sends and requests, host B serves with a sink the
// test controls; raw streams play a hostile or Go-like peer. Every wait is bounded.
#include "p2p/daan/io/messenger.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "p2p/daan/frame.h"
#include "p2p/rcmgr/limits.h"
#include "unit/p2p/net/net_test_support.h"

namespace an::p2p::net::test {
namespace {

using daan::Frame;
using daan::FrameType;
using daan::Messenger;
using daan::MessengerLimits;
using daan::RequestAnswer;

// A sink that stores messages, refuses them on demand, and answers requests with an echo, the
// "no handler" error, or not until released.
class TestSink : public daan::MessageSink {
 public:
  explicit TestSink(asio::io_context& io) : release_(io.get_executor()) {}

  asio::awaitable<Expected<void>> deliver_message(const PeerId& from, Bytes payload) override {
    if (refuse_messages) co_return fail("inbox full");
    messages.emplace_back(from, std::move(payload));
    co_return Expected<void>{};
  }

  asio::awaitable<RequestAnswer> handle_request(const PeerId& from, Bytes payload) override {
    requesters.push_back(from);
    ++requests_in_handler;
    while (hold_requests)
      co_await release_.wait();
    --requests_in_handler;
    if (no_handler) co_return RequestAnswer{true, text_bytes("no handler registered")};
    Bytes answer = text_bytes("echo:");
    answer.insert(answer.end(), payload.begin(), payload.end());
    co_return RequestAnswer{false, std::move(answer)};
  }

  void release() {
    hold_requests = false;
    release_.notify();
  }

  bool refuse_messages = false;
  bool no_handler = false;
  bool hold_requests = false;
  int requests_in_handler = 0;
  std::vector<std::pair<PeerId, Bytes>> messages;
  std::vector<PeerId> requesters;

 private:
  Signal release_;
};

// go-libp2p's default limits for a machine of 1 GiB of memory budget, as a node runs with.
rcmgr::LimitConfig default_limits() {
  return rcmgr::scaled_default_limits(std::int64_t{1} << 30, 1024);
}

class DaanMessengerTest : public ::testing::Test {
 protected:
  explicit DaanMessengerTest(MessengerLimits server_limits = {},
                             rcmgr::LimitConfig server_resources = default_limits())
      : server(io, "daan-server", std::move(server_resources)),
        client(io, "daan-client", default_limits()),
        server_sink(io),
        client_sink(io),
        server_messenger(server.host(), server_limits, server_sink),
        client_messenger(client.host(), MessengerLimits{}, client_sink) {
    server_messenger.set_log([this](std::string_view line) { log.emplace_back(line); });
    server_messenger.start();
    client_messenger.start();
    auto connection =
        run_coroutine(io, [&]() -> asio::awaitable<Expected<std::shared_ptr<Connection>>> {
          co_return co_await client.host().connect(server.dial_address());
        });
    EXPECT_TRUE(connection && *connection) << (connection ? connection->error().message : "");
  }

  Expected<void> send(Bytes payload, std::chrono::milliseconds within = std::chrono::seconds(10)) {
    auto sent = run_coroutine(io, [&]() -> asio::awaitable<Expected<void>> {
      co_return co_await client_messenger.send(server.id(), std::move(payload),
                                               daan::Clock::now() + within);
    });
    if (!sent) return fail("send did not finish");
    return *sent;
  }

  Expected<RequestAnswer> request(Bytes payload,
                                  std::chrono::milliseconds within = std::chrono::seconds(10)) {
    auto answered = run_coroutine(io, [&]() -> asio::awaitable<Expected<RequestAnswer>> {
      co_return co_await client_messenger.request(server.id(), std::move(payload),
                                                  daan::Clock::now() + within);
    });
    if (!answered) return fail("request did not finish");
    return *answered;
  }

  std::shared_ptr<Stream> open_raw(std::string_view protocol) {
    auto stream = run_coroutine(io, [&]() -> asio::awaitable<Expected<std::shared_ptr<Stream>>> {
      std::vector<std::string> protocols(1, std::string(protocol));
      co_return co_await client.host().new_stream(server.id(), std::move(protocols));
    });
    EXPECT_TRUE(stream && *stream) << (stream ? stream->error().message : "");
    if (!stream || !*stream) return nullptr;
    return **stream;
  }

  // Writes `bytes` on a fresh raw stream, half-closes, and returns what reading to the end gives:
  // the answer, or the error of a reset.
  Expected<Bytes> exchange_raw(std::string_view protocol, const Bytes& bytes) {
    auto stream = open_raw(protocol);
    if (!stream) return fail("no stream");
    auto received = run_coroutine(io, [&]() -> asio::awaitable<Expected<Bytes>> {
      (void)co_await write_and_close(*stream, bytes);
      co_return co_await read_until_eof(*stream);
    });
    if (!received) return fail("raw exchange did not finish");
    return *received;
  }

  bool logged(std::string_view part) const {
    for (const auto& line : log)
      if (contains(line, part)) return true;
    return false;
  }

  asio::io_context io;
  TestPeer server;
  TestPeer client;
  TestSink server_sink;
  TestSink client_sink;
  Messenger server_messenger;
  Messenger client_messenger;
  std::vector<std::string> log;
};

TEST_F(DaanMessengerTest, SendIsDeliveredToTheSink) {
  ASSERT_TRUE(send(text_bytes("hello, agent")).has_value());
  ASSERT_EQ(server_sink.messages.size(), 1u);
  EXPECT_EQ(server_sink.messages[0].first, client.id());
  EXPECT_EQ(server_sink.messages[0].second, text_bytes("hello, agent"));
  // An empty message travels as "payload":null.
  ASSERT_TRUE(send(Bytes{}).has_value());
  ASSERT_EQ(server_sink.messages.size(), 2u);
  EXPECT_TRUE(server_sink.messages[1].second.empty());
  EXPECT_EQ(server_messenger.stats().messages_received, 2u);
  EXPECT_EQ(server_messenger.stats().refused, 0u);
  EXPECT_EQ(server_messenger.active_streams(), 0u);
  EXPECT_EQ(server_messenger.held_bytes(), 0u);
}

TEST_F(DaanMessengerTest, RequestIsAnswered) {
  auto answer = request(text_bytes("ping"));
  ASSERT_TRUE(answer) << answer.error().message;
  EXPECT_FALSE(answer->error);
  EXPECT_EQ(answer->payload, text_bytes("echo:ping"));
  auto second = request(text_bytes("again"));
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(second->payload, text_bytes("echo:again"));
  EXPECT_EQ(server_messenger.stats().requests_received, 2u);
  ASSERT_EQ(server_sink.requesters.size(), 2u);
  EXPECT_EQ(server_sink.requesters[0], client.id());
}

TEST_F(DaanMessengerTest, AnswerCarriesTheRequestIdAsGoWritesIt) {
  // A Go requester's frame, byte for byte: the answer is a type-3 frame with the same ID, and
  // the server closes the stream after it.
  const Bytes go_request = daan::encode_frame(Frame{FrameType::kRequest, 42, text_bytes("hi")});
  auto received = exchange_raw(daan::kRequestProtocol, go_request);
  ASSERT_TRUE(received) << received.error().message;
  ASSERT_GE(received->size(), 4u);
  auto length = daan::decode_frame_length(ByteView(*received).first(4));
  ASSERT_TRUE(length);
  ASSERT_EQ(received->size(), 4 + *length);
  EXPECT_EQ(std::string(received->begin() + 4, received->end()),
            R"({"type":3,"request_id":42,"payload":"ZWNobzpoaQ=="})");
}

TEST_F(DaanMessengerTest, SinkRefusalResetsTheSendersStream) {
  server_sink.refuse_messages = true;
  auto sent = send(text_bytes("into a full inbox"));
  ASSERT_FALSE(sent.has_value());
  EXPECT_TRUE(contains(sent.error().message, "refused by peer")) << sent.error().message;
  EXPECT_EQ(server_messenger.stats().refused, 1u);
  EXPECT_TRUE(logged("inbox full"));
  // The next one, once there is room, is stored.
  server_sink.refuse_messages = false;
  EXPECT_TRUE(send(text_bytes("later")).has_value());
  EXPECT_EQ(server_sink.messages.size(), 1u);
}

TEST_F(DaanMessengerTest, NoHandlerIsAnErrorAnswerNotAFailure) {
  server_sink.no_handler = true;
  auto answer = request(text_bytes("anyone?"));
  ASSERT_TRUE(answer) << answer.error().message;
  EXPECT_TRUE(answer->error);
  EXPECT_EQ(answer->payload, text_bytes("no handler registered"));
}

TEST_F(DaanMessengerTest, BadFramesAreResetLoggedAndCounted) {
  struct Case {
    std::string_view protocol;
    Bytes bytes;
    std::string_view logged;
  };
  auto with_length = [](std::string_view body) {
    Bytes framed{0, 0, 0, static_cast<std::uint8_t>(body.size())};
    framed.insert(framed.end(), body.begin(), body.end());
    return framed;
  };
  const Case cases[] = {
      // A length over the 16 MiB cap, refused before any body is read.
      {daan::kMessageProtocol, Bytes{0x01, 0x00, 0x00, 0x01, '{', '}'}, "over the limit"},
      {daan::kRequestProtocol, Bytes{0xff, 0xff, 0xff, 0xff}, "over the limit"},
      {daan::kMessageProtocol, Bytes{0, 0, 0, 0}, "empty frame"},
      // Truncated: the length, then less than it announces, then the end of the stream.
      {daan::kMessageProtocol, Bytes{0, 0, 0, 40, '{', '"'}, "truncated"},
      {daan::kMessageProtocol, Bytes{0, 0}, "truncated"},
      // Invalid JSON, wrong types, an unknown type, the wrong type for the protocol.
      {daan::kMessageProtocol, with_length("not json at all"), "invalid JSON"},
      {daan::kMessageProtocol, with_length(R"({"type":"1","payload":null})"), "type"},
      {daan::kMessageProtocol, with_length(R"({"type":1,"payload":"aGk"})"), "base64"},
      {daan::kRequestProtocol, with_length(R"({"type":2,"request_id":-1})"), "request_id"},
      {daan::kMessageProtocol, with_length(R"({"type":9,"payload":null})"), "unknown frame type"},
      {daan::kMessageProtocol, with_length(R"({"type":2,"request_id":1})"), "where 1 belongs"},
      {daan::kRequestProtocol, with_length(R"({"type":1,"payload":null})"), "where 2 belongs"},
  };
  std::uint64_t expected_bad = 0;
  for (const auto& bad : cases) {
    log.clear();
    auto received = exchange_raw(bad.protocol, bad.bytes);
    EXPECT_FALSE(received.has_value()) << "not reset: " << to_hex(bad.bytes);
    EXPECT_EQ(server_messenger.stats().bad_frames, ++expected_bad) << to_hex(bad.bytes);
    EXPECT_TRUE(logged(bad.logged))
        << to_hex(bad.bytes) << " logged " << (log.empty() ? std::string("nothing") : log.front());
    EXPECT_TRUE(logged(client.id().to_string()));
  }
  EXPECT_TRUE(server_sink.messages.empty());
  // The node keeps serving.
  EXPECT_TRUE(send(text_bytes("still there?")).has_value());
  EXPECT_EQ(server_sink.messages.size(), 1u);
  EXPECT_EQ(server_messenger.active_streams(), 0u);
  EXPECT_EQ(server_messenger.held_bytes(), 0u);
}

TEST_F(DaanMessengerTest, LargestFrameTravelsBothWays) {
  // The largest payload whose frame fits 16 MiB (base64 makes it about 12 MiB), under the
  // resource manager's default limits.
  const Bytes payload = patterned_bytes(daan::kMaxPayloadSize, 5);
  ASSERT_TRUE(send(payload).has_value());
  ASSERT_EQ(server_sink.messages.size(), 1u);
  EXPECT_EQ(server_sink.messages[0].second, payload);

  const Bytes request_payload = patterned_bytes(daan::kMaxPayloadSize - 8, 6);
  auto answer = request(request_payload);
  ASSERT_TRUE(answer) << answer.error().message;
  ASSERT_EQ(answer->payload.size(), request_payload.size() + 5);
  EXPECT_TRUE(
      std::equal(request_payload.begin(), request_payload.end(), answer->payload.begin() + 5));
  EXPECT_EQ(server_messenger.held_bytes(), 0u);

  // A payload whose frame is over 16 MiB is refused before anything is sent.
  auto too_large = send(Bytes(daan::kMaxFrameSize / 4 * 3, 0x41));
  ASSERT_FALSE(too_large.has_value());
  EXPECT_TRUE(contains(too_large.error().message, "over the limit"));
}

TEST_F(DaanMessengerTest, RequestTimeoutIsHonoured) {
  server_sink.hold_requests = true;
  const auto start = std::chrono::steady_clock::now();
  auto answer = request(text_bytes("slow"), std::chrono::milliseconds(300));
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(answer.has_value());
  EXPECT_TRUE(contains(answer.error().message, "timed out")) << answer.error().message;
  EXPECT_GE(took, std::chrono::milliseconds(250));
  EXPECT_LT(took, std::chrono::seconds(5));
  // A deadline already passed fails at once.
  auto late = request(text_bytes("late"), std::chrono::milliseconds(-1));
  ASSERT_FALSE(late.has_value());
  EXPECT_TRUE(contains(late.error().message, "deadline"));
  server_sink.release();
  EXPECT_TRUE(run_until(io, [&] { return server_messenger.active_streams() == 0; }));
}

class DaanMessengerCapsTest : public DaanMessengerTest {
 protected:
  DaanMessengerCapsTest() : DaanMessengerTest(MessengerLimits{2, 256, 4096, 1 << 20}) {}
};

TEST_F(DaanMessengerCapsTest, PerPeerStreamCapRefusesTheExtraStream) {
  server_sink.hold_requests = true;
  auto results = std::make_shared<std::vector<Expected<RequestAnswer>>>();
  for (int i = 0; i < 2; ++i) {
    asio::co_spawn(
        io,
        [this, results, i]() -> asio::awaitable<void> {
          results->push_back(co_await client_messenger.request(
              server.id(), text_bytes("held " + std::to_string(i)),
              daan::Clock::now() + std::chrono::seconds(15)));
        },
        asio::detached);
  }
  ASSERT_TRUE(run_until(io, [&] { return server_sink.requests_in_handler == 2; }));
  EXPECT_EQ(server_messenger.active_streams(), 2u);

  auto extra = request(text_bytes("one too many"));
  ASSERT_FALSE(extra.has_value());
  EXPECT_EQ(server_messenger.stats().refused, 1u);
  EXPECT_TRUE(logged("too many streams"));
  auto extra_message = send(text_bytes("also too many"));
  ASSERT_FALSE(extra_message.has_value());
  EXPECT_TRUE(contains(extra_message.error().message, "refused by peer"));
  EXPECT_EQ(server_messenger.stats().refused, 2u);

  server_sink.release();
  ASSERT_TRUE(run_until(io, [&] { return results->size() == 2; }));
  for (const auto& result : *results)
    EXPECT_TRUE(result.has_value()) << result.error().message;
  EXPECT_TRUE(run_until(io, [&] { return server_messenger.active_streams() == 0; }));
  EXPECT_TRUE(send(text_bytes("room again")).has_value());
}

TEST_F(DaanMessengerCapsTest, ByteBudgetRefusesAFrameBeforeReadingIt) {
  // 4096 bytes per peer: a frame announcing more is refused on its length.
  auto sent = send(Bytes(4000, 0x42));
  ASSERT_FALSE(sent.has_value());
  EXPECT_TRUE(contains(sent.error().message, "refused by peer")) << sent.error().message;
  EXPECT_EQ(server_messenger.stats().refused, 1u);
  EXPECT_TRUE(logged("byte budget"));
  EXPECT_EQ(server_messenger.held_bytes(), 0u);
  EXPECT_TRUE(send(Bytes(1000, 0x42)).has_value());
}

// The resource manager has the last word: with /daan/message/1.0.0's memory set low (as
// `-limit protocol:/daan/message/1.0.0.memory=64KiB` does), a larger frame is reset as it
// arrives, while the messenger's own budget would have taken it.
rcmgr::LimitConfig low_message_memory() {
  rcmgr::LimitConfig limits = default_limits();
  EXPECT_TRUE(rcmgr::apply_limit_override(limits, "protocol:/daan/message/1.0.0.memory=64KiB"));
  return limits;
}

class DaanMessengerResourcesTest : public DaanMessengerTest {
 protected:
  DaanMessengerResourcesTest() : DaanMessengerTest(MessengerLimits{}, low_message_memory()) {}
};

TEST_F(DaanMessengerResourcesTest, ProtocolMemoryLimitResetsALargerFrame) {
  auto sent = send(patterned_bytes(1 << 20));
  ASSERT_FALSE(sent.has_value());
  EXPECT_TRUE(contains(sent.error().message, "refused by peer")) << sent.error().message;
  EXPECT_TRUE(server_sink.messages.empty());
  EXPECT_TRUE(run_until(io, [&] { return server_messenger.active_streams() == 0; }));
  EXPECT_EQ(server_messenger.held_bytes(), 0u);
  // Small messages still fit, and requests are another protocol.
  EXPECT_TRUE(send(text_bytes("small")).has_value());
  auto answer = request(patterned_bytes(1 << 20));
  ASSERT_TRUE(answer) << answer.error().message;
}

TEST_F(DaanMessengerTest, StalledSenderIsResetAfterTheMessageTimeout) {
  // A frame announced and never finished holds its budget for kMessageTimeout at most.
  auto stream = open_raw(daan::kMessageProtocol);
  ASSERT_TRUE(stream);
  const Bytes unfinished{0, 0, 0, 100, '{', '"'};
  const auto start = std::chrono::steady_clock::now();
  auto received = run_coroutine(io, [&]() -> asio::awaitable<Expected<Bytes>> {
    (void)co_await stream->write_all(unfinished);
    co_return co_await read_until_eof(*stream);
  });
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(received);
  EXPECT_FALSE(received->has_value());
  EXPECT_GE(took, daan::kMessageTimeout - std::chrono::milliseconds(100));
  EXPECT_LT(took, daan::kMessageTimeout + std::chrono::seconds(5));
  EXPECT_TRUE(logged("timed out"));
  EXPECT_EQ(server_messenger.held_bytes(), 0u);
  EXPECT_EQ(server_messenger.active_streams(), 0u);
}

TEST_F(DaanMessengerTest, StoppedMessengerResetsNewStreams) {
  server_messenger.stop();
  EXPECT_FALSE(send(text_bytes("anyone home?")).has_value());
  EXPECT_TRUE(server_sink.messages.empty());
}

}  // namespace
}  // namespace an::p2p::net::test
