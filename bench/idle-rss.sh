#!/usr/bin/env bash
# bench/idle-rss.sh: resident memory of an idle `strata serve` (all roles,
# embedded SQLite and NATS, default settings, a fresh data folder): VmRSS
# from /proc/PID/status about SETTLE seconds after /readyz turns 200, then
# again after N signups and N logins (each an argon2id hash of 19 MiB) and
# the same settling time. Issue 2's target: idle VmRSS <= 100 MiB.
#
# Settings (environment): SETTLE (5 seconds), N (20).
. "$(dirname "$0")/lib.sh"

SETTLE=${SETTLE:-5}
N=${N:-20}

build_strata
start_strata strata --log-level warn
sleep "$SETTLE"

rss() { awk -v what="$1" '$1 == what":" {printf "%.1f MiB", $2 / 1024}' "/proc/$STRATA_PID/status"; }

echo "== idle resident memory of strata serve (all roles, embedded SQLite + NATS, defaults)"
machine
echo
IDLE=$(awk '$1 == "VmRSS:" {print $2}' "/proc/$STRATA_PID/status")
echo "idle, ${SETTLE}s after ready:            VmRSS $(rss VmRSS)   (VmHWM $(rss VmHWM))"

for i in $(seq "$N"); do
	[ -n "$(signup "user$i@example.com")" ] || { echo "signup $i failed" >&2; exit 1; }
done
for i in $(seq "$N"); do
	login "user$i@example.com" || { echo "login $i failed" >&2; exit 1; }
done
sleep "$SETTLE"
echo "after $N signups + $N logins, ${SETTLE}s later: VmRSS $(rss VmRSS)   (VmHWM $(rss VmHWM))"
echo
awk -v kib="$IDLE" 'BEGIN { printf "idle VmRSS %.1f MiB, target <= 100 MiB: %s\n", kib / 1024, (kib <= 100 * 1024 ? "met" : "MISSED") }'
