// DAAN discovery namespaces and the DHT keys they map to, as go-libp2p's routing discovery
// (p2p/discovery/routing) maps them: a namespace is advertised as a provider of the CIDv1 (raw
// codec) of the SHA-256 multihash of its text. Pure functions: any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "p2p/multiformats/varint.h"
#include "util/expected.h"

namespace an::p2p::daan {

// What every DAAN node advertises and looks up to find the others (the Go AgentNetwork's
// namespace).
inline constexpr std::string_view kNetworkNamespace = "/daan/1.0.0";
// By convention an agent offering a capability advertises kCapabilityNamespacePrefix + NAME.
inline constexpr std::string_view kCapabilityNamespacePrefix = "/daan/capability/";
// Namespaces are hashed, so any length would do on the wire; this bounds what an agent can make
// the node hold and log per namespace (go's routing discovery sets no limit).
inline constexpr std::size_t kMaxNamespaceLength = 256;

// CID version 1 and the multicodec of raw bytes (go-cid's cid.Raw).
inline constexpr std::uint64_t kCidVersion1 = 1;
inline constexpr std::uint64_t kRawCodec = 0x55;

// Non-empty and at most kMaxNamespaceLength bytes; an error saying which rule it breaks.
Expected<void> check_namespace(std::string_view ns);

// cid.NewCidV1(cid.Raw, multihash.Sum([]byte(ns), SHA2_256)): 0x01 0x55 0x12 0x20 + digest.
// Empty only if OpenSSL refuses SHA-256 (the DHT then refuses the empty key).
Bytes namespace_cid(std::string_view ns);
// The CID's multihash, 0x12 0x20 + digest: go-libp2p-kad-dht and js kad-dht store and look up
// the providers of a CID under its multihash, so this is the DHT key of the namespace.
Bytes namespace_provider_key(std::string_view ns);
// The CID as text, multibase base32 ("bafkrei..."), for logs.
std::string namespace_cid_text(std::string_view ns);

}  // namespace an::p2p::daan
