"""Size, time, in-flight and connection limits."""

import socket
import time

import pytest

from conftest import ConnectionClosed, Raw, scaled, wait_until


@pytest.fixture(scope="module")
def d(module_factory):
    return module_factory({"http": {
        "max_body_bytes": 1000,
        "max_header_bytes": 2048,
        "max_headers": 10,
        "header_deadline_ms": 500,
        "read_timeout_ms": 1000,
    }})


# ---- body size -------------------------------------------------------------

def test_body_at_limit_is_read(d):
    with Raw(d.port) as c:
        c.send("POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" + "x" * 1000)
        r = c.read_response()
        assert r.status == 405, r
        c.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        assert c.read_response().status == 200


def test_413_by_content_length_without_reading_body(d):
    with Raw(d.port) as c:
        # The body is never sent: the answer must come from the headers alone.
        c.send("POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\n\r\n")
        t0 = time.monotonic()
        r = c.read_response()
        assert r.status == 413, r
        err = r.error()
        assert err["code"] == "body_too_large"
        assert err["field"] == "body"
        assert time.monotonic() - t0 < scaled(3)
        assert c.is_closed(timeout=scaled(3))


def test_413_on_json_endpoint(d):
    body = b'{"log.level": "' + b"d" * 2000 + b'"}'
    r = d.request("PUT", "/admin/config", admin=True, body=body,
                  headers={"Content-Type": "application/json"})
    assert r.status == 413, r
    assert r.error()["code"] == "body_too_large"


def test_413_chunked_decoded_size(d):
    chunk = "x" * 400
    data = ("POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" +
            ("190\r\n%s\r\n" % chunk) * 3 + "0\r\n\r\n")
    with Raw(d.port) as c:
        c.send(data)
        r = c.read_response()
        assert r.status == 413, r
        assert r.error()["code"] == "body_too_large"
        assert c.is_closed(timeout=scaled(3))


def test_chunked_under_limit_ok(d):
    chunk = "x" * 400
    data = ("POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" +
            ("190\r\n%s\r\n" % chunk) * 2 + "0\r\n\r\n")
    with Raw(d.port) as c:
        c.send(data)
        r = c.read_response()
        assert r.status == 405, r


# ---- header size and count ---------------------------------------------------

def test_431_header_bytes(d):
    data = ("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: %s\r\n\r\n" % ("b" * 3000))
    with Raw(d.port) as c:
        c.send(data)
        r = c.read_response()
        assert r.status == 431, r
        assert r.error()["code"] == "headers_too_large"
        assert c.is_closed(timeout=scaled(3))


def test_431_header_count(d):
    hdrs = "".join("X-H%d: v\r\n" % i for i in range(20))
    with Raw(d.port) as c:
        c.send("GET /healthz HTTP/1.1\r\nHost: t\r\n" + hdrs + "\r\n")
        r = c.read_response()
        assert r.status == 431, r
        assert r.error()["code"] == "headers_too_large"
        assert c.is_closed(timeout=scaled(3))


def test_headers_under_limits_ok(d):
    hdrs = "".join("X-H%d: v\r\n" % i for i in range(8))
    with Raw(d.port) as c:
        c.send("GET /healthz HTTP/1.1\r\nHost: t\r\n" + hdrs + "X-Pad: " + "p" * 1200 + "\r\n\r\n")
        r = c.read_response()
        assert r.status == 200, r


def test_431_long_request_line(d):
    with Raw(d.port) as c:
        c.send("GET /healthz?" + "q" * 4000 + " HTTP/1.1\r\nHost: t\r\n\r\n")
        r = c.read_response()
        assert r.status in (414, 431), r
        assert c.is_closed(timeout=scaled(3))


# ---- slowloris and stalled bodies ------------------------------------------

def test_408_slowloris_header_deadline(d):
    s = socket.create_connection(("127.0.0.1", d.port), timeout=scaled(5))
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        t0 = time.monotonic()
        buf = b""
        closed = False
        limit = t0 + scaled(6)
        trickle = b"X-Slow: " + b"a" * 200
        i = 0
        s.settimeout(0.1)
        while time.monotonic() < limit:
            try:
                s.sendall(trickle[i % len(trickle):i % len(trickle) + 1])
                i += 1
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            try:
                chunk = s.recv(65536)
                if not chunk:
                    closed = True
                    break
                buf += chunk
            except socket.timeout:
                pass
            except ConnectionResetError:
                closed = True
                break
        elapsed = time.monotonic() - t0
    finally:
        s.close()
    assert buf.startswith(b"HTTP/1.1 408 "), "no 408 after %.2fs: %r" % (elapsed, buf[:200])
    assert b"request_timeout" in buf
    assert closed, "connection not closed within %.1fs" % (elapsed,)
    # deadline is 500 ms from the first byte; allow generous slack
    assert 0.3 <= elapsed <= scaled(3), elapsed


def test_408_stalled_body(d):
    with Raw(d.port, timeout=scaled(6)) as c:
        c.send("POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n" + "x" * 10)
        t0 = time.monotonic()
        r = c.read_response()
        elapsed = time.monotonic() - t0
        assert r.status == 408, r
        assert r.error()["code"] == "request_timeout"
        assert c.is_closed(timeout=scaled(3))
    assert 0.7 <= elapsed <= scaled(4), elapsed


def test_partial_idle_connection_before_first_byte_not_408(d):
    # The header deadline runs from the first byte: an idle new connection
    # that then sends a full request quickly is served.
    with Raw(d.port) as c:
        time.sleep(0.7)
        c.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        r = c.read_response()
        assert r.status == 200, r


# ---- in-flight limit ----------------------------------------------------------

def test_503_overloaded(module_factory):
    d = module_factory({"http": {"workers": 1, "max_inflight_per_worker": 1,
                                 "retry_after_s": 7, "read_timeout_ms": 20000}}, name="inflight")
    a = Raw(d.port, timeout=scaled(10))
    try:
        a.send("POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n" + "x" * 40)

        def try_b():
            with Raw(d.port) as b:
                b.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                r = b.read_response()
                return r if r.status == 503 else None

        r = wait_until(try_b, scaled(3), interval=0.05, what="503 while A is in flight")
        assert r.error()["code"] == "overloaded", r
        assert r.header("Retry-After") == "7", r

        # finish A: it is answered normally
        a.send("x" * 60)
        ra = a.read_response()
        assert ra.status == 405, ra
    finally:
        a.close()

    def ok_again():
        return d.get("/healthz").status == 200
    wait_until(ok_again, scaled(3), what="200 after the in-flight request completed")
    # the 503 was counted as a response (under its route or, since it is
    # decided before routing, under "unmatched")
    s = d.stats()
    assert sum(e["requests"]["5xx"] for e in s["endpoints"].values()) >= 1, s["endpoints"]


# ---- connection limit ---------------------------------------------------------

def test_503_too_many_connections(module_factory):
    d = module_factory({"http": {"max_connections": 3, "retry_after_s": 5,
                                 "keepalive_timeout_ms": 30000}}, name="maxconn")
    held = []
    try:
        for _ in range(3):
            c = Raw(d.port)
            c.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            assert c.read_response().status == 200
            held.append(c)
        extra = Raw(d.port)
        try:
            try:
                extra.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may already have answered and closed
            try:
                r = extra.read_response()
            except ConnectionClosed as e:
                pytest.fail("4th connection closed without a 503: %s" % e)
            assert r.status == 503, r
            assert r.error()["code"] == "too_many_connections"
            assert r.header("Retry-After") == "5", r
            assert extra.is_closed(timeout=scaled(3))
        finally:
            extra.close()
        # the held connections still work
        held[0].send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        assert held[0].read_response().status == 200
        # free one slot; a new connection is served again
        held.pop().close()

        def served():
            try:
                with Raw(d.port) as c:
                    c.send("GET /stats HTTP/1.1\r\nHost: t\r\n\r\n")
                    r = c.read_response()
                    return r if r.status == 200 else None
            except (ConnectionClosed, OSError):
                return None
        r = wait_until(served, scaled(3), what="a free connection slot")
        assert r.json()["connections"]["rejected"] >= 1
    finally:
        for c in held:
            c.close()
