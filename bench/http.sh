#!/usr/bin/env bash
# verifyd's POST /v1/verify against a bare fasthttp handler under wrk, on
# this machine, in one run.
#
# Builds verifyd and bench/httphello (a fasthttp server answering 200 with
# a short JSON body and doing nothing else), starts both on loopback,
# creates one API key, and runs, alternately, ROUNDS times:
#
#   wrk -t THREADS -c CONNS -d DURATION --latency -s post.lua http://hello/v1/verify
#   wrk -t THREADS -c CONNS -d DURATION --latency -s post.lua http://verifyd/v1/verify
#
# with the same request (the key's token and a scope it grants, as JSON),
# then prints the medians of requests/s and p99 and the ratio verifyd/hello
# against the target (at least 0.7). Everything it starts is stopped on
# exit; the temporary directory is removed.
#
# Settings (environment): CONNS (50), THREADS (1), DURATION (10s),
# ROUNDS (3), GO (go). Needs wrk, curl and jq (Debian packages), installed
# with apt-get when missing and running as root.
set -euo pipefail

CONNS=${CONNS:-50}
THREADS=${THREADS:-1}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
GO=${GO:-go}

cd "$(dirname "$0")/.."
NAME=bench-http
# shellcheck source=bench/lib.sh
. bench/lib.sh
need_packages wrk=wrk curl=curl jq=jq

"$GO" build -o "$tmp/" ./cmd/verifyd ./bench/httphello
hello_addr=127.0.0.1:$("$tmp/httphello" -free-port)
"$tmp/httphello" -addr "$hello_addr" &
pids+=($!)
vd_addr=127.0.0.1:$("$tmp/httphello" -free-port)
admin=$(new_admin_key)
cat >"$tmp/verifyd.yaml" <<CFG
data_dir: $tmp/data
socket: ""
http:
  addr: $vd_addr
log:
  level: warn
CFG
VERIFYD_ADMIN_KEY=$admin "$tmp/verifyd" --config "$tmp/verifyd.yaml" >"$tmp/verifyd.log" 2>&1 &
pids+=($!)
wait_for "verifyd (log: $tmp/verifyd.log)" curl -fs "http://$vd_addr/readyz"
wait_for "httphello" curl -fs "http://$hello_addr/"

token=$(curl -fs -X POST -H "X-Admin-Key: $admin" "http://$vd_addr/v1/admin/keys" \
	-d '{"subject":"bench","scopes":["tool:data:read"]}' | jq -r .secret)
cat >"$tmp/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"token":"$token","scope":"tool:data:read"}'
wrk.headers["Content-Type"] = "application/json"
LUA
# The request must be allowed, or the measure is of refusals.
curl -fs -X POST "http://$vd_addr/v1/verify" -d "{\"token\":\"$token\",\"scope\":\"tool:data:read\"}" | jq -e '.allow == true' >/dev/null ||
	die "the benchmark key is not allowed"

# run TARGET: requests/s and p99 (ms) of one wrk run; non-2xx answers fail it.
run() {
	local out rps p99 non2xx
	out=$(wrk -t "$THREADS" -c "$CONNS" -d "$DURATION" --latency -s "$tmp/post.lua" "http://$1/v1/verify")
	non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
	[ -z "$non2xx" ] || die "$1 answered $non2xx non-2xx responses"
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	p99=$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; print v}' <<<"$out")
	echo "$rps $p99"
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "bench-http: wrk -t $THREADS -c $CONNS -d $DURATION, $ROUNDS rounds, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$tmp/res.hello"; : >"$tmp/res.verifyd"
for r in $(seq "$ROUNDS"); do
	h=$(run "$hello_addr"); v=$(run "$vd_addr")
	echo "round $r: hello $h   verifyd $v   (req/s p99-ms)"
	echo "$h" >>"$tmp/res.hello"; echo "$v" >>"$tmp/res.verifyd"
done
hr=$(cut -d' ' -f1 "$tmp/res.hello" | median); hp=$(cut -d' ' -f2 "$tmp/res.hello" | median)
vr=$(cut -d' ' -f1 "$tmp/res.verifyd" | median); vp=$(cut -d' ' -f2 "$tmp/res.verifyd" | median)
awk -v hr="$hr" -v hp="$hp" -v vr="$vr" -v vp="$vp" 'BEGIN {
	printf "hello    %10.0f req/s  p99 %6.2f ms\n", hr, hp
	printf "verifyd  %10.0f req/s  p99 %6.2f ms\n", vr, vp
	r = vr / hr
	printf "ratio    %10.2fx (target >= 0.70x: %s)   p99 %.2fx\n", r, (r >= 0.7 ? "met" : "not met"), vp / hp
}'
