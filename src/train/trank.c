/*
 * Ranking-model trainer: DeepFM (Guo et al., IJCAI 2017), Wide&Deep (Cheng
 * et al., DLRS 2016) and logistic regression on hashed categorical fields,
 * with the forward pass of src/rank (BUNDLE.md, "Feature hashing and the
 * forward passes"):
 *   v_f = mean of rank.emb.f rows, w_f = mean of rank.lin.f entries
 *   DeepFM:    logit = bias + sum w_f + 1/2 (|sum v_f|^2 - sum |v_f|^2) + deep
 *   Wide&Deep: logit = bias + sum w_f + sum_c mean(rank.wide.c[ids]) + deep
 *   LR:        logit = bias + sum w_f (+ crosses)
 *   deep = relu-MLP(concat v_f) @ out.w + out.b
 *
 * One minibatch: the field vectors of its examples are gathered into a
 * contiguous [B, F*K] matrix, each layer is one sgemm (recd_nn_dense_batch),
 * the backward pass is two sgemms per layer (recd_nn_dense_batch_backward),
 * and the gradient of the layer-0 input (plus the FM term's sum - v_f) is
 * scattered to the embedding rows the batch touched. Embedding, first-order
 * and cross tables are sparse parameters (lazy Adam / Adagrad: only touched
 * rows are updated, L2 on those rows); the MLP is dense. No allocation
 * happens per example or per batch: one workspace per fit / predict call.
 *
 * Defaults (recd_trank_defaults), chosen on MovieLens ml-latest-small
 * (100k ratings, >= 4 positive; fields user_id, item_id, genres, year;
 * Wide&Deep crosses user_idxgenres and genresxyear; the last 20% by time
 * held out, the 10% before it the validation set; 3 seeds):
 *   - Adam, batch 256, at most 10 epochs, patience 2, no lr decay;
 *   - lr 1e-3 for the MLP and bias but 1e-2 for the sparse tables: a table
 *     row moves only when a batch touches it (a few times per epoch for a
 *     rare id), and at 1e-3 the first-order weights barely leave zero
 *     before the MLP has memorised the training set. This one change took
 *     DeepFM's test logloss from 0.681 to 0.674;
 *   - L2 1e-3 on touched table rows and 3e-3 on the MLP weights (with
 *     Adam the penalty competes with the normalised step, so it has to be
 *     much larger than with SGD to matter; 1e-2 on the MLP starved it to
 *     zero on a synthetic interaction task); no dropout (0.5 did about as
 *     well as the MLP L2, at a cost in speed);
 *   - embeddings N(0, 0.01^2), Glorot weights, zero biases and tables, the
 *     global bias at the logit of the weighted base rate.
 * The deep models peak after 1-2 epochs of ~73k examples and then overfit
 * (training loss falls, validation loss rises); early stopping with the
 * best epoch restored is what keeps them level with LR. Results (test
 * logloss / AUC, mean of 3 seeds): LR 0.6680 / 0.626, DeepFM 0.6672 /
 * 0.644, Wide&Deep 0.6673 / 0.644; with the last 20% of each user's
 * ratings held out instead (users seen in training): LR 0.6073 / 0.7372,
 * DeepFM 0.6008 / 0.7370, Wide&Deep 0.6015 / 0.7369.
 */
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recd/core.h"
#include "recd/model.h"
#include "recd/nn.h"
#include "recd/trank.h"

#define MAX_BATCH 65536
#define MAX_EMBED 65536
#define MAX_WIDTH 65536
#define MAX_BUCKETS (UINT64_C(1) << 32)
#define EMB_STD 0.01f /* initial embeddings N(0, EMB_STD^2) */
#define EVAL_BLOCK 256

typedef struct layer {
    recd_param_t *w, *b; /* [in, out], [1, out] */
    size_t in, out;
    int relu; /* hidden layers; the output layer is linear */
} layer_t;

struct recd_trank {
    recd_trank_opts_t o;
    size_t k;      /* K, 0 for LR (no embeddings) */
    size_t nf;     /* fields */
    size_t nx;     /* crosses used (0 for DeepFM) */
    size_t nslots; /* slots per example in the data: nf + the schema's crosses */
    char **fname;  /* [nf] */
    uint64_t *fbuckets;
    char **xname; /* [nx] "<f1>x<f2>" */
    uint64_t *xbuckets;
    size_t (*xfields)[2];
    recd_param_t **emb;  /* [nf], NULL for LR */
    recd_param_t **lin;  /* [nf] */
    recd_param_t **wide; /* [nx] */
    recd_param_t *bias;  /* [1, 1] */
    layer_t *layers;     /* hidden layers then the output layer; none for LR */
    size_t nlayers;
    size_t widest;         /* widest layer output (>= 1) */
    recd_param_t **params; /* every parameter */
    char **pname;          /* [nparams] bundle tensor names */
    size_t nparams;
    recd_param_t **dense, **sparse; /* the same, split by update kind */
    size_t ndense, nsparse;
    recd_trank_summary_t sum;
};

/* ---- small helpers ----------------------------------------------------------------- */

/* Randomness (shuffling, dropout, initial weights) comes from the shared
 * xoshiro256** of recd/core.h (Blackman & Vigna), seeded through splitmix64
 * (Steele et al.); shuffles draw with recd_rng_below64_fast (one 128-bit
 * multiply-shift per swap). */

static char *dupstr(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static double now_s(void)
{
    return (double)recd_time_mono_ns() * 1e-9;
}

const char *recd_trank_kind_name(recd_trank_kind_t kind)
{
    switch (kind) {
    case RECD_TRANK_DEEPFM: return "deepfm";
    case RECD_TRANK_WIDE_DEEP: return "wide_deep";
    case RECD_TRANK_LR: return "lr";
    }
    return "unknown";
}

void recd_trank_defaults(recd_trank_opts_t *o, recd_trank_kind_t kind)
{
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->embed_dim = 16;
    o->hidden[0] = 256;
    o->hidden[1] = 128;
    o->hidden[2] = 64;
    o->nhidden = 3;
    o->optimizer = RECD_OPT_ADAM;
    o->lr = 0.0f; /* by optimiser and kind: resolve_rates() */
    o->lr_sparse = 0.0f;
    o->l2_emb = 1e-3f;
    o->l2_dense = -1.0f; /* by optimiser: resolve_rates() */
    o->lr_decay = 1.0f;
    o->unseen_field = SIZE_MAX;
    o->unseen_rate = 0.0f;
    o->batch = 256;
    o->max_epochs = 10;
    o->patience = 2;
    o->seed = 1;
    o->verbose = 0;
}

/* The learning rates that 0 stands for (trank.h). Adam moves each weight
 * by about lr per update, and a table row is updated only when a batch
 * touches it - a few times per epoch for a rare id - while the MLP is
 * updated at every step: hence 10x the MLP's rate for the tables. LR has
 * only tables (and the bias). Adagrad's accumulator already gives rare
 * rows larger steps: one rate for both. */
static void resolve_rates(recd_trank_opts_t *o)
{
    int adagrad = o->optimizer == RECD_OPT_ADAGRAD;
    if (o->lr == 0.0f)
        o->lr = adagrad ? 0.05f : o->kind == RECD_TRANK_LR ? 1e-2f : 1e-3f;
    if (o->lr_sparse == 0.0f)
        o->lr_sparse = adagrad || o->kind == RECD_TRANK_LR ? o->lr : 1e-2f;
    /* L2 on the MLP: with Adagrad the constant pull of the penalty outlasts
     * the shrinking steps of the data's noisy gradients and drives the
     * MLP to zero (seen on MovieLens); Adam's moving average does not. */
    if (o->l2_dense < 0.0f)
        o->l2_dense = adagrad ? 0.0f : 3e-3f;
}

/* ---- validation ---------------------------------------------------------------------- */

static int check_opts(const recd_trank_opts_t *o, recd_err_t *err)
{
    if (!o)
        return recd_err_set(err, RECD_EINVAL, "trank: no options");
    if (o->kind != RECD_TRANK_DEEPFM && o->kind != RECD_TRANK_WIDE_DEEP && o->kind != RECD_TRANK_LR)
        return recd_err_set(err, RECD_EINVAL, "trank: kind %d: expected deepfm, wide_deep or lr",
                            (int)o->kind);
    if (o->kind != RECD_TRANK_LR) {
        if (o->embed_dim < 1 || o->embed_dim > MAX_EMBED)
            return recd_err_set(err, RECD_EINVAL, "trank: embed_dim %zu: expected 1..%d",
                                o->embed_dim, MAX_EMBED);
        if (o->nhidden > RECD_TRANK_MAX_HIDDEN)
            return recd_err_set(err, RECD_EINVAL, "trank: nhidden %zu: at most %d", o->nhidden,
                                RECD_TRANK_MAX_HIDDEN);
        for (size_t i = 0; i < o->nhidden; i++)
            if (o->hidden[i] < 1 || o->hidden[i] > MAX_WIDTH)
                return recd_err_set(err, RECD_EINVAL, "trank: hidden[%zu] = %zu: expected 1..%d", i,
                                    o->hidden[i], MAX_WIDTH);
    }
    if (!(o->unseen_rate >= 0.0f && o->unseen_rate <= 0.9f))
        return recd_err_set(err, RECD_EINVAL, "trank: unseen_rate %g: expected 0..0.9",
                            (double)o->unseen_rate);
    if (!(o->dropout >= 0.0f && o->dropout <= 0.9f))
        return recd_err_set(err, RECD_EINVAL, "trank: dropout %g: expected 0..0.9",
                            (double)o->dropout);
    if (o->optimizer != RECD_OPT_ADAM && o->optimizer != RECD_OPT_ADAGRAD)
        return recd_err_set(err, RECD_EINVAL, "trank: optimizer %d: expected Adam or Adagrad",
                            o->optimizer);
    if (!(o->lr >= 0.0f) || !isfinite(o->lr) || o->lr > 10.0f)
        return recd_err_set(err, RECD_EINVAL, "trank: lr %g: expected 0 (default) .. 10",
                            (double)o->lr);
    if (!(o->lr_sparse >= 0.0f) || !isfinite(o->lr_sparse) || o->lr_sparse > 10.0f)
        return recd_err_set(err, RECD_EINVAL, "trank: lr_sparse %g: expected 0 (default) .. 10",
                            (double)o->lr_sparse);
    if (!(o->l2_emb >= 0.0f) || !isfinite(o->l2_emb) || isnan(o->l2_dense) ||
        !isfinite(o->l2_dense))
        return recd_err_set(err, RECD_EINVAL,
                            "trank: l2_emb %g, l2_dense %g: expected >= 0 (l2_dense < 0: default)",
                            (double)o->l2_emb, (double)o->l2_dense);
    if (!(o->lr_decay > 0.0f && o->lr_decay <= 1.0f))
        return recd_err_set(err, RECD_EINVAL, "trank: lr_decay %g: expected (0, 1]",
                            (double)o->lr_decay);
    if (o->batch < 1 || o->batch > MAX_BATCH)
        return recd_err_set(err, RECD_EINVAL, "trank: batch %zu: expected 1..%d", o->batch,
                            MAX_BATCH);
    if (o->max_epochs < (o->warm_tensor ? 0 : 1) || o->max_epochs > 100000)
        return recd_err_set(err, RECD_EINVAL, "trank: max_epochs %d: expected %d..100000",
                            o->max_epochs, o->warm_tensor ? 0 : 1);
    if (o->patience < 1)
        return recd_err_set(err, RECD_EINVAL, "trank: patience %d: expected >= 1", o->patience);
    return 0;
}

static int check_schema(const recd_trank_schema_t *s, recd_err_t *err)
{
    if (!s || s->nfields == 0 || !s->field_names || !s->field_buckets)
        return recd_err_set(err, RECD_EINVAL, "trank: schema: no fields");
    for (size_t f = 0; f < s->nfields; f++) {
        const char *n = s->field_names[f];
        if (!n || !*n || strlen(n) > 200)
            return recd_err_set(err, RECD_EINVAL, "trank: schema: field %zu: bad name", f);
        if (s->field_buckets[f] < 1 || s->field_buckets[f] > MAX_BUCKETS)
            return recd_err_set(err, RECD_EINVAL,
                                "trank: schema: field %s: %llu buckets, expected 1..2^32", n,
                                (unsigned long long)s->field_buckets[f]);
        for (size_t g = 0; g < f; g++)
            if (strcmp(s->field_names[g], n) == 0)
                return recd_err_set(err, RECD_EINVAL, "trank: schema: field %s given twice", n);
    }
    if (s->ncrosses && (!s->cross_names || !s->cross_buckets || !s->cross_fields))
        return recd_err_set(err, RECD_EINVAL, "trank: schema: %zu crosses without descriptions",
                            s->ncrosses);
    for (size_t c = 0; c < s->ncrosses; c++) {
        size_t a = s->cross_fields[c][0], b = s->cross_fields[c][1];
        if (a >= s->nfields || b >= s->nfields)
            return recd_err_set(err, RECD_EINVAL,
                                "trank: schema: cross %zu: field index out of "
                                "range",
                                c);
        const char *n = s->cross_names[c], *na = s->field_names[a], *nb = s->field_names[b];
        size_t la = strlen(na);
        /* serving hashes a cross under "<f1>x<f2>": any other name would
         * train on buckets serving never looks up */
        if (!n || strncmp(n, na, la) != 0 || n[la] != 'x' || strcmp(n + la + 1, nb) != 0)
            return recd_err_set(err, RECD_EINVAL,
                                "trank: schema: cross %zu: name \"%s\", "
                                "expected \"%sx%s\"",
                                c, n ? n : "(null)", na, nb);
        if (s->cross_buckets[c] < 1 || s->cross_buckets[c] > MAX_BUCKETS)
            return recd_err_set(err, RECD_EINVAL,
                                "trank: schema: cross %s: %llu buckets, expected 1..2^32", n,
                                (unsigned long long)s->cross_buckets[c]);
    }
    return 0;
}

/* Check that d fits m: shapes, ids per slot (slot_buckets[s] = 0: a cross
 * the model ignores, ids not read), labels, weights. `what` names the set
 * in messages. */
static int check_data(const recd_trank_t *m, const uint64_t *slot_buckets,
                      const recd_trank_data_t *d, const char *what, int need_labels,
                      recd_err_t *err)
{
    if (!d)
        return recd_err_set(err, RECD_EINVAL, "trank: %s: no data", what);
    if (d->nfields != m->nf || d->nfields + d->ncrosses != m->nslots)
        return recd_err_set(err, RECD_EINVAL,
                            "trank: %s: %zu fields and %zu crosses, the model has %zu and %zu",
                            what, d->nfields, d->ncrosses, m->nf, m->nslots - m->nf);
    if (d->n == 0)
        return 0;
    if (!d->off || !d->ids)
        return recd_err_set(err, RECD_EINVAL, "trank: %s: no bucket ids", what);
    if (need_labels && !d->label)
        return recd_err_set(err, RECD_EINVAL, "trank: %s: no labels", what);
    size_t ns = m->nslots;
    for (size_t i = 0; i < d->n; i++) {
        const uint64_t *o = d->off + i * ns;
        for (size_t s = 0; s < ns; s++) {
            if (o[s + 1] <= o[s])
                return s < m->nf ? recd_err_set(err, RECD_EINVAL,
                                                "trank: %s: example %zu, field %s: no bucket id",
                                                what, i, m->fname[s])
                                 : recd_err_set(err, RECD_EINVAL,
                                                "trank: %s: example %zu, cross %zu: no bucket id",
                                                what, i, s - m->nf);
            uint64_t nb = slot_buckets[s];
            if (nb == 0)
                continue;
            for (uint64_t j = o[s]; j < o[s + 1]; j++) {
                if (d->ids[j] < nb)
                    continue;
                char where[256];
                if (s < m->nf)
                    snprintf(where, sizeof where, "field %s", m->fname[s]);
                else
                    snprintf(where, sizeof where, "cross %zu", s - m->nf);
                return recd_err_set(err, RECD_EINVAL,
                                    "trank: %s: example %zu, %s: bucket %u out of range (%llu "
                                    "buckets)",
                                    what, i, where, d->ids[j], (unsigned long long)nb);
            }
        }
        if (need_labels) {
            float y = d->label[i];
            if (!(y >= 0.0f && y <= 1.0f))
                return recd_err_set(err, RECD_EINVAL,
                                    "trank: %s: example %zu: label %g outside [0, 1]", what, i,
                                    (double)y);
        }
        if (d->weight && !(d->weight[i] > 0.0f && isfinite(d->weight[i])))
            return recd_err_set(err, RECD_EINVAL,
                                "trank: %s: example %zu: weight %g, expected a finite value > 0",
                                what, i, (double)d->weight[i]);
    }
    return 0;
}

/* ---- model construction -------------------------------------------------------------- */

static void model_free(recd_trank_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nparams; i++) {
        recd_param_free(m->params[i]);
        free(m->pname[i]);
    }
    free(m->params);
    free(m->pname);
    free(m->dense);
    free(m->sparse);
    for (size_t f = 0; m->fname && f < m->nf; f++)
        free(m->fname[f]);
    for (size_t c = 0; m->xname && c < m->nx; c++)
        free(m->xname[c]);
    free(m->fname);
    free(m->fbuckets);
    free(m->xname);
    free(m->xbuckets);
    free(m->xfields);
    free(m->emb);
    free(m->lin);
    free(m->wide);
    free(m->layers);
    free(m);
}

void recd_trank_free(recd_trank_t *m)
{
    model_free(m);
}

/* A new parameter registered with the model under its bundle tensor name. */
static recd_param_t *add_param(recd_trank_t *m, const char *name, size_t rows, size_t cols,
                               int sparse, float l2)
{
    char *nm = dupstr(name);
    recd_param_t *p = recd_param_new(name, rows, cols, sparse, (recd_opt_kind_t)m->o.optimizer);
    if (!nm || !p) {
        free(nm);
        recd_param_free(p);
        return NULL;
    }
    p->l2 = l2;
    if (sparse)
        m->sparse[m->nsparse++] = p;
    else
        m->dense[m->ndense++] = p;
    m->params[m->nparams] = p;
    m->pname[m->nparams] = nm;
    m->nparams++;
    return p;
}

/* Seed of the parameter with index i: one PRNG stream per tensor. */
static uint64_t param_seed(uint64_t seed, size_t i)
{
    uint64_t s = seed ^ (0x5851f42d4c957f2dULL * (uint64_t)(i + 1));
    return recd_splitmix64(&s);
}

static recd_trank_t *model_new(const recd_trank_opts_t *o, const recd_trank_schema_t *s,
                               double base_logit, recd_err_t *err)
{
    recd_trank_t *m = calloc(1, sizeof *m);
    if (!m)
        goto oom;
    m->o = *o;
    resolve_rates(&m->o);
    int deep = o->kind != RECD_TRANK_LR;
    m->k = deep ? o->embed_dim : 0;
    m->nf = s->nfields;
    m->nx = o->kind == RECD_TRANK_DEEPFM ? 0 : s->ncrosses;
    m->nslots = s->nfields + s->ncrosses;
    size_t nh = deep ? o->nhidden : 0;
    m->nlayers = deep ? nh + 1 : 0;
    size_t maxp = 1 + 2 * m->nf + m->nx + 2 * m->nlayers;
    m->params = calloc(maxp, sizeof *m->params);
    m->pname = calloc(maxp, sizeof *m->pname);
    m->dense = calloc(maxp, sizeof *m->dense);
    m->sparse = calloc(maxp, sizeof *m->sparse);
    m->fname = calloc(m->nf, sizeof *m->fname);
    m->fbuckets = calloc(m->nf, sizeof *m->fbuckets);
    m->xname = calloc(m->nx + 1, sizeof *m->xname);
    m->xbuckets = calloc(m->nx + 1, sizeof *m->xbuckets);
    m->xfields = calloc(m->nx + 1, sizeof *m->xfields);
    m->emb = calloc(m->nf, sizeof *m->emb);
    m->lin = calloc(m->nf, sizeof *m->lin);
    m->wide = calloc(m->nx + 1, sizeof *m->wide);
    m->layers = calloc(m->nlayers + 1, sizeof *m->layers);
    if (!m->params || !m->pname || !m->dense || !m->sparse || !m->fname || !m->fbuckets ||
        !m->xname || !m->xbuckets || !m->xfields || !m->emb || !m->lin || !m->wide || !m->layers)
        goto oom;
    for (size_t f = 0; f < m->nf; f++) {
        if (!(m->fname[f] = dupstr(s->field_names[f])))
            goto oom;
        m->fbuckets[f] = s->field_buckets[f];
    }
    for (size_t c = 0; c < m->nx; c++) {
        if (!(m->xname[c] = dupstr(s->cross_names[c])))
            goto oom;
        m->xbuckets[c] = s->cross_buckets[c];
        m->xfields[c][0] = s->cross_fields[c][0];
        m->xfields[c][1] = s->cross_fields[c][1];
    }

    char name[256];
    if (!(m->bias = add_param(m, "rank.bias", 1, 1, 0, 0.0f)))
        goto oom;
    m->bias->w[0] = (float)base_logit;
    for (size_t f = 0; f < m->nf; f++) {
        if (deep) {
            snprintf(name, sizeof name, "rank.emb.%s", m->fname[f]);
            if (!(m->emb[f] = add_param(m, name, m->fbuckets[f], m->k, 1, o->l2_emb)))
                goto oom;
            recd_nn_init_normal(m->emb[f]->w, m->fbuckets[f] * m->k, EMB_STD,
                                param_seed(o->seed, m->nparams));
        }
        snprintf(name, sizeof name, "rank.lin.%s", m->fname[f]);
        if (!(m->lin[f] = add_param(m, name, m->fbuckets[f], 1, 1, o->l2_emb)))
            goto oom;
    }
    for (size_t c = 0; c < m->nx; c++) {
        snprintf(name, sizeof name, "rank.wide.%s", m->xname[c]);
        if (!(m->wide[c] = add_param(m, name, m->xbuckets[c], 1, 1, o->l2_emb)))
            goto oom;
    }
    size_t in = m->nf * m->k;
    m->widest = 1;
    for (size_t l = 0; l < m->nlayers; l++) {
        layer_t *L = &m->layers[l];
        int out_layer = l == nh;
        L->in = in;
        L->out = out_layer ? 1 : o->hidden[l];
        L->relu = !out_layer;
        if (out_layer)
            snprintf(name, sizeof name, "rank.out.w");
        else
            snprintf(name, sizeof name, "rank.mlp.%zu.w", l);
        if (!(L->w = add_param(m, name, L->in, L->out, 0, m->o.l2_dense)))
            goto oom;
        /* Glorot & Bengio 2010 uniform init for every weight matrix */
        recd_nn_init_glorot(L->w->w, L->in, L->out, param_seed(o->seed, m->nparams));
        if (out_layer)
            snprintf(name, sizeof name, "rank.out.b");
        else
            snprintf(name, sizeof name, "rank.mlp.%zu.b", l);
        if (!(L->b = add_param(m, name, 1, L->out, 0, 0.0f)))
            goto oom;
        if (L->out > m->widest)
            m->widest = L->out;
        in = L->out;
    }
    return m;
oom:
    model_free(m);
    recd_err_set(err, RECD_ENOMEM, "trank: out of memory (model)");
    return NULL;
}

/* Buckets per data slot (0: a cross the model ignores); caller frees. */
static uint64_t *slot_buckets(const recd_trank_t *m)
{
    uint64_t *b = calloc(m->nslots, sizeof *b);
    if (!b)
        return NULL;
    for (size_t f = 0; f < m->nf; f++)
        b[f] = m->fbuckets[f];
    for (size_t c = 0; c < m->nx; c++)
        b[m->nf + c] = m->xbuckets[c];
    return b;
}

/* ---- workspace ------------------------------------------------------------------------ */

/* Scratch for up to cap examples: one allocation per fit / predict call. */
typedef struct work {
    size_t cap;
    float *x;      /* [cap, F*K] layer-0 input: the field vectors */
    float *dx;     /* [cap, F*K] its gradient */
    float **act;   /* [nlayers] [cap, out_l] layer outputs */
    float *dy0;    /* [cap, widest] */
    float *dy1;    /* [cap, widest] */
    float *fsum;   /* [cap, K] DeepFM: sum of the field vectors */
    float *z, *dz; /* [cap] logits and their gradient */
    float *y, *w;  /* [cap] labels and weights of the batch */
    size_t *ex;    /* [cap] example indices (sequential passes) */
    uint8_t *unseen; /* [cap] the example saw unseen_field as a never-trained id */
    int dropped;   /* the last forward pass applied dropout */
    void *block;
} work_t;

static void work_free(work_t *w)
{
    free(w->act);
    free(w->block);
    memset(w, 0, sizeof *w);
}

static int work_init(work_t *w, const recd_trank_t *m, size_t cap)
{
    memset(w, 0, sizeof *w);
    w->cap = cap;
    size_t fk = m->nf * m->k, floats = 2 * cap * fk + 2 * cap * m->widest + cap * m->k + 4 * cap;
    for (size_t l = 0; l < m->nlayers; l++)
        floats += cap * m->layers[l].out;
    w->act = calloc(m->nlayers + 1, sizeof *w->act);
    w->block = malloc(cap * sizeof(size_t) + floats * sizeof(float) + cap);
    if (!w->act || !w->block) {
        work_free(w);
        return RECD_ENOMEM;
    }
    w->ex = w->block; /* first: malloc's alignment suits size_t */
    float *p = (float *)(void *)(w->ex + cap);
    w->x = p, p += cap * fk;
    w->dx = p, p += cap * fk;
    for (size_t l = 0; l < m->nlayers; l++)
        w->act[l] = p, p += cap * m->layers[l].out;
    w->dy0 = p, p += cap * m->widest;
    w->dy1 = p, p += cap * m->widest;
    w->fsum = p, p += cap * m->k;
    w->z = p, p += cap;
    w->dz = p, p += cap;
    w->y = p, p += cap;
    w->w = p, p += cap;
    w->unseen = (uint8_t *)p;
    memset(w->unseen, 0, cap);
    return 0;
}

/* ---- forward and backward --------------------------------------------------------------- */

/* Sum of table entries ids[0..n) times 1/n (serving's mean: the sum, then
 * one multiplication by 1/n). */
static float mean1(const float *t, const uint32_t *ids, size_t n)
{
    if (n == 1)
        return t[ids[0]];
    float s = 0.0f;
    for (size_t j = 0; j < n; j++)
        s += t[ids[j]];
    return s * (1.0f / (float)n);
}

/* out[k] = mean of table rows ids[0..n), as recd_nn_embed_mean computes it. */
static void mean_rows(const float *t, size_t k, const uint32_t *ids, size_t n, float *out)
{
    if (n == 1) {
        memcpy(out, t + (size_t)ids[0] * k, k * sizeof *out);
        return;
    }
    memset(out, 0, k * sizeof *out);
    for (size_t j = 0; j < n; j++) {
        const float *r = t + (size_t)ids[j] * k;
        for (size_t d = 0; d < k; d++)
            out[d] += r[d];
    }
    float inv = 1.0f / (float)n;
    for (size_t d = 0; d < k; d++)
        out[d] *= inv;
}

/* Inverted dropout (Srivastava et al., JMLR 2014) on n activations: each
 * is zeroed with probability p (in steps of 2^-16) and the rest scaled by
 * 1 / (1 - p), so inference needs no rescaling. */
static void dropout(float *y, size_t n, float p, recd_rng_t *r)
{
    uint32_t cut = (uint32_t)(p * 65536.0f);
    float keep = 1.0f / (1.0f - p);
    for (size_t i = 0; i < n; i += 4) {
        uint64_t bits = recd_rng_next(r);
        for (size_t j = i; j < i + 4 && j < n; j++, bits >>= 16)
            y[j] = (uint32_t)(bits & 0xffff) < cut ? 0.0f : y[j] * keep;
    }
}

/* Logits of the bn examples w->ex[0..bn) of d into w->z, keeping what the
 * backward pass needs (field vectors, FM sums, layer outputs). drop: the
 * dropout stream when training (NULL: no dropout). */
static void forward(const recd_trank_t *m, const recd_trank_data_t *d, size_t bn, work_t *w,
                    recd_rng_t *drop)
{
    size_t k = m->k, nf = m->nf, fk = nf * k, ns = m->nslots;
    int fm = m->o.kind == RECD_TRANK_DEEPFM;
    float bias = m->bias->w[0];
    size_t uf = m->o.unseen_field;
    int unseen_on = drop && m->o.unseen_rate > 0.0f && uf < nf;
    uint64_t unseen_cut = (uint64_t)((double)m->o.unseen_rate * 18446744073709551616.0);
    for (size_t i = 0; i < bn; i++) {
        const uint64_t *o = d->off + w->ex[i] * ns;
        float z = bias, *x = w->x + i * fk;
        int un = w->unseen[i] = unseen_on && recd_rng_next(drop) < unseen_cut;
        for (size_t f = 0; f < nf; f++) {
            const uint32_t *ids = d->ids + o[f];
            size_t n = (size_t)(o[f + 1] - o[f]);
            if (un && f == uf) {
                if (k)
                    memset(x + f * k, 0, k * sizeof *x);
                continue;
            }
            z += mean1(m->lin[f]->w, ids, n);
            if (k)
                mean_rows(m->emb[f]->w, k, ids, n, x + f * k);
        }
        for (size_t c = 0; c < m->nx; c++) {
            size_t s = nf + c;
            if (un && (m->xfields[c][0] == uf || m->xfields[c][1] == uf))
                continue;
            z += mean1(m->wide[c]->w, d->ids + o[s], (size_t)(o[s + 1] - o[s]));
        }
        if (fm) {
            /* Rendle's identity: sum_{f<g} <v_f, v_g> = 1/2 (|sum|^2 - sum |v_f|^2) */
            float *s = w->fsum + i * k, sq = 0.0f;
            memset(s, 0, k * sizeof *s);
            recd_nn_fm_accum(x, nf, k, s, &sq);
            z += recd_nn_fm_pairwise(s, k, sq);
        }
        w->z[i] = z;
    }
    const float *in = w->x;
    w->dropped = drop && m->o.dropout > 0.0f;
    for (size_t l = 0; l < m->nlayers; l++) {
        const layer_t *L = &m->layers[l];
        recd_nn_dense_batch(L->w->w, L->b->w, (int)L->in, (int)L->out, L->relu, in, bn, w->act[l]);
        if (w->dropped && L->relu)
            dropout(w->act[l], bn * L->out, m->o.dropout, drop);
        in = w->act[l];
    }
    if (m->nlayers) {
        const float *deep = w->act[m->nlayers - 1];
        for (size_t i = 0; i < bn; i++)
            w->z[i] += deep[i];
    }
}

/* Accumulate the gradients of sum_i dz[i] * logit_i into the parameters
 * (sparse rows marked touched), given forward()'s state in w. */
static void backward(recd_trank_t *m, const recd_trank_data_t *d, size_t bn, work_t *w)
{
    size_t k = m->k, nf = m->nf, fk = nf * k, ns = m->nslots;
    const float *dz = w->dz;
    double db = 0.0;
    for (size_t i = 0; i < bn; i++)
        db += dz[i];
    m->bias->g[0] += (float)db;
    for (size_t i = 0; i < bn; i++) {
        const uint64_t *o = d->off + w->ex[i] * ns;
        int un = w->unseen[i];
        for (size_t f = 0; f < nf; f++) {
            size_t n = (size_t)(o[f + 1] - o[f]);
            float g = n == 1 ? dz[i] : dz[i] * (1.0f / (float)n);
            if (un && f == m->o.unseen_field)
                continue;
            for (uint64_t j = o[f]; j < o[f + 1]; j++)
                *recd_param_row_grad(m->lin[f], d->ids[j]) += g;
        }
        for (size_t c = 0; c < m->nx; c++) {
            size_t s = nf + c, n = (size_t)(o[s + 1] - o[s]);
            if (un && (m->xfields[c][0] == m->o.unseen_field ||
                       m->xfields[c][1] == m->o.unseen_field))
                continue;
            float g = n == 1 ? dz[i] : dz[i] * (1.0f / (float)n);
            for (uint64_t j = o[s]; j < o[s + 1]; j++)
                *recd_param_row_grad(m->wide[c], d->ids[j]) += g;
        }
    }
    if (!m->nlayers)
        return;

    /* the MLP, top down: dY of the output layer is dz ([bn, 1]) */
    float *dy = w->dy0, *spare = w->dy1;
    memcpy(dy, dz, bn * sizeof *dy);
    for (size_t l = m->nlayers; l-- > 0;) {
        layer_t *L = &m->layers[l];
        const float *xin = l ? w->act[l - 1] : w->x;
        float *dxin = l ? spare : w->dx;
        if (w->dropped && L->relu) {
            /* a dropped unit's output is 0, so the ReLU mask below zeroes
             * its gradient; a kept one was scaled by 1 / (1 - p) */
            float keep = 1.0f / (1.0f - m->o.dropout);
            for (size_t i = 0; i < bn * L->out; i++)
                dy[i] *= keep;
        }
        recd_nn_dense_batch_backward(L->w->w, (int)L->in, (int)L->out, L->relu, xin, w->act[l], dy,
                                     bn, L->w->g, L->b->g, dxin);
        spare = dy;
        dy = dxin;
    }

    /* DeepFM: d/dv_f of the pairwise term is sum - v_f */
    if (m->o.kind == RECD_TRANK_DEEPFM)
        for (size_t i = 0; i < bn; i++)
            recd_nn_fm_backward(w->x + i * fk, nf, k, w->fsum + i * k, dz[i], w->dx + i * fk);

    /* scatter dX to the rows: each of n ids gets 1/n of its field's share */
    for (size_t i = 0; i < bn; i++) {
        const uint64_t *o = d->off + w->ex[i] * ns;
        for (size_t f = 0; f < nf; f++) {
            size_t n = (size_t)(o[f + 1] - o[f]);
            const float *g = w->dx + i * fk + f * k;
            if (w->unseen[i] && f == m->o.unseen_field)
                continue;
            float sc = n == 1 ? 1.0f : 1.0f / (float)n;
            for (uint64_t j = o[f]; j < o[f + 1]; j++) {
                float *row = recd_param_row_grad(m->emb[f], d->ids[j]);
                for (size_t q = 0; q < k; q++)
                    row[q] += g[q] * sc;
            }
        }
    }
}

/* Labels and weights of the batch into w->y / w->w. */
static void gather_targets(const recd_trank_data_t *d, size_t bn, work_t *w)
{
    for (size_t i = 0; i < bn; i++) {
        w->y[i] = d->label[w->ex[i]];
        w->w[i] = d->weight ? d->weight[w->ex[i]] : 1.0f;
    }
}

/* ---- prediction and evaluation ---------------------------------------------------------- */

/* Logits of every example of d (checked) in blocks. */
static int predict_all(const recd_trank_t *m, const recd_trank_data_t *d, float *logits)
{
    if (d->n == 0)
        return 0;
    work_t w;
    size_t cap = d->n < EVAL_BLOCK ? d->n : EVAL_BLOCK;
    if (work_init(&w, m, cap) != 0)
        return RECD_ENOMEM;
    for (size_t s = 0; s < d->n; s += cap) {
        size_t bn = d->n - s < cap ? d->n - s : cap;
        for (size_t i = 0; i < bn; i++)
            w.ex[i] = s + i;
        forward(m, d, bn, &w, NULL);
        memcpy(logits + s, w.z, bn * sizeof *logits);
    }
    work_free(&w);
    return 0;
}

int recd_trank_predict(const recd_trank_t *m, const recd_trank_data_t *d, float *logits)
{
    if (!m || !d || (d->n && !logits))
        return RECD_EINVAL;
    uint64_t *sb = slot_buckets(m);
    if (!sb)
        return RECD_ENOMEM;
    int rc = check_data(m, sb, d, "predict", 0, NULL);
    free(sb);
    return rc ? rc : predict_all(m, d, logits);
}

typedef struct scored {
    float s;
    float pos, neg; /* weighted positive / negative mass */
} scored_t;

static int cmp_scored(const void *a, const void *b)
{
    float x = ((const scored_t *)a)->s, y = ((const scored_t *)b)->s;
    return (x > y) - (x < y);
}

/* Weighted AUC of logits z against labels: the probability that a random
 * positive unit of mass outscores a random negative one, ties half. */
static double auc_of(const float *z, const recd_trank_data_t *d, scored_t *buf)
{
    double P = 0.0, N = 0.0;
    for (size_t i = 0; i < d->n; i++) {
        float wt = d->weight ? d->weight[i] : 1.0f;
        buf[i] = (scored_t){z[i], wt * d->label[i], wt * (1.0f - d->label[i])};
        P += buf[i].pos;
        N += buf[i].neg;
    }
    if (!(P > 0.0) || !(N > 0.0))
        return NAN;
    qsort(buf, d->n, sizeof *buf, cmp_scored);
    double below = 0.0, acc = 0.0; /* negative mass strictly below */
    for (size_t i = 0; i < d->n;) {
        size_t j = i;
        double gp = 0.0, gn = 0.0;
        while (j < d->n && buf[j].s == buf[i].s) {
            gp += buf[j].pos;
            gn += buf[j].neg;
            j++;
        }
        acc += gp * (below + 0.5 * gn);
        below += gn;
        i = j;
    }
    return acc / (P * N);
}

/* Weighted mean logloss and AUC of d (checked, n > 0). */
static int evaluate(const recd_trank_t *m, const recd_trank_data_t *d, double *logloss, double *auc)
{
    float *z = malloc(d->n * sizeof *z), *dz = malloc(d->n * sizeof *dz);
    scored_t *buf = auc ? malloc(d->n * sizeof *buf) : NULL;
    int rc = RECD_ENOMEM;
    if (!z || !dz || (auc && !buf) || predict_all(m, d, z) != 0)
        goto out;
    double loss = recd_nn_logloss(z, d->label, d->weight, d->n, dz), wsum = 0.0;
    for (size_t i = 0; i < d->n; i++)
        wsum += d->weight ? d->weight[i] : 1.0f;
    *logloss = loss / wsum;
    if (auc)
        *auc = auc_of(z, d, buf);
    rc = 0;
out:
    free(z);
    free(dz);
    free(buf);
    return rc;
}

int recd_trank_eval(const recd_trank_t *m, const recd_trank_data_t *d, double *logloss, double *auc,
                    recd_err_t *err)
{
    if (!m || !logloss)
        return recd_err_set(err, RECD_EINVAL, "trank: eval: no model or output");
    uint64_t *sb = slot_buckets(m);
    if (!sb)
        return recd_err_set(err, RECD_ENOMEM, "trank: out of memory");
    int rc = check_data(m, sb, d, "eval", 1, err);
    free(sb);
    if (rc != 0)
        return rc;
    if (d->n == 0)
        return recd_err_set(err, RECD_EINVAL, "trank: eval: no examples");
    if (evaluate(m, d, logloss, auc) != 0)
        return recd_err_set(err, RECD_ENOMEM, "trank: out of memory (eval)");
    return 0;
}

/* ---- training ----------------------------------------------------------------------------- */

/* Copies of every parameter's weights (the best epoch so far). */
static size_t param_floats(const recd_param_t *p)
{
    return p->rows * p->cols;
}

/* Logit of the weighted positive rate, clamped away from +-inf. */
static double base_logit(const recd_trank_data_t *d, double *wmean)
{
    double P = 0.0, W = 0.0;
    for (size_t i = 0; i < d->n; i++) {
        double wt = d->weight ? d->weight[i] : 1.0;
        P += wt * d->label[i];
        W += wt;
    }
    *wmean = W / (double)d->n;
    double p = P / W;
    p = p < 1e-6 ? 1e-6 : p > 1.0 - 1e-6 ? 1.0 - 1e-6 : p;
    return log(p / (1.0 - p));
}

static void fmt_rate(double r, char *buf, size_t cap)
{
    if (r >= 1e6)
        snprintf(buf, cap, "%.2fM", r / 1e6);
    else if (r >= 1e3)
        snprintf(buf, cap, "%.1fk", r / 1e3);
    else
        snprintf(buf, cap, "%.0f", r);
}

/* One epoch over train in the order perm; returns the weighted mean loss
 * (before each batch's update), NaN when it diverged. */
static double run_epoch(recd_trank_t *m, const recd_trank_data_t *tr, const size_t *perm,
                        recd_opt_t opt[2], double wmean, work_t *w, recd_rng_t *drop)
{
    size_t B = w->cap;
    double loss = 0.0, wsum = 0.0;
    for (size_t s = 0; s < tr->n; s += B) {
        size_t bn = tr->n - s < B ? tr->n - s : B;
        memcpy(w->ex, perm + s, bn * sizeof *w->ex);
        forward(m, tr, bn, w, drop);
        gather_targets(tr, bn, w);
        loss += recd_nn_logloss(w->z, w->y, w->w, bn, w->dz);
        for (size_t i = 0; i < bn; i++)
            wsum += w->w[i];
        /* mean over the batch, in units of the mean training weight */
        float sc = (float)(1.0 / ((double)bn * wmean));
        for (size_t i = 0; i < bn; i++)
            w->dz[i] *= sc;
        backward(m, tr, bn, w);
        recd_opt_step(&opt[0], m->dense, m->ndense);
        recd_opt_step(&opt[1], m->sparse, m->nsparse);
    }
    return loss / wsum;
}

recd_trank_t *recd_trank_fit(const recd_trank_opts_t *o, const recd_trank_schema_t *s,
                             const recd_trank_data_t *train, const recd_trank_data_t *valid,
                             recd_err_t *err)
{
    if (check_opts(o, err) != 0 || check_schema(s, err) != 0)
        return NULL;
    if (!train || train->n == 0) {
        recd_err_set(err, RECD_EINVAL, "trank: no training examples");
        return NULL;
    }
    if (valid && valid->n == 0)
        valid = NULL;
    double t_start = now_s();
    recd_trank_t *m = NULL;
    uint64_t *sb = NULL;
    size_t *perm = NULL;
    work_t w = {0};
    recd_param_snapshot_t snap = {0};
    /* a model without weights yet, for checking the data against */
    recd_trank_t shape = {.nf = s->nfields,
                          .nslots = s->nfields + s->ncrosses,
                          .nx = o->kind == RECD_TRANK_DEEPFM ? 0 : s->ncrosses,
                          .fname = (char **)s->field_names,
                          .fbuckets = (uint64_t *)s->field_buckets,
                          .xbuckets = (uint64_t *)s->cross_buckets};
    if (!(sb = slot_buckets(&shape))) {
        recd_err_set(err, RECD_ENOMEM, "trank: out of memory");
        goto fail;
    }
    if (check_data(&shape, sb, train, "train", 1, err) != 0 ||
        (valid && check_data(&shape, sb, valid, "valid", 1, err) != 0))
        goto fail;

    double wmean;
    double b0 = base_logit(train, &wmean);
    if (!(m = model_new(o, s, b0, err)))
        goto fail;
    if (o->warm) {
        const recd_trank_t *wm = o->warm;
        if (wm->nf != m->nf || wm->nx != m->nx) {
            recd_err_set(err, RECD_EINVAL, "trank: warm start: the model has %zu fields and "
                                           "%zu crosses, not %zu and %zu",
                         wm->nf, wm->nx, m->nf, m->nx);
            goto fail;
        }
        for (size_t f = 0; f < m->nf; f++)
            if (param_floats(wm->lin[f]) != param_floats(m->lin[f])) {
                recd_err_set(err, RECD_EINVAL, "trank: warm start: field %s has other buckets",
                             m->fname[f]);
                goto fail;
            }
        for (size_t c = 0; c < m->nx; c++)
            if (param_floats(wm->wide[c]) != param_floats(m->wide[c])) {
                recd_err_set(err, RECD_EINVAL, "trank: warm start: cross %s has other buckets",
                             m->xname[c]);
                goto fail;
            }
        m->bias->w[0] = wm->bias->w[0];
        for (size_t f = 0; f < m->nf; f++)
            memcpy(m->lin[f]->w, wm->lin[f]->w, param_floats(m->lin[f]) * sizeof(float));
        for (size_t c = 0; c < m->nx; c++)
            memcpy(m->wide[c]->w, wm->wide[c]->w, param_floats(m->wide[c]) * sizeof(float));
    }
    for (size_t i = 0; o->warm_tensor && i < m->nparams; i++)
        o->warm_tensor(o->warm_ctx, m->pname[i], m->params[i]->w, m->params[i]->rows,
                       m->params[i]->cols);
    size_t B = o->batch < train->n ? o->batch : train->n;
    perm = malloc(train->n * sizeof *perm);
    if (!perm || work_init(&w, m, B) != 0) {
        recd_err_set(err, RECD_ENOMEM, "trank: out of memory (workspace)");
        goto fail;
    }
    for (size_t i = 0; i < train->n; i++)
        perm[i] = i;
    recd_rng_t rng, drop; /* shuffling, dropout: separate streams */
    recd_rng_seed(&rng, o->seed ^ 0x7472616e6bULL);
    recd_rng_seed(&drop, o->seed ^ 0x64726f70ULL);
    recd_opt_t opt[2]; /* dense, sparse */
    for (int i = 0; i < 2; i++) {
        recd_opt_init(&opt[i], (recd_opt_kind_t)o->optimizer);
        opt[i].l2 = 0.0f; /* per parameter (p->l2) */
    }
    opt[0].lr = m->o.lr;
    opt[1].lr = m->o.lr_sparse;

    const char *kname = recd_trank_kind_name(o->kind);
    double train_time = 0.0, best = INFINITY, best_auc = NAN, last_loss = NAN;
    int best_epoch = 0, epoch = 0;
    for (epoch = 1; epoch <= o->max_epochs; epoch++) {
        if (o->cancel && o->cancel(o->cancel_ctx)) {
            recd_err_set(err, RECD_EAGAIN, "trank: %s: cancelled", recd_trank_kind_name(o->kind));
            goto fail;
        }
        double t0 = now_s();
        for (size_t i = train->n - 1; i > 0; i--) { /* Fisher-Yates */
            size_t j = recd_rng_below64_fast(&rng, i + 1), t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        last_loss = run_epoch(m, train, perm, opt, wmean, &w, &drop);
        double t1 = now_s();
        train_time += t1 - t0;
        if (!isfinite(last_loss)) {
            recd_err_set(err, RECD_ERR,
                         "trank: %s: training diverged at epoch %d (loss %g); "
                         "lower the learning rate",
                         kname, epoch, last_loss);
            goto fail;
        }
        opt[0].lr *= o->lr_decay;
        opt[1].lr *= o->lr_decay;
        double ll = NAN, auc = NAN;
        int improved = 0;
        if (valid) {
            if (evaluate(m, valid, &ll, &auc) != 0) {
                recd_err_set(err, RECD_ENOMEM, "trank: out of memory (validation)");
                goto fail;
            }
            improved = ll < best || best_epoch == 0; /* (a NaN loss never improves) */
        } else {
            improved = 1; /* no validation: keep the last epoch */
        }
        if (improved) {
            best = valid ? ll : NAN;
            best_auc = auc;
            best_epoch = epoch;
            if (valid && epoch < o->max_epochs &&
                recd_param_snapshot_save(&snap, m->params, m->nparams) != 0) {
                recd_err_set(err, RECD_ENOMEM, "trank: out of memory (best weights)");
                goto fail;
            }
        }
        int stop = valid && epoch - best_epoch >= o->patience;
        if (o->verbose) {
            double per_epoch = (now_s() - t_start) / epoch;
            int left = stop ? 0 : o->max_epochs - epoch;
            char rate[32];
            fmt_rate((double)train->n / (t1 - t0), rate, sizeof rate);
            if (valid)
                fprintf(stderr,
                        "trank %s: epoch %d/%d  train loss %.5f  valid logloss %.5f auc %.4f%s  "
                        "%s ex/s  ETA %.0fs\n",
                        kname, epoch, o->max_epochs, last_loss, ll, auc, improved ? " *" : "", rate,
                        per_epoch * left);
            else
                fprintf(stderr, "trank %s: epoch %d/%d  train loss %.5f  %s ex/s  ETA %.0fs\n",
                        kname, epoch, o->max_epochs, last_loss, rate, per_epoch * left);
        }
        if (stop)
            break;
    }
    int epochs = epoch > o->max_epochs ? o->max_epochs : epoch;
    if (valid && best_epoch != epochs)
        recd_param_snapshot_restore(&snap, m->params);

    m->sum.epochs = epochs;
    m->sum.best_epoch = best_epoch;
    m->sum.best_valid_logloss = valid ? best : NAN;
    m->sum.best_valid_auc = best_auc;
    m->sum.train_loss = last_loss;
    m->sum.examples_per_s = train_time > 0 ? (double)train->n * epochs / train_time : 0.0;
    m->sum.seconds = now_s() - t_start;
    if (o->verbose) {
        char rate[32];
        fmt_rate(m->sum.examples_per_s, rate, sizeof rate);
        fprintf(stderr,
                "trank %s: done: best epoch %d of %d (valid logloss %.5f auc %.4f), %zu "
                "examples, %s ex/s, %.1fs\n",
                kname, best_epoch, epochs, m->sum.best_valid_logloss, best_auc, train->n, rate,
                m->sum.seconds);
    }
    free(sb);
    free(perm);
    work_free(&w);
    recd_param_snapshot_free(&snap);
    return m;
fail:
    free(sb);
    free(perm);
    work_free(&w);
    recd_param_snapshot_free(&snap);
    model_free(m);
    return NULL;
}

void recd_trank_summary(const recd_trank_t *m, recd_trank_summary_t *out)
{
    *out = m->sum;
}

/* ---- writing ------------------------------------------------------------------------------- */

static int put(struct recd_bundle_writer *w, const recd_param_t *p, const char *name, int two_d,
               recd_err_t *err)
{
    int64_t shape[2] = {(int64_t)p->rows, (int64_t)p->cols};
    if (!two_d) /* a [rows, 1] table or a [1, out] bias, written 1-D */
        shape[0] = (int64_t)(p->rows * p->cols);
    return recd_bundle_writer_tensor(w, name, p->w, two_d ? 2 : 1, shape, err);
}

/* A logistic regression in bundle form: a DeepFM whose field embeddings
 * (K = 1), MLP (one unit) and output layer are all zero, so that its FM
 * term and deep part vanish and serving computes bias + sum w_f exactly. */
static json_t *write_lr(const recd_trank_t *m, struct recd_bundle_writer *w, const char *output,
                        recd_err_t *err)
{
    json_t *fields = json_array();
    float *zero = NULL;
    size_t mx = m->nf > 1 ? m->nf : 1;
    for (size_t f = 0; f < m->nf; f++)
        mx = m->lin[f]->rows * m->lin[f]->cols > mx ? m->lin[f]->rows * m->lin[f]->cols : mx;
    zero = calloc(mx, sizeof *zero);
    if (!fields || !zero)
        goto oom;
    char en[256], ln[256];
    int rc = 0;
    for (size_t f = 0; f < m->nf && rc == 0; f++) {
        snprintf(en, sizeof en, "rank.emb.%s", m->fname[f]);
        snprintf(ln, sizeof ln, "rank.lin.%s", m->fname[f]);
        int64_t shape[2] = {(int64_t)(m->lin[f]->rows * m->lin[f]->cols), 1};
        rc = recd_bundle_writer_tensor(w, en, zero, 2, shape, err);
        if (rc == 0)
            rc = put(w, m->lin[f], ln, 0, err);
        if (rc == 0 && json_array_append_new(fields, json_pack("{s:s, s:s, s:s}", "name",
                                                               m->fname[f], "emb", en, "lin", ln)))
            goto oom;
    }
    int64_t s_w0[2] = {(int64_t)m->nf, 1}, s_1[1] = {1}, s_11[2] = {1, 1};
    if (rc == 0)
        rc = put(w, m->bias, "rank.bias", 0, err);
    if (rc == 0)
        rc = recd_bundle_writer_tensor(w, "rank.mlp.0.w", zero, 2, s_w0, err);
    if (rc == 0)
        rc = recd_bundle_writer_tensor(w, "rank.mlp.0.b", zero, 1, s_1, err);
    if (rc == 0)
        rc = recd_bundle_writer_tensor(w, "rank.out.w", zero, 2, s_11, err);
    if (rc == 0)
        rc = recd_bundle_writer_tensor(w, "rank.out.b", zero, 1, s_1, err);
    if (rc != 0)
        goto fail;
    json_t *r = json_pack("{s:s, s:i, s:O, s:s, s:[{s:s, s:s, s:I, s:i, s:s}], s:{s:s, s:s, s:i}, "
                          "s:s}",
                          "type", "deepfm", "embed_dim", 1, "fields", fields, "bias", "rank.bias",
                          "mlp", "w", "rank.mlp.0.w", "b", "rank.mlp.0.b", "in",
                          (json_int_t)m->nf, "out", 1, "activation", "relu", "out", "w",
                          "rank.out.w", "b", "rank.out.b", "in", 1, "output", output);
    if (!r)
        goto oom;
    json_decref(fields);
    free(zero);
    return r;
oom:
    recd_err_set(err, RECD_ENOMEM, "trank: out of memory (manifest)");
fail:
    json_decref(fields);
    free(zero);
    return NULL;
}

json_t *recd_trank_write(const recd_trank_t *m, struct recd_bundle_writer *w, const char *output,
                         recd_err_t *err)
{
    if (!m || !w) {
        recd_err_set(err, RECD_EINVAL, "trank: write: no model or writer");
        return NULL;
    }
    if (m->o.kind == RECD_TRANK_LR && m->nx > 0) {
        recd_err_set(err, RECD_EINVAL,
                     "trank: write: an LR model with crosses has no bundle form (its DeepFM "
                     "form has none)");
        return NULL;
    }
    if (!output || (strcmp(output, "sigmoid") != 0 && strcmp(output, "exp") != 0)) {
        recd_err_set(err, RECD_EINVAL, "trank: write: output \"%s\": expected sigmoid or exp",
                     output ? output : "(null)");
        return NULL;
    }
    if (m->o.kind == RECD_TRANK_LR)
        return write_lr(m, w, output, err);
    json_t *fields = json_array(), *mlp = json_array(), *crosses = json_array(), *r = NULL;
    int rc = 0;
    if (!fields || !mlp || !crosses)
        goto oom;
    char en[256], ln[256];
    for (size_t f = 0; f < m->nf && rc == 0; f++) {
        snprintf(en, sizeof en, "rank.emb.%s", m->fname[f]);
        snprintf(ln, sizeof ln, "rank.lin.%s", m->fname[f]);
        rc = put(w, m->emb[f], en, 1, err);
        if (rc == 0)
            rc = put(w, m->lin[f], ln, 0, err);
        if (rc == 0 && json_array_append_new(fields, json_pack("{s:s, s:s, s:s}", "name",
                                                               m->fname[f], "emb", en, "lin", ln)))
            goto oom;
    }
    if (rc == 0)
        rc = put(w, m->bias, "rank.bias", 0, err);
    size_t nh = m->nlayers - 1;
    for (size_t l = 0; l < nh && rc == 0; l++) {
        const layer_t *L = &m->layers[l];
        snprintf(en, sizeof en, "rank.mlp.%zu.w", l);
        snprintf(ln, sizeof ln, "rank.mlp.%zu.b", l);
        rc = put(w, L->w, en, 1, err);
        if (rc == 0)
            rc = put(w, L->b, ln, 0, err);
        if (rc == 0 &&
            json_array_append_new(mlp, json_pack("{s:s, s:s, s:I, s:I, s:s}", "w", en, "b", ln,
                                                 "in", (json_int_t)L->in, "out", (json_int_t)L->out,
                                                 "activation", "relu")))
            goto oom;
    }
    const layer_t *out = &m->layers[nh];
    if (rc == 0)
        rc = put(w, out->w, "rank.out.w", 1, err);
    if (rc == 0)
        rc = put(w, out->b, "rank.out.b", 0, err);
    for (size_t c = 0; c < m->nx && rc == 0; c++) {
        snprintf(en, sizeof en, "rank.wide.%s", m->xname[c]);
        rc = put(w, m->wide[c], en, 0, err);
        if (rc == 0 &&
            json_array_append_new(
                crosses, json_pack("{s:s, s:[s, s], s:I, s:s}", "name", m->xname[c], "fields",
                                   m->fname[m->xfields[c][0]], m->fname[m->xfields[c][1]],
                                   "buckets", (json_int_t)m->xbuckets[c], "tensor", en)))
            goto oom;
    }
    if (rc != 0)
        goto fail;
    r = json_pack("{s:s, s:I, s:O, s:s, s:O, s:{s:s, s:s, s:I}, s:s}", "type",
                  recd_trank_kind_name(m->o.kind), "embed_dim", (json_int_t)m->k, "fields", fields,
                  "bias", "rank.bias", "mlp", mlp, "out", "w", "rank.out.w", "b", "rank.out.b",
                  "in", (json_int_t)out->in, "output", output);
    if (!r)
        goto oom;
    if (m->o.kind == RECD_TRANK_WIDE_DEEP && json_object_set(r, "crosses", crosses) != 0)
        goto oom;
    json_decref(fields);
    json_decref(mlp);
    json_decref(crosses);
    return r;
oom:
    recd_err_set(err, RECD_ENOMEM, "trank: out of memory (manifest)");
fail:
    json_decref(fields);
    json_decref(mlp);
    json_decref(crosses);
    json_decref(r);
    return NULL;
}

/* ---- test hooks ------------------------------------------------------------------------------ */

static recd_param_t *param_by_name(recd_trank_t *m, const char *name)
{
    for (size_t i = 0; name && i < m->nparams; i++)
        if (strcmp(m->pname[i], name) == 0)
            return m->params[i];
    return NULL;
}

float *recd_trank_debug_tensor(recd_trank_t *m, const char *name, size_t *count)
{
    recd_param_t *p = param_by_name(m, name);
    if (!p)
        return NULL;
    *count = param_floats(p);
    return p->w;
}

/* Zero every gradient and touched mark (no optimiser step). */
static void clear_grads(recd_trank_t *m)
{
    for (size_t i = 0; i < m->nparams; i++) {
        recd_param_t *p = m->params[i];
        if (!p->sparse) {
            memset(p->g, 0, param_floats(p) * sizeof(float));
            continue;
        }
        for (size_t j = 0; j < p->ntouched; j++) {
            size_t r = p->touched[j];
            p->mark[r] = 0;
            memset(p->g + r * p->cols, 0, p->cols * sizeof(float));
        }
        p->ntouched = 0;
    }
}

double recd_trank_debug_loss_grad(recd_trank_t *m, const recd_trank_data_t *d, const char *name,
                                  float *grad)
{
    recd_param_t *p = param_by_name(m, name);
    uint64_t *sb = slot_buckets(m);
    int bad = !p || !sb || check_data(m, sb, d, "debug", 1, NULL) != 0 || d->n == 0;
    free(sb);
    work_t w;
    if (bad || work_init(&w, m, d->n) != 0)
        return NAN;
    clear_grads(m);
    for (size_t i = 0; i < d->n; i++)
        w.ex[i] = i;
    recd_rng_t drop; /* the same dropout mask on every call */
    recd_rng_seed(&drop, 0x6465627567ULL);
    forward(m, d, d->n, &w, &drop);
    gather_targets(d, d->n, &w);
    double loss = recd_nn_logloss(w.z, w.y, w.w, d->n, w.dz);
    if (grad) {
        backward(m, d, d->n, &w);
        memcpy(grad, p->g, param_floats(p) * sizeof *grad);
        clear_grads(m);
    }
    work_free(&w);
    return loss;
}
