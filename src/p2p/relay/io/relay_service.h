// The circuit relay v2 hop service (libp2p/specs relay/circuit-v2.md): peers RESERVE a slot on
// us, others CONNECT to them through us, and we splice the two streams under the circuit limits.
// Admission is RelayResources' policy; this is its I/O. Network thread only, like the Host.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <unordered_map>

#include "p2p/net/async.h"
#include "p2p/net/host.h"
#include "p2p/relay/resources.h"

namespace an::p2p::relay {

// go-libp2p's relay timeouts (p2p/protocol/circuitv2/relay/relay.go): reading the hop request
// (StreamTimeout), opening the stop stream to the target (ConnectTimeout), and the STOP
// exchange with the target (HandshakeTimeout).
inline constexpr std::chrono::seconds kRelayRequestTimeout{60};
inline constexpr std::chrono::seconds kRelayConnectTimeout{30};
inline constexpr std::chrono::seconds kRelayStopHandshakeTimeout{60};
// How often expired reservations are dropped (go's relay collects garbage once a minute).
inline constexpr std::chrono::seconds kRelayReservationSweepInterval{60};

class RelayService {
 public:
  // A peer's reservation began (true) or ended (false: expired, or the peer disconnected), so
  // that the node can protect and tag the peers it relays for.
  using ReservationListener = std::function<void(const PeerId& peer, bool active)>;

  RelayService(net::Host& host, RelayLimits limits = {});
  // Ends every circuit in progress.
  ~RelayService();
  RelayService(const RelayService&) = delete;
  RelayService& operator=(const RelayService&) = delete;

  // Serves /libp2p/circuit/relay/0.2.0/hop on the host.
  void start();

  void on_reservation(ReservationListener listener) { listener_ = std::move(listener); }

  const RelayResources& resources() const { return resources_; }
  std::size_t reservation_count() const { return resources_.reservation_count(); }
  std::size_t circuit_count() const { return resources_.circuit_count(); }

 private:
  struct Circuit;

  asio::awaitable<void> serve_hop(std::shared_ptr<net::Stream> stream);
  asio::awaitable<void> handle_reserve(std::shared_ptr<net::Stream> stream);
  asio::awaitable<void> handle_connect(std::shared_ptr<net::Stream> stream, HopMessage request);
  asio::awaitable<void> splice(std::shared_ptr<Circuit> circuit);
  static asio::awaitable<void> pump(std::shared_ptr<Circuit> circuit, net::Stream& from,
                                    net::Stream& to, std::uint64_t data_limit);
  asio::awaitable<void> sweep_loop(std::shared_ptr<asio::steady_timer> timer);
  void reservation_ended(const PeerId& peer);
  void notify(const PeerId& peer, bool active);
  std::vector<Multiaddr> own_addresses() const;

  net::Host& host_;
  RelayResources resources_;
  ReservationListener listener_;
  std::unordered_map<CircuitId, std::weak_ptr<Circuit>> circuits_;
  std::shared_ptr<asio::steady_timer> sweep_timer_;
  bool started_ = false;
  net::Lifetime lifetime_;
};

}  // namespace an::p2p::relay
