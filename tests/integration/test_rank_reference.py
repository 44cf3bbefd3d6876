"""recd's ranking stage against an independent numpy DeepFM / Wide&Deep.

For a DeepFM and a Wide&Deep bundle written by bin/recd-train (random ranker
weights, 3,000 items, Flat index, a non-default MLP), RankerRef in
bundlelib.py - written from Guo et al. 2017, Cheng et al. 2016 and
../shared/BUNDLE.md, numpy only - scores what recd scores:

* POST /v1/score: 50 random requests (random user features with missing and
  null values, unseen values, numbers on and off bucket boundaries, random
  context, random histories) each listing 1,000 random catalog items:
  every score within 1e-5 of the reference, the list sorted by the
  reference score (swaps only between scores within 1e-6), the same top 10,
  the explain parts equal to the reference parts and summing to the logit,
  retrieval_score = u.v within 1e-4.
* POST /v1/recommend with candidates = k = 50: the candidates are the exact
  retrieval top 50 and come back in the reference ranking's order.
* A live item PUT with features is ranked with exactly those features (and
  item_id = its id), also after a replacement and through /v1/recommend.
"""

import random

import numpy as np
import pytest

from bundlelib import Reference, assert_same_top, assert_score_order, make_bundle
from conftest import SANITIZED, scaled, wait_until

N_ITEMS = 3000
N_REQUESTS = 50 if not SANITIZED else 15
N_SCORED = 1000
SCORE_TOL = 1e-5
PART_TOL = 1e-5
RETRIEVAL_TOL = 1e-4
TIE = 1e-6

GENDERS = ["F", "M"]
OCCUPATIONS = ["other", "academic/educator", "artist", "doctor/health care", "programmer",
               "writer", "K-12 student"]
DEVICES = ["mobile", "desktop", "tablet", "tv"]
GENRES = ["Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary",
          "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
          "Sci-Fi", "Thriller", "War", "Western"]
PARTS = ("bias", "first_order", "second_order", "deep", "logit")


def wait_models_ready(d):
    wait_until(lambda: d.get("/readyz").status == 200, scaled(60),
               what="/readyz 200 (models loaded)")


@pytest.fixture(scope="module", params=["deepfm", "wide_deep"])
def env(request, module_factory, tmp_path_factory):
    ranker = request.param
    models = tmp_path_factory.mktemp("rank_ref_" + ranker)
    bdir = make_bundle(models, items=N_ITEMS, index="Flat", seed=11, ranker=ranker,
                       rank_hidden="64,32", rank_embed=8)
    ref = Reference(bdir)
    rr = ref.ranker()
    assert rr is not None and rr.type == ranker
    d = module_factory(config={"models_dir": str(models), "rank": {"max_items": N_SCORED}},
                       name="rank_" + ranker)
    wait_models_ready(d)
    return {"ref": ref, "rr": rr, "d": d, "models": str(models), "ranker": ranker}


def post(d, path, body):
    r = d.request("POST", path, body=body, timeout=scaled(30))
    assert r.status == 200, (path, body if len(str(body)) < 2000 else str(body)[:2000], r.body)
    return r.json()


# --------------------------------------------------------------------------
# random requests
# --------------------------------------------------------------------------

def random_features(rng):
    f = {}
    c = rng.random()
    if c < 0.3:
        f["age"] = rng.randrange(-3, 90)
    elif c < 0.5:
        f["age"] = rng.choice([18, 25, 35.0, 44.5, 45, 50, 56, 56.0, 17.999, 1e6, -1.5])
    elif c < 0.65:
        f["age"] = None
    c = rng.random()
    if c < 0.5:
        f["gender"] = rng.choice(GENDERS)
    elif c < 0.6:
        f["gender"] = rng.choice([1, 2.0, -4, "X", "unseen-%d" % rng.randrange(100)])
    elif c < 0.75:
        f["gender"] = None
    c = rng.random()
    if c < 0.55:
        f["occupation"] = rng.choice(OCCUPATIONS)
    elif c < 0.7:
        f["occupation"] = rng.choice(["astronaut", "Caf\u00e9", "\u6620\u753b", 7])
    elif c < 0.8:
        f["occupation"] = None
    if rng.random() < 0.1:
        f["user_id"] = "spoofed"  # ignored: user_id is the request's
    if rng.random() < 0.1:
        f["device"] = "tv"  # a context field: ignored in features
    return f


def random_context(rng):
    ctx = {}
    c = rng.random()
    if c < 0.5:
        ctx["device"] = rng.choice(DEVICES)
    elif c < 0.6:
        ctx["device"] = rng.choice(["smart-fridge", "", None])
    c = rng.random()
    if c < 0.5:
        ctx["hour"] = rng.randrange(0, 24)
    elif c < 0.65:
        ctx["hour"] = rng.choice([6, 9.0, 12.5, 23, 23.99, -1, None])
    return ctx


def random_history(rng, ref):
    if rng.random() < 0.1:
        return None
    n = rng.choice([0, 1, 3, 10, 30, 60])
    hist = [ref.ids[rng.randrange(ref.n)] for _ in range(n)]
    if rng.random() < 0.3:
        hist.insert(rng.randrange(len(hist) + 1), "unknown-%d" % rng.randrange(1000))
    return hist


def random_score_request(rng, ref, i):
    body = {"user_id": rng.choice(["u%d" % rng.randrange(10 ** 6), "user-%d" % i,
                                   "\u00fcser-\u6f22-%d" % i])}
    feats = random_features(rng)
    if feats or rng.random() < 0.5:
        body["features"] = feats
    ctx = random_context(rng)
    if ctx or rng.random() < 0.5:
        body["context"] = ctx
    hist = random_history(rng, ref)
    if hist is not None:
        body["history"] = hist
    idx = rng.sample(range(ref.n), N_SCORED)
    body["items"] = [ref.ids[i] for i in idx]
    return body, idx


# --------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------

def check_scored(ref, rr, body, doc, idx, what, explain, live=None):
    """doc (a /v1/score or /v1/recommend answer) scores the items idx
    (catalog indices or live ids) as the reference does."""
    want = rr.score(body["user_id"], body.get("features"), body.get("context"), idx,
                    live=live)
    name_of = lambda x: x if isinstance(x, str) else ref.ids[x]  # noqa: E731
    names = [name_of(x) for x in idx]
    pos = {n: j for j, n in enumerate(names)}
    items = doc["items"]
    got_ids = [it["id"] for it in items]
    assert sorted(got_ids) == sorted(names), "%s: returned ids differ from the scored set" % what
    score_of = {n: float(want["score"][j]) for j, n in enumerate(names)}
    worst = max(abs(it["score"] - score_of[it["id"]]) for it in items)
    bad = [(it["id"], it["score"], score_of[it["id"]]) for it in items
           if abs(it["score"] - score_of[it["id"]]) > SCORE_TOL]
    assert not bad, "%s: %d scores off by more than %g (worst %.3g), e.g. (id, recd, ref) %r" % (
        what, len(bad), SCORE_TOL, worst, bad[:5])
    assert_score_order(got_ids, score_of, tie=TIE, what=what)
    assert_same_top(got_ids, score_of, 10, tie=TIE, what=what)
    # ties (equal scores) keep the request order
    for a, b in zip(items, items[1:]):
        if a["score"] == b["score"]:
            assert pos[a["id"]] < pos[b["id"]], "%s: tie %s/%s out of request order" % (
                what, a["id"], b["id"])
    if explain:
        for it in items:
            ex = it.get("explain")
            assert isinstance(ex, dict), (what, it)
            j = pos[it["id"]]
            total = ex["bias"] + ex["first_order"] + ex["second_order"] + ex["deep"]
            assert abs(total - ex["logit"]) <= PART_TOL, (what, "parts do not sum", it)
            for part in PARTS:
                w = float(want[part][j])
                assert abs(ex[part] - w) <= PART_TOL * max(1.0, abs(w)), (
                    "%s: %s explain.%s = %.9f, reference %.9f (all parts: %r, ref %r)"
                    % (what, it["id"], part, ex[part], w, ex,
                       {p: float(want[p][j]) for p in PARTS}))
            if rr.output == "sigmoid":
                assert abs(it["score"] - 1 / (1 + np.exp(-ex["logit"]))) <= SCORE_TOL, (what, it)
    else:
        assert all("explain" not in it for it in items), (what, "explain without asking")
    return score_of


def check_retrieval(ref, body, doc, live_vecs=None, what=""):
    u = ref.user_vector(body["user_id"], body.get("history") or [], body.get("features"),
                        body.get("context"))
    for it in doc["items"]:
        if live_vecs and it["id"] in live_vecs:
            v = np.asarray(live_vecs[it["id"]], dtype=np.float64)
        else:
            v = ref.item_emb[ref.index_of[it["id"]]]
        want = float(u @ v)
        assert abs(it["retrieval_score"] - want) <= RETRIEVAL_TOL * max(1.0, abs(want)), (
            "%s: %s retrieval_score %.7f, u.v = %.7f" % (what, it["id"], it["retrieval_score"],
                                                       want))


# --------------------------------------------------------------------------
# /v1/score
# --------------------------------------------------------------------------

def test_score_matches_reference(env):
    ref, rr, d = env["ref"], env["rr"], env["d"]
    rng = random.Random(4242 + (env["ranker"] == "wide_deep"))
    for i in range(N_REQUESTS):
        body, idx = random_score_request(rng, ref, i)
        explain = i % 2 == 0
        if explain:
            body["explain"] = True
        elif i % 4 == 1:
            body["explain"] = False
        doc = post(d, "/v1/score", body)
        what = "%s /v1/score request %d (user_id %r features %r context %r)" % (
            env["ranker"], i, body["user_id"], body.get("features"), body.get("context"))
        assert doc["user_id"] == body["user_id"], what
        assert doc["model"] == {"name": "default", "version": 1}, (what, doc["model"])
        assert doc["unknown"] == [], (what, doc["unknown"])
        assert isinstance(doc["request_id"], str) and doc["request_id"], what
        t = doc["timing_us"]
        assert isinstance(t["rank"], int) and isinstance(t["total"], int), (what, t)
        assert 0 <= t["rank"] <= t["total"], (what, t)
        assert len(doc["items"]) == N_SCORED, what
        check_scored(ref, rr, body, doc, idx, what, explain)
        check_retrieval(ref, body, doc, what=what)


def test_score_is_deterministic_and_order_independent(env):
    """The same items in another request order, or fewer of them, get the
    same scores (each candidate's score depends on itself only). Float32
    batching (sgemm blocking by row position) may move the last bit, so
    equal within 1e-6, not bit-identical."""
    ref, d = env["ref"], env["d"]
    rng = random.Random(7)
    body, idx = random_score_request(rng, ref, 0)
    a = post(d, "/v1/score", body)
    rev = dict(body, items=list(reversed(body["items"])))
    b = post(d, "/v1/score", rev)
    sub = dict(body, items=body["items"][:7])
    c = post(d, "/v1/score", sub)
    sa = {it["id"]: it["score"] for it in a["items"]}
    sb = {it["id"]: it["score"] for it in b["items"]}
    assert set(sa) == set(sb)
    worst = max(abs(sa[i] - sb[i]) for i in sa)
    assert worst <= TIE, "reversed order changes scores by up to %.3g" % worst
    assert len(c["items"]) == 7
    for it in c["items"]:
        assert abs(it["score"] - sa[it["id"]]) <= TIE, it


def test_explain_summary_parts_are_the_logit_split(env):
    """A single item scored with explain: the reference parts of the
    DeepFM/Wide&Deep decomposition (second_order is the FM pairwise term for
    DeepFM and the sum of crosses for Wide&Deep) and none missing."""
    ref, rr, d = env["ref"], env["rr"], env["d"]
    body = {"user_id": "u42", "features": {"age": 31, "gender": "F", "occupation": "writer"},
            "context": {"device": "mobile", "hour": 21}, "items": [ref.ids[3]],
            "explain": True}
    doc = post(d, "/v1/score", body)
    ex = doc["items"][0]["explain"]
    assert set(ex) == set(PARTS), ex
    check_scored(ref, rr, body, doc, [3], "single explained item", True)
    # the second-order term is really there (not folded into another part)
    want = rr.score("u42", body["features"], body["context"], [3])
    assert abs(want["second_order"][0]) > 10 * PART_TOL, "reference term too small to test"


# --------------------------------------------------------------------------
# /v1/recommend
# --------------------------------------------------------------------------

def test_recommend_orders_its_candidates_by_the_reference(env):
    ref, rr, d = env["ref"], env["rr"], env["d"]
    rng = random.Random(99 + (env["ranker"] == "wide_deep"))
    n_req = 12 if not SANITIZED else 4
    for i in range(n_req):
        body, _ = random_score_request(rng, ref, i)
        del body["items"]
        if i == 0:
            body.pop("history", None)  # popularity fallback: still ranked
        elif not [h for h in body.get("history") or [] if h in ref.index_of]:
            body["history"] = [ref.ids[rng.randrange(ref.n)] for _ in range(5)]
        body["k"] = body["candidates"] = 50
        explain = i % 2 == 1
        body["explain"] = explain
        doc = post(d, "/v1/recommend", body)
        what = "%s /v1/recommend %d %r" % (env["ranker"], i,
                                           {k: v for k, v in body.items() if k != "history"})
        hist = body.get("history") or []
        banned = ref.banned(hist, [], False)
        if ref.known_history(hist):
            u = ref.user_vector(body["user_id"], hist, body.get("features"), body.get("context"))
            cands = ref.topk(ref.scores(u), 50, banned)
            assert "fallback" not in doc, what
            check_retrieval(ref, body, doc, what=what)
        else:
            cands = ref.popular(50, banned)
            assert doc.get("fallback") == "popular", what
            for it in doc["items"]:
                assert it["retrieval_score"] == ref.popularity[ref.index_of[it["id"]]], it
        assert len(doc["items"]) == 50, what
        assert "rank" in doc["timing_us"], doc["timing_us"]
        check_scored(ref, rr, body, doc, cands, what, explain)


def test_recommend_returns_the_top_k_of_the_ranked_candidates(env):
    """k < candidates: the k best-ranked of the retrieved candidates."""
    ref, rr, d = env["ref"], env["rr"], env["d"]
    hist = [ref.ids[i] for i in (5, 17, 99, 123)]
    body = {"user_id": "topk", "history": hist, "k": 10, "candidates": 200,
            "features": {"age": 40, "gender": "M"}, "context": {"hour": 8}}
    doc = post(d, "/v1/recommend", body)
    u = ref.user_vector("topk", hist, body["features"], body["context"])
    cands = ref.topk(ref.scores(u), 200, ref.banned(hist, [], False))
    want = rr.score("topk", body["features"], body["context"], cands)
    score_of = {ref.ids[c]: float(s) for c, s in zip(cands, want["score"])}
    got = [it["id"] for it in doc["items"]]
    assert len(got) == 10
    assert_same_top(got, score_of, 10, tie=TIE, what="recommend top 10 of 200")
    for it in doc["items"]:
        assert abs(it["score"] - score_of[it["id"]]) <= SCORE_TOL, it
    # ranking really changed the retrieval order (else this test proves little)
    assert got != [ref.ids[c] for c in cands[:10]]


# --------------------------------------------------------------------------
# live items
# --------------------------------------------------------------------------

def put_item(d, item_id, emb, features=None, status=(200, 201)):
    body = {"embedding": [float(x) for x in emb]}
    if features is not None:
        body["features"] = features
    r = d.request("PUT", "/v1/items/" + item_id, body=body)
    assert r.status in status, (item_id, features, r.status, r.body)
    return r


def test_live_items_ranked_with_their_put_features(env, recd_factory):
    """A fresh daemon on the same bundle (live items stay out of the other
    tests): new items with features, one without, a replaced catalog item
    and a re-PUT with new features are each scored with exactly the
    features of their last PUT."""
    ref, rr = env["ref"], env["rr"]
    d = recd_factory(config={"models_dir": env["models"]}, name="live_" + env["ranker"])
    wait_models_ready(d)
    rng = np.random.default_rng(5)
    dim = ref.item_emb.shape[1]
    live = {
        "live-a": {"genres": ["Comedy", "Drama"], "year": 1995},
        "live-b": {"genres": ["Horror"], "year": 1939},
        "live-c": {"genres": ["Sci-Fi", "War", "Western"], "year": 2020},
        "live-d": {"year": 1970.5},
        "live-e": {"genres": ["Documentary"]},
        "live-none": None,
    }
    vecs = {}
    for iid, feats in live.items():
        vecs[iid] = rng.normal(0, 0.3, dim)
        put_item(d, iid, vecs[iid], feats, status=(201,))
    # replace a catalog item: features and vector from the PUT
    repl = ref.ids[42]
    live[repl] = {"genres": ["Musical", "Film-Noir"], "year": 1955}
    vecs[repl] = rng.normal(0, 0.3, dim)
    put_item(d, repl, vecs[repl], live[repl], status=(200,))
    # the test is meaningful: live-a's features differ from what it would
    # score with no features at all
    a0 = rr.score("x", None, None, ["live-a"], live={"live-a": None})["score"][0]
    a1 = rr.score("x", None, None, ["live-a"], live=live)["score"][0]
    assert abs(a0 - a1) > 10 * SCORE_TOL

    live_feats = dict(live)
    order = list(live) + [ref.ids[i] for i in (1, 2, 3)]
    # live ids (also the replaced catalog item) are scored by the reference
    # from their PUT features
    idx = [x if x in live else ref.index_of[x] for x in order]
    for j, body in enumerate([
            {"user_id": "lu1", "items": order, "explain": True},
            {"user_id": "lu2", "items": order, "history": [ref.ids[7], ref.ids[8]],
             "features": {"age": 60, "gender": "M", "occupation": "retired"},
             "context": {"device": "tv", "hour": 22}, "explain": True}]):
        doc = post(d, "/v1/score", body)
        assert doc["unknown"] == []
        check_scored(ref, rr, body, doc, idx, "live items %d" % j, True, live=live_feats)
        check_retrieval(ref, body, doc, live_vecs=vecs, what="live items %d" % j)

    # re-PUT live-a with other features: the new ones count
    live_feats["live-a"] = {"genres": ["Children", "Animation", "Musical"], "year": 2001}
    put_item(d, "live-a", vecs["live-a"], live_feats["live-a"], status=(200,))
    body = {"user_id": "lu3", "items": ["live-a", "live-b"], "explain": True}
    doc = post(d, "/v1/score", body)
    check_scored(ref, rr, body, doc, ["live-a", "live-b"], "re-PUT", True, live=live_feats)

    # /v1/recommend retrieves a live item (embedding along u) and ranks it
    # with its features
    hist = [ref.ids[i] for i in (10, 11, 12)]
    u = ref.user_vector("lr", hist)
    vecs["live-top"] = u / np.linalg.norm(u) * 50.0
    live_feats["live-top"] = {"genres": ["Romance"], "year": 1988}
    put_item(d, "live-top", vecs["live-top"], live_feats["live-top"], status=(201,))
    body = {"user_id": "lr", "history": hist, "k": 50, "candidates": 50, "explain": True}
    doc = post(d, "/v1/recommend", body)
    got = [it["id"] for it in doc["items"]]
    assert "live-top" in got, got
    # candidates: the reference retrieval over catalog + live vectors
    all_ids = list(ref.ids)
    mat = ref.item_emb.copy()
    extra = []
    for iid, v in vecs.items():
        if iid in ref.index_of:
            mat[ref.index_of[iid]] = v
        else:
            extra.append(iid)
    s = np.concatenate([mat @ u, np.array([vecs[e] @ u for e in extra])])
    all_ids += extra
    banned = {ref.index_of[h] for h in hist}
    top = [int(i) for i in np.argsort(-s, kind="stable") if int(i) not in banned][:50]
    cand = [all_ids[i] for i in top]
    assert sorted(got) == sorted(cand)
    cidx = [c if (c in live_feats) else ref.index_of[c] for c in cand]
    check_scored(ref, rr, body, doc, cidx, "recommend with live items", True, live=live_feats)
