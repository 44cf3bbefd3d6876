"""Keep-alive, pipelining, connection close rules and a concurrency run."""

import http.client
import json
import threading
import time

import pytest

from conftest import IO_TIMEOUT, SANITIZED, Raw, scaled


@pytest.fixture(scope="module")
def d(module_factory):
    return module_factory({"http": {"workers": 2, "max_connections": 2000,
                                    "keepalive_timeout_ms": 30000}})


def test_many_requests_one_connection(d):
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=IO_TIMEOUT)
    try:
        conn.connect()
        sock = conn.sock
        local = sock.getsockname()
        for i in range(20):
            path = "/healthz" if i % 2 == 0 else "/stats"
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
            assert r.status == 200
            assert (r.getheader("Connection") or "").lower() != "close"
            json.loads(body)
            assert conn.sock is sock, "client had to reconnect after request %d" % i
        assert conn.sock.getsockname() == local
    finally:
        conn.close()


def test_pipelining_in_order(d):
    with Raw(d.port) as c:
        c.send("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Request-Id: p1\r\n\r\n"
               "GET /readyz HTTP/1.1\r\nHost: t\r\nX-Request-Id: p2\r\n\r\n"
               "GET /stats HTTP/1.1\r\nHost: t\r\nX-Request-Id: p3\r\n\r\n")
        r1, r2, r3 = c.read_response(), c.read_response(), c.read_response()
        assert [r.status for r in (r1, r2, r3)] == [200, 200, 200]
        assert [r.header("X-Request-Id") for r in (r1, r2, r3)] == ["p1", "p2", "p3"]
        assert r1.json() == {"status": "ok"}
        assert r2.json() == {"status": "ready"}
        assert r3.json()["version"] == "0.1.0"
        assert not c.is_closed(timeout=0.3), "pipelined connection was closed"


def test_pipelining_many(d):
    n = 50
    with Raw(d.port) as c:
        c.send("".join("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Request-Id: q%d\r\n\r\n" % i
                       for i in range(n)))
        for i in range(n):
            r = c.read_response()
            assert r.status == 200
            assert r.header("X-Request-Id") == "q%d" % i


def test_pipelined_error_stops_the_pipeline(d):
    # A request that closes the connection (unknown method) ends the pipeline:
    # the one after it is not answered.
    with Raw(d.port) as c:
        c.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
               "FOO /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
               "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        assert c.read_response().status == 200
        assert c.read_response().status == 405
        assert c.is_closed(timeout=scaled(3))


def test_connection_close_honoured(d):
    with Raw(d.port) as c:
        c.send("GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert (r.header("Connection") or "").lower() == "close"
        assert c.is_closed(timeout=scaled(3))


def test_http10_closes_by_default(d):
    with Raw(d.port) as c:
        c.send("GET /healthz HTTP/1.0\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert r.json() == {"status": "ok"}
        assert c.is_closed(timeout=scaled(3))


def test_keepalive_idle_timeout(module_factory):
    d2 = module_factory({"http": {"keepalive_timeout_ms": 1000}}, name="katimeout")
    with Raw(d2.port) as c:
        c.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        assert c.read_response().status == 200
        t0 = time.monotonic()
        assert c.is_closed(timeout=scaled(6)), "idle keep-alive connection never closed"
        elapsed = time.monotonic() - t0
    assert 0.5 <= elapsed <= scaled(4), elapsed


def test_load_parallel_clients(d):
    clients = 100 if SANITIZED else 200
    per_client = 50
    errors = []
    statuses = {}
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def client(idx):
        local = {}
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=scaled(30))
        try:
            try:
                barrier.wait(timeout=scaled(30))
            except threading.BrokenBarrierError:
                pass
            for i in range(per_client):
                path = "/stats" if (i + idx) % 5 == 0 else "/healthz"
                conn.request("GET", path, headers={"X-Request-Id": "load-%d-%d" % (idx, i)})
                r = conn.getresponse()
                body = r.read()
                local[r.status] = local.get(r.status, 0) + 1
                if r.status != 200:
                    raise AssertionError("%s -> %d %r" % (path, r.status, body[:200]))
                if r.getheader("X-Request-Id") != "load-%d-%d" % (idx, i):
                    raise AssertionError("request id mismatch on %s" % path)
                json.loads(body)
        except Exception as e:  # collected and asserted below
            with lock:
                errors.append("client %d: %r" % (idx, e))
        finally:
            conn.close()
            with lock:
                for k, v in local.items():
                    statuses[k] = statuses.get(k, 0) + v

    before = d.stats()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=scaled(120))
    elapsed = time.monotonic() - t0
    assert not any(t.is_alive() for t in threads), "clients still running after %.0fs" % elapsed
    assert errors == [], "%d errors, first: %s" % (len(errors), errors[:5])
    assert statuses == {200: clients * per_client}, statuses

    after = d.stats()
    n_stats = sum(1 for idx in range(clients) for i in range(per_client) if (i + idx) % 5 == 0)
    n_health = clients * per_client - n_stats
    got_h = (after["endpoints"]["/healthz"]["requests"]["2xx"]
             - before["endpoints"]["/healthz"]["requests"]["2xx"])
    got_s = (after["endpoints"]["/stats"]["requests"]["2xx"]
             - before["endpoints"]["/stats"]["requests"]["2xx"])
    assert got_h == n_health, (got_h, n_health)
    assert got_s >= n_stats, (got_s, n_stats)
    assert after["connections"]["accepted"] - before["connections"]["accepted"] >= clients
    assert after["connections"]["rejected"] == before["connections"]["rejected"]
    # all load connections closed again (allow the server a moment)
    for _ in range(50):
        if d.stats()["connections"]["open"] <= 2:
            break
        time.sleep(0.1)
    assert d.stats()["connections"]["open"] <= 2
