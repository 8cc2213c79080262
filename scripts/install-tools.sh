#!/usr/bin/env bash
# Installs the independent validators the tests run (asl-validator, from npm) into tools/node/node_modules,
# exactly as tools/node/package-lock.json pins them. A no-op while that install matches the lock file, like
# bootstrap.sh. Needs Node 20 and npm.
set -euo pipefail
cd "$(dirname "$0")/../tools/node"
stamp=node_modules/.sfncopy-installed
wanted="$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)"
if [[ -x node_modules/.bin/asl-validator && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
  exit 0
fi
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
echo "$wanted" >"$stamp"
