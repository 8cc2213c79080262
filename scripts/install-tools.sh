#!/usr/bin/env bash
# Installs the tools the tests run besides the venv:
# - the independent validators (asl-validator, from npm) into tools/node/node_modules, exactly as
#   tools/node/package-lock.json pins them (needs Node 20 and npm);
# - Debian's chromium, which opens the HTML report headless (tests/e2e/test_report_html.py), with apt-get
#   when running as root (CI); otherwise that test is skipped and says why.
# Each step is a no-op while its install is there, like bootstrap.sh.
set -euo pipefail
cd "$(dirname "$0")/../tools/node"
stamp=node_modules/.sfncopy-installed
wanted="$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)"
if [[ ! -x node_modules/.bin/asl-validator || ! -f "$stamp" || "$(cat "$stamp")" != "$wanted" ]]; then
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
  echo "$wanted" >"$stamp"
fi
if ! command -v chromium >/dev/null; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "install-tools: chromium is not installed and this is not root with apt-get: the browser test is skipped" >&2
  fi
fi
