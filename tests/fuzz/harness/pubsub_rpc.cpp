// The libFuzzer entry of the pubsub RPC codec: hostile bytes must decode to an RPC or an error,
// never to a crash, an out-of-bounds read or unbounded work. What decodes must survive a round
// trip through the encoder and the splitter, and its messages' signature checks must not crash.
#include <cstdlib>

#include "fuzz/harness/harness.h"
#include "p2p/pubsub/rpc.h"

namespace an::p2p::pubsub {
namespace {

// Small enough that the inputs a fuzzer makes get cut into several parts.
constexpr std::size_t kSplitSize = 512;

std::size_t entry_count(const Rpc& rpc) {
  std::size_t count = rpc.subscriptions.size() + rpc.publish.size();
  if (!rpc.control) return count;
  const auto& control = *rpc.control;
  count += control.graft.size() + control.prune.size();
  for (const auto& ihave : control.ihave)
    count += ihave.message_ids.size();
  for (const auto& iwant : control.iwant)
    count += iwant.message_ids.size();
  for (const auto& idontwant : control.idontwant)
    count += idontwant.message_ids.size();
  return count;
}

void run_harness(const std::uint8_t* data, std::size_t size) {
  auto rpc = decode_rpc(ByteView(data, size));
  if (!rpc) return;
  const Bytes encoded = encode_rpc(*rpc);
  auto again = decode_rpc(encoded);
  if (!again || !(*again == *rpc)) std::abort();
  if (encode_rpc(*again) != encoded) std::abort();  // the canonical form is a fixed point
  for (const auto& message : rpc->publish) {
    (void)verify_message(message);
    (void)default_message_id(message);
  }
  auto parts = split_rpc(*rpc, kSplitSize);
  if (!parts) return;  // one entry alone is over kSplitSize
  std::size_t entries = 0;
  for (const auto& part : *parts) {
    if (encode_rpc(part).size() > kSplitSize) std::abort();
    entries += entry_count(part);
  }
  // Entries without IDs (empty IHAVEs) are counted as nothing in both.
  if (entries != entry_count(*rpc)) std::abort();
}

}  // namespace
}  // namespace an::p2p::pubsub

namespace an::fuzz {

void pubsub_rpc(const std::uint8_t* data, std::size_t size) {
  p2p::pubsub::run_harness(data, size);
}

}  // namespace an::fuzz
