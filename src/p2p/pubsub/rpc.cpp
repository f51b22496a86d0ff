#include "p2p/pubsub/rpc.h"

#include <utility>

#include "p2p/wire/protobuf.h"

namespace an::p2p::pubsub {
namespace {

// Field numbers of go-libp2p-pubsub's pb/rpc.proto (the same in js and the spec).
namespace rpc_field {
constexpr std::uint32_t kSubscriptions = 1, kPublish = 2, kControl = 3;
}
namespace sub_field {
constexpr std::uint32_t kSubscribe = 1, kTopic = 2;
}
namespace message_field {
constexpr std::uint32_t kFrom = 1, kData = 2, kSeqno = 3, kTopic = 4, kSignature = 5, kKey = 6;
}
namespace control_field {
constexpr std::uint32_t kIHave = 1, kIWant = 2, kGraft = 3, kPrune = 4, kIDontWant = 5;
}
namespace ihave_field {
constexpr std::uint32_t kTopic = 1, kMessageIds = 2;
}
// ControlIWant and ControlIDontWant hold their IDs in field 1, ControlGraft its topic.
constexpr std::uint32_t kIdListField = 1;
constexpr std::uint32_t kGraftTopicField = 1;
namespace prune_field {
constexpr std::uint32_t kTopic = 1, kPeers = 2, kBackoff = 3;
}
namespace peer_info_field {
constexpr std::uint32_t kPeerId = 1, kSignedPeerRecord = 2;
}

// StrictSign's sequence numbers: go and js write 8 bytes (a big-endian counter) and js refuses
// any other length.
constexpr std::size_t kSeqnoLength = 8;

// ---- sizes, so that split_rpc can pack without encoding ------------------------------------

std::size_t varint_size(std::uint64_t value) {
  std::size_t size = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++size;
  }
  return size;
}

std::size_t tag_size(std::uint32_t field) {
  return varint_size(std::uint64_t{field} << 3);
}

// A length-delimited field whose contents are `length` bytes.
std::size_t delimited_size(std::uint32_t field, std::size_t length) {
  return tag_size(field) + varint_size(length) + length;
}

std::size_t sub_opts_size(const SubOpts& sub) {
  return tag_size(sub_field::kSubscribe) + 1 + delimited_size(sub_field::kTopic, sub.topic.size());
}

std::size_t message_size(const Message& message, bool with_signature) {
  std::size_t size = 0;
  if (!message.from.empty()) size += delimited_size(message_field::kFrom, message.from.size());
  if (!message.data.empty() || !message.data_absent) {
    size += delimited_size(message_field::kData, message.data.size());
  }
  if (!message.seqno.empty()) size += delimited_size(message_field::kSeqno, message.seqno.size());
  size += delimited_size(message_field::kTopic, message.topic.size());
  if (with_signature) {
    if (!message.signature.empty()) {
      size += delimited_size(message_field::kSignature, message.signature.size());
    }
    if (!message.key.empty()) size += delimited_size(message_field::kKey, message.key.size());
  }
  return size;
}

std::size_t id_list_size(std::uint32_t field, const std::vector<MessageId>& ids) {
  std::size_t size = 0;
  for (const auto& id : ids)
    size += delimited_size(field, id.size());
  return size;
}

std::size_t ihave_size(const ControlIHave& ihave) {
  return delimited_size(ihave_field::kTopic, ihave.topic.size()) +
         id_list_size(ihave_field::kMessageIds, ihave.message_ids);
}

std::size_t graft_size(const ControlGraft& graft) {
  return delimited_size(kGraftTopicField, graft.topic.size());
}

std::size_t peer_info_size(const PeerInfo& peer) {
  std::size_t size = delimited_size(peer_info_field::kPeerId, peer.peer_id.size());
  if (!peer.signed_peer_record.empty()) {
    size += delimited_size(peer_info_field::kSignedPeerRecord, peer.signed_peer_record.size());
  }
  return size;
}

std::size_t prune_size(const ControlPrune& prune) {
  std::size_t size = delimited_size(prune_field::kTopic, prune.topic.size());
  for (const auto& peer : prune.peers)
    size += delimited_size(prune_field::kPeers, peer_info_size(peer));
  if (prune.backoff_seconds) {
    size += tag_size(prune_field::kBackoff) + varint_size(*prune.backoff_seconds);
  }
  return size;
}

std::size_t control_size(const ControlMessage& control) {
  std::size_t size = 0;
  for (const auto& ihave : control.ihave)
    size += delimited_size(control_field::kIHave, ihave_size(ihave));
  for (const auto& iwant : control.iwant)
    size += delimited_size(control_field::kIWant, id_list_size(kIdListField, iwant.message_ids));
  for (const auto& graft : control.graft)
    size += delimited_size(control_field::kGraft, graft_size(graft));
  for (const auto& prune : control.prune)
    size += delimited_size(control_field::kPrune, prune_size(prune));
  for (const auto& idontwant : control.idontwant) {
    size += delimited_size(control_field::kIDontWant,
                           id_list_size(kIdListField, idontwant.message_ids));
  }
  return size;
}

std::size_t rpc_size(const Rpc& rpc) {
  std::size_t size = 0;
  for (const auto& sub : rpc.subscriptions)
    size += delimited_size(rpc_field::kSubscriptions, sub_opts_size(sub));
  for (const auto& message : rpc.publish)
    size += delimited_size(rpc_field::kPublish, message_size(message, true));
  if (rpc.control) size += delimited_size(rpc_field::kControl, control_size(*rpc.control));
  return size;
}

// ---- encoding -----------------------------------------------------------------------------
// Fields in field-number order and optional fields written whenever go sets them, so that our
// bytes are go's bytes (a signature covers them).

void length_prefix(Bytes& out, std::uint32_t field, std::size_t length) {
  append_varint(
      out, std::uint64_t{field} << 3 | static_cast<std::uint64_t>(pb::WireType::kLengthDelimited));
  append_varint(out, length);
}

void append_message(Bytes& out, const Message& message, bool with_signature) {
  pb::Writer writer(out);
  if (!message.from.empty()) writer.bytes_field(message_field::kFrom, message.from);
  if (!message.data.empty() || !message.data_absent) {
    writer.bytes_field(message_field::kData, message.data);
  }
  if (!message.seqno.empty()) writer.bytes_field(message_field::kSeqno, message.seqno);
  writer.string_field(message_field::kTopic, message.topic);
  if (with_signature) {
    if (!message.signature.empty())
      writer.bytes_field(message_field::kSignature, message.signature);
    if (!message.key.empty()) writer.bytes_field(message_field::kKey, message.key);
  }
}

void append_id_list(Bytes& out, std::uint32_t field, const std::vector<MessageId>& ids) {
  pb::Writer writer(out);
  for (const auto& id : ids)
    writer.bytes_field(field, id);
}

void append_control(Bytes& out, const ControlMessage& control) {
  pb::Writer writer(out);
  for (const auto& ihave : control.ihave) {
    length_prefix(out, control_field::kIHave, ihave_size(ihave));
    writer.string_field(ihave_field::kTopic, ihave.topic);
    append_id_list(out, ihave_field::kMessageIds, ihave.message_ids);
  }
  for (const auto& iwant : control.iwant) {
    length_prefix(out, control_field::kIWant, id_list_size(kIdListField, iwant.message_ids));
    append_id_list(out, kIdListField, iwant.message_ids);
  }
  for (const auto& graft : control.graft) {
    length_prefix(out, control_field::kGraft, graft_size(graft));
    writer.string_field(kGraftTopicField, graft.topic);
  }
  for (const auto& prune : control.prune) {
    length_prefix(out, control_field::kPrune, prune_size(prune));
    writer.string_field(prune_field::kTopic, prune.topic);
    for (const auto& peer : prune.peers) {
      length_prefix(out, prune_field::kPeers, peer_info_size(peer));
      writer.bytes_field(peer_info_field::kPeerId, peer.peer_id);
      if (!peer.signed_peer_record.empty()) {
        writer.bytes_field(peer_info_field::kSignedPeerRecord, peer.signed_peer_record);
      }
    }
    if (prune.backoff_seconds) writer.varint_field(prune_field::kBackoff, *prune.backoff_seconds);
  }
  for (const auto& idontwant : control.idontwant) {
    length_prefix(out, control_field::kIDontWant,
                  id_list_size(kIdListField, idontwant.message_ids));
    append_id_list(out, kIdListField, idontwant.message_ids);
  }
}

// ---- decoding -----------------------------------------------------------------------------

// What the RPC decoded so far holds, against RpcLimits.
struct Tally {
  const RpcLimits& limits;
  std::size_t control_entries = 0;
  std::size_t message_ids = 0;
  std::size_t prune_peers = 0;
};

Expected<void> check_topic(std::string_view topic) {
  if (topic.size() > kMaxTopicLength) {
    return fail("pubsub rpc: topic of " + std::to_string(topic.size()) +
                " bytes is over the limit of " + std::to_string(kMaxTopicLength));
  }
  return {};
}

Expected<void> expect_type(const pb::Field& field, pb::WireType type, std::string_view what) {
  if (field.type != type) return fail(pb::wrong_wire_type(what, field.number));
  return {};
}

Expected<void> count_entry(Tally& tally) {
  if (++tally.control_entries > tally.limits.max_control_entries) {
    return fail("pubsub rpc: more than " + std::to_string(tally.limits.max_control_entries) +
                " control entries");
  }
  return {};
}

Expected<void> add_message_id(Tally& tally, std::vector<MessageId>& ids, ByteView id) {
  if (++tally.message_ids > tally.limits.max_message_ids) {
    return fail("pubsub rpc: more than " + std::to_string(tally.limits.max_message_ids) +
                " message IDs");
  }
  ids.emplace_back(id.begin(), id.end());
  return {};
}

// Runs `on_field` on each field of `body`; stops at the first error.
template <class OnField>
Expected<void> for_each_field(ByteView body, OnField on_field) {
  pb::Reader reader(body);
  for (;;) {
    auto field = reader.next();
    if (!field) return fail("pubsub rpc: " + field.error().message);
    if (!*field) return {};
    if (auto handled = on_field(**field); !handled) return handled;
  }
}

Expected<SubOpts> decode_sub_opts(ByteView body) {
  SubOpts sub;
  auto decoded = for_each_field(body, [&](const pb::Field& field) -> Expected<void> {
    switch (field.number) {
      case sub_field::kSubscribe:
        if (auto ok = expect_type(field, pb::WireType::kVarint, "pubsub SubOpts"); !ok) return ok;
        sub.subscribe = field.varint != 0;
        return {};
      case sub_field::kTopic:
        if (auto ok = expect_type(field, pb::WireType::kLengthDelimited, "pubsub SubOpts"); !ok) {
          return ok;
        }
        sub.topic = std::string(pb::as_string(field.bytes));
        return check_topic(sub.topic);
      default:
        return {};
    }
  });
  if (!decoded) return tl::unexpected(decoded.error());
  return sub;
}

Expected<Message> decode_message(ByteView body) {
  Message message;
  bool saw_data = false;
  auto decoded = for_each_field(body, [&](const pb::Field& field) -> Expected<void> {
    if (field.number < message_field::kFrom || field.number > message_field::kKey) return {};
    if (auto ok = expect_type(field, pb::WireType::kLengthDelimited, "pubsub Message"); !ok) {
      return ok;
    }
    const Bytes bytes(field.bytes.begin(), field.bytes.end());
    switch (field.number) {
      case message_field::kFrom:
        message.from = bytes;
        break;
      case message_field::kData:
        message.data = bytes;
        saw_data = true;
        break;
      case message_field::kSeqno:
        message.seqno = bytes;
        break;
      case message_field::kTopic:
        message.topic = std::string(pb::as_string(field.bytes));
        return check_topic(message.topic);
      case message_field::kSignature:
        message.signature = bytes;
        break;
      default:
        message.key = bytes;
        break;
    }
    return {};
  });
  if (!decoded) return tl::unexpected(decoded.error());
  message.data_absent = !saw_data;
  return message;
}

Expected<void> decode_ihave(ByteView body, Tally& tally, ControlIHave& ihave) {
  return for_each_field(body, [&](const pb::Field& field) -> Expected<void> {
    if (field.number != ihave_field::kTopic && field.number != ihave_field::kMessageIds) return {};
    if (auto ok = expect_type(field, pb::WireType::kLengthDelimited, "pubsub IHAVE"); !ok) {
      return ok;
    }
    if (field.number == ihave_field::kMessageIds) {
      return add_message_id(tally, ihave.message_ids, field.bytes);
    }
    ihave.topic = std::string(pb::as_string(field.bytes));
    return check_topic(ihave.topic);
  });
}

// IWANT and IDONTWANT: a list of IDs in field 1.
Expected<void> decode_id_list(ByteView body, std::string_view what, Tally& tally,
                              std::vector<MessageId>& ids) {
  return for_each_field(body, [&](const pb::Field& field) -> Expected<void> {
    if (field.number != kIdListField) return {};
    if (auto ok = expect_type(field, pb::WireType::kLengthDelimited, what); !ok) return ok;
    return add_message_id(tally, ids, field.bytes);
  });
}

Expected<void> decode_graft(ByteView body, ControlGraft& graft) {
  return for_each_field(body, [&](const pb::Field& field) -> Expected<void> {
    if (field.number != kGraftTopicField) return {};
    if (auto ok = expect_type(field, pb::WireType::kLengthDelimited, "pubsub GRAFT"); !ok) {
      return ok;
    }
    graft.topic = std::string(pb::as_string(field.bytes));
    return check_topic(graft.topic);
  });
}

Expected<PeerInfo> decode_peer_info(ByteView body) {
  PeerInfo peer;
  auto decoded = for_each_field(body, [&](const pb::Field& field) -> Expected<void> {
    if (field.number != peer_info_field::kPeerId &&
        field.number != peer_info_field::kSignedPeerRecord) {
      return {};
    }
    if (auto ok = expect_type(field, pb::WireType::kLengthDelimited, "pubsub PeerInfo"); !ok) {
      return ok;
    }
    Bytes& target =
        field.number == peer_info_field::kPeerId ? peer.peer_id : peer.signed_peer_record;
    target.assign(field.bytes.begin(), field.bytes.end());
    return {};
  });
  if (!decoded) return tl::unexpected(decoded.error());
  return peer;
}

Expected<void> decode_prune(ByteView body, Tally& tally, ControlPrune& prune) {
  return for_each_field(body, [&](const pb::Field& field) -> Expected<void> {
    switch (field.number) {
      case prune_field::kTopic:
        if (auto ok = expect_type(field, pb::WireType::kLengthDelimited, "pubsub PRUNE"); !ok) {
          return ok;
        }
        prune.topic = std::string(pb::as_string(field.bytes));
        return check_topic(prune.topic);
      case prune_field::kPeers: {
        if (auto ok = expect_type(field, pb::WireType::kLengthDelimited, "pubsub PRUNE"); !ok) {
          return ok;
        }
        if (++tally.prune_peers > tally.limits.max_prune_peers) {
          return fail("pubsub rpc: more than " + std::to_string(tally.limits.max_prune_peers) +
                      " peers in PRUNEs");
        }
        auto peer = decode_peer_info(field.bytes);
        if (!peer) return tl::unexpected(peer.error());
        prune.peers.push_back(std::move(*peer));
        return {};
      }
      case prune_field::kBackoff:
        if (auto ok = expect_type(field, pb::WireType::kVarint, "pubsub PRUNE"); !ok) return ok;
        prune.backoff_seconds = field.varint;
        return {};
      default:
        return {};
    }
  });
}

// Several control fields in one RPC merge, as protobuf merges repeated embedded messages.
Expected<void> decode_control(ByteView body, Tally& tally, ControlMessage& control) {
  return for_each_field(body, [&](const pb::Field& field) -> Expected<void> {
    if (field.number < control_field::kIHave || field.number > control_field::kIDontWant) {
      return {};
    }
    if (auto ok = expect_type(field, pb::WireType::kLengthDelimited, "pubsub ControlMessage");
        !ok) {
      return ok;
    }
    if (auto ok = count_entry(tally); !ok) return ok;
    switch (field.number) {
      case control_field::kIHave:
        return decode_ihave(field.bytes, tally, control.ihave.emplace_back());
      case control_field::kIWant:
        return decode_id_list(field.bytes, "pubsub IWANT", tally,
                              control.iwant.emplace_back().message_ids);
      case control_field::kGraft:
        return decode_graft(field.bytes, control.graft.emplace_back());
      case control_field::kPrune:
        return decode_prune(field.bytes, tally, control.prune.emplace_back());
      default:
        return decode_id_list(field.bytes, "pubsub IDONTWANT", tally,
                              control.idontwant.emplace_back().message_ids);
    }
  });
}

// ---- splitting ----------------------------------------------------------------------------

// Packs entries into RPCs of at most max_size encoded bytes, in the order given, opening a new
// RPC when the next entry does not fit the current one.
class Splitter {
 public:
  explicit Splitter(std::size_t max_size) : max_size_(max_size) { out_.emplace_back(); }

  // A subscription or message: `field_bytes` is its whole field in the RPC.
  bool make_room_top(std::size_t field_bytes) {
    return make_room([&] { return fits(base_ + field_bytes, control_); });
  }
  void add_top(std::size_t field_bytes) { base_ += field_bytes; }

  // A control entry: `field_bytes` is its whole field in the ControlMessage.
  bool make_room_control(std::size_t field_bytes) {
    return make_room([&] { return fits(base_, control_.value_or(0) + field_bytes); });
  }
  bool fits_control(std::size_t field_bytes) const {
    return fits(base_, control_.value_or(0) + field_bytes);
  }
  ControlMessage& add_control(std::size_t field_bytes) {
    control_ = control_.value_or(0) + field_bytes;
    auto& control = current().control;
    if (!control) control.emplace();
    return *control;
  }

  Rpc& current() { return out_.back(); }
  std::vector<Rpc> take() { return std::move(out_); }

 private:
  bool fits(std::size_t base, std::optional<std::size_t> control) const {
    const std::size_t size = base + (control ? delimited_size(rpc_field::kControl, *control) : 0);
    return size <= max_size_;
  }

  // False when the entry does not fit even an empty RPC.
  template <class Fits>
  bool make_room(Fits entry_fits) {
    if (entry_fits()) return true;
    if (base_ == 0 && !control_) return false;
    out_.emplace_back();
    base_ = 0;
    control_.reset();
    return entry_fits();
  }

  std::size_t max_size_;
  std::vector<Rpc> out_;
  std::size_t base_ = 0;                // the current RPC's size without its control field
  std::optional<std::size_t> control_;  // its ControlMessage's size, when it has one
};

tl::unexpected<Error> too_large(std::string_view what, std::size_t max_size) {
  return fail("pubsub rpc: " + std::string(what) + " alone does not fit in " +
              std::to_string(max_size) + " bytes");
}

// Splits the ID list of an IHAVE, IWANT or IDONTWANT over as many entries as needed; every
// piece repeats `fixed_size` bytes of other fields (the IHAVE's topic). `add_piece` appends
// an entry holding `ids` to a control message. False when one ID does not fit an empty RPC.
template <class AddPiece>
bool split_ids(Splitter& splitter, std::uint32_t control_field_number, std::uint32_t id_field,
               std::size_t fixed_size, std::vector<MessageId>& ids, AddPiece add_piece) {
  std::size_t next = 0;
  do {
    std::size_t piece_size = fixed_size;
    const std::size_t first_size =
        next < ids.size() ? piece_size + delimited_size(id_field, ids[next].size()) : piece_size;
    if (!splitter.make_room_control(delimited_size(control_field_number, first_size))) {
      return false;
    }
    std::vector<MessageId> piece;
    while (next < ids.size()) {
      const std::size_t grown = piece_size + delimited_size(id_field, ids[next].size());
      if (!splitter.fits_control(delimited_size(control_field_number, grown))) break;
      piece_size = grown;
      piece.push_back(std::move(ids[next++]));
    }
    add_piece(splitter.add_control(delimited_size(control_field_number, piece_size)),
              std::move(piece));
  } while (next < ids.size());
  return true;
}

}  // namespace

std::string_view protocol_id(PeerProtocol protocol) {
  switch (protocol) {
    case PeerProtocol::kFloodsub:
      return kFloodsubProtocol;
    case PeerProtocol::kMeshsub10:
      return kMeshsub10Protocol;
    case PeerProtocol::kMeshsub11:
      return kMeshsub11Protocol;
    case PeerProtocol::kMeshsub12:
      return kMeshsub12Protocol;
  }
  return kFloodsubProtocol;
}

std::optional<PeerProtocol> parse_protocol_id(std::string_view id) {
  for (PeerProtocol protocol : {PeerProtocol::kFloodsub, PeerProtocol::kMeshsub10,
                                PeerProtocol::kMeshsub11, PeerProtocol::kMeshsub12}) {
    if (protocol_id(protocol) == id) return protocol;
  }
  return std::nullopt;
}

Bytes encode_rpc(const Rpc& rpc) {
  Bytes out;
  out.reserve(rpc_size(rpc));
  pb::Writer writer(out);
  for (const auto& sub : rpc.subscriptions) {
    length_prefix(out, rpc_field::kSubscriptions, sub_opts_size(sub));
    writer.varint_field(sub_field::kSubscribe, sub.subscribe ? 1 : 0);
    writer.string_field(sub_field::kTopic, sub.topic);
  }
  for (const auto& message : rpc.publish) {
    length_prefix(out, rpc_field::kPublish, message_size(message, true));
    append_message(out, message, true);
  }
  if (rpc.control) {
    length_prefix(out, rpc_field::kControl, control_size(*rpc.control));
    append_control(out, *rpc.control);
  }
  return out;
}

Expected<Rpc> decode_rpc(ByteView body, const RpcLimits& limits) {
  if (body.size() > kMaxRpcSize) {
    return fail("pubsub rpc of " + std::to_string(body.size()) + " bytes is over the limit of " +
                std::to_string(kMaxRpcSize));
  }
  Rpc rpc;
  Tally tally{limits};
  auto decoded = for_each_field(body, [&](const pb::Field& field) -> Expected<void> {
    if (field.number < rpc_field::kSubscriptions || field.number > rpc_field::kControl) return {};
    if (auto ok = expect_type(field, pb::WireType::kLengthDelimited, "pubsub RPC"); !ok) return ok;
    switch (field.number) {
      case rpc_field::kSubscriptions: {
        if (rpc.subscriptions.size() >= limits.max_subscriptions) {
          return fail("pubsub rpc: more than " + std::to_string(limits.max_subscriptions) +
                      " subscriptions");
        }
        auto sub = decode_sub_opts(field.bytes);
        if (!sub) return tl::unexpected(sub.error());
        rpc.subscriptions.push_back(std::move(*sub));
        return {};
      }
      case rpc_field::kPublish: {
        if (rpc.publish.size() >= limits.max_messages) {
          return fail("pubsub rpc: more than " + std::to_string(limits.max_messages) + " messages");
        }
        auto message = decode_message(field.bytes);
        if (!message) return tl::unexpected(message.error());
        rpc.publish.push_back(std::move(*message));
        return {};
      }
      default:
        if (!rpc.control) rpc.control.emplace();
        return decode_control(field.bytes, tally, *rpc.control);
    }
  });
  if (!decoded) return tl::unexpected(decoded.error());
  return rpc;
}

Expected<std::vector<Rpc>> split_rpc(Rpc rpc, std::size_t max_size) {
  if (rpc_size(rpc) <= max_size) {
    std::vector<Rpc> whole;
    whole.push_back(std::move(rpc));
    return whole;
  }
  // go's fragmentRPC: messages, then subscriptions, then the control message whole if it fits,
  // else its entries one by one, long ID lists cut into pieces. Unlike go, sizes are exact
  // (go reserves one byte per entry for its tag and length) and a cut IHAVE keeps its topic.
  Splitter splitter(max_size);
  for (auto& message : rpc.publish) {
    const std::size_t field_bytes =
        delimited_size(rpc_field::kPublish, message_size(message, true));
    if (!splitter.make_room_top(field_bytes)) return too_large("a message", max_size);
    splitter.add_top(field_bytes);
    splitter.current().publish.push_back(std::move(message));
  }
  for (auto& sub : rpc.subscriptions) {
    const std::size_t field_bytes = delimited_size(rpc_field::kSubscriptions, sub_opts_size(sub));
    if (!splitter.make_room_top(field_bytes)) return too_large("a subscription", max_size);
    splitter.add_top(field_bytes);
    splitter.current().subscriptions.push_back(std::move(sub));
  }
  if (!rpc.control || rpc.control->empty()) return splitter.take();
  ControlMessage& control = *rpc.control;

  const std::size_t whole_control = control_size(control);
  if (splitter.make_room_control(whole_control)) {
    ControlMessage& out = splitter.add_control(whole_control);
    out = std::move(control);
    return splitter.take();
  }

  for (auto& graft : control.graft) {
    const std::size_t field_bytes = delimited_size(control_field::kGraft, graft_size(graft));
    if (!splitter.make_room_control(field_bytes)) return too_large("a GRAFT", max_size);
    splitter.add_control(field_bytes).graft.push_back(std::move(graft));
  }
  for (auto& prune : control.prune) {
    const std::size_t field_bytes = delimited_size(control_field::kPrune, prune_size(prune));
    if (!splitter.make_room_control(field_bytes)) return too_large("a PRUNE", max_size);
    splitter.add_control(field_bytes).prune.push_back(std::move(prune));
  }
  for (auto& iwant : control.iwant) {
    auto split = split_ids(splitter, control_field::kIWant, kIdListField, 0, iwant.message_ids,
                           [](ControlMessage& out, std::vector<MessageId> ids) {
                             out.iwant.push_back(ControlIWant{std::move(ids)});
                           });
    if (!split) return too_large("an IWANT entry", max_size);
  }
  for (auto& ihave : control.ihave) {
    const std::size_t topic_size = delimited_size(ihave_field::kTopic, ihave.topic.size());
    auto split = split_ids(splitter, control_field::kIHave, ihave_field::kMessageIds, topic_size,
                           ihave.message_ids, [&](ControlMessage& out, std::vector<MessageId> ids) {
                             out.ihave.push_back(ControlIHave{ihave.topic, std::move(ids)});
                           });
    if (!split) return too_large("an IHAVE entry", max_size);
  }
  for (auto& idontwant : control.idontwant) {
    auto split =
        split_ids(splitter, control_field::kIDontWant, kIdListField, 0, idontwant.message_ids,
                  [](ControlMessage& out, std::vector<MessageId> ids) {
                    out.idontwant.push_back(ControlIDontWant{std::move(ids)});
                  });
    if (!split) return too_large("an IDONTWANT entry", max_size);
  }
  return splitter.take();
}

MessageId default_message_id(const Message& message) {
  MessageId id;
  id.reserve(message.from.size() + message.seqno.size());
  id.insert(id.end(), message.from.begin(), message.from.end());
  id.insert(id.end(), message.seqno.begin(), message.seqno.end());
  return id;
}

namespace {

// "libp2p-pubsub:" followed by the message's encoding without signature and key (go's
// sign.go, js's buildRawMessage / validateToRawMessage).
Bytes signed_bytes(const Message& message) {
  Bytes out;
  out.reserve(kSignaturePrefix.size() + message_size(message, false));
  out.insert(out.end(), kSignaturePrefix.begin(), kSignaturePrefix.end());
  append_message(out, message, false);
  return out;
}

}  // namespace

Expected<void> sign_message(Message& message, const PrivateKey& key) {
  if (message.seqno.size() != kSeqnoLength) {
    return fail("pubsub: a signed message needs a seqno of " + std::to_string(kSeqnoLength) +
                " bytes");
  }
  message.from = key.peer_id().bytes();
  message.signature.clear();
  message.key.clear();
  auto signature = key.sign(signed_bytes(message));
  if (!signature) return tl::unexpected(signature.error());
  message.signature = std::move(*signature);
  // go attaches the key only when it cannot be extracted from the peer ID (RSA and long keys).
  if (!key.peer_id().has_inline_public_key()) message.key = key.public_key().protobuf();
  return {};
}

Expected<PeerId> verify_message(const Message& message) {
  if (message.from.empty()) return fail("pubsub message without an author (from)");
  auto author = PeerId::from_multihash(message.from);
  if (!author) return fail("pubsub message author is not a peer ID: " + author.error().message);
  if (message.seqno.size() != kSeqnoLength) {
    return fail("pubsub message seqno is not " + std::to_string(kSeqnoLength) + " bytes");
  }
  if (message.signature.empty()) return fail("pubsub message is not signed");
  auto public_key = [&]() -> Expected<PublicKey> {
    if (message.key.empty()) {
      auto inlined = author->inline_public_key();
      if (!inlined) {
        return fail("pubsub message carries no key and its author's ID does not inline one");
      }
      return inlined;
    }
    auto attached = PublicKey::from_protobuf(message.key);
    if (!attached) return fail("pubsub message key: " + attached.error().message);
    if (attached->peer_id() != *author) {
      return fail("pubsub message key does not match its author " + author->to_base58());
    }
    return attached;
  }();
  if (!public_key) return tl::unexpected(public_key.error());
  if (!public_key->verify(signed_bytes(message), message.signature)) {
    return fail("pubsub message signature does not verify");
  }
  return *std::move(author);
}

}  // namespace an::p2p::pubsub
