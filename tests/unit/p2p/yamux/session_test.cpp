// Yamux session state machine: two sessions wired back to back in memory (the byte stream
// split at random points), flow control and window tuning with a fake clock, hostile frames.
#include "p2p/yamux/session.h"
#include "fuzz/harness/harness.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace an::p2p::yamux {
namespace {

using namespace std::chrono_literals;
using Kind = Event::Kind;

Config config_for(bool initiator) {
  Config config;
  config.is_initiator = initiator;
  // Automatic RTT probes would add pings to every exchange; tests that need them opt in.
  config.rtt_probe_interval = Clock::duration::zero();
  return config;
}

Session make_session(const Config& config) {
  auto session = Session::create(config);
  EXPECT_TRUE(session) << session.error().message;
  return std::move(*session);
}

Bytes frame(FrameType type, std::uint16_t flags, std::uint32_t id, std::uint32_t length,
            const Bytes& payload = {}) {
  Bytes out;
  append_header(out, FrameHeader{type, flags, id, length});
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

std::vector<Event> drain(Session& session) {
  std::vector<Event> events;
  Event event;
  while (session.poll_event(event))
    events.push_back(std::move(event));
  return events;
}

std::vector<FrameHeader> output_headers(Session& session) {
  Bytes out;
  session.take_output(out);
  std::vector<FrameHeader> headers;
  ByteView rest(out);
  while (rest.size() >= kHeaderSize) {
    auto header = decode_header(rest.first(kHeaderSize));
    EXPECT_TRUE(header);
    if (!header) break;
    rest = rest.subspan(kHeaderSize);
    if (header->type == FrameType::kData) rest = rest.subspan(header->length);
    headers.push_back(*header);
  }
  return headers;
}

Bytes text(std::string_view value) {
  return Bytes(value.begin(), value.end());
}

// Two sessions connected in memory: `a` dialed, `b` listened.
class Pair {
 public:
  explicit Pair(Config a_config = config_for(true), Config b_config = config_for(false),
                std::uint64_t seed = 1)
      : a(make_session(a_config)), b(make_session(b_config)), rng(seed) {}

  // Moves each side's output to the other, split at random points, until both are quiet.
  void pump() {
    for (int round = 0; round < 10000 && (a.has_output() || b.has_output()); ++round) {
      transfer(a, b);
      transfer(b, a);
    }
  }

  void transfer(Session& from, Session& to) {
    buffer.clear();
    from.take_output(buffer);
    ByteView rest(buffer);
    while (!rest.empty()) {
      const std::size_t take = std::min(rest.size(), random_split());
      auto received = to.receive(rest.first(take), now);
      if (!received) {
        ADD_FAILURE() << received.error().message;
        return;
      }
      rest = rest.subspan(take);
    }
  }

  std::size_t random_split() {
    const auto pick = rng() % 10;
    if (pick == 0) return 1 + rng() % 16;    // byte-level splits through headers
    if (pick < 5) return 1 + rng() % 70000;  // splits inside payloads
    return SIZE_MAX;                         // the whole buffer at once
  }

  Session a;
  Session b;
  Clock::time_point now = Clock::time_point{} + 1000s;
  std::mt19937_64 rng;
  Bytes buffer;
};

std::string joined_data(const std::vector<Event>& events, std::uint32_t id) {
  std::string data;
  for (const Event& event : events) {
    if (event.kind == Kind::kData && event.stream_id == id) {
      data.append(event.data.begin(), event.data.end());
    }
  }
  return data;
}

bool has_event(const std::vector<Event>& events, Kind kind, std::uint32_t id) {
  return std::any_of(events.begin(), events.end(), [&](const Event& event) {
    return event.kind == kind && event.stream_id == id;
  });
}

TEST(YamuxSession, OpensStreamsBothWaysWithCorrectParity) {
  Pair pair;
  const auto a1 = pair.a.open_stream().value();
  const auto a2 = pair.a.open_stream().value();
  const auto b1 = pair.b.open_stream().value();
  const auto b2 = pair.b.open_stream().value();
  EXPECT_EQ(a1, 1u);
  EXPECT_EQ(a2, 3u);
  EXPECT_EQ(b1, 2u);
  EXPECT_EQ(b2, 4u);
  pair.pump();
  const auto a_events = drain(pair.a);
  const auto b_events = drain(pair.b);
  EXPECT_TRUE(has_event(b_events, Kind::kInboundStream, 1));
  EXPECT_TRUE(has_event(b_events, Kind::kInboundStream, 3));
  EXPECT_TRUE(has_event(a_events, Kind::kInboundStream, 2));
  EXPECT_TRUE(has_event(a_events, Kind::kInboundStream, 4));
  EXPECT_EQ(pair.a.stream_count(), 4u);
  EXPECT_EQ(pair.b.stream_count(), 4u);
}

TEST(YamuxSession, DataRightAfterSynBeforeTheAck) {
  Pair pair;
  const auto id = pair.a.open_stream().value();
  ASSERT_EQ(pair.a.write(id, text("hello")).value(), 5u);
  pair.pump();
  const auto events = drain(pair.b);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, Kind::kInboundStream);
  EXPECT_EQ(events[1].kind, Kind::kData);
  EXPECT_EQ(joined_data(events, id), "hello");
  // Nothing goes back until the app accepts: the spec says not to acknowledge implicitly.
  EXPECT_FALSE(pair.b.has_output());
}

TEST(YamuxSession, AcceptSendsTheAckOnAWindowUpdate) {
  Pair pair;
  const auto id = pair.a.open_stream().value();
  pair.pump();
  ASSERT_EQ(drain(pair.b).size(), 1u);
  ASSERT_TRUE(pair.b.accept(id));
  const auto headers = output_headers(pair.b);
  ASSERT_EQ(headers.size(), 1u);
  EXPECT_EQ(headers[0], (FrameHeader{FrameType::kWindowUpdate, kFlagAck, id, 0}));
  // Accepting twice sends nothing more.
  ASSERT_TRUE(pair.b.accept(id));
  EXPECT_FALSE(pair.b.has_output());
}

TEST(YamuxSession, FirstDataFromTheAcceptorCarriesTheAck) {
  Pair pair;
  const auto id = pair.a.open_stream().value();
  pair.pump();
  drain(pair.b);
  ASSERT_EQ(pair.b.write(id, text("hey")).value(), 3u);
  ASSERT_EQ(pair.b.write(id, text("!")).value(), 1u);
  const auto headers = output_headers(pair.b);
  ASSERT_EQ(headers.size(), 2u);
  EXPECT_EQ(headers[0], (FrameHeader{FrameType::kData, kFlagAck, id, 3}));
  EXPECT_EQ(headers[1], (FrameHeader{FrameType::kData, 0, id, 1}));
}

TEST(YamuxSession, HalfCloseKeepsTheOtherDirectionOpen) {
  Pair pair;
  const auto id = pair.a.open_stream().value();
  ASSERT_EQ(pair.a.write(id, text("request")).value(), 7u);
  ASSERT_TRUE(pair.a.close_write(id));
  ASSERT_TRUE(pair.a.close_write(id));  // idempotent
  EXPECT_FALSE(pair.a.write(id, text("more")));
  pair.pump();
  auto events = drain(pair.b);
  EXPECT_EQ(joined_data(events, id), "request");
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().kind, Kind::kRemoteClosed);

  ASSERT_EQ(pair.b.write(id, text("response")).value(), 8u);
  ASSERT_TRUE(pair.b.close_write(id));
  pair.pump();
  events = drain(pair.a);
  EXPECT_EQ(joined_data(events, id), "response");
  EXPECT_EQ(events.back().kind, Kind::kRemoteClosed);
  // Both directions closed: both sides forget the stream.
  EXPECT_EQ(pair.a.stream_count(), 0u);
  EXPECT_EQ(pair.b.stream_count(), 0u);
}

TEST(YamuxSession, ResetAbortsBothDirections) {
  Pair pair;
  const auto id = pair.a.open_stream().value();
  pair.pump();
  drain(pair.b);
  ASSERT_TRUE(pair.b.accept(id));
  pair.pump();
  pair.a.reset(id, 7);
  EXPECT_FALSE(pair.a.write(id, text("x")));
  pair.pump();
  const auto events = drain(pair.b);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kReset);
  EXPECT_EQ(events[0].code, 7u);
  EXPECT_EQ(pair.a.stream_count(), 0u);
  EXPECT_EQ(pair.b.stream_count(), 0u);
}

TEST(YamuxSession, DataInFlightOnAResetStreamIsDroppedWithinTheGrace) {
  Pair pair;
  const auto id = pair.a.open_stream().value();
  pair.pump();
  drain(pair.b);
  // b answers with data while a resets: the frames cross on the wire.
  ASSERT_EQ(pair.b.write(id, Bytes(1000, 0x42)).value(), 1000u);
  pair.a.reset(id);
  pair.pump();
  EXPECT_TRUE(drain(pair.a).empty());
  EXPECT_TRUE(has_event(drain(pair.b), Kind::kReset, id));
}

TEST(YamuxSession, DataOnAResetStreamAfterTheGraceIsAnError) {
  Pair pair;
  const auto id = pair.a.open_stream().value();
  pair.pump();
  pair.a.reset(id);
  Bytes discard;
  pair.a.take_output(discard);  // b never learns of the reset
  // The grace runs from the first receive() after the reset.
  ASSERT_TRUE(pair.a.receive({}, pair.now));
  pair.now += 29s;
  ASSERT_TRUE(pair.a.receive(frame(FrameType::kData, kFlagAck, id, 3, text("abc")), pair.now));
  pair.now += 2s;
  auto received = pair.a.receive(frame(FrameType::kData, kFlagAck, id, 3, text("abc")), pair.now);
  ASSERT_FALSE(received);
  EXPECT_NE(received.error().message.find("not open"), std::string::npos);
}

TEST(YamuxSession, WriterBlocksAtExactlyTheWindowUntilTheReaderConsumes) {
  Pair pair;
  const auto id = pair.a.open_stream().value();
  const Bytes big(300 * 1024, 0x5a);
  EXPECT_EQ(pair.a.send_window(id), kSpecInitialWindow);
  ASSERT_EQ(pair.a.write(id, big).value(), kSpecInitialWindow);
  EXPECT_EQ(pair.a.send_window(id), 0u);
  EXPECT_EQ(pair.a.write(id, big).value(), 0u);
  pair.pump();
  auto events = drain(pair.b);
  EXPECT_EQ(joined_data(events, id).size(), kSpecInitialWindow);

  ASSERT_TRUE(pair.b.accept(id));  // ACK with no extra window: still blocked
  pair.pump();
  EXPECT_EQ(pair.a.send_window(id), 0u);

  // Less than half of the window consumed: no window update yet.
  ASSERT_TRUE(pair.b.consumed(id, kSpecInitialWindow / 2 - 1, pair.now));
  EXPECT_FALSE(pair.b.has_output());
  EXPECT_TRUE(drain(pair.a).empty());

  // Half consumed: the update restores exactly that much, and the writer hears of it.
  ASSERT_TRUE(pair.b.consumed(id, 1, pair.now));
  pair.pump();
  EXPECT_EQ(pair.a.send_window(id), kSpecInitialWindow / 2);
  events = drain(pair.a);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kWritable);
  EXPECT_EQ(events[0].stream_id, id);

  EXPECT_FALSE(pair.b.consumed(id, kSpecInitialWindow, pair.now));  // more than delivered
}

TEST(YamuxSession, ImplicitAcceptByConsumingSendsAckWithTheUpdate) {
  Pair pair;
  const auto id = pair.a.open_stream().value();
  ASSERT_EQ(pair.a.write(id, Bytes(10, 1)).value(), 10u);
  pair.pump();
  drain(pair.b);
  ASSERT_TRUE(pair.b.consumed(id, 10, pair.now));
  const auto headers = output_headers(pair.b);
  ASSERT_EQ(headers.size(), 1u);
  // The ACK is forced out even though less than half of the window was used.
  EXPECT_EQ(headers[0], (FrameHeader{FrameType::kWindowUpdate, kFlagAck, id, 10}));
}

TEST(YamuxSession, LargerWindowsRideOnTheSynAndTheAck) {
  Config a_config = config_for(true);
  a_config.initial_window = 1024 * 1024;
  Config b_config = config_for(false);
  b_config.initial_window = 2 * 1024 * 1024;
  Pair pair(a_config, b_config);
  const auto id = pair.a.open_stream().value();
  pair.pump();
  drain(pair.b);
  // The SYN's window update told b about a's larger receive window ...
  EXPECT_EQ(pair.b.send_window(id), 1024u * 1024);
  // ... and the ACK tells a about b's; until then a may only assume the spec's 256 KiB.
  EXPECT_EQ(pair.a.send_window(id), kSpecInitialWindow);
  ASSERT_TRUE(pair.b.accept(id));
  pair.pump();
  EXPECT_EQ(pair.a.send_window(id), 2u * 1024 * 1024);
  EXPECT_EQ(pair.b.receive_window(id), 2u * 1024 * 1024);
}

TEST(YamuxSession, PingReplyMeasuresRttWithAFakeClock) {
  Pair pair;
  const auto sent_at = pair.now;
  const std::uint32_t value = pair.a.ping(sent_at);
  pair.transfer(pair.a, pair.b);  // b answers at once
  pair.now += 42ms;
  pair.transfer(pair.b, pair.a);
  const auto events = drain(pair.a);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kPingReply);
  EXPECT_EQ(events[0].code, value);
  EXPECT_EQ(events[0].rtt, 42ms);
  ASSERT_TRUE(pair.a.rtt());
  EXPECT_EQ(*pair.a.rtt(), 42ms);
  EXPECT_TRUE(drain(pair.b).empty());  // answering a ping is not an event
  // Unsolicited replies are ignored.
  ASSERT_TRUE(pair.a.receive(frame(FrameType::kPing, kFlagAck, 0, 999), pair.now));
  EXPECT_TRUE(drain(pair.a).empty());
}

TEST(YamuxSession, ProbesRttOnItsOwnWhenConfigured) {
  Config config = config_for(true);
  config.rtt_probe_interval = 30s;
  Pair pair(config, config_for(false));
  EXPECT_FALSE(pair.a.rtt());
  // Any receive lets the session send its probe.
  ASSERT_TRUE(pair.a.receive({}, pair.now));
  ASSERT_TRUE(pair.a.has_output());
  pair.transfer(pair.a, pair.b);
  pair.now += 5ms;
  pair.transfer(pair.b, pair.a);
  ASSERT_TRUE(pair.a.rtt());
  EXPECT_EQ(*pair.a.rtt(), 5ms);
  EXPECT_TRUE(drain(pair.a).empty());  // probes do not surface as events
  // No second probe before the interval has passed.
  ASSERT_TRUE(pair.a.receive({}, pair.now + 10s));
  EXPECT_FALSE(pair.a.has_output());
  ASSERT_TRUE(pair.a.receive({}, pair.now + 31s));
  EXPECT_TRUE(pair.a.has_output());
}

// Drives a one-way transfer of `total` bytes from a to b on one stream. The receiver consumes
// everything it is given at once; `time_per_round` advances the clock each round.
struct TransferResult {
  std::uint64_t sent_hash = 0;
  std::uint64_t received_hash = 0;
  std::size_t received = 0;
  std::size_t max_unconsumed = 0;
  std::size_t max_output = 0;
  std::size_t max_window = 0;
};

std::uint64_t fnv1a(std::uint64_t hash, ByteView bytes) {
  for (std::uint8_t byte : bytes)
    hash = (hash ^ byte) * 0x100000001b3ull;
  return hash;
}

TransferResult transfer(Pair& pair, std::uint32_t id, std::size_t total,
                        Clock::duration time_per_round) {
  TransferResult result;
  result.sent_hash = result.received_hash = 0xcbf29ce484222325ull;
  std::mt19937_64 data_rng(99);
  Bytes chunk;
  Bytes pending;  // generated but not yet accepted by write()
  std::size_t generated = 0;
  std::size_t unconsumed = 0;
  Bytes wire;
  for (int round = 0; round < 100000 && result.received < total; ++round) {
    // Sender: write as much as the window allows.
    while (true) {
      if (pending.empty() && generated < total) {
        pending.resize(std::min<std::size_t>(total - generated, 1 << 20));
        for (std::size_t at = 0; at < pending.size(); at += 8) {
          const std::uint64_t word = data_rng();
          std::memcpy(&pending[at], &word, std::min<std::size_t>(8, pending.size() - at));
        }
        generated += pending.size();
      }
      if (pending.empty()) break;
      auto written = pair.a.write(id, pending);
      if (!written) {
        ADD_FAILURE() << written.error().message;
        return result;
      }
      if (*written == 0) break;
      result.sent_hash = fnv1a(result.sent_hash, ByteView(pending).first(*written));
      pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(*written));
    }
    result.max_output = std::max(result.max_output, pair.a.output_size());
    pair.transfer(pair.a, pair.b);
    // Receiver: take all data, then report it consumed.
    Event event;
    while (pair.b.poll_event(event)) {
      if (event.kind == Kind::kInboundStream) continue;
      if (event.kind != Kind::kData) continue;
      result.received_hash = fnv1a(result.received_hash, event.data);
      result.received += event.data.size();
      unconsumed += event.data.size();
    }
    result.max_unconsumed = std::max(result.max_unconsumed, unconsumed);
    result.max_window = std::max(result.max_window, pair.b.receive_window(id));
    pair.now += time_per_round;
    if (unconsumed > 0) {
      auto consumed = pair.b.consumed(id, unconsumed, pair.now);
      if (!consumed) {
        ADD_FAILURE() << consumed.error().message;
        return result;
      }
      unconsumed = 0;
    }
    pair.transfer(pair.b, pair.a);
    drain(pair.a);
  }
  return result;
}

void measure_rtt(Pair& pair, Clock::duration rtt) {
  pair.b.ping(pair.now);
  pair.transfer(pair.b, pair.a);
  pair.now += rtt;
  pair.transfer(pair.a, pair.b);
  drain(pair.b);
}

TEST(YamuxSession, WindowGrowsWhenDrainedFastButNotBeyondTheMaximum) {
  Pair pair;
  measure_rtt(pair, 10ms);
  const auto id = pair.a.open_stream().value();
  pair.pump();
  // Each round takes 1 ms, far less than 4 RTTs: the receiver doubles its window each update.
  const auto result = transfer(pair, id, 48 * 1024 * 1024, 1ms);
  EXPECT_EQ(result.received, 48u * 1024 * 1024);
  EXPECT_EQ(result.received_hash, result.sent_hash);
  EXPECT_EQ(pair.b.receive_window(id), kDefaultMaxWindow);
  EXPECT_EQ(result.max_window, kDefaultMaxWindow);
  EXPECT_LE(result.max_unconsumed, kDefaultMaxWindow);
}

TEST(YamuxSession, WindowStaysWhenDrainedSlowly) {
  Pair pair;
  measure_rtt(pair, 10ms);
  const auto id = pair.a.open_stream().value();
  pair.pump();
  const auto result = transfer(pair, id, 4 * 1024 * 1024, 100ms);
  EXPECT_EQ(result.received_hash, result.sent_hash);
  EXPECT_EQ(result.max_window, kSpecInitialWindow);
}

TEST(YamuxSession, WindowStaysWithoutAnRttMeasurement) {
  Pair pair;
  const auto id = pair.a.open_stream().value();
  pair.pump();
  const auto result = transfer(pair, id, 4 * 1024 * 1024, 0ms);
  EXPECT_EQ(result.received_hash, result.sent_hash);
  EXPECT_EQ(result.max_window, kSpecInitialWindow);
}

TEST(YamuxSession, Transfers64MiBIntactWithBoundedBuffers) {
  Pair pair(config_for(true), config_for(false), 7);
  measure_rtt(pair, 20ms);
  const auto id = pair.a.open_stream().value();
  pair.pump();
  const std::size_t total = 64 * 1024 * 1024;
  const auto result = transfer(pair, id, total, 2ms);
  EXPECT_EQ(result.received, total);
  EXPECT_EQ(result.received_hash, result.sent_hash);
  // Neither the receiver's unread data nor the sender's unsent frames exceed one window.
  EXPECT_LE(result.max_unconsumed, kDefaultMaxWindow);
  // (plus the frame headers: well under 64 KiB for a 16 MiB window)
  EXPECT_LE(result.max_output, kDefaultMaxWindow + 64 * 1024);
}

TEST(YamuxSession, GoAwayStopsNewStreamsButNotExistingOnes) {
  Pair pair;
  const auto id = pair.a.open_stream().value();
  pair.pump();
  drain(pair.b);
  ASSERT_TRUE(pair.b.accept(id));
  pair.a.go_away(GoAwayCode::kNormal);
  pair.pump();
  const auto events = drain(pair.b);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kGoAway);
  EXPECT_EQ(events[0].code, 0u);
  EXPECT_TRUE(pair.b.remote_went_away());
  EXPECT_FALSE(pair.b.open_stream());
  EXPECT_FALSE(pair.a.open_stream());

  // The existing stream still carries data both ways.
  ASSERT_EQ(pair.a.write(id, text("ping")).value(), 4u);
  ASSERT_EQ(pair.b.write(id, text("pong")).value(), 4u);
  pair.pump();
  EXPECT_EQ(joined_data(drain(pair.b), id), "ping");
  EXPECT_EQ(joined_data(drain(pair.a), id), "pong");
}

TEST(YamuxSession, InboundSynAfterOurGoAwayIsReset) {
  Session responder = make_session(config_for(false));
  responder.go_away(GoAwayCode::kNormal);
  Bytes discard;
  responder.take_output(discard);
  ASSERT_TRUE(responder.receive(frame(FrameType::kData, kFlagSyn, 1, 2, text("hi")), {}));
  EXPECT_TRUE(drain(responder).empty());
  const auto headers = output_headers(responder);
  ASSERT_EQ(headers.size(), 1u);
  EXPECT_EQ(headers[0], (FrameHeader{FrameType::kWindowUpdate, kFlagRst, 1, 0}));
}

TEST(YamuxSession, InboundStreamsBeyondTheLimitAreReset) {
  Config a_config = config_for(true);
  a_config.max_streams = 2000;
  Pair pair(a_config, config_for(false));
  std::vector<std::uint32_t> ids;
  for (int batch = 0; batch < 10; ++batch) {
    for (int i = 0; i < 100; ++i)
      ids.push_back(pair.a.open_stream().value());
    pair.pump();
    for (const Event& event : drain(pair.b)) {
      ASSERT_EQ(event.kind, Kind::kInboundStream);
      ASSERT_TRUE(pair.b.accept(event.stream_id));
    }
    pair.pump();
  }
  EXPECT_EQ(pair.b.stream_count(), 1000u);
  EXPECT_TRUE(drain(pair.a).empty());

  const auto extra = pair.a.open_stream().value();
  pair.pump();
  EXPECT_TRUE(drain(pair.b).empty());
  const auto events = drain(pair.a);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kReset);
  EXPECT_EQ(events[0].stream_id, extra);
  EXPECT_EQ(pair.b.stream_count(), 1000u);

  // Closing one makes room for the next.
  pair.a.reset(ids[0]);
  pair.pump();
  drain(pair.b);
  const auto next = pair.a.open_stream().value();
  pair.pump();
  EXPECT_TRUE(has_event(drain(pair.b), Kind::kInboundStream, next));
}

TEST(YamuxSession, OutboundStreamsAreLimitedToo) {
  Config config = config_for(true);
  config.max_streams = 3;
  Session session = make_session(config);
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(session.open_stream());
  auto fourth = session.open_stream();
  ASSERT_FALSE(fourth);
  EXPECT_NE(fourth.error().message.find("maximum"), std::string::npos);
}

TEST(YamuxSession, AcceptBacklogBoundsUnacceptedStreams) {
  Pair pair;
  std::vector<std::uint32_t> ids;
  for (std::size_t i = 0; i < kDefaultAcceptBacklog + 1; ++i) {
    ids.push_back(pair.a.open_stream().value());
  }
  pair.pump();
  auto b_events = drain(pair.b);
  EXPECT_EQ(b_events.size(), kDefaultAcceptBacklog);
  auto a_events = drain(pair.a);
  ASSERT_EQ(a_events.size(), 1u);
  EXPECT_EQ(a_events[0].kind, Kind::kReset);
  EXPECT_EQ(a_events[0].stream_id, ids.back());

  // Accepting one frees a backlog slot.
  ASSERT_TRUE(pair.b.accept(ids[0]));
  const auto next = pair.a.open_stream().value();
  pair.pump();
  EXPECT_TRUE(has_event(drain(pair.b), Kind::kInboundStream, next));
  EXPECT_TRUE(drain(pair.a).empty());
}

TEST(YamuxSession, RefusingAnInboundStreamWithReset) {
  Pair pair;
  const auto id = pair.a.open_stream().value();
  ASSERT_EQ(pair.a.write(id, text("hello?")).value(), 6u);
  pair.pump();
  drain(pair.b);
  pair.b.reset(id);
  ASSERT_EQ(pair.a.write(id, text("still there?")).value(), 12u);  // crosses the RST
  pair.pump();
  EXPECT_TRUE(has_event(drain(pair.a), Kind::kReset, id));
  EXPECT_TRUE(drain(pair.b).empty());
  EXPECT_EQ(pair.a.stream_count(), 0u);
  EXPECT_EQ(pair.b.stream_count(), 0u);
}

TEST(YamuxSession, ManyStreamsInterleaveIntact) {
  Pair pair(config_for(true), config_for(false), 3);
  std::vector<std::uint32_t> ids;
  for (int i = 0; i < 20; ++i)
    ids.push_back(pair.a.open_stream().value());
  std::vector<std::string> expected(ids.size());
  std::map<std::uint32_t, std::string> received;
  for (int round = 0; round < 50; ++round) {
    for (std::size_t i = 0; i < ids.size(); ++i) {
      std::string piece = std::to_string(round) + ":" + std::to_string(ids[i]) + ";";
      expected[i] += piece;
      ASSERT_EQ(pair.a.write(ids[i], text(piece)).value(), piece.size());
    }
    pair.pump();
    for (const Event& event : drain(pair.b)) {
      if (event.kind == Kind::kData) {
        received[event.stream_id].append(event.data.begin(), event.data.end());
        ASSERT_TRUE(pair.b.consumed(event.stream_id, event.data.size(), pair.now));
      }
    }
  }
  for (std::size_t i = 0; i < ids.size(); ++i)
    EXPECT_EQ(received[ids[i]], expected[i]);
}

TEST(YamuxSession, ManyTinyFramesMakeOneEventPerPoll) {
  Session responder = make_session(config_for(false));
  Bytes input = frame(FrameType::kWindowUpdate, kFlagSyn, 1, 0);
  for (int i = 0; i < 10000; ++i) {
    const Bytes one = frame(FrameType::kData, 0, 1, 1, {static_cast<std::uint8_t>(i)});
    input.insert(input.end(), one.begin(), one.end());
  }
  ASSERT_TRUE(responder.receive(input, {}));
  const auto events = drain(responder);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].data.size(), 10000u);
}

// ---- Hostile input -----------------------------------------------------------------------

void expect_protocol_error(const Bytes& input, std::string_view expected_text) {
  Session responder = make_session(config_for(false));
  auto received = responder.receive(input, {});
  ASSERT_FALSE(received) << "accepted hostile input; expected: " << expected_text;
  EXPECT_NE(received.error().message.find(expected_text), std::string::npos)
      << received.error().message;
  EXPECT_TRUE(responder.failed());
  // The session stays failed.
  EXPECT_FALSE(responder.receive(frame(FrameType::kPing, kFlagSyn, 0, 1), {}));
}

Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& part : parts)
    out.insert(out.end(), part.begin(), part.end());
  return out;
}

TEST(YamuxSession, RejectsBadVersion) {
  expect_protocol_error({0x01, 0x01, 0x00, 0x01, 0, 0, 0, 1, 0, 0, 0, 0}, "version 1");
}

TEST(YamuxSession, RejectsUnknownType) {
  expect_protocol_error({0x00, 0x07, 0x00, 0x01, 0, 0, 0, 1, 0, 0, 0, 0}, "type 7");
}

TEST(YamuxSession, RejectsWindowOverrun) {
  // The overrun is caught from the header alone, before any payload arrives.
  expect_protocol_error(frame(FrameType::kData, kFlagSyn, 1, kSpecInitialWindow + 1),
                        "overruns the receive window");
  // Cumulative overrun over several frames.
  Bytes input = frame(FrameType::kData, kFlagSyn, 1, 200 * 1024, Bytes(200 * 1024, 0));
  const Bytes more = frame(FrameType::kData, 0, 1, 100 * 1024, Bytes(100 * 1024, 0));
  expect_protocol_error(concat({input, more}), "overruns the receive window");
}

TEST(YamuxSession, RejectsWrongParity) {
  // The responder's peer (the initiator) must open odd IDs.
  expect_protocol_error(frame(FrameType::kWindowUpdate, kFlagSyn, 2, 0), "wrong parity");
  Session initiator = make_session(config_for(true));
  auto received = initiator.receive(frame(FrameType::kWindowUpdate, kFlagSyn, 3, 0), {});
  ASSERT_FALSE(received);
  EXPECT_NE(received.error().message.find("wrong parity"), std::string::npos);
}

TEST(YamuxSession, RejectsDuplicateSyn) {
  const Bytes syn = frame(FrameType::kWindowUpdate, kFlagSyn, 1, 0);
  expect_protocol_error(concat({syn, syn}), "duplicate SYN");
}

TEST(YamuxSession, RejectsStreamFramesOnStreamZero) {
  expect_protocol_error(frame(FrameType::kData, kFlagSyn, 0, 1, {1}), "stream 0");
}

TEST(YamuxSession, RejectsDataOnUnknownStream) {
  expect_protocol_error(frame(FrameType::kData, 0, 5, 3, {1, 2, 3}), "not open");
}

TEST(YamuxSession, RejectsDataAfterFin) {
  expect_protocol_error(concat({frame(FrameType::kWindowUpdate, kFlagSyn | kFlagFin, 1, 0),
                                frame(FrameType::kData, 0, 1, 1, {9})}),
                        "after the peer's FIN");
}

TEST(YamuxSession, RejectsHugeLengths) {
  expect_protocol_error(frame(FrameType::kData, kFlagSyn, 1, 0xffffffff),
                        "overruns the receive window");
  expect_protocol_error(frame(FrameType::kData, 0, 1, 0xffffffff), "not open");
  // Window updates that would overflow the 32-bit send window.
  expect_protocol_error(concat({frame(FrameType::kWindowUpdate, kFlagSyn, 1, 0xffffffff)}),
                        "beyond 2^32-1");
}

TEST(YamuxSession, HugeLengthsInPingAndGoAwayAreJustValues) {
  Session responder = make_session(config_for(false));
  ASSERT_TRUE(responder.receive(frame(FrameType::kPing, kFlagSyn, 0, 0xffffffff), {}));
  const auto headers = output_headers(responder);
  ASSERT_EQ(headers.size(), 1u);
  EXPECT_EQ(headers[0], (FrameHeader{FrameType::kPing, kFlagAck, 0, 0xffffffff}));
  ASSERT_TRUE(responder.receive(frame(FrameType::kGoAway, 0, 0, 0xffffffff), {}));
  const auto events = drain(responder);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].code, 0xffffffffu);
}

TEST(YamuxSession, TruncatedHeaderWaitsThenFailsAtEof) {
  Session responder = make_session(config_for(false));
  const Bytes syn = frame(FrameType::kData, kFlagSyn, 1, 4, {1, 2, 3, 4});
  ASSERT_TRUE(responder.receive(ByteView(syn).first(5), {}));
  EXPECT_TRUE(drain(responder).empty());
  auto eof = responder.receive_eof();
  ASSERT_FALSE(eof);
  EXPECT_NE(eof.error().message.find("inside a frame header"), std::string::npos);

  ASSERT_TRUE(responder.receive(ByteView(syn).subspan(5, 8), {}));  // header + 1 payload byte
  eof = responder.receive_eof();
  ASSERT_FALSE(eof);
  EXPECT_NE(eof.error().message.find("3 bytes missing"), std::string::npos);

  ASSERT_TRUE(responder.receive(ByteView(syn).subspan(13), {}));
  EXPECT_TRUE(responder.receive_eof());
  EXPECT_EQ(joined_data(drain(responder), 1), std::string("\x01\x02\x03\x04"));
}

TEST(YamuxSession, IgnoresLateControlFramesForFinishedStreams) {
  Session responder = make_session(config_for(false));
  ASSERT_TRUE(responder.receive(frame(FrameType::kWindowUpdate, 0, 9, 100), {}));
  ASSERT_TRUE(responder.receive(frame(FrameType::kWindowUpdate, kFlagRst, 9, 0), {}));
  ASSERT_TRUE(responder.receive(frame(FrameType::kData, kFlagFin, 9, 0), {}));
  EXPECT_FALSE(responder.failed());
}

TEST(YamuxSession, RandomInputNeverCrashes) {
  std::mt19937_64 rng(12345);
  Bytes input;
  for (int i = 0; i < 3000; ++i) {
    input.resize(rng() % 600);
    for (auto& byte : input)
      byte = static_cast<std::uint8_t>(rng());
    // Bias towards plausible headers so that deeper states get reached.
    for (std::size_t at = 1; at + kHeaderSize <= input.size(); at += kHeaderSize + rng() % 40) {
      input[at] = 0;                                         // version
      input[at + 1] = static_cast<std::uint8_t>(rng() % 4);  // type
      input[at + 8] = input[at + 9] = 0;                     // modest lengths
      if (rng() % 2) input[at + 10] = 0;
    }
    fuzz::yamux(input.data(), input.size());
  }
}

TEST(YamuxSession, MutatedConversationsNeverCrash) {
  // Record a real conversation from the initiator's side, then replay mutated copies.
  Pair pair;
  Bytes recorded;
  for (int i = 0; i < 5; ++i) {
    const auto id = pair.a.open_stream().value();
    ASSERT_TRUE(pair.a.write(id, Bytes(100 + i * 50, static_cast<std::uint8_t>(i))));
    if (i % 2) {
      ASSERT_TRUE(pair.a.close_write(id));
    }
    if (i == 3) pair.a.reset(id);
  }
  pair.a.ping(pair.now);
  pair.a.take_output(recorded);
  std::mt19937_64 rng(777);
  for (int i = 0; i < 600; ++i) {
    Bytes mutated = recorded;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f)
      mutated[rng() % mutated.size()] ^= 1u << (rng() % 8);
    if (rng() % 4 == 0) mutated.resize(rng() % mutated.size());
    fuzz::yamux(mutated.data(), mutated.size());
  }
}

TEST(YamuxSession, RejectsInvalidConfig) {
  Config config;
  config.initial_window = 1000;
  EXPECT_FALSE(Session::create(config));
  config = Config{};
  config.max_window = kSpecInitialWindow - 1;
  EXPECT_FALSE(Session::create(config));
  config = Config{};
  config.accept_backlog = 0;
  EXPECT_FALSE(Session::create(config));
  config = Config{};
  config.max_frame_payload = 0;
  EXPECT_FALSE(Session::create(config));
}

}  // namespace
}  // namespace an::p2p::yamux
