#include "p2p/record/envelope.h"

#include <algorithm>
#include <array>
#include <string>
#include <utility>

#include "p2p/wire/protobuf.h"

namespace an::p2p::record {
namespace {

enum EnvelopeField : std::uint32_t {
  kEnvelopePublicKey = 1,
  kEnvelopePayloadType = 2,
  kEnvelopePayload = 3,
  kEnvelopeSignature = 5,
};

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
      return fail(pb::wrong_wire_type("envelope", field.number));
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

Expected<Bytes> seal_envelope(const PrivateKey& key, std::string_view domain, ByteView payload_type,
                              ByteView payload) {
  Envelope envelope;
  envelope.public_key = key.public_key().protobuf();
  envelope.payload_type = to_bytes(payload_type);
  envelope.payload = to_bytes(payload);
  auto signature = key.sign(envelope_signing_input(domain, payload_type, payload));
  if (!signature) return fail("signing the envelope: " + signature.error().message);
  envelope.signature.assign(signature->begin(), signature->end());
  return encode_envelope(envelope);
}

Expected<OpenedEnvelope> open_envelope(ByteView bytes, std::string_view domain,
                                       ByteView payload_type, std::size_t max_size) {
  if (bytes.size() > max_size) {
    return fail("envelope: " + std::to_string(bytes.size()) + " bytes exceeds the limit of " +
                std::to_string(max_size));
  }
  auto envelope = decode_envelope(bytes);
  if (!envelope) return tl::unexpected(envelope.error());
  if (!std::equal(envelope->payload_type.begin(), envelope->payload_type.end(),
                  payload_type.begin(), payload_type.end())) {
    return fail("envelope: payload type 0x" + to_hex(envelope->payload_type) + " is not 0x" +
                to_hex(payload_type));
  }
  auto key = PublicKey::from_protobuf(envelope->public_key);
  if (!key) return fail("envelope: " + key.error().message);
  const Bytes signed_bytes =
      envelope_signing_input(domain, envelope->payload_type, envelope->payload);
  if (!key->verify(signed_bytes, envelope->signature)) {
    return fail("envelope: the signature does not match the payload, domain and key");
  }
  return OpenedEnvelope{key->peer_id(), std::move(envelope->payload)};
}

}  // namespace an::p2p::record
