#!/bin/sh
# Build every libFuzzer target in tests/fuzz/ with clang (ASan + UBSan) and
# run each for SECONDS. Usage: scripts/fuzz.sh [SECONDS]   (default 60)
#
# Corpora live in build/fuzz/corpus/<target>/, seeded from
# tests/fuzz/seeds/<target>/. A crash is copied into
# tests/fuzz/regressions/<target>/ so `make test` replays it from then on.
set -eu

SECONDS_EACH=${1:-60}
case $SECONDS_EACH in
    '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=build/fuzz
CLANG=${CLANG:-clang}

if ! command -v "$CLANG" >/dev/null 2>&1; then
    for v in 19 18 17 16 15 14; do
        if command -v "clang-$v" >/dev/null 2>&1; then CLANG=clang-$v; break; fi
    done
fi
command -v "$CLANG" >/dev/null 2>&1 || {
    echo "fuzz: clang not found (apt-get install clang libclang-rt-dev)" >&2
    exit 1
}

PKGS="libevent libevent_pthreads libevent_openssl jansson openssl"
PKG_CFLAGS=$(pkg-config --cflags $PKGS)
PKG_LIBS=$(pkg-config --libs $PKGS)
BASE="-g -O1 -std=c11 -D_GNU_SOURCE -Iinclude -fno-omit-frame-pointer $PKG_CFLAGS"
LIB_SAN="-fsanitize=fuzzer-no-link,address,undefined"
BIN_SAN="-fsanitize=fuzzer,address,undefined"

mkdir -p "$OUT/obj" "$OUT/gen"

# Build metadata header (the Makefile normally generates it).
GIT_REV=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
printf '#define RECD_BUILD_GIT "%s"\n' "$GIT_REV" > "$OUT/gen/buildinfo.h.tmp"
if cmp -s "$OUT/gen/buildinfo.h.tmp" "$OUT/gen/buildinfo.h"; then
    rm -f "$OUT/gen/buildinfo.h.tmp"
else
    mv "$OUT/gen/buildinfo.h.tmp" "$OUT/gen/buildinfo.h"
fi

# Library objects, instrumented for coverage but without libFuzzer's main.
echo "fuzz: building library with $CLANG"
OBJS=""
for src in src/*/*.c; do
    obj="$OUT/obj/$(echo "$src" | sed 's|/|_|g; s|\.c$|.o|')"
    if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ -n "$(find include src -name '*.h' -newer "$obj" 2>/dev/null | head -n 1)" ]; then
        # shellcheck disable=SC2086
        $CLANG $BASE $LIB_SAN -I"$OUT/gen" -c "$src" -o "$obj"
    fi
    OBJS="$OBJS $obj"
done

# An archive, so each target links only the objects it uses (the HTTP and
# config targets never pull in the FAISS-backed modules and their C++ deps).
rm -f "$OUT/librecd_fuzz.a"
# shellcheck disable=SC2086
ar rcs "$OUT/librecd_fuzz.a" $OBJS

TARGETS=$(cd tests/fuzz && ls fuzz_*.c 2>/dev/null | sed 's/\.c$//')
[ -n "$TARGETS" ] || { echo "fuzz: no targets in tests/fuzz" >&2; exit 1; }

for t in $TARGETS; do
    # shellcheck disable=SC2086
    $CLANG $BASE $BIN_SAN "tests/fuzz/$t.c" "$OUT/librecd_fuzz.a" -o "$OUT/$t" $PKG_LIBS -lm -pthread
done

passed=0
failed=0
failed_names=""
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

for t in $TARGETS; do
    corpus="$OUT/corpus/$t"
    artifacts="$OUT/artifacts/$t"
    mkdir -p "$corpus" "$artifacts"
    if [ -d "tests/fuzz/seeds/$t" ]; then
        cp -n tests/fuzz/seeds/$t/* "$corpus/" 2>/dev/null || true
    fi
    if [ -d "tests/fuzz/regressions/$t" ]; then
        cp -n tests/fuzz/regressions/$t/* "$corpus/" 2>/dev/null || true
    fi
    log="$OUT/$t.log"
    rm -f "$artifacts"/crash-* "$artifacts"/leak-* "$artifacts"/timeout-* "$artifacts"/oom-*
    set +e
    "$OUT/$t" -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=30 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | sed 's/cov: //')
    units=$(ls "$corpus" | wc -l)
    crashes=$(ls "$artifacts" 2>/dev/null | wc -l)
    if [ "$rc" -eq 0 ] && [ "$crashes" -eq 0 ]; then
        passed=$((passed + 1))
        printf 'fuzz: %-20s ok      %ss, %s execs, cov %s, corpus %s\n' \
            "$t" "$SECONDS_EACH" "${execs:-?}" "${cov:-?}" "$units"
    else
        failed=$((failed + 1))
        failed_names="$failed_names $t"
        mkdir -p "tests/fuzz/regressions/$t"
        for f in "$artifacts"/*; do
            [ -f "$f" ] || continue
            cp "$f" "tests/fuzz/regressions/$t/"
        done
        printf 'fuzz: %-20s FAILED  (exit %s, %s artifact(s); log %s)\n' \
            "$t" "$rc" "$crashes" "$log"
        grep -m 3 -E 'ERROR: |runtime error|invariant failed' "$log" | sed 's/^/      /' || true
    fi
done

echo "fuzz: $passed passed, $failed failed"
if [ "$failed" -gt 0 ]; then
    cat <<EOF
Crash inputs were copied to tests/fuzz/regressions/<target>/ ($failed_names ).
Reproduce one under the fuzzer build:
    $OUT/<target> tests/fuzz/regressions/<target>/<file>
or without libFuzzer (as \`make test\` does):
    make test-fuzz-replay
Fix the bug, keep the file in tests/fuzz/regressions/<target>/ and commit it
so the input is replayed on every test run.
EOF
    exit 1
fi
