#include "p2p/kad/lookup.h"

#include <algorithm>

namespace an::p2p::kad {

Lookup::Lookup(PeerId self, Key target, std::span<const PeerId> seeds, LookupConfig config)
    : self_(std::move(self)),
      self_distance_(distance(Key::of_peer(self_), target)),
      target_(target),
      config_(config) {
  config_.k = std::max<std::size_t>(config_.k, 1);
  config_.alpha = std::max<std::size_t>(config_.alpha, 1);
  for (const PeerId& seed : seeds)
    add_peer(seed, 0);
  forget_farthest_heard();
  update_done();
}

void Lookup::add_peer(const PeerId& peer, int depth) {
  const Key d = distance(Key::of_peer(peer), target_);
  if (d == self_distance_) {
    ++stats_.closer_peers_ignored;
    return;
  }
  auto it = peers_.lower_bound(d);
  if (it != peers_.end() && it->first == d) {
    it->second.depth = std::min(it->second.depth, depth);
    return;
  }
  peers_.emplace_hint(it, d, Entry{peer, PeerState::heard, depth});
  ++stats_.peers_seen;
}

std::vector<PeerId> Lookup::next_requests() {
  std::vector<PeerId> out;
  if (done_) return out;
  std::size_t considered = 0;
  for (auto& [d, entry] : peers_) {
    if (considered == config_.k || in_flight_ >= config_.alpha) break;
    if (entry.state == PeerState::unreachable) continue;
    ++considered;
    if (entry.state != PeerState::heard) continue;
    entry.state = PeerState::waiting;
    ++in_flight_;
    ++stats_.queries_sent;
    out.push_back(entry.id);
  }
  return out;
}

Lookup::Peers::iterator Lookup::find_in_flight(const PeerId& peer) {
  auto it = peers_.find(distance(Key::of_peer(peer), target_));
  if (it == peers_.end() || it->second.state != PeerState::waiting) return peers_.end();
  return it;
}

void Lookup::on_response(const PeerId& from, std::span<const PeerId> closer_peers) {
  auto it = done_ ? peers_.end() : find_in_flight(from);
  if (it == peers_.end()) {
    ++stats_.unexpected;
    return;
  }
  it->second.state = PeerState::queried;
  --in_flight_;
  ++stats_.responses;
  const int depth = it->second.depth + 1;
  const std::size_t taken = std::min(closer_peers.size(), kMaxCloserPeersPerResponse);
  stats_.closer_peers_ignored += closer_peers.size() - taken;
  for (const PeerId& peer : closer_peers.first(taken))
    add_peer(peer, depth);
  forget_farthest_heard();
  update_done();
}

void Lookup::on_failure(const PeerId& from) {
  auto it = done_ ? peers_.end() : find_in_flight(from);
  if (it == peers_.end()) {
    ++stats_.unexpected;
    return;
  }
  it->second.state = PeerState::unreachable;
  --in_flight_;
  ++stats_.failures;
  update_done();
}

void Lookup::forget_farthest_heard() {
  if (peers_.size() <= kMaxLookupPeers) return;
  // Walk from the farthest end; peers asked or failed stay (failed ones must not be asked again).
  auto it = peers_.end();
  while (peers_.size() > kMaxLookupPeers && it != peers_.begin()) {
    --it;
    if (it->second.state == PeerState::heard) it = peers_.erase(it);
  }
}

void Lookup::update_done() {
  if (done_) return;
  std::size_t considered = 0;
  for (const auto& [d, entry] : peers_) {
    if (considered == config_.k) break;
    if (entry.state == PeerState::unreachable) continue;
    ++considered;
    if (entry.state != PeerState::queried) return;
  }
  done_ = true;
}

std::vector<PeerId> Lookup::result() const {
  std::vector<PeerId> out;
  for (const auto& [d, entry] : peers_) {
    if (out.size() == config_.k) break;
    if (entry.state == PeerState::queried) out.push_back(entry.id);
  }
  return out;
}

int Lookup::hops() const {
  int hops = 0;
  std::size_t counted = 0;
  for (const auto& [d, entry] : peers_) {
    if (counted == config_.k) break;
    if (entry.state != PeerState::queried) continue;
    ++counted;
    hops = std::max(hops, entry.depth);
  }
  return hops;
}

}  // namespace an::p2p::kad
