#!/usr/bin/env bash
# Runs every test of the project. It installs what the tests need when it is
# missing (redis-server and redis-cli for the Redis store, Chromium for the
# browser tests, Node.js and npm for the DPoP interop client and the
# accessibility checks with axe-core; Debian packages), then runs gofmt,
# go vet, the whole test suite with the race detector, and a short run of
# every fuzz target.
# The tests start their own redis-server processes on free loopback ports,
# Sentinels included (redis-server --sentinel: no other package needed).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
	echo "installing: ${need[*]}"
	sudo=""
	[ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The DPoP interop client (oauth4webapi) needs Node.js 20 or later.
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
	echo "Node.js 20 or later is needed for the DPoP interop test; this one is $(node --version): install a newer nodejs (e.g. from nodesource)"
	exit 1
fi

unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" $unformatted
	exit 1
fi
go vet ./...

go test -race -count=1 -timeout 14m ./...

# A short run of each fuzz target; `make fuzz` runs them longer. A failing
# input is saved under the package's testdata/fuzz/ and printed. The fuzz
# engine can also stop on a worker that stalled (this machine is small and
# shared): such a run is reported, then judged by replaying the target's
# corpus, which holds any input the engine saved, so a real failure still
# fails the run.
fuzztime=${FUZZTIME:-5s}
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
		echo "fuzz $pkg $target ($fuzztime)"
		if ! out=$(go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" 2>&1); then
			echo "$out" | tail -30
			echo "fuzz $target stopped; replaying its corpus"
			go test -count=1 -run "^${target}\$" "$pkg"
		fi
	done
done
echo "all tests passed"
