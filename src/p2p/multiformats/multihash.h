// Multihashes (<varint code><varint digest length><digest>) for the two functions peer IDs use.
// Pure functions and plain values: any thread may call them; the caller owns every buffer.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "p2p/multiformats/varint.h"
#include "util/expected.h"

namespace an::p2p {

inline constexpr std::uint64_t kIdentityMultihashCode = 0x00;
inline constexpr std::uint64_t kSha2_256MultihashCode = 0x12;
inline constexpr std::size_t kSha256DigestSize = 32;

struct Multihash {
  std::uint64_t code = kIdentityMultihashCode;
  Bytes digest;

  Bytes encode() const;
  bool operator==(const Multihash&) const = default;
};

// "identity", "sha2-256", or the code in hex for others.
std::string multihash_code_name(std::uint64_t code);

// The data itself, wrapped: no hashing.
Multihash identity_multihash(ByteView data);

// SHA-256 through OpenSSL; fails only if OpenSSL does (e.g. a provider refused the digest).
Expected<std::array<std::uint8_t, kSha256DigestSize>> sha256(ByteView data);
Expected<Multihash> sha256_multihash(ByteView data);

// Reads one multihash from the front of `input` and advances past it. Any function code is
// accepted, but a sha2-256 digest must be 32 bytes (a shorter one is a truncated hash that we
// never want to trust).
Expected<Multihash> read_multihash(ByteView& input);

// Parses a buffer that must hold exactly one multihash.
Expected<Multihash> parse_multihash(ByteView bytes);

}  // namespace an::p2p
