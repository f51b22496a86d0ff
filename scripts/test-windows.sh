#!/usr/bin/env bash
# Cross-builds the daemon layer, its unit tests and the lifecycle tests for 64-bit Windows with
# MinGW-w64 and runs them under Wine (docs/platforms.md). Part of scripts/test.sh; runs alone
# too, after `scripts/install-deps.sh --test`.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${1:-build-windows}
wine=/usr/lib/wine/wine64
wineserver=/usr/lib/wine/wineserver64

# A Wine prefix of the build's own, so that tests never depend on or change the user's ~/.wine;
# Mono and Gecko are not needed and not offered.
mkdir -p "$dir"
export WINEPREFIX=$PWD/$dir/wine-prefix
export WINEDEBUG=-all
export WINEDLLOVERRIDES="mscoree,mshtml="
export WINESERVER=$wineserver
stop_wineserver() { "$wineserver" -k 2>/dev/null || true; }
trap stop_wineserver EXIT

echo "== wine prefix $WINEPREFIX"
timeout 300 "$wine" wineboot --init

echo "== build $dir (MinGW-w64, daemon layer only)"
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAN_DAEMON_ONLY=ON -DAN_WERROR=ON \
  -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/mingw-w64-x86_64.cmake
cmake --build "$dir" -j "$(nproc)"

echo "== test $dir (under Wine)"
ctest --test-dir "$dir" --output-on-failure -j "$(nproc)" --timeout 300
