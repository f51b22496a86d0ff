#include "store/inbox.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <future>
#include <iterator>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#if !defined(_WIN32)
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

#include "support/temp_dir.h"

namespace an::store {
namespace {

namespace fs = std::filesystem;

StoredMessage message_of(std::string text, std::string from = "12D3KooWSender") {
  StoredMessage message;
  message.from = std::move(from);
  message.protocol = "/daan/message/1.0.0";
  message.received_at_ms = 1'765'000'000'000;
  message.payload = to_bytes(text);
  return message;
}

std::string text_of(const StoredMessage& message) {
  return std::string(message.payload.begin(), message.payload.end());
}

std::string read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_file(const fs::path& file, const std::string& bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// Runs SQL on a database with SQLite directly, as another program would.
void run_sql(const fs::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file.string().c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  const int result = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  EXPECT_EQ(result, SQLITE_OK) << (error != nullptr ? error : "");
  sqlite3_free(error);
  sqlite3_close(db);
}

std::unique_ptr<Inbox> open_inbox(const fs::path& file, InboxLimits limits = {}) {
  auto inbox = Inbox::open(file, limits);
  EXPECT_TRUE(inbox.has_value()) << inbox.error().message;
  return inbox ? std::move(*inbox) : nullptr;
}

// Opening a file the inbox must refuse: the right code, the file named, and not a byte changed.
void expect_refused_untouched(const fs::path& file, InboxErrc expected) {
  const std::string before = read_file(file);
  auto inbox = Inbox::open(file, {});
  ASSERT_FALSE(inbox.has_value());
  EXPECT_EQ(inbox.error().code, expected) << inbox.error().message;
  EXPECT_NE(inbox.error().message.find(file.string()), std::string::npos) << inbox.error().message;
  EXPECT_NE(inbox.error().message.find("untouched"), std::string::npos) << inbox.error().message;
  EXPECT_EQ(read_file(file), before);
  EXPECT_TRUE(fs::exists(file));
}

TEST(InboxTest, AppendListRemove) {
  test::TempDir dir;
  auto inbox = open_inbox(dir.path() / "inbox.db");
  ASSERT_TRUE(inbox);

  auto first = inbox->append(message_of("hello", "12D3KooWAlice"));
  ASSERT_TRUE(first.has_value()) << first.error().message;
  auto second = inbox->append(message_of("world", "12D3KooWBob"));
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_GT(second->id, first->id);
  EXPECT_EQ(text_of(*second), "world");

  auto listed = inbox->list(0, 10);
  ASSERT_TRUE(listed.has_value()) << listed.error().message;
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].id, first->id);
  EXPECT_EQ((*listed)[0].from, "12D3KooWAlice");
  EXPECT_EQ((*listed)[0].protocol, "/daan/message/1.0.0");
  EXPECT_EQ((*listed)[0].received_at_ms, 1'765'000'000'000);
  EXPECT_EQ(text_of((*listed)[0]), "hello");
  EXPECT_EQ((*listed)[1].from, "12D3KooWBob");

  auto after_first = inbox->list(first->id, 10);
  ASSERT_TRUE(after_first.has_value());
  ASSERT_EQ(after_first->size(), 1u);
  EXPECT_EQ((*after_first)[0].id, second->id);
  auto only_one = inbox->list(0, 1);
  ASSERT_TRUE(only_one.has_value());
  EXPECT_EQ(only_one->size(), 1u);

  EXPECT_EQ(inbox->counts().messages, 2u);
  EXPECT_EQ(inbox->counts().bytes, 10u);

  auto removed = inbox->remove({first->id, 999'999});
  ASSERT_TRUE(removed.has_value()) << removed.error().message;
  EXPECT_EQ(*removed, 1u);
  auto removed_again = inbox->remove({first->id});
  ASSERT_TRUE(removed_again.has_value());
  EXPECT_EQ(*removed_again, 0u);

  auto rest = inbox->list(0, 10);
  ASSERT_TRUE(rest.has_value());
  ASSERT_EQ(rest->size(), 1u);
  EXPECT_EQ((*rest)[0].id, second->id);
  EXPECT_EQ(inbox->counts().messages, 1u);
  EXPECT_EQ(inbox->counts().bytes, 5u);
}

TEST(InboxTest, IdsKeepIncreasingAfterTheNewestIsRemoved) {
  test::TempDir dir;
  const auto file = dir.path() / "inbox.db";
  std::int64_t last = 0;
  {
    auto inbox = open_inbox(file);
    ASSERT_TRUE(inbox);
    for (int i = 0; i < 5; ++i) {
      auto stored = inbox->append(message_of("m" + std::to_string(i)));
      ASSERT_TRUE(stored.has_value());
      EXPECT_GT(stored->id, last);
      last = stored->id;
    }
    ASSERT_TRUE(inbox->remove({last}).has_value());
    auto next = inbox->append(message_of("after removal"));
    ASSERT_TRUE(next.has_value());
    EXPECT_GT(next->id, last);
    last = next->id;
    ASSERT_TRUE(inbox->remove({last}).has_value());
  }
  auto reopened = open_inbox(file);
  ASSERT_TRUE(reopened);
  auto next = reopened->append(message_of("after reopen"));
  ASSERT_TRUE(next.has_value());
  EXPECT_GT(next->id, last);
}

TEST(InboxTest, MessagesSurviveReopen) {
  test::TempDir dir;
  const auto file = dir.path() / "inbox.db";
  {
    auto inbox = open_inbox(file);
    ASSERT_TRUE(inbox);
    for (int i = 0; i < 3; ++i)
      ASSERT_TRUE(inbox->append(message_of("kept" + std::to_string(i))));
  }
  auto inbox = open_inbox(file);
  ASSERT_TRUE(inbox);
  EXPECT_EQ(inbox->counts().messages, 3u);
  EXPECT_EQ(inbox->counts().bytes, 15u);
  EXPECT_EQ(inbox->counts().refused, 0u);
  auto listed = inbox->list(0, 100);
  ASSERT_TRUE(listed.has_value());
  ASSERT_EQ(listed->size(), 3u);
  EXPECT_EQ(text_of((*listed)[2]), "kept2");
}

// An append is durable when `done` runs: another connection (another process, after a kill -9)
// sees it without the inbox being closed.
TEST(InboxTest, AppendIsCommittedWhenDoneRuns) {
  test::TempDir dir;
  const auto file = dir.path() / "inbox.db";
  auto inbox = open_inbox(file);
  ASSERT_TRUE(inbox);
  ASSERT_TRUE(inbox->append(message_of("visible")));

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(file.string().c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* statement = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT count(*) FROM messages", -1, &statement, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(statement), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int64(statement, 0), 1);
  sqlite3_finalize(statement);
  sqlite3_close(db);
}

TEST(InboxTest, CountLimitRefusesAndKeepsWhatIsStored) {
  test::TempDir dir;
  const auto file = dir.path() / "inbox.db";
  auto inbox = open_inbox(file, InboxLimits{.max_messages = 3, .max_bytes = 1 << 20});
  ASSERT_TRUE(inbox);
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(inbox->append(message_of("m" + std::to_string(i))));

  auto refused = inbox->append(message_of("one too many"));
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, InboxErrc::kFull);
  EXPECT_NE(refused.error().message.find("full"), std::string::npos);
  EXPECT_FALSE(inbox->append(message_of("and another")).has_value());
  EXPECT_EQ(inbox->counts().refused, 2u);
  EXPECT_EQ(inbox->counts().messages, 3u);

  auto listed = inbox->list(0, 10);
  ASSERT_TRUE(listed.has_value());
  ASSERT_EQ(listed->size(), 3u);
  EXPECT_EQ(text_of((*listed)[0]), "m0");

  // Taking one makes room for one.
  ASSERT_TRUE(inbox->remove({(*listed)[0].id}).has_value());
  EXPECT_TRUE(inbox->append(message_of("room again")).has_value());
  EXPECT_FALSE(inbox->append(message_of("full again")).has_value());
  EXPECT_EQ(inbox->counts().refused, 3u);

  // The limit applies to what was stored before the inbox was opened.
  inbox.reset();
  auto reopened = open_inbox(file, InboxLimits{.max_messages = 3, .max_bytes = 1 << 20});
  ASSERT_TRUE(reopened);
  EXPECT_EQ(reopened->counts().refused, 0u);
  EXPECT_FALSE(reopened->append(message_of("still full")).has_value());
  EXPECT_EQ(reopened->counts().messages, 3u);
}

TEST(InboxTest, ByteLimitRefusesAndKeepsWhatIsStored) {
  test::TempDir dir;
  auto inbox =
      open_inbox(dir.path() / "inbox.db", InboxLimits{.max_messages = 100, .max_bytes = 10});
  ASSERT_TRUE(inbox);
  ASSERT_TRUE(inbox->append(message_of("123456")));
  ASSERT_TRUE(inbox->append(message_of("7890")));  // exactly at the limit
  auto over = inbox->append(message_of("x"));
  ASSERT_FALSE(over.has_value());
  EXPECT_EQ(over.error().code, InboxErrc::kFull);
  // A payload bigger than the whole limit, and an empty one, which takes no bytes.
  EXPECT_FALSE(inbox->append(message_of(std::string(64, 'y'))).has_value());
  EXPECT_TRUE(inbox->append(message_of("")).has_value());
  EXPECT_EQ(inbox->counts().refused, 2u);
  EXPECT_EQ(inbox->counts().bytes, 10u);
  EXPECT_EQ(inbox->counts().messages, 3u);
  auto listed = inbox->list(0, 10);
  ASSERT_TRUE(listed.has_value());
  EXPECT_EQ(listed->size(), 3u);
}

// Several producers at once: every append is stored exactly once, ids are distinct, and the
// writer commits them in groups (fewer transactions than messages is not observable here, but
// every `done` runs and the count is exact).
TEST(InboxTest, ConcurrentAsyncAppendsAreAllStored) {
  test::TempDir dir;
  auto inbox = open_inbox(dir.path() / "inbox.db");
  ASSERT_TRUE(inbox);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 50;

  std::mutex mutex;
  std::condition_variable all_done;
  std::set<std::int64_t> ids;
  int finished = 0;
  int failures = 0;
  std::vector<std::thread> producers;
  for (int t = 0; t < kThreads; ++t) {
    producers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        inbox->append_async(message_of(std::to_string(t) + ":" + std::to_string(i)),
                            [&](Expected<StoredMessage> stored) {
                              std::lock_guard lock(mutex);
                              if (stored) {
                                ids.insert(stored->id);
                              } else {
                                ++failures;
                              }
                              ++finished;
                              all_done.notify_all();
                            });
      }
    });
  }
  for (auto& producer : producers)
    producer.join();
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(all_done.wait_for(lock, std::chrono::seconds(60),
                                  [&] { return finished == kThreads * kPerThread; }));
  }
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kThreads * kPerThread));
  EXPECT_EQ(inbox->counts().messages, static_cast<std::uint64_t>(kThreads * kPerThread));

  auto listed = inbox->list(0, 1000);
  ASSERT_TRUE(listed.has_value());
  ASSERT_EQ(listed->size(), static_cast<std::size_t>(kThreads * kPerThread));
  std::set<std::string> texts;
  for (const auto& message : *listed)
    texts.insert(text_of(message));
  EXPECT_EQ(texts.size(), listed->size());
}

// Readers and removers on other threads while the writer commits.
#if !defined(_WIN32)
// kill -9 right after `done`: what was reported stored is there when the inbox is opened again
// (and the log the killed process left behind does not make the file look foreign or damaged).
TEST(InboxTest, StoredMessagesSurviveKill) {
  test::TempDir dir;
  const auto file = dir.path() / "inbox.db";
  constexpr int kMessages = 20;
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto inbox = Inbox::open(file, {});
    if (!inbox) ::_exit(3);
    for (int i = 0; i < kMessages; ++i) {
      if (!(*inbox)->append(message_of("before kill " + std::to_string(i)))) ::_exit(4);
    }
    ::kill(::getpid(), SIGKILL);
    ::_exit(5);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  EXPECT_TRUE(fs::exists(dir.path() / "inbox.db-wal"));

  auto inbox = open_inbox(file);
  ASSERT_TRUE(inbox);
  EXPECT_EQ(inbox->counts().messages, static_cast<std::uint64_t>(kMessages));
  auto listed = inbox->list(0, 100);
  ASSERT_TRUE(listed.has_value());
  ASSERT_EQ(listed->size(), static_cast<std::size_t>(kMessages));
  EXPECT_EQ(text_of(listed->back()), "before kill " + std::to_string(kMessages - 1));
}
#endif

TEST(InboxTest, ListAndRemoveAlongsideTheWriter) {
  test::TempDir dir;
  auto inbox = open_inbox(dir.path() / "inbox.db");
  ASSERT_TRUE(inbox);
  constexpr int kMessages = 300;
  std::atomic<bool> writing{true};
  std::atomic<std::size_t> removed{0};
  std::thread reader([&] {
    std::int64_t after = 0;
    while (writing || removed < kMessages) {
      auto batch = inbox->list(after, 16);
      ASSERT_TRUE(batch.has_value()) << batch.error().message;
      std::vector<std::int64_t> ids;
      for (const auto& message : *batch) {
        ids.push_back(message.id);
        after = message.id;
      }
      auto count = inbox->remove(ids);
      ASSERT_TRUE(count.has_value()) << count.error().message;
      removed += *count;
      if (batch->empty()) std::this_thread::yield();
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < 3; ++t) {
    writers.emplace_back([&] {
      for (int i = 0; i < kMessages / 3; ++i)
        ASSERT_TRUE(inbox->append(message_of("x")));
    });
  }
  for (auto& writer : writers)
    writer.join();
  writing = false;
  reader.join();
  EXPECT_EQ(removed.load(), static_cast<std::size_t>(kMessages));
  EXPECT_EQ(inbox->counts().messages, 0u);
  EXPECT_EQ(inbox->counts().bytes, 0u);
}

// Closing finishes what is queued: every `done` runs with a stored message.
TEST(InboxTest, ClosingFinishesQueuedAppends) {
  test::TempDir dir;
  const auto file = dir.path() / "inbox.db";
  std::atomic<int> stored{0};
  {
    auto inbox = open_inbox(file);
    ASSERT_TRUE(inbox);
    for (int i = 0; i < 100; ++i) {
      inbox->append_async(message_of("queued"), [&](Expected<StoredMessage> result) {
        if (result) ++stored;
      });
    }
  }
  EXPECT_EQ(stored.load(), 100);
  auto inbox = open_inbox(file);
  ASSERT_TRUE(inbox);
  EXPECT_EQ(inbox->counts().messages, 100u);
}

TEST(InboxTest, DoneMayUseTheInbox) {
  test::TempDir dir;
  auto inbox = open_inbox(dir.path() / "inbox.db");
  ASSERT_TRUE(inbox);
  std::promise<std::size_t> listed;
  inbox->append_async(message_of("a"), [&](Expected<StoredMessage> result) {
    ASSERT_TRUE(result.has_value());
    // The blocking form would wait for this very thread: refused, not a deadlock.
    EXPECT_FALSE(inbox->append(message_of("b")).has_value());
    auto all = inbox->list(0, 10);
    listed.set_value(all ? all->size() : 0);
  });
  EXPECT_EQ(listed.get_future().get(), 1u);
}

TEST(InboxTest, BinaryAndEmptyPayloadsRoundTrip) {
  test::TempDir dir;
  const auto file = dir.path() / "inbox.db";
  Bytes binary;
  for (int i = 0; i < 256; ++i)
    binary.push_back(static_cast<std::uint8_t>(i));
  binary.push_back(0);
  binary.push_back(0);
  Bytes large(1 << 20);
  for (std::size_t i = 0; i < large.size(); ++i)
    large[i] = static_cast<std::uint8_t>(i * 7 + 3);
  {
    auto inbox = open_inbox(file);
    ASSERT_TRUE(inbox);
    auto message = message_of("");
    message.payload = binary;
    ASSERT_TRUE(inbox->append(message));
    auto empty = inbox->append(message_of(""));
    ASSERT_TRUE(empty.has_value()) << empty.error().message;
    EXPECT_TRUE(empty->payload.empty());
    message.payload = large;
    ASSERT_TRUE(inbox->append(message));
  }
  auto inbox = open_inbox(file);
  ASSERT_TRUE(inbox);
  auto listed = inbox->list(0, 10);
  ASSERT_TRUE(listed.has_value());
  ASSERT_EQ(listed->size(), 3u);
  EXPECT_EQ((*listed)[0].payload, binary);
  EXPECT_TRUE((*listed)[1].payload.empty());
  EXPECT_EQ((*listed)[2].payload, large);
  EXPECT_EQ(inbox->counts().bytes, binary.size() + large.size());
}

TEST(InboxTest, UsesWriteAheadLogWithFullSync) {
  test::TempDir dir;
  const auto file = dir.path() / "inbox.db";
  auto inbox = open_inbox(file);
  ASSERT_TRUE(inbox);
  ASSERT_TRUE(inbox->append(message_of("x")));
  EXPECT_TRUE(fs::exists(dir.path() / "inbox.db-wal"));
  const std::string header = read_file(file).substr(0, 20);
  ASSERT_EQ(header.size(), 20u);
  EXPECT_EQ(header[18], 2);  // file format write version 2: WAL
  EXPECT_EQ(header[19], 2);
}

TEST(InboxTest, GarbageFileIsRefusedUntouched) {
  test::TempDir dir;
  const auto file = dir.path() / "inbox.db";
  std::string garbage;
  for (int i = 0; i < 5000; ++i)
    garbage += static_cast<char>((i * 31 + 7) & 0xff);
  write_file(file, garbage);
  expect_refused_untouched(file, InboxErrc::kCorrupt);
  write_file(file, "not a database\n");
  expect_refused_untouched(file, InboxErrc::kCorrupt);
}

TEST(InboxTest, DamagedInboxIsRefusedUntouched) {
  test::TempDir dir;
  const auto file = dir.path() / "inbox.db";
  {
    auto inbox = open_inbox(file);
    ASSERT_TRUE(inbox);
    for (int i = 0; i < 50; ++i)
      ASSERT_TRUE(inbox->append(message_of(std::string(3000, 'z'))));
  }
  // A valid header, then pages overwritten with noise.
  std::string bytes = read_file(file);
  ASSERT_GT(bytes.size(), 16384u);
  for (std::size_t i = 4096; i < bytes.size(); ++i)
    bytes[i] = static_cast<char>(i * 13);
  write_file(file, bytes);
  expect_refused_untouched(file, InboxErrc::kCorrupt);
}

TEST(InboxTest, ForeignSqliteDatabaseIsRefusedUntouched) {
  test::TempDir dir;
  const auto file = dir.path() / "inbox.db";
  run_sql(file,
          "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT);"
          "INSERT INTO notes (text) VALUES ('mine');");
  expect_refused_untouched(file, InboxErrc::kNotAnInbox);

  // Also one in WAL mode with a table called "messages", and one with another application id.
  const auto wal = dir.path() / "wal.db";
  run_sql(wal, "PRAGMA journal_mode=WAL; CREATE TABLE messages (x);");
  expect_refused_untouched(wal, InboxErrc::kNotAnInbox);
  const auto other = dir.path() / "other.db";
  run_sql(other, "PRAGMA application_id=1234; CREATE TABLE t (x);");
  expect_refused_untouched(other, InboxErrc::kNotAnInbox);
}

TEST(InboxTest, NewerSchemaIsRefusedUntouched) {
  test::TempDir dir;
  const auto file = dir.path() / "inbox.db";
  {
    auto inbox = open_inbox(file);
    ASSERT_TRUE(inbox);
    ASSERT_TRUE(inbox->append(message_of("from the future")));
  }
  run_sql(file, "PRAGMA user_version=2");
  auto inbox = Inbox::open(file, {});
  ASSERT_FALSE(inbox.has_value());
  EXPECT_NE(inbox.error().message.find("newer version"), std::string::npos);
  expect_refused_untouched(file, InboxErrc::kUnsupportedSchema);
}

TEST(InboxTest, EmptyFileAndEmptyDatabaseBecomeAnInbox) {
  test::TempDir dir;
  // What SQLite leaves when a process dies between creating the file and the first commit.
  const auto empty_file = dir.path() / "empty.db";
  write_file(empty_file, "");
  auto first = open_inbox(empty_file);
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->append(message_of("x")).has_value());

  const auto empty_database = dir.path() / "blank.db";
  run_sql(empty_database, "PRAGMA journal_mode=WAL");
  auto second = open_inbox(empty_database);
  ASSERT_TRUE(second);
  EXPECT_TRUE(second->append(message_of("x")).has_value());
}

TEST(InboxTest, MissingDirectoryIsADatabaseError) {
  test::TempDir dir;
  const auto file = dir.path() / "no-such-dir" / "inbox.db";
  auto inbox = Inbox::open(file, {});
  ASSERT_FALSE(inbox.has_value());
  EXPECT_EQ(inbox.error().code, InboxErrc::kDatabase);
  EXPECT_NE(inbox.error().message.find(file.string()), std::string::npos) << inbox.error().message;
}

}  // namespace
}  // namespace an::store
