// The libp2p daemon control protocol (go-libp2p-daemon's specs: CONTROL.md, DHT.md,
// CONNMANAGER.md; messages in proto/p2pd.proto) served on a local socket, so that p2pd clients
// (go, js, the libp2p interop suite) can drive this node: identify, connect, streams in and out
// piped to the client, the DHT, the connection manager and pubsub (PUBSUB.md: a SUBSCRIBE turns
// its control connection into a stream of PSMessages). Peerstore requests are refused as not
// supported yet.
//
// Network thread only: the server's sockets run on the Host's io_context, and every call
// (start, stop, destruction) happens on that thread. The Host, Dht and ConnectionManager must
// outlive the server, and so must PubSub (a subscription left when PubSub goes only stops).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "p2p/connmgr/connection_manager.h"
#include "p2p/kad/io/dht.h"
#include "p2p/net/host.h"
#include "p2p/pubsub/io/pubsub.h"
#include "util/expected.h"

namespace an::node {

// Requests and inbound StreamInfo messages are a few hundred bytes; DHT values are at most
// 64 KiB. Larger length prefixes are answered with an error and the connection closed.
inline constexpr std::size_t kP2pdMaxMessageSize = 1024 * 1024;
// Requests without their own timeout field (seconds) get this long, like go's daemon.
inline constexpr std::chrono::seconds kP2pdDefaultTimeout{60};
// FIND_PROVIDERS without a count.
inline constexpr std::size_t kP2pdDefaultProviderCount = 20;
// Control connections served at once; more wait in the listen backlog.
inline constexpr std::size_t kP2pdMaxClients = 256;
// A SUBSCRIBE connection's messages not yet written to a client that reads slowly: past either
// bound new messages are dropped, as go-libp2p-pubsub drops for a subscriber too slow to take
// them. Roomier than go's 32 messages so that a burst does not lose messages to a client that
// keeps up on average; the byte bound holds it to a few MiB whatever the message size.
inline constexpr std::size_t kP2pdSubscriptionQueueMessages = 1024;
inline constexpr std::size_t kP2pdSubscriptionQueueBytes = 8 * 1024 * 1024;

struct P2pdServerConfig {
  // Where to listen: /ip4|ip6/ADDR/tcp/PORT or /unix/PATH (created 0600; a stale socket file is
  // replaced, a live one is an error; removed at stop).
  std::string listen;
  p2p::kad::Dht* dht = nullptr;                                   // null: DHT requests refused
  p2p::connmgr::ConnectionManager* connection_manager = nullptr;  // null: CONNMANAGER refused
  p2p::pubsub::PubSub* pubsub = nullptr;                          // null: PUBSUB refused
};

class P2pdServer {
 public:
  static Expected<std::unique_ptr<P2pdServer>> start(p2p::net::Host& host, P2pdServerConfig config);
  ~P2pdServer();
  P2pdServer(const P2pdServer&) = delete;
  P2pdServer& operator=(const P2pdServer&) = delete;

  // The bound address as a multiaddr (the real port for tcp/0).
  const std::string& listen_address() const;
  // Stops accepting, closes every control connection and stream pipe, removes the socket file.
  // Coroutines still running end at their next step; idempotent.
  void stop();

  struct State;

 private:
  explicit P2pdServer(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

}  // namespace an::node
