// RFC 4648 base32, lowercase and without padding: the multibase 'b' encoding used by CIDs.
// Pure functions: any thread may call them; the caller owns every buffer.
#pragma once

#include <string>
#include <string_view>

#include "p2p/multiformats/varint.h"
#include "util/expected.h"

namespace an::p2p {

// Text without the multibase prefix.
std::string base32_encode(ByteView bytes);

// Accepts exactly what base32_encode produces: lowercase letters and 2-7, no '=' padding, no
// impossible lengths and no stray bits in the last character, so each value has one spelling.
Expected<Bytes> base32_decode(std::string_view text);

}  // namespace an::p2p
