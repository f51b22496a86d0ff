// POSIX (Linux, macOS) implementation of the file part of platform.h: atomic and exclusive
// creation, directories, permission checks, append-only log files and tolerant readers.

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <string>
#include <system_error>

#include "daemon/platform.h"

namespace an::daemon {
namespace {

namespace fs = std::filesystem;

constexpr mode_t kPrivateFileMode = 0600;
constexpr mode_t kSharedFileMode = 0644;

// Retries a call that failed only because a signal interrupted it.
template <class Call>
auto retry_on_eintr(Call call) {
  for (;;) {
    auto result = call();
    if (result != -1 || errno != EINTR) return result;
  }
}

std::string quoted(const fs::path& path) {
  return "'" + path.string() + "'";
}

// Writes every byte, going on after partial writes (a signal or a full pipe may cut them short).
Expected<void> write_all(int fd, std::string_view bytes, const fs::path& path) {
  while (!bytes.empty()) {
    ssize_t written = retry_on_eintr([&] { return ::write(fd, bytes.data(), bytes.size()); });
    if (written < 0) return fail_errno("cannot write to " + quoted(path));
    bytes.remove_prefix(static_cast<std::size_t>(written));
  }
  return {};
}

fs::path directory_of(const fs::path& path) {
  fs::path parent = path.parent_path();
  return parent.empty() ? fs::path(".") : parent;
}

// The name of a rename only becomes durable once the directory itself is flushed. Best effort:
// some file systems refuse fsync on a directory, and the data is already safe in the file.
void sync_directory(const fs::path& directory) {
  int fd = retry_on_eintr([&] { return ::open(directory.c_str(), O_RDONLY | O_CLOEXEC); });
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// A name beside `path` that no other process (pid) or thread (counter) picks at the same time,
// hidden with a leading dot so that directory listings do not show half-written files.
fs::path unique_temp_path(const fs::path& path) {
  static std::atomic<std::uint64_t> counter{0};
  std::string name = "." + path.filename().string() + ".tmp." + std::to_string(::getpid()) + "." +
                     std::to_string(counter.fetch_add(1));
  return directory_of(path) / name;
}

// Creates a new temporary file beside `path` holding `content`, flushed to disk. The mode is set
// explicitly because the umask would otherwise decide it, and these files must look the same
// whoever starts the node.
Expected<fs::path> write_temp_file(const fs::path& path, std::string_view content, bool owner_only,
                                   Durability durability = Durability::kFlushToDisk) {
  const mode_t mode = owner_only ? kPrivateFileMode : kSharedFileMode;
  fs::path temp = unique_temp_path(path);
  int fd = retry_on_eintr(
      [&] { return ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode); });
  if (fd < 0) return fail_errno("cannot create a temporary file in " + quoted(directory_of(path)));

  auto fail_and_clean = [&](tl::unexpected<Error> error) -> Expected<fs::path> {
    ::close(fd);
    ::unlink(temp.c_str());
    return error;
  };
  if (::fchmod(fd, mode) != 0) {
    return fail_and_clean(fail_errno("cannot chmod a new file for " + quoted(path)));
  }
  if (auto written = write_all(fd, content, path); !written) {
    return fail_and_clean(tl::unexpected(written.error()));
  }
  if (durability == Durability::kFlushToDisk && retry_on_eintr([&] { return ::fsync(fd); }) != 0) {
    return fail_and_clean(
        fail_errno("cannot flush the new content of " + quoted(path) + " to disk"));
  }
  // close() can report a deferred write error (NFS); the content would then be incomplete.
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(temp.c_str());
    return fail_errno("cannot write to " + quoted(path), err);
  }
  return temp;
}

// File systems without hard links answer link() with one of these.
bool links_unsupported(int err) {
  return err == EPERM || err == ENOTSUP || err == EOPNOTSUPP || err == ENOSYS || err == EXDEV;
}

// Fallback for file systems without hard links: O_EXCL still picks one winner, but a reader may
// briefly see the file before its content is complete.
Expected<CreateResult> create_in_place_exclusively(const fs::path& path, std::string_view content,
                                                   bool owner_only) {
  const mode_t mode = owner_only ? kPrivateFileMode : kSharedFileMode;
  int fd = retry_on_eintr(
      [&] { return ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode); });
  if (fd < 0) {
    if (errno == EEXIST) return CreateResult{.already_exists = true};
    return fail_errno("cannot create " + quoted(path));
  }
  auto fail_and_clean = [&](tl::unexpected<Error> error) -> Expected<CreateResult> {
    ::close(fd);
    ::unlink(path.c_str());
    return error;
  };
  if (::fchmod(fd, mode) != 0) return fail_and_clean(fail_errno("cannot chmod " + quoted(path)));
  if (auto written = write_all(fd, content, path); !written) {
    return fail_and_clean(tl::unexpected(written.error()));
  }
  if (retry_on_eintr([&] { return ::fsync(fd); }) != 0) {
    return fail_and_clean(fail_errno("cannot flush " + quoted(path) + " to disk"));
  }
  ::close(fd);
  sync_directory(directory_of(path));
  return CreateResult{};
}

// "group read it", "others read and write it": what one class of users may do with the file.
std::string permission_phrase(const char* who, mode_t bits) {
  std::string verbs;
  auto add = [&](const char* verb) {
    if (!verbs.empty()) verbs += " and ";
    verbs += verb;
  };
  if (bits & 4) add("read");
  if (bits & 2) add("write");
  if (bits & 1) add("execute");
  return std::string(who) + " " + verbs + " it";
}

}  // namespace

// ---- one-shot files ---------------------------------------------------------------------------

Expected<void> write_file_atomically(const fs::path& path, std::string_view content,
                                     bool owner_only, Durability durability) {
  auto temp = write_temp_file(path, content, owner_only, durability);
  if (!temp) return tl::unexpected(temp.error());
  if (::rename(temp->c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(temp->c_str());
    return fail_errno("cannot replace " + quoted(path), err);
  }
  if (durability == Durability::kFlushToDisk) sync_directory(directory_of(path));
  return {};
}

Expected<CreateResult> create_file_exclusively(const fs::path& path, std::string_view content,
                                               bool owner_only) {
  auto temp = write_temp_file(path, content, owner_only);
  if (!temp) return tl::unexpected(temp.error());
  // link() never replaces an existing name, so exactly one of several racing creators succeeds,
  // and the winner's file appears with its complete content.
  int link_result = ::link(temp->c_str(), path.c_str());
  int link_errno = errno;
  ::unlink(temp->c_str());
  if (link_result == 0) {
    sync_directory(directory_of(path));
    return CreateResult{};
  }
  if (link_errno == EEXIST) return CreateResult{.already_exists = true};
  if (links_unsupported(link_errno)) return create_in_place_exclusively(path, content, owner_only);
  return fail_errno("cannot create " + quoted(path), link_errno);
}

Expected<void> rename_file(const fs::path& from, const fs::path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    int err = errno;
    return fail_errno("cannot rename " + quoted(from) + " to " + quoted(to), err);
  }
  return {};
}

Expected<void> make_directory(const fs::path& path, bool owner_only) {
  fs::path target = path;
  if (!target.has_filename()) target = target.parent_path();  // "dir/" names "dir"
  if (target.empty()) return {};

  fs::path parent = target.parent_path();
  if (!parent.empty()) {
    std::error_code error;
    fs::create_directories(parent, error);
    if (error)
      return fail("cannot create directory " + quoted(parent) + ": " + error.message(), error);
  }
  const mode_t mode = owner_only ? 0700 : 0755;
  if (::mkdir(target.c_str(), mode) != 0) {
    int err = errno;
    struct stat info {};
    if (err == EEXIST && ::stat(target.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) return {};
    if (err == EEXIST) return fail(quoted(target) + " exists and is not a directory");
    return fail_errno("cannot create directory " + quoted(target), err);
  }
  // The umask may have taken bits away from 0700 (never added any); make it exactly private.
  if (owner_only && ::chmod(target.c_str(), mode) != 0) {
    return fail_errno("cannot chmod " + quoted(target));
  }
  return {};
}

std::string describe_loose_permissions(const fs::path& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return {};
  const mode_t mode = info.st_mode & 07777;
  if ((mode & 077) == 0) return {};

  const mode_t group_bits = (mode >> 3) & 7;
  const mode_t other_bits = mode & 7;
  std::string who_may;
  if (group_bits == other_bits) {
    who_may = permission_phrase("group and others", group_bits);
  } else if (group_bits == 0) {
    who_may = permission_phrase("others", other_bits);
  } else if (other_bits == 0) {
    who_may = permission_phrase("group", group_bits);
  } else {
    who_may =
        permission_phrase("group", group_bits) + " and " + permission_phrase("others", other_bits);
  }
  char octal[8];
  std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(mode));
  return "mode " + std::string(octal) + " lets " + who_may;
}

std::string private_permissions_fix(const fs::path& path) {
  // Quoted for a POSIX shell, so that the command can be pasted even with spaces or quotes.
  std::string quoted_path = "'";
  for (char c : path.string()) {
    if (c == '\'') {
      quoted_path += "'\\''";
    } else {
      quoted_path += c;
    }
  }
  quoted_path += "'";
  return "chmod 600 " + quoted_path;
}

// ---- AppendFile -------------------------------------------------------------------------------

Expected<AppendFile> AppendFile::open(const fs::path& path) {
  int fd = retry_on_eintr([&] {
    return ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, kSharedFileMode);
  });
  if (fd < 0) return fail_errno("cannot open " + quoted(path) + " for appending");
  return AppendFile(fd);
}

AppendFile::AppendFile(AppendFile&& other) noexcept : handle_(other.handle_) {
  other.handle_ = kInvalidHandle;
}

AppendFile& AppendFile::operator=(AppendFile&& other) noexcept {
  if (this != &other) {
    close();
    handle_ = other.handle_;
    other.handle_ = kInvalidHandle;
  }
  return *this;
}

AppendFile::~AppendFile() {
  close();
}

Expected<void> AppendFile::write(std::string_view bytes) {
  if (!is_open()) return fail("cannot write: the file is not open");
  const int fd = static_cast<int>(handle_);
  while (!bytes.empty()) {
    ssize_t written = retry_on_eintr([&] { return ::write(fd, bytes.data(), bytes.size()); });
    if (written < 0) return fail_errno("cannot append to the file");
    bytes.remove_prefix(static_cast<std::size_t>(written));
  }
  return {};
}

Expected<std::uint64_t> AppendFile::size() const {
  struct stat info {};
  if (!is_open()) return fail("cannot get the size: the file is not open");
  if (::fstat(static_cast<int>(handle_), &info) != 0) return fail_errno("cannot stat the file");
  return static_cast<std::uint64_t>(info.st_size);
}

Expected<void> AppendFile::become_stdout_and_stderr() const {
  if (!is_open()) return fail("cannot redirect stdout/stderr: the file is not open");
  const int fd = static_cast<int>(handle_);
  // dup2 replaces each descriptor atomically: a concurrent raw write lands wholly in the old
  // file or wholly in this one. The copies do not get FD_CLOEXEC, so children inherit them.
  for (int target : {STDOUT_FILENO, STDERR_FILENO}) {
    if (retry_on_eintr([&] { return ::dup2(fd, target); }) < 0) {
      return fail_errno(target == STDOUT_FILENO ? "cannot redirect stdout"
                                                : "cannot redirect stderr");
    }
  }
  return {};
}

void AppendFile::close() {
  if (!is_open()) return;
  // Not retried on EINTR: on Linux the descriptor is gone even then, and a retry could close a
  // descriptor another thread has just opened.
  ::close(static_cast<int>(handle_));
  handle_ = kInvalidHandle;
}

// ---- identity and reading ---------------------------------------------------------------------

std::optional<FileIdentity> file_identity(const fs::path& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return std::nullopt;
  return FileIdentity{static_cast<std::uint64_t>(info.st_dev),
                      static_cast<std::uint64_t>(info.st_ino)};
}

Expected<ReadFile> ReadFile::open(const fs::path& path) {
  int fd = retry_on_eintr([&] { return ::open(path.c_str(), O_RDONLY | O_CLOEXEC); });
  if (fd < 0) return fail_errno("cannot open " + quoted(path));
  return ReadFile(fd);
}

ReadFile::ReadFile(ReadFile&& other) noexcept : handle_(other.handle_) {
  other.handle_ = kInvalidHandle;
}

ReadFile& ReadFile::operator=(ReadFile&& other) noexcept {
  if (this != &other) {
    if (is_open()) ::close(static_cast<int>(handle_));
    handle_ = other.handle_;
    other.handle_ = kInvalidHandle;
  }
  return *this;
}

ReadFile::~ReadFile() {
  if (is_open()) ::close(static_cast<int>(handle_));
}

Expected<std::size_t> ReadFile::read_at(std::uint64_t offset, char* buffer,
                                        std::size_t size) const {
  if (!is_open()) return fail("cannot read: the file is not open");
  // pread leaves no shared file position behind, so one handle may serve any offset.
  ssize_t count = retry_on_eintr(
      [&] { return ::pread(static_cast<int>(handle_), buffer, size, static_cast<off_t>(offset)); });
  if (count < 0) return fail_errno("cannot read the file");
  return static_cast<std::size_t>(count);
}

Expected<std::uint64_t> ReadFile::size() const {
  struct stat info {};
  if (!is_open()) return fail("cannot get the size: the file is not open");
  if (::fstat(static_cast<int>(handle_), &info) != 0) return fail_errno("cannot stat the file");
  return static_cast<std::uint64_t>(info.st_size);
}

Expected<FileIdentity> ReadFile::identity() const {
  struct stat info {};
  if (!is_open()) return fail("cannot identify the file: it is not open");
  if (::fstat(static_cast<int>(handle_), &info) != 0) return fail_errno("cannot stat the file");
  return FileIdentity{static_cast<std::uint64_t>(info.st_dev),
                      static_cast<std::uint64_t>(info.st_ino)};
}

}  // namespace an::daemon
