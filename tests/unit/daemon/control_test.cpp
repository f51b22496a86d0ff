#include "daemon/control.h"

#include <gtest/gtest.h>
#if !defined(_WIN32)
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

#include <cstdlib>
#include <fstream>
#include <mutex>
#include <string>

#include "daemon/status_file.h"
#include "support/temp_dir.h"

namespace an::daemon {
namespace {

#if !defined(_WIN32)
// A child process that holds the data directory's lock like a node does, until told to exit
// (closing the pipe) or signalled.
class FakeNode {
 public:
  FakeNode(const DataPaths& paths, bool ignore_sigterm) {
    int to_child[2];
    int from_child[2];
    EXPECT_EQ(::pipe(to_child), 0);
    EXPECT_EQ(::pipe(from_child), 0);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(to_child[1]);
      ::close(from_child[0]);
      if (ignore_sigterm) ::signal(SIGTERM, SIG_IGN);
      auto lock = FileLock::try_acquire(paths.lock_file);
      if (!lock || !lock->has_value()) ::_exit(3);
      if (!write_pid_file(paths.pid_file, ::getpid())) ::_exit(4);
      char ready = 'r';
      (void)!::write(from_child[1], &ready, 1);
      char byte;
      (void)!::read(to_child[0], &byte, 1);  // returns at EOF, when the test lets go
      ::_exit(0);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    release_fd_ = to_child[1];
    char ready = 0;
    EXPECT_EQ(::read(from_child[0], &ready, 1), 1);
    ::close(from_child[0]);
  }

  ~FakeNode() {
    if (release_fd_ >= 0) ::close(release_fd_);
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }

  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int release_fd_ = -1;
};
#endif  // !defined(_WIN32)

class ControlTest : public ::testing::Test {
 protected:
  test::TempDir temp_;
  DataPaths paths_{temp_.path()};
};

TEST_F(ControlTest, NoNodeMeansNotRunning) {
  auto pid = running_node_pid(paths_);
  ASSERT_TRUE(pid.has_value()) << pid.error().message;
  EXPECT_FALSE(pid->has_value());
}

#if !defined(_WIN32)
TEST_F(ControlTest, DetectsTheLockHolderAsRunning) {
  FakeNode node(paths_, false);
  auto pid = running_node_pid(paths_);
  ASSERT_TRUE(pid.has_value()) << pid.error().message;
  ASSERT_TRUE(pid->has_value());
  EXPECT_EQ(**pid, node.pid());
}

TEST_F(ControlTest, SecondLockAttemptFailsWhileANodeRuns) {
  FakeNode node(paths_, false);
  auto lock = FileLock::try_acquire(paths_.lock_file);
  ASSERT_TRUE(lock.has_value()) << lock.error().message;
  EXPECT_FALSE(lock->has_value());
}
#endif  // !defined(_WIN32)

#if defined(_WIN32)
// Windows locks belong to handles, not processes, so this process can play the node itself:
// the lock holder is then only known through the PID file.
TEST_F(ControlTest, LockHeldInThisProcessIsSeenAsARunningNode) {
  auto lock = FileLock::try_acquire(paths_.lock_file);
  ASSERT_TRUE(lock.has_value()) << lock.error().message;
  ASSERT_TRUE(lock->has_value());
  ASSERT_TRUE(write_pid_file(paths_.pid_file, current_process_id()));
  std::ofstream(paths_.status_file) << "{}";

  auto pid = running_node_pid(paths_);
  ASSERT_TRUE(pid.has_value()) << pid.error().message;
  ASSERT_TRUE(pid->has_value());
  EXPECT_EQ(**pid, current_process_id());
  auto second = FileLock::try_acquire(paths_.lock_file);
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_FALSE(second->has_value());
  EXPECT_FALSE(remove_stale_files(paths_));
  EXPECT_TRUE(std::filesystem::exists(paths_.pid_file));
  EXPECT_TRUE(std::filesystem::exists(paths_.status_file));

  lock->reset();
  pid = running_node_pid(paths_);
  ASSERT_TRUE(pid.has_value()) << pid.error().message;
  EXPECT_FALSE(pid->has_value());
  EXPECT_TRUE(remove_stale_files(paths_));
  EXPECT_FALSE(std::filesystem::exists(paths_.pid_file));
  EXPECT_FALSE(std::filesystem::exists(paths_.status_file));
}

TEST_F(ControlTest, LockHolderWithoutAPidFileIsAnError) {
  auto lock = FileLock::try_acquire(paths_.lock_file);
  ASSERT_TRUE(lock.has_value()) << lock.error().message;
  ASSERT_TRUE(lock->has_value());
  // The holder's record in the lock file names it even before a PID file exists.
  auto pid = running_node_pid(paths_);
  ASSERT_TRUE(pid.has_value()) << pid.error().message;
  ASSERT_TRUE(pid->has_value());
  EXPECT_EQ(**pid, current_process_id());
  // Without a readable record (a damaged lock file) and without a PID file nobody knows.
  std::ofstream(paths_.lock_file, std::ios::binary) << "garbage";
  pid = running_node_pid(paths_);
  ASSERT_TRUE(pid.has_value()) << pid.error().message;
  ASSERT_TRUE(pid->has_value());
  EXPECT_EQ(**pid, 0);  // held, holder unknown
  auto result = stop_node(paths_, std::chrono::seconds(1), [](std::string_view) {});
  ASSERT_FALSE(result.has_value());
  EXPECT_NE(result.error().message.find("PID is unknown"), std::string::npos)
      << result.error().message;
}

// The Windows stop path end to end, with this process as the node: the request goes through the
// named stop event to the listener, whose callback "shuts down" by releasing the lock.
TEST_F(ControlTest, StopAsksThroughTheStopEventAndSeesTheLockReleased) {
  auto lock = FileLock::try_acquire(paths_.lock_file);
  ASSERT_TRUE(lock.has_value()) << lock.error().message;
  ASSERT_TRUE(lock->has_value());
  ASSERT_TRUE(write_pid_file(paths_.pid_file, current_process_id()));

  std::mutex mutex;
  int requests = 0;
  auto listener = StopRequestListener::start([&] {
    std::lock_guard guard(mutex);
    ++requests;
    lock->reset();
  });
  ASSERT_TRUE(listener.has_value()) << listener.error().message;

  auto result = stop_node(paths_, std::chrono::seconds(30), [](std::string_view) {});
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->outcome, StopResult::Outcome::kStopped);
  EXPECT_EQ(result->pid, current_process_id());
  EXPECT_TRUE(result->removed_stale_files);
  EXPECT_FALSE(std::filesystem::exists(paths_.pid_file));
  listener->reset();
  std::lock_guard guard(mutex);
  EXPECT_EQ(requests, 1);
}

TEST_F(ControlTest, AProcessWithoutAStopListenerDoesNotAcceptStopRequests) {
  auto sent = request_graceful_stop(current_process_id());
  ASSERT_FALSE(sent.has_value());
  EXPECT_NE(sent.error().message.find("does not accept stop requests"), std::string::npos)
      << sent.error().message;
  EXPECT_FALSE(request_graceful_stop(0).has_value());
  EXPECT_FALSE(kill_process(-1).has_value());
}
#endif  // defined(_WIN32)

TEST_F(ControlTest, StalePidFileOfALiveUnrelatedProcessIsNotRunning) {
  // Our own PID is alive and unrelated to any node; nobody holds the lock.
  ASSERT_TRUE(write_pid_file(paths_.pid_file, current_process_id()));
  auto pid = running_node_pid(paths_);
  ASSERT_TRUE(pid.has_value());
  EXPECT_FALSE(pid->has_value());
  // Stopping must not signal that process (it would kill this test).
  auto result = stop_node(paths_, std::chrono::seconds(1), [](std::string_view) {});
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->outcome, StopResult::Outcome::kNotRunning);
  EXPECT_TRUE(result->removed_stale_files);
  EXPECT_FALSE(std::filesystem::exists(paths_.pid_file));
}

TEST_F(ControlTest, StopWhenNotRunning) {
  auto result = stop_node(paths_, std::chrono::seconds(1), [](std::string_view) {});
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->outcome, StopResult::Outcome::kNotRunning);
  EXPECT_FALSE(result->removed_stale_files);
}

#if !defined(_WIN32)
TEST_F(ControlTest, StopEndsANodeThatHonoursSigterm) {
  FakeNode node(paths_, false);
  std::vector<std::string> progress;
  auto result = stop_node(paths_, std::chrono::seconds(10),
                          [&](std::string_view line) { progress.emplace_back(line); });
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->outcome, StopResult::Outcome::kStopped);
  EXPECT_EQ(result->pid, node.pid());
  EXPECT_FALSE(process_exists(node.pid()));
  // The fake node died by the signal without cleaning up; stop removes what it left.
  EXPECT_FALSE(std::filesystem::exists(paths_.pid_file));
  ASSERT_FALSE(progress.empty());
  EXPECT_NE(progress.front().find(std::to_string(node.pid())), std::string::npos);
}

TEST_F(ControlTest, StopEscalatesWhenSigtermIsIgnored) {
  FakeNode node(paths_, true);
  auto result = stop_node(paths_, std::chrono::milliseconds(200), [](std::string_view) {});
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(result->outcome, StopResult::Outcome::kKilled);
  EXPECT_FALSE(process_exists(node.pid()));
  EXPECT_FALSE(std::filesystem::exists(paths_.pid_file));
  auto pid = running_node_pid(paths_);
  ASSERT_TRUE(pid.has_value());
  EXPECT_FALSE(pid->has_value());
}

TEST_F(ControlTest, CleanupRemovesStaleFilesOnlyWhenNoNodeHoldsTheLock) {
  ASSERT_TRUE(write_pid_file(paths_.pid_file, 999999));
  std::ofstream(paths_.status_file) << "{}";
  {
    FakeNode node(paths_, false);
    // The fake node rewrote the PID file; the lock is held, so nothing may be removed.
    EXPECT_FALSE(remove_stale_files(paths_));
    EXPECT_TRUE(std::filesystem::exists(paths_.pid_file));
    EXPECT_TRUE(std::filesystem::exists(paths_.status_file));
  }
  EXPECT_TRUE(remove_stale_files(paths_));
  EXPECT_FALSE(std::filesystem::exists(paths_.pid_file));
  EXPECT_FALSE(std::filesystem::exists(paths_.status_file));
  EXPECT_FALSE(remove_stale_files(paths_));
}
#endif  // !defined(_WIN32)

void set_environment(const char* name, const char* value) {
#if defined(_WIN32)
  ::_putenv_s(name, value);
#else
  ::setenv(name, value, 1);
#endif
}

void unset_environment(const char* name) {
#if defined(_WIN32)
  ::_putenv_s(name, "");  // an empty value removes the variable
#else
  ::unsetenv(name);
#endif
}

TEST(DaemonDetectionTest, FollowsTheEnvironmentMarker) {
  unset_environment(kDaemonEnvVar);
  EXPECT_FALSE(is_daemon_process());
  set_environment(kDaemonEnvVar, "1");
  EXPECT_TRUE(is_daemon_process());
  set_environment(kDaemonEnvVar, "0");
  EXPECT_FALSE(is_daemon_process());
  unset_environment(kDaemonEnvVar);
}

#if !defined(_WIN32)

TEST(ProcessTest, ExistenceOfSelfAndOfAReapedChild) {
  EXPECT_TRUE(process_exists(current_process_id()));
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  EXPECT_FALSE(process_exists(child));
  EXPECT_FALSE(process_exists(0));
  EXPECT_FALSE(process_exists(-5));
}

TEST(ProcessTest, AZombieCountsAsGone) {
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  // Not reaped yet: a zombie once it has exited.
  for (int i = 0; i < 500 && process_exists(child); ++i)
    ::usleep(2000);
  EXPECT_FALSE(process_exists(child));
  ::waitpid(child, nullptr, 0);
}
#endif  // !defined(_WIN32)

}  // namespace
}  // namespace an::daemon
