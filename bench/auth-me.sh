#!/usr/bin/env bash
# bench/auth-me.sh: HTTP load on GET /v1/auth/me of `strata serve` beside a
# bare net/http server (bench/bare) answering the same JSON bytes, both on
# loopback, driven by the same wrk command in alternating rounds. Prints
# req/s and latency p50/p99 of every run and the ratio strata/bare (issue 2's
# target: >= 0.70). Needs wrk (apt-get install wrk) and curl.
#
# strata runs with --log-level warn: at the default info level every request
# writes an access-log line, which would dominate. LOG_LEVEL=info measures
# that instead.
#
# Settings (environment): ROUNDS (2), DURATION (10s), THREADS (2),
# CONNECTIONS (32), LOG_LEVEL (warn). PROFILE=FILE also saves a CPU profile
# of strata during its first round (through --debug-addr on loopback); read
# it with `go tool pprof -top FILE`.
. "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
LOG_LEVEL=${LOG_LEVEL:-warn}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install -y wrk)" >&2; exit 1; }

build_strata
(cd "$ROOT" && go build -o "$WORK/bare" ./bench/bare)

DEBUG=()
[ -z "${PROFILE:-}" ] || DEBUG=(--debug-addr 127.0.0.1:0)
start_strata strata --log-level "$LOG_LEVEL" "${DEBUG[@]}"
TOKEN=$(signup bench@example.com)
[ -n "$TOKEN" ] || { echo "signup failed" >&2; exit 1; }
curl -sf -H "Authorization: Bearer $TOKEN" "$STRATA_URL/v1/auth/me" >"$WORK/me.json"

"$WORK/bare" -body "$WORK/me.json" >"$WORK/bare.out" 2>&1 &
BARE_PID=$!
started "$BARE_PID"
BARE_URL=$(wait_listening "$WORK/bare.out" "$BARE_PID")

# The same bytes from both, or the comparison is void.
curl -sf -H "Authorization: Bearer $TOKEN" "$BARE_URL/v1/auth/me" | cmp -s - "$WORK/me.json" ||
	{ echo "bare server answers different bytes" >&2; exit 1; }

echo "== GET /v1/auth/me: strata (--log-level $LOG_LEVEL) vs bare net/http, same JSON ($(wc -c <"$WORK/me.json") bytes)"
machine
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, $ROUNDS alternating rounds, loopback"
echo

# load NAME URL runs wrk once and prints one result line.
load() {
	local out rps p50 p99 non2xx
	out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Bearer $TOKEN" "$2")
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
	p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
	non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
	printf '%-7s %10s req/s   p50 %8s   p99 %8s%s\n' "$1" "$rps" "$p50" "$p99" "${non2xx:+   NON-2xx: $non2xx}"
	echo "$1 $rps" >>"$WORK/rates"
}

: >"$WORK/rates"
for round in $(seq "$ROUNDS"); do
	echo "round $round"
	load bare "$BARE_URL/v1/auth/me"
	if [ -n "${PROFILE:-}" ] && [ "$round" = 1 ]; then
		PPROF=$(sed -n 's/.*pprof on \(http:\/\/[^ ]*\)\/debug.*/\1/p' "$WORK/strata.out")
		seconds=$(( ${DURATION%s} > 2 ? ${DURATION%s} - 1 : 1 ))
		curl -sf -o "$PROFILE" "$PPROF/debug/pprof/profile?seconds=$seconds" &
		PROF_PID=$!
		started "$PROF_PID"
	fi
	load strata "$STRATA_URL/v1/auth/me"
	[ -z "${PROF_PID:-}" ] || { wait "$PROF_PID" || echo "profile failed" >&2; PROF_PID=; }
done
echo
awk '{sum[$1] += $2; n[$1]++}
	END {
		b = sum["bare"] / n["bare"]; s = sum["strata"] / n["strata"]
		printf "mean    bare %.0f req/s, strata %.0f req/s, ratio strata/bare %.2f (target >= 0.70: %s)\n",
			b, s, s / b, (s / b >= 0.70 ? "met" : "MISSED")
	}' "$WORK/rates"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
