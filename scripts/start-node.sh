#!/usr/bin/env bash
# Builds agentnetwork and starts a node in ./data, then shows its status.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAN_BUILD_TESTS=OFF
cmake --build build --target agentnetwork
build/src/agentnetwork start "$@"
build/src/agentnetwork status "$@"
