#!/usr/bin/env bash
# Hot-swap benchmark: p99 of POST /v1/recommend at a fixed request rate
# (open loop) in steady state, during continuous swaps and while the
# embedded trainer runs; peak RSS during swaps; publish-to-serving time.
#
#   loadtest/bench_swap.sh /abs/path/to/bin     (the directory holding recd)
#
# The work is done by loadtest/bench_swap.py; its docstring lists the
# BENCH_* environment variables. About 80 s with the defaults. The output is
# also kept in loadtest/results/swap-<UTC time>.txt.
set -euo pipefail
if [ "$#" -ne 1 ] || [ ! -x "$1/recd" ]; then
    echo "usage: $0 /path/to/bin   (the directory holding recd)" >&2
    exit 2
fi
if [ ! -x /usr/bin/python3 ]; then
    echo "bench: /usr/bin/python3 not found" >&2
    exit 1
fi
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$here/results"
out="$here/results/swap-$(date -u +%Y%m%dT%H%M%SZ).txt"
/usr/bin/python3 "$here/bench_swap.py" "$1" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
echo "bench-swap: output kept in ${out#"$here/../"}"
exit "$rc"
