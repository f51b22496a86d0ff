// Connection upgrade (libp2p connections spec): multistream-select of the security protocol
// ("/noise" by default; "/tls/1.0.0" when listed; "/plaintext/2.0.0" only when enabled), its
// handshake, then the muxer ("/yamux/1.0.0" by default; chosen inside the Noise handshake or
// through TLS ALPN when both sides offer it, otherwise by multistream-select over the secured
// channel). Network thread only.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "p2p/crypto/key.h"
#include "p2p/crypto/peer_id.h"
#include "p2p/net/byte_stream.h"
#include "p2p/net/secure_connection.h"
#include "p2p/noise/x25519.h"

namespace an::p2p::net {

// Who we are on the wire, and what we offer there. The Noise static key is per process, as the
// libp2p spec asks.
struct LocalIdentity {
  PrivateKey key;
  PeerId peer_id;
  noise::X25519KeyPair noise_static;
  // Security protocols and muxers, in our order of preference (the dialer's order decides).
  std::vector<std::string> security_protocols{"/noise"};
  std::vector<std::string> muxers{"/yamux/1.0.0"};
};

// Errors for an empty list, duplicates and protocols we do not implement.
Expected<void> validate_upgrade_protocols(const LocalIdentity& local);

// Security handshake plus muxer selection must finish within this time, or the connection is
// dropped (a peer that stalls cannot hold resources).
inline constexpr std::chrono::seconds kUpgradeTimeout{15};

enum class Direction { kOutbound, kInbound };

struct UpgradedConnection {
  std::unique_ptr<SecureConnection> secure;
  std::string muxer;  // "/yamux/1.0.0"
};

// The transport is a TCP socket or, for a relayed connection, a stream to the relay.
// Dialer side. `expected_peer` comes from the /p2p/ part of the address dialled; a different
// authenticated peer ends the handshake.
asio::awaitable<Expected<UpgradedConnection>> upgrade_outbound(
    std::unique_ptr<ByteStream> transport, const LocalIdentity& local,
    std::optional<PeerId> expected_peer);

// `local` is taken by value: the coroutine may outlive its caller (e.g. a Host destroyed while
// the handshake is still running) and uses the identity after its first suspension.
asio::awaitable<Expected<UpgradedConnection>> upgrade_inbound(std::unique_ptr<ByteStream> transport,
                                                              LocalIdentity local);

}  // namespace an::p2p::net
