// libp2p Noise framing: every Noise message travels as a 2-byte big-endian length and the
// message. Pure helpers plus FrameReader, which one connection's reader thread owns.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "p2p/multiformats/varint.h"
#include "p2p/noise/cipher_state.h"
#include "util/expected.h"

namespace an::p2p::noise {

inline constexpr std::size_t kFrameHeaderSize = 2;
using FrameHeader = std::array<std::uint8_t, kFrameHeaderSize>;

// Fails for bodies over kMaxMessage (65535) bytes.
Expected<FrameHeader> encode_frame_header(std::size_t body_size);
// Appends header and body to `out`.
Expected<void> append_frame(ByteView body, Bytes& out);
// Encrypts `plaintext` into as many frames as it needs (kMaxPlaintext bytes each) and appends
// them to `out`; an empty plaintext gives one frame holding just a tag. One resize, no
// intermediate buffers.
Expected<void> append_encrypted_frames(CipherState& send, ByteView plaintext, Bytes& out);

// Accumulates bytes as they arrive and hands out complete frame bodies. Any length a 2-byte
// header can express (0 to 65535) is a frame; judging the body is the decrypter's job.
class FrameReader {
 public:
  void feed(ByteView bytes);

  // The next complete frame body, or nullopt until more bytes arrive. The span points into
  // the reader's buffer and stays valid until the next feed(); it is mutable so that the
  // caller may decrypt in place (CipherState::decrypt(frame, frame.data())).
  std::optional<std::span<std::uint8_t>> next_frame();

  // Bytes received but not handed out yet.
  std::size_t buffered() const { return buffer_.size() - consumed_; }

 private:
  Bytes buffer_;
  std::size_t consumed_ = 0;  // the front of buffer_ already handed out
};

}  // namespace an::p2p::noise
