#!/usr/bin/env bash
# wrk against POST /v1/recommend on a synthetic catalog (default 100k x 64,
# 300 candidates per request). Usage: loadtest/bench_recommend.sh BIN_DIR
# Environment: BENCH_ITEMS (100000), BENCH_INDEX (the generator's default),
# BENCH_THREADS (2), BENCH_CONNS (32), BENCH_DURATION (10s), BENCH_WORKERS (2).
set -euo pipefail
bindir=${1:?usage: bench_recommend.sh BIN_DIR}
items=${BENCH_ITEMS:-100000}
index=${BENCH_INDEX:-}
threads=${BENCH_THREADS:-2}
conns=${BENCH_CONNS:-32}
duration=${BENCH_DURATION:-10s}
workers=${BENCH_WORKERS:-2}
cd "$(dirname "$0")/.."

models=build/bench-models/recommend-$items${index:+-$index}
if [ ! -d "$models/default/1" ]; then
    rm -rf "$models"
    mkdir -p "$models"
    echo "bench: generating a $items-item catalog into $models"
    "$bindir/recd-train" synth-bundle --out "$models" --items "$items" --seed 7 \
        ${index:+--index "$index"} >/dev/null
fi

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
aport=$(free_port)
log=$(mktemp)
"$bindir/recd" -c conf/recd.json --set http.listen=127.0.0.1:$port \
    --set admin.listen=127.0.0.1:$aport --set http.workers=$workers \
    --set models_dir="$models" --set log.level=warn 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    kill -0 $pid 2>/dev/null || { cat "$log"; exit 1; }
    sleep 0.1
done
curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { echo "recd not ready"; cat "$log"; exit 1; }
idx=$(curl -s "http://127.0.0.1:$port/stats" | /usr/bin/python3 -c 'import json,sys; m=json.load(sys.stdin)["models"]["default"]; print(m["index"], m["items"], "items")')
echo "# POST /v1/recommend, 300 candidates, k=10; model: $idx; recd http.workers=$workers"
echo "# wrk -t$threads -c$conns -d$duration; machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
BENCH_ITEMS=$items wrk -t"$threads" -c"$conns" -d"$duration" --latency \
    -s loadtest/recommend.lua "http://127.0.0.1:$port" 2>&1 |
    grep -E 'Requests/sec|50%|90%|99%|Non-2xx|Socket errors|requests in'
# per-stage split as the server measured it (all requests of the run)
curl -s "http://127.0.0.1:$port/stats" | /usr/bin/python3 -c '
import json, sys
st = json.load(sys.stdin)["stages_us"]
print("# stage       count    mean_us   p50_us   p99_us")
for name in ("tower", "ann", "rank"):
    s = st[name]
    print("  %-8s %8d %10.1f %8d %8d" % (name, s["count"], s["mean"], s["p50"], s["p99"]))'
