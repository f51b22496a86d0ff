// A connection secured by Noise: plaintext in, 2-byte-length-prefixed ChaCha20-Poly1305 frames
// on the wire. Owns the transport. Network thread only; one reader and one writer at a time.
#pragma once

#include <memory>

#include "p2p/crypto/peer_id.h"
#include "p2p/net/byte_stream.h"
#include "p2p/noise/cipher_state.h"

namespace an::p2p::net {

class SecureConnection final : public ByteStream {
 public:
  SecureConnection(std::unique_ptr<TcpByteStream> transport, noise::CipherState send,
                   noise::CipherState receive, PeerId remote_peer, Bytes early_ciphertext);

  asio::awaitable<Expected<void>> write_all(ByteView plaintext) override;
  asio::awaitable<Expected<void>> close_write() override;
  void abort() override;

  const PeerId& remote_peer() const { return remote_peer_; }
  TcpByteStream& transport() { return *transport_; }

 protected:
  asio::awaitable<Expected<std::size_t>> read_some_from_source(
      std::span<std::uint8_t> buffer) override;

 private:
  // Decrypts every complete frame in inbox_ into plaintext_.
  Expected<void> decrypt_buffered_frames();

  std::unique_ptr<TcpByteStream> transport_;
  noise::CipherState send_;
  noise::CipherState receive_;
  PeerId remote_peer_;
  Bytes inbox_;  // ciphertext frames not yet decrypted
  std::size_t inbox_start_ = 0;
  Bytes plaintext_;  // decrypted, not yet read
  std::size_t plaintext_start_ = 0;
  Bytes outbox_;  // reused for writes
};

}  // namespace an::p2p::net
