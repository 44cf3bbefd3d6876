"""An independent reader for recd's durable event log, for black-box tests.

The layout is the one include/recd/events.h documents, re-implemented here
from that description (not by calling the C library), so the tests check the
daemon against the specification rather than against itself:

  <dir>/<20 decimal digits>.seg   segment files; the number is the log offset
                                  of the segment's first byte
  record = [u32 length LE][u32 crc32c(payload) LE][payload]
  1 <= length <= max_record (1 MiB by default)

CRC32C is the Castagnoli polynomial (0x1EDC6F41, reflected 0x82F63B78),
initial value and final xor 0xFFFFFFFF (RFC 3720, iSCSI).

No pytest import: loadtest/crash_harness.py uses this module standalone.
"""

import json
import os
import re
import struct

HEADER = 8
MAX_RECORD = 1 << 20
SEG_RE = re.compile(r"^(\d{20})\.seg$")


# --------------------------------------------------------------------------
# CRC32C
# --------------------------------------------------------------------------

def _make_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_T = _make_table()


def crc32c(data, crc=0):
    """CRC32C of data, continuing from crc (start with 0)."""
    t = _T
    c = crc ^ 0xFFFFFFFF
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283, "crc32c self-check failed"


try:
    import numpy as _np
except ImportError:  # pragma: no cover - the pure loop below still works
    _np = None


def crc32c_many(buf, spans):
    """CRC32C of many byte ranges of buf at once: spans is [(start, length)].
    With numpy the ranges are processed side by side, one byte column per
    step (about 10x faster than the loop for logs of thousands of records);
    otherwise one by one."""
    if _np is None or len(spans) < 64:
        mv = memoryview(buf)
        return [crc32c(mv[s:s + n]) for s, n in spans]
    np = _np
    data = np.frombuffer(buf, dtype=np.uint8)
    starts = np.array([s for s, _ in spans], dtype=np.int64)
    lens = np.array([n for _, n in spans], dtype=np.int64)
    order = np.argsort(-lens, kind="stable")
    st, ln = starts[order], lens[order]
    table = np.array(_T, dtype=np.uint32)
    c = np.full(len(spans), 0xFFFFFFFF, dtype=np.uint32)
    # lanes sorted by decreasing length: at column j the first active[j] are live
    maxlen = int(ln[0])
    active = np.searchsorted(-ln, -np.arange(maxlen), side="left")  # count of ln > j
    for j in range(maxlen):
        k = int(active[j])
        col = data[st[:k] + j].astype(np.uint32)
        ck = c[:k]
        c[:k] = table[(ck ^ col) & 0xFF] ^ (ck >> 8)
    c ^= 0xFFFFFFFF
    out = np.empty_like(c)
    out[order] = c
    return [int(x) for x in out]


def frame(payload):
    """One framed record for payload (bytes)."""
    return struct.pack("<II", len(payload), crc32c(payload)) + payload


# --------------------------------------------------------------------------
# segments and records
# --------------------------------------------------------------------------

def segment_name(base):
    return "%020d.seg" % base


def list_segments(log_dir):
    """[(base, path)] of the segment files in log_dir, oldest first."""
    out = []
    for name in os.listdir(log_dir):
        m = SEG_RE.match(name)
        if m:
            out.append((int(m.group(1)), os.path.join(log_dir, name)))
    out.sort()
    return out


def record_at(buf, pos, max_record=MAX_RECORD):
    """The payload of a complete, CRC-valid record at buf[pos:], else None."""
    if pos + HEADER > len(buf):
        return None
    length, crc = struct.unpack_from("<II", buf, pos)
    if length == 0 or length > max_record or pos + HEADER + length > len(buf):
        return None
    payload = bytes(buf[pos + HEADER:pos + HEADER + length])
    if crc32c(payload) != crc:
        return None
    return payload


def resync(buf, pos, max_record=MAX_RECORD):
    """The first offset q > pos where a complete valid record starts, or None
    (then [pos, end) is a torn tail rather than mid-segment damage)."""
    n = len(buf)
    for q in range(pos + 1, n - HEADER + 1):
        length = struct.unpack_from("<I", buf, q)[0]
        if 1 <= length <= max_record and q + HEADER + length <= n:
            if record_at(buf, q, max_record) is not None:
                return q
    return None


class SegmentScan:
    """Result of walking one segment from a byte position."""

    def __init__(self):
        self.records = []   # [(position in the segment, payload bytes)]
        self.end = 0        # position just past the last valid record walked
        self.bad_at = None  # position of the first invalid record, if any
        self.resume = None  # where valid records resume after bad_at (damage)
        self.size = 0       # file size

    @property
    def tail(self):
        """Bytes of torn tail (invalid bytes with no valid record after)."""
        if self.bad_at is None or self.resume is not None:
            return 0
        return self.size - self.bad_at


def scan_segment(path, start=0, max_record=MAX_RECORD, find_resume=True):
    """Walk the records of one segment file from byte position start."""
    with open(path, "rb") as f:
        buf = f.read()
    s = SegmentScan()
    s.size = n = len(buf)
    # walk the headers, then check every CRC at once
    cand = []
    pos = start
    while pos + HEADER <= n:
        length, crc = struct.unpack_from("<II", buf, pos)
        if length == 0 or length > max_record or pos + HEADER + length > n:
            break
        cand.append((pos, length, crc))
        pos += HEADER + length
    crcs = crc32c_many(buf, [(p + HEADER, ln) for p, ln, _ in cand])
    for (p, ln, crc), got in zip(cand, crcs):
        if got != crc:
            pos = p
            break
        s.records.append((p, buf[p + HEADER:p + HEADER + ln]))
    if pos < n:
        s.bad_at = pos
        if find_resume:
            s.resume = resync(buf, pos, max_record)
    s.end = pos
    return s


class LogReader:
    """Incremental, strict reader of one log directory.

    scan() returns the records that appeared since the previous scan and the
    problems found; bytes already verified are not read again (a segment is
    only ever appended to, or its torn tail cut, so what was once a valid
    record must stay). A verified prefix that shrank is reported as a
    problem. scan(full=True) ignores the cache (re-verifies everything).

    Problems, as strings: a gap between segments, a damaged record anywhere,
    a torn tail (reported separately in `tail_bytes`; it is a problem only
    when the caller says so, e.g. after a restart that should have cut it)."""

    def __init__(self, log_dir, max_record=MAX_RECORD):
        self.dir = log_dir
        self.max_record = max_record
        self.verified = {}  # base -> bytes of that segment already verified

    def scan(self, full=False):
        if full:
            self.verified = {}
        new, problems = [], []
        tail_bytes = 0
        segs = list_segments(self.dir)
        prev_end = None
        for i, (base, path) in enumerate(segs):
            last = i == len(segs) - 1
            size = os.path.getsize(path)
            if prev_end is not None and base != prev_end:
                problems.append("gap: %s starts at log offset %d, previous segment ends at %d"
                                % (os.path.basename(path), base, prev_end))
            prev_end = base + size
            done = self.verified.get(base, 0)
            if size < done:
                problems.append("%s shrank below its verified length (%d < %d bytes)"
                                % (os.path.basename(path), size, done))
                done = 0
            if size == done:
                continue
            s = scan_segment(path, done, self.max_record)
            for pos, payload in s.records:
                new.append((base + pos, payload))
            self.verified[base] = s.end
            if s.bad_at is not None:
                if s.resume is not None:
                    problems.append("%s: damaged record at byte offset %d (valid records "
                                    "resume at %d)" % (os.path.basename(path), s.bad_at, s.resume))
                elif not last:
                    problems.append("%s: bad end of a non-last segment at byte offset %d "
                                    "(%d bytes)" % (os.path.basename(path), s.bad_at, s.tail))
                else:
                    tail_bytes = s.tail
        live = {b for b, _ in segs}
        for base in list(self.verified):
            if base not in live:
                del self.verified[base]  # retention may delete old segments
        return new, problems, tail_bytes


def read_log(log_dir, max_record=MAX_RECORD):
    """Everything at once: (records [(offset, payload)], problems, tail_bytes)."""
    return LogReader(log_dir, max_record).scan()


def decode_event(payload):
    """The event dict of one payload, or raise ValueError naming the defect.
    Checks the keys include/recd/evrec.h requires of every record."""
    try:
        ev = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ValueError("payload is not JSON: %s: %r" % (e, payload[:200]))
    if not isinstance(ev, dict):
        raise ValueError("payload is not an object: %r" % payload[:200])
    for key, typ in (("ts", int), ("user_id", str), ("item_id", str), ("type", str)):
        if not isinstance(ev.get(key), typ):
            raise ValueError("payload lacks a valid %r: %r" % (key, payload[:200]))
    if ev["type"] not in ("impression", "click", "watch", "rating", "purchase"):
        raise ValueError("payload has an unknown type: %r" % payload[:200])
    return ev


def event_key(ev):
    """The identity the tests give events: (user_id, item_id)."""
    return (ev["user_id"], ev["item_id"])


def torn_copy(payload, keep):
    """The first `keep` bytes of the framed record of payload: what an
    append interrupted after `keep` bytes leaves (0 < keep < full size)."""
    rec = frame(payload)
    assert 0 < keep < len(rec)
    return rec[:keep]
