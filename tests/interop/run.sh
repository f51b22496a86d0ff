#!/usr/bin/env bash
# js-libp2p interop tests: run_interop.mjs (connections, streams), run_interop_dht_relay.mjs
# (Kademlia DHT, circuit relay v2), run_interop_daan.mjs (/daan messaging and discovery) and
# run_interop_pubsub.mjs (gossipsub).
# Env: AN_P2P_TOOL (our C++ peer tool; unset = js<->js), AGENTNETWORK_BIN (our daemon; unset =
# daemon cases skipped, and the DHT/relay and /daan cases run js<->js). Exit code = test result.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "interop: node and npm are required (Node.js >= 20)" >&2
  exit 1
fi

# Install the pinned dependencies when missing or when the lock file changed since.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ] \
   || [ ! -f node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

exec node --import ./polyfill.mjs --test --test-concurrency=1 --test-reporter=spec run_interop.mjs run_interop_dht_relay.mjs run_interop_daan.mjs run_interop_pubsub.mjs "$@"
