// The node option table: every entry reads back what it writes, on the command line and in
// config.json.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "node/options.h"

namespace an::node {
namespace {

constexpr const char* kPeer = "12D3KooWEUV2VXTpixB4s76Jac4XZE2cegCkqnMbizLkfh3ffZED";

// A value other than the default for every option; absolute paths, as the canonical arguments
// make them absolute.
const std::map<std::string, std::string>& sample_texts() {
  static const std::map<std::string, std::string> texts{
      {"data", (std::filesystem::temp_directory_path() / "an-sample").string()},
      {"key", (std::filesystem::temp_directory_path() / "an-sample" / "other.key").string()},
      {"listen", "/ip4/127.0.0.1/tcp/4001,/ip6/::1/tcp/4002"},
      {"bootstrap", std::string("/ip4/10.0.0.1/tcp/4001/p2p/") + kPeer},
      {"role", "relay"},
      {"dht-mode", "server"},
      {"static-relay", std::string("/dns4/relay.example/tcp/4001/p2p/") + kPeer},
      {"relay-max-reservations", "7"},
      {"relay-circuit-duration", "0"},
      {"relay-circuit-bytes", "4096"},
      {"inbox-max-messages", "500"},
      {"daan-network", "off"},
      {"pubsub", "off"},
      {"pubsub-router", "floodsub"},
      {"inbox-max-bytes", "1048576"},
      {"grpc", "127.0.0.1:5000"},
      {"p2pd-listen", "/unix/tmp/an-sample.sock"},
      {"log-max-size-mb", "0.25"},
      {"log-max-files", "12"},
      {"conn-low-water", "10"},
      {"conn-high-water", "20"},
      {"conn-grace", "0.5"},
      {"security", "tls,plaintext"},
      {"muxer", "mplex,yamux"},
      {"max-memory", "512MiB"},
      {"max-fds", "4096"},
      {"limit", "system.conns_inbound=500,peer.memory=16MiB"},
      {"allow", std::string("10.0.0.0/8,") + kPeer},
  };
  return texts;
}

NodeOptions sample_options() {
  NodeOptions options;
  for (const auto& [name, text] : sample_texts()) {
    auto applied = apply_node_option(options, name, text);
    EXPECT_TRUE(applied.has_value()) << name << ": " << applied.error().message;
  }
  return options;
}

// Each option's text, for comparing two settings option by option.
std::map<std::string, std::string> texts_of(const NodeOptions& options) {
  std::map<std::string, std::string> texts;
  for (const auto& option : node_option_table())
    texts[std::string(option.name)] = option.format(options);
  return texts;
}

TEST(OptionTableTest, EveryOptionHasASampleAndADistinctName) {
  std::set<std::string_view> names;
  for (const auto& option : node_option_table()) {
    EXPECT_TRUE(names.insert(option.name).second) << option.name;
    EXPECT_TRUE(sample_texts().count(std::string(option.name))) << option.name;
    EXPECT_EQ(find_node_option(option.name), &option);
  }
  EXPECT_EQ(names.size(), sample_texts().size());
  EXPECT_EQ(find_node_option("colour"), nullptr);
}

TEST(OptionTableTest, SamplesAreNotTheDefaultsAndFormatAsGiven) {
  const auto defaults = texts_of(NodeOptions{});
  const auto samples = texts_of(sample_options());
  for (const auto& [name, text] : sample_texts()) {
    EXPECT_NE(samples.at(name), defaults.at(name)) << name;
    EXPECT_EQ(samples.at(name), text) << name;
  }
}

TEST(OptionTableTest, EveryDefaultReadsBackToItself) {
  const NodeOptions defaults;
  for (const auto& option : node_option_table()) {
    const auto text = option.format(defaults);
    if (text.empty()) continue;  // not set: never written, so never read back
    auto options = sample_options();
    auto applied = option.apply(options, text);
    ASSERT_TRUE(applied.has_value()) << option.name << ": " << applied.error().message;
    EXPECT_EQ(option.format(options), text) << option.name;
  }
}

TEST(OptionTableTest, CanonicalArgumentsReadBackToTheSameOptions) {
  const auto sample = sample_options();
  const auto args = options_to_args(sample);
  ASSERT_EQ(args.size() % 2, 0u);
  NodeOptions reread;
  for (std::size_t i = 0; i < args.size(); i += 2) {
    ASSERT_EQ(args[i].rfind("--", 0), 0u) << args[i];
    auto applied = apply_node_option(reread, args[i].substr(2), args[i + 1]);
    ASSERT_TRUE(applied.has_value()) << args[i] << ": " << applied.error().message;
  }
  EXPECT_EQ(texts_of(reread), texts_of(sample));
}

TEST(OptionTableTest, ConfigJsonReadsBackToTheSameOptions) {
  const auto sample = sample_options();
  const auto json = options_to_config_json(sample);
  EXPECT_FALSE(json.contains("data"));
  EXPECT_TRUE(json["listen"].is_array());
  EXPECT_TRUE(json["log_max_files"].is_number_integer());
  EXPECT_TRUE(json["conn_grace"].is_number_float());
  EXPECT_TRUE(json["role"].is_string());
  NodeOptions reread;
  reread.data_dir = sample.data_dir;
  auto applied = apply_config_json(reread, json);
  ASSERT_TRUE(applied.has_value()) << applied.error().message;
  EXPECT_EQ(texts_of(reread), texts_of(sample));
}

TEST(OptionTableTest, DecimalsKeepTheirPrecision) {
  for (const char* text : {"10", "0.05", "10.123456789", "1048576", "0.001"}) {
    NodeOptions options;
    ASSERT_TRUE(apply_node_option(options, "log-max-size-mb", text)) << text;
    const auto args = options_to_args(options);
    auto at = std::find(args.begin(), args.end(), "--log-max-size-mb");
    ASSERT_NE(at, args.end());
    EXPECT_EQ(*(at + 1), text);
    EXPECT_EQ(options_to_config_json(options)["log_max_size_mb"].get<double>(),
              options.log_max_size_mb);
  }
}

}  // namespace
}  // namespace an::node
