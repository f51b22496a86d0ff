#include "p2p/noise/framing.h"

#include <string>

namespace an::p2p::noise {

Expected<FrameHeader> encode_frame_header(std::size_t body_size) {
  if (body_size > kMaxMessage) {
    return fail("a noise frame holds at most " + std::to_string(kMaxMessage) + " bytes, not " +
                std::to_string(body_size));
  }
  return FrameHeader{static_cast<std::uint8_t>(body_size >> 8),
                     static_cast<std::uint8_t>(body_size & 0xff)};
}

Expected<void> append_frame(ByteView body, Bytes& out) {
  auto header = encode_frame_header(body.size());
  if (!header) return tl::unexpected(header.error());
  out.insert(out.end(), header->begin(), header->end());
  out.insert(out.end(), body.begin(), body.end());
  return {};
}

Expected<void> append_encrypted_frames(CipherState& send, ByteView plaintext, Bytes& out) {
  const std::size_t frame_count =
      plaintext.empty() ? 1 : (plaintext.size() + kMaxPlaintext - 1) / kMaxPlaintext;
  const std::size_t start = out.size();
  out.resize(start + plaintext.size() + frame_count * (kFrameHeaderSize + kTagSize));
  std::size_t position = start;
  std::size_t offset = 0;
  for (std::size_t frame = 0; frame < frame_count; ++frame) {
    const ByteView chunk =
        plaintext.subspan(offset, std::min(kMaxPlaintext, plaintext.size() - offset));
    const std::size_t body_size = chunk.size() + kTagSize;
    out[position] = static_cast<std::uint8_t>(body_size >> 8);
    out[position + 1] = static_cast<std::uint8_t>(body_size & 0xff);
    auto written = send.encrypt(chunk, out.data() + position + kFrameHeaderSize);
    if (!written) {
      out.resize(start);
      return tl::unexpected(written.error());
    }
    position += kFrameHeaderSize + body_size;
    offset += chunk.size();
  }
  return {};
}

void FrameReader::feed(ByteView bytes) {
  // Drop what was handed out; what remains is at most one partial frame plus unread frames.
  if (consumed_ > 0) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(consumed_));
    consumed_ = 0;
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
}

std::optional<std::span<std::uint8_t>> FrameReader::next_frame() {
  const std::size_t available = buffer_.size() - consumed_;
  if (available < kFrameHeaderSize) return std::nullopt;
  const std::size_t body_size =
      (std::size_t{buffer_[consumed_]} << 8) | std::size_t{buffer_[consumed_ + 1]};
  if (available - kFrameHeaderSize < body_size) return std::nullopt;
  std::span<std::uint8_t> body(buffer_.data() + consumed_ + kFrameHeaderSize, body_size);
  consumed_ += kFrameHeaderSize + body_size;
  return body;
}

}  // namespace an::p2p::noise
