// The /plaintext/2.0.0 "security" protocol's one message: each side sends its peer ID and public
// key, checks the other's, and the connection then carries the bytes as they are. No
// confidentiality and no proof of key ownership: for tests and the libp2p interop suite only,
// never offered unless the operator enables it. Pure functions; any thread.
#pragma once

#include <cstddef>
#include <string_view>

#include "p2p/crypto/peer_id.h"
#include "util/expected.h"

namespace an::p2p::plaintext {

inline constexpr std::string_view kPlaintextProtocolId = "/plaintext/2.0.0";

// An Exchange message is an ID and a public key: an 8192-bit RSA key is about 1.1 KB.
inline constexpr std::size_t kMaxPlaintextExchangeSize = 16 * 1024;

// The Exchange message: field 1 the peer ID's multihash, field 2 the PublicKey protobuf.
Bytes encode_plaintext_exchange(const PeerId& peer, ByteView encoded_public_key);
// Checks that the ID is the one the key hashes to. Returns the remote peer.
Expected<PeerId> decode_plaintext_exchange(ByteView message);

}  // namespace an::p2p::plaintext
