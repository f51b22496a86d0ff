// Circuit relay v2 wire messages (libp2p/specs relay/circuit-v2.md): HopMessage, StopMessage and
// their parts, encoding, decoding and the uvarint length-prefixed framing (take_frame in
// p2p/wire/length_prefixed.h splits it). Pure functions over caller-owned buffers; any thread.
// Decoded values own their bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "p2p/crypto/peer_id.h"
#include "p2p/multiformats/multiaddr.h"
#include "p2p/multiformats/varint.h"
#include "util/expected.h"

namespace an::p2p::relay {

// Opened by a client on the relay: RESERVE a slot, or CONNECT to a peer that holds one.
inline constexpr std::string_view kHopProtocolId = "/libp2p/circuit/relay/0.2.0/hop";
// Opened by the relay on the reserving peer to hand it a circuit.
inline constexpr std::string_view kStopProtocolId = "/libp2p/circuit/relay/0.2.0/stop";

// go-libp2p reads every hop and stop message with a 4 KiB cap (maxMessageSize in
// p2p/protocol/circuitv2/relay/relay.go and client/dial.go); we read and write under the same.
inline constexpr std::size_t kMaxMessageSize = 4096;
// The length prefix of a message of at most kMaxMessageSize takes at most this many bytes.
inline constexpr std::size_t kMaxLengthPrefixSize = 2;

// `enum Status` of the spec. Values we do not know are kept as they are (protobuf enums are
// open), so that a client can report them.
enum class Status : std::uint32_t {
  kUnused = 0,
  kOk = 100,
  kReservationRefused = 200,
  kResourceLimitExceeded = 201,
  kPermissionDenied = 202,
  kConnectionFailed = 203,
  kNoReservation = 204,
  kMalformedMessage = 400,
  kUnexpectedMessage = 401,
};
// The spec's name ("OK", "NO_RESERVATION", ...), or "UNKNOWN" for other values.
std::string_view status_name(Status status);

// `HopMessage.Type`; other values are kept as they are (the handler answers them).
enum class HopType : std::uint32_t { kReserve = 0, kConnect = 1, kStatus = 2 };
// `StopMessage.Type`; other values are kept as they are.
enum class StopType : std::uint32_t { kConnect = 0, kStatus = 1 };

// `message Limit`: duration = 1 (uint32, seconds), data = 2 (uint64, bytes in each direction).
// Absent or 0 means no limit. A duration above 2^32-1 does not fit the field and is an error.
struct Limit {
  std::optional<std::uint32_t> duration_seconds;
  std::optional<std::uint64_t> data_bytes;
  bool operator==(const Limit&) const = default;
};

// `message Peer`: id = 1 (peer ID multihash, required here), addrs = 2 (binary multiaddrs).
struct Peer {
  PeerId id;
  std::vector<Multiaddr> addrs;
  // Set by decoding: addresses that did not parse and were left out (as go-libp2p does).
  std::size_t skipped_addrs = 0;
  bool operator==(const Peer&) const = default;
};

// `message Reservation`: expire = 1 (uint64, UTC Unix seconds), addrs = 2 (the relay's own
// addresses ending in /p2p/RELAY), voucher = 3 (a signed envelope, see voucher.h; kept as bytes
// here and checked by open_voucher).
struct Reservation {
  std::optional<std::uint64_t> expire;
  std::vector<Multiaddr> addrs;
  std::optional<Bytes> voucher;
  std::size_t skipped_addrs = 0;
  bool operator==(const Reservation&) const = default;
};

// `message HopMessage`: type = 1, peer = 2, reservation = 3, limit = 4, status = 5.
struct HopMessage {
  HopType type = HopType::kReserve;
  std::optional<Peer> peer;
  std::optional<Reservation> reservation;
  std::optional<Limit> limit;
  std::optional<Status> status;
  bool operator==(const HopMessage&) const = default;
};

// `message StopMessage`: type = 1, peer = 2, limit = 3, status = 4.
struct StopMessage {
  StopType type = StopType::kConnect;
  std::optional<Peer> peer;
  std::optional<Limit> limit;
  std::optional<Status> status;
  bool operator==(const StopMessage&) const = default;
};

// One message without its length prefix, fields in field-number order as go-libp2p writes them.
// The type is always written (RESERVE and CONNECT are 0 but must be present); optional fields
// only when set.
Bytes encode(const HopMessage& message);
Bytes encode(const StopMessage& message);
Bytes encode(const Limit& limit);
Bytes encode(const Peer& peer);
Bytes encode(const Reservation& reservation);

// One message without its length prefix. Errors (the handler answers MALFORMED_MESSAGE): more
// than kMaxMessageSize bytes, malformed protobuf, a known field with the wrong wire type, a
// singular field given twice, a missing type, a Peer without a valid ID, an enum beyond int32, a
// duration beyond uint32. Unknown fields are skipped; unknown type and status values are kept.
Expected<HopMessage> decode_hop(ByteView message);
Expected<StopMessage> decode_stop(ByteView message);
Expected<Limit> decode_limit(ByteView message);
Expected<Peer> decode_peer(ByteView message);
Expected<Reservation> decode_reservation(ByteView message);

// uvarint(size) followed by `message`: what goes on the stream.
Bytes frame(ByteView message);
Bytes encode_framed(const HopMessage& message);
Bytes encode_framed(const StopMessage& message);

}  // namespace an::p2p::relay
