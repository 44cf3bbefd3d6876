"""Admin API of the model lifecycle: list models, load/pin a version, unpin,
rollback, rescan, trigger training; strict bodies, errors, token, logging.

Versions are small bundles written by bin/recd-train synth-bundle (through
bundlelib.make_bundle, an atomic publish into <models_dir>/default/<v>).
Which version serves is read three ways: the command's answer, GET
/admin/models, and the "model" a /v1/recommend response names.
"""

import json
import os
import re

import pytest

from bundlelib import make_bundle
from conftest import deep_merge, free_port, run_recd, scaled, wait_until

TOKEN = "adm1n-models-t0ken"


def bundle(models, version, name="default"):
    return make_bundle(models, name=name, version=version, items=300, dim=16, embed=8,
                       seed=version, hidden=32, rank_hidden="16", rank_embed=4)


def flip_byte(path, offset=64):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x5a]))


def admin(d, method, path, body=None, **kw):
    return d.request(method, path, body=body, admin=True, timeout=scaled(30), **kw)


def status(d):
    r = admin(d, "GET", "/admin/models")
    assert r.status == 200, r
    return r.json()


def model(d, name="default"):
    return status(d)["models"][name]


def serving(d, name="default"):
    s = model(d, name).get("serving")
    return s["version"] if s else 0


def served_by(d):
    """The version /v1/recommend answers with."""
    r = d.request("POST", "/v1/recommend", body={"user_id": "u1", "history": ["i1", "i2"]})
    assert r.status == 200, r
    return r.json()["model"]["version"]


def wait_serving(d, version, name="default"):
    wait_until(lambda: serving(d, name) == version, scaled(15),
               what="model %s serving version %d" % (name, version))


def start(factory, models, extra=None, **kw):
    cfg = deep_merge({"models_dir": str(models), "models": {"serve": "default"}}, extra)
    d = factory(config=cfg, **kw)
    wait_until(lambda: d.get("/readyz").status == 200, scaled(30), what="/readyz 200")
    return d


def expect_error(r, status, code, field=None):
    assert r.status == status, r
    e = r.error()
    assert e["code"] == code, e
    if field is not None:
        assert e["field"] == field, e
    return e


@pytest.fixture
def two_versions(tmp_path):
    models = tmp_path / "models"
    bundle(models, 1)
    bundle(models, 2)
    return models


# --------------------------------------------------------------------------
# listing
# --------------------------------------------------------------------------

def test_list_models(recd_factory, two_versions):
    d = start(recd_factory, two_versions)
    st = status(d)
    assert isinstance(st["watching"], bool) and st["queue"] >= 0, st
    m = st["models"]["default"]
    assert m["serving"]["version"] == 2, m
    assert m["pinned"] is None, m
    states = {v["version"]: v["state"] for v in m["on_disk"]}
    # an older version never loaded is "superseded" (a newer one came first)
    assert states[2] == "serving" and states[1] in ("ready", "superseded"), m["on_disk"]
    assert [v["version"] for v in m["on_disk"]] == [2, 1], "newest first"
    assert m["loads_failed"] == 0 and m["last_error"] is None, m
    assert served_by(d) == 2
    # admin only, and no query parameters
    assert d.get("/admin/models").status == 404
    expect_error(admin(d, "GET", "/admin/models?verbose=1"), 400, "bad_request", "verbose")


# --------------------------------------------------------------------------
# load / pin / unpin
# --------------------------------------------------------------------------

def test_load_older_version_pins_it(recd_factory, two_versions):
    d = start(recd_factory, two_versions)
    r = admin(d, "POST", "/admin/models/default/load", {"version": 1})
    assert r.status == 200, r
    a = r.json()
    assert a["model"] == "default" and a["action"] == "load", a
    assert a["version"] == 1 and a["previous"] == 2 and a["pinned"] is True, a
    assert a["message"], a
    # the answer came after the swap: requests already see version 1
    assert served_by(d) == 1
    m = model(d)
    assert m["serving"]["version"] == 1 and m["pinned"] == 1, m
    # a newer version arriving does not replace a pinned one
    bundle(two_versions, 3)
    r = admin(d, "POST", "/admin/models/default/rescan")
    assert r.status == 200, r
    assert r.json()["version"] == 1, r.json()
    m = model(d)
    assert m["serving"]["version"] == 1 and m["pinned"] == 1, m
    assert 3 in [v["version"] for v in m["on_disk"]], m
    assert served_by(d) == 1
    # unpin: the newest valid version serves again
    r = admin(d, "POST", "/admin/models/default/unpin")
    assert r.status == 200, r
    a = r.json()
    assert a["version"] == 3 and a["previous"] == 1 and a["pinned"] is False, a
    assert model(d)["pinned"] is None
    assert served_by(d) == 3


def test_load_without_pin_is_replaced_by_newer(recd_factory, two_versions):
    d = start(recd_factory, two_versions)
    r = admin(d, "POST", "/admin/models/default/load", {"version": 1, "pin": False})
    assert r.status == 200, r
    assert r.json()["pinned"] is False and r.json()["version"] == 1, r.json()
    assert model(d)["pinned"] is None
    assert served_by(d) == 1
    bundle(two_versions, 3)
    admin(d, "POST", "/admin/models/default/rescan")
    wait_serving(d, 3)
    assert served_by(d) == 3


def test_pin_endpoint(recd_factory, two_versions):
    d = start(recd_factory, two_versions)
    r = admin(d, "POST", "/admin/models/default/pin", {"version": 1})
    assert r.status == 200, r
    assert r.json()["action"] == "pin" and r.json()["pinned"] is True, r.json()
    assert model(d)["pinned"] == 1
    # /pin always pins: "pin" is not one of its fields
    expect_error(admin(d, "POST", "/admin/models/default/pin", {"version": 2, "pin": False}),
                 400, "bad_request", "pin")
    assert serving(d) == 1


def test_load_serving_version_just_pins(recd_factory, two_versions):
    d = start(recd_factory, two_versions)
    r = admin(d, "POST", "/admin/models/default/load", {"version": 2})
    assert r.status == 200, r
    assert r.json()["version"] == 2 and r.json()["previous"] == 2, r.json()
    assert model(d)["pinned"] == 2


def test_pin_survives_restart(recd_factory, two_versions):
    d = start(recd_factory, two_versions)
    assert admin(d, "POST", "/admin/models/default/load", {"version": 1}).status == 200
    d.stop()
    d.start()
    wait_until(lambda: d.get("/readyz").status == 200, scaled(30), what="/readyz 200")
    m = model(d)
    assert m["serving"]["version"] == 1 and m["pinned"] == 1, m


# --------------------------------------------------------------------------
# rollback
# --------------------------------------------------------------------------

def test_rollback_to_previous_and_pinned(recd_factory, two_versions):
    d = start(recd_factory, two_versions)
    r = admin(d, "POST", "/admin/models/default/rollback")
    assert r.status == 200, r
    a = r.json()
    assert a["action"] == "rollback" and a["version"] == 1 and a["previous"] == 2, a
    assert a["pinned"] is True, a
    assert served_by(d) == 1
    m = model(d)
    assert m["pinned"] == 1, m
    # the version rolled back from does not come straight back
    admin(d, "POST", "/admin/models/default/rescan")
    assert serving(d) == 1


def test_rollback_without_previous_404(recd_factory, tmp_path):
    models = tmp_path / "models"
    bundle(models, 1)
    d = start(recd_factory, models)
    e = expect_error(admin(d, "POST", "/admin/models/default/rollback"), 404,
                     "no_previous_version")
    assert "1" in e["message"], e
    assert serving(d) == 1 and served_by(d) == 1
    assert model(d)["pinned"] is None


def test_rollback_skips_a_broken_previous(recd_factory, tmp_path):
    models = tmp_path / "models"
    bundle(models, 1)
    bundle(models, 2)
    bundle(models, 3)
    d = start(recd_factory, models)
    assert serving(d) == 3
    flip_byte(os.path.join(str(models), "default", "2", "tensors.bin"), 4096)
    r = admin(d, "POST", "/admin/models/default/rollback")
    assert r.status == 200, r
    assert r.json()["version"] == 1, r.json()
    assert served_by(d) == 1


# --------------------------------------------------------------------------
# failures leave serving alone
# --------------------------------------------------------------------------

def test_load_missing_version_404(recd_factory, two_versions):
    d = start(recd_factory, two_versions)
    e = expect_error(admin(d, "POST", "/admin/models/default/load", {"version": 9}), 404,
                     "unknown_version", "version")
    assert "9" in e["message"], e
    assert serving(d) == 2 and served_by(d) == 2
    assert model(d)["pinned"] is None


def test_load_bad_version_422_serving_unchanged(recd_factory, two_versions):
    d = start(recd_factory, two_versions)
    flip_byte(os.path.join(str(two_versions), "default", "1", "tensors.bin"), 4096)
    e = expect_error(admin(d, "POST", "/admin/models/default/load", {"version": 1}), 422,
                     "load_failed")
    assert "tensors.bin" in e["message"], e
    assert serving(d) == 2 and served_by(d) == 2
    m = model(d)
    assert m["pinned"] is None, m
    assert m["loads_failed"] >= 1 and m["last_error"]["version"] == 1, m
    states = {v["version"]: v["state"] for v in m["on_disk"]}
    assert states[1] == "failed", m["on_disk"]
    d.wait_log(r"admin: load default version 1: failed .*422 load_failed")


def test_unknown_model_404(recd_factory, two_versions):
    d = start(recd_factory, two_versions)
    for verb, body in (("load", {"version": 1}), ("pin", {"version": 1}), ("unpin", None),
                       ("rollback", None)):
        expect_error(admin(d, "POST", "/admin/models/nosuch/%s" % verb, body), 404,
                     "unknown_model", "model")
    # not even a possible name (percent-encoded slash, leading dot)
    expect_error(admin(d, "POST", "/admin/models/..%2Fetc/unpin"), 404, "unknown_model")
    expect_error(admin(d, "POST", "/admin/models/.hidden/unpin"), 404, "unknown_model")
    assert serving(d) == 2


# --------------------------------------------------------------------------
# rescan
# --------------------------------------------------------------------------

def test_rescan_picks_up_new_version(recd_factory, tmp_path):
    models = tmp_path / "models"
    bundle(models, 1)
    # no inotify: only the rescan can notice the new version
    d = start(recd_factory, models, {"models": {"watch": False}})
    assert status(d)["watching"] is False
    bundle(models, 2)
    assert serving(d) == 1
    r = admin(d, "POST", "/admin/models/default/rescan")
    assert r.status == 200, r
    a = r.json()
    assert a["action"] == "rescan" and a["version"] == 2 and a["previous"] == 1, a
    assert "pinned" not in a, a
    assert served_by(d) == 2
    bundle(models, 3)
    r = admin(d, "POST", "/admin/rescan")
    assert r.status == 200, r
    assert r.json()["model"] is None and r.json()["message"], r.json()
    assert served_by(d) == 3


# --------------------------------------------------------------------------
# strict bodies and methods
# --------------------------------------------------------------------------

BAD_LOAD_BODIES = [
    ({}, "version"),
    ({"version": "1"}, "version"),
    ({"version": 0}, "version"),
    ({"version": -3}, "version"),
    ({"version": 1.5}, "version"),
    ({"version": None}, "version"),
    ({"version": 1, "pin": "yes"}, "pin"),
    ({"version": 1, "pin": 1}, "pin"),
    ({"version": 1, "force": True}, "force"),
    ([1], "body"),
    ("1", "body"),  # not an object or array: the JSON reader refuses it (bad_json)
]


def test_load_body_rejected(recd_factory, two_versions):
    d = start(recd_factory, two_versions)
    for body, field in BAD_LOAD_BODIES:
        r = admin(d, "POST", "/admin/models/default/load", json.dumps(body),
                  headers={"Content-Type": "application/json"})
        assert r.status == 400, (body, r)
        e = r.error()
        assert e["field"] == field and e["code"] in ("bad_request", "bad_json"), (body, e)
    assert serving(d) == 2 and model(d)["pinned"] is None


def test_bodies_strict(recd_factory, two_versions):
    d = start(recd_factory, two_versions)
    hdr = {"Content-Type": "application/json"}
    # no body, or not JSON
    expect_error(admin(d, "POST", "/admin/models/default/load"), 400, "bad_request", "body")
    r = admin(d, "POST", "/admin/models/default/load", '{"version": 1', headers=hdr)
    assert r.status == 400, r
    r = admin(d, "POST", "/admin/models/default/load", '{"version": 1}',
              headers={"Content-Type": "text/plain"})
    assert r.status == 415, r
    # commands without fields take no body, {} or nothing else
    for path in ("/admin/models/default/unpin", "/admin/models/default/rollback",
                 "/admin/models/default/rescan", "/admin/rescan", "/admin/train"):
        expect_error(admin(d, "POST", path, {"now": True}), 400, "bad_request", "now")
        expect_error(admin(d, "POST", path + "?x=1"), 400, "bad_request", "x")
    assert admin(d, "POST", "/admin/models/default/unpin", {}).status == 200
    assert serving(d) == 2


def test_methods(recd_factory, two_versions):
    d = start(recd_factory, two_versions)
    r = admin(d, "GET", "/admin/models/default/load")
    assert r.status == 405 and "POST" in r.header("Allow"), r
    assert admin(d, "POST", "/admin/models").status == 405
    assert admin(d, "POST", "/admin/models/default/explode").status == 404
    # none of it is on the public listener
    assert d.request("POST", "/admin/models/default/rollback").status == 404
    assert serving(d) == 2


# --------------------------------------------------------------------------
# training trigger
# --------------------------------------------------------------------------

def test_train_without_trainer_404(recd_factory, two_versions):
    d = start(recd_factory, two_versions)
    e = expect_error(admin(d, "POST", "/admin/train"), 404, "trainer_disabled")
    assert "trainer" in e["message"], e
    d.wait_log(r"admin: train refused: 404 trainer_disabled")


def test_train_trigger(recd_factory, two_versions):
    d = start(recd_factory, two_versions,
              {"trainer": {"enabled": True, "model": "default", "interval_s": 86400}})
    r = admin(d, "POST", "/admin/train")
    if r.status == 404 and r.error()["code"] == "trainer_disabled":
        pytest.skip("this recd does not wire the train hook to its trainer yet")
    assert r.status == 202 and r.json() == {"started": True}, r
    d.wait_log(r"admin: train: ok")
    # a second trigger either starts the next cycle or finds this one running
    r = admin(d, "POST", "/admin/train")
    if r.status != 202:
        expect_error(r, 409, "training_in_progress")


# --------------------------------------------------------------------------
# token and listener address
# --------------------------------------------------------------------------

def test_token_required(recd_factory, two_versions):
    d = start(recd_factory, two_versions, {"admin": {"token": TOKEN}})
    for hdrs in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer " + TOKEN[:-1]},
                 {"Authorization": TOKEN}, {"Authorization": "Basic " + TOKEN}):
        r = admin(d, "GET", "/admin/models", headers=hdrs, auth=bool(hdrs))
        expect_error(r, 401, "unauthorized")
        assert r.header("WWW-Authenticate", "").startswith("Bearer"), r
        r = admin(d, "POST", "/admin/models/default/load", {"version": 1}, headers=hdrs,
                  auth=bool(hdrs))
        expect_error(r, 401, "unauthorized")
        expect_error(admin(d, "POST", "/admin/train", headers=hdrs, auth=bool(hdrs)), 401,
                     "unauthorized")
    assert serving(d) == 2 and model(d)["pinned"] is None
    r = admin(d, "POST", "/admin/models/default/load", {"version": 1},
              headers={"Authorization": "Bearer " + TOKEN})
    assert r.status == 200, r
    assert serving(d) == 1


def test_non_loopback_admin_without_token_refuses_to_start(tmp_path):
    models = tmp_path / "models"
    bundle(models, 1)
    (tmp_path / "data").mkdir()
    cfg = {"http": {"listen": "127.0.0.1:%d" % free_port()},
           "admin": {"listen": "0.0.0.0:%d" % free_port()},
           "data_dir": str(tmp_path / "data"), "models_dir": str(models)}
    p = tmp_path / "c.json"
    p.write_text(json.dumps(cfg))
    r = run_recd(["-c", str(p)], timeout=scaled(20))
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert re.search(r"admin\.listen: 0\.0\.0\.0:\d+ is not a loopback address; set "
                     r"admin\.token or admin\.token_file", r.stderr), r.stderr


# --------------------------------------------------------------------------
# logging
# --------------------------------------------------------------------------

def test_admin_actions_logged_with_request_id(recd_factory, two_versions):
    d = start(recd_factory, two_versions)
    r = admin(d, "POST", "/admin/models/default/load", {"version": 1},
              headers={"X-Request-Id": "load-req-1"})
    assert r.status == 200 and r.header("X-Request-Id") == "load-req-1", r
    d.wait_log(r"info \[load-req-1\] admin: load default version 1: ok .*serving version 1 "
               r"\(was 2\)")
    r = admin(d, "POST", "/admin/models/default/load", {"version": 7},
              headers={"X-Request-Id": "load-req-2"})
    assert r.status == 404, r
    d.wait_log(r"warn \[load-req-2\] admin: load default version 7: failed .*404 "
               r"unknown_version")
    r = admin(d, "POST", "/admin/models/default/load", {"version": "x"},
              headers={"X-Request-Id": "load-req-3"})
    assert r.status == 400, r
    d.wait_log(r"warn \[load-req-3\] admin: load default refused: 400 bad_request")
    assert admin(d, "POST", "/admin/models/default/unpin").status == 200
    r = admin(d, "POST", "/admin/models/default/rollback", headers={"X-Request-Id": "rb-1"})
    assert r.status == 200, r
    d.wait_log(r"info \[rb-1\] admin: rollback default: ok .*serving version 1 \(was 2\)")
    r = admin(d, "POST", "/admin/models/default/rollback", headers={"X-Request-Id": "rb-2"})
    assert r.status == 404, r
    d.wait_log(r"warn \[rb-2\] admin: rollback default: failed .*404 no_previous_version")
