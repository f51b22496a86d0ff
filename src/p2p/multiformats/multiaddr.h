// Multiaddrs ("/ip4/1.2.3.4/tcp/4001/p2p/12D3KooW..."), text and binary (POSIX only for now).
// Immutable values: any thread may use them; each owns its components.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "p2p/crypto/peer_id.h"
#include "p2p/multiformats/varint.h"
#include "util/expected.h"

namespace an::p2p {

// Multicodec codes of the protocols we understand. Anything else is refused: an address we
// cannot interpret is one we cannot dial or announce correctly.
inline constexpr std::uint64_t kProtocolIp4 = 4;
inline constexpr std::uint64_t kProtocolTcp = 6;
inline constexpr std::uint64_t kProtocolIp6 = 41;
inline constexpr std::uint64_t kProtocolDns = 53;
inline constexpr std::uint64_t kProtocolDns4 = 54;
inline constexpr std::uint64_t kProtocolDns6 = 55;
inline constexpr std::uint64_t kProtocolDnsaddr = 56;
inline constexpr std::uint64_t kProtocolUdp = 273;
inline constexpr std::uint64_t kProtocolP2pCircuit = 290;
inline constexpr std::uint64_t kProtocolP2p = 421;
inline constexpr std::uint64_t kProtocolQuic = 460;  // draft-29 QUIC, still seen in old peers
inline constexpr std::uint64_t kProtocolQuicV1 = 461;

struct MultiaddrComponent {
  std::uint64_t code = 0;
  std::string_view protocol;  // Name, e.g. "tcp"; points at a static table.
  std::string value;          // Text form; empty for protocols without a value.
  Bytes raw_value;            // Binary form, without any length prefix.

  bool operator==(const MultiaddrComponent& other) const {
    return code == other.code && raw_value == other.raw_value;
  }
};

class Multiaddr {
 public:
  // The empty address (no components). parse() and from_bytes() never return it.
  Multiaddr() = default;

  // Text form. A single trailing '/' is tolerated, as go-multiaddr does; "/ipfs/" is read as
  // "/p2p/". Errors name the text and the part that is wrong, e.g.
  // invalid multiaddr "/ip4/1.2.3/tcp/1": bad ip4 address "1.2.3".
  static Expected<Multiaddr> parse(std::string_view text);
  // Binary form: <varint code><value> repeated, with a varint length before variable values.
  static Expected<Multiaddr> from_bytes(ByteView bytes);

  std::string to_string() const;
  Bytes to_bytes() const;

  const std::vector<MultiaddrComponent>& components() const { return components_; }
  bool empty() const { return components_.empty(); }

  // The text value of the first component with this protocol code, if any.
  std::optional<std::string> value_of(std::uint64_t code) const;

  // The peer ID text when the address ends with /p2p/<id> (the peer the address leads to; a
  // relay's /p2p/ in the middle of a circuit address does not count).
  std::optional<std::string> peer_id_component() const;

  // This address followed by `inner`'s components.
  Multiaddr encapsulate(const Multiaddr& inner) const;
  // This address with /p2p/<id> appended.
  Multiaddr with_peer_id(const PeerId& id) const;
  // This address without its trailing /p2p/<id>, if it has one.
  Multiaddr without_p2p() const;

  bool operator==(const Multiaddr&) const = default;

 private:
  std::vector<MultiaddrComponent> components_;
};

}  // namespace an::p2p

template <>
struct std::hash<an::p2p::Multiaddr> {
  std::size_t operator()(const an::p2p::Multiaddr& address) const noexcept;
};
