// Unsigned varints as every multiformat uses them, and the byte types shared by src/p2p.
// Pure functions: any thread may call them; the caller owns every buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "util/bytes.h"
#include "util/expected.h"

namespace an::p2p {

using an::Bytes;
using an::ByteView;

// The multiformats unsigned-varint spec caps varints at 9 bytes, i.e. 63 bits, so that no
// implementation has to guess what a 10th byte means.
inline constexpr std::size_t kMaxVarintLength = 9;
inline constexpr std::uint64_t kMaxVarintValue = (std::uint64_t{1} << 63) - 1;

// Appends the minimal encoding of `value`. Values above kMaxVarintValue still encode (as 10
// bytes of plain LEB128) but no multiformats decoder, ours included, accepts them back: only
// pass codes and lengths, which are far smaller.
void append_varint(Bytes& out, std::uint64_t value);
Bytes encode_varint(std::uint64_t value);

// Reads one varint from the front of `input` and, on success, advances `input` past it.
// Rejects truncated input, more than 9 bytes and non-minimal encodings (e.g. 0x81 0x00), so
// that every number has exactly one encoding. `input` is left untouched on error.
Expected<std::uint64_t> read_varint(ByteView& input);

// Decodes a buffer that must hold exactly one varint and nothing else.
Expected<std::uint64_t> decode_varint(ByteView input);

}  // namespace an::p2p
