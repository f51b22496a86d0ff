#include "p2p/identify/io/identify_service.h"

#include <algorithm>

#include "p2p/crypto/key.h"
#include "p2p/net/host.h"
#include "p2p/record/peer_record.h"

namespace an::p2p::identify {
namespace {

static_assert(record::kMaxEnvelopeSize <= kMaxMessageSize,
              "a signed peer record travels inside one identify message");

using net::with_timeout;

// Everything the peer writes until it closes, at most `limit` bytes, reserved from the stream's
// resource scope while it is gathered.
asio::awaitable<Expected<Bytes>> read_to_end(net::ByteStream& stream, std::size_t limit) {
  Bytes data;
  Bytes buffer(4096);
  struct Held {
    net::ByteStream& stream;
    std::size_t bytes = 0;
    ~Held() { stream.release_memory(bytes); }
  } held{stream};
  for (;;) {
    auto got = co_await stream.read_some(buffer);
    if (!got) co_return tl::unexpected(got.error());
    if (*got == 0) co_return data;
    if (data.size() + *got > limit) co_return fail("message larger than " + std::to_string(limit));
    if (!stream.reserve_memory(*got)) co_return fail("resource limit: identify message");
    held.bytes += *got;
    data.insert(data.end(), buffer.begin(), buffer.begin() + static_cast<long>(*got));
  }
}

// How we see the peer, for its identify. A relayed connection is seen as go's relayed
// connections report it: the relay's transport address, /p2p/RELAY/p2p-circuit (without the
// peer's own /p2p/). js-libp2p's identify refuses the whole message when the observed address
// does not start with an IP or DNS component, so nothing is sent then.
std::optional<Multiaddr> observed_address_for_identify(const net::Connection& connection) {
  Multiaddr observed = connection.remote_address();
  if (connection.relayed()) observed = observed.without_p2p();
  const auto& parts = observed.components();
  if (parts.empty()) return std::nullopt;
  switch (parts.front().code) {
    case kProtocolIp4:
    case kProtocolIp6:
    case kProtocolDns:
    case kProtocolDns4:
    case kProtocolDns6:
    case kProtocolDnsaddr:
      return observed;
    default:
      return std::nullopt;
  }
}

bool is_loopback(const Multiaddr& address) {
  const auto& parts = address.components();
  if (parts.empty()) return false;
  return (parts[0].code == kProtocolIp4 && parts[0].value.starts_with("127.")) ||
         (parts[0].code == kProtocolIp6 && parts[0].value == "::1");
}

std::size_t field_size(std::size_t value_size) {
  Bytes length;
  append_varint(length, value_size);
  return 1 + length.size() + value_size;
}

// Cuts `message` to `budget` encoded bytes: addresses go first, loopback ones before the rest
// and the last ones before the first (the caller lists direct addresses before relayed ones),
// then, when `protocols_too`, protocols from the end.
void trim_to_size(Identify& message, std::size_t budget, bool protocols_too) {
  std::size_t size = encode(message).size();
  const auto drop_addresses = [&](bool loopback_only) {
    for (auto it = message.listen_addrs.end(); it != message.listen_addrs.begin();) {
      if (size <= budget) return;
      --it;
      if (loopback_only && !is_loopback(*it)) continue;
      size -= field_size(it->to_bytes().size());
      it = message.listen_addrs.erase(it);
    }
  };
  drop_addresses(true);
  drop_addresses(false);
  while (protocols_too && size > budget && !message.protocols.empty()) {
    size -= field_size(message.protocols.back().size());
    message.protocols.pop_back();
  }
}

}  // namespace

IdentifyService::IdentifyService(net::Host& host, std::string agent_version,
                                 std::string protocol_version)
    : host_(host),
      agent_version_(std::move(agent_version)),
      protocol_version_(std::move(protocol_version)) {}

IdentifyService::~IdentifyService() = default;

void IdentifyService::start() {
  host_.set_handler(std::string(kProtocolId), [this](std::shared_ptr<net::Stream> stream) {
    return serve_identify(std::move(stream));
  });
  host_.set_handler(std::string(kPushProtocolId), [this](std::shared_ptr<net::Stream> stream) {
    return serve_push(std::move(stream));
  });
}

void IdentifyService::identify_connection(std::shared_ptr<net::Connection> connection) {
  asio::co_spawn(host_.io_context(), run_identify(std::move(connection)), net::report_exception);
}

Identify IdentifyService::own_identify(const net::Connection& connection) const {
  Identify message;
  message.protocol_version = protocol_version_;
  message.agent_version = agent_version_;
  message.public_key = host_.identity().key.public_key().protobuf();
  message.listen_addrs = host_.advertised_addresses();
  message.observed_addr = observed_address_for_identify(connection);
  message.protocols = host_.protocols();
  // go and rust-libp2p peers take 4 KiB of us (go's maxOwnIdentifyMsgSize), less than we accept
  // of them. A large message goes out as two (encode_stream), the signed peer record alone in
  // the second, and both must fit; the record holds the addresses again, a little larger.
  trim_to_size(message, kMaxOwnMessageSize, true);
  for (;;) {
    // A record without addresses would only make a js-libp2p peer replace the addresses it
    // knows us by (e.g. the circuit address it dialled) with none, and then fail to open
    // streams on the relayed connection it holds.
    if (message.listen_addrs.empty()) return message;
    auto signed_record = record::make_signed_peer_record(host_.identity().key, peer_record_seq_,
                                                         message.listen_addrs);
    if (!signed_record) return message;
    Identify record_only;
    record_only.signed_peer_record = std::move(*signed_record);
    const std::size_t record_size = encode(record_only).size();
    if (record_size <= kMaxOwnMessageSize) {
      message.signed_peer_record = std::move(record_only.signed_peer_record);
      return message;
    }
    // Drop as many bytes of addresses as the record is over.
    const std::size_t size = encode(message).size();
    trim_to_size(message, size - std::min(size, record_size - kMaxOwnMessageSize), false);
  }
}

void IdentifyService::record(const PeerId& peer, Identify message) {
  net::IdentifyRecord learned;
  if (message.public_key) {
    auto key = PublicKey::from_protobuf(*message.public_key);
    if (!key || key->peer_id() != peer) return;  // not the peer we authenticated
    learned.public_key = key->protobuf();
  }
  learned.listen_addresses = std::move(message.listen_addrs);
  learned.protocols = std::move(message.protocols);
  learned.agent_version = std::move(message.agent_version);
  learned.protocol_version = std::move(message.protocol_version);
  learned.observed_address = std::move(message.observed_addr);
  const net::PeerInfo* info = host_.peer_store().record_identify(peer, std::move(learned));
  if (info == nullptr) return;
  for (const auto& listener : listeners_)
    listener(peer, *info);
}

asio::awaitable<void> IdentifyService::run_identify(std::shared_ptr<net::Connection> connection) {
  auto alive = lifetime_.token();
  std::vector<std::string> protocols{std::string(kProtocolId)};
  auto stream = co_await host_.new_stream_on(connection, std::move(protocols));
  if (!alive || !stream) co_return;
  auto data =
      co_await with_timeout(read_to_end(**stream, kMaxStreamSize), kIdentifyTimeout, "identify");
  if (!alive || !data) co_return;
  (void)co_await (*stream)->close_write();
  auto message = decode_stream(*data);
  if (!message) co_return;
  record(connection->remote_peer(), std::move(*message));
}

asio::awaitable<void> IdentifyService::serve_identify(std::shared_ptr<net::Stream> stream) {
  auto message = encode_stream(own_identify(stream->connection()));
  auto written = co_await stream->write_all(message);
  if (written) (void)co_await stream->close_write();
}

asio::awaitable<void> IdentifyService::serve_push(std::shared_ptr<net::Stream> stream) {
  auto alive = lifetime_.token();
  auto data = co_await with_timeout(read_to_end(*stream, kMaxStreamSize), kIdentifyTimeout,
                                    "identify push");
  if (!alive || !data) co_return;
  auto message = decode_stream(*data);
  if (!message) co_return;
  record(stream->remote_peer(), std::move(*message));
}

}  // namespace an::p2p::identify
