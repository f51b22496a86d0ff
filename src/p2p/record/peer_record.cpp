#include "p2p/record/peer_record.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "p2p/crypto/keys.h"
#include "p2p/wire/protobuf.h"

namespace an::p2p::record {
namespace {

enum PeerRecordField : std::uint32_t {
  kRecordPeerId = 1,
  kRecordSeq = 2,
  kRecordAddresses = 3,
};

constexpr std::uint32_t kAddressInfoMultiaddr = 1;

// The multiaddr of one AddressInfo; nullopt when it does not parse (skipped, not fatal).
Expected<std::optional<Multiaddr>> decode_address_info(ByteView message) {
  std::optional<Multiaddr> address;
  pb::Reader reader(message);
  while (true) {
    auto next = reader.next();
    if (!next) return fail("peer record: address: " + next.error().message);
    if (!next->has_value()) break;
    const pb::Field& field = **next;
    if (field.number != kAddressInfoMultiaddr) continue;
    if (field.type != pb::WireType::kLengthDelimited) {
      return fail(pb::wrong_wire_type("peer record: address", field.number));
    }
    if (auto parsed = Multiaddr::from_bytes(field.bytes)) {
      address = std::move(*parsed);
    } else {
      address.reset();
    }
  }
  return address;
}

}  // namespace

Bytes encode_peer_record(const PeerId& peer_id, std::uint64_t seq,
                         const std::vector<Multiaddr>& addresses) {
  Bytes out;
  pb::Writer writer(out);
  writer.bytes_field(kRecordPeerId, peer_id.bytes());
  // proto3: a zero seq is not written, as go-libp2p does not write it.
  if (seq != 0) writer.varint_field(kRecordSeq, seq);
  for (const auto& address : addresses) {
    if (address.empty()) continue;
    Bytes info;
    pb::Writer(info).bytes_field(kAddressInfoMultiaddr, address.to_bytes());
    writer.bytes_field(kRecordAddresses, info);
  }
  return out;
}

Expected<PeerRecord> decode_peer_record(ByteView payload) {
  std::optional<PeerId> peer_id;
  std::uint64_t seq = 0;
  std::vector<Multiaddr> addresses;
  std::size_t skipped = 0;
  bool seq_seen = false;

  pb::Reader reader(payload);
  while (true) {
    auto next = reader.next();
    if (!next) return fail("peer record: " + next.error().message);
    if (!next->has_value()) break;
    const pb::Field& field = **next;
    switch (field.number) {
      case kRecordPeerId: {
        if (field.type != pb::WireType::kLengthDelimited) {
          return fail(pb::wrong_wire_type("peer record", field.number));
        }
        if (peer_id) return fail("peer record: the peer ID appears twice");
        auto parsed = PeerId::from_multihash(field.bytes);
        if (!parsed) return fail("peer record: bad peer ID: " + parsed.error().message);
        peer_id = std::move(*parsed);
        break;
      }
      case kRecordSeq:
        if (field.type != pb::WireType::kVarint) {
          return fail(pb::wrong_wire_type("peer record", field.number));
        }
        if (seq_seen) return fail("peer record: the sequence number appears twice");
        seq_seen = true;
        seq = field.varint;
        break;
      case kRecordAddresses: {
        if (field.type != pb::WireType::kLengthDelimited) {
          return fail(pb::wrong_wire_type("peer record", field.number));
        }
        auto address = decode_address_info(field.bytes);
        if (!address) return tl::unexpected(address.error());
        if (*address) {
          addresses.push_back(std::move(**address));
        } else {
          ++skipped;
        }
        break;
      }
      default:
        break;
    }
  }
  if (!peer_id) return fail("peer record: no peer ID");
  return PeerRecord{std::move(*peer_id), seq, std::move(addresses), skipped};
}

Expected<Bytes> make_signed_peer_record(const PrivateKey& key, std::uint64_t seq,
                                        const std::vector<Multiaddr>& addresses) {
  auto sealed = seal_envelope(key, kPeerRecordDomain, kPeerRecordPayloadType,
                              encode_peer_record(key.peer_id(), seq, addresses));
  if (!sealed) return fail("signing the peer record: " + sealed.error().message);
  return sealed;
}

Expected<PeerRecord> verify_signed_peer_record(ByteView bytes) {
  auto opened = open_envelope(bytes, kPeerRecordDomain, kPeerRecordPayloadType);
  if (!opened) return fail("signed peer record: " + opened.error().message);
  auto record = decode_peer_record(opened->payload);
  if (!record) return fail("signed peer record: " + record.error().message);
  if (record->peer_id != opened->signer) {
    return fail("signed peer record: the record names peer " + record->peer_id.to_base58() +
                " but is signed by " + opened->signer.to_base58());
  }
  return record;
}

}  // namespace an::p2p::record
