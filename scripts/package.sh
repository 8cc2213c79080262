#!/usr/bin/env bash
# Usage: scripts/package.sh ENV
# Regenerates cfn/ENV.json if envs/ENV-env.sh changed it, zips lambdas/ and uploads it to the package bucket.
set -euo pipefail
if [[ $# -ne 1 ]]; then
  echo "usage: $0 ENV   (an environment of envs/ENV-env.sh: dev, uat, prod, local)" >&2
  exit 2
fi
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh  # the locked environment (a no-op when it is current)
exec .venv/bin/sfncopy package --env "$1"
