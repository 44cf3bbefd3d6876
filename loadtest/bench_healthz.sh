#!/usr/bin/env bash
# wrk against recd's /healthz and against nginx serving the same bytes as a
# static file, side by side: how far recd's HTTP path is from a tuned C
# server doing the least possible work.
#
#   loadtest/bench_healthz.sh /abs/path/to/bin/recd      (what `make bench` runs)
#
# Environment: BENCH_THREADS (wrk threads, default 2), BENCH_CONNS
# (connections, default 64), BENCH_DURATION (seconds per target, default
# 10; "10s" is accepted too), BENCH_WORKERS (recd http.workers and nginx
# worker_processes, default 2).
#
# Both servers listen on free loopback ports and are stopped on exit; all
# their files live in a temporary directory that is removed. The table is
# also saved to loadtest/results/healthz-<UTC date and time>.txt.
set -euo pipefail

if [ "$#" -ne 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 /path/to/bin/recd" >&2
    exit 2
fi
recd_bin=$1
here=$(cd "$(dirname "$0")" && pwd)

threads=${BENCH_THREADS:-2}
conns=${BENCH_CONNS:-64}
duration=${BENCH_DURATION:-10}
duration=${duration%s}
workers=${BENCH_WORKERS:-2}
for v in threads conns duration workers; do
    if ! [[ ${!v} =~ ^[1-9][0-9]*$ ]]; then
        echo "bench: $v must be a positive integer, got '${!v}'" >&2
        exit 2
    fi
done

nginx_bin=/usr/sbin/nginx
for tool in wrk curl "$nginx_bin" /usr/bin/python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "bench: $tool not found (run scripts/deps.sh bench)" >&2
        exit 1
    fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/recd-bench.XXXXXX")
recd_pid=
nginx_pid=

# stop PID: SIGTERM, then SIGKILL if it is still there after 5 s.
stop() {
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    stop "$recd_pid"
    stop "$nginx_pid"
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# Three distinct free loopback ports: held open together while chosen, so
# they differ; there is a small window before the servers bind them.
read -r recd_port admin_port nginx_port < <(/usr/bin/python3 -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))
')

# ---- recd ------------------------------------------------------------------
recd_url=http://127.0.0.1:$recd_port/healthz
# Run from the temporary directory so relative paths of the built-in
# defaults land there.
(cd "$tmp" && exec "$recd_bin" \
    --set "http.listen=127.0.0.1:$recd_port" \
    --set "admin.listen=127.0.0.1:$admin_port" \
    --set "http.workers=$workers" \
    --set log.level=warn) >"$tmp/recd.log" 2>&1 &
recd_pid=$!

# wait_up URL PID NAME LOG: poll URL for up to 10 s while PID lives.
wait_up() {
    local i
    for i in $(seq 100); do
        if curl -sf -o /dev/null --max-time 1 "$1"; then
            return 0
        fi
        if ! kill -0 "$2" 2>/dev/null; then
            echo "bench: $3 exited during start-up; its log:" >&2
            cat "$4" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "bench: $3 did not answer $1 within 10 s; its log:" >&2
    cat "$4" >&2
    return 1
}
wait_up "$recd_url" "$recd_pid" recd "$tmp/recd.log"

# ---- nginx -------------------------------------------------------------------
# The static file holds exactly recd's /healthz body, so both send the same
# payload. As root, nginx's workers run as nobody and must be able to read
# the directory.
mkdir -p "$tmp/www" "$tmp/nginx-tmp"
curl -sf --max-time 2 "$recd_url" >"$tmp/www/healthz"
chmod 0755 "$tmp" "$tmp/www"
chmod 0644 "$tmp/www/healthz"
cat >"$tmp/nginx.conf" <<EOF
worker_processes $workers;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    client_body_temp_path $tmp/nginx-tmp/body;
    proxy_temp_path $tmp/nginx-tmp/proxy;
    fastcgi_temp_path $tmp/nginx-tmp/fastcgi;
    uwsgi_temp_path $tmp/nginx-tmp/uwsgi;
    scgi_temp_path $tmp/nginx-tmp/scgi;
    default_type application/json;
    # wrk keeps its connections; do not let nginx close them every 1000
    # requests (its default), which would cost it reconnects.
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    server {
        listen 127.0.0.1:$nginx_port;
        root $tmp/www;
    }
}
EOF
nginx_url=http://127.0.0.1:$nginx_port/healthz
"$nginx_bin" -p "$tmp" -e "$tmp/nginx-error.log" -c "$tmp/nginx.conf" \
    >"$tmp/nginx.out" 2>&1 &
nginx_pid=$!
wait_up "$nginx_url" "$nginx_pid" nginx "$tmp/nginx-error.log"

# ---- wrk ---------------------------------------------------------------------
# run_wrk NAME URL: run wrk and leave its output in $tmp/wrk-NAME.txt. The
# timeout only guards against a wrk that does not stop by itself.
run_wrk() {
    echo "wrk: $1 ($2), ${threads} threads, ${conns} connections, ${duration}s" >&2
    timeout -k 5 $((duration + 30)) \
        wrk -t"$threads" -c"$conns" -d"${duration}s" --latency "$2" >"$tmp/wrk-$1.txt"
}
run_wrk recd "$recd_url"
run_wrk nginx "$nginx_url"

# parse NAME: print "rps p50 p75 p90 p99 non2xx sockerr" (latencies in ms).
parse() {
    awk '
    function ms(v) {
        if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
        if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
        if (v ~ /s$/)  return substr(v, 1, length(v) - 1) * 1000
        return -1
    }
    $1 == "50%" { p50 = ms($2) }
    $1 == "75%" { p75 = ms($2) }
    $1 == "90%" { p90 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    $1 == "Requests/sec:" { rps = $2 }
    /Non-2xx or 3xx responses:/ { non2xx = $NF }
    /Socket errors:/ {
        for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) err += $i + 0
    }
    END {
        if (rps == "") exit 1
        printf "%s %.3f %.3f %.3f %.3f %d %d\n", rps, p50, p75, p90, p99, non2xx, err
    }' "$tmp/wrk-$1.txt"
}
if ! recd_row=$(parse recd) || ! nginx_row=$(parse nginx); then
    echo "bench: could not parse wrk output:" >&2
    cat "$tmp"/wrk-*.txt >&2
    exit 1
fi

mkdir -p "$here/results"
out=$here/results/healthz-$(date -u +%Y%m%dT%H%M%SZ).txt
{
    echo "# recd /healthz vs nginx static file of the same body ($(wc -c <"$tmp/www/healthz") bytes)"
    echo "# wrk -t$threads -c$conns -d${duration}s --latency; recd http.workers=$workers, nginx worker_processes $workers"
    echo "# machine: $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), kernel $(uname -r), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "# recd: $("$recd_bin" --version 2>/dev/null | head -n 1); nginx: $("$nginx_bin" -v 2>&1 | sed 's|.*/||')"
    echo "# wrk, recd and nginx share these CPUs; compare the ratio, not absolute numbers."
    printf '%-8s %12s %10s %10s %10s %10s %9s %9s\n' \
        target 'req/s' 'p50 ms' 'p75 ms' 'p90 ms' 'p99 ms' 'non-2xx' 'sock-err'
    for row in "recd $recd_row" "nginx $nginx_row"; do
        # shellcheck disable=SC2086
        printf '%-8s %12.0f %10.3f %10.3f %10.3f %10.3f %9d %9d\n' $row
    done
    awk -v a="${recd_row%% *}" -v b="${nginx_row%% *}" \
        'BEGIN { printf "recd/nginx req/s: %.1f%%\n", (b > 0 ? 100 * a / b : 0) }'
} | tee "$out"
echo "saved to loadtest/results/${out##*/}" >&2
