// An ordered, reliable byte stream as coroutines: a TCP socket, a secured connection, or one
// multiplexed stream. Bytes read ahead by a negotiation can be pushed back with unread(). All
// calls on the network thread; one reader and one writer at a time.
#pragma once

#include <asio.hpp>
#include <memory>
#include <span>
#include <utility>

#include "p2p/multiformats/varint.h"
#include "util/expected.h"

namespace an::p2p::net {

class ByteStream {
 public:
  virtual ~ByteStream() = default;

  // Up to buffer.size() bytes; 0 means the remote closed its side (EOF).
  asio::awaitable<Expected<std::size_t>> read_some(std::span<std::uint8_t> buffer) {
    if (!pushed_back_.empty()) {
      std::size_t count = std::min(buffer.size(), pushed_back_.size());
      std::copy_n(pushed_back_.begin(), count, buffer.begin());
      pushed_back_.erase(pushed_back_.begin(), pushed_back_.begin() + static_cast<long>(count));
      co_return count;
    }
    co_return co_await read_some_from_source(buffer);
  }

  // Makes `bytes` the next bytes read (before anything unread earlier).
  void unread(Bytes bytes) {
    if (bytes.empty()) return;
    bytes.insert(bytes.end(), pushed_back_.begin(), pushed_back_.end());
    pushed_back_ = std::move(bytes);
  }

  // Bytes pushed back and not read yet, handed over to whoever reads the source directly.
  Bytes take_unread() { return std::exchange(pushed_back_, Bytes{}); }

  // Waits until a read would not have to wait for the remote (data, EOF or an error is there),
  // so that a reader of a quiet stream need not hold a buffer meanwhile. Transports that cannot
  // tell return at once: their reader then holds its buffer during the read.
  asio::awaitable<Expected<void>> wait_readable() {
    if (!pushed_back_.empty()) co_return Expected<void>{};
    co_return co_await wait_readable_from_source();
  }

  // Memory a reader holds for what it reassembles from this stream (a framed message): true
  // when the stream's resource scope grants it. Streams of a connection have a scope; other
  // byte streams do not limit.
  virtual bool reserve_memory(std::size_t /*bytes*/) { return true; }
  virtual void release_memory(std::size_t /*bytes*/) {}

  virtual asio::awaitable<Expected<void>> write_all(ByteView bytes) = 0;
  // Half-close: no more writes from us.
  virtual asio::awaitable<Expected<void>> close_write() = 0;
  // Abrupt close of both directions; pending operations fail.
  virtual void abort() = 0;

 protected:
  virtual asio::awaitable<Expected<std::size_t>> read_some_from_source(
      std::span<std::uint8_t> buffer) = 0;
  virtual asio::awaitable<Expected<void>> wait_readable_from_source() {
    co_return Expected<void>{};
  }

 private:
  Bytes pushed_back_;
};

// A TCP socket as a ByteStream.
class TcpByteStream final : public ByteStream {
 public:
  explicit TcpByteStream(asio::ip::tcp::socket socket) : socket_(std::move(socket)) {}
  asio::awaitable<Expected<void>> write_all(ByteView bytes) override;
  asio::awaitable<Expected<void>> close_write() override;
  void abort() override;
  asio::ip::tcp::socket& socket() { return socket_; }

 protected:
  asio::awaitable<Expected<std::size_t>> read_some_from_source(
      std::span<std::uint8_t> buffer) override;
  asio::awaitable<Expected<void>> wait_readable_from_source() override;

 private:
  asio::ip::tcp::socket socket_;
};

// Forwards to a stream held elsewhere too (a multiplexed Stream that a relayed connection runs
// over), so that it can be owned like a socket: a SecureConnection owns its transport.
class SharedByteStream final : public ByteStream {
 public:
  explicit SharedByteStream(std::shared_ptr<ByteStream> inner) : inner_(std::move(inner)) {}
  asio::awaitable<Expected<void>> write_all(ByteView bytes) override {
    co_return co_await inner_->write_all(bytes);
  }
  asio::awaitable<Expected<void>> close_write() override {
    co_return co_await inner_->close_write();
  }
  void abort() override { inner_->abort(); }
  bool reserve_memory(std::size_t bytes) override { return inner_->reserve_memory(bytes); }
  void release_memory(std::size_t bytes) override { inner_->release_memory(bytes); }
  ByteStream& inner() { return *inner_; }

 protected:
  asio::awaitable<Expected<std::size_t>> read_some_from_source(
      std::span<std::uint8_t> buffer) override {
    co_return co_await inner_->read_some(buffer);
  }
  asio::awaitable<Expected<void>> wait_readable_from_source() override {
    co_return co_await inner_->wait_readable();
  }

 private:
  std::shared_ptr<ByteStream> inner_;
};

// Reads exactly buffer.size() bytes; EOF before that is an error.
asio::awaitable<Expected<void>> read_exact(ByteStream& stream, std::span<std::uint8_t> buffer);

}  // namespace an::p2p::net
