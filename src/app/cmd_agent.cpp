// send, request, inbox, advertise and discover: the agents' commands, through the running
// node's Agent API (proto/agentnetwork/v1/agent.proto).
#include <atomic>
#include <csignal>
#include <cstdio>
#include <ctime>

#include "app/api_support.h"
#include "app/cli.h"
#include "app/commands.h"

namespace an::app {
namespace {

// The node's own caps plus a margin, so that its answer (not our deadline) ends the call.
constexpr std::chrono::milliseconds kSendTimeout{45'000};
constexpr std::chrono::milliseconds kDialMargin{35'000};
constexpr std::chrono::milliseconds kDiscoveryTimeout{65'000};
constexpr int kMaxRequestTimeoutSeconds = 30;
constexpr std::uint32_t kDefaultInboxCount = 100;
constexpr std::uint32_t kMaxInboxCount = 1000;
// A follow (-f) runs until interrupted; gRPC needs a deadline, so a far one.
constexpr std::chrono::milliseconds kFollowTimeout{std::chrono::hours(24 * 365)};

std::atomic<bool> g_follow_interrupted{false};

extern "C" void on_follow_interrupt(int) {
  g_follow_interrupted.store(true);
}

std::string format_time(std::int64_t unix_ms) {
  const std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  // Sized for any int the fields may hold, so that GCC can prove nothing is cut.
  char buffer[96];
  std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(unix_ms % 1000));
  return buffer;
}

// The PEER argument as the node takes it: a peer ID or a multiaddr with /p2p/.
std::optional<std::string> read_peer(const ParsedArgs& parsed, int& exit_code) {
  if (parsed.positionals.empty()) {
    print_error("a PEER (peer ID or multiaddr with /p2p/) is required");
    exit_code = kExitUsage;
    return std::nullopt;
  }
  auto peer = parse_peer_argument(parsed.positionals[0], true);
  if (!peer) {
    print_error(peer.error().message);
    exit_code = kExitUsage;
    return std::nullopt;
  }
  return peer->multiaddr ? *peer->multiaddr : peer->peer_id;
}

nlohmann::ordered_json message_to_json(const rpc::v1::InboxMessage& message) {
  nlohmann::ordered_json json;
  json["id"] = message.id();
  json["from"] = message.from();
  json["received_at"] = format_time(message.received_at_unix_ms());
  json["received_at_unix_ms"] = message.received_at_unix_ms();
  if (is_valid_utf8(message.payload())) {
    json["payload"] = message.payload();
    json["payload_encoding"] = "utf-8";
  } else {
    json["payload"] = base64(message.payload());
    json["payload_encoding"] = "base64";
  }
  return json;
}

void print_message_text(const rpc::v1::InboxMessage& message) {
  const auto& payload = message.payload();
  std::printf("#%lld  %s  %s  ", static_cast<long long>(message.id()),
              format_time(message.received_at_unix_ms()).c_str(), message.from().c_str());
  if (is_valid_utf8(payload)) {
    std::fwrite(payload.data(), 1, payload.size(), stdout);
    if (payload.empty() || payload.back() != '\n') std::fputc('\n', stdout);
  } else {
    std::printf("(binary, %zu bytes) base64:%s\n", payload.size(), base64(payload).c_str());
  }
}

}  // namespace

int command_send(const Words& words) {
  int exit_code = kExitOk;
  auto parsed = parse_or_report("send", words, exit_code);
  if (!parsed) return exit_code;
  auto peer = read_peer(*parsed, exit_code);
  if (!peer) return exit_code;
  auto payload = read_payload("send", *parsed, "PEER", exit_code);
  if (!payload) return exit_code;
  auto client = open_client(*parsed, exit_code);
  if (!client) return exit_code;
  const auto size = payload->size();
  auto sent = client->send_message(*peer, std::move(*payload), kSendTimeout);
  if (!sent) return report(sent.error());
  std::printf("sent %zu bytes to %s\n", size, sent->peer_id().c_str());
  return kExitOk;
}

int command_request(const Words& words) {
  int exit_code = kExitOk;
  auto parsed = parse_or_report("request", words, exit_code);
  if (!parsed) return exit_code;
  auto peer = read_peer(*parsed, exit_code);
  if (!peer) return exit_code;
  auto seconds = read_count(*parsed, "timeout", kMaxRequestTimeoutSeconds,
                            kMaxRequestTimeoutSeconds, exit_code);
  if (!seconds) return exit_code;
  auto payload = read_payload("request", *parsed, "PEER", exit_code);
  if (!payload) return exit_code;
  auto client = open_client(*parsed, exit_code);
  if (!client) return exit_code;
  const std::chrono::milliseconds request_timeout = std::chrono::seconds(*seconds);
  auto answer = client->send_request(*peer, std::move(*payload), request_timeout,
                                     request_timeout + kDialMargin);
  if (!answer) return report(answer.error());
  const auto& text = answer->payload();
  if (answer->error()) {
    print_error("the peer answered with an error: " + text);
    return kExitFailure;
  }
  std::fwrite(text.data(), 1, text.size(), stdout);
  if (!text.empty() && text.back() != '\n' && is_valid_utf8(text)) std::fputc('\n', stdout);
  return kExitOk;
}

int command_inbox(const Words& words) {
  int exit_code = kExitOk;
  auto parsed = parse_or_report("inbox", words, exit_code);
  if (!parsed) return exit_code;
  auto count = read_count(*parsed, "n", kDefaultInboxCount, kMaxInboxCount, exit_code);
  if (!count) return exit_code;
  const bool json = parsed->has("json");
  const bool follow = parsed->has("f");
  const bool take = parsed->has("take");
  auto client = open_client(*parsed, exit_code);
  if (!client) return exit_code;

  auto take_message = [&](std::int64_t id) -> Expected<void> {
    auto removed = client->ack_messages({id});
    if (!removed) return tl::unexpected(removed.error());
    return {};
  };

  if (follow) {
    // JSON Lines while following: one object per message as it arrives.
    std::signal(SIGINT, on_follow_interrupt);
    std::signal(SIGTERM, on_follow_interrupt);
    Error failure;
    bool failed = false;
    auto received = client->receive_messages(
        0,
        [&](const rpc::v1::InboxMessage& message) {
          if (g_follow_interrupted.load()) return false;
          if (json) {
            std::printf("%s\n", message_to_json(message).dump().c_str());
          } else {
            print_message_text(message);
          }
          std::fflush(stdout);
          if (take) {
            if (auto taken = take_message(message.id()); !taken) {
              failure = taken.error();
              failed = true;
              return false;
            }
          }
          return !g_follow_interrupted.load();
        },
        kFollowTimeout);
    if (failed) return report(failure);
    if (!received && !g_follow_interrupted.load()) return report(received.error());
    return kExitOk;
  }

  auto listed = client->list_inbox(0, *count);
  if (!listed) return report(listed.error());
  if (json) {
    auto array = nlohmann::ordered_json::array();
    for (const auto& message : listed->messages())
      array.push_back(message_to_json(message));
    print_json(array);
  } else {
    for (const auto& message : listed->messages())
      print_message_text(message);
    std::printf("(%zu shown; %llu in the inbox, %llu bytes; %llu refused since start)\n",
                static_cast<std::size_t>(listed->messages_size()),
                static_cast<unsigned long long>(listed->total_messages()),
                static_cast<unsigned long long>(listed->total_bytes()),
                static_cast<unsigned long long>(listed->refused()));
  }
  if (take && listed->messages_size() > 0) {
    std::vector<std::int64_t> ids;
    for (const auto& message : listed->messages())
      ids.push_back(message.id());
    auto removed = client->ack_messages(ids);
    if (!removed) return report(removed.error());
  }
  return kExitOk;
}

int command_advertise(const Words& words) {
  int exit_code = kExitOk;
  auto parsed = parse_or_report("advertise", words, exit_code);
  if (!parsed) return exit_code;
  auto name = single_positional("advertise", *parsed, "a NAMESPACE", exit_code);
  if (!name) return exit_code;
  auto client = open_client(*parsed, exit_code);
  if (!client) return exit_code;
  auto advertised = client->advertise(*name, kDiscoveryTimeout);
  if (!advertised) return report(advertised.error());
  std::printf(
      "advertising %s (taken by %u DHT peers); the node keeps advertising it until it "
      "stops\n",
      name->c_str(), advertised->peers());
  return kExitOk;
}

int command_discover(const Words& words) {
  int exit_code = kExitOk;
  auto parsed = parse_or_report("discover", words, exit_code);
  if (!parsed) return exit_code;
  auto name = single_positional("discover", *parsed, "a NAMESPACE", exit_code);
  if (!name) return exit_code;
  auto count = read_count(*parsed, "n", 20, 100, exit_code);
  if (!count) return exit_code;
  auto client = open_client(*parsed, exit_code);
  if (!client) return exit_code;
  auto found = client->discover(*name, *count, kDiscoveryTimeout);
  if (!found) return report(found.error());
  if (parsed->has("json")) {
    auto array = nlohmann::ordered_json::array();
    for (const auto& peer : found->peers()) {
      nlohmann::ordered_json json;
      json["peer_id"] = peer.peer_id();
      json["addresses"] =
          std::vector<std::string>(peer.addresses().begin(), peer.addresses().end());
      array.push_back(std::move(json));
    }
    print_json(array);
    return kExitOk;
  }
  if (found->peers().empty()) {
    std::printf("no peer provides %s\n", name->c_str());
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& peer : found->peers()) {
    std::string addresses;
    for (const auto& address : peer.addresses())
      addresses += (addresses.empty() ? "" : " ") + address;
    rows.push_back({peer.peer_id(), addresses.empty() ? "(none known)" : addresses});
  }
  print_table({"PEER", "ADDRESSES"}, rows);
  return kExitOk;
}

}  // namespace an::app
