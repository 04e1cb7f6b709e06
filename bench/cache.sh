#!/usr/bin/env bash
# bench/cache.sh: HTTP load on GET /v1/items/{id} (one published item, read
# anonymously) with each configuration of the caching tier (issue 7), beside
# a bare net/http handler answering the same bytes, all on loopback, driven
# by the same wrk command in alternating rounds. Prints req/s, latency
# p50/p99, CPU per request and database queries per request of every run,
# the medians over the rounds, and the ratio of the two-tier hit path's
# req/s to the bare handler's against issue 7's target (>= 0.8).
#
# Targets (one strata at a time, restarted on the same data folder with the
# target's flags, --log-level warn, --roles all):
#   - off:   --cache=false: every request reads the item from SQLite.
#   - local: --cache-tiers local: the in-process tier only.
#   - redis: --redis-url redis://127.0.0.1:PORT --cache-tiers redis: Redis
#            only (through rueidis' client-side cache).
#   - both:  --redis-url redis://127.0.0.1:PORT: the default tiers, in
#            process then Redis.
#   - bare:  bench/bare, a bare net/http server writing one file's bytes with
#            w.Write: the exact body strata answers for the item (fetched
#            with curl), read once at start, so its "lookup" is what a hit in
#            a Go map costs. The anchor: what any net/http handler returning
#            that JSON costs on this machine.
#
# Setup (not timed): a creator (strata users create), one strata that logs in
# as the creator, creates an item, uploads a small file through
# PUT /v1/items/{id}/file, waits until the worker made its asset ready and
# publishes it; then it is stopped. Redis is a redis-server of our own on a
# free loopback port, in the temporary folder, without persistence; it runs
# throughout (the redis and both targets share it, as instances would).
#
# Every run: strata started with the target's flags, an untimed warm-up
# (WARMUP; it also fills the caches), then wrk. Database queries per request
# are the growth of strata_cache_loads_total{cache="items"} (all results)
# over the run, read from strata's /metrics, divided by the requests wrk
# made; with --cache=false there is no cache and every request is one query
# by construction. The hits per tier (strata_cache_requests_total) and the
# coalesced lookups (strata_cache_coalesced_total) are reported the same
# way. CPU per request is strata's (bare's for bare) from /proc, with
# Redis's and wrk's beside it, and "others": the cores the rest of the
# machine (other processes, and the hypervisor's steal) took during the run,
# which on a shared machine explains most of the noise. A run that sees any
# non-2xx answer or socket error fails the script, and so does any target
# whose body differs from the others'.
#
# Odd rounds run bare, off, local, redis, both; even rounds the reverse, so
# a drift of the machine's load does not always land on the same side.
#
# Needs go, curl, wrk and redis-server (with redis-cli); as root on Debian it
# installs what is missing with apt-get (curl, wrk, redis-server).
#
# Settings (environment): ROUNDS (2), DURATION (10s), THREADS (2),
# CONNECTIONS (64), WARMUP (2s), LOG_LEVEL (warn). PROFILE=FILE adds one
# more run of the both target (PROFILE_TARGET: off, local or redis instead)
# after the rounds, with --debug-addr on loopback, and saves a CPU profile
# of strata during it (that run is printed, not counted in the medians);
# read it with `go tool pprof -top FILE`.
. "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
WARMUP=${WARMUP:-2s}
LOG_LEVEL=${LOG_LEVEL:-warn}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive integer, got $ROUNDS" >&2; exit 1; }
[[ $CONNECTIONS =~ ^[1-9][0-9]*$ ]] || { echo "CONNECTIONS must be a positive integer, got $CONNECTIONS" >&2; exit 1; }
PROFILE_TARGET=${PROFILE_TARGET:-both}
[[ $PROFILE_TARGET =~ ^(off|local|redis|both)$ ]] ||
	{ echo "PROFILE_TARGET must be off, local, redis or both, got $PROFILE_TARGET" >&2; exit 1; }
[ -z "${PROFILE:-}" ] || [[ $DURATION =~ ^[0-9]+s$ ]] ||
	{ echo "PROFILE needs DURATION in seconds (like 10s), got $DURATION" >&2; exit 1; }
command -v go >/dev/null || { echo "go is not installed (https://go.dev/doc/install)" >&2; exit 1; }

# The tools: installed with apt-get when missing and we may.
need curl:curl wrk:wrk redis-server:redis-server redis-cli:redis-server

EMAIL=creator@example.com
PASSWORD="correct horse battery staple"
DATA=$WORK/data
TICK=$(getconf CLK_TCK)

build_strata
(cd "$ROOT" && go build -o "$WORK/bare" ./bench/bare)

# Redis: our own, on a free loopback port, nothing written to disk.
mkdir -p "$WORK/redis"
REDIS_PORT=
for attempt in 1 2 3 4 5; do
	port=$(free_port)
	(cd "$WORK/redis" && exec redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
		--dir "$WORK/redis" --daemonize no) >"$WORK/redis.log" 2>&1 &
	REDIS_PID=$!
	started "$REDIS_PID"
	for i in $(seq 100); do
		if [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]; then
			REDIS_PORT=$port
			break 2
		fi
		kill -0 "$REDIS_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill "$REDIS_PID" 2>/dev/null || true
	wait "$REDIS_PID" 2>/dev/null || true
	grep -q 'Address already in use' "$WORK/redis.log" || break
done
[ -n "$REDIS_PORT" ] || { echo "redis-server did not start; its log:" >&2; tail -20 "$WORK/redis.log" >&2; exit 1; }
REDIS_URL=redis://127.0.0.1:$REDIS_PORT

TARGETS=(bare off local redis both)
declare -A FLAGS=(
	[off]="--cache=false"
	[local]="--cache-tiers local"
	[redis]="--redis-url $REDIS_URL --cache-tiers redis"
	[both]="--redis-url $REDIS_URL"
)

# start_strata_on NAME [FLAGS...] starts `strata serve` on the one data
# folder and a free loopback port, waits until /readyz is 200, and sets
# STRATA_URL, STRATA_PID and STRATA_OUT.
start_strata_on() {
	local name=$1 i
	shift
	STRATA_OUT=$WORK/$name.out
	"$WORK/strata" serve --data-dir "$DATA" --http-addr 127.0.0.1:0 --log-level "$LOG_LEVEL" \
		--shutdown-delay 0 "$@" >"$STRATA_OUT" 2>"$WORK/$name.log" &
	STRATA_PID=$!
	started "$STRATA_PID"
	STRATA_URL=$(wait_listening "$STRATA_OUT" "$STRATA_PID") || { tail -20 "$WORK/$name.log" >&2; exit 1; }
	for i in $(seq 300); do
		if [ "$(curl -s -o /dev/null -w '%{http_code}' "$STRATA_URL/readyz")" = 200 ]; then
			return 0
		fi
		sleep 0.1
	done
	echo "strata ($name) not ready within 30s; log:" >&2
	tail -20 "$WORK/$name.log" >&2
	exit 1
}

# stop_strata stops the strata started last (SIGTERM; SIGKILL after 30 s)
# and forgets its PID.
stop_strata() {
	local i p rest=()
	kill "$STRATA_PID" 2>/dev/null || true
	for i in $(seq 300); do
		kill -0 "$STRATA_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$STRATA_PID" 2>/dev/null && { echo "strata $STRATA_PID ignored SIGTERM for 30s; killing it" >&2; kill -9 "$STRATA_PID" 2>/dev/null || true; }
	wait "$STRATA_PID" 2>/dev/null || true
	for p in "${PIDS[@]}"; do
		[ "$p" = "$STRATA_PID" ] || rest+=("$p")
	done
	PIDS=("${rest[@]}")
}

# The creator, in the data folder.
printf '%s\n' "$PASSWORD" | "$WORK/strata" users create --data-dir "$DATA" \
	--email "$EMAIL" --role creator --log-level warn >"$WORK/users.out" 2>&1 ||
	{ echo "strata users create failed:" >&2; cat "$WORK/users.out" >&2; exit 1; }

start_strata_on setup --upload-types application/octet-stream --redis-url "$REDIS_URL"



TOKEN=
TOKEN=$(api POST /v1/auth/login -H 'Content-Type: application/json' \
	-d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" | field access_token)
[ -n "$TOKEN" ] || { echo "login answered no access_token" >&2; exit 1; }
head -c 1024 /dev/urandom >"$WORK/x.bin" # random bytes sniff as application/octet-stream
ITEM=$(publish_item '{"title":"bench cache","description":"an item for bench/cache.sh","price":{"amount":250,"currency":"USD"},"tags":["bench"]}' \
	"$WORK/x.bin" x.bin)
TOKEN=
REQ_PATH=/v1/items/$ITEM
# The body strata answers anyone: what bare serves.
curl -sSf -o "$WORK/body.json" "$STRATA_URL$REQ_PATH" ||
	{ echo "anonymous GET $REQ_PATH failed" >&2; exit 1; }
WANT=$(sha256sum <"$WORK/body.json" | cut -d' ' -f1)
stop_strata

"$WORK/bare" -body "$WORK/body.json" >"$WORK/bare.out" 2>&1 &
BARE_PID=$!
started "$BARE_PID"
BARE_URL=$(wait_listening "$WORK/bare.out" "$BARE_PID")

# counters prints the items cache's loads, local hits, redis hits, misses
# and coalesced lookups.
counters() {
	local m
	m=$(curl -sSf "$STRATA_URL/metrics") || { echo "GET /metrics failed" >&2; exit 1; }
	awk '
		/^strata_cache_loads_total\{/ && /cache="items"/ { loads += $NF }
		/^strata_cache_requests_total\{/ && /cache="items"/ && /tier="local"/ && /result="hit"/ { lh += $NF }
		/^strata_cache_requests_total\{/ && /cache="items"/ && /tier="redis"/ && /result="hit"/ { rh += $NF }
		/^strata_cache_requests_total\{/ && /cache="items"/ && /result="miss"/ { miss += $NF }
		/^strata_cache_coalesced_total\{/ && /cache="items"/ { co += $NF }
		END { printf "%.0f %.0f %.0f %.0f %.0f\n", loads, lh, rh, miss, co }' <<<"$m"
}

# up TARGET [FLAGS...] makes TARGET's server run and sets URL and PIDOF.
up() {
	local target=$1
	shift
	if [ "$target" = bare ]; then
		URL=$BARE_URL
		PIDOF=$BARE_PID
		return
	fi
	# shellcheck disable=SC2086 # the flags are words
	start_strata_on "$target-r$round" ${FLAGS[$target]} "$@"
	URL=$STRATA_URL
	PIDOF=$STRATA_PID
}

# down TARGET stops what up started.
down() { [ "$1" = bare ] || stop_strata; }

# check TARGET fails unless TARGET answers the same body.
check() {
	local got
	got=$(curl -sSf "$URL$REQ_PATH" | sha256sum | cut -d' ' -f1)
	[ "$got" = "$WANT" ] || {
		echo "$1 answers another body for $REQ_PATH (sha256 $got, want $WANT):" >&2
		curl -sS "$URL$REQ_PATH" >&2
		exit 1
	}
}

echo "== GET /v1/items/{id} (one published item, anonymous, $(wc -c <"$WORK/body.json") bytes of JSON): strata (--log-level $LOG_LEVEL) with the caches off, in process only, Redis only and both tiers, vs bench/bare serving the same bytes"
machine
echo "redis:   $(redis-server --version | sed 's/ sha=.*//'), on 127.0.0.1:$REDIS_PORT"
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, $ROUNDS alternating rounds, each run after a restart and a $WARMUP warm-up, loopback"
echo

# children_ticks prints the CPU time (user + system) of this shell's
# children that were waited for (wrk among them), in clock ticks.
children_ticks() { awk '{print $16 + $17}' "/proc/$$/stat"; }

# machine_ticks prints the machine's busy ticks (all CPUs: user, nice,
# system, irq, softirq), its stolen ticks and all its ticks.
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat; }

# load TARGET runs wrk once (after the warm-up), prints one result line and
# records it (not in the profiled run); any non-2xx answer or socket error
# fails the script.
load() {
	local out rps p50 p99 non2xx sockerr t0 t1 r0 r1 w0 w1 m0 m1 n cpu rcpu wcpu others steal c0 c1 per
	wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" "$URL$REQ_PATH" >"$WORK/warmup.out" ||
		{ echo "the warm-up of $1 failed" >&2; cat "$WORK/warmup.out" >&2; exit 1; }
	! grep -qE 'Non-2xx|Socket errors' "$WORK/warmup.out" ||
		{ echo "$1: errors during the warm-up:" >&2; cat "$WORK/warmup.out" >&2; exit 1; }
	c0=
	[ "$1" = bare ] || c0=$(counters)
	[ "$round" != profile ] || profile_start "$STRATA_OUT"
	t0=$(cpu_ticks "$PIDOF")
	r0=$(cpu_ticks "$REDIS_PID")
	m0=$(machine_ticks)
	w0=$(children_ticks)
	out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$URL$REQ_PATH") ||
		{ echo "wrk failed against $1: $out" >&2; exit 1; }
	w1=$(children_ticks)
	m1=$(machine_ticks)
	t1=$(cpu_ticks "$PIDOF")
	r1=$(cpu_ticks "$REDIS_PID")
	if [ -n "$PROF_PID" ]; then
		wait "$PROF_PID" || echo "profile failed" >&2
		PROF_PID=
	fi
	c1=
	[ "$1" = bare ] || c1=$(counters)
	n=$(awk '/ requests in / {print $1}' <<<"$out")
	cpu=$(awk -v d=$((t1 - t0)) -v n="$n" -v hz="$TICK" 'BEGIN { if (n > 0) printf "%.1f", d / hz * 1e6 / n; else print "nan" }')
	rcpu=$(awk -v d=$((r1 - r0)) -v n="$n" -v hz="$TICK" 'BEGIN { if (n > 0) printf "%.1f", d / hz * 1e6 / n; else print "nan" }')
	wcpu=$(awk -v d=$((w1 - w0)) -v n="$n" -v hz="$TICK" 'BEGIN { if (n > 0) printf "%.1f", d / hz * 1e6 / n; else print "nan" }')
	# Everyone else's CPU during the run, in cores: the machine's busy time
	# less ours (server, Redis, wrk), and the time the hypervisor stole.
	read -r others steal <<<"$(awk -v a="$m0" -v b="$m1" -v ours=$((t1 - t0 + r1 - r0 + w1 - w0)) -v ncpu="$(nproc)" 'BEGIN {
		split(a, x, " "); split(b, y, " "); wall = (y[3] - x[3]) / ncpu
		if (wall <= 0) { print "nan nan"; exit }
		o = (y[1] - x[1] - ours) / wall; if (o < 0) o = 0
		printf "%.2f %.2f\n", o, (y[2] - x[2]) / wall
	}')"
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
	p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
	non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
	sockerr=$(sed -n 's/.*Socket errors: *//p' <<<"$out")
	[ -n "$rps" ] && [ -n "$p99" ] && [ -n "$n" ] || { echo "cannot parse wrk's output:" >&2; echo "$out" >&2; exit 1; }
	# Per request: database queries (loads), local hits, redis hits, misses,
	# lookups that waited for another's Redis read or load (singleflight).
	case $1 in
	bare) per="- - - - -" ;;
	off) per="1 - - - -" ;; # no cache: one read per request by construction
	*)
		per=$(awk -v a="$c0" -v b="$c1" -v n="$n" 'BEGIN {
			split(a, x, " "); split(b, y, " ")
			for (i = 1; i <= 5; i++) printf "%s%.6f", (i > 1 ? " " : ""), (y[i] - x[i]) / n
		}')
		;;
	esac
	read -r q lh rh miss co <<<"$per"
	printf '%-6s %10s req/s   p50 %8s   p99 %8s   cpu %6s us/req   redis %5s   wrk %5s   others %s cores, steal %s   queries/req %-8s (per req: local hit %s, redis hit %s, coalesced %s, miss %s)%s%s\n' \
		"$1" "$rps" "$p50" "$p99" "$cpu" "$rcpu" "$wcpu" "$others" "$steal" "$q" "$lh" "$rh" "$co" "$miss" \
		"${non2xx:+   NON-2xx: $non2xx}" "${sockerr:+   socket errors: $sockerr}"
	if [ -n "$non2xx" ] || [ -n "$sockerr" ]; then
		echo "$1: wrk saw ${non2xx:-0} non-2xx answers${sockerr:+ and socket errors ($sockerr)}; the run is void" >&2
		tail -5 "$WORK/$1-r$round.log" >&2 2>/dev/null || true
		exit 1
	fi
	[ "$round" = profile ] || echo "$1 $rps $(ms "$p50") $(ms "$p99") $cpu $rcpu $q $lh $rh $miss $co $n $wcpu $others $steal" >>"$WORK/results"
}


: >"$WORK/results"
PROF_PID=
hdrs=
for round in $(seq "$ROUNDS"); do
	echo "round $round"
	order=("${TARGETS[@]}")
	[ $((round % 2)) = 1 ] || order=($(printf '%s\n' "${TARGETS[@]}" | tac))
	for target in "${order[@]}"; do
		up "$target"
		check "$target"
		[ "$round" != 1 ] || hdrs+="${hdrs:+, }$target $(curl -s -o /dev/null -w '%{size_header}' "$URL$REQ_PATH")"
		load "$target"
		down "$target"
	done
done
echo
echo "response header bytes: $hdrs; every target answered the same $(wc -c <"$WORK/body.json")-byte body (sha256 ${WANT:0:12}…)"
echo "medians over $ROUNDS rounds (cpu: the server's; redis cpu: redis-server's; queries/req: items cache loads over wrk's requests, 1 by construction with the cache off)"
awk -v targets="${TARGETS[*]}" '
	function median(key,   n, i, j, t, a) {
		n = split(vals[key], a, " ")
		if (a[1] == "-") return "-"
		for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	function q(v) { return v == "-" ? "-" : sprintf("%.6f", v) }
	{ for (f = 2; f <= 15; f++) vals[$1 " " f] = vals[$1 " " f] " " $f }
	END {
		nt = split(targets, tl, " ")
		printf "%-6s %10s %10s %10s %11s %11s %11s %7s %12s %10s %10s %10s %10s\n", "", "req/s", "p50", "p99", "cpu/req", "redis cpu", "wrk cpu", "others", "queries/req",
			"local hit", "redis hit", "coalesced", "miss"
		for (t = 1; t <= nt; t++) {
			w = tl[t]
			printf "%-6s %10.0f %8.2fms %8.2fms %8.1f us %8.1f us %8.1f us %7.2f %12s %10s %10s %10s %10s\n", w, median(w " 2"), median(w " 3"),
				median(w " 4"), median(w " 5"), median(w " 6"), median(w " 13"), median(w " 14"), q(median(w " 7")), q(median(w " 8")),
				q(median(w " 9")), q(median(w " 11")), q(median(w " 10"))
		}
		r = median("both 2") / median("bare 2")
		printf "ratio both/bare req/s: %.2f (target >= 0.8: %s)\n", r, (r >= 0.8 ? "met" : "MISSED")
		printf "ratio local/bare %.2f, redis/bare %.2f, off/bare %.2f\n", median("local 2") / median("bare 2"),
			median("redis 2") / median("bare 2"), median("off 2") / median("bare 2")
		printf "cpu/req over bare'"'"'s: both %.2f, local %.2f, redis %.2f, off %.2f\n", median("both 5") / median("bare 5"),
			median("local 5") / median("bare 5"), median("redis 5") / median("bare 5"), median("off 5") / median("bare 5")
		# wrk and the server share the cores: if they are the bottleneck,
		# req/s goes as 1 / (server + wrk CPU per request).
		printf "both/bare req/s that the CPU per request predicts when the cores are the limit, (bare + wrk) / (both + wrk): %.2f\n",
			(median("bare 5") + median("bare 13")) / (median("both 5") + median("both 13"))
	}' "$WORK/results"
echo "per round, both/bare req/s: $(awk '$1 == "both" { b[++nb] = $2 } $1 == "bare" { a[++na] = $2 } END { for (i = 1; i <= nb; i++) printf "%s%.2f", (i > 1 ? ", " : ""), b[i] / a[i] }' "$WORK/results")"
if [ -n "${PROFILE:-}" ]; then
	# Not in the medians: the profiler's own cost lands on this run.
	round=profile
	echo
	echo "profiled run ($PROFILE_TARGET, --debug-addr, not in the medians; profile in $PROFILE)"
	up "$PROFILE_TARGET" --debug-addr 127.0.0.1:0
	check "$PROFILE_TARGET"
	load "$PROFILE_TARGET"
	down "$PROFILE_TARGET"
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
