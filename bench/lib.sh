# Helpers of the benchmark scripts (bench/http.sh, bench/redis.sh,
# bench/flood.sh), sourced by them after setting NAME, the prefix of their
# messages. Sourcing it makes a temporary directory, $tmp, and arranges for
# it to be removed, and every process in pids to be stopped, on exit.

# die MESSAGE: print it, prefixed with $NAME, and exit 1.
die() { echo "$NAME: $*" >&2; exit 1; }

# need_packages PROGRAM=PACKAGE...: install the Debian packages of the
# programs that are missing, with apt-get when running as root (their
# services are not started), or die naming them.
need_packages() {
	local want=() pkg arg own_policy=0 ok=1
	for arg in "$@"; do
		pkg=${arg#*=}
		command -v "${arg%%=*}" >/dev/null 2>&1 || [[ " ${want[*]} " == *" $pkg "* ]] || want+=("$pkg")
	done
	[ ${#want[@]} -gt 0 ] || return 0
	[ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 ||
		die "missing ${want[*]}: install them (Debian: apt-get install ${want[*]}) or run as root"
	echo "$NAME: installing ${want[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# Keep the packages' services from starting; policy-rc.d is removed
	# again unless it was there.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
	fi
	apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null ||
		{ apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null; } || ok=0
	[ $own_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
	[ $ok = 1 ] || die "installing ${want[*]} failed"
}

tmp=$(mktemp -d /tmp/vdbench.XXXXXX) # short: socket paths are limited to 108 bytes
pids=()
cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for DESCRIPTION COMMAND...: run COMMAND every 0.1s until it succeeds, at most 30s.
wait_for() {
	local what=$1
	shift
	for _ in $(seq 300); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	die "$what did not come up within 30s"
}

# free_port: a loopback TCP port nothing listens on.
free_port() {
	local p
	for p in $(shuf -i 20000-60000 -n 50); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	die "no free loopback port found"
}

# new_admin_key: a random admin key.
new_admin_key() { head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '='; }
