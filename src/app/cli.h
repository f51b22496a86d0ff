// The command line (SPEC §1): dispatch to one command, exit codes 0 ok, 1 failed, 2 usage error,
// 3 "not running" (status). Called once from main.
#pragma once

namespace an::app {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitNotRunning = 3;

int run_cli(int argc, char** argv);

}  // namespace an::app
