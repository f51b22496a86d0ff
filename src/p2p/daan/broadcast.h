// The Go AgentNetwork's broadcast envelope (its internal/network/broadcaster.go): each broadcast
// is published on a gossipsub topic as Go's json.Marshal of
//   struct {
//     Topic     string    `json:"topic"`
//     Sender    peer.ID   `json:"sender"`     // marshals as its base58 text
//     Timestamp time.Time `json:"timestamp"`  // RFC 3339 with nanoseconds
//     Payload   []byte    `json:"payload"`    // standard padded base64
//   }
// e.g. {"topic":"news","sender":"12D3KooW...","timestamp":"2024-05-06T07:08:09.123456789Z",
// "payload":"aGk="}, and Go's subscribers drop data that does not unmarshal into it. Pure
// functions, any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "util/bytes.h"
#include "util/expected.h"

namespace an::p2p::daan {

// The largest envelope decode_broadcast reads: go-libp2p-pubsub's 1 MiB message cap, which the
// envelope travels in.
inline constexpr std::size_t kMaxBroadcastSize = std::size_t{1} << 20;

// time.Time's zero value as Go marshals it: what a missing or null timestamp decodes to.
inline constexpr std::string_view kGoZeroTime = "0001-01-01T00:00:00Z";

struct BroadcastEnvelope {
  std::string topic;
  std::string sender;     // a peer ID's base58 text; empty when the key was missing
  std::string timestamp;  // RFC 3339 text as it arrived (validated), or as we wrote it
  Bytes payload;          // empty: `null` on the wire, as Go writes a nil []byte
  bool operator==(const BroadcastEnvelope&) const = default;
};

// Byte for byte what Go's json.Marshal writes: fields in that order, no whitespace, strings
// escaped as Go does (HTML-safe: <, >, & as \u003c, \u003e, \u0026; U+2028, U+2029 escaped;
// invalid UTF-8 as \ufffd), the payload as standard padded base64 or null when empty.
Bytes encode_broadcast(const BroadcastEnvelope& envelope);

// What Go's json.Unmarshal accepts into the struct (the JSON rules of daan/frame.h's
// decode_frame_body: key order, whitespace, unknown keys, case-insensitive keys, duplicates,
// base64 or an array of bytes for the payload), with the fields' own rules:
// - topic: a string (invalid UTF-8 replaced by U+FFFD, as Go does) or null (left empty);
// - sender: peer.ID's UnmarshalJSON, a string that is a peer ID (base58 or CID text), stored as
//   base58; null or "" are refused as Go refuses them; a missing key leaves it empty;
// - timestamp: time.Time's UnmarshalJSON, null (the zero time) or a string holding RFC 3339
//   exactly as Go's strict parser takes it (no escapes decoded: Go reads the raw bytes;
//   "T" and "Z" upper case; two-digit fields in range; offsets ±hh:mm);
// - payload: base64 text, null or an array of byte values.
// Also refused: anything but one JSON value with whitespace around, a value that is neither an
// object nor null, input over kMaxBroadcastSize, nesting deeper than kMaxJsonNesting.
Expected<BroadcastEnvelope> decode_broadcast(ByteView json);

// time.Time's MarshalJSON of a UTC time (time.RFC3339Nano): "2006-01-02T15:04:05.999999999Z",
// the fraction's trailing zeros trimmed and no fraction at all for whole seconds.
std::string go_rfc3339_nano(std::chrono::system_clock::time_point time);

}  // namespace an::p2p::daan
