// `agentnetwork p2pd`: go-libp2p-daemon's command line (Go flag syntax: -name=value,
// -name value, one or two dashes, booleans as -x or -x=true|false), so that tools written for
// p2pd, like the libp2p interop suite, can start this node in its place. Main thread only.
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "app/cli.h"
#include "app/commands.h"
#include "node/p2pd_process.h"

namespace an::app {
namespace {

// -gossipsubHeartbeatInterval: a shorter interval would spin the network thread, a longer one
// leaves meshes unrepaired for hours.
constexpr auto kMinHeartbeatInterval = std::chrono::milliseconds(10);
constexpr auto kMaxHeartbeatInterval = std::chrono::milliseconds(3600 * 1000);

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> items;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    auto item = text.substr(start, comma - start);
    if (!item.empty()) items.push_back(item);
    start = comma + 1;
  }
  return items;
}

Expected<int> parse_count(const std::string& name, const std::string& value) {
  char* end = nullptr;
  long number = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || number < 0 || number > 1000000) {
    return fail("invalid value \"" + value + "\" for -" + name);
  }
  return static_cast<int>(number);
}

// A Go duration ("120s", "2m", "1h30m", "500ms"); a bare number is refused as in Go, except 0.
Expected<double> parse_go_duration(const std::string& name, const std::string& value) {
  if (value == "0") return 0.0;
  double total = 0;
  std::size_t i = 0;
  if (value.empty()) return fail("invalid duration \"\" for -" + name);
  while (i < value.size()) {
    std::size_t start = i;
    while (i < value.size() &&
           (std::isdigit(static_cast<unsigned char>(value[i])) || value[i] == '.')) {
      ++i;
    }
    if (start == i) return fail("invalid duration \"" + value + "\" for -" + name);
    double number = std::strtod(value.substr(start, i - start).c_str(), nullptr);
    std::size_t unit_start = i;
    while (i < value.size() && std::isalpha(static_cast<unsigned char>(value[i])))
      ++i;
    auto unit = value.substr(unit_start, i - unit_start);
    double scale = unit == "h"    ? 3600
                   : unit == "m"  ? 60
                   : unit == "s"  ? 1
                   : unit == "ms" ? 1e-3
                   : unit == "us" ? 1e-6
                   : unit == "ns" ? 1e-9
                                  : -1;
    if (scale < 0) return fail("invalid duration \"" + value + "\" for -" + name);
    total += number * scale;
  }
  return total;
}

// What the flags set. The security, muxer and DHT flags combine, so they are kept as given
// until every flag is read (see options_from_flags).
struct P2pdFlagValues {
  node::P2pdOptions options;
  std::optional<bool> noise, tls, plaintext;
  bool muxer_given = false;
  std::vector<std::string> muxers;
  bool dht = false, dht_client = false, dht_server = false;
};

enum class FlagUse {
  kSupported,
  kRefused,  // not supported yet: applying it fails (for booleans, when true)
  // Accepted for compatibility and ignored: their go features do not exist in this node, or
  // are always on.
  kIgnored,
};

struct P2pdFlag {
  std::string_view name;
  std::string_view value_name = {};  // empty: a boolean
  // Supported flags: their help line; empty when the flag before it describes both. Ignored
  // flags: a note on them, if any.
  std::string_view help = {};
  FlagUse use = FlagUse::kSupported;
  // Takes "true" or "false" for booleans; the error is the one-line usage error. Null for
  // ignored flags.
  Expected<void> (*apply)(P2pdFlagValues& values, const std::string& value) = nullptr;
};

bool on(const std::string& value) {
  return value == "true";
}

Expected<void> add_muxer(P2pdFlagValues& values, std::string_view protocol_id) {
  values.muxer_given = true;
  values.muxers.emplace_back(protocol_id);
  return {};
}

const std::vector<P2pdFlag>& p2pd_flag_table() {
  using Values = P2pdFlagValues;
  using Value = const std::string&;
  static const std::vector<P2pdFlag> flags{
      {.name = "listen",
       .value_name = "MULTIADDR",
       .help = "control socket: /unix/PATH (0600) or /ip4/A/tcp/P (default /unix/tmp/p2pd.sock)",
       .apply = [](Values& values, Value value) -> Expected<void> {
         values.options.listen = value;
         return {};
       }},
      {.name = "hostAddrs",
       .value_name = "A,B",
       .help = "P2P listen multiaddrs (default /ip4/0.0.0.0/tcp/0)",
       .apply = [](Values& values, Value value) -> Expected<void> {
         values.options.host_addrs = split_commas(value);
         return {};
       }},
      {.name = "announceAddrs",
       .value_name = "A,B",
       .help = "addresses told to peers instead of the listen addresses",
       .apply = [](Values& values, Value value) -> Expected<void> {
         values.options.announce_addrs = split_commas(value);
         return {};
       }},
      {.name = "noListenAddrs",
       .help = "listen on no address (dial out only)",
       .apply = [](Values& values, Value value) -> Expected<void> {
         values.options.no_listen = on(value);
         return {};
       }},
      {.name = "id",
       .value_name = "FILE",
       .help = "private key file (libp2p PrivateKey protobuf, Ed25519); default: a fresh key for "
               "this run",
       .apply = [](Values& values, Value value) -> Expected<void> {
         values.options.id_file = value;
         return {};
       }},
      {.name = "noise",
       .help = "security protocols offered, in this order (default noise and tls); those set "
               "true are the whole offer, =false removes one",
       .apply = [](Values& values, Value value) -> Expected<void> {
         values.noise = on(value);
         return {};
       }},
      {.name = "tls",
       .apply = [](Values& values, Value value) -> Expected<void> {
         values.tls = on(value);
         return {};
       }},
      {.name = "plaintext",
       .apply = [](Values& values, Value value) -> Expected<void> {
         values.plaintext = on(value);
         return {};
       }},
      {.name = "muxer",
       .value_name = "yamux|mplex",
       .help = "stream muxers, comma list (default yamux); -yamux and -mplex add one",
       .apply = [](Values& values, Value value) -> Expected<void> {
         values.muxer_given = true;
         values.muxers.clear();
         for (const auto& item : split_commas(value)) {
           if (item == "yamux") {
             values.muxers.push_back("/yamux/1.0.0");
           } else if (item == "mplex") {
             values.muxers.push_back("/mplex/6.7.0");
           } else {
             return fail("-muxer: unknown muxer \"" + item + "\" (expected yamux or mplex)");
           }
         }
         return {};
       }},
      {.name = "yamux",
       .apply = [](Values& values, Value value) -> Expected<void> {
         if (on(value)) return add_muxer(values, "/yamux/1.0.0");
         return {};
       }},
      {.name = "mplex",
       .apply = [](Values& values, Value value) -> Expected<void> {
         if (on(value)) return add_muxer(values, "/mplex/6.7.0");
         return {};
       }},
      {.name = "dht",
       .help = "DHT, server mode when listening, client otherwise",
       .apply = [](Values& values, Value value) -> Expected<void> {
         values.dht = on(value);
         return {};
       }},
      {.name = "dhtClient",
       .help = "DHT in client or server mode",
       .apply = [](Values& values, Value value) -> Expected<void> {
         values.dht_client = on(value);
         return {};
       }},
      {.name = "dhtServer",
       .apply = [](Values& values, Value value) -> Expected<void> {
         values.dht_server = on(value);
         return {};
       }},
      {.name = "relay",
       .help = "circuit relay v2 client (default true); given explicitly, also the hop service",
       .apply = [](Values& values, Value value) -> Expected<void> {
         // go's p2pd nodes given -relay serve as relays in libp2p's interop suite (its relay
         // tests reserve on them), so an explicit -relay runs the hop service too.
         values.options.relay = on(value);
         values.options.relay_service = values.options.relay_service || on(value);
         return {};
       }},
      {.name = "relayService",
       .help = "circuit relay v2 hop service (relay for others)",
       .apply = [](Values& values, Value value) -> Expected<void> {
         values.options.relay_service = values.options.relay_service || on(value);
         return {};
       }},
      {.name = "relayHop",
       .apply = [](Values& values, Value value) -> Expected<void> {
         values.options.relay_service = values.options.relay_service || on(value);
         return {};
       }},
      {.name = "b",
       .help = "connect to the bootstrap peers",
       .apply = [](Values& values, Value value) -> Expected<void> {
         values.options.bootstrap = on(value);
         return {};
       }},
      {.name = "bootstrap",
       .apply = [](Values& values, Value value) -> Expected<void> {
         values.options.bootstrap = on(value);
         return {};
       }},
      {.name = "bootstrapPeers",
       .value_name = "A,B",
       .help = "bootstrap peers, multiaddrs ending in /p2p/ID",
       .apply = [](Values& values, Value value) -> Expected<void> {
         values.options.bootstrap_peers = split_commas(value);
         return {};
       }},
      {.name = "connManager",
       .help = "trim connections above -connHi down to -connLo",
       .apply = [](Values& values, Value value) -> Expected<void> {
         values.options.conn_manager = on(value);
         return {};
       }},
      {.name = "connLo",
       .value_name = "N",
       .help = "low and high water marks (default 256, 512)",
       .apply = [](Values& values, Value value) -> Expected<void> {
         auto count = parse_count("connLo", value);
         if (!count) return tl::unexpected(count.error());
         values.options.conn_low = *count;
         return {};
       }},
      {.name = "connHi",
       .value_name = "N",
       .apply = [](Values& values, Value value) -> Expected<void> {
         auto count = parse_count("connHi", value);
         if (!count) return tl::unexpected(count.error());
         values.options.conn_high = *count;
         return {};
       }},
      {.name = "connGrace",
       .value_name = "DURATION",
       .help = "grace period of new connections, Go duration (default 2m)",
       .apply = [](Values& values, Value value) -> Expected<void> {
         auto seconds = parse_go_duration("connGrace", value);
         if (!seconds) return tl::unexpected(seconds.error());
         values.options.conn_grace_seconds = *seconds;
         return {};
       }},
      {.name = "q",
       .help = "print nothing at start",
       .apply = [](Values& values, Value value) -> Expected<void> {
         values.options.quiet = on(value);
         return {};
       }},
      {.name = "idleTimeout",
       .value_name = "0",
       .help = "accepted only as 0 (no idle exit)",
       .apply = [](Values&, Value value) -> Expected<void> {
         auto seconds = parse_go_duration("idleTimeout", value);
         if (!seconds) return tl::unexpected(seconds.error());
         if (*seconds != 0) return fail("-idleTimeout: not supported yet");
         return {};
       }},
      {.name = "pubsub",
       .help = "pubsub: GET_TOPICS, LIST_PEERS, PUBLISH, SUBSCRIBE requests; signed messages",
       .apply = [](Values& values, Value value) -> Expected<void> {
         values.options.pubsub = on(value);
         return {};
       }},
      {.name = "pubsubRouter",
       .value_name = "gossipsub|floodsub",
       .help = "pubsub router (default gossipsub)",
       .apply = [](Values& values, Value value) -> Expected<void> {
         if (value == "gossipsub") {
           values.options.pubsub_router = node::P2pdPubsubRouter::kGossipsub;
         } else if (value == "floodsub") {
           values.options.pubsub_router = node::P2pdPubsubRouter::kFloodsub;
         } else {
           return fail("-pubsubRouter: unknown router \"" + value +
                       "\" (expected gossipsub or floodsub)");
         }
         return {};
       }},
      {.name = "gossipsubHeartbeatInterval",
       .value_name = "DURATION",
       .help = "gossipsub heartbeat interval, Go duration (default 1s)",
       .apply = [](Values& values, Value value) -> Expected<void> {
         auto seconds = parse_go_duration("gossipsubHeartbeatInterval", value);
         if (!seconds) return tl::unexpected(seconds.error());
         const auto interval =
             std::chrono::milliseconds(static_cast<std::int64_t>(*seconds * 1000));
         if (interval < kMinHeartbeatInterval || interval > kMaxHeartbeatInterval) {
           return fail("-gossipsubHeartbeatInterval: " + value + " is outside 10ms..1h");
         }
         values.options.gossipsub_heartbeat_interval = interval;
         return {};
       }},
      {.name = "f",
       .value_name = "FILE",
       .use = FlagUse::kRefused,
       .apply = [](Values&, Value) -> Expected<void> {
         return fail("-f: JSON configuration is not supported yet");
       }},
      {.name = "i",
       .use = FlagUse::kRefused,
       .apply = [](Values&, Value value) -> Expected<void> {
         if (on(value)) return fail("-i: JSON configuration is not supported yet");
         return {};
       }},
      {.name = "quic", .help = "no QUIC transport yet", .use = FlagUse::kIgnored},
      {.name = "persistentConnMaxMsgSize", .value_name = "N", .use = FlagUse::kIgnored},
      {.name = "natPortMap", .use = FlagUse::kIgnored},
      {.name = "autonat", .use = FlagUse::kIgnored},
      {.name = "autoRelay", .use = FlagUse::kIgnored},
      {.name = "relayActive", .use = FlagUse::kIgnored},
      {.name = "relayDiscovery", .use = FlagUse::kIgnored},
      {.name = "relayHopLimit", .value_name = "N", .use = FlagUse::kIgnored},
      {.name = "forceReachabilityPublic", .use = FlagUse::kIgnored},
      {.name = "forceReachabilityPrivate", .use = FlagUse::kIgnored},
      {.name = "metricsAddr", .value_name = "ADDR", .use = FlagUse::kIgnored},
      {.name = "pprof", .use = FlagUse::kIgnored},
      {.name = "pprofPort", .value_name = "PORT", .use = FlagUse::kIgnored},
      {.name = "blockProfileRate", .value_name = "N", .use = FlagUse::kIgnored},
      {.name = "mutexProfileFraction", .value_name = "N", .use = FlagUse::kIgnored},
      // Our messages are always signed and unsigned ones refused (go's StrictSign default).
      {.name = "pubsubSign", .use = FlagUse::kIgnored},
      {.name = "pubsubSignStrict", .use = FlagUse::kIgnored},
      {.name = "gossipsubHeartbeatInitialDelay",
       .value_name = "DURATION",
       .use = FlagUse::kIgnored},
  };
  return flags;
}

CommandSpec p2pd_command_spec() {
  CommandSpec spec = spec_of("p2pd");
  spec.flag_syntax = FlagSyntax::kGo;
  for (const auto& flag : p2pd_flag_table()) {
    spec.options.push_back(
        OptionSpec{std::string(flag.name), std::string(flag.value_name), std::string(flag.help)});
  }
  return spec;
}

// "-name VALUE", as the help shows a flag.
std::string flag_usage(const P2pdFlag& flag) {
  std::string usage = "-" + std::string(flag.name);
  if (!flag.value_name.empty()) usage += " " + std::string(flag.value_name);
  return usage;
}

// The flags of one use, with their notes: "-quic (no QUIC transport yet), -natPortMap".
std::string flag_list(FlagUse use) {
  std::string list;
  for (const auto& flag : p2pd_flag_table()) {
    if (flag.use != use) continue;
    list += (list.empty() ? "-" : ", -") + std::string(flag.name);
    if (!flag.help.empty()) list += " (" + std::string(flag.help) + ")";
  }
  return list;
}

std::string p2pd_help() {
  std::string text =
      "Usage: agentnetwork p2pd [flags]\n\n" +
      wrap_text(
          "Run the node in the foreground as a libp2p daemon: it serves go-libp2p-daemon's "
          "control protocol (identify, connect, disconnect, list peers, streams, DHT, connection "
          "manager, pubsub with -pubsub) and accepts p2pd's flags, Go style (-name=value, -name "
          "value, -flag, "
          "-flag=false). No data directory is used; Ctrl+C or SIGTERM stops it. Prints \"Control "
          "socket:\", \"Peer ID:\" and \"Peer Addrs:\" like p2pd.") +
      "\nFlags:\n";
  const auto& flags = p2pd_flag_table();
  for (std::size_t i = 0; i < flags.size(); ++i) {
    if (flags[i].use != FlagUse::kSupported) continue;
    std::string left = "  " + flag_usage(flags[i]);
    const auto help = flags[i].help;
    while (i + 1 < flags.size() && flags[i + 1].use == FlagUse::kSupported &&
           flags[i + 1].help.empty()) {
      left += ", " + flag_usage(flags[++i]);
    }
    text += help_row(left, help);
  }
  text += "\n" + wrap_text("Refused (not supported yet): " + flag_list(FlagUse::kRefused) + ".");
  text += wrap_text("Accepted and ignored: " + flag_list(FlagUse::kIgnored) + ".");
  return text;
}

// The cross-flag rules, once every flag is applied.
Expected<node::P2pdOptions> options_from_flags(P2pdFlagValues values) {
  auto& options = values.options;
  // Protocols switched on explicitly are the whole offer (-noise=true: Noise only, whatever
  // is implemented of the defaults); otherwise the defaults minus those switched off.
  const bool any_on = values.noise.value_or(false) || values.tls.value_or(false) ||
                      values.plaintext.value_or(false);
  const bool use_noise = any_on ? values.noise.value_or(false) : values.noise.value_or(true);
  const bool use_tls = any_on ? values.tls.value_or(false) : values.tls.value_or(true);
  const bool use_plaintext = values.plaintext.value_or(false);
  options.security_protocols.clear();
  if (use_noise) options.security_protocols.push_back("/noise");
  if (use_tls) options.security_protocols.push_back("/tls/1.0.0");
  if (use_plaintext) options.security_protocols.push_back("/plaintext/2.0.0");
  if (options.security_protocols.empty()) {
    return fail("at least one security protocol must be enabled (-noise, -tls, -plaintext)");
  }
  if (values.muxer_given) {
    if (values.muxers.empty()) return fail("no stream muxer selected");
    options.muxers = values.muxers;
  }
  if (values.dht_server) {
    options.dht = node::P2pdDhtMode::kServer;
  } else if (values.dht_client) {
    options.dht = node::P2pdDhtMode::kClient;
  } else if (values.dht) {
    options.dht = node::P2pdDhtMode::kAuto;
  }
  if (options.conn_low > options.conn_high) {
    return fail("-connLo " + std::to_string(options.conn_low) + " is above -connHi " +
                std::to_string(options.conn_high));
  }
  if (options.bootstrap && options.bootstrap_peers.empty()) {
    return fail("-b: no bootstrap peers given (-bootstrapPeers; no public list is built in)");
  }
  return options;
}

}  // namespace

int command_p2pd(const Words& words) {
  auto parsed = parse_args(p2pd_command_spec(), words);
  if (!parsed) {
    print_error(parsed.error().message);
    return kExitUsage;
  }
  if (parsed->help) {
    std::fputs(p2pd_help().c_str(), stdout);
    return kExitOk;
  }
  P2pdFlagValues values;
  for (const auto& [name, value] : parsed->options) {
    for (const auto& flag : p2pd_flag_table()) {
      if (flag.name != name || flag.apply == nullptr) continue;
      if (auto applied = flag.apply(values, value); !applied) {
        print_error(applied.error().message);
        return kExitUsage;
      }
    }
  }
  auto options = options_from_flags(std::move(values));
  if (!options) {
    print_error(options.error().message);
    return kExitUsage;
  }
  return node::run_p2pd(*options);
}

}  // namespace an::app
