// Base58btc (bitcoin alphabet) and base36 text encodings of bytes, as peer IDs and multibase use.
// Pure functions: any thread may call them; the caller owns every buffer.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "p2p/multiformats/varint.h"
#include "util/expected.h"

namespace an::p2p {

// Both codecs treat the bytes as one big number, which costs time quadratic in the length;
// decoding refuses longer text so that hostile input cannot stall a thread. Peer IDs are about
// 50 characters.
inline constexpr std::size_t kMaxBaseXTextLength = 8192;

// Leading zero bytes become leading '1' characters (and back), as bitcoin defines it.
std::string base58btc_encode(ByteView bytes);
Expected<Bytes> base58btc_decode(std::string_view text);

// Lowercase base36 (multibase prefix 'k', without the prefix); leading zero bytes become '0'.
// It lives here because it is the same big-number conversion with another alphabet.
std::string base36_encode(ByteView bytes);
Expected<Bytes> base36_decode(std::string_view text);

}  // namespace an::p2p
