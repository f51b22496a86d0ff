// The libp2p TLS certificate (tls spec): a self-signed X.509 certificate on a throwaway P-256
// key, carrying the host key in the libp2p Public Key Extension (a SignedKey: the host's
// PublicKey protobuf and its signature over "libp2p-tls-handshake:" + the certificate key's
// SubjectPublicKeyInfo). Generation for our side, verification of a peer's chain. The host key
// is reached only through TlsHostKey / SignedKeyVerifier, whatever its type. Pure functions on
// values: any thread; a HostCertificate is immutable once made and may be shared.
#pragma once

#include <openssl/x509.h>

#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string_view>

#include "p2p/crypto/openssl.h"
#include "p2p/crypto/peer_id.h"
#include "p2p/multiformats/varint.h"
#include "util/expected.h"

namespace an::p2p::tls {

inline constexpr std::string_view kSignedKeyPrefix = "libp2p-tls-handshake:";
inline constexpr std::string_view kExtensionOid = "1.3.6.1.4.1.53594.1.1";

// Our host key, whatever its type: its PublicKey protobuf and a signer.
struct TlsHostKey {
  Bytes public_key_protobuf;
  std::function<Expected<Bytes>(ByteView message)> sign;
};

// Checks `signature` over `message` with the key in a PublicKey protobuf. An error for a bad
// signature as well as for a key it cannot use.
using SignedKeyVerifier = std::function<Expected<void>(ByteView public_key_protobuf,
                                                       ByteView message, ByteView signature)>;

struct X509Deleter {
  void operator()(X509* certificate) const { X509_free(certificate); }
};
using X509Handle = std::unique_ptr<X509, X509Deleter>;

// What goes into a certificate we make. The defaults are go-libp2p's: valid from an hour ago
// (clock skew) for about 100 years, so that peers with a poorly set clock can still connect.
// The rest exists so that tests can make the certificates a peer must refuse.
struct CertificateOptions {
  std::chrono::system_clock::time_point not_before =
      std::chrono::system_clock::now() - std::chrono::hours(1);
  std::chrono::system_clock::time_point not_after =
      std::chrono::system_clock::now() + std::chrono::hours(24 * 365 * 100);
  bool include_signed_key = true;
  bool critical_extension = false;
};

struct HostCertificate {
  X509Handle certificate;
  openssl::Key private_key;  // the P-256 certificate key, not the host key
  Bytes der() const;
};

// A fresh P-256 key and its certificate with a random serial number.
Expected<HostCertificate> generate_certificate(const TlsHostKey& host_key,
                                               const CertificateOptions& options = {});

// The SignedKey SEQUENCE { publicKey OCTET STRING, signature OCTET STRING }, DER.
Bytes encode_signed_key(ByteView public_key_protobuf, ByteView signature);
struct SignedKey {
  ByteView public_key_protobuf;
  ByteView signature;
};
Expected<SignedKey> decode_signed_key(ByteView der);

// A peer's chain as the TLS handshake delivered it: exactly one certificate, valid now,
// correctly self-signed, with the libp2p extension (critical or not; any other critical
// extension OpenSSL does not know is refused, as go does) whose signature verifies. Returns the
// peer ID of the key in the extension. Errors start with "tls certificate: ".
Expected<PeerId> verify_certificate_chain(std::span<X509* const> chain,
                                          const SignedKeyVerifier& verifier);
// The same from DER certificates; trailing bytes after a certificate are refused.
Expected<PeerId> verify_certificate_chain_der(std::span<const ByteView> chain,
                                              const SignedKeyVerifier& verifier);

}  // namespace an::p2p::tls
