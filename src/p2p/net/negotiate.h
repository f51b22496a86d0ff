// multistream-select over a ByteStream: the I/O around multistream::Initiator/Responder. Bytes
// that follow the negotiation are pushed back into the stream. Network thread only.
#pragma once

#include <string>
#include <vector>

#include "p2p/multistream/multistream.h"
#include "p2p/net/byte_stream.h"

namespace an::p2p::net {

// Proposes `protocols` in order; returns the one accepted. The header and the first proposal go
// out in one write, so an accepted first choice costs one round trip.
asio::awaitable<Expected<std::string>> negotiate_outbound(ByteStream& stream,
                                                          std::vector<std::string> protocols);

// Answers proposals until one is supported by `responder`; returns it.
asio::awaitable<Expected<std::string>> negotiate_inbound(ByteStream& stream,
                                                         multistream::Responder responder);

}  // namespace an::p2p::net
