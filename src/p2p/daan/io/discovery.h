// DAAN discovery on the Kademlia DHT, as the Go AgentNetwork does it with go-libp2p's routing
// discovery: a namespace is advertised by providing its key (namespace.h) and looked up by
// finding the key's providers. Every node advertises kNetworkNamespace and looks it up now and
// then to connect to other DAAN nodes; agents advertise and look up their own namespaces.
// Advertisements are renewed until stop(), before the DHT's provider records expire.
//
// Network thread only; owned by its user, who must keep the Host and the Dht alive longer than
// the Discovery and stop it before stopping the Dht.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "p2p/daan/namespace.h"
#include "p2p/kad/io/dht.h"
#include "p2p/net/async.h"
#include "p2p/net/host.h"

namespace an::p2p::daan {

using Clock = std::chrono::steady_clock;

// go-libp2p's routing discovery advertises with a TTL of at most 3 h and its Advertise loop
// (p2p/discovery/util) advertises again at 7/8 of the TTL. We keep that cadence: a DHT peer
// keeps our record for 48 h (kad::kProviderValidity; 24 h at older go servers), so a renewal
// every 2 h 37 min 30 s survives many missed rounds, and as peers join and leave it reaches the
// peers that are the key's closest by then, as often as a Go node's does.
inline constexpr std::chrono::seconds kDefaultReadvertiseInterval =
    std::chrono::duration_cast<std::chrono::seconds>(std::chrono::hours(3) * 7 / 8);
// A lookup walks the DHT; once the node is connected to the DAAN nodes it found, later lookups
// only find the newcomers (who look us up themselves) and replace lost connections.
inline constexpr std::chrono::seconds kDefaultLookupInterval{300};
// DAAN nodes dialled per lookup: enough to be in the network, few enough not to crowd out the
// connection manager's other peers.
inline constexpr std::size_t kDefaultMaxDials = 8;
// Namespaces advertised at once (each renewed by its own loop).
inline constexpr std::size_t kMaxAdvertisedNamespaces = 64;
// How long one provide or lookup of the loops may take (the DHT's upkeep lookups get as long).
inline constexpr std::chrono::seconds kBackgroundOperationTimeout{60};
// After a failure, or an advertisement that reached no peer (a fresh node has no DHT peer and
// often no address yet), the loops try again after 1 s, doubling up to 2 min (go's Advertise
// loop waits 2 min after an error) and never beyond the loop's own interval. A peer identified
// meanwhile (possibly the first DHT peer) ends the wait early, but not before 1 s.
inline constexpr std::chrono::seconds kRetryInitialBackoff{1};
inline constexpr std::chrono::seconds kRetryMaxBackoff{120};
// Intervals below this are raised to it, so that a zero in a configuration is not a busy loop.
inline constexpr std::chrono::seconds kMinLoopInterval{1};

enum class DiscoveryLogLevel { kDebug, kInfo, kWarn };

struct DiscoveryConfig {
  bool join_network = true;  // advertise and look up kNetworkNamespace
  std::chrono::seconds lookup_interval = kDefaultLookupInterval;            // of kNetworkNamespace
  std::chrono::seconds readvertise_interval = kDefaultReadvertiseInterval;  // every namespace
  std::size_t max_dials = kDefaultMaxDials;  // DAAN peers dialled per lookup
  // Lookups dial only while fewer peers than this are connected (dials in flight counted), as
  // the DHT dials the peers it learns (kad::DhtConfig::connection_target): the node passes the
  // connection manager's low-water mark, so that discovery does not redial the peers a trim
  // just closed. 0: no limit.
  std::size_t connection_target = 0;
  // Where discovery reports what it does; per-peer events come at kDebug.
  std::function<void(DiscoveryLogLevel, const std::string&)> log;
};

struct DiscoveredPeer {
  PeerId peer;
  std::vector<Multiaddr> addresses;  // without /p2p/; possibly none
};

// What discovery did so far (for logs, status and tests).
struct DiscoveryStats {
  std::size_t provides = 0;          // completed: advertise() calls and renewals
  std::size_t unheard_provides = 0;  // of those, failed or reaching no peer (then retried)
  std::size_t network_lookups = 0;   // of kNetworkNamespace by the loop
  std::size_t dials = 0;             // DAAN peers found by those and dialled
  std::size_t dials_connected = 0;
};

class Discovery {
 public:
  Discovery(net::Host& host, kad::Dht& dht, DiscoveryConfig config);
  ~Discovery();
  Discovery(const Discovery&) = delete;
  Discovery& operator=(const Discovery&) = delete;

  // With join_network: advertises kNetworkNamespace (retrying until the DHT has peers to take
  // it) and looks it up every lookup_interval, dialling up to max_dials providers we are not
  // connected to (within connection_target). Call once.
  void start();
  // Ends the loops and gives up the operations in flight; later calls fail. Idempotent.
  void stop();

  // Provides the namespace now and keeps providing it every readvertise_interval until stop()
  // (a namespace advertised again keeps its one loop). The number of peers that took this first
  // provide: 0 when the DHT has no peers yet, in which case the loop retries soon. The
  // namespace stays advertised even when this first provide fails. Errors: a bad namespace
  // (check_namespace), kMaxAdvertisedNamespaces reached, the provide failing, stopped.
  asio::awaitable<Expected<std::size_t>> advertise(std::string ns, Clock::time_point deadline);
  // The providers of the namespace, ourselves left out, at most `limit` (0: all a lookup finds,
  // up to kad::kMaxProvidersPerLookup). Their addresses are recorded in the peer store, so that
  // they can be dialled by ID afterwards. At the deadline the peers found so far are returned.
  asio::awaitable<Expected<std::vector<DiscoveredPeer>>> discover(std::string ns, std::size_t limit,
                                                                  Clock::time_point deadline);
  // The namespaces kept advertised, in order.
  std::vector<std::string> advertised() const;
  const DiscoveryStats& stats() const { return stats_; }
  const DiscoveryConfig& config() const { return config_; }

 private:
  // `first_heard`: whether the caller's provide just now reached a peer (nullopt: none made,
  // provide at once).
  asio::awaitable<void> keep_advertising(std::string ns, std::optional<bool> first_heard);
  asio::awaitable<void> keep_looking_up_network();
  asio::awaitable<void> dial(DiscoveredPeer found);
  // The DHT's provide, given up at stop(); counted in stats_.
  asio::awaitable<Expected<std::size_t>> provide(const std::string& ns, Clock::time_point deadline);
  // Waits for `duration`; with `retrying`, a peer identified ends it early (kRetryInitialBackoff
  // at the soonest). False when stopped meanwhile.
  asio::awaitable<bool> pause(Clock::duration duration, bool retrying);
  asio::awaitable<void> until_stopped();
  void log(DiscoveryLogLevel level, const std::string& message) const;

  net::Host& host_;
  kad::Dht& dht_;
  DiscoveryConfig config_;
  std::set<std::string> advertised_;
  std::set<PeerId> dialling_;
  // Notified at stop() and when a peer is identified; waiters check why.
  std::unique_ptr<net::Signal> wake_;
  std::uint64_t peers_identified_ = 0;
  bool network_advertised_ = false;  // the first success is worth an info line
  bool started_ = false;
  bool stopped_ = false;
  DiscoveryStats stats_;
  net::Lifetime lifetime_;
};

}  // namespace an::p2p::daan
