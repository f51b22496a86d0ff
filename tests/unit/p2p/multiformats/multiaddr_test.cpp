// Multiaddr: valid and invalid strings and binary vectors from go-multiaddr's multiaddr_test.go
// (restricted to the protocols we support), exact error messages, hostile input.
#include "p2p/multiformats/multiaddr.h"

#include <gtest/gtest.h>

#include "support/hex.h"

#include <random>
#include <string>
#include <unordered_set>
#include <vector>

namespace an::p2p {
namespace {

using test::from_hex;

std::string error_of(std::string_view text) {
  auto address = Multiaddr::parse(text);
  return address ? "(parsed as " + address->to_string() + ")" : address.error().message;
}

TEST(Multiaddr, GoMultiaddrValidStrings) {
  // go-multiaddr TestConstructSucceeds, the entries whose protocols we support.
  const char* valid[] = {
      "/ip4/1.2.3.4",
      "/ip4/0.0.0.0",
      "/ip6/::1",
      "/ip6/2601:9:4f81:9700:803e:ca65:66e8:c21",
      "/ip6/2601:9:4f81:9700:803e:ca65:66e8:c21/udp/1234/quic",
      "/ip6/2601:9:4f81:9700:803e:ca65:66e8:c21/udp/1234/quic-v1",
      "/udp/0",
      "/tcp/0",
      "/udp/1234",
      "/tcp/1234",
      "/udp/65535",
      "/tcp/65535",
      "/ipfs/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC",
      "/ipfs/k2k4r8oqamigqdo6o7hsbfwd45y70oyynp98usk7zmyfrzpqxh1pohl7",
      "/p2p/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC",
      "/p2p/k2k4r8oqamigqdo6o7hsbfwd45y70oyynp98usk7zmyfrzpqxh1pohl7",
      "/p2p/bafzbeigvf25ytwc3akrijfecaotc74udrhcxzh2cx3we5qqnw5vgrei4bm",
      "/p2p/12D3KooWCryG7Mon9orvQxcS1rYZjotPgpwoJNHHKcLLfE4Hf5mV",
      "/p2p/k51qzi5uqu5dhb6l8spkdx7yxafegfkee5by8h7lmjh2ehc2sgg34z7c15vzqs",
      "/p2p/bafzaajaiaejcalj543iwv2d7pkjt7ykvefrkfu7qjfi6sduakhso4lay6abn2d5u",
      "/ipfs/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC/tcp/1234",
      "/ipfs/k2k4r8oqamigqdo6o7hsbfwd45y70oyynp98usk7zmyfrzpqxh1pohl7/tcp/1234",
      "/p2p/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC/tcp/1234",
      "/p2p/k2k4r8oqamigqdo6o7hsbfwd45y70oyynp98usk7zmyfrzpqxh1pohl7/tcp/1234",
      "/ip4/127.0.0.1/udp/1234",
      "/ip4/127.0.0.1/udp/0",
      "/ip4/127.0.0.1/tcp/1234",
      "/ip4/127.0.0.1/tcp/1234/",
      "/ip4/127.0.0.1/udp/1234/quic",
      "/ip4/127.0.0.1/udp/1234/quic-v1",
      "/ip4/127.0.0.1/ipfs/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC",
      "/ip4/127.0.0.1/ipfs/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC/tcp/1234",
      "/ip4/127.0.0.1/ipfs/k2k4r8oqamigqdo6o7hsbfwd45y70oyynp98usk7zmyfrzpqxh1pohl7",
      "/ip4/127.0.0.1/p2p/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC",
      "/ip4/127.0.0.1/p2p/k2k4r8oqamigqdo6o7hsbfwd45y70oyynp98usk7zmyfrzpqxh1pohl7/tcp/1234",
      // Not from go's list: the other protocols we support.
      "/dns/example.com/tcp/443",
      "/dns4/example.com/udp/443/quic-v1",
      "/dns6/example.com/tcp/443",
      "/dnsaddr/bootstrap.libp2p.io/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN",
      // One address, split for the line length (clang warns on unparenthesised concatenation).
      ("/ip4/1.2.3.4/tcp/4001/p2p/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC/p2p-circuit/p2p/"
       "12D3KooWCryG7Mon9orvQxcS1rYZjotPgpwoJNHHKcLLfE4Hf5mV"),
  };
  for (const char* text : valid) {
    auto address = Multiaddr::parse(text);
    ASSERT_TRUE(address) << text << ": " << address.error().message;
    // Text and binary forms round trip, whatever spelling of the peer ID was used.
    auto from_bytes = Multiaddr::from_bytes(address->to_bytes());
    ASSERT_TRUE(from_bytes) << text << ": " << from_bytes.error().message;
    EXPECT_EQ(*from_bytes, *address) << text;
    auto reparsed = Multiaddr::parse(address->to_string());
    ASSERT_TRUE(reparsed) << address->to_string();
    EXPECT_EQ(*reparsed, *address);
    EXPECT_EQ(reparsed->to_string(), address->to_string());
  }
}

TEST(Multiaddr, GoMultiaddrInvalidStrings) {
  // go-multiaddr TestConstructFails, the entries whose protocols we support, and some of ours.
  const char* invalid[] = {
      "/ip4",
      "/ip4/::1",
      "/ip4/fdpsofodsajfdoisa",
      "/ip6",
      "/udp",
      "/tcp",
      "/udp/65536",
      "/tcp/65536",
      "/quic/65536",
      "/quic-v1/65536",
      "/ip4/127.0.0.1/udp/jfodsajfidosajfoidsa",
      "/ip4/127.0.0.1/udp",
      "/ip4/127.0.0.1/tcp/jfodsajfidosajfoidsa",
      "/ip4/127.0.0.1/tcp",
      "/ip4/127.0.0.1/quic/1234",
      "/ip4/127.0.0.1/quic-v1/1234",
      "/ip4/127.0.0.1/ipfs",
      "/ip4/127.0.0.1/ipfs/tcp",
      "/ip4/127.0.0.1/p2p",
      "/ip4/127.0.0.1/p2p/tcp",
      "/ip4/1.2.3.4/tcp/-1",
      "/",
      "",
      "/p2p/QmxoHT6iViN5xAjoz1VZ553cL31U9F94ht3QvWR1FrEbZY",
      // Protocols we do not support (yet).
      "/unix/a/b/c/d/e",
      "/ip4/127.0.0.1/tcp/127/ws",
      "/ip6zone/x/ip6/fe80::1",
      // Ours.
      "/ip4/1.2.3.4/tcp/1/garbage",
      "/ip4/1.2.3.4//tcp/1",
      "/ip4/1.2.3.4/tcp/1//",
      "ip4/1.2.3.4",
      "/ip4/01.2.3.4",
      "/ip4/1.2.3.4.5",
      "/ip4/1.2.3.4 /tcp/1",
      "/ip6/1:2:3:4:5:6:7:8:9",
      "/ip6/fe80::1%eth0",
      "/tcp/+80",
      "/tcp/ 80",
      "/tcp/0x50",
      "/tcp/000080",
      "/tcp/99999999999999999999999",
      "/dns4/exa mple.com",
      "/dns4/",
      "/p2p/",
      "/p2p-circuit/x",
      "/IP4/1.2.3.4",
  };
  for (const char* text : invalid) {
    auto address = Multiaddr::parse(text);
    EXPECT_FALSE(address) << text << " parsed as " << address->to_string();
  }
}

TEST(Multiaddr, ErrorsNameTheBadPart) {
  EXPECT_EQ(error_of("/ip4/1.2.3/tcp/1"),
            R"(invalid multiaddr "/ip4/1.2.3/tcp/1": bad ip4 address "1.2.3")");
  EXPECT_EQ(error_of("/ip6/::g"), R"(invalid multiaddr "/ip6/::g": bad ip6 address "::g")");
  EXPECT_EQ(
      error_of("/ip4/1.2.3.4/tcp/65536"),
      R"(invalid multiaddr "/ip4/1.2.3.4/tcp/65536": bad tcp port "65536" (expected 0-65535))");
  EXPECT_EQ(error_of("/udp/x"),
            R"(invalid multiaddr "/udp/x": bad udp port "x" (expected 0-65535))");
  EXPECT_EQ(error_of("/ip4/1.2.3.4/tcp"),
            R"(invalid multiaddr "/ip4/1.2.3.4/tcp": missing value after /tcp)");
  EXPECT_EQ(error_of("/ip4/1.2.3.4/tcp/"),
            R"(invalid multiaddr "/ip4/1.2.3.4/tcp/": missing value after /tcp)");
  EXPECT_EQ(error_of("/ip4/1.2.3.4/foo/1"),
            R"(invalid multiaddr "/ip4/1.2.3.4/foo/1": unknown protocol "foo")");
  EXPECT_EQ(error_of("/ip4/1.2.3.4/tcp/1/garbage"),
            R"(invalid multiaddr "/ip4/1.2.3.4/tcp/1/garbage": unknown protocol "garbage")");
  EXPECT_EQ(error_of("/ip4/1.2.3.4//tcp/1"),
            R"(invalid multiaddr "/ip4/1.2.3.4//tcp/1": empty protocol name ("//"))");
  EXPECT_EQ(error_of("ip4/1.2.3.4"), R"(invalid multiaddr "ip4/1.2.3.4": it must start with '/')");
  EXPECT_EQ(error_of(""), R"(invalid multiaddr "": empty text)");
  EXPECT_EQ(error_of("/"), R"(invalid multiaddr "/": no protocols)");
  EXPECT_EQ(error_of("/dns4/a b"), R"(invalid multiaddr "/dns4/a b": bad dns4 name "a b")");
  EXPECT_EQ(error_of("/p2p/QmNotAPeer"),
            R"(invalid multiaddr "/p2p/QmNotAPeer": bad p2p value: invalid peer ID "QmNotAPeer": )"
            R"(not a peer ID: truncated multihash: the 0x2 digest should be 115 bytes but only 6 )"
            R"(are left)");
  // Control characters are escaped and long text is cut, so errors stay one readable line.
  EXPECT_EQ(error_of("/ip4/1.2.3.4\n"),
            R"(invalid multiaddr "/ip4/1.2.3.4\x0a": control character at position 12)");
  // inet_pton would stop at the NUL and accept "1.2.3.4".
  EXPECT_EQ(error_of(std::string("/ip4/1.2.3.4\0/tcp/1", 19)),
            R"(invalid multiaddr "/ip4/1.2.3.4\x00/tcp/1": control character at position 12)");
  const std::string long_text = "/dns4/" + std::string(300, 'a');
  const std::string long_error = error_of(long_text);
  EXPECT_LT(long_error.size(), 500u);
  EXPECT_NE(long_error.find("bytes long, more than 255"), std::string::npos);
}

TEST(Multiaddr, GoMultiaddrBinaryVectors) {
  // go-multiaddr TestStringToBytes / TestBytesToString / TestBinaryRepresentation.
  const std::pair<const char*, const char*> vectors[] = {
      {"/ip4/127.0.0.1/udp/1234", "047f000001910204d2"},
      {"/ip4/127.0.0.1/tcp/4321", "047f0000010610e1"},
      {"/ip4/127.0.0.1/udp/1234/ip4/127.0.0.1/tcp/4321", "047f000001910204d2047f0000010610e1"},
      // From the multicodec table: quic-v1 is 0x01cd, p2p-circuit 0x0122, ip6 0x29.
      {"/ip4/127.0.0.1/udp/1234/quic-v1", "047f000001910204d2cd03"},
      {"/ip4/127.0.0.1/udp/1234/quic", "047f000001910204d2cc03"},
      {"/p2p-circuit", "a202"},
      {"/ip6/::1/tcp/80", "2900000000000000000000000000000001060050"},
      {"/dns4/a.io/tcp/443", "3604612e696f0601bb"},
  };
  for (const auto& [text, hex] : vectors) {
    auto parsed = Multiaddr::parse(text);
    ASSERT_TRUE(parsed) << text << ": " << parsed.error().message;
    EXPECT_EQ(parsed->to_bytes(), from_hex(hex)) << text;
    auto decoded = Multiaddr::from_bytes(from_hex(hex));
    ASSERT_TRUE(decoded) << hex << ": " << decoded.error().message;
    EXPECT_EQ(decoded->to_string(), text);
  }
}

TEST(Multiaddr, P2pBinaryIsALengthPrefixedMultihash) {
  auto address = Multiaddr::parse("/p2p/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC");
  ASSERT_TRUE(address);
  const Bytes bytes = address->to_bytes();
  // 421 = varint a5 03, then the length 34 and the sha2-256 multihash (0x12 0x20 ...).
  ASSERT_EQ(bytes.size(), 2u + 1u + 34u);
  EXPECT_EQ(Bytes(bytes.begin(), bytes.begin() + 5), (Bytes{0xa5, 0x03, 0x22, 0x12, 0x20}));
  auto id = PeerId::parse("QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC");
  ASSERT_TRUE(id);
  EXPECT_EQ(Bytes(bytes.begin() + 3, bytes.end()), id->bytes());
}

TEST(Multiaddr, GoMultiaddrBinaryOddities) {
  // TestDNS: dns6 with a 42-byte name of '0's, written as ASCII "7*000...".
  std::string dns_bytes = "7*" + std::string(42, '0');
  auto dns = Multiaddr::from_bytes(Bytes(dns_bytes.begin(), dns_bytes.end()));
  ASSERT_TRUE(dns) << dns.error().message;
  EXPECT_EQ(dns->to_string(), "/dns6/" + std::string(42, '0'));
  EXPECT_EQ(*Multiaddr::parse(dns->to_string()), *dns);

  // TestInvalidP2PAddrBytes: a p2p value whose multihash claims 33 digest bytes.
  auto bad_p2p = Multiaddr::from_bytes(
      from_hex("a503221221c05877cbae039d70a5e600ea02c6f9f2942439285c9e344e26f8d280c850fad6"));
  ASSERT_FALSE(bad_p2p);
  EXPECT_EQ(bad_p2p.error().message,
            "invalid binary multiaddr (37 bytes), at byte 0: bad p2p value: not a peer ID: "
            "truncated multihash: the sha2-256 digest should be 33 bytes but only 32 are left");

  // TestZone: ip6zone (42) is a protocol we do not support.
  auto zone = Multiaddr::from_bytes(
      from_hex("2a046574683029" /* ip6zone "eth0", ip6 */ "00000000000000000000000000000001"));
  ASSERT_FALSE(zone);
  EXPECT_EQ(zone.error().message,
            "invalid binary multiaddr (23 bytes), at byte 0: unknown protocol code 42");

  // TestEmptyMultiaddr.
  auto empty = Multiaddr::from_bytes(Bytes{});
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().message, "invalid binary multiaddr: no bytes");
}

TEST(Multiaddr, BinaryErrorsNameTheBadPart) {
  const std::pair<const char*, const char*> cases[] = {
      {"047f0000", "(4 bytes), at byte 0: truncated ip4 value: needs 4 bytes, 3 left"},
      {"047f0000010610", "(7 bytes), at byte 5: truncated tcp value: needs 2 bytes, 1 left"},
      {"3605612e696f", "(6 bytes), at byte 1: truncated dns4 value: needs 5 bytes, 4 left"},
      {"36", "(1 bytes), at byte 1: bad length of the dns4 value: truncated varint: no bytes left"},
      {"3600", "(2 bytes), at byte 0: empty dns4 name"},
      {"3601", "(2 bytes), at byte 1: truncated dns4 value: needs 1 bytes, 0 left"},
      {"36012f", "(3 bytes), at byte 0: bad dns4 name \"/\""},
      {"360200ff", "(4 bytes), at byte 0: bad dns4 name \"\\x00\xff\""},
      {"8080",
       "(2 bytes), at byte 0: bad protocol code: truncated varint: 2 byte(s), all with the "
       "continuation bit set"},
      {"8000", "(2 bytes), at byte 0: bad protocol code: varint is not minimally encoded"},
      {"047f000001ff01", "(7 bytes), at byte 5: unknown protocol code 255"},
      {"a50300",
       "(3 bytes), at byte 0: bad p2p value: not a peer ID: bad multihash function code: "
       "truncated varint: no bytes left"},
  };
  for (const auto& [hex, message] : cases) {
    auto address = Multiaddr::from_bytes(from_hex(hex));
    ASSERT_FALSE(address) << hex;
    EXPECT_EQ(address.error().message, "invalid binary multiaddr " + std::string(message));
  }
}

TEST(Multiaddr, EveryTruncationFailsOrEndsOnAComponentBoundary) {
  auto address = Multiaddr::parse(
      "/ip4/1.2.3.4/tcp/4001/p2p/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC/p2p-circuit/dns6/"
      "example.org/udp/9/quic-v1/ip6/::1/p2p/12D3KooWCryG7Mon9orvQxcS1rYZjotPgpwoJNHHKcLLfE4Hf5mV");
  ASSERT_TRUE(address) << address.error().message;
  const Bytes bytes = address->to_bytes();
  std::size_t whole_prefixes = 0;
  for (std::size_t size = 0; size < bytes.size(); ++size) {
    auto prefix = Multiaddr::from_bytes(ByteView(bytes).first(size));
    if (!prefix) continue;
    ++whole_prefixes;
    EXPECT_EQ(prefix->to_bytes(), Bytes(bytes.begin(), bytes.begin() + static_cast<long>(size)));
    EXPECT_LT(prefix->components().size(), address->components().size());
  }
  // One per component boundary (the empty prefix is refused).
  EXPECT_EQ(whole_prefixes, address->components().size() - 1);
}

TEST(Multiaddr, ComponentsAndHelpers) {
  auto circuit = Multiaddr::parse(
      "/ip4/1.2.3.4/tcp/4001/p2p/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC/p2p-circuit/p2p/"
      "12D3KooWCryG7Mon9orvQxcS1rYZjotPgpwoJNHHKcLLfE4Hf5mV");
  ASSERT_TRUE(circuit);
  const auto& components = circuit->components();
  ASSERT_EQ(components.size(), 5u);  // ip4 tcp p2p p2p-circuit p2p
  EXPECT_EQ(components[0].code, kProtocolIp4);
  EXPECT_EQ(components[0].protocol, "ip4");
  EXPECT_EQ(components[0].value, "1.2.3.4");
  EXPECT_EQ(components[0].raw_value, (Bytes{1, 2, 3, 4}));
  EXPECT_EQ(components[1].value, "4001");
  EXPECT_EQ(components[3].protocol, "p2p-circuit");
  EXPECT_EQ(components[3].value, "");
  EXPECT_EQ(circuit->value_of(kProtocolTcp), "4001");
  EXPECT_EQ(circuit->value_of(kProtocolP2p), "QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC");
  EXPECT_EQ(circuit->value_of(kProtocolUdp), std::nullopt);
  EXPECT_EQ(circuit->peer_id_component(), "12D3KooWCryG7Mon9orvQxcS1rYZjotPgpwoJNHHKcLLfE4Hf5mV");

  const Multiaddr relay_hop = circuit->without_p2p();
  EXPECT_EQ(relay_hop.to_string(),
            "/ip4/1.2.3.4/tcp/4001/p2p/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC/p2p-circuit");
  EXPECT_EQ(relay_hop.peer_id_component(), std::nullopt);
  EXPECT_EQ(relay_hop.without_p2p(), relay_hop);

  auto target = PeerId::parse("12D3KooWCryG7Mon9orvQxcS1rYZjotPgpwoJNHHKcLLfE4Hf5mV");
  ASSERT_TRUE(target);
  EXPECT_EQ(relay_hop.with_peer_id(*target), *circuit);

  auto tcp = Multiaddr::parse("/ip4/127.0.0.1/tcp/1");
  auto quic = Multiaddr::parse("/udp/2/quic-v1");
  ASSERT_TRUE(tcp && quic);
  EXPECT_EQ(tcp->encapsulate(*quic).to_string(), "/ip4/127.0.0.1/tcp/1/udp/2/quic-v1");
  EXPECT_EQ(tcp->encapsulate(Multiaddr()), *tcp);
  EXPECT_TRUE(Multiaddr().empty());
  EXPECT_EQ(Multiaddr().to_string(), "");
}

TEST(Multiaddr, NormalizesSpellings) {
  // go-multiaddr TestIPFSvP2P, plus CID and trailing-slash spellings.
  const char* canonical = "/p2p/QmbHVEEepCi7rn7VL7Exxpd2Ci9NNB6ifvqwhsrbRMgQFP";
  auto p2p = Multiaddr::parse(canonical);
  auto ipfs = Multiaddr::parse("/ipfs/QmbHVEEepCi7rn7VL7Exxpd2Ci9NNB6ifvqwhsrbRMgQFP");
  ASSERT_TRUE(p2p && ipfs);
  EXPECT_EQ(ipfs->to_string(), canonical);
  EXPECT_EQ(*ipfs, *p2p);

  auto id = PeerId::parse("QmbHVEEepCi7rn7VL7Exxpd2Ci9NNB6ifvqwhsrbRMgQFP");
  ASSERT_TRUE(id);
  auto cid = Multiaddr::parse("/p2p/" + id->to_cid_text() + "/");
  ASSERT_TRUE(cid);
  EXPECT_EQ(cid->to_string(), canonical);

  auto mapped = Multiaddr::parse("/ip6/::ffff:127.0.0.1/tcp/111");  // go TestRoundTrip
  ASSERT_TRUE(mapped);
  EXPECT_EQ(mapped->to_string(), "/ip6/::ffff:127.0.0.1/tcp/111");
  auto zeros = Multiaddr::parse("/tcp/00080");
  ASSERT_TRUE(zeros);
  EXPECT_EQ(zeros->to_string(), "/tcp/80");
}

TEST(Multiaddr, EqualityAndHash) {
  auto first = Multiaddr::parse("/ip4/127.0.0.1/tcp/1234");
  auto same = Multiaddr::parse("/ip4/127.0.0.1/tcp/1234/");
  auto other = Multiaddr::parse("/ip4/127.0.0.1/udp/1234");
  ASSERT_TRUE(first && same && other);
  EXPECT_EQ(*first, *same);
  EXPECT_NE(*first, *other);
  std::unordered_set<Multiaddr> set = {*first, *same, *other};
  EXPECT_EQ(set.size(), 2u);
}

TEST(Multiaddr, RandomBytesNeverCrash) {
  std::mt19937 random(13);
  // Bytes biased towards protocol codes and small lengths, so that some inputs get far.
  const std::uint8_t interesting[] = {0x04, 0x06, 0x29, 0x35, 0x36, 0x37, 0x38, 0x91, 0x02,
                                      0xa5, 0x03, 0xa2, 0xcd, 0xcc, 0x00, 0x12, 0x20, 0x24};
  int parsed = 0;
  for (int trial = 0; trial < 30000; ++trial) {
    Bytes bytes(random() % 48);
    for (auto& byte : bytes) {
      byte = random() % 2 ? interesting[random() % sizeof interesting]
                          : static_cast<std::uint8_t>(random());
    }
    auto address = Multiaddr::from_bytes(bytes);
    if (!address) continue;
    ++parsed;
    EXPECT_EQ(address->to_bytes(), bytes);
    auto reparsed = Multiaddr::parse(address->to_string());
    ASSERT_TRUE(reparsed) << address->to_string() << ": " << reparsed.error().message;
    EXPECT_EQ(*reparsed, *address);
  }
  EXPECT_GT(parsed, 0);
}

TEST(Multiaddr, RandomTextNeverCrashes) {
  std::mt19937 random(17);
  const char* tokens[] = {
      "/",           "ip4",  "ip6", "tcp",
      "udp",         "dns4", "p2p", "quic-v1",
      "1.2.3.4",     "::1",  "80",  "65536",
      "p2p-circuit", "",     "x",   "12D3KooWCryG7Mon9orvQxcS1rYZjotPgpwoJNHHKcLLfE4Hf5mV"};
  for (int trial = 0; trial < 20000; ++trial) {
    std::string text;
    const int count = static_cast<int>(random() % 10);
    for (int i = 0; i < count; ++i) {
      text += "/";
      text += tokens[random() % std::size(tokens)];
    }
    auto address = Multiaddr::parse(text);
    if (!address) continue;
    auto from_bytes = Multiaddr::from_bytes(address->to_bytes());
    ASSERT_TRUE(from_bytes) << text;
    EXPECT_EQ(*from_bytes, *address);
  }
}

}  // namespace
}  // namespace an::p2p
