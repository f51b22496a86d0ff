#!/usr/bin/env bash
# Builds agentnetwork and runs every test: formatting, then the whole CTest suite (unit +
# functional) in a Release build and again under AddressSanitizer + UndefinedBehaviorSanitizer,
# and the daemon layer's tests cross-built for Windows and run under Wine.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test

jobs=$(nproc)

# Each stage's header says how long the run has taken so far: CI must stay under 45 minutes.
stage() { printf '== %s [%dm%02ds]\n' "$*" $((SECONDS / 60)) $((SECONDS % 60)); }

stage clang-format
mapfile -t sources < <(git ls-files '*.cpp' '*.h' 2>/dev/null || find src tests bench -name '*.cpp' -o -name '*.h')
clang-format --dry-run --Werror "${sources[@]}"

# Every build here treats warnings as errors (AN_WERROR, off in a user's build): a new warning
# fails CI instead of reaching users as noise.
run_suite() {
  local dir=$1
  shift
  stage "build $dir ($*)"
  cmake -S . -B "$dir" -G Ninja -DAN_WERROR=ON "$@"
  cmake --build "$dir" -j "$jobs"
  stage "test $dir"
  ctest --test-dir "$dir" --output-on-failure -j "$jobs" --timeout 600
}

# Release, as users and packagers build it (-O3, where GCC warns differently than at -O2). No
# debug information: the ASan run of the same tests below is the one that prints symbolised stacks.
run_suite build -DCMAKE_BUILD_TYPE=Release

# The daemon layer on Windows: MinGW-w64 cross build, tests under Wine.
scripts/test-windows.sh build-windows
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite build-asan -DCMAKE_BUILD_TYPE=Debug -DAN_SANITIZE=ON

# Code whose state is shared between threads (the log file written by every logging thread and
# by raw stdout/stderr writers; the agents' inbox, whose writer thread commits what the network
# thread queues while gRPC's threads list and remove) also runs under ThreadSanitizer. The control API server is not
# in this run: Debian's gRPC is not built with TSan, so TSan cannot see gRPC's own
# synchronisation and reports its internals; the server keeps P2P state on the network thread
# and shares one mutex-guarded structure per WatchPeers stream, exercised by the ASan run.
stage build build-tsan
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DAN_TSAN=ON -DAN_WERROR=ON
cmake --build build-tsan -j "$jobs" --target daemon_tests store_tests
stage test build-tsan
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
  ctest --test-dir build-tsan --output-on-failure -j "$jobs" \
  -R '^(LogFileTest|LogReaderTest|FilesPosixTest|PlatformFilesTest|InboxTest)\.'

# Every wire parser gets a short libFuzzer run (clang, ASan+UBSan).
stage fuzz
FUZZ_SECONDS=${FUZZ_SECONDS:-6} scripts/fuzz.sh
