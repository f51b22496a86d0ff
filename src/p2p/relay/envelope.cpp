#include "p2p/relay/envelope.h"

#include <algorithm>
#include <string>
#include <utility>

#include "p2p/crypto/key.h"
#include "p2p/identify/peer_record.h"

namespace an::p2p::relay {
namespace {

std::string to_hex(ByteView bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::uint8_t byte : bytes) {
    out += kHex[byte >> 4];
    out += kHex[byte & 0x0f];
  }
  return out;
}

}  // namespace

Expected<Bytes> seal_envelope(const PrivateKey& key, std::string_view domain, ByteView payload_type,
                              ByteView payload) {
  identify::Envelope envelope;
  envelope.public_key = key.public_key().protobuf();
  envelope.payload_type.assign(payload_type.begin(), payload_type.end());
  envelope.payload.assign(payload.begin(), payload.end());
  auto signature = key.sign(identify::envelope_signing_input(domain, payload_type, payload));
  if (!signature) return fail("signing the envelope: " + signature.error().message);
  envelope.signature.assign(signature->begin(), signature->end());
  return identify::encode_envelope(envelope);
}

Expected<OpenedEnvelope> open_envelope(ByteView bytes, std::string_view domain,
                                       ByteView payload_type, std::size_t max_size) {
  if (bytes.size() > max_size) {
    return fail("envelope: " + std::to_string(bytes.size()) + " bytes exceeds the limit of " +
                std::to_string(max_size));
  }
  auto envelope = identify::decode_envelope(bytes);
  if (!envelope) return tl::unexpected(envelope.error());
  if (!std::equal(envelope->payload_type.begin(), envelope->payload_type.end(),
                  payload_type.begin(), payload_type.end())) {
    return fail("envelope: payload type 0x" + to_hex(envelope->payload_type) + " is not 0x" +
                to_hex(payload_type));
  }
  auto key = PublicKey::from_protobuf(envelope->public_key);
  if (!key) return fail("envelope: " + key.error().message);
  const Bytes signed_bytes =
      identify::envelope_signing_input(domain, envelope->payload_type, envelope->payload);
  if (!key->verify(signed_bytes, envelope->signature)) {
    return fail("envelope: the signature does not match the payload, domain and key");
  }
  return OpenedEnvelope{key->peer_id(), std::move(envelope->payload)};
}

}  // namespace an::p2p::relay
