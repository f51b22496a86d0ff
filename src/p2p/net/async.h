// Small coroutine helpers for code that runs on one io_context thread (the network thread).
// Not thread-safe: every call on one object must come from that thread.
#pragma once

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>

#include "util/expected.h"

namespace an::p2p::net {

inline constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

// Completion handler for co_spawn: a coroutine that ends by an exception (std::bad_alloc, a
// bug) is reported on stderr, which is the log file in a detached node, instead of being lost
// or terminating the process.
inline void report_exception(std::exception_ptr error) {
  if (!error) return;
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "agentnetwork: network task failed: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "agentnetwork: network task failed with an unknown exception\n");
  }
}

// Runs `operation` with a timeout; when the timer wins the operation is cancelled and the error
// names `what` ("<what>: timed out").
template <class T>
asio::awaitable<Expected<T>> with_timeout(asio::awaitable<Expected<T>> operation,
                                          std::chrono::steady_clock::duration timeout,
                                          std::string what) {
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(co_await asio::this_coro::executor, timeout);
  auto result = co_await (std::move(operation) || timer.async_wait(use_tuple));
  if (result.index() == 1) co_return fail(what + ": timed out");
  co_return std::move(std::get<0>(result));
}

// Wakes every coroutine waiting on it. Waiters re-check their condition in a loop:
//   while (!ready()) co_await signal.wait();
// which is race-free on a single thread, so a notify without waiters is never needed later.
class Signal {
 public:
  explicit Signal(const asio::any_io_executor& executor)
      : timer_(executor, asio::steady_timer::time_point::max()) {}
  asio::awaitable<void> wait() { co_await timer_.async_wait(use_tuple); }
  // Waits until notified or until `deadline`; false on timeout.
  asio::awaitable<bool> wait_until(asio::steady_timer::time_point deadline) {
    using namespace asio::experimental::awaitable_operators;
    asio::steady_timer timeout(timer_.get_executor(), deadline);
    auto result = co_await (timer_.async_wait(use_tuple) || timeout.async_wait(use_tuple));
    co_return result.index() == 0;
  }
  void notify() { timer_.cancel(); }

 private:
  asio::steady_timer timer_;
};

// Lets coroutines and callbacks that outlive a call learn whether the object they belong to
// still exists: the owner holds a Lifetime, they hold a token (or a guarded callback) and check
// it after each suspension. Network thread only.
class Lifetime {
 public:
  class Token {
   public:
    // True while the owner lives.
    explicit operator bool() const { return *alive_; }

   private:
    friend class Lifetime;
    explicit Token(std::shared_ptr<const bool> alive) : alive_(std::move(alive)) {}
    std::shared_ptr<const bool> alive_;
  };

  Lifetime() = default;
  ~Lifetime() { end(); }
  Lifetime(const Lifetime&) = delete;
  Lifetime& operator=(const Lifetime&) = delete;

  Token token() const { return Token(alive_); }
  // Ends the owner's life early, e.g. first thing in its destructor, so that what its teardown
  // triggers no longer reaches it.
  void end() { *alive_ = false; }
  // `callback`, doing nothing once the owner is gone.
  template <class Callback>
  auto guard(Callback callback) const {
    return [alive = token(), callback = std::move(callback)](auto&&... args) {
      if (alive) callback(std::forward<decltype(args)>(args)...);
    };
  }

 private:
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace an::p2p::net
