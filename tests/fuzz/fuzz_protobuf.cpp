// Fuzz target: the protobuf field reader and the libp2p key decoders must never crash or read
// out of bounds.
#include "p2p/crypto/key.h"
#include "p2p/crypto/keys.h"
#include "p2p/crypto/peer_id.h"
#include "p2p/wire/protobuf.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  an::p2p::ByteView input(data, size);
  an::p2p::pb::Reader reader(input);
  for (int fields = 0; fields < 10000; ++fields) {
    auto field = reader.next();
    if (!field || !field->has_value()) break;
  }
  (void)an::p2p::decode_private_key(input);
  (void)an::p2p::decode_public_key(input);
  (void)an::p2p::PrivateKey::from_protobuf(input);
  (void)an::p2p::PublicKey::from_protobuf(input);
  (void)an::p2p::PeerId::from_multihash(input);
  return 0;
}
