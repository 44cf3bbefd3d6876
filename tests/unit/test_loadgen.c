/*
 * Unit tests for recd-load's modules (loadtest/load/): the latency
 * histogram as the report uses it against a sorted-array reference, the
 * arrival processes, the Zipf sampler against its exact pmf, scenario
 * errors (each naming its JSON path), the request bodies, and the HTTP
 * response head parser. No network.
 *
 * Seeds: the Poisson checks use seed 1 (recd-load's default), the other
 * random inputs fixed seeds stated where they are drawn.
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
#include <unistd.h>

#include <jansson.h>

#include "recd/core.h"
#include "recd/stats.h"

#include "../../loadtest/load/arrival.h"
#include "../../loadtest/load/buf.h"
#include "../../loadtest/load/bundle.h"
#include "../../loadtest/load/httpresp.h"
#include "../../loadtest/load/report.h"
#include "../../loadtest/load/reqgen.h"
#include "../../loadtest/load/scenario.h"
#include "../../loadtest/load/zipf.h"

/* ---- (1) the histogram as the generator uses it ------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Record samples through lg_report_outcome, render the JSON report, and
 * check each percentile of the total and of the endpoint against the
 * sorted samples: reported >= true and <= true * (1 + 1/32) + 1. */
static void check_percentiles(uint64_t *v, size_t n)
{
    lg_report_t *r = lg_report_new();
    assert_non_null(r);
    r->in_mix[LG_EP_RECOMMEND] = 1;
    r->duration_s = 1.0;
    for (size_t i = 0; i < n; i++)
        lg_report_outcome(r, LG_EP_RECOMMEND, LG_OUT_RESPONSE, 200, v[i], v[i], 0);
    json_t *j = lg_report_json(r);
    assert_non_null(j);
    qsort(v, n, sizeof *v, cmp_u64);
    static const struct {
        const char *key;
        double q;
    } qs[] = {{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}, {"p999", 0.999}, {"max", 1.0}};
    json_t *where[3] = {
        json_object_get(j, "latency_us"), json_object_get(j, "service_us"),
        json_object_get(json_object_get(json_object_get(j, "endpoints"), "recommend"),
                        "latency_us")};
    for (int w = 0; w < 3; w++) {
        assert_non_null(where[w]);
        assert_int_equal(json_integer_value(json_object_get(where[w], "count")), n);
        for (size_t k = 0; k < sizeof qs / sizeof qs[0]; k++) {
            size_t rank = (size_t)ceil(qs[k].q * (double)n); /* 1-based */
            if (rank < 1)
                rank = 1;
            uint64_t truth = v[rank - 1];
            uint64_t got = (uint64_t)json_integer_value(json_object_get(where[w], qs[k].key));
            double bound = (double)truth * (1.0 + 1.0 / 32.0) + 1.0;
            if (got < truth || (double)got > bound)
                fail_msg("%s: reported %llu, true %llu (bound %.1f)", qs[k].key,
                         (unsigned long long)got, (unsigned long long)truth, bound);
        }
        double sum = 0;
        for (size_t i = 0; i < n; i++)
            sum += (double)v[i];
        assert_true(fabs(json_real_value(json_object_get(where[w], "mean")) - sum / (double)n) <
                    1e-6 * sum / (double)n + 1e-9);
    }
    json_decref(j);
    lg_report_free(r);
}

static void test_hist_log_uniform(void **state)
{
    (void)state;
    size_t n = 200000;
    uint64_t *v = malloc(n * sizeof *v);
    assert_non_null(v);
    recd_rng_t r;
    recd_rng_seed(&r, 11); /* seed 11 */
    double lo = log(1.0), hi = log(60e6);
    for (size_t i = 0; i < n; i++)
        v[i] = (uint64_t)llround(exp(lo + (hi - lo) * recd_rng_unit(&r)));
    check_percentiles(v, n);
    free(v);
}

static void test_hist_tight_normal(void **state)
{
    (void)state;
    size_t n = 200000;
    uint64_t *v = malloc(n * sizeof *v);
    assert_non_null(v);
    recd_rng_t r;
    recd_rng_seed(&r, 12); /* seed 12: mean 1000 us, sd 20 us */
    for (size_t i = 0; i < n; i++) {
        double x = 1000.0 + 20.0 * recd_rng_gauss(&r);
        v[i] = x < 0 ? 0 : (uint64_t)llround(x);
    }
    check_percentiles(v, n);
    free(v);
}

/* ---- (2) arrival processes ------------------------------------------------------------ */

typedef struct gapstats {
    double first, last, mean, cv;
} gapstats_t;

static gapstats_t run_arrivals(lg_arrival_kind_t kind, double rate, uint64_t seed, size_t n)
{
    lg_arrival_t a;
    lg_arrival_init(&a, kind, rate, seed);
    gapstats_t g = {0};
    double prev = 0, s1 = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        double t = lg_arrival_next(&a);
        if (i == 0) {
            g.first = t;
        } else {
            double gap = t - prev;
            assert_true(gap >= 0);
            s1 += gap;
            s2 += gap * gap;
        }
        prev = t;
    }
    g.last = prev;
    double m = s1 / (double)(n - 1);
    double var = s2 / (double)(n - 1) - m * m;
    g.mean = m;
    g.cv = sqrt(var > 0 ? var : 0) / m;
    return g;
}

static void test_arrival_constant_exact(void **state)
{
    (void)state;
    static const double rates[] = {1.0, 333.0, 1000.0, 12345.5};
    for (size_t k = 0; k < 4; k++) {
        double rate = rates[k];
        lg_arrival_t a;
        lg_arrival_init(&a, LG_ARRIVAL_CONSTANT, rate, 1);
        for (uint64_t i = 0; i < 10000; i++)
            assert_true(lg_arrival_next(&a) == (double)i / rate);
        gapstats_t g = run_arrivals(LG_ARRIVAL_CONSTANT, rate, 1, 10000);
        double achieved = 9999.0 / (g.last - g.first);
        assert_true(fabs(achieved - rate) <= 1e-9 * rate);
        assert_true(g.cv < 1e-6);
    }
    /* the report's scheduled_rps over the same schedule */
    lg_report_t *r = lg_report_new();
    lg_arrival_t a;
    lg_arrival_init(&a, LG_ARRIVAL_CONSTANT, 500.0, 1);
    for (int i = 0; i < 10000; i++)
        lg_report_scheduled(r, LG_EP_RECOMMEND, lg_arrival_next(&a));
    assert_true(fabs(lg_report_scheduled_rps(r) - 500.0) < 1e-9 * 500.0);
    lg_report_free(r);
}

static void test_arrival_poisson_rate(void **state)
{
    (void)state;
    /* seed 1 (the default): 10,000 requests within 1%, 1,000,000 within 0.3% */
    gapstats_t g = run_arrivals(LG_ARRIVAL_POISSON, 1000.0, 1, 10000);
    double achieved = 9999.0 / (g.last - g.first);
    assert_true(g.first == 0.0);
    if (fabs(achieved / 1000.0 - 1.0) >= 0.01)
        fail_msg("10k Poisson arrivals: rate %.3f, want 1000 within 1%%", achieved);
    g = run_arrivals(LG_ARRIVAL_POISSON, 1000.0, 1, 1000000);
    achieved = 999999.0 / (g.last - g.first);
    if (fabs(achieved / 1000.0 - 1.0) >= 0.003)
        fail_msg("1M Poisson arrivals: rate %.3f, want 1000 within 0.3%%", achieved);
    /* exponential gaps: coefficient of variation 1 */
    if (g.cv < 0.97 || g.cv > 1.03)
        fail_msg("Poisson inter-arrival CV %.4f, want 0.97..1.03", g.cv);
    /* memorylessness, roughly: P(gap > mean) = 1/e */
    lg_arrival_t a;
    lg_arrival_init(&a, LG_ARRIVAL_POISSON, 50.0, 1);
    double prev = lg_arrival_next(&a);
    size_t above = 0, n = 200000;
    for (size_t i = 0; i < n; i++) {
        double t = lg_arrival_next(&a);
        above += t - prev > 1.0 / 50.0;
        prev = t;
    }
    assert_true(fabs((double)above / (double)n - exp(-1.0)) < 0.005);
}

static void test_arrival_poisson_seeded(void **state)
{
    (void)state;
    lg_arrival_t a, b, c;
    lg_arrival_init(&a, LG_ARRIVAL_POISSON, 100.0, 7);
    lg_arrival_init(&b, LG_ARRIVAL_POISSON, 100.0, 7);
    lg_arrival_init(&c, LG_ARRIVAL_POISSON, 100.0, 8);
    int differ = 0;
    for (int i = 0; i < 1000; i++) {
        double x = lg_arrival_next(&a), y = lg_arrival_next(&b), z = lg_arrival_next(&c);
        assert_true(x == y);
        differ |= x != z;
    }
    assert_true(differ);
    lg_arrival_kind_t k;
    assert_int_equal(lg_arrival_parse("poisson", &k), 0);
    assert_int_equal(k, LG_ARRIVAL_POISSON);
    assert_int_equal(lg_arrival_parse("constant", &k), 0);
    assert_int_equal(k, LG_ARRIVAL_CONSTANT);
    assert_int_equal(lg_arrival_parse("uniform", &k), -1);
    assert_string_equal(lg_arrival_name(LG_ARRIVAL_CONSTANT), "constant");
}

/* ---- (3) Zipf --------------------------------------------------------------------- */

/* 1,000,000 draws over n ranks: chi-square over the first `bins` ranks
 * plus the rest lumped, against the 99.9% point of chi-square with `bins`
 * degrees of freedom (Wilson-Hilferty). */
static void check_zipf(size_t n, double s, uint64_t seed)
{
    lg_zipf_t z;
    assert_int_equal(lg_zipf_init(&z, n, s), 0);
    double total = 0;
    for (size_t k = 0; k < n; k++)
        total += lg_zipf_pmf(&z, k);
    assert_true(fabs(total - 1.0) < 1e-9);
    for (size_t k = 1; k < n; k++)
        assert_true(lg_zipf_pmf(&z, k) <= lg_zipf_pmf(&z, k - 1));
    size_t bins = n < 100 ? n - 1 : 100;
    uint64_t *cnt = calloc(bins + 1, sizeof *cnt);
    recd_rng_t r;
    recd_rng_seed(&r, seed);
    size_t draws = 1000000;
    for (size_t i = 0; i < draws; i++) {
        size_t k = lg_zipf_sample(&z, &r);
        assert_true(k < n);
        cnt[k < bins ? k : bins]++;
    }
    double chi2 = 0, rest = 1.0, max_rel = 0;
    for (size_t k = 0; k <= bins; k++) {
        double p = k < bins ? lg_zipf_pmf(&z, k) : rest;
        if (k < bins)
            rest -= p;
        double e = p * (double)draws;
        if (e <= 0)
            continue;
        chi2 += ((double)cnt[k] - e) * ((double)cnt[k] - e) / e;
        if (k < 5)
            max_rel = fmax(max_rel, fabs((double)cnt[k] - e) / e);
    }
    double df = (double)bins, zq = 3.090; /* 99.9% normal quantile */
    double crit = df * pow(1 - 2 / (9 * df) + zq * sqrt(2 / (9 * df)), 3);
    if (chi2 > crit)
        fail_msg("Zipf(n=%zu, s=%.2f): chi-square %.1f > %.1f (df %zu)", n, s, chi2, crit, bins);
    assert_true(max_rel < 0.02); /* top ranks: many thousands of draws each */
    free(cnt);
    lg_zipf_free(&z);
}

static void test_zipf_pmf(void **state)
{
    (void)state;
    check_zipf(1000, 1.1, 21);  /* seed 21 */
    check_zipf(20000, 0.9, 22); /* seed 22 */
    check_zipf(50, 0.0, 23);    /* uniform, seed 23 */
    check_zipf(100000, 1.5, 24);
    lg_zipf_t z;
    assert_int_equal(lg_zipf_init(&z, 0, 1.0), -1);
    assert_int_equal(lg_zipf_init(&z, 10, -1.0), -1);
    assert_int_equal(lg_zipf_init(&z, 1, 1.0), 0);
    recd_rng_t r;
    recd_rng_seed(&r, 1);
    assert_int_equal(lg_zipf_sample(&z, &r), 0);
    lg_zipf_free(&z);
}

/* ---- a bundle on disk ---------------------------------------------------------------- */

static char tmpdir[256];

static void write_file(const char *dir, const char *name, const char *text)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static const char *MANIFEST =
    "{\"format\": \"recd-bundle/1\", \"name\": \"tiny\", \"version\": 3, \"n_items\": 30,\n"
    " \"features\": {\"hash\": \"fnv1a64\", \"fields\": [\n"
    "  {\"name\": \"user_id\", \"source\": \"user\", \"type\": \"categorical\", \"buckets\": "
    "100},\n"
    "  {\"name\": \"age\", \"source\": \"user\", \"type\": \"bucketized\", \"boundaries\": [18, "
    "25, "
    "35], \"buckets\": 8},\n"
    "  {\"name\": \"gender\", \"source\": \"user\", \"type\": \"categorical\", \"buckets\": 8, "
    "\"values\": [\"F\", \"M\"]},\n"
    "  {\"name\": \"occupation\", \"source\": \"user\", \"type\": \"categorical\", \"buckets\": "
    "8},\n"
    "  {\"name\": \"item_id\", \"source\": \"item\", \"type\": \"categorical\", \"column\": "
    "\"id\", "
    "\"buckets\": 64},\n"
    "  {\"name\": \"device\", \"source\": \"context\", \"type\": \"categorical\", \"buckets\": 8, "
    "\"values\": [\"mobile\", \"tv\"]},\n"
    "  {\"name\": \"hour\", \"source\": \"context\", \"type\": \"bucketized\", \"boundaries\": [6, "
    "12, 23], \"buckets\": 8}]}}\n";

/* 30 items: i0..i28 and one id needing JSON and URL escaping; popularity
 * descending with the index except that i7 is the most popular. */
static void make_bundle(const char *dir, int with_pop)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p %s/m/3", dir);
    assert_int_equal(system(cmd), 0);
    char vdir[400];
    snprintf(vdir, sizeof vdir, "%s/m/3", dir);
    write_file(vdir, "manifest.json", MANIFEST);
    lg_buf_t b = {0};
    lg_buf_adds(&b, with_pop ? "id\tgenres\tpopularity\n" : "id\tgenres\n");
    for (int i = 0; i < 30; i++) {
        if (i == 29)
            lg_buf_adds(&b, "q\"\\ x/y");
        else
            lg_buf_printf(&b, "i%d", i);
        if (with_pop)
            lg_buf_printf(&b, "\tDrama\t%d\n", i == 7 ? 1000 : 100 - i);
        else
            lg_buf_adds(&b, "\tDrama\n");
    }
    write_file(vdir, "items.tsv", b.p);
    lg_buf_free(&b);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/recd-test-loadgen-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    make_bundle(tmpdir, 1);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- (4) scenario errors ------------------------------------------------------------ */

/* The whole chain main runs: scenario JSON → bundle → request builder.
 * Returns the exit status; err holds the message. "@B" in text is the
 * test bundle's model directory. */
static int load_chain(const char *text, const char *override, char *err, size_t n)
{
    char body[4096], bdir[400];
    snprintf(bdir, sizeof bdir, "%s/m", tmpdir);
    const char *at = strstr(text, "@B");
    if (at)
        snprintf(body, sizeof body, "%.*s%s%s", (int)(at - text), text, bdir, at + 2);
    else
        snprintf(body, sizeof body, "%s", text);
    json_error_t je;
    json_t *root = json_loads(body, 0, &je);
    if (!root)
        fail_msg("test scenario does not parse: %s: %s", body, je.text);
    lg_scenario_t s;
    lg_bundle_t b;
    lg_gen_t g;
    memset(&b, 0, sizeof b);
    memset(&g, 0, sizeof g);
    int rc = LG_EXIT_RUNTIME;
    if (lg_scenario_from_json(&s, root, "t", err, n) == 0) {
        rc = lg_scenario_bundle(&s, override, &b, err, n);
        if (rc == LG_EXIT_OK && lg_gen_init(&g, &s, &b, 1, err, n) < 0)
            rc = LG_EXIT_RUNTIME;
    }
    lg_gen_free(&g);
    lg_bundle_free(&b);
    lg_scenario_free(&s);
    json_decref(root);
    return rc;
}

#define MIX "\"bundle\": \"@B\", \"mix\": {\"recommend\": 1}"

static const struct {
    const char *json;
    const char *want; /* the message starts with this */
    const char *also; /* and contains this (or NULL) */
    int rc;
} bad_cases[] = {
    {"[1, 2]", "scenario (root):", NULL, 1},
    {"{" MIX ", \"colour\": 1}", "scenario colour:", "unknown key", 1},
    {"{\"bundle\": \"@B\"}", "scenario mix:", "missing", 1},
    {"{\"bundle\": \"@B\", \"mix\": {}}", "scenario mix:", "at least one", 1},
    {"{\"bundle\": \"@B\", \"mix\": [1]}", "scenario mix:", NULL, 1},
    {"{\"bundle\": \"@B\", \"mix\": {\"recommend\": -1}}",
     "scenario mix.recommend:", "integer >= 0", 1},
    {"{\"bundle\": \"@B\", \"mix\": {\"recommend\": 1, \"score\": 1.5}}",
     "scenario mix.score:", "integer >= 0", 1},
    {"{\"bundle\": \"@B\", \"mix\": {\"search\": 1}}", "scenario mix.search:", "unknown endpoint",
     1},
    {"{\"bundle\": \"@B\", \"mix\": {\"recommend\": 0, \"events\": 0}}",
     "scenario mix:", "sum to 0", 1},
    {"{" MIX ", \"name\": 5}", "scenario name:", NULL, 1},
    {"{" MIX ", \"users\": {\"count\": 0}}", "scenario users.count:", NULL, 1},
    {"{" MIX ", \"users\": {\"zipf_s\": \"steep\"}}", "scenario users.zipf_s:", NULL, 1},
    {"{" MIX ", \"users\": {\"cold_pct\": 150}}", "scenario users.cold_pct:", NULL, 1},
    {"{" MIX ", \"users\": {\"size\": 10}}", "scenario users.size:", "unknown key", 1},
    {"{" MIX ", \"users\": {\"prefix\": 7}}", "scenario users.prefix:", NULL, 1},
    {"{" MIX ", \"items\": {\"by\": \"rating\"}}", "scenario items.by:", NULL, 1},
    {"{" MIX ", \"history\": {\"max\": 0}}", "scenario history.max:", NULL, 1},
    {"{" MIX ", \"history\": {\"sigma\": -1}}", "scenario history.sigma:", NULL, 1},
    {"{" MIX ", \"recommend\": 10}", "scenario recommend:", "object", 1},
    {"{" MIX ", \"recommend\": {\"k\": 50, \"candidates\": 20}}",
     "scenario recommend.candidates:", ">= recommend.k", 1},
    {"{" MIX ", \"score\": {\"items\": 0}}", "scenario score.items:", NULL, 1},
    {"{" MIX ", \"similar\": {\"k\": 5000}}", "scenario similar.k:", NULL, 1},
    {"{" MIX ", \"events\": {\"batch\": 0}}", "scenario events.batch:", NULL, 1},
    {"{" MIX ", \"events\": {\"types\": {\"like\": 1}}}",
     "scenario events.types.like:", "unknown event type", 1},
    {"{" MIX ", \"events\": {\"types\": {\"click\": 0}}}", "scenario events.types:", "sum to 0", 1},
    {"{" MIX ", \"features\": {\"gender\": []}}", "scenario features.gender:", "empty", 1},
    {"{" MIX ", \"features\": {\"gender\": [\"F\", true]}}", "scenario features.gender[1]:", NULL,
     1},
    {"{" MIX ", \"features\": {\"age\": {\"min\": 5}}}", "scenario features.age.max:", "missing",
     1},
    {"{" MIX ", \"features\": {\"age\": {\"min\": 9, \"max\": 5}}}",
     "scenario features.age.max:", ">= min", 1},
    {"{" MIX ", \"features\": {\"age\": {\"min\": 9, \"max\": 50, \"step\": 2}}}",
     "scenario features.age.step:", "unknown key", 1},
    {"{" MIX ", \"features\": \"all\"}", "scenario features:", NULL, 1},
    /* checked against the bundle's schema */
    {"{" MIX ", \"features\": {\"colour\": [\"red\"]}}",
     "scenario features.colour:", "not a user field", 1},
    {"{" MIX ", \"features\": {\"user_id\": [\"u1\"]}}", "scenario features.user_id:", NULL, 1},
    {"{" MIX ", \"features\": {\"device\": [\"tv\"]}}",
     "scenario features.device:", "not a user field", 1},
    {"{" MIX ", \"context\": {\"age\": [30]}}", "scenario context.age:", "not a context field", 1},
    {"{" MIX ", \"features\": {\"age\": [\"old\"]}}", "scenario features.age[0]:", "numbers", 1},
    {"{" MIX ", \"features\": {\"gender\": [1.5]}}", "scenario features.gender[0]:", "integers", 1},
    /* the bundle */
    {"{\"mix\": {\"recommend\": 1}}", "scenario bundle:", "missing", 1},
    {"{\"bundle\": \"/nonexistent/models\", \"mix\": {\"recommend\": 1}}",
     "scenario bundle:", "cannot open", 1},
    {"{\"bundle\": \"\", \"mix\": {\"recommend\": 1}}", "scenario bundle:", NULL, 1},
    {"{\"bundle\": \"/tmp\", \"mix\": {\"recommend\": 1}}", "scenario bundle:", "manifest.json", 1},
};

static void test_scenario_errors(void **state)
{
    (void)state;
    char err[1024];
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        err[0] = '\0';
        int rc = load_chain(bad_cases[i].json, NULL, err, sizeof err);
        if (rc != bad_cases[i].rc ||
            strncmp(err, bad_cases[i].want, strlen(bad_cases[i].want)) != 0 ||
            (bad_cases[i].also && !strstr(err, bad_cases[i].also)))
            fail_msg("case %zu %s: rc %d, message \"%s\"; want rc %d, \"%s...\" with \"%s\"", i,
                     bad_cases[i].json, rc, err, bad_cases[i].rc, bad_cases[i].want,
                     bad_cases[i].also ? bad_cases[i].also : "");
    }
    /* the good one loads */
    assert_int_equal(load_chain("{" MIX "}", NULL, err, sizeof err), 0);
    /* --bundle: usage error naming the option; overrides the scenario's */
    assert_int_equal(load_chain("{" MIX "}", "/nonexistent", err, sizeof err), LG_EXIT_USAGE);
    assert_true(strncmp(err, "--bundle:", 9) == 0);
    char good[400];
    snprintf(good, sizeof good, "%s/m/3", tmpdir);
    assert_int_equal(load_chain("{\"bundle\": \"/nonexistent\", \"mix\": {\"score\": 1}}", good,
                                err, sizeof err),
                     0);
}

static void test_bundle_errors(void **state)
{
    (void)state;
    char dir[400], cmd[600], err[1024];
    lg_bundle_t b;
    snprintf(dir, sizeof dir, "%s/bad", tmpdir);
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    assert_int_equal(system(cmd), 0);
    static const struct {
        const char *items;
        const char *want;
    } cases[] = {
        {"name\tpopularity\ni0\t3\n", "no \"id\" column"},
        {"id\tpopularity\ni0\t3\ni1\tmany\n", "line 3: popularity"},
        {"id\tpopularity\ni0\t3\ni1\n", "line 3: 1 columns"},
        {"id\n", "no items"},
        {"", "no \"id\" column"},
        {"id\tx\n\tq\n", "line 2: empty id"},
    };
    write_file(dir, "manifest.json", "{\"features\": {\"fields\": []}}");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_file(dir, "items.tsv", cases[i].items);
        assert_int_equal(lg_bundle_load(&b, dir, err, sizeof err), -1);
        if (!strstr(err, cases[i].want) || !strstr(err, "items.tsv"))
            fail_msg("items case %zu: \"%s\", want \"%s\"", i, err, cases[i].want);
        lg_bundle_free(&b);
    }
    write_file(dir, "items.tsv", "id\ni0\n");
    write_file(dir, "manifest.json", "{\"features\": {\"fields\": [{\"name\": \"a\"}]}}");
    assert_int_equal(lg_bundle_load(&b, dir, err, sizeof err), -1);
    assert_non_null(strstr(err, "features.fields[0]"));
    lg_bundle_free(&b);
    write_file(dir, "manifest.json", "{\"n_items\": 2, \"features\": {\"fields\": []}}");
    assert_int_equal(lg_bundle_load(&b, dir, err, sizeof err), -1);
    assert_non_null(strstr(err, "n_items"));
    lg_bundle_free(&b);
    write_file(dir, "manifest.json", "{\"features\": ");
    assert_int_equal(lg_bundle_load(&b, dir, err, sizeof err), -1);
    assert_non_null(strstr(err, "manifest.json line"));
    lg_bundle_free(&b);
    /* the model directory: its highest numeric version */
    snprintf(cmd, sizeof cmd, "%s/m", tmpdir);
    assert_int_equal(lg_bundle_load(&b, cmd, err, sizeof err), 0);
    assert_string_equal(b.name, "tiny");
    assert_int_equal(b.version, 3);
    assert_int_equal(b.nitems, 30);
    assert_string_equal(b.ids[29], "q\"\\ x/y");
    assert_non_null(b.popularity);
    assert_true(b.popularity[7] == 1000);
    lg_bundle_free(&b);
}

static void test_scenario_file(void **state)
{
    (void)state;
    char path[400], err[1024];
    lg_scenario_t s;
    snprintf(path, sizeof path, "%s/does-not-exist.json", tmpdir);
    assert_int_equal(lg_scenario_load(&s, path, err, sizeof err), LG_EXIT_USAGE);
    assert_true(strncmp(err, "--scenario: cannot open", 23) == 0);
    lg_scenario_free(&s);
    write_file(tmpdir, "syntax.json", "{\"mix\": {\"recommend\": 1,}}");
    snprintf(path, sizeof path, "%s/syntax.json", tmpdir);
    assert_int_equal(lg_scenario_load(&s, path, err, sizeof err), LG_EXIT_RUNTIME);
    assert_non_null(strstr(err, "line 1 column"));
    lg_scenario_free(&s);
    write_file(tmpdir, "dup.json", "{\"mix\": {\"recommend\": 1}, \"mix\": {\"score\": 1}}");
    snprintf(path, sizeof path, "%s/dup.json", tmpdir);
    assert_int_equal(lg_scenario_load(&s, path, err, sizeof err), LG_EXIT_RUNTIME);
    lg_scenario_free(&s);
    write_file(tmpdir, "named.json", "{\"mix\": {\"recommend\": 1}}");
    snprintf(path, sizeof path, "%s/named.json", tmpdir);
    assert_int_equal(lg_scenario_load(&s, path, err, sizeof err), LG_EXIT_OK);
    assert_string_equal(s.name, "named");  /* the file's base name */
    assert_int_equal(s.users.count, 5000); /* the defaults */
    assert_int_equal(s.rec_k, 10);
    assert_int_equal(s.ev_batch, 10);
    lg_scenario_free(&s);
}

/* ---- (5) request bodies ------------------------------------------------------------- */

static int in_bundle(const lg_bundle_t *b, const char *id)
{
    for (size_t i = 0; i < b->nitems; i++)
        if (strcmp(b->ids[i], id) == 0)
            return 1;
    return 0;
}

static int str_in(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return 1;
    return 0;
}

/* features: exactly age (13..70), gender (F/M from the scenario) and
 * occupation (v0..v9: no values in the manifest, none in the scenario). */
static void check_features(json_t *f)
{
    assert_true(json_is_object(f));
    assert_int_equal(json_object_size(f), 3);
    json_t *age = json_object_get(f, "age");
    assert_true(json_is_integer(age));
    assert_in_range(json_integer_value(age), 13, 70);
    static const char *const g[] = {"F", "M"};
    assert_true(str_in(json_string_value(json_object_get(f, "gender")), g, 2));
    const char *occ = json_string_value(json_object_get(f, "occupation"));
    assert_non_null(occ);
    assert_true(occ[0] == 'v' && occ[1] >= '0' && occ[1] <= '9' && occ[2] == '\0');
}

/* context: device from the manifest's values, hour in the boundaries' span */
static void check_context(json_t *c)
{
    assert_true(json_is_object(c));
    assert_int_equal(json_object_size(c), 2);
    static const char *const d[] = {"mobile", "tv"};
    assert_true(str_in(json_string_value(json_object_get(c, "device")), d, 2));
    json_t *h = json_object_get(c, "hour");
    assert_true(json_is_integer(h));
    assert_in_range(json_integer_value(h), 5, 23);
}

static void check_item_list(const lg_bundle_t *b, json_t *a, size_t lo, size_t hi)
{
    assert_true(json_is_array(a));
    size_t n = json_array_size(a);
    assert_in_range(n, lo, hi);
    for (size_t i = 0; i < n; i++) {
        const char *id = json_string_value(json_array_get(a, i));
        assert_non_null(id);
        assert_true(in_bundle(b, id));
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(id, json_string_value(json_array_get(a, j)));
    }
}

static void test_request_bodies(void **state)
{
    (void)state;
    char err[1024], text[2048];
    snprintf(text, sizeof text,
             "{\"bundle\": \"%s/m\", \"mix\": {\"recommend\": 50, \"score\": 20, \"similar\": 10, "
             "\"events\": 20},"
             " \"users\": {\"count\": 40, \"prefix\": \"user-\", \"cold_pct\": 30},"
             " \"history\": {\"send_pct\": 50, \"median\": 4, \"sigma\": 1.0, \"max\": 8},"
             " \"recommend\": {\"k\": 5, \"candidates\": 20}, \"score\": {\"items\": 12},"
             " \"similar\": {\"k\": 7}, \"events\": {\"batch\": 3},"
             " \"features\": {\"gender\": [\"F\", \"M\"], \"age\": {\"min\": 13, \"max\": 70}}}",
             tmpdir);
    json_t *root = json_loads(text, 0, NULL);
    assert_non_null(root);
    lg_scenario_t s;
    lg_bundle_t b;
    lg_gen_t g;
    assert_int_equal(lg_scenario_from_json(&s, root, "t", err, sizeof err), 0);
    assert_int_equal(lg_scenario_bundle(&s, NULL, &b, err, sizeof err), 0);
    assert_int_equal(lg_gen_init(&g, &s, &b, 5, err, sizeof err), 0);
    assert_true(g.ranked_by_popularity);
    lg_request_t r = {0};
    lg_buf_t http = {0};
    size_t n = 20000, per_ep[LG_EP_COUNT] = {0}, cold = 0, warm_rec = 0, with_hist = 0;
    size_t item_hits[30] = {0};
    json_t *features_of = json_object(); /* user id → features text */
    const int64_t now = 1764201600;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(lg_gen_next(&g, &r, now), 0);
        per_ep[r.ep]++;
        /* the HTTP bytes: Content-Length matches the body */
        lg_buf_reset(&http);
        lg_request_http(&r, "127.0.0.1:80", &http);
        assert_true(strncmp(http.p, r.method, strlen(r.method)) == 0);
        if (r.body.len) {
            char want[64];
            snprintf(want, sizeof want, "Content-Length: %zu\r\n\r\n", r.body.len);
            const char *cl = strstr(http.p, want);
            assert_non_null(cl);
            assert_string_equal(cl + strlen(want), r.body.p);
        } else {
            assert_true(http.len > 4 && strcmp(http.p + http.len - 4, "\r\n\r\n") == 0);
        }
        if (r.ep == LG_EP_SIMILAR) {
            assert_string_equal(r.method, "GET");
            assert_int_equal(r.body.len, 0);
            assert_true(strncmp(r.path.p, "/v1/similar/", 12) == 0);
            const char *q = strstr(r.path.p, "?k=7");
            assert_non_null(q);
            assert_string_equal(q, "?k=7");
            /* the id is percent-encoded: only unreserved characters and %XX */
            for (const char *c = r.path.p + 12; c < q; c++)
                assert_true(strchr("-._~%", *c) || (*c >= '0' && *c <= '9') ||
                            (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z'));
            if (strncmp(r.path.p + 12, "q%22%5C%20x%2Fy?", 16) == 0)
                item_hits[29]++;
            continue;
        }
        assert_string_equal(r.method, "POST");
        json_error_t je;
        json_t *j = json_loads(r.body.p, 0, &je);
        if (!j)
            fail_msg("body does not parse (%s): %s", je.text, r.body.p);
        assert_null(strchr(r.body.p, '\n')); /* compact: one line for --dump */
        assert_null(strchr(r.body.p, '\t'));
        if (r.ep == LG_EP_EVENTS) {
            assert_string_equal(r.path.p, "/v1/events");
            assert_int_equal(json_object_size(j), 1);
            json_t *ev = json_object_get(j, "events");
            assert_int_equal(json_array_size(ev), 3);
            assert_int_equal(r.nevents, 3);
            for (size_t k = 0; k < 3; k++) {
                json_t *e = json_array_get(ev, k);
                const char *u = json_string_value(json_object_get(e, "user_id"));
                assert_true(u && strncmp(u, "user-", 5) == 0 && !strstr(u, "cold"));
                assert_in_range(atoi(u + 5), 0, 39);
                assert_true(in_bundle(&b, json_string_value(json_object_get(e, "item_id"))));
                const char *t = json_string_value(json_object_get(e, "type"));
                assert_true(str_in(t, lg_event_types, LG_EV_COUNT));
                json_t *v = json_object_get(e, "value");
                if (strcmp(t, "watch") == 0)
                    assert_in_range(json_integer_value(v), 1, 3600);
                else if (strcmp(t, "rating") == 0)
                    assert_in_range(json_integer_value(v), 1, 5);
                else
                    assert_null(v);
                assert_int_equal(json_integer_value(json_object_get(e, "ts")), now);
            }
            json_decref(j);
            continue;
        }
        const char *u = json_string_value(json_object_get(j, "user_id"));
        assert_non_null(u);
        assert_true(strncmp(u, "user-", 5) == 0);
        json_t *hist = json_object_get(j, "history");
        assert_int_equal(r.cold, strncmp(u, "user-cold-", 10) == 0);
        if (r.cold) {
            cold++;
            assert_null(hist);                            /* cold users have no history */
            assert_null(json_object_get(features_of, u)); /* fresh every time */
        } else {
            assert_in_range(atoi(u + 5), 0, 39);
        }
        check_features(json_object_get(j, "features"));
        check_context(json_object_get(j, "context"));
        /* same user, same features */
        char *ft = json_dumps(json_object_get(j, "features"), JSON_COMPACT | JSON_SORT_KEYS);
        json_t *seen = json_object_get(features_of, u);
        if (seen)
            assert_string_equal(json_string_value(seen), ft);
        else
            json_object_set_new(features_of, u, json_string(ft));
        free(ft);
        if (r.ep == LG_EP_RECOMMEND) {
            assert_string_equal(r.path.p, "/v1/recommend");
            assert_int_equal(json_integer_value(json_object_get(j, "k")), 5);
            assert_int_equal(json_integer_value(json_object_get(j, "candidates")), 20);
            assert_int_equal(json_object_size(j), 5 + (hist != NULL));
            if (!r.cold)
                warm_rec++;
            if (hist) {
                with_hist++;
                check_item_list(&b, hist, 1, 8);
                assert_int_equal(json_array_size(hist), r.nhistory);
                for (size_t k = 0; k < json_array_size(hist); k++)
                    if (strcmp(json_string_value(json_array_get(hist, k)), "i7") == 0)
                        item_hits[7]++;
            }
        } else {
            assert_string_equal(r.path.p, "/v1/score");
            assert_null(hist);
            check_item_list(&b, json_object_get(j, "items"), 12, 12);
        }
        json_decref(j);
    }
    /* the mix, cold share and history share, within a few standard errors */
    static const double mix[LG_EP_COUNT] = {0.5, 0.2, 0.1, 0.2, 0};
    for (int e = 0; e < LG_EP_COUNT; e++)
        assert_true(fabs((double)per_ep[e] / (double)n - mix[e]) < 0.02);
    double rs = (double)(per_ep[LG_EP_RECOMMEND] + per_ep[LG_EP_SCORE]);
    assert_true(fabs((double)cold / rs - 0.30) < 0.03);
    assert_true(fabs((double)with_hist / (double)warm_rec - 0.50) < 0.04);
    /* ranked by popularity: i7 (most popular) is in most histories */
    assert_true(item_hits[7] > with_hist / 4);
    assert_true(item_hits[29] > 0);
    json_decref(features_of);
    lg_buf_free(&http);
    lg_request_free(&r);
    lg_gen_free(&g);
    lg_bundle_free(&b);
    lg_scenario_free(&s);
    json_decref(root);
}

static void test_requests_deterministic(void **state)
{
    (void)state;
    char text[512], err[1024];
    snprintf(text, sizeof text,
             "{\"bundle\": \"%s/m\", \"mix\": {\"recommend\": 1, \"events\": 1}, \"items\": "
             "{\"by\": \"shuffle\"}}",
             tmpdir);
    json_t *root = json_loads(text, 0, NULL);
    lg_scenario_t s;
    lg_bundle_t b;
    lg_gen_t g1, g2, g3;
    assert_int_equal(lg_scenario_from_json(&s, root, "t", err, sizeof err), 0);
    assert_int_equal(lg_scenario_bundle(&s, NULL, &b, err, sizeof err), 0);
    assert_int_equal(lg_gen_init(&g1, &s, &b, 9, err, sizeof err), 0);
    assert_int_equal(lg_gen_init(&g2, &s, &b, 9, err, sizeof err), 0);
    assert_int_equal(lg_gen_init(&g3, &s, &b, 10, err, sizeof err), 0);
    assert_false(g1.ranked_by_popularity);
    lg_request_t a = {0}, c = {0}, d = {0};
    int differ = 0;
    for (int i = 0; i < 500; i++) {
        lg_gen_next(&g1, &a, 5);
        lg_gen_next(&g2, &c, 5);
        lg_gen_next(&g3, &d, 5);
        assert_string_equal(a.path.p, c.path.p);
        assert_string_equal(a.body.p, c.body.p);
        differ |= strcmp(a.body.p, d.body.p) != 0;
    }
    assert_true(differ);
    /* endpoints drawn ahead (at schedule time) and bodies built later (when
     * a connection takes them) give the same requests as lg_gen_next */
    lg_gen_t g4, g5;
    assert_int_equal(lg_gen_init(&g4, &s, &b, 11, err, sizeof err), 0);
    assert_int_equal(lg_gen_init(&g5, &s, &b, 11, err, sizeof err), 0);
    int eps[300];
    for (int i = 0; i < 300; i++)
        eps[i] = lg_gen_pick(&g5);
    for (int i = 0; i < 300; i++) {
        lg_gen_next(&g4, &a, 5);
        assert_int_equal(lg_gen_build(&g5, eps[i], &c, 5), 0);
        assert_int_equal(a.ep, eps[i]);
        assert_string_equal(a.path.p, c.path.p);
        assert_string_equal(a.body.p, c.body.p);
    }
    lg_gen_free(&g4);
    lg_gen_free(&g5);
    /* a user's features do not depend on the seed */
    lg_buf_t f1 = {0}, f3 = {0};
    lg_gen_user_features(&g1, "u17", &f1);
    lg_gen_user_features(&g3, "u17", &f3);
    assert_string_equal(f1.p, f3.p);
    lg_buf_free(&f1);
    lg_buf_free(&f3);
    lg_request_free(&a);
    lg_request_free(&c);
    lg_request_free(&d);
    lg_gen_free(&g1);
    lg_gen_free(&g2);
    lg_gen_free(&g3);
    lg_bundle_free(&b);
    lg_scenario_free(&s);
    json_decref(root);
}

static void test_json_and_url_escaping(void **state)
{
    (void)state;
    lg_buf_t b = {0};
    lg_buf_add_json_str(&b, "a\"b\\c\n\t\x01\xc3\xa9");
    assert_string_equal(b.p, "\"a\\\"b\\\\c\\n\\t\\u0001\xc3\xa9\"");
    json_t *j = json_loads(b.p, JSON_DECODE_ANY, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(j), "a\"b\\c\n\t\x01\xc3\xa9");
    json_decref(j);
    lg_buf_reset(&b);
    lg_buf_add_url(&b, "a b/c?d%\xc3\xa9~_.-");
    assert_string_equal(b.p, "a%20b%2Fc%3Fd%25%C3%A9~_.-");
    lg_buf_reset(&b);
    lg_buf_addi(&b, INT64_MIN);
    lg_buf_addc(&b, ' ');
    lg_buf_addu(&b, UINT64_MAX);
    assert_string_equal(b.p, "-9223372036854775808 18446744073709551615");
    lg_buf_free(&b);
}

/* ---- the response head parser ------------------------------------------------------- */

static void test_resp_head(void **state)
{
    (void)state;
    lg_resp_head_t h;
    const char *why;
    const char *ok = "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
                     "content-length:  17 \r\nConnection: keep-alive\r\n\r\n";
    assert_int_equal(lg_resp_parse_head(ok, strlen(ok), &h, &why), 0);
    assert_int_equal(h.status, 202);
    assert_int_equal(h.content_length, 17);
    assert_int_equal(h.close, 0);
    assert_int_equal(h.chunked, 0);
    const char *cl = "HTTP/1.1 503 Service Unavailable\r\nConnection: Close\r\n"
                     "Content-Length: 0\r\n\r\n";
    assert_int_equal(lg_resp_parse_head(cl, strlen(cl), &h, &why), 0);
    assert_int_equal(h.status, 503);
    assert_int_equal(h.close, 1);
    const char *h10 = "HTTP/1.0 200 OK\r\n\r\n";
    assert_int_equal(lg_resp_parse_head(h10, strlen(h10), &h, &why), 0);
    assert_int_equal(h.close, 1);
    assert_int_equal(h.content_length, -1);
    const char *h10k = "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n";
    assert_int_equal(lg_resp_parse_head(h10k, strlen(h10k), &h, &why), 0);
    assert_int_equal(h.close, 0);
    const char *ch = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
    assert_int_equal(lg_resp_parse_head(ch, strlen(ch), &h, &why), 0);
    assert_int_equal(h.chunked, 1);
    static const char *const bad[] = {
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 600 Nope\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        "ICY 200 OK\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (lg_resp_parse_head(bad[i], strlen(bad[i]), &h, &why) != -1)
            fail_msg("accepted a bad head: %s", bad[i]);
}

/* ---- the report's JSON keys ------------------------------------------------------------ */

static void test_report_json(void **state)
{
    (void)state;
    lg_report_t *r = lg_report_new();
    r->in_mix[LG_EP_RECOMMEND] = r->in_mix[LG_EP_EVENTS] = 1;
    r->duration_s = 2.0;
    r->target = "127.0.0.1:8080";
    for (int i = 0; i < 6; i++)
        lg_report_scheduled(r, i < 4 ? LG_EP_RECOMMEND : LG_EP_EVENTS, 0.1 * i);
    lg_report_outcome(r, LG_EP_RECOMMEND, LG_OUT_RESPONSE, 200, 900, 800, 0);
    lg_report_outcome(r, LG_EP_RECOMMEND, LG_OUT_RESPONSE, 503, 1000, 900, 0);
    lg_report_outcome(r, LG_EP_RECOMMEND, LG_OUT_TIMEOUT, 0, 0, 0, 0);
    lg_report_outcome(r, LG_EP_RECOMMEND, LG_OUT_NOT_SENT, 0, 0, 0, 0);
    lg_report_outcome(r, LG_EP_EVENTS, LG_OUT_RESPONSE, 202, 500, 400, 10);
    lg_report_outcome(r, LG_EP_EVENTS, LG_OUT_CONN_ERROR, 0, 0, 0, 10);
    json_t *j = lg_report_json(r);
    static const char *const keys[] = {"tool",        "version",         "target",
                                       "scenario",    "bundle",          "arrival",
                                       "seed",        "connections_max", "connections_opened",
                                       "offered_rps", "scheduled_rps",   "duration_s",
                                       "requests",    "throughput_rps",  "ok_rps",
                                       "latency_us",  "service_us",      "max_lag_us",
                                       "status",      "endpoints"};
    assert_int_equal(json_object_size(j), sizeof keys / sizeof keys[0]);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        assert_non_null(json_object_get(j, keys[i]));
    json_t *req = json_object_get(j, "requests");
    assert_int_equal(json_integer_value(json_object_get(req, "scheduled")), 6);
    assert_int_equal(json_integer_value(json_object_get(req, "sent")), 5);
    assert_int_equal(json_integer_value(json_object_get(req, "completed")), 3);
    assert_int_equal(json_integer_value(json_object_get(req, "ok")), 2);
    assert_int_equal(json_integer_value(json_object_get(req, "http_errors")), 1);
    assert_int_equal(json_integer_value(json_object_get(req, "timeouts")), 2);
    assert_int_equal(json_integer_value(json_object_get(req, "conn_errors")), 1);
    assert_int_equal(json_integer_value(json_object_get(req, "not_sent")), 1);
    assert_true(fabs(json_real_value(json_object_get(j, "throughput_rps")) - 1.5) < 1e-12);
    assert_true(fabs(json_real_value(json_object_get(j, "ok_rps")) - 1.0) < 1e-12);
    assert_true(fabs(json_real_value(json_object_get(j, "scheduled_rps")) - 10.0) < 1e-9);
    json_t *st = json_object_get(j, "status");
    assert_int_equal(json_integer_value(json_object_get(st, "200")), 1);
    assert_int_equal(json_integer_value(json_object_get(st, "202")), 1);
    assert_int_equal(json_integer_value(json_object_get(st, "503")), 1);
    json_t *eps = json_object_get(j, "endpoints");
    assert_int_equal(json_object_size(eps), 2);
    json_t *rec = json_object_get(eps, "recommend");
    assert_int_equal(json_integer_value(json_object_get(rec, "scheduled")), 4);
    assert_int_equal(json_integer_value(json_object_get(rec, "completed")), 2);
    assert_int_equal(json_integer_value(json_object_get(rec, "ok")), 1);
    assert_int_equal(json_integer_value(json_object_get(rec, "timeouts")), 2);
    assert_null(json_object_get(rec, "events_sent"));
    json_t *ev = json_object_get(eps, "events");
    assert_int_equal(json_integer_value(json_object_get(ev, "events_sent")), 10);
    json_decref(j);
    /* the table's warning line */
    r->max_lag_us = 25000;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    lg_report_table(r, f);
    fclose(f);
    assert_non_null(strstr(buf, "warning: the generator fell 25 ms behind its schedule"));
    assert_non_null(strstr(buf, "recommend"));
    assert_non_null(strstr(buf, "p99.9"));
    free(buf);
    lg_report_free(r);
}

int main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_hist_log_uniform),
        cmocka_unit_test(test_hist_tight_normal),
        cmocka_unit_test(test_arrival_constant_exact),
        cmocka_unit_test(test_arrival_poisson_rate),
        cmocka_unit_test(test_arrival_poisson_seeded),
        cmocka_unit_test(test_zipf_pmf),
        cmocka_unit_test(test_json_and_url_escaping),
        cmocka_unit_test(test_resp_head),
        cmocka_unit_test(test_report_json),
    };
    const struct CMUnitTest files[] = {
        cmocka_unit_test(test_scenario_errors),        cmocka_unit_test(test_bundle_errors),
        cmocka_unit_test(test_scenario_file),          cmocka_unit_test(test_request_bodies),
        cmocka_unit_test(test_requests_deterministic),
    };
    int rc = cmocka_run_group_tests_name("loadgen", pure, NULL, NULL);
    rc += cmocka_run_group_tests_name("loadgen_scenarios", files, group_setup, group_teardown);
    return rc;
}
