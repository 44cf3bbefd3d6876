"""SIGHUP reload, SIGUSR1 log reopen, SIGTERM graceful shutdown."""

import json
import os
import re
import signal
import socket
import time

import pytest

from conftest import Raw, scaled, wait_until

LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z (debug|info|warn|error) ")


def body_status(d, n):
    """Status for a POST /healthz with an n-byte body (405 if under the
    body limit, 413 if over)."""
    return d.request("POST", "/healthz", body=b"x" * n).status


def wait_reload(d, before, key="reloads"):
    return wait_until(lambda: d.stats()["config"][key] > before[key],
                      scaled(5), what="config.%s to increment" % key)


# ---- SIGHUP ------------------------------------------------------------------

def test_sighup_applies_new_limit(recd_factory):
    d = recd_factory({"http": {"max_body_bytes": 1000}})
    assert body_status(d, 100) == 405
    before = d.stats()["config"]
    cfg = json.loads(json.dumps(d.config))
    cfg["http"]["max_body_bytes"] = 10
    d.write_config(cfg)
    d.signal(signal.SIGHUP)
    wait_reload(d, before)
    assert body_status(d, 100) == 413
    assert body_status(d, 10) == 405
    after = d.stats()["config"]
    assert after["reload_failures"] == before["reload_failures"]
    assert d.request("GET", "/admin/config", admin=True).json()["http.max_body_bytes"] == 10


@pytest.mark.parametrize("broken", ["malformed", "out-of-range"])
def test_sighup_broken_config_keeps_old(recd_factory, broken):
    d = recd_factory({"http": {"max_body_bytes": 1000}})
    before = d.stats()["config"]
    if broken == "malformed":
        d.write_config(text='{"http": {"max_body_bytes": 10,}\n')
    else:
        cfg = json.loads(json.dumps(d.config))
        cfg["http"]["max_body_bytes"] = 10
        cfg["http"]["max_headers"] = 100000
        d.write_config(cfg)
    d.signal(signal.SIGHUP)
    wait_reload(d, before, key="reload_failures")
    d.wait_log(r"reload failed")
    if broken == "out-of-range":
        assert "http.max_headers" in d.log()
    after = d.stats()["config"]
    assert after["reloads"] == before["reloads"]
    assert after["reload_failures"] == before["reload_failures"] + 1
    # old values still in force: a 100-byte body is under the old 1000 limit
    assert body_status(d, 100) == 405
    assert d.get("/healthz").status == 200
    assert d.alive()


def test_sighup_non_reloadable_key_logged_and_kept(recd_factory):
    d = recd_factory()
    before = d.stats()["config"]
    cfg = json.loads(json.dumps(d.config))
    cfg["http"]["workers"] = 3
    cfg["log"]["level"] = "info"
    d.write_config(cfg)
    d.signal(signal.SIGHUP)
    wait_until(lambda: d.stats()["config"] != before, scaled(5), what="reload to finish")
    d.wait_log(r"http\.workers.*restart|restart.*http\.workers")
    conf = d.request("GET", "/admin/config", admin=True).json()
    assert conf["http.workers"] == 2
    assert conf["log.level"] == "info", "reloadable keys in the same file still apply"
    assert d.stats()["workers"] == 2


def test_sighup_repeated(recd_factory):
    d = recd_factory()
    for i in range(5):
        before = d.stats()["config"]
        d.signal(signal.SIGHUP)
        wait_reload(d, before)
    assert d.stats()["config"]["reloads"] == 5


# ---- SIGUSR1 -------------------------------------------------------------------

def test_sigusr1_reopens_log_file(recd_factory, tmp_path):
    logf = tmp_path / "recd.log"
    d = recd_factory({"log": {"file": str(logf), "access": True, "level": "info"}})
    assert d.get("/healthz", headers={"X-Request-Id": "before-rotate-1"}).status == 200
    wait_until(lambda: logf.exists() and "before-rotate-1" in logf.read_text(),
               scaled(5), what="the access line in log.file")
    rotated = tmp_path / "recd.log.1"
    os.rename(logf, rotated)
    d.signal(signal.SIGUSR1)

    def reopened():
        d.get("/healthz", headers={"X-Request-Id": "after-rotate-2"})
        return logf.exists() and "after-rotate-2" in logf.read_text()
    wait_until(reopened, scaled(5), interval=0.1, what="a new log file with fresh lines")
    text = logf.read_text()
    assert "before-rotate-1" not in text
    assert "before-rotate-1" in rotated.read_text()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert lines and all(LOG_LINE.match(ln) for ln in lines), lines[:5]
    assert d.alive()


def test_log_line_format_on_stderr(recd_factory):
    d = recd_factory({"log": {"access": True, "level": "info"}})
    d.get("/healthz", headers={"X-Request-Id": "fmt-probe-9"})
    d.wait_log(r"fmt-probe-9")
    line = next(ln for ln in d.log().splitlines() if "fmt-probe-9" in ln)
    assert LOG_LINE.match(line), line
    assert "[fmt-probe-9]" in line, line


# ---- SIGTERM -------------------------------------------------------------------

def test_sigterm_graceful_drain(recd_factory):
    d = recd_factory({"http": {"workers": 1}, "shutdown_deadline_ms": 8000})
    admin_body = b'{"log.level": "warn"}'
    a = Raw(d.admin_port, timeout=scaled(10))
    b = Raw(d.port, timeout=scaled(10))
    try:
        a.send(b"PUT /admin/config HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % len(admin_body) + admin_body[:8])
        b.send(b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 20\r\n\r\n" + b"x" * 10)
        time.sleep(0.3 * scaled(1))
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        time.sleep(0.3 * scaled(1))
        assert d.alive(), "recd exited with requests in flight"

        # new public connections are refused or reset, never served
        try:
            n = socket.create_connection(("127.0.0.1", d.port), timeout=scaled(2))
        except (ConnectionRefusedError, ConnectionResetError):
            pass
        else:
            try:
                n.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                got = n.recv(100)
            except (ConnectionResetError, BrokenPipeError):
                got = b""
            except socket.timeout:
                pytest.fail("new connection accepted but left hanging during shutdown")
            finally:
                n.close()
            assert not got.startswith(b"HTTP/1.1 2"), got

        a.send(admin_body[8:])
        b.send(b"y" * 10)
        ra = a.read_response()
        rb = b.read_response()
        assert ra.status == 200, ra
        assert rb.status == 405, rb
        assert (ra.header("Connection") or "").lower() == "close", ra
        assert (rb.header("Connection") or "").lower() == "close", rb
        assert a.is_closed(timeout=scaled(3))
        assert b.is_closed(timeout=scaled(3))
    finally:
        a.close()
        b.close()
    rc = d.wait_exit(scaled(8))
    elapsed = time.monotonic() - t0
    assert rc == 0, (rc, d.log()[-3000:])
    assert elapsed < scaled(8), elapsed


def test_sigterm_with_idle_keepalive(recd_factory):
    d = recd_factory()
    with Raw(d.port) as c:
        c.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        assert c.read_response().status == 200
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        assert c.is_closed(timeout=scaled(3)), "idle connection not closed on SIGTERM"
        rc = d.wait_exit(scaled(3))
        assert rc == 0, (rc, d.log()[-3000:])
        assert time.monotonic() - t0 < scaled(3)


def test_sigterm_deadline_cuts_stuck_request(recd_factory):
    d = recd_factory({"shutdown_deadline_ms": 1000, "http": {"read_timeout_ms": 60000}})
    with Raw(d.port, timeout=scaled(10)) as c:
        c.send("POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nxx")
        time.sleep(0.2)
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        rc = d.wait_exit(scaled(6))
        elapsed = time.monotonic() - t0
        assert rc == 0, (rc, d.log()[-3000:])
        assert 0.5 <= elapsed <= scaled(4), elapsed
        # the stuck client is disconnected (possibly after an error response)
        closed = False
        for _ in range(10):
            if c.is_closed(timeout=scaled(1)):
                closed = True
                break
            c.buf = b""
        assert closed, "stuck connection still open after recd exited"


def test_sigterm_shutdown_delay_keeps_serving_while_not_ready(recd_factory):
    """shutdown_delay_ms: after SIGTERM /readyz says 503 at once, but new
    connections and keep-alive ones are still served until the delay has
    passed; then recd stops accepting, drains and exits 0."""
    delay = 1.5 * scaled(1)
    d = recd_factory({"shutdown_delay_ms": int(delay * 1000)})
    with Raw(d.port, timeout=scaled(5)) as keep:
        keep.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        assert keep.read_response().status == 200
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        time.sleep(0.2)
        r = d.get("/readyz")   # a new connection, accepted
        assert r.status == 503 and r.error()["code"] == "not_ready", r
        assert "shutting down" in r.error()["message"], r
        assert d.get("/healthz").status == 200
        # the keep-alive connection stays usable (not closed as in a drain)
        keep.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        r = keep.read_response()
        assert r.status == 200 and (r.header("Connection") or "").lower() != "close", r
        assert time.monotonic() - t0 < delay, "the checks above took longer than the delay"
        rc = d.wait_exit(delay + scaled(5))
    elapsed = time.monotonic() - t0
    assert rc == 0, (rc, d.log()[-3000:])
    assert elapsed >= delay - 0.05, "exited %.2f s after SIGTERM, before the delay" % elapsed
    assert "shutdown_delay_ms" in d.log()


def test_second_sigterm_cuts_shutdown_delay(recd_factory):
    d = recd_factory({"shutdown_delay_ms": 60000})
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    wait_until(lambda: d.get("/readyz").status == 503, scaled(3), what="/readyz 503")
    d.signal(signal.SIGTERM)
    rc = d.wait_exit(scaled(5))
    assert rc == 0, (rc, d.log()[-3000:])
    assert time.monotonic() - t0 < scaled(5)


def test_sigpipe_ignored(recd_factory):
    d = recd_factory()
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", d.port))
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n" * 50)
        # abortive close: RST while the server is still writing
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    time.sleep(0.2)
    assert d.alive()
    assert d.get("/healthz").status == 200
