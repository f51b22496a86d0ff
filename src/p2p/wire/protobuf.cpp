#include "p2p/wire/protobuf.h"

namespace an::p2p::pb {

void Writer::tag(std::uint32_t field, WireType type) {
  append_varint(out_, (static_cast<std::uint64_t>(field) << 3) | static_cast<std::uint64_t>(type));
}

void Writer::varint_field(std::uint32_t field, std::uint64_t value) {
  tag(field, WireType::kVarint);
  append_varint(out_, value);
}

void Writer::bytes_field(std::uint32_t field, ByteView value) {
  tag(field, WireType::kLengthDelimited);
  append_varint(out_, value.size());
  out_.insert(out_.end(), value.begin(), value.end());
}

void Writer::string_field(std::uint32_t field, std::string_view value) {
  bytes_field(field, ByteView(reinterpret_cast<const std::uint8_t*>(value.data()), value.size()));
}

Expected<std::optional<Field>> Reader::next() {
  if (rest_.empty()) return std::optional<Field>{};
  auto key = read_varint(rest_);
  if (!key) return fail("protobuf: truncated field key");
  Field field;
  std::uint64_t number = *key >> 3;
  if (number == 0 || number > 0x1FFFFFFF) return fail("protobuf: invalid field number");
  field.number = static_cast<std::uint32_t>(number);
  switch (*key & 7) {
    case 0: {
      field.type = WireType::kVarint;
      auto value = read_varint(rest_);
      if (!value) return fail("protobuf: truncated varint in field " + std::to_string(number));
      field.varint = *value;
      break;
    }
    case 1:
    case 5: {
      std::size_t width = (*key & 7) == 1 ? 8 : 4;
      field.type = width == 8 ? WireType::kFixed64 : WireType::kFixed32;
      if (rest_.size() < width) return fail("protobuf: truncated fixed field");
      std::uint64_t value = 0;
      for (std::size_t i = 0; i < width; ++i)
        value |= std::uint64_t{rest_[i]} << (8 * i);
      field.varint = value;
      rest_ = rest_.subspan(width);
      break;
    }
    case 2: {
      field.type = WireType::kLengthDelimited;
      auto length = read_varint(rest_);
      if (!length) return fail("protobuf: truncated length in field " + std::to_string(number));
      if (*length > rest_.size()) {
        return fail("protobuf: field " + std::to_string(number) + " is longer than the message");
      }
      field.bytes = rest_.subspan(0, static_cast<std::size_t>(*length));
      rest_ = rest_.subspan(static_cast<std::size_t>(*length));
      break;
    }
    default:
      return fail("protobuf: unsupported wire type " + std::to_string(*key & 7));
  }
  return std::optional<Field>(field);
}

}  // namespace an::p2p::pb
