// The message cache: windows shifted by heartbeats, gossip from the newest ones, IWANT counts
// per peer, and the byte bound that evicts the oldest messages first.
#include "p2p/pubsub/mcache.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace an::p2p::pubsub {
namespace {

MessageId id_of(int n) {
  return Bytes{static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
}

Message message_in(std::string topic, std::size_t data_size) {
  Message message;
  message.topic = std::move(topic);
  message.data = Bytes(data_size, 1);
  return message;
}

TEST(PubSubMessageCache, GossipsTheNewestWindowsAndForgetsTheOldest) {
  MessageCache cache(3, 2, std::size_t{1} << 20);
  EXPECT_TRUE(cache.put(id_of(1), message_in("a", 10)));
  EXPECT_FALSE(cache.put(id_of(1), message_in("a", 10)));
  cache.shift();
  EXPECT_TRUE(cache.put(id_of(2), message_in("a", 10)));
  EXPECT_TRUE(cache.put(id_of(3), message_in("b", 10)));
  EXPECT_EQ(cache.gossip_ids("a"), (std::vector<MessageId>{id_of(2), id_of(1)}));
  cache.shift();
  EXPECT_EQ(cache.gossip_ids("a"), (std::vector<MessageId>{id_of(2)}));  // 1 is too old to gossip
  EXPECT_NE(cache.get(id_of(1)), nullptr);                               // but still served
  cache.shift();
  EXPECT_EQ(cache.get(id_of(1)), nullptr);
  EXPECT_EQ(cache.size(), 2u);
}

TEST(PubSubMessageCache, CountsIWantsPerPeer) {
  MessageCache cache(3, 3, std::size_t{1} << 20);
  cache.put(id_of(1), message_in("a", 10));
  const PeerId a = PeerId::from_multihash(Bytes{0x00, 0x01, 0x01}).value();
  const PeerId b = PeerId::from_multihash(Bytes{0x00, 0x01, 0x02}).value();
  int times = 0;
  ASSERT_NE(cache.get_for_peer(id_of(1), a, times), nullptr);
  EXPECT_EQ(times, 1);
  cache.get_for_peer(id_of(1), a, times);
  EXPECT_EQ(times, 2);
  cache.get_for_peer(id_of(1), b, times);
  EXPECT_EQ(times, 1);
  EXPECT_EQ(cache.get_for_peer(id_of(2), a, times), nullptr);
}

TEST(PubSubMessageCache, TheByteBoundEvictsTheOldestMessagesFirst) {
  // Room for about ten 1000-byte messages; thousands put over several windows. The oldest
  // leave first, whichever window they are in, and the bound holds throughout.
  constexpr std::size_t kBound = 10 * 1200;
  MessageCache cache(5, 3, kBound);
  int next = 0;
  for (int window = 0; window < 4; ++window) {
    for (int i = 0; i < 1000; ++i) {
      ASSERT_TRUE(cache.put(id_of(next++), message_in("a", 1000)));
      ASSERT_LE(cache.bytes(), kBound);
    }
    cache.shift();
  }
  EXPECT_EQ(cache.evicted_over_limit(), static_cast<std::uint64_t>(next) - cache.size());
  for (int n = 0; n < next - static_cast<int>(cache.size()); ++n)
    ASSERT_EQ(cache.get(id_of(n)), nullptr) << n;
  for (int n = next - static_cast<int>(cache.size()); n < next; ++n)
    ASSERT_NE(cache.get(id_of(n)), nullptr) << n;
  // The survivors are the last window's newest; gossip lists them, oldest first.
  std::vector<MessageId> expected;
  for (int n = next - static_cast<int>(cache.size()); n < next; ++n)
    expected.push_back(id_of(n));
  EXPECT_EQ(cache.gossip_ids("a"), expected);
}

}  // namespace
}  // namespace an::p2p::pubsub
