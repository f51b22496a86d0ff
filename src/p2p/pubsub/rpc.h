// The pubsub RPC of libp2p's floodsub and gossipsub (libp2p/specs pubsub/README.md,
// gossipsub-v1.1.md, v1.2 IDONTWANT): the protobuf codec, message signing and message IDs, no I/O.
// Functions: any thread. On the wire every RPC is a uvarint-length-prefixed frame of at most
// kMaxRpcSize bytes (p2p/wire/length_prefixed.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "p2p/crypto/key.h"
#include "p2p/crypto/peer_id.h"
#include "util/bytes.h"
#include "util/expected.h"

namespace an::p2p::pubsub {

inline constexpr std::string_view kFloodsubProtocol = "/floodsub/1.0.0";
inline constexpr std::string_view kMeshsub10Protocol = "/meshsub/1.0.0";
inline constexpr std::string_view kMeshsub11Protocol = "/meshsub/1.1.0";
inline constexpr std::string_view kMeshsub12Protocol = "/meshsub/1.2.0";

// What a peer's stream speaks, in order of features.
enum class PeerProtocol : std::uint8_t { kFloodsub, kMeshsub10, kMeshsub11, kMeshsub12 };
std::string_view protocol_id(PeerProtocol protocol);
std::optional<PeerProtocol> parse_protocol_id(std::string_view id);

// go-libp2p-pubsub's DefaultMaxMessageSize (1 MiB), the cap on one RPC frame, which js's
// gossipsub applies too (maxInboundDataLength). A message's data must leave room for its
// envelope fields: kMaxDataSize.
inline constexpr std::size_t kMaxRpcSize = 1024 * 1024;
inline constexpr std::size_t kMaxDataSize = kMaxRpcSize - 1024;
// Topics are strings chosen by applications; ours are bounded so that a peer cannot make us
// hold megabytes of topic names.
inline constexpr std::size_t kMaxTopicLength = 256;

// Message IDs are opaque bytes: go's DefaultMsgIdFn and js's msgIdFnStrictSign both use the
// `from` bytes followed by the `seqno` bytes.
using MessageId = Bytes;

struct SubOpts {
  bool subscribe = false;
  std::string topic;
  bool operator==(const SubOpts&) const = default;
};

// message Message { optional bytes from = 1; optional bytes data = 2; optional bytes seqno = 3;
//   required string topic = 4; optional bytes signature = 5; optional bytes key = 6; }
struct Message {
  Bytes from;  // a peer ID's multihash bytes; empty when absent
  Bytes data;
  Bytes seqno;  // 8 bytes big-endian under StrictSign; empty when absent
  std::string topic;
  Bytes signature;
  Bytes key;  // the author's public key protobuf, when it is not inlined in `from`
  // True when `data` was left out of the encoding rather than written empty (go publishes a nil
  // slice that way, js always writes the field). The signature covers the encoding, so an empty
  // `data` must be re-encoded as it arrived for the message to verify, here and at next hops.
  bool data_absent = false;
  bool operator==(const Message&) const = default;
};

struct ControlIHave {
  std::string topic;
  std::vector<MessageId> message_ids;
  bool operator==(const ControlIHave&) const = default;
};
struct ControlIWant {
  std::vector<MessageId> message_ids;
  bool operator==(const ControlIWant&) const = default;
};
struct ControlGraft {
  std::string topic;
  bool operator==(const ControlGraft&) const = default;
};
struct PeerInfo {
  Bytes peer_id;             // multihash bytes
  Bytes signed_peer_record;  // an RFC 0003 envelope; empty when absent
  bool operator==(const PeerInfo&) const = default;
};
struct ControlPrune {
  std::string topic;
  std::vector<PeerInfo> peers;
  std::optional<std::uint64_t> backoff_seconds;
  bool operator==(const ControlPrune&) const = default;
};
struct ControlIDontWant {
  std::vector<MessageId> message_ids;
  bool operator==(const ControlIDontWant&) const = default;
};
struct ControlMessage {
  std::vector<ControlIHave> ihave;
  std::vector<ControlIWant> iwant;
  std::vector<ControlGraft> graft;
  std::vector<ControlPrune> prune;
  std::vector<ControlIDontWant> idontwant;
  bool empty() const {
    return ihave.empty() && iwant.empty() && graft.empty() && prune.empty() && idontwant.empty();
  }
  bool operator==(const ControlMessage&) const = default;
};

// message RPC { repeated SubOpts subscriptions = 1; repeated Message publish = 2;
//   optional ControlMessage control = 3; }
struct Rpc {
  std::vector<SubOpts> subscriptions;
  std::vector<Message> publish;
  std::optional<ControlMessage> control;
  bool empty() const {
    return subscriptions.empty() && publish.empty() && (!control || control->empty());
  }
  bool operator==(const Rpc&) const = default;
};

// Bounds on what one decoded RPC may make us allocate, beyond its byte size. Entries past a
// bound are an error (the whole frame is refused), so a peer learns nothing by padding.
struct RpcLimits {
  std::size_t max_subscriptions = 1024;    // SubOpts per RPC
  std::size_t max_messages = 1024;         // published messages per RPC
  std::size_t max_control_entries = 1024;  // IHAVE + IWANT + GRAFT + PRUNE + IDONTWANT entries
  std::size_t max_message_ids = 5000;  // IDs over all IHAVE/IWANT/IDONTWANT (go's MaxIHaveLength)
  std::size_t max_prune_peers = 64;    // PX peers over all PRUNEs
};

Bytes encode_rpc(const Rpc& rpc);
// The body of one frame (without its length prefix). Unknown fields are skipped as protobuf
// allows; a truncated or malformed field, a topic over kMaxTopicLength or a bound of `limits`
// exceeded is an error.
Expected<Rpc> decode_rpc(ByteView body, const RpcLimits& limits = {});
// Splits `rpc` into RPCs whose encodings each fit `max_size` bytes (go's fragmentRPC), keeping
// every entry; an error when a single message alone does not fit.
Expected<std::vector<Rpc>> split_rpc(Rpc rpc, std::size_t max_size = kMaxRpcSize);

// go's and js's default message ID: from || seqno.
MessageId default_message_id(const Message& message);

// StrictSign (the default of go and js): the author signs "libp2p-pubsub:" followed by the
// message's protobuf encoding without `signature` and `key`. sign_message fills `from`, `seqno`
// (given), `signature` and, for keys not inlined in the peer ID, `key`.
inline constexpr std::string_view kSignaturePrefix = "libp2p-pubsub:";
Expected<void> sign_message(Message& message, const PrivateKey& key);
// Checks a received message under StrictSign: from is a valid peer ID, seqno is present,
// signature verifies with the key inlined in from or given in `key` (which must match from).
// Returns the author.
Expected<PeerId> verify_message(const Message& message);

}  // namespace an::p2p::pubsub
