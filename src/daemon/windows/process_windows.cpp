// Windows implementation of the process side of platform.h: process queries, the named stop
// event, detached children and their ready pipe, standard input, crash reports.
#include "daemon/windows/windows_support.h"

#include <fcntl.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <thread>

#include "daemon/platform.h"

namespace an::daemon {
namespace {

namespace fs = std::filesystem;

// Anything larger is not a Windows process ID.
constexpr ProcessId kMaxProcessId = 0xFFFFFFFF;

bool valid_pid(ProcessId pid) {
  return pid > 0 && pid <= kMaxProcessId;
}

// One name per process, in the session namespace: the PID makes several nodes on one machine
// independent, and "Local\" needs no privilege (unlike "Global\").
std::wstring stop_event_name(ProcessId pid) {
  return L"Local\\agentnetwork-stop-" + std::to_wstring(pid);
}

}  // namespace

// ---- processes ----

std::filesystem::path current_executable() {
  // MAX_PATH is only a first guess: with long paths enabled the name can be far longer, and a
  // truncated result is reported by filling the whole buffer.
  std::wstring buffer(MAX_PATH, L'\0');
  for (;;) {
    DWORD length = ::GetModuleFileNameW(nullptr, buffer.data(), static_cast<DWORD>(buffer.size()));
    if (length == 0) return {};
    if (length < buffer.size()) {
      buffer.resize(length);
      return fs::path(buffer);
    }
    if (buffer.size() >= 64 * 1024) return {};  // beyond the longest path Windows allows
    buffer.resize(buffer.size() * 2);
  }
}

ProcessId current_process_id() {
  return ::GetCurrentProcessId();
}

std::uint64_t physical_memory_bytes() {
  MEMORYSTATUSEX status{};
  status.dwLength = sizeof(status);
  if (!::GlobalMemoryStatusEx(&status)) return 0;
  return status.ullTotalPhys;
}

std::uint64_t descriptor_limit() {
  // Sockets are handles, which Windows does not cap per process the way POSIX caps descriptors;
  // go-libp2p takes the limit for unbounded there too. 2^24 handles is far beyond any node.
  return std::uint64_t{1} << 24;
}

bool process_exists(ProcessId pid) {
  if (!valid_pid(pid)) return false;
  const DWORD id = static_cast<DWORD>(pid);
  if (id == ::GetCurrentProcessId()) return true;
  win::UniqueHandle process(
      ::OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, FALSE, id));
  if (!process.valid()) {
    // ERROR_INVALID_PARAMETER: no such process. Access denied: it exists but belongs to another
    // user or is protected; querying alone may still be allowed and tell whether it has exited.
    if (::GetLastError() != ERROR_ACCESS_DENIED) return false;
    HANDLE limited = ::OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, id);
    if (limited == nullptr) return ::GetLastError() == ERROR_ACCESS_DENIED;
    process = win::UniqueHandle(limited);
    DWORD code = 0;
    return ::GetExitCodeProcess(process.get(), &code) && code == STILL_ACTIVE;
  }
  // A process object outlives the process while anyone holds a handle to it, like a zombie: only
  // an unsignalled one is still running. (GetExitCodeProcess alone would mistake a process that
  // exited with code 259 for a live one.)
  switch (::WaitForSingleObject(process.get(), 0)) {
    case WAIT_TIMEOUT:
      return true;
    case WAIT_OBJECT_0:
      return false;
    default: {
      DWORD code = 0;
      return ::GetExitCodeProcess(process.get(), &code) && code == STILL_ACTIVE;
    }
  }
}

Expected<void> request_graceful_stop(ProcessId pid) {
  if (!valid_pid(pid)) return fail("invalid process ID " + std::to_string(pid));
  // Windows has no SIGTERM for a process without a console; the node waits on a named event
  // instead (StopRequestListener), and setting it lets the node run its normal shutdown.
  std::wstring name = stop_event_name(pid);
  win::UniqueHandle event(::OpenEventW(EVENT_MODIFY_STATE, FALSE, name.c_str()));
  if (!event.valid()) {
    DWORD error = ::GetLastError();
    if (error == ERROR_FILE_NOT_FOUND) {
      return fail("process " + std::to_string(pid) + " does not accept stop requests",
                  std::error_code(static_cast<int>(error), std::system_category()));
    }
    return win::fail_win("cannot reach the stop event of process " + std::to_string(pid), error);
  }
  if (!::SetEvent(event.get())) {
    DWORD error = ::GetLastError();
    return win::fail_win("cannot ask process " + std::to_string(pid) + " to stop", error);
  }
  return {};
}

Expected<void> kill_process(ProcessId pid) {
  if (!valid_pid(pid)) return fail("invalid process ID " + std::to_string(pid));
  win::UniqueHandle process(
      ::OpenProcess(PROCESS_TERMINATE | SYNCHRONIZE, FALSE, static_cast<DWORD>(pid)));
  if (!process.valid()) {
    DWORD error = ::GetLastError();
    // Gone already: what the caller wanted (as ESRCH is on POSIX).
    if (error == ERROR_INVALID_PARAMETER) return {};
    return win::fail_win("cannot kill process " + std::to_string(pid), error);
  }
  if (!::TerminateProcess(process.get(), 1)) {
    DWORD error = ::GetLastError();
    // Terminating a process that is already exiting fails with access denied.
    if (::WaitForSingleObject(process.get(), 0) == WAIT_OBJECT_0) return {};
    return win::fail_win("cannot kill process " + std::to_string(pid), error);
  }
  return {};
}

// ---- ready channel ----

ReadyReader::ReadyReader(ReadyReader&& other) noexcept
    : handle_(std::exchange(other.handle_, kInvalidHandle)) {}

ReadyReader& ReadyReader::operator=(ReadyReader&& other) noexcept {
  if (this != &other) {
    win::close_quietly(handle_);
    handle_ = std::exchange(other.handle_, kInvalidHandle);
  }
  return *this;
}

ReadyReader::~ReadyReader() {
  win::close_quietly(handle_);
}

Expected<std::optional<std::string>> ReadyReader::read_all(std::chrono::milliseconds timeout) {
  if (handle_ == kInvalidHandle) return fail("ready channel is closed");
  constexpr std::size_t kMaxMessage = 1 << 20;
  const HANDLE pipe = win::to_handle(handle_);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string message;
  char buffer[4096];

  // Reads what is there; true at end of file (every write end closed).
  auto read_some = [&](DWORD want, bool& eof) -> Expected<void> {
    DWORD got = 0;
    if (!::ReadFile(pipe, buffer, std::min<DWORD>(want, sizeof(buffer)), &got, nullptr)) {
      DWORD error = ::GetLastError();
      if (error == ERROR_BROKEN_PIPE) {
        eof = true;
        return {};
      }
      return win::fail_win("reading from the node", error);
    }
    if (message.size() + got > kMaxMessage) return fail("the node sent an oversized ready message");
    message.append(buffer, got);
    return {};
  };

  // Anonymous pipes cannot be waited on or read with a timeout, so poll: PeekNamedPipe never
  // blocks, and a read is only issued when it will not block either.
  DWORD pause_ms = 1;
  for (;;) {
    DWORD available = 0;
    if (!::PeekNamedPipe(pipe, nullptr, 0, nullptr, &available, nullptr)) {
      DWORD error = ::GetLastError();
      if (error != ERROR_BROKEN_PIPE) return win::fail_win("waiting for the node", error);
      // The writer is gone; whatever it left in the pipe is still to be read, and with no writer
      // left ReadFile returns at once.
      for (bool eof = false; !eof;) {
        if (auto read = read_some(sizeof(buffer), eof); !read) return tl::unexpected(read.error());
      }
      return std::optional<std::string>(std::move(message));
    }
    if (available > 0) {
      bool eof = false;
      if (auto read = read_some(available, eof); !read) return tl::unexpected(read.error());
      if (eof) return std::optional<std::string>(std::move(message));
      pause_ms = 1;
      continue;
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return std::optional<std::string>{};
    auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
    ::Sleep(static_cast<DWORD>(std::clamp<long long>(remaining, 1, pause_ms)));
    pause_ms = std::min<DWORD>(pause_ms * 2, 20);
  }
}

std::optional<ReadyWriter> ReadyWriter::from_environment() {
  const std::wstring name = win::to_wide(kReadyEnvVar);
  wchar_t value[32] = {};
  DWORD length = ::GetEnvironmentVariableW(name.c_str(), value, 32);
  if (length == 0) return std::nullopt;
  // Removed from both the Win32 environment (CreateProcess) and the C runtime's copy (getenv,
  // _spawn), so that no grandchild mistakes some handle of its own for the channel.
  ::SetEnvironmentVariableW(name.c_str(), nullptr);
  std::string unset = std::string(kReadyEnvVar) + "=";
  ::_putenv(unset.c_str());
  if (length >= 32) return std::nullopt;

  std::uint64_t number = 0;
  for (DWORD i = 0; i < length; ++i) {
    if (value[i] < L'0' || value[i] > L'9' || number > (UINT64_MAX - 9) / 10) return std::nullopt;
    number = number * 10 + static_cast<std::uint64_t>(value[i] - L'0');
  }
  if (number == 0) return std::nullopt;
  HANDLE handle = reinterpret_cast<HANDLE>(static_cast<std::uintptr_t>(number));
  // A stale or foreign value must not make us write into some unrelated handle.
  if (::GetFileType(handle) != FILE_TYPE_PIPE) return std::nullopt;
  // Not for our own children: they would keep the parent waiting for EOF.
  ::SetHandleInformation(handle, HANDLE_FLAG_INHERIT, 0);
  return ReadyWriter(win::from_handle(handle));
}

ReadyWriter::ReadyWriter(ReadyWriter&& other) noexcept
    : handle_(std::exchange(other.handle_, kInvalidHandle)) {}

ReadyWriter& ReadyWriter::operator=(ReadyWriter&& other) noexcept {
  if (this != &other) {
    win::close_quietly(handle_);
    handle_ = std::exchange(other.handle_, kInvalidHandle);
  }
  return *this;
}

ReadyWriter::~ReadyWriter() {
  win::close_quietly(handle_);
}

void ReadyWriter::send_and_close(std::string_view message) {
  if (handle_ == kInvalidHandle) return;
  const char* data = message.data();
  std::size_t left = message.size();
  while (left > 0) {
    DWORD written = 0;
    DWORD chunk = static_cast<DWORD>(std::min<std::size_t>(left, 64 * 1024));
    // Fails with ERROR_NO_DATA once the parent has gone: nobody left to tell.
    if (!::WriteFile(win::to_handle(handle_), data, chunk, &written, nullptr) || written == 0) {
      break;
    }
    data += written;
    left -= written;
  }
  win::close_quietly(handle_);
}

// ---- spawning a daemon ----

namespace {

// Large enough for any ready message, so the child never blocks on a parent that stopped
// reading (it timed out but has not exited yet).
constexpr DWORD kReadyPipeBuffer = 64 * 1024;

// Appends `arg` so that CommandLineToArgvW and the C runtime's argv parser give it back as
// is: backslashes are literal except before a quote, where each one must be doubled.
void append_argument(std::wstring& command_line, std::wstring_view arg) {
  if (!arg.empty() && arg.find_first_of(L" \t\n\v\"") == std::wstring_view::npos) {
    command_line += arg;
    return;
  }
  command_line += L'"';
  for (std::size_t i = 0;; ++i) {
    std::size_t backslashes = 0;
    while (i < arg.size() && arg[i] == L'\\') {
      ++i;
      ++backslashes;
    }
    if (i == arg.size()) {
      // They precede the closing quote.
      command_line.append(backslashes * 2, L'\\');
      break;
    }
    if (arg[i] == L'"') {
      command_line.append(backslashes * 2 + 1, L'\\');
      command_line += L'"';
    } else {
      command_line.append(backslashes, L'\\');
      command_line += arg[i];
    }
  }
  command_line += L'"';
}

std::wstring build_command_line(const fs::path& executable, const std::vector<std::string>& args) {
  // The program name follows simpler rules (no escapes, quotes only delimit); a path cannot
  // contain quotes, so quoting it whole is always right.
  std::wstring command_line = L"\"" + executable.native() + L"\"";
  for (const auto& arg : args) {
    command_line += L' ';
    append_argument(command_line, win::to_wide(arg));
  }
  return command_line;
}

// Name of an environment entry. Entries such as "=C:=C:\dir" (per-drive current directories)
// start with '=', which belongs to the name.
std::wstring_view entry_name(std::wstring_view entry) {
  return entry.substr(0, entry.find(L'=', 1));
}

bool same_name(std::wstring_view a, std::wstring_view b) {
  // Environment names are case-insensitive on Windows; ordinal, not locale-dependent.
  return ::CompareStringOrdinal(a.data(), static_cast<int>(a.size()), b.data(),
                                static_cast<int>(b.size()), TRUE) == CSTR_EQUAL;
}

// This process's environment with `overrides` replacing entries of the same name, as a
// CREATE_UNICODE_ENVIRONMENT block, sorted by name as CreateProcess expects.
std::wstring build_environment(
    const std::vector<std::pair<std::wstring, std::wstring>>& overrides) {
  std::vector<std::wstring> entries;
  if (wchar_t* block = ::GetEnvironmentStringsW(); block != nullptr) {
    for (const wchar_t* entry = block; *entry != L'\0';) {
      std::wstring_view text(entry);
      bool replaced = false;
      for (const auto& [name, value] : overrides) {
        replaced = replaced || same_name(entry_name(text), name);
      }
      if (!replaced) entries.emplace_back(text);
      entry += text.size() + 1;
    }
    ::FreeEnvironmentStringsW(block);
  }
  for (const auto& [name, value] : overrides) {
    entries.push_back(name + L"=" + value);
  }
  std::stable_sort(
      entries.begin(), entries.end(), [](const std::wstring& a, const std::wstring& b) {
        std::wstring_view name_a = entry_name(a);
        std::wstring_view name_b = entry_name(b);
        return ::CompareStringOrdinal(name_a.data(), static_cast<int>(name_a.size()), name_b.data(),
                                      static_cast<int>(name_b.size()), TRUE) == CSTR_LESS_THAN;
      });
  std::wstring result;
  for (const auto& entry : entries) {
    result += entry;
    result += L'\0';
  }
  // An empty block still needs its two terminating characters.
  if (result.empty()) result += L'\0';
  result += L'\0';
  return result;
}

// Owns an initialised PROC_THREAD_ATTRIBUTE_LIST.
class AttributeList {
 public:
  AttributeList() = default;
  AttributeList(const AttributeList&) = delete;
  AttributeList& operator=(const AttributeList&) = delete;
  ~AttributeList() {
    if (initialised_) ::DeleteProcThreadAttributeList(get());
  }

  // ERROR_SUCCESS or the error.
  DWORD init(DWORD count) {
    SIZE_T size = 0;
    ::InitializeProcThreadAttributeList(nullptr, count, 0, &size);
    if (size == 0) return ::GetLastError();
    storage_.resize(size);
    if (!::InitializeProcThreadAttributeList(get(), count, 0, &size)) return ::GetLastError();
    initialised_ = true;
    return ERROR_SUCCESS;
  }
  LPPROC_THREAD_ATTRIBUTE_LIST get() {
    return reinterpret_cast<LPPROC_THREAD_ATTRIBUTE_LIST>(storage_.data());
  }

 private:
  std::vector<unsigned char> storage_;
  bool initialised_ = false;
};

}  // namespace

Expected<DetachedChild> spawn_detached(
    const std::filesystem::path& executable, const std::vector<std::string>& args,
    const std::vector<std::pair<std::string, std::string>>& extra_env,
    const std::filesystem::path& working_dir, const std::filesystem::path& output_file) {
  SECURITY_ATTRIBUTES inheritable{};
  inheritable.nLength = sizeof(inheritable);
  inheritable.bInheritHandle = TRUE;

  HANDLE read_raw = nullptr;
  HANDLE write_raw = nullptr;
  if (!::CreatePipe(&read_raw, &write_raw, &inheritable, kReadyPipeBuffer)) {
    DWORD error = ::GetLastError();
    return win::fail_win("cannot create a pipe", error);
  }
  win::UniqueHandle ready_read(read_raw);
  win::UniqueHandle ready_write(write_raw);
  // Only the write end goes to the child; a read end there would keep the pipe alive.
  if (!::SetHandleInformation(ready_read.get(), HANDLE_FLAG_INHERIT, 0)) {
    DWORD error = ::GetLastError();
    return win::fail_win("cannot prepare the ready pipe", error);
  }

  // Append-only and fully shared, like AppendFile: the node rotates this file while its first
  // stdout still points at it.
  win::UniqueHandle output(
      ::CreateFileW(output_file.c_str(), FILE_APPEND_DATA | FILE_READ_ATTRIBUTES | SYNCHRONIZE,
                    FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, &inheritable,
                    OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, nullptr));
  if (!output.valid()) {
    DWORD error = ::GetLastError();
    return win::fail_win("cannot open " + win::display(output_file), error);
  }
  // stderr gets a handle of its own: with one handle behind both, the child's C runtime would
  // close it twice when it redirects them one after the other.
  HANDLE errors_raw = nullptr;
  if (!::DuplicateHandle(::GetCurrentProcess(), output.get(), ::GetCurrentProcess(), &errors_raw, 0,
                         TRUE, DUPLICATE_SAME_ACCESS)) {
    DWORD error = ::GetLastError();
    return win::fail_win("cannot duplicate the output handle", error);
  }
  win::UniqueHandle errors(errors_raw);
  win::UniqueHandle null_input(::CreateFileW(L"NUL", GENERIC_READ,
                                             FILE_SHARE_READ | FILE_SHARE_WRITE, &inheritable,
                                             OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, nullptr));
  if (!null_input.valid()) {
    DWORD error = ::GetLastError();
    return win::fail_win("cannot open NUL", error);
  }

  // bInheritHandles would otherwise hand the child every inheritable handle of this process
  // (including ones other threads create meanwhile); the list restricts it to these.
  HANDLE inherited[] = {ready_write.get(), output.get(), errors.get(), null_input.get()};
  AttributeList attributes;
  if (DWORD error = attributes.init(1); error != ERROR_SUCCESS) {
    return win::fail_win("cannot prepare the process attributes", error);
  }
  if (!::UpdateProcThreadAttribute(attributes.get(), 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST,
                                   inherited, sizeof(inherited), nullptr, nullptr)) {
    DWORD error = ::GetLastError();
    return win::fail_win("cannot restrict the inherited handles", error);
  }

  STARTUPINFOEXW startup{};
  startup.StartupInfo.cb = sizeof(startup);
  startup.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
  startup.StartupInfo.hStdInput = null_input.get();
  startup.StartupInfo.hStdOutput = output.get();
  startup.StartupInfo.hStdError = errors.get();
  startup.lpAttributeList = attributes.get();

  std::vector<std::pair<std::wstring, std::wstring>> overrides;
  for (const auto& [name, value] : extra_env) {
    overrides.emplace_back(win::to_wide(name), win::to_wide(value));
  }
  // Inherited handles keep their values in the child, so the number names the child's handle.
  overrides.emplace_back(win::to_wide(kReadyEnvVar),
                         std::to_wstring(reinterpret_cast<std::uintptr_t>(ready_write.get())));
  std::wstring environment = build_environment(overrides);
  std::wstring command_line = build_command_line(executable, args);
  const wchar_t* directory = working_dir.empty() ? nullptr : working_dir.c_str();

  // No console and a process group of its own, so the terminal's Ctrl+C and closing it do not
  // reach the node. Breaking away from the caller's job (an SSH session or CI step kills its
  // job when it ends) is what lets the node outlive it; a job that forbids breakaway makes
  // CreateProcess fail with access denied, and then the node starts inside the job.
  const DWORD flags = EXTENDED_STARTUPINFO_PRESENT | CREATE_NEW_PROCESS_GROUP | DETACHED_PROCESS |
                      CREATE_UNICODE_ENVIRONMENT;
  PROCESS_INFORMATION process{};
  BOOL started = ::CreateProcessW(executable.c_str(), command_line.data(), nullptr, nullptr, TRUE,
                                  flags | CREATE_BREAKAWAY_FROM_JOB, environment.data(), directory,
                                  &startup.StartupInfo, &process);
  if (!started && ::GetLastError() == ERROR_ACCESS_DENIED) {
    started =
        ::CreateProcessW(executable.c_str(), command_line.data(), nullptr, nullptr, TRUE, flags,
                         environment.data(), directory, &startup.StartupInfo, &process);
  }
  if (!started) {
    DWORD error = ::GetLastError();
    return win::fail_win("cannot start " + win::display(executable), error);
  }
  ::CloseHandle(process.hThread);
  ::CloseHandle(process.hProcess);
  // Our copies of the child's ends close on return: the pipe then reaches EOF exactly when the
  // child closes (or exits).
  return DetachedChild{static_cast<ProcessId>(process.dwProcessId),
                       ReadyReader(ready_read.release())};
}

bool attached_to_console() {
  return ::GetConsoleWindow() != nullptr;
}

Expected<void> redirect_stdin_to_null() {
  win::UniqueHandle null_input(::CreateFileW(L"NUL", GENERIC_READ,
                                             FILE_SHARE_READ | FILE_SHARE_WRITE, nullptr,
                                             OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, nullptr));
  if (!null_input.valid()) {
    DWORD error = ::GetLastError();
    return win::fail_win("cannot open NUL", error);
  }
  return win::install_standard_stream(0, null_input.get(), _O_RDONLY);
}

// ---- stop requests ----

namespace {

// A console control handler is a plain function, so the callback it calls lives here. Shared
// ownership: the handler may still be running it on the system's thread while the listener
// is destroyed.
std::mutex console_mutex;
std::shared_ptr<std::function<void()>> console_on_stop;

BOOL WINAPI on_console_event(DWORD type) {
  std::shared_ptr<std::function<void()>> on_stop;
  {
    std::lock_guard<std::mutex> lock(console_mutex);
    on_stop = console_on_stop;
  }
  if (!on_stop) return FALSE;
  (*on_stop)();
  if (type == CTRL_C_EVENT || type == CTRL_BREAK_EVENT) return TRUE;
  // Close, logoff, shutdown: Windows ends the process as soon as this handler returns, so
  // returning would cut the cleanup short. Waiting here gives it the few seconds Windows grants;
  // the process's own exit ends the wait.
  ::Sleep(INFINITE);
  return TRUE;
}

class WindowsStopRequestListener final : public StopRequestListener {
 public:
  WindowsStopRequestListener(win::UniqueHandle stop_event, win::UniqueHandle quit_event,
                             std::shared_ptr<std::function<void()>> on_stop)
      : stop_event_(std::move(stop_event)),
        quit_event_(std::move(quit_event)),
        on_stop_(std::move(on_stop)),
        thread_([this] { run(); }) {}

  ~WindowsStopRequestListener() override {
    ::SetConsoleCtrlHandler(on_console_event, FALSE);
    {
      std::lock_guard<std::mutex> lock(console_mutex);
      if (console_on_stop == on_stop_) console_on_stop.reset();
    }
    ::SetEvent(quit_event_.get());
    if (thread_.joinable()) thread_.join();
  }

 private:
  void run() {
    HANDLE events[] = {stop_event_.get(), quit_event_.get()};
    for (;;) {
      DWORD which = ::WaitForMultipleObjects(2, events, FALSE, INFINITE);
      if (which != WAIT_OBJECT_0) return;
      // Auto-reset, so the next request wakes us again; requests that arrive before this runs
      // merge into one, as pending signals do on POSIX.
      (*on_stop_)();
    }
  }

  win::UniqueHandle stop_event_;
  win::UniqueHandle quit_event_;
  std::shared_ptr<std::function<void()>> on_stop_;
  std::thread thread_;  // last: starts once everything it uses is in place
};

}  // namespace

Expected<std::unique_ptr<StopRequestListener>> StopRequestListener::start(
    std::function<void()> on_stop) {
  auto callback = std::make_shared<std::function<void()>>(std::move(on_stop));
  std::wstring name = stop_event_name(::GetCurrentProcessId());
  // Auto-reset: a request wakes the listener once and needs no clearing.
  HANDLE created = ::CreateEventW(nullptr, FALSE, FALSE, name.c_str());
  const DWORD create_error = ::GetLastError();
  if (created == nullptr) return win::fail_win("cannot create the stop event", create_error);
  win::UniqueHandle stop_event(created);
  // An event of this name can only predate us if a `stop` aimed at an earlier process with our
  // PID still holds it open; a request it set was not meant for us.
  if (create_error == ERROR_ALREADY_EXISTS) ::ResetEvent(stop_event.get());
  win::UniqueHandle quit_event(::CreateEventW(nullptr, TRUE, FALSE, nullptr));
  if (!quit_event.valid()) {
    DWORD error = ::GetLastError();
    return win::fail_win("cannot create an event", error);
  }
  {
    std::lock_guard<std::mutex> lock(console_mutex);
    console_on_stop = callback;
  }
  // Ctrl+C, Ctrl+Break and closing the console window of a foreground `run` are stop requests
  // too. Without a console (a detached node) this registers a handler that is never called.
  if (!::SetConsoleCtrlHandler(on_console_event, TRUE)) {
    DWORD error = ::GetLastError();
    std::lock_guard<std::mutex> lock(console_mutex);
    console_on_stop.reset();
    return win::fail_win("cannot install the console control handler", error);
  }
  return std::unique_ptr<StopRequestListener>(new WindowsStopRequestListener(
      std::move(stop_event), std::move(quit_event), std::move(callback)));
}

// ---- crash reports ----

namespace {

// One report per process: abort() after a failed terminate, or a second faulting thread, would
// only add noise.
std::atomic<bool> crash_reported{false};
LPTOP_LEVEL_EXCEPTION_FILTER previous_filter = nullptr;

// A fixed buffer, no allocation: the heap may be what is broken, and the stack may be nearly
// exhausted (a stack overflow is reported on the faulting thread).
class CrashLine {
 public:
  CrashLine& text(const char* s) {
    while (*s != '\0' && size_ < sizeof(data_) - 1) {
      data_[size_++] = *s++;
    }
    return *this;
  }
  CrashLine& hex(std::uint64_t value, int min_digits) {
    char digits[16];
    int count = 0;
    do {
      digits[count++] = "0123456789ABCDEF"[value & 0xF];
      value >>= 4;
    } while (value != 0 && count < 16);
    while (count < min_digits && count < 16) {
      digits[count++] = '0';
    }
    while (count > 0 && size_ < sizeof(data_) - 1) {
      data_[size_++] = digits[--count];
    }
    return *this;
  }
  CrashLine& decimal(std::uint64_t value) {
    char digits[20];
    int count = 0;
    do {
      digits[count++] = static_cast<char>('0' + value % 10);
      value /= 10;
    } while (value != 0 && count < 20);
    while (count > 0 && size_ < sizeof(data_) - 1) {
      data_[size_++] = digits[--count];
    }
    return *this;
  }
  // Straight to the Win32 handle: after become_stdout_and_stderr that is the log file, and no C
  // runtime state (locks, buffers) is involved.
  void write() {
    data_[size_++] = '\n';
    HANDLE stderr_handle = ::GetStdHandle(STD_ERROR_HANDLE);
    if (stderr_handle == nullptr || stderr_handle == INVALID_HANDLE_VALUE) return;
    DWORD written = 0;
    ::WriteFile(stderr_handle, data_, static_cast<DWORD>(size_), &written, nullptr);
  }

 private:
  char data_[512];
  std::size_t size_ = 0;
};

const char* exception_name(DWORD code) {
  switch (code) {
    case EXCEPTION_ACCESS_VIOLATION:
      return "access violation";
    case EXCEPTION_STACK_OVERFLOW:
      return "stack overflow";
    case EXCEPTION_ILLEGAL_INSTRUCTION:
      return "illegal instruction";
    case EXCEPTION_PRIV_INSTRUCTION:
      return "privileged instruction";
    case EXCEPTION_INT_DIVIDE_BY_ZERO:
      return "integer division by zero";
    case EXCEPTION_INT_OVERFLOW:
      return "integer overflow";
    case EXCEPTION_IN_PAGE_ERROR:
      return "in-page error";
    case EXCEPTION_ARRAY_BOUNDS_EXCEEDED:
      return "array bounds exceeded";
    case EXCEPTION_DATATYPE_MISALIGNMENT:
      return "datatype misalignment";
    case EXCEPTION_NONCONTINUABLE_EXCEPTION:
      return "noncontinuable exception";
    default:
      return nullptr;
  }
}

LONG WINAPI report_unhandled_exception(EXCEPTION_POINTERS* info) {
  // The C runtime's own filter (MinGW turns faults into signals for installed handlers) goes
  // first: if it recovers, this was not fatal.
  LONG verdict = EXCEPTION_CONTINUE_SEARCH;
  if (previous_filter != nullptr) verdict = previous_filter(info);
  if (verdict == EXCEPTION_CONTINUE_EXECUTION) return verdict;
  if (crash_reported.exchange(true)) return verdict;

  const EXCEPTION_RECORD* record = info != nullptr ? info->ExceptionRecord : nullptr;
  CrashLine line;
  line.text("agentnetwork: fatal exception 0x");
  if (record == nullptr) {
    line.text("?").text(" in process ").decimal(::GetCurrentProcessId()).write();
    return verdict;
  }
  line.hex(record->ExceptionCode, 8);
  if (const char* name = exception_name(record->ExceptionCode); name != nullptr) {
    line.text(" (").text(name).text(")");
  }
  line.text(" at 0x").hex(reinterpret_cast<std::uintptr_t>(record->ExceptionAddress), 1);
  if (record->ExceptionCode == EXCEPTION_ACCESS_VIOLATION && record->NumberParameters >= 2) {
    const ULONG_PTR kind = record->ExceptionInformation[0];
    line.text(kind == 0   ? " reading"
              : kind == 8 ? " executing"
                          : " writing")
        .text(" 0x")
        .hex(record->ExceptionInformation[1], 1);
  }
  line.text(" in process ").decimal(::GetCurrentProcessId()).text(", thread ");
  line.decimal(::GetCurrentThreadId()).write();
  return verdict;
}

[[noreturn]] void report_terminate() {
  if (!crash_reported.exchange(true)) {
    CrashLine line;
    line.text("agentnetwork: fatal: std::terminate called");
    if (std::exception_ptr current = std::current_exception()) {
      try {
        std::rethrow_exception(current);
      } catch (const std::exception& e) {
        line.text(" after an uncaught exception: ").text(e.what());
      } catch (...) {
        line.text(" after an uncaught exception of unknown type");
      }
    }
    line.text(" in process ").decimal(::GetCurrentProcessId()).write();
  }
  std::abort();
}

void report_abort(int) {
  if (crash_reported.exchange(true)) return;
  CrashLine line;
  line.text("agentnetwork: fatal signal SIGABRT (abort) in process ")
      .decimal(::GetCurrentProcessId())
      .write();
  // Returning lets abort() end the process as it would have.
}

}  // namespace

void install_crash_reporter() {
  // Without these a crashing daemon may sit behind an invisible "has stopped working" dialog,
  // still holding its lock, instead of dying and letting `start` recover.
  ::SetErrorMode(::GetErrorMode() | SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX);
  previous_filter = ::SetUnhandledExceptionFilter(report_unhandled_exception);
  std::set_terminate(report_terminate);
  std::signal(SIGABRT, report_abort);
}

// ---- service manager ----

// Windows has no sd_notify; a Windows service wrapper would report through the SCM instead.
bool notify_service_manager(std::string_view) {
  return false;
}

}  // namespace an::daemon
