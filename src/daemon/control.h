// Finding and stopping the node of a data directory from another process (the CLI). The lock
// file is the truth: a PID file whose lock nobody holds is stale, whatever process now has that
// PID, and is never signalled. Any thread; blocking calls.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/paths.h"
#include "daemon/platform.h"
#include "util/expected.h"

namespace an::daemon {

// Set to "1" in the environment of a node started by `start` (the seed's daemon marker).
inline constexpr const char* kDaemonEnvVar = "AGENTNETWORK_DAEMON";

// True when this process is a node detached by `start`.
bool is_daemon_process();

// PID of the node holding the data directory's lock, nullopt when no node runs there.
Expected<std::optional<ProcessId>> running_node_pid(const DataPaths& paths);

// How long a starting node waits for a transient lock holder (a CLI cleaning stale files) before
// concluding that another node runs here.
inline constexpr auto kLockRetryWindow = std::chrono::milliseconds(500);

// Takes the data directory's lock for a starting node. When another node holds it, fails with
// "already running (PID n)" and sets `running_pid` to n (0 when unknown). A holder that is not
// a node (no matching PID file: a CLI removing stale files) is waited for up to
// kLockRetryWindow.
Expected<FileLock> acquire_node_lock(const DataPaths& paths, ProcessId& running_pid);

// Removes the PID and status files of a node that is no longer running. Takes the lock while
// doing so, so it never removes the files of a node that is just starting. Returns true when
// something was removed.
bool remove_stale_files(const DataPaths& paths);

struct StopResult {
  enum class Outcome { kNotRunning, kStopped, kKilled };
  Outcome outcome = Outcome::kNotRunning;
  ProcessId pid = 0;
  bool removed_stale_files = false;
};

// A way to ask the node to stop before signals are used (the control API's Shutdown): gets the
// node's PID and returns true when the node accepted the request.
using StopRequest = std::function<bool(ProcessId pid)>;

// Asks the node to stop (through `ask_first` when given and accepted, else with SIGTERM / the
// stop event), waits until `timeout` after the call for it to exit (its lock released), then
// kills it. Returns only once the process is gone and no PID file is left. `progress` receives
// one-line messages for people.
Expected<StopResult> stop_node(const DataPaths& paths, std::chrono::milliseconds timeout,
                               const std::function<void(std::string_view)>& progress,
                               const StopRequest& ask_first = {});

}  // namespace an::daemon
