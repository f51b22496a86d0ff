#include "node/options.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "support/temp_dir.h"

namespace an::node {
namespace {

constexpr const char* kPeer = "12D3KooWEUV2VXTpixB4s76Jac4XZE2cegCkqnMbizLkfh3ffZED";

TEST(OptionsTest, DefaultsMatchTheSpec) {
  NodeOptions options;
  EXPECT_EQ(options.data_dir, "./data");
  EXPECT_TRUE(options.key_file.empty());
  EXPECT_EQ(options.listen, std::vector<std::string>{"/ip4/0.0.0.0/tcp/0"});
  EXPECT_TRUE(options.bootstrap.empty());
  EXPECT_EQ(options.role, Role::kNormal);
  EXPECT_EQ(options.log_max_size_mb, 10);
  EXPECT_EQ(options.log_max_files, 5);
  EXPECT_TRUE(validate_for_start(options).has_value());
  EXPECT_EQ(effective_key_file(options), std::filesystem::current_path() / "data/keys/node.key");
}

TEST(OptionsTest, AcceptsGoodValues) {
  NodeOptions options;
  ASSERT_TRUE(apply_node_option(options, "listen", "/ip4/127.0.0.1/tcp/9001, /ip6/::1/tcp/0"));
  EXPECT_EQ(options.listen,
            (std::vector<std::string>{"/ip4/127.0.0.1/tcp/9001", "/ip6/::1/tcp/0"}));
  ASSERT_TRUE(apply_node_option(options, "role", "relay"));
  EXPECT_EQ(options.role, Role::kRelay);
  ASSERT_TRUE(apply_node_option(options, "log-max-size-mb", "0.05"));
  EXPECT_DOUBLE_EQ(options.log_max_size_mb, 0.05);
  ASSERT_TRUE(apply_node_option(options, "log-max-files", "12"));
  EXPECT_EQ(options.log_max_files, 12);
  ASSERT_TRUE(apply_node_option(options, "bootstrap",
                                std::string("/ip4/10.0.0.1/tcp/4001/p2p/") + kPeer + "," +
                                    "/dns4/boot.example/tcp/4001/p2p/" + kPeer));
  EXPECT_EQ(options.bootstrap.size(), 2u);
}

TEST(OptionsTest, RejectsBadValuesNamingThem) {
  struct Case {
    const char* name;
    const char* value;
    const char* expected_in_error;
  };
  const Case cases[] = {
      {"listen", "/ip4/1.2.3/tcp/1", "1.2.3"},
      {"listen", "/ip4/127.0.0.1/tcp/70000", "70000"},
      {"listen", "/ip4/127.0.0.1/udp/4001/quic-v1", "not supported yet"},
      {"listen", "/dns4/example.com/tcp/1", "/dns4/example.com/tcp/1"},
      {"listen", "/ip4/127.0.0.1/tcp/1,/ip4/127.0.0.1/tcp/1", "twice"},
      {"listen", "", "no address"},
      {"listen", "garbage", "garbage"},
      {"role", "boss", "boss"},
      {"bootstrap", "/ip4/127.0.0.1/tcp/4001", "/p2p/"},
      {"bootstrap", "/ip4/127.0.0.1/tcp/4001/p2p/notapeerid", "notapeerid"},
      {"log-max-size-mb", "-5", "-5"},
      {"log-max-size-mb", "0", "\"0\""},
      {"log-max-size-mb", "ten", "ten"},
      {"log-max-files", "0", "\"0\""},
      {"log-max-files", "2.5", "2.5"},
      {"grpc", "localhost", "localhost"},
      {"data", "", "-data"},
      {"colour", "blue", "colour"},
  };
  for (const auto& c : cases) {
    NodeOptions options;
    auto applied = apply_node_option(options, c.name, c.value);
    ASSERT_FALSE(applied.has_value()) << c.name << "=" << c.value;
    EXPECT_NE(applied.error().message.find(c.expected_in_error), std::string::npos)
        << applied.error().message;
    EXPECT_EQ(applied.error().message.find('\n'), std::string::npos);
  }
}

TEST(OptionsTest, P2pdListenIsAUnixSocketOrLoopbackTcp) {
  NodeOptions options;
  EXPECT_TRUE(options.p2pd_listen.empty());
  ASSERT_TRUE(apply_node_option(options, "p2pd-listen", "/unix/tmp/node-p2pd.sock"));
  EXPECT_EQ(options.p2pd_listen, "/unix/tmp/node-p2pd.sock");
  ASSERT_TRUE(apply_node_option(options, "p2pd-listen", "/ip4/127.0.0.1/tcp/5001"));
  ASSERT_TRUE(apply_node_option(options, "p2pd-listen", "/ip6/::1/tcp/0"));
  auto args = options_to_args(options);
  auto found = std::find(args.begin(), args.end(), "--p2pd-listen");
  ASSERT_NE(found, args.end());
  EXPECT_EQ(*(found + 1), "/ip6/::1/tcp/0");
  EXPECT_EQ(options_to_config_json(options)["p2pd_listen"], "/ip6/::1/tcp/0");

  for (const char* bad :
       {"/ip4/0.0.0.0/tcp/5001", "/dns4/localhost/tcp/1", "/ip4/127.0.0.1", "tmp/p2pd.sock"}) {
    auto refused = apply_node_option(options, "p2pd-listen", bad);
    ASSERT_FALSE(refused) << bad;
    EXPECT_NE(refused.error().message.find("-p2pd-listen"), std::string::npos) << bad;
  }
  EXPECT_EQ(options.p2pd_listen, "/ip6/::1/tcp/0");
  EXPECT_FALSE(options_to_config_json(NodeOptions{}).contains("p2pd_listen"));
}

TEST(OptionsTest, GrpcEndpointIsValidatedWhenApplied) {
  NodeOptions options;
  ASSERT_TRUE(
      apply_node_option(options, "bootstrap", std::string("/ip4/127.0.0.1/tcp/1/p2p/") + kPeer));
  EXPECT_TRUE(validate_for_start(options).has_value());
  NodeOptions with_grpc;
  ASSERT_TRUE(apply_node_option(with_grpc, "grpc", "127.0.0.1:5000"));
  EXPECT_TRUE(validate_for_start(with_grpc).has_value());
  EXPECT_EQ(with_grpc.grpc, "127.0.0.1:5000");
  for (const char* bad : {"5000", "127.0.0.1:", "127.0.0.1:70000", ":5000", "host:port"}) {
    NodeOptions rejected;
    auto applied = apply_node_option(rejected, "grpc", bad);
    ASSERT_FALSE(applied.has_value()) << bad;
    EXPECT_NE(applied.error().message.find(bad), std::string::npos) << applied.error().message;
  }
}

TEST(OptionsTest, ConfigJsonUsesUnderscoresAndChecksTypes) {
  NodeOptions options;
  options.data_dir = "/srv/n";
  auto config = nlohmann::json::parse(R"({"listen": ["/ip4/127.0.0.1/tcp/1"], "role": "bootstrap",
      "log_max_size_mb": 2, "log_max_files": 3, "key": "keys/other.key", "bootstrap": []})");
  ASSERT_TRUE(apply_config_json(options, config));
  EXPECT_EQ(options.listen, std::vector<std::string>{"/ip4/127.0.0.1/tcp/1"});
  EXPECT_EQ(options.role, Role::kBootstrap);
  EXPECT_EQ(options.log_max_size_mb, 2);
  EXPECT_EQ(options.log_max_files, 3);
  EXPECT_EQ(options.key_file, "/srv/n/keys/other.key");

  for (const char* bad :
       {R"({"colour": 1})", R"({"role": 5})", R"({"listen": [1]})", R"({"log_max_files": true})",
        R"({"data": "/x"})", R"([1,2])", R"({"log_max_files": -1})"}) {
    NodeOptions fresh;
    auto applied = apply_config_json(fresh, nlohmann::json::parse(bad));
    ASSERT_FALSE(applied.has_value()) << bad;
    EXPECT_EQ(applied.error().message.rfind("config.json: ", 0), 0u) << applied.error().message;
  }
}

TEST(OptionsTest, ConfigFileErrorsNameTheFile) {
  test::TempDir dir;
  auto path = dir.path() / "config.json";
  NodeOptions options;
  EXPECT_TRUE(apply_config_file(options, path));  // missing file: defaults
  std::ofstream(path) << "{not json";
  auto applied = apply_config_file(options, path);
  ASSERT_FALSE(applied.has_value());
  EXPECT_NE(applied.error().message.find(path.string()), std::string::npos);
}

TEST(OptionsTest, InitContentRoundTrips) {
  NodeOptions defaults;
  NodeOptions reread;
  ASSERT_TRUE(apply_config_json(reread, options_to_config_json(defaults)));
  EXPECT_EQ(reread.listen, defaults.listen);
  EXPECT_EQ(reread.role, defaults.role);
  EXPECT_EQ(reread.log_max_files, defaults.log_max_files);
}

TEST(OptionsTest, ListenAddressParsing) {
  auto v4 = parse_listen_address("/ip4/0.0.0.0/tcp/0");
  ASSERT_TRUE(v4.has_value());
  EXPECT_FALSE(v4->ipv6);
  EXPECT_EQ(v4->host, "0.0.0.0");
  EXPECT_EQ(v4->port, 0);
  auto v6 = parse_listen_address("/ip6/::1/tcp/4001");
  ASSERT_TRUE(v6.has_value());
  EXPECT_TRUE(v6->ipv6);
  EXPECT_EQ(v6->port, 4001);
  EXPECT_FALSE(parse_listen_address(std::string("/ip4/127.0.0.1/tcp/1/p2p/") + kPeer).has_value());
}

TEST(OptionsTest, CanonicalArgumentsHaveAbsolutePaths) {
  NodeOptions options;
  options.data_dir = "rel";
  auto args = options_to_args(options);
  ASSERT_GE(args.size(), 2u);
  EXPECT_EQ(args[0], "--data");
  EXPECT_TRUE(std::filesystem::path(args[1]).is_absolute());
}

TEST(OptionsTest, ConnectionLimits) {
  NodeOptions options;
  EXPECT_EQ(options.conn_low_water, 100);
  EXPECT_EQ(options.conn_high_water, 400);
  EXPECT_EQ(options.conn_grace_seconds, 20);
  ASSERT_TRUE(apply_node_option(options, "conn-low-water", "10"));
  ASSERT_TRUE(apply_node_option(options, "conn-high-water", "20"));
  ASSERT_TRUE(apply_node_option(options, "conn-grace", "0.5"));
  EXPECT_TRUE(validate_for_start(options).has_value());
  for (auto [name, value] :
       std::vector<std::pair<const char*, const char*>>{{"conn-low-water", "0"},
                                                        {"conn-high-water", "-3"},
                                                        {"conn-high-water", "1e3"},
                                                        {"conn-low-water", "100001"},
                                                        {"conn-grace", "-1"},
                                                        {"conn-grace", "soon"}}) {
    NodeOptions rejected;
    auto applied = apply_node_option(rejected, name, value);
    ASSERT_FALSE(applied.has_value()) << name << " " << value;
    EXPECT_NE(applied.error().message.find(value), std::string::npos) << applied.error().message;
  }
  NodeOptions inverted;
  ASSERT_TRUE(apply_node_option(inverted, "conn-low-water", "50"));
  ASSERT_TRUE(apply_node_option(inverted, "conn-high-water", "10"));
  auto valid = validate_for_start(inverted);
  ASSERT_FALSE(valid.has_value());
  EXPECT_NE(valid.error().message.find("above -conn-high-water"), std::string::npos);

  // config.json keys and the canonical arguments carry them.
  NodeOptions from_config;
  ASSERT_TRUE(apply_config_json(
      from_config,
      nlohmann::json::parse(R"({"conn_low_water": 7, "conn_high_water": 9, "conn_grace": 3})")));
  EXPECT_EQ(from_config.conn_low_water, 7);
  EXPECT_EQ(from_config.conn_high_water, 9);
  EXPECT_EQ(from_config.conn_grace_seconds, 3);
  auto args = options_to_args(from_config);
  auto value_after = [&](const std::string& flag) {
    auto found = std::find(args.begin(), args.end(), flag);
    return found == args.end() || found + 1 == args.end() ? std::string() : *(found + 1);
  };
  EXPECT_EQ(value_after("--conn-low-water"), "7");
  EXPECT_EQ(value_after("--conn-high-water"), "9");
  EXPECT_EQ(value_after("--conn-grace"), "3");
}

TEST(OptionsTest, DhtModeAndListenNone) {
  NodeOptions options;
  EXPECT_EQ(options.dht_mode, DhtModeSetting::kAuto);
  EXPECT_TRUE(dht_server_mode(options));
  ASSERT_TRUE(apply_node_option(options, "listen", "none"));
  EXPECT_TRUE(options.listen.empty());
  EXPECT_FALSE(dht_server_mode(options));
  ASSERT_TRUE(apply_node_option(options, "dht-mode", "server"));
  EXPECT_TRUE(dht_server_mode(options));
  EXPECT_TRUE(validate_for_start(options).has_value());
  auto args = options_to_args(options);
  auto listen = std::find(args.begin(), args.end(), "--listen");
  ASSERT_NE(listen, args.end());
  EXPECT_EQ(*(listen + 1), "none");

  auto bad = apply_node_option(options, "dht-mode", "maybe");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("expected auto, client or server"), std::string::npos);

  NodeOptions relay;
  ASSERT_TRUE(apply_node_option(relay, "role", "relay"));
  EXPECT_TRUE(dht_server_mode(relay));
  ASSERT_TRUE(apply_node_option(relay, "dht-mode", "client"));
  auto refused = validate_for_start(relay);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("serves the DHT"), std::string::npos);
  NodeOptions bootstrap;
  ASSERT_TRUE(apply_node_option(bootstrap, "role", "bootstrap"));
  ASSERT_TRUE(apply_node_option(bootstrap, "listen", "none"));
  refused = validate_for_start(bootstrap);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("needs a listen address"), std::string::npos);

  NodeOptions from_config;
  ASSERT_TRUE(apply_config_json(from_config,
                                nlohmann::json::parse(R"({"listen": [], "dht_mode": "client"})")));
  EXPECT_TRUE(from_config.listen.empty());
  EXPECT_EQ(from_config.dht_mode, DhtModeSetting::kClient);
}

TEST(OptionsTest, RelaySettings) {
  NodeOptions options;
  EXPECT_EQ(options.relay_max_reservations, 128);
  EXPECT_EQ(options.relay_circuit_duration_seconds, 120);
  EXPECT_EQ(options.relay_circuit_bytes, 128 * 1024);
  const std::string relay = std::string("/ip4/127.0.0.1/tcp/4001/p2p/") + kPeer;
  ASSERT_TRUE(apply_node_option(options, "static-relay", relay));
  EXPECT_EQ(options.static_relays, std::vector<std::string>{relay});
  ASSERT_TRUE(apply_node_option(options, "relay-max-reservations", "2"));
  ASSERT_TRUE(apply_node_option(options, "relay-circuit-duration", "0"));
  ASSERT_TRUE(apply_node_option(options, "relay-circuit-bytes", "4096"));
  auto args = options_to_args(options);
  auto value_after = [&](const std::string& flag) {
    auto found = std::find(args.begin(), args.end(), flag);
    return found == args.end() || found + 1 == args.end() ? std::string() : *(found + 1);
  };
  EXPECT_EQ(value_after("--static-relay"), relay);
  EXPECT_EQ(value_after("--relay-max-reservations"), "2");
  EXPECT_EQ(value_after("--relay-circuit-duration"), "0");
  EXPECT_EQ(value_after("--relay-circuit-bytes"), "4096");
  for (auto [name, value] : std::vector<std::pair<const char*, std::string>>{
           {"static-relay", "/ip4/127.0.0.1/tcp/4001"},
           {"static-relay", relay + "/p2p-circuit/p2p/" + kPeer},
           {"relay-max-reservations", "0"},
           {"relay-circuit-duration", "-1"},
           {"relay-circuit-bytes", "lots"}}) {
    NodeOptions rejected;
    auto applied = apply_node_option(rejected, name, value);
    ASSERT_FALSE(applied.has_value()) << name << " " << value;
    EXPECT_NE(applied.error().message.find(name), std::string::npos) << applied.error().message;
  }
}

}  // namespace
TEST(OptionsTest, SecurityAndMuxerLists) {
  NodeOptions options;
  EXPECT_EQ(security_protocol_ids(options), (std::vector<std::string>{"/noise", "/tls/1.0.0"}));
  EXPECT_EQ(muxer_protocol_ids(options), std::vector<std::string>{"/yamux/1.0.0"});
  EXPECT_FALSE(plaintext_enabled(options));
  ASSERT_TRUE(apply_node_option(options, "security", "tls,noise,plaintext"));
  EXPECT_EQ(security_protocol_ids(options),
            (std::vector<std::string>{"/tls/1.0.0", "/noise", "/plaintext/2.0.0"}));
  EXPECT_TRUE(plaintext_enabled(options));
  ASSERT_TRUE(apply_node_option(options, "muxer", "mplex,yamux"));
  EXPECT_EQ(muxer_protocol_ids(options),
            (std::vector<std::string>{"/mplex/6.7.0", "/yamux/1.0.0"}));

  auto unknown = apply_node_option(options, "security", "noise,ssl");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("\"ssl\""), std::string::npos);
  EXPECT_FALSE(apply_node_option(options, "security", ""));
  EXPECT_FALSE(apply_node_option(options, "muxer", "yamux,yamux"));
  EXPECT_FALSE(apply_node_option(options, "muxer", "spdy"));
  // A refused value leaves the previous setting alone.
  EXPECT_EQ(options.muxers, (std::vector<std::string>{"mplex", "yamux"}));

  NodeOptions from_json;
  ASSERT_TRUE(
      apply_config_json(from_json, nlohmann::json::parse(R"({"security":["tls","noise"]})")));
  EXPECT_EQ(from_json.security, (std::vector<std::string>{"tls", "noise"}));
  EXPECT_FALSE(apply_config_json(from_json, nlohmann::json::parse(R"({"muxer":[]})")));
  auto args = options_to_args(options);
  auto at = std::find(args.begin(), args.end(), "--security");
  ASSERT_NE(at, args.end());
  EXPECT_EQ(*(at + 1), "tls,noise,plaintext");
}

TEST(OptionsTest, ResourceLimitOptions) {
  NodeOptions options;
  ASSERT_TRUE(apply_node_option(options, "max-memory", "512MiB"));
  EXPECT_EQ(options.max_memory_bytes, 512ll * 1024 * 1024);
  ASSERT_TRUE(apply_node_option(options, "max-fds", "4096"));
  ASSERT_TRUE(apply_node_option(options, "limit", "system.conns_inbound=500, gate.rate_per_ip=1"));
  ASSERT_TRUE(apply_node_option(options, "allow", std::string("10.0.0.0/8,") + kPeer));
  auto limits = resource_limits(options);
  EXPECT_EQ(limits.system.conns_inbound, 500);
  EXPECT_DOUBLE_EQ(limits.gate.rate_per_ip, 1.0);
  // The rest scaled to 512 MiB and 4,096 descriptors, as go's Scale does.
  EXPECT_EQ(limits.system.conns_outbound, 128 + (128 * 512) / 1024);
  EXPECT_EQ(limits.system.fds, 4096);
  ASSERT_EQ(limits.allowed_networks.size(), 1u);
  EXPECT_EQ(limits.allowed_networks[0].to_string(), "10.0.0.0/8");
  EXPECT_EQ(limits.allowed_peers, std::vector<std::string>{kPeer});

  // config.json carries them like the command line.
  auto json = options_to_config_json(options);
  EXPECT_EQ(json["max_memory"], "512MiB");
  EXPECT_EQ(json["limit"].size(), 2u);
  NodeOptions reread;
  ASSERT_TRUE(apply_config_json(reread, json));
  EXPECT_EQ(reread.max_memory_bytes, options.max_memory_bytes);
  EXPECT_EQ(reread.limits, options.limits);
  EXPECT_EQ(reread.allow, options.allow);
  // Unset, they are left out.
  EXPECT_FALSE(options_to_config_json(NodeOptions{}).contains("max_memory"));
}

TEST(OptionsTest, BadResourceLimitOptionsAreRefusedNamingThem) {
  struct Case {
    const char* name;
    const char* value;
    const char* expected_in_error;
  };
  const Case cases[] = {
      {"max-memory", "lots", "-max-memory"},
      {"max-memory", "1MiB", "at least 16MiB"},
      {"max-fds", "-1", "-max-fds"},
      {"limit", "system.conns_inbound", "SCOPE.RESOURCE=VALUE"},
      {"limit", "galaxy.memory=1", "unknown scope"},
      {"limit", "peer.memory=much", "bad value"},
      {"allow", "10.0.0.0/40", "10.0.0.0/40"},
      {"allow", "nobody", "nobody"},
  };
  for (const auto& c : cases) {
    NodeOptions options;
    auto result = apply_node_option(options, c.name, c.value);
    ASSERT_FALSE(result) << c.name << " " << c.value;
    EXPECT_NE(result.error().message.find(c.expected_in_error), std::string::npos)
        << result.error().message;
    EXPECT_EQ(options.max_memory_bytes, 0);
    EXPECT_TRUE(options.limits.empty());
    EXPECT_TRUE(options.allow.empty());
  }
}

}  // namespace an::node
