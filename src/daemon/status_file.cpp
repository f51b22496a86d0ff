#include "daemon/status_file.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>

namespace an::daemon {

std::string format_uptime(std::chrono::seconds uptime) {
  long long total = uptime.count() < 0 ? 0 : uptime.count();
  long long hours = total / 3600;
  long long minutes = (total % 3600) / 60;
  long long seconds = total % 60;
  char buffer[64];
  if (hours > 0) {
    std::snprintf(buffer, sizeof(buffer), "%lldh%lldm%llds", hours, minutes, seconds);
  } else if (minutes > 0) {
    std::snprintf(buffer, sizeof(buffer), "%lldm%llds", minutes, seconds);
  } else {
    std::snprintf(buffer, sizeof(buffer), "%llds", seconds);
  }
  return buffer;
}

std::string format_rfc3339(std::chrono::system_clock::time_point time) {
  // fmt::gmtime is the thread-safe gmtime of every platform (gmtime_r / gmtime_s).
  const std::tm utc = fmt::gmtime(std::chrono::system_clock::to_time_t(time));
  return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", utc);
}

namespace {

bool read_digits(std::string_view text, std::size_t& pos, std::size_t count, int& value) {
  if (pos + count > text.size()) return false;
  value = 0;
  for (std::size_t i = 0; i < count; ++i) {
    char c = text[pos + i];
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  pos += count;
  return true;
}

bool expect_char(std::string_view text, std::size_t& pos, char wanted) {
  if (pos >= text.size() || (text[pos] != wanted && !(wanted == 'T' && text[pos] == 't'))) {
    return false;
  }
  ++pos;
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
long long days_from_civil(int year, int month, int day) {
  year -= month <= 2 ? 1 : 0;
  const long long era = (year >= 0 ? year : year - 399) / 400;
  const long long year_of_era = year - era * 400;
  const long long day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  const long long day_of_era =
      year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + day_of_era - 719468;
}

}  // namespace

Expected<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text) {
  std::size_t pos = 0;
  int year, month, day, hour, minute, second;
  bool ok = read_digits(text, pos, 4, year) && expect_char(text, pos, '-') &&
            read_digits(text, pos, 2, month) && expect_char(text, pos, '-') &&
            read_digits(text, pos, 2, day) && expect_char(text, pos, 'T') &&
            read_digits(text, pos, 2, hour) && expect_char(text, pos, ':') &&
            read_digits(text, pos, 2, minute) && expect_char(text, pos, ':') &&
            read_digits(text, pos, 2, second);
  if (!ok || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 ||
      second > 60) {
    return fail("invalid RFC 3339 time \"" + std::string(text) + "\"");
  }
  long long nanos = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    long long scale = 100000000;
    std::size_t digits = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (digits < 9) nanos += (text[pos] - '0') * scale;
      scale /= 10;
      ++pos;
      ++digits;
    }
    if (digits == 0) return fail("invalid RFC 3339 time \"" + std::string(text) + "\"");
  }
  long long offset_seconds = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    int sign = text[pos] == '-' ? -1 : 1;
    ++pos;
    int offset_hours, offset_minutes;
    if (!read_digits(text, pos, 2, offset_hours) || !expect_char(text, pos, ':') ||
        !read_digits(text, pos, 2, offset_minutes)) {
      return fail("invalid RFC 3339 time \"" + std::string(text) + "\"");
    }
    offset_seconds = sign * (offset_hours * 3600LL + offset_minutes * 60LL);
  } else {
    return fail("invalid RFC 3339 time \"" + std::string(text) + "\" (no time zone)");
  }
  if (pos != text.size()) return fail("invalid RFC 3339 time \"" + std::string(text) + "\"");
  long long epoch_seconds = days_from_civil(year, month, day) * 86400LL + hour * 3600LL +
                            minute * 60LL + second - offset_seconds;
  auto since_epoch = std::chrono::seconds(epoch_seconds) + std::chrono::nanoseconds(nanos);
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(since_epoch));
}

nlohmann::ordered_json status_to_json(const NodeStatus& status,
                                      std::chrono::system_clock::time_point now) {
  nlohmann::ordered_json json;
  json["running"] = status.running;
  json["pid"] = status.pid;
  json["start_time"] = format_rfc3339(status.start_time);
  json["uptime"] =
      status.running
          ? format_uptime(std::chrono::duration_cast<std::chrono::seconds>(now - status.start_time))
          : "";
  json["node_id"] = status.node_id;
  json["version"] = status.version;
  json["role"] = status.role;
  json["listen_addrs"] = status.listen_addrs;
  json["peer_count"] = status.peer_count;
  json["peers"] = nlohmann::ordered_json::array();
  for (const auto& peer : status.peers) {
    json["peers"].push_back({{"peer_id", peer.peer_id},
                             {"address", peer.address},
                             {"direction", peer.direction},
                             {"agent_version", peer.agent_version}});
  }
  json["data_dir"] = status.data_dir;
  json["log_file"] = status.log_file;
  json["pid_file"] = status.pid_file;
  json["grpc"] = status.grpc;
  json["launch_args"] = status.launch_args;
  json["inbox"] = {{"messages", status.inbox_messages},
                   {"bytes", status.inbox_bytes},
                   {"refused", status.inbox_refused}};
  json["updated_at"] = format_rfc3339(status.updated_at);
  return json;
}

Expected<NodeStatus> status_from_json(const nlohmann::json& json) {
  if (!json.is_object()) return fail("status is not a JSON object");
  NodeStatus status;
  try {
    status.running = json.at("running").get<bool>();
    status.pid = json.at("pid").get<ProcessId>();
    auto start = parse_rfc3339(json.at("start_time").get<std::string>());
    if (!start) return tl::unexpected(start.error());
    status.start_time = *start;
    status.node_id = json.at("node_id").get<std::string>();
    status.version = json.at("version").get<std::string>();
    status.role = json.value("role", std::string());
    status.listen_addrs = json.at("listen_addrs").get<std::vector<std::string>>();
    status.peer_count = json.at("peer_count").get<std::uint64_t>();
    if (json.contains("peers")) {
      for (const auto& peer : json.at("peers")) {
        status.peers.push_back(PeerSummary{
            peer.value("peer_id", std::string()), peer.value("address", std::string()),
            peer.value("direction", std::string()), peer.value("agent_version", std::string())});
      }
    }
    status.data_dir = json.at("data_dir").get<std::string>();
    status.log_file = json.at("log_file").get<std::string>();
    status.pid_file = json.at("pid_file").get<std::string>();
    status.grpc = json.value("grpc", std::string());
    status.launch_args = json.value("launch_args", std::vector<std::string>());
    if (json.contains("inbox") && json.at("inbox").is_object()) {
      const auto& inbox = json.at("inbox");
      status.inbox_messages = inbox.value("messages", std::uint64_t{0});
      status.inbox_bytes = inbox.value("bytes", std::uint64_t{0});
      status.inbox_refused = inbox.value("refused", std::uint64_t{0});
    }
    if (json.contains("updated_at")) {
      auto updated = parse_rfc3339(json.at("updated_at").get<std::string>());
      if (!updated) return tl::unexpected(updated.error());
      status.updated_at = *updated;
    }
  } catch (const nlohmann::json::exception& e) {
    return fail(std::string("malformed status: ") + e.what());
  }
  return status;
}

Expected<void> write_status_file(const std::filesystem::path& path, const NodeStatus& status) {
  auto json = status_to_json(status, status.updated_at);
  return write_file_atomically(path, json.dump(2) + "\n", false, Durability::kNoFlush);
}

namespace {

Expected<std::string> read_small_file(const std::filesystem::path& path, std::size_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail_errno("cannot read " + path.string());
  std::string content;
  content.resize(limit + 1);
  in.read(content.data(), static_cast<std::streamsize>(content.size()));
  content.resize(static_cast<std::size_t>(in.gcount()));
  if (content.size() > limit) return fail(path.string() + " is too large");
  return content;
}

}  // namespace

Expected<NodeStatus> read_status_file(const std::filesystem::path& path) {
  auto content = read_small_file(path, 1 << 20);
  if (!content) return tl::unexpected(content.error());
  auto json = nlohmann::json::parse(*content, nullptr, false);
  if (json.is_discarded()) return fail(path.string() + " is not valid JSON");
  auto status = status_from_json(json);
  if (!status) return fail(path.string() + ": " + status.error().message);
  return status;
}

Expected<void> write_pid_file(const std::filesystem::path& path, ProcessId pid) {
  return write_file_atomically(path, std::to_string(pid) + "\n", false);
}

Expected<std::optional<ProcessId>> read_pid_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::optional<ProcessId>{};
  auto content = read_small_file(path, 64);
  if (!content) return tl::unexpected(content.error());
  std::string text = *content;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  if (text.empty() || text.size() > 19 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    return fail(path.string() + " does not hold a process ID");
  }
  ProcessId pid = std::stoll(text);
  if (pid <= 0) return fail(path.string() + " does not hold a process ID");
  return std::optional<ProcessId>(pid);
}

}  // namespace an::daemon
