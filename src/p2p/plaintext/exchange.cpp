#include "p2p/plaintext/exchange.h"

#include <optional>

#include "p2p/crypto/key.h"
#include "p2p/wire/protobuf.h"

namespace an::p2p::plaintext {

Bytes encode_plaintext_exchange(const PeerId& peer, ByteView encoded_public_key) {
  Bytes out;
  pb::Writer writer(out);
  writer.bytes_field(1, peer.bytes());
  writer.bytes_field(2, encoded_public_key);
  return out;
}

Expected<PeerId> decode_plaintext_exchange(ByteView message) {
  std::optional<ByteView> id;
  std::optional<ByteView> key;
  pb::Reader reader(message);
  while (true) {
    auto field = reader.next();
    if (!field) return fail("plaintext exchange: " + field.error().message);
    if (!*field) break;
    if ((*field)->type != pb::WireType::kLengthDelimited) continue;
    if ((*field)->number == 1) id = (*field)->bytes;
    if ((*field)->number == 2) key = (*field)->bytes;
  }
  if (!id || !key) return fail("plaintext exchange: the peer ID or public key is missing");
  auto claimed = PeerId::from_multihash(*id);
  if (!claimed) return fail("plaintext exchange: " + claimed.error().message);
  auto public_key = PublicKey::from_protobuf(*key);
  if (!public_key) return fail("plaintext exchange: " + public_key.error().message);
  const PeerId& derived = public_key->peer_id();
  if (*claimed != derived) {
    return fail("plaintext exchange: peer ID " + claimed->to_string() +
                " does not belong to the public key sent (" + derived.to_string() + ")");
  }
  return *claimed;
}

}  // namespace an::p2p::plaintext
