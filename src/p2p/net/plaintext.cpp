#include "p2p/net/plaintext.h"

#include "p2p/crypto/key.h"
#include "p2p/net/framed.h"
#include "p2p/wire/protobuf.h"

namespace an::p2p::net {
namespace {

constexpr std::size_t kReadBufferSize = 64 * 1024;

}  // namespace

Bytes encode_plaintext_exchange(const PeerId& peer, ByteView encoded_public_key) {
  Bytes out;
  pb::Writer writer(out);
  writer.bytes_field(1, peer.bytes());
  writer.bytes_field(2, encoded_public_key);
  return out;
}

Expected<PeerId> decode_plaintext_exchange(ByteView message) {
  std::optional<ByteView> id;
  std::optional<ByteView> key;
  pb::Reader reader(message);
  while (true) {
    auto field = reader.next();
    if (!field) return fail("plaintext exchange: " + field.error().message);
    if (!*field) break;
    if ((*field)->type != pb::WireType::kLengthDelimited) continue;
    if ((*field)->number == 1) id = (*field)->bytes;
    if ((*field)->number == 2) key = (*field)->bytes;
  }
  if (!id || !key) return fail("plaintext exchange: the peer ID or public key is missing");
  auto claimed = PeerId::from_multihash(*id);
  if (!claimed) return fail("plaintext exchange: " + claimed.error().message);
  auto public_key = PublicKey::from_protobuf(*key);
  if (!public_key) return fail("plaintext exchange: " + public_key.error().message);
  const PeerId& derived = public_key->peer_id();
  if (*claimed != derived) {
    return fail("plaintext exchange: peer ID " + claimed->to_string() +
                " does not belong to the public key sent (" + derived.to_string() + ")");
  }
  return *claimed;
}

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

}  // namespace an::p2p::net
