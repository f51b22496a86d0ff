// What every call of the control API's services goes through: the bearer token check, the
// move to the network thread, the cap on calls in flight and on how long one may take, and the
// answer when the node is stopping. Shared by agentnetwork.v1.Node and agentnetwork.v1.Agent.
#pragma once

#include <grpcpp/grpcpp.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <asio.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "p2p/net/async.h"

namespace an::rpc {

// Calls that wait on the network in flight at once; more are refused with RESOURCE_EXHAUSTED
// so that a flood of clients cannot pile work onto the network thread.
inline constexpr std::size_t kMaxPendingNetworkCalls = 256;
// How long after an operation's own deadline the guard cuts it off.
inline constexpr std::chrono::milliseconds kGuardMargin{200};

inline grpc::Status shutting_down() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the node is shutting down");
}

class CallRunner {
 public:
  CallRunner(asio::io_context& io_context, const std::string& token)
      : io(io_context), stop_signal(std::make_unique<p2p::net::Signal>(io_context.get_executor())) {
    if (!token.empty()) expected_authorization = "Bearer " + token;
  }

  // gRPC thread: the bearer token check; OK when no token is required.
  grpc::Status authorize(const grpc::CallbackServerContext& context) const {
    if (expected_authorization.empty()) return grpc::Status::OK;
    const auto& metadata = context.client_metadata();
    auto found = metadata.find("authorization");
    if (found == metadata.end()) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "this endpoint requires \"authorization: Bearer <token>\" (the token is "
                          "in the node's api.token)");
    }
    const auto& given = found->second;
    if (given.size() != expected_authorization.size() ||
        CRYPTO_memcmp(given.data(), expected_authorization.data(), given.size()) != 0) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "wrong API token");
    }
    return grpc::Status::OK;
  }

  // A call answered at once on the network thread: `answer` returns the status.
  template <class Answer>
  grpc::ServerUnaryReactor* answer_on_network_thread(grpc::CallbackServerContext* context,
                                                     Answer answer) {
    auto* reactor = context->DefaultReactor();
    if (auto denied = authorize(*context); !denied.ok()) {
      reactor->Finish(denied);
      return reactor;
    }
    asio::post(io, [this, reactor, answer = std::move(answer)]() mutable {
      reactor->Finish(stopping ? shutting_down() : answer());
    });
    return reactor;
  }

  // A call that waits on the network: `operation` is a coroutine returning the status; it is
  // abandoned (cancelled) at the deadline, the node's cap, or the node's stop.
  template <class Operation>
  grpc::ServerUnaryReactor* run_on_network_thread(grpc::CallbackServerContext* context,
                                                  std::chrono::milliseconds cap,
                                                  Operation operation) {
    auto* reactor = context->DefaultReactor();
    if (auto denied = authorize(*context); !denied.ok()) {
      reactor->Finish(denied);
      return reactor;
    }
    auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
        context->deadline() - std::chrono::system_clock::now());
    auto deadline = std::chrono::steady_clock::now() + std::clamp(remaining, {}, cap);
    asio::post(io, [this, reactor, deadline, operation = std::move(operation)]() mutable {
      if (stopping) {
        reactor->Finish(shutting_down());
        return;
      }
      if (pending_network_calls >= kMaxPendingNetworkCalls) {
        reactor->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                     "too many calls in flight; retry later"));
        return;
      }
      ++pending_network_calls;
      if constexpr (std::is_invocable_v<Operation, std::chrono::steady_clock::time_point>) {
        // Operations that take the deadline end by themselves at it (a lookup gives up and
        // answers with what it has), slightly before the guard would cut them off.
        asio::co_spawn(io,
                       guard(reactor, deadline + kGuardMargin,
                             [operation = std::move(operation), deadline]() mutable {
                               return operation(deadline);
                             }),
                       p2p::net::report_exception);
      } else {
        asio::co_spawn(io, guard(reactor, deadline, std::move(operation)),
                       p2p::net::report_exception);
      }
    });
    return reactor;
  }

  template <class Operation>
  asio::awaitable<void> guard(grpc::ServerUnaryReactor* reactor,
                              std::chrono::steady_clock::time_point deadline, Operation operation) {
    using namespace asio::experimental::awaitable_operators;
    grpc::Status status;
    try {
      asio::steady_timer timer(io, deadline);
      auto result =
          co_await (operation() || timer.async_wait(p2p::net::use_tuple) || stop_signal->wait());
      if (result.index() == 0) {
        status = std::get<0>(result);
      } else if (result.index() == 1) {
        status = grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline exceeded");
      } else {
        status = shutting_down();
      }
    } catch (const std::exception& e) {
      status = grpc::Status(grpc::StatusCode::INTERNAL, e.what());
    }
    --pending_network_calls;
    reactor->Finish(status);
  }

  grpc::ServerUnaryReactor* finish_now(grpc::CallbackServerContext* context,
                                       const grpc::Status& status) {
    auto* reactor = context->DefaultReactor();
    auto denied = authorize(*context);
    reactor->Finish(denied.ok() ? status : denied);
    return reactor;
  }

  grpc::ServerUnaryReactor* invalid_argument(grpc::CallbackServerContext* context,
                                             const std::string& message) {
    return finish_now(context, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message));
  }

  asio::io_context& io;
  std::string expected_authorization;
  std::unique_ptr<p2p::net::Signal> stop_signal;
  std::atomic<bool> stopping{false};
  // Network-thread state.
  std::size_t pending_network_calls = 0;
};

}  // namespace an::rpc
