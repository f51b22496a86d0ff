// The secured channel of a connection, whatever the security protocol: Noise
// (noise/io/noise_connection.h), TLS (tls/io/tls_connection.h) or plaintext. Owns the transport:
// a TCP socket, or a stream of another connection (a relayed connection). Network thread only;
// one reader and one writer at a time.
#pragma once

#include <chrono>
#include <memory>
#include <string_view>

#include "p2p/crypto/peer_id.h"
#include "p2p/net/byte_stream.h"

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

}  // namespace an::p2p::net
