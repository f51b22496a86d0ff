// Random peer IDs for the Kademlia tests: sha2-256 multihashes of random digests (valid "Qm..."
// peer IDs, cheap to make, reproducible from the generator's seed). Test code only.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <utility>
#include <vector>

#include "p2p/crypto/peer_id.h"
#include "p2p/kad/key.h"
#include "p2p/multiformats/multihash.h"

namespace an::p2p::kad::test {

inline PeerId random_peer(std::mt19937_64& rng) {
  Bytes multihash{static_cast<std::uint8_t>(kSha2_256MultihashCode),
                  static_cast<std::uint8_t>(kSha256DigestSize)};
  for (std::size_t i = 0; i < kSha256DigestSize; ++i) {
    multihash.push_back(static_cast<std::uint8_t>(rng()));
  }
  auto peer = PeerId::from_multihash(multihash);
  if (!peer) std::abort();  // a bug in this helper
  return *peer;
}

inline std::vector<PeerId> random_peers(std::mt19937_64& rng, std::size_t count) {
  std::vector<PeerId> peers;
  peers.reserve(count);
  for (std::size_t i = 0; i < count; ++i)
    peers.push_back(random_peer(rng));
  return peers;
}

inline Key random_key(std::mt19937_64& rng) {
  Key::Array bytes{};
  for (auto& byte : bytes)
    byte = static_cast<std::uint8_t>(rng());
  return Key(bytes);
}

// Brute force: the `count` peers closest to target, closest first.
inline std::vector<PeerId> closest_by_brute_force(const std::vector<PeerId>& peers,
                                                  const Key& target, std::size_t count) {
  std::vector<std::pair<Key, const PeerId*>> by_distance;
  by_distance.reserve(peers.size());
  for (const PeerId& peer : peers)
    by_distance.emplace_back(distance(Key::of_peer(peer), target), &peer);
  std::sort(by_distance.begin(), by_distance.end());
  std::vector<PeerId> out;
  for (std::size_t i = 0; i < by_distance.size() && i < count; ++i) {
    out.push_back(*by_distance[i].second);
  }
  return out;
}

}  // namespace an::p2p::kad::test
