"""The embedded trainer end to end (issue 7, "Learning loop end to end").

A small world: the users and items of `recd-train synth` (their genres), and
sessions of 8 impressions of random items in which every user clicks (and
watches) items of its two liked genres with probability 0.5, others with
0.04. Version 1 of the model is fitted with `recd-train fit` on 30 days of
that; then 10 more days of sessions are the live traffic, in which a
segment of 40 users switched to one genre G they did not like before.

- Learning loop: recd starts on version 1 with the trainer enabled; the live
  events are POSTed to /v1/events; POST /admin/train runs one cycle, which
  publishes version 2 (warm-started from version 1, better on the
  time-ordered holdout), the lifecycle manager swaps it in, and the
  segment's recommendations (the same request: the user's old history
  passed explicitly, so only the model differs) shift toward G clearly more
  than those of a control group with the same prior taste, whose
  recommendations move only with G's overall popularity.
- Guard: with the test hook RECD_TRAINER_TEST_CORRUPT=invert (the ranker
  trained on inverted labels) the cycle, started by the interval this time
  (the log written before start), is rejected: no new version on disk,
  version 1 keeps serving, the reason is in /stats.
- Trigger rules: with min_new_events above the log's size the interval does
  not start a cycle (the new events are counted in /stats); POST
  /admin/train does, and a second one while it is queued or running is
  refused.
"""

import json
import os
import random
import shutil
import subprocess
import time
from collections import Counter

import pytest

import evlib
from bundlelib import recd_train_path
from conftest import SANITIZED, scaled, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TRAIN_BIN = (os.environ.get("RECD_TRAIN_BIN") or recd_train_path() or
             os.path.join(ROOT, "bin", "recd-train"))

pytestmark = pytest.mark.skipif(not os.access(TRAIN_BIN, os.X_OK),
                                reason=f"{TRAIN_BIN} not built (make bin/recd-train)")

DAY = 86400
USERS, ITEMS = 300, 400
SEGMENT = 40
FIT = ["--no-holdout", "--quiet", "--dim", "32", "--embed", "32", "--hidden", "64",
       "--negatives", "256", "--epochs", "20", "--batch", "64", "--rank-embed", "8",
       "--rank-hidden", "32", "--rank-epochs", "10", "--no-rank-warm", "--watch-weight", "off",
       "--content-epochs", "10"]
TRAINER = {"epochs": 6, "holdout_pct": 10, "tolerance_bp": 50}


def run(*args):
    p = subprocess.run([TRAIN_BIN, *args], capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise AssertionError(f"recd-train {' '.join(args)} -> {p.returncode}\n{p.stderr}")
    return p


def read_tsv(path):
    with open(path) as f:
        rows = [line.rstrip("\n").split("\t") for line in f]
    return rows[0], rows[1:]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    top = str(tmp_path_factory.mktemp("trainer_world"))
    base = os.path.join(top, "base")
    run("synth", "--out", base, "--users", str(USERS), "--items", str(ITEMS), "--events",
        "2000", "--topics", "6", "--days", "10", "--seed", "3")
    _, items = read_tsv(os.path.join(base, "items.tsv"))
    _, users = read_tsv(os.path.join(base, "users.tsv"))
    users = [u[0] for u in users]
    genres_of = {it[0]: set(g for g in it[2].split("|") if g) for it in items}
    common = [g for g, _ in Counter(g for gs in genres_of.values() for g in gs).most_common()]
    rng = random.Random(5)
    now = int(time.time())
    like = {u: rng.sample(common[:12], 2) for u in users}
    G = common[3]
    segment = [u for u in users if G not in like[u]][:SEGMENT]
    control = [u for u in users if u not in set(segment) and G not in like[u]][:SEGMENT]
    ids = [it[0] for it in items]

    def sessions(user, n, t0, t1, liked, out):
        for _ in range(n):
            ts = rng.randrange(t0, t1)
            for j in range(8):
                it = rng.choice(ids)
                out.append((user, it, ts + j, "impression", 1))
                if rng.random() < (0.5 if genres_of[it] & set(liked) else 0.04):
                    out.append((user, it, ts + j + 5, "click", 1))
                    out.append((user, it, ts + j + 9, "watch", 200 + rng.randrange(600)))

    train, live = [], []
    for u in users:
        sessions(u, 12, now - 40 * DAY, now - 10 * DAY, like[u], train)
    seg = set(segment)
    for u in users:
        sessions(u, 8, now - 10 * DAY, now - 60, [G] if u in seg else like[u], live)
    train.sort(key=lambda e: (e[2], e[0], e[1], e[3]))
    live.sort(key=lambda e: (e[2], e[0], e[1], e[3]))
    # version 1: fitted on the first 30 days
    ds = os.path.join(top, "ds")
    os.makedirs(ds)
    shutil.copy(os.path.join(base, "items.tsv"), ds)
    shutil.copy(os.path.join(base, "users.tsv"), ds)
    with open(os.path.join(ds, "events.tsv"), "w") as f:
        f.write("user\titem\tts\ttype\tvalue\n")
        for u, it, ts, ty, v in train:
            f.write(f"{u}\t{it}\t{ts}\t{ty}\t{v if ty == 'watch' else 0}\n")
    with open(os.path.join(ds, "meta.json"), "w") as f:
        json.dump({"format": "recd-dataset/1", "source": "trainer test world", "kind": "implicit",
                   "created": "2026-01-01T00:00:00Z",
                   "counts": {"users": len(users), "items": len(items), "events": len(train),
                              "by_type": {}}, "truth": False}, f)
    models = os.path.join(top, "models")
    run("fit", "--data", ds, "--out", models, *FIT)
    # the users' old history (what a request passes explicitly below)
    hist = {}
    for u, it, ts, ty, v in train:
        if ty == "click":
            hist.setdefault(u, []).append(it)
    events = [{"user_id": u, "item_id": it, "ts": ts, "type": ty, "value": v}
              for u, it, ts, ty, v in live]
    return {"models": models, "G": G, "segment": segment, "control": control,
            "genres_of": genres_of, "hist": {u: h[-20:] for u, h in hist.items()},
            "events": events}


def daemon(recd_factory, world, trainer, env=None, log_events=None):
    """recd on a copy of version 1 with the trainer configured; log_events
    are written to its event log before it starts."""
    d = recd_factory(config={"trainer": dict(TRAINER, enabled=True, **trainer),
                             "events": {"fsync": "never", "max_batch": 5000}},
                     start=False, env=env)
    shutil.rmtree(d.config["models_dir"])
    shutil.copytree(world["models"], d.config["models_dir"])
    if log_events:
        evdir = os.path.join(d.config["data_dir"], "events")
        os.makedirs(evdir)
        with open(os.path.join(evdir, evlib.segment_name(0)), "wb") as f:
            for e in log_events:
                p = dict(e, recv_ms=e["ts"] * 1000)
                f.write(evlib.frame(json.dumps(p, separators=(",", ":")).encode()))
    d.start()
    wait_until(lambda: d.get("/readyz").status == 200, scaled(15), what="version 1 served")
    return d


def trainer_status(d):
    s = d.stats()
    assert "trainer" in s, "no trainer section in /stats: %r" % sorted(s)
    return s["trainer"]


def wait_cycle(d, n=1, timeout=60):
    def done():
        t = trainer_status(d)
        return t if t["cycles"] >= n and t["state"] == "idle" else None
    return wait_until(done, scaled(timeout), interval=0.2, what="a training cycle")


def genre_share(d, world, users):
    """Share of G among the top 20 of each user, old history given; and the
    versions that answered."""
    G, got, tot, versions = world["G"], 0, 0, set()
    for u in users:
        r = d.request("POST", "/v1/recommend",
                      body={"user_id": u, "k": 20, "history": world["hist"].get(u, [])})
        assert r.status == 200, r
        j = r.json()
        versions.add(j["model"]["version"])
        for x in j["items"]:
            tot += 1
            got += G in world["genres_of"].get(x["id"], set())
    return got / max(tot, 1), versions


def versions_on_disk(d):
    return sorted(int(v) for v in os.listdir(os.path.join(d.config["models_dir"], "default"))
                  if v.isdigit())


def test_learning_loop_publishes_and_shifts_the_segment(recd_factory, world):
    d = daemon(recd_factory, world, {"interval_s": 3600, "min_new_events": 1})
    seg0, v = genre_share(d, world, world["segment"])
    ctl0, _ = genre_share(d, world, world["control"])
    assert v == {1}
    t = trainer_status(d)
    assert t["enabled"] is True and t["state"] == "idle" and t["cycles"] == 0
    assert t["last"] is None
    # the live traffic, through the API
    ev = world["events"]
    for i in range(0, len(ev), 2500):
        r = d.request("POST", "/v1/events", body={"events": ev[i:i + 2500]})
        assert r.status == 202, r
    r = d.request("POST", "/admin/train", admin=True)
    assert 200 <= r.status < 300, r
    t = wait_cycle(d)
    last = t["last"]
    assert last["decision"] == "published", last
    assert last["version"] == 2 and last["live_version"] == 1
    assert last["events"] == len(ev)
    assert last["metric"] == "auc"  # the holdout has impressions with outcomes
    assert last["candidate"] >= last["live"] - TRAINER["tolerance_bp"] / 1e4
    det = last["detail"]
    assert det["warm_start"]["copied"] == det["warm_start"]["parameters"] > 20
    assert det["unknown_items"] == 0 and det["undecodable"] == 0
    print("cycle: %d events, %d examples in %.0f ms (read %.0f, train %.0f, eval %.0f); "
          "candidate %.0f ex/s, ranker %.0f ex/s; auc live %.4f -> new %.4f; "
          "hr@10 live %.3f -> new %.3f" % (
              last["events"], last["examples"], last["duration_ms"], det["timing_ms"]["read"],
              det["timing_ms"]["train"], det["timing_ms"]["eval"],
              det["candidate_examples_per_s"], det["ranker_examples_per_s"], last["live"],
              last["candidate"], last["metrics"]["live"]["hr@10"],
              last["metrics"]["candidate"]["hr@10"]))
    # the version on disk, complete, warm-started from 1; no staging left
    mdir = os.path.join(d.config["models_dir"], "default")
    with open(os.path.join(mdir, "2", "manifest.json")) as f:
        man = json.load(f)
    assert man["training"]["warm_start"]["version"] == 1
    assert man["training"]["split"]["mode"] == "time"
    assert not os.path.exists(os.path.join(mdir, ".trainer"))
    # served after the swap
    wait_until(lambda: genre_share(d, world, world["segment"][:1])[1] == {2}, scaled(20),
               interval=0.2, what="version 2 serving")
    seg1, v = genre_share(d, world, world["segment"])
    ctl1, _ = genre_share(d, world, world["control"])
    assert v == {2}
    print("share of %s in the top 20: segment %.3f -> %.3f, control %.3f -> %.3f" % (
        world["G"], seg0, seg1, ctl0, ctl1))
    # the segment moved toward G, and much more than the control group did
    assert seg1 - seg0 >= 0.2, (seg0, seg1)
    assert (seg1 - seg0) - (ctl1 - ctl0) >= 0.1, (seg0, seg1, ctl0, ctl1)


def test_guard_rejects_a_worse_model(recd_factory, world):
    env = dict(os.environ, RECD_TRAINER_TEST_CORRUPT="invert")
    d = daemon(recd_factory, world, {"interval_s": 1, "min_new_events": 1000}, env=env,
               log_events=world["events"])
    t = wait_cycle(d)  # started by the interval: the log had enough new events
    last = t["last"]
    assert last["decision"] == "rejected", last
    assert "below the live version 1" in last["reason"], last
    assert last["candidate"] < last["live"] - TRAINER["tolerance_bp"] / 1e4
    assert last["version"] is None
    assert versions_on_disk(d) == [1]
    assert not os.path.exists(os.path.join(d.config["models_dir"], "default", ".trainer"))
    _, v = genre_share(d, world, world["segment"][:3])
    assert v == {1}
    assert "trainer: cycle rejected" in d.log()
    print("guard: auc live %.4f, trained on inverted labels %.4f: rejected" % (
        last["live"], last["candidate"]))


def test_min_new_events_and_trigger(recd_factory, world):
    few = world["events"][:3000]
    d = daemon(recd_factory, world, {"interval_s": 1, "min_new_events": 1000000},
               log_events=few)
    # the interval passes (several times), the events are counted, nothing runs
    wait_until(lambda: trainer_status(d)["new_events"] == len(few), scaled(10), interval=0.2,
               what="the new events counted")
    time.sleep(1.5)
    t = trainer_status(d)
    assert t["cycles"] == 0 and t["last"] is None and t["state"] == "idle"
    assert t["next_check_at"] is None or t["next_check_at"] > time.time() - 5
    # a trigger runs one regardless; a second one meanwhile is refused
    r1 = d.request("POST", "/admin/train", admin=True)
    r2 = d.request("POST", "/admin/train", admin=True)
    assert 200 <= r1.status < 300, r1
    assert r2.status >= 400, r2
    t = wait_cycle(d)
    assert t["cycles"] == 1
    assert t["last"]["decision"] in ("published", "rejected", "skipped"), t["last"]
    assert t["last"]["events"] == len(few)
    # counting restarts after the cycle's window
    assert trainer_status(d)["new_events"] == 0
