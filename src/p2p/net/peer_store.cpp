#include "p2p/net/peer_store.h"

#include <algorithm>

namespace an::p2p::net {
namespace {

// A heap block of `size` bytes as glibc's malloc hands it out (8 bytes of header, 16-byte
// steps, 32 at least), so that many tiny parts weigh what they cost.
std::size_t block(std::size_t size) {
  return size == 0 ? 0 : std::max<std::size_t>(32, (size + 8 + 15) / 16 * 16);
}

std::size_t heap_bytes(const std::string& text) {
  static const std::size_t inline_capacity = std::string().capacity();
  return text.capacity() > inline_capacity ? block(text.capacity() + 1) : 0;
}

std::size_t heap_bytes(const Bytes& bytes) {
  return block(bytes.capacity());
}

// Empties and frees: `x = {}` would keep the buffer (assignment from an initializer list), and
// so may a string moved from a short one.
template <class Container>
void release(Container& container) {
  container.clear();
  container.shrink_to_fit();
}

void assign_compact(std::string& to, std::string from) {
  to = std::move(from);
  to.shrink_to_fit();
}

}  // namespace

std::size_t address_footprint(const Multiaddr& address) {
  const auto& parts = address.components();
  std::size_t bytes = sizeof(Multiaddr);
  bytes += block(parts.capacity() * sizeof(MultiaddrComponent));
  for (const auto& part : parts)
    bytes += heap_bytes(part.value) + heap_bytes(part.raw_value);
  return bytes;
}

std::string truncate_utf8(std::string text, std::size_t limit) {
  if (text.size() <= limit) return text;
  std::size_t end = limit;
  // Back off continuation bytes (10xxxxxx) so that the cut falls before a sequence's lead byte.
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80)
    --end;
  text.resize(end);
  text.shrink_to_fit();
  return text;
}

const PeerInfo* PeerStore::find(const PeerId& peer) const {
  auto found = peers_.find(peer);
  return found == peers_.end() ? nullptr : &found->second.info;
}

bool PeerStore::is_connected(const PeerId& peer) const {
  auto found = peers_.find(peer);
  return found != peers_.end() && found->second.connected;
}

bool PeerStore::is_pinned(const PeerId& peer) const {
  auto found = peers_.find(peer);
  return found != peers_.end() && !found->second.pins.empty();
}

void PeerStore::connected(const PeerId& peer) {
  auto& entry = peers_[peer];
  entry.connected = true;
  keep(entry);
}

void PeerStore::disconnected(const PeerId& peer, Clock::time_point now) {
  auto found = peers_.find(peer);
  if (found != peers_.end() && found->second.connected) {
    auto& entry = found->second;
    entry.connected = false;
    entry.last_seen = now;
    cap_addresses(entry.info.addresses, false);
    entry.info.addresses.shrink_to_fit();
    release(entry.info.protocols);
    release(entry.info.agent_version);
    release(entry.info.protocol_version);
    entry.info.observed_address.reset();
    entry.info.identified = false;
    if (entry.pins.empty()) {
      // Nothing to reach it by again: not worth a place.
      if (entry.info.addresses.empty() && !entry.info.public_key) {
        peers_.erase(found);
      } else {
        make_evictable(found->first, entry);
      }
    }
  }
  expire(now);
}

void PeerStore::add_address(const PeerId& peer, const Multiaddr& address) {
  auto found = peers_.find(peer);
  if (found == peers_.end()) return;
  auto& addresses = found->second.info.addresses;
  auto known = std::find(addresses.begin(), addresses.end(), address);
  if (known != addresses.end()) {
    std::rotate(addresses.begin(), known, known + 1);
    return;
  }
  addresses.insert(addresses.begin(), address);
  cap_addresses(addresses, found->second.connected);
}

void PeerStore::learn_addresses(const PeerId& peer, const std::vector<Multiaddr>& addresses,
                                Clock::time_point now) {
  if (addresses.empty()) return;
  auto [found, created] = peers_.try_emplace(peer);
  Entry& entry = found->second;
  auto& known = entry.info.addresses;
  for (const auto& address : addresses) {
    if (std::find(known.begin(), known.end(), address) == known.end()) known.push_back(address);
  }
  cap_addresses(known, entry.connected);
  if (created) {
    if (known.empty()) {  // every address was over the per-address cap
      peers_.erase(found);
      return;
    }
    entry.last_seen = now;
    make_evictable(found->first, entry);
    enforce_count();
  } else if (entry.evictable) {
    // Fresh news of the peer: it expires counting from now.
    evictable_.erase(*entry.evictable);
    entry.evictable.reset();
    entry.last_seen = now;
    make_evictable(found->first, entry);
  }
}

const PeerInfo* PeerStore::record_identify(const PeerId& peer, IdentifyRecord learned) {
  auto found = peers_.find(peer);
  if (found == peers_.end() || !found->second.connected) return nullptr;
  PeerInfo& info = found->second.info;
  if (learned.public_key) info.public_key = std::move(learned.public_key);
  if (!learned.listen_addresses.empty()) {
    cap_addresses(learned.listen_addresses, true);
    info.addresses = std::move(learned.listen_addresses);
    info.addresses.shrink_to_fit();
  }
  if (!learned.protocols.empty()) {
    info.protocols.clear();
    info.protocols.reserve(std::min(learned.protocols.size(), limits_.max_protocols));
    for (auto& protocol : learned.protocols) {
      if (info.protocols.size() >= limits_.max_protocols) break;
      if (protocol.size() > limits_.max_protocol_length) continue;
      info.protocols.push_back(std::move(protocol));
      info.protocols.back().shrink_to_fit();
    }
    info.protocols.shrink_to_fit();
  }
  if (learned.agent_version) {
    assign_compact(info.agent_version,
                   truncate_utf8(std::move(*learned.agent_version), limits_.max_version_length));
  }
  if (learned.protocol_version) {
    assign_compact(info.protocol_version,
                   truncate_utf8(std::move(*learned.protocol_version), limits_.max_version_length));
  }
  if (learned.observed_address &&
      address_footprint(*learned.observed_address) <= limits_.max_address_bytes) {
    info.observed_address = std::move(learned.observed_address);
  }
  info.identified = true;
  return &info;
}

void PeerStore::pin(const PeerId& peer, const std::string& tag) {
  auto& entry = peers_[peer];
  if (std::find(entry.pins.begin(), entry.pins.end(), tag) == entry.pins.end()) {
    entry.pins.push_back(tag);
  }
  keep(entry);
}

void PeerStore::unpin(const PeerId& peer, const std::string& tag) {
  auto found = peers_.find(peer);
  if (found == peers_.end()) return;
  auto& entry = found->second;
  std::erase(entry.pins, tag);
  if (!entry.pins.empty() || entry.connected) return;
  // A peer pinned before we ever reached it has nothing worth keeping.
  if (entry.info.addresses.empty() && !entry.info.public_key) {
    peers_.erase(found);
    return;
  }
  make_evictable(found->first, entry);
  enforce_count();
}

void PeerStore::expire(Clock::time_point now) {
  while (!evictable_.empty() && now - evictable_.begin()->first >= limits_.unconnected_ttl)
    erase(evictable_.begin());
  enforce_count();
}

void PeerStore::make_evictable(const PeerId& peer, Entry& entry) {
  if (!entry.evictable) entry.evictable = evictable_.emplace(entry.last_seen, &peer);
}

void PeerStore::keep(Entry& entry) {
  if (!entry.evictable) return;
  evictable_.erase(*entry.evictable);
  entry.evictable.reset();
}

void PeerStore::enforce_count() {
  while (evictable_.size() > limits_.max_unconnected_peers)
    erase(evictable_.begin());
}

void PeerStore::erase(Evictable::iterator position) {
  auto found = peers_.find(*position->second);
  evictable_.erase(position);
  peers_.erase(found);
}

void PeerStore::cap_addresses(std::vector<Multiaddr>& addresses, bool connected) const {
  const std::size_t max_count =
      connected ? limits_.max_addresses_connected : limits_.max_addresses_unconnected;
  const std::size_t max_bytes =
      connected ? limits_.max_address_bytes_connected : limits_.max_address_bytes_unconnected;
  std::size_t kept = 0;
  std::size_t bytes = 0;
  for (auto& address : addresses) {
    if (kept >= max_count) break;
    const std::size_t size = address_footprint(address);
    if (size > limits_.max_address_bytes || bytes + size > max_bytes) continue;
    bytes += size;
    if (&addresses[kept] != &address) addresses[kept] = std::move(address);
    ++kept;
  }
  addresses.erase(addresses.begin() + static_cast<std::ptrdiff_t>(kept), addresses.end());
}

}  // namespace an::p2p::net
