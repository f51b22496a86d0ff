// The /daan frame codec against the bytes the Go AgentNetwork's messenger writes and reads.
//
// How the vectors were derived, from Go's encoding/json rules for
//   type Message struct {
//     Type      MsgType `json:"type"`                  // type MsgType byte
//     RequestID uint64  `json:"request_id,omitempty"`
//     Payload   []byte  `json:"payload"`
//   }
// json.Marshal writes the fields in struct order; no whitespace anywhere; a byte-kind named type
// as a decimal number (only []byte is special-cased to base64); request_id left out when 0
// (omitempty); a []byte as standard base64 (RFC 4648 section 4 alphabet, '+' and '/', with '='
// padding; none of its characters is HTML-escaped) and a nil []byte as null; no trailing
// newline (json.Encoder adds one, Marshal does not). The base64 texts are RFC 4648's test
// vectors ("f" -> "Zg==", "fo" -> "Zm8=", "foo" -> "Zm9v") and Python's base64.b64encode of
// the other payloads. The messenger prefixes the JSON with binary.BigEndian.PutUint32 of its
// length and refuses a length over MaxMessageSize (16 MiB).
//
// json.Unmarshal into the struct: keys match fields exactly or case-insensitively (Unicode
// simple folding: U+017F folds to 's'), escapes in keys are decoded first, unknown keys are
// skipped, a later duplicate overwrites, null leaves a number as it was and sets a []byte to
// nil, a number field needs an integer literal within the type's range (strconv.ParseUint),
// a []byte takes base64 text (base64.StdEncoding.Decode: padded, skipping \r and \n) or an array
// of byte values, and the whole input must be one valid JSON value with only whitespace around.
#include "p2p/daan/frame.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "fuzz/harness/harness.h"

namespace an::p2p::daan {
namespace {

Bytes text(std::string_view value) {
  return Bytes(value.begin(), value.end());
}

std::string as_text(const Bytes& bytes) {
  return std::string(bytes.begin(), bytes.end());
}

Frame frame_of(FrameType type, std::uint64_t request_id, std::string_view payload) {
  return Frame{type, request_id, text(payload)};
}

Expected<Frame> decode(std::string_view json) {
  return decode_frame_body(text(json));
}

TEST(DaanFrameConstants, MatchTheGoMessenger) {
  EXPECT_EQ(kMessageProtocol, "/daan/message/1.0.0");
  EXPECT_EQ(kRequestProtocol, "/daan/request/1.0.0");
  EXPECT_EQ(kMaxFrameSize, 16u * 1024 * 1024);
  EXPECT_EQ(kMessageTimeout, std::chrono::seconds(10));
  EXPECT_EQ(kRequestTimeout, std::chrono::seconds(30));
  EXPECT_EQ(static_cast<int>(FrameType::kMessage), 1);
  EXPECT_EQ(static_cast<int>(FrameType::kRequest), 2);
  EXPECT_EQ(static_cast<int>(FrameType::kResponse), 3);
  EXPECT_EQ(static_cast<int>(FrameType::kError), 4);
}

TEST(DaanFrameEncode, WritesWhatGoMarshalWrites) {
  struct Vector {
    Frame frame;
    std::string json;
  };
  const Vector vectors[] = {
      // Message{Type: 1, Payload: []byte("hi")}: request_id omitted (0).
      {frame_of(FrameType::kMessage, 0, "hi"), R"({"type":1,"payload":"aGk="})"},
      // Message{Type: 2, RequestID: 7, Payload: []byte("hi")}
      {frame_of(FrameType::kRequest, 7, "hi"), R"({"type":2,"request_id":7,"payload":"aGk="})"},
      // Payload nil: null. RequestID the largest uint64, in full decimal.
      {frame_of(FrameType::kResponse, 18446744073709551615u, ""),
       R"({"type":3,"request_id":18446744073709551615,"payload":null})"},
      // What Go answers when no handler is set.
      {frame_of(FrameType::kError, 1, "no handler registered"),
       R"({"type":4,"request_id":1,"payload":"bm8gaGFuZGxlciByZWdpc3RlcmVk"})"},
      // RFC 4648's vectors: one and two padding characters, none.
      {frame_of(FrameType::kMessage, 0, "f"), R"({"type":1,"payload":"Zg=="})"},
      {frame_of(FrameType::kMessage, 0, "fo"), R"({"type":1,"payload":"Zm8="})"},
      {frame_of(FrameType::kMessage, 0, "foo"), R"({"type":1,"payload":"Zm9v"})"},
      // The standard alphabet ('+', '/'), not the URL one: 0xfb 0xff 0xbf.
      {Frame{FrameType::kMessage, 0, Bytes{0xfb, 0xff, 0xbf}}, R"({"type":1,"payload":"+/+/"})"},
  };
  for (const auto& vector : vectors) {
    const Bytes body = encode_frame_body(vector.frame);
    EXPECT_EQ(as_text(body), vector.json);
    EXPECT_EQ(frame_body_size(vector.frame), body.size());
    // The stream carries binary.BigEndian.PutUint32(len) and then the body.
    const Bytes framed = encode_frame(vector.frame);
    ASSERT_EQ(framed.size(), 4 + body.size());
    EXPECT_EQ(framed[0], 0);
    EXPECT_EQ(framed[1], 0);
    EXPECT_EQ(framed[2], 0);
    EXPECT_EQ(framed[3], body.size());
    EXPECT_EQ(Bytes(framed.begin() + 4, framed.end()), body);
    // And Go's Unmarshal of it gives the frame back.
    auto decoded = decode_frame_body(body);
    ASSERT_TRUE(decoded) << vector.json << ": " << decoded.error().message;
    EXPECT_EQ(*decoded, vector.frame);
  }
}

TEST(DaanFrameEncode, LengthPrefixIsBigEndian) {
  Frame frame{FrameType::kMessage, 0, Bytes(300, 0x61)};
  const Bytes framed = encode_frame(frame);
  const std::size_t body = framed.size() - 4;
  EXPECT_EQ(body, 400u + std::string_view(R"({"type":1,"payload":""})").size());
  EXPECT_EQ(framed[0], 0);
  EXPECT_EQ(framed[1], 0);
  EXPECT_EQ(framed[2], body >> 8);
  EXPECT_EQ(framed[3], body & 0xff);
  auto length = decode_frame_length(ByteView(framed).first(4));
  ASSERT_TRUE(length);
  EXPECT_EQ(*length, body);
}

TEST(DaanFrameEncode, LargestPayloadFitsTheFrameLimit) {
  Frame frame{FrameType::kResponse, UINT64_MAX, Bytes(kMaxPayloadSize, 0x5a)};
  EXPECT_LE(frame_body_size(frame), kMaxFrameSize);
  frame.payload.resize(kMaxPayloadSize + 3);
  EXPECT_GT(frame_body_size(frame), kMaxFrameSize);
}

TEST(DaanFrameDecode, AcceptsWhatGoUnmarshalAccepts) {
  // Other key order, whitespace of all four kinds around every token.
  auto reordered = decode(" \t\r\n{ \"payload\" : \"aGk=\" ,\n\"request_id\":9, \"type\" :2 }\n");
  ASSERT_TRUE(reordered) << reordered.error().message;
  EXPECT_EQ(*reordered, frame_of(FrameType::kRequest, 9, "hi"));

  // Unknown keys with any value, nested objects and arrays included.
  auto unknown =
      decode(R"({"from":"x","meta":{"a":[1,2,{"b":[true,false,null]}],"c":-1.5e3},"type":1,)"
             R"("list":[],"obj":{},"payload":"aGk="})");
  ASSERT_TRUE(unknown) << unknown.error().message;
  EXPECT_EQ(*unknown, frame_of(FrameType::kMessage, 0, "hi"));

  // Keys match case-insensitively, by Unicode folding too (U+017F is a long s), and escaped.
  auto folded = decode(R"({"TYPE":2,"Request_ID":3,"PayLoad":"aGk="})");
  ASSERT_TRUE(folded) << folded.error().message;
  EXPECT_EQ(*folded, frame_of(FrameType::kRequest, 3, "hi"));
  auto long_s = decode("{\"type\":2,\"reque\xc5\xbft_id\":4,\"payload\":null}");
  ASSERT_TRUE(long_s) << long_s.error().message;
  EXPECT_EQ(long_s->request_id, 4u);
  auto escaped_key = decode(R"({"\u0074ype":3,"request\u005fid":5})");
  ASSERT_TRUE(escaped_key) << escaped_key.error().message;
  EXPECT_EQ(*escaped_key, frame_of(FrameType::kResponse, 5, ""));
  // A key that only looks similar is unknown, and so skipped.
  auto other_key = decode(R"({"type":1,"requestid":5,"type ":4})");
  ASSERT_TRUE(other_key) << other_key.error().message;
  EXPECT_EQ(other_key->request_id, 0u);

  // Go's base64 decoder skips \r and \n anywhere (escaped in JSON), also between whole groups,
  // where the decoder leaves its fast path; padding of one and two characters.
  auto broken_lines = decode(R"({"type":1,"payload":"aGVsbG8g\r\nd29y\nbGQ="})");
  ASSERT_TRUE(broken_lines) << broken_lines.error().message;
  EXPECT_EQ(*broken_lines, frame_of(FrameType::kMessage, 0, "hello world"));
  auto two_pads = decode(R"({"type":1,"payload":"aGVsbG8gd29ybGQhIQ=="})");
  ASSERT_TRUE(two_pads) << two_pads.error().message;
  EXPECT_EQ(*two_pads, frame_of(FrameType::kMessage, 0, "hello world!!"));
  EXPECT_FALSE(decode(R"({"type":1,"payload":"aGVsbG8gd29y*GQ="})"));

  // payload null or missing, request_id missing: the zero values.
  EXPECT_EQ(decode(R"({"type":1,"payload":null})").value(), frame_of(FrameType::kMessage, 0, ""));
  EXPECT_EQ(decode(R"({"type":4})").value(), frame_of(FrameType::kError, 0, ""));
  EXPECT_EQ(decode(R"({"type":1,"payload":""})").value(), frame_of(FrameType::kMessage, 0, ""));

  // A later duplicate overwrites; null leaves a number as it was and empties the payload.
  EXPECT_EQ(decode(R"({"type":1,"type":3,"request_id":1,"request_id":2})").value(),
            frame_of(FrameType::kResponse, 2, ""));
  EXPECT_EQ(decode(R"({"type":2,"type":null,"request_id":6,"request_id":null})").value(),
            frame_of(FrameType::kRequest, 6, ""));
  EXPECT_EQ(decode(R"({"type":1,"payload":"aGk=","payload":null})").value(),
            frame_of(FrameType::kMessage, 0, ""));

  // Go's base64 decoder skips line breaks, also escaped ones, and ignores leftover bits.
  EXPECT_EQ(decode(R"({"type":1,"payload":"aG\r\nk=\n"})").value(),
            frame_of(FrameType::kMessage, 0, "hi"));
  EXPECT_EQ(decode(R"({"type":1,"payload":"\u0061Gk="})").value(),
            frame_of(FrameType::kMessage, 0, "hi"));
  EXPECT_EQ(decode(R"({"type":1,"payload":"aGl="})").value(),
            frame_of(FrameType::kMessage, 0, "hi"));

  // A []byte also decodes from an array of byte values.
  EXPECT_EQ(decode(R"({"type":1,"payload":[104, 105]})").value(),
            frame_of(FrameType::kMessage, 0, "hi"));
  EXPECT_EQ(decode(R"({"type":1,"payload":[]})").value(), frame_of(FrameType::kMessage, 0, ""));

  // The largest request_id, and integers written with -0 nowhere (see the refusals).
  EXPECT_EQ(decode(R"({"type":3,"request_id":18446744073709551615})")->request_id, UINT64_MAX);
  EXPECT_EQ(decode(R"({"type":3,"request_id":0})")->request_id, 0u);
}

TEST(DaanFrameDecode, RefusesWhatGoUnmarshalRefuses) {
  const char* const refused[] = {
      // Not an object at the top.
      "",
      "   ",
      "[]",
      "1",
      R"("type")",
      "true",
      // Invalid JSON.
      "{",
      R"({type:1})",
      R"({"type":1,})",
      R"({"type":1 "payload":null})",
      R"({"type":01})",
      R"({"type":1,"payload":"aGk=)",
      R"({"type":1,"payload":"a\qGk="})",
      R"({"type":1,"payload":"\u00G1"})",
      "{\"type\":1,\"payload\":\"a\x01Gk=\"}",
      // A raw line break inside a string is invalid JSON (only the escaped one is skipped).
      "{\"type\":1,\"payload\":\"aG\nk=\"}",
      R"({"type":1,"x":tru})",
      R"({"type":1,"x":[1,]})",
      R"({"type":1,"x":1.})",
      R"({"type":1,"x":-})",
      R"({'type':1})",
      // Trailing data after the object.
      R"({"type":1}x)",
      R"({"type":1}{})",
      R"({"type":1} 1)",
      // type: not an integer of a byte.
      R"({"type":"1"})",
      R"({"type":1.0})",
      R"({"type":1e0})",
      R"({"type":-1})",
      R"({"type":-0})",
      R"({"type":256})",
      R"({"type":true})",
      R"({"type":[1]})",
      R"({"type":{}})",
      // request_id: not an integer of a uint64.
      R"({"type":2,"request_id":-1})",
      R"({"type":2,"request_id":1.5})",
      R"({"type":2,"request_id":18446744073709551616})",
      R"({"type":2,"request_id":"7"})",
      // payload: neither base64 text nor bytes.
      R"({"type":1,"payload":"aGk"})",
      R"({"type":1,"payload":"aGk=aGk="})",
      R"({"type":1,"payload":"a==="})",
      R"({"type":1,"payload":"aGk=="})",
      R"({"type":1,"payload":"aG-_"})",
      R"({"type":1,"payload":"aG k="})",
      R"({"type":1,"payload":5})",
      R"({"type":1,"payload":{}})",
      R"({"type":1,"payload":true})",
      R"({"type":1,"payload":[256]})",
      R"({"type":1,"payload":[-1]})",
      R"({"type":1,"payload":["a"]})",
      R"({"type":1,"payload":[[1]]})",
  };
  for (const char* json : refused) {
    EXPECT_FALSE(decode(json).has_value()) << json;
  }
}

TEST(DaanFrameDecode, RefusesUnknownTypesMoreStrictlyThanGo) {
  // Go decodes any byte and treats an unknown type as a response; we accept only 1..4. A bare
  // `null` decodes to type 0 in Go, refused here for the same reason.
  for (const char* json : {R"({"type":0})", R"({"type":5})", R"({"type":255})", R"({})",
                           R"({"payload":"aGk="})", "null", " null "}) {
    auto decoded = decode(json);
    ASSERT_FALSE(decoded.has_value()) << json;
    EXPECT_NE(decoded.error().message.find("type"), std::string::npos) << json;
  }
}

TEST(DaanFrameDecode, RefusesNestingBeyondTheCap) {
  auto nested = [](std::size_t depth) {
    std::string json = R"({"type":1,"x":)";
    json += std::string(depth, '[');
    json += std::string(depth, ']');
    json += "}";
    return json;
  };
  // The frame's object is one level, so kMaxJsonNesting - 1 arrays fit inside it.
  EXPECT_TRUE(decode(nested(kMaxJsonNesting - 1)).has_value());
  EXPECT_FALSE(decode(nested(kMaxJsonNesting)).has_value());
  // A deep input is refused without recursing through it.
  EXPECT_FALSE(decode(nested(200000)).has_value());
}

TEST(DaanFrameLength, RefusesZeroOverTheCapAndShortInput) {
  EXPECT_EQ(decode_frame_length(Bytes{0, 0, 0, 1}).value(), 1u);
  EXPECT_EQ(decode_frame_length(Bytes{0x01, 0x00, 0x00, 0x00}).value(), kMaxFrameSize);
  EXPECT_FALSE(decode_frame_length(Bytes{0x01, 0x00, 0x00, 0x01}).has_value());
  EXPECT_FALSE(decode_frame_length(Bytes{0xff, 0xff, 0xff, 0xff}).has_value());
  EXPECT_FALSE(decode_frame_length(Bytes{0, 0, 0, 0}).has_value());
  EXPECT_FALSE(decode_frame_length(Bytes{0, 0, 1}).has_value());
  EXPECT_FALSE(decode_frame_length(Bytes{0, 0, 0, 1, 0}).has_value());
}

TEST(DaanFrameDecode, TruncatedFramesAreRefused) {
  const Bytes body = encode_frame_body(frame_of(FrameType::kRequest, 12, "hello, agent"));
  for (std::size_t cut = 0; cut < body.size(); ++cut) {
    EXPECT_FALSE(decode_frame_body(ByteView(body).first(cut)).has_value()) << cut;
  }
}

TEST(DaanFrameDecode, RoundTripsALargeBinaryPayload) {
  std::mt19937 random(17);
  Bytes payload(kMaxPayloadSize);
  for (auto& byte : payload)
    byte = static_cast<std::uint8_t>(random());
  const Frame frame{FrameType::kRequest, 99, payload};
  const Bytes framed = encode_frame(frame);
  ASSERT_LE(framed.size() - 4, kMaxFrameSize);
  auto length = decode_frame_length(ByteView(framed).first(4));
  ASSERT_TRUE(length);
  auto decoded = decode_frame_body(ByteView(framed).subspan(4));
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(*decoded, frame);
}

TEST(DaanFrameHostile, MutatedAndRandomFramesNeverCrash) {
  std::mt19937 random(23);
  std::uniform_int_distribution<int> byte(0, 255);
  const Bytes valid = encode_frame(frame_of(FrameType::kRequest, 77, "an agent's request"));
  // Characters that steer the parser into its branches more often than random bytes do.
  const std::string_view json_bytes = "{}[]\",:\\u0123456789-+.eE truefalsenull\n";
  for (int round = 0; round < 5000; ++round) {
    Bytes input = valid;
    const int flips = 1 + round % 6;
    for (int i = 0; i < flips; ++i) {
      const auto at = static_cast<std::size_t>(byte(random)) % input.size();
      input[at] = round % 2 == 0
                      ? static_cast<std::uint8_t>(byte(random))
                      : static_cast<std::uint8_t>(
                            json_bytes[static_cast<std::size_t>(byte(random)) % json_bytes.size()]);
    }
    if (round % 5 == 0) input.resize(static_cast<std::size_t>(byte(random)) % input.size());
    fuzz::daan_frame(input.data(), input.size());
    if (input.size() > 4) fuzz::daan_frame(input.data() + 4, input.size() - 4);
  }
  for (int round = 0; round < 2000; ++round) {
    Bytes input(static_cast<std::size_t>(byte(random)));
    for (auto& value : input)
      value = static_cast<std::uint8_t>(
          json_bytes[static_cast<std::size_t>(byte(random)) % json_bytes.size()]);
    fuzz::daan_frame(input.data(), input.size());
  }
  fuzz::daan_frame(nullptr, 0);
}

}  // namespace
}  // namespace an::p2p::daan
