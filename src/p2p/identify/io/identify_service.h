// The identify protocols on a Host (libp2p/specs identify): answers /ipfs/id/1.0.0 with what
// we are (keys, addresses, protocols, a signed peer record), takes /ipfs/id/push/1.0.0, and
// identifies each new connection, recording what the peer says in the Host's peer store.
// Owned by the Host (go-libp2p's basic host owns its IDService alike); network thread only.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "p2p/identify/identify.h"
#include "p2p/net/async.h"
#include "p2p/net/connection.h"
#include "p2p/net/peer_store.h"

namespace an::p2p::net {
class Host;
}

namespace an::p2p::identify {

// A peer gets this long to answer our identify request on a new connection, and to send a push.
inline constexpr std::chrono::seconds kIdentifyTimeout{10};

class IdentifyService {
 public:
  using IdentifiedListener = std::function<void(const PeerId&, const net::PeerInfo&)>;

  // `agent_version` and `protocol_version` are what we tell peers.
  IdentifyService(net::Host& host, std::string agent_version, std::string protocol_version);
  ~IdentifyService();
  IdentifyService(const IdentifyService&) = delete;
  IdentifyService& operator=(const IdentifyService&) = delete;

  // Serves both protocols on the host.
  void start();
  // Asks the peer of a new connection who it is (on that very connection: with several
  // connections to one peer, each is identified).
  void identify_connection(std::shared_ptr<net::Connection> connection);
  // Called after each identify or push answer has been recorded.
  void on_identified(IdentifiedListener listener) { listeners_.push_back(std::move(listener)); }

 private:
  asio::awaitable<void> run_identify(std::shared_ptr<net::Connection> connection);
  asio::awaitable<void> serve_identify(std::shared_ptr<net::Stream> stream);
  asio::awaitable<void> serve_push(std::shared_ptr<net::Stream> stream);
  Identify own_identify(const net::Connection& connection) const;
  void record(const PeerId& peer, Identify message);

  net::Host& host_;
  std::string agent_version_;
  std::string protocol_version_;
  std::vector<IdentifiedListener> listeners_;
  std::uint64_t peer_record_seq_ = 0;
  net::Lifetime lifetime_;
};

}  // namespace an::p2p::identify
