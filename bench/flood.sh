#!/usr/bin/env bash
# Valid-key latency over verifyd's Unix socket, quiet and during a flood of
# random well-formed keys, with the daemon's memory along the way.
#
# Starts verifyd on a temporary store and socket (defaults otherwise:
# 1M cached entries, 65536 negative ones), creates KEYS API keys with
# verifybench, then:
#
#   quiet:  verifybench --mix opaque_hit=1 --conns 1 --duration QUIET
#   flood:  verifybench --mix unknown=1 --conns FLOOD_CONNS --requests FLOOD, FLOODS times
#   during: the quiet command again, for DURING, started LAG into the first flood
#
# and prints the valid keys' latency percentiles quiet and during the flood
# with the p99 ratio against the target (at most 2x), the flood's
# throughput, the daemon's RSS at each step, and what answered the unknown
# keys (digest filter, negative cache, store reads, from /metrics). Every
# answer is checked by verifybench. Everything it starts is stopped on
# exit; the temporary directory is removed.
#
# Settings (environment): KEYS (1000), QUIET (10s), FLOOD (1000000),
# FLOOD_CONNS (8), FLOODS (3), DURING (4s), LAG (1s), BIN (bin), GO (go).
# Needs curl and jq, installed with apt-get when missing and running as root.
set -euo pipefail

KEYS=${KEYS:-1000}
QUIET=${QUIET:-10s}
FLOOD=${FLOOD:-1000000}
FLOOD_CONNS=${FLOOD_CONNS:-8}
FLOODS=${FLOODS:-3}
DURING=${DURING:-4s}
LAG=${LAG:-1s}
BIN=${BIN:-bin}
GO=${GO:-go}

cd "$(dirname "$0")/.."
root=$PWD
NAME=bench-flood
# shellcheck source=bench/lib.sh
. bench/lib.sh
need_packages curl=curl jq=jq

echo "bench-flood: building verifyd and verifybench into $BIN/"
"$GO" build -o "$BIN/" ./cmd/verifyd ./cmd/verifybench

port=$(free_port)
sock=$tmp/verifyd.sock
VERIFYD_ADMIN_KEY=$(new_admin_key)
export VERIFYD_ADMIN_KEY
"$BIN/verifyd" --data-dir "$tmp/data" --http-addr "127.0.0.1:$port" --socket "$sock" --log-level warn >"$tmp/verifyd.log" 2>&1 &
vd=$!
pids+=($vd)
wait_for "verifyd (log: $tmp/verifyd.log)" curl -sf "http://127.0.0.1:$port/readyz"
"$BIN/verifybench" --socket "$sock" --admin-addr "http://127.0.0.1:$port" --keys "$KEYS" --save-keys "$tmp/keys" --quiet

rss() { awk '$1 == "VmRSS:" { printf "%.0f MB", $2 / 1024 }' "/proc/$vd/status"; }
metric() {
	curl -sf "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 == m { printf "%.0f", $2; found = 1 } END { if (!found) print 0 }'
}
bench() { # OUT FLAGS...: one verifybench run into $tmp/OUT.json
	local out=$1
	shift
	"$BIN/verifybench" --socket "$sock" --keys-from "$tmp/keys" -o json --quiet "$@" >"$tmp/$out.json" ||
		{ cat "$tmp/$out.json" >&2; die "verifybench failed ($out)"; }
}
pct() { jq -r '.latency_us | map_values(. * 10 | round / 10) | "p50 \(.p50) µs, p90 \(.p90) µs, p99 \(.p99) µs, p99.9 \(.p99_9) µs, max \(.max) µs"' "$tmp/$1.json"; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
rss_start=$(rss)
echo "bench-flood: quiet run ($QUIET)"
bench quiet --mix opaque_hit=1 --conns 1 --duration "$QUIET"
rss_quiet=$(rss)
rss_floods=()
flood_lines=()
for ((i = 1; i <= FLOODS; i++)); do
	echo "bench-flood: flood $i/$FLOODS ($FLOOD unknown keys over $FLOOD_CONNS connections)"
	bench "flood$i" --mix unknown=1 --conns "$FLOOD_CONNS" --requests "$FLOOD" --warmup 0 &
	fpid=$!
	if [ "$i" = 1 ]; then
		sleep "$LAG"
		bench during --mix opaque_hit=1 --conns 1 --duration "$DURING" --warmup 0
		running=$(kill -0 "$fpid" 2>/dev/null && echo yes || echo no)
	fi
	wait "$fpid"
	rss_floods+=("$(rss)")
	flood_lines+=("$(jq -r '"\(.requests) in \(.seconds | . * 10 | round / 10)s (\(.throughput | round)/s), \(.errors) wrong"' "$tmp/flood$i.json")")
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
[ "$running" = yes ] || echo "bench-flood: warning: the first flood ended before the 'during' run did; raise FLOOD" >&2

q99=$(jq .latency_us.p99 "$tmp/quiet.json")
d99=$(jq .latency_us.p99 "$tmp/during.json")
ratio=$(awk -v a="$d99" -v b="$q99" 'BEGIN { printf "%.2f", a / b }')
verdict=$(awk -v r="$ratio" 'BEGIN { print (r <= 2 ? "met" : "MISSED") }')
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$root" status --porcelain 2>/dev/null | grep -q . && echo " (with uncommitted changes)" || true)
errs=$(jq -s 'map(.errors) | add' "$tmp"/quiet.json "$tmp"/during.json "$tmp"/flood*.json)

cat <<EOF

verifyd under a flood of random well-formed keys, over its Unix socket
date:     $(date -u +%Y-%m-%dT%H:%M:%SZ)
commit:   $commit$dirty
machine:  $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), Linux $(uname -r); $("$GO" env GOVERSION)
load:     load average $load_before before, $load_after after
setup:    $KEYS API keys; quiet and during: 1 connection, opaque cache hits; flood: unknown agent keys, $FLOOD_CONNS connections

valid keys, quiet:        $(pct quiet)  ($(jq '.throughput | round' "$tmp/quiet.json")/s)
valid keys, during flood: $(pct during)  ($(jq '.throughput | round' "$tmp/during.json")/s)
p99 during / quiet:       $ratio  ($verdict: target <= 2)
floods:                   $(printf '%s; ' "${flood_lines[@]}")
RSS:                      $rss_start at start, $rss_quiet after the quiet run, $(printf '%s, ' "${rss_floods[@]}")after each flood
unknown keys answered by: digest filter $(metric verifyd_keystore_digest_filter_rejects_total), negative cache $(metric 'verifyd_keystore_cache_hits_total{cache="negative"}'), store reads $(metric verifyd_keystore_store_reads_total) (of these, $KEYS were the valid keys' first reads)
wrong answers:            $errs
EOF
