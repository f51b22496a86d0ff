// Reading a logs directory back in tests: whole files, lines, and every line across node.log and
// its rotated files in the order they were written. Any thread.
#pragma once

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/log_file.h"

namespace an::test {

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

// Lines without their "\n". A "\r" is kept: log lines must end in "\n" alone on every platform.
inline std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

// Highest k with node.log.k present, 0 when there is none.
inline int highest_rotated_index(const std::filesystem::path& logs_dir) {
  int highest = 0;
  for (const auto& entry : std::filesystem::directory_iterator(logs_dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("node.log.", 0) != 0 || name == "node.log.new") continue;
    highest = std::max(highest, std::stoi(name.substr(9)));
  }
  return highest;
}

// All lines of node.log.K … node.log.1, node.log: oldest first.
inline std::vector<std::string> all_lines_oldest_first(const std::filesystem::path& logs_dir) {
  std::vector<std::string> lines;
  for (int index = highest_rotated_index(logs_dir); index >= 1; --index) {
    for (auto& line : split_lines(read_file(daemon::rotated_log_path(logs_dir, index)))) {
      lines.push_back(std::move(line));
    }
  }
  for (auto& line : split_lines(read_file(daemon::current_log_path(logs_dir)))) {
    lines.push_back(std::move(line));
  }
  return lines;
}

}  // namespace an::test
