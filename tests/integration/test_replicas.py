"""Several recd replicas behind nginx and HAProxy (DESIGN §7, README
"Running more than one replica"), with real processes on loopback.

Two replicas, each with its own ports and data_dir, share one models_dir
(a small bundle) and the same `experiments`. Replica r1 is the events
replica (and has the embedded trainer enabled, never triggered here);
r2 takes events only while r1 is down. The proxies run the shipped files
conf/nginx-recd.conf and conf/haproxy-recd.cfg, rendered for the test's
ports by the text substitution their headers document (replicalib).

- Both replicas answer through the proxy (X-Recd-Upstream), the request
  id passes through (or the proxy makes one).
- A/B assignment: for 250 users the variant (body and X-Recd-Variant) is
  the same from either replica through the proxy, from each replica
  directly, and equals an independent FNV-1a-64 reference.
- Events through the proxy all land in r1's log (/stats counts and the
  log itself); the history they build is r1's only.
- Fail-over: 4 client threads send /v1/recommend, /v1/score and
  /v1/events continuously through the proxy while r1 gets SIGTERM (a
  second run: SIGKILL) and is restarted. Not one request may fail; once
  the proxy has marked r1 down (nginx: the fail_timeout window after the
  first failed attempt; HAProxy: DOWN in its stats CSV) every request is
  answered by r2; the restarted r1 gets traffic again. Every acknowledged
  event is in a log; duplicates from retried batches are counted (none
  may appear after SIGTERM, at most the batches in flight after SIGKILL).
- A version published into the shared models_dir is served by both;
  a pin is per replica; an experiments change is per replica.
- The shipped files pass `nginx -t` and `haproxy -c`; the proxies'
  own errors (413, no replica left) are in recd's JSON error shape.

The measured figures (time to mark down, time back, duplicates) are
printed; run with -s to see them.
"""

import json
import os
import re
import signal
import subprocess
import time
from collections import Counter

import pytest

import replicalib as rl
from bundlelib import fnv1a64, make_bundle
from conftest import STOP_TIMEOUT, Raw, free_port, http_request, scaled, wait_until
from test_events_api import KeepAlive, read_events

N_ITEMS = 200
N_USERS = 250
TOKEN = "replicas-admin-token"
EXPS = [{"name": "ranker-test", "salt": "replicas-2026",
         "variants": [{"name": "control", "weight": 50},
                      {"name": "no-rank", "weight": 30, "rank": False},
                      {"name": "wide", "weight": 20, "candidates": 100}]}]

# nginx's passive marking, read from the shipped file (fail_timeout=3s).
NGINX_FAIL_TIMEOUT = float(re.search(r"fail_timeout=(\d+)s", rl.read(rl.NGINX_CONF)).group(1))


def variant_ref(exp, user):
    """The variant DESIGN §6 assigns: bucket FNV-1a-64(salt ":" user) mod
    10000, variant i owns [floor(10000 cum(i-1)/W), floor(10000 cum(i)/W))."""
    b = fnv1a64((exp["salt"] + ":" + user).encode()) % 10000
    total = sum(v["weight"] for v in exp["variants"])
    cum = 0
    for v in exp["variants"]:
        cum += v["weight"]
        if b < 10000 * cum // total:
            return v["name"]
    raise AssertionError("bucket %d owned by nobody" % b)


# --------------------------------------------------------------------------
# the cluster
# --------------------------------------------------------------------------

class Cluster:
    def __init__(self, factory, models):
        self.models = models
        base = {"models_dir": models, "models": {"serve": "default", "default": "default"},
                "admin": {"token": TOKEN}, "log": {"level": "info"},
                "events": {"fsync": "interval_ms", "interval_ms": 20},
                "experiments": EXPS}
        # r1: the events replica, the one with the trainer (never due here)
        self.r1 = factory(config=dict(base, trainer={"enabled": True, "interval_s": 86400,
                                                     "min_new_events": 10 ** 12}),
                          name="r1", start=False)
        self.r2 = factory(config=base, name="r2", start=False)
        for d in (self.r1, self.r2):
            d.addr = "127.0.0.1:%d" % d.port
            d.start()
        for d in (self.r1, self.r2):
            self.wait_ready(d)

    @staticmethod
    def wait_ready(d):
        wait_until(lambda: d.get("/readyz").status == 200, scaled(30),
                   what="%s /readyz 200" % d.name)

    def ensure_up(self):
        """Both replicas running and ready (a failed test may have left one down)."""
        for d in (self.r1, self.r2):
            if not d.alive():
                d.start()
            self.wait_ready(d)


@pytest.fixture(scope="module")
def cluster(module_factory, tmp_path_factory):
    models = str(tmp_path_factory.mktemp("replica_models"))
    make_bundle(models, name="default", items=N_ITEMS, dim=16, embed=8, hidden="32",
                rank_hidden="16", rank_embed=4, seed=7, index="Flat")
    return Cluster(module_factory, models)


@pytest.fixture
def up(cluster):
    cluster.ensure_up()
    return cluster


@pytest.fixture(scope="module")
def nginx(cluster, tmp_path_factory):
    rl.require_program("nginx", "nginx-light")
    d = str(tmp_path_factory.mktemp("nginx"))
    port = free_port()
    text = rl.render_nginx(rl.read(rl.NGINX_CONF), d, port, cluster.r1.addr, cluster.r2.addr)
    n = rl.Nginx(d, text, port).start()
    yield n
    n.stop()
    print("----- nginx -----\n%s" % n.log())


@pytest.fixture(scope="module")
def haproxy(cluster, tmp_path_factory):
    rl.require_program("haproxy", "haproxy")
    d = str(tmp_path_factory.mktemp("haproxy"))
    port, stats_port = free_port(), free_port()
    text = rl.render_haproxy(rl.read(rl.HAPROXY_CONF), port, stats_port,
                             cluster.r1.addr, cluster.r2.addr)
    h = rl.HAProxy(d, text, port, stats_port).start()
    yield h
    h.stop()
    print("----- haproxy -----\n%s" % h.log())


def haproxy_wait_status(h, want, servers=("r1", "r2"), backends=("recd_replicas", "recd_events"),
                        timeout=None):
    """Wait until the servers are UP (exactly: not "UP 1/2", on its way
    down) or DOWN (also "DOWN 1/2", on its way up) in HAProxy's stats CSV;
    returns the time it saw it."""
    def is_(status):
        return status == "UP" if want == "UP" else status.startswith("DOWN")

    def ok():
        st = h.stats()
        return all(is_(st[(b, s)]["status"]) for b in backends for s in servers)
    wait_until(ok, timeout or scaled(10), interval=0.02,
               what="HAProxy servers %s of %s %s" % (servers, backends, want))
    return time.monotonic()


# --------------------------------------------------------------------------
# the shipped files
# --------------------------------------------------------------------------

def test_nginx_config_is_valid(tmp_path):
    """nginx -t on the shipped file as it is (only the paths nginx writes
    moved to a temporary directory)."""
    rl.require_program("nginx", "nginx-light")
    text = rl.render_nginx_paths(rl.read(rl.NGINX_CONF), str(tmp_path))
    p = rl.Nginx(tmp_path, text, 0).check()
    assert p.returncode == 0 and "syntax is ok" in p.stdout, p.stdout


def test_haproxy_config_is_valid():
    """haproxy -c on the shipped file as it is, without warnings."""
    hp = rl.require_program("haproxy", "haproxy")
    p = subprocess.run([hp, "-c", "-f", rl.HAPROXY_CONF], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=scaled(20), text=True)
    assert p.returncode == 0, p.stdout
    assert "WARNING" not in p.stdout and "ALERT" not in p.stdout, p.stdout


def test_config_checks_fail_on_a_broken_file(tmp_path):
    """The validity checks above can fail: a broken copy is refused."""
    checked = 0
    if rl.find_program("nginx"):
        text = rl.render_nginx_paths(rl.read(rl.NGINX_CONF), str(tmp_path))
        text = text.replace("proxy_next_upstream_tries 3;", "proxy_next_upstream_tries;")
        p = rl.Nginx(tmp_path / "n", text, 0).check()
        assert p.returncode != 0, p.stdout
        checked += 1
    hp = rl.find_program("haproxy")
    if hp:
        bad = tmp_path / "h.cfg"
        bad.write_text(rl.read(rl.HAPROXY_CONF).replace("retry-on conn-failure",
                                                         "retry-on no-such-event"))
        p = subprocess.run([hp, "-c", "-f", str(bad)], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=scaled(20), text=True)
        assert p.returncode != 0, p.stdout
        checked += 1
    if not checked:
        pytest.skip("neither nginx nor haproxy is installed")


# --------------------------------------------------------------------------
# through the proxy: both replicas, request ids, A/B agreement
# --------------------------------------------------------------------------

def proxy_of(request, kind):
    return request.getfixturevalue(kind)


@pytest.mark.parametrize("kind", ["nginx", "haproxy"])
def test_both_replicas_answer_and_request_ids_pass(up, request, kind):
    px = proxy_of(request, kind)
    seen = set()
    c = KeepAlive(px.port)
    try:
        for i in range(20):
            st, hdrs, data = c.request("GET", "/v1/recommend?user_id=ids-%d&k=3" % i)
            assert st == 200, data
            ups = rl.upstream_list(hdrs.get("X-Recd-Upstream"))
            assert len(ups) == 1, ups
            seen.add(ups[0])
            # no id sent: the proxy made one, recd used it
            rid = hdrs.get("X-Request-Id")
            want = r"^[0-9a-f]{32}$" if kind == "nginx" else r"^[0-9a-f-]{36}$"
            assert re.match(want, rid), rid
            assert json.loads(data)["request_id"] == rid
        st, hdrs, data = c.request("GET", "/v1/recommend?user_id=ids&k=3",
                                   headers={"X-Request-Id": "client-id-42"})
        assert st == 200 and hdrs.get("X-Request-Id") == "client-id-42", (st, dict(hdrs))
        assert json.loads(data)["request_id"] == "client-id-42"
    finally:
        c.close()
    assert seen == {up.r1.addr, up.r2.addr}, seen


@pytest.mark.parametrize("kind", ["nginx", "haproxy"])
def test_ab_assignment_agrees_across_replicas(up, request, kind):
    px = proxy_of(request, kind)
    exp = EXPS[0]
    users = ["ab-%s-%d" % (kind, i) for i in range(N_USERS)]
    direct = {up.r1.addr: KeepAlive(up.r1.port), up.r2.addr: KeepAlive(up.r2.port)}
    proxied = KeepAlive(px.port)
    counts = {}

    def variant(conn, user):
        st, hdrs, data = conn.request("GET", "/v1/recommend?user_id=%s&k=2" % user)
        assert st == 200, data
        doc = json.loads(data)
        assert doc["experiment"] == {"name": exp["name"], "variant": hdrs.get("X-Recd-Variant")}, \
            (doc.get("experiment"), dict(hdrs))
        return doc["experiment"]["variant"], rl.upstream_list(hdrs.get("X-Recd-Upstream"))

    try:
        for u in users:
            want = variant_ref(exp, u)
            for addr, conn in direct.items():
                got, _ = variant(conn, u)
                assert got == want, "%s directly: user %s got %s, reference %s" % (
                    addr, u, got, want)
            answered = set()
            for _ in range(8):  # until both replicas have answered this user
                got, ups = variant(proxied, u)
                assert got == want, "via %s (%s): user %s got %s, reference %s" % (
                    kind, ups, u, got, want)
                answered.add(ups[-1])
                if len(answered) == 2:
                    break
            assert answered == {up.r1.addr, up.r2.addr}, (u, answered)
            counts[want] = counts.get(want, 0) + 1
    finally:
        for c in list(direct.values()) + [proxied]:
            c.close()
    # every variant is exercised
    assert set(counts) == {v["name"] for v in exp["variants"]}, counts
    print("variants of %d users: %s" % (N_USERS, counts))


# --------------------------------------------------------------------------
# events: one replica's log; history per replica
# --------------------------------------------------------------------------

def events_accepted(d):
    return d.stats()["events"]["accepted"]["events"]


@pytest.mark.parametrize("kind", ["nginx", "haproxy"])
def test_events_go_to_the_events_replica(up, request, kind):
    px = proxy_of(request, kind)
    if kind == "haproxy":
        haproxy_wait_status(px, "UP")
    tag = "ev-%s" % kind
    # exactly one replica trains: the events replica
    assert up.r1.stats()["trainer"]["enabled"] is True
    assert up.r2.stats()["trainer"]["enabled"] is False
    before = {d.name: events_accepted(d) for d in (up.r1, up.r2)}
    c = KeepAlive(px.port)
    sent = []
    try:
        for b in range(40):
            evs = [{"user_id": "%s-%d-%d" % (tag, b, j), "item_id": "i%d" % j, "type": "click"}
                   for j in range(5)]
            st, hdrs, data = c.request("POST", "/v1/events", body={"events": evs})
            assert st == 202 and json.loads(data) == {"accepted": 5}, (st, data)
            assert rl.upstream_list(hdrs.get("X-Recd-Upstream"))[-1] == up.r1.addr
            sent += [e["user_id"] for e in evs]
    finally:
        c.close()
    after = {d.name: events_accepted(d) for d in (up.r1, up.r2)}
    assert after["r1"] - before["r1"] == len(sent), (before, after)
    assert after["r2"] == before["r2"], (before, after)
    logged = [e["user_id"] for e in read_events(up.r1) if e["user_id"].startswith(tag + "-")]
    assert sorted(logged) == sorted(sent), "r1's log differs from what was sent"
    assert not [e for e in read_events(up.r2) if e["user_id"].startswith(tag + "-")]

    # the history those clicks built is r1's alone: a /v1/recommend
    # without "history" answered by r2 knows nothing of the user
    body = {"user_id": "%s-0-0" % tag, "k": 3, "explain": True}
    a, b = (d.request("POST", "/v1/recommend", body=body) for d in (up.r1, up.r2))
    assert a.status == 200 and b.status == 200, (a, b)
    assert a.json()["explain"]["history_source"] == "store", a.json().get("explain")
    assert b.json()["explain"]["history_source"] == "none", b.json().get("explain")
    assert b.json().get("fallback") == "popular" and "fallback" not in a.json()


BY_USER_UPSTREAM = """
    upstream recd_by_user {
        zone recd_by_user 64k;
        hash $arg_user_id consistent;
        server %s max_fails=1 fail_timeout=3s;
        server %s max_fails=1 fail_timeout=3s;
        keepalive 32;
    }
"""
BY_USER_LOCATIONS = """
        location = /v1/events {
            proxy_pass http://recd_by_user;
        }
        location = /v1/recommend {
            proxy_pass http://recd_by_user;
        }
"""


def test_nginx_users_partitioned_by_hash_keep_their_history(up, tmp_path):
    """README's alternative to one events replica: a user's events
    (POST /v1/events?user_id=U, one user per batch; recd ignores the query
    string of POST /v1/events) and GET /v1/recommend?user_id=U go to the same
    replica by nginx's consistent hash, so each replica has its users'
    histories."""
    rl.require_program("nginx", "nginx-light")
    d, port = str(tmp_path), free_port()
    text = rl.render_nginx(rl.read(rl.NGINX_CONF), d, port, up.r1.addr, up.r2.addr)
    text = rl.substitute(text, {
        "    # Clients.\n": BY_USER_UPSTREAM % (up.r1.addr, up.r2.addr) + "\n    # Clients.\n",
        "        location = /v1/events {\n            proxy_pass http://recd_events;\n        }\n":
            BY_USER_LOCATIONS,
    }, "nginx config")
    n = rl.Nginx(d, text, port).start()
    c = KeepAlive(port)
    where = {}
    try:
        for i in range(40):
            u = "part-%d" % i
            evs = [{"user_id": u, "item_id": "i%d" % (i + j + 1), "type": "click"}
                   for j in range(3)]
            st, hdrs, data = c.request("POST", "/v1/events?user_id=" + u, {"events": evs})
            assert st == 202, data
            where[u] = rl.upstream_list(hdrs.get("X-Recd-Upstream"))[-1]
        other = {up.r1.addr: up.r2, up.r2.addr: up.r1}
        for u, addr in where.items():
            # through nginx: the replica that has the user's clicks answers
            # from them; the other replica knows nothing of the user
            doc, hdrs = c.json("GET", "/v1/recommend?user_id=%s&k=3" % u)
            assert rl.upstream_list(hdrs.get("X-Recd-Upstream"))[-1] == addr, (u, addr)
            assert "fallback" not in doc, (u, doc)
            r = other[addr].get("/v1/recommend?user_id=%s&k=3" % u)
            assert r.status == 200 and r.json().get("fallback") == "popular", (u, r)
    finally:
        c.close()
        n.stop()
    assert set(where.values()) == {up.r1.addr, up.r2.addr}, "the hash must use both replicas"


# --------------------------------------------------------------------------
# fail-over under load
# --------------------------------------------------------------------------

SETTLE = scaled(0.3)      # after the signal, before "marked down" is asserted


def logged_ids(d, tag):
    out = {}
    for e in read_events(d):
        u = e["user_id"]
        if u.startswith(tag + "-"):
            out[u] = out.get(u, 0) + 1
    return out


def run_failover(cluster, kind, px, sig):
    victim, survivor = cluster.r1, cluster.r2
    tag = "fo-%s-%s" % (kind, signal.Signals(sig).name)
    if kind == "haproxy":
        haproxy_wait_status(px, "UP")
    load = rl.Load(px.port, tag).start()
    fig = {}
    try:
        t_begin = time.monotonic()
        wait_until(lambda: len(load.answered_since(t_begin, victim.addr)) >= 20 and
                   len(load.answered_since(t_begin, survivor.addr)) >= 20,
                   scaled(10), what="both replicas answering through %s" % kind)

        t_sig = time.monotonic()
        victim.signal(sig)
        if kind == "haproxy":
            t_down = haproxy_wait_status(px, "DOWN", servers=("r1",))
            fig["marked_down_ms"] = (t_down - t_sig) * 1000
        rc = victim.wait_exit(STOP_TIMEOUT)
        t_exit = time.monotonic()
        assert rc == (0 if sig == signal.SIGTERM else -signal.SIGKILL), \
            "%s exited with %r after %s" % (victim.name, rc, signal.Signals(sig).name)
        fig["exit_ms"] = (t_exit - t_sig) * 1000

        if kind == "haproxy":
            window = (max(t_down, t_exit) + 0.05, None)
            # 2 s: a request caught by the kill can spend about a second in
            # HAProxy's retries (its turn-around delay before retrying after
            # a connection failure), holding its client thread meanwhile
            time.sleep(scaled(2.0))
        else:
            # nginx marks the replica failed at the first failed attempt and
            # skips it for fail_timeout: no attempt on it in that window
            window = (t_sig + SETTLE, t_sig + NGINX_FAIL_TIMEOUT - 0.2)
            time.sleep(max(0.0, window[1] - 0.5 - time.monotonic()))

        t_restart = time.monotonic()
        if window[1] is None:
            window = (window[0], t_restart)
        victim.start()
        cluster.wait_ready(victim)
        t_ready = time.monotonic()
        if kind == "haproxy":
            t_up = haproxy_wait_status(px, "UP", servers=("r1",))
            fig["marked_up_ms"] = (t_up - t_ready) * 1000
        for what in ("recommend", "events"):
            wait_until(lambda: [r for r in load.answered_since(t_ready, victim.addr)
                                if r.kind == what],
                       scaled(NGINX_FAIL_TIMEOUT + 10),
                       what="%s answered by the restarted %s again" % (what, victim.name))
            fig["back_%s_ms" % what] = (min(r.t1 for r in load.answered_since(t_ready, victim.addr)
                                            if r.kind == what) - t_ready) * 1000
        time.sleep(scaled(0.3))
    finally:
        load.stop()

    res = load.snapshot()
    fails = [r for r in res if not r.ok]
    if kind == "haproxy":
        # HAProxy 2.6 does not retry a request whose connection the replica
        # reset (it closes the client's connection, or answers 502 on a
        # connection's first request). After SIGKILL that happens to
        # requests the replica had not answered, and to connections the
        # kernel still completed on its listening socket until the process
        # was gone (t_exit). After SIGTERM (no shutdown_delay_ms) it can
        # happen to a connection that was in the listen backlog when recd
        # closed its listener (CI saw 1 of 1,701 once). Only requests in
        # flight between the signal and the exit may fail; with
        # shutdown_delay_ms none does (test_haproxy_takes_replica_out_...).
        late = [r for r in fails if not (r.t0 < t_exit and r.t1 > t_sig)]
        assert not late, "requests outside the kill window failed: %r" % late[:5]
        assert len(fails) <= 2 * load.nthreads, fails
    else:
        assert not fails, "%d of %d requests failed through %s, first: %r" % (
            len(fails), len(res), kind, fails[:5])

    before = [r for r in res if r.t1 < t_sig]
    # sent while the victim was marked down (answered then or later)
    during = [r for r in res if window[0] <= r.t0 <= window[1]]
    after = [r for r in res if r.t0 >= t_ready]
    assert len(during) >= 20, "too few requests while %s was down: %d" % (victim.name,
                                                                         len(during))
    wrong = [r for r in during if r.answered_by != survivor.addr or victim.addr in r.upstreams]
    assert not wrong, "while %s was marked down, requests still went to it: %r" % (
        victim.name, wrong[:5])
    assert {r.answered_by for r in before} == {victim.addr, survivor.addr}
    assert victim.addr in {r.answered_by for r in after}
    retried = [r for r in res if len(r.upstreams) > 1]
    if kind == "nginx":
        first = [r.t1 for r in retried if r.t0 >= t_sig and r.upstreams[0] == victim.addr]
        if first:
            fig["first_retry_ms"] = (min(first) - t_sig) * 1000

    # events: every acknowledged one is in a log; where they went
    logs = {d.name: logged_ids(d, tag) for d in (victim, survivor)}
    acked = load.acked_events()
    assert len(acked) == len(set(acked))
    counts = Counter(logs["r1"]) + Counter(logs["r2"])
    lost = [e for e in acked if e not in counts]
    assert not lost, "%d acknowledged events are in no log: %r" % (len(lost), lost[:10])
    unanswered = {e for r in fails for e in r.events}
    stray = set(counts) - set(acked) - unanswered
    assert not stray, "events in a log that were never sent: %r" % sorted(stray)[:10]
    dups = sum(c - 1 for c in counts.values())
    in_flight_events = sum(1 for r in res if r.kind == "events" and r.t0 <= t_sig <= r.t1)
    ev_before = [e for r in before if r.kind == "events" for e in r.events]
    ev_during = [e for r in during if r.kind == "events" for e in r.events]
    assert all(e in logs["r1"] for e in ev_before), "events before the stop not in r1's log"
    assert all(e in logs["r2"] and e not in logs["r1"] for e in ev_during), \
        "events while r1 was down must be in r2's log only"
    ev_back = [e for r in after if r.kind == "events" and r.answered_by == victim.addr
               for e in r.events]
    assert ev_back and all(e in logs["r1"] for e in ev_back)
    if sig == signal.SIGTERM:
        assert dups == 0, "%d events logged twice after SIGTERM (drained: none expected)" % dups
    else:
        assert dups <= in_flight_events * load.batch, (dups, in_flight_events)

    fig.update(requests=len(res), before=len(before), during=len(during), after=len(after),
               retried=len(retried), failed=len(fails), events_acked=len(acked),
               duplicates=dups, unacknowledged_logged=len(set(counts) & unanswered),
               events_in_flight_at_signal=in_flight_events)
    print("failover %s %s: %s" % (kind, signal.Signals(sig).name,
                                  ", ".join("%s=%s" % (k, round(v, 1) if isinstance(v, float)
                                                       else v) for k, v in fig.items())))
    return fig


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_nginx_failover_no_failed_request(up, nginx, sig):
    run_failover(up, "nginx", nginx, sig)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_haproxy_failover_no_failed_request(up, haproxy, sig):
    run_failover(up, "haproxy", haproxy, sig)


# --------------------------------------------------------------------------
# a replica that is up but has no model (yet)
# --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["nginx", "haproxy"])
def test_replica_without_model_gets_no_request_through(up, recd_factory, tmp_path, kind):
    """A replica whose port is open but whose model is not loaded (what a
    restarted replica is until its models are in; here for good: its
    models_dir is empty) answers the model endpoints and /readyz 503
    not_ready. Through nginx (no active checks) it gets requests and
    nginx asks the other replica; HAProxy's /readyz check keeps it DOWN."""
    empty = tmp_path / "no-models"
    (empty / "default").mkdir(parents=True)
    lame = recd_factory(config={"models_dir": str(empty),
                                "models": {"serve": "default", "default": "default"},
                                "log": {"level": "info"}}, name="lame")
    assert lame.get("/readyz").status == 503
    r = lame.get("/v1/recommend?user_id=x")
    assert r.status == 503 and r.error()["code"] == "not_ready", r
    lame_addr = "127.0.0.1:%d" % lame.port
    d = str(tmp_path / kind)
    port = free_port()
    if kind == "nginx":
        text = rl.render_nginx(rl.read(rl.NGINX_CONF), d, port, lame_addr, up.r2.addr)
        px = rl.Nginx(d, text, port).start()
    else:
        stats_port = free_port()
        text = rl.render_haproxy(rl.read(rl.HAPROXY_CONF), port, stats_port, lame_addr,
                                 up.r2.addr)
        px = rl.HAProxy(d, text, port, stats_port).start()
        haproxy_wait_status(px, "DOWN", servers=("r1",), backends=("recd_replicas",))
        haproxy_wait_status(px, "UP", servers=("r2",), backends=("recd_replicas",))
    tried_lame = 0
    c = KeepAlive(port)
    try:
        for i in range(30):
            for method, path, body in (
                    ("GET", "/v1/recommend?user_id=l%d&k=3" % i, None),
                    ("POST", "/v1/recommend", {"user_id": "l%d" % i, "k": 3}),
                    ("POST", "/v1/score", {"user_id": "l%d" % i, "items": ["i1", "i2"]}),
                    ("GET", "/v1/similar/i%d?k=3" % (i + 1), None)):
                st, hdrs, data = c.request(method, path, body)
                assert st == 200, (method, path, st, data[:300], dict(hdrs))
                ups = rl.upstream_list(hdrs.get("X-Recd-Upstream"))
                assert ups[-1] == up.r2.addr, ups
                tried_lame += lame_addr in ups
    finally:
        c.close()
        px.stop()
    if kind == "nginx":
        assert tried_lame > 0, "nginx never tried the replica without a model"
    else:
        assert tried_lame == 0
    print("%s: %d of 120 requests first tried the replica without a model" % (kind, tried_lame))


# --------------------------------------------------------------------------
# per-replica state: models, pins, experiments
# --------------------------------------------------------------------------

def served_version(d):
    r = d.get("/v1/recommend?user_id=v&k=1")
    assert r.status == 200, r
    return r.json()["model"]["version"]


def admin(d, method, path, body=None):
    return d.request(method, path, body=body, admin=True)


def test_shared_models_dir_and_per_replica_pins(up, tmp_path):
    assert served_version(up.r1) == 1 and served_version(up.r2) == 1
    # publish version 2 the way recd-train and the trainer do: stage, rename
    stage = tmp_path / "stage"
    make_bundle(stage, name="default", version=2, items=N_ITEMS, dim=16, embed=8,
                hidden="32", rank_hidden="16", rank_embed=4, seed=8, index="Flat")
    os.rename(str(stage / "default" / "2"), os.path.join(up.models, "default", "2"))
    for d in (up.r1, up.r2):
        wait_until(lambda: served_version(d) == 2, scaled(20),
                   what="%s serving version 2 (inotify on the shared models_dir)" % d.name)
    # a pin is the replica's own (data_dir/models.json)
    r = admin(up.r1, "POST", "/admin/models/default/load", {"version": 1})
    assert r.status == 200, r
    assert served_version(up.r1) == 1 and served_version(up.r2) == 2
    with open(os.path.join(up.r1.config["data_dir"], "models.json")) as f:
        assert "default" in f.read()
    assert not os.path.exists(os.path.join(up.r2.config["data_dir"], "models.json")) or \
        '"default"' not in open(os.path.join(up.r2.config["data_dir"], "models.json")).read()
    r = admin(up.r1, "POST", "/admin/models/default/unpin")
    assert r.status == 200, r
    wait_until(lambda: served_version(up.r1) == 2, scaled(20), what="r1 back on version 2")


def test_experiments_change_is_per_replica(up):
    changed = [dict(EXPS[0], variants=[dict(v) for v in EXPS[0]["variants"]])]
    changed[0]["variants"][0]["weight"], changed[0]["variants"][1]["weight"] = 20, 60
    users = ["xp-%d" % i for i in range(200)]
    moved = [u for u in users if variant_ref(changed[0], u) != variant_ref(EXPS[0], u)]
    assert moved, "the change must move some users"

    def variants(d):
        c = KeepAlive(d.port)
        try:
            return {u: c.json("GET", "/v1/recommend?user_id=%s&k=1" % u)[0]["experiment"]
                    ["variant"] for u in users}
        finally:
            c.close()

    try:
        r = admin(up.r1, "PUT", "/admin/experiments", {"experiments": changed})
        assert r.status == 200, r
        v1, v2 = variants(up.r1), variants(up.r2)
        assert {u for u in users if v1[u] != v2[u]} == set(moved), \
            "only r1 changed: exactly the moved users must differ"
        r = admin(up.r2, "PUT", "/admin/experiments", {"experiments": changed})
        assert r.status == 200, r
        assert variants(up.r1) == variants(up.r2)
    finally:
        for d in (up.r1, up.r2):
            assert admin(d, "PUT", "/admin/experiments", {"experiments": EXPS}).status == 200


# --------------------------------------------------------------------------
# the proxies' own errors
# --------------------------------------------------------------------------

def assert_recd_error(r, status, code):
    assert r.status == status, r
    assert r.header("Content-Type", "").startswith("application/json"), r
    err = r.error()
    assert err["code"] == code, err


def body_of(size):
    """A JSON body of exactly size bytes: an empty events batch, padded."""
    head, tail = b'{"events": [', b"]}"
    return head + b" " * (size - len(head) - len(tail)) + tail


def test_proxy_errors_in_recd_shape(up, nginx, haproxy, tmp_path):
    for px in (nginx, haproxy):
        # recd's limit, 1048576 bytes, passes the proxy (recd refuses the
        # empty batch itself); one byte more is the proxy's 413
        r = http_request("127.0.0.1", px.port, "POST", "/v1/events", body=body_of(1048576),
                         headers={"Content-Type": "application/json"})
        assert_recd_error(r, 400, "bad_request")
        assert r.error()["field"] == "events", r
        # (the proxy answers on the Content-Length alone; no body is sent)
        with Raw(px.port) as c:
            c.send("POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Content-Length: 1048577\r\n\r\n")
            r = c.read_final_response()
        assert r.status == 413, r
        assert r.header("Content-Type", "").startswith("application/json"), r
        assert r.error()["code"] == "body_too_large", r
    # every replica gone: nginx's 503 in recd's shape, with Retry-After
    dead1, dead2, port = free_port(), free_port(), free_port()
    d = str(tmp_path / "nginx-dead")
    text = rl.render_nginx(rl.read(rl.NGINX_CONF), d, port, "127.0.0.1:%d" % dead1,
                           "127.0.0.1:%d" % dead2)
    n = rl.Nginx(d, text, port).start()
    try:
        r = http_request("127.0.0.1", port, "GET", "/v1/recommend?user_id=x")
        assert_recd_error(r, 503, "unavailable")
        assert r.header("Retry-After") == "1"
        assert len(rl.upstream_list(r.header("X-Recd-Upstream"))) == 2, r
    finally:
        n.stop()
    hport, sport = free_port(), free_port()
    text = rl.render_haproxy(rl.read(rl.HAPROXY_CONF), hport, sport, "127.0.0.1:%d" % dead1,
                             "127.0.0.1:%d" % dead2)
    h = rl.HAProxy(str(tmp_path / "haproxy-dead"), text, hport, sport).start()
    try:
        r = http_request("127.0.0.1", hport, "GET", "/v1/recommend?user_id=x")
        assert_recd_error(r, 503, "unavailable")
        assert r.header("Retry-After") == "1"
    finally:
        h.stop()


# --------------------------------------------------------------------------
# a graceful stop without retries: shutdown_delay_ms
# --------------------------------------------------------------------------

def test_haproxy_takes_replica_out_during_shutdown_delay(up, haproxy):
    """With shutdown_delay_ms longer than HAProxy's fall 2 x inter 1 s, a
    SIGTERMed replica answers /readyz 503 while it still serves: HAProxy's
    check marks it DOWN before it stops accepting, so no request fails
    and none needs a retry to survive the stop."""
    haproxy_wait_status(haproxy, "UP")
    delay_ms = int(4000 * scaled(1))
    r = admin(up.r1, "PUT", "/admin/config", {"shutdown_delay_ms": delay_ms})
    assert r.status == 200, r
    load = rl.Load(haproxy.port, "delay").start()
    try:
        t_begin = time.monotonic()
        wait_until(lambda: len(load.answered_since(t_begin, up.r1.addr)) >= 10 and
                   len(load.answered_since(t_begin, up.r2.addr)) >= 10,
                   scaled(10), what="both replicas answering through haproxy")
        t_sig = time.monotonic()
        up.r1.signal(signal.SIGTERM)
        t_down = haproxy_wait_status(haproxy, "DOWN", servers=("r1",),
                                     timeout=delay_ms / 1000.0)
        alive_at_down = up.r1.alive()
        rc = up.r1.wait_exit(delay_ms / 1000.0 + STOP_TIMEOUT)
        t_exit = time.monotonic()
        time.sleep(scaled(0.5))
    finally:
        load.stop()
    assert alive_at_down, "r1 had exited before HAProxy marked it DOWN"
    assert rc == 0, rc
    assert t_exit - t_sig >= delay_ms / 1000.0 - 0.05, (t_exit - t_sig)
    res = load.snapshot()
    fails = [x for x in res if not x.ok]
    assert not fails, "%d of %d requests failed: %r" % (len(fails), len(res), fails[:5])
    # after the check took it out, new requests went to the survivor only
    late = [x for x in res if x.t0 > t_down + 0.05 and x.answered_by != up.r2.addr]
    assert not late, late[:5]
    print("shutdown delay: DOWN %.0f ms after SIGTERM, exit %.0f ms after; %d requests" % (
        (t_down - t_sig) * 1000, (t_exit - t_sig) * 1000, len(res)))
