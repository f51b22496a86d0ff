// A minimal protobuf (proto2/proto3 wire format) reader and writer for libp2p's small messages.
// Plain functions over caller-owned buffers; any thread. Readers never read past their input
// and reject groups, field number 0 and lengths beyond the input.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "p2p/multiformats/varint.h"
#include "util/expected.h"

namespace an::p2p::pb {

enum class WireType : std::uint8_t {
  kVarint = 0,
  kFixed64 = 1,
  kLengthDelimited = 2,
  kFixed32 = 5,
};

// Appends fields to `out`.
class Writer {
 public:
  explicit Writer(Bytes& out) : out_(out) {}
  void varint_field(std::uint32_t field, std::uint64_t value);
  void bytes_field(std::uint32_t field, ByteView value);
  void string_field(std::uint32_t field, std::string_view value);

 private:
  void tag(std::uint32_t field, WireType type);
  Bytes& out_;
};

struct Field {
  std::uint32_t number = 0;
  WireType type = WireType::kVarint;
  std::uint64_t varint = 0;  // kVarint, kFixed64, kFixed32
  ByteView bytes;            // kLengthDelimited: points into the reader's input
};

// Iterates over the fields of one message.
class Reader {
 public:
  explicit Reader(ByteView message) : rest_(message) {}
  // The next field, nullopt at the end of the message, or an error for malformed input.
  Expected<std::optional<Field>> next();

 private:
  ByteView rest_;
};

// "<what>: field N has the wrong wire type", the error for a known field sent with another type.
inline std::string wrong_wire_type(std::string_view what, std::uint32_t number) {
  return std::string(what) + ": field " + std::to_string(number) + " has the wrong wire type";
}

inline std::string_view as_string(ByteView bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

}  // namespace an::p2p::pb
