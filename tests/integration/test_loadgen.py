"""recd-load, the open-loop load generator (loadtest/recd-load.c), against a
real recd on loopback serving a small bundle from bin/recd-train
synth-bundle.

What is checked: the report's per-endpoint and status counts equal the
change in recd's own /stats over the run (requests by status class per
endpoint, accepted events, accepted connections); a server stall (SIGSTOP)
shows up in latency measured from the intended send time, not only in
service time (no coordinated omission); the schedule's rate in --dry-run;
--dump's lines; the errors of bad arguments and scenarios; a target with
nothing listening (exit 1); SIGINT (a report of what was done); a server
that dies mid-run (connection errors, not a crash); a server that closes
every connection (reconnects).

Under the sanitizer build (RECD_SANITIZED=1) rates are divided by SLOW;
recd-load is then the ASan build next to $RECD_BIN, so a leak or UB in it
fails its exit status.
"""

import json
import os
import re
import signal
import subprocess
import time

import pytest

from bundlelib import make_bundle
from conftest import RECD_BIN, ROOT, SLOW, free_port, scaled, wait_until

N_ITEMS = 200
ENDPOINTS = {"recommend": "/v1/recommend", "score": "/v1/score",
             "similar": "/v1/similar/{item_id}", "events": "/v1/events"}


def load_bin():
    """$RECD_LOAD_BIN, else recd-load next to the daemon under test, else
    the tree's bin/recd-load."""
    env = os.environ.get("RECD_LOAD_BIN")
    cands = [env] if env else [os.path.join(os.path.dirname(RECD_BIN), "recd-load"),
                               os.path.join(ROOT, "bin", "recd-load")]
    for c in cands:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    pytest.fail("recd-load not found (%s); build it with `make`" % ", ".join(cands))


def rate(r):
    """A request rate, scaled down for sanitizer builds."""
    return max(1.0, r / SLOW)


def run_load(args, timeout=None, check=True):
    p = subprocess.run([load_bin()] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                       errors="replace", timeout=timeout or scaled(30))
    if check:
        assert p.returncode == 0, "recd-load exited %d:\n%s\n%s" % (p.returncode, p.stdout,
                                                                    p.stderr)
    return p


def scenario(path, bundle_dir, **over):
    doc = {
        "name": "itest",
        "bundle": bundle_dir,
        "mix": {"recommend": 80, "score": 5, "similar": 5, "events": 10},
        "users": {"count": 300, "prefix": "u", "zipf_s": 0.9, "cold_pct": 10},
        "items": {"zipf_s": 1.1, "by": "popularity"},
        "history": {"send_pct": 50, "median": 5, "sigma": 1.0, "max": 20},
        "recommend": {"k": 10, "candidates": 50},
        "score": {"items": 20},
        "similar": {"k": 5},
        "events": {"batch": 5},
        "features": {"gender": ["F", "M"], "age": {"min": 13, "max": 70}},
        "context": {"device": ["mobile", "desktop", "tablet", "tv"]},
    }
    doc.update(over)
    with open(path, "w") as f:
        json.dump(doc, f)
    return str(path)


def ep_counts(stats):
    out = {}
    for name, path in ENDPOINTS.items():
        req = stats["endpoints"].get(path, {}).get("requests", {})
        out[name] = {k: req.get(k, 0) for k in ("total", "2xx", "4xx", "5xx")}
    return out


def status_classes(status):
    cls = {"2xx": 0, "4xx": 0, "5xx": 0}
    for code, n in status.items():
        c = "%sxx" % code[0]
        cls[c] = cls.get(c, 0) + n
    return cls


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    m = tmp_path_factory.mktemp("loadgen_models")
    make_bundle(m, name="default", items=N_ITEMS, dim=16, embed=8, hidden="32",
                rank_hidden="16", rank_embed=4, seed=3, index="Flat")
    return str(m)


def recd_config(models, **extra):
    cfg = {"models_dir": models, "models": {"serve": "", "default": "default"},
           "events": {"fsync": "never"}, "log": {"level": "info"}}
    cfg.update(extra)
    return cfg


@pytest.fixture(scope="module")
def d(module_factory, models):
    d = module_factory(config=recd_config(models), name="loadgen")
    wait_until(lambda: d.get("/readyz").status == 200, scaled(30), what="/readyz 200")
    return d


@pytest.fixture
def scn(tmp_path, models):
    """Write a scenario for the test's bundle; returns its path."""
    def mk(**over):
        return scenario(tmp_path / "scenario.json", os.path.join(models, "default"), **over)
    return mk


def target(d):
    return "127.0.0.1:%d" % d.port


# --------------------------------------------------------------------------
# counts against recd's /stats
# --------------------------------------------------------------------------

def check_against_stats(rep, before, after):
    b, a = ep_counts(before), ep_counts(after)
    req = rep["requests"]
    assert req["not_sent"] == 0 and req["timeouts"] == 0 and req["conn_errors"] == 0, req
    assert req["sent"] == req["scheduled"] == req["completed"], req
    assert req["completed"] == req["ok"] + req["http_errors"]
    total_status = {}
    for name in ENDPOINTS:
        e = rep["endpoints"][name]
        delta = {k: a[name][k] - b[name][k] for k in a[name]}
        cls = status_classes(e["status"])
        assert e["completed"] == delta["total"], (name, e, delta)
        assert e["ok"] == delta["2xx"] == cls["2xx"], (name, e, delta)
        assert cls["4xx"] == delta["4xx"] and cls["5xx"] == delta["5xx"], (name, e, delta)
        assert e["scheduled"] == e["completed"]
        assert e["latency_us"]["count"] == e["completed"]
        for code, n in e["status"].items():
            total_status[code] = total_status.get(code, 0) + n
    assert rep["status"] == total_status
    assert sum(rep["endpoints"][n]["completed"] for n in ENDPOINTS) == req["completed"]
    # every individual event of the accepted batches was accepted by recd
    acc = after["events"]["accepted"]["events"] - before["events"]["accepted"]["events"]
    assert rep["endpoints"]["events"]["events_sent"] == acc
    assert acc == 5 * rep["endpoints"]["events"]["ok"]
    # recd-load opened no other connection (+1: the /stats call after the run)
    opened = after["connections"]["accepted"] - before["connections"]["accepted"]
    assert opened == rep["connections_opened"] + 1, (opened, rep["connections_opened"])


def test_counts_match_recd_stats(d, scn, tmp_path):
    r = rate(200)
    out = tmp_path / "report.json"
    before = d.stats()
    p = run_load(["--target", target(d), "--scenario", scn(), "--rate", r, "--duration", 2.5,
                  "--json", out])
    after = d.stats()
    rep = json.loads(out.read_text())
    check_against_stats(rep, before, after)
    req = rep["requests"]
    # every body the generator built is one recd accepts
    assert req["ok"] == req["completed"] > 0, rep["status"]
    assert set(rep["status"]) <= {"200", "202"}
    # the schedule: about rate x duration requests, in about the mix's shares
    assert abs(req["scheduled"] / (r * 2.5) - 1) < 0.15, (req, r)
    assert abs(rep["scheduled_rps"] / r - 1) < 0.15
    share = rep["endpoints"]["recommend"]["scheduled"] / req["scheduled"]
    assert 0.7 < share < 0.9, share
    assert abs(rep["offered_rps"] - r) < 1e-9 * r  # 12 significant digits
    assert rep["arrival"] == "poisson" and rep["seed"] == 1
    assert rep["bundle"]["items"] == N_ITEMS and rep["bundle"]["version"] == 1
    assert rep["target"] == target(d) and rep["scenario"] == "itest"
    assert 2.3 < rep["duration_s"] < 2.5 + scaled(1.0)
    assert abs(rep["throughput_rps"] - req["completed"] / rep["duration_s"]) < 1e-6 * r
    for h in (rep["latency_us"], rep["service_us"]):
        assert h["count"] == req["completed"]
        assert 0 < h["p50"] <= h["p90"] <= h["p99"] <= h["p999"] <= h["max"]
    # latency counts from the intended time, so it is never below service time
    assert rep["latency_us"]["max"] >= rep["service_us"]["max"]
    # the table
    for word in ("endpoint", "recommend", "similar", "total", "p99.9", "status: "):
        assert word in p.stdout, p.stdout


def test_http_errors_counted(recd_factory, models, scn, tmp_path):
    """recd answers 400 to score requests over rank.max_items: the report
    counts them as http errors, exactly as /stats does."""
    cfg = recd_config(models)
    cfg["rank"] = {"max_items": 15}
    d = recd_factory(config=cfg, name="maxitems")
    wait_until(lambda: d.get("/readyz").status == 200, scaled(30), what="/readyz 200")
    out = tmp_path / "report.json"
    before = d.stats()
    run_load(["--target", target(d), "--scenario",
              scn(mix={"recommend": 50, "score": 40, "similar": 5, "events": 5}),
              "--rate", rate(150), "--duration", 1.5, "--json", out, "--quiet"])
    after = d.stats()
    rep = json.loads(out.read_text())
    check_against_stats(rep, before, after)
    score = rep["endpoints"]["score"]
    assert score["completed"] > 0 and score["ok"] == 0
    assert score["status"] == {"400": score["completed"]}
    assert rep["requests"]["http_errors"] == score["completed"]
    assert rep["endpoints"]["recommend"]["ok"] == rep["endpoints"]["recommend"]["completed"]


# --------------------------------------------------------------------------
# coordinated omission
# --------------------------------------------------------------------------

def test_stall_shows_in_latency_not_only_service(d, scn, tmp_path):
    out = tmp_path / "report.json"
    # not scaled for sanitizer builds: p99 needs a few hundred requests, and
    # 100 small recommendations a second on one connection is light for them
    r = 100
    proc = subprocess.Popen([load_bin(), "--target", target(d), "--scenario",
                             scn(mix={"recommend": 1}), "--rate", str(r), "--arrival",
                             "constant", "--connections", "1", "--duration", "2.5",
                             "--json", str(out), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.8)
        d.signal(signal.SIGSTOP)
        # 450 ms: the first request scheduled after the stop waits at least
        # 450 ms minus one inter-arrival gap (10 ms; 30 ms under SLOW)
        time.sleep(0.45)
    finally:
        d.signal(signal.SIGCONT)
    so, se = proc.communicate(timeout=scaled(30))
    assert proc.returncode == 0, se
    rep = json.loads(out.read_text())
    lat, svc = rep["latency_us"], rep["service_us"]
    assert rep["connections_opened"] == 1
    assert rep["requests"]["completed"] == rep["requests"]["scheduled"], rep["requests"]
    # the stall is in the latency from the intended send time...
    assert lat["max"] >= 400000, lat
    # ...and it hits every request scheduled during it (about 45 of 250),
    # not only the one in flight, so p99 is far above the service time's p99
    assert lat["p99"] >= 250000, lat
    assert lat["p99"] > 4 * svc["p99"], (lat, svc)
    # only the request in flight during the stop waited in service
    assert svc["p90"] < 100000, svc


# --------------------------------------------------------------------------
# dry run and dump
# --------------------------------------------------------------------------

@pytest.mark.parametrize("arrival", ["constant", "poisson"])
def test_dry_run_schedule_rate(scn, arrival):
    p = run_load(["--scenario", scn(), "--rate", 2000, "--arrival", arrival, "--dry-run",
                  "--requests", 10000, "--duration", 3600, "--json", "-", "--quiet"])
    rep = json.loads(p.stdout)
    assert rep["requests"]["scheduled"] == 10000
    assert rep["requests"]["sent"] == 0 and rep["requests"]["completed"] == 0
    assert rep["target"] is None and rep["arrival"] == arrival and rep["seed"] == 1
    assert abs(rep["scheduled_rps"] / 2000 - 1) < 0.01, rep["scheduled_rps"]
    if arrival == "constant":
        assert abs(rep["scheduled_rps"] - 2000) < 1e-6
    assert sum(e["scheduled"] for e in rep["endpoints"].values()) == 10000


def test_dry_run_bounds_and_warmup(scn):
    # constant 100/s: 1 s of warmup excluded, 2 s counted
    p = run_load(["--scenario", scn(), "--rate", 100, "--arrival", "constant", "--dry-run",
                  "--warmup", 1, "--duration", 2, "--json", "-", "--quiet"])
    rep = json.loads(p.stdout)
    assert rep["requests"]["scheduled"] == 200
    assert abs(rep["duration_s"] - 1.99) < 1e-6
    # --requests bounds first when it is smaller
    p = run_load(["--scenario", scn(), "--rate", 100, "--dry-run", "--requests", 37,
                  "--json", "-", "--quiet"])
    assert json.loads(p.stdout)["requests"]["scheduled"] == 37
    # the table goes to stderr when the JSON goes to stdout
    p = run_load(["--scenario", scn(), "--rate", 100, "--dry-run", "--duration", 1,
                  "--json", "-"])
    assert json.loads(p.stdout)["tool"] == "recd-load"
    assert "dry run" in p.stderr and "requests scheduled" in p.stderr


TS = re.compile(r'"ts":\d+')


def test_dump(scn, tmp_path, models):
    out = tmp_path / "dump.tsv"
    run_load(["--scenario", scn(), "--dump", out, "--requests", 4000])
    lines = out.read_text().split("\n")
    assert lines[-1] == ""
    lines = lines[:-1]
    assert len(lines) == 4000
    ids = set()
    with open(os.path.join(models, "default", "1", "items.tsv")) as f:
        for ln in f.read().split("\n")[1:]:
            if ln:
                ids.add(ln.split("\t")[0])
    kinds = {"recommend": 0, "score": 0, "similar": 0, "events": 0}
    for ln in lines:
        method, path, body = ln.split("\t")
        if method == "GET":
            assert body == ""
            m = re.match(r"^/v1/similar/([^?/]+)\?k=5$", path)
            assert m, path
            assert m.group(1) in ids
            kinds["similar"] += 1
            continue
        assert method == "POST"
        doc = json.loads(body)
        if path == "/v1/recommend":
            kinds["recommend"] += 1
            assert doc["k"] == 10 and doc["candidates"] == 50
            assert set(doc.get("history", [])) <= ids
        elif path == "/v1/score":
            kinds["score"] += 1
            assert len(doc["items"]) == 20 and set(doc["items"]) <= ids
        else:
            assert path == "/v1/events"
            kinds["events"] += 1
            assert len(doc["events"]) == 5
    for name, want in (("recommend", 0.80), ("score", 0.05), ("similar", 0.05),
                       ("events", 0.10)):
        assert abs(kinds[name] / 4000 - want) < 0.025, kinds
    # the same seed gives the same requests (event timestamps aside); "-" is stdout
    p = run_load(["--scenario", scn(), "--dump", "-", "--requests", 4000])
    assert TS.sub("", p.stdout) == TS.sub("", out.read_text())
    p = run_load(["--scenario", scn(), "--dump", "-", "--requests", 4000, "--seed", 2])
    assert TS.sub("", p.stdout) != TS.sub("", out.read_text())


# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------

BAD_ARGS = [
    (["--target", "127.0.0.1:1", "@S"], 2, "--rate"),
    (["--target", "127.0.0.1:1", "@S", "--rate", "-5"], 2, "--rate"),
    (["--target", "127.0.0.1:1", "@S", "--rate", "fast"], 2, "--rate"),
    (["--target", "127.0.0.1:1", "@S", "--rate"], 2, "--rate"),
    (["@S", "--rate", "10"], 2, "--target"),
    (["--target", "localhost", "@S", "--rate", "10"], 2, "--target"),
    (["--target", "127.0.0.1:99999", "@S", "--rate", "10"], 2, "--target"),
    (["--target", "::1:80", "@S", "--rate", "10"], 2, "--target"),
    (["--target", "ftp://h:1", "@S", "--rate", "10"], 2, "--target"),
    (["--target", "127.0.0.1:1", "@S", "--rate", "10", "--frobnicate"], 2, "--frobnicate"),
    (["--target", "127.0.0.1:1", "@S", "--rate", "10", "--arrival", "uniform"], 2, "--arrival"),
    (["--target", "127.0.0.1:1", "@S", "--rate", "10", "--duration", "0"], 2, "--duration"),
    (["--target", "127.0.0.1:1", "@S", "--rate", "10", "--connections", "0"], 2,
     "--connections"),
    (["--target", "127.0.0.1:1", "@S", "--rate", "10", "--timeout-ms", "x"], 2, "--timeout-ms"),
    (["--target", "127.0.0.1:1", "@S", "--rate", "10", "--requests", "-3"], 2, "--requests"),
    (["--target", "127.0.0.1:1", "@S", "--rate", "10", "extra"], 2, "extra"),
    (["--target", "127.0.0.1:1", "--rate", "10"], 2, "--scenario"),
    (["--target", "127.0.0.1:1", "--scenario", "/nonexistent/s.json", "--rate", "10"], 2,
     "--scenario"),
    (["--target", "127.0.0.1:1", "@S", "--rate", "10", "--bundle", "/nonexistent"], 2,
     "--bundle"),
    (["@S", "--rate", "10", "--dry-run", "--json", "/nonexistent/dir/r.json"], 2, "--json"),
    (["@S", "--dump", "/nonexistent/dir/d.tsv"], 2, "--dump"),
]


@pytest.mark.parametrize("args,code,word", BAD_ARGS,
                         ids=["%d-%s" % (i, c[2]) for i, c in enumerate(BAD_ARGS)])
def test_bad_arguments(scn, args, code, word):
    s = scn()
    argv = []
    for a in args:
        argv += ["--scenario", s] if a == "@S" else [a]
    p = run_load(argv, check=False)
    assert p.returncode == code, (p.returncode, p.stderr)
    assert word in p.stderr, p.stderr
    assert p.stdout == ""


BAD_SCENARIOS = [
    ({"mix": {"recommend": -1}}, "scenario mix.recommend:"),
    ({"mix": {"search": 1}}, "scenario mix.search:"),
    ({"users": {"count": 0}}, "scenario users.count:"),
    ({"features": {"colour": ["red"]}}, "scenario features.colour:"),
    ({"context": {"device": []}}, "scenario context.device:"),
    ({"events": {"types": {"like": 1}}}, "scenario events.types.like:"),
    ({"bundle": "/nonexistent/models"}, "scenario bundle:"),
    ({"wat": 1}, "scenario wat:"),
]


@pytest.mark.parametrize("over,want", BAD_SCENARIOS, ids=[w for _, w in BAD_SCENARIOS])
def test_bad_scenario(scn, over, want):
    p = run_load(["--scenario", scn(**over), "--rate", "10", "--dry-run"], check=False)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert want in p.stderr, p.stderr


def test_scenario_syntax_error(tmp_path):
    s = tmp_path / "broken.json"
    s.write_text('{"mix": {"recommend": 1},\n "users": }\n')
    p = run_load(["--scenario", s, "--rate", "10", "--dry-run"], check=False)
    assert p.returncode == 1
    assert "line 2" in p.stderr and str(s) in p.stderr, p.stderr


def test_nothing_listening(scn):
    """A target that refuses connections is a runtime failure (exit 1) with
    no report: nothing was measured."""
    port = free_port()
    t0 = time.monotonic()
    p = run_load(["--target", "127.0.0.1:%d" % port, "--scenario", scn(), "--rate", 100,
                  "--duration", 5, "--json", "-"], check=False)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "cannot connect to 127.0.0.1:%d" % port in p.stderr, p.stderr
    assert "refused" in p.stderr.lower()
    assert p.stdout == ""
    assert time.monotonic() - t0 < scaled(3)


# --------------------------------------------------------------------------
# stopping early, broken and closing servers
# --------------------------------------------------------------------------

def test_sigint_reports_what_was_done(d, scn, tmp_path):
    out = tmp_path / "report.json"
    before = d.stats()
    proc = subprocess.Popen([load_bin(), "--target", target(d), "--scenario", scn(),
                             "--rate", str(rate(100)), "--duration", "60", "--json", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.2)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    so, se = proc.communicate(timeout=scaled(15))
    assert proc.returncode == 0, se
    assert time.monotonic() - t0 < scaled(3)
    assert "interrupted" in se
    rep = json.loads(out.read_text())
    assert 0 < rep["requests"]["scheduled"] < rate(100) * 5
    assert rep["duration_s"] < 5
    assert "total" in so  # the table too
    check_against_stats(rep, before, d.stats())


def test_server_dies_mid_run(recd_factory, models, scn, tmp_path):
    """Requests that meet a dead server are connection errors in the
    report; recd-load finishes and exits 0."""
    d2 = recd_factory(config=recd_config(models), name="dies")
    d2.expect_zero_exit = False
    wait_until(lambda: d2.get("/readyz").status == 200, scaled(30), what="/readyz 200")
    out = tmp_path / "report.json"
    proc = subprocess.Popen([load_bin(), "--target", target(d2), "--scenario", scn(),
                             "--rate", str(rate(100)), "--duration", "2.5", "--json", str(out),
                             "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    d2.signal(signal.SIGKILL)
    so, se = proc.communicate(timeout=scaled(30))
    assert proc.returncode == 0, se
    rep = json.loads(out.read_text())
    req = rep["requests"]
    assert req["ok"] > 0 and req["conn_errors"] > 0, req
    assert req["scheduled"] == req["completed"] + req["timeouts"] + req["conn_errors"], req
    assert req["completed"] == req["ok"] + req["http_errors"]


def test_server_closing_every_connection(recd_factory, models, scn, tmp_path):
    """With keep-alive off recd answers Connection: close; recd-load opens a
    connection per request and loses none."""
    cfg = recd_config(models)
    cfg["http"] = {"keepalive_timeout_ms": 0}
    d3 = recd_factory(config=cfg, name="noka")
    wait_until(lambda: d3.get("/readyz").status == 200, scaled(30), what="/readyz 200")
    out = tmp_path / "report.json"
    before = d3.stats()
    run_load(["--target", target(d3), "--scenario", scn(), "--rate", rate(80), "--duration",
              1.5, "--json", out, "--quiet"])
    after = d3.stats()
    rep = json.loads(out.read_text())
    check_against_stats(rep, before, after)
    req = rep["requests"]
    assert req["ok"] == req["completed"] == req["scheduled"] > 0
    # the first request uses the connection opened before the run
    assert rep["connections_opened"] == req["sent"]


def test_server_closes_idle_connections(recd_factory, models, scn, tmp_path):
    """recd closes keep-alive connections idle for 150 ms; at 4 requests/s
    (constant) each request finds its idle connection closed: recd-load
    notices, opens a new one, and loses no request."""
    cfg = recd_config(models)
    cfg["http"] = {"keepalive_timeout_ms": 150}
    d4 = recd_factory(config=cfg, name="idleclose")
    wait_until(lambda: d4.get("/readyz").status == 200, scaled(30), what="/readyz 200")
    out = tmp_path / "report.json"
    before = d4.stats()
    run_load(["--target", target(d4), "--scenario", scn(), "--rate", 4, "--arrival",
              "constant", "--duration", 2, "--json", out, "--quiet"])
    rep = json.loads(out.read_text())
    check_against_stats(rep, before, d4.stats())
    req = rep["requests"]
    assert req["ok"] == req["scheduled"] == 8, req
    assert rep["connections_opened"] >= 7, rep["connections_opened"]


def test_timeouts_while_server_stalls(d, scn, tmp_path):
    """Requests unanswered within --timeout-ms are timeouts; their
    connections are replaced and the run goes on."""
    out = tmp_path / "report.json"
    proc = subprocess.Popen([load_bin(), "--target", target(d), "--scenario",
                             scn(mix={"recommend": 1}), "--rate", "50", "--arrival", "constant",
                             "--connections", "4", "--timeout-ms", "300", "--duration", "2.5",
                             "--json", str(out), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.6)
        d.signal(signal.SIGSTOP)
        time.sleep(1.0)
    finally:
        d.signal(signal.SIGCONT)
    so, se = proc.communicate(timeout=scaled(30))
    assert proc.returncode == 0, se
    rep = json.loads(out.read_text())
    req = rep["requests"]
    # the 4 connections' requests during the stall time out, the rest wait
    # in the queue or are answered once recd runs again
    assert req["timeouts"] >= 4, req
    assert req["ok"] > 50, req
    assert req["scheduled"] == req["completed"] + req["timeouts"] + req["conn_errors"], req
    assert rep["connections_opened"] > 4
    assert rep["endpoints"]["recommend"]["timeouts"] == req["timeouts"]
    # a timed-out request never waited in service longer than the timeout
    assert rep["service_us"]["max"] < 300000 + scaled(0.2) * 1e6, rep["service_us"]
