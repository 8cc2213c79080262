#!/usr/bin/env bash
# Usage: scripts/deploy.sh ENV
# Packages, then creates or updates the ENV stack and prints its outputs (StateMachineArn among them).
# Re-running with nothing changed is a no-op. With ENV=local it deploys into the embedded emulator.
set -euo pipefail
if [[ $# -ne 1 ]]; then
  echo "usage: $0 ENV   (an environment of envs/ENV-env.sh: dev, uat, prod, local)" >&2
  exit 2
fi
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh  # the locked environment (a no-op when it is current)
exec .venv/bin/sfncopy deploy --env "$1"  # errors as one line, --debug for a traceback
