#include "p2p/relay/io/relay_client.h"

#include <algorithm>
#include <utility>

#include "p2p/net/async.h"
#include "p2p/net/framed.h"

namespace an::p2p::relay {

using net::ConnectionEvent;
using net::Host;
using net::read_framed;
using net::report_exception;
using net::Signal;
using net::Stream;
using net::with_timeout;
using net::write_framed;
namespace {

using namespace asio::experimental::awaitable_operators;

// A refresh is never scheduled sooner than this, so that a relay granting reservations that
// expire at once cannot make us spin.
constexpr std::chrono::milliseconds kMinRefreshDelay{100};
// A Limit.duration above this is taken for milliseconds (see circuit_duration).
constexpr std::uint32_t kLongestPlausibleSeconds = 24 * 60 * 60;

std::uint64_t unix_now() {
  const auto seconds =
      std::chrono::duration_cast<std::chrono::seconds>(Clock::now().time_since_epoch()).count();
  return seconds < 0 ? 0 : static_cast<std::uint64_t>(seconds);
}

// One hop request and the relay's answer.
asio::awaitable<Expected<HopMessage>> hop_exchange(std::shared_ptr<Stream> stream,
                                                   HopMessage request) {
  const Bytes encoded = encode(request);
  auto written = co_await write_framed(*stream, encoded);
  if (!written) co_return tl::unexpected(written.error());
  auto answer = co_await read_framed(*stream, kMaxMessageSize);
  if (!answer) co_return tl::unexpected(answer.error());
  if (!answer->has_value()) co_return fail("the relay closed the stream without answering");
  co_return decode_hop(**answer);
}

struct CircuitAddress {
  Multiaddr relay_address;  // ends in /p2p/RELAY
  PeerId relay;
};

// RELAY/p2p-circuit/p2p/TARGET split at the circuit.
Expected<CircuitAddress> split_circuit_address(const Multiaddr& address) {
  const std::string text = address.to_string();
  static constexpr std::string_view kCircuit = "/p2p-circuit";
  const auto at = text.find(kCircuit);
  auto relay_address = Multiaddr::parse(text.substr(0, at));
  auto target_part = at == std::string::npos ? Expected<Multiaddr>(fail("no circuit"))
                                             : Multiaddr::parse(text.substr(at + kCircuit.size()));
  const bool target_only = target_part && target_part->components().size() == 1 &&
                           target_part->components()[0].code == kProtocolP2p;
  if (!relay_address || !target_only) {
    return fail("cannot dial " + text + ": expected RELAY/p2p/ID/p2p-circuit/p2p/ID");
  }
  auto relay_text = relay_address->peer_id_component();
  if (!relay_text) return fail("cannot dial " + text + ": the relay part has no /p2p/ peer ID");
  auto relay = PeerId::parse(*relay_text);
  if (!relay) return tl::unexpected(relay.error());
  return CircuitAddress{std::move(*relay_address), *relay};
}

// The peer's known addresses that lead to it directly, with its /p2p/ ID.
std::vector<Multiaddr> direct_addresses(const net::PeerInfo* info, const PeerId& peer) {
  std::vector<Multiaddr> result;
  if (info == nullptr) return result;
  for (const auto& address : info->addresses) {
    const auto& parts = address.components();
    const bool relayed = std::any_of(parts.begin(), parts.end(), [](const auto& component) {
      return component.code == kProtocolP2pCircuit;
    });
    if (!relayed) result.push_back(address.without_p2p().with_peer_id(peer));
  }
  return result;
}

// The relay's answer to RESERVE as a checked reservation. `fallback` is where we reached the
// relay, for a relay that lists no addresses.
Expected<RelayReservation> accept_reservation(const HopMessage& answer, const PeerId& relay,
                                              const PeerId& self, const Multiaddr& fallback) {
  const std::string who = "relay " + relay.to_string();
  if (answer.type != HopType::kStatus || !answer.status) {
    return fail(who + " answered RESERVE with a non-STATUS message");
  }
  if (*answer.status != Status::kOk) {
    return fail(who + " refused the reservation: " + std::string(status_name(*answer.status)));
  }
  if (!answer.reservation || !answer.reservation->expire) {
    return fail(who + " sent no reservation expiry");
  }
  const std::uint64_t now = unix_now();
  const std::uint64_t expire = *answer.reservation->expire;
  if (expire < now) return fail(who + " granted a reservation that has expired already");
  // go's client refuses a reservation without a voucher too.
  if (!answer.reservation->voucher) return fail(who + " sent no reservation voucher");
  auto voucher = open_voucher(*answer.reservation->voucher, relay, self, now);
  if (!voucher) return fail(who + ": bad reservation voucher: " + voucher.error().message);

  std::vector<Multiaddr> addresses;
  for (const auto& address : answer.reservation->addrs)
    addresses.push_back(address.without_p2p().with_peer_id(relay));
  if (addresses.empty() && !fallback.empty()) {
    addresses.push_back(fallback.without_p2p().with_peer_id(relay));
  }
  RelayReservation reservation{relay,        TimePoint(std::chrono::seconds(expire)),
                               expire,       std::move(addresses),
                               answer.limit, std::move(*voucher)};
  return reservation;
}

asio::awaitable<void> send_stop_status(std::shared_ptr<Stream> stream, Status status) {
  StopMessage message;
  message.type = StopType::kStatus;
  message.status = status;
  const Bytes encoded = encode(message);
  auto written = co_await with_timeout(write_framed(*stream, encoded), kRelayClientStreamTimeout,
                                       "stop answer");
  if (written) (void)co_await stream->close_write();
}

asio::awaitable<void> refuse_stream(std::shared_ptr<Stream> stream) {
  stream->abort();
  co_return;
}

// /RELAY-ADDRESS/p2p/RELAY/p2p-circuit/p2p/SELF
std::optional<Multiaddr> circuit_address(const Multiaddr& relay_address, const PeerId& self) {
  auto parsed =
      Multiaddr::parse(relay_address.to_string() + "/p2p-circuit/p2p/" + self.to_string());
  if (!parsed) return std::nullopt;
  return std::move(*parsed);
}

}  // namespace

std::optional<std::chrono::milliseconds> circuit_duration(const Limit& limit) {
  if (!limit.duration_seconds || *limit.duration_seconds == 0) return std::nullopt;
  const std::uint32_t value = *limit.duration_seconds;
  if (value > kLongestPlausibleSeconds) return std::chrono::milliseconds(value);
  return std::chrono::seconds(value);
}

// The state of one keep_reservation loop; shared with its coroutine.
struct RelayClient::Keeper {
  Keeper(Multiaddr relay_address, PeerId relay_id, const asio::any_io_executor& executor)
      : address(std::move(relay_address)), relay(std::move(relay_id)), wake(executor) {}
  Multiaddr address;
  PeerId relay;
  // Notified when the relay disconnects (reserve again now) and when the loop is to end.
  Signal wake;
  bool stopped = false;
};

RelayClient::RelayClient(Host& host, RelayClientConfig config)
    : host_(host), config_(std::move(config)) {}

RelayClient::~RelayClient() {
  lifetime_.end();
  if (started_) host_.set_circuit_dialer(nullptr);
  for (auto& [relay, keeper] : keepers_)
    keeper->wake.notify();
}

void RelayClient::start() {
  if (started_) return;
  started_ = true;
  host_.set_circuit_dialer([this](Multiaddr address, PeerId target) {
    return dial(std::move(address), std::move(target));
  });
  host_.set_handler(std::string(kStopProtocolId),
                    [this, alive = lifetime_.token()](std::shared_ptr<Stream> stream) {
                      return alive ? serve_stop(std::move(stream))
                                   : refuse_stream(std::move(stream));
                    });
  host_.on_connection(lifetime_.guard([this](const ConnectionEvent& event) {
    if (!event.connected) relay_disconnected(event.peer);
  }));
}

asio::awaitable<Expected<RelayReservation>> RelayClient::reserve(const PeerId& relay) {
  auto alive = lifetime_.token();
  const PeerId relay_id = relay;
  auto connection = host_.connection_to(relay_id);
  if (!connection) co_return fail("not connected to relay " + relay_id.to_string());
  const Multiaddr reached_at = connection->remote_address();
  std::vector<std::string> protocols(1, std::string(kHopProtocolId));
  auto opened = co_await host_.new_stream(relay_id, std::move(protocols));
  if (!alive) co_return fail("relay client destroyed");
  if (!opened) co_return tl::unexpected(opened.error());
  std::shared_ptr<Stream> stream = std::move(*opened);
  HopMessage request;
  request.type = HopType::kReserve;
  auto answer = co_await with_timeout(hop_exchange(stream, std::move(request)),
                                      kRelayClientStreamTimeout, "RESERVE");
  if (!alive) co_return fail("relay client destroyed");
  if (!answer) {
    stream->abort();
    co_return fail("relay " + relay_id.to_string() + ": " + answer.error().message);
  }
  (void)co_await stream->close_write();
  if (!alive) co_return fail("relay client destroyed");
  auto reservation = accept_reservation(*answer, relay_id, host_.peer_id(), reached_at);
  if (!reservation) co_return tl::unexpected(reservation.error());
  // The relay may have gone while we waited: then it holds no reservation for us any more.
  if (!host_.connection_to(relay_id)) co_return fail("relay " + relay_id.to_string() + " left");
  reservations_.insert_or_assign(relay_id, *reservation);
  publish_addresses();
  co_return reservation;
}

asio::awaitable<Expected<std::shared_ptr<net::Connection>>> RelayClient::connect_to_relay(
    Multiaddr relay_address, PeerId relay) {
  if (relay == host_.peer_id()) co_return fail("cannot relay through ourselves");
  if (auto existing = host_.connection_to(relay)) co_return existing;
  if (relay_address.components().size() > 1) co_return co_await host_.connect(relay_address);
  // Only /p2p/RELAY: the addresses we know for it.
  std::vector<Multiaddr> candidates = direct_addresses(host_.peer_info(relay), relay);
  auto alive = lifetime_.token();
  std::string last_error = "no known address";
  for (const auto& candidate : candidates) {
    auto connected = co_await host_.connect(candidate);
    if (!alive) co_return fail("relay client destroyed");
    if (connected) co_return connected;
    last_error = connected.error().message;
  }
  co_return fail("cannot reach relay " + relay.to_string() + ": " + last_error);
}

asio::awaitable<Expected<std::shared_ptr<net::Connection>>> RelayClient::dial(Multiaddr address,
                                                                              PeerId target) {
  auto alive = lifetime_.token();
  auto circuit = split_circuit_address(address);
  if (!circuit) co_return tl::unexpected(circuit.error());
  const PeerId relay = circuit->relay;
  auto relay_connection = co_await connect_to_relay(std::move(circuit->relay_address), relay);
  if (!alive) co_return fail("relay client destroyed");
  if (!relay_connection) co_return tl::unexpected(relay_connection.error());
  std::vector<std::string> protocols{std::string(kHopProtocolId)};
  auto opened = co_await host_.new_stream_on(*relay_connection, std::move(protocols));
  if (!alive) co_return fail("relay client destroyed");
  if (!opened) co_return tl::unexpected(opened.error());
  std::shared_ptr<Stream> stream = std::move(*opened);

  HopMessage request;
  request.type = HopType::kConnect;
  request.peer = Peer{target, {}, 0};
  auto answer = co_await with_timeout(hop_exchange(stream, std::move(request)), kRelayDialTimeout,
                                      "relay CONNECT");
  if (!alive) co_return fail("relay client destroyed");
  if (!answer) {
    stream->abort();
    co_return fail("relay " + relay.to_string() + ": " + answer.error().message);
  }
  if (answer->type != HopType::kStatus || !answer->status) {
    stream->abort();
    co_return fail("relay " + relay.to_string() + " answered CONNECT with a non-STATUS message");
  }
  if (*answer->status != Status::kOk) {
    stream->abort();
    co_return fail("relay " + relay.to_string() + " refused to connect to " + target.to_string() +
                   ": " + std::string(status_name(*answer->status)));
  }
  co_return co_await host_.dial_relayed(std::move(stream), std::move(target), std::move(address));
}

void RelayClient::keep_reservation(const Multiaddr& relay_address) {
  auto relay_text = relay_address.peer_id_component();
  if (!relay_text) return;
  auto relay = PeerId::parse(*relay_text);
  if (!relay || keepers_.count(*relay) > 0) return;
  auto keeper = std::make_shared<Keeper>(relay_address, *relay, host_.io_context().get_executor());
  keepers_.emplace(*relay, keeper);
  asio::co_spawn(host_.io_context(), keep_loop(std::move(keeper)), report_exception);
}

void RelayClient::stop_keeping(const PeerId& relay) {
  auto found = keepers_.find(relay);
  if (found == keepers_.end()) return;
  found->second->stopped = true;
  found->second->wake.notify();
  keepers_.erase(found);
}

asio::awaitable<void> RelayClient::keep_loop(std::shared_ptr<Keeper> keeper) {
  auto alive = lifetime_.token();
  while (!keeper->stopped) {
    auto connected = co_await host_.connect(keeper->address);
    if (!alive || keeper->stopped) co_return;
    auto next_attempt = std::chrono::steady_clock::now() + config_.retry_delay;
    if (connected) {
      auto reserved = co_await reserve(keeper->relay);
      if (!alive || keeper->stopped) co_return;
      if (reserved) {
        const auto remaining = reserved->expires - Clock::now();
        auto delay = std::max(remaining - config_.refresh_margin, remaining / 2);
        auto wait = std::max(std::chrono::duration_cast<std::chrono::milliseconds>(delay),
                             kMinRefreshDelay);
        next_attempt = std::chrono::steady_clock::now() + wait;
      }
    }
    drop_expired();
    (void)co_await keeper->wake.wait_until(next_attempt);
    if (!alive) co_return;
  }
}

void RelayClient::relay_disconnected(const PeerId& relay) {
  // The spec: a reservation ends with the connection to the relay.
  if (reservations_.erase(relay) > 0) publish_addresses();
  auto keeper = keepers_.find(relay);
  if (keeper != keepers_.end()) keeper->second->wake.notify();
}

void RelayClient::drop_expired() {
  const auto now = Clock::now();
  bool dropped = false;
  for (auto it = reservations_.begin(); it != reservations_.end();) {
    if (it->second.expires < now) {
      it = reservations_.erase(it);
      dropped = true;
    } else {
      ++it;
    }
  }
  if (dropped) publish_addresses();
}

std::vector<Multiaddr> RelayClient::relayed_addresses() const {
  std::vector<Multiaddr> addresses;
  const auto now = Clock::now();
  for (const auto& [relay, reservation] : reservations_) {
    if (reservation.expires < now) continue;
    for (const auto& relay_address : reservation.relay_addresses) {
      auto address = circuit_address(relay_address, host_.peer_id());
      if (address) addresses.push_back(std::move(*address));
    }
  }
  return addresses;
}

std::optional<RelayReservation> RelayClient::reservation(const PeerId& relay) const {
  auto found = reservations_.find(relay);
  if (found == reservations_.end()) return std::nullopt;
  return found->second;
}

void RelayClient::publish_addresses() {
  auto addresses = relayed_addresses();
  if (addresses == published_) return;
  published_ = addresses;
  if (listener_) listener_(addresses);
}

asio::awaitable<void> RelayClient::serve_stop(std::shared_ptr<Stream> stream) {
  auto alive = lifetime_.token();
  const PeerId relay = stream->remote_peer();
  auto received = co_await with_timeout(read_framed(*stream, kMaxMessageSize),
                                        kRelayClientStreamTimeout, "stop request");
  if (!alive) co_return;
  if (!received || !received->has_value()) {
    stream->abort();
    co_return;
  }
  auto request = decode_stop(**received);
  if (!request || (request->type == StopType::kConnect && !request->peer)) {
    co_await send_stop_status(stream, Status::kMalformedMessage);
    stream->abort();
    co_return;
  }
  if (request->type != StopType::kConnect) {
    co_await send_stop_status(std::move(stream), Status::kUnexpectedMessage);
    co_return;
  }
  // A circuit inside a circuit is refused (go and js relays never build one).
  const bool over_circuit = stream->connection().relayed();
  const bool reserved = reservations_.count(relay) > 0;
  if (over_circuit || (!reserved && !config_.accept_without_reservation)) {
    co_await send_stop_status(std::move(stream), Status::kPermissionDenied);
    co_return;
  }
  const PeerId source = request->peer->id;
  StopMessage ok;
  ok.type = StopType::kStatus;
  ok.status = Status::kOk;
  const Bytes encoded = encode(ok);
  auto written = co_await with_timeout(write_framed(*stream, encoded), kRelayClientStreamTimeout,
                                       "stop answer");
  if (!alive) co_return;
  if (!written) {
    stream->abort();
    co_return;
  }
  // The full circuit address, as outbound relayed connections have it: the relay's transport
  // address first, so that it says where the bytes come from.
  const std::string transport = stream->connection().remote_address().without_p2p().to_string();
  auto remote = Multiaddr::parse(transport + "/p2p/" + relay.to_string() + "/p2p-circuit/p2p/" +
                                 source.to_string());
  if (!remote) {
    stream->abort();
    co_return;
  }
  // Failures are the Host's to handle: the stream is reset and no connection appears.
  (void)co_await host_.accept_relayed(std::move(stream), source, std::move(*remote));
}

}  // namespace an::p2p::relay
