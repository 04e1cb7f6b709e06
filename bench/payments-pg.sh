#!/usr/bin/env bash
# bench/payments-pg.sh: purchases/s of `strata serve` over HTTP on one and
# on two PostgreSQL databases, beside pgbench's TPC-B-like script on the
# same server in the same run (issue 5). Prints every measurement, the
# medians over the rounds, the ratios one-database purchases / pgbench tps
# (target >= 0.6) and two databases / one.
#
# One PostgreSQL server (PGBIN, default the newest /usr/lib/postgresql/*/bin)
# runs for the whole script as the postgres user (PostgreSQL refuses root),
# initdb'd in the script's temporary folder, on a free loopback port, auth
# trust, and is stopped and removed on exit. Settings: shared_buffers
# 256MB, fsync and synchronous_commit on (a commit waits for its WAL flush,
# as in the orientation figure), max_connections 150, max_wal_size 4GB and
# checkpoint_timeout 30min (no checkpoint inside a measurement; each
# measurement starts after an explicit CHECKPOINT).
#
# Measurements, in each round:
#   - pgbench: `pgbench -i -s SCALE` (10) once into its own database, then
#     the built-in TPC-B-like script, `pgbench -c 8 -j 2 -T DURATION -M
#     prepared` (the ceiling: five statements, three updates of a
#     1M-row / 100-row / 10-row table, one select, one insert, one commit)
#     and, for reference, the same at CLIENTS clients; after an untimed
#     warm-up. Latency p50 and p99 are per transaction, from pgbench's log.
#   - purchase-1db: strata on --postgres a=<db> (all 256 logical shards in
#     one database), driven by bench/paybench -mode purchase -clients
#     CLIENTS (32) exactly as bench/payments.sh drives it on SQLite:
#     funded buyers buy distinct published 1.00 USD items, POST
#     /v1/purchases with a fresh Idempotency-Key, 201 is a success.
#   - purchase-2db: the same with --postgres a=<db>,b=<db>: the shards
#     split over two databases OF THE SAME SERVER. This measures what
#     application-level sharding costs or gains (more connections, the
#     cross-database saga for a buyer and a creator in different
#     databases), not more hardware: one server, one WAL, the same two
#     cores.
# Each strata measurement gets a fresh strata (fresh --data-dir) on fresh
# databases, created before and dropped after it: a new deployment's shard
# map is only spread over the databases when it is first created, and
# fresh tables keep rounds from carrying each other's rows. Odd rounds run
# pgbench-8, pgbench-CLIENTS, purchase-1db, purchase-2db; even rounds the
# reverse.
#
# Reported per measurement: rate, p50, p99, errors; CPU time per operation
# of strata and of PostgreSQL (the postmaster and its backends) and of the
# load driver. For strata also, setup included: the ERRORs PostgreSQL
# logged (serialization failures, deadlocks, unique violations...), lock
# waits over a second, connections opened, commits, rollbacks and
# deadlocks; the purchases by settlement (local or saga, the warm-up
# included); for two databases, when the timed phase ended, how many
# purchases were not settled yet (credited_at unset on the buyer's
# database), how many of their credit events the outbox relay had not
# published yet and how many credits were applied on the creators'
# databases, and how long the saga took to settle them all; strata's first
# WARN/ERROR log lines, if any (but the test card network's start-up
# warning).
#
# Settings (environment): ROUNDS (2), DURATION (10s, whole seconds),
# WARMUP (2s), CLIENTS (32), PGBENCH_CLIENTS (8), SCALE (10), LOG_LEVEL
# (warn), MAX_CONNS (strata's --postgres-max-conns, 16), PGBIN, and for
# the load's shape CREATORS and STAGGER: every purchase locks its creator's
# earnings row until it commits, and paybench's buyers walk the items,
# whose creators take turns, in step, so few creators are credited at a
# time. CREATORS (2, as bench/payments.sh; up to 64) is paybench's
# -creators; STAGGER=1 passes -stagger (buyer i starts at item i: with
# CREATORS=CLIENTS, concurrent purchases credit different creators).
# STATEMENTS=1 loads pg_stat_statements and prints, after each strata
# measurement, the statements that took the most time per purchase (for
# diagnosis; it costs a few percent). PROFILE=FILE saves a CPU profile of
# strata during the timed phase of its first purchase-1db measurement
# (PROFILE_DBS=2: purchase-2db); read it with `go tool pprof -top FILE`.
. "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CLIENTS=${CLIENTS:-32}
PGBENCH_CLIENTS=${PGBENCH_CLIENTS:-8}
SCALE=${SCALE:-10}
LOG_LEVEL=${LOG_LEVEL:-warn}
MAX_CONNS=${MAX_CONNS:-16}
CREATORS=${CREATORS:-2}
STAGGER=${STAGGER:-}
PROFILE_DBS=${PROFILE_DBS:-1}
if [ -z "${PGBIN:-}" ]; then
	PGBIN=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -1)
fi
for n in ROUNDS CLIENTS PGBENCH_CLIENTS SCALE MAX_CONNS CREATORS; do
	[[ ${!n} =~ ^[1-9][0-9]*$ ]] || { echo "$n must be a positive integer, got ${!n}" >&2; exit 1; }
done
[ "$CREATORS" -le 64 ] || { echo "CREATORS must be at most 64, got $CREATORS" >&2; exit 1; }
[[ $DURATION =~ ^[1-9][0-9]*s$ ]] || { echo "DURATION must be whole seconds like 10s, got $DURATION" >&2; exit 1; }
[[ $WARMUP =~ ^[0-9]+s$ ]] || { echo "WARMUP must be whole seconds like 2s, got $WARMUP" >&2; exit 1; }
[[ $PROFILE_DBS == 1 || $PROFILE_DBS == 2 ]] || { echo "PROFILE_DBS must be 1 or 2, got $PROFILE_DBS" >&2; exit 1; }
[ -x "$PGBIN/postgres" ] && [ -x "$PGBIN/pgbench" ] ||
	{ echo "no PostgreSQL in PGBIN=$PGBIN (Debian: apt-get install -y postgresql)" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is not installed (apt-get install -y curl)" >&2; exit 1; }
if [ "$(id -u)" = 0 ]; then
	id postgres >/dev/null 2>&1 || { echo "running as root needs a postgres user to run PostgreSQL as" >&2; exit 1; }
	as_pg() { (cd / && runuser -u postgres -- "$@"); }
else
	as_pg() { "$@"; }
fi

# ---- PostgreSQL ------------------------------------------------------------

PGDIR=$WORK/pg
PG_PID=

# stop_all ends what this script started: strata and paybench first, then
# PostgreSQL (fast shutdown), then lib.sh's cleanup removes the folder.
stop_all() {
	local pid
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	PIDS=()
	if [ -n "$PG_PID" ] && kill -0 "$PG_PID" 2>/dev/null; then
		as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 || kill -9 "$PG_PID" 2>/dev/null || true
	fi
	cleanup
}
trap stop_all EXIT

# free_port prints a loopback TCP port nothing listens on.
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 30000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}

start_postgres() {
	chmod 711 "$WORK" # the postgres user reaches its folder inside
	mkdir "$PGDIR"
	[ "$(id -u)" != 0 ] || chown postgres: "$PGDIR"
	as_pg "$PGBIN/initdb" -D "$PGDIR/data" -U strata --auth=trust -E UTF8 --locale=C >"$WORK/initdb.log" 2>&1 ||
		{ cat "$WORK/initdb.log" >&2; exit 1; }
	PGPORT=$(free_port)
	cat >>"$PGDIR/data/postgresql.conf" <<-EOF
		listen_addresses = '127.0.0.1'
		port = $PGPORT
		unix_socket_directories = '$PGDIR'
		max_connections = 150
		shared_buffers = 256MB
		fsync = on
		synchronous_commit = on
		full_page_writes = on
		max_wal_size = 4GB
		checkpoint_timeout = 30min
		log_line_prefix = '%m [%p] %d '
		log_lock_waits = on
	EOF
	[ -z "${STATEMENTS:-}" ] || printf "shared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track = all\n" >>"$PGDIR/data/postgresql.conf"
	as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 60 start >/dev/null ||
		{ echo "postgres did not start; log:" >&2; tail -20 "$PGDIR/server.log" >&2; exit 1; }
	PG_PID=$(head -1 "$PGDIR/data/postmaster.pid")
}

# psql_c DB SQL runs SQL on DB and prints the result unaligned.
psql_c() {
	as_pg "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U strata -d "$1" -c "$2"
}

dsn() { echo "postgres://strata@127.0.0.1:$PGPORT/$1?sslmode=disable"; }

# pg_ticks prints the CPU time, in clock ticks, PostgreSQL used so far: the
# postmaster's own and its reaped children's, plus its live children's.
pg_ticks() {
	{
		cat "/proc/$PG_PID/stat"
		for f in /proc/[0-9]*/stat; do cat "$f" 2>/dev/null || true; done
	} | awk -v pm="$PG_PID" '
		NR == 1 { sub(/^.*\) /, ""); t = $12 + $13 + $14 + $15; next }
		{ pid = $1; sub(/^.*\) /, ""); if ($2 == pm && pid != pm) t += $12 + $13 }
		END { print t }'
}

# pg_log_mark prints the server log's size: pg_errors reads from there.
pg_log_mark() { stat -c %s "$PGDIR/server.log"; }

# pg_errors MARK prints the ERRORs the server logged since MARK, counted by
# message (the varying parts of a message blanked).
pg_errors() {
	tail -c +$(($1 + 1)) "$PGDIR/server.log" | sed -n 's/.* \(ERROR\|FATAL\):  *//p' |
		sed -E 's/"[^"]*"/"…"/g; s/[0-9]+/N/g' | sort | uniq -c | sort -rn | head -5 |
		awk '{ n = $1; $1 = ""; printf "%s%d ×%s", (NR > 1 ? "; " : ""), n, $0 } END { if (NR == 0) printf "none" }'
}

# lock_waits MARK prints how many lock waits the server logged since MARK
# (log_lock_waits: a wait longer than deadlock_timeout, 1 s).
lock_waits() { tail -c +$(($1 + 1)) "$PGDIR/server.log" | grep -c 'still waiting for' || true; }

checkpoint() { psql_c postgres "CHECKPOINT" >/dev/null; }

# pgbench_gone waits (up to 5 s) until no backend serves pgbench's database
# and a moment more: pg_ticks misses a backend that exits while it reads.
pgbench_gone() {
	local i
	for i in $(seq 50); do
		[ "$(psql_c postgres "SELECT count(*) FROM pg_stat_activity WHERE datname = 'pgbench'")" != 0 ] || break
		sleep 0.1
	done
	sleep 0.2
}

# ---- measurements ----------------------------------------------------------

TIMEFORMAT='%U %S'

# pgbench_measure ROUND CLIENTS runs pgbench's TPC-B-like script after a
# warm-up and records a RESULT line like paybench's.
pgbench_measure() {
	local round=$1 clients=$2 secs=${DURATION%s} warm=${WARMUP%s} t0 t1 w0 w1 out n tps failed lat
	local jobs=$((clients < 2 ? 1 : 2))
	local logdir=$PGDIR/pgbench-log-$round-$clients
	checkpoint
	if [ "$warm" -gt 0 ]; then
		as_pg "$PGBIN/pgbench" -h 127.0.0.1 -p "$PGPORT" -U strata -c "$clients" -j "$jobs" -T "$warm" -M prepared pgbench \
			>/dev/null 2>"$WORK/pgbench.err" || { echo "pgbench warm-up failed:" >&2; cat "$WORK/pgbench.err" >&2; exit 1; }
	fi
	as_pg mkdir "$logdir"
	local load
	load=$(cut -d' ' -f1 /proc/loadavg)
	pgbench_gone
	w0=$(psql_c postgres "SELECT wal_sync FROM pg_stat_wal")
	t0=$(pg_ticks)
	{ time as_pg "$PGBIN/pgbench" -h 127.0.0.1 -p "$PGPORT" -U strata -c "$clients" -j "$jobs" -T "$secs" -M prepared \
		-l --log-prefix="$logdir/tx" pgbench >"$WORK/pgbench.out" 2>"$WORK/pgbench.err"; } 2>"$WORK/pgbench.time" ||
		{ echo "pgbench failed:" >&2; cat "$WORK/pgbench.err" >&2; exit 1; }
	pgbench_gone
	t1=$(pg_ticks)
	w1=$(psql_c postgres "SELECT wal_sync FROM pg_stat_wal")
	out=$WORK/pgbench.out
	n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
	tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$out")
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
	lat=$(cat "$logdir"/tx.* | awk '{ print $3 }' | sort -n | awk '
		{ a[NR] = $1 } END { p50 = a[int(NR * 0.50 + 0.999999)]; p99 = a[int(NR * 0.99 + 0.999999)]
			printf "p50_ms=%.2f p99_ms=%.2f", p50 / 1000, p99 / 1000 }')
	rm -rf "$logdir"
	awk -v n="$n" -v tps="$tps" -v failed="${failed:-0}" -v lat="$lat" -v clients="$clients" -v secs="$secs" \
		-v dt="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" -v drv="$(cat "$WORK/pgbench.time")" -v round="$round" -v load="$load" \
		-v wal="$((w1 - w0))" '
		BEGIN { split(drv, d, " ")
			printf "RESULT mode=pgbench clients=%d n=%d seconds=%s rps=%.1f %s errors=%d db_cpu_us=%.1f driver_cpu_us=%.1f wal_flushes_per_tx=%.2f what=pgbench-%d round=%s load=%s\n",
				clients, n, secs, tps, lat, failed, dt / hz * 1e6 / n, (d[1] + d[2]) * 1e6 / n, wal / n, clients, round, load }' |
		tee -a "$WORK/results"
}

# strata_log_problems FILE prints how many WARN/ERROR lines strata logged
# (but the test card network's start-up warning) and the first three.
strata_log_problems() {
	local n
	grep -E 'level=(WARN|ERROR)|"level":"(WARN|ERROR)"' "$1" | grep -v 'built-in test card network' >"$1.problems" || true
	n=$(wc -l <"$1.problems")
	[ "$n" -gt 0 ] || return 0
	echo "    # strata logged $n WARN/ERROR lines; the first:"
	head -3 "$1.problems" | cut -c1-600 | sed 's/^/    #   /'
}

# saga_owed DB... prints the cross-database purchases not marked credited
# on the buyer's database yet: the saga's last step (see
# internal/payments/saga.go).
saga_owed() {
	local db n=0
	for db in "$@"; do
		n=$((n + $(psql_c "$db" "SELECT count(*) FROM payments_purchases WHERE settlement = 'saga' AND status = 'completed' AND credited_at IS NULL")))
	done
	echo "$n"
}

# db_counters DB... prints the sessions, committed transactions (read-only
# ones included), rollbacks and deadlocks of the databases so far, and the
# server's WAL flushes (fsyncs; one flush commits every transaction
# waiting for it).
db_counters() {
	local names
	names=$(printf "'%s'," "$@")
	psql_c postgres "SELECT sum(sessions) || ' ' || sum(xact_commit) || ' ' || sum(xact_rollback) || ' ' || sum(deadlocks) || ' ' ||
			(SELECT wal_sync FROM pg_stat_wal)
		FROM pg_stat_database WHERE datname IN (${names%,})"
}

# sample_counters FILE DB... appends the time and db_counters to FILE every
# second, until killed (a psql each time: a few ms of CPU).
sample_counters() {
	local file=$1
	shift
	while :; do
		echo "$(date +%s.%N) $(db_counters "$@")" >>"$file"
		sleep 1
	done
}

# timed_counters FILE END SECONDS prints the connections opened, the
# transactions committed and the WAL flushes between END-SECONDS and END
# (unix seconds) from FILE's samples: the timed phase, give or take the
# second PostgreSQL takes to publish its counters.
timed_counters() {
	awk -v end="$2" -v secs="$3" '
		$1 <= end - secs { s0 = $2; c0 = $3; w0 = $6 }
		$1 <= end { s1 = $2; c1 = $3; w1 = $6 }
		END { print s1 - s0, c1 - c0, w1 - w0 }' "$1"
}

# statements DB... prints the statements PostgreSQL ran most, by total
# execution time, for the whole measurement (setup included), per purchase.
statements() {
	local n=0 db
	for db in "$@"; do n=$((n + $(psql_c "$db" "SELECT count(*) FROM payments_purchases"))); done
	echo "    # top statements by execution time on all databases (setup included), per purchase ($n purchases):"
	psql_c "$1" "SELECT to_char(sum(calls)::float8 / $n, 'FM990.00') || ' calls, ' ||
			to_char(sum(total_exec_time)::float8 * 1000 / $n, 'FM9999990') || ' us, ' ||
			to_char(sum(total_exec_time) / sum(calls) * 1000, 'FM9999990') || ' us/call: ' ||
			regexp_replace(left(query, 110), '\s+', ' ', 'g')
		FROM pg_stat_statements GROUP BY query ORDER BY sum(total_exec_time) DESC LIMIT 14" | sed 's/^/    #   /'
	psql_c "$1" "SELECT 'all statements: ' || to_char(sum(calls)::float8 / $n, 'FM9990.0') || ' calls, ' ||
			to_char(sum(total_exec_time) * 1000 / $n, 'FM999990') || ' us per purchase' FROM pg_stat_statements" | sed 's/^/    #   /'
}

# saga_applied DB... prints the credits applied on the creators' databases.
saga_applied() {
	local db n=0
	for db in "$@"; do
		n=$((n + $(psql_c "$db" "SELECT count(*) FROM payments_saga_receipts WHERE state = 'applied'")))
	done
	echo "$n"
}

# saga_unpublished DB... prints the saga credit events still in the
# outboxes, not yet published to the queue by the relay.
saga_unpublished() {
	local db n=0
	for db in "$@"; do
		n=$((n + $(psql_c "$db" "SELECT count(*) FROM outbox_events WHERE subject = 'payments.saga.credit' AND sent_at IS NULL")))
	done
	echo "$n"
}

# strata_measure ROUND DBS runs strata on DBS (1 or 2) fresh databases and
# paybench's purchases against it.
PROFILED=
strata_measure() {
	local round=$1 ndb=$2 name="r${1}_${2}db" dbs=() spec=() db x
	for x in a b; do
		[ ${#dbs[@]} -lt "$ndb" ] || break
		db=${name}_$x
		psql_c postgres "CREATE DATABASE $db" >/dev/null
		dbs+=("$db")
		spec+=("$x=$(dsn "$db")")
	done
	local debug=() prof=()
	if [ -n "${PROFILE:-}" ] && [ -z "$PROFILED" ] && [ "$ndb" = "$PROFILE_DBS" ]; then
		debug=(--debug-addr 127.0.0.1:0)
	fi
	start_strata "strata-$name" --log-level "$LOG_LEVEL" --payments-test-latency 0 --postgres-max-conns "$MAX_CONNS" \
		--postgres "$(IFS=,; echo "${spec[*]}")" "${debug[@]}"
	if [ ${#debug[@]} -gt 0 ]; then
		local pprof
		pprof=$(sed -n 's/.*pprof on \(http:\/\/[^ ]*\)\/debug.*/\1/p' "$WORK/strata-$name.out")
		[ -n "$pprof" ] || { echo "strata printed no pprof address" >&2; exit 1; }
		prof=(-pprof "$pprof" -profile "$PROFILE")
		PROFILED=1
	fi
	checkpoint
	local mark out owed=0 applied=0 unpublished=0 t0 drained= before
	mark=$(pg_log_mark)
	before=$(db_counters "${dbs[@]}")
	[ -z "${STATEMENTS:-}" ] || psql_c "${dbs[0]}" "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()" >/dev/null
	local stagger=() sampler end
	[ -z "$STAGGER" ] || stagger=(-stagger)
	sample_counters "$WORK/counters-$name" "${dbs[@]}" &
	sampler=$!
	started "$sampler"
	out=$("$WORK/paybench" -mode purchase -clients "$CLIENTS" -creators "$CREATORS" "${stagger[@]}" -duration "$DURATION" -warmup "$WARMUP" \
		-url "$STRATA_URL" -pid "$STRATA_PID" -db-pid "$PG_PID" "${prof[@]}" \
		-label "what=purchase-${ndb}db round=$round load=$(cut -d' ' -f1 /proc/loadavg)" 2>"$WORK/paybench.err") ||
		{ echo "paybench failed:" >&2; cat "$WORK/paybench.err" >&2; strata_log_problems "$WORK/strata-$name.log" >&2; exit 1; }
	end=$(date +%s.%N)
	if [ "$ndb" -gt 1 ]; then
		owed=$(saga_owed "${dbs[@]}")
		applied=$(saga_applied "${dbs[@]}")
		unpublished=$(saga_unpublished "${dbs[@]}")
		t0=$(date +%s.%N)
		while awk -v t0="$t0" -v t1="$(date +%s.%N)" 'BEGIN { exit !(t1 - t0 < 60) }'; do
			[ "$(saga_owed "${dbs[@]}")" -gt 0 ] || { drained=$(awk -v t0="$t0" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.1f", t1 - t0 }'); break; }
			sleep 0.1
		done
	fi
	echo "$out" | tee -a "$WORK/results"
	sed 's/^paybench: /    # /' "$WORK/paybench.err"
	local settle="" s
	for db in "${dbs[@]}"; do
		s=$(psql_c "$db" "SELECT settlement || '=' || count(*) FROM payments_purchases GROUP BY settlement ORDER BY settlement" | tr '\n' ' ')
		settle+="$db: ${s:-none} "
	done
	echo "    # purchases by settlement (warm-up included): $settle"
	if [ "$ndb" -gt 1 ]; then
		if [ -n "$drained" ]; then
			echo "    # saga: when paybench ended, $owed purchases not settled, $unpublished credit events not yet relayed, $applied credits applied on the creators' databases; all settled ${drained}s later"
		else
			echo "    # saga: when paybench ended, $owed purchases not settled, $unpublished credit events not yet relayed, $applied credits applied on the creators' databases; $(saga_owed "${dbs[@]}") STILL NOT SETTLED 60s later"
		fi
	fi
	echo "    # PostgreSQL errors logged (setup included): $(pg_errors "$mark"); lock waits over deadlock_timeout (1 s): $(lock_waits "$mark")"
	sleep 1 # backends report their statistics at most once a second
	# shellcheck disable=SC2086 # five numbers each
	set -- $before $(db_counters "${dbs[@]}")
	echo "    # PostgreSQL (setup included): $(($6 - $1)) connections opened, $(($7 - $2)) transactions committed, $(($8 - $3)) rolled back, $(($9 - $4)) deadlocks"
	kill "$sampler" 2>/dev/null || true
	wait "$sampler" 2>/dev/null || true
	# shellcheck disable=SC2046 # three numbers
	set -- $(timed_counters "$WORK/counters-$name" "$end" "${DURATION%s}") "$(echo "$out" | sed -n 's/.* n=\([0-9]*\) .*/\1/p')"
	echo "    # PostgreSQL in the timed phase (±1 s), per purchase: $(awk -v s="$1" -v c="$2" -v w="$3" -v n="$4" \
		'BEGIN { if (n == 0) { printf "no purchase succeeded"; exit }; printf "%.2f connections opened, %.1f transactions committed (read-only ones included), %.2f WAL flushes", s / n, c / n, w / n }')"
	[ -z "${STATEMENTS:-}" ] || statements "${dbs[@]}"
	strata_log_problems "$WORK/strata-$name.log"
	# Stop this strata (and forget its pid) and drop its databases.
	kill "$STRATA_PID" 2>/dev/null || true
	wait "$STRATA_PID" 2>/dev/null || true
	local keep=() pid
	for pid in "${PIDS[@]}"; do [ "$pid" = "$STRATA_PID" ] || [ "$pid" = "$sampler" ] || keep+=("$pid"); done
	PIDS=("${keep[@]}")
	for db in "${dbs[@]}"; do psql_c postgres "DROP DATABASE $db WITH (FORCE)" >/dev/null; done
}

# ---- the run ---------------------------------------------------------------

build_strata
(cd "$ROOT" && go build -o "$WORK/paybench" ./bench/paybench)
if [ -n "${PROFILE:-}" ]; then case $PROFILE in /*) ;; *) PROFILE=$PWD/$PROFILE ;; esac; fi
start_postgres

echo "== payments on PostgreSQL: purchases/s over HTTP on 1 and 2 databases vs pgbench TPC-B on the same server"
machine
echo "uptime:  $(uptime | sed "s/^ *//")"
echo "postgres: $("$PGBIN/postgres" --version | sed 's/^postgres //'), 127.0.0.1:$PGPORT, shared_buffers 256MB, fsync on, synchronous_commit on, data in $PGDIR ($(df -T "$PGDIR" | awk 'NR == 2 { print $2 }'))"
echo "strata --log-level $LOG_LEVEL --payments-test-latency 0 --postgres-max-conns $MAX_CONNS; paybench -mode purchase -clients $CLIENTS -creators $CREATORS${STAGGER:+ -stagger}"
echo "pgbench -s $SCALE, -M prepared, $PGBENCH_CLIENTS and $CLIENTS clients; -duration $DURATION -warmup $WARMUP; $ROUNDS alternating rounds, loopback"
echo

psql_c postgres "CREATE DATABASE pgbench" >/dev/null
t0=$(date +%s)
as_pg "$PGBIN/pgbench" -h 127.0.0.1 -p "$PGPORT" -U strata -i -q -s "$SCALE" pgbench >"$WORK/pgbench-init.log" 2>&1 ||
	{ cat "$WORK/pgbench-init.log" >&2; exit 1; }
echo "pgbench -i -s $SCALE: $(($(date +%s) - t0))s"

: >"$WORK/results"
for round in $(seq "$ROUNDS"); do
	steps=("pgbench $PGBENCH_CLIENTS" "pgbench $CLIENTS" "strata 1" "strata 2")
	[ $((round % 2)) = 1 ] || mapfile -t steps < <(printf '%s\n' "${steps[@]}" | tac)
	echo "round $round"
	for step in "${steps[@]}"; do
		# shellcheck disable=SC2086 # the step is a kind and a number
		set -- $step
		case $1 in
		pgbench) pgbench_measure "$round" "$2" ;;
		strata) strata_measure "$round" "$2" ;;
		esac
	done
done

echo
echo "medians over $ROUNDS rounds"
awk -v clients="$CLIENTS" -v pgc="$PGBENCH_CLIENTS" '
	function median(key,   n, i, j, t, a) {
		n = split(vals[key], a, " ")
		if (n == 0) return -1
		for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	$1 == "RESULT" {
		delete f
		for (i = 2; i <= NF; i++) { k = $i; sub(/=.*/, "", k); v = $i; sub(/^[^=]*=/, "", v); f[k] = v }
		key = f["what"]
		if (!(key in seen)) { seen[key] = 1; order[++nkeys] = key; cl[key] = f["clients"] }
		vals[key " rps"] = vals[key " rps"] " " f["rps"]
		vals[key " p50"] = vals[key " p50"] " " f["p50_ms"]
		vals[key " p99"] = vals[key " p99"] " " f["p99_ms"]
		vals[key " err"] = vals[key " err"] " " f["errors"]
		vals[key " srv"] = vals[key " srv"] " " ("server_cpu_us" in f ? f["server_cpu_us"] : 0)
		vals[key " db"] = vals[key " db"] " " f["db_cpu_us"]
		vals[key " drv"] = vals[key " drv"] " " f["driver_cpu_us"]
	}
	END {
		for (k = 1; k <= nkeys; k++) {
			key = order[k]
			printf "%-14s %2d clients %8.1f /s   p50 %7.2f ms   p99 %7.2f ms   errors %d   cpu/op: strata %6.0f us, postgres %5.0f us, driver %5.0f us\n",
				key, cl[key], median(key " rps"), median(key " p50"), median(key " p99"), median(key " err"),
				median(key " srv"), median(key " db"), median(key " drv")
		}
		pg = median("pgbench-" pgc " rps"); p1 = median("purchase-1db rps"); p2 = median("purchase-2db rps")
		printf "ratio purchase-1db / pgbench-%d %.3f (target >= 0.6: %s)\n", pgc, p1 / pg, (p1 / pg >= 0.6 ? "met" : "MISSED")
		printf "ratio purchase-2db / purchase-1db %.3f (two databases on the same server)\n", p2 / p1
	}' "$WORK/results"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "uptime:  $(uptime | sed "s/^ *//")"
[ -z "${PROFILE:-}" ] || echo "CPU profile of strata (purchase-${PROFILE_DBS}db): $PROFILE (go tool pprof -top $PROFILE)"
