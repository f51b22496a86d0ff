#include "p2p/daan/io/discovery.h"

#include <algorithm>
#include <optional>
#include <utility>

namespace an::p2p::daan {
namespace {

Clock::duration at_least_min_interval(std::chrono::seconds interval) {
  return std::max<Clock::duration>(interval, kMinLoopInterval);
}

// The next wait after a failed attempt: doubled, within the cap and the loop's own interval.
Clock::duration next_backoff(Clock::duration backoff, Clock::duration interval) {
  return std::min({backoff * 2, Clock::duration(kRetryMaxBackoff), interval});
}

std::string milliseconds_text(Clock::duration duration) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(duration).count()) +
         " ms";
}

std::string describe_provide(const std::string& ns, const Expected<std::size_t>& result) {
  const std::string what = ns + " (" + namespace_cid_text(ns) + ")";
  if (!result) return "advertising " + what + " failed: " + result.error().message;
  if (*result == 0) return "advertised " + what + " here only: no DHT peer yet";
  return "advertised " + what + " at " + std::to_string(*result) + " peers";
}

}  // namespace

Discovery::Discovery(net::Host& host, kad::Dht& dht, DiscoveryConfig config)
    : host_(host),
      dht_(dht),
      config_(std::move(config)),
      wake_(std::make_unique<net::Signal>(host.io_context().get_executor())) {}

Discovery::~Discovery() {
  lifetime_.end();
}

void Discovery::log(DiscoveryLogLevel level, const std::string& message) const {
  if (config_.log) config_.log(level, message);
}

void Discovery::start() {
  if (started_ || stopped_) return;
  started_ = true;
  host_.on_peer_identified(lifetime_.guard([this](const PeerId&, const net::PeerInfo&) {
    ++peers_identified_;
    wake_->notify();
  }));
  if (!config_.join_network) return;
  advertised_.insert(std::string(kNetworkNamespace));
  asio::co_spawn(host_.io_context(), keep_advertising(std::string(kNetworkNamespace), std::nullopt),
                 net::report_exception);
  asio::co_spawn(host_.io_context(), keep_looking_up_network(), net::report_exception);
}

void Discovery::stop() {
  if (stopped_) return;
  stopped_ = true;
  wake_->notify();
}

std::vector<std::string> Discovery::advertised() const {
  return std::vector<std::string>(advertised_.begin(), advertised_.end());
}

asio::awaitable<void> Discovery::until_stopped() {
  auto alive = lifetime_.token();
  while (alive && !stopped_) {
    co_await wake_->wait();
    // The operation raced against this one finished: stop waiting.
    auto state = co_await asio::this_coro::cancellation_state;
    if (state.cancelled() != asio::cancellation_type::none) co_return;
  }
}

asio::awaitable<bool> Discovery::pause(Clock::duration duration, bool retrying) {
  auto alive = lifetime_.token();
  const auto start = Clock::now();
  const auto until = start + duration;
  const auto not_before = start + std::min<Clock::duration>(duration, kRetryInitialBackoff);
  const auto identified_before = peers_identified_;
  while (!stopped_ && Clock::now() < until) {
    const bool peer_came = retrying && peers_identified_ != identified_before;
    if (peer_came && Clock::now() >= not_before) break;
    co_await wake_->wait_until(peer_came ? not_before : until);
    if (!alive) co_return false;
  }
  co_return !stopped_;
}

asio::awaitable<Expected<std::size_t>> Discovery::provide(const std::string& ns,
                                                          Clock::time_point deadline) {
  using namespace asio::experimental::awaitable_operators;
  auto alive = lifetime_.token();
  auto result = co_await (dht_.provide(namespace_provider_key(ns), deadline) || until_stopped());
  if (!alive || result.index() == 1) co_return fail("discovery stopped");
  auto& provided = std::get<0>(result);
  ++stats_.provides;
  if (!provided || *provided == 0) ++stats_.unheard_provides;
  co_return std::move(provided);
}

asio::awaitable<Expected<std::size_t>> Discovery::advertise(std::string ns,
                                                            Clock::time_point deadline) {
  auto alive = lifetime_.token();
  if (auto valid = check_namespace(ns); !valid) co_return tl::unexpected(valid.error());
  if (stopped_) co_return fail("discovery stopped");
  const bool new_namespace = advertised_.count(ns) == 0;
  if (new_namespace && advertised_.size() >= kMaxAdvertisedNamespaces) {
    co_return fail("already advertising " + std::to_string(kMaxAdvertisedNamespaces) +
                   " namespaces, the most kept at once");
  }
  // Registered before the first provide, so that a second call meanwhile starts no other loop.
  if (new_namespace) advertised_.insert(ns);
  auto provided = co_await provide(ns, deadline);
  if (!alive || stopped_) co_return fail("discovery stopped");
  log(DiscoveryLogLevel::kDebug, describe_provide(ns, provided));
  if (new_namespace) {
    asio::co_spawn(host_.io_context(), keep_advertising(ns, provided && *provided > 0),
                   net::report_exception);
  }
  co_return provided;
}

asio::awaitable<void> Discovery::keep_advertising(std::string ns, std::optional<bool> first_heard) {
  auto alive = lifetime_.token();
  const Clock::duration interval = at_least_min_interval(config_.readvertise_interval);
  Clock::duration backoff = kRetryInitialBackoff;
  Clock::duration wait = Clock::duration::zero();
  bool retrying = false;
  if (first_heard) {
    retrying = !*first_heard;
    wait = retrying ? backoff : interval;
    if (retrying) backoff = next_backoff(backoff, interval);
  }
  while (alive && !stopped_) {
    if (wait > Clock::duration::zero()) {
      if (!co_await pause(wait, retrying)) co_return;
      if (!alive) co_return;
    }
    auto provided = co_await provide(ns, Clock::now() + kBackgroundOperationTimeout);
    if (!alive || stopped_) co_return;
    const bool heard = provided && *provided > 0;
    const bool first_network_success = heard && ns == kNetworkNamespace && !network_advertised_;
    if (first_network_success) network_advertised_ = true;
    std::string report = describe_provide(ns, provided);
    if (!heard) report += "; again in " + milliseconds_text(backoff);
    log(first_network_success ? DiscoveryLogLevel::kInfo : DiscoveryLogLevel::kDebug, report);
    if (heard) {
      wait = interval;
      backoff = kRetryInitialBackoff;
      retrying = false;
    } else {
      wait = backoff;
      backoff = next_backoff(backoff, interval);
      retrying = true;
    }
  }
}

asio::awaitable<Expected<std::vector<DiscoveredPeer>>> Discovery::discover(
    std::string ns, std::size_t limit, Clock::time_point deadline) {
  using namespace asio::experimental::awaitable_operators;
  auto alive = lifetime_.token();
  if (auto valid = check_namespace(ns); !valid) co_return tl::unexpected(valid.error());
  if (stopped_) co_return fail("discovery stopped");
  // We may be one of the providers (our own store answers first): ask for one more.
  const std::size_t count = limit == 0 ? 0 : limit + 1;
  auto result = co_await (dht_.find_providers(namespace_provider_key(ns), count, deadline) ||
                          until_stopped());
  if (!alive || result.index() == 1) co_return fail("discovery stopped");
  auto& found = std::get<0>(result);
  if (!found) co_return tl::unexpected(found.error());
  std::vector<DiscoveredPeer> peers;
  const auto now = net::PeerStore::Clock::now();
  for (auto& provider : *found) {
    if (provider.id == host_.peer_id()) continue;
    if (limit != 0 && peers.size() >= limit) break;
    host_.peer_store().learn_addresses(provider.id, provider.addresses, now);
    peers.push_back(DiscoveredPeer{std::move(provider.id), std::move(provider.addresses)});
  }
  co_return peers;
}

asio::awaitable<void> Discovery::keep_looking_up_network() {
  auto alive = lifetime_.token();
  const Clock::duration interval = at_least_min_interval(config_.lookup_interval);
  Clock::duration backoff = kRetryInitialBackoff;
  while (alive && !stopped_) {
    auto found = co_await discover(std::string(kNetworkNamespace), 0,
                                   Clock::now() + kBackgroundOperationTimeout);
    if (!alive || stopped_) co_return;
    ++stats_.network_lookups;
    std::size_t dialled = 0;
    if (found) {
      const std::size_t connected = host_.connected_peers().size();
      for (auto& peer : *found) {
        if (dialled >= config_.max_dials) break;
        if (config_.connection_target != 0 &&
            connected + dialling_.size() >= config_.connection_target) {
          break;
        }
        if (peer.addresses.empty() || host_.connection_to(peer.peer) ||
            dialling_.count(peer.peer) > 0) {
          continue;
        }
        dialling_.insert(peer.peer);
        ++dialled;
        asio::co_spawn(host_.io_context(), dial(std::move(peer)), net::report_exception);
      }
      log(DiscoveryLogLevel::kDebug, "looked up " + std::string(kNetworkNamespace) + ": " +
                                         std::to_string(found->size()) + " other DAAN nodes, " +
                                         std::to_string(dialled) + " dialled");
    } else {
      log(DiscoveryLogLevel::kDebug,
          "looking up " + std::string(kNetworkNamespace) + " failed: " + found.error().message);
    }
    // Nothing found yet (no DHT peer, or the others not advertised yet): look again soon.
    const bool found_some = found && !found->empty();
    const Clock::duration wait = found_some ? interval : backoff;
    backoff = found_some ? Clock::duration(kRetryInitialBackoff) : next_backoff(backoff, interval);
    if (!co_await pause(wait, !found_some)) co_return;
  }
}

asio::awaitable<void> Discovery::dial(DiscoveredPeer found) {
  using namespace asio::experimental::awaitable_operators;
  auto alive = lifetime_.token();
  ++stats_.dials;
  std::string last_error = "no address";
  for (const auto& address : found.addresses) {
    if (stopped_) break;
    auto attempt = co_await (host_.connect(address.with_peer_id(found.peer)) || until_stopped());
    if (!alive) co_return;
    if (attempt.index() == 1) break;
    auto& connected = std::get<0>(attempt);
    if (connected) {
      ++stats_.dials_connected;
      dialling_.erase(found.peer);
      log(DiscoveryLogLevel::kDebug,
          "connected to DAAN node " + found.peer.to_string() + " at " + address.to_string());
      co_return;
    }
    last_error = connected.error().message;
  }
  dialling_.erase(found.peer);
  log(DiscoveryLogLevel::kDebug,
      "could not reach DAAN node " + found.peer.to_string() + ": " + last_error);
}

}  // namespace an::p2p::daan
