// The libp2p TLS certificate: what we generate verifies and names our peer; every certificate
// a peer must refuse (wrong signer, expired, not yet valid, no extension, two certificates,
// garbage, unknown critical extension) is refused with a reason.
#include "p2p/tls/certificate.h"

#include <gtest/gtest.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <string>
#include <vector>

#include "p2p/crypto/ed25519.h"
#include "p2p/crypto/keys.h"
#include "p2p/tls/host_key.h"

namespace an::p2p::tls {
namespace {

using namespace std::chrono_literals;

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

class CertificateTest : public ::testing::Test {
 protected:
  PrivateKey generate_key(KeyType type = KeyType::kEd25519) {
    auto generated = PrivateKey::generate(type);
    EXPECT_TRUE(generated);
    return std::move(*generated);
  }

  Bytes der_of(const TlsHostKey& signer, const CertificateOptions& options = {}) {
    auto certificate = generate_certificate(signer, options);
    EXPECT_TRUE(certificate) << certificate.error().message;
    if (!certificate) return {};
    return certificate->der();
  }

  Expected<PeerId> verify(const std::vector<Bytes>& chain) {
    std::vector<ByteView> views(chain.begin(), chain.end());
    return verify_certificate_chain_der(views, verify_signed_key);
  }

  PrivateKey key = generate_key();
  TlsHostKey host_key = libp2p_host_key(key);
};

TEST_F(CertificateTest, GeneratedCertificateVerifiesAndNamesTheHostPeer) {
  auto peer = verify({der_of(host_key)});
  ASSERT_TRUE(peer) << peer.error().message;
  EXPECT_EQ(*peer, key.peer_id());
}

TEST_F(CertificateTest, HostKeysOfEveryTypeSignTheExtension) {
  for (KeyType type : {KeyType::kRsa, KeyType::kSecp256k1, KeyType::kEcdsa}) {
    PrivateKey typed = generate_key(type);
    auto peer = verify({der_of(libp2p_host_key(typed))});
    ASSERT_TRUE(peer) << key_type_name(type) << ": " << peer.error().message;
    EXPECT_EQ(*peer, typed.peer_id()) << key_type_name(type);
  }
}

TEST_F(CertificateTest, GeneratedCertificateHasAFreshP256KeyAndGoLikeValidity) {
  auto first = generate_certificate(host_key);
  auto second = generate_certificate(host_key);
  ASSERT_TRUE(first && second);
  EVP_PKEY* public_key = X509_get0_pubkey(first->certificate.get());
  ASSERT_NE(public_key, nullptr);
  EXPECT_TRUE(EVP_PKEY_is_a(public_key, "EC"));
  char group[64] = {};
  std::size_t group_length = 0;
  ASSERT_EQ(EVP_PKEY_get_utf8_string_param(public_key, "group", group, sizeof group, &group_length),
            1);
  EXPECT_EQ(std::string(group), "prime256v1");
  EXPECT_NE(EVP_PKEY_eq(public_key, X509_get0_pubkey(second->certificate.get())), 1);
  EXPECT_NE(ASN1_INTEGER_cmp(X509_get0_serialNumber(first->certificate.get()),
                             X509_get0_serialNumber(second->certificate.get())),
            0);
  // Valid from about an hour ago for about a century.
  int days = 0;
  int seconds = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(first->certificate.get()),
                           X509_get0_notAfter(first->certificate.get())),
            1);
  EXPECT_GT(days, 365 * 99);
  EXPECT_LT(X509_cmp_current_time(X509_get0_notBefore(first->certificate.get())), 0);
}

// Made by js-libp2p's @libp2p/tls 3.1.10 (generateCertificate) for an Ed25519 key: valid until
// 2126, the libp2p extension marked critical as js does.
constexpr std::string_view kJsCertificateHex =
    "308201773082011da00302010202083722537975219933300a06082a8648ce3d04030230003020170d323631"
    "3132363134343031395a180f32313236313130323135343031395a30003059301306072a8648ce3d02010608"
    "2a8648ce3d03010703420004f484f8127ad434e850b698ae65d73b9086065a417f93aaa51cd503adb1ca7756"
    "ba3f8d8456a7a1327fe418a1194234c1f56bd1a5cb096f5aecc7e29c325735e4a37f307d307b060a2b060104"
    "0183a25a01010101ff046a3068042408011220bd7b8a815a73cb794daabcb087abd183bf2a8cc27f93c1b199"
    "19ba987d2ac84304405887464390f479ce4e208597422269d4e5d89be6c395d9c2035c3e772c73400fdb303c"
    "a72d34f24929f8c9a059ae3ebbd58aadb65e9cb58783dcb4eb07e19b09300a06082a8648ce3d040302034800"
    "3045022100b5d63d796a37504f4a85f62b8cd1b44b328950b1a78cdab64e036d2f527558a402204d26aa9186"
    "520e9b46f65b577236a5fcbdf39c8b7584662d97cb2bb5bd9cc884";
constexpr std::string_view kJsPeer = "12D3KooWNa2V2T2qtLQ9614Kw3S1Pc8natcEsVf5Lemfi7jywD2i";

Bytes from_hex(std::string_view hex) {
  Bytes out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<std::uint8_t>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

TEST_F(CertificateTest, ACertificateMadeByJsLibp2pVerifies) {
  auto peer = verify({from_hex(kJsCertificateHex)});
  ASSERT_TRUE(peer) << peer.error().message;
  EXPECT_EQ(peer->to_string(), kJsPeer);
}

TEST_F(CertificateTest, SignedKeyRoundTripsAndRefusesMalformedEncodings) {
  Bytes public_key = key.public_key().protobuf();
  Bytes signature(64, 0x5a);
  Bytes encoded = encode_signed_key(public_key, signature);
  auto decoded = decode_signed_key(encoded);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_TRUE(std::equal(decoded->public_key_protobuf.begin(), decoded->public_key_protobuf.end(),
                         public_key.begin(), public_key.end()));
  EXPECT_TRUE(std::equal(decoded->signature.begin(), decoded->signature.end(), signature.begin(),
                         signature.end()));
  // A long body takes the multi-byte DER length form.
  Bytes long_signature(300, 0x11);
  auto long_decoded = decode_signed_key(encode_signed_key(public_key, long_signature));
  ASSERT_TRUE(long_decoded) << long_decoded.error().message;
  EXPECT_EQ(long_decoded->signature.size(), 300u);

  Bytes truncated(encoded.begin(), encoded.end() - 1);
  EXPECT_FALSE(decode_signed_key(truncated));
  Bytes trailing = encoded;
  trailing.push_back(0);
  EXPECT_FALSE(decode_signed_key(trailing));
  Bytes wrong_tag = encoded;
  wrong_tag[2] = 0x03;  // BIT STRING instead of OCTET STRING
  EXPECT_FALSE(decode_signed_key(wrong_tag));
  EXPECT_FALSE(decode_signed_key(Bytes{}));
}

TEST_F(CertificateTest, SignedKeySignedByAnotherKeyIsRefused) {
  PrivateKey other = generate_key();
  TlsHostKey forged;
  forged.public_key_protobuf = key.public_key().protobuf();
  forged.sign = libp2p_host_key(other).sign;
  auto peer = verify({der_of(forged)});
  ASSERT_FALSE(peer);
  EXPECT_TRUE(contains(peer.error().message, "signature")) << peer.error().message;
}

TEST_F(CertificateTest, ExpiredCertificateIsRefused) {
  CertificateOptions options;
  options.not_before = std::chrono::system_clock::now() - 48h;
  options.not_after = std::chrono::system_clock::now() - 24h;
  auto peer = verify({der_of(host_key, options)});
  ASSERT_FALSE(peer);
  EXPECT_TRUE(contains(peer.error().message, "expired")) << peer.error().message;
}

TEST_F(CertificateTest, NotYetValidCertificateIsRefused) {
  CertificateOptions options;
  options.not_before = std::chrono::system_clock::now() + 24h;
  options.not_after = std::chrono::system_clock::now() + 48h;
  auto peer = verify({der_of(host_key, options)});
  ASSERT_FALSE(peer);
  EXPECT_TRUE(contains(peer.error().message, "not valid yet")) << peer.error().message;
}

TEST_F(CertificateTest, CertificateWithoutTheExtensionIsRefused) {
  CertificateOptions options;
  options.include_signed_key = false;
  auto peer = verify({der_of(host_key, options)});
  ASSERT_FALSE(peer);
  EXPECT_TRUE(contains(peer.error().message, "extension is missing")) << peer.error().message;
}

TEST_F(CertificateTest, CriticalLibp2pExtensionIsAcceptedAsGoDoes) {
  CertificateOptions options;
  options.critical_extension = true;
  auto peer = verify({der_of(host_key, options)});
  ASSERT_TRUE(peer) << peer.error().message;
  EXPECT_EQ(*peer, PeerId::from_public_key(key.public_key()));
}

TEST_F(CertificateTest, UnknownCriticalExtensionIsRefused) {
  auto certificate = generate_certificate(host_key);
  ASSERT_TRUE(certificate);
  X509* x509 = certificate->certificate.get();
  ASN1_OBJECT* oid = OBJ_txt2obj("1.3.6.1.4.1.99999.1", 1);
  ASN1_OCTET_STRING* value = ASN1_OCTET_STRING_new();
  ASSERT_EQ(ASN1_OCTET_STRING_set(value, reinterpret_cast<const unsigned char*>("\x05\x00"), 2), 1);
  X509_EXTENSION* extension = X509_EXTENSION_create_by_OBJ(nullptr, oid, 1, value);
  ASSERT_NE(extension, nullptr);
  ASSERT_EQ(X509_add_ext(x509, extension, -1), 1);
  X509_EXTENSION_free(extension);
  ASN1_OCTET_STRING_free(value);
  ASN1_OBJECT_free(oid);
  ASSERT_GT(X509_sign(x509, certificate->private_key.get(), EVP_sha256()), 0);
  auto peer = verify({certificate->der()});
  ASSERT_FALSE(peer);
  EXPECT_TRUE(contains(peer.error().message, "critical extension 1.3.6.1.4.1.99999.1"))
      << peer.error().message;
}

TEST_F(CertificateTest, TamperedCertificateFailsItsSelfSignature) {
  auto certificate = generate_certificate(host_key);
  ASSERT_TRUE(certificate);
  // Re-sign with an unrelated key: the certificate no longer verifies under its own key.
  openssl::Key stranger(EVP_EC_gen("P-256"));
  ASSERT_TRUE(stranger);
  ASSERT_GT(X509_sign(certificate->certificate.get(), stranger.get(), EVP_sha256()), 0);
  auto peer = verify({certificate->der()});
  ASSERT_FALSE(peer);
  EXPECT_TRUE(contains(peer.error().message, "self-signature")) << peer.error().message;
}

TEST_F(CertificateTest, TwoCertificatesAreRefused) {
  Bytes der = der_of(host_key);
  auto peer = verify({der, der});
  ASSERT_FALSE(peer);
  EXPECT_TRUE(contains(peer.error().message, "one certificate")) << peer.error().message;
  auto none = verify({});
  ASSERT_FALSE(none);
  EXPECT_TRUE(contains(none.error().message, "no certificate")) << none.error().message;
}

TEST_F(CertificateTest, GarbageDerIsRefused) {
  Bytes garbage(300);
  for (std::size_t i = 0; i < garbage.size(); ++i)
    garbage[i] = static_cast<std::uint8_t>(i * 37 + 11);
  auto peer = verify({garbage});
  ASSERT_FALSE(peer);
  EXPECT_TRUE(contains(peer.error().message, "not a DER X.509 certificate"))
      << peer.error().message;

  Bytes der = der_of(host_key);
  Bytes truncated(der.begin(), der.begin() + static_cast<long>(der.size() / 2));
  EXPECT_FALSE(verify({truncated}));
  Bytes trailing = der;
  trailing.push_back(0);
  auto with_trailing = verify({trailing});
  ASSERT_FALSE(with_trailing);
  EXPECT_TRUE(contains(with_trailing.error().message, "trailing")) << with_trailing.error().message;
}

TEST_F(CertificateTest, SecpKeyThatIsNoCurvePointIsRefused) {
  TlsHostKey secp;
  // A PublicKey protobuf of type Secp256k1 (2) with 33 bytes that are no compressed point.
  secp.public_key_protobuf = {0x08, 0x02, 0x12, 0x21, 0x02};
  secp.public_key_protobuf.resize(secp.public_key_protobuf.size() + 32, 0x42);
  secp.sign = [](ByteView) -> Expected<Bytes> { return Bytes(64, 1); };
  auto peer = verify({der_of(secp)});
  ASSERT_FALSE(peer);
  EXPECT_TRUE(contains(peer.error().message, "Secp256k1")) << peer.error().message;
}

}  // namespace
}  // namespace an::p2p::tls
