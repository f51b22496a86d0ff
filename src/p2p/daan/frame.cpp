#include "p2p/daan/frame.h"

#include <array>
#include <optional>
#include <string>

namespace an::p2p::daan {
namespace {

constexpr std::string_view kBase64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::uint8_t kNotBase64 = 0xff;

constexpr std::array<std::uint8_t, 256> make_base64_values() {
  std::array<std::uint8_t, 256> values{};
  for (auto& value : values)
    value = kNotBase64;
  for (std::size_t i = 0; i < kBase64Alphabet.size(); ++i)
    values[static_cast<std::uint8_t>(kBase64Alphabet[i])] = static_cast<std::uint8_t>(i);
  return values;
}
constexpr std::array<std::uint8_t, 256> kBase64Values = make_base64_values();

std::size_t base64_size(std::size_t bytes) {
  return (bytes + 2) / 3 * 4;
}

void append_base64(Bytes& out, ByteView bytes) {
  // Sized once and written through a pointer: payloads run to megabytes.
  const std::size_t start = out.size();
  out.resize(start + base64_size(bytes.size()));
  std::uint8_t* write = out.data() + start;
  auto digit = [](std::uint32_t value) {
    return static_cast<std::uint8_t>(kBase64Alphabet[value & 0x3f]);
  };
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t group = (std::uint32_t{bytes[i]} << 16) |
                                (std::uint32_t{bytes[i + 1]} << 8) | std::uint32_t{bytes[i + 2]};
    write[0] = digit(group >> 18);
    write[1] = digit(group >> 12);
    write[2] = digit(group >> 6);
    write[3] = digit(group);
    write += 4;
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 0) return;
  std::uint32_t group = std::uint32_t{bytes[i]} << 16;
  if (rest == 2) group |= std::uint32_t{bytes[i + 1]} << 8;
  write[0] = digit(group >> 18);
  write[1] = digit(group >> 12);
  write[2] = rest == 2 ? digit(group >> 6) : '=';
  write[3] = '=';
}

// Go's base64.StdEncoding.Decode: padded standard base64; \r and \n anywhere are skipped;
// non-zero bits left over in the last group are accepted (Go's non-strict mode).
Expected<Bytes> decode_base64(ByteView text) {
  // Fast path: whole groups of four alphabet characters, which is all that Go writes before the
  // last group. The first group holding anything else ('=', a line break, a bad byte) hands
  // the rest to the careful loop below, which starts on a group boundary.
  Bytes out(text.size() / 4 * 3);
  std::size_t written = 0;
  std::size_t consumed = 0;
  const std::uint8_t* in = text.data();
  for (; consumed + 4 <= text.size(); consumed += 4) {
    const std::uint32_t a = kBase64Values[in[consumed]];
    const std::uint32_t b = kBase64Values[in[consumed + 1]];
    const std::uint32_t c = kBase64Values[in[consumed + 2]];
    const std::uint32_t d = kBase64Values[in[consumed + 3]];
    // Every value of the alphabet is below 64; kNotBase64 sets the high bits.
    if (((a | b | c | d) & 0xc0) != 0) break;
    const std::uint32_t group = a << 18 | b << 12 | c << 6 | d;
    out[written] = static_cast<std::uint8_t>(group >> 16);
    out[written + 1] = static_cast<std::uint8_t>(group >> 8);
    out[written + 2] = static_cast<std::uint8_t>(group);
    written += 3;
  }
  out.resize(written);
  std::array<std::uint8_t, 4> quantum{};
  std::size_t filled = 0;
  std::size_t padding = 0;
  for (std::uint8_t c : text.subspan(consumed)) {
    if (c == '\r' || c == '\n') continue;
    if (padding > 0 || c == '=') {
      // Padding only ends a group of two or three characters, and nothing follows it.
      if (c != '=' || filled + padding < 2 || filled + padding >= 4) {
        return fail("bad base64 in the payload");
      }
      ++padding;
      continue;
    }
    const std::uint8_t value = kBase64Values[c];
    if (value == kNotBase64) return fail("bad base64 in the payload");
    quantum[filled++] = value;
    if (filled == 4) {
      out.push_back(static_cast<std::uint8_t>(quantum[0] << 2 | quantum[1] >> 4));
      out.push_back(static_cast<std::uint8_t>(quantum[1] << 4 | quantum[2] >> 2));
      out.push_back(static_cast<std::uint8_t>(quantum[2] << 6 | quantum[3]));
      filled = 0;
    }
  }
  if (filled + padding != 0 && filled + padding != 4) return fail("bad base64 in the payload");
  if (filled >= 2) out.push_back(static_cast<std::uint8_t>(quantum[0] << 2 | quantum[1] >> 4));
  if (filled == 3) out.push_back(static_cast<std::uint8_t>(quantum[1] << 4 | quantum[2] >> 2));
  return out;
}

void append_text(Bytes& out, std::string_view text) {
  out.insert(out.end(), text.begin(), text.end());
}

// Go's json.Marshal of the struct: fields in declaration order, no whitespace, request_id left
// out when 0 (omitempty), a nil []byte as null, any other as standard padded base64, no
// trailing newline (that is json.Encoder's, not Marshal's).
void append_body(Bytes& out, const Frame& frame) {
  append_text(out, R"({"type":)");
  append_text(out, std::to_string(static_cast<unsigned>(frame.type)));
  if (frame.request_id != 0) {
    append_text(out, R"(,"request_id":)");
    append_text(out, std::to_string(frame.request_id));
  }
  append_text(out, R"(,"payload":)");
  if (frame.payload.empty()) {
    append_text(out, "null");
  } else {
    out.push_back('"');
    append_base64(out, frame.payload);
    out.push_back('"');
  }
  out.push_back('}');
}

void append_utf8(std::string& out, std::uint32_t code_point) {
  if (code_point < 0x80) {
    out += static_cast<char>(code_point);
  } else if (code_point < 0x800) {
    out += static_cast<char>(0xc0 | code_point >> 6);
    out += static_cast<char>(0x80 | (code_point & 0x3f));
  } else if (code_point < 0x10000) {
    out += static_cast<char>(0xe0 | code_point >> 12);
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (code_point & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | code_point >> 18);
    out += static_cast<char>(0x80 | ((code_point >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (code_point & 0x3f));
  }
}

enum class Field { kNone, kType, kRequestId, kPayload };

// Go matches a key to a field exactly or else by Unicode simple case folding (bytes.EqualFold).
// Beyond ASCII case, the only folds that reach the letters of these three names are U+017F
// (long s) to 's' and U+212A (Kelvin sign) to 'k'; no name has a 'k'.
Field field_of(std::string_view key) {
  std::string folded;
  folded.reserve(key.size());
  for (std::size_t i = 0; i < key.size(); ++i) {
    const char c = key[i];
    if (c >= 'A' && c <= 'Z') {
      folded += static_cast<char>(c - 'A' + 'a');
    } else if (key.substr(i, 2) == "\xc5\xbf") {  // U+017F
      folded += 's';
      ++i;
    } else {
      folded += c;
    }
  }
  if (folded == "type") return Field::kType;
  if (folded == "request_id") return Field::kRequestId;
  if (folded == "payload") return Field::kPayload;
  return Field::kNone;
}

// One pass over the body, validating it as Go's scanner does and storing the three fields as
// Go's decoder would.
class FrameParser {
 public:
  explicit FrameParser(ByteView json) : in_(json) {}

  Expected<Frame> parse() {
    skip_whitespace();
    if (literal_ahead("null")) {
      // Go leaves the struct as it is: type 0, refused below.
      pos_ += 4;
    } else if (peek() == '{') {
      if (auto parsed = parse_object(); !parsed) return tl::unexpected(parsed.error());
    } else {
      if (auto skipped = skip_value(0); !skipped) return tl::unexpected(skipped.error());
      return fail("frame is not a JSON object");
    }
    skip_whitespace();
    if (pos_ != in_.size()) return fail("trailing data after the frame's JSON object");
    if (type_ < 1 || type_ > 4) return fail("unknown frame type " + std::to_string(type_));
    Frame frame;
    frame.type = static_cast<FrameType>(type_);
    frame.request_id = request_id_;
    frame.payload = std::move(payload_);
    return frame;
  }

 private:
  int peek() const { return pos_ < in_.size() ? in_[pos_] : -1; }

  bool literal_ahead(std::string_view literal) const {
    if (in_.size() - pos_ < literal.size()) return false;
    for (std::size_t i = 0; i < literal.size(); ++i) {
      if (in_[pos_ + i] != static_cast<std::uint8_t>(literal[i])) return false;
    }
    return true;
  }

  void skip_whitespace() {
    while (pos_ < in_.size() &&
           (in_[pos_] == ' ' || in_[pos_] == '\t' || in_[pos_] == '\n' || in_[pos_] == '\r')) {
      ++pos_;
    }
  }

  static tl::unexpected<Error> syntax_error(const char* what) {
    return fail(std::string("invalid JSON in frame: ") + what);
  }

  Expected<void> parse_object() {
    ++pos_;  // '{'
    skip_whitespace();
    if (peek() == '}') {
      ++pos_;
      return {};
    }
    for (;;) {
      skip_whitespace();
      if (peek() != '"') return syntax_error("expected a key");
      auto key = read_string();
      if (!key) return tl::unexpected(key.error());
      skip_whitespace();
      if (peek() != ':') return syntax_error("expected ':'");
      ++pos_;
      skip_whitespace();
      Expected<void> stored;
      switch (field_of(*key)) {
        case Field::kType:
          stored = store_unsigned(
              "type", 255, [this](std::uint64_t value) { type_ = static_cast<unsigned>(value); });
          break;
        case Field::kRequestId:
          stored = store_unsigned("request_id", UINT64_MAX,
                                  [this](std::uint64_t value) { request_id_ = value; });
          break;
        case Field::kPayload:
          stored = store_payload();
          break;
        case Field::kNone:
          stored = skip_value(1);
          break;
      }
      if (!stored) return stored;
      skip_whitespace();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == '}') {
        ++pos_;
        return {};
      }
      return syntax_error("expected ',' or '}'");
    }
  }

  // A JSON string's contents, escapes decoded (a lone surrogate becomes U+FFFD, as in Go). The
  // raw span when it has no escapes, to spare a copy of a large payload.
  struct StringSpan {
    std::size_t begin = 0;
    std::size_t end = 0;
    bool escaped = false;
  };

  Expected<StringSpan> scan_string() {
    ++pos_;  // '"'
    StringSpan span{pos_, pos_, false};
    for (;;) {
      if (pos_ >= in_.size()) return syntax_error("unterminated string");
      const std::uint8_t c = in_[pos_];
      if (c == '"') {
        span.end = pos_++;
        return span;
      }
      if (c < 0x20) return syntax_error("control character in string");
      if (c == '\\') {
        span.escaped = true;
        if (pos_ + 1 >= in_.size()) return syntax_error("unterminated string");
        const std::uint8_t escape = in_[pos_ + 1];
        if (escape == 'u') {
          if (in_.size() - pos_ < 6) return syntax_error("unterminated string");
          for (std::size_t i = 2; i < 6; ++i) {
            if (!is_hex(in_[pos_ + i])) return syntax_error("bad \\u escape");
          }
          pos_ += 6;
          continue;
        }
        if (std::string_view("\"\\/bfnrt").find(static_cast<char>(escape)) ==
            std::string_view::npos) {
          return syntax_error("bad escape");
        }
        pos_ += 2;
        continue;
      }
      ++pos_;
    }
  }

  static bool is_hex(std::uint8_t c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  }
  static std::uint32_t hex_value(std::uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return c - 'A' + 10;
  }
  std::uint32_t read_hex4(std::size_t at) const {
    std::uint32_t value = 0;
    for (std::size_t i = 0; i < 4; ++i)
      value = value << 4 | hex_value(in_[at + i]);
    return value;
  }

  // Decodes a scanned string (its escapes were validated by scan_string).
  std::string unescape(const StringSpan& span) const {
    std::string out;
    out.reserve(span.end - span.begin);
    std::size_t i = span.begin;
    while (i < span.end) {
      const std::uint8_t c = in_[i];
      if (c != '\\') {
        out += static_cast<char>(c);
        ++i;
        continue;
      }
      const std::uint8_t escape = in_[i + 1];
      if (escape != 'u') {
        switch (escape) {
          case 'b':
            out += '\b';
            break;
          case 'f':
            out += '\f';
            break;
          case 'n':
            out += '\n';
            break;
          case 'r':
            out += '\r';
            break;
          case 't':
            out += '\t';
            break;
          default:
            out += static_cast<char>(escape);  // " \ /
        }
        i += 2;
        continue;
      }
      std::uint32_t code_point = read_hex4(i + 2);
      i += 6;
      if (code_point >= 0xd800 && code_point < 0xdc00) {
        // A high surrogate pairs with a following \uDC00..\uDFFF; alone it is U+FFFD.
        if (i + 6 <= span.end && in_[i] == '\\' && in_[i + 1] == 'u') {
          const std::uint32_t low = read_hex4(i + 2);
          if (low >= 0xdc00 && low < 0xe000) {
            code_point = 0x10000 + ((code_point - 0xd800) << 10) + (low - 0xdc00);
            i += 6;
          } else {
            code_point = 0xfffd;
          }
        } else {
          code_point = 0xfffd;
        }
      } else if (code_point >= 0xdc00 && code_point < 0xe000) {
        code_point = 0xfffd;
      }
      append_utf8(out, code_point);
    }
    return out;
  }

  Expected<std::string> read_string() {
    auto span = scan_string();
    if (!span) return tl::unexpected(span.error());
    if (!span->escaped) {
      return std::string(reinterpret_cast<const char*>(in_.data()) + span->begin,
                         span->end - span->begin);
    }
    return unescape(*span);
  }

  // Validates a number and returns its span.
  Expected<StringSpan> scan_number() {
    StringSpan span{pos_, pos_, false};
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;
    } else if (peek() >= '1' && peek() <= '9') {
      while (peek() >= '0' && peek() <= '9')
        ++pos_;
    } else {
      return syntax_error("bad number");
    }
    if (peek() == '.') {
      ++pos_;
      if (!(peek() >= '0' && peek() <= '9')) return syntax_error("bad number");
      while (peek() >= '0' && peek() <= '9')
        ++pos_;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!(peek() >= '0' && peek() <= '9')) return syntax_error("bad number");
      while (peek() >= '0' && peek() <= '9')
        ++pos_;
    }
    span.end = pos_;
    return span;
  }

  // Go's strconv.ParseUint(text, 10, 64) plus its overflow check against the field's type.
  std::optional<std::uint64_t> parse_unsigned(const StringSpan& span, std::uint64_t max) const {
    if (span.begin == span.end) return std::nullopt;
    std::uint64_t value = 0;
    for (std::size_t i = span.begin; i < span.end; ++i) {
      const std::uint8_t c = in_[i];
      if (c < '0' || c > '9') return std::nullopt;  // '-', '.', 'e': not an unsigned integer
      const std::uint64_t digit = c - '0';
      if (value > (max - digit) / 10) return std::nullopt;
      value = value * 10 + digit;
    }
    return value;
  }

  template <class Store>
  Expected<void> store_unsigned(const char* name, std::uint64_t max, Store store) {
    const int c = peek();
    if (c == '-' || (c >= '0' && c <= '9')) {
      auto span = scan_number();
      if (!span) return tl::unexpected(span.error());
      auto value = parse_unsigned(*span, max);
      if (!value) {
        return fail(std::string("frame field ") + name + " is not an integer 0.." +
                    std::to_string(max));
      }
      store(*value);
      return {};
    }
    if (literal_ahead("null")) {  // Go leaves a non-pointer field as it is
      pos_ += 4;
      return {};
    }
    if (auto skipped = skip_value(1); !skipped) return skipped;
    return fail(std::string("frame field ") + name + " is not a number");
  }

  Expected<void> store_payload() {
    if (peek() == '"') {
      auto span = scan_string();
      if (!span) return tl::unexpected(span.error());
      Expected<Bytes> decoded = [&] {
        if (!span->escaped) return decode_base64(in_.subspan(span->begin, span->end - span->begin));
        const std::string text = unescape(*span);
        return decode_base64(
            ByteView(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
      }();
      if (!decoded) return tl::unexpected(decoded.error());
      payload_ = std::move(*decoded);
      return {};
    }
    if (literal_ahead("null")) {  // Go sets a slice to nil
      pos_ += 4;
      payload_.clear();
      return {};
    }
    if (peek() == '[') return store_payload_array();
    if (auto skipped = skip_value(1); !skipped) return skipped;
    return fail("frame field payload is neither base64 text nor bytes");
  }

  // Go decodes a JSON array into a []byte element by element; a null element leaves the byte
  // that was there (zero for a new one).
  Expected<void> store_payload_array() {
    ++pos_;  // '['
    std::size_t count = 0;
    skip_whitespace();
    if (peek() == ']') {
      ++pos_;
      payload_.clear();
      return {};
    }
    for (;;) {
      skip_whitespace();
      if (count >= payload_.size()) payload_.push_back(0);
      const int c = peek();
      if (c == '-' || (c >= '0' && c <= '9')) {
        auto span = scan_number();
        if (!span) return tl::unexpected(span.error());
        auto value = parse_unsigned(*span, 255);
        if (!value) return fail("frame field payload has an element that is not a byte");
        payload_[count] = static_cast<std::uint8_t>(*value);
      } else if (literal_ahead("null")) {
        pos_ += 4;
      } else {
        if (auto skipped = skip_value(2); !skipped) return skipped;
        return fail("frame field payload has an element that is not a byte");
      }
      ++count;
      skip_whitespace();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == ']') {
        ++pos_;
        payload_.resize(count);
        return {};
      }
      return syntax_error("expected ',' or ']'");
    }
  }

  // Validates any JSON value; `depth` is the nesting of the container it is in.
  Expected<void> skip_value(std::size_t depth) {
    const int c = peek();
    if (c == '"') {
      auto span = scan_string();
      if (!span) return tl::unexpected(span.error());
      return {};
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      auto span = scan_number();
      if (!span) return tl::unexpected(span.error());
      return {};
    }
    for (std::string_view literal : {"true", "false", "null"}) {
      if (literal_ahead(literal)) {
        pos_ += literal.size();
        return {};
      }
    }
    if (c != '{' && c != '[') return syntax_error("expected a value");
    if (depth + 1 > kMaxJsonNesting) return fail("frame JSON nested too deeply");
    const char close = c == '{' ? '}' : ']';
    ++pos_;
    skip_whitespace();
    if (peek() == close) {
      ++pos_;
      return {};
    }
    for (;;) {
      skip_whitespace();
      if (close == '}') {
        if (peek() != '"') return syntax_error("expected a key");
        auto key = scan_string();
        if (!key) return tl::unexpected(key.error());
        skip_whitespace();
        if (peek() != ':') return syntax_error("expected ':'");
        ++pos_;
        skip_whitespace();
      }
      if (auto inner = skip_value(depth + 1); !inner) return inner;
      skip_whitespace();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == close) {
        ++pos_;
        return {};
      }
      return syntax_error("expected ',' or the end of a container");
    }
  }

  ByteView in_;
  std::size_t pos_ = 0;
  unsigned type_ = 0;
  std::uint64_t request_id_ = 0;
  Bytes payload_;
};

}  // namespace

std::size_t frame_body_size(const Frame& frame) {
  std::size_t size = std::string_view(R"({"type":)").size() +
                     std::to_string(static_cast<unsigned>(frame.type)).size() +
                     std::string_view(R"(,"payload":)").size() + 1;
  if (frame.request_id != 0) {
    size += std::string_view(R"(,"request_id":)").size() + std::to_string(frame.request_id).size();
  }
  size += frame.payload.empty() ? 4 : base64_size(frame.payload.size()) + 2;
  return size;
}

Bytes encode_frame_body(const Frame& frame) {
  Bytes out;
  out.reserve(frame_body_size(frame));
  append_body(out, frame);
  return out;
}

Bytes encode_frame(const Frame& frame) {
  const std::size_t body_size = frame_body_size(frame);
  Bytes out;
  out.reserve(kFrameLengthSize + body_size);
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<std::uint8_t>(body_size >> shift));
  append_body(out, frame);
  return out;
}

Expected<std::uint32_t> decode_frame_length(ByteView four_bytes) {
  if (four_bytes.size() != kFrameLengthSize) return fail("a frame length is 4 bytes");
  std::uint32_t length = 0;
  for (std::uint8_t byte : four_bytes)
    length = length << 8 | byte;
  if (length == 0) return fail("empty frame");
  if (length > kMaxFrameSize) {
    return fail("frame of " + std::to_string(length) + " bytes is over the limit of " +
                std::to_string(kMaxFrameSize));
  }
  return length;
}

Expected<Frame> decode_frame_body(ByteView json) {
  if (json.size() > kMaxFrameSize) return fail("frame over the size limit");
  return FrameParser(json).parse();
}

}  // namespace an::p2p::daan
