#include "p2p/kad/key.h"

#include <bit>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <openssl/evp.h>

#include "p2p/crypto/openssl.h"

namespace an::p2p::kad {

namespace {

[[noreturn]] void fatal(const std::string& message) {
  std::fprintf(stderr, "agentnetwork: fatal: %s\n", message.c_str());
  std::abort();
}

}  // namespace

Key Key::hash(ByteView data) {
  // Lookups and routing tables hash every peer they meet, so the digest is fetched once per
  // process and the context reused per thread: OpenSSL 3's one-shot EVP_Digest(EVP_sha256())
  // looks the algorithm up in its provider store and allocates a context on every call.
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);  // never freed
  thread_local openssl::DigestContext context(EVP_MD_CTX_new());
  if (kSha256 == nullptr || !context) fatal(openssl::failure("SHA-256 set-up"));
  Array digest{};
  unsigned int size = 0;
  if (EVP_DigestInit_ex2(context.get(), kSha256, nullptr) != 1 ||
      EVP_DigestUpdate(context.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(context.get(), digest.data(), &size) != 1 || size != kKeySize) {
    fatal(openssl::failure("SHA-256"));
  }
  return Key(digest);
}

std::string Key::to_hex() const {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * kKeySize);
  for (std::uint8_t byte : bytes_) {
    hex += kDigits[byte >> 4];
    hex += kDigits[byte & 0x0f];
  }
  return hex;
}

Key distance(const Key& a, const Key& b) {
  // Eight bytes at a time: XOR does not care about byte order.
  static_assert(kKeySize % sizeof(std::uint64_t) == 0);
  Key::Array out;
  for (std::size_t i = 0; i < kKeySize; i += sizeof(std::uint64_t)) {
    std::uint64_t x = 0;
    std::uint64_t y = 0;
    std::memcpy(&x, a.bytes().data() + i, sizeof(x));
    std::memcpy(&y, b.bytes().data() + i, sizeof(y));
    x ^= y;
    std::memcpy(out.data() + i, &x, sizeof(x));
  }
  return Key(out);
}

int common_prefix_length(const Key& a, const Key& b) {
  for (std::size_t i = 0; i < kKeySize; ++i) {
    const auto diff = static_cast<std::uint8_t>(a.bytes()[i] ^ b.bytes()[i]);
    if (diff != 0) return static_cast<int>(i) * 8 + std::countl_zero(diff);
  }
  return kKeyBits;
}

std::strong_ordering compare_distance(const Key& target, const Key& a, const Key& b) {
  for (std::size_t i = 0; i < kKeySize; ++i) {
    const auto da = static_cast<std::uint8_t>(a.bytes()[i] ^ target.bytes()[i]);
    const auto db = static_cast<std::uint8_t>(b.bytes()[i] ^ target.bytes()[i]);
    if (da != db) return da <=> db;
  }
  return std::strong_ordering::equal;
}

}  // namespace an::p2p::kad

std::size_t std::hash<an::p2p::kad::Key>::operator()(const an::p2p::kad::Key& key) const noexcept {
  // The bytes are a SHA-256 digest (or a distance between two): any 8 of them are uniform.
  std::size_t value = 0;
  std::memcpy(&value, key.bytes().data(), sizeof(value));
  return value;
}
