// The libp2p NoiseHandshakePayload protobuf and the identity signature over the static Noise
// key. Pure functions: any thread may call them; the caller owns every buffer.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "p2p/crypto/key.h"
#include "p2p/crypto/peer_id.h"
#include "p2p/multiformats/varint.h"
#include "p2p/noise/x25519.h"
#include "util/expected.h"

namespace an::p2p::noise {

// What the identity key signs, followed by the 32-byte static X25519 public key.
inline constexpr std::string_view kStaticKeySignaturePrefix = "noise-libp2p-static-key:";

// message NoiseHandshakePayload { bytes identity_key = 1; bytes identity_sig = 2;
//                                 NoiseExtensions extensions = 4; }
// message NoiseExtensions { repeated bytes webtransport_certhashes = 1;
//                           repeated string stream_muxers = 2; }
struct HandshakePayload {
  Bytes identity_key;  // a libp2p PublicKey protobuf
  Bytes identity_sig;
  std::vector<Bytes> webtransport_certhashes;
  std::vector<std::string> stream_muxers;

  bool operator==(const HandshakePayload&) const = default;
};

// Writes the extensions field only when it has something in it.
Bytes encode_payload(const HandshakePayload& payload);
// Structure only, nothing verified. Unknown fields (e.g. the legacy field 3) are skipped so
// that newer peers keep working; a known field with the wrong wire type, a repeated
// identity_key / identity_sig or broken protobuf is an error starting with
// "malformed noise handshake payload: ".
Expected<HandshakePayload> decode_payload(ByteView encoded);

// "noise-libp2p-static-key:" followed by the key.
Bytes static_key_signature_message(const X25519PublicKey& static_key);

// Our payload: `identity` signs `static_key`.
Expected<HandshakePayload> make_payload(const PrivateKey& identity,
                                        const X25519PublicKey& static_key,
                                        std::vector<std::string> stream_muxers);

struct VerifiedIdentity {
  PeerId peer;
  PublicKey public_key;
};

// Checks that the payload's identity key signed `remote_static_key`, and returns who that is.
// Any key type. Errors: missing fields, an invalid key, a bad signature.
Expected<VerifiedIdentity> verify_payload(const HandshakePayload& payload,
                                          const X25519PublicKey& remote_static_key);

}  // namespace an::p2p::noise
