#include "p2p/rcmgr/resource_manager.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

namespace an::p2p::rcmgr {

// One scope's limit and what is held in it. `key` names the kind of scope in refusal counts
// (all peers share "peer", so that the counts stay bounded whatever the peers).
struct ScopeState {
  std::string name;
  std::string key;
  Limit limit;
  Usage usage;
  // Handles charging this scope: a peer or protocol scope goes when none is left.
  std::size_t handles = 0;
  // Where a peer or protocol scope lives, to erase it.
  enum class Home { kFixed, kPeers, kProtocols, kProtocolPeers } home = Home::kFixed;
  std::optional<PeerId> peer;
  std::string map_key;
};

struct ManagerState {
  ManagerState(GateConfig gate_config, std::vector<IpPrefix> allowed)
      : gate(gate_config, std::move(allowed)) {}

  struct PendingReport {
    ResourceManager::Clock::time_point last{};
    std::uint64_t count = 0;
    bool reported_before = false;
  };

  LimitConfig config;
  std::function<ResourceManager::Clock::time_point()> clock;
  ScopeState system;
  ScopeState transient;
  ScopeState allowlisted_system;
  ScopeState allowlisted_transient;
  std::unordered_map<PeerId, ScopeState> peers;
  std::map<std::string, ScopeState> protocols;
  std::map<std::string, ScopeState> protocol_peers;  // "PROTOCOL PEER"
  std::unordered_set<PeerId> allowed_peers;
  ConnectionGate gate;
  std::map<std::string, std::uint64_t> refusals;
  std::map<std::string, PendingReport> pending_reports;
  ResourceManager::RefusalListener listener;

  void refused(const ScopeState& scope, Resource resource) {
    refused(scope.key + "." + std::string(resource_name(resource)));
  }

  void refused(const std::string& key) {
    ++refusals[key];
    auto& pending = pending_reports[key];
    ++pending.count;
    const auto now = clock();
    if (pending.reported_before && now - pending.last < kRefusalReportInterval) return;
    if (listener) listener(RefusalReport{key, pending.count});
    pending.last = now;
    pending.count = 0;
    pending.reported_before = true;
  }

  ScopeState& peer_scope(const PeerId& peer) {
    auto [found, inserted] = peers.try_emplace(peer);
    if (inserted) {
      found->second.name = "peer:" + peer.to_string();
      found->second.key = "peer";
      found->second.limit = config.peer;
      found->second.home = ScopeState::Home::kPeers;
      found->second.peer = peer;
    }
    return found->second;
  }

  ScopeState& protocol_scope(const std::string& protocol) {
    auto [found, inserted] = protocols.try_emplace(protocol);
    if (inserted) {
      found->second.name = "protocol:" + protocol;
      found->second.key = found->second.name;
      auto configured = config.protocols.find(protocol);
      found->second.limit =
          configured == config.protocols.end() ? config.protocol : configured->second;
      found->second.home = ScopeState::Home::kProtocols;
      found->second.map_key = protocol;
    }
    return found->second;
  }

  ScopeState& protocol_peer_scope(const std::string& protocol, const PeerId& peer) {
    const std::string map_key = protocol + " " + peer.to_string();
    auto [found, inserted] = protocol_peers.try_emplace(map_key);
    if (inserted) {
      found->second.name = "protocol_peer:" + protocol + ":" + peer.to_string();
      found->second.key = "protocol_peer:" + protocol;
      found->second.limit = config.protocol_peer;
      found->second.home = ScopeState::Home::kProtocolPeers;
      found->second.map_key = map_key;
    }
    return found->second;
  }

  // Drops a peer or protocol scope that nothing holds any more.
  void forget_if_unused(ScopeState* scope) {
    if (scope->handles != 0 || !scope->usage.empty()) return;
    // The keys are copied: erasing destroys the scope they live in.
    switch (scope->home) {
      case ScopeState::Home::kPeers: {
        const PeerId key = *scope->peer;
        peers.erase(key);
        break;
      }
      case ScopeState::Home::kProtocols: {
        const std::string key = scope->map_key;
        protocols.erase(key);
        break;
      }
      case ScopeState::Home::kProtocolPeers: {
        const std::string key = scope->map_key;
        protocol_peers.erase(key);
        break;
      }
      case ScopeState::Home::kFixed:
        break;
    }
  }
};

namespace {

Usage& operator+=(Usage& usage, const Usage& delta) {
  usage.memory += delta.memory;
  usage.streams_inbound += delta.streams_inbound;
  usage.streams_outbound += delta.streams_outbound;
  usage.conns_inbound += delta.conns_inbound;
  usage.conns_outbound += delta.conns_outbound;
  usage.fds += delta.fds;
  return usage;
}

Usage negated(const Usage& usage) {
  Usage result;
  result.memory = -usage.memory;
  result.streams_inbound = -usage.streams_inbound;
  result.streams_outbound = -usage.streams_outbound;
  result.conns_inbound = -usage.conns_inbound;
  result.conns_outbound = -usage.conns_outbound;
  result.fds = -usage.fds;
  return result;
}

// The first resource that `delta` would push over the scope's limit, if any. Only growing
// resources are checked: releasing never fails.
std::optional<Resource> overflow(const ScopeState& scope, const Usage& delta) {
  Usage after = scope.usage;
  after += delta;
  for (Resource resource : kAllResources) {
    if (delta[resource] <= 0) continue;
    if (after[resource] > scope.limit[resource]) return resource;
  }
  return std::nullopt;
}

// Adds `delta` to every scope, or to none and reports the scope that refused.
bool charge(ManagerState& state, const std::vector<ScopeState*>& scopes, const Usage& delta) {
  for (ScopeState* scope : scopes) {
    if (auto resource = overflow(*scope, delta)) {
      state.refused(*scope, *resource);
      return false;
    }
  }
  for (ScopeState* scope : scopes)
    scope->usage += delta;
  return true;
}

void uncharge(const std::vector<ScopeState*>& scopes, const Usage& delta) {
  const Usage minus = negated(delta);
  for (ScopeState* scope : scopes)
    scope->usage += minus;
}

void hold(const std::vector<ScopeState*>& scopes) {
  for (ScopeState* scope : scopes)
    ++scope->handles;
}

void let_go(ManagerState& state, const std::vector<ScopeState*>& scopes, ScopeState* own) {
  for (ScopeState* scope : scopes) {
    if (scope == own) continue;
    --scope->handles;
    state.forget_if_unused(scope);
  }
}

Usage memory_usage(std::int64_t bytes) {
  Usage usage;
  usage.memory = bytes;
  return usage;
}

ScopeState fixed_scope(std::string name, const Limit& limit) {
  ScopeState scope;
  scope.key = name;
  scope.name = std::move(name);
  scope.limit = limit;
  return scope;
}

}  // namespace

std::int64_t Usage::operator[](Resource resource) const {
  switch (resource) {
    case Resource::kMemory:
      return memory;
    case Resource::kStreamsInbound:
      return streams_inbound;
    case Resource::kStreamsOutbound:
      return streams_outbound;
    case Resource::kStreams:
      return streams_inbound + streams_outbound;
    case Resource::kConnsInbound:
      return conns_inbound;
    case Resource::kConnsOutbound:
      return conns_outbound;
    case Resource::kConns:
      return conns_inbound + conns_outbound;
    case Resource::kFds:
      break;
  }
  return fds;
}

bool Usage::empty() const {
  return memory == 0 && streams_inbound == 0 && streams_outbound == 0 && conns_inbound == 0 &&
         conns_outbound == 0 && fds == 0;
}

// --- MemoryReservation

MemoryReservation::MemoryReservation(MemoryReservation&& other) noexcept
    : state_(std::move(other.state_)),
      scopes_(std::move(other.scopes_)),
      reserved_(std::exchange(other.reserved_, 0)) {
  other.scopes_.clear();
}

MemoryReservation& MemoryReservation::operator=(MemoryReservation&& other) noexcept {
  if (this != &other) {
    release_all();
    state_ = std::move(other.state_);
    scopes_ = std::exchange(other.scopes_, {});
    reserved_ = std::exchange(other.reserved_, 0);
  }
  return *this;
}

MemoryReservation::~MemoryReservation() {
  release_all();
}

void MemoryReservation::release_all() {
  if (!state_) return;
  uncharge(scopes_, memory_usage(reserved_));
  let_go(*state_, scopes_, nullptr);
  scopes_.clear();
  reserved_ = 0;
  state_.reset();
}

bool MemoryReservation::reserve(std::int64_t bytes) {
  if (!state_ || bytes <= 0) return state_ != nullptr;
  if (!charge(*state_, scopes_, memory_usage(bytes))) return false;
  reserved_ += bytes;
  return true;
}

void MemoryReservation::release(std::int64_t bytes) {
  bytes = std::min(bytes, reserved_);
  if (!state_ || bytes <= 0) return;
  uncharge(scopes_, memory_usage(bytes));
  reserved_ -= bytes;
}

bool MemoryReservation::resize(std::int64_t bytes) {
  if (bytes >= reserved_) return reserve(bytes - reserved_);
  release(reserved_ - bytes);
  return true;
}

// --- ConnectionScope

namespace {

Usage connection_usage(Direction direction, bool uses_fd, std::int64_t memory) {
  Usage usage;
  (direction == Direction::kInbound ? usage.conns_inbound : usage.conns_outbound) = 1;
  usage.fds = uses_fd ? 1 : 0;
  usage.memory = memory;
  return usage;
}

Usage stream_usage(Direction direction, std::int64_t memory) {
  Usage usage;
  (direction == Direction::kInbound ? usage.streams_inbound : usage.streams_outbound) = 1;
  usage.memory = memory;
  return usage;
}

}  // namespace

ConnectionScope::ConnectionScope(ConnectionScope&& other) noexcept
    : state_(std::move(other.state_)),
      scopes_(std::move(other.scopes_)),
      own_(std::exchange(other.own_, nullptr)),
      direction_(other.direction_),
      uses_fd_(other.uses_fd_),
      allowlisted_(other.allowlisted_),
      peer_(std::move(other.peer_)),
      memory_(std::exchange(other.memory_, 0)) {
  other.scopes_.clear();
}

ConnectionScope& ConnectionScope::operator=(ConnectionScope&& other) noexcept {
  if (this != &other) {
    release_all();
    state_ = std::move(other.state_);
    scopes_ = std::exchange(other.scopes_, {});
    own_ = std::exchange(other.own_, nullptr);
    direction_ = other.direction_;
    uses_fd_ = other.uses_fd_;
    allowlisted_ = other.allowlisted_;
    peer_ = std::move(other.peer_);
    memory_ = std::exchange(other.memory_, 0);
  }
  return *this;
}

ConnectionScope::~ConnectionScope() {
  release_all();
}

void ConnectionScope::release_all() {
  if (!state_) return;
  uncharge(scopes_, connection_usage(direction_, uses_fd_, memory_));
  let_go(*state_, scopes_, own_);
  delete own_;
  own_ = nullptr;
  scopes_.clear();
  state_.reset();
}

Expected<void> ConnectionScope::set_peer(const PeerId& peer) {
  if (!state_) return fail("resource scope released");
  if (peer_) return peer_ == peer ? Expected<void>() : fail("the connection has a peer already");
  // scopes_: own, transient, system.
  ScopeState* transient = scopes_[1];
  ScopeState* system = scopes_[2];
  ScopeState& peer_scope = state_->peer_scope(peer);
  const Usage usage = connection_usage(direction_, uses_fd_, memory_);
  if (auto resource = overflow(peer_scope, usage)) {
    state_->refused(peer_scope, *resource);
    state_->forget_if_unused(&peer_scope);
    return fail("resource limit: peer " + peer.to_string() + " " +
                std::string(resource_name(*resource)));
  }
  uncharge({transient}, usage);
  --transient->handles;
  peer_scope.usage += usage;
  ++peer_scope.handles;
  scopes_ = {own_, &peer_scope, system};
  peer_ = peer;
  allowlisted_ = allowlisted_ || state_->allowed_peers.count(peer) > 0;
  return {};
}

Expected<StreamScope> ConnectionScope::open_stream(Direction direction) {
  if (!state_ || !peer_) return fail("the connection has no peer yet");
  auto& state = *state_;
  auto own = std::make_unique<ScopeState>(fixed_scope("stream", state.config.stream));
  ScopeState* peer_scope = scopes_[1];
  const Usage usage = stream_usage(direction, 0);
  std::vector<ScopeState*> scopes{own.get(), &state.transient, peer_scope, &state.system};
  if (!charge(state, scopes, usage)) {
    if (!allowlisted_) return fail("resource limit: stream refused");
    scopes = {own.get(), &state.allowlisted_transient, peer_scope, &state.allowlisted_system};
    if (!charge(state, scopes, usage)) return fail("resource limit: stream refused");
  }
  hold(scopes);
  StreamScope stream;
  stream.state_ = state_;
  stream.own_ = own.release();
  stream.scopes_ = std::move(scopes);
  stream.peer_ = *peer_;
  stream.direction_ = direction;
  stream.allowlisted_ = allowlisted_;
  return stream;
}

bool ConnectionScope::reserve_memory(std::int64_t bytes) {
  if (!state_ || bytes <= 0) return state_ != nullptr;
  if (!charge(*state_, scopes_, memory_usage(bytes))) return false;
  memory_ += bytes;
  return true;
}

void ConnectionScope::release_memory(std::int64_t bytes) {
  bytes = std::min(bytes, memory_);
  if (!state_ || bytes <= 0) return;
  uncharge(scopes_, memory_usage(bytes));
  memory_ -= bytes;
}

// --- StreamScope

StreamScope::StreamScope(StreamScope&& other) noexcept
    : state_(std::move(other.state_)),
      scopes_(std::move(other.scopes_)),
      own_(std::exchange(other.own_, nullptr)),
      peer_(std::move(other.peer_)),
      direction_(other.direction_),
      allowlisted_(other.allowlisted_),
      memory_(std::exchange(other.memory_, 0)) {
  other.scopes_.clear();
}

StreamScope& StreamScope::operator=(StreamScope&& other) noexcept {
  if (this != &other) {
    release_all();
    state_ = std::move(other.state_);
    scopes_ = std::exchange(other.scopes_, {});
    own_ = std::exchange(other.own_, nullptr);
    peer_ = std::move(other.peer_);
    direction_ = other.direction_;
    allowlisted_ = other.allowlisted_;
    memory_ = std::exchange(other.memory_, 0);
  }
  return *this;
}

StreamScope::~StreamScope() {
  release_all();
}

void StreamScope::release_all() {
  if (!state_) return;
  uncharge(scopes_, stream_usage(direction_, memory_));
  let_go(*state_, scopes_, own_);
  delete own_;
  own_ = nullptr;
  scopes_.clear();
  state_.reset();
}

Expected<void> StreamScope::set_protocol(const std::string& protocol) {
  if (!state_) return fail("resource scope released");
  auto& state = *state_;
  // scopes_: own, transient (before) or protocol + protocol_peer (after), peer, system.
  if (scopes_.size() != 4) return fail("the stream's protocol is set already");
  ScopeState* transient = scopes_[1];
  ScopeState& protocol_scope = state.protocol_scope(protocol);
  ScopeState& protocol_peer_scope = state.protocol_peer_scope(protocol, *peer_);
  const Usage usage = stream_usage(direction_, memory_);
  for (ScopeState* scope : {&protocol_scope, &protocol_peer_scope}) {
    if (auto resource = overflow(*scope, usage)) {
      state.refused(*scope, *resource);
      // Said before the scopes are forgotten: `scope` is one of them.
      auto refusal =
          fail("resource limit: " + scope->key + " " + std::string(resource_name(*resource)));
      state.forget_if_unused(&protocol_peer_scope);
      state.forget_if_unused(&protocol_scope);
      return refusal;
    }
  }
  uncharge({transient}, usage);
  --transient->handles;
  for (ScopeState* scope : {&protocol_scope, &protocol_peer_scope}) {
    scope->usage += usage;
    ++scope->handles;
  }
  scopes_ = {own_, &protocol_scope, &protocol_peer_scope, scopes_[2], scopes_[3]};
  return {};
}

bool StreamScope::reserve_memory(std::int64_t bytes) {
  if (!state_ || bytes <= 0) return state_ != nullptr;
  if (!charge(*state_, scopes_, memory_usage(bytes))) return false;
  memory_ += bytes;
  return true;
}

void StreamScope::release_memory(std::int64_t bytes) {
  bytes = std::min(bytes, memory_);
  if (!state_ || bytes <= 0) return;
  uncharge(scopes_, memory_usage(bytes));
  memory_ -= bytes;
}

// --- ResourceManager

ResourceManager::ResourceManager(LimitConfig config, std::function<Clock::time_point()> clock)
    : state_(std::make_shared<ManagerState>(config.gate, config.allowed_networks)) {
  auto& state = *state_;
  state.clock = std::move(clock);
  state.system = fixed_scope("system", config.system);
  state.transient = fixed_scope("transient", config.transient);
  state.allowlisted_system = fixed_scope("allowlisted_system", config.allowlisted_system);
  state.allowlisted_transient = fixed_scope("allowlisted_transient", config.allowlisted_transient);
  for (const auto& text : config.allowed_peers) {
    if (auto peer = PeerId::parse(text)) state.allowed_peers.insert(*peer);
  }
  state.config = std::move(config);
}

ResourceManager::~ResourceManager() {
  // Handles still alive keep the state; they must not call back into a listener that may be
  // gone with its owner.
  state_->listener = nullptr;
}

Expected<ConnectionScope> ResourceManager::open_connection(Direction direction, bool uses_fd,
                                                           const std::optional<IpAddress>& remote,
                                                           const std::optional<PeerId>& peer) {
  auto& state = *state_;
  const bool allowlisted = (remote && is_allowed(*remote)) || (peer && is_allowed(*peer));
  auto own = std::make_unique<ScopeState>(fixed_scope("connection", state.config.connection));
  const Usage usage = connection_usage(direction, uses_fd, 0);
  std::vector<ScopeState*> scopes{own.get(), &state.transient, &state.system};
  if (!charge(state, scopes, usage)) {
    if (!allowlisted) return fail("resource limit: connection refused");
    scopes = {own.get(), &state.allowlisted_transient, &state.allowlisted_system};
    if (!charge(state, scopes, usage)) return fail("resource limit: connection refused");
  }
  hold(scopes);
  ConnectionScope connection;
  connection.state_ = state_;
  connection.own_ = own.release();
  connection.scopes_ = std::move(scopes);
  connection.direction_ = direction;
  connection.uses_fd_ = uses_fd;
  connection.allowlisted_ = allowlisted;
  return connection;
}

ConnectionGate::Admission ResourceManager::admit_inbound(const IpAddress& address) {
  auto admission = state_->gate.admit(address, state_->clock());
  if (!admission.accepted) state_->refused("gate." + admission.refused_because);
  return admission;
}

void ResourceManager::handshake_finished(ConnectionGate::HandshakeId id, bool established) {
  state_->gate.handshake_finished(id, established);
}

void ResourceManager::inbound_closed(const IpAddress& address) {
  state_->gate.connection_closed(address);
}

MemoryReservation ResourceManager::protocol_memory(const std::string& protocol) {
  MemoryReservation reservation;
  reservation.state_ = state_;
  reservation.scopes_ = {&state_->protocol_scope(protocol), &state_->system};
  hold(reservation.scopes_);
  return reservation;
}

bool ResourceManager::is_allowed(const IpAddress& address) const {
  const auto& networks = state_->config.allowed_networks;
  return std::any_of(networks.begin(), networks.end(),
                     [&](const IpPrefix& prefix) { return prefix.contains(address); });
}

bool ResourceManager::is_allowed(const PeerId& peer) const {
  return state_->allowed_peers.count(peer) > 0;
}

void ResourceManager::allow_peer(const PeerId& peer) {
  state_->allowed_peers.insert(peer);
}

void ResourceManager::on_refusal(RefusalListener listener) {
  state_->listener = std::move(listener);
}

const LimitConfig& ResourceManager::limits() const {
  return state_->config;
}

Snapshot ResourceManager::snapshot(std::size_t busiest_peers) const {
  const auto& state = *state_;
  auto view = [](const ScopeState& scope) {
    return ScopeSnapshot{scope.name, scope.limit, scope.usage};
  };
  Snapshot snapshot;
  snapshot.scopes = {view(state.system), view(state.transient), view(state.allowlisted_system),
                     view(state.allowlisted_transient)};
  for (const auto& [protocol, scope] : state.protocols)
    snapshot.scopes.push_back(view(scope));
  for (const auto& [peer, scope] : state.peers)
    snapshot.peers.push_back(view(scope));
  snapshot.peer_count = snapshot.peers.size();
  std::sort(snapshot.peers.begin(), snapshot.peers.end(),
            [](const ScopeSnapshot& a, const ScopeSnapshot& b) {
              if (a.usage.memory != b.usage.memory) return a.usage.memory > b.usage.memory;
              const auto streams = [](const Usage& u) {
                return u.streams_inbound + u.streams_outbound;
              };
              if (streams(a.usage) != streams(b.usage)) {
                return streams(a.usage) > streams(b.usage);
              }
              return a.name < b.name;
            });
  if (snapshot.peers.size() > busiest_peers) snapshot.peers.resize(busiest_peers);
  snapshot.refusals = state.refusals;
  snapshot.handshakes_in_flight = state.gate.handshakes_in_flight();
  return snapshot;
}

}  // namespace an::p2p::rcmgr
