/*
 * Unit tests for src/rank: DeepFM and Wide&Deep against a scalar reference
 * written here from BUNDLE.md ("Feature hashing and the forward passes"):
 * plain loops in double precision, its own FNV-1a-64 and bisection, the
 * feature schema and ranker read from the manifest JSON, item values split
 * from the raw items.tsv cells, and DeepFM's pairwise term summed pair by
 * pair (not by the sum-of-squares identity the ranker uses).
 *
 * Bundles come from the project's generator (recd_train_synth_bundle, a
 * few hundred items, small layers). Cases the generator does not produce -
 * crosses whose first field is an item field, crosses of two request
 * fields, "output": "exp", unknown types - are made by editing the loaded
 * bundle's manifest and attaching again (allowed before publication).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "recd/candgen.h"
#include "recd/core.h"
#include "recd/model.h"
#include "recd/nn.h"
#include "recd/rank.h"
#include "recd/train.h"

/* ---- helpers ------------------------------------------------------------------------- */

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)f;
    return flag == FTW_DP ? rmdir(p) : unlink(p);
}

typedef struct fixture {
    char root[64];
    recd_bundle_t *b;
} fixture_t;

#define N_ITEMS 300
#define K 8

static recd_bundle_t *make_bundle(fixture_t *fx, recd_ranker_kind_t kind, size_t nhidden)
{
    strcpy(fx->root, "/tmp/recd-test-rank-XXXXXX");
    assert_non_null(mkdtemp(fx->root));
    recd_synth_opts_t o;
    recd_train_synth_defaults(&o);
    o.models_dir = fx->root;
    o.n_items = N_ITEMS;
    o.dim = 16;
    o.embed_dim = 8;
    o.hidden[0] = 32;
    o.rank_embed_dim = K;
    o.rank_hidden[0] = 24;
    o.rank_hidden[1] = 12;
    o.nrank_hidden = nhidden;
    o.ranker = kind;
    o.seed = 5;
    o.write_index_file = 0;
    o.index = "Flat";
    recd_err_t err = {0};
    if (recd_train_synth_bundle(&o, &err) != 0)
        fail_msg("synth: %s", err.msg);
    char dir[128];
    snprintf(dir, sizeof dir, "%s/default/1", fx->root);
    recd_model_opts_t mo = {.ann_factory = "", .use_index_file = 1, .attach = recd_rank_attach};
    fx->b = recd_bundle_load(dir, &mo, &err);
    if (!fx->b)
        fail_msg("load: %s", err.msg);
    assert_non_null(recd_rank_of(fx->b));
    return fx->b;
}

static void drop_bundle(fixture_t *fx)
{
    recd_bundle_unref(fx->b);
    nftw(fx->root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- the reference ------------------------------------------------------------------- */

static uint64_t fnv(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* FNV-1a-64(field "\x1f" text) mod buckets */
static uint64_t ref_bucket(const char *field, const char *text, uint64_t buckets)
{
    uint64_t h = fnv(0xcbf29ce484222325ULL, field, strlen(field));
    h = fnv(h, "\x1f", 1);
    return fnv(h, text, strlen(text)) % buckets;
}

static json_t *feature_json(const recd_bundle_t *b, const char *name)
{
    json_t *fs = json_object_get(json_object_get(b->manifest, "features"), "fields");
    for (size_t i = 0; i < json_array_size(fs); i++) {
        json_t *f = json_array_get(fs, i);
        if (strcmp(json_string_value(json_object_get(f, "name")), name) == 0)
            return f;
    }
    fail_msg("no feature %s", name);
    return NULL;
}

/* bisect right over the manifest's boundaries, as decimal text */
static void ref_bucketize(json_t *f, double v, char *out)
{
    json_t *bs = json_object_get(f, "boundaries");
    size_t i = 0;
    for (size_t j = 0; j < json_array_size(bs); j++)
        if (json_number_value(json_array_get(bs, j)) <= v)
            i++;
    sprintf(out, "%zu", i);
}

#define MAXV 4
typedef struct vals {
    size_t n;
    char t[MAXV][64];
} vals_t;

/* A feature's index in b->features by name. */
static size_t feat_index(const recd_bundle_t *b, const char *name)
{
    for (size_t i = 0; i < b->nfeatures; i++)
        if (strcmp(b->features[i].name, name) == 0)
            return i;
    fail_msg("no feature %s", name);
    return 0;
}

/* Values of an item field of base item i, from the raw items.tsv cell. */
static void ref_item_vals(const recd_bundle_t *b, size_t i, const char *name, vals_t *v)
{
    json_t *f = feature_json(b, name);
    json_t *col = json_object_get(f, "column");
    const char *cn = col ? json_string_value(col) : strcmp(name, "item_id") == 0 ? "id" : name;
    size_t c = 0;
    while (strcmp(b->col_names[c], cn) != 0)
        c++;
    const char *cell = b->cells[i * b->ncols + c];
    int multi = json_is_true(json_object_get(f, "multi_valued"));
    int buck = strcmp(json_string_value(json_object_get(f, "type")), "bucketized") == 0;
    v->n = 0;
    for (const char *p = cell;;) {
        const char *e = multi ? strchr(p, '|') : NULL;
        size_t len = e ? (size_t)(e - p) : strlen(p);
        assert_true(v->n < MAXV && len < 64);
        memcpy(v->t[v->n], p, len);
        v->t[v->n][len] = '\0';
        if (buck && len)
            ref_bucketize(f, strtod(v->t[v->n], NULL), v->t[v->n]);
        v->n++;
        if (!e)
            break;
        p = e + 1;
    }
}

/* One request value: texts, or a number for a bucketized field. */
typedef struct uval {
    const char *field;
    size_t n;
    const char *s[MAXV];
    double num;
    int numeric;
} uval_t;

/* The request: per feature, the texts (reference) and the hashed
 * recd_field_buckets_t the ranker receives. */
typedef struct request {
    vals_t v[16];
    uint64_t bk[16][MAXV];
    const char *tp[16][MAXV];
    uint32_t tl[16][MAXV];
    recd_field_buckets_t fb[16];
} request_t;

static void make_request(const recd_bundle_t *b, const uval_t *u, size_t nu, request_t *r)
{
    assert_true(b->nfeatures <= 16);
    memset(r, 0, sizeof *r);
    for (size_t f = 0; f < b->nfeatures; f++) {
        const recd_feature_t *F = &b->features[f];
        if (F->source == RECD_SRC_ITEM)
            continue;
        vals_t *v = &r->v[f];
        v->n = 1; /* missing: "" */
        for (size_t j = 0; j < nu; j++) {
            if (strcmp(u[j].field, F->name) != 0)
                continue;
            if (u[j].numeric) {
                ref_bucketize(feature_json(b, F->name), u[j].num, v->t[0]);
                /* the loader's bisection agrees */
                char t[32];
                snprintf(t, sizeof t, "%zu", recd_feature_bucketize(F, u[j].num));
                assert_string_equal(t, v->t[0]);
            } else {
                v->n = u[j].n;
                for (size_t k = 0; k < u[j].n; k++)
                    strcpy(v->t[k], u[j].s[k]);
            }
        }
        uint64_t buckets =
            (uint64_t)json_integer_value(json_object_get(feature_json(b, F->name), "buckets"));
        for (size_t k = 0; k < v->n; k++) {
            r->bk[f][k] = ref_bucket(F->name, v->t[k], buckets);
            r->tp[f][k] = v->t[k];
            r->tl[f][k] = (uint32_t)strlen(v->t[k]);
        }
        r->fb[f] = (recd_field_buckets_t){r->bk[f], v->n, r->tp[f], r->tl[f]};
    }
}

static const float *T(const recd_bundle_t *b, json_t *o, const char *key)
{
    const recd_tensor_t *t = recd_bundle_tensor(b, json_string_value(json_object_get(o, key)));
    assert_non_null(t);
    return t->data;
}

typedef struct ref_parts {
    double bias, first, second, deep, logit;
} ref_parts_t;

/* The logit of one candidate whose values per feature are vals[f] (user
 * and context from the request, item fields from the candidate). */
static ref_parts_t ref_logit(const recd_bundle_t *b, const vals_t *vals)
{
    json_t *r = json_object_get(b->manifest, "ranker");
    json_t *fs = json_object_get(r, "fields");
    size_t nf = json_array_size(fs);
    size_t k = (size_t)json_integer_value(json_object_get(r, "embed_dim"));
    double *x = calloc(nf * k, sizeof *x);
    ref_parts_t p = {0};
    p.bias = T(b, r, "bias")[0];
    for (size_t i = 0; i < nf; i++) {
        json_t *f = json_array_get(fs, i);
        const char *name = json_string_value(json_object_get(f, "name"));
        uint64_t buckets =
            (uint64_t)json_integer_value(json_object_get(feature_json(b, name), "buckets"));
        const vals_t *v = &vals[feat_index(b, name)];
        const float *emb = T(b, f, "emb"), *lin = T(b, f, "lin");
        for (size_t j = 0; j < v->n; j++) {
            uint64_t row = ref_bucket(name, v->t[j], buckets);
            for (size_t d = 0; d < k; d++)
                x[i * k + d] += emb[row * k + d] / (double)v->n;
            p.first += lin[row] / (double)v->n;
        }
    }
    const char *type = json_string_value(json_object_get(r, "type"));
    if (strcmp(type, "deepfm") == 0) {
        for (size_t i = 0; i < nf; i++)
            for (size_t j = i + 1; j < nf; j++)
                for (size_t d = 0; d < k; d++)
                    p.second += x[i * k + d] * x[j * k + d];
    } else {
        json_t *xs = json_object_get(r, "crosses");
        for (size_t c = 0; c < json_array_size(xs); c++) {
            json_t *cr = json_array_get(xs, c);
            json_t *cf = json_object_get(cr, "fields");
            const char *n1 = json_string_value(json_array_get(cf, 0));
            const char *n2 = json_string_value(json_array_get(cf, 1));
            uint64_t buckets = (uint64_t)json_integer_value(json_object_get(cr, "buckets"));
            const float *w = T(b, cr, "tensor");
            char cname[128], text[160];
            snprintf(cname, sizeof cname, "%sx%s", n1, n2);
            const vals_t *v1 = &vals[feat_index(b, n1)], *v2 = &vals[feat_index(b, n2)];
            double s = 0;
            for (size_t a = 0; a < v1->n; a++)
                for (size_t e = 0; e < v2->n; e++) {
                    snprintf(text, sizeof text, "%s\x1f%s", v1->t[a], v2->t[e]);
                    s += w[ref_bucket(cname, text, buckets)];
                }
            p.second += s / (double)(v1->n * v2->n);
        }
    }
    /* the MLP: relu(x @ w + b) per layer, then out */
    json_t *mlp = json_object_get(r, "mlp");
    double *h = x;
    size_t in = nf * k;
    for (size_t l = 0; l < json_array_size(mlp); l++) {
        json_t *L = json_array_get(mlp, l);
        size_t out = (size_t)json_integer_value(json_object_get(L, "out"));
        const float *w = T(b, L, "w"), *bb = T(b, L, "b");
        double *y = calloc(out, sizeof *y);
        for (size_t j = 0; j < out; j++) {
            double s = bb[j];
            for (size_t q = 0; q < in; q++)
                s += h[q] * w[q * out + j];
            y[j] = s > 0 ? s : 0;
        }
        free(h);
        h = y;
        in = out;
    }
    json_t *o = json_object_get(r, "out");
    const float *ow = T(b, o, "w"), *ob = T(b, o, "b");
    p.deep = ob[0];
    for (size_t q = 0; q < in; q++)
        p.deep += h[q] * ow[q];
    free(h);
    p.logit = p.bias + p.first + p.second + p.deep;
    return p;
}

/* Reference values of candidate c: the request's, with item fields of c. */
static void cand_vals(const recd_bundle_t *b, const request_t *rq, const recd_candidate_t *c,
                      const vals_t *live, vals_t *out)
{
    for (size_t f = 0; f < b->nfeatures; f++) {
        if (b->features[f].source != RECD_SRC_ITEM)
            out[f] = rq->v[f];
        else if (c->index >= 0)
            ref_item_vals(b, (size_t)c->index, b->features[f].name, &out[f]);
        else
            out[f] = live[f];
    }
}

static void close_to(double got, double want, const char *what, size_t i)
{
    if (fabs(got - want) > 2e-4 * (1.0 + fabs(want)))
        fail_msg("candidate %zu: %s = %.7g, reference %.7g", i, what, got, want);
}

/* Score n candidates and compare with the reference: logits, explain
 * parts, explain summing to the logit, and the output transform. */
static void check_scores(recd_bundle_t *b, const request_t *rq, const recd_candidate_t *c, size_t n,
                         const vals_t *live, int exp_output)
{
    const recd_ranker_t *rk = recd_rank_of(b);
    assert_non_null(rk);
    recd_overlay_t *o = recd_overlay_acquire(b);
    recd_arena_t a;
    recd_arena_init(&a, 1 << 16);
    float *sc = calloc(n, sizeof *sc), *sc2 = calloc(n, sizeof *sc2);
    recd_rank_explain_t *ex = calloc(n, sizeof *ex);
    recd_err_t err = {0};
    if (recd_rank_score(rk, b, o, rq->fb, c, n, &a, sc, ex, &err) != 0)
        fail_msg("score: %s", err.msg);
    /* without explain: the same scores */
    assert_int_equal(recd_rank_score(rk, b, o, rq->fb, c, n, &a, sc2, NULL, &err), 0);
    assert_memory_equal(sc, sc2, n * sizeof *sc);
    vals_t vals[16];
    for (size_t i = 0; i < n; i++) {
        cand_vals(b, rq, &c[i], live, vals);
        ref_parts_t p = ref_logit(b, vals);
        close_to(ex[i].bias, p.bias, "bias", i);
        close_to(ex[i].first_order, p.first, "first_order", i);
        close_to(ex[i].second_order, p.second, "second_order", i);
        close_to(ex[i].deep, p.deep, "deep", i);
        close_to(ex[i].logit, p.logit, "logit", i);
        close_to(ex[i].bias + ex[i].first_order + ex[i].second_order + ex[i].deep, ex[i].logit,
                 "sum of explain parts", i);
        double want = exp_output ? exp(p.logit) : 1.0 / (1.0 + exp(-p.logit));
        close_to(sc[i], want, "score", i);
    }
    free(sc);
    free(sc2);
    free(ex);
    recd_arena_free(&a);
    recd_overlay_release(o);
}

/* ---- requests and candidates --------------------------------------------------------- */

static const uval_t REQ_FULL[] = {
    {"user_id", 1, {"u42"}, 0, 0},   {"age", 0, {0}, 31, 1},
    {"gender", 1, {"F"}, 0, 0},      {"occupation", 1, {"writer"}, 0, 0},
    {"device", 1, {"mobile"}, 0, 0}, {"hour", 0, {0}, 21, 1},
};
/* missing gender, occupation and hour; age on a boundary */
static const uval_t REQ_SPARSE[] = {
    {"user_id", 1, {"u7"}, 0, 0},
    {"age", 0, {0}, 25, 1},
};
/* a multi-valued request field; ages below and above every boundary */
static const uval_t REQ_MULTI[] = {
    {"user_id", 1, {""}, 0, 0},
    {"age", 0, {0}, 10, 1},
    {"occupation", 3, {"artist", "writer", "doctor/health care"}, 0, 0},
    {"device", 1, {"tv"}, 0, 0},
    {"hour", 0, {0}, 23.5, 1},
};
static const uval_t REQ_OLD[] = {
    {"user_id", 1, {"u1"}, 0, 0},
    {"age", 0, {0}, 80, 1},
    {"hour", 0, {0}, 6, 1},
};

/* n candidates: items with several genres first, then every index in turn
 * (repeats allowed). */
static recd_candidate_t *candidates(const recd_bundle_t *b, size_t n)
{
    recd_candidate_t *c = calloc(n, sizeof *c);
    size_t m = 0, g = feat_index(b, "genres");
    for (size_t i = 0; i < b->n_items && m < n / 2; i++)
        if (b->item_fields[g].off[i + 1] - b->item_fields[g].off[i] > 1)
            c[m++] = (recd_candidate_t){(int64_t)i, -1, 0};
    assert_true(m > 3); /* the generator gives 1-3 genres */
    for (size_t i = 0; m < n; i++)
        c[m++] = (recd_candidate_t){(int64_t)((i * 7) % b->n_items), -1, 0};
    return c;
}

static void run_requests(recd_bundle_t *b, size_t n, int exp_output)
{
    recd_candidate_t *c = candidates(b, n);
    request_t rq;
    make_request(b, REQ_FULL, sizeof REQ_FULL / sizeof REQ_FULL[0], &rq);
    check_scores(b, &rq, c, n, NULL, exp_output);
    make_request(b, REQ_SPARSE, sizeof REQ_SPARSE / sizeof REQ_SPARSE[0], &rq);
    check_scores(b, &rq, c, n, NULL, exp_output);
    make_request(b, REQ_MULTI, sizeof REQ_MULTI / sizeof REQ_MULTI[0], &rq);
    check_scores(b, &rq, c, n, NULL, exp_output);
    make_request(b, REQ_OLD, sizeof REQ_OLD / sizeof REQ_OLD[0], &rq);
    check_scores(b, &rq, c, 1, NULL, exp_output); /* a single candidate */
    free(c);
}

static void reattach(recd_bundle_t *b, recd_err_t *err, int want_ok)
{
    int rc = recd_rank_attach(b, err);
    if (want_ok && rc != 0)
        fail_msg("attach: %s", err->msg);
    if (!want_ok)
        assert_int_not_equal(rc, 0);
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_deepfm(void **state)
{
    fixture_t fx;
    recd_bundle_t *b = make_bundle(&fx, RECD_RANKER_DEEPFM, 2);
    assert_string_equal(recd_rank_type(recd_rank_of(b)), "deepfm");
    assert_string_equal(recd_rank_output(recd_rank_of(b)), "sigmoid");
    run_requests(b, 40, 0);
    run_requests(b, 600, 0); /* more than one MLP block */
    drop_bundle(&fx);
}

static void test_deepfm_one_hidden_layer(void **state)
{
    fixture_t fx;
    recd_bundle_t *b = make_bundle(&fx, RECD_RANKER_DEEPFM, 1);
    run_requests(b, 33, 0);
    drop_bundle(&fx);
}

static void test_wide_deep(void **state)
{
    fixture_t fx;
    recd_bundle_t *b = make_bundle(&fx, RECD_RANKER_WIDE_DEEP, 2);
    assert_string_equal(recd_rank_type(recd_rank_of(b)), "wide_deep");
    run_requests(b, 40, 0);
    run_requests(b, 300, 0);
    drop_bundle(&fx);
}

static void test_wide_deep_cross_kinds(void **state)
{
    fixture_t fx;
    recd_bundle_t *b = make_bundle(&fx, RECD_RANKER_WIDE_DEEP, 2);
    /* item-first, item x item and request x request crosses (the weights
     * of an existing 10000-bucket table are reused) */
    json_t *xs = json_object_get(json_object_get(b->manifest, "ranker"), "crosses");
    const char *pairs[][2] = {{"year", "age"},   {"genres", "year"},     {"genres", "genres"},
                              {"age", "gender"}, {"occupation", "hour"}, {"item_id", "device"}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        json_array_append_new(xs, json_pack("{s:s, s:[s,s], s:i, s:s}", "name", "x", "fields",
                                            pairs[i][0], pairs[i][1], "buckets", 10000, "tensor",
                                            "rank.wide.agexyear"));
    recd_err_t err = {0};
    reattach(b, &err, 1);
    run_requests(b, 50, 0);
    drop_bundle(&fx);
}

static void test_exp_output(void **state)
{
    fixture_t fx;
    recd_bundle_t *b = make_bundle(&fx, RECD_RANKER_WIDE_DEEP, 2);
    json_object_set_new(json_object_get(b->manifest, "ranker"), "output", json_string("exp"));
    recd_err_t err = {0};
    reattach(b, &err, 1);
    assert_string_equal(recd_rank_output(recd_rank_of(b)), "exp");
    run_requests(b, 20, 1);
    drop_bundle(&fx);
}

static void test_live_items(void **state)
{
    fixture_t fx;
    recd_bundle_t *b = make_bundle(&fx, RECD_RANKER_WIDE_DEEP, 2);
    size_t g = feat_index(b, "genres"), y = feat_index(b, "year");
    /* a live item with two genres and year 1995 (bucket text by the test) */
    vals_t live[16];
    memset(live, 0, sizeof live);
    live[feat_index(b, "item_id")] = (vals_t){1, {"live-1"}};
    live[g] = (vals_t){2, {"Comedy", "Drama"}};
    live[y].n = 1;
    ref_bucketize(feature_json(b, "year"), 1995, live[y].t[0]);
    recd_field_buckets_t given[16];
    memset(given, 0, sizeof given);
    uint64_t gb[2] = {ref_bucket("genres", "Comedy", 64), ref_bucket("genres", "Drama", 64)};
    const char *gt[2] = {"Comedy", "Drama"};
    uint32_t gl[2] = {6, 5};
    uint64_t yb[1] = {ref_bucket("year", live[y].t[0], 32)};
    const char *yt[1] = {live[y].t[0]};
    uint32_t yl[1] = {(uint32_t)strlen(live[y].t[0])};
    given[g] = (recd_field_buckets_t){gb, 2, gt, gl};
    given[y] = (recd_field_buckets_t){yb, 1, yt, yl};
    float *vec = calloc(b->dim, sizeof *vec);
    int created = 0;
    recd_err_t err = {0};
    if (recd_overlay_put(b, "live-1", vec, given, &created, &err) != 0)
        fail_msg("put: %s", err.msg);
    free(vec);
    recd_candidate_t c[3] = {{3, -1, 0}, {-1, 0, 0}, {5, -1, 0}};
    request_t rq;
    make_request(b, REQ_FULL, sizeof REQ_FULL / sizeof REQ_FULL[0], &rq);
    check_scores(b, &rq, c, 3, live, 0);
    /* an unknown slot is an error, not a read out of bounds */
    recd_candidate_t bad = {-1, 9, 0};
    recd_overlay_t *o = recd_overlay_acquire(b);
    recd_arena_t a;
    recd_arena_init(&a, 4096);
    float s;
    assert_int_not_equal(recd_rank_score(recd_rank_of(b), b, o, rq.fb, &bad, 1, &a, &s, NULL, &err),
                         0);
    recd_arena_free(&a);
    recd_overlay_release(o);
    drop_bundle(&fx);
}

static void test_bad_manifest(void **state)
{
    fixture_t fx;
    recd_bundle_t *b = make_bundle(&fx, RECD_RANKER_DEEPFM, 2);
    json_t *r = json_object_get(b->manifest, "ranker");
    recd_err_t err = {0};
    json_object_set_new(r, "output", json_string("softmax"));
    reattach(b, &err, 0);
    assert_non_null(strstr(err.msg, "ranker.output"));
    json_object_set_new(r, "output", json_string("sigmoid"));
    json_object_set_new(r, "type", json_string("xdeepfm"));
    reattach(b, &err, 0);
    assert_non_null(strstr(err.msg, "ranker.type"));
    assert_non_null(strstr(err.msg, "xdeepfm"));
    json_object_set_new(r, "type", json_string("deepfm"));
    json_object_set_new(json_array_get(json_object_get(r, "fields"), 1), "emb",
                        json_string("rank.emb.nope"));
    reattach(b, &err, 0);
    assert_non_null(strstr(err.msg, "ranker.fields[1]"));
    /* the failed attaches left the previous ranker in place */
    assert_non_null(recd_rank_of(b));
    /* no ranker section: nothing attached, no error */
    json_object_del(b->manifest, "ranker");
    b->ranker_free(b->ranker);
    b->ranker = NULL;
    b->ranker_free = NULL;
    assert_int_equal(recd_rank_attach(b, &err), 0);
    assert_null(recd_rank_of(b));
    drop_bundle(&fx);
}

int main(void)
{
    recd_nn_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deepfm),       cmocka_unit_test(test_deepfm_one_hidden_layer),
        cmocka_unit_test(test_wide_deep),    cmocka_unit_test(test_wide_deep_cross_kinds),
        cmocka_unit_test(test_exp_output),   cmocka_unit_test(test_live_items),
        cmocka_unit_test(test_bad_manifest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
