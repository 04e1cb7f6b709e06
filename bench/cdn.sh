#!/usr/bin/env bash
# bench/cdn.sh: HTTP load on Strata's /cdn/ beside nginx serving the same
# bytes from disk, both on loopback, driven by the same wrk command in
# alternating rounds (issue 3): a 1 KiB and a 1 MiB object. Prints req/s,
# MiB/s and latency p50/p99 of every run, the medians over the rounds and the
# ratios strata/nginx against issue 3's targets (>= 0.8 of nginx's req/s at
# 1 KiB, >= 0.8 of its MiB/s at 1 MiB). Needs nginx (apt-get install -y
# nginx-light), wrk (apt-get install -y wrk), curl, sha256sum and pgrep.
#
# Strata: a creator account (strata users create), two free published items
# with random files uploaded through PUT /v1/items/{id}/file, and the signed
# /cdn/o/<sha256>/<name> URLs that GET /v1/items/{id}/download redirects to
# (--cdn-url-lifetime 1h, so they outlive the run). Both objects are served
# from strata's in-memory hot-object cache (--cdn-cache-object-max-bytes is
# 1 MiB by default, and the 1 MiB object is exactly that).
#
# nginx: run as the current user from a generated configuration in the
# temporary folder (worker_processes auto, access_log off, sendfile,
# tcp_nopush, open_file_cache, keepalive_requests raised so that neither
# server closes connections during a run), on a free loopback port, serving
# the files at the same paths (/cdn/o/<sha256>/<name>) with the headers
# strata sends that cost nothing (ETag, Last-Modified, Cache-Control,
# Content-Disposition, nosniff, Content-Security-Policy). wrk requests the
# same path and query from both. The bodies are checked to be byte-identical
# before anything is measured.
#
# Odd rounds run nginx first, even rounds strata first, so a drift of the
# machine's load does not always land on the same side. Besides req/s, each
# run reports the server's CPU time per request (from /proc, nginx's workers
# included), which a busy machine disturbs less than the rates.
#
# BARE=1 adds a third server to every round: bench/bare, a bare net/http
# server answering the same bytes with w.Write (no routing, no middleware,
# fewer headers), the ceiling of any net/http handler on this machine.
#
# strata runs with --log-level warn (LOG_LEVEL=info measures the access log
# too).
#
# Settings (environment): ROUNDS (2), DURATION (10s), THREADS (2),
# CONNECTIONS (64), LOG_LEVEL (warn), BARE (unset). PROFILE=FILE also saves
# a CPU profile of strata during its first 1 KiB round (PROFILE_SIZE=1m: its
# first 1 MiB round), through --debug-addr on loopback; read it with
# `go tool pprof -top FILE`.
. "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
LOG_LEVEL=${LOG_LEVEL:-warn}
command -v nginx >/dev/null || {
	echo "nginx is not installed (apt-get install -y nginx-light, or nginx); the script does not install it" >&2
	exit 1
}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install -y wrk)" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is not installed (apt-get install -y curl)" >&2; exit 1; }
command -v sha256sum >/dev/null || { echo "sha256sum is not installed (coreutils)" >&2; exit 1; }
command -v pgrep >/dev/null || { echo "pgrep is not installed (apt-get install -y procps)" >&2; exit 1; }
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive integer, got $ROUNDS" >&2; exit 1; }
PROFILE_SIZE=${PROFILE_SIZE:-1k}
[[ $PROFILE_SIZE == 1k || $PROFILE_SIZE == 1m ]] || { echo "PROFILE_SIZE must be 1k or 1m, got $PROFILE_SIZE" >&2; exit 1; }
[ -z "${PROFILE:-}" ] || [[ $DURATION =~ ^[0-9]+s$ ]] ||
	{ echo "PROFILE needs DURATION in seconds (like 10s), got $DURATION" >&2; exit 1; }

SIZES=(1k 1m)
declare -A BYTES=([1k]=1024 [1m]=1048576)
declare -A LABEL=([1k]="1 KiB" [1m]="1 MiB")
EMAIL=creator@example.com
PASSWORD="correct horse battery staple"

build_strata

# The files: random bytes, which sniff as application/octet-stream.
mkdir -p "$WORK/files"
for size in "${SIZES[@]}"; do
	head -c "${BYTES[$size]}" /dev/urandom >"$WORK/files/$size.bin"
done

# The creator, in the data folder start_strata is about to use.
printf '%s\n' "$PASSWORD" | "$WORK/strata" users create --data-dir "$WORK/strata-data" \
	--email "$EMAIL" --role creator --log-level warn >"$WORK/users.out" 2>&1 ||
	{ echo "strata users create failed:" >&2; cat "$WORK/users.out" >&2; exit 1; }

DEBUG=()
[ -z "${PROFILE:-}" ] || DEBUG=(--debug-addr 127.0.0.1:0)
start_strata strata --log-level "$LOG_LEVEL" --upload-types application/octet-stream \
	--cdn-url-lifetime 1h "${DEBUG[@]}"



TOKEN=
TOKEN=$(api POST /v1/auth/login -H 'Content-Type: application/json' \
	-d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" | field access_token)
[ -n "$TOKEN" ] || { echo "login answered no access_token" >&2; exit 1; }

declare -A SHA CDN_PATH
for size in "${SIZES[@]}"; do
	file=$WORK/files/$size.bin
	SHA[$size]=$(sha256sum "$file" | cut -d' ' -f1)
	item=$(publish_item "{\"title\":\"bench $size\",\"price\":{\"amount\":0,\"currency\":\"USD\"}}" "$file" "$size.bin")
	location=$(curl -sS -o /dev/null -D - -H "Authorization: Bearer $TOKEN" "$STRATA_URL/v1/items/$item/download" |
		tr -d '\r' | awk 'tolower($1) == "location:" {print $2}')
	[[ $location == "/cdn/o/${SHA[$size]}/$size.bin?"* ]] ||
		{ echo "GET /v1/items/$item/download: expected a Location of /cdn/o/${SHA[$size]}/$size.bin?..., got '$location'" >&2; exit 1; }
	CDN_PATH[$size]=$location
	# nginx serves the same bytes at the same path.
	mkdir -p "$WORK/www/cdn/o/${SHA[$size]}"
	cp "$file" "$WORK/www/cdn/o/${SHA[$size]}/$size.bin"
done


# nginx_config PORT writes nginx.conf for PORT.
nginx_config() {
	nginx_conf "$1" "$(cat <<EOF
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    server_tokens off;
    open_file_cache max=1000 inactive=60s;
    open_file_cache_valid 60s;
    open_file_cache_errors on;
    types { }
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$1;
        root $WORK/www;
        location ~ "^/cdn/o/[0-9a-f]{64}/(?<fname>[^/]+)\$" {
            add_header Cache-Control "private, max-age=31536000, immutable";
            add_header Content-Disposition 'attachment; filename="\$fname"';
            add_header X-Content-Type-Options nosniff;
            add_header Content-Security-Policy "default-src 'none'; sandbox";
        }
    }
EOF
)"
}

start_nginx nginx_config "${CDN_PATH[1k]}"

TARGETS=(nginx strata)
declare -A BARE_URL BARE_PID
if [ -n "${BARE:-}" ]; then
	TARGETS+=(bare)
	(cd "$ROOT" && go build -o "$WORK/bare" ./bench/bare)
	for size in "${SIZES[@]}"; do
		"$WORK/bare" -body "$WORK/files/$size.bin" >"$WORK/bare-$size.out" 2>&1 &
		BARE_PID[$size]=$!
		started "${BARE_PID[$size]}"
		BARE_URL[$size]=$(wait_listening "$WORK/bare-$size.out" "${BARE_PID[$size]}")
	done
fi

# url TARGET SIZE prints the URL wrk loads: the same path and query for all.
url() {
	case $1 in
	strata) echo "$STRATA_URL${CDN_PATH[$2]}" ;;
	nginx) echo "$NGINX_URL${CDN_PATH[$2]}" ;;
	bare) echo "${BARE_URL[$2]}${CDN_PATH[$2]}" ;;
	esac
}

# pids TARGET SIZE prints the processes of a server (nginx's workers too).
pids() {
	case $1 in
	strata) echo "$STRATA_PID" ;;
	nginx) echo "$NGINX_PID" $(pgrep -P "$NGINX_PID" || true) ;;
	bare) echo "${BARE_PID[$2]}" ;;
	esac
}

TICK=$(getconf CLK_TCK)

# The same bytes from all, or the comparison is void.
for size in "${SIZES[@]}"; do
	for target in "${TARGETS[@]}"; do
		got=$(curl -sSf "$(url "$target" "$size")" | sha256sum | cut -d' ' -f1)
		[ "$got" = "${SHA[$size]}" ] ||
			{ echo "$target answers other bytes for the $size object (sha256 $got, want ${SHA[$size]})" >&2; exit 1; }
	done
done

# hdrsize URL prints the size of the response headers.
hdrsize() { curl -s -o /dev/null -w '%{size_header}' "$1"; }

echo "== GET /cdn/o/...: strata (--log-level $LOG_LEVEL) vs nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), same bytes, same paths"
machine
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, $ROUNDS alternating rounds, loopback"
hdrs=
for target in "${TARGETS[@]}"; do
	hdrs+="${hdrs:+, }$target $(hdrsize "$(url "$target" 1k)") bytes"
done
echo "response headers: $hdrs"
echo


# load SIZE TARGET runs wrk once, prints one result line and records it.
load() {
	local out rps tps mibs p50 p99 non2xx sockerr procs t0 t1 n cpu
	procs=$(pids "$2" "$1")
	# shellcheck disable=SC2086 # a list of PIDs
	t0=$(cpu_ticks $procs)
	out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$(url "$2" "$1")") ||
		{ echo "wrk failed against $2: $out" >&2; exit 1; }
	# shellcheck disable=SC2086
	t1=$(cpu_ticks $procs)
	n=$(awk '/ requests in / {print $1}' <<<"$out")
	cpu=$(awk -v d=$((t1 - t0)) -v n="$n" -v hz="$TICK" 'BEGIN { if (n > 0) printf "%.1f", d / hz * 1e6 / n; else print "nan" }')
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	tps=$(awk '/^Transfer\/sec:/ {print $2}' <<<"$out")
	mibs=$(awk -v v="$tps" 'BEGIN {
		n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		f = (u == "B") ? 1 / 1048576 : (u == "KB") ? 1 / 1024 : (u == "MB") ? 1 : (u == "GB") ? 1024 : (u == "TB") ? 1048576 : -1
		if (f < 0) print "nan"; else printf "%.1f", n * f
	}')
	p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
	p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
	non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
	sockerr=$(sed -n 's/.*Socket errors: *//p' <<<"$out")
	[ -n "$rps" ] && [ -n "$p99" ] || { echo "cannot parse wrk's output:" >&2; echo "$out" >&2; exit 1; }
	printf '%-6s %-7s %10s req/s %9s MiB/s   p50 %8s   p99 %8s   cpu %7s us/req%s%s\n' "${LABEL[$1]}" "$2" "$rps" "$mibs" \
		"$p50" "$p99" "$cpu" "${non2xx:+   NON-2xx: $non2xx}" "${sockerr:+   socket errors: $sockerr}"
	echo "$1 $2 $rps $mibs $(ms "$p50") $(ms "$p99") $cpu" >>"$WORK/results"
}


: >"$WORK/results"
PROF_PID=
for round in $(seq "$ROUNDS"); do
	echo "round $round"
	order=("${TARGETS[@]}")
	[ $((round % 2)) = 1 ] || order=($(printf '%s\n' "${TARGETS[@]}" | tac))
	for size in "${SIZES[@]}"; do
		for target in "${order[@]}"; do
			if [ "$target" = strata ] && [ -n "${PROFILE:-}" ] && [ "$round" = 1 ] && [ "$size" = "$PROFILE_SIZE" ]; then
				profile_start "$WORK/strata.out"
			fi
			load "$size" "$target"
			if [ -n "$PROF_PID" ]; then
				wait "$PROF_PID" || echo "profile failed" >&2
				PROF_PID=
			fi
		done
	done
done
echo
echo "medians over $ROUNDS rounds"
awk -v targets="${TARGETS[*]}" '
	function median(key,   n, i, j, t, a) {
		n = split(vals[key], a, " ")
		for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	{ for (f = 3; f <= 7; f++) vals[$1 " " $2 " " f] = vals[$1 " " $2 " " f] " " $f }
	END {
		split("1k 1m", sizes, " "); label["1k"] = "1 KiB"; label["1m"] = "1 MiB"
		nt = split(targets, tl, " ")
		for (s = 1; s <= 2; s++) {
			z = sizes[s]
			for (t = 1; t <= nt; t++) {
				who = tl[t]
				printf "%-6s %-7s %10.0f req/s %9.1f MiB/s   p50 %7.2fms   p99 %7.2fms   cpu %7.1f us/req\n", label[z], who,
					median(z " " who " 3"), median(z " " who " 4"), median(z " " who " 5"), median(z " " who " 6"),
					median(z " " who " 7")
			}
		}
		r = median("1k strata 3") / median("1k nginx 3")
		m = median("1m strata 4") / median("1m nginx 4")
		printf "ratio strata/nginx: 1 KiB req/s %.2f (target >= 0.8: %s), 1 MiB MiB/s %.2f (target >= 0.8: %s)\n",
			r, (r >= 0.8 ? "met" : "MISSED"), m, (m >= 0.8 ? "met" : "MISSED")
		printf "p99 strata/nginx:   1 KiB %.2f, 1 MiB %.2f\n",
			median("1k strata 6") / median("1k nginx 6"), median("1m strata 6") / median("1m nginx 6")
		printf "cpu/req strata/nginx: 1 KiB %.2f, 1 MiB %.2f\n",
			median("1k strata 7") / median("1k nginx 7"), median("1m strata 7") / median("1m nginx 7")
		if (nt == 3) {
			printf "bare/nginx:  1 KiB req/s %.2f, 1 MiB MiB/s %.2f (the ceiling of a net/http server here)\n",
				median("1k bare 3") / median("1k nginx 3"), median("1m bare 4") / median("1m nginx 4")
			printf "strata/bare: 1 KiB req/s %.2f, 1 MiB MiB/s %.2f\n",
				median("1k strata 3") / median("1k bare 3"), median("1m strata 4") / median("1m bare 4")
		}
	}' "$WORK/results"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
