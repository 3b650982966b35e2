#!/usr/bin/env bash
# Runs every fuzz target of the module, one at a time, each for FUZZTIME
# (default 10s) with -parallel 1, so that fuzzing shares the machine with
# other work. A target's seed corpus is its testdata/fuzz/<Target>/
# directory; the inputs the fuzzer finds interesting stay in Go's cache.
#
#	bash scripts/fuzz.sh                    # every target, 10s each
#	FUZZTIME=5m bash scripts/fuzz.sh        # a long run
#	bash scripts/fuzz.sh ./schema/registry  # only the targets of these packages
#
# It prints each target and its result (the fuzzer's last progress line),
# and exits non-zero when a target failed, naming the target and the
# crasher file the fuzzer wrote (re-run it with go test -run=<Target>/<file>).
set -uo pipefail
cd "$(dirname "$0")/.."

fuzztime=${FUZZTIME:-10s}
pkgs=("$@")
if [ ${#pkgs[@]} -eq 0 ]; then
  pkgs=(./...)
fi

# Every Fuzz function in a _test.go file, as "<package dir> <Target>".
targets=$(go list -f '{{.Dir}}' "${pkgs[@]}" | while read -r dir; do
  for f in "$dir"/*_test.go; do
    [ -e "$f" ] || continue
    sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(f \*testing\.F).*/\1/p' "$f" | while read -r fn; do
      echo "./${dir#"$PWD"/} $fn"
    done
  done
done | sort -u)

if [ -z "$targets" ]; then
  echo "fuzz: no fuzz targets in ${pkgs[*]}" >&2
  exit 1
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
failed=()
while read -r pkg fn; do
  echo "=== $fn ($pkg, $fuzztime)"
  go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$fuzztime" -parallel 1 "$pkg" >"$log" 2>&1
  rc=$?
  # The last progress line says how many inputs ran and how many were new
  # (its rate is that of the last few seconds: dropped).
  progress=$(grep -E '^fuzz: elapsed: .*execs: ' "$log" | tail -1 | sed 's| ([0-9]*/sec)||')
  if [ $rc -eq 0 ]; then
    echo "--- ok   $fn: ${progress#fuzz: }"
    continue
  fi
  # Go's fuzzing coordinator can end with a bare "context deadline
  # exceeded" when -fuzztime runs out while a worker is busy on a slow
  # input: no input failed and none is written. Then the seed corpus is
  # run again as a plain test, and if it passes the target passed.
  if ! grep -q 'Failing input written to' "$log" && grep -q '^    context deadline exceeded$' "$log" &&
    [ "$(grep -c -E '^\s+[a-z_]+\.go:[0-9]+:' "$log")" -eq 0 ] &&
    go test -run "^${fn}\$" "$pkg" >/dev/null 2>&1; then
    echo "--- ok   $fn: ${progress#fuzz: } (stopped at its deadline while a worker was busy; the corpus passes again)"
    continue
  fi
  cat "$log"
  crasher=$(sed -n 's/.*Failing input written to \(.*\)$/\1/p' "$log" | tail -1)
  if [ -z "$crasher" ]; then
    # An input already in the seed corpus failed before fuzzing began.
    seed=$(sed -n "s|^failure while testing seed corpus entry: ${fn}/\(.*\)$|\1|p" "$log" | head -1)
    if [ -n "$seed" ] && [ -e "$pkg/testdata/fuzz/$fn/$seed" ]; then
      crasher="testdata/fuzz/$fn/$seed"
    fi
  fi
  if [ -n "$crasher" ]; then
    crasher="$pkg/$crasher"
    echo "--- FAIL $fn: crasher $crasher"
    failed+=("$fn ($crasher)")
  else
    echo "--- FAIL $fn: exit $rc, no crasher written (see the output above)"
    failed+=("$fn (exit $rc)")
  fi
done <<<"$targets"

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${#failed[@]} target(s) failed:" >&2
  for f in "${failed[@]}"; do
    echo "  $f" >&2
  done
  exit 1
fi
echo "fuzz: every target passed ($fuzztime each)"
