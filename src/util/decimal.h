// Decimal numbers such as "0.05" or "1e3" from command-line text, the same on every platform:
// libc++ (macOS) has no std::from_chars for floating point, and std::strtod follows the C
// locale. Header-only; safe from any thread.
#pragma once

#include <cctype>
#include <locale>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

namespace an {

// The value of `text` when all of it is one decimal number: an optional '-', digits with at most
// one '.', at least one digit, then optionally 'e' or 'E' with an optional sign and digits.
// nullopt for anything else (spaces, '+', hexadecimal, "inf", "nan") and for values that do
// not fit a double.
inline std::optional<double> parse_decimal(std::string_view text) {
  std::size_t pos = 0;
  auto digits = [&] {
    std::size_t start = pos;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos])))
      ++pos;
    return pos - start;
  };
  if (pos < text.size() && text[pos] == '-') ++pos;
  std::size_t mantissa_digits = digits();
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    mantissa_digits += digits();
  }
  if (mantissa_digits == 0) return std::nullopt;
  if (pos < text.size() && (text[pos] == 'e' || text[pos] == 'E')) {
    ++pos;
    if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) ++pos;
    if (digits() == 0) return std::nullopt;
  }
  if (pos != text.size()) return std::nullopt;

  // The classic locale reads '.' as the decimal point whatever the process locale is; an
  // out-of-range value sets failbit.
  std::istringstream stream{std::string(text)};
  stream.imbue(std::locale::classic());
  double value = 0;
  stream >> value;
  if (stream.fail()) return std::nullopt;
  return value;
}

}  // namespace an
