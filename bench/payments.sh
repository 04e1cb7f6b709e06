#!/usr/bin/env bash
# bench/payments.sh: purchases/s and top-ups/s of `strata serve` end to end
# over HTTP on its embedded SQLite, beside the bare SQLite transfer
# transaction measured in the same run as their ceiling (issue 4). Prints
# every measurement, the medians over the rounds and the ratios
# purchase/ceiling (target >= 0.5) and topup/ceiling (no target).
#
# The load driver is bench/paybench (see its doc comment):
#   - ceiling: a fresh SQLite database in the temporary folder (the same
#     filesystem as strata's data folder), opened by sqldb.OpenSQLite with
#     Strata's settings and migrated with the real payments migrations; the
#     bare transfer (BEGIN IMMEDIATE; a guarded debit; a credit; one
#     payments_transfers row; COMMIT) through database/sql on the writer,
#     from 1 client (one writer, the issue's figure) and from CLIENTS
#     clients. The better of the two is the ceiling.
#   - topup: CLIENTS buyers, each on its own keep-alive connection, POST
#     /v1/topups of 1.00 USD with card 4242424242424242 and a fresh
#     Idempotency-Key (strata runs --payments-test-latency 0).
#   - purchase: CLIENTS funded buyers buy distinct priced, published items
#     (1.00 USD, a tiny PNG each, created, processed and published before
#     the timed phase), POST /v1/purchases with a fresh Idempotency-Key:
#     idempotency, ledger, entitlement and outbox, the whole path.
# Signups, funding and items are set up anew for every measurement and are
# not timed; each measurement has an untimed warm-up (WARMUP). Latency p50
# and p99 are per request from the client's side; server_cpu_us is strata's
# CPU time per success (from /proc), driver_cpu_us paybench's own (the
# driver shares the two cores with strata).
#
# Odd rounds run ceiling, topup, purchase; even rounds the reverse. Before
# each measurement the script waits until strata is idle (its outbox relay
# has drained).
#
# strata runs with --log-level warn (LOG_LEVEL=info measures the access log
# too).
#
# Settings (environment): ROUNDS (2), DURATION (10s), CLIENTS (32), WARMUP
# (2s), LOG_LEVEL (warn), PREPARED (unset; 1 adds the ceiling with the
# three statements prepared once, for information: Strata's stores do not
# prepare). PROFILE=FILE also saves a CPU profile of strata during the timed
# phase of its first purchase measurement (PROFILE_MODE=topup: the first
# top-up measurement), through --debug-addr on loopback; read it with
# `go tool pprof -top FILE`.
. "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-10s}
CLIENTS=${CLIENTS:-32}
WARMUP=${WARMUP:-2s}
LOG_LEVEL=${LOG_LEVEL:-warn}
PROFILE_MODE=${PROFILE_MODE:-purchase}
command -v curl >/dev/null || { echo "curl is not installed (apt-get install -y curl)" >&2; exit 1; }
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive integer, got $ROUNDS" >&2; exit 1; }
[[ $CLIENTS =~ ^[1-9][0-9]*$ ]] || { echo "CLIENTS must be a positive integer, got $CLIENTS" >&2; exit 1; }
[[ $PROFILE_MODE == purchase || $PROFILE_MODE == topup ]] ||
	{ echo "PROFILE_MODE must be purchase or topup, got $PROFILE_MODE" >&2; exit 1; }

build_strata
(cd "$ROOT" && go build -o "$WORK/paybench" ./bench/paybench)

DEBUG=()
[ -z "${PROFILE:-}" ] || DEBUG=(--debug-addr 127.0.0.1:0)
start_strata strata --log-level "$LOG_LEVEL" --payments-test-latency 0 "${DEBUG[@]}"
PPROF=
if [ -n "${PROFILE:-}" ]; then
	PPROF=$(sed -n 's/.*pprof on \(http:\/\/[^ ]*\)\/debug.*/\1/p' "$WORK/strata.out")
	[ -n "$PPROF" ] || { echo "strata printed no pprof address" >&2; exit 1; }
	case $PROFILE in /*) ;; *) PROFILE=$PWD/$PROFILE ;; esac
fi

echo "== payments: purchases/s and top-ups/s over HTTP (strata --log-level $LOG_LEVEL --payments-test-latency 0) vs the bare SQLite transfer"
machine
echo "uptime:  $(uptime | sed "s/^ *//")"
echo "paybench -duration $DURATION -warmup $WARMUP, $CLIENTS clients (the ceiling also with 1), $ROUNDS alternating rounds, loopback"
echo

# strata_ticks prints the CPU time strata used so far, in clock ticks.
strata_ticks() { awk '{print $14 + $15}' "/proc/$STRATA_PID/stat"; }

# quiesce waits (up to 30 s) until strata uses under 5% of a core for a
# second: the previous measurement's outbox events are relayed.
quiesce() {
	local i t0 t1 hz
	hz=$(getconf CLK_TCK)
	for i in $(seq 30); do
		t0=$(strata_ticks)
		sleep 1
		t1=$(strata_ticks)
		[ $((t1 - t0)) -gt $((hz / 20)) ] || return 0
	done
	echo "    (strata still busy after 30 s; measuring anyway)"
}

# measure ROUND MODE [PAYBENCH FLAGS...] runs paybench once, prints its
# RESULT line and its progress lines (indented), and records the result.
PROFILED=
measure() {
	local round=$1 mode=$2 out
	shift 2
	local args=(-mode "$mode" -duration "$DURATION" -warmup "$WARMUP" -label "round=$round load=$(cut -d' ' -f1 /proc/loadavg)")
	case $mode in
	ceiling) args+=(-dir "$WORK") ;;
	*)
		args+=(-url "$STRATA_URL" -pid "$STRATA_PID")
		if [ -n "$PPROF" ] && [ -z "$PROFILED" ] && [ "$mode" = "$PROFILE_MODE" ]; then
			args+=(-pprof "$PPROF" -profile "$PROFILE")
			PROFILED=1
		fi
		;;
	esac
	quiesce
	local before
	[ "$mode" = ceiling ] || before=$(commit_counts)
	[ "$mode" = ceiling ] || [ -z "${NO_KEYS:-}" ] || args+=(-no-keys)
	out=$("$WORK/paybench" "${args[@]}" "$@" 2>"$WORK/paybench.err") ||
		{ echo "paybench ${args[*]} $* failed:" >&2; cat "$WORK/paybench.err" >&2; exit 1; }
	echo "$out"
	sed 's/^paybench: /    # /' "$WORK/paybench.err"
	if [ "$mode" != ceiling ]; then
		# shellcheck disable=SC2086 # two numbers each
		set -- $before $(commit_counts)
		[ "$3" = "$1" ] || echo "    # group commit (setup included): $(($4 - $2)) transactions in $(($3 - $1)) SQLite commits, $(awk -v t="$(($4 - $2))" -v c="$(($3 - $1))" 'BEGIN { printf "%.1f", t / c }') per commit"
	fi
	echo "$out" >>"$WORK/results"
}

# commit_counts prints strata's SQLite commits and the transactions they
# carried so far (group commit, see internal/storage/sqldb).
commit_counts() {
	curl -s "$STRATA_URL/metrics" | awk '/^strata_db_commits_total/ { c += $2 } /^strata_db_transactions_total/ { t += $2 } END { print c + 0, t + 0 }'
}

: >"$WORK/results"
for round in $(seq "$ROUNDS"); do
	steps=("ceiling -clients 1" "ceiling -clients $CLIENTS" "topup -clients $CLIENTS" "purchase -clients $CLIENTS")
	[ -z "${PREPARED:-}" ] || steps=("ceiling -clients 1 -prepared" "${steps[@]}")
	[ $((round % 2)) = 1 ] || mapfile -t steps < <(printf '%s\n' "${steps[@]}" | tac)
	echo "round $round"
	for step in "${steps[@]}"; do
		# shellcheck disable=SC2086 # the step is a mode and its flags
		measure "$round" $step
	done
done

echo
echo "medians over $ROUNDS rounds"
awk -v clients="$CLIENTS" '
	function median(key,   n, i, j, t, a) {
		n = split(vals[key], a, " ")
		if (n == 0) return -1
		for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	$1 == "RESULT" {
		delete f
		for (i = 2; i <= NF; i++) { k = $i; sub(/=.*/, "", k); v = $i; sub(/^[^=]*=/, "", v); f[k] = v }
		key = f["mode"] " " f["clients"]
		if (!(key in seen)) { seen[key] = 1; order[++nkeys] = key }
		vals[key " rps"] = vals[key " rps"] " " f["rps"]
		vals[key " p50"] = vals[key " p50"] " " f["p50_ms"]
		vals[key " p99"] = vals[key " p99"] " " f["p99_ms"]
		vals[key " err"] = vals[key " err"] " " f["errors"]
		vals[key " cpu"] = vals[key " cpu"] " " ("server_cpu_us" in f ? f["server_cpu_us"] : f["driver_cpu_us"])
	}
	END {
		for (k = 1; k <= nkeys; k++) {
			key = order[k]; split(key, kk, " ")
			printf "%-16s %2d clients %9.1f /s   p50 %8.2f ms   p99 %8.2f ms   errors %d   %s cpu %7.1f us/op\n", kk[1], kk[2],
				median(key " rps"), median(key " p50"), median(key " p99"), median(key " err"),
				(kk[1] ~ /^ceiling/ ? "driver" : "server"), median(key " cpu")
		}
		c1 = median("ceiling 1 rps"); cn = median("ceiling " clients " rps")
		ceil = c1 > cn ? c1 : cn
		p = median("purchase " clients " rps"); t = median("topup " clients " rps")
		printf "ceiling: bare SQLite transfer %.0f tx/s from 1 client, %.0f tx/s from %d; the better, %.0f tx/s, is the ceiling\n",
			c1, cn, clients, ceil
		printf "ratio purchase/ceiling %.3f (target >= 0.5: %s)\n", p / ceil, (p / ceil >= 0.5 ? "met" : "MISSED")
		printf "ratio topup/ceiling    %.3f (no target)\n", t / ceil
	}' "$WORK/results"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "uptime:  $(uptime | sed "s/^ *//")"
[ -z "${PROFILE:-}" ] || echo "CPU profile of strata ($PROFILE_MODE): $PROFILE (go tool pprof -top $PROFILE)"
