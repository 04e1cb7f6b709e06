#!/usr/bin/env bash
# bench/go-bench.sh: the Go benchmarks of issue 2, each beside its anchor,
# one package at a time (-p 1: parallel test binaries would share the
# cores), followed by the median of every figure. Each repetition is a
# separate `go test -count 1`, so that a figure and its anchor are measured
# moments apart (with -count N, go test repeats each sub-benchmark N times
# in a row); the "ratio" sub-benchmarks set them against each other.
# Takes about 10 minutes.
#
# Settings (environment): COUNT (5) repetitions of the fast benchmarks,
# SLOW_COUNT (3) of login, signup and the HTTP benchmark. OUT=FILE also
# keeps the raw output (benchstat-compatible).
. "$(dirname "$0")/lib.sh"

COUNT=${COUNT:-5}
SLOW_COUNT=${SLOW_COUNT:-3}
RAW="$WORK/raw.txt"

# bench N ARGS... runs `go test -p 1 -count 1 -run '^$' ARGS...` N times.
bench() {
	local n=$1 i
	shift
	echo "== ${n}× go test -p 1 -count 1 -run '^\$' $*"
	machine
	(cd "$ROOT" && go test -c -o "$WORK/" "${@: -1}" >/dev/null) # compile outside the timings
	for i in $(seq "$n"); do
		(cd "$ROOT" && go test -p 1 -count 1 -run '^$' "$@") | tee -a "$RAW" | grep -E '^Benchmark|^(FAIL|ok|panic)' || true
	done
	echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo
}

# Token verification through the middleware and issuing, with the Ed25519
# anchors; the token package's own benchmarks for reference.
bench "$COUNT" -bench 'Authenticate|Ed25519Sign' ./internal/auth/
bench "$COUNT" -bench 'Sign$|Ed25519Verify$|VerifyCold$|VerifyWarm$' ./internal/auth/token/
# GET /v1/auth/me in process, beside a bare handler.
bench "$COUNT" -bench '^BenchmarkMe$' ./internal/auth/
# Login and signup (argon2id at the defaults), beside argon2id alone.
bench "$SLOW_COUNT" -bench 'Login|Signup' -cpu 1,2 -benchtime 3s ./internal/auth/
# GET /v1/auth/me over loopback HTTP: strata serve beside a bare server.
bench "$SLOW_COUNT" -bench AuthMe -benchtime 3s ./cmd/strata/

[ -z "${OUT:-}" ] || cp "$RAW" "$OUT"
echo "== medians of $COUNT (fast) / $SLOW_COUNT (slow) runs"
awk '/^Benchmark/ { for (i = 3; i + 1 <= NF; i += 2) print $1, $(i + 1), $i }' "$RAW" |
	sort -k1,1 -k2,2 -k3,3g |
	awk '{ key = $1 " " $2; v[key, ++n[key]] = $3; if (!(key in seen)) { seen[key] = 1; order[++k] = key } }
		END {
			for (j = 1; j <= k; j++) {
				key = order[j]; c = n[key]
				m = (c % 2) ? v[key, (c + 1) / 2] : (v[key, c / 2] + v[key, c / 2 + 1]) / 2
				split(key, parts, " ")
				printf "%-52s %14.4g %s\n", parts[1], m, parts[2]
			}
		}'
