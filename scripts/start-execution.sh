#!/usr/bin/env bash
# Usage: scripts/start-execution.sh ENV CONFIG.json
# Starts an execution of the ENV stack's state machine with CONFIG.json and waits for its result.
set -euo pipefail
if [[ $# -ne 2 ]]; then
  echo "usage: $0 ENV CONFIG.json" >&2
  exit 2
fi
config="$2"
[[ "$config" == /* ]] || config="$PWD/$config"  # the CLI runs from the repository root
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh  # the locked environment (a no-op when it is current)
exec .venv/bin/sfncopy start-execution "$config" --env "$1" --wait
