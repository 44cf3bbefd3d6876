"""Model versions and hot swap (issue 7, "Versions and hot swap").

A version is published the way DESIGN §3 says: written completely in a
staging place, then renamed into <models_dir>/<name>/<version>. recd must
notice it (inotify, or SIGHUP with models.watch = false), validate it, warm
it up and swap it in while requests keep being served; a bad version is
never served and the serving one stays; keep_versions trims old
directories; the memory headroom check refuses a load; retired versions are
freed.

Bundles are small (recd-train synth-bundle); many versions are made by
copying one bundle under new numbers (hard links for the data files and a
manifest with the new version: the manifest itself is not checksummed).
"""

import hashlib
import json
import os
import shutil
import signal
import struct
import threading
import time

import pytest

from bundlelib import make_bundle
from conftest import SANITIZED, metric_value, parse_metrics, scaled, wait_until

SMALL = dict(items=300, dim=16, embed=8, hidden="16", rank_hidden="8", rank_embed=4)


def small_bundle(models_dir, version=1, name="default", seed=1):
    return make_bundle(models_dir, name=name, version=version, seed=seed, **SMALL)


def clone_version(src, models_dir, version, name="default"):
    """Publish a copy of bundle dir src as <models_dir>/<name>/<version>:
    staged in .tmp-<version>, then renamed (the atomic publish)."""
    parent = os.path.join(str(models_dir), name)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, ".tmp-%d" % version)
    os.mkdir(tmp)
    for f in os.listdir(src):
        if f != "manifest.json":
            os.link(os.path.join(src, f), os.path.join(tmp, f))
    with open(os.path.join(src, "manifest.json")) as fp:
        m = json.load(fp)
    m["version"] = version
    m["name"] = name
    with open(os.path.join(tmp, "manifest.json"), "w") as fp:
        json.dump(m, fp)
    os.rename(tmp, os.path.join(parent, str(version)))
    return os.path.join(parent, str(version))


def reseal(bundle_dir):
    """Recompute the manifest's checksums after editing a file."""
    mp = os.path.join(bundle_dir, "manifest.json")
    with open(mp) as f:
        m = json.load(f)
    for name, info in m["files"].items():
        p = os.path.join(bundle_dir, name)
        if not os.path.exists(p):
            continue
        with open(p, "rb") as f:
            data = f.read()
        info["sha256"] = hashlib.sha256(data).hexdigest()
        info["bytes"] = len(data)
    with open(mp, "w") as f:
        json.dump(m, f)


def served_version(d, user="u1"):
    r = d.request("POST", "/v1/recommend", body={"user_id": user, "history": ["i3"], "k": 5})
    assert r.status == 200, r
    return r.json()["model"]["version"]


def model_stats(d, name="default"):
    return d.stats()["models"][name]


def wait_version(d, version, timeout=None, name="default"):
    return wait_until(lambda: d.stats()["models"].get(name, {}).get("version") == version
                      and served_version(d) == version, timeout or scaled(20), interval=0.02,
                      what="version %d served" % version)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@pytest.fixture
def base(tmp_path):
    """A models dir with version 1, and a staging dir for new versions."""
    models = tmp_path / "models"
    staging = tmp_path / "staging"
    models.mkdir()
    staging.mkdir()
    # the source of clones lives outside models_dir (keep_versions deletes
    # old versions there)
    src = small_bundle(tmp_path / "source", 1)
    clone_version(src, models, 1)
    return {"models": str(models), "staging": str(staging), "v1": src}


# --------------------------------------------------------------------------
# picking up new versions
# --------------------------------------------------------------------------

def test_inotify_new_version_served(recd_factory, base):
    d = recd_factory(config={"models_dir": base["models"], "models": {"serve": "default"}})
    wait_version(d, 1)
    m = model_stats(d)
    assert m["swaps"] == 1 and m["last_swap"]["from"] == 0 and m["last_swap"]["to"] == 1, m
    assert m["serving"]["version"] == 1 and m["serving"]["n_items"] == 300, m
    assert m["pinned"] is None and m["previous"] is None, m
    assert "last_error" not in m, m
    # a new version from recd-train, staged and renamed by its writer
    staging_v2 = small_bundle(base["staging"], 2, seed=2)
    t0 = time.monotonic()
    os.rename(staging_v2, os.path.join(base["models"], "default", "2"))
    wait_version(d, 2)
    publish_to_serving = time.monotonic() - t0
    print("publish -> serving via inotify: %.0f ms" % (publish_to_serving * 1000))
    assert publish_to_serving < scaled(5)
    m = model_stats(d)
    assert m["swaps"] == 2, m
    assert m["last_swap"]["from"] == 1 and m["last_swap"]["to"] == 2, m
    assert m["last_swap"]["duration_ms"] > 0, m
    print("swap (load + validation + warmup + publish): %.1f ms; the pointer swap itself %.1f us"
          % (m["last_swap"]["duration_ms"], m["last_swap"]["pointer_swap_us"]))
    assert 0 < m["last_swap"]["pointer_swap_us"] < 1e6
    assert m["previous"] == 1, m
    states = {e["version"]: e["state"] for e in m["on_disk"]}
    assert states == {2: "serving", 1: "ready"}, m
    assert m["versions_on_disk"] == 2
    # the old version goes once no request holds it
    wait_until(lambda: model_stats(d)["waiting_to_free"] == 0, scaled(5),
               what="version 1 freed")
    assert d.wait_log(r"model default version 1 freed")
    samples, _, types = parse_metrics(d.metrics())
    assert metric_value(samples, "recd_model_version", model="default") == 2
    assert metric_value(samples, "recd_model_swaps_total", model="default") == 2
    assert metric_value(samples, "recd_model_loads_failed_total", model="default") == 0
    assert metric_value(samples, "recd_model_versions_on_disk", model="default") == 2
    assert metric_value(samples, "recd_model_waiting_to_free", model="default") == 0
    assert metric_value(samples, "recd_model_last_swap_seconds", model="default") > 0
    assert types["recd_model_swaps_total"] == "counter"
    # the older metrics are still there
    assert metric_value(samples, "recd_model_info", model="default", version="2") == 1


def test_writer_temp_dirs_are_ignored(recd_factory, base):
    d = recd_factory(config={"models_dir": base["models"], "models": {"serve": "default"}})
    wait_version(d, 1)
    # a writer's half-written temporary directory is not a version
    tmp = os.path.join(base["models"], "default", ".tmp-5")
    os.mkdir(tmp)
    with open(os.path.join(tmp, "tensors.bin"), "wb") as f:
        f.write(b"\0" * 1000)
    time.sleep(scaled(0.6))
    m = model_stats(d)
    assert m["version"] == 1 and m["loads_failed"] == 0, m
    assert [e["version"] for e in m["on_disk"]] == [1], m


def test_copy_in_picked_up_when_complete(recd_factory, base):
    """A version copied in file by file (no atomic rename) fails validation
    while incomplete and is served once the copy completes."""
    d = recd_factory(config={"models_dir": base["models"], "models": {"serve": "default"}})
    wait_version(d, 1)
    src = small_bundle(base["staging"], 3, seed=3)
    dst = os.path.join(base["models"], "default", "3")
    os.mkdir(dst)
    shutil.copy(os.path.join(src, "manifest.json"), dst)
    # the manager sees the directory and tries it: files are missing
    wait_until(lambda: model_stats(d)["loads_failed"] >= 1, scaled(10),
               what="the incomplete copy rejected")
    assert served_version(d) == 1
    for f in ("items.tsv", "index.faiss", "tensors.bin"):
        shutil.copy(os.path.join(src, f), dst)
    t0 = time.monotonic()
    wait_version(d, 3)
    print("complete copy -> serving: %.0f ms" % ((time.monotonic() - t0) * 1000))
    m = model_stats(d)
    assert "last_error" not in m, m  # cleared by the newer good version


def test_sighup_rescan_without_watch(recd_factory, base):
    d = recd_factory(config={"models_dir": base["models"],
                             "models": {"serve": "default", "watch": False}})
    wait_version(d, 1)
    clone_version(base["v1"], base["models"], 2)
    time.sleep(scaled(0.6))
    assert served_version(d) == 1, "models.watch = false must not pick versions up by itself"
    d.signal(signal.SIGHUP)
    wait_version(d, 2)
    assert d.wait_log(r"SIGHUP received")
    r = d.get("/admin/models", admin=True)
    if r.status == 200:  # the admin endpoint, when present, says it is not watching
        assert r.json()["watching"] is False


def test_new_model_directory_is_watched(recd_factory, base):
    d = recd_factory(config={"models_dir": base["models"],
                             "models": {"serve": "", "default": "default"}})
    wait_version(d, 1)
    # a second model appears: its directory first, then a version in it
    b1 = small_bundle(base["staging"], 1, name="other", seed=7)
    os.mkdir(os.path.join(base["models"], "other"))
    time.sleep(0.3)
    os.rename(b1, os.path.join(base["models"], "other", "1"))
    wait_until(lambda: d.stats()["models"].get("other", {}).get("version") == 1, scaled(10),
               what="model other served")
    r = d.request("POST", "/v1/recommend", body={"user_id": "u", "model": "other"})
    assert r.status == 200 and r.json()["model"] == {"name": "other", "version": 1}, r


# --------------------------------------------------------------------------
# bad versions
# --------------------------------------------------------------------------

def _truncate(vdir):
    p = os.path.join(vdir, "tensors.bin")
    size = os.path.getsize(p)
    with open(p, "r+b") as f:
        f.truncate(size // 2)


def _wrong_checksum(vdir):
    mp = os.path.join(vdir, "manifest.json")
    with open(mp) as f:
        m = json.load(f)
    m["files"]["items.tsv"]["sha256"] = "0" * 64
    with open(mp, "w") as f:
        json.dump(m, f)


def _nan_weights(vdir):
    with open(os.path.join(vdir, "manifest.json")) as f:
        m = json.load(f)
    t = next(t for t in m["tensors"] if t["name"] == "cand.item_emb")
    with open(os.path.join(vdir, "tensors.bin"), "r+b") as f:
        f.seek(t["offset"] + 4 * 17)
        f.write(struct.pack("<f", float("nan")))
    reseal(vdir)


def _dim_mismatch(vdir):
    # the item table loses its last row: 299 items for a 300-row item matrix
    p = os.path.join(vdir, "items.tsv")
    with open(p) as f:
        lines = f.read().splitlines(True)
    with open(p, "w") as f:
        f.writelines(lines[:-1])
    reseal(vdir)


def _missing_index(vdir):
    os.unlink(os.path.join(vdir, "index.faiss"))


BAD = [
    ("truncated", _truncate, ["tensors.bin", "truncated"]),
    ("checksum", _wrong_checksum, ["items.tsv", "SHA-256 mismatch"]),
    ("nan", _nan_weights, ["cand.item_emb", "NaN"]),
    ("dim_mismatch", _dim_mismatch, ["items.tsv", "299 rows", "300"]),
    ("missing_index", _missing_index, ["index.faiss"]),
]


@pytest.mark.parametrize("kind,damage,words", BAD, ids=[b[0] for b in BAD])
def test_bad_version_never_served(recd_factory, base, kind, damage, words):
    d = recd_factory(config={"models_dir": base["models"], "models": {"serve": "default"}})
    wait_version(d, 1)
    staged = small_bundle(base["staging"], 2, seed=2)
    damage(staged)
    os.rename(staged, os.path.join(base["models"], "default", "2"))

    def rejected():
        m = model_stats(d)
        return m.get("last_error") and m["last_error"]["version"] == 2 and m
    # requests keep being answered by version 1 while version 2 is tried
    deadline = time.monotonic() + scaled(10)
    m = None
    while time.monotonic() < deadline:
        assert served_version(d) == 1
        m = rejected()
        if m:
            break
        time.sleep(0.02)
    assert m, "version 2 (%s) was not rejected: %r" % (kind, model_stats(d))
    msg = m["last_error"]["message"]
    for w in words:
        assert w in msg, "%s: %r lacks %r" % (kind, msg, w)
    assert m["last_error"]["reason"] == msg and m["last_error"]["at"] > 0
    assert m["version"] == 1 and m["loads_failed"] >= 1, m
    v2 = next(e for e in m["on_disk"] if e["version"] == 2)
    assert v2["state"] == "failed" and v2["error"] == msg and v2["retry_at"] > 0, v2
    assert d.wait_log(r"model default version 2 rejected: .*retry in")
    samples, _, _ = parse_metrics(d.metrics())
    assert metric_value(samples, "recd_model_loads_failed_total", model="default") >= 1
    assert metric_value(samples, "recd_model_version", model="default") == 1
    assert metric_value(samples, "recd_model_load_failed", model="default") == 1
    # still version 1 after the first retry (1 s)
    wait_until(lambda: model_stats(d)["loads_failed"] >= 2, scaled(6), what="a retry")
    assert served_version(d) == 1
    # a good newer version is not held up by the bad one
    clone_version(base["v1"], base["models"], 3)
    wait_version(d, 3)
    m = model_stats(d)
    assert "last_error" not in m, m
    # the bad version was never the rollback target
    assert m["previous"] == 1, m


# --------------------------------------------------------------------------
# keep_versions, headroom
# --------------------------------------------------------------------------

def test_keep_versions_deletes_old(recd_factory, base):
    d = recd_factory(config={"models_dir": base["models"],
                             "models": {"serve": "default", "keep_versions": 2}})
    wait_version(d, 1)
    for v in (2, 3, 4, 5):
        clone_version(base["v1"], base["models"], v)
        wait_version(d, v)
    # newest two (5, 4; 4 is also the rollback target) stay
    wait_until(lambda: sorted(os.listdir(os.path.join(base["models"], "default"))) == ["4", "5"],
               scaled(5), what="old versions deleted")
    for v in (1, 2, 3):
        assert d.wait_log(r"model default: deleted version %d from disk" % v)
    m = model_stats(d)
    assert m["versions_on_disk"] == 2 and m["previous"] == 4, m
    states = {e["version"]: e["state"] for e in m["on_disk"]}
    assert states[5] == "serving" and states[4] == "ready", states
    assert states.get(3) == "deleted", states


def test_headroom_refusal(recd_factory, base):
    d = recd_factory(config={"models_dir": base["models"], "models": {"serve": "default"}})
    wait_version(d, 1)
    # 1 PiB must stay available: no version can load now (reloadable key)
    cfg = dict(d.config)
    cfg["models"] = dict(cfg["models"], headroom_mb=1 << 30)
    d.write_config(cfg)
    d.signal(signal.SIGHUP)
    assert d.wait_log(r"configuration reloaded")
    clone_version(base["v1"], base["models"], 2)
    wait_until(lambda: (model_stats(d).get("last_error") or {}).get("version") == 2, scaled(10),
               what="version 2 refused")
    msg = model_stats(d)["last_error"]["message"]
    assert "not enough memory" in msg and "MemAvailable" in msg and "headroom_mb" in msg, msg
    assert served_version(d) == 1
    assert d.wait_log(r"version 2 rejected: .*not enough memory")


def test_headroom_refusal_at_start(recd_factory, base):
    d = recd_factory(config={"models_dir": base["models"],
                             "models": {"serve": "default", "headroom_mb": 1 << 30}})
    wait_until(lambda: model_stats(d).get("last_error"), scaled(10), what="load refused")
    m = model_stats(d)
    assert m["version"] == 0 and "not enough memory" in m["last_error"]["message"], m
    assert d.get("/readyz").status == 503


# --------------------------------------------------------------------------
# many swaps under requests
# --------------------------------------------------------------------------

def test_hundred_swaps_under_requests(recd_factory, base):
    """100 versions published one after another (SIGHUP rescans, so every
    one is swapped in) while requests run: every response is 200 and names
    a version that was published, versions never go backwards for one
    client, every retired version is freed, keep_versions holds."""
    n = 30 if SANITIZED else 100
    d = recd_factory(config={"models_dir": base["models"],
                             "models": {"serve": "default", "watch": False,
                                        "warmup_rounds": 2}})
    wait_version(d, 1)
    rss0 = rss_kb(d.proc.pid)
    stop = threading.Event()
    bad, seen = [], []

    def client():
        last = 0
        while not stop.is_set():
            r = d.request("POST", "/v1/recommend", body={"user_id": "u", "history": ["i3"],
                                                          "k": 5})
            if r.status != 200:
                bad.append(r)
                continue
            v = r.json()["model"]["version"]
            if v < last:
                bad.append("version went back from %d to %d" % (last, v))
            last = v
            seen.append(v)
    threads = [threading.Thread(target=client) for _ in range(2)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    try:
        for v in range(2, n + 2):
            clone_version(base["v1"], base["models"], v)
            d.signal(signal.SIGHUP)
            wait_until(lambda: model_stats(d)["version"] == v, scaled(10), interval=0.005,
                       what="version %d" % v)
    finally:
        stop.set()
        for t in threads:
            t.join()
    took = time.monotonic() - t0
    assert not bad, bad[:5]
    assert seen and max(seen) == n + 1
    m = model_stats(d)
    assert m["swaps"] == n + 1, m
    wait_until(lambda: model_stats(d)["waiting_to_free"] == 0, scaled(10),
               what="every retired version freed")
    on_disk = sorted(int(x) for x in os.listdir(os.path.join(base["models"], "default")))
    assert on_disk == [n - 1, n, n + 1], on_disk  # keep_versions = 3
    rss1 = rss_kb(d.proc.pid)
    print("%d swaps in %.1f s (%.0f ms each incl. SIGHUP + poll); %d requests; RSS %d -> %d kB"
          % (n, took, took * 1000 / n, len(seen), rss0, rss1))
    if not SANITIZED:
        assert rss1 < rss0 + 64 * 1024, (rss0, rss1)
