#include "daemon/log_file.h"

#include <gtest/gtest.h>
#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <io.h>
#include <windows.h>
#else
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "daemon/log_sink.h"
#include "support/log_files.h"
#include "support/temp_dir.h"

namespace an::daemon {
namespace {

namespace fs = std::filesystem;
using test::all_lines_oldest_first;
using test::highest_rotated_index;
using test::read_file;
using test::split_lines;

class LogFileTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(root_.empty()); }

  std::shared_ptr<RotatingLogFile> open_log(std::uint64_t max_bytes, int max_files) {
    auto log =
        RotatingLogFile::open({.logs_dir = logs_, .max_bytes = max_bytes, .max_files = max_files});
    EXPECT_TRUE(log) << log.error().message;
    return log ? *log : nullptr;
  }

  test::TempDir temp_;
  const fs::path root_ = temp_.path();
  const fs::path logs_ = root_ / "logs";
};

TEST_F(LogFileTest, CreatesTheDirectoryAndAppends) {
  auto log = open_log(1024, 3);
  ASSERT_TRUE(log);
  log->write("one\n");
  log->write("two\n");
  EXPECT_EQ(log->path(), logs_ / "node.log");
  EXPECT_EQ(read_file(logs_ / "node.log"), "one\ntwo\n");
  EXPECT_EQ(log->error_count(), 0u);
  EXPECT_EQ(log->rotation_count(), 0u);
}

TEST_F(LogFileTest, RotatesBeforeTheLimitWouldBePassedNewestIsOne) {
  auto log = open_log(/*max_bytes=*/100, /*max_files=*/10);
  ASSERT_TRUE(log);
  std::vector<std::string> written;
  for (int i = 0; i < 35; ++i) {
    char line[16];
    std::snprintf(line, sizeof line, "line %03d\n", i);  // 9 bytes
    written.push_back(std::string(line, 8));
    log->write(line);
  }
  // 11 lines of 9 bytes fit in 100; 35 lines make 3 full files and 2 lines in node.log.
  EXPECT_EQ(log->rotation_count(), 3u);
  EXPECT_EQ(highest_rotated_index(logs_), 3);
  for (int index = 1; index <= 3; ++index) {
    EXPECT_LE(fs::file_size(rotated_log_path(logs_, index)), 100u);
  }
  EXPECT_EQ(read_file(logs_ / "node.log"), "line 033\nline 034\n");
  EXPECT_EQ(split_lines(read_file(logs_ / "node.log.1")).back(), "line 032");
  EXPECT_EQ(split_lines(read_file(logs_ / "node.log.3")).front(), "line 000");
  EXPECT_EQ(all_lines_oldest_first(logs_), written);
  EXPECT_FALSE(fs::exists(logs_ / "node.log.new"));
}

// On Windows a rename fails while anyone has the file open without delete sharing: readers
// (`logs -f`) keep the current and rotated files open while the node rotates them.
TEST_F(LogFileTest, RotationWorksWhileReadersHoldTheFilesOpen) {
  auto log = open_log(/*max_bytes=*/1000, /*max_files=*/50);
  ASSERT_TRUE(log);
  std::vector<ReadFile> readers;
  std::vector<std::string> written;
  for (int i = 0; i < 2000; ++i) {
    char line[32];
    std::snprintf(line, sizeof line, "line %05d\n", i);  // 11 bytes
    written.push_back(std::string(line, 10));
    log->write(line);
    if (i % 37 == 0) {
      // Every now and then a reader opens whatever is current; it stays open until the end.
      auto reader = ReadFile::open(current_log_path(logs_));
      ASSERT_TRUE(reader) << reader.error().message;
      readers.push_back(std::move(*reader));
    }
  }
  EXPECT_EQ(log->error_count(), 0u) << log->last_error();
  // 90 lines fit in 1000 bytes: 2000 lines make 22 full files and 20 lines in node.log.
  EXPECT_EQ(log->rotation_count(), 22u);
  EXPECT_EQ(highest_rotated_index(logs_), 22);
  EXPECT_FALSE(fs::exists(logs_ / "node.log.new"));
  EXPECT_EQ(all_lines_oldest_first(logs_), written);
  // The first reader still sees the first file's lines, wherever that file went.
  std::string first_file(1000, '\0');
  auto count = readers.front().read_at(0, first_file.data(), first_file.size());
  ASSERT_TRUE(count) << count.error().message;
  EXPECT_EQ(first_file.substr(0, *count), read_file(rotated_log_path(logs_, 22)));
}

TEST_F(LogFileTest, KeepsAtMostMaxFilesRotatedFiles) {
  auto log = open_log(/*max_bytes=*/50, /*max_files=*/2);
  ASSERT_TRUE(log);
  for (int i = 0; i < 100; ++i)
    log->write("line " + std::to_string(1000 + i) + "\n");  // 10 B
  EXPECT_EQ(highest_rotated_index(logs_), 2);
  EXPECT_FALSE(fs::exists(logs_ / "node.log.3"));
  // The survivors are the newest 15 lines, in order.
  std::vector<std::string> expected;
  for (int i = 85; i < 100; ++i)
    expected.push_back("line " + std::to_string(1000 + i));
  EXPECT_EQ(all_lines_oldest_first(logs_), expected);
}

TEST_F(LogFileTest, RotationDeletesFilesBeyondASmallerLimitLeftByAnEarlierRun) {
  fs::create_directories(logs_);
  for (int index = 1; index <= 6; ++index) {
    std::ofstream(rotated_log_path(logs_, index), std::ios::binary) << "old " << index << "\n";
  }
  auto log = open_log(10, 3);
  ASSERT_TRUE(log);
  log->write("first line\n");
  log->write("second line\n");  // rotates
  EXPECT_EQ(highest_rotated_index(logs_), 3);
  EXPECT_EQ(read_file(logs_ / "node.log.1"), "first line\n");
  EXPECT_EQ(read_file(logs_ / "node.log.2"), "old 1\n");
  EXPECT_EQ(read_file(logs_ / "node.log.3"), "old 2\n");
}

TEST_F(LogFileTest, AnOverLongLineGoesIntoAnEmptyFileWhole) {
  auto log = open_log(/*max_bytes=*/10, /*max_files=*/3);
  ASSERT_TRUE(log);
  const std::string long_line = std::string(50, 'x') + "\n";
  log->write(long_line);
  EXPECT_EQ(read_file(logs_ / "node.log"), long_line);
  EXPECT_EQ(log->rotation_count(), 0u);
  log->write("short\n");
  EXPECT_EQ(read_file(logs_ / "node.log.1"), long_line);
  EXPECT_EQ(read_file(logs_ / "node.log"), "short\n");
}

TEST_F(LogFileTest, CheckRotationRotatesAfterRawWritesPassedTheLimit) {
  auto log = open_log(/*max_bytes=*/20, /*max_files=*/3);
  ASSERT_TRUE(log);
  log->check_rotation();
  EXPECT_EQ(log->rotation_count(), 0u);  // an empty file never rotates
  log->write("logged\n");
  auto raw = AppendFile::open(logs_ / "node.log");  // stands for fd 1/2 of the daemon
  ASSERT_TRUE(raw);
  ASSERT_TRUE(raw->write("raw bytes from a crash report\n"));
  log->check_rotation();
  EXPECT_EQ(log->rotation_count(), 1u);
  EXPECT_EQ(read_file(logs_ / "node.log.1"), "logged\nraw bytes from a crash report\n");
  EXPECT_EQ(fs::file_size(logs_ / "node.log"), 0u);
  log->check_rotation();
  EXPECT_EQ(log->rotation_count(), 1u);
}

TEST_F(LogFileTest, ReopenFollowsAnExternalRename) {
  auto log = open_log(1 << 20, 3);
  ASSERT_TRUE(log);
  log->write("before\n");
  fs::rename(logs_ / "node.log", logs_ / "node.log-20260101");  // what logrotate does
  log->write("still in the moved file\n");
  ASSERT_TRUE(log->reopen());
  log->write("after\n");
  EXPECT_EQ(read_file(logs_ / "node.log-20260101"), "before\nstill in the moved file\n");
  EXPECT_EQ(read_file(logs_ / "node.log"), "after\n");
}

TEST_F(LogFileTest, OpenFinishesARotationACrashInterrupted) {
  fs::create_directories(logs_);
  // Crash before node.log was renamed: node.log.new holds the newer lines.
  std::ofstream(logs_ / "node.log", std::ios::binary) << "older\n";
  std::ofstream(logs_ / "node.log.new", std::ios::binary) << "newer\n";
  {
    auto log = open_log(1 << 20, 3);
    ASSERT_TRUE(log);
    log->write("newest\n");
  }
  EXPECT_EQ(read_file(logs_ / "node.log"), "older\nnewer\nnewest\n");
  EXPECT_FALSE(fs::exists(logs_ / "node.log.new"));

  // Crash after node.log became node.log.1: node.log.new is the current file.
  fs::rename(logs_ / "node.log", logs_ / "node.log.1");
  std::ofstream(logs_ / "node.log.new", std::ios::binary) << "current\n";
  auto log = open_log(1 << 20, 3);
  ASSERT_TRUE(log);
  EXPECT_EQ(read_file(logs_ / "node.log"), "current\n");
  EXPECT_FALSE(fs::exists(logs_ / "node.log.new"));
}

TEST_F(LogFileTest, RejectsZeroFiles) {
  auto log = RotatingLogFile::open({.logs_dir = logs_, .max_bytes = 100, .max_files = 0});
  ASSERT_FALSE(log);
  EXPECT_NE(log.error().message.find("at least 1"), std::string::npos);
}

#if !defined(_WIN32)
// /dev/full has no Windows counterpart.
TEST_F(LogFileTest, WriteFailuresAreCountedAndReportedOnceWritingWorksAgain) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "needs /dev/full";
  fs::create_directories(logs_);
  fs::create_symlink("/dev/full", logs_ / "node.log");  // every write fails with ENOSPC
  auto log = open_log(1 << 20, 3);
  ASSERT_TRUE(log);
  log->write("lost 1\n");
  log->write("lost 2\n");
  EXPECT_EQ(log->error_count(), 2u);
  EXPECT_NE(log->last_error().find("space"), std::string::npos) << log->last_error();

  fs::remove(logs_ / "node.log");
  ASSERT_TRUE(log->reopen());
  log->write("back\n");
  const auto lines = split_lines(read_file(logs_ / "node.log"));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "back");
  EXPECT_NE(lines[1].find("[error] log file: 2 earlier write or rotation failure(s)"),
            std::string::npos)
      << lines[1];
}
#endif  // !defined(_WIN32)

TEST(LogSizeLimit, AcceptsFractionalMegabytes) {
  EXPECT_EQ(log_size_limit_bytes(10), 10u * 1024 * 1024);
  EXPECT_EQ(log_size_limit_bytes(0.05), 52429u);
  EXPECT_EQ(log_size_limit_bytes(0), 1u);
  EXPECT_EQ(log_size_limit_bytes(-3), 1u);
}

TEST_F(LogFileTest, NodeLoggerWritesUtcIsoTimeLevelAndMessage) {
  auto log = open_log(1 << 20, 3);
  ASSERT_TRUE(log);
  auto logger = make_node_logger(log, /*also_console=*/false);
  logger->info("hello {}", "world");
  logger->warn("careful");
  logger->debug("not at the default level");
  const auto lines = split_lines(read_file(logs_ / "node.log"));
  ASSERT_EQ(lines.size(), 2u);
  const std::regex time_prefix(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z )");
  EXPECT_TRUE(std::regex_search(lines[0], time_prefix)) << lines[0];
  EXPECT_EQ(lines[0].substr(24), " [info] hello world");
  EXPECT_EQ(lines[1].substr(24), " [warning] careful");
}

#if defined(_WIN32)
// Windows has no fork, so the captured-stdio scenario runs in this process: its stdout and stderr
// point at the log meanwhile and are put back afterwards. Nothing may report a failure (gtest
// writes to stdout) until they are back.
class SavedStandardStreams {
 public:
  SavedStandardStreams() : out_(::_dup(1)), err_(::_dup(2)) {}
  ~SavedStandardStreams() { restore(); }
  bool valid() const { return out_ >= 0 && err_ >= 0; }
  void restore() {
    std::fflush(stdout);
    std::fflush(stderr);
    put_back(out_, 1, STD_OUTPUT_HANDLE);
    put_back(err_, 2, STD_ERROR_HANDLE);
  }

 private:
  static void put_back(int& saved, int fd, DWORD std_id) {
    if (saved < 0) return;
    ::_dup2(saved, fd);
    ::_close(saved);
    saved = -1;
    ::SetStdHandle(std_id, reinterpret_cast<HANDLE>(::_get_osfhandle(fd)));
  }

  int out_;
  int err_;
};

// Every way Windows code writes to stdout/stderr must land in the current log file, in order,
// through rotations, and keep "\n" line ends.
TEST_F(LogFileTest, CapturedStdioFollowsRotationsWithinTheProcess) {
  constexpr int kLines = 1000;
  std::vector<std::string> expected;
  std::string problem;
  std::uint64_t rotations = 0;
  {
    SavedStandardStreams saved;
    ASSERT_TRUE(saved.valid());
    auto log = RotatingLogFile::open(
        {.logs_dir = logs_, .max_bytes = 1024, .max_files = 1000, .capture_stdio = true});
    if (!log) {
      problem = log.error().message;
    } else {
      for (int i = 0; i < kLines && problem.empty(); ++i) {
        char line[64];
        const int kind = i % 5;
        const int length = std::snprintf(line, sizeof line, "kind %d line %04d\n", kind, i);
        expected.emplace_back(line, static_cast<std::size_t>(length - 1));
        DWORD written = 0;
        switch (kind) {
          case 0:
            (*log)->write(line);
            break;
          case 1:  // the C runtime's descriptor
            if (::_write(1, line, static_cast<unsigned>(length)) != length) problem = "_write 1";
            break;
          case 2:  // stdio, as a library's fprintf(stderr) would
            if (std::fputs(line, stderr) < 0) problem = "fputs";
            break;
          case 3:  // the Win32 standard handles, as the crash reporter writes
            if (!::WriteFile(::GetStdHandle(STD_ERROR_HANDLE), line, static_cast<DWORD>(length),
                             &written, nullptr)) {
              problem = "WriteFile stderr";
            }
            break;
          default:
            std::fputs(line, stdout);
            std::fflush(stdout);
            break;
        }
        if (i % 7 == 0) (*log)->check_rotation();
      }
      rotations = (*log)->rotation_count();
      if ((*log)->error_count() != 0) problem += " log errors: " + (*log)->last_error();
    }
    saved.restore();
  }
  ASSERT_EQ(problem, "");
  EXPECT_GT(rotations, 10u);
  EXPECT_FALSE(fs::exists(logs_ / "node.log.new"));
  EXPECT_EQ(all_lines_oldest_first(logs_), expected);
  for (int index = 1; index <= highest_rotated_index(logs_); ++index) {
    EXPECT_EQ(read_file(rotated_log_path(logs_, index)).find('\r'), std::string::npos) << index;
  }
}
#endif  // defined(_WIN32)

// ---- rotation under load with stdout/stderr captured, in a child process --------------------

// The child is forked; on Windows the same scenario needs a separate child program.
#if !defined(_WIN32)

constexpr int kLoggerThreads = 4;
constexpr int kRawThreads = 2;
constexpr int kLinesPerWriter = 1500;
constexpr int kRawLinesAfterLoggers = 10;

// The child: a daemon-like process whose fd 1 and 2 are the log. Returns its exit code.
int run_logging_child(const fs::path& logs_dir, int max_files) {
  auto log = RotatingLogFile::open(
      {.logs_dir = logs_dir, .max_bytes = 4096, .max_files = max_files, .capture_stdio = true});
  if (!log) return 10;
  auto logger = make_node_logger(*log, /*also_console=*/false);
  std::atomic<bool> writers_done{false};
  std::atomic<int> loggers_done{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < kLoggerThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kLinesPerWriter; ++i)
        logger->info("L{} {} padding-padding", t, i);
      loggers_done.fetch_add(1);
    });
  }
  for (int fd = 1; fd <= kRawThreads; ++fd) {
    writers.emplace_back([&log, &loggers_done, fd] {
      for (int i = 0; i < kLinesPerWriter; ++i) {
        if (i == kLinesPerWriter - kRawLinesAfterLoggers) {
          // The last raw lines come after the logger's, so that they survive even when only a
          // few files are kept.
          const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
          while (loggers_done.load() < kLoggerThreads &&
                 std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::microseconds(100));
          }
        }
        if (i == kLinesPerWriter / 2) {
          // Half way, wait for a rotation, so that this writer's lines surely span two files.
          const auto rotations = (*log)->rotation_count();
          const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
          while ((*log)->rotation_count() == rotations &&
                 std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::microseconds(100));
          }
        }
        char line[64];
        const int length = std::snprintf(line, sizeof line, "R%d %d raw-raw-raw-raw\n", fd, i);
        if (::write(fd, line, static_cast<std::size_t>(length)) != length) std::abort();
      }
    });
  }
  // What the node does every second, much more often so that it races the raw writers.
  std::thread checker([&] {
    while (!writers_done.load()) {
      (*log)->check_rotation();
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  for (auto& writer : writers)
    writer.join();
  writers_done.store(true);
  checker.join();
  return (*log)->error_count() == 0 ? 0 : 11;
}

// Runs the child and waits for it, at most two minutes.
void run_in_child(const fs::path& logs_dir, int max_files) {
  std::fflush(nullptr);  // nothing buffered may be written twice
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(run_logging_child(logs_dir, max_files));
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(2);
  pid_t waited = 0;
  while ((waited = ::waitpid(child, &status, WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (waited == 0) {
    ::kill(child, SIGKILL);
    ::waitpid(child, &status, 0);
    FAIL() << "the logging child did not finish";
  }
  ASSERT_TRUE(WIFEXITED(status)) << "child status " << status;
  ASSERT_EQ(WEXITSTATUS(status), 0) << "child failed";
}

// Line numbers per writer ("L0".."L3" through the logger, "R1"/"R2" raw), in file order.
std::map<std::string, std::vector<int>> numbers_per_writer(const std::vector<std::string>& lines) {
  static const std::regex logger_line(
      R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[info\] (L\d) (\d+) padding-padding$)");
  static const std::regex raw_line(R"(^(R\d) (\d+) raw-raw-raw-raw$)");
  std::map<std::string, std::vector<int>> numbers;
  std::smatch match;
  for (const std::string& line : lines) {
    if (std::regex_match(line, match, logger_line) || std::regex_match(line, match, raw_line)) {
      numbers[match[1]].push_back(std::stoi(match[2]));
    } else {
      ADD_FAILURE() << "mangled line: " << line;
    }
  }
  return numbers;
}

TEST_F(LogFileTest, CapturedStdioRotationLosesAndDuplicatesNothing) {
  run_in_child(logs_, /*max_files=*/100000);
  if (HasFatalFailure()) return;
  EXPECT_FALSE(fs::exists(logs_ / "node.log.new"));
  EXPECT_GT(highest_rotated_index(logs_), 10);
  const auto numbers = numbers_per_writer(all_lines_oldest_first(logs_));
  EXPECT_EQ(numbers.size(), std::size_t{kLoggerThreads + kRawThreads});
  std::vector<int> expected(kLinesPerWriter);
  for (int i = 0; i < kLinesPerWriter; ++i)
    expected[i] = i;
  for (const auto& [writer, seen] : numbers) {
    EXPECT_EQ(seen, expected) << "writer " << writer;
  }
  // The raw writers' lines followed the rotations instead of piling up in one old file.
  for (const std::string raw_writer : {"R1 ", "R2 "}) {
    int files_with_lines = 0;
    for (int index = 0; index <= highest_rotated_index(logs_); ++index) {
      const fs::path file = index == 0 ? current_log_path(logs_) : rotated_log_path(logs_, index);
      files_with_lines += read_file(file).find(raw_writer) != std::string::npos;
    }
    EXPECT_GE(files_with_lines, 2) << raw_writer;
  }
}

TEST_F(LogFileTest, CapturedStdioRotationWithFewFilesKeepsANewestSuffix) {
  constexpr int kMaxFiles = 3;
  run_in_child(logs_, kMaxFiles);
  if (HasFatalFailure()) return;
  EXPECT_EQ(highest_rotated_index(logs_), kMaxFiles);
  EXPECT_FALSE(fs::exists(logs_ / "node.log.new"));
  const auto numbers = numbers_per_writer(all_lines_oldest_first(logs_));
  // Loggers that finished early may have lost all their lines to deletion, but the raw
  // writers wrote last: their lines must have followed the rotations into the newest files.
  EXPECT_EQ(numbers.count("R1"), 1u);
  EXPECT_EQ(numbers.count("R2"), 1u);
  for (const auto& [writer, seen] : numbers) {
    ASSERT_FALSE(seen.empty());
    // Contiguous, each once, ending with the writer's last line.
    EXPECT_EQ(seen.back(), kLinesPerWriter - 1) << "writer " << writer;
    for (std::size_t i = 1; i < seen.size(); ++i) {
      ASSERT_EQ(seen[i], seen[i - 1] + 1) << "writer " << writer << " at " << i;
    }
  }
}

#endif  // !defined(_WIN32)

}  // namespace
}  // namespace an::daemon
