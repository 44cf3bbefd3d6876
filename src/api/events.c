/*
 * POST /v1/events: validate a batch whole, append it to the event log
 * without blocking the worker's loop, and answer 202 only once the log
 * acknowledges it under the fsync policy (include/recd/events.h). Then the
 * batch updates the user-history store and the A/B counters.
 *
 * Waiting. The handler queues the batch (recd_evlog_append_nowait), parks
 * the request on its worker's pending list (FIFO: a worker's tickets only
 * grow) and returns RECD_HTTP_ASYNC. The log's writer thread calls
 * recd_api_events_on_ack whenever the acknowledged offset advances or the
 * log fails; that wakes each worker with pending requests
 * (recd_http_server_wake), and the worker answers, on its own loop, every
 * parked request whose ticket is now covered — or 503 to all of them once
 * the log has failed. No lock is held across any of this except the log's
 * own; a worker's list is touched only by that worker.
 */
#include "recd/api.h"

#include "api_int.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "recd/abrt.h"
#include "recd/conf.h"
#include "recd/dataset.h"
#include "recd/evrec.h"
#include "recd/stats.h"

typedef struct pend {
    struct pend *next;
    recd_http_req_t *r;
    json_t *body; /* owns the strings evs[] borrow */
    recd_evrec_t *evs;
    size_t n;
    uint64_t ticket;
    uint64_t t0_us;
} pend_t;

/* Per request thread: the parked requests (owner thread only) and counters
 * (single writer, see stats.h). */
typedef struct ev_thread {
    pend_t *head, *tail;
    _Atomic uint64_t npend; /* read by the writer thread to decide whom to wake */
    _Atomic uint64_t events, batches, invalid, rejected_full, rejected_failed, rejected_too_big;
    recd_hist_t ack_latency;
} ev_thread_t;

static struct {
    recd_http_server_t *_Atomic srv;
    recd_evlog_t *log;
    recd_history_t *hist;
    unsigned nthreads;
    ev_thread_t *th;
    recd_api_replay_stats_t replay;
    const char *dir;
} E;

recd_history_t *recd_api_history(void)
{
    return E.hist;
}

/* ---- waking and answering ----------------------------------------------------------- */

void recd_api_events_on_ack(void *ctx)
{
    (void)ctx;
    recd_http_server_t *srv = atomic_load(&E.srv);
    if (!srv)
        return;
    for (unsigned i = 0; i < E.nthreads; i++)
        if (atomic_load_explicit(&E.th[i].npend, memory_order_relaxed))
            recd_http_server_wake(srv, i);
}

static void apply_batch(unsigned t, const pend_t *p)
{
    const recd_conf_t *c = recd_conf_current();
    for (size_t i = 0; i < p->n; i++) {
        const recd_evrec_t *ev = &p->evs[i];
        if (E.hist && recd_history_is_positive(ev->type, ev->value, (double)c->history_watch_min_s,
                                               (double)c->history_rating_min)) {
            recd_err_t err;
            if (recd_history_add(E.hist, ev->user_id, ev->user_len, ev->item_id, ev->item_len,
                                 ev->ts, &err) < 0)
                recd_log_write(RECD_LOG_WARN, recd_http_req_id(p->r), "history: %s", err.msg);
        }
        recd_abrt_count_event(t, ev);
    }
}

static void finish(unsigned t, pend_t *p, int ok, const char *why)
{
    ev_thread_t *th = &E.th[t];
    if (ok) {
        apply_batch(t, p);
        recd_stats_add(&th->events, p->n);
        recd_stats_add(&th->batches, 1);
        recd_hist_record(&th->ack_latency, recd_time_mono_us() - p->t0_us);
        recd_http_respond_json(p->r, 202, json_pack("{s:I}", "accepted", (json_int_t)p->n));
    } else {
        recd_stats_add(&th->rejected_failed, 1);
        recd_http_respond_error(p->r, 503, "events_unavailable", NULL,
                                "the event log stopped accepting events before this batch was "
                                "durable: %s",
                                why);
    }
    json_decref(p->body);
    atomic_fetch_sub_explicit(&th->npend, 1, memory_order_relaxed);
}

static void on_wake(unsigned t, void *arg)
{
    (void)arg;
    if (t >= E.nthreads || !E.log)
        return;
    ev_thread_t *th = &E.th[t];
    int failed = 0;
    uint64_t acked = recd_evlog_acked(E.log, &failed);
    while (th->head && th->head->ticket <= acked) {
        pend_t *p = th->head;
        th->head = p->next;
        finish(t, p, 1, NULL);
    }
    if (failed && th->head) {
        recd_evlog_stats_t st;
        recd_evlog_stats(E.log, &st);
        while (th->head) {
            pend_t *p = th->head;
            th->head = p->next;
            finish(t, p, 0, st.failed_msg);
        }
    }
    if (!th->head)
        th->tail = NULL;
}

/* ---- the handler ---------------------------------------------------------------------- */

int recd_api_h_events(recd_http_req_t *r, void *arg)
{
    (void)arg;
    if (!E.log) {
        recd_http_respond_error(r, 404, "events_disabled", NULL,
                                "event ingest is disabled on this server (events.enabled)");
        return 0;
    }
    unsigned t = recd_http_req_worker(r);
    if (t >= E.nthreads) {
        recd_http_respond_error(r, 500, "internal", NULL, "events: no state for thread %u", t);
        return 0;
    }
    ev_thread_t *th = &E.th[t];
    uint64_t t0 = recd_time_mono_us();
    int failed = 0;
    recd_evlog_acked(E.log, &failed);
    if (failed) {
        recd_stats_add(&th->rejected_failed, 1);
        recd_http_respond_error(r, 503, "events_unavailable", NULL,
                                "the event log has failed and accepts no events (see /stats "
                                "events.log.failed_msg)");
        return 0;
    }
    json_t *j = recd_http_req_json(r);
    if (!j)
        return 0; /* answered: 400 or 415 */
    const recd_conf_t *cf = recd_conf_current();
    recd_arena_t *a = recd_http_req_arena(r);
    char field[160], efield[200];
    recd_err_t err;
    json_t *list = NULL;
    if (!json_is_object(j)) {
        recd_http_respond_error(r, 400, "bad_request", "body",
                                "expected a JSON object {\"events\": [...]}");
        goto invalid;
    }
    const char *key;
    json_t *v;
    json_object_foreach (j, key, v) {
        if (strcmp(key, "events") != 0) {
            recd_http_respond_error(r, 400, "bad_request", key, "unknown field \"%s\"", key);
            goto invalid;
        }
    }
    list = json_object_get(j, "events");
    if (!list || !json_is_array(list)) {
        recd_http_respond_error(r, 400, "bad_request", "events",
                                list ? "events must be an array of event objects"
                                     : "events is required");
        goto invalid;
    }
    size_t n = json_array_size(list);
    if (n == 0 || n > (size_t)cf->events_max_batch) {
        recd_http_respond_error(r, 400, "bad_request", "events",
                                "events must hold 1..%lld events, got %zu",
                                (long long)cf->events_max_batch, n);
        goto invalid;
    }
    recd_evrec_t *evs = recd_arena_alloc(a, n * sizeof *evs);
    struct iovec *iov = recd_arena_alloc(a, n * sizeof *iov);
    pend_t *p = recd_arena_alloc(a, sizeof *p);
    if (!evs || !iov || !p) {
        recd_http_respond_error(r, 500, "internal", NULL, "out of memory");
        json_decref(j);
        return 0;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    for (size_t i = 0; i < n; i++) {
        if (recd_evrec_from_json(json_array_get(list, i), (int64_t)now.tv_sec, &evs[i], field,
                                 sizeof field, &err) < 0) {
            snprintf(efield, sizeof efield, "events[%zu]%s%s", i, *field ? "." : "", field);
            recd_http_respond_error(r, 400, "bad_request", efield, "events[%zu]: %s", i, err.msg);
            goto invalid;
        }
    }
    for (size_t i = 0; i < n; i++) {
        recd_evrec_t *ev = &evs[i];
        recd_abrt_attribute(ev);
        ev->recv_ms = now_ms;
        size_t cap = recd_evrec_encoded_max(ev);
        char *buf = recd_arena_alloc(a, cap);
        if (!buf) {
            recd_http_respond_error(r, 500, "internal", NULL, "out of memory");
            json_decref(j);
            return 0;
        }
        iov[i].iov_base = buf;
        iov[i].iov_len = recd_evrec_encode(ev, buf, cap);
    }
    /* counted before the append so a concurrent acknowledgement wakes us */
    atomic_fetch_add_explicit(&th->npend, 1, memory_order_relaxed);
    uint64_t ticket = 0;
    int rc = recd_evlog_append_nowait(E.log, iov, n, &ticket, &err);
    if (rc != 0) {
        atomic_fetch_sub_explicit(&th->npend, 1, memory_order_relaxed);
        if (rc == RECD_EAGAIN) {
            recd_stats_add(&th->rejected_full, 1);
            recd_http_respond_error(r, 503, "overloaded", "events",
                                    "the event log's write queue is full; retry later");
        } else if (rc == RECD_EINVAL) {
            recd_stats_add(&th->rejected_too_big, 1);
            recd_http_respond_error(r, 413, "payload_too_large", "events", "%s", err.msg);
        } else {
            recd_stats_add(&th->rejected_failed, 1);
            recd_http_respond_error(r, 503, "events_unavailable", NULL, "%s", err.msg);
        }
        json_decref(j);
        return 0;
    }
    *p = (pend_t){NULL, r, j, evs, n, ticket, t0};
    if (th->tail)
        th->tail->next = p;
    else
        th->head = p;
    th->tail = p;
    return RECD_HTTP_ASYNC;
invalid:
    recd_stats_add(&th->invalid, 1);
    json_decref(j);
    return 0;
}

/* ---- replay at start ------------------------------------------------------------------- */

typedef struct replay_ctx {
    recd_api_replay_stats_t *st;
    int64_t min_ts;
    double watch_min, rating_min;
} replay_ctx_t;

static int replay_cb(void *ctx, uint64_t off, const void *payload, uint32_t len)
{
    replay_ctx_t *c = ctx;
    recd_evrec_t ev;
    json_t *hold = NULL;
    recd_err_t err;
    c->st->records++;
    /* recd's own payloads take the fast path (about 5x faster than jansson) */
    char buf[2048];
    if ((len + 16 > sizeof buf ||
         recd_evrec_decode_fast(payload, len, &ev, buf, sizeof buf) != 0) &&
        recd_evrec_decode(payload, len, &ev, &hold, &err) < 0) {
        if (c->st->undecodable++ < 5)
            recd_log_warn("event log replay: record at offset %llu: %s", (unsigned long long)off,
                          err.msg);
        return 0;
    }
    if (ev.ts >= c->min_ts) {
        c->st->replayed++;
        if (E.hist && recd_history_is_positive(ev.type, ev.value, c->watch_min, c->rating_min) &&
            recd_history_add(E.hist, ev.user_id, ev.user_len, ev.item_id, ev.item_len, ev.ts,
                             &err) == 0)
            c->st->positives++;
        recd_abrt_count_event(RECD_ABRT_REPLAY, &ev);
    } else {
        c->st->too_old++;
    }
    if (hold)
        json_decref(hold);
    return 0;
}

int recd_api_events_replay(const char *dir, uint64_t from, uint64_t to, recd_err_t *err)
{
    const recd_conf_t *cf = recd_conf_current();
    recd_api_replay_stats_t *st = &E.replay;
    memset(st, 0, sizeof *st);
    st->from_offset = from;
    st->to_offset = to;
    uint64_t t0 = recd_time_mono_us();
    replay_ctx_t c = {st, INT64_MIN, (double)cf->history_watch_min_s,
                      (double)cf->history_rating_min};
    if (cf->history_replay_window_s > 0)
        c.min_ts = (int64_t)time(NULL) - cf->history_replay_window_s;
    recd_evlog_iter_stats_t is;
    int rc = recd_evlog_iterate(dir, from, 0, cf->events_skip_corrupt, replay_cb, &c, &is, err);
    st->duration_ms = (double)(recd_time_mono_us() - t0) / 1000.0;
    st->corrupt_regions = is.corrupt_regions;
    return rc;
}

/* ---- stats ------------------------------------------------------------------------------ */

static json_t *num_or_null(double x)
{
    return x == x ? json_real(x) : json_null();
}

/* The per-thread counters of the event workers, summed. */
typedef struct ev_totals {
    uint64_t events, batches, invalid, full, failed, too_big, pending;
    recd_hist_snap_t ack; /* ack latency, all threads merged */
} ev_totals_t;

static void sum_threads(ev_totals_t *tt)
{
    memset(tt, 0, sizeof *tt);
    for (unsigned i = 0; i < E.nthreads; i++) {
        ev_thread_t *t = &E.th[i];
        tt->events += recd_stats_get(&t->events);
        tt->batches += recd_stats_get(&t->batches);
        tt->invalid += recd_stats_get(&t->invalid);
        tt->full += recd_stats_get(&t->rejected_full);
        tt->failed += recd_stats_get(&t->rejected_failed);
        tt->too_big += recd_stats_get(&t->rejected_too_big);
        tt->pending += atomic_load_explicit(&t->npend, memory_order_relaxed);
        recd_hist_merge(&tt->ack, &t->ack_latency);
    }
}

static json_t *events_json(void *arg)
{
    (void)arg;
    const recd_conf_t *cf = recd_conf_current();
    json_t *o = json_pack("{s:b}", "enabled", E.log != NULL);
    if (!E.log)
        return o;
    ev_totals_t tt;
    sum_threads(&tt);
    recd_evlog_stats_t s;
    recd_evlog_stats(E.log, &s);
    json_object_set_new(o, "fsync", json_string(cf->events_fsync));
    json_object_set_new(o, "dir", json_string(E.dir ? E.dir : ""));
    json_object_set_new(
        o, "accepted",
        json_pack("{s:I,s:I}", "events", (json_int_t)tt.events, "batches", (json_int_t)tt.batches));
    json_object_set_new(o, "rejected",
                        json_pack("{s:I,s:I,s:I,s:I}", "invalid", (json_int_t)tt.invalid,
                                  "queue_full", (json_int_t)tt.full, "log_failed",
                                  (json_int_t)tt.failed, "too_large", (json_int_t)tt.too_big));
    json_object_set_new(o, "waiting_requests", json_integer((json_int_t)tt.pending));
    json_object_set_new(o, "ack_latency_us",
                        json_pack("{s:I,s:I,s:I,s:I,s:I}", "count", (json_int_t)tt.ack.count, "p50",
                                  (json_int_t)recd_hist_quantile(&tt.ack, 0.5), "p99",
                                  (json_int_t)recd_hist_quantile(&tt.ack, 0.99), "p999",
                                  (json_int_t)recd_hist_quantile(&tt.ack, 0.999), "max",
                                  (json_int_t)tt.ack.max_us));
    json_t *lg = json_pack(
        "{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b,s:i,s:s}", "records",
        (json_int_t)s.records, "bytes", (json_int_t)s.bytes, "segments", (json_int_t)s.segments,
        "first_offset", (json_int_t)s.first_offset, "next_offset", (json_int_t)s.next_offset,
        "written_offset", (json_int_t)s.written_offset, "durable_offset",
        (json_int_t)s.durable_offset, "fsyncs", (json_int_t)s.fsyncs, "queue_batches",
        (json_int_t)s.queue_batches, "queue_bytes", (json_int_t)s.queue_bytes, "rejected_full",
        (json_int_t)s.rejected_full, "segments_deleted", (json_int_t)s.segments_deleted,
        "recovered_truncated_bytes", (json_int_t)s.recovered_truncated_bytes,
        "recovered_corrupt_regions", (json_int_t)s.recovered_corrupt_regions,
        "recovered_corrupt_bytes", (json_int_t)s.recovered_corrupt_bytes, "failed", s.failed,
        "failed_errno", s.failed_errno, "failed_msg", s.failed_msg);
    json_object_set_new(lg, "last_fsync_time",
                        s.last_fsync_wall > 0 ? json_real(s.last_fsync_wall) : json_null());
    json_object_set_new(o, "log", lg);
    const recd_api_replay_stats_t *r = &E.replay;
    json_object_set_new(o, "replay",
                        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f}", "from_offset",
                                  (json_int_t)r->from_offset, "to_offset", (json_int_t)r->to_offset,
                                  "records", (json_int_t)r->records, "replayed",
                                  (json_int_t)r->replayed, "positives", (json_int_t)r->positives,
                                  "too_old", (json_int_t)r->too_old, "undecodable",
                                  (json_int_t)r->undecodable, "corrupt_regions",
                                  (json_int_t)r->corrupt_regions, "duration_ms", r->duration_ms));
    return o;
}

static void events_prom(void *arg, char **buf, size_t *len, size_t *cap)
{
    (void)arg;
    if (!E.log)
        return;
    ev_totals_t tt;
    sum_threads(&tt);
    recd_evlog_stats_t s;
    recd_evlog_stats(E.log, &s);
    recd_stats_bufprintf(
        buf, len, cap,
        "# HELP recd_events_accepted_total Events acknowledged (durable per events.fsync).\n"
        "# TYPE recd_events_accepted_total counter\nrecd_events_accepted_total %llu\n"
        "# HELP recd_event_batches_accepted_total POST /v1/events batches acknowledged.\n"
        "# TYPE recd_event_batches_accepted_total counter\n"
        "recd_event_batches_accepted_total %llu\n"
        "# HELP recd_event_batches_rejected_total POST /v1/events batches refused, by reason.\n"
        "# TYPE recd_event_batches_rejected_total counter\n"
        "recd_event_batches_rejected_total{reason=\"invalid\"} %llu\n"
        "recd_event_batches_rejected_total{reason=\"queue_full\"} %llu\n"
        "recd_event_batches_rejected_total{reason=\"log_failed\"} %llu\n"
        "recd_event_batches_rejected_total{reason=\"too_large\"} %llu\n"
        "# HELP recd_event_log_bytes Bytes in the event log's segment files.\n"
        "# TYPE recd_event_log_bytes gauge\nrecd_event_log_bytes %llu\n"
        "# HELP recd_event_log_segments Segment files of the event log.\n"
        "# TYPE recd_event_log_segments gauge\nrecd_event_log_segments %llu\n"
        "# HELP recd_event_log_fsyncs_total fsync calls on event log segments.\n"
        "# TYPE recd_event_log_fsyncs_total counter\nrecd_event_log_fsyncs_total %llu\n"
        "# HELP recd_event_log_queue_bytes Bytes waiting for the event log writer.\n"
        "# TYPE recd_event_log_queue_bytes gauge\nrecd_event_log_queue_bytes %llu\n"
        "# HELP recd_event_log_failed 1 once a write or fsync of the event log failed.\n"
        "# TYPE recd_event_log_failed gauge\nrecd_event_log_failed %d\n"
        "# HELP recd_event_log_recovered_truncated_bytes Torn tail cut at start-up.\n"
        "# TYPE recd_event_log_recovered_truncated_bytes gauge\n"
        "recd_event_log_recovered_truncated_bytes %llu\n",
        (unsigned long long)tt.events, (unsigned long long)tt.batches,
        (unsigned long long)tt.invalid, (unsigned long long)tt.full, (unsigned long long)tt.failed,
        (unsigned long long)tt.too_big, (unsigned long long)s.bytes, (unsigned long long)s.segments,
        (unsigned long long)s.fsyncs, (unsigned long long)s.queue_bytes, s.failed,
        (unsigned long long)s.recovered_truncated_bytes);
    recd_stats_bufprintf(buf, len, cap,
                         "# HELP recd_event_ack_duration_seconds Time from a POST /v1/events "
                         "arriving to its 202.\n"
                         "# TYPE recd_event_ack_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (unsigned i = 0; i < RECD_PROM_NBUCKETS; i++) {
        cum += tt.ack.prom[i];
        recd_stats_bufprintf(buf, len, cap,
                             "recd_event_ack_duration_seconds_bucket{le=\"%g\"} %llu\n",
                             recd_prom_bounds_s[i], (unsigned long long)cum);
    }
    recd_stats_bufprintf(buf, len, cap,
                         "recd_event_ack_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
                         "recd_event_ack_duration_seconds_sum %.6f\n"
                         "recd_event_ack_duration_seconds_count %llu\n",
                         (unsigned long long)tt.ack.count, (double)tt.ack.sum_us / 1e6,
                         (unsigned long long)tt.ack.count);
}

static json_t *history_json(void *arg)
{
    (void)arg;
    if (!E.hist)
        return json_pack("{s:b}", "enabled", 0);
    recd_history_stats_t s;
    recd_history_stats(E.hist, &s);
    return json_pack("{s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:I,s:I,s:I}", "enabled", 1, "users",
                     (json_int_t)s.users, "items", (json_int_t)s.items, "bytes",
                     (json_int_t)s.bytes, "adds", (json_int_t)s.adds, "lookups",
                     (json_int_t)s.lookups, "hits", (json_int_t)s.hits, "hit_rate",
                     num_or_null(s.lookups ? (double)s.hits / (double)s.lookups : 0.0 / 0.0),
                     "evictions", (json_int_t)s.evictions, "max_users", (json_int_t)s.max_users,
                     "max_items", (json_int_t)s.max_items);
}

static void history_prom(void *arg, char **buf, size_t *len, size_t *cap)
{
    (void)arg;
    if (!E.hist)
        return;
    recd_history_stats_t s;
    recd_history_stats(E.hist, &s);
    recd_stats_bufprintf(
        buf, len, cap,
        "# HELP recd_history_users Users held in the history store.\n"
        "# TYPE recd_history_users gauge\nrecd_history_users %llu\n"
        "# HELP recd_history_items Items held in the history store, over all users.\n"
        "# TYPE recd_history_items gauge\nrecd_history_items %llu\n"
        "# HELP recd_history_bytes Memory of the history store.\n"
        "# TYPE recd_history_bytes gauge\nrecd_history_bytes %llu\n"
        "# HELP recd_history_lookups_total History lookups by result.\n"
        "# TYPE recd_history_lookups_total counter\n"
        "recd_history_lookups_total{result=\"hit\"} %llu\n"
        "recd_history_lookups_total{result=\"miss\"} %llu\n"
        "# HELP recd_history_evictions_total Users evicted to respect history.max_users.\n"
        "# TYPE recd_history_evictions_total counter\nrecd_history_evictions_total %llu\n",
        (unsigned long long)s.users, (unsigned long long)s.items, (unsigned long long)s.bytes,
        (unsigned long long)s.hits, (unsigned long long)(s.lookups - s.hits),
        (unsigned long long)s.evictions);
}

/* ---- set-up ------------------------------------------------------------------------------ */

int recd_api_events_init(unsigned nthreads, recd_history_t *hist, recd_err_t *err)
{
    E.hist = hist;
    E.nthreads = nthreads;
    E.th = calloc(nthreads ? nthreads : 1, sizeof *E.th);
    if (!E.th)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    recd_stats_section_t ev = {"events", events_json, events_prom, NULL};
    recd_stats_section_t hi = {"history", history_json, history_prom, NULL};
    recd_stats_add_section(&ev);
    recd_stats_add_section(&hi);
    return 0;
}

void recd_api_events_set_log(recd_evlog_t *log, const char *dir)
{
    E.log = log;
    E.dir = dir;
}

void recd_api_events_attach_server(recd_http_server_t *srv)
{
    recd_http_server_set_wake(srv, on_wake, NULL);
    atomic_store(&E.srv, srv);
}

void recd_api_events_detach_server(void)
{
    atomic_store(&E.srv, NULL);
    /* on_ack runs under the log's lock: taking it once waits out a call
     * that may still hold the old server pointer */
    if (E.log)
        recd_evlog_acked(E.log, NULL);
}

int recd_api_events_failed(char *why, size_t cap)
{
    if (!E.log)
        return 0;
    int failed = 0;
    recd_evlog_acked(E.log, &failed);
    if (failed && why) {
        recd_evlog_stats_t s;
        recd_evlog_stats(E.log, &s);
        snprintf(why, cap, "the event log failed and accepts no events: %s", s.failed_msg);
    }
    return failed;
}

void recd_api_events_shutdown(void)
{
    /* the daemon detached the server before closing the log, which is
     * freed by now: only forget the server, do not touch E.log */
    atomic_store(&E.srv, NULL);
    /* requests still parked (shutdown deadline passed): release their bodies */
    for (unsigned i = 0; E.th && i < E.nthreads; i++)
        for (pend_t *p = E.th[i].head; p; p = p->next)
            json_decref(p->body);
    free(E.th);
    memset(&E, 0, sizeof E);
}
