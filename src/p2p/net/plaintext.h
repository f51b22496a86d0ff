// The /plaintext/2.0.0 "security" protocol: each side sends its peer ID and public key, checks
// the other's, and the connection then carries the bytes as they are. No confidentiality and no
// proof of key ownership: for tests and the libp2p interop suite only, never offered unless the
// operator enables it. Network thread only.
#pragma once

#include <memory>
#include <optional>

#include "p2p/crypto/peer_id.h"
#include "p2p/net/secure_connection.h"

namespace an::p2p::net {

inline constexpr std::string_view kPlaintextProtocolId = "/plaintext/2.0.0";

// An Exchange message is an ID and a public key: an 8192-bit RSA key is about 1.1 KB.
inline constexpr std::size_t kMaxPlaintextExchangeSize = 16 * 1024;

// The Exchange message: field 1 the peer ID's multihash, field 2 the PublicKey protobuf.
Bytes encode_plaintext_exchange(const PeerId& peer, ByteView encoded_public_key);
// Checks that the ID is the one the key hashes to. Returns the remote peer.
Expected<PeerId> decode_plaintext_exchange(ByteView message);

// Sends our Exchange, reads the peer's. `expected_peer` (dialer side) must match the ID received.
asio::awaitable<Expected<std::unique_ptr<SecureConnection>>> secure_plaintext(
    std::unique_ptr<ByteStream> transport, PeerId local_peer, Bytes local_public_key,
    std::optional<PeerId> expected_peer);

// The transport's bytes as they are, behind the SecureConnection interface.
class PlaintextConnection final : public SecureConnection {
 public:
  PlaintextConnection(std::unique_ptr<ByteStream> transport, asio::any_io_executor executor,
                      PeerId remote_peer);

  asio::awaitable<Expected<ByteView>> read_view() override;
  asio::awaitable<Expected<void>> write_all(ByteView bytes) override;
  asio::awaitable<Expected<void>> close_write() override;
  void abort() override;
  void release_read_buffer() override { inbox_ = Bytes{}; }
  const PeerId& remote_peer() const override { return remote_peer_; }
  std::string_view protocol() const override { return kPlaintextProtocolId; }
  const asio::any_io_executor& executor() const override { return executor_; }
  ByteStream& transport() override { return *transport_; }

 protected:
  asio::awaitable<Expected<std::size_t>> read_some_from_source(
      std::span<std::uint8_t> buffer) override;
  asio::awaitable<Expected<void>> wait_readable_from_source() override;

 private:
  std::unique_ptr<ByteStream> transport_;
  asio::any_io_executor executor_;
  PeerId remote_peer_;
  Bytes inbox_;
};

}  // namespace an::p2p::net
