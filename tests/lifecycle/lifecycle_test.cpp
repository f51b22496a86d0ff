// The daemon lifecycle end to end, with real processes: an-standin-node (beside this executable)
// is started detached, as `start` starts the node, and found, refused, stopped and killed through
// the daemon layer's control functions. Runs on every platform the daemon layer builds for.
// Two tests start threads of their own (concurrent spawns, a log follower) and check their
// results only after joining them. Every wait is bounded, and TearDown kills whatever a test
// left running.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/control.h"
#include "daemon/log_file.h"
#include "daemon/log_reader.h"
#include "daemon/paths.h"
#include "daemon/platform.h"
#include "daemon/status_file.h"
#include "support/log_files.h"
#include "support/temp_dir.h"

#if !defined(_WIN32)
#include <sys/wait.h>
#endif

namespace an::daemon {
namespace {

namespace fs = std::filesystem;
using test::all_lines_oldest_first;
using test::highest_rotated_index;
using test::read_file;
using test::split_lines;

// Generous: under an emulator (Wine) every process start takes about a second.
constexpr auto kReadyTimeout = std::chrono::seconds(30);
constexpr auto kExitTimeout = std::chrono::seconds(30);
constexpr auto kStopTimeout = std::chrono::seconds(20);

fs::path standin_executable() {
#if defined(_WIN32)
  return current_executable().parent_path() / "an-standin-node.exe";
#else
  return current_executable().parent_path() / "an-standin-node";
#endif
}

bool wait_until_gone(ProcessId pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (process_exists(pid)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

struct Started {
  ProcessId pid = 0;  // as spawn_detached reports it
  ReadyReader ready;
};

struct Report {
  bool ok = false;
  ProcessId pid = 0;
  bool console = true;
  std::string error;
  ProcessId running_pid = 0;
  std::string raw;
};

class LifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty()) << "no temporary directory";
    ASSERT_TRUE(fs::exists(standin_executable())) << standin_executable().string();
    ASSERT_TRUE(make_directory(paths_.logs_dir, false));
  }

  void TearDown() override {
    for (ProcessId pid : children_) {
      if (process_exists(pid)) (void)kill_process(pid);
      EXPECT_TRUE(wait_until_gone(pid, kExitTimeout)) << "child " << pid << " survived a kill";
    }
#if !defined(_WIN32)
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
#endif
  }

  // Starts the stand-in as `start` starts the node; the ready report is read separately, so
  // that several can be started at once.
  Started spawn(std::vector<std::string> extra_args = {}) {
    std::vector<std::string> args{"--data", paths_.data_dir.string()};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    auto child = spawn_detached(standin_executable(), args, {{kDaemonEnvVar, "1"}},
                                paths_.data_dir.root_path(), paths_.log_file);
    EXPECT_TRUE(child) << (child ? "" : child.error().message);
    if (!child) return {};
    children_.push_back(child->pid);
    return Started{child->pid, std::move(child->ready)};
  }

  Report read_report(Started& started) {
    Report report;
    auto message = started.ready.read_all(kReadyTimeout);
    EXPECT_TRUE(message) << (message ? "" : message.error().message);
    if (!message) return report;
    EXPECT_TRUE(message->has_value()) << "no ready report within the timeout";
    if (!message->has_value()) return report;
    report.raw = **message;
    auto json = nlohmann::json::parse(report.raw, nullptr, false);
    EXPECT_TRUE(json.is_object()) << "ready report: '" << report.raw << "'";
    if (!json.is_object()) return report;
    report.ok = json.value("ok", false);
    report.pid = json.value("pid", ProcessId{0});
    report.console = json.value("console", true);
    report.error = json.value("error", std::string());
    report.running_pid = json.value("running_pid", ProcessId{0});
    return report;
  }

  Report start(std::vector<std::string> extra_args = {}) {
    Started started = spawn(std::move(extra_args));
    if (started.pid == 0) return {};
    return read_report(started);
  }

  std::string log_text() const {
    std::string text;
    for (const auto& line : all_lines_oldest_first(paths_.logs_dir)) {
      text += line;
      text += '\n';
    }
    return text;
  }

  static void ignore_progress(std::string_view) {}

  test::TempDir dir_;
  // A space in the path: arguments must reach the child intact through its command line.
  DataPaths paths_{dir_.path() / "node data"};
  std::vector<ProcessId> children_;
};

TEST_F(LifecycleTest, DetachesAndReportsReady) {
  Started started = spawn();
  ASSERT_NE(started.pid, 0);
  Report report = read_report(started);
  ASSERT_TRUE(report.ok) << report.raw;
  EXPECT_EQ(report.pid, started.pid);
  EXPECT_TRUE(process_exists(report.pid));
  EXPECT_FALSE(report.console) << "the detached node still has a terminal or console";

  auto running = running_node_pid(paths_);
  ASSERT_TRUE(running) << running.error().message;
  ASSERT_TRUE(running->has_value());
  EXPECT_EQ(**running, report.pid);
  auto recorded = read_pid_file(paths_.pid_file);
  ASSERT_TRUE(recorded) << recorded.error().message;
  ASSERT_TRUE(recorded->has_value());
  EXPECT_EQ(**recorded, report.pid);
  auto status = read_status_file(paths_.status_file);
  ASSERT_TRUE(status) << status.error().message;
  EXPECT_TRUE(status->running);
  EXPECT_EQ(status->pid, report.pid);
}

TEST_F(LifecycleTest, NodeOutlivesTheProcessThatStartedIt) {
  // As with `start`: an intermediate process starts the node, relays its report and exits. The
  // report arriving at all shows that the node did not inherit the starter's ready channel
  // (its end of file would then wait for the node's exit).
  Started starter = spawn({"--as-starter"});
  ASSERT_NE(starter.pid, 0);
  Report report = read_report(starter);
  ASSERT_TRUE(report.ok) << report.raw;
  EXPECT_NE(report.pid, starter.pid);
  children_.push_back(report.pid);
  EXPECT_TRUE(wait_until_gone(starter.pid, kExitTimeout));

  EXPECT_TRUE(process_exists(report.pid));
  auto running = running_node_pid(paths_);
  ASSERT_TRUE(running) << running.error().message;
  ASSERT_TRUE(running->has_value());
  EXPECT_EQ(**running, report.pid);

  auto stopped = stop_node(paths_, kStopTimeout, ignore_progress);
  ASSERT_TRUE(stopped) << stopped.error().message;
  EXPECT_EQ(stopped->outcome, StopResult::Outcome::kStopped);
  EXPECT_FALSE(stopped->removed_stale_files);
  EXPECT_NE(log_text().find("removed node.status and node.pid"), std::string::npos);
}

TEST_F(LifecycleTest, ChildExitingSilentlyEndsTheReadyWait) {
  // A bad option makes the stand-in exit before it reports anything: the parent learns of it
  // through the channel's end of file, not by waiting out the timeout.
  Started started = spawn({"--no-such-option", "1"});
  ASSERT_NE(started.pid, 0);
  auto message = started.ready.read_all(kReadyTimeout);
  ASSERT_TRUE(message) << message.error().message;
  ASSERT_TRUE(message->has_value()) << "the ready wait timed out";
  EXPECT_EQ(**message, "");
  EXPECT_TRUE(wait_until_gone(started.pid, kExitTimeout));
  // Its complaint went to stderr, which is the log file.
  EXPECT_NE(read_file(paths_.log_file).find("an-standin-node: unknown option"), std::string::npos);
  EXPECT_FALSE(fs::exists(paths_.pid_file));
}

TEST_F(LifecycleTest, SecondStartRefusedByLock) {
  Report first = start();
  ASSERT_TRUE(first.ok) << first.raw;

  Started second_started = spawn();
  ASSERT_NE(second_started.pid, 0);
  Report second = read_report(second_started);
  EXPECT_FALSE(second.ok) << second.raw;
  EXPECT_EQ(second.error, "already running (PID " + std::to_string(first.pid) + ")");
  EXPECT_EQ(second.running_pid, first.pid);
  EXPECT_TRUE(wait_until_gone(second_started.pid, kExitTimeout));

  EXPECT_TRUE(process_exists(first.pid));
  auto running = running_node_pid(paths_);
  ASSERT_TRUE(running) << running.error().message;
  ASSERT_TRUE(running->has_value());
  EXPECT_EQ(**running, first.pid);
  auto recorded = read_pid_file(paths_.pid_file);
  ASSERT_TRUE(recorded && recorded->has_value());
  EXPECT_EQ(**recorded, first.pid);
}

TEST_F(LifecycleTest, StartRefusedWhileTheFirstIsStillStarting) {
  // The first holds the lock without a PID file until told to go on; a start in that time must
  // still name it.
  const fs::path go_on = dir_.path() / "go-on";
  Started first_started = spawn({"--hold-start-until", go_on.string()});
  ASSERT_NE(first_started.pid, 0);
  const auto deadline = std::chrono::steady_clock::now() + kReadyTimeout;
  for (;;) {
    auto holder = FileLock::holder(paths_.lock_file);
    ASSERT_TRUE(holder) << holder.error().message;
    if (holder->has_value()) break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the first never took the lock";
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_FALSE(fs::exists(paths_.pid_file));
  auto running = running_node_pid(paths_);
  ASSERT_TRUE(running) << running.error().message;
  ASSERT_TRUE(running->has_value());
  EXPECT_EQ(**running, first_started.pid);

  Report second = start();
  EXPECT_FALSE(second.ok) << second.raw;
  EXPECT_EQ(second.error, "already running (PID " + std::to_string(first_started.pid) + ")");
  EXPECT_EQ(second.running_pid, first_started.pid);

  std::ofstream(go_on).put('\n');
  Report first = read_report(first_started);
  ASSERT_TRUE(first.ok) << first.raw;
  EXPECT_EQ(first.pid, first_started.pid);
}

TEST_F(LifecycleTest, ConcurrentStartsElectOneNode) {
  constexpr int kStarts = 4;
  std::vector<Started> starts;
  for (int i = 0; i < kStarts; ++i) {
    starts.push_back(spawn());
    ASSERT_NE(starts.back().pid, 0);
  }
  std::vector<Report> reports;
  for (auto& started : starts)
    reports.push_back(read_report(started));

  std::optional<ProcessId> winner;
  for (int i = 0; i < kStarts; ++i) {
    if (!reports[i].ok) continue;
    EXPECT_FALSE(winner.has_value())
        << "two nodes started: " << *winner << " and " << reports[i].pid;
    winner = reports[i].pid;
    EXPECT_EQ(reports[i].pid, starts[i].pid);
  }
  ASSERT_TRUE(winner.has_value()) << "no start succeeded";
  for (int i = 0; i < kStarts; ++i) {
    if (reports[i].ok) continue;
    EXPECT_EQ(reports[i].error, "already running (PID " + std::to_string(*winner) + ")")
        << reports[i].raw;
    EXPECT_EQ(reports[i].running_pid, *winner);
    EXPECT_TRUE(wait_until_gone(starts[i].pid, kExitTimeout));
  }
  EXPECT_TRUE(process_exists(*winner));
  auto running = running_node_pid(paths_);
  ASSERT_TRUE(running && running->has_value());
  EXPECT_EQ(**running, *winner);
}

TEST_F(LifecycleTest, StartsFromSeveralThreadsEachGetTheirOwnReport) {
  // Each thread spawns and then waits for its child's report. A ready channel created by one
  // thread must not leak into the child another thread spawns meanwhile: the winner would keep
  // a loser's channel open, and that loser's wait would only end with the timeout.
  constexpr int kStarts = 4;
  struct Outcome {
    ProcessId pid = 0;
    std::string spawn_error;
    std::optional<std::string> message;
  };
  std::vector<Outcome> outcomes(kStarts);
  std::vector<std::thread> threads;
  const std::vector<std::string> args{"--data", paths_.data_dir.string()};
  for (int i = 0; i < kStarts; ++i) {
    threads.emplace_back([&, i] {
      auto child = spawn_detached(standin_executable(), args, {{kDaemonEnvVar, "1"}},
                                  paths_.data_dir.root_path(), paths_.log_file);
      if (!child) {
        outcomes[i].spawn_error = child.error().message;
        return;
      }
      outcomes[i].pid = child->pid;
      auto message = child->ready.read_all(kReadyTimeout);
      if (message) outcomes[i].message = message->value_or("(timed out)");
    });
  }
  for (auto& thread : threads)
    thread.join();

  int winners = 0;
  for (const auto& outcome : outcomes) {
    ASSERT_EQ(outcome.spawn_error, "");
    children_.push_back(outcome.pid);
  }
  for (const auto& outcome : outcomes) {
    ASSERT_TRUE(outcome.message.has_value());
    auto json = nlohmann::json::parse(*outcome.message, nullptr, false);
    ASSERT_TRUE(json.is_object()) << "child " << outcome.pid << ": " << *outcome.message;
    if (json.value("ok", false)) ++winners;
  }
  EXPECT_EQ(winners, 1);
}

TEST_F(LifecycleTest, GracefulStopLetsTheNodeCleanUp) {
  Report report = start();
  ASSERT_TRUE(report.ok) << report.raw;
  ASSERT_TRUE(fs::exists(paths_.pid_file));
  ASSERT_TRUE(fs::exists(paths_.status_file));

  std::vector<std::string> progress;
  auto stopped =
      stop_node(paths_, kStopTimeout, [&](std::string_view line) { progress.emplace_back(line); });
  ASSERT_TRUE(stopped) << stopped.error().message;
  EXPECT_EQ(stopped->outcome, StopResult::Outcome::kStopped);
  EXPECT_EQ(stopped->pid, report.pid);
  EXPECT_FALSE(stopped->removed_stale_files);
  EXPECT_TRUE(wait_until_gone(report.pid, kExitTimeout));
  EXPECT_FALSE(fs::exists(paths_.pid_file));
  EXPECT_FALSE(fs::exists(paths_.status_file));

  std::string log = log_text();
  EXPECT_NE(log.find("[info] shutting down"), std::string::npos) << log;
  EXPECT_NE(log.find("removed node.status and node.pid; releasing the lock"), std::string::npos)
      << log;
  EXPECT_EQ(log.find("stop request ignored"), std::string::npos) << log;

  auto running = running_node_pid(paths_);
  ASSERT_TRUE(running) << running.error().message;
  EXPECT_FALSE(running->has_value());
}

TEST_F(LifecycleTest, StopEscalatesToKillAfterTimeout) {
  Report report = start({"--ignore-stop"});
  ASSERT_TRUE(report.ok) << report.raw;

  std::vector<std::string> progress;
  auto stopped = stop_node(paths_, std::chrono::seconds(2),
                           [&](std::string_view line) { progress.emplace_back(line); });
  ASSERT_TRUE(stopped) << stopped.error().message;
  EXPECT_EQ(stopped->outcome, StopResult::Outcome::kKilled);
  EXPECT_EQ(stopped->pid, report.pid);
  EXPECT_TRUE(stopped->removed_stale_files);
  EXPECT_TRUE(wait_until_gone(report.pid, kExitTimeout));
  EXPECT_FALSE(fs::exists(paths_.pid_file));
  EXPECT_FALSE(fs::exists(paths_.status_file));

  std::string log = log_text();
  EXPECT_NE(log.find("stop request ignored"), std::string::npos) << log;
  EXPECT_EQ(log.find("shutting down"), std::string::npos) << log;
}

// Before killing, stop asks again who holds the lock. On Windows the answer is a record the node
// writes into node.lock just after taking the lock; a stop racing a start could have read the
// previous holder's, whose PID may now be another program's. Here the record is made to name
// this test process while stop waits: on Windows stop must then kill nobody; on POSIX the OS
// names the lock holder and the record is not consulted, so the node is killed as usual.
TEST_F(LifecycleTest, StopKillsOnlyTheProcessThatStillHoldsTheLock) {
  Report report = start({"--ignore-stop"});
  ASSERT_TRUE(report.ok) << report.raw;
  const ProcessId unrelated = current_process_id();
  auto point_record_elsewhere = [&](ProcessId) {
    char record[32];
    std::snprintf(record, sizeof(record), "%020lld\n", static_cast<long long>(unrelated));
    std::ofstream(paths_.lock_file, std::ios::binary) << record;
    return false;  // not accepted: stop goes on with its own request, then the timeout
  };
  auto stopped =
      stop_node(paths_, std::chrono::seconds(2), ignore_progress, point_record_elsewhere);
#if defined(_WIN32)
  ASSERT_FALSE(stopped) << "stop must not kill PID " << unrelated;
  EXPECT_NE(stopped.error().message.find("nothing was killed"), std::string::npos)
      << stopped.error().message;
  EXPECT_TRUE(process_exists(report.pid));
  ASSERT_TRUE(kill_process(report.pid));
#else
  ASSERT_TRUE(stopped) << stopped.error().message;
  EXPECT_EQ(stopped->outcome, StopResult::Outcome::kKilled);
  EXPECT_EQ(stopped->pid, report.pid);
#endif
  EXPECT_TRUE(wait_until_gone(report.pid, kExitTimeout));
}

TEST_F(LifecycleTest, StalePidFileIsIgnoredAndReplaced) {
  // This test's own PID: a live process, but not the node, which must never be signalled.
  const ProcessId unrelated = current_process_id();
  ASSERT_TRUE(write_pid_file(paths_.pid_file, unrelated));

  auto running = running_node_pid(paths_);
  ASSERT_TRUE(running) << running.error().message;
  EXPECT_FALSE(running->has_value());

  auto stopped = stop_node(paths_, kStopTimeout, ignore_progress);
  ASSERT_TRUE(stopped) << stopped.error().message;
  EXPECT_EQ(stopped->outcome, StopResult::Outcome::kNotRunning);
  EXPECT_TRUE(stopped->removed_stale_files);
  EXPECT_FALSE(fs::exists(paths_.pid_file));
  EXPECT_TRUE(process_exists(unrelated));  // still here to check

  // Once more with the stale file left in place for the next start to replace.
  ASSERT_TRUE(write_pid_file(paths_.pid_file, unrelated));
  Report report = start();
  ASSERT_TRUE(report.ok) << report.raw;
  EXPECT_NE(report.pid, unrelated);
  auto recorded = read_pid_file(paths_.pid_file);
  ASSERT_TRUE(recorded && recorded->has_value());
  EXPECT_EQ(**recorded, report.pid);
  running = running_node_pid(paths_);
  ASSERT_TRUE(running && running->has_value());
  EXPECT_EQ(**running, report.pid);
}

TEST_F(LifecycleTest, CrashReleasesTheLockAndLeavesStaleFiles) {
  Report crashed = start({"--crash-after-ready"});
  ASSERT_TRUE(crashed.ok) << crashed.raw;
  ASSERT_TRUE(wait_until_gone(crashed.pid, kExitTimeout));

  // The OS released the lock with the process; the files it could not remove are stale.
  auto running = running_node_pid(paths_);
  ASSERT_TRUE(running) << running.error().message;
  EXPECT_FALSE(running->has_value());
  EXPECT_TRUE(fs::exists(paths_.pid_file));
  std::string log = log_text();
  EXPECT_NE(log.find("agentnetwork: fatal"), std::string::npos) << log;
  EXPECT_NE(log.find("stand-in crash on request"), std::string::npos) << log;
  EXPECT_EQ(log.find("shutting down"), std::string::npos) << log;

  auto stopped = stop_node(paths_, kStopTimeout, ignore_progress);
  ASSERT_TRUE(stopped) << stopped.error().message;
  EXPECT_EQ(stopped->outcome, StopResult::Outcome::kNotRunning);
  EXPECT_TRUE(stopped->removed_stale_files);
  EXPECT_FALSE(fs::exists(paths_.pid_file));
  EXPECT_FALSE(fs::exists(paths_.status_file));

  Report restarted = start();
  ASSERT_TRUE(restarted.ok) << restarted.raw;
  EXPECT_NE(restarted.pid, crashed.pid);
}

// Numbers found after `prefix` in lines containing it, in order of appearance.
std::vector<long long> sequence_numbers(const std::vector<std::string>& lines,
                                        const std::string& prefix) {
  std::vector<long long> numbers;
  for (const auto& line : lines) {
    auto at = line.find(prefix);
    if (at == std::string::npos) continue;
    numbers.push_back(std::stoll(line.substr(at + prefix.size())));
  }
  return numbers;
}

TEST_F(LifecycleTest, RotationWhileOpenLosesNoLine) {
  constexpr long long kLines = 20000;
  constexpr long long kRawEvery = 10;
  // About 2.3 MB of log in 64 KiB files: some 40 rotations, every file kept.
  Report report =
      start({"--lines", std::to_string(kLines), "--line-bytes", "80", "--raw-every",
             std::to_string(kRawEvery), "--log-max-bytes", "65536", "--log-max-files", "1000"});
  ASSERT_TRUE(report.ok) << report.raw;

  // A graceful stop waits for the writer to finish all lines.
  auto stopped = stop_node(paths_, std::chrono::seconds(120), ignore_progress);
  ASSERT_TRUE(stopped) << stopped.error().message;
  EXPECT_EQ(stopped->outcome, StopResult::Outcome::kStopped);

  EXPECT_FALSE(fs::exists(paths_.logs_dir / kNextLogFileName));
  EXPECT_GE(highest_rotated_index(paths_.logs_dir), 10);
  auto lines = all_lines_oldest_first(paths_.logs_dir);
  auto numbers = sequence_numbers(lines, "[info] line ");
  ASSERT_EQ(numbers.size(), static_cast<std::size_t>(kLines));
  for (long long i = 0; i < kLines; ++i) {
    ASSERT_EQ(numbers[static_cast<std::size_t>(i)], i + 1) << "at position " << i;
  }
  // Raw stdout and stderr go to the same file through other handles: all there, in order too.
  std::vector<std::string> raw_lines;
  for (const auto& line : lines) {
    if (line.rfind("raw ", 0) == 0) raw_lines.push_back(line);
  }
  auto raw_numbers = sequence_numbers(raw_lines, "raw ");
  ASSERT_EQ(raw_numbers.size(), static_cast<std::size_t>(kLines / kRawEvery));
  for (long long i = 0; i < kLines / kRawEvery; ++i) {
    ASSERT_EQ(raw_numbers[static_cast<std::size_t>(i)], i + 1) << "at position " << i;
  }
  std::string log = log_text();
  EXPECT_NE(log.find("all 20000 lines written"), std::string::npos);
  EXPECT_NE(log.find("shutting down"), std::string::npos);
}

TEST_F(LifecycleTest, FollowingTheLogAcrossRotationsSeesEveryLine) {
  // `logs -f` in another process keeps node.log open while the node renames it away, again and
  // again; it must see every line once, in order. The reader assumes a few rotations a second
  // at most (it settles for an uncertain view of the directory after that many changes in a
  // row), so the lines are paced: about 150 lines a file, 50 lines every 70 ms.
  constexpr long long kLines = 2000;
  const fs::path go_on = dir_.path() / "write-now";
  Report report = start({"--lines", std::to_string(kLines), "--line-bytes", "80", "--log-max-bytes",
                         "16384", "--log-max-files", "1000", "--pause-every", "50", "--pause-ms",
                         "70", "--write-when", go_on.string()});
  ASSERT_TRUE(report.ok) << report.raw;

  std::mutex mutex;
  std::vector<std::string> followed;
  bool writing_started = false;
  bool all_written = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  Expected<void> result;
  std::thread follower([&] {
    result = follow(
        paths_.logs_dir, 1000,
        [&](std::string_view line) {
          std::lock_guard<std::mutex> lock(mutex);
          followed.emplace_back(line);
          if (line.find("all 2000 lines written") != std::string_view::npos) all_written = true;
        },
        [&] {
          std::lock_guard<std::mutex> lock(mutex);
          if (!writing_started && !followed.empty()) {
            // The follower is reading node.log: from now on it sees every new line.
            std::ofstream(go_on).put('\n');
            writing_started = true;
          }
          return !all_written && std::chrono::steady_clock::now() < deadline;
        },
        std::chrono::milliseconds(10));
  });
  follower.join();
  ASSERT_TRUE(result) << result.error().message;
  ASSERT_TRUE(all_written) << "the follower did not see the last line within the time limit";

  auto numbers = sequence_numbers(split_lines([&] {
                                    std::string text;
                                    for (const auto& line : followed)
                                      text += line;
                                    return text;
                                  }()),
                                  "[info] line ");
  ASSERT_EQ(numbers.size(), static_cast<std::size_t>(kLines));
  for (long long i = 0; i < kLines; ++i) {
    ASSERT_EQ(numbers[static_cast<std::size_t>(i)], i + 1) << "at position " << i;
  }
  EXPECT_GE(highest_rotated_index(paths_.logs_dir), 5);
}

}  // namespace
}  // namespace an::daemon
