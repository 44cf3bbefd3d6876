/*
 * Unit tests for src/stats: the log-linear histogram against a sorted-array
 * reference, merging, Prometheus bucket edges, per-thread counters and the
 * JSON / Prometheus renderers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "recd/stats.h"

/* ---- a small deterministic PRNG (xorshift64*) -------------------------------- */

static uint64_t rng_state;

static void rng_seed(uint64_t s)
{
    rng_state = s ? s : 0x9e3779b97f4a7c15ULL;
}

static uint64_t rng_next(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545f4914f6cdd1dULL;
}

/* uniform in (0, 1) */
static double rng_unit(void)
{
    return ((double)(rng_next() >> 11) + 0.5) / 9007199254740992.0;
}

static double rng_normal(void)
{
    /* Box-Muller */
    double u1 = rng_unit(), u2 = rng_unit();
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static recd_hist_t *hist_new(void)
{
    recd_hist_t *h = calloc(1, sizeof *h);
    assert_non_null(h);
    return h;
}

static recd_hist_snap_t *snap_new(void)
{
    recd_hist_snap_t *s = calloc(1, sizeof *s);
    assert_non_null(s);
    return s;
}

/* ---- bucket mapping -------------------------------------------------------------- */

static void check_value(uint64_t v)
{
    unsigned b = recd_hist_bucket(v);
    assert_true(b < RECD_HIST_NBUCKETS);
    uint64_t up = recd_hist_bucket_upper(b);
    if (v < (1ULL << RECD_HIST_MAX_BITS)) {
        if (up < v)
            print_message("v=%llu bucket=%u upper=%llu\n", (unsigned long long)v, b,
                          (unsigned long long)up);
        assert_true(up >= v);
        if (v < 32) {
            assert_int_equal(up, v); /* exact unit buckets */
        } else {
            /* (up - v) / v <= 1/32, in integers */
            assert_true((up - v) * 32 <= v);
        }
    } else {
        assert_int_equal(b, RECD_HIST_NBUCKETS - 1);
    }
}

static void test_bucket_monotonic_and_bounded(void **state)
{
    unsigned prev = 0;
    for (uint64_t v = 0; v <= (1u << 20); v++) {
        unsigned b = recd_hist_bucket(v);
        assert_true(b >= prev);
        assert_true(b - prev <= 1); /* no bucket is skipped at small values */
        prev = b;
        check_value(v);
    }
    /* Around every power of two up to 2^40 and beyond. */
    prev = 0;
    for (unsigned k = 0; k < 64; k++) {
        uint64_t p = 1ULL << k;
        uint64_t probes[] = {p - 1, p, p + 1, p + p / 3, p + p / 2, 2 * p - 1};
        for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++)
            check_value(probes[i]);
    }
    /* Monotonic over a random sorted sample of the full range. */
    enum { N = 200000 };
    uint64_t *v = malloc(N * sizeof *v);
    assert_non_null(v);
    rng_seed(7);
    for (size_t i = 0; i < N; i++)
        v[i] = rng_next() >> (rng_next() % 64);
    qsort(v, N, sizeof *v, cmp_u64);
    prev = 0;
    for (size_t i = 0; i < N; i++) {
        unsigned b = recd_hist_bucket(v[i]);
        assert_true(b >= prev);
        prev = b;
        check_value(v[i]);
    }
    free(v);
    check_value(UINT64_MAX);
    assert_int_equal(recd_hist_bucket(UINT64_MAX), RECD_HIST_NBUCKETS - 1);
}

/* bucket_upper is consistent with bucket: upper(b) is in b, upper(b)+1 in b+1. */
static void test_bucket_upper_consistent(void **state)
{
    uint64_t prev_up = 0;
    for (unsigned b = 0; b + 1 < RECD_HIST_NBUCKETS; b++) {
        uint64_t up = recd_hist_bucket_upper(b);
        if (b > 0)
            assert_true(up > prev_up);
        prev_up = up;
        assert_int_equal(recd_hist_bucket(up), b);
        assert_int_equal(recd_hist_bucket(up + 1), b + 1);
    }
    /* The second-last bucket ends right below the last one's range. */
    assert_true(recd_hist_bucket_upper(RECD_HIST_NBUCKETS - 2) < (1ULL << RECD_HIST_MAX_BITS));
}

/* ---- quantiles -------------------------------------------------------------------- */

static void check_quantiles(const uint64_t *vals, size_t n, const char *name)
{
    uint64_t *sorted = malloc(n * sizeof *sorted);
    assert_non_null(sorted);
    memcpy(sorted, vals, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_u64);

    recd_hist_t *h = hist_new();
    for (size_t i = 0; i < n; i++)
        recd_hist_record(h, vals[i]);
    recd_hist_snap_t *s = snap_new();
    recd_hist_merge(s, h);
    assert_int_equal(s->count, n);
    assert_int_equal(s->max_us, sorted[n - 1]);
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += vals[i];
    assert_int_equal(s->sum_us, sum);

    static const double qs[] = {0.5, 0.9, 0.99, 0.999, 1.0};
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        double q = qs[i];
        size_t rank = (size_t)ceil(q * (double)n);
        if (rank < 1)
            rank = 1;
        uint64_t ref = sorted[rank - 1];
        uint64_t r = recd_hist_quantile(s, q);
        double hi = (double)ref * (1.0 + 1.0 / 32.0) + 1.0;
        if (r < ref || (double)r > hi || r > s->max_us)
            print_message("%s: q=%g ref=%llu got=%llu max=%llu\n", name, q, (unsigned long long)ref,
                          (unsigned long long)r, (unsigned long long)s->max_us);
        assert_true(r >= ref);
        assert_true((double)r <= hi);
        assert_true(r <= s->max_us);
    }
    assert_int_equal(recd_hist_quantile(s, 1.0), s->max_us);
    free(s);
    free(h);
    free(sorted);
}

static void test_quantiles_distributions(void **state)
{
    enum { N = 100000 };
    uint64_t *v = malloc(N * sizeof *v);
    assert_non_null(v);

    rng_seed(12345);
    for (size_t i = 0; i < N; i++)
        v[i] = 1 + rng_next() % 1000000;
    check_quantiles(v, N, "uniform");

    rng_seed(777);
    for (size_t i = 0; i < N; i++) {
        double x = exp(7.0 + 1.5 * rng_normal());
        v[i] = x > 1e12 ? (uint64_t)1e12 : (uint64_t)x;
    }
    check_quantiles(v, N, "lognormal");

    for (size_t i = 0; i < N; i++)
        v[i] = 4242;
    check_quantiles(v, N, "constant");

    for (size_t i = 0; i < N; i++)
        v[i] = i % 2 ? 100 : 5000000;
    check_quantiles(v, N, "two-values");

    rng_seed(99);
    for (size_t i = 0; i < N; i++)
        v[i] = (rng_next() % 10 < 9) ? 200 + rng_next() % 50 : 80000 + rng_next() % 20000;
    check_quantiles(v, N, "two-clusters");

    for (size_t i = 0; i < N; i++)
        v[i] = i % 32;
    check_quantiles(v, N, "small-exact");

    v[0] = 987654;
    check_quantiles(v, 1, "single");
    v[0] = 0;
    check_quantiles(v, 1, "single-zero");
    v[0] = 5;
    v[1] = 1000;
    check_quantiles(v, 2, "pair");

    /* Odd sizes exercise the rank rounding. */
    rng_seed(31337);
    for (size_t n = 1; n < 60; n++) {
        for (size_t i = 0; i < n; i++)
            v[i] = rng_next() % 100000;
        check_quantiles(v, n, "small-n");
    }
    free(v);
}

static void test_quantile_empty_and_huge(void **state)
{
    recd_hist_snap_t *s = snap_new();
    assert_int_equal(recd_hist_quantile(s, 0.5), 0);
    assert_int_equal(recd_hist_quantile(s, 0.999), 0);
    assert_int_equal(recd_hist_quantile(s, 1.0), 0);
    assert_int_equal(recd_hist_quantile(s, 0.0), 0);
    free(s);

    /* Values beyond the covered range clamp but stay within max. */
    recd_hist_t *h = hist_new();
    uint64_t huge = (1ULL << 50) + 17;
    recd_hist_record(h, huge);
    s = snap_new();
    recd_hist_merge(s, h);
    uint64_t r = recd_hist_quantile(s, 0.5);
    assert_true(r <= huge);
    assert_true(r >= (1ULL << (RECD_HIST_MAX_BITS - 1)));
    assert_int_equal(s->max_us, huge);
    free(s);
    free(h);
}

static void test_merge_equals_single(void **state)
{
    recd_hist_t *a = hist_new(), *b = hist_new(), *all = hist_new();
    rng_seed(2024);
    for (int i = 0; i < 50000; i++) {
        uint64_t v = rng_next() % (1ULL << (rng_next() % 36));
        recd_hist_record(i % 3 ? a : b, v);
        recd_hist_record(all, v);
    }
    recd_hist_snap_t *s1 = snap_new(), *s2 = snap_new();
    recd_hist_merge(s1, a);
    recd_hist_merge(s1, b);
    recd_hist_merge(s2, all);
    assert_int_equal(s1->count, s2->count);
    assert_int_equal(s1->sum_us, s2->sum_us);
    assert_int_equal(s1->max_us, s2->max_us);
    assert_memory_equal(s1->buckets, s2->buckets, sizeof s1->buckets);
    assert_memory_equal(s1->prom, s2->prom, sizeof s1->prom);
    static const double qs[] = {0.5, 0.9, 0.99, 0.999};
    for (int i = 0; i < 4; i++)
        assert_int_equal(recd_hist_quantile(s1, qs[i]), recd_hist_quantile(s2, qs[i]));
    /* Merging is additive: merging `all` again doubles every count. */
    recd_hist_merge(s2, all);
    assert_int_equal(s2->count, 2 * s1->count);
    free(s1);
    free(s2);
    free(a);
    free(b);
    free(all);
}

/* Prometheus buckets: le is "<=", each value counts in exactly one bucket. */
static void test_prom_bucket_edges(void **state)
{
    for (unsigned i = 0; i < RECD_PROM_NBUCKETS; i++) {
        assert_true(recd_prom_bounds_s[i] > 0);
        if (i)
            assert_true(recd_prom_bounds_s[i] > recd_prom_bounds_s[i - 1]);
    }
    for (unsigned i = 0; i < RECD_PROM_NBUCKETS; i++) {
        uint64_t edge = (uint64_t)llround(recd_prom_bounds_s[i] * 1e6);
        recd_hist_t *h = hist_new();
        recd_hist_record(h, edge);
        recd_hist_record(h, edge + 1);
        if (edge > 0)
            recd_hist_record(h, edge - 1);
        recd_hist_snap_t *s = snap_new();
        recd_hist_merge(s, h);
        uint64_t want_here = edge > 0 ? 2 : 1;
        /* edge-1 also lands here unless it is at or below the previous bound */
        if (i > 0 && edge - 1 <= (uint64_t)llround(recd_prom_bounds_s[i - 1] * 1e6))
            want_here--;
        if (s->prom[i] != want_here)
            print_message("bound %g s: prom[%u]=%llu want %llu\n", recd_prom_bounds_s[i], i,
                          (unsigned long long)s->prom[i], (unsigned long long)want_here);
        assert_int_equal(s->prom[i], want_here);
        if (i + 1 < RECD_PROM_NBUCKETS)
            assert_int_equal(s->prom[i + 1], 1); /* edge+1 */
        uint64_t total = 0;
        for (unsigned j = 0; j < RECD_PROM_NBUCKETS; j++)
            total += s->prom[j];
        /* values above the last bound are only in +Inf (count) */
        assert_int_equal(total, i + 1 < RECD_PROM_NBUCKETS ? s->count : s->count - 1);
        free(s);
        free(h);
    }
    /* zero is in the first bucket */
    recd_hist_t *h = hist_new();
    recd_hist_record(h, 0);
    recd_hist_snap_t *s = snap_new();
    recd_hist_merge(s, h);
    assert_int_equal(s->prom[0], 1);
    free(s);
    free(h);
}

/* ---- per-thread stats and rendering ------------------------------------------------- */

static int setup_stats(void **state)
{
    return recd_stats_init(2);
}

static int teardown_stats(void **state)
{
    recd_stats_shutdown();
    return 0;
}

static void test_endpoint_register(void **state)
{
    assert_int_equal(recd_stats_endpoint_count(), 1);
    int x = recd_stats_endpoint_register("/x");
    int y = recd_stats_endpoint_register("/y");
    assert_true(x >= 1);
    assert_true(y >= 1);
    assert_int_not_equal(x, y);
    assert_int_equal(recd_stats_endpoint_register("/x"), x);
    /* a different pointer with the same text is the same endpoint */
    char name[8];
    snprintf(name, sizeof name, "/%c", 'y');
    assert_int_equal(recd_stats_endpoint_register(name), y);
    assert_int_equal(recd_stats_endpoint_count(), 3);
    assert_string_equal(recd_stats_endpoint_name((unsigned)x), "/x");
    assert_string_equal(recd_stats_endpoint_name((unsigned)y), "/y");
    assert_non_null(recd_stats_endpoint_name(0));
    assert_null(recd_stats_endpoint_name(3));

    /* Fill the table: -1 once full. */
    static char names[RECD_STATS_MAX_ENDPOINTS + 5][16];
    int last = 0;
    for (int i = 0; i < RECD_STATS_MAX_ENDPOINTS + 5; i++) {
        snprintf(names[i], sizeof names[i], "/e%d", i);
        int id = recd_stats_endpoint_register(names[i]);
        if (id < 0)
            break;
        assert_true(id < RECD_STATS_MAX_ENDPOINTS);
        last = i + 1;
    }
    assert_int_equal(recd_stats_endpoint_count(), RECD_STATS_MAX_ENDPOINTS);
    assert_int_equal(last, RECD_STATS_MAX_ENDPOINTS - 3);
    assert_int_equal(recd_stats_endpoint_register("/another"), -1);
    assert_int_equal(recd_stats_endpoint_register("/x"), x); /* still found */
}

static void test_threads_and_record(void **state)
{
    assert_int_equal(recd_stats_nthreads(), 2);
    recd_stats_thread_t *t0 = recd_stats_thread(0);
    recd_stats_thread_t *t1 = recd_stats_thread(1);
    assert_non_null(t0);
    assert_non_null(t1);
    assert_ptr_not_equal(t0, t1);
    assert_null(recd_stats_thread(2));
    int x = recd_stats_endpoint_register("/x");
    recd_stats_record(t0, (unsigned)x, 200, 100);
    recd_stats_record(t0, (unsigned)x, 204, 200);
    recd_stats_record(t1, (unsigned)x, 201, 300);
    recd_stats_record(t1, (unsigned)x, 404, 400);
    recd_stats_record(t0, (unsigned)x, 503, 500);
    recd_stats_record(t0, (unsigned)x, 101, 600);
    recd_stats_record(t1, (unsigned)x, 302, 700);
    assert_int_equal(recd_stats_get(&t0->ep[x].by_class[2]), 2);
    assert_int_equal(recd_stats_get(&t1->ep[x].by_class[2]), 1);
    assert_int_equal(recd_stats_get(&t1->ep[x].by_class[4]), 1);
    assert_int_equal(recd_stats_get(&t0->ep[x].by_class[5]), 1);
    assert_int_equal(recd_stats_get(&t0->ep[x].by_class[1]), 1);
    assert_int_equal(recd_stats_get(&t1->ep[x].by_class[3]), 1);
    assert_int_equal(recd_stats_get(&t0->ep[x].latency.count), 4);
    assert_int_equal(recd_stats_get(&t1->ep[x].latency.count), 3);
    assert_int_equal(recd_stats_get(&t0->ep[x].latency.sum_us), 100 + 200 + 500 + 600);
    assert_int_equal(recd_stats_get(&t1->ep[x].latency.max_us), 700);

    recd_stats_add(&t0->conns_open, 5);
    recd_stats_sub(&t0->conns_open, 2);
    assert_int_equal(recd_stats_get(&t0->conns_open), 3);
    assert_true(recd_stats_uptime_s() >= 0.0);
    assert_true(recd_stats_start_time() > 1.6e9);
}

static void test_render_json(void **state)
{
    int x = recd_stats_endpoint_register("/x");
    int y = recd_stats_endpoint_register("/y");
    recd_stats_thread_t *t0 = recd_stats_thread(0), *t1 = recd_stats_thread(1);
    for (int i = 0; i < 3; i++)
        recd_stats_record(i == 1 ? t1 : t0, (unsigned)x, 200, 1000);
    recd_stats_record(t1, (unsigned)x, 404, 3000);
    recd_stats_record(t0, (unsigned)y, 503, 50);
    recd_stats_add(&t0->conns_accepted, 7);
    recd_stats_add(&t1->conns_accepted, 4);

    char *text = recd_stats_render_json();
    assert_non_null(text);
    json_error_t je;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        print_message("not JSON (%s): %s\n", je.text, text);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "version")), "0.1.0");
    assert_true(json_is_number(json_object_get(root, "uptime_s")));
    json_t *conns = json_object_get(root, "connections");
    assert_int_equal(json_integer_value(json_object_get(conns, "accepted")), 11);

    json_t *eps = json_object_get(root, "endpoints");
    assert_true(json_is_object(eps));
    json_t *ex = json_object_get(eps, "/x");
    assert_non_null(ex);
    json_t *req = json_object_get(ex, "requests");
    assert_int_equal(json_integer_value(json_object_get(req, "2xx")), 3);
    assert_int_equal(json_integer_value(json_object_get(req, "4xx")), 1);
    assert_int_equal(json_integer_value(json_object_get(req, "5xx")), 0);
    assert_int_equal(json_integer_value(json_object_get(req, "total")), 4);
    json_t *lat = json_object_get(ex, "latency_us");
    assert_non_null(lat);
    assert_int_equal(json_integer_value(json_object_get(lat, "count")), 4);
    /* 3 x 1000 and 1 x 3000: p50 in 1000's bucket, p99 in 3000's */
    json_int_t p50 = json_integer_value(json_object_get(lat, "p50"));
    json_int_t p99 = json_integer_value(json_object_get(lat, "p99"));
    json_int_t p999 = json_integer_value(json_object_get(lat, "p999"));
    assert_true(p50 >= 1000 && p50 <= 1000 + 1000 / 32);
    assert_true(p99 >= 3000 && p99 <= 3000);
    assert_true(p999 == 3000);
    assert_non_null(json_object_get(lat, "p90"));

    json_t *ey = json_object_get(eps, "/y");
    assert_non_null(ey);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(ey, "requests"), "5xx")),
                     1);
    json_decref(root);
    free(text);
}

static int line_present(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++) {
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return 1;
    }
    return 0;
}

static void test_render_prometheus(void **state)
{
    int x = recd_stats_endpoint_register("/x");
    recd_stats_thread_t *t0 = recd_stats_thread(0), *t1 = recd_stats_thread(1);
    recd_stats_record(t0, (unsigned)x, 200, 100);     /* <= 0.0001 s */
    recd_stats_record(t1, (unsigned)x, 200, 101);     /* <= 0.00025 s */
    recd_stats_record(t0, (unsigned)x, 201, 2000);    /* <= 0.0025 s */
    recd_stats_record(t0, (unsigned)x, 500, 3000000); /* > 2.5 s: +Inf only */

    char *text = recd_stats_render_prometheus();
    assert_non_null(text);
    static const char *const want[] = {
        "# TYPE recd_http_requests_total counter",
        "recd_http_requests_total{endpoint=\"/x\",class=\"2xx\"} 3",
        "recd_http_requests_total{endpoint=\"/x\",class=\"5xx\"} 1",
        "recd_http_requests_total{endpoint=\"/x\",class=\"4xx\"} 0",
        "# TYPE recd_http_request_duration_seconds histogram",
        "recd_http_request_duration_seconds_bucket{endpoint=\"/x\",le=\"0.0001\"} 1",
        "recd_http_request_duration_seconds_bucket{endpoint=\"/x\",le=\"0.00025\"} 2",
        "recd_http_request_duration_seconds_bucket{endpoint=\"/x\",le=\"0.001\"} 2",
        "recd_http_request_duration_seconds_bucket{endpoint=\"/x\",le=\"0.0025\"} 3",
        "recd_http_request_duration_seconds_bucket{endpoint=\"/x\",le=\"2.5\"} 3",
        "recd_http_request_duration_seconds_bucket{endpoint=\"/x\",le=\"+Inf\"} 4",
        "recd_http_request_duration_seconds_count{endpoint=\"/x\"} 4",
        "recd_http_request_duration_seconds_sum{endpoint=\"/x\"} 3.002201",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (!line_present(text, want[i]))
            print_message("missing line: %s\n", want[i]);
        assert_true(line_present(text, want[i]));
    }
    /* Exposition format sanity: every line ends with '\n', every sample
     * line is `name{labels} value` or `name value`, each family has one
     * TYPE line. */
    size_t len = strlen(text);
    assert_true(len > 0 && text[len - 1] == '\n');
    int types = 0;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        if (strncmp(p, "# TYPE recd_http_requests_total ", 32) == 0)
            types++;
        if (*p != '#') {
            const char *sp = memchr(p, ' ', (size_t)(nl - p));
            assert_non_null(sp);
            char *end;
            strtod(sp + 1, &end);
            assert_ptr_equal(end, nl);
        }
        p = nl + 1;
    }
    assert_int_equal(types, 1);
    free(text);
}

static void test_sections(void **state)
{
    recd_stats_section_t s = {0};
    s.name = "extra";
    s.json = NULL;
    s.prom = NULL;
    assert_int_equal(recd_stats_add_section(&s), 0);
    char *j = recd_stats_render_json();
    assert_non_null(j);
    free(j);

    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (int i = 0; i < 5000; i++)
        recd_stats_bufprintf(&buf, &len, &cap, "line %d\n", i);
    assert_non_null(buf);
    assert_int_equal(strlen(buf), len);
    assert_true(strncmp(buf, "line 0\nline 1\n", 14) == 0);
    assert_non_null(strstr(buf, "\nline 4999\n"));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_monotonic_and_bounded),
        cmocka_unit_test(test_bucket_upper_consistent),
        cmocka_unit_test(test_quantiles_distributions),
        cmocka_unit_test(test_quantile_empty_and_huge),
        cmocka_unit_test(test_merge_equals_single),
        cmocka_unit_test(test_prom_bucket_edges),
        cmocka_unit_test_setup_teardown(test_endpoint_register, setup_stats, teardown_stats),
        cmocka_unit_test_setup_teardown(test_threads_and_record, setup_stats, teardown_stats),
        cmocka_unit_test_setup_teardown(test_render_json, setup_stats, teardown_stats),
        cmocka_unit_test_setup_teardown(test_render_prometheus, setup_stats, teardown_stats),
        cmocka_unit_test_setup_teardown(test_sections, setup_stats, teardown_stats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
