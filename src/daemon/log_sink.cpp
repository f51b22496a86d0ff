#include "daemon/log_sink.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <string_view>
#include <utility>
#include <vector>

namespace an::daemon {

RotatingLogFileSink::RotatingLogFileSink(std::shared_ptr<RotatingLogFile> file)
    : file_(std::move(file)) {
  // "\n" on every platform (spdlog would end lines with "\r\n" on Windows): the log file is
  // one format, written alike by raw stdout/stderr and read by `logs` everywhere.
  set_formatter_(std::make_unique<spdlog::pattern_formatter>(kLogLinePattern,
                                                             spdlog::pattern_time_type::utc, "\n"));
}

void RotatingLogFileSink::sink_it_(const spdlog::details::log_msg& message) {
  spdlog::memory_buf_t formatted;
  formatter_->format(message, formatted);
  // One write per message: a line is never split between two files by a rotation, and raw
  // writes from other threads cannot land inside it.
  file_->write(std::string_view(formatted.data(), formatted.size()));
}

std::shared_ptr<spdlog::logger> make_node_logger(std::shared_ptr<RotatingLogFile> file,
                                                 bool also_console) {
  std::vector<spdlog::sink_ptr> sinks;
  sinks.push_back(std::make_shared<RotatingLogFileSink>(std::move(file)));
  if (also_console) {
    auto console =
        std::make_shared<spdlog::sinks::stderr_color_sink_mt>(spdlog::color_mode::automatic);
    console->set_formatter(std::make_unique<spdlog::pattern_formatter>(
        kConsoleLinePattern, spdlog::pattern_time_type::utc));
    sinks.push_back(std::move(console));
  }
  auto logger = std::make_shared<spdlog::logger>("node", sinks.begin(), sinks.end());
  logger->set_level(spdlog::level::info);
  return logger;
}

}  // namespace an::daemon
