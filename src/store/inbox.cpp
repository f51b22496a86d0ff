#include "store/inbox.h"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <future>
#include <iterator>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

namespace an::store {
namespace {

// Written into the database header (PRAGMA application_id) so that an inbox is told apart from
// any other SQLite file: "ANIB".
constexpr std::int32_t kApplicationId = 0x414E4942;
// PRAGMA user_version of the layout this code writes and reads. A file with a higher one was
// written by a newer version and is refused rather than guessed at.
constexpr int kSchemaVersion = 1;

// Every SQLite 3 file starts with these 16 bytes (the string and its NUL); the header is 100
// bytes long.
constexpr std::string_view kSqliteMagic{"SQLite format 3\0", 16};
constexpr std::size_t kSqliteHeaderSize = 100;

// AUTOINCREMENT: ids are never reused, even after the newest message is removed, so that an
// agent reading "after id N" never skips a message.
constexpr const char* kCreateSchema =
    "CREATE TABLE messages ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " sender TEXT NOT NULL,"
    " protocol TEXT NOT NULL,"
    " received_at_ms INTEGER NOT NULL,"
    " payload BLOB NOT NULL)";

// Messages committed in one transaction at most: enough to make the sync's cost per message
// small, few enough that list and remove, which wait for a commit, are not held up long.
constexpr std::size_t kMaxMessagesPerCommit = 1000;

// SQLite keeps recent commits in FILE-wal beside the file: moved without it, a file loses them,
// and a new inbox would replay the old log into itself.
constexpr const char* kWithItsLog = " (with its -wal and -shm files, if any)";
constexpr const char* kLeaveUntouched =
    "; the file was left untouched: move it aside (with its -wal and -shm files, if any) or "
    "restore it from a backup to start with an empty inbox";

class InboxErrorCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "inbox"; }
  std::string message(int value) const override {
    switch (static_cast<InboxErrc>(value)) {
      case InboxErrc::kFull:
        return "inbox is full";
      case InboxErrc::kCorrupt:
        return "inbox file is corrupt";
      case InboxErrc::kNotAnInbox:
        return "file is not an inbox";
      case InboxErrc::kUnsupportedSchema:
        return "inbox was written by a newer version";
      case InboxErrc::kDatabase:
        return "inbox database error";
      case InboxErrc::kClosed:
        return "inbox is closing";
    }
    return "unknown inbox error";
  }
};

tl::unexpected<Error> fail_inbox(InboxErrc code, std::string message) {
  return fail(std::move(message), make_error_code(code));
}

std::string quoted(const std::filesystem::path& file) {
  return "'" + file.string() + "'";
}

// The error of a failed SQLite call on `db`, classed by SQLite's primary result code.
Error sqlite_error(sqlite3* db, int result, const std::string& what) {
  const int primary = result & 0xff;
  const InboxErrc code = (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB)
                             ? InboxErrc::kCorrupt
                             : InboxErrc::kDatabase;
  const char* detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(result);
  return Error{what + ": " + detail, make_error_code(code)};
}

tl::unexpected<Error> sqlite_failure(sqlite3* db, int result, const std::string& what) {
  return tl::unexpected(sqlite_error(db, result, what));
}

struct ConnectionCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using Connection = std::unique_ptr<sqlite3, ConnectionCloser>;

struct StatementFinalizer {
  void operator()(sqlite3_stmt* statement) const { sqlite3_finalize(statement); }
};
using Statement = std::unique_ptr<sqlite3_stmt, StatementFinalizer>;

Expected<Connection> open_connection(const std::filesystem::path& file, int flags) {
  sqlite3* raw = nullptr;
  const int result = sqlite3_open_v2(file.string().c_str(), &raw, flags, nullptr);
  Connection db(raw);
  if (result != SQLITE_OK) return sqlite_failure(db.get(), result, "cannot open " + quoted(file));
  sqlite3_extended_result_codes(db.get(), 1);
  sqlite3_busy_timeout(db.get(), Inbox::kBusyTimeoutMs);
  return db;
}

Expected<Statement> prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* raw = nullptr;
  const int result = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  if (result != SQLITE_OK) return sqlite_failure(db, result, std::string("cannot prepare ") + sql);
  return Statement(raw);
}

Expected<void> execute(sqlite3* db, const char* sql) {
  char* message = nullptr;
  const int result = sqlite3_exec(db, sql, nullptr, nullptr, &message);
  if (result != SQLITE_OK) {
    std::string text = message != nullptr ? message : sqlite3_errstr(result);
    sqlite3_free(message);
    const InboxErrc code = ((result & 0xff) == SQLITE_CORRUPT || (result & 0xff) == SQLITE_NOTADB)
                               ? InboxErrc::kCorrupt
                               : InboxErrc::kDatabase;
    return fail_inbox(code, std::string(sql) + ": " + text);
  }
  return {};
}

// The first column of the first row of `sql`, as an integer.
Expected<std::int64_t> query_integer(sqlite3* db, const char* sql) {
  auto statement = prepare(db, sql);
  if (!statement) return tl::unexpected(statement.error());
  const int result = sqlite3_step(statement->get());
  if (result != SQLITE_ROW) return sqlite_failure(db, result, sql);
  return sqlite3_column_int64(statement->get(), 0);
}

Expected<std::string> query_text(sqlite3* db, const char* sql) {
  auto statement = prepare(db, sql);
  if (!statement) return tl::unexpected(statement.error());
  const int result = sqlite3_step(statement->get());
  if (result != SQLITE_ROW) return sqlite_failure(db, result, sql);
  const auto* text = sqlite3_column_text(statement->get(), 0);
  return std::string(text != nullptr ? reinterpret_cast<const char*>(text) : "");
}

// Binds a blob that is never SQL NULL: SQLite binds a null pointer as NULL, which the NOT NULL
// column refuses, so an empty payload is bound from a non-null pointer.
int bind_payload(sqlite3_stmt* statement, int index, const Bytes& payload) {
  static const std::uint8_t kNothing = 0;
  const void* data = payload.empty() ? &kNothing : payload.data();
  return sqlite3_bind_blob64(statement, index, data, payload.size(), SQLITE_STATIC);
}

enum class ExistingFile { kAbsent, kEmpty, kInbox };

// Looks at an existing file without writing to it: its first bytes, then SQLite read-only. An
// inbox needs no more than reading; an empty file (SQLite had created it, nothing committed yet)
// or an SQLite database with nothing in it is taken as new.
Expected<ExistingFile> inspect(const std::filesystem::path& file) {
  std::error_code ec;
  const auto status = std::filesystem::status(file, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return fail_inbox(InboxErrc::kDatabase, "cannot read inbox " + quoted(file) + ": " +
                                                ec.message() + "; check its permissions");
  }
  if (!std::filesystem::exists(status)) return ExistingFile::kAbsent;
  if (!std::filesystem::is_regular_file(status)) {
    return fail_inbox(InboxErrc::kDatabase,
                      "inbox " + quoted(file) + " is not a regular file; remove or rename it");
  }

  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return fail_inbox(InboxErrc::kDatabase,
                      "cannot read inbox " + quoted(file) + "; check its permissions");
  }
  std::array<char, kSqliteHeaderSize> header{};
  in.read(header.data(), header.size());
  const auto read = static_cast<std::size_t>(in.gcount());
  if (read == 0) return ExistingFile::kEmpty;
  if (read < kSqliteHeaderSize || std::string_view(header.data(), 16) != kSqliteMagic) {
    return fail_inbox(InboxErrc::kCorrupt,
                      "inbox " + quoted(file) + " is not an SQLite database" + kLeaveUntouched);
  }
  in.close();

  auto db = open_connection(file, SQLITE_OPEN_READONLY);
  if (!db) return tl::unexpected(db.error());
  const auto damaged = [&](const Error& error) {
    return fail_inbox(InboxErrc::kCorrupt, "inbox " + quoted(file) + " is damaged (" +
                                               error.message + ")" + kLeaveUntouched);
  };
  const auto check = [&](const Error& error) {
    if (error.code == InboxErrc::kCorrupt) return damaged(error);
    return fail_inbox(InboxErrc::kDatabase, "cannot read inbox " + quoted(file) + ": " +
                                                error.message + "; check its permissions");
  };

  auto application_id = query_integer(db->get(), "PRAGMA application_id");
  if (!application_id) return check(application_id.error());
  auto version = query_integer(db->get(), "PRAGMA user_version");
  if (!version) return check(version.error());
  auto objects = query_integer(db->get(), "SELECT count(*) FROM sqlite_schema");
  if (!objects) return check(objects.error());

  if (*application_id != kApplicationId) {
    if (*application_id == 0 && *version == 0 && *objects == 0) return ExistingFile::kEmpty;
    return fail_inbox(InboxErrc::kNotAnInbox,
                      "'" + file.string() +
                          "' is an SQLite database but not an agentnetwork inbox; it was left "
                          "untouched: move it elsewhere" +
                          kWithItsLog + ", or choose another data directory");
  }
  if (*version > kSchemaVersion) {
    return fail_inbox(InboxErrc::kUnsupportedSchema,
                      "inbox " + quoted(file) +
                          " was written by a newer version of agentnetwork "
                          "(inbox schema " +
                          std::to_string(*version) + ", this version reads " +
                          std::to_string(kSchemaVersion) +
                          "); it was left untouched: run the newer version, or move the file "
                          "aside" +
                          kWithItsLog + " to start with an empty inbox");
  }
  auto verdict = query_text(db->get(), "PRAGMA quick_check");
  if (!verdict) return check(verdict.error());
  if (*verdict != "ok") return damaged(Error{"integrity check: " + *verdict, {}});
  auto shape = prepare(
      db->get(), "SELECT id, sender, protocol, received_at_ms, payload FROM messages LIMIT 0");
  if (!shape || *version != kSchemaVersion) {
    return damaged(Error{"the inbox table is missing or has the wrong columns", {}});
  }
  return ExistingFile::kInbox;
}

struct PendingAppend {
  StoredMessage message;
  std::function<void(Expected<StoredMessage>)> done;
};

}  // namespace

const std::error_category& inbox_error_category() {
  static const InboxErrorCategory category;
  return category;
}

std::error_code make_error_code(InboxErrc code) {
  return {static_cast<int>(code), inbox_error_category()};
}

// One read-write connection, shared by the writer thread and the callers of list/remove under
// `db_mutex`: SQLite allows one writer at a time anyway, and a reader waits at most one group
// commit. The queue has its own mutex, so append_async never waits for the disk.
struct Inbox::State {
  std::filesystem::path file;
  InboxLimits limits;

  mutable std::mutex db_mutex;
  Connection db;
  Statement insert;
  Statement select_after;
  Statement payload_size;
  Statement delete_one;
  // Prepared once: parsing them for every commit costs as much as the rest of a small append.
  Statement begin_transaction;
  Statement commit_transaction;
  // Stored messages and their payload bytes; written under db_mutex, read by counts() at any
  // time.
  std::atomic<std::uint64_t> messages{0};
  std::atomic<std::uint64_t> bytes{0};
  std::atomic<std::uint64_t> refused{0};

  std::mutex queue_mutex;
  std::condition_variable queue_changed;
  std::deque<PendingAppend> queue;
  bool stopping = false;

  std::thread writer;

  void run_writer();
  void commit_group(std::deque<PendingAppend>& group);
  Expected<void> begin() { return step_once(begin_transaction.get(), "BEGIN IMMEDIATE"); }
  Expected<void> commit() { return step_once(commit_transaction.get(), "COMMIT"); }
  // Ends a transaction that failed; without one it does nothing.
  void rollback() {
    if (sqlite3_get_autocommit(db.get()) == 0) (void)execute(db.get(), "ROLLBACK");
  }
  Expected<void> step_once(sqlite3_stmt* statement, const char* what) {
    const int result = sqlite3_step(statement);
    sqlite3_reset(statement);
    if (result != SQLITE_DONE) return sqlite_failure(db.get(), result, what);
    return {};
  }
};

Expected<std::unique_ptr<Inbox>> Inbox::open(const std::filesystem::path& file,
                                             InboxLimits limits) {
  auto existing = inspect(file);
  if (!existing) return tl::unexpected(existing.error());

  auto state = std::make_unique<State>();
  state->file = file;
  state->limits = limits;
  const int flags =
      SQLITE_OPEN_READWRITE | (*existing == ExistingFile::kAbsent ? SQLITE_OPEN_CREATE : 0);
  auto db = open_connection(file, flags);
  if (!db) return tl::unexpected(db.error());
  state->db = std::move(*db);
  sqlite3* raw = state->db.get();
  const auto failed = [&](const Error& error) {
    return tl::unexpected(Error{"inbox " + quoted(file) + ": " + error.message, error.code});
  };

  // Journal mode cannot change inside a transaction; WAL is kept in the file once set.
  auto mode = query_text(raw, "PRAGMA journal_mode=WAL");
  if (!mode) return failed(mode.error());
  if (*mode != "wal") {
    return fail_inbox(
        InboxErrc::kDatabase,
        "inbox " + quoted(file) + ": cannot use write-ahead logging (journal mode " + *mode + ")");
  }
  if (auto result = execute(raw, "PRAGMA synchronous=FULL"); !result) {
    return failed(result.error());
  }

  if (*existing != ExistingFile::kInbox) {
    const std::string create = std::string("BEGIN IMMEDIATE; ") + kCreateSchema +
                               "; PRAGMA application_id=" + std::to_string(kApplicationId) +
                               "; PRAGMA user_version=" + std::to_string(kSchemaVersion) +
                               "; COMMIT";
    if (auto result = execute(raw, create.c_str()); !result) {
      state->rollback();
      return failed(result.error());
    }
  }

  auto totals = prepare(raw, "SELECT count(*), coalesce(sum(length(payload)), 0) FROM messages");
  if (!totals) return failed(totals.error());
  if (const int result = sqlite3_step(totals->get()); result != SQLITE_ROW) {
    return failed(sqlite_error(raw, result, "cannot count the messages"));
  }
  state->messages = static_cast<std::uint64_t>(sqlite3_column_int64(totals->get(), 0));
  state->bytes = static_cast<std::uint64_t>(sqlite3_column_int64(totals->get(), 1));

  const std::pair<Statement*, const char*> statements[] = {
      {&state->insert,
       "INSERT INTO messages (sender, protocol, received_at_ms, payload) VALUES (?, ?, ?, ?)"},
      {&state->select_after,
       "SELECT id, sender, protocol, received_at_ms, payload FROM messages WHERE id > ? "
       "ORDER BY id LIMIT ?"},
      {&state->payload_size, "SELECT length(payload) FROM messages WHERE id = ?"},
      {&state->delete_one, "DELETE FROM messages WHERE id = ?"},
      {&state->begin_transaction, "BEGIN IMMEDIATE"},
      {&state->commit_transaction, "COMMIT"},
  };
  for (const auto& [target, sql] : statements) {
    auto statement = prepare(raw, sql);
    if (!statement) return failed(statement.error());
    *target = std::move(*statement);
  }

  State* writer_state = state.get();
  state->writer = std::thread([writer_state] { writer_state->run_writer(); });
  return std::unique_ptr<Inbox>(new Inbox(std::move(state)));
}

Inbox::Inbox(std::unique_ptr<State> state) : state_(std::move(state)) {}

Inbox::~Inbox() {
  {
    std::lock_guard lock(state_->queue_mutex);
    state_->stopping = true;
  }
  state_->queue_changed.notify_all();
  state_->writer.join();
  // The statements go before the connection (members are destroyed in reverse order); closing
  // the last connection checkpoints the log into the file.
}

const std::filesystem::path& Inbox::file() const {
  return state_->file;
}

void Inbox::append_async(StoredMessage message, std::function<void(Expected<StoredMessage>)> done) {
  std::unique_lock lock(state_->queue_mutex);
  if (state_->stopping && std::this_thread::get_id() != state_->writer.get_id()) {
    lock.unlock();
    done(fail_inbox(InboxErrc::kClosed, "inbox " + quoted(state_->file) + " is closing"));
    return;
  }
  state_->queue.push_back(PendingAppend{std::move(message), std::move(done)});
  lock.unlock();
  state_->queue_changed.notify_one();
}

Expected<StoredMessage> Inbox::append(StoredMessage message) {
  if (std::this_thread::get_id() == state_->writer.get_id()) {
    return fail_inbox(InboxErrc::kDatabase,
                      "Inbox::append called from the inbox's own writer thread");
  }
  std::promise<Expected<StoredMessage>> result;
  auto future = result.get_future();
  append_async(std::move(message),
               [&result](Expected<StoredMessage> stored) { result.set_value(std::move(stored)); });
  return future.get();
}

void Inbox::State::run_writer() {
  std::deque<PendingAppend> group;
  for (;;) {
    {
      std::unique_lock lock(queue_mutex);
      queue_changed.wait(lock, [&] { return stopping || !queue.empty(); });
      if (queue.empty()) return;  // stopping, and everything queued is done
      const std::size_t taken = std::min(queue.size(), kMaxMessagesPerCommit);
      std::move(queue.begin(), queue.begin() + static_cast<std::ptrdiff_t>(taken),
                std::back_inserter(group));
      queue.erase(queue.begin(), queue.begin() + static_cast<std::ptrdiff_t>(taken));
    }
    commit_group(group);
    group.clear();
  }
}

// One transaction for everything in the group: one sync of the log however many messages it
// holds. Limits are checked here, in queue order, against what is stored and what this group
// has taken so far.
void Inbox::State::commit_group(std::deque<PendingAppend>& group) {
  // Per message, why it was not stored; nullopt: stored (the message then holds its new id).
  std::vector<std::optional<Error>> errors;
  errors.reserve(group.size());
  {
    std::lock_guard lock(db_mutex);
    std::uint64_t group_messages = 0;
    std::uint64_t group_bytes = 0;
    std::optional<Error> failure;
    if (auto began = begin(); !began) failure = began.error();

    for (auto& pending : group) {
      StoredMessage& message = pending.message;
      const std::uint64_t size = message.payload.size();
      const bool fits = messages + group_messages + 1 <= limits.max_messages &&
                        size <= limits.max_bytes && bytes + group_bytes <= limits.max_bytes - size;
      if (!fits) {
        ++refused;
        errors.push_back(fail_inbox(InboxErrc::kFull,
                                    "inbox " + quoted(file) + " is full (" +
                                        std::to_string(messages + group_messages) + " messages, " +
                                        std::to_string(bytes + group_bytes) + " bytes; limits " +
                                        std::to_string(limits.max_messages) + " and " +
                                        std::to_string(limits.max_bytes) + ")")
                             .value());
        continue;
      }
      if (failure) {
        errors.push_back(*failure);
        continue;
      }
      sqlite3_stmt* statement = insert.get();
      sqlite3_reset(statement);
      int result = sqlite3_bind_text(statement, 1, message.from.data(),
                                     static_cast<int>(message.from.size()), SQLITE_STATIC);
      if (result == SQLITE_OK) {
        result = sqlite3_bind_text(statement, 2, message.protocol.data(),
                                   static_cast<int>(message.protocol.size()), SQLITE_STATIC);
      }
      if (result == SQLITE_OK) result = sqlite3_bind_int64(statement, 3, message.received_at_ms);
      if (result == SQLITE_OK) result = bind_payload(statement, 4, message.payload);
      if (result == SQLITE_OK) result = sqlite3_step(statement);
      if (result != SQLITE_DONE) {
        failure = sqlite_error(db.get(), result, "cannot store a message");
        sqlite3_reset(statement);
        errors.push_back(*failure);
        continue;
      }
      sqlite3_reset(statement);
      sqlite3_clear_bindings(statement);
      message.id = sqlite3_last_insert_rowid(db.get());
      ++group_messages;
      group_bytes += size;
      errors.push_back(std::nullopt);
    }

    if (!failure) {
      if (auto committed = commit(); !committed) failure = committed.error();
    }
    if (failure) {
      // Nothing of the group is stored: every message that was inserted fails with the error.
      rollback();
      const Error error{"inbox " + quoted(file) + ": " + failure->message, failure->code};
      for (auto& outcome : errors) {
        if (!outcome || outcome->code != InboxErrc::kFull) outcome = error;
      }
    } else {
      messages += group_messages;
      bytes += group_bytes;
    }
  }
  // After the lock: a callback may list or remove.
  for (std::size_t i = 0; i < group.size(); ++i) {
    if (errors[i]) {
      group[i].done(tl::unexpected(std::move(*errors[i])));
    } else {
      group[i].done(std::move(group[i].message));
    }
  }
}

Expected<std::vector<StoredMessage>> Inbox::list(std::int64_t after_id, std::size_t limit) const {
  std::vector<StoredMessage> out;
  if (limit == 0) return out;
  std::lock_guard lock(state_->db_mutex);
  sqlite3_stmt* statement = state_->select_after.get();
  sqlite3_reset(statement);
  const auto capped = static_cast<sqlite3_int64>(
      std::min<std::size_t>(limit, std::numeric_limits<sqlite3_int64>::max()));
  sqlite3_bind_int64(statement, 1, after_id);
  sqlite3_bind_int64(statement, 2, capped);
  int result;
  while ((result = sqlite3_step(statement)) == SQLITE_ROW) {
    StoredMessage message;
    message.id = sqlite3_column_int64(statement, 0);
    const auto text = [&](int column) {
      const auto* data = sqlite3_column_text(statement, column);
      const int size = sqlite3_column_bytes(statement, column);
      return data != nullptr ? std::string(reinterpret_cast<const char*>(data), size)
                             : std::string();
    };
    message.from = text(1);
    message.protocol = text(2);
    message.received_at_ms = sqlite3_column_int64(statement, 3);
    const auto* payload = static_cast<const std::uint8_t*>(sqlite3_column_blob(statement, 4));
    const int size = sqlite3_column_bytes(statement, 4);
    if (payload != nullptr) message.payload.assign(payload, payload + size);
    out.push_back(std::move(message));
  }
  sqlite3_reset(statement);
  if (result != SQLITE_DONE) {
    auto error = sqlite_error(state_->db.get(), result, "cannot list messages");
    return fail("inbox " + quoted(state_->file) + ": " + error.message, error.code);
  }
  return out;
}

Expected<std::size_t> Inbox::remove(const std::vector<std::int64_t>& ids) {
  std::lock_guard lock(state_->db_mutex);
  sqlite3* db = state_->db.get();
  const auto failed = [&](int result) {
    auto error = sqlite_error(db, result, "cannot remove messages");
    return fail("inbox " + quoted(state_->file) + ": " + error.message, error.code);
  };
  if (auto began = state_->begin(); !began) {
    return fail("inbox " + quoted(state_->file) + ": " + began.error().message, began.error().code);
  }
  std::size_t removed = 0;
  std::uint64_t removed_bytes = 0;
  for (std::int64_t id : ids) {
    sqlite3_stmt* size = state_->payload_size.get();
    sqlite3_reset(size);
    sqlite3_bind_int64(size, 1, id);
    int result = sqlite3_step(size);
    if (result == SQLITE_DONE) continue;  // not stored (or already removed)
    if (result != SQLITE_ROW) {
      sqlite3_reset(size);
      state_->rollback();
      return failed(result);
    }
    const auto payload_bytes = static_cast<std::uint64_t>(sqlite3_column_int64(size, 0));
    sqlite3_reset(size);

    sqlite3_stmt* erase = state_->delete_one.get();
    sqlite3_reset(erase);
    sqlite3_bind_int64(erase, 1, id);
    result = sqlite3_step(erase);
    sqlite3_reset(erase);
    if (result != SQLITE_DONE) {
      state_->rollback();
      return failed(result);
    }
    ++removed;
    removed_bytes += payload_bytes;
  }
  if (auto committed = state_->commit(); !committed) {
    state_->rollback();
    return fail("inbox " + quoted(state_->file) + ": " + committed.error().message,
                committed.error().code);
  }
  state_->messages -= removed;
  state_->bytes -= removed_bytes;
  return removed;
}

InboxCounts Inbox::counts() const {
  return InboxCounts{state_->messages.load(), state_->bytes.load(), state_->refused.load()};
}

}  // namespace an::store
