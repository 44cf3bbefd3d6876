"""Command line: --version, --help, --check-config, --set, exit codes."""

import json
import re
import signal
import socket

import pytest

from conftest import free_port, run_recd, scaled


def write_json(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f)
    return str(path)


@pytest.fixture
def good_config(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "models").mkdir()
    doc = {
        "http": {"listen": "127.0.0.1:%d" % free_port(), "workers": 2},
        "admin": {"listen": "127.0.0.1:%d" % free_port()},
        "log": {"level": "info"},
        "data_dir": str(tmp_path / "data"),
        "models_dir": str(tmp_path / "models"),
    }
    return doc


def check(tmp_path, doc, *extra):
    path = write_json(tmp_path / "c.json", doc)
    return run_recd(["-c", path, "--check-config"] + list(extra))


def test_version():
    r = run_recd(["--version"])
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0] if r.stdout else ""
    assert first.startswith("recd 0.1.0"), r.stdout


def test_help():
    r = run_recd(["--help"])
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "usage" in out.lower(), out
    for opt in ("--set", "--check-config", "--version"):
        assert opt in out, "%s missing from --help output:\n%s" % (opt, out)


def test_unknown_option_exits_2():
    r = run_recd(["--frobnicate"])
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "frobnicate" in r.stderr, r.stderr


def test_missing_option_argument_exits_2():
    r = run_recd(["-c"])
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.strip(), "expected a message on stderr"


def test_check_config_valid(tmp_path, good_config):
    r = check(tmp_path, good_config)
    assert r.returncode == 0, r.stderr


def test_check_config_unknown_key(tmp_path, good_config):
    good_config["http"]["lisen"] = "127.0.0.1:1"
    r = check(tmp_path, good_config)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "http.lisen" in r.stderr, r.stderr


def test_check_config_out_of_range(tmp_path, good_config):
    good_config["http"]["workers"] = 9999
    r = check(tmp_path, good_config)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "http.workers" in r.stderr, r.stderr


@pytest.mark.parametrize("value", [257, -1])
def test_check_config_workers_bounds(tmp_path, good_config, value):
    good_config["http"]["workers"] = value
    r = check(tmp_path, good_config)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "http.workers" in r.stderr, r.stderr


@pytest.mark.parametrize("value", [0, 256])
def test_check_config_workers_bounds_inclusive(tmp_path, good_config, value):
    good_config["http"]["workers"] = value
    r = check(tmp_path, good_config)
    assert r.returncode == 0, (value, r.stderr)


def test_check_config_wrong_type(tmp_path, good_config):
    good_config["http"]["workers"] = "two"
    r = check(tmp_path, good_config)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "http.workers" in r.stderr, r.stderr


def test_check_config_reports_every_error(tmp_path, good_config):
    good_config["http"]["lisen"] = "x"
    good_config["http"]["workers"] = 9999
    good_config["log"]["level"] = "chatty"
    r = check(tmp_path, good_config)
    assert r.returncode == 1, (r.returncode, r.stderr)
    for key in ("http.lisen", "http.workers", "log.level"):
        assert key in r.stderr, "%s not reported:\n%s" % (key, r.stderr)


def test_check_config_malformed_json_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "http": {\n    "workers": 2,,\n  }\n}\n')
    r = run_recd(["-c", str(path), "--check-config"])
    assert r.returncode == 1, (r.returncode, r.stderr)
    err = r.stderr.lower()
    # line 3 holds the error; accept "line 3 column N" or "file:3:N".
    assert re.search(r"line\W*3\b", err) or re.search(r":3:\d+", err), r.stderr
    assert "column" in err or "col" in err or re.search(r":3:\d+", err), r.stderr


def test_check_config_set_unknown_key(tmp_path, good_config):
    r = check(tmp_path, good_config, "--set", "nosuch.key=1")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "nosuch.key" in r.stderr, r.stderr


def test_check_config_set_bad_value(tmp_path, good_config):
    r = check(tmp_path, good_config, "--set", "http.workers=lots")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "http.workers" in r.stderr, r.stderr


def test_check_config_set_is_validated(tmp_path, good_config):
    # A valid file plus an out-of-range override must be rejected.
    r = check(tmp_path, good_config, "--set", "http.workers=9999")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "http.workers" in r.stderr, r.stderr


def test_check_config_missing_file(tmp_path):
    missing = str(tmp_path / "nope.json")
    r = run_recd(["-c", missing, "--check-config"])
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "nope.json" in r.stderr, r.stderr


def test_start_with_bad_config_exits_1(tmp_path, good_config):
    good_config["http"]["lisen"] = "x"
    path = write_json(tmp_path / "c.json", good_config)
    r = run_recd(["-c", path])
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "http.lisen" in r.stderr, r.stderr


def test_start_with_unknown_set_key_exits_1(tmp_path, good_config):
    path = write_json(tmp_path / "c.json", good_config)
    r = run_recd(["-c", path, "--set", "nosuch.key=1"])
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "nosuch.key" in r.stderr, r.stderr


def test_address_in_use_exits_1(tmp_path, good_config):
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    try:
        good_config["http"]["listen"] = "127.0.0.1:%d" % port
        path = write_json(tmp_path / "c.json", good_config)
        r = run_recd(["-c", path])
        assert r.returncode == 1, (r.returncode, r.stderr)
        err = r.stderr.lower()
        assert str(port) in err or "in use" in err, r.stderr
    finally:
        blocker.close()


def test_set_overrides_listen_address(recd_factory):
    port = free_port()
    d = recd_factory(start=False)
    d.args = ["--set", "http.listen=127.0.0.1:%d" % port]
    d.port = port
    d.start()
    r = d.get("/healthz")
    assert r.status == 200
    assert d.request("GET", "/admin/config", admin=True).json()["http.listen"] == \
        "127.0.0.1:%d" % port


def test_set_repeatable(recd_factory):
    d = recd_factory(start=False)
    d.args = ["--set", "http.workers=3", "--set", "log.level=warn"]
    d.start()
    cfg = d.request("GET", "/admin/config", admin=True).json()
    assert cfg["log.level"] == "warn"
    assert cfg["http.workers"] == 3
    assert d.stats()["workers"] == 3


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_exits_0(recd_factory, sig):
    d = recd_factory()
    d.signal(sig)
    rc = d.wait_exit(scaled(10))
    assert rc == 0, (rc, d.log())
