// The frames of /daan/message/1.0.0 and /daan/request/1.0.0, the agent messaging protocols of
// the Go AgentNetwork (its internal/network/messenger.go): a 4-byte big-endian length, then a
// JSON object as Go's encoding/json writes the struct
//   type Message struct {
//     Type      MsgType `json:"type"`                  // MsgType is a byte
//     RequestID uint64  `json:"request_id,omitempty"`
//     Payload   []byte  `json:"payload"`
//   }
// e.g. {"type":2,"request_id":7,"payload":"aGk="}. One frame per stream each way. Pure
// functions, any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "p2p/daan/json.h"  // kMaxJsonNesting
#include "util/bytes.h"
#include "util/expected.h"

namespace an::p2p::daan {

using Clock = std::chrono::steady_clock;

inline constexpr std::string_view kMessageProtocol = "/daan/message/1.0.0";
inline constexpr std::string_view kRequestProtocol = "/daan/request/1.0.0";

// The largest JSON body Go's messenger reads or writes (its MaxMessageSize); the 4-byte length
// prefix comes on top.
inline constexpr std::size_t kMaxFrameSize = std::size_t{16} << 20;
inline constexpr std::size_t kFrameLengthSize = 4;
// Go's DefaultMessageTimeout and DefaultRequestTimeout.
inline constexpr std::chrono::seconds kMessageTimeout{10};
inline constexpr std::chrono::seconds kRequestTimeout{30};

enum class FrameType : std::uint8_t { kMessage = 1, kRequest = 2, kResponse = 3, kError = 4 };

struct Frame {
  FrameType type = FrameType::kMessage;
  std::uint64_t request_id = 0;  // 0: omitted on the wire (omitempty)
  Bytes payload;                 // empty: `null` on the wire, as Go writes a nil []byte

  bool operator==(const Frame&) const = default;
};

// The JSON body of `frame`, byte for byte what Go's json.Marshal writes (no length prefix).
Bytes encode_frame_body(const Frame& frame);
// The size encode_frame_body(frame) has, without building it.
std::size_t frame_body_size(const Frame& frame);
// The largest payload whose frame fits kMaxFrameSize whatever its request ID.
inline constexpr std::size_t kMaxPayloadSize =
    (kMaxFrameSize -
     std::string_view(R"({"type":1,"request_id":18446744073709551615,"payload":""})").size()) /
    4 * 3;

// The length prefix and the body: what goes on the stream.
Bytes encode_frame(const Frame& frame);

// The body's length from the 4-byte big-endian prefix. Refuses a length over kMaxFrameSize (Go
// refuses it too) and 0 (Go never writes it: the smallest body it writes is `{"type":0,...}`; an
// empty body is invalid JSON, which Go's reader refuses after reading it).
Expected<std::uint32_t> decode_frame_length(ByteView four_bytes);

// A frame from its JSON body, accepting what Go's json.Unmarshal accepts into the struct: keys
// in any order, whitespace, unknown keys (with any JSON value, however nested up to
// kMaxJsonNesting), keys matched case-insensitively as Go does (an exact match is not needed;
// escapes in keys are decoded first), duplicate keys (the last wins), `null` for any field (a
// number keeps what it had, the payload becomes empty), a missing request_id or payload, base64
// with escaped line breaks (Go's base64 decoder skips \r and \n) or a payload written as an
// array of byte values.
// Refuses what Go refuses: anything but one JSON value with only whitespace around it, a value
// that is not an object (a bare `null` decodes to type 0, refused below), a type that is not an
// integer 0..255, a request_id that is not an integer 0..2^64-1, a payload that is neither a
// string of padded standard base64 nor an array of byte values.
// Stricter than Go: a type outside 1..4 (Go decodes any byte and then treats unknown types as a
// response), and nesting deeper than kMaxJsonNesting (Go allows 10000).
Expected<Frame> decode_frame_body(ByteView json);

}  // namespace an::p2p::daan
