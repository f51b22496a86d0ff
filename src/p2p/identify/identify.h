// The Identify message of /ipfs/id/1.0.0 and /ipfs/id/push/1.0.0: encoding, decoding and the
// length-delimited stream form. Pure functions over caller-owned buffers; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "p2p/multiformats/multiaddr.h"
#include "p2p/multiformats/varint.h"
#include "util/expected.h"

namespace an::p2p::identify {

// Asked by the side that wants to learn about its peer; the peer answers and closes the stream.
inline constexpr std::string_view kProtocolId = "/ipfs/id/1.0.0";
// Opened by the side whose addresses or protocols changed; it writes and closes the stream.
inline constexpr std::string_view kPushProtocolId = "/ipfs/id/push/1.0.0";

// go-libp2p reads each length-delimited Identify message with an 8 KiB cap (signedIDSize in
// p2p/protocol/identify/id.go), room for a signed peer record; we accept the same.
inline constexpr std::size_t kMaxMessageSize = 8 * 1024;
// What go-libp2p keeps its own messages under (maxOwnIdentifyMsgSize, "compatible with
// rust-libp2p", which accepts 4 KiB). IdentifyService trims our addresses, then protocols, to
// stay below it.
inline constexpr std::size_t kMaxOwnMessageSize = 4 * 1024;
// Older peers accept 2 KiB (go's legacyIDSize): a larger message is sent as two, the signed
// peer record alone in the second, and receivers merge them.
inline constexpr std::size_t kLegacyMessageSize = 2 * 1024;
// go-libp2p merges at most this many messages from one stream and fails beyond.
inline constexpr std::size_t kMaxMessagesPerStream = 10;

// protobuf field numbers: `message Identify` of the identify spec (proto2).
struct Identify {
  std::optional<std::string> protocol_version;  // 5, e.g. "ipfs/0.1.0"
  std::optional<std::string> agent_version;     // 6, e.g. "go-ipfs/0.1.0"
  std::optional<Bytes> public_key;              // 1, a PublicKey protobuf
  std::vector<Multiaddr> listen_addrs;          // 2, binary multiaddrs
  std::optional<Multiaddr> observed_addr;       // 4, how the sender sees us
  std::vector<std::string> protocols;           // 3
  std::optional<Bytes> signed_peer_record;      // 8, an Envelope (see peer_record.h)

  // Set by decoding: listen and observed addresses that did not parse and were left out. They
  // are not an error, since peers announce transports we do not know (e.g. /ws, /webrtc).
  std::size_t skipped_addresses = 0;
};

// One message, without the length prefix; fields in field-number order, as go writes them.
Bytes encode(const Identify& message);

// One message, without the length prefix. Unknown fields are skipped (later spec versions may
// add some); a message over kMaxMessageSize, malformed protobuf and a known field with the
// wrong wire type are errors. A repeated optional field keeps its last value, as protobuf says.
Expected<Identify> decode(ByteView message);

// Adds `part` to `whole` the way protobuf merges messages: set optional fields replace, repeated
// fields append. Used to join the messages of one stream.
void merge(Identify& whole, Identify part);

// The bytes to write on the stream before closing it: uvarint-length-prefixed messages. Like
// go-libp2p, a message larger than kLegacyMessageSize with a signed peer record is split in two.
Bytes encode_stream(const Identify& message);

// Everything the peer wrote on the stream up to its close: up to kMaxMessagesPerStream
// length-prefixed messages, each at most kMaxMessageSize, merged into one. A truncated last
// message is an error (the peer closed mid-message).
Expected<Identify> decode_stream(ByteView stream);

// The most a well-behaved peer can write on one stream; stop buffering beyond this.
inline constexpr std::size_t kMaxStreamSize = kMaxMessagesPerStream * (kMaxMessageSize + 2);

}  // namespace an::p2p::identify
