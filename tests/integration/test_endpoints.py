"""The read-only endpoints and X-Request-Id, on one shared daemon."""

import os
import time

import pytest

from conftest import HEX16, Raw


@pytest.fixture(scope="module")
def d(module_factory):
    return module_factory()


def test_healthz(d):
    r = d.get("/healthz")
    assert r.status == 200
    assert r.json() == {"status": "ok"}
    assert r.header("Content-Type", "").startswith("application/json"), r.headers


def test_healthz_on_admin_listener(d):
    r = d.request("GET", "/healthz", admin=True)
    assert r.status == 200
    assert r.json() == {"status": "ok"}


def test_head_healthz_has_no_body(d):
    r = d.request("HEAD", "/healthz")
    assert r.status == 200
    assert r.body == b""
    # Content-Length, if present, describes the GET body.
    cl = r.header("Content-Length")
    if cl is not None:
        assert int(cl) == len(d.get("/healthz").body)


def test_head_raw_then_keepalive(d):
    # After a HEAD response, the next response on the connection must parse:
    # the server must not have sent a body.
    with Raw(d.port) as c:
        c.send("HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /readyz HTTP/1.1\r\nHost: t\r\n\r\n")
        r1 = c.read_response(head=True)
        r2 = c.read_response()
    assert r1.status == 200
    assert r2.status == 200
    assert r2.json() == {"status": "ready"}


def test_readyz(d):
    r = d.get("/readyz")
    assert r.status == 200
    assert r.json() == {"status": "ready"}


def test_stats_shape(d):
    d.get("/healthz")
    s = d.stats()
    assert s["version"] == "0.1.0"
    assert isinstance(s["git"], str) and s["git"]
    assert isinstance(s["uptime_s"], (int, float)) and 0 <= s["uptime_s"] < 3600
    assert s["pid"] == d.proc.pid
    assert isinstance(s["rss_bytes"], int) and s["rss_bytes"] > 0
    conns = s["connections"]
    for k in ("open", "accepted", "rejected"):
        assert isinstance(conns[k], int) and conns[k] >= 0, conns
    assert conns["open"] >= 1          # the one asking
    assert conns["accepted"] >= 2      # at least this one and the /healthz before
    assert isinstance(s["inflight"], int) and s["inflight"] >= 0
    assert s["config"]["reloads"] == 0
    assert s["config"]["reload_failures"] == 0
    eps = s["endpoints"]
    for route in ("/healthz", "/readyz", "/stats", "/metrics", "/admin/config",
                  "/admin/reload", "unmatched"):
        assert route in eps, "endpoint %r missing from /stats: %r" % (route, sorted(eps))
        req = eps[route]["requests"]
        for k in ("total", "1xx", "2xx", "3xx", "4xx", "5xx"):
            assert isinstance(req[k], int) and req[k] >= 0, (route, req)
        assert req["total"] == sum(req[k] for k in ("1xx", "2xx", "3xx", "4xx", "5xx")), req
        lat = eps[route]["latency_us"]
        for k in ("count", "mean", "p50", "p90", "p99", "p999", "max"):
            assert isinstance(lat[k], (int, float)) and lat[k] >= 0, (route, lat)
    assert eps["/healthz"]["requests"]["2xx"] >= 1
    assert s.get("workers") == 2, "/stats lacks \"workers\" (keys: %s)" % sorted(s)


def test_stats_counts_requests(d):
    before = d.stats()["endpoints"]
    n = 25
    for _ in range(n):
        assert d.get("/healthz").status == 200
    after = d.stats()["endpoints"]
    got = after["/healthz"]["requests"]["2xx"] - before["/healthz"]["requests"]["2xx"]
    assert got >= n, (before["/healthz"], after["/healthz"])
    assert after["/healthz"]["latency_us"]["count"] - before["/healthz"]["latency_us"]["count"] >= n
    lat = after["/healthz"]["latency_us"]
    assert lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"], lat
    assert lat["max"] > 0, lat
    # the previous /stats call itself was counted under /stats
    assert after["/stats"]["requests"]["2xx"] >= before["/stats"]["requests"]["2xx"] + 1


def test_stats_counts_404_as_unmatched(d):
    before = d.stats()["endpoints"]["unmatched"]["requests"]
    for p in ("/nope", "/healthz/extra", "/stats2"):
        assert d.get(p).status == 404
    after = d.stats()["endpoints"]["unmatched"]["requests"]
    assert after["4xx"] - before["4xx"] >= 3, (before, after)


def test_stats_counts_405_under_route(d):
    before = d.stats()["endpoints"]["/healthz"]["requests"]["4xx"]
    assert d.request("DELETE", "/healthz").status == 405
    after = d.stats()["endpoints"]["/healthz"]["requests"]["4xx"]
    assert after == before + 1


def test_request_id_echoed(d):
    rid = "client-id-42_abc.XYZ"
    r = d.get("/healthz", headers={"X-Request-Id": rid})
    assert r.header("X-Request-Id") == rid


def test_request_id_max_length_echoed(d):
    rid = "a" * 128
    r = d.get("/healthz", headers={"X-Request-Id": rid})
    assert r.header("X-Request-Id") == rid


def test_request_id_generated(d):
    r = d.get("/healthz")
    rid = r.header("X-Request-Id")
    assert rid is not None and HEX16.match(rid), rid


@pytest.mark.parametrize("bad", [
    "a" * 129,          # too long
    "has space",        # space is not visible ASCII
    'quo"te',           # double quote
    "back\\slash",      # backslash
], ids=["too-long", "space", "quote", "backslash"])
def test_request_id_invalid_replaced(d, bad):
    r = d.get("/healthz", headers={"X-Request-Id": bad})
    assert r.status == 200
    rid = r.header("X-Request-Id")
    assert rid != bad
    assert rid is not None and HEX16.match(rid), rid


def test_request_id_unique(d):
    ids = set()
    n = 300
    with Raw(d.port) as c:
        for _ in range(n):
            c.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            r = c.read_response()
            assert r.status == 200
            rid = r.header("X-Request-Id")
            assert rid and HEX16.match(rid), rid
            ids.add(rid)
    assert len(ids) == n


def test_request_id_on_errors(d):
    r = d.get("/no/such/thing", headers={"X-Request-Id": "err-probe-1"})
    assert r.status == 404
    assert r.header("X-Request-Id") == "err-probe-1"
    r = d.get("/no/such/thing")
    assert HEX16.match(r.header("X-Request-Id") or ""), r.headers


def test_query_string_ignored_for_routing(d):
    r = d.get("/healthz?verbose=1")
    assert r.status == 200
    assert r.json() == {"status": "ok"}


def test_stats_rss_matches_proc(d):
    s = d.stats()
    with open("/proc/%d/status" % d.proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
                break
    # same order of magnitude (RSS moves a little between the two reads)
    assert rss / 4 <= s["rss_bytes"] <= rss * 4, (s["rss_bytes"], rss)
    assert os.getpid() != s["pid"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/stats", "/metrics"])
def test_head_allowed_wherever_get_is(d, path):
    r = d.request("HEAD", path)
    assert r.status == 200, r
    assert r.body == b""
    assert r.header("X-Request-Id")


def test_head_admin_config(d):
    r = d.request("HEAD", "/admin/config", admin=True)
    assert r.status == 200, r
    assert r.body == b""


def test_inflight_counts_a_stalled_request(d):
    with Raw(d.port) as c:
        c.send("POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 50\r\n\r\nabc")
        deadline = time.monotonic() + 3
        seen = 0
        while time.monotonic() < deadline:
            seen = d.stats()["inflight"]
            if seen >= 2:   # the stalled POST plus this /stats
                break
            time.sleep(0.05)
        assert seen >= 2, seen
        c.send("x" * 47)
        assert c.read_response().status == 405
