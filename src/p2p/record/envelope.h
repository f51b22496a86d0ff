// RFC 0002 signed envelopes: a payload of any type signed by a peer's key under a domain
// string, byte-compatible with go-libp2p (core/record) and js-libp2p (@libp2p/peer-record).
// Used by signed peer records (identify) and reservation vouchers (circuit relay v2). Pure
// functions over caller-owned buffers; any thread.
#pragma once

#include <cstddef>
#include <string_view>

#include "p2p/crypto/key.h"
#include "p2p/crypto/peer_id.h"
#include "p2p/multiformats/varint.h"
#include "util/expected.h"

namespace an::p2p::record {

// An envelope travels inside one identify or relay message, so it is never larger than one
// (identify's message cap, 8 KiB, is the larger).
inline constexpr std::size_t kMaxEnvelopeSize = 8 * 1024;

// protobuf `message Envelope`: public_key = 1 (a PublicKey message), payload_type = 2,
// payload = 3, signature = 5.
struct Envelope {
  Bytes public_key;
  Bytes payload_type;
  Bytes payload;
  Bytes signature;
};

Bytes encode_envelope(const Envelope& envelope);
// Structure only, no signature check; at most kMaxEnvelopeSize bytes. Each known field at most
// once (a second copy could make readers disagree on what was signed); unknown fields are
// skipped; the public key is required.
Expected<Envelope> decode_envelope(ByteView bytes);

// What the signature covers: uvarint(len) + bytes, for the domain, the payload type and the
// payload in turn.
Bytes envelope_signing_input(std::string_view domain, ByteView payload_type, ByteView payload);

// The envelope bytes of `payload`, signed by `key` over domain, payload type and payload.
Expected<Bytes> seal_envelope(const PrivateKey& key, std::string_view domain, ByteView payload_type,
                              ByteView payload);

// What a checked envelope says: who signed it and the payload they signed.
struct OpenedEnvelope {
  PeerId signer;
  Bytes payload;
};

// Checks size (at most `max_size` bytes), structure, that the payload type is `payload_type`,
// and the signature under `domain`. The payload is not parsed. Errors start with "envelope: ".
Expected<OpenedEnvelope> open_envelope(ByteView envelope, std::string_view domain,
                                       ByteView payload_type,
                                       std::size_t max_size = kMaxEnvelopeSize);

}  // namespace an::p2p::record
