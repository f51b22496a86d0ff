#include "p2p/ping/ping.h"

#include <openssl/rand.h>

#include <algorithm>
#include <string>

namespace an::p2p::ping {

Expected<Payload> make_payload() {
  Payload payload{};
  if (RAND_bytes(payload.data(), static_cast<int>(payload.size())) != 1) {
    return fail("ping: the random generator failed to produce a payload");
  }
  return payload;
}

Expected<void> verify_echo(const Payload& sent, ByteView received) {
  if (received.size() != kPayloadSize) {
    return fail("ping: echo of " + std::to_string(received.size()) + " bytes, expected " +
                std::to_string(kPayloadSize));
  }
  if (!std::equal(sent.begin(), sent.end(), received.begin())) {
    return fail("ping: the echo differs from the payload sent");
  }
  return {};
}

}  // namespace an::p2p::ping
