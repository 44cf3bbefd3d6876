#!/usr/bin/python3
"""Hot-swap benchmark (issue 7): what replacing the serving model costs.

    loadtest/bench_swap.py BIN_DIR          (loadtest/bench_swap.sh wraps it)

One recd serves a realistic bundle (BENCH_BUNDLE, default the highest
version under models/default/, which `make models` builds; else a
100k-item `recd-train synth-bundle`). An open-loop driver (below: requests
leave at a constant rate whatever the server does, and each latency is
measured from the moment the request was *due*, so a stall is charged to
every request it delays; wrk is closed-loop and would hide it) sends
POST /v1/recommend at BENCH_RATE requests/s through these phases:

  steady     no swaps, BENCH_PHASE_S seconds;
  swaps      a new version published every BENCH_SWAP_INTERVAL seconds
             (atomic publish: the files are hard-linked into
             <name>/.tmp-<v>/ with a manifest carrying the new version
             number, then the directory is renamed to <name>/<v>/; a
             published bundle is immutable, so sharing its inodes is
             legal, and recd still reads and checksums every byte);
  publish    BENCH_PUBLISH_ROUNDS single publishes under the same load,
             each timed from the rename until /stats names the version;
  trainer    the embedded trainer (trainer.enabled, one epoch over the
             20000 events posted before the first phase) retrains the
             model again and again (POST /admin/train whenever it is
             idle) for BENCH_PHASE_S seconds and at least until one cycle
             has finished (at most BENCH_TRAINER_MAX_S); a version it
             publishes is swapped in as usual; "skipped" when this recd has no
             trainer or no /admin/train;
  steady 2   steady again: its distance from the first steady row is the
             noise of the machine (2 cores shared with other work).

Printed: p50/p99/p99.9/max of each phase and the p99 ratios to steady;
peak RSS during the swap phase against the steady RSS and against the
bundle's size on disk (VmRSS of /proc/<pid>/status sampled every 10 ms);
median and max time from publish to serving; swaps done and versions
skipped (the manager serves the newest valid version, so a version that
arrives while another is loading may never be served).

Environment: BENCH_RATE (200), BENCH_PHASE_S (12), BENCH_SWAP_INTERVAL
(0.5), BENCH_PUBLISH_ROUNDS (5), BENCH_TRAINER_MAX_S (90), BENCH_WORKERS (recd http.workers, 2),
BENCH_BUNDLE (a version directory), BENCH_KEEP (models.keep_versions, 2).
About 80 s with the defaults.

The module is also a library for tests/integration/test_swap_load.py and
test_publish_crash.py: bundle generation with per-version item ids,
publishing, independent bundle verification, /proc readers, /stats
accessors and the open-loop driver.
"""

import asyncio
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from benchlib import free_ports

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# --------------------------------------------------------------------------
# /proc readers
# --------------------------------------------------------------------------


def vmrss(pid):
    """Resident set size of pid in bytes (VmRSS), or None if it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None


def mapped_files(pid, suffix):
    """Paths of files ending in suffix that pid has mapped (a " (deleted)"
    mark is kept, so a mapping of a removed version still shows)."""
    out = set()
    try:
        with open("/proc/%d/maps" % pid) as f:
            for line in f:
                parts = line.rstrip("\n").split(None, 5)
                if len(parts) == 6:
                    path = parts[5]
                    if path.replace(" (deleted)", "").endswith(suffix):
                        out.add(path)
    except OSError:
        pass
    return out


def dir_bytes(path):
    return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path)
               if os.path.isfile(os.path.join(path, f)))


# --------------------------------------------------------------------------
# /stats accessors (the lifecycle manager's "models" section, with the
# pre-lifecycle shape {name: {version, ...}} accepted too)
# --------------------------------------------------------------------------


def model_entry(stats, name="default"):
    """The /stats "models" entry of model `name`, or None. Accepts a dict
    keyed by name, a list of {"name": ...} objects, or either of those
    under models["models"]."""
    ms = stats.get("models")
    if isinstance(ms, dict) and "models" in ms and not isinstance(ms.get(name), dict):
        ms = ms["models"]
    if isinstance(ms, dict):
        e = ms.get(name)
        return e if isinstance(e, dict) else None
    if isinstance(ms, list):
        for e in ms:
            if isinstance(e, dict) and e.get("name") == name:
                return e
    return None


def serving_version(stats, name="default"):
    """The version serving model `name` (0 when none)."""
    e = model_entry(stats, name)
    if not e:
        return 0
    s = e.get("serving")
    if isinstance(s, dict):
        return int(s.get("version") or 0)
    if isinstance(s, int):
        return s
    return int(e.get("version") or 0)


def waiting_to_free(stats, name="default"):
    """Old versions of `name` still waiting to be freed; None when /stats
    does not report it."""
    e = model_entry(stats, name)
    if not e or "waiting_to_free" not in e:
        return None
    return int(e["waiting_to_free"])


# --------------------------------------------------------------------------
# bundles
# --------------------------------------------------------------------------


def default_train_bin():
    """recd-train: $RECD_TRAIN, else next to $RECD_BIN, else bin/."""
    env = os.environ.get("RECD_TRAIN") or os.environ.get("RECD_TRAIN_BIN")
    if env:
        return env
    rb = os.environ.get("RECD_BIN")
    if rb:
        cand = os.path.join(os.path.dirname(rb), "recd-train")
        if os.access(cand, os.X_OK):
            return cand
    return os.path.join(ROOT, "bin", "recd-train")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            h.update(chunk)
    return h.hexdigest()


def write_json_fsync(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def reseal(bundle_dir, names):
    """Refresh the manifest's sha256/bytes of the listed files (a bundle
    that is not published yet may be edited; a published one never)."""
    mp = os.path.join(bundle_dir, "manifest.json")
    with open(mp) as f:
        m = json.load(f)
    for n in names:
        p = os.path.join(bundle_dir, n)
        m["files"][n] = {"sha256": sha256_file(p), "bytes": os.path.getsize(p)}
    write_json_fsync(mp, m)


def prefix_item_ids(bundle_dir, prefix):
    """Rename every item of an unpublished bundle to prefix + id (items.tsv
    column 0) and reseal. Item ids only enter the model through feature
    hashing at request time, so the bundle stays valid."""
    p = os.path.join(bundle_dir, "items.tsv")
    with open(p) as f:
        lines = f.read().split("\n")
    out = [lines[0]]
    for ln in lines[1:]:
        out.append(prefix + ln if ln else ln)
    with open(p, "w") as f:
        f.write("\n".join(out))
        f.flush()
        os.fsync(f.fileno())
    reseal(bundle_dir, ["items.tsv"])


def synth_bundle(out_models, version, name="default", items=200, dim=16, seed=1,
                 extra=(), train_bin=None, timeout=120):
    """`recd-train synth-bundle` into out_models/name/version (small by
    default: 200 items, dim 16, embeddings of 4). Returns the directory."""
    cmd = [train_bin or default_train_bin(), "synth-bundle", "--out", str(out_models),
           "--name", name, "--version", str(version), "--items", str(items),
           "--dim", str(dim), "--seed", str(seed)] + list(extra)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("synth-bundle failed (%s): %s%s" % (
            " ".join(cmd), p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")))
    return os.path.join(str(out_models), name, str(version))


SMALL = ("--embed", "4", "--rank-embed", "4", "--hidden", "16", "--rank-hidden", "16",
         "--index", "Flat")


def make_version(stage_models, version, name="default", items=200, dim=16, train_bin=None):
    """A small bundle for `version` whose item ids are "v<version>-<id>",
    written under stage_models (not the served models_dir). Returns its
    directory, ready for publish()."""
    d = synth_bundle(stage_models, version, name=name, items=items, dim=dim,
                     seed=version, extra=SMALL, train_bin=train_bin)
    prefix_item_ids(d, "v%d-" % version)
    return d


def version_of_item(item_id):
    """The version encoded in an item id "v<N>-...", or None."""
    m = re.match(r"^v([1-9][0-9]*)-", item_id)
    return int(m.group(1)) if m else None


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(src_dir, models_dir, version, name="default"):
    """Atomically publish the complete bundle src_dir as
    models_dir/name/version: one rename (same file system), then fsync of
    the model directory. Returns time.monotonic() right after the rename."""
    mdir = os.path.join(str(models_dir), name)
    os.makedirs(mdir, exist_ok=True)
    dst = os.path.join(mdir, str(version))
    if os.path.exists(dst):
        raise FileExistsError(dst)
    os.rename(src_dir, dst)
    t = time.monotonic()
    fsync_dir(mdir)
    return t


def clone_version(src_dir, models_dir, version, name="default", link=True, manifest=None):
    """Stage a copy of the bundle src_dir as version `version` in
    models_dir/name/.tmp-<version>/ (files hard-linked, or copied with
    link=False; manifest.json rewritten with the new version number), the
    way the writer stages one. manifest: src_dir's parsed manifest, if the
    caller has it. Returns the staging directory."""
    tmp = os.path.join(str(models_dir), name, ".tmp-%d" % version)
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    os.makedirs(tmp)
    if manifest is None:
        with open(os.path.join(src_dir, "manifest.json")) as f:
            manifest = json.load(f)
    man = dict(manifest)
    for fn in man["files"]:
        s, d = os.path.join(src_dir, fn), os.path.join(tmp, fn)
        if link:
            os.link(s, d)
        else:
            shutil.copyfile(s, d)
    man["version"] = int(version)
    man["name"] = name
    write_json_fsync(os.path.join(tmp, "manifest.json"), man)
    fsync_dir(tmp)
    return tmp


def verify_bundle(vdir):
    """Independent check that a published version directory is complete:
    its manifest parses, names the directory's version, and every listed
    file exists with the listed size and SHA-256; items.tsv has n_items
    rows. Returns a list of problems (empty = complete)."""
    probs = []
    mp = os.path.join(vdir, "manifest.json")
    try:
        with open(mp) as f:
            m = json.load(f)
    except (OSError, ValueError) as e:
        return ["manifest.json: %s" % e]
    base = os.path.basename(os.path.normpath(vdir))
    if str(m.get("version")) != base:
        probs.append("manifest version %r != directory %s" % (m.get("version"), base))
    files = m.get("files") or {}
    for req in ("tensors.bin", "items.tsv"):
        if req not in files:
            probs.append("files lacks %s" % req)
    for fn, info in files.items():
        p = os.path.join(vdir, fn)
        if not os.path.isfile(p):
            probs.append("%s missing" % fn)
            continue
        if os.path.getsize(p) != info.get("bytes"):
            probs.append("%s: %d bytes, manifest says %r" % (fn, os.path.getsize(p),
                                                             info.get("bytes")))
        elif sha256_file(p) != info.get("sha256"):
            probs.append("%s: sha-256 mismatch" % fn)
    try:
        with open(os.path.join(vdir, "items.tsv")) as f:
            rows = sum(1 for ln in f if ln.strip()) - 1
        if rows != m.get("n_items"):
            probs.append("items.tsv has %d rows, n_items %r" % (rows, m.get("n_items")))
    except OSError as e:
        probs.append("items.tsv: %s" % e)
    extra = set(os.listdir(vdir)) - set(files) - {"manifest.json"}
    if extra:
        probs.append("unlisted files %s" % sorted(extra))
    return probs


def versions_on_disk(models_dir, name="default"):
    """Published version numbers under models_dir/name (sorted)."""
    d = os.path.join(str(models_dir), name)
    try:
        names = os.listdir(d)
    except OSError:
        return []
    return sorted(int(n) for n in names if re.fullmatch(r"[1-9][0-9]*", n)
                  and os.path.isdir(os.path.join(d, n)))


def tmp_dirs(models_dir, name="default"):
    d = os.path.join(str(models_dir), name)
    try:
        return sorted(n for n in os.listdir(d) if n.startswith(".tmp-"))
    except OSError:
        return []


# --------------------------------------------------------------------------
# open-loop driver
# --------------------------------------------------------------------------


async def _read_response(reader):
    """One HTTP/1.1 response: (status, body bytes, keep_alive)."""
    line = await reader.readline()
    if not line:
        raise ConnectionError("closed before a status line")
    parts = line.decode("latin-1").split(" ", 2)
    status = int(parts[1])
    clen, chunked, close = None, False, False
    while True:
        h = await reader.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        k, v = k.strip().lower(), v.strip().lower()
        if k == "content-length":
            clen = int(v)
        elif k == "transfer-encoding" and "chunked" in v:
            chunked = True
        elif k == "connection" and v == "close":
            close = True
    body = b""
    if chunked:
        while True:
            size = int((await reader.readline()).split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                break
            body += await reader.readexactly(size + 2)
        body = body  # chunk CRLFs kept; the driver only needs the status
    elif clen:
        body = await reader.readexactly(clen)
    return status, body, not close


_TOTAL_RX = re.compile(rb'"total":\s*([0-9]+)')


class OpenLoop:
    """Send requests at a constant rate from a thread of its own.

    Request i is due at t0 + i / rate; it is sent then on an idle
    keep-alive connection (a new one is opened when none is idle, so a slow
    server never delays the schedule), and its latency is measured from
    the due time to the end of the response (no coordinated omission).
    Connections are capped at max_conns; beyond that requests queue in the
    client, still timed from their due time.
    make_request(i) returns (method, path, body bytes). Results: a list of
    (due, latency_s, status, server_us) with status -1 for a transport
    error; server_us is the response's "timing_us": {"total"} (recd's own
    handler time, no queueing), -1 when absent."""

    def __init__(self, port, rate, make_request, host="127.0.0.1", timeout=10.0,
                 max_conns=128):
        self.host, self.port, self.rate = host, port, float(rate)
        self.make_request = make_request
        self.timeout = timeout
        self.max_conns = max_conns
        self.results = []
        self.errors = []
        self._stop = threading.Event()
        self._thread = None
        self.connections_opened = 0
        self.late_sends = 0

    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join()
        return self.results

    def mark(self):
        """Index into results: results[mark:] are the requests due later."""
        return len(self.results)

    def _run(self):
        asyncio.run(self._main())

    async def _main(self):
        idle = []
        pending = set()
        # at most max_conns connections: past that a due request waits for
        # one to come free (its latency still counts from its due time)
        free = asyncio.Semaphore(self.max_conns)

        async def one(due, req):
            await free.acquire()
            try:
                await one_conn(due, req)
            finally:
                free.release()

        async def one_conn(due, req):
            conn = idle.pop() if idle else None
            try:
                if conn is None:
                    conn = await asyncio.wait_for(
                        asyncio.open_connection(self.host, self.port), self.timeout)
                    self.connections_opened += 1
                reader, writer = conn
                method, path, body = req
                head = ("%s %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                        "Content-Length: %d\r\n\r\n" % (method, path, self.host, self.port,
                                                         len(body)))
                writer.write(head.encode("latin-1") + body)
                status, rbody, keep = await asyncio.wait_for(_read_response(reader),
                                                              self.timeout)
                m = _TOTAL_RX.search(rbody)
                self.results.append((due, time.monotonic() - due, status,
                                     int(m.group(1)) if m else -1))
                if keep:
                    idle.append(conn)
                else:
                    writer.close()
            except Exception as e:  # noqa: BLE001 - any transport failure counts
                self.results.append((due, time.monotonic() - due, -1, -1))
                self.errors.append(repr(e))
                if conn is not None:
                    conn[1].close()

        t0 = time.monotonic() + 0.05
        i = 0
        while not self._stop.is_set():
            due = t0 + i / self.rate
            now = time.monotonic()
            if due > now:
                await asyncio.sleep(due - now)
            elif now - due > 0.005:
                self.late_sends += 1
            task = asyncio.ensure_future(one(due, self.make_request(i)))
            pending.add(task)
            task.add_done_callback(pending.discard)
            i += 1
        if pending:
            await asyncio.wait(pending, timeout=self.timeout)
        for _, w in idle:
            w.close()


class OpenLoopProcess:
    """OpenLoop in a child process (fork), so that the benchmark's own
    Python work (publishing, sampling) cannot delay sends or receives
    through the GIL. Due times are CLOCK_MONOTONIC, shared by both
    processes, so results can be sliced by the parent's phase times."""

    def __init__(self, port, rate, make_request, host="127.0.0.1", timeout=10.0):
        self.args = (port, rate, make_request, host, timeout)
        self.results, self.errors = [], []
        self.connections_opened = self.late_sends = 0

    def start(self):
        import multiprocessing as mp
        ctx = mp.get_context("fork")
        self._stop = ctx.Event()
        self._rx, tx = ctx.Pipe(duplex=False)
        self._p = ctx.Process(target=self._child, args=(tx,), daemon=True)
        self._p.start()
        tx.close()
        return self

    def _child(self, tx):
        drv = OpenLoop(*self.args).start()
        self._stop.wait()
        drv.stop()
        tx.send((drv.results, drv.errors[:20], drv.connections_opened, drv.late_sends))
        tx.close()

    def stop(self):
        self._stop.set()
        (self.results, self.errors, self.connections_opened,
         self.late_sends) = self._rx.recv()
        self._p.join()
        return self.results

    def between(self, t0, t1):
        """Results of the requests due in [t0, t1) (after stop())."""
        return [r for r in self.results if t0 <= r[0] < t1]


def percentile(values, q):
    """q-th percentile (0..100) by the nearest-rank method."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-q * len(s) // 100)) - 1))
    return s[k]


# --------------------------------------------------------------------------
# the benchmark
# --------------------------------------------------------------------------


def env_num(name, default, kind=float):
    v = os.environ.get(name)
    if v is None or v == "":
        return default
    try:
        x = kind(v)
    except ValueError:
        sys.exit("bench: %s must be a number, got %r" % (name, v))
    if x <= 0:
        sys.exit("bench: %s must be positive, got %r" % (name, v))
    return x


class Daemon:
    def __init__(self, bin_dir, workdir, models_dir, extra=None):
        self.bin = os.path.join(bin_dir, "recd")
        self.dir = workdir
        self.port, self.admin_port = free_ports(2)  # distinct: bound at once
        conf = {
            "http": {"listen": "127.0.0.1:%d" % self.port,
                     "workers": int(env_num("BENCH_WORKERS", 2, int))},
            "admin": {"listen": "127.0.0.1:%d" % self.admin_port},
            "log": {"level": "info"},
            "data_dir": os.path.join(workdir, "data"),
            "models_dir": models_dir,
            "models": {"serve": "default",
                       "keep_versions": int(env_num("BENCH_KEEP", 2, int))},
        }
        for k, v in (extra or {}).items():
            conf.setdefault(k, {}).update(v)
        os.makedirs(conf["data_dir"], exist_ok=True)
        self.conf_path = os.path.join(workdir, "recd.json")
        with open(self.conf_path, "w") as f:
            json.dump(conf, f, indent=1)
        self.log_path = os.path.join(workdir, "recd.stderr")
        self.proc = None

    def start(self, timeout=120):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.bin, "-c", self.conf_path], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("recd exited during start-up:\n" + self.tail())
            try:
                st, _ = self.request("GET", "/readyz", timeout=1)
                if st == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("recd not ready after %ds:\n%s" % (timeout, self.tail()))

    def request(self, method, path, body=None, admin=False, timeout=5):
        port = self.admin_port if admin else self.port
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=data,
                                     method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def stats(self):
        st, body = self.request("GET", "/stats")
        if st != 200:
            raise RuntimeError("/stats: %d" % st)
        return json.loads(body)

    def stats_quiet(self, timeout_s=30):
        """/stats, retried for up to timeout_s (an overloaded recd answers
        late); {} when it never answers."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                return self.stats()
            except (OSError, RuntimeError, ValueError):
                time.sleep(0.1)
        return {}

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()
        return self.proc.returncode if self.proc else None

    def tail(self, n=3000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-n:]
        except OSError:
            return ""


class Sampler:
    """VmRSS every 10 ms and the serving version every 50 ms, in a thread;
    also records when each version was first seen serving."""

    def __init__(self, d):
        self.d = d
        self.rss = []            # (t, bytes)
        self.first_seen = {}     # version -> monotonic time
        self.serving = 0
        self.stats = None
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._t.start()
        return self

    def stop(self):
        self._stop.set()
        self._t.join()

    def _run(self):
        n = 0
        while not self._stop.is_set():
            r = vmrss(self.d.proc.pid)
            if r:
                self.rss.append((time.monotonic(), r))
            if n % 5 == 0:
                try:
                    st = self.d.stats()
                    self.stats = st
                    v = serving_version(st)
                    self.serving = v
                    self.first_seen.setdefault(v, time.monotonic())
                except (OSError, RuntimeError, ValueError):
                    pass
            n += 1
            time.sleep(0.01)

    def rss_between(self, t0, t1):
        return [b for t, b in self.rss if t0 <= t <= t1]


def pick_bundle(bin_dir, work):
    src = os.environ.get("BENCH_BUNDLE")
    if src:
        if not os.path.isfile(os.path.join(src, "manifest.json")):
            sys.exit("bench: BENCH_BUNDLE=%s has no manifest.json" % src)
        return src, "BENCH_BUNDLE"
    vs = versions_on_disk(os.path.join(ROOT, "models"))
    if vs:
        return os.path.join(ROOT, "models", "default", str(vs[-1])), "models/default/%d" % vs[-1]
    print("bench: no models/default/<v> (make models); generating a 100k-item synth-bundle")
    out = os.path.join(work, "gen")
    d = synth_bundle(out, 1, items=100000, dim=64, seed=1,
                     train_bin=os.path.join(bin_dir, "recd-train"), timeout=600)
    return d, "synth-bundle 100k items, dim 64"


def item_ids(bundle_dir, limit=5000):
    ids = []
    with open(os.path.join(bundle_dir, "items.tsv")) as f:
        next(f)
        for ln in f:
            ids.append(ln.split("\t", 1)[0])
            if len(ids) >= limit:
                break
    return ids


def lat_summary(results, skip_s=0.5):
    """(n, errors, p50, p99, p99.9, max, server p99) in ms over results,
    dropping the first skip_s seconds (connections being opened)."""
    if not results:
        return (0, 0) + (float("nan"),) * 5
    t0 = results[0][0] + skip_s
    ok = [r[1] * 1000 for r in results if r[0] >= t0 and r[2] == 200]
    srv = [r[3] / 1000 for r in results if r[0] >= t0 and r[2] == 200 and r[3] >= 0]
    bad = sum(1 for r in results if r[0] >= t0 and r[2] != 200)
    return (len(ok) + bad, bad, percentile(ok, 50), percentile(ok, 99), percentile(ok, 99.9),
            max(ok) if ok else float("nan"), percentile(srv, 99))


BENCH_EVENTS = 20000


def main(argv):
    if len(argv) != 2 or not os.access(os.path.join(argv[1], "recd"), os.X_OK):
        sys.exit("usage: bench_swap.py BIN_DIR   (the directory holding recd)")
    bin_dir = os.path.abspath(argv[1])
    rate = env_num("BENCH_RATE", 200.0)
    phase_s = env_num("BENCH_PHASE_S", 12.0)
    interval = env_num("BENCH_SWAP_INTERVAL", 0.5)
    pub_rounds = int(env_num("BENCH_PUBLISH_ROUNDS", 5, int))
    trainer_max = env_num("BENCH_TRAINER_MAX_S", 90.0)
    # SIGTERM / SIGINT (timeout, ^C) unwind through the finally below, so
    # recd and the driver are stopped and the temporary directory removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load0 = os.getloadavg()
    work = tempfile.mkdtemp(prefix="bench_swap.")
    d = drv = None
    try:
        src, src_name = pick_bundle(bin_dir, work)
        with open(os.path.join(src, "manifest.json")) as f:
            src_man = json.load(f)
        bundle_bytes = dir_bytes(src)
        models = os.path.join(work, "models")
        os.makedirs(os.path.join(models, "default"))
        version = 1
        publish(clone_version(src, models, version, manifest=src_man), models, version)
        ids = item_ids(src)
        d = Daemon(bin_dir, work, models,
                   extra={"trainer": {"enabled": True, "interval_s": 1 << 30,
                                      "min_new_events": 1 << 40, "epochs": 1,
                                      "max_events": BENCH_EVENTS}})
        d.start()
        rng = random.Random(1)

        def make_request(i):
            hist = rng.sample(ids, 5)
            body = {"user_id": "u%d" % rng.randrange(5000), "k": 10, "history": hist}
            return "POST", "/v1/recommend", json.dumps(body).encode()

        # events over the bundle's items for the trainer phase (posted before
        # any measurement)
        evs = [{"user_id": "u%d" % rng.randrange(2000), "item_id": rng.choice(ids),
                "type": rng.choice(["click", "impression", "impression", "watch"]),
                "value": 1.0} for _ in range(BENCH_EVENTS)]
        for k in range(0, len(evs), 500):
            d.request("POST", "/v1/events", body={"events": evs[k:k + 500]}, timeout=30)

        sampler = Sampler(d).start()
        drv = OpenLoopProcess(d.port, rate, make_request).start()
        phases = {}  # name -> (t0, t1)

        # steady
        time.sleep(1.5)
        t0 = time.monotonic()
        time.sleep(phase_s)
        phases["steady"] = (t0, time.monotonic())
        print("bench: steady phase done", flush=True)

        # continuous swaps
        swaps0 = (model_entry(d.stats_quiet()) or {}).get("swaps")
        t1 = time.monotonic()
        published = {}
        nxt = t1
        while time.monotonic() < t1 + phase_s:
            version += 1
            tmp = clone_version(src, models, version, manifest=src_man)
            now = time.monotonic()
            if nxt > now:
                time.sleep(nxt - now)
            published[version] = publish(tmp, models, version)
            nxt += interval
        phases["swaps"] = (t1, time.monotonic())
        deadline = time.monotonic() + 60
        while sampler.serving < version and time.monotonic() < deadline:
            time.sleep(0.05)
        if sampler.serving < version:
            print("bench: version %d still not serving 60 s after its publish (serving %d)"
                  % (version, sampler.serving), flush=True)
        swap_rss = sampler.rss_between(t1, time.monotonic())
        served = sorted(v for v in published if v in sampler.first_seen)
        swaps1 = (model_entry(d.stats_quiet()) or {}).get("swaps")
        swaps_done = (swaps1 - swaps0) if isinstance(swaps0, int) and isinstance(
            swaps1, int) else None
        print("bench: swap phase done (%d published, %d seen serving)"
              % (len(published), len(served)), flush=True)

        # publish -> serving
        delays = []
        for _ in range(pub_rounds):
            time.sleep(0.5)
            version += 1
            tmp = clone_version(src, models, version, manifest=src_man)
            tp = publish(tmp, models, version)
            seen = None
            while time.monotonic() < tp + 30:
                try:
                    if serving_version(d.stats()) >= version:
                        seen = time.monotonic()
                        break
                except (OSError, RuntimeError):
                    pass
                time.sleep(0.005)
            delays.append((seen - tp) * 1000 if seen else float("inf"))
        last_swap = (model_entry(d.stats_quiet()) or {}).get("last_swap")

        # trainer
        trainer_note = None
        tr = d.stats_quiet().get("trainer")
        if not isinstance(tr, dict) or not tr.get("enabled"):
            trainer_note = "skipped: trainer not available (/stats trainer: %s)" % (
                json.dumps(tr)[:200])
        else:
            t2 = time.monotonic()
            busy, triggers, cycles_before = [], 0, tr.get("cycles", 0)
            # at least phase_s and at least one whole cycle (at most
            # BENCH_TRAINER_MAX_S): the trainer is re-triggered when idle
            while True:
                tr = d.stats_quiet().get("trainer") or {}
                el = time.monotonic() - t2
                done = (tr.get("cycles", 0) or 0) > cycles_before
                if el >= trainer_max or (el >= phase_s and done and tr.get("state") == "idle"):
                    break
                busy.append(tr.get("state") not in (None, "idle"))
                if (tr.get("state") == "idle" and el < phase_s) or triggers == 0:
                    st, body = d.request("POST", "/admin/train", admin=True)
                    if st == 404:
                        trainer_note = "skipped: POST /admin/train -> 404"
                        break
                    triggers += 1
                time.sleep(0.25)
            if trainer_note is None:
                phases["trainer"] = (t2, time.monotonic())
                tr = d.stats_quiet().get("trainer") or {}
                last = tr.get("last") or {}
                trainer_note = ("%.0f s, trainer busy in %d%% of 0.25 s samples; %d cycle(s) "
                                "triggered, %s finished; last: %s after %s ms %s" % (
                                    phases["trainer"][1] - t2,
                                    100 * sum(busy) // max(1, len(busy)), triggers,
                                    (tr.get("cycles", 0) or 0) - cycles_before,
                                    last.get("decision"), last.get("duration_ms"),
                                    (last.get("reason") or "")[:120]))

        # steady again: the spread between the two steady rows is the
        # machine's noise
        t3 = time.monotonic()
        time.sleep(phase_s)
        phases["steady 2"] = (t3, time.monotonic())
        time.sleep(0.2)
        drv.stop()
        sampler.stop()

        # report
        rows = {k: lat_summary(drv.between(*v), skip_s=0) for k, v in phases.items()}
        steady_rss = sorted(sampler.rss_between(*phases["steady"]))
        print()
        print("recd hot swap (issue 7): bundle %s, %.1f MB; open loop %.0f req/s, "
              "%gs per phase, a version every %gs" % (src_name, bundle_bytes / 1e6, rate,
                                                      phase_s, interval))
        print("%-10s %8s %6s %8s %8s %9s %8s %9s %11s" % (
            "phase", "requests", "errors", "p50 ms", "p99 ms", "p99.9 ms", "max ms",
            "p99/stdy", "recd p99 ms"))
        base = rows["steady"][3]
        for name in ("steady", "swaps", "trainer", "steady 2"):
            if name not in rows:
                continue
            n, bad, p50, p99, p999, mx, sp99 = rows[name]
            print("%-10s %8d %6d %8.2f %8.2f %9.2f %8.2f %9.2f %11.2f" % (
                name, n, bad, p50, p99, p999, mx, p99 / base, sp99))
        if "trainer" not in rows:
            print("%-10s %s" % ("trainer", trainer_note))
        else:
            print("trainer: %s" % trainer_note)
        steady_med = steady_rss[len(steady_rss) // 2] if steady_rss else float("nan")
        peak = max(swap_rss) if swap_rss else float("nan")
        print("(latency from each request's due time to its response, open loop; recd p99: "
              "the handler's own timing_us.total, without queueing)")
        print()
        print("RSS: steady %.1f MB (median), peak during swaps %.1f MB = %.2fx steady; "
              "peak - steady = %.1f MB = %.2fx the bundle (%.1f MB on disk)" % (
                  steady_med / 1e6, peak / 1e6, peak / steady_med, (peak - steady_med) / 1e6,
                  (peak - steady_med) / bundle_bytes, bundle_bytes / 1e6))
        if "trainer" in phases:
            trss = sampler.rss_between(*phases["trainer"])
            if trss:
                print("RSS during the trainer phase: peak %.1f MB = %.2fx steady"
                      % (max(trss) / 1e6, max(trss) / steady_med))
        print("swaps: %d versions published in %.1fs; swaps counted by /stats: %s; %d of the "
              "versions seen serving (the others were superseded while one loaded)"
              % (len(published), phases["swaps"][1] - phases["swaps"][0], swaps_done,
                 len(served)))
        dl = sorted(delays)
        print("publish -> serving (rename until /stats names it), %d rounds: median %.0f ms, "
              "max %.0f ms; last_swap %s" % (len(dl), dl[len(dl) // 2], dl[-1],
                                             json.dumps(last_swap)))
        print("machine load average at start %.1f, at end %.1f (2 cores shared: a busy "
              "machine inflates every percentile)" % (load0[0], os.getloadavg()[0]))
        print("driver: %d connections opened, %d sends late by > 5 ms, %d transport errors%s"
              % (drv.connections_opened, drv.late_sends, len(drv.errors),
                 (" (first: %s)" % drv.errors[0]) if drv.errors else ""))
        rc = d.stop()
        if rc != 0:
            print("bench: recd exited with %r after SIGTERM:\n%s" % (rc, d.tail()))
            return 1
        return 0
    finally:
        if drv is not None and getattr(drv, "_p", None) is not None and drv._p.is_alive():
            drv._p.kill()
        if d is not None and d.proc and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
