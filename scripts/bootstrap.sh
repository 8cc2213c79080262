#!/usr/bin/env bash
# Installs what sfncopy needs on a fresh machine: pipenv, then the locked environment in ./.venv with sfncopy
# itself. A no-op (well under a second) while .venv matches Pipfile.lock and pyproject.toml, so every script
# calls it and an environment left from an older lock is brought up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIPENV_VENV_IN_PROJECT=1 PIPENV_NOSPIN=1 PIPENV_YES=1 PIPENV_VERBOSITY=-1
stamp=.venv/.sfncopy-installed
wanted="$(cat Pipfile.lock pyproject.toml | sha256sum | cut -d' ' -f1)"
if [[ -x .venv/bin/sfncopy && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
  exit 0
fi
python3 -m pipenv --version >/dev/null 2>&1 || python3 -m pip install --quiet --disable-pip-version-check pipenv
python3 -m pipenv sync --dev >/dev/null
python3 -m pipenv run pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . >/dev/null
echo "$wanted" >"$stamp"
