#!/usr/bin/env bash
# Fetches the GraphiQL page's third-party files from the npm registry, at
# the versions pinned below, checks each tarball against its pinned
# SHA-256, and writes the minified builds the page loads into this folder
# (graphql/graphiql.go embeds them). Run it after changing a version, then
# update the checksum it reports and commit the files.
#
#   bash graphql/assets/fetch.sh
set -euo pipefail
cd "$(dirname "$0")"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# name@version  sha256 of the npm tarball  file in the package -> file here
pkgs=(
  "graphiql@4.1.2    6aa9cb6d82e656d38b72991264f41545889881e8dc23059199be3b94fff2ad05 graphiql.min.js:graphiql.min.js graphiql.min.css:graphiql.min.css LICENSE:$tmp/LICENSE.graphiql"
  "react@18.3.1      8d9bed01a672e7eaf387942d781ad47c6a43089a30a0306060f9fd5ac7870347 umd/react.production.min.js:react.production.min.js LICENSE:$tmp/LICENSE.react"
  "react-dom@18.3.1  031d4427a99f2f3f6cac18bbbf308594a67e4f47d10f4896fdec446505b040e0 umd/react-dom.production.min.js:react-dom.production.min.js LICENSE:$tmp/LICENSE.react-dom"
)

for line in "${pkgs[@]}"; do
  read -r spec sum files <<<"$line"
  name=${spec%@*}
  (cd "$tmp" && npm pack --silent "$spec" >/dev/null)
  tgz=$tmp/$name-${spec##*@}.tgz
  got=$(sha256sum "$tgz" | cut -d' ' -f1)
  if [ "$got" != "$sum" ]; then
    echo "$spec: tarball sha256 $got, want $sum" >&2
    exit 1
  fi
  lic=$(cd "$tmp" && npm view --silent "$spec" license)
  if [ "$lic" != MIT ]; then
    echo "$spec: licence $lic, want MIT" >&2
    exit 1
  fi
  mkdir -p "$tmp/$name"
  tar -xzf "$tgz" -C "$tmp/$name"
  for f in $files; do
    # The source maps are not shipped: drop the comment pointing at them.
    sed -e '/^\/\/# sourceMappingURL=/d' "$tmp/$name/package/${f%%:*}" >"${f##*:}"
  done
  echo "$spec ($lic) ok"
done

{
  cat <<'HEAD'
The files graphiql.min.js, graphiql.min.css, react.production.min.js and
react-dom.production.min.js in this folder are the published builds of the
npm packages graphiql 4.1.2, react 18.3.1 and react-dom 18.3.1 (fetched by
fetch.sh; only the source map comment is removed), each under the MIT
licence below. graphiql.min.js is graphiql's own browser bundle, which
includes code of its npm dependencies (@graphiql/react, CodeMirror 5,
graphql-js, markdown-it, Radix UI and others). By their npm metadata, of
the 115 packages of graphiql 4.1.2's dependency tree 103 are MIT; the rest
are Apache-2.0 (react-aria and @internationalized/*, @react-stately,
@react-types/shared, @swc/helpers), BSD-2-Clause (entities), 0BSD (tslib)
and Python-2.0 (argparse, markdown-it's command line parser). graphql-js is
MIT. graphiql-init.js and page.css are part of slate.

HEAD
  for p in graphiql react react-dom; do
    printf '\n==== %s ====\n\n' "$p"
    cat "$tmp/LICENSE.$p"
  done
} >LICENSE
