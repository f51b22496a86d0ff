// Fuzz harness: arbitrary bytes fed to an mplex session that accepts, answers and consumes
// whatever arrives, split at fuzzed points.
#include <algorithm>

#include "fuzz/harness/harness.h"
#include "p2p/mplex/session.h"

namespace an::p2p::mplex {

void run_harness(const std::uint8_t* data, std::size_t size) {
  Config config;
  // Small limits, so that the fuzzer reaches them.
  config.max_message_size = 64;
  config.max_unconsumed = 256;
  config.max_inbound_streams = 8;
  auto created = Session::create(config);
  if (!created) return;
  Session& session = *created;
  ByteView input(data, size);
  Clock::time_point now{};
  // The first byte picks how the input is split and whether the app consumes what arrives.
  const std::size_t chunk = size > 0 ? std::size_t{data[0]} % 64 + 1 : 1;
  const bool consume = size > 0 && (data[0] & 0x40) != 0;
  Bytes sink;
  Event event;
  while (!input.empty() && !session.failed()) {
    const std::size_t take = std::min(chunk, input.size());
    now += std::chrono::milliseconds(100);
    (void)session.receive(input.first(take), now);
    input = input.subspan(take);
    while (session.poll_event(event)) {
      if (event.kind == Event::Kind::kInboundStream) {
        (void)session.accept(event.stream_id);
        (void)session.write(event.stream_id, ByteView(data, std::min<std::size_t>(size, 100)));
      } else if (event.kind == Event::Kind::kData && consume) {
        (void)session.consumed(event.stream_id, event.data.size());
      } else if (event.kind == Event::Kind::kRemoteClosed) {
        (void)session.close_write(event.stream_id);
      }
    }
    // A caller that stops reading while paused would reset the stalled streams after a while.
    if (session.reading_paused()) session.reset_stalled_streams();
    sink.clear();
    session.take_output(sink);
  }
  (void)session.receive_eof();
}

}  // namespace an::p2p::mplex

namespace an::fuzz {

void mplex(const std::uint8_t* data, std::size_t size) {
  p2p::mplex::run_harness(data, size);
}

}  // namespace an::fuzz
