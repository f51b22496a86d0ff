// /plaintext/2.0.0: the Exchange message, and hosts that connect with it — alone, or chosen by
// multistream-select among other security protocols — and refuse a peer whose claimed ID does
// not match its key.
#include <gtest/gtest.h>

#include "p2p/crypto/keys.h"
#include "p2p/plaintext/io/plaintext_connection.h"
#include "p2p/wire/protobuf.h"
#include "unit/p2p/net/net_test_support.h"

namespace an::p2p::net::test {
namespace {

using plaintext::decode_plaintext_exchange;
using plaintext::encode_plaintext_exchange;

using Strings = std::vector<std::string>;

LocalIdentity identity_offering(Strings security) {
  LocalIdentity identity = make_identity();
  identity.security_protocols = std::move(security);
  return identity;
}

TEST(PlaintextExchangeTest, RoundTripsAndChecksTheIdAgainstTheKey) {
  LocalIdentity alice = make_identity();
  LocalIdentity bob = make_identity();
  Bytes alice_key = alice.key.public_key().protobuf();

  auto decoded = decode_plaintext_exchange(encode_plaintext_exchange(alice.peer_id, alice_key));
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(*decoded, alice.peer_id);

  auto mismatch = decode_plaintext_exchange(encode_plaintext_exchange(bob.peer_id, alice_key));
  ASSERT_FALSE(mismatch);
  EXPECT_TRUE(contains(mismatch.error().message, "does not belong"));

  EXPECT_FALSE(decode_plaintext_exchange(Bytes{}));
  EXPECT_FALSE(decode_plaintext_exchange(Bytes{0x0a, 0x05, 0x01}));  // truncated field
  Bytes id_only;
  pb::Writer(id_only).bytes_field(1, alice.peer_id.bytes());
  EXPECT_FALSE(decode_plaintext_exchange(id_only));
}

class PlaintextHostTest : public ::testing::Test {
 protected:
  Expected<std::shared_ptr<Connection>> connect(TestPeer& from, const Multiaddr& address) {
    auto result =
        run_coroutine(io, [&]() -> asio::awaitable<Expected<std::shared_ptr<Connection>>> {
          co_return co_await from.host().connect(address);
        });
    if (!result) return fail("connect did not finish");
    return std::move(*result);
  }

  asio::io_context io;
};

TEST_F(PlaintextHostTest, HostsConnectIdentifyAndEcho) {
  TestPeer alice(io, "alice", identity_offering({"/plaintext/2.0.0"}));
  TestPeer bob(io, "bob", identity_offering({"/plaintext/2.0.0"}));
  auto connection = connect(alice, bob.dial_address());
  ASSERT_TRUE(connection) << connection.error().message;
  ASSERT_TRUE(
      run_until(io, [&] { return alice.identified(bob.id()) && bob.identified(alice.id()); }));

  Strings protocols(1, std::string(kEchoProtocol));
  auto echoed = run_coroutine(io, [&]() -> asio::awaitable<Expected<Bytes>> {
    auto stream = co_await alice.host().new_stream(bob.id(), protocols);
    if (!stream) co_return tl::unexpected(stream.error());
    co_return co_await send_and_receive(**stream, patterned_bytes(1024 * 1024, 3));
  });
  ASSERT_TRUE(echoed && *echoed) << (echoed ? echoed->error().message : "did not finish");
  EXPECT_EQ(**echoed, patterned_bytes(1024 * 1024, 3));
}

TEST_F(PlaintextHostTest, NegotiatedWhenItIsTheOnlyCommonProtocol) {
  TestPeer alice(io, "alice", identity_offering({"/tls/1.0.0", "/plaintext/2.0.0"}));
  TestPeer bob(io, "bob", identity_offering({"/plaintext/2.0.0"}));
  auto connection = connect(alice, bob.dial_address());
  ASSERT_TRUE(connection) << connection.error().message;
  EXPECT_EQ((*connection)->remote_peer(), bob.id());
}

TEST_F(PlaintextHostTest, ListenerAcceptsEveryListedProtocol) {
  TestPeer alice(io, "alice", identity_offering({"/plaintext/2.0.0"}));
  TestPeer bob(io, "bob", identity_offering({"/noise", "/tls/1.0.0", "/plaintext/2.0.0"}));
  auto connection = connect(alice, bob.dial_address());
  ASSERT_TRUE(connection) << connection.error().message;
  EXPECT_EQ((*connection)->remote_peer(), bob.id());
}

// Noise first: proposed together with the first handshake message, so a peer without Noise is
// not reached (documented; every libp2p implementation has Noise).
TEST_F(PlaintextHostTest, NoiseFirstIsProposedAloneWhenDialing) {
  TestPeer alice(io, "alice", identity_offering({"/noise", "/plaintext/2.0.0"}));
  TestPeer bob(io, "bob", identity_offering({"/plaintext/2.0.0"}));
  auto connection = connect(alice, bob.dial_address());
  ASSERT_FALSE(connection);
  EXPECT_TRUE(contains(connection.error().message, "security negotiation"))
      << connection.error().message;
}

TEST_F(PlaintextHostTest, NoCommonProtocolFailsTheDial) {
  TestPeer alice(io, "alice", identity_offering({"/plaintext/2.0.0"}));
  TestPeer bob(io, "bob");  // Noise only, the default
  auto connection = connect(alice, bob.dial_address());
  ASSERT_FALSE(connection);
  EXPECT_TRUE(contains(connection.error().message, "security negotiation"))
      << connection.error().message;
}

TEST_F(PlaintextHostTest, DialingTheWrongPeerIdIsRefused) {
  TestPeer alice(io, "alice", identity_offering({"/plaintext/2.0.0"}));
  TestPeer bob(io, "bob", identity_offering({"/plaintext/2.0.0"}));
  TestPeer carol(io, "carol", identity_offering({"/plaintext/2.0.0"}));
  auto connection = connect(alice, bob.listen_address().with_peer_id(carol.id()));
  ASSERT_FALSE(connection);
  EXPECT_TRUE(contains(connection.error().message, "but reached")) << connection.error().message;
}

TEST(UpgradeProtocolsTest, ValidationRefusesEmptyDuplicateAndUnknownLists) {
  LocalIdentity identity = make_identity();
  EXPECT_TRUE(validate_upgrade_protocols(identity));
  identity.security_protocols = {};
  EXPECT_FALSE(validate_upgrade_protocols(identity));
  identity.security_protocols = {"/noise", "/noise"};
  EXPECT_FALSE(validate_upgrade_protocols(identity));
  identity.security_protocols = {"/secio/1.0.0"};
  EXPECT_FALSE(validate_upgrade_protocols(identity));
  identity.security_protocols = {"/noise"};
  identity.muxers = {"/spdy/3.1.0"};
  EXPECT_FALSE(validate_upgrade_protocols(identity));
}

}  // namespace
}  // namespace an::p2p::net::test
