#include "p2p/multiformats/multihash.h"

#include <openssl/evp.h>

#include <cstdio>

namespace an::p2p {

Bytes Multihash::encode() const {
  Bytes out;
  out.reserve(digest.size() + 4);
  append_varint(out, code);
  append_varint(out, digest.size());
  out.insert(out.end(), digest.begin(), digest.end());
  return out;
}

std::string multihash_code_name(std::uint64_t code) {
  if (code == kIdentityMultihashCode) return "identity";
  if (code == kSha2_256MultihashCode) return "sha2-256";
  char text[32];
  std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(code));
  return text;
}

Multihash identity_multihash(ByteView data) {
  return Multihash{kIdentityMultihashCode, Bytes(data.begin(), data.end())};
}

Expected<std::array<std::uint8_t, kSha256DigestSize>> sha256(ByteView data) {
  std::array<std::uint8_t, kSha256DigestSize> digest{};
  unsigned int digest_size = 0;
  if (EVP_Digest(data.data(), data.size(), digest.data(), &digest_size, EVP_sha256(), nullptr) !=
          1 ||
      digest_size != kSha256DigestSize) {
    return fail("SHA-256 failed in OpenSSL");
  }
  return digest;
}

Expected<Multihash> sha256_multihash(ByteView data) {
  auto digest = sha256(data);
  if (!digest) return tl::unexpected(digest.error());
  return Multihash{kSha2_256MultihashCode, Bytes(digest->begin(), digest->end())};
}

Expected<Multihash> read_multihash(ByteView& input) {
  ByteView rest = input;
  auto code = read_varint(rest);
  if (!code) return fail("bad multihash function code: " + code.error().message);
  auto length = read_varint(rest);
  if (!length) return fail("bad multihash digest length: " + length.error().message);
  if (*length > rest.size()) {
    return fail("truncated multihash: the " + multihash_code_name(*code) + " digest should be " +
                std::to_string(*length) + " bytes but only " + std::to_string(rest.size()) +
                " are left");
  }
  if (*code == kSha2_256MultihashCode && *length != kSha256DigestSize) {
    return fail("a sha2-256 multihash digest must be 32 bytes, not " + std::to_string(*length));
  }
  const auto digest = rest.first(static_cast<std::size_t>(*length));
  Multihash multihash{*code, Bytes(digest.begin(), digest.end())};
  input = rest.subspan(digest.size());
  return multihash;
}

Expected<Multihash> parse_multihash(ByteView bytes) {
  auto multihash = read_multihash(bytes);
  if (!multihash) return multihash;
  if (!bytes.empty()) {
    return fail(std::to_string(bytes.size()) + " unexpected byte(s) after the multihash");
  }
  return multihash;
}

}  // namespace an::p2p
