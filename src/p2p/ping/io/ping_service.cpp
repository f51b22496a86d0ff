#include "p2p/ping/io/ping_service.h"

#include "p2p/net/framed.h"
#include "p2p/net/host.h"

namespace an::p2p::ping {

PingService::PingService(net::Host& host)
    : host_(host),
      ping_finished_(std::make_unique<net::Signal>(host.io_context().get_executor())) {}

PingService::~PingService() = default;

void PingService::start() {
  host_.set_handler(std::string(kProtocolId), [this](std::shared_ptr<net::Stream> stream) {
    return serve(std::move(stream));
  });
}

asio::awaitable<Expected<std::chrono::nanoseconds>> PingService::ping(const PeerId& peer) {
  auto alive = lifetime_.token();
  while (pinging_.count(peer) > 0) {
    co_await ping_finished_->wait();
    if (!alive) co_return fail("host closed");
  }
  pinging_.insert(peer);
  auto result = co_await ping_once(peer);
  if (!alive) co_return result;
  pinging_.erase(peer);
  ping_finished_->notify();
  co_return result;
}

asio::awaitable<Expected<std::chrono::nanoseconds>> PingService::ping_once(const PeerId& peer) {
  std::vector<std::string> protocols{std::string(kProtocolId)};
  auto stream = co_await host_.new_stream(peer, std::move(protocols));
  if (!stream) co_return tl::unexpected(stream.error());
  auto payload = make_payload();
  if (!payload) co_return tl::unexpected(payload.error());
  auto start = std::chrono::steady_clock::now();
  auto exchange = [&]() -> asio::awaitable<Expected<std::chrono::nanoseconds>> {
    auto written = co_await (*stream)->write_all(*payload);
    if (!written) co_return tl::unexpected(written.error());
    Bytes echo(kPayloadSize);
    auto read = co_await net::read_exact(**stream, echo);
    if (!read) co_return tl::unexpected(read.error());
    if (auto verified = verify_echo(*payload, echo); !verified) {
      co_return tl::unexpected(verified.error());
    }
    co_return std::chrono::steady_clock::now() - start;
  };
  auto rtt = co_await net::with_timeout(exchange(), kPingTimeout, "ping");
  // One ping stream per peer at a time: close ours and let the peer close its side.
  (void)co_await (*stream)->close_write();
  co_return rtt;
}

asio::awaitable<void> PingService::serve(std::shared_ptr<net::Stream> stream) {
  auto echo = [&]() -> asio::awaitable<Expected<void>> {
    Bytes payload(kPayloadSize);
    for (;;) {
      auto read = co_await net::read_exact(*stream, payload);
      if (!read) co_return read;
      auto written = co_await stream->write_all(payload);
      if (!written) co_return written;
    }
  };
  // The stream ends after kResponderStreamLifetime whatever the dialer does, as go's does, so
  // that idle ping streams do not pile up.
  (void)co_await net::with_timeout(echo(), kResponderStreamLifetime, "ping stream");
  (void)co_await stream->close_write();
}

}  // namespace an::p2p::ping
