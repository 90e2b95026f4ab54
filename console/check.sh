#!/usr/bin/env bash
# The console as `make test` checks it (sdk/check.sh calls this):
#   console/check.sh          its types check and console/dist is what its sources build to
#                             (the gateway embeds dist/, so a stale copy would ship);
#   console/check.sh e2e URL  the browser test against a running `complianceiq dev` at URL
#                             (CIQ_MAILBOX and CIQ_SIMULATOR_URL as for the SDK examples).
set -euo pipefail
cd "$(dirname "$0")"
chromium="${CIQ_CHROMIUM:-/usr/bin/chromium}"

if [ "${1:-}" = "e2e" ]; then
  if [ ! -x "$chromium" ]; then
    # CI installs it (.ci/run); elsewhere the test says what it needs rather than failing.
    if [ -n "${CI:-}" ]; then echo "no Chromium at $chromium: install Debian's chromium package"; exit 1; fi
    echo "note: skipping the console's browser test: no Chromium at $chromium (apt-get install chromium)"
    exit 0
  fi
  CIQ_CONSOLE_URL="$2" CIQ_CHROMIUM="$chromium" node e2e/console.e2e.mjs
  exit 0
fi

echo "==> console: types check, and console/dist matches its sources"
[ -d ../sdk/typescript/node_modules ] || npm ci --prefix ../sdk/typescript --no-audit --no-fund --silent
npm ci --no-audit --no-fund --silent
node_modules/.bin/tsc -p .
fresh="$(mktemp -d -t ciq-console-XXXXXX)"
trap 'rm -rf "$fresh"' EXIT
node build.mjs "$fresh"
if ! diff -r dist "$fresh" >/dev/null; then
  diff -rq dist "$fresh" || true
  echo "console/dist is stale against console/src: run make console (and commit dist/)"
  exit 1
fi
