#include "p2p/kad/message.h"

#include <utility>

#include "p2p/wire/protobuf.h"

namespace an::p2p::kad {
namespace {

// Field numbers of Message, Message.Peer and record.pb.Record.
enum MessageField : std::uint32_t {
  kTypeField = 1,
  kKeyField = 2,
  kRecordField = 3,
  kCloserPeersField = 8,
  kProviderPeersField = 9,
  kClusterLevelRawField = 10,
};
enum PeerField : std::uint32_t {
  kPeerIdField = 1,
  kPeerAddrsField = 2,
  kPeerConnectionField = 3,
};
enum RecordField : std::uint32_t {
  kRecordKeyField = 1,
  kRecordValueField = 2,
  kRecordTimeReceivedField = 5,
};

constexpr std::uint64_t kMaxMessageType = static_cast<std::uint64_t>(MessageType::kPing);
constexpr std::uint64_t kMaxConnectionType =
    static_cast<std::uint64_t>(ConnectionType::kCannotConnect);

Expected<void> expect_type(const pb::Field& field, pb::WireType type, std::string_view where) {
  if (field.type == type) return {};
  return fail("kad: " + std::string(where) + " field " + std::to_string(field.number) +
              " has wire type " + std::to_string(static_cast<int>(field.type)) + ", expected " +
              std::to_string(static_cast<int>(type)));
}

Bytes encode_peer(const Peer& peer) {
  Bytes out;
  pb::Writer writer(out);
  writer.bytes_field(kPeerIdField, peer.id.bytes());
  for (const auto& address : peer.addrs)
    writer.bytes_field(kPeerAddrsField, address.to_bytes());
  if (peer.connection != ConnectionType::kNotConnected) {
    writer.varint_field(kPeerConnectionField, static_cast<std::uint64_t>(peer.connection));
  }
  return out;
}

Bytes encode_record(const Record& record) {
  Bytes out;
  pb::Writer writer(out);
  if (!record.key.empty()) writer.bytes_field(kRecordKeyField, record.key);
  if (!record.value.empty()) writer.bytes_field(kRecordValueField, record.value);
  if (!record.time_received.empty()) {
    writer.string_field(kRecordTimeReceivedField, record.time_received);
  }
  return out;
}

// A peer whose ID is not a peer ID yields nullopt (skipped, not an error); malformed protobuf
// is an error.
Expected<std::optional<Peer>> decode_peer(ByteView bytes, std::size_t& skipped_addresses) {
  std::optional<ByteView> id_bytes;
  std::vector<Multiaddr> addrs;
  ConnectionType connection = ConnectionType::kNotConnected;
  pb::Reader reader(bytes);
  while (true) {
    auto next = reader.next();
    if (!next) return fail("kad: peer: " + next.error().message);
    if (!next->has_value()) break;
    const pb::Field& field = **next;
    switch (field.number) {
      case kPeerIdField: {
        auto ok = expect_type(field, pb::WireType::kLengthDelimited, "peer");
        if (!ok) return tl::unexpected(ok.error());
        id_bytes = field.bytes;
        break;
      }
      case kPeerAddrsField: {
        auto ok = expect_type(field, pb::WireType::kLengthDelimited, "peer");
        if (!ok) return tl::unexpected(ok.error());
        if (addrs.size() >= kMaxAddrsPerPeer) {
          ++skipped_addresses;
        } else if (auto address = Multiaddr::from_bytes(field.bytes)) {
          addrs.push_back(std::move(*address));
        } else {
          ++skipped_addresses;
        }
        break;
      }
      case kPeerConnectionField: {
        auto ok = expect_type(field, pb::WireType::kVarint, "peer");
        if (!ok) return tl::unexpected(ok.error());
        // proto3 enums are open: a value from a later spec version reads as "no information".
        connection = field.varint <= kMaxConnectionType ? static_cast<ConnectionType>(field.varint)
                                                        : ConnectionType::kNotConnected;
        break;
      }
      default:
        break;
    }
  }
  if (!id_bytes) return std::optional<Peer>{};
  auto id = PeerId::from_multihash(*id_bytes);
  if (!id) return std::optional<Peer>{};
  return std::optional<Peer>(Peer{std::move(*id), std::move(addrs), connection});
}

Expected<Record> decode_record(ByteView bytes) {
  Record record;
  pb::Reader reader(bytes);
  while (true) {
    auto next = reader.next();
    if (!next) return fail("kad: record: " + next.error().message);
    if (!next->has_value()) break;
    const pb::Field& field = **next;
    switch (field.number) {
      case kRecordKeyField:
      case kRecordValueField:
      case kRecordTimeReceivedField: {
        auto ok = expect_type(field, pb::WireType::kLengthDelimited, "record");
        if (!ok) return tl::unexpected(ok.error());
        if (field.number == kRecordKeyField) {
          record.key = to_bytes(field.bytes);
        } else if (field.number == kRecordValueField) {
          record.value = to_bytes(field.bytes);
        } else {
          record.time_received = std::string(pb::as_string(field.bytes));
        }
        break;
      }
      default:
        break;  // author (3), signature (4) and anything newer
    }
  }
  return record;
}

}  // namespace

std::string_view message_type_name(MessageType type) {
  switch (type) {
    case MessageType::kPutValue:
      return "PUT_VALUE";
    case MessageType::kGetValue:
      return "GET_VALUE";
    case MessageType::kAddProvider:
      return "ADD_PROVIDER";
    case MessageType::kGetProviders:
      return "GET_PROVIDERS";
    case MessageType::kFindNode:
      return "FIND_NODE";
    case MessageType::kPing:
      return "PING";
  }
  return "UNKNOWN";
}

bool Message::operator==(const Message& other) const {
  return type == other.type && cluster_level_raw == other.cluster_level_raw && key == other.key &&
         record == other.record && closer_peers == other.closer_peers &&
         provider_peers == other.provider_peers;
}

Bytes encode(const Message& message) {
  Bytes out;
  pb::Writer writer(out);
  if (message.type != MessageType::kPutValue) {
    writer.varint_field(kTypeField, static_cast<std::uint64_t>(message.type));
  }
  if (!message.key.empty()) writer.bytes_field(kKeyField, message.key);
  if (message.record) writer.bytes_field(kRecordField, encode_record(*message.record));
  for (const auto& peer : message.closer_peers)
    writer.bytes_field(kCloserPeersField, encode_peer(peer));
  for (const auto& peer : message.provider_peers)
    writer.bytes_field(kProviderPeersField, encode_peer(peer));
  if (message.cluster_level_raw != 0) {
    // int32 on the wire. A negative value goes out as its 32 bits (5 bytes) rather than
    // protobuf's sign-extended 10 bytes: protobuf readers truncate either to the same int32, and
    // our reader (like the multiformats varint spec) refuses varints over 9 bytes.
    writer.varint_field(kClusterLevelRawField,
                        static_cast<std::uint32_t>(message.cluster_level_raw));
  }
  return out;
}

Expected<Message> decode(ByteView bytes) {
  if (bytes.size() > kMaxMessageSize) {
    return fail("kad: message of " + std::to_string(bytes.size()) + " bytes exceeds the limit of " +
                std::to_string(kMaxMessageSize));
  }
  Message message;
  message.type = MessageType::kPutValue;  // proto3: an absent type is 0
  pb::Reader reader(bytes);
  while (true) {
    auto next = reader.next();
    if (!next) return fail("kad: " + next.error().message);
    if (!next->has_value()) break;
    const pb::Field& field = **next;
    switch (field.number) {
      case kTypeField: {
        auto ok = expect_type(field, pb::WireType::kVarint, "message");
        if (!ok) return tl::unexpected(ok.error());
        if (field.varint > kMaxMessageType) {
          return fail("kad: unknown message type " + std::to_string(field.varint));
        }
        message.type = static_cast<MessageType>(field.varint);
        break;
      }
      case kKeyField: {
        auto ok = expect_type(field, pb::WireType::kLengthDelimited, "message");
        if (!ok) return tl::unexpected(ok.error());
        message.key = to_bytes(field.bytes);
        break;
      }
      case kRecordField: {
        auto ok = expect_type(field, pb::WireType::kLengthDelimited, "message");
        if (!ok) return tl::unexpected(ok.error());
        auto record = decode_record(field.bytes);
        if (!record) return tl::unexpected(record.error());
        message.record = std::move(*record);
        break;
      }
      case kCloserPeersField:
      case kProviderPeersField: {
        auto ok = expect_type(field, pb::WireType::kLengthDelimited, "message");
        if (!ok) return tl::unexpected(ok.error());
        auto peer = decode_peer(field.bytes, message.skipped_addresses);
        if (!peer) return tl::unexpected(peer.error());
        auto& list =
            field.number == kCloserPeersField ? message.closer_peers : message.provider_peers;
        if (!peer->has_value() || list.size() >= kMaxPeersPerList) {
          ++message.skipped_peers;
        } else {
          list.push_back(std::move(**peer));
        }
        break;
      }
      case kClusterLevelRawField: {
        auto ok = expect_type(field, pb::WireType::kVarint, "message");
        if (!ok) return tl::unexpected(ok.error());
        // int32 semantics: the low 32 bits.
        message.cluster_level_raw =
            static_cast<std::int32_t>(static_cast<std::uint32_t>(field.varint & 0xFFFFFFFFu));
        break;
      }
      default:
        break;
    }
  }
  return message;
}

Bytes encode_frame(const Message& message) {
  Bytes body = encode(message);
  Bytes out;
  out.reserve(body.size() + kMaxVarintLength);
  append_varint(out, body.size());
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

std::vector<Peer> providers_from_sender(const Message& request, const PeerId& sender) {
  std::vector<Peer> accepted;
  for (const auto& peer : request.provider_peers) {
    if (peer.id == sender && !peer.addrs.empty()) accepted.push_back(peer);
  }
  return accepted;
}

}  // namespace an::p2p::kad
