"""Black-box tests of `recdctl events dump|verify` and of `recd-train import
--layout recd-events`, on event logs written here in Python without the
daemon: segment files "<20-digit start offset>.seg" holding records framed as
[u32 length LE][u32 crc32c(payload) LE][payload] (include/recd/events.h),
each payload one event as compact JSON (include/recd/evrec.h).

The programs are recdctl and recd-train next to $RECD_BIN (bin/ of this tree
by default); $RECD_TRAIN_BIN overrides recd-train as in the other tests.
"""
import calendar
import json
import os
import struct
import subprocess

import pytest

from conftest import RECD_BIN, ROOT, scaled

RECDCTL = os.path.join(os.path.dirname(RECD_BIN), "recdctl")
TRAIN_BIN = os.environ.get("RECD_TRAIN_BIN") or os.path.join(os.path.dirname(RECD_BIN),
                                                              "recd-train")

pytestmark = pytest.mark.skipif(not os.access(RECDCTL, os.X_OK),
                                reason=f"{RECDCTL} not built (make bin/recdctl)")


# --------------------------------------------------------------------------
# writing logs
# --------------------------------------------------------------------------

def _crc_table():
    poly = 0x82F63B78  # Castagnoli, reflected
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


CRC_TABLE = _crc_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def frame(payload):
    return struct.pack("<II", len(payload), crc32c(payload)) + payload


def event(ts, user, item, typ, value=None, **extra):
    """A payload as recd writes it: compact JSON, keys in evrec.h order."""
    o = {"ts": ts, "user_id": user, "item_id": item, "type": typ,
         "value": 1 if value is None else value}
    o.update(extra)
    return json.dumps(o, separators=(",", ":")).encode()


def seg_name(base):
    return "%020d.seg" % base


def write_log(d, segments, start=0):
    """Write segments (lists of payloads) into directory d, back to back
    from log offset start. Returns [(log offset, payload)] in log order."""
    os.makedirs(d, exist_ok=True)
    out = []
    base = start
    for payloads in segments:
        data = b""
        for p in payloads:
            out.append((base + len(data), p))
            data += frame(p)
        with open(os.path.join(d, seg_name(base)), "wb") as f:
            f.write(data)
        base += len(data)
    return out


T0 = calendar.timegm((2026, 11, 28, 0, 0, 0))  # 2026-11-28T00:00:00Z


def sample_events():
    """Two segments: 7 events of every type around 2026-11-28."""
    seg0 = [
        event(T0 - 3600, "u1", "i1", "impression"),
        event(T0, "u1", "i1", "click", request_id="r-1", ab={"exp": "a"}),
        event(T0 + 60, "u1", "i1", "watch", 42.5, recv_ms=(T0 + 60) * 1000 + 7),
    ]
    seg1 = [
        event(T0 + 6 * 3600 - 1, "u2", "i2", "rating", 4.5),
        event(T0 + 6 * 3600, "u2", "i3", "purchase"),
        event(T0 + 86400, "u3", "i1", "impression", forced=True),
        event(T0 + 86400 + 5, "u3", "i1", "click"),
    ]
    return [seg0, seg1]


def run(prog, *args, timeout=None, cwd=None):
    return subprocess.run([prog, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout or scaled(60), cwd=cwd)


def ctl(*args, **kw):
    return run(RECDCTL, *args, **kw)


def lines(p):
    return p.stdout.splitlines()


# --------------------------------------------------------------------------
# the test's own CRC
# --------------------------------------------------------------------------

def test_crc32c_known_value():
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0


# --------------------------------------------------------------------------
# dump
# --------------------------------------------------------------------------

def test_dump_equals_what_was_written(tmp_path):
    d = tmp_path / "events"
    recs = write_log(d, sample_events())
    # a stray file is ignored, as the format says
    (d / "LOCK").write_bytes(b"")
    p = ctl("events", "dump", "--dir", d)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    assert lines(p) == [payload.decode() for _, payload in recs]


def test_dump_offsets(tmp_path):
    d = tmp_path / "events"
    recs = write_log(d, sample_events(), start=1000)
    p = ctl("events", "dump", "--dir", d, "--offsets")
    assert p.returncode == 0, p.stderr
    got = lines(p)
    assert len(got) == len(recs)
    for line, (off, payload) in zip(got, recs):
        assert next(iter(json.loads(line))) == "offset"  # the first key
        doc = json.loads(line)
        assert doc.pop("offset") == off
        assert doc == json.loads(payload)
        assert line == '{"offset":%d,%s' % (off, payload.decode()[1:])
    # offsets continue across segments: the second starts where the first ends
    first_seg1 = len(sample_events()[0])
    assert recs[first_seg1][0] == int(sorted(os.listdir(d))[1][:20])


@pytest.mark.parametrize("since,until,want", [
    # --since is inclusive, --until exclusive
    ("2026-11-28", None, [1, 2, 3, 4, 5, 6]),
    (str(T0), None, [1, 2, 3, 4, 5, 6]),
    (str(T0 + 1), None, [2, 3, 4, 5, 6]),
    (None, "2026-11-28T06:00:00Z", [0, 1, 2, 3]),
    (None, str(T0 + 6 * 3600), [0, 1, 2, 3]),
    ("2026-11-28T00:01:00Z", "2026-11-29", [2, 3, 4]),
    ("2026-11-29", None, [5, 6]),
    ("2030-01-01", None, []),
])
def test_dump_since_until(tmp_path, since, until, want):
    d = tmp_path / "events"
    recs = write_log(d, sample_events())
    args = ["events", "dump", "--dir", d]
    if since:
        args += ["--since", since]
    if until:
        args += ["--until", until]
    p = ctl(*args)
    assert p.returncode == 0, p.stderr
    assert lines(p) == [recs[i][1].decode() for i in want]


@pytest.mark.parametrize("opt,value", [
    ("--since", "yesterday"),
    ("--since", "2026-02-30"),
    ("--since", "2026-13-01"),
    ("--until", "2026-11-28T06:00:00"),   # no Z: not UTC
    ("--until", "2026-11-28T24:00:00Z"),
    ("--since", "-5"),
    ("--since", ""),
])
def test_dump_bad_time(tmp_path, opt, value):
    d = tmp_path / "events"
    write_log(d, sample_events())
    p = ctl("events", "dump", "--dir", d, opt, value)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert f"{opt}: '{value}' is not unix seconds" in p.stderr
    assert p.stdout == ""


def test_dump_empty_range_is_usage_error(tmp_path):
    d = tmp_path / "events"
    write_log(d, sample_events())
    p = ctl("events", "dump", "--dir", d, "--since", "2026-11-29", "--until", "2026-11-28")
    assert p.returncode == 2
    assert "--since must be before --until" in p.stderr


def test_dump_undecodable(tmp_path):
    d = tmp_path / "events"
    good = sample_events()
    bad1 = b"this is not json"
    bad2 = json.dumps({"ts": T0, "item_id": "i1", "type": "click", "value": 1}).encode()
    recs = write_log(d, [good[0] + [bad1], [bad2] + good[1]])
    p = ctl("events", "dump", "--dir", d)
    assert p.returncode == 1
    want = [pl.decode() for _, pl in recs if pl not in (bad1, bad2)]
    assert lines(p) == want
    off1 = next(o for o, pl in recs if pl == bad1)
    off2 = next(o for o, pl in recs if pl == bad2)
    assert f"undecodable record at log offset {off1} ({seg_name(0)} byte {off1})" in p.stderr
    assert f"undecodable record at log offset {off2} ({seg_name(off2)} byte 0)" in p.stderr
    assert "user_id is missing or malformed" in p.stderr
    assert "2 of 9 records did not decode and were not printed" in p.stderr


def test_dump_torn_tail_is_not_an_error(tmp_path):
    d = tmp_path / "events"
    recs = write_log(d, sample_events())
    last = sorted(os.listdir(d))[-1]
    with open(d / last, "ab") as f:
        f.write(frame(event(T0 + 99999, "u9", "i9", "click"))[:20])
    p = ctl("events", "dump", "--dir", d)
    assert p.returncode == 0, p.stderr
    assert lines(p) == [pl.decode() for _, pl in recs]
    assert "torn tail of 20 bytes" in p.stderr


def flip_byte(path, pos):
    with open(path, "r+b") as f:
        f.seek(pos)
        b = f.read(1)
        f.seek(pos)
        f.write(bytes([b[0] ^ 0x5A]))


def test_dump_damage_and_skip_corrupt(tmp_path):
    d = tmp_path / "events"
    recs = write_log(d, sample_events())
    # a payload byte of the second record of the first segment: valid
    # records follow it, so it is mid-segment damage
    off = recs[1][0]
    flip_byte(d / seg_name(0), off + 8 + 3)
    p = ctl("events", "dump", "--dir", d)
    assert p.returncode == 1
    assert lines(p) == [recs[0][1].decode()]  # what came before the damage
    assert f"{d}/{seg_name(0)}: corrupt record at byte offset {off}" in p.stderr
    assert "--skip-corrupt" in p.stderr
    p = ctl("events", "dump", "--dir", d, "--skip-corrupt")
    assert p.returncode == 0, p.stderr
    assert lines(p) == [pl.decode() for i, (_, pl) in enumerate(recs) if i != 1]
    assert "skipped 1 damaged region (" in p.stderr


# --------------------------------------------------------------------------
# verify
# --------------------------------------------------------------------------

def test_verify_clean(tmp_path):
    d = tmp_path / "events"
    recs = write_log(d, sample_events())
    size = sum(8 + len(pl) for _, pl in recs)
    p = ctl("events", "verify", "--dir", d)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert f"segments       2 ({seg_name(0)} .. {seg_name(recs[3][0])})" in out
    assert "records        7\n" in out
    assert f"bytes          {size}\n" in out
    assert "torn tail      none" in out
    assert "events         2026-11-27T23:00:00Z .. 2026-11-29T00:00:05Z" in out
    assert ("by type        impression 2, click 2, watch 1, rating 1, purchase 1" in out)
    assert "undecodable    0" in out
    assert "damage         none" in out
    assert out.rstrip().endswith("result         OK")

    p = ctl("events", "verify", "--dir", d, "--json")
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    assert j["ok"] is True
    assert j["segments"] == 2 and j["records"] == 7 and j["events"] == 7
    assert j["bytes"] == size and j["tail_bytes"] == 0 and j["tail"] is None
    assert j["first_ts"] == T0 - 3600 and j["last_ts"] == T0 + 86400 + 5
    assert j["first_time"] == "2026-11-27T23:00:00Z"
    assert j["last_time"] == "2026-11-29T00:00:05Z"
    assert j["by_type"] == {"impression": 2, "click": 2, "watch": 1, "rating": 1, "purchase": 1}
    assert j["undecodable"] == 0 and j["first_undecodable"] is None and j["damage"] is None
    assert j["first_segment"] == seg_name(0)


def test_verify_empty_dir(tmp_path):
    d = tmp_path / "events"
    d.mkdir()
    p = ctl("events", "verify", "--dir", d)
    assert p.returncode == 0, p.stderr
    assert "no segment files" in p.stdout
    assert "events         none" in p.stdout


def test_verify_torn_tail(tmp_path):
    d = tmp_path / "events"
    recs = write_log(d, sample_events())
    last = seg_name(recs[3][0])
    size_before = os.path.getsize(d / last)
    with open(d / last, "ab") as f:
        f.write(frame(event(T0 + 99999, "u9", "i9", "click"))[:13])
    p = ctl("events", "verify", "--dir", d)
    assert p.returncode == 0, p.stderr
    assert f"torn tail      13 bytes at byte {size_before} of {last}" in p.stdout
    assert "not an error" in p.stdout
    assert "records        7\n" in p.stdout
    assert "result         OK" in p.stdout
    j = json.loads(ctl("events", "verify", "--dir", d, "--json").stdout)
    assert j["ok"] is True and j["tail_bytes"] == 13
    assert j["tail"] == {"segment": last, "byte_offset": size_before}


def test_verify_flipped_byte(tmp_path):
    d = tmp_path / "events"
    recs = write_log(d, sample_events())
    off = recs[1][0]
    flip_byte(d / seg_name(0), off + 8 + 10)
    p = ctl("events", "verify", "--dir", d)
    assert p.returncode == 1
    msg = f"{d}/{seg_name(0)}: corrupt record at byte offset {off}"
    assert msg in p.stderr
    assert msg in p.stdout  # the damage line of the summary
    assert "skips 1 damaged region (" in p.stdout
    assert "records        6\n" in p.stdout  # what a skipping reader still gets
    assert "result         FAILED" in p.stdout
    j = json.loads(ctl("events", "verify", "--dir", d, "--json").stdout)
    assert j["ok"] is False
    assert msg in j["damage"]["error"]
    assert j["damage"]["corrupt_regions"] == 1
    assert j["damage"]["corrupt_bytes"] == 8 + len(recs[1][1])


def test_verify_flipped_length_in_earlier_segment(tmp_path):
    """Damage at the end of a segment that is not the last is not a torn tail."""
    d = tmp_path / "events"
    recs = write_log(d, sample_events())
    off = recs[2][0]  # the last record of segment 0
    flip_byte(d / seg_name(0), off + 4)  # its CRC
    p = ctl("events", "verify", "--dir", d)
    assert p.returncode == 1
    assert f"{d}/{seg_name(0)}: corrupt or truncated record at byte offset {off}" in p.stderr


def test_verify_gap_between_segments(tmp_path):
    d = tmp_path / "events"
    segs = sample_events()
    write_log(d, [segs[0]])
    write_log(d, [segs[1]], start=100000)
    p = ctl("events", "verify", "--dir", d)
    assert p.returncode == 1
    assert f"{seg_name(100000)} starts at log offset 100000" in p.stderr


def test_verify_undecodable(tmp_path):
    d = tmp_path / "events"
    good = sample_events()
    bad = [b"[1,2,3]", event(T0, "u1", "i1", "like"), b'{"ts":"soon"}']
    recs = write_log(d, [good[0] + bad[:1], bad[1:] + good[1]])
    p = ctl("events", "verify", "--dir", d)
    assert p.returncode == 1
    for b in bad:
        off = next(o for o, pl in recs if pl == b)
        assert f"undecodable record at log offset {off} (" in p.stderr
    first = next(o for o, pl in recs if pl == bad[0])
    assert f"undecodable    3 (first at log offset {first}, {seg_name(0)} byte {first}: " \
           "payload is not a JSON object)" in p.stdout
    assert "records        10\n" in p.stdout
    assert "damage         none" in p.stdout
    assert "result         FAILED" in p.stdout
    j = json.loads(ctl("events", "verify", "--dir", d, "--json").stdout)
    assert j["ok"] is False and j["undecodable"] == 3 and j["events"] == 7
    assert j["first_undecodable"]["offset"] == first


# --------------------------------------------------------------------------
# where the log is; usage
# --------------------------------------------------------------------------

def test_missing_dir(tmp_path):
    for sub in ("dump", "verify"):
        p = ctl("events", sub, "--dir", tmp_path / "nope")
        assert p.returncode == 1
        assert f"no event log at {tmp_path}/nope: no such directory (--dir)" in p.stderr


def test_config_data_dir(tmp_path):
    data = tmp_path / "data"
    recs = write_log(data / "events", sample_events())
    conf = tmp_path / "recd.json"
    conf.write_text(json.dumps({"data_dir": str(data)}))
    p = ctl("events", "dump", "-c", conf)
    assert p.returncode == 0, p.stderr
    assert lines(p) == [pl.decode() for _, pl in recs]
    p = ctl("events", "verify", "--config", conf)
    assert p.returncode == 0 and f"event log      {data}/events" in p.stdout
    # a relative data_dir is taken from the current directory
    conf.write_text(json.dumps({"data_dir": "data"}))
    p = ctl("events", "verify", "-c", conf, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    # missing log under the configured data_dir
    conf.write_text(json.dumps({"data_dir": str(tmp_path / "empty")}))
    p = ctl("events", "verify", "-c", conf)
    assert p.returncode == 1
    assert f"no event log at {tmp_path}/empty/events: no such directory (data_dir of {conf})" \
        in p.stderr
    # the configuration is validated as recd does; its messages pass through
    conf.write_text(json.dumps({"data_dir": str(data), "http": {"workers": 99999}}))
    p = ctl("events", "dump", "-c", conf)
    assert p.returncode == 1
    assert "config error: " in p.stderr and "http.workers" in p.stderr
    p = ctl("events", "dump", "-c", tmp_path / "missing.json")
    assert p.returncode == 1 and "config error: " in p.stderr


def test_default_config_names_its_origin(tmp_path):
    # without --dir and -c: the built-in data_dir (/var/lib/recd), normally
    # without a log on a development machine
    if os.path.isdir("/var/lib/recd/events"):
        pytest.skip("/var/lib/recd/events exists here")
    p = ctl("events", "verify")
    assert p.returncode == 1
    assert "no event log at /var/lib/recd/events" in p.stderr
    assert "built-in configuration" in p.stderr


@pytest.mark.parametrize("args,code,msg", [
    ([], 2, "recdctl: missing command"),
    (["frob"], 2, "recdctl: unknown command 'frob'"),
    (["events"], 2, "recdctl events: missing command"),
    (["events", "frob"], 2, "recdctl events: unknown command 'frob'"),
    (["events", "dump", "--bogus"], 2, "recdctl events dump: unknown option '--bogus'"),
    (["events", "dump", "--dir"], 2, "recdctl events dump: option '--dir' needs a value"),
    (["events", "verify", "-c"], 2, "recdctl events verify: option '-c' needs a value"),
    (["events", "verify", "--dir", "x", "-c", "y"], 2, "give either --dir or -c, not both"),
    (["events", "verify", "--dir", ""], 2, "--dir needs a non-empty path"),
    (["events", "verify", "--dir", "x", "extra"], 2, "unexpected argument 'extra'"),
    (["events", "dump", "--since"], 2, "option '--since' needs a value"),
])
def test_bad_usage(args, code, msg):
    p = ctl(*args)
    assert p.returncode == code, (args, p.stdout, p.stderr)
    assert msg in p.stderr, p.stderr
    assert p.stdout == ""


def test_help_and_version():
    p = ctl("--help")
    assert p.returncode == 0 and p.stdout.startswith("usage: recdctl <command>")
    assert "events" in p.stdout
    p = ctl("events", "--help")
    assert p.returncode == 0 and p.stdout.startswith("usage: recdctl events <subcommand>")
    assert "dump" in p.stdout and "verify" in p.stdout
    for sub in ("dump", "verify"):
        p = ctl("events", sub, "--help")
        assert p.returncode == 0 and p.stdout.startswith(f"usage: recdctl events {sub}")
    p = ctl("--version")
    assert p.returncode == 0 and p.stdout.startswith("recdctl ")


# --------------------------------------------------------------------------
# recd-train import --layout recd-events
# --------------------------------------------------------------------------

def read_tsv(path):
    text = open(path, encoding="utf-8").read()
    assert text.endswith("\n")
    rows = [ln.split("\t") for ln in text[:-1].split("\n")]
    return rows[0], rows[1:]


needs_train = pytest.mark.skipif(not os.access(TRAIN_BIN, os.X_OK),
                                 reason=f"{TRAIN_BIN} not built")


def fmt(v):
    return "%d" % v if float(v).is_integer() else "%g" % v


@needs_train
def test_train_import_events(tmp_path):
    d = tmp_path / "events"
    segs = sample_events()
    bad = b'{"ts":1,"user_id":"u1"}'
    recs = write_log(d, [segs[0] + [bad], segs[1]])
    out = tmp_path / "ds"
    p = run(TRAIN_BIN, "import", "--layout", "recd-events", "--from", d, "--out", out)
    assert p.returncode == 0, p.stderr
    bad_off = next(o for o, pl in recs if pl == bad)
    assert f"{d}: record at log offset {bad_off}: payload: item_id is missing or malformed; " \
           "skipped" in p.stderr
    assert "8 records read, 1 undecodable records skipped" in p.stdout

    meta = json.load(open(out / "meta.json"))
    assert meta["format"] == "recd-dataset/1" and meta["kind"] == "implicit"
    assert meta["counts"]["events"] == 7 and meta["counts"]["users"] == 3
    uh, users = read_tsv(out / "users.tsv")
    ih, items = read_tsv(out / "items.tsv")
    assert uh == ["id"] and ih == ["id"]
    assert sorted(r[0] for r in users) == ["u1", "u2", "u3"]
    assert sorted(r[0] for r in items) == ["i1", "i2", "i3"]
    eh, events = read_tsv(out / "events.tsv")
    assert eh == ["user", "item", "ts", "type", "value"]
    want = []
    for _, pl in recs:
        if pl == bad:
            continue
        e = json.loads(pl)
        v = e["value"] if e["type"] in ("rating", "watch") else 0
        want.append([e["user_id"], e["item_id"], str(e["ts"]), e["type"], fmt(v)])
    # canonical order: by ts first (the sample has distinct timestamps)
    assert events == sorted(want, key=lambda r: int(r[2]))

    # a log of ratings only gives an explicit dataset
    d2 = tmp_path / "ratings"
    write_log(d2, [[event(T0, "u1", "i1", "rating", 4), event(T0 + 1, "u2", "i1", "rating", 2.5)]])
    p = run(TRAIN_BIN, "import", "--layout", "recd-events", "--from", d2, "--out",
            tmp_path / "ds2")
    assert p.returncode == 0, p.stderr
    assert json.load(open(tmp_path / "ds2" / "meta.json"))["kind"] == "explicit"
    assert read_tsv(tmp_path / "ds2" / "events.tsv")[1] == [
        ["u1", "i1", str(T0), "rating", "4"], ["u2", "i1", str(T0 + 1), "rating", "2.5"]]


def write_dataset(d):
    """A small recd-dataset/1 by hand: feature columns and a context column."""
    os.makedirs(d)
    with open(os.path.join(d, "items.tsv"), "w") as f:
        f.write("id\ttitle\tgenres\ni1\tOne\tDrama\ni9\tNine\tComedy|Drama\n")
    with open(os.path.join(d, "users.tsv"), "w") as f:
        f.write("id\tage\nu1\t30\nu8\t41\n")
    with open(os.path.join(d, "events.tsv"), "w") as f:
        f.write("user\titem\tts\ttype\tvalue\tdevice\n"
                f"u8\ti9\t{T0 - 7200}\tclick\t0\ttv\n"
                f"u1\ti1\t{T0 - 3600}\timpression\t0\tmobile\n")
    meta = {"format": "recd-dataset/1", "source": "hand-made", "kind": "implicit",
            "created": "2026-01-01T00:00:00Z",
            "counts": {"users": 2, "items": 2, "events": 2}, "truth": False}
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f)


@needs_train
def test_train_import_events_with_base(tmp_path):
    d = tmp_path / "events"
    write_log(d, sample_events())
    base = tmp_path / "base"
    write_dataset(base)
    out = tmp_path / "ds"
    p = run(TRAIN_BIN, "import", "--layout", "recd-events", "--from", d, "--base", base,
            "--out", out)
    assert p.returncode == 0, p.stderr
    assert "4 users (2 new), 4 items (2 new), 9 events" in p.stdout
    uh, users = read_tsv(out / "users.tsv")
    ih, items = read_tsv(out / "items.tsv")
    assert uh == ["id", "age"] and ih == ["id", "title", "genres"]
    assert {r[0]: r for r in users} == {"u1": ["u1", "30"], "u8": ["u8", "41"],
                                        "u2": ["u2", ""], "u3": ["u3", ""]}
    assert {r[0]: r for r in items} == {"i1": ["i1", "One", "Drama"],
                                        "i9": ["i9", "Nine", "Comedy|Drama"],
                                        "i2": ["i2", "", ""], "i3": ["i3", "", ""]}
    eh, events = read_tsv(out / "events.tsv")
    assert eh == ["user", "item", "ts", "type", "value", "device"]
    assert len(events) == 9
    # the base's events keep their context; the log's have none; the union
    # keeps the impression at T0 - 3600 twice (once from each source)
    assert events[0] == ["u8", "i9", str(T0 - 7200), "click", "0", "tv"]
    dup = [e for e in events if e[:4] == ["u1", "i1", str(T0 - 3600), "impression"]]
    assert sorted(e[5] for e in dup) == ["", "mobile"]
    assert json.load(open(out / "meta.json"))["kind"] == "implicit"
    assert "hand-made" in json.load(open(out / "meta.json"))["source"]


@needs_train
def test_train_import_events_errors(tmp_path):
    d = tmp_path / "events"
    recs = write_log(d, sample_events())
    out = tmp_path / "ds"
    # layout auto on an event log: a pointer to the right layout
    p = run(TRAIN_BIN, "import", "--from", d, "--out", out)
    assert p.returncode == 1
    assert "holds event-log segments (*.seg), not MovieLens files: use --layout recd-events" \
        in p.stderr
    # options that belong to the other kind of source
    p = run(TRAIN_BIN, "import", "--from", d, "--out", out, "--base", tmp_path)
    assert p.returncode == 2 and "--base needs --layout recd-events" in p.stderr
    p = run(TRAIN_BIN, "import", "--from", d, "--out", out, "--layout", "recd-events", "--strict")
    assert p.returncode == 2 and "--strict is for MovieLens layouts" in p.stderr
    p = run(TRAIN_BIN, "import", "--from", d, "--out", out, "--layout", "ml-20m")
    assert p.returncode == 2 and "or recd-events (a recd event log)" in p.stderr
    # no log; a bad base
    p = run(TRAIN_BIN, "import", "--layout", "recd-events", "--from", tmp_path / "nope",
            "--out", out)
    assert p.returncode == 1 and f"no event log at {tmp_path}/nope" in p.stderr
    p = run(TRAIN_BIN, "import", "--layout", "recd-events", "--from", d, "--out", out,
            "--base", tmp_path / "nobase")
    assert p.returncode == 1 and "--base: " in p.stderr
    # damage: refused, then skipped with --skip-corrupt
    flip_byte(d / seg_name(0), recs[1][0] + 12)
    p = run(TRAIN_BIN, "import", "--layout", "recd-events", "--from", d, "--out", out)
    assert p.returncode == 1
    assert f"corrupt record at byte offset {recs[1][0]}" in p.stderr
    assert "--skip-corrupt skips damaged regions" in p.stderr
    assert not out.exists()
    p = run(TRAIN_BIN, "import", "--layout", "recd-events", "--from", d, "--out", out,
            "--skip-corrupt")
    assert p.returncode == 0, p.stderr
    assert "skipped 1 damaged region (" in p.stderr
    assert len(read_tsv(out / "events.tsv")[1]) == 6
