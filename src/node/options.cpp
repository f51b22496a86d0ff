#include "node/options.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <set>

#include "daemon/paths.h"
#include "p2p/crypto/peer_id.h"
#include "p2p/multiformats/multiaddr.h"
#include "util/decimal.h"

namespace an::node {
namespace {

std::vector<std::string> split_list(std::string_view value) {
  std::vector<std::string> items;
  std::size_t start = 0;
  while (start <= value.size()) {
    auto comma = value.find(',', start);
    if (comma == std::string_view::npos) comma = value.size();
    auto item = value.substr(start, comma - start);
    while (!item.empty() && item.front() == ' ')
      item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ')
      item.remove_suffix(1);
    if (!item.empty()) items.emplace_back(item);
    start = comma + 1;
  }
  return items;
}

std::string quote_value(std::string_view value) {
  return "\"" + std::string(value) + "\"";
}

Expected<Role> parse_role(std::string_view value) {
  if (value == "normal") return Role::kNormal;
  if (value == "relay") return Role::kRelay;
  if (value == "bootstrap") return Role::kBootstrap;
  return fail("invalid -role " + quote_value(value) + " (expected bootstrap, relay or normal)");
}

Expected<DhtModeSetting> parse_dht_mode(std::string_view value) {
  if (value == "auto") return DhtModeSetting::kAuto;
  if (value == "client") return DhtModeSetting::kClient;
  if (value == "server") return DhtModeSetting::kServer;
  return fail("invalid -dht-mode " + quote_value(value) + " (expected auto, client or server)");
}

Expected<double> parse_size_mb(std::string_view value) {
  auto number = parse_decimal(value);
  // A limit below one kilobyte would rotate on every line; above 1 TiB it is a typo.
  if (!number || !std::isfinite(*number) || *number < 0.001 || *number > 1024.0 * 1024.0) {
    return fail("invalid -log-max-size-mb " + quote_value(value) +
                " (expected a size in MB between 0.001 and 1048576)");
  }
  return *number;
}

Expected<int> parse_max_files(std::string_view value) {
  int number = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
  if (ec != std::errc() || end != value.data() + value.size() || number < 1 || number > 1000) {
    return fail("invalid -log-max-files " + quote_value(value) +
                " (expected a whole number 1-1000)");
  }
  return number;
}

Expected<int> parse_connection_count(std::string_view name, std::string_view value) {
  int number = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
  if (ec != std::errc() || end != value.data() + value.size() || number < 1 || number > 100000) {
    return fail("invalid -" + std::string(name) + " " + quote_value(value) +
                " (expected a whole number 1-100000)");
  }
  return number;
}

Expected<double> parse_grace_seconds(std::string_view value) {
  auto number = parse_decimal(value);
  if (!number || !std::isfinite(*number) || *number < 0 || *number > 86400) {
    return fail("invalid -conn-grace " + quote_value(value) + " (expected seconds, 0-86400)");
  }
  return *number;
}

// -bootstrap and -static-relay: a dialable address of one peer.
Expected<void> check_peer_address(std::string_view option, std::string_view text) {
  const std::string what = "invalid -" + std::string(option) + " address";
  auto address = p2p::Multiaddr::parse(text);
  if (!address) return fail(what + ": " + address.error().message);
  auto peer = address->peer_id_component();
  if (!peer) return fail(what + " " + quote_value(text) + ": it must end with /p2p/<peer id>");
  const auto& parts = address->components();
  bool circuit = false;
  for (const auto& part : parts)
    circuit = circuit || part.code == p2p::kProtocolP2pCircuit;
  if (parts.size() < 3 || parts.back().code != p2p::kProtocolP2p || circuit) {
    return fail(what + " " + quote_value(text) +
                ": expected /ip4|ip6|dns|dns4|dns6/HOST/tcp/PORT/p2p/<peer id>");
  }
  return {};
}

Expected<std::int64_t> parse_whole_number(std::string_view name, std::string_view value,
                                          std::int64_t low, std::int64_t high,
                                          std::string_view unit) {
  std::int64_t number = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
  if (ec != std::errc() || end != value.data() + value.size() || number < low || number > high) {
    return fail("invalid -" + std::string(name) + " " + quote_value(value) + " (expected " +
                std::string(unit) + ", " + std::to_string(low) + "-" + std::to_string(high) + ")");
  }
  return number;
}

Expected<void> check_grpc_endpoint(std::string_view text) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
    return fail("invalid -grpc " + quote_value(text) + " (expected HOST:PORT)");
  }
  int port = 0;
  auto digits = text.substr(colon + 1);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (ec != std::errc() || end != digits.data() + digits.size() || port < 0 || port > 65535) {
    return fail("invalid -grpc " + quote_value(text) + " (bad port)");
  }
  return {};
}

}  // namespace

std::string_view role_name(Role role) {
  switch (role) {
    case Role::kRelay:
      return "relay";
    case Role::kBootstrap:
      return "bootstrap";
    case Role::kNormal:
      break;
  }
  return "normal";
}

std::string_view dht_mode_setting_name(DhtModeSetting mode) {
  switch (mode) {
    case DhtModeSetting::kClient:
      return "client";
    case DhtModeSetting::kServer:
      return "server";
    case DhtModeSetting::kAuto:
      break;
  }
  return "auto";
}

const std::vector<std::string>& node_option_names() {
  static const std::vector<std::string> names{"data",
                                              "key",
                                              "listen",
                                              "bootstrap",
                                              "role",
                                              "dht-mode",
                                              "static-relay",
                                              "relay-max-reservations",
                                              "relay-circuit-duration",
                                              "relay-circuit-bytes",
                                              "grpc",
                                              "p2pd-listen",
                                              "log-max-size-mb",
                                              "log-max-files",
                                              "conn-low-water",
                                              "conn-high-water",
                                              "conn-grace",
                                              "security",
                                              "muxer"};
  return names;
}

namespace {

struct NamedProtocol {
  std::string_view name;
  std::string_view protocol_id;
};

constexpr NamedProtocol kSecurityProtocols[] = {
    {"noise", "/noise"}, {"tls", "/tls/1.0.0"}, {"plaintext", "/plaintext/2.0.0"}};
constexpr NamedProtocol kMuxers[] = {{"yamux", "/yamux/1.0.0"}, {"mplex", "/mplex/6.7.0"}};

template <std::size_t N>
Expected<std::vector<std::string>> parse_protocol_list(std::string_view option,
                                                       std::string_view value,
                                                       const NamedProtocol (&known)[N]) {
  std::string expected;
  for (const auto& entry : known)
    expected += (expected.empty() ? "" : ", ") + std::string(entry.name);
  auto items = split_list(value);
  if (items.empty()) {
    return fail("invalid -" + std::string(option) + " " + quote_value(value) +
                ": at least one of " + expected + " is needed");
  }
  std::set<std::string> seen;
  for (const auto& item : items) {
    bool found = false;
    for (const auto& entry : known)
      found = found || entry.name == item;
    if (!found) {
      return fail("invalid -" + std::string(option) + " " + quote_value(item) + " (expected " +
                  expected + ")");
    }
    if (!seen.insert(item).second) {
      return fail("-" + std::string(option) + ": " + quote_value(item) + " given twice");
    }
  }
  return items;
}

template <std::size_t N>
std::vector<std::string> protocol_ids(const std::vector<std::string>& names,
                                      const NamedProtocol (&known)[N]) {
  std::vector<std::string> ids;
  for (const auto& name : names) {
    for (const auto& entry : known) {
      if (entry.name == name) ids.emplace_back(entry.protocol_id);
    }
  }
  return ids;
}

}  // namespace

std::vector<std::string> security_protocol_ids(const NodeOptions& options) {
  return protocol_ids(options.security, kSecurityProtocols);
}

std::vector<std::string> muxer_protocol_ids(const NodeOptions& options) {
  return protocol_ids(options.muxers, kMuxers);
}

bool plaintext_enabled(const NodeOptions& options) {
  return std::find(options.security.begin(), options.security.end(), "plaintext") !=
         options.security.end();
}

Expected<TcpListenAddress> parse_listen_address(std::string_view text) {
  auto address = p2p::Multiaddr::parse(text);
  if (!address) return fail("invalid -listen address: " + address.error().message);
  const auto& parts = address->components();
  bool has_quic = false;
  for (const auto& part : parts)
    has_quic = has_quic || (part.code == p2p::kProtocolQuicV1 || part.code == p2p::kProtocolQuic);
  if (has_quic || (parts.size() >= 2 && parts[1].code == p2p::kProtocolUdp)) {
    return fail("-listen " + quote_value(text) + ": QUIC and UDP listeners are not supported yet");
  }
  if (parts.size() != 2 ||
      (parts[0].code != p2p::kProtocolIp4 && parts[0].code != p2p::kProtocolIp6) ||
      parts[1].code != p2p::kProtocolTcp) {
    return fail("invalid -listen address " + quote_value(text) +
                " (expected /ip4/ADDRESS/tcp/PORT or /ip6/ADDRESS/tcp/PORT)");
  }
  TcpListenAddress result;
  result.ipv6 = parts[0].code == p2p::kProtocolIp6;
  result.host = parts[0].value;
  result.port = static_cast<unsigned short>(std::stoul(parts[1].value));
  return result;
}

Expected<void> check_p2pd_listen(std::string_view text) {
  if (text.empty()) return {};  // not served
  if (text.rfind("/unix/", 0) == 0) {
    if (text.size() > 100) return fail("-p2pd-listen: the unix socket path is too long");
    return {};
  }
  auto address = p2p::Multiaddr::parse(text);
  const bool tcp = address && address->components().size() == 2 &&
                   (address->components()[0].code == p2p::kProtocolIp4 ||
                    address->components()[0].code == p2p::kProtocolIp6) &&
                   address->components()[1].code == p2p::kProtocolTcp;
  if (!tcp) {
    return fail("invalid -p2pd-listen " + quote_value(text) +
                " (expected /unix/PATH or /ip4|ip6/ADDRESS/tcp/PORT)");
  }
  // The protocol has no authentication: whoever reaches the socket drives the node.
  const std::string& host = address->components()[0].value;
  if (host.rfind("127.", 0) != 0 && host != "::1") {
    return fail("-p2pd-listen " + quote_value(text) +
                ": only loopback TCP addresses or /unix/PATH (the protocol has no "
                "authentication)");
  }
  return {};
}

Expected<void> apply_node_option(NodeOptions& options, std::string_view name,
                                 std::string_view value) {
  if (name == "data") {
    if (value.empty()) return fail("invalid -data: the directory must not be empty");
    options.data_dir = std::filesystem::path(std::string(value));
  } else if (name == "key") {
    if (value.empty()) return fail("invalid -key: the file name must not be empty");
    options.key_file = std::filesystem::path(std::string(value));
  } else if (name == "listen") {
    if (value == "none") {
      options.listen.clear();
      return {};
    }
    auto items = split_list(value);
    if (items.empty()) {
      return fail("invalid -listen " + quote_value(value) +
                  ": no address given (\"none\" for a node that only dials out)");
    }
    std::set<std::string> seen;
    for (const auto& item : items) {
      auto parsed = parse_listen_address(item);
      if (!parsed) return tl::unexpected(parsed.error());
      if (!seen.insert(item).second) return fail("-listen: " + quote_value(item) + " given twice");
    }
    options.listen = items;
  } else if (name == "bootstrap") {
    auto items = split_list(value);
    for (const auto& item : items) {
      if (auto checked = check_peer_address("bootstrap", item); !checked) return checked;
    }
    options.bootstrap = items;
  } else if (name == "static-relay") {
    auto items = split_list(value);
    for (const auto& item : items) {
      if (auto checked = check_peer_address("static-relay", item); !checked) return checked;
    }
    options.static_relays = items;
  } else if (name == "relay-max-reservations") {
    auto number = parse_whole_number(name, value, 1, 100000, "a whole number");
    if (!number) return tl::unexpected(number.error());
    options.relay_max_reservations = static_cast<int>(*number);
  } else if (name == "relay-circuit-duration") {
    auto number = parse_whole_number(name, value, 0, 86400, "seconds, 0 for no limit");
    if (!number) return tl::unexpected(number.error());
    options.relay_circuit_duration_seconds = static_cast<int>(*number);
  } else if (name == "relay-circuit-bytes") {
    auto number =
        parse_whole_number(name, value, 0, std::int64_t{1} << 40, "bytes, 0 for no limit");
    if (!number) return tl::unexpected(number.error());
    options.relay_circuit_bytes = *number;
  } else if (name == "role") {
    auto role = parse_role(value);
    if (!role) return tl::unexpected(role.error());
    options.role = *role;
  } else if (name == "dht-mode") {
    auto mode = parse_dht_mode(value);
    if (!mode) return tl::unexpected(mode.error());
    options.dht_mode = *mode;
  } else if (name == "grpc") {
    if (auto checked = check_grpc_endpoint(value); !checked) return checked;
    options.grpc = std::string(value);
  } else if (name == "p2pd-listen") {
    if (auto checked = check_p2pd_listen(value); !checked) return checked;
    options.p2pd_listen = std::string(value);
  } else if (name == "log-max-size-mb") {
    auto size = parse_size_mb(value);
    if (!size) return tl::unexpected(size.error());
    options.log_max_size_mb = *size;
  } else if (name == "log-max-files") {
    auto files = parse_max_files(value);
    if (!files) return tl::unexpected(files.error());
    options.log_max_files = *files;
  } else if (name == "conn-low-water" || name == "conn-high-water") {
    auto count = parse_connection_count(name, value);
    if (!count) return tl::unexpected(count.error());
    (name == "conn-low-water" ? options.conn_low_water : options.conn_high_water) = *count;
  } else if (name == "conn-grace") {
    auto seconds = parse_grace_seconds(value);
    if (!seconds) return tl::unexpected(seconds.error());
    options.conn_grace_seconds = *seconds;
  } else if (name == "security") {
    auto list = parse_protocol_list(name, value, kSecurityProtocols);
    if (!list) return tl::unexpected(list.error());
    options.security = *list;
  } else if (name == "muxer") {
    auto list = parse_protocol_list(name, value, kMuxers);
    if (!list) return tl::unexpected(list.error());
    options.muxers = *list;
  } else {
    return fail("unknown option -" + std::string(name));
  }
  return {};
}

namespace {

// Errors name the key but not the file; callers add where the settings came from.
Expected<void> apply_config_settings(NodeOptions& options, const nlohmann::json& config) {
  if (!config.is_object()) return fail("the settings must be a JSON object");
  for (const auto& [key, value] : config.items()) {
    std::string name = key;
    for (auto& c : name)
      c = c == '_' ? '-' : c;
    if (name == "data") {
      return fail("\"data\" is not a setting (the file lives in the data directory)");
    }
    bool known = false;
    for (const auto& option : node_option_names())
      known = known || option == name;
    if (!known) return fail("unknown key \"" + key + "\"");
    std::string text;
    if (value.is_string()) {
      text = value.get<std::string>();
    } else if (value.is_number() && !value.is_boolean()) {
      text = value.dump();
    } else if (value.is_array() &&
               (name == "listen" || name == "bootstrap" || name == "static-relay" ||
                name == "security" || name == "muxer")) {
      for (const auto& item : value) {
        if (!item.is_string()) return fail("\"" + key + "\" must list strings");
        text += (text.empty() ? "" : ",") + item.get<std::string>();
      }
      if (text.empty() && name != "security" && name != "muxer") {
        (name == "bootstrap"      ? options.bootstrap
         : name == "static-relay" ? options.static_relays
                                  : options.listen)
            .clear();
        continue;
      }
    } else {
      return fail("\"" + key + "\" has the wrong type (" + value.type_name() + ")");
    }
    if (auto applied = apply_node_option(options, name, text); !applied) return applied;
    // A relative key path in the config is relative to the data directory it lives in.
    if (name == "key" && options.key_file.is_relative()) {
      options.key_file = options.data_dir / options.key_file;
    }
  }
  return {};
}

}  // namespace

Expected<void> apply_config_json(NodeOptions& options, const nlohmann::json& config) {
  auto applied = apply_config_settings(options, config);
  if (!applied) return fail("config.json: " + applied.error().message);
  return {};
}

Expected<void> apply_config_file(NodeOptions& options, const std::filesystem::path& config_file) {
  std::error_code ec;
  if (!std::filesystem::exists(config_file, ec)) return {};
  std::ifstream in(config_file, std::ios::binary);
  if (!in) return fail_errno("cannot read " + config_file.string());
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto json = nlohmann::json::parse(content, nullptr, false);
  if (json.is_discarded()) return fail(config_file.string() + " is not valid JSON");
  auto applied = apply_config_settings(options, json);
  if (!applied) return fail(config_file.string() + ": " + applied.error().message);
  return {};
}

nlohmann::json options_to_config_json(const NodeOptions& options) {
  nlohmann::json json;
  json["key"] = options.key_file.empty() ? "" : options.key_file.string();
  json["listen"] = options.listen;
  json["bootstrap"] = options.bootstrap;
  json["role"] = std::string(role_name(options.role));
  json["dht_mode"] = std::string(dht_mode_setting_name(options.dht_mode));
  json["static_relay"] = options.static_relays;
  json["relay_max_reservations"] = options.relay_max_reservations;
  json["relay_circuit_duration"] = options.relay_circuit_duration_seconds;
  json["relay_circuit_bytes"] = options.relay_circuit_bytes;
  json["grpc"] = options.grpc;
  json["p2pd_listen"] = options.p2pd_listen;
  json["log_max_size_mb"] = options.log_max_size_mb;
  json["log_max_files"] = options.log_max_files;
  json["conn_low_water"] = options.conn_low_water;
  json["conn_high_water"] = options.conn_high_water;
  json["conn_grace"] = options.conn_grace_seconds;
  json["security"] = options.security;
  json["muxer"] = options.muxers;
  if (options.key_file.empty()) json.erase("key");
  if (options.grpc.empty()) json.erase("grpc");
  if (options.p2pd_listen.empty()) json.erase("p2pd_listen");
  return json;
}

Expected<void> validate_for_start(const NodeOptions& options) {
  if (options.role != Role::kNormal && options.dht_mode == DhtModeSetting::kClient) {
    return fail("-dht-mode client: the " + std::string(role_name(options.role)) +
                " role serves the DHT (use -role normal for a DHT client)");
  }
  if (options.role != Role::kNormal && options.listen.empty()) {
    return fail("-listen none: the " + std::string(role_name(options.role)) +
                " role needs a listen address (peers dial it)");
  }
  if (options.conn_low_water > options.conn_high_water) {
    return fail("-conn-low-water " + std::to_string(options.conn_low_water) +
                " is above -conn-high-water " + std::to_string(options.conn_high_water));
  }
  return {};
}

std::vector<std::string> options_to_args(const NodeOptions& options) {
  auto join = [](const std::vector<std::string>& items) {
    std::string text;
    for (const auto& item : items)
      text += (text.empty() ? "" : ",") + item;
    return text;
  };
  char size_text[32];
  std::snprintf(size_text, sizeof(size_text), "%g", options.log_max_size_mb);
  std::vector<std::string> args{"--data", daemon::make_absolute(options.data_dir).string()};
  if (!options.key_file.empty()) {
    args.insert(args.end(), {"--key", daemon::make_absolute(options.key_file).string()});
  }
  args.insert(args.end(), {"--listen", options.listen.empty() ? "none" : join(options.listen)});
  if (!options.bootstrap.empty()) args.insert(args.end(), {"--bootstrap", join(options.bootstrap)});
  args.insert(args.end(), {"--role", std::string(role_name(options.role))});
  if (options.dht_mode != DhtModeSetting::kAuto) {
    args.insert(args.end(), {"--dht-mode", std::string(dht_mode_setting_name(options.dht_mode))});
  }
  if (!options.static_relays.empty()) {
    args.insert(args.end(), {"--static-relay", join(options.static_relays)});
  }
  args.insert(args.end(),
              {"--relay-max-reservations", std::to_string(options.relay_max_reservations),
               "--relay-circuit-duration", std::to_string(options.relay_circuit_duration_seconds),
               "--relay-circuit-bytes", std::to_string(options.relay_circuit_bytes)});
  if (!options.grpc.empty()) args.insert(args.end(), {"--grpc", options.grpc});
  if (!options.p2pd_listen.empty()) {
    args.insert(args.end(), {"--p2pd-listen", options.p2pd_listen});
  }
  args.insert(args.end(), {"--log-max-size-mb", size_text, "--log-max-files",
                           std::to_string(options.log_max_files)});
  char grace_text[32];
  std::snprintf(grace_text, sizeof(grace_text), "%g", options.conn_grace_seconds);
  args.insert(args.end(),
              {"--conn-low-water", std::to_string(options.conn_low_water), "--conn-high-water",
               std::to_string(options.conn_high_water), "--conn-grace", grace_text});
  args.insert(args.end(), {"--security", join(options.security), "--muxer", join(options.muxers)});
  return args;
}

bool dht_server_mode(const NodeOptions& options) {
  switch (options.dht_mode) {
    case DhtModeSetting::kServer:
      return true;
    case DhtModeSetting::kClient:
      return false;
    case DhtModeSetting::kAuto:
      break;
  }
  return options.role != Role::kNormal || !options.listen.empty();
}

std::filesystem::path effective_key_file(const NodeOptions& options) {
  if (!options.key_file.empty()) return daemon::make_absolute(options.key_file);
  return daemon::DataPaths(options.data_dir).default_key_file;
}

}  // namespace an::node
