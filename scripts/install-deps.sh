#!/usr/bin/env bash
# Installs the Debian 12 packages needed to build agentnetwork (and, with --test, to test it).
# Runs `apt-get update` once, then installs only what is missing.
set -euo pipefail

packages=(build-essential cmake ninja-build ccache pkg-config libssl-dev libasio-dev
          libspdlog-dev libfmt-dev nlohmann-json3-dev libexpected-dev libsqlite3-dev
          libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc)
if [[ "${1:-}" == "--test" ]]; then
  packages+=(libgtest-dev libgmock-dev python3 clang-format procps clang-14 libfuzzer-14-dev)
  # The interoperability tests run js-libp2p on Node.js (20 or newer; npm comes with it).
  packages+=(nodejs)
  # The control API's tests and its example client use Debian's Python gRPC.
  packages+=(python3-grpcio python3-protobuf)
  # The daemon layer's Windows build (MinGW-w64, GoogleTest from source) and Wine to run it.
  packages+=(g++-mingw-w64-x86-64-posix googletest wine64)
  # The packaging test runs the installed logrotate rules against a node.
  packages+=(logrotate)
  # The soak benchmark (bench/soak_bench.py, also a CTest test) plots RSS, descriptors and ping
  # latency over time.
  packages+=(python3-matplotlib)
fi

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  sudo=(sudo)
fi
echo "Installing: ${missing[*]}"
"${sudo[@]}" apt-get update
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
