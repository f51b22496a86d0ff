#include "p2p/net/upgrade.h"

#include <algorithm>
#include <array>

#include "p2p/crypto/keys.h"
#include "p2p/mplex/session.h"
#include "p2p/multistream/multistream.h"
#include "p2p/net/negotiate.h"
#include "p2p/noise/framing.h"
#include "p2p/noise/handshake.h"
#include "p2p/noise/io/noise_connection.h"
#include "p2p/noise/noise.h"
#include "p2p/plaintext/io/plaintext_connection.h"
#include "p2p/tls/host_key.h"
#include "p2p/tls/io/tls_connection.h"
#include "p2p/yamux/session.h"

namespace an::p2p::net {
namespace {

// A secured channel and the muxer agreed during its handshake, if any.
struct Secured {
  std::unique_ptr<SecureConnection> secure;
  std::optional<std::string> early_muxer;
};

bool is_supported_security(std::string_view protocol) {
  return protocol == noise::kProtocolId || protocol == tls::kTlsProtocolId ||
         protocol == plaintext::kPlaintextProtocolId;
}

bool is_supported_muxer(std::string_view protocol) {
  return protocol == yamux::kProtocolId || protocol == mplex::kProtocolId;
}

asio::awaitable<Expected<Bytes>> read_handshake_message(ByteStream& stream) {
  Bytes header(noise::kFrameHeaderSize);
  auto got = co_await read_exact(stream, header);
  if (!got) co_return tl::unexpected(got.error());
  std::size_t length = (std::size_t{header[0]} << 8) | header[1];
  Bytes message(length);
  got = co_await read_exact(stream, message);
  if (!got) co_return tl::unexpected(got.error());
  co_return message;
}

Expected<void> append_handshake_message(noise::Handshake& handshake, Bytes& out) {
  auto message = handshake.write_message();
  if (!message) return tl::unexpected(message.error());
  return noise::append_frame(*message, out);
}

// The muxer both sides announced inside the handshake (early muxer negotiation), if any: the
// initiator's first choice that the responder also lists.
std::optional<std::string> common_muxer(const std::vector<std::string>& initiator_list,
                                        const std::vector<std::string>& responder_list) {
  for (const auto& candidate : initiator_list) {
    for (const auto& offered : responder_list) {
      if (candidate == offered) return candidate;
    }
  }
  return std::nullopt;
}

Expected<noise::Handshake> make_handshake(noise::Role role, const LocalIdentity& local,
                                          std::optional<PeerId> expected_peer) {
  noise::HandshakeOptions options;
  options.role = role;
  options.identity = &local.key;
  options.static_key = &local.noise_static;
  options.expected_remote = std::move(expected_peer);
  options.stream_muxers = local.muxers;
  return noise::Handshake::create(options);
}

// Dialer side of Noise XX. `optimistic` holds the security negotiation still in flight when
// "/noise" was proposed together with the first handshake message (our only offer).
asio::awaitable<Expected<Secured>> noise_outbound(
    std::unique_ptr<ByteStream> transport, const LocalIdentity& local,
    std::optional<PeerId> expected_peer, std::optional<multistream::Initiator> optimistic) {
  auto handshake = make_handshake(noise::Role::kInitiator, local, std::move(expected_peer));
  if (!handshake) co_return tl::unexpected(handshake.error());
  Bytes out;
  if (optimistic) optimistic->take_output(out);
  if (auto appended = append_handshake_message(*handshake, out); !appended) {
    co_return tl::unexpected(appended.error());
  }
  if (auto written = co_await transport->write_all(out); !written) {
    co_return tl::unexpected(written.error());
  }
  if (optimistic) {
    Bytes buffer(1024);
    while (!optimistic->done()) {
      auto got = co_await transport->read_some(buffer);
      if (!got) co_return tl::unexpected(got.error());
      if (*got == 0) co_return fail("the peer closed the connection during security negotiation");
      if (auto fed = optimistic->receive(ByteView(buffer.data(), *got)); !fed) {
        co_return fail("security negotiation: " + fed.error().message);
      }
    }
    transport->unread(optimistic->take_leftover());
  }

  auto second = co_await read_handshake_message(*transport);
  if (!second) co_return tl::unexpected(second.error());
  if (auto read = handshake->read_message(*second); !read) co_return tl::unexpected(read.error());
  out.clear();
  if (auto appended = append_handshake_message(*handshake, out); !appended) {
    co_return tl::unexpected(appended.error());
  }
  auto result = handshake->finish();
  if (!result) co_return tl::unexpected(result.error());
  if (auto written = co_await transport->write_all(out); !written) {
    co_return tl::unexpected(written.error());
  }
  auto muxer = common_muxer(local.muxers, result->remote_stream_muxers);
  auto executor = co_await asio::this_coro::executor;
  std::unique_ptr<SecureConnection> secure = std::make_unique<noise::NoiseConnection>(
      std::move(transport), std::move(executor), std::move(result->send),
      std::move(result->receive), result->remote_peer);
  co_return Secured{std::move(secure), std::move(muxer)};
}

asio::awaitable<Expected<Secured>> noise_inbound(std::unique_ptr<ByteStream> transport,
                                                 const LocalIdentity& local) {
  auto handshake = make_handshake(noise::Role::kResponder, local, std::nullopt);
  if (!handshake) co_return tl::unexpected(handshake.error());
  auto first = co_await read_handshake_message(*transport);
  if (!first) co_return tl::unexpected(first.error());
  if (auto read = handshake->read_message(*first); !read) co_return tl::unexpected(read.error());
  Bytes out;
  if (auto appended = append_handshake_message(*handshake, out); !appended) {
    co_return tl::unexpected(appended.error());
  }
  if (auto written = co_await transport->write_all(out); !written) {
    co_return tl::unexpected(written.error());
  }
  auto third = co_await read_handshake_message(*transport);
  if (!third) co_return tl::unexpected(third.error());
  if (auto read = handshake->read_message(*third); !read) co_return tl::unexpected(read.error());
  auto result = handshake->finish();
  if (!result) co_return tl::unexpected(result.error());

  auto muxer = common_muxer(result->remote_stream_muxers, local.muxers);
  auto executor = co_await asio::this_coro::executor;
  std::unique_ptr<SecureConnection> secure = std::make_unique<noise::NoiseConnection>(
      std::move(transport), std::move(executor), std::move(result->send),
      std::move(result->receive), result->remote_peer);
  co_return Secured{std::move(secure), std::move(muxer)};
}

asio::awaitable<Expected<Secured>> plaintext_handshake(std::unique_ptr<ByteStream> transport,
                                                       const LocalIdentity& local,
                                                       std::optional<PeerId> expected_peer) {
  auto secure = co_await plaintext::secure_plaintext(std::move(transport), local.peer_id,
                                                     local.key.public_key().protobuf(),
                                                     std::move(expected_peer));
  if (!secure) co_return tl::unexpected(secure.error());
  co_return Secured{std::move(*secure), std::nullopt};
}

asio::awaitable<Expected<Secured>> tls_handshake(std::unique_ptr<ByteStream> transport,
                                                 const LocalIdentity& local, Direction direction,
                                                 std::optional<PeerId> expected_peer) {
  tls::TlsHostKey host_key = tls::libp2p_host_key(local.key);
  tls::SignedKeyVerifier verifier = tls::verify_signed_key;
  auto secured =
      co_await tls::secure_tls(std::move(transport), direction == Direction::kOutbound, host_key,
                               std::move(verifier), std::move(expected_peer), local.muxers);
  if (!secured) co_return tl::unexpected(secured.error());
  std::unique_ptr<SecureConnection> secure = std::move(secured->connection);
  co_return Secured{std::move(secure), std::move(secured->early_muxer)};
}

// The handshake of the security protocol both sides agreed on.
asio::awaitable<Expected<Secured>> secure_with(const std::string& protocol,
                                               std::unique_ptr<ByteStream> transport,
                                               const LocalIdentity& local, Direction direction,
                                               std::optional<PeerId> expected_peer) {
  if (protocol == noise::kProtocolId) {
    if (direction == Direction::kInbound)
      co_return co_await noise_inbound(std::move(transport), local);
    co_return co_await noise_outbound(std::move(transport), local, std::move(expected_peer),
                                      std::nullopt);
  }
  if (protocol == tls::kTlsProtocolId) {
    co_return co_await tls_handshake(std::move(transport), local, direction,
                                     std::move(expected_peer));
  }
  if (protocol == plaintext::kPlaintextProtocolId) {
    co_return co_await plaintext_handshake(std::move(transport), local, std::move(expected_peer));
  }
  co_return fail("security protocol " + protocol + " is not supported yet");
}

// The muxer: agreed during the handshake, or negotiated over the secured channel.
asio::awaitable<Expected<UpgradedConnection>> select_muxer(Secured secured,
                                                           const LocalIdentity& local,
                                                           Direction direction) {
  if (secured.early_muxer) {
    co_return UpgradedConnection{std::move(secured.secure), std::move(*secured.early_muxer)};
  }
  if (direction == Direction::kOutbound) {
    auto selected = co_await negotiate_outbound(*secured.secure, local.muxers);
    if (!selected) co_return fail("muxer negotiation: " + selected.error().message);
    co_return UpgradedConnection{std::move(secured.secure), *selected};
  }
  multistream::Responder responder(local.muxers);
  auto selected = co_await negotiate_inbound(*secured.secure, std::move(responder));
  if (!selected) co_return fail("muxer negotiation: " + selected.error().message);
  co_return UpgradedConnection{std::move(secured.secure), *selected};
}

}  // namespace

Expected<void> validate_upgrade_protocols(const LocalIdentity& local) {
  auto check = [](const std::vector<std::string>& list, const char* what,
                  bool (*supported)(std::string_view)) -> Expected<void> {
    if (list.empty()) return fail(std::string("no ") + what + " is enabled");
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (!supported(list[i])) return fail(std::string(what) + " " + list[i] + " is not supported");
      if (std::find(list.begin(), list.begin() + static_cast<long>(i), list[i]) !=
          list.begin() + static_cast<long>(i)) {
        return fail(std::string(what) + " " + list[i] + " is listed twice");
      }
    }
    return {};
  };
  if (auto ok = check(local.security_protocols, "security protocol", is_supported_security); !ok) {
    return ok;
  }
  return check(local.muxers, "muxer", is_supported_muxer);
}

asio::awaitable<Expected<UpgradedConnection>> upgrade_outbound(
    std::unique_ptr<ByteStream> transport, const LocalIdentity& local,
    std::optional<PeerId> expected_peer) {
  Expected<Secured> secured = fail("no security protocol is enabled");
  if (local.security_protocols.empty()) co_return tl::unexpected(secured.error());
  if (local.security_protocols.front() == noise::kProtocolId) {
    // Optimistic: the multistream header, the "/noise" proposal and the first Noise message go
    // out in one write, saving a round trip; a refusal fails the dial, as the peer reads our
    // Noise message as its next proposal. Every libp2p implementation accepts Noise, so the
    // rest of the list serves inbound connections (put another protocol first to dial peers
    // without Noise).
    std::vector<std::string> first_choice(1, local.security_protocols.front());
    auto initiator =
        multistream::Initiator::create(first_choice, multistream::InitiatorMode::kOptimistic);
    if (!initiator) co_return tl::unexpected(initiator.error());
    secured = co_await noise_outbound(std::move(transport), local, std::move(expected_peer),
                                      std::move(*initiator));
  } else {
    auto selected = co_await negotiate_outbound(*transport, local.security_protocols);
    if (!selected) co_return fail("security negotiation: " + selected.error().message);
    secured = co_await secure_with(*selected, std::move(transport), local, Direction::kOutbound,
                                   std::move(expected_peer));
  }
  if (!secured) co_return tl::unexpected(secured.error());
  co_return co_await select_muxer(std::move(*secured), local, Direction::kOutbound);
}

asio::awaitable<Expected<UpgradedConnection>> upgrade_inbound(std::unique_ptr<ByteStream> transport,
                                                              LocalIdentity local) {
  // go-libp2p proposes /tls/1.0.0 first: a responder without it answers "na" and the dialer
  // moves on to /noise.
  multistream::Responder security_responder(local.security_protocols);
  auto selected = co_await negotiate_inbound(*transport, std::move(security_responder));
  if (!selected) co_return fail("security negotiation: " + selected.error().message);
  auto secured = co_await secure_with(*selected, std::move(transport), local, Direction::kInbound,
                                      std::nullopt);
  if (!secured) co_return tl::unexpected(secured.error());
  co_return co_await select_muxer(std::move(*secured), local, Direction::kInbound);
}

}  // namespace an::p2p::net
