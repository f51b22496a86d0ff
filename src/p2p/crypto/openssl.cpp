#include "p2p/crypto/openssl.h"

#include <openssl/err.h>

namespace an::p2p::openssl {

std::string failure(const std::string& what) {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return what + " failed in OpenSSL";
  char reason[256];
  ERR_error_string_n(code, reason, sizeof reason);
  return what + " failed in OpenSSL: " + reason;
}

}  // namespace an::p2p::openssl
