// Kademlia keys: the SHA-256 of a key's bytes (for a peer, its peer ID multihash), XOR distance
// and common prefix length. Immutable values: any thread may use them; each owns its bytes.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>

#include "p2p/crypto/peer_id.h"
#include "p2p/multiformats/varint.h"

namespace an::p2p::kad {

// libp2p/specs kad-dht "Distance": keys live in the 256-bit space of SHA-256 digests.
inline constexpr std::size_t kKeySize = 32;
inline constexpr int kKeyBits = 256;

// A point of the key space. The byte order is big-endian: bytes()[0] holds the most significant
// bits, so comparing two keys (or two distances) byte by byte compares them as numbers.
class Key {
 public:
  using Array = std::array<std::uint8_t, kKeySize>;

  // The zero key; also the distance of a key to itself.
  Key() = default;
  // Raw key-space bytes, taken as they are (no hashing): for tests, and for distances.
  explicit Key(const Array& bytes) : bytes_(bytes) {}

  // SHA-256 of arbitrary bytes, e.g. a record key or a provider CID's multihash. OpenSSL is the
  // only way this can fail; a process that cannot compute SHA-256 cannot run libp2p at all, so
  // that failure aborts with a message instead of making every caller handle it.
  static Key hash(ByteView data);
  // SHA-256 of the peer ID's multihash bytes, as go-libp2p-kbucket's ConvertPeerID.
  static Key of_peer(const PeerId& peer) { return hash(peer.bytes()); }

  const Array& bytes() const { return bytes_; }
  // Lower-case hex, 64 characters.
  std::string to_hex() const;

  // Numeric order of the 256-bit values. memcmp rather than the defaulted member-wise
  // comparison: lookups and tables compare keys all the time, and memcmp stays fast in
  // unoptimised (sanitizer) builds too.
  friend bool operator==(const Key& a, const Key& b) {
    return std::memcmp(a.bytes_.data(), b.bytes_.data(), kKeySize) == 0;
  }
  friend std::strong_ordering operator<=>(const Key& a, const Key& b) {
    return std::memcmp(a.bytes_.data(), b.bytes_.data(), kKeySize) <=> 0;
  }

 private:
  Array bytes_{};
};

// XOR of the two keys: the Kademlia distance, itself a point of the key space.
Key distance(const Key& a, const Key& b);

// Leading bits that a and b share: 0 to kKeyBits (kKeyBits only when a == b).
int common_prefix_length(const Key& a, const Key& b);

// Orders a and b by their distance to target without building either distance: `less` when a
// is closer, `equal` only when a == b (XOR with the target is a bijection).
std::strong_ordering compare_distance(const Key& target, const Key& a, const Key& b);

}  // namespace an::p2p::kad

template <>
struct std::hash<an::p2p::kad::Key> {
  std::size_t operator()(const an::p2p::kad::Key& key) const noexcept;
};
