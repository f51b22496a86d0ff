#include "p2p/kad/records.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <utility>

#include "p2p/crypto/key.h"
#include "p2p/kad/cbor.h"
#include "p2p/multiformats/multihash.h"
#include "p2p/wire/protobuf.h"

namespace an::p2p::kad {
namespace {

using std::chrono::duration_cast;
using std::chrono::nanoseconds;
using std::chrono::seconds;

constexpr std::string_view kPkNamespace = "pk";
constexpr std::string_view kIpnsNamespace = "ipns";

// IpnsEntry protobuf field numbers (boxo ipns/pb/record.proto).
enum IpnsField : std::uint32_t {
  kIpnsValueField = 1,
  kIpnsSignatureV1Field = 2,
  kIpnsValidityTypeField = 3,
  kIpnsValidityField = 4,
  kIpnsSequenceField = 5,
  kIpnsTtlField = 6,
  kIpnsPubKeyField = 7,
  kIpnsSignatureV2Field = 8,
  kIpnsDataField = 9,
};

// Keys of the DAG-CBOR data map (boxo ipns/record.go).
constexpr std::string_view kCborValue = "Value";
constexpr std::string_view kCborValidity = "Validity";
constexpr std::string_view kCborValidityType = "ValidityType";
constexpr std::string_view kCborSequence = "Sequence";
constexpr std::string_view kCborTtl = "TTL";

// go-ipld-prime reads CBOR integers as int64.
constexpr std::uint64_t kMaxCborInt =
    static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

std::string_view as_text(ByteView bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// ---- RFC 3339 ------------------------------------------------------------------------------

bool digits(std::string_view text, std::size_t pos, std::size_t count, int& out) {
  if (pos + count > text.size()) return false;
  int value = 0;
  for (std::size_t i = pos; i < pos + count; ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
    value = value * 10 + (text[i] - '0');
  }
  out = value;
  return true;
}

// Protobuf fields of the IPNS entry, as they appeared.
struct IpnsProtobuf {
  std::optional<ByteView> value;
  std::optional<ByteView> signature_v1;
  std::optional<std::uint64_t> validity_type;
  std::optional<ByteView> validity;
  std::optional<std::uint64_t> sequence;
  std::optional<std::uint64_t> ttl;
  std::optional<ByteView> public_key;
  std::optional<ByteView> signature_v2;
  std::optional<ByteView> data;
};

Expected<IpnsProtobuf> parse_ipns_protobuf(ByteView record) {
  if (record.size() > kMaxIpnsRecordSize) {
    return fail("ipns: record of " + std::to_string(record.size()) +
                " bytes exceeds the limit of " + std::to_string(kMaxIpnsRecordSize));
  }
  IpnsProtobuf entry;
  pb::Reader reader(record);
  while (true) {
    auto next = reader.next();
    if (!next) return fail("ipns: " + next.error().message);
    if (!next->has_value()) break;
    const pb::Field& field = **next;
    const bool varint_field = field.number == kIpnsValidityTypeField ||
                              field.number == kIpnsSequenceField || field.number == kIpnsTtlField;
    if (field.number < kIpnsValueField || field.number > kIpnsDataField) continue;
    const auto expected = varint_field ? pb::WireType::kVarint : pb::WireType::kLengthDelimited;
    if (field.type != expected) {
      return fail("ipns: field " + std::to_string(field.number) + " has the wrong wire type");
    }
    switch (field.number) {
      case kIpnsValueField:
        entry.value = field.bytes;
        break;
      case kIpnsSignatureV1Field:
        entry.signature_v1 = field.bytes;
        break;
      case kIpnsValidityTypeField:
        entry.validity_type = field.varint;
        break;
      case kIpnsValidityField:
        entry.validity = field.bytes;
        break;
      case kIpnsSequenceField:
        entry.sequence = field.varint;
        break;
      case kIpnsTtlField:
        entry.ttl = field.varint;
        break;
      case kIpnsPubKeyField:
        entry.public_key = field.bytes;
        break;
      case kIpnsSignatureV2Field:
        entry.signature_v2 = field.bytes;
        break;
      default:
        entry.data = field.bytes;
        break;
    }
  }
  return entry;
}

Expected<std::uint64_t> cbor_int(const std::vector<cbor::Entry>& map, std::string_view key) {
  const cbor::Value* value = cbor::find(map, key);
  if (value == nullptr) return fail("ipns: data has no " + std::string(key));
  if (value->kind == cbor::Kind::kNegative) {
    return fail("ipns: negative " + std::string(key) + " is not supported");
  }
  if (value->kind != cbor::Kind::kUnsigned) {
    return fail("ipns: " + std::string(key) + " is not an integer");
  }
  if (value->number > kMaxCborInt) return fail("ipns: " + std::string(key) + " is too large");
  return value->number;
}

Expected<std::string> cbor_bytes(const std::vector<cbor::Entry>& map, std::string_view key) {
  const cbor::Value* value = cbor::find(map, key);
  if (value == nullptr) return fail("ipns: data has no " + std::string(key));
  if (value->kind != cbor::Kind::kBytes) {
    return fail("ipns: " + std::string(key) + " is not a byte string");
  }
  return value->bytes;
}

// The parsed record plus the protobuf view, for validation.
struct ParsedIpns {
  IpnsProtobuf protobuf;
  IpnsRecord record;
  std::uint64_t validity_type = 0;
};

Expected<ParsedIpns> parse_ipns(ByteView bytes) {
  auto protobuf = parse_ipns_protobuf(bytes);
  if (!protobuf) return tl::unexpected(protobuf.error());
  if (!protobuf->data || protobuf->data->empty()) {
    return fail("ipns: record is missing the dag-cbor data field");
  }
  auto map = cbor::decode_map(as_text(*protobuf->data));
  if (!map) return fail("ipns: data: " + map.error().message);
  ParsedIpns parsed;
  parsed.protobuf = *protobuf;
  auto value = cbor_bytes(*map, kCborValue);
  if (!value) return tl::unexpected(value.error());
  auto validity = cbor_bytes(*map, kCborValidity);
  if (!validity) return tl::unexpected(validity.error());
  auto validity_type = cbor_int(*map, kCborValidityType);
  if (!validity_type) return tl::unexpected(validity_type.error());
  auto sequence = cbor_int(*map, kCborSequence);
  if (!sequence) return tl::unexpected(sequence.error());
  auto ttl = cbor_int(*map, kCborTtl);
  if (!ttl) return tl::unexpected(ttl.error());
  parsed.validity_type = *validity_type;
  IpnsRecord& record = parsed.record;
  record.value = Bytes(value->begin(), value->end());
  record.validity = *validity;
  record.sequence = *sequence;
  record.ttl_ns = *ttl;
  record.has_signature_v2 = protobuf->signature_v2.has_value() && !protobuf->signature_v2->empty();
  if (protobuf->public_key) {
    record.public_key = Bytes(protobuf->public_key->begin(), protobuf->public_key->end());
  }
  if (*validity_type == kIpnsValidityEol) {
    auto eol = parse_rfc3339(record.validity);
    if (!eol) return fail("ipns: invalid validity: " + eol.error().message);
    record.eol = *eol;
  }
  return parsed;
}

bool same(std::optional<ByteView> protobuf, const Bytes& cbor) {
  const ByteView view = protobuf.value_or(ByteView{});
  return std::equal(view.begin(), view.end(), cbor.begin(), cbor.end());
}

// boxo validateCborDataMatchesPbData.
Expected<void> check_v1_fields(const ParsedIpns& parsed) {
  const IpnsProtobuf& pb_fields = parsed.protobuf;
  const IpnsRecord& record = parsed.record;
  if (!same(pb_fields.value, record.value)) {
    return fail("ipns: field \"Value\" did not match between protobuf and CBOR");
  }
  if (!same(pb_fields.validity, Bytes(record.validity.begin(), record.validity.end()))) {
    return fail("ipns: field \"Validity\" did not match between protobuf and CBOR");
  }
  if (pb_fields.validity_type.value_or(0) != parsed.validity_type) {
    return fail("ipns: field \"ValidityType\" did not match between protobuf and CBOR");
  }
  if (pb_fields.sequence.value_or(0) != record.sequence) {
    return fail("ipns: field \"Sequence\" did not match between protobuf and CBOR");
  }
  if (pb_fields.ttl.value_or(0) != record.ttl_ns) {
    return fail("ipns: field \"TTL\" did not match between protobuf and CBOR");
  }
  return {};
}

// boxo ipns compare(): 1 when a is newer, -1 when older, 0 when they cannot be ordered.
int compare_ipns(const IpnsRecord& a, const IpnsRecord& b) {
  if (a.has_signature_v2 != b.has_signature_v2) return a.has_signature_v2 ? 1 : -1;
  if (a.sequence != b.sequence) return a.sequence > b.sequence ? 1 : -1;
  if (a.eol != b.eol) return a.eol > b.eol ? 1 : -1;
  return 0;
}

}  // namespace

std::string format_rfc3339(TimePoint time) {
  const auto ns = std::chrono::time_point_cast<nanoseconds>(time);
  const auto day = std::chrono::floor<std::chrono::days>(ns);
  const std::chrono::year_month_day ymd{day};
  const std::chrono::hh_mm_ss<nanoseconds> clock{ns - day};
  char buffer[64];
  int written = std::snprintf(
      buffer, sizeof(buffer), "%04d-%02u-%02uT%02d:%02d:%02d", static_cast<int>(ymd.year()),
      static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
      static_cast<int>(clock.hours().count()), static_cast<int>(clock.minutes().count()),
      static_cast<int>(clock.seconds().count()));
  std::string text(buffer, static_cast<std::size_t>(written));
  long long fraction = clock.subseconds().count();
  if (fraction != 0) {
    std::snprintf(buffer, sizeof(buffer), ".%09lld", fraction);
    std::string digits_text(buffer);
    while (digits_text.back() == '0')
      digits_text.pop_back();
    text += digits_text;
  }
  text += 'Z';
  return text;
}

Expected<TimePoint> parse_rfc3339(std::string_view text) {
  const auto bad = [&text](std::string_view why) {
    return fail("invalid RFC 3339 time \"" + std::string(text.substr(0, 64)) +
                "\": " + std::string(why));
  };
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!digits(text, 0, 4, year) || text.size() < 20 || text[4] != '-' ||
      !digits(text, 5, 2, month) || text[7] != '-' || !digits(text, 8, 2, day) || text[10] != 'T' ||
      !digits(text, 11, 2, hour) || text[13] != ':' || !digits(text, 14, 2, minute) ||
      text[16] != ':' || !digits(text, 17, 2, second)) {
    return bad("expected YYYY-MM-DDTHH:MM:SS");
  }
  const std::chrono::year_month_day ymd{std::chrono::year{year},
                                        std::chrono::month{static_cast<unsigned>(month)},
                                        std::chrono::day{static_cast<unsigned>(day)}};
  if (!ymd.ok()) return bad("no such date");
  if (hour > 23 || minute > 59 || second > 59) return bad("time of day out of range");
  std::size_t pos = 19;
  std::int64_t fraction_ns = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    std::size_t count = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (++count > 9) return bad("more than 9 fraction digits");
      fraction_ns = fraction_ns * 10 + (text[pos] - '0');
      ++pos;
    }
    if (count == 0) return bad("no digits after '.'");
    for (std::size_t i = count; i < 9; ++i)
      fraction_ns *= 10;
  }
  std::int64_t offset_seconds = 0;
  if (pos < text.size() && text[pos] == 'Z') {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    int offset_hours = 0, offset_minutes = 0;
    if (!digits(text, pos + 1, 2, offset_hours) || pos + 3 >= text.size() || text[pos + 3] != ':' ||
        !digits(text, pos + 4, 2, offset_minutes) || offset_hours > 23 || offset_minutes > 59) {
      return bad("bad zone offset");
    }
    offset_seconds = (offset_hours * 3600 + offset_minutes * 60) * (text[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return bad("expected 'Z' or a zone offset");
  }
  if (pos != text.size()) return bad("text after the zone");
  const std::int64_t days = std::chrono::sys_days{ymd}.time_since_epoch().count();
  const std::int64_t total_seconds =
      days * 86400 + hour * 3600 + minute * 60 + second - offset_seconds;
  // Clamp dates the clock cannot represent (with nanosecond ticks: after 2262 or before 1677).
  using Rep = TimePoint::duration;
  const std::int64_t max_seconds = duration_cast<seconds>(Rep::max()).count() - 1;
  const std::int64_t min_seconds = duration_cast<seconds>(Rep::min()).count() + 1;
  if (total_seconds >= max_seconds) return TimePoint::max();
  if (total_seconds <= min_seconds) return TimePoint::min();
  return TimePoint(duration_cast<Rep>(seconds(total_seconds)) +
                   duration_cast<Rep>(nanoseconds(fraction_ns)));
}

Expected<SplitKey> split_key(ByteView key) {
  const std::string_view text = as_text(key);
  if (text.empty() || text.front() != '/') return fail("invalid record key: no /namespace/");
  const std::size_t slash = text.find('/', 1);
  if (slash == std::string_view::npos || slash == 1) {
    return fail("invalid record key: no /namespace/");
  }
  return SplitKey{text.substr(1, slash - 1), key.subspan(slash + 1)};
}

// ---- /pk ---------------------------------------------------------------------------------------

Expected<void> PublicKeyValidator::validate(ByteView key, ByteView value, TimePoint) const {
  auto split = split_key(key);
  if (!split) return tl::unexpected(split.error());
  if (split->name_space != kPkNamespace) return fail("pk: namespace is not 'pk'");
  if (auto hash = parse_multihash(split->rest); !hash) {
    return fail("pk: key did not contain a valid multihash: " + hash.error().message);
  }
  auto public_key = PublicKey::from_protobuf(value);
  if (!public_key) return fail("pk: " + public_key.error().message);
  const PeerId& id = public_key->peer_id();
  if (!std::equal(id.bytes().begin(), id.bytes().end(), split->rest.begin(), split->rest.end())) {
    return fail("pk: public key does not match storage key");
  }
  return {};
}

Expected<std::size_t> PublicKeyValidator::select(ByteView, std::span<const ByteView> values) const {
  if (values.empty()) return fail("pk: can't select from no values");
  return std::size_t{0};
}

// ---- /ipns -------------------------------------------------------------------------------------

Expected<IpnsRecord> parse_ipns_record(ByteView record) {
  auto parsed = parse_ipns(record);
  if (!parsed) return tl::unexpected(parsed.error());
  return std::move(parsed->record);
}

Expected<Bytes> make_ipns_record(const PrivateKey& key, std::string_view value,
                                 std::uint64_t sequence, TimePoint eol, std::uint64_t ttl_ns) {
  if (sequence > kMaxCborInt || ttl_ns > kMaxCborInt) {
    return fail("ipns: sequence and TTL must fit a signed 64-bit integer");
  }
  // DAG-CBOR map, keys in canonical order: length first, then bytewise.
  Bytes data;
  cbor::Writer writer(data);
  writer.map_header(5);
  writer.text(kCborTtl);
  writer.unsigned_int(ttl_ns);
  writer.text(kCborValue);
  writer.bytes(value);
  writer.text(kCborSequence);
  writer.unsigned_int(sequence);
  writer.text(kCborValidity);
  writer.bytes(format_rfc3339(eol));
  writer.text(kCborValidityType);
  writer.unsigned_int(kIpnsValidityEol);

  Bytes signed_bytes(kIpnsSignaturePrefix.begin(), kIpnsSignaturePrefix.end());
  signed_bytes.insert(signed_bytes.end(), data.begin(), data.end());
  auto signature = key.sign(signed_bytes);
  if (!signature) return tl::unexpected(signature.error());

  Bytes out;
  pb::Writer protobuf(out);
  protobuf.bytes_field(kIpnsSignatureV2Field, *signature);
  protobuf.bytes_field(kIpnsDataField, data);
  return out;
}

Expected<void> IpnsValidator::validate(ByteView key, ByteView value, TimePoint now) const {
  auto split = split_key(key);
  if (!split) return tl::unexpected(split.error());
  if (split->name_space != kIpnsNamespace) return fail("ipns: namespace is not 'ipns'");
  auto name = PeerId::from_multihash(split->rest);
  if (!name) return fail("ipns: name is invalid: " + name.error().message);

  auto parsed = parse_ipns(value);
  if (!parsed) return tl::unexpected(parsed.error());
  const IpnsProtobuf& protobuf = parsed->protobuf;
  if (!parsed->record.has_signature_v2) return fail("ipns: record has no V2 signature");

  // The key: embedded in the record (and then it must be the name's), or inlined in the name.
  std::optional<PublicKey> public_key;
  if (protobuf.public_key && !protobuf.public_key->empty()) {
    auto decoded = PublicKey::from_protobuf(*protobuf.public_key);
    if (!decoded) return fail("ipns: public key invalid: " + decoded.error().message);
    if (decoded->peer_id() != *name) {
      return fail("ipns: record public key does not match the expected public key");
    }
    public_key = std::move(*decoded);
  } else {
    auto inlined = name->inline_public_key();
    if (!inlined) {
      return fail("ipns: public key not found (not in the record, not inlined in the name): " +
                  inlined.error().message);
    }
    public_key = std::move(*inlined);
  }

  Bytes signed_bytes(kIpnsSignaturePrefix.begin(), kIpnsSignaturePrefix.end());
  signed_bytes.insert(signed_bytes.end(), protobuf.data->begin(), protobuf.data->end());
  if (!public_key->verify(signed_bytes, *protobuf.signature_v2)) {
    return fail("ipns: signature verification failed");
  }
  if ((protobuf.signature_v1 && !protobuf.signature_v1->empty()) ||
      (protobuf.value && !protobuf.value->empty())) {
    auto matches = check_v1_fields(*parsed);
    if (!matches) return matches;
  }
  if (parsed->validity_type != kIpnsValidityEol) {
    return fail("ipns: record contains an unrecognized validity type");
  }
  if (now > parsed->record.eol) return fail("ipns: record is expired");
  return {};
}

Expected<std::size_t> IpnsValidator::select(ByteView, std::span<const ByteView> values) const {
  if (values.empty()) return fail("ipns: no usable records in given set");
  std::vector<IpnsRecord> records;
  records.reserve(values.size());
  for (const ByteView value : values) {
    auto parsed = parse_ipns_record(value);
    if (!parsed) return tl::unexpected(parsed.error());
    records.push_back(std::move(*parsed));
  }
  std::size_t best = 0;
  for (std::size_t j = 1; j < records.size(); ++j) {
    int order = compare_ipns(records[best], records[j]);
    if (order == 0) {
      const ByteView a = values[best];
      const ByteView b = values[j];
      const bool less = std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end());
      order = less ? -1 : 0;
    }
    if (order < 0) best = j;
  }
  return best;
}

// ---- registry ----------------------------------------------------------------------------------

NamespacedValidator NamespacedValidator::with_defaults() {
  NamespacedValidator registry;
  registry.add(std::string(kPkNamespace), std::make_unique<PublicKeyValidator>());
  registry.add(std::string(kIpnsNamespace), std::make_unique<IpnsValidator>());
  return registry;
}

void NamespacedValidator::add(std::string name_space, std::unique_ptr<Validator> validator) {
  validators_[std::move(name_space)] = std::move(validator);
}

bool NamespacedValidator::has(std::string_view name_space) const {
  return validators_.find(name_space) != validators_.end();
}

Expected<const Validator*> NamespacedValidator::lookup(ByteView key) const {
  auto split = split_key(key);
  if (!split) return tl::unexpected(split.error());
  auto it = validators_.find(split->name_space);
  if (it == validators_.end()) {
    return fail("unsupported record namespace \"" + std::string(split->name_space.substr(0, 64)) +
                "\"");
  }
  return it->second.get();
}

Expected<void> NamespacedValidator::validate(ByteView key, ByteView value, TimePoint now) const {
  auto validator = lookup(key);
  if (!validator) return tl::unexpected(validator.error());
  return (*validator)->validate(key, value, now);
}

Expected<std::size_t> NamespacedValidator::select(ByteView key,
                                                  std::span<const ByteView> values) const {
  if (values.empty()) return fail("can't select from no values");
  auto validator = lookup(key);
  if (!validator) return tl::unexpected(validator.error());
  return (*validator)->select(key, values);
}

// ---- RecordStore -------------------------------------------------------------------------------

bool RecordStore::too_old(const StoredRecord& record, TimePoint now) const {
  return now - record.received > limits_.max_age;
}

void RecordStore::erase(std::map<Bytes, StoredRecord>::iterator it) {
  bytes_ -= it->first.size() + it->second.value.size();
  records_.erase(it);
}

Expected<void> RecordStore::put(ByteView key, ByteView value, TimePoint now) {
  if (key.size() > kMaxRecordKeySize) return fail("record key too long");
  if (value.size() > kMaxRecordValueSize) return fail("record value too large");
  auto valid = validator_.validate(key, value, now);
  if (!valid) return valid;

  Bytes key_bytes(key.begin(), key.end());
  auto it = records_.find(key_bytes);
  if (it != records_.end()) {
    if (too_old(it->second, now) || !validator_.validate(key, it->second.value, now)) {
      erase(it);  // an expired or no longer valid record is simply replaced
      it = records_.end();
    } else {
      const ByteView candidates[] = {value, it->second.value};
      auto best = validator_.select(key, candidates);
      if (!best) return tl::unexpected(best.error());
      if (*best != 0) return fail("record is older than the stored record");
    }
  }
  const std::size_t old_size = it == records_.end() ? 0 : key.size() + it->second.value.size();
  const std::size_t new_size = key.size() + value.size();
  const auto fits = [&] {
    const bool count_ok = it != records_.end() || records_.size() < limits_.max_records;
    return count_ok && bytes_ - old_size + new_size <= limits_.max_bytes;
  };
  if (!fits()) {
    purge_if_due(now);
    it = records_.find(key_bytes);  // a purge never drops the record just validated above
    if (!fits()) return fail("record store is full");
  }
  if (it != records_.end()) {
    bytes_ = bytes_ - old_size + new_size;
    it->second = StoredRecord{Bytes(value.begin(), value.end()), now};
  } else {
    bytes_ += new_size;
    records_.emplace(std::move(key_bytes), StoredRecord{Bytes(value.begin(), value.end()), now});
  }
  oldest_received_ = std::min(oldest_received_, now);
  return {};
}

std::optional<StoredRecord> RecordStore::get(ByteView key, TimePoint now) {
  auto it = records_.find(Bytes(key.begin(), key.end()));
  if (it == records_.end()) return std::nullopt;
  if (too_old(it->second, now) || !validator_.validate(key, it->second.value, now)) {
    erase(it);
    return std::nullopt;
  }
  return it->second;
}

void RecordStore::expire(TimePoint now) {
  oldest_received_ = TimePoint::max();
  for (auto it = records_.begin(); it != records_.end();) {
    auto current = it++;
    if (too_old(current->second, now)) {
      erase(current);
    } else {
      oldest_received_ = std::min(oldest_received_, current->second.received);
    }
  }
  last_purge_ = now;
}

void RecordStore::purge_if_due(TimePoint now) {
  const bool none_too_old = oldest_received_ >= now - limits_.max_age;
  const bool purged_lately = now >= last_purge_ && now < last_purge_ + kMinPurgeInterval;
  if (none_too_old || purged_lately) return;
  expire(now);
}

// ---- ProviderStore -----------------------------------------------------------------------------

namespace {

// The heap of an entry beside its bytes, roughly: the vector slot (ID, addresses, expiry) and
// the allocator's header of its two buffers.
constexpr std::size_t kProviderEntryOverhead = 64 + 2 * 16;
// The map node of a key (red-black links, key and vector headers) and the headers of the key's
// and the vector's buffers.
constexpr std::size_t kProviderKeyOverhead = 96 + 2 * 16;

}  // namespace

Bytes ProviderStore::pack(const std::vector<Multiaddr>& addrs) {
  Bytes packed;
  std::size_t count = 0;
  for (const auto& addr : addrs) {
    if (count == kMaxProviderAddrs) break;
    const Bytes binary = addr.to_bytes();
    const std::size_t before = packed.size();
    append_varint(packed, binary.size());
    packed.insert(packed.end(), binary.begin(), binary.end());
    if (packed.size() > kMaxProviderAddrBytes) {
      packed.resize(before);
      break;
    }
    ++count;
  }
  packed.shrink_to_fit();
  return packed;
}

std::size_t ProviderStore::entry_bytes(const Entry& entry) {
  return entry.id.bytes().size() + entry.addrs.capacity() + kProviderEntryOverhead;
}

std::size_t ProviderStore::key_bytes(const Bytes& key) {
  return key.size() + kProviderKeyOverhead;
}

std::size_t ProviderStore::footprint(std::size_t key_size, const PeerId& id,
                                     const std::vector<Multiaddr>& addrs) {
  return key_size + kProviderKeyOverhead + id.bytes().size() + pack(addrs).size() +
         kProviderEntryOverhead;
}

Expected<void> ProviderStore::add(ByteView key, const PeerId& id,
                                  const std::vector<Multiaddr>& addrs, TimePoint now) {
  if (key.empty() || key.size() > kMaxProviderKeySize) {
    return fail("provider key must be 1.." + std::to_string(kMaxProviderKeySize) + " bytes");
  }
  const TimePoint expires = now + limits_.validity;
  Entry entry{id, pack(addrs), expires};
  Bytes key_copy(key.begin(), key.end());
  auto it = providers_.find(key_copy);
  if (it != providers_.end()) {
    for (auto& held : it->second) {
      if (held.id != id) continue;
      // A refresh: the entry exists already, its addresses are capped like any entry's.
      bytes_ = bytes_ - held.addrs.capacity() + entry.addrs.capacity();
      held.addrs = std::move(entry.addrs);
      held.expires = expires;
      earliest_expiry_ = std::min(earliest_expiry_, expires);
      return {};
    }
  }
  const auto growth = [&] {
    return entry_bytes(entry) + (it == providers_.end() ? key_bytes(key_copy) : 0);
  };
  const auto fits = [&] {
    return total_ < limits_.max_total && bytes_ + growth() <= limits_.max_bytes;
  };
  if (!fits()) {
    purge_if_due(now);
    it = providers_.find(key_copy);
    if (!fits()) return fail("provider store is full");
  }
  const std::size_t added = growth();
  if (it == providers_.end())
    it = providers_.emplace(std::move(key_copy), std::vector<Entry>{}).first;
  auto& list = it->second;
  if (list.size() >= limits_.max_per_key) {
    auto first_to_expire =
        std::min_element(list.begin(), list.end(),
                         [](const Entry& a, const Entry& b) { return a.expires < b.expires; });
    bytes_ -= entry_bytes(*first_to_expire);
    list.erase(first_to_expire);
    --total_;
  }
  list.push_back(std::move(entry));
  bytes_ += added;
  ++total_;
  earliest_expiry_ = std::min(earliest_expiry_, expires);
  return {};
}

ProviderStore::Map::iterator ProviderStore::drop_expired(Map::iterator it, TimePoint now) {
  auto& list = it->second;
  std::erase_if(list, [&](const Entry& entry) {
    if (entry.expires > now) return false;
    bytes_ -= entry_bytes(entry);
    --total_;
    return true;
  });
  if (!list.empty()) return std::next(it);
  bytes_ -= key_bytes(it->first);
  return providers_.erase(it);
}

std::vector<Provider> ProviderStore::get(ByteView key, TimePoint now) {
  const Bytes key_copy(key.begin(), key.end());
  auto it = providers_.find(key_copy);
  if (it == providers_.end()) return {};
  drop_expired(it, now);  // which may drop the key
  it = providers_.find(key_copy);
  if (it == providers_.end()) return {};
  std::vector<Provider> result;
  result.reserve(it->second.size());
  for (const auto& entry : it->second) {
    Provider provider{entry.id, {}, entry.expires};
    ByteView packed = entry.addrs;
    while (!packed.empty()) {
      auto length = read_varint(packed);
      if (!length || *length > packed.size()) break;
      auto addr = Multiaddr::from_bytes(packed.first(static_cast<std::size_t>(*length)));
      packed = packed.subspan(static_cast<std::size_t>(*length));
      if (addr) provider.addrs.push_back(std::move(*addr));
    }
    result.push_back(std::move(provider));
  }
  std::stable_sort(result.begin(), result.end(),
                   [](const Provider& a, const Provider& b) { return a.expires > b.expires; });
  return result;
}

void ProviderStore::expire(TimePoint now) {
  earliest_expiry_ = TimePoint::max();
  for (auto it = providers_.begin(); it != providers_.end();) {
    it = drop_expired(it, now);
  }
  for (const auto& [key, list] : providers_) {
    for (const auto& entry : list)
      earliest_expiry_ = std::min(earliest_expiry_, entry.expires);
  }
  last_purge_ = now;
}

void ProviderStore::purge_if_due(TimePoint now) {
  const bool none_expired = earliest_expiry_ > now;
  const bool purged_lately = now >= last_purge_ && now < last_purge_ + kMinPurgeInterval;
  if (none_expired || purged_lately) return;
  expire(now);
}

}  // namespace an::p2p::kad
