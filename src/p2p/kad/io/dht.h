// The node's Kademlia DHT (libp2p/specs kad-dht): the server side and the client side on one
// routing table, and the upkeep that makes a node find the network from one bootstrap peer —
// a self-lookup once the first DHT peer is known, bucket refreshes, and dialling the peers
// learned until the connection target is met. Network thread only; owned by its user, who must
// keep the Host alive longer than the Dht.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <random>
#include <vector>

#include "p2p/kad/io/dht_client.h"
#include "p2p/kad/io/dht_server.h"
#include "p2p/net/async.h"

namespace an::p2p::kad {

// Client mode: uses the DHT, neither advertises /ipfs/kad/1.0.0 nor answers requests (for nodes
// that peers cannot dial). Server mode: both.
enum class DhtMode { kClient, kServer };
std::string_view dht_mode_name(DhtMode mode);

// How long one lookup of the upkeep (self-lookup, bucket refresh) may take. go-libp2p-kad-dht
// gives its refresh queries a minute as well (RoutingTableRefreshQueryTimeout).
inline constexpr std::chrono::seconds kDhtUpkeepLookupTimeout{60};
// How often the upkeep looks at the routing table between refreshes: buckets whose last lookup
// is older than the refresh interval are refreshed, and learned peers dialled.
inline constexpr std::chrono::seconds kDhtUpkeepCheckInterval{60};
// Learned peers dialled at once when below the connection target.
inline constexpr std::size_t kDhtMaxConcurrentDials = 8;

struct DhtConfig {
  DhtMode mode = DhtMode::kServer;
  DhtClientConfig client;
  // go-libp2p-kad-dht's RoutingTableRefreshPeriod: a bucket (and the self-lookup) is refreshed
  // when its last lookup is older than this.
  std::chrono::steady_clock::duration refresh_interval = kDefaultRefreshInterval;
  std::chrono::steady_clock::duration check_interval = kDhtUpkeepCheckInterval;
  std::chrono::steady_clock::duration upkeep_lookup_timeout = kDhtUpkeepLookupTimeout;
  // Peers learned through the DHT are dialled while fewer than this many are connected (the
  // connection manager's low-water mark); 0 turns the dialling off.
  std::size_t connection_target = 0;
};

struct FoundPeer {
  std::vector<Multiaddr> addresses;  // without /p2p/
  bool connected = false;
  bool through_dht = false;  // false: known locally (connected or in the peer store)
  int hops = 0;
};

// What the upkeep did so far (for logs, status and tests).
struct DhtUpkeepStats {
  std::size_t rounds = 0;  // completed: self-lookup (when due), refreshes, dialling
  std::size_t self_lookups = 0;
  std::size_t refresh_lookups = 0;
  std::size_t dials = 0;
  std::size_t dial_failures = 0;
};

class Dht {
 public:
  Dht(net::Host& host, asio::any_io_executor executor, DhtConfig config);
  ~Dht();
  Dht(const Dht&) = delete;
  Dht& operator=(const Dht&) = delete;

  // Starts serving (server mode), following identify, and the upkeep. Call once.
  void start();
  // Ends the upkeep; lookups in flight give up. The Dht may be destroyed afterwards.
  void stop();

  // The peer's addresses: from a connection or the peer store when known, otherwise by an
  // iterative lookup of its ID, which also connects to it (the lookup queries the peer itself
  // once an answer names it). An error when the lookup does not find it by the deadline.
  asio::awaitable<Expected<FoundPeer>> find_peer(PeerId peer,
                                                 std::chrono::steady_clock::time_point deadline);
  // The k closest peers to `key` that answered, closest first.
  asio::awaitable<Expected<LookupOutcome>> closest_peers(
      Bytes key, std::chrono::steady_clock::time_point deadline);
  // Validates the record, stores it here, then at the k closest peers of the key; the number of
  // peers that accepted it. Stored here only (and answered with 0) when no peer is known.
  asio::awaitable<Expected<std::size_t>> put_value(Bytes key, Bytes value,
                                                   std::chrono::steady_clock::time_point deadline);
  // The best valid record among ours and those the k closest peers hold.
  asio::awaitable<Expected<Bytes>> get_value(Bytes key,
                                             std::chrono::steady_clock::time_point deadline);

  // Announces this node as a provider of `key` (a multihash or CID bytes, 1..80 bytes as go's
  // servers accept): stored in our provider store with our advertised addresses, then sent as
  // ADD_PROVIDER to the k closest peers of the key. The number of peers that took it (ADD_PROVIDER
  // has no answer: a peer that read the request and ended the stream counts). 0 without DHT
  // peers (stored here only). An error for a bad key, or when peers are known but we have no
  // address to announce or the lookup finds none of them.
  asio::awaitable<Expected<std::size_t>> provide(Bytes key,
                                                 std::chrono::steady_clock::time_point deadline);
  // Providers of `key`: those of our provider store first, then those a GET_PROVIDERS walk
  // finds (DhtClient::get_providers). Stops at `count` providers (0: no limit, the whole lookup
  // and at most kMaxProvidersPerLookup). `on_provider`, if set, is called once per provider as
  // it is found, before this returns (for streaming answers). At the deadline, or when the
  // caller stops waiting, the providers found so far are returned; an unknown key gives an
  // empty list. Errors: a bad key, the DHT stopped.
  asio::awaitable<Expected<std::vector<DhtProvider>>> find_providers(
      Bytes key, std::size_t count, std::chrono::steady_clock::time_point deadline,
      DhtProviderCallback on_provider = {});
  // The peer's public key as a PublicKey protobuf: from the ID when inlined (Ed25519 and other
  // short keys), else the one identify gave (PeerInfo::public_key), else the "/pk/<multihash>"
  // record found by a GET_VALUE walk whose value hashes to the ID (any key type: only the hash
  // is checked, as go's /pk validator does once it has parsed the key). An error when none.
  asio::awaitable<Expected<Bytes>> get_public_key(PeerId peer,
                                                  std::chrono::steady_clock::time_point deadline);

  DhtMode mode() const { return config_.mode; }
  const RoutingTable& routing_table() const { return server_.routing_table(); }
  std::size_t routing_table_size() const { return server_.routing_table().size(); }
  const DhtUpkeepStats& upkeep_stats() const { return stats_; }
  DhtServer& server() { return server_; }
  DhtClient& client() { return client_; }

 private:
  asio::awaitable<void> upkeep();
  // One round: self-lookup when due, refresh of the buckets due, then dialling.
  asio::awaitable<void> upkeep_round(bool force_self_lookup);
  asio::awaitable<void> connect_to_learned_peers();
  asio::awaitable<void> dial_one(PeerId peer, std::shared_ptr<std::size_t> in_flight,
                                 std::shared_ptr<net::Signal> finished);

  net::Host& host_;
  asio::any_io_executor executor_;
  DhtConfig config_;
  DhtServer server_;
  DhtClient client_;
  std::unique_ptr<net::Signal> table_changed_;
  std::unique_ptr<net::Signal> stopped_signal_;
  std::optional<Clock::time_point> last_self_lookup_;
  std::mt19937_64 random_;
  DhtUpkeepStats stats_;
  bool started_ = false;
  bool stopped_ = false;
  net::Lifetime lifetime_;
};

}  // namespace an::p2p::kad
