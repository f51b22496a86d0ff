// Content routing and public keys through the node-level Dht over 127.0.0.1: provide on one
// host and find from another, the count limit, unknown keys, expired providers, the deadline and
// the caller's cancellation, hostile GET_PROVIDERS answers, and get_public_key from the ID, from
// identify and from /pk/ records. Every wait is bounded.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "p2p/crypto/keys.h"
#include "p2p/kad/io/dht.h"
#include "p2p/kad/message.h"
#include "p2p/net/framed.h"
#include "unit/p2p/net/net_test_support.h"

namespace an::p2p::net::test {
namespace {

using kad::Dht;
using kad::DhtConfig;
using kad::DhtMode;
using kad::DhtProvider;
using kad::DhtProviderCallback;
using kad::kDhtRequestTimeout;
using kad::kMaxDhtProviderKeySize;

using namespace std::chrono_literals;

// Appends one protobuf length-delimited field to `message`.
void append_field(Bytes& message, std::uint8_t tag, const Bytes& value) {
  message.push_back(tag);
  append_varint(message, value.size());
  message.insert(message.end(), value.begin(), value.end());
}

constexpr std::uint8_t kPeerIdTag = 0x0a;         // Peer.id = 1
constexpr std::uint8_t kPeerAddrsTag = 0x12;      // Peer.addrs = 2
constexpr std::uint8_t kProviderPeersTag = 0x4a;  // Message.providerPeers = 9

// A PublicKey protobuf too long to be inlined in a peer ID (as RSA keys are): its ID is a
// sha2-256 multihash. The key data is not a real RSA key; only the structure is checked.
Bytes long_public_key(std::uint8_t fill) {
  Bytes key{0x08, 0x00, 0x12};  // Type = RSA, Data: length follows
  const Bytes data(300, fill);
  append_varint(key, data.size());
  key.insert(key.end(), data.begin(), data.end());
  return key;
}

Bytes pk_record_key(const PeerId& peer) {
  Bytes key = text_bytes("/pk/");
  key.insert(key.end(), peer.bytes().begin(), peer.bytes().end());
  return key;
}

// Answers kad requests on a host without a DhtServer: `answer` gives the encoded answer to each
// request (nullopt: none); FIND_NODE and others it does not script get an empty answer.
using ScriptedAnswer = std::function<std::optional<Bytes>(const kad::Message&)>;

void serve_scripted_kad(TestPeer& peer, ScriptedAnswer answer) {
  peer.host().set_handler(std::string(kad::kProtocolId),
                          [answer](std::shared_ptr<Stream> stream) -> asio::awaitable<void> {
                            for (;;) {
                              auto received = co_await read_framed(*stream, kad::kMaxMessageSize);
                              if (!received || !received->has_value()) break;
                              auto request = kad::decode(**received);
                              if (!request) break;
                              std::optional<Bytes> encoded = answer(*request);
                              if (!encoded) {
                                kad::Message empty;
                                empty.type = request->type;
                                encoded = kad::encode(empty);
                              }
                              if (!co_await write_framed(*stream, *encoded)) break;
                            }
                            (void)co_await stream->close_write();
                          });
}

class DhtProvidersTest : public ::testing::Test {
 protected:
  void add_host(std::chrono::steady_clock::duration request_timeout = kDhtRequestTimeout) {
    peers.push_back(std::make_unique<TestPeer>(io, "test-agent/" + std::to_string(peers.size())));
    DhtConfig config;
    config.mode = DhtMode::kServer;
    config.connection_target = 0;
    config.check_interval = 200ms;
    config.client.request_timeout = request_timeout;
    dhts.push_back(std::make_unique<Dht>(peers.back()->host(), io.get_executor(), config));
    dhts.back()->start();
  }

  void connect(TestPeer& from, TestPeer& to) {
    auto connection =
        run_coroutine(io, [&]() -> asio::awaitable<Expected<std::shared_ptr<Connection>>> {
          co_return co_await from.host().connect(to.dial_address());
        });
    ASSERT_TRUE(connection && *connection) << (connection ? connection->error().message : "");
  }
  void connect(std::size_t from, std::size_t to) { connect(*peers[from], *peers[to]); }

  // Background lookups (self-lookup, refreshes) would otherwise race the tests' own.
  void wait_for_first_upkeep_rounds() {
    ASSERT_TRUE(run_until(io, [&] {
      for (const auto& dht : dhts) {
        if (dht->upkeep_stats().rounds == 0) return false;
      }
      return true;
    }));
  }

  Expected<std::size_t> provide(std::size_t host, const Bytes& key) {
    auto result = run_coroutine(io, [&]() -> asio::awaitable<Expected<std::size_t>> {
      co_return co_await dhts[host]->provide(key, std::chrono::steady_clock::now() + 10s);
    });
    if (!result) return fail("provide did not finish");
    return std::move(*result);
  }

  Expected<std::vector<DhtProvider>> find(std::size_t host, const Bytes& key, std::size_t count,
                                          DhtProviderCallback on_provider = {}) {
    auto result = run_coroutine(io, [&]() -> asio::awaitable<Expected<std::vector<DhtProvider>>> {
      co_return co_await dhts[host]->find_providers(
          key, count, std::chrono::steady_clock::now() + 10s, std::move(on_provider));
    });
    if (!result) return fail("find_providers did not finish");
    return std::move(*result);
  }

  static bool has_provider(const std::vector<DhtProvider>& providers, const PeerId& id) {
    return std::any_of(providers.begin(), providers.end(),
                       [&](const DhtProvider& provider) { return provider.id == id; });
  }

  void TearDown() override {
    for (auto& dht : dhts)
      dht->stop();
    run_pending(io);
  }

  asio::io_context io;
  std::vector<std::unique_ptr<TestPeer>> peers;
  std::vector<std::unique_ptr<Dht>> dhts;
};

TEST_F(DhtProvidersTest, AProviderIsFoundFromTheFarEndOfAChain) {
  for (std::size_t i = 0; i < 5; ++i)
    add_host();
  // A chain: 1 - 0 - 2 - 3 - 4.
  ASSERT_NO_FATAL_FAILURE(connect(1, 0));
  ASSERT_NO_FATAL_FAILURE(connect(2, 0));
  ASSERT_NO_FATAL_FAILURE(connect(3, 2));
  ASSERT_NO_FATAL_FAILURE(connect(4, 3));
  ASSERT_NO_FATAL_FAILURE(wait_for_first_upkeep_rounds());

  const Bytes key = text_bytes("a content multihash");
  auto accepted = provide(1, key);
  ASSERT_TRUE(accepted) << accepted.error().message;
  EXPECT_GE(*accepted, 1u);
  EXPECT_GE(dhts[4]->server().providers().size(), 1u) << "the far end took the announcement";

  // Host 5 joins at the far end after the announcement: its own store is empty, so only the
  // GET_PROVIDERS walk can find the provider.
  add_host();
  ASSERT_NO_FATAL_FAILURE(connect(5, 4));
  ASSERT_NO_FATAL_FAILURE(wait_for_first_upkeep_rounds());
  ASSERT_EQ(dhts[5]->server().providers().size(), 0u);

  std::vector<DhtProvider> streamed;
  auto found = find(5, key, 0, [&](const DhtProvider& provider) { streamed.push_back(provider); });
  ASSERT_TRUE(found) << found.error().message;
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0].id, peers[1]->id());
  const auto& addresses = (*found)[0].addresses;
  EXPECT_NE(std::find(addresses.begin(), addresses.end(), peers[1]->listen_address()),
            addresses.end());
  EXPECT_EQ(streamed, *found);

  // The provider's own store answers first.
  auto own = find(1, key, 1);
  ASSERT_TRUE(own) << own.error().message;
  ASSERT_EQ(own->size(), 1u);
  EXPECT_EQ((*own)[0].id, peers[1]->id());
}

TEST_F(DhtProvidersTest, WithoutPeersAProviderIsStoredHereOnly) {
  add_host();
  const Bytes key = text_bytes("lonely content");
  auto accepted = provide(0, key);
  ASSERT_TRUE(accepted) << accepted.error().message;
  EXPECT_EQ(*accepted, 0u);
  auto found = find(0, key, 0);
  ASSERT_TRUE(found) << found.error().message;
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0].id, peers[0]->id());

  // Keys that DHT servers would refuse are refused here.
  EXPECT_FALSE(provide(0, Bytes{}));
  EXPECT_FALSE(provide(0, Bytes(kMaxDhtProviderKeySize + 1, 0x42)));
  EXPECT_FALSE(find(0, Bytes{}, 0));
}

TEST_F(DhtProvidersTest, TheCountLimitsTheProvidersFoundAndAnUnknownKeyHasNone) {
  for (std::size_t i = 0; i < 4; ++i)
    add_host();
  for (std::size_t i = 1; i < 4; ++i)
    ASSERT_NO_FATAL_FAILURE(connect(i, 0));
  ASSERT_NO_FATAL_FAILURE(wait_for_first_upkeep_rounds());
  const Bytes key = text_bytes("popular content");
  for (std::size_t i = 1; i <= 3; ++i) {
    auto accepted = provide(i, key);
    ASSERT_TRUE(accepted) << accepted.error().message;
    EXPECT_GE(*accepted, 1u);
  }
  // The finder joins afterwards, so that it walks rather than answering from its own store.
  add_host();
  ASSERT_NO_FATAL_FAILURE(connect(4, 0));
  ASSERT_NO_FATAL_FAILURE(wait_for_first_upkeep_rounds());
  ASSERT_EQ(dhts[4]->server().providers().size(), 0u);

  auto all = find(4, key, 0);
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_EQ(all->size(), 3u);
  for (std::size_t i = 1; i <= 3; ++i)
    EXPECT_TRUE(has_provider(*all, peers[i]->id())) << "host " << i;

  std::size_t streamed = 0;
  auto two = find(4, key, 2, [&](const DhtProvider&) { ++streamed; });
  ASSERT_TRUE(two) << two.error().message;
  EXPECT_EQ(two->size(), 2u);
  EXPECT_EQ(streamed, 2u);

  auto none = find(4, text_bytes("content nobody has"), 0);
  ASSERT_TRUE(none) << none.error().message;
  EXPECT_TRUE(none->empty());
}

TEST_F(DhtProvidersTest, ExpiredProvidersAreNotReturned) {
  add_host();
  add_host();
  ASSERT_NO_FATAL_FAILURE(connect(1, 0));
  ASSERT_NO_FATAL_FAILURE(wait_for_first_upkeep_rounds());
  const Bytes key = text_bytes("content with an old provider");
  const LocalIdentity stale = make_identity();
  const LocalIdentity fresh = make_identity();
  const auto now = std::chrono::system_clock::now();
  // Added longer ago than the validity: expired now.
  ASSERT_TRUE(dhts[0]->server().providers().add(key, stale.peer_id, {peers[0]->listen_address()},
                                                now - kad::kProviderValidity - 1h));
  ASSERT_TRUE(
      dhts[0]->server().providers().add(key, fresh.peer_id, {peers[0]->listen_address()}, now));

  auto found = find(1, key, 0);
  ASSERT_TRUE(found) << found.error().message;
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0].id, fresh.peer_id);
}

TEST_F(DhtProvidersTest, ProvidersFromOurOwnStoreComeWithoutP2p) {
  // js-libp2p announces its addresses with /p2p/<its ID>; the store keeps them as announced, and
  // what find_providers hands out is as a walk's answers are: without it, and without addresses
  // naming another peer.
  add_host();
  const Bytes key = text_bytes("content a js peer provides");
  const LocalIdentity provider = make_identity();
  const LocalIdentity other = make_identity();
  const Multiaddr plain = peers[0]->listen_address();
  ASSERT_TRUE(dhts[0]->server().providers().add(
      key, provider.peer_id,
      {plain.with_peer_id(provider.peer_id), plain.with_peer_id(other.peer_id)},
      std::chrono::system_clock::now()));

  auto found = find(0, key, 0);
  ASSERT_TRUE(found) << found.error().message;
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0].id, provider.peer_id);
  std::vector<std::string> addresses;
  for (const auto& address : (*found)[0].addresses)
    addresses.push_back(address.to_string());
  EXPECT_EQ(addresses, std::vector<std::string>{plain.to_string()});
}

TEST_F(DhtProvidersTest, TheDeadlineOrTheCallerEndsAFind) {
  add_host();
  add_host(/*request_timeout=*/1h);
  // Host 0 reads requests and never answers.
  std::vector<std::shared_ptr<Stream>> held;
  peers[0]->host().set_handler(std::string(kad::kProtocolId),
                               [&held](std::shared_ptr<Stream> stream) -> asio::awaitable<void> {
                                 held.push_back(stream);
                                 co_return;
                               });
  ASSERT_NO_FATAL_FAILURE(connect(1, 0));
  ASSERT_TRUE(run_until(io, [&] { return dhts[1]->routing_table_size() >= 1; }));
  const Bytes key = text_bytes("content behind a silent peer");
  ASSERT_TRUE(dhts[1]->server().providers().add(key, peers[1]->id(), {peers[1]->listen_address()},
                                                std::chrono::system_clock::now()));

  // The deadline: what was found by then, here our own record.
  auto by_deadline =
      run_coroutine(io, [&]() -> asio::awaitable<Expected<std::vector<DhtProvider>>> {
        co_return co_await dhts[1]->find_providers(key, 0,
                                                   std::chrono::steady_clock::now() + 200ms);
      });
  ASSERT_TRUE(by_deadline && *by_deadline) << (by_deadline ? by_deadline->error().message : "");
  ASSERT_EQ((*by_deadline)->size(), 1u);
  EXPECT_EQ((**by_deadline)[0].id, peers[1]->id());

  // The caller stops waiting: the deadline and the request timeout are far beyond the test's
  // wait limit, only the cancellation can end it in time.
  auto raced = run_coroutine(io, [&]() -> asio::awaitable<int> {
    using namespace asio::experimental::awaitable_operators;
    asio::steady_timer timer(co_await asio::this_coro::executor, 100ms);
    auto outcome =
        co_await (dhts[1]->find_providers(key, 0, std::chrono::steady_clock::now() + 1h) ||
                  timer.async_wait(use_tuple));
    co_return static_cast<int>(outcome.index());
  });
  ASSERT_TRUE(raced);
  EXPECT_EQ(*raced, 1);
}

TEST_F(DhtProvidersTest, GarbageInAGetProvidersAnswerIsSkipped) {
  TestPeer hostile{io, "test-agent/hostile"};
  add_host();
  const LocalIdentity honest = make_identity();
  const LocalIdentity addressless = make_identity();
  const LocalIdentity elsewhere = make_identity();
  const Multiaddr good_address = peers[0]->listen_address();
  const Multiaddr other_peers_address = good_address.with_peer_id(elsewhere.peer_id);
  serve_scripted_kad(hostile, [&](const kad::Message& request) -> std::optional<Bytes> {
    if (request.type != kad::MessageType::kGetProviders) return std::nullopt;
    kad::Message reply;
    reply.type = kad::MessageType::kGetProviders;
    reply.key = request.key;
    // The honest provider, twice, once with an address that leads to another peer.
    reply.provider_peers.push_back(kad::Peer{honest.peer_id, {good_address, other_peers_address}});
    reply.provider_peers.push_back(kad::Peer{honest.peer_id, {good_address}});
    Bytes encoded = kad::encode(reply);
    // An ID that is no peer ID, an empty ID, and a peer whose only address does not parse.
    Bytes not_an_id;
    append_field(not_an_id, kPeerIdTag, text_bytes("not a multihash"));
    append_field(not_an_id, kPeerAddrsTag, good_address.to_bytes());
    append_field(encoded, kProviderPeersTag, not_an_id);
    Bytes empty_id;
    append_field(empty_id, kPeerIdTag, Bytes{});
    append_field(encoded, kProviderPeersTag, empty_id);
    Bytes bad_address;
    append_field(bad_address, kPeerIdTag, addressless.peer_id.bytes());
    append_field(bad_address, kPeerAddrsTag, Bytes{0xff, 0xff, 0xff});
    append_field(encoded, kProviderPeersTag, bad_address);
    return encoded;
  });
  ASSERT_NO_FATAL_FAILURE(connect(*peers[0], hostile));
  ASSERT_TRUE(run_until(io, [&] { return dhts[0]->routing_table().contains(hostile.id()); }));

  auto found = find(0, text_bytes("content"), 0);
  ASSERT_TRUE(found) << found.error().message;
  ASSERT_EQ(found->size(), 2u);
  EXPECT_EQ((*found)[0].id, honest.peer_id);
  EXPECT_EQ((*found)[0].addresses, std::vector<Multiaddr>{good_address});
  // A valid ID without usable addresses is still a provider (find_peer may know where it is).
  EXPECT_EQ((*found)[1].id, addressless.peer_id);
  EXPECT_TRUE((*found)[1].addresses.empty());
}

TEST_F(DhtProvidersTest, PublicKeysComeFromTheIdFromIdentifyOrFromPkRecords) {
  add_host();
  TestPeer records_holder{io, "test-agent/records"};
  const Bytes key_of_hashed_peer = long_public_key(0x11);
  auto hashed_peer = PeerId::from_encoded_public_key(key_of_hashed_peer);
  ASSERT_TRUE(hashed_peer);
  ASSERT_FALSE(hashed_peer->has_inline_public_key());
  auto impostor = PeerId::from_encoded_public_key(long_public_key(0x22));
  ASSERT_TRUE(impostor);
  // Answers /pk/ of the hashed peer with its key, and /pk/ of the impostor with that same
  // (wrong) key.
  serve_scripted_kad(records_holder, [&](const kad::Message& request) -> std::optional<Bytes> {
    if (request.type != kad::MessageType::kGetValue) return std::nullopt;
    kad::Message reply;
    reply.type = kad::MessageType::kGetValue;
    reply.key = request.key;
    if (request.key == pk_record_key(*hashed_peer) || request.key == pk_record_key(*impostor)) {
      reply.record = kad::Record{request.key, key_of_hashed_peer, ""};
    }
    return kad::encode(reply);
  });

  auto get_key = [&](const PeerId& peer) {
    auto result = run_coroutine(io, [&]() -> asio::awaitable<Expected<Bytes>> {
      co_return co_await dhts[0]->get_public_key(peer, std::chrono::steady_clock::now() + 10s);
    });
    return result ? std::move(*result) : Expected<Bytes>(fail("get_public_key did not finish"));
  };

  // Inlined in the ID: no network needed.
  auto inlined = get_key(records_holder.id());
  ASSERT_TRUE(inlined) << inlined.error().message;
  EXPECT_EQ(*inlined, records_holder.host().identity().key.public_key().protobuf());
  // Not known, no DHT peers to ask.
  EXPECT_FALSE(get_key(*hashed_peer));

  ASSERT_NO_FATAL_FAILURE(connect(*peers[0], records_holder));
  ASSERT_TRUE(
      run_until(io, [&] { return dhts[0]->routing_table().contains(records_holder.id()); }));
  // Identify kept the key it gave (checked against the ID).
  const PeerInfo* info = peers[0]->host().peer_info(records_holder.id());
  ASSERT_NE(info, nullptr);
  ASSERT_TRUE(info->public_key);
  EXPECT_EQ(*info->public_key, *inlined);

  auto from_record = get_key(*hashed_peer);
  ASSERT_TRUE(from_record) << from_record.error().message;
  EXPECT_EQ(*from_record, key_of_hashed_peer);
  // A record whose key does not hash to the ID is not taken.
  auto wrong = get_key(*impostor);
  ASSERT_FALSE(wrong);
  EXPECT_TRUE(contains(wrong.error().message, "none matching")) << wrong.error().message;
}

}  // namespace
}  // namespace an::p2p::net::test
