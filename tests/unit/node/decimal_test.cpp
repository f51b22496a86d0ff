// parse_decimal (util/decimal.h): the decimal numbers of options such as -log-max-size-mb,
// -conn-grace and -timeout. Single-threaded.
#include "util/decimal.h"

#include <gtest/gtest.h>

#include <clocale>
#include <string_view>

namespace an {
namespace {

TEST(DecimalTest, AcceptsPlainDecimalNumbers) {
  struct Case {
    std::string_view text;
    double value;
  };
  for (const auto& [text, value] :
       {Case{"0", 0.0}, Case{"10", 10.0}, Case{"0.05", 0.05}, Case{".5", 0.5}, Case{"5.", 5.0},
        Case{"-1.5", -1.5}, Case{"1e3", 1000.0}, Case{"2.5E-1", 0.25}, Case{"1e+2", 100.0},
        Case{"007", 7.0}}) {
    auto parsed = parse_decimal(text);
    ASSERT_TRUE(parsed.has_value()) << text;
    EXPECT_DOUBLE_EQ(*parsed, value) << text;
  }
}

TEST(DecimalTest, RejectsAnythingElse) {
  for (std::string_view text : {"",    "-",  ".",   "-.",    "e5",    "1e",    "1e+",      "1.2.3",
                                " 1",  "1 ", "+1",  "0x10",  "inf",   "nan",   "infinity", "1,5",
                                "ten", "5s", "--1", "1e5e5", "1e999", "-1e999"}) {
    EXPECT_FALSE(parse_decimal(text).has_value()) << '"' << text << '"';
  }
}

TEST(DecimalTest, IgnoresTheProcessLocale) {
  // A locale with a decimal comma, when the machine has one; the C locale otherwise.
  const bool switched = std::setlocale(LC_NUMERIC, "de_DE.UTF-8") != nullptr;
  auto parsed = parse_decimal("0.25");
  auto comma = parse_decimal("0,25");
  if (switched) std::setlocale(LC_NUMERIC, "C");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_DOUBLE_EQ(*parsed, 0.25);
  EXPECT_FALSE(comma.has_value());
}

}  // namespace
}  // namespace an
