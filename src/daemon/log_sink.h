// spdlog sink writing into the node's RotatingLogFile, and the factory for the node's logger.
// Any thread may log through them; the sink shares ownership of the file with its other users.
#pragma once

#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>

#include <memory>
#include <mutex>

#include "daemon/log_file.h"

namespace an::daemon {

// Every line of node.log: UTC ISO-8601 time with milliseconds, level, message, e.g.
//   2026-11-26T06:14:28.123Z [info] listening on /ip4/0.0.0.0/tcp/9000
// Fixed width up to the level, so `logs` output lines up and tools can split it with a regex.
inline constexpr const char* kLogLinePattern = "%Y-%m-%dT%H:%M:%S.%eZ [%l] %v";
// The same for the terminal, the level colored when the terminal supports it.
inline constexpr const char* kConsoleLinePattern = "%Y-%m-%dT%H:%M:%S.%eZ [%^%l%$] %v";

// std::mutex rather than null_mutex although RotatingLogFile locks itself: spdlog's
// pattern_formatter caches the last formatted time and is not safe to use from two threads at
// once, and base_sink formats under this mutex. The file lock is always taken inside it, so the
// order is fixed and cannot deadlock.
class RotatingLogFileSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit RotatingLogFileSink(std::shared_ptr<RotatingLogFile> file);

 protected:
  void sink_it_(const spdlog::details::log_msg& message) override;
  void flush_() override {}  // RotatingLogFile does not buffer

 private:
  std::shared_ptr<RotatingLogFile> file_;
};

// The node's logger ("node"): every message to `file`; with `also_console` (foreground `run`)
// also to stderr, colored only when stderr is a color terminal. Not registered with spdlog.
std::shared_ptr<spdlog::logger> make_node_logger(std::shared_ptr<RotatingLogFile> file,
                                                 bool also_console);

}  // namespace an::daemon
