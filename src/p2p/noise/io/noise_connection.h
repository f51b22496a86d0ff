// The Noise secured channel of a connection: plaintext in, 2-byte-length-prefixed
// ChaCha20-Poly1305 frames on the wire, after the handshake of noise/handshake.h. Owns the
// transport: a TCP socket, or a stream of another connection (a relayed connection). Network
// thread only; one reader and one writer at a time.
#pragma once

#include <memory>
#include <string_view>

#include "p2p/crypto/peer_id.h"
#include "p2p/net/byte_stream.h"
#include "p2p/net/secure_connection.h"
#include "p2p/noise/cipher_state.h"

namespace an::p2p::noise {

class NoiseConnection final : public net::SecureConnection {
 public:
  NoiseConnection(std::unique_ptr<net::ByteStream> transport, asio::any_io_executor executor,
                  CipherState send, CipherState receive, PeerId remote_peer);

  // The next decrypted bytes, without copying: valid until the next read. Empty at EOF.
  asio::awaitable<Expected<ByteView>> read_view() override;

  asio::awaitable<Expected<void>> write_all(ByteView plaintext) override;
  asio::awaitable<Expected<void>> close_write() override;
  void abort() override;
  void release_write_buffer() override;
  void release_read_buffer() override;

  const PeerId& remote_peer() const override { return remote_peer_; }
  std::string_view protocol() const override { return "/noise"; }
  net::ByteStream& transport() override { return *transport_; }
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
  // Transports other than TCP, through net::ByteStream::wait_readable and read_some.
  asio::awaitable<Expected<std::size_t>> fill_from_transport();

  std::unique_ptr<net::ByteStream> transport_;
  // The transport when it is a TCP socket: read without a coroutine per read, as the hot path.
  net::TcpByteStream* tcp_ = nullptr;
  asio::any_io_executor executor_;
  // A read into inbox_ is suspended: the buffer must stay.
  bool reading_ = false;
  CipherState send_;
  CipherState receive_;
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

}  // namespace an::p2p::noise
