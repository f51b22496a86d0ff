// The node's own log file DIR/logs/node.log, rotated by size to node.log.1 … node.log.N.
// Thread-safe: any thread may call any member; the node owns one instance (shared_ptr).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "daemon/platform.h"
#include "util/expected.h"

namespace an::daemon {

// Names inside the logs directory, shared with the reader (log_reader.h).
inline constexpr std::string_view kLogFileName = "node.log";
// Where the next file is prepared during a rotation, before it takes the name node.log.
inline constexpr std::string_view kNextLogFileName = "node.log.new";

std::filesystem::path current_log_path(const std::filesystem::path& logs_dir);
// node.log.<index>; index 1 is the newest rotated file.
std::filesystem::path rotated_log_path(const std::filesystem::path& logs_dir, int index);

// `-log-max-size-mb` (may be fractional, e.g. 0.05) in bytes; 1 MB = 1024 * 1024 bytes here, as
// in the Go implementation. At least 1 byte.
std::uint64_t log_size_limit_bytes(double megabytes);

struct LogFileOptions {
  std::filesystem::path logs_dir;              // DIR/logs, created if missing
  std::uint64_t max_bytes = 10 * 1024 * 1024;  // rotate before node.log would exceed this
  int max_files = 5;                           // node.log.1 … node.log.N are kept; N >= 1
  // For the detached daemon: the current file is also fd 1 and 2, so raw writes to
  // stdout/stderr and crash reports land in the log, and follow it through rotations.
  bool capture_stdio = false;
};

class RotatingLogFile {
 public:
  // Opens (appends to) node.log. Finishes a rotation a crash interrupted.
  static Expected<std::shared_ptr<RotatingLogFile>> open(const LogFileOptions& options);

  RotatingLogFile(const RotatingLogFile&) = delete;
  RotatingLogFile& operator=(const RotatingLogFile&) = delete;
  ~RotatingLogFile();

  // Appends `line_bytes` (normally one formatted line with its '\n') in one write, rotating
  // first if the file would exceed max_bytes (an empty file takes even an over-long line).
  // Never throws: failures are counted (error_count) and reported in the log once a write works.
  void write(std::string_view line_bytes) noexcept;

  // Rotates if raw writes to stdout/stderr have pushed the file past max_bytes. The node calls
  // this periodically (e.g. every second).
  void check_rotation() noexcept;

  // Reopens node.log by name (and makes it stdout/stderr again): SIGHUP after an external tool
  // such as logrotate moved the file away.
  Expected<void> reopen();

  std::filesystem::path path() const;
  // Failed writes and rotations since the start, and the last reason, for status and tests.
  std::uint64_t error_count() const { return error_count_.load(); }
  std::string last_error() const;
  std::uint64_t rotation_count() const { return rotation_count_.load(); }

 private:
  explicit RotatingLogFile(const LogFileOptions& options);

  void write_locked(std::string_view bytes);
  bool rotation_allowed_now() const;
  // The rotation itself; the order of its steps is explained in log_file.cpp.
  void rotate_locked();
  Expected<void> shift_rotated_files_locked();
  // Gives the file currently written (node.log.new) the name node.log, after node.log became
  // node.log.1. Separate because a failed rename is retried later instead of losing node.log.
  void finish_rotation_locked();
  void record_failure_locked(std::string reason);
  void report_failures_locked();

  const LogFileOptions options_;
  mutable std::mutex mutex_;
  AppendFile file_;                 // guarded by mutex_
  bool writing_temp_name_ = false;  // file_ is still named node.log.new; guarded by mutex_
  std::chrono::steady_clock::time_point next_rotation_attempt_{};  // back-off after failures
  std::uint64_t unreported_failures_ = 0;                          // guarded by mutex_
  std::string last_error_;                                         // guarded by mutex_
  std::atomic<std::uint64_t> error_count_{0};
  std::atomic<std::uint64_t> rotation_count_{0};
};

}  // namespace an::daemon
