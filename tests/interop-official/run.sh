#!/usr/bin/env bash
# libp2p's official interop suite (@libp2p/interop) and the daemon-client test, both driven
# through the go-libp2p-daemon control protocol.
#   run.sh [suite]        suite.mjs: our `p2pd` in the suite's "go" slot, js-libp2p in "js"
#   run.sh daemon-client  daemon_client_test.mjs: the js daemon client against `agentnetwork start`
# Env: AGENTNETWORK_BIN (our binary; unset = js-libp2p in its place, js x js), and the INTEROP_*
# settings documented at the top of suite.mjs. Extra arguments go to node. Exit code = result.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "interop-official: node and npm are required (Node.js >= 20)" >&2
  exit 1
fi

# Install the pinned dependencies when missing or when the lock file changed since.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ] \
   || [ ! -f node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

mode="${1:-suite}"
[ $# -gt 0 ] && shift
case "$mode" in
  suite)
    exec node --import ./polyfill.mjs "$@" suite.mjs ;;
  daemon-client)
    exec node --import ./polyfill.mjs --test --test-concurrency=1 --test-reporter=spec "$@" daemon_client_test.mjs ;;
  *)
    echo "usage: run.sh [suite|daemon-client] [node options]" >&2
    exit 2 ;;
esac
