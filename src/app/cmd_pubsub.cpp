// pub, sub and topics: broadcast between agents on gossipsub topics, through the running node's
// PubSub API (proto/agentnetwork/v1/pubsub.proto).
#include <cstdio>
#include <string_view>

#include "app/api_support.h"
#include "app/cli.h"
#include "app/commands.h"
#include "p2p/pubsub/rpc.h"
#include "util/bytes.h"

namespace an::app {
namespace {

// `sub` runs until interrupted or -n is reached; gRPC needs a deadline, so a far one.
constexpr std::chrono::milliseconds kSubscribeTimeout{std::chrono::hours(24 * 365)};
constexpr std::uint32_t kMaxSubscribeCount = 1'000'000'000;

std::string hex_of(std::string_view bytes) {
  return to_hex(ByteView(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

// The TOPIC argument, checked as the node checks it so that a bad one costs no call.
std::optional<std::string> read_topic(const std::string& command, const ParsedArgs& parsed,
                                      int& exit_code) {
  if (parsed.positionals.empty()) {
    print_error(command + " needs a TOPIC");
    exit_code = kExitUsage;
    return std::nullopt;
  }
  const auto& topic = parsed.positionals[0];
  if (topic.empty()) {
    print_error("the topic is empty");
    exit_code = kExitUsage;
    return std::nullopt;
  }
  if (topic.size() > p2p::pubsub::kMaxTopicLength) {
    print_error("the topic is " + std::to_string(topic.size()) + " bytes, over the limit of " +
                std::to_string(p2p::pubsub::kMaxTopicLength));
    exit_code = kExitUsage;
    return std::nullopt;
  }
  return topic;
}

// Text a terminal shows on one line: valid UTF-8 without control characters but tab. One
// trailing newline (as `echo` leaves) does not count; it is not printed.
std::optional<std::string_view> printable_text(std::string_view data) {
  if (!data.empty() && data.back() == '\n') data.remove_suffix(1);
  if (!is_valid_utf8(data)) return std::nullopt;
  for (const char c : data) {
    const auto byte = static_cast<unsigned char>(c);
    if ((byte < 0x20 && c != '\t') || byte == 0x7F) return std::nullopt;
  }
  return data;
}

nlohmann::ordered_json message_to_json(const rpc::v1::PubSubMessage& message) {
  nlohmann::ordered_json json;
  json["from"] = message.from();
  json["topic"] = message.topic();
  if (is_valid_utf8(message.data())) {
    json["data"] = message.data();
    json["data_encoding"] = "utf-8";
  } else {
    json["data"] = base64(message.data());
    json["data_encoding"] = "base64";
  }
  json["seqno"] = hex_of(message.seqno());
  json["id"] = hex_of(message.id());
  json["received_from"] = message.received_from();
  json["sender"] = message.sender();
  json["timestamp"] = message.timestamp();
  json["envelope_malformed"] = message.envelope_malformed();
  json["dropped"] = message.dropped();
  return json;
}

void print_message_text(const rpc::v1::PubSubMessage& message) {
  std::string who = message.from();
  if (!message.sender().empty() && message.sender() != message.from()) {
    who += " (sender " + message.sender() + ")";
  }
  if (message.envelope_malformed()) who += " (not an envelope)";
  if (auto text = printable_text(message.data())) {
    std::printf("%s  %.*s\n", who.c_str(), static_cast<int>(text->size()), text->data());
  } else {
    std::printf("%s  (binary, %zu bytes) base64:%s\n", who.c_str(), message.data().size(),
                base64(message.data()).c_str());
  }
}

}  // namespace

int command_pub(const Words& words) {
  int exit_code = kExitOk;
  auto parsed = parse_or_report("pub", words, exit_code);
  if (!parsed) return exit_code;
  auto topic = read_topic("pub", *parsed, exit_code);
  if (!topic) return exit_code;
  auto data = read_payload("pub", *parsed, "TOPIC", exit_code);
  if (!data) return exit_code;
  // The envelope only adds to this; the node says when the wrapped message is too large.
  if (data->size() > p2p::pubsub::kMaxDataSize) {
    print_error("the message is " + std::to_string(data->size()) + " bytes, over the limit of " +
                std::to_string(p2p::pubsub::kMaxDataSize) + " bytes");
    return kExitUsage;
  }
  const bool raw = parsed->has("raw");
  auto client = open_client(*parsed, exit_code);
  if (!client) return exit_code;
  const auto size = data->size();
  auto published = client->publish(*topic, std::move(*data), raw);
  if (!published) return report(published.error());
  std::printf("published %zu bytes to %s (message ID %s)\n", size, topic->c_str(),
              hex_of(published->id()).c_str());
  if (published->topic_peers() == 0) {
    std::fprintf(stderr, "note: no peer is known to be subscribed to %s\n", topic->c_str());
  }
  return kExitOk;
}

int command_sub(const Words& words) {
  int exit_code = kExitOk;
  auto parsed = parse_or_report("sub", words, exit_code);
  if (!parsed) return exit_code;
  auto topic = read_topic("sub", *parsed, exit_code);
  if (!topic) return exit_code;
  auto limit = read_count(*parsed, "n", 0, kMaxSubscribeCount, exit_code);
  if (!limit) return exit_code;
  const bool json = parsed->has("json");
  const bool raw = parsed->has("raw");
  auto client = open_client(*parsed, exit_code);
  if (!client) return exit_code;

  std::uint32_t received = 0;
  auto subscribed = client->subscribe(
      *topic, raw,
      [&] {
        // On stderr, so that stdout holds only messages: a script may wait for this line
        // before it publishes.
        std::fprintf(stderr, "subscribed to %s\n", topic->c_str());
        std::fflush(stderr);
      },
      [&](const rpc::v1::PubSubMessage& message) {
        if (json) {
          std::printf("%s\n", message_to_json(message).dump().c_str());
        } else {
          if (message.dropped() > 0) {
            std::fprintf(stderr, "(%llu messages lost before this one: read too slowly)\n",
                         static_cast<unsigned long long>(message.dropped()));
          }
          print_message_text(message);
        }
        std::fflush(stdout);
        ++received;
        return *limit == 0 || received < *limit;
      },
      kSubscribeTimeout);
  if (!subscribed) return report(subscribed.error());
  if (*limit != 0 && received < *limit) {
    print_error("the node ended the subscription after " + std::to_string(received) + " of " +
                std::to_string(*limit) + " messages (it is stopping)");
    return kExitFailure;
  }
  if (*limit == 0) std::fprintf(stderr, "the node ended the subscription (it is stopping)\n");
  return kExitOk;
}

int command_topics(const Words& words) {
  int exit_code = kExitOk;
  auto parsed = parse_or_report("topics", words, exit_code);
  if (!parsed) return exit_code;
  auto client = open_client(*parsed, exit_code);
  if (!client) return exit_code;
  auto listed = client->list_topics();
  if (!listed) return report(listed.error());
  if (parsed->has("json")) {
    auto array = nlohmann::ordered_json::array();
    for (const auto& topic : listed->topics()) {
      auto peers = client->list_topic_peers(topic.topic());
      if (!peers) return report(peers.error());
      nlohmann::ordered_json json;
      json["topic"] = topic.topic();
      json["peers"] = std::vector<std::string>(peers->peer_ids().begin(), peers->peer_ids().end());
      json["mesh_peers"] =
          std::vector<std::string>(peers->mesh_peer_ids().begin(), peers->mesh_peer_ids().end());
      array.push_back(std::move(json));
    }
    print_json(array);
    return kExitOk;
  }
  if (listed->topics().empty()) {
    std::printf("no topic joined (the node joins a topic while something subscribes to it)\n");
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& topic : listed->topics()) {
    rows.push_back(
        {topic.topic(), std::to_string(topic.peers()), std::to_string(topic.mesh_peers())});
  }
  print_table({"TOPIC", "PEERS", "MESH"}, rows);
  return kExitOk;
}

}  // namespace an::app
