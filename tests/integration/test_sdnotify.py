"""systemd notification protocol over NOTIFY_SOCKET."""

import os
import shutil
import signal
import socket
import tempfile
import threading
import time

import pytest

from conftest import scaled, wait_until


class Listener:
    """Collects datagrams on an AF_UNIX socket in a background thread."""

    def __init__(self):
        # short directory: sun_path is limited to 108 bytes
        self.dir = tempfile.mkdtemp(prefix="recd-nfy-", dir="/tmp")
        self.path = os.path.join(self.dir, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.msgs = []  # (monotonic time, {key: value}, raw)
        self.lock = threading.Lock()
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            text = data.decode("utf-8", "replace")
            fields = {}
            for line in text.split("\n"):
                if "=" in line:
                    k, v = line.split("=", 1)
                    fields.setdefault(k, v)
            with self.lock:
                self.msgs.append((time.monotonic(), fields, text))

    def snapshot(self):
        with self.lock:
            return list(self.msgs)

    def index_of(self, key, value=None, start=0):
        for i, (_, f, _) in enumerate(self.snapshot()):
            if i >= start and key in f and (value is None or f[key] == value):
                return i
        return None

    def close(self):
        self.stop = True
        self.thread.join(timeout=2)
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_index(lst, key, value=None, start=0):
    """Index of the first datagram at or after start carrying key[=value]."""
    found = wait_until(lambda: lst.index_of(key, value, start) is not None, scaled(5),
                       what="%s%s datagram" % (key, "=" + value if value else ""))
    assert found
    return lst.index_of(key, value, start)


@pytest.fixture
def notify():
    lst = Listener()
    yield lst
    lst.close()


def test_sd_notify_lifecycle(recd_factory, notify):
    env = dict(os.environ)
    env["NOTIFY_SOCKET"] = notify.path
    env["WATCHDOG_USEC"] = "200000"
    env.pop("WATCHDOG_PID", None)
    d = recd_factory(env=env)

    wait_index(notify, "READY", "1")
    wait_index(notify, "STATUS")
    status = [f["STATUS"] for _, f, _ in notify.snapshot() if "STATUS" in f]
    assert status and all(s.strip() for s in status), status

    # watchdog: every half of 200 ms; at least 2 within a 1 s window
    t0 = time.monotonic()
    time.sleep(1.0 * scaled(1))
    pings = [t for t, f, _ in notify.snapshot() if f.get("WATCHDOG") == "1" and t >= t0]
    assert len(pings) >= 2, "only %d WATCHDOG=1 in %.1fs" % (len(pings), scaled(1))

    # reload: RELOADING=1 then READY=1 again
    n_before = len(notify.snapshot())
    d.signal(signal.SIGHUP)
    i_rel = wait_index(notify, "RELOADING", "1", start=n_before)
    wait_index(notify, "READY", "1", start=i_rel + 1)
    assert d.get("/healthz").status == 200

    # stop
    n_before = len(notify.snapshot())
    d.signal(signal.SIGTERM)
    rc = d.wait_exit(scaled(10))
    assert rc == 0, d.log()[-2000:]
    time.sleep(0.2)
    assert notify.index_of("STOPPING", "1", start=n_before) is not None, \
        [m[2] for m in notify.snapshot()[n_before:]]


def test_no_notify_socket_is_fine(recd_factory):
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    env["WATCHDOG_USEC"] = "200000"
    d = recd_factory(env=env)
    assert d.get("/healthz").status == 200


def test_watchdog_pid_mismatch_disables_watchdog(recd_factory, notify):
    env = dict(os.environ)
    env["NOTIFY_SOCKET"] = notify.path
    env["WATCHDOG_USEC"] = "200000"
    env["WATCHDOG_PID"] = "1"  # not recd: watchdog is meant for another process
    recd_factory(env=env)
    wait_index(notify, "READY", "1")
    time.sleep(0.8)
    pings = [f for _, f, _ in notify.snapshot() if f.get("WATCHDOG") == "1"]
    assert pings == [], "WATCHDOG=1 sent although WATCHDOG_PID names another process"
