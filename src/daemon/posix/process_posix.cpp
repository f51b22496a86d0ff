// POSIX implementation of the process side of platform.h: locks, detaching, signals, the ready
// channel, crash reports, systemd notification, interface addresses.
#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "daemon/platform.h"

#if defined(__APPLE__)
#include <libproc.h>
#include <sys/sysctl.h>
#endif

extern char** environ;

namespace an::daemon {
namespace {

void close_quietly(NativeHandle& handle) {
  if (handle != kInvalidHandle) {
    ::close(static_cast<int>(handle));
    handle = kInvalidHandle;
  }
}

// Whole-file write lock request; l_len 0 means "to the end, however large it grows".
struct flock whole_file_lock(short type) {
  struct flock request {};
  request.l_type = type;
  request.l_whence = SEEK_SET;
  request.l_start = 0;
  request.l_len = 0;
  return request;
}

int open_lock_file(const std::filesystem::path& path, int flags) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

}  // namespace

// ---- FileLock ----

Expected<std::optional<FileLock>> FileLock::try_acquire(const std::filesystem::path& path) {
  int fd = open_lock_file(path, O_RDWR | O_CREAT);
  if (fd < 0) return fail_errno("cannot open lock file " + path.string());
  struct flock request = whole_file_lock(F_WRLCK);
  if (::fcntl(fd, F_SETLK, &request) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EACCES || err == EAGAIN) return std::optional<FileLock>{};
    return fail_errno("cannot lock " + path.string(), err);
  }
  return std::optional<FileLock>(FileLock(fd));
}

Expected<std::optional<ProcessId>> FileLock::holder(const std::filesystem::path& path) {
  int fd = open_lock_file(path, O_RDONLY);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<ProcessId>{};
    return fail_errno("cannot open lock file " + path.string());
  }
  // F_GETLK asks "would a write lock conflict?" without taking anything; the answer names the
  // holder's PID. A read-only descriptor is enough for the query.
  struct flock request = whole_file_lock(F_WRLCK);
  int rc = ::fcntl(fd, F_GETLK, &request);
  int err = errno;
  ::close(fd);
  if (rc != 0) return fail_errno("cannot query lock " + path.string(), err);
  if (request.l_type == F_UNLCK) return std::optional<ProcessId>{};
  // l_pid is 0 when the holder lives in another PID namespace.
  return std::optional<ProcessId>(request.l_pid > 0 ? request.l_pid : 0);
}

FileLock::FileLock(FileLock&& other) noexcept : handle_(other.handle_) {
  other.handle_ = kInvalidHandle;
}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    close_quietly(handle_);
    handle_ = other.handle_;
    other.handle_ = kInvalidHandle;
  }
  return *this;
}

FileLock::~FileLock() {
  close_quietly(handle_);
}

// ---- processes ----

std::filesystem::path current_executable() {
#if defined(__linux__)
  std::error_code ec;
  auto path = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path{} : path;
#elif defined(__APPLE__)
  char buffer[PROC_PIDPATHINFO_MAXSIZE];
  if (proc_pidpath(getpid(), buffer, sizeof(buffer)) > 0) return buffer;
  return {};
#else
  // No portable way; spawn_detached() refuses an empty path with a clear error.
  return {};
#endif
}

ProcessId current_process_id() {
  return ::getpid();
}

std::uint64_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0) return 0;
  return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size);
}

std::uint64_t descriptor_limit() {
  struct rlimit limit {};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 0;
  return static_cast<std::uint64_t>(limit.rlim_cur);
}

bool process_exists(ProcessId pid) {
  if (pid <= 0 || pid > INT_MAX) return false;
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return false;
#if defined(__linux__)
  // A zombie has exited already; only its parent's wait is missing. State is the field after
  // the parenthesised command name, which may itself contain ") ".
  std::ifstream stat_file("/proc/" + std::to_string(pid) + "/stat");
  std::string content((std::istreambuf_iterator<char>(stat_file)),
                      std::istreambuf_iterator<char>());
  auto close_paren = content.rfind(')');
  if (close_paren != std::string::npos && close_paren + 2 < content.size()) {
    char state = content[close_paren + 2];
    if (state == 'Z' || state == 'X') return false;
  }
#elif defined(__APPLE__)
  // A zombie has exited already; the process table says so. A failed query means "alive".
  struct kinfo_proc info {};
  std::size_t size = sizeof(info);
  int query[] = {CTL_KERN, KERN_PROC, KERN_PROC_PID, static_cast<int>(pid)};
  if (::sysctl(query, 4, &info, &size, nullptr, 0) == 0 && size >= sizeof(info) &&
      info.kp_proc.p_stat == SZOMB) {
    return false;
  }
#endif
  return true;
}

Expected<void> request_graceful_stop(ProcessId pid) {
  if (pid <= 0 || pid > INT_MAX) return fail("invalid process ID " + std::to_string(pid));
  if (::kill(static_cast<pid_t>(pid), SIGTERM) != 0) {
    return fail_errno("cannot signal process " + std::to_string(pid));
  }
  return {};
}

Expected<void> kill_process(ProcessId pid) {
  if (pid <= 0 || pid > INT_MAX) return fail("invalid process ID " + std::to_string(pid));
  if (::kill(static_cast<pid_t>(pid), SIGKILL) != 0 && errno != ESRCH) {
    return fail_errno("cannot kill process " + std::to_string(pid));
  }
  return {};
}

// ---- ready channel ----

ReadyReader::ReadyReader(ReadyReader&& other) noexcept : handle_(other.handle_) {
  other.handle_ = kInvalidHandle;
}

ReadyReader& ReadyReader::operator=(ReadyReader&& other) noexcept {
  if (this != &other) {
    close_quietly(handle_);
    handle_ = other.handle_;
    other.handle_ = kInvalidHandle;
  }
  return *this;
}

ReadyReader::~ReadyReader() {
  close_quietly(handle_);
}

Expected<std::optional<std::string>> ReadyReader::read_all(std::chrono::milliseconds timeout) {
  if (handle_ == kInvalidHandle) return fail("ready channel is closed");
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string message;
  constexpr std::size_t kMaxMessage = 1 << 20;
  for (;;) {
    auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (remaining.count() <= 0) return std::optional<std::string>{};
    struct pollfd pfd {};
    pfd.fd = static_cast<int>(handle_);
    pfd.events = POLLIN;
    int rc = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(remaining.count(), INT_MAX)));
    if (rc < 0) {
      if (errno == EINTR) continue;
      return fail_errno("waiting for the node");
    }
    if (rc == 0) continue;
    char buffer[4096];
    ssize_t got = ::read(static_cast<int>(handle_), buffer, sizeof(buffer));
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return fail_errno("reading from the node");
    }
    if (got == 0) return std::optional<std::string>(std::move(message));
    if (message.size() + static_cast<std::size_t>(got) > kMaxMessage) {
      return fail("the node sent an oversized ready message");
    }
    message.append(buffer, static_cast<std::size_t>(got));
  }
}

std::optional<ReadyWriter> ReadyWriter::from_environment() {
  const char* value = std::getenv(kReadyEnvVar);
  if (value == nullptr) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  long fd = std::strtol(value, &end, 10);
  ::unsetenv(kReadyEnvVar);
  if (errno != 0 || end == value || *end != '\0' || fd < 3 || fd > INT_MAX) return std::nullopt;
  if (::fcntl(static_cast<int>(fd), F_GETFD) < 0) return std::nullopt;
  // Not for our own children.
  ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
  return ReadyWriter(fd);
}

ReadyWriter::ReadyWriter(ReadyWriter&& other) noexcept : handle_(other.handle_) {
  other.handle_ = kInvalidHandle;
}

ReadyWriter& ReadyWriter::operator=(ReadyWriter&& other) noexcept {
  if (this != &other) {
    close_quietly(handle_);
    handle_ = other.handle_;
    other.handle_ = kInvalidHandle;
  }
  return *this;
}

ReadyWriter::~ReadyWriter() {
  close_quietly(handle_);
}

void ReadyWriter::send_and_close(std::string_view message) {
  if (handle_ == kInvalidHandle) return;
  const char* data = message.data();
  std::size_t left = message.size();
  while (left > 0) {
    ssize_t written = ::write(static_cast<int>(handle_), data, left);
    if (written < 0) {
      if (errno == EINTR) continue;
      break;  // the parent is gone (EPIPE): nobody to tell
    }
    data += written;
    left -= static_cast<std::size_t>(written);
  }
  close_quietly(handle_);
}

// ---- spawning a daemon ----

namespace {

// Everything between fork and exec must be async-signal-safe, so the argument and environment
// vectors are built before forking.
struct ExecPlan {
  std::vector<std::string> argument_storage;
  std::vector<char*> argv;
  std::vector<std::string> env_storage;
  std::vector<char*> envp;
};

ExecPlan make_exec_plan(const std::filesystem::path& executable,
                        const std::vector<std::string>& args,
                        const std::vector<std::pair<std::string, std::string>>& extra_env,
                        int ready_fd) {
  ExecPlan plan;
  plan.argument_storage.push_back(executable.string());
  for (const auto& arg : args)
    plan.argument_storage.push_back(arg);
  for (auto& arg : plan.argument_storage)
    plan.argv.push_back(arg.data());
  plan.argv.push_back(nullptr);

  std::vector<std::string> overridden;
  for (const auto& [name, value] : extra_env)
    overridden.push_back(name);
  overridden.push_back(kReadyEnvVar);
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    auto eq = text.find('=');
    std::string_view name = text.substr(0, eq);
    bool replaced = false;
    for (const auto& o : overridden)
      replaced = replaced || name == o;
    if (!replaced) plan.env_storage.emplace_back(text);
  }
  for (const auto& [name, value] : extra_env)
    plan.env_storage.push_back(name + "=" + value);
  plan.env_storage.push_back(std::string(kReadyEnvVar) + "=" + std::to_string(ready_fd));
  for (auto& entry : plan.env_storage)
    plan.envp.push_back(entry.data());
  plan.envp.push_back(nullptr);
  return plan;
}

[[noreturn]] void child_fail(int report_fd, const char* what) {
  // The parent reads this as the ready message: a failure in plain words.
  int err = errno;
  const char* prefix = "{\"ok\":false,\"error\":\"cannot start the node process: ";
  (void)!::write(report_fd, prefix, std::strlen(prefix));
  (void)!::write(report_fd, what, std::strlen(what));
  (void)!::write(report_fd, ": ", 2);
  const char* reason = std::strerror(err);
  (void)!::write(report_fd, reason, std::strlen(reason));
  (void)!::write(report_fd, "\"}", 2);
  ::_exit(127);
}

}  // namespace

Expected<DetachedChild> spawn_detached(
    const std::filesystem::path& executable, const std::vector<std::string>& args,
    const std::vector<std::pair<std::string, std::string>>& extra_env,
    const std::filesystem::path& working_dir, const std::filesystem::path& output_file) {
  if (executable.empty()) {
    return fail(
        "cannot find the path of this program on this system, so it cannot start itself "
        "in the background; use `run` instead");
  }
  int pipe_fds[2];
  // Both ends close on exec: another thread may fork and exec a child of its own meanwhile, and
  // a node holding a copy of the write end would keep the parent waiting for EOF. Only our own
  // child clears the flag on the write end, between fork and exec.
#if defined(__APPLE__)
  if (::pipe(pipe_fds) != 0) return fail_errno("cannot create a pipe");
  ::fcntl(pipe_fds[0], F_SETFD, FD_CLOEXEC);
  ::fcntl(pipe_fds[1], F_SETFD, FD_CLOEXEC);
#else
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return fail_errno("cannot create a pipe");
#endif
  int ready_fd = pipe_fds[1];

  int output_fd = ::open(output_file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (output_fd < 0) {
    auto error = fail_errno("cannot open " + output_file.string());
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    return error;
  }
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0) {
    auto error = fail_errno("cannot open /dev/null");
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    ::close(output_fd);
    return error;
  }

  ExecPlan plan = make_exec_plan(executable, args, extra_env, ready_fd);
  std::string working_dir_text = working_dir.string();

  pid_t pid = ::fork();
  if (pid < 0) {
    auto error = fail_errno("cannot fork");
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    ::close(output_fd);
    ::close(null_fd);
    return error;
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls from here to exec.
    if (::setsid() < 0) child_fail(ready_fd, "setsid");
    // Signals the parent ignores or blocks must not stay that way in the daemon.
    sigset_t all;
    sigemptyset(&all);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);
    for (int sig : {SIGHUP, SIGINT, SIGTERM, SIGPIPE, SIGCHLD})
      ::signal(sig, SIG_DFL);
    if (::dup2(null_fd, STDIN_FILENO) < 0) child_fail(ready_fd, "stdin");
    if (::dup2(output_fd, STDOUT_FILENO) < 0) child_fail(ready_fd, "stdout");
    if (::dup2(output_fd, STDERR_FILENO) < 0) child_fail(ready_fd, "stderr");
    if (!working_dir_text.empty() && ::chdir(working_dir_text.c_str()) != 0) {
      child_fail(ready_fd, "chdir");
    }
    ::umask(022);
    if (::fcntl(ready_fd, F_SETFD, 0) != 0) child_fail(ready_fd, "ready channel");
    ::execve(plan.argv[0], plan.argv.data(), plan.envp.data());
    child_fail(ready_fd, "exec");
  }
  ::close(pipe_fds[1]);
  ::close(output_fd);
  ::close(null_fd);
  return DetachedChild{pid, ReadyReader(pipe_fds[0])};
}

bool attached_to_console() {
  // ENXIO is the answer without a controlling terminal; any other failure (no /dev/tty in a
  // minimal container) leaves nothing to talk to either.
  int fd = ::open("/dev/tty", O_RDONLY | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

Expected<void> redirect_stdin_to_null() {
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0) return fail_errno("cannot open /dev/null");
  int rc = ::dup2(null_fd, STDIN_FILENO);
  int err = errno;
  ::close(null_fd);
  if (rc < 0) return fail_errno("cannot redirect stdin", err);
  return {};
}

namespace {
class PosixStopRequestListener final : public StopRequestListener {};
}  // namespace

Expected<std::unique_ptr<StopRequestListener>> StopRequestListener::start(std::function<void()>) {
  return std::unique_ptr<StopRequestListener>(new PosixStopRequestListener());
}

// ---- crash reports ----

namespace {

const char* signal_name(int sig) {
  switch (sig) {
    case SIGSEGV:
      return "SIGSEGV";
    case SIGBUS:
      return "SIGBUS";
    case SIGFPE:
      return "SIGFPE";
    case SIGILL:
      return "SIGILL";
    case SIGABRT:
      return "SIGABRT";
    default:
      return "signal";
  }
}

void write_decimal(int fd, long value) {
  char digits[24];
  int len = 0;
  if (value == 0) digits[len++] = '0';
  while (value > 0 && len < 20) {
    digits[len++] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  char out[24];
  for (int i = 0; i < len; ++i)
    out[i] = digits[len - 1 - i];
  (void)!::write(fd, out, static_cast<std::size_t>(len));
}

void report_fatal_signal(int sig) {
  // Async-signal-safe only: raw write(2) to stderr, which is the log file in a daemon.
  const char* prefix = "agentnetwork: fatal signal ";
  (void)!::write(STDERR_FILENO, prefix, std::strlen(prefix));
  const char* name = signal_name(sig);
  (void)!::write(STDERR_FILENO, name, std::strlen(name));
  const char* mid = " in process ";
  (void)!::write(STDERR_FILENO, mid, std::strlen(mid));
  write_decimal(STDERR_FILENO, static_cast<long>(::getpid()));
  (void)!::write(STDERR_FILENO, "\n", 1);
  // Die the way the signal wanted, so exit status and core dumps stay truthful.
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

}  // namespace

void install_crash_reporter() {
  struct sigaction action {};
  action.sa_handler = report_fatal_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESETHAND | SA_NODEFER;
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT})
    ::sigaction(sig, &action, nullptr);
}

// ---- systemd ----

bool notify_service_manager(std::string_view state) {
  const char* socket_path = std::getenv("NOTIFY_SOCKET");
  if (socket_path == nullptr || socket_path[0] == '\0') return false;
  std::string path(socket_path);
  struct sockaddr_un address {};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path)) return false;
  std::memcpy(address.sun_path, path.data(), path.size());
  socklen_t length = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + path.size());
  if (path[0] == '@') {
#if defined(__linux__)
    address.sun_path[0] = '\0';  // abstract namespace
#else
    return false;
#endif
  } else {
    length += 1;
  }
  int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
  if (fd < 0) return false;
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  ssize_t sent = ::sendto(fd, state.data(), state.size(), 0,
                          reinterpret_cast<const struct sockaddr*>(&address), length);
  ::close(fd);
  return sent == static_cast<ssize_t>(state.size());
}

// ---- interfaces ----

std::vector<std::string> interface_addresses(bool ipv6) {
  std::vector<std::string> result;
  struct ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return result;
  for (struct ifaddrs* entry = list; entry != nullptr; entry = entry->ifa_next) {
    if (entry->ifa_addr == nullptr || (entry->ifa_flags & IFF_UP) == 0) continue;
    char text[INET6_ADDRSTRLEN] = {};
    if (!ipv6 && entry->ifa_addr->sa_family == AF_INET) {
      auto* address = reinterpret_cast<struct sockaddr_in*>(entry->ifa_addr);
      if (::inet_ntop(AF_INET, &address->sin_addr, text, sizeof(text)) == nullptr) continue;
    } else if (ipv6 && entry->ifa_addr->sa_family == AF_INET6) {
      auto* address = reinterpret_cast<struct sockaddr_in6*>(entry->ifa_addr);
      if (IN6_IS_ADDR_LINKLOCAL(&address->sin6_addr)) continue;
      if (::inet_ntop(AF_INET6, &address->sin6_addr, text, sizeof(text)) == nullptr) continue;
    } else {
      continue;
    }
    std::string value(text);
    bool seen = false;
    for (const auto& existing : result)
      seen = seen || existing == value;
    if (!seen) result.push_back(std::move(value));
  }
  ::freeifaddrs(list);
  return result;
}

}  // namespace an::daemon
