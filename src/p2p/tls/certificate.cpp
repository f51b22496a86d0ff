#include "p2p/tls/certificate.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace an::p2p::tls {
namespace {

constexpr std::uint8_t kDerSequence = 0x30;
constexpr std::uint8_t kDerOctetString = 0x04;
// go-libp2p draws serial numbers below 2^62.
constexpr int kSerialBits = 62;

struct ObjectDeleter {
  void operator()(ASN1_OBJECT* object) const { ASN1_OBJECT_free(object); }
};
using ObjectHandle = std::unique_ptr<ASN1_OBJECT, ObjectDeleter>;
struct OctetStringDeleter {
  void operator()(ASN1_OCTET_STRING* value) const { ASN1_OCTET_STRING_free(value); }
};
struct ExtensionDeleter {
  void operator()(X509_EXTENSION* extension) const { X509_EXTENSION_free(extension); }
};
struct BignumDeleter {
  void operator()(BIGNUM* number) const { BN_free(number); }
};
struct NameDeleter {
  void operator()(X509_NAME* name) const { X509_NAME_free(name); }
};

Expected<void> fail_openssl(const std::string& what) {
  return fail("tls certificate: " + openssl::failure(what));
}

ObjectHandle extension_oid() {
  return ObjectHandle(OBJ_txt2obj(std::string(kExtensionOid).c_str(), 1));
}

void append_der_length(Bytes& out, std::size_t length) {
  if (length < 0x80) {
    out.push_back(static_cast<std::uint8_t>(length));
    return;
  }
  std::uint8_t digits[sizeof(std::size_t)];
  int count = 0;
  for (std::size_t rest = length; rest != 0; rest >>= 8) {
    digits[count++] = static_cast<std::uint8_t>(rest & 0xff);
  }
  out.push_back(static_cast<std::uint8_t>(0x80 | count));
  while (count > 0)
    out.push_back(digits[--count]);
}

// One DER element of the expected tag at the front of `input`, which is advanced past it.
Expected<ByteView> take_der(ByteView& input, std::uint8_t tag, const char* what) {
  auto malformed = [&](const char* why) {
    return fail(std::string("tls certificate: malformed SignedKey: ") + what + " " + why);
  };
  if (input.size() < 2) return malformed("is missing");
  if (input[0] != tag) return malformed("has the wrong type");
  std::size_t length = input[1];
  std::size_t header = 2;
  if (length & 0x80) {
    std::size_t digits = length & 0x7f;
    // Definite lengths of at most 4 bytes; anything longer cannot fit an extension anyway.
    if (digits == 0 || digits > 4 || input.size() < 2 + digits) return malformed("bad length");
    length = 0;
    for (std::size_t i = 0; i < digits; ++i)
      length = (length << 8) | input[2 + i];
    if (input[2] == 0 || length < 0x80) return malformed("has a non-minimal length");
    header += digits;
  }
  if (input.size() - header < length) return malformed("is truncated");
  ByteView value = input.subspan(header, length);
  input = input.subspan(header + length);
  return value;
}

Expected<Bytes> subject_public_key_info(EVP_PKEY* key) {
  int size = i2d_PUBKEY(key, nullptr);
  if (size <= 0) return fail("tls certificate: " + openssl::failure("encoding the public key"));
  Bytes der(static_cast<std::size_t>(size));
  std::uint8_t* out = der.data();
  if (i2d_PUBKEY(key, &out) != size) {
    return fail("tls certificate: " + openssl::failure("encoding the public key"));
  }
  return der;
}

Bytes signed_message(ByteView spki) {
  Bytes message(kSignedKeyPrefix.begin(), kSignedKeyPrefix.end());
  message.insert(message.end(), spki.begin(), spki.end());
  return message;
}

Expected<void> set_time(ASN1_TIME* field, std::chrono::system_clock::time_point when) {
  if (ASN1_TIME_set(field, std::chrono::system_clock::to_time_t(when)) == nullptr) {
    return fail_openssl("setting the validity period");
  }
  return {};
}

Expected<void> add_signed_key_extension(X509* certificate, const TlsHostKey& host_key,
                                        EVP_PKEY* certificate_key, bool critical) {
  auto spki = subject_public_key_info(certificate_key);
  if (!spki) return tl::unexpected(spki.error());
  if (!host_key.sign) return fail("tls certificate: the host key has no signer");
  auto signature = host_key.sign(signed_message(*spki));
  if (!signature)
    return fail("tls certificate: signing the certificate key: " + signature.error().message);
  Bytes value = encode_signed_key(host_key.public_key_protobuf, *signature);
  ObjectHandle oid = extension_oid();
  std::unique_ptr<ASN1_OCTET_STRING, OctetStringDeleter> data(ASN1_OCTET_STRING_new());
  if (!oid || !data ||
      ASN1_OCTET_STRING_set(data.get(), value.data(), static_cast<int>(value.size())) != 1) {
    return fail_openssl("building the libp2p extension");
  }
  std::unique_ptr<X509_EXTENSION, ExtensionDeleter> extension(
      X509_EXTENSION_create_by_OBJ(nullptr, oid.get(), critical ? 1 : 0, data.get()));
  if (!extension || X509_add_ext(certificate, extension.get(), -1) != 1) {
    return fail_openssl("adding the libp2p extension");
  }
  return {};
}

Expected<void> set_serial_and_names(X509* certificate) {
  std::unique_ptr<BIGNUM, BignumDeleter> serial(BN_new());
  std::unique_ptr<BIGNUM, BignumDeleter> subject_serial(BN_new());
  if (!serial || !subject_serial ||
      BN_rand(serial.get(), kSerialBits, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_rand(subject_serial.get(), kSerialBits, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(certificate)) == nullptr) {
    return fail_openssl("choosing a serial number");
  }
  // RFC 5280 wants a non-empty issuer; go-libp2p puts a random serialNumber attribute in the
  // subject (= issuer) for that.
  char* decimal = BN_bn2dec(subject_serial.get());
  if (decimal == nullptr) return fail_openssl("choosing a serial number");
  std::string subject_text(decimal);
  OPENSSL_free(decimal);
  std::unique_ptr<X509_NAME, NameDeleter> name(X509_NAME_new());
  if (!name ||
      X509_NAME_add_entry_by_NID(name.get(), NID_serialNumber, MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>(subject_text.c_str()), -1,
                                 -1, 0) != 1 ||
      X509_set_subject_name(certificate, name.get()) != 1 ||
      X509_set_issuer_name(certificate, name.get()) != 1) {
    return fail_openssl("setting the certificate names");
  }
  return {};
}

// The checks on the certificate itself, before the SignedKey.
Expected<void> check_certificate(X509* certificate) {
  int not_before = X509_cmp_current_time(X509_get0_notBefore(certificate));
  int not_after = X509_cmp_current_time(X509_get0_notAfter(certificate));
  if (not_before == 0 || not_after == 0) {
    return fail("tls certificate: the validity period is malformed");
  }
  if (not_before > 0) return fail("tls certificate: not valid yet (notBefore is in the future)");
  if (not_after < 0) return fail("tls certificate: expired (notAfter is in the past)");
  EVP_PKEY* key = X509_get0_pubkey(certificate);
  if (key == nullptr) {
    ERR_clear_error();
    return fail("tls certificate: the certificate's public key is unusable");
  }
  if (X509_verify(certificate, key) != 1) {
    ERR_clear_error();
    return fail("tls certificate: the self-signature does not verify");
  }
  return {};
}

// The libp2p extension's value; refuses certificates with other critical extensions that
// OpenSSL does not handle (go's x509 verification refuses them too).
Expected<ByteView> find_signed_key(X509* certificate) {
  ObjectHandle oid = extension_oid();
  if (!oid) return tl::unexpected(fail_openssl("parsing the extension OID").error());
  std::optional<ByteView> found;
  int count = X509_get_ext_count(certificate);
  for (int i = 0; i < count; ++i) {
    X509_EXTENSION* extension = X509_get_ext(certificate, i);
    if (OBJ_cmp(X509_EXTENSION_get_object(extension), oid.get()) == 0) {
      if (found) return fail("tls certificate: the libp2p extension appears twice");
      const ASN1_OCTET_STRING* data = X509_EXTENSION_get_data(extension);
      found =
          ByteView(ASN1_STRING_get0_data(data), static_cast<std::size_t>(ASN1_STRING_length(data)));
      continue;
    }
    if (X509_EXTENSION_get_critical(extension) && !X509_supported_extension(extension)) {
      char text[80];
      OBJ_obj2txt(text, sizeof text, X509_EXTENSION_get_object(extension), 1);
      return fail(std::string("tls certificate: unhandled critical extension ") + text);
    }
  }
  if (!found) return fail("tls certificate: the libp2p public key extension is missing");
  return *found;
}

}  // namespace

Bytes HostCertificate::der() const {
  int size = i2d_X509(certificate.get(), nullptr);
  if (size <= 0) return {};
  Bytes out(static_cast<std::size_t>(size));
  std::uint8_t* cursor = out.data();
  i2d_X509(certificate.get(), &cursor);
  return out;
}

Bytes encode_signed_key(ByteView public_key_protobuf, ByteView signature) {
  Bytes body;
  body.push_back(kDerOctetString);
  append_der_length(body, public_key_protobuf.size());
  body.insert(body.end(), public_key_protobuf.begin(), public_key_protobuf.end());
  body.push_back(kDerOctetString);
  append_der_length(body, signature.size());
  body.insert(body.end(), signature.begin(), signature.end());
  Bytes out;
  out.push_back(kDerSequence);
  append_der_length(out, body.size());
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

Expected<SignedKey> decode_signed_key(ByteView der) {
  ByteView input = der;
  auto sequence = take_der(input, kDerSequence, "SEQUENCE");
  if (!sequence) return tl::unexpected(sequence.error());
  if (!input.empty()) return fail("tls certificate: malformed SignedKey: trailing bytes");
  ByteView fields = *sequence;
  auto public_key = take_der(fields, kDerOctetString, "publicKey");
  if (!public_key) return tl::unexpected(public_key.error());
  auto signature = take_der(fields, kDerOctetString, "signature");
  if (!signature) return tl::unexpected(signature.error());
  if (!fields.empty()) {
    // go-libp2p's optional third field, a network cookie for private networks.
    return fail("tls certificate: SignedKey with a network cookie is not supported yet");
  }
  return SignedKey{*public_key, *signature};
}

Expected<HostCertificate> generate_certificate(const TlsHostKey& host_key,
                                               const CertificateOptions& options) {
  openssl::Key key(EVP_EC_gen("P-256"));
  if (!key) return tl::unexpected(fail_openssl("generating the P-256 certificate key").error());
  X509Handle certificate(X509_new());
  if (!certificate || X509_set_version(certificate.get(), X509_VERSION_3) != 1) {
    return tl::unexpected(fail_openssl("creating the certificate").error());
  }
  if (auto done = set_serial_and_names(certificate.get()); !done) {
    return tl::unexpected(done.error());
  }
  if (auto done = set_time(X509_getm_notBefore(certificate.get()), options.not_before); !done) {
    return tl::unexpected(done.error());
  }
  if (auto done = set_time(X509_getm_notAfter(certificate.get()), options.not_after); !done) {
    return tl::unexpected(done.error());
  }
  if (X509_set_pubkey(certificate.get(), key.get()) != 1) {
    return tl::unexpected(fail_openssl("setting the certificate key").error());
  }
  if (options.include_signed_key) {
    auto added = add_signed_key_extension(certificate.get(), host_key, key.get(),
                                          options.critical_extension);
    if (!added) return tl::unexpected(added.error());
  }
  if (X509_sign(certificate.get(), key.get(), EVP_sha256()) <= 0) {
    return tl::unexpected(fail_openssl("signing the certificate").error());
  }
  return HostCertificate{std::move(certificate), std::move(key)};
}

Expected<PeerId> verify_certificate_chain(std::span<X509* const> chain,
                                          const SignedKeyVerifier& verifier) {
  if (chain.empty()) return fail("tls certificate: the peer sent no certificate");
  if (chain.size() != 1) {
    return fail("tls certificate: expected one certificate in the chain, got " +
                std::to_string(chain.size()));
  }
  X509* certificate = chain[0];
  if (auto checked = check_certificate(certificate); !checked) {
    return tl::unexpected(checked.error());
  }
  auto extension = find_signed_key(certificate);
  if (!extension) return tl::unexpected(extension.error());
  auto signed_key = decode_signed_key(*extension);
  if (!signed_key) return tl::unexpected(signed_key.error());
  auto spki = subject_public_key_info(X509_get0_pubkey(certificate));
  if (!spki) return tl::unexpected(spki.error());
  if (!verifier) return fail("tls certificate: no signature verifier");
  auto valid =
      verifier(signed_key->public_key_protobuf, signed_message(*spki), signed_key->signature);
  if (!valid) {
    return fail("tls certificate: the host key's signature of the certificate key is invalid: " +
                valid.error().message);
  }
  auto peer = PeerId::from_encoded_public_key(signed_key->public_key_protobuf);
  if (!peer) return fail("tls certificate: " + peer.error().message);
  return *peer;
}

Expected<PeerId> verify_certificate_chain_der(std::span<const ByteView> chain,
                                              const SignedKeyVerifier& verifier) {
  std::vector<X509Handle> parsed;
  std::vector<X509*> pointers;
  for (ByteView der : chain) {
    const unsigned char* cursor = der.data();
    X509Handle certificate(d2i_X509(nullptr, &cursor, static_cast<long>(der.size())));
    if (!certificate) {
      ERR_clear_error();
      return fail("tls certificate: not a DER X.509 certificate");
    }
    if (cursor != der.data() + der.size()) {
      return fail("tls certificate: trailing bytes after the certificate");
    }
    pointers.push_back(certificate.get());
    parsed.push_back(std::move(certificate));
  }
  return verify_certificate_chain(pointers, verifier);
}

}  // namespace an::p2p::tls
