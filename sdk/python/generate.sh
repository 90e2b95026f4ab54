#!/usr/bin/env bash
# Generates the Python messages, type stubs and gRPC stubs of proto/complianceiq into
# sdk/python/src/complianceiq (checked in; `sdk/check.sh` fails when they are stale).
# The google.api and google.rpc files come from googleapis-common-protos at run time.
# usage: generate.sh PYTHON [OUT]   (PYTHON has grpcio-tools; OUT defaults to the package)
set -euo pipefail
cd "$(dirname "$0")/../.."
python="$1"
out="${2:-sdk/python/src}"
rm -rf "$out/complianceiq"
mkdir -p "$out"
mapfile -t files < <(find proto/complianceiq -name '*.proto' | sort)
"$python" -m grpc_tools.protoc -I proto --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" "${files[@]}"
find "$out/complianceiq" -type d -exec touch {}/__init__.py \;
