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

// p2pd's flags: Go's flag package syntax.
CommandSpec go_spec() {
  return CommandSpec{"p2pd",
                     "",
                     "Test daemon.",
                     {OptionSpec{"x", "", "a boolean"}, OptionSpec{"name", "V", "a value"}},
                     0,
                     "",
                     "",
                     FlagSyntax::kGo};
}

TEST(ArgsTest, GoSyntaxBooleans) {
  struct Case {
    std::vector<std::string> words;
    const char* value;
  };
  const Case cases[] = {
      {{"-x"}, "true"},          {{"--x"}, "true"},     {{"-x=false"}, "false"},
      {{"--x=0"}, "false"},      {{"-x=1"}, "true"},    {{"-x=t"}, "true"},
      {{"-x=F"}, "false"},       {{"-x=TRUE"}, "true"}, {{"-x=False"}, "false"},
      {{"-x", "-x=f"}, "false"},
  };
  for (const auto& c : cases) {
    auto parsed = parse_args(go_spec(), c.words);
    ASSERT_TRUE(parsed.has_value()) << c.words.back() << ": " << parsed.error().message;
    EXPECT_EQ(parsed->value("x"), c.value) << c.words.back();
  }
  // A boolean takes no separate word: "false" here is an argument, which p2pd refuses.
  auto separate = parse_args(go_spec(), {"-x", "false"});
  ASSERT_FALSE(separate.has_value());
  EXPECT_NE(separate.error().message.find("unexpected argument \"false\""), std::string::npos);
}

TEST(ArgsTest, GoSyntaxValuesKeepEveryOccurrence) {
  for (const auto& words : std::vector<std::vector<std::string>>{
           {"-name", "v"}, {"-name=v"}, {"--name", "v"}, {"--name=v"}}) {
    auto parsed = parse_args(go_spec(), words);
    ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
    EXPECT_EQ(parsed->value("name"), "v");
  }
  auto twice = parse_args(go_spec(), {"-name", "a", "-x", "-name=b"});
  ASSERT_TRUE(twice.has_value()) << twice.error().message;
  EXPECT_EQ(twice->options, (std::vector<std::pair<std::string, std::string>>{
                                {"name", "a"}, {"x", "true"}, {"name", "b"}}));
}

TEST(ArgsTest, GoSyntaxErrorsUseGoWording) {
  struct Case {
    std::vector<std::string> words;
    const char* expected;
  };
  const Case cases[] = {
      {{"-nope"}, "unknown flag \"-nope\" for p2pd (see: agentnetwork p2pd -h)"},
      {{"--nope=1"}, "unknown flag \"--nope=1\" for p2pd (see: agentnetwork p2pd -h)"},
      {{"-x=maybe"}, "invalid boolean value \"maybe\" for -x"},
      {{"-x="}, "invalid boolean value \"\" for -x"},
      {{"-name"}, "flag needs an argument: -name"},
      {{"extra"}, "unexpected argument \"extra\" for p2pd"},
      {{"--", "-x"}, "unexpected argument \"-x\" for p2pd"},
  };
  for (const auto& c : cases) {
    auto parsed = parse_args(go_spec(), c.words);
    ASSERT_FALSE(parsed.has_value()) << c.words.front();
    EXPECT_EQ(parsed.error().message, c.expected);
  }
}

TEST(ArgsTest, GoSyntaxHelpEndsParsing) {
  auto parsed = parse_args(go_spec(), {"-x", "-h", "-nope", "extra"});
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_TRUE(parsed->help);
  // The standard syntax notes -h and still checks the rest.
  EXPECT_FALSE(parse_args(test_spec(), {"-h", "-bogus"}).has_value());
}

TEST(ArgsTest, HelpRowsWrapUnderTheirOption) {
  EXPECT_EQ(help_row("  -data DIR", "data directory"),
            "  -data DIR               data directory\n");
  EXPECT_EQ(help_row("  -relay-max-reservations N", "held at once"),
            "  -relay-max-reservations N\n                          held at once\n");
  const std::string words(30, 'w');  // two fit in the 90 columns, three do not
  EXPECT_EQ(help_row("  -a", words + " " + words + " " + words),
            "  -a                      " + words + " " + words + "\n" + std::string(26, ' ') +
                words + "\n");
}

}  // namespace
}  // namespace an::app
