#include "daemon/log_reader.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <optional>
#include <thread>
#include <utility>

#include "daemon/log_file.h"
#include "daemon/platform.h"

namespace an::daemon {
namespace {

namespace fs = std::filesystem;

// Reads happen in pieces of this size, backwards for tail, forwards for follow.
constexpr std::size_t kChunkBytes = 64 * 1024;

// A line still being written is held back so that `emit` gets whole lines, but not forever: a
// node that died in the middle of a line should still show that line.
constexpr std::chrono::seconds kUnfinishedLineGrace{1};

struct OpenLog {
  ReadFile file;
  FileIdentity identity;
  std::uint64_t size = 0;
  int index = 0;  // 0: node.log; k: node.log.k
};

// Where follow() is reading.
struct Cursor {
  ReadFile file;
  FileIdentity identity;
  std::uint64_t offset = 0;
  // Set while an unfinished last line is held back: the size seen then, and since when.
  std::uint64_t held_size = 0;
  std::optional<std::chrono::steady_clock::time_point> held_since;
};

bool is_missing(const Error& error) {
  return error.code == std::errc::no_such_file_or_directory;
}

std::string no_log_file_message(const fs::path& logs_dir) {
  return "no log file at " + current_log_path(logs_dir).string();
}

// Opens a log file with its identity and size taken from the open handle, so that the three
// describe the same file even if it is renamed meanwhile. nullopt: there is no such file.
Expected<std::optional<OpenLog>> open_log(const fs::path& path, int index) {
  auto file = ReadFile::open(path);
  if (!file) {
    if (is_missing(file.error())) return std::nullopt;
    return tl::unexpected(file.error());
  }
  auto identity = file->identity();
  if (!identity) return tl::unexpected(identity.error());
  auto size = file->size();
  if (!size) return tl::unexpected(size.error());
  return OpenLog{std::move(*file), *identity, *size, index};
}

// The k of every node.log.k in the directory, ascending, i.e. newest first.
std::vector<int> rotated_indices(const fs::path& logs_dir) {
  const std::string prefix = std::string(kLogFileName) + ".";
  std::vector<int> indices;
  std::error_code error;
  for (fs::directory_iterator entry(logs_dir, error), end; !error && entry != end;
       entry.increment(error)) {
    const std::string name = entry->path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    int index = 0;
    const char* last = name.data() + name.size();
    auto [stop, parse_error] = std::from_chars(name.data() + prefix.size(), last, index);
    if (parse_error == std::errc() && stop == last && index >= 1) indices.push_back(index);
  }
  std::sort(indices.begin(), indices.end());
  return indices;
}

// Opens node.log.1, node.log.2, … (newest first). A file seen twice (it moved up one index
// while we were opening) or equal to `already_open` is skipped; one that vanished too.
Expected<std::vector<OpenLog>> open_rotated(const fs::path& logs_dir,
                                            std::optional<FileIdentity> already_open) {
  std::vector<OpenLog> logs;
  for (int index : rotated_indices(logs_dir)) {
    auto opened = open_log(rotated_log_path(logs_dir, index), index);
    if (!opened) return tl::unexpected(opened.error());
    if (!*opened) continue;
    const FileIdentity identity = (*opened)->identity;
    bool seen = already_open == identity;
    for (const OpenLog& log : logs)
      seen = seen || log.identity == identity;
    if (!seen) logs.push_back(std::move(**opened));
  }
  return logs;
}

// Reads [offset, offset + size) unless the file ends first; returns how much it got.
Expected<std::size_t> read_fully(const ReadFile& file, std::uint64_t offset, char* buffer,
                                 std::size_t size, TailStats* stats) {
  std::size_t total = 0;
  while (total < size) {
    auto count = file.read_at(offset + total, buffer + total, size - total);
    if (!count) return tl::unexpected(count.error());
    if (*count == 0) break;
    total += *count;
  }
  if (stats) stats->bytes_read += total;
  return total;
}

// Where the last `wanted` lines of [0, end) begin, scanning backwards chunk by chunk, so that
// only the end of a big file is read. 0 when the file has no more lines than that.
Expected<std::uint64_t> start_of_last_lines(const ReadFile& file, std::uint64_t end,
                                            std::size_t wanted, TailStats* stats) {
  std::string chunk(kChunkBytes, '\0');
  std::size_t newlines_to_pass = wanted;
  for (std::uint64_t chunk_end = end; chunk_end > 0;) {
    const std::uint64_t chunk_begin = chunk_end > kChunkBytes ? chunk_end - kChunkBytes : 0;
    auto count = read_fully(file, chunk_begin, chunk.data(),
                            static_cast<std::size_t>(chunk_end - chunk_begin), stats);
    if (!count) return tl::unexpected(count.error());
    for (std::size_t i = *count; i-- > 0;) {
      const std::uint64_t position = chunk_begin + i;
      // The '\n' at the very end closes the last line; it does not start one after it.
      if (chunk[i] != '\n' || position == end - 1) continue;
      if (--newlines_to_pass == 0) return position + 1;
    }
    chunk_end = chunk_begin;
  }
  return 0;
}

// Splits [begin, end) into lines, reading forwards; lines longer than kMaxTailLineBytes are cut.
Expected<std::vector<std::string>> read_lines(const ReadFile& file, std::uint64_t begin,
                                              std::uint64_t end, TailStats* stats) {
  std::vector<std::string> lines;
  std::string line;
  std::uint64_t line_bytes = 0;  // including what was cut
  auto finish_line = [&] {
    if (line_bytes > line.size()) {
      line += " [... " + std::to_string(line_bytes - line.size()) + " more bytes not shown]";
    }
    lines.push_back(std::move(line));
    line.clear();
    line_bytes = 0;
  };
  std::string chunk(kChunkBytes, '\0');
  for (std::uint64_t offset = begin; offset < end;) {
    const auto wanted =
        static_cast<std::size_t>(std::min<std::uint64_t>(kChunkBytes, end - offset));
    auto count = read_fully(file, offset, chunk.data(), wanted, stats);
    if (!count) return tl::unexpected(count.error());
    if (*count == 0) break;  // the file shrank while we read it
    std::string_view data(chunk.data(), *count);
    while (!data.empty()) {
      const std::size_t newline = data.find('\n');
      const std::string_view piece = data.substr(0, newline);
      if (line.size() < kMaxTailLineBytes) {
        line.append(piece.substr(0, kMaxTailLineBytes - line.size()));
      }
      line_bytes += piece.size();
      if (newline == std::string_view::npos) break;
      finish_line();
      data.remove_prefix(newline + 1);
    }
    offset += *count;
  }
  if (line_bytes > 0) finish_line();  // a last line without '\n'
  return lines;
}

// The last `wanted` lines of [0, end) of one file, oldest first.
Expected<std::vector<std::string>> last_lines_of(const ReadFile& file, std::uint64_t end,
                                                 std::size_t wanted, TailStats* stats) {
  if (wanted == 0 || end == 0) return std::vector<std::string>{};
  auto begin = start_of_last_lines(file, end, wanted, stats);
  if (!begin) return tl::unexpected(begin.error());
  return read_lines(file, *begin, end, stats);
}

// The last `n` lines of `newest` (up to `newest_end`) followed back into `older` (newest
// first), returned oldest first.
Expected<std::vector<std::string>> last_lines_across(const OpenLog* newest,
                                                     std::uint64_t newest_end,
                                                     const std::vector<OpenLog>& older,
                                                     std::size_t n, TailStats* stats) {
  std::vector<std::vector<std::string>> per_file;  // newest file first
  std::size_t found = 0;
  auto take_from = [&](const ReadFile& file, std::uint64_t end) -> Expected<void> {
    auto lines = last_lines_of(file, end, n - found, stats);
    if (!lines) return tl::unexpected(lines.error());
    found += lines->size();
    per_file.push_back(std::move(*lines));
    return {};
  };
  if (newest) {
    if (auto taken = take_from(newest->file, newest_end); !taken) {
      return tl::unexpected(taken.error());
    }
  }
  for (const OpenLog& log : older) {
    if (found >= n) break;
    if (auto taken = take_from(log.file, log.size); !taken) return tl::unexpected(taken.error());
  }
  std::vector<std::string> result;
  result.reserve(found);
  for (auto file = per_file.rbegin(); file != per_file.rend(); ++file) {
    for (std::string& line : *file)
      result.push_back(std::move(line));
  }
  return result;
}

// Just past the last '\n' of the file, so that follow() starts after whole lines. An unfinished
// line longer than a chunk is not held back.
Expected<std::uint64_t> end_of_whole_lines(const ReadFile& file, std::uint64_t size) {
  if (size == 0) return 0;
  std::string chunk(kChunkBytes, '\0');
  const std::uint64_t chunk_begin = size > kChunkBytes ? size - kChunkBytes : 0;
  auto count = read_fully(file, chunk_begin, chunk.data(),
                          static_cast<std::size_t>(size - chunk_begin), nullptr);
  if (!count) return tl::unexpected(count.error());
  const std::size_t newline = std::string_view(chunk.data(), *count).rfind('\n');
  if (newline != std::string_view::npos) return chunk_begin + newline + 1;
  return chunk_begin == 0 ? 0 : size;
}

// Emits what was appended to the cursor's file since the last call. `to_end`: the file was
// rotated away and is complete, so an unfinished last line goes out too. True if it emitted.
Expected<bool> pump(Cursor& cursor, bool to_end, std::string& buffer,
                    const std::function<void(std::string_view)>& emit) {
  auto size = cursor.file.size();
  if (!size) return tl::unexpected(size.error());
  if (*size < cursor.offset) {
    cursor.offset = 0;  // truncated in place (e.g. logrotate copytruncate): start over
    cursor.held_since.reset();
  }
  bool emitted = false;
  while (cursor.offset < *size) {
    const auto wanted =
        static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), *size - cursor.offset));
    auto count = cursor.file.read_at(cursor.offset, buffer.data(), wanted);
    if (!count) return tl::unexpected(count.error());
    if (*count == 0) break;  // truncated meanwhile; the next call starts over
    std::string_view data(buffer.data(), *count);
    const bool last_piece = cursor.offset + *count >= *size;
    if (last_piece && !to_end && data.back() != '\n') {
      const std::size_t newline = data.rfind('\n');
      if (newline != std::string_view::npos) {
        data = data.substr(0, newline + 1);
      } else if (*count < buffer.size()) {
        // Only an unfinished line is left: wait for its end, unless it stays unfinished.
        const auto now = std::chrono::steady_clock::now();
        if (!cursor.held_since || cursor.held_size != *size) {
          cursor.held_since = now;
          cursor.held_size = *size;
        }
        if (now - *cursor.held_since < kUnfinishedLineGrace) break;
      }
    }
    emit(data);
    cursor.offset += data.size();
    cursor.held_since.reset();
    emitted = true;
  }
  return emitted;
}

// Emits a rotated file from its start to its end.
Expected<void> emit_whole(OpenLog& log, std::string& buffer,
                          const std::function<void(std::string_view)>& emit) {
  Cursor cursor{std::move(log.file), log.identity, 0, 0, std::nullopt};
  auto pumped = pump(cursor, /*to_end=*/true, buffer, emit);
  if (!pumped) return tl::unexpected(pumped.error());
  return {};
}

// The files that came after `last_read` and before `current`, newest first, found by walking up
// from node.log.1 until `last_read` turns up. Rotations may go on meanwhile: they only move
// files to higher indices, so a file still ahead of the walk stays ahead of it and is met
// (perhaps twice, hence the identity check), and none is skipped; no consistent view of the
// whole directory is needed, which a reader slower than the rotations might never get. Empty
// when `last_read` is gone (deleted, or moved away by another tool): then nothing is known to
// lie in between.
Expected<std::vector<OpenLog>> files_after(const fs::path& logs_dir, const FileIdentity& last_read,
                                           const FileIdentity& current) {
  std::vector<OpenLog> between;
  for (int index = 1;; ++index) {
    auto opened = open_log(rotated_log_path(logs_dir, index), index);
    if (!opened) return tl::unexpected(opened.error());
    if (!*opened) {
      // A gap is either the end or a rename caught half way; only a fresh listing tells.
      const std::vector<int> indices = rotated_indices(logs_dir);
      if (indices.empty() || indices.back() <= index) return std::vector<OpenLog>{};
      continue;
    }
    const FileIdentity identity = (*opened)->identity;
    if (identity == last_read) return between;
    bool seen = identity == current;
    for (const OpenLog& log : between)
      seen = seen || log.identity == identity;
    if (!seen) between.push_back(std::move(**opened));
  }
}

// node.log now is another file than the one last read (`last_read`, already drained): emits
// the rotated files between the two, oldest first, and returns a cursor at the start of the
// new node.log; nullopt when node.log is missing right now.
Expected<std::optional<Cursor>> move_to_new_file(
    const fs::path& logs_dir, std::optional<FileIdentity>& last_read, std::string& buffer,
    const std::function<void(std::string_view)>& emit) {
  // node.log first: whatever rotates after this moment is newer than it and is found later,
  // when node.log changes again.
  auto current = open_log(current_log_path(logs_dir), 0);
  if (!current) return tl::unexpected(current.error());
  if (!*current) return std::nullopt;
  if (last_read) {
    auto between = files_after(logs_dir, *last_read, (*current)->identity);
    if (!between) return tl::unexpected(between.error());
    for (auto file = between->rbegin(); file != between->rend(); ++file) {
      if (auto emitted = emit_whole(*file, buffer, emit); !emitted) {
        return tl::unexpected(emitted.error());
      }
      last_read = file->identity;
    }
  }
  return Cursor{std::move((*current)->file), (*current)->identity, 0, 0, std::nullopt};
}

}  // namespace

Expected<std::vector<std::string>> tail_lines(const fs::path& logs_dir, std::size_t n,
                                              TailStats* stats) {
  auto current = open_log(current_log_path(logs_dir), 0);
  if (!current) return tl::unexpected(current.error());
  std::optional<FileIdentity> current_identity;
  if (*current) current_identity = (*current)->identity;
  auto rotated = open_rotated(logs_dir, current_identity);
  if (!rotated) return tl::unexpected(rotated.error());
  if (!*current && rotated->empty()) return fail(no_log_file_message(logs_dir));
  const OpenLog* newest = *current ? &**current : nullptr;
  return last_lines_across(newest, newest ? newest->size : 0, *rotated, n, stats);
}

Expected<void> follow(const fs::path& logs_dir, std::size_t initial_lines,
                      const std::function<void(std::string_view)>& emit,
                      const std::function<bool()>& keep_going,
                      std::chrono::milliseconds poll_interval) {
  const fs::path current_path = current_log_path(logs_dir);
  std::optional<Cursor> cursor;
  // The newest file emitted to its end, when there is no cursor; rotated files newer than it
  // are still to come.
  std::optional<FileIdentity> last_read;
  std::string buffer(kChunkBytes, '\0');

  // The initial lines come from the handle that follow() then goes on reading, so that the
  // lines before and after the switch fit together exactly.
  auto current = open_log(current_path, 0);
  if (!current) return tl::unexpected(current.error());
  std::uint64_t start = 0;
  if (*current) {
    auto whole = end_of_whole_lines((*current)->file, (*current)->size);
    if (!whole) return tl::unexpected(whole.error());
    start = *whole;
  }
  std::optional<FileIdentity> current_identity;
  if (*current) current_identity = (*current)->identity;
  auto rotated = open_rotated(logs_dir, current_identity);
  if (!rotated) return tl::unexpected(rotated.error());
  if (!*current && rotated->empty()) return fail(no_log_file_message(logs_dir));

  auto initial =
      last_lines_across(*current ? &**current : nullptr, start, *rotated, initial_lines, nullptr);
  if (!initial) return tl::unexpected(initial.error());
  std::string line_with_newline;
  for (const std::string& line : *initial) {
    line_with_newline.assign(line).push_back('\n');
    emit(line_with_newline);
  }
  if (*current) {
    cursor = Cursor{std::move((*current)->file), (*current)->identity, start, 0, std::nullopt};
  } else {
    last_read = rotated->front().identity;
  }

  while (keep_going()) {
    bool emitted = false;
    if (cursor) {
      auto pumped = pump(*cursor, /*to_end=*/false, buffer, emit);
      if (!pumped) return tl::unexpected(pumped.error());
      emitted = *pumped;
    }
    // Missing node.log is the moment inside a rotation (or an external tool's): keep reading
    // the open file and look again later.
    const std::optional<FileIdentity> named = file_identity(current_path);
    if (named && (!cursor || *named != cursor->identity)) {
      if (cursor) {
        // Nothing reaches a file after it has left the name node.log, so this is its end.
        auto pumped = pump(*cursor, /*to_end=*/true, buffer, emit);
        if (!pumped) return tl::unexpected(pumped.error());
        last_read = cursor->identity;
        cursor.reset();
      }
      auto moved = move_to_new_file(logs_dir, last_read, buffer, emit);
      if (!moved) return tl::unexpected(moved.error());
      cursor = std::move(*moved);
      emitted = emitted || cursor.has_value();
    }
    if (!emitted) std::this_thread::sleep_for(poll_interval);
  }
  return {};
}

}  // namespace an::daemon
