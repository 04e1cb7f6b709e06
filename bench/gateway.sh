#!/usr/bin/env bash
# bench/gateway.sh: HTTP load through Strata's gateway role beside nginx as
# a reverse proxy, both in front of the same upstream, and that upstream
# loaded directly as the anchor; all on loopback, driven by the same wrk
# command (wrk -t2 -c64 --latency, GET /v1/items/itm_1) in alternating
# rounds. Prints req/s, latency p50/p99 and the proxy's CPU per request of
# every run, the medians over the rounds, the ratio gateway/nginx of req/s
# (target >= 1.0) and the p99 the gateway adds over the direct run (target
# <= 1 ms), at full load and at light load (one connection).
#
# The upstream is bench/gatewaybackend: a bare net/http server answering
# every GET with the same 1 KiB of JSON (Content-Type application/json,
# Content-Length set) and /readyz with 200.
#
# Targets:
#   - direct: wrk -> upstream.
#   - gateway: wrk -> `strata serve --roles=gateway --upstream-content=URL
#     --log-level warn` -> upstream. /v1/items/ routes to the content pool
#     (internal/gateway/routes.go), whose only instance is the upstream. The
#     gateway's defaults stand: least-request balancing, 256 keep-alive
#     connections per instance (wrk opens 64), retries, breakers, and the
#     adaptive concurrency limiter, whose limit never goes below 64
#     (--gateway-min-limit), so 64 connections cannot be shed; no rate
#     limit. With --log-level warn the access log (info) writes nothing, as
#     nginx's `access_log off`; LOG_LEVEL=info measures it.
#   - nginx: worker_processes auto, access_log off, the upstream in an
#     `upstream` block with `keepalive 64` (and keepalive_requests raised so
#     that no upstream connection is closed during a run),
#     proxy_http_version 1.1, `proxy_set_header Connection ""`.
# A run that sees any non-2xx answer or socket error fails the script: a
# proxy that sheds or breaks connections is not measured.
#
# Odd rounds run direct, gateway, nginx; even rounds the reverse, so a drift
# of the machine's load does not always land on the same side. Before round
# 1 every target gets an untimed warm-up (WARMUP). CPU per request is the
# proxy's (nginx's workers included; the upstream's for direct) from /proc.
# Then, unless LIGHT=0, the same rounds at light load (wrk -t1 -c1): at full
# load latency is mostly queueing, which a slower proxy lengthens for every
# request, so the p99 each hop itself adds is read there.
#
# Needs go, curl, nginx, wrk and pgrep; as root on Debian it installs what
# is missing of the last four with apt-get (curl, nginx, wrk, procps).
#
# Settings (environment): ROUNDS (3), DURATION (10s), THREADS (2),
# CONNECTIONS (64), WARMUP (2s), LIGHT (1; 0 skips the light-load runs),
# LIGHT_DURATION (5s), LOG_LEVEL (warn), GATEWAY_FLAGS (extra
# flags for the gateway, e.g. --gateway-adaptive-limit=false), NOLIMIT
# (unset; 1 adds a target "nolimit" to every round: the gateway with
# --gateway-adaptive-limit=false), COMPARE (unset; "NAME=BINARY ..." adds a
# target NAME per pair: the gateway role of another strata binary, e.g. one
# built from an earlier commit, with the same flags). PROFILE=FILE also
# saves a CPU profile of the gateway during its first timed run, through
# --debug-addr on loopback; read it with `go tool pprof -top FILE`.
. "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
WARMUP=${WARMUP:-2s}
LIGHT=${LIGHT:-1}
LIGHT_DURATION=${LIGHT_DURATION:-5s}
LOG_LEVEL=${LOG_LEVEL:-warn}
read -r -a EXTRA <<<"${GATEWAY_FLAGS:-}"
# The adaptive limiter must not shed wrk's connections: its floor (64 by
# default) is raised to CONNECTIONS when that is more.
[[ ${CONNECTIONS:-64} -le 64 ]] || EXTRA=(--gateway-min-limit "$CONNECTIONS" "${EXTRA[@]}")
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive integer, got $ROUNDS" >&2; exit 1; }
[[ $LIGHT == 0 || $LIGHT == 1 ]] || { echo "LIGHT must be 0 or 1, got $LIGHT" >&2; exit 1; }
[[ $CONNECTIONS =~ ^[1-9][0-9]*$ ]] || { echo "CONNECTIONS must be a positive integer, got $CONNECTIONS" >&2; exit 1; }
[ -z "${PROFILE:-}" ] || [[ $DURATION =~ ^[0-9]+s$ ]] ||
	{ echo "PROFILE needs DURATION in seconds (like 10s), got $DURATION" >&2; exit 1; }
command -v go >/dev/null || { echo "go is not installed (https://go.dev/doc/install)" >&2; exit 1; }

# The tools: installed with apt-get when missing and we may.
need curl:curl nginx:nginx wrk:wrk pgrep:procps

REQ_PATH=/v1/items/itm_1

build_strata
(cd "$ROOT" && go build -o "$WORK/gatewaybackend" ./bench/gatewaybackend)

"$WORK/gatewaybackend" -addr 127.0.0.1:0 >"$WORK/backend.out" 2>&1 &
BACKEND_PID=$!
started "$BACKEND_PID"
BACKEND_URL=$(wait_listening "$WORK/backend.out" "$BACKEND_PID")

# wait_ok NAME URL waits until URL answers 200, 30 s at most.
wait_ok() {
	local i
	for i in $(seq 300); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "$2")" != 200 ] || return 0
		sleep 0.1
	done
	echo "$1 does not answer 200 at $2 within 30s" >&2
	return 1
}

# start_gateway NAME BINARY [FLAGS...] starts a gateway in front of the
# upstream, waits until it proxies, and sets URL[NAME] and PID[NAME].
declare -A URL PID
start_gateway() {
	local name=$1 bin=$2
	shift 2
	"$bin" serve --roles=gateway --upstream-content="$BACKEND_URL" --http-addr 127.0.0.1:0 \
		--log-level "$LOG_LEVEL" "$@" >"$WORK/$name.out" 2>"$WORK/$name.log" &
	PID[$name]=$!
	started "${PID[$name]}"
	URL[$name]=$(wait_listening "$WORK/$name.out" "${PID[$name]}") ||
		{ tail -20 "$WORK/$name.log" >&2; exit 1; }
	# 503 until the first health check of the upstream has passed.
	wait_ok "$name" "${URL[$name]}$REQ_PATH" || { tail -20 "$WORK/$name.log" >&2; exit 1; }
}

URL[direct]=$BACKEND_URL
PID[direct]=$BACKEND_PID
wait_ok upstream "$BACKEND_URL/readyz"

DEBUG=()
[ -z "${PROFILE:-}" ] || DEBUG=(--debug-addr 127.0.0.1:0)
start_gateway gateway "$WORK/strata" "${DEBUG[@]}" "${EXTRA[@]}"
TARGETS=(direct gateway)
if [ -n "${NOLIMIT:-}" ]; then
	start_gateway nolimit "$WORK/strata" --gateway-adaptive-limit=false "${EXTRA[@]}"
	TARGETS+=(nolimit)
fi
COMPARED=()
for pair in ${COMPARE:-}; do
	name=${pair%%=*}
	bin=${pair#*=}
	[[ $name =~ ^[a-z][a-z0-9_]*$ && $pair == *=* ]] ||
		{ echo "COMPARE: want NAME=BINARY pairs with lowercase names, got '$pair'" >&2; exit 1; }
	[[ " ${TARGETS[*]} nginx " != *" $name "* ]] || { echo "COMPARE: the name $name is taken" >&2; exit 1; }
	[ -x "$bin" ] || { echo "COMPARE: $bin is not an executable" >&2; exit 1; }
	start_gateway "$name" "$bin" "${EXTRA[@]}"
	TARGETS+=("$name")
	COMPARED+=("$name")
done
TARGETS+=(nginx)


# nginx_config PORT writes nginx.conf for PORT.
nginx_config() {
	nginx_conf "$1" "$(cat <<EOF
    access_log off;
    tcp_nodelay on;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    server_tokens off;
    upstream backend {
        server ${BACKEND_URL#http://};
        keepalive 64;
        keepalive_requests 10000000;
        keepalive_timeout 120s;
    }
    server {
        listen 127.0.0.1:$1;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
EOF
)"
}

start_nginx nginx_config "$REQ_PATH"
URL[nginx]=$NGINX_URL
PID[nginx]=$NGINX_PID

# pids TARGET prints the processes of a target (nginx's workers too).
pids() {
	case $1 in
	nginx) echo "${PID[nginx]}" $(pgrep -P "${PID[nginx]}" || true) ;;
	*) echo "${PID[$1]}" ;;
	esac
}

TICK=$(getconf CLK_TCK)

# The same bytes through all, or the comparison is void.
want=$(curl -sSf "$BACKEND_URL$REQ_PATH" | sha256sum | cut -d' ' -f1)
for target in "${TARGETS[@]}"; do
	got=$(curl -sSf "${URL[$target]}$REQ_PATH" | sha256sum | cut -d' ' -f1)
	[ "$got" = "$want" ] || { echo "$target answers other bytes than the upstream" >&2; exit 1; }
done

echo "== GET $REQ_PATH (1 KiB JSON): direct to the upstream, through strata's gateway (--log-level $LOG_LEVEL${EXTRA[*]:+ ${EXTRA[*]}}), through nginx $(nginx -v 2>&1 | sed 's/.*nginx\///')"
machine
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, $ROUNDS alternating rounds after a $WARMUP warm-up of each, loopback"
[ -z "${COMPARE:-}" ] || echo "compared with: $COMPARE"
hdrs=
for target in "${TARGETS[@]}"; do
	hdrs+="${hdrs:+, }$target $(curl -s -o /dev/null -w '%{size_header}' "${URL[$target]}$REQ_PATH") bytes"
done
echo "response headers: $hdrs"
echo


# load TARGET runs wrk once, prints one result line and records it; any
# non-2xx answer or socket error fails the script.
load() {
	local out rps p50 p99 non2xx sockerr procs t0 t1 n cpu
	procs=$(pids "$1")
	# shellcheck disable=SC2086 # a list of PIDs
	t0=$(cpu_ticks $procs)
	out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "${URL[$1]}$REQ_PATH") ||
		{ echo "wrk failed against $1: $out" >&2; exit 1; }
	# shellcheck disable=SC2086
	t1=$(cpu_ticks $procs)
	n=$(awk '/ requests in / {print $1}' <<<"$out")
	cpu=$(awk -v d=$((t1 - t0)) -v n="$n" -v hz="$TICK" 'BEGIN { if (n > 0) printf "%.1f", d / hz * 1e6 / n; else print "nan" }')
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
	p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
	non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
	sockerr=$(sed -n 's/.*Socket errors: *//p' <<<"$out")
	[ -n "$rps" ] && [ -n "$p99" ] || { echo "cannot parse wrk's output:" >&2; echo "$out" >&2; exit 1; }
	printf '%-8s %10s req/s   p50 %8s   p99 %8s   cpu %6s us/req%s%s\n' "$1" "$rps" "$p50" "$p99" "$cpu" \
		"${non2xx:+   NON-2xx: $non2xx}" "${sockerr:+   socket errors: $sockerr}"
	if [ -n "$non2xx" ] || [ -n "$sockerr" ]; then
		echo "$1: wrk saw ${non2xx:-0} non-2xx answers${sockerr:+ and socket errors ($sockerr)}; the run is void" >&2
		[ "$1" = nginx ] || tail -5 "$WORK/$1.log" >&2 2>/dev/null || true
		exit 1
	fi
	echo "$1 $rps $(ms "$p50") $(ms "$p99") $cpu" >>"$WORK/results"
}


for target in "${TARGETS[@]}"; do
	wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" "${URL[$target]}$REQ_PATH" >/dev/null ||
		{ echo "the warm-up of $target failed" >&2; exit 1; }
done

: >"$WORK/results"
PROF_PID=
for round in $(seq "$ROUNDS"); do
	echo "round $round"
	order=("${TARGETS[@]}")
	[ $((round % 2)) = 1 ] || order=($(printf '%s\n' "${TARGETS[@]}" | tac))
	for target in "${order[@]}"; do
		if [ "$target" = gateway ] && [ -n "${PROFILE:-}" ] && [ "$round" = 1 ]; then
			profile_start "$WORK/gateway.out"
		fi
		load "$target"
		if [ -n "$PROF_PID" ]; then
			wait "$PROF_PID" || echo "profile failed" >&2
			PROF_PID=
		fi
	done
done
echo
echo "medians over $ROUNDS rounds"
awk -v targets="${TARGETS[*]}" -v compared="${COMPARED[*]}" '
	function median(key,   n, i, j, t, a) {
		n = split(vals[key], a, " ")
		for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	{ for (f = 2; f <= 5; f++) vals[$1 " " f] = vals[$1 " " f] " " $f }
	END {
		nt = split(targets, tl, " ")
		printf "%-8s %12s %10s %10s %12s\n", "", "req/s", "p50", "p99", "cpu/req"
		for (t = 1; t <= nt; t++) {
			who = tl[t]
			printf "%-8s %12.0f %8.2fms %8.2fms %9.1f us\n", who, median(who " 2"), median(who " 3"), median(who " 4"), median(who " 5")
		}
		r = median("gateway 2") / median("nginx 2")
		added = median("gateway 4") - median("direct 4")
		printf "ratio gateway/nginx req/s: %.2f (target >= 1.0: %s)\n", r, (r >= 1.0 ? "met" : "MISSED")
		printf "p99 added over direct, full load: gateway %+.2f ms (target <= 1 ms: %s), nginx %+.2f ms\n",
			added, (added <= 1.0 ? "met" : "MISSED"), median("nginx 4") - median("direct 4")
		printf "cpu/req gateway/nginx: %.2f\n", median("gateway 5") / median("nginx 5")
		if (vals["nolimit 2"] != "") {
			printf "gateway without the adaptive limiter: req/s %.3f of with it, cpu/req %.3f\n",
				median("nolimit 2") / median("gateway 2"), median("nolimit 5") / median("gateway 5")
		}
		nc = split(compared, cl, " ")
		for (c = 1; c <= nc; c++) {
			printf "gateway against %s: req/s %.3f of its, cpu/req %.3f of its\n", cl[c],
				median("gateway 2") / median(cl[c] " 2"), median("gateway 5") / median(cl[c] " 5")
		}
	}' "$WORK/results"

# Light load: one connection, so nothing queues and the latency is each
# hop's own. At full load latency is mostly queueing (Little's law: 64
# connections over the rate), so the saturated p99s above compare rates as
# much as hops.
if [ "$LIGHT" != 0 ]; then
	echo
	echo "light load: wrk -t1 -c1 -d$LIGHT_DURATION --latency, $ROUNDS alternating rounds"
	: >"$WORK/light"
	for round in $(seq "$ROUNDS"); do
		order=("${TARGETS[@]}")
		[ $((round % 2)) = 1 ] || order=($(printf '%s\n' "${TARGETS[@]}" | tac))
		for target in "${order[@]}"; do
			out=$(wrk -t1 -c1 -d"$LIGHT_DURATION" --latency "${URL[$target]}$REQ_PATH") ||
				{ echo "wrk failed against $target: $out" >&2; exit 1; }
			! grep -qE 'Non-2xx|Socket errors' <<<"$out" ||
				{ echo "$target: wrk saw errors under light load; the run is void:" >&2; echo "$out" >&2; exit 1; }
			echo "$target $(ms "$(awk '$1 == "50%" {print $2}' <<<"$out")") $(ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")" >>"$WORK/light"
		done
	done
	awk -v targets="${TARGETS[*]}" '
		function median(key,   n, i, j, t, a) {
			n = split(vals[key], a, " ")
			for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
			return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		}
		{ vals[$1 " 2"] = vals[$1 " 2"] " " $2; vals[$1 " 3"] = vals[$1 " 3"] " " $3 }
		END {
			nt = split(targets, tl, " ")
			for (t = 1; t <= nt; t++)
				printf "%-8s p50 %6.3fms   p99 %6.3fms\n", tl[t], median(tl[t] " 2"), median(tl[t] " 3")
			added = median("gateway 3") - median("direct 3")
			printf "p99 added over direct, light load: gateway %+.3f ms (target <= 1 ms: %s), nginx %+.3f ms\n",
				added, (added <= 1.0 ? "met" : "MISSED"), median("nginx 3") - median("direct 3")
		}' "$WORK/light"
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
