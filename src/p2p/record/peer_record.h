// Signed peer records: RFC 0003 peer records in RFC 0002 signed envelopes (record/envelope.h),
// byte-compatible with go-libp2p and js-libp2p. Pure functions over caller-owned buffers; any
// thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "p2p/crypto/key.h"
#include "p2p/crypto/peer_id.h"
#include "p2p/multiformats/multiaddr.h"
#include "p2p/record/envelope.h"
#include "util/expected.h"

namespace an::p2p::record {

// The envelope's domain separation string for peer records: signed over, never sent.
inline constexpr std::string_view kPeerRecordDomain = "libp2p-peer-record";
// The envelope's payload_type for peer records. go-libp2p (core/peer/record.go) and js-libp2p
// (@libp2p/peer-record) send the multicodec 0x0301 as the two raw bytes 03 01, not as its
// uvarint (81 06); interop requires the same bytes.
inline constexpr std::array<std::uint8_t, 2> kPeerRecordPayloadType = {0x03, 0x01};

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

// Checks a peer's envelope: size, payload type, signature, and
// that the record names the peer whose key signed it. The caller must still check that this
// peer is the one on the connection (go-libp2p drops records for another peer).
Expected<PeerRecord> verify_signed_peer_record(ByteView envelope);

}  // namespace an::p2p::record
