#include "p2p/relay/io/relay_service.h"

#include <algorithm>
#include <utility>

#include "p2p/net/async.h"
#include "p2p/net/framed.h"
#include "p2p/relay/voucher.h"

namespace an::p2p::relay {

using net::Connection;
using net::ConnectionEvent;
using net::Host;
using net::read_framed;
using net::report_exception;
using net::Stream;
using net::use_tuple;
using net::with_timeout;
using net::write_framed;
namespace {

using namespace asio::experimental::awaitable_operators;

TimePoint now() {
  return Clock::now();
}

bool is_relayed(const Multiaddr& address) {
  const auto& parts = address.components();
  return std::any_of(parts.begin(), parts.end(),
                     [](const auto& component) { return component.code == kProtocolP2pCircuit; });
}

asio::awaitable<void> refuse_stream(std::shared_ptr<Stream> stream) {
  stream->abort();
  co_return;
}

// Writes one hop message and half-closes; a stream that cannot take it is reset.
asio::awaitable<void> send_final(std::shared_ptr<Stream> stream, HopMessage message) {
  const Bytes encoded = encode(message);
  auto written =
      co_await with_timeout(write_framed(*stream, encoded), kRelayRequestTimeout, "hop answer");
  if (!written) {
    stream->abort();
    co_return;
  }
  (void)co_await stream->close_write();
}

HopMessage status_message(Status status) {
  HopMessage message;
  message.type = HopType::kStatus;
  message.status = status;
  return message;
}

asio::awaitable<Expected<StopMessage>> stop_exchange(std::shared_ptr<Stream> stream,
                                                     Bytes request) {
  auto written = co_await write_framed(*stream, request);
  if (!written) co_return tl::unexpected(written.error());
  auto answer = co_await read_framed(*stream, kMaxMessageSize);
  if (!answer) co_return tl::unexpected(answer.error());
  if (!answer->has_value()) co_return fail("the target closed the stop stream without answering");
  co_return decode_stop(**answer);
}

}  // namespace

// One spliced circuit. Cutting it resets both streams, which ends both copy loops.
struct RelayService::Circuit {
  CircuitId id = 0;
  std::shared_ptr<Stream> source;
  std::shared_ptr<Stream> target;
  std::optional<CircuitLimit> limit;
  std::size_t buffer_size = kDefaultCircuitBufferSize;

  void cut() {
    source->abort();
    target->abort();
  }
};

// Copies one direction of a circuit. At EOF the write side is half-closed and the other direction
// goes on (as go's relay does); an error or the data limit cuts the whole circuit: a relayed
// connection that lost one direction is dead anyway.
asio::awaitable<void> RelayService::pump(std::shared_ptr<Circuit> circuit, Stream& from, Stream& to,
                                         std::uint64_t data_limit) {
  Bytes buffer(circuit->buffer_size);
  std::uint64_t remaining = data_limit;
  for (;;) {
    std::size_t want = buffer.size();
    if (data_limit != 0) want = static_cast<std::size_t>(std::min<std::uint64_t>(want, remaining));
    auto got = co_await from.read_some(std::span(buffer.data(), want));
    if (!got) {
      circuit->cut();
      co_return;
    }
    if (*got == 0) {
      (void)co_await to.close_write();
      co_return;
    }
    auto written = co_await to.write_all(ByteView(buffer.data(), *got));
    if (!written) {
      circuit->cut();
      co_return;
    }
    if (data_limit != 0) {
      remaining -= *got;
      if (remaining == 0) {
        circuit->cut();
        co_return;
      }
    }
  }
}

RelayService::RelayService(Host& host, RelayLimits limits)
    : host_(host), resources_(std::move(limits)) {}

RelayService::~RelayService() {
  lifetime_.end();
  if (sweep_timer_) sweep_timer_->cancel();
  auto circuits = circuits_;
  for (auto& [id, weak] : circuits) {
    if (auto circuit = weak.lock()) circuit->cut();
  }
}

void RelayService::start() {
  if (started_) return;
  started_ = true;
  host_.set_handler(std::string(kHopProtocolId),
                    [this, alive = lifetime_.token()](std::shared_ptr<Stream> stream) {
                      return alive ? serve_hop(std::move(stream))
                                   : refuse_stream(std::move(stream));
                    });
  host_.on_connection(lifetime_.guard([this](const ConnectionEvent& event) {
    if (!event.connected) reservation_ended(event.peer);
  }));
  sweep_timer_ = std::make_shared<asio::steady_timer>(host_.io_context());
  asio::co_spawn(host_.io_context(), sweep_loop(sweep_timer_), report_exception);
}

asio::awaitable<void> RelayService::sweep_loop(std::shared_ptr<asio::steady_timer> timer) {
  auto alive = lifetime_.token();
  for (;;) {
    timer->expires_after(kRelayReservationSweepInterval);
    auto [ec] = co_await timer->async_wait(use_tuple);
    if (ec || !alive) co_return;
    for (const auto& peer : resources_.expire(now()))
      notify(peer, false);
  }
}

void RelayService::reservation_ended(const PeerId& peer) {
  // Any time in the past: whether the peer holds a reservation at all, expired or not.
  if (!resources_.has_reservation(peer, TimePoint{})) return;
  resources_.remove_reservation(peer);
  notify(peer, false);
}

void RelayService::notify(const PeerId& peer, bool active) {
  if (listener_) listener_(peer, active);
}

std::vector<Multiaddr> RelayService::own_addresses() const {
  std::vector<Multiaddr> addresses;
  for (const auto& address : host_.advertised_addresses()) {
    if (!is_relayed(address))
      addresses.push_back(address.without_p2p().with_peer_id(host_.peer_id()));
  }
  return addresses;
}

asio::awaitable<void> RelayService::serve_hop(std::shared_ptr<Stream> stream) {
  auto alive = lifetime_.token();
  auto received = co_await with_timeout(read_framed(*stream, kMaxMessageSize), kRelayRequestTimeout,
                                        "hop request");
  if (!alive) co_return;
  // Over the size limit, a broken length prefix, silence: nothing worth answering.
  if (!received || !received->has_value()) {
    stream->abort();
    co_return;
  }
  auto request = decode_hop(**received);
  if (!request) {
    // go answers MALFORMED_MESSAGE; the reset that follows frees the stream at once.
    co_await send_final(stream, status_message(Status::kMalformedMessage));
    stream->abort();
    co_return;
  }
  switch (request->type) {
    case HopType::kReserve:
      co_await handle_reserve(std::move(stream));
      break;
    case HopType::kConnect:
      co_await handle_connect(std::move(stream), std::move(*request));
      break;
    default:
      co_await send_final(std::move(stream), status_message(Status::kUnexpectedMessage));
      break;
  }
}

asio::awaitable<void> RelayService::handle_reserve(std::shared_ptr<Stream> stream) {
  const PeerId peer = stream->remote_peer();
  Connection& connection = stream->connection();
  auto decision = resources_.reserve(peer, connection.remote_address(), now());
  for (const auto& expired : decision.swept)
    notify(expired, false);
  if (decision.status != Status::kOk) {
    co_await send_final(std::move(stream), status_message(decision.status));
    co_return;
  }
  if (!connection.is_open()) {
    // It left while we read its request, so no disconnect will end the reservation.
    resources_.remove_reservation(peer);
    stream->abort();
    co_return;
  }
  if (!decision.refreshed) notify(peer, true);

  HopMessage answer = status_message(Status::kOk);
  Reservation reservation;
  reservation.expire = decision.expire_unix;
  reservation.addrs = own_addresses();
  ReservationVoucher voucher{host_.peer_id(), peer, decision.expire_unix};
  auto sealed = seal_voucher(host_.identity().key, voucher);
  if (sealed) reservation.voucher = std::move(*sealed);
  answer.reservation = std::move(reservation);
  answer.limit = decision.limit;
  co_await send_final(std::move(stream), std::move(answer));
}

asio::awaitable<void> RelayService::handle_connect(std::shared_ptr<Stream> stream,
                                                   HopMessage request) {
  auto alive = lifetime_.token();
  if (!request.peer) {
    co_await send_final(std::move(stream), status_message(Status::kMalformedMessage));
    co_return;
  }
  const PeerId source = stream->remote_peer();
  const PeerId target = request.peer->id;
  auto decision = resources_.connect(source, stream->connection().remote_address(), target, now());
  if (decision.status != Status::kOk) {
    co_await send_final(std::move(stream), status_message(decision.status));
    co_return;
  }
  const CircuitId id = decision.id;
  // The circuit's two pump buffers are charged to the hop stream, and go with it.
  const std::size_t buffers = 2 * std::max<std::size_t>(resources_.limits().buffer_size, 1);
  if (!stream->reserve_memory(buffers)) {
    resources_.release(id);
    co_await send_final(std::move(stream), status_message(Status::kResourceLimitExceeded));
    co_return;
  }

  std::vector<std::string> protocols(1, std::string(kStopProtocolId));
  auto opened = co_await with_timeout(host_.new_stream(target, std::move(protocols)),
                                      kRelayConnectTimeout, "stop stream");
  if (!alive) co_return;
  std::shared_ptr<Stream> stop;
  if (opened) stop = std::move(*opened);

  bool accepted = false;
  if (stop) {
    StopMessage connect;
    connect.type = StopType::kConnect;
    connect.peer = Peer{source, {}, 0};
    connect.limit = decision.limit;
    auto answer = co_await with_timeout(stop_exchange(stop, encode(connect)),
                                        kRelayStopHandshakeTimeout, "stop handshake");
    if (!alive) {
      stop->abort();
      co_return;
    }
    accepted = answer && answer->type == StopType::kStatus && answer->status &&
               *answer->status == Status::kOk;
  }
  if (!accepted) {
    if (stop) stop->abort();
    resources_.release(id);
    co_await send_final(std::move(stream), status_message(Status::kConnectionFailed));
    co_return;
  }

  HopMessage answer = status_message(Status::kOk);
  answer.limit = decision.limit;
  const Bytes encoded = encode(answer);
  auto written =
      co_await with_timeout(write_framed(*stream, encoded), kRelayRequestTimeout, "hop answer");
  if (!alive) {
    stream->abort();
    stop->abort();
    co_return;
  }
  if (!written) {
    stream->abort();
    stop->abort();
    resources_.release(id);
    co_return;
  }

  auto circuit = std::make_shared<Circuit>();
  circuit->id = id;
  circuit->source = std::move(stream);
  circuit->target = std::move(stop);
  circuit->limit = resources_.limits().circuit_limit;
  circuit->buffer_size = std::max<std::size_t>(resources_.limits().buffer_size, 1);
  co_await splice(std::move(circuit));
}

asio::awaitable<void> RelayService::splice(std::shared_ptr<Circuit> circuit) {
  auto alive = lifetime_.token();
  circuits_[circuit->id] = circuit;
  const std::uint64_t data_limit = circuit->limit ? circuit->limit->data_bytes : 0;
  asio::steady_timer deadline(co_await asio::this_coro::executor);
  if (circuit->limit && circuit->limit->duration.count() > 0) {
    deadline.expires_after(circuit->limit->duration);
    deadline.async_wait([weak = std::weak_ptr<Circuit>(circuit)](const std::error_code& ec) {
      if (ec) return;
      if (auto expired = weak.lock()) expired->cut();
    });
  }
  co_await (pump(circuit, *circuit->source, *circuit->target, data_limit) &&
            pump(circuit, *circuit->target, *circuit->source, data_limit));
  deadline.cancel();
  if (!alive) co_return;
  circuits_.erase(circuit->id);
  resources_.release(circuit->id);
}

}  // namespace an::p2p::relay
