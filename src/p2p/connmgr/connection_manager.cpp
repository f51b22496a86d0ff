#include "p2p/connmgr/connection_manager.h"

#include <algorithm>
#include <tuple>

namespace an::p2p::connmgr {

void ConnectionManager::connected(const PeerId& peer, PeerDirection direction,
                                  Clock::time_point now) {
  peers_[peer] = PeerState{direction, now};
}

void ConnectionManager::disconnected(const PeerId& peer) {
  peers_.erase(peer);
  // Value tags belong to a connection's usefulness; protections outlive it (a bootstrap peer
  // stays protected when it reconnects).
  tags_.erase(peer);
}

void ConnectionManager::protect(const PeerId& peer, const std::string& tag) {
  protections_[peer].insert(tag);
}

bool ConnectionManager::unprotect(const PeerId& peer, const std::string& tag) {
  auto found = protections_.find(peer);
  if (found == protections_.end()) return false;
  found->second.erase(tag);
  if (found->second.empty()) {
    protections_.erase(found);
    return false;
  }
  return true;
}

bool ConnectionManager::is_protected(const PeerId& peer) const {
  return protections_.count(peer) > 0;
}

void ConnectionManager::set_tag(const PeerId& peer, const std::string& tag, std::int64_t value) {
  // Tags may come before the connection (go keeps them in a "temporary" entry), but a peer that
  // never connects would keep them forever: past the cap they are pruned, as go's trim prunes
  // its temporary entries.
  if (peers_.count(peer) == 0 && tags_.count(peer) == 0 &&
      tags_.size() >= peers_.size() + kMaxEarlyTaggedPeers) {
    std::erase_if(tags_, [&](const auto& tagged) { return peers_.count(tagged.first) == 0; });
  }
  tags_[peer][tag] = value;
}

void ConnectionManager::remove_tag(const PeerId& peer, const std::string& tag) {
  auto found = tags_.find(peer);
  if (found == tags_.end()) return;
  found->second.erase(tag);
  if (found->second.empty()) tags_.erase(found);
}

std::int64_t ConnectionManager::value_of(const PeerId& peer) const {
  auto found = tags_.find(peer);
  if (found == tags_.end()) return 0;
  std::int64_t sum = 0;
  for (const auto& [tag, value] : found->second)
    sum += value;
  return sum;
}

std::vector<PeerId> ConnectionManager::select_for_trim(Clock::time_point now) {
  std::vector<PeerId> selected;
  if (peers_.size() <= limits_.high_water) return selected;
  if (trimmed_before_ && now - last_trim_ < limits_.silence_period) return selected;

  struct Candidate {
    const PeerId* peer;
    bool outbound;
    std::int64_t value;
    Clock::time_point connected_at;
    std::string id;  // the last tie-break, so that the choice does not depend on hash order
  };
  std::vector<Candidate> candidates;
  for (const auto& [peer, state] : peers_) {
    if (is_protected(peer)) continue;
    if (now - state.connected_at < limits_.grace_period) continue;
    candidates.push_back({&peer, state.direction == PeerDirection::kOutbound, value_of(peer),
                          state.connected_at, peer.to_string()});
  }
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    // Newest first: a later connected_at sorts earlier.
    return std::tie(a.outbound, a.value, b.connected_at, a.id) <
           std::tie(b.outbound, b.value, a.connected_at, b.id);
  });
  const std::size_t excess = peers_.size() - limits_.low_water;
  for (const auto& candidate : candidates) {
    if (selected.size() >= excess) break;
    selected.push_back(*candidate.peer);
  }
  trimmed_before_ = true;
  last_trim_ = now;
  return selected;
}

}  // namespace an::p2p::connmgr
