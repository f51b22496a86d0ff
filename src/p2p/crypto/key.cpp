#include "p2p/crypto/key.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

#include "p2p/crypto/openssl.h"

namespace an::p2p {
namespace {

using SharedKey = std::shared_ptr<EVP_PKEY>;

constexpr std::size_t kSecp256k1ScalarSize = 32;
constexpr std::size_t kCompressedPointSize = 33;
constexpr std::size_t kUncompressedPointSize = 65;
constexpr std::uint8_t kUncompressedPointPrefix = 0x04;
constexpr const char* kSecp256k1Group = "secp256k1";
constexpr const char* kP256Group = "prime256v1";

struct BignumDeleter {
  void operator()(BIGNUM* number) const { BN_clear_free(number); }
};
using Bignum = std::unique_ptr<BIGNUM, BignumDeleter>;

struct GroupDeleter {
  void operator()(EC_GROUP* group) const { EC_GROUP_free(group); }
};
using Group = std::unique_ptr<EC_GROUP, GroupDeleter>;

struct PointDeleter {
  void operator()(EC_POINT* point) const { EC_POINT_free(point); }
};
using Point = std::unique_ptr<EC_POINT, PointDeleter>;

struct SignatureDeleter {
  void operator()(ECDSA_SIG* signature) const { ECDSA_SIG_free(signature); }
};
using EcdsaSignature = std::unique_ptr<ECDSA_SIG, SignatureDeleter>;

struct ParamBuilderDeleter {
  void operator()(OSSL_PARAM_BLD* builder) const { OSSL_PARAM_BLD_free(builder); }
};
struct ParamsDeleter {
  void operator()(OSSL_PARAM* params) const { OSSL_PARAM_free(params); }
};

SharedKey share(EVP_PKEY* key) {
  return SharedKey(key, EVP_PKEY_free);
}

std::string type_label(KeyType type) {
  return std::string(key_type_name(type));
}

tl::unexpected<Error> invalid_public(KeyType type, const std::string& why) {
  return fail("invalid " + type_label(type) + " public key: " + why);
}

tl::unexpected<Error> invalid_private(KeyType type, const std::string& why) {
  return fail("invalid " + type_label(type) + " private key: " + why);
}

// DER bytes of an OpenSSL i2d_* call.
template <class Encode>
Expected<Bytes> to_der(Encode encode, const std::string& what) {
  unsigned char* der = nullptr;
  const int size = encode(&der);
  if (size <= 0 || der == nullptr) return fail(openssl::failure(what));
  Bytes out(der, der + size);
  OPENSSL_clear_free(der, static_cast<std::size_t>(size));
  return out;
}

std::string group_name(EVP_PKEY* key) {
  std::array<char, 64> name{};
  std::size_t size = 0;
  if (EVP_PKEY_get_group_name(key, name.data(), name.size(), &size) != 1) {
    ERR_clear_error();
    return "an unnamed curve";
  }
  return std::string(name.data(), size);
}

Expected<void> check_rsa_size(KeyType type, EVP_PKEY* key, bool is_private) {
  const int bits = EVP_PKEY_get_bits(key);
  if (bits < static_cast<int>(kMinRsaBits) || bits > static_cast<int>(kMaxRsaBits)) {
    const std::string why = std::to_string(bits) + " bits, outside " + std::to_string(kMinRsaBits) +
                            " to " + std::to_string(kMaxRsaBits);
    return is_private ? invalid_private(type, why) : invalid_public(type, why);
  }
  return {};
}

// Ed25519 aside, a public key's kind and curve are checked here. Secp256k1 keys are not DER.
Expected<void> check_algorithm(KeyType type, EVP_PKEY* key, bool is_private) {
  const auto wrong = [&](const std::string& why) {
    return is_private ? invalid_private(type, why) : invalid_public(type, why);
  };
  if (type == KeyType::kRsa) {
    if (!EVP_PKEY_is_a(key, "RSA")) return wrong("the DER holds a key of another algorithm");
    return check_rsa_size(type, key, is_private);
  }
  if (!EVP_PKEY_is_a(key, "EC")) return wrong("the DER holds a key of another algorithm");
  const std::string curve = group_name(key);
  const char* expected = type == KeyType::kEcdsa ? kP256Group : kSecp256k1Group;
  if (curve != expected) {
    return wrong("the key is on " + curve + ", not " + expected);
  }
  return {};
}

// SEC1 encodings of a point: both are accepted, the compressed form is canonical.
Expected<Bytes> compress_point(ByteView point) {
  if (point.size() == kCompressedPointSize && (point[0] == 0x02 || point[0] == 0x03)) {
    return Bytes(point.begin(), point.end());
  }
  if (point.size() == kUncompressedPointSize && point[0] == kUncompressedPointPrefix) {
    Bytes compressed(point.begin(), point.begin() + kCompressedPointSize);
    compressed[0] = static_cast<std::uint8_t>(0x02 | (point.back() & 1));
    return compressed;
  }
  return fail("a point is 33 bytes starting with 02 or 03, or 65 bytes starting with 04; got " +
              std::to_string(point.size()) + " bytes" +
              (point.empty() ? std::string() : " starting with " + std::to_string(point[0])));
}

Expected<Bytes> uncompressed_public_point(EVP_PKEY* key) {
  std::array<std::uint8_t, kUncompressedPointSize> point{};
  std::size_t size = 0;
  if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size(),
                                      &size) != 1) {
    return fail(openssl::failure("reading the public point"));
  }
  return Bytes(point.begin(), point.begin() + static_cast<std::ptrdiff_t>(size));
}

// Go writes EC public keys uncompressed; OpenSSL keeps the form a key was read in.
Expected<void> use_uncompressed_points(EVP_PKEY* key) {
  if (EVP_PKEY_set_utf8_string_param(key, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                     "uncompressed") != 1) {
    return fail(openssl::failure("setting the point format"));
  }
  return {};
}

Expected<SharedKey> secp256k1_from_params(ByteView public_point, const BIGNUM* secret) {
  std::unique_ptr<OSSL_PARAM_BLD, ParamBuilderDeleter> builder(OSSL_PARAM_BLD_new());
  if (!builder ||
      OSSL_PARAM_BLD_push_utf8_string(builder.get(), OSSL_PKEY_PARAM_GROUP_NAME, kSecp256k1Group,
                                      0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(builder.get(), OSSL_PKEY_PARAM_PUB_KEY, public_point.data(),
                                       public_point.size()) != 1 ||
      (secret && OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_PRIV_KEY, secret) != 1)) {
    return fail(openssl::failure("building Secp256k1 key parameters"));
  }
  std::unique_ptr<OSSL_PARAM, ParamsDeleter> params(OSSL_PARAM_BLD_to_param(builder.get()));
  openssl::KeyContext context(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  const int selection = secret ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY;
  if (!params || !context || EVP_PKEY_fromdata_init(context.get()) != 1 ||
      EVP_PKEY_fromdata(context.get(), &raw, selection, params.get()) != 1) {
    return fail(openssl::failure("loading the point"));
  }
  SharedKey key = share(raw);
  openssl::KeyContext check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    return fail(openssl::failure("checking the point"));
  }
  return key;
}

Expected<SharedKey> parse_subject_public_key_info(KeyType type, ByteView der) {
  const unsigned char* cursor = der.data();
  EVP_PKEY* raw = d2i_PUBKEY(nullptr, &cursor, static_cast<long>(der.size()));
  if (!raw) return invalid_public(type, openssl::failure("decoding the DER SubjectPublicKeyInfo"));
  SharedKey key = share(raw);
  if (auto checked = check_algorithm(type, key.get(), false); !checked) {
    return tl::unexpected(checked.error());
  }
  // The peer ID hashes the bytes: only the one DER encoding of a key is accepted (this also
  // refuses anything after the DER, and compressed ECDSA points, which Go does not read).
  auto canonical = to_der([&](unsigned char** out) { return i2d_PUBKEY(key.get(), out); },
                          "encoding the public key");
  if (!canonical) return tl::unexpected(canonical.error());
  if (!std::ranges::equal(*canonical, der)) {
    return invalid_public(type, cursor != der.data() + der.size()
                                    ? "bytes after the DER SubjectPublicKeyInfo"
                                    : "not the canonical DER encoding");
  }
  return key;
}

Expected<Bytes> private_der(EVP_PKEY* key) {
  return to_der([&](unsigned char** out) { return i2d_PrivateKey(key, out); },
                "encoding the private key");
}

Expected<Bignum> secp256k1_order() {
  Group group(EC_GROUP_new_by_curve_name(NID_secp256k1));
  if (!group) return fail(openssl::failure("loading the Secp256k1 curve"));
  Bignum order(BN_dup(EC_GROUP_get0_order(group.get())));
  if (!order) return fail(openssl::failure("reading the Secp256k1 order"));
  return order;
}

// Bitcoin's rules (BIP 62) want s in the lower half of the group order.
Expected<Bytes> to_low_s(ByteView der) {
  const unsigned char* cursor = der.data();
  EcdsaSignature signature(d2i_ECDSA_SIG(nullptr, &cursor, static_cast<long>(der.size())));
  if (!signature) return fail(openssl::failure("decoding our own signature"));
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(signature.get(), &r, &s);
  auto order = secp256k1_order();
  if (!order) return tl::unexpected(order.error());
  Bignum half(BN_dup(order->get()));
  if (!half || BN_rshift1(half.get(), half.get()) != 1) return fail(openssl::failure("halving"));
  if (BN_cmp(s, half.get()) <= 0) return Bytes(der.begin(), der.end());
  Bignum low_s(BN_new());
  Bignum r_copy(BN_dup(r));
  if (!low_s || !r_copy || BN_sub(low_s.get(), order->get(), s) != 1 ||
      ECDSA_SIG_set0(signature.get(), r_copy.get(), low_s.get()) != 1) {
    return fail(openssl::failure("normalizing the signature"));
  }
  r_copy.release();  // owned by the signature now
  low_s.release();
  return to_der([&](unsigned char** out) { return i2d_ECDSA_SIG(signature.get(), out); },
                "encoding the signature");
}

}  // namespace

// Builds keys from OpenSSL handles; a friend of both classes.
struct KeyBuilder {
  static Expected<PublicKey> public_key(KeyType type, Bytes data, SharedKey key) {
    Bytes protobuf = encode_key_message(type, data);
    auto peer_id = PeerId::from_encoded_public_key(protobuf);
    if (!peer_id) return tl::unexpected(peer_id.error());
    PublicKey result(type, std::move(protobuf), std::move(*peer_id));
    result.key_ = std::move(key);
    return result;
  }

  // The public half of a private key of a type other than Ed25519.
  static Expected<PublicKey> public_half(KeyType type, const SharedKey& key) {
    if (type == KeyType::kSecp256k1) {
      auto point = uncompressed_public_point(key.get());
      if (!point) return tl::unexpected(point.error());
      auto compressed = compress_point(*point);
      if (!compressed) return tl::unexpected(compressed.error());
      return public_key(type, std::move(*compressed), key);
    }
    auto der = to_der([&](unsigned char** out) { return i2d_PUBKEY(key.get(), out); },
                      "encoding the public key");
    if (!der) return tl::unexpected(der.error());
    return public_key(type, std::move(*der), key);
  }

  static Expected<PrivateKey> private_key(KeyType type, SharedKey key) {
    auto public_part = public_half(type, key);
    if (!public_part) return tl::unexpected(public_part.error());
    PrivateKey result(std::move(*public_part));
    result.key_ = std::move(key);
    return result;
  }

  static Expected<PrivateKey> secp256k1_private(ByteView scalar) {
    constexpr KeyType type = KeyType::kSecp256k1;
    if (scalar.size() != kSecp256k1ScalarSize) {
      return invalid_private(type, "the key is 32 bytes, not " + std::to_string(scalar.size()));
    }
    Bignum secret(BN_secure_new());
    if (!secret || !BN_bin2bn(scalar.data(), static_cast<int>(scalar.size()), secret.get())) {
      return fail(openssl::failure("loading the Secp256k1 scalar"));
    }
    Group group(EC_GROUP_new_by_curve_name(NID_secp256k1));
    if (!group) return fail(openssl::failure("loading the Secp256k1 curve"));
    if (BN_is_zero(secret.get()) || BN_cmp(secret.get(), EC_GROUP_get0_order(group.get())) >= 0) {
      return invalid_private(type, "the scalar is zero or not below the group order");
    }
    Point point(EC_POINT_new(group.get()));
    std::array<std::uint8_t, kUncompressedPointSize> encoded{};
    if (!point ||
        EC_POINT_mul(group.get(), point.get(), secret.get(), nullptr, nullptr, nullptr) != 1 ||
        EC_POINT_point2oct(group.get(), point.get(), POINT_CONVERSION_UNCOMPRESSED, encoded.data(),
                           encoded.size(), nullptr) != encoded.size()) {
      return fail(openssl::failure("deriving the Secp256k1 public key"));
    }
    auto key = secp256k1_from_params(encoded, secret.get());
    if (!key) return invalid_private(type, key.error().message);
    return private_key(type, std::move(*key));
  }

  static Expected<PrivateKey> der_private(KeyType type, ByteView der) {
    const unsigned char* cursor = der.data();
    const int openssl_type = type == KeyType::kRsa ? EVP_PKEY_RSA : EVP_PKEY_EC;
    EVP_PKEY* raw = d2i_PrivateKey(openssl_type, nullptr, &cursor, static_cast<long>(der.size()));
    if (!raw) {
      return invalid_private(type,
                             openssl::failure(type == KeyType::kRsa ? "decoding the PKCS#1 DER"
                                                                    : "decoding the SEC1 DER"));
    }
    SharedKey key = share(raw);
    if (cursor != der.data() + der.size()) {
      return invalid_private(
          type, std::to_string(der.data() + der.size() - cursor) + " bytes after the DER");
    }
    if (auto checked = check_algorithm(type, key.get(), true); !checked) {
      return tl::unexpected(checked.error());
    }
    openssl::KeyContext check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
    if (!check || EVP_PKEY_check(check.get()) != 1) {
      return invalid_private(
          type, "its parts do not match (" + openssl::failure("checking the key pair") + ")");
    }
    if (type == KeyType::kEcdsa) {
      if (auto set = use_uncompressed_points(key.get()); !set) return tl::unexpected(set.error());
    }
    return private_key(type, std::move(key));
  }
};

Expected<KeyType> parse_key_type(std::string_view text) {
  std::string lower(text);
  std::ranges::transform(lower, lower.begin(),
                         [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "ed25519") return KeyType::kEd25519;
  if (lower == "rsa") return KeyType::kRsa;
  if (lower == "secp256k1") return KeyType::kSecp256k1;
  if (lower == "ecdsa") return KeyType::kEcdsa;
  return fail("unknown key type \"" + std::string(text.substr(0, 40)) +
              "\" (expected ed25519, rsa, secp256k1 or ecdsa)");
}

// ---- PublicKey ---------------------------------------------------------------------------------

Expected<PublicKey> PublicKey::from_protobuf(ByteView message) {
  auto parsed = parse_public_key_message(message);
  if (!parsed) return tl::unexpected(parsed.error());
  switch (parsed->type) {
    case KeyType::kEd25519: {
      auto key = decode_public_key(message);
      if (!key) return tl::unexpected(key.error());
      return from_ed25519(*key);
    }
    case KeyType::kSecp256k1: {
      auto compressed = compress_point(parsed->data);
      if (!compressed) return invalid_public(parsed->type, compressed.error().message);
      auto key = secp256k1_from_params(parsed->data, nullptr);
      if (!key) return invalid_public(parsed->type, key.error().message);
      return KeyBuilder::public_key(parsed->type, std::move(*compressed), std::move(*key));
    }
    case KeyType::kRsa:
    case KeyType::kEcdsa: {
      auto key = parse_subject_public_key_info(parsed->type, parsed->data);
      if (!key) return tl::unexpected(key.error());
      return KeyBuilder::public_key(parsed->type, Bytes(parsed->data.begin(), parsed->data.end()),
                                    std::move(*key));
    }
  }
  return fail("not a libp2p public key: unknown key type");
}

PublicKey PublicKey::from_ed25519(const Ed25519PublicKey& key) {
  PublicKey result(KeyType::kEd25519, encode_public_key(key), PeerId::from_public_key(key));
  result.ed25519_ = key;
  return result;
}

bool PublicKey::verify(ByteView message, ByteView signature) const {
  if (ed25519_) return ed25519_->verify(message, signature);
  if (!key_) return false;
  openssl::DigestContext context(EVP_MD_CTX_new());
  const bool verified =
      context &&
      EVP_DigestVerifyInit(context.get(), nullptr, EVP_sha256(), nullptr, key_.get()) == 1 &&
      EVP_DigestVerify(context.get(), signature.data(), signature.size(), message.data(),
                       message.size()) == 1;
  ERR_clear_error();  // A bad signature leaves an entry; it is an answer, not a fault.
  return verified;
}

// ---- PrivateKey --------------------------------------------------------------------------------

Expected<PrivateKey> PrivateKey::generate(KeyType type, unsigned rsa_bits) {
  EVP_PKEY* raw = nullptr;
  switch (type) {
    case KeyType::kEd25519: {
      auto key = Ed25519PrivateKey::generate();
      if (!key) return tl::unexpected(key.error());
      return from_ed25519(std::move(*key));
    }
    case KeyType::kRsa:
      if (rsa_bits < kMinRsaBits || rsa_bits > kMaxRsaBits) {
        return fail("RSA keys are " + std::to_string(kMinRsaBits) + " to " +
                    std::to_string(kMaxRsaBits) + " bits, not " + std::to_string(rsa_bits));
      }
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(rsa_bits));
      break;
    case KeyType::kSecp256k1:
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", kSecp256k1Group);
      break;
    case KeyType::kEcdsa:
      raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", kP256Group);
      break;
  }
  if (!raw) return fail(openssl::failure("generating a " + type_label(type) + " key"));
  SharedKey key = share(raw);
  if (type != KeyType::kRsa) {
    if (auto set = use_uncompressed_points(key.get()); !set) return tl::unexpected(set.error());
  }
  return KeyBuilder::private_key(type, std::move(key));
}

Expected<PrivateKey> PrivateKey::from_protobuf(ByteView message) {
  auto parsed = parse_private_key_message(message);
  if (!parsed) return tl::unexpected(parsed.error());
  switch (parsed->type) {
    case KeyType::kEd25519: {
      auto key = decode_private_key(message);
      if (!key) return tl::unexpected(key.error());
      return from_ed25519(std::move(*key));
    }
    case KeyType::kSecp256k1:
      return KeyBuilder::secp256k1_private(parsed->data);
    case KeyType::kRsa:
    case KeyType::kEcdsa:
      return KeyBuilder::der_private(parsed->type, parsed->data);
  }
  return fail("not a libp2p private key: unknown key type");
}

PrivateKey PrivateKey::from_ed25519(Ed25519PrivateKey key) {
  PrivateKey result(PublicKey::from_ed25519(key.public_key()));
  result.ed25519_ = std::move(key);
  return result;
}

Expected<Bytes> PrivateKey::to_protobuf() const {
  if (ed25519_) return encode_private_key(*ed25519_);
  if (!key_) return fail("empty private key");
  Bytes data;
  if (type() == KeyType::kSecp256k1) {
    BIGNUM* raw = nullptr;
    if (EVP_PKEY_get_bn_param(key_.get(), OSSL_PKEY_PARAM_PRIV_KEY, &raw) != 1) {
      return fail(openssl::failure("reading the Secp256k1 private key"));
    }
    Bignum secret(raw);
    data.resize(kSecp256k1ScalarSize);
    if (BN_bn2binpad(secret.get(), data.data(), static_cast<int>(data.size())) < 0) {
      secure_wipe(data);
      return fail(openssl::failure("writing the Secp256k1 private key"));
    }
  } else {
    auto der = private_der(key_.get());
    if (!der) return tl::unexpected(der.error());
    data = std::move(*der);
  }
  Bytes out = encode_key_message(type(), data);
  secure_wipe(data);
  return out;
}

Expected<Bytes> PrivateKey::sign(ByteView message) const {
  if (ed25519_) {
    auto signature = ed25519_->sign(message);
    if (!signature) return tl::unexpected(signature.error());
    return Bytes(signature->begin(), signature->end());
  }
  openssl::DigestContext context(EVP_MD_CTX_new());
  std::size_t size = 0;
  if (!key_ || !context ||
      EVP_DigestSignInit(context.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1 ||
      EVP_DigestSign(context.get(), nullptr, &size, message.data(), message.size()) != 1) {
    return fail(openssl::failure(type_label(type()) + " signing"));
  }
  Bytes signature(size);
  if (EVP_DigestSign(context.get(), signature.data(), &size, message.data(), message.size()) != 1) {
    return fail(openssl::failure(type_label(type()) + " signing"));
  }
  signature.resize(size);
  if (type() == KeyType::kSecp256k1) return to_low_s(signature);
  return signature;
}

}  // namespace an::p2p
