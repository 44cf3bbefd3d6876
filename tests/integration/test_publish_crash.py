"""SIGKILL during publish (issue 7): a writer that dies at any moment must
leave recd serving either the old or the new *complete* version, before and
after a restart.

  - `recd-train synth-bundle` (a 60k-item bundle, long enough to be caught
    mid-write) publishing version N+1 into the models_dir of a running recd
    is killed at stratified random moments over its whole run;
  - `recd-train fit` likewise, half the rounds killed inside its short
    write window (after its .tmp-<v> directory appears);
  - the embedded trainer: recd itself is killed during a trainer cycle
    (skipped while this recd has no trainer or POST /admin/train); its
    staging directory <model>/.trainer/ must be gone after the restart;
  - stale .tmp-* directories of a crashed writer (untouched for 10
    minutes: the tests backdate them) are removed when recd starts and on
    SIGHUP; a fresh one (a writer at work) is left alone.

After each kill: a <v> directory exists only complete (checked here
independently: every file's size and SHA-256 against the manifest); the
running recd serves it if it exists and keeps N otherwise, without a failed
load; after a restart (on the debris, backdated) the same holds and the
debris is gone.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, SANITIZED, scaled, wait_until

sys.path.insert(0, os.path.join(ROOT, "loadtest"))
import bench_swap as bs  # noqa: E402

ROUNDS = 6 if SANITIZED else 12
FIT_ROUNDS = 3 if SANITIZED else 6
TRAINER_ROUNDS = 3 if SANITIZED else 6
BIG = ["--items", "30000" if SANITIZED else "60000", "--dim", "64", "--index", "Flat"]
KEEP = 2
# The lifecycle manager removes a .tmp-* directory at start when nothing in
# it changed for 10 minutes (a live writer's is left alone).
STALE_AGE_S = 11 * 60


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def train_bin():
    p = bs.default_train_bin()
    if not os.access(p, os.X_OK):
        pytest.fail("recd-train not found at %s (build it with make)" % p)
    return p


def serving(d):
    return bs.serving_version(d.stats())


def wait_serving(d, version, timeout=None):
    wait_until(lambda: serving(d) == version, timeout or scaled(15), interval=0.02,
               what="version %d serving (serving %d)" % (version, serving(d)))


def ready(d):
    wait_until(lambda: d.get("/readyz").status == 200, scaled(60), what="/readyz 200")


def kill_and_reap(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()


def check_after_kill(d, models, old, new, label):
    """The invariant after a kill: `new` exists only complete and is then
    served, else `old` stays served; no load failed. Returns whether `new`
    was published."""
    vdir = os.path.join(str(models), "default", str(new))
    published = os.path.isdir(vdir)
    if published:
        probs = bs.verify_bundle(vdir)
        assert not probs, "%s: version %d published incomplete: %s" % (label, new, probs)
        wait_serving(d, new)
    else:
        time.sleep(0.3)  # past the lifecycle manager's debounce
        assert serving(d) == old, "%s: serving %d, expected the old version %d" % (
            label, serving(d), old)
    e = bs.model_entry(d.stats())
    assert e.get("loads_failed", 0) == 0, "%s: a load failed: %s" % (label, json.dumps(e))
    v = serving(d)
    assert not bs.verify_bundle(os.path.join(str(models), "default", str(v)))
    return published


def restart_and_check(d, models, expect, label):
    """Restart recd on the crashed writer's debris (aged past the stale
    limit): it serves `expect`, complete, and removed the debris."""
    rc = d.stop()
    assert rc == 0, "%s: recd exited %r on SIGTERM" % (label, rc)
    age_tmp_dirs(models)
    d.start()
    ready(d)
    left = bs.tmp_dirs(models)
    assert not left, "%s: stale temp directories survived the restart: %s" % (label, left)
    got = serving(d)
    assert got == expect, "%s: after restart serving %d, expected %d" % (label, got, expect)
    probs = bs.verify_bundle(os.path.join(str(models), "default", str(got)))
    assert not probs, "%s: serving an incomplete version %d: %s" % (label, got, probs)
    e = bs.model_entry(d.stats())
    assert e.get("loads_failed", 0) == 0, "%s: a load failed: %s" % (label, json.dumps(e))


def start_recd(recd_factory, models, extra=None):
    conf = {"models_dir": str(models),
            "models": {"serve": "default", "keep_versions": KEEP},
            "log": {"level": "info"}}
    if extra:
        for k, v in extra.items():
            conf.setdefault(k, {}).update(v)
    d = recd_factory(config=conf)
    ready(d)
    if bs.waiting_to_free(d.stats()) is None:
        pytest.skip("recd has no model lifecycle manager yet (no waiting_to_free in /stats)")
    return d


def touched_since(path, wall):
    """Does directory path exist with an mtime at or after wall (time.time()),
    i.e. was it written by the writer launched then, not left by an earlier
    round?"""
    try:
        return os.stat(path).st_mtime >= wall - 0.01
    except OSError:
        return False


def age_tmp_dirs(models, seconds=STALE_AGE_S):
    """Backdate every .tmp-* directory (and the files in it) by seconds, so
    it looks like the debris of a writer that died that long ago."""
    then = time.time() - seconds
    mdir = os.path.join(str(models), "default")
    for t in bs.tmp_dirs(models):
        path = os.path.join(mdir, t)
        for fn in os.listdir(path):
            os.utime(os.path.join(path, fn), (then, then), follow_symlinks=False)
        os.utime(path, (then, then))


def timed_run(cmd, watch_dir=None):
    """Run cmd to completion; returns (total seconds, seconds from the
    appearance of watch_dir to the end or None)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen = None
    while p.poll() is None:
        if watch_dir and seen is None and os.path.isdir(watch_dir):
            seen = time.monotonic()
        time.sleep(0.001)
    t1 = time.monotonic()
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    assert p.returncode == 0, "%s failed: %s" % (" ".join(cmd), err)
    return t1 - t0, (t1 - seen) if seen else None


# --------------------------------------------------------------------------
# recd-train synth-bundle
# --------------------------------------------------------------------------

def test_recd_train_killed_during_publish(recd_factory, tmp_path):
    tb = train_bin()
    models = tmp_path / "models"
    bs.synth_bundle(models, 1, items=2000, dim=64, seed=1, extra=["--index", "Flat"],
                    train_bin=tb)
    d = start_recd(recd_factory, models)
    assert serving(d) == 1
    # how long a full publish takes here: version 2, with recd running
    total, _ = timed_run([tb, "synth-bundle", "--out", str(models), "--version", "2",
                          "--seed", "2"] + BIG)
    wait_serving(d, 2)
    rng = random.Random(7)
    kinds = {"published": 0, "mid-write": 0, "before-start": 0}
    for r in range(ROUNDS):
        old = serving(d)
        new = old + 1
        # stratified over [0, 1.3 * total): early, middle, late and around
        # the rename
        delay = total * 1.3 * (r + rng.random()) / ROUNDS
        launched = time.time()
        p = subprocess.Popen([tb, "synth-bundle", "--out", str(models), "--version", str(new),
                              "--seed", str(100 + r)] + BIG,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        kill_and_reap(p)
        label = "round %d (kill at %.0f ms of ~%.0f)" % (r, delay * 1000, total * 1000)
        published = check_after_kill(d, models, old, new, label)
        tmp_left = touched_since(str(models / "default" / (".tmp-%d" % new)), launched)
        kinds["published" if published else "mid-write" if tmp_left else "before-start"] += 1
        restart_and_check(d, models, new if published else old, label)
    print("synth-bundle kill rounds: %s (a full write takes %.0f ms)" % (kinds, total * 1000))
    # the rounds must have caught the writer mid-write at least once, or
    # they tested nothing
    assert kinds["mid-write"] >= 1, kinds


# --------------------------------------------------------------------------
# recd-train fit
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "synth"
    p = subprocess.run([train_bin(), "synth", "--out", str(out), "--users", "300",
                        "--items", "2000", "--events", "20000", "--seed", "3"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=scaled(120))
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    return str(out)


def fit_cmd(tb, data, models, version, seed):
    return [tb, "fit", "--data", data, "--out", str(models), "--version", str(version),
            "--no-holdout", "--epochs", "3", "--rank-epochs", "1", "--dim", "32",
            "--embed", "32", "--seed", str(seed)]


def test_recd_train_fit_killed_during_publish(recd_factory, tmp_path, small_dataset):
    tb = train_bin()
    models = tmp_path / "models"
    total, write = timed_run(fit_cmd(tb, small_dataset, models, 1, 1),
                             watch_dir=str(models / "default" / ".tmp-1"))
    assert write is not None, "never saw fit's .tmp-1 directory"
    d = start_recd(recd_factory, models)
    assert serving(d) == 1
    rng = random.Random(11)
    kinds = {"published": 0, "mid-write": 0, "before-start": 0}
    for r in range(FIT_ROUNDS):
        old = serving(d)
        new = old + 1
        tmpdir = str(models / "default" / (".tmp-%d" % new))
        launched = time.time()
        p = subprocess.Popen(fit_cmd(tb, small_dataset, models, new, 10 + r),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if r % 2 == 0:
            # inside the write window: from its tmp dir's appearance
            deadline = time.monotonic() + scaled(60)
            while not touched_since(tmpdir, launched) and p.poll() is None \
                    and time.monotonic() < deadline:
                time.sleep(0.0005)
            delay = write * 1.2 * rng.random()
            where = "%.0f ms into the write (~%.0f ms)" % (delay * 1000, write * 1000)
        else:
            delay = total * 1.1 * rng.random()
            where = "%.0f ms into the run (~%.0f ms)" % (delay * 1000, total * 1000)
        time.sleep(delay)
        kill_and_reap(p)
        label = "fit round %d (kill %s)" % (r, where)
        published = check_after_kill(d, models, old, new, label)
        tmp_left = touched_since(tmpdir, launched)
        kinds["published" if published else "mid-write" if tmp_left else "before-start"] += 1
        restart_and_check(d, models, new if published else old, label)
    print("fit kill rounds: %s (run ~%.0f ms, write ~%.0f ms)" % (kinds, total * 1000,
                                                                  write * 1000))
    assert kinds["mid-write"] + kinds["published"] >= 1, kinds


# --------------------------------------------------------------------------
# stale temp directories
# --------------------------------------------------------------------------

def test_stale_tmp_dirs_removed_at_start(recd_factory, tmp_path):
    tb = train_bin()
    models = tmp_path / "models"
    bs.synth_bundle(models, 1, items=500, dim=16, seed=1, train_bin=tb)
    # the debris of a writer killed mid-write (a real one)...
    tmp2 = models / "default" / ".tmp-2"
    p = subprocess.Popen([tb, "synth-bundle", "--out", str(models), "--version", "2"] + BIG,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: os.path.isfile(tmp2 / "tensors.bin")
               and os.path.getsize(tmp2 / "tensors.bin") > 0, scaled(30),
               interval=0.001, what="synth-bundle writing .tmp-2/tensors.bin")
    kill_and_reap(p)
    assert not os.path.exists(models / "default" / "2")
    # ...and an old one of a version that will never be written
    tmp9 = models / "default" / ".tmp-9"
    os.makedirs(tmp9)
    with open(tmp9 / "tensors.bin", "wb") as f:
        f.write(b"\0" * 4096)
    age_tmp_dirs(models)
    # a writer at work right now (fresh files) must be left alone
    tmp5 = models / "default" / ".tmp-5"
    os.makedirs(tmp5)
    with open(tmp5 / "tensors.bin", "wb") as f:
        f.write(b"\0" * 4096)
    d = start_recd(recd_factory, models)
    assert serving(d) == 1
    left = bs.tmp_dirs(models)
    assert left == [".tmp-5"], "after start: %s (expected only the fresh .tmp-5)" % left
    assert os.path.getsize(tmp5 / "tensors.bin") == 4096
    assert d.wait_log(r"removed .*\.tmp-2")
    # SIGHUP is an explicit rescan: once .tmp-5 is stale too, it goes
    age_tmp_dirs(models)
    d.signal(signal.SIGHUP)
    wait_until(lambda: not bs.tmp_dirs(models), scaled(10),
               what=".tmp-5 removed by the rescan after SIGHUP (left %s)" % bs.tmp_dirs(models))
    assert serving(d) == 1


# --------------------------------------------------------------------------
# the embedded trainer
# --------------------------------------------------------------------------

def post_events(d, ids, rng, n):
    types = ["impression", "impression", "click", "watch", "purchase"]
    for k in range(0, n, 500):
        evs = [{"user_id": "u%d" % rng.randrange(300), "item_id": rng.choice(ids),
                "type": rng.choice(types), "value": 1.0} for _ in range(min(500, n - k))]
        r = d.request("POST", "/v1/events", body={"events": evs})
        assert r.status == 202, r


def trainer_state(d):
    return (d.stats().get("trainer") or {})


def test_trainer_killed_during_publish(recd_factory, tmp_path):
    tb = train_bin()
    models = tmp_path / "models"
    vdir = bs.synth_bundle(models, 1, items=2000, dim=32, seed=1, train_bin=tb)
    with open(os.path.join(vdir, "items.tsv")) as f:
        ids = [ln.split("\t", 1)[0] for ln in f.read().splitlines()[1:] if ln]
    d = start_recd(recd_factory, models, extra={
        "trainer": {"enabled": True, "interval_s": 1 << 30, "min_new_events": 1 << 40,
                    "tolerance_bp": 10000, "epochs": 1, "max_events": 20000}})
    r = d.request("POST", "/admin/train", admin=True)
    if r.status == 404 or "trainer" not in d.stats():
        pytest.skip("the embedded trainer is not available in this recd (POST /admin/train "
                    "-> %d, /stats has trainer: %s)" % (r.status, "trainer" in d.stats()))
    rng = random.Random(5)
    post_events(d, ids, rng, 6000)

    def cycle_done(before):
        t = trainer_state(d)
        return t.get("cycles", 0) > before and t.get("state") == "idle"

    # one complete cycle to time it (and to see that it publishes at all)
    wait_until(lambda: trainer_state(d).get("state") == "idle", scaled(60),
               what="trainer idle")
    before = trainer_state(d).get("cycles", 0)
    old = serving(d)
    t0 = time.monotonic()
    r = d.request("POST", "/admin/train", admin=True)
    assert 200 <= r.status < 300, r
    wait_until(lambda: cycle_done(before), scaled(120), what="a trainer cycle")
    cycle = time.monotonic() - t0
    last = trainer_state(d).get("last") or {}
    assert last.get("decision") == "published", "trainer did not publish: %s" % last
    wait_serving(d, old + 1)
    kinds = {"published": 0, "not published": 0}
    states = {}
    staging_at_kill = 0
    for rnd in range(TRAINER_ROUNDS):
        old = serving(d)
        new = old + 1
        post_events(d, ids, rng, 1000)
        r = d.request("POST", "/admin/train", admin=True)
        assert 200 <= r.status < 300, r
        delay = cycle * (rnd + rng.random()) / TRAINER_ROUNDS
        time.sleep(delay)
        state = trainer_state(d).get("state")
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        d._close_files()
        staged = os.path.exists(os.path.join(str(models), "default", ".trainer"))
        states[state] = states.get(state, 0) + 1
        staging_at_kill += staged
        label = "trainer round %d (recd killed %.0f ms into a ~%.0f ms cycle, state %s)" % (
            rnd, delay * 1000, cycle * 1000, state)
        vpath = os.path.join(str(models), "default", str(new))
        published = os.path.isdir(vpath)
        if published:
            probs = bs.verify_bundle(vpath)
            assert not probs, "%s: version %d published incomplete: %s" % (label, new, probs)
        kinds["published" if published else "not published"] += 1
        d.start()
        ready(d)
        got = serving(d)
        assert got == (new if published else old), "%s: serving %d (old %d, new on disk: %s)" \
            % (label, got, old, published)
        assert not bs.verify_bundle(os.path.join(str(models), "default", str(got)))
        e = bs.model_entry(d.stats())
        assert e.get("loads_failed", 0) == 0, "%s: %s" % (label, json.dumps(e))
        # the trainer stages under <model>/.trainer/ and removes it at start
        mdir = os.path.join(str(models), "default")
        wait_until(lambda: not os.path.exists(os.path.join(mdir, ".trainer")), scaled(10),
                   what="%s: the trainer's staging directory removed at start" % label)
        assert not bs.tmp_dirs(models), "%s: %s" % (label, bs.tmp_dirs(models))
    print("trainer kill rounds: %s (cycle ~%.0f ms); trainer state just before the kill: %s; "
          "staging directory present at the kill: %d rounds"
          % (kinds, cycle * 1000, states, staging_at_kill))
    # some kill must have hit a cycle with its staging directory on disk
    assert staging_at_kill >= 1, (kinds, states)
