// PublicKey / PrivateKey of every key type: the libp2p/specs peer-ids test vectors, generated
// keys, signatures, and the weak or malformed keys that must be refused.
#include "p2p/crypto/key.h"

#include <gtest/gtest.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/x509.h>

#include "support/hex.h"
#include "unit/p2p/crypto/spec_key_vectors.h"

#include <string>
#include <utility>

namespace an::p2p {
namespace {

using test::from_hex;
using namespace spec_vectors;

constexpr KeyType kAllTypes[] = {KeyType::kEd25519, KeyType::kRsa, KeyType::kSecp256k1,
                                 KeyType::kEcdsa};

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

Bytes text_bytes(std::string_view text) {
  return Bytes(text.begin(), text.end());
}

struct SpecVector {
  KeyType type;
  std::string_view private_hex;
  std::string_view public_hex;
  std::string_view peer_id;
};

constexpr SpecVector kSpecVectors[] = {
    {KeyType::kEd25519, kEd25519Private, kEd25519Public, kEd25519PeerId},
    {KeyType::kRsa, kRsaPrivate, kRsaPublic, kRsaPeerId},
    {KeyType::kSecp256k1, kSecp256k1Private, kSecp256k1Public, kSecp256k1PeerId},
    {KeyType::kEcdsa, kEcdsaPrivate, kEcdsaPublic, kEcdsaPeerId},
};

// OpenSSL-made keys the library must refuse, encoded as the peer would send them.
struct OpensslKey {
  EVP_PKEY* key = nullptr;
  explicit OpensslKey(EVP_PKEY* made) : key(made) {}
  ~OpensslKey() { EVP_PKEY_free(key); }
  OpensslKey(const OpensslKey&) = delete;
  OpensslKey& operator=(const OpensslKey&) = delete;

  Bytes public_der() const {
    unsigned char* der = nullptr;
    const int size = i2d_PUBKEY(key, &der);
    EXPECT_GT(size, 0);
    Bytes out(der, der + size);
    OPENSSL_free(der);
    return out;
  }
  Bytes private_der() const {
    unsigned char* der = nullptr;
    const int size = i2d_PrivateKey(key, &der);
    EXPECT_GT(size, 0);
    Bytes out(der, der + size);
    OPENSSL_free(der);
    return out;
  }
};

Bytes with_trailing_byte(Bytes bytes) {
  bytes.push_back(0);
  return bytes;
}

TEST(Key, SpecVectorsOfEveryType) {
  for (const auto& vector : kSpecVectors) {
    SCOPED_TRACE(std::string(key_type_name(vector.type)));
    auto key = PrivateKey::from_protobuf(from_hex(vector.private_hex));
    ASSERT_TRUE(key) << key.error().message;
    EXPECT_EQ(key->type(), vector.type);
    EXPECT_EQ(key->public_key().type(), vector.type);
    EXPECT_EQ(key->public_key().protobuf(), from_hex(vector.public_hex));
    EXPECT_EQ(key->peer_id().to_base58(), vector.peer_id);
    EXPECT_EQ(PeerId::from_public_key(key->public_key()).to_base58(), vector.peer_id);
    // Written back byte for byte as go-libp2p wrote it.
    auto written = key->to_protobuf();
    ASSERT_TRUE(written) << written.error().message;
    EXPECT_EQ(*written, from_hex(vector.private_hex));

    auto public_key = PublicKey::from_protobuf(from_hex(vector.public_hex));
    ASSERT_TRUE(public_key) << public_key.error().message;
    EXPECT_EQ(public_key->type(), vector.type);
    EXPECT_EQ(*public_key, key->public_key());
    EXPECT_EQ(public_key->peer_id().to_base58(), vector.peer_id);

    const Bytes message = text_bytes("libp2p key test vector");
    auto signature = key->sign(message);
    ASSERT_TRUE(signature) << signature.error().message;
    EXPECT_TRUE(public_key->verify(message, *signature));
    EXPECT_FALSE(public_key->verify(text_bytes("libp2p key test vectoR"), *signature));
  }
}

TEST(Key, GeneratedKeysOfEveryTypeSignAndVerify) {
  for (const KeyType type : kAllTypes) {
    SCOPED_TRACE(std::string(key_type_name(type)));
    auto key = PrivateKey::generate(type);
    ASSERT_TRUE(key) << key.error().message;
    auto other = PrivateKey::generate(type);
    ASSERT_TRUE(other) << other.error().message;
    EXPECT_EQ(key->type(), type);
    EXPECT_NE(key->peer_id(), other->peer_id());

    const Bytes message = text_bytes("a message to sign");
    auto signature = key->sign(message);
    ASSERT_TRUE(signature) << signature.error().message;
    EXPECT_TRUE(key->public_key().verify(message, *signature));

    Bytes tampered_message = message;
    tampered_message[0] ^= 1;
    EXPECT_FALSE(key->public_key().verify(tampered_message, *signature));
    Bytes tampered_signature = *signature;
    tampered_signature[tampered_signature.size() / 2] ^= 0x10;
    EXPECT_FALSE(key->public_key().verify(message, tampered_signature));
    EXPECT_FALSE(key->public_key().verify(message, {}));
    EXPECT_FALSE(other->public_key().verify(message, *signature));

    // Through the protobufs, as a key file and as the wire carry them.
    auto stored = key->to_protobuf();
    ASSERT_TRUE(stored) << stored.error().message;
    auto loaded = PrivateKey::from_protobuf(*stored);
    secure_wipe(*stored);
    ASSERT_TRUE(loaded) << loaded.error().message;
    EXPECT_EQ(loaded->public_key(), key->public_key());
    auto received = PublicKey::from_protobuf(key->public_key().protobuf());
    ASSERT_TRUE(received) << received.error().message;
    EXPECT_EQ(received->peer_id(), key->peer_id());
    auto second = loaded->sign(message);
    ASSERT_TRUE(second);
    EXPECT_TRUE(received->verify(message, *second));

    // Copies share the key and work from it alone.
    const PrivateKey copy = *key;
    auto from_copy = copy.sign(message);
    ASSERT_TRUE(from_copy);
    EXPECT_TRUE(key->public_key().verify(message, *from_copy));
  }
}

TEST(Key, PeerIdForms) {
  auto rsa = PrivateKey::generate(KeyType::kRsa);
  ASSERT_TRUE(rsa);
  EXPECT_TRUE(rsa->peer_id().to_base58().starts_with("Qm"));
  EXPECT_FALSE(rsa->peer_id().has_inline_public_key());
  auto secp256k1 = PrivateKey::generate(KeyType::kSecp256k1);
  ASSERT_TRUE(secp256k1);
  EXPECT_TRUE(secp256k1->peer_id().to_base58().starts_with("16Uiu2"));
  auto ed25519 = PrivateKey::generate(KeyType::kEd25519);
  ASSERT_TRUE(ed25519);
  EXPECT_TRUE(ed25519->peer_id().to_base58().starts_with("12D3KooW"));
  ASSERT_TRUE(ed25519->public_key().ed25519());
  EXPECT_EQ(PeerId::from_public_key(*ed25519->public_key().ed25519()), ed25519->peer_id());
}

TEST(Key, Secp256k1SignaturesHaveLowS) {
  auto key = PrivateKey::from_protobuf(from_hex(kSecp256k1Private));
  ASSERT_TRUE(key);
  EC_GROUP* group = EC_GROUP_new_by_curve_name(NID_secp256k1);
  ASSERT_NE(group, nullptr);
  BIGNUM* half = BN_dup(EC_GROUP_get0_order(group));
  ASSERT_EQ(BN_rshift1(half, half), 1);
  for (int i = 0; i < 40; ++i) {
    auto signature = key->sign(text_bytes("message " + std::to_string(i)));
    ASSERT_TRUE(signature);
    const unsigned char* cursor = signature->data();
    ECDSA_SIG* parsed = d2i_ECDSA_SIG(nullptr, &cursor, static_cast<long>(signature->size()));
    ASSERT_NE(parsed, nullptr);
    EXPECT_LE(BN_cmp(ECDSA_SIG_get0_s(parsed), half), 0) << i;
    ECDSA_SIG_free(parsed);
    EXPECT_TRUE(key->public_key().verify(text_bytes("message " + std::to_string(i)), *signature));
  }
  BN_free(half);
  EC_GROUP_free(group);
}

TEST(Key, Secp256k1AcceptsUncompressedKeysAndWritesThemCompressed) {
  const Bytes compressed = from_hex(kSecp256k1Public);
  EC_GROUP* group = EC_GROUP_new_by_curve_name(NID_secp256k1);
  EC_POINT* point = EC_POINT_new(group);
  ASSERT_EQ(EC_POINT_oct2point(group, point, compressed.data() + 4, 33, nullptr), 1);
  Bytes uncompressed(65);
  ASSERT_EQ(EC_POINT_point2oct(group, point, POINT_CONVERSION_UNCOMPRESSED, uncompressed.data(),
                               uncompressed.size(), nullptr),
            65u);
  EC_POINT_free(point);
  EC_GROUP_free(group);

  auto key = PublicKey::from_protobuf(encode_key_message(KeyType::kSecp256k1, uncompressed));
  ASSERT_TRUE(key) << key.error().message;
  EXPECT_EQ(key->protobuf(), compressed);
  EXPECT_EQ(key->peer_id().to_base58(), kSecp256k1PeerId);

  // Not on the curve: a changed y, and an x for which no y exists (x = 0 on secp256k1).
  Bytes off_curve = uncompressed;
  off_curve.back() ^= 1;
  auto refused = PublicKey::from_protobuf(encode_key_message(KeyType::kSecp256k1, off_curve));
  ASSERT_FALSE(refused);
  EXPECT_TRUE(contains(refused.error().message, "invalid Secp256k1 public key"))
      << refused.error().message;
  Bytes no_point(33, 0);
  no_point[0] = 0x02;
  EXPECT_FALSE(PublicKey::from_protobuf(encode_key_message(KeyType::kSecp256k1, no_point)));
  // Wrong sizes and prefixes.
  Bytes hybrid = uncompressed;
  hybrid[0] = 0x06;
  EXPECT_FALSE(PublicKey::from_protobuf(encode_key_message(KeyType::kSecp256k1, hybrid)));
  EXPECT_FALSE(PublicKey::from_protobuf(
      encode_key_message(KeyType::kSecp256k1, ByteView(compressed).subspan(4, 32))));
  EXPECT_FALSE(PublicKey::from_protobuf(encode_key_message(
      KeyType::kSecp256k1, with_trailing_byte(Bytes(compressed.begin() + 4, compressed.end())))));
}

TEST(Key, Secp256k1PrivateKeysOutsideTheGroupAreRefused) {
  const Bytes zero(32, 0);
  auto refused = PrivateKey::from_protobuf(encode_key_message(KeyType::kSecp256k1, zero));
  ASSERT_FALSE(refused);
  EXPECT_TRUE(contains(refused.error().message, "zero or not below the group order"))
      << refused.error().message;
  const Bytes order = from_hex("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141");
  EXPECT_FALSE(PrivateKey::from_protobuf(encode_key_message(KeyType::kSecp256k1, order)));
  const Bytes below_order =
      from_hex("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140");
  EXPECT_TRUE(PrivateKey::from_protobuf(encode_key_message(KeyType::kSecp256k1, below_order)));
  auto wrong_size =
      PrivateKey::from_protobuf(encode_key_message(KeyType::kSecp256k1, Bytes(33, 1)));
  ASSERT_FALSE(wrong_size);
  EXPECT_TRUE(contains(wrong_size.error().message, "32 bytes, not 33"));
}

TEST(Key, RsaKeySizesOutsideTheLimitsAreRefused) {
  OpensslKey weak(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{1024}));
  ASSERT_NE(weak.key, nullptr);
  auto public_key = PublicKey::from_protobuf(encode_key_message(KeyType::kRsa, weak.public_der()));
  ASSERT_FALSE(public_key);
  EXPECT_EQ(public_key.error().message, "invalid RSA public key: 1024 bits, outside 2048 to 8192");
  auto private_key =
      PrivateKey::from_protobuf(encode_key_message(KeyType::kRsa, weak.private_der()));
  ASSERT_FALSE(private_key);
  EXPECT_EQ(private_key.error().message,
            "invalid RSA private key: 1024 bits, outside 2048 to 8192");

  auto too_small = PrivateKey::generate(KeyType::kRsa, 1024);
  ASSERT_FALSE(too_small);
  EXPECT_EQ(too_small.error().message, "RSA keys are 2048 to 8192 bits, not 1024");
  EXPECT_FALSE(PrivateKey::generate(KeyType::kRsa, 8193));
  auto larger = PrivateKey::generate(KeyType::kRsa, 3072);
  ASSERT_TRUE(larger) << larger.error().message;
  auto signature = larger->sign(text_bytes("x"));
  ASSERT_TRUE(signature);
  EXPECT_EQ(signature->size(), 384u);
}

TEST(Key, EcdsaIsP256Only) {
  OpensslKey p384(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "secp384r1"));
  ASSERT_NE(p384.key, nullptr);
  auto public_key =
      PublicKey::from_protobuf(encode_key_message(KeyType::kEcdsa, p384.public_der()));
  ASSERT_FALSE(public_key);
  EXPECT_EQ(public_key.error().message,
            "invalid ECDSA public key: the key is on secp384r1, not prime256v1");
  auto private_key =
      PrivateKey::from_protobuf(encode_key_message(KeyType::kEcdsa, p384.private_der()));
  ASSERT_FALSE(private_key);
  EXPECT_EQ(private_key.error().message,
            "invalid ECDSA private key: the key is on secp384r1, not prime256v1");

  // A secp256k1 key in DER form is not an ECDSA key either; neither is an RSA key.
  OpensslKey k1(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "secp256k1"));
  ASSERT_NE(k1.key, nullptr);
  EXPECT_FALSE(PublicKey::from_protobuf(encode_key_message(KeyType::kEcdsa, k1.public_der())));
  auto rsa = PublicKey::from_protobuf(from_hex(kRsaPublic));
  ASSERT_TRUE(rsa);
  const Bytes rsa_der(rsa->protobuf().begin() + 5, rsa->protobuf().end());
  auto mislabelled = PublicKey::from_protobuf(encode_key_message(KeyType::kEcdsa, rsa_der));
  ASSERT_FALSE(mislabelled);
  EXPECT_TRUE(contains(mislabelled.error().message, "another algorithm"))
      << mislabelled.error().message;
  // And an ECDSA key labelled RSA.
  auto ecdsa = PublicKey::from_protobuf(from_hex(kEcdsaPublic));
  ASSERT_TRUE(ecdsa);
  const Bytes ecdsa_der(ecdsa->protobuf().begin() + 4, ecdsa->protobuf().end());
  EXPECT_FALSE(PublicKey::from_protobuf(encode_key_message(KeyType::kRsa, ecdsa_der)));
}

TEST(Key, GarbageAndTrailingBytesAreRefused) {
  for (const KeyType type : {KeyType::kRsa, KeyType::kEcdsa}) {
    SCOPED_TRACE(std::string(key_type_name(type)));
    auto garbage = PublicKey::from_protobuf(encode_key_message(type, text_bytes("garbage")));
    ASSERT_FALSE(garbage);
    EXPECT_TRUE(contains(garbage.error().message,
                         "invalid " + std::string(key_type_name(type)) + " public key"))
        << garbage.error().message;
    EXPECT_FALSE(PrivateKey::from_protobuf(encode_key_message(type, text_bytes("garbage"))));
    EXPECT_FALSE(PublicKey::from_protobuf(encode_key_message(type, {})));
    EXPECT_FALSE(PrivateKey::from_protobuf(encode_key_message(type, {})));
  }
  const Bytes rsa_public = from_hex(kRsaPublic);
  auto rsa_trailing = PublicKey::from_protobuf(encode_key_message(
      KeyType::kRsa, with_trailing_byte(Bytes(rsa_public.begin() + 5, rsa_public.end()))));
  ASSERT_FALSE(rsa_trailing);
  EXPECT_TRUE(contains(rsa_trailing.error().message, "bytes after the DER"))
      << rsa_trailing.error().message;
  const Bytes rsa_private = from_hex(kRsaPrivate);
  auto rsa_private_trailing = PrivateKey::from_protobuf(encode_key_message(
      KeyType::kRsa, with_trailing_byte(Bytes(rsa_private.begin() + 5, rsa_private.end()))));
  ASSERT_FALSE(rsa_private_trailing);
  EXPECT_TRUE(contains(rsa_private_trailing.error().message, "1 bytes after the DER"))
      << rsa_private_trailing.error().message;
  const Bytes ecdsa_private = from_hex(kEcdsaPrivate);
  EXPECT_FALSE(PrivateKey::from_protobuf(encode_key_message(
      KeyType::kEcdsa, with_trailing_byte(Bytes(ecdsa_private.begin() + 4, ecdsa_private.end())))));
  // Every truncation of the spec's DER keys fails cleanly.
  for (std::size_t size = 0; size + 4 < ecdsa_private.size(); ++size) {
    EXPECT_FALSE(PrivateKey::from_protobuf(
        encode_key_message(KeyType::kEcdsa, ByteView(ecdsa_private).subspan(4, size))))
        << size;
  }
}

TEST(Key, APrivateKeyWhosePublicPartIsAnotherKeysIsRefused) {
  // The SEC1 DER of the spec's ECDSA key ends with its public point: put another key's there.
  Bytes sec1 = from_hex(kEcdsaPrivate);
  sec1.erase(sec1.begin(), sec1.begin() + 4);
  auto other = PrivateKey::generate(KeyType::kEcdsa);
  ASSERT_TRUE(other);
  const Bytes& other_public = other->public_key().protobuf();
  std::copy(other_public.end() - 65, other_public.end(), sec1.end() - 65);
  auto mismatched = PrivateKey::from_protobuf(encode_key_message(KeyType::kEcdsa, sec1));
  ASSERT_FALSE(mismatched);
  EXPECT_TRUE(contains(mismatched.error().message, "invalid ECDSA private key"))
      << mismatched.error().message;

  // An RSA key with a changed private exponent.
  Bytes pkcs1 = from_hex(kRsaPrivate);
  pkcs1[pkcs1.size() / 2] ^= 0x01;
  EXPECT_FALSE(PrivateKey::from_protobuf(pkcs1));
}

TEST(Key, ParseKeyType) {
  EXPECT_EQ(parse_key_type("ed25519"), KeyType::kEd25519);
  EXPECT_EQ(parse_key_type("RSA"), KeyType::kRsa);
  EXPECT_EQ(parse_key_type("secp256k1"), KeyType::kSecp256k1);
  EXPECT_EQ(parse_key_type("ecdsa"), KeyType::kEcdsa);
  auto unknown = parse_key_type("dsa");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().message,
            "unknown key type \"dsa\" (expected ed25519, rsa, secp256k1 or ecdsa)");
}

}  // namespace
}  // namespace an::p2p
