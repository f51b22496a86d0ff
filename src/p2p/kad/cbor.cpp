#include "p2p/kad/cbor.h"

#include <algorithm>

namespace an::p2p::cbor {
namespace {

// Major types (RFC 8949 §3.1).
constexpr std::uint8_t kMajorUnsigned = 0;
constexpr std::uint8_t kMajorNegative = 1;
constexpr std::uint8_t kMajorBytes = 2;
constexpr std::uint8_t kMajorText = 3;
constexpr std::uint8_t kMajorArray = 4;
constexpr std::uint8_t kMajorMap = 5;
constexpr std::uint8_t kMajorTag = 6;
constexpr std::uint8_t kMajorSimple = 7;
// Additional information values.
constexpr std::uint8_t kInfoOneByte = 24;
constexpr std::uint8_t kInfoEightBytes = 27;
constexpr std::uint8_t kInfoIndefinite = 31;
constexpr std::uint8_t kSimpleFalse = 20;
constexpr std::uint8_t kSimpleTrue = 21;
constexpr std::uint8_t kSimpleNull = 22;

class Reader {
 public:
  explicit Reader(std::string_view input) : rest_(input) {}

  struct Head {
    std::uint8_t major = 0;
    std::uint8_t info = 0;
    std::uint64_t argument = 0;
  };

  Expected<Head> head() {
    if (++items_ > kMaxItems)
      return fail("cbor: more than " + std::to_string(kMaxItems) + " items");
    if (rest_.empty()) return fail("cbor: truncated");
    const auto first = static_cast<std::uint8_t>(rest_.front());
    rest_.remove_prefix(1);
    Head h{static_cast<std::uint8_t>(first >> 5), static_cast<std::uint8_t>(first & 0x1F), 0};
    if (h.info < kInfoOneByte) {
      h.argument = h.info;
      return h;
    }
    if (h.info == kInfoIndefinite) return fail("cbor: indefinite lengths are not allowed");
    if (h.info > kInfoEightBytes) return fail("cbor: reserved additional information value");
    const std::size_t width = std::size_t{1} << (h.info - kInfoOneByte);  // 1, 2, 4 or 8
    if (rest_.size() < width) return fail("cbor: truncated");
    for (std::size_t i = 0; i < width; ++i)
      h.argument = (h.argument << 8) | static_cast<std::uint8_t>(rest_[i]);
    rest_.remove_prefix(width);
    // 64-bit floats carry their bits in the argument; anything else must be in shortest form.
    if (h.major == kMajorSimple) return h;
    const std::uint64_t floor = width == 1 ? kInfoOneByte : std::uint64_t{1} << (4 * width);
    if (h.argument < floor) return fail("cbor: integer or length not in its shortest form");
    return h;
  }

  Expected<std::string> string_body(std::uint64_t length) {
    if (length > rest_.size()) return fail("cbor: string longer than the input");
    std::string value(rest_.substr(0, static_cast<std::size_t>(length)));
    rest_.remove_prefix(static_cast<std::size_t>(length));
    return value;
  }

  // One complete data item, kind and scalar value reported; nested items only checked.
  Expected<Value> item(std::size_t depth) {
    auto h = head();
    if (!h) return tl::unexpected(h.error());
    Value value;
    switch (h->major) {
      case kMajorUnsigned:
        value.kind = Kind::kUnsigned;
        value.number = h->argument;
        return value;
      case kMajorNegative:
        value.kind = Kind::kNegative;
        value.number = h->argument;
        return value;
      case kMajorBytes:
      case kMajorText: {
        auto body = string_body(h->argument);
        if (!body) return tl::unexpected(body.error());
        value.kind = h->major == kMajorBytes ? Kind::kBytes : Kind::kText;
        value.bytes = std::move(*body);
        return value;
      }
      case kMajorArray:
      case kMajorMap: {
        if (depth + 1 > kMaxDepth)
          return fail("cbor: nested deeper than " + std::to_string(kMaxDepth));
        const std::uint64_t count = h->major == kMajorMap ? h->argument * 2 : h->argument;
        if (h->argument > rest_.size()) return fail("cbor: more items announced than bytes left");
        for (std::uint64_t i = 0; i < count; ++i) {
          auto nested = item(depth + 1);
          if (!nested) return tl::unexpected(nested.error());
        }
        value.kind = Kind::kOther;
        return value;
      }
      case kMajorTag:
        return fail("cbor: tags are not supported");
      default:  // kMajorSimple
        if (h->info == kInfoEightBytes) {
          value.kind = Kind::kOther;  // 64-bit float
          return value;
        }
        if (h->info == kSimpleFalse || h->info == kSimpleTrue) {
          value.kind = Kind::kBool;
          value.boolean = h->info == kSimpleTrue;
          return value;
        }
        if (h->info == kSimpleNull) {
          value.kind = Kind::kNull;
          return value;
        }
        return fail("cbor: simple value or float width not allowed in DAG-CBOR");
    }
  }

  bool at_end() const { return rest_.empty(); }
  std::size_t remaining() const { return rest_.size(); }

 private:
  std::string_view rest_;
  std::size_t items_ = 0;
};

}  // namespace

Expected<std::vector<Entry>> decode_map(std::string_view input) {
  if (input.size() > kMaxInputSize) {
    return fail("cbor: input of " + std::to_string(input.size()) + " bytes exceeds the limit of " +
                std::to_string(kMaxInputSize));
  }
  Reader reader(input);
  auto h = reader.head();
  if (!h) return tl::unexpected(h.error());
  if (h->major != kMajorMap) return fail("cbor: not a map");
  // Every entry takes at least two bytes.
  if (h->argument > reader.remaining() / 2)
    return fail("cbor: more entries announced than bytes left");
  std::vector<Entry> entries;
  entries.reserve(static_cast<std::size_t>(h->argument));
  for (std::uint64_t i = 0; i < h->argument; ++i) {
    auto key_head = reader.head();
    if (!key_head) return tl::unexpected(key_head.error());
    if (key_head->major != kMajorText) return fail("cbor: map key is not a text string");
    auto key = reader.string_body(key_head->argument);
    if (!key) return tl::unexpected(key.error());
    if (find(entries, *key) != nullptr) return fail("cbor: duplicate map key \"" + *key + "\"");
    auto value = reader.item(1);
    if (!value) return tl::unexpected(value.error());
    entries.push_back(Entry{std::move(*key), std::move(*value)});
  }
  if (!reader.at_end()) return fail("cbor: bytes after the map");
  return entries;
}

const Value* find(const std::vector<Entry>& map, std::string_view key) {
  auto it = std::find_if(map.begin(), map.end(), [key](const Entry& e) { return e.key == key; });
  return it == map.end() ? nullptr : &it->value;
}

void Writer::head(std::uint8_t major, std::uint64_t argument) {
  const auto type = static_cast<std::uint8_t>(major << 5);
  if (argument < kInfoOneByte) {
    out_.push_back(static_cast<std::uint8_t>(type | argument));
    return;
  }
  std::size_t width = 8;
  std::uint8_t info = kInfoEightBytes;
  if (argument <= 0xFF) {
    width = 1;
    info = kInfoOneByte;
  } else if (argument <= 0xFFFF) {
    width = 2;
    info = kInfoOneByte + 1;
  } else if (argument <= 0xFFFFFFFFu) {
    width = 4;
    info = kInfoOneByte + 2;
  }
  out_.push_back(static_cast<std::uint8_t>(type | info));
  for (std::size_t i = width; i-- > 0;)
    out_.push_back(static_cast<std::uint8_t>(argument >> (8 * i)));
}

void Writer::text(std::string_view value) {
  head(kMajorText, value.size());
  out_.insert(out_.end(), value.begin(), value.end());
}

void Writer::bytes(std::string_view value) {
  head(kMajorBytes, value.size());
  out_.insert(out_.end(), value.begin(), value.end());
}

}  // namespace an::p2p::cbor
