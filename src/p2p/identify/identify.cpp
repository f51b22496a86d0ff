#include "p2p/identify/identify.h"

#include <utility>

#include "p2p/wire/protobuf.h"

namespace an::p2p::identify {
namespace {

enum FieldNumber : std::uint32_t {
  kPublicKeyField = 1,
  kListenAddrsField = 2,
  kProtocolsField = 3,
  kObservedAddrField = 4,
  kProtocolVersionField = 5,
  kAgentVersionField = 6,
  kSignedPeerRecordField = 8,
};

bool is_known(std::uint32_t number) {
  switch (number) {
    case kPublicKeyField:
    case kListenAddrsField:
    case kProtocolsField:
    case kObservedAddrField:
    case kProtocolVersionField:
    case kAgentVersionField:
    case kSignedPeerRecordField:
      return true;
    default:
      return false;
  }
}

}  // namespace

Bytes encode(const Identify& message) {
  Bytes out;
  pb::Writer writer(out);
  if (message.public_key) writer.bytes_field(kPublicKeyField, *message.public_key);
  for (const auto& address : message.listen_addrs) {
    writer.bytes_field(kListenAddrsField, address.to_bytes());
  }
  for (const auto& protocol : message.protocols)
    writer.string_field(kProtocolsField, protocol);
  if (message.observed_addr) {
    writer.bytes_field(kObservedAddrField, message.observed_addr->to_bytes());
  }
  if (message.protocol_version) {
    writer.string_field(kProtocolVersionField, *message.protocol_version);
  }
  if (message.agent_version) writer.string_field(kAgentVersionField, *message.agent_version);
  if (message.signed_peer_record) {
    writer.bytes_field(kSignedPeerRecordField, *message.signed_peer_record);
  }
  return out;
}

Expected<Identify> decode(ByteView message) {
  if (message.size() > kMaxMessageSize) {
    return fail("identify: message of " + std::to_string(message.size()) +
                " bytes exceeds the limit of " + std::to_string(kMaxMessageSize));
  }
  Identify result;
  pb::Reader reader(message);
  while (true) {
    auto next = reader.next();
    if (!next) return fail("identify: " + next.error().message);
    if (!next->has_value()) break;
    const pb::Field& field = **next;
    if (!is_known(field.number)) continue;
    // Every Identify field is a string, bytes or a multiaddr: length-delimited.
    if (field.type != pb::WireType::kLengthDelimited) {
      return fail("identify: field " + std::to_string(field.number) +
                  " is not length-delimited (wire type " +
                  std::to_string(static_cast<int>(field.type)) + ")");
    }
    switch (field.number) {
      case kPublicKeyField:
        result.public_key = to_bytes(field.bytes);
        break;
      case kListenAddrsField:
        if (auto address = Multiaddr::from_bytes(field.bytes)) {
          result.listen_addrs.push_back(std::move(*address));
        } else {
          ++result.skipped_addresses;
        }
        break;
      case kProtocolsField:
        result.protocols.emplace_back(pb::as_string(field.bytes));
        break;
      case kObservedAddrField:
        if (auto address = Multiaddr::from_bytes(field.bytes)) {
          result.observed_addr = std::move(*address);
        } else {
          // A later copy of the field replaces an earlier one, even an unreadable one.
          result.observed_addr.reset();
          ++result.skipped_addresses;
        }
        break;
      case kProtocolVersionField:
        result.protocol_version = std::string(pb::as_string(field.bytes));
        break;
      case kAgentVersionField:
        result.agent_version = std::string(pb::as_string(field.bytes));
        break;
      case kSignedPeerRecordField:
        result.signed_peer_record = to_bytes(field.bytes);
        break;
      default:
        break;
    }
  }
  return result;
}

void merge(Identify& whole, Identify part) {
  if (part.protocol_version) whole.protocol_version = std::move(part.protocol_version);
  if (part.agent_version) whole.agent_version = std::move(part.agent_version);
  if (part.public_key) whole.public_key = std::move(part.public_key);
  for (auto& address : part.listen_addrs)
    whole.listen_addrs.push_back(std::move(address));
  if (part.observed_addr) whole.observed_addr = std::move(part.observed_addr);
  for (auto& protocol : part.protocols)
    whole.protocols.push_back(std::move(protocol));
  if (part.signed_peer_record) whole.signed_peer_record = std::move(part.signed_peer_record);
  whole.skipped_addresses += part.skipped_addresses;
}

Bytes encode_stream(const Identify& message) {
  Bytes out;
  const auto append_delimited = [&out](const Bytes& encoded) {
    append_varint(out, encoded.size());
    out.insert(out.end(), encoded.begin(), encoded.end());
  };
  Bytes whole = encode(message);
  if (!message.signed_peer_record || whole.size() <= kLegacyMessageSize) {
    append_delimited(whole);
    return out;
  }
  Identify without_record = message;
  without_record.signed_peer_record.reset();
  append_delimited(encode(without_record));
  Identify record_only;
  record_only.signed_peer_record = message.signed_peer_record;
  append_delimited(encode(record_only));
  return out;
}

Expected<Identify> decode_stream(ByteView stream) {
  Identify whole;
  std::size_t count = 0;
  while (!stream.empty()) {
    if (++count > kMaxMessagesPerStream) {
      return fail("identify: more than " + std::to_string(kMaxMessagesPerStream) +
                  " messages on one stream");
    }
    auto length = read_varint(stream);
    if (!length) {
      return fail("identify: bad length of message " + std::to_string(count) + ": " +
                  length.error().message);
    }
    if (*length > kMaxMessageSize) {
      return fail("identify: message " + std::to_string(count) + " of " + std::to_string(*length) +
                  " bytes exceeds the limit of " + std::to_string(kMaxMessageSize));
    }
    if (*length > stream.size()) {
      return fail("identify: message " + std::to_string(count) + " is truncated (" +
                  std::to_string(stream.size()) + " of " + std::to_string(*length) + " bytes)");
    }
    const auto size = static_cast<std::size_t>(*length);
    auto part = decode(stream.subspan(0, size));
    if (!part) return tl::unexpected(part.error());
    merge(whole, std::move(*part));
    stream = stream.subspan(size);
  }
  if (count == 0) return fail("identify: the peer closed the stream without a message");
  return whole;
}

}  // namespace an::p2p::identify
