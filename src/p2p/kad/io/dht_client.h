// The client side of /ipfs/kad/1.0.0 (libp2p/specs kad-dht, go-libp2p-kad-dht's query code): one
// request/response on a stream, requests without an answer (ADD_PROVIDER), and the iterative
// lookups driven by Lookup (FIND_NODE, and the GET_VALUE and GET_PROVIDERS walks). Network
// thread only; owned by its user, who must keep the Host and the routing table alive longer than
// the client. Requests in flight when the client is destroyed end without touching it.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "p2p/kad/lookup.h"
#include "p2p/kad/message.h"
#include "p2p/kad/records.h"
#include "p2p/kad/routing_table.h"
#include "p2p/net/async.h"
#include "p2p/net/host.h"

namespace an::p2p::kad {

// Limits (named here, next to what they bound).
// One request: opening the stream, writing the request and reading the answer.
// go-libp2p-kad-dht's dhtReadMessageTimeout (internal/net/message_manager.go) is 10 s.
inline constexpr std::chrono::seconds kDhtRequestTimeout{10};
// Connecting to a peer that a lookup learned of (all of its addresses, one after another). The
// Host's own transport and handshake timeouts still apply to each address.
inline constexpr std::chrono::seconds kDhtDialTimeout{10};

// Providers one GET_PROVIDERS walk collects at most (a walk without a count limit, or with a
// larger one, ends there): hostile answers cannot grow it beyond this.
inline constexpr std::size_t kMaxProvidersPerLookup = 1024;

struct DhtClientConfig {
  LookupConfig lookup;
  std::chrono::steady_clock::duration request_timeout = kDhtRequestTimeout;
  std::chrono::steady_clock::duration dial_timeout = kDhtDialTimeout;
};

// A provider of a key (ADD_PROVIDER / GET_PROVIDERS providerPeers): the peer and the addresses
// it was announced with (without /p2p/; possibly none, then find_peer may know them).
struct DhtProvider {
  PeerId id;
  std::vector<Multiaddr> addresses;

  bool operator==(const DhtProvider&) const = default;
};
// A provider as announced (by ADD_PROVIDER, or in a GET_PROVIDERS answer), made fit to hand
// out: without /p2p/ (a /p2p/ naming another peer drops the address), at most kMaxProviderAddrs
// addresses, no duplicates.
DhtProvider sanitized_provider(Peer peer);
// Called once per new provider as a walk finds it, on the network thread. It must not destroy
// the client (or the Dht owning it).
using DhtProviderCallback = std::function<void(const DhtProvider&)>;

struct LookupOutcome {
  // The k closest peers that answered, closest first.
  std::vector<PeerId> closest;
  LookupStats stats;
  int hops = 0;
  // False when the deadline came first: `closest` is then the best result so far. True also
  // when a GET_PROVIDERS walk ended early because it had found the providers asked for.
  bool completed = false;
  // GET_VALUE lookups: the record values that answers carried for the key, unvalidated.
  std::vector<Bytes> values;
  // GET_PROVIDERS walks: the providers found, in the order found, without duplicates.
  std::vector<DhtProvider> providers;
  // Addresses that answers gave for the peers they named (the first answer naming a peer with
  // addresses wins), e.g. the target's own when it was found.
  std::unordered_map<PeerId, std::vector<Multiaddr>> addresses;
};

class DhtClient {
 public:
  // `routing_table` seeds the lookups (the DhtServer's table); peers enter it through the
  // server's identify listener, not here. The client only marks the successful queries of peers
  // already in it.
  DhtClient(net::Host& host, RoutingTable& routing_table, DhtClientConfig config = {});
  ~DhtClient();
  DhtClient(const DhtClient&) = delete;
  DhtClient& operator=(const DhtClient&) = delete;

  // Sends one request to `peer` on a new /ipfs/kad/1.0.0 stream and returns its answer, whose
  // type must be the request's. Dials the peer first when it is not connected, with `addresses`
  // (without /p2p/) or, when empty, those the Host knows. Errors: no address, dial failure,
  // stream or protocol failure, malformed or mistyped answer, request_timeout. A peer that
  // cannot be dialled leaves the routing table, as in go-libp2p-kad-dht (it re-enters when it
  // connects and identify shows it serving the DHT again).
  asio::awaitable<Expected<Message>> request(PeerId peer, Message message,
                                             std::vector<Multiaddr> addresses = {});

  // The iterative lookup of `target` (key bytes: a peer ID multihash for FIND_NODE) from the k
  // closest peers of the routing table, α requests at a time. At `deadline` the requests in
  // flight are abandoned and the best result so far is returned (completed = false).
  asio::awaitable<Expected<LookupOutcome>> find_closest_peers(
      Bytes target, std::chrono::steady_clock::time_point deadline);

  // Stores the record (key, value) at the k closest peers of the key: find_closest_peers, then
  // PUT_VALUE to all of them at once. The value must pass the validator (/pk, /ipns) first. The
  // number of peers that accepted it (answered PUT_VALUE) by the deadline.
  asio::awaitable<Expected<std::size_t>> put_value(Bytes key, Bytes value,
                                                   std::chrono::steady_clock::time_point deadline);
  // The best valid value for the key (the validator selects among the valid records): an
  // iterative lookup of the key whose requests are GET_VALUE, as go's GetValue walks, so that
  // every peer asked on the way may answer with the record. An error when none did by the
  // deadline. Unlike go, no quorum (the whole lookup runs) and no correction of peers that
  // answered an outdated record.
  asio::awaitable<Expected<Bytes>> get_value(Bytes key,
                                             std::chrono::steady_clock::time_point deadline);

  // The GET_VALUE walk of get_value without the validation: `values` holds every record value
  // answered for the key, as received (for keys whose records the caller checks itself, e.g.
  // /pk/ records of key types the validator does not support).
  asio::awaitable<Expected<LookupOutcome>> get_value_candidates(
      Bytes key, std::chrono::steady_clock::time_point deadline);

  // Sends one request that has no answer (ADD_PROVIDER) on a new stream and half-closes it, then
  // waits for the peer to end the stream: a clean end means it negotiated the protocol and read
  // the request; an answer is read and ignored. Errors as for request().
  asio::awaitable<Expected<void>> send(PeerId peer, Message message,
                                       std::vector<Multiaddr> addresses = {});

  // Announces `provider` (our own ID and addresses: servers keep only providers that are the
  // sender and have addresses) for `key` to the k closest peers of the key: find_closest_peers,
  // then ADD_PROVIDER to all of them at once. The number of peers that took the request by the
  // deadline (see send()); an error when the lookup found no peer.
  asio::awaitable<Expected<std::size_t>> add_provider(
      Bytes key, DhtProvider provider, std::chrono::steady_clock::time_point deadline);
  // The providers of `key`: an iterative lookup of the key whose requests are GET_PROVIDERS (go's
  // findProvidersAsyncRoutine), collecting each answer's providerPeers and following its
  // closerPeers. `known` are providers the caller has already (not reported again, counted
  // towards `count`). Ends when the k closest peers answered, at `count` providers in all (0: no
  // limit), at kMaxProvidersPerLookup, at the deadline or when the caller stops waiting (the
  // providers so far are then returned). Providers with an ID that is not a peer ID are dropped
  // by decoding, duplicates are skipped, addresses lose /p2p/ and are capped at
  // kMaxProviderAddrs; a provider named without addresses gets those the Host knows.
  asio::awaitable<Expected<LookupOutcome>> get_providers(
      Bytes key, std::size_t count, std::chrono::steady_clock::time_point deadline,
      std::vector<PeerId> known = {}, DhtProviderCallback on_provider = {});

  const DhtClientConfig& config() const { return config_; }

 private:
  struct LookupState;
  struct FanOutState;

  // Sends `message` to every peer at once (request(), or send() for ADD_PROVIDER); how many
  // answered (or, for ADD_PROVIDER, took the request) by the deadline.
  asio::awaitable<std::size_t> fan_out(std::vector<PeerId> peers, Message message,
                                       std::chrono::steady_clock::time_point deadline);
  asio::awaitable<void> fan_out_one(std::shared_ptr<FanOutState> state, PeerId peer,
                                    Message message);

  asio::awaitable<Expected<LookupOutcome>> run_lookup(
      std::shared_ptr<LookupState> state, std::chrono::steady_clock::time_point deadline);
  void collect_providers(LookupState& state, std::vector<Peer> providers);
  Expected<std::size_t> best_valid_value(const Bytes& key, const std::vector<Bytes>& values) const;

  asio::awaitable<Expected<void>> ensure_connected(PeerId peer, std::vector<Multiaddr> addresses);
  // What request() and send() share: dialling (a peer that cannot be dialled leaves the routing
  // table), the stream, the timeout, and the reset of the stream when the exchange fails. The
  // answer, or nullopt when `expect_answer` is false and the peer ended the stream cleanly.
  asio::awaitable<Expected<std::optional<Message>>> exchange_with_timeout(
      PeerId peer, Message message, std::vector<Multiaddr> addresses, bool expect_answer);
  asio::awaitable<void> query(std::shared_ptr<LookupState> state, PeerId peer,
                              std::vector<Multiaddr> addresses);

  net::Host& host_;
  RoutingTable& routing_table_;
  DhtClientConfig config_;
  NamespacedValidator validator_;
  // Lets coroutines that outlive a call notice that the client is gone.
  net::Lifetime lifetime_;
};

}  // namespace an::p2p::kad
