#include "p2p/relay/voucher.h"

#include <optional>
#include <string>
#include <utility>

#include "p2p/record/envelope.h"
#include "p2p/wire/protobuf.h"

namespace an::p2p::relay {
namespace {

enum VoucherField : std::uint32_t {
  kVoucherRelay = 1,
  kVoucherPeer = 2,
  kVoucherExpiration = 3,
};

}  // namespace

Bytes encode_voucher(const ReservationVoucher& voucher) {
  Bytes out;
  pb::Writer writer(out);
  writer.bytes_field(kVoucherRelay, voucher.relay.bytes());
  writer.bytes_field(kVoucherPeer, voucher.peer.bytes());
  // Written even when 0: the fields are proto3 `optional`, so go writes whatever it set.
  writer.varint_field(kVoucherExpiration, voucher.expiration);
  return out;
}

Expected<ReservationVoucher> decode_voucher(ByteView payload) {
  std::optional<PeerId> relay;
  std::optional<PeerId> peer;
  std::optional<std::uint64_t> expiration;
  pb::Reader reader(payload);
  while (true) {
    auto next = reader.next();
    if (!next) return fail("reservation voucher: " + next.error().message);
    if (!next->has_value()) break;
    const pb::Field& field = **next;
    if (field.number != kVoucherRelay && field.number != kVoucherPeer &&
        field.number != kVoucherExpiration) {
      continue;
    }
    const auto expected_type =
        field.number == kVoucherExpiration ? pb::WireType::kVarint : pb::WireType::kLengthDelimited;
    if (field.type != expected_type) {
      return fail("reservation voucher: field " + std::to_string(field.number) +
                  " has the wrong wire type");
    }
    // A second copy would let two readers see different vouchers under one signature.
    const bool duplicate = (field.number == kVoucherRelay && relay) ||
                           (field.number == kVoucherPeer && peer) ||
                           (field.number == kVoucherExpiration && expiration);
    if (duplicate) {
      return fail("reservation voucher: field " + std::to_string(field.number) + " appears twice");
    }
    if (field.number == kVoucherExpiration) {
      expiration = field.varint;
      continue;
    }
    auto id = PeerId::from_multihash(field.bytes);
    if (!id) {
      return fail(std::string("reservation voucher: bad ") +
                  (field.number == kVoucherRelay ? "relay" : "peer") +
                  " ID: " + id.error().message);
    }
    (field.number == kVoucherRelay ? relay : peer) = std::move(*id);
  }
  if (!relay) return fail("reservation voucher: no relay ID");
  if (!peer) return fail("reservation voucher: no peer ID");
  if (!expiration) return fail("reservation voucher: no expiration");
  return ReservationVoucher{std::move(*relay), std::move(*peer), *expiration};
}

Expected<Bytes> seal_voucher(const PrivateKey& relay_key, const ReservationVoucher& voucher) {
  if (relay_key.peer_id() != voucher.relay) {
    return fail("reservation voucher: the key is not the key of relay " +
                voucher.relay.to_base58());
  }
  auto sealed = record::seal_envelope(relay_key, kVoucherDomain, kVoucherPayloadType,
                                      encode_voucher(voucher));
  if (!sealed) return fail("reservation voucher: " + sealed.error().message);
  return sealed;
}

Expected<ReservationVoucher> open_voucher(ByteView envelope, const PeerId& expected_relay,
                                          const PeerId& expected_peer, std::uint64_t now_unix) {
  auto opened =
      record::open_envelope(envelope, kVoucherDomain, kVoucherPayloadType, kMaxVoucherSize);
  if (!opened) return fail("reservation voucher: " + opened.error().message);
  auto voucher = decode_voucher(opened->payload);
  if (!voucher) return tl::unexpected(voucher.error());
  if (voucher->relay != opened->signer) {
    return fail("reservation voucher: names relay " + voucher->relay.to_base58() +
                " but is signed by " + opened->signer.to_base58());
  }
  if (voucher->relay != expected_relay) {
    return fail("reservation voucher: is for relay " + voucher->relay.to_base58() + ", not " +
                expected_relay.to_base58());
  }
  if (voucher->peer != expected_peer) {
    return fail("reservation voucher: is for peer " + voucher->peer.to_base58() + ", not " +
                expected_peer.to_base58());
  }
  if (voucher->expiration < now_unix) {
    return fail("reservation voucher: expired at " + std::to_string(voucher->expiration) +
                " (now " + std::to_string(now_unix) + ")");
  }
  return voucher;
}

}  // namespace an::p2p::relay
