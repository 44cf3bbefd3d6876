"""Prometheus exposition on /metrics."""

import os
import shutil
import subprocess
import time

import pytest

from conftest import metric_value, parse_metrics, scaled


@pytest.fixture(scope="module")
def d(module_factory):
    return module_factory()


FAMILIES = {
    "recd_build_info": "gauge",
    "recd_uptime_seconds": "gauge",
    "process_start_time_seconds": "gauge",
    "process_resident_memory_bytes": "gauge",
    "recd_http_connections_open": "gauge",
    "recd_http_connections_accepted_total": "counter",
    "recd_http_connections_rejected_total": "counter",
    "recd_http_inflight_requests": "gauge",
    "recd_http_requests_total": "counter",
    "recd_http_request_duration_seconds": "histogram",
    "recd_config_reloads_total": "counter",
}


def family_of(name, types):
    """TYPE names the family; counters may be declared with or without _total."""
    for suffix in ("", "_total", "_bucket", "_sum", "_count"):
        if suffix and name.endswith(suffix):
            base = name[: -len(suffix)]
            if base in types:
                return base
    return name


def test_content_type(d):
    r = d.get("/metrics")
    assert r.status == 200
    assert r.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"


def test_promtool_check(d):
    promtool = shutil.which("promtool") or (
        "/usr/bin/promtool" if os.path.exists("/usr/bin/promtool") else None)
    if not promtool:
        pytest.skip("promtool not installed (Debian package `prometheus`)")
    for _ in range(3):
        d.get("/healthz")
    d.get("/nope")
    text = d.metrics()
    p = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert p.returncode == 0, "promtool: %s%s\n---\n%s" % (
        p.stdout.decode(), p.stderr.decode(), text[:3000])


def test_families_help_and_type(d):
    d.get("/healthz")
    samples, helps, types = parse_metrics(d.metrics())
    names = {n for n, _, _ in samples}
    for fam, typ in FAMILIES.items():
        declared = fam if fam in types else (fam[:-6] if fam.endswith("_total")
                                             and fam[:-6] in types else None)
        assert declared, "no # TYPE for %s" % fam
        assert types[declared] == typ, (fam, types[declared])
        assert declared in helps and helps[declared].strip(), "no # HELP for %s" % fam
        if typ == "histogram":
            assert fam + "_bucket" in names and fam + "_sum" in names and fam + "_count" in names
        else:
            assert fam in names, "no samples for %s" % fam


def test_build_info(d):
    samples, _, _ = parse_metrics(d.metrics())
    rows = [(l, v) for n, l, v in samples if n == "recd_build_info"]
    assert len(rows) == 1, rows
    labels, value = rows[0]
    assert value == 1
    assert labels.get("version") == "0.1.0"
    assert labels.get("git"), labels
    assert labels["git"] == d.stats()["git"]


def test_process_gauges(d):
    samples, _, _ = parse_metrics(d.metrics())
    now = time.time()
    uptime = metric_value(samples, "recd_uptime_seconds")
    start = metric_value(samples, "process_start_time_seconds")
    assert 0 <= uptime < 3600
    assert abs((now - uptime) - start) < 30, (now, uptime, start)
    assert metric_value(samples, "process_resident_memory_bytes") > 1_000_000
    assert metric_value(samples, "recd_http_connections_open") >= 1
    assert metric_value(samples, "recd_http_connections_accepted_total") >= 1
    assert metric_value(samples, "recd_http_inflight_requests") >= 0
    assert metric_value(samples, "recd_config_reloads_total", result="ok") == 0
    assert metric_value(samples, "recd_config_reloads_total", result="error") == 0


def test_counters_move(d):
    n = 30
    before, _, _ = parse_metrics(d.metrics())
    stats_before = d.stats()["endpoints"]["/healthz"]
    for _ in range(n):
        assert d.get("/healthz").status == 200
    after, _, _ = parse_metrics(d.metrics())
    stats_after = d.stats()["endpoints"]["/healthz"]

    def delta(name, **labels):
        return metric_value(after, name, **labels) - metric_value(before, name, **labels)

    assert delta("recd_http_requests_total", endpoint="/healthz", **{"class": "2xx"}) >= n
    assert delta("recd_http_request_duration_seconds_count", endpoint="/healthz") >= n
    assert delta("recd_http_request_duration_seconds_sum", endpoint="/healthz") > 0
    assert delta("recd_http_request_duration_seconds_bucket",
                 endpoint="/healthz", le="+Inf") >= n
    assert delta("recd_http_connections_accepted_total") >= n
    # /stats agrees with /metrics
    s_delta = stats_after["requests"]["2xx"] - stats_before["requests"]["2xx"]
    assert s_delta >= n
    m_total = metric_value(after, "recd_http_requests_total", endpoint="/healthz",
                           **{"class": "2xx"})
    # the /stats snapshot was taken after the /metrics snapshot, no /healthz between
    assert m_total == stats_after["requests"]["2xx"], (m_total, stats_after)


def test_histogram_consistent(d):
    for _ in range(5):
        d.get("/healthz")
    samples, _, _ = parse_metrics(d.metrics())
    buckets = [(l["le"], v) for n, l, v in samples
               if n == "recd_http_request_duration_seconds_bucket"
               and l.get("endpoint") == "/healthz"]
    assert buckets, "no buckets for /healthz"
    assert buckets[-1][0] == "+Inf", buckets
    les = [float(le) for le, _ in buckets]
    assert les == sorted(les), les
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), "bucket counts must be cumulative: %r" % buckets
    count = metric_value(samples, "recd_http_request_duration_seconds_count", endpoint="/healthz")
    assert counts[-1] == count
    total = metric_value(samples, "recd_http_request_duration_seconds_sum", endpoint="/healthz")
    assert 0 < total < count * scaled(1.0)  # each /healthz well under a second


def test_error_classes_counted(d):
    before, _, _ = parse_metrics(d.metrics())

    def val(samples, **labels):
        try:
            return metric_value(samples, "recd_http_requests_total", **labels)
        except AssertionError:
            return 0
    for _ in range(3):
        assert d.get("/no-such-path").status == 404
    after, _, _ = parse_metrics(d.metrics())
    lab = {"endpoint": "unmatched", "class": "4xx"}
    assert val(after, **lab) - val(before, **lab) >= 3


def test_head_metrics(d):
    r = d.request("HEAD", "/metrics")
    assert r.status == 200
    assert r.body == b""
    assert r.header("Content-Type", "").startswith("text/plain")
