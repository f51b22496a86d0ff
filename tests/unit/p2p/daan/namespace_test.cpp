// Namespace -> DHT key, against vectors computed outside this code:
//   digest:  printf %s /daan/1.0.0 | sha256sum
//            = 53c5c9ba0f92eed31bc9a3c3f25bc6d90c7a3b5015e363df2eb93af9b3dbe164
//            printf %s /daan/capability/reverse | sha256sum
//            = 00b296afb2f8afa39eb36008e36b960931168c887a96ed800d6df6af0c0bef55
//   CID:     0x01 (CIDv1) 0x55 (raw) 0x12 (sha2-256) 0x20 (32 bytes) + digest, in multibase
//            base32 ('b' + RFC 4648 lowercase, unpadded), as Python's
//            "b" + base64.b32encode(cid).decode().lower().rstrip("=") writes it.
//   "hello world" gives bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e, the CIDv1 raw
//   sha2-256 of those bytes that js multiformats (CID.createV1(raw.code, sha256.digest(bytes)))
//   and go-cid print: the same construction as go-libp2p's routing discovery (nsToCid).
#include "p2p/daan/namespace.h"

#include <gtest/gtest.h>

#include <string>

#include "support/hex.h"

namespace an::p2p::daan {
namespace {

using an::test::from_hex;

constexpr std::string_view kNetworkDigest =
    "53c5c9ba0f92eed31bc9a3c3f25bc6d90c7a3b5015e363df2eb93af9b3dbe164";
constexpr std::string_view kReverseDigest =
    "00b296afb2f8afa39eb36008e36b960931168c887a96ed800d6df6af0c0bef55";

TEST(DaanNamespace, TheNetworkNamespaceIsGos) {
  EXPECT_EQ(kNetworkNamespace, "/daan/1.0.0");
  EXPECT_EQ(kCapabilityNamespacePrefix, "/daan/capability/");
}

TEST(DaanNamespace, TheProviderKeyIsTheSha256MultihashOfTheText) {
  EXPECT_EQ(namespace_provider_key(kNetworkNamespace),
            from_hex("1220" + std::string(kNetworkDigest)));
  EXPECT_EQ(namespace_provider_key("/daan/capability/reverse"),
            from_hex("1220" + std::string(kReverseDigest)));
}

TEST(DaanNamespace, TheCidIsVersion1RawOverTheMultihash) {
  EXPECT_EQ(namespace_cid(kNetworkNamespace), from_hex("01551220" + std::string(kNetworkDigest)));
  EXPECT_EQ(namespace_cid_text(kNetworkNamespace),
            "bafkreictyxe3ud4s53jrxsndypzfxrwzbr5dwuav4nr56lvzhl43hw7bmq");
  EXPECT_EQ(namespace_cid_text("/daan/capability/reverse"),
            "bafkreiaawklk7mxyv6rz5m3abdrwxfqjgelizcd2s3wyadln62xqyc7pku");
  EXPECT_EQ(namespace_cid_text("hello world"),
            "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e");
}

TEST(DaanNamespace, TheKeyIsTheCidWithoutItsVersionAndCodec) {
  const Bytes cid = namespace_cid("/daan/capability/translate");
  const Bytes key = namespace_provider_key("/daan/capability/translate");
  ASSERT_EQ(cid.size(), key.size() + 2);
  EXPECT_EQ(Bytes(cid.begin() + 2, cid.end()), key);
  EXPECT_NE(key, namespace_provider_key("/daan/capability/translatE")) << "case matters";
}

TEST(DaanNamespace, EmptyAndOverlongNamespacesAreRefused) {
  EXPECT_FALSE(check_namespace(""));
  EXPECT_TRUE(check_namespace("x"));
  EXPECT_TRUE(check_namespace(std::string(kMaxNamespaceLength, 'n')));
  auto too_long = check_namespace(std::string(kMaxNamespaceLength + 1, 'n'));
  ASSERT_FALSE(too_long);
  EXPECT_NE(too_long.error().message.find("257 bytes"), std::string::npos)
      << too_long.error().message;
}

}  // namespace
}  // namespace an::p2p::daan
