#include "p2p/noise/payload.h"

#include <string>

#include "p2p/crypto/keys.h"
#include "p2p/wire/protobuf.h"

namespace an::p2p::noise {
namespace {

constexpr std::uint32_t kIdentityKeyField = 1;
constexpr std::uint32_t kIdentitySigField = 2;
constexpr std::uint32_t kExtensionsField = 4;
constexpr std::uint32_t kCerthashesField = 1;
constexpr std::uint32_t kStreamMuxersField = 2;

constexpr std::string_view kMalformed = "malformed noise handshake payload: ";

Expected<void> decode_extensions(ByteView encoded, HandshakePayload& payload) {
  pb::Reader reader(encoded);
  while (true) {
    auto field = reader.next();
    if (!field) return fail(std::string(kMalformed) + "extensions: " + field.error().message);
    if (!*field) return {};
    const pb::Field& current = **field;
    if (current.number != kCerthashesField && current.number != kStreamMuxersField) continue;
    if (current.type != pb::WireType::kLengthDelimited) {
      return fail(std::string(kMalformed) + "extensions field " + std::to_string(current.number) +
                  " is not length-delimited");
    }
    if (current.number == kCerthashesField) {
      payload.webtransport_certhashes.emplace_back(current.bytes.begin(), current.bytes.end());
    } else {
      payload.stream_muxers.emplace_back(pb::as_string(current.bytes));
    }
  }
}

}  // namespace

Bytes encode_payload(const HandshakePayload& payload) {
  Bytes out;
  pb::Writer writer(out);
  writer.bytes_field(kIdentityKeyField, payload.identity_key);
  writer.bytes_field(kIdentitySigField, payload.identity_sig);
  if (!payload.webtransport_certhashes.empty() || !payload.stream_muxers.empty()) {
    Bytes extensions;
    pb::Writer extensions_writer(extensions);
    for (const Bytes& certhash : payload.webtransport_certhashes) {
      extensions_writer.bytes_field(kCerthashesField, certhash);
    }
    for (const std::string& muxer : payload.stream_muxers) {
      extensions_writer.string_field(kStreamMuxersField, muxer);
    }
    writer.bytes_field(kExtensionsField, extensions);
  }
  return out;
}

Expected<HandshakePayload> decode_payload(ByteView encoded) {
  HandshakePayload payload;
  bool seen_key = false;
  bool seen_sig = false;
  pb::Reader reader(encoded);
  while (true) {
    auto field = reader.next();
    if (!field) return fail(std::string(kMalformed) + field.error().message);
    if (!*field) break;
    const pb::Field& current = **field;
    const std::uint32_t number = current.number;
    if (number != kIdentityKeyField && number != kIdentitySigField && number != kExtensionsField) {
      continue;  // forward compatibility: fields we do not know are someone else's business
    }
    if (current.type != pb::WireType::kLengthDelimited) {
      return fail(std::string(kMalformed) + "field " + std::to_string(number) +
                  " is not length-delimited");
    }
    if (number == kIdentityKeyField) {
      // Two keys would leave room to argue about which one signed; no encoder writes that.
      if (seen_key) return fail(std::string(kMalformed) + "identity_key appears twice");
      seen_key = true;
      payload.identity_key.assign(current.bytes.begin(), current.bytes.end());
    } else if (number == kIdentitySigField) {
      if (seen_sig) return fail(std::string(kMalformed) + "identity_sig appears twice");
      seen_sig = true;
      payload.identity_sig.assign(current.bytes.begin(), current.bytes.end());
    } else {
      // Protobuf merges repeated occurrences of a message field; so do we.
      if (auto decoded = decode_extensions(current.bytes, payload); !decoded) {
        return tl::unexpected(decoded.error());
      }
    }
  }
  return payload;
}

Bytes static_key_signature_message(const X25519PublicKey& static_key) {
  Bytes message(kStaticKeySignaturePrefix.begin(), kStaticKeySignaturePrefix.end());
  message.insert(message.end(), static_key.begin(), static_key.end());
  return message;
}

Expected<HandshakePayload> make_payload(const PrivateKey& identity,
                                        const X25519PublicKey& static_key,
                                        std::vector<std::string> stream_muxers) {
  auto signature = identity.sign(static_key_signature_message(static_key));
  if (!signature) {
    return fail("signing the noise static key: " + signature.error().message);
  }
  HandshakePayload payload;
  payload.identity_key = identity.public_key().protobuf();
  payload.identity_sig.assign(signature->begin(), signature->end());
  payload.stream_muxers = std::move(stream_muxers);
  return payload;
}

Expected<VerifiedIdentity> verify_payload(const HandshakePayload& payload,
                                          const X25519PublicKey& remote_static_key) {
  if (payload.identity_key.empty()) {
    return fail("noise handshake payload has no identity_key");
  }
  if (payload.identity_sig.empty()) {
    return fail("noise handshake payload has no identity_sig");
  }
  auto public_key = PublicKey::from_protobuf(payload.identity_key);
  if (!public_key) {
    return fail("noise handshake payload: the remote identity key: " + public_key.error().message);
  }
  if (!public_key->verify(static_key_signature_message(remote_static_key), payload.identity_sig)) {
    return fail(
        "noise handshake payload: identity_sig is not a valid signature of the "
        "remote static key by " +
        public_key->peer_id().to_string());
  }
  return VerifiedIdentity{public_key->peer_id(), *public_key};
}

}  // namespace an::p2p::noise
