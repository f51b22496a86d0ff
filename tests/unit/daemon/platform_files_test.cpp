// The file and process side of platform.h as every platform must behave: what log rotation,
// the status file and the data-directory lock rely on. Runs on POSIX and on Windows; the POSIX
// specifics (modes, chmod) are in files_posix_test.cpp. Single-threaded except where a test
// starts its own threads.
#include <gtest/gtest.h>

#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#endif

#include <algorithm>
#include <atomic>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "daemon/platform.h"
#include "support/temp_dir.h"

namespace an::daemon {
namespace {

namespace fs = std::filesystem;

// Wine runs these tests on Linux but lacks a few Windows behaviours; tests of those say so and
// skip instead of asserting what real Windows does.
bool running_under_wine() {
#if defined(_WIN32)
  HMODULE ntdll = ::GetModuleHandleW(L"ntdll.dll");
  return ntdll != nullptr && ::GetProcAddress(ntdll, "wine_get_version") != nullptr;
#else
  return false;
#endif
}

class PlatformFilesTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(dir_.empty()); }

  static std::string read(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream content;
    content << in.rdbuf();
    return content.str();
  }
  std::vector<std::string> names_in_dir() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_)) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }
  static std::string read_all(const ReadFile& file) {
    std::string content;
    char buffer[4096];
    for (;;) {
      auto count = file.read_at(content.size(), buffer, sizeof buffer);
      EXPECT_TRUE(count) << count.error().message;
      if (!count || *count == 0) return content;
      content.append(buffer, *count);
    }
  }

  test::TempDir temp_;
  const fs::path dir_ = temp_.path();
};

// ---- FileLock ----

TEST_F(PlatformFilesTest, FileLockIsReleasedOnDestruction) {
  const fs::path lock_file = dir_ / "node.lock";
  {
    auto lock = FileLock::try_acquire(lock_file);
    ASSERT_TRUE(lock) << lock.error().message;
    ASSERT_TRUE(lock->has_value());
    EXPECT_TRUE(fs::exists(lock_file));
    FileLock moved = std::move(**lock);  // the moved-from lock must not release it
    lock->reset();
#if defined(_WIN32)
    auto holder = FileLock::holder(lock_file);
    ASSERT_TRUE(holder) << holder.error().message;
    EXPECT_TRUE(holder->has_value());
#endif
  }
  auto holder = FileLock::holder(lock_file);
  ASSERT_TRUE(holder) << holder.error().message;
  EXPECT_FALSE(holder->has_value());
  auto again = FileLock::try_acquire(lock_file);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_TRUE(again->has_value());
}

TEST_F(PlatformFilesTest, FileLockHolderOfAMissingFileIsNobody) {
  auto holder = FileLock::holder(dir_ / "missing.lock");
  ASSERT_TRUE(holder) << holder.error().message;
  EXPECT_FALSE(holder->has_value());
  EXPECT_FALSE(fs::exists(dir_ / "missing.lock"));
}

#if defined(_WIN32)
// LockFileEx locks belong to a handle, so a second handle of the same process is refused (POSIX
// record locks belong to the process, which is why this is Windows only; ControlTest covers the
// POSIX case with a second process).
TEST_F(PlatformFilesTest, FileLockIsExclusiveWithinOneProcess) {
  const fs::path lock_file = dir_ / "node.lock";
  auto first = FileLock::try_acquire(lock_file);
  ASSERT_TRUE(first) << first.error().message;
  ASSERT_TRUE(first->has_value());
  auto second = FileLock::try_acquire(lock_file);
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_FALSE(second->has_value());
  auto holder = FileLock::holder(lock_file);
  ASSERT_TRUE(holder) << holder.error().message;
  ASSERT_TRUE(holder->has_value());
  // Windows does not say who holds a lock; the holder's own record in the file does.
  EXPECT_EQ(**holder, current_process_id());
  // Others may still read and write the lock file: the locked byte lies far beyond its content.
  // A record that is not one reads as "holder unknown".
  std::ofstream(lock_file, std::ios::binary) << "not a PID record";
  EXPECT_EQ(read(lock_file), "not a PID record");
  holder = FileLock::holder(lock_file);
  ASSERT_TRUE(holder) << holder.error().message;
  ASSERT_TRUE(holder->has_value());
  EXPECT_EQ(**holder, 0);

  first->reset();
  auto third = FileLock::try_acquire(lock_file);
  ASSERT_TRUE(third) << third.error().message;
  EXPECT_TRUE(third->has_value());
}
#endif

// ---- write_file_atomically, create_file_exclusively, make_directory ----

TEST_F(PlatformFilesTest, AtomicWriteReplacesContentAndLeavesNoTemporaryFile) {
  const fs::path file = dir_ / "node.status";
  ASSERT_TRUE(write_file_atomically(file, "first", /*owner_only=*/false));
  EXPECT_EQ(read(file), "first");
  ASSERT_TRUE(write_file_atomically(file, "second, longer", /*owner_only=*/false));
  EXPECT_EQ(read(file), "second, longer");
  ASSERT_TRUE(write_file_atomically(file, "3", false, Durability::kNoFlush));
  EXPECT_EQ(read(file), "3");
  ASSERT_TRUE(write_file_atomically(dir_ / "node.key", "secret", /*owner_only=*/true));
  EXPECT_EQ(read(dir_ / "node.key"), "secret");
  ASSERT_TRUE(write_file_atomically(dir_ / "node.key", "other secret", /*owner_only=*/true));
  EXPECT_EQ(read(dir_ / "node.key"), "other secret");
  EXPECT_EQ(names_in_dir(), (std::vector<std::string>{"node.key", "node.status"}));
}

// What `status` and `logs` readers do on Windows: they hold the file open (with delete sharing)
// while the node replaces it.
TEST_F(PlatformFilesTest, AtomicWriteReplacesAFileThatAReaderHasOpen) {
  const fs::path file = dir_ / "node.status";
  ASSERT_TRUE(write_file_atomically(file, "old content", false));
  auto reader = ReadFile::open(file);
  ASSERT_TRUE(reader) << reader.error().message;
  auto replaced = write_file_atomically(file, "new content", false);
  if (running_under_wine() && !replaced) {
    // The failure must at least be clean: old content, no temporary file left.
    EXPECT_EQ(read(file), "old content");
    EXPECT_EQ(names_in_dir(), std::vector<std::string>{"node.status"});
    GTEST_SKIP() << "Wine cannot replace a file another handle holds open "
                    "(FILE_RENAME_POSIX_SEMANTICS): "
                 << replaced.error().message;
  }
  ASSERT_TRUE(replaced) << replaced.error().message;
  EXPECT_EQ(read(file), "new content");
  EXPECT_EQ(read_all(*reader), "old content");
  EXPECT_EQ(names_in_dir(), std::vector<std::string>{"node.status"});
}

TEST_F(PlatformFilesTest, FailedAtomicWriteNamesThePathAndRemovesItsTemporaryFile) {
  const fs::path in_the_way = dir_ / "occupied";
  fs::create_directory(in_the_way);
  fs::create_directory(in_the_way / "child");
  auto written = write_file_atomically(in_the_way, "content", false);
  ASSERT_FALSE(written);
  EXPECT_NE(written.error().message.find("occupied"), std::string::npos) << written.error().message;
  EXPECT_EQ(names_in_dir(), std::vector<std::string>{"occupied"});

  auto missing_dir = write_file_atomically(dir_ / "missing" / "file", "x", false);
  ASSERT_FALSE(missing_dir);
  EXPECT_NE(missing_dir.error().message.find("missing"), std::string::npos)
      << missing_dir.error().message;
}

TEST_F(PlatformFilesTest, RenameFileReplacesTheTargetAndReportsAMissingSource) {
  ASSERT_TRUE(write_file_atomically(dir_ / "a", "content of a", false));
  ASSERT_TRUE(write_file_atomically(dir_ / "b", "content of b", false));
  auto renamed = rename_file(dir_ / "a", dir_ / "b");
  ASSERT_TRUE(renamed) << renamed.error().message;
  EXPECT_EQ(read(dir_ / "b"), "content of a");
  EXPECT_EQ(names_in_dir(), std::vector<std::string>{"b"});
  renamed = rename_file(dir_ / "b", dir_ / "c");
  ASSERT_TRUE(renamed) << renamed.error().message;
  EXPECT_EQ(names_in_dir(), std::vector<std::string>{"c"});

  // Log rotation treats a missing node.log as "nothing to keep", so this must be recognisable.
  auto missing = rename_file(dir_ / "missing", dir_ / "c");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, std::errc::no_such_file_or_directory) << missing.error().message;
  EXPECT_NE(missing.error().message.find("missing"), std::string::npos) << missing.error().message;
  EXPECT_EQ(read(dir_ / "c"), "content of a");
}

// Rotation renames files that the node writes and that `logs` readers have open.
TEST_F(PlatformFilesTest, RenameFileMovesAFileThatIsOpenForWritingAndReading) {
  auto writer = AppendFile::open(dir_ / "node.log");
  ASSERT_TRUE(writer) << writer.error().message;
  ASSERT_TRUE(writer->write("one\n"));
  auto reader = ReadFile::open(dir_ / "node.log");
  ASSERT_TRUE(reader) << reader.error().message;
  auto renamed = rename_file(dir_ / "node.log", dir_ / "node.log.1");
  ASSERT_TRUE(renamed) << renamed.error().message;
  ASSERT_TRUE(writer->write("two\n"));
  EXPECT_EQ(read(dir_ / "node.log.1"), "one\ntwo\n");
  EXPECT_EQ(read_all(*reader), "one\ntwo\n");
  EXPECT_FALSE(fs::exists(dir_ / "node.log"));
}

TEST_F(PlatformFilesTest, RenameFileReplacesATargetThatAReaderHasOpen) {
  ASSERT_TRUE(write_file_atomically(dir_ / "node.log.1", "newer", false));
  ASSERT_TRUE(write_file_atomically(dir_ / "node.log.2", "older", false));
  auto reader = ReadFile::open(dir_ / "node.log.2");
  ASSERT_TRUE(reader) << reader.error().message;
  auto renamed = rename_file(dir_ / "node.log.1", dir_ / "node.log.2");
  if (running_under_wine() && !renamed) {
    EXPECT_EQ(read(dir_ / "node.log.1"), "newer");
    EXPECT_EQ(read(dir_ / "node.log.2"), "older");
    GTEST_SKIP() << "Wine cannot replace a file another handle holds open "
                    "(FILE_RENAME_POSIX_SEMANTICS): "
                 << renamed.error().message;
  }
  ASSERT_TRUE(renamed) << renamed.error().message;
  EXPECT_EQ(read(dir_ / "node.log.2"), "newer");
  EXPECT_EQ(read_all(*reader), "older");
  EXPECT_EQ(names_in_dir(), std::vector<std::string>{"node.log.2"});
}

TEST_F(PlatformFilesTest, SecondExclusiveCreatorIsToldTheFileExists) {
  const fs::path file = dir_ / "node.key";
  auto first = create_file_exclusively(file, "winner", /*owner_only=*/true);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_FALSE(first->already_exists);
  auto second = create_file_exclusively(file, "loser", /*owner_only=*/true);
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_TRUE(second->already_exists);
  auto third = create_file_exclusively(file, "loser", /*owner_only=*/false);
  ASSERT_TRUE(third) << third.error().message;
  EXPECT_TRUE(third->already_exists);
  EXPECT_EQ(read(file), "winner");
  EXPECT_EQ(names_in_dir(), std::vector<std::string>{"node.key"});
}

TEST_F(PlatformFilesTest, ConcurrentExclusiveCreatorsHaveExactlyOneWinner) {
  constexpr int kThreads = 8;
  const fs::path file = dir_ / "node.key";
  std::atomic<int> winners{0};
  std::atomic<int> losers{0};
  std::atomic<int> errors{0};
  std::atomic<int> winning_thread{-1};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load())
        std::this_thread::yield();
      auto created = create_file_exclusively(file, "content of " + std::to_string(t), true);
      if (!created) {
        errors.fetch_add(1);
      } else if (created->already_exists) {
        losers.fetch_add(1);
      } else {
        winners.fetch_add(1);
        winning_thread.store(t);
      }
    });
  }
  go.store(true);
  for (auto& thread : threads)
    thread.join();
  EXPECT_EQ(winners.load(), 1);
  EXPECT_EQ(losers.load(), kThreads - 1);
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(read(file), "content of " + std::to_string(winning_thread.load()));
  EXPECT_EQ(names_in_dir(), std::vector<std::string>{"node.key"});
}

TEST_F(PlatformFilesTest, MakeDirectoryCreatesNestedDirectories) {
  const fs::path keys = dir_ / "a" / "b" / "keys";
  ASSERT_TRUE(make_directory(keys, /*owner_only=*/true));
  EXPECT_TRUE(fs::is_directory(keys));
  ASSERT_TRUE(make_directory(keys, true));  // existing: fine
  // A private directory is still usable by its owner, files created inside included.
  ASSERT_TRUE(write_file_atomically(keys / "node.key", "secret", true));
  EXPECT_EQ(read(keys / "node.key"), "secret");

  ASSERT_TRUE(make_directory(dir_ / "c" / "d", /*owner_only=*/false));
  EXPECT_TRUE(fs::is_directory(dir_ / "c" / "d"));
  ASSERT_TRUE(make_directory(dir_ / "trailing" / "", false));
  EXPECT_TRUE(fs::is_directory(dir_ / "trailing"));
}

TEST_F(PlatformFilesTest, MakeDirectoryRefusesAFileInTheWay) {
  ASSERT_TRUE(write_file_atomically(dir_ / "file", "x", false));
  EXPECT_FALSE(make_directory(dir_ / "file", false));
  EXPECT_FALSE(make_directory(dir_ / "file", true));
  EXPECT_FALSE(make_directory(dir_ / "file" / "sub", false));
  EXPECT_TRUE(fs::is_regular_file(dir_ / "file"));
}

#if defined(_WIN32)
// ACLs have no mode to judge; the fix offered is an icacls command naming the file.
TEST_F(PlatformFilesTest, PermissionAdviceOnWindowsIsAnIcaclsCommand) {
  const fs::path key = dir_ / "node.key";
  ASSERT_TRUE(write_file_atomically(key, "secret", /*owner_only=*/true));
  EXPECT_EQ(describe_loose_permissions(key), "");
  const std::string fix = private_permissions_fix(key);
  EXPECT_EQ(fix.rfind("icacls \"" + key.string() + "\" /inheritance:r /grant:r \"", 0), 0u) << fix;
  EXPECT_EQ(fix.substr(fix.size() - 3), ":F\"") << fix;
  EXPECT_NE(private_permissions_fix(dir_).find(":(OI)(CI)F\""), std::string::npos);
}
#endif

// ---- AppendFile ----

TEST_F(PlatformFilesTest, AppendFileAppendsAndCountsOtherWritersInItsSize) {
  const fs::path file = dir_ / "node.log";
  std::ofstream(file, std::ios::binary) << "old\n";
  auto log = AppendFile::open(file);
  ASSERT_TRUE(log) << log.error().message;
  ASSERT_TRUE(log->write("one\n"));
  // A second handle stands for raw writes to stdout/stderr by other code.
  auto other = AppendFile::open(file);
  ASSERT_TRUE(other) << other.error().message;
  ASSERT_TRUE(other->write("raw\n"));
  ASSERT_TRUE(log->write("two\n"));
  EXPECT_EQ(read(file), "old\none\nraw\ntwo\n");
  auto size = log->size();
  ASSERT_TRUE(size) << size.error().message;
  EXPECT_EQ(*size, 16u);
  size = other->size();
  ASSERT_TRUE(size) << size.error().message;
  EXPECT_EQ(*size, 16u);

  AppendFile moved = std::move(*log);
  EXPECT_FALSE(log->is_open());
  EXPECT_TRUE(moved.is_open());
  EXPECT_FALSE(log->write("x"));
  moved.close();
  EXPECT_FALSE(moved.is_open());
  EXPECT_FALSE(moved.size());
}

// Log rotation renames node.log while the node (and raw stdout) still write to it.
TEST_F(PlatformFilesTest, AppendFileCanBeRenamedWhileOpenAndWritesFollowTheFile) {
  const fs::path file = dir_ / "node.log";
  const fs::path rotated = dir_ / "node.log.1";
  auto log = AppendFile::open(file);
  ASSERT_TRUE(log) << log.error().message;
  ASSERT_TRUE(log->write("before\n"));
  std::error_code error;
  fs::rename(file, rotated, error);
  ASSERT_FALSE(error) << error.message();
  ASSERT_TRUE(log->write("after the rename\n"));
  EXPECT_FALSE(fs::exists(file));

  // A new file takes the old name while the renamed one is still open.
  auto next = AppendFile::open(file);
  ASSERT_TRUE(next) << next.error().message;
  ASSERT_TRUE(next->write("new file\n"));
  ASSERT_TRUE(log->write("last of the old\n"));
  EXPECT_EQ(read(rotated), "before\nafter the rename\nlast of the old\n");
  EXPECT_EQ(read(file), "new file\n");
  auto size = log->size();
  ASSERT_TRUE(size);
  EXPECT_EQ(*size, read(rotated).size());

  // Renamed once more, over an existing file: what shifting node.log.1 to node.log.2 does.
  std::ofstream(dir_ / "node.log.2", std::ios::binary) << "oldest\n";
  fs::rename(rotated, dir_ / "node.log.2", error);
  ASSERT_FALSE(error) << error.message();
  ASSERT_TRUE(log->write("still open\n"));
  EXPECT_EQ(read(dir_ / "node.log.2"), "before\nafter the rename\nlast of the old\nstill open\n");
}

TEST_F(PlatformFilesTest, AppendFileWritesLargeBuffersWhole) {
  const fs::path file = dir_ / "big";
  auto log = AppendFile::open(file);
  ASSERT_TRUE(log) << log.error().message;
  const std::string big(3 * 1024 * 1024 + 7, 'x');
  ASSERT_TRUE(log->write(big));
  EXPECT_EQ(fs::file_size(file), big.size());
}

TEST_F(PlatformFilesTest, AppendFileOpenInAMissingDirectoryFails) {
  auto log = AppendFile::open(dir_ / "missing" / "node.log");
  ASSERT_FALSE(log);
  EXPECT_NE(log.error().message.find("missing"), std::string::npos) << log.error().message;
}

// ---- file_identity and ReadFile ----

TEST_F(PlatformFilesTest, FileIdentityFollowsTheFileNotTheName) {
  const fs::path file = dir_ / "node.log";
  const fs::path moved = dir_ / "node.log.1";
  ASSERT_TRUE(write_file_atomically(file, "x", false));
  auto before = file_identity(file);
  ASSERT_TRUE(before);
  EXPECT_EQ(file_identity(file), before);
  fs::rename(file, moved);
  EXPECT_EQ(file_identity(moved), before);
  EXPECT_EQ(file_identity(file), std::nullopt);
  ASSERT_TRUE(write_file_atomically(file, "y", false));
  ASSERT_TRUE(file_identity(file));
  EXPECT_NE(file_identity(file), before);
  EXPECT_NE(file_identity(dir_), std::nullopt);  // directories have one too
}

TEST_F(PlatformFilesTest, FileIdentityWorksWhileTheWriterHasTheFileOpen) {
  const fs::path file = dir_ / "node.log";
  auto log = AppendFile::open(file);
  ASSERT_TRUE(log) << log.error().message;
  auto identity = file_identity(file);
  ASSERT_TRUE(identity);
  auto reader = ReadFile::open(file);
  ASSERT_TRUE(reader) << reader.error().message;
  auto reader_identity = reader->identity();
  ASSERT_TRUE(reader_identity) << reader_identity.error().message;
  EXPECT_EQ(*reader_identity, *identity);
}

TEST_F(PlatformFilesTest, ReadFileKeepsReadingAfterRenameAndDelete) {
  const fs::path file = dir_ / "node.log";
  ASSERT_TRUE(write_file_atomically(file, "0123456789", false));
  auto reader = ReadFile::open(file);
  ASSERT_TRUE(reader) << reader.error().message;
  auto identity = reader->identity();
  ASSERT_TRUE(identity);
  EXPECT_EQ(file_identity(file), *identity);

  std::error_code error;
  fs::rename(file, dir_ / "node.log.1", error);
  ASSERT_FALSE(error) << error.message();
  char buffer[16] = {};
  auto count = reader->read_at(3, buffer, 4);
  ASSERT_TRUE(count) << count.error().message;
  EXPECT_EQ(std::string(buffer, *count), "3456");

  fs::remove(dir_ / "node.log.1", error);
  ASSERT_FALSE(error) << error.message();
  count = reader->read_at(8, buffer, sizeof buffer);
  ASSERT_TRUE(count) << count.error().message;
  EXPECT_EQ(std::string(buffer, *count), "89");
  count = reader->read_at(10, buffer, sizeof buffer);
  ASSERT_TRUE(count) << count.error().message;
  EXPECT_EQ(*count, 0u);
  count = reader->read_at(1000, buffer, sizeof buffer);
  ASSERT_TRUE(count) << count.error().message;
  EXPECT_EQ(*count, 0u);
  auto size = reader->size();
  ASSERT_TRUE(size) << size.error().message;
  EXPECT_EQ(*size, 10u);
}

// The log reader compares the identity of its open files with the names in the directory.
TEST_F(PlatformFilesTest, ReadFileIdentityStaysTheSameAfterARename) {
  const fs::path file = dir_ / "node.log";
  ASSERT_TRUE(write_file_atomically(file, "x", false));
  auto reader = ReadFile::open(file);
  ASSERT_TRUE(reader) << reader.error().message;
  auto before = reader->identity();
  ASSERT_TRUE(before) << before.error().message;
  ASSERT_TRUE(rename_file(file, dir_ / "node.log.1"));
  auto after = reader->identity();
  ASSERT_TRUE(after) << after.error().message;
  EXPECT_EQ(file_identity(dir_ / "node.log.1"), *before);
  EXPECT_EQ(*after, *before);
}

TEST_F(PlatformFilesTest, ReadFileSeesWhatIsAppendedAfterItOpened) {
  const fs::path file = dir_ / "node.log";
  auto log = AppendFile::open(file);
  ASSERT_TRUE(log) << log.error().message;
  ASSERT_TRUE(log->write("first\n"));
  auto reader = ReadFile::open(file);
  ASSERT_TRUE(reader) << reader.error().message;
  ASSERT_TRUE(log->write("second\n"));
  EXPECT_EQ(read_all(*reader), "first\nsecond\n");
  fs::rename(file, dir_ / "node.log.1");
  ASSERT_TRUE(log->write("third\n"));
  EXPECT_EQ(read_all(*reader), "first\nsecond\nthird\n");
}

TEST_F(PlatformFilesTest, ReadFileOpenOfMissingFileSaysWhy) {
  auto reader = ReadFile::open(dir_ / "missing");
  ASSERT_FALSE(reader);
  EXPECT_EQ(reader.error().code, std::errc::no_such_file_or_directory)
      << reader.error().code.message();
  EXPECT_NE(reader.error().message.find("missing"), std::string::npos);
}

// ---- processes ----

TEST_F(PlatformFilesTest, CurrentProcessExistsAndRunsThisExecutable) {
  EXPECT_TRUE(process_exists(current_process_id()));
  EXPECT_FALSE(process_exists(0));
  EXPECT_FALSE(process_exists(-5));
  const fs::path executable = current_executable();
  ASSERT_FALSE(executable.empty());
  EXPECT_TRUE(executable.is_absolute()) << executable;
  EXPECT_EQ(executable.stem(), "daemon_tests") << executable;
  EXPECT_TRUE(fs::is_regular_file(executable)) << executable;
}

}  // namespace
}  // namespace an::daemon
