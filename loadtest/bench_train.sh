#!/usr/bin/env bash
# Training speed: recd-train fit against a PyTorch CPU implementation of the
# same models (loadtest/torch_train.py), one thread each, on one synthetic
# dataset; then the wall time of what `make models` runs.
#
#   loadtest/bench_train.sh BIN_DIR
#
# Environment (defaults in parentheses):
#   BENCH_TRAIN_USERS (5000), BENCH_TRAIN_ITEMS (20000), BENCH_TRAIN_EVENTS
#   (200000)       size of the `recd-train synth` world
#   BENCH_TRAIN_EPOCHS (4), BENCH_TRAIN_RANK_EPOCHS (2)
#                  recd-train fit's candidate / ranker epoch budget
#   BENCH_TRAIN_WIDE_DEEP (1)  0: skip the second fit (--ranker wide_deep)
#   BENCH_TRAIN_MODELS (1)     0: skip timing `make models`
#   BENCH_TRAIN_TORCH (1)      0: skip the PyTorch reference
#   BENCH_TORCH_ARGS ()        more arguments for torch_train.py
#
# Prints a table and writes it to loadtest/results/train-<UTC time>.txt, the
# full figures to train-<UTC time>.json. The repository's models/ is not
# touched: everything is generated under a temporary directory.
set -euo pipefail
[ -d "${1:?usage: bench_train.sh BIN_DIR}" ] || {
    echo "bench_train: $1: no such directory (usage: bench_train.sh BIN_DIR)" >&2
    exit 2
}
bindir=$(cd "$1" && pwd)
users=${BENCH_TRAIN_USERS:-5000}
items=${BENCH_TRAIN_ITEMS:-20000}
events=${BENCH_TRAIN_EVENTS:-200000}
epochs=${BENCH_TRAIN_EPOCHS:-4}
rank_epochs=${BENCH_TRAIN_RANK_EPOCHS:-2}
do_wd=${BENCH_TRAIN_WIDE_DEEP:-1}
do_models=${BENCH_TRAIN_MODELS:-1}
do_torch=${BENCH_TRAIN_TORCH:-1}
torch_args=${BENCH_TORCH_ARGS:-}
py=/usr/bin/python3
cd "$(dirname "$0")/.."

for v in "$users" "$items" "$events" "$epochs" "$rank_epochs"; do
    case $v in
    '' | *[!0-9]* | 0)
        echo "bench_train: sizes and epochs must be positive integers (got '$v')" >&2
        exit 2
        ;;
    esac
done
[ -x "$bindir/recd-train" ] || {
    echo "bench_train: $bindir/recd-train not found (run make first)" >&2
    exit 1
}

tmp=$(mktemp -d /tmp/recd-bench-train.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p loadtest/results
out_txt=loadtest/results/train-$stamp.txt
out_json=loadtest/results/train-$stamp.json

load() { cut -d' ' -f1-3 /proc/loadavg; }
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

echo "bench-train: load average $(load) on $(nproc) CPUs" >&2
load_start=$(load)

# ---- 1. the dataset -------------------------------------------------------------
"$bindir/recd-train" synth --out "$tmp/data" --users "$users" --items "$items" \
    --events "$events" --seed 1 >&2

# ---- 2. recd-train fit, one thread ------------------------------------------------
# The candidate model's settings are recd-train fit's defaults (the fit below
# does not set them); torch_train.py gets them from its --help, so the two
# stay in step.
help=$("$bindir/recd-train" fit --help)
cand_args=()
for o in dim embed hidden history-max negatives lr batch; do
    v=$(sed -n "s/^  --$o .*(default: \([^)]*\)).*/\1/p" <<<"$help" | head -1)
    if [ -n "$v" ]; then cand_args+=("--$o" "$v"); fi
done
v=$(sed -n 's/^  --sampler .* \([a-z]*\) ([^)]*default).*/\1/p' <<<"$help" | head -1)
if [ -n "$v" ]; then cand_args+=(--sampler "$v"); fi
# The fit's own figures (--json) average every epoch; the per-epoch rates on
# stderr give the least disturbed epoch too (the machine may be shared).
fit() { # fit NAME RANKER
    local t0 t1
    echo "bench-train: recd-train fit --ranker $2 ($epochs + $rank_epochs epochs)" >&2
    t0=$(now)
    "$bindir/recd-train" fit --data "$tmp/data" --out "$tmp/models-$1" --json --threads 1 \
        --ranker "$2" --rank-embed 16 --rank-hidden 256,128,64 --rank-batch 256 \
        --epochs "$epochs" --rank-epochs "$rank_epochs" --no-content \
        >"$tmp/fit-$1.json" 2>"$tmp/fit-$1.log"
    t1=$(now)
    elapsed "$t0" "$t1" >"$tmp/fit-$1.wall"
}
fit deepfm deepfm
if [ "$do_wd" = 1 ]; then
    fit wide_deep wide_deep
fi
load_recd=$(load)

# ---- 3. the PyTorch reference -------------------------------------------------------
torch_note=
if [ "$do_torch" != 1 ]; then
    torch_note="skipped (BENCH_TRAIN_TORCH=0)"
elif ! "$py" -c "import torch" 2>/dev/null; then
    torch_note="skipped: $py cannot import torch (Debian: apt-get install python3-torch, or make deps-bench)"
    echo "bench-train: PyTorch reference $torch_note" >&2
else
    echo "bench-train: PyTorch reference (loadtest/torch_train.py ${cand_args[*]})" >&2
    torch_models=candidate,deepfm,deepfm_fused
    [ "$do_wd" = 1 ] && torch_models=$torch_models,wide_deep,wide_deep_fused
    # shellcheck disable=SC2086 # BENCH_TORCH_ARGS is a list of arguments
    "$py" loadtest/torch_train.py --data "$tmp/data" --threads 1 --models "$torch_models" \
        --rank-embed 16 --rank-hidden 256,128,64 --rank-batch 256 "${cand_args[@]}" \
        --json "$tmp/torch.json" $torch_args >&2
fi
load_torch=$(load)

# ---- 4. what `make models` runs, into the temporary directory ---------------------------
# The variables come from the Makefile (and the environment, as for make).
# shellcheck disable=SC2016 # $($*) is for make, not the shell
mvar() { make -s --no-print-directory --eval 'bench-print-%: ; @echo $($*)' "bench-print-$1"; }
models_json=null
if [ "$do_models" = 1 ]; then
    m_users=$(mvar MODEL_USERS)
    m_items=$(mvar MODEL_ITEMS)
    m_events=$(mvar MODEL_EVENTS)
    m_fit_args=$(mvar MODEL_FIT_ARGS)
    m_index=$(mvar MODEL_INDEX)
    echo "bench-train: make models equivalent ($m_users users, $m_items items," \
        "$m_events events; fit $m_fit_args)" >&2
    t0=$(now)
    "$bindir/recd-train" synth --out "$tmp/mm/data" --force --users "$m_users" \
        --items "$m_items" --events "$m_events" --seed 1 >&2
    t1=$(now)
    # shellcheck disable=SC2086 # MODEL_FIT_ARGS is a list of arguments, as in the Makefile
    "$bindir/recd-train" fit --data "$tmp/mm/data" --out "$tmp/mm/models" --name default \
        --version 1 --no-holdout --seed 1 $m_fit_args ${m_index:+--index "$m_index"} \
        --quiet --json >"$tmp/mm-fit.json"
    t2=$(now)
    models_json=$(
        M_USERS=$m_users M_ITEMS=$m_items M_EVENTS=$m_events M_ARGS="$m_fit_args" \
            M_INDEX="$m_index" SYNTH_S=$(elapsed "$t0" "$t1") FIT_S=$(elapsed "$t1" "$t2") \
            "$py" -c '
import json, os, sys
e = os.environ
fit = json.load(open(sys.argv[1]))
print(json.dumps({"users": int(e["M_USERS"]), "items": int(e["M_ITEMS"]),
                  "events": int(e["M_EVENTS"]), "fit_args": e["M_ARGS"], "index": e["M_INDEX"],
                  "synth_s": float(e["SYNTH_S"]), "fit_s": float(e["FIT_S"]),
                  "total_s": float(e["SYNTH_S"]) + float(e["FIT_S"]),
                  "candidate_examples_per_s": fit.get("candidate_examples_per_s"),
                  "ranker_examples_per_s": fit.get("ranker_examples_per_s")}))' "$tmp/mm-fit.json"
    )
fi
load_end=$(load)

# ---- 5. report ---------------------------------------------------------------------------
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
torch_pkg=$(dpkg-query -W -f='${Version}' python3-torch 2>/dev/null || echo none)
# the binary's own build string, and the tree's commit (the two can differ
# when the build metadata was not regenerated)
recd_ver=$("$bindir/recd-train" --version 2>/dev/null | head -1 || true)
recd_ver="${recd_ver:-recd-train (no --version)}; tree at $(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
TMP=$tmp STAMP=$stamp CPU="$cpu" NCPU=$(nproc) TORCH_PKG=$torch_pkg TORCH_NOTE="$torch_note" \
    RECD_VER="$recd_ver" USERS=$users ITEMS=$items EVENTS=$events EPOCHS=$epochs \
    RANK_EPOCHS=$rank_epochs DO_WD=$do_wd CAND_ARGS="${cand_args[*]}" MODELS_JSON="$models_json" \
    LOADS="$load_start|$load_recd|$load_torch|$load_end" OUT_JSON=$out_json \
    "$py" - <<'EOF' | tee "$out_txt"
import json, os, re, statistics

e = os.environ
tmp = e["TMP"]


def epoch_rates(log, prefix):
    """Per-epoch ex/s from recd-train's progress lines."""
    rates = []
    for line in open(log):
        if not line.lstrip().startswith(prefix) or "epoch" not in line:
            continue
        m = re.search(r"([0-9.]+)([kM]?) ex/s", line)
        if m and re.search(r"epoch +\d+/\d+", line):
            rates.append(float(m.group(1)) * {"": 1, "k": 1e3, "M": 1e6}[m.group(2)])
    return rates


def summary(rates):
    # the first epoch also pays for first-touch page faults of the tables'
    # optimiser state; steady state is every later epoch
    steady = rates[1:] or rates
    return {"epochs": rates, "best": max(steady) if steady else None,
            "median": statistics.median(steady) if steady else None}


recd = {}
for name in ("deepfm", "wide_deep"):
    path = os.path.join(tmp, "fit-%s.json" % name)
    if not os.path.exists(path):
        continue
    fit = json.load(open(path))
    log = os.path.join(tmp, "fit-%s.log" % name)
    recd[name] = {
        "wall_s": float(open(os.path.join(tmp, "fit-%s.wall" % name)).read()),
        "fit": {k: fit[k] for k in ("candidate_examples_per_s", "ranker_examples_per_s",
                                    "candidate_s", "ranker_s", "seconds") if k in fit},
        "candidate": summary(epoch_rates(log, "candidate")),
        "ranker": summary(epoch_rates(log, "trank " + name)),
    }
torch = None
if os.path.exists(os.path.join(tmp, "torch.json")):
    torch = json.load(open(os.path.join(tmp, "torch.json")))
models = json.loads(e["MODELS_JSON"])
loads = dict(zip(("start", "after_recd", "after_torch", "end"), e["LOADS"].split("|")))

print("# recd-train fit vs PyTorch (CPU), one thread each: training examples/s")
print("# data: recd-train synth --users %s --items %s --events %s --seed 1; fit --epochs %s "
      "--rank-epochs %s --rank-embed 16 --rank-hidden 256,128,64 --rank-batch 256 --no-content"
      % (e["USERS"], e["ITEMS"], e["EVENTS"], e["EPOCHS"], e["RANK_EPOCHS"]))
print("# candidate model: recd-train fit's defaults, %s" % e["CAND_ARGS"])
print("# machine: %s CPUs (%s), %s; recd: %s; torch: %s" %
      (e["NCPU"], e["CPU"], e["STAMP"], e["RECD_VER"],
       "python3-torch " + e["TORCH_PKG"] if torch else e["TORCH_NOTE"]))
print("# load average (1/5/15 min): start %s, after recd %s, after torch %s, end %s" %
      (loads["start"], loads["after_recd"], loads["after_torch"], loads["end"]))
print("# fit = recd-train's own figure (all epochs); best/median = over epochs after the first")
print("# (recd) or over timed rounds after a warm-up (torch); the ratio compares the bests,")
print("# against the faster of torch's two table layouts (per field / fused)")
print("%-10s %10s %10s %10s | %10s %10s %-9s | %9s" % (
    "model", "recd fit", "recd best", "recd med", "torch best", "torch med", "layout",
    "recd/torch"))


def row(name, fit_rate, s, tkeys):
    tb = tm = None
    layout = ""
    if torch:
        for k in tkeys:
            t = torch["models"].get(k)
            if t and (tb is None or t["examples_per_s"] > tb):
                tb, tm = t["examples_per_s"], t["examples_per_s_median"]
                layout = "fused" if k.endswith("_fused") else "per-field" if k != "candidate" else ""
    f = lambda x: "%10.0f" % x if x else "%10s" % "-"
    ratio = "%8.2fx" % (s["best"] / tb) if tb and s["best"] else "%9s" % "-"
    print("%-10s %s %s %s | %s %s %-9s | %s" % (name, f(fit_rate), f(s["best"]), f(s["median"]),
                                                f(tb), f(tm), layout, ratio))
    return {"recd_fit": fit_rate, "recd_best": s["best"], "recd_median": s["median"],
            "torch_best": tb, "torch_median": tm, "torch_layout": layout or None,
            "recd_over_torch": s["best"] / tb if tb and s["best"] else None}


table = {}
if "deepfm" in recd:
    r = recd["deepfm"]
    table["candidate"] = row("candidate", r["fit"]["candidate_examples_per_s"], r["candidate"],
                             ["candidate"])
    table["deepfm"] = row("deepfm", r["fit"]["ranker_examples_per_s"], r["ranker"],
                          ["deepfm", "deepfm_fused"])
if "wide_deep" in recd:
    r = recd["wide_deep"]
    table["wide_deep"] = row("wide_deep", r["fit"]["ranker_examples_per_s"], r["ranker"],
                             ["wide_deep", "wide_deep_fused"])
if torch:
    per = ", ".join("%s %.0f" % (k, v["examples_per_s"]) for k, v in torch["models"].items())
    print("# torch best ex/s by layout: %s" % per)
walls = ", ".join("%s %.1f s" % (k, v["wall_s"]) for k, v in recd.items())
print("# wall: recd-train fit (synth data above, with holdout metrics and ANN index): %s" % walls)
if models:
    print("# make models (synth %d users, %d items, %d events; fit %s%s): synth %.1f s + fit "
          "%.1f s = %.1f s wall" % (models["users"], models["items"], models["events"],
                                    models["fit_args"],
                                    " --index " + models["index"] if models["index"] else "",
                                    models["synth_s"], models["fit_s"], models["total_s"]))
else:
    print("# make models: not timed (BENCH_TRAIN_MODELS=0)")
try:
    # this benchmark itself keeps one CPU busy; more than NCPU means sharing
    if max(float(v.split()[0]) for v in loads.values()) > int(e["NCPU"]):
        print("# note: 1-min load above the CPU count: other work shared the CPUs, so the "
              "rates are noisy; the best-of figures and the ratio are the robust ones")
except ValueError:
    pass

res = {"stamp": e["STAMP"], "cpus": int(e["NCPU"]), "cpu": e["CPU"], "recd": e["RECD_VER"],
       "torch_package": e["TORCH_PKG"] if torch else None, "torch_note": e["TORCH_NOTE"] or None,
       "load": loads,
       "dataset": {"users": int(e["USERS"]), "items": int(e["ITEMS"]),
                   "events": int(e["EVENTS"])},
       "epochs": int(e["EPOCHS"]), "rank_epochs": int(e["RANK_EPOCHS"]),
       "table": table, "recd_fits": recd, "torch_run": torch, "make_models": models}
with open(e["OUT_JSON"], "w") as fh:
    json.dump(res, fh, indent=1, sort_keys=True)
    fh.write("\n")
EOF
echo "bench-train: wrote $out_txt and $out_json" >&2
