// The libFuzzer entry of multistream-select: every byte sequence must leave both state machines
// in a defined state, never crash and never read out of bounds.
#include <algorithm>

#include "fuzz/harness/harness.h"
#include "p2p/multistream/multistream.h"

namespace an::p2p::multistream {
namespace {

// Feeds `input` in slices of `chunk` bytes, the way a socket might split it, and drains the
// machine's output and leftover as a real caller would.
template <class Machine>
void drive(Machine& machine, ByteView input, std::size_t chunk) {
  Bytes sink;
  for (std::size_t offset = 0; offset < input.size(); offset += chunk) {
    const auto part = input.subspan(offset, std::min(chunk, input.size() - offset));
    const bool ok = machine.receive(part).has_value();
    machine.take_output(sink);
    if (!ok) return;
  }
  (void)machine.done();
  (void)machine.selected_protocol();
  (void)machine.take_leftover();
}

}  // namespace

void run_harness(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return;
  // The first byte chooses how the rest is split and which initiator mode runs.
  const std::uint8_t control = data[0];
  const ByteView input(data + 1, size - 1);
  const std::size_t chunk = 1 + (control & 0x1f);

  MessageReader reader;
  reader.feed(input);
  while (true) {
    auto message = reader.next();
    if (!message || !message->has_value()) break;
  }
  (void)reader.take_remaining();

  Responder responder({"/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"});
  drive(responder, input, chunk);

  const auto mode = (control & 0x20) ? InitiatorMode::kWaitForHeader : InitiatorMode::kOptimistic;
  if (auto initiator = Initiator::create({"/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"}, mode)) {
    drive(*initiator, input, chunk);
  }
}

}  // namespace an::p2p::multistream

namespace an::fuzz {

void multistream(const std::uint8_t* data, std::size_t size) {
  p2p::multistream::run_harness(data, size);
}

}  // namespace an::fuzz
