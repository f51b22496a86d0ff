#include "p2p/daan/frame.h"

#include <string>

#include "p2p/daan/json.h"

namespace an::p2p::daan {
namespace {

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
    json::append_base64(out, frame.payload);
    out.push_back('"');
  }
  out.push_back('}');
}

enum class Field { kNone, kType, kRequestId, kPayload };

Field field_of(std::string_view key) {
  const std::string folded = json::fold_key(key);
  if (folded == "type") return Field::kType;
  if (folded == "request_id") return Field::kRequestId;
  if (folded == "payload") return Field::kPayload;
  return Field::kNone;
}

// One pass over the body, validating it as Go's scanner does and storing the three fields as
// Go's decoder would.
class FrameParser {
 public:
  explicit FrameParser(ByteView json) : reader_(json, "frame") {}

  Expected<Frame> parse() {
    // `null` leaves the struct as it is, as in Go: type 0, refused below.
    auto parsed =
        reader_.read_document([this](const std::string& key) { return store(field_of(key)); });
    if (!parsed) return tl::unexpected(parsed.error());
    if (type_ < 1 || type_ > 4) return fail("unknown frame type " + std::to_string(type_));
    Frame frame;
    frame.type = static_cast<FrameType>(type_);
    frame.request_id = request_id_;
    frame.payload = std::move(payload_);
    return frame;
  }

 private:
  Expected<void> store(Field field) {
    switch (field) {
      case Field::kType:
        return store_unsigned(
            "type", 255, [this](std::uint64_t value) { type_ = static_cast<unsigned>(value); });
      case Field::kRequestId:
        return store_unsigned("request_id", UINT64_MAX,
                              [this](std::uint64_t value) { request_id_ = value; });
      case Field::kPayload:
        return reader_.read_bytes("payload", 1, payload_);
      case Field::kNone:
        break;
    }
    return reader_.skip_value(1);
  }

  template <class Store>
  Expected<void> store_unsigned(const char* name, std::uint64_t max, Store store) {
    const int c = reader_.peek();
    if (c == '-' || (c >= '0' && c <= '9')) {
      auto span = reader_.scan_number();
      if (!span) return tl::unexpected(span.error());
      auto value = reader_.parse_unsigned(*span, max);
      if (!value) return reader_.field_error(name, "is not an integer 0.." + std::to_string(max));
      store(*value);
      return {};
    }
    if (reader_.take_literal("null")) return {};  // Go leaves a non-pointer field as it is
    if (auto skipped = reader_.skip_value(1); !skipped) return skipped;
    return reader_.field_error(name, "is not a number");
  }

  json::Reader reader_;
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
  size += frame.payload.empty() ? 4 : json::base64_size(frame.payload.size()) + 2;
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
