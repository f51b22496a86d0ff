#include "p2p/identify/peer_record.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "p2p/crypto/keys.h"
#include "p2p/wire/protobuf.h"

namespace an::p2p::identify {
namespace {

enum EnvelopeField : std::uint32_t {
  kEnvelopePublicKey = 1,
  kEnvelopePayloadType = 2,
  kEnvelopePayload = 3,
  kEnvelopeSignature = 5,
};

enum PeerRecordField : std::uint32_t {
  kRecordPeerId = 1,
  kRecordSeq = 2,
  kRecordAddresses = 3,
};

constexpr std::uint32_t kAddressInfoMultiaddr = 1;

std::string to_hex(ByteView bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::uint8_t byte : bytes) {
    out += kHex[byte >> 4];
    out += kHex[byte & 0x0f];
  }
  return out;
}

Bytes to_bytes(ByteView view) {
  return Bytes(view.begin(), view.end());
}

std::string wire_type_mismatch(std::string_view what, std::uint32_t number) {
  return std::string(what) + ": field " + std::to_string(number) + " has the wrong wire type";
}

// The multiaddr of one AddressInfo; nullopt when it does not parse (skipped, not fatal).
Expected<std::optional<Multiaddr>> decode_address_info(ByteView message) {
  std::optional<Multiaddr> address;
  pb::Reader reader(message);
  while (true) {
    auto next = reader.next();
    if (!next) return fail("peer record: address: " + next.error().message);
    if (!next->has_value()) break;
    const pb::Field& field = **next;
    if (field.number != kAddressInfoMultiaddr) continue;
    if (field.type != pb::WireType::kLengthDelimited) {
      return fail(wire_type_mismatch("peer record: address", field.number));
    }
    if (auto parsed = Multiaddr::from_bytes(field.bytes)) {
      address = std::move(*parsed);
    } else {
      address.reset();
    }
  }
  return address;
}

}  // namespace

Bytes encode_envelope(const Envelope& envelope) {
  Bytes out;
  pb::Writer writer(out);
  writer.bytes_field(kEnvelopePublicKey, envelope.public_key);
  writer.bytes_field(kEnvelopePayloadType, envelope.payload_type);
  writer.bytes_field(kEnvelopePayload, envelope.payload);
  writer.bytes_field(kEnvelopeSignature, envelope.signature);
  return out;
}

Expected<Envelope> decode_envelope(ByteView bytes) {
  if (bytes.size() > kMaxEnvelopeSize) {
    return fail("envelope: " + std::to_string(bytes.size()) + " bytes exceeds the limit of " +
                std::to_string(kMaxEnvelopeSize));
  }
  Envelope envelope;
  // Field numbers 1..5 seen so far, to refuse duplicates.
  std::array<bool, 6> seen{};
  pb::Reader reader(bytes);
  while (true) {
    auto next = reader.next();
    if (!next) return fail("envelope: " + next.error().message);
    if (!next->has_value()) break;
    const pb::Field& field = **next;
    Bytes* target = nullptr;
    switch (field.number) {
      case kEnvelopePublicKey:
        target = &envelope.public_key;
        break;
      case kEnvelopePayloadType:
        target = &envelope.payload_type;
        break;
      case kEnvelopePayload:
        target = &envelope.payload;
        break;
      case kEnvelopeSignature:
        target = &envelope.signature;
        break;
      default:
        continue;
    }
    if (field.type != pb::WireType::kLengthDelimited) {
      return fail(wire_type_mismatch("envelope", field.number));
    }
    if (seen[field.number]) {
      return fail("envelope: field " + std::to_string(field.number) + " appears twice");
    }
    seen[field.number] = true;
    *target = to_bytes(field.bytes);
  }
  if (!seen[kEnvelopePublicKey]) return fail("envelope: no public key");
  return envelope;
}

Bytes envelope_signing_input(std::string_view domain, ByteView payload_type, ByteView payload) {
  Bytes out;
  append_varint(out, domain.size());
  out.insert(out.end(), domain.begin(), domain.end());
  append_varint(out, payload_type.size());
  out.insert(out.end(), payload_type.begin(), payload_type.end());
  append_varint(out, payload.size());
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

Bytes encode_peer_record(const PeerId& peer_id, std::uint64_t seq,
                         const std::vector<Multiaddr>& addresses) {
  Bytes out;
  pb::Writer writer(out);
  writer.bytes_field(kRecordPeerId, peer_id.bytes());
  // proto3: a zero seq is not written, as go-libp2p does not write it.
  if (seq != 0) writer.varint_field(kRecordSeq, seq);
  for (const auto& address : addresses) {
    if (address.empty()) continue;
    Bytes info;
    pb::Writer(info).bytes_field(kAddressInfoMultiaddr, address.to_bytes());
    writer.bytes_field(kRecordAddresses, info);
  }
  return out;
}

Expected<PeerRecord> decode_peer_record(ByteView payload) {
  std::optional<PeerId> peer_id;
  std::uint64_t seq = 0;
  std::vector<Multiaddr> addresses;
  std::size_t skipped = 0;
  bool seq_seen = false;

  pb::Reader reader(payload);
  while (true) {
    auto next = reader.next();
    if (!next) return fail("peer record: " + next.error().message);
    if (!next->has_value()) break;
    const pb::Field& field = **next;
    switch (field.number) {
      case kRecordPeerId: {
        if (field.type != pb::WireType::kLengthDelimited) {
          return fail(wire_type_mismatch("peer record", field.number));
        }
        if (peer_id) return fail("peer record: the peer ID appears twice");
        auto parsed = PeerId::from_multihash(field.bytes);
        if (!parsed) return fail("peer record: bad peer ID: " + parsed.error().message);
        peer_id = std::move(*parsed);
        break;
      }
      case kRecordSeq:
        if (field.type != pb::WireType::kVarint) {
          return fail(wire_type_mismatch("peer record", field.number));
        }
        if (seq_seen) return fail("peer record: the sequence number appears twice");
        seq_seen = true;
        seq = field.varint;
        break;
      case kRecordAddresses: {
        if (field.type != pb::WireType::kLengthDelimited) {
          return fail(wire_type_mismatch("peer record", field.number));
        }
        auto address = decode_address_info(field.bytes);
        if (!address) return tl::unexpected(address.error());
        if (*address) {
          addresses.push_back(std::move(**address));
        } else {
          ++skipped;
        }
        break;
      }
      default:
        break;
    }
  }
  if (!peer_id) return fail("peer record: no peer ID");
  return PeerRecord{std::move(*peer_id), seq, std::move(addresses), skipped};
}

Expected<Bytes> make_signed_peer_record(const PrivateKey& key, std::uint64_t seq,
                                        const std::vector<Multiaddr>& addresses) {
  Envelope envelope;
  envelope.public_key = key.public_key().protobuf();
  envelope.payload_type.assign(kPeerRecordPayloadType.begin(), kPeerRecordPayloadType.end());
  envelope.payload = encode_peer_record(key.peer_id(), seq, addresses);
  auto signature =
      key.sign(envelope_signing_input(kPeerRecordDomain, envelope.payload_type, envelope.payload));
  if (!signature) return fail("signing the peer record: " + signature.error().message);
  envelope.signature.assign(signature->begin(), signature->end());
  return encode_envelope(envelope);
}

Expected<PeerRecord> verify_signed_peer_record(ByteView bytes) {
  auto envelope = decode_envelope(bytes);
  if (!envelope) return fail("signed peer record: " + envelope.error().message);
  if (!std::equal(envelope->payload_type.begin(), envelope->payload_type.end(),
                  kPeerRecordPayloadType.begin(), kPeerRecordPayloadType.end())) {
    return fail("signed peer record: payload type 0x" + to_hex(envelope->payload_type) +
                " is not a peer record (0x" + to_hex(kPeerRecordPayloadType) + ")");
  }
  auto key = PublicKey::from_protobuf(envelope->public_key);
  if (!key) return fail("signed peer record: " + key.error().message);
  const Bytes signed_bytes =
      envelope_signing_input(kPeerRecordDomain, envelope->payload_type, envelope->payload);
  if (!key->verify(signed_bytes, envelope->signature)) {
    return fail("signed peer record: the signature does not match the record and key");
  }
  auto record = decode_peer_record(envelope->payload);
  if (!record) return fail("signed peer record: " + record.error().message);
  const PeerId& signer = key->peer_id();
  if (record->peer_id != signer) {
    return fail("signed peer record: the record names peer " + record->peer_id.to_base58() +
                " but is signed by " + signer.to_base58());
  }
  return record;
}

}  // namespace an::p2p::identify
