#!/usr/bin/env bash
# Check systemd/recd.service with `systemd-analyze verify`.
#
# The unit in the tree carries @PREFIX@ placeholders (filled in by
# `make install`), and verify insists that ExecStart names an existing
# executable. So the unit is rendered into a temporary directory with a
# temporary prefix whose bin/recd is the freshly built binary (built with
# `make` when missing), and verified there.
#
# Any line of verify's output that mentions recd.service is a failure, as is
# a non-zero exit. Lines about other units are shown but ignored: outside a
# booted systemd (containers, CI) verify may complain about units of the
# host that recd does not depend on.
#
# To prove the check can fail at all, two broken copies are verified as
# well (a misspelled directive, which verify only warns about, and an
# ExecStart that does not exist, which makes it exit non-zero); each must be
# flagged, or the script fails.
#
# Prints "systemd: 1 passed, 0 failed" or "systemd: 0 passed, 1 failed".
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
unit_src=systemd/recd.service

result() {
    if [ "$1" = ok ]; then
        echo "systemd: 1 passed, 0 failed"
        exit 0
    fi
    echo "systemd: 0 passed, 1 failed"
    exit 1
}

if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "verify-systemd: systemd-analyze not found (run scripts/deps.sh test)" >&2
    result fail
fi
if [ ! -f "$unit_src" ]; then
    echo "verify-systemd: $unit_src is missing" >&2
    result fail
fi
if [ ! -x bin/recd ]; then
    echo "verify-systemd: bin/recd missing, building it"
    if ! make --no-print-directory all >&2; then
        echo "verify-systemd: make failed" >&2
        result fail
    fi
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/recd-systemd.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
mkdir -p "$prefix/bin" "$prefix/etc/recd" "$prefix/share/recd/models"
cp bin/recd "$prefix/bin/recd"
cp conf/recd.json "$prefix/etc/recd/recd.json" 2>/dev/null || true

# render DIR SED-EXPR...: write DIR/recd.service from the tree's unit.
render() {
    local dir=$1
    shift
    mkdir -p "$dir"
    sed -e "s|@PREFIX@|$prefix|g" -e "s|@SYSCONFDIR@|$prefix/etc|g" "$@" "$unit_src" >"$dir/recd.service"
}

# verify FILE: run systemd-analyze verify, show its output (kept in
# $verify_out), and return 0 only if it exited 0 and said nothing about
# recd.service.
verify_out=
verify() {
    local out rc ours
    out=$(systemd-analyze verify --man=no --recursive-errors=no "$1" 2>&1)
    rc=$?
    verify_out=$out
    ours=$(printf '%s\n' "$out" | grep -F 'recd.service')
    if [ -n "$out" ]; then
        printf '%s\n' "$out" | sed 's/^/    | /'
    fi
    if [ -n "$out" ] && [ -z "$ours" ]; then
        echo "    (the lines above are about other units and are ignored)"
    fi
    [ "$rc" -eq 0 ] && [ -z "$ours" ]
}

ok=1

render "$tmp/good"
if grep -n '@[A-Z_][A-Z_]*@' "$tmp/good/recd.service"; then
    echo "verify-systemd: unsubstituted placeholder left in the unit" >&2
    ok=0
fi
echo "verify: $unit_src"
if verify "$tmp/good/recd.service"; then
    echo "  ok"
else
    echo "  FAILED: systemd-analyze verify reports problems in $unit_src" >&2
    ok=0
fi

# Self-check: broken copies must be rejected, and for the fault we put in
# (its name must appear in a line about recd.service), not for another.
# self_check NAME MARK SED-EXPR...: MARK is the text the fault introduces.
self_check() {
    local name=$1 mark=$2
    shift 2
    render "$tmp/$name" "$@"
    if ! grep -qF -- "$mark" "$tmp/$name/recd.service"; then
        echo "  FAILED: could not build the '$name' copy (unit changed?)" >&2
        return 1
    fi
    echo "self-check: '$name' copy must be rejected"
    if verify "$tmp/$name/recd.service"; then
        echo "  FAILED: verify accepted a broken unit; this check proves nothing" >&2
        return 1
    fi
    if ! printf '%s\n' "$verify_out" | grep -F 'recd.service' | grep -qF -- "$mark"; then
        echo "  FAILED: rejected, but not for the fault put in ($mark)" >&2
        return 1
    fi
    echo "  ok (rejected)"
}
self_check misspelled NoNewPrivilegs -e 's|^NoNewPrivileges=|NoNewPrivilegs=|' || ok=0
self_check missing-exec /bin/recd-missing -e 's|^\(ExecStart=[^ ]*/bin/recd\)|\1-missing|' || ok=0

if [ "$ok" -eq 1 ]; then
    result ok
fi
result fail
