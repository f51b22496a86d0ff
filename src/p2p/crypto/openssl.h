// Shared OpenSSL plumbing for the crypto code: owning handles and error text. Any thread (the
// error queue OpenSSL reads is per thread).
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <string>

namespace an::p2p::openssl {

struct DigestContextDeleter {
  void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
};
using DigestContext = std::unique_ptr<EVP_MD_CTX, DigestContextDeleter>;

struct KeyContextDeleter {
  void operator()(EVP_PKEY_CTX* context) const { EVP_PKEY_CTX_free(context); }
};
using KeyContext = std::unique_ptr<EVP_PKEY_CTX, KeyContextDeleter>;

struct KeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyDeleter>;

// "<what> failed in OpenSSL: <reason>" from the oldest entry of this thread's error queue; the
// queue is cleared so that it does not leak into unrelated later calls.
std::string failure(const std::string& what);

}  // namespace an::p2p::openssl
