// The /plaintext/2.0.0 handshake (plaintext/exchange.h) on a transport, and the connection it
// yields: the transport's bytes as they are. Network thread only.
#pragma once

#include <memory>
#include <optional>

#include "p2p/crypto/peer_id.h"
#include "p2p/net/secure_connection.h"
#include "p2p/plaintext/exchange.h"

namespace an::p2p::plaintext {

// Sends our Exchange, reads the peer's. `expected_peer` (dialer side) must match the ID received.
asio::awaitable<Expected<std::unique_ptr<net::SecureConnection>>> secure_plaintext(
    std::unique_ptr<net::ByteStream> transport, PeerId local_peer, Bytes local_public_key,
    std::optional<PeerId> expected_peer);

// The transport's bytes as they are, behind the SecureConnection interface.
class PlaintextConnection final : public net::SecureConnection {
 public:
  PlaintextConnection(std::unique_ptr<net::ByteStream> transport, asio::any_io_executor executor,
                      PeerId remote_peer);

  asio::awaitable<Expected<ByteView>> read_view() override;
  asio::awaitable<Expected<void>> write_all(ByteView bytes) override;
  asio::awaitable<Expected<void>> close_write() override;
  void abort() override;
  void release_read_buffer() override { inbox_ = Bytes{}; }
  const PeerId& remote_peer() const override { return remote_peer_; }
  std::string_view protocol() const override { return kPlaintextProtocolId; }
  const asio::any_io_executor& executor() const override { return executor_; }
  net::ByteStream& transport() override { return *transport_; }

 protected:
  asio::awaitable<Expected<std::size_t>> read_some_from_source(
      std::span<std::uint8_t> buffer) override;
  asio::awaitable<Expected<void>> wait_readable_from_source() override;

 private:
  std::unique_ptr<net::ByteStream> transport_;
  asio::any_io_executor executor_;
  PeerId remote_peer_;
  Bytes inbox_;
};

}  // namespace an::p2p::plaintext
