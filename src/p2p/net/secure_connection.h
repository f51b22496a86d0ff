// The secured channel of a connection, and its Noise implementation: plaintext in,
// 2-byte-length-prefixed ChaCha20-Poly1305 frames on the wire. Owns the transport: a TCP socket, or
// a stream of another connection (a relayed connection). Network thread only; one reader and one
// writer at a time.
#pragma once

#include <chrono>
#include <memory>
#include <string_view>

#include "p2p/crypto/peer_id.h"
#include "p2p/net/byte_stream.h"
#include "p2p/noise/cipher_state.h"

namespace an::p2p::net {

// A secured channel over a transport, whatever the security protocol (Noise, TLS, plaintext):
// what Connection needs from it. Network thread only; one reader and one writer at a time.
class SecureConnection : public ByteStream {
 public:
  // The next plaintext bytes, without copying: valid until the next read. Empty at EOF.
  virtual asio::awaitable<Expected<ByteView>> read_view() = 0;
  // Free the buffers of a quiet connection, so that an idle connection costs next to
  // nothing. Call only while no write is in flight (write) / from outside the reader (read).
  virtual void release_write_buffer() {}
  virtual void release_read_buffer() {}
  virtual const PeerId& remote_peer() const = 0;
  // The security protocol's ID, e.g. "/noise".
  virtual std::string_view protocol() const = 0;
  virtual const asio::any_io_executor& executor() const = 0;
  // What the channel runs over (tests write raw bytes to it to play a hostile peer).
  virtual ByteStream& transport() = 0;
};

class NoiseConnection final : public SecureConnection {
 public:
  NoiseConnection(std::unique_ptr<ByteStream> transport, asio::any_io_executor executor,
                  noise::CipherState send, noise::CipherState receive, PeerId remote_peer);

  // The next decrypted bytes, without copying: valid until the next read. Empty at EOF.
  asio::awaitable<Expected<ByteView>> read_view() override;

  asio::awaitable<Expected<void>> write_all(ByteView plaintext) override;
  asio::awaitable<Expected<void>> close_write() override;
  void abort() override;
  void release_write_buffer() override;
  void release_read_buffer() override;

  const PeerId& remote_peer() const override { return remote_peer_; }
  std::string_view protocol() const override { return "/noise"; }
  ByteStream& transport() override { return *transport_; }
  const asio::any_io_executor& executor() const override { return executor_; }

 protected:
  asio::awaitable<Expected<std::size_t>> read_some_from_source(
      std::span<std::uint8_t> buffer) override;

 private:
  // Decrypts the next complete frame in place; false when no complete frame is buffered.
  Expected<bool> decrypt_next_frame();
  // Reads more ciphertext, waiting for the transport first so that an idle connection holds no
  // read buffer. 0 means EOF.
  asio::awaitable<Expected<std::size_t>> fill();
  // Transports other than TCP, through ByteStream::wait_readable and read_some.
  asio::awaitable<Expected<std::size_t>> fill_from_transport();

  std::unique_ptr<ByteStream> transport_;
  // The transport when it is a TCP socket: read without a coroutine per read, as the hot path.
  TcpByteStream* tcp_ = nullptr;
  asio::any_io_executor executor_;
  // A read into inbox_ is suspended: the buffer must stay.
  bool reading_ = false;
  noise::CipherState send_;
  noise::CipherState receive_;
  PeerId remote_peer_;
  // Ciphertext and, decrypted in place, plaintext: [plain_begin_, plain_end_) is plaintext not
  // yet read, [cipher_begin_, cipher_end_) ciphertext not yet decrypted.
  std::unique_ptr<std::uint8_t[]> inbox_;
  std::size_t inbox_capacity_ = 0;
  std::size_t plain_begin_ = 0;
  std::size_t plain_end_ = 0;
  std::size_t cipher_begin_ = 0;
  std::size_t cipher_end_ = 0;
  std::unique_ptr<std::uint8_t[]> outbox_;
  std::size_t outbox_capacity_ = 0;
};

}  // namespace an::p2p::net
