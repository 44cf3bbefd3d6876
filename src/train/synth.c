/*
 * Synthetic model generator: a complete recd-bundle/1 with constructed
 * (not trained) weights that nevertheless behave like a model.
 *
 * Latent structure. T = round(sqrt(N)) topics (at most the smallest tower
 * hidden size, at most N). Topic t has
 *   g_t  a unit "history code" in R^E       (what cand.hist_emb rows carry)
 *   c_t  a unit centroid in R^D              (what cand.item_emb rows carry)
 *   a primary and a secondary genre, and a centre year.
 * Item i of topic t gets
 *   cand.item_emb[i] = normalise(c_t + 0.5 n),  n ~ N(0, I/D)
 *   cand.hist_emb[i] = g_t + 0.5 n',            n' ~ N(0, I/E)
 *   genres mostly drawn from the topic's two genres, year near its centre.
 *
 * The tower (every layer relu(x @ w + b), FORMAT.md) is a bank of topic
 * detectors. Hidden unit t < T of the first layer computes
 *   relu(GAIN * (<g_t, mean history> - THRESHOLD)),
 * which fires when the history leans towards topic t; later hidden layers
 * pass units t < T through unchanged (identity weights on non-negative
 * inputs), and row t of the last layer is c_t, so the user vector is
 *   u = relu(sum_t h_t c_t + b)
 * For a history concentrated on topic t this is about h_t relu(c_t), whose
 * inner product with items of topic t is about h_t |relu(c_t)|^2 = h_t / 2,
 * against a spread of about h_t sqrt(0.5 / D) for unrelated items. The
 * final ReLU is why u is compared with relu(c_t): only the positive half of
 * a centroid can be expressed, and that half alone separates the topics.
 * The bias b is a small multiple of relu(popularity-weighted mean item
 * vector), so a user no detector recognises still gets a sensible,
 * popularity-leaning vector instead of zero. The remaining hidden units and
 * the user-field inputs carry small random weights: user features nudge
 * the result without drowning the topic signal.
 *
 * Determinism: xoshiro256** streams seeded through splitmix64, one stream
 * per concern (so changing one part never reshuffles another), Gaussian
 * draws from a sum of four uniforms (no libm transcendental functions,
 * whose last bit differs between libm versions), accumulation in double in
 * a fixed order. Ranker weights are small random values.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "recd/ann.h"
#include "recd/core.h"
#include "recd/model.h"
#include "recd/train.h"

#define DETECT_GAIN 4.0      /* first-layer scale of a topic detector */
#define DETECT_THRESHOLD 0.3 /* cosine with the topic code below which it stays silent */
#define ITEM_NOISE 0.5       /* relative noise of an item vector around its centroid */
#define HIST_NOISE 0.5       /* relative noise of a history embedding around its code */
#define POP_BIAS 0.1         /* weight of the popularity direction in the last bias */
#define CROSS_BUCKETS 10000  /* Wide&Deep cross hash space */

/* ---- PRNG --------------------------------------------------------------------------- */

/* The shared xoshiro256** (recd/core.h): stream S_* of the seed per purpose,
 * bounded draws by recd_rng_below_fast (one draw each). */

/* Approximately standard normal: the sum of four uniforms, centred and
 * scaled to unit variance (tails end at +-3.46, harmless for weights). */
static double gauss_sum4(recd_rng_t *r)
{
    double s = recd_rng_unit(r); /* one statement per draw: a fixed order */
    s += recd_rng_unit(r);
    s += recd_rng_unit(r);
    s += recd_rng_unit(r);
    return (s - 2.0) * 1.7320508075688772;
}

enum {
    S_TOPICS = 1, /* topic codes, centroids, genres, years */
    S_ASSIGN,     /* item -> topic */
    S_ITEMS,      /* item genres and years */
    S_POP,        /* popularity ranks */
    S_ITEM_EMB,   /* item vector noise */
    S_HIST_EMB,   /* history embedding noise */
    S_CAND_FIELD, /* candidate user-field tables */
    S_TOWER,      /* tower's random parts */
    S_RANK,       /* ranker */
};

/* ---- schema constants ---------------------------------------------------------------- */



static const char *const DEVICES[] = {"mobile", "desktop", "tablet", "tv"};

/* Feature fields in manifest order. */
typedef struct field_def {
    const char *name;
    const char *source;
    uint64_t buckets; /* 0 = 2 * n_items (item_id) */
} field_def_t;

static const field_def_t FIELDS[] = {
    {"user_id", "user", 100000}, {"age", "user", 16},       {"gender", "user", 8},
    {"occupation", "user", 64},  {"item_id", "item", 0},    {"genres", "item", 64},
    {"year", "item", 32},        {"device", "context", 16}, {"hour", "context", 16},
};
#define NFIELDS 9
#define NUSER_FIELDS 4 /* the first four are the user fields */

static const char *const CROSSES[][2] = {{"age", "genres"},
                                         {"gender", "genres"},
                                         {"occupation", "genres"},
                                         {"device", "genres"},
                                         {"age", "year"}};
#define NCROSSES 5

/* ---- options -------------------------------------------------------------------------- */

void recd_train_synth_defaults(recd_synth_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->models_dir = "models";
    o->name = "default";
    o->version = 1;
    o->n_items = 20000;
    o->dim = 64;
    o->embed_dim = 32;
    o->hidden[0] = 256;
    o->nhidden = 1;
    o->rank_embed_dim = 16;
    o->rank_hidden[0] = 256;
    o->rank_hidden[1] = 128;
    o->rank_hidden[2] = 64;
    o->nrank_hidden = 3;
    o->history_max_len = 50;
    o->seed = 1;
    o->ranker = RECD_RANKER_DEEPFM;
    o->index = NULL; /* chosen from n_items: recd_train_synth_default_index() */
    /* measured on this generic FAISS build (make bench-ann): IVF at nprobe
     * 32 keeps recall@100 at 1.000 on clustered 100k and 1M catalogs where
     * nprobe 8 fell to 0.73 at 1M; HNSW needs a beam of >= 128 */
    o->nprobe = 32;
    o->ef_search = 128;
    o->write_index_file = 1;
}

const char *recd_train_synth_default_index(size_t n_items, char *buf, size_t cap)
{
    /* Flat is exact, needs no training and answers in ~0.5 ms at 20k items
     * and 2-3 ms at 100k on one core; past ~50k an IVF index with nlist the
     * power of two nearest 4*sqrt(n) is ~10x faster at the same recall
     * (make bench-ann). */
    if (n_items <= 50000) {
        snprintf(buf, cap, "Flat");
        return buf;
    }
    double target = 4.0 * sqrt((double)n_items);
    size_t nlist = 1;
    while ((double)(nlist * 2) <= target)
        nlist *= 2;
    if ((double)(nlist * 2) - target < target - (double)nlist)
        nlist *= 2;
    snprintf(buf, cap, "IVF%zu,Flat", nlist);
    return buf;
}

typedef struct index_def {
    int kind;   /* 0 Flat, 1 IVF, 2 HNSW */
    long param; /* nlist or M */
} index_def_t;

/* "Flat" | "IVF<nlist>,Flat" | "HNSW<M>"; the exact spelling FAISS's
 * index_factory accepts, digits only. */
static int parse_index(const char *s, index_def_t *d)
{
    const char *p;
    if (strcmp(s, "Flat") == 0) {
        d->kind = 0;
        d->param = 0;
        return 0;
    }
    if (strncmp(s, "IVF", 3) == 0) {
        d->kind = 1;
        p = s + 3;
    } else if (strncmp(s, "HNSW", 4) == 0) {
        d->kind = 2;
        p = s + 4;
    } else {
        return -1;
    }
    if (*p < '1' || *p > '9')
        return -1;
    long v = 0;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p++ - '0');
        if (v > 1000000000L)
            return -1;
    }
    if (d->kind == 1 ? strcmp(p, ",Flat") != 0 : *p != '\0')
        return -1;
    d->param = v;
    return 0;
}

static size_t topic_count(const recd_synth_opts_t *o)
{
    size_t t = 1;
    while ((t + 1) * (t + 1) <= o->n_items) /* floor(sqrt(N)) without libm */
        t++;
    if (o->n_items - t * t > t) /* round: N >= (t + 1/2)^2 = t^2 + t + 1/4 */
        t++;
    size_t hmin = o->nhidden ? o->hidden[0] : 1;
    for (size_t i = 1; i < o->nhidden; i++)
        if (o->hidden[i] < hmin)
            hmin = o->hidden[i];
    if (t > hmin)
        t = hmin;
    if (t > o->n_items)
        t = o->n_items;
    return t ? t : 1;
}

static int validate(const recd_synth_opts_t *o, index_def_t *idx, recd_err_t *err)
{
    if (!o->models_dir || !*o->models_dir)
        return recd_err_set(err, RECD_EINVAL, "models directory: empty");
    if (!o->name || !*o->name)
        return recd_err_set(err, RECD_EINVAL, "name: empty");
    if (o->version < 1)
        return recd_err_set(err, RECD_EINVAL, "version: must be a positive integer");
    if (o->n_items < 1 || o->n_items > 100000000)
        return recd_err_set(err, RECD_EINVAL, "items: %zu is not in 1..100000000", o->n_items);
    if (o->dim < 1 || o->dim > 4096)
        return recd_err_set(err, RECD_EINVAL, "dim: %zu is not in 1..4096", o->dim);
    if (o->embed_dim < 1 || o->embed_dim > 4096)
        return recd_err_set(err, RECD_EINVAL, "embed: %zu is not in 1..4096", o->embed_dim);
    if (o->rank_embed_dim < 1 || o->rank_embed_dim > 1024)
        return recd_err_set(err, RECD_EINVAL, "rank embed: %zu is not in 1..1024",
                            o->rank_embed_dim);
    if (o->nhidden < 1 || o->nhidden > RECD_SYNTH_MAX_LAYERS)
        return recd_err_set(err, RECD_EINVAL, "hidden: 1..%d layer sizes", RECD_SYNTH_MAX_LAYERS);
    for (size_t i = 0; i < o->nhidden; i++)
        if (o->hidden[i] < 1 || o->hidden[i] > 65536)
            return recd_err_set(err, RECD_EINVAL, "hidden: size %zu is not in 1..65536",
                                o->hidden[i]);
    if (o->nrank_hidden < 1 || o->nrank_hidden > RECD_SYNTH_MAX_LAYERS)
        return recd_err_set(err, RECD_EINVAL, "rank hidden: 1..%d layer sizes",
                            RECD_SYNTH_MAX_LAYERS);
    for (size_t i = 0; i < o->nrank_hidden; i++)
        if (o->rank_hidden[i] < 1 || o->rank_hidden[i] > 65536)
            return recd_err_set(err, RECD_EINVAL, "rank hidden: size %zu is not in 1..65536",
                                o->rank_hidden[i]);
    if (o->history_max_len < 1 || o->history_max_len > 100000)
        return recd_err_set(err, RECD_EINVAL, "history max_len: %zu is not in 1..100000",
                            o->history_max_len);
    if (o->seed > (uint64_t)INT64_MAX)
        return recd_err_set(err, RECD_EINVAL, "seed: must be at most %lld", (long long)INT64_MAX);
    if (o->ranker != RECD_RANKER_DEEPFM && o->ranker != RECD_RANKER_WIDE_DEEP)
        return recd_err_set(err, RECD_EINVAL, "ranker: must be deepfm or wide_deep");
    if (!o->index || parse_index(o->index, idx) != 0)
        return recd_err_set(err, RECD_EINVAL, "index: '%s' is not Flat, IVF<nlist>,Flat or HNSW<M>",
                            o->index ? o->index : "");
    if (idx->kind == 1 && (size_t)idx->param > o->n_items)
        return recd_err_set(err, RECD_EINVAL, "index: %s needs at least %ld items (have %zu)",
                            o->index, idx->param, o->n_items);
    if (idx->kind == 2 && (idx->param < 2 || idx->param > 512))
        return recd_err_set(err, RECD_EINVAL, "index: HNSW M=%ld is not in 2..512", idx->param);
    if (o->nprobe < 1 || o->nprobe > 1000000)
        return recd_err_set(err, RECD_EINVAL, "nprobe: %d is not in 1..1000000", o->nprobe);
    if (o->ef_search < 1 || o->ef_search > 1000000)
        return recd_err_set(err, RECD_EINVAL, "ef-search: %d is not in 1..1000000", o->ef_search);
    return 0;
}

/* ---- topic structure --------------------------------------------------------------------- */

size_t recd_train_synth_topics(const recd_synth_opts_t *o, uint32_t *topic)
{
    size_t T = topic_count(o);
    if (topic) {
        recd_rng_t r;
        recd_rng_seed_stream(&r, o->seed, S_ASSIGN);
        for (size_t i = 0; i < o->n_items; i++)
            topic[i] = recd_rng_below_fast(&r, (uint32_t)T);
    }
    return T;
}

typedef struct topics {
    size_t T;
    double *code;         /* [T, E] unit rows */
    double *centroid;     /* [T, D] unit rows */
    int *genre1, *genre2; /* primary, secondary genre */
    int *year;            /* centre year */
} topics_t;

/* Fill v[n] with N(0, 1) draws and scale to unit length. */
static void unit_vector(recd_rng_t *r, double *v, size_t n)
{
    double ss = 0;
    for (size_t j = 0; j < n; j++) {
        v[j] = gauss_sum4(r);
        ss += v[j] * v[j];
    }
    double inv = ss > 0 ? 1.0 / sqrt(ss) : 0;
    for (size_t j = 0; j < n; j++)
        v[j] *= inv;
}

static void topics_free(topics_t *tp)
{
    free(tp->code);
    free(tp->centroid);
    free(tp->genre1);
    free(tp->genre2);
    free(tp->year);
}

static int topics_make(const recd_synth_opts_t *o, topics_t *tp)
{
    size_t T = topic_count(o), E = o->embed_dim, D = o->dim;
    memset(tp, 0, sizeof *tp);
    tp->T = T;
    tp->code = malloc(T * E * sizeof(double));
    tp->centroid = malloc(T * D * sizeof(double));
    tp->genre1 = malloc(T * sizeof(int));
    tp->genre2 = malloc(T * sizeof(int));
    tp->year = malloc(T * sizeof(int));
    if (!tp->code || !tp->centroid || !tp->genre1 || !tp->genre2 || !tp->year)
        return RECD_ENOMEM;
    recd_rng_t r;
    recd_rng_seed_stream(&r, o->seed, S_TOPICS);
    for (size_t t = 0; t < T; t++) {
        unit_vector(&r, tp->code + t * E, E);
        unit_vector(&r, tp->centroid + t * D, D);
        tp->genre1[t] = (int)recd_rng_below_fast(&r, TF_NGENRES);
        tp->genre2[t] = (tp->genre1[t] + 1 + (int)recd_rng_below_fast(&r, TF_NGENRES - 1)) % TF_NGENRES;
        tp->year[t] = 1935 + (int)recd_rng_below_fast(&r, 81);
    }
    return 0;
}

/* ---- items.tsv ------------------------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf_t;

static void sb_printf(sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf_t *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap <= b->len + (size_t)n)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
}

/* Popularity: a random permutation assigns Zipf ranks; the item of rank r
 * (0-based) has floor(10^6 / (r + 1)) interactions, at least one. */
static uint64_t *make_popularity(const recd_synth_opts_t *o)
{
    size_t N = o->n_items;
    uint64_t *pop = malloc(N * sizeof *pop);
    if (!pop)
        return NULL;
    for (size_t i = 0; i < N; i++)
        pop[i] = i; /* ranks, shuffled below */
    recd_rng_t r;
    recd_rng_seed_stream(&r, o->seed, S_POP);
    for (size_t i = N - 1; i > 0; i--) {
        size_t j = recd_rng_below_fast(&r, (uint32_t)(i + 1));
        uint64_t tmp = pop[i];
        pop[i] = pop[j];
        pop[j] = tmp;
    }
    for (size_t i = 0; i < N; i++) {
        uint64_t p = 1000000 / (pop[i] + 1);
        pop[i] = p ? p : 1;
    }
    return pop;
}

static int make_items(const recd_synth_opts_t *o, const topics_t *tp, const uint32_t *topic,
                      const uint64_t *pop, sbuf_t *b)
{
    recd_rng_t r;
    recd_rng_seed_stream(&r, o->seed, S_ITEMS);
    sb_printf(b, "id\tgenres\tyear\tpopularity\n");
    for (size_t i = 0; i < o->n_items; i++) {
        uint32_t t = topic[i];
        /* 1-3 distinct genres: usually the topic's primary one, often its
         * secondary one, otherwise any; written in the canonical order. */
        unsigned n = 1 + recd_rng_below_fast(&r, 3), have = 0;
        uint32_t mask = 0;
        while (have < n) {
            int g;
            if (have == 0)
                g = recd_rng_unit(&r) < 0.85 ? tp->genre1[t]
                                             : (int)recd_rng_below_fast(&r, TF_NGENRES);
            else
                g = recd_rng_unit(&r) < 0.5 ? tp->genre2[t] : (int)recd_rng_below_fast(&r, TF_NGENRES);
            if (!(mask & (1u << g))) {
                mask |= 1u << g;
                have++;
            }
        }
        long year = tp->year[t] + (long)floor(8.0 * gauss_sum4(&r) + 0.5);
        year = year < 1930 ? 1930 : year > 2020 ? 2020 : year;
        sb_printf(b, "i%zu\t", i);
        const char *sep = "";
        for (int g = 0; g < TF_NGENRES; g++)
            if (mask & (1u << g)) {
                sb_printf(b, "%s%s", sep, tf_genres[g]);
                sep = "|";
            }
        sb_printf(b, "\t%ld\t%llu\n", year, (unsigned long long)pop[i]);
    }
    return b->oom ? RECD_ENOMEM : 0;
}

/* ---- tensors ----------------------------------------------------------------------------- */


/* A [d0, d1] (d1 = 0: [d0]) tensor of N(0, std^2) draws. */
static int put_random(recd_bundle_writer_t *w, recd_rng_t *r, const char *name, int64_t d0,
                      int64_t d1, double std, recd_err_t *err)
{
    size_t n = (size_t)d0 * (size_t)(d1 > 0 ? d1 : 1);
    float *v = malloc(n * sizeof *v);
    if (!v)
        return recd_err_set(err, RECD_ENOMEM, "out of memory (tensor %s)", name);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(std * gauss_sum4(r));
    int rc = tf_put(w, name, v, d0, d1, err);
    free(v);
    return rc;
}

static int put_const(recd_bundle_writer_t *w, const char *name, float value, recd_err_t *err)
{
    return tf_put(w, name, &value, 1, 0, err);
}

/* Candidate model tensors; the manifest's "candidate" object goes to *out,
 * the item vectors (for the index) to *item_emb_out. */
static int write_candidate(recd_bundle_writer_t *w, const recd_synth_opts_t *o, const topics_t *tp,
                           const uint32_t *topic, const uint64_t *pop, json_t **out,
                           float **item_emb_out, recd_err_t *err)
{
    size_t N = o->n_items, D = o->dim, E = o->embed_dim, T = tp->T;
    int rc = 0;
    float *ie = malloc(N * D * sizeof *ie);
    float *he = malloc(N * E * sizeof *he);
    double *v = malloc(D * sizeof *v);
    double *popdir = calloc(D, sizeof *popdir);
    json_t *tower = json_array(), *fields = json_array(), *input = json_pack("[s]", "history");
    if (!ie || !he || !v || !popdir || !tower || !fields || !input) {
        rc = recd_err_set(err, RECD_ENOMEM, "out of memory (candidate model)");
        goto out;
    }

    /* cand.item_emb: unit vectors around the topic centroid. */
    recd_rng_t r;
    recd_rng_seed_stream(&r, o->seed, S_ITEM_EMB);
    double dscale = ITEM_NOISE / sqrt((double)D);
    for (size_t i = 0; i < N; i++) {
        const double *c = tp->centroid + (size_t)topic[i] * D;
        double ss = 0;
        for (size_t j = 0; j < D; j++) {
            v[j] = c[j] + dscale * gauss_sum4(&r);
            ss += v[j] * v[j];
        }
        double inv = 1.0 / sqrt(ss);
        for (size_t j = 0; j < D; j++) {
            ie[i * D + j] = (float)(v[j] * inv);
            popdir[j] += (double)pop[i] * ie[i * D + j];
        }
    }
    if ((rc = tf_put(w, "cand.item_emb", ie, (int64_t)N, (int64_t)D, err)) != 0)
        goto out;

    /* cand.hist_emb: the topic code plus noise. */
    recd_rng_seed_stream(&r, o->seed, S_HIST_EMB);
    double escale = HIST_NOISE / sqrt((double)E);
    for (size_t i = 0; i < N; i++) {
        const double *g = tp->code + (size_t)topic[i] * E;
        for (size_t j = 0; j < E; j++)
            he[i * E + j] = (float)(g[j] + escale * gauss_sum4(&r));
    }
    if ((rc = tf_put(w, "cand.hist_emb", he, (int64_t)N, (int64_t)E, err)) != 0)
        goto out;

    /* cand.field.<f> for the user fields. */
    recd_rng_seed_stream(&r, o->seed, S_CAND_FIELD);
    for (int f = 0; f < NUSER_FIELDS && rc == 0; f++) {
        char name[64];
        snprintf(name, sizeof name, "cand.field.%s", FIELDS[f].name);
        rc = put_random(w, &r, name, (int64_t)FIELDS[f].buckets, (int64_t)E, 0.1, err);
        json_array_append_new(fields,
                              json_pack("{s:s, s:s}", "name", FIELDS[f].name, "tensor", name));
        json_array_append_new(input, json_string(FIELDS[f].name));
    }
    if (rc != 0)
        goto out;

    /* The tower: topic detectors, pass-through, centroid read-out. */
    size_t dims[RECD_SYNTH_MAX_LAYERS + 2];
    size_t nl = o->nhidden + 1;
    dims[0] = E * (1 + NUSER_FIELDS);
    for (size_t i = 0; i < o->nhidden; i++)
        dims[i + 1] = o->hidden[i];
    dims[nl] = D;
    double pss = 0;
    for (size_t j = 0; j < D; j++)
        pss += popdir[j] * popdir[j];
    double pinv = pss > 0 ? 1.0 / sqrt(pss) : 0;
    recd_rng_seed_stream(&r, o->seed, S_TOWER);
    for (size_t l = 0; l < nl && rc == 0; l++) {
        size_t in = dims[l], outn = dims[l + 1];
        float *wt = malloc(in * outn * sizeof *wt);
        float *bs = calloc(outn, sizeof *bs);
        if (!wt || !bs) {
            free(wt);
            free(bs);
            rc = recd_err_set(err, RECD_ENOMEM, "out of memory (tower)");
            break;
        }
        /* Random background first, then the structure written over it. */
        double rnd = l == 0 ? 0.3 / sqrt((double)in) : l == nl - 1 ? 0.02 : 0.01;
        for (size_t k = 0; k < in * outn; k++)
            wt[k] = (float)(rnd * gauss_sum4(&r));
        if (l == 0) {
            /* unit t < T: GAIN * (<code_t, history> - THRESHOLD), with a
             * tenth of the background on the user-field inputs. */
            for (size_t t = 0; t < T; t++) {
                for (size_t row = 0; row < in; row++)
                    wt[row * outn + t] = row < E ? (float)(DETECT_GAIN * tp->code[t * E + row])
                                                 : (float)(0.1 * wt[row * outn + t]);
                bs[t] = (float)(-DETECT_GAIN * DETECT_THRESHOLD);
            }
        } else if (l < nl - 1) {
            for (size_t t = 0; t < T; t++)
                wt[t * outn + t] = 1.0f;
        } else {
            for (size_t t = 0; t < T; t++)
                for (size_t j = 0; j < D; j++)
                    wt[t * outn + j] = (float)tp->centroid[t * D + j];
            for (size_t j = 0; j < D; j++) {
                double p = popdir[j] * pinv;
                bs[j] = (float)(p > 0 ? POP_BIAS * p : 0.0);
            }
        }
        char wn[64], bn[64];
        snprintf(wn, sizeof wn, "cand.tower.%zu.w", l);
        snprintf(bn, sizeof bn, "cand.tower.%zu.b", l);
        rc = tf_put(w, wn, wt, (int64_t)in, (int64_t)outn, err);
        if (rc == 0)
            rc = tf_put(w, bn, bs, (int64_t)outn, 0, err);
        free(wt);
        free(bs);
        json_array_append_new(tower, json_pack("{s:s, s:s, s:I, s:I, s:s}", "w", wn, "b", bn, "in",
                                               (json_int_t)in, "out", (json_int_t)outn,
                                               "activation", "relu"));
    }
    if (rc != 0)
        goto out;
    *out = json_pack("{s:s, s:I, s:I, s:{s:s, s:s, s:I}, s:O, s:O, s:O, s:s, s:s}", "type",
                     "youtube_dnn", "dim", (json_int_t)D, "embed_dim", (json_int_t)E, "history",
                     "tensor", "cand.hist_emb", "pooling", "mean", "max_len",
                     (json_int_t)o->history_max_len, "fields", fields, "input", input, "tower",
                     tower, "item_embedding", "cand.item_emb", "score", "inner_product");
    if (!*out)
        rc = recd_err_set(err, RECD_ENOMEM, "out of memory (manifest)");
out:
    json_decref(tower);
    json_decref(fields);
    json_decref(input);
    free(v);
    free(popdir);
    free(he);
    if (rc == 0)
        *item_emb_out = ie;
    else
        free(ie);
    return rc;
}

static int write_ranker(recd_bundle_writer_t *w, const recd_synth_opts_t *o, json_t **out,
                        recd_err_t *err)
{
    size_t K = o->rank_embed_dim;
    recd_rng_t r;
    recd_rng_seed_stream(&r, o->seed, S_RANK);
    int rc = 0;
    json_t *fields = json_array(), *mlp = json_array(), *crosses = json_array();
    if (!fields || !mlp || !crosses) {
        rc = recd_err_set(err, RECD_ENOMEM, "out of memory");
        goto out;
    }
    for (int f = 0; f < NFIELDS && rc == 0; f++) {
        int64_t b = FIELDS[f].buckets ? (int64_t)FIELDS[f].buckets : 2 * (int64_t)o->n_items;
        char en[64], ln[64];
        snprintf(en, sizeof en, "rank.emb.%s", FIELDS[f].name);
        snprintf(ln, sizeof ln, "rank.lin.%s", FIELDS[f].name);
        rc = put_random(w, &r, en, b, (int64_t)K, 0.05, err);
        if (rc == 0)
            rc = put_random(w, &r, ln, b, 0, 0.01, err);
        json_array_append_new(
            fields, json_pack("{s:s, s:s, s:s}", "name", FIELDS[f].name, "emb", en, "lin", ln));
    }
    if (rc == 0)
        rc = put_const(w, "rank.bias", -1.5f, err);
    size_t in = K * NFIELDS;
    for (size_t l = 0; l < o->nrank_hidden && rc == 0; l++) {
        size_t outn = o->rank_hidden[l];
        char wn[64], bn[64];
        snprintf(wn, sizeof wn, "rank.mlp.%zu.w", l);
        snprintf(bn, sizeof bn, "rank.mlp.%zu.b", l);
        rc = put_random(w, &r, wn, (int64_t)in, (int64_t)outn, sqrt(2.0 / (double)in), err);
        if (rc == 0)
            rc = put_random(w, &r, bn, (int64_t)outn, 0, 0.01, err);
        json_array_append_new(mlp, json_pack("{s:s, s:s, s:I, s:I, s:s}", "w", wn, "b", bn, "in",
                                             (json_int_t)in, "out", (json_int_t)outn, "activation",
                                             "relu"));
        in = outn;
    }
    if (rc == 0)
        rc = put_random(w, &r, "rank.out.w", (int64_t)in, 1, sqrt(1.0 / (double)in), err);
    if (rc == 0)
        rc = put_const(w, "rank.out.b", 0.0f, err);
    if (o->ranker == RECD_RANKER_WIDE_DEEP) {
        for (int c = 0; c < NCROSSES && rc == 0; c++) {
            char cn[64], tn[80];
            snprintf(cn, sizeof cn, "%sx%s", CROSSES[c][0], CROSSES[c][1]);
            snprintf(tn, sizeof tn, "rank.wide.%s", cn);
            rc = put_random(w, &r, tn, CROSS_BUCKETS, 0, 0.05, err);
            json_array_append_new(crosses,
                                  json_pack("{s:s, s:[s, s], s:I, s:s}", "name", cn, "fields",
                                            CROSSES[c][0], CROSSES[c][1], "buckets",
                                            (json_int_t)CROSS_BUCKETS, "tensor", tn));
        }
    }
    if (rc != 0)
        goto out;
    *out = json_pack("{s:s, s:I, s:O, s:s, s:O, s:{s:s, s:s, s:I}, s:s}", "type",
                     o->ranker == RECD_RANKER_WIDE_DEEP ? "wide_deep" : "deepfm", "embed_dim",
                     (json_int_t)K, "fields", fields, "bias", "rank.bias", "mlp", mlp, "out", "w",
                     "rank.out.w", "b", "rank.out.b", "in", (json_int_t)in, "output", "sigmoid");
    if (*out && o->ranker == RECD_RANKER_WIDE_DEEP &&
        json_object_set(*out, "crosses", crosses) != 0) {
        json_decref(*out);
        *out = NULL;
    }
    if (!*out)
        rc = recd_err_set(err, RECD_ENOMEM, "out of memory (manifest)");
out:
    json_decref(fields);
    json_decref(mlp);
    json_decref(crosses);
    return rc;
}

/* ---- manifest ------------------------------------------------------------------------ */

static json_t *string_array(const char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

/* The feature schema of FORMAT.md (MovieLens-like fields). NULL when out
 * of memory. */
static json_t *feature_schema(size_t n_items)
{
    json_t *f = json_array();
    if (!f)
        return NULL;
    json_array_append_new(f, json_pack("{s:s, s:s, s:s, s:i}", "name", "user_id", "source", "user",
                                       "type", "categorical", "buckets", 100000));
    json_array_append_new(f, json_pack("{s:s, s:s, s:s, s:[i,i,i,i,i,i], s:i}", "name", "age",
                                       "source", "user", "type", "bucketized", "boundaries", 18, 25,
                                       35, 45, 50, 56, "buckets", 16));
    json_array_append_new(f, json_pack("{s:s, s:s, s:s, s:i, s:[s,s]}", "name", "gender", "source",
                                       "user", "type", "categorical", "buckets", 8, "values", "F",
                                       "M"));
    json_array_append_new(f, json_pack("{s:s, s:s, s:s, s:i, s:o}", "name", "occupation", "source",
                                       "user", "type", "categorical", "buckets", 64, "values",
                                       string_array(tf_occupations, TF_NOCCUPATIONS)));
    json_array_append_new(f, json_pack("{s:s, s:s, s:s, s:s, s:I}", "name", "item_id", "source",
                                       "item", "type", "categorical", "column", "id", "buckets",
                                       (json_int_t)(2 * n_items)));
    json_array_append_new(f, json_pack("{s:s, s:s, s:s, s:s, s:b, s:i, s:o}", "name", "genres",
                                       "source", "item", "type", "categorical", "column", "genres",
                                       "multi_valued", 1, "buckets", 64, "values",
                                       string_array(tf_genres, TF_NGENRES)));
    json_array_append_new(f, json_pack("{s:s, s:s, s:s, s:s, s:[i,i,i,i,i,i,i,i,i], s:i}", "name",
                                       "year", "source", "item", "type", "bucketized", "column",
                                       "year", "boundaries", 1940, 1950, 1960, 1970, 1980, 1990,
                                       2000, 2010, 2020, "buckets", 32));
    json_array_append_new(f, json_pack("{s:s, s:s, s:s, s:i, s:o}", "name", "device", "source",
                                       "context", "type", "categorical", "buckets", 16, "values",
                                       string_array(DEVICES, 4)));
    json_array_append_new(f, json_pack("{s:s, s:s, s:s, s:[i,i,i,i,i,i,i], s:i}", "name", "hour",
                                       "source", "context", "type", "bucketized", "boundaries", 6,
                                       9, 12, 14, 17, 20, 23, "buckets", 16));
    if (json_array_size(f) != NFIELDS) {
        json_decref(f);
        return NULL;
    }
    return json_pack("{s:s, s:s, s:s, s:o}", "hash", "fnv1a64", "separator", "\x1f", "missing", "",
                     "fields", f);
}


static json_t *ann_section(const recd_synth_opts_t *o, const index_def_t *idx)
{
    json_t *a =
        json_pack("{s:s, s:s, s:s, s:I, s:s}", "library", "faiss", "metric", "inner_product",
                  "vectors", "cand.item_emb", "dim", (json_int_t)o->dim, "factory", o->index);
    if (!a)
        return NULL;
    int bad = 0;
    if (idx->kind == 1) {
        bad |= json_object_set_new(a, "nlist", json_integer(idx->param));
        bad |= json_object_set_new(a, "nprobe", json_integer(o->nprobe));
        bad |= json_object_set_new(a, "kmeans_seed", json_integer((json_int_t)o->seed));
    } else if (idx->kind == 2) {
        bad |= json_object_set_new(a, "M", json_integer(idx->param));
        bad |= json_object_set_new(a, "efSearch", json_integer(o->ef_search));
    }
    if (bad) {
        json_decref(a);
        return NULL;
    }
    return a;
}

/* Build the index over the item vectors with src/ann and save it as
 * index.faiss in the bundle. */
static int write_index(recd_bundle_writer_t *w, const recd_synth_opts_t *o, const float *item_emb,
                       recd_err_t *err)
{
    recd_ann_spec_t spec;
    int rc = recd_ann_spec_parse(o->index, &spec, err);
    if (rc != 0)
        return rc;
    spec.nprobe = o->nprobe;
    spec.ef_search = o->ef_search;
    spec.kmeans_seed = o->seed;
    recd_ann_t *a = recd_ann_build(&spec, item_emb, o->n_items, o->dim, err);
    if (!a)
        return err && err->code ? err->code : RECD_ERR;
    const char *path = recd_bundle_writer_path(w, "index.faiss");
    rc = path ? recd_ann_save(a, path, err)
              : recd_err_set(err, RECD_EINVAL, "index.faiss: path too long");
    recd_ann_free(a);
    return rc;
}

/* ---- entry point --------------------------------------------------------------------- */

int recd_train_synth_bundle(const recd_synth_opts_t *opts, recd_err_t *err)
{
    recd_synth_opts_t local = *opts;
    char index_buf[32];
    if (!local.index)
        local.index = recd_train_synth_default_index(local.n_items, index_buf, sizeof index_buf);
    const recd_synth_opts_t *o = &local;
    index_def_t idx = {0, 0};
    int rc = validate(o, &idx, err);
    if (rc != 0)
        return rc;
    recd_bundle_writer_t *w = recd_bundle_writer_new(o->models_dir, o->name, o->version, err);
    if (!w)
        return err && err->code ? err->code : RECD_ERR;

    topics_t tp;
    uint32_t *topic = malloc(o->n_items * sizeof *topic);
    uint64_t *pop = make_popularity(o);
    float *item_emb = NULL;
    sbuf_t items = {0};
    json_t *cand = NULL, *rank = NULL, *m = NULL, *ann = NULL;
    if (topics_make(o, &tp) != 0 || !topic || !pop) {
        rc = recd_err_set(err, RECD_ENOMEM, "out of memory (%zu items)", o->n_items);
        goto out;
    }
    recd_train_synth_topics(o, topic);

    if ((rc = make_items(o, &tp, topic, pop, &items)) != 0) {
        recd_err_set(err, rc, "out of memory (items.tsv)");
        goto out;
    }
    if ((rc = recd_bundle_writer_items(w, items.p, items.len, err)) != 0)
        goto out;
    if ((rc = write_candidate(w, o, &tp, topic, pop, &cand, &item_emb, err)) != 0)
        goto out;
    if ((rc = write_ranker(w, o, &rank, err)) != 0)
        goto out;
    ann = ann_section(o, &idx);
    if (!ann) {
        rc = recd_err_set(err, RECD_ENOMEM, "out of memory (manifest)");
        goto out;
    }
    if (o->write_index_file) {
        if ((rc = write_index(w, o, item_emb, err)) != 0)
            goto out;
        json_object_set_new(ann, "file", json_string("index.faiss"));
    }

    char created[32];
    recd_time_created_utc(created, sizeof created);
    m = json_pack("{s:s, s:s, s:I, s:s, s:{s:s, s:I, s:{}}, s:I, s:o, s:O, s:O, s:O}", "format",
                  RECD_BUNDLE_FORMAT, "name", o->name, "version", (json_int_t)o->version, "created",
                  created, "training", "source", "synthetic: recd-train synth-bundle", "seed",
                  (json_int_t)o->seed, "metrics", "n_items", (json_int_t)o->n_items, "features",
                  feature_schema(o->n_items), "candidate", cand, "ranker", rank, "ann", ann);
    if (!m) {
        rc = recd_err_set(err, RECD_ENOMEM, "out of memory (manifest)");
        goto out;
    }
    rc = recd_bundle_writer_commit(w, m, err);
    w = NULL; /* commit frees the writer, also on failure */
out:
    if (w)
        recd_bundle_writer_abort(w);
    json_decref(m);
    json_decref(cand);
    json_decref(rank);
    json_decref(ann);
    free(items.p);
    free(item_emb);
    free(pop);
    free(topic);
    topics_free(&tp);
    return rc;
}
