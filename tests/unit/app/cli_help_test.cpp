// What `help` prints: derived defaults and one-sentence summaries.
#include <gtest/gtest.h>

#include <cctype>

#include "app/cli.h"
#include "app/commands.h"
#include "node/p2pd_process.h"

namespace an::app {
namespace {

TEST(CliHelpTest, NodeOptionHelpShowsEachDerivedDefault) {
  for (const char* command : {"start", "run", "restart"}) {
    const auto& spec = spec_of(command);
    const auto& table = node::node_option_table();
    ASSERT_EQ(spec.options.size(), table.size()) << command;
    const auto help = command_help(spec);
    for (std::size_t i = 0; i < table.size(); ++i) {
      const auto& option = spec.options[i];
      EXPECT_EQ(option.name, table[i].name);
      EXPECT_NE(help.find("  -" + option.name + " " + option.value_name), std::string::npos)
          << option.name;
      const auto value = table[i].format(node::NodeOptions{});
      const auto said = value.empty() ? std::string(table[i].default_note) : value;
      if (said.empty()) {
        EXPECT_EQ(option.help.find("(default"), std::string::npos) << option.help;
      } else {
        EXPECT_NE(option.help.find("(default " + said), std::string::npos) << option.help;
      }
    }
  }
  // The values the SPEC's table promises.
  const auto& options = spec_of("start").options;
  auto help_of = [&](const std::string& name) {
    for (const auto& option : options) {
      if (option.name == name) return option.help;
    }
    return std::string();
  };
  EXPECT_NE(help_of("data").find("(default ./data)"), std::string::npos);
  EXPECT_NE(help_of("listen").find("(default /ip4/0.0.0.0/tcp/0;"), std::string::npos);
  EXPECT_NE(help_of("role").find("(default normal)"), std::string::npos);
  EXPECT_NE(help_of("log-max-size-mb").find("(default 10)"), std::string::npos);
  EXPECT_NE(help_of("log-max-files").find("(default 5)"), std::string::npos);
}

TEST(CliHelpTest, OverviewSummariesAreOneCompleteSentence) {
  for (const auto& spec : all_command_specs()) {
    const auto& summary = spec.summary;
    ASSERT_FALSE(summary.empty()) << spec.name;
    EXPECT_EQ(summary.find('\n'), std::string::npos) << spec.name << ": " << summary;
    EXPECT_EQ(summary.back(), '.') << spec.name << ": " << summary;
    EXPECT_EQ(summary.find(". "), std::string::npos) << spec.name << ": " << summary;
    EXPECT_TRUE(std::isupper(static_cast<unsigned char>(summary.front()))) << summary;
    EXPECT_LE(12 + summary.size(), 100u) << spec.name << ": " << summary;
  }
}

TEST(CliHelpTest, CommandHelpKeepsTheLongerText) {
  const auto restart = command_help(spec_of("restart"));
  EXPECT_NE(restart.find("Stop the node (if running), then start it.\nWithout node options"),
            std::string::npos)
      << restart;
  EXPECT_NE(command_help(spec_of("find")).find("Exit code 1 when the peer is not found."),
            std::string::npos);
}

TEST(CliHelpTest, LongHelpIsWrappedUnderItsOption) {
  const auto help = command_help(spec_of("start"));
  std::size_t start = 0;
  while (start < help.size()) {
    auto end = help.find('\n', start);
    if (end == std::string::npos) end = help.size();
    EXPECT_LE(end - start, 90u) << help.substr(start, end - start);
    start = end + 1;
  }
  EXPECT_NE(help.find("\n  -relay-max-reservations N\n                          relay service"),
            std::string::npos)
      << help;
}

// Help text with every run of spaces and newlines as one space: wrapping aside.
std::string unwrapped(const std::string& text) {
  std::string flat;
  for (char c : text) {
    const bool blank = c == ' ' || c == '\n';
    if (blank && (flat.empty() || flat.back() == ' ')) continue;
    flat += blank ? ' ' : c;
  }
  return flat;
}

TEST(CliHelpTest, P2pdHelpComesFromItsFlagTable) {
  testing::internal::CaptureStdout();
  EXPECT_EQ(command_p2pd({"-h"}), kExitOk);
  const auto help = unwrapped(testing::internal::GetCapturedStdout());
  const node::P2pdOptions defaults;
  const std::vector<std::string> expected_texts{
      "Usage: agentnetwork p2pd [flags]",
      "(default " + defaults.listen + ")",
      "(default " + std::to_string(defaults.conn_low) + ", " + std::to_string(defaults.conn_high) +
          ")",
      "-hostAddrs A,B P2P listen multiaddrs",
      "-noise, -tls, -plaintext security protocols",
      "-b, -bootstrap connect",
      "-connLo N, -connHi N low and high",
      "-pubsubRouter gossipsub|floodsub pubsub router",
      "Refused (not supported yet): -f, -i.",
      "Accepted and ignored: -quic (no QUIC transport yet), ",
      ", -gossipsubHeartbeatInitialDelay.",
  };
  for (const auto& expected : expected_texts) {
    EXPECT_NE(help.find(expected), std::string::npos) << expected << "\n" << help;
  }
}

TEST(CliHelpTest, P2pdFlagErrorsAreUsageErrors) {
  for (const std::vector<std::string>& words :
       std::vector<std::vector<std::string>>{{"-nosuchflag"},
                                             {"-noise=maybe"},
                                             {"-connLo"},
                                             {"-connLo", "5", "-connHi", "4"},
                                             {"-muxer=spdy"},
                                             {"-pubsubRouter=randomsub"},
                                             {"-gossipsubHeartbeatInterval=1"},
                                             {"extra"}}) {
    EXPECT_EQ(command_p2pd(words), kExitUsage) << words.front();
  }
}

}  // namespace
}  // namespace an::app
