// The Host keeps its peer store bounded: it tells the store when a peer's first connection opens
// and its last one closes, so peers that come and go leave at most the cap of unconnected
// entries, the most recently seen ones.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "unit/p2p/net/net_test_support.h"

namespace an::p2p::net::test {
namespace {

TEST(HostPeerStore, VisitorsThatLeaveAreForgottenBeyondTheCapOldestFirst) {
  asio::io_context io;
  HostConfig config;
  config.peer_store.max_unconnected_peers = 3;
  Host alice(io, make_identity(), config);
  auto listening = alice.listen(*Multiaddr::parse("/ip4/127.0.0.1/tcp/0"));
  ASSERT_TRUE(listening) << listening.error().message;
  const Multiaddr alice_address = listening->with_peer_id(alice.peer_id());

  std::vector<PeerId> visitors;
  for (int i = 0; i < 8; ++i) {
    auto visitor = std::make_unique<TestPeer>(io, "visitor");
    auto connected =
        run_coroutine(io, [&]() -> asio::awaitable<Expected<std::shared_ptr<Connection>>> {
          co_return co_await visitor->host().connect(alice_address);
        });
    ASSERT_TRUE(connected && *connected);
    const PeerId id = visitor->id();
    ASSERT_TRUE(run_until(io,
                          [&] {
                            const PeerInfo* info = alice.peer_info(id);
                            return info != nullptr && info->identified;
                          }))
        << "visitor " << i << " not identified";
    EXPECT_TRUE(alice.peer_store().is_connected(id));
    visitor->host().disconnect(alice.peer_id());
    ASSERT_TRUE(run_until(io, [&] { return alice.connection_to(id) == nullptr; }));
    EXPECT_FALSE(alice.peer_store().is_connected(id));
    visitors.push_back(id);
    visitor.reset();
    run_pending(io);
    EXPECT_LE(alice.peer_store().size(), 3u);
  }
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(alice.peer_info(visitors[i]), nullptr) << "visitor " << i;
  for (int i = 5; i < 8; ++i) {
    const PeerInfo* info = alice.peer_info(visitors[i]);
    ASSERT_NE(info, nullptr) << "visitor " << i;
    EXPECT_FALSE(info->identified);
    EXPECT_TRUE(info->protocols.empty());
  }
  alice.close();
  run_pending(io);
}

}  // namespace
}  // namespace an::p2p::net::test
