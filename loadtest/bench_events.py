#!/usr/bin/python3
"""Event ingest benchmark (issue 6): POST /v1/events under each fsync
policy, and what a background events load costs /v1/recommend.

    loadtest/bench_events.py BIN_DIR        (loadtest/bench_events.sh wraps it)

Part 1. For each events.fsync policy (always, interval_ms, never) and batch
size (1 and BENCH_BIG_BATCH events per request) a fresh recd on a temporary
data_dir takes wrk's keep-alive load (loadtest/bench_events.lua posts a
fixed body) for BENCH_DURATION seconds. Reported: acknowledged requests/s
and events/s (every 202 means the batch is in the log under the policy),
wrk's p50/p99 latency of the acknowledgement, recd's own p50/p99 (/stats
events.ack_latency_us: arrival to 202), and the fsyncs the log did.

Part 2 (needs a model; BENCH_MODELS, default models/, must hold
default/<version>/manifest.json, which `make models` builds; skipped with a
message otherwise). One recd serves the model (events.fsync=interval_ms);
wrk drives POST /v1/recommend (loadtest/recommend.lua) alone, then again
while a second wrk posts batches of BENCH_BIG_BATCH events in the
background over BENCH_BG_LIGHT connections, then BENCH_BG_HEAVY
connections (under interval_ms each connection gets about one batch per
interval acknowledged, so the connection count sets the rate; a
BENCH_BG_DELAY_MS pause between batches throttles further), then alone
again (the spread between the two "alone" rows is the noise of the
machine). Reported: recommend requests/s and p50/p90/p99, and the events/s
the background load achieved.

Environment: BENCH_DURATION (seconds per run, default 5), BENCH_THREADS
(wrk threads, 2), BENCH_CONNS (connections, 16), BENCH_WORKERS (recd
http.workers, 2), BENCH_BIG_BATCH (100), BENCH_INTERVAL_MS
(events.interval_ms, 100), BENCH_REC_CONNS (8), BENCH_BG_LIGHT (2),
BENCH_BG_HEAVY (32), BENCH_BG_DELAY_MS (0), BENCH_MODELS (models).

Every recd listens on free loopback ports and is stopped at the end; its
files live in a temporary directory that is removed.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from benchlib import free_ports

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
EVENTS_LUA = os.path.join(HERE, "bench_events.lua")
RECOMMEND_LUA = os.path.join(HERE, "recommend.lua")


def env_int(name, default):
    v = os.environ.get(name, str(default)).rstrip("s")
    if not re.fullmatch(r"[1-9][0-9]*", v):
        sys.exit("bench: %s must be a positive integer, got %r" % (name, v))
    return int(v)


DURATION = env_int("BENCH_DURATION", 5)
THREADS = env_int("BENCH_THREADS", 2)
CONNS = env_int("BENCH_CONNS", 16)
WORKERS = env_int("BENCH_WORKERS", 2)
BIG = env_int("BENCH_BIG_BATCH", 100)
INTERVAL_MS = env_int("BENCH_INTERVAL_MS", 100)
REC_CONNS = env_int("BENCH_REC_CONNS", 8)
BG_LIGHT = env_int("BENCH_BG_LIGHT", 2)
BG_HEAVY = env_int("BENCH_BG_HEAVY", 32)
BG_DELAY_MS = int(os.environ.get("BENCH_BG_DELAY_MS", "0") or 0)
MODELS = os.environ.get("BENCH_MODELS") or os.path.join(ROOT, "models")


class Daemon:
    def __init__(self, bindir, tmp, name, sets):
        self.dir = os.path.join(tmp, name)
        os.makedirs(os.path.join(self.dir, "data"))
        os.makedirs(os.path.join(self.dir, "models"), exist_ok=True)
        self.port, self.admin = free_ports(2)
        args = [os.path.join(bindir, "recd"),
                "--set", "http.listen=127.0.0.1:%d" % self.port,
                "--set", "admin.listen=127.0.0.1:%d" % self.admin,
                "--set", "http.workers=%d" % WORKERS,
                "--set", "data_dir=%s" % os.path.join(self.dir, "data"),
                "--set", "log.level=warn",
                # no model unless the caller names one
                "--set", "models_dir=%s" % os.path.join(self.dir, "models"),
                "--set", "models.serve="]
        for s in sets:
            args += ["--set", s]
        self.errf = open(os.path.join(self.dir, "stderr"), "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.errf)
        self.url = "http://127.0.0.1:%d" % self.port

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=10) as r:
            return r.status, r.read()

    def wait_ready(self, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("recd exited with %d:\n%s" % (self.proc.returncode, self.log()))
            try:
                if self.get("/readyz")[0] == 200:
                    return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.05)
        raise RuntimeError("recd not ready after %ds:\n%s" % (timeout, self.log()))

    def stats(self):
        return json.loads(self.get("/stats")[1])

    def log(self):
        with open(os.path.join(self.dir, "stderr"), "rb") as f:
            return f.read().decode("utf-8", "replace")[-3000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.errf.close()


_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * _UNIT[m.group(2)] if m else float("nan")


def wrk_start(url, script, env, threads, conns, duration):
    e = dict(os.environ)
    e.update({k: str(v) for k, v in env.items()})
    cmd = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % duration, "--latency",
           "-s", script, url]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=e,
                            text=True)


def wrk_result(p):
    out, _ = p.communicate()
    if p.returncode != 0:
        raise RuntimeError("wrk failed:\n" + out)
    res = {"rps": float("nan"), "requests": 0, "non2xx": 0, "errors": 0, "raw": out}
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    if m:
        res["rps"] = float(m.group(1))
    m = re.search(r"(\d+) requests in", out)
    if m:
        res["requests"] = int(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        res["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        res["errors"] = sum(int(x) for x in m.groups())
    for q in ("50", "75", "90", "99"):
        m = re.search(r"^\s+%s%%\s+(\S+)" % q, out, re.M)
        res["p" + q] = _ms(m.group(1)) if m else float("nan")
    return res


def wrk(url, script, env, threads, conns, duration):
    return wrk_result(wrk_start(url, script, env, threads, conns, duration))


def machine():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%d CPUs (%s), %s" % (os.cpu_count() or 0, cpu,
                                 time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


# --------------------------------------------------------------------------


def ingest(bindir, tmp):
    print("# POST /v1/events: wrk -t%d -c%d -d%ds --latency, fixed body per wrk thread; "
          "recd http.workers=%d, events.interval_ms=%d" % (THREADS, CONNS, DURATION, WORKERS,
                                                          INTERVAL_MS))
    print("# latency = request sent -> 202 (batch in the log under the policy); srv = recd's "
          "/stats events.ack_latency_us")
    hdr = "%-12s %5s %9s %10s %8s %8s %8s %8s %7s %6s" % (
        "fsync", "batch", "req/s", "events/s", "p50_ms", "p99_ms", "srv_p50", "srv_p99",
        "fsyncs", "errors")
    print(hdr)
    rows = []
    for policy in ("always", "interval_ms", "never"):
        for batch in (1, BIG):
            d = Daemon(bindir, tmp, "ev-%s-%d" % (policy, batch),
                       ["events.fsync=%s" % policy, "events.interval_ms=%d" % INTERVAL_MS])
            try:
                d.wait_ready()
                r = wrk(d.url + "/v1/events", EVENTS_LUA, {"BENCH_BATCH": batch}, THREADS,
                        CONNS, DURATION)
                st = d.stats()["events"]
            finally:
                d.stop()
            acc = st["accepted"]["events"]
            srv = st["ack_latency_us"]
            errors = r["non2xx"] + r["errors"]
            line = "%-12s %5d %9.0f %10.0f %8.2f %8.2f %8.2f %8.2f %7d %6d" % (
                policy, batch, r["rps"], r["rps"] * batch, r["p50"], r["p99"],
                srv["p50"] / 1000.0, srv["p99"] / 1000.0, st["log"]["fsyncs"], errors)
            print(line, flush=True)
            rows.append((policy, batch, r, st))
            if acc < (r["requests"] - errors) * batch:
                print("#   recd acknowledged only %d events for %d requests answered"
                      % (acc, r["requests"]))
    return rows


def model_dir():
    base = os.path.join(MODELS, "default")
    if not os.path.isdir(base):
        return None
    vers = sorted((int(v) for v in os.listdir(base) if v.isdigit()
                   and os.path.isfile(os.path.join(base, v, "manifest.json"))), reverse=True)
    return os.path.join(base, str(vers[0])) if vers else None


def recommend_cost(bindir, tmp):
    mdir = model_dir()
    print()
    if not mdir:
        print("# recommend under events load: skipped, no model in %s/default "
              "(build one with `make models`, or set BENCH_MODELS)" % MODELS)
        return
    with open(os.path.join(mdir, "manifest.json")) as f:
        man = json.load(f)
    n_items = man["n_items"]
    d = Daemon(bindir, tmp, "rec", ["models_dir=%s" % os.path.abspath(MODELS),
                                    "models.serve=default", "events.fsync=interval_ms",
                                    "events.interval_ms=%d" % INTERVAL_MS])
    try:
        d.wait_ready()
        rec_env = {"BENCH_ITEMS": n_items}
        wrk(d.url, RECOMMEND_LUA, rec_env, 1, REC_CONNS, 1)  # warm-up
        print("# POST /v1/recommend (loadtest/recommend.lua, k=10, default candidates) on %s "
              "(%d items, %s, ranker %s): wrk -t1 -c%d -d%ds"
              % (os.path.relpath(mdir, ROOT), n_items, man["ann"].get("factory", "?"),
                 man.get("ranker", {}).get("type", "none"), REC_CONNS, DURATION))
        print("# background: wrk -t1 on POST /v1/events, batches of %d, events.fsync=interval_ms"
              % BIG)
        print("%-44s %9s %8s %8s %8s %6s %11s" % ("load", "rec req/s", "p50_ms", "p90_ms",
                                                 "p99_ms", "errors", "bg events/s"))
        pause = ", %d ms pause" % BG_DELAY_MS if BG_DELAY_MS > 0 else ""
        loads = [("recommend alone", None),
                 ("+ events, %d conns%s" % (BG_LIGHT, pause), BG_LIGHT),
                 ("+ events, %d conns%s" % (BG_HEAVY, pause), BG_HEAVY),
                 ("recommend alone (again)", None)]
        for label, bg in loads:
            bgp = None
            if bg:
                bgp = wrk_start(d.url + "/v1/events", EVENTS_LUA,
                                {"BENCH_BATCH": BIG, "BENCH_DELAY_MS": BG_DELAY_MS,
                                 "BENCH_ITEMS": n_items}, 1, bg, DURATION + 2)
                time.sleep(0.5)
            r = wrk(d.url, RECOMMEND_LUA, rec_env, 1, REC_CONNS, DURATION)
            bg_rate = ""
            if bgp:
                b = wrk_result(bgp)
                bg_rate = "%.0f" % (b["rps"] * BIG)
                if b["non2xx"] or b["errors"]:
                    bg_rate += " (%d errors)" % (b["non2xx"] + b["errors"])
            print("%-44s %9.0f %8.2f %8.2f %8.2f %6d %11s" % (
                label, r["rps"], r["p50"], r["p90"], r["p99"], r["non2xx"] + r["errors"],
                bg_rate), flush=True)
        hs = d.stats()["history"]
        print("# history store after the runs: %d users, %d items, %d bytes"
              % (hs["users"], hs["items"], hs["bytes"]))
    finally:
        d.stop()


def main():
    if len(sys.argv) != 2 or not os.access(os.path.join(sys.argv[1], "recd"), os.X_OK):
        sys.exit("usage: %s BIN_DIR   (the directory holding recd)" % sys.argv[0])
    if not shutil.which("wrk"):
        sys.exit("bench: wrk not found (run scripts/deps.sh bench)")
    bindir = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="recd-bench-events.")
    t0 = time.monotonic()
    try:
        print("# recd event ingest benchmark; machine: %s" % machine())
        ingest(bindir, tmp)
        recommend_cost(bindir, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("# wall time %.0f s" % (time.monotonic() - t0))


if __name__ == "__main__":
    main()
