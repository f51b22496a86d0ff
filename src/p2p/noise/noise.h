// The libp2p Noise secure channel (libp2p/specs noise, Noise rev 34), without I/O: include this
// for the whole API. Each piece documents its own threading and ownership rules.
#pragma once

#include <string_view>

#include "p2p/noise/cipher_state.h"
#include "p2p/noise/framing.h"
#include "p2p/noise/handshake.h"
#include "p2p/noise/payload.h"
#include "p2p/noise/x25519.h"

namespace an::p2p::noise {

// The multistream-select protocol ID.
inline constexpr std::string_view kProtocolId = "/noise";
inline constexpr std::size_t kMaxHandshakeMessage = kMaxMessage;

}  // namespace an::p2p::noise
