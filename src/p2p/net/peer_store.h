// What the host knows of other peers: addresses, protocols and the identify facts they gave.
// Owned by the Host; network thread only, like the Host.
#pragma once

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "p2p/crypto/peer_id.h"
#include "p2p/multiformats/multiaddr.h"

namespace an::p2p::net {

struct PeerInfo {
  std::vector<Multiaddr> addresses;  // from identify (listen addrs) and from dialing
  std::vector<std::string> protocols;
  std::string agent_version;
  std::string protocol_version;
  std::optional<Multiaddr> observed_address;  // how the peer sees us
  // The PublicKey protobuf identify gave, kept only when it hashes to the peer's ID.
  std::optional<Bytes> public_key;
  bool identified = false;
};

class PeerStore {
 public:
  // The peer's entry, created empty when the peer is new.
  PeerInfo& entry(const PeerId& peer) { return peers_[peer]; }
  const PeerInfo* find(const PeerId& peer) const {
    auto found = peers_.find(peer);
    return found == peers_.end() ? nullptr : &found->second;
  }
  std::size_t size() const { return peers_.size(); }

 private:
  std::unordered_map<PeerId, PeerInfo> peers_;
};

}  // namespace an::p2p::net
