"""Error statuses and the error document shape."""

import re

import pytest

from conftest import Raw, raw_exchange, scaled


@pytest.fixture(scope="module")
def d(module_factory):
    return module_factory({"http": {"max_json_depth": 8}})


def test_404_not_found(d):
    r = d.get("/definitely/not/here")
    assert r.status == 404
    assert r.header("Content-Type", "").startswith("application/json")
    err = r.error()
    assert err["code"] == "not_found"
    assert err["field"] == "path"


def test_404_keeps_connection_open(d):
    with Raw(d.port) as c:
        c.send("GET /nothing HTTP/1.1\r\nHost: t\r\n\r\n")
        assert c.read_response().status == 404
        c.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        assert c.read_response().status == 200


def test_405_method_not_allowed(d):
    r = d.request("POST", "/healthz", body=b"")
    assert r.status == 405
    err = r.error()
    assert err["code"] == "method_not_allowed"
    assert err["field"] == "method"
    allow = [m.strip() for m in (r.header("Allow") or "").split(",")]
    assert "GET" in allow and "HEAD" in allow, r.headers
    assert "POST" not in allow


def test_405_admin_paths_allow(d):
    r = d.request("DELETE", "/admin/config", admin=True)
    assert r.status == 405
    allow = [m.strip() for m in (r.header("Allow") or "").split(",")]
    assert "GET" in allow and "PUT" in allow, r.headers
    r = d.request("GET", "/admin/reload", admin=True)
    assert r.status == 405
    allow = [m.strip() for m in (r.header("Allow") or "").split(",")]
    assert "POST" in allow, r.headers


def test_405_keeps_alive_and_consumes_body(d):
    with Raw(d.port) as c:
        c.send("POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
        r = c.read_response()
        assert r.status == 405
        assert "GET" in (r.header("Allow") or "")
        # with a body: the body must be consumed, not parsed as a request
        c.send("POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 27\r\n\r\n"
               "GET /nothing HTTP/1.1\r\n\r\n\r\n")
        r = c.read_response()
        assert r.status == 405
        c.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        r = c.read_response()
        assert r.status == 200, r
        assert r.json() == {"status": "ok"}


def test_unknown_method_405_and_close(d):
    resp, closed = raw_exchange(d.port, "FOO /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    assert resp.status == 405
    assert resp.error()["code"] == "method_not_allowed"
    assert resp.error()["field"] == "method"
    assert closed, "connection should be closed after an unknown method"


def test_505_http2_version(d):
    resp, _ = raw_exchange(d.port, "GET / HTTP/2.0\r\nHost: t\r\n\r\n")
    assert resp.status == 505
    assert resp.error()["code"] == "version_not_supported"


def test_505_http3_on_known_path(d):
    resp, _ = raw_exchange(d.port, "GET /healthz HTTP/3.0\r\nHost: t\r\n\r\n")
    assert resp.status == 505


def test_417_unknown_expectation(d):
    r = d.get("/healthz", headers={"Expect": "foo"})
    assert r.status == 417
    assert r.error()["code"] == "expectation_failed"


def test_100_continue(d):
    body = b'{"log.level": "debug"}'
    with Raw(d.admin_port) as c:
        c.send("PUT /admin/config HTTP/1.1\r\nHost: t\r\n"
               "Content-Type: application/json\r\nContent-Length: %d\r\n"
               "Expect: 100-continue\r\n\r\n" % len(body))
        interim = c.read_response()
        assert interim.status == 100, interim
        assert interim.version == "HTTP/1.1"
        c.send(body)
        final = c.read_response()
        assert final.status == 200, final


def test_415_wrong_content_type(d):
    r = d.request("PUT", "/admin/config", admin=True, body=b'{"log.level": "debug"}',
                  headers={"Content-Type": "text/plain"})
    assert r.status == 415
    err = r.error()
    assert err["code"] == "unsupported_media_type"
    # README says headers are named as "header:Content-Type"; the brief
    # says "Content-Type". Accept either spelling, nothing else.
    assert err["field"] in ("Content-Type", "header:Content-Type"), err


def test_json_content_type_with_charset_accepted(d):
    r = d.request("PUT", "/admin/config", admin=True, body=b'{"log.level": "debug"}',
                  headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status == 200, r


def test_400_bad_json_line_and_column(d):
    r = d.request("PUT", "/admin/config", admin=True, body=b'{"log.level": }',
                  headers={"Content-Type": "application/json"})
    assert r.status == 400
    err = r.error()
    assert err["code"] == "bad_json"
    msg = err["message"].lower()
    assert re.search(r"line\W*1\b", msg), msg
    assert re.search(r"col(umn)?\W*\d+", msg), msg


def test_400_bad_json_multiline_reports_line(d):
    body = b'{\n  "log.level": "debug",\n  "log.access": tru\n}'
    r = d.request("PUT", "/admin/config", admin=True, body=body,
                  headers={"Content-Type": "application/json"})
    assert r.status == 400
    err = r.error()
    assert err["code"] == "bad_json"
    assert re.search(r"line\W*3\b", err["message"].lower()), err


def test_400_json_too_deep(d):
    body = "[" * 9 + "]" * 9
    r = d.request("PUT", "/admin/config", admin=True, body=body,
                  headers={"Content-Type": "application/json"})
    assert r.status == 400, r
    assert r.error()["code"] == "json_too_deep"


def test_json_depth_at_limit_is_not_too_deep(d):
    body = "[" * 8 + "]" * 8
    r = d.request("PUT", "/admin/config", admin=True, body=body,
                  headers={"Content-Type": "application/json"})
    assert 400 <= r.status < 500, r
    assert r.error()["code"] != "json_too_deep", r


def test_json_too_deep_objects(d):
    body = '{"a":' * 20 + "1" + "}" * 20
    r = d.request("PUT", "/admin/config", admin=True, body=body,
                  headers={"Content-Type": "application/json"})
    assert r.status == 400, r
    assert r.error()["code"] == "json_too_deep"


def test_very_deep_json_does_not_crash(d):
    body = "[" * 100000 + "]" * 100000
    r = d.request("PUT", "/admin/config", admin=True, body=body,
                  headers={"Content-Type": "application/json"},
                  timeout=scaled(10))
    assert r.status in (400, 413), r
    assert d.get("/healthz").status == 200


def test_error_responses_are_json_with_request_id(d):
    r = d.get("/missing", headers={"X-Request-Id": "errshape-1"})
    assert r.status == 404
    doc = r.json()
    assert set(doc) == {"error"}, doc
    assert r.header("X-Request-Id") == "errshape-1"
    assert int(r.header("Content-Length")) == len(r.body)


def test_daemon_still_healthy(d):
    assert d.get("/healthz").status == 200
