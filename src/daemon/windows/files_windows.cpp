// Windows implementation of the file side of platform.h: the data-directory lock, atomic and
// exclusive file creation, directories, append-only log files and rename-tolerant readers.
#include "daemon/windows/windows_support.h"

#include <fcntl.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "daemon/platform.h"

namespace an::daemon {
namespace {

namespace fs = std::filesystem;

// Full sharing: readers (logs -f, status) must never stop the node from renaming or replacing a
// file, and the node must never stop them from opening it.
constexpr DWORD kShareAll = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;

// The lock covers one byte far beyond any content the lock file will ever have: Windows locks are
// mandatory, so a lock on real bytes would stop other processes from reading the file.
constexpr DWORD kLockOffsetLow = 0;
constexpr DWORD kLockOffsetHigh = 0x7FFFFFFF;
constexpr DWORD kLockLength = 1;

// holder() takes the lock for an instant to find out whether it is free, so a node starting at
// that very moment could see it taken. A few short retries ride out such probes; a real holder
// keeps it far longer than this.
constexpr int kLockAttempts = 10;
constexpr DWORD kLockRetryMs = 5;

// Replacing a file fails with a sharing error while another process has it open without
// FILE_SHARE_DELETE (a reader using the C runtime, an antivirus scan); such opens are short.
constexpr int kMoveAttempts = 20;
constexpr DWORD kMoveRetryMs = 50;

// Both values are returned: "The process cannot access the file..." and "Access is denied" come
// from the same situation depending on the Windows version and file system.
bool is_transient_sharing_error(DWORD error) {
  return error == ERROR_SHARING_VIOLATION || error == ERROR_ACCESS_DENIED ||
         error == ERROR_LOCK_VIOLATION;
}

// Tries to lock the lock range once; ERROR_SUCCESS or the error (ERROR_LOCK_VIOLATION when taken).
DWORD lock_range(HANDLE file) {
  OVERLAPPED where{};
  where.Offset = kLockOffsetLow;
  where.OffsetHigh = kLockOffsetHigh;
  if (::LockFileEx(file, LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY, 0, kLockLength, 0,
                   &where)) {
    return ERROR_SUCCESS;
  }
  DWORD error = ::GetLastError();
  // Some file systems report a conflicting lock as ERROR_IO_PENDING on a synchronous handle.
  return error == ERROR_IO_PENDING ? ERROR_LOCK_VIOLATION : error;
}

void unlock_range(HANDLE file) {
  OVERLAPPED where{};
  where.Offset = kLockOffsetLow;
  where.OffsetHigh = kLockOffsetHigh;
  ::UnlockFileEx(file, 0, kLockLength, 0, &where);
}

// Windows cannot say who holds a lock, so the holder writes its PID into the lock file (outside
// the locked byte, so others may read it) for holder() to report. Fixed width: a reader racing
// the write of a new holder never sees a shorter number spliced onto a longer old one.
constexpr int kHolderDigits = 20;
constexpr DWORD kHolderRecordSize = kHolderDigits + 1;  // digits and '\n'

// `file` was just opened, so its file pointer is at the start. Best effort: without the record,
// holder() says "held, holder unknown".
void record_holder(HANDLE file) {
  char text[kHolderRecordSize + 1];
  std::snprintf(text, sizeof(text), "%0*lu\n", kHolderDigits,
                static_cast<unsigned long>(::GetCurrentProcessId()));
  DWORD written = 0;
  if (::WriteFile(file, text, kHolderRecordSize, &written, nullptr) &&
      written == kHolderRecordSize) {
    ::SetEndOfFile(file);
  }
}

// The PID record_holder wrote, or 0 when there is none or it names no live process (a holder
// that crashed left it behind, and the next one has not yet replaced it).
ProcessId recorded_holder(HANDLE file) {
  char text[kHolderRecordSize + 1] = {};
  DWORD got = 0;
  if (!::ReadFile(file, text, sizeof(text), &got, nullptr) || got != kHolderRecordSize ||
      text[kHolderDigits] != '\n') {
    return 0;
  }
  ProcessId pid = 0;
  for (int i = 0; i < kHolderDigits; ++i) {
    if (text[i] < '0' || text[i] > '9' || pid > 0xFFFFFFFF) return 0;
    pid = pid * 10 + (text[i] - '0');
  }
  return process_exists(pid) ? pid : 0;
}

// Writes everything or returns the error.
DWORD write_all(HANDLE file, std::string_view bytes) {
  const char* data = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    DWORD chunk = static_cast<DWORD>(std::min<std::size_t>(left, 1u << 30));
    DWORD written = 0;
    if (!::WriteFile(file, data, chunk, &written, nullptr)) return ::GetLastError();
    if (written == 0) return ERROR_WRITE_FAULT;
    data += written;
    left -= written;
  }
  return ERROR_SUCCESS;
}

// Beside the target, so the final move stays on one volume and is a rename, not a copy.
fs::path temp_path_for(const fs::path& path) {
  static std::atomic<unsigned> counter{0};
  fs::path temp = path;
  temp += L".tmp-" + std::to_wstring(::GetCurrentProcessId()) + L"-" +
          std::to_wstring(counter.fetch_add(1));
  return temp;
}

// A written and flushed temporary file, still open so that it can be renamed by handle.
struct TempFile {
  fs::path path;
  win::UniqueHandle handle;

  // Closes and deletes it; for when it did not make it to its final name.
  void discard() {
    handle = win::UniqueHandle();
    ::DeleteFileW(path.c_str());
  }
};

// Writes `content` to a fresh temporary file beside `path`, flushed to disk. The owner-only
// security descriptor is applied at creation so that the file is never readable by others,
// not even for a moment; the rename keeps it.
Expected<TempFile> write_temp_file(const fs::path& path, std::string_view content, bool owner_only,
                                   Durability durability = Durability::kFlushToDisk) {
  std::optional<win::OwnerOnlySecurity> security;
  if (owner_only) {
    security.emplace(false);
    if (security->get() == nullptr) {
      return win::fail_win("cannot build a private security descriptor for " + win::display(path),
                           security->error());
    }
  }
  fs::path temp_path = temp_path_for(path);
  // DELETE access is what renaming by handle needs; nobody else knows the name, so no sharing.
  HANDLE file = ::CreateFileW(temp_path.c_str(), GENERIC_WRITE | DELETE, 0,
                              security ? security->get() : nullptr, CREATE_NEW,
                              FILE_ATTRIBUTE_NORMAL, nullptr);
  if (file == INVALID_HANDLE_VALUE) {
    DWORD error = ::GetLastError();
    return win::fail_win("cannot create " + win::display(temp_path), error);
  }
  TempFile temp{std::move(temp_path), win::UniqueHandle(file)};
  DWORD error = write_all(temp.handle.get(), content);
  if (error == ERROR_SUCCESS && durability == Durability::kFlushToDisk &&
      !::FlushFileBuffers(temp.handle.get())) {
    error = ::GetLastError();
  }
  if (error != ERROR_SUCCESS) {
    temp.discard();
    return win::fail_win("cannot write " + win::display(temp.path), error);
  }
  return temp;
}

// FileRenameInfoEx from the Windows SDK. MinGW-w64 declares it only under a guard that compares
// _WIN32_WINNT with an NTDDI-style value, which is never true.
constexpr auto kFileRenameInfoEx = static_cast<FILE_INFO_BY_HANDLE_CLASS>(22);

// Renames the open file to `target`, replacing it with POSIX semantics: unlike MoveFileExW,
// this works while someone (a `status` or `logs` reader using FILE_SHARE_DELETE) has the
// target open; their handle keeps the old content. Windows 10 1607 and later, on NTFS.
DWORD posix_replace(HANDLE file, const fs::path& target) {
  // The kernel resolves relative names against nothing useful: give it the full path.
  std::error_code ec;
  fs::path absolute = fs::absolute(target, ec);
  if (ec) return ERROR_INVALID_PARAMETER;
  const std::wstring& name = absolute.native();
  const std::size_t name_bytes = name.size() * sizeof(wchar_t);
  if (name_bytes > 0xFFFF) return ERROR_FILENAME_EXCED_RANGE;
  std::vector<unsigned char> buffer(sizeof(FILE_RENAME_INFO) + name_bytes);
  auto* info = reinterpret_cast<FILE_RENAME_INFO*>(buffer.data());
  info->Flags = FILE_RENAME_FLAG_REPLACE_IF_EXISTS | FILE_RENAME_FLAG_POSIX_SEMANTICS;
  info->RootDirectory = nullptr;
  info->FileNameLength = static_cast<DWORD>(name_bytes);
  std::memcpy(info->FileName, name.c_str(), name_bytes + sizeof(wchar_t));
  if (::SetFileInformationByHandle(file, kFileRenameInfoEx, info,
                                   static_cast<DWORD>(buffer.size()))) {
    return ERROR_SUCCESS;
  }
  return ::GetLastError();
}

// MoveFileExW with retries over transient sharing conflicts; ERROR_SUCCESS or the last error.
DWORD move_file(const fs::path& from, const fs::path& to, DWORD flags) {
  DWORD error = ERROR_SUCCESS;
  for (int attempt = 0; attempt < kMoveAttempts; ++attempt) {
    if (attempt > 0) ::Sleep(kMoveRetryMs);
    if (::MoveFileExW(from.c_str(), to.c_str(), flags)) return ERROR_SUCCESS;
    error = ::GetLastError();
    if (!is_transient_sharing_error(error)) break;
  }
  return error;
}

// Moves `temp` over `target`; ERROR_SUCCESS or the error. The POSIX rename is tried first; a
// target held open without FILE_SHARE_DELETE still blocks it for a moment, hence the retries.
// Any other failure (an older Windows, FAT, a network share, Wine) falls back to MoveFileExW,
// which either works or names the real problem.
DWORD replace_file(TempFile& temp, const fs::path& target) {
  DWORD error = ERROR_SUCCESS;
  for (int attempt = 0; attempt < kMoveAttempts; ++attempt) {
    if (attempt > 0) ::Sleep(kMoveRetryMs);
    error = posix_replace(temp.handle.get(), target);
    if (error == ERROR_SUCCESS) {
      temp.handle = win::UniqueHandle();
      return ERROR_SUCCESS;
    }
    if (!is_transient_sharing_error(error)) break;
  }
  if (is_transient_sharing_error(error)) return error;
  temp.handle = win::UniqueHandle();  // MoveFileExW opens the source itself
  return move_file(temp.path, target, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH);
}

Expected<std::uint64_t> size_of(HANDLE file, const char* what) {
  LARGE_INTEGER size{};
  if (!::GetFileSizeEx(file, &size)) {
    DWORD error = ::GetLastError();
    return win::fail_win(std::string("cannot get the size of ") + what, error);
  }
  return static_cast<std::uint64_t>(size.QuadPart);
}

// The serial number of the volume that the handle's file is on, found through its name; 0 if
// unknown.
std::uint64_t volume_serial_by_name(HANDLE file) {
  std::wstring name(MAX_PATH, L'\0');
  for (int attempt = 0; attempt < 2; ++attempt) {
    DWORD length = ::GetFinalPathNameByHandleW(file, name.data(), static_cast<DWORD>(name.size()),
                                               FILE_NAME_NORMALIZED | VOLUME_NAME_DOS);
    if (length == 0) return 0;
    if (length < name.size()) {
      name.resize(length);
      break;
    }
    name.assign(length + 1, L'\0');
    if (attempt == 1) return 0;
  }
  std::wstring root(name.size() + 1, L'\0');
  if (!::GetVolumePathNameW(name.c_str(), root.data(), static_cast<DWORD>(root.size()))) return 0;
  DWORD serial = 0;
  if (!::GetVolumeInformationW(root.c_str(), nullptr, 0, &serial, nullptr, nullptr, nullptr, 0)) {
    return 0;
  }
  return serial;
}

// FILE_ID_INFO (Windows 8 and later): the 64-bit volume serial number and the full 128-bit file
// ID. The older BY_HANDLE_FILE_INFORMATION has a 32-bit serial and only 64 bits of the ID, which
// on ReFS can be the same for two files; it remains the fallback for file systems that do not
// answer FileIdInfo.
std::optional<FileIdentity> identity_of(HANDLE file) {
  FILE_ID_INFO id_info{};
  if (::GetFileInformationByHandleEx(file, FileIdInfo, &id_info, sizeof id_info)) {
    FileIdentity identity;
    identity.device = id_info.VolumeSerialNumber;
    // Wine (8.0) answers 0 once the file was renamed after the handle was opened: it looks the
    // volume up under the old name. The file is still on the same volume, which its current name
    // leads to. Windows itself never gets here for a volume with a serial number.
    if (identity.device == 0) identity.device = volume_serial_by_name(file);
    std::uint64_t halves[2];
    static_assert(sizeof halves == sizeof id_info.FileId.Identifier);
    std::memcpy(halves, id_info.FileId.Identifier, sizeof halves);
    identity.index = halves[0];
    identity.index_high = halves[1];
    return identity;
  }
  BY_HANDLE_FILE_INFORMATION info{};
  if (!::GetFileInformationByHandle(file, &info)) return std::nullopt;
  FileIdentity identity;
  identity.device = info.dwVolumeSerialNumber;
  if (identity.device == 0) identity.device = volume_serial_by_name(file);  // as above
  identity.index = (static_cast<std::uint64_t>(info.nFileIndexHigh) << 32) | info.nFileIndexLow;
  return identity;
}

}  // namespace

// ---- FileLock ----

Expected<std::optional<FileLock>> FileLock::try_acquire(const std::filesystem::path& path) {
  // Not inheritable: a child (the detached node is started by a process that may hold the lock
  // in remove_stale_files) must not keep it alive.
  win::UniqueHandle file(::CreateFileW(path.c_str(), GENERIC_READ | GENERIC_WRITE, kShareAll,
                                       nullptr, OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, nullptr));
  if (!file.valid()) {
    DWORD error = ::GetLastError();
    return win::fail_win("cannot open lock file " + win::display(path), error);
  }
  for (int attempt = 0;; ++attempt) {
    DWORD error = lock_range(file.get());
    if (error == ERROR_SUCCESS) {
      record_holder(file.get());
      return std::optional<FileLock>(FileLock(file.release()));
    }
    if (error != ERROR_LOCK_VIOLATION) {
      return win::fail_win("cannot lock " + win::display(path), error);
    }
    if (attempt + 1 >= kLockAttempts) return std::optional<FileLock>{};
    ::Sleep(kLockRetryMs);
  }
}

Expected<std::optional<ProcessId>> FileLock::holder(const std::filesystem::path& path) {
  // Windows has no "who holds this lock" query: take it for an instant instead, and read the
  // holder's own record when it is taken. Unlike POSIX record locks this is safe from the
  // holding process too, as locks belong to handles.
  win::UniqueHandle file(::CreateFileW(path.c_str(), GENERIC_READ, kShareAll, nullptr,
                                       OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, nullptr));
  if (!file.valid()) {
    DWORD error = ::GetLastError();
    if (error == ERROR_FILE_NOT_FOUND || error == ERROR_PATH_NOT_FOUND) {
      return std::optional<ProcessId>{};
    }
    return win::fail_win("cannot open lock file " + win::display(path), error);
  }
  DWORD error = lock_range(file.get());
  if (error == ERROR_SUCCESS) {
    unlock_range(file.get());
    return std::optional<ProcessId>{};
  }
  if (error == ERROR_LOCK_VIOLATION) return std::optional<ProcessId>(recorded_holder(file.get()));
  return win::fail_win("cannot query lock " + win::display(path), error);
}

FileLock::FileLock(FileLock&& other) noexcept
    : handle_(std::exchange(other.handle_, kInvalidHandle)) {}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    if (handle_ != kInvalidHandle) unlock_range(win::to_handle(handle_));
    win::close_quietly(handle_);
    handle_ = std::exchange(other.handle_, kInvalidHandle);
  }
  return *this;
}

FileLock::~FileLock() {
  // Closing alone releases the lock only "when the system gets to it"; unlocking first makes the
  // next start see it free at once.
  if (handle_ != kInvalidHandle) unlock_range(win::to_handle(handle_));
  win::close_quietly(handle_);
}

// ---- files ----

Expected<void> write_file_atomically(const std::filesystem::path& path, std::string_view content,
                                     bool owner_only, Durability durability) {
  auto temp = write_temp_file(path, content, owner_only, durability);
  if (!temp) return tl::unexpected(temp.error());
  DWORD error = replace_file(*temp, path);
  if (error != ERROR_SUCCESS) {
    temp->discard();
    return win::fail_win("cannot replace " + win::display(path), error);
  }
  return {};
}

Expected<CreateResult> create_file_exclusively(const std::filesystem::path& path,
                                               std::string_view content, bool owner_only) {
  // Complete content first, then a rename that refuses to replace: a concurrent reader never sees
  // a partial file, and of several creators exactly one rename wins.
  auto temp = write_temp_file(path, content, owner_only);
  if (!temp) return tl::unexpected(temp.error());
  temp->handle = win::UniqueHandle();  // MoveFileExW opens the source itself
  DWORD error = move_file(temp->path, path, MOVEFILE_WRITE_THROUGH);
  if (error == ERROR_SUCCESS) return CreateResult{};
  temp->discard();
  if (error == ERROR_ALREADY_EXISTS || error == ERROR_FILE_EXISTS) {
    return CreateResult{.already_exists = true};
  }
  return win::fail_win("cannot create " + win::display(path), error);
}

Expected<void> rename_file(const std::filesystem::path& from, const std::filesystem::path& to) {
  // DELETE access is what a rename needs; full sharing, so that the writer and the readers of a
  // log file keep their handles across its rotation. BACKUP_SEMANTICS: directories too.
  win::UniqueHandle file(::CreateFileW(from.c_str(), DELETE | SYNCHRONIZE, kShareAll, nullptr,
                                       OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, nullptr));
  if (!file.valid()) {
    DWORD error = ::GetLastError();
    return win::fail_win("cannot rename " + win::display(from), error);
  }
  DWORD error = posix_replace(file.get(), to);
  if (error == ERROR_SUCCESS) return {};
  // A sharing conflict would block MoveFileExW just the same; anything else may be a system or
  // file system without POSIX renames.
  if (!is_transient_sharing_error(error)) {
    file = win::UniqueHandle();
    if (::MoveFileExW(from.c_str(), to.c_str(), MOVEFILE_REPLACE_EXISTING)) return {};
    error = ::GetLastError();
  }
  return win::fail_win("cannot rename " + win::display(from) + " to " + win::display(to), error);
}

Expected<void> make_directory(const std::filesystem::path& path, bool owner_only) {
  fs::path target = path;
  if (!target.has_filename() && target.has_relative_path()) target = target.parent_path();
  std::error_code ec;
  if (!owner_only) {
    fs::create_directories(target, ec);
    if (ec)
      return fail("cannot create directory " + win::display(target) + ": " + ec.message(), ec);
    return {};
  }
  if (fs::path parent = target.parent_path(); !parent.empty() && parent != target) {
    fs::create_directories(parent, ec);
    if (ec)
      return fail("cannot create directory " + win::display(parent) + ": " + ec.message(), ec);
  }
  // Created with its ACL in place rather than fixed afterwards, so there is no moment in which
  // others could open it (or create files in it that keep the inherited ACL).
  win::OwnerOnlySecurity security(true);
  if (security.get() == nullptr) {
    return win::fail_win("cannot build a private security descriptor for " + win::display(target),
                         security.error());
  }
  if (!::CreateDirectoryW(target.c_str(), security.get())) {
    DWORD error = ::GetLastError();
    if (error == ERROR_ALREADY_EXISTS && fs::is_directory(target, ec)) return {};
    return win::fail_win("cannot create directory " + win::display(target), error);
  }
  return {};
}

// Windows access is governed by ACLs, which have no "mode" to summarise; reading and judging
// them (inherited ACEs, groups, deny entries) would be guesswork. Files this code creates
// owner-only get a private, protected ACL instead (see OwnerOnlySecurity).
std::string describe_loose_permissions(const std::filesystem::path&) {
  return {};
}

std::string private_permissions_fix(const std::filesystem::path& path) {
  std::wstring account = win::current_user_account();
  // %USERNAME% works in cmd.exe only; the real name works everywhere.
  std::string who = account.empty() ? "%USERNAME%" : win::to_utf8(account);
  std::error_code ec;
  const char* rights = fs::is_directory(path, ec) ? "(OI)(CI)F" : "F";
  return "icacls \"" + win::display(path) + "\" /inheritance:r /grant:r \"" + who + ":" + rights +
         "\"";
}

// ---- AppendFile ----

Expected<AppendFile> AppendFile::open(const std::filesystem::path& path) {
  // FILE_APPEND_DATA without FILE_WRITE_DATA: every write goes to the current end of the file,
  // atomically with respect to other appenders (raw stdout of this process, a second handle).
  // FILE_SHARE_DELETE lets log rotation rename the file while it is open.
  HANDLE file = ::CreateFileW(path.c_str(), FILE_APPEND_DATA | FILE_READ_ATTRIBUTES | SYNCHRONIZE,
                              kShareAll, nullptr, OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, nullptr);
  if (file == INVALID_HANDLE_VALUE) {
    DWORD error = ::GetLastError();
    return win::fail_win("cannot open " + win::display(path), error);
  }
  return AppendFile(win::from_handle(file));
}

AppendFile::AppendFile(AppendFile&& other) noexcept
    : handle_(std::exchange(other.handle_, kInvalidHandle)) {}

AppendFile& AppendFile::operator=(AppendFile&& other) noexcept {
  if (this != &other) {
    win::close_quietly(handle_);
    handle_ = std::exchange(other.handle_, kInvalidHandle);
  }
  return *this;
}

AppendFile::~AppendFile() {
  win::close_quietly(handle_);
}

Expected<void> AppendFile::write(std::string_view bytes) {
  if (handle_ == kInvalidHandle) return fail("write to a closed file");
  DWORD error = write_all(win::to_handle(handle_), bytes);
  if (error != ERROR_SUCCESS) return win::fail_win("cannot write", error);
  return {};
}

Expected<std::uint64_t> AppendFile::size() const {
  if (handle_ == kInvalidHandle) return fail("size of a closed file");
  return size_of(win::to_handle(handle_), "the file");
}

Expected<void> AppendFile::become_stdout_and_stderr() const {
  if (handle_ == kInvalidHandle) return fail("cannot redirect output to a closed file");
  // Whatever stdio still buffers belongs to the old destination.
  std::fflush(stdout);
  std::fflush(stderr);
  // _O_APPEND: the runtime seeks to the end before each write, matching the handle's append-only
  // access; no _O_TEXT, so "\n" stays "\n" as in the rest of the log.
  for (int fd : {1, 2}) {
    if (auto installed = win::install_standard_stream(fd, win::to_handle(handle_), _O_APPEND);
        !installed) {
      return installed;
    }
  }
  // The C runtime buffers stderr too when it is not a console, unlike POSIX: a library's last
  // words before a crash would stay in the buffer, and its lines would reach the log late, after
  // newer ones, or in an older file after a rotation. Only once, and under the stream's lock:
  // setvbuf discards what the buffer holds, and at a rotation other threads may be writing.
  static std::once_flag stderr_unbuffered;
  std::call_once(stderr_unbuffered, [] {
    ::_lock_file(stderr);
    std::fflush(stderr);
    std::setvbuf(stderr, nullptr, _IONBF, 0);
    ::_unlock_file(stderr);
  });
  return {};
}

void AppendFile::close() {
  win::close_quietly(handle_);
}

// ---- identity and ReadFile ----

std::optional<FileIdentity> file_identity(const std::filesystem::path& path) {
  // No data access and full sharing: this must work while the writer has the file open and
  // never stand in the way of its rename. BACKUP_SEMANTICS lets directories be opened too.
  win::UniqueHandle file(::CreateFileW(path.c_str(), FILE_READ_ATTRIBUTES, kShareAll, nullptr,
                                       OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, nullptr));
  if (!file.valid()) return std::nullopt;
  return identity_of(file.get());
}

Expected<ReadFile> ReadFile::open(const std::filesystem::path& path) {
  HANDLE file = ::CreateFileW(path.c_str(), GENERIC_READ, kShareAll, nullptr, OPEN_EXISTING,
                              FILE_ATTRIBUTE_NORMAL, nullptr);
  if (file == INVALID_HANDLE_VALUE) {
    DWORD error = ::GetLastError();
    return win::fail_win("cannot open " + win::display(path), error);
  }
  return ReadFile(win::from_handle(file));
}

ReadFile::ReadFile(ReadFile&& other) noexcept
    : handle_(std::exchange(other.handle_, kInvalidHandle)) {}

ReadFile& ReadFile::operator=(ReadFile&& other) noexcept {
  if (this != &other) {
    win::close_quietly(handle_);
    handle_ = std::exchange(other.handle_, kInvalidHandle);
  }
  return *this;
}

ReadFile::~ReadFile() {
  win::close_quietly(handle_);
}

Expected<std::size_t> ReadFile::read_at(std::uint64_t offset, char* buffer,
                                        std::size_t size) const {
  if (handle_ == kInvalidHandle) return fail("read from a closed file");
  if (size == 0) return std::size_t{0};
  // The offset travels in the OVERLAPPED, so reads do not depend on (or move) a shared file
  // pointer. `::` because the class itself is called ReadFile.
  OVERLAPPED where{};
  where.Offset = static_cast<DWORD>(offset & 0xFFFFFFFFu);
  where.OffsetHigh = static_cast<DWORD>(offset >> 32);
  DWORD chunk = static_cast<DWORD>(std::min<std::size_t>(size, 1u << 30));
  DWORD got = 0;
  if (!::ReadFile(win::to_handle(handle_), buffer, chunk, &got, &where)) {
    DWORD error = ::GetLastError();
    if (error == ERROR_HANDLE_EOF) return std::size_t{0};
    return win::fail_win("cannot read", error);
  }
  return static_cast<std::size_t>(got);
}

Expected<std::uint64_t> ReadFile::size() const {
  if (handle_ == kInvalidHandle) return fail("size of a closed file");
  return size_of(win::to_handle(handle_), "the file");
}

Expected<FileIdentity> ReadFile::identity() const {
  if (handle_ == kInvalidHandle) return fail("identity of a closed file");
  auto identity = identity_of(win::to_handle(handle_));
  if (!identity) {
    DWORD error = ::GetLastError();
    return win::fail_win("cannot identify the file", error);
  }
  return *identity;
}

}  // namespace an::daemon
