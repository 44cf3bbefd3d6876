/*
 * Unit tests for src/ann: exact Flat search against a brute-force reference
 * computed here, IVF and HNSW recall against it, factory-string parsing,
 * save/load round trips, load-time checks (dimension, count, kind, metric,
 * corrupt files), k > n padding and concurrent searches.
 *
 * Data: unit-norm points around 64 random unit centres (clustered, like
 * item embeddings), queries drawn the same way.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>

#include "recd/ann.h"

/* ---- deterministic data ------------------------------------------------------ */

static uint64_t rng_state;

static void rng_seed(uint64_t s)
{
    rng_state = s ? s : 0x9e3779b97f4a7c15ULL;
}

static uint64_t rng_next(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

static double rng_unit(void)
{
    return (double)(rng_next() >> 11) / 9007199254740992.0; /* [0, 1) */
}

static double rng_gauss(void)
{
    double u = rng_unit(), v = rng_unit();
    return sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

static void normalise(float *x, size_t d)
{
    double s = 0;
    for (size_t j = 0; j < d; j++)
        s += (double)x[j] * x[j];
    s = sqrt(s);
    for (size_t j = 0; j < d; j++)
        x[j] = (float)(x[j] / s);
}

#define NCENTRES 64

static double noise = 0.6; /* per-vector noise norm relative to the unit centre */

/* n unit vectors of dimension d: a centre plus noise/sqrt(d) per coordinate. */
static float *clustered(size_t n, size_t d, uint64_t seed)
{
    float *centres = malloc(NCENTRES * d * sizeof(float));
    float *x = malloc(n * d * sizeof(float));
    assert_non_null(centres);
    assert_non_null(x);
    rng_seed(42); /* same centres for data and queries */
    for (size_t c = 0; c < NCENTRES; c++) {
        for (size_t j = 0; j < d; j++)
            centres[c * d + j] = (float)rng_gauss();
        normalise(centres + c * d, d);
    }
    rng_seed(seed);
    double sigma = noise / sqrt((double)d);
    for (size_t i = 0; i < n; i++) {
        size_t c = rng_next() % NCENTRES;
        for (size_t j = 0; j < d; j++)
            x[i * d + j] = centres[c * d + j] + (float)(sigma * rng_gauss());
        normalise(x + i * d, d);
    }
    free(centres);
    return x;
}

/* ---- brute-force reference -------------------------------------------------- */

typedef struct {
    float s;
    int64_t id;
} hit_t;

static int hit_cmp(const void *a, const void *b)
{
    const hit_t *x = a, *y = b;
    if (x->s != y->s)
        return x->s > y->s ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static float dot(const float *a, const float *b, size_t d)
{
    double s = 0;
    for (size_t j = 0; j < d; j++)
        s += (double)a[j] * b[j];
    return (float)s;
}

/* Exact top-k (k <= n) of each query, best first. */
static void exact_topk(const float *x, size_t n, size_t d, const float *q, size_t nq, size_t k,
                       float *scores, int64_t *ids)
{
    hit_t *h = malloc(n * sizeof *h);
    assert_non_null(h);
    for (size_t i = 0; i < nq; i++) {
        for (size_t r = 0; r < n; r++) {
            h[r].s = dot(q + i * d, x + r * d, d);
            h[r].id = (int64_t)r;
        }
        qsort(h, n, sizeof *h, hit_cmp);
        for (size_t r = 0; r < k; r++) {
            scores[i * k + r] = h[r].s;
            ids[i * k + r] = h[r].id;
        }
    }
    free(h);
}

/* Fraction of the exact top-k ids found in the approximate top-k. */
static double recall(const int64_t *exact, const int64_t *got, size_t nq, size_t k)
{
    size_t found = 0;
    for (size_t i = 0; i < nq; i++)
        for (size_t a = 0; a < k; a++)
            for (size_t b = 0; b < k; b++)
                if (exact[i * k + a] == got[i * k + b]) {
                    found++;
                    break;
                }
    return (double)found / (double)(nq * k);
}

static recd_ann_t *build(const char *factory, const float *x, size_t n, size_t d)
{
    recd_ann_spec_t spec;
    recd_err_t err = {0};
    assert_int_equal(recd_ann_spec_parse(factory, &spec, &err), 0);
    recd_ann_t *a = recd_ann_build(&spec, x, n, d, &err);
    if (!a)
        fail_msg("build %s: %s", factory, err.msg);
    return a;
}

/* ---- temporary files ---------------------------------------------------------- */

static char tmpdir[64];

static int setup_tmp(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_ann.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *tmp_path(const char *name)
{
    static char p[128];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    return p;
}

/* ---- spec ------------------------------------------------------------------- */

static void test_spec_parse(void **state)
{
    recd_ann_spec_t s;
    recd_err_t err = {0};
    char buf[32];

    assert_int_equal(recd_ann_spec_parse("Flat", &s, &err), 0);
    assert_int_equal(s.kind, RECD_ANN_FLAT);
    assert_string_equal(recd_ann_spec_factory(&s, buf, sizeof buf), "Flat");

    assert_int_equal(recd_ann_spec_parse("IVF64,Flat", &s, &err), 0);
    assert_int_equal(s.kind, RECD_ANN_IVF);
    assert_int_equal(s.nlist, 64);
    assert_int_equal(s.nprobe, 16);
    assert_string_equal(recd_ann_spec_factory(&s, buf, sizeof buf), "IVF64,Flat");

    assert_int_equal(recd_ann_spec_parse("HNSW16", &s, &err), 0);
    assert_int_equal(s.kind, RECD_ANN_HNSW);
    assert_int_equal(s.M, 16);
    assert_int_equal(s.ef_search, 64);
    assert_int_equal(s.ef_construction, 0);
    assert_string_equal(recd_ann_spec_factory(&s, buf, sizeof buf), "HNSW16");

    const char *bad[] = {"IVF0,Flat", "IVF,Flat",
                         "HNSW",      "PQ8",
                         "",          "flat",
                         "Flat ",     "IVF64",
                         "IVF64,PQ8", "IVF-4,Flat",
                         "HNSW1",     "HNSW16x",
                         "HNSW1000",  "IVF99999999999999999999,Flat"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&err, 0, sizeof err);
        s.kind = RECD_ANN_FLAT;
        s.nlist = 7;
        if (recd_ann_spec_parse(bad[i], &s, &err) != RECD_EINVAL)
            fail_msg("\"%s\" accepted", bad[i]);
        assert_int_equal(err.code, RECD_EINVAL);
        assert_non_null(strstr(err.msg, "is not one of"));
        assert_int_equal(s.nlist, 7); /* untouched on failure */
    }
    assert_int_equal(recd_ann_spec_parse(NULL, &s, NULL), RECD_EINVAL);
}

static void test_spec_checked_at_build(void **state)
{
    float x[4 * 8] = {0};
    recd_err_t err = {0};
    recd_ann_spec_t s = {0}; /* kind 0: invalid */
    assert_null(recd_ann_build(&s, x, 4, 8, &err));
    assert_int_equal(err.code, RECD_EINVAL);
    assert_int_equal(recd_ann_spec_parse("HNSW8", &s, &err), 0);
    s.ef_search = 0;
    assert_null(recd_ann_build(&s, x, 4, 8, &err));
    assert_non_null(strstr(err.msg, "efSearch"));
    assert_int_equal(recd_ann_spec_parse("Flat", &s, &err), 0);
    assert_null(recd_ann_build(&s, x, 4, 0, &err));
    assert_non_null(strstr(err.msg, "dimension"));
}

/* ---- search quality ------------------------------------------------------------- */

static void test_flat_exact(void **state)
{
    const size_t n = 3000, d = 32, nq = 64, k = 20;
    float *x = clustered(n, d, 1), *q = clustered(nq, d, 2);
    float *es = malloc(nq * k * sizeof(float)), *fs = malloc(nq * k * sizeof(float));
    int64_t *ei = malloc(nq * k * sizeof(int64_t)), *fi = malloc(nq * k * sizeof(int64_t));
    recd_err_t err = {0};
    exact_topk(x, n, d, q, nq, k, es, ei);
    recd_ann_t *a = build("Flat", x, n, d);
    assert_int_equal(recd_ann_count(a), n);
    assert_int_equal(recd_ann_dim(a), d);
    assert_true(recd_ann_bytes(a) >= n * d * sizeof(float));
    assert_int_equal(recd_ann_search(a, q, nq, k, fs, fi, &err), 0);
    for (size_t i = 0; i < nq * k; i++) {
        assert_true(fabsf(fs[i] - es[i]) <= 1e-4f);
        if (fi[i] != ei[i]) {
            /* a tie: FAISS's id must score the same as the reference's */
            float s = dot(q + (i / k) * d, x + fi[i] * d, d);
            if (fabsf(s - es[i]) > 1e-4f)
                fail_msg("query %zu rank %zu: id %lld (%f), exact %lld (%f)", i / k, i % k,
                         (long long)fi[i], s, (long long)ei[i], es[i]);
        }
    }
    /* one query at a time (the server's pattern) gives the same */
    for (size_t i = 0; i < nq; i++) {
        float s1[20];
        int64_t i1[20];
        assert_int_equal(recd_ann_search(a, q + i * d, 1, k, s1, i1, &err), 0);
        for (size_t r = 0; r < k; r++) {
            assert_true(fabsf(s1[r] - fs[i * k + r]) <= 1e-5f);
            assert_true(i1[r] == fi[i * k + r] || fabsf(s1[r] - fs[i * k + r]) <= 1e-6f);
        }
    }
    recd_ann_free(a);
    free(x), free(q), free(es), free(fs), free(ei), free(fi);
}

static void check_recall(const char *factory, int nprobe, int ef, double min_recall)
{
    const size_t n = 5000, d = 32, nq = 200, k = 10;
    float *x = clustered(n, d, 3), *q = clustered(nq, d, 4);
    float *es = malloc(nq * k * sizeof(float)), *as = malloc(nq * k * sizeof(float));
    int64_t *ei = malloc(nq * k * sizeof(int64_t)), *ai = malloc(nq * k * sizeof(int64_t));
    recd_err_t err = {0};
    recd_ann_spec_t spec;
    exact_topk(x, n, d, q, nq, k, es, ei);
    assert_int_equal(recd_ann_spec_parse(factory, &spec, &err), 0);
    spec.nprobe = nprobe;
    spec.ef_search = ef;
    recd_ann_t *a = recd_ann_build(&spec, x, n, d, &err);
    if (!a)
        fail_msg("%s: %s", factory, err.msg);
    assert_true(recd_ann_bytes(a) > n * d * sizeof(float));
    for (size_t i = 0; i < nq; i++)
        assert_int_equal(recd_ann_search(a, q + i * d, 1, k, as + i * k, ai + i * k, &err), 0);
    double r = recall(ei, ai, nq, k);
    print_message("  %s nprobe=%d efSearch=%d: recall@10 %.3f\n", factory, nprobe, ef, r);
    if (r < min_recall)
        fail_msg("%s recall@10 %.3f < %.2f", factory, r, min_recall);
    /* reported scores are true inner products of the reported ids */
    for (size_t i = 0; i < nq * k; i++)
        assert_true(ai[i] < 0 || fabsf(as[i] - dot(q + (i / k) * d, x + ai[i] * d, d)) <= 1e-4f);
    recd_ann_free(a);
    free(x), free(q), free(es), free(as), free(ei), free(ai);
}

static void test_ivf_recall(void **state)
{
    noise = 1.2; /* diffuse clusters: nprobe matters */
    check_recall("IVF64,Flat", 4, 0, 0.9);
    check_recall("IVF64,Flat", 8, 0, 0.9);
    noise = 0.6;
}

static void test_hnsw_recall(void **state)
{
    noise = 1.2;
    check_recall("HNSW16", 0, 16, 0.9);
    check_recall("HNSW16", 0, 64, 0.9);
    noise = 0.6;
}

static void test_ivf_nlist_too_big_and_clamp(void **state)
{
    float *x = clustered(100, 8, 5);
    recd_err_t err = {0};
    recd_ann_spec_t s;
    assert_int_equal(recd_ann_spec_parse("IVF128,Flat", &s, &err), 0);
    assert_null(recd_ann_build(&s, x, 100, 8, &err));
    assert_int_equal(err.code, RECD_EINVAL);
    assert_non_null(strstr(err.msg, "IVF128,Flat needs at least nlist = 128 vectors"));
    assert_non_null(strstr(err.msg, "has 100"));
    /* nprobe beyond nlist is clamped: the search is then exhaustive */
    assert_int_equal(recd_ann_spec_parse("IVF4,Flat", &s, &err), 0);
    s.nprobe = 1000;
    recd_ann_t *a = recd_ann_build(&s, x, 100, 8, &err);
    assert_non_null(a);
    assert_int_equal(recd_ann_get_spec(a)->nprobe, 4);
    float sc[100], es[100];
    int64_t id[100], ei[100];
    assert_int_equal(recd_ann_search(a, x, 1, 100, sc, id, &err), 0);
    exact_topk(x, 100, 8, x, 1, 100, es, ei);
    for (size_t r = 0; r < 100; r++)
        assert_true(fabsf(sc[r] - es[r]) <= 1e-4f);
    recd_ann_free(a);
    free(x);
}

static void test_same_seed_same_index(void **state)
{
    const size_t n = 3000, d = 16, nq = 50, k = 10;
    float *x = clustered(n, d, 6), *q = clustered(nq, d, 7);
    float s1[50 * 10], s2[50 * 10];
    int64_t i1[50 * 10], i2[50 * 10];
    recd_err_t err = {0};
    recd_ann_spec_t s;
    assert_int_equal(recd_ann_spec_parse("IVF32,Flat", &s, &err), 0);
    s.nprobe = 2;
    s.kmeans_seed = 7;
    recd_ann_t *a = recd_ann_build(&s, x, n, d, &err);
    recd_ann_t *b = recd_ann_build(&s, x, n, d, &err);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(recd_ann_search(a, q, nq, k, s1, i1, &err), 0);
    assert_int_equal(recd_ann_search(b, q, nq, k, s2, i2, &err), 0);
    assert_memory_equal(i1, i2, sizeof i1);
    assert_memory_equal(s1, s2, sizeof s1);
    recd_ann_free(a);
    recd_ann_free(b);
    s.kmeans_seed = (uint64_t)INT32_MAX + 1;
    assert_null(recd_ann_build(&s, x, n, d, &err));
    assert_non_null(strstr(err.msg, "kmeans_seed"));
    free(x), free(q);
}

/* ---- k > n ----------------------------------------------------------------------- */

static void test_k_greater_than_n(void **state)
{
    const char *factories[] = {"Flat", "IVF2,Flat", "HNSW8"};
    float *x = clustered(5, 8, 8);
    recd_err_t err = {0};
    for (size_t f = 0; f < 3; f++) {
        recd_ann_spec_t s;
        assert_int_equal(recd_ann_spec_parse(factories[f], &s, &err), 0);
        s.nprobe = 2;
        recd_ann_t *a = recd_ann_build(&s, x, 5, 8, &err);
        assert_non_null(a);
        float sc[8];
        int64_t id[8];
        assert_int_equal(recd_ann_search(a, x + 8, 1, 8, sc, id, &err), 0);
        assert_int_equal(id[0], 1); /* itself */
        int seen = 0;
        for (int r = 0; r < 5; r++) {
            assert_true(id[r] >= 0 && id[r] < 5);
            assert_true(isfinite(sc[r]));
            seen |= 1 << id[r];
        }
        assert_int_equal(seen, 0x1f);
        for (int r = 5; r < 8; r++) {
            assert_int_equal(id[r], -1);
            assert_true(isinf(sc[r]) && sc[r] < 0);
        }
        /* nq == 0 or k == 0: nothing to do */
        assert_int_equal(recd_ann_search(a, x, 0, 8, sc, id, &err), 0);
        assert_int_equal(recd_ann_search(a, x, 1, 0, sc, id, &err), 0);
        recd_ann_free(a);
    }
    /* an empty Flat index answers with padding only */
    recd_ann_spec_t s;
    assert_int_equal(recd_ann_spec_parse("Flat", &s, &err), 0);
    recd_ann_t *a = recd_ann_build(&s, NULL, 0, 8, &err);
    assert_non_null(a);
    float sc[2];
    int64_t id[2];
    assert_int_equal(recd_ann_search(a, x, 1, 2, sc, id, &err), 0);
    assert_int_equal(id[0], -1);
    assert_int_equal(id[1], -1);
    recd_ann_free(a);
    free(x);
}

/* ---- save / load ------------------------------------------------------------------- */

static void round_trip(const char *factory)
{
    const size_t n = 3000, d = 16, nq = 40, k = 10;
    float *x = clustered(n, d, 9), *q = clustered(nq, d, 10);
    float s1[40 * 10], s2[40 * 10];
    int64_t i1[40 * 10], i2[40 * 10];
    recd_err_t err = {0};
    recd_ann_spec_t spec;
    assert_int_equal(recd_ann_spec_parse(factory, &spec, &err), 0);
    spec.nprobe = 4;
    spec.ef_search = 32;
    recd_ann_t *a = recd_ann_build(&spec, x, n, d, &err);
    assert_non_null(a);
    const char *path = tmp_path("rt.faiss");
    if (recd_ann_save(a, path, &err) != 0)
        fail_msg("save: %s", err.msg);
    recd_ann_t *b = recd_ann_load(path, &spec, n, d, &err);
    if (!b)
        fail_msg("load %s: %s", factory, err.msg);
    assert_memory_equal(recd_ann_get_spec(a), recd_ann_get_spec(b), sizeof(recd_ann_spec_t));
    assert_int_equal(recd_ann_search(a, q, nq, k, s1, i1, &err), 0);
    assert_int_equal(recd_ann_search(b, q, nq, k, s2, i2, &err), 0);
    assert_memory_equal(i1, i2, sizeof i1);
    assert_memory_equal(s1, s2, sizeof s1);
    /* search parameters come from the spec given to load, not the file */
    spec.nprobe = 1;
    spec.ef_search = 8;
    recd_ann_t *c = recd_ann_load(path, &spec, n, d, &err);
    assert_non_null(c);
    assert_int_equal(recd_ann_get_spec(c)->nprobe, 1);
    assert_int_equal(recd_ann_get_spec(c)->ef_search, 8);
    recd_ann_free(a);
    recd_ann_free(b);
    recd_ann_free(c);
    free(x), free(q);
}

static void test_round_trip_flat(void **state)
{
    round_trip("Flat");
}

static void test_round_trip_ivf(void **state)
{
    round_trip("IVF32,Flat");
}

static void test_round_trip_hnsw(void **state)
{
    round_trip("HNSW16");
}

/* Save an index of factory over n x d clustered vectors to name. */
static const char *saved(const char *factory, size_t n, size_t d, const char *name)
{
    float *x = clustered(n, d, 11);
    recd_ann_t *a = build(factory, x, n, d);
    recd_err_t err = {0};
    const char *p = tmp_path(name);
    assert_int_equal(recd_ann_save(a, p, &err), 0);
    recd_ann_free(a);
    free(x);
    return p;
}

static void expect_load_error(const char *path, const char *factory, size_t n, size_t d, int code,
                              const char *needle)
{
    recd_ann_spec_t spec;
    recd_err_t err = {0};
    assert_int_equal(recd_ann_spec_parse(factory, &spec, &err), 0);
    recd_ann_t *a = recd_ann_load(path, &spec, n, d, &err);
    if (a)
        fail_msg("%s loaded as %s n=%zu d=%zu", path, factory, n, d);
    if (err.code != code || !strstr(err.msg, needle) || !strstr(err.msg, path))
        fail_msg("load %s: code %d msg \"%s\", want %d with \"%s\"", path, err.code, err.msg, code,
                 needle);
}

static void test_load_mismatch(void **state)
{
    char flat[128], ivf[128], hnsw[128];
    snprintf(flat, sizeof flat, "%s", saved("Flat", 600, 16, "flat.faiss"));
    snprintf(ivf, sizeof ivf, "%s", saved("IVF8,Flat", 600, 16, "ivf.faiss"));
    snprintf(hnsw, sizeof hnsw, "%s", saved("HNSW16", 600, 16, "hnsw.faiss"));

    expect_load_error(flat, "Flat", 600, 32, RECD_EINVAL, "index dimension is 16, expected 32");
    expect_load_error(flat, "Flat", 599, 16, RECD_EINVAL, "index holds 600 vectors, expected 599");
    expect_load_error(flat, "Flat", 601, 16, RECD_EINVAL, "index holds 600 vectors, expected 601");
    expect_load_error(hnsw, "HNSW16", 600, 8, RECD_EINVAL, "index dimension is 16, expected 8");
    expect_load_error(ivf, "IVF8,Flat", 6000, 16, RECD_EINVAL, "holds 600 vectors, expected 6000");
    expect_load_error(flat, "IVF8,Flat", 600, 16, RECD_EINVAL, "index is Flat, expected IVF8,Flat");
    expect_load_error(ivf, "IVF16,Flat", 600, 16, RECD_EINVAL,
                      "index is IVF8,Flat, expected IVF16,Flat");
    expect_load_error(ivf, "HNSW16", 600, 16, RECD_EINVAL, "index is IVF8,Flat, expected HNSW16");
    expect_load_error(hnsw, "HNSW32", 600, 16, RECD_EINVAL, "index is HNSW16, expected HNSW32");
    expect_load_error(hnsw, "Flat", 600, 16, RECD_EINVAL, "index is HNSW16, expected Flat");

    /* an L2 index, written through the FAISS C API directly */
    FaissIndex *l2 = NULL;
    float *x = clustered(50, 16, 12);
    assert_int_equal(faiss_index_factory(&l2, 16, "Flat", METRIC_L2), 0);
    assert_int_equal(faiss_Index_add(l2, 50, x), 0);
    const char *l2path = tmp_path("l2.faiss");
    assert_int_equal(faiss_write_index_fname(l2, l2path), 0);
    faiss_Index_free(l2);
    free(x);
    expect_load_error(l2path, "Flat", 50, 16, RECD_EINVAL,
                      "index metric is L2, expected inner product");

    /* the right expectations load */
    recd_ann_spec_t spec;
    recd_err_t err = {0};
    assert_int_equal(recd_ann_spec_parse("HNSW16", &spec, &err), 0);
    recd_ann_t *a = recd_ann_load(hnsw, &spec, 600, 16, &err);
    assert_non_null(a);
    recd_ann_free(a);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void test_load_corrupt(void **state)
{
    const char *good = saved("IVF8,Flat", 600, 16, "good.faiss");
    char goodp[128];
    snprintf(goodp, sizeof goodp, "%s", good);
    FILE *f = fopen(goodp, "rb");
    assert_non_null(f);
    static unsigned char buf[1 << 20];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_true(len > 600 * 16 * 4);

    /* garbage of the right size: FAISS rejects the header */
    char p[128];
    static unsigned char junk[sizeof buf];
    rng_seed(99);
    for (size_t i = 0; i < len; i++)
        junk[i] = (unsigned char)rng_next();
    snprintf(p, sizeof p, "%s", tmp_path("garbage.faiss"));
    write_file(p, junk, len);
    expect_load_error(p, "IVF8,Flat", 600, 16, RECD_EINVAL, "not a valid FAISS index file");
    /* a valid header with a wrong type code */
    memcpy(junk, buf, len);
    memcpy(junk, "IxQQ", 4);
    write_file(p, junk, len);
    expect_load_error(p, "IVF8,Flat", 600, 16, RECD_EINVAL, "not a valid FAISS index file");

    /* truncated files are refused before FAISS reads them (FAISS 1.7.3
     * leaks a half-read index when read_index throws) */
    snprintf(p, sizeof p, "%s", tmp_path("truncated.faiss"));
    write_file(p, buf, len / 2);
    expect_load_error(p, "IVF8,Flat", 600, 16, RECD_EINVAL, "too small for 600 x 16");

    snprintf(p, sizeof p, "%s", tmp_path("empty.faiss"));
    write_file(p, buf, 0);
    expect_load_error(p, "IVF8,Flat", 600, 16, RECD_EINVAL, "file is 0 bytes");

    snprintf(p, sizeof p, "%s", tmp_path("missing.faiss"));
    expect_load_error(p, "IVF8,Flat", 600, 16, RECD_ENOENT, "No such file");
    expect_load_error(tmpdir, "IVF8,Flat", 600, 16, RECD_EIO, "not a regular file");

    /* save into a directory that does not exist */
    float *x = clustered(10, 4, 1);
    recd_ann_t *a = build("Flat", x, 10, 4);
    recd_err_t err = {0};
    snprintf(p, sizeof p, "%s/no/such/dir.faiss", tmpdir);
    assert_int_equal(recd_ann_save(a, p, &err), RECD_EIO);
    assert_non_null(strstr(err.msg, "cannot write FAISS index"));
    recd_ann_free(a);
    free(x);
}

/* ---- threads ----------------------------------------------------------------------- */

#define TQ 200
#define TK 10
#define TD 32

typedef struct {
    const recd_ann_t *a;
    const float *q;
    size_t no; /* worker number */
    float s[TQ * TK];
    int64_t id[TQ * TK];
    int rc;
} worker_t;

static void *worker(void *arg)
{
    worker_t *w = arg;
    recd_err_t err = {0};
    w->rc = 0;
    /* each thread walks the queries in a different order */
    for (size_t j = 0; j < TQ; j++) {
        size_t i = (j * 7 + w->no) % TQ;
        if (recd_ann_search(w->a, w->q + i * TD, 1, TK, w->s + i * TK, w->id + i * TK, &err))
            w->rc = -1;
    }
    return NULL;
}

static void concurrent(const char *factory)
{
    const size_t n = 4000;
    float *x = clustered(n, TD, 13), *q = clustered(TQ, TD, 14);
    recd_ann_t *a = build(factory, x, n, TD);
    static worker_t serial, w[4];
    recd_err_t err = {0};
    for (size_t i = 0; i < TQ; i++)
        assert_int_equal(
            recd_ann_search(a, q + i * TD, 1, TK, serial.s + i * TK, serial.id + i * TK, &err), 0);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i].a = a;
        w[i].q = q;
        w[i].no = (size_t)i;
        assert_int_equal(pthread_create(&t[i], NULL, worker, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(w[i].rc, 0);
        assert_memory_equal(w[i].id, serial.id, sizeof serial.id);
        assert_memory_equal(w[i].s, serial.s, sizeof serial.s);
    }
    recd_ann_free(a);
    free(x), free(q);
}

static void test_concurrent_flat(void **state)
{
    concurrent("Flat");
}

static void test_concurrent_ivf(void **state)
{
    concurrent("IVF32,Flat");
}

static void test_concurrent_hnsw(void **state)
{
    concurrent("HNSW16");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_parse),
        cmocka_unit_test(test_spec_checked_at_build),
        cmocka_unit_test(test_flat_exact),
        cmocka_unit_test(test_ivf_recall),
        cmocka_unit_test(test_hnsw_recall),
        cmocka_unit_test(test_ivf_nlist_too_big_and_clamp),
        cmocka_unit_test(test_same_seed_same_index),
        cmocka_unit_test(test_k_greater_than_n),
        cmocka_unit_test(test_round_trip_flat),
        cmocka_unit_test(test_round_trip_ivf),
        cmocka_unit_test(test_round_trip_hnsw),
        cmocka_unit_test(test_load_mismatch),
        cmocka_unit_test(test_load_corrupt),
        cmocka_unit_test(test_concurrent_flat),
        cmocka_unit_test(test_concurrent_ivf),
        cmocka_unit_test(test_concurrent_hnsw),
    };
    return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
