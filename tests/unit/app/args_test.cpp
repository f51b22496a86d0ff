#include "app/args.h"

#include <gtest/gtest.h>

namespace an::app {
namespace {

CommandSpec test_spec() {
  return CommandSpec{"start",
                     "[opts]",
                     "Test command.",
                     {OptionSpec{"data", "DIR", "data directory", false},
                      OptionSpec{"listen", "A,B", "listen", true},
                      OptionSpec{"json", "", "json", false}, OptionSpec{"n", "N", "count", false}},
                     1,
                     ""};
}

TEST(ArgsTest, OneOrTwoDashesWithSeparateOrInlineValues) {
  for (const auto& words : std::vector<std::vector<std::string>>{
           {"-data", "x"}, {"--data", "x"}, {"-data=x"}, {"--data=x"}}) {
    auto parsed = parse_args(test_spec(), words);
    ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
    EXPECT_EQ(parsed->value("data"), "x");
  }
}

TEST(ArgsTest, FlagsPositionalsAndHelp) {
  auto parsed = parse_args(test_spec(), {"-json", "init", "-n", "-5"});
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_TRUE(parsed->has("json"));
  EXPECT_EQ(parsed->value("n"), "-5");  // a value may start with a dash
  EXPECT_EQ(parsed->positionals, std::vector<std::string>{"init"});
  EXPECT_FALSE(parsed->help);
  for (const char* help : {"-h", "--help", "-help"}) {
    auto asked = parse_args(test_spec(), {help});
    ASSERT_TRUE(asked.has_value());
    EXPECT_TRUE(asked->help);
  }
}

TEST(ArgsTest, RepeatableOptionsAccumulate) {
  auto parsed = parse_args(test_spec(), {"-listen", "a", "--listen=b"});
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->value("listen"), "a,b");
  auto twice = parse_args(test_spec(), {"-data", "a", "-data", "b"});
  ASSERT_FALSE(twice.has_value());
  EXPECT_NE(twice.error().message.find("more than once"), std::string::npos);
}

TEST(ArgsTest, ErrorsNameTheBadWord) {
  struct Case {
    std::vector<std::string> words;
    const char* expected;
  };
  const Case cases[] = {
      {{"-bogus"}, "-bogus"},       {{"--bogus=1"}, "--bogus=1"},
      {{"-data"}, "needs a value"}, {{"-json=yes"}, "takes no value"},
      {{"one", "two"}, "\"two\""},
  };
  for (const auto& c : cases) {
    auto parsed = parse_args(test_spec(), c.words);
    ASSERT_FALSE(parsed.has_value()) << c.words.front();
    EXPECT_NE(parsed.error().message.find(c.expected), std::string::npos) << parsed.error().message;
  }
}

TEST(ArgsTest, DoubleDashEndsOptions) {
  auto parsed = parse_args(test_spec(), {"--", "-data"});
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->positionals, std::vector<std::string>{"-data"});
}

TEST(ArgsTest, HelpTextListsOptions) {
  auto text = command_help(test_spec());
  EXPECT_NE(text.find("Usage: agentnetwork start [opts]"), std::string::npos);
  EXPECT_NE(text.find("-data DIR"), std::string::npos);
  EXPECT_NE(text.find("-h, --help"), std::string::npos);
}

}  // namespace
}  // namespace an::app
