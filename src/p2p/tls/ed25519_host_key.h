// Today's binding of the TLS host-key interface to Ed25519 host keys: the signer of our
// certificate's SignedKey and the verifier of a peer's. Any thread; the signer keeps its own
// copy of the key.
#pragma once

#include "p2p/crypto/ed25519.h"
#include "p2p/tls/certificate.h"

namespace an::p2p::tls {

TlsHostKey ed25519_host_key(const Ed25519PrivateKey& key);

// Verifies Ed25519 keys; other key types give "key type ... is not supported yet".
Expected<void> verify_ed25519_signed_key(ByteView public_key_protobuf, ByteView message,
                                         ByteView signature);

}  // namespace an::p2p::tls
