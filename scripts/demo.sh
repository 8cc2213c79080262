#!/usr/bin/env bash
# The README's first command: install what sfncopy needs (pipenv, the locked environment, sfncopy itself),
# then run the embedded default end to end: emulator, demo data, deploy, copy, verify (sfncopy demo --help).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
export PIPENV_VENV_IN_PROJECT=1 PIPENV_VERBOSITY=-1
.venv/bin/sfncopy demo "$@"
