// DHT record validators (/pk, /ipns), their registry, bounded record/provider stores; no I/O, time
// passed in. Validators: any thread. A store: one thread; owns its entries, borrows its validator.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "p2p/crypto/key.h"
#include "p2p/crypto/peer_id.h"
#include "p2p/multiformats/multiaddr.h"
#include "p2p/multiformats/varint.h"
#include "util/expected.h"

namespace an::p2p::kad {

// Wall-clock time: IPNS validity is an RFC 3339 date, and go keeps timeReceived the same way.
using TimePoint = std::chrono::system_clock::time_point;

// RFC 3339 with nanoseconds and trailing zeros trimmed, UTC ("2123-04-12T13:44:59.801728Z"), as
// Go's time.RFC3339Nano writes it (go-ipfs-util FormatRFC3339).
std::string format_rfc3339(TimePoint time);
// RFC 3339 as Go's time.RFC3339Nano parses it: "Z" or a "+hh:mm" offset, optional fraction of
// 1..9 digits. Years 1970..9999 only (what fits a system_clock time point everywhere).
Expected<TimePoint> parse_rfc3339(std::string_view text);

// Splits "/namespace/rest" as go-libp2p-record's SplitKey does; an error for anything else.
struct SplitKey {
  std::string_view name_space;
  ByteView rest;
};
Expected<SplitKey> split_key(ByteView key);

class Validator {
 public:
  virtual ~Validator() = default;
  // An error (for people and logs) when the value is not acceptable for the key at `now`.
  virtual Expected<void> validate(ByteView key, ByteView value, TimePoint now) const = 0;
  // The index of the best of `values`, all for `key`; ties keep the earlier index. An error for
  // an empty list or a value that does not parse (callers validate before selecting).
  virtual Expected<std::size_t> select(ByteView key, std::span<const ByteView> values) const = 0;
};

// "/pk/" + peer ID multihash bytes -> the PublicKey protobuf whose peer ID that is. Any valid key
// is as good as another: select picks the first. Only Ed25519 keys are supported so far; RSA,
// secp256k1 and ECDSA keys are refused ("key type RSA is not supported yet").
class PublicKeyValidator final : public Validator {
 public:
  Expected<void> validate(ByteView key, ByteView value, TimePoint now) const override;
  Expected<std::size_t> select(ByteView key, std::span<const ByteView> values) const override;
};

// IPNS record limits and defaults (boxo/ipns).
inline constexpr std::size_t kMaxIpnsRecordSize = 10 * 1024;  // MaxRecordSize
inline constexpr std::string_view kIpnsSignaturePrefix = "ipns-signature:";
inline constexpr std::uint64_t kIpnsValidityEol = 0;  // the only validity type

// The fields of an IPNS record that matter here, from its protobuf and its DAG-CBOR `data`.
struct IpnsRecord {
  Bytes value;           // the content path, e.g. "/ipfs/bafy..."
  std::string validity;  // RFC 3339 EOL text
  TimePoint eol;         // validity, parsed
  std::uint64_t sequence = 0;
  std::uint64_t ttl_ns = 0;
  bool has_signature_v2 = false;
  std::optional<Bytes> public_key;  // protobuf field 7, when embedded
};

// Parses the protobuf and its CBOR data; checks structure only (no signature, no time). The
// record must have `data`; CBOR Value/Validity must be bytes, the others unsigned integers.
Expected<IpnsRecord> parse_ipns_record(ByteView record);

// A V2-only record (IPIP-428: no V1 fields) signed with `key`; the public key is not embedded,
// since an Ed25519 peer ID holds it. For tests and for publishing our own names.
Expected<Bytes> make_ipns_record(const PrivateKey& key, std::string_view value,
                                 std::uint64_t sequence, TimePoint eol, std::uint64_t ttl_ns);

// "/ipns/" + peer ID multihash bytes -> an IPNS record (boxo/ipns Validator): at most 10 KiB,
// signatureV2 over "ipns-signature:" + data by the name's key (embedded in the record, or
// inlined in an Ed25519 peer ID), V1 protobuf fields equal to the CBOR ones when present, EOL
// validity not before `now`. Select: a V2 signature, then higher sequence, then later EOL, then
// the bytewise larger record.
class IpnsValidator final : public Validator {
 public:
  Expected<void> validate(ByteView key, ByteView value, TimePoint now) const override;
  Expected<std::size_t> select(ByteView key, std::span<const ByteView> values) const override;
};

// Dispatches on the key's namespace; keys of an unregistered namespace are refused.
class NamespacedValidator final : public Validator {
 public:
  // A registry with "pk" and "ipns".
  static NamespacedValidator with_defaults();

  void add(std::string name_space, std::unique_ptr<Validator> validator);
  bool has(std::string_view name_space) const;

  Expected<void> validate(ByteView key, ByteView value, TimePoint now) const override;
  Expected<std::size_t> select(ByteView key, std::span<const ByteView> values) const override;
  // The validator of the key's namespace; an error naming the namespace when none is registered.
  Expected<const Validator*> lookup(ByteView key) const;

 private:
  std::map<std::string, std::unique_ptr<Validator>, std::less<>> validators_;
};

// go-libp2p-kad-dht MaxRecordAge (and js-libp2p MAX_RECORD_AGE): a stored record is dropped this
// long after it was received, whatever validity it claims; publishers republish before that.
inline constexpr std::chrono::hours kMaxRecordAge{36};
// Our bounds (go and js bound records only by the 4 MiB message and the datastore).
// 16 MiB holds 16K /pk records or 1,600 maximal IPNS records in memory; go keeps records in its
// datastore on disk, where more fit.
inline constexpr std::size_t kDefaultMaxRecords = 16 * 1024;
inline constexpr std::size_t kDefaultMaxRecordBytes = 16 * 1024 * 1024;
inline constexpr std::size_t kMaxRecordKeySize = 1024;
// Above the largest record we validate (IPNS, 10 KiB) with room for other namespaces of ours.
inline constexpr std::size_t kMaxRecordValueSize = 64 * 1024;

// A full store that refused one entry refuses the next ones without looking again for this long:
// the scan for expired entries is linear in the store, and a flood of refused entries must not
// pay it each time.
inline constexpr std::chrono::seconds kMinPurgeInterval{1};

struct RecordStoreLimits {
  std::size_t max_records = kDefaultMaxRecords;
  std::size_t max_bytes = kDefaultMaxRecordBytes;  // keys plus values
  std::chrono::seconds max_age = kMaxRecordAge;
};

struct StoredRecord {
  Bytes value;
  TimePoint received;
};

// One record per key: the best by the validator's select. Full means full: a new key is refused
// (after expired records are purged) rather than evicting another key's record, so that a flood
// of cheap records cannot push out the ones already held. Refusing is cheap: the store purges
// only when some record may have expired, and at most once per kMinPurgeInterval.
class RecordStore {
 public:
  explicit RecordStore(const Validator& validator, RecordStoreLimits limits = {})
      : validator_(validator), limits_(limits) {}

  // Validates the record and stores it unless the stored one is better ("older than the stored
  // record"). Storing the same or a better record for a key replaces it and restarts its age.
  Expected<void> put(ByteView key, ByteView value, TimePoint now);
  // The stored record when younger than max_age and still valid at `now`; otherwise nullopt
  // (and the record is dropped).
  std::optional<StoredRecord> get(ByteView key, TimePoint now);
  // Drops every record older than max_age.
  void expire(TimePoint now);

  std::size_t size() const { return records_.size(); }
  std::size_t bytes() const { return bytes_; }

 private:
  bool too_old(const StoredRecord& record, TimePoint now) const;
  void erase(std::map<Bytes, StoredRecord>::iterator it);
  // expire(), when a record may have expired and the last purge is kMinPurgeInterval ago.
  void purge_if_due(TimePoint now);

  const Validator& validator_;
  RecordStoreLimits limits_;
  std::map<Bytes, StoredRecord> records_;
  std::size_t bytes_ = 0;
  // No record was received before this (a lower bound, exact after each purge).
  TimePoint oldest_received_ = TimePoint::max();
  TimePoint last_purge_ = TimePoint::min();
};

// js-libp2p kad-dht PROVIDERS_VALIDITY and go-libp2p-kad-dht's amino.DefaultProvideValidity.
inline constexpr std::chrono::hours kProviderValidity{48};
// Our bounds.
inline constexpr std::size_t kDefaultMaxProvidersPerKey = 64;
inline constexpr std::size_t kDefaultMaxProviders = 64 * 1024;
// About 350 bytes per provider of a key of its own with 16 IPv4 addresses: 64K of them fit.
inline constexpr std::size_t kDefaultMaxProviderBytes = 24 * 1024 * 1024;
inline constexpr std::size_t kMaxProviderKeySize = 256;  // a multihash or CID, with room
inline constexpr std::size_t kMaxProviderAddrs = 16;
// The binary addresses of one provider, in all; those past it are dropped.
inline constexpr std::size_t kMaxProviderAddrBytes = 1024;

struct ProviderStoreLimits {
  std::size_t max_per_key = kDefaultMaxProvidersPerKey;
  std::size_t max_total = kDefaultMaxProviders;
  std::size_t max_bytes = kDefaultMaxProviderBytes;  // as footprint() counts them
  std::chrono::seconds validity = kProviderValidity;
};

struct Provider {
  PeerId id;
  std::vector<Multiaddr> addrs;
  TimePoint expires;
};

// key -> providers, each expiring `validity` after its last add. Addresses are kept in their
// binary form, one buffer per provider: a flood of providers costs what it sends, not the
// allocations of parsed addresses. Full stores refuse cheaply, as RecordStore does.
class ProviderStore {
 public:
  explicit ProviderStore(ProviderStoreLimits limits = {}) : limits_(limits) {}

  // Adds the provider or refreshes it (new addresses, new expiry; addresses beyond
  // kMaxProviderAddrs or kMaxProviderAddrBytes are dropped). A key already at max_per_key loses
  // the provider that expires first; when max_total or max_bytes is reached (after purging
  // expired ones) a new provider is refused.
  Expected<void> add(ByteView key, const PeerId& id, const std::vector<Multiaddr>& addrs,
                     TimePoint now);
  // The unexpired providers of `key`, soonest to expire last.
  std::vector<Provider> get(ByteView key, TimePoint now);
  void expire(TimePoint now);

  std::size_t size() const { return total_; }
  std::size_t key_count() const { return providers_.size(); }
  // The heap the store holds, estimated: keys, IDs and addresses plus each entry's containers.
  std::size_t bytes() const { return bytes_; }
  // What adding a provider with these addresses under a new key would add to bytes() at most.
  static std::size_t footprint(std::size_t key_size, const PeerId& id,
                               const std::vector<Multiaddr>& addrs);

 private:
  struct Entry {
    PeerId id;
    Bytes addrs;  // <varint length><multiaddr bytes>, repeated
    TimePoint expires;
  };
  using Map = std::map<Bytes, std::vector<Entry>>;

  static Bytes pack(const std::vector<Multiaddr>& addrs);
  static std::size_t entry_bytes(const Entry& entry);
  static std::size_t key_bytes(const Bytes& key);
  // Drops the expired entries of one key; the key itself when none is left.
  Map::iterator drop_expired(Map::iterator it, TimePoint now);
  void purge_if_due(TimePoint now);

  ProviderStoreLimits limits_;
  Map providers_;
  std::size_t total_ = 0;
  std::size_t bytes_ = 0;
  // No provider expires before this (a lower bound, exact after each purge).
  TimePoint earliest_expiry_ = TimePoint::max();
  TimePoint last_purge_ = TimePoint::min();
};

}  // namespace an::p2p::kad
