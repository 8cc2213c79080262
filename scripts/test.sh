#!/usr/bin/env bash
# The whole suite: pytest (unit, functional, e2e on the embedded emulator), cfn-lint, ruff, mypy.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
export PIPENV_VENV_IN_PROJECT=1 PIPENV_VERBOSITY=-1
python3 -m pipenv run ruff check lambdas generator sfncopy tests bench
python3 -m pipenv run mypy
python3 -m pipenv run cfn-lint cfn/*.json
python3 -m pipenv run pytest -n 2 --timeout 600 "$@"
