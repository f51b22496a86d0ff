#include "p2p/net/secure_connection.h"

namespace an::p2p::net {
namespace {

constexpr std::size_t kFrameHeaderSize = 2;
// Large enough to take many full frames per read system call.
constexpr std::size_t kReadChunk = 256 * 1024;

}  // namespace

SecureConnection::SecureConnection(std::unique_ptr<TcpByteStream> transport,
                                   noise::CipherState send, noise::CipherState receive,
                                   PeerId remote_peer, Bytes early_ciphertext)
    : transport_(std::move(transport)),
      send_(std::move(send)),
      receive_(std::move(receive)),
      remote_peer_(std::move(remote_peer)),
      inbox_(std::move(early_ciphertext)) {}

asio::awaitable<Expected<void>> SecureConnection::write_all(ByteView plaintext) {
  outbox_.clear();
  std::size_t frames = plaintext.size() / noise::kMaxPlaintext + 1;
  outbox_.reserve(plaintext.size() + frames * (kFrameHeaderSize + noise::kTagSize));
  while (!plaintext.empty()) {
    std::size_t chunk = std::min(plaintext.size(), noise::kMaxPlaintext);
    std::size_t header_at = outbox_.size();
    outbox_.resize(header_at + kFrameHeaderSize + chunk + noise::kTagSize);
    auto written =
        send_.encrypt(plaintext.first(chunk), outbox_.data() + header_at + kFrameHeaderSize);
    if (!written) co_return tl::unexpected(written.error());
    outbox_[header_at] = static_cast<std::uint8_t>(*written >> 8);
    outbox_[header_at + 1] = static_cast<std::uint8_t>(*written & 0xff);
    outbox_.resize(header_at + kFrameHeaderSize + *written);
    plaintext = plaintext.subspan(chunk);
  }
  co_return co_await transport_->write_all(outbox_);
}

asio::awaitable<Expected<void>> SecureConnection::close_write() {
  co_return co_await transport_->close_write();
}

void SecureConnection::abort() {
  transport_->abort();
}

Expected<void> SecureConnection::decrypt_buffered_frames() {
  for (;;) {
    std::size_t available = inbox_.size() - inbox_start_;
    if (available < kFrameHeaderSize) break;
    std::size_t length = (std::size_t{inbox_[inbox_start_]} << 8) | inbox_[inbox_start_ + 1];
    if (length < noise::kTagSize) return fail("noise: frame shorter than its tag");
    if (available < kFrameHeaderSize + length) break;
    if (plaintext_start_ == plaintext_.size()) {
      plaintext_.clear();
      plaintext_start_ = 0;
    }
    std::size_t at = plaintext_.size();
    plaintext_.resize(at + length - noise::kTagSize);
    auto decrypted = receive_.decrypt(
        ByteView(inbox_.data() + inbox_start_ + kFrameHeaderSize, length), plaintext_.data() + at);
    if (!decrypted) return fail("noise: " + decrypted.error().message);
    plaintext_.resize(at + *decrypted);
    inbox_start_ += kFrameHeaderSize + length;
  }
  if (inbox_start_ == inbox_.size()) {
    inbox_.clear();
    inbox_start_ = 0;
  } else if (inbox_start_ > kReadChunk) {
    inbox_.erase(inbox_.begin(), inbox_.begin() + static_cast<long>(inbox_start_));
    inbox_start_ = 0;
  }
  return {};
}

asio::awaitable<Expected<std::size_t>> SecureConnection::read_some_from_source(
    std::span<std::uint8_t> buffer) {
  for (;;) {
    if (plaintext_start_ < plaintext_.size()) {
      std::size_t count = std::min(buffer.size(), plaintext_.size() - plaintext_start_);
      std::copy_n(plaintext_.begin() + static_cast<long>(plaintext_start_), count, buffer.begin());
      plaintext_start_ += count;
      co_return count;
    }
    if (auto decrypted = decrypt_buffered_frames(); !decrypted) {
      co_return tl::unexpected(decrypted.error());
    }
    if (plaintext_start_ < plaintext_.size()) continue;
    std::size_t at = inbox_.size();
    inbox_.resize(at + kReadChunk);
    auto got =
        co_await transport_->read_some(std::span<std::uint8_t>(inbox_.data() + at, kReadChunk));
    if (!got) {
      inbox_.resize(at);
      co_return tl::unexpected(got.error());
    }
    inbox_.resize(at + *got);
    if (*got == 0) {
      if (inbox_.size() > inbox_start_) co_return fail("noise: connection closed mid-frame");
      co_return std::size_t{0};
    }
  }
}

}  // namespace an::p2p::net
