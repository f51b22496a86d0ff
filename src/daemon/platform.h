// Everything the daemon needs from the operating system, behind one interface. Implemented in
// posix/*.cpp (Linux, macOS) and windows/*.cpp; no other file of the daemon layer includes an
// OS header. All functions may be called from any thread unless
// noted; objects are owned by the caller and are not shared between threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "util/expected.h"

namespace an::daemon {

using ProcessId = std::int64_t;

// Native file handle: an fd on POSIX, a HANDLE (as intptr_t) on Windows.
using NativeHandle = std::intptr_t;
inline constexpr NativeHandle kInvalidHandle = -1;

// ---- exclusive data-directory lock ----------------------------------------------------------

// An exclusive, advisory OS lock on one file, held until destruction or process exit (a crash
// releases it too). POSIX: fcntl record lock; Windows: LockFileEx.
class FileLock {
 public:
  // Creates the file if needed and tries once. nullopt: another process holds it.
  static Expected<std::optional<FileLock>> try_acquire(const std::filesystem::path& path);

  // Who holds the lock now, without taking it. nullopt: nobody. A value of 0 means "held, but
  // the OS does not say by whom" (then the PID file is the best source). Windows has no such
  // query: try_acquire writes the holder's PID into the file, and this reads it back.
  // POSIX caveat: never call this from the process holding the lock (closing any descriptor of
  // the file drops a process's fcntl locks).
  static Expected<std::optional<ProcessId>> holder(const std::filesystem::path& path);

  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

 private:
  explicit FileLock(NativeHandle handle) : handle_(handle) {}
  NativeHandle handle_ = kInvalidHandle;
};

// ---- files -----------------------------------------------------------------------------------

// Whether a write waits for the disk (fsync): keys and the PID file must survive a power loss;
// the status file is rewritten often, by the network thread, and again at every start.
enum class Durability { kFlushToDisk, kNoFlush };

// Writes `content` to a temporary file beside `path`, flushes it to disk (unless kNoFlush) and
// renames it over `path`, so readers see the old or the new content, never a mix. `owner_only`
// creates it 0600.
Expected<void> write_file_atomically(const std::filesystem::path& path, std::string_view content,
                                     bool owner_only,
                                     Durability durability = Durability::kFlushToDisk);

// Like write_file_atomically, but fails (AlreadyExists = true) instead of replacing an existing
// file, so that concurrent creators agree on one winner.
struct CreateResult {
  bool already_exists = false;
};
Expected<CreateResult> create_file_exclusively(const std::filesystem::path& path,
                                               std::string_view content, bool owner_only);

// Renames `from` to `to`, replacing `to` if it exists, as POSIX rename() does. `from` may be open
// (on Windows with delete sharing, as AppendFile and ReadFile open files). On Windows the
// replacement also works while others hold `to` open with delete sharing (POSIX semantics,
// Windows 10 1607 and later on NTFS; elsewhere MoveFileExW, which refuses that). A missing `from`
// fails with std::errc::no_such_file_or_directory. One attempt only: a sharing conflict is
// reported at once, for the caller to retry later.
Expected<void> rename_file(const std::filesystem::path& from, const std::filesystem::path& to);

// Creates a directory (and parents). `owner_only`: the last component is 0700 (existing
// directories are left as they are).
Expected<void> make_directory(const std::filesystem::path& path, bool owner_only);

// Non-empty when the file can be read by anyone but its owner: a message naming the mode.
// Always empty on Windows, where access is governed by ACLs.
std::string describe_loose_permissions(const std::filesystem::path& path);

// Command that makes `path` private, for error messages ("chmod 600 path").
std::string private_permissions_fix(const std::filesystem::path& path);

// While alive, files and Unix sockets this process creates are private to its user from their
// first instant (POSIX: umask 0177, restored on destruction; the umask is per process, so no two
// scopes may overlap in time). Windows: no effect; new files take their directory's ACL.
class PrivateCreationScope {
 public:
  PrivateCreationScope();
  ~PrivateCreationScope();
  PrivateCreationScope(const PrivateCreationScope&) = delete;
  PrivateCreationScope& operator=(const PrivateCreationScope&) = delete;

 private:
  unsigned previous_mask_ = 0;
};

// Makes an existing file or socket readable and writable by its owner only (chmod 600).
// Windows: no effect (ACLs).
Expected<void> make_private(const std::filesystem::path& path);

// A file opened for appending that others may rename while it is open (Windows:
// FILE_SHARE_DELETE). Writes are not buffered.
class AppendFile {
 public:
  static Expected<AppendFile> open(const std::filesystem::path& path);
  AppendFile() = default;
  AppendFile(AppendFile&& other) noexcept;
  AppendFile& operator=(AppendFile&& other) noexcept;
  AppendFile(const AppendFile&) = delete;
  AppendFile& operator=(const AppendFile&) = delete;
  ~AppendFile();

  bool is_open() const { return handle_ != kInvalidHandle; }
  Expected<void> write(std::string_view bytes);
  // Current size on disk, including what other writers (e.g. raw stdout) appended.
  Expected<std::uint64_t> size() const;
  // Makes this file the process's stdout and stderr (dup2 / SetStdHandle).
  Expected<void> become_stdout_and_stderr() const;
  void close();

 private:
  explicit AppendFile(NativeHandle handle) : handle_(handle) {}
  NativeHandle handle_ = kInvalidHandle;
};

// Identity of a file on disk (device + inode / volume + file ID), to notice renames.
struct FileIdentity {
  std::uint64_t device = 0;
  std::uint64_t index = 0;
  // Windows file IDs have 128 bits (ReFS uses them all); this is the upper half, 0 elsewhere.
  std::uint64_t index_high = 0;
  bool operator==(const FileIdentity&) const = default;
};
std::optional<FileIdentity> file_identity(const std::filesystem::path& path);

// A file opened for reading that tolerates being renamed or deleted by the writer.
class ReadFile {
 public:
  static Expected<ReadFile> open(const std::filesystem::path& path);
  ReadFile() = default;
  ReadFile(ReadFile&& other) noexcept;
  ReadFile& operator=(ReadFile&& other) noexcept;
  ReadFile(const ReadFile&) = delete;
  ReadFile& operator=(const ReadFile&) = delete;
  ~ReadFile();

  bool is_open() const { return handle_ != kInvalidHandle; }
  // Reads at most `size` bytes at `offset`; 0 at end of file.
  Expected<std::size_t> read_at(std::uint64_t offset, char* buffer, std::size_t size) const;
  Expected<std::uint64_t> size() const;
  Expected<FileIdentity> identity() const;

 private:
  explicit ReadFile(NativeHandle handle) : handle_(handle) {}
  NativeHandle handle_ = kInvalidHandle;
};

// ---- processes -------------------------------------------------------------------------------

std::filesystem::path current_executable();
ProcessId current_process_id();

// The machine's physical memory in bytes, and the number of descriptors (POSIX) or handles
// (Windows) this process may open; 0 when unknown. Resource limits scale with them.
std::uint64_t physical_memory_bytes();
std::uint64_t descriptor_limit();

// True while a process with this ID exists (a zombie counts as gone).
bool process_exists(ProcessId pid);

// Asks a process to shut down and run its cleanup (POSIX SIGTERM; Windows: sets the named
// stop event the node listens on, see StopRequestListener).
Expected<void> request_graceful_stop(ProcessId pid);

// Ends a process at once (SIGKILL / TerminateProcess).
Expected<void> kill_process(ProcessId pid);

// The parent's end of the "ready" channel of a detached child: one message, then EOF.
class ReadyReader {
 public:
  ReadyReader() = default;
  explicit ReadyReader(NativeHandle handle) : handle_(handle) {}
  ReadyReader(ReadyReader&& other) noexcept;
  ReadyReader& operator=(ReadyReader&& other) noexcept;
  ~ReadyReader();

  // The child's whole message once it closes its end, nullopt on timeout. An empty string means
  // the child exited (or closed the channel) without a word.
  Expected<std::optional<std::string>> read_all(std::chrono::milliseconds timeout);

 private:
  NativeHandle handle_ = kInvalidHandle;
};

struct DetachedChild {
  ProcessId pid = 0;
  ReadyReader ready;
};

// Starts `executable args...` as a daemon: POSIX: new session, no controlling terminal, stdin
// from the null device, stdout/stderr to `output_file` (appended); Windows: new process group,
// no console. The child finds the write end of the ready channel through the environment
// variable kReadyEnvVar and `extra_env` is added to its environment.
inline constexpr const char* kReadyEnvVar = "AGENTNETWORK_READY_FD";
Expected<DetachedChild> spawn_detached(
    const std::filesystem::path& executable, const std::vector<std::string>& args,
    const std::vector<std::pair<std::string, std::string>>& extra_env,
    const std::filesystem::path& working_dir, const std::filesystem::path& output_file);

// The child's end of the ready channel, taken from the environment (and removed from it, so
// grandchildren do not inherit it). nullopt when not started by spawn_detached.
class ReadyWriter {
 public:
  static std::optional<ReadyWriter> from_environment();
  ReadyWriter(ReadyWriter&& other) noexcept;
  ReadyWriter& operator=(ReadyWriter&& other) noexcept;
  ReadyWriter(const ReadyWriter&) = delete;
  ReadyWriter& operator=(const ReadyWriter&) = delete;
  ~ReadyWriter();
  // Sends the message and closes the channel. Only the first call has an effect.
  void send_and_close(std::string_view message);

 private:
  explicit ReadyWriter(NativeHandle handle) : handle_(handle) {}
  NativeHandle handle_ = kInvalidHandle;
};

// Whether this process has a terminal to talk to: POSIX: a controlling terminal (/dev/tty opens);
// Windows: a console. A daemon started by spawn_detached has neither.
bool attached_to_console();

// Points stdin at the null device.
Expected<void> redirect_stdin_to_null();

// Makes writes to a closed socket or pipe fail with an error instead of ending the process with
// SIGPIPE. Windows has no such signal: no effect.
void ignore_broken_pipe_signal();

// Delivers graceful-stop requests aimed at this process (Windows' named stop event) to
// `on_stop`, called on an internal thread. On POSIX this is a no-op: SIGTERM is handled by the
// caller's signal handling.
class StopRequestListener {
 public:
  static Expected<std::unique_ptr<StopRequestListener>> start(std::function<void()> on_stop);
  virtual ~StopRequestListener() = default;
};

// Installs handlers that write a one-line report of a fatal signal / unhandled exception to
// stderr (async-signal-safe) before the process dies, so the crash lands in the log.
void install_crash_reporter();

// systemd notification (sd_notify protocol) to $NOTIFY_SOCKET; false when it is unset or the
// send failed. No-op on Windows.
bool notify_service_manager(std::string_view state);

// Addresses of the machine's network interfaces that are up (numeric text, no scope for IPv4;
// link-local IPv6 omitted).
std::vector<std::string> interface_addresses(bool ipv6);

}  // namespace an::daemon
