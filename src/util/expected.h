// Result type used across the code base: Expected<T> is a T or an Error.
// Header-only; safe from any thread.
#pragma once

#include <cerrno>
#include <string>
#include <system_error>
#include <tl/expected.hpp>

namespace an {

// An error carries a message written for people and, where one exists, the OS or protocol code.
struct Error {
  std::string message;
  std::error_code code{};
};

template <class T>
using Expected = tl::expected<T, Error>;

inline tl::unexpected<Error> fail(std::string message, std::error_code code = {}) {
  return tl::unexpected<Error>(Error{std::move(message), code});
}

// "what: strerror(errno)" with the errno kept as the code. Call right after the failing call.
inline tl::unexpected<Error> fail_errno(const std::string& what, int err = errno) {
  std::error_code code(err, std::generic_category());
  return tl::unexpected<Error>(Error{what + ": " + code.message(), code});
}

}  // namespace an
