// Reading the node's log from another process (`agentnetwork logs [-n N] [-f]`): the last lines
// and following across rotations. Any thread; callers own the callbacks, nothing is shared.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "util/expected.h"

namespace an::daemon {

// What tail_lines read from disk, so that tests can check it reads near the end only.
struct TailStats {
  std::uint64_t bytes_read = 0;
};

// Lines this long are cut in tail output (with a note of how much was left out), so that a log
// holding one giant line cannot make `logs` use unbounded memory.
inline constexpr std::size_t kMaxTailLineBytes = 1024 * 1024;

// The last `n` lines (without '\n'), oldest first, from node.log and then, while more are
// needed, node.log.1, node.log.2, … Each file is read backwards from its end in fixed-size
// chunks, never whole. A final line without '\n' counts. Error "no log file at <path>" when
// neither node.log nor any rotated file exists.
Expected<std::vector<std::string>> tail_lines(const std::filesystem::path& logs_dir, std::size_t n,
                                              TailStats* stats = nullptr);

// Emits the last `initial_lines` lines, then everything appended to node.log, following it
// through rotations (by polling, every `poll_interval` while idle), until keep_going() returns
// false. Every line is emitted once and in order; `emit` gets whole lines with their '\n' (a
// line still being written is held back, except the end of a file that was rotated away).
// A reader more than max_files rotations behind cannot see the files deleted in between.
Expected<void> follow(const std::filesystem::path& logs_dir, std::size_t initial_lines,
                      const std::function<void(std::string_view)>& emit,
                      const std::function<bool()>& keep_going,
                      std::chrono::milliseconds poll_interval = std::chrono::milliseconds(100));

}  // namespace an::daemon
