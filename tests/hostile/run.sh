#!/usr/bin/env bash
# The hostile-peer suite (test_hostile.py): real js-libp2p peers attack a real node.
#   run.sh                      every test
#   run.sh SybilTest            one class (or Class.test_name); several may be given
# Env: AGENTNETWORK_BIN (the binary; default build/src/agentnetwork). Exit code = test result.
# The js side has its own package.json and lock with the versions of tests/interop (its lock
# pruned to what is needed here), installed here with `npm ci` when missing or older than the
# lock: the suite and the soak benchmark then neither depend on nor race with the install in
# tests/interop, and ES modules find their packages next to the script.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "hostile: node and npm are required (Node.js >= 20)" >&2
  exit 1
fi
if [ ! -d node_modules ] || [ ! -f node_modules/.package-lock.json ] \
   || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

# The system interpreter, as for the functional tests (tests/CMakeLists.txt).
python=${AN_TEST_PYTHON:-python3}
if [ $# -eq 0 ]; then
  exec "$python" -m unittest -v test_hostile
fi
exec "$python" -m unittest -v "${@/#/test_hostile.}"
