"""A/B experiments (DESIGN §6) against the real daemon.

The reference here is independent of the project: FNV-1a-64 written in
Python (one scalar version, one vectorised with numpy uint64 arithmetic,
checked against each other), bucket = hash(salt ":" user_id) mod 10000,
variant i owns [floor(10000 cum(i-1) / W), floor(10000 cum(i) / W)); the
readout (Wilson 95% interval, pooled two-proportion z-test, lift) computed
with the math module.

recd's assignment is read in two ways: from /v1/recommend responses
("experiment", X-Recd-Variant) and, for thousands of users at once, from
the server-side attribution ("ab") of events in the event log (an event
without request_id or hint is attributed to the user's current variant).

A small Flat bundle from bin/recd-train synth-bundle serves the
recommendations. Tests that need particular experiments install them with
PUT /admin/experiments, each under its own experiment name so the
per-variant counters of one test do not mix with another's.
"""

import json
import math
import signal

import numpy as np
import pytest

from bundlelib import make_bundle
from conftest import scaled, wait_until, parse_metrics, metric_value
from test_events_api import KeepAlive, log_bytes, post_events, read_events

BUCKETS = 10000
N_ITEMS = 200
TOKEN = "ab-admin-token"
Z95 = 1.959963984540054

# --------------------------------------------------------------------------
# the reference
# --------------------------------------------------------------------------

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3


def fnv1a64(data):
    h = FNV_OFFSET
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


def bucket(salt, user):
    return fnv1a64((salt + ":" + user).encode("utf-8")) % BUCKETS


def buckets_np(salt, users):
    """bucket() for many ASCII users at once (numpy uint64 wraps mod 2^64)."""
    raw = [(salt + ":" + u).encode() for u in users]
    width = max(len(r) for r in raw)
    mat = np.zeros((len(raw), width), dtype=np.uint64)
    lens = np.array([len(r) for r in raw])
    for i, r in enumerate(raw):
        mat[i, :len(r)] = np.frombuffer(r, dtype=np.uint8)
    h = np.full(len(raw), FNV_OFFSET, dtype=np.uint64)
    prime = np.uint64(FNV_PRIME)
    with np.errstate(over="ignore"):
        for j in range(width):
            live = lens > j
            nh = (h ^ mat[:, j]) * prime
            h = np.where(live, nh, h)
    return (h % np.uint64(BUCKETS)).astype(np.int64)


def layout(weights):
    total = sum(weights)
    out, cum, lo = [], 0, 0
    for w in weights:
        cum += w
        hi = (BUCKETS * cum) // total
        out.append((lo, hi))
        lo = hi
    return out


def variant_of(exp, user):
    b = bucket(exp["salt"], user)
    for v, (lo, hi) in zip(exp["variants"], layout([v["weight"] for v in exp["variants"]])):
        if lo <= b < hi:
            return v["name"]
    raise AssertionError("bucket %d owned by nobody" % b)


def wilson(n, k):
    if n == 0:
        return None, None
    p = k / n
    z2 = Z95 * Z95
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = Z95 / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    lo, hi = max(0.0, centre - half), min(1.0, centre + half)
    if k == 0:
        lo = 0.0
    if k == n:
        hi = 1.0
    return lo, hi


def ztest(na, ka, nb, kb):
    if na == 0 or nb == 0:
        return None, None
    p = (ka + kb) / (na + nb)
    se = math.sqrt(p * (1 - p) * (1 / na + 1 / nb))
    if se == 0:
        return 0.0, 1.0
    z = (kb / nb - ka / na) / se
    return z, math.erfc(abs(z) / math.sqrt(2))


def lift(nc, kc, nv, kv):
    if nc == 0 or nv == 0 or kc == 0:
        return None
    return (kv / nv - kc / nc) / (kc / nc)


def close(got, want, rel=1e-9, what=""):
    if want is None:
        assert got is None, "%s: %r, expected null" % (what, got)
        return
    assert got is not None, "%s: null, expected %r" % (what, want)
    assert abs(got - want) <= rel * max(abs(want), 1e-300) or got == want, \
        "%s: %r, expected %r" % (what, got, want)


# --------------------------------------------------------------------------
# fixtures and helpers
# --------------------------------------------------------------------------

def exp(name, salt, *variants):
    vs = []
    for v in variants:
        v = dict(v) if isinstance(v, dict) else {"name": v[0], "weight": v[1]}
        vs.append(v)
    return {"name": name, "salt": salt, "variants": vs}


SPLIT = exp("split", "salt-A", ("a", 50), ("b", 30), ("c", 20))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    m = tmp_path_factory.mktemp("ab_models")
    make_bundle(m, name="default", items=N_ITEMS, dim=16, embed=8, hidden="32",
                rank_hidden="16", rank_embed=4, seed=5, index="Flat")
    return str(m)


def model_config(models, experiments):
    return {"models_dir": models, "models": {"serve": "", "default": "default"},
            "admin": {"token": TOKEN}, "events": {"fsync": "never"},
            "experiments": experiments}


@pytest.fixture(scope="module")
def d(module_factory, models):
    d = module_factory(config=model_config(models, [SPLIT]), name="ab")
    wait_until(lambda: d.get("/readyz").status == 200, scaled(30), what="/readyz 200")
    return d


def set_exps(d, exps):
    r = d.request("PUT", "/admin/experiments", body={"experiments": exps}, admin=True)
    assert r.status == 200, r
    return r.json()["experiments"]


def get_exps(d):
    r = d.request("GET", "/admin/experiments", admin=True)
    assert r.status == 200, r
    return r.json()["experiments"]


def ab_stats(d, name):
    for e in d.stats()["ab"]["experiments"]:
        if e["name"] == name:
            return {v["name"]: v for v in e["variants"]}
    raise AssertionError("experiment %s not in /stats ab" % name)


def attributions(d, users, type="purchase", **extra):
    """Post one event per user (no request_id, no hint) and return each
    user's "ab" attribution as recd logged it."""
    since = log_bytes(d)
    for lo in range(0, len(users), 1000):
        evs = []
        for u in users[lo:lo + 1000]:
            e = {"user_id": u, "item_id": "i1", "type": type}
            e.update(extra)
            evs.append(e)
        post_events(d, evs)
    recs = read_events(d, since)
    assert [r["user_id"] for r in recs] == list(users)
    return {r["user_id"]: r.get("ab", {}) for r in recs}


def recommend(c, user, headers=None, status=200, **kw):
    body = {"user_id": user, "k": 1}
    body.update(kw)
    st, hdrs, data = c.request("POST", "/v1/recommend", body=body, headers=headers)
    doc = json.loads(data)
    assert st == status, (st, doc)
    return doc, hdrs


def users_in(salt, lo, hi, n, prefix="u"):
    """n user ids whose bucket under salt is in [lo, hi)."""
    out, i = [], 0
    while len(out) < n:
        u = "%s%d" % (prefix, i)
        if lo <= bucket(salt, u) < hi:
            out.append(u)
        i += 1
    return out


# --------------------------------------------------------------------------
# assignment
# --------------------------------------------------------------------------

def test_reference_hash_vectors():
    # published FNV-1a-64 test vectors
    assert fnv1a64(b"") == 0xCBF29CE484222325
    assert fnv1a64(b"a") == 0xAF63DC4C8601EC8C
    assert fnv1a64(b"foobar") == 0x85944171F73967E8
    users = ["user-%d" % i for i in range(1000)] + ["\u00fc", "x" * 40]
    vec = buckets_np("s", users[:1000])
    assert list(vec) == [bucket("s", u) for u in users[:1000]]


@pytest.mark.parametrize("weights", [[50, 50], [60, 40], [50, 30, 20], [1, 1, 1], [9000, 1000],
                                     [3, 0, 7]])
def test_shares_over_100k_users_within_1pct(weights):
    users = ["user-%06d" % i for i in range(100000)]
    b = buckets_np("share-salt", users)
    total = sum(weights)
    for (lo, hi), w in zip(layout(weights), weights):
        share = float(np.mean((b >= lo) & (b < hi)))
        assert abs(share - w / total) <= 0.01, (weights, w, share)
    # and the bucket histogram itself is flat: no bucket decile is off by 1%
    dec = np.bincount(b // 1000, minlength=10) / len(users)
    assert np.all(np.abs(dec - 0.1) <= 0.01), dec


def test_assignment_matches_reference(d):
    second = exp("second", "other salt ~!", ("x", 1), ("y", 3))
    live = set_exps(d, [SPLIT, second])
    assert [e["name"] for e in live] == ["split", "second"]
    for e in (SPLIT, second):
        got = next(x for x in live if x["name"] == e["name"])
        want = layout([v["weight"] for v in e["variants"]])
        assert [tuple(v["buckets"]) for v in got["variants"]] == want
    users = ["user-%06d" % i for i in range(2000)] + ["\u00fcser-\u2603", "user with space"]
    got = attributions(d, users)
    mismatches = [u for u in users
                  if got[u] != {"split": variant_of(SPLIT, u), "second": variant_of(second, u)}]
    assert not mismatches, [(u, got[u]) for u in mismatches[:5]]
    assert list(got[users[0]].keys()) == ["split", "second"]  # config order
    # shares in the sample near the weights (2000 users: loose bound)
    share_a = sum(1 for u in users if got[u]["split"] == "a") / len(users)
    assert abs(share_a - 0.5) < 0.05
    # /v1/recommend names the same variants
    c = KeepAlive(d.port)
    try:
        for u in users[:150] + users[-2:]:
            doc, hdrs = recommend(c, u)
            want = variant_of(SPLIT, u)
            assert doc["experiment"] == {"name": "split", "variant": want}, (u, doc)
            assert doc["experiments"] == [{"name": "split", "variant": want},
                                          {"name": "second", "variant": variant_of(second, u)}]
            assert hdrs["X-Recd-Variant"] == want
    finally:
        c.close()
    set_exps(d, [SPLIT])
    doc, _ = recommend(KeepAlive(d.port), users[0])
    assert "experiments" not in doc and doc["experiment"]["name"] == "split"


def test_same_assignment_in_two_processes_and_after_restart(recd_factory):
    exps = [exp("twin", "twin-salt", ("c", 70), ("t", 30)), SPLIT]
    a = recd_factory(config={"experiments": exps, "events": {"fsync": "never"}}, name="twin-a")
    b = recd_factory(config={"experiments": exps, "events": {"fsync": "never"}}, name="twin-b")
    users = ["tw-%d" % i for i in range(1500)]
    ga, gb = attributions(a, users), attributions(b, users)
    assert ga == gb
    assert all(ga[u] == {"twin": variant_of(exps[0], u), "split": variant_of(SPLIT, u)}
               for u in users)
    assert b.stop() == 0
    b.start()
    assert attributions(b, users) == ga


def _movement(before, after, exp_name):
    return {u: (before[u][exp_name], after[u][exp_name]) for u in before
            if before[u][exp_name] != after[u][exp_name]}


def test_weight_change_by_put_moves_only_expected_users(d):
    e1 = exp("move", "move-salt", ("control", 50), ("treatment", 50))
    set_exps(d, [e1])
    users = ["mv-%d" % i for i in range(3000)]
    before = attributions(d, users)
    e2 = exp("move", "move-salt", ("control", 60), ("treatment", 40))
    live = set_exps(d, [e2])
    assert [v["buckets"] for v in live[0]["variants"]] == [[0, 6000], [6000, 10000]]
    assert get_exps(d) == live
    after = attributions(d, users)
    moved = _movement(before, after, "move")
    expected = {u for u in users if 5000 <= bucket("move-salt", u) < 6000}
    assert set(moved) == expected
    assert 200 < len(expected) < 400  # about 10% of 3000
    assert set(moved.values()) == {("treatment", "control")}
    # and back: exactly the same users return
    set_exps(d, [e1])
    again = attributions(d, users)
    assert again == before


def test_weight_change_by_sighup_moves_only_expected_users(recd_factory):
    e1 = exp("hup", "hup-salt", ("control", 50), ("treatment", 50))
    d = recd_factory(config={"experiments": [e1], "events": {"fsync": "never"}})
    users = ["hp-%d" % i for i in range(3000)]
    before = attributions(d, users)
    cfg = dict(d.config)
    cfg["experiments"] = [exp("hup", "hup-salt", ("control", 60), ("treatment", 40))]
    d.write_config(cfg)
    d.signal(signal.SIGHUP)
    wait_until(lambda: get_exps(d)[0]["variants"][0]["buckets"] == [0, 6000], scaled(5),
               what="SIGHUP applying the new weights")
    after = attributions(d, users)
    moved = _movement(before, after, "hup")
    assert set(moved) == {u for u in users if 5000 <= bucket("hup-salt", u) < 6000}
    assert set(moved.values()) == {("treatment", "control")}
    # a bad experiments definition in the file is refused as a whole
    cfg["experiments"] = [exp("hup", "hup-salt", ("control", -1), ("treatment", 40))]
    d.write_config(cfg)
    d.signal(signal.SIGHUP)
    d.wait_log(r"experiments\[0\]\.variants\[0\]\.weight")
    assert get_exps(d)[0]["variants"][0]["buckets"] == [0, 6000]
    assert d.alive()


# --------------------------------------------------------------------------
# forced variants, overrides
# --------------------------------------------------------------------------

def test_forced_variant(d):
    e = exp("force", "force-salt", ("control", 50), ("treatment", 50), ("dark", 0))
    set_exps(d, [e])
    user = users_in("force-salt", 0, 5000, 1, "fu")[0]
    c = KeepAlive(d.port)
    s0 = ab_stats(d, "force")
    doc, hdrs = recommend(c, user)
    assert doc["experiment"] == {"name": "force", "variant": "control"}
    doc, hdrs = recommend(c, user, headers={"X-Recd-Variant": "treatment",
                                            "X-Request-Id": "forced-req-1"})
    assert doc["experiment"] == {"name": "force", "variant": "treatment", "forced": True}
    assert hdrs["X-Recd-Variant"] == "treatment"
    assert doc["request_id"] == "forced-req-1"
    # a weight-0 variant can be forced
    doc, _ = recommend(c, user, headers={"X-Recd-Variant": "dark"})
    assert doc["experiment"] == {"name": "force", "variant": "dark", "forced": True}
    s1 = ab_stats(d, "force")
    assert s1["control"]["requests"] == s0["control"]["requests"] + 1
    assert s1["treatment"]["requests"] == s0["treatment"]["requests"]
    assert s1["treatment"]["forced"]["requests"] == s0["treatment"]["forced"]["requests"] + 1
    assert s1["dark"]["forced"]["requests"] == s0["dark"]["forced"]["requests"] + 1
    assert s1["dark"]["requests"] == 0 and s1["dark"]["buckets"] == [10000, 10000]
    # unknown name: 400 naming the header, nothing counted
    st, _, body = c.request("POST", "/v1/recommend", body={"user_id": user, "k": 1},
                            headers={"X-Recd-Variant": "nope"})
    assert st == 400
    err = json.loads(body)["error"]
    assert err["code"] == "bad_request" and err["field"] == "header:X-Recd-Variant", err
    assert ab_stats(d, "force") == s1
    # events of the forced request are forced, counted apart from the readout
    since = log_bytes(d)
    post_events(d, [{"user_id": user, "item_id": "i1", "type": "impression",
                     "request_id": "forced-req-1"},
                    {"user_id": user, "item_id": "i1", "type": "click",
                     "request_id": "forced-req-1"}])
    recs = read_events(d, since)
    assert all(r["ab"] == {"force": "treatment"} and r["forced"] is True for r in recs), recs
    s2 = ab_stats(d, "force")
    assert s2["treatment"]["forced"]["impressions"] == s1["treatment"]["forced"]["impressions"] + 1
    assert s2["treatment"]["forced"]["clicks"] == s1["treatment"]["forced"]["clicks"] + 1
    assert s2["treatment"]["impressions"] == s1["treatment"]["impressions"]
    assert s2["treatment"]["clicks"] == s1["treatment"]["clicks"]
    samples, _, _ = parse_metrics(d.metrics())
    assert metric_value(samples, "recd_ab_requests_total", experiment="force",
                        variant="treatment", forced="1") == s2["treatment"]["forced"]["requests"]
    assert metric_value(samples, "recd_ab_clicks_total", experiment="force",
                        variant="treatment", forced="1") == s2["treatment"]["forced"]["clicks"]
    # with no experiment live, any X-Recd-Variant is unknown
    set_exps(d, [])
    doc, _ = recommend(c, user, headers={"X-Recd-Variant": "control"}, status=400)
    assert doc["error"]["field"] == "header:X-Recd-Variant"
    doc, hdrs = recommend(c, user)
    assert "experiment" not in doc and "X-Recd-Variant" not in hdrs
    c.close()


def test_variant_overrides(d):
    e = exp("ovr", "ovr-salt", ("control", 1),
            {"name": "norank", "weight": 0, "rank": False},
            {"name": "cands", "weight": 0, "candidates": 7},
            {"name": "pctr", "weight": 0, "score": "pctr"},
            {"name": "watch", "weight": 0, "score": "watch_time"})
    set_exps(d, [e])
    c = KeepAlive(d.port)
    base = {"k": 20, "candidates": 50, "explain": True, "history": ["i3", "i9"]}

    def run(variant, **kw):
        body = dict(base)
        body.update(kw)
        doc, _ = recommend(c, "ovr-user", headers={"X-Recd-Variant": variant}, **body)
        assert doc["experiment"]["variant"] == variant
        return doc

    ctl = run("control")
    assert ctl["explain"]["ranker"] != "none"
    assert any(abs(i["score"] - i["retrieval_score"]) > 1e-6 for i in ctl["items"])
    for i in ctl["items"]:  # the bundle's own output (sigmoid)
        lg = i["explain"]["logit"]
        assert abs(i["score"] - 1 / (1 + math.exp(-lg))) <= 1e-5
    # rank: false -> retrieval order, score == retrieval_score
    nr = run("norank")
    assert nr["explain"]["ranker"] == "none"
    rs = [i["retrieval_score"] for i in nr["items"]]
    assert all(i["score"] == i["retrieval_score"] for i in nr["items"])
    assert rs == sorted(rs, reverse=True) and len(rs) == 20
    assert {i["id"] for i in nr["items"]} != {i["id"] for i in ctl["items"]} or \
        [i["id"] for i in nr["items"]] != [i["id"] for i in ctl["items"]]
    # a client's explicit "rank" wins over the variant
    assert run("norank", rank=True)["explain"]["ranker"] == ctl["explain"]["ranker"]
    # candidates: the variant's count when the client gives none, raised to k
    body = {k: v for k, v in base.items() if k != "candidates"}
    doc, _ = recommend(c, "ovr-user", headers={"X-Recd-Variant": "cands"}, **dict(body, k=5))
    assert doc["explain"]["candidates_retrieved"] == 7
    assert len(doc["items"]) == 5
    doc, _ = recommend(c, "ovr-user", headers={"X-Recd-Variant": "cands"}, **dict(body, k=10))
    assert doc["explain"]["candidates_retrieved"] == 10
    assert run("cands", candidates=30)["explain"]["candidates_retrieved"] == 30
    doc, _ = recommend(c, "ovr-user", headers={"X-Recd-Variant": "control"}, **dict(body, k=5))
    assert doc["explain"]["candidates_retrieved"] > 7
    # score formulas over the same logits
    pc, wt = run("pctr"), run("watch")
    assert [i["id"] for i in pc["items"]] == [i["id"] for i in wt["items"]]
    for a, b in zip(pc["items"], wt["items"]):
        lg = a["explain"]["logit"]
        assert b["explain"]["logit"] == lg
        assert abs(a["score"] - 1 / (1 + math.exp(-lg))) <= 1e-5 * abs(a["score"])
        assert abs(b["score"] - math.exp(lg)) <= 1e-5 * abs(b["score"])
        assert 0 < a["score"] < 1
    assert any(b["score"] != a["score"] for a, b in zip(pc["items"], wt["items"]))
    c.close()


# --------------------------------------------------------------------------
# event attribution and the readout
# --------------------------------------------------------------------------

def test_request_id_attribution_survives_weight_change(d):
    e1 = exp("rqid", "rqid-salt", ("c", 50), ("t", 50))
    set_exps(d, [e1])
    user = users_in("rqid-salt", 5000, 6000, 1, "rq")[0]
    c = KeepAlive(d.port)
    doc, _ = recommend(c, user, headers={"X-Request-Id": "rqid-req-1"})
    assert doc["experiment"]["variant"] == "t" and doc["request_id"] == "rqid-req-1"
    c.close()
    s0 = ab_stats(d, "rqid")
    set_exps(d, [exp("rqid", "rqid-salt", ("c", 60), ("t", 40))])
    since = log_bytes(d)
    post_events(d, [
        {"user_id": user, "item_id": "i1", "type": "impression", "request_id": "rqid-req-1"},
        {"user_id": user, "item_id": "i1", "type": "click", "request_id": "rqid-req-1"},
        {"user_id": user, "item_id": "i2", "type": "click"},
        {"user_id": user, "item_id": "i2", "type": "click", "request_id": "never-served"},
    ])
    recs = read_events(d, since)
    assert [r["ab"] for r in recs] == [{"rqid": "t"}, {"rqid": "t"}, {"rqid": "c"}, {"rqid": "c"}]
    assert not any(r.get("forced") for r in recs)
    s1 = ab_stats(d, "rqid")
    assert s1["t"]["impressions"] == s0["t"]["impressions"] + 1
    assert s1["t"]["clicks"] == s0["t"]["clicks"] + 1
    assert s1["c"]["clicks"] == s0["c"]["clicks"] + 2
    assert s1["t"]["requests"] == s0["t"]["requests"]  # counted before the change
    assert s0["t"]["requests"] >= 1


def test_variant_hints(d):
    h1 = exp("hint1", "hint1-salt", ("c", 1), ("t", 1))
    h2 = exp("hint2", "hint2-salt", ("c", 1), ("x", 1))
    set_exps(d, [h1, h2])
    user = "hint-user"
    cur = {"hint1": variant_of(h1, user), "hint2": variant_of(h2, user)}
    since = log_bytes(d)
    base = {"user_id": user, "item_id": "i1", "type": "impression"}
    post_events(d, [
        dict(base, experiment="hint1", variant="t"),
        dict(base, experiment="hint2", variant="x"),
        dict(base, variant="c"),            # every live experiment with a "c"
        dict(base, variant="x"),            # only hint2 has "x"
        dict(base, experiment="nope", variant="t"),   # names nothing live
        dict(base, experiment="hint1", variant="x"),  # hint1 has no "x"
        dict(base, variant="zzz"),
        dict(base),
    ])
    got = [r["ab"] for r in read_events(d, since)]
    assert got == [{"hint1": "t"}, {"hint2": "x"}, {"hint1": "c", "hint2": "c"}, {"hint2": "x"},
                   cur, cur, cur, cur]


def _readout_checks(d, name, counts):
    vs = ab_stats(d, name)
    nc, kc = counts[0][1], counts[0][2]
    for i, (vname, n, k) in enumerate(counts):
        v = vs[vname]
        what = "%s/%s" % (name, vname)
        assert v["impressions"] == n and v["clicks"] == k, (what, v)
        close(v["ctr"], k / n if n else None, what=what + " ctr")
        lo, hi = wilson(n, k)
        close(v["ctr_ci95"][0], lo, what=what + " ci lo")
        close(v["ctr_ci95"][1], hi, what=what + " ci hi")
        if i == 0:
            assert v["z"] is None and v["p_value"] is None, v
            close(v["lift"], 0.0 if kc else None, what=what + " lift")
        else:
            z, p = ztest(nc, kc, n, k)
            close(v["z"], z, what=what + " z")
            close(v["p_value"], p, rel=1e-9, what=what + " p")
            close(v["lift"], lift(nc, kc, n, k), what=what + " lift")
    return vs


def test_readout_matches_reference(recd_factory):
    e = exp("ro", "ro-salt", ("c", 1), ("t1", 1), ("t2", 1), ("t3", 1), ("t4", 1))
    d = recd_factory(config={"experiments": [e], "events": {"fsync": "never"}})
    counts = [("c", 2000, 200), ("t1", 1800, 234), ("t2", 500, 0), ("t3", 0, 0),
              ("t4", 37, 37)]
    evs = []
    for vname, n, k in counts:
        for i in range(n):
            evs.append({"user_id": "ro-u%d" % (i % 97), "item_id": "i%d" % i,
                        "type": "impression", "experiment": "ro", "variant": vname})
        for i in range(k):
            evs.append({"user_id": "ro-u%d" % (i % 97), "item_id": "i%d" % i,
                        "type": "click", "experiment": "ro", "variant": vname})
    # other types are not counted
    evs.append({"user_id": "ro-u1", "item_id": "i1", "type": "purchase", "variant": "t1"})
    for lo in range(0, len(evs), 1000):
        post_events(d, evs[lo:lo + 1000])
    vs = _readout_checks(d, "ro", counts)
    # a worked value, to catch a formula shared by mistake with the reference
    assert abs(vs["c"]["ctr_ci95"][0] - 0.087609) < 1e-6
    assert abs(vs["c"]["ctr_ci95"][1] - 0.113924) < 1e-6
    assert vs["t2"]["ctr_ci95"][0] == 0.0 and vs["t4"]["ctr_ci95"][1] == 1.0
    assert vs["t3"]["ctr"] is None and vs["t3"]["ctr_ci95"] == [None, None]
    assert vs["t3"]["z"] is None and vs["t3"]["lift"] is None
    # /metrics carries the same figures
    samples, helps, types = parse_metrics(d.metrics())
    for vname, n, k in counts:
        assert metric_value(samples, "recd_ab_impressions_total", experiment="ro",
                            variant=vname, forced="0") == n
        assert metric_value(samples, "recd_ab_clicks_total", experiment="ro",
                            variant=vname, forced="0") == k
    assert abs(metric_value(samples, "recd_ab_ctr", experiment="ro", variant="t1") -
               234 / 1800) < 1e-9
    names = {n for n, _, _ in samples} | set(types)
    for want in ("recd_ab_requests_total", "recd_ab_impressions_total", "recd_ab_clicks_total",
                 "recd_ab_request_duration_seconds", "recd_ab_ctr", "recd_ab_ctr_ci95_lower",
                 "recd_ab_ctr_ci95_upper"):
        assert want in names, want
    assert not [s for s in samples if s[0] == "recd_ab_ctr" and s[1].get("variant") == "t3"]
    # the counters are rebuilt from the log at restart
    assert d.stop() == 0
    d.start()
    _readout_checks(d, "ro", counts)


# --------------------------------------------------------------------------
# the admin API
# --------------------------------------------------------------------------

@pytest.mark.parametrize("body,field", [
    ({"experiments": [exp("bad", "s", ("a", 1), ("b", -1))]},
     "experiments[0].variants[1].weight"),
    ([exp("bad", "s", ("a", 1), ("b", 1.5))], "experiments[0].variants[1].weight"),
    ({"experiments": [exp("bad", "s", ("a", 0), ("b", 0))]}, "experiments[0].variants"),
    ({"experiments": [dict(exp("bad", "s", ("a", 1)), colour="red")]}, "experiments[0].colour"),
    ({"experiments": [exp("bad", "s", {"name": "a", "weight": 1, "colour": 1})]},
     "experiments[0].variants[0].colour"),
    ({"experiments": [exp("bad", "s", {"name": "a", "weight": 1, "score": "ctr"})]},
     "experiments[0].variants[0].score"),
    ({"experiments": [exp("bad", "s", {"name": "a", "weight": 1, "rank": "no"})]},
     "experiments[0].variants[0].rank"),
    ({"experiments": [exp("bad name", "s", ("a", 1))]}, "experiments[0].name"),
    ({"experiments": [{"name": "bad", "variants": [{"name": "a", "weight": 1}]}]},
     "experiments[0].salt"),
    ({"experiments": [exp("bad", "s")]}, "experiments[0].variants"),
    ({"experiments": [exp("dup", "s", ("a", 1)), exp("dup", "t", ("a", 1))]},
     "experiments[1].name"),
    ({"experiments": [exp("bad", "s", ("a", 1))], "extra": 1}, "extra"),
    ({"experiments": {"name": "x"}}, "experiments"),
    ({}, "experiments"),
])
def test_admin_put_errors(d, body, field):
    before = get_exps(d)
    r = d.request("PUT", "/admin/experiments", body=body, admin=True)
    assert r.status == 400, r
    err = r.error()
    assert err["code"] == "bad_request" and err["field"] == field, err
    assert get_exps(d) == before


def test_admin_auth_and_listener(d):
    r = d.request("GET", "/admin/experiments", admin=True, auth=False)
    assert r.status == 401, r
    r = d.request("PUT", "/admin/experiments", body={"experiments": []}, admin=True,
                  headers={"Authorization": "Bearer wrong"})
    assert r.status == 401, r
    r = d.request("GET", "/admin/experiments")
    assert r.status == 404, r
    r = d.request("PUT", "/admin/experiments", body={"experiments": []})
    assert r.status == 404, r
    r = d.request("PUT", "/admin/experiments", body="[]", admin=True,
                  headers={"Content-Type": "text/plain"})
    assert r.status == 415, r
    # {"experiments": null} clears; a bare array is accepted
    live = set_exps(d, [SPLIT])
    assert live[0]["name"] == "split" and live[0]["salt"] == "salt-A"
    r = d.request("PUT", "/admin/experiments", body={"experiments": None}, admin=True)
    assert r.status == 200 and r.json() == {"experiments": []}, r
    r = d.request("PUT", "/admin/experiments", body=[SPLIT], admin=True)
    assert r.status == 200 and [e["name"] for e in r.json()["experiments"]] == ["split"]
    # the effective configuration shows the live experiments too
    r = d.request("GET", "/admin/config", admin=True)
    assert r.status == 200
    assert "salt-A" in r.body.decode()
