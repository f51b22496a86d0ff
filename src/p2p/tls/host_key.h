// The binding of the TLS host-key interface to libp2p keys of every type: the signer of our
// certificate's SignedKey and the verifier of a peer's. Any thread; the signer keeps its own
// copy of the key.
#pragma once

#include "p2p/crypto/key.h"
#include "p2p/tls/certificate.h"

namespace an::p2p::tls {

TlsHostKey libp2p_host_key(const PrivateKey& key);

// Verifies a SignedKey made with a key of any supported type (Ed25519, RSA, secp256k1, ECDSA).
Expected<void> verify_signed_key(ByteView public_key_protobuf, ByteView message,
                                 ByteView signature);

}  // namespace an::p2p::tls
