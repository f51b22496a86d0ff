#include "p2p/relay/messages.h"

#include <array>
#include <limits>
#include <string>
#include <utility>

#include "p2p/wire/protobuf.h"

namespace an::p2p::relay {
namespace {

static_assert(kMaxLengthPrefixSize == 2 && kMaxMessageSize >= (1U << 7) &&
                  kMaxMessageSize < (1U << 14),
              "kMaxLengthPrefixSize must be the varint size of kMaxMessageSize");

enum HopField : std::uint32_t {
  kHopType = 1,
  kHopPeer = 2,
  kHopReservation = 3,
  kHopLimit = 4,
  kHopStatus = 5,
};

enum StopField : std::uint32_t {
  kStopType = 1,
  kStopPeer = 2,
  kStopLimit = 3,
  kStopStatus = 4,
};

enum PeerField : std::uint32_t { kPeerId = 1, kPeerAddrs = 2 };
enum ReservationField : std::uint32_t {
  kReservationExpire = 1,
  kReservationAddrs = 2,
  kReservationVoucher = 3,
};
enum LimitField : std::uint32_t { kLimitDuration = 1, kLimitData = 2 };

// protobuf enums are int32: larger values are not enums at all.
constexpr std::uint64_t kMaxEnumValue = std::numeric_limits<std::int32_t>::max();

// Which of the fields 1..kMaxTrackedField of one message were seen, to refuse a second copy of
// a singular field: no implementation sends one, and accepting it would mean guessing which copy
// the sender meant.
constexpr std::uint32_t kMaxTrackedField = 5;
using SeenFields = std::array<bool, kMaxTrackedField + 1>;

tl::unexpected<Error> malformed(std::string_view what, const std::string& detail) {
  return fail(std::string(what) + ": " + detail);
}

// Checks the wire type of a known field and, for singular ones, that it is the first copy.
Expected<void> check_field(std::string_view what, const pb::Field& field, pb::WireType expected,
                           SeenFields* seen) {
  if (field.type != expected) {
    return malformed(what, "field " + std::to_string(field.number) + " has the wrong wire type");
  }
  if (seen != nullptr) {
    if ((*seen)[field.number]) {
      return malformed(what, "field " + std::to_string(field.number) + " appears twice");
    }
    (*seen)[field.number] = true;
  }
  return {};
}

// Runs `on_field` on every field of `message`, with the size cap and protobuf errors handled.
template <class OnField>
Expected<void> for_each_field(std::string_view what, ByteView message, OnField&& on_field) {
  if (message.size() > kMaxMessageSize) {
    return malformed(what, std::to_string(message.size()) + " bytes exceeds the limit of " +
                               std::to_string(kMaxMessageSize));
  }
  pb::Reader reader(message);
  while (true) {
    auto next = reader.next();
    if (!next) return malformed(what, next.error().message);
    if (!next->has_value()) return {};
    auto handled = on_field(**next);
    if (!handled) return handled;
  }
}

Expected<std::uint32_t> enum_value(std::string_view what, const pb::Field& field) {
  if (field.varint > kMaxEnumValue) {
    return malformed(what, "enum value " + std::to_string(field.varint) + " out of range");
  }
  return static_cast<std::uint32_t>(field.varint);
}

// Multiaddrs that do not parse are counted and left out, as go-libp2p does (pbconv.go).
void add_address(ByteView bytes, std::vector<Multiaddr>& addrs, std::size_t& skipped) {
  if (auto address = Multiaddr::from_bytes(bytes)) {
    addrs.push_back(std::move(*address));
  } else {
    ++skipped;
  }
}

void write_addresses(pb::Writer& writer, std::uint32_t field, const std::vector<Multiaddr>& addrs) {
  for (const auto& address : addrs)
    writer.bytes_field(field, address.to_bytes());
}

}  // namespace

std::string_view status_name(Status status) {
  switch (status) {
    case Status::kUnused:
      return "UNUSED";
    case Status::kOk:
      return "OK";
    case Status::kReservationRefused:
      return "RESERVATION_REFUSED";
    case Status::kResourceLimitExceeded:
      return "RESOURCE_LIMIT_EXCEEDED";
    case Status::kPermissionDenied:
      return "PERMISSION_DENIED";
    case Status::kConnectionFailed:
      return "CONNECTION_FAILED";
    case Status::kNoReservation:
      return "NO_RESERVATION";
    case Status::kMalformedMessage:
      return "MALFORMED_MESSAGE";
    case Status::kUnexpectedMessage:
      return "UNEXPECTED_MESSAGE";
  }
  return "UNKNOWN";
}

Bytes encode(const Limit& limit) {
  Bytes out;
  pb::Writer writer(out);
  if (limit.duration_seconds) writer.varint_field(kLimitDuration, *limit.duration_seconds);
  if (limit.data_bytes) writer.varint_field(kLimitData, *limit.data_bytes);
  return out;
}

Bytes encode(const Peer& peer) {
  Bytes out;
  pb::Writer writer(out);
  writer.bytes_field(kPeerId, peer.id.bytes());
  write_addresses(writer, kPeerAddrs, peer.addrs);
  return out;
}

Bytes encode(const Reservation& reservation) {
  Bytes out;
  pb::Writer writer(out);
  if (reservation.expire) writer.varint_field(kReservationExpire, *reservation.expire);
  write_addresses(writer, kReservationAddrs, reservation.addrs);
  if (reservation.voucher) writer.bytes_field(kReservationVoucher, *reservation.voucher);
  return out;
}

Bytes encode(const HopMessage& message) {
  Bytes out;
  pb::Writer writer(out);
  writer.varint_field(kHopType, static_cast<std::uint32_t>(message.type));
  if (message.peer) writer.bytes_field(kHopPeer, encode(*message.peer));
  if (message.reservation) writer.bytes_field(kHopReservation, encode(*message.reservation));
  if (message.limit) writer.bytes_field(kHopLimit, encode(*message.limit));
  if (message.status) writer.varint_field(kHopStatus, static_cast<std::uint32_t>(*message.status));
  return out;
}

Bytes encode(const StopMessage& message) {
  Bytes out;
  pb::Writer writer(out);
  writer.varint_field(kStopType, static_cast<std::uint32_t>(message.type));
  if (message.peer) writer.bytes_field(kStopPeer, encode(*message.peer));
  if (message.limit) writer.bytes_field(kStopLimit, encode(*message.limit));
  if (message.status) {
    writer.varint_field(kStopStatus, static_cast<std::uint32_t>(*message.status));
  }
  return out;
}

Expected<Limit> decode_limit(ByteView message) {
  constexpr std::string_view kWhat = "relay limit";
  Limit limit;
  SeenFields seen{};
  auto result = for_each_field(kWhat, message, [&](const pb::Field& field) -> Expected<void> {
    switch (field.number) {
      case kLimitDuration: {
        auto ok = check_field(kWhat, field, pb::WireType::kVarint, &seen);
        if (!ok) return ok;
        if (field.varint > std::numeric_limits<std::uint32_t>::max()) {
          return malformed(kWhat,
                           "duration " + std::to_string(field.varint) + " does not fit in 32 bits");
        }
        limit.duration_seconds = static_cast<std::uint32_t>(field.varint);
        return {};
      }
      case kLimitData: {
        auto ok = check_field(kWhat, field, pb::WireType::kVarint, &seen);
        if (!ok) return ok;
        limit.data_bytes = field.varint;
        return {};
      }
      default:
        return {};
    }
  });
  if (!result) return tl::unexpected(result.error());
  return limit;
}

Expected<Peer> decode_peer(ByteView message) {
  constexpr std::string_view kWhat = "relay peer";
  std::optional<PeerId> id;
  std::vector<Multiaddr> addrs;
  std::size_t skipped = 0;
  SeenFields seen{};
  auto result = for_each_field(kWhat, message, [&](const pb::Field& field) -> Expected<void> {
    switch (field.number) {
      case kPeerId: {
        auto ok = check_field(kWhat, field, pb::WireType::kLengthDelimited, &seen);
        if (!ok) return ok;
        auto parsed = PeerId::from_multihash(field.bytes);
        if (!parsed) return malformed(kWhat, "bad peer ID: " + parsed.error().message);
        id = std::move(*parsed);
        return {};
      }
      case kPeerAddrs: {
        auto ok = check_field(kWhat, field, pb::WireType::kLengthDelimited, nullptr);
        if (!ok) return ok;
        add_address(field.bytes, addrs, skipped);
        return {};
      }
      default:
        return {};
    }
  });
  if (!result) return tl::unexpected(result.error());
  if (!id) return malformed(kWhat, "no peer ID");
  return Peer{std::move(*id), std::move(addrs), skipped};
}

Expected<Reservation> decode_reservation(ByteView message) {
  constexpr std::string_view kWhat = "relay reservation";
  Reservation reservation;
  SeenFields seen{};
  auto result = for_each_field(kWhat, message, [&](const pb::Field& field) -> Expected<void> {
    switch (field.number) {
      case kReservationExpire: {
        auto ok = check_field(kWhat, field, pb::WireType::kVarint, &seen);
        if (!ok) return ok;
        reservation.expire = field.varint;
        return {};
      }
      case kReservationAddrs: {
        auto ok = check_field(kWhat, field, pb::WireType::kLengthDelimited, nullptr);
        if (!ok) return ok;
        add_address(field.bytes, reservation.addrs, reservation.skipped_addrs);
        return {};
      }
      case kReservationVoucher: {
        auto ok = check_field(kWhat, field, pb::WireType::kLengthDelimited, &seen);
        if (!ok) return ok;
        reservation.voucher = to_bytes(field.bytes);
        return {};
      }
      default:
        return {};
    }
  });
  if (!result) return tl::unexpected(result.error());
  return reservation;
}

Expected<HopMessage> decode_hop(ByteView message) {
  constexpr std::string_view kWhat = "hop message";
  HopMessage hop;
  SeenFields seen{};
  auto result = for_each_field(kWhat, message, [&](const pb::Field& field) -> Expected<void> {
    switch (field.number) {
      case kHopType:
      case kHopStatus: {
        auto ok = check_field(kWhat, field, pb::WireType::kVarint, &seen);
        if (!ok) return ok;
        auto value = enum_value(kWhat, field);
        if (!value) return tl::unexpected(value.error());
        if (field.number == kHopType) {
          hop.type = static_cast<HopType>(*value);
        } else {
          hop.status = static_cast<Status>(*value);
        }
        return {};
      }
      case kHopPeer: {
        auto ok = check_field(kWhat, field, pb::WireType::kLengthDelimited, &seen);
        if (!ok) return ok;
        auto peer = decode_peer(field.bytes);
        if (!peer) return malformed(kWhat, peer.error().message);
        hop.peer = std::move(*peer);
        return {};
      }
      case kHopReservation: {
        auto ok = check_field(kWhat, field, pb::WireType::kLengthDelimited, &seen);
        if (!ok) return ok;
        auto reservation = decode_reservation(field.bytes);
        if (!reservation) return malformed(kWhat, reservation.error().message);
        hop.reservation = std::move(*reservation);
        return {};
      }
      case kHopLimit: {
        auto ok = check_field(kWhat, field, pb::WireType::kLengthDelimited, &seen);
        if (!ok) return ok;
        auto limit = decode_limit(field.bytes);
        if (!limit) return malformed(kWhat, limit.error().message);
        hop.limit = *limit;
        return {};
      }
      default:
        return {};
    }
  });
  if (!result) return tl::unexpected(result.error());
  // The spec's fields are proto3 `optional`: the type must be present even when it is 0
  // (RESERVE). js-libp2p refuses a message without it too; go would read it as RESERVE.
  if (!seen[kHopType]) return malformed(kWhat, "no type");
  return hop;
}

Expected<StopMessage> decode_stop(ByteView message) {
  constexpr std::string_view kWhat = "stop message";
  StopMessage stop;
  SeenFields seen{};
  auto result = for_each_field(kWhat, message, [&](const pb::Field& field) -> Expected<void> {
    switch (field.number) {
      case kStopType:
      case kStopStatus: {
        auto ok = check_field(kWhat, field, pb::WireType::kVarint, &seen);
        if (!ok) return ok;
        auto value = enum_value(kWhat, field);
        if (!value) return tl::unexpected(value.error());
        if (field.number == kStopType) {
          stop.type = static_cast<StopType>(*value);
        } else {
          stop.status = static_cast<Status>(*value);
        }
        return {};
      }
      case kStopPeer: {
        auto ok = check_field(kWhat, field, pb::WireType::kLengthDelimited, &seen);
        if (!ok) return ok;
        auto peer = decode_peer(field.bytes);
        if (!peer) return malformed(kWhat, peer.error().message);
        stop.peer = std::move(*peer);
        return {};
      }
      case kStopLimit: {
        auto ok = check_field(kWhat, field, pb::WireType::kLengthDelimited, &seen);
        if (!ok) return ok;
        auto limit = decode_limit(field.bytes);
        if (!limit) return malformed(kWhat, limit.error().message);
        stop.limit = *limit;
        return {};
      }
      default:
        return {};
    }
  });
  if (!result) return tl::unexpected(result.error());
  if (!seen[kStopType]) return malformed(kWhat, "no type");
  return stop;
}

Bytes frame(ByteView message) {
  Bytes out;
  out.reserve(message.size() + kMaxVarintLength);
  append_varint(out, message.size());
  out.insert(out.end(), message.begin(), message.end());
  return out;
}

Bytes encode_framed(const HopMessage& message) {
  return frame(encode(message));
}

Bytes encode_framed(const StopMessage& message) {
  return frame(encode(message));
}

}  // namespace an::p2p::relay
