#!/usr/bin/env bash
# verifyd's Unix socket against Redis GET, on this machine, in one run.
#
# Starts redis-server on a Unix socket only (port 0, no persistence) and
# loads KEYS records, starts verifyd on a temporary store and socket and
# creates KEYS API keys with verifybench, then measures, alternately:
#
#   redis-benchmark -s SOCK -t get -r KEYS -c CONNS -P 1   (and -P 16)
#   verifybench --socket SOCK --mix opaque_hit=1 --conns CONNS --depth 1   (and 16)
#
# with the same number of requests on both sides, and prints throughput and
# p99 of each with the ratios verifyd/Redis against the targets (depth 1:
# at least 1.3x Redis's throughput with a p99 no worse; depth 16: at least
# 1.5x). Everything it starts is stopped on exit; the temporary directory
# is removed.
#
# Settings (environment): KEYS (1000000), CONNS (50), REQUESTS_P1 (2000000),
# REQUESTS_P16 (10000000), ROUNDS (3: each measurement is made that many
# times, alternating, and the medians are reported), WARMUP (2s,
# verifybench's warm-up), BIN (bin), GO (go), PROFILE (0; 1: after the
# measured runs, run each verifyd shape again under `perf record` and write
# the reports to bench/out/).
#
# Needs redis-server, redis-benchmark and redis-cli (Debian package
# redis-server), jq and curl; missing packages are installed with apt-get
# when running as root (their services are not started).
set -euo pipefail

KEYS=${KEYS:-1000000}
CONNS=${CONNS:-50}
REQUESTS_P1=${REQUESTS_P1:-2000000}
REQUESTS_P16=${REQUESTS_P16:-10000000}
WARMUP=${WARMUP:-2s}
BIN=${BIN:-bin}
GO=${GO:-go}
PROFILE=${PROFILE:-0}
ROUNDS=${ROUNDS:-3}

cd "$(dirname "$0")/.."
root=$PWD

NAME=bench-redis
# shellcheck source=bench/lib.sh
. bench/lib.sh
need_packages redis-server=redis-server redis-benchmark=redis-server redis-cli=redis-server jq=jq curl=curl
if [ "$PROFILE" = 1 ]; then
	command -v perf >/dev/null 2>&1 || die "PROFILE=1 needs perf (Debian: linux-perf)"
fi

# now: seconds since the epoch, with nanoseconds; since T0: seconds since T0.
now() { date +%s.%N; }
since() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.1f", a - b }'; }

# --- build ------------------------------------------------------------------
echo "bench-redis: building verifyd and verifybench into $BIN/"
"$GO" build -o "$BIN/" ./cmd/verifyd ./cmd/verifybench

# --- Redis ------------------------------------------------------------------
rsock=$tmp/redis.sock
redis-server --port 0 --unixsocket "$rsock" --unixsocketperm 700 --save '' --appendonly no \
	--dir "$tmp" --logfile "$tmp/redis.log" --daemonize no &
redis_pid=$!
pids+=($redis_pid)
wait_for "redis-server" redis-cli -s "$rsock" ping
# The records: the key names redis-benchmark -r asks for (key: and 12
# digits), 96-byte values, about the size of verifyd's answer to a hit.
load='for i = tonumber(ARGV[1]), tonumber(ARGV[2]) - 1 do
	redis.call("SET", string.format("key:%012d", i), string.format("%-96s", "verifybench-" .. i .. "|api_key|bench:data:*"))
end
return 1'
t0=$(now)
for ((s = 0; s < KEYS; s += 100000)); do
	e=$((s + 100000 < KEYS ? s + 100000 : KEYS))
	redis-cli -s "$rsock" EVAL "$load" 0 "$s" "$e" >/dev/null
done
redis_load=$(since "$t0")
[ "$(redis-cli -s "$rsock" DBSIZE)" = "$KEYS" ] || die "Redis holds $(redis-cli -s "$rsock" DBSIZE) keys, want $KEYS"
redis-cli -s "$rsock" CONFIG RESETSTAT >/dev/null

# --- verifyd ----------------------------------------------------------------
port=$(free_port)
vsock=$tmp/verifyd.sock
VERIFYD_ADMIN_KEY=$(new_admin_key)
export VERIFYD_ADMIN_KEY
# Every key fits in the cache (1M entries by default).
export VERIFYD_CACHE_ENTRIES=$((KEYS > 1048576 ? KEYS : 1048576))
"$BIN/verifyd" --data-dir "$tmp/data" --http-addr "127.0.0.1:$port" --socket "$vsock" >"$tmp/verifyd.log" 2>&1 &
vd_pid=$!
pids+=($vd_pid)
wait_for "verifyd (log: $tmp/verifyd.log)" curl -sf "http://127.0.0.1:$port/readyz"
t0=$(now)
"$BIN/verifybench" --socket "$vsock" --admin-addr "http://127.0.0.1:$port" --keys "$KEYS" \
	--setup-conns 64 --save-keys "$tmp/keys" --quiet
vd_load=$(since "$t0")

# --- measurements -----------------------------------------------------------
# cpu_of PID: the CPU time (user and system) process PID has used, in seconds.
cpu_of() { awk '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / 100 }' "/proc/$1/stat"; }
# redis_run P N: prints "req/s p99_µs server_cpu_µs client_cpu_µs" of
# redis-benchmark, the CPU times per request.
redis_run() {
	local c0 c1 client
	c0=$(cpu_of "$redis_pid")
	# times: the CPU time of the subshell's children, redis-benchmark.
	client=$( {
		redis-benchmark -s "$rsock" -t get -r "$KEYS" -c "$CONNS" -P "$1" -n "$2" --csv >"$tmp/redis.csv"
		times
	} | tail -1 | awk '{ gsub(/s/, ""); n = 0; for (i = 1; i <= 2; i++) { split($i, t, "m"); n += t[1] * 60 + t[2] } print n }')
	c1=$(cpu_of "$redis_pid")
	tail -1 "$tmp/redis.csv" | tr -d '"' | awk -F, -v n="$2" -v c0="$c0" -v c1="$c1" -v cli="$client" \
		'{ printf "%.0f %.1f %.2f %.2f\n", $2, $7 * 1000, (c1 - c0) * 1e6 / n, cli * 1e6 / n }'
}
# vd_run D N [verifybench flags]: prints "req/s p99_µs errors server_cpu_µs
# client_cpu_µs" of verifybench, the CPU times per request.
vd_run() {
	local d=$1 n=$2
	shift 2
	"$BIN/verifybench" --socket "$vsock" --keys-from "$tmp/keys" --mix opaque_hit=1 --conns "$CONNS" \
		--depth "$d" --requests "$n" --warmup "$WARMUP" --server-pid "$vd_pid" -o json --quiet "$@" >"$tmp/vd-$d.json" ||
		{ cat "$tmp/vd-$d.json" >&2; die "verifybench failed (depth $d)"; }
	jq -r '"\(.throughput) \(.latency_us.p99) \(.errors) \((.server_cpu_seconds // 0) * 1e6 / .requests) \(.client_cpu_seconds * 1e6 / .requests)"' "$tmp/vd-$d.json" |
		awk '{ printf "%.0f %.1f %d %.2f %.2f\n", $1, $2, $3, $4, $5 }'
}

# The shapes alternate, and so does which side goes first in a round, so
# that a change in the machine's load weighs on both sides alike.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$tmp/rounds"
for ((round = 1; round <= ROUNDS; round++)); do
	for d in 1 16; do
		n=$REQUESTS_P1
		[ "$d" = 16 ] && n=$REQUESTS_P16
		echo "bench-redis: round $round/$ROUNDS, depth $d, $n requests each"
		if ((round % 2)); then
			r=$(redis_run "$d" "$n")
			v=$(vd_run "$d" "$n")
		else
			v=$(vd_run "$d" "$n")
			r=$(redis_run "$d" "$n")
		fi
		# round depth, Redis: req/s p99 server-CPU client-CPU, verifyd: req/s p99 errors server-CPU client-CPU
		echo "$round $d $r $v" >>"$tmp/rounds"
	done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
misses=$(redis-cli -s "$rsock" INFO stats | tr -d '\r' | awk -F: '$1 == "keyspace_misses" { print $2 }')
hits=$(redis-cli -s "$rsock" INFO stats | tr -d '\r' | awk -F: '$1 == "keyspace_hits" { print $2 }')
vd_errors=$(awk '{ n += $9 } END { print n + 0 }' "$tmp/rounds")

if [ "$PROFILE" = 1 ]; then
	mkdir -p "$root/bench/out"
	for d in 1 16; do
		n=$REQUESTS_P1
		[ "$d" = 16 ] && n=$REQUESTS_P16
		echo "bench-redis: profiling verifyd at depth $d"
		perf record -q -F 999 -g -p "$vd_pid" -o "$tmp/perf-$d.data" >/dev/null 2>&1 &
		perf_pid=$!
		pids+=($perf_pid)
		vd_run "$d" "$n" >/dev/null
		kill -INT "$perf_pid"
		wait "$perf_pid" || true
		perf report -i "$tmp/perf-$d.data" --stdio --no-children --sort symbol -g none --percent-limit 0.5 2>/dev/null |
			grep -v '^$' >"$root/bench/out/redis-perf-depth$d.txt" || true
		perf report -i "$tmp/perf-$d.data" --stdio --children --sort symbol -g none --percent-limit 2 2>/dev/null |
			grep -v '^$' >"$root/bench/out/redis-perf-depth$d-children.txt" || true
	done
fi

# --- report -----------------------------------------------------------------
# median D COLUMN: the median over the rounds of a column of the rounds file.
median() {
	awk -v d="$1" -v c="$2" '$2 == d { print $c }' "$tmp/rounds" | sort -g |
		awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
verdict() { awk -v r="$1" -v t="$2" -v dir="$3" 'BEGIN { ok = (dir == ">=") ? r >= t : r <= t; printf "%s %s %s", (ok ? "met" : "MISSED:"), dir, t }'; }
# row LABEL D REQUESTS RPS_TARGET P99_TARGET: one line of the table, from the medians.
row() {
	local r rp v vp p99v=-
	r=$(median "$2" 3) rp=$(median "$2" 4) v=$(median "$2" 7) vp=$(median "$2" 8)
	[ "$5" = - ] || p99v=$(verdict "$(ratio "$vp" "$rp")" "$5" "<=")
	printf '%-9s %10s %12.0f %12.0f %6s  %-16s %9.0f µs %9.0f µs %6s  %s\n' "$1" "$3" "$r" "$v" \
		"$(ratio "$v" "$r")" "$(verdict "$(ratio "$v" "$r")" "$4" ">=")" "$rp" "$vp" "$(ratio "$vp" "$rp")" "$p99v"
}
commit=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$root" status --porcelain 2>/dev/null | grep -q . && echo " (with uncommitted changes)" || true)

cat <<EOF

verifyd vs Redis GET over Unix sockets: $KEYS keys, $CONNS connections, median of $ROUNDS rounds
date:     $(date -u +%Y-%m-%dT%H:%M:%SZ)
commit:   $commit$dirty
machine:  $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), Linux $(uname -r)
load:     load average $load_before before the measurements, $load_after after (other work on the machine)
software: $("$GO" env GOVERSION); $(redis-server --version | cut -d' ' -f1-3)
setup:    Redis: $KEYS records loaded in ${redis_load}s; verifyd: $KEYS API keys created through the admin API in ${vd_load}s
checks:   Redis keyspace hits $hits, misses $misses; verifyd wrong answers $vd_errors

shape       requests  Redis req/s verifyd req/s  ratio  target            Redis p99  verifyd p99  ratio  target
$(row "depth 1" 1 "$REQUESTS_P1" 1.3 1.0)
$(row "depth 16" 16 "$REQUESTS_P16" 1.5 -)

CPU time per request (medians; server and client share the $(nproc) cores):
shape     Redis server  redis-benchmark  verifyd  verifybench
$(for d in 1 16; do printf 'depth %-3s %9.2f µs %13.2f µs %6.2f µs %8.2f µs\n' "$d" "$(median $d 5)" "$(median $d 6)" "$(median $d 10)" "$(median $d 11)"; done)

every round (round, depth; Redis: req/s, p99 µs, server and client CPU µs a request; verifyd: req/s, p99 µs, errors, server and client CPU µs a request):
$(sed 's/^/  /' "$tmp/rounds")

Redis:   redis-benchmark -s SOCK -t get -r $KEYS -c $CONNS -P 1|16 -n REQUESTS --csv (no warm-up)
verifyd: verifybench --socket SOCK --keys-from FILE --mix opaque_hit=1 --conns $CONNS --depth 1|16 --requests REQUESTS --warmup $WARMUP
         (every key is verified once first, so that each request is a cache hit; every answer is checked)
EOF
[ "$vd_errors" = 0 ] || die "verifyd gave $vd_errors wrong answers: the figures above do not count"
[ "$misses" = 0 ] || die "Redis missed $misses GETs: the keys are not the ones redis-benchmark asks for"
