#!/usr/bin/env bash
# The benchmarks (bench/, issue 6): sfncopy against rclone, the AWS CLI and the 2018 design on one local S3.
# Installs its tools (the locked venv with the AWS CLI; rclone from Debian's packages), then runs
# `python -m bench` with any arguments given here (e.g. --quick, --only balance,planner).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
if ! command -v rclone >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq rclone >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq rclone >/dev/null; }
fi
export PIPENV_VENV_IN_PROJECT=1 PIPENV_VERBOSITY=-1
python3 -m pipenv run python -m bench "$@"
