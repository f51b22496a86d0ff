// Identify within bounds, between Hosts on loopback: what we send stays within go's 4 KiB
// however many addresses we advertise, and what a hostile peer sends (as much as the stream caps
// allow) is recorded only within the peer store's caps.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "p2p/identify/identify.h"
#include "p2p/multiformats/varint.h"
#include "unit/p2p/net/net_test_support.h"

namespace an::p2p::identify {
namespace {

using net::test::kWaitLimit;
using net::test::read_until_eof;
using net::test::run_coroutine;
using net::test::run_until;
using net::test::TestPeer;

Multiaddr address(const std::string& text) {
  auto parsed = Multiaddr::parse(text);
  EXPECT_TRUE(parsed) << text;
  return parsed ? *parsed : Multiaddr();
}

void append_field(Bytes& out, std::uint8_t tag, const Bytes& value) {
  out.push_back(tag);
  append_varint(out, value.size());
  out.insert(out.end(), value.begin(), value.end());
}

// kMaxMessagesPerStream messages of kMaxMessageSize, the odd ones packed with 5-byte protocol
// names, the even ones with /tcp/N addresses (3 bytes each), and 8 KiB-ish version strings.
Bytes flood_stream() {
  Bytes stream;
  unsigned next = 0;
  for (std::size_t m = 0; m < kMaxMessagesPerStream; ++m) {
    Bytes message;
    if (m == 0) {
      append_field(message, 6 << 3 | 2, Bytes(4000, 'a'));
      append_field(message, 5 << 3 | 2, Bytes(4000, 'v'));
    }
    while (message.size() + 7 <= kMaxMessageSize) {
      ++next;
      if (m % 2 == 1) {
        const std::string name = "/" + std::to_string(10000 + next % 10000).substr(1);
        append_field(message, 3 << 3 | 2, Bytes(name.begin(), name.end()));
      } else {
        append_field(
            message, 2 << 3 | 2,
            Bytes{6, static_cast<std::uint8_t>(next >> 8), static_cast<std::uint8_t>(next)});
      }
    }
    append_varint(stream, message.size());
    stream.insert(stream.end(), message.begin(), message.end());
  }
  return stream;
}

class IdentifyBoundsTest : public ::testing::Test {
 protected:
  // Reads Bob's raw identify answer on a stream Alice opens.
  Bytes raw_identify_of_bob() {
    auto connected =
        run_coroutine(io, [&]() -> asio::awaitable<Expected<std::shared_ptr<net::Connection>>> {
          co_return co_await alice.host().connect(bob.dial_address());
        });
    EXPECT_TRUE(connected && *connected);
    auto answer = run_coroutine(io, [&]() -> asio::awaitable<Expected<Bytes>> {
      // Not a braced list: GCC's coroutines reject one here ("array used as initializer").
      std::vector<std::string> protocols(1, std::string(kProtocolId));
      auto stream = co_await alice.host().new_stream(bob.id(), std::move(protocols));
      if (!stream) co_return tl::unexpected(stream.error());
      co_return co_await read_until_eof(**stream);
    });
    EXPECT_TRUE(answer && *answer) << (answer && !*answer ? (*answer).error().message : "");
    return answer && *answer ? **answer : Bytes{};
  }

  asio::io_context io;
  TestPeer alice{io, std::string("alice")};
  TestPeer bob{io, std::string("bob")};
};

TEST_F(IdentifyBoundsTest, OurMessagesStayWithinFourKibibytesKeepingNonLoopbackAddressesFirst) {
  // 500 addresses of 10 bytes each: 150 loopback ones listed first, then 350 others.
  std::vector<Multiaddr> advertised;
  for (int i = 0; i < 150; ++i)
    advertised.push_back(address("/ip4/127.0.0." + std::to_string(i) + "/tcp/4001"));
  for (int i = 0; i < 350; ++i) {
    advertised.push_back(address("/ip4/192.0." + std::to_string(i / 250) + "." +
                                 std::to_string(i % 250) + "/tcp/4001"));
  }
  bob.host().set_advertised_addresses(advertised);

  Bytes raw = raw_identify_of_bob();
  ByteView rest(raw);
  std::size_t messages = 0;
  while (!rest.empty()) {
    auto length = read_varint(rest);
    ASSERT_TRUE(length);
    ASSERT_LE(*length, rest.size());
    EXPECT_LE(*length, kMaxOwnMessageSize) << "message " << messages;
    rest = rest.subspan(static_cast<std::size_t>(*length));
    ++messages;
  }
  EXPECT_EQ(messages, 2u);  // the signed peer record alone in the second

  auto decoded = decode_stream(raw);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_GT(decoded->listen_addrs.size(), 250u);
  EXPECT_LT(decoded->listen_addrs.size(), 350u);
  for (const auto& kept : decoded->listen_addrs)
    EXPECT_FALSE(kept.to_string().starts_with("/ip4/127.")) << kept.to_string();
  EXPECT_EQ(decoded->listen_addrs.front(), advertised[150]);
  // Every protocol is still there: only addresses had to go.
  EXPECT_EQ(decoded->protocols, bob.host().protocols());
  ASSERT_TRUE(decoded->signed_peer_record);
}

TEST_F(IdentifyBoundsTest, AHostilePeersMaximalAnswerIsRecordedWithinTheCaps) {
  const Bytes flood = flood_stream();
  // Bob answers identify with the flood instead of the Host's own answer.
  bob.host().set_handler(std::string(kProtocolId),
                         [flood](std::shared_ptr<net::Stream> stream) -> asio::awaitable<void> {
                           auto written = co_await stream->write_all(flood);
                           if (written) (void)co_await stream->close_write();
                         });
  auto connected =
      run_coroutine(io, [&]() -> asio::awaitable<Expected<std::shared_ptr<net::Connection>>> {
        co_return co_await alice.host().connect(bob.dial_address());
      });
  ASSERT_TRUE(connected && *connected);
  ASSERT_TRUE(run_until(
      io, [&] { return alice.identified(bob.id()); }, kWaitLimit));

  const net::PeerInfo& info = *alice.host().peer_info(bob.id());
  const net::PeerStoreLimits limits;
  EXPECT_EQ(info.protocols.size(), limits.max_protocols);
  EXPECT_GT(info.addresses.size(), 100u);
  EXPECT_LE(info.addresses.size(), limits.max_addresses_connected);
  std::size_t bytes = 0;
  for (const auto& kept : info.addresses)
    bytes += net::address_footprint(kept);
  EXPECT_LE(bytes, limits.max_address_bytes_connected);
  EXPECT_EQ(info.agent_version, std::string(limits.max_version_length, 'a'));
  EXPECT_EQ(info.protocol_version, std::string(limits.max_version_length, 'v'));

  // Gone: what is left of Bob is a few addresses.
  alice.host().disconnect(bob.id());
  ASSERT_TRUE(run_until(io, [&] { return alice.disconnect_events() == 1; }));
  const net::PeerInfo& left = *alice.host().peer_info(bob.id());
  EXPECT_TRUE(left.protocols.empty());
  EXPECT_TRUE(left.agent_version.empty());
  EXPECT_LE(left.addresses.size(), limits.max_addresses_unconnected);
}

}  // namespace
}  // namespace an::p2p::identify
