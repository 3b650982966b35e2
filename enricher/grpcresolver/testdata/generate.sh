#!/usr/bin/env bash
# Regenerates assets.pb, the descriptor set of assets.proto (with its
# imports, the well-known types protoc ships with). The tests read it, and
# their server is built from it: no Go code is generated.
#
# Usage: bash enricher/grpcresolver/testdata/generate.sh
# (or go generate ./enricher/grpcresolver). Set PROTOC to use another binary.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
protoc="${PROTOC:-protoc}"
if ! command -v "$protoc" >/dev/null 2>&1; then
	echo "generate.sh: $protoc not found; install protoc (apt-get install protobuf-compiler)" >&2
	exit 1
fi
"$protoc" --proto_path=. --include_imports --descriptor_set_out=assets.pb assets.proto
