// Owner-only creation of files and sockets, and SIGPIPE, on POSIX systems (Linux, macOS). Any
// thread, but PrivateCreationScope changes the process-wide umask (see platform.h).
#include <sys/stat.h>

#include <csignal>

#include "daemon/platform.h"

namespace an::daemon {

PrivateCreationScope::PrivateCreationScope() : previous_mask_(::umask(0177)) {}

PrivateCreationScope::~PrivateCreationScope() {
  ::umask(static_cast<mode_t>(previous_mask_));
}

Expected<void> make_private(const std::filesystem::path& path) {
  if (::chmod(path.c_str(), 0600) != 0) {
    return fail_errno("cannot make " + path.string() + " private");
  }
  return {};
}

void ignore_broken_pipe_signal() {
  std::signal(SIGPIPE, SIG_IGN);
}

}  // namespace an::daemon
