#include "p2p/net/upgrade.h"

#include <array>

#include "p2p/multistream/multistream.h"
#include "p2p/net/negotiate.h"
#include "p2p/noise/framing.h"
#include "p2p/noise/handshake.h"
#include "p2p/noise/noise.h"
#include "p2p/yamux/session.h"

namespace an::p2p::net {
namespace {

const std::vector<std::string>& our_muxers() {
  static const std::vector<std::string> muxers{std::string(yamux::kProtocolId)};
  return muxers;
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

// The muxer both sides announced inside Noise (early muxer negotiation), if any: the
// initiator's first choice that the responder also lists.
std::optional<std::string> inlined_muxer(const std::vector<std::string>& initiator_list,
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
  options.stream_muxers = our_muxers();
  return noise::Handshake::create(options);
}

}  // namespace

asio::awaitable<Expected<UpgradedConnection>> upgrade_outbound(
    std::unique_ptr<ByteStream> transport, const LocalIdentity& local,
    std::optional<PeerId> expected_peer) {
  auto handshake = make_handshake(noise::Role::kInitiator, local, std::move(expected_peer));
  if (!handshake) co_return tl::unexpected(handshake.error());

  // Optimistic: the multistream header, the "/noise" proposal and the first Noise message go
  // out in one write. We offer nothing else, so a refusal fails either way.
  std::vector<std::string> security_protocols{std::string(noise::kProtocolId)};
  auto initiator =
      multistream::Initiator::create(security_protocols, multistream::InitiatorMode::kOptimistic);
  if (!initiator) co_return tl::unexpected(initiator.error());
  Bytes out;
  initiator->take_output(out);
  if (auto appended = append_handshake_message(*handshake, out); !appended) {
    co_return tl::unexpected(appended.error());
  }
  if (auto written = co_await transport->write_all(out); !written) {
    co_return tl::unexpected(written.error());
  }
  Bytes buffer(1024);
  while (!initiator->done()) {
    auto got = co_await transport->read_some(buffer);
    if (!got) co_return tl::unexpected(got.error());
    if (*got == 0) co_return fail("the peer closed the connection during security negotiation");
    if (auto fed = initiator->receive(ByteView(buffer.data(), *got)); !fed) {
      co_return fail("security negotiation: " + fed.error().message);
    }
  }
  transport->unread(initiator->take_leftover());

  auto second = co_await read_handshake_message(*transport);
  if (!second) co_return tl::unexpected(second.error());
  if (auto read = handshake->read_message(*second); !read) co_return tl::unexpected(read.error());
  out.clear();
  if (auto appended = append_handshake_message(*handshake, out); !appended) {
    co_return tl::unexpected(appended.error());
  }
  auto result = handshake->finish();
  if (!result) co_return tl::unexpected(result.error());

  auto muxer = inlined_muxer(our_muxers(), result->remote_stream_muxers);
  auto executor = co_await asio::this_coro::executor;
  auto secure = std::make_unique<SecureConnection>(std::move(transport), std::move(executor),
                                                   std::move(result->send),
                                                   std::move(result->receive), result->remote_peer);
  if (muxer) {
    if (auto written = co_await secure->transport().write_all(out); !written) {
      co_return tl::unexpected(written.error());
    }
    co_return UpgradedConnection{std::move(secure), *muxer};
  }
  // No early negotiation: the third Noise message, then multistream-select for the muxer.
  if (auto written = co_await secure->transport().write_all(out); !written) {
    co_return tl::unexpected(written.error());
  }
  auto selected = co_await negotiate_outbound(*secure, our_muxers());
  if (!selected) co_return fail("muxer negotiation: " + selected.error().message);
  co_return UpgradedConnection{std::move(secure), *selected};
}

asio::awaitable<Expected<UpgradedConnection>> upgrade_inbound(std::unique_ptr<ByteStream> transport,
                                                              LocalIdentity local) {
  // go-libp2p proposes /tls/1.0.0 first: the responder answers "na" and it moves on to /noise.
  // Braced lists are kept out of co_await expressions: GCC 12 mishandles their backing arrays
  // in coroutine frames.
  std::vector<std::string> security_protocols{std::string(noise::kProtocolId)};
  multistream::Responder security_responder(security_protocols);
  auto selected = co_await negotiate_inbound(*transport, std::move(security_responder));
  if (!selected) co_return fail("security negotiation: " + selected.error().message);

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

  auto muxer = inlined_muxer(result->remote_stream_muxers, our_muxers());
  auto executor = co_await asio::this_coro::executor;
  auto secure = std::make_unique<SecureConnection>(std::move(transport), std::move(executor),
                                                   std::move(result->send),
                                                   std::move(result->receive), result->remote_peer);
  if (muxer) co_return UpgradedConnection{std::move(secure), *muxer};
  multistream::Responder muxer_responder(our_muxers());
  auto muxer_selected = co_await negotiate_inbound(*secure, std::move(muxer_responder));
  if (!muxer_selected) co_return fail("muxer negotiation: " + muxer_selected.error().message);
  co_return UpgradedConnection{std::move(secure), *muxer_selected};
}

}  // namespace an::p2p::net
