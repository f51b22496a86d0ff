#include "p2p/kad/io/dht.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "p2p/net/async.h"

namespace an::p2p::kad {

using net::Host;
using net::PeerInfo;
using net::report_exception;
using net::Signal;
namespace {

std::vector<Multiaddr> known_addresses(const Host& host, const PeerId& peer) {
  std::vector<Multiaddr> addresses;
  if (const PeerInfo* info = host.peer_info(peer)) addresses = info->addresses;
  if (addresses.empty()) {
    if (auto connection = host.connection_to(peer)) {
      addresses.push_back(connection->remote_address().without_p2p());
    }
  }
  return addresses;
}

// Routing-table peers not connected now, nearest to us first (they are the ones our lookups and
// those of our neighbours need most).
std::vector<PeerId> unconnected_table_peers(const Host& host, const RoutingTable& table) {
  std::vector<PeerId> result;
  for (const auto& peer : table.nearest(table.local_key(), table.size())) {
    if (!host.connection_to(peer)) result.push_back(peer);
  }
  return result;
}

// Whether the validator selects `first` over `second` (a plain function: GCC 12 mishandles
// braced lists inside coroutines).
Expected<bool> prefer_first(const Bytes& key, const Bytes& first, const Bytes& second) {
  auto validator = NamespacedValidator::with_defaults();
  std::vector<ByteView> candidates{ByteView(first), ByteView(second)};
  auto best = validator.select(key, candidates);
  if (!best) return tl::unexpected(best.error());
  return *best == 0;
}

Expected<void> check_provider_key(const Bytes& key) {
  if (key.empty()) return fail("provider key is empty");
  if (key.size() > kMaxDhtProviderKeySize) {
    return fail("provider key is " + std::to_string(key.size()) + " bytes, more than the " +
                std::to_string(kMaxDhtProviderKeySize) + " DHT peers accept");
  }
  return {};
}

// Our provider record: our ID and the addresses identify advertises, without /p2p/.
DhtProvider own_provider_record(const Host& host) {
  DhtProvider provider{host.peer_id(), {}};
  for (const auto& address : host.advertised_addresses()) {
    if (provider.addresses.size() >= kMaxProviderAddrs) break;
    provider.addresses.push_back(address.without_p2p());
  }
  return provider;
}

// The local providers of a key, at most `count` (0: all), as DhtProviders. The store keeps the
// addresses as peers announced them (js-libp2p's end in /p2p/<its ID>).
std::vector<DhtProvider> local_providers(ProviderStore& store, const Bytes& key,
                                         std::size_t count) {
  std::vector<DhtProvider> result;
  for (auto& provider : store.get(key, std::chrono::system_clock::now())) {
    if (count != 0 && result.size() >= count) break;
    result.push_back(sanitized_provider(Peer{std::move(provider.id), std::move(provider.addrs)}));
  }
  return result;
}

std::vector<PeerId> provider_ids(const std::vector<DhtProvider>& providers) {
  std::vector<PeerId> ids;
  ids.reserve(providers.size());
  for (const auto& provider : providers)
    ids.push_back(provider.id);
  return ids;
}

void append_providers(std::vector<DhtProvider>& to, std::vector<DhtProvider>& from) {
  for (auto& provider : from)
    to.push_back(std::move(provider));
}

// "/pk/" + the ID's multihash.
Bytes public_key_record_key(const PeerId& peer) {
  const std::string prefix = "/pk/";
  Bytes key(prefix.begin(), prefix.end());
  key.insert(key.end(), peer.bytes().begin(), peer.bytes().end());
  return key;
}

// The PublicKey protobuf an identity multihash carries after its code and length bytes.
std::optional<Bytes> inlined_public_key(const PeerId& peer) {
  if (!peer.has_inline_public_key()) return std::nullopt;
  const Bytes& multihash = peer.bytes();
  if (multihash.size() < 2) return std::nullopt;
  Bytes key(multihash.begin() + 2, multihash.end());
  auto id = PeerId::from_encoded_public_key(key);
  if (!id || !(*id == peer)) return std::nullopt;
  return key;
}

bool is_key_of(const PeerId& peer, const Bytes& encoded_public_key) {
  auto id = PeerId::from_encoded_public_key(encoded_public_key);
  return id && *id == peer;
}

}  // namespace

std::string_view dht_mode_name(DhtMode mode) {
  return mode == DhtMode::kServer ? "server" : "client";
}

Dht::Dht(Host& host, asio::any_io_executor executor, DhtConfig config)
    : host_(host),
      executor_(std::move(executor)),
      config_(config),
      server_(host),
      client_(host, server_.routing_table(), config.client),
      random_(std::random_device{}()) {}

Dht::~Dht() {
  lifetime_.end();
}

void Dht::start() {
  if (started_) return;
  started_ = true;
  table_changed_ = std::make_unique<Signal>(executor_);
  stopped_signal_ = std::make_unique<Signal>(executor_);
  server_.start(config_.mode == DhtMode::kServer);
  host_.on_peer_identified(lifetime_.guard([this](const PeerId&, const PeerInfo&) {
    if (!stopped_) table_changed_->notify();
  }));
  asio::co_spawn(executor_, upkeep(), report_exception);
}

void Dht::stop() {
  if (stopped_) return;
  stopped_ = true;
  if (stopped_signal_) stopped_signal_->notify();
  if (table_changed_) table_changed_->notify();
}

asio::awaitable<void> Dht::upkeep() {
  auto alive = lifetime_.token();
  bool force_self_lookup = true;
  while (alive && !stopped_) {
    if (server_.routing_table().size() == 0) {
      // Nothing to ask yet (or any more): wait for identify to show a DHT peer, then look
      // ourselves up at once, as go does when its table goes from empty to non-empty.
      force_self_lookup = true;
      co_await table_changed_->wait();
      continue;
    }
    co_await upkeep_round(force_self_lookup);
    if (!alive || stopped_) co_return;
    force_self_lookup = false;
    (void)co_await stopped_signal_->wait_until(std::chrono::steady_clock::now() +
                                               config_.check_interval);
  }
}

asio::awaitable<void> Dht::upkeep_round(bool force_self_lookup) {
  auto alive = lifetime_.token();
  const auto now = Clock::now();
  if (force_self_lookup || !last_self_lookup_ ||
      now - *last_self_lookup_ >= config_.refresh_interval) {
    last_self_lookup_ = now;
    ++stats_.self_lookups;
    (void)co_await client_.find_closest_peers(
        host_.peer_id().bytes(), std::chrono::steady_clock::now() + config_.upkeep_lookup_timeout);
    if (!alive || stopped_) co_return;
  }
  auto& table = server_.routing_table();
  for (int cpl : table.cpls_needing_refresh(Clock::now(), config_.refresh_interval)) {
    auto target = random_peer_id_in_bucket(table.local_key(), cpl, [this] { return random_(); });
    if (!target) continue;
    ++stats_.refresh_lookups;
    (void)co_await client_.find_closest_peers(
        target->bytes(), std::chrono::steady_clock::now() + config_.upkeep_lookup_timeout);
    if (!alive || stopped_) co_return;
    // Marked whatever the outcome: a bucket that cannot be refreshed now is retried at the next
    // interval, not at every check.
    server_.routing_table().mark_refreshed(Key::of_peer(*target), Clock::now());
  }
  co_await connect_to_learned_peers();
  if (alive) ++stats_.rounds;
}

asio::awaitable<void> Dht::dial_one(PeerId peer, std::shared_ptr<std::size_t> in_flight,
                                    std::shared_ptr<Signal> finished) {
  auto alive = lifetime_.token();
  auto addresses = known_addresses(host_, peer);
  bool connected = false;
  for (const auto& address : addresses) {
    if (!alive || stopped_) break;
    auto attempt = co_await host_.connect(address.without_p2p().with_peer_id(peer));
    if (!alive) break;
    if (attempt) {
      connected = true;
      break;
    }
  }
  if (alive) {
    ++stats_.dials;
    if (!connected) {
      ++stats_.dial_failures;
      // As after a failed query: an unreachable peer leaves the table.
      server_.routing_table().remove(peer);
    }
  }
  --*in_flight;
  finished->notify();
}

asio::awaitable<void> Dht::connect_to_learned_peers() {
  if (config_.connection_target == 0) co_return;
  auto alive = lifetime_.token();
  auto executor = co_await asio::this_coro::executor;
  auto candidates = unconnected_table_peers(host_, server_.routing_table());
  auto in_flight = std::make_shared<std::size_t>(0);
  auto finished = std::make_shared<Signal>(executor);
  std::size_t next = 0;
  while (alive && !stopped_) {
    const std::size_t connected = host_.connected_peers().size();
    const bool want_more = connected + *in_flight < config_.connection_target;
    if (want_more && next < candidates.size() && *in_flight < kDhtMaxConcurrentDials) {
      PeerId peer = candidates[next++];
      if (host_.connection_to(peer)) continue;
      ++*in_flight;
      asio::co_spawn(executor, dial_one(std::move(peer), in_flight, finished), report_exception);
      continue;
    }
    if (*in_flight == 0) break;
    (void)co_await finished->wait_until(std::chrono::steady_clock::now() + kDhtDialTimeout);
  }
}

asio::awaitable<Expected<FoundPeer>> Dht::find_peer(
    PeerId peer, std::chrono::steady_clock::time_point deadline) {
  auto alive = lifetime_.token();
  FoundPeer found;
  if (host_.connection_to(peer)) {
    found.connected = true;
    found.addresses = known_addresses(host_, peer);
    co_return found;
  }
  auto lookup = co_await client_.find_closest_peers(peer.bytes(), deadline);
  if (!alive) co_return fail("DHT stopped");
  if (!lookup) co_return tl::unexpected(lookup.error());
  found.hops = lookup->hops;
  found.connected = host_.connection_to(peer) != nullptr;
  auto learned = lookup->addresses.find(peer);
  if (learned != lookup->addresses.end()) {
    found.addresses = learned->second;
    found.through_dht = true;
  }
  if (found.connected) {
    found.through_dht = true;
    for (const auto& address : known_addresses(host_, peer)) {
      if (std::find(found.addresses.begin(), found.addresses.end(), address) ==
          found.addresses.end()) {
        found.addresses.push_back(address);
      }
    }
  }
  if (found.addresses.empty()) found.addresses = known_addresses(host_, peer);
  if (!found.through_dht && found.addresses.empty()) {
    co_return fail(peer.to_string() + " not found: " +
                   (lookup->closest.empty()
                        ? std::string("no DHT peers answered")
                        : "none of the " + std::to_string(lookup->stats.responses) +
                              " DHT peers that answered knows it"));
  }
  co_return found;
}

asio::awaitable<Expected<LookupOutcome>> Dht::closest_peers(
    Bytes key, std::chrono::steady_clock::time_point deadline) {
  co_return co_await client_.find_closest_peers(std::move(key), deadline);
}

asio::awaitable<Expected<std::size_t>> Dht::put_value(
    Bytes key, Bytes value, std::chrono::steady_clock::time_point deadline) {
  auto alive = lifetime_.token();
  auto stored = server_.records().put(key, value, std::chrono::system_clock::now());
  if (!stored) co_return tl::unexpected(stored.error());
  if (server_.routing_table().size() == 0) co_return std::size_t{0};
  auto remote = co_await client_.put_value(std::move(key), std::move(value), deadline);
  if (!alive) co_return fail("DHT stopped");
  co_return remote;
}

asio::awaitable<Expected<Bytes>> Dht::get_value(Bytes key,
                                                std::chrono::steady_clock::time_point deadline) {
  auto alive = lifetime_.token();
  auto local = server_.records().get(key, std::chrono::system_clock::now());
  if (server_.routing_table().size() == 0) {
    if (local) co_return std::move(local->value);
    co_return fail("no record for the key here, and no DHT peers to ask");
  }
  auto remote = co_await client_.get_value(key, deadline);
  if (!alive) co_return fail("DHT stopped");
  if (!local) co_return remote;
  if (!remote) co_return std::move(local->value);
  // Both: the validator picks, as between remote answers.
  auto local_is_better = prefer_first(key, local->value, *remote);
  if (!local_is_better) co_return tl::unexpected(local_is_better.error());
  if (*local_is_better) co_return std::move(local->value);
  co_return std::move(*remote);
}

asio::awaitable<Expected<std::size_t>> Dht::provide(
    Bytes key, std::chrono::steady_clock::time_point deadline) {
  auto alive = lifetime_.token();
  if (auto valid = check_provider_key(key); !valid) co_return tl::unexpected(valid.error());
  DhtProvider self = own_provider_record(host_);
  auto stored =
      server_.providers().add(key, self.id, self.addresses, std::chrono::system_clock::now());
  if (!stored) co_return tl::unexpected(stored.error());
  if (server_.routing_table().size() == 0) co_return std::size_t{0};
  auto announced = co_await client_.add_provider(std::move(key), std::move(self), deadline);
  if (!alive) co_return fail("DHT stopped");
  co_return announced;
}

asio::awaitable<Expected<std::vector<DhtProvider>>> Dht::find_providers(
    Bytes key, std::size_t count, std::chrono::steady_clock::time_point deadline,
    DhtProviderCallback on_provider) {
  auto alive = lifetime_.token();
  if (auto valid = check_provider_key(key); !valid) co_return tl::unexpected(valid.error());
  std::vector<DhtProvider> found = local_providers(server_.providers(), key, count);
  if (on_provider) {
    for (const auto& provider : found)
      on_provider(provider);
  }
  if ((count != 0 && found.size() >= count) || server_.routing_table().size() == 0) {
    co_return found;
  }
  auto walked = co_await client_.get_providers(std::move(key), count, deadline, provider_ids(found),
                                               std::move(on_provider));
  if (!alive) co_return fail("DHT stopped");
  if (!walked) co_return tl::unexpected(walked.error());
  append_providers(found, walked->providers);
  co_return found;
}

asio::awaitable<Expected<Bytes>> Dht::get_public_key(
    PeerId peer, std::chrono::steady_clock::time_point deadline) {
  auto alive = lifetime_.token();
  if (auto inlined = inlined_public_key(peer)) co_return std::move(*inlined);
  if (const PeerInfo* info = host_.peer_info(peer); info != nullptr && info->public_key) {
    co_return *info->public_key;
  }
  if (server_.routing_table().size() == 0) {
    co_return fail("public key of " + peer.to_string() +
                   " is not in its ID nor known here, and there are no DHT peers to ask");
  }
  auto walked = co_await client_.get_value_candidates(public_key_record_key(peer), deadline);
  if (!alive) co_return fail("DHT stopped");
  if (!walked) co_return tl::unexpected(walked.error());
  for (auto& value : walked->values) {
    if (is_key_of(peer, value)) co_return std::move(value);
  }
  co_return fail("public key of " + peer.to_string() + " not found: " +
                 (walked->values.empty() ? std::string("no DHT peer had a /pk/ record for it")
                                         : std::to_string(walked->values.size()) +
                                               " /pk/ records found, none matching the ID"));
}

}  // namespace an::p2p::kad
