"""The content model: PUT /v1/items without an embedding (cold-start items).

Bundles come from bin/recd-train with a content model added by
bundlelib.add_content (two extra item fields, title_words and tags, that
only the content model uses; random content weights). The vector recd
derives is checked against ContentRef, the numpy reference in bundlelib.py,
through the retrieval scores it produces: /v1/similar over 1,000 catalog
items (every score within 1e-4 relative, same order, and the vector
recovered from those scores by least squares), and /v1/score's
retrieval_score u.v and ranker score for the live item.

One daemon serves three models: "default" (content model over genres,
year, title_words, tags), "plain" (no content model) and "huge" (a
content model over title_words only whose weights are finite but overflow
float32 in the forward pass). A second daemon is given broken content
sections next to a good bundle and must reject each one with a message
naming the key or tensor.
"""

import json
import os

import numpy as np
import pytest

from bundlelib import Reference, assert_same_ranking, make_bundle
from conftest import scaled, wait_until

N_ITEMS = 2000
DIM = 16
K = 1000
CONTENT_FIELDS = ["genres", "year", "title_words", "tags"]


def small_bundle(models, name, seed, content, items=N_ITEMS):
    return make_bundle(models, name=name, items=items, dim=DIM, embed=8, hidden="32",
                       rank_hidden="32,16", rank_embed=8, seed=seed, index="Flat",
                       content=content)


@pytest.fixture(scope="module")
def env(module_factory, tmp_path_factory):
    models = tmp_path_factory.mktemp("content_models")
    bdir = small_bundle(models, "default", 3, True)
    small_bundle(models, "plain", 4, None, items=500)
    hdir = small_bundle(models, "huge", 5, {"fields": ["title_words"], "scale": 1e20},
                        items=500)
    d = module_factory(config={"models_dir": str(models),
                               "models": {"serve": "", "default": "default"}},
                       name="content")
    wait_until(lambda: d.get("/readyz").status == 200, scaled(60), what="/readyz 200")
    ref = Reference(bdir)
    assert ref.content() is not None and ref.content().fields == CONTENT_FIELDS
    return {"d": d, "ref": ref, "cref": ref.content(), "huge": Reference(hdir)}


def put(d, iid, body, status=201):
    r = d.request("PUT", "/v1/items/" + iid, body=body)
    assert r.status == status, (iid, body, r)
    return r.json()


def delete(d, iid, model=None):
    q = "?model=" + model if model else ""
    assert d.request("DELETE", "/v1/items/%s%s" % (iid, q)).status == 200


def check_vector(d, ref, iid, want, what):
    """The live item's vector against want[D]: the scores of /v1/similar
    (inner products with the top K catalog vectors) within 1e-4 relative
    of the reference, in the reference order, and the vector solved back
    from those scores close to want."""
    r = d.get("/v1/similar/%s?k=%d" % (iid, K))
    assert r.status == 200, r
    items = r.json()["items"]
    ids = [x["id"] for x in items]
    scores = [x["score"] for x in items]
    sims = ref.item_emb @ want
    assert_same_ranking(ids, scores, ref.topk(sims, K), sims, ref.ids, tol=1e-4, what=what)
    rows = ref.item_emb[[ref.index_of[i] for i in ids]]
    got, *_ = np.linalg.lstsq(rows, np.array(scores), rcond=None)
    assert np.linalg.norm(got - want) <= 1e-4 * max(1.0, np.linalg.norm(want)), (
        what, got, want)
    return got


# --------------------------------------------------------------------------
# the vector
# --------------------------------------------------------------------------

def test_put_without_embedding_uses_content(env):
    d, ref, cref = env["d"], env["ref"], env["cref"]
    feats = {"genres": ["Comedy", "Drama"], "year": 1994, "title_words": ["w3", "w17", "w250"],
             "tags": ["t1"]}
    doc = put(d, "cold-1", {"features": feats})
    try:
        assert doc["embedding"] == "content" and doc["created"] is True, doc
        assert doc["id"] == "cold-1" and doc["model"]["name"] == "default", doc
        v = cref.embed(feats)
        assert np.linalg.norm(v) > 0.1  # a real vector, not a degenerate one
        check_vector(d, ref, "cold-1", v, "content vector")
        # replacing it with a given embedding: 200, "given", that vector
        e = [float(x) for x in ref.item_emb[7] * 2]
        doc = put(d, "cold-1", {"embedding": e, "features": feats}, status=200)
        assert doc["embedding"] == "given" and doc["created"] is False, doc
        check_vector(d, ref, "cold-1", np.array(e, dtype=np.float32).astype(np.float64),
                     "given vector")
        # and back to the content model ("embedding": null counts as absent)
        doc = put(d, "cold-1", {"embedding": None, "features": feats}, status=200)
        assert doc["embedding"] == "content", doc
        check_vector(d, ref, "cold-1", v, "content vector again")
    finally:
        delete(d, "cold-1")


def test_content_item_is_retrieved_and_ranked(env):
    """/v1/score: retrieval_score = u.v with the content vector, and the
    ranker scores the live item with the features it was PUT with."""
    d, ref, cref = env["d"], env["ref"], env["cref"]
    rr = ref.ranker()
    hist = [ref.ids[i] for i in (5, 6, 7)]
    user = {"age": 31, "gender": "F"}
    ctx = {"device": "tv", "hour": 21}
    u = ref.user_vector("u9", hist, user, ctx)
    # of the content features of 300 catalog rows, those whose vector this
    # user likes best (so that retrieval below has something to find)
    feats = max((cref.catalog_features(i) for i in range(300)),
                key=lambda f: float(u @ cref.embed(f)))
    put(d, "cold-2", {"features": feats})
    try:
        body = {"user_id": "u9", "items": ["cold-2", ref.ids[40]], "history": hist,
                "features": user, "context": ctx}
        r = d.request("POST", "/v1/score", body=body)
        assert r.status == 200, r
        got = {x["id"]: x for x in r.json()["items"]}
        v = cref.embed(feats)
        for iid, vec in (("cold-2", v), (ref.ids[40], ref.item_emb[40])):
            want = float(u @ vec)
            assert abs(got[iid]["retrieval_score"] - want) <= 1e-4 * max(1.0, abs(want)), (
                iid, got[iid], want)
        s = rr.score("u9", user, ctx, items=["cold-2", 40], live={"cold-2": feats})["score"]
        assert abs(got["cold-2"]["score"] - s[0]) <= 1e-5, (got, s)
        assert abs(got[ref.ids[40]]["score"] - s[1]) <= 1e-5, (got, s)
        # retrieval (rank false, candidates = k = 1000 of 2,001 items) returns
        # it exactly when u.v is among the top 1,000 catalog scores
        r = d.request("POST", "/v1/recommend",
                      body={"user_id": "u9", "history": hist, "features": user,
                            "context": ctx, "k": 1000, "candidates": 1000, "rank": False})
        assert r.status == 200, r
        items = r.json()["items"]
        uv = float(u @ v)
        above = int(np.sum(np.delete(ref.item_emb @ u, [5, 6, 7]) > uv))
        assert above < 990, above  # the choice above guarantees this for this bundle
        found = [x for x in items if x["id"] == "cold-2"]
        assert found, "the live content item was not retrieved (%d catalog items above)" % above
        assert abs(found[0]["retrieval_score"] - uv) <= 1e-4 * max(1.0, abs(uv)), (found, uv)
        # and not when its vector is replaced by one pointing away from u
        put(d, "cold-2", {"embedding": [float(x) for x in -u / np.linalg.norm(u)]}, status=200)
        r = d.request("POST", "/v1/recommend",
                      body={"user_id": "u9", "history": hist, "features": user,
                            "context": ctx, "k": 1000, "candidates": 1000, "rank": False})
        assert "cold-2" not in [x["id"] for x in r.json()["items"]]
    finally:
        delete(d, "cold-2")


def test_multi_valued_and_missing_fields(env):
    d, ref, cref = env["d"], env["ref"], env["cref"]
    cases = [
        # duplicates count in the mean
        {"genres": ["Comedy", "Comedy", "Drama"], "title_words": ["w1", "w2", "w3", "w4"]},
        # only one content field: the others hash as missing ("")
        {"title_words": ["w42"]},
        {"year": 1950},
        # null, [] and "" are the missing value, next to a given one
        {"genres": [], "tags": None, "title_words": [""], "year": 2011},
        # a single value for a multi-valued field, unseen values
        {"genres": "Western", "tags": "never-seen-tag", "title_words": ["zzz"]},
        # an integer for a categorical field is its decimal text
        {"title_words": [1994, "w5"]},
    ]
    for n, feats in enumerate(cases):
        iid = "mv-%d" % n
        doc = put(d, iid, {"features": feats})
        try:
            assert doc["embedding"] == "content", doc
            check_vector(d, ref, iid, cref.embed(feats), "case %d %r" % (n, feats))
        finally:
            delete(d, iid)
    # missing means "", exactly: absent and null give the same vector
    a = cref.embed({"title_words": ["w9"]})
    b = cref.embed({"title_words": ["w9"], "genres": None, "tags": [], "year": None})
    assert np.array_equal(a, b)


def test_bucketized_year(env):
    """year is bucketized: 1991 and 1999 share a bucket (boundaries ...,
    1990, 2000, ...), 1989.5 and 1990 do not; a string is a 400."""
    d, ref, cref = env["d"], env["ref"], env["cref"]
    got = {}
    for y in (1991, 1999, 1989.5, 1990):
        iid = "y-%s" % str(y).replace(".", "_")
        put(d, iid, {"features": {"year": y, "genres": ["Drama"]}})
        try:
            got[y] = check_vector(d, ref, iid, cref.embed({"year": y, "genres": ["Drama"]}),
                                  "year %s" % y)
        finally:
            delete(d, iid)
    assert np.allclose(got[1991], got[1999], atol=1e-5)
    assert not np.allclose(got[1989.5], got[1990], atol=1e-3)
    r = d.request("PUT", "/v1/items/y-bad", body={"features": {"year": "1994"}})
    assert r.status == 400 and r.error()["field"] == "features.year", r
    assert d.get("/v1/similar/y-bad").status == 404


def test_catalog_item_features_reproduce(env):
    """A catalog item's own content features (from items.tsv) PUT under a
    new id give the reference vector of those features."""
    d, ref, cref = env["d"], env["ref"], env["cref"]
    for i in (0, 17, 1999):
        feats = cref.catalog_features(i)
        iid = "copy-of-%s" % ref.ids[i]
        put(d, iid, {"features": feats})
        try:
            check_vector(d, ref, iid, cref.embed(feats), "catalog row %d %r" % (i, feats))
        finally:
            delete(d, iid)


# --------------------------------------------------------------------------
# refusals
# --------------------------------------------------------------------------

BAD_FEATURES = [
    # (features, status, code, field)
    ({"bogus": 1}, 400, "bad_request", "features.bogus"),
    ({"genres": ["Comedy"], "colour": "red"}, 400, "bad_request", "features.colour"),
    ({"age": 30}, 400, "bad_request", "features.age"),          # a user field
    ({"item_id": "x"}, 400, "bad_request", "features.item_id"),  # the id is the path's
    ({"year": "old"}, 400, "bad_request", "features.year"),
    ({"year": True}, 400, "bad_request", "features.year"),
    ({"title_words": [["w1"]]}, 400, "bad_request", "features.title_words"),
    ({"tags": {"a": 1}}, 400, "bad_request", "features.tags"),
    ({"genres": 1.5}, 400, "bad_request", "features.genres"),
    # neither an embedding nor a content value
    ({}, 422, "content_features_required", "features"),
    ({"genres": [], "tags": None, "title_words": [""], "year": None}, 422,
     "content_features_required", "features"),
    ({"genres": ""}, 422, "content_features_required", "features"),
]


@pytest.mark.parametrize("feats,status,code,field", BAD_FEATURES,
                         ids=["bad%d-%s" % (i, e[3]) for i, e in enumerate(BAD_FEATURES)])
def test_bad_features(env, feats, status, code, field):
    d = env["d"]
    r = d.request("PUT", "/v1/items/never", body={"features": feats})
    assert r.status == status, (feats, r)
    err = r.error()
    assert err["code"] == code and err["field"] == field, (feats, err)
    if code == "content_features_required":
        for name in CONTENT_FIELDS:
            assert name in err["message"], err
        assert "embedding" in err["message"], err
    assert d.get("/v1/similar/never").status == 404


def test_no_body_needs_content_features(env):
    d = env["d"]
    r = d.request("PUT", "/v1/items/never", body={})
    assert r.status == 422 and r.error()["code"] == "content_features_required", r
    assert d.get("/v1/similar/never").status == 404


def test_model_without_content_model(env):
    d = env["d"]
    for body in ({"features": {"genres": ["Comedy"]}}, {}, {"embedding": None}):
        r = d.request("PUT", "/v1/items/plain-1", body=dict(body, model="plain"))
        assert r.status == 422, r
        err = r.error()
        assert err["code"] == "embedding_required" and err["field"] == "embedding", err
        assert "no content model" in err["message"] and "plain" in err["message"], err
        assert str(DIM) in err["message"], err
    assert d.get("/v1/similar/plain-1?model=plain").status == 404
    # a given embedding still works there
    doc = put(d, "plain-1", {"embedding": [0.1] * DIM, "model": "plain"})
    assert doc["embedding"] == "given", doc
    delete(d, "plain-1", "plain")


def test_overflowing_content_model_is_422(env):
    """Every stored weight is finite (the loader checks), but these are
    ~1e20, so the first layer overflows float32: a 422 naming the
    features, nothing stored, a warning in the log; a given embedding is
    still accepted."""
    d = env["d"]
    r = d.request("PUT", "/v1/items/big-1",
                  body={"model": "huge", "features": {"title_words": ["w1"], "genres": "War"}})
    assert r.status == 422, r
    err = r.error()
    assert err["code"] == "content_embedding_invalid" and err["field"] == "features", err
    assert "non-finite" in err["message"] and "embedding" in err["message"], err
    assert d.get("/v1/similar/big-1?model=huge").status == 404
    assert d.wait_log(r"model huge version 1: the content model overflowed")
    # this model's content model reads title_words only: tags alone is not enough
    r = d.request("PUT", "/v1/items/big-1", body={"model": "huge", "features": {"tags": ["t1"]}})
    assert r.status == 422 and r.error()["code"] == "content_features_required", r
    msg = r.error()["message"]
    assert msg.endswith("title_words"), msg
    doc = put(d, "big-1", {"model": "huge", "embedding": [0.5] * DIM})
    assert doc["embedding"] == "given"
    delete(d, "big-1", "huge")


def test_schema_fields_only_the_content_model_uses(env):
    """title_words and tags are in features.fields and items.tsv but in
    neither the candidate nor the ranker section: catalog ranking is
    unchanged (scores equal the reference, which ignores them)."""
    d, ref = env["d"], env["ref"]
    rr = ref.ranker()
    assert "title_words" not in rr.fields and "tags" not in rr.fields
    items = list(range(0, N_ITEMS, 37))
    body = {"user_id": "s1", "items": [ref.ids[i] for i in items], "features": {"age": 44},
            "context": {"hour": 3}}
    r = d.request("POST", "/v1/score", body=body)
    assert r.status == 200, r
    want = rr.score("s1", {"age": 44}, {"hour": 3}, items=items)["score"]
    got = {x["id"]: x["score"] for x in r.json()["items"]}
    for j, i in enumerate(items):
        assert abs(got[ref.ids[i]] - want[j]) <= 1e-5, (ref.ids[i], got[ref.ids[i]], want[j])


# --------------------------------------------------------------------------
# broken content sections
# --------------------------------------------------------------------------

def _set(path, value):
    def edit(c):
        node = c
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
        return c
    return edit


def _drop(path):
    def edit(c):
        node = c
        for k in path[:-1]:
            node = node[k]
        del node[path[-1]]
        return c
    return edit


BROKEN = [
    # (model name, edit of the content section, words the error must contain)
    ("type", _set(["type"], "cnn"), ["content.type", "cnn"]),
    ("unknown-field", _set(["fields", 1, "name"], "colour"),
     ["content.fields[1].name", "colour", "no field"]),
    ("user-field", _set(["fields", 0, "name"], "age"),
     ["content.fields[0].name", "age", "user field"]),
    ("context-field", _set(["fields", 0, "name"], "device"),
     ["content.fields[0].name", "device", "context field"]),
    ("item-id", _set(["fields", 0, "name"], "item_id"),
     ["content.fields[0].name", "item_id", "item id"]),
    ("duplicate", _set(["fields", 1], {"name": "genres", "tensor": "content.emb.genres"}),
     ["content.fields[1].name", "duplicate", "genres"]),
    ("no-tensor", _set(["fields", 2, "tensor"], "content.emb.nope"),
     ["content.fields[2].tensor", "content.emb.nope", "not in the tensor table"]),
    ("table-shape", _set(["fields", 0, "tensor"], "content.emb.year"),
     ["content.emb.year", "content.fields[0].tensor", "shape [32, 8], expected [64, 8]"]),
    ("embed-dim", _set(["embed_dim"], 4), ["content.emb.genres", "expected [64, 4]"]),
    ("weight-shape", _set(["layers", 0, "w"], "content.1.w"),
     ["content.1.w", "content.layers[0].w", "shape [48, 16], expected [32, 48]"]),
    ("bias-shape", _set(["layers", 1, "b"], "content.0.b"),
     ["content.0.b", "content.layers[1].b", "expected [16]"]),
    ("first-in", _set(["layers", 0, "in"], 31),
     ["content.layers[0].in = 31", "expected 32", "embed_dim 8 x 4 fields"]),
    ("chain", _set(["layers", 1, "in"], 47), ["content.layers[1].in = 47", "expected 48"]),
    ("last-out", lambda c: dict(c, layers=c["layers"][:1]),
     ["content.layers", "last layer gives 48", "candidate.dim 16"]),
    ("activation", _set(["layers", 0, "activation"], "tanh"),
     ["content.layers[0].activation", "tanh"]),
    ("no-activation", _drop(["layers", 1, "activation"]),
     ["content.layers[1].activation", "missing"]),
    ("output", _set(["output"], "cand.hist_emb"), ["content.output", "cand.hist_emb",
                                                   "cand.item_emb"]),
    ("no-output", _drop(["output"]), ["content.output", "missing"]),
    ("no-fields", _set(["fields"], []), ["content.fields", "non-empty array"]),
    ("no-layers", _drop(["layers"]), ["content.layers", "missing"]),
    ("not-object", lambda c: [c], ["content", "expected an object"]),
]


def test_broken_content_sections_rejected(recd_factory, tmp_path):
    models = tmp_path / "m"
    good = small_bundle(models, "good", 1, True, items=300)
    # every broken model shares the good bundle's files but its manifest
    base = json.load(open(os.path.join(good, "manifest.json")))
    for name, edit, _ in BROKEN:
        vdir = os.path.join(str(models), name, "1")
        os.makedirs(vdir)
        for f in base["files"]:
            os.link(os.path.join(good, f), os.path.join(vdir, f))
        m = json.loads(json.dumps(base))
        m["name"] = name
        m["content"] = edit(m["content"])
        with open(os.path.join(vdir, "manifest.json"), "w") as fp:
            json.dump(m, fp)
    d = recd_factory(config={"models_dir": str(models),
                             "models": {"serve": "", "default": "good"}})

    def all_tried():
        st = d.stats()["models"]
        return all(n in st and (st[n].get("last_error") or st[n]["version"])
                   for n in ["good"] + [b[0] for b in BROKEN]) and st
    st = wait_until(all_tried, scaled(60), what="every model tried")
    assert st["good"]["version"] == 1 and "last_error" not in st["good"], st["good"]
    for name, _, words in BROKEN:
        m = st[name]
        assert m["version"] == 0, (name, m)
        msg = m["last_error"]["message"]
        for w in words:
            assert w in msg, "%s: %r lacks %r" % (name, msg, w)
        assert d.wait_log(r"model %s version 1 rejected" % name)
    # the good one serves, content model included
    r = d.request("PUT", "/v1/items/new", body={"features": {"tags": ["t2"]}})
    assert r.status == 201 and r.json()["embedding"] == "content", r
