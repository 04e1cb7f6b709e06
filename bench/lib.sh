# Shared by the bench/*.sh scripts; sourced, not run.
#
# Sets ROOT (the repository) and WORK (a temporary folder), builds
# $WORK/strata, and kills every process registered with `started PID` when
# the script exits, however it exits.

set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/strata-bench.XXXXXX")
PIDS=()

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

started() { PIDS+=("$1"); }

machine() {
	echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "cpu:     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), nproc $(nproc)"
	echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min)"
	echo "go:      $(go version | cut -d' ' -f3-)"
	if [ -n "${BENCH_COMMIT:-}" ]; then
		echo "commit:  $BENCH_COMMIT"
	else
		echo "commit:  $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (uncommitted changes)')"
	fi
}

build_strata() {
	(cd "$ROOT" && go build -o "$WORK/strata" ./cmd/strata)
}

# start_strata NAME [FLAGS...] starts `strata serve` on a fresh data folder
# and a free loopback port, waits until /readyz is 200, and sets STRATA_URL
# and STRATA_PID.
start_strata() {
	local name=$1
	shift
	"$WORK/strata" serve --data-dir "$WORK/$name-data" --http-addr 127.0.0.1:0 "$@" \
		>"$WORK/$name.out" 2>"$WORK/$name.log" &
	STRATA_PID=$!
	started "$STRATA_PID"
	STRATA_URL=$(wait_listening "$WORK/$name.out" "$STRATA_PID")
	local i
	for i in $(seq 300); do
		if [ "$(curl -s -o /dev/null -w '%{http_code}' "$STRATA_URL/readyz")" = 200 ]; then
			return 0
		fi
		sleep 0.1
	done
	echo "strata not ready within 30s; log:" >&2
	tail -20 "$WORK/$name.log" >&2
	exit 1
}

# wait_listening FILE PID prints the URL of the first "listening on" line
# PID writes to FILE.
wait_listening() {
	local i url
	for i in $(seq 300); do
		url=$(sed -n 's/.*listening on \(http:\/\/[^ ]*\).*/\1/p' "$1" | head -1)
		if [ -n "$url" ]; then
			echo "$url"
			return 0
		fi
		if ! kill -0 "$2" 2>/dev/null; then
			echo "process $2 exited before listening" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "process $2 not listening within 30s" >&2
	return 1
}

# signup EMAIL prints the access token of a new account.
signup() {
	curl -sf -H 'Content-Type: application/json' \
		-d "{\"email\":\"$1\",\"password\":\"correct horse battery staple\",\"name\":\"Bench\"}" \
		"$STRATA_URL/v1/auth/signup" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'
}

# login EMAIL starts a session; it prints nothing.
login() {
	curl -sf -o /dev/null -H 'Content-Type: application/json' \
		-d "{\"email\":\"$1\",\"password\":\"correct horse battery staple\"}" \
		"$STRATA_URL/v1/auth/login"
}

# free_port prints a loopback port nobody listens on, below the usual
# ephemeral range (the caller retries if it is taken meanwhile).
free_port() {
	local port i
	for i in $(seq 100); do
		port=$((20000 + RANDOM % 12000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	echo "no free loopback port found" >&2
	return 1
}

# cpu_ticks PID... prints the CPU time (user + system) the processes used so
# far, in clock ticks.
cpu_ticks() {
	local pid sum=0 t
	for pid in "$@"; do
		t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null) || t=0
		sum=$((sum + t))
	done
	echo "$sum"
}

# ms VALUE converts one of wrk's durations (850.00us, 1.20ms, 2.01s, 1.00m) to ms.
ms() {
	awk -v v="$1" 'BEGIN {
		n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : (u == "h") ? 3600000 : -1
		if (f < 0) { print "nan"; exit }
		printf "%.3f", n * f
	}'
}
