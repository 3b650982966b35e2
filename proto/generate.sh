#!/usr/bin/env bash
# Regenerates the Go code of every .proto file under proto/.
#
# The protoc plugins are built from the versions pinned in go.mod (its tool
# block), so the output depends only on the repository and on protoc itself.
# The committed code was generated with protoc 3.21.12 (Debian's
# protobuf-compiler); set PROTOC to use another binary.
#
# Usage, from anywhere in the repository: bash proto/generate.sh
# (or go generate ./proto).
set -euo pipefail

proto_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$proto_dir")"
protoc="${PROTOC:-protoc}"
want_protoc="libprotoc 3.21.12"

if ! command -v "$protoc" >/dev/null 2>&1; then
	echo "generate.sh: $protoc not found; install protoc 3.21 (apt-get install protobuf-compiler)" >&2
	exit 1
fi
have_protoc="$("$protoc" --version)"
if [[ "$have_protoc" != "$want_protoc" ]]; then
	echo "generate.sh: warning: $have_protoc differs from $want_protoc; the version comment in generated files will change" >&2
fi

bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT

cd "$root"
go build -o "$bin/" \
	google.golang.org/protobuf/cmd/protoc-gen-go \
	google.golang.org/grpc/cmd/protoc-gen-go-grpc

cd "$proto_dir"
mapfile -t files < <(find . -name '*.proto' -type f | sed 's|^\./||' | LC_ALL=C sort)
if [[ ${#files[@]} -eq 0 ]]; then
	echo "generate.sh: no .proto files under $proto_dir" >&2
	exit 1
fi

"$protoc" \
	--proto_path=. \
	--plugin=protoc-gen-go="$bin/protoc-gen-go" \
	--plugin=protoc-gen-go-grpc="$bin/protoc-gen-go-grpc" \
	--go_out=. --go_opt=paths=source_relative \
	--go-grpc_out=. --go-grpc_opt=paths=source_relative \
	"${files[@]}"
