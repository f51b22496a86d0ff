#include "daemon/control.h"

#include <cstdio>
#include <cstdlib>
#include <thread>

#include "daemon/status_file.h"

namespace an::daemon {
namespace {

// Lock queries are cheap syscalls; a short interval keeps `stop` close to the real exit time.
constexpr auto kPollInterval = std::chrono::milliseconds(2);
// After SIGKILL the kernel releases the lock as the process dies; this only bounds a wait for
// something that should take microseconds.
constexpr auto kKillGrace = std::chrono::seconds(5);
// Between the lock's release and the process's disappearance only the exit itself remains.
constexpr auto kExitGrace = std::chrono::seconds(2);
// Between attempts of a starting node to take a lock someone else holds for a moment.
constexpr auto kLockRetryInterval = std::chrono::milliseconds(10);

// Polls until the lock is free or the deadline passes; true when free.
Expected<bool> wait_for_lock_release(const DataPaths& paths,
                                     std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    auto holder = FileLock::holder(paths.lock_file);
    if (!holder) return tl::unexpected(holder.error());
    if (!holder->has_value()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(kPollInterval);
  }
}

std::string fmt_seconds(double seconds) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%gs", seconds);
  return buffer;
}

void wait_for_exit(ProcessId pid) {
  auto deadline = std::chrono::steady_clock::now() + kExitGrace;
  while (process_exists(pid) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(kPollInterval);
  }
}

}  // namespace

bool is_daemon_process() {
  const char* value = std::getenv(kDaemonEnvVar);
  return value != nullptr && std::string_view(value) == "1";
}

Expected<std::optional<ProcessId>> running_node_pid(const DataPaths& paths) {
  auto holder = FileLock::holder(paths.lock_file);
  if (!holder) return tl::unexpected(holder.error());
  if (!holder->has_value()) return std::optional<ProcessId>{};
  if (**holder > 0) return *holder;
  // The OS does not name the holder (Windows, or another PID namespace): trust the PID file,
  // which the holder wrote.
  auto from_file = read_pid_file(paths.pid_file);
  if (from_file && from_file->has_value()) return *from_file;
  return std::optional<ProcessId>(0);
}

Expected<FileLock> acquire_node_lock(const DataPaths& paths, ProcessId& running_pid) {
  const auto deadline = std::chrono::steady_clock::now() + kLockRetryWindow;
  for (;;) {
    auto lock = FileLock::try_acquire(paths.lock_file);
    if (!lock) return tl::unexpected(lock.error());
    if (lock->has_value()) return std::move(**lock);
    auto holder = FileLock::holder(paths.lock_file);
    auto recorded = read_pid_file(paths.pid_file);
    running_pid = holder && holder->has_value() ? **holder : 0;
    bool holder_is_node =
        running_pid != 0 && recorded && recorded->has_value() && **recorded == running_pid;
    if (holder_is_node || std::chrono::steady_clock::now() >= deadline) {
      if (running_pid == 0 && recorded && recorded->has_value()) running_pid = **recorded;
      return fail("already running (PID " + std::to_string(running_pid) + ")");
    }
    std::this_thread::sleep_for(kLockRetryInterval);
  }
}

bool remove_stale_files(const DataPaths& paths) {
  std::error_code ec;
  bool pid_exists = std::filesystem::exists(paths.pid_file, ec);
  bool status_exists = std::filesystem::exists(paths.status_file, ec);
  if (!pid_exists && !status_exists) return false;
  auto lock = FileLock::try_acquire(paths.lock_file);
  if (!lock || !lock->has_value()) return false;
  bool removed = std::filesystem::remove(paths.status_file, ec);
  removed = std::filesystem::remove(paths.pid_file, ec) || removed;
  // A crashed node's socket; only the PID and status files count as "stale files" reported.
  std::filesystem::remove(paths.api_socket, ec);
  return removed;
}

Expected<StopResult> stop_node(const DataPaths& paths, std::chrono::milliseconds timeout,
                               const std::function<void(std::string_view)>& progress,
                               const StopRequest& ask_first) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  StopResult result;
  auto pid = running_node_pid(paths);
  if (!pid) return tl::unexpected(pid.error());
  if (!pid->has_value()) {
    result.removed_stale_files = remove_stale_files(paths);
    return result;
  }
  result.pid = **pid;
  if (result.pid <= 0) {
    return fail("a node holds " + paths.lock_file.string() +
                " but its PID is unknown (no readable PID file)");
  }

  progress("Stopping node (PID " + std::to_string(result.pid) + ")...");
  bool accepted = ask_first && ask_first(result.pid);
  if (accepted) {
    auto released = wait_for_lock_release(paths, deadline);
    if (!released) return tl::unexpected(released.error());
    if (!*released) {
      progress("the node accepted the stop request but is still running after " +
               fmt_seconds(std::chrono::duration<double>(timeout).count()) + "; sending SIGTERM");
    }
    accepted = *released;
  }
  if (!accepted) {
    if (auto sent = request_graceful_stop(result.pid); !sent) {
      progress("cannot ask the node to stop: " + sent.error().message);
    }
  }
  auto released = wait_for_lock_release(paths, deadline);
  if (!released) return tl::unexpected(released.error());
  std::optional<ProcessId> holder_now;
  if (!*released) {
    // Asked again before killing: on Windows the holder's PID is a record the node writes just
    // after taking the lock, so a stop that raced a start may have read the previous holder's,
    // which may now be another program's PID. Seconds later the record is the node's.
    auto again = running_node_pid(paths);
    if (!again) return tl::unexpected(again.error());
    holder_now = *again;
    if (holder_now.has_value() && *holder_now > 0 && *holder_now != result.pid) {
      return fail("the node holding " + paths.lock_file.string() + " is PID " +
                  std::to_string(*holder_now) + ", not PID " + std::to_string(result.pid) +
                  " as first read; nothing was killed, run stop again");
    }
  }
  if (*released || !holder_now.has_value()) {
    result.outcome = StopResult::Outcome::kStopped;
  } else {
    auto seconds = std::chrono::duration<double>(timeout).count();
    progress("node did not stop within " + fmt_seconds(seconds) + "; killing it");
    if (auto killed = kill_process(result.pid); !killed) return tl::unexpected(killed.error());
    auto gone = wait_for_lock_release(paths, std::chrono::steady_clock::now() + kKillGrace);
    if (!gone) return tl::unexpected(gone.error());
    if (!*gone) {
      return fail("node (PID " + std::to_string(result.pid) + ") is still running after a kill");
    }
    result.outcome = StopResult::Outcome::kKilled;
  }
  wait_for_exit(result.pid);
  // A killed node had no chance to clean up; a graceful one already did.
  result.removed_stale_files = remove_stale_files(paths);
  return result;
}

}  // namespace an::daemon
