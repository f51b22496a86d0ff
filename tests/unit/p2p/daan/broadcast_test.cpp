// The Go AgentNetwork's broadcast envelope against what Go's encoding/json writes and reads for
//   struct {
//     Topic     string    `json:"topic"`
//     Sender    peer.ID   `json:"sender"`
//     Timestamp time.Time `json:"timestamp"`
//     Payload   []byte    `json:"payload"`
//   }
//
// How the vectors were derived, rule by rule (each vector names its rule):
// [order]   json.Marshal writes struct fields in declaration order, no whitespace, no newline.
// [string]  encoding/json's appendString with escapeHTML (Marshal always escapes HTML): " and the
//           backslash escaped with a backslash; \b \f \n \r \t short (Go 1.22 and later; older Go
//           wrote \u0008 and \u000c, which decode the same); other bytes below 0x20 as \u00xx in
//           lower-case hex; <, >, & as \u003c, \u003e, \u0026; U+2028, U+2029 as \u2028, \u2029
//           (JSONP safety); each byte utf8.DecodeRuneInString reports invalid (size 1) as \ufffd;
//           DEL and valid non-ASCII UTF-8 written as they are.
// [peer]    peer.ID's MarshalJSON writes json.Marshal(id.String()), the base58 text; its
//           UnmarshalJSON unmarshals a string (null leaves it "") and calls peer.Decode, which
//           refuses "" and anything that is not a peer ID; a CID text decodes too.
// [time]    time.Time's MarshalJSON writes RFC3339Nano ("2006-01-02T15:04:05.999999999Z07:00"):
//           trailing zeros of the fraction trimmed, no '.' for whole seconds, "Z" for UTC.
//           UnmarshalJSON: "null" leaves the time as it is (zero: 0001-01-01T00:00:00Z), else
//           the raw bytes between the quotes (JSON escapes NOT decoded, go.dev/issue/47353) go
//           to parseStrictRFC3339: four-digit year, two-digit month/day/hour/minute/second in
//           range (day within its month, hour < 24, second < 60), upper-case 'T', an optional
//           '.' and digits (',' refused, more than 9 digits truncated), then 'Z' or ±hh:mm with
//           hh < 24 and mm < 60.
// [bytes]   a []byte marshals as standard padded base64, nil as null (an empty non-nil slice
//           as ""; our empty payload is written as nil); it unmarshals from base64 text
//           (base64.StdEncoding, skipping \r and \n), null, or an array of byte values.
// [decode]  json.Unmarshal: one JSON value with whitespace around; keys in any order, unknown
//           keys skipped, matched exactly or case-insensitively (U+017F folds to 's'); a later
//           duplicate wins; null into a string leaves it as it is; a value of the wrong type
//           is an error; invalid UTF-8 in a string becomes U+FFFD; a top-level null leaves the
//           struct zero.
// Base64 texts are Python's base64.b64encode of the payloads; times since the epoch are
// Python's datetime(...).timestamp().
#include "p2p/daan/broadcast.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "fuzz/harness/harness.h"
#include "p2p/daan/json.h"

namespace an::p2p::daan {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kPeer = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq";
// The same peer as a CIDv1 (libp2p-key, base32).
constexpr std::string_view kPeerCid =
    "bafzaajaiaejcahwr5d5ofrfbis4l5d6uwr57hu5tjodrypfm6yaq6dsc2r2pzyt6";
constexpr std::string_view kTime = "2024-05-06T07:08:09.123456789Z";

Bytes text(std::string_view value) {
  return Bytes(value.begin(), value.end());
}

std::string as_text(const Bytes& bytes) {
  return std::string(bytes.begin(), bytes.end());
}

BroadcastEnvelope envelope(std::string topic, std::string_view payload) {
  return {std::move(topic), std::string(kPeer), std::string(kTime), text(payload)};
}

Expected<BroadcastEnvelope> decode(std::string_view json) {
  return decode_broadcast(text(json));
}

// An envelope's JSON with `timestamp` as the raw JSON value of that key.
std::string with_timestamp(std::string_view raw) {
  return std::string(R"({"topic":"t","sender":")") + std::string(kPeer) + R"(","timestamp":)" +
         std::string(raw) + R"(,"payload":"aGk="})";
}

std::chrono::system_clock::time_point at(std::int64_t seconds, std::int64_t nanos = 0) {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::seconds(seconds) + std::chrono::nanoseconds(nanos)));
}

TEST(DaanBroadcastEncode, WritesWhatGoMarshalWrites) {
  struct Vector {
    BroadcastEnvelope envelope;
    std::string json;
  };
  const std::string peer(kPeer);
  const Vector vectors[] = {
      // [order] [peer] [time] [bytes]
      {envelope("news", "hello agents"),
       R"({"topic":"news","sender":")" + peer +
           R"(","timestamp":"2024-05-06T07:08:09.123456789Z","payload":"aGVsbG8gYWdlbnRz"})"},
      // [string] HTML-safe escaping.
      {envelope("a<b>&c", "hi"), R"({"topic":"a\u003cb\u003e\u0026c","sender":")" + peer +
                                     R"(","timestamp":")" + std::string(kTime) +
                                     R"(","payload":"aGk="})"},
      // [string] quote, backslash, short escapes, other control bytes, DEL as it is.
      {envelope("q\"b\\ \n\r\t\b\f\x01\x1f\x7f", "hi"),
       R"({"topic":"q\"b\\ \n\r\t\b\f\u0001\u001f)"
       "\x7f"
       R"(","sender":")" +
           peer + R"(","timestamp":")" + std::string(kTime) + R"(","payload":"aGk="})"},
      // [string] U+2028 and U+2029 escaped; other UTF-8 as it is; invalid bytes as \ufffd
      // (0xff alone; 0xe2 0x82 is a cut sequence: two invalid bytes).
      {envelope("\xe2\x80\xa8\xe2\x80\xa9 \xc3\xa9\xe6\x97\xa5\xf0\x9f\x8e\x89 a\xff"
                "b\xe2\x82",
                "hi"),
       R"({"topic":"\u2028\u2029 )"
       "\xc3\xa9\xe6\x97\xa5\xf0\x9f\x8e\x89"
       R"( a\ufffdb\ufffd\ufffd",)"
       R"("sender":")" +
           peer + R"(","timestamp":")" + std::string(kTime) + R"(","payload":"aGk="})"},
      // [bytes] a nil payload is null; [peer] an empty ID is "".
      {BroadcastEnvelope{"t", "", "0001-01-01T00:00:00Z", {}},
       R"({"topic":"t","sender":"","timestamp":"0001-01-01T00:00:00Z","payload":null})"},
      // [bytes] the standard alphabet and padding: 0xfb 0xff 0xbf, then "f".
      {BroadcastEnvelope{"t", peer, std::string(kTime), Bytes{0xfb, 0xff, 0xbf, 0x66}},
       R"({"topic":"t","sender":")" + peer + R"(","timestamp":")" + std::string(kTime) +
           R"(","payload":"+/+/Zg=="})"},
  };
  for (const auto& vector : vectors) {
    const Bytes json = encode_broadcast(vector.envelope);
    EXPECT_EQ(as_text(json), vector.json);
  }
}

TEST(DaanBroadcastEncode, TimeIsGoRfc3339Nano) {
  // [time] 2024-05-06T07:08:09Z is 1714979289 s after the epoch.
  EXPECT_EQ(go_rfc3339_nano(at(1714979289, 123456789)), "2024-05-06T07:08:09.123456789Z");
  EXPECT_EQ(go_rfc3339_nano(at(1714979289)), "2024-05-06T07:08:09Z");
  EXPECT_EQ(go_rfc3339_nano(at(1714979289, 500000000)), "2024-05-06T07:08:09.5Z");
  EXPECT_EQ(go_rfc3339_nano(at(1714979289, 120000000)), "2024-05-06T07:08:09.12Z");
  EXPECT_EQ(go_rfc3339_nano(at(1714979289, 1000)), "2024-05-06T07:08:09.000001Z");
  EXPECT_EQ(go_rfc3339_nano(at(1714979289, 1)), "2024-05-06T07:08:09.000000001Z");
  EXPECT_EQ(go_rfc3339_nano(at(0)), "1970-01-01T00:00:00Z");
  // A leap day (1709251199 s), a century leap year (951912000 s), before the epoch.
  EXPECT_EQ(go_rfc3339_nano(at(1709251199)), "2024-02-29T23:59:59Z");
  EXPECT_EQ(go_rfc3339_nano(at(951912000)), "2000-03-01T12:00:00Z");
  EXPECT_EQ(go_rfc3339_nano(at(-2208988800)), "1900-01-01T00:00:00Z");
  EXPECT_EQ(go_rfc3339_nano(at(0, -1)), "1969-12-31T23:59:59.999999999Z");
  // What we write, we read.
  const auto now = std::chrono::system_clock::now();
  EXPECT_TRUE(decode(with_timestamp("\"" + go_rfc3339_nano(now) + "\"")));
}

TEST(DaanBroadcastDecode, ReadsWhatGoWrites) {
  const BroadcastEnvelope original = envelope("a<b> \xe2\x80\xa8 \"q\" \xc3\xa9", "payload");
  auto decoded = decode_broadcast(encode_broadcast(original));
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(*decoded, original);
}

TEST(DaanBroadcastDecode, AcceptsWhatGoUnmarshalAccepts) {
  const std::string peer(kPeer);
  // [decode] other order, whitespace, unknown keys, case-folded keys (U+017F in "ſender").
  auto loose = decode(
      " {\n\"PAYLOAD\" : \"aGk=\", \"extra\": {\"a\":[1,{}]},\t\"Topic\":\"t\","
      " \"\xc5\xbf"
      "ender\":\"" +
      peer + "\", \"timeStamp\":\"" + std::string(kTime) + "\"}\r\n");
  ASSERT_TRUE(loose) << loose.error().message;
  EXPECT_EQ(*loose, envelope("t", "hi"));

  // [string] escapes decoded in the topic and in keys.
  auto escaped =
      decode(R"({"topic":"a\u003cb\ud83c\udf89\/\n","t\u006fpic2":1,"sender":")" + peer + R"("})");
  ASSERT_TRUE(escaped) << escaped.error().message;
  EXPECT_EQ(escaped->topic, "a<b\xf0\x9f\x8e\x89/\n");

  // [decode] invalid UTF-8 and a lone surrogate become U+FFFD.
  auto replaced = decode("{\"topic\":\"a\xff\\udc00\"}");
  ASSERT_TRUE(replaced) << replaced.error().message;
  EXPECT_EQ(replaced->topic, "a\xef\xbf\xbd\xef\xbf\xbd");

  // [decode] missing keys and nulls leave zero values; [time] null is the zero time.
  auto sparse = decode(R"({"topic":null,"timestamp":null,"payload":null})");
  ASSERT_TRUE(sparse) << sparse.error().message;
  EXPECT_EQ(*sparse, (BroadcastEnvelope{"", "", std::string(kGoZeroTime), {}}));
  auto empty = decode("{}");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->timestamp, kGoZeroTime);
  // [decode] a top-level null: every field zero.
  auto null = decode(" null ");
  ASSERT_TRUE(null);
  EXPECT_EQ(null->topic, "");

  // [decode] a later duplicate wins.
  auto duplicate = decode(R"({"topic":"first","topic":"second"})");
  ASSERT_TRUE(duplicate);
  EXPECT_EQ(duplicate->topic, "second");

  // [peer] a CID text is a peer ID too, kept as base58.
  auto cid = decode(R"({"sender":")" + std::string(kPeerCid) + R"("})");
  ASSERT_TRUE(cid) << cid.error().message;
  EXPECT_EQ(cid->sender, kPeer);

  // [bytes] "" and [] are empty, an array of bytes, base64 with escaped line breaks.
  for (std::string_view payload : {R"("")", "[]"}) {
    auto decoded = decode(R"({"payload":)" + std::string(payload) + "}");
    ASSERT_TRUE(decoded) << payload;
    EXPECT_TRUE(decoded->payload.empty());
  }
  auto array = decode(R"({"payload":[104, 105]})");
  ASSERT_TRUE(array);
  EXPECT_EQ(array->payload, text("hi"));
  auto broken = decode(R"({"payload":"aG\r\nk="})");
  ASSERT_TRUE(broken) << broken.error().message;
  EXPECT_EQ(broken->payload, text("hi"));
}

TEST(DaanBroadcastDecode, TimestampsAsGoStrictRfc3339) {
  // [time] accepted, kept as they came.
  for (std::string_view good :
       {"2024-05-06T07:08:09Z", "2024-05-06T07:08:09.5Z", "2024-05-06T07:08:09+05:30",
        "2024-05-06T07:08:09.123-08:00", "2024-05-06T07:08:09.1234567891234Z",
        "0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999+23:59", "2024-02-29T00:00:00Z",
        "2000-02-29T00:00:00Z"}) {
    auto decoded = decode(with_timestamp("\"" + std::string(good) + "\""));
    ASSERT_TRUE(decoded) << good << ": " << decoded.error().message;
    EXPECT_EQ(decoded->timestamp, good);
  }
  // [time] refused.
  for (std::string_view bad : {R"("2024-05-06 07:08:09Z")",       // space for 'T'
                               R"("2024-05-06t07:08:09Z")",       // lower-case 't'
                               R"("2024-05-06T07:08:09z")",       // lower-case 'z'
                               R"("2024-05-06T07:08:09")",        // no zone
                               R"("2024-05-06T07:08Z")",          // no seconds
                               R"("2024-02-30T00:00:00Z")",       // no such day
                               R"("2023-02-29T00:00:00Z")",       // not a leap year
                               R"("1900-02-29T00:00:00Z")",       // not a leap year (century)
                               R"("2024-13-01T00:00:00Z")",       // month 13
                               R"("2024-05-06T24:00:00Z")",       // hour 24
                               R"("2024-05-06T07:60:00Z")",       // minute 60
                               R"("2024-05-06T07:08:60Z")",       // leap second
                               R"("2024-05-06T7:08:09Z")",        // one-digit hour
                               R"("2024-05-06T07:08:09,5Z")",     // comma fraction
                               R"("2024-05-06T07:08:09.Z")",      // '.' without digits
                               R"("2024-05-06T07:08:09+24:00")",  // zone hour 24
                               R"("2024-05-06T07:08:09+05:60")",  // zone minute 60
                               R"("2024-05-06T07:08:09+0530")",   // zone without ':'
                               R"("2024-05-06T07:08:09Z ")",      // trailing space
                               R"("+2024-05-06T07:08:09Z")",      // signed year
                               R"("\u0032024-05-06T07:08:09Z")",  // escapes are not decoded
                               R"("")",
                               "1714979289",
                               "true",
                               "{}",
                               "[]"}) {
    auto decoded = decode(with_timestamp(bad));
    ASSERT_FALSE(decoded) << bad;
  }
}

TEST(DaanBroadcastDecode, RefusesWhatGoUnmarshalRefuses) {
  const std::string peer(kPeer);
  for (std::string json : {
           // [peer] null, "", not a peer ID, not a string.
           std::string(R"({"sender":null})"), std::string(R"({"sender":""})"),
           std::string(R"({"sender":"not-a-peer"})"), std::string(R"({"sender":12})"),
           // [decode] wrong types.
           std::string(R"({"topic":1})"), std::string(R"({"topic":["t"]})"),
           std::string(R"({"topic":true})"),
           // [bytes] bad base64, an element that is not a byte, an object.
           std::string(R"({"payload":"aGk"})"), std::string(R"({"payload":"a=Gk"})"),
           std::string(R"({"payload":[256]})"), std::string(R"({"payload":{}})"),
           // [decode] not one object.
           std::string(""), std::string("[]"), std::string(R"("text")"), std::string("{} {}"),
           std::string(R"({"topic":"t",})"), std::string(R"({"topic":"t")"),
           std::string(R"({topic:"t"})"),
           std::string("{\"topic\":\"a\x01\"}"),  // raw control byte in a string
       }) {
    EXPECT_FALSE(decode(json)) << json;
  }
  // Every proper prefix of an envelope is cut JSON.
  const Bytes whole = encode_broadcast(envelope("news", "hello agents"));
  for (std::size_t cut = 0; cut < whole.size(); ++cut) {
    EXPECT_FALSE(decode_broadcast(ByteView(whole).first(cut))) << cut;
  }
}

TEST(DaanBroadcastDecode, RefusesOversizedAndDeeplyNestedInput) {
  BroadcastEnvelope large = envelope("t", "");
  large.payload.assign(kMaxBroadcastSize, 0x61);
  EXPECT_FALSE(decode_broadcast(encode_broadcast(large)));
  large.payload.resize(kMaxBroadcastSize / 4 * 3 - 200);
  auto fits = decode_broadcast(encode_broadcast(large));
  ASSERT_TRUE(fits) << fits.error().message;
  EXPECT_EQ(fits->payload, large.payload);

  const std::string deep =
      R"({"x":)" + std::string(kMaxJsonNesting, '[') + std::string(kMaxJsonNesting, ']') + "}";
  EXPECT_FALSE(decode(deep));
  const std::string shallow = R"({"x":)" + std::string(kMaxJsonNesting - 1, '[') +
                              std::string(kMaxJsonNesting - 1, ']') + "}";
  EXPECT_TRUE(decode(shallow));
}

TEST(DaanBroadcastHostile, MutatedAndRandomEnvelopesNeverCrash) {
  std::mt19937 random(31);
  std::uniform_int_distribution<int> byte(0, 255);
  const Bytes valid = encode_broadcast(envelope("a<b>", "an agent's broadcast"));
  const std::string_view json_bytes = "{}[]\",:\\u0123456789-+.eEZT truefalsenull\n";
  for (int round = 0; round < 5000; ++round) {
    Bytes input = valid;
    for (int flips = 1 + round % 6; flips > 0; --flips) {
      const auto where = static_cast<std::size_t>(byte(random)) % input.size();
      input[where] =
          round % 2 == 0
              ? static_cast<std::uint8_t>(byte(random))
              : static_cast<std::uint8_t>(
                    json_bytes[static_cast<std::size_t>(byte(random)) % json_bytes.size()]);
    }
    if (round % 5 == 0) input.resize(static_cast<std::size_t>(byte(random)) % input.size());
    fuzz::daan_broadcast(input.data(), input.size());
  }
  for (int round = 0; round < 2000; ++round) {
    Bytes input(static_cast<std::size_t>(byte(random)));
    for (auto& value : input)
      value = static_cast<std::uint8_t>(
          json_bytes[static_cast<std::size_t>(byte(random)) % json_bytes.size()]);
    fuzz::daan_broadcast(input.data(), input.size());
  }
  fuzz::daan_broadcast(nullptr, 0);
}

}  // namespace
}  // namespace an::p2p::daan
