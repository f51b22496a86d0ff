// Fuzz target: Kademlia messages, their stream framing, and the IPNS record parsing (protobuf,
// DAG-CBOR, RFC 3339) from a hostile peer. Must never crash; whatever decodes must re-encode to a
// message that decodes to the same thing.
#include <algorithm>
#include <cstdlib>
#include <string_view>

#include "p2p/kad/cbor.h"
#include "p2p/kad/message.h"
#include "p2p/kad/records.h"

namespace {

using namespace an::p2p;

void check_message(ByteView input) {
  auto message = kad::decode(input);
  if (!message) return;
  auto again = kad::decode(kad::encode(*message));
  if (!again || !(*again == *message)) std::abort();
}

void check_frames(ByteView input) {
  // Feed in chunks whose sizes come from the input itself; a small cap exercises the refusal.
  kad::FrameDecoder decoder(input.empty() ? 16 : 16 + input[0] * 64);
  std::size_t offset = 0;
  std::size_t step = 1;
  while (offset < input.size()) {
    const std::size_t chunk = std::min(step, input.size() - offset);
    if (!decoder.feed(input.subspan(offset, chunk))) return;
    offset += chunk;
    step = step * 3 % 17 + 1;
    while (true) {
      auto next = decoder.next();
      if (!next) return;
      if (!next->has_value()) break;
      check_message(**next);
    }
  }
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
