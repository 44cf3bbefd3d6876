"""Admin listener: effective config, live changes, reload, token auth."""

import json

import pytest

from conftest import metric_value, parse_metrics, run_recd, scaled, wait_until


@pytest.fixture(scope="module")
def d(module_factory):
    return module_factory({"log": {"level": "info"}, "http": {"max_body_bytes": 5000}})


def put(d, doc, **kw):
    return d.request("PUT", "/admin/config", admin=True, body=json.dumps(doc).encode(),
                     headers={"Content-Type": "application/json"}, **kw)


def get_config(d):
    r = d.request("GET", "/admin/config", admin=True)
    assert r.status == 200, r
    assert r.header("Content-Type", "").startswith("application/json")
    return r.json()


def test_get_config_dotted_keys(d):
    cfg = get_config(d)
    assert cfg["http.listen"] == "127.0.0.1:%d" % d.port
    assert cfg["admin.listen"] == "127.0.0.1:%d" % d.admin_port
    assert cfg["http.workers"] == 2
    assert cfg["http.max_body_bytes"] == 5000
    assert cfg["log.level"] == "info"
    for key in ("http.max_header_bytes", "http.max_headers", "http.header_deadline_ms",
                "http.max_connections", "http.max_inflight_per_worker",
                "http.max_json_depth", "http.retry_after_s", "tls.cert", "tls.key",
                "log.file", "log.access", "data_dir", "models_dir",
                "shutdown_deadline_ms"):
        assert key in cfg, "%s missing from /admin/config" % key
    assert not any(isinstance(v, dict) for v in cfg.values()), "expected a flat object"


def test_put_log_level(d):
    r = put(d, {"log.level": "debug"})
    assert r.status == 200, r
    assert get_config(d)["log.level"] == "debug"
    r = put(d, {"log.level": "info"})
    assert r.status == 200, r
    assert get_config(d)["log.level"] == "info"


def test_put_applies_body_limit_live(d):
    assert d.request("POST", "/healthz", body=b"x" * 200).status == 405
    r = put(d, {"http.max_body_bytes": 100})
    assert r.status == 200, r
    try:
        assert get_config(d)["http.max_body_bytes"] == 100
        r = d.request("POST", "/healthz", body=b"x" * 200)
        assert r.status == 413, r
    finally:
        assert put(d, {"http.max_body_bytes": 5000}).status == 200
    assert d.request("POST", "/healthz", body=b"x" * 200).status == 405


def test_put_not_reloadable(d):
    r = put(d, {"http.listen": "127.0.0.1:1"})
    assert r.status == 422, r
    err = r.error()
    assert err["code"] == "not_reloadable"
    assert err["field"] == "http.listen"
    assert get_config(d)["http.listen"] == "127.0.0.1:%d" % d.port


def test_put_out_of_range(d):
    r = put(d, {"http.max_body_bytes": -5})
    assert r.status == 422, r
    err = r.error()
    assert err["code"] == "invalid_config"
    assert err["field"] == "http.max_body_bytes"
    assert get_config(d)["http.max_body_bytes"] == 5000


def test_put_wrong_type(d):
    r = put(d, {"http.max_body_bytes": "big"})
    assert r.status == 422, r
    err = r.error()
    assert err["code"] == "invalid_config"
    assert err["field"] == "http.max_body_bytes"


def test_put_unknown_key(d):
    r = put(d, {"log.lvl": "debug"})
    assert r.status == 422, r
    err = r.error()
    assert err["code"] == "invalid_config"
    assert err["field"] == "log.lvl"
    assert "log.lvl" not in get_config(d)


def test_put_is_atomic(d):
    r = put(d, {"log.level": "warn", "http.max_body_bytes": -5})
    assert r.status == 422, r
    cfg = get_config(d)
    assert cfg["log.level"] == "info", "a rejected PUT must not apply any key"
    assert cfg["http.max_body_bytes"] == 5000


def test_put_non_object_body(d):
    r = d.request("PUT", "/admin/config", admin=True, body=b'["log.level"]',
                  headers={"Content-Type": "application/json"})
    assert 400 <= r.status < 500 and r.status != 404, r
    r.error()


def test_admin_paths_not_on_public_listener(d):
    for method, path in (("GET", "/admin/config"), ("PUT", "/admin/config"),
                         ("POST", "/admin/reload")):
        body = b"{}" if method != "GET" else None
        r = d.request(method, path, body=body, headers={"Content-Type": "application/json"})
        assert r.status == 404, (method, path, r)
        assert r.error()["code"] == "not_found"


def test_admin_listener_serves_stats_and_metrics(d):
    assert d.request("GET", "/stats", admin=True).json()["version"] == "0.1.0"
    r = d.request("GET", "/metrics", admin=True)
    assert r.status == 200
    assert b"recd_build_info" in r.body


def test_reload_endpoint(d):
    before = d.stats()["config"]
    cfg = dict(d.config)
    cfg["log"] = dict(cfg["log"], level="warn")
    d.write_config(cfg)
    r = d.request("POST", "/admin/reload", admin=True)
    assert r.status == 200, r
    after = d.stats()["config"]
    assert after["reloads"] == before["reloads"] + 1
    assert after["reload_failures"] == before["reload_failures"]
    assert get_config(d)["log.level"] == "warn"


def test_reload_endpoint_rejects_broken_file(d):
    good = dict(d.config)
    before = d.stats()["config"]
    level = get_config(d)["log.level"]
    d.write_config(text='{"log": {"level": "debug"},, }')
    try:
        r = d.request("POST", "/admin/reload", admin=True)
        assert r.status == 422, r
        assert r.error()["code"] == "invalid_config"
        after = d.stats()["config"]
        assert after["reload_failures"] == before["reload_failures"] + 1
        assert after["reloads"] == before["reloads"]
        assert get_config(d)["log.level"] == level
        assert d.get("/healthz").status == 200
        # an out-of-range value is rejected too, naming the key
        bad = json.loads(json.dumps(good))
        bad["http"]["max_body_bytes"] = -1
        d.write_config(bad)
        r = d.request("POST", "/admin/reload", admin=True)
        assert r.status == 422, r
        assert r.error()["field"] == "http.max_body_bytes"
        assert get_config(d)["http.max_body_bytes"] == 5000
    finally:
        d.write_config(good)


# ---- token -------------------------------------------------------------------

@pytest.fixture(scope="module")
def secured(module_factory):
    return module_factory({"admin": {"token": "s3cret"}}, name="secured")


def test_token_missing_401(secured):
    r = secured.request("GET", "/admin/config", admin=True, auth=False)
    assert r.status == 401
    assert r.error()["code"] == "unauthorized"
    assert (r.header("WWW-Authenticate") or "").lower().startswith("bearer"), r.headers


def test_token_wrong_401(secured):
    for value in ("Bearer s3creT", "Bearer s3cret2", "Bearer ", "Basic czNjcmV0", "s3cret"):
        r = secured.request("GET", "/admin/config", admin=True,
                            headers={"Authorization": value})
        assert r.status == 401, (value, r)
        assert r.error()["code"] == "unauthorized"


def test_token_right_200_and_redacted(secured):
    r = secured.request("GET", "/admin/config", admin=True,
                        headers={"Authorization": "Bearer s3cret"})
    assert r.status == 200, r
    cfg = r.json()
    assert cfg["admin.token"] == "<redacted>"
    assert b"s3cret" not in r.body


def test_token_guards_put_and_reload(secured):
    r = secured.request("PUT", "/admin/config", admin=True, auth=False,
                        body=b'{"log.level": "warn"}',
                        headers={"Content-Type": "application/json"})
    assert r.status == 401
    r = secured.request("POST", "/admin/reload", admin=True, auth=False)
    assert r.status == 401
    assert secured.stats()["config"]["reloads"] == 0
    cfg = secured.request("GET", "/admin/config", admin=True).json()
    assert cfg["log.level"] == "debug"


def test_token_not_needed_for_healthz_on_admin(secured):
    r = secured.request("GET", "/healthz", admin=True, auth=False)
    assert r.status == 200


def test_token_file(recd_factory, tmp_path):
    tf = tmp_path / "token"
    tf.write_text("fromfile123\nignored second line\n")
    d2 = recd_factory({"admin": {"token_file": str(tf)}})
    r = d2.request("GET", "/admin/config", admin=True, auth=False)
    assert r.status == 401
    r = d2.request("GET", "/admin/config", admin=True,
                   headers={"Authorization": "Bearer fromfile123"})
    assert r.status == 200, r
    assert b"fromfile123" not in r.body


def test_non_loopback_admin_without_token_refused(tmp_path):
    from conftest import free_port
    (tmp_path / "data").mkdir()
    (tmp_path / "models").mkdir()
    cfg = {"http": {"listen": "127.0.0.1:%d" % free_port()},
           "admin": {"listen": "0.0.0.0:%d" % free_port()},
           "data_dir": str(tmp_path / "data"), "models_dir": str(tmp_path / "models")}
    p = tmp_path / "c.json"
    p.write_text(json.dumps(cfg))
    r = run_recd(["-c", str(p)], timeout=scaled(20))
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "admin" in r.stderr.lower(), r.stderr


def test_non_loopback_admin_with_token_starts(recd_factory):
    d2 = recd_factory(start=False, config={"admin": {"token": "tok"}})
    d2.config["admin"]["listen"] = "0.0.0.0:%d" % d2.admin_port
    d2.write_config()
    d2.start()
    r = d2.request("GET", "/admin/config", admin=True)
    assert r.status == 200, r


def test_reload_counts_in_metrics(recd_factory):
    d2 = recd_factory()
    assert d2.request("POST", "/admin/reload", admin=True).status == 200
    d2.write_config(text="{")
    assert d2.request("POST", "/admin/reload", admin=True).status == 422
    s = d2.stats()["config"]
    assert s == {"reloads": 1, "reload_failures": 1} or (
        s["reloads"] == 1 and s["reload_failures"] == 1), s
    samples, _, _ = parse_metrics(d2.metrics())
    assert metric_value(samples, "recd_config_reloads_total", result="ok") == 1
    assert metric_value(samples, "recd_config_reloads_total", result="error") == 1
    wait_until(lambda: "reload" in d2.log().lower(), scaled(3), what="a reload log line")
