#include "p2p/kad/io/dht_server.h"

#include <algorithm>
#include <string>
#include <utility>

#include "p2p/net/async.h"
#include "p2p/net/framed.h"

namespace an::p2p::kad {

using net::Host;
using net::PeerInfo;
using net::read_framed;
using net::Stream;
using net::with_timeout;
using net::write_framed;
namespace {

using namespace asio::experimental::awaitable_operators;

bool lists_kad(const PeerInfo& info) {
  return std::find(info.protocols.begin(), info.protocols.end(), kProtocolId) !=
         info.protocols.end();
}

constexpr const char* kRoutingTablePin = "kad-routing-table";

// go's pb.NewMessage(type, key, pmes.GetClusterLevel()): the level is the raw value minus one,
// at least 0, and is written back plus one.
Message reply_to(const Message& request, bool with_key) {
  Message reply;
  reply.type = request.type;
  reply.cluster_level_raw = std::max<std::int32_t>(request.cluster_level_raw, 1);
  if (with_key) reply.key = request.key;
  return reply;
}

}  // namespace

// Counts one inbound stream for its peer and in total while it is served.
class DhtServer::StreamSlot {
 public:
  StreamSlot(DhtServer& server, PeerId peer)
      : server_(server), alive_(server.lifetime_.token()), peer_(std::move(peer)) {
    ++server_.active_per_peer_[peer_];
    ++server_.active_total_;
  }
  ~StreamSlot() {
    if (!alive_) return;
    auto found = server_.active_per_peer_.find(peer_);
    if (found != server_.active_per_peer_.end() && --found->second == 0) {
      server_.active_per_peer_.erase(found);
    }
    --server_.active_total_;
  }
  StreamSlot(const StreamSlot&) = delete;
  StreamSlot& operator=(const StreamSlot&) = delete;

 private:
  DhtServer& server_;
  net::Lifetime::Token alive_;
  PeerId peer_;
};

DhtServer::DhtServer(Host& host)
    : host_(host),
      validator_(NamespacedValidator::with_defaults()),
      routing_table_(host.peer_id()),
      records_(validator_),
      store_memory_(host.resources().protocol_memory(std::string(kProtocolId))) {
  // The peer store forgets unconnected peers; those we route to keep their addresses.
  routing_table_.on_membership([this](const PeerId& peer, bool present) {
    if (present) {
      host_.peer_store().pin(peer, kRoutingTablePin);
    } else {
      host_.peer_store().unpin(peer, kRoutingTablePin);
    }
  });
}

DhtServer::~DhtServer() {
  lifetime_.end();
  for (const auto& peer : routing_table_.peers())
    host_.peer_store().unpin(peer, kRoutingTablePin);
}

void DhtServer::start(bool serve_requests) {
  if (started_) return;
  started_ = true;
  host_.on_peer_identified(lifetime_.guard(
      [this](const PeerId& peer, const PeerInfo& info) { peer_identified(peer, info); }));
  if (!serve_requests) return;
  host_.set_handler(
      std::string(kProtocolId),
      [this, alive = lifetime_.token()](std::shared_ptr<Stream> stream) -> asio::awaitable<void> {
        if (!alive) {
          stream->abort();
          co_return;
        }
        co_await serve(std::move(stream));
      });
}

void DhtServer::peer_identified(const PeerId& peer, const PeerInfo& info) {
  if (lists_kad(info)) {
    routing_table_.add(peer, Clock::now());
  } else {
    routing_table_.remove(peer);
  }
}

asio::awaitable<void> DhtServer::serve(std::shared_ptr<Stream> stream) {
  auto alive = lifetime_.token();
  const PeerId from = stream->remote_peer();
  auto per_peer = active_per_peer_.find(from);
  const std::size_t peer_streams = per_peer == active_per_peer_.end() ? 0 : per_peer->second;
  if (active_total_ >= kMaxDhtStreamsTotal || peer_streams >= kMaxDhtStreamsPerPeer) {
    stream->abort();
    co_return;
  }
  StreamSlot slot(*this, from);
  for (;;) {
    auto received = co_await with_timeout(read_framed(*stream, kMaxMessageSize),
                                          kDhtRequestIdleTimeout, "kad request");
    if (!alive || !received) {
      stream->abort();
      co_return;
    }
    if (!received->has_value()) break;  // EOF between requests: the peer is done
    auto request = decode(**received);
    if (!request) {
      stream->abort();
      co_return;
    }
    auto answer = handle_request(from, *request);
    if (!answer) {
      stream->abort();
      co_return;
    }
    if (!answer->has_value()) continue;
    const Bytes encoded = encode(**answer);
    auto written =
        co_await with_timeout(write_framed(*stream, encoded), kDhtWriteTimeout, "kad answer");
    if (!written || !alive) {
      stream->abort();
      co_return;
    }
  }
  (void)co_await stream->close_write();
}

Expected<std::optional<Message>> DhtServer::handle_request(const PeerId& from,
                                                           const Message& request) {
  using Answer = std::optional<Message>;
  switch (request.type) {
    case MessageType::kFindNode: {
      auto answer = answer_find_node(from, request);
      if (!answer) return tl::unexpected(answer.error());
      return Answer(std::move(*answer));
    }
    case MessageType::kGetValue: {
      auto answer = answer_get_value(from, request);
      if (!answer) return tl::unexpected(answer.error());
      return Answer(std::move(*answer));
    }
    case MessageType::kPutValue: {
      auto answer = answer_put_value(request);
      if (!answer) return tl::unexpected(answer.error());
      return Answer(std::move(*answer));
    }
    case MessageType::kAddProvider: {
      auto added = add_providers(from, request);
      if (!added) return tl::unexpected(added.error());
      return Answer();  // go answers nothing
    }
    case MessageType::kGetProviders: {
      auto answer = answer_get_providers(from, request);
      if (!answer) return tl::unexpected(answer.error());
      return Answer(std::move(*answer));
    }
    case MessageType::kPing:
      return Answer(request);  // go's handlePing echoes the request
  }
  return fail("unknown kad message type");
}

std::vector<PeerId> DhtServer::closer_peers(const PeerId& from, const Message& request) const {
  std::vector<PeerId> nearest = routing_table_.nearest(Key::hash(request.key), kDhtCloserPeers);
  std::erase_if(nearest, [&](const PeerId& peer) {
    return peer == from || peer == routing_table_.local_peer();
  });
  return nearest;
}

Peer DhtServer::describe(const PeerId& peer) const {
  Peer described{peer, {}, ConnectionType::kNotConnected};
  if (peer == host_.peer_id()) {
    described.addrs = host_.listen_addresses();
  } else if (const PeerInfo* info = host_.peer_info(peer)) {
    for (const auto& address : info->addresses) {
      if (described.addrs.size() >= kMaxAddrsPerPeer) break;
      described.addrs.push_back(address.without_p2p());
    }
  }
  described.connection = host_.connection_to(peer) != nullptr ? ConnectionType::kConnected
                                                              : ConnectionType::kNotConnected;
  return described;
}

// go's handleFindPeer: for our own ID, ourselves only; otherwise the closer peers plus the
// target itself when we know its addresses, never the requester, and only peers with addresses.
Expected<Message> DhtServer::answer_find_node(const PeerId& from, const Message& request) const {
  if (request.key.empty()) return fail("FIND_NODE without a key");
  Message reply = reply_to(request, false);
  std::vector<PeerId> peers;
  auto target = PeerId::from_multihash(request.key);
  if (target && *target == host_.peer_id()) {
    peers.push_back(*target);
  } else {
    peers = closer_peers(from, request);
    if (target && *target != from &&
        std::find(peers.begin(), peers.end(), *target) == peers.end()) {
      peers.push_back(*target);
    }
  }
  for (const auto& peer : peers) {
    Peer described = describe(peer);
    if (!described.addrs.empty()) reply.closer_peers.push_back(std::move(described));
  }
  return reply;
}

// go's handleGetValue: the stored record, if any, and the closer peers (with or without
// addresses).
Expected<Message> DhtServer::answer_get_value(const PeerId& from, const Message& request) {
  if (request.key.empty()) return fail("GET_VALUE without a key");
  Message reply = reply_to(request, true);
  auto stored = records_.get(request.key, std::chrono::system_clock::now());
  settle_store_memory();  // the lookup drops expired records
  if (stored) {
    reply.record = Record{request.key, std::move(stored->value), format_rfc3339(stored->received)};
  }
  for (const auto& peer : closer_peers(from, request))
    reply.closer_peers.push_back(describe(peer));
  return reply;
}

// go's handlePutValue: the record must be for the message's key and valid (and not worse than
// the stored one); the answer is the request, with the record's time of receipt set.
Expected<Message> DhtServer::answer_put_value(const Message& request) {
  if (request.key.empty()) return fail("PUT_VALUE without a key");
  if (!request.record) return fail("PUT_VALUE without a record");
  if (request.record->key != request.key) return fail("PUT_VALUE key differs from record key");
  const auto now = std::chrono::system_clock::now();
  const auto growth =
      request.record->key.size() + request.record->value.size() + kRecordEntryOverhead;
  if (!store_memory_.reserve(static_cast<std::int64_t>(growth))) {
    return fail("PUT_VALUE refused: resource limit on stored records");
  }
  auto stored = records_.put(request.record->key, request.record->value, now);
  settle_store_memory();
  if (!stored) return tl::unexpected(stored.error());
  Message reply = request;
  reply.record->time_received = format_rfc3339(now);
  return reply;
}

// go's handleAddProvider: only providers that are the sender and have addresses are stored.
Expected<void> DhtServer::add_providers(const PeerId& from, const Message& request) {
  if (request.key.empty()) return fail("ADD_PROVIDER without a key");
  if (request.key.size() > kMaxDhtProviderKeySize) return fail("ADD_PROVIDER key too large");
  const auto now = std::chrono::system_clock::now();
  for (auto& provider : providers_from_sender(request, from)) {
    const auto growth = ProviderStore::footprint(request.key.size(), provider.id, provider.addrs);
    if (!store_memory_.reserve(static_cast<std::int64_t>(growth))) break;
    // A full store refuses new providers; that concerns this one, not the stream.
    (void)providers_.add(request.key, provider.id, provider.addrs, now);
    settle_store_memory();
  }
  return {};
}

void DhtServer::settle_store_memory() {
  const std::size_t held =
      records_.bytes() + records_.size() * kRecordEntryOverhead + providers_.bytes();
  // Shrinking always succeeds; growth was reserved before the store took it.
  (void)store_memory_.resize(static_cast<std::int64_t>(held));
}

// go's handleGetProviders: the providers we hold for the key and the closer peers.
Expected<Message> DhtServer::answer_get_providers(const PeerId& from, const Message& request) {
  if (request.key.empty()) return fail("GET_PROVIDERS without a key");
  if (request.key.size() > kMaxDhtProviderKeySize) return fail("GET_PROVIDERS key too large");
  Message reply = reply_to(request, true);
  auto providers = providers_.get(request.key, std::chrono::system_clock::now());
  settle_store_memory();  // the lookup drops expired providers
  for (auto& provider : providers) {
    Peer described{provider.id, std::move(provider.addrs), ConnectionType::kNotConnected};
    described.connection = host_.connection_to(provider.id) != nullptr
                               ? ConnectionType::kConnected
                               : ConnectionType::kNotConnected;
    reply.provider_peers.push_back(std::move(described));
  }
  for (const auto& peer : closer_peers(from, request))
    reply.closer_peers.push_back(describe(peer));
  return reply;
}

}  // namespace an::p2p::kad
