#!/usr/bin/env bash
# Installs what sfncopy needs on a fresh machine: pipenv, then the locked environment in ./.venv.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIPENV_VENV_IN_PROJECT=1 PIPENV_NOSPIN=1 PIPENV_YES=1 PIPENV_VERBOSITY=-1
command -v pipenv >/dev/null 2>&1 || python3 -m pip install --quiet --disable-pip-version-check pipenv
python3 -m pipenv sync --dev >/dev/null
python3 -m pipenv run pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . >/dev/null
