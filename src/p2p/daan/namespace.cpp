#include "p2p/daan/namespace.h"

#include "p2p/multiformats/base32.h"
#include "p2p/multiformats/multihash.h"

namespace an::p2p::daan {

Expected<void> check_namespace(std::string_view ns) {
  if (ns.empty()) return fail("namespace is empty");
  if (ns.size() > kMaxNamespaceLength) {
    return fail("namespace is " + std::to_string(ns.size()) + " bytes, more than the " +
                std::to_string(kMaxNamespaceLength) + " allowed");
  }
  return {};
}

Bytes namespace_provider_key(std::string_view ns) {
  auto hash = sha256_multihash(to_bytes(ns));
  if (!hash) return {};
  return hash->encode();
}

Bytes namespace_cid(std::string_view ns) {
  Bytes multihash = namespace_provider_key(ns);
  if (multihash.empty()) return {};
  Bytes cid;
  cid.reserve(multihash.size() + 2);
  append_varint(cid, kCidVersion1);
  append_varint(cid, kRawCodec);
  cid.insert(cid.end(), multihash.begin(), multihash.end());
  return cid;
}

std::string namespace_cid_text(std::string_view ns) {
  // Multibase prefix 'b': base32, lowercase, unpadded.
  return "b" + base32_encode(namespace_cid(ns));
}

}  // namespace an::p2p::daan
