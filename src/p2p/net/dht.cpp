#include "p2p/net/dht.h"

#include <algorithm>
#include <utility>

#include "p2p/net/async.h"

namespace an::p2p::net {
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
std::vector<PeerId> unconnected_table_peers(const Host& host, const kad::RoutingTable& table) {
  std::vector<PeerId> result;
  for (const auto& peer : table.nearest(table.local_key(), table.size())) {
    if (!host.connection_to(peer)) result.push_back(peer);
  }
  return result;
}

// Whether the validator selects `first` over `second` (a plain function: GCC 12 mishandles
// braced lists inside coroutines).
Expected<bool> prefer_first(const Bytes& key, const Bytes& first, const Bytes& second) {
  auto validator = kad::NamespacedValidator::with_defaults();
  std::vector<ByteView> candidates{ByteView(first), ByteView(second)};
  auto best = validator.select(key, candidates);
  if (!best) return tl::unexpected(best.error());
  return *best == 0;
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
  *alive_ = false;
}

void Dht::start() {
  if (started_) return;
  started_ = true;
  table_changed_ = std::make_unique<Signal>(executor_);
  stopped_signal_ = std::make_unique<Signal>(executor_);
  server_.start(config_.mode == DhtMode::kServer);
  auto alive = alive_;
  host_.on_peer_identified([this, alive](const PeerId&, const PeerInfo&) {
    if (*alive && !stopped_) table_changed_->notify();
  });
  asio::co_spawn(executor_, upkeep(), report_exception);
}

void Dht::stop() {
  if (stopped_) return;
  stopped_ = true;
  if (stopped_signal_) stopped_signal_->notify();
  if (table_changed_) table_changed_->notify();
}

asio::awaitable<void> Dht::upkeep() {
  auto alive = alive_;
  bool force_self_lookup = true;
  while (*alive && !stopped_) {
    if (server_.routing_table().size() == 0) {
      // Nothing to ask yet (or any more): wait for identify to show a DHT peer, then look
      // ourselves up at once, as go does when its table goes from empty to non-empty.
      force_self_lookup = true;
      co_await table_changed_->wait();
      continue;
    }
    co_await upkeep_round(force_self_lookup);
    if (!*alive || stopped_) co_return;
    force_self_lookup = false;
    (void)co_await stopped_signal_->wait_until(std::chrono::steady_clock::now() +
                                               config_.check_interval);
  }
}

asio::awaitable<void> Dht::upkeep_round(bool force_self_lookup) {
  auto alive = alive_;
  const auto now = kad::Clock::now();
  if (force_self_lookup || !last_self_lookup_ ||
      now - *last_self_lookup_ >= config_.refresh_interval) {
    last_self_lookup_ = now;
    ++stats_.self_lookups;
    (void)co_await client_.find_closest_peers(
        host_.peer_id().bytes(), std::chrono::steady_clock::now() + config_.upkeep_lookup_timeout);
    if (!*alive || stopped_) co_return;
  }
  auto& table = server_.routing_table();
  for (int cpl : table.cpls_needing_refresh(kad::Clock::now(), config_.refresh_interval)) {
    auto target =
        kad::random_peer_id_in_bucket(table.local_key(), cpl, [this] { return random_(); });
    if (!target) continue;
    ++stats_.refresh_lookups;
    (void)co_await client_.find_closest_peers(
        target->bytes(), std::chrono::steady_clock::now() + config_.upkeep_lookup_timeout);
    if (!*alive || stopped_) co_return;
    // Marked whatever the outcome: a bucket that cannot be refreshed now is retried at the next
    // interval, not at every check.
    server_.routing_table().mark_refreshed(kad::Key::of_peer(*target), kad::Clock::now());
  }
  co_await connect_to_learned_peers();
  if (*alive) ++stats_.rounds;
}

asio::awaitable<void> Dht::dial_one(PeerId peer, std::shared_ptr<std::size_t> in_flight,
                                    std::shared_ptr<Signal> finished) {
  auto alive = alive_;
  auto addresses = known_addresses(host_, peer);
  bool connected = false;
  for (const auto& address : addresses) {
    if (!*alive || stopped_) break;
    auto attempt = co_await host_.connect(address.without_p2p().with_peer_id(peer));
    if (!*alive) break;
    if (attempt) {
      connected = true;
      break;
    }
  }
  if (*alive) {
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
  auto alive = alive_;
  auto executor = co_await asio::this_coro::executor;
  auto candidates = unconnected_table_peers(host_, server_.routing_table());
  auto in_flight = std::make_shared<std::size_t>(0);
  auto finished = std::make_shared<Signal>(executor);
  std::size_t next = 0;
  while (*alive && !stopped_) {
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
  auto alive = alive_;
  FoundPeer found;
  if (host_.connection_to(peer)) {
    found.connected = true;
    found.addresses = known_addresses(host_, peer);
    co_return found;
  }
  auto lookup = co_await client_.find_closest_peers(peer.bytes(), deadline);
  if (!*alive) co_return fail("DHT stopped");
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
  auto alive = alive_;
  auto stored = server_.records().put(key, value, std::chrono::system_clock::now());
  if (!stored) co_return tl::unexpected(stored.error());
  if (server_.routing_table().size() == 0) co_return std::size_t{0};
  auto remote = co_await client_.put_value(std::move(key), std::move(value), deadline);
  if (!*alive) co_return fail("DHT stopped");
  co_return remote;
}

asio::awaitable<Expected<Bytes>> Dht::get_value(Bytes key,
                                                std::chrono::steady_clock::time_point deadline) {
  auto alive = alive_;
  auto local = server_.records().get(key, std::chrono::system_clock::now());
  if (server_.routing_table().size() == 0) {
    if (local) co_return std::move(local->value);
    co_return fail("no record for the key here, and no DHT peers to ask");
  }
  auto remote = co_await client_.get_value(key, deadline);
  if (!*alive) co_return fail("DHT stopped");
  if (!local) co_return remote;
  if (!remote) co_return std::move(local->value);
  // Both: the validator picks, as between remote answers.
  auto local_is_better = prefer_first(key, local->value, *remote);
  if (!local_is_better) co_return tl::unexpected(local_is_better.error());
  if (*local_is_better) co_return std::move(local->value);
  co_return std::move(*remote);
}

}  // namespace an::p2p::net
