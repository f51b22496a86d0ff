#include "p2p/wire/length_prefixed.h"

#include <algorithm>
#include <string>

namespace an::p2p {
namespace {

std::size_t varint_size(std::uint64_t value) {
  std::size_t size = 1;
  for (; value >= 0x80; value >>= 7)
    ++size;
  return size;
}

}  // namespace

Expected<std::optional<LengthPrefix>> read_length_prefix(ByteView buffer) {
  // A prefix split across reads is not an error yet, though read_varint calls it truncated.
  if (buffer.size() < kMaxVarintLength &&
      std::all_of(buffer.begin(), buffer.end(), [](std::uint8_t byte) { return byte & 0x80; })) {
    return std::optional<LengthPrefix>{};
  }
  ByteView rest = buffer;
  auto length = read_varint(rest);
  if (!length) return fail(length.error().message, std::make_error_code(kMalformedLength));
  return LengthPrefix{buffer.size() - rest.size(), *length};
}

Expected<std::optional<ByteView>> take_frame(ByteView& buffer, std::size_t max_size) {
  const std::size_t longest_prefix = varint_size(max_size);
  // Never past 9 bytes: a 10-byte prefix is malformed, under any cap and any split.
  const std::size_t scanned = std::min({buffer.size(), longest_prefix, kMaxVarintLength});
  std::size_t continuation_bytes = 0;
  while (continuation_bytes < scanned && (buffer[continuation_bytes] & 0x80) != 0) {
    ++continuation_bytes;
  }
  if (continuation_bytes == longest_prefix) {
    return fail(
        "the length prefix announces more than the limit of " + std::to_string(max_size) + " bytes",
        std::make_error_code(kFrameTooLarge));
  }
  auto prefix = read_length_prefix(buffer);
  if (!prefix) {
    return fail("malformed length prefix: " + prefix.error().message, prefix.error().code);
  }
  if (!*prefix) return std::optional<ByteView>{};
  if ((*prefix)->length > max_size) {
    return fail("message of " + std::to_string((*prefix)->length) + " bytes is over the limit of " +
                    std::to_string(max_size),
                std::make_error_code(kFrameTooLarge));
  }
  const auto size = static_cast<std::size_t>((*prefix)->length);
  ByteView rest = buffer.subspan((*prefix)->size);
  if (rest.size() < size) return std::optional<ByteView>{};
  buffer = rest.subspan(size);
  return std::optional<ByteView>(rest.subspan(0, size));
}

}  // namespace an::p2p
