// `agentnetwork p2pd`: go-libp2p-daemon's command line (Go flag syntax: -name=value,
// -name value, one or two dashes, booleans as -x or -x=true|false), so that tools written for
// p2pd, like the libp2p interop suite, can start this node in its place. Main thread only.
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>

#include "app/cli.h"
#include "app/commands.h"
#include "node/p2pd_process.h"

namespace an::app {
namespace {

enum class FlagKind { kBool, kValue };

struct FlagSpec {
  FlagKind kind;
  // Flags accepted for compatibility that do nothing here (their go features do not exist in
  // this node, or are always on).
  bool ignored = false;
};

const std::map<std::string, FlagSpec>& p2pd_flags() {
  static const std::map<std::string, FlagSpec> flags{
      {"listen", {FlagKind::kValue}},
      {"hostAddrs", {FlagKind::kValue}},
      {"announceAddrs", {FlagKind::kValue}},
      {"noListenAddrs", {FlagKind::kBool}},
      {"id", {FlagKind::kValue}},
      {"noise", {FlagKind::kBool}},
      {"tls", {FlagKind::kBool}},
      {"plaintext", {FlagKind::kBool}},
      {"muxer", {FlagKind::kValue}},
      {"yamux", {FlagKind::kBool}},
      {"mplex", {FlagKind::kBool}},
      {"dht", {FlagKind::kBool}},
      {"dhtClient", {FlagKind::kBool}},
      {"dhtServer", {FlagKind::kBool}},
      {"relay", {FlagKind::kBool}},
      {"relayService", {FlagKind::kBool}},
      {"relayHop", {FlagKind::kBool}},
      {"b", {FlagKind::kBool}},
      {"bootstrap", {FlagKind::kBool}},
      {"bootstrapPeers", {FlagKind::kValue}},
      {"connManager", {FlagKind::kBool}},
      {"connLo", {FlagKind::kValue}},
      {"connHi", {FlagKind::kValue}},
      {"connGrace", {FlagKind::kValue}},
      {"q", {FlagKind::kBool}},
      {"idleTimeout", {FlagKind::kValue}},
      {"pubsub", {FlagKind::kBool}},
      {"f", {FlagKind::kValue}},
      {"i", {FlagKind::kBool}},
      // Accepted and ignored.
      {"quic", {FlagKind::kBool, true}},
      {"persistentConnMaxMsgSize", {FlagKind::kValue, true}},
      {"natPortMap", {FlagKind::kBool, true}},
      {"autonat", {FlagKind::kBool, true}},
      {"autoRelay", {FlagKind::kBool, true}},
      {"relayActive", {FlagKind::kBool, true}},
      {"relayDiscovery", {FlagKind::kBool, true}},
      {"relayHopLimit", {FlagKind::kValue, true}},
      {"forceReachabilityPublic", {FlagKind::kBool, true}},
      {"forceReachabilityPrivate", {FlagKind::kBool, true}},
      {"metricsAddr", {FlagKind::kValue, true}},
      {"pprof", {FlagKind::kBool, true}},
      {"pprofPort", {FlagKind::kValue, true}},
      {"blockProfileRate", {FlagKind::kValue, true}},
      {"mutexProfileFraction", {FlagKind::kValue, true}},
      {"pubsubRouter", {FlagKind::kValue, true}},
      {"pubsubSign", {FlagKind::kBool, true}},
      {"pubsubSignStrict", {FlagKind::kBool, true}},
      {"gossipsubHeartbeatInterval", {FlagKind::kValue, true}},
      {"gossipsubHeartbeatInitialDelay", {FlagKind::kValue, true}},
  };
  return flags;
}

const char* kP2pdHelp =
    "Usage: agentnetwork p2pd [flags]\n"
    "\n"
    "Run the node in the foreground as a libp2p daemon: it serves go-libp2p-daemon's control\n"
    "protocol (identify, connect, disconnect, list peers, streams, DHT, connection manager) and\n"
    "accepts p2pd's flags, Go style (-name=value, -name value, -flag, -flag=false). No data\n"
    "directory is used; Ctrl+C or SIGTERM stops it. Prints \"Control socket:\", \"Peer ID:\" and\n"
    "\"Peer Addrs:\" like p2pd.\n"
    "\n"
    "Flags:\n"
    "  -listen MULTIADDR       control socket: /unix/PATH (0600) or /ip4/A/tcp/P\n"
    "                          (default /unix/tmp/p2pd.sock)\n"
    "  -hostAddrs A,B          P2P listen multiaddrs (default /ip4/0.0.0.0/tcp/0)\n"
    "  -announceAddrs A,B      addresses told to peers instead of the listen addresses\n"
    "  -noListenAddrs          listen on no address (dial out only)\n"
    "  -id FILE                private key file (libp2p PrivateKey protobuf, Ed25519);\n"
    "                          default: a fresh key for this run\n"
    "  -noise, -tls, -plaintext\n"
    "                          security protocols offered, in this order (default noise and\n"
    "                          tls); those set true are the whole offer, =false removes one\n"
    "  -muxer yamux|mplex      stream muxers, comma list (default yamux); -yamux and -mplex\n"
    "                          add one\n"
    "  -dht                    DHT, server mode when listening, client otherwise\n"
    "  -dhtClient, -dhtServer  DHT in client or server mode\n"
    "  -relay                  circuit relay v2 client (default true); given explicitly,\n"
    "                          also the hop service\n"
    "  -relayService, -relayHop\n"
    "                          circuit relay v2 hop service (relay for others)\n"
    "  -b, -bootstrap          connect to the bootstrap peers\n"
    "  -bootstrapPeers A,B     bootstrap peers, multiaddrs ending in /p2p/ID\n"
    "  -connManager            trim connections above -connHi down to -connLo\n"
    "  -connLo N, -connHi N    low and high water marks (default 256, 512)\n"
    "  -connGrace DURATION     grace period of new connections, Go duration (default 2m)\n"
    "  -q                      print nothing at start\n"
    "  -idleTimeout 0          accepted only as 0 (no idle exit)\n"
    "\n"
    "Refused (not supported yet): -pubsub, -f, -i, -idleTimeout other than 0.\n"
    "Accepted and ignored: -quic (no QUIC transport yet), -persistentConnMaxMsgSize,\n"
    "-natPortMap, -autonat, -autoRelay, -relayActive, -relayDiscovery, -relayHopLimit,\n"
    "-forceReachabilityPublic, -forceReachabilityPrivate, -metricsAddr, -pprof, -pprofPort,\n"
    "-blockProfileRate, -mutexProfileFraction, -pubsubRouter, -pubsubSign,\n"
    "-pubsubSignStrict, -gossipsubHeartbeatInterval, -gossipsubHeartbeatInitialDelay.\n";

Expected<bool> parse_go_bool(const std::string& name, const std::string& value) {
  if (value == "1" || value == "t" || value == "T" || value == "true" || value == "TRUE" ||
      value == "True") {
    return true;
  }
  if (value == "0" || value == "f" || value == "F" || value == "false" || value == "FALSE" ||
      value == "False") {
    return false;
  }
  return fail("invalid boolean value \"" + value + "\" for -" + name);
}

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

}  // namespace

int command_p2pd(const Words& words) {
  const auto& flags = p2pd_flags();
  std::vector<std::pair<std::string, std::string>> given;
  for (std::size_t i = 0; i < words.size(); ++i) {
    const std::string& word = words[i];
    if (word == "--") {
      if (i + 1 < words.size()) {
        print_error("unexpected argument \"" + words[i + 1] + "\" for p2pd");
        return kExitUsage;
      }
      break;
    }
    if (word.size() < 2 || word[0] != '-') {
      print_error("unexpected argument \"" + word + "\" for p2pd");
      return kExitUsage;
    }
    std::string body = word.substr(word[1] == '-' ? 2 : 1);
    std::optional<std::string> inline_value;
    if (auto eq = body.find('='); eq != std::string::npos) {
      inline_value = body.substr(eq + 1);
      body.resize(eq);
    }
    if (body == "h" || body == "help") {
      std::fputs(kP2pdHelp, stdout);
      return kExitOk;
    }
    auto found = flags.find(body);
    if (found == flags.end()) {
      print_error("unknown flag \"" + word + "\" for p2pd (see: agentnetwork p2pd -h)");
      return kExitUsage;
    }
    std::string value;
    if (found->second.kind == FlagKind::kBool) {
      value = inline_value.value_or("true");
      auto parsed = parse_go_bool(body, value);
      if (!parsed) {
        print_error(parsed.error().message);
        return kExitUsage;
      }
      value = *parsed ? "true" : "false";
    } else if (inline_value) {
      value = *inline_value;
    } else if (i + 1 < words.size()) {
      value = words[++i];
    } else {
      print_error("flag needs an argument: -" + body);
      return kExitUsage;
    }
    if (!found->second.ignored) given.emplace_back(body, value);
  }

  node::P2pdOptions options;
  std::optional<bool> noise, tls, plaintext;
  std::vector<std::string> muxers;
  bool muxer_flag = false;
  bool dht = false, dht_client = false, dht_server = false;
  auto usage = [](const std::string& message) {
    print_error(message);
    return kExitUsage;
  };
  for (const auto& [name, value] : given) {
    const bool on = value == "true";
    if (name == "listen") {
      options.listen = value;
    } else if (name == "hostAddrs") {
      options.host_addrs = split_commas(value);
    } else if (name == "announceAddrs") {
      options.announce_addrs = split_commas(value);
    } else if (name == "noListenAddrs") {
      options.no_listen = on;
    } else if (name == "id") {
      options.id_file = value;
    } else if (name == "noise") {
      noise = on;
    } else if (name == "tls") {
      tls = on;
    } else if (name == "plaintext") {
      plaintext = on;
    } else if (name == "muxer") {
      muxer_flag = true;
      muxers.clear();
      for (const auto& item : split_commas(value)) {
        if (item == "yamux") {
          muxers.push_back("/yamux/1.0.0");
        } else if (item == "mplex") {
          muxers.push_back("/mplex/6.7.0");
        } else {
          return usage("-muxer: unknown muxer \"" + item + "\" (expected yamux or mplex)");
        }
      }
    } else if (name == "yamux" || name == "mplex") {
      if (on) {
        muxer_flag = true;
        muxers.push_back(name == "yamux" ? "/yamux/1.0.0" : "/mplex/6.7.0");
      }
    } else if (name == "dht") {
      dht = on;
    } else if (name == "dhtClient") {
      dht_client = on;
    } else if (name == "dhtServer") {
      dht_server = on;
    } else if (name == "relay") {
      // go's p2pd nodes given -relay serve as relays in libp2p's interop suite (its relay
      // tests reserve on them), so an explicit -relay runs the hop service too.
      options.relay = on;
      options.relay_service = options.relay_service || on;
    } else if (name == "relayService" || name == "relayHop") {
      options.relay_service = options.relay_service || on;
    } else if (name == "b" || name == "bootstrap") {
      options.bootstrap = on;
    } else if (name == "bootstrapPeers") {
      options.bootstrap_peers = split_commas(value);
    } else if (name == "connManager") {
      options.conn_manager = on;
    } else if (name == "connLo" || name == "connHi") {
      auto count = parse_count(name, value);
      if (!count) return usage(count.error().message);
      (name == "connLo" ? options.conn_low : options.conn_high) = *count;
    } else if (name == "connGrace") {
      auto seconds = parse_go_duration(name, value);
      if (!seconds) return usage(seconds.error().message);
      options.conn_grace_seconds = *seconds;
    } else if (name == "q") {
      options.quiet = on;
    } else if (name == "pubsub") {
      if (on) return usage("-pubsub: pubsub is not supported yet");
    } else if (name == "idleTimeout") {
      auto seconds = parse_go_duration(name, value);
      if (!seconds) return usage(seconds.error().message);
      if (*seconds != 0) return usage("-idleTimeout: not supported yet");
    } else if (name == "f" || name == "i") {
      if (name == "f" || on) return usage("-" + name + ": JSON configuration is not supported yet");
    }
  }
  // Protocols switched on explicitly are the whole offer (-noise=true: Noise only, whatever
  // is implemented of the defaults); otherwise the defaults minus those switched off.
  const bool any_on = noise.value_or(false) || tls.value_or(false) || plaintext.value_or(false);
  const bool use_noise = any_on ? noise.value_or(false) : noise.value_or(true);
  const bool use_tls = any_on ? tls.value_or(false) : tls.value_or(true);
  const bool use_plaintext = plaintext.value_or(false);
  options.security_protocols.clear();
  if (use_noise) options.security_protocols.push_back("/noise");
  if (use_tls) options.security_protocols.push_back("/tls/1.0.0");
  if (use_plaintext) options.security_protocols.push_back("/plaintext/2.0.0");
  if (options.security_protocols.empty()) {
    return usage("at least one security protocol must be enabled (-noise, -tls, -plaintext)");
  }
  if (muxer_flag) {
    if (muxers.empty()) return usage("no stream muxer selected");
    options.muxers = muxers;
  }
  if (dht_server) {
    options.dht = node::P2pdDhtMode::kServer;
  } else if (dht_client) {
    options.dht = node::P2pdDhtMode::kClient;
  } else if (dht) {
    options.dht = node::P2pdDhtMode::kAuto;
  }
  if (options.conn_low > options.conn_high) {
    return usage("-connLo " + std::to_string(options.conn_low) + " is above -connHi " +
                 std::to_string(options.conn_high));
  }
  if (options.bootstrap && options.bootstrap_peers.empty()) {
    return usage("-b: no bootstrap peers given (-bootstrapPeers; no public list is built in)");
  }
  return node::run_p2pd(options);
}

}  // namespace an::app
