"""Crash safety and disk errors of recd's event ingest (POST /v1/events).

  - crash rounds: loadtest/crash_harness.py (SIGKILL at random moments under
    concurrent load, restart, check the log) for fsync always and
    interval_ms, and proof that its checks catch a lost or doubled event;
  - disk errors while running: a file-size limit (RLIMIT_FSIZE: EFBIG) and
    a full tmpfs (ENOSPC) stop acknowledgements, visibly (503, /readyz,
    /stats), and everything acknowledged before survives a restart;
  - a read-only or unusable data_dir at start: a clear start-up error;
  - recovery at start: torn tails cut (header, payload, exact boundary),
    mid-segment corruption refused with file and offset, or skipped with
    events.skip_corrupt.

The log is read with tests/integration/evlib.py, an independent reader of
the format in include/recd/events.h.
"""

import errno
import json
import os
import resource
import signal
import subprocess
import sys

import pytest

import evlib
from conftest import RECD_BIN, ROOT, SANITIZED, Recd, scaled, wait_until

sys.path.insert(0, os.path.join(ROOT, "loadtest"))
import crash_harness  # noqa: E402

RECDCTL = os.path.join(os.path.dirname(RECD_BIN), "recdctl")


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def post_events(d, events, timeout=None):
    return d.request("POST", "/v1/events", body={"events": events}, timeout=timeout)


def batch(tag, i, n=10, user="u1", typ="click"):
    """n events with unique items "<tag>-<i>-<j>"."""
    return [{"user_id": user, "item_id": "%s-%d-%d" % (tag, i, j), "type": typ}
            for j in range(n)]


def wait_readyz(d):
    """/readyz 200 (an empty models dir is ready a moment after /healthz)."""
    wait_until(lambda: d.get("/readyz").status == 200, scaled(10), what="/readyz 200")


def log_dir(d):
    return os.path.join(d.config["data_dir"], "events")


def log_events(path):
    """(events decoded in log order, problems, torn tail bytes)."""
    records, problems, tail = evlib.read_log(path)
    return [evlib.decode_event(p) for _, p in records], problems, tail


def assert_clean_log(path, must_hold=(), exactly_once=True):
    """The log at path has no damage and no torn tail, and every key of
    must_hold is in it exactly once. Returns the decoded events."""
    evs, problems, tail = log_events(path)
    assert not problems, problems
    assert tail == 0, "torn tail of %d bytes left in %s" % (tail, path)
    counts = {}
    for ev in evs:
        k = evlib.event_key(ev)
        counts[k] = counts.get(k, 0) + 1
    if exactly_once:
        dups = [k for k, c in counts.items() if c > 1]
        assert not dups, "events in the log more than once: %r" % dups[:5]
    missing = [k for k in must_hold if counts.get(k, 0) != 1]
    assert not missing, "%d acknowledged events missing, e.g. %r" % (len(missing), missing[:5])
    return evs


class LimitedRecd(Recd):
    """Recd started under an RLIMIT_FSIZE (bytes) and with SIGXFSZ ignored in
    the child before exec (recd ignores it itself too; doing it here as well
    keeps the test meaningful on a binary that forgot to)."""

    fsize = None

    def start(self, wait=True):
        limit = self.fsize

        def preexec():
            if limit is not None:
                resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

        self._stderr = open(self.stderr_path, "ab")
        self._stdout = open(self.stdout_path, "ab")
        self.proc = subprocess.Popen(
            [RECD_BIN, "-c", self.config_path] + self.args,
            stdin=subprocess.DEVNULL, stdout=self._stdout, stderr=self._stderr,
            env=self.env, cwd=self.dir, preexec_fn=preexec)
        if wait:
            self.wait_ready()
        return self


def limited(factory, config, fsize, name=None):
    name = name or "recd%d" % len(factory.daemons)
    d = LimitedRecd(os.path.join(factory.base_dir, name), config=config, name=name)
    d.fsize = fsize
    d.expect_zero_exit = True
    factory.daemons.append(d)
    return d


def start_fails(d, timeout=None):
    """Start d, expect it to exit non-zero during start-up; returns its log."""
    d.start(wait=False)
    rc = d.wait_exit(timeout or scaled(20))
    if rc is None:
        d.proc.kill()
        d.proc.wait()
        pytest.fail("recd kept running on a broken event log:\n" + d.log())
    d._close_files()
    d.expect_zero_exit = False
    assert rc != 0, "recd exited 0 on a broken event log:\n" + d.log()
    return d.log()


def fill_until_failure(d, tag, max_batches=500, n=10):
    """POST batches until one is not 202; returns (acked keys, that response)."""
    acked = []
    for i in range(max_batches):
        evs = batch(tag, i, n=n)
        r = post_events(d, evs)
        if r.status != 202:
            return acked, r
        assert r.json() == {"accepted": n}, r
        acked.extend(evlib.event_key(e) for e in evs)
    pytest.fail("the log never failed after %d batches" % max_batches)


def check_failed_state(d, errname):
    """After a write failure: 503 on ingest, /readyz 503 naming the failure,
    /stats and /metrics showing it."""
    for i in range(3):
        r = post_events(d, batch("after", i, n=2))
        assert r.status == 503, r
        err = r.error()
        assert err["code"] == "events_unavailable", err
    r = d.get("/readyz")
    assert r.status == 503, r
    msg = r.error()["message"]
    assert "event log" in msg and errname in msg, msg
    lg = d.stats()["events"]["log"]
    assert lg["failed"] is True, lg
    assert errname in lg["failed_msg"] and ".seg" in lg["failed_msg"], lg
    assert lg["queue_batches"] == 0, lg
    assert "recd_event_log_failed 1" in d.metrics()
    # the rest of the server keeps answering
    assert d.get("/healthz").status == 200
    return lg


# --------------------------------------------------------------------------
# 1. crash rounds (the harness)
# --------------------------------------------------------------------------

ROUNDS = 6 if SANITIZED else 16


@pytest.mark.parametrize("policy", ["always", "interval_ms"])
def test_crash_rounds(tmp_path, policy):
    lines = []
    res = crash_harness.run_policy(
        policy, ROUNDS, str(tmp_path), recd_bin=RECD_BIN, clients=8,
        min_delay=0.05, max_delay=0.3, seed=12345, say=lines.append)
    print("\n".join(lines))
    print(crash_harness.table([res]))
    assert res.ok(), "\n".join(res.violations[:20])
    assert res.rounds == ROUNDS
    # the rounds did real work: events were acknowledged, crashes left
    # unacknowledged ones behind, segments rotated, injected torn tails cut
    assert res.acked > 100 * ROUNDS, res.acked
    assert res.segments > 2, res.segments
    assert res.torn_cut >= res.torn_injected > 0
    assert res.lost_acked == 0 and res.duplicates == 0


def _drop_last_acked(log_path, is_acked):
    """Cut the log just before the last acknowledged record of the last
    segment (a 'lost acknowledged event')."""
    base, path = evlib.list_segments(log_path)[-1]
    s = evlib.scan_segment(path)
    for pos, payload in reversed(s.records):
        if is_acked(evlib.decode_event(payload)):
            os.truncate(path, pos)
            return 1
    return 0


def _double_last(log_path, is_acked):
    """Append a second copy of the last record (a duplicate)."""
    base, path = evlib.list_segments(log_path)[-1]
    s = evlib.scan_segment(path)
    if not s.records:
        return 0
    with open(path, "ab") as f:
        f.write(evlib.frame(s.records[-1][1]))
    return 1


@pytest.mark.parametrize("damage", ["lost", "duplicate", "corrupt"])
def test_harness_catches_damage(tmp_path, damage):
    """The harness's checks can fail: damage the log between the kill and
    the restart and expect a violation."""
    done = []

    def tamper(path, is_acked):
        if done:
            return
        if damage == "lost":
            ok = _drop_last_acked(path, is_acked)
        elif damage == "duplicate":
            ok = _double_last(path, is_acked)
        else:  # flip a byte inside the first record of the last segment
            base, seg = evlib.list_segments(path)[-1]
            if os.path.getsize(seg) < 64:
                return
            with open(seg, "r+b") as f:
                f.seek(20)
                b = f.read(1)
                f.seek(20)
                f.write(bytes([b[0] ^ 0x40]))
            ok = 1
        if ok:
            done.append(1)

    res = crash_harness.run_policy("always", 3, str(tmp_path), recd_bin=RECD_BIN, clients=4,
                                   min_delay=0.15, max_delay=0.3, seed=7, tamper=tamper,
                                   say=lambda s: None)
    assert done, "the tamper hook never ran"
    assert not res.ok()
    text = "\n".join(res.violations)
    print(text)
    if damage == "lost":
        assert res.lost_acked >= 1 or "shrank" in text, text
    elif damage == "duplicate":
        assert res.duplicates >= 1, text
    else:
        # recd refuses the corrupt segment (or the reader flags it)
        assert "corrupt" in text or "damaged" in text or res.lost_acked, text


def test_evlib_reader_self_check():
    """The reader's CRC and framing match the specification's check value
    and see a torn tail as a tail and a flipped byte as damage."""
    assert evlib.crc32c(b"123456789") == 0xE3069283
    assert evlib.crc32c(b"") == 0
    data = b"".join(os.urandom(300) for _ in range(80))
    spans = [(i * 300, 1 + (i * 37) % 299) for i in range(80)]
    mv = memoryview(data)
    assert evlib.crc32c_many(data, spans) == [evlib.crc32c(mv[s:s + n]) for s, n in spans]
    recs = [evlib.frame(b'{"i":%d}' % i) for i in range(10)]
    buf = b"".join(recs)
    tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"), "evlib-self-%d.seg" % os.getpid())
    try:
        with open(tmp, "wb") as f:
            f.write(buf + recs[0][:5])
        s = evlib.scan_segment(tmp)
        assert len(s.records) == 10 and s.tail == 5 and s.resume is None
        bad = bytearray(buf)
        bad[len(recs[0]) + 9] ^= 1
        with open(tmp, "wb") as f:
            f.write(bad)
        s = evlib.scan_segment(tmp)
        assert len(s.records) == 1 and s.bad_at == len(recs[0])
        assert s.resume == 2 * len(recs[0]) and s.tail == 0
    finally:
        os.unlink(tmp)


# --------------------------------------------------------------------------
# 2a. RLIMIT_FSIZE: writes fail with EFBIG
# --------------------------------------------------------------------------

def test_sigxfsz_ignored_by_recd(recd_factory):
    """Without the test's own SIG_IGN, recd must survive passing the limit
    (it ignores SIGXFSZ itself) and fail the log with EFBIG instead."""
    cfg = {"log": {"level": "info"},
           "events": {"fsync": "always", "segment_bytes": 1 << 20}}
    d = limited(recd_factory, cfg, 16384)
    preexec_limit = d.fsize

    def start_no_ign(wait=True):
        d._stderr = open(d.stderr_path, "ab")
        d._stdout = open(d.stdout_path, "ab")
        d.proc = subprocess.Popen(
            [RECD_BIN, "-c", d.config_path], stdin=subprocess.DEVNULL,
            stdout=d._stdout, stderr=d._stderr, env=d.env, cwd=d.dir,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE,
                                                  (preexec_limit, preexec_limit)))
        d.wait_ready()

    start_no_ign()
    acked, r = fill_until_failure(d, "x")
    assert d.alive(), "recd died passing RLIMIT_FSIZE (SIGXFSZ not ignored?):\n" + d.log()
    assert r.status == 503 and r.error()["code"] == "events_unavailable", r
    assert acked


@pytest.mark.parametrize("policy", ["always", "interval_ms"])
def test_rlimit_fsize_stops_acks(recd_factory, policy):
    limit = 32768
    cfg = {"log": {"level": "info"},
           "events": {"fsync": policy, "interval_ms": 20, "segment_bytes": 1 << 20}}
    d = limited(recd_factory, cfg, limit)
    d.start()
    acked, first_bad = fill_until_failure(d, "f")
    assert first_bad.status == 503, first_bad
    assert first_bad.error()["code"] == "events_unavailable", first_bad
    assert "File too large" in first_bad.error()["message"], first_bad
    assert len(acked) * 100 > limit // 2, "failed too early: %d events" % len(acked)
    lg = check_failed_state(d, "File too large")
    assert lg["failed_errno"] == errno.EFBIG, lg
    assert d.stats()["events"]["rejected"]["log_failed"] >= 4
    d.wait_log(r"event log.*(File too large|failed)")
    segs = evlib.list_segments(log_dir(d))
    assert all(os.path.getsize(p) <= limit for _, p in segs)
    assert d.stop() == 0, d.log()
    # no limit: everything acknowledged before the failure is there
    d.fsize = None
    d.start()
    wait_readyz(d)
    assert d.stats()["events"]["log"]["failed"] is False
    assert_clean_log(log_dir(d), acked)
    r = post_events(d, batch("again", 0, n=3))
    assert r.status == 202, r
    assert_clean_log(log_dir(d), acked + [evlib.event_key(e) for e in batch("again", 0, n=3)])


# --------------------------------------------------------------------------
# 2b. a full file system (tmpfs)
# --------------------------------------------------------------------------

@pytest.fixture
def small_tmpfs(tmp_path):
    """A 1 MiB tmpfs mounted under tmp_path (skipped where mounting is not
    allowed, e.g. unprivileged CI containers)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(mnt)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (%s): the full-disk test needs root with "
                    "CAP_SYS_ADMIN" % p.stdout.decode(errors="replace").strip())
    try:
        yield str(mnt)
    finally:
        if subprocess.run(["umount", str(mnt)], stderr=subprocess.DEVNULL).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)])


def fill_fs(path):
    """Write a filler file until the file system is full (ENOSPC, down to
    the last byte); returns its path."""
    filler = os.path.join(path, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for chunk in (65536, 4096, 1):
            while True:
                try:
                    os.write(fd, b"\0" * chunk)
                except OSError as e:
                    assert e.errno == errno.ENOSPC, e
                    break
    finally:
        os.close(fd)
    return filler


@pytest.mark.parametrize("policy", ["always", "interval_ms"])
def test_full_filesystem_stops_acks(recd_factory, small_tmpfs, policy):
    data = os.path.join(small_tmpfs, "data")
    cfg = {"log": {"level": "info"}, "data_dir": data,
           "events": {"fsync": policy, "interval_ms": 20, "segment_bytes": 1 << 20}}
    d = recd_factory(cfg)
    # some events on the empty file system first
    acked = []
    for i in range(5):
        evs = batch("pre", i)
        assert post_events(d, evs).status == 202
        acked.extend(evlib.event_key(e) for e in evs)
    filler = fill_fs(small_tmpfs)
    try:
        more, first_bad = fill_until_failure(d, "full")
        acked.extend(more)
        assert first_bad.status == 503, first_bad
        assert first_bad.error()["code"] == "events_unavailable", first_bad
        lg = check_failed_state(d, "No space left on device")
        assert lg["failed_errno"] == errno.ENOSPC, lg
        assert d.stop() == 0, d.log()
    finally:
        os.unlink(filler)
    d.start()
    wait_readyz(d)
    assert_clean_log(os.path.join(data, "events"), acked)
    assert post_events(d, batch("post", 0)).status == 202
    d.stop()


# --------------------------------------------------------------------------
# 2c. an unusable data_dir at start
# --------------------------------------------------------------------------

def test_data_dir_under_a_file(recd_factory, tmp_path):
    f = tmp_path / "plainfile"
    f.write_text("not a directory")
    d = recd_factory({"data_dir": str(f / "data")}, start=False)
    log = start_fails(d)
    assert str(f) in log and "Not a directory" in log, log


def test_data_dir_error_message_is_intact(recd_factory, tmp_path):
    f = tmp_path / "plainfile"
    f.write_text("not a directory")
    d = recd_factory({"data_dir": str(f / "data")}, start=False)
    log = start_fails(d)
    assert "cannot create %s: Not a directory" % (f / "data") in log, log


def test_events_dir_is_a_file(recd_factory, tmp_path):
    data = tmp_path / "dataf"
    data.mkdir()
    (data / "events").write_text("x")
    d = recd_factory({"data_dir": str(data)}, start=False)
    log = start_fails(d)
    assert "event log" in log and str(data / "events") in log, log


def test_data_dir_vanished_and_recreated(recd_factory, tmp_path):
    """A data_dir that does not exist (e.g. removed between runs) is
    created, with an empty log."""
    data = tmp_path / "gone" / "deeper" / "data"
    d = recd_factory({"data_dir": str(data)})
    assert post_events(d, batch("v", 0, n=2)).status == 202
    assert os.path.isdir(data / "events")
    assert_clean_log(str(data / "events"), [("u1", "v-0-0"), ("u1", "v-0-1")])


@pytest.fixture
def ro_dir(tmp_path):
    """(path, make_read_only()) for a directory that can be made read-only
    even for root: a tmpfs remounted ro; as non-root, chmod 0555."""
    mnt = tmp_path / "ro"
    mnt.mkdir()
    if os.geteuid() != 0:
        yield str(mnt), lambda: os.chmod(mnt, 0o555)
        os.chmod(mnt, 0o755)
        return
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        pytest.skip("root cannot be denied writes by permissions, and mounting a tmpfs "
                    "failed (%s)" % p.stdout.decode(errors="replace").strip())

    def make_ro():
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)

    try:
        yield str(mnt), make_ro
    finally:
        if subprocess.run(["umount", str(mnt)], stderr=subprocess.DEVNULL).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)])


def test_read_only_data_dir_empty(recd_factory, ro_dir):
    path, make_ro = ro_dir
    make_ro()
    d = recd_factory({"data_dir": path}, start=False)
    log = start_fails(d)
    assert os.path.join(path, "events") in log, log
    assert "Read-only file system" in log or "Permission denied" in log, log


def test_read_only_data_dir_with_log(recd_factory, ro_dir):
    """An existing log on a read-only file system: refused at start, naming
    the log, and the log is left as it was."""
    path, make_ro = ro_dir
    d = recd_factory({"data_dir": path})
    assert post_events(d, batch("ro", 0)).status == 202
    assert d.stop() == 0
    before = {p: open(p, "rb").read() for _, p in evlib.list_segments(os.path.join(path, "events"))}
    make_ro()
    log = start_fails(d)
    assert os.path.join(path, "events") in log, log
    assert "Read-only file system" in log or "Permission denied" in log, log
    after = {p: open(p, "rb").read() for _, p in evlib.list_segments(os.path.join(path, "events"))}
    assert before == after


# --------------------------------------------------------------------------
# 2d. recovery at start
# --------------------------------------------------------------------------

N_REC = 6


@pytest.fixture
def small_log(recd_factory):
    """A stopped recd with N_REC one-event records (clicks of user "ru" on
    items i0..i5) in its only segment; yields (daemon, segment path, bytes,
    [(pos, payload)])."""
    d = recd_factory({"log": {"level": "info"}, "events": {"fsync": "always"}})
    for i in range(N_REC):
        r = post_events(d, [{"user_id": "ru", "item_id": "i%d" % i, "type": "click"}])
        assert r.status == 202, r
    assert d.stop() == 0
    segs = evlib.list_segments(log_dir(d))
    assert len(segs) == 1
    path = segs[0][1]
    pristine = open(path, "rb").read()
    s = evlib.scan_segment(path)
    assert len(s.records) == N_REC and s.bad_at is None
    return d, path, pristine, s.records


@pytest.mark.parametrize("where", ["header", "payload", "boundary"])
def test_recovery_cuts_torn_tail(small_log, where):
    d, path, pristine, recs = small_log
    last_pos, last_payload = recs[-1]
    keep = {"header": last_pos + 3,
            "payload": last_pos + evlib.HEADER + len(last_payload) // 2,
            "boundary": last_pos}[where]
    with open(path, "r+b") as f:
        f.truncate(keep)
    d.start()
    st = d.stats()["events"]
    assert st["log"]["recovered_truncated_bytes"] == keep - last_pos, st["log"]
    assert st["log"]["recovered_corrupt_regions"] == 0
    assert st["log"]["records"] == N_REC - 1, st["log"]
    assert st["replay"]["records"] == N_REC - 1, st["replay"]
    assert os.path.getsize(path) == last_pos
    if keep > last_pos:
        d.wait_log(r"torn .*tail of %d bytes" % (keep - last_pos))
    evs = assert_clean_log(log_dir(d), [("ru", "i%d" % i) for i in range(N_REC - 1)])
    assert [e["item_id"] for e in evs] == ["i%d" % i for i in range(N_REC - 1)]
    # appends continue after the cut, and the next start has nothing to cut
    assert post_events(d, [{"user_id": "ru", "item_id": "new", "type": "click"}]).status == 202
    assert d.stop() == 0
    d.start()
    assert d.stats()["events"]["log"]["recovered_truncated_bytes"] == 0
    evs = assert_clean_log(log_dir(d))
    assert [e["item_id"] for e in evs] == ["i%d" % i for i in range(N_REC - 1)] + ["new"]


def _flip(path, pos):
    with open(path, "r+b") as f:
        f.seek(pos)
        b = f.read(1)
        f.seek(pos)
        f.write(bytes([b[0] ^ 0x5A]))


@pytest.mark.parametrize("part", ["payload", "length"])
def test_mid_segment_corruption_refused_then_skipped(small_log, part):
    d, path, pristine, recs = small_log
    pos, payload = recs[2]
    _flip(path, pos + evlib.HEADER + len(payload) // 2 if part == "payload" else pos + 1)
    log = start_fails(d)
    name = os.path.basename(path)
    assert name in log, log
    assert "byte offset %d" % pos in log, log
    assert "events.skip_corrupt" in log, log
    # unchanged by the refused start
    assert os.path.getsize(path) == len(pristine)
    if os.access(RECDCTL, os.X_OK):
        p = subprocess.run([RECDCTL, "events", "verify", "--dir", log_dir(d)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert p.returncode == 1 and name in p.stdout, p.stdout
    # skip_corrupt: starts, skips exactly the damaged record, serves the rest
    cfg = json.loads(json.dumps(d.config))
    cfg["events"]["skip_corrupt"] = True
    d.write_config(cfg)
    d.expect_zero_exit = True
    d.start()
    st = d.stats()
    lg = st["events"]["log"]
    assert lg["recovered_corrupt_regions"] == 1, lg
    assert lg["recovered_corrupt_bytes"] == evlib.HEADER + len(payload), lg
    assert lg["recovered_truncated_bytes"] == 0, lg
    assert st["events"]["replay"]["records"] == N_REC - 1, st["events"]["replay"]
    assert st["events"]["replay"]["corrupt_regions"] == 1, st["events"]["replay"]
    # the history store was rebuilt from the 5 intact clicks
    assert st["history"]["items"] == N_REC - 1, st["history"]
    d.wait_log(r"skipping 1 corrupt region")
    r = post_events(d, [{"user_id": "ru", "item_id": "after", "type": "click"}])
    assert r.status == 202, r
    assert d.stop() == 0
    d.start()
    assert d.stats()["history"]["items"] == N_REC


def _corrupt_earlier_segment(d):
    """Write a multi-segment log with d, stop it, flip a byte inside a record
    in the middle of the first segment; returns (segment path, record pos)."""
    for i in range(60):
        evs = [{"user_id": "ru%d" % i, "item_id": "e%d-%d" % (i, j), "type": "click"}
               for j in range(3)]
        assert post_events(d, evs).status == 202
    assert d.stop() == 0
    segs = evlib.list_segments(log_dir(d))
    assert len(segs) >= 3, segs
    base, path = segs[0]
    s = evlib.scan_segment(path)
    pos, payload = s.records[len(s.records) // 2]
    _flip(path, pos + evlib.HEADER + 3)
    return path, pos


EARLIER_CFG = {"log": {"level": "info"}, "events": {"fsync": "always", "segment_bytes": 4096}}


def test_corruption_in_an_earlier_segment(recd_factory):
    """Damage in a segment that is not the last: start-up recovery only
    scans the last one, but the history replay reads the older ones too,
    so recd must still refuse (naming file and offset) or, with
    events.skip_corrupt, start and skip it."""
    d = recd_factory(EARLIER_CFG)
    path, pos = _corrupt_earlier_segment(d)
    log = start_fails(d)
    assert os.path.basename(path) in log and "byte offset %d" % pos in log, log
    assert "skip_corrupt" in log, log
    cfg = json.loads(json.dumps(d.config))
    cfg["events"]["skip_corrupt"] = True
    d.write_config(cfg)
    d.expect_zero_exit = True
    d.start()
    st = d.stats()["events"]
    assert st["replay"]["corrupt_regions"] == 1, st["replay"]
    assert st["replay"]["records"] == 180 - 1, st["replay"]
    assert d.stats()["history"]["items"] == 180 - 1
    assert post_events(d, batch("x", 0, n=1)).status == 202


def test_corruption_in_an_earlier_segment_names_the_setting(recd_factory):
    d = recd_factory(EARLIER_CFG)
    _corrupt_earlier_segment(d)
    log = start_fails(d)
    assert "events.skip_corrupt" in log, log
