#include "daemon/log_file.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <limits>
#include <system_error>
#include <utility>
#include <vector>

namespace an::daemon {
namespace {

namespace fs = std::filesystem;

// After a failed rotation, writes go on into the current file; retrying on every line would
// cost a burst of failing renames per line, so retry at most this often.
constexpr std::chrono::seconds kRotationRetryDelay{1};

constexpr std::size_t kCopyChunkBytes = 64 * 1024;

std::string utc_timestamp_now() {
  const auto now = std::chrono::system_clock::now();
  const auto milliseconds =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z",
                     fmt::gmtime(std::chrono::system_clock::to_time_t(now)), milliseconds);
}

bool is_missing(const Error& error) {
  return error.code == std::errc::no_such_file_or_directory;
}

// The index N of a name "node.log.N", or 0 for any other name.
int rotated_index_of(const std::string& name) {
  const std::string prefix = std::string(kLogFileName) + ".";
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return 0;
  int index = 0;
  const char* first = name.data() + prefix.size();
  const char* last = name.data() + name.size();
  auto [end, error] = std::from_chars(first, last, index);
  if (error != std::errc() || end != last || index < 1) return 0;
  return index;
}

// Appends the whole of `source` to `target`: recovery of the few lines a crash left in
// node.log.new, which are newer than everything in node.log.
Expected<void> append_file_to(const fs::path& source, const fs::path& target) {
  auto input = ReadFile::open(source);
  if (!input) return tl::unexpected(input.error());
  auto output = AppendFile::open(target);
  if (!output) return tl::unexpected(output.error());
  std::string buffer(kCopyChunkBytes, '\0');
  for (std::uint64_t offset = 0;;) {
    auto count = input->read_at(offset, buffer.data(), buffer.size());
    if (!count) return tl::unexpected(count.error());
    if (*count == 0) return {};
    if (auto written = output->write(std::string_view(buffer.data(), *count)); !written) {
      return written;
    }
    offset += *count;
  }
}

// A crash between the steps of a rotation leaves node.log.new behind; put its lines back where
// a reader expects them, in order.
Expected<void> recover_interrupted_rotation(const fs::path& logs_dir) {
  const fs::path next = logs_dir / kNextLogFileName;
  const fs::path current = current_log_path(logs_dir);
  std::error_code error;
  if (!fs::exists(next, error)) return {};
  if (!fs::exists(current, error)) {
    // Crashed after node.log became node.log.1: node.log.new simply is the current file.
    return rename_file(next, current);
  }
  // Crashed before node.log was renamed: both hold lines, node.log.new the newer ones.
  if (auto appended = append_file_to(next, current); !appended) return appended;
  fs::remove(next, error);
  return {};
}

}  // namespace

fs::path current_log_path(const fs::path& logs_dir) {
  return logs_dir / kLogFileName;
}

fs::path rotated_log_path(const fs::path& logs_dir, int index) {
  return logs_dir / (std::string(kLogFileName) + "." + std::to_string(index));
}

std::uint64_t log_size_limit_bytes(double megabytes) {
  constexpr double kBytesPerMegabyte = 1024.0 * 1024.0;
  if (!(megabytes > 0)) return 1;  // also NaN
  const double bytes = std::round(megabytes * kBytesPerMegabyte);
  if (bytes >= static_cast<double>(std::numeric_limits<std::uint64_t>::max() / 2)) {
    return std::numeric_limits<std::uint64_t>::max() / 2;
  }
  return bytes < 1 ? 1 : static_cast<std::uint64_t>(bytes);
}

// ---- opening ----------------------------------------------------------------------------------

RotatingLogFile::RotatingLogFile(const LogFileOptions& options) : options_(options) {}

RotatingLogFile::~RotatingLogFile() = default;

Expected<std::shared_ptr<RotatingLogFile>> RotatingLogFile::open(const LogFileOptions& options) {
  if (options.max_files < 1) {
    return fail("the number of rotated log files must be at least 1, not " +
                std::to_string(options.max_files));
  }
  if (options.max_bytes < 1) return fail("the log size limit must be at least 1 byte");
  if (auto made = make_directory(options.logs_dir, /*owner_only=*/false); !made) {
    return tl::unexpected(made.error());
  }
  if (auto recovered = recover_interrupted_rotation(options.logs_dir); !recovered) {
    return tl::unexpected(recovered.error());
  }

  std::shared_ptr<RotatingLogFile> log(new RotatingLogFile(options));
  auto file = AppendFile::open(log->path());
  if (!file) return tl::unexpected(file.error());
  if (options.capture_stdio) {
    if (auto captured = file->become_stdout_and_stderr(); !captured) {
      return tl::unexpected(captured.error());
    }
  }
  log->file_ = std::move(*file);
  return log;
}

fs::path RotatingLogFile::path() const {
  return current_log_path(options_.logs_dir);
}

std::string RotatingLogFile::last_error() const {
  std::lock_guard lock(mutex_);
  return last_error_;
}

// ---- writing ----------------------------------------------------------------------------------

void RotatingLogFile::write(std::string_view line_bytes) noexcept {
  try {
    std::lock_guard lock(mutex_);
    write_locked(line_bytes);
  } catch (...) {
    // Only allocation or mutex failures get here; logging must never take the caller down.
    error_count_.fetch_add(1);
  }
}

void RotatingLogFile::write_locked(std::string_view bytes) {
  if (writing_temp_name_ && std::chrono::steady_clock::now() >= next_rotation_attempt_) {
    finish_rotation_locked();
  }
  // The size on disk, not a count of our own writes: raw stdout/stderr writes count too.
  auto size = file_.size();
  if (!size) {
    record_failure_locked(size.error().message);
  } else if (*size > 0 && *size + bytes.size() > options_.max_bytes && rotation_allowed_now()) {
    rotate_locked();
  }
  if (auto written = file_.write(bytes); !written) {
    record_failure_locked(written.error().message);
    return;
  }
  report_failures_locked();
}

void RotatingLogFile::check_rotation() noexcept {
  try {
    std::lock_guard lock(mutex_);
    if (writing_temp_name_ && std::chrono::steady_clock::now() >= next_rotation_attempt_) {
      finish_rotation_locked();
    }
    auto size = file_.size();
    if (size && *size > 0 && *size >= options_.max_bytes && rotation_allowed_now()) {
      rotate_locked();
    }
  } catch (...) {
    error_count_.fetch_add(1);
  }
}

Expected<void> RotatingLogFile::reopen() {
  std::lock_guard lock(mutex_);
  if (writing_temp_name_) {
    finish_rotation_locked();
    // Reopening node.log now would strand the lines of node.log.new; the next write retries.
    if (writing_temp_name_) return fail("cannot reopen the log: an earlier rotation is unfinished");
  }
  auto reopened = AppendFile::open(path());
  if (!reopened) return tl::unexpected(reopened.error());
  Expected<void> captured;
  if (options_.capture_stdio) captured = reopened->become_stdout_and_stderr();
  file_ = std::move(*reopened);
  return captured;
}

bool RotatingLogFile::rotation_allowed_now() const {
  return !writing_temp_name_ && std::chrono::steady_clock::now() >= next_rotation_attempt_;
}

// ---- rotation ---------------------------------------------------------------------------------

// The order matters when stdout/stderr are captured: other threads may be writing raw bytes to
// fd 1 and 2 at any moment, without our lock. So the new file first becomes fd 1/2 (dup2 is
// atomic: each raw write lands wholly in the old or in the new file) and only then does the old
// file leave the name node.log. No byte reaches the old file after it was renamed, none is
// written twice, and a reader that sees node.log change identity may drain the old file and
// move on.
void RotatingLogFile::rotate_locked() {
  auto retry_later = [&](std::string reason) {
    record_failure_locked("log rotation failed: " + std::move(reason));
    next_rotation_attempt_ = std::chrono::steady_clock::now() + kRotationRetryDelay;
  };
  // 1. node.log.k -> node.log.(k+1), oldest first; the one that would pass N is deleted.
  if (auto shifted = shift_rotated_files_locked(); !shifted) {
    retry_later(shifted.error().message);
    return;
  }
  // 2. A fresh file under a temporary name; nobody reads node.log.new.
  auto next = AppendFile::open(options_.logs_dir / kNextLogFileName);
  if (!next) {
    retry_later(next.error().message);
    return;
  }
  // 3. Raw writes go to it from now on. Should this fail, rotating anyway loses nothing: raw
  //    writes keep landing in the old file, which is kept as node.log.1.
  if (options_.capture_stdio) {
    if (auto captured = next->become_stdout_and_stderr(); !captured) {
      record_failure_locked(captured.error().message);
    }
  }
  // 4. Our own writes go to it too (the old descriptor is closed here).
  file_ = std::move(*next);
  writing_temp_name_ = true;
  rotation_count_.fetch_add(1);
  // 5. and 6. node.log -> node.log.1, node.log.new -> node.log.
  finish_rotation_locked();
}

Expected<void> RotatingLogFile::shift_rotated_files_locked() {
  const fs::path& dir = options_.logs_dir;
  std::error_code error;
  // Only the files that exist are moved: with a large N, trying every index would cost N failing
  // renames per rotation.
  std::vector<int> existing;
  for (fs::directory_iterator entry(dir, error), end; !error && entry != end;
       entry.increment(error)) {
    if (int index = rotated_index_of(entry->path().filename().string()); index > 0) {
      existing.push_back(index);
    }
  }
  if (error) return fail("cannot list " + dir.string() + ": " + error.message(), error);
  std::sort(existing.begin(), existing.end(), std::greater<>());
  for (int index : existing) {
    const fs::path from = rotated_log_path(dir, index);
    if (index >= options_.max_files) {
      // What would pass N goes, including leftovers of a larger N in an earlier run. Should that
      // fail, the rename of the next newer file replaces it anyway.
      fs::remove(from, error);
      continue;
    }
    // Stop at the first real failure: going on would overwrite a file that did not move.
    if (auto renamed = rename_file(from, rotated_log_path(dir, index + 1));
        !renamed && !is_missing(renamed.error())) {
      return renamed;
    }
  }
  return {};
}

void RotatingLogFile::finish_rotation_locked() {
  const fs::path& dir = options_.logs_dir;
  // Missing node.log (someone deleted it) is fine: there is nothing to keep.
  if (auto renamed = rename_file(path(), rotated_log_path(dir, 1));
      !renamed && !is_missing(renamed.error())) {
    record_failure_locked("log rotation: " + renamed.error().message);
    next_rotation_attempt_ = std::chrono::steady_clock::now() + kRotationRetryDelay;
    return;
  }
  if (auto renamed = rename_file(dir / kNextLogFileName, path()); !renamed) {
    record_failure_locked("log rotation: " + renamed.error().message);
    next_rotation_attempt_ = std::chrono::steady_clock::now() + kRotationRetryDelay;
    return;
  }
  writing_temp_name_ = false;
}

// ---- failures ---------------------------------------------------------------------------------

void RotatingLogFile::record_failure_locked(std::string reason) {
  error_count_.fetch_add(1);
  ++unreported_failures_;
  last_error_ = std::move(reason);
}

// Once writing works again, the log itself says that something is missing before this point.
// This note may take the file a few bytes past max_bytes.
void RotatingLogFile::report_failures_locked() {
  if (unreported_failures_ == 0) return;
  const std::string note = fmt::format(
      "{} [error] log file: {} earlier write or rotation failure(s), lines may be missing; last: "
      "{}\n",
      utc_timestamp_now(), unreported_failures_, last_error_);
  unreported_failures_ = 0;
  if (auto written = file_.write(note); !written) record_failure_locked(written.error().message);
}

}  // namespace an::daemon
