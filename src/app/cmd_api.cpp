// id, peers, connect, ping and find: the commands that ask the running node over its control
// API (SPEC §5). The client is made from -data alone; no gRPC channel outlives a command.
#include <algorithm>
#include <atomic>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>
#include <thread>

#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include "app/api_support.h"
#include "app/cli.h"
#include "app/commands.h"
#include "daemon/paths.h"
#include "p2p/crypto/peer_id.h"
#include "p2p/multiformats/multiaddr.h"
#include "p2p/rcmgr/limits.h"
#include "rpc/control_client.h"

namespace an::app {
namespace {

constexpr int kMaxPings = 100;
constexpr auto kPingInterval = std::chrono::seconds(1);

std::atomic<bool> g_interrupted{false};

extern "C" void on_ping_interrupt(int) {
  g_interrupted.store(true);
}

constexpr std::chrono::milliseconds kFindTimeout{65'000};

}  // namespace

int exit_code_for(const Error& error) {
  if (error.code == rpc::ClientErrc::kNotRunning) return kExitNotRunning;
  if (error.code == rpc::CallStatus::kInvalidArgument) return kExitUsage;
  return kExitFailure;
}

int report(const Error& error) {
  print_error(error.message);
  return exit_code_for(error);
}

namespace {

std::vector<std::string> to_vector(const google::protobuf::RepeatedPtrField<std::string>& field) {
  return {field.begin(), field.end()};
}

nlohmann::ordered_json peer_to_json(const rpc::v1::Peer& peer) {
  nlohmann::ordered_json json;
  json["peer_id"] = peer.peer_id();
  json["address"] = peer.address();
  json["direction"] = std::string(rpc::direction_name(peer.direction()));
  json["agent_version"] = peer.agent_version();
  json["protocol_version"] = peer.protocol_version();
  json["protocols"] = to_vector(peer.protocols());
  json["listen_addrs"] = to_vector(peer.listen_addrs());
  json["connected_at_unix_ms"] = peer.connected_at_unix_ms();
  json["stream_count"] = peer.stream_count();
  return json;
}

}  // namespace

Expected<std::string> parse_dialable_multiaddr(const std::string& text) {
  auto address = p2p::Multiaddr::parse(text);
  if (!address) return tl::unexpected(address.error());
  if (!address->peer_id_component()) {
    return fail("invalid multiaddr \"" + text + "\": it must end with /p2p/<peer id>");
  }
  return *address->peer_id_component();
}

Expected<PeerArgument> parse_peer_argument(const std::string& text, bool allow_multiaddr) {
  if (allow_multiaddr && text.starts_with("/")) {
    auto peer_id = parse_dialable_multiaddr(text);
    if (!peer_id) return tl::unexpected(peer_id.error());
    return PeerArgument{*peer_id, text};
  }
  auto id = p2p::PeerId::parse(text);
  if (!id) return tl::unexpected(id.error());
  return PeerArgument{id->to_base58(), std::nullopt};
}

std::optional<std::string> single_positional(const std::string& command, const ParsedArgs& parsed,
                                             const char* what, int& exit_code) {
  if (parsed.positionals.size() == 1) return parsed.positionals[0];
  print_error(command + " needs " + what + " (see: agentnetwork " + command + " -h)");
  exit_code = kExitUsage;
  return std::nullopt;
}

std::optional<rpc::ControlClient> open_client(const ParsedArgs& parsed, int& exit_code) {
  auto client = rpc::ControlClient::open(daemon::DataPaths(data_dir_option(parsed)));
  if (!client) {
    exit_code = report(client.error());
    return std::nullopt;
  }
  return std::move(*client);
}

void print_json(const nlohmann::ordered_json& json) {
  std::printf("%s\n", json.dump(2).c_str());
}

void print_table(const std::vector<std::string>& headers,
                 const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths;
  for (const auto& header : headers)
    widths.push_back(header.size());
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i)
      widths[i] = std::max(widths[i], row[i].size());
  }
  auto print_row = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      std::string cell = cells[i];
      if (i + 1 < cells.size()) cell.resize(widths[i] + 2, ' ');
      line += cell;
    }
    std::printf("%s\n", line.c_str());
  };
  print_row(headers);
  for (const auto& row : rows)
    print_row(row);
}

bool is_valid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto byte = static_cast<unsigned char>(text[i]);
    std::size_t length = 0;
    std::uint32_t code = 0;
    if (byte < 0x80) {
      ++i;
      continue;
    } else if ((byte & 0xE0) == 0xC0) {
      length = 2;
      code = byte & 0x1F;
    } else if ((byte & 0xF0) == 0xE0) {
      length = 3;
      code = byte & 0x0F;
    } else if ((byte & 0xF8) == 0xF0) {
      length = 4;
      code = byte & 0x07;
    } else {
      return false;
    }
    if (i + length > text.size()) return false;
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code = (code << 6) | (next & 0x3F);
    }
    // Overlong forms, surrogates and values past Unicode's range are not UTF-8.
    static constexpr std::uint32_t kMinimum[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code < kMinimum[length] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
      return false;
    }
    i += length;
  }
  return true;
}

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                      reinterpret_cast<const unsigned char*>(bytes.data()),
                                      static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(written));
  return out;
}

std::optional<std::string> read_payload(const std::string& command, const ParsedArgs& parsed,
                                        const char* target, int& exit_code) {
  const auto file = parsed.value("file");
  const bool has_text = parsed.positionals.size() == 2;
  if (file && has_text) {
    print_error(command + ": give either TEXT or -file F, not both");
    exit_code = kExitUsage;
    return std::nullopt;
  }
  if (!file && !has_text) {
    print_error(command + " needs " + target + " and TEXT (or -file F, or - for standard input)");
    exit_code = kExitUsage;
    return std::nullopt;
  }
  if (file) {
    std::ifstream in(*file, std::ios::binary);
    if (!in) {
      print_error("cannot read " + *file);
      exit_code = kExitFailure;
      return std::nullopt;
    }
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  if (parsed.positionals[1] == "-") {
    std::ostringstream in;
    in << std::cin.rdbuf();
    return in.str();
  }
  return parsed.positionals[1];
}

std::optional<std::uint32_t> read_count(const ParsedArgs& parsed, const char* name,
                                        std::uint32_t fallback, std::uint32_t maximum,
                                        int& exit_code) {
  auto text = parsed.value(name);
  if (!text) return fallback;
  std::uint32_t value = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size() || value == 0 || value > maximum) {
    print_error(std::string("-") + name + " must be a number from 1 to " + std::to_string(maximum));
    exit_code = kExitUsage;
    return std::nullopt;
  }
  return value;
}

namespace {

std::string format_ms(std::int64_t nanoseconds) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.3f", static_cast<double>(nanoseconds) / 1e6);
  return buffer;
}

// Sleeps up to `duration`; false when interrupted.
bool sleep_unless_interrupted(std::chrono::milliseconds duration) {
  auto deadline = std::chrono::steady_clock::now() + duration;
  while (!g_interrupted.load()) {
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return true;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        deadline - now, std::chrono::milliseconds(50)));
  }
  return false;
}

}  // namespace

int command_id(const Words& words) {
  int exit_code = kExitOk;
  auto parsed = parse_or_report("id", words, exit_code);
  if (!parsed) return exit_code;
  auto client = open_client(*parsed, exit_code);
  if (!client) return exit_code;
  auto status = client->get_status();
  if (!status) return report(status.error());
  if (parsed->has("json")) {
    nlohmann::ordered_json json;
    json["peer_id"] = status->peer_id();
    json["agent_version"] = status->agent_version();
    json["listen_addrs"] = to_vector(status->listen_addrs());
    json["protocols"] = to_vector(status->protocols());
    print_json(json);
  } else {
    std::printf("%s\n", status->peer_id().c_str());
  }
  return kExitOk;
}

int command_peers(const Words& words) {
  int exit_code = kExitOk;
  auto parsed = parse_or_report("peers", words, exit_code);
  if (!parsed) return exit_code;
  auto client = open_client(*parsed, exit_code);
  if (!client) return exit_code;
  auto listed = client->list_peers();
  if (!listed) return report(listed.error());
  std::vector<rpc::v1::Peer> peers(listed->peers().begin(), listed->peers().end());
  std::stable_sort(peers.begin(), peers.end(),
                   [](const auto& a, const auto& b) { return a.peer_id() < b.peer_id(); });

  if (parsed->has("json")) {
    auto json = nlohmann::ordered_json::array();
    for (const auto& peer : peers)
      json.push_back(peer_to_json(peer));
    print_json(json);
    return kExitOk;
  }
  if (!peers.empty()) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& peer : peers) {
      auto direction = std::string(rpc::direction_name(peer.direction()));
      rows.push_back({peer.peer_id(), direction.empty() ? "-" : direction, peer.address(),
                      peer.agent_version().empty() ? "-" : peer.agent_version()});
    }
    print_table({"PEER ID", "DIRECTION", "ADDRESS", "AGENT"}, rows);
  }
  std::printf("%zu %s connected\n", peers.size(), peers.size() == 1 ? "peer" : "peers");
  return kExitOk;
}

int command_connect(const Words& words) {
  int exit_code = kExitOk;
  auto parsed = parse_or_report("connect", words, exit_code);
  if (!parsed) return exit_code;
  auto address = single_positional("connect", *parsed, "a MULTIADDR", exit_code);
  if (!address) return exit_code;
  if (auto valid = parse_dialable_multiaddr(*address); !valid) {
    print_error(valid.error().message);
    return kExitUsage;
  }
  auto client = open_client(*parsed, exit_code);
  if (!client) return exit_code;
  auto connected = client->connect(*address);
  if (!connected) return report(connected.error());
  std::printf("connected to %s (%s)\n", connected->peer().peer_id().c_str(),
              connected->peer().address().c_str());
  return kExitOk;
}

int command_ping(const Words& words) {
  int exit_code = kExitOk;
  auto parsed = parse_or_report("ping", words, exit_code);
  if (!parsed) return exit_code;
  auto text =
      single_positional("ping", *parsed, "a PEER (peer ID or multiaddr with /p2p/)", exit_code);
  if (!text) return exit_code;
  int count = 3;
  if (auto value = parsed->value("n")) {
    auto [end, ec] = std::from_chars(value->data(), value->data() + value->size(), count);
    if (ec != std::errc() || end != value->data() + value->size() || count < 1 ||
        count > kMaxPings) {
      print_error("invalid -n \"" + *value + "\" (expected a whole number 1-" +
                  std::to_string(kMaxPings) + ")");
      return kExitUsage;
    }
  }
  auto peer = parse_peer_argument(*text, true);
  if (!peer) {
    print_error(peer.error().message);
    return kExitUsage;
  }
  auto client = open_client(*parsed, exit_code);
  if (!client) return exit_code;
  if (peer->multiaddr) {
    auto connected = client->connect(*peer->multiaddr);
    if (!connected) return report(connected.error());
    if (!connected->peer().peer_id().empty()) peer->peer_id = connected->peer().peer_id();
  }

  g_interrupted.store(false);
  std::signal(SIGINT, on_ping_interrupt);
  int sent = 0;
  std::vector<std::int64_t> rtts;
  for (int i = 0; i < count && !g_interrupted.load(); ++i) {
    if (i > 0 && !sleep_unless_interrupted(kPingInterval)) break;
    ++sent;
    auto pinged = client->ping(peer->peer_id, 1);
    if (!pinged) {
      if (exit_code_for(pinged.error()) == kExitUsage) return report(pinged.error());
      print_error(pinged.error().message);
    } else if (pinged->rtt_ns_size() < 1) {
      print_error("the node answered the ping without a round-trip time");
    } else {
      rtts.push_back(pinged->rtt_ns(0));
      std::printf("PONG from %s: time=%s ms\n", peer->peer_id.c_str(),
                  format_ms(pinged->rtt_ns(0)).c_str());
    }
    std::fflush(stdout);
  }
  std::signal(SIGINT, SIG_DFL);

  std::printf("%d %s, %zu ok", sent, sent == 1 ? "ping" : "pings", rtts.size());
  if (!rtts.empty()) {
    std::int64_t sum = 0;
    for (auto rtt : rtts)
      sum += rtt;
    auto [min, max] = std::minmax_element(rtts.begin(), rtts.end());
    std::printf(", min/avg/max = %s/%s/%s ms", format_ms(*min).c_str(),
                format_ms(sum / static_cast<std::int64_t>(rtts.size())).c_str(),
                format_ms(*max).c_str());
  }
  std::printf("\n");
  return rtts.empty() ? kExitFailure : kExitOk;
}

int command_find(const Words& words) {
  int exit_code = kExitOk;
  auto parsed = parse_or_report("find", words, exit_code);
  if (!parsed) return exit_code;
  auto text = single_positional("find", *parsed, "a PEER (peer ID)", exit_code);
  if (!text) return exit_code;
  auto peer = parse_peer_argument(*text, false);
  if (!peer) {
    print_error(peer.error().message);
    return kExitUsage;
  }
  auto client = open_client(*parsed, exit_code);
  if (!client) return exit_code;
  // The node's own cap on a lookup is 60 s; a little more here lets its answer arrive.
  auto found = client->find_peer(peer->peer_id, kFindTimeout);
  if (!found) return report(found.error());
  std::printf("Peer:        %s\n", found->peer_id().c_str());
  std::printf("Connected:   %s\n", found->connected() ? "yes" : "no");
  if (found->found_through_dht()) {
    std::printf("Found by:    DHT lookup (%u rounds)\n", found->lookup_hops());
  } else {
    std::printf("Found by:    already known to the node\n");
  }
  if (found->addresses().empty()) {
    std::printf("Addresses:   none known\n");
  } else {
    std::printf("Addresses:\n");
    for (const auto& address : found->addresses())
      std::printf("  - %s\n", address.c_str());
  }
  return kExitOk;
}

namespace {

std::string format_amount(std::int64_t value, bool memory) {
  if (value < 0) return "unlimited";
  if (!memory) return std::to_string(value);
  return p2p::rcmgr::format_limit(p2p::rcmgr::Resource::kMemory, value);
}

// "used/limit" for one resource of a scope.
std::string usage_cell(std::int64_t used, std::int64_t limit, bool memory = false) {
  return format_amount(used, memory) + "/" + format_amount(limit, memory);
}

std::vector<std::string> scope_row(const rpc::v1::ResourceScope& scope) {
  const auto& used = scope.used();
  const auto& limit = scope.limit();
  return {scope.name(),
          usage_cell(used.memory(), limit.memory(), true),
          usage_cell(used.streams_inbound(), limit.streams_inbound()),
          usage_cell(used.streams_outbound(), limit.streams_outbound()),
          usage_cell(used.conns_inbound(), limit.conns_inbound()),
          usage_cell(used.conns_outbound(), limit.conns_outbound()),
          usage_cell(used.fds(), limit.fds())};
}

nlohmann::ordered_json amounts_to_json(const rpc::v1::ResourceAmounts& amounts) {
  nlohmann::ordered_json json;
  json["memory"] = amounts.memory();
  json["streams_inbound"] = amounts.streams_inbound();
  json["streams_outbound"] = amounts.streams_outbound();
  json["streams"] = amounts.streams();
  json["conns_inbound"] = amounts.conns_inbound();
  json["conns_outbound"] = amounts.conns_outbound();
  json["conns"] = amounts.conns();
  json["fds"] = amounts.fds();
  return json;
}

nlohmann::ordered_json scope_to_json(const rpc::v1::ResourceScope& scope) {
  nlohmann::ordered_json json;
  json["name"] = scope.name();
  json["used"] = amounts_to_json(scope.used());
  json["limit"] = amounts_to_json(scope.limit());
  return json;
}

}  // namespace

int command_resources(const Words& words) {
  int exit_code = kExitOk;
  auto parsed = parse_or_report("resources", words, exit_code);
  if (!parsed) return exit_code;
  std::uint32_t peers = 10;
  if (auto text = parsed->value("peers")) {
    char* end = nullptr;
    const long value = std::strtol(text->c_str(), &end, 10);
    if (text->empty() || *end != '\0' || value < 0 || value > 100) {
      print_error("invalid -peers \"" + *text + "\" (expected a whole number 0-100)");
      return kExitUsage;
    }
    peers = static_cast<std::uint32_t>(value);
  }
  auto client = open_client(*parsed, exit_code);
  if (!client) return exit_code;
  // 0 asks the node for its default of 10; -peers 0 means none.
  auto answer = client->get_resources(peers == 0 ? 1 : peers);
  if (!answer) return report(answer.error());
  std::vector<rpc::v1::ResourceScope> busiest(answer->peers().begin(), answer->peers().end());
  if (peers == 0) busiest.clear();

  if (parsed->has("json")) {
    nlohmann::ordered_json json;
    json["scopes"] = nlohmann::ordered_json::array();
    for (const auto& scope : answer->scopes())
      json["scopes"].push_back(scope_to_json(scope));
    json["peers"] = nlohmann::ordered_json::array();
    for (const auto& scope : busiest)
      json["peers"].push_back(scope_to_json(scope));
    json["peer_count"] = answer->peer_count();
    json["handshakes_in_flight"] = answer->handshakes_in_flight();
    std::map<std::string, std::uint64_t> refusals(answer->refusals().begin(),
                                                  answer->refusals().end());
    json["refusals"] = refusals;
    print_json(json);
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& scope : answer->scopes())
    rows.push_back(scope_row(scope));
  for (const auto& scope : busiest)
    rows.push_back(scope_row(scope));
  print_table({"SCOPE", "MEMORY", "STREAMS IN", "STREAMS OUT", "CONNS IN", "CONNS OUT", "FDS"},
              rows);
  std::printf("\nPeers holding resources: %llu",
              static_cast<unsigned long long>(answer->peer_count()));
  if (!busiest.empty()) std::printf(" (the %zu busiest listed above)", busiest.size());
  std::printf("\n");
  std::printf("Inbound handshakes in flight: %llu\n",
              static_cast<unsigned long long>(answer->handshakes_in_flight()));
  std::map<std::string, std::uint64_t> refusals(answer->refusals().begin(),
                                                answer->refusals().end());
  if (refusals.empty()) {
    std::printf("Refusals since start: none\n");
  } else {
    std::printf("Refusals since start:\n");
    for (const auto& [key, count] : refusals)
      std::printf("  %-40s %llu\n", key.c_str(), static_cast<unsigned long long>(count));
  }
  return kExitOk;
}

}  // namespace an::app
