#!/usr/bin/env bash
# Run cmocka unit-test binaries and summarise them.
#
#   scripts/run-unit.sh build/tests/test_core build/tests/test_conf ...
#
# Each binary's output is shown as it runs. At the end one line is printed:
#
#   unit: N passed, M failed
#
# where N and M count cmocka test cases, read from cmocka's
# "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s)" lines (summed over
# every group in every binary). A binary that exits non-zero without
# reporting a failed case (a crash, a sanitizer abort, a timeout, a failing
# group setup) counts as one more failure. Exit status: 0 when every binary
# exited 0 and no case failed, 1 otherwise.
#
# Environment: UNIT_TIMEOUT (seconds per binary, default 300).
set -uo pipefail

if [ "$#" -eq 0 ]; then
    echo "run-unit: no test binaries given (nothing to run)" >&2
    echo "unit: 0 passed, 0 failed"
    exit 1
fi

timeout_s=${UNIT_TIMEOUT:-300}
log=$(mktemp "${TMPDIR:-/tmp}/recd-unit.XXXXXX")
trap 'rm -f "$log"' EXIT

# The summary parsing relies on cmocka's standard text format.
export CMOCKA_MESSAGE_OUTPUT=STDOUT

passed=0
failed=0
bad_bins=()

for bin in "$@"; do
    echo "=== $bin"
    if [ ! -x "$bin" ]; then
        echo "run-unit: $bin: not an executable file" >&2
        failed=$((failed + 1))
        bad_bins+=("$bin (missing)")
        continue
    fi

    # cmocka writes progress to stdout and results to stderr. Line-buffer
    # stdout (stdbuf) so that both interleave in order and a crash does not
    # swallow the "[ RUN ]" line of the test that crashed. stdbuf works by
    # LD_PRELOAD, which a dynamically linked ASan runtime refuses to run
    # under, so binaries linked against libasan run without it.
    runner=(timeout -k 10 "$timeout_s")
    if command -v stdbuf >/dev/null 2>&1 &&
        ! { command -v readelf >/dev/null 2>&1 &&
            readelf -d "$bin" 2>/dev/null | grep -q 'NEEDED.*libasan'; }; then
        runner+=(stdbuf -oL)
    fi

    "${runner[@]}" "$bin" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}

    p=$(sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test(s)\..*/\1/p' "$log" |
        awk '{ s += $1 } END { print s + 0 }')
    f=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test(s).*/\1/p' "$log" |
        awk '{ s += $1 } END { print s + 0 }')
    passed=$((passed + p))
    failed=$((failed + f))

    if [ "$rc" -ne 0 ]; then
        case $rc in
        124) why="timed out after ${timeout_s}s" ;;
        137) why="killed after timing out" ;;
        *) if [ "$rc" -gt 128 ]; then
            why="killed by signal $((rc - 128))"
        else
            why="exit status $rc"
        fi ;;
        esac
        if [ "$f" -eq 0 ]; then
            # Nothing counted yet for this binary's failure: count it once.
            failed=$((failed + 1))
        fi
        bad_bins+=("$bin ($why)")
    elif [ "$f" -ne 0 ]; then
        bad_bins+=("$bin ($f failed)")
    elif [ "$p" -eq 0 ]; then
        echo "run-unit: warning: $bin exited 0 but reported no passed tests" >&2
    fi
done

if [ "${#bad_bins[@]}" -gt 0 ]; then
    echo
    echo "failing binaries:"
    printf '  %s\n' "${bad_bins[@]}"
fi
echo "unit: $passed passed, $failed failed"
[ "${#bad_bins[@]}" -eq 0 ] && [ "$failed" -eq 0 ]
