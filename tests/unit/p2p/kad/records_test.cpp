// DHT records: RFC 3339 times, the /pk and /ipns validators (with records made and signed here and
// two IPNS records published by kubo), the namespaced registry, the strict CBOR reader, and the
// record and provider stores' limits and expiry.
#include "p2p/kad/records.h"

#include <gtest/gtest.h>

#include <random>

#include "p2p/crypto/key.h"
#include "p2p/kad/cbor.h"
#include "p2p/multiformats/multihash.h"
#include "p2p/wire/protobuf.h"
#include "support/hex.h"

namespace an::p2p::kad {
namespace {

using an::test::from_hex;
using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Interop vectors: IPNS records published by kubo 0.18.1 (go, boxo's predecessor go-ipns) with
// `ipfs name publish --ttl=876600h --lifetime=876600h` and read back with `ipfs routing get`,
// stored as binary fixtures in ipfs/kubo, files <name>.ipns-record in
//   test/sharness/t0114-gateway-subdomains/ (name 12D3KooWLQzU..., kKuboName1) and
//   test/sharness/t0116-gateway-cache/ (name k51qzi5uqu5dlxds..., kKuboName2).
// Both are V1+V2 records of Ed25519 keys (no embedded public key), sequence 0, valid until 2123.
constexpr std::string_view kKuboName1 = "12D3KooWLQzUv2FHWGVPXTXSZpdHs7oHbXub2G5WC8Tx4NQhyd2d";
constexpr std::string_view kKuboRecord1 =
    "0a412f697066732f6261666b7265696379736732336b69777633346567326437717765697078776f73646f3270"
    "79346c647634326e62617567756c75656e357636616d1240d88810a0677b10fccc0804a7b55b7341d61bc6bdbb"
    "db262e72ac55ab0672a362524ad0006840fb86e5dd12db121c1df814573b3d74a6fdf01ba08e77952e8a091800"
    "221b323132332d30342d31325431333a34343a35392e3830313732385a28003080808ca380e0e0e52b4240f81f"
    "c2870bd1cddaad67ffe9bf9b26079e97567e5543c5e365ade18725c77744b53afaf7c4514bdb16c2832498afc2"
    "d3118e734cdaeb630ab1e76383f3856a034a9501a56354544c1b2bcb8300046300006556616c756558412f6970"
    "66732f6261666b7265696379736732336b69777633346567326437717765697078776f73646f327079346c6476"
    "34326e62617567756c75656e357636616d6853657175656e6365006856616c6964697479581b323132332d3034"
    "2d31325431333a34343a35392e3830313732385a6c56616c69646974795479706500";
constexpr std::string_view kKuboName2 =
    "k51qzi5uqu5dlxdsdu5fpuu7h69wu4ohp32iwm9pdt9nq3y5rpn3ln9j12zfhe";
constexpr std::string_view kKuboRecord2 =
    "0a412f697066732f62616679626569623366666c3274656971646e6376336d6b7a347232336235637472776b7a"
    "727268637464626e653669626f61797875786b3575691240b2063f37c29394b2f3daa6cc8f06f8472076135f7c"
    "8205acb64e02e9bd26884fe5daa30bdfc73f4dbf406aad36c923a1e2fa909236e17568c394fa225b8328071800"
    "221b323132332d30342d31325431353a33323a32322e3634363134345a28003080808ca380e0e0e52b42405a44"
    "b4b7a48b9a94f44a1bfb692e31c036dd0070bb6068a2c3661ec0f24021d118f47ca71a0a8a7b8dc3a060c46cf7"
    "2de7f97cf17fa1019e3d3eb92b4ec787094a9501a56354544c1b2bcb8300046300006556616c756558412f6970"
    "66732f62616679626569623366666c3274656971646e6376336d6b7a347232336235637472776b7a7272686374"
    "64626e653669626f61797875786b3575696853657175656e6365006856616c6964697479581b323132332d3034"
    "2d31325431353a33323a32322e3634363134345a6c56616c69646974795479706500";
// 876600 hours in nanoseconds.
constexpr std::uint64_t kKuboTtl = 3155760000000000000ull;

Bytes raw(std::string_view text) {
  return Bytes(text.begin(), text.end());
}

Bytes cat(const Bytes& a, const Bytes& b) {
  Bytes out = a;
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

PrivateKey test_key(std::uint8_t seed_byte) {
  auto key = Ed25519PrivateKey::from_seed(Bytes(kEd25519SeedSize, seed_byte));
  EXPECT_TRUE(key.has_value());
  return PrivateKey::from_ed25519(*key);
}

// The `data` field (9) of an IPNS record.
Bytes data_field(const Bytes& record) {
  Bytes data;
  pb::Reader reader(record);
  while (auto next = reader.next()) {
    if (!next->has_value()) break;
    if ((*next)->number == 9) data.assign((*next)->bytes.begin(), (*next)->bytes.end());
  }
  return data;
}

Bytes pk_key(const PeerId& id) {
  return cat(raw("/pk/"), id.bytes());
}

Bytes ipns_key(const PeerId& id) {
  return cat(raw("/ipns/"), id.bytes());
}

TimePoint at(std::string_view rfc3339) {
  auto parsed = parse_rfc3339(rfc3339);
  EXPECT_TRUE(parsed.has_value()) << rfc3339;
  return parsed ? *parsed : TimePoint{};
}

const TimePoint kNow = at("2026-11-26T10:00:00Z");

Bytes make_record(const PrivateKey& key, std::uint64_t sequence, TimePoint eol,
                  std::string_view value = "/ipfs/bafkqaaa") {
  auto record = make_ipns_record(key, value, sequence, eol, 300'000'000'000ull);
  EXPECT_TRUE(record.has_value());
  return record ? *record : Bytes{};
}

// ---- RFC 3339 ----------------------------------------------------------------------------------

TEST(Rfc3339, FormatsLikeGo) {
  EXPECT_EQ(format_rfc3339(TimePoint{}), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_rfc3339(TimePoint{} + std::chrono::milliseconds(1500)),
            "1970-01-01T00:00:01.5Z");
  EXPECT_EQ(format_rfc3339(at("2123-04-12T13:44:59.801728Z")), "2123-04-12T13:44:59.801728Z");
  EXPECT_EQ(format_rfc3339(at("2024-02-29T23:59:59.000000001Z")), "2024-02-29T23:59:59.000000001Z");
}

TEST(Rfc3339, ParsesOffsetsAndRefusesGarbage) {
  EXPECT_EQ(at("2020-01-01T01:30:00+01:30"), at("2020-01-01T00:00:00Z"));
  EXPECT_EQ(at("2019-12-31T23:00:00-01:00"), at("2020-01-01T00:00:00Z"));
  EXPECT_EQ(at("1970-01-01T00:00:00.1Z") - TimePoint{}, std::chrono::milliseconds(100));
  EXPECT_EQ(at("9999-12-31T23:59:59Z"), TimePoint::max());  // beyond the clock: clamped
  for (std::string_view bad :
       {"", "2020-01-01", "2020-01-01T00:00:00", "2020-13-01T00:00:00Z", "2021-02-29T00:00:00Z",
        "2020-01-01T24:00:00Z", "2020-01-01T00:00:60Z", "2020-01-01t00:00:00Z",
        "2020-01-01T00:00:00z", "2020-01-01T00:00:00.Z", "2020-01-01T00:00:00.1234567891Z",
        "2020-01-01T00:00:00+0100", "2020-01-01T00:00:00Z ", "+020-01-01T00:00:00Z"}) {
    EXPECT_FALSE(parse_rfc3339(bad).has_value()) << bad;
  }
}

// ---- /pk ---------------------------------------------------------------------------------------

TEST(PublicKeyValidator, AcceptsTheKeyOfThePeerId) {
  const auto key = test_key(1);
  const PeerId id = PeerId::from_public_key(key.public_key());
  PublicKeyValidator validator;
  EXPECT_TRUE(validator.validate(pk_key(id), key.public_key().protobuf(), kNow));
}

TEST(PublicKeyValidator, RefusesMismatchAndGarbage) {
  const auto key = test_key(1);
  const auto other = test_key(2);
  const PeerId id = PeerId::from_public_key(key.public_key());
  const Bytes value = key.public_key().protobuf();
  PublicKeyValidator validator;

  auto mismatch = validator.validate(pk_key(id), other.public_key().protobuf(), kNow);
  ASSERT_FALSE(mismatch);
  EXPECT_NE(mismatch.error().message.find("does not match"), std::string::npos);

  EXPECT_FALSE(validator.validate(pk_key(id), raw("garbage"), kNow));
  EXPECT_FALSE(validator.validate(pk_key(id), {}, kNow));
  EXPECT_FALSE(validator.validate(raw("/pk/notamultihash"), value, kNow));
  EXPECT_FALSE(validator.validate(cat(raw("/ipns/"), id.bytes()), value, kNow));
  EXPECT_FALSE(validator.validate(raw("pk"), value, kNow));
  // The same key under its sha2-256 multihash is not its peer ID (Ed25519 IDs are inlined).
  auto hashed = sha256_multihash(value);
  ASSERT_TRUE(hashed);
  EXPECT_FALSE(validator.validate(cat(raw("/pk/"), hashed->encode()), value, kNow));
  // Truncated key bytes.
  EXPECT_FALSE(
      validator.validate(pk_key(id), Bytes(value.begin(), value.end() - 1), kNow).has_value());
}

TEST(PublicKeyValidator, AcceptsKeysOfEveryType) {
  for (const KeyType type : {KeyType::kRsa, KeyType::kSecp256k1, KeyType::kEcdsa}) {
    auto key = PrivateKey::generate(type);
    ASSERT_TRUE(key) << key.error().message;
    const Bytes& value = key->public_key().protobuf();
    EXPECT_TRUE(PublicKeyValidator().validate(pk_key(key->peer_id()), value, kNow))
        << key_type_name(type);
    auto other = PrivateKey::generate(type);
    ASSERT_TRUE(other);
    EXPECT_FALSE(PublicKeyValidator().validate(pk_key(other->peer_id()), value, kNow))
        << key_type_name(type);
  }
}

TEST(PublicKeyValidator, RefusesAnRsaKeyThatIsNotDer) {
  // A PublicKey protobuf of type RSA (0) whose data is not a key: its hash still makes an ID.
  Bytes rsa;
  pb::Writer writer(rsa);
  writer.varint_field(1, 0);
  writer.bytes_field(2, Bytes(270, 0x30));
  auto id = PeerId::from_encoded_public_key(rsa);
  ASSERT_TRUE(id);
  auto result = PublicKeyValidator().validate(pk_key(*id), rsa, kNow);
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message.find("invalid RSA public key"), std::string::npos)
      << result.error().message;
}

TEST(PublicKeyValidator, SelectPicksTheFirst) {
  const Bytes a = raw("a"), b = raw("b");
  const ByteView values[] = {a, b};
  EXPECT_EQ(*PublicKeyValidator().select(raw("/pk/x"), values), 0u);
  EXPECT_FALSE(PublicKeyValidator().select(raw("/pk/x"), {}));
}

// ---- registry ----------------------------------------------------------------------------------

TEST(NamespacedValidator, DispatchesAndRefusesUnknownNamespaces) {
  const auto registry = NamespacedValidator::with_defaults();
  EXPECT_TRUE(registry.has("pk"));
  EXPECT_TRUE(registry.has("ipns"));
  const auto key = test_key(3);
  const PeerId id = PeerId::from_public_key(key.public_key());
  EXPECT_TRUE(registry.validate(pk_key(id), key.public_key().protobuf(), kNow));
  EXPECT_TRUE(registry.validate(ipns_key(id), make_record(key, 1, kNow + hours(1)), kNow));

  auto unknown = registry.validate(raw("/v/some-key"), raw("value"), kNow);
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("unsupported record namespace \"v\""), std::string::npos);
  EXPECT_FALSE(registry.validate(raw("no-namespace"), raw("value"), kNow));
  EXPECT_FALSE(registry.validate(raw("//x"), raw("value"), kNow));
  EXPECT_FALSE(registry.validate(raw("/pk"), raw("value"), kNow));
  EXPECT_FALSE(registry.select(raw("/pk/x"), {}));
  const Bytes v = raw("v");
  const ByteView one[] = {v};
  EXPECT_FALSE(registry.select(raw("/nope/x"), one));
}

TEST(SplitKey, LikeGo) {
  const Bytes key = raw("/ipns/abc/def");
  auto split = split_key(key);
  ASSERT_TRUE(split);
  EXPECT_EQ(split->name_space, "ipns");
  EXPECT_EQ(Bytes(split->rest.begin(), split->rest.end()), raw("abc/def"));
  const Bytes pk_only = raw("/pk/");
  auto empty_rest = split_key(pk_only);
  ASSERT_TRUE(empty_rest);
  EXPECT_TRUE(empty_rest->rest.empty());
}

// ---- /ipns: kubo records -----------------------------------------------------------------------

TEST(IpnsInterop, KuboRecordsValidate) {
  IpnsValidator validator;
  for (auto [name_text, hex] :
       {std::pair{kKuboName1, kKuboRecord1}, std::pair{kKuboName2, kKuboRecord2}}) {
    auto name = PeerId::parse(name_text);
    ASSERT_TRUE(name) << name_text;
    const Bytes record = from_hex(hex);
    auto valid = validator.validate(ipns_key(*name), record, kNow);
    EXPECT_TRUE(valid) << name_text << ": " << valid.error().message;
    // Past its EOL in 2123 it is expired.
    auto late = validator.validate(ipns_key(*name), record, at("2124-01-01T00:00:00Z"));
    ASSERT_FALSE(late);
    EXPECT_NE(late.error().message.find("expired"), std::string::npos);
  }
  // One name's record is not the other's.
  auto name2 = PeerId::parse(kKuboName2);
  ASSERT_TRUE(name2);
  EXPECT_FALSE(validator.validate(ipns_key(*name2), from_hex(kKuboRecord1), kNow));
}

TEST(IpnsInterop, KuboRecordFields) {
  auto record = parse_ipns_record(from_hex(kKuboRecord1));
  ASSERT_TRUE(record) << record.error().message;
  EXPECT_EQ(record->value,
            raw("/ipfs/bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am"));
  EXPECT_EQ(record->validity, "2123-04-12T13:44:59.801728Z");
  EXPECT_EQ(record->sequence, 0u);
  EXPECT_EQ(record->ttl_ns, kKuboTtl);
  EXPECT_TRUE(record->has_signature_v2);
  EXPECT_FALSE(record->public_key.has_value());
  EXPECT_EQ(format_rfc3339(record->eol), record->validity);
}

// Our CBOR writer, given kubo's field values, writes kubo's `data` bytes exactly.
TEST(IpnsInterop, CborDataMatchesKuboBytes) {
  const Bytes data = data_field(from_hex(kKuboRecord1));
  ASSERT_EQ(data.size(), 149u);
  Bytes ours;
  cbor::Writer writer(ours);
  writer.map_header(5);
  writer.text("TTL");
  writer.unsigned_int(kKuboTtl);
  writer.text("Value");
  writer.bytes("/ipfs/bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am");
  writer.text("Sequence");
  writer.unsigned_int(0);
  writer.text("Validity");
  writer.bytes("2123-04-12T13:44:59.801728Z");
  writer.text("ValidityType");
  writer.unsigned_int(0);
  EXPECT_EQ(ours, data);
}

TEST(IpnsInterop, TamperedV1FieldIsRefused) {
  // Change one character of the protobuf Value (field 1; the V2 signature covers only `data`).
  Bytes record = from_hex(kKuboRecord1);
  ASSERT_EQ(record[2], '/');
  record[3] = 'X';  // "/Xpfs/..."
  auto name = PeerId::parse(kKuboName1);
  ASSERT_TRUE(name);
  auto result = IpnsValidator().validate(ipns_key(*name), record, kNow);
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message.find("\"Value\" did not match"), std::string::npos)
      << result.error().message;
}

TEST(IpnsInterop, TruncationAtEveryByteNeverValidates) {
  auto name = PeerId::parse(kKuboName1);
  ASSERT_TRUE(name);
  const Bytes record = from_hex(kKuboRecord1);
  IpnsValidator validator;
  for (std::size_t cut = 0; cut < record.size(); ++cut) {
    EXPECT_FALSE(validator.validate(ipns_key(*name), ByteView(record.data(), cut), kNow))
        << "cut at " << cut;
  }
}

// ---- /ipns: records made here ------------------------------------------------------------------

TEST(IpnsValidator, ValidExpiredAndEdge) {
  const auto key = test_key(4);
  const PeerId id = PeerId::from_public_key(key.public_key());
  IpnsValidator validator;
  const TimePoint eol = kNow + hours(24);
  const Bytes record = make_record(key, 5, eol);
  EXPECT_TRUE(validator.validate(ipns_key(id), record, kNow));
  EXPECT_TRUE(validator.validate(ipns_key(id), record, eol));  // valid up to and at its EOL
  auto expired = validator.validate(ipns_key(id), record, eol + seconds(1));
  ASSERT_FALSE(expired);
  EXPECT_NE(expired.error().message.find("expired"), std::string::npos);
  auto parsed = parse_ipns_record(record);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->sequence, 5u);
  EXPECT_EQ(parsed->value, raw("/ipfs/bafkqaaa"));
  EXPECT_EQ(parsed->eol, eol);
}

TEST(IpnsValidator, WrongSignatureAndWrongKey) {
  const auto key = test_key(5);
  const auto other = test_key(6);
  const PeerId id = PeerId::from_public_key(key.public_key());
  const PeerId other_id = PeerId::from_public_key(other.public_key());
  IpnsValidator validator;
  Bytes record = make_record(key, 1, kNow + hours(1));
  // The signature is the first field: 42 40 <64 bytes>. Flip one bit of it.
  ASSERT_EQ(record[0], 0x42);
  Bytes bad_signature = record;
  bad_signature[10] ^= 0x01;
  auto result = validator.validate(ipns_key(id), bad_signature, kNow);
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message.find("signature"), std::string::npos);
  // Signed by `key`, stored under `other`'s name.
  EXPECT_FALSE(validator.validate(ipns_key(other_id), record, kNow));
  // A record that embeds a key which is not the name's.
  Bytes embedded = record;
  pb::Writer(embedded).bytes_field(7, other.public_key().protobuf());
  auto mismatch = validator.validate(ipns_key(id), embedded, kNow);
  ASSERT_FALSE(mismatch);
  EXPECT_NE(mismatch.error().message.find("does not match"), std::string::npos);
  // Embedding the right key is fine.
  Bytes right = record;
  pb::Writer(right).bytes_field(7, key.public_key().protobuf());
  EXPECT_TRUE(validator.validate(ipns_key(id), right, kNow));
  // Data changed after signing.
  Bytes changed = record;
  changed.back() ^= 0x01;
  EXPECT_FALSE(validator.validate(ipns_key(id), changed, kNow));
}

TEST(IpnsValidator, RefusesMalformedRecords) {
  const auto key = test_key(7);
  const PeerId id = PeerId::from_public_key(key.public_key());
  IpnsValidator validator;
  EXPECT_FALSE(validator.validate(ipns_key(id), {}, kNow));
  EXPECT_FALSE(validator.validate(ipns_key(id), raw("garbage"), kNow));
  EXPECT_FALSE(validator.validate(ipns_key(id), Bytes(kMaxIpnsRecordSize + 1, 0), kNow));
  EXPECT_FALSE(validator.validate(raw("/ipns/xyz"), make_record(key, 1, kNow + hours(1)), kNow));
  // No V2 signature: only the data field.
  Bytes no_signature;
  const Bytes parsed_ok = make_record(key, 1, kNow + hours(1));
  pb::Writer(no_signature).bytes_field(9, data_field(parsed_ok));
  auto result = validator.validate(ipns_key(id), no_signature, kNow);
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message.find("V2 signature"), std::string::npos);
  // A name that is a sha2-256 peer ID with no key in the record.
  auto hashed = sha256_multihash(raw("some RSA key"));
  ASSERT_TRUE(hashed);
  auto hashed_id = PeerId::from_multihash(hashed->encode());
  ASSERT_TRUE(hashed_id);
  auto no_key = validator.validate(ipns_key(*hashed_id), parsed_ok, kNow);
  ASSERT_FALSE(no_key);
  EXPECT_NE(no_key.error().message.find("public key not found"), std::string::npos);
}

TEST(IpnsValidator, SelectsHigherSequenceThenLaterEol) {
  const auto key = test_key(8);
  IpnsValidator validator;
  const Bytes seq1 = make_record(key, 1, kNow + hours(10));
  const Bytes seq2 = make_record(key, 2, kNow + hours(1));
  const Bytes seq2_later = make_record(key, 2, kNow + hours(2));
  {
    const ByteView values[] = {seq1, seq2};
    EXPECT_EQ(*validator.select({}, values), 1u);
  }
  {
    const ByteView values[] = {seq2, seq1};
    EXPECT_EQ(*validator.select({}, values), 0u);
  }
  {
    const ByteView values[] = {seq2, seq2_later, seq1};
    EXPECT_EQ(*validator.select({}, values), 1u);
  }
  {
    const ByteView values[] = {seq2, seq2};
    EXPECT_EQ(*validator.select({}, values), 0u);  // a tie keeps the first
  }
  {
    const Bytes garbage = raw("garbage");
    const ByteView values[] = {seq2, garbage};
    EXPECT_FALSE(validator.select({}, values));
  }
  EXPECT_FALSE(validator.select({}, {}));
}

// ---- CBOR --------------------------------------------------------------------------------------

std::string text(const Bytes& bytes) {
  return std::string(bytes.begin(), bytes.end());
}

TEST(Cbor, DecodesScalarsAndSkipsNested) {
  // {"a": 1, "b": h'0102', "c": "x", "d": true, "e": null, "f": -2, "g": [1, {"h": 2}],
  //  "i": 1.5 (64-bit float)}
  const Bytes bytes = from_hex(
      "a8"
      "6161"
      "01"
      "6162"
      "420102"
      "6163"
      "6178"
      "6164"
      "f5"
      "6165"
      "f6"
      "6166"
      "21"
      "6167"
      "8201a1616802"
      "6169"
      "fb3ff8000000000000");
  auto map = cbor::decode_map(text(bytes));
  ASSERT_TRUE(map) << map.error().message;
  ASSERT_EQ(map->size(), 8u);
  EXPECT_EQ(cbor::find(*map, "a")->number, 1u);
  EXPECT_EQ(cbor::find(*map, "b")->bytes, std::string("\x01\x02"));
  EXPECT_EQ(cbor::find(*map, "c")->kind, cbor::Kind::kText);
  EXPECT_TRUE(cbor::find(*map, "d")->boolean);
  EXPECT_EQ(cbor::find(*map, "e")->kind, cbor::Kind::kNull);
  EXPECT_EQ(cbor::find(*map, "f")->kind, cbor::Kind::kNegative);
  EXPECT_EQ(cbor::find(*map, "g")->kind, cbor::Kind::kOther);
  EXPECT_EQ(cbor::find(*map, "i")->kind, cbor::Kind::kOther);
  EXPECT_EQ(cbor::find(*map, "z"), nullptr);
}

TEST(Cbor, StrictAboutMalformedInput) {
  const std::vector<std::string_view> bad = {
      "",                  // nothing
      "01",                // not a map
      "a1",                // truncated
      "a10101",            // integer key
      "a2616101616102",    // duplicate key
      "a1616118 01",       // non-minimal 1-byte argument (value 1 in 2 bytes)
      "a161611900ff",      // non-minimal 2-byte argument
      "bf616101ff",        // indefinite map
      "a161615f4101ff",    // indefinite byte string
      "a16161c240",        // tag
      "a16161f7",          // undefined
      "a16161f93c00",      // 16-bit float
      "a16161fa3fc00000",  // 32-bit float
      "a16161f820",        // one-byte simple value
      "a161614501",        // byte string longer than the input
      "a1616101"
      "00",                        // bytes after the map
      "a161619bffffffffffffffff",  // array announcing 2^64-1 items
      "bb7fffffffffffffff",        // map announcing 2^63-1 entries
      "a1616101fc",                // reserved additional information (after the map: also trailing)
      "a16161fc",                  // reserved additional information
  };
  for (auto hex : bad) {
    std::string clean;
    for (char c : hex)
      if (c != ' ') clean += c;
    auto result = cbor::decode_map(text(from_hex(clean)));
    EXPECT_FALSE(result) << hex;
  }
}

TEST(Cbor, DepthAndSizeLimits) {
  // {"a": [[[[...]]]]} nested deeper than kMaxDepth.
  Bytes deep = from_hex("a16161");
  for (std::size_t i = 0; i < cbor::kMaxDepth + 1; ++i)
    deep.push_back(0x81);
  deep.push_back(0x01);
  EXPECT_FALSE(cbor::decode_map(text(deep)));
  Bytes shallow = from_hex("a16161");
  for (std::size_t i = 0; i < cbor::kMaxDepth - 1; ++i)
    shallow.push_back(0x81);
  shallow.push_back(0x01);
  EXPECT_TRUE(cbor::decode_map(text(shallow)));
  // Too many items: an array of kMaxItems zeros.
  Bytes many = from_hex(
      "a16161"
      "9a");
  for (int shift = 24; shift >= 0; shift -= 8)
    many.push_back(static_cast<std::uint8_t>(cbor::kMaxItems >> shift));
  many.insert(many.end(), cbor::kMaxItems, 0x00);
  EXPECT_FALSE(cbor::decode_map(text(many)));
  EXPECT_FALSE(cbor::decode_map(std::string(cbor::kMaxInputSize + 1, '\xa0')));
}

TEST(Cbor, RandomGarbageNeverCrashes) {
  std::mt19937 random(7);
  const std::string data = text(data_field(from_hex(kKuboRecord1)));
  ASSERT_TRUE(cbor::decode_map(data));  // the data field of the kubo record
  for (int round = 0; round < 20000; ++round) {
    std::string input = data;
    for (int flips = 0; flips < 2; ++flips)
      input[random() % input.size()] = static_cast<char>(random());
    if (round % 3 == 0) input.resize(random() % input.size());
    (void)cbor::decode_map(input);
  }
}

// ---- RecordStore -------------------------------------------------------------------------------

TEST(RecordStore, KeepsTheBestRecord) {
  const auto registry = NamespacedValidator::with_defaults();
  RecordStore store(registry);
  const auto key = test_key(9);
  const PeerId id = PeerId::from_public_key(key.public_key());
  const Bytes seq2 = make_record(key, 2, kNow + hours(48));
  const Bytes seq1 = make_record(key, 1, kNow + hours(48));
  const Bytes seq3 = make_record(key, 3, kNow + hours(48));

  ASSERT_TRUE(store.put(ipns_key(id), seq2, kNow));
  auto older = store.put(ipns_key(id), seq1, kNow);
  ASSERT_FALSE(older);
  EXPECT_NE(older.error().message.find("older"), std::string::npos);
  EXPECT_EQ(store.get(ipns_key(id), kNow)->value, seq2);
  EXPECT_TRUE(store.put(ipns_key(id), seq2, kNow + hours(1)));  // the same record refreshes
  EXPECT_EQ(store.get(ipns_key(id), kNow)->received, kNow + hours(1));
  ASSERT_TRUE(store.put(ipns_key(id), seq3, kNow));
  EXPECT_EQ(store.get(ipns_key(id), kNow)->value, seq3);
  EXPECT_EQ(store.size(), 1u);
  EXPECT_EQ(store.bytes(), ipns_key(id).size() + seq3.size());

  EXPECT_FALSE(store.put(raw("/v/x"), raw("y"), kNow));  // unknown namespace
  EXPECT_FALSE(store.put(ipns_key(id), raw("garbage"), kNow));
  EXPECT_FALSE(store.get(raw("/pk/none"), kNow).has_value());
}

TEST(RecordStore, ExpiresAfterMaxAgeAndEol) {
  const auto registry = NamespacedValidator::with_defaults();
  RecordStore store(registry);
  const auto key = test_key(10);
  const PeerId id = PeerId::from_public_key(key.public_key());
  ASSERT_TRUE(store.put(pk_key(id), key.public_key().protobuf(), kNow));
  EXPECT_TRUE(store.get(pk_key(id), kNow + kMaxRecordAge).has_value());
  EXPECT_FALSE(store.get(pk_key(id), kNow + kMaxRecordAge + seconds(1)).has_value());
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(store.bytes(), 0u);

  // An IPNS record past its EOL is gone even though it is younger than the max age.
  ASSERT_TRUE(store.put(ipns_key(id), make_record(key, 1, kNow + hours(1)), kNow));
  EXPECT_FALSE(store.get(ipns_key(id), kNow + hours(2)).has_value());

  // An expired stored record does not block a lower sequence.
  ASSERT_TRUE(store.put(ipns_key(id), make_record(key, 9, kNow + hours(100)), kNow));
  EXPECT_TRUE(store.put(ipns_key(id), make_record(key, 1, kNow + hours(100)),
                        kNow + kMaxRecordAge + hours(1)));

  store.expire(kNow + hours(1000));
  EXPECT_EQ(store.size(), 0u);
}

// Four test keys from `first_seed` on.
std::vector<PrivateKey> four_keys(std::uint8_t first_seed) {
  std::vector<PrivateKey> keys;
  for (std::uint8_t i = 0; i < 4; ++i)
    keys.push_back(test_key(static_cast<std::uint8_t>(first_seed + i)));
  return keys;
}

// Stores the /pk record of `key` (its public key under its peer ID).
Expected<void> put_pk_record(RecordStore& store, const PrivateKey& key, TimePoint now) {
  const PeerId id = PeerId::from_public_key(key.public_key());
  return store.put(pk_key(id), key.public_key().protobuf(), now);
}

TEST(RecordStore, CountAndByteLimits) {
  const auto registry = NamespacedValidator::with_defaults();
  RecordStoreLimits limits;
  limits.max_records = 3;
  RecordStore store(registry, limits);
  const auto keys = four_keys(20);
  const auto put_pk = [&](RecordStore& s, std::size_t i, TimePoint now) {
    return put_pk_record(s, keys[i], now);
  };
  for (std::size_t i = 0; i < 3; ++i)
    ASSERT_TRUE(put_pk(store, i, kNow));
  auto full = put_pk(store, 3, kNow);
  ASSERT_FALSE(full);
  EXPECT_NE(full.error().message.find("full"), std::string::npos);
  EXPECT_TRUE(put_pk(store, 0, kNow));  // replacing a held key is fine when full
  // Once the others expire there is room again.
  EXPECT_TRUE(put_pk(store, 3, kNow + kMaxRecordAge + seconds(1)));
  EXPECT_EQ(store.size(), 1u);

  RecordStoreLimits byte_limits;
  byte_limits.max_bytes = 2 * (4 + 38 + 36);  // two /pk records: key 4 + 38, value 36
  RecordStore small(registry, byte_limits);
  ASSERT_TRUE(put_pk(small, 0, kNow));
  ASSERT_TRUE(put_pk(small, 1, kNow));
  EXPECT_FALSE(put_pk(small, 2, kNow));
  EXPECT_EQ(small.bytes(), byte_limits.max_bytes);

  EXPECT_FALSE(store.put(Bytes(kMaxRecordKeySize + 1, '/'), raw("x"), kNow));
  EXPECT_FALSE(store.put(raw("/pk/x"), Bytes(kMaxRecordValueSize + 1, 0), kNow));
}

// A full store looks for expired records only when one may have expired, and then at most once
// per kMinPurgeInterval: a flood of refused records costs no scan each.
TEST(RecordStore, FullStorePurgesAtMostOncePerInterval) {
  const auto registry = NamespacedValidator::with_defaults();
  RecordStoreLimits limits;
  limits.max_records = 2;
  RecordStore store(registry, limits);
  const auto keys = four_keys(50);
  const auto put_pk = [&](std::size_t i, TimePoint now) {
    return put_pk_record(store, keys[i], now);
  };
  ASSERT_TRUE(put_pk(0, kNow));
  ASSERT_TRUE(put_pk(1, kNow + seconds(1)));
  const TimePoint first_gone = kNow + kMaxRecordAge + milliseconds(500);
  ASSERT_TRUE(put_pk(2, first_gone));  // purges record 0
  EXPECT_EQ(store.size(), 2u);
  // Record 1 is too old 1.5 s later, but the last purge was less than kMinPurgeInterval ago.
  EXPECT_FALSE(put_pk(3, first_gone + milliseconds(700)));
  EXPECT_TRUE(put_pk(3, first_gone + milliseconds(1100)));
  EXPECT_EQ(store.size(), 2u);
}

// ---- ProviderStore -----------------------------------------------------------------------------

Multiaddr address(std::string_view text_form) {
  auto parsed = Multiaddr::parse(text_form);
  EXPECT_TRUE(parsed.has_value());
  return parsed ? *parsed : Multiaddr();
}

TEST(ProviderStore, AddRefreshExpire) {
  ProviderStore store;
  const Bytes key = raw("some-multihash");
  const PeerId a = PeerId::from_public_key(test_key(30).public_key());
  const PeerId b = PeerId::from_public_key(test_key(31).public_key());
  ASSERT_TRUE(store.add(key, a, {address("/ip4/10.0.0.1/tcp/1")}, kNow));
  ASSERT_TRUE(store.add(key, b, {}, kNow + hours(1)));
  auto providers = store.get(key, kNow + hours(2));
  ASSERT_EQ(providers.size(), 2u);
  EXPECT_EQ(providers[0].id, b);  // the latest to expire first
  EXPECT_EQ(providers[1].addrs.size(), 1u);
  EXPECT_EQ(store.size(), 2u);

  // a expires 48 h after its add; refreshing a moves it.
  EXPECT_EQ(store.get(key, kNow + kProviderValidity).size(), 1u);
  EXPECT_EQ(store.size(), 1u);
  ASSERT_TRUE(store.add(key, a, {address("/ip4/10.0.0.9/tcp/9")}, kNow + hours(47)));
  providers = store.get(key, kNow + kProviderValidity + hours(2));
  ASSERT_EQ(providers.size(), 1u);
  EXPECT_EQ(providers[0].id, a);
  EXPECT_EQ(providers[0].addrs[0].to_string(), "/ip4/10.0.0.9/tcp/9");

  store.expire(kNow + hours(1000));
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(store.key_count(), 0u);
  EXPECT_TRUE(store.get(key, kNow).empty());
}

TEST(ProviderStore, Limits) {
  ProviderStoreLimits limits;
  limits.max_per_key = 2;
  limits.max_total = 3;
  ProviderStore store(limits);
  std::vector<PeerId> peers;
  for (std::uint8_t i = 0; i < 5; ++i)
    peers.push_back(
        PeerId::from_public_key(test_key(static_cast<std::uint8_t>(40 + i)).public_key()));
  const Bytes k1 = raw("k1"), k2 = raw("k2"), k3 = raw("k3");
  ASSERT_TRUE(store.add(k1, peers[0], {}, kNow));
  ASSERT_TRUE(store.add(k1, peers[1], {}, kNow + seconds(1)));
  ASSERT_TRUE(store.add(k1, peers[2], {}, kNow + seconds(2)));  // evicts peers[0]
  auto k1_providers = store.get(k1, kNow + seconds(3));
  ASSERT_EQ(k1_providers.size(), 2u);
  EXPECT_EQ(k1_providers[0].id, peers[2]);
  EXPECT_EQ(k1_providers[1].id, peers[1]);
  ASSERT_TRUE(store.add(k2, peers[3], {}, kNow));
  EXPECT_EQ(store.size(), 3u);
  auto full = store.add(k3, peers[4], {}, kNow);
  ASSERT_FALSE(full);
  EXPECT_NE(full.error().message.find("full"), std::string::npos);
  EXPECT_TRUE(store.add(k1, peers[1], {}, kNow));  // a refresh needs no room
  EXPECT_TRUE(store.add(k3, peers[4], {}, kNow + kProviderValidity + seconds(5)));  // purged

  std::vector<Multiaddr> many;
  for (std::size_t i = 0; i < kMaxProviderAddrs + 4; ++i)
    many.push_back(address("/ip4/10.0.0.1/tcp/" + std::to_string(i + 1)));
  ProviderStore roomy;
  ASSERT_TRUE(roomy.add(k1, peers[0], many, kNow));
  EXPECT_EQ(roomy.get(k1, kNow)[0].addrs.size(), kMaxProviderAddrs);
  EXPECT_FALSE(roomy.add({}, peers[0], {}, kNow));
  EXPECT_FALSE(roomy.add(Bytes(kMaxProviderKeySize + 1, 1), peers[0], {}, kNow));
}

TEST(ProviderStore, ByteLimitCountsKeysIdsAndAddresses) {
  const PeerId a = PeerId::from_public_key(test_key(60).public_key());
  const PeerId b = PeerId::from_public_key(test_key(61).public_key());
  const PeerId c = PeerId::from_public_key(test_key(62).public_key());
  const std::vector<Multiaddr> addrs = {address("/ip4/10.0.0.1/tcp/4001"),
                                        address("/ip6/2001:db8::1/udp/4001/quic-v1")};
  const Bytes k1 = raw("key-one"), k2 = raw("key-two"), k3 = raw("key-six");
  const std::size_t one = ProviderStore::footprint(k1.size(), a, addrs);
  EXPECT_GT(one, k1.size() + a.bytes().size() + addrs[0].to_bytes().size());
  ProviderStoreLimits limits;
  limits.max_bytes = 2 * one;
  ProviderStore store(limits);
  ASSERT_TRUE(store.add(k1, a, addrs, kNow));
  EXPECT_EQ(store.bytes(), one);
  ASSERT_TRUE(store.add(k2, b, addrs, kNow));
  EXPECT_EQ(store.bytes(), 2 * one);
  auto full = store.add(k3, c, addrs, kNow);
  ASSERT_FALSE(full);
  EXPECT_NE(full.error().message.find("full"), std::string::npos);
  // The addresses come back as they went in, from their binary form.
  auto held = store.get(k1, kNow);
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].addrs, addrs);
  store.expire(kNow + kProviderValidity);
  EXPECT_EQ(store.bytes(), 0u);
  EXPECT_EQ(store.size(), 0u);
}

TEST(ProviderStore, AddressesPastTheByteCapAreDropped) {
  const PeerId a = PeerId::from_public_key(test_key(63).public_key());
  std::vector<Multiaddr> long_addrs;
  for (int i = 0; i < 8; ++i) {
    const std::string label(60, static_cast<char>('a' + i));
    long_addrs.push_back(address("/dns4/" + label + "." + label + "." + label + ".example/tcp/1"));
  }
  const std::size_t packed_size = long_addrs[0].to_bytes().size() + 2;  // a 2-byte length
  const std::size_t fitting = kMaxProviderAddrBytes / packed_size;
  ASSERT_LT(fitting, long_addrs.size());
  ProviderStore store;
  ASSERT_TRUE(store.add(raw("k"), a, long_addrs, kNow));
  const auto held = store.get(raw("k"), kNow);
  ASSERT_EQ(held.size(), 1u);
  ASSERT_EQ(held[0].addrs.size(), fitting);
  for (std::size_t i = 0; i < fitting; ++i)
    EXPECT_EQ(held[0].addrs[i], long_addrs[i]);
}

TEST(ProviderStore, FullStorePurgesAtMostOncePerInterval) {
  ProviderStoreLimits limits;
  limits.max_total = 2;
  ProviderStore store(limits);
  std::vector<PeerId> peers;
  for (std::uint8_t i = 0; i < 4; ++i)
    peers.push_back(
        PeerId::from_public_key(test_key(static_cast<std::uint8_t>(70 + i)).public_key()));
  ASSERT_TRUE(store.add(raw("k0"), peers[0], {}, kNow));
  ASSERT_TRUE(store.add(raw("k1"), peers[1], {}, kNow + seconds(1)));
  // Nothing has expired: refused without a purge.
  EXPECT_FALSE(store.add(raw("k2"), peers[2], {}, kNow + seconds(2)));
  const TimePoint first_gone = kNow + kProviderValidity + milliseconds(500);
  ASSERT_TRUE(store.add(raw("k2"), peers[2], {}, first_gone));  // purges peers[0]
  EXPECT_EQ(store.key_count(), 2u);
  // peers[1] has expired 700 ms later, but the last purge was less than a second ago.
  EXPECT_FALSE(store.add(raw("k3"), peers[3], {}, first_gone + milliseconds(700)));
  EXPECT_TRUE(store.add(raw("k3"), peers[3], {}, first_gone + milliseconds(1100)));
  EXPECT_EQ(store.size(), 2u);
}

}  // namespace
}  // namespace an::p2p::kad
