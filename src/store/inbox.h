// The durable inbox: messages other agents sent to this node, kept in SQLite until an agent
// acknowledges or takes them. They survive a restart and kill -9: a message is committed and
// synced to disk (WAL, synchronous=FULL) before its `done` runs, and the caller closes the
// sender's stream only then.
//
// Threads: an Inbox is thread-safe. It owns one writer thread that commits appends in groups
// (everything queued at the time, one transaction, one sync). `list`, `remove` and `counts` may
// be called from any thread alongside it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

#include "util/bytes.h"
#include "util/expected.h"

namespace an::store {

// Bounds of what the inbox keeps. An append that would pass either is refused; stored messages
// are never dropped to make room.
struct InboxLimits {
  std::uint64_t max_messages = 10000;
  std::uint64_t max_bytes = 256ULL * 1024 * 1024;  // payload bytes
};

struct StoredMessage {
  std::int64_t id = 0;  // assigned by the inbox; increases, never reused
  std::string from;     // the sender (a peer ID)
  std::string protocol;
  std::int64_t received_at_ms = 0;  // milliseconds since the Unix epoch
  Bytes payload;
};

struct InboxCounts {
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;    // payload bytes
  std::uint64_t refused = 0;  // appends refused as full since the inbox was opened
};

// Error::code of the inbox's failures, in inbox_error_category().
enum class InboxErrc {
  kFull = 1,           // a limit would be passed; nothing was stored
  kCorrupt,            // the file is not an SQLite database, or is damaged
  kNotAnInbox,         // an SQLite database of something else
  kUnsupportedSchema,  // an inbox written by a newer version
  kDatabase,           // SQLite failed otherwise (I/O, permissions, disk full, locked)
  kClosed,             // the inbox is closing
};
const std::error_category& inbox_error_category();
std::error_code make_error_code(InboxErrc code);

class Inbox {
 public:
  // How long a statement waits for a lock another process holds (the sqlite3 shell, a backup)
  // before failing with kDatabase.
  static constexpr int kBusyTimeoutMs = 5000;

  // Creates `file` or opens it (WAL, synchronous=FULL). A file that is corrupt, belongs to
  // something else or was written by a newer version is an error naming the file and saying what
  // to do; such a file is checked read-only first and is never modified, deleted or overwritten.
  static Expected<std::unique_ptr<Inbox>> open(const std::filesystem::path& file,
                                               InboxLimits limits);

  // Finishes what is queued (each `done` runs), then closes the database.
  ~Inbox();
  Inbox(const Inbox&) = delete;
  Inbox& operator=(const Inbox&) = delete;

  // Queues a message (its id is ignored) for the writer thread. `done` runs on the writer thread
  // once the message is durable (committed and synced), with the message and its new id, or with
  // an error: kFull (counted in `refused`) when a limit would be passed, kClosed when the inbox
  // is closing, kDatabase/kCorrupt when the commit failed. `done` must not throw; it may call
  // any method of the inbox except the blocking `append`.
  void append_async(StoredMessage message, std::function<void(Expected<StoredMessage>)> done);

  // The blocking form of append_async. Not from a `done` callback (that would wait for itself:
  // it fails with kDatabase instead).
  Expected<StoredMessage> append(StoredMessage message);

  // Up to `limit` messages with an id above `after_id`, oldest first.
  Expected<std::vector<StoredMessage>> list(std::int64_t after_id, std::size_t limit) const;

  // Removes the messages with these ids (unknown ids are skipped), durably; the number removed.
  Expected<std::size_t> remove(const std::vector<std::int64_t>& ids);

  InboxCounts counts() const;

  const std::filesystem::path& file() const;

 private:
  struct State;
  explicit Inbox(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace an::store

template <>
struct std::is_error_code_enum<an::store::InboxErrc> : std::true_type {};
