// The client side of /ipfs/kad/1.0.0 (libp2p/specs kad-dht, go-libp2p-kad-dht's query code): one
// request/response on a stream, and the iterative FIND_NODE lookup driven by kad::Lookup. Not
// wired into the node yet. Network thread only; owned by its user, who must keep the Host and the
// routing table alive longer than the client. Requests in flight when the client is destroyed
// end without touching it.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <unordered_map>
#include <vector>

#include "p2p/kad/lookup.h"
#include "p2p/kad/message.h"
#include "p2p/kad/records.h"
#include "p2p/kad/routing_table.h"
#include "p2p/net/host.h"

namespace an::p2p::net {

// Limits (named here, next to what they bound).
// One request: opening the stream, writing the request and reading the answer.
// go-libp2p-kad-dht's dhtReadMessageTimeout (internal/net/message_manager.go) is 10 s.
inline constexpr std::chrono::seconds kDhtRequestTimeout{10};
// Connecting to a peer that a lookup learned of (all of its addresses, one after another). The
// Host's own transport and handshake timeouts still apply to each address.
inline constexpr std::chrono::seconds kDhtDialTimeout{10};

struct DhtClientConfig {
  kad::LookupConfig lookup;
  std::chrono::steady_clock::duration request_timeout = kDhtRequestTimeout;
  std::chrono::steady_clock::duration dial_timeout = kDhtDialTimeout;
};

struct LookupOutcome {
  // The k closest peers that answered, closest first.
  std::vector<PeerId> closest;
  kad::LookupStats stats;
  int hops = 0;
  // False when the deadline came first: `closest` is then the best result so far.
  bool completed = false;
  // GET_VALUE lookups: the record values that answers carried for the key, unvalidated.
  std::vector<Bytes> values;
  // Addresses that answers gave for the peers they named (the first answer naming a peer with
  // addresses wins), e.g. the target's own when it was found.
  std::unordered_map<PeerId, std::vector<Multiaddr>> addresses;
};

class DhtClient {
 public:
  // `routing_table` seeds the lookups (the DhtServer's table); peers enter it through the
  // server's identify listener, not here. The client only marks the successful queries of peers
  // already in it.
  DhtClient(Host& host, kad::RoutingTable& routing_table, DhtClientConfig config = {});
  ~DhtClient();
  DhtClient(const DhtClient&) = delete;
  DhtClient& operator=(const DhtClient&) = delete;

  // Sends one request to `peer` on a new /ipfs/kad/1.0.0 stream and returns its answer, whose
  // type must be the request's. Dials the peer first when it is not connected, with `addresses`
  // (without /p2p/) or, when empty, those the Host knows. Errors: no address, dial failure,
  // stream or protocol failure, malformed or mistyped answer, request_timeout. A peer that
  // cannot be dialled leaves the routing table, as in go-libp2p-kad-dht (it re-enters when it
  // connects and identify shows it serving the DHT again).
  asio::awaitable<Expected<kad::Message>> request(PeerId peer, kad::Message message,
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

  const DhtClientConfig& config() const { return config_; }

 private:
  struct LookupState;
  struct FanOutState;

  // Sends `message` to every peer at once; the answers by the deadline (nullopt: failed or late),
  // in the order of `peers`.
  asio::awaitable<std::vector<std::optional<kad::Message>>> fan_out(
      std::vector<PeerId> peers, kad::Message message,
      std::chrono::steady_clock::time_point deadline);
  asio::awaitable<void> fan_out_one(std::shared_ptr<FanOutState> state, std::size_t index,
                                    PeerId peer, kad::Message message);

  asio::awaitable<Expected<LookupOutcome>> run_lookup(
      kad::MessageType type, Bytes target, std::chrono::steady_clock::time_point deadline);
  Expected<std::size_t> best_valid_value(const Bytes& key, const std::vector<Bytes>& values) const;

  asio::awaitable<Expected<void>> ensure_connected(PeerId peer, std::vector<Multiaddr> addresses);
  asio::awaitable<void> query(std::shared_ptr<LookupState> state, PeerId peer,
                              std::vector<Multiaddr> addresses);

  Host& host_;
  kad::RoutingTable& routing_table_;
  DhtClientConfig config_;
  kad::NamespacedValidator validator_;
  // Lets coroutines that outlive a call notice that the client is gone.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace an::p2p::net
