#!/usr/bin/env bash
# The whole suite: pytest (unit, functional, e2e on the embedded emulator), cfn-lint, ruff, mypy. pytest also
# runs the independent validators (asl-validator, parliament: tests/unit/test_independent_checks.py).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
./scripts/install-tools.sh  # asl-validator, locked in tools/node/package-lock.json
export PATH="$PWD/.venv/bin:$PATH"  # the locked environment bootstrap.sh installed
ruff check lambdas generator sfncopy tests bench
mypy
cfn-lint cfn/*.json
pytest -n 2 --timeout 600 --durations=15 "$@"
