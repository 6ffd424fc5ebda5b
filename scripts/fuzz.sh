#!/usr/bin/env bash
# Runs every native fuzz target (func FuzzX in a _test.go file) of the
# project for FUZZTIME each (default 60s); `make fuzz` calls it. New
# failing inputs land in the package's testdata/fuzz/ folder: commit them,
# and `go test` replays them from then on.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-60s}
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
		echo "fuzz $pkg $target ($fuzztime)"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
	done
done
