// Kademlia RPC messages of /ipfs/kad/1.0.0: codec and uvarint framing, no I/O. Functions: any
// thread. Frames are taken from received bytes by take_frame (p2p/wire/length_prefixed.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "p2p/crypto/peer_id.h"
#include "p2p/multiformats/multiaddr.h"
#include "p2p/multiformats/varint.h"
#include "util/expected.h"

namespace an::p2p::kad {

inline constexpr std::string_view kProtocolId = "/ipfs/kad/1.0.0";

// go-libp2p-kad-dht reads each message with network.MessageSizeMax (4 MiB) as its cap
// (internal/net/message_manager.go); js-libp2p's length-prefixed decoder defaults to 4 MiB too.
inline constexpr std::size_t kMaxMessageSize = 4 * 1024 * 1024;
// Our own bounds on what one message may make us allocate. A response carries k = 20 closer
// peers, and providers are stored per key (ProviderStore caps them); peers beyond this cap are
// dropped and counted in Message::skipped_peers rather than failing the message.
inline constexpr std::size_t kMaxPeersPerList = 1000;
// Addresses of one peer beyond this are dropped and counted in Message::skipped_addresses.
inline constexpr std::size_t kMaxAddrsPerPeer = 128;

// protobuf enum Message.MessageType.
enum class MessageType : std::uint8_t {
  kPutValue = 0,
  kGetValue = 1,
  kAddProvider = 2,
  kGetProviders = 3,
  kFindNode = 4,
  kPing = 5,
};

// "PUT_VALUE", "GET_VALUE", ...
std::string_view message_type_name(MessageType type);

// protobuf enum Message.ConnectionType: what the sender knows about its connection to a peer.
enum class ConnectionType : std::uint8_t {
  kNotConnected = 0,
  kConnected = 1,
  kCanConnect = 2,
  kCannotConnect = 3,
};

// Message.Peer: id = 1 (peer ID multihash bytes), addrs = 2 (binary multiaddrs, repeated),
// connection = 3.
struct Peer {
  PeerId id;
  std::vector<Multiaddr> addrs;
  ConnectionType connection = ConnectionType::kNotConnected;

  bool operator==(const Peer&) const = default;
};

// record.pb.Record (go-libp2p-record): key = 1, value = 2, timeReceived = 5 (RFC 3339 text set
// by the receiver). Fields 3 (author) and 4 (signature) were removed from the spec and are
// skipped like any unknown field.
struct Record {
  Bytes key;
  Bytes value;
  std::string time_received;

  bool operator==(const Record&) const = default;
};

// Message: type = 1, key = 2, record = 3, closerPeers = 8, providerPeers = 9,
// clusterLevelRaw = 10. Which fields each type carries is in the spec; this codec does not
// enforce it (the handlers do).
struct Message {
  MessageType type = MessageType::kPing;
  // Unused by the protocol, but go-libp2p-kad-dht writes 1 (cluster level 0, stored plus one)
  // in every message it sends; proto3 leaves a 0 out of the encoding.
  std::int32_t cluster_level_raw = 0;
  Bytes key;
  std::optional<Record> record;
  std::vector<Peer> closer_peers;
  std::vector<Peer> provider_peers;

  // Set by decoding: peers left out because their ID is not a peer ID or a list went over
  // kMaxPeersPerList, and addresses left out because they did not parse (peers announce
  // transports we do not know) or a peer went over kMaxAddrsPerPeer. Neither fails a message.
  std::size_t skipped_peers = 0;
  std::size_t skipped_addresses = 0;

  // Compares the wire content, not the skipped counters.
  bool operator==(const Message& other) const;
};

// One message without its length prefix, as proto3 writes it: fields in field-number order,
// zero values (type PUT_VALUE, empty key, connection NOT_CONNECTED, cluster level 0) left out.
// One departure: a negative cluster level is written as its 32 bits (5 bytes), not protobuf's
// sign-extended 10 bytes; protobuf readers truncate both to the same int32.
Bytes encode(const Message& message);

// One message without its length prefix. Errors: over kMaxMessageSize, malformed protobuf, a
// known field with the wrong wire type (also inside Peer and Record), a type outside 0..5.
// Unknown fields are skipped; a repeated singular field keeps its last value.
Expected<Message> decode(ByteView message);

// encode() with its uvarint length prefix: the bytes to write on the stream.
Bytes encode_frame(const Message& message);

// The provider peers of an ADD_PROVIDER request that a server may record: those whose ID is the
// sender's (go-libp2p-kad-dht's handleAddProvider ignores providers "not from originator") and
// that carry at least one address.
std::vector<Peer> providers_from_sender(const Message& request, const PeerId& sender);

}  // namespace an::p2p::kad
