#include "p2p/crypto/keys.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <optional>
#include <string>

namespace an::p2p {
namespace {

// Protobuf wire format: every field starts with the varint (field number << 3 | wire type).
constexpr std::uint64_t kWireTypeVarint = 0;
constexpr std::uint64_t kWireTypeLengthDelimited = 2;
constexpr std::uint64_t kTypeField = 1;
constexpr std::uint64_t kDataField = 2;
constexpr std::uint8_t kTypeTag = (kTypeField << 3) | kWireTypeVarint;           // 0x08
constexpr std::uint8_t kDataTag = (kDataField << 3) | kWireTypeLengthDelimited;  // 0x12

std::string describe_wire_type(std::uint64_t wire_type) {
  switch (wire_type) {
    case 0:
      return "varint";
    case 1:
      return "64-bit";
    case 2:
      return "length-delimited";
    case 5:
      return "32-bit";
    default:
      return "invalid wire type " + std::to_string(wire_type);
  }
}

std::string key_type_label(std::uint64_t value) {
  if (value <= 3) return std::string(key_type_name(static_cast<KeyType>(value)));
  return std::to_string(value);
}

Expected<KeyMessage> parse_key_message(ByteView message, const std::string& prefix) {
  if (message.empty()) return fail(prefix + "no bytes");
  std::optional<std::uint64_t> type;
  std::optional<ByteView> data;
  ByteView rest = message;
  while (!rest.empty()) {
    const std::size_t offset = message.size() - rest.size();
    auto tag = read_varint(rest);
    if (!tag) {
      return fail(prefix + "bad field tag at byte " + std::to_string(offset) + ": " +
                  tag.error().message);
    }
    const std::uint64_t field = *tag >> 3;
    const std::uint64_t wire_type = *tag & 7;
    if (field == kTypeField) {
      if (wire_type != kWireTypeVarint) {
        return fail(prefix + "the Type field is " + describe_wire_type(wire_type) +
                    ", expected varint");
      }
      if (type) return fail(prefix + "the Type field appears twice");
      auto value = read_varint(rest);
      if (!value) return fail(prefix + "bad Type field: " + value.error().message);
      type = *value;
    } else if (field == kDataField) {
      if (wire_type != kWireTypeLengthDelimited) {
        return fail(prefix + "the Data field is " + describe_wire_type(wire_type) +
                    ", expected length-delimited");
      }
      if (data) return fail(prefix + "the Data field appears twice");
      auto length = read_varint(rest);
      if (!length) return fail(prefix + "bad Data field length: " + length.error().message);
      if (*length > rest.size()) {
        return fail(prefix + "truncated: the Data field should be " + std::to_string(*length) +
                    " bytes but only " + std::to_string(rest.size()) + " are left");
      }
      data = rest.first(static_cast<std::size_t>(*length));
      rest = rest.subspan(data->size());
    } else {
      return fail(prefix + "unexpected field " + std::to_string(field) + " (" +
                  describe_wire_type(wire_type) + ") at byte " + std::to_string(offset));
    }
  }
  if (!type) return fail(prefix + "the Type field is missing");
  if (!data) return fail(prefix + "the Data field is missing");
  if (*type > static_cast<std::uint64_t>(KeyType::kEcdsa)) {
    return fail(prefix + "unknown key type " + key_type_label(*type));
  }
  return KeyMessage{static_cast<KeyType>(*type), *data};
}

tl::unexpected<Error> not_ed25519(KeyType type) {
  return fail("a key of type " + std::string(key_type_name(type)) +
              " where an Ed25519 key was expected");
}

void append_key_message(Bytes& out, KeyType type, ByteView data) {
  out.push_back(kTypeTag);
  append_varint(out, static_cast<std::uint64_t>(type));
  out.push_back(kDataTag);
  append_varint(out, data.size());
  out.insert(out.end(), data.begin(), data.end());
}

}  // namespace

std::string_view key_type_name(KeyType type) {
  switch (type) {
    case KeyType::kRsa:
      return "RSA";
    case KeyType::kEd25519:
      return "Ed25519";
    case KeyType::kSecp256k1:
      return "Secp256k1";
    case KeyType::kEcdsa:
      return "ECDSA";
  }
  return "unknown";
}

Expected<KeyMessage> parse_public_key_message(ByteView message) {
  return parse_key_message(message, "not a libp2p public key: ");
}

Expected<KeyMessage> parse_private_key_message(ByteView message) {
  return parse_key_message(message, "not a libp2p private key: ");
}

Bytes encode_key_message(KeyType type, ByteView data) {
  Bytes out;
  out.reserve(4 + data.size());
  append_key_message(out, type, data);
  return out;
}

Bytes encode_public_key(const Ed25519PublicKey& key) {
  Bytes out;
  out.reserve(4 + kEd25519PublicKeySize);
  append_key_message(out, KeyType::kEd25519, key.bytes());
  return out;
}

Expected<Ed25519PublicKey> decode_public_key(ByteView message) {
  auto parsed = parse_public_key_message(message);
  if (!parsed) return tl::unexpected(parsed.error());
  if (parsed->type != KeyType::kEd25519) return not_ed25519(parsed->type);
  auto key = Ed25519PublicKey::from_bytes(parsed->data);
  if (!key) return fail("not a libp2p public key: " + key.error().message);
  return key;
}

Expected<Bytes> encode_private_key(const Ed25519PrivateKey& key) {
  auto seed = key.seed();
  if (!seed) return tl::unexpected(seed.error());
  Bytes data(seed->begin(), seed->end());
  OPENSSL_cleanse(seed->data(), seed->size());
  const auto& public_bytes = key.public_key().bytes();
  data.insert(data.end(), public_bytes.begin(), public_bytes.end());
  Bytes out;
  out.reserve(4 + data.size());
  append_key_message(out, KeyType::kEd25519, data);
  secure_wipe(data);
  return out;
}

Expected<Ed25519PrivateKey> decode_private_key(ByteView message) {
  auto parsed = parse_private_key_message(message);
  if (!parsed) return tl::unexpected(parsed.error());
  if (parsed->type != KeyType::kEd25519) return not_ed25519(parsed->type);
  const ByteView data = parsed->data;
  constexpr std::size_t kSeedAndPublic = kEd25519SeedSize + kEd25519PublicKeySize;
  constexpr std::size_t kLegacySize = kSeedAndPublic + kEd25519PublicKeySize;
  if (data.size() != kSeedAndPublic && data.size() != kLegacySize) {
    return fail("not a libp2p private key: Ed25519 key data is " + std::to_string(data.size()) +
                " bytes, expected 64 (or the legacy 96)");
  }
  const ByteView stored_public = data.subspan(kEd25519SeedSize, kEd25519PublicKeySize);
  if (data.size() == kLegacySize &&
      !std::ranges::equal(stored_public, data.subspan(kSeedAndPublic))) {
    return fail("corrupt key: the two copies of the public key in the legacy 96-byte form differ");
  }
  auto key = Ed25519PrivateKey::from_seed(data.first(kEd25519SeedSize));
  if (!key) return key;
  if (!std::ranges::equal(stored_public, key->public_key().bytes())) {
    return fail("corrupt key: the public key stored in it is not the one its private key derives");
  }
  return key;
}

void secure_wipe(Bytes& secret) {
  if (!secret.empty()) OPENSSL_cleanse(secret.data(), secret.size());
  secret.clear();
}

}  // namespace an::p2p
