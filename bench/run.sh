#!/usr/bin/env bash
# bench/run.sh: the gateway's benchmark, one command from a fresh clone:
#
#   bench/run.sh
#
# It builds the gateway (cmd/caddy), the upstream (bench/upstream) and the
# helper (bench/tool), starts its own upstream, redis-server and gateways on
# free 127.0.0.1 ports, measures every row with wrk, and writes the table to
# bench/results/<date>-<commit>.md (and prints it). Nothing leaves 127.0.0.1.
# Not part of the tests. Knobs (environment):
#   BENCH_DURATION=3      seconds per run          BENCH_RUNS=10     runs per row
#   BENCH_CONNECTIONS=32  wrk connections          BENCH_MAX_RUNS=20 runs when noisy
#   BENCH_SPREAD=15       % spread that repeats    BENCH_BIG=500000  grants (2 tokens each)
#   BENCH_MEMLIMIT=960MiB GOMEMLIMIT of the second 1M file-store run
#   BENCH_OUT=bench/results/<date>-<commit>.md
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

DURATION=${BENCH_DURATION:-3}
RUNS=${BENCH_RUNS:-10}
MAX_RUNS=${BENCH_MAX_RUNS:-20}
CONNS=${BENCH_CONNECTIONS:-32}
SPREAD=${BENCH_SPREAD:-15}
BIG=${BENCH_BIG:-500000}
MEMLIMIT=${BENCH_MEMLIMIT:-960MiB}
SMALL=500
DATE=$(date -u +%Y-%m-%d)
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
OUT=${BENCH_OUT:-$ROOT/bench/results/$DATE-$COMMIT.md}
PROF=${OUT%.md}.profiles
SECRET=bench-secret-$RANDOM$RANDOM
export BENCH_CLIENT_SECRET=$SECRET
BASIC="Basic $(printf 'bench:%s' "$SECRET" | base64 -w0)"

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
log() { printf '[bench %s] %s\n' "$(date -u +%T)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# --- tools -----------------------------------------------------------------
need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v taskset >/dev/null 2>&1 || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
	log "installing: ${need[*]}"
	sudo=""
	[ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

W=$(mktemp -d /tmp/caddyoauth-bench.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$W"
}
trap cleanup EXIT

log "building into $W/bin"
mkdir -p "$W/bin" "$PROF"
go build -o "$W/bin/caddy" ./cmd/caddy
go build -o "$W/bin/upstream" ./bench/upstream
go build -o "$W/bin/tool" ./bench/tool
CADDY=$W/bin/caddy TOOL=$W/bin/tool

# Two cores or more: the gateway gets CPU 0 to itself; wrk, the upstream and
# Redis share CPU 1. The gateway is then the bottleneck of every row, which
# is what the ratios are about.
if [ "$(nproc)" -ge 2 ]; then
	GW_CPU=(taskset -c 0) LOAD_CPU=(taskset -c 1)
	PINNING="gateway on CPU 0; wrk, upstream and redis-server on CPU 1"
else
	GW_CPU=() LOAD_CPU=()
	PINNING="none (one CPU)"
fi
TCK=$(getconf CLK_TCK)

port() { "$TOOL" port; }
# wait_http URL: poll until something answers (any status), 120 s deadline.
wait_http() {
	local deadline=$((SECONDS + 120))
	until curl -s -o /dev/null --max-time 1 "$1"; do
		[ $SECONDS -lt $deadline ] || die "nothing answers at $1"
		sleep 0.02
	done
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_mib() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
size_mib() { du -m --apparent-size "$1" | cut -f1; }
stop() { # stop PID: SIGTERM (Caddy stops gracefully and closes its store), wait
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# --- upstream and Redis ----------------------------------------------------
UP=$(port)
"${LOAD_CPU[@]}" "$W/bin/upstream" -listen "127.0.0.1:$UP" &
PIDS+=($!)
wait_http "http://127.0.0.1:$UP/"

REDIS_PORT=$(port)
"${LOAD_CPU[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
	--dir "$W" --logfile "$W/redis.log" &
PIDS+=($!)
REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
deadline=$((SECONDS + 30))
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do
	[ $SECONDS -lt $deadline ] || die "redis-server did not start"
	sleep 0.05
done

# --- gateways --------------------------------------------------------------
# caddyfile NAME STORE [EXTRA_OAUTH_LINES]: writes $W/NAME.caddyfile with
# three sites: a bare reverse_proxy, oauth_server + oauth_protect +
# reverse_proxy (the token endpoint is there too), and a bare respond. Every
# reverse_proxy has the same transport settings.
caddyfile() {
	local name=$1 store=$2 extra=${3:-}
	eval "ADMIN_$name=$(port) BARE_$name=$(port) PROT_$name=$(port) RESP_$name=$(port) HDRS_$name=$(port)"
	local a=ADMIN_$name b=BARE_$name p=PROT_$name r=RESP_$name k=HDRS_$name
	cat >"$W/$name.caddyfile" <<EOF
{
	admin 127.0.0.1:${!a}
	persist_config off
	default_bind 127.0.0.1
	oauth {
		store $store
		$extra
		# The limiter stays on, so its cost is measured, but with a rate no
		# single-address load reaches (the default 20/s would answer 429).
		rate_limit {
			token 10000000/s burst 10000000
		}
		client bench {
			secret {env.BENCH_CLIENT_SECRET}
			grants client_credentials refresh_token password
			scopes read write
			default_scope read
			user bench-user
		}
	}
}

(upstream) {
	reverse_proxy 127.0.0.1:$UP {
		transport http {
			keepalive 60s
			keepalive_idle_conns_per_host 128
		}
	}
}

http://127.0.0.1:${!b} {
	import upstream
}

http://127.0.0.1:${!p} {
	oauth_server
	oauth_protect {
		scope read
	}
	import upstream
}

http://127.0.0.1:${!r} {
	respond "ok"
}

# Row k: no authentication, but the upstream gets what oauth_protect sends
# it (the three identity headers, no Authorization), set inside the proxy.
http://127.0.0.1:${!k} {
	reverse_proxy 127.0.0.1:$UP {
		header_up X-User-ID bench-user
		header_up X-OAuth-Client-ID bench
		header_up X-OAuth-Scope read
		header_up -Authorization
		transport http {
			keepalive 60s
			keepalive_idle_conns_per_host 128
		}
	}
}
EOF
}

# start_gateway NAME: runs the gateway pinned, sets GW_PID and STARTUP (s
# from exec to the first answer of its protected site).
start_gateway() {
	local name=$1 p=PROT_$1 t0
	t0=$(date +%s.%N)
	"${GW_CPU[@]}" "$CADDY" run --config "$W/$name.caddyfile" --adapter caddyfile >>"$W/$name.log" 2>&1 &
	GW_PID=$!
	PIDS+=($GW_PID)
	wait_http "http://127.0.0.1:${!p}/"
	STARTUP=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}')
}

# token NAME: a fresh client_credentials access token from gateway NAME.
token() {
	local p=PROT_$1
	curl -sf -u "bench:$SECRET" -d grant_type=client_credentials "http://127.0.0.1:${!p}/oauth/token" |
		sed -E 's/.*"access_token":"([^"]+)".*/\1/'
}

# expect WHAT GOT WANT: a row's curl check.
expect() {
	[ "$2" = "$3" ] || die "check of $1: got '$2', want '$3'"
}

# check_protected NAME TOKEN: the upstream must see the token's user, and a
# request without a token must be refused.
check_protected() {
	local p=PROT_$1 body code
	body=$(curl -s -H "Authorization: Bearer $2" -H "X-User-ID: forged" "http://127.0.0.1:${!p}/")
	expect "$1 protected" "$body" "user=bench-user"
	code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${!p}/")
	expect "$1 without token" "$code" "401"
}

# check_token_endpoint NAME: a client_credentials token that validates.
check_token_endpoint() {
	local t
	t=$(token "$1")
	[ ${#t} -ge 43 ] || die "token endpoint of $1 issued no token"
	check_protected "$1" "$t"
}

# Rows are measured in interleaved rounds: each round runs every row once,
# so a noisy neighbour on this shared machine hits a row and its ceiling
# alike, and each ratio is taken within a round. After RUNS rounds, more
# (up to MAX_RUNS) run while some row's ratio (or requests/s, for a row
# without ceiling) spreads by more than SPREAD %. Per row: medians over the
# rounds of requests/s, latencies, CPU, ratio, p99 added; non-2xx summed.
mkdir -p "$W/rows"
declare -A R_PID R_URL R_CEIL R_BEFORE # R_BEFORE[ID]: a command run before each run of the row
# row_def ID PID URL CEILING [VAR=value...]: the variables configure bench.lua.
row_def() {
	local id=$1
	R_PID[$id]=$2 R_URL[$id]=$3 R_CEIL[$id]=$4
	shift 4
	eval "ENV_$id=(\"\$@\")"
	: >"$W/rows/$id.runs"
}
# wrk_row ID SECONDS: one wrk run of the row; prints its RESULT line.
wrk_row() {
	local -n envs=ENV_$1
	env "${envs[@]}" "${LOAD_CPU[@]}" wrk -t1 -c"$CONNS" -d"$2s" --timeout 5s \
		-s "$ROOT/bench/wrk/bench.lua" "${R_URL[$1]}" | grep '^RESULT' || true
}
# run_once ID: appends "rps p50_ms p99_ms cpu_s_per_1k non2xx" to its runs.
run_once() {
	local pid=${R_PID[$1]} c0 c1 res
	c0=$(ticks "$pid")
	res=$(wrk_row "$1" "$DURATION")
	c1=$(ticks "$pid")
	[ -n "$res" ] || die "wrk printed no result for row $1"
	echo "$res" | awk -v c0="$c0" -v c1="$c1" -v tck="$TCK" '{
		req = $2; dur = $3 / 1e6
		printf "%.0f %.3f %.3f %.4f %d\n", req / dur, $4 / 1000, $5 / 1000, (c1 - c0) / tck / req * 1000, $6 + $7
	}' >>"$W/rows/$1.runs"
}
# series ID: the per-round values the spread is judged on.
series() {
	local c=${R_CEIL[$1]}
	if [ -n "$c" ]; then
		paste -d' ' "$W/rows/$1.runs" "$W/rows/$c.runs" | awk '{print $1 / $6}'
	else
		cut -d' ' -f1 "$W/rows/$1.runs"
	fi
}
median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
spread_of() { series "$1" | sort -g | awk '{v[NR] = $1} END {m = v[int((NR + 1) / 2)]; printf "%.0f", (v[NR] - v[1]) / m * 100}'; }
# rounds ID...: warm-up, then rounds until the spread settles. Short runs
# in many rounds: two identical gateways measured in alternating runs
# differ by up to 7 % from one run to the next on this kind of machine,
# and the median of many short pairs settles where that of a few long ones
# does not. Every other round runs the rows in reverse order, so no row
# always runs right after its ceiling.
rounds() {
	local n=0 id s worst order
	for id in "$@"; do wrk_row "$id" 2 >/dev/null; done
	while :; do
		order=("$@")
		if [ $((n % 2)) -eq 1 ]; then
			order=()
			for id in "$@"; do order=("$id" "${order[@]}"); done
		fi
		for id in "${order[@]}"; do
			[ -z "${R_BEFORE[$id]:-}" ] || ${R_BEFORE[$id]}
			run_once "$id"
		done
		n=$((n + 1))
		[ $n -ge "$RUNS" ] || continue
		worst=0
		for id in "$@"; do
			s=$(spread_of "$id")
			[ "$s" -le "$worst" ] || worst=$s
		done
		if [ "$worst" -le "$SPREAD" ] || [ $n -ge "$MAX_RUNS" ]; then break; fi
		log "spread ${worst}% after $n rounds of $*: another round"
	done
	for id in "$@"; do summarize "$id" "$n"; done
}
# summarize ID ROUNDS: $W/rows/ID =
#   rps p50 p99 cpu non2xx rounds ratio p99_added cpu_ratio
summarize() {
	local id=$1 f="$W/rows/$1.runs" c=${R_CEIL[$1]} col ratio="" added="" cpur=""
	for col in 1 2 3 4; do printf '%s ' "$(cut -d' ' -f$col "$f" | median)"; done >"$W/rows/$id"
	if [ -n "$c" ]; then
		ratio=$(series "$id" | median)
		added=$(paste -d' ' "$f" "$W/rows/$c.runs" | awk '{printf "%.3f\n", $3 - $8}' | median)
		cpur=$(paste -d' ' "$f" "$W/rows/$c.runs" | awk '{print $9 / $4}' | median)
	fi
	awk -v n="$2" -v r="${ratio:-0}" -v a="${added:-0}" -v q="${cpur:-0}" \
		'{s += $5} END {printf "%d %d %.3f %.3f %.3f\n", s, n, r, a, q}' "$f" >>"$W/rows/$id"
	log "row $id: $(cat "$W/rows/$id") (rps p50 p99 cpu/1k non2xx rounds ratio p99+ cpu-ratio)"
}

# profile ID ADMIN [SECONDS]: a CPU profile (5 s by default) of the gateway
# under the row's load (a run of its own, not counted in the table). The
# full cumulative listing stays in $W for share below.
profile() {
	local secs=${3:-5}
	curl -s -o "$PROF/$1.pprof" "http://127.0.0.1:$2/debug/pprof/profile?seconds=$secs" &
	local cp=$!
	wrk_row "$1" $((secs + 1)) >/dev/null
	wait $cp
	go tool pprof -top -nodecount=40 "$CADDY" "$PROF/$1.pprof" >"$PROF/$1.top.txt" 2>/dev/null || true
	go tool pprof -top -cum -nodecount=60 "$CADDY" "$PROF/$1.pprof" >"$PROF/$1.cum.txt" 2>/dev/null || true
	go tool pprof -top -cum -nodecount=100000 "$CADDY" "$PROF/$1.pprof" >"$W/$1.cumall" 2>/dev/null || true
}
# share ID FUNC: the cumulative % of the gateway's CPU that function FUNC
# (a regular expression matched against the whole name) takes in row ID's
# profile; 0 when it does not appear.
share() {
	F="^$2\$" awk '{n = $6; for (i = 7; i <= NF; i++) n = n " " $i; sub(/ [(]inline[)]$/, "", n)}
		n ~ ENVIRON["F"] {sub(/%/, "", $5); print $5; found = 1; exit}
		END {if (!found) print 0}' "$W/$1.cumall"
}

NOT_AVAILABLE=()

# --- the gateways of rows a-j, all running, each checked before its row ----
UPA=$(port) # (a): a second upstream, on the gateway's CPU
"${GW_CPU[@]}" "$W/bin/upstream" -listen "127.0.0.1:$UPA" &
UPA_PID=$!
PIDS+=($UPA_PID)
wait_http "http://127.0.0.1:$UPA/"
expect "a" "$(curl -s "http://127.0.0.1:$UPA/")" "user="
row_def a "$UPA_PID" "http://127.0.0.1:$UPA/" ""

# (b) bare reverse_proxy, (c) protect + memory store, (j) bare respond.
caddyfile mem memory
start_gateway mem
MEM_PID=$GW_PID
expect "b" "$(curl -s -H 'X-User-ID: forged' "http://127.0.0.1:$BARE_mem/")" "user=forged"
expect "k" "$(curl -s -H 'Authorization: Bearer x' "http://127.0.0.1:$HDRS_mem/")" "user=bench-user"
TOK=$(token mem)
check_protected mem "$TOK"
# b, k and c-f all receive one request, the client's Authorization header
# included: what a client sends does not change with what guards the API,
# so the ratios compare what the gateway adds to the same request. (b and
# k forward it or drop it as configured; oauth_protect consumes it.)
row_def b "$MEM_PID" "http://127.0.0.1:$BARE_mem/" "" BENCH_AUTH="Bearer $TOK"
row_def c "$MEM_PID" "http://127.0.0.1:$PROT_mem/" b BENCH_AUTH="Bearer $TOK"
row_def k "$MEM_PID" "http://127.0.0.1:$HDRS_mem/" b BENCH_AUTH="Bearer $TOK"
expect "j" "$(curl -s "http://127.0.0.1:$RESP_mem/")" "ok"
row_def j "$MEM_PID" "http://127.0.0.1:$RESP_mem/" ""

# (d) protect + file store, (g) client_credentials on the file store.
CC=(BENCH_METHOD=POST BENCH_BODY=grant_type=client_credentials "BENCH_AUTH=$BASIC")
caddyfile file "file $W/file.db"
start_gateway file
FILE_PID=$GW_PID
TOK=$(token file)
check_protected file "$TOK"
row_def d "$FILE_PID" "http://127.0.0.1:$PROT_file/" b BENCH_AUTH="Bearer $TOK"
# Row g gets a gateway and a file of its own: the tokens it issues (about a
# million over the rounds) would otherwise grow row d's store as it runs.
caddyfile fileg "file $W/fileg.db"
start_gateway fileg
FILEG_PID=$GW_PID
check_token_endpoint fileg
row_def g "$FILEG_PID" "http://127.0.0.1:$PROT_fileg/oauth/token" j "${CC[@]}"
# Every token row g issues stays in its store for the access_token_ttl (1 h),
# so over the rounds the store would grow to ~800,000 tokens and each round
# would measure issuance into a bigger store than the last (and its falling
# ratio would itself call for more rounds). Each run of g starts instead
# from an empty file store: what it measures is issuance into a store of
# the tokens one run writes. (The 1M section measures a big store.)
fresh_fileg() {
	stop "$FILEG_PID"
	rm -f "$W/fileg.db"
	start_gateway fileg
	FILEG_PID=$GW_PID R_PID[g]=$GW_PID
}
R_BEFORE[g]=fresh_fileg

# (e) protect + Redis store, (h) client_credentials on Redis.
caddyfile redis "redis $REDIS_URL"
start_gateway redis
REDIS_GW_PID=$GW_PID
TOK=$(token redis)
check_protected redis "$TOK"
row_def e "$REDIS_GW_PID" "http://127.0.0.1:$PROT_redis/" b BENCH_AUTH="Bearer $TOK"
check_token_endpoint redis
row_def h "$REDIS_GW_PID" "http://127.0.0.1:$PROT_redis/oauth/token" j "${CC[@]}"

# (l) row h with replicas_ack 1: a primary and a replica of their own on
# CPU 1 (row h's Redis has none), so every issuance waits for the replica's
# acknowledgement (WAIT) over loopback.
ACK_PORT=$(port) ACK_REPLICA_PORT=$(port)
for p in "$ACK_PORT" "$ACK_REPLICA_PORT"; do
	extra=()
	[ "$p" = "$ACK_PORT" ] || extra=(--replicaof 127.0.0.1 "$ACK_PORT")
	"${LOAD_CPU[@]}" redis-server --port "$p" --bind 127.0.0.1 --save "" --appendonly no \
		--repl-diskless-sync-delay 0 --dir "$W" --logfile "$W/redis-$p.log" "${extra[@]}" &
	PIDS+=($!)
done
deadline=$((SECONDS + 30))
until redis-cli -p "$ACK_PORT" info replication 2>/dev/null | grep -q "port=$ACK_REPLICA_PORT,state=online"; do
	[ $SECONDS -lt $deadline ] || die "the replica of row l did not come online"
	sleep 0.05
done
caddyfile redisack "redis redis://127.0.0.1:$ACK_PORT/0 {
			replicas_ack 1
		}"
start_gateway redisack
REDISACK_GW_PID=$GW_PID
check_token_endpoint redisack
row_def l "$REDISACK_GW_PID" "http://127.0.0.1:$PROT_redisack/oauth/token" j "${CC[@]}"

# (f) JWT access tokens, when this build supports token_format jwt.
ROWS=(a b k c d e)
caddyfile jwt "file $W/jwt.db" "token_format jwt"
if "$CADDY" adapt --config "$W/jwt.caddyfile" --adapter caddyfile >/dev/null 2>&1 && start_gateway jwt; then
	JWT_PID=$GW_PID
	TOK=$(token jwt)
	check_protected jwt "$TOK"
	row_def f "$JWT_PID" "http://127.0.0.1:$PROT_jwt/" b BENCH_AUTH="Bearer $TOK"
	ROWS+=(f)
else
	log "row f: token_format jwt is not available in this build"
	NOT_AVAILABLE+=(f)
fi

# (i) refresh_token grant with rotation on (the default): every request
# presents a refresh token never used before. Each wrk connection starts
# from a token minted beforehand into the file store (bench/tool, through
# authz.Service.IssueTokens) and goes on with the new refresh token each
# response hands out, as a client does; a connection whose chain ends
# (a run stops with requests in flight) starts again from an unused minted
# token, so no token is ever presented twice.
MINT=$((CONNS * (MAX_RUNS * 10 + 20) + 1000))
log "row i: minting $MINT refresh tokens"
"$TOOL" seed -file "$W/refresh.db" -grants "$MINT" -users 1000 -refresh-out "$W/refresh.txt" -sample 0
tail -n +2 "$W/refresh.txt" >"$W/refresh-load.txt"
caddyfile refresh "file $W/refresh.db"
start_gateway refresh
REFRESH_PID=$GW_PID
RT=$(head -1 "$W/refresh.txt")
body=$(curl -s -H "Authorization: $BASIC" -d grant_type=refresh_token -d "refresh_token=$RT" "http://127.0.0.1:$PROT_refresh/oauth/token")
case $body in *'"refresh_token":"'*) ;; *) die "check of i: refresh answered $body" ;; esac
row_def i "$REFRESH_PID" "http://127.0.0.1:$PROT_refresh/oauth/token" j BENCH_MODE=refresh \
	BENCH_TOKENS="$W/refresh-load.txt" BENCH_STATE="$W/refresh.pos" "BENCH_AUTH=$BASIC"
ROWS+=(g h l i j)

# (m, n) client authentication under a bcrypt flood: an attacker who knows
# the client_id of a client configured with secret_hash (bcrypt, cost 14 as
# `caddy hash-password` makes it) posts wrong secrets to /oauth/introspect
# from its own address (127.0.0.2) at that endpoint's per-address limit
# (100 a second, the default), while
# row n measures a good client's token issuance on the same gateway; row m
# is the same issuance with no attacker, its ceiling.
VICTIM_HASH=$("$CADDY" hash-password --plaintext "victim-$RANDOM$RANDOM")
caddyfile flood memory "client victim {
			secret_hash $VICTIM_HASH
			grants client_credentials
			scopes read
		}"
start_gateway flood
FLOOD_PID=$GW_PID
check_token_endpoint flood
row_def m "$FLOOD_PID" "http://127.0.0.1:$PROT_flood/oauth/token" j "${CC[@]}"
row_def n "$FLOOD_PID" "http://127.0.0.1:$PROT_flood/oauth/token" m "${CC[@]}"
ATTACK_PID=""
wait_attack() { [ -z "$ATTACK_PID" ] || wait "$ATTACK_PID" 2>/dev/null || true; ATTACK_PID=""; }
start_attack() {
	wait_attack
	"${LOAD_CPU[@]}" "$TOOL" attack -url "http://127.0.0.1:$PROT_flood/oauth/introspect" -client victim \
		-duration "${DURATION}s" -source 127.0.0.2 >>"$W/attack.log" 2>&1 &
	ATTACK_PID=$!
}
R_BEFORE[n]=start_attack
R_BEFORE[m]=wait_attack
ROWS+=(m n)

# (o) a DPoP-bound token (RFC 9449) with an ES256 proof per request, each
# with its own jti, on a gateway of its own (memory store), so the proofs'
# replay records stay out of row c's. bench/tool makes the key, gets the
# token from the token endpoint with a proof, and writes the proofs, one a
# line, right before each run: a proof is good for 60 s (proof_max_age).
# A run sends at most 15,000 a second; a proof sent twice would be refused
# and void the row.
caddyfile dpop memory
start_gateway dpop
DPOP_PID=$GW_PID
DPOP_TOK=$("$TOOL" dpop-token -key "$W/dpop.key" -url "http://127.0.0.1:$PROT_dpop/oauth/token" -client bench -secret "$SECRET")
dpop_proofs() { # dpop_proofs [SECONDS]: proofs for a run of SECONDS (default: a row's run)
	"${LOAD_CPU[@]}" "$TOOL" dpop-proofs -key "$W/dpop.key" -token "$DPOP_TOK" -url "http://127.0.0.1:$PROT_dpop/" \
		-n $((${1:-$DURATION} * 15000)) -out "$W/dpop.proofs"
}
dpop_proofs 1
P1=$(head -1 "$W/dpop.proofs")
expect "o" "$(curl -s -H "Authorization: DPoP $DPOP_TOK" -H "DPoP: $P1" -H 'X-User-ID: forged' "http://127.0.0.1:$PROT_dpop/")" "user=bench-user"
expect "o, a proof sent again" "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: DPoP $DPOP_TOK" -H "DPoP: $P1" "http://127.0.0.1:$PROT_dpop/")" "401"
expect "o, the token as a bearer token" "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $DPOP_TOK" "http://127.0.0.1:$PROT_dpop/")" "401"
dpop_proofs
row_def o "$DPOP_PID" "http://127.0.0.1:$PROT_dpop/" b BENCH_MODE=dpop BENCH_TOKENS="$W/dpop.proofs" "BENCH_AUTH=DPoP $DPOP_TOK"
R_BEFORE[o]=dpop_proofs
ROWS+=(o)

log "rows ${ROWS[*]}: $RUNS to $MAX_RUNS rounds of ${DURATION} s each"
rounds "${ROWS[@]}"
[ "$(cat "$W/refresh.pos")" -le "$(wc -l <"$W/refresh-load.txt")" ] || die "row i ran out of fresh refresh tokens"
fresh_fileg
# b, k and c run 10 s each: their profiles are compared function by
# function below, so they need more samples than the others.
for id in b k c; do profile "$id" "$ADMIN_mem" 10; done
for id in d g h; do profile "$id" "$(case $id in d) echo "$ADMIN_file" ;; g) echo "$ADMIN_fileg" ;; h) echo "$ADMIN_redis" ;; esac)"; done
dpop_proofs 7
profile o "$ADMIN_dpop"
wait_attack
for pid in "$DPOP_PID" "$FLOOD_PID" "$MEM_PID" "$FILE_PID" "$FILEG_PID" "$REDIS_GW_PID" "$REDISACK_GW_PID" "$REFRESH_PID" "$UPA_PID" ${JWT_PID:-}; do stop "$pid"; done

# --- 1,000,000 live tokens -------------------------------------------------
declare -A BIGV
check_seeded() { # check_seeded NAME: the first seeded token reaches the upstream as its user
	local p=PROT_$1 t body
	t=$(head -1 "$W/$1.tok")
	body=$(curl -s -H "Authorization: Bearer $t" "http://127.0.0.1:${!p}/")
	case $body in user=user-*) ;; *) die "check of seeded tokens ($1): got '$body'" ;; esac
}
# Validation rows walk the seeded access tokens of their gateway.
validation_row() { # validation_row ID NAME PID CEILING
	local p=PROT_$2
	row_def "$1" "$3" "http://127.0.0.1:${!p}/" "$4" BENCH_TOKENS="$W/$2.tok"
}

log "1M: seeding $BIG grants ($((BIG * 2)) tokens) into the file store"
t0=$SECONDS
"$TOOL" seed -file "$W/big.db" -grants "$BIG" -access-out "$W/big.tok" -compact=false
BIGV[seed_file_s]=$((SECONDS - t0))
BIGV[file_log_mib]=$(size_mib "$W/big.db")
caddyfile big "file $W/big.db"
start_gateway big
BIGV[startup_log]=$STARTUP
check_seeded big
BIGV[rss_file_log]=$(rss_mib "$GW_PID")
t0=$(date +%s.%N)
stop "$GW_PID"
BIGV[stop_s]=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
BIGV[file_compact_mib]=$(size_mib "$W/big.db")
start_gateway big
BIGV[startup_compact]=$STARTUP
BIG_PID=$GW_PID
log "1M file: start-up ${BIGV[startup_log]} s (append log), $STARTUP s (compacted)"
"$TOOL" seed -file "$W/small.db" -grants "$SMALL" -access-out "$W/small.tok"
caddyfile small "file $W/small.db"
start_gateway small
SMALL_PID=$GW_PID
check_seeded small
validation_row vbigf big "$BIG_PID" vsmallf
validation_row vsmallf small "$SMALL_PID" ""
rounds vbigf vsmallf
BIGV[rss_file]=$(rss_mib "$BIG_PID")
BIGV[rss_file_small]=$(rss_mib "$SMALL_PID")
curl -s -o "$PROF/1m-file-heap.pprof" "http://127.0.0.1:$ADMIN_big/debug/pprof/heap"
go tool pprof -top -sample_index=inuse_space -nodecount=25 "$CADDY" "$PROF/1m-file-heap.pprof" >"$PROF/1m-file-heap.top.txt" 2>/dev/null || true
stop "$BIG_PID"
# The same gateway under the soft memory limit the README recommends for a
# large file store: Go's GC then keeps the heap under it instead of letting
# it grow to twice the live data. Measured against the 1k gateway again.
GOMEMLIMIT=$MEMLIMIT start_gateway big
BIGM_PID=$GW_PID
validation_row vbigfm big "$BIGM_PID" vsmallfm
validation_row vsmallfm small "$SMALL_PID" ""
rounds vbigfm vsmallfm
BIGV[rss_file_limit]=$(rss_mib "$BIGM_PID")
stop "$BIGM_PID"
stop "$SMALL_PID"
rm -f "$W/big.db"

log "1M: seeding $BIG grants into Redis (database 1; 1k tokens in database 2)"
redis-cli -p "$REDIS_PORT" flushall >/dev/null
"$TOOL" seed -redis "${REDIS_URL%/0}/2" -grants "$SMALL" -access-out "$W/smallr.tok"
m0=$(redis-cli -p "$REDIS_PORT" info memory | awk -F: '/^used_memory:/ {print $2 + 0}')
t0=$SECONDS
"$TOOL" seed -redis "${REDIS_URL%/0}/1" -grants "$BIG" -access-out "$W/bigr.tok" -workers 64
BIGV[seed_redis_s]=$((SECONDS - t0))
BIGV[redis_mib]=$(redis-cli -p "$REDIS_PORT" info memory | awk -F: -v m0="$m0" '/^used_memory:/ {printf "%.0f", ($2 - m0) / 1048576}')
BIGV[redis_keys]=$(redis-cli -p "$REDIS_PORT" -n 1 dbsize)
caddyfile bigr "redis ${REDIS_URL%/0}/1"
start_gateway bigr
BIGR_PID=$GW_PID
check_seeded bigr
caddyfile smallr "redis ${REDIS_URL%/0}/2"
start_gateway smallr
SMALLR_PID=$GW_PID
check_seeded smallr
validation_row vbigr bigr "$BIGR_PID" vsmallr
validation_row vsmallr smallr "$SMALLR_PID" ""
rounds vbigr vsmallr
BIGV[rss_redis]=$(rss_mib "$BIGR_PID")
stop "$BIGR_PID"
stop "$SMALLR_PID"

# --- expired tokens leave the file store without a restart -----------------
caddyfile exp "file $W/exp.db" "access_token_ttl 5s"
start_gateway exp
EXP_PID=$GW_PID
for _ in $(seq 200); do token exp >/dev/null; done
read -r -a before <<<"$("$TOOL" aof "$W/exp.db")"
t0=$SECONDS
while :; do
	read -r -a after <<<"$("$TOOL" aof "$W/exp.db")"
	[ "${after[2]}" = "at=0" ] && break
	[ $((SECONDS - t0)) -lt 30 ] || break
	sleep 0.2
done
EXPIRY="issued 200 access tokens (access_token_ttl 5s): the file held ${before[2]#at=} live access-token records; $((SECONDS - t0)) s later it held ${after[2]#at=}, with ${after[1]#dels=} deletes appended by the running gateway (same process, pid $EXP_PID, never restarted)"
[ "${after[2]}" = "at=0" ] && EXPIRY_OK=yes || EXPIRY_OK=no
log "expiry: $EXPIRY"
stop "$EXP_PID"

# --- report ----------------------------------------------------------------
col() { cut -d' ' -f"$2" "$W/rows/$1"; }
verdict() { # verdict ROW MIN_RATIO [P99_MAX_ADDED]
	local ok
	ok=$(awk -v r="$(col "$1" 7)" -v m="$2" 'BEGIN {print (r >= m) ? "yes" : "no"}')
	if [ -n "${3:-}" ]; then
		ok=$(awk -v ok="$ok" -v a="$(col "$1" 8)" -v m="$3" 'BEGIN {print (ok == "yes" && a <= m) ? "yes" : "no"}')
	fi
	[ "$(col "$1" 5)" = 0 ] || ok="VOID (non-2xx)"
	echo "$ok"
}
line() { # line ID LABEL TARGET VERDICT
	if [ ! -f "$W/rows/$1" ]; then
		echo "| $1 | $2 | not available | | | | | | | $3 | |"
		return
	fi
	local r="" a="" q=""
	if [ -n "${R_CEIL[$1]}" ]; then r=$(col "$1" 7) q=$(col "$1" 9); fi
	if [ "${R_CEIL[$1]}" = b ]; then a=" ($(col "$1" 8 | awk '{printf "%+.2f", $1}'))"; fi
	echo "| $1 | $2 | $(col "$1" 1) | $(col "$1" 2) | $(col "$1" 3)$a | $(col "$1" 4) | $r | $q | $(col "$1" 5) | $3 | $4 |"
}
vcmp() { # p50 and req/s of a 1M row against its 1k row (medians of per-round ratios)
	awk -v a="$(col "$1" 2)" -v b="$(col "$2" 2)" -v r="$(col "$1" 7)" \
		'BEGIN {d = (a / b - 1) * 100; printf "p50 %+.0f%%, req/s %+.0f%%: %s", d, (r - 1) * 100, (d <= 10 && r >= 0.9) ? "yes" : "no"}'
}
ver_f="not available"
if [ -f "$W/rows/f" ]; then ver_f=$(verdict f 0.90 0.3); fi
# missed ROW:VERDICT...: the rows whose verdict is not yes, or "none".
missed() {
	local out="" rv
	for rv in "$@"; do [ "${rv#*:}" = yes ] || out+="${out:+, }${rv%%:*}"; done
	echo "${out:-none}"
}
MISS_PROT=$(missed "c:$(verdict c 0.95 0.3)" "d:$(verdict d 0.95 0.3)" "e:$(verdict e 0.90 0.3)" "f:$ver_f")
MISS_ISSUE=$(missed "g:$(verdict g 0.25)" "h:$(verdict h 0.15)")
MISS_FLOOD=$(missed "n:$(verdict n 0.90)")
MISS_DPOP=$(missed "o:$(verdict o 0.45)")
MISS_BIG=$(missed \
	"start-up:$(awk -v s="${BIGV[startup_compact]}" 'BEGIN {print (s <= 5) ? "yes" : "no"}')" \
	"RSS:$(awk -v s="${BIGV[rss_file]}" -v t="${BIGV[rss_file_log]}" 'BEGIN {print (s <= 1024 && t <= 1024) ? "yes" : "no"}')" \
	"file-store validation:$(vcmp vbigf vsmallf | sed 's/.*: //')" \
	"Redis validation:$(vcmp vbigr vsmallr | sed 's/.*: //')" \
	"expiry:$EXPIRY_OK")
target_line() { # target_line NAME MISSED EXPLANATION
	if [ "$2" = none ]; then echo "- $1: met."; else echo "- $1: **missed** by $2. $3"; fi
}

{
	echo "# Benchmark $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "Command: \`bench/run.sh\` (commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ', with local changes'))."
	echo
	echo "Machine: $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) memory, Linux $(uname -r), $(go version | cut -d' ' -f3-), load average before the run: $LOAD0."
	echo "Pinning: $PINNING. wrk: 1 thread, $CONNS connections, ${DURATION} s per run after a 2 s warm-up. Rows run in interleaved rounds (each round runs every row once, every other round in reverse order, so noise from other processes on this shared machine hits a row and its ceiling alike); $RUNS rounds, up to $MAX_RUNS while a row's ratio spreads by more than $SPREAD %; every figure is the median over the rounds, ratios taken within each round."
	echo "Rows b, k and c-f receive the same request: a GET with the client's \`Authorization: Bearer\` header, which b forwards, k drops and oauth_protect consumes."
	echo "Latency in ms. CPU = user+system seconds of the gateway process (of the upstream in row a) per 1,000 requests. ratio = requests/s over the ceiling's: (b) for proxied rows, (j) for token rows; CPU ratio = the ceiling's CPU per request over the row's, the same comparison by cost rather than by throughput, and much less disturbed by other processes. non-2xx counts wrk's non-2xx/3xx responses and socket errors over all rounds: a row with any is void."
	echo
	echo "| Row | Setup | req/s | p50 | p99 (added to b) | CPU s/1k | ratio | CPU ratio | non-2xx | Target | Met |"
	echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"
	line a "upstream direct" "" ""
	line b "bare reverse_proxy" "ceiling of c-f" ""
	line k "bare reverse_proxy, header_up sets the 3 identity headers (what c-f send upstream, no authentication)" "" ""
	line c "oauth_protect + reverse_proxy, memory store" "≥ 0.95, p99 +≤ 0.3" "$(verdict c 0.95 0.3)"
	line d "oauth_protect + reverse_proxy, file store" "≥ 0.95, p99 +≤ 0.3" "$(verdict d 0.95 0.3)"
	line e "oauth_protect + reverse_proxy, Redis store" "≥ 0.90, p99 +≤ 0.3" "$(verdict e 0.90 0.3)"
	line f "oauth_protect + reverse_proxy, JWT access tokens" "≥ 0.90, p99 +≤ 0.3" "$ver_f"
	line g "POST /oauth/token client_credentials, file store" "≥ 0.25 of j" "$(verdict g 0.25)"
	line h "POST /oauth/token client_credentials, Redis store" "≥ 0.15 of j" "$(verdict h 0.15)"
	line l "POST /oauth/token client_credentials, Redis store with replicas_ack 1 (a replica on loopback)" "" ""
	line i "POST /oauth/token refresh_token (rotation on), file store" "" ""
	line j "bare respond" "ceiling of g-i, l and m" ""
	line m "POST /oauth/token client_credentials, memory store, beside a secret_hash client" "" ""
	line n "the same as m, while an attacker sends wrong secrets for the secret_hash client" "≥ 0.90 of m" "$(verdict n 0.90)"
	line o "oauth_protect + reverse_proxy, memory store, a DPoP-bound token with an ES256 proof per request" "≥ 0.45 of b" "$(verdict o 0.45)"
	echo
	echo "Row k sends the upstream exactly what c-f send it, with no authentication: its ratio is what forwarding the three identity headers costs Caddy's reverse_proxy. Against k (medians of requests/s): $(for id in c d e f; do [ -f "$W/rows/$id" ] && awk -v id="$id" -v r="$(col "$id" 1)" -v k="$(col k 1)" 'BEGIN {printf "%s %.3f  ", id, r / k}'; done)."
	echo
	echo "### Where the gateway's CPU goes in rows b, k and c"
	echo
	echo "From 10 s CPU profiles taken under each row's load (\`b.pprof\`, \`k.pprof\`, \`c.pprof\`): µs of the gateway's CPU per request = the function's cumulative share of the profile × the row's CPU per request in the table above. A profile has about 1,000 samples, so a share of a few per cent is good to about ±0.7 % of the CPU (one standard error), about ±0.4 µs."
	echo
	echo "| µs of CPU per request | b | k | c |"
	echo "| --- | ---: | ---: | ---: |"
	echo "| the whole gateway (CPU s/1k above) | $(for id in b k c; do printf '%s | ' "$(col "$id" 4 | awk '{printf "%.1f", $1 * 1000}')"; done)"
	echo "| oauth_server and oauth_protect's own work (\`caddyoauth.(*Server).ServeHTTP\` minus the \`reverse_proxy\` it calls) | 0 | 0 | $(awk -v o="$(share c 'github\.com/caddyoauth/gateway/caddyoauth\.\(\*Server\)\.ServeHTTP')" -v r="$(share c 'github\.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy\.\(\*Handler\)\.ServeHTTP')" -v c="$(col c 4)" 'BEGIN {printf "%.1f", (o - r) * c * 10}') |"
	for fn in 'go\.uber\.org/zap\.\(\*Logger\)\.With|reverse_proxy'"'"'s per-request logger (`zap.(*Logger).With`): encodes the request and every header it forwards, at any log level' \
		'net/http\.Header\.Clone|the request headers cloned for the upstream (`net/http.Header.Clone`)' \
		'net/http\.Header\.writeSubset|headers written, to the upstream and to the client (`net/http.Header.writeSubset`)' \
		'runtime\.gcBgMarkWorker|GC marking (`runtime.gcBgMarkWorker`)'; do
		printf '| %s | ' "${fn#*|}"
		for id in b k c; do printf '%s | ' "$(awk -v s="$(share "$id" "${fn%%|*}")" -v c="$(col "$id" 4)" 'BEGIN {printf "%.1f", s * c * 10}')"; done
		echo
	done
	echo
	echo "Per request, by the CPU ratio column (the ceiling's CPU per request over the row's, median of the rounds), c costs $(awk -v b="$(col b 4)" -v q="$(col c 9)" 'BEGIN {printf "%.1f", b * (1 / q - 1) * 1000}') µs of CPU more than b, and k, which authenticates nothing and only forwards the same three headers, $(awk -v b="$(col b 4)" -v q="$(col k 9)" 'BEGIN {printf "%.1f", b * (1 / q - 1) * 1000}') µs more."
	echo
	echo "Row g starts each run from an empty file store (its gateway restarted on a new file), so every round measures issuance into the same store: the tokens one ${DURATION} s run writes, not the tokens of all earlier rounds as well."
	echo
	echo "Row l is row h on a Redis primary with one replica (both on CPU 1) and \`replicas_ack 1\`: every issuance waits until the replica has acknowledged its writes (WAIT after them, on the same connection). Against h: $(awk -v l="$(col l 7)" -v h="$(col h 7)" 'BEGIN {printf "%.2f", l / h}') of its requests/s (their ratios to j), p50 $(col l 2) ms against $(col h 2) ms, gateway CPU $(col l 4) s against $(col h 4) s per 1,000 tokens."
	echo
	echo "Row i presents a refresh token never used before on every request (rotation on, the default): each connection chains the refresh tokens the responses hand out, starting from one of $MINT minted into the store beforehand with bench/tool through authz.Service.IssueTokens."
	echo
	echo "Rows m and n: the attacker (bench/tool attack, 8 connections from 127.0.0.2 at 100 requests a second, introspection's per-address limit, on the load CPU) posted wrong secrets for a client whose secret is a bcrypt hash (cost 14) to /oauth/introspect during every run of row n: median $(cut -d' ' -f1 "$W/attack.log" | median) requests a run; the gateway's answers in the last run (status:count): $(tail -1 "$W/attack.log" | cut -d' ' -f2)."
	echo
	echo "Row o sends a DPoP-bound access token (\`Authorization: DPoP\`) with a new ES256 proof on every request (\`DPoP\` header, its own jti, the token's ath), made by bench/tool right before each run; the gateway checks one signature and writes one replay record a request. Its gateway is of its own (memory store, the replay records in memory). Against c: $(awk -v o="$(col o 7)" -v c="$(col c 7)" 'BEGIN {printf "%.2f", o / c}') of its requests/s; CPU $(col o 4) s against $(col c 4) s per 1,000 requests (profile o.pprof)."
	[ ${#NOT_AVAILABLE[@]} -eq 0 ] || echo "Row f: this build does not accept \`token_format jwt\` (\`caddy adapt\` fails), so it was not measured."
	echo
	echo "## 1,000,000 live tokens"
	echo
	echo "$((BIG * 2)) tokens = $BIG grants of an access and a refresh token each (the password grant's records, the user's set included), over 10,000 users, written by bench/tool through authz.Service.IssueTokens. Validation rows walk 10,000 of the seeded access tokens (the 1k rows: all $SMALL), the 1M and the 1k gateway running side by side in interleaved rounds. Redis size = used_memory added by the 1M tokens."
	echo
	echo "| Measure | File store | Redis store | Target | Met |"
	echo "| --- | ---: | ---: | --- | --- |"
	echo "| seeding time | ${BIGV[seed_file_s]} s | ${BIGV[seed_redis_s]} s | | |"
	echo "| size on disk / in Redis | ${BIGV[file_log_mib]} MiB as written, ${BIGV[file_compact_mib]} MiB compacted | ${BIGV[redis_mib]} MiB used_memory, ${BIGV[redis_keys]} keys | | |"
	echo "| start-up, compacted file (after a clean stop, or buntdb's auto-shrink) | ${BIGV[startup_compact]} s | | ≤ 5 s | $(awk -v s="${BIGV[startup_compact]}" 'BEGIN {print (s <= 5) ? "yes" : "no"}') |"
	echo "| start-up, uncompacted append log (after a crash) | ${BIGV[startup_log]} s | | | |"
	echo "| clean stop (compacts the file) | ${BIGV[stop_s]} s | | | |"
	echo "| gateway RSS after validation load | ${BIGV[rss_file]} MiB (${BIGV[rss_file_log]} MiB after the first start; ${BIGV[rss_file_small]} MiB with 1k tokens) | ${BIGV[rss_redis]} MiB | ≤ 1024 MiB | $(awk -v s="${BIGV[rss_file]}" -v t="${BIGV[rss_file_log]}" 'BEGIN {print (s <= 1024 && t <= 1024) ? "yes" : "no"}') |"
	echo "| the same with GOMEMLIMIT=$MEMLIMIT (README: "A large file store"): RSS after validation load; validation 1M against 1k | ${BIGV[rss_file_limit]} MiB; $(vcmp vbigfm vsmallfm) | | ≤ 1024 MiB and within 10 % | $(awk -v s="${BIGV[rss_file_limit]}" -v v="$(vcmp vbigfm vsmallfm)" 'BEGIN {print (s <= 1024 && v ~ /: yes$/) ? "yes (with the limit)" : "no"}') |"
	echo "| validation req/s, p50, p99 (1M) | $(col vbigf 1), $(col vbigf 2), $(col vbigf 3) ms | $(col vbigr 1), $(col vbigr 2), $(col vbigr 3) ms | | |"
	echo "| validation req/s, p50, p99 (1k) | $(col vsmallf 1), $(col vsmallf 2), $(col vsmallf 3) ms | $(col vsmallr 1), $(col vsmallr 2), $(col vsmallr 3) ms | | |"
	echo "| 1M against 1k (interleaved rounds) | $(vcmp vbigf vsmallf) | $(vcmp vbigr vsmallr) | within 10 % | |"
	echo "| non-2xx (validation rows) | $(($(col vbigf 5) + $(col vsmallf 5))) | $(($(col vbigr 5) + $(col vsmallr 5))) | 0 | |"
	echo "| expired tokens removed without a restart | $EXPIRY_OK | (Redis expires keys itself) | yes | $EXPIRY_OK |"
	echo
	echo "Expiry check: $EXPIRY."
	echo
	echo "In-use heap of the 1M file-store gateway (\`1m-file-heap.top.txt\`), the records buntdb holds in memory:"
	echo
	echo '```'
	grep -E 'buntdb|btree|total' "$PROF/1m-file-heap.top.txt" | head -4
	echo '```'
	echo
	echo "## Targets"
	echo
	target_line "Protected requests (c and d ≥ 0.95 of b, e and f ≥ 0.90, p99 added ≤ 0.3 ms)" "$MISS_PROT" "What these rows cost over b is in \"Where the gateway's CPU goes in rows b, k and c\", and row k is the same forwarding without authentication."
	target_line "Token issuance (g ≥ 0.25 of j, h ≥ 0.15)" "$MISS_ISSUE" "See the profiles g.pprof and h.pprof."
	target_line "Client authentication under a bcrypt flood (n ≥ 0.90 of m)" "$MISS_FLOOD" "See attack.log."
	target_line "DPoP-bound tokens (o ≥ 0.45 of b)" "$MISS_DPOP" "See the profile o.pprof: the proof's ECDSA verification against the rest."
	target_line "1,000,000 live tokens (file store start-up ≤ 5 s, RSS ≤ 1 GiB, validation within 10 % of 1,000 tokens, expired tokens removed without a restart)" "$MISS_BIG" "See the heap profile 1m-file-heap.pprof."
	echo
	echo "CPU profiles (10 s under the load of rows b, k, c; 5 s under d, g, h, o) and the heap of the gateway holding 1M tokens in the file store: \`$(basename "$PROF")/\` (\`go tool pprof -top\` output in *.top.txt and *.cum.txt)."
} >"$OUT"
cat "$OUT"
