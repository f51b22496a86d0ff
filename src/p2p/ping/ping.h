// /ipfs/ping/1.0.0: the payload and the echo check. The protocol is almost all I/O (write 32
// random bytes, read the same 32 back, repeat); this is the part that is not. Any thread.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "p2p/multiformats/varint.h"
#include "util/expected.h"

namespace an::p2p::ping {

inline constexpr std::string_view kProtocolId = "/ipfs/ping/1.0.0";
// The spec fixes the payload at 32 bytes; the responder echoes each 32-byte block as it arrives.
inline constexpr std::size_t kPayloadSize = 32;
// go-libp2p gives up on one ping after 10 s, and a responder ends a stream after 30 s whatever
// the dialer does, so that idle ping streams do not pile up.
inline constexpr std::chrono::seconds kPingTimeout{10};
inline constexpr std::chrono::seconds kResponderStreamLifetime{30};

using Payload = std::array<std::uint8_t, kPayloadSize>;

// Random bytes from OpenSSL's CSPRNG: a predictable payload would let a peer answer before
// reading it and fake a shorter round trip.
Expected<Payload> make_payload();

// Checks the peer's answer to `sent`: exactly kPayloadSize bytes, equal to it.
Expected<void> verify_echo(const Payload& sent, ByteView received);

}  // namespace an::p2p::ping
