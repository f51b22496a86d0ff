// Owner-only creation and SIGPIPE on Windows: nothing to do. Files take the ACL of their
// directory (a user's profile or a service's data directory is private already) and there is no
// SIGPIPE: a write to a closed socket or pipe fails with an error.
#include "daemon/platform.h"

namespace an::daemon {

PrivateCreationScope::PrivateCreationScope() = default;

PrivateCreationScope::~PrivateCreationScope() = default;

Expected<void> make_private(const std::filesystem::path&) {
  return {};
}

void ignore_broken_pipe_signal() {}

}  // namespace an::daemon
