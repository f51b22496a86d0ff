// Node settings (SPEC §1): defaults, the command-line and config.json spellings, validation.
// Value types; any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "p2p/rcmgr/limits.h"
#include "util/expected.h"

namespace an::node {

enum class Role { kNormal, kRelay, kBootstrap };
std::string_view role_name(Role role);

// -dht-mode: auto = server when the node listens (always for the bootstrap and relay roles),
// client otherwise.
enum class DhtModeSetting { kAuto, kClient, kServer };
std::string_view dht_mode_setting_name(DhtModeSetting mode);

// -pubsub-router: gossipsub (which serves floodsub peers too) or plain floodsub.
enum class PubSubRouterSetting { kGossipSub, kFloodSub };
std::string_view pubsub_router_setting_name(PubSubRouterSetting router);

struct NodeOptions {
  std::filesystem::path data_dir = "./data";
  std::filesystem::path key_file;  // empty: DIR/keys/node.key
  // Empty ("-listen none"): the node only dials out.
  std::vector<std::string> listen{"/ip4/0.0.0.0/tcp/0"};
  std::vector<std::string> bootstrap;
  Role role = Role::kNormal;
  DhtModeSetting dht_mode = DhtModeSetting::kAuto;
  // Join the DAAN network: advertise /daan/1.0.0 and dial the DAAN nodes found, as the Go node
  // does. Off, agents' own namespaces still work (advertise, discover).
  bool daan_network = true;
  // Publish/subscribe (gossipsub, with floodsub peers served): on, the node joins the topics
  // its clients subscribe to and relays their messages.
  bool pubsub = true;
  PubSubRouterSetting pubsub_router = PubSubRouterSetting::kGossipSub;
  std::string grpc;  // empty: the default endpoint
  // The libp2p daemon control protocol (p2pd clients) on /unix/PATH or /ip4|ip6/A/tcp/P;
  // empty: not served.
  std::string p2pd_listen;
  double log_max_size_mb = 10;
  int log_max_files = 5;
  // Connection manager (SPEC §4): above high water, trim down to low water; peers younger than
  // the grace period are kept.
  int conn_low_water = 100;
  int conn_high_water = 400;
  double conn_grace_seconds = 20;
  // Circuit relay v2. Relays this node holds a reservation on (each a full multiaddr with
  // /p2p/), so that peers can reach it through them.
  std::vector<std::string> static_relays;
  // The hop service of the relay and bootstrap roles (go-libp2p's defaults): reservations held
  // at once, and each relayed connection's limits (0: none).
  int relay_max_reservations = 128;
  int relay_circuit_duration_seconds = 120;
  std::int64_t relay_circuit_bytes = 128 * 1024;
  // Security protocols and muxers offered, by short name, in order of preference (-security,
  // -muxer). "plaintext" is never a default: it gives up encryption and authentication.
  std::vector<std::string> security{"noise", "tls"};
  std::vector<std::string> muxers{"yamux"};
  // The resource manager (docs/security.md): the memory and descriptor budgets its default
  // limits scale from (0: an eighth of physical memory, half the descriptor limit, as go's
  // AutoScale), overrides of single limits ("system.conns_inbound=256"), and addresses (CIDR)
  // or peer IDs given the allowlisted scopes.
  std::int64_t max_memory_bytes = 0;
  std::int64_t max_fds = 0;
  std::vector<std::string> limits;
  std::vector<std::string> allow;
  // The agents' inbox (DIR/inbox.db): messages kept until an agent takes them; past either
  // limit new messages are refused (the sender's stream is reset), stored ones are kept.
  std::int64_t inbox_max_messages = 10'000;
  std::int64_t inbox_max_bytes = 256 * 1024 * 1024;
};

// Short names of -security and -muxer and the protocol IDs they stand for.
std::vector<std::string> security_protocol_ids(const NodeOptions& options);
std::vector<std::string> muxer_protocol_ids(const NodeOptions& options);
// Whether -security includes plaintext (start warns about it).
bool plaintext_enabled(const NodeOptions& options);

// How an option's text maps to config.json and to the canonical command line.
enum class OptionKind {
  kText,     // a JSON string; empty text means not set, and the key is left out
  kPath,     // kText, made absolute on the canonical command line; in config.json, relative
             // to the data directory
  kChoice,   // a JSON string, one of a few words
  kList,     // comma separated on the command line, a JSON array of strings in config.json
  kInteger,  // a JSON number
  kDecimal,  // a JSON number
};

// One node option. The command line, config.json, help and `restart` all work from this table,
// so adding an option is one entry.
struct NodeOptionDescriptor {
  std::string_view name;        // as written after the dashes; config.json has '_' for '-'
  std::string_view value_name;  // in help: "N", "A,B"
  std::string_view help;        // without the default, which help adds from `format`
  OptionKind kind;
  // Sets the option from its text; the error is one line naming the option and the bad value.
  Expected<void> (*apply)(NodeOptions& options, std::string_view text);
  // The option's text (apply reads it back to the same value); empty when not set, e.g. no
  // -grpc stands for the default endpoint.
  std::string (*format)(const NodeOptions& options);
  // What help says of the default besides its text, or instead of it when it is not set.
  std::string_view default_note = {};
  // For lists whose empty text means something else: the text of no items ("none").
  std::string_view empty_list_text = {};
  // -data is not: config.json lives in the data directory.
  bool in_config_file = true;
};

// Every node option, in the order of the canonical command line.
const std::vector<NodeOptionDescriptor>& node_option_table();

// The option named `name` (as written after the dashes); nullptr when there is none.
const NodeOptionDescriptor* find_node_option(std::string_view name);

// Sets one option from its text. `name` is the command-line spelling ("log-max-size-mb"); the
// error is one line naming the option and the bad value.
Expected<void> apply_node_option(NodeOptions& options, std::string_view name,
                                 std::string_view value);

// An option's text as the detached node and `restart` are given it: paths made absolute, as
// they run in another working directory.
std::string canonical_option_text(const NodeOptionDescriptor& option, std::string_view text);

// Applies DIR/config.json's content (keys as the options, '_' for '-'); unknown keys and bad
// values are errors naming the key.
Expected<void> apply_config_json(NodeOptions& options, const nlohmann::json& config);

// Reads and applies `config_file` when it exists.
Expected<void> apply_config_file(NodeOptions& options, const std::filesystem::path& config_file);

// The settings as config.json content (for `config init` / `config show`).
nlohmann::json options_to_config_json(const NodeOptions& options);

// Checks what can only be judged as a whole, and what this version cannot serve yet.
Expected<void> validate_for_start(const NodeOptions& options);

// The resource manager's limits: the defaults scaled to -max-memory and -max-fds (or to this
// machine), then -limit's overrides and -allow's entries.
p2p::rcmgr::LimitConfig resource_limits(const NodeOptions& options);

// Whether the node serves the DHT (see DhtModeSetting); for validated options.
bool dht_server_mode(const NodeOptions& options);

// Canonical command-line form ("--listen", "a,b", ...), with absolute paths, for the detached
// node and for `restart`.
std::vector<std::string> options_to_args(const NodeOptions& options);

// The key file in effect: -key, or DIR/keys/node.key.
std::filesystem::path effective_key_file(const NodeOptions& options);

// A -p2pd-listen value: empty, /unix/PATH or /ip4|ip6/ADDRESS/tcp/PORT.
Expected<void> check_p2pd_listen(std::string_view text);

// A listen address this version can bind.
struct TcpListenAddress {
  bool ipv6 = false;
  std::string host;  // numeric
  unsigned short port = 0;
};
Expected<TcpListenAddress> parse_listen_address(std::string_view multiaddr);

}  // namespace an::node
