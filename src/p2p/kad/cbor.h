// A minimal, strict DAG-CBOR reader and writer for the `data` map of IPNS records: a top-level map
// with text keys. Pure functions; any thread; results own their bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "p2p/multiformats/varint.h"
#include "util/expected.h"

namespace an::p2p::cbor {

// Hostile-input bounds. An IPNS record is at most 10 KiB, so its data map is smaller still.
inline constexpr std::size_t kMaxInputSize = 64 * 1024;
// Nesting of arrays and maps inside the values we skip (the top-level map is depth 1).
inline constexpr std::size_t kMaxDepth = 16;
// Data items in the whole document (keys, values and nested items).
inline constexpr std::size_t kMaxItems = 4096;

// What a top-level map value is. Nested arrays and maps, and 64-bit floats, are checked for
// well-formedness and reported as kOther: IPNS needs none of them.
enum class Kind : std::uint8_t { kUnsigned, kNegative, kBytes, kText, kBool, kNull, kOther };

struct Value {
  Kind kind = Kind::kNull;
  std::uint64_t number = 0;  // kUnsigned: the value; kNegative: the CBOR argument n (value -1-n)
  bool boolean = false;      // kBool
  std::string bytes;         // kBytes and kText
};

struct Entry {
  std::string key;
  Value value;
};

// Decodes a buffer holding exactly one map with text keys. Strict, as DAG-CBOR requires:
// definite lengths only, shortest-form heads, no duplicate keys, no tags, only false/true/null
// and 64-bit floats among the simple values, no bytes after the map. Map keys need not be in
// canonical order (go-ipld-prime's decoder does not insist on it either).
Expected<std::vector<Entry>> decode_map(std::string_view input);

// The entry with this key, if any.
const Value* find(const std::vector<Entry>& map, std::string_view key);

// A writer for the same subset: map header, then key/value pairs the caller writes in DAG-CBOR
// canonical order (shorter keys first, then bytewise).
class Writer {
 public:
  explicit Writer(Bytes& out) : out_(out) {}
  void map_header(std::uint64_t entries) { head(5, entries); }
  void text(std::string_view value);
  void bytes(std::string_view value);
  void unsigned_int(std::uint64_t value) { head(0, value); }

 private:
  void head(std::uint8_t major, std::uint64_t argument);
  Bytes& out_;
};

}  // namespace an::p2p::cbor
