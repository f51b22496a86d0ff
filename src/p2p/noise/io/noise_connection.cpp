#include "p2p/noise/io/noise_connection.h"

#include <cstring>

#include "p2p/net/async.h"

namespace an::p2p::noise {

using net::ByteStream;
using net::TcpByteStream;
using net::use_tuple;
namespace {

constexpr std::size_t kFrameHeaderSize = 2;
constexpr std::size_t kMaxFrame = kFrameHeaderSize + kMaxCiphertext;
// Room for several full frames per read system call.
constexpr std::size_t kReadBufferSize = 4 * kMaxFrame;

// Uninitialised on purpose: zero-filling buffers that are about to be overwritten cost a
// measurable share of the receive path.
std::unique_ptr<std::uint8_t[]> allocate(std::size_t size) {
  return std::unique_ptr<std::uint8_t[]>(new std::uint8_t[size]);
}

}  // namespace

NoiseConnection::NoiseConnection(std::unique_ptr<ByteStream> transport,
                                 asio::any_io_executor executor, CipherState send,
                                 CipherState receive, PeerId remote_peer)
    : transport_(std::move(transport)),
      tcp_(dynamic_cast<TcpByteStream*>(transport_.get())),
      executor_(std::move(executor)),
      send_(std::move(send)),
      receive_(std::move(receive)),
      remote_peer_(std::move(remote_peer)) {
  // Ciphertext a negotiation read ahead belongs to us now.
  Bytes early = transport_->take_unread();
  if (!early.empty()) {
    inbox_capacity_ = std::max(kReadBufferSize, early.size());
    inbox_ = allocate(inbox_capacity_);
    std::memcpy(inbox_.get(), early.data(), early.size());
    cipher_end_ = early.size();
  }
  if (tcp_ != nullptr) {
    std::error_code ignored;
    tcp_->socket().non_blocking(true, ignored);
  }
}

asio::awaitable<Expected<void>> NoiseConnection::write_all(ByteView plaintext) {
  std::size_t frames = plaintext.size() / kMaxPlaintext + 1;
  std::size_t needed = plaintext.size() + frames * (kFrameHeaderSize + kTagSize);
  if (needed > outbox_capacity_) {
    outbox_capacity_ = needed;
    outbox_ = allocate(outbox_capacity_);
  }
  std::size_t used = 0;
  while (!plaintext.empty()) {
    std::size_t chunk = std::min(plaintext.size(), kMaxPlaintext);
    auto written = send_.encrypt(plaintext.first(chunk), outbox_.get() + used + kFrameHeaderSize);
    if (!written) co_return tl::unexpected(written.error());
    outbox_[used] = static_cast<std::uint8_t>(*written >> 8);
    outbox_[used + 1] = static_cast<std::uint8_t>(*written & 0xff);
    used += kFrameHeaderSize + *written;
    plaintext = plaintext.subspan(chunk);
  }
  co_return co_await transport_->write_all(ByteView(outbox_.get(), used));
}

void NoiseConnection::release_read_buffer() {
  // Only while nothing is buffered: then the reader, if any, is waiting for the transport and
  // allocates a fresh buffer when data arrives.
  if (reading_ || cipher_begin_ != cipher_end_ || plain_begin_ != plain_end_) return;
  inbox_.reset();
  inbox_capacity_ = 0;
  cipher_begin_ = cipher_end_ = plain_begin_ = plain_end_ = 0;
}

void NoiseConnection::release_write_buffer() {
  outbox_.reset();
  outbox_capacity_ = 0;
}

asio::awaitable<Expected<void>> NoiseConnection::close_write() {
  co_return co_await transport_->close_write();
}

void NoiseConnection::abort() {
  transport_->abort();
}

Expected<bool> NoiseConnection::decrypt_next_frame() {
  std::size_t available = cipher_end_ - cipher_begin_;
  if (available < kFrameHeaderSize) return false;
  std::size_t length = (std::size_t{inbox_[cipher_begin_]} << 8) | inbox_[cipher_begin_ + 1];
  if (length < kTagSize) return fail("noise: frame shorter than its tag");
  if (available < kFrameHeaderSize + length) return false;
  std::uint8_t* body = inbox_.get() + cipher_begin_ + kFrameHeaderSize;
  auto decrypted = receive_.decrypt(ByteView(body, length), body);
  if (!decrypted) return fail("noise: " + decrypted.error().message);
  plain_begin_ = cipher_begin_ + kFrameHeaderSize;
  plain_end_ = plain_begin_ + *decrypted;
  cipher_begin_ += kFrameHeaderSize + length;
  return true;
}

asio::awaitable<Expected<std::size_t>> NoiseConnection::fill() {
  if (tcp_ == nullptr) co_return co_await fill_from_transport();
  auto& socket = tcp_->socket();
  for (;;) {
    if (inbox_) {
      // Keep a partial frame, dropping what has been read and decrypted before it.
      std::size_t partial = cipher_end_ - cipher_begin_;
      if (cipher_begin_ > 0) {
        std::memmove(inbox_.get(), inbox_.get() + cipher_begin_, partial);
        cipher_begin_ = 0;
        cipher_end_ = partial;
        plain_begin_ = plain_end_ = 0;
      }
      std::error_code ec;
      std::size_t got = socket.read_some(
          asio::buffer(inbox_.get() + cipher_end_, inbox_capacity_ - cipher_end_), ec);
      if (!ec) {
        cipher_end_ += got;
        co_return got;
      }
      if (ec == asio::error::eof) co_return std::size_t{0};
      if (ec != asio::error::would_block && ec != asio::error::try_again) {
        co_return fail("read: " + ec.message(), ec);
      }
    }
    auto [ec] = co_await socket.async_wait(asio::ip::tcp::socket::wait_read, use_tuple);
    if (ec) co_return fail("read: " + ec.message(), ec);
    if (!inbox_) {
      inbox_capacity_ = kReadBufferSize;
      inbox_ = allocate(inbox_capacity_);
      cipher_begin_ = cipher_end_ = plain_begin_ = plain_end_ = 0;
    }
  }
}

asio::awaitable<Expected<std::size_t>> NoiseConnection::fill_from_transport() {
  for (;;) {
    if (inbox_) {
      std::size_t partial = cipher_end_ - cipher_begin_;
      if (cipher_begin_ > 0) {
        std::memmove(inbox_.get(), inbox_.get() + cipher_begin_, partial);
        cipher_begin_ = 0;
        cipher_end_ = partial;
        plain_begin_ = plain_end_ = 0;
      }
      reading_ = true;
      auto got = co_await transport_->read_some(
          std::span(inbox_.get() + cipher_end_, inbox_capacity_ - cipher_end_));
      reading_ = false;
      if (!got) co_return tl::unexpected(got.error());
      cipher_end_ += *got;
      co_return *got;
    }
    auto readable = co_await transport_->wait_readable();
    if (!readable) co_return tl::unexpected(readable.error());
    if (!inbox_) {
      inbox_capacity_ = kReadBufferSize;
      inbox_ = allocate(inbox_capacity_);
      cipher_begin_ = cipher_end_ = plain_begin_ = plain_end_ = 0;
    }
  }
}

asio::awaitable<Expected<ByteView>> NoiseConnection::read_view() {
  for (;;) {
    if (plain_begin_ < plain_end_) {
      ByteView view(inbox_.get() + plain_begin_, plain_end_ - plain_begin_);
      plain_begin_ = plain_end_;
      co_return view;
    }
    if (inbox_) {
      auto decrypted = decrypt_next_frame();
      if (!decrypted) co_return tl::unexpected(decrypted.error());
      if (*decrypted) continue;
    }
    auto got = co_await fill();
    if (!got) co_return tl::unexpected(got.error());
    if (*got == 0) {
      if (cipher_end_ > cipher_begin_) co_return fail("noise: connection closed mid-frame");
      co_return ByteView{};
    }
  }
}

asio::awaitable<Expected<std::size_t>> NoiseConnection::read_some_from_source(
    std::span<std::uint8_t> buffer) {
  if (plain_begin_ == plain_end_) {
    auto view = co_await read_view();
    if (!view) co_return tl::unexpected(view.error());
    if (view->empty()) co_return std::size_t{0};
    // Serve it from the buffer it lives in.
    plain_begin_ = static_cast<std::size_t>(view->data() - inbox_.get());
  }
  std::size_t count = std::min(buffer.size(), plain_end_ - plain_begin_);
  std::memcpy(buffer.data(), inbox_.get() + plain_begin_, count);
  plain_begin_ += count;
  co_return count;
}

}  // namespace an::p2p::noise
