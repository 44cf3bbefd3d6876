"""Model serving: readiness, broken bundles, request validation, live items
and concurrent catalog changes.

Bundles come from bin/recd-train (bundlelib.make_bundle). Expected
retrieval results are computed with the independent numpy reference in
bundlelib.py.
"""

import http.client
import json
import os
import random
import shutil
import subprocess
import threading
import time

import numpy as np
import pytest

from bundlelib import Reference, assert_same_ranking, make_bundle
from conftest import SANITIZED, metric_value, parse_metrics, scaled, wait_until

N_ITEMS = 5000
DIM = 64


def wait_ready(d, timeout=None):
    wait_until(lambda: d.get("/readyz").status == 200, timeout or scaled(60),
               what="/readyz 200")


def flip_byte(path, offset=4096):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x5a]))


def promtool_ok(text):
    promtool = shutil.which("promtool") or (
        "/usr/bin/promtool" if os.path.exists("/usr/bin/promtool") else None)
    if not promtool:
        return
    p = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert p.returncode == 0, "promtool: %s%s" % (p.stdout.decode(), p.stderr.decode())


# --------------------------------------------------------------------------
# readiness
# --------------------------------------------------------------------------

def test_readyz_503_without_models(recd_factory):
    # its models_dir is empty, and "default" is configured explicitly
    # (serve "" would be satisfied by an empty directory)
    d = recd_factory(config={"models": {"serve": "default"}})
    time.sleep(scaled(0.5))
    for _ in range(3):
        r = d.get("/readyz")
        assert r.status == 503, r
        assert r.error()["code"] == "not_ready"
        assert r.header("Retry-After") is not None
        time.sleep(0.1)
    assert d.get("/healthz").status == 200
    m = d.stats()["models"]["default"]
    assert m["version"] == 0
    assert "no version" in m["last_error"]["message"]
    # not ready: the model endpoints say so (503 + Retry-After, so a proxy
    # tries another replica), not 404
    r = d.request("POST", "/v1/recommend", body={"user_id": "u"})
    assert r.status == 503 and r.error()["code"] == "not_ready", r
    assert r.error()["field"] == "model" and r.header("Retry-After") is not None
    assert d.get("/v1/similar/i1").error()["code"] == "not_ready"


def test_readyz_turns_200_after_load(recd_factory, tmp_path):
    models = tmp_path / "slow_models"
    # no index file: recd trains the IVF quantiser at load, which takes a while
    make_bundle(models, items=60000 if not SANITIZED else 20000, index="IVF256,Flat",
                no_index_file=True)
    d = recd_factory(config={"models_dir": str(models), "models": {"serve": "default"}},
                     start=False)
    d.start(wait=True)  # waits for /healthz only
    seen = []
    deadline = time.monotonic() + scaled(120)
    while time.monotonic() < deadline:
        r = d.get("/readyz")
        seen.append(r.status)
        if r.status == 200:
            break
        assert r.status == 503 and r.error()["code"] == "not_ready", r
        # not ready means no model yet: requests say so instead of failing
        q = d.request("POST", "/v1/recommend", body={"user_id": "u"})
        assert q.status == 200 or (q.status == 503 and q.error()["code"] == "not_ready"
                                   and q.header("Retry-After") is not None), q
        time.sleep(0.02)
    assert seen[-1] == 200, "never ready: %r" % seen[-10:]
    assert 503 in seen, "expected /readyz 503 before the model finished loading"
    m = d.stats()["models"]["default"]
    assert m["index_source"] == "built" and m["index"] == "IVF256,Flat"
    assert m["index_build_ms"] > 0
    r = d.request("POST", "/v1/recommend", body={"user_id": "u", "history": ["i1"]})
    assert r.status == 200, r


# --------------------------------------------------------------------------
# broken bundles
# --------------------------------------------------------------------------

def test_corrupt_newest_version_falls_back(recd_factory, tmp_path):
    models = tmp_path / "m"
    make_bundle(models, version=1, items=2000, seed=1)
    v2 = make_bundle(models, version=2, items=2000, seed=2)
    flip_byte(os.path.join(v2, "tensors.bin"))
    d = recd_factory(config={"models_dir": str(models)})
    wait_ready(d)
    m = d.stats()["models"]["default"]
    assert m["version"] == 1, m
    err = m["last_error"]
    assert err["version"] == 2, err
    assert "tensors.bin" in err["message"] and "sha-256" in err["message"].lower(), err
    assert "/2" in err["message"], err  # names the version directory
    text = d.metrics()
    samples, _, _ = parse_metrics(text)
    assert metric_value(samples, "recd_model_load_failed", model="default") == 1
    assert metric_value(samples, "recd_model_info", model="default", version="1") == 1
    assert metric_value(samples, "recd_model_items", model="default") == 2000
    promtool_ok(text)
    r = d.request("POST", "/v1/recommend", body={"user_id": "u", "history": ["i3"]})
    assert r.status == 200 and r.json()["model"] == {"name": "default", "version": 1}, r
    assert d.wait_log(r"version 2 rejected")


def test_bad_model_next_to_good_one(recd_factory, tmp_path):
    models = tmp_path / "m"
    make_bundle(models, name="good", items=1000, seed=1)
    bad = make_bundle(models, name="bad", items=1000, seed=2)
    # items.tsv loses its last row (and the checksum is refreshed so the row
    # count check, not the checksum, must catch it)
    p = os.path.join(bad, "items.tsv")
    with open(p) as f:
        lines = f.read().splitlines(True)
    with open(p, "w") as f:
        f.writelines(lines[:-1])
    reseal(bad)
    d = recd_factory(config={"models_dir": str(models),
                             "models": {"serve": "", "default": "good"}})
    st = wait_until(lambda: ("good" in d.stats()["models"] and "bad" in d.stats()["models"]
                             and d.stats()["models"]["good"]["version"] == 1
                             and d.stats()["models"]), scaled(30), what="both models listed")
    time.sleep(scaled(0.3))
    st = d.stats()["models"]
    assert st["good"]["version"] == 1 and "last_error" not in st["good"], st
    assert st["bad"]["version"] == 0, st
    msg = st["bad"]["last_error"]["message"]
    assert st["bad"]["last_error"]["version"] == 1
    assert "items.tsv" in msg and "999 rows" in msg and "1000" in msg, msg
    # every configured model must load before /readyz says 200
    assert d.get("/readyz").status == 503
    samples, _, _ = parse_metrics(d.metrics())
    assert metric_value(samples, "recd_model_load_failed", model="bad") == 1
    assert metric_value(samples, "recd_model_load_failed", model="good") == 0
    promtool_ok(d.metrics())
    r = d.request("POST", "/v1/recommend", body={"user_id": "u", "history": ["i3"]})
    assert r.status == 200 and r.json()["model"]["name"] == "good", r
    r = d.request("POST", "/v1/recommend", body={"user_id": "u", "model": "bad"})
    assert r.status == 503 and r.error()["code"] == "not_ready", r


def reseal(bundle_dir):
    import hashlib
    mp = os.path.join(bundle_dir, "manifest.json")
    with open(mp) as f:
        m = json.load(f)
    for name, info in m["files"].items():
        with open(os.path.join(bundle_dir, name), "rb") as f:
            data = f.read()
        info["sha256"] = hashlib.sha256(data).hexdigest()
        info["bytes"] = len(data)
    with open(mp, "w") as f:
        json.dump(m, f)


# --------------------------------------------------------------------------
# a served model for the API tests
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def api(module_factory, tmp_path_factory):
    models = tmp_path_factory.mktemp("api_models")
    bdir = make_bundle(models, items=N_ITEMS, dim=DIM, seed=5)
    d = module_factory(config={"models_dir": str(models)}, name="api")
    wait_ready(d)
    return {"d": d, "ref": Reference(bdir)}


E64 = [0.01] * DIM
LONG = "x" * 257

REC_ERRORS = [
    # (body, status, code, field)
    ({}, 400, "bad_request", "user_id"),
    ({"user_id": ""}, 400, "bad_request", "user_id"),
    ({"user_id": LONG}, 400, "bad_request", "user_id"),
    ({"user_id": 5}, 400, "bad_request", "user_id"),
    ({"user_id": None}, 400, "bad_request", "user_id"),
    ({"user_id": "u", "k": 0}, 400, "bad_request", "k"),
    ({"user_id": "u", "k": 1001}, 400, "bad_request", "k"),
    ({"user_id": "u", "k": "5"}, 400, "bad_request", "k"),
    ({"user_id": "u", "k": 2.5}, 400, "bad_request", "k"),
    ({"user_id": "u", "k": 10, "candidates": 9}, 400, "bad_request", "candidates"),
    ({"user_id": "u", "candidates": 10001}, 400, "bad_request", "candidates"),
    ({"user_id": "u", "candidates": "many"}, 400, "bad_request", "candidates"),
    ({"user_id": "u", "history": "i1"}, 400, "bad_request", "history"),
    ({"user_id": "u", "history": ["i1", "i2", "i3", 4]}, 400, "bad_request", "history[3]"),
    ({"user_id": "u", "history": ["i1"] * 1001}, 400, "bad_request", "history"),
    ({"user_id": "u", "exclude": {"i1": 1}}, 400, "bad_request", "exclude"),
    ({"user_id": "u", "exclude": [None]}, 400, "bad_request", "exclude[0]"),
    ({"user_id": "u", "exclude": ["i1"] * 10001}, 400, "bad_request", "exclude"),
    ({"user_id": "u", "features": [1]}, 400, "bad_request", "features"),
    ({"user_id": "u", "context": "night"}, 400, "bad_request", "context"),
    ({"user_id": "u", "features": {"age": "old"}}, 400, "bad_request", "features.age"),
    ({"user_id": "u", "features": {"age": True}}, 400, "bad_request", "features.age"),
    ({"user_id": "u", "features": {"gender": 1.5}}, 400, "bad_request", "features.gender"),
    ({"user_id": "u", "features": {"gender": ["F", "M"]}}, 400, "bad_request",
     "features.gender"),
    ({"user_id": "u", "features": {"occupation": {"a": 1}}}, 400, "bad_request",
     "features.occupation"),
    ({"user_id": "u", "context": {"hour": "noon"}}, 400, "bad_request", "context.hour"),
    ({"user_id": "u", "context": {"device": True}}, 400, "bad_request", "context.device"),
    ({"user_id": "u", "bogus": 1}, 400, "bad_request", "bogus"),
    ({"user_id": "u", "model": ""}, 400, "bad_request", "model"),
    ({"user_id": "u", "model": 7}, 400, "bad_request", "model"),
    ({"user_id": "u", "model": "nope"}, 404, "unknown_model", "model"),
    ({"user_id": "u", "include_seen": "yes"}, 400, "bad_request", "include_seen"),
    ({"user_id": "u", "explain": 1}, 400, "bad_request", "explain"),
]


@pytest.mark.parametrize("body,status,code,field", REC_ERRORS,
                         ids=["rec%d-%s" % (i, e[3]) for i, e in enumerate(REC_ERRORS)])
def test_recommend_errors(api, body, status, code, field):
    r = api["d"].request("POST", "/v1/recommend", body=body)
    assert r.status == status, (body, r)
    err = r.error()
    assert err["code"] == code and err["field"] == field, (body, err)


def test_recommend_body_errors(api):
    d = api["d"]
    r = d.request("POST", "/v1/recommend", body='{"user_id": "u",',
                  headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.error()["code"] == "bad_json", r
    r = d.request("POST", "/v1/recommend", body='{"user_id": "u"}',
                  headers={"Content-Type": "text/plain"})
    assert r.status == 415 and r.error()["code"] == "unsupported_media_type", r
    # an embedded NUL never reaches the id checks
    r = d.request("POST", "/v1/recommend", body={"user_id": "a\u0000b"})
    assert r.status == 400 and r.error()["code"] in ("bad_json", "bad_request"), r
    r = d.request("POST", "/v1/recommend", body=[1, 2])
    assert r.status == 400 and r.error()["code"] == "bad_request", r
    # the same limits hold at the edges that are allowed
    r = d.request("POST", "/v1/recommend", body={"user_id": "x" * 256, "k": 1000,
                                                   "candidates": 10000,
                                                   "history": ["i1"] * 1000})
    assert r.status == 200 and len(r.json()["items"]) == 1000, r


GET_ERRORS = [
    ("/v1/recommend", 400, "bad_request", "user_id"),
    ("/v1/recommend?user_id=u&k=abc", 400, "bad_request", "k"),
    ("/v1/recommend?user_id=u&k=0", 400, "bad_request", "k"),
    ("/v1/recommend?user_id=u&k=5&candidates=4", 400, "bad_request", "candidates"),
    ("/v1/recommend?user_id=u&candidates=x", 400, "bad_request", "candidates"),
    ("/v1/recommend?user_id=u&include_seen=maybe", 400, "bad_request", "include_seen"),
    ("/v1/recommend?user_id=u&model=nope", 404, "unknown_model", "model"),
    # unknown query parameters are refused like unknown POST fields
    ("/v1/recommend?user_id=u&kk=5", 400, "bad_request", "kk"),
    ("/v1/similar/nope", 404, "unknown_item", "item_id"),
    ("/v1/similar/i1?k=0", 400, "bad_request", "k"),
    ("/v1/similar/i1?k=1001", 400, "bad_request", "k"),
    ("/v1/similar/i1?k=ten", 400, "bad_request", "k"),
    ("/v1/similar/i1?model=nope", 404, "unknown_model", "model"),
]


@pytest.mark.parametrize("path,status,code,field", GET_ERRORS)
def test_get_errors(api, path, status, code, field):
    r = api["d"].get(path)
    assert r.status == status, (path, r)
    err = r.error()
    assert err["code"] == code and err["field"] == field, (path, err)


ITEM_ERRORS = [
    # (method, id, body, status, code, field)
    ("PUT", "bad-1", {}, 422, "embedding_required", "embedding"),
    ("PUT", "bad-1", {"features": {"genres": ["Comedy"]}}, 422, "embedding_required",
     "embedding"),
    ("PUT", "bad-1", {"embedding": [0.1] * (DIM - 1)}, 400, "bad_request", "embedding"),
    ("PUT", "bad-1", {"embedding": [0.1] * (DIM + 1)}, 400, "bad_request", "embedding"),
    ("PUT", "bad-1", {"embedding": ["a"] * DIM}, 400, "bad_request", "embedding"),
    ("PUT", "bad-1", {"embedding": [0.1] * (DIM - 1) + [None]}, 400, "bad_request",
     "embedding"),
    ("PUT", "bad-1", {"embedding": [1e39] * DIM}, 400, "bad_request", "embedding"),
    ("PUT", "bad-1", {"embedding": "0.1,0.2"}, 400, "bad_request", "embedding"),
    ("PUT", "bad-1", {"embedding": E64, "bogus": True}, 400, "bad_request", "bogus"),
    ("PUT", "bad-1", {"embedding": E64, "features": 3}, 400, "bad_request", "features"),
    ("PUT", "bad-1", {"embedding": E64, "model": "nope"}, 404, "unknown_model", "model"),
    ("PUT", LONG, {"embedding": E64}, 400, "bad_request", "item_id"),
    ("DELETE", "never-existed", None, 404, "unknown_item", "item_id"),
]


@pytest.mark.parametrize("method,iid,body,status,code,field", ITEM_ERRORS,
                         ids=["item%d-%s" % (i, e[5]) for i, e in enumerate(ITEM_ERRORS)])
def test_item_errors(api, method, iid, body, status, code, field):
    d = api["d"]
    r = d.request(method, "/v1/items/" + iid, body=body)
    assert r.status == status, (method, iid, body, r)
    err = r.error()
    assert err["code"] == code and err["field"] == field, (body, err)
    # nothing was created by a rejected PUT
    assert d.get("/v1/similar/bad-1").status == 404


def test_item_bad_json(api):
    d = api["d"]
    r = d.request("PUT", "/v1/items/bad-1", body='{"embedding": [1,',
                  headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.error()["code"] == "bad_json", r
    r = d.request("DELETE", "/v1/items/i1?model=nope")
    assert r.status == 404 and r.error()["code"] == "unknown_model", r
    assert d.get("/v1/similar/i1").status == 200  # not deleted


# --------------------------------------------------------------------------
# live items
# --------------------------------------------------------------------------

def rec(d, body):
    # live-item semantics are retrieval semantics: keep retrieval order
    body = dict(body, rank=False)
    r = d.request("POST", "/v1/recommend", body=body)
    assert r.status == 200, (body, r)
    return r.json()


def test_live_item_add_replace_delete(api):
    d, ref = api["d"], api["ref"]
    hist = [ref.ids[i] for i in (11, 12, 13, 14)]
    body = {"user_id": "live", "history": hist, "k": 20}
    u = ref.user_vector("live", hist)
    unit = u / np.linalg.norm(u)
    # a new item along u with norm 10 beats every catalog item (norm ~1)
    r = d.request("PUT", "/v1/items/live-top", body={"embedding": list(unit * 10)})
    assert r.status == 201, r
    assert r.json()["id"] == "live-top" and r.json()["created"] is True
    doc = rec(d, body)
    assert doc["items"][0]["id"] == "live-top", doc["items"][:3]
    assert abs(doc["items"][0]["retrieval_score"] - 10 * np.linalg.norm(u)) < 1e-3
    # the rest is still the reference order
    want = ref.topk(ref.scores(u), 19, set(ref.known_history(hist)))
    rest = doc["items"][1:]
    assert_same_ranking([x["id"] for x in rest], [x["retrieval_score"] for x in rest], want,
                        ref.scores(u), ref.ids, what="after live add")
    # in the history it is banned (known, live), unless include_seen
    doc = rec(d, dict(body, history=hist + ["live-top"]))
    assert "live-top" not in [x["id"] for x in doc["items"]]
    assert "unknown_items" not in doc
    doc = rec(d, dict(body, history=hist + ["live-top"], include_seen=True))
    assert doc["items"][0]["id"] == "live-top"
    doc = rec(d, dict(body, exclude=["live-top"]))
    assert "live-top" not in [x["id"] for x in doc["items"]]
    # replaced: now pointing away from u, it drops out
    r = d.request("PUT", "/v1/items/live-top", body={"embedding": list(-unit)})
    assert r.status == 200 and r.json()["created"] is False, r
    doc = rec(d, dict(body, k=200))
    assert "live-top" not in [x["id"] for x in doc["items"]]
    # deleted: gone everywhere, at once
    r = d.request("DELETE", "/v1/items/live-top")
    assert r.status == 200 and r.json()["deleted"] is True and r.json()["id"] == "live-top"
    assert d.get("/v1/similar/live-top").status == 404
    assert d.request("DELETE", "/v1/items/live-top").status == 404
    doc = rec(d, dict(body, history=hist + ["live-top"]))
    assert doc.get("unknown_items") == 1


def test_live_item_similar(api):
    d, ref = api["d"], api["ref"]
    j = 321
    r = d.request("PUT", "/v1/items/twin", body={"embedding": [float(x) for x in
                                                                ref.item_emb[j]]})
    assert r.status == 201, r
    try:
        doc = d.get("/v1/similar/twin?k=5").json()
        assert doc["items"][0]["id"] == ref.ids[j]
        assert abs(doc["items"][0]["score"] - float(ref.item_emb[j] @ ref.item_emb[j])) < 1e-4
        assert "twin" not in [x["id"] for x in doc["items"]]
        doc = d.get("/v1/similar/%s?k=5" % ref.ids[j]).json()
        assert doc["items"][0]["id"] == "twin"
        assert ref.ids[j] not in [x["id"] for x in doc["items"]]
    finally:
        assert d.request("DELETE", "/v1/items/twin").status == 200


def test_replace_and_delete_base_item(api):
    d, ref = api["d"], api["ref"]
    hist = [ref.ids[i] for i in (101, 102, 103)]
    body = {"user_id": "base", "history": hist, "k": 10}
    u = ref.user_vector("base", hist)
    scores = ref.scores(u)
    top = ref.topk(scores, 10, set(ref.known_history(hist)))
    t = top[0]
    tid = ref.ids[t]
    assert rec(d, body)["items"][0]["id"] == tid
    # replace its vector by the opposite direction: 200, not created
    neg = -ref.item_emb[t]
    r = d.request("PUT", "/v1/items/" + tid, body={"embedding": [float(x) for x in neg]})
    assert r.status == 200 and r.json()["created"] is False, r
    doc = rec(d, dict(body, k=100))
    assert tid not in [x["id"] for x in doc["items"]]
    assert doc["items"][0]["id"] == ref.ids[top[1]]
    # /v1/similar uses the live vector
    sims = ref.item_emb @ neg
    want = ref.topk(sims, 5, {t})
    doc = d.get("/v1/similar/%s?k=5" % tid).json()
    assert_same_ranking([x["id"] for x in doc["items"]], [x["score"] for x in doc["items"]],
                        want, sims, ref.ids, what="similar to a replaced item")
    # delete: never returned, unknown in histories, 404 for similar
    r = d.request("DELETE", "/v1/items/" + tid)
    assert r.status == 200, r
    doc = rec(d, dict(body, k=1000, candidates=10000))
    assert tid not in [x["id"] for x in doc["items"]]
    assert d.get("/v1/similar/%s" % tid).status == 404
    doc = rec(d, dict(body, history=hist + [tid]))
    assert doc.get("unknown_items") == 1
    for j in range(20):
        doc = d.get("/v1/similar/%s?k=50" % ref.ids[top[1] if j == 0 else 500 + j]).json()
        assert tid not in [x["id"] for x in doc["items"]]
    # popular fallback skips it too
    doc = rec(d, {"user_id": "cold", "k": 1000})
    assert tid not in [x["id"] for x in doc["items"]]
    # and it can come back as a live item
    r = d.request("PUT", "/v1/items/" + tid, body={"embedding": [float(x) for x in
                                                                  ref.item_emb[t]]})
    assert r.status == 201 and r.json()["created"] is True, r
    assert rec(d, body)["items"][0]["id"] == tid


def test_replaced_item_still_counts_in_history(api):
    """PUT on a catalog item replaces its retrieval vector (cand.item_emb
    row); the item is still in the catalog, so as a history entry it keeps
    its history embedding (cand.hist_emb row) in the user tower."""
    d, ref = api["d"], api["ref"]
    a, b = 2001, 2002
    r = d.request("PUT", "/v1/items/" + ref.ids[a],
                  body={"embedding": [float(x) for x in ref.item_emb[a]]})
    assert r.status == 200 and r.json()["created"] is False, r
    hist = [ref.ids[a], ref.ids[b]]
    body = {"user_id": "rep", "history": hist, "k": 10}
    doc = rec(d, body)
    assert "fallback" not in doc and "unknown_items" not in doc, doc
    u = ref.user_vector("rep", hist)
    scores = ref.scores(u)
    want = ref.topk(scores, 10, {a, b})
    assert_same_ranking([x["id"] for x in doc["items"]],
                        [x["retrieval_score"] for x in doc["items"]], want, scores, ref.ids,
                        what="history with a replaced item")
    # a history made of the replaced item alone is still a known history
    doc = rec(d, {"user_id": "rep", "history": [ref.ids[a]], "k": 10})
    assert "fallback" not in doc, doc


def test_deleted_popular_item_skipped(api):
    d, ref = api["d"], api["ref"]
    p0 = ref.ids[ref.by_pop[0]]
    assert rec(d, {"user_id": "cold", "k": 1})["items"][0]["id"] == p0
    assert d.request("DELETE", "/v1/items/" + p0).status == 200
    doc = rec(d, {"user_id": "cold", "k": 5})
    assert [x["id"] for x in doc["items"]] == [ref.ids[i] for i in ref.by_pop[1:6]]


# --------------------------------------------------------------------------
# concurrent reads and catalog changes
# --------------------------------------------------------------------------

class Client:
    """A keep-alive connection that reconnects when the server closes."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def req(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        hdrs = {"Content-Type": "application/json"} if data is not None else {}
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                       timeout=scaled(30))
            try:
                self.conn.request(method, path, body=data, headers=hdrs)
                r = self.conn.getresponse()
                payload = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, payload
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError) as e:
                # a keep-alive connection closed by the server between
                # requests is retried once on a fresh one; anything else counts
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")


def test_concurrent_reads_and_writes(recd_factory, tmp_path):
    models = tmp_path / "m"
    bdir = make_bundle(models, items=N_ITEMS, seed=9)
    ref = Reference(bdir)
    d = recd_factory(config={"models_dir": str(models),
                             "http": {"workers": 2, "keepalive_timeout_ms": 60000}})
    wait_ready(d)
    gone = {ref.ids[i] for i in range(10)}
    for g in gone:
        assert d.request("DELETE", "/v1/items/" + g).status == 200

    n_threads = 20 if SANITIZED else 100
    n_writers = n_threads // 5
    duration = 2.0 if SANITIZED else 5.0
    stop = time.monotonic() + duration
    lock = threading.Lock()
    stats = {"req": 0, "5xx": [], "errors": [], "bad": []}

    def note(kind, what):
        with lock:
            stats[kind].append(what)

    def reader(t):
        rng = random.Random(t)
        c = Client(d.port)
        n = 0
        while time.monotonic() < stop:
            try:
                if rng.random() < 0.7:
                    hist = [ref.ids[rng.randrange(10, ref.n)] for _ in range(rng.randrange(0, 8))]
                    if rng.random() < 0.3:
                        hist.append(rng.choice(sorted(gone)))
                    body = {"user_id": "c%d" % t, "history": hist, "k": 50,
                            "candidates": 200}
                    st, payload = c.req("POST", "/v1/recommend", body)
                else:
                    st, payload = c.req("GET", "/v1/similar/%s?k=50" %
                                        ref.ids[rng.randrange(1000, ref.n)])
            except Exception as e:  # connection errors are failures
                note("errors", repr(e))
                c = Client(d.port)
                continue
            n += 1
            if st >= 500:
                note("5xx", (st, payload[:200]))
            elif st != 200:
                note("bad", (st, payload[:200]))
            else:
                ids = {x["id"] for x in json.loads(payload)["items"]}
                if ids & gone:
                    note("bad", ("deleted item returned", sorted(ids & gone)))
        with lock:
            stats["req"] += n

    def writer(t):
        rng = random.Random(1000 + t)
        c = Client(d.port)
        live = {}  # own id -> present
        base = ref.ids[100 + t]  # own base item: replaced, deleted, re-added
        live[base] = True
        n = 0
        while time.monotonic() < stop:
            iid = rng.choice(["w%d-%d" % (t, j) for j in range(5)] + [base])
            present = live.get(iid, False)
            try:
                if present and rng.random() < 0.5:
                    st, payload = c.req("DELETE", "/v1/items/" + iid)
                    want = 200
                    live[iid] = False
                else:
                    vec = [rng.uniform(-1, 1) for _ in range(DIM)]
                    st, payload = c.req("PUT", "/v1/items/" + iid, {"embedding": vec})
                    want = 200 if present else 201
                    live[iid] = True
            except Exception as e:
                note("errors", repr(e))
                c = Client(d.port)
                continue
            n += 1
            if st >= 500:
                note("5xx", (st, payload[:200]))
            elif st != want:
                note("bad", ("writer", iid, st, want, payload[:200]))
        with lock:
            stats["req"] += n

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(n_writers)]
    threads += [threading.Thread(target=reader, args=(t,)) for t in range(n_threads - n_writers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=duration + scaled(60))
    assert not any(th.is_alive() for th in threads), "client threads hung"
    print("concurrent: %d requests in %.1f s from %d threads" % (stats["req"], duration,
                                                                 n_threads))
    assert not stats["errors"], stats["errors"][:5]
    assert not stats["5xx"], stats["5xx"][:5]
    assert not stats["bad"], stats["bad"][:5]
    assert stats["req"] > n_threads
    assert d.get("/readyz").status == 200
    assert d.stop() == 0, d.log()[-3000:]
