"""POST /v1/events against the real daemon (DESIGN §2, §5).

The event log is read back here without project code: segment files
<data_dir>/events/<20-digit offset>.seg hold records
[u32 length LE][u32 crc32c(payload) LE][payload], the payload a compact JSON
object (include/recd/evrec.h). CRC32C is computed by a table-driven
implementation of the Castagnoli polynomial written in this file.

Covered: 202 {"accepted": N} and the records on disk; every validation
rule of include/recd/evrec.h and of the batch (400, code, field, nothing
written); 415; the three fsync policies; events.enabled=false; /stats and
/metrics counters; events.max_batch (and its reload); restart (the log is
kept, replayed and appended to).

read_log, crc32c and KeepAlive are reused by test_ab.py and
test_history.py.
"""

import http.client
import json
import os
import struct
import time

import pytest

from conftest import IO_TIMEOUT, parse_metrics, metric_value, scaled, wait_until

# --------------------------------------------------------------------------
# an independent reader of the event log
# --------------------------------------------------------------------------


def _crc32c_table():
    poly = 0x82F63B78  # Castagnoli, reflected
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ b) & 0xFF]
    return crc ^ 0xFFFFFFFF


def events_dir(d):
    return os.path.join(d.config["data_dir"], "events")


def segment_files(d):
    """(base offset, path) of every segment, in log order."""
    ed = events_dir(d)
    if not os.path.isdir(ed):
        return []
    out = []
    for name in os.listdir(ed):
        if name.endswith(".seg"):
            stem = name[:-4]
            assert len(stem) == 20 and stem.isdigit(), "odd segment name %r" % name
            out.append((int(stem), os.path.join(ed, name)))
    return sorted(out)


def log_bytes(d):
    return sum(os.path.getsize(p) for _, p in segment_files(d))


def read_log(d, since=0):
    """Every record of the log at or after log offset since as (offset,
    payload dict), checking framing, CRC and that segments are contiguous
    (records before since are only walked over)."""
    out = []
    expect_base = None
    for base, path in segment_files(d):
        if expect_base is not None:
            assert base == expect_base, "gap between segments at %s" % path
        with open(path, "rb") as f:
            data = f.read()
        pos = 0
        while pos < len(data):
            assert pos + 8 <= len(data), "short record header at %s:%d" % (path, pos)
            n, crc = struct.unpack_from("<II", data, pos)
            assert 1 <= n and pos + 8 + n <= len(data), "bad length %d at %s:%d" % (n, path, pos)
            if base + pos >= since:
                payload = data[pos + 8:pos + 8 + n]
                assert crc32c(payload) == crc, "CRC mismatch at %s:%d" % (path, pos)
                assert b"\n" not in payload
                out.append((base + pos, json.loads(payload.decode("utf-8"))))
            pos += 8 + n
        expect_base = base + len(data)
    return out


def read_events(d, since=0):
    return [p for _, p in read_log(d, since)]


# --------------------------------------------------------------------------
# a keep-alive client (many small requests quickly)
# --------------------------------------------------------------------------

class KeepAlive:
    """One persistent HTTP/1.1 connection; reconnects once if the server
    closed it."""

    def __init__(self, port, timeout=None):
        self.port = port
        self.timeout = timeout or IO_TIMEOUT
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        hdrs = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                       timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=hdrs)
                r = self.conn.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, r.headers, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise

    def json(self, method, path, body=None, headers=None, status=200):
        st, hdrs, data = self.request(method, path, body, headers)
        assert st == status, (method, path, st, data[:500])
        return json.loads(data), hdrs

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def post_events(d, events, status=202):
    r = d.request("POST", "/v1/events", body={"events": events})
    assert r.status == status, r
    if status == 202:
        assert r.json() == {"accepted": len(events)}, r
    return r


def ev(user="u1", item="i1", type="click", **kw):
    e = {"user_id": user, "item_id": item, "type": type}
    e.update(kw)
    return e


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------

MAX_BATCH = 20


@pytest.fixture(scope="module")
def d(module_factory):
    return module_factory(config={"events": {"max_batch": MAX_BATCH}}, name="events")


def ev_stats(d):
    return d.stats()["events"]


# --------------------------------------------------------------------------
# acceptance
# --------------------------------------------------------------------------

def test_accepts_batch_and_writes_records(d):
    before = read_events(d)
    st0 = ev_stats(d)
    now = int(time.time())
    batch = [
        ev("acc-u1", "acc-i1", "click"),
        ev("acc-u1", "acc-i2", "impression", ts=now - 100, request_id="req-acc-1"),
        ev("acc-u2", "acc-i3", "watch", value=42.5),
        ev("acc-u2", "acc-i4", "rating", value=4, ts=0),
        ev("acc-u3", "acc-i5", "purchase", value=0),
        ev("\u00fcser \u2603", "item\"with\\quote", "click"),
    ]
    t0 = time.time()
    post_events(d, batch)
    t1 = time.time()
    recs = read_events(d)[len(before):]
    assert len(recs) == len(batch)
    for got, want in zip(recs, batch):
        assert got["user_id"] == want["user_id"]
        assert got["item_id"] == want["item_id"]
        assert got["type"] == want["type"]
        assert got["value"] == want.get("value", 1)
        if "ts" in want:
            assert got["ts"] == want["ts"]
        else:
            assert int(t0) - 1 <= got["ts"] <= int(t1) + 1
        assert int(t0 * 1000) - 1000 <= got["recv_ms"] <= int(t1 * 1000) + 1000
        assert got.get("request_id") == want.get("request_id")
        # no experiments live: no attribution, not forced
        assert "ab" not in got and "forced" not in got
        assert set(got) <= {"ts", "user_id", "item_id", "type", "value", "request_id",
                            "ab", "forced", "recv_ms"}
    st1 = ev_stats(d)
    assert st1["accepted"]["events"] - st0["accepted"]["events"] == len(batch)
    assert st1["accepted"]["batches"] - st0["accepted"]["batches"] == 1
    assert st1["log"]["records"] == len(read_events(d))
    assert st1["log"]["bytes"] == log_bytes(d)
    assert st1["fsync"] == "interval_ms"
    assert st1["ack_latency_us"]["count"] >= 1


def test_boundary_values_accepted(d):
    now = int(time.time())
    n0 = len(read_events(d))
    batch = [
        ev("u" * 256, "i" * 256),                              # longest ids
        ev("b-u", "b-i", "watch", value=1e9),                  # largest value
        ev("b-u", "b-i", "rating", value=10),                  # largest rating
        ev("b-u", "b-i", "watch", value=0.0),
        ev("b-u", "b-i", ts=now + 86400 - 120),                # almost a day ahead
        ev("b-u", "b-i", request_id="r" * 128),                # longest request id
        ev("b-u", "b-i", request_id="!~#$%&'()*+,-./:;<=>?@[]^_`{|}"),
        ev("b-u", "b-i", experiment="A-z_0.9", variant="v" * 64),
        ev("b-u", "b-i", variant="only-variant"),
    ]
    post_events(d, batch)
    recs = read_events(d)[n0:]
    assert [r["user_id"] for r in recs] == [e["user_id"] for e in batch]
    assert recs[1]["value"] == 1e9 and recs[2]["value"] == 10
    assert recs[4]["ts"] == now + 86400 - 120
    assert recs[5]["request_id"] == "r" * 128
    # hints are resolved by the server, never stored as given
    assert "experiment" not in recs[7] and "variant" not in recs[7]


# --------------------------------------------------------------------------
# validation: one table, every rule
# --------------------------------------------------------------------------

NOW_PLUS_2D = "now+2d"


def _bad_events():
    """(name, event or non-event, expected field relative to the event)."""
    ok = ev("v-u", "v-i")

    def with_(**kw):
        e = dict(ok)
        for k, v in kw.items():
            if v is _DEL:
                e.pop(k, None)
            else:
                e[k] = v
        return e
    return [
        ("not-object-str", "click", ""),
        ("not-object-list", [ok], ""),
        ("not-object-null", None, ""),
        ("unknown-key", with_(color="red"), "color"),
        ("unknown-key-case", with_(User_id="x"), "User_id"),
        ("user-missing", with_(user_id=_DEL), "user_id"),
        ("user-number", with_(user_id=42), "user_id"),
        ("user-empty", with_(user_id=""), "user_id"),
        ("user-257", with_(user_id="u" * 257), "user_id"),
        ("user-control", with_(user_id="a\u0001b"), "user_id"),
        ("user-del", with_(user_id="a\u007fb"), "user_id"),
        ("user-newline", with_(user_id="a\nb"), "user_id"),
        ("item-missing", with_(item_id=_DEL), "item_id"),
        ("item-null", with_(item_id=None), "item_id"),
        ("item-empty", with_(item_id=""), "item_id"),
        ("item-257", with_(item_id="i" * 257), "item_id"),
        ("item-tab", with_(item_id="a\tb"), "item_id"),
        ("type-missing", with_(type=_DEL), "type"),
        ("type-unknown", with_(type="like"), "type"),
        ("type-case", with_(type="Click"), "type"),
        ("type-number", with_(type=1), "type"),
        ("value-string", with_(value="1"), "value"),
        ("value-bool", with_(value=True), "value"),
        ("value-null", with_(value=None), "value"),
        ("value-negative", with_(value=-0.5), "value"),
        ("value-too-big", with_(value=1e9 * 1.0000001), "value"),
        ("value-huge", with_(value=1e300), "value"),
        ("watch-no-value", with_(type="watch"), "value"),
        ("rating-no-value", with_(type="rating"), "value"),
        ("rating-11", with_(type="rating", value=10.5), "value"),
        ("ts-string", with_(ts="1764201600"), "ts"),
        ("ts-float", with_(ts=1764201600.5), "ts"),
        ("ts-negative", with_(ts=-1), "ts"),
        ("ts-future", with_(ts=NOW_PLUS_2D), "ts"),
        ("ts-null", with_(ts=None), "ts"),
        ("reqid-empty", with_(request_id=""), "request_id"),
        ("reqid-129", with_(request_id="r" * 129), "request_id"),
        ("reqid-space", with_(request_id="a b"), "request_id"),
        ("reqid-nonascii", with_(request_id="caf\u00e9"), "request_id"),
        ("reqid-number", with_(request_id=7), "request_id"),
        ("exp-bad-char", with_(experiment="a b", variant="v"), "experiment"),
        ("exp-65", with_(experiment="e" * 65, variant="v"), "experiment"),
        ("exp-empty", with_(experiment="", variant="v"), "experiment"),
        ("exp-number", with_(experiment=1, variant="v"), "experiment"),
        ("exp-without-variant", with_(experiment="exp"), "variant"),
        ("variant-bad-char", with_(variant="v/1"), "variant"),
        ("variant-65", with_(variant="v" * 65), "variant"),
    ]


class _Del:
    pass


_DEL = _Del()


def _materialise(x):
    if isinstance(x, dict) and x.get("ts") == NOW_PLUS_2D:
        x = dict(x, ts=int(time.time()) + 2 * 86400)
    return x


@pytest.mark.parametrize("case", _bad_events(), ids=lambda c: c[0])
def test_bad_event_rejected_nothing_written(d, case):
    name, bad, field = case
    bad = _materialise(bad)
    # the bad event sits at index 2 of an otherwise valid batch
    good = [ev("val-u%d" % i, "val-i%d" % i) for i in range(4)]
    batch = good[:2] + [bad] + good[2:]
    size0, st0 = log_bytes(d), ev_stats(d)
    r = d.request("POST", "/v1/events", body={"events": batch})
    assert r.status == 400, (name, r)
    err = r.error()
    assert err["code"] == "bad_request", err
    want = "events[2]" + ("." + field if field else "")
    assert err["field"] == want, (name, err)
    assert err["message"].startswith("events[2]: "), err
    st1 = ev_stats(d)
    assert log_bytes(d) == size0, "a refused batch changed the log"
    assert st1["log"]["records"] == st0["log"]["records"]
    assert st1["accepted"] == st0["accepted"]
    assert st1["rejected"]["invalid"] == st0["rejected"]["invalid"] + 1


def test_first_bad_event_is_named(d):
    batch = [ev(), ev(type="nope"), ev(user_id="")]
    r = d.request("POST", "/v1/events", body={"events": batch})
    assert r.status == 400 and r.error()["field"] == "events[1].type", r


@pytest.mark.parametrize("body,field", [
    ([], "body"),
    ([{"user_id": "u", "item_id": "i", "type": "click"}], "body"),
    ({}, "events"),
    ({"events": None}, "events"),
    ({"events": {"user_id": "u"}}, "events"),
    ({"events": "x"}, "events"),
    ({"events": []}, "events"),
    ({"events": [ev()] * (MAX_BATCH + 1)}, "events"),
    ({"events": [ev()], "extra": 1}, "extra"),
    ({"event": [ev()]}, "event"),
], ids=["array", "array-of-events", "missing", "events-null",
        "events-object", "events-string", "empty", "over-max-batch", "unknown-top-key",
        "misspelt"])
def test_bad_body_rejected(d, body, field):
    size0, st0 = log_bytes(d), ev_stats(d)
    raw = json.dumps(body)
    r = d.request("POST", "/v1/events", body=raw, headers={"Content-Type": "application/json"})
    assert r.status == 400, r
    err = r.error()
    assert err["code"] == "bad_request" and err["field"] == field, err
    assert log_bytes(d) == size0
    st1 = ev_stats(d)
    assert st1["rejected"]["invalid"] == st0["rejected"]["invalid"] + 1
    assert st1["log"]["records"] == st0["log"]["records"]


@pytest.mark.parametrize("raw", [b"", b"{", b'{"events":[{"user_id":"u","item_id":"i",'
                                 b'"type":"watch","value":NaN}]}',
                                 b'{"events":[],"events":[]}',
                                 b'{"events":[{"user_id":"a\\u0000b","item_id":"i",'
                                 b'"type":"click"}]}', b'"a string"', b'17', b'null'],
                         ids=["empty", "truncated", "nan", "duplicate-key", "nul-in-id",
                              "top-string", "top-number", "top-null"])
def test_malformed_json_rejected(d, raw):
    """Not a JSON object or array at all: refused by the JSON reader (400
    bad_json, field "body") before the batch rules run."""
    size0 = log_bytes(d)
    r = d.request("POST", "/v1/events", body=raw, headers={"Content-Type": "application/json"})
    assert r.status == 400, r
    assert r.error()["field"] == "body", r
    assert r.error()["code"] == "bad_json", r
    assert log_bytes(d) == size0


@pytest.mark.parametrize("ctype", [None, "text/plain", "application/x-www-form-urlencoded",
                                   "application/jsonx"])
def test_415_without_json_content_type(d, ctype):
    size0 = log_bytes(d)
    hdrs = {"Content-Type": ctype} if ctype else {}
    r = d.request("POST", "/v1/events", body=json.dumps({"events": [ev()]}), headers=hdrs)
    assert r.status == 415, r
    err = r.error()
    assert err["code"] == "unsupported_media_type" and err["field"] == "header:Content-Type"
    assert log_bytes(d) == size0


def test_content_type_with_charset_accepted(d):
    r = d.request("POST", "/v1/events", body=json.dumps({"events": [ev()]}),
                  headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status == 202, r


def test_method_not_allowed(d):
    r = d.get("/v1/events")
    assert r.status == 405, r


def test_max_batch_respected_and_reloadable(d):
    n0 = len(read_events(d))
    post_events(d, [ev("mb-u", "mb-i%d" % i) for i in range(MAX_BATCH)])
    assert len(read_events(d)) == n0 + MAX_BATCH
    r = d.request("POST", "/v1/events",
                  body={"events": [ev("mb-u", "x")] * (MAX_BATCH + 1)})
    assert r.status == 400 and r.error()["field"] == "events", r
    assert str(MAX_BATCH) in r.error()["message"]
    # events.max_batch is reloadable
    r = d.request("PUT", "/admin/config", body={"events.max_batch": 3}, admin=True)
    assert r.status == 200, r
    try:
        post_events(d, [ev("mb-u", "y")] * 3)
        r = d.request("POST", "/v1/events", body={"events": [ev("mb-u", "y")] * 4})
        assert r.status == 400 and r.error()["field"] == "events", r
    finally:
        r = d.request("PUT", "/admin/config", body={"events.max_batch": MAX_BATCH}, admin=True)
        assert r.status == 200, r
    assert len(read_events(d)) == n0 + MAX_BATCH + 3


def test_stats_and_metrics_counters(d):
    st0 = ev_stats(d)
    post_events(d, [ev("m-u", "m-i")] * 3)
    post_events(d, [ev("m-u", "m-j")] * 2)
    r = d.request("POST", "/v1/events", body={"events": [ev(type="bad")]})
    assert r.status == 400
    st1 = ev_stats(d)
    assert st1["accepted"]["events"] == st0["accepted"]["events"] + 5
    assert st1["accepted"]["batches"] == st0["accepted"]["batches"] + 2
    assert st1["rejected"]["invalid"] == st0["rejected"]["invalid"] + 1
    assert st1["ack_latency_us"]["count"] == st0["ack_latency_us"]["count"] + 2
    assert st1["waiting_requests"] == 0
    assert st1["log"]["failed"] is False
    samples, helps, types = parse_metrics(d.metrics())
    st2 = ev_stats(d)
    assert metric_value(samples, "recd_events_accepted_total") == st2["accepted"]["events"]
    assert types["recd_events_accepted_total"] == "counter"
    assert metric_value(samples, "recd_event_batches_accepted_total") == \
        st2["accepted"]["batches"]
    assert metric_value(samples, "recd_event_batches_rejected_total", reason="invalid") == \
        st2["rejected"]["invalid"]
    for reason in ("queue_full", "log_failed", "too_large"):
        assert metric_value(samples, "recd_event_batches_rejected_total", reason=reason) == 0
    assert metric_value(samples, "recd_event_log_bytes") == log_bytes(d)
    assert metric_value(samples, "recd_event_log_segments") == len(segment_files(d))
    assert metric_value(samples, "recd_event_log_failed") == 0
    assert metric_value(samples, "recd_event_ack_duration_seconds_count") == \
        st2["ack_latency_us"]["count"]
    assert types["recd_event_ack_duration_seconds"] == "histogram"
    assert "recd_history_users" in types


# --------------------------------------------------------------------------
# policies, disabled ingest, restart
# --------------------------------------------------------------------------

@pytest.mark.parametrize("policy", ["always", "interval_ms", "never"])
def test_fsync_policies_accept(recd_factory, policy):
    d = recd_factory(config={"events": {"fsync": policy, "interval_ms": 20}})
    batch = [ev("p-u%d" % i, "p-i%d" % i, "click") for i in range(10)]
    post_events(d, batch)
    post_events(d, batch[:1])
    recs = read_events(d)
    assert [r["user_id"] for r in recs] == [e["user_id"] for e in batch] + ["p-u0"]
    st = ev_stats(d)
    assert st["fsync"] == policy
    assert st["accepted"]["events"] == 11
    assert st["log"]["written_offset"] == st["log"]["next_offset"] == log_bytes(d)
    if policy == "always":
        # acknowledged only after the fsync covering it
        assert st["log"]["durable_offset"] == log_bytes(d)
        assert st["log"]["fsyncs"] >= 1
    if policy == "interval_ms":
        wait_until(lambda: ev_stats(d)["log"]["durable_offset"] == log_bytes(d),
                   scaled(5), what="interval fsync")


def test_disabled_404_and_no_log(recd_factory):
    d = recd_factory(config={"events": {"enabled": False}})
    r = d.request("POST", "/v1/events", body={"events": [ev()]})
    assert r.status == 404, r
    assert r.error()["code"] == "events_disabled"
    assert segment_files(d) == []
    st = d.stats()["events"]
    assert st["enabled"] is False
    assert "recd_events_accepted_total" not in d.metrics()


def test_restart_keeps_and_replays_events(recd_factory):
    d = recd_factory(config={"events": {"fsync": "never"}})
    batch = [ev("r-u1", "r-i1", "click"), ev("r-u1", "r-i2", "impression"),
             ev("r-u2", "r-i3", "watch", value=100), ev("r-u2", "r-i4", "watch", value=1),
             ev("r-u3", "r-i5", "rating", value=5), ev("r-u3", "r-i6", "purchase")]
    post_events(d, batch)
    before = read_log(d)
    assert len(before) == 6
    size = log_bytes(d)
    assert d.stop() == 0
    d.start()
    st = ev_stats(d)
    assert read_log(d) == before
    assert st["log"]["records"] == 6 and st["log"]["bytes"] == size
    assert st["log"]["recovered_truncated_bytes"] == 0
    rp = st["replay"]
    assert rp["records"] == 6 and rp["replayed"] == 6
    # click, watch 100 s, rating 5, purchase (watch 1 s and the impression are not)
    assert rp["positives"] == 4
    assert rp["undecodable"] == 0 and rp["too_old"] == 0
    assert rp["from_offset"] == 0 and rp["to_offset"] == size
    assert d.stats()["history"]["users"] == 3
    # new events continue the log after the old ones
    post_events(d, [ev("r-u4", "r-i7")])
    after = read_log(d)
    assert after[:6] == before and len(after) == 7 and after[6][0] == size
    assert after[6][1]["user_id"] == "r-u4"
