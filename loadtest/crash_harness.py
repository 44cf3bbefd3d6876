#!/usr/bin/python3
"""Crash-safety harness for recd's event ingest (POST /v1/events).

recd runs on one data_dir that persists across rounds, so the log grows
round after round. Each round: concurrent keep-alive clients post batches of
1..20 uniquely named events; recd is killed with SIGKILL at a random moment;
the harness reads what the crash left on disk; recd is restarted on the same
data_dir (recovery runs) and the log is checked. After the last round recd
is stopped with SIGTERM (exit status must be 0) and the whole log re-read.

What is checked after each restart (with our own reader of the on-disk
format, tests/integration/evlib.py, not the daemon's code):
  - every event acknowledged with 202 is in the log exactly once;
  - no event is in the log twice, and nothing is there that was never sent;
  - nothing of a batch answered 503 "overloaded" (or 4xx) was written;
  - every record passes its CRC and decodes as an event, segments leave no
    gap, and no torn tail is left: recovery must have cut it;
  - /stats events.log.recovered_truncated_bytes equals the torn tail seen on
    disk after the kill (plus a torn record this harness appends itself
    every third round, so recovery is exercised after rotation too);
  - /stats events.log.bytes and .segments match the directory;
  - `recdctl events verify --json` (when the binary exists) agrees.
Events sent but never acknowledged may or may not be present (at most once).
recd failing to start on the crashed log is a violation too.

The segment size alternates between 64 KiB (rotation under crash) and 4 MiB.
Usage:

    loadtest/crash_harness.py [--policies always,interval_ms] [--rounds 200]
                              [--clients 12] [--min-delay 0.05] [--max-delay 1.5]
                              [--interval-ms 20] [--verify-every 10]
                              [--replay-bytes 8388608]
                              [--seed N] [--workdir DIR] [--keep]

The recd binary is $RECD_BIN or bin/recd; recdctl is the one next to it (or
$RECDCTL_BIN). $RECD_SANITIZED=1 stretches every timeout (ASan builds).
Exit status: 0 when every round of every policy held, 1 on any violation,
2 when the harness itself could not run (no binary, bad options).
"""

import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import evlib  # noqa: E402

from benchlib import free_ports  # noqa: E402

SANITIZED = os.environ.get("RECD_SANITIZED", "") not in ("", "0")
SLOW = 3.0 if SANITIZED else 1.0
SMALL_SEGMENT = 65536
LARGE_SEGMENT = 4 << 20
# history.replay_bytes: each start replays this much of the log's end (the
# daemon's 256 MiB default costs seconds per restart once a soak's log is
# that big; 8 MiB still covers every crash region of the last rounds)
REPLAY_BYTES = 8 << 20


def default_recd():
    return os.environ.get("RECD_BIN") or os.path.join(ROOT, "bin", "recd")


def default_recdctl(recd_bin):
    return os.environ.get("RECDCTL_BIN") or os.path.join(os.path.dirname(recd_bin), "recdctl")


class HarnessError(Exception):
    """A round could not go on (recd did not start, a client hung)."""


# --------------------------------------------------------------------------
# the daemon
# --------------------------------------------------------------------------

class Daemon:
    """recd on a fixed data_dir; a new port and config file at every start."""

    def __init__(self, recd_bin, workdir, data_dir, events_conf, replay_bytes=None):
        self.bin = recd_bin
        self.workdir = workdir
        self.data_dir = data_dir
        self.models_dir = os.path.join(workdir, "models")
        os.makedirs(self.models_dir, exist_ok=True)
        self.events_conf = dict(events_conf)
        self.replay_bytes = replay_bytes
        self.stderr_path = os.path.join(workdir, "recd.stderr")
        self.proc = None
        self.port = None
        self.starts = 0

    @property
    def log_dir(self):
        return os.path.join(self.data_dir, "events")

    def start(self, segment_bytes):
        self.port = free_ports(1)[0]
        conf = {
            "http": {"listen": "127.0.0.1:%d" % self.port, "workers": 2},
            "admin": {"listen": ""},
            "log": {"level": "info"},
            "data_dir": self.data_dir,
            "models_dir": self.models_dir,
            "models": {"serve": ""},  # no model: ready at once
            "events": dict(self.events_conf, segment_bytes=segment_bytes),
        }
        if self.replay_bytes is not None:
            conf["history"] = {"replay_bytes": self.replay_bytes}
        path = os.path.join(self.workdir, "recd.json")
        with open(path, "w") as f:
            json.dump(conf, f, indent=2)
        err = open(self.stderr_path, "ab")
        err.write(b"\n===== start %d (segment_bytes %d) =====\n" % (self.starts, segment_bytes))
        err.flush()
        self.starts += 1
        try:
            self.proc = subprocess.Popen([self.bin, "-c", path], stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err, cwd=self.workdir)
        finally:
            err.close()
        deadline = time.monotonic() + 30 * SLOW
        last = None
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise HarnessError("recd exited with %d during start-up:\n%s"
                                   % (rc, self.log_tail()))
            try:
                st, _ = self.request("GET", "/readyz", timeout=1.0 * SLOW)
                if st == 200:
                    return
                last = "status %d" % st
            except (OSError, http.client.HTTPException) as e:
                last = repr(e)
            time.sleep(0.02)
        self.kill()
        raise HarnessError("recd not ready after %.0fs (%s):\n%s"
                           % (30 * SLOW, last, self.log_tail()))

    def request(self, method, path, body=None, timeout=5.0):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout * SLOW)
        try:
            hdrs = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def stats(self):
        st, body = self.request("GET", "/stats")
        if st != 200:
            raise HarnessError("GET /stats answered %d: %r" % (st, body[:300]))
        return json.loads(body)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        if self.proc:
            self.proc.wait()

    def stop(self):
        """SIGTERM; returns the exit status (None if it had to be killed)."""
        if not self.proc:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=20 * SLOW)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        return self.proc.returncode

    def log_tail(self, n=4000):
        try:
            with open(self.stderr_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - n))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


# --------------------------------------------------------------------------
# the ledger: what happened to every event sent
# --------------------------------------------------------------------------

ACKED, REFUSED, UNKNOWN = 1, 2, 3
ITEM_RE = re.compile(r"^[AIN](\d+)c(\d+)-(\d+)$")


class Ledger:
    """Per (round, client): one byte per event sequence number for its fate
    (0 never sent, ACKED, REFUSED, UNKNOWN) and one for how many times it
    is in the log, so a soak of millions of events stays small. An event is
    user "u<client>", item "<P><round>c<client>-<seq>" (P: the policy)."""

    def __init__(self):
        self.fate = {}
        self.count = {}

    @staticmethod
    def _grow(arr, n):
        if len(arr) < n:
            arr.extend(bytes(n - len(arr)))

    def record(self, rnd, cid, first, n, fate):
        a = self.fate.setdefault((rnd, cid), bytearray())
        self._grow(a, first + n)
        a[first:first + n] = bytes([fate]) * n

    @staticmethod
    def parse(ev):
        """(round, client, seq) of an event of ours, else None."""
        m = ITEM_RE.match(ev.get("item_id", ""))
        if not m:
            return None
        rnd, cid, seq = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if ev.get("user_id") != "u%d" % cid:
            return None
        return rnd, cid, seq

    def fate_of(self, key):
        if key is None:
            return 0
        a = self.fate.get(key[:2])
        return a[key[2]] if a is not None and key[2] < len(a) else 0

    def is_acked(self, ev):
        return self.fate_of(self.parse(ev)) == ACKED

    def seen(self, key):
        """Count one more copy of key in the log; returns the new count."""
        a = self.count.setdefault(key[:2], bytearray())
        self._grow(a, key[2] + 1)
        c = min(a[key[2]] + 1, 255)
        a[key[2]] = c
        return c

    def copies(self, key):
        a = self.count.get(key[:2])
        return a[key[2]] if a is not None and key[2] < len(a) else 0


# --------------------------------------------------------------------------
# clients
# --------------------------------------------------------------------------

class Outcome:
    """What one client learned about the batches it sent."""

    def __init__(self):
        self.batches = []  # (first seq, n, fate)
        self.statuses = {}
        self.odd = []      # unexpected answers (violations)

    def count(self, fate):
        return sum(n for _, n, f in self.batches if f == fate)


def client(cid, rnd, prefix, port, stop, seed, out):
    """POST batches of 1..20 events on one keep-alive connection until stop
    is set or recd is gone."""
    rng = random.Random(seed)
    user = "u%d" % cid
    tag = "%s%dc%d-" % (prefix, rnd, cid)
    seq = 0
    conn = None
    while not stop.is_set():
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10 * SLOW)
        n = rng.randint(1, 20)
        first = seq
        evs = []
        for _ in range(n):
            ev = {"user_id": user, "item_id": tag + str(seq)}
            k = rng.random()
            if k < 0.6:
                ev["type"] = "impression"
            elif k < 0.85:
                ev["type"] = "click"
            else:
                ev["type"] = "watch"
                ev["value"] = rng.randint(1, 3000)
            if rng.random() < 0.5:  # vary the record sizes
                ev["request_id"] = "q-%s%d" % (tag, seq)
            seq += 1
            evs.append(ev)
        body = json.dumps({"events": evs})
        try:
            conn.request("POST", "/v1/events", body=body,
                         headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException):
            out.batches.append((first, n, UNKNOWN))
            conn.close()
            conn = None
            if stop.is_set():
                break
            # recd gone (refused) ends the client; anything else: reconnect
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                break
            continue
        out.statuses[r.status] = out.statuses.get(r.status, 0) + 1
        if r.status == 202:
            try:
                accepted = json.loads(data).get("accepted")
            except ValueError:
                accepted = None
            if accepted != n:
                out.odd.append("202 with body %r for a batch of %d" % (data[:200], n))
            out.batches.append((first, n, ACKED))
            continue
        code = None
        try:
            code = json.loads(data)["error"]["code"]
        except (ValueError, KeyError, TypeError):
            pass
        if r.status == 503 and code == "overloaded":
            out.batches.append((first, n, REFUSED))
            time.sleep(0.01)
        elif r.status == 503 and code == "events_unavailable":
            out.batches.append((first, n, UNKNOWN))
            out.odd.append("503 events_unavailable: %r" % data[:300])
            break
        else:
            out.batches.append((first, n, REFUSED))
            out.odd.append("unexpected answer %d: %r" % (r.status, data[:300]))
    if conn is not None:
        conn.close()


# --------------------------------------------------------------------------
# one policy
# --------------------------------------------------------------------------

class PolicyResult:
    def __init__(self, policy):
        self.policy = policy
        self.rounds = 0
        self.sent = 0
        self.acked = 0
        self.lost_acked = 0
        self.duplicates = 0
        self.unacked_present = 0
        self.unknown_present = 0   # in the log, never sent (must be 0)
        self.rejected_present = 0  # refused batches written (must be 0)
        self.torn_cut = 0          # recovered_truncated_bytes summed over restarts
        self.torn_injected = 0
        self.records = 0
        self.segments = 0
        self.bytes = 0
        self.violations = []
        self.wall = 0.0

    def ok(self):
        return not self.violations


def recdctl_verify(recdctl, log_dir):
    """(summary dict or None, error string or None)."""
    try:
        p = subprocess.run([recdctl, "events", "verify", "--dir", log_dir, "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300 * SLOW)
    except subprocess.TimeoutExpired:
        return None, "recdctl events verify timed out"
    if p.returncode != 0:
        return None, "recdctl events verify exited %d: %s %s" % (
            p.returncode, p.stdout.decode(errors="replace")[-1000:],
            p.stderr.decode(errors="replace")[-1000:])
    try:
        return json.loads(p.stdout), None
    except ValueError:
        return None, "recdctl events verify --json printed no JSON: %r" % p.stdout[:500]


def run_policy(policy, rounds, workdir, recd_bin=None, recdctl=None, clients=12,
               min_delay=0.05, max_delay=1.5, seed=1, interval_ms=20, inject_every=3,
               verify_every=1, replay_bytes=REPLAY_BYTES, tamper=None, say=print):
    """Run `rounds` crash rounds under one fsync policy in workdir (a fresh
    directory). Returns a PolicyResult; violations are listed, not raised
    (recd failing to start on the crashed log is one). recdctl: its path,
    None for the one next to recd_bin, "" to skip; it runs after every
    verify_every-th restart and at the end. replay_bytes: recd's
    history.replay_bytes (None: its default, 256 MiB, which makes every
    restart of a long soak replay that much). tamper, for testing the harness
    itself, is called as tamper(log_dir, is_acked) after each kill, before
    the log is read (is_acked(event dict) -> bool), and may damage the log."""
    recd_bin = recd_bin or default_recd()
    if recdctl is None:
        recdctl = default_recdctl(recd_bin)
    if recdctl and not os.access(recdctl, os.X_OK):
        recdctl = None
    prefix = {"always": "A", "interval_ms": "I"}.get(policy, "N")
    rng = random.Random("%s-%d" % (policy, seed))
    res = PolicyResult(policy)
    t_start = time.monotonic()
    ev_conf = {"fsync": policy}
    if policy == "interval_ms":
        ev_conf["interval_ms"] = interval_ms
    d = Daemon(recd_bin, workdir, os.path.join(workdir, "data"), ev_conf, replay_bytes)
    reader = evlib.LogReader(d.log_dir)
    ledger = Ledger()
    acked_pending = []  # (round, client, first, n) acknowledged, not yet checked
    expect_cut = 0

    def violation(msg):
        res.violations.append(msg)
        say("  VIOLATION [%s]: %s" % (policy, msg))

    def ingest(new, rnd):
        """Account for records read from the log for the first time."""
        for off, payload in new:
            res.records += 1
            try:
                ev = evlib.decode_event(payload)
            except ValueError as e:
                violation("round %d: record at log offset %d: %s" % (rnd, off, e))
                continue
            key = ledger.parse(ev)
            fate = ledger.fate_of(key)
            if fate == 0:
                res.unknown_present += 1
                if res.unknown_present <= 10:
                    violation("round %d: event %s/%s at log offset %d was never sent"
                              % (rnd, ev["user_id"], ev["item_id"], off))
                continue
            if ledger.seen(key) == 2:
                res.duplicates += 1
                if res.duplicates <= 10:
                    violation("round %d: event %s is in the log twice (again at log offset %d)"
                              % (rnd, ev["item_id"], off))
            if fate == REFUSED:
                res.rejected_present += 1
                if res.rejected_present <= 10:
                    violation("round %d: event %s of a refused batch is in the log"
                              % (rnd, ev["item_id"]))

    def check_after_restart(rnd, final=False):
        """Verify the log the previous round left, now that recd recovered it."""
        nonlocal acked_pending
        lg = d.stats()["events"]["log"]
        cut = lg.get("recovered_truncated_bytes", 0)
        res.torn_cut += cut
        if cut != expect_cut:
            violation("round %d: recovery cut %d bytes, the torn tail on disk was %d"
                      % (rnd, cut, expect_cut))
        if lg.get("failed"):
            violation("round %d: log failed right after start: %s" % (rnd, lg.get("failed_msg")))
        new, problems, tail = reader.scan()
        for p in problems:
            violation("round %d: %s" % (rnd, p))
        if tail:
            violation("round %d: a torn tail of %d bytes is left after recovery" % (rnd, tail))
        ingest(new, rnd)
        for r, c, first, n in acked_pending:
            for seq in range(first, first + n):
                if ledger.copies((r, c, seq)) == 0:
                    res.lost_acked += 1
                    if res.lost_acked <= 10:
                        violation("round %d: acknowledged event %s%dc%d-%d is not in the log"
                                  % (rnd, prefix, r, c, seq))
        acked_pending = []
        segs = evlib.list_segments(d.log_dir)
        size = sum(os.path.getsize(p) for _, p in segs)
        if lg.get("bytes") != size or lg.get("segments") != len(segs):
            violation("round %d: /stats says %s bytes in %s segments, the directory holds %d "
                      "in %d" % (rnd, lg.get("bytes"), lg.get("segments"), size, len(segs)))
        res.segments, res.bytes = len(segs), size
        if recdctl and (final or (rnd + 1) % verify_every == 0):
            summary, err = recdctl_verify(recdctl, d.log_dir)
            if err:
                violation("round %d: %s" % (rnd, err))
            elif (summary.get("ok") is not True or summary.get("records") != res.records
                  or summary.get("bytes") != size or summary.get("tail_bytes") != 0):
                violation("round %d: recdctl events verify says ok=%r, %r records, %r bytes, "
                          "tail %r; the reader: %d records, %d bytes, no tail"
                          % (rnd, summary.get("ok"), summary.get("records"),
                             summary.get("bytes"), summary.get("tail_bytes"), res.records, size))
        return cut

    try:
        seg = SMALL_SEGMENT
        d.start(seg)
        check_after_restart(-1)
        for rnd in range(rounds):
            t0 = time.monotonic()
            lost0, dup0 = res.lost_acked, res.duplicates
            # ---- ingest, then crash ----
            stop = threading.Event()
            outs = [Outcome() for _ in range(clients)]
            threads = [threading.Thread(target=client, daemon=True,
                                        args=(c, rnd, prefix, d.port, stop, rng.random(),
                                              outs[c])) for c in range(clients)]
            for t in threads:
                t.start()
            delay = rng.uniform(min_delay, max_delay) * SLOW
            time.sleep(delay)
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait()
            stop.set()
            for t in threads:
                t.join(30 * SLOW)
                if t.is_alive():
                    raise HarnessError("a client thread did not finish after the kill")
            r_sent = r_acked = nbatches = 0
            statuses = {}
            for cid, o in enumerate(outs):
                for first, n, fate in o.batches:
                    ledger.record(rnd, cid, first, n, fate)
                    r_sent += n
                    if fate == ACKED:
                        r_acked += n
                        acked_pending.append((rnd, cid, first, n))
                nbatches += len(o.batches)
                for s, n in o.statuses.items():
                    statuses[s] = statuses.get(s, 0) + n
                for msg in o.odd[:3]:
                    violation("round %d: %s" % (rnd, msg))
            res.sent += r_sent
            res.acked += r_acked
            if tamper:
                tamper(d.log_dir, ledger.is_acked)
            # ---- what the crash left on disk, before recovery runs ----
            new, problems, tail = reader.scan()
            for p in problems:
                violation("round %d (after the kill): %s" % (rnd, p))
            ingest(new, rnd)
            injected = 0
            if inject_every and rnd % inject_every == inject_every - 1:
                # a torn append of our own (never sent, so it must not survive)
                segs = evlib.list_segments(d.log_dir)
                fake = json.dumps({"ts": 1, "user_id": "torn", "item_id": "torn-%d" % rnd,
                                   "type": "click", "value": 1},
                                  separators=(",", ":")).encode()
                keep = rng.randint(1, len(fake) + evlib.HEADER - 1)
                with open(segs[-1][1], "ab") as f:
                    f.write(evlib.torn_copy(fake, keep))
                injected = keep
                res.torn_injected += keep
            expect_cut = tail + injected
            # ---- restart (recovery runs) and check ----
            used = seg
            seg = SMALL_SEGMENT if rnd % 2 == 1 else LARGE_SEGMENT
            d.start(seg)
            cut = check_after_restart(rnd, final=rnd == rounds - 1)
            res.rounds += 1
            say("[%s] round %3d: seg %7d  kill after %.2fs  batches %5d  sent %6d  acked %6d  "
                "torn %3d+%-3d cut %3d  lost %d dup %d  records %8d  segs %4d  %.2fs  %s"
                % (policy, rnd, used, delay, nbatches, r_sent, r_acked, tail, injected, cut,
                   res.lost_acked - lost0, res.duplicates - dup0, res.records, res.segments,
                   time.monotonic() - t0,
                   " ".join("%d:%d" % kv for kv in sorted(statuses.items()))))
        # ---- a clean stop ----
        rc = d.stop()
        if rc != 0:
            violation("recd exited with %r after SIGTERM (expected 0):\n%s" % (rc, d.log_tail()))
        # ---- a full re-read of everything, against the running totals ----
        final = Ledger()
        final.fate = ledger.fate
        nrec = 0
        for base, path in evlib.list_segments(d.log_dir):
            s = evlib.scan_segment(path)
            if s.bad_at is not None:
                violation("final read: %s: bad record at byte offset %d"
                          % (os.path.basename(path), s.bad_at))
            for _, payload in s.records:
                nrec += 1
                try:
                    key = final.parse(evlib.decode_event(payload))
                except ValueError:
                    continue
                if key is not None:
                    final.seen(key)
        if nrec != res.records:
            violation("final read: %d records, the incremental reads saw %d" % (nrec, res.records))
        lost = dup = unacked = 0
        for k, fate in ledger.fate.items():
            cnt = final.count.get(k, bytearray())
            for seq, f in enumerate(fate):
                c = cnt[seq] if seq < len(cnt) else 0
                if f == ACKED and c != 1:
                    lost += 1
                elif f != ACKED and c > 1:
                    dup += 1
                elif f != ACKED and c == 1:
                    unacked += 1
        if lost or dup:
            violation("final read: %d acknowledged events not in the log exactly once, %d "
                      "others more than once" % (lost, dup))
        res.unacked_present = unacked
    except HarnessError as e:
        # recd not starting on a crashed log is itself a crash-safety failure
        violation("round %d: %s" % (res.rounds, e))
    finally:
        d.kill()
        res.wall = time.monotonic() - t_start
    return res


def table(results):
    cols = ("policy", "rounds", "sent", "acked", "lost acked", "duplicates", "unacked present",
            "never sent", "refused present", "torn cut", "(injected)", "records", "segments",
            "MB", "wall s")
    rows = [cols]
    for r in results:
        rows.append((r.policy, r.rounds, r.sent, r.acked, r.lost_acked, r.duplicates,
                     r.unacked_present, r.unknown_present, r.rejected_present, r.torn_cut,
                     r.torn_injected, r.records, r.segments, "%.1f" % (r.bytes / 1e6),
                     "%.1f" % r.wall))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(cols))]
    lines = []
    for j, row in enumerate(rows):
        lines.append("  ".join(str(v).rjust(widths[i]) for i, v in enumerate(row)))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--policies", default="always,interval_ms")
    ap.add_argument("--rounds", type=int, default=200, help="rounds per policy")
    ap.add_argument("--clients", type=int, default=12)
    ap.add_argument("--min-delay", type=float, default=0.05)
    ap.add_argument("--max-delay", type=float, default=1.5)
    ap.add_argument("--interval-ms", type=int, default=20)
    ap.add_argument("--replay-bytes", type=int, default=REPLAY_BYTES,
                    help="recd's history.replay_bytes (-1: its default)")
    ap.add_argument("--verify-every", type=int, default=10,
                    help="run recdctl events verify after every N-th restart (and the last)")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--workdir", help="keep everything here (default: a temporary directory)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--recd", default=default_recd())
    a = ap.parse_args(argv)
    policies = [p for p in a.policies.split(",") if p]
    for p in policies:
        if p not in ("always", "interval_ms", "never"):
            ap.error("unknown policy %r" % p)
    if (a.rounds < 1 or a.clients < 1 or a.verify_every < 1
            or not 0 < a.min_delay <= a.max_delay):
        ap.error("need --rounds >= 1, --clients >= 1, --verify-every >= 1, "
                 "0 < --min-delay <= --max-delay")
    if not os.access(a.recd, os.X_OK):
        print("crash_harness: %s is not an executable (make, or set RECD_BIN)" % a.recd,
              file=sys.stderr)
        return 2
    top = a.workdir or tempfile.mkdtemp(prefix="recd-crash-")
    os.makedirs(top, exist_ok=True)
    recdctl = default_recdctl(a.recd)
    print("crash harness: recd %s, recdctl %s, seed %d, %d rounds per policy, %d clients, "
          "kill after %.2f..%.2fs, work dir %s"
          % (a.recd, recdctl if os.access(recdctl, os.X_OK) else "(not built: skipped)",
             a.seed, a.rounds, a.clients, a.min_delay, a.max_delay, top), flush=True)
    results = []
    status = 0
    try:
        for p in policies:
            wd = os.path.join(top, p)
            if os.path.exists(wd):
                shutil.rmtree(wd)
            os.makedirs(wd)
            r = run_policy(p, a.rounds, wd, recd_bin=a.recd, clients=a.clients,
                           min_delay=a.min_delay, max_delay=a.max_delay, seed=a.seed,
                           interval_ms=a.interval_ms, verify_every=a.verify_every,
                           replay_bytes=None if a.replay_bytes < 0 else a.replay_bytes,
                           say=lambda s: print(s, flush=True))
            results.append(r)
            if not r.ok():
                status = max(status, 1)
        print()
        print(table(results))
        for r in results:
            for v in r.violations[:20]:
                print("VIOLATION [%s] %s" % (r.policy, v))
        print("\nresult: %s" % ("OK" if status == 0 else "FAILED (exit %d)" % status))
    finally:
        if not a.workdir and not a.keep and status == 0:
            shutil.rmtree(top, ignore_errors=True)
        elif status != 0 or a.keep:
            print("work dir kept: %s" % top)
    return status


if __name__ == "__main__":
    sys.exit(main())
