#!/usr/bin/env bash
# The benchmarks (bench/, issue 6): sfncopy against rclone, the AWS CLI and the 2018 design on one local S3.
# Installs its tools (the locked venv with the AWS CLI; rclone from Debian's packages), then runs
# `python -m bench` with any arguments given here (e.g. --quick, --only balance,planner).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
if ! command -v rclone >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  as_root=(); [[ "$(id -u)" -eq 0 ]] || as_root=(sudo)  # Debian's packages need root
  "${as_root[@]}" apt-get install -y -qq rclone >/dev/null 2>&1 ||
    { "${as_root[@]}" apt-get update -qq && "${as_root[@]}" apt-get install -y -qq rclone >/dev/null; }
fi
exec .venv/bin/python -m bench "$@"
