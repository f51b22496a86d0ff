#include "p2p/daan/broadcast.h"

#include <cstdint>

#include "p2p/crypto/peer_id.h"
#include "p2p/daan/json.h"

namespace an::p2p::daan {
namespace {

void append_text(Bytes& out, std::string_view text) {
  out.insert(out.end(), text.begin(), text.end());
}

bool is_leap_year(int year) {
  return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

int days_in_month(int month, int year) {
  constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month == 2 && is_leap_year(year)) return 29;
  return kDays[month - 1];
}

// Go's parseRFC3339 (time/format_rfc3339.go), the parser time.Time.UnmarshalJSON uses:
// "2006-01-02T15:04:05", an optional '.' and digits, then "Z" or "±hh:mm", each two-digit field
// within its range (hour 0..23, second 0..59, the day within its month). Go's fallback to
// time.Parse then refuses what this refuses (parseStrictRFC3339).
bool is_go_rfc3339(std::string_view text) {
  bool ok = true;
  auto number = [&](std::size_t at, std::size_t length, int min, int max) {
    int value = 0;
    for (std::size_t i = at; i < at + length; ++i) {
      if (text[i] < '0' || text[i] > '9') {
        ok = false;
        return min;
      }
      value = value * 10 + (text[i] - '0');
    }
    if (value < min || value > max) {
      ok = false;
      return min;
    }
    return value;
  };
  constexpr std::size_t kDateTimeLength = 19;  // "2006-01-02T15:04:05"
  if (text.size() < kDateTimeLength) return false;
  const int year = number(0, 4, 0, 9999);
  const int month = number(5, 2, 1, 12);
  number(8, 2, 1, days_in_month(month, year));
  number(11, 2, 0, 23);
  number(14, 2, 0, 59);
  number(17, 2, 0, 59);
  if (!ok || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' ||
      text[16] != ':') {
    return false;
  }
  std::string_view rest = text.substr(kDateTimeLength);
  auto is_digit = [&](std::size_t i) { return rest[i] >= '0' && rest[i] <= '9'; };
  if (rest.size() >= 2 && rest[0] == '.' && is_digit(1)) {
    std::size_t end = 2;
    while (end < rest.size() && is_digit(end))
      ++end;
    rest = rest.substr(end);
  }
  if (rest == "Z") return true;
  if (rest.size() != 6 || (rest[0] != '+' && rest[0] != '-') || rest[3] != ':') return false;
  const std::size_t offset = text.size() - rest.size();
  number(offset + 1, 2, 0, 23);
  number(offset + 4, 2, 0, 59);
  return ok;
}

enum class Field { kNone, kTopic, kSender, kTimestamp, kPayload };

Field field_of(std::string_view key) {
  const std::string folded = json::fold_key(key);
  if (folded == "topic") return Field::kTopic;
  if (folded == "sender") return Field::kSender;
  if (folded == "timestamp") return Field::kTimestamp;
  if (folded == "payload") return Field::kPayload;
  return Field::kNone;
}

class EnvelopeParser {
 public:
  explicit EnvelopeParser(ByteView json) : reader_(json, "broadcast envelope") {}

  Expected<BroadcastEnvelope> parse() {
    envelope_.timestamp = std::string(kGoZeroTime);
    // `null` leaves the struct as it is, as in Go: every field zero.
    auto parsed =
        reader_.read_document([this](const std::string& key) { return store(field_of(key)); });
    if (!parsed) return tl::unexpected(parsed.error());
    return std::move(envelope_);
  }

 private:
  Expected<void> store(Field field) {
    switch (field) {
      case Field::kTopic:
        return store_topic();
      case Field::kSender:
        return store_sender();
      case Field::kTimestamp:
        return store_timestamp();
      case Field::kPayload:
        return reader_.read_bytes("payload", 1, envelope_.payload);
      case Field::kNone:
        break;
    }
    return reader_.skip_value(1);
  }

  // A non-string value is still scanned, so that a syntax error further in is the error.
  Expected<void> not_a_string(std::string_view field) {
    if (auto skipped = reader_.skip_value(1); !skipped) return skipped;
    return reader_.field_error(field, "is not a string");
  }

  Expected<void> store_topic() {
    if (reader_.peek() == '"') {
      auto topic = reader_.read_string();
      if (!topic) return tl::unexpected(topic.error());
      envelope_.topic = std::move(*topic);
      return {};
    }
    if (reader_.take_literal("null")) return {};  // Go leaves a string as it is
    return not_a_string("topic");
  }

  // peer.ID's UnmarshalJSON: json.Unmarshal into a string (null leaves it empty), then
  // peer.Decode, which refuses "".
  Expected<void> store_sender() {
    std::string text;
    if (reader_.peek() == '"') {
      auto decoded = reader_.read_string();
      if (!decoded) return tl::unexpected(decoded.error());
      text = std::move(*decoded);
    } else if (!reader_.take_literal("null")) {
      return not_a_string("sender");
    }
    auto peer = PeerId::parse(text);
    if (!peer) return reader_.field_error("sender", "is not a peer ID: " + peer.error().message);
    envelope_.sender = peer->to_base58();
    return {};
  }

  // time.Time's UnmarshalJSON: null leaves the time as it is; otherwise the raw bytes between
  // the quotes, escapes not decoded, must be RFC 3339.
  Expected<void> store_timestamp() {
    if (reader_.take_literal("null")) return {};
    if (reader_.peek() != '"') return not_a_string("timestamp");
    auto span = reader_.scan_string();
    if (!span) return tl::unexpected(span.error());
    const ByteView raw = reader_.raw(*span);
    const std::string text(raw.begin(), raw.end());
    if (!is_go_rfc3339(text)) return reader_.field_error("timestamp", "is not an RFC 3339 time");
    envelope_.timestamp = text;
    return {};
  }

  json::Reader reader_;
  BroadcastEnvelope envelope_;
};

struct CivilDate {
  std::int64_t year;
  unsigned month;
  unsigned day;
};

// The proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's civil_from_days).
CivilDate civil_from_days(std::int64_t days) {
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const auto day_of_era = static_cast<std::uint64_t>(days - era * 146097);
  const std::uint64_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const std::uint64_t day_of_year =
      day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const std::uint64_t shifted_month = (5 * day_of_year + 2) / 153;
  const auto day = static_cast<unsigned>(day_of_year - (153 * shifted_month + 2) / 5 + 1);
  const auto month =
      static_cast<unsigned>(shifted_month < 10 ? shifted_month + 3 : shifted_month - 9);
  const std::int64_t year = static_cast<std::int64_t>(year_of_era) + era * 400 + (month <= 2);
  return {year, month, day};
}

void append_padded(std::string& out, std::int64_t value, int width) {
  std::string digits = std::to_string(value);
  if (digits.size() < static_cast<std::size_t>(width)) {
    out.append(static_cast<std::size_t>(width) - digits.size(), '0');
  }
  out += digits;
}

}  // namespace

Bytes encode_broadcast(const BroadcastEnvelope& envelope) {
  Bytes out;
  out.reserve(64 + envelope.topic.size() + envelope.sender.size() + envelope.timestamp.size() +
              json::base64_size(envelope.payload.size()));
  append_text(out, R"({"topic":)");
  json::append_string(out, envelope.topic);
  append_text(out, R"(,"sender":)");
  json::append_string(out, envelope.sender);
  append_text(out, R"(,"timestamp":)");
  json::append_string(out, envelope.timestamp);
  append_text(out, R"(,"payload":)");
  if (envelope.payload.empty()) {
    append_text(out, "null");
  } else {
    out.push_back('"');
    json::append_base64(out, envelope.payload);
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

Expected<BroadcastEnvelope> decode_broadcast(ByteView json) {
  if (json.size() > kMaxBroadcastSize) {
    return fail("broadcast envelope of " + std::to_string(json.size()) +
                " bytes is over the limit of " + std::to_string(kMaxBroadcastSize));
  }
  return EnvelopeParser(json).parse();
}

std::string go_rfc3339_nano(std::chrono::system_clock::time_point time) {
  using std::chrono::nanoseconds;
  constexpr std::int64_t kNanosPerSecond = 1'000'000'000;
  constexpr std::int64_t kSecondsPerDay = 86'400;
  const std::int64_t since_epoch = std::chrono::floor<nanoseconds>(time.time_since_epoch()).count();
  auto floor_div = [](std::int64_t value, std::int64_t divisor) {
    return value / divisor - (value % divisor < 0 ? 1 : 0);
  };
  const std::int64_t seconds = floor_div(since_epoch, kNanosPerSecond);
  const std::int64_t nanos = since_epoch - seconds * kNanosPerSecond;
  const std::int64_t days = floor_div(seconds, kSecondsPerDay);
  const std::int64_t second_of_day = seconds - days * kSecondsPerDay;
  const CivilDate date = civil_from_days(days);

  std::string out;
  append_padded(out, date.year, 4);
  out += '-';
  append_padded(out, date.month, 2);
  out += '-';
  append_padded(out, date.day, 2);
  out += 'T';
  append_padded(out, second_of_day / 3600, 2);
  out += ':';
  append_padded(out, second_of_day / 60 % 60, 2);
  out += ':';
  append_padded(out, second_of_day % 60, 2);
  if (nanos != 0) {
    std::string fraction;
    append_padded(fraction, nanos, 9);
    fraction.erase(fraction.find_last_not_of('0') + 1);
    out += '.';
    out += fraction;
  }
  out += 'Z';
  return out;
}

}  // namespace an::p2p::daan
