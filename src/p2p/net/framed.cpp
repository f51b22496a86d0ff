#include "p2p/net/framed.h"

#include <algorithm>
#include <array>

#include "p2p/wire/length_prefixed.h"

namespace an::p2p::net {
namespace {

constexpr std::size_t kReadChunk = 4096;

// Outside the coroutine: GCC 12 misreports vector construction from iterators in coroutine
// frames (-Wfree-nonheap-object).
Bytes copy_range(const Bytes& from, std::size_t begin, std::size_t end) {
  return Bytes(from.begin() + static_cast<long>(begin), from.begin() + static_cast<long>(end));
}

void append_bytes(Bytes& to, const std::uint8_t* data, std::size_t count) {
  to.insert(to.end(), data, data + count);
}

// The body of a message being reassembled, reserved from the stream's resource scope for as
// long as the reader holds it.
class BodyReservation {
 public:
  explicit BodyReservation(ByteStream& stream) : stream_(stream) {}
  ~BodyReservation() { stream_.release_memory(bytes_); }
  BodyReservation(const BodyReservation&) = delete;
  BodyReservation& operator=(const BodyReservation&) = delete;
  bool reserve(std::size_t bytes) {
    if (!stream_.reserve_memory(bytes)) return false;
    bytes_ += bytes;
    return true;
  }

 private:
  ByteStream& stream_;
  std::size_t bytes_ = 0;
};

}  // namespace

asio::awaitable<Expected<std::optional<Bytes>>> read_framed(ByteStream& stream,
                                                            std::size_t max_size) {
  BodyReservation reservation(stream);
  Bytes received;
  std::array<std::uint8_t, kReadChunk> chunk{};
  std::optional<std::size_t> body_size;
  std::size_t header_size = 0;
  for (;;) {
    if (!body_size) {
      // The prefix alone rather than take_frame: its length bounds the reads of the body below.
      auto prefix = read_length_prefix(received);
      if (!prefix) co_return fail("malformed message length: " + prefix.error().message);
      if (*prefix) {
        if ((*prefix)->length > max_size) {
          co_return fail("message of " + std::to_string((*prefix)->length) +
                         " bytes is over the limit of " + std::to_string(max_size));
        }
        body_size = static_cast<std::size_t>((*prefix)->length);
        header_size = (*prefix)->size;
        if (!reservation.reserve(*body_size)) {
          co_return fail("resource limit: no memory for a message of " +
                         std::to_string(*body_size) + " bytes");
        }
      }
    }
    if (body_size && received.size() >= header_size + *body_size) {
      const std::size_t end = header_size + *body_size;
      stream.unread(copy_range(received, end, received.size()));
      co_return std::optional<Bytes>(copy_range(received, header_size, end));
    }
    // Never read far past the message: what is read ahead is pushed back, but must be held.
    std::size_t want = kReadChunk;
    if (body_size) want = std::min(want, header_size + *body_size - received.size());
    auto read = co_await stream.read_some(std::span(chunk.data(), want));
    if (!read) co_return tl::unexpected(read.error());
    if (*read == 0) {
      if (received.empty()) co_return std::optional<Bytes>();
      co_return fail("the stream ended inside a message");
    }
    append_bytes(received, chunk.data(), *read);
  }
}

asio::awaitable<Expected<void>> write_framed(ByteStream& stream, ByteView message) {
  Bytes framed;
  framed.reserve(kMaxVarintLength + message.size());
  append_varint(framed, message.size());
  framed.insert(framed.end(), message.begin(), message.end());
  co_return co_await stream.write_all(framed);
}

}  // namespace an::p2p::net
