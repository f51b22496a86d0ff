// The client side of circuit relay v2 (libp2p/specs relay/circuit-v2.md): reserving a slot on a
// relay and keeping it, answering the relay's STOP CONNECT by adopting the stream as a relayed
// inbound connection, the relayed addresses that result, and dialing through a relay (the
// Host's circuit dialer: Host::connect with a circuit address comes here once started). Network
// thread only, like the Host.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "p2p/net/async.h"
#include "p2p/net/host.h"
#include "p2p/relay/messages.h"
#include "p2p/relay/resources.h"
#include "p2p/relay/voucher.h"

namespace an::p2p::relay {

// Reading the relay's STOP CONNECT, and the RESERVE exchange (go's client StreamTimeout).
inline constexpr std::chrono::seconds kRelayClientStreamTimeout{60};
// go-libp2p's autorelay refreshes a reservation once it expires within 2 minutes.
inline constexpr std::chrono::seconds kDefaultReservationRefreshMargin{120};
// How long the relay may take to answer CONNECT (go's client waits as long on dialing).
inline constexpr std::chrono::seconds kRelayDialTimeout{60};
// After a failed connect or RESERVE, the next attempt on that relay.
inline constexpr std::chrono::seconds kDefaultReservationRetryDelay{30};

struct RelayClientConfig {
  std::chrono::milliseconds refresh_margin = kDefaultReservationRefreshMargin;
  std::chrono::milliseconds retry_delay = kDefaultReservationRetryDelay;
  // go and js accept a STOP CONNECT from any relay (js even starts listening on a relay it was
  // reached through); false accepts circuits only from relays we hold a reservation on.
  bool accept_without_reservation = true;
};

// A reservation the relay granted us, its voucher checked.
struct RelayReservation {
  PeerId relay;
  TimePoint expires;
  std::uint64_t expire_unix = 0;
  // The relay's addresses, each ending in /p2p/RELAY.
  std::vector<Multiaddr> relay_addresses;
  // As the relay sent it; see circuit_duration() for the duration.
  std::optional<Limit> limit;
  ReservationVoucher voucher;
};

// The duration of a Limit. js-libp2p relays send it in milliseconds where the spec says seconds:
// a value over a day, which no relay means in seconds (go and js default to 2 minutes), is read
// as milliseconds. nullopt: no duration limit.
std::optional<std::chrono::milliseconds> circuit_duration(const Limit& limit);

class RelayClient {
 public:
  // The relayed addresses after a change (a reservation gained, refreshed elsewhere, or lost).
  using AddressesListener = std::function<void(const std::vector<Multiaddr>&)>;

  explicit RelayClient(net::Host& host, RelayClientConfig config = {});
  ~RelayClient();
  RelayClient(const RelayClient&) = delete;
  RelayClient& operator=(const RelayClient&) = delete;

  // Serves /libp2p/circuit/relay/0.2.0/stop on the host and becomes its circuit dialer.
  void start();

  // Connects to TARGET through RELAY (circuit relay v2 CONNECT) for a circuit address
  // RELAY/p2p-circuit/p2p/TARGET, RELAY either a dialable address ending in /p2p/ID or just
  // /p2p/ID of a relay we are connected to or know addresses of; yields a relayed() connection.
  asio::awaitable<Expected<std::shared_ptr<net::Connection>>> dial(Multiaddr address,
                                                                   PeerId target);

  // One RESERVE on a relay we are connected to. On success the reservation counts for
  // relayed_addresses() until it expires or the relay disconnects.
  asio::awaitable<Expected<RelayReservation>> reserve(const PeerId& relay);

  // Holds a reservation on the relay at `relay_address` (ending in /p2p/RELAY) from now on:
  // connects, reserves, refreshes refresh_margin before expiry, and reconnects and reserves
  // again after losing the relay (retrying every retry_delay while that fails).
  void keep_reservation(const Multiaddr& relay_address);
  // Stops refreshing; the reservation lasts until it expires or the relay disconnects.
  void stop_keeping(const PeerId& relay);

  // /RELAY-ADDRESS/p2p/RELAY/p2p-circuit/p2p/SELF for each address of each live reservation.
  std::vector<Multiaddr> relayed_addresses() const;
  std::optional<RelayReservation> reservation(const PeerId& relay) const;

  void on_addresses_changed(AddressesListener listener) { listener_ = std::move(listener); }

 private:
  struct Keeper;

  asio::awaitable<Expected<std::shared_ptr<net::Connection>>> connect_to_relay(
      Multiaddr relay_address, PeerId relay);
  asio::awaitable<void> serve_stop(std::shared_ptr<net::Stream> stream);
  asio::awaitable<void> keep_loop(std::shared_ptr<Keeper> keeper);
  void relay_disconnected(const PeerId& relay);
  void drop_expired();
  void publish_addresses();

  net::Host& host_;
  RelayClientConfig config_;
  std::map<PeerId, RelayReservation> reservations_;
  std::map<PeerId, std::shared_ptr<Keeper>> keepers_;
  std::vector<Multiaddr> published_;
  AddressesListener listener_;
  bool started_ = false;
  net::Lifetime lifetime_;
};

}  // namespace an::p2p::relay
