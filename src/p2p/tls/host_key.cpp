#include "p2p/tls/host_key.h"

namespace an::p2p::tls {

TlsHostKey libp2p_host_key(const PrivateKey& key) {
  TlsHostKey host_key;
  host_key.public_key_protobuf = key.public_key().protobuf();
  host_key.sign = [key](ByteView message) { return key.sign(message); };
  return host_key;
}

Expected<void> verify_signed_key(ByteView public_key_protobuf, ByteView message,
                                 ByteView signature) {
  auto key = PublicKey::from_protobuf(public_key_protobuf);
  if (!key) return tl::unexpected(key.error());
  if (!key->verify(message, signature)) {
    return fail(std::string(key_type_name(key->type())) + " signature does not verify");
  }
  return {};
}

}  // namespace an::p2p::tls
