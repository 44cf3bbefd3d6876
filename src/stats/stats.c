/* Per-thread request stats, merged on read, rendered as JSON and as
 * Prometheus text (exposition format 0.0.4). */
#include "recd/stats.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recd/core.h"

const char *const recd_stats_stage_names[RECD_STATS_NSTAGES] = {"tower", "ann", "rank"};

static recd_stats_thread_t *threads; /* array of nthreads, cache-aligned */
static unsigned nthreads;
static unsigned nworkers; /* serving threads on the public listener */
static const char *ep_names[RECD_STATS_MAX_ENDPOINTS] = {"unmatched"};
static unsigned nendpoints = 1;
static double start_wall;
static uint64_t start_mono_us;

#define MAX_SECTIONS 16
static recd_stats_section_t sections[MAX_SECTIONS];
static unsigned nsections;

int recd_stats_init(unsigned n)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, (size_t)n * sizeof(recd_stats_thread_t)) != 0)
        return RECD_ENOMEM;
    memset(p, 0, (size_t)n * sizeof(recd_stats_thread_t));
    threads = p;
    nthreads = n;
    start_wall = recd_time_wall();
    start_mono_us = recd_time_mono_us();
    return 0;
}

void recd_stats_shutdown(void)
{
    free(threads);
    threads = NULL;
    nthreads = 0;
    nendpoints = 1;
    nsections = 0;
}

unsigned recd_stats_nthreads(void)
{
    return nthreads;
}
void recd_stats_set_workers(unsigned n)
{
    nworkers = n;
}
recd_stats_thread_t *recd_stats_thread(unsigned i)
{
    return i < nthreads ? &threads[i] : NULL;
}

int recd_stats_endpoint_register(const char *name)
{
    for (unsigned i = 1; i < nendpoints; i++)
        if (strcmp(ep_names[i], name) == 0)
            return (int)i;
    if (nendpoints >= RECD_STATS_MAX_ENDPOINTS)
        return -1;
    ep_names[nendpoints] = name;
    return (int)nendpoints++;
}

unsigned recd_stats_endpoint_count(void)
{
    return nendpoints;
}
const char *recd_stats_endpoint_name(unsigned i)
{
    return i < nendpoints ? ep_names[i] : NULL;
}

void recd_stats_record(recd_stats_thread_t *t, unsigned ep, int status, uint64_t latency_us)
{
    if (ep >= RECD_STATS_MAX_ENDPOINTS)
        ep = 0;
    int cls = status / 100;
    if (cls < 1 || cls > 5)
        cls = 5;
    recd_stats_add(&t->ep[ep].by_class[cls], 1);
    recd_hist_record(&t->ep[ep].latency, latency_us);
}

double recd_stats_start_time(void)
{
    return start_wall;
}
double recd_stats_uptime_s(void)
{
    return (double)(recd_time_mono_us() - start_mono_us) / 1e6;
}

int recd_stats_add_section(const recd_stats_section_t *s)
{
    if (nsections >= MAX_SECTIONS)
        return RECD_ERANGE;
    sections[nsections++] = *s;
    return 0;
}

/* ---- merging --------------------------------------------------------------- */

typedef struct totals {
    uint64_t conns_open, conns_accepted, conns_rejected, inflight, rejected_busy;
    uint64_t bytes_in, bytes_out, tls_fail;
    uint64_t unknown_items, fallback_popular;
} totals_t;

static void sum_threads(totals_t *t)
{
    memset(t, 0, sizeof *t);
    for (unsigned i = 0; i < nthreads; i++) {
        recd_stats_thread_t *th = &threads[i];
        t->conns_open += recd_stats_get(&th->conns_open);
        t->conns_accepted += recd_stats_get(&th->conns_accepted);
        t->conns_rejected += recd_stats_get(&th->conns_rejected);
        t->inflight += recd_stats_get(&th->inflight);
        t->rejected_busy += recd_stats_get(&th->rejected_busy);
        t->bytes_in += recd_stats_get(&th->bytes_in);
        t->bytes_out += recd_stats_get(&th->bytes_out);
        t->tls_fail += recd_stats_get(&th->tls_handshake_failures);
        t->unknown_items += recd_stats_get(&th->unknown_items);
        t->fallback_popular += recd_stats_get(&th->fallback_popular);
    }
}

static void sum_endpoint(unsigned ep, uint64_t by_class[6], recd_hist_snap_t *snap)
{
    memset(snap, 0, sizeof *snap);
    memset(by_class, 0, 6 * sizeof by_class[0]);
    for (unsigned i = 0; i < nthreads; i++) {
        for (int c = 1; c <= 5; c++)
            by_class[c] += recd_stats_get(&threads[i].ep[ep].by_class[c]);
        recd_hist_merge(snap, &threads[i].ep[ep].latency);
    }
}

/* Merged histogram of stage g over all threads. */
static void sum_stage(unsigned g, recd_hist_snap_t *snap)
{
    memset(snap, 0, sizeof *snap);
    for (unsigned i = 0; i < nthreads; i++)
        recd_hist_merge(snap, &threads[i].stages[g]);
}

/* {"count","mean","p50","p90","p99","p999","max"} in microseconds. */
static json_t *latency_json(const recd_hist_snap_t *h)
{
    return json_pack("{s:I,s:f,s:I,s:I,s:I,s:I,s:I}", "count", (json_int_t)h->count, "mean",
                     h->count ? (double)h->sum_us / (double)h->count : 0.0, "p50",
                     (json_int_t)recd_hist_quantile(h, 0.5), "p90",
                     (json_int_t)recd_hist_quantile(h, 0.9), "p99",
                     (json_int_t)recd_hist_quantile(h, 0.99), "p999",
                     (json_int_t)recd_hist_quantile(h, 0.999), "max", (json_int_t)h->max_us);
}

/* ---- JSON --------------------------------------------------------------------- */

char *recd_stats_render_json(void)
{
    totals_t t;
    sum_threads(&t);
    json_t *o = json_object();
    json_object_set_new(o, "version", json_string(RECD_VERSION));
    json_object_set_new(o, "git", json_string(recd_build_git()));
    json_object_set_new(o, "compiler", json_string(recd_build_compiler()));
    json_object_set_new(o, "pid", json_integer(getpid()));
    json_object_set_new(o, "start_time", json_real(start_wall));
    json_object_set_new(o, "uptime_s", json_real(recd_stats_uptime_s()));
    json_object_set_new(o, "workers", json_integer(nworkers));
    json_object_set_new(o, "threads", json_integer(nthreads));
    json_object_set_new(o, "rss_bytes", json_integer((json_int_t)recd_proc_rss_bytes()));
    json_object_set_new(o, "connections",
                        json_pack("{s:I,s:I,s:I}", "open", (json_int_t)t.conns_open, "accepted",
                                  (json_int_t)t.conns_accepted, "rejected",
                                  (json_int_t)t.conns_rejected));
    json_object_set_new(o, "inflight", json_integer((json_int_t)t.inflight));
    json_object_set_new(o, "rejected_busy", json_integer((json_int_t)t.rejected_busy));
    json_object_set_new(o, "tls_handshake_failures", json_integer((json_int_t)t.tls_fail));
    json_object_set_new(
        o, "bytes",
        json_pack("{s:I,s:I}", "in", (json_int_t)t.bytes_in, "out", (json_int_t)t.bytes_out));
    json_object_set_new(o, "recommend",
                        json_pack("{s:I,s:I}", "unknown_items", (json_int_t)t.unknown_items,
                                  "fallback_popular", (json_int_t)t.fallback_popular));
    json_t *stages = json_object();
    recd_hist_snap_t *ss = malloc(sizeof *ss);
    for (unsigned g = 0; ss && g < RECD_STATS_NSTAGES; g++) {
        sum_stage(g, ss);
        json_object_set_new(stages, recd_stats_stage_names[g], latency_json(ss));
    }
    free(ss);
    json_object_set_new(o, "stages_us", stages);
    json_t *eps = json_object();
    recd_hist_snap_t *snap = malloc(sizeof *snap);
    for (unsigned e = 0; snap && e < nendpoints; e++) {
        uint64_t bc[6];
        sum_endpoint(e, bc, snap);
        uint64_t total = bc[1] + bc[2] + bc[3] + bc[4] + bc[5];
        json_t *req =
            json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "total", (json_int_t)total, "1xx",
                      (json_int_t)bc[1], "2xx", (json_int_t)bc[2], "3xx", (json_int_t)bc[3], "4xx",
                      (json_int_t)bc[4], "5xx", (json_int_t)bc[5]);
        json_object_set_new(eps, ep_names[e], json_pack("{s:o,s:o}", "requests", req,
                                                        "latency_us", latency_json(snap)));
    }
    free(snap);
    json_object_set_new(o, "endpoints", eps);
    for (unsigned i = 0; i < nsections; i++) {
        if (!sections[i].json)
            continue;
        json_t *v = sections[i].json(sections[i].arg);
        if (v)
            json_object_set_new(o, sections[i].name, v);
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

/* ---- Prometheus ------------------------------------------------------------------ */

void recd_stats_bufprintf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    for (;;) {
        size_t room = *cap - *len;
        va_list ap;
        va_start(ap, fmt);
        int n = *buf ? vsnprintf(*buf + *len, room, fmt, ap) : -2;
        va_end(ap);
        if (n >= 0 && (size_t)n < room) {
            *len += (size_t)n;
            return;
        }
        if (n == -1)
            return;
        size_t ncap = *cap ? *cap * 2 : 16384;
        while (n > 0 && ncap - *len <= (size_t)n)
            ncap *= 2;
        char *nb = realloc(*buf, ncap);
        if (!nb)
            return;
        *buf = nb;
        *cap = ncap;
    }
}

#define P(...) recd_stats_bufprintf(&buf, &len, &cap, __VA_ARGS__)

static void family(char **b, size_t *l, size_t *c, const char *name, const char *type,
                   const char *help)
{
    recd_stats_bufprintf(b, l, c, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}
#define FAM(name, type, help) family(&buf, &len, &cap, name, type, help)

/* One labelled series of a histogram family: cumulative _bucket lines,
 * +Inf, _sum (seconds) and _count. */
static void prom_hist(char **b, size_t *l, size_t *c, const char *name, const char *label,
                      const char *value, const recd_hist_snap_t *h)
{
    uint64_t cum = 0;
    for (unsigned i = 0; i < RECD_PROM_NBUCKETS; i++) {
        cum += h->prom[i];
        recd_stats_bufprintf(b, l, c, "%s_bucket{%s=\"%s\",le=\"%g\"} %llu\n", name, label,
                             value, recd_prom_bounds_s[i], (unsigned long long)cum);
    }
    /* count is read after the buckets: keep +Inf >= every bucket */
    uint64_t count = h->count < cum ? cum : h->count;
    recd_stats_bufprintf(b, l, c, "%s_bucket{%s=\"%s\",le=\"+Inf\"} %llu\n", name, label,
                         value, (unsigned long long)count);
    recd_stats_bufprintf(b, l, c, "%s_sum{%s=\"%s\"} %.6f\n", name, label, value,
                         (double)h->sum_us / 1e6);
    recd_stats_bufprintf(b, l, c, "%s_count{%s=\"%s\"} %llu\n", name, label, value,
                         (unsigned long long)count);
}

char *recd_stats_render_prometheus(void)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    totals_t t;
    sum_threads(&t);

    FAM("recd_build_info", "gauge", "Version and commit of the running recd (always 1).");
    P("recd_build_info{version=\"%s\",git=\"%s\"} 1\n", RECD_VERSION, recd_build_git());
    FAM("recd_uptime_seconds", "gauge", "Seconds since recd started.");
    P("recd_uptime_seconds %.3f\n", recd_stats_uptime_s());
    FAM("process_start_time_seconds", "gauge", "Start time of the process since the epoch.");
    P("process_start_time_seconds %.3f\n", start_wall);
    FAM("process_resident_memory_bytes", "gauge", "Resident set size in bytes.");
    P("process_resident_memory_bytes %llu\n", (unsigned long long)recd_proc_rss_bytes());
    FAM("recd_http_connections_open", "gauge", "Open client connections.");
    P("recd_http_connections_open %llu\n", (unsigned long long)t.conns_open);
    FAM("recd_http_connections_accepted_total", "counter", "Client connections accepted.");
    P("recd_http_connections_accepted_total %llu\n", (unsigned long long)t.conns_accepted);
    FAM("recd_http_connections_rejected_total", "counter",
        "Connections refused because http.max_connections was reached.");
    P("recd_http_connections_rejected_total %llu\n", (unsigned long long)t.conns_rejected);
    FAM("recd_http_inflight_requests", "gauge", "Requests in progress.");
    P("recd_http_inflight_requests %llu\n", (unsigned long long)t.inflight);
    FAM("recd_http_requests_rejected_busy_total", "counter",
        "Requests answered 503 because a worker was at http.max_inflight_per_worker.");
    P("recd_http_requests_rejected_busy_total %llu\n", (unsigned long long)t.rejected_busy);
    FAM("recd_http_tls_handshake_failures_total", "counter", "Failed TLS handshakes.");
    P("recd_http_tls_handshake_failures_total %llu\n", (unsigned long long)t.tls_fail);
    FAM("recd_http_received_bytes_total", "counter", "Bytes read from clients.");
    P("recd_http_received_bytes_total %llu\n", (unsigned long long)t.bytes_in);
    FAM("recd_http_sent_bytes_total", "counter", "Bytes written to clients.");
    P("recd_http_sent_bytes_total %llu\n", (unsigned long long)t.bytes_out);

    FAM("recd_recommend_unknown_items_total", "counter",
        "Item ids in request history/exclude lists that are not in the catalog (ignored).");
    P("recd_recommend_unknown_items_total %llu\n", (unsigned long long)t.unknown_items);
    FAM("recd_recommend_fallback_popular_total", "counter",
        "Recommendations answered from popularity (no known history).");
    P("recd_recommend_fallback_popular_total %llu\n", (unsigned long long)t.fallback_popular);

    recd_hist_snap_t *snaps = calloc(nendpoints, sizeof *snaps);
    uint64_t(*bc)[6] = calloc(nendpoints, sizeof *bc);
    if (snaps && bc) {
        for (unsigned e = 0; e < nendpoints; e++)
            sum_endpoint(e, bc[e], &snaps[e]);
        static const char *const cls[6] = {"", "1xx", "2xx", "3xx", "4xx", "5xx"};
        FAM("recd_http_requests_total", "counter",
            "Requests answered, by endpoint and status class.");
        for (unsigned e = 0; e < nendpoints; e++)
            for (int c = 1; c <= 5; c++)
                P("recd_http_requests_total{endpoint=\"%s\",class=\"%s\"} %llu\n", ep_names[e],
                  cls[c], (unsigned long long)bc[e][c]);
        FAM("recd_http_request_duration_seconds", "histogram",
            "Time from the end of the request headers to the response being queued.");
        for (unsigned e = 0; e < nendpoints; e++)
            prom_hist(&buf, &len, &cap, "recd_http_request_duration_seconds", "endpoint",
                      ep_names[e], &snaps[e]);
    }
    free(snaps);
    free(bc);
    FAM("recd_recommend_stage_duration_seconds", "histogram",
        "Time spent in each stage of /v1/recommend: user tower, ANN search, ranking.");
    recd_hist_snap_t *ss = malloc(sizeof *ss);
    for (unsigned g = 0; ss && g < RECD_STATS_NSTAGES; g++) {
        sum_stage(g, ss);
        prom_hist(&buf, &len, &cap, "recd_recommend_stage_duration_seconds", "stage",
                  recd_stats_stage_names[g], ss);
    }
    free(ss);
    for (unsigned i = 0; i < nsections; i++)
        if (sections[i].prom)
            sections[i].prom(sections[i].arg, &buf, &len, &cap);
    if (!buf)
        return calloc(1, 1);
    return buf;
}
