// an-inbox-bench: durable inbox writes per second against SQLite's own insert rate with the same
// durability on the same disk (the limit an inbox built on SQLite can reach one message at a
// time). Three phases, each on a fresh database file in the same directory:
//
//   (a) SQLite limit: a prepared INSERT of the inbox's row shape, one transaction per insert,
//       WAL and synchronous=FULL, from one thread: one log sync per message.
//   (b) Inbox::append, one at a time from one thread: the same durability, plus the hand-off to
//       the inbox's writer thread and back.
//   (c) Inbox::append_async from N producers, each waiting for its message to be durable before
//       sending the next (as N senders' streams do): the writer commits what is queued in one
//       transaction, so several messages share one sync.
//
// Each phase stops after --count messages or --seconds, whichever comes first. Prints a
// markdown table: writes/s, latency per write, and the ratio to (a).
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sys/vfs.h>
#endif

#include "store/inbox.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using an::store::Inbox;
using an::store::InboxLimits;
using an::store::StoredMessage;

struct Options {
  fs::path dir = ".";
  std::size_t count = 2000;  // messages per phase at most
  double seconds = 1.0;      // per phase at most
  std::size_t payload_bytes = 1024;
  std::size_t producers = 16;
  std::size_t runs = 1;
};

struct PhaseResult {
  std::size_t writes = 0;
  std::size_t failures = 0;
  double seconds = 0;
  std::vector<double> latencies_ms;
  double rate() const { return seconds > 0 ? static_cast<double>(writes) / seconds : 0; }
};

void usage() {
  std::fprintf(stderr,
               "usage: an-inbox-bench [--dir DIR] [--count N] [--seconds S] [--payload BYTES]\n"
               "                      [--producers N] [--runs R]\n"
               "  --dir DIR        where the databases are written (a fresh subdirectory, removed\n"
               "                   afterwards; default: the current directory). Put it on the\n"
               "                   disk the node's data directory is on: tmpfs makes syncs free.\n"
               "  --count N        messages per phase at most (default 2000)\n"
               "  --seconds S      seconds per phase at most (default 1)\n"
               "  --payload BYTES  payload size (default 1024)\n"
               "  --producers N    concurrent producers in phase (c) (default 16)\n"
               "  --runs R         repeat the three phases R times; medians (default 1)\n");
}

bool parse_options(int argc, char** argv, Options& options) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      usage();
      std::exit(0);
    }
    if (i + 1 >= argc) return false;
    const char* value = argv[++i];
    char* end = nullptr;
    if (flag == "--dir") {
      options.dir = value;
      continue;
    }
    if (flag == "--seconds") {
      options.seconds = std::strtod(value, &end);
      if (*end != '\0' || options.seconds <= 0) return false;
      continue;
    }
    const unsigned long long number = std::strtoull(value, &end, 10);
    if (*end != '\0' || number == 0) return false;
    if (flag == "--count") {
      options.count = number;
    } else if (flag == "--payload") {
      options.payload_bytes = number;
    } else if (flag == "--producers") {
      options.producers = number;
    } else if (flag == "--runs") {
      options.runs = number;
    } else {
      return false;
    }
  }
  return true;
}

std::string filesystem_name(const fs::path& dir) {
#if defined(__linux__)
  struct statfs info {};
  if (::statfs(dir.c_str(), &info) != 0) return "unknown";
  switch (static_cast<unsigned long>(info.f_type)) {
    case 0xEF53UL:
      return "ext2/3/4";
    case 0x58465342UL:
      return "xfs";
    case 0x9123683EUL:
      return "btrfs";
    case 0x01021994UL:
      return "tmpfs (syncs cost nothing: not a disk figure)";
    case 0x794C7630UL:
      return "overlayfs";
    case 0x2FC12FC1UL:
      return "zfs";
    case 0xF2F52010UL:
      return "f2fs";
    case 0x6969UL:
      return "nfs";
    default: {
      char hex[32];
      std::snprintf(hex, sizeof hex, "type 0x%lx", static_cast<unsigned long>(info.f_type));
      return hex;
    }
  }
#else
  (void)dir;
  return "unknown";
#endif
}

double elapsed_ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

double percentile(std::vector<double> values, double fraction) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto index = static_cast<std::size_t>(fraction * static_cast<double>(values.size() - 1));
  return values[index];
}

double median(std::vector<double> values) {
  return percentile(std::move(values), 0.5);
}

StoredMessage make_message(const an::Bytes& payload) {
  StoredMessage message;
  message.from = "12D3KooWLoadGeneratorPeerIdOfTypicalLength1234567890ab";
  message.protocol = "/daan/message/1.0.0";
  message.received_at_ms = 1'765'000'000'000;
  message.payload = payload;
  return message;
}

bool check(int result, sqlite3* db, const char* what) {
  if (result == SQLITE_OK || result == SQLITE_DONE || result == SQLITE_ROW) return true;
  std::fprintf(stderr, "%s: %s\n", what, sqlite3_errmsg(db));
  return false;
}

// (a): what SQLite itself does with the same rows and the same durability.
PhaseResult sqlite_limit(const fs::path& file, const Options& options, const an::Bytes& payload) {
  PhaseResult out;
  sqlite3* db = nullptr;
  if (!check(sqlite3_open(file.string().c_str(), &db), db, "open")) return out;
  const char* setup =
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
      "CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, sender TEXT NOT NULL,"
      " protocol TEXT NOT NULL, received_at_ms INTEGER NOT NULL, payload BLOB NOT NULL)";
  sqlite3_stmt* insert = nullptr;
  const auto message = make_message(payload);
  if (check(sqlite3_exec(db, setup, nullptr, nullptr, nullptr), db, "setup") &&
      check(sqlite3_prepare_v2(db,
                               "INSERT INTO messages (sender, protocol, received_at_ms, payload) "
                               "VALUES (?, ?, ?, ?)",
                               -1, &insert, nullptr),
            db, "prepare")) {
    const auto start = Clock::now();
    const auto deadline = start + std::chrono::duration<double>(options.seconds);
    while (out.writes < options.count && Clock::now() < deadline) {
      const auto began = Clock::now();
      sqlite3_bind_text(insert, 1, message.from.data(), static_cast<int>(message.from.size()),
                        SQLITE_STATIC);
      sqlite3_bind_text(insert, 2, message.protocol.data(),
                        static_cast<int>(message.protocol.size()), SQLITE_STATIC);
      sqlite3_bind_int64(insert, 3, message.received_at_ms);
      sqlite3_bind_blob64(insert, 4, message.payload.data(), message.payload.size(), SQLITE_STATIC);
      const int result = sqlite3_step(insert);
      sqlite3_reset(insert);
      if (!check(result, db, "insert")) {
        ++out.failures;
        break;
      }
      out.latencies_ms.push_back(elapsed_ms(began));
      ++out.writes;
    }
    out.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  }
  sqlite3_finalize(insert);
  sqlite3_close(db);
  return out;
}

InboxLimits limits_for(const Options& options) {
  return InboxLimits{.max_messages = options.count + 1,
                     .max_bytes = (options.count + 1) * (options.payload_bytes + 1)};
}

// (b): the blocking append, one message at a time.
PhaseResult inbox_one_at_a_time(const fs::path& file, const Options& options,
                                const an::Bytes& payload) {
  PhaseResult out;
  auto inbox = Inbox::open(file, limits_for(options));
  if (!inbox) {
    std::fprintf(stderr, "%s\n", inbox.error().message.c_str());
    ++out.failures;
    return out;
  }
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration<double>(options.seconds);
  while (out.writes < options.count && Clock::now() < deadline) {
    const auto began = Clock::now();
    auto stored = (*inbox)->append(make_message(payload));
    if (!stored) {
      std::fprintf(stderr, "%s\n", stored.error().message.c_str());
      ++out.failures;
      break;
    }
    out.latencies_ms.push_back(elapsed_ms(began));
    ++out.writes;
  }
  out.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return out;
}

// (c): N producers with one message in flight each.
PhaseResult inbox_group_commit(const fs::path& file, const Options& options,
                               const an::Bytes& payload) {
  PhaseResult out;
  auto opened = Inbox::open(file, limits_for(options));
  if (!opened) {
    std::fprintf(stderr, "%s\n", opened.error().message.c_str());
    ++out.failures;
    return out;
  }
  Inbox& inbox = **opened;
  std::atomic<std::size_t> issued{0};
  std::atomic<std::size_t> failures{0};
  std::mutex latencies_mutex;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration<double>(options.seconds);

  std::vector<std::thread> producers;
  for (std::size_t p = 0; p < options.producers; ++p) {
    producers.emplace_back([&] {
      std::vector<double> latencies;
      std::mutex mutex;
      std::condition_variable stored;
      while (Clock::now() < deadline && issued.fetch_add(1) < options.count) {
        bool done = false;
        const auto began = Clock::now();
        inbox.append_async(make_message(payload), [&](an::Expected<StoredMessage> result) {
          if (!result) {
            std::fprintf(stderr, "%s\n", result.error().message.c_str());
            ++failures;
          }
          std::lock_guard lock(mutex);
          done = true;
          stored.notify_one();
        });
        std::unique_lock lock(mutex);
        stored.wait(lock, [&] { return done; });
        latencies.push_back(elapsed_ms(began));
      }
      std::lock_guard lock(latencies_mutex);
      out.latencies_ms.insert(out.latencies_ms.end(), latencies.begin(), latencies.end());
    });
  }
  for (auto& producer : producers)
    producer.join();
  out.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  out.failures = failures;
  out.writes = out.latencies_ms.size() - out.failures;
  return out;
}

void remove_database(const fs::path& file) {
  std::error_code ignored;
  for (const char* suffix : {"", "-wal", "-shm"})
    fs::remove(file.string() + suffix, ignored);
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!parse_options(argc, argv, options)) {
    usage();
    return 2;
  }
  std::random_device seed;
  const fs::path work = options.dir / ("an-inbox-bench-" + std::to_string(seed()));
  std::error_code ec;
  if (!fs::create_directory(work, ec)) {
    std::fprintf(stderr, "cannot create %s: %s\n", work.string().c_str(), ec.message().c_str());
    return 1;
  }

  an::Bytes payload(options.payload_bytes);
  std::mt19937 random(42);
  for (auto& byte : payload)
    byte = static_cast<std::uint8_t>(random());

  const char* names[] = {"(a) SQLite limit: one insert per transaction",
                         "(b) Inbox::append, one thread", "(c) Inbox::append_async, producers"};
  std::vector<PhaseResult> results[3];
  std::size_t failures = 0;
  for (std::size_t run = 0; run < options.runs; ++run) {
    const fs::path files[] = {work / "limit.db", work / "single.db", work / "group.db"};
    // The order rotates from run to run, so that no phase always meets the disk first.
    for (std::size_t step = 0; step < 3; ++step) {
      const std::size_t phase = (run + step) % 3;
      if (phase == 0) results[0].push_back(sqlite_limit(files[0], options, payload));
      if (phase == 1) results[1].push_back(inbox_one_at_a_time(files[1], options, payload));
      if (phase == 2) results[2].push_back(inbox_group_commit(files[2], options, payload));
    }
    for (const auto& file : files)
      remove_database(file);
    for (const auto& phase : results)
      failures += phase.back().failures;
  }
  fs::remove_all(work, ec);

  std::printf("durable inbox writes, WAL + synchronous=FULL, payload %zu bytes, filesystem %s\n",
              options.payload_bytes, filesystem_name(options.dir).c_str());
  std::printf("at most %zu messages or %.1f s per phase, %zu run(s), %zu producers in (c)\n\n",
              options.count, options.seconds, options.runs, options.producers);
  std::printf("| phase | writes/s (median) | min-max | p50 ms | p99 ms | / (a) |\n");
  std::printf("|---|---|---|---|---|---|\n");
  std::vector<double> limit_rates;
  for (const auto& run : results[0])
    limit_rates.push_back(run.rate());
  const double limit = median(limit_rates);
  for (int phase = 0; phase < 3; ++phase) {
    std::vector<double> rates;
    std::vector<double> p50s;
    std::vector<double> p99s;
    for (const auto& run : results[phase]) {
      rates.push_back(run.rate());
      p50s.push_back(percentile(run.latencies_ms, 0.5));
      p99s.push_back(percentile(run.latencies_ms, 0.99));
    }
    const double rate = median(rates);
    std::string name = names[phase];
    if (phase == 2) name += " (" + std::to_string(options.producers) + ")";
    std::printf("| %s | %.0f | %.0f-%.0f | %.2f | %.2f | %.2f |\n", name.c_str(), rate,
                *std::min_element(rates.begin(), rates.end()),
                *std::max_element(rates.begin(), rates.end()), median(p50s), median(p99s),
                limit > 0 ? rate / limit : 0.0);
  }
  // The disk's sync time drifts from second to second; each run's phases ran back to back, so the
  // ratio within a run is the steadier figure.
  if (options.runs > 1) {
    std::printf("\nper run, writes/s (a) / (b) / (c), and (b)/(a):");
    std::vector<double> ratios;
    for (std::size_t run = 0; run < options.runs; ++run) {
      const double a = results[0][run].rate();
      const double b = results[1][run].rate();
      if (a > 0) ratios.push_back(b / a);
      std::printf("%s %.0f / %.0f / %.0f (%.2f)", run == 0 ? "" : ",", a, b, results[2][run].rate(),
                  a > 0 ? b / a : 0.0);
    }
    std::printf("\nmedian of the per-run (b)/(a): %.2f\n", median(ratios));
  }
  if (failures != 0) {
    std::fprintf(stderr, "%zu write(s) failed\n", failures);
    return 1;
  }
  return 0;
}
