// Signed peer records: RFC 0002 signed envelopes carrying RFC 0003 peer records, byte-compatible
// with go-libp2p and js-libp2p. Pure functions over caller-owned buffers; any thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "p2p/crypto/key.h"
#include "p2p/crypto/peer_id.h"
#include "p2p/identify/identify.h"
#include "p2p/multiformats/multiaddr.h"
#include "p2p/multiformats/varint.h"
#include "util/expected.h"

namespace an::p2p::identify {

// The envelope's domain separation string for peer records: signed over, never sent.
inline constexpr std::string_view kPeerRecordDomain = "libp2p-peer-record";
// The envelope's payload_type for peer records. go-libp2p (core/peer/record.go) and js-libp2p
// (@libp2p/peer-record) send the multicodec 0x0301 as the two raw bytes 03 01, not as its
// uvarint (81 06); interop requires the same bytes.
inline constexpr std::array<std::uint8_t, 2> kPeerRecordPayloadType = {0x03, 0x01};
// An envelope travels inside one Identify message, so it cannot be larger than one.
inline constexpr std::size_t kMaxEnvelopeSize = kMaxMessageSize;

// protobuf `message Envelope` (RFC 0002): public_key = 1 (a PublicKey message), payload_type = 2,
// payload = 3, signature = 5.
struct Envelope {
  Bytes public_key;
  Bytes payload_type;
  Bytes payload;
  Bytes signature;
};

Bytes encode_envelope(const Envelope& envelope);
// Structure only, no signature check. Each known field at most once (a second copy could make
// readers disagree on what was signed); unknown fields are skipped; the public key is required.
Expected<Envelope> decode_envelope(ByteView bytes);

// What the signature covers: uvarint(len) + bytes, for the domain, the payload type and the
// payload in turn.
Bytes envelope_signing_input(std::string_view domain, ByteView payload_type, ByteView payload);

// protobuf `message PeerRecord` (RFC 0003): peer_id = 1 (multihash bytes), seq = 2,
// addresses = 3 (each an AddressInfo { bytes multiaddr = 1 }).
struct PeerRecord {
  PeerId peer_id;
  std::uint64_t seq = 0;
  std::vector<Multiaddr> addresses;
  // Addresses that did not parse and were left out, as go-libp2p does: peers record transports
  // we do not know.
  std::size_t skipped_addresses = 0;
};

// Empty addresses are left out, as go-libp2p does.
Bytes encode_peer_record(const PeerId& peer_id, std::uint64_t seq,
                         const std::vector<Multiaddr>& addresses);
// The record alone, no signature: a missing or invalid peer ID is an error.
Expected<PeerRecord> decode_peer_record(ByteView payload);

// The envelope bytes of a record of our own addresses, signed by `key`. `seq` must grow with
// every new record (peers keep the highest); go-libp2p uses the time in nanoseconds.
Expected<Bytes> make_signed_peer_record(const PrivateKey& key, std::uint64_t seq,
                                        const std::vector<Multiaddr>& addresses);

// Checks a peer's envelope: size, payload type, signature (Ed25519 keys only for now), and
// that the record names the peer whose key signed it. The caller must still check that this
// peer is the one on the connection (go-libp2p drops records for another peer).
Expected<PeerRecord> verify_signed_peer_record(ByteView envelope);

}  // namespace an::p2p::identify
