#include "p2p/net/negotiate.h"

#include <array>

namespace an::p2p::net {

namespace {

template <class Machine>
asio::awaitable<Expected<void>> run_until_done(ByteStream& stream, Machine& machine) {
  std::array<std::uint8_t, 2048> buffer;
  for (;;) {
    Bytes output;
    machine.take_output(output);
    if (!output.empty()) {
      auto written = co_await stream.write_all(output);
      if (!written) co_return written;
    }
    if (machine.done()) break;
    auto got = co_await stream.read_some(buffer);
    if (!got) co_return tl::unexpected(got.error());
    if (*got == 0) co_return fail("protocol negotiation: connection closed by the peer");
    if (auto fed = machine.receive(ByteView(buffer.data(), *got)); !fed) co_return fed;
  }
  // The answer may have been followed by application data in the same read.
  stream.unread(machine.take_leftover());
  co_return Expected<void>{};
}

}  // namespace

asio::awaitable<Expected<std::string>> negotiate_outbound(ByteStream& stream,
                                                          std::vector<std::string> protocols) {
  auto initiator =
      multistream::Initiator::create(std::move(protocols), multistream::InitiatorMode::kOptimistic);
  if (!initiator) co_return tl::unexpected(initiator.error());
  auto finished = co_await run_until_done(stream, *initiator);
  if (!finished) co_return tl::unexpected(finished.error());
  co_return initiator->selected_protocol();
}

asio::awaitable<Expected<std::string>> negotiate_inbound(ByteStream& stream,
                                                         multistream::Responder responder) {
  auto finished = co_await run_until_done(stream, responder);
  if (!finished) co_return tl::unexpected(finished.error());
  co_return responder.selected_protocol();
}

}  // namespace an::p2p::net
