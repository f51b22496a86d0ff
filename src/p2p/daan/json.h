// The pieces of Go's encoding/json that the Go AgentNetwork's wire formats need (the /daan frames,
// the broadcast envelope): writing strings and []byte as json.Marshal does, and a reader that
// validates input as Go's scanner does and decodes values as Go's decoder stores them. Pure
// functions and a reader over a caller-owned buffer; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "util/bytes.h"
#include "util/expected.h"

namespace an::p2p::daan {

// Objects and arrays nested deeper than this are refused. Go's decoder allows 10000 levels; our
// formats are one flat object, and only unknown keys could nest, so a small cap refuses nothing
// a real sender writes and bounds the parser's work and stack.
inline constexpr std::size_t kMaxJsonNesting = 32;

namespace json {

// Standard padded base64, as json.Marshal writes a []byte.
std::size_t base64_size(std::size_t bytes);
void append_base64(Bytes& out, ByteView bytes);
// Go's base64.StdEncoding.Decode: padded standard base64; \r and \n anywhere are skipped;
// non-zero bits left over in the last group are accepted (Go's non-strict mode).
Expected<Bytes> decode_base64(ByteView text, std::string_view what);

// json.Marshal of a Go string (HTML-safe, as Marshal is): quotes added; ", \ and the control
// characters escaped (\b \f \n \r \t, the others as \u00xx); <, >, & as \u003c, \u003e, \u0026;
// U+2028 and U+2029 as \u2028, \u2029; each byte of invalid UTF-8 as \ufffd.
void append_string(Bytes& out, std::string_view text);

// Go's key matching: exact, or else equal under Unicode simple case folding (bytes.EqualFold).
// Folds ASCII letters to lower case and U+017F (long s) to 's', U+212A (Kelvin sign) to 'k':
// the only non-ASCII letters that fold to ASCII ones.
std::string fold_key(std::string_view key);

// A cursor over one JSON text. Errors name `context` ("frame", "broadcast envelope").
class Reader {
 public:
  Reader(ByteView in, std::string_view context) : in_(in), context_(context) {}

  int peek() const { return pos_ < in_.size() ? in_[pos_] : -1; }
  bool at_end() const { return pos_ == in_.size(); }
  void skip_whitespace();
  // Consumes `literal` when it comes next.
  bool take_literal(std::string_view literal);
  // Consumes `c` when it comes next.
  bool take(char c);

  tl::unexpected<Error> syntax_error(std::string_view what) const;
  tl::unexpected<Error> field_error(std::string_view field, std::string_view what) const;

  // A scanned string: its contents between the quotes, escapes not yet decoded.
  struct Span {
    std::size_t begin = 0;
    std::size_t end = 0;
    bool escaped = false;
  };
  Expected<Span> scan_string();
  ByteView raw(const Span& span) const { return in_.subspan(span.begin, span.end - span.begin); }
  // A scanned string as Go's decoder stores it: escapes decoded (a lone surrogate becomes
  // U+FFFD), each byte of invalid UTF-8 replaced by U+FFFD.
  std::string decode(const Span& span) const;
  Expected<std::string> read_string();

  Expected<Span> scan_number();
  // Go's strconv.ParseUint(text, 10, 64) plus its overflow check against the field's type.
  std::optional<std::uint64_t> parse_unsigned(const Span& number, std::uint64_t max) const;

  // Validates any JSON value; `depth` is the nesting of the container it is in.
  Expected<void> skip_value(std::size_t depth);

  // A whole JSON text as Go's Unmarshal into a struct takes it: `null` (the struct stays zero)
  // or an object whose members `on_member` reads, then nothing but whitespace. Anything else is
  // an error naming the context.
  template <class OnMember>
  Expected<void> read_document(OnMember on_member) {
    skip_whitespace();
    if (!take_literal("null")) {
      if (peek() != '{') {
        if (auto skipped = skip_value(0); !skipped) return skipped;
        return fail(std::string(context_) + " is not a JSON object");
      }
      if (auto parsed = read_object(on_member); !parsed) return parsed;
    }
    skip_whitespace();
    if (!at_end()) return fail("trailing data after the " + std::string(context_));
    return {};
  }

  // The members of an object (the cursor on its '{'): `on_member(key)` reads each value, the
  // cursor on its first character.
  template <class OnMember>
  Expected<void> read_object(OnMember on_member) {
    ++pos_;  // '{'
    skip_whitespace();
    if (take('}')) return {};
    for (;;) {
      skip_whitespace();
      if (peek() != '"') return syntax_error("expected a key");
      auto key = read_string();
      if (!key) return tl::unexpected(key.error());
      skip_whitespace();
      if (!take(':')) return syntax_error("expected ':'");
      skip_whitespace();
      if (auto stored = on_member(*key); !stored) return stored;
      skip_whitespace();
      if (take(',')) continue;
      if (take('}')) return {};
      return syntax_error("expected ',' or '}'");
    }
  }

  // A Go []byte field: base64 text, null (nil) or an array of byte values; `field` names it in
  // errors. `depth` is the nesting of the object the field is in.
  Expected<void> read_bytes(std::string_view field, std::size_t depth, Bytes& target);

 private:
  Expected<void> read_byte_array(std::string_view field, std::size_t depth, Bytes& target);
  std::uint32_t read_hex4(std::size_t at) const;

  ByteView in_;
  std::string_view context_;
  std::size_t pos_ = 0;
};

}  // namespace json
}  // namespace an::p2p::daan
