#include "p2p/tls/ed25519_host_key.h"

#include "p2p/crypto/keys.h"

namespace an::p2p::tls {

TlsHostKey ed25519_host_key(const Ed25519PrivateKey& key) {
  TlsHostKey host_key;
  host_key.public_key_protobuf = encode_public_key(key.public_key());
  host_key.sign = [key](ByteView message) -> Expected<Bytes> {
    auto signature = key.sign(message);
    if (!signature) return tl::unexpected(signature.error());
    return Bytes(signature->begin(), signature->end());
  };
  return host_key;
}

Expected<void> verify_ed25519_signed_key(ByteView public_key_protobuf, ByteView message,
                                         ByteView signature) {
  auto key = decode_public_key(public_key_protobuf);
  if (!key) return tl::unexpected(key.error());
  if (!key->verify(message, signature)) return fail("Ed25519 signature does not verify");
  return {};
}

}  // namespace an::p2p::tls
