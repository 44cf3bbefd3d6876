"""Shared fixtures and helpers for the recd black-box integration tests.

The daemon under test is the binary named by $RECD_BIN (default: bin/recd in
the source tree). Every daemon gets its own JSON config file, its own
loopback ports and its own stderr capture file; the captured log is printed
at teardown so that it shows up in pytest's report when a test fails.

When $RECD_SANITIZED=1 (ASan/UBSan build) every timeout is multiplied by
SLOW and the load test is scaled down.
"""

import copy
import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

RECD_BIN = os.environ.get("RECD_BIN") or os.path.join(ROOT, "bin", "recd")
SANITIZED = os.environ.get("RECD_SANITIZED", "") not in ("", "0")
SLOW = 3.0 if SANITIZED else 1.0

READY_TIMEOUT = 30.0 if SANITIZED else 10.0
STOP_TIMEOUT = 15.0 * SLOW
IO_TIMEOUT = 5.0 * SLOW

HEX16 = re.compile(r"^[0-9a-f]{16}$")


def scaled(seconds):
    """A timeout or bound, stretched for sanitizer builds."""
    return seconds * SLOW


# --------------------------------------------------------------------------
# small utilities
# --------------------------------------------------------------------------

def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def deep_merge(base, extra):
    """Return base updated recursively with extra (dicts merge, rest replace)."""
    out = copy.deepcopy(base)
    for k, v in (extra or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Poll pred() until it returns a truthy value; return it or fail."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    last = pred()
    if last:
        return last
    pytest.fail("timed out after %.1fs waiting for %s" % (timeout, what))


def run_recd(args, timeout=None, env=None):
    """Run recd to completion (CLI tests); returns CompletedProcess."""
    require_binary()
    return subprocess.run(
        [RECD_BIN] + list(args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        timeout=timeout or scaled(20),
        env=env,
        text=True,
        errors="replace",
    )


def require_binary():
    if not os.path.isfile(RECD_BIN) or not os.access(RECD_BIN, os.X_OK):
        pytest.fail("recd binary not found or not executable: %s "
                    "(build it with `make` or set RECD_BIN)" % RECD_BIN)


# --------------------------------------------------------------------------
# HTTP helpers (http.client based)
# --------------------------------------------------------------------------

class _JsonBody:
    """json() and error() shared by both response classes."""

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except Exception as e:  # pragma: no cover - diagnostic path
            raise AssertionError("response body is not JSON (%s): %r" % (e, self.body[:500]))

    def error(self):
        """The {"code","message","field"} object of an error response."""
        doc = self.json()
        assert isinstance(doc, dict) and isinstance(doc.get("error"), dict), \
            "not an error document: %r" % (doc,)
        err = doc["error"]
        for key in ("code", "message", "field"):
            assert key in err, "error object lacks %r: %r" % (key, err)
        assert isinstance(err["message"], str) and err["message"], err
        return err


class Resp(_JsonBody):
    """A complete HTTP response from http.client."""

    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # http.client.HTTPMessage (case-insensitive)
        self.body = body

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def __repr__(self):
        return "<Resp %d %r %r>" % (self.status, dict(self.headers), self.body[:300])


def http_request(host, port, method, path, body=None, headers=None,
                 timeout=None, ssl_context=None):
    """One request on a fresh connection; returns Resp."""
    if ssl_context is not None:
        conn = http.client.HTTPSConnection(host, port, timeout=timeout or IO_TIMEOUT,
                                           context=ssl_context)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout or IO_TIMEOUT)
    try:
        hdrs = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return Resp(r.status, r.reason, r.headers, data)
    finally:
        conn.close()


# --------------------------------------------------------------------------
# raw socket helpers
# --------------------------------------------------------------------------

class ConnectionClosed(Exception):
    """The peer closed before a complete response arrived."""


class RawResp(_JsonBody):
    def __init__(self, version, status, reason, headers, body, raw_head):
        self.version = version
        self.status = status
        self.reason = reason
        self.header_list = headers  # [(name, value)] in order
        self.body = body
        self.raw_head = raw_head

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.header_list:
            if k.lower() == name:
                return v
        return default

    def headers_named(self, name):
        name = name.lower()
        return [v for k, v in self.header_list if k.lower() == name]

    def __repr__(self):
        return "<RawResp %s %d %r body=%r>" % (self.version, self.status,
                                               self.header_list, self.body[:300])


class Raw:
    """A raw TCP (optionally TLS) connection with a response reader that
    keeps a buffer, so pipelined responses can be read one by one."""

    def __init__(self, port, host="127.0.0.1", timeout=None, ssl_context=None,
                 server_hostname=None):
        self.timeout = timeout or IO_TIMEOUT
        s = socket.create_connection((host, port), timeout=self.timeout)
        if ssl_context is not None:
            s = ssl_context.wrap_socket(s, server_hostname=server_hostname)
        self.sock = s
        self.buf = b""
        self.eof = False

    # -- sending -----------------------------------------------------------
    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    # -- receiving ---------------------------------------------------------
    def _fill(self, timeout=None):
        """Read more bytes into buf. Returns False on EOF/reset."""
        if self.eof:
            return False
        self.sock.settimeout(timeout if timeout is not None else self.timeout)
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            self.eof = True
            return False
        except ssl.SSLError:
            self.eof = True
            return False
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def _need(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise ConnectionClosed("closed with %d of %d bytes" % (len(self.buf), n))

    def _line(self):
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionClosed("closed inside a line: %r" % self.buf[:200])
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_response(self, head=False):
        """Read exactly one response (status line, headers, body)."""
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionClosed("closed before a complete response head; got %r"
                                       % self.buf[:500])
        raw_head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = raw_head.decode("latin-1").split("\r\n")
        m = re.match(r"^(HTTP/\d\.\d) (\d{3})(?: (.*))?$", lines[0])
        assert m, "bad status line: %r" % lines[0]
        version, status, reason = m.group(1), int(m.group(2)), m.group(3) or ""
        headers = []
        for ln in lines[1:]:
            assert ":" in ln, "bad response header line %r" % ln
            k, v = ln.split(":", 1)
            headers.append((k.strip(), v.strip()))
        resp = RawResp(version, status, reason, headers, b"", raw_head)
        if head or 100 <= status < 200 or status in (204, 304):
            return resp
        te = resp.header("Transfer-Encoding")
        cl = resp.header("Content-Length")
        if te and "chunked" in te.lower():
            body = b""
            while True:
                size_line = self._line().split(b";")[0].strip()
                size = int(size_line, 16)
                if size == 0:
                    while self._line() != b"":
                        pass
                    break
                self._need(size + 2)
                body += self.buf[:size]
                self.buf = self.buf[size + 2:]
            resp.body = body
        elif cl is not None:
            n = int(cl)
            self._need(n)
            resp.body, self.buf = self.buf[:n], self.buf[n:]
        else:
            while self._fill():
                pass
            resp.body, self.buf = self.buf, b""
        return resp

    def read_final_response(self, head=False):
        """Skip 1xx interim responses."""
        while True:
            r = self.read_response(head=head)
            if r.status >= 200:
                return r

    def is_closed(self, timeout=None):
        """True when the peer closes (EOF or reset) within timeout with no
        further bytes; False when it stays open or sends more data."""
        if self.buf:
            return False
        if self.eof:
            return True
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                got = self._fill(timeout=left)
            except socket.timeout:
                return False
            if not got:
                return True
            if self.buf:
                return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def raw_exchange(port, data, host="127.0.0.1", timeout=None, head=False):
    """Send bytes on a fresh connection, read one response, and report
    whether the server closed afterwards. Returns (resp, closed)."""
    with Raw(port, host=host, timeout=timeout) as c:
        c.send(data)
        resp = c.read_final_response(head=head)
        closed = c.is_closed(timeout=scaled(3))
        return resp, closed


# --------------------------------------------------------------------------
# the daemon
# --------------------------------------------------------------------------

class Recd:
    """One recd process with its own config file, ports and log capture."""

    def __init__(self, workdir, config=None, args=(), env=None, tls=None,
                 admin=True, name="recd"):
        require_binary()
        self.dir = str(workdir)
        os.makedirs(self.dir, exist_ok=True)
        self.name = name
        self.port = free_port()
        self.admin_port = free_port() if admin else None
        while self.admin_port == self.port:
            self.admin_port = free_port()
        data_dir = os.path.join(self.dir, "data")
        models_dir = os.path.join(self.dir, "models")
        os.makedirs(data_dir, exist_ok=True)
        os.makedirs(models_dir, exist_ok=True)
        base = {
            "http": {"listen": "127.0.0.1:%d" % self.port, "workers": 2},
            "admin": {"listen": ("127.0.0.1:%d" % self.admin_port) if admin else ""},
            "log": {"level": "debug"},
            "data_dir": data_dir,
            "models_dir": models_dir,
            # serve whatever models_dir holds: an empty one is ready at once
            "models": {"serve": ""},
        }
        if tls:
            base["tls"] = {"cert": tls[0], "key": tls[1]}
        self.config = deep_merge(base, config)
        self.config_path = os.path.join(self.dir, name + ".json")
        self.stderr_path = os.path.join(self.dir, name + ".stderr")
        self.stdout_path = os.path.join(self.dir, name + ".stdout")
        self.args = list(args)
        self.env = dict(os.environ if env is None else env)
        self.proc = None
        self.ssl_context = None
        self.admin_token = (self.config.get("admin") or {}).get("token") or None
        self.tls = bool(tls)
        if tls:
            # Verify against the self-signed cert (its SAN covers 127.0.0.1).
            self.ssl_context = ssl.create_default_context(cafile=tls[0])
        self.write_config()

    # -- config ------------------------------------------------------------
    def write_config(self, config=None, text=None):
        """Rewrite the config file (dict or raw text)."""
        if config is not None:
            self.config = config
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            if text is not None:
                f.write(text)
            else:
                json.dump(self.config, f, indent=2)
        os.replace(tmp, self.config_path)

    # -- process -------------------------------------------------------------
    def start(self, wait=True):
        self._stderr = open(self.stderr_path, "ab")
        self._stdout = open(self.stdout_path, "ab")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            [RECD_BIN, "-c", self.config_path] + self.args,
            stdin=subprocess.DEVNULL, stdout=self._stdout, stderr=self._stderr,
            env=self.env, cwd=self.dir,
        )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=READY_TIMEOUT):
        deadline = time.monotonic() + timeout
        last_err = None
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                pytest.fail("recd exited with %d during start-up; stderr:\n%s"
                            % (rc, self.log()))
            try:
                r = self.get("/healthz", timeout=1.0 * SLOW)
                if r.status == 200:
                    return
                last_err = "status %d" % r.status
            except (OSError, http.client.HTTPException, ssl.SSLError) as e:
                last_err = repr(e)
            time.sleep(0.05)
        pytest.fail("recd not ready after %.0fs (%s); stderr:\n%s"
                    % (timeout, last_err, self.log()))

    def wait_exit(self, timeout=None):
        """Wait for the process to end; returns its exit code or None."""
        try:
            return self.proc.wait(timeout=timeout if timeout is not None else STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            return None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=None):
        """SIGTERM and wait; returns the exit code (kills -9 and fails if stuck)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            rc = self.wait_exit(timeout)
            if rc is None:
                self.proc.kill()
                self.proc.wait()
                self._close_files()
                pytest.fail("recd did not exit within %.0fs of SIGTERM (killed -9); stderr:\n%s"
                            % (timeout or STOP_TIMEOUT, self.log()))
        self._close_files()
        return self.proc.returncode

    def _close_files(self):
        for f in (getattr(self, "_stderr", None), getattr(self, "_stdout", None)):
            if f is not None and not f.closed:
                f.close()

    def log(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_log(self, pattern, timeout=None, flags=re.I):
        rx = re.compile(pattern, flags)
        return wait_until(lambda: rx.search(self.log()), timeout or scaled(5),
                          what="log line matching %r" % pattern)

    # -- requests ------------------------------------------------------------
    def _target(self, admin):
        if admin:
            assert self.admin_port, "this daemon has no admin listener"
            return self.admin_port, None
        return self.port, self.ssl_context if self.tls else None

    def request(self, method, path, body=None, headers=None, admin=False,
                auth=True, timeout=None):
        port, ctx = self._target(admin)
        hdrs = dict(headers or {})
        if admin and auth and self.admin_token and "Authorization" not in hdrs:
            hdrs["Authorization"] = "Bearer " + self.admin_token
        return http_request("127.0.0.1", port, method, path, body=body, headers=hdrs,
                            timeout=timeout, ssl_context=ctx)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def stats(self):
        r = self.get("/stats")
        assert r.status == 200, r
        return r.json()

    def metrics(self):
        r = self.get("/metrics")
        assert r.status == 200, r
        return r.body.decode("utf-8")

    def raw(self, admin=False, timeout=None):
        port = self.admin_port if admin else self.port
        return Raw(port, timeout=timeout)


def _finish(d, expect_zero=True):
    """Teardown for a daemon: stop it, print its log, check the exit code."""
    if d.proc is None:
        return
    rc = d.stop()
    log = d.log()
    print("----- %s stderr (%s) -----\n%s" % (d.name, d.stderr_path, log[-20000:]))
    if expect_zero and rc != 0:
        pytest.fail("recd exited with %r, expected 0 after SIGTERM; stderr tail:\n%s"
                    % (rc, log[-5000:]))


class RecdFactory:
    """Creates daemons and cleans them up at the end of the test/module."""

    def __init__(self, base_dir):
        self.base_dir = str(base_dir)
        self.daemons = []

    def __call__(self, config=None, start=True, name=None, **kw):
        name = name or "recd%d" % len(self.daemons)
        d = Recd(os.path.join(self.base_dir, name), config=config, name=name, **kw)
        d.expect_zero_exit = True
        self.daemons.append(d)
        if start:
            d.start()
        return d

    def cleanup(self):
        errors = []
        for d in self.daemons:
            try:
                _finish(d, expect_zero=d.expect_zero_exit)
            except BaseException as e:  # keep stopping the others
                errors.append(e)
        if errors:
            raise errors[0]


@pytest.fixture
def recd_factory(tmp_path):
    f = RecdFactory(tmp_path)
    yield f
    f.cleanup()


@pytest.fixture(scope="module")
def module_factory(tmp_path_factory, request):
    f = RecdFactory(tmp_path_factory.mktemp(request.module.__name__.split(".")[-1]))
    yield f
    f.cleanup()


# --------------------------------------------------------------------------
# TLS material
# --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory):
    """A self-signed certificate and key for 127.0.0.1 / localhost."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = str(d / "cert.pem"), str(d / "key.pem")
    try:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
             "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
            check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    except FileNotFoundError:
        pytest.skip("the openssl command-line tool is not installed")
    return cert, key


# --------------------------------------------------------------------------
# Prometheus text parsing
# --------------------------------------------------------------------------

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$')
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


def parse_metrics(text):
    """Returns (samples, helps, types): samples is a list of
    (name, {label: value}, float)."""
    samples, helps, types = [], {}, {}
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("# HELP "):
            parts = line.split(" ", 3)
            helps[parts[2]] = parts[3] if len(parts) > 3 else ""
            continue
        if line.startswith("# TYPE "):
            parts = line.split(" ")
            types[parts[2]] = parts[3]
            continue
        if line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, "unparseable metrics line: %r" % line
        labels = {}
        if m.group(3):
            pos = 0
            body = m.group(3)
            while pos < len(body):
                lm = _LABEL.match(body, pos)
                assert lm, "bad labels in %r" % line
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
        samples.append((m.group(1), labels, float(m.group(4))))
    return samples, helps, types


def metric_value(samples, name, **labels):
    """Sum of samples with this name whose labels include the given ones."""
    vals = [v for n, l, v in samples
            if n == name and all(l.get(k) == want for k, want in labels.items())]
    assert vals, "no sample %s%r" % (name, labels)
    return sum(vals)
