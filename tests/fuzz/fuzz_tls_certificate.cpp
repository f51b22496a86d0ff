// Fuzz target: a peer's TLS certificate (DER) and the SignedKey inside it must never crash the
// verifier, whatever the bytes; a certificate it accepts names a peer.
#include <cstdlib>

#include "p2p/tls/certificate.h"
#include "p2p/tls/host_key.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  an::p2p::ByteView input(data, size);
  std::span<const an::p2p::ByteView> chain(&input, 1);
  auto peer = an::p2p::tls::verify_certificate_chain_der(chain, an::p2p::tls::verify_signed_key);
  if (peer && peer->bytes().empty()) std::abort();
  (void)an::p2p::tls::decode_signed_key(input);
  return 0;
}
