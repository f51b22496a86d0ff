#include "app/cli.h"

#include <cstdio>
#include <iostream>

#include "app/commands.h"
#include "util/version.h"

namespace an::app {
namespace {

OptionSpec value_option(std::string name, std::string value_name, std::string help) {
  return OptionSpec{std::move(name), std::move(value_name), std::move(help), false};
}

OptionSpec flag_option(std::string name, std::string help) {
  return OptionSpec{std::move(name), "", std::move(help), false};
}

CommandSpec command(std::string name, std::string synopsis, std::string summary,
                    std::vector<OptionSpec> options, std::size_t max_positionals = 0,
                    std::string details = "") {
  return CommandSpec{std::move(name),    std::move(synopsis), std::move(summary),
                     std::move(options), max_positionals,     std::move(details)};
}

// A command whose help says more than its summary, above the options.
CommandSpec described(CommandSpec spec, std::string description) {
  spec.description = std::move(description);
  return spec;
}

// Help's "(default ...)" comes from the default options themselves, so it cannot disagree.
OptionSpec node_option_spec(const node::NodeOptionDescriptor& option) {
  const std::string value = option.format(node::NodeOptions{});
  const std::string note(option.default_note);
  const std::string said = value.empty() ? note : note.empty() ? value : value + "; " + note;
  std::string help(option.help);
  if (!said.empty()) help += " (default " + said + ")";
  return OptionSpec{std::string(option.name), std::string(option.value_name), help,
                    option.kind == node::OptionKind::kList};
}

std::vector<OptionSpec> node_option_specs() {
  std::vector<OptionSpec> specs;
  for (const auto& option : node::node_option_table())
    specs.push_back(node_option_spec(option));
  return specs;
}

const char* kNodeDetails =
    "Settings may also come from DIR/config.json (keys named like the options, '_' for '-');\n"
    "command-line options override it.\n";

const char* kApiDetails =
    "The command asks the node running in DIR through its control API (the endpoint is\n"
    "recorded in DIR/node.status). Exit codes: 0 ok, 1 failed, 2 usage error or an argument\n"
    "the node refuses, 3 no node running.\n";

std::vector<CommandSpec> make_specs() {
  auto data = node_option_spec(*node::find_node_option("data"));
  return {
      command("start", "[node options]",
              "Start the node in the background; return once it is ready.", node_option_specs(), 0,
              kNodeDetails),
      command("run", "[node options]", "Run the node in the foreground (Ctrl+C stops it).",
              node_option_specs(), 0, kNodeDetails),
      described(command("stop", "[-data DIR] [-timeout SEC]",
                        "Stop the node gracefully; kill it if it has not exited after the timeout.",
                        {data, value_option("timeout", "SEC",
                                            "seconds to wait before killing (default 10)")}),
                "The node is asked through its control API (Shutdown), else by SIGTERM."),
      described(command("restart", "[node options]", "Stop the node (if running), then start it.",
                        node_option_specs(), 0, kNodeDetails),
                "Without node options other than -data, the options the node was last started\n"
                "with are used again."),
      described(command("status", "[-data DIR] [-json]",
                        "Show the node's status (exit code 0 when running, 3 when not).",
                        {data, flag_option("json", "print JSON (the keys of node.status)")}),
                "Peer count and uptime come live from the node's control API (from node.status\n"
                "when the API does not answer)."),
      command("logs", "[-data DIR] [-n N] [-f]", "Print the last lines of the node's log.",
              {data, value_option("n", "N", "number of lines (default 50)"),
               flag_option("f", "follow the log, across rotations, until interrupted")}),
      command("keygen", "[-data DIR] [-key FILE] [-type TYPE] [-bits N] [-force]",
              "Create the node's private key (libp2p format) and print its peer ID.",
              {data, value_option("key", "FILE", "key file (default DIR/keys/node.key)"),
               value_option("type", "TYPE", "ed25519, rsa, secp256k1 or ecdsa (default ed25519)"),
               value_option("bits", "N", "RSA key size, 2048 to 8192 (default 2048; RSA only)"),
               flag_option("force", "replace an existing key; the old one is kept as FILE.bak")}),
      described(
          command("config", "init|show|validate [-data DIR]",
                  "Write, show or check the node's settings file, DIR/config.json.", {data}, 1),
          "init: write DIR/config.json with the defaults; show: print the effective settings;\n"
          "validate: check DIR/config.json (exit 1 with the reason when it is not valid)."),
      command("id", "[-data DIR] [-json]", "Print the running node's peer ID (asks the node).",
              {data, flag_option("json", "print peer_id, agent_version, listen_addrs, protocols")},
              0, kApiDetails),
      command("peers", "[-data DIR] [-json]",
              "List the peers the running node is connected to, sorted by peer ID.",
              {data, flag_option("json", "print a JSON array with every field of each peer")}, 0,
              kApiDetails),
      described(command("connect", "MULTIADDR [-data DIR]",
                        "Make the running node connect to a peer.", {data}, 1, kApiDetails),
                "MULTIADDR ends in /p2p/<peer id>, which the node checks against the peer it\n"
                "reaches, e.g. /ip4/10.0.0.2/tcp/4001/p2p/12D3KooW..."),
      described(command("ping", "PEER [-n N] [-data DIR]",
                        "Ping a peer through the running node, once a second.",
                        {data, value_option("n", "N", "number of pings, 1-100 (default 3)")}, 1,
                        kApiDetails),
                "PEER is the peer ID of a connected peer, or a multiaddr ending in /p2p/<peer id>\n"
                "(connected to first).\n"
                "Exit code 1 when no ping succeeded."),
      described(command("find", "PEER [-data DIR]",
                        "Find a peer's addresses, from the node's connections or through the DHT.",
                        {data}, 1, kApiDetails),
                "A peer the node is not connected to is looked up by its ID in the Kademlia DHT\n"
                "(up to 60 s), which also connects to it.\n"
                "Exit code 1 when the peer is not found."),
      described(command("resources", "[-data DIR] [-json] [-peers N]",
                        "Show the resource limits and what the running node holds of each.",
                        {data, flag_option("json", "print JSON: scopes, peers, refusals"),
                         value_option("peers", "N", "busiest peers to list, 0-100 (default 10)")},
                        0, kApiDetails),
                "Scopes: system, transient (connections and streams not yet authenticated or\n"
                "negotiated), the allowlisted two, each protocol, and the busiest peers; each\n"
                "cell is used/limit. Refusals count what a limit turned away since the start\n"
                "(docs/security.md)."),
      described(
          command("send", "PEER TEXT|- [-file F] [-data DIR]",
                  "Send a message to a peer's agents (/daan/message/1.0.0).",
                  {data, value_option("file", "F", "send the content of file F")}, 2, kApiDetails),
          "PEER is a peer ID or a multiaddr ending in /p2p/<peer id>; a peer that is not\n"
          "connected is dialled (known addresses, then the DHT). TEXT '-' reads the\n"
          "message from standard input. Returns once the peer has taken the message (an\n"
          "agentnetwork peer stores it in its inbox first). Exit code 1 when the peer\n"
          "cannot be reached or refuses it (for example, its inbox is full)."),
      described(
          command("request", "PEER TEXT|- [-file F] [-timeout SEC] [-data DIR]",
                  "Send a request to a peer's agents and print the answer.",
                  {data, value_option("file", "F", "send the content of file F"),
                   value_option("timeout", "SEC", "wait at most SEC seconds, 1-30 (default 30)")},
                  2, kApiDetails),
          "The answer is printed as it came. When the peer answers with an error (for\n"
          "example \"no handler registered\": no agent serves requests there), its text is\n"
          "printed on stderr and the exit code is 1."),
      described(command("inbox", "[-json] [-n N] [-f] [-take] [-data DIR]",
                        "List the messages agents have not taken yet; follow new ones.",
                        {data, flag_option("json", "print JSON (JSON Lines with -f)"),
                         value_option("n", "N", "list at most N messages, 1-1000 (default 100)"),
                         flag_option("f", "follow: print messages as they arrive, until Ctrl+C"),
                         flag_option("take", "remove the messages printed from the inbox")},
                        0, kApiDetails),
                "Messages wait in DIR/inbox.db (kept across restarts) until an agent takes them.\n"
                "Text: '#ID TIME FROM PAYLOAD'. A payload that is not valid UTF-8 is shown as\n"
                "'(binary, N bytes) base64:...'; in JSON, \"payload\" then holds its base64 and\n"
                "\"payload_encoding\" says \"base64\" (else \"utf-8\")."),
      described(command("advertise", "NAMESPACE [-data DIR]",
                        "Announce this node on the DHT under a namespace, until it stops.", {data},
                        1, kApiDetails),
                "By convention agents advertise \"/daan/capability/NAME\". The node re-announces\n"
                "the namespace before the DHT's provider records expire."),
      described(command("discover", "NAMESPACE [-n N] [-json] [-data DIR]",
                        "Find the peers that advertise a namespace, with their addresses.",
                        {data, value_option("n", "N", "at most N peers, 1-100 (default 20)"),
                         flag_option("json", "print JSON")},
                        1, kApiDetails),
                "Looked up in the Kademlia DHT (up to 60 s)."),
      described(
          command("pub", "TOPIC TEXT|- [-file F] [-raw] [-data DIR]",
                  "Publish a message on a gossipsub topic (broadcast to its subscribers).",
                  {data, value_option("file", "F", "publish the content of file F"),
                   flag_option("raw", "publish the bytes as they are, without the envelope")},
                  2, kApiDetails),
          "TEXT '-' reads the message from standard input. By default the message goes out in\n"
          "the Go AgentNetwork's broadcast envelope (JSON with topic, sender, timestamp and\n"
          "the payload in base64), which its nodes require; -raw publishes the bytes alone,\n"
          "for other libp2p applications. Subscribing is not needed to publish. A topic is\n"
          "1 to 256 bytes; a message at most 1047552 bytes (with its envelope, about three\n"
          "quarters of that)."),
      described(command("sub", "TOPIC [-n N] [-json] [-raw] [-data DIR]",
                        "Subscribe to a gossipsub topic and print its messages as they come.",
                        {data, value_option("n", "N", "exit after N messages"),
                         flag_option("json", "print one JSON object per message (JSON Lines)"),
                         flag_option("raw",
                                     "print the data as it came, without unwrapping the envelope")},
                        1, kApiDetails),
                "The node joins the topic (and relays it) while subscribed; 'subscribed to TOPIC'\n"
                "on stderr says it has. Text: 'FROM  DATA', DATA as text when it is printable\n"
                "UTF-8, else '(binary, N bytes) base64:...'; data that is not an envelope is\n"
                "marked '(not an envelope)'. JSON keys: from, topic, data, data_encoding (utf-8:\n"
                "data is the text; base64: its base64), seqno and id (hex), received_from,\n"
                "sender, timestamp (from the envelope), envelope_malformed, dropped (messages\n"
                "lost before this one because the reader was slow). Runs until Ctrl+C, or N."),
      described(
          command("topics", "[-json] [-data DIR]",
                  "List the gossipsub topics the node has joined, with its peers in each.",
                  {data, flag_option("json", "print JSON, with the peer IDs")}, 0, kApiDetails),
          "PEERS: peers known to be subscribed to the topic; MESH: those in the node's\n"
          "mesh of it, to which it relays messages in full."),
      described(command("p2pd", "[p2pd flags]",
                        "Run the node in the foreground as a libp2p daemon (go-libp2p-daemon's "
                        "protocol).",
                        {}),
                "Its flags are go-libp2p-daemon's; see 'agentnetwork p2pd -h'."),
      command("version", "", "Print the version.", {}),
      command("help", "[COMMAND]", "Show help for all commands or one.", {}, 1),
  };
}

void print_overview(std::FILE* out) {
  std::fprintf(out,
               "agentnetwork %s - a libp2p node for AI agents, managing itself as a daemon\n\n"
               "Usage: agentnetwork COMMAND [options]\n\nCommands:\n",
               kVersion);
  for (const auto& spec : all_command_specs()) {
    std::string left = "  " + spec.name;
    left.resize(12, ' ');
    std::fprintf(out, "%s%s\n", left.c_str(), spec.summary.c_str());
  }
  std::fprintf(out,
               "\nOptions take one dash or two (-data DIR, --data=DIR). "
               "'agentnetwork help COMMAND' or 'COMMAND -h' for details.\n");
}

int command_version(const Words& words) {
  int exit_code = kExitOk;
  if (!parse_or_report("version", words, exit_code)) return exit_code;
  std::printf("agentnetwork %s\n", kVersion);
  return kExitOk;
}

int show_help(const Words& words) {
  int exit_code = kExitOk;
  auto parsed = parse_or_report("help", words, exit_code);
  if (!parsed) return exit_code;
  if (parsed->positionals.empty()) {
    print_overview(stdout);
    return kExitOk;
  }
  const auto& name = parsed->positionals[0];
  for (const auto& spec : all_command_specs()) {
    if (spec.name == name) {
      std::fputs(command_help(spec).c_str(), stdout);
      return kExitOk;
    }
  }
  print_error("unknown command \"" + name + "\" (see: agentnetwork help)");
  return kExitUsage;
}

}  // namespace

const std::vector<CommandSpec>& all_command_specs() {
  static const std::vector<CommandSpec> specs = make_specs();
  return specs;
}

const CommandSpec& spec_of(const std::string& command) {
  for (const auto& spec : all_command_specs()) {
    if (spec.name == command) return spec;
  }
  std::abort();  // programming error: every command has a spec
}

void print_error(const std::string& message) {
  std::fprintf(stderr, "error: %s\n", message.c_str());
}

std::optional<ParsedArgs> parse_or_report(const std::string& command, const Words& words,
                                          int& exit_code) {
  const auto& spec = spec_of(command);
  auto parsed = parse_args(spec, words);
  if (!parsed) {
    print_error(parsed.error().message);
    exit_code = kExitUsage;
    return std::nullopt;
  }
  if (parsed->help) {
    std::fputs(command_help(spec).c_str(), stdout);
    exit_code = kExitOk;
    return std::nullopt;
  }
  return std::move(*parsed);
}

int run_cli(int argc, char** argv) {
  Words words(argv + 1, argv + argc);
  if (words.empty()) {
    print_overview(stderr);
    return kExitUsage;
  }
  std::string command = words.front();
  words.erase(words.begin());
  if (command == "-h" || command == "--help" || command == "-help") return show_help({});
  if (command == "-version" || command == "--version") return command_version({});

  using Handler = int (*)(const Words&);
  static const std::vector<std::pair<std::string, Handler>> handlers{
      {"start", command_start},
      {"run", command_run},
      {"stop", command_stop},
      {"restart", command_restart},
      {"status", command_status},
      {"logs", command_logs},
      {"keygen", command_keygen},
      {"config", command_config},
      {"id", command_id},
      {"peers", command_peers},
      {"connect", command_connect},
      {"ping", command_ping},
      {"find", command_find},
      {"resources", command_resources},
      {"send", command_send},
      {"request", command_request},
      {"inbox", command_inbox},
      {"advertise", command_advertise},
      {"discover", command_discover},
      {"pub", command_pub},
      {"sub", command_sub},
      {"topics", command_topics},
      {"p2pd", command_p2pd},
      {"version", command_version},
      {"help", show_help},
  };
  for (const auto& [name, handler] : handlers) {
    if (name == command) {
      try {
        return handler(words);
      } catch (const std::exception& e) {
        print_error(std::string("unexpected failure: ") + e.what());
        return kExitFailure;
      }
    }
  }
  print_error("unknown command \"" + command + "\" (see: agentnetwork help)");
  return kExitUsage;
}

}  // namespace an::app
