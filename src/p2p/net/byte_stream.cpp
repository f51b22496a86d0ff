#include "p2p/net/byte_stream.h"

#include "p2p/net/async.h"

namespace an::p2p::net {

asio::awaitable<Expected<std::size_t>> TcpByteStream::read_some_from_source(
    std::span<std::uint8_t> buffer) {
  auto [ec, count] =
      co_await socket_.async_read_some(asio::buffer(buffer.data(), buffer.size()), use_tuple);
  if (ec == asio::error::eof) co_return std::size_t{0};
  if (ec) co_return fail("read: " + ec.message(), ec);
  co_return count;
}

asio::awaitable<Expected<void>> TcpByteStream::wait_readable_from_source() {
  auto [ec] = co_await socket_.async_wait(asio::ip::tcp::socket::wait_read, use_tuple);
  if (ec) co_return fail("read: " + ec.message(), ec);
  co_return Expected<void>{};
}

asio::awaitable<Expected<void>> TcpByteStream::write_all(ByteView bytes) {
  auto [ec, count] =
      co_await asio::async_write(socket_, asio::buffer(bytes.data(), bytes.size()), use_tuple);
  (void)count;
  if (ec) co_return fail("write: " + ec.message(), ec);
  co_return Expected<void>{};
}

asio::awaitable<Expected<void>> TcpByteStream::close_write() {
  std::error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  if (ec) co_return fail("shutdown: " + ec.message(), ec);
  co_return Expected<void>{};
}

void TcpByteStream::abort() {
  std::error_code ignored;
  socket_.close(ignored);
}

asio::awaitable<Expected<void>> read_exact(ByteStream& stream, std::span<std::uint8_t> buffer) {
  std::size_t done = 0;
  while (done < buffer.size()) {
    auto got = co_await stream.read_some(buffer.subspan(done));
    if (!got) co_return tl::unexpected(got.error());
    if (*got == 0) co_return fail("connection closed by the peer");
    done += *got;
  }
  co_return Expected<void>{};
}

}  // namespace an::p2p::net
