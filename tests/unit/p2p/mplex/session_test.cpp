// Mplex session state machine: two sessions wired back to back in memory, frame sequences
// (open, data both ways, half-close, reset, many streams, input split at every byte), and
// hostile frames (oversized, unknown flag, varint overflow, unknown streams, reused IDs,
// stream floods, data beyond the unconsumed cap).
#include "p2p/mplex/session.h"
#include "fuzz/harness/harness.h"

#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <string>
#include <vector>

namespace an::p2p::mplex {
namespace {

using namespace std::chrono_literals;
using Kind = Event::Kind;

Session make_session(const Config& config = Config{}) {
  auto session = Session::create(config);
  EXPECT_TRUE(session) << session.error().message;
  return std::move(*session);
}

Bytes frame(std::uint64_t id, Flag flag, const Bytes& payload = {}) {
  Bytes out;
  append_header(out, FrameHeader{id, flag, payload.size()});
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

Bytes text(const std::string& value) {
  return Bytes(value.begin(), value.end());
}

Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& part : parts)
    out.insert(out.end(), part.begin(), part.end());
  return out;
}

std::vector<Event> drain(Session& session) {
  std::vector<Event> events;
  Event event;
  while (session.poll_event(event))
    events.push_back(std::move(event));
  return events;
}

struct ParsedFrame {
  FrameHeader header;
  Bytes payload;
};

std::vector<ParsedFrame> output_frames(Session& session) {
  Bytes out;
  session.take_output(out);
  std::vector<ParsedFrame> frames;
  ByteView rest(out);
  while (!rest.empty()) {
    auto decoded = decode_header(rest, kMaxVarintValue);
    EXPECT_TRUE(decoded && decoded->has_value());
    if (!decoded || !decoded->has_value()) break;
    const auto& header = (*decoded)->header;
    rest = rest.subspan((*decoded)->size);
    EXPECT_LE(header.length, rest.size());
    const auto length = static_cast<std::size_t>(header.length);
    frames.push_back(ParsedFrame{header, Bytes(rest.begin(), rest.begin() + length)});
    rest = rest.subspan(length);
  }
  return frames;
}

// Collects the data events of one stream into one buffer.
Bytes data_of(const std::vector<Event>& events, std::uint32_t id) {
  Bytes out;
  for (const auto& event : events) {
    if (event.kind == Kind::kData && event.stream_id == id) {
      out.insert(out.end(), event.data.begin(), event.data.end());
    }
  }
  return out;
}

bool has_event(const std::vector<Event>& events, Kind kind, std::uint32_t id) {
  for (const auto& event : events) {
    if (event.kind == kind && event.stream_id == id) return true;
  }
  return false;
}

class MplexSessionTest : public ::testing::Test {
 protected:
  // Moves each side's output to the other until both are quiet.
  void pump() {
    for (int round = 0; round < 100; ++round) {
      if (!dialer.has_output() && !listener.has_output()) return;
      Bytes out;
      dialer.take_output(out);
      if (!out.empty()) {
        ASSERT_TRUE(listener.receive(out, now)) << "listener failed";
      }
      out.clear();
      listener.take_output(out);
      if (!out.empty()) {
        ASSERT_TRUE(dialer.receive(out, now)) << "dialer failed";
      }
    }
  }

  Clock::time_point now = Clock::time_point{} + 1h;
  Session dialer = make_session();
  Session listener = make_session();
};

TEST_F(MplexSessionTest, OpenSendsNewStreamWithTheIdAsNameAndMessagesCarryTheInitiatorFlag) {
  auto id = dialer.open_stream();
  ASSERT_TRUE(id);
  ASSERT_TRUE(dialer.write(*id, text("hello")));
  auto frames = output_frames(dialer);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].header, (FrameHeader{0, Flag::kNewStream, 1}));
  EXPECT_EQ(frames[0].payload, text("0"));
  EXPECT_EQ(frames[1].header, (FrameHeader{0, Flag::kMessageInitiator, 5}));
  EXPECT_EQ(frames[1].payload, text("hello"));
  // Raw bytes: tag 0 length 1 "0", then tag 2 length 5 "hello".
  ASSERT_TRUE(dialer.write(*id, text("!")));
  Bytes raw;
  dialer.take_output(raw);
  EXPECT_EQ(raw, (Bytes{0x02, 0x01, '!'}));
}

TEST_F(MplexSessionTest, DataFlowsBothWaysOnOneStream) {
  auto id = dialer.open_stream();
  ASSERT_TRUE(id);
  ASSERT_TRUE(dialer.write(*id, text("ping?")));
  pump();
  auto events = drain(listener);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, Kind::kInboundStream);
  const std::uint32_t inbound = events[0].stream_id;
  EXPECT_EQ(wire_stream_id(inbound), 0u);
  EXPECT_FALSE(opened_locally(inbound));
  EXPECT_EQ(data_of(events, inbound), text("ping?"));
  ASSERT_TRUE(listener.accept(inbound));
  ASSERT_TRUE(listener.consumed(inbound, 5));

  ASSERT_TRUE(listener.write(inbound, text("pong!")));
  auto frames = output_frames(listener);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].header.flag, Flag::kMessageReceiver);
  ASSERT_TRUE(dialer.receive(concat({frame(0, Flag::kMessageReceiver, text("pong!"))}), now));
  auto replies = drain(dialer);
  EXPECT_EQ(data_of(replies, *id), text("pong!"));
}

TEST_F(MplexSessionTest, EachSideNumbersItsOwnStreamsFromZero) {
  auto ours = dialer.open_stream();
  auto theirs = listener.open_stream();
  ASSERT_TRUE(ours && theirs);
  ASSERT_TRUE(dialer.write(*ours, text("from dialer")));
  ASSERT_TRUE(listener.write(*theirs, text("from listener")));
  pump();
  auto at_listener = drain(listener);
  auto at_dialer = drain(dialer);
  // Both are wire ID 0, yet different streams.
  const std::uint32_t dialers_at_listener = stream_handle(0, false);
  const std::uint32_t listeners_at_dialer = stream_handle(0, false);
  EXPECT_EQ(data_of(at_listener, dialers_at_listener), text("from dialer"));
  EXPECT_EQ(data_of(at_dialer, listeners_at_dialer), text("from listener"));
  EXPECT_EQ(dialer.stream_count(), 2u);
  EXPECT_EQ(listener.stream_count(), 2u);
}

TEST_F(MplexSessionTest, CloseIsAHalfClose) {
  auto id = dialer.open_stream();
  ASSERT_TRUE(id);
  ASSERT_TRUE(dialer.write(*id, text("request")));
  ASSERT_TRUE(dialer.close_write(*id));
  ASSERT_TRUE(dialer.close_write(*id));  // idempotent
  EXPECT_FALSE(dialer.write(*id, text("more")));
  EXPECT_EQ(dialer.send_window(*id), 0u);
  pump();
  auto events = drain(listener);
  const std::uint32_t inbound = stream_handle(0, false);
  EXPECT_EQ(data_of(events, inbound), text("request"));
  EXPECT_TRUE(has_event(events, Kind::kRemoteClosed, inbound));

  // The other direction still works.
  ASSERT_TRUE(listener.write(inbound, text("response")));
  ASSERT_TRUE(listener.close_write(inbound));
  EXPECT_EQ(listener.stream_count(), 0u);  // closed both ways
  pump();
  auto replies = drain(dialer);
  EXPECT_EQ(data_of(replies, *id), text("response"));
  EXPECT_TRUE(has_event(replies, Kind::kRemoteClosed, *id));
  EXPECT_EQ(dialer.stream_count(), 0u);
}

TEST_F(MplexSessionTest, ResetEndsTheStreamOnBothSidesWhoeverSendsIt) {
  auto first = dialer.open_stream();
  auto second = dialer.open_stream();
  ASSERT_TRUE(first && second);
  pump();
  (void)drain(listener);

  dialer.reset(*first);  // by the initiator
  auto frames = output_frames(dialer);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].header, (FrameHeader{0, Flag::kResetInitiator, 0}));
  ASSERT_TRUE(listener.receive(frame(0, Flag::kResetInitiator), now));
  EXPECT_TRUE(has_event(drain(listener), Kind::kReset, stream_handle(0, false)));
  EXPECT_FALSE(listener.write(stream_handle(0, false), text("late")));

  listener.reset(stream_handle(1, false));  // by the receiver
  frames = output_frames(listener);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].header, (FrameHeader{1, Flag::kResetReceiver, 0}));
  ASSERT_TRUE(dialer.receive(frame(1, Flag::kResetReceiver), now));
  EXPECT_TRUE(has_event(drain(dialer), Kind::kReset, *second));
  EXPECT_EQ(dialer.stream_count(), 0u);
  EXPECT_EQ(listener.stream_count(), 0u);
}

TEST_F(MplexSessionTest, DataDeliveredBeforeAResetStaysReadable) {
  const Bytes input =
      concat({frame(0, Flag::kNewStream), frame(0, Flag::kMessageInitiator, text("last words")),
              frame(0, Flag::kResetInitiator)});
  ASSERT_TRUE(listener.receive(input, now));
  auto events = drain(listener);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[1].data, text("last words"));
  EXPECT_EQ(events[2].kind, Kind::kReset);
}

TEST_F(MplexSessionTest, FiveHundredStreamsEachWayKeepTheirData) {
  std::vector<std::uint32_t> ours;
  std::vector<std::uint32_t> theirs;
  for (int i = 0; i < 500; ++i) {
    auto a = dialer.open_stream();
    auto b = listener.open_stream();
    ASSERT_TRUE(a && b);
    ASSERT_TRUE(dialer.write(*a, text("dialer " + std::to_string(i))));
    ASSERT_TRUE(listener.write(*b, text("listener " + std::to_string(i))));
    ours.push_back(*a);
    theirs.push_back(*b);
  }
  pump();
  auto at_listener = drain(listener);
  auto at_dialer = drain(dialer);
  for (int i = 0; i < 500; ++i) {
    EXPECT_EQ(data_of(at_listener, stream_handle(wire_stream_id(ours[i]), false)),
              text("dialer " + std::to_string(i)));
    EXPECT_EQ(data_of(at_dialer, stream_handle(wire_stream_id(theirs[i]), false)),
              text("listener " + std::to_string(i)));
  }
  EXPECT_EQ(dialer.stream_count(), 1000u);
}

TEST_F(MplexSessionTest, InputSplitAtEveryByteBoundaryGivesTheSameEvents) {
  Bytes payload(300);
  for (std::size_t i = 0; i < payload.size(); ++i)
    payload[i] = static_cast<std::uint8_t>(i * 7);
  const Bytes input =
      concat({frame(0, Flag::kNewStream, text("0")), frame(0, Flag::kMessageInitiator, payload),
              frame(200, Flag::kNewStream, text("two hundred")),
              frame(200, Flag::kMessageInitiator, text("x")), frame(0, Flag::kCloseInitiator),
              frame(200, Flag::kResetInitiator)});
  for (std::size_t split = 0; split <= input.size(); ++split) {
    Session session = make_session();
    ASSERT_TRUE(session.receive(ByteView(input).first(split), now)) << "split " << split;
    ASSERT_TRUE(session.receive(ByteView(input).subspan(split), now)) << "split " << split;
    ASSERT_TRUE(session.receive_eof()) << "split " << split;
    auto events = drain(session);
    EXPECT_EQ(data_of(events, stream_handle(0, false)), payload) << "split " << split;
    EXPECT_EQ(data_of(events, stream_handle(200, false)), text("x")) << "split " << split;
    EXPECT_TRUE(has_event(events, Kind::kRemoteClosed, stream_handle(0, false)));
    EXPECT_TRUE(has_event(events, Kind::kReset, stream_handle(200, false)));
  }
  // One byte at a time too.
  Session bytewise = make_session();
  for (std::uint8_t byte : input)
    ASSERT_TRUE(bytewise.receive(ByteView(&byte, 1), now));
  EXPECT_EQ(data_of(drain(bytewise), stream_handle(0, false)), payload);
}

TEST_F(MplexSessionTest, WritesAreSplitIntoMessagesOfAtMostTheMaximumSize) {
  auto id = dialer.open_stream();
  ASSERT_TRUE(id);
  (void)output_frames(dialer);
  const Bytes big(2 * kDefaultMaxMessageSize + 12345, 0x5a);
  ByteView rest(big);
  while (!rest.empty()) {
    auto taken = dialer.write(*id, rest);
    ASSERT_TRUE(taken);
    ASSERT_GT(*taken, 0u);
    rest = rest.subspan(*taken);
  }
  auto frames = output_frames(dialer);
  ASSERT_EQ(frames.size(), 3u);
  std::size_t total = 0;
  for (const auto& parsed : frames) {
    EXPECT_LE(parsed.header.length, kDefaultMaxMessageSize);
    total += parsed.payload.size();
  }
  EXPECT_EQ(total, big.size());
}

TEST_F(MplexSessionTest, ReceiveEofInsideAFrameIsAnError) {
  ASSERT_TRUE(listener.receive(Bytes{0x00}, now));  // half a header
  EXPECT_FALSE(listener.receive_eof());
  Session other = make_session();
  ASSERT_TRUE(other.receive(Bytes{0x00, 0x05, 'a'}, now));  // 4 name bytes missing
  EXPECT_FALSE(other.receive_eof());
}

TEST_F(MplexSessionTest, GoAwayRefusesInboundStreamsAndOutboundOpens) {
  listener.go_away();
  EXPECT_TRUE(listener.local_went_away());
  EXPECT_FALSE(listener.open_stream());
  ASSERT_TRUE(listener.receive(frame(0, Flag::kNewStream), now));
  EXPECT_TRUE(drain(listener).empty());
  auto frames = output_frames(listener);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].header, (FrameHeader{0, Flag::kResetReceiver, 0}));
}

// ---- Hostile input ----

TEST_F(MplexSessionTest, AnOversizedMessageIsAProtocolError) {
  Bytes header;
  append_header(header, FrameHeader{0, Flag::kMessageInitiator, kDefaultMaxMessageSize + 1});
  ASSERT_TRUE(listener.receive(frame(0, Flag::kNewStream), now));
  auto received = listener.receive(header, now);
  ASSERT_FALSE(received);
  EXPECT_NE(received.error().message.find("maximum message size"), std::string::npos)
      << received.error().message;
  EXPECT_TRUE(listener.failed());
  EXPECT_FALSE(listener.receive(frame(0, Flag::kCloseInitiator), now));  // stays failed
}

TEST_F(MplexSessionTest, AnUnknownFlagIsAProtocolError) {
  auto received = listener.receive(Bytes{0x07, 0x00}, now);
  ASSERT_FALSE(received);
  EXPECT_NE(received.error().message.find("unknown flag"), std::string::npos);
}

TEST_F(MplexSessionTest, AVarintOverflowIsAProtocolErrorEvenWhenItArrivesBytewise) {
  const Bytes overlong(12, 0xff);
  bool failed = false;
  for (std::uint8_t byte : overlong) {
    if (!listener.receive(ByteView(&byte, 1), now)) {
      failed = true;
      break;
    }
  }
  EXPECT_TRUE(failed);
  EXPECT_TRUE(listener.failed());
}

TEST_F(MplexSessionTest, ANewStreamIdBeyondWhatWeSupportIsAProtocolError) {
  EXPECT_FALSE(listener.receive(frame(kMaxSupportedStreamId + 1, Flag::kNewStream), now));
}

TEST_F(MplexSessionTest, DataOnAStreamNeverOpenedIsDroppedAndAFloodOfItDisconnects) {
  // A few are tolerated (and dropped) ...
  for (std::size_t i = 0; i < kDefaultDisconnectThreshold; ++i) {
    ASSERT_TRUE(listener.receive(frame(7, Flag::kMessageInitiator, text("junk")), now));
  }
  EXPECT_TRUE(drain(listener).empty());
  EXPECT_FALSE(listener.has_output());
  // ... one more within the same second is not.
  auto received = listener.receive(frame(7, Flag::kMessageInitiator, text("junk")), now);
  ASSERT_FALSE(received);
  EXPECT_NE(received.error().message.find("not open"), std::string::npos);
}

TEST_F(MplexSessionTest, DataOnUnknownStreamsSpreadOverTimeIsTolerated) {
  for (int i = 0; i < 20; ++i) {
    now += 300ms;
    ASSERT_TRUE(listener.receive(frame(9, Flag::kMessageReceiver, text("late")), now)) << i;
  }
  // Close and Reset for unknown streams are races, never counted.
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(listener.receive(frame(9, Flag::kCloseInitiator), now));
    ASSERT_TRUE(listener.receive(frame(9, Flag::kResetReceiver), now));
  }
}

TEST_F(MplexSessionTest, NewStreamReusingALiveIdIsAProtocolErrorButAResetIdMayBeReused) {
  ASSERT_TRUE(listener.receive(frame(3, Flag::kNewStream), now));
  auto duplicate = listener.receive(frame(3, Flag::kNewStream), now);
  ASSERT_FALSE(duplicate);
  EXPECT_NE(duplicate.error().message.find("still open"), std::string::npos);

  Session other = make_session();
  ASSERT_TRUE(other.receive(concat({frame(3, Flag::kNewStream), frame(3, Flag::kResetInitiator),
                                    frame(3, Flag::kNewStream)}),
                            now));
  auto events = drain(other);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2].kind, Kind::kInboundStream);
}

TEST_F(MplexSessionTest, StreamsBeyondTheInboundLimitAreResetAndAFloodDisconnects) {
  for (std::uint64_t id = 0; id < kDefaultMaxInboundStreams; ++id) {
    ASSERT_TRUE(listener.receive(frame(id, Flag::kNewStream), now));
  }
  EXPECT_EQ(drain(listener).size(), kDefaultMaxInboundStreams);
  EXPECT_FALSE(listener.has_output());

  std::uint64_t next = kDefaultMaxInboundStreams;
  for (std::size_t i = 0; i < kDefaultDisconnectThreshold; ++i, ++next) {
    ASSERT_TRUE(listener.receive(frame(next, Flag::kNewStream), now));
    auto frames = output_frames(listener);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].header, (FrameHeader{next, Flag::kResetReceiver, 0}));
    // What the peer sent before it saw the reset is dropped quietly.
    ASSERT_TRUE(listener.receive(frame(next, Flag::kMessageInitiator, text("x")), now));
  }
  EXPECT_TRUE(drain(listener).empty());
  EXPECT_EQ(listener.stream_count(), kDefaultMaxInboundStreams);
  auto flood = listener.receive(frame(next, Flag::kNewStream), now);
  ASSERT_FALSE(flood);
  EXPECT_NE(flood.error().message.find("beyond the limit"), std::string::npos);
}

TEST_F(MplexSessionTest, ClosingAStreamMakesRoomForANewOneBelowTheLimit) {
  Config config;
  config.max_inbound_streams = 2;
  Session session = make_session(config);
  ASSERT_TRUE(
      session.receive(concat({frame(0, Flag::kNewStream), frame(1, Flag::kNewStream)}), now));
  ASSERT_TRUE(session.receive(frame(0, Flag::kResetInitiator), now));
  ASSERT_TRUE(session.receive(frame(2, Flag::kNewStream), now));
  EXPECT_FALSE(session.has_output());  // nothing refused
  EXPECT_TRUE(has_event(drain(session), Kind::kInboundStream, stream_handle(2, false)));
}

TEST_F(MplexSessionTest, UnconsumedDataBeyondTheCapResetsTheStreamButNotTheConnection) {
  const Bytes megabyte(kDefaultMaxMessageSize, 0x11);
  ASSERT_TRUE(listener.receive(frame(0, Flag::kNewStream), now));
  const std::uint32_t inbound = stream_handle(0, false);
  for (std::size_t i = 0; i < kDefaultMaxUnconsumed / kDefaultMaxMessageSize; ++i) {
    ASSERT_TRUE(listener.receive(frame(0, Flag::kMessageInitiator, megabyte), now));
  }
  EXPECT_FALSE(listener.has_output());  // exactly at the cap: fine
  ASSERT_TRUE(listener.receive(frame(0, Flag::kMessageInitiator, text("one byte too many")), now));
  auto frames = output_frames(listener);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].header, (FrameHeader{0, Flag::kResetReceiver, 0}));
  auto events = drain(listener);
  EXPECT_EQ(data_of(events, inbound).size(), kDefaultMaxUnconsumed);
  EXPECT_TRUE(has_event(events, Kind::kReset, inbound));
  EXPECT_EQ(listener.stream_count(), 0u);
  // Messages the peer had in flight are dropped without counting against it.
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(listener.receive(frame(0, Flag::kMessageInitiator, megabyte), now)) << i;
  }
  EXPECT_FALSE(listener.failed());
}

TEST_F(MplexSessionTest, ConsumingMakesRoomBelowTheCap) {
  const Bytes megabyte(kDefaultMaxMessageSize, 0x22);
  ASSERT_TRUE(listener.receive(frame(0, Flag::kNewStream), now));
  const std::uint32_t inbound = stream_handle(0, false);
  for (int i = 0; i < 16; ++i) {
    ASSERT_TRUE(listener.receive(frame(0, Flag::kMessageInitiator, megabyte), now));
    ASSERT_TRUE(listener.consumed(inbound, megabyte.size()));
  }
  EXPECT_FALSE(listener.has_output());
  EXPECT_EQ(data_of(drain(listener), inbound).size(), 16 * megabyte.size());
  EXPECT_FALSE(listener.consumed(inbound, 1));  // more than was delivered
}

TEST_F(MplexSessionTest, ReadingPausesWhileAStreamNearsTheCapUntilItIsConsumed) {
  const Bytes megabyte(kDefaultMaxMessageSize, 0x33);
  ASSERT_TRUE(
      listener.receive(concat({frame(0, Flag::kNewStream), frame(1, Flag::kNewStream)}), now));
  const std::uint32_t first = stream_handle(0, false);
  const std::uint32_t second = stream_handle(1, false);
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(listener.reading_paused()) << i;
    ASSERT_TRUE(listener.receive(frame(0, Flag::kMessageInitiator, megabyte), now));
  }
  // 3 MiB unread: one more full message could pass the 4 MiB cap.
  ASSERT_TRUE(listener.receive(frame(0, Flag::kMessageInitiator, text("!")), now));
  EXPECT_TRUE(listener.reading_paused());
  ASSERT_TRUE(listener.consumed(first, 2));
  EXPECT_FALSE(listener.reading_paused());

  // A stalled stream is reset on request; the others stay.
  ASSERT_TRUE(listener.receive(frame(0, Flag::kMessageInitiator, text("!!")), now));
  ASSERT_TRUE(listener.receive(frame(1, Flag::kMessageInitiator, text("fine")), now));
  EXPECT_TRUE(listener.reading_paused());
  (void)drain(listener);
  listener.reset_stalled_streams();
  EXPECT_FALSE(listener.reading_paused());
  auto frames = output_frames(listener);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].header, (FrameHeader{0, Flag::kResetReceiver, 0}));
  EXPECT_TRUE(has_event(drain(listener), Kind::kReset, first));
  EXPECT_EQ(listener.stream_count(), 1u);
  EXPECT_TRUE(listener.write(second, text("still here")));
}

TEST_F(MplexSessionTest, ResettingANearlyFullStreamEndsThePause) {
  const Bytes megabyte(kDefaultMaxMessageSize, 0x44);
  ASSERT_TRUE(listener.receive(frame(0, Flag::kNewStream), now));
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(listener.receive(frame(0, Flag::kMessageInitiator, megabyte), now));
  EXPECT_TRUE(listener.reading_paused());
  listener.reset(stream_handle(0, false));
  EXPECT_FALSE(listener.reading_paused());
}

TEST_F(MplexSessionTest, DataAfterThePeersCloseResetsTheStream) {
  ASSERT_TRUE(listener.receive(concat({frame(0, Flag::kNewStream), frame(0, Flag::kCloseInitiator),
                                       frame(0, Flag::kMessageInitiator, text("zombie"))}),
                               now));
  auto events = drain(listener);
  EXPECT_TRUE(has_event(events, Kind::kReset, stream_handle(0, false)));
  EXPECT_TRUE(data_of(events, stream_handle(0, false)).empty());
  auto frames = output_frames(listener);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].header.flag, Flag::kResetReceiver);
  EXPECT_FALSE(listener.failed());
}

TEST_F(MplexSessionTest, OutboundStreamsStopAtTheLimit) {
  Config config;
  config.max_outbound_streams = 3;
  Session session = make_session(config);
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(session.open_stream());
  EXPECT_FALSE(session.open_stream());
}

TEST_F(MplexSessionTest, FuzzEntryPointSurvivesHostileInput) {
  const Bytes inputs[] = {
      {},
      {0x41, 0x00, 0x00, 0x0a, 0x05, 'h', 'e', 'l', 'l', 'o', 0x0c, 0x00},
      Bytes(64, 0xff),
      concat({Bytes{0x01}, frame(0, Flag::kNewStream),
              frame(0, Flag::kMessageInitiator, Bytes(60, 1))}),
  };
  for (const auto& input : inputs)
    fuzz::mplex(input.data(), input.size());
}

TEST_F(MplexSessionTest, MutatedConversationsNeverCrash) {
  const Bytes conversation =
      concat({Bytes{0x45}, frame(0, Flag::kNewStream, text("0")),
              frame(0, Flag::kMessageInitiator, Bytes(40, 7)), frame(1, Flag::kNewStream),
              frame(1, Flag::kMessageInitiator, text("abc")), frame(0, Flag::kCloseInitiator),
              frame(1, Flag::kResetInitiator), frame(2, Flag::kMessageReceiver, text("?"))});
  std::mt19937 random(20261126);
  for (int round = 0; round < 3000; ++round) {
    Bytes input = conversation;
    const int mutations = 1 + static_cast<int>(random() % 4);
    for (int i = 0; i < mutations; ++i) {
      input[random() % input.size()] = static_cast<std::uint8_t>(random());
    }
    fuzz::mplex(input.data(), input.size());
    Bytes noise(random() % 200);
    for (auto& byte : noise)
      byte = static_cast<std::uint8_t>(random());
    fuzz::mplex(noise.data(), noise.size());
  }
}

}  // namespace
}  // namespace an::p2p::mplex
