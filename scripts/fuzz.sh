#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each one for a short time (default 10 s,
# FUZZ_SECONDS to change). A crash fails the script and leaves the input in build-fuzz/crashes/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-10}
CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DAN_FUZZ=ON -DAN_BUILD_TESTS=OFF -DAN_WERROR=ON
cmake --build build-fuzz -j "$(nproc)"
mkdir -p build-fuzz/crashes
for fuzzer in build-fuzz/tests/fuzz/fuzz_*; do
  [[ -x "$fuzzer" ]] || continue
  name=$(basename "$fuzzer")
  corpus=build-fuzz/corpus/$name
  mkdir -p "$corpus"
  echo "== $name (${seconds}s)"
  "$fuzzer" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix=build-fuzz/crashes/ \
    "$corpus" tests/fuzz/seeds/"$name" 2>&1 | grep -E '^(stat::number_of_executed_units|==|INFO: Done|SUMMARY)' || true
  if ls build-fuzz/crashes/ | grep -q .; then
    echo "fuzzer $name found a crash: build-fuzz/crashes/" >&2
    exit 1
  fi
done
echo "fuzzing: all targets ran without a crash"
