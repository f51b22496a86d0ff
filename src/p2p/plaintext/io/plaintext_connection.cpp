#include "p2p/plaintext/io/plaintext_connection.h"

#include "p2p/crypto/key.h"
#include "p2p/net/framed.h"

namespace an::p2p::plaintext {

using net::ByteStream;
using net::read_framed;
using net::SecureConnection;
using net::write_framed;
namespace {

constexpr std::size_t kReadBufferSize = 64 * 1024;

}  // namespace

asio::awaitable<Expected<std::unique_ptr<SecureConnection>>> secure_plaintext(
    std::unique_ptr<ByteStream> transport, PeerId local_peer, Bytes local_public_key,
    std::optional<PeerId> expected_peer) {
  Bytes ours = encode_plaintext_exchange(local_peer, local_public_key);
  if (auto written = co_await write_framed(*transport, ours); !written) {
    co_return tl::unexpected(written.error());
  }
  auto theirs = co_await read_framed(*transport, kMaxPlaintextExchangeSize);
  if (!theirs) co_return fail("plaintext exchange: " + theirs.error().message);
  if (!*theirs) co_return fail("plaintext exchange: the peer closed the connection");
  auto remote = decode_plaintext_exchange(**theirs);
  if (!remote) co_return tl::unexpected(remote.error());
  if (expected_peer && *remote != *expected_peer) {
    co_return fail("plaintext exchange: dialled " + expected_peer->to_string() + " but reached " +
                   remote->to_string());
  }
  auto executor = co_await asio::this_coro::executor;
  std::unique_ptr<SecureConnection> secure = std::make_unique<PlaintextConnection>(
      std::move(transport), std::move(executor), std::move(*remote));
  co_return secure;
}

PlaintextConnection::PlaintextConnection(std::unique_ptr<ByteStream> transport,
                                         asio::any_io_executor executor, PeerId remote_peer)
    : transport_(std::move(transport)),
      executor_(std::move(executor)),
      remote_peer_(std::move(remote_peer)) {}

asio::awaitable<Expected<ByteView>> PlaintextConnection::read_view() {
  if (auto ready = co_await transport_->wait_readable(); !ready) {
    co_return tl::unexpected(ready.error());
  }
  if (inbox_.size() != kReadBufferSize) inbox_.resize(kReadBufferSize);
  auto got = co_await transport_->read_some(inbox_);
  if (!got) co_return tl::unexpected(got.error());
  co_return ByteView(inbox_.data(), *got);
}

asio::awaitable<Expected<void>> PlaintextConnection::write_all(ByteView bytes) {
  co_return co_await transport_->write_all(bytes);
}

asio::awaitable<Expected<void>> PlaintextConnection::close_write() {
  co_return co_await transport_->close_write();
}

void PlaintextConnection::abort() {
  transport_->abort();
}

asio::awaitable<Expected<std::size_t>> PlaintextConnection::read_some_from_source(
    std::span<std::uint8_t> buffer) {
  co_return co_await transport_->read_some(buffer);
}

asio::awaitable<Expected<void>> PlaintextConnection::wait_readable_from_source() {
  co_return co_await transport_->wait_readable();
}

}  // namespace an::p2p::plaintext
