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

# nginx_conf PORT HTTP writes $WORK/nginx/nginx.conf: nginx in the
# foreground with its pid, logs and temporary files in $WORK, and an http
# block of the directives HTTP (listening on 127.0.0.1:PORT is HTTP's job).
nginx_conf() {
	local m temps="" user=""
	# Every compiled-in temp path must be writable, or nginx does not start.
	for m in client_body proxy fastcgi uwsgi scgi; do
		[[ $NGINX_V != *"--without-http_${m}_module"* ]] || continue
		mkdir -p "$WORK/nginx/$m"
		temps+="    ${m}_temp_path $WORK/nginx/$m;"$'\n'
	done
	# As root, nginx would otherwise switch its workers to nobody, who
	# cannot read the temporary folder.
	[ "$(id -u)" != 0 ] || user="user root $(id -gn);"
	cat >"$WORK/nginx/nginx.conf" <<EOF
$user
worker_processes auto;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx.err warn;
events {
    worker_connections 4096;
}
http {
$temps$2
}
EOF
}

# start_nginx CONFIG PATH starts nginx on a free loopback port, CONFIG PORT
# writing its configuration (with nginx_conf), and waits until PATH answers
# 200; it sets NGINX_URL and NGINX_PID. A port taken meanwhile is retried.
start_nginx() {
	local config=$1 path=$2 attempt port i
	mkdir -p "$WORK/nginx"
	NGINX_V=$(nginx -V 2>&1)
	NGINX_URL=
	for attempt in 1 2 3 4 5; do
		port=$(free_port)
		"$config" "$port"
		nginx -p "$WORK/nginx/" -e "$WORK/nginx.err" -c "$WORK/nginx/nginx.conf" -t >"$WORK/nginx-t.out" 2>&1 ||
			{ echo "nginx rejects the generated configuration:" >&2; cat "$WORK/nginx-t.out" >&2; exit 1; }
		nginx -p "$WORK/nginx/" -e "$WORK/nginx.err" -c "$WORK/nginx/nginx.conf" >>"$WORK/nginx.out" 2>&1 &
		NGINX_PID=$!
		started "$NGINX_PID"
		for i in $(seq 100); do
			if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port$path")" = 200 ]; then
				NGINX_URL=http://127.0.0.1:$port
				return 0
			fi
			kill -0 "$NGINX_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill "$NGINX_PID" 2>/dev/null || true
		wait "$NGINX_PID" 2>/dev/null || true
		grep -q 'Address already in use' "$WORK/nginx.err" || break
		: >"$WORK/nginx.err"
	done
	echo "nginx did not start; its error log:" >&2
	tail -20 "$WORK/nginx.err" >&2
	exit 1
}

# need COMMAND:PACKAGE... makes sure each COMMAND is there: as root on
# Debian it installs the missing packages with apt-get, else it fails
# naming them. A service the package started on install (nginx on port 80,
# redis-server on 6379) is stopped again: the benchmarks run their own on
# loopback.
need() {
	local spec missing=() pkg svc
	for spec in "$@"; do
		command -v "${spec%%:*}" >/dev/null && continue
		pkg=${spec#*:}
		[[ " ${missing[*]} " == *" $pkg "* ]] || missing+=("$pkg")
	done
	[ ${#missing[@]} -gt 0 ] || return 0
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
		echo "${missing[*]} not installed (apt-get install -y ${missing[*]}, as root)" >&2
		exit 1
	fi
	echo "installing ${missing[*]} with apt-get" >&2
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	for svc in nginx redis-server; do
		[[ " ${missing[*]} " == *" $svc "* ]] || continue
		if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
			echo "stopping and disabling the $svc service the package started" >&2
			systemctl disable --now "$svc" >/dev/null 2>&1 || true
		elif [ -x "/etc/init.d/$svc" ]; then
			"/etc/init.d/$svc" stop >/dev/null 2>&1 || true
		fi
	done
}

# api METHOD PATH [CURL ARGS...] prints the body of a 2xx answer of strata's
# API (STRATA_URL), called with TOKEN as bearer when it is set; anything
# else is an error.
api() {
	local method=$1 path=$2 out code
	shift 2
	out=$(curl -sS -X "$method" ${TOKEN:+-H "Authorization: Bearer $TOKEN"} -w '\n%{http_code}' "$@" \
		"$STRATA_URL$path") || { echo "$method $path: curl failed" >&2; return 1; }
	code=${out##*$'\n'}
	out=${out%$'\n'*}
	case $code in
	2??) printf '%s\n' "$out" ;;
	*)
		echo "$method $path: HTTP $code: $out" >&2
		return 1
		;;
	esac
}

# field NAME prints the first string member NAME of the JSON on stdin.
field() { grep -o "\"$1\":\"[^\"]*\"" | head -1 | cut -d'"' -f4; }

# profile_start LOG starts a CPU profile, into PROFILE, of the process
# whose output LOG announced its pprof address (--debug-addr), for the
# rest of the current run (DURATION); the profile is written when it ends.
profile_start() {
	local pprof seconds
	pprof=$(sed -n 's/.*pprof on \(http:\/\/[^ ]*\)\/debug.*/\1/p' "$1")
	[ -n "$pprof" ] || { echo "$1 shows no pprof address" >&2; exit 1; }
	seconds=$((${DURATION%s} > 2 ? ${DURATION%s} - 1 : 1))
	curl -sf -o "$PROFILE" "$pprof/debug/pprof/profile?seconds=$seconds" &
	PROF_PID=$!
	started "$PROF_PID"
}

# publish_item JSON FILE NAME creates an item from JSON (as TOKEN's
# holder), uploads FILE as its file NAME, waits until processing made the
# asset ready (30 s at most) and publishes the item; it prints its id.
publish_item() {
	local item status json i
	item=$(api POST /v1/items -H 'Content-Type: application/json' -d "$1" | field id)
	[ -n "$item" ] || { echo "POST /v1/items answered no id" >&2; return 1; }
	api PUT "/v1/items/$item/file?filename=$3" -H 'Content-Type: application/octet-stream' \
		--data-binary "@$2" >/dev/null
	status=
	for i in $(seq 300); do
		json=$(api GET "/v1/items/$item")
		status=$(grep -o '"asset":{"status":"[a-z]*"' <<<"$json" | cut -d'"' -f6 || true)
		[ "$status" = processing ] || break
		sleep 0.1
	done
	[ "$status" = ready ] || { echo "item $item: the asset is '$status' (want ready; processing gets 30s): $json" >&2; return 1; }
	api POST "/v1/items/$item/publish" >/dev/null
	echo "$item"
}
