// /ipfs/ping/1.0.0 on a Host: echoes what peers send, and measures round trips to a peer.
// Owned by the Host (go-libp2p's basic host owns its ping service alike); network thread only.
#pragma once

#include <chrono>
#include <memory>
#include <set>

#include "p2p/crypto/peer_id.h"
#include "p2p/net/async.h"
#include "p2p/net/connection.h"
#include "p2p/ping/ping.h"

namespace an::p2p::net {
class Host;
}

namespace an::p2p::ping {

class PingService {
 public:
  explicit PingService(net::Host& host);
  ~PingService();
  PingService(const PingService&) = delete;
  PingService& operator=(const PingService&) = delete;

  // Serves the protocol on the host.
  void start();
  // Round trip of one ping to a connected peer. One ping stream per peer at a time, as js and go
  // allow: a second call waits for the first.
  asio::awaitable<Expected<std::chrono::nanoseconds>> ping(const PeerId& peer);

 private:
  asio::awaitable<Expected<std::chrono::nanoseconds>> ping_once(const PeerId& peer);
  asio::awaitable<void> serve(std::shared_ptr<net::Stream> stream);

  net::Host& host_;
  // Peers with a ping of ours in flight.
  std::set<PeerId> pinging_;
  std::unique_ptr<net::Signal> ping_finished_;
  net::Lifetime lifetime_;
};

}  // namespace an::p2p::ping
