#!/usr/bin/env bash
# Regenerates schedules.pb, the descriptor set of schedules.proto (with its
# imports, the well-known types protoc ships with). The end-to-end tests of
# slate enrich and slate sink read it, and their server is built from it:
# no Go code is generated.
#
# Usage: bash cmd/slate/testdata/generate.sh
# (or go generate ./cmd/slate). Set PROTOC to use another binary.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
protoc="${PROTOC:-protoc}"
if ! command -v "$protoc" >/dev/null 2>&1; then
	echo "generate.sh: $protoc not found; install protoc (apt-get install protobuf-compiler)" >&2
	exit 1
fi
"$protoc" --proto_path=. --include_imports --descriptor_set_out=schedules.pb schedules.proto
