// The server side of /ipfs/kad/1.0.0 (libp2p/specs kad-dht, go-libp2p-kad-dht's handlers): the
// routing table fed by identify, the record and provider stores, and the stream handler that
// answers FIND_NODE, GET_VALUE, PUT_VALUE, ADD_PROVIDER, GET_PROVIDERS and PING. Network thread
// only; owned by its user, who must keep the Host alive longer than the server.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <unordered_map>

#include "p2p/kad/message.h"
#include "p2p/kad/records.h"
#include "p2p/kad/routing_table.h"
#include "p2p/net/async.h"
#include "p2p/net/host.h"
#include "p2p/rcmgr/resource_manager.h"

namespace an::p2p::kad {

// Limits (named here, next to what they protect).
// A stream with no request for this long is closed: go-libp2p-kad-dht's dhtStreamIdleTimeout.
inline constexpr std::chrono::seconds kDhtRequestIdleTimeout{60};
// Writing one answer; a peer that does not read is dropped.
inline constexpr std::chrono::seconds kDhtWriteTimeout{10};
// Inbound kad streams served at once, per peer and in total; more are reset on arrival (go
// relies on the resource manager for this; go's own lookups open at most alpha = 10 streams to a
// peer at a time, some more for refreshes and provides).
inline constexpr std::size_t kMaxDhtStreamsPerPeer = 16;
inline constexpr std::size_t kMaxDhtStreamsTotal = 512;
// ADD_PROVIDER and GET_PROVIDERS keys longer than this are refused, as go's handlers do.
inline constexpr std::size_t kMaxDhtProviderKeySize = 80;
// Closer peers per answer: k.
inline constexpr std::size_t kDhtCloserPeers = kBucketSize;
// What the record and provider stores hold is charged to the resource manager's
// /ipfs/kad/1.0.0 scope: the bytes of each record plus this estimate of an entry's container
// overhead, and the provider store's own estimate (ProviderStore::bytes).
inline constexpr std::size_t kRecordEntryOverhead = 160;

class DhtServer {
 public:
  explicit DhtServer(net::Host& host);
  ~DhtServer();
  DhtServer(const DhtServer&) = delete;
  DhtServer& operator=(const DhtServer&) = delete;

  // Starts following identify: a peer whose protocols list /ipfs/kad/1.0.0 enters the routing
  // table, one whose list does not (any more) leaves it. With `serve_requests` (server mode) it
  // also registers the /ipfs/kad/1.0.0 handler, so that identify advertises the protocol; a
  // client-mode node keeps a routing table for its own lookups but neither advertises nor
  // answers. Call once. Disconnections are not followed: go-libp2p-kad-dht keeps a
  // disconnected peer in its table too, until it fails queries (the client side's business).
  void start(bool serve_requests = true);

  // The answer to one request from `from`: nullopt when the protocol has none (ADD_PROVIDER),
  // an error when the request is refused (the stream is then reset, as go does). No I/O; public
  // for tests and for the client side to answer itself.
  Expected<std::optional<Message>> handle_request(const PeerId& from, const Message& request);

  RoutingTable& routing_table() { return routing_table_; }
  const RoutingTable& routing_table() const { return routing_table_; }
  RecordStore& records() { return records_; }
  ProviderStore& providers() { return providers_; }
  // Inbound kad streams being served.
  std::size_t active_streams() const { return active_total_; }

 private:
  class StreamSlot;

  asio::awaitable<void> serve(std::shared_ptr<net::Stream> stream);
  void peer_identified(const PeerId& peer, const net::PeerInfo& info);

  Expected<Message> answer_find_node(const PeerId& from, const Message& request) const;
  Expected<Message> answer_get_value(const PeerId& from, const Message& request);
  Expected<Message> answer_put_value(const Message& request);
  Expected<void> add_providers(const PeerId& from, const Message& request);
  Expected<Message> answer_get_providers(const PeerId& from, const Message& request);

  // Brings the stores' reservation to what they hold now.
  void settle_store_memory();

  // go's betterPeersToQuery: the k peers of the table nearest to the request's key, without the
  // requester.
  std::vector<PeerId> closer_peers(const PeerId& from, const Message& request) const;
  // What we know of `peer` for an answer: its addresses and our connection state.
  Peer describe(const PeerId& peer) const;

  net::Host& host_;
  NamespacedValidator validator_;
  RoutingTable routing_table_;
  RecordStore records_;
  ProviderStore providers_;
  rcmgr::MemoryReservation store_memory_;
  std::unordered_map<PeerId, std::size_t> active_per_peer_;
  std::size_t active_total_ = 0;
  bool started_ = false;
  // Lets coroutines and host callbacks that outlive the server notice that it is gone.
  net::Lifetime lifetime_;
};

}  // namespace an::p2p::kad
