#!/usr/bin/env bash
# Runs every SDK example against a fresh `complianceiq dev` (embedded: SQLite, in-process bus
# and cache, its demo's ServiceNow simulator), as `make test` does. Each example signs up,
# creates an organization, connects the simulator, syncs and reads analysis results.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
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

echo "==> Rust SDK: examples/quickstart.rs"
CIQ_ENDPOINT="http://127.0.0.1:$((8080 + offset))" CIQ_MAILBOX="$data/mailbox" \
  CIQ_SIMULATOR_URL="http://127.0.0.1:$((8090 + offset))" \
  timeout 300 "$target/debug/examples/quickstart" || { tail -50 "$data/platform.log"; exit 1; }
