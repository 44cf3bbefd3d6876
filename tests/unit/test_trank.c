/*
 * Unit tests for the ranking-model trainer (src/train/trank.c):
 *  - the whole model's analytic gradient against central finite
 *    differences, for every tensor of DeepFM, Wide&Deep and LR (a
 *    multi-valued field, a cross);
 *  - learning a known logistic function with an interaction term that
 *    first-order models cannot express; determinism; early stopping
 *    keeping the best epoch;
 *  - serving consistency: trained models written into a complete bundle,
 *    loaded and scored by src/rank, give sigmoid(recd_trank_predict);
 *  - bad options, schemas and data.
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
#include "recd/trank.h"

/* ---- a growable example set ------------------------------------------------------------ */

typedef struct ds {
    size_t nfields, ncrosses, nslots;
    size_t n, nids, cap_n, cap_ids;
    uint64_t *off; /* [cap_n * nslots + 1] */
    uint32_t *ids;
    float *label, *weight;
    size_t slot; /* slots written for the current example */
} ds_t;

static void ds_init(ds_t *d, size_t nfields, size_t ncrosses)
{
    memset(d, 0, sizeof *d);
    d->nfields = nfields;
    d->ncrosses = ncrosses;
    d->nslots = nfields + ncrosses;
    d->cap_n = 64;
    d->cap_ids = 256;
    d->off = calloc(d->cap_n * d->nslots + 1, sizeof *d->off);
    d->ids = malloc(d->cap_ids * sizeof *d->ids);
    d->label = malloc(d->cap_n * sizeof *d->label);
    d->weight = malloc(d->cap_n * sizeof *d->weight);
    assert_true(d->off && d->ids && d->label && d->weight);
}

static void ds_free(ds_t *d)
{
    free(d->off);
    free(d->ids);
    free(d->label);
    free(d->weight);
}

/* The next slot of the current example: ids[0..n). */
static void ds_slot(ds_t *d, const uint32_t *ids, size_t n)
{
    while (d->nids + n > d->cap_ids) {
        d->cap_ids *= 2;
        d->ids = realloc(d->ids, d->cap_ids * sizeof *d->ids);
        assert_non_null(d->ids);
    }
    memcpy(d->ids + d->nids, ids, n * sizeof *ids);
    d->nids += n;
    d->off[d->n * d->nslots + d->slot + 1] = d->nids;
    d->slot++;
}

static void ds_slot1(ds_t *d, uint32_t id)
{
    ds_slot(d, &id, 1);
}

static void ds_end(ds_t *d, float label, float weight)
{
    assert_int_equal(d->slot, d->nslots);
    d->label[d->n] = label;
    d->weight[d->n] = weight;
    d->n++;
    d->slot = 0;
    if (d->n == d->cap_n) {
        d->cap_n *= 2;
        d->off = realloc(d->off, (d->cap_n * d->nslots + 1) * sizeof *d->off);
        d->label = realloc(d->label, d->cap_n * sizeof *d->label);
        d->weight = realloc(d->weight, d->cap_n * sizeof *d->weight);
        assert_true(d->off && d->label && d->weight);
    }
}

/* Examples [from, from + count) as trainer data. */
static recd_trank_data_t ds_view(const ds_t *d, size_t from, size_t count, int weighted)
{
    return (recd_trank_data_t){.n = count,
                               .nfields = d->nfields,
                               .ncrosses = d->ncrosses,
                               .off = d->off + from * d->nslots,
                               .ids = d->ids,
                               .label = d->label + from,
                               .weight = weighted ? d->weight + from : NULL};
}

/* splitmix64 as the tests' PRNG */
static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double unif(uint64_t *s)
{
    return (double)(rnd(s) >> 11) * 0x1.0p-53;
}

static uint32_t below(uint64_t *s, uint32_t n)
{
    return (uint32_t)(rnd(s) % n);
}

static double gauss(uint64_t *s)
{
    double u = unif(s) + 1e-12, v = unif(s);
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

static double sigm(double z)
{
    return 1.0 / (1.0 + exp(-z));
}

/* ---- a tiny schema: 3 fields (one multi-valued), one cross -------------------------------- */

static const char *const TINY_FIELDS[] = {"a", "genres", "c"};
static const uint64_t TINY_BUCKETS[] = {7, 5, 4};
static const char *const TINY_CROSS[] = {"axgenres"};
static const uint64_t TINY_CROSS_BUCKETS[] = {11};
static const size_t TINY_CROSS_FIELDS[][2] = {{0, 1}};

static recd_trank_schema_t tiny_schema(void)
{
    return (recd_trank_schema_t){.nfields = 3,
                                 .field_names = TINY_FIELDS,
                                 .field_buckets = TINY_BUCKETS,
                                 .ncrosses = 1,
                                 .cross_names = TINY_CROSS,
                                 .cross_buckets = TINY_CROSS_BUCKETS,
                                 .cross_fields = TINY_CROSS_FIELDS};
}

/* n examples over the tiny schema; genres has 1-3 ids (a repeat possible),
 * the cross averages all (a, genre) pairs. */
static void tiny_data(ds_t *d, size_t n, uint64_t seed)
{
    ds_init(d, 3, 1);
    for (size_t i = 0; i < n; i++) {
        uint32_t a = below(&seed, 7), c = below(&seed, 4), g[3], x[3];
        size_t ng = 1 + below(&seed, 3);
        for (size_t j = 0; j < ng; j++) {
            g[j] = below(&seed, 5);
            x[j] = (a * 5 + g[j]) % 11;
        }
        ds_slot1(d, a);
        ds_slot(d, g, ng);
        ds_slot1(d, c);
        ds_slot(d, x, ng);
        double z = 0.3 * ((double)a - 3) + (g[0] == 2 ? 1.0 : -0.5) + 0.2 * c;
        ds_end(d, unif(&seed) < sigm(z) ? 1.0f : 0.0f, (float)(0.5 + unif(&seed)));
    }
}

/* ---- gradient check ----------------------------------------------------------------------- */

/* (L(w + h) - L(w - h)) / 2h in the weight *w. */
static double central(recd_trank_t *m, const recd_trank_data_t *d, const char *name, float *w,
                      float h)
{
    float keep = *w;
    *w = keep + h;
    double a = recd_trank_debug_loss_grad(m, d, name, NULL);
    *w = keep - h;
    double b = recd_trank_debug_loss_grad(m, d, name, NULL);
    *w = keep;
    return (a - b) / (2.0 * (double)h);
}

static void gradcheck(recd_trank_kind_t kind, size_t nhidden, float dropout)
{
    ds_t d;
    tiny_data(&d, 24, 11);
    recd_trank_schema_t s = tiny_schema();
    recd_trank_opts_t o;
    recd_trank_defaults(&o, kind);
    o.embed_dim = 3;
    o.hidden[0] = 6;
    o.hidden[1] = 5;
    o.nhidden = nhidden;
    o.batch = 4;
    o.dropout = dropout;
    o.max_epochs = 3; /* move the weights off their initial values */
    o.lr = 0.02f;
    o.l2_dense = 0.0f; /* (L2 is not part of the loss checked; it only kills units here) */
    recd_trank_data_t tr = ds_view(&d, 0, d.n, 1);
    recd_err_t err = {0};
    recd_trank_t *m = recd_trank_fit(&o, &s, &tr, NULL, &err);
    if (!m)
        fail_msg("fit: %s", err.msg);

    const char *names[16];
    size_t nn = 0;
    names[nn++] = "rank.bias";
    names[nn++] = "rank.lin.a";
    names[nn++] = "rank.lin.genres";
    names[nn++] = "rank.lin.c";
    if (kind != RECD_TRANK_DEEPFM)
        names[nn++] = "rank.wide.axgenres";
    if (kind != RECD_TRANK_LR) {
        names[nn++] = "rank.emb.a";
        names[nn++] = "rank.emb.genres";
        names[nn++] = "rank.emb.c";
        if (nhidden > 0) {
            names[nn++] = "rank.mlp.0.w";
            names[nn++] = "rank.mlp.0.b";
        }
        if (nhidden > 1) {
            names[nn++] = "rank.mlp.1.w";
            names[nn++] = "rank.mlp.1.b";
        }
        names[nn++] = "rank.out.w";
        names[nn++] = "rank.out.b";
    } else {
        size_t cnt;
        assert_null(recd_trank_debug_tensor(m, "rank.emb.a", &cnt));
        assert_null(recd_trank_debug_tensor(m, "rank.out.w", &cnt));
    }
    if (kind == RECD_TRANK_DEEPFM) {
        size_t cnt;
        assert_null(recd_trank_debug_tensor(m, "rank.wide.axgenres", &cnt));
    }
    assert_true(isnan(recd_trank_debug_loss_grad(m, &tr, "rank.nope", NULL)));

    size_t checked = 0, kinks = 0;
    for (size_t t = 0; t < nn; t++) {
        size_t cnt = 0;
        float *w = recd_trank_debug_tensor(m, names[t], &cnt);
        if (!w)
            fail_msg("no tensor %s", names[t]);
        float *g = calloc(cnt, sizeof *g);
        double l0 = recd_trank_debug_loss_grad(m, &tr, names[t], g);
        assert_true(isfinite(l0));
        /* the loss alone gives the same value */
        assert_true(recd_trank_debug_loss_grad(m, &tr, names[t], NULL) == l0);
        /* up to 5 entries: the largest gradients and one more */
        size_t pick[5], np = 0;
        for (size_t r = 0; r < 4 && r < cnt; r++) {
            size_t best = SIZE_MAX;
            for (size_t i = 0; i < cnt; i++) {
                int used = 0;
                for (size_t j = 0; j < np; j++)
                    used |= pick[j] == i;
                if (!used && (best == SIZE_MAX || fabsf(g[i]) > fabsf(g[best])))
                    best = i;
            }
            pick[np++] = best;
        }
        if (cnt > 4)
            pick[np++] = cnt / 2;
        for (size_t j = 0; j < np; j++) {
            size_t i = pick[j];
            double num = central(m, &tr, names[t], w + i, 2e-3f);
            double tol = 3e-3 + 2e-2 * fabs(num);
            if (fabs(num - (double)g[i]) <= tol) {
                checked++;
                continue;
            }
            /* a ReLU kink within h of the weight bends the quotient: then
             * it converges to the gradient as h shrinks (a wrong gradient
             * matches at no step) */
            int ok = 0;
            double num2 = num;
            for (float h = 5e-4f; h > 1e-5f && !ok; h /= 4) {
                num2 = central(m, &tr, names[t], w + i, h);
                ok = fabs(num2 - (double)g[i]) <= 3e-3 + 2e-2 * fabs(num2);
            }
            kinks++;
            if (!ok)
                fail_msg("%s %s[%zu]: analytic %.6g, numeric %.6g (smallest h: %.6g)",
                         recd_trank_kind_name(kind), names[t], i, (double)g[i], num, num2);
        }
        /* some gradient is there at all */
        double mx = 0;
        for (size_t i = 0; i < cnt; i++)
            mx = fmax(mx, fabs(g[i]));
        if (!(mx > 1e-4))
            fail_msg("%s %s: zero gradient", recd_trank_kind_name(kind), names[t]);
        free(g);
    }
    /* most entries are smooth at h = 2e-3 */
    assert_true(checked >= nn * 2 && kinks <= checked / 2);
    recd_trank_free(m);
    ds_free(&d);
}

static void test_gradcheck_deepfm(void **state)
{
    gradcheck(RECD_TRANK_DEEPFM, 2, 0.0f);
}

static void test_gradcheck_deepfm_no_hidden(void **state)
{
    gradcheck(RECD_TRANK_DEEPFM, 0, 0.0f);
}

static void test_gradcheck_wide_deep(void **state)
{
    gradcheck(RECD_TRANK_WIDE_DEEP, 2, 0.0f);
}

/* dropout: the backward pass sees the mask the forward pass drew */
static void test_gradcheck_dropout(void **state)
{
    gradcheck(RECD_TRANK_DEEPFM, 2, 0.3f);
    gradcheck(RECD_TRANK_WIDE_DEEP, 1, 0.5f);
}

static void test_gradcheck_lr(void **state)
{
    gradcheck(RECD_TRANK_LR, 0, 0.0f);
}

/* ---- learning a known function ---------------------------------------------------------- */

#define L_USERS 120
#define L_ITEMS 160

/* logit = -0.4 + a_u + b_i + 1.6 s_u s_i + genre and context effects, with
 * hidden signs s_u, s_i = +-1: the product is invisible to a first-order
 * model. Fields: user, item, genres (1-3), ctx; cross genresxctx. */
static void learn_data(ds_t *d, size_t n, uint64_t seed)
{
    uint64_t ws = 99; /* the world is fixed; seed draws the examples */
    double a[L_USERS], b[L_ITEMS], ge[12];
    int su[L_USERS], si[L_ITEMS];
    for (size_t u = 0; u < L_USERS; u++) {
        a[u] = 0.8 * gauss(&ws);
        su[u] = unif(&ws) < 0.5 ? -1 : 1;
    }
    for (size_t i = 0; i < L_ITEMS; i++) {
        b[i] = 0.8 * gauss(&ws);
        si[i] = unif(&ws) < 0.5 ? -1 : 1;
    }
    for (size_t g = 0; g < 12; g++)
        ge[g] = 0.4 * gauss(&ws);
    ds_init(d, 4, 1);
    for (size_t e = 0; e < n; e++) {
        uint32_t u = below(&seed, L_USERS), i = below(&seed, L_ITEMS), c = below(&seed, 3);
        uint32_t g[3], x[3];
        size_t ng = 1 + (i % 3);
        double z = -0.4 + a[u] + b[i] + 1.6 * su[u] * si[i] + 0.3 * ((double)c - 1);
        for (size_t j = 0; j < ng; j++) {
            g[j] = (uint32_t)((i * 7 + j * 5) % 12);
            x[j] = g[j] * 3 + c;
            z += ge[g[j]] / (double)ng;
        }
        ds_slot1(d, u);
        ds_slot1(d, i);
        ds_slot(d, g, ng);
        ds_slot1(d, c);
        ds_slot(d, x, ng);
        ds_end(d, unif(&seed) < sigm(z) ? 1.0f : 0.0f, 1.0f);
    }
}

static const char *const L_FIELDS[] = {"user", "item", "genres", "ctx"};
static const uint64_t L_BUCKETS[] = {L_USERS, L_ITEMS, 12, 3};
static const char *const L_CROSS[] = {"genresxctx"};
static const uint64_t L_CROSS_BUCKETS[] = {36};
static const size_t L_CROSS_FIELDS[][2] = {{2, 3}};

static recd_trank_schema_t learn_schema(void)
{
    return (recd_trank_schema_t){.nfields = 4,
                                 .field_names = L_FIELDS,
                                 .field_buckets = L_BUCKETS,
                                 .ncrosses = 1,
                                 .cross_names = L_CROSS,
                                 .cross_buckets = L_CROSS_BUCKETS,
                                 .cross_fields = L_CROSS_FIELDS};
}

static void learn_opts(recd_trank_opts_t *o, recd_trank_kind_t kind)
{
    recd_trank_defaults(o, kind);
    o->embed_dim = 8;
    o->hidden[0] = 32;
    o->hidden[1] = 16;
    o->nhidden = 2;
    o->batch = 128;
    o->max_epochs = 8;
    o->patience = 2;
    o->seed = 7;
}

#define L_TRAIN 24000
#define L_VALID 6000

static void test_learning(void **state)
{
    ds_t d;
    learn_data(&d, L_TRAIN + L_VALID, 5);
    recd_trank_schema_t s = learn_schema();
    recd_trank_data_t tr = ds_view(&d, 0, L_TRAIN, 0), va = ds_view(&d, L_TRAIN, L_VALID, 0);
    /* the base-rate logloss of the validation set */
    double p = 0;
    for (size_t i = 0; i < L_TRAIN; i++)
        p += tr.label[i];
    p /= L_TRAIN;
    double base = 0;
    for (size_t i = 0; i < L_VALID; i++)
        base -= va.label[i] ? log(p) : log(1 - p);
    base /= L_VALID;

    recd_trank_kind_t kinds[3] = {RECD_TRANK_LR, RECD_TRANK_DEEPFM, RECD_TRANK_WIDE_DEEP};
    double ll[3], auc[3];
    for (int k = 0; k < 3; k++) {
        recd_trank_opts_t o;
        learn_opts(&o, kinds[k]);
        recd_err_t err = {0};
        recd_trank_t *m = recd_trank_fit(&o, &s, &tr, &va, &err);
        if (!m)
            fail_msg("fit %s: %s", recd_trank_kind_name(kinds[k]), err.msg);
        assert_int_equal(recd_trank_eval(m, &va, &ll[k], &auc[k], &err), 0);
        recd_trank_summary_t sum;
        recd_trank_summary(m, &sum);
        /* the returned model is the best epoch's */
        assert_true(ll[k] == sum.best_valid_logloss);
        assert_true(auc[k] == sum.best_valid_auc);
        assert_true(sum.examples_per_s > 0);
        print_message("  %-9s valid logloss %.4f auc %.4f (base %.4f), best epoch %d of %d, "
                      "%.0f ex/s\n",
                      recd_trank_kind_name(kinds[k]), ll[k], auc[k], base, sum.best_epoch,
                      sum.epochs, sum.examples_per_s);
        recd_trank_free(m);
    }
    for (int k = 0; k < 3; k++)
        if (!(ll[k] < base - 0.03))
            fail_msg("%s: logloss %.4f not clearly below the base rate's %.4f",
                     recd_trank_kind_name(kinds[k]), ll[k], base);
    /* the interaction matters: both deep models beat LR clearly */
    for (int k = 1; k < 3; k++) {
        if (!(ll[k] < ll[0] - 0.03 && auc[k] > auc[0] + 0.03))
            fail_msg("%s (logloss %.4f, auc %.4f) does not beat LR (%.4f, %.4f)",
                     recd_trank_kind_name(kinds[k]), ll[k], auc[k], ll[0], auc[0]);
    }
    ds_free(&d);
}

static void test_determinism(void **state)
{
    ds_t d;
    learn_data(&d, 4000, 8);
    recd_trank_schema_t s = learn_schema();
    recd_trank_data_t tr = ds_view(&d, 0, 3000, 0), va = ds_view(&d, 3000, 1000, 0);
    recd_trank_kind_t kinds[3] = {RECD_TRANK_DEEPFM, RECD_TRANK_WIDE_DEEP, RECD_TRANK_LR};
    float *p1 = malloc(1000 * sizeof *p1), *p2 = malloc(1000 * sizeof *p2),
          *p3 = malloc(1000 * sizeof *p3);
    for (int k = 0; k < 3; k++) {
        recd_trank_opts_t o;
        learn_opts(&o, kinds[k]);
        o.max_epochs = 2;
        recd_err_t err = {0};
        recd_trank_t *m1 = recd_trank_fit(&o, &s, &tr, &va, &err);
        recd_trank_t *m2 = recd_trank_fit(&o, &s, &tr, &va, &err);
        o.seed = 8;
        recd_trank_t *m3 = recd_trank_fit(&o, &s, &tr, &va, &err);
        assert_true(m1 && m2 && m3);
        assert_int_equal(recd_trank_predict(m1, &va, p1), 0);
        assert_int_equal(recd_trank_predict(m2, &va, p2), 0);
        assert_int_equal(recd_trank_predict(m3, &va, p3), 0);
        assert_memory_equal(p1, p2, 1000 * sizeof *p1);
        assert_memory_not_equal(p1, p3, 1000 * sizeof *p1);
        recd_trank_free(m1);
        recd_trank_free(m2);
        recd_trank_free(m3);
    }
    free(p1);
    free(p2);
    free(p3);
    ds_free(&d);
}

/* A large learning rate on a small set overfits after an epoch or two:
 * early stopping must stop and hand back the best epoch's weights. */
static void test_early_stopping(void **state)
{
    ds_t d;
    learn_data(&d, 3000, 9);
    recd_trank_schema_t s = learn_schema();
    recd_trank_data_t tr = ds_view(&d, 0, 1500, 0), va = ds_view(&d, 1500, 1500, 0);
    recd_trank_opts_t o;
    learn_opts(&o, RECD_TRANK_DEEPFM);
    o.lr = 0.02f;
    o.l2_emb = 0;
    o.batch = 32;
    o.max_epochs = 30;
    o.patience = 2;
    recd_err_t err = {0};
    recd_trank_t *m = recd_trank_fit(&o, &s, &tr, &va, &err);
    assert_non_null(m);
    recd_trank_summary_t sum;
    recd_trank_summary(m, &sum);
    assert_true(sum.epochs < o.max_epochs);
    assert_int_equal(sum.epochs, sum.best_epoch + o.patience);
    double ll, auc;
    assert_int_equal(recd_trank_eval(m, &va, &ll, &auc, &err), 0);
    assert_true(ll == sum.best_valid_logloss);
    recd_trank_free(m);

    /* without a validation set every epoch runs and the last is kept */
    o.max_epochs = 3;
    m = recd_trank_fit(&o, &s, &tr, NULL, &err);
    assert_non_null(m);
    recd_trank_summary(m, &sum);
    assert_int_equal(sum.epochs, 3);
    assert_int_equal(sum.best_epoch, 3);
    assert_true(isnan(sum.best_valid_logloss));
    recd_trank_free(m);
    ds_free(&d);
}

/* ---- bad input --------------------------------------------------------------------------------
 */

static void expect_fail(const recd_trank_opts_t *o, const recd_trank_schema_t *s,
                        const recd_trank_data_t *tr, const recd_trank_data_t *va,
                        const char *needle)
{
    recd_err_t err = {0};
    recd_trank_t *m = recd_trank_fit(o, s, tr, va, &err);
    if (m)
        fail_msg("fit succeeded, expected an error with \"%s\"", needle);
    assert_int_not_equal(err.code, 0);
    if (!strstr(err.msg, needle))
        fail_msg("error \"%s\" does not mention \"%s\"", err.msg, needle);
}

static void test_bad_input(void **state)
{
    ds_t d;
    tiny_data(&d, 10, 3);
    recd_trank_schema_t s = tiny_schema();
    recd_trank_data_t tr = ds_view(&d, 0, 10, 1);
    recd_trank_opts_t o;
    recd_trank_defaults(&o, RECD_TRANK_DEEPFM);
    o.hidden[0] = 4;
    o.nhidden = 1;
    o.max_epochs = 1;

    recd_trank_opts_t b = o;
    b.embed_dim = 0;
    expect_fail(&b, &s, &tr, NULL, "embed_dim");
    b = o;
    b.nhidden = 9;
    expect_fail(&b, &s, &tr, NULL, "nhidden");
    b = o;
    b.hidden[0] = 0;
    expect_fail(&b, &s, &tr, NULL, "hidden[0]");
    b = o;
    b.kind = (recd_trank_kind_t)7;
    expect_fail(&b, &s, &tr, NULL, "kind");
    b = o;
    b.lr = -1;
    expect_fail(&b, &s, &tr, NULL, "lr");
    b = o;
    b.batch = 0;
    expect_fail(&b, &s, &tr, NULL, "batch");
    b = o;
    b.lr_decay = 0;
    expect_fail(&b, &s, &tr, NULL, "lr_decay");
    b = o;
    b.l2_emb = NAN;
    expect_fail(&b, &s, &tr, NULL, "l2_emb");
    b = o;
    b.optimizer = 5;
    expect_fail(&b, &s, &tr, NULL, "optimizer");
    b = o;
    b.max_epochs = 0;
    expect_fail(&b, &s, &tr, NULL, "max_epochs");
    b = o;
    b.patience = 0;
    expect_fail(&b, &s, &tr, NULL, "patience");
    expect_fail(NULL, &s, &tr, NULL, "options");

    /* schema */
    recd_trank_schema_t bs = s;
    bs.nfields = 0;
    expect_fail(&o, &bs, &tr, NULL, "no fields");
    static const char *const dup[] = {"a", "genres", "a"};
    bs = s;
    bs.field_names = dup;
    expect_fail(&o, &bs, &tr, NULL, "twice");
    static const uint64_t zero_b[] = {7, 0, 4};
    bs = s;
    bs.field_buckets = zero_b;
    expect_fail(&o, &bs, &tr, NULL, "buckets");
    static const char *const badx[] = {"genresxa"};
    bs = s;
    bs.cross_names = badx;
    expect_fail(&o, &bs, &tr, NULL, "expected \"axgenres\"");
    static const size_t badxf[][2] = {{0, 3}};
    bs = s;
    bs.cross_fields = badxf;
    expect_fail(&o, &bs, &tr, NULL, "cross 0");

    /* data */
    recd_trank_data_t bd = tr;
    bd.n = 0;
    expect_fail(&o, &s, &bd, NULL, "no training examples");
    expect_fail(&o, &s, NULL, NULL, "no training examples");
    bd = tr;
    bd.ncrosses = 0;
    expect_fail(&o, &s, &bd, NULL, "crosses");
    float lab[10], wt[10];
    memcpy(lab, tr.label, sizeof lab);
    lab[4] = 1.5f;
    bd = tr;
    bd.label = lab;
    expect_fail(&o, &s, &bd, NULL, "example 4: label 1.5 outside [0, 1]");
    lab[4] = NAN;
    expect_fail(&o, &s, &bd, NULL, "example 4: label");
    memcpy(wt, tr.weight, sizeof wt);
    wt[6] = -1.0f;
    bd = tr;
    bd.weight = wt;
    expect_fail(&o, &s, &bd, NULL, "example 6: weight -1");
    wt[6] = 0.0f;
    expect_fail(&o, &s, &bd, NULL, "example 6: weight 0");
    /* a bucket id out of range, an empty slot; in the validation set too */
    uint32_t keep = d.ids[tr.off[2 * 4 + 0]];
    d.ids[tr.off[2 * 4 + 0]] = 7;
    expect_fail(&o, &s, &tr, NULL, "example 2, field a: bucket 7 out of range");
    recd_trank_data_t va = ds_view(&d, 0, 3, 1);
    recd_trank_data_t tr2 = ds_view(&d, 3, 7, 1);
    expect_fail(&o, &s, &tr2, &va, "valid: example 2");
    d.ids[tr.off[2 * 4 + 0]] = keep;
    keep = d.ids[tr.off[5 * 4 + 3]]; /* example 5's first cross id */
    d.ids[tr.off[5 * 4 + 3]] = 11;
    /* DeepFM does not read the crosses; Wide&Deep and LR do */
    recd_trank_t *fm = recd_trank_fit(&o, &s, &tr, NULL, NULL);
    assert_non_null(fm);
    recd_trank_free(fm);
    b = o;
    b.kind = RECD_TRANK_WIDE_DEEP;
    expect_fail(&b, &s, &tr, NULL, "example 5, cross 0: bucket 11 out of range");
    b.kind = RECD_TRANK_LR;
    expect_fail(&b, &s, &tr, NULL, "example 5, cross 0: bucket 11 out of range");
    d.ids[tr.off[5 * 4 + 3]] = keep;
    keep = d.ids[tr.off[2 * 4 + 0]];
    uint64_t *off = malloc((10 * 4 + 1) * sizeof *off);
    memcpy(off, tr.off, (10 * 4 + 1) * sizeof *off);
    off[3 * 4 + 2] = off[3 * 4 + 3]; /* example 3, field c: no id; genres takes it */
    bd = tr;
    bd.off = off;
    expect_fail(&o, &s, &bd, NULL, "example 3, field c: no bucket id");
    free(off);

    /* predict and eval refuse data that does not fit */
    recd_err_t err = {0};
    recd_trank_t *m = recd_trank_fit(&o, &s, &tr, NULL, &err);
    assert_non_null(m);
    float z[10];
    bd = tr;
    bd.nfields = 2;
    assert_int_equal(recd_trank_predict(m, &bd, z), RECD_EINVAL);
    d.ids[tr.off[2 * 4 + 0]] = 70;
    assert_int_equal(recd_trank_predict(m, &tr, z), RECD_EINVAL);
    double ll;
    assert_int_equal(recd_trank_eval(m, &tr, &ll, NULL, &err), RECD_EINVAL);
    assert_non_null(strstr(err.msg, "out of range"));
    d.ids[tr.off[2 * 4 + 0]] = keep;
    assert_int_equal(recd_trank_predict(m, &tr, z), 0);
    bd = tr;
    bd.label = NULL; /* predict needs no labels, eval does */
    assert_int_equal(recd_trank_predict(m, &bd, z), 0);
    assert_int_equal(recd_trank_eval(m, &bd, &ll, NULL, &err), RECD_EINVAL);
    assert_non_null(strstr(err.msg, "no labels"));

    /* writing needs a writer */
    assert_null(recd_trank_write(m, NULL, "sigmoid", &err));
    recd_trank_free(m);
    ds_free(&d);
}

/* ---- serving consistency -------------------------------------------------------------------- */

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)f;
    return flag == FTW_DP ? rmdir(p) : unlink(p);
}

#define S_ITEMS 150

/* Crosses of every kind: request x item (multi-valued), item x item
 * (item first), request x request, id x context. */
static const char *const X_PAIRS[][2] = {{"age", "genres"},
                                         {"genres", "year"},
                                         {"device", "hour"},
                                         {"item_id", "device"},
                                         {"occupation", "genres"}};
#define NX 5

typedef struct world {
    char root[64];
    recd_bundle_t *base; /* the generator's bundle: schema, items, cand.* */
    size_t nf;
    const char *fnames[16];
    uint64_t fbuckets[16];
    char xnames[NX][64];
    const char *xn[NX];
    uint64_t xbuckets[NX];
    size_t xfields[NX][2]; /* field indices (= feature indices) */
} world_t;

static void world_init(world_t *w)
{
    memset(w, 0, sizeof *w);
    strcpy(w->root, "/tmp/recd-test-trank-XXXXXX");
    assert_non_null(mkdtemp(w->root));
    recd_synth_opts_t o;
    recd_train_synth_defaults(&o);
    o.models_dir = w->root;
    o.n_items = S_ITEMS;
    o.dim = 8;
    o.embed_dim = 8;
    o.hidden[0] = 16;
    o.rank_embed_dim = 4;
    o.rank_hidden[0] = 8;
    o.nrank_hidden = 1;
    o.seed = 3;
    o.write_index_file = 0;
    o.index = "Flat";
    recd_err_t err = {0};
    if (recd_train_synth_bundle(&o, &err) != 0)
        fail_msg("synth: %s", err.msg);
    char dir[128];
    snprintf(dir, sizeof dir, "%s/default/1", w->root);
    recd_model_opts_t mo = {.ann_factory = "", .use_index_file = 1};
    w->base = recd_bundle_load(dir, &mo, &err);
    if (!w->base)
        fail_msg("load: %s", err.msg);
    const recd_bundle_t *b = w->base;
    w->nf = b->nfeatures;
    assert_true(w->nf <= 16);
    for (size_t f = 0; f < w->nf; f++) {
        w->fnames[f] = b->features[f].name;
        w->fbuckets[f] = b->features[f].buckets;
    }
    for (size_t c = 0; c < NX; c++) {
        snprintf(w->xnames[c], sizeof w->xnames[c], "%sx%s", X_PAIRS[c][0], X_PAIRS[c][1]);
        w->xn[c] = w->xnames[c];
        w->xbuckets[c] = 997 + 10 * c;
        for (size_t f = 0; f < w->nf; f++) {
            if (strcmp(w->fnames[f], X_PAIRS[c][0]) == 0)
                w->xfields[c][0] = f;
            if (strcmp(w->fnames[f], X_PAIRS[c][1]) == 0)
                w->xfields[c][1] = f;
        }
    }
}

static void world_free(world_t *w)
{
    recd_bundle_unref(w->base);
    nftw(w->root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static recd_trank_schema_t world_schema(const world_t *w)
{
    return (recd_trank_schema_t){.nfields = w->nf,
                                 .field_names = w->fnames,
                                 .field_buckets = w->fbuckets,
                                 .ncrosses = NX,
                                 .cross_names = w->xn,
                                 .cross_buckets = w->xbuckets,
                                 .cross_fields = (const size_t(*)[2])w->xfields};
}

/* One request: the texts of every user/context feature (as serving's
 * request parser produces them) and the hashed values. */
#define MAXV 3
typedef struct request {
    size_t nv[16];
    char t[16][MAXV][32];
    const char *tp[16][MAXV];
    uint32_t tl[16][MAXV];
    uint64_t bk[16][MAXV];
    recd_field_buckets_t fb[16];
} request_t;

static const char *const OCC[] = {"writer", "artist", "doctor/health care", "other"};
static const char *const DEV[] = {"mobile", "desktop", "tablet", "tv"};

static void make_request(const recd_bundle_t *b, uint64_t *seed, request_t *r)
{
    memset(r, 0, sizeof *r);
    for (size_t f = 0; f < b->nfeatures; f++) {
        const recd_feature_t *F = &b->features[f];
        if (F->source == RECD_SRC_ITEM)
            continue;
        size_t n = 1;
        if (strcmp(F->name, "user_id") == 0) {
            snprintf(r->t[f][0], 32, "u%u", below(seed, 40));
        } else if (F->bucketized) {
            double v = strcmp(F->name, "age") == 0 ? 10 + below(seed, 60) : below(seed, 24);
            snprintf(r->t[f][0], 32, "%zu", recd_feature_bucketize(F, v));
        } else if (strcmp(F->name, "gender") == 0) {
            strcpy(r->t[f][0], below(seed, 3) == 0 ? "" : below(seed, 2) ? "F" : "M");
        } else if (strcmp(F->name, "occupation") == 0) {
            n = 1 + below(seed, 2); /* a multi-valued request field */
            for (size_t j = 0; j < n; j++)
                strcpy(r->t[f][j], OCC[below(seed, 4)]);
        } else {
            strcpy(r->t[f][0], DEV[below(seed, 4)]);
        }
        r->nv[f] = n;
        for (size_t j = 0; j < n; j++) {
            r->tp[f][j] = r->t[f][j];
            r->tl[f][j] = (uint32_t)strlen(r->t[f][j]);
            r->bk[f][j] = recd_feature_bucket(F->name, strlen(F->name), r->t[f][j],
                                              strlen(r->t[f][j]), F->buckets);
        }
        r->fb[f] = (recd_field_buckets_t){r->bk[f], n, r->tp[f], r->tl[f]};
    }
}

/* The values of feature f for (request, item): texts and buckets. */
static recd_field_buckets_t values(const recd_bundle_t *b, const request_t *r, size_t item,
                                   size_t f)
{
    if (b->features[f].source != RECD_SRC_ITEM)
        return r->fb[f];
    recd_field_buckets_t v;
    recd_item_values(b, NULL, (int64_t)item, -1, f, &v);
    return v;
}

/* One example for (request, item), with the ids serving will hash. */
static void add_example(ds_t *d, const world_t *w, const request_t *r, size_t item, float label)
{
    const recd_bundle_t *b = w->base;
    uint32_t ids[64];
    for (size_t f = 0; f < w->nf; f++) {
        recd_field_buckets_t v = values(b, r, item, f);
        assert_true(v.n >= 1 && v.n <= 64);
        for (size_t j = 0; j < v.n; j++)
            ids[j] = (uint32_t)v.b[j];
        ds_slot(d, ids, v.n);
    }
    for (size_t c = 0; c < NX; c++) {
        recd_field_buckets_t v1 = values(b, r, item, w->xfields[c][0]);
        recd_field_buckets_t v2 = values(b, r, item, w->xfields[c][1]);
        size_t n = 0;
        for (size_t a = 0; a < v1.n; a++)
            for (size_t e = 0; e < v2.n; e++) {
                char text[256];
                int len = snprintf(text, sizeof text, "%.*s\x1f%.*s", (int)v1.tlen[a], v1.t[a],
                                   (int)v2.tlen[e], v2.t[e]);
                assert_true(n < 64);
                ids[n++] = (uint32_t)recd_feature_bucket(w->xn[c], strlen(w->xn[c]), text,
                                                         (size_t)len, w->xbuckets[c]);
            }
        ds_slot(d, ids, n);
    }
    ds_end(d, label, 1.0f);
}

/* Write a bundle <root>/default/<version> with the base bundle's schema,
 * items and candidate model and the trained ranker; load it with the
 * ranker attached. */
static recd_bundle_t *write_bundle(const world_t *w, const recd_trank_t *m, int64_t version,
                                   const char *output)
{
    const recd_bundle_t *b = w->base;
    recd_err_t err = {0};
    recd_bundle_writer_t *wr = recd_bundle_writer_new(w->root, "default", version, &err);
    if (!wr)
        fail_msg("writer: %s", err.msg);
    for (size_t i = 0; i < b->ntensors; i++) {
        const recd_tensor_t *t = &b->tensors[i];
        if (strncmp(t->name, "cand.", 5) != 0)
            continue;
        if (recd_bundle_writer_tensor(wr, t->name, t->data, t->ndim, t->shape, &err) != 0)
            fail_msg("tensor %s: %s", t->name, err.msg);
    }
    json_t *rk = recd_trank_write(m, wr, output, &err);
    if (!rk)
        fail_msg("trank write: %s", err.msg);
    char path[256];
    snprintf(path, sizeof path, "%s/items.tsv", b->dir);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *tsv = malloc(1 << 20);
    size_t len = fread(tsv, 1, 1 << 20, f);
    fclose(f);
    assert_int_equal(recd_bundle_writer_items(wr, tsv, len, &err), 0);
    free(tsv);
    json_t *man = json_deep_copy(b->manifest);
    json_object_del(man, "tensors");
    json_object_del(man, "files");
    json_object_del(man, "tensor_alignment");
    json_object_set_new(man, "version", json_integer(version));
    json_object_set_new(man, "ranker", rk);
    if (recd_bundle_writer_commit(wr, man, &err) != 0)
        fail_msg("commit: %s", err.msg);
    json_decref(man);
    snprintf(path, sizeof path, "%s/default/%lld", w->root, (long long)version);
    recd_model_opts_t mo = {.ann_factory = "", .use_index_file = 1, .attach = recd_rank_attach};
    recd_bundle_t *nb = recd_bundle_load(path, &mo, &err);
    if (!nb)
        fail_msg("load written bundle: %s", err.msg);
    assert_non_null(recd_rank_of(nb));
    return nb;
}

#define S_REQ 6
#define S_CAND 25

static void consistency(recd_trank_kind_t kind, size_t nhidden, const char *output, int64_t version)
{
    world_t w;
    world_init(&w);
    const recd_bundle_t *b = w.base;
    recd_trank_schema_t s = world_schema(&w);
    uint64_t seed = 17;

    /* training data: labels from a made-up rule, so the weights move */
    ds_t tr;
    ds_init(&tr, w.nf, NX);
    request_t rq;
    for (size_t r = 0; r < 80; r++) {
        make_request(b, &seed, &rq);
        for (size_t j = 0; j < 20; j++) {
            size_t item = below(&seed, S_ITEMS);
            float y = (item + r) % 3 == 0 || below(&seed, 5) == 0 ? 1.0f : 0.0f;
            add_example(&tr, &w, &rq, item, y);
        }
    }
    recd_trank_opts_t o;
    recd_trank_defaults(&o, kind);
    o.embed_dim = 4;
    o.hidden[0] = 16;
    o.hidden[1] = 8;
    o.nhidden = nhidden;
    o.lr = 0.02f;
    o.max_epochs = 2;
    recd_trank_data_t trd = ds_view(&tr, 0, tr.n, 0);
    recd_err_t err = {0};
    recd_trank_t *m = recd_trank_fit(&o, &s, &trd, NULL, &err);
    if (!m)
        fail_msg("fit: %s", err.msg);
    recd_bundle_t *nb = write_bundle(&w, m, version, output);
    assert_string_equal(recd_rank_type(recd_rank_of(nb)), recd_trank_kind_name(kind));
    json_t *rj = json_object_get(nb->manifest, "ranker");
    assert_int_equal(json_array_size(json_object_get(rj, "mlp")), nhidden);
    assert_int_equal(json_array_size(json_object_get(rj, "crosses")),
                     kind == RECD_TRANK_WIDE_DEEP ? NX : 0);

    /* scored by serving, request by request, against the trainer */
    recd_arena_t a;
    recd_arena_init(&a, 1 << 16);
    recd_overlay_t *ov = recd_overlay_acquire(nb);
    double maxdiff = 0;
    for (size_t r = 0; r < S_REQ; r++) {
        make_request(nb, &seed, &rq);
        recd_candidate_t c[S_CAND];
        ds_t ex;
        ds_init(&ex, w.nf, NX);
        for (size_t j = 0; j < S_CAND; j++) {
            c[j] = (recd_candidate_t){(int64_t)below(&seed, S_ITEMS), -1, 0};
            add_example(&ex, &w, &rq, (size_t)c[j].index, 0.0f);
        }
        float sc[S_CAND], z[S_CAND];
        if (recd_rank_score(recd_rank_of(nb), nb, ov, rq.fb, c, S_CAND, &a, sc, NULL, &err) != 0)
            fail_msg("score: %s", err.msg);
        recd_trank_data_t exd = ds_view(&ex, 0, ex.n, 0);
        assert_int_equal(recd_trank_predict(m, &exd, z), 0);
        for (size_t j = 0; j < S_CAND; j++) {
            double want = strcmp(output, "exp") == 0 ? exp(z[j]) : sigm(z[j]);
            double diff = fabs(want - sc[j]);
            maxdiff = fmax(maxdiff, diff);
            if (diff > 1e-5 * (strcmp(output, "exp") == 0 ? fmax(1.0, want) : 1.0))
                fail_msg("request %zu candidate %zu: serving %.7f, trainer %.7f", r, j,
                         (double)sc[j], want);
        }
        ds_free(&ex);
        recd_arena_reset(&a);
    }
    /* the scores are not all the same: the check compared something */
    print_message("  %s (%zu hidden): max |serving - trainer| = %.2g\n", recd_trank_kind_name(kind),
                  nhidden, maxdiff);
    recd_overlay_release(ov);
    recd_arena_free(&a);
    recd_bundle_unref(nb);
    recd_trank_free(m);
    ds_free(&tr);
    world_free(&w);
}

static void test_serving_deepfm(void **state)
{
    consistency(RECD_TRANK_DEEPFM, 2, "sigmoid", 2);
}

static void test_serving_deepfm_no_hidden(void **state)
{
    consistency(RECD_TRANK_DEEPFM, 0, "sigmoid", 2);
}

static void test_serving_wide_deep(void **state)
{
    consistency(RECD_TRANK_WIDE_DEEP, 2, "sigmoid", 2);
}

static void test_serving_wide_deep_exp(void **state)
{
    consistency(RECD_TRANK_WIDE_DEEP, 1, "exp", 3);
}

static void test_write_refusals(void **state)
{
    world_t w;
    world_init(&w);
    recd_trank_schema_t s = world_schema(&w);
    ds_t tr;
    ds_init(&tr, w.nf, NX);
    uint64_t seed = 1;
    request_t rq;
    make_request(w.base, &seed, &rq);
    for (size_t j = 0; j < 30; j++)
        add_example(&tr, &w, &rq, j, (float)(j % 2));
    recd_trank_data_t trd = ds_view(&tr, 0, tr.n, 0);
    recd_trank_opts_t o;
    recd_trank_defaults(&o, RECD_TRANK_LR);
    o.max_epochs = 1;
    recd_err_t err = {0};
    recd_trank_t *lr = recd_trank_fit(&o, &s, &trd, NULL, &err);
    recd_trank_defaults(&o, RECD_TRANK_DEEPFM);
    o.embed_dim = 4;
    o.nhidden = 0;
    o.max_epochs = 1;
    recd_trank_t *fm = recd_trank_fit(&o, &s, &trd, NULL, &err);
    assert_true(lr && fm);
    recd_bundle_writer_t *wr = recd_bundle_writer_new(w.root, "default", 9, &err);
    assert_non_null(wr);
    assert_null(recd_trank_write(lr, wr, "sigmoid", &err));
    assert_non_null(strstr(err.msg, "LR"));
    assert_null(recd_trank_write(fm, wr, "softmax", &err));
    assert_non_null(strstr(err.msg, "softmax"));
    recd_bundle_writer_abort(wr);
    recd_trank_free(lr);
    recd_trank_free(fm);
    ds_free(&tr);
    world_free(&w);
}

/* Warm start copies the LR's bias, first-order and cross tables (a rate of
 * 1e-7 leaves them where they were); a model of other fields is refused.
 * Unseen-id training: rate out of range refused; at rate 0.9 the user
 * field's first-order weights move far less than at 0. */
static void test_warm_start_and_unseen(void **state)
{
    world_t w;
    world_init(&w);
    recd_trank_schema_t s = world_schema(&w);
    ds_t tr;
    ds_init(&tr, w.nf, NX);
    uint64_t seed = 5;
    request_t rq;
    for (size_t r = 0; r < 20; r++) {
        make_request(w.base, &seed, &rq);
        for (size_t j = 0; j < 10; j++)
            add_example(&tr, &w, &rq, j, (float)((r + j) % 2));
    }
    recd_trank_data_t trd = ds_view(&tr, 0, tr.n, 0);
    recd_err_t err = {0};
    recd_trank_opts_t o;
    recd_trank_defaults(&o, RECD_TRANK_LR);
    o.max_epochs = 3;
    recd_trank_t *lr = recd_trank_fit(&o, &s, &trd, NULL, &err);
    assert_non_null(lr);
    recd_trank_defaults(&o, RECD_TRANK_WIDE_DEEP);
    o.embed_dim = 4;
    o.nhidden = 1;
    o.hidden[0] = 8;
    o.max_epochs = 1;
    o.lr = o.lr_sparse = 1e-7f;
    o.warm = lr;
    recd_trank_t *wd = recd_trank_fit(&o, &s, &trd, NULL, &err);
    assert_non_null(wd);
    size_t n1, n2;
    for (size_t f = 0; f < s.nfields; f++) {
        char name[128];
        snprintf(name, sizeof name, "rank.lin.%s", s.field_names[f]);
        float *a = recd_trank_debug_tensor(lr, name, &n1);
        float *b = recd_trank_debug_tensor(wd, name, &n2);
        assert_non_null(a);
        assert_int_equal(n1, n2);
        for (size_t i = 0; i < n1; i++)
            assert_true(fabsf(a[i] - b[i]) <= 1e-4f + 1e-3f * fabsf(a[i]));
    }
    float *ba = recd_trank_debug_tensor(lr, "rank.bias", &n1);
    float *bb = recd_trank_debug_tensor(wd, "rank.bias", &n2);
    assert_true(fabsf(ba[0] - bb[0]) < 1e-4f);
    recd_trank_free(wd);
    /* a warm model of another shape is refused: this LR has the crosses,
     * a DeepFM has none */
    recd_trank_defaults(&o, RECD_TRANK_DEEPFM);
    o.max_epochs = 1;
    o.warm = lr;
    assert_null(recd_trank_fit(&o, &s, &trd, NULL, &err));
    assert_non_null(strstr(err.msg, "warm start"));
    /* unseen-id training */
    recd_trank_defaults(&o, RECD_TRANK_LR);
    o.unseen_field = 0;
    o.unseen_rate = 0.95f;
    assert_null(recd_trank_fit(&o, &s, &trd, NULL, &err));
    assert_non_null(strstr(err.msg, "unseen_rate"));
    /* with a rate it trains (finite, deterministic) and differs from rate 0 */
    float *z[3];
    for (int k = 0; k < 3; k++) {
        recd_trank_defaults(&o, RECD_TRANK_DEEPFM);
        o.embed_dim = 4;
        o.nhidden = 1;
        o.hidden[0] = 8;
        o.max_epochs = 2;
        o.unseen_field = 0;
        o.unseen_rate = k ? 0.5f : 0.0f;
        recd_trank_schema_t s4 = s;
        recd_trank_t *m = recd_trank_fit(&o, &s4, &trd, NULL, &err);
        assert_non_null(m);
        z[k] = malloc(trd.n * sizeof *z[k]);
        assert_int_equal(recd_trank_predict(m, &trd, z[k]), 0);
        for (size_t i = 0; i < trd.n; i++)
            assert_true(isfinite(z[k][i]));
        recd_trank_free(m);
    }
    assert_memory_equal(z[1], z[2], trd.n * sizeof(float));
    assert_memory_not_equal(z[0], z[1], trd.n * sizeof(float));
    for (int k = 0; k < 3; k++)
        free(z[k]);
    recd_trank_free(lr);
    ds_free(&tr);
    world_free(&w);
}

/* ---- speed -------------------------------------------------------------------------------- */

/* DeepFM, K 16, MLP 256-128-64, batch 256 over five fields like
 * MovieLens's: user_id (1024 buckets), item_id (16384), genres
 * (multi-valued, 64), year (32), one context field (16). Prints examples/s
 * of the training loop. Sized to take about a second; RECD_TRANK_BENCH_N
 * sets the number of examples. */
static void test_speed(void **state)
{
    static const char *const names[] = {"user_id", "item_id", "genres", "year", "device"};
    static const uint64_t buckets[] = {1024, 16384, 64, 32, 16};
    recd_trank_schema_t s = {.nfields = 5, .field_names = names, .field_buckets = buckets};
    size_t n = 20000;
    const char *env = getenv("RECD_TRANK_BENCH_N");
    if (env && atol(env) > 0)
        n = (size_t)atol(env);
    ds_t d;
    ds_init(&d, 5, 0);
    uint64_t seed = 4;
    for (size_t i = 0; i < n; i++) {
        uint32_t g[3];
        size_t ng = 1 + below(&seed, 3);
        uint32_t u = below(&seed, 1024), it = below(&seed, 16384);
        for (size_t j = 0; j < ng; j++)
            g[j] = below(&seed, 64);
        ds_slot1(&d, u);
        ds_slot1(&d, it);
        ds_slot(&d, g, ng);
        ds_slot1(&d, below(&seed, 32));
        ds_slot1(&d, below(&seed, 16));
        ds_end(&d, (u ^ it) % 3 == 0 ? 1.0f : 0.0f, 1.0f);
    }
    recd_trank_opts_t o;
    recd_trank_defaults(&o, RECD_TRANK_DEEPFM);
    o.max_epochs = 1;
    recd_trank_data_t tr = ds_view(&d, 0, n, 0);
    recd_err_t err = {0};
    recd_trank_t *m = recd_trank_fit(&o, &s, &tr, NULL, &err);
    assert_non_null(m);
    recd_trank_summary_t sum;
    recd_trank_summary(m, &sum);
    print_message("  deepfm K16 256-128-64 batch 256: %.0f examples/s (%zu examples)\n",
                  sum.examples_per_s, n);
    assert_true(sum.examples_per_s > 0);
    recd_trank_free(m);
    ds_free(&d);
}

int main(void)
{
    recd_nn_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradcheck_deepfm),
        cmocka_unit_test(test_gradcheck_deepfm_no_hidden),
        cmocka_unit_test(test_gradcheck_wide_deep),
        cmocka_unit_test(test_gradcheck_lr),
        cmocka_unit_test(test_gradcheck_dropout),
        cmocka_unit_test(test_learning),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_early_stopping),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_serving_deepfm),
        cmocka_unit_test(test_serving_deepfm_no_hidden),
        cmocka_unit_test(test_serving_wide_deep),
        cmocka_unit_test(test_serving_wide_deep_exp),
        cmocka_unit_test(test_write_refusals),
        cmocka_unit_test(test_warm_start_and_unseen),
        cmocka_unit_test(test_speed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
