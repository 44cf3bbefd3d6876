/*
 * bench_ann: the ANN index types recd can serve, measured the way the
 * server uses them, to pick defaults by measurement (DESIGN §1).
 *
 * Catalog: N unit vectors of dimension 64 around 256 random unit centres
 * (Gaussian noise of norm ~--noise per vector, then normalised), queries
 * drawn the same way.
 * For each index: build time (FAISS's OpenMP on all cores, like a loader
 * thread with default settings), memory (recd_ann_bytes and the RSS delta
 * of the build), single-query latency p50/p99 (one query per call on one
 * thread with FAISS's OpenMP at one thread, as a recd worker does), and
 * recall@100 against the exact top-100 (computed with batched sgemm). The
 * floor to beat is plain OpenBLAS: one cblas_sgemv over the N x 64 matrix
 * per query plus a partial top-100 selection, single-threaded, timed the
 * same way.
 *
 *   bench_ann [--n 100000,1000000] [--big] [--hnsw-big] [--queries 1000]
 *             [--index flat,ivf,hnsw] [--noise 1.0] [--max-seconds 15]
 *
 * Default N list is 100000; --big adds 1000000 (about 3 minutes here);
 * HNSW at one million is skipped unless --hnsw-big (its build is slow on
 * Debian's generic FAISS). Environment: BENCH_ANN_N (same as --n),
 * BENCH_ANN_BIG=1. A row stops timing queries after --max-seconds and says
 * how many it ran.
 */
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "recd/ann.h"
#include "recd/core.h"

#define D 64
#define K 100
#define NCENTRES 256

static size_t nqueries = 1000;
static double max_seconds = 15.0;
static const char *only = "flat,ivf,hnsw"; /* which index rows */
static double noise = 1.0;                 /* noise norm per vector, relative to its unit centre */

/* ---- data --------------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

static double rng_gauss(void)
{
    double u = ((double)(rng_next() >> 11) + 0.5) / 9007199254740992.0;
    double v = (double)(rng_next() >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static void normalise(float *x)
{
    double s = 0;
    for (int j = 0; j < D; j++)
        s += (double)x[j] * x[j];
    s = 1.0 / sqrt(s);
    for (int j = 0; j < D; j++)
        x[j] = (float)(x[j] * s);
}

static float centres[NCENTRES * D];

static float *catalog(size_t n, uint64_t seed)
{
    float *x = malloc(n * D * sizeof(float));
    if (!x) {
        perror("malloc");
        exit(1);
    }
    rng_state = seed;
    double sigma = noise / sqrt((double)D);
    for (size_t i = 0; i < n; i++) {
        const float *c = centres + (rng_next() % NCENTRES) * D;
        for (int j = 0; j < D; j++)
            x[i * D + j] = c[j] + (float)(sigma * rng_gauss());
        normalise(x + i * D);
    }
    return x;
}

/* ---- top-k selection (min-heap of the best k) ------------------------------- */

typedef struct {
    float s;
    int64_t id;
} hit_t;

static void heap_down(hit_t *h, size_t k, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < k && h[l].s < h[m].s)
            m = l;
        if (l + 1 < k && h[l + 1].s < h[m].s)
            m = l + 1;
        if (m == i)
            return;
        hit_t t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static int hit_desc(const void *a, const void *b)
{
    const hit_t *x = a, *y = b;
    return x->s > y->s ? -1 : x->s < y->s;
}

/* Best K of scores[n] into ids (best first). */
static void topk(const float *scores, size_t n, int64_t *ids)
{
    hit_t h[K];
    for (size_t i = 0; i < K; i++)
        h[i] = (hit_t){-INFINITY, -1};
    for (size_t i = 0; i < n; i++)
        if (scores[i] > h[0].s) {
            h[0] = (hit_t){scores[i], (int64_t)i};
            heap_down(h, K, 0);
        }
    qsort(h, K, sizeof h[0], hit_desc);
    for (size_t i = 0; i < K; i++)
        ids[i] = h[i].id;
}

/* Exact top-K of every query: sgemm in blocks of queries (all cores). */
static void exact(const float *x, size_t n, const float *q, size_t nq, int64_t *ids)
{
    const size_t B = 64;
    float *s = malloc(B * n * sizeof(float));
    for (size_t i = 0; i < nq; i += B) {
        size_t b = nq - i < B ? nq - i : B;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)b, (int)n, D, 1.0f, q + i * D, D,
                    x, D, 0.0f, s, (int)n);
        for (size_t j = 0; j < b; j++)
            topk(s + j * n, n, ids + (i + j) * K);
    }
    free(s);
}

static double recall(const int64_t *truth, const int64_t *got, size_t nq)
{
    size_t hit = 0;
    for (size_t i = 0; i < nq; i++)
        for (size_t a = 0; a < K; a++)
            for (size_t b = 0; b < K; b++)
                if (truth[i * K + a] == got[i * K + b]) {
                    hit++;
                    break;
                }
    return (double)hit / (double)(nq * K);
}

/* ---- timing --------------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    size_t done;   /* queries timed */
    double p50_us; /* latency percentiles */
    double p99_us;
    double recall; /* over the timed queries */
} run_t;

static void summarise(uint64_t *lat, size_t done, const int64_t *truth, const int64_t *got,
                      run_t *r)
{
    qsort(lat, done, sizeof lat[0], cmp_u64);
    r->done = done;
    r->p50_us = lat[(done - 1) / 2] / 1e3;
    r->p99_us = lat[(size_t)((done - 1) * 0.99)] / 1e3;
    r->recall = recall(truth, got, done);
}

static void row(const char *name, const char *params, double build_s, size_t est, long rss,
                const run_t *r)
{
    char b[16], e[16], m[16];
    if (build_s >= 0)
        snprintf(b, sizeof b, "%.1f", build_s);
    else
        snprintf(b, sizeof b, "-");
    snprintf(e, sizeof e, est ? "%.0f" : "-", est / 1048576.0);
    snprintf(m, sizeof m, rss > -(1L << 40) ? "%.0f" : "-", rss / 1048576.0);
    printf("%-7s %-12s %8s %8s %8s %9.0f %9.0f %7.3f %6zu\n", name, params, b, e, m, r->p50_us,
           r->p99_us, r->recall, r->done);
    fflush(stdout);
}

/* ---- one catalog size ------------------------------------------------------------- */

static void bench_n(size_t n, int hnsw)
{
    float *x = catalog(n, 1000 + n);
    float *q = catalog(nqueries, 7);
    int64_t *truth = malloc(nqueries * K * sizeof(int64_t));
    int64_t *got = malloc(nqueries * K * sizeof(int64_t));
    uint64_t *lat = malloc(nqueries * sizeof(uint64_t));
    float sc[K];
    recd_err_t err = {0};

    uint64_t t0 = recd_time_mono_ns();
    exact(x, n, q, nqueries, truth);
    printf("\nN = %zu x %d (exact top-%d of %zu queries: %.1f s, sgemm on all cores)\n", n, D, K,
           nqueries, (recd_time_mono_ns() - t0) / 1e9);
    printf("%-7s %-12s %8s %8s %8s %9s %9s %7s %6s\n", "index", "params", "build_s", "est_MB",
           "rss_MB", "p50_us", "p99_us", "rec@100", "nq");

    /* floor: single-threaded sgemv + top-K, as recd would do without FAISS */
    openblas_set_num_threads(1);
    {
        float *s = malloc(n * sizeof(float));
        uint64_t start = recd_time_mono_ns();
        size_t i;
        for (i = 0; i < nqueries; i++) {
            uint64_t a = recd_time_mono_ns();
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, D, 1.0f, x, D, q + i * D, 1, 0.0f, s,
                        1);
            topk(s, n, got + i * K);
            lat[i] = recd_time_mono_ns() - a;
            if ((lat[i] + a - start) / 1e9 > max_seconds) {
                i++;
                break;
            }
        }
        run_t r;
        summarise(lat, i, truth, got, &r);
        row("sgemv", "1 thread", -1, 0, -(1L << 41), &r);
        free(s);
    }
    int sq = (int)(sqrt((double)n) * 4);
    int nlist = 1;
    while (nlist * 2 <= sq)
        nlist *= 2; /* power of two near 4*sqrt(N) */
    if (sq - nlist > nlist * 2 - sq)
        nlist *= 2;
    struct {
        const char *factory;
        int nprobe[2];
        int ef[2];
    } cases[3] = {
        {"Flat", {0, 0}, {0, 0}},
        {NULL, {8, 32}, {0, 0}},
        {"HNSW32", {0, 0}, {64, 128}},
    };
    char ivf[32];
    snprintf(ivf, sizeof ivf, "IVF%d,Flat", nlist);
    cases[1].factory = ivf;
    for (int c = 0; c < 3; c++) {
        static const char *tag[3] = {"flat", "ivf", "hnsw"};
        if (!strstr(only, tag[c]))
            continue;
        if (c == 2 && !hnsw) {
            printf("%-7s (skipped at this N; --hnsw-big runs it)\n", "HNSW32");
            continue;
        }
        recd_ann_spec_t spec;
        if (recd_ann_spec_parse(cases[c].factory, &spec, &err) != 0) {
            fprintf(stderr, "%s\n", err.msg);
            exit(1);
        }
        openblas_set_num_threads((int)sysconf(_SC_NPROCESSORS_ONLN));
        malloc_trim(0); /* so freed heap is not reused unseen by the RSS delta */
        uint64_t rss0 = recd_proc_rss_bytes();
        t0 = recd_time_mono_ns();
        recd_ann_t *a = recd_ann_build(&spec, x, n, D, &err);
        double build_s = (recd_time_mono_ns() - t0) / 1e9;
        malloc_trim(0); /* drop what the build freed: count what the index holds */
        long rss = (long)recd_proc_rss_bytes() - (long)rss0;
        if (!a) {
            fprintf(stderr, "build %s: %s\n", cases[c].factory, err.msg);
            exit(1);
        }
        openblas_set_num_threads(1);
        for (int v = 0; v < 2; v++) {
            char params[32] = "exact";
            if (c == 1) {
                spec.nprobe = cases[c].nprobe[v];
                snprintf(params, sizeof params, "nprobe=%d", spec.nprobe);
            } else if (c == 2) {
                spec.ef_search = cases[c].ef[v];
                snprintf(params, sizeof params, "efSearch=%d", spec.ef_search);
            }
            if (c != 0) {
                /* an index is immutable; search parameters come with
                 * build/load, so each setting is a load of the built
                 * index from a file, as a bundle would be served */
                char path[64];
                snprintf(path, sizeof path, "/tmp/bench_ann.%d.faiss", (int)getpid());
                if (v == 0 && recd_ann_save(a, path, &err) != 0) {
                    fprintf(stderr, "%s\n", err.msg);
                    exit(1);
                }
                recd_ann_t *b = recd_ann_load(path, &spec, n, D, &err);
                if (!b) {
                    fprintf(stderr, "%s\n", err.msg);
                    exit(1);
                }
                if (v == 1)
                    unlink(path);
                uint64_t start = recd_time_mono_ns();
                size_t i;
                for (i = 0; i < nqueries; i++) {
                    uint64_t s0 = recd_time_mono_ns();
                    if (recd_ann_search(b, q + i * D, 1, K, sc, got + i * K, &err) != 0) {
                        fprintf(stderr, "%s\n", err.msg);
                        exit(1);
                    }
                    lat[i] = recd_time_mono_ns() - s0;
                    if ((recd_time_mono_ns() - start) / 1e9 > max_seconds) {
                        i++;
                        break;
                    }
                }
                run_t r;
                summarise(lat, i, truth, got, &r);
                row(v == 0 ? (c == 1 ? "IVF" : "HNSW32") : "", params, v == 0 ? build_s : -1,
                    v == 0 ? recd_ann_bytes(a) : 0, v == 0 ? rss : -(1L << 41), &r);
                if (v == 0)
                    printf("        (%s)\n", cases[c].factory);
                recd_ann_free(b);
            } else {
                uint64_t start = recd_time_mono_ns();
                size_t i;
                for (i = 0; i < nqueries; i++) {
                    uint64_t s0 = recd_time_mono_ns();
                    if (recd_ann_search(a, q + i * D, 1, K, sc, got + i * K, &err) != 0) {
                        fprintf(stderr, "%s\n", err.msg);
                        exit(1);
                    }
                    lat[i] = recd_time_mono_ns() - s0;
                    if ((recd_time_mono_ns() - start) / 1e9 > max_seconds) {
                        i++;
                        break;
                    }
                }
                run_t r;
                summarise(lat, i, truth, got, &r);
                row("Flat", params, build_s, recd_ann_bytes(a), rss, &r);
                break; /* one row */
            }
        }
        recd_ann_free(a);
    }
    free(x), free(q), free(truth), free(got), free(lat);
}

int main(int argc, char **argv)
{
    const char *nlist_arg = getenv("BENCH_ANN_N");
    int big = getenv("BENCH_ANN_BIG") && atoi(getenv("BENCH_ANN_BIG")) > 0;
    int hnsw_big = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--n") && i + 1 < argc)
            nlist_arg = argv[++i];
        else if (!strcmp(argv[i], "--big"))
            big = 1;
        else if (!strcmp(argv[i], "--hnsw-big"))
            big = hnsw_big = 1;
        else if (!strcmp(argv[i], "--queries") && i + 1 < argc)
            nqueries = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--index") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--noise") && i + 1 < argc)
            noise = atof(argv[++i]);
        else if (!strcmp(argv[i], "--max-seconds") && i + 1 < argc)
            max_seconds = atof(argv[++i]);
        else {
            fprintf(stderr,
                    "usage: %s [--n N,N...] [--big] [--hnsw-big] [--queries Q] "
                    "[--index flat,ivf,hnsw] [--noise X] [--max-seconds S]\n",
                    argv[0]);
            return 2;
        }
    }
    if (nqueries < 1)
        nqueries = 1;
    size_t ns[16];
    int nn = 0;
    if (nlist_arg) {
        char *buf = strdup(nlist_arg), *save = NULL;
        for (char *t = strtok_r(buf, ",", &save); t && nn < 16; t = strtok_r(NULL, ",", &save))
            if (atol(t) > 0)
                ns[nn++] = (size_t)atol(t);
        free(buf);
    } else {
        ns[nn++] = 100000;
        if (big)
            ns[nn++] = 1000000;
    }

    char model[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "model name", 10)) {
                char *p = strchr(line, ':');
                if (p) {
                    snprintf(model, sizeof model, "%s", p + 2);
                    model[strcspn(model, "\n")] = 0;
                }
                break;
            }
        fclose(f);
    }
    printf("bench_ann: %ld CPUs (%s); FAISS via recd_ann (Debian libfaiss.a, generic build)\n"
           "data: d=%d, %d clusters, noise %.2f; k=%d; %zu single queries per row (<= %.0f s)\n",
           sysconf(_SC_NPROCESSORS_ONLN), model, D, NCENTRES, noise, K, nqueries, max_seconds);
    printf("build: FAISS OpenMP + OpenBLAS on all CPUs; search: one thread, one query per call\n");

    rng_state = 12345;
    for (int c = 0; c < NCENTRES; c++) {
        for (int j = 0; j < D; j++)
            centres[c * D + j] = (float)rng_gauss();
        normalise(centres + c * D);
    }
    for (int i = 0; i < nn; i++)
        bench_n(ns[i], ns[i] < 1000000 || hnsw_big);
    return 0;
}
