"""The user-history store behind /v1/recommend (DESIGN §2, §5).

A small Flat bundle from bin/recd-train synth-bundle (300 items) is served;
recommendations are requested with "rank": false so the list is in
retrieval order and every retrieval_score can be checked against the numpy
reference of bundlelib.py (user tower over the history the store should
hold, exact inner products, history items banned). With no history at all
recd falls back to popularity.

Covered: an event changes the same user's next recommendation at once;
history items excluded unless include_seen; explain's history_source
(store, request, none); the request's "history" wins; only positives
(click, purchase, watch >= history.watch_min_s, rating >=
history.rating_min) enter; history.max_items keeps the most recent;
history.max_users bounds the users (LRU eviction); the store is rebuilt
from the log at restart, within history.replay_window_s.
"""

import time

import pytest

from bundlelib import Reference, assert_same_ranking, make_bundle
from conftest import scaled, wait_until
from test_events_api import post_events

N_ITEMS = 300
MAX_ITEMS = 5
WATCH_MIN = 30
RATING_MIN = 4
WINDOW_S = 3600


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    models = tmp_path_factory.mktemp("history_models")
    bdir = make_bundle(models, name="default", items=N_ITEMS, dim=16, embed=8, hidden="32",
                       rank_hidden="16", rank_embed=4, seed=11, index="Flat")
    return {"models": str(models), "ref": Reference(bdir)}


def config(bundle, **history):
    h = {"max_items": MAX_ITEMS, "watch_min_s": WATCH_MIN, "rating_min": RATING_MIN,
         "replay_window_s": WINDOW_S}
    h.update(history)
    return {"models_dir": bundle["models"], "models": {"serve": "", "default": "default"},
            "events": {"fsync": "never"}, "history": h}


def start(factory, bundle, name=None, **history):
    d = factory(config=config(bundle, **history), name=name)
    wait_until(lambda: d.get("/readyz").status == 200, scaled(30), what="/readyz 200")
    return d


@pytest.fixture(scope="module")
def d(module_factory, bundle):
    return start(module_factory, bundle, name="history")


def rec(d, user, **kw):
    body = {"user_id": user, "k": N_ITEMS, "candidates": N_ITEMS, "rank": False,
            "explain": True}
    body.update(kw)
    r = d.request("POST", "/v1/recommend", body=body)
    assert r.status == 200, r
    return r.json()


def ids(resp):
    return [x["id"] for x in resp["items"]]


def check_against_reference(ref, resp, user, history, include_seen=False, what=""):
    """The retrieval-ordered list equals the reference's for this history."""
    u = ref.user_vector(user, history)
    sc = ref.scores(u)
    banned = ref.banned(history, [], include_seen)
    want = ref.topk(sc, len(resp["items"]), banned)
    assert len(resp["items"]) == N_ITEMS - len(banned), what
    assert_same_ranking(ids(resp), [x["retrieval_score"] for x in resp["items"]], want, sc,
                        ref.ids, what=what)
    for x in resp["items"]:
        assert x["score"] == x["retrieval_score"]


def hstats(d):
    return d.stats()["history"]


def click(user, item, **kw):
    e = {"user_id": user, "item_id": item, "type": "click"}
    e.update(kw)
    return e


# --------------------------------------------------------------------------


def test_event_changes_next_recommendation(d, bundle):
    ref = bundle["ref"]
    user, x = "hist-a", ref.ids[17]
    before = rec(d, user)
    assert before["explain"]["history_source"] == "none"
    assert before["explain"]["known_history"] == 0
    assert before.get("fallback") == "popular"
    assert x in ids(before)
    lookups0 = hstats(d)["lookups"]
    post_events(d, [click(user, x)])
    after = rec(d, user)
    assert after["explain"]["history_source"] == "store"
    assert after["explain"]["known_history"] == 1
    assert "fallback" not in after
    assert x not in ids(after)
    assert ids(after) != ids(before)
    check_against_reference(ref, after, user, [x], what="store history [x]")
    # the same as giving that history in the request
    same = rec(d, user, history=[x])
    assert same["explain"]["history_source"] == "request"
    assert ids(same) == ids(after)
    assert [i["retrieval_score"] for i in same["items"]] == \
        [i["retrieval_score"] for i in after["items"]]
    st = hstats(d)
    assert st["lookups"] >= lookups0 + 1 and st["hits"] >= 1
    # another user is not affected
    other = rec(d, "hist-a-other")
    assert other["explain"]["history_source"] == "none"
    assert x in ids(other)


def test_include_seen_keeps_history_items(d, bundle):
    ref = bundle["ref"]
    user, x, y = "hist-b", ref.ids[3], ref.ids[250]
    post_events(d, [click(user, x), click(user, y, type="purchase")])
    r = rec(d, user, include_seen=True)
    assert r["explain"]["history_source"] == "store"
    assert r["explain"]["known_history"] == 2
    assert x in ids(r) and y in ids(r)
    check_against_reference(ref, r, user, [x, y], include_seen=True, what="include_seen")
    r = rec(d, user)
    assert x not in ids(r) and y not in ids(r)
    check_against_reference(ref, r, user, [x, y], what="seen excluded")
    # GET form too
    g = d.get("/v1/recommend?user_id=%s&k=%d&candidates=%d&rank=false"
              % (user, N_ITEMS, N_ITEMS))
    assert g.status == 200, g
    got = [i["id"] for i in g.json()["items"]]
    assert x not in got and y not in got and len(got) == N_ITEMS - 2


def test_request_history_wins_over_store(d, bundle):
    ref = bundle["ref"]
    user, x, y = "hist-c", ref.ids[40], ref.ids[41]
    post_events(d, [click(user, x)])
    r = rec(d, user, history=[y])
    assert r["explain"]["history_source"] == "request"
    assert r["explain"]["known_history"] == 1
    assert x in ids(r), "a store item was excluded although the request gave its own history"
    assert y not in ids(r)
    check_against_reference(ref, r, user, [y], what="request history [y]")
    # an explicit empty history also wins: no store, popularity fallback
    r = rec(d, user, history=[])
    assert r["explain"]["history_source"] == "request"
    assert r.get("fallback") == "popular" and x in ids(r)


def test_only_positive_events_enter_history(d, bundle):
    ref = bundle["ref"]
    user = "hist-d"
    it = ref.ids
    adds0 = hstats(d)["adds"]
    post_events(d, [
        click(user, it[60], type="impression"),
        click(user, it[61], type="watch", value=WATCH_MIN - 0.5),
        click(user, it[62], type="watch", value=0),
        click(user, it[63], type="rating", value=RATING_MIN - 0.5),
        click(user, it[64], type="rating", value=0),
    ])
    r = rec(d, user)
    assert r["explain"]["history_source"] == "none", r["explain"]
    assert all(i in ids(r) for i in it[60:65])
    assert hstats(d)["adds"] == adds0
    post_events(d, [
        click(user, it[65], type="watch", value=WATCH_MIN),
        click(user, it[66], type="rating", value=RATING_MIN),
        click(user, it[67], type="purchase"),
        click(user, it[68], type="click"),
    ])
    assert hstats(d)["adds"] == adds0 + 4
    r = rec(d, user)
    assert r["explain"]["history_source"] == "store"
    assert r["explain"]["known_history"] == 4
    check_against_reference(ref, r, user, it[65:69], what="positives only")


def test_max_items_keeps_most_recent(d, bundle):
    ref = bundle["ref"]
    user = "hist-e"
    items = [ref.ids[100 + i] for i in range(MAX_ITEMS + 3)]
    for x in items:  # one batch each: arrival order is the order of the calls
        post_events(d, [click(user, x)])
    r = rec(d, user)
    kept = items[-MAX_ITEMS:]
    assert r["explain"]["known_history"] == MAX_ITEMS
    for x in items[:3]:
        assert x in ids(r), "%s should have been dropped from the history" % x
    check_against_reference(ref, r, user, kept, what="max_items")
    # a repeat moves an item to the newest position instead of duplicating it
    post_events(d, [click(user, items[-MAX_ITEMS])])
    r = rec(d, user)
    assert r["explain"]["known_history"] == MAX_ITEMS
    check_against_reference(ref, r, user, kept, what="repeat")


def test_unknown_items_in_store_are_ignored(d, bundle):
    ref = bundle["ref"]
    user = "hist-f"
    post_events(d, [click(user, "no-such-item"), click(user, ref.ids[7])])
    r = rec(d, user)
    assert r["explain"]["history_source"] == "store"
    assert r["explain"]["known_history"] == 1
    assert r.get("unknown_items") == 1
    check_against_reference(ref, r, user, [ref.ids[7]], what="unknown store item")


def test_eviction_bound(recd_factory, bundle):
    n = 64
    d = start(recd_factory, bundle, max_users=n)
    ref = bundle["ref"]
    users = ["ev-u%03d" % i for i in range(3 * n)]
    for lo in range(0, len(users), n):
        post_events(d, [click(u, ref.ids[i % N_ITEMS]) for i, u in enumerate(users[lo:lo + n])])
    st = hstats(d)
    assert st["max_users"] == n
    assert st["users"] <= n
    assert st["evictions"] > 0
    # every user was added once: whoever is gone was evicted
    assert st["users"] + st["evictions"] == len(users)
    assert st["adds"] == len(users)
    # the most recent user of all is always kept
    last = rec(d, users[-1])
    assert last["explain"]["history_source"] == "store"
    gone = [u for u in users if rec(d, u)["explain"]["history_source"] == "none"]
    assert len(gone) >= len(users) - n


def test_history_rebuilt_at_restart_within_window(recd_factory, bundle):
    ref = bundle["ref"]
    d = start(recd_factory, bundle)
    now = int(time.time())
    old, fresh, recent = ref.ids[200], ref.ids[201], ref.ids[202]
    post_events(d, [
        click("rs-old", old, ts=now - WINDOW_S - 600),   # outside the replay window
        click("rs-new", fresh),                          # now
        click("rs-recent", recent, ts=now - WINDOW_S // 2),
        click("rs-new", ref.ids[203], type="impression"),  # not a positive
    ])
    assert d.stop() == 0
    d.start()
    wait_until(lambda: d.get("/readyz").status == 200, scaled(30), what="/readyz 200")
    rp = d.stats()["events"]["replay"]
    assert rp["records"] == 4
    assert rp["too_old"] == 1
    assert rp["replayed"] == 3
    assert rp["positives"] == 2
    st = hstats(d)
    assert st["users"] == 2 and st["items"] == 2
    r = rec(d, "rs-new")
    assert r["explain"]["history_source"] == "store"
    check_against_reference(ref, r, "rs-new", [fresh], what="rebuilt rs-new")
    r = rec(d, "rs-recent")
    assert r["explain"]["history_source"] == "store"
    check_against_reference(ref, r, "rs-recent", [recent], what="rebuilt rs-recent")
    r = rec(d, "rs-old")
    assert r["explain"]["history_source"] == "none"
    assert old in ids(r)


def test_replay_without_window_keeps_old_events(recd_factory, bundle):
    """replay_window_s = 0: no age limit, the old event comes back too."""
    ref = bundle["ref"]
    d = start(recd_factory, bundle, replay_window_s=0)
    post_events(d, [click("rw-old", ref.ids[210], ts=1000000)])
    assert d.stop() == 0
    d.start()
    wait_until(lambda: d.get("/readyz").status == 200, scaled(30), what="/readyz 200")
    assert d.stats()["events"]["replay"]["too_old"] == 0
    r = rec(d, "rw-old")
    assert r["explain"]["history_source"] == "store"
    check_against_reference(ref, r, "rw-old", [ref.ids[210]], what="no window")
