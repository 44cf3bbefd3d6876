#!/usr/bin/env bash
# Make sure the Debian 12 packages recd needs are installed.
#
#   scripts/deps.sh build|test|bench
#
# Prints nothing and exits 0 when everything is already installed. Otherwise,
# as root, installs what is missing with apt-get (running `apt-get update`
# at most once, when the package lists look stale or an install fails on
# them); as another user, prints the sudo command to run and exits 1.
#
# The package lists live here and nowhere else (.ci/run calls this script).
set -euo pipefail

PKGS_BUILD="gcc g++ make pkg-config libevent-dev libjansson-dev libssl-dev libopenblas-dev liblapack-dev libfaiss-dev"
# promtool (prometheus), systemd-analyze (systemd), libFuzzer runtime
# (libclang-rt-14-dev), curl for the integration tests; nginx-light and
# haproxy for the scale-out test (tests/integration/test_replicas.py runs
# them as its own children from conf/nginx-recd.conf and conf/haproxy-recd.cfg).
# wrk: the closed-loop capacity of the sweep test (tests/integration/test_sweep.py).
PKGS_TEST="libcmocka-dev python3-pytest python3-numpy python3-faiss prometheus openssl clang libclang-rt-14-dev systemd curl nginx-light haproxy wrk"
# python3-torch: the PyTorch reference of make bench-train (loadtest/torch_train.py;
# the bench skips it when torch is missing). Never in the test list: CI needs no torch.
PKGS_BENCH="wrk nginx-light python3-numpy python3-torch"

# Package lists older than this are refreshed before installing.
APT_LISTS_MAX_AGE_S=$((6 * 3600))

usage() {
    echo "usage: $0 build|test|bench" >&2
    exit 2
}

[ "$#" -eq 1 ] || usage
case $1 in
build) wanted="$PKGS_BUILD" ;;
test) wanted="$PKGS_BUILD $PKGS_TEST" ;;
bench) wanted="$PKGS_BUILD $PKGS_BENCH" ;;
*) usage ;;
esac

missing=()
for p in $wanted; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    if [ "$status" != "install ok installed" ]; then
        missing+=("$p")
    fi
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "recd: missing Debian packages: ${missing[*]}" >&2
    echo "run: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi

echo "recd: installing ${missing[*]}" >&2

# Packages with services (nginx, haproxy, prometheus) start them from their
# maintainer scripts through invoke-rc.d; a policy-rc.d that exits 101
# forbids that, so no stray daemon is left running after the install. An
# existing policy that already forbids starting is left as it is; any other
# is set aside and put back on exit.
policy=/usr/sbin/policy-rc.d
policy_saved=
policy_ours=0
restore_policy() {
    if [ "$policy_ours" -eq 1 ]; then
        rm -f "$policy"
        if [ -n "$policy_saved" ]; then
            mv -f "$policy_saved" "$policy"
        fi
    fi
}
trap restore_policy EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

policy_rc=0
if [ -x "$policy" ]; then
    "$policy" nginx start >/dev/null 2>&1 || policy_rc=$?
fi
if [ "$policy_rc" -ne 101 ]; then
    if [ -e "$policy" ]; then
        policy_saved="$policy.recd-deps.$$"
        mv -f "$policy" "$policy_saved"
    fi
    policy_ours=1
    printf '#!/bin/sh\n# temporary, from recd scripts/deps.sh: start no services\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
fi

export DEBIAN_FRONTEND=noninteractive
updated=0

apt_update() {
    updated=1
    apt-get update -q
}

# Stale means: no package index at all, or none refreshed recently.
lists_stale() {
    local newest
    newest=$(find /var/lib/apt/lists -maxdepth 1 -type f -name '*_Packages*' \
        -printf '%T@\n' 2>/dev/null | sort -n | tail -n 1)
    [ -z "$newest" ] && return 0
    [ $(($(date +%s) - ${newest%.*})) -gt "$APT_LISTS_MAX_AGE_S" ]
}

apt_install() {
    apt-get install -y -q --no-install-recommends "${missing[@]}"
}

if lists_stale; then
    apt_update
fi
if ! apt_install; then
    # Fresh-looking lists can still be out of date (a security update
    # removed the version they name): refresh once and retry.
    if [ "$updated" -eq 1 ]; then
        exit 1
    fi
    apt_update
    apt_install
fi
