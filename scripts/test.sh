#!/usr/bin/env bash
# The whole suite: pytest (unit, functional, e2e on the embedded emulator), cfn-lint, ruff, mypy.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"  # the locked environment bootstrap.sh installed
ruff check lambdas generator sfncopy tests bench
mypy
cfn-lint cfn/*.json
pytest -n 2 --timeout 600 --durations=15 "$@"
