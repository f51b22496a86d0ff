// Fuzz harness: arbitrary bytes fed to a yamux responder session that accepts and consumes
// whatever arrives, split at fuzzed points.
#include <algorithm>

#include "fuzz/harness/harness.h"
#include "p2p/yamux/session.h"

namespace an::p2p::yamux {

void run_harness(const std::uint8_t* data, std::size_t size) {
  Config config;
  config.is_initiator = false;
  auto created = Session::create(config);
  if (!created) return;
  Session& session = *created;
  ByteView input(data, size);
  Clock::time_point now{};
  // The first byte picks how the input is split, so split points get fuzzed too.
  const std::size_t chunk = size > 0 ? std::size_t{data[0]} % 64 + 1 : 1;
  Bytes sink;
  Event event;
  while (!input.empty() && !session.failed()) {
    const std::size_t take = std::min(chunk, input.size());
    now += std::chrono::milliseconds(1);
    (void)session.receive(input.first(take), now);
    input = input.subspan(take);
    while (session.poll_event(event)) {
      if (event.kind == Event::Kind::kInboundStream) {
        (void)session.accept(event.stream_id);
      } else if (event.kind == Event::Kind::kData) {
        (void)session.consumed(event.stream_id, event.data.size(), now);
      }
    }
    sink.clear();
    session.take_output(sink);
  }
}

}  // namespace an::p2p::yamux

namespace an::fuzz {

void yamux(const std::uint8_t* data, std::size_t size) {
  p2p::yamux::run_harness(data, size);
}

}  // namespace an::fuzz
