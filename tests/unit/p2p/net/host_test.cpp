// Host end to end over 127.0.0.1: two or three hosts on one io_context driven from the test
// thread. Connecting, connection events, identify, custom protocols, negotiation, ping, dialing
// failures, disconnects, half-close and abort, many concurrent streams, and Host::close().
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "p2p/identify/identify.h"
#include "p2p/ping/ping.h"
#include "unit/p2p/net/net_test_support.h"

namespace an::p2p::net::test {
namespace {

using Strings = std::vector<std::string>;

bool lists(const std::vector<PeerId>& peers, const PeerId& peer) {
  return std::find(peers.begin(), peers.end(), peer) != peers.end();
}

bool lists(const Strings& protocols, std::string_view protocol) {
  return std::find(protocols.begin(), protocols.end(), protocol) != protocols.end();
}

class HostTest : public ::testing::Test {
 protected:
  Expected<std::shared_ptr<Connection>> connect(TestPeer& from, const Multiaddr& address) {
    auto result =
        run_coroutine(io, [&]() -> asio::awaitable<Expected<std::shared_ptr<Connection>>> {
          co_return co_await from.host().connect(address);
        });
    if (!result) return fail("connect did not finish");
    return std::move(*result);
  }

  // `from` dials `to`; waits until both sides have identified each other.
  void connect_and_identify(TestPeer& from, TestPeer& to) {
    auto connection = connect(from, to.dial_address());
    ASSERT_TRUE(connection) << connection.error().message;
    ASSERT_TRUE(run_until(io, [&] { return from.identified(to.id()) && to.identified(from.id()); }))
        << "identify did not complete";
  }

  Expected<std::shared_ptr<Stream>> open_stream(TestPeer& from, const PeerId& to,
                                                Strings protocols) {
    auto result = run_coroutine(io, [&]() -> asio::awaitable<Expected<std::shared_ptr<Stream>>> {
      co_return co_await from.host().new_stream(to, std::move(protocols));
    });
    if (!result) return fail("new_stream did not finish");
    return std::move(*result);
  }

  Expected<Bytes> exchange_on(Stream& stream, const Bytes& data) {
    auto result = run_coroutine(io, [&]() -> asio::awaitable<Expected<Bytes>> {
      co_return co_await send_and_receive(stream, data);
    });
    if (!result) return fail("exchange did not finish");
    return std::move(*result);
  }

  Expected<std::chrono::nanoseconds> ping(TestPeer& from, const PeerId& to) {
    auto result = run_coroutine(io, [&]() -> asio::awaitable<Expected<std::chrono::nanoseconds>> {
      co_return co_await from.host().ping(to);
    });
    if (!result) return fail("ping did not finish");
    return *result;
  }

  asio::io_context io;
  TestPeer alice{io, "test-agent/alice"};
  TestPeer bob{io, "test-agent/bob"};
};

TEST_F(HostTest, ConnectingRaisesEventsOnBothSidesWithDirectionAndPeer) {
  auto connection = connect(alice, bob.dial_address());
  ASSERT_TRUE(connection) << connection.error().message;
  EXPECT_EQ((*connection)->remote_peer(), bob.id());
  EXPECT_EQ((*connection)->direction(), Direction::kOutbound);
  ASSERT_TRUE(run_until(io, [&] { return !bob.events.empty(); }));

  ASSERT_EQ(alice.events.size(), 1u);
  EXPECT_TRUE(alice.events[0].connected);
  EXPECT_EQ(alice.events[0].peer, bob.id());
  EXPECT_EQ(alice.events[0].direction, Direction::kOutbound);
  EXPECT_EQ(alice.events[0].remote_address, bob.listen_address());

  ASSERT_EQ(bob.events.size(), 1u);
  EXPECT_TRUE(bob.events[0].connected);
  EXPECT_EQ(bob.events[0].peer, alice.id());
  EXPECT_EQ(bob.events[0].direction, Direction::kInbound);
  EXPECT_EQ(bob.events[0].remote_address.value_of(kProtocolIp4), "127.0.0.1");

  EXPECT_EQ(alice.host().connected_peers(), std::vector<PeerId>{bob.id()});
  EXPECT_EQ(bob.host().connected_peers(), std::vector<PeerId>{alice.id()});
  ASSERT_NE(bob.host().connection_to(alice.id()), nullptr);
  EXPECT_EQ(bob.host().connection_to(alice.id())->direction(), Direction::kInbound);
}

TEST_F(HostTest, ConnectingAgainReusesTheConnection) {
  auto first = connect(alice, bob.dial_address());
  ASSERT_TRUE(first) << first.error().message;
  auto second = connect(alice, bob.dial_address());
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(first->get(), second->get());
  EXPECT_EQ(alice.events.size(), 1u);
}

TEST_F(HostTest, IdentifyRunsAutomaticallyOnBothSides) {
  connect_and_identify(alice, bob);

  const PeerInfo* bob_seen_by_alice = alice.host().peer_info(bob.id());
  ASSERT_NE(bob_seen_by_alice, nullptr);
  EXPECT_EQ(bob_seen_by_alice->agent_version, "test-agent/bob");
  EXPECT_EQ(bob_seen_by_alice->protocol_version, HostConfig{}.protocol_version);
  EXPECT_TRUE(lists(bob_seen_by_alice->protocols, identify::kProtocolId));
  EXPECT_TRUE(lists(bob_seen_by_alice->protocols, ping::kProtocolId));
  EXPECT_TRUE(lists(bob_seen_by_alice->protocols, kEchoProtocol));
  EXPECT_NE(std::find(bob_seen_by_alice->addresses.begin(), bob_seen_by_alice->addresses.end(),
                      bob.listen_address()),
            bob_seen_by_alice->addresses.end());
  ASSERT_TRUE(bob_seen_by_alice->observed_address.has_value());
  EXPECT_EQ(bob_seen_by_alice->observed_address->value_of(kProtocolIp4), "127.0.0.1");

  const PeerInfo* alice_seen_by_bob = bob.host().peer_info(alice.id());
  ASSERT_NE(alice_seen_by_bob, nullptr);
  EXPECT_EQ(alice_seen_by_bob->agent_version, "test-agent/alice");
  EXPECT_TRUE(lists(alice_seen_by_bob->protocols, identify::kProtocolId));
  EXPECT_TRUE(lists(alice_seen_by_bob->protocols, ping::kProtocolId));
  EXPECT_TRUE(lists(alice_seen_by_bob->protocols, kEchoProtocol));
  // Alice listens too: Bob learns her listen address from identify, not just her ephemeral port.
  EXPECT_NE(std::find(alice_seen_by_bob->addresses.begin(), alice_seen_by_bob->addresses.end(),
                      alice.listen_address()),
            alice_seen_by_bob->addresses.end());
  ASSERT_TRUE(alice_seen_by_bob->observed_address.has_value());
  EXPECT_EQ(alice_seen_by_bob->observed_address->value_of(kProtocolIp4), "127.0.0.1");
  // Alice dialled Bob's listen port, so that is the port she reports having observed for him.
  EXPECT_EQ(alice_seen_by_bob->observed_address->value_of(kProtocolTcp),
            bob.listen_address().value_of(kProtocolTcp));

  EXPECT_TRUE(lists(alice.identified_peers, bob.id()));
  EXPECT_TRUE(lists(bob.identified_peers, alice.id()));
}

TEST_F(HostTest, PeersWithRsaSecp256k1AndEcdsaKeysConnectIdentifyAndPing) {
  TestPeer rsa(io, "test-agent/rsa", KeyType::kRsa);
  TestPeer secp256k1(io, "test-agent/secp256k1", KeyType::kSecp256k1);
  TestPeer ecdsa(io, "test-agent/ecdsa", KeyType::kEcdsa);
  EXPECT_TRUE(rsa.id().to_base58().starts_with("Qm"));
  EXPECT_TRUE(secp256k1.id().to_base58().starts_with("16Uiu2"));
  EXPECT_TRUE(ecdsa.id().to_base58().starts_with("Qm"));

  connect_and_identify(rsa, secp256k1);
  connect_and_identify(alice, rsa);
  connect_and_identify(ecdsa, rsa);
  const PeerInfo* rsa_seen_by_secp256k1 = secp256k1.host().peer_info(rsa.id());
  ASSERT_NE(rsa_seen_by_secp256k1, nullptr);
  EXPECT_EQ(rsa_seen_by_secp256k1->agent_version, "test-agent/rsa");
  const PeerInfo* secp256k1_seen_by_rsa = rsa.host().peer_info(secp256k1.id());
  ASSERT_NE(secp256k1_seen_by_rsa, nullptr);
  EXPECT_EQ(secp256k1_seen_by_rsa->agent_version, "test-agent/secp256k1");
  const PeerInfo* rsa_seen_by_alice = alice.host().peer_info(rsa.id());
  ASSERT_NE(rsa_seen_by_alice, nullptr);
  EXPECT_EQ(rsa_seen_by_alice->agent_version, "test-agent/rsa");
  const PeerInfo* ecdsa_seen_by_rsa = rsa.host().peer_info(ecdsa.id());
  ASSERT_NE(ecdsa_seen_by_rsa, nullptr);
  EXPECT_EQ(ecdsa_seen_by_rsa->agent_version, "test-agent/ecdsa");
  auto rtt = ping(secp256k1, rsa.id());
  EXPECT_TRUE(rtt) << rtt.error().message;
}

TEST_F(HostTest, EchoesFourMebibytesOnACustomProtocol) {
  connect_and_identify(alice, bob);
  auto stream = open_stream(alice, bob.id(), {std::string(kEchoProtocol)});
  ASSERT_TRUE(stream) << stream.error().message;
  EXPECT_EQ((*stream)->protocol(), kEchoProtocol);
  EXPECT_EQ((*stream)->direction(), Direction::kOutbound);
  EXPECT_EQ((*stream)->remote_peer(), bob.id());

  const Bytes payload = patterned_bytes(4 * 1024 * 1024, 7);
  auto echoed = exchange_on(**stream, payload);
  ASSERT_TRUE(echoed) << echoed.error().message;
  ASSERT_EQ(echoed->size(), payload.size());
  EXPECT_TRUE(*echoed == payload) << "echoed bytes differ";
}

TEST_F(HostTest, StreamToAnUnsupportedProtocolFailsNamingIt) {
  connect_and_identify(alice, bob);
  auto stream = open_stream(alice, bob.id(), {"/test/unsupported/1.0.0"});
  ASSERT_FALSE(stream);
  EXPECT_TRUE(contains(stream.error().message, "/test/unsupported/1.0.0"))
      << stream.error().message;
  // The refusal concerns one stream only: the connection goes on serving.
  EXPECT_NE(alice.host().connection_to(bob.id()), nullptr);
  auto rtt = ping(alice, bob.id());
  EXPECT_TRUE(rtt) << rtt.error().message;
}

TEST_F(HostTest, NegotiationPicksTheSecondProtocolWhenTheFirstIsUnsupported) {
  connect_and_identify(alice, bob);
  auto stream =
      open_stream(alice, bob.id(), {"/test/unsupported/1.0.0", std::string(kEchoProtocol)});
  ASSERT_TRUE(stream) << stream.error().message;
  EXPECT_EQ((*stream)->protocol(), kEchoProtocol);
  const Bytes payload = patterned_bytes(1000, 3);
  auto echoed = exchange_on(**stream, payload);
  ASSERT_TRUE(echoed) << echoed.error().message;
  EXPECT_EQ(*echoed, payload);
}

TEST_F(HostTest, NewStreamToAnUnconnectedPeerFails) {
  auto stream = open_stream(alice, bob.id(), {std::string(kEchoProtocol)});
  ASSERT_FALSE(stream);
  EXPECT_TRUE(contains(stream.error().message, bob.id().to_string())) << stream.error().message;
}

TEST_F(HostTest, PingReturnsAPositiveRoundTripSeveralTimesInARow) {
  connect_and_identify(alice, bob);
  for (int i = 0; i < 5; ++i) {
    auto rtt = ping(alice, bob.id());
    ASSERT_TRUE(rtt) << "ping " << i << ": " << rtt.error().message;
    EXPECT_GT(rtt->count(), 0) << "ping " << i;
  }
  // The listener serves pings and can also ping back over the same connection.
  for (int i = 0; i < 3; ++i) {
    auto rtt = ping(bob, alice.id());
    ASSERT_TRUE(rtt) << "ping back " << i << ": " << rtt.error().message;
    EXPECT_GT(rtt->count(), 0);
  }
  EXPECT_EQ(alice.host().connected_peers().size(), 1u);
}

TEST_F(HostTest, DialingTheWrongPeerIdFailsNamingBothIdsAndLeavesNoConnection) {
  TestPeer carol(io, "test-agent/carol");
  // Bob's address, but Carol's ID.
  Multiaddr wrong = bob.listen_address().with_peer_id(carol.id());
  auto connection = connect(alice, wrong);
  ASSERT_FALSE(connection);
  EXPECT_TRUE(contains(connection.error().message, "mismatch")) << connection.error().message;
  EXPECT_TRUE(contains(connection.error().message, carol.id().to_string()))
      << connection.error().message;
  EXPECT_TRUE(contains(connection.error().message, bob.id().to_string()))
      << connection.error().message;

  // Bob sees the abandoned handshake fail and keeps nothing either.
  ASSERT_TRUE(run_until(io, [&] { return !bob.inbound_failures.empty(); }));
  EXPECT_TRUE(alice.host().connected_peers().empty());
  EXPECT_TRUE(bob.host().connected_peers().empty());
  EXPECT_TRUE(alice.events.empty());
  EXPECT_TRUE(bob.events.empty());
  EXPECT_EQ(alice.host().connection_to(bob.id()), nullptr);

  // The right ID still works afterwards.
  auto right = connect(alice, bob.dial_address());
  EXPECT_TRUE(right) << right.error().message;
}

TEST_F(HostTest, DialingOurselvesFails) {
  auto connection = connect(alice, alice.dial_address());
  ASSERT_FALSE(connection);
  EXPECT_TRUE(contains(connection.error().message, "ourselves")) << connection.error().message;
  EXPECT_TRUE(alice.host().connected_peers().empty());
  EXPECT_TRUE(alice.events.empty());
}

TEST_F(HostTest, DialingAClosedPortFails) {
  asio::ip::tcp::acceptor probe(io,
                                asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto closed_port = probe.local_endpoint().port();
  probe.close();
  auto address = Multiaddr::parse("/ip4/127.0.0.1/tcp/" + std::to_string(closed_port) + "/p2p/" +
                                  bob.id().to_string());
  ASSERT_TRUE(address);
  auto connection = connect(alice, *address);
  ASSERT_FALSE(connection);
  EXPECT_TRUE(contains(connection.error().message, std::to_string(closed_port)))
      << connection.error().message;
  EXPECT_TRUE(alice.host().connected_peers().empty());
}

TEST_F(HostTest, DialingWithoutAPeerIdFails) {
  auto connection = connect(alice, bob.listen_address());
  ASSERT_FALSE(connection);
  EXPECT_TRUE(contains(connection.error().message, "/p2p/")) << connection.error().message;
}

TEST_F(HostTest, DisconnectRaisesEventsOnBothSidesAndForgetsThePeer) {
  connect_and_identify(alice, bob);
  alice.host().disconnect(bob.id());
  ASSERT_TRUE(run_until(io, [&] {
    return alice.disconnect_events() == 1 && bob.disconnect_events() == 1;
  })) << "missing disconnect events";

  ASSERT_EQ(alice.events.size(), 2u);
  EXPECT_FALSE(alice.events[1].connected);
  EXPECT_EQ(alice.events[1].peer, bob.id());
  ASSERT_EQ(bob.events.size(), 2u);
  EXPECT_FALSE(bob.events[1].connected);
  EXPECT_EQ(bob.events[1].peer, alice.id());
  EXPECT_TRUE(alice.host().connected_peers().empty());
  EXPECT_TRUE(bob.host().connected_peers().empty());
  EXPECT_EQ(alice.host().connection_to(bob.id()), nullptr);
  EXPECT_EQ(bob.host().connection_to(alice.id()), nullptr);

  // What identify learned survives the disconnect, and the peers can reconnect.
  EXPECT_NE(alice.host().peer_info(bob.id()), nullptr);
  auto again = connect(alice, bob.dial_address());
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_TRUE(run_until(io, [&] { return bob.host().connected_peers().size() == 1; }));
}

TEST_F(HostTest, StreamsOfAClosedConnectionFailTheirReadsAndWrites) {
  connect_and_identify(alice, bob);
  auto stream = open_stream(alice, bob.id(), {std::string(kHoldProtocol)});
  ASSERT_TRUE(stream) << stream.error().message;
  ASSERT_TRUE(run_until(io, [&] { return bob.held_streams.size() == 1; }));
  std::shared_ptr<Stream> bobs_end = bob.held_streams[0];

  // Reads already waiting when the connection goes must fail too.
  auto alice_pending_read = std::make_shared<std::optional<Expected<std::size_t>>>();
  asio::co_spawn(
      io,
      [stream = *stream, alice_pending_read]() -> asio::awaitable<void> {
        Bytes buffer(16);
        alice_pending_read->emplace(co_await stream->read_some(buffer));
      },
      asio::detached);
  run_pending(io);

  alice.host().disconnect(bob.id());
  ASSERT_TRUE(run_until(
      io, [&] { return alice.disconnect_events() == 1 && bob.disconnect_events() == 1; }));
  ASSERT_TRUE(run_until(io, [&] { return alice_pending_read->has_value(); }));
  EXPECT_FALSE(**alice_pending_read);

  for (Stream* end : {stream->get(), bobs_end.get()}) {
    auto read = run_coroutine(io, [&]() -> asio::awaitable<Expected<std::size_t>> {
      Bytes buffer(16);
      co_return co_await end->read_some(buffer);
    });
    ASSERT_TRUE(read.has_value());
    EXPECT_FALSE(*read) << "read on a closed connection succeeded";
    auto written = run_coroutine(io, [&]() -> asio::awaitable<Expected<void>> {
      co_return co_await end->write_all(text_bytes("too late"));
    });
    ASSERT_TRUE(written.has_value());
    EXPECT_FALSE(*written) << "write on a closed connection succeeded";
  }
  EXPECT_EQ(alice.host().connection_to(bob.id()), nullptr);
}

TEST_F(HostTest, HalfCloseDeliversEofAfterTheDataAndKeepsTheOtherDirection) {
  connect_and_identify(alice, bob);
  auto stream = open_stream(alice, bob.id(), {std::string(kHalfCloseProtocol)});
  ASSERT_TRUE(stream) << stream.error().message;

  auto closed = run_coroutine(io, [&]() -> asio::awaitable<Expected<void>> {
    co_return co_await write_and_close(**stream, text_bytes("hello"));
  });
  ASSERT_TRUE(closed.has_value());
  ASSERT_TRUE(*closed) << closed->error().message;

  // Bob read "hello" and then EOF (read_until_eof returns only on a zero-byte read).
  ASSERT_TRUE(run_until(io, [&] { return bob.half_close_records.size() == 1; }));
  ASSERT_TRUE(bob.half_close_records[0].received)
      << bob.half_close_records[0].received.error().message;
  EXPECT_EQ(*bob.half_close_records[0].received, text_bytes("hello"));

  // Our direction is closed, Bob's is not: his answer arrives, then his own EOF.
  auto answer = run_coroutine(io, [&]() -> asio::awaitable<Expected<Bytes>> {
    co_return co_await read_until_eof(**stream);
  });
  ASSERT_TRUE(answer.has_value());
  ASSERT_TRUE(*answer) << answer->error().message;
  EXPECT_EQ(**answer, text_bytes("received 5"));

  auto after_eof = run_coroutine(io, [&]() -> asio::awaitable<Expected<std::size_t>> {
    Bytes buffer(16);
    co_return co_await (*stream)->read_some(buffer);
  });
  ASSERT_TRUE(after_eof.has_value());
  ASSERT_TRUE(*after_eof) << after_eof->error().message;
  EXPECT_EQ(**after_eof, 0u) << "EOF is sticky";

  auto write_after_close = run_coroutine(io, [&]() -> asio::awaitable<Expected<void>> {
    co_return co_await (*stream)->write_all(text_bytes("more"));
  });
  ASSERT_TRUE(write_after_close.has_value());
  EXPECT_FALSE(*write_after_close) << "write after close_write succeeded";
}

TEST_F(HostTest, AbortFailsThePeersPendingRead) {
  connect_and_identify(alice, bob);
  auto stream = open_stream(alice, bob.id(), {std::string(kHoldProtocol)});
  ASSERT_TRUE(stream) << stream.error().message;
  ASSERT_TRUE(run_until(io, [&] { return bob.held_streams.size() == 1; }));
  std::shared_ptr<Stream> bobs_end = bob.held_streams[0];

  auto bob_read = std::make_shared<std::optional<Expected<std::size_t>>>();
  asio::co_spawn(
      io,
      [bobs_end, bob_read]() -> asio::awaitable<void> {
        Bytes buffer(16);
        bob_read->emplace(co_await bobs_end->read_some(buffer));
      },
      asio::detached);
  run_pending(io);
  EXPECT_FALSE(bob_read->has_value());

  (*stream)->abort();
  ASSERT_TRUE(run_until(io, [&] { return bob_read->has_value(); })) << "the read did not end";
  EXPECT_FALSE(**bob_read) << "read after the peer's abort succeeded";

  // Bob's writes fail too, and the aborting side cannot use its stream any more.
  auto bob_write = run_coroutine(io, [&]() -> asio::awaitable<Expected<void>> {
    co_return co_await bobs_end->write_all(text_bytes("anyone?"));
  });
  ASSERT_TRUE(bob_write.has_value());
  EXPECT_FALSE(*bob_write);
  auto alice_read = run_coroutine(io, [&]() -> asio::awaitable<Expected<std::size_t>> {
    Bytes buffer(16);
    co_return co_await (*stream)->read_some(buffer);
  });
  ASSERT_TRUE(alice_read.has_value());
  EXPECT_FALSE(*alice_read);

  // One stream's reset leaves the connection up.
  auto rtt = ping(alice, bob.id());
  EXPECT_TRUE(rtt) << rtt.error().message;
}

TEST_F(HostTest, TwoHundredConcurrentStreamsAllCompleteAnEcho) {
  connect_and_identify(alice, bob);
  constexpr int kStreams = 200;
  constexpr std::size_t kPayloadSize = 8 * 1024;
  int succeeded = 0;
  int finished = 0;
  std::vector<std::string> failures;
  for (int i = 0; i < kStreams; ++i) {
    asio::co_spawn(
        io,
        [&, i]() -> asio::awaitable<void> {
          Strings protocols{std::string(kEchoProtocol)};
          auto stream = co_await alice.host().new_stream(bob.id(), std::move(protocols));
          if (!stream) {
            failures.push_back("stream " + std::to_string(i) + ": " + stream.error().message);
          } else {
            const Bytes payload = patterned_bytes(kPayloadSize, static_cast<std::uint32_t>(i));
            auto echoed = co_await send_and_receive(**stream, payload);
            if (!echoed) {
              failures.push_back("stream " + std::to_string(i) + ": " + echoed.error().message);
            } else if (*echoed != payload) {
              failures.push_back("stream " + std::to_string(i) + ": echo differs");
            } else {
              ++succeeded;
            }
          }
          ++finished;
        },
        asio::detached);
  }
  ASSERT_TRUE(run_until(io, [&] { return finished == kStreams; }))
      << finished << " of " << kStreams << " streams finished";
  EXPECT_EQ(succeeded, kStreams);
  for (const auto& failure : failures)
    ADD_FAILURE() << failure;
  EXPECT_EQ(alice.host().connected_peers().size(), 1u);
}

TEST_F(HostTest, ThreeHostsKeepSeparateConnections) {
  TestPeer carol(io, "test-agent/carol");
  connect_and_identify(alice, bob);
  connect_and_identify(carol, alice);
  auto peers = alice.host().connected_peers();
  EXPECT_EQ(peers.size(), 2u);
  EXPECT_TRUE(lists(peers, bob.id()));
  EXPECT_TRUE(lists(peers, carol.id()));
  EXPECT_EQ(alice.host().peer_info(carol.id())->agent_version, "test-agent/carol");

  alice.host().disconnect(carol.id());
  ASSERT_TRUE(run_until(io, [&] { return carol.disconnect_events() == 1; }));
  EXPECT_EQ(alice.host().connected_peers(), std::vector<PeerId>{bob.id()});
  auto rtt = ping(bob, alice.id());
  EXPECT_TRUE(rtt) << rtt.error().message;
}

TEST_F(HostTest, CloseEndsConnectionsAndStopsListening) {
  connect_and_identify(alice, bob);
  bob.host().close();
  ASSERT_TRUE(run_until(io, [&] {
    return alice.disconnect_events() == 1 && bob.disconnect_events() == 1;
  })) << "missing disconnect events";
  EXPECT_TRUE(alice.host().connected_peers().empty());
  EXPECT_TRUE(bob.host().connected_peers().empty());

  // Bob no longer accepts connections.
  auto again = connect(alice, bob.dial_address());
  EXPECT_FALSE(again);
  EXPECT_TRUE(alice.host().connected_peers().empty());
  EXPECT_EQ(alice.disconnect_events(), 1u);
}

TEST_F(HostTest, DestroyingAHostWhileTheLoopRunsOnDisconnectsItsPeers) {
  auto carol = std::make_unique<TestPeer>(io, "test-agent/carol");
  connect_and_identify(*carol, bob);
  // Leave a stream open and a ping stream served, so the host dies with work in flight.
  auto held = open_stream(*carol, bob.id(), {std::string(kHoldProtocol)});
  ASSERT_TRUE(held) << held.error().message;
  const PeerId carol_id = carol->id();
  carol.reset();

  ASSERT_TRUE(run_until(io, [&] { return bob.disconnect_events() == 1; }));
  EXPECT_EQ(bob.events.back().peer, carol_id);
  EXPECT_TRUE(bob.host().connected_peers().empty());
  auto read = run_coroutine(io, [&]() -> asio::awaitable<Expected<std::size_t>> {
    Bytes buffer(16);
    co_return co_await (*held)->read_some(buffer);
  });
  ASSERT_TRUE(read.has_value());
  EXPECT_FALSE(*read);
  // Bob goes on serving others.
  connect_and_identify(alice, bob);
  auto rtt = ping(alice, bob.id());
  EXPECT_TRUE(rtt) << rtt.error().message;
}

}  // namespace
}  // namespace an::p2p::net::test

namespace an::p2p::net::test {
namespace {

TEST_F(HostTest, DialsIpv6AndDnsAddresses) {
  auto ipv6 = Multiaddr::parse("/ip6/::1/tcp/0");
  ASSERT_TRUE(ipv6);
  auto bound = bob.host().listen(*ipv6);
  if (!bound) GTEST_SKIP() << "no IPv6 loopback here: " << bound.error().message;
  auto over_ipv6 = connect(alice, bound->with_peer_id(bob.id()));
  ASSERT_TRUE(over_ipv6) << over_ipv6.error().message;
  EXPECT_EQ((*over_ipv6)->remote_address().value_of(kProtocolIp6), "::1");
  alice.host().disconnect(bob.id());
  ASSERT_TRUE(run_until(io, [&] { return alice.host().connected_peers().empty(); }));

  auto port = bob.listen_address().value_of(kProtocolTcp);
  ASSERT_TRUE(port);
  auto by_name = Multiaddr::parse("/dns4/localhost/tcp/" + *port + "/p2p/" + bob.id().to_string());
  ASSERT_TRUE(by_name);
  auto over_dns = connect(alice, *by_name);
  ASSERT_TRUE(over_dns) << over_dns.error().message;
  EXPECT_EQ((*over_dns)->remote_address().value_of(kProtocolIp4), "127.0.0.1");
}

}  // namespace
}  // namespace an::p2p::net::test

namespace an::p2p::net::test {
namespace {

TEST_F(HostTest, OptimisticStreamCarriesDataWrittenBeforeTheAnswer) {
  connect_and_identify(alice, bob);
  auto stream = alice.host().new_stream_optimistic(bob.id(), std::string(kEchoProtocol));
  ASSERT_TRUE(stream) << stream.error().message;
  const Bytes payload = patterned_bytes(100000, 9);
  auto echoed = exchange_on(**stream, payload);
  ASSERT_TRUE(echoed) << echoed.error().message;
  EXPECT_EQ(*echoed, payload);
}

TEST_F(HostTest, OptimisticStreamToAnUnsupportedProtocolFailsOnFirstRead) {
  connect_and_identify(alice, bob);
  auto stream = alice.host().new_stream_optimistic(bob.id(), "/test/unsupported/1.0.0");
  ASSERT_TRUE(stream) << stream.error().message;
  auto echoed = exchange_on(**stream, patterned_bytes(10, 1));
  ASSERT_FALSE(echoed);
  // The connection survives the refusal.
  auto rtt = ping(alice, bob.id());
  EXPECT_TRUE(rtt) << rtt.error().message;
}

}  // namespace
}  // namespace an::p2p::net::test
