#include "p2p/kad/io/dht_client.h"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "p2p/net/async.h"
#include "p2p/net/framed.h"

namespace an::p2p::kad {

using net::Host;
using net::Lifetime;
using net::PeerInfo;
using net::read_framed;
using net::report_exception;
using net::Signal;
using net::Stream;
using net::use_tuple;
using net::with_timeout;
using net::write_framed;
namespace {

using namespace asio::experimental::awaitable_operators;

// Tries the addresses one after another; the last error when none connects.
asio::awaitable<Expected<void>> dial_any(Host& host, PeerId peer, std::vector<Multiaddr> addresses,
                                         Lifetime::Token alive) {
  std::string last_error = "no address";
  for (const auto& address : addresses) {
    const Multiaddr full = address.without_p2p().with_peer_id(peer);
    auto connected = co_await host.connect(full);
    if (!alive) co_return fail("DHT client destroyed");
    if (connected) co_return Expected<void>();
    last_error = connected.error().message;
  }
  co_return fail("cannot connect to " + peer.to_string() + ": " + last_error);
}

// The IDs of the closer peers a lookup takes from one answer (the first
// kMaxCloserPeersPerResponse); a plain function, not a coroutine (see GCC's bogus
// -Wfree-nonheap-object on vectors built inside coroutines).
std::vector<PeerId> closer_ids(const std::vector<Peer>& peers) {
  std::vector<PeerId> ids;
  const std::size_t count = std::min(peers.size(), kMaxCloserPeersPerResponse);
  ids.reserve(count);
  for (std::size_t i = 0; i < count; ++i)
    ids.push_back(peers[i].id);
  return ids;
}

// Reads until the peer ends the stream; an answer, if any, is read and ignored.
asio::awaitable<Expected<void>> await_end(std::shared_ptr<Stream> stream) {
  for (;;) {
    auto received = co_await read_framed(*stream, kMaxMessageSize);
    if (!received) co_return tl::unexpected(received.error());
    if (!received->has_value()) co_return Expected<void>();
  }
}

// Opens the stream and writes the request; then reads one answer and half-closes, or, for a
// request without an answer, half-closes and waits for the peer's end of the stream (nullopt).
// `holder` keeps the stream so that the caller can reset it when the exchange times out. The
// Host is used only before the first suspension.
asio::awaitable<Expected<std::optional<Message>>> exchange(
    Host& host, PeerId peer, Message message, bool expect_answer,
    std::shared_ptr<std::shared_ptr<Stream>> holder) {
  // Optimistic negotiation, as go's lazy multistream-select: the request follows the protocol
  // proposal at once, saving a round trip per query; a peer that refuses the protocol fails the
  // read of the answer (or of the end of the stream).
  auto opened = host.new_stream_optimistic(peer, std::string(kProtocolId));
  if (!opened) co_return tl::unexpected(opened.error());
  std::shared_ptr<Stream> stream = *opened;
  *holder = stream;
  const Bytes encoded = encode(message);
  auto written = co_await write_framed(*stream, encoded);
  if (!written) co_return tl::unexpected(written.error());
  if (!expect_answer) {
    auto closed = co_await stream->close_write();
    if (!closed) co_return tl::unexpected(closed.error());
    auto ended = co_await await_end(stream);
    if (!ended) co_return tl::unexpected(ended.error());
    co_return std::nullopt;
  }
  auto received = co_await read_framed(*stream, kMaxMessageSize);
  if (!received) co_return tl::unexpected(received.error());
  if (!received->has_value()) co_return fail("kad stream ended before the answer");
  auto decoded = decode(**received);
  if (!decoded) co_return tl::unexpected(decoded.error());
  (void)co_await stream->close_write();
  co_return std::move(*decoded);
}

Message lookup_request(MessageType type, const Bytes& target) {
  Message request;
  request.type = type;
  request.key = target;
  request.cluster_level_raw = 1;  // as go writes it (cluster level 0, stored plus one)
  return request;
}

}  // namespace

DhtProvider sanitized_provider(Peer peer) {
  DhtProvider provider{std::move(peer.id), {}};
  for (auto& address : peer.addrs) {
    if (provider.addresses.size() >= kMaxProviderAddrs) break;
    if (auto named = address.peer_id_component()) {
      auto parsed = PeerId::parse(*named);
      if (!parsed || !(*parsed == provider.id)) continue;
    }
    Multiaddr plain = address.without_p2p();
    if (std::find(provider.addresses.begin(), provider.addresses.end(), plain) !=
        provider.addresses.end()) {
      continue;
    }
    provider.addresses.push_back(std::move(plain));
  }
  return provider;
}

// What one lookup shares with its queries, which may outlive it (abandoned at the deadline).
struct DhtClient::LookupState {
  struct Report {
    PeerId peer;
    std::optional<std::vector<Peer>> closer;  // nullopt: the query failed
  };

  LookupState(const asio::any_io_executor& executor, MessageType request_type, Bytes target_bytes)
      : type(request_type), target(std::move(target_bytes)), changed(executor), stop(executor) {}

  // FIND_NODE, or GET_VALUE for a lookup that also collects the records its answers carry.
  MessageType type;
  Bytes target;
  // GET_VALUE: the values of the records answered for the target key (not validated yet).
  std::vector<Bytes> values;
  // GET_PROVIDERS: the providers found, their IDs (with those the caller knew already), the
  // limit (0: none besides kMaxProvidersPerLookup), and whom to tell of each new one.
  std::vector<DhtProvider> providers;
  std::unordered_set<PeerId> provider_ids;
  std::size_t provider_limit = 0;
  DhtProviderCallback on_provider;
  bool enough_providers = false;
  std::vector<Report> reports;
  // Addresses of peers named in answers, to dial them with.
  std::unordered_map<PeerId, std::vector<Multiaddr>> addresses;
  Signal changed;  // a report arrived
  Signal stop;     // the lookup ended: queries still in flight give up
  bool stopped = false;
};

DhtClient::DhtClient(Host& host, RoutingTable& routing_table, DhtClientConfig config)
    : host_(host),
      routing_table_(routing_table),
      config_(config),
      validator_(NamespacedValidator::with_defaults()) {}

DhtClient::~DhtClient() {
  lifetime_.end();
}

asio::awaitable<Expected<void>> DhtClient::ensure_connected(PeerId peer,
                                                            std::vector<Multiaddr> addresses) {
  if (host_.connection_to(peer) != nullptr) co_return Expected<void>();
  if (addresses.empty()) {
    const PeerInfo* info = host_.peer_info(peer);
    if (info != nullptr) addresses = info->addresses;
  }
  if (addresses.empty()) co_return fail("no address for " + peer.to_string());
  const std::string what = "dialing " + peer.to_string();
  co_return co_await with_timeout(dial_any(host_, peer, std::move(addresses), lifetime_.token()),
                                  config_.dial_timeout, what);
}

asio::awaitable<Expected<std::optional<Message>>> DhtClient::exchange_with_timeout(
    PeerId peer, Message message, std::vector<Multiaddr> addresses, bool expect_answer) {
  auto alive = lifetime_.token();
  Host& host = host_;
  const auto timeout = config_.request_timeout;
  const MessageType type = message.type;
  auto connected = co_await ensure_connected(peer, std::move(addresses));
  if (!alive) co_return fail("DHT client destroyed");
  if (!connected) {
    routing_table_.remove(peer);
    co_return tl::unexpected(connected.error());
  }

  auto holder = std::make_shared<std::shared_ptr<Stream>>();
  asio::steady_timer timer(co_await asio::this_coro::executor, timeout);
  auto result = co_await (exchange(host, peer, std::move(message), expect_answer, holder) ||
                          timer.async_wait(use_tuple));
  if (result.index() == 1) {
    if (*holder) (*holder)->abort();
    co_return fail("kad " + std::string(message_type_name(type)) + " to " + peer.to_string() +
                   ": timed out");
  }
  auto outcome = std::move(std::get<0>(result));
  if (!outcome && *holder) (*holder)->abort();
  co_return outcome;
}

asio::awaitable<Expected<Message>> DhtClient::request(PeerId peer, Message message,
                                                      std::vector<Multiaddr> addresses) {
  const MessageType type = message.type;
  auto answer = co_await exchange_with_timeout(std::move(peer), std::move(message),
                                               std::move(addresses), /*expect_answer=*/true);
  if (!answer) co_return tl::unexpected(answer.error());
  if ((*answer)->type != type) {
    co_return fail("kad answer of type " + std::string(message_type_name((*answer)->type)) +
                   " to a " + std::string(message_type_name(type)) + " request");
  }
  co_return std::move(**answer);
}

asio::awaitable<void> DhtClient::query(std::shared_ptr<LookupState> state, PeerId peer,
                                       std::vector<Multiaddr> addresses) {
  auto alive = lifetime_.token();
  if (state->stopped) co_return;
  auto outcome =
      co_await (request(peer, lookup_request(state->type, state->target), std::move(addresses)) ||
                state->stop.wait());
  if (!alive || state->stopped) co_return;
  LookupState::Report report{peer, std::nullopt};
  if (outcome.index() == 0) {
    auto& answer = std::get<0>(outcome);
    if (answer) {
      report.closer = std::move(answer->closer_peers);
      if (answer->record && answer->record->key == state->target) {
        state->values.push_back(std::move(answer->record->value));
      }
      if (state->type == MessageType::kGetProviders) {
        collect_providers(*state, std::move(answer->provider_peers));
      }
    }
  }
  state->reports.push_back(std::move(report));
  state->changed.notify();
}

void DhtClient::collect_providers(LookupState& state, std::vector<Peer> providers) {
  const std::size_t limit = state.provider_limit == 0
                                ? kMaxProvidersPerLookup
                                : std::min(state.provider_limit, kMaxProvidersPerLookup);
  for (auto& announced : providers) {
    if (state.provider_ids.size() >= limit) break;
    if (state.provider_ids.contains(announced.id)) continue;
    DhtProvider provider = sanitized_provider(std::move(announced));
    if (provider.addresses.empty()) {
      if (const PeerInfo* info = host_.peer_info(provider.id)) {
        for (const auto& address : info->addresses) {
          if (provider.addresses.size() >= kMaxProviderAddrs) break;
          provider.addresses.push_back(address.without_p2p());
        }
      }
    }
    state.provider_ids.insert(provider.id);
    state.providers.push_back(provider);
    if (state.on_provider) state.on_provider(provider);
  }
  if (state.provider_ids.size() >= limit) state.enough_providers = true;
}

asio::awaitable<Expected<LookupOutcome>> DhtClient::find_closest_peers(
    Bytes target, std::chrono::steady_clock::time_point deadline) {
  auto executor = co_await asio::this_coro::executor;
  auto state = std::make_shared<LookupState>(executor, MessageType::kFindNode, std::move(target));
  co_return co_await run_lookup(std::move(state), deadline);
}

asio::awaitable<Expected<LookupOutcome>> DhtClient::run_lookup(
    std::shared_ptr<LookupState> state, std::chrono::steady_clock::time_point deadline) {
  auto alive = lifetime_.token();
  auto executor = co_await asio::this_coro::executor;
  const Key key = Key::hash(state->target);
  const std::vector<PeerId> seeds = routing_table_.nearest(key, config_.lookup.k);
  Lookup lookup(host_.peer_id(), key, seeds, config_.lookup);

  LookupOutcome outcome;
  for (;;) {
    std::vector<LookupState::Report> reports = std::move(state->reports);
    state->reports.clear();
    for (auto& report : reports) {
      if (!report.closer) {
        lookup.on_failure(report.peer);
        continue;
      }
      const std::vector<PeerId> ids = closer_ids(*report.closer);
      for (std::size_t i = 0; i < ids.size(); ++i) {
        auto& peer = (*report.closer)[i];
        if (!peer.addrs.empty() && !state->addresses.contains(peer.id)) {
          state->addresses.emplace(peer.id, std::move(peer.addrs));
        }
      }
      (void)routing_table_.mark_successful_query(report.peer, Clock::now());
      lookup.on_response(report.peer, ids);
    }
    if (lookup.done() || state->enough_providers) {
      outcome.completed = true;
      break;
    }
    for (auto& peer : lookup.next_requests()) {
      std::vector<Multiaddr> addresses;
      auto known = state->addresses.find(peer);
      if (known != state->addresses.end()) addresses = known->second;
      asio::co_spawn(executor, query(state, peer, std::move(addresses)), report_exception);
    }
    if (lookup.done()) {
      outcome.completed = true;
      break;
    }
    if (!state->reports.empty()) continue;
    if (std::chrono::steady_clock::now() >= deadline) break;
    (void)co_await state->changed.wait_until(deadline);
    if (!alive) {
      state->stopped = true;
      state->stop.notify();
      co_return fail("DHT client destroyed");
    }
    // A caller that stopped waiting (e.g. `lookup || timer`) cancels us: give up at once rather
    // than at the deadline, which the caller would otherwise have to wait for.
    auto cancellation = co_await asio::this_coro::cancellation_state;
    if (cancellation.cancelled() != asio::cancellation_type::none) {
      state->stopped = true;
      state->stop.notify();
      co_return fail("lookup cancelled");
    }
  }
  state->stopped = true;
  state->stop.notify();
  outcome.closest = lookup.result();
  outcome.addresses = std::move(state->addresses);
  outcome.values = std::move(state->values);
  outcome.providers = std::move(state->providers);
  outcome.stats = lookup.stats();
  outcome.hops = lookup.hops();
  co_return outcome;
}

struct DhtClient::FanOutState {
  FanOutState(const asio::any_io_executor& executor, std::size_t count)
      : pending(count), changed(executor), stop(executor) {}

  std::size_t accepted = 0;
  std::size_t pending;
  Signal changed;  // an answer (or a failure) arrived
  Signal stop;     // the caller stopped waiting
  bool stopped = false;
};

asio::awaitable<void> DhtClient::fan_out_one(std::shared_ptr<FanOutState> state, PeerId peer,
                                             Message message) {
  auto alive = lifetime_.token();
  if (state->stopped) co_return;
  bool accepted = false;
  if (message.type == MessageType::kAddProvider) {
    auto outcome = co_await (send(peer, std::move(message)) || state->stop.wait());
    if (!alive || state->stopped) co_return;
    accepted = outcome.index() == 0 && std::get<0>(outcome).has_value();
  } else {
    auto outcome = co_await (request(peer, std::move(message)) || state->stop.wait());
    if (!alive || state->stopped) co_return;
    accepted = outcome.index() == 0 && std::get<0>(outcome).has_value();
  }
  if (accepted) ++state->accepted;
  --state->pending;
  state->changed.notify();
}

asio::awaitable<std::size_t> DhtClient::fan_out(std::vector<PeerId> peers, Message message,
                                                std::chrono::steady_clock::time_point deadline) {
  auto alive = lifetime_.token();
  auto executor = co_await asio::this_coro::executor;
  auto state = std::make_shared<FanOutState>(executor, peers.size());
  for (std::size_t i = 0; i < peers.size(); ++i) {
    asio::co_spawn(executor, fan_out_one(state, peers[i], message), report_exception);
  }
  while (state->pending > 0 && std::chrono::steady_clock::now() < deadline) {
    (void)co_await state->changed.wait_until(deadline);
    if (!alive) break;
    auto cancellation = co_await asio::this_coro::cancellation_state;
    if (cancellation.cancelled() != asio::cancellation_type::none) break;
  }
  state->stopped = true;
  state->stop.notify();
  co_return state->accepted;
}

asio::awaitable<Expected<std::size_t>> DhtClient::put_value(
    Bytes key, Bytes value, std::chrono::steady_clock::time_point deadline) {
  auto alive = lifetime_.token();
  auto valid = validator_.validate(key, value, std::chrono::system_clock::now());
  if (!valid) co_return tl::unexpected(valid.error());
  auto closest = co_await find_closest_peers(key, deadline);
  if (!alive) co_return fail("DHT client destroyed");
  if (!closest) co_return tl::unexpected(closest.error());
  if (closest->closest.empty()) co_return fail("PUT_VALUE: no peers found");
  Message request;
  request.type = MessageType::kPutValue;
  request.cluster_level_raw = 1;
  request.key = key;
  request.record = Record{key, value, ""};
  auto stored = co_await fan_out(std::move(closest->closest), std::move(request), deadline);
  if (!alive) co_return fail("DHT client destroyed");
  co_return stored;
}

asio::awaitable<Expected<Bytes>> DhtClient::get_value(
    Bytes key, std::chrono::steady_clock::time_point deadline) {
  auto alive = lifetime_.token();
  // go's GetValue walk: the lookup itself sends GET_VALUE, so every peer it asks, not only the
  // k closest at the end, may answer with the record; closer peers in the answers drive it on.
  auto walked = co_await get_value_candidates(key, deadline);
  if (!alive) co_return fail("DHT client destroyed");
  if (!walked) co_return tl::unexpected(walked.error());
  auto best = best_valid_value(key, walked->values);
  if (!best) co_return tl::unexpected(best.error());
  co_return std::move(walked->values[*best]);
}

asio::awaitable<Expected<LookupOutcome>> DhtClient::get_value_candidates(
    Bytes key, std::chrono::steady_clock::time_point deadline) {
  auto alive = lifetime_.token();
  auto executor = co_await asio::this_coro::executor;
  auto state = std::make_shared<LookupState>(executor, MessageType::kGetValue, std::move(key));
  auto walked = co_await run_lookup(std::move(state), deadline);
  if (!alive) co_return fail("DHT client destroyed");
  if (!walked) co_return tl::unexpected(walked.error());
  if (walked->stats.responses == 0) co_return fail("GET_VALUE: no peers answered");
  co_return walked;
}

asio::awaitable<Expected<void>> DhtClient::send(PeerId peer, Message message,
                                                std::vector<Multiaddr> addresses) {
  auto delivered = co_await exchange_with_timeout(std::move(peer), std::move(message),
                                                  std::move(addresses), /*expect_answer=*/false);
  if (!delivered) co_return tl::unexpected(delivered.error());
  co_return Expected<void>();
}

asio::awaitable<Expected<std::size_t>> DhtClient::add_provider(
    Bytes key, DhtProvider provider, std::chrono::steady_clock::time_point deadline) {
  auto alive = lifetime_.token();
  if (provider.addresses.empty()) {
    co_return fail("ADD_PROVIDER: no addresses to announce (peers drop providers without any)");
  }
  auto closest = co_await find_closest_peers(key, deadline);
  if (!alive) co_return fail("DHT client destroyed");
  if (!closest) co_return tl::unexpected(closest.error());
  if (closest->closest.empty()) co_return fail("ADD_PROVIDER: no peers found");
  Message request;
  request.type = MessageType::kAddProvider;
  request.cluster_level_raw = 1;
  request.key = std::move(key);
  Peer announced{std::move(provider.id), std::move(provider.addresses), ConnectionType::kConnected};
  request.provider_peers.push_back(std::move(announced));
  auto accepted = co_await fan_out(std::move(closest->closest), std::move(request), deadline);
  if (!alive) co_return fail("DHT client destroyed");
  co_return accepted;
}

asio::awaitable<Expected<LookupOutcome>> DhtClient::get_providers(
    Bytes key, std::size_t count, std::chrono::steady_clock::time_point deadline,
    std::vector<PeerId> known, DhtProviderCallback on_provider) {
  auto alive = lifetime_.token();
  auto executor = co_await asio::this_coro::executor;
  auto state = std::make_shared<LookupState>(executor, MessageType::kGetProviders, std::move(key));
  state->provider_limit = count;
  state->on_provider = std::move(on_provider);
  for (auto& id : known)
    state->provider_ids.insert(std::move(id));
  if (count != 0 && state->provider_ids.size() >= count) state->enough_providers = true;
  auto walked = co_await run_lookup(state, deadline);
  if (!alive) co_return fail("DHT client destroyed");
  co_return walked;
}

Expected<std::size_t> DhtClient::best_valid_value(const Bytes& key,
                                                  const std::vector<Bytes>& values) const {
  const auto now = std::chrono::system_clock::now();
  std::vector<std::size_t> valid;
  std::vector<ByteView> views;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!validator_.validate(key, values[i], now)) continue;
    valid.push_back(i);
    views.push_back(values[i]);
  }
  if (views.empty()) return fail("GET_VALUE: no valid record found");
  auto best = validator_.select(key, views);
  if (!best) return tl::unexpected(best.error());
  return valid[*best];
}

}  // namespace an::p2p::kad
