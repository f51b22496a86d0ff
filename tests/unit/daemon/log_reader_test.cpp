#include "daemon/log_reader.h"

#include <gtest/gtest.h>
#if !defined(_WIN32)
#include <fcntl.h>
#include <unistd.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "daemon/log_file.h"
#include "support/temp_dir.h"

namespace an::daemon {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

std::vector<std::string> numbered(const std::string& prefix, int first, int last) {
  std::vector<std::string> lines;
  for (int i = first; i <= last; ++i)
    lines.push_back(prefix + std::to_string(i));
  return lines;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& line : lines)
    text += line + "\n";
  return text;
}

class LogReaderTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(logs_.empty()); }

  void write(const std::string& name, const std::string& content) {
    std::ofstream(logs_ / name, std::ios::binary) << content;
  }
  std::vector<std::string> tail(std::size_t n) {
    auto lines = tail_lines(logs_, n);
    EXPECT_TRUE(lines) << lines.error().message;
    return lines ? *lines : std::vector<std::string>{};
  }

  test::TempDir temp_;
  const fs::path logs_ = temp_.path();
};

TEST_F(LogReaderTest, TailTakesTheLastLinesOfNodeLog) {
  write("node.log", joined(numbered("line ", 1, 10)));
  EXPECT_EQ(tail(3), numbered("line ", 8, 10));
  EXPECT_EQ(tail(10), numbered("line ", 1, 10));
  EXPECT_EQ(tail(0), std::vector<std::string>{});
}

TEST_F(LogReaderTest, TailContinuesIntoRotatedFilesOldestFirst) {
  write("node.log.2", joined(numbered("a", 1, 5)));
  write("node.log.1", joined(numbered("b", 1, 5)));
  write("node.log", joined(numbered("c", 1, 2)));
  EXPECT_EQ(tail(2), numbered("c", 1, 2));
  std::vector<std::string> expected = numbered("b", 3, 5);
  for (auto& line : numbered("c", 1, 2))
    expected.push_back(line);
  EXPECT_EQ(tail(5), expected);

  std::vector<std::string> everything = numbered("a", 1, 5);
  for (auto& line : numbered("b", 1, 5))
    everything.push_back(line);
  for (auto& line : numbered("c", 1, 2))
    everything.push_back(line);
  EXPECT_EQ(tail(12), everything);
  EXPECT_EQ(tail(1000), everything);
}

TEST_F(LogReaderTest, TailCountsAFinalLineWithoutNewline) {
  write("node.log", "one\ntwo\nunfinished");
  EXPECT_EQ(tail(1), std::vector<std::string>{"unfinished"});
  EXPECT_EQ(tail(2), (std::vector<std::string>{"two", "unfinished"}));
  EXPECT_EQ(tail(9), (std::vector<std::string>{"one", "two", "unfinished"}));
}

TEST_F(LogReaderTest, TailKeepsEmptyLines) {
  write("node.log", "a\n\nb\n");
  EXPECT_EQ(tail(2), (std::vector<std::string>{"", "b"}));
}

TEST_F(LogReaderTest, TailOfAnEmptyFileIsEmptyAndGoesOnIntoRotated) {
  write("node.log", "");
  EXPECT_EQ(tail(5), std::vector<std::string>{});
  write("node.log.1", "older\n");
  EXPECT_EQ(tail(5), std::vector<std::string>{"older"});
}

TEST_F(LogReaderTest, TailWithOnlyRotatedFilesReadsThem) {
  write("node.log.1", "rotated\n");
  EXPECT_EQ(tail(5), std::vector<std::string>{"rotated"});
}

TEST_F(LogReaderTest, TailWithoutAnyLogFileSaysWhere) {
  auto lines = tail_lines(logs_ / "missing", 5);
  ASSERT_FALSE(lines);
  EXPECT_EQ(lines.error().message, "no log file at " + (logs_ / "missing" / "node.log").string());
  lines = tail_lines(logs_, 5);
  ASSERT_FALSE(lines);
  EXPECT_EQ(lines.error().message, "no log file at " + (logs_ / "node.log").string());
}

TEST_F(LogReaderTest, TailSpansChunkBoundaries) {
  // Lines of varied length over several 64 KiB chunks.
  std::vector<std::string> lines;
  for (int i = 0; i < 5000; ++i)
    lines.push_back(std::to_string(i) + std::string(i % 97, '.'));
  write("node.log", joined(lines));
  auto last = tail(3000);
  ASSERT_EQ(last.size(), 3000u);
  EXPECT_EQ(last, std::vector<std::string>(lines.end() - 3000, lines.end()));
}

TEST_F(LogReaderTest, TailCutsGiantLines) {
  write("node.log", std::string(kMaxTailLineBytes + 100, 'x') + "\nsmall\n");
  auto last = tail(2);
  ASSERT_EQ(last.size(), 2u);
  EXPECT_EQ(last[0].substr(0, kMaxTailLineBytes), std::string(kMaxTailLineBytes, 'x'));
  EXPECT_EQ(last[0].substr(kMaxTailLineBytes), " [... 100 more bytes not shown]");
  EXPECT_EQ(last[1], "small");
}

#if !defined(_WIN32)
// Needs a sparse file: NTFS would write the gigabyte of zeros.
TEST_F(LogReaderTest, TailOfAGigabyteFileReadsOnlyItsEnd) {
  constexpr std::uint64_t kGigabyte = 1024ull * 1024 * 1024;
  {
    // Sparse: one gigabyte of holes, then a newline and 100 real lines.
    const int fd = ::open((logs_ / "node.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(kGigabyte)), 0);
    const std::string end = "\n" + joined(numbered("line ", 1, 100));
    ASSERT_EQ(::pwrite(fd, end.data(), end.size(), static_cast<off_t>(kGigabyte)),
              static_cast<ssize_t>(end.size()));
    ::close(fd);
  }
  TailStats stats;
  auto lines = tail_lines(logs_, 50, &stats);
  ASSERT_TRUE(lines) << lines.error().message;
  EXPECT_EQ(*lines, numbered("line ", 51, 100));
  EXPECT_LT(stats.bytes_read, 256u * 1024);
}
#endif  // !defined(_WIN32)

// ---- follow ---------------------------------------------------------------------------------

// Runs follow() on a thread; stops it once `expected_lines` lines came or after a minute.
class Follower {
 public:
  Follower(const fs::path& logs_dir, std::size_t initial_lines, std::size_t expected_lines)
      : thread_([this, logs_dir, initial_lines, expected_lines] {
          const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
          result_ = follow(
              logs_dir, initial_lines,
              [this](std::string_view bytes) {
                std::lock_guard lock(mutex_);
                for (char c : bytes)
                  lines_seen_ += c == '\n';
                output_.append(bytes);
              },
              [&] {
                std::lock_guard lock(mutex_);
                return !stop_.load() && lines_seen_ < expected_lines &&
                       std::chrono::steady_clock::now() < deadline;
              },
              milliseconds(5));
        }) {}
  ~Follower() { stop(); }

  void stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  std::string output() {
    std::lock_guard lock(mutex_);
    return output_;
  }
  // Waits (at most a minute) until the output holds `count` lines.
  bool wait_for_lines(std::size_t count) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
    while (std::chrono::steady_clock::now() < deadline) {
      {
        std::lock_guard lock(mutex_);
        if (lines_seen_ >= count) return true;
      }
      std::this_thread::sleep_for(milliseconds(2));
    }
    return false;
  }
  const Expected<void>& result() const { return result_; }

 private:
  std::mutex mutex_;
  std::string output_;
  std::size_t lines_seen_ = 0;
  std::atomic<bool> stop_{false};
  Expected<void> result_;
  std::thread thread_;  // last: starts after the members it uses exist
};

TEST_F(LogReaderTest, FollowPrintsTheLastLinesThenWhatIsAppended) {
  write("node.log.1", "old 1\nold 2\n");
  write("node.log", "current 1\n");
  Follower follower(logs_, /*initial_lines=*/2, /*expected_lines=*/4);
  ASSERT_TRUE(follower.wait_for_lines(2));
  {
    auto appender = AppendFile::open(logs_ / "node.log");
    ASSERT_TRUE(appender);
    ASSERT_TRUE(appender->write("current 2\n"));
  }
  ASSERT_TRUE(follower.wait_for_lines(3));
  follower.stop();
  ASSERT_TRUE(follower.result()) << follower.result().error().message;
  EXPECT_EQ(follower.output(), "old 2\ncurrent 1\ncurrent 2\n");
}

TEST_F(LogReaderTest, FollowHoldsBackALineUntilItsEnd) {
  write("node.log", "whole\nhal");
  Follower follower(logs_, 5, 2);
  ASSERT_TRUE(follower.wait_for_lines(1));
  auto appender = AppendFile::open(logs_ / "node.log");
  ASSERT_TRUE(appender);
  ASSERT_TRUE(appender->write("f\n"));
  ASSERT_TRUE(follower.wait_for_lines(2));
  follower.stop();
  EXPECT_EQ(follower.output(), "whole\nhalf\n");
}

TEST_F(LogReaderTest, FollowStartsOverAfterATruncation) {
  write("node.log", "before 1\nbefore 2\n");
  Follower follower(logs_, 5, 3);
  ASSERT_TRUE(follower.wait_for_lines(2));
  fs::resize_file(logs_ / "node.log", 0);  // logrotate's copytruncate
  auto appender = AppendFile::open(logs_ / "node.log");
  ASSERT_TRUE(appender);
  ASSERT_TRUE(appender->write("after\n"));
  ASSERT_TRUE(follower.wait_for_lines(3));
  follower.stop();
  EXPECT_EQ(follower.output(), "before 1\nbefore 2\nafter\n");
}

TEST_F(LogReaderTest, FollowWaitsForAMissingNodeLog) {
  write("node.log.1", "rotated\n");
  Follower follower(logs_, 5, 2);
  ASSERT_TRUE(follower.wait_for_lines(1));
  write("node.log", "new\n");
  ASSERT_TRUE(follower.wait_for_lines(2));
  follower.stop();
  ASSERT_TRUE(follower.result()) << follower.result().error().message;
  EXPECT_EQ(follower.output(), "rotated\nnew\n");
}

TEST_F(LogReaderTest, FollowWithoutAnyLogFileFails) {
  auto followed = follow(
      logs_, 5, [](std::string_view) {}, [] { return true; }, milliseconds(5));
  ASSERT_FALSE(followed);
  EXPECT_EQ(followed.error().message, "no log file at " + (logs_ / "node.log").string());
}

TEST_F(LogReaderTest, FollowSeesEveryLineOnceAcrossManyRotations) {
  constexpr int kLines = 3000;
  auto log = RotatingLogFile::open({.logs_dir = logs_, .max_bytes = 2048, .max_files = 1000});
  ASSERT_TRUE(log) << log.error().message;
  // Everything already written comes with the initial lines, the rest by following.
  Follower follower(logs_, /*initial_lines=*/kLines * 2, /*expected_lines=*/kLines);
  std::thread writer([&] {
    for (int i = 0; i < kLines; ++i) {
      char line[64];
      std::snprintf(line, sizeof line, "line %05d of the follow test\n", i);
      (*log)->write(line);
      if (i % 20 == 0) std::this_thread::sleep_for(milliseconds(1));
    }
  });
  writer.join();
  EXPECT_GT((*log)->rotation_count(), 20u);
  EXPECT_EQ((*log)->error_count(), 0u) << (*log)->last_error();
  ASSERT_TRUE(follower.wait_for_lines(kLines))
      << "after " << follower.output().size() << " bytes:\n"
      << follower.output().substr(follower.output().size() > 300 ? follower.output().size() - 300
                                                                 : 0);
  follower.stop();
  ASSERT_TRUE(follower.result()) << follower.result().error().message;

  std::string expected;
  for (int i = 0; i < kLines; ++i) {
    char line[64];
    std::snprintf(line, sizeof line, "line %05d of the follow test\n", i);
    expected += line;
  }
  const std::string output = follower.output();
  EXPECT_EQ(output.size(), expected.size());
  EXPECT_TRUE(output == expected)
      << "first difference at byte "
      << std::mismatch(output.begin(), output.end(), expected.begin(), expected.end()).first -
             output.begin();
}

}  // namespace
}  // namespace an::daemon
