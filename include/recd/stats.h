/*
 * recd stats: latency histograms and per-thread request counters, merged on
 * read. Each counter has exactly one writer thread (the worker that owns
 * it), which updates it with a relaxed load + store; readers (the /stats and
 * /metrics handlers) sum relaxed loads over all threads. No lock is taken on
 * the request path.
 */
#ifndef RECD_STATS_H
#define RECD_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* ---- log-linear histogram -------------------------------------------------
 * Values are microseconds. Values below 2^RECD_HIST_SUB_BITS land in exact
 * unit buckets; above, each power of two is split into 2^RECD_HIST_SUB_BITS
 * equal sub-buckets, so a reported percentile (the upper edge of its bucket,
 * clamped to the maximum seen) is at most 1/2^RECD_HIST_SUB_BITS (3.1%)
 * above the true value. Covers 0 .. 2^36 us (19 hours); larger values clamp. */
#define RECD_HIST_SUB_BITS 5
#define RECD_HIST_SUB (1u << RECD_HIST_SUB_BITS)
#define RECD_HIST_MAX_BITS 36
#define RECD_HIST_NBUCKETS ((RECD_HIST_MAX_BITS - RECD_HIST_SUB_BITS + 1) * RECD_HIST_SUB)

/* Fixed Prometheus buckets (seconds), exact counts kept alongside. */
#define RECD_PROM_NBUCKETS 14
extern const double recd_prom_bounds_s[RECD_PROM_NBUCKETS];

typedef struct recd_hist {
    _Atomic uint64_t buckets[RECD_HIST_NBUCKETS];
    _Atomic uint64_t prom[RECD_PROM_NBUCKETS]; /* count of v <= bound (not cumulative) */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_us;
    _Atomic uint64_t max_us;
} recd_hist_t;

/* A plain (non-atomic) merged copy for reporting. */
typedef struct recd_hist_snap {
    uint64_t buckets[RECD_HIST_NBUCKETS];
    uint64_t prom[RECD_PROM_NBUCKETS]; /* per-bucket, not cumulative */
    uint64_t count;
    uint64_t sum_us;
    uint64_t max_us;
} recd_hist_snap_t;

/* Bucket index of a value, and the largest value that maps to a bucket. */
unsigned recd_hist_bucket(uint64_t v_us);
uint64_t recd_hist_bucket_upper(unsigned b);
/* Record one value. Single writer per histogram. */
void recd_hist_record(recd_hist_t *h, uint64_t v_us);
/* Add h into snap (relaxed loads; any thread). */
void recd_hist_merge(recd_hist_snap_t *snap, const recd_hist_t *h);
/* Value at quantile q in [0,1]: upper edge of the bucket holding the
 * ceil(q*count)-th smallest value, clamped to max. 0 when empty. */
uint64_t recd_hist_quantile(const recd_hist_snap_t *snap, double q);

/* ---- per-thread request stats --------------------------------------------- */

/* Endpoints are small integers registered once at start (route table
 * order); RECD_STATS_MAX_ENDPOINTS bounds them. Index 0 is "unmatched". */
#define RECD_STATS_MAX_ENDPOINTS 32

typedef struct recd_stats_endpoint {
    _Atomic uint64_t by_class[6]; /* [1]..[5] = 1xx..5xx responses */
    recd_hist_t latency;
} recd_stats_endpoint_t;

/* Stages of a recommendation, timed separately. */
enum { RECD_STAGE_TOWER = 0, RECD_STAGE_ANN = 1, RECD_STAGE_RANK = 2, RECD_STATS_NSTAGES = 3 };
extern const char *const recd_stats_stage_names[RECD_STATS_NSTAGES];

/* One per thread that serves requests (workers + admin thread). */
typedef struct recd_stats_thread {
    recd_stats_endpoint_t ep[RECD_STATS_MAX_ENDPOINTS];
    recd_hist_t stages[RECD_STATS_NSTAGES]; /* per-stage latency of /v1/recommend */
    _Atomic uint64_t conns_open;            /* gauge */
    _Atomic uint64_t conns_accepted;        /* counter */
    _Atomic uint64_t conns_rejected;        /* over max_connections */
    _Atomic uint64_t inflight;              /* gauge */
    _Atomic uint64_t rejected_busy;         /* 503 past max in-flight */
    _Atomic uint64_t bytes_in, bytes_out;
    _Atomic uint64_t tls_handshake_failures;
    _Atomic uint64_t heartbeat;        /* bumped when the main thread pings (watchdog) */
    _Atomic uint64_t unknown_items;    /* history/exclude ids not in the catalog */
    _Atomic uint64_t fallback_popular; /* recommendations served from popularity */
} recd_stats_thread_t;

/* Single-writer increment/add/set helpers (relaxed). */
static inline void recd_stats_add(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
}
static inline void recd_stats_sub(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) - v,
                          memory_order_relaxed);
}
static inline uint64_t recd_stats_get(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* Global registry of threads and endpoint names. Set-up calls (register)
 * happen before threads start; reads are safe from any thread after. */
int recd_stats_init(unsigned nthreads);
void recd_stats_shutdown(void);
unsigned recd_stats_nthreads(void);
/* Number of public worker threads, reported as "workers" in /stats. */
void recd_stats_set_workers(unsigned n);
recd_stats_thread_t *recd_stats_thread(unsigned i);
/* Register an endpoint name ("/healthz"); returns its index (>= 1) or -1
 * when the table is full. Same name twice returns the same index. The name
 * is borrowed, not copied: it must live until recd_stats_shutdown(). */
int recd_stats_endpoint_register(const char *name);
unsigned recd_stats_endpoint_count(void); /* including index 0 */
const char *recd_stats_endpoint_name(unsigned i);

/* Record one finished request on thread t. */
void recd_stats_record(recd_stats_thread_t *t, unsigned endpoint, int status, uint64_t latency_us);

/* Process start (wall seconds) and uptime. */
double recd_stats_start_time(void);
double recd_stats_uptime_s(void);

/* Render the stats JSON / Prometheus text. extra_json and extra_prom are
 * appended by later modules (models, A/B): see recd_stats_add_section().
 * Caller frees the result with free(). */
char *recd_stats_render_json(void);
char *recd_stats_render_prometheus(void);

/* Later modules add their own sections: a JSON object under `name` in
 * /stats and lines in /metrics. Callbacks must be thread-safe. */
struct json_t;
typedef struct recd_stats_section {
    const char *name;
    /* returns a new reference to a JSON value, or NULL */
    struct json_t *(*json)(void *arg);
    /* appends Prometheus lines (with HELP/TYPE) to a growable buffer */
    void (*prom)(void *arg, char **buf, size_t *len, size_t *cap);
    void *arg;
} recd_stats_section_t;
int recd_stats_add_section(const recd_stats_section_t *s);

/* Printf into a growable buffer (used by the Prometheus renderers). */
void recd_stats_bufprintf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
