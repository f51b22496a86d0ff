#include "node/options.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>

#include "daemon/paths.h"
#include "daemon/platform.h"
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

std::string join_list(const std::vector<std::string>& items) {
  std::string text;
  for (const auto& item : items)
    text += (text.empty() ? "" : ",") + item;
  return text;
}

// The shortest "%g" text that reads back as the same number: a restart must not round a value.
std::string format_decimal(double value) {
  char text[32];
  for (int precision = 6;; ++precision) {
    std::snprintf(text, sizeof(text), "%.*g", precision, value);
    if (precision >= 17 || parse_decimal(text) == value) return text;
  }
}

std::int64_t integer_of(std::string_view text) {
  std::int64_t number = 0;
  std::from_chars(text.data(), text.data() + text.size(), number);
  return number;
}

// Stores a parsed value, or passes its error on.
template <typename Value, typename Field>
Expected<void> assign(Expected<Value> parsed, Field& field) {
  if (!parsed) return tl::unexpected(parsed.error());
  field = static_cast<Field>(std::move(*parsed));
  return {};
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

Expected<PubSubRouterSetting> parse_pubsub_router(std::string_view value) {
  if (value == "gossipsub") return PubSubRouterSetting::kGossipSub;
  if (value == "floodsub") return PubSubRouterSetting::kFloodSub;
  return fail("invalid -pubsub-router " + quote_value(value) + " (expected gossipsub or floodsub)");
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

Expected<std::vector<std::string>> parse_peer_list(std::string_view option, std::string_view text) {
  auto items = split_list(text);
  for (const auto& item : items) {
    if (auto checked = check_peer_address(option, item); !checked) {
      return tl::unexpected(checked.error());
    }
  }
  return items;
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

std::string_view pubsub_router_setting_name(PubSubRouterSetting router) {
  return router == PubSubRouterSetting::kFloodSub ? "floodsub" : "gossipsub";
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

namespace {

constexpr std::string_view kListenNone = "none";

Expected<void> apply_listen(NodeOptions& options, std::string_view text) {
  if (text == kListenNone) {
    options.listen.clear();
    return {};
  }
  auto items = split_list(text);
  if (items.empty()) {
    return fail("invalid -listen " + quote_value(text) +
                ": no address given (\"none\" for a node that only dials out)");
  }
  std::set<std::string> seen;
  for (const auto& item : items) {
    auto parsed = parse_listen_address(item);
    if (!parsed) return tl::unexpected(parsed.error());
    if (!seen.insert(item).second) return fail("-listen: " + quote_value(item) + " given twice");
  }
  options.listen = items;
  return {};
}

std::vector<NodeOptionDescriptor> make_node_option_table() {
  using Options = NodeOptions;
  using Text = std::string_view;
  return {
      {.name = "data",
       .value_name = "DIR",
       .help = "data directory",
       .kind = OptionKind::kPath,
       .apply = [](Options& options, Text text) -> Expected<void> {
         if (text.empty()) return fail("invalid -data: the directory must not be empty");
         options.data_dir = std::filesystem::path(std::string(text));
         return {};
       },
       .format = [](const Options& options) { return options.data_dir.string(); },
       .in_config_file = false},
      {.name = "key",
       .value_name = "FILE",
       .help = "private key file",
       .kind = OptionKind::kPath,
       .apply = [](Options& options, Text text) -> Expected<void> {
         if (text.empty()) return fail("invalid -key: the file name must not be empty");
         options.key_file = std::filesystem::path(std::string(text));
         return {};
       },
       .format = [](const Options& options) { return options.key_file.string(); },
       .default_note = "DIR/keys/node.key"},
      {.name = "listen",
       .value_name = "A,B",
       .help = "P2P listen multiaddrs",
       .kind = OptionKind::kList,
       .apply = apply_listen,
       .format =
           [](const Options& options) {
             return options.listen.empty() ? std::string(kListenNone) : join_list(options.listen);
           },
       .default_note = "none: dial out only",
       .empty_list_text = kListenNone},
      {.name = "bootstrap",
       .value_name = "A,B",
       .help = "bootstrap peers, full multiaddrs ending in /p2p/<peer id>",
       .kind = OptionKind::kList,
       .apply =
           [](Options& options, Text text) {
             return assign(parse_peer_list("bootstrap", text), options.bootstrap);
           },
       .format = [](const Options& options) { return join_list(options.bootstrap); }},
      {.name = "role",
       .value_name = "ROLE",
       .help = "bootstrap, relay or normal",
       .kind = OptionKind::kChoice,
       .apply = [](Options& options, Text text) { return assign(parse_role(text), options.role); },
       .format = [](const Options& options) { return std::string(role_name(options.role)); }},
      {.name = "dht-mode",
       .value_name = "MODE",
       .help = "auto (server when listening), client or server",
       .kind = OptionKind::kChoice,
       .apply = [](Options& options,
                   Text text) { return assign(parse_dht_mode(text), options.dht_mode); },
       .format =
           [](const Options& options) {
             return std::string(dht_mode_setting_name(options.dht_mode));
           }},
      {.name = "daan-network",
       .value_name = "on|off",
       .help = "join the DAAN network: advertise /daan/1.0.0 and dial the DAAN nodes found",
       .kind = OptionKind::kChoice,
       .apply = [](Options& options, Text text) -> Expected<void> {
         if (text != "on" && text != "off") {
           return fail("-daan-network must be on or off, not \"" + std::string(text) + "\"");
         }
         options.daan_network = text == "on";
         return {};
       },
       .format =
           [](const Options& options) { return std::string(options.daan_network ? "on" : "off"); }},
      {.name = "pubsub",
       .value_name = "on|off",
       .help = "publish/subscribe: join the topics clients subscribe to and relay their messages",
       .kind = OptionKind::kChoice,
       .apply = [](Options& options, Text text) -> Expected<void> {
         if (text != "on" && text != "off") {
           return fail("-pubsub must be on or off, not \"" + std::string(text) + "\"");
         }
         options.pubsub = text == "on";
         return {};
       },
       .format = [](const Options& options) { return std::string(options.pubsub ? "on" : "off"); }},
      {.name = "pubsub-router",
       .value_name = "ROUTER",
       .help = "gossipsub (serves floodsub peers too) or floodsub",
       .kind = OptionKind::kChoice,
       .apply = [](Options& options,
                   Text text) { return assign(parse_pubsub_router(text), options.pubsub_router); },
       .format =
           [](const Options& options) {
             return std::string(pubsub_router_setting_name(options.pubsub_router));
           }},
      {.name = "static-relay",
       .value_name = "A,B",
       .help = "relays to hold a reservation on, full multiaddrs ending in /p2p/<peer id>",
       .kind = OptionKind::kList,
       .apply =
           [](Options& options, Text text) {
             return assign(parse_peer_list("static-relay", text), options.static_relays);
           },
       .format = [](const Options& options) { return join_list(options.static_relays); }},
      {.name = "relay-max-reservations",
       .value_name = "N",
       .help = "relay service: reservations held at once",
       .kind = OptionKind::kInteger,
       .apply =
           [](Options& options, Text text) {
             return assign(
                 parse_whole_number("relay-max-reservations", text, 1, 100000, "a whole number"),
                 options.relay_max_reservations);
           },
       .format =
           [](const Options& options) { return std::to_string(options.relay_max_reservations); }},
      {.name = "relay-circuit-duration",
       .value_name = "SEC",
       .help = "relay service: each relayed connection's time limit, 0: none",
       .kind = OptionKind::kInteger,
       .apply =
           [](Options& options, Text text) {
             return assign(parse_whole_number("relay-circuit-duration", text, 0, 86400,
                                              "seconds, 0 for no limit"),
                           options.relay_circuit_duration_seconds);
           },
       .format =
           [](const Options& options) {
             return std::to_string(options.relay_circuit_duration_seconds);
           }},
      {.name = "relay-circuit-bytes",
       .value_name = "N",
       .help = "relay service: bytes per direction per relayed connection, 0: none",
       .kind = OptionKind::kInteger,
       .apply =
           [](Options& options, Text text) {
             return assign(parse_whole_number("relay-circuit-bytes", text, 0, std::int64_t{1} << 40,
                                              "bytes, 0 for no limit"),
                           options.relay_circuit_bytes);
           },
       .format =
           [](const Options& options) { return std::to_string(options.relay_circuit_bytes); }},
      {.name = "inbox-max-messages",
       .value_name = "N",
       .help = "messages the agents' inbox keeps before it refuses new ones",
       .kind = OptionKind::kInteger,
       .apply =
           [](Options& options, Text text) {
             return assign(
                 parse_whole_number("inbox-max-messages", text, 1, 100'000'000, "messages"),
                 options.inbox_max_messages);
           },
       .format = [](const Options& options) { return std::to_string(options.inbox_max_messages); }},
      {.name = "inbox-max-bytes",
       .value_name = "N",
       .help = "payload bytes the agents' inbox keeps before it refuses new messages",
       .kind = OptionKind::kInteger,
       .apply =
           [](Options& options, Text text) {
             return assign(
                 parse_whole_number("inbox-max-bytes", text, 1, std::int64_t{1} << 40, "bytes"),
                 options.inbox_max_bytes);
           },
       .format = [](const Options& options) { return std::to_string(options.inbox_max_bytes); }},
      {.name = "grpc",
       .value_name = "HOST:PORT",
       .help = "control API endpoint",
       .kind = OptionKind::kText,
       .apply = [](Options& options, Text text) -> Expected<void> {
         if (auto checked = check_grpc_endpoint(text); !checked) return checked;
         options.grpc = std::string(text);
         return {};
       },
       .format = [](const Options& options) { return options.grpc; },
       .default_note = "a socket in the data dir"},
      {.name = "p2pd-listen",
       .value_name = "MULTIADDR",
       .help = "also serve the libp2p daemon (p2pd) control protocol there: /unix/PATH "
               "(created 0600) or /ip4/127.0.0.1/tcp/PORT",
       .kind = OptionKind::kText,
       .apply = [](Options& options, Text text) -> Expected<void> {
         if (auto checked = check_p2pd_listen(text); !checked) return checked;
         options.p2pd_listen = std::string(text);
         return {};
       },
       .format = [](const Options& options) { return options.p2pd_listen; }},
      {.name = "log-max-size-mb",
       .value_name = "N",
       .help = "rotate node.log at this size in MB",
       .kind = OptionKind::kDecimal,
       .apply = [](Options& options,
                   Text text) { return assign(parse_size_mb(text), options.log_max_size_mb); },
       .format = [](const Options& options) { return format_decimal(options.log_max_size_mb); }},
      {.name = "log-max-files",
       .value_name = "N",
       .help = "rotated log files kept",
       .kind = OptionKind::kInteger,
       .apply = [](Options& options,
                   Text text) { return assign(parse_max_files(text), options.log_max_files); },
       .format = [](const Options& options) { return std::to_string(options.log_max_files); }},
      {.name = "conn-low-water",
       .value_name = "N",
       .help = "trim connections down to N peers",
       .kind = OptionKind::kInteger,
       .apply =
           [](Options& options, Text text) {
             return assign(parse_connection_count("conn-low-water", text), options.conn_low_water);
           },
       .format = [](const Options& options) { return std::to_string(options.conn_low_water); }},
      {.name = "conn-high-water",
       .value_name = "N",
       .help = "trim when more than N peers are connected",
       .kind = OptionKind::kInteger,
       .apply =
           [](Options& options, Text text) {
             return assign(parse_connection_count("conn-high-water", text),
                           options.conn_high_water);
           },
       .format = [](const Options& options) { return std::to_string(options.conn_high_water); }},
      {.name = "conn-grace",
       .value_name = "SEC",
       .help = "new peers are not trimmed for SEC seconds",
       .kind = OptionKind::kDecimal,
       .apply =
           [](Options& options, Text text) {
             return assign(parse_grace_seconds(text), options.conn_grace_seconds);
           },
       .format = [](const Options& options) { return format_decimal(options.conn_grace_seconds); }},
      {.name = "security",
       .value_name = "A,B",
       .help = "security protocols offered, preferred first: noise, tls, plaintext",
       .kind = OptionKind::kList,
       .apply =
           [](Options& options, Text text) {
             return assign(parse_protocol_list("security", text, kSecurityProtocols),
                           options.security);
           },
       .format = [](const Options& options) { return join_list(options.security); },
       .default_note = "plaintext disables encryption, for tests only"},
      {.name = "max-memory",
       .value_name = "SIZE",
       .help = "memory the resource limits scale to (bytes, or with KiB, MiB, GiB)",
       .kind = OptionKind::kText,
       .apply = [](Options& options, Text text) -> Expected<void> {
         auto bytes = p2p::rcmgr::parse_memory_size(text);
         if (!bytes || *bytes < 16 * 1024 * 1024) {
           return fail("invalid -max-memory " + quote_value(text) +
                       " (expected a size of at least 16MiB, e.g. 512MiB or 2GiB)");
         }
         options.max_memory_bytes = *bytes;
         return {};
       },
       .format =
           [](const Options& options) {
             return options.max_memory_bytes == 0
                        ? std::string()
                        : p2p::rcmgr::format_memory_size(options.max_memory_bytes);
           },
       .default_note = "an eighth of physical memory"},
      {.name = "max-fds",
       .value_name = "N",
       .help = "file descriptors the resource limits scale to",
       .kind = OptionKind::kText,
       .apply =
           [](Options& options, Text text) {
             return assign(parse_whole_number("max-fds", text, 16, 1 << 24, "a whole number"),
                           options.max_fds);
           },
       .format =
           [](const Options& options) {
             return options.max_fds == 0 ? std::string() : std::to_string(options.max_fds);
           },
       .default_note = "half the descriptor limit"},
      {.name = "limit",
       .value_name = "S.R=V,...",
       .help = "resource limits, e.g. system.conns_inbound=256,peer.memory=64MiB "
               "(docs/security.md lists the scopes and resources)",
       .kind = OptionKind::kList,
       .apply = [](Options& options, Text text) -> Expected<void> {
         auto items = split_list(text);
         auto scratch = p2p::rcmgr::scaled_default_limits(0, 0);
         for (const auto& item : items) {
           if (auto applied = p2p::rcmgr::apply_limit_override(scratch, item); !applied) {
             return fail("invalid -limit: " + applied.error().message);
           }
         }
         options.limits = std::move(items);
         return {};
       },
       .format = [](const Options& options) { return join_list(options.limits); }},
      {.name = "allow",
       .value_name = "A,B",
       .help = "addresses (CIDR) and peer IDs that may use the allowlisted resource limits",
       .kind = OptionKind::kList,
       .apply = [](Options& options, Text text) -> Expected<void> {
         auto items = split_list(text);
         for (const auto& item : items) {
           if (p2p::rcmgr::IpPrefix::parse(item) || p2p::PeerId::parse(item)) continue;
           return fail("invalid -allow " + quote_value(item) +
                       " (expected an address or network like 10.0.0.0/8, or a peer ID)");
         }
         options.allow = std::move(items);
         return {};
       },
       .format = [](const Options& options) { return join_list(options.allow); }},
      {.name = "muxer",
       .value_name = "A,B",
       .help = "stream muxers offered, preferred first: yamux, mplex",
       .kind = OptionKind::kList,
       .apply =
           [](Options& options, Text text) {
             return assign(parse_protocol_list("muxer", text, kMuxers), options.muxers);
           },
       .format = [](const Options& options) { return join_list(options.muxers); }},
  };
}

}  // namespace

const std::vector<NodeOptionDescriptor>& node_option_table() {
  static const std::vector<NodeOptionDescriptor> table = make_node_option_table();
  return table;
}

const NodeOptionDescriptor* find_node_option(std::string_view name) {
  for (const auto& option : node_option_table()) {
    if (option.name == name) return &option;
  }
  return nullptr;
}

Expected<void> apply_node_option(NodeOptions& options, std::string_view name,
                                 std::string_view value) {
  const auto* option = find_node_option(name);
  if (option == nullptr) return fail("unknown option -" + std::string(name));
  return option->apply(options, value);
}

std::string canonical_option_text(const NodeOptionDescriptor& option, std::string_view text) {
  if (option.kind != OptionKind::kPath) return std::string(text);
  return daemon::make_absolute(std::filesystem::path(std::string(text))).string();
}

namespace {

std::string config_key(std::string_view option_name) {
  std::string key(option_name);
  std::replace(key.begin(), key.end(), '-', '_');
  return key;
}

// Errors name the key but not the file; callers add where the settings came from.
Expected<void> apply_config_settings(NodeOptions& options, const nlohmann::json& config) {
  if (!config.is_object()) return fail("the settings must be a JSON object");
  for (const auto& [key, value] : config.items()) {
    std::string name = key;
    std::replace(name.begin(), name.end(), '_', '-');
    const auto* option = find_node_option(name);
    if (option == nullptr) return fail("unknown key \"" + key + "\"");
    if (!option->in_config_file) {
      return fail("\"" + name + "\" is not a setting (the file lives in the data directory)");
    }
    std::string text;
    if (value.is_string()) {
      text = value.get<std::string>();
    } else if (value.is_number() && !value.is_boolean()) {
      text = value.dump();
    } else if (value.is_array() && option->kind == OptionKind::kList) {
      for (const auto& item : value) {
        if (!item.is_string()) return fail("\"" + key + "\" must list strings");
        text += (text.empty() ? "" : ",") + item.get<std::string>();
      }
      if (text.empty()) text = option->empty_list_text;
    } else {
      return fail("\"" + key + "\" has the wrong type (" + value.type_name() + ")");
    }
    // A relative path in the config is relative to the data directory it lives in.
    if (option->kind == OptionKind::kPath && !text.empty() &&
        std::filesystem::path(text).is_relative()) {
      text = (options.data_dir / text).string();
    }
    if (auto applied = option->apply(options, text); !applied) return applied;
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
  auto json = nlohmann::json::object();
  for (const auto& option : node_option_table()) {
    if (!option.in_config_file) continue;
    const auto key = config_key(option.name);
    const auto text = option.format(options);
    switch (option.kind) {
      case OptionKind::kList:
        json[key] = text == option.empty_list_text ? std::vector<std::string>{} : split_list(text);
        break;
      case OptionKind::kInteger:
        json[key] = integer_of(text);
        break;
      case OptionKind::kDecimal:
        json[key] = parse_decimal(text).value_or(0);
        break;
      case OptionKind::kText:
      case OptionKind::kPath:
      case OptionKind::kChoice:
        if (!text.empty()) json[key] = text;
        break;
    }
  }
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
  std::vector<std::string> args;
  for (const auto& option : node_option_table()) {
    const auto text = option.format(options);
    if (text.empty()) continue;
    args.insert(args.end(), {"--" + std::string(option.name), canonical_option_text(option, text)});
  }
  return args;
}

p2p::rcmgr::LimitConfig resource_limits(const NodeOptions& options) {
  std::int64_t memory = options.max_memory_bytes;
  if (memory == 0) memory = static_cast<std::int64_t>(daemon::physical_memory_bytes() / 8);
  std::int64_t fds = options.max_fds;
  if (fds == 0) fds = static_cast<std::int64_t>(daemon::descriptor_limit() / 2);
  auto limits = p2p::rcmgr::scaled_default_limits(memory, fds);
  for (const auto& item : options.limits) {
    (void)p2p::rcmgr::apply_limit_override(limits, item);  // validated when the option was set
  }
  for (const auto& item : options.allow) {
    if (auto network = p2p::rcmgr::IpPrefix::parse(item)) {
      limits.allowed_networks.push_back(*network);
    } else {
      limits.allowed_peers.push_back(item);
    }
  }
  return limits;
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
