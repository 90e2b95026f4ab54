#!/usr/bin/env bash
# The client SDKs as `make test` checks them: the TypeScript and Python SDKs' generated code
# current against proto/, their unit tests (Python's on the installed package), then every
# example against a fresh `complianceiq dev` (embedded: SQLite, in-process bus and cache, its
# demo's ServiceNow simulator): each signs up, creates an organization, connects the
# simulator, syncs and reads analysis results; then the web console (console/check.sh), whose
# browser test runs against the same platform. (The Rust SDK's unit tests are the workspace's.)
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
venv=.tools/sdk-venv
export GRPC_VERBOSITY=ERROR

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    grpcio-tools==1.85.1 grpcio==1.85.1 protobuf==7.36.2 googleapis-common-protos==1.76.0
fi
[ "${1:-}" = "--venv-only" ] && exit 0

echo "==> TypeScript SDK: generated code current against proto/, unit tests"
npm ci --prefix sdk/typescript --no-audit --no-fund --silent
fresh="$(mktemp -d -t ciq-sdk-gen-XXXXXX)"
sdk/typescript/node_modules/.bin/buf generate -o "$fresh"
if ! diff -r sdk/typescript/src/gen "$fresh/sdk/typescript/src/gen" >/dev/null; then
  diff -r sdk/typescript/src/gen "$fresh/sdk/typescript/src/gen" | head -20
  echo "sdk/typescript/src/gen is stale: run make sdk-generate"
  exit 1
fi
rm -rf "$fresh"
npm test --prefix sdk/typescript --silent

echo "==> Python SDK: generated code current against proto/"
fresh="$(mktemp -d -t ciq-sdk-gen-XXXXXX)"
sdk/python/generate.sh "$venv/bin/python" "$fresh"
if ! diff -r sdk/python/src/complianceiq "$fresh/complianceiq" >/dev/null; then
  diff -r sdk/python/src/complianceiq "$fresh/complianceiq" | head -20
  echo "sdk/python/src/complianceiq is stale: run make sdk-generate"
  exit 1
fi
rm -rf "$fresh"

echo "==> Python SDK: unit tests on the installed package"
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --force-reinstall ./sdk/python
(cd sdk/python/tests && "../../../$venv/bin/python" -m unittest -q test_client)

console/check.sh

cargo build -q --bin complianceiq
cargo build -q -p complianceiq-sdk --example quickstart

# Ports away from `make run` (8001..9090), the REST fuzzing (+22000) and the ephemeral range.
offset=21000
data="$(mktemp -d -t ciq-sdk-examples-XXXXXX)"
CIQ_DATA_DIR="$data" CIQ_PORT_OFFSET="$offset" CIQ_LOG=warn "$target/debug/complianceiq" dev \
  >"$data/platform.log" 2>&1 &
platform=$!
trap 'kill "$platform" 2>/dev/null; wait "$platform" 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 240); do
  grep -q "ComplianceIQ is running" "$data/platform.log" && break
  kill -0 "$platform" 2>/dev/null || { cat "$data/platform.log"; echo "complianceiq dev exited"; exit 1; }
  sleep 0.25
done
grep -q "ComplianceIQ is running" "$data/platform.log" || { cat "$data/platform.log"; echo "not ready in 60 s"; exit 1; }
export CIQ_MAILBOX="$data/mailbox" CIQ_SIMULATOR_URL="http://127.0.0.1:$((8090 + offset))"

echo "==> Rust SDK: examples/quickstart.rs"
CIQ_ENDPOINT="http://127.0.0.1:$((8080 + offset))" timeout 300 "$target/debug/examples/quickstart" \
  || { tail -50 "$data/platform.log"; exit 1; }

echo "==> TypeScript SDK: examples/quickstart.ts (grpc-web)"
CIQ_ENDPOINT="http://127.0.0.1:$((8080 + offset))" timeout 300 node sdk/typescript/dist/examples/quickstart.js \
  || { tail -50 "$data/platform.log"; exit 1; }

echo "==> Python SDK: examples/quickstart.py"
CIQ_ENDPOINT="127.0.0.1:$((8080 + offset))" timeout 300 "$venv/bin/python" sdk/python/examples/quickstart.py \
  || { tail -50 "$data/platform.log"; exit 1; }

echo "==> console: end to end in Chromium (console/e2e/console.e2e.mjs)"
# Mailed links name localhost (the platform's public URL), so the browser uses that origin.
CIQ_DEMO_FILE="$data/demo.json" CIQ_SCREENSHOTS="${CIQ_SCREENSHOTS:-}" timeout 600 console/check.sh e2e "http://localhost:$((8080 + offset))" \
  || { tail -50 "$data/platform.log"; exit 1; }
