/*
 * recd ann: item-vector nearest-neighbour search on FAISS through its C API
 * (see include/recd/ann.h). Every FAISS failure is turned into a recd_err_t
 * at the call site, with faiss_get_last_error() copied at once (it is
 * thread-local and overwritten by the next failing call).
 *
 * Threads: an index is immutable after build/load; FAISS's search methods
 * on Flat, IVF and HNSW indexes only read the index (scratch state such as
 * HNSW's visited table is per call), so concurrent searches are safe. What
 * is set on an index (nprobe, efSearch, k-means seed, efConstruction) is set
 * before the index is published.
 *
 * OpenMP: FAISS parallelises search over queries (and HNSW/IVF scanning)
 * with OpenMP. recd's parallelism is its own worker threads, one query per
 * request, so every search first pins the calling thread's OpenMP team size
 * to one (recd_faissx_omp_single_thread): without that, each worker's
 * search would fork a team of nproc threads and the workers would
 * oversubscribe the CPUs. The setting is per thread in libgomp, which is
 * why it is done on the searching thread itself rather than once at
 * startup. Builds use whatever the calling thread's OpenMP setting is.
 */
#include "recd/ann.h"
#include "recd/nn.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/IndexIVFFlat_c.h>
#include <faiss/c_api/IndexIVF_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>

#include "faissx.h"

#define NLIST_MAX (1 << 22)      /* IVF lists: far above any sensible catalog */
#define HNSW_M_MAX 512           /* HNSW links per node (as recd-train synth accepts) */
#define EF_MAX 65536             /* efSearch / efConstruction */
#define DIM_MAX 65536            /* vector dimension */
#define DEFAULT_NPROBE 16        /* see recd_ann_spec_parse() */
#define DEFAULT_EF_SEARCH 64     /* see recd_ann_spec_parse() */
#define DEFAULT_KMEANS_SEED 1234 /* FAISS's ClusteringParameters default */
#define KMEANS_MIN_PER_LIST 39   /* FAISS warns below this many points per list */

struct recd_ann {
    FaissIndex *idx;      /* owned */
    recd_ann_spec_t spec; /* effective (nprobe clamped to nlist) */
    size_t n;             /* vectors */
    size_t d;             /* dimension */
    const float *xb;      /* Flat: the index's own [n, d] vectors, for flat_search */
};

/* Flat indexes answer single queries with one cblas_sgemv over the vectors
 * plus a bounded min-heap, not FAISS's own Flat search: FAISS only uses
 * BLAS from 20 queries up and its one-query path measured 2.4x slower than
 * sgemv on this generic (non-AVX2) build (make bench-ann). Same results:
 * exact inner products, best first. */
static void flat_bind(recd_ann_t *a)
{
    if (a->spec.kind != RECD_ANN_FLAT)
        return;
    FaissIndexFlat *f = faiss_IndexFlat_cast(a->idx);
    float *xb = NULL;
    size_t size = 0;
    if (f)
        faiss_IndexFlat_xb(f, &xb, &size);
    if (xb && size == a->n * a->d)
        a->xb = xb;
}

typedef struct hent {
    float s;
    int64_t id;
} hent_t;

/* "a ranks below b": lower score, or equal score and higher id */
static int below(const hent_t *a, const hent_t *b)
{
    return a->s < b->s || (a->s == b->s && a->id > b->id);
}

static void sift_down(hent_t *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && below(&h[l], &h[m]))
            m = l;
        if (r < n && below(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        hent_t t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static int flat_search(const recd_ann_t *a, const float *q, size_t k, float *scores,
                       int64_t *ids, recd_err_t *err)
{
    size_t n = a->n, kk = k < n ? k : n;
    float *all = malloc(n * sizeof *all);
    hent_t *h = malloc((kk ? kk : 1) * sizeof *h);
    if (!all || !h) {
        free(all);
        free(h);
        return recd_err_set(err, RECD_ENOMEM, "ann: out of memory");
    }
    recd_nn_matvec(a->xb, n, a->d, q, all);
    /* min-heap of the best kk: the root is the weakest kept */
    for (size_t i = 0; i < kk; i++)
        h[i] = (hent_t){all[i], (int64_t)i};
    for (size_t i = kk / 2; i-- > 0;)
        sift_down(h, kk, i);
    for (size_t i = kk; i < n; i++) {
        hent_t c = {all[i], (int64_t)i};
        if (below(&h[0], &c)) {
            h[0] = c;
            sift_down(h, kk, 0);
        }
    }
    /* pop weakest first into the tail: best first overall */
    for (size_t m = kk; m > 0; m--) {
        scores[m - 1] = h[0].s;
        ids[m - 1] = h[0].id;
        h[0] = h[m - 1];
        sift_down(h, m - 1, 0);
    }
    for (size_t i = kk; i < k; i++) {
        scores[i] = -INFINITY;
        ids[i] = -1;
    }
    free(all);
    free(h);
    return 0;
}

/* ---- errors ----------------------------------------------------------------- */

/* Fill err with "<context>: <FAISS message>" and return code. */
static int faiss_fail(recd_err_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int faiss_fail(recd_err_t *err, int code, const char *fmt, ...)
{
    const char *fe = faiss_get_last_error();
    char ctx[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    va_end(ap);
    if (fe && (strstr(fe, "bad_alloc") || strstr(fe, "std::length_error")))
        code = RECD_ENOMEM;
    return recd_err_set(err, code, "%s: %s", ctx, fe && *fe ? fe : "unknown FAISS error");
}

/* ---- spec ------------------------------------------------------------------- */

/* Parse a positive decimal integer <= max at *s; advance *s past it. */
static int parse_count(const char **s, long max, int *out)
{
    const char *p = *s;
    long v = 0;
    if (*p < '0' || *p > '9')
        return -1;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p - '0');
        if (v > max)
            return -1;
        p++;
    }
    if (v < 1)
        return -1;
    *out = (int)v;
    *s = p;
    return 0;
}

int recd_ann_spec_parse(const char *factory, recd_ann_spec_t *spec, recd_err_t *err)
{
    recd_ann_spec_t s = {
        .nprobe = DEFAULT_NPROBE,
        .ef_search = DEFAULT_EF_SEARCH,
        .ef_construction = 0,
        .kmeans_seed = DEFAULT_KMEANS_SEED,
    };
    if (!factory || !spec)
        return recd_err_set(err, RECD_EINVAL, "ann: no index factory string");
    const char *p = factory;
    if (strcmp(p, "Flat") == 0) {
        s.kind = RECD_ANN_FLAT;
    } else if (strncmp(p, "IVF", 3) == 0) {
        p += 3;
        if (parse_count(&p, NLIST_MAX, &s.nlist) != 0 || strcmp(p, ",Flat") != 0)
            goto bad;
        s.kind = RECD_ANN_IVF;
    } else if (strncmp(p, "HNSW", 4) == 0) {
        p += 4;
        if (parse_count(&p, HNSW_M_MAX, &s.M) != 0 || *p != '\0' || s.M < 2)
            goto bad;
        s.kind = RECD_ANN_HNSW;
    } else {
        goto bad;
    }
    *spec = s;
    return 0;
bad:
    return recd_err_set(err, RECD_EINVAL,
                        "ann: index \"%.64s\" is not one of Flat, IVF<nlist>,Flat (nlist 1..%d), "
                        "HNSW<M> (M 2..%d)",
                        factory, NLIST_MAX, HNSW_M_MAX);
}

const char *recd_ann_spec_factory(const recd_ann_spec_t *spec, char *buf, size_t cap)
{
    if (!spec)
        return "?";
    switch (spec->kind) {
    case RECD_ANN_FLAT: return "Flat";
    case RECD_ANN_IVF:
        if (!buf || cap == 0)
            return "IVF";
        snprintf(buf, cap, "IVF%d,Flat", spec->nlist);
        return buf;
    case RECD_ANN_HNSW:
        if (!buf || cap == 0)
            return "HNSW";
        snprintf(buf, cap, "HNSW%d", spec->M);
        return buf;
    }
    return "?";
}

/* Check a caller-filled spec (it may not come from recd_ann_spec_parse). */
static int spec_check(const recd_ann_spec_t *s, recd_err_t *err)
{
    if (!s)
        return recd_err_set(err, RECD_EINVAL, "ann: no index spec");
    switch (s->kind) {
    case RECD_ANN_FLAT: return 0;
    case RECD_ANN_IVF:
        if (s->nlist < 1 || s->nlist > NLIST_MAX)
            return recd_err_set(err, RECD_EINVAL, "ann: IVF nlist %d out of range 1..%d", s->nlist,
                                NLIST_MAX);
        if (s->nprobe < 1)
            return recd_err_set(err, RECD_EINVAL, "ann: IVF nprobe %d must be >= 1", s->nprobe);
        if (s->kmeans_seed > INT_MAX)
            return recd_err_set(err, RECD_EINVAL,
                                "ann: IVF kmeans_seed %llu out of range 0..%d (FAISS int seed)",
                                (unsigned long long)s->kmeans_seed, INT_MAX);
        return 0;
    case RECD_ANN_HNSW:
        if (s->M < 2 || s->M > HNSW_M_MAX)
            return recd_err_set(err, RECD_EINVAL, "ann: HNSW M %d out of range 2..%d", s->M,
                                HNSW_M_MAX);
        if (s->ef_search < 1 || s->ef_search > EF_MAX)
            return recd_err_set(err, RECD_EINVAL, "ann: HNSW efSearch %d out of range 1..%d",
                                s->ef_search, EF_MAX);
        if (s->ef_construction < 0 || s->ef_construction > EF_MAX)
            return recd_err_set(err, RECD_EINVAL,
                                "ann: HNSW efConstruction %d out of range 0..%d (0 = default)",
                                s->ef_construction, EF_MAX);
        return 0;
    }
    return recd_err_set(err, RECD_EINVAL, "ann: unknown index kind %d", (int)s->kind);
}

/* ---- build / load ----------------------------------------------------------- */

/* Set the search-time parameters of spec on a->idx; clamps nprobe. */
static int apply_search_params(recd_ann_t *a, recd_err_t *err)
{
    const char *name;
    double value;
    if (a->spec.kind == RECD_ANN_IVF) {
        if (a->spec.nprobe > a->spec.nlist)
            a->spec.nprobe = a->spec.nlist; /* visiting every list is exact */
        name = "nprobe";
        value = a->spec.nprobe;
    } else if (a->spec.kind == RECD_ANN_HNSW) {
        name = "efSearch";
        value = a->spec.ef_search;
    } else {
        return 0;
    }
    FaissParameterSpace *ps = NULL;
    if (faiss_ParameterSpace_new(&ps) != 0)
        return faiss_fail(err, RECD_ERR, "ann: faiss_ParameterSpace_new");
    int rc = faiss_ParameterSpace_set_index_parameter(ps, a->idx, name, value);
    faiss_ParameterSpace_free(ps);
    if (rc != 0)
        return faiss_fail(err, RECD_ERR, "ann: setting %s=%g", name, value);
    return 0;
}

static recd_ann_t *ann_new(const recd_ann_spec_t *spec, size_t n, size_t d, recd_err_t *err)
{
    recd_ann_t *a = calloc(1, sizeof *a);
    if (!a) {
        recd_err_set(err, RECD_ENOMEM, "ann: out of memory");
        return NULL;
    }
    a->spec = *spec;
    a->n = n;
    a->d = d;
    return a;
}

recd_ann_t *recd_ann_build(const recd_ann_spec_t *spec, const float *vecs, size_t n, size_t d,
                           recd_err_t *err)
{
    char fbuf[32];
    if (spec_check(spec, err) != 0)
        return NULL;
    const char *factory = recd_ann_spec_factory(spec, fbuf, sizeof fbuf);
    if (d < 1 || d > DIM_MAX) {
        recd_err_set(err, RECD_EINVAL, "ann: dimension %zu out of range 1..%d", d, DIM_MAX);
        return NULL;
    }
    /* FAISS ids and counts are int64; n * d floats must be addressable */
    if (n > (size_t)INT64_MAX / d / sizeof(float) || (n > 0 && !vecs)) {
        recd_err_set(err, RECD_EINVAL, "ann: bad vector matrix (%zu x %zu)", n, d);
        return NULL;
    }
    if (spec->kind == RECD_ANN_IVF && (size_t)spec->nlist > n) {
        recd_err_set(err, RECD_EINVAL,
                     "ann: %s needs at least nlist = %d vectors to train its k-means, "
                     "the catalog has %zu; use a smaller nlist (about 4*sqrt(n)) or Flat",
                     factory, spec->nlist, n);
        return NULL;
    }
    recd_ann_t *a = ann_new(spec, n, d, err);
    if (!a)
        return NULL;
    if (faiss_index_factory(&a->idx, (int)d, factory, METRIC_INNER_PRODUCT) != 0) {
        faiss_fail(err, RECD_ERR, "ann: faiss_index_factory(%d, \"%s\", inner product)", (int)d,
                   factory);
        goto fail;
    }
    if (spec->kind == RECD_ANN_IVF) {
        if (recd_faissx_ivf_set_kmeans_seed(a->idx, (int)spec->kmeans_seed) != 0) {
            recd_err_set(err, RECD_ERR, "ann: \"%s\" did not give an IVF index", factory);
            goto fail;
        }
        if (n < (size_t)spec->nlist * KMEANS_MIN_PER_LIST)
            recd_log_warn("ann: %s trained on %zu vectors, fewer than %d per list; lists will "
                          "be uneven (a smaller nlist is better)",
                          factory, n, KMEANS_MIN_PER_LIST);
    }
    if (spec->kind == RECD_ANN_HNSW && spec->ef_construction > 0 &&
        recd_faissx_hnsw_set_ef_construction(a->idx, spec->ef_construction) != 0) {
        recd_err_set(err, RECD_ERR, "ann: \"%s\" did not give an HNSW index", factory);
        goto fail;
    }
    /* IVF: k-means on all n vectors (FAISS subsamples above 256 per list) */
    if (!faiss_Index_is_trained(a->idx) && faiss_Index_train(a->idx, (idx_t)n, vecs) != 0) {
        faiss_fail(err, RECD_ERR, "ann: training %s on %zu x %zu vectors", factory, n, d);
        goto fail;
    }
    if (n > 0 && faiss_Index_add(a->idx, (idx_t)n, vecs) != 0) {
        faiss_fail(err, RECD_ERR, "ann: adding %zu x %zu vectors to %s", n, d, factory);
        goto fail;
    }
    if (apply_search_params(a, err) != 0)
        goto fail;
    flat_bind(a);
    return a;
fail:
    recd_ann_free(a);
    return NULL;
}

/* What a loaded index is, in spec terms; kind 0 when recd cannot use it. */
static void describe(FaissIndex *idx, recd_ann_spec_t *out)
{
    memset(out, 0, sizeof *out);
    FaissIndexIVF *ivf;
    int m;
    if (faiss_IndexFlat_cast(idx)) {
        out->kind = RECD_ANN_FLAT;
    } else if (faiss_IndexIVFFlat_cast(idx) && (ivf = faiss_IndexIVF_cast(idx))) {
        size_t nlist = faiss_IndexIVF_nlist(ivf);
        out->kind = RECD_ANN_IVF;
        out->nlist = nlist > INT_MAX ? INT_MAX : (int)nlist;
    } else if ((m = recd_faissx_hnsw_flat_m(idx)) > 0) {
        out->kind = RECD_ANN_HNSW;
        out->M = m;
    }
}

/* Check d and n in the file's header before FAISS reads the rest, so that
 * a mismatch is reported as such rather than as a short file. Every index
 * recd reads starts with a four-byte type code, then the header written by
 * FAISS's write_index_header: int32 d, int64 ntotal (little-endian x86).
 * Unknown type codes are left for FAISS to reject. */
static int peek_header(const char *path, size_t n, size_t d, recd_err_t *err)
{
    static const char known[][5] = {"IxFI", "IxF2", "IxFl", "IwFl", "IHNf"};
    unsigned char h[16];
    FILE *f = fopen(path, "rbe");
    if (!f)
        return recd_err_set(err, errno == ENOENT ? RECD_ENOENT : RECD_EIO, "%s: %s", path,
                            strerror(errno));
    size_t got = fread(h, 1, sizeof h, f);
    fclose(f);
    if (got < sizeof h)
        return 0; /* too short: the size check reports it */
    int ok = 0;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        ok |= memcmp(h, known[i], 4) == 0;
    if (!ok)
        return 0;
    int32_t fd;
    int64_t fn;
    memcpy(&fd, h + 4, sizeof fd);
    memcpy(&fn, h + 8, sizeof fn);
    if (fd < 0 || (size_t)fd != d)
        return recd_err_set(err, RECD_EINVAL, "%s: index dimension is %d, expected %zu", path,
                            (int)fd, d);
    if (fn < 0 || (uint64_t)fn != (uint64_t)n)
        return recd_err_set(err, RECD_EINVAL, "%s: index holds %lld vectors, expected %zu", path,
                            (long long)fn, n);
    return 0;
}

recd_ann_t *recd_ann_load(const char *path, const recd_ann_spec_t *spec, size_t n, size_t d,
                          recd_err_t *err)
{
    char want[32], got[32];
    struct stat st;
    if (spec_check(spec, err) != 0)
        return NULL;
    if (!path) {
        recd_err_set(err, RECD_EINVAL, "ann: no index file");
        return NULL;
    }
    if (d < 1 || d > DIM_MAX) {
        recd_err_set(err, RECD_EINVAL, "ann: dimension %zu out of range 1..%d", d, DIM_MAX);
        return NULL;
    }
    /* FAISS's own message for a missing file is an exception dump; say it plainly */
    if (stat(path, &st) != 0) {
        recd_err_set(err, errno == ENOENT ? RECD_ENOENT : RECD_EIO, "%s: %s", path,
                     strerror(errno));
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        recd_err_set(err, RECD_EIO, "%s: not a regular file", path);
        return NULL;
    }
    if (peek_header(path, n, d, err) != 0)
        return NULL;
    /* Every supported kind stores the n x d float32 vectors verbatim. A
     * shorter file is truncated; catching that here also avoids FAISS
     * 1.7.3's read_index, which leaks the half-read index when it throws. */
    if (n > (size_t)INT64_MAX / d / sizeof(float) ||
        (uint64_t)st.st_size < (uint64_t)n * d * sizeof(float)) {
        recd_err_set(err, RECD_EINVAL,
                     "%s: file is %lld bytes, too small for %zu x %zu float vectors (truncated?)",
                     path, (long long)st.st_size, n, d);
        return NULL;
    }
    recd_ann_t *a = ann_new(spec, n, d, err);
    if (!a)
        return NULL;
    if (faiss_read_index_fname(path, 0, &a->idx) != 0) {
        a->idx = NULL;
        faiss_fail(err, RECD_EINVAL, "%s: not a valid FAISS index file", path);
        goto fail;
    }
    FaissMetricType metric = faiss_Index_metric_type(a->idx);
    if (metric != METRIC_INNER_PRODUCT) {
        recd_err_set(err, RECD_EINVAL, "%s: index metric is %s, expected inner product", path,
                     metric == METRIC_L2 ? "L2" : "not inner product");
        goto fail;
    }
    if ((size_t)faiss_Index_d(a->idx) != d) {
        recd_err_set(err, RECD_EINVAL, "%s: index dimension is %d, expected %zu", path,
                     faiss_Index_d(a->idx), d);
        goto fail;
    }
    idx_t nt = faiss_Index_ntotal(a->idx);
    if (nt < 0 || (uint64_t)nt != (uint64_t)n) {
        recd_err_set(err, RECD_EINVAL, "%s: index holds %lld vectors, expected %zu", path,
                     (long long)nt, n);
        goto fail;
    }
    recd_ann_spec_t have;
    describe(a->idx, &have);
    if (have.kind == 0) {
        recd_err_set(err, RECD_EINVAL,
                     "%s: unsupported FAISS index type (recd reads Flat, IVF<nlist>,Flat "
                     "and HNSW<M> indexes)",
                     path);
        goto fail;
    }
    if (have.kind != spec->kind || have.nlist != (spec->kind == RECD_ANN_IVF ? spec->nlist : 0) ||
        have.M != (spec->kind == RECD_ANN_HNSW ? spec->M : 0)) {
        recd_err_set(err, RECD_EINVAL, "%s: index is %s, expected %s", path,
                     recd_ann_spec_factory(&have, got, sizeof got),
                     recd_ann_spec_factory(spec, want, sizeof want));
        goto fail;
    }
    if (!faiss_Index_is_trained(a->idx)) {
        recd_err_set(err, RECD_EINVAL, "%s: index is not trained", path);
        goto fail;
    }
    if (apply_search_params(a, err) != 0)
        goto fail;
    flat_bind(a);
    return a;
fail:
    recd_ann_free(a);
    return NULL;
}

int recd_ann_save(const recd_ann_t *a, const char *path, recd_err_t *err)
{
    if (!a || !path)
        return recd_err_set(err, RECD_EINVAL, "ann: save: no index or path");
    if (faiss_write_index_fname(a->idx, path) != 0)
        return faiss_fail(err, RECD_EIO, "%s: cannot write FAISS index", path);
    return 0;
}

/* ---- search ----------------------------------------------------------------- */

int recd_ann_search(const recd_ann_t *a, const float *q, size_t nq, size_t k, float *scores,
                    int64_t *ids, recd_err_t *err)
{
    if (nq == 0 || k == 0)
        return 0;
    if (!a || !q || !scores || !ids)
        return recd_err_set(err, RECD_EINVAL, "ann: search: NULL argument");
    if (k > (size_t)INT64_MAX / nq / sizeof(float) || nq > (size_t)INT64_MAX)
        return recd_err_set(err, RECD_EINVAL, "ann: search: %zu x %zu results too many", nq, k);
    size_t total = nq * k;
    if (a->n == 0) {
        for (size_t i = 0; i < total; i++) {
            ids[i] = -1;
            scores[i] = -INFINITY;
        }
        return 0;
    }
    if (a->xb && nq == 1)
        return flat_search(a, q, k, scores, ids, err);
    recd_faissx_omp_single_thread();
    /* int64_t and idx_t are the same type (faiss_c.h) */
    if (faiss_Index_search(a->idx, (idx_t)nq, q, (idx_t)k, scores, ids) != 0)
        return faiss_fail(err, RECD_ERR, "ann: search of %zu queries, k=%zu", nq, k);
    /* FAISS pads missing results with id -1 and -FLT_MAX */
    for (size_t i = 0; i < total; i++)
        if (ids[i] < 0)
            scores[i] = -INFINITY;
    return 0;
}

/* ---- accessors -------------------------------------------------------------- */

size_t recd_ann_dim(const recd_ann_t *a)
{
    return a ? a->d : 0;
}

size_t recd_ann_count(const recd_ann_t *a)
{
    return a ? a->n : 0;
}

const recd_ann_spec_t *recd_ann_get_spec(const recd_ann_t *a)
{
    return a ? &a->spec : NULL;
}

size_t recd_ann_bytes(const recd_ann_t *a)
{
    if (!a)
        return 0;
    size_t vec = a->n * a->d * sizeof(float);
    switch (a->spec.kind) {
    case RECD_ANN_FLAT: return vec;
    case RECD_ANN_IVF: {
        /* lists hold codes + int64 ids, grown one vector at a time, so a
         * std::vector's capacity slack of ~1.4x on average; plus centroids */
        size_t lists = vec + a->n * sizeof(int64_t);
        size_t per_list = 3 * 2 * sizeof(void *); /* two std::vector headers */
        return lists + lists * 2 / 5 + (size_t)a->spec.nlist * (a->d * sizeof(float) + per_list);
    }
    case RECD_ANN_HNSW: {
        /* 2M int32 links at level 0, M per upper level with 1/(M-1)
         * upper levels per node on average (about one more link); plus
         * offsets (size_t) and levels (int) per node */
        size_t M = (size_t)a->spec.M;
        size_t links = a->n * (2 * M + 1) * sizeof(int32_t);
        return vec + links + a->n * (sizeof(size_t) + sizeof(int));
    }
    }
    return vec;
}

void recd_ann_free(recd_ann_t *a)
{
    if (!a)
        return;
    if (a->idx)
        faiss_Index_free(a->idx);
    free(a);
}
