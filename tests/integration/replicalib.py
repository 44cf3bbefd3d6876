"""Helpers for the scale-out tests (test_replicas.py): the shipped proxy
configurations rendered for the test's ports, nginx and HAProxy run as
children of the test, a multi-threaded load client that records every
response, and HAProxy's stats CSV.

Rendering is plain text substitution of the example addresses and paths
the shipped files document in their headers (conf/nginx-recd.conf,
conf/haproxy-recd.cfg); every string to replace must occur in the file,
so a config that drifts from its documented form fails loudly here.
"""

import csv
import http.client
import io
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import ROOT, scaled, wait_until

NGINX_CONF = os.path.join(ROOT, "conf", "nginx-recd.conf")
HAPROXY_CONF = os.path.join(ROOT, "conf", "haproxy-recd.cfg")

# The example addresses in the shipped files.
EXAMPLE_R1 = "127.0.0.1:8080"
EXAMPLE_R2 = "127.0.0.1:8082"


def find_program(name):
    """Path of an installed program (also in the sbin directories, which a
    non-root PATH may lack), or None."""
    path = shutil.which(name)
    if path:
        return path
    for d in ("/usr/sbin", "/sbin", "/usr/local/sbin"):
        p = os.path.join(d, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def require_program(name, package):
    path = find_program(name)
    if not path:
        pytest.skip("%s is not installed (Debian package %s; scripts/deps.sh test installs it)"
                    % (name, package))
    return path


def substitute(text, mapping, what):
    """Replace every key of mapping by its value; each key must occur."""
    for old, new in mapping.items():
        assert old in text, "%s: %r not found (the file no longer has its documented form)" \
            % (what, old)
        text = text.replace(old, new)
    return text


def read(path):
    with open(path) as f:
        return f.read()


def wait_port(port, timeout, proc=None, log=None):
    """Wait until 127.0.0.1:port accepts a connection."""
    def up():
        if proc is not None and proc.poll() is not None:
            pytest.fail("process exited with %s while starting; log:\n%s"
                        % (proc.returncode, log() if log else ""))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False
    wait_until(up, timeout, what="127.0.0.1:%d to accept connections" % port)


# --------------------------------------------------------------------------
# nginx
# --------------------------------------------------------------------------

def render_nginx(text, tmpdir, listen_port, r1, r2):
    """The shipped nginx configuration with the test's addresses and every
    path nginx writes moved under tmpdir. r1, r2: "host:port"."""
    out = substitute(text, {
        EXAMPLE_R1: r1,
        EXAMPLE_R2: r2,
        "listen 8000;": "listen 127.0.0.1:%d;" % listen_port,
    }, "nginx config")
    return render_nginx_paths(out, tmpdir)


def render_nginx_paths(text, tmpdir):
    """Only the paths: pid file, logs, temp directories under tmpdir."""
    out = substitute(text, {
        "/run/nginx-recd.pid": os.path.join(tmpdir, "nginx.pid"),
        "/var/log/nginx/": tmpdir + "/",
        "/var/lib/nginx/": tmpdir + "/",
    }, "nginx config")
    if os.geteuid() == 0:
        # As root the workers switch to the "user" of the file (www-data).
        # They need no file access here (logs are opened by the master,
        # request bodies stay in memory), but the user must exist.
        try:
            pwd.getpwnam("www-data")
        except KeyError:
            out = substitute(out, {"user www-data;": "user root;"}, "nginx config")
    return out


class Nginx:
    """nginx in the foreground as a child of the test."""

    def __init__(self, tmpdir, conf_text, port):
        self.bin = require_program("nginx", "nginx-light")
        self.dir = str(tmpdir)
        os.makedirs(self.dir, exist_ok=True)
        self.port = port
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf_text)
        self.stderr_path = os.path.join(self.dir, "nginx.stderr")
        self.proc = None

    def check(self):
        return subprocess.run([self.bin, "-t", "-p", self.dir + "/", "-c", self.conf],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=scaled(20), text=True, errors="replace")

    def start(self):
        self._err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(
            [self.bin, "-p", self.dir + "/", "-c", self.conf, "-g", "daemon off;"],
            stdin=subprocess.DEVNULL, stdout=self._err, stderr=self._err, cwd=self.dir)
        wait_port(self.port, scaled(10), self.proc, self.log)
        return self

    def log(self):
        parts = []
        for name in ("nginx.stderr", "recd-error.log"):
            p = os.path.join(self.dir, name)
            if os.path.exists(p):
                parts.append("--- %s ---\n%s" % (name, read(p)[-8000:]))
        return "\n".join(parts)

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # fast shutdown
        try:
            self.proc.wait(timeout=scaled(10))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._err.close()


# --------------------------------------------------------------------------
# HAProxy
# --------------------------------------------------------------------------

def render_haproxy(text, listen_port, stats_port, r1, r2):
    return substitute(text, {
        EXAMPLE_R1: r1,
        EXAMPLE_R2: r2,
        "bind :8000": "bind 127.0.0.1:%d" % listen_port,
        "bind 127.0.0.1:8404": "bind 127.0.0.1:%d" % stats_port,
    }, "haproxy config")


class HAProxy:
    """HAProxy in the foreground (-db) as a child of the test; its log
    (the file logs to stdout) is captured."""

    def __init__(self, tmpdir, conf_text, port, stats_port):
        self.bin = require_program("haproxy", "haproxy")
        self.dir = str(tmpdir)
        os.makedirs(self.dir, exist_ok=True)
        self.port = port
        self.stats_port = stats_port
        self.conf = os.path.join(self.dir, "haproxy.cfg")
        with open(self.conf, "w") as f:
            f.write(conf_text)
        self.log_path = os.path.join(self.dir, "haproxy.log")
        self.proc = None

    def start(self):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.bin, "-db", "-f", self.conf],
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=self._log, cwd=self.dir)
        wait_port(self.port, scaled(10), self.proc, self.log)
        wait_port(self.stats_port, scaled(10), self.proc, self.log)
        return self

    def log(self):
        return read(self.log_path)[-8000:] if os.path.exists(self.log_path) else ""

    def stats(self):
        """{(backend, server): row dict} from the stats page's CSV."""
        conn = http.client.HTTPConnection("127.0.0.1", self.stats_port, timeout=scaled(5))
        try:
            conn.request("GET", "/;csv")
            r = conn.getresponse()
            body = r.read().decode()
            assert r.status == 200, (r.status, body[:300])
        finally:
            conn.close()
        assert body.startswith("# "), body[:200]
        rows = csv.DictReader(io.StringIO(body[2:]))
        return {(row["pxname"], row["svname"]): row for row in rows}

    def status(self, backend, server):
        return self.stats()[(backend, server)]["status"]

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=scaled(10))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


# --------------------------------------------------------------------------
# load through the proxy
# --------------------------------------------------------------------------

class Result:
    __slots__ = ("t0", "t1", "kind", "status", "upstreams", "error", "events", "variant",
                 "rid")

    def __init__(self, t0, t1, kind, status=None, upstreams=(), error=None, events=(),
                 variant=None, rid=None):
        self.t0, self.t1, self.kind, self.status = t0, t1, kind, status
        self.upstreams, self.error, self.events = upstreams, error, events
        self.variant, self.rid = variant, rid

    @property
    def ok(self):
        return self.error is None and self.status is not None and 200 <= self.status < 300

    @property
    def answered_by(self):
        return self.upstreams[-1] if self.upstreams else None

    def __repr__(self):
        return "<%s %.3f-%.3f %s %s %s>" % (self.kind, self.t0, self.t1, self.status,
                                            ",".join(self.upstreams), self.error)


def upstream_list(value):
    """X-Recd-Upstream: nginx's $upstream_addr ("a, b" after a retry, with
    " : " between internal redirects) or HAProxy's single server."""
    if not value:
        return ()
    return tuple(p.strip() for p in value.replace(" : ", ", ").split(",") if p.strip())


class Load:
    """threads client threads, each with one keep-alive connection to the
    proxy, sending /v1/recommend, /v1/score and /v1/events (batches of
    batch events, each with a unique user id "<tag>-<thread>-<seq>-<j>")
    in turn until stop(). Every request is recorded (a transport error is
    a failure like a non-2xx status)."""

    KINDS = ("recommend", "score", "events")

    def __init__(self, port, tag, threads=4, batch=5, timeout=None):
        self.port = port
        self.tag = tag
        self.nthreads = threads
        self.batch = batch
        self.timeout = timeout or scaled(15)
        self.results = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = []

    def start(self):
        for i in range(self.nthreads):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=self.timeout + scaled(5))
            assert not t.is_alive(), "a load thread is stuck"

    def _build(self, kind, n, thread):
        """(path, body, event ids) of the n-th request of a thread."""
        user = "%s-u%d" % (self.tag, n % 500)
        if kind == "recommend":
            return "/v1/recommend", {"user_id": user, "k": 5}, ()
        if kind == "score":
            return "/v1/score", {"user_id": user, "items": ["i1", "i2", "i3"]}, ()
        events = tuple("%s-%d-%d-%d" % (self.tag, thread, n, j) for j in range(self.batch))
        body = {"events": [{"user_id": u, "item_id": "i%d" % (n % 50), "type": "click"}
                           for u in events]}
        return "/v1/events", body, events

    def _run(self, thread):
        conn = None
        n = 0
        while not self.stopping.is_set():
            kind = self.KINDS[(n + thread) % 3]
            n += 1
            path, body, events = self._build(kind, n, thread)
            res = Result(time.monotonic(), None, kind, events=events)
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                conn.request("POST", path, body=json.dumps(body).encode(),
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                res.status = r.status
                res.upstreams = upstream_list(r.getheader("X-Recd-Upstream"))
                res.variant = r.getheader("X-Recd-Variant")
                res.rid = r.getheader("X-Request-Id")
                if not 200 <= r.status < 300:
                    res.error = "HTTP %d: %r" % (r.status, data[:300])
                elif kind == "events" and json.loads(data) != {"accepted": self.batch}:
                    res.error = "unexpected 2xx answer %r" % data[:300]
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                conn = None
                res.error = repr(e)
            res.t1 = time.monotonic()
            with self.lock:
                self.results.append(res)
        if conn is not None:
            conn.close()

    # -- views -------------------------------------------------------------
    def snapshot(self):
        with self.lock:
            return list(self.results)

    def answered_since(self, t, addr):
        """Responses started at or after t and answered by addr."""
        return [r for r in self.snapshot() if r.t0 >= t and r.ok and r.answered_by == addr]

    def acked_events(self):
        """Event ids whose batch got a 202, in order."""
        out = []
        for r in self.snapshot():
            if r.kind == "events" and r.ok:
                out.extend(r.events)
        return out
