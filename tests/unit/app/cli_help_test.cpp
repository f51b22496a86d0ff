// What `help` prints: one-sentence summaries.
#include <gtest/gtest.h>

#include <cctype>

#include "app/commands.h"

namespace an::app {
namespace {

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

}  // namespace
}  // namespace an::app
