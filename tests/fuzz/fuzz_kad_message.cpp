// Fuzz target: Kademlia messages, their stream framing, and the IPNS record parsing (protobuf,
// DAG-CBOR, RFC 3339) from a hostile peer. Must never crash; whatever decodes must re-encode to a
// message that decodes to the same thing.
#include <algorithm>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "p2p/kad/cbor.h"
#include "p2p/kad/message.h"
#include "p2p/kad/records.h"
#include "p2p/wire/length_prefixed.h"

namespace {

using namespace an::p2p;

void check_message(ByteView input) {
  auto message = kad::decode(input);
  if (!message) return;
  auto again = kad::decode(kad::encode(*message));
  if (!again || !(*again == *message)) std::abort();
}

void check_frames(ByteView input) {
  // A small cap, taken from the input itself, exercises the refusal.
  const std::size_t max_size = input.empty() ? 16 : 16 + input[0] * 64;
  // The whole input at once first: arriving in pieces must give the same messages and the same
  // outcome at the end.
  std::vector<ByteView> whole;
  ByteView rest = input;
  an::Expected<std::optional<ByteView>> last = std::optional<ByteView>{};
  for (;;) {
    const std::size_t before = rest.size();
    last = take_frame(rest, max_size);
    if (!last || !last->has_value()) {
      if (rest.size() != before) std::abort();
      break;
    }
    if ((*last)->size() > max_size || before - rest.size() <= (*last)->size()) std::abort();
    whole.push_back(**last);
    check_message(**last);
  }

  // Then in chunks whose sizes follow a fixed cycle, keeping what was not taken yet.
  Bytes pending;
  std::size_t taken = 0;
  std::size_t offset = 0;
  std::size_t step = 1;
  while (offset < input.size()) {
    const std::size_t chunk = std::min(step, input.size() - offset);
    pending.insert(pending.end(), input.begin() + static_cast<std::ptrdiff_t>(offset),
                   input.begin() + static_cast<std::ptrdiff_t>(offset + chunk));
    offset += chunk;
    step = step * 3 % 17 + 1;
    ByteView view(pending);
    for (;;) {
      auto next = take_frame(view, max_size);
      if (!next) {
        // Refused as soon as the prefix shows it, and for the same reason as the whole input.
        if (last || taken != whole.size() || next.error().code != last.error().code) std::abort();
        return;
      }
      if (!next->has_value()) break;
      if (taken >= whole.size() ||
          !std::equal(whole[taken].begin(), whole[taken].end(), (*next)->begin(), (*next)->end())) {
        std::abort();
      }
      ++taken;
    }
    pending = Bytes(view.begin(), view.end());
  }
  if (taken != whole.size() || !last) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView input(data, size);
  check_message(input);
  check_frames(input);

  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)cbor::decode_map(text);
  (void)kad::parse_rfc3339(text);

  // The input as an IPNS record under a fixed Ed25519 name, and through the registry.
  static const Bytes kIpnsKey = [] {
    Bytes key{'/', 'i', 'p', 'n', 's', '/', 0x00, 0x24, 0x08, 0x01, 0x12, 0x20};
    key.resize(key.size() + 32, 0x11);
    return key;
  }();
  static const kad::NamespacedValidator kRegistry = kad::NamespacedValidator::with_defaults();
  const kad::TimePoint now{};
  (void)kad::parse_ipns_record(input);
  (void)kRegistry.validate(kIpnsKey, input, now);
  const ByteView values[] = {input, input};
  (void)kRegistry.select(kIpnsKey, values);
  // The input as a record key with a /pk value.
  (void)kRegistry.validate(input, input, now);
  return 0;
}
