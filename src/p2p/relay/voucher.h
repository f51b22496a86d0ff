// Circuit relay v2 reservation vouchers: the relay's signed promise to relay for a peer until a
// time (a signed envelope around a ReservationVoucher). Pure functions; any thread.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "p2p/crypto/key.h"
#include "p2p/crypto/peer_id.h"
#include "p2p/multiformats/varint.h"
#include "p2p/relay/messages.h"
#include "util/expected.h"

namespace an::p2p::relay {

// The envelope's domain separation string: signed over, never sent.
inline constexpr std::string_view kVoucherDomain = "libp2p-relay-rsvp";
// The envelope's payload_type: multicodec 0x0302 as the two raw bytes 03 02, as go-libp2p
// (proto/voucher.go RecordCodec) and js-libp2p (server/reservation-voucher.ts codec) send it.
inline constexpr std::array<std::uint8_t, 2> kVoucherPayloadType = {0x03, 0x02};
// A voucher travels inside one hop message.
inline constexpr std::size_t kMaxVoucherSize = kMaxMessageSize;

// protobuf `message ReservationVoucher`: relay = 1, peer = 2 (peer ID multihashes),
// expiration = 3 (UTC Unix seconds).
struct ReservationVoucher {
  PeerId relay;
  PeerId peer;
  std::uint64_t expiration = 0;
  bool operator==(const ReservationVoucher&) const = default;
};

// Canonical form (all three fields, in field order), as go and js write it.
Bytes encode_voucher(const ReservationVoucher& voucher);
// All three fields required, each at most once, valid peer IDs; unknown fields are skipped.
Expected<ReservationVoucher> decode_voucher(ByteView payload);

// The envelope bytes of `voucher` signed by the relay's key; an error when voucher.relay is not
// the peer of `relay_key`.
Expected<Bytes> seal_voucher(const PrivateKey& relay_key, const ReservationVoucher& voucher);

// A client's check of the voucher in its relay's RESERVE answer: size, payload type, domain and
// signature; signed by the relay it names (as go-libp2p's client checks); that relay is
// `expected_relay` (the peer we reserved on) and the reserving peer is `expected_peer` (us); not
// expired at `now_unix` (valid up to and including its expiration second).
Expected<ReservationVoucher> open_voucher(ByteView envelope, const PeerId& expected_relay,
                                          const PeerId& expected_peer, std::uint64_t now_unix);

}  // namespace an::p2p::relay
