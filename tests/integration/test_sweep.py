"""loadtest/sweep end to end, quickly: a small bundle, 1-second points.

The sweep starts its own recd (the one under test: $RECD_BIN, with
recd-load from the same directory) and writes its two result files into a
temporary directory. Checked: both files exist under the documented names
and parse; the machine block agrees with what this process reads itself
(os.uname, the CPUs it may run on, /proc); every point's offered rate is
its percentage of the capacity and recd-load's report says it offered
that; the capacity is wrk's figure (wrk test, skipped without wrk) or the
--capacity value; a recd killed mid-sweep and a Ctrl-C both leave partial
results marked incomplete; bad arguments exit non-zero with a message and
write nothing.
"""

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from bundlelib import make_bundle
from conftest import RECD_BIN, ROOT, http_request, scaled, wait_until

SWEEP = os.path.join(ROOT, "loadtest", "sweep")
BINDIR = os.path.dirname(os.path.abspath(RECD_BIN))
LOAD_BIN = os.path.join(BINDIR, "recd-load")
MIXED = os.path.join(ROOT, "loadtest", "scenarios", "mixed.json")
NAME_RE = re.compile(r"^sweep-sweeptest-(\d{8}T\d{6}Z)\.(json|txt)$")
# short open-loop points: 1 s measured after 0.2 s of warmup; a request
# still unanswered 2 s after it was sent is a timeout
QUICK = ["--seconds", "1", "--warmup", "0.2", "--timeout-ms", "2000"]


def require_tools():
    for path in (RECD_BIN, LOAD_BIN):
        if not os.access(path, os.X_OK):
            pytest.fail("%s not found or not executable (build it with `make`)" % path)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """The shipped mixed scenario pointed at a small bundle (2,000 items)."""
    require_tools()
    base = tmp_path_factory.mktemp("sweep")
    models = base / "models"
    make_bundle(models, items=2000, dim=32, embed=16, seed=3)
    if not os.path.isfile(MIXED):
        pytest.fail("%s is missing" % MIXED)
    with open(MIXED, encoding="utf-8") as f:
        doc = json.load(f)
    doc["name"] = "sweeptest"
    doc["bundle"] = str(models / "default")
    path = base / "scenario.json"
    path.write_text(json.dumps(doc))
    return str(path)


def run_sweep(args, tmp_path, timeout=60, env_extra=None):
    """Run the sweep to completion with its temporary files under
    tmp_path/tmp; returns CompletedProcess."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir(exist_ok=True)
    env = dict(os.environ, TMPDIR=str(tmpdir))
    env.update(env_extra or {})
    return subprocess.run([SWEEP] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, text=True, errors="replace",
                          timeout=scaled(timeout), env=env, cwd=ROOT)


def results(out_dir):
    """(json doc, txt text) of the one sweep in out_dir, checking the names."""
    names = sorted(os.listdir(out_dir))
    assert len(names) == 2, names
    stamps = set()
    for n in names:
        m = NAME_RE.match(n)
        assert m, "unexpected result file name %r" % n
        stamps.add(m.group(1))
    assert len(stamps) == 1, "json and txt carry different timestamps: %r" % names
    stamp = stamps.pop()
    with open(os.path.join(out_dir, "sweep-sweeptest-%s.json" % stamp), encoding="utf-8") as f:
        doc = json.load(f)
    with open(os.path.join(out_dir, "sweep-sweeptest-%s.txt" % stamp), encoding="utf-8") as f:
        txt = f.read()
    # the timestamp in the name is the start of the run
    assert doc["started_utc"].replace("-", "").replace(":", "") == stamp
    return doc, txt


def proc_value(path, key):
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k.strip() == key:
                return v.strip()
    return None


def check_machine(doc):
    m = doc["machine"]
    u = os.uname()
    assert m["kernel"] == "%s %s %s" % (u.sysname, u.release, u.machine)
    # nproc counts the CPUs this process may run on
    assert m["cores_online"] == len(os.sched_getaffinity(0))
    assert m["cpus_configured"] == os.cpu_count()
    if len(os.sched_getaffinity(0)) == os.cpu_count():
        assert m["cores_online"] == os.cpu_count()
    assert m["cpu_model"] == proc_value("/proc/cpuinfo", "model name")
    mhz = proc_value("/proc/cpuinfo", "cpu MHz")
    if mhz is not None:
        assert isinstance(m["cpu_mhz"], float) and m["cpu_mhz"] > 0
    mem_kb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 1024
    assert abs(m["mem_total_kb"] - mem_kb) <= 0.01 * mem_kb, (m["mem_total_kb"], mem_kb)
    if os.path.isfile("/etc/debian_version"):
        with open("/etc/debian_version") as f:
            assert m["debian_version"] == f.read().strip()
    version = subprocess.run([RECD_BIN, "--version"], stdout=subprocess.PIPE,
                             text=True).stdout.strip()
    assert m["recd_version"] == version
    rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short=12", "HEAD"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    if rev.returncode == 0:
        assert m["git_rev"].split("-")[0] == rev.stdout.strip()
    assert "faiss" in m["faiss"].lower()
    date = time.strptime(m["date_utc"], "%Y-%m-%dT%H:%M:%SZ")
    age = time.time() - (time.mktime(date) - time.timezone)
    assert -5 < age < 600, m["date_utc"]


def check_own_recd(doc):
    """Configuration and model of the recd the sweep started."""
    cfg = doc["config"]
    assert cfg["known"] is True
    assert cfg["file"] == os.path.join(ROOT, "conf", "recd.json")
    with open(cfg["file"], encoding="utf-8") as f:
        assert cfg["content"] == json.load(f)
    eff = cfg["effective"]
    assert eff["http.listen"] == doc["target"]
    assert eff["models.serve"] == "default"
    stats = doc["model"]["stats"]["default"]
    assert stats["items"] == 2000 and stats["version"] == 1 and stats["dim"] == 32
    assert doc["model"]["manifest"]["n_items"] == 2000


def check_points(doc, pcts, capacity, ok_upto):
    """Offered rates and reports; points at or below ok_upto percent must
    have been served (nearly) completely. Near and above the closed-loop
    peak an open-loop point may fall behind, so only its shape is checked."""
    pts = doc["points"]
    assert [p["pct"] for p in pts] == pcts
    for p in pts:
        want = round(capacity * p["pct"] / 100.0, 1)
        assert abs(p["offered_rps"] - want) < 0.051, (p["offered_rps"], want)
        assert abs(p["offered_rps"] - capacity * p["pct"] / 100.0) <= 0.05 + 1e-9
        r = p["report"]
        assert r["tool"] == "recd-load"
        assert r["offered_rps"] == pytest.approx(p["offered_rps"], abs=0.051)
        req = r["requests"]
        assert req["scheduled"] > 0
        assert req["completed"] + req["timeouts"] >= req["scheduled"] - req["conn_errors"]
        if p["pct"] <= ok_upto:
            # a small bundle at these rates: nearly everything answered 2xx
            assert req["ok"] >= 0.9 * req["scheduled"], req
        for key in ("p50", "p90", "p99", "p999", "max"):
            assert r["latency_us"][key] > 0
        assert r["latency_us"]["p50"] <= r["latency_us"]["p99"] <= r["latency_us"]["max"]


def table_rows(txt):
    """{pct string: row fields} of the text table."""
    lines = txt.splitlines()
    head = [i for i, l in enumerate(lines)
            if l.split()[:4] == ["pct", "offered", "sched", "achieved"]]
    assert len(head) == 1, txt
    rows = {}
    for l in lines[head[0] + 1:]:
        f = l.split()
        if not f or not re.fullmatch(r"[0-9.]+", f[0]):
            break
        rows[f[0]] = f
    return rows


def rows_key(pct):
    return "%g" % pct


def test_sweep_with_given_capacity(scenario, tmp_path):
    """The path without wrk: --capacity sets 100 %."""
    out = tmp_path / "out"
    r = run_sweep(["--bin", BINDIR, "--scenario", scenario, "--points", "25,100",
                   "--capacity", "200", "--out", str(out)] + QUICK, tmp_path)
    assert r.returncode == 0, r.stderr
    doc, txt = results(out)
    assert doc["complete"] is True and doc["aborted"] is None
    # recd shut down cleanly (under ASan: no leak report)
    assert doc["recd_exit"] == {"status": 0, "stopped_by_sweep": True}, doc["recd_exit"]
    assert doc["capacity"] == {"rps": 200.0, "source": "--capacity"}
    assert doc["wrk"] is None
    check_machine(doc)
    check_own_recd(doc)
    check_points(doc, [25.0, 100.0], 200.0, ok_upto=100)
    rows = table_rows(txt)
    assert set(rows) == {"25", "100"}
    assert float(rows["25"][1]) == 50.0 and float(rows["100"][1]) == 200.0
    r25 = doc["points"][0]["report"]
    assert float(rows["25"][2]) == pytest.approx(r25["scheduled_rps"], abs=0.051)
    assert float(rows["25"][7]) == pytest.approx(r25["latency_us"]["p99"] / 1000.0, abs=0.006)
    # p99 by endpoint: every endpoint of the mix, values from the reports
    lines = txt.splitlines()
    at = lines.index("# p99 ms by endpoint:")
    names = lines[at + 1].split()[1:]
    assert set(names) == {"recommend", "score", "similar", "events"}
    for i, p in enumerate(doc["points"]):
        f = lines[at + 2 + i].split()
        assert f[0] == rows_key(p["pct"]) and len(f) == 1 + len(names)
        for name, cell in zip(names, f[1:]):
            lat = (p["report"]["endpoints"].get(name) or {}).get("latency_us") or {}
            if not lat.get("count"):
                assert cell == "-", (name, cell)  # a 5 % endpoint may get no request in 1 s
            else:
                assert float(cell) == pytest.approx(lat["p99"] / 1000.0, abs=0.006), (name, cell)
    assert "sustainable open-loop capacity" in txt
    assert doc["sustainable"]["baseline_pct"] == 25.0
    # the table goes to stdout as well
    assert r.stdout == txt
    # the sweep removed its temporary directory
    assert os.listdir(tmp_path / "tmp") == []


@pytest.mark.skipif(shutil.which("wrk") is None,
                    reason="wrk not installed (scripts/deps.sh bench installs it)")
def test_sweep_capacity_from_wrk(scenario, tmp_path):
    out = tmp_path / "out"
    r = run_sweep(["--bin", BINDIR, "--scenario", scenario, "--points", "25,100",
                   "--wrk-seconds", "1", "--connections", "4", "--out", str(out)] + QUICK,
                  tmp_path)
    assert r.returncode == 0, r.stderr
    doc, txt = results(out)
    assert doc["complete"] is True
    assert doc["recd_exit"]["status"] == 0, doc["recd_exit"]
    w = doc["wrk"]
    assert w["requests"] > 0 and w["duration_s"] > 0.5
    assert w["requests_per_s"] == pytest.approx(w["requests"] / w["duration_s"], rel=1e-3)
    assert w["responses_counted"] + sum(w["socket_errors"].values()) >= w["requests"] - 4
    assert w["requests_dumped"] > 0
    assert "-c4" in w["command"] and "-d1s" in w["command"]
    cap = doc["capacity"]
    assert cap["source"] == "wrk"
    assert cap["rps"] == round(w["requests_per_s"], 1)
    check_machine(doc)
    check_points(doc, [25.0, 100.0], cap["rps"], ok_upto=25)
    assert "%.1f req/s" % w["requests_per_s"] in txt
    assert "capacity (100%%): %.1f req/s from wrk" % cap["rps"] in txt


def bad(args, tmp_path, env_extra=None):
    out = tmp_path / "out"
    r = run_sweep(args + ["--out", str(out)], tmp_path, timeout=30, env_extra=env_extra)
    assert not out.exists() or os.listdir(out) == [], "results written on a bad argument"
    return r


@pytest.mark.parametrize("points, message", [
    ("abc", "not a number"),
    ("25,,50", "not a number"),
    ("0", "out of range"),
    ("25,-5", "out of range"),
    ("25,2000", "out of range"),
    ("nan", "out of range"),
])
def test_bad_points(scenario, tmp_path, points, message):
    r = bad(["--bin", BINDIR, "--scenario", scenario, "--capacity", "10", "--points", points],
            tmp_path)
    assert r.returncode == 2, r.stderr
    assert "--points" in r.stderr and message in r.stderr


def test_bad_arguments(scenario, tmp_path):
    r = bad(["--bin", BINDIR, "--scenario", str(tmp_path / "nope.json"), "--capacity", "10"],
            tmp_path)
    assert r.returncode == 2 and "nope.json: no such file" in r.stderr, r.stderr

    notjson = tmp_path / "notjson.json"
    notjson.write_text("{mix")
    r = bad(["--bin", BINDIR, "--scenario", str(notjson), "--capacity", "10"], tmp_path)
    assert r.returncode == 2 and "not a JSON file" in r.stderr, r.stderr

    nobundle = tmp_path / "nobundle.json"
    nobundle.write_text(json.dumps({"name": "x", "bundle": str(tmp_path / "no-models")}))
    r = bad(["--bin", BINDIR, "--scenario", str(nobundle), "--capacity", "10"], tmp_path)
    assert r.returncode == 2 and "no such model directory" in r.stderr, r.stderr

    for args, message in ((["--seconds", "0"], "--seconds"), (["--seconds", "x"], "--seconds"),
                          (["--capacity", "-1"], "--capacity"),
                          (["--target", "localhost"], "--target"),
                          (["--target", "h:99999"], "--target"),
                          (["--connections", "1", "--wrk-threads", "2"], "--connections"),
                          (["--config", str(tmp_path / "none.json")], "--config"),
                          (["--frobnicate"], "unrecognized")):
        r = bad(["--bin", BINDIR, "--scenario", scenario] + args, tmp_path)
        assert r.returncode == 2, (args, r.stderr)
        assert message in r.stderr, (args, r.stderr)


def test_missing_binaries(scenario, tmp_path):
    r = bad(["--bin", str(tmp_path / "nodir"), "--scenario", scenario, "--capacity", "10"],
            tmp_path)
    assert r.returncode == 1 and "no such directory" in r.stderr, r.stderr

    empty = tmp_path / "emptybin"
    empty.mkdir()
    r = bad(["--bin", str(empty), "--scenario", scenario, "--capacity", "10"], tmp_path)
    assert r.returncode == 1 and "recd-load not found" in r.stderr, r.stderr

    only_load = tmp_path / "onlyload"
    only_load.mkdir()
    os.symlink(LOAD_BIN, only_load / "recd-load")
    r = bad(["--bin", str(only_load), "--scenario", scenario, "--capacity", "10"], tmp_path)
    assert r.returncode == 1 and "recd not found" in r.stderr, r.stderr

    # no wrk on PATH and no --capacity
    nopath = tmp_path / "nopath"
    nopath.mkdir()
    r = bad(["--bin", BINDIR, "--scenario", scenario], tmp_path,
            env_extra={"PATH": str(nopath)})
    assert r.returncode == 1 and "wrk not found" in r.stderr, r.stderr


def start_sweep(args, tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir(exist_ok=True)
    return subprocess.Popen([SWEEP] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, errors="replace",
                            env=dict(os.environ, TMPDIR=str(tmpdir)), cwd=ROOT,
                            start_new_session=True)


def read_until(proc, needle, seen):
    """Read the sweep's stderr lines until one contains needle."""
    deadline = time.monotonic() + scaled(30)
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return line
    proc.kill()
    pytest.fail("the sweep never printed %r; stderr:\n%s" % (needle, "".join(seen)))


def pid_gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie of a reaped parent shows up briefly; /proc tells
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def sweep_disturbed_at_point_2(scenario, tmp_path, disturb):
    """Start a three-point sweep, call disturb(sweep process, recd pid) once
    the second point has begun, and wait for the sweep to end. Returns
    (process, recd pid, stdout, stderr including what was read early)."""
    out = tmp_path / "out"
    p = start_sweep(["--bin", BINDIR, "--scenario", scenario, "--points", "25,50,100",
                     "--capacity", "100", "--out", str(out)] + QUICK, tmp_path)
    seen = []
    try:
        line = read_until(p, "recd pid ", seen)
        recd_pid = int(re.search(r"recd pid (\d+)", line).group(1))
        read_until(p, "point 2/3", seen)
        disturb(p, recd_pid)
        stdout, stderr = p.communicate(timeout=scaled(30))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return p, recd_pid, stdout, "".join(seen) + stderr


def test_recd_dies_mid_sweep(scenario, tmp_path):
    out = tmp_path / "out"
    p, _, stdout, stderr = sweep_disturbed_at_point_2(
        scenario, tmp_path, lambda p, pid: os.kill(pid, signal.SIGKILL))
    assert p.returncode == 1, stderr
    assert "recd exited (killed by signal 9)" in stderr
    doc, txt = results(out)
    assert doc["complete"] is False
    assert "during the 50% point: recd exited" in doc["aborted"]
    # the first point is whole; the one recd died in is recorded too; no third
    assert [pt["pct"] for pt in doc["points"]] == [25.0, 50.0]
    assert doc["recd_exit"]["status"] == -signal.SIGKILL
    assert doc["recd_exit"]["stopped_by_sweep"] is False
    assert doc["points"][0]["report"]["requests"]["ok"] > 0
    assert "INCOMPLETE" in txt and "[INCOMPLETE]" in txt.splitlines()[0]
    assert stdout == txt


def test_interrupt_writes_partial_results(scenario, tmp_path):
    out = tmp_path / "out"

    def interrupt(p, pid):
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)

    p, recd_pid, stdout, stderr = sweep_disturbed_at_point_2(scenario, tmp_path, interrupt)
    assert p.returncode == 130, stderr
    doc, txt = results(out)
    assert doc["complete"] is False and doc["aborted"].startswith("interrupted")
    assert [pt["pct"] for pt in doc["points"]] == [25.0]
    assert doc["points"][0]["report"]["requests"]["ok"] > 0
    assert "INCOMPLETE: interrupted" in txt
    assert doc["recd_exit"] == {"status": 0, "stopped_by_sweep": True}, doc["recd_exit"]
    # the sweep stopped its recd and removed its temporary files
    deadline = time.monotonic() + scaled(10)
    while not pid_gone(recd_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pid_gone(recd_pid), "recd %d still running after the sweep" % recd_pid
    assert os.listdir(tmp_path / "tmp") == []
    assert glob.glob(str(out / "*.tmp")) == []


def test_sweep_against_running_recd(scenario, recd_factory, tmp_path):
    """--target: the sweep uses a recd it did not start, reads only its
    /stats, records the configuration as unknown (or as declared with
    --config) and leaves that recd running."""
    with open(scenario, encoding="utf-8") as f:
        models_dir = os.path.dirname(json.load(f)["bundle"])
    d = recd_factory(config={"models_dir": models_dir, "models": {"serve": "default"},
                             "log": {"level": "warn"}})
    wait_until(lambda: http_request("127.0.0.1", d.port, "GET", "/readyz").status == 200,
               scaled(20), what="/readyz")
    stats = http_request("127.0.0.1", d.port, "GET", "/stats").json()
    out = tmp_path / "out"
    r = run_sweep(["--bin", BINDIR, "--scenario", scenario, "--target", "127.0.0.1:%d" % d.port,
                   "--points", "50", "--capacity", "100", "--out", str(out)] + QUICK, tmp_path)
    assert r.returncode == 0, r.stderr
    doc, txt = results(out)
    assert doc["complete"] is True and doc["own_recd"] is False
    assert doc["target"] == "127.0.0.1:%d" % d.port
    assert doc["config"]["known"] is False and "config unknown" in doc["config"]["note"]
    assert "config unknown" in txt
    assert stats["git"] in doc["machine"]["recd_version"]
    assert doc["model"]["stats"]["default"]["items"] == 2000
    check_points(doc, [50.0], 100.0, ok_upto=100)
    assert doc["recd_exit"] is None
    assert d.alive(), "the sweep stopped a recd it did not start"

    # --config: recorded as declared, not verified
    shutil.rmtree(out)
    r = run_sweep(["--bin", BINDIR, "--scenario", scenario, "--target",
                   "http://127.0.0.1:%d/" % d.port, "--config", d.config_path, "--points", "50",
                   "--capacity", "100", "--out", str(out)] + QUICK, tmp_path)
    assert r.returncode == 0, r.stderr
    doc, txt = results(out)
    assert doc["config"]["known"] is False
    assert doc["config"]["file"] == d.config_path
    assert doc["config"]["content"] == d.config
    assert "not verified" in doc["config"]["note"]
    assert d.alive()


# --------------------------------------------------------------------------
# the sustainability rule, on made-up reports
# --------------------------------------------------------------------------

def load_sweep_module():
    import importlib.machinery
    import importlib.util
    import sys
    if os.path.dirname(SWEEP) not in sys.path:
        sys.path.insert(0, os.path.dirname(SWEEP))  # its benchlib import
    loader = importlib.machinery.SourceFileLoader("recd_sweep", SWEEP)
    spec = importlib.util.spec_from_loader("recd_sweep", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def fake_point(pct, rps, ok_rps, eps):
    """A point whose report has the given ok rate and per-endpoint p99s (us)."""
    return {"pct": pct, "offered_rps": rps,
            "report": {"scheduled_rps": rps, "ok_rps": ok_rps,
                       "latency_us": {"p99": max(eps.values()), "count": 100},
                       "endpoints": {ep: {"latency_us": {"p99": v, "count": 100}}
                                     for ep, v in eps.items()}}}


def interpret(mod, points):
    sw = object.__new__(mod.Sweep)
    sw.result = {"points": points}
    return sw.interpret()


def test_sustainable_rule_is_per_endpoint():
    mod = load_sweep_module()
    base = {"recommend": 10000, "events": 100000}
    pts = [fake_point(25, 100, 100, base),
           # recommend grew 9x: still sustainable although the overall p99
           # (the events') barely moved
           fake_point(50, 200, 199.5, {"recommend": 89000, "events": 101000}),
           # recommend grew 10x while the overall p99 is only 1.1x the
           # baseline's: not sustainable
           fake_point(75, 300, 300, {"recommend": 100000, "events": 110000}),
           # keeps its latencies but drops below 99% of the schedule
           fake_point(100, 400, 395, base)]
    s = interpret(mod, pts)
    assert s["pct"] == 50 and s["rps"] == 200, s
    assert [p["sustainable"] for p in pts] == [True, True, False, False]
    assert pts[2]["p99_over"] == {"recommend": 100000}
    assert pts[3]["keeps_up"] is False and pts[3]["p99_bounded"] is True
    assert s["endpoint_p99_limit_us"] == {"recommend": 100000, "events": 1000000}
    # without a 25% point the lowest point is the baseline
    pts = [fake_point(50, 200, 200, base), fake_point(90, 360, 360, base)]
    s = interpret(mod, pts)
    assert s["baseline_pct"] == 50 and s["pct"] == 90 and s["note"], s
