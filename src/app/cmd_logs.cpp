// logs: the end of the node's log, or following it.
#include <atomic>
#include <charconv>
#include <csignal>
#include <cstdio>

#include "app/cli.h"
#include "app/commands.h"
#include "daemon/log_reader.h"
#include "daemon/paths.h"

namespace an::app {
namespace {

std::atomic<bool> g_interrupted{false};

extern "C" void on_interrupt(int) {
  g_interrupted.store(true);
}

}  // namespace

int command_logs(const Words& words) {
  int exit_code = kExitOk;
  auto parsed = parse_or_report("logs", words, exit_code);
  if (!parsed) return exit_code;
  std::size_t count = 50;
  if (auto text = parsed->value("n")) {
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), count);
    if (ec != std::errc() || end != text->data() + text->size() || count > 100000000) {
      print_error("invalid -n \"" + *text + "\" (expected a number of lines)");
      return kExitUsage;
    }
  }
  daemon::DataPaths paths(data_dir_option(*parsed));

  if (!parsed->has("f")) {
    auto lines = daemon::tail_lines(paths.logs_dir, count);
    if (!lines) {
      print_error(lines.error().message);
      return kExitFailure;
    }
    for (const auto& line : *lines) {
      std::fwrite(line.data(), 1, line.size(), stdout);
      std::fputc('\n', stdout);
    }
    return kExitOk;
  }

  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  auto followed = daemon::follow(
      paths.logs_dir, count,
      [](std::string_view bytes) {
        std::fwrite(bytes.data(), 1, bytes.size(), stdout);
        std::fflush(stdout);
      },
      [] { return !g_interrupted.load() && !std::ferror(stdout); });
  if (!followed) {
    print_error(followed.error().message);
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace an::app
