"""Black-box tests of recdctl's admin commands against a real recd: models,
load, pin, unpin, rollback, rescan, train, experiments get|put, reload,
config get; readable output, --json, exit codes (0 ok, 1 recd refused, 2
usage, 3 unreachable / unauthorized / no answer), the admin address and
token from -c, --admin, --token-file and $RECD_ADMIN_TOKEN.

recdctl is the binary next to $RECD_BIN (bin/ of this tree by default).
"""

import json
import os
import re
import socket
import subprocess
import threading
import time

import pytest

from bundlelib import make_bundle
from conftest import RECD_BIN, free_port, scaled, wait_until

RECDCTL = os.path.join(os.path.dirname(RECD_BIN), "recdctl")
TOKEN = "ctl-t0ken-42"

pytestmark = pytest.mark.skipif(not os.access(RECDCTL, os.X_OK),
                                reason=f"{RECDCTL} not built (make bin/recdctl)")


def bundle(models, version):
    return make_bundle(models, version=version, items=300, dim=16, embed=8, seed=version,
                       hidden=32, rank_hidden="16", rank_embed=4)


def ctl(*args, env=None, timeout=None, stdin=None):
    e = dict(os.environ)
    e.pop("RECD_ADMIN_TOKEN", None)
    e.update(env or {})
    return subprocess.run([RECDCTL] + [str(a) for a in args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=e, input=stdin,
                          timeout=timeout or scaled(60), text=True)


def ok(p):
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    return p.stdout


def serving(d):
    r = d.request("GET", "/admin/models", admin=True)
    assert r.status == 200, r
    s = r.json()["models"]["default"]["serving"]
    return s["version"] if s else 0


def pinned(d):
    r = d.request("GET", "/admin/models", admin=True)
    return r.json()["models"]["default"]["pinned"]


def start(factory, models, extra=None):
    cfg = {"models_dir": str(models), "models": {"serve": "default"}}
    for k, v in (extra or {}).items():
        cfg[k] = v
    d = factory(config=cfg)
    wait_until(lambda: d.get("/readyz").status == 200, scaled(30), what="/readyz 200")
    return d


@pytest.fixture
def daemon(recd_factory, tmp_path):
    models = tmp_path / "models"
    bundle(models, 1)
    bundle(models, 2)
    d = start(recd_factory, models)
    d.models = models
    return d


# --------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------

def test_models_table(daemon):
    out = ok(ctl("models", "-c", daemon.config_path))
    lines = out.splitlines()
    assert re.match(r"^MODEL +SERVING +PINNED +PREVIOUS +ON DISK +LAST SWAP +FAILURES$",
                    lines[0]), out
    row = lines[1].split()
    assert row[0] == "default" and row[1] == "2" and row[2] == "no", out
    assert "2 serving" in lines[1] and re.search(r"\b1 (ready|superseded)\b", lines[1]), out
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ 0->2 \(\d+ ms\)", lines[1]), out
    assert re.search(r"watching for new versions: yes", out), out


def test_models_json(daemon):
    out = ok(ctl("models", "--json", "--admin", "127.0.0.1:%d" % daemon.admin_port))
    doc = json.loads(out)
    assert doc["models"]["default"]["serving"]["version"] == 2, doc


def test_models_shows_failure(daemon):
    tb = os.path.join(str(daemon.models), "default", "1", "tensors.bin")
    with open(tb, "r+b") as f:
        f.seek(4096)
        b = f.read(1)
        f.seek(4096)
        f.write(bytes([b[0] ^ 0x5a]))
    p = ctl("load", "default", "1", "-c", daemon.config_path)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "error 422 load_failed" in p.stderr and "tensors.bin" in p.stderr, p.stderr
    out = ok(ctl("models", "-c", daemon.config_path))
    assert "1 failed" in out, out
    assert re.search(r"^default: last failure: version 1 at \S+: .*tensors\.bin", out, re.M), out
    row = out.splitlines()[1].split()
    assert row[1] == "2" and row[-1] == "1", out  # still serving 2; one failed load


# --------------------------------------------------------------------------
# load, pin, unpin, rollback, rescan
# --------------------------------------------------------------------------

def test_load_pin_unpin_rollback(daemon):
    c = ("-c", daemon.config_path)
    out = ok(ctl("load", "default", "1", *c))
    assert out.startswith("default: serving version 1 (was 2), pinned\n"), out
    assert serving(daemon) == 1 and pinned(daemon) == 1
    out = ok(ctl("models", *c))
    assert out.splitlines()[1].split()[2] == "1", out  # PINNED column
    out = ok(ctl("unpin", "default", *c))
    assert out.startswith("default: serving version 2 (was 1), not pinned\n"), out
    assert pinned(daemon) is None
    out = ok(ctl("load", "default", "1", "--no-pin", *c))
    assert out.startswith("default: serving version 1 (was 2), not pinned\n"), out
    assert serving(daemon) == 1 and pinned(daemon) is None
    out = ok(ctl("pin", "default", "2", *c))
    assert out.startswith("default: serving version 2 (was 1), pinned\n"), out
    assert pinned(daemon) == 2
    out = ok(ctl("rollback", "default", *c))
    assert out.startswith("default: serving version 1 (was 2), pinned\n"), out
    assert serving(daemon) == 1 and pinned(daemon) == 1
    p = ctl("rollback", "default", *c)
    assert p.returncode == 1 and p.stdout == "", (p.stdout, p.stderr)
    assert re.search(r"^recdctl rollback: error 404 no_previous_version: ", p.stderr), p.stderr


def test_load_json_answer(daemon):
    out = ok(ctl("load", "default", "1", "--json", "-c", daemon.config_path))
    a = json.loads(out)
    assert a["version"] == 1 and a["previous"] == 2 and a["pinned"] is True, a


def test_rescan(recd_factory, tmp_path):
    models = tmp_path / "models"
    bundle(models, 1)
    d = start(recd_factory, models, {"models": {"serve": "default", "watch": False}})
    bundle(models, 2)
    out = ok(ctl("rescan", "default", "-c", d.config_path))
    assert out.startswith("default: serving version 2 (was 1)\n"), out
    bundle(models, 3)
    out = ok(ctl("rescan", "-c", d.config_path))
    assert re.search(r"rescanned 1 model", out), out
    assert serving(d) == 3


def test_server_refusals_exit_1(daemon):
    c = ("-c", daemon.config_path)
    p = ctl("load", "default", "9", *c)
    assert p.returncode == 1, p
    assert re.search(r"^recdctl load: error 404 unknown_version: .*9.* \(field: version\)$",
                     p.stderr, re.M), p.stderr
    p = ctl("load", "nosuch", "1", *c)
    assert p.returncode == 1 and "error 404 unknown_model" in p.stderr, p.stderr
    p = ctl("unpin", "nosuch", *c)
    assert p.returncode == 1 and "error 404 unknown_model" in p.stderr, p.stderr
    # --json: the error document on stdout as well
    p = ctl("load", "default", "9", "--json", *c)
    assert p.returncode == 1, p
    assert json.loads(p.stdout)["error"]["code"] == "unknown_version", p.stdout
    assert serving(daemon) == 2


def test_model_name_is_percent_encoded(daemon):
    p = ctl("unpin", "a b/../c", "-c", daemon.config_path)
    assert p.returncode == 1 and "unknown_model" in p.stderr, p.stderr


# --------------------------------------------------------------------------
# train, experiments, reload, config
# --------------------------------------------------------------------------

def test_train_disabled(daemon):
    p = ctl("train", "-c", daemon.config_path)
    assert p.returncode == 1, p
    assert "error 404 trainer_disabled" in p.stderr, p.stderr


def test_train_started(recd_factory, tmp_path):
    models = tmp_path / "models"
    bundle(models, 1)
    d = start(recd_factory, models,
              {"trainer": {"enabled": True, "model": "default", "interval_s": 86400}})
    p = ctl("train", "-c", d.config_path)
    if p.returncode == 1 and "trainer_disabled" in p.stderr:
        pytest.skip("this recd does not wire the train hook to its trainer yet")
    assert p.returncode == 0 and p.stdout.startswith("training started"), (p.stdout, p.stderr)
    # at once again: a new cycle, or refused while this one runs
    p = ctl("train", "-c", d.config_path)
    assert p.returncode == 0 or (p.returncode == 1 and "error 409 training_in_progress"
                                 in p.stderr), (p.stdout, p.stderr)


EXPERIMENT = {"name": "ctl-test", "salt": "s1",
              "variants": [{"name": "a", "weight": 50}, {"name": "b", "weight": 50}]}


def test_experiments_get_put(daemon, tmp_path):
    c = ("-c", daemon.config_path)
    out = ok(ctl("experiments", "get", *c))
    assert out == "no experiments\n", out
    f = tmp_path / "exp.json"
    f.write_text(json.dumps({"experiments": [EXPERIMENT]}))
    out = ok(ctl("experiments", "put", f, *c))
    assert out.startswith("experiments replaced: 1 experiment live\n"), out
    assert '"ctl-test"' in out, out
    doc = json.loads(ok(ctl("experiments", "get", "--json", *c)))
    assert [e["name"] for e in doc["experiments"]] == ["ctl-test"], doc
    # from standard input, the array alone
    out = ok(ctl("experiments", "put", "-", *c, stdin=json.dumps([])))
    assert out.startswith("experiments replaced: 0 experiments live"), out
    # recd validates: a bad definition is refused with its field
    bad = dict(EXPERIMENT, variants=[{"name": "a", "weight": -1}])
    f.write_text(json.dumps([bad]))
    p = ctl("experiments", "put", f, *c)
    assert p.returncode == 1 and "error 400 bad_request" in p.stderr, p.stderr
    assert "(field: experiments" in p.stderr, p.stderr
    # local input problems are usage errors: nothing is sent
    f.write_text("{not json")
    p = ctl("experiments", "put", f, *c)
    assert p.returncode == 2 and "not JSON: line 1" in p.stderr, p.stderr
    p = ctl("experiments", "put", tmp_path / "missing.json", *c)
    assert p.returncode == 2 and "cannot open" in p.stderr, p.stderr
    p = ctl("experiments", "put", *c)
    assert p.returncode == 2, p
    p = ctl("experiments", "drop", *c)
    assert p.returncode == 2 and "unknown subcommand" in p.stderr, p.stderr


def test_reload_and_config(daemon):
    c = ("-c", daemon.config_path)
    out = ok(ctl("reload", *c))
    assert out == "configuration reloaded\n", out
    out = ok(ctl("config", "get", *c))
    assert "admin.listen = 127.0.0.1:%d\n" % daemon.admin_port in out, out
    assert re.search(r"^models\.serve = default$", out, re.M), out
    doc = json.loads(ok(ctl("config", "get", "--json", *c)))
    assert doc["http.listen"] == "127.0.0.1:%d" % daemon.port, doc
    # a broken configuration file: recd refuses the reload (exit 1)
    cfg = open(daemon.config_path).read()
    daemon.write_config(text="{")
    p = ctl("reload", "--admin", "127.0.0.1:%d" % daemon.admin_port)
    assert p.returncode == 1 and "error 422 invalid_config" in p.stderr, p.stderr
    daemon.write_config(text=cfg)


# --------------------------------------------------------------------------
# address and token
# --------------------------------------------------------------------------

@pytest.fixture
def secured(recd_factory, tmp_path):
    models = tmp_path / "models"
    bundle(models, 1)
    d = start(recd_factory, models, {"admin": {"listen": "127.0.0.1:%d" % free_port(),
                                               "token": TOKEN}})
    d.admin_port = int(d.config["admin"]["listen"].rsplit(":", 1)[1])
    return d


def test_token_from_config(secured):
    out = ok(ctl("models", "-c", secured.config_path))
    assert out.splitlines()[1].split()[:2] == ["default", "1"], out


def test_token_missing_or_wrong_exit_3(secured, tmp_path):
    a = ("--admin", "127.0.0.1:%d" % secured.admin_port)
    p = ctl("models", *a)
    assert p.returncode == 3, p
    assert "unauthorized" in p.stderr and "none was given" in p.stderr, p.stderr
    p = ctl("models", *a, env={"RECD_ADMIN_TOKEN": "nope"})
    assert p.returncode == 3, p
    assert "unauthorized" in p.stderr and "wrong token" in p.stderr, p.stderr
    assert "$RECD_ADMIN_TOKEN" in p.stderr, p.stderr
    tf = tmp_path / "tok"
    tf.write_text("nope\n")
    p = ctl("load", "default", "1", *a, "--token-file", tf)
    assert p.returncode == 3 and "wrong token" in p.stderr, p.stderr
    # the token file wins over the configuration's token
    p = ctl("models", "-c", secured.config_path, "--token-file", tf)
    assert p.returncode == 3 and "--token-file" in p.stderr, p.stderr


def test_token_sources_accepted(secured, tmp_path):
    a = ("--admin", "127.0.0.1:%d" % secured.admin_port)
    ok(ctl("models", *a, env={"RECD_ADMIN_TOKEN": TOKEN}))
    tf = tmp_path / "tok"
    tf.write_text(TOKEN + "\r\nsecond line ignored\n")
    ok(ctl("models", *a, "--token-file", tf))
    # admin.token_file of the configuration
    cfg = dict(secured.config)
    cfg["admin"] = {"listen": secured.config["admin"]["listen"], "token_file": str(tf)}
    cf = tmp_path / "other.json"
    cf.write_text(json.dumps(cfg))
    ok(ctl("models", "-c", cf))


def test_token_file_problems_exit_2(secured, tmp_path):
    a = ("--admin", "127.0.0.1:%d" % secured.admin_port)
    p = ctl("models", *a, "--token-file", tmp_path / "none")
    assert p.returncode == 2 and "cannot open" in p.stderr, p.stderr
    empty = tmp_path / "empty"
    empty.write_text("\n")
    p = ctl("models", *a, "--token-file", empty)
    assert p.returncode == 2 and "empty" in p.stderr, p.stderr


def test_connection_refused_exit_3(tmp_path):
    port = free_port()
    p = ctl("models", "--admin", "127.0.0.1:%d" % port)
    assert p.returncode == 3, p
    assert "cannot connect" in p.stderr and "Connection refused" in p.stderr, p.stderr
    # the address from a configuration file, named in the message
    cf = tmp_path / "c.json"
    cf.write_text(json.dumps({"admin": {"listen": "127.0.0.1:%d" % port},
                              "http": {"listen": "127.0.0.1:%d" % free_port()}}))
    p = ctl("rollback", "default", "-c", cf)
    assert p.returncode == 3 and "admin.listen of %s" % cf in p.stderr, p.stderr
    cf.write_text(json.dumps({"admin": {"listen": ""}}))
    p = ctl("models", "-c", cf)
    assert p.returncode == 3 and "disabled" in p.stderr, p.stderr


def test_no_answer_times_out_exit_3():
    # a listener that accepts and never answers
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]
    conns = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept)
    t.start()
    try:
        t0 = time.monotonic()
        p = ctl("load", "default", "2", "--admin", "127.0.0.1:%d" % port, "--timeout", "1")
        took = time.monotonic() - t0
        assert p.returncode == 3, p
        assert "no answer" in p.stderr and "within 1 s" in p.stderr, p.stderr
        assert took < 10, took
    finally:
        stop.set()
        t.join()
        for c in conns:
            c.close()
        srv.close()


def test_not_http_exit_3():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]

    def answer():
        c, _ = srv.accept()
        c.recv(4096)
        c.sendall(b"SSH-2.0-OpenSSH_9.0\r\n\r\n")
        c.close()

    t = threading.Thread(target=answer)
    t.start()
    try:
        p = ctl("models", "--admin", "127.0.0.1:%d" % port)
        assert p.returncode == 3 and "did not answer HTTP" in p.stderr, p.stderr
    finally:
        t.join()
        srv.close()


# --------------------------------------------------------------------------
# usage
# --------------------------------------------------------------------------

@pytest.mark.parametrize("args,msg", [
    (["load", "default"], "missing argument"),
    (["load", "default", "abc"], "not a version"),
    (["load", "default", "0"], "not a version"),
    (["load", "default", "1", "2"], "unexpected argument"),
    (["pin", "default", "1", "--no-pin"], "unknown option"),
    (["rollback"], "missing argument"),
    (["unpin", "a", "b"], "unexpected argument"),
    (["models", "extra"], "unexpected argument"),
    (["models", "--bogus"], "unknown option"),
    (["models", "--admin"], "needs a value"),
    (["models", "--admin", "nohostport"], "not HOST:PORT"),
    (["models", "--timeout", "0"], "--timeout"),
    (["config"], "missing subcommand"),
    (["config", "set"], "unknown subcommand"),
    (["nosuchcommand"], "unknown command"),
])
def test_usage_errors_exit_2(args, msg):
    p = ctl(*args)
    assert p.returncode == 2, (args, p.stdout, p.stderr)
    assert msg in p.stderr, (args, p.stderr)


def test_help():
    out = ok(ctl("--help"))
    for c in ("models", "load", "pin", "unpin", "rollback", "rescan", "train", "experiments",
              "reload", "config", "events"):
        assert re.search(r"^  %s " % c, out, re.M), (c, out)
    out = ok(ctl("load", "--help"))
    assert "usage: recdctl load NAME VERSION [--no-pin]" in out, out
    assert "--token-file" in out and "Exit status" in out, out
