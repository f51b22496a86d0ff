// What the gRPC load tools of bench/ share (an-api-load, an-agent-load): the one-JSON-line error
// exit, option numbers with bounds, status codes by name, errors tallied by code, latency
// percentiles and the process's own CPU time.
#pragma once

#include <grpcpp/grpcpp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace an::bench {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::ordered_json;

// Prints {"error": message} as the tool's one line and exits 1.
[[noreturn]] inline void die(const std::string& message) {
  std::printf("%s\n", Json{{"error", message}}.dump().c_str());
  std::fflush(stdout);
  std::exit(1);
}

inline double to_number(const std::string& name, const std::string& text, double low, double high) {
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(value >= low && value <= high)) {
    die("--" + name + " must be a number from " + std::to_string(low) + " to " +
        std::to_string(high) + ", not \"" + text + "\"");
  }
  return value;
}

inline std::string code_name(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "CODE_" + std::to_string(static_cast<int>(code));
  }
}

// Errors by status code, with the first message of each code.
struct ErrorTally {
  std::map<std::string, std::uint64_t> counts;
  std::map<std::string, std::string> first_message;
  std::uint64_t total = 0;

  void add(const grpc::Status& status) {
    auto name = code_name(status.error_code());
    ++total;
    if (counts[name]++ == 0) first_message[name] = status.error_message();
  }
  void merge(const ErrorTally& other) {
    total += other.total;
    for (const auto& [name, count] : other.counts) {
      if (counts[name] == 0) first_message[name] = other.first_message.at(name);
      counts[name] += count;
    }
  }
  Json counts_json() const {
    Json out = Json::object();
    for (const auto& [name, count] : counts)
      out[name] = count;
    return out;
  }
  Json messages_json() const {
    Json out = Json::object();
    for (const auto& [name, message] : first_message)
      out[name] = message;
    return out;
  }
};

// Percentiles (nearest rank) of samples in nanoseconds, reported in microseconds.
inline Json percentiles_us(std::vector<std::int64_t> samples) {
  if (samples.empty()) return nullptr;
  std::sort(samples.begin(), samples.end());
  auto at = [&](double q) {
    auto rank = static_cast<std::size_t>(q * static_cast<double>(samples.size() - 1) + 0.5);
    return static_cast<double>(samples[std::min(rank, samples.size() - 1)]) / 1000.0;
  };
  return Json{{"p50", at(0.50)}, {"p90", at(0.90)}, {"p99", at(0.99)}, {"max", at(1.0)}};
}

inline double cpu_seconds_self() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

inline std::int64_t nanoseconds_since(Clock::time_point begin) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - begin).count();
}

}  // namespace an::bench
