// What the host knows of other peers: addresses, protocols and the identify facts they gave.
// Owned by the Host; network thread only, like the Host. No I/O and no clock: time is passed in.
//
// Bounded (issue 16): every identity that connects once used to leave an entry forever, holding
// whatever identify brought (a peer packing 80 KiB of identify with 5-byte protocol names left
// 370 KB; with 3-byte addresses 2.5 MB). Now each entry is capped, and entries of peers we are no
// longer connected to are kept only for a while and only so many, as go-libp2p keeps the
// addresses of a recently connected peer (peerstore.RecentlyConnectedAddrTTL) and its
// pstoremanager drops the rest of a disconnected peer's data.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "p2p/crypto/peer_id.h"
#include "p2p/multiformats/multiaddr.h"

namespace an::p2p::net {

using PeerStoreClock = std::chrono::steady_clock;

struct PeerStoreLimits {
  // go's identify keeps at most 500 addresses of a connected peer (connectedPeerMaxAddrs) and
  // 20 once it disconnects (recentlyConnectedPeerMaxAddrs).
  std::size_t max_addresses_connected = 500;
  std::size_t max_addresses_unconnected = 20;
  // Our Multiaddr costs ~250 bytes for /ip4/A/tcp/P (go's ~60) and ~110 more per component, so a
  // count alone does not bound memory: 500 addresses of 12 tiny components are 670 KB. The
  // addresses kept of one peer must also fit these budgets (estimated heap bytes). An honest
  // peer's address is 250-450 bytes; go's largest real-world lists are ~26 addresses.
  std::size_t max_address_bytes_connected = 64 * 1024;
  std::size_t max_address_bytes_unconnected = 12 * 1024;
  // A single address beyond this is dropped (the longest honest one, a DNS name of 255 bytes
  // with a relay's and a peer's ID, is ~1.5 KB).
  std::size_t max_address_bytes = 2 * 1024;
  // go's in-memory peerstore (pstoremem, go-libp2p's default) keeps at most 128 protocols per
  // peer and refuses a longer list; its datastore-backed one allows 1,024. Real peers announce
  // 10-30. Names beyond the cap, and names longer than max_protocol_length, are dropped.
  std::size_t max_protocols = 128;
  std::size_t max_protocol_length = 256;
  // agent_version and protocol_version are cut (at a UTF-8 boundary) to this many bytes.
  std::size_t max_version_length = 256;
  // Entries of peers we are no longer connected to are dropped after this long
  // (go: peerstore.RecentlyConnectedAddrTTL, 15 minutes)...
  PeerStoreClock::duration unconnected_ttl = std::chrono::minutes(15);
  // ...and beyond this many, the least recently seen go first. Pinned peers are not counted.
  std::size_t max_unconnected_peers = 1000;
};

struct PeerInfo {
  std::vector<Multiaddr> addresses;  // from identify (listen addrs) and from dialing
  // From identify, while connected: dropped at disconnection (the next connection identifies
  // again), as go's pstoremanager drops a disconnected peer's protocols and metadata.
  std::vector<std::string> protocols;
  std::string agent_version;
  std::string protocol_version;
  std::optional<Multiaddr> observed_address;  // how the peer sees us
  // The PublicKey protobuf identify gave, kept only when it hashes to the peer's ID.
  std::optional<Bytes> public_key;
  bool identified = false;
};

// What one identify answer or push says; the store keeps it within its caps. Empty lists and
// unset optionals leave what is stored.
struct IdentifyRecord {
  std::vector<Multiaddr> listen_addresses;
  std::vector<std::string> protocols;
  std::optional<std::string> agent_version;
  std::optional<std::string> protocol_version;
  std::optional<Multiaddr> observed_address;
  std::optional<Bytes> public_key;  // checked by the caller against the peer ID
};

class PeerStore {
 public:
  using Clock = PeerStoreClock;

  explicit PeerStore(PeerStoreLimits limits = {}) : limits_(limits) {}

  const PeerInfo* find(const PeerId& peer) const;
  std::size_t size() const { return peers_.size(); }
  // Entries that may expire or be evicted: unconnected and unpinned.
  std::size_t evictable_size() const { return evictable_.size(); }
  const PeerStoreLimits& limits() const { return limits_; }

  // The peer's first connection opened: its entry is created, and kept while connected.
  void connected(const PeerId& peer);
  // Its last connection closed at `now`: its addresses are cut to the unconnected caps
  // (addresses dialled successfully come first, so they stay), its identify facts dropped, and
  // the entry expires unconnected_ttl later unless the peer reconnects or is pinned. An entry
  // left with neither an address nor a key goes at once.
  void disconnected(const PeerId& peer, Clock::time_point now);
  bool is_connected(const PeerId& peer) const;

  // An address the peer was reached at, put first. Ignored for peers without an entry.
  void add_address(const PeerId& peer, const Multiaddr& address);
  // Addresses learned about a peer from a third party (a DHT provider record), so that it can be
  // dialled by ID later. Ones not known yet go after the known ones, within the caps. A peer
  // without an entry gets one, unconnected: it expires and is evicted like a disconnected peer's,
  // counting from `now` (as go keeps such addresses for a while: peerstore.TempAddrTTL).
  void learn_addresses(const PeerId& peer, const std::vector<Multiaddr>& addresses,
                       Clock::time_point now);
  // Records identify of a connected peer within the caps; the entry, or null when the peer is
  // not connected (its answer came after the connection closed: nothing is kept).
  const PeerInfo* record_identify(const PeerId& peer, IdentifyRecord learned);

  // Peers the node needs (bootstrap peers, relays in use, the DHT's routing table) are pinned
  // by tag: kept with any tag, whether connected or not, within the per-peer caps. Pinning an
  // unknown peer creates its entry.
  void pin(const PeerId& peer, const std::string& tag);
  void unpin(const PeerId& peer, const std::string& tag);
  bool is_pinned(const PeerId& peer) const;

  // Drops the unconnected, unpinned entries older than unconnected_ttl, then the least recently
  // seen beyond max_unconnected_peers. Also done at each disconnection.
  void expire(Clock::time_point now);

 private:
  using Evictable = std::multimap<Clock::time_point, const PeerId*>;

  struct Entry {
    PeerInfo info;
    bool connected = false;
    std::vector<std::string> pins;
    Clock::time_point last_seen{};  // when it disconnected
    std::optional<Evictable::iterator> evictable;
  };

  void make_evictable(const PeerId& peer, Entry& entry);
  void keep(Entry& entry);
  void enforce_count();
  void erase(Evictable::iterator position);
  void cap_addresses(std::vector<Multiaddr>& addresses, bool connected) const;

  PeerStoreLimits limits_;
  std::unordered_map<PeerId, Entry> peers_;
  // Unconnected, unpinned entries by when they were last seen, oldest first. The pointers are
  // the keys of peers_ (stable: its nodes do not move).
  Evictable evictable_;
};

// What an address holds on the heap, estimated from its parts (for the address budgets).
std::size_t address_footprint(const Multiaddr& address);
// `text` cut to at most `limit` bytes without splitting a UTF-8 sequence.
std::string truncate_utf8(std::string text, std::size_t limit);

}  // namespace an::p2p::net
