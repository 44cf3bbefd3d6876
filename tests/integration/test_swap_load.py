"""Hot swap under load (issue 7): versions published one after another
while clients keep calling POST /v1/recommend and POST /v1/events.

Every version is a small `recd-train synth-bundle` (200 items, dim 16)
whose item ids are rewritten to "v<version>-<id>" before it is published
(atomic rename into <models_dir>/default/<version>), so each recommend
response can be checked against the version it names in "model". Checked:

  - no response other than 2xx (and no transport error) during the run;
  - every recommended item belongs to the version the response names, and
    each client sees versions in non-decreasing order (versions only go up
    here; a request finishes on the version it started with);
  - every version is served (the test waits for each) and, after a burst
    of versions published back to back, the last one is serving;
  - /stats waiting_to_free returns to 0, no tensors.bin of an old version
    stays mapped, versions beyond models.keep_versions are deleted, and
    RSS returns near the level measured after the first versions;
  - recd exits 0 on SIGTERM with no sanitizer report (under ASan,
    RECD_SANITIZED=1, the run is shorter and the RSS bound is not applied:
    ASan's quarantine holds freed memory on purpose).

Helpers (bundles, publishing, /proc readers) live in
loadtest/bench_swap.py, shared with the benchmark.
"""

import http.client
import json
import os
import random
import re
import sys
import threading
import time

import pytest

from conftest import ROOT, SANITIZED, scaled, wait_until

sys.path.insert(0, os.path.join(ROOT, "loadtest"))
import bench_swap as bs  # noqa: E402

N_VERSIONS = 30 if SANITIZED else 100
BURST = 5
WARM_VERSIONS = 8            # RSS steady level measured after these
KEEP = 3                     # models.keep_versions
RSS_SLACK_FRAC = 0.20        # final RSS <= steady * 1.2 ...
RSS_SLACK_BYTES = 30 << 20   # ... or steady + 30 MB, whichever is larger
REC_THREADS = 4
EV_THREADS = 2
SANITIZER_RX = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|"
                          r"runtime error:|ERROR: .*Sanitizer")


# --------------------------------------------------------------------------
# the load
# --------------------------------------------------------------------------

class Loader:
    """Keep-alive clients in threads: REC_THREADS posting /v1/recommend,
    EV_THREADS posting /v1/events batches, until stop(). Every response is
    checked as it arrives; problems are collected, not raised, so the run
    continues and the test reports all of them."""

    def __init__(self, port):
        self.port = port
        self.latest = 1            # newest published version (for history ids)
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.failures = []         # (kind, detail)
        self.counts = {"recommend": 0, "events": 0}
        self.versions_seen = set()
        self.threads = []

    def fail(self, kind, detail):
        with self.lock:
            if len(self.failures) < 200:
                self.failures.append((kind, detail))

    def _conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=scaled(10))

    def _post(self, conn, path, body):
        data = json.dumps(body).encode()
        conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, r.read()

    def _recommend(self, tid):
        rng = random.Random(tid)
        conn = self._conn()
        last_version = 0
        n = 0
        while not self.stop_ev.is_set():
            v = self.latest
            body = {"user_id": "u%d-%d" % (tid, rng.randrange(50)), "k": 10}
            if rng.random() < 0.7:
                # items of the newest version: the tower path when it is
                # already serving, unknown ids (popular fallback) if not yet
                body["history"] = ["v%d-i%d" % (v, rng.randrange(200)) for _ in range(3)]
            try:
                status, data = self._post(conn, "/v1/recommend", body)
            except (OSError, http.client.HTTPException) as e:
                self.fail("transport", "recommend: %r" % e)
                conn.close()
                conn = self._conn()
                continue
            n += 1
            if status != 200:
                self.fail("status", "recommend %d: %r" % (status, data[:300]))
                continue
            try:
                doc = json.loads(data)
                version = doc["model"]["version"]
                items = [it["id"] for it in doc["items"]]
            except (ValueError, KeyError, TypeError) as e:
                self.fail("body", "recommend: %r in %r" % (e, data[:300]))
                continue
            if not items:
                self.fail("items", "recommend v%s returned no items" % version)
            wrong = [i for i in items if bs.version_of_item(i) != version]
            if wrong:
                self.fail("items", "response names version %s but has items %s"
                          % (version, wrong[:5]))
            if version < last_version:
                self.fail("order", "thread %d saw version %d after %d"
                          % (tid, version, last_version))
            last_version = max(last_version, version)
            with self.lock:
                self.versions_seen.add(version)
        conn.close()
        with self.lock:
            self.counts["recommend"] += n

    def _events(self, tid):
        rng = random.Random(1000 + tid)
        conn = self._conn()
        n = 0
        types = ["click", "impression", "watch", "purchase"]
        while not self.stop_ev.is_set():
            v = self.latest
            evs = [{"user_id": "u%d-%d" % (tid, rng.randrange(50)),
                    "item_id": "v%d-i%d" % (v, rng.randrange(200)),
                    "type": rng.choice(types), "value": 1.0}
                   for _ in range(rng.randrange(1, 20))]
            try:
                status, data = self._post(conn, "/v1/events", {"events": evs})
            except (OSError, http.client.HTTPException) as e:
                self.fail("transport", "events: %r" % e)
                conn.close()
                conn = self._conn()
                continue
            n += 1
            if not 200 <= status < 300:
                self.fail("status", "events %d: %r" % (status, data[:300]))
        conn.close()
        with self.lock:
            self.counts["events"] += n

    def start(self):
        for i in range(REC_THREADS):
            self.threads.append(threading.Thread(target=self._recommend, args=(i,),
                                                 daemon=True))
        for i in range(EV_THREADS):
            self.threads.append(threading.Thread(target=self._events, args=(i,), daemon=True))
        for t in self.threads:
            t.start()

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(timeout=scaled(30))
        assert not any(t.is_alive() for t in self.threads), "a loader thread is stuck"


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def rss_level(pid, samples=5, interval=0.1):
    """The lowest of a few VmRSS samples (transient allocations of requests
    in flight make single samples noisy upwards)."""
    vals = []
    for _ in range(samples):
        vals.append(bs.vmrss(pid))
        time.sleep(interval)
    return min(v for v in vals if v)


def require_lifecycle(d):
    """Skip (with the reason) when this recd has no lifecycle manager yet:
    /stats models lacks waiting_to_free."""
    e = bs.model_entry(d.stats())
    if e is None or "waiting_to_free" not in e:
        pytest.skip("recd has no model lifecycle manager yet (/stats models.default "
                    "lacks waiting_to_free: %r)" % (e,))


def wait_or_fail(pred, timeout, describe, interval=0.05):
    """wait_until whose failure message is built when it fails (so it
    shows the state at the deadline, not at the start)."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            pytest.fail("timed out after %.1fs: %s" % (timeout, describe()))
        time.sleep(interval)


def disk_trimmed(d, models):
    on_disk = bs.versions_on_disk(models)
    prev = (bs.model_entry(d.stats()) or {}).get("previous")
    allowed = set(on_disk[-KEEP:]) | ({prev} if prev else set())
    return set(on_disk) <= allowed and len(on_disk) <= KEEP + 1


def served(d, version):
    return bs.serving_version(d.stats()) == version


def tensors_mapped(pid):
    return bs.mapped_files(pid, "tensors.bin")


# --------------------------------------------------------------------------
# the test
# --------------------------------------------------------------------------

def test_swap_under_load(recd_factory, tmp_path):
    models = tmp_path / "models"
    stage = tmp_path / "stage"
    os.makedirs(models / "default")
    bs.publish(bs.make_version(stage, 1), models, 1)
    d = recd_factory(config={"models_dir": str(models),
                             "models": {"serve": "default", "keep_versions": KEEP},
                             "log": {"level": "info"}})
    wait_until(lambda: d.get("/readyz").status == 200, scaled(30), what="/readyz 200")
    require_lifecycle(d)
    assert served(d, 1)
    pid = d.proc.pid

    loader = Loader(d.port)
    loader.start()
    steady_rss = None
    swap_wait = []
    t_start = time.monotonic()
    try:
        last = 1
        for v in range(2, N_VERSIONS + 2):
            src = bs.make_version(stage, v)
            t0 = bs.publish(src, models, v)
            loader.latest = v
            wait_until(lambda: served(d, v), scaled(15), interval=0.01,
                       what="version %d serving (published by rename)" % v)
            swap_wait.append(time.monotonic() - t0)
            last = v
            if v == WARM_VERSIONS + 1:
                wait_until(lambda: bs.waiting_to_free(d.stats()) == 0, scaled(10),
                           what="waiting_to_free 0 after the warm-up versions")
                steady_rss = rss_level(pid)
        # a burst: versions back to back; the newest must win
        burst = []
        for v in range(last + 1, last + 1 + BURST):
            burst.append((v, bs.make_version(stage, v)))
        for v, src in burst:
            bs.publish(src, models, v)
            loader.latest = v
        last = burst[-1][0]
        wait_until(lambda: served(d, last), scaled(20), interval=0.02,
                   what="the last of a burst (version %d) serving" % last)
        # old versions go: nothing waiting, old mappings gone, disk trimmed
        wait_until(lambda: bs.waiting_to_free(d.stats()) == 0, scaled(10),
                   what="waiting_to_free back to 0")
        # keep_versions: the newest KEEP stay, plus the rollback target
        # ("previous") when it is older than those
        wait_or_fail(lambda: disk_trimmed(d, models), scaled(10),
                     lambda: "versions on disk %s, expected the newest %d plus the rollback "
                     "target %r" % (bs.versions_on_disk(models), KEEP,
                                    (bs.model_entry(d.stats()) or {}).get("previous")))
        wait_or_fail(lambda: all("/default/%d/" % last in p for p in tensors_mapped(pid)),
                     scaled(10), lambda: "tensors.bin of old versions still mapped: %s"
                     % sorted(tensors_mapped(pid)))
        mapped = tensors_mapped(pid)
        time.sleep(0.3)
        final_rss = rss_level(pid)
        # the loader keeps running a little on the final version
        time.sleep(0.3)
    finally:
        loader.stop()
    elapsed = time.monotonic() - t_start

    st = d.stats()
    entry = bs.model_entry(st)
    print("swap-under-load: %d versions in %.1fs; requests %s; versions seen by clients %d; "
          "publish->serving median %.0f ms max %.0f ms; RSS steady %.1f MB final %.1f MB; "
          "mapped %s" % (N_VERSIONS + BURST, elapsed, loader.counts, len(loader.versions_seen),
                         1000 * sorted(swap_wait)[len(swap_wait) // 2], 1000 * max(swap_wait),
                         (steady_rss or 0) / 1e6, final_rss / 1e6, sorted(mapped)))
    print("models entry: %s" % json.dumps(entry)[:2000])

    assert not loader.failures, "%d failures, first ones:\n%s" % (
        len(loader.failures), "\n".join("%s: %s" % f for f in loader.failures[:20]))
    # the load really overlapped the swaps
    assert loader.counts["recommend"] >= 20 * REC_THREADS, loader.counts
    assert loader.counts["events"] >= 10 * EV_THREADS, loader.counts
    assert len(loader.versions_seen) >= N_VERSIONS // 3, \
        "clients saw only %d distinct versions" % len(loader.versions_seen)
    assert bs.serving_version(st) == last
    assert entry.get("waiting_to_free") == 0, entry
    if isinstance(entry.get("swaps"), int):
        assert entry["swaps"] >= N_VERSIONS, entry
    if not SANITIZED:
        bound = max(steady_rss * (1 + RSS_SLACK_FRAC), steady_rss + RSS_SLACK_BYTES)
        assert final_rss <= bound, (
            "RSS %.1f MB after %d swaps, steady level %.1f MB (bound %.1f MB): old versions "
            "not freed?" % (final_rss / 1e6, N_VERSIONS + BURST, steady_rss / 1e6, bound / 1e6))

    rc = d.stop()
    log = d.log()
    assert rc == 0, "recd exited %r after SIGTERM; log tail:\n%s" % (rc, log[-4000:])
    bad = [ln for ln in log.splitlines() if SANITIZER_RX.search(ln)]
    assert not bad, "sanitizer report in recd's stderr:\n%s" % "\n".join(bad[:20])


def test_loader_catches_foreign_items(recd_factory, tmp_path):
    """The check above can fail: a version whose items carry another
    version's ids (as a response mixing versions would) is reported."""
    models = tmp_path / "models"
    stage = tmp_path / "stage"
    bs.publish(bs.make_version(stage, 1), models, 1)
    d = recd_factory(config={"models_dir": str(models), "models": {"serve": "default"},
                             "log": {"level": "info"}})
    wait_until(lambda: d.get("/readyz").status == 200, scaled(30), what="/readyz 200")
    require_lifecycle(d)
    # version 2 whose ids say "v1-"
    src = bs.synth_bundle(stage, 2, items=200, dim=16, seed=2, extra=bs.SMALL)
    bs.prefix_item_ids(src, "v1-")
    loader = Loader(d.port)
    loader.start()
    try:
        time.sleep(0.3)
        bs.publish(src, models, 2)
        wait_until(lambda: served(d, 2), scaled(15), what="version 2 serving")
        wait_until(lambda: any(k == "items" for k, _ in loader.failures), scaled(10),
                   what="the loader to report foreign items")
    finally:
        loader.stop()
    assert all(k == "items" for k, _ in loader.failures), loader.failures[:5]
    assert "names version 2" in [f for k, f in loader.failures if k == "items"][0]
