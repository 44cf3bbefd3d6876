#!/usr/bin/env bash
# Event ingest benchmark: POST /v1/events under each events.fsync policy at
# batch sizes 1 and 100, then /v1/recommend latency alone and under a
# background events load (needs models/default, see `make models`).
#
#   loadtest/bench_events.sh /abs/path/to/bin     (the directory holding recd)
#
# The work is done by loadtest/bench_events.py (wrk with
# loadtest/bench_events.lua); its docstring lists the BENCH_* environment
# variables. About 60 s with the defaults (BENCH_DURATION=5 per run).
set -euo pipefail
if [ "$#" -ne 1 ] || [ ! -x "$1/recd" ]; then
    echo "usage: $0 /path/to/bin   (the directory holding recd)" >&2
    exit 2
fi
for tool in wrk /usr/bin/python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "bench: $tool not found (run scripts/deps.sh bench)" >&2
        exit 1
    fi
done
exec /usr/bin/python3 "$(cd "$(dirname "$0")" && pwd)/bench_events.py" "$1"
