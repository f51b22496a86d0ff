#include "p2p/crypto/peer_id.h"

#include <string_view>

#include "p2p/crypto/key.h"
#include "p2p/crypto/keys.h"
#include "p2p/multiformats/base32.h"
#include "p2p/multiformats/base58.h"
#include "p2p/multiformats/multihash.h"

namespace an::p2p {
namespace {

constexpr std::uint64_t kCidVersion1 = 1;

// Quotes the text for error messages, shortened so hostile input cannot flood a log line.
std::string quote(std::string_view text) {
  constexpr std::size_t kMaxQuoted = 100;
  std::string quoted = "\"";
  quoted += text.substr(0, kMaxQuoted);
  if (text.size() > kMaxQuoted) quoted += "...";
  quoted += "\"";
  return quoted;
}

Expected<Bytes> decode_multibase(std::string_view text) {
  const char prefix = text.front();
  const std::string_view body = text.substr(1);
  switch (prefix) {
    case 'b':
      return base32_decode(body);
    case 'k':
      return base36_decode(body);
    case 'z':
      return base58btc_decode(body);
    default:
      return fail(std::string("unsupported multibase prefix '") + prefix +
                  "' (expected 'b' base32, 'k' base36 or 'z' base58btc)");
  }
}

Expected<PeerId> parse_cid(std::string_view text) {
  auto cid = decode_multibase(text);
  if (!cid) return tl::unexpected(cid.error());
  ByteView rest = *cid;
  auto version = read_varint(rest);
  if (!version) return fail("bad CID version: " + version.error().message);
  if (*version != kCidVersion1) {
    return fail("CID version " + std::to_string(*version) + " is not supported (expected 1)");
  }
  auto codec = read_varint(rest);
  if (!codec) return fail("bad CID codec: " + codec.error().message);
  if (*codec != kLibp2pKeyCodec) {
    return fail("the CID codec is " + multihash_code_name(*codec) +
                ", not libp2p-key (0x72): it does not name a peer");
  }
  return PeerId::from_multihash(rest);
}

Expected<PeerId> parse_base58_multihash(std::string_view text) {
  auto bytes = base58btc_decode(text);
  if (!bytes) return tl::unexpected(bytes.error());
  return PeerId::from_multihash(*bytes);
}

}  // namespace

PeerId PeerId::from_public_key(const Ed25519PublicKey& key) {
  return PeerId(identity_multihash(encode_public_key(key)).encode());
}

PeerId PeerId::from_public_key(const PublicKey& key) {
  return key.peer_id();
}

Expected<PeerId> PeerId::from_encoded_public_key(ByteView encoded_public_key) {
  auto message = parse_public_key_message(encoded_public_key);
  if (!message) return tl::unexpected(message.error());
  if (encoded_public_key.size() <= kMaxInlineKeyLength) {
    return PeerId(identity_multihash(encoded_public_key).encode());
  }
  auto hashed = sha256_multihash(encoded_public_key);
  if (!hashed) return tl::unexpected(hashed.error());
  return PeerId(hashed->encode());
}

Expected<PeerId> PeerId::from_multihash(ByteView multihash) {
  auto parsed = parse_multihash(multihash);
  if (!parsed) return fail("not a peer ID: " + parsed.error().message);
  if (parsed->code == kIdentityMultihashCode) {
    if (parsed->digest.size() > kMaxInlineKeyLength) {
      return fail("not a peer ID: an identity multihash holds at most 42 bytes of key, not " +
                  std::to_string(parsed->digest.size()));
    }
    if (parsed->digest.empty()) return fail("not a peer ID: empty identity multihash");
  } else if (parsed->code != kSha2_256MultihashCode) {
    return fail("not a peer ID: multihash function " + multihash_code_name(parsed->code) +
                " (a peer ID is an identity or sha2-256 multihash)");
  }
  return PeerId(Bytes(multihash.begin(), multihash.end()));
}

Expected<PeerId> PeerId::parse(std::string_view text) {
  if (text.empty()) return fail("invalid peer ID \"\": empty text");
  // Per the peer-ids spec, a bare base58btc multihash starts with "1" (identity) or "Qm"
  // (sha2-256); anything else must be a multibase CID.
  const bool bare_multihash = text.front() == '1' || text.starts_with("Qm");
  Expected<PeerId> id = bare_multihash ? parse_base58_multihash(text) : parse_cid(text);
  if (!id) return fail("invalid peer ID " + quote(text) + ": " + id.error().message);
  return id;
}

std::string PeerId::to_base58() const {
  return base58btc_encode(multihash_);
}

std::string PeerId::to_cid_text() const {
  Bytes cid;
  append_varint(cid, kCidVersion1);
  append_varint(cid, kLibp2pKeyCodec);
  cid.insert(cid.end(), multihash_.begin(), multihash_.end());
  return "b" + base32_encode(cid);
}

bool PeerId::has_inline_public_key() const {
  return !multihash_.empty() && multihash_.front() == kIdentityMultihashCode;
}

Expected<PublicKey> PeerId::inline_public_key() const {
  if (!has_inline_public_key()) {
    return fail("peer ID " + to_base58() +
                " is a hash of its public key: the key itself must come from the peer");
  }
  auto multihash = parse_multihash(multihash_);
  if (!multihash) return tl::unexpected(multihash.error());
  auto key = PublicKey::from_protobuf(multihash->digest);
  if (!key) return fail("peer ID " + to_base58() + ": " + key.error().message);
  return key;
}

Expected<Ed25519PublicKey> PeerId::ed25519_public_key() const {
  if (!has_inline_public_key()) {
    return fail("peer ID " + to_base58() +
                " is a hash of its public key: the key itself must come from the peer");
  }
  auto multihash = parse_multihash(multihash_);
  if (!multihash) return tl::unexpected(multihash.error());
  auto key = decode_public_key(multihash->digest);
  if (!key) return fail("peer ID " + to_base58() + ": " + key.error().message);
  return key;
}

}  // namespace an::p2p

std::size_t std::hash<an::p2p::PeerId>::operator()(const an::p2p::PeerId& id) const noexcept {
  const auto& bytes = id.bytes();
  return std::hash<std::string_view>{}(
      std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}
