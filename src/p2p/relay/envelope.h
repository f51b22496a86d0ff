// Generic RFC 0002 signed envelopes (any domain and payload type) on top of the envelope codec
// of identify/peer_record.h. Pure functions over caller-owned buffers; any thread.
#pragma once

#include <cstddef>
#include <string_view>

#include "p2p/crypto/key.h"
#include "p2p/crypto/peer_id.h"
#include "p2p/multiformats/varint.h"
#include "util/expected.h"

namespace an::p2p::relay {

// The envelope bytes of `payload`, signed by `key` over domain, payload type and payload.
Expected<Bytes> seal_envelope(const PrivateKey& key, std::string_view domain, ByteView payload_type,
                              ByteView payload);

// What a checked envelope says: who signed it and the payload they signed.
struct OpenedEnvelope {
  PeerId signer;
  Bytes payload;
};

// Checks size (at most `max_size` bytes), structure, that the payload type is `payload_type`,
// and the signature under `domain` (Ed25519 signers only for now). The payload is not parsed.
Expected<OpenedEnvelope> open_envelope(ByteView envelope, std::string_view domain,
                                       ByteView payload_type, std::size_t max_size);

}  // namespace an::p2p::relay
