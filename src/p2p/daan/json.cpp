#include "p2p/daan/json.h"

#include <array>

namespace an::p2p::daan::json {
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

constexpr std::uint32_t kReplacementCharacter = 0xfffd;

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

struct Rune {
  std::uint32_t code_point = kReplacementCharacter;
  std::size_t size = 1;  // 1 with the replacement character: one invalid byte
};

// Go's utf8.DecodeRune of the bytes at `at`: a valid sequence, or one invalid byte (overlong
// forms, surrogates, values past U+10FFFF and cut sequences are invalid).
Rune decode_rune(const std::uint8_t* bytes, std::size_t size) {
  const std::uint8_t first = bytes[0];
  if (first < 0x80) return {first, 1};
  auto continuation = [&](std::size_t i, std::uint8_t low = 0x80, std::uint8_t high = 0xbf) {
    return i < size && bytes[i] >= low && bytes[i] <= high;
  };
  if (first >= 0xc2 && first <= 0xdf) {
    if (!continuation(1)) return {};
    return {static_cast<std::uint32_t>(first & 0x1f) << 6 | (bytes[1] & 0x3f), 2};
  }
  if (first >= 0xe0 && first <= 0xef) {
    const std::uint8_t low = first == 0xe0 ? 0xa0 : 0x80;
    const std::uint8_t high = first == 0xed ? 0x9f : 0xbf;
    if (!continuation(1, low, high) || !continuation(2)) return {};
    return {static_cast<std::uint32_t>(first & 0x0f) << 12 |
                static_cast<std::uint32_t>(bytes[1] & 0x3f) << 6 | (bytes[2] & 0x3f),
            3};
  }
  if (first >= 0xf0 && first <= 0xf4) {
    const std::uint8_t low = first == 0xf0 ? 0x90 : 0x80;
    const std::uint8_t high = first == 0xf4 ? 0x8f : 0xbf;
    if (!continuation(1, low, high) || !continuation(2) || !continuation(3)) return {};
    return {static_cast<std::uint32_t>(first & 0x07) << 18 |
                static_cast<std::uint32_t>(bytes[1] & 0x3f) << 12 |
                static_cast<std::uint32_t>(bytes[2] & 0x3f) << 6 | (bytes[3] & 0x3f),
            4};
  }
  return {};
}

bool is_hex(std::uint8_t c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

std::uint32_t hex_value(std::uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

void append_text(Bytes& out, std::string_view text) {
  out.insert(out.end(), text.begin(), text.end());
}

}  // namespace

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

Expected<Bytes> decode_base64(ByteView text, std::string_view what) {
  const auto bad = [&] { return fail("bad base64 in the " + std::string(what)); };
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
      if (c != '=' || filled + padding < 2 || filled + padding >= 4) return bad();
      ++padding;
      continue;
    }
    const std::uint8_t value = kBase64Values[c];
    if (value == kNotBase64) return bad();
    quantum[filled++] = value;
    if (filled == 4) {
      out.push_back(static_cast<std::uint8_t>(quantum[0] << 2 | quantum[1] >> 4));
      out.push_back(static_cast<std::uint8_t>(quantum[1] << 4 | quantum[2] >> 2));
      out.push_back(static_cast<std::uint8_t>(quantum[2] << 6 | quantum[3]));
      filled = 0;
    }
  }
  if (filled + padding != 0 && filled + padding != 4) return bad();
  if (filled >= 2) out.push_back(static_cast<std::uint8_t>(quantum[0] << 2 | quantum[1] >> 4));
  if (filled == 3) out.push_back(static_cast<std::uint8_t>(quantum[1] << 4 | quantum[2] >> 2));
  return out;
}

void append_string(Bytes& out, std::string_view text) {
  constexpr std::string_view kHex = "0123456789abcdef";
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(text.data());
  out.push_back('"');
  std::size_t i = 0;
  while (i < text.size()) {
    const std::uint8_t c = bytes[i];
    if (c >= 0x80) {
      const Rune rune = decode_rune(bytes + i, text.size() - i);
      if (rune.size == 1) {
        append_text(out, "\\ufffd");
      } else if (rune.code_point == 0x2028 || rune.code_point == 0x2029) {
        append_text(out, rune.code_point == 0x2028 ? "\\u2028" : "\\u2029");
      } else {
        out.insert(out.end(), bytes + i, bytes + i + rune.size);
      }
      i += rune.size;
      continue;
    }
    switch (c) {
      case '"':
      case '\\':
        out.push_back('\\');
        out.push_back(c);
        break;
      case '\b':
        append_text(out, "\\b");
        break;
      case '\f':
        append_text(out, "\\f");
        break;
      case '\n':
        append_text(out, "\\n");
        break;
      case '\r':
        append_text(out, "\\r");
        break;
      case '\t':
        append_text(out, "\\t");
        break;
      default:
        if (c < 0x20 || c == '<' || c == '>' || c == '&') {
          append_text(out, "\\u00");
          out.push_back(static_cast<std::uint8_t>(kHex[c >> 4]));
          out.push_back(static_cast<std::uint8_t>(kHex[c & 0x0f]));
        } else {
          out.push_back(c);
        }
    }
    ++i;
  }
  out.push_back('"');
}

std::string fold_key(std::string_view key) {
  std::string folded;
  folded.reserve(key.size());
  for (std::size_t i = 0; i < key.size(); ++i) {
    const char c = key[i];
    if (c >= 'A' && c <= 'Z') {
      folded += static_cast<char>(c - 'A' + 'a');
    } else if (key.substr(i, 2) == "\xc5\xbf") {  // U+017F
      folded += 's';
      ++i;
    } else if (key.substr(i, 3) == "\xe2\x84\xaa") {  // U+212A
      folded += 'k';
      i += 2;
    } else {
      folded += c;
    }
  }
  return folded;
}

void Reader::skip_whitespace() {
  while (pos_ < in_.size() &&
         (in_[pos_] == ' ' || in_[pos_] == '\t' || in_[pos_] == '\n' || in_[pos_] == '\r')) {
    ++pos_;
  }
}

bool Reader::take_literal(std::string_view literal) {
  if (in_.size() - pos_ < literal.size()) return false;
  for (std::size_t i = 0; i < literal.size(); ++i) {
    if (in_[pos_ + i] != static_cast<std::uint8_t>(literal[i])) return false;
  }
  pos_ += literal.size();
  return true;
}

bool Reader::take(char c) {
  if (peek() != static_cast<std::uint8_t>(c)) return false;
  ++pos_;
  return true;
}

tl::unexpected<Error> Reader::syntax_error(std::string_view what) const {
  return fail("invalid JSON in " + std::string(context_) + ": " + std::string(what));
}

tl::unexpected<Error> Reader::field_error(std::string_view field, std::string_view what) const {
  return fail(std::string(context_) + " field " + std::string(field) + " " + std::string(what));
}

Expected<Reader::Span> Reader::scan_string() {
  ++pos_;  // '"'
  Span span{pos_, pos_, false};
  for (;;) {
    if (pos_ >= in_.size()) return syntax_error("unterminated string");
    const std::uint8_t c = in_[pos_];
    if (c == '"') {
      span.end = pos_++;
      return span;
    }
    if (c < 0x20) return syntax_error("control character in string");
    if (c >= 0x80) span.escaped = true;  // may need U+FFFD for invalid UTF-8
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

std::uint32_t Reader::read_hex4(std::size_t at) const {
  std::uint32_t value = 0;
  for (std::size_t i = 0; i < 4; ++i)
    value = value << 4 | hex_value(in_[at + i]);
  return value;
}

std::string Reader::decode(const Span& span) const {
  if (!span.escaped) {
    return std::string(reinterpret_cast<const char*>(in_.data()) + span.begin,
                       span.end - span.begin);
  }
  std::string out;
  out.reserve(span.end - span.begin);
  std::size_t i = span.begin;
  while (i < span.end) {
    const std::uint8_t c = in_[i];
    if (c >= 0x80) {
      const Rune rune = decode_rune(in_.data() + i, span.end - i);
      if (rune.size == 1) {
        append_utf8(out, kReplacementCharacter);
      } else {
        out.append(reinterpret_cast<const char*>(in_.data()) + i, rune.size);
      }
      i += rune.size;
      continue;
    }
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
          code_point = kReplacementCharacter;
        }
      } else {
        code_point = kReplacementCharacter;
      }
    } else if (code_point >= 0xdc00 && code_point < 0xe000) {
      code_point = kReplacementCharacter;
    }
    append_utf8(out, code_point);
  }
  return out;
}

Expected<std::string> Reader::read_string() {
  auto span = scan_string();
  if (!span) return tl::unexpected(span.error());
  return decode(*span);
}

Expected<Reader::Span> Reader::scan_number() {
  Span span{pos_, pos_, false};
  auto digit = [this] { return peek() >= '0' && peek() <= '9'; };
  take('-');
  if (!take('0')) {
    // No leading zeros: a 0 is the whole integer part.
    if (!digit()) return syntax_error("bad number");
    while (digit())
      ++pos_;
  }
  if (take('.')) {
    if (!digit()) return syntax_error("bad number");
    while (digit())
      ++pos_;
  }
  if (take('e') || take('E')) {
    if (!take('+')) take('-');
    if (!digit()) return syntax_error("bad number");
    while (digit())
      ++pos_;
  }
  span.end = pos_;
  return span;
}

std::optional<std::uint64_t> Reader::parse_unsigned(const Span& number, std::uint64_t max) const {
  if (number.begin == number.end) return std::nullopt;
  std::uint64_t value = 0;
  for (std::size_t i = number.begin; i < number.end; ++i) {
    const std::uint8_t c = in_[i];
    if (c < '0' || c > '9') return std::nullopt;  // '-', '.', 'e': not an unsigned integer
    const std::uint64_t digit = c - '0';
    if (value > (max - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

Expected<void> Reader::skip_value(std::size_t depth) {
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
    if (take_literal(literal)) return {};
  }
  if (c != '{' && c != '[') return syntax_error("expected a value");
  if (depth + 1 > kMaxJsonNesting) return fail(std::string(context_) + " JSON nested too deeply");
  const char close = c == '{' ? '}' : ']';
  ++pos_;
  skip_whitespace();
  if (take(close)) return {};
  for (;;) {
    skip_whitespace();
    if (close == '}') {
      if (peek() != '"') return syntax_error("expected a key");
      auto key = scan_string();
      if (!key) return tl::unexpected(key.error());
      skip_whitespace();
      if (!take(':')) return syntax_error("expected ':'");
      skip_whitespace();
    }
    if (auto inner = skip_value(depth + 1); !inner) return inner;
    skip_whitespace();
    if (take(',')) continue;
    if (take(close)) return {};
    return syntax_error("expected ',' or the end of a container");
  }
}

Expected<void> Reader::read_bytes(std::string_view field, std::size_t depth, Bytes& target) {
  if (peek() == '"') {
    auto span = scan_string();
    if (!span) return tl::unexpected(span.error());
    Expected<Bytes> decoded = [&] {
      if (!span->escaped) return decode_base64(raw(*span), field);
      const std::string text = decode(*span);
      return decode_base64(
          ByteView(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()), field);
    }();
    if (!decoded) return tl::unexpected(decoded.error());
    target = std::move(*decoded);
    return {};
  }
  if (take_literal("null")) {  // Go sets a slice to nil
    target.clear();
    return {};
  }
  if (peek() == '[') return read_byte_array(field, depth, target);
  if (auto skipped = skip_value(depth); !skipped) return skipped;
  return field_error(field, "is neither base64 text nor bytes");
}

// Go decodes a JSON array into a []byte element by element; a null element leaves the byte
// that was there (zero for a new one).
Expected<void> Reader::read_byte_array(std::string_view field, std::size_t depth, Bytes& target) {
  ++pos_;  // '['
  std::size_t count = 0;
  skip_whitespace();
  if (take(']')) {
    target.clear();
    return {};
  }
  for (;;) {
    skip_whitespace();
    if (count >= target.size()) target.push_back(0);
    const int c = peek();
    if (c == '-' || (c >= '0' && c <= '9')) {
      auto span = scan_number();
      if (!span) return tl::unexpected(span.error());
      auto value = parse_unsigned(*span, 255);
      if (!value) return field_error(field, "has an element that is not a byte");
      target[count] = static_cast<std::uint8_t>(*value);
    } else if (!take_literal("null")) {
      if (auto skipped = skip_value(depth + 1); !skipped) return skipped;
      return field_error(field, "has an element that is not a byte");
    }
    ++count;
    skip_whitespace();
    if (take(',')) continue;
    if (take(']')) {
      target.resize(count);
      return {};
    }
    return syntax_error("expected ',' or ']'");
  }
}

}  // namespace an::p2p::daan::json
