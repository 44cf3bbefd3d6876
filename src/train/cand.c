/*
 * The candidate model of Covington, Adams, Sargin, "Deep Neural Networks
 * for YouTube Recommendations" (RecSys 2016), §3: the mean of the history
 * items' embeddings and the user-field embeddings, concatenated, go through
 * a ReLU tower to a user vector u; P(next item = j) = softmax_j(u · v_j)
 * over the catalog, where the output embeddings v_j are the ANN vectors.
 *
 * Examples are built per user in time order: each training interaction is
 * predicted from the interactions before it only (never from the future).
 * The softmax is sampled (Jean et al. 2015; Bengio & Senecal 2008): every
 * batch shares S negatives drawn from a proposal Q (log-uniform over the
 * popularity rank, as word2vec-style samplers do, or popularity^0.75), and
 * each logit is corrected by -log(S Q(j)) so the sampled loss estimates the
 * full softmax and popularity stays in the scores. Accidental hits (a
 * sample equal to the example's target) are masked. When the negatives
 * asked for cover the catalog, the exact softmax over all items is used.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "recd/model.h"

/* Defaults chosen on ml-latest-small under the leave-one-out protocol
 * (docs/QUALITY.md), HR@10 / NDCG@10:
 *   1024 log-uniform negatives, no L2, D = E = 64 ........ 0.712 / 0.472
 *   popularity^0.75, 2048 negatives, L2 1e-6 ............. 0.715-0.738 / 0.482-0.488
 *   + history embeddings tied to the output embeddings ... 0.741 / 0.484 (seed 2: 0.743 / 0.478)
 *   + D = E = 128 ........................................ 0.756 / 0.502 (seeds 2, 3: 0.739 / 0.502,
 *                                                          0.743 / 0.497)
 * A wider tower (512), a second hidden layer, 100 history items, higher
 * rates, per-user example weights and the exact softmax did not help
 * beyond the seed-to-seed spread (about 0.02 in HR@10 over 610 users). */
void tf_cand_defaults(tf_cand_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->dim = 128;
    o->embed_dim = 128;
    o->hidden[0] = 256;
    o->nhidden = 1;
    o->max_len = 50;
    o->negatives = 2048;
    o->sampler = 1;
    o->optimizer = RECD_OPT_ADAM;
    o->lr = 2e-3f;
    o->lr_decay = 0.9f;
    o->l2_emb = 1e-6f;
    o->l2_dense = 0;
    o->batch = 256;
    o->max_epochs = 20;
    o->patience = 3;
    o->seed = 1;
    o->user_weight_power = 0;
    o->tie = 1;
}

/* The history embedding table: its own, or the output embeddings when tied. */
#define HIST(m) ((m)->tied ? (m)->item : (m)->hist)

static recd_param_t *param(tf_cand_t *m, const char *name, size_t rows, size_t cols, int sparse)
{
    (void)m;
    return recd_param_new(name, rows, cols, sparse, (recd_opt_kind_t)m->o.optimizer);
}

static void cand_free_params(tf_cand_t *m)
{
    recd_param_free(m->hist);
    recd_param_free(m->item);
    for (size_t j = 0; j < TF_MAX_FIELDS; j++)
        recd_param_free(m->ftab[j]);
    for (size_t l = 0; l <= TF_MAX_LAYERS; l++) {
        recd_param_free(m->w[l]);
        recd_param_free(m->b[l]);
    }
}

void tf_cand_free(tf_cand_t *m)
{
    if (!m)
        return;
    cand_free_params(m);
    free(m);
}

size_t tf_cand_scratch(const tf_cand_t *m)
{
    size_t mx = m->E * m->ninputs;
    for (size_t l = 0; l < m->nlayers; l++)
        if (m->out[l] > mx)
            mx = m->out[l];
    return 2 * mx;
}

/* x[E * ninputs] for user u with history hist[nh]. */
static void cand_input(const tf_cand_t *m, const tf_schema_t *s, uint32_t u, const uint32_t *hist,
                       size_t nh, float *x)
{
    size_t E = m->E;
    memset(x, 0, E * m->ninputs * sizeof *x);
    if (nh) {
        float inv = 1.0f / (float)nh;
        for (size_t k = 0; k < nh; k++)
            recd_nn_axpy(E, inv, HIST(m)->w + (size_t)hist[k] * E, x);
    }
    for (size_t j = 1; j < m->ninputs; j++)
        tf_field_mean(&s->f[m->field_of[j]], u, m->ftab[j]->w, E, x + j * E);
}

void tf_cand_user_vec(const tf_cand_t *m, const tf_schema_t *s, uint32_t u, const uint32_t *hist,
                      size_t nh, float *scratch, float *out)
{
    size_t half = tf_cand_scratch(m) / 2;
    float *x = scratch, *y = scratch + half;
    cand_input(m, s, u, hist, nh, x);
    for (size_t l = 0; l < m->nlayers; l++) {
        float *dst = l + 1 == m->nlayers ? out : y;
        recd_nn_dense(m->w[l]->w, m->b[l]->w, (int)m->in[l], (int)m->out[l], 1, x, dst);
        float *t = x;
        x = y;
        y = t;
    }
}

/* ---- sampling ------------------------------------------------------------------- */

typedef struct sampler {
    int kind;
    size_t N;
    uint32_t *by_rank; /* log-uniform: item of popularity rank r */
    double *logq;      /* [N] log Q(item) */
    double *cdf;       /* popularity^0.75: cumulative */
} sampler_t;

/* qsort_r order: training count descending (ctx: the counts), ties by index */
static int by_count_desc(const void *a, const void *b, void *ctx)
{
    const uint32_t *count = ctx;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    if (count[x] != count[y])
        return count[x] > count[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

static int sampler_init(sampler_t *sm, int kind, const uint32_t *count, size_t N)
{
    memset(sm, 0, sizeof *sm);
    sm->kind = kind;
    sm->N = N;
    sm->logq = malloc(N * sizeof *sm->logq);
    if (!sm->logq)
        return -1;
    if (kind == 0) {
        sm->by_rank = malloc(N * sizeof *sm->by_rank);
        if (!sm->by_rank)
            return -1;
        for (size_t i = 0; i < N; i++)
            sm->by_rank[i] = (uint32_t)i;
        qsort_r(sm->by_rank, N, sizeof *sm->by_rank, by_count_desc, (void *)count);
        double lnN = log((double)N + 1.0);
        for (size_t r = 0; r < N; r++)
            sm->logq[sm->by_rank[r]] = log(log((double)r + 2.0) - log((double)r + 1.0)) - log(lnN);
    } else {
        sm->cdf = malloc(N * sizeof *sm->cdf);
        if (!sm->cdf)
            return -1;
        double tot = 0;
        for (size_t i = 0; i < N; i++) {
            tot += pow((double)count[i] + 1.0, 0.75);
            sm->cdf[i] = tot;
        }
        for (size_t i = 0; i < N; i++)
            sm->logq[i] = 0.75 * log((double)count[i] + 1.0) - log(tot);
    }
    return 0;
}

static uint32_t sampler_draw(const sampler_t *sm, recd_rng_t *r)
{
    if (sm->kind == 0) {
        double x = exp(recd_rng_unit(r) * log((double)sm->N + 1.0)) - 1.0;
        size_t rank = (size_t)x;
        if (rank >= sm->N)
            rank = sm->N - 1;
        return sm->by_rank[rank];
    }
    double x = recd_rng_unit(r) * sm->cdf[sm->N - 1];
    size_t lo = 0, hi = sm->N - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (sm->cdf[mid] <= x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (uint32_t)lo;
}

static void sampler_free(sampler_t *sm)
{
    free(sm->by_rank);
    free(sm->logq);
    free(sm->cdf);
}

/* ---- validation: leave-one-out NDCG@10 on the validation items -------------------- */

typedef struct valset {
    size_t n;
    uint32_t *user, *at, *target;
    uint32_t *neg; /* [n * 99] */
} valset_t;

static void valset_free(valset_t *v)
{
    free(v->user);
    free(v->at);
    free(v->target);
    free(v->neg);
}

static int valset_build(valset_t *v, const tf_split_t *sp, const recd_dataset_t *ds)
{
    memset(v, 0, sizeof *v);
    size_t U = sp->n_users, n = 0;
    v->user = malloc((U ? U : 1) * sizeof *v->user);
    v->at = malloc((U ? U : 1) * sizeof *v->at);
    v->target = malloc((U ? U : 1) * sizeof *v->target);
    v->neg = malloc((U ? U : 1) * 99 * sizeof *v->neg);
    if (!v->user || !v->at || !v->target || !v->neg)
        return -1;
    for (uint32_t u = 0; u < U; u++) {
        uint32_t at = sp->valid_at[u];
        if (at == TF_NONE && !sp->o.holdout && sp->uoff[u + 1] - sp->uoff[u] >= 2)
            at = sp->uoff[u + 1] - 1; /* no holdout: watch the last (trained) one */
        if (at == TF_NONE)
            continue;
        if (tf_loo_negatives(sp, ds, u, 99, v->neg + n * 99) != 99)
            continue;
        v->user[n] = u;
        v->at[n] = at;
        v->target[n] = sp->inter[at].item;
        n++;
    }
    v->n = n;
    return 0;
}

static double val_ndcg(const tf_cand_t *m, const tf_schema_t *s, const tf_split_t *sp,
                       const valset_t *v, double *hr_out)
{
    size_t D = m->D;
    float *scratch = malloc(tf_cand_scratch(m) * sizeof *scratch);
    float *u = malloc(D * sizeof *u);
    uint32_t *hist = malloc((m->o.max_len + 1) * sizeof *hist);
    float sc[99];
    double ndcg = 0, hr = 0;
    if (!scratch || !u || !hist)
        goto out;
    for (size_t i = 0; i < v->n; i++) {
        size_t nh = tf_history(sp, v->user[i], v->at[i], m->o.max_len, 0, hist);
        tf_cand_user_vec(m, s, v->user[i], hist, nh, scratch, u);
        float s0 = recd_nn_dot(D, u, m->item->w + (size_t)v->target[i] * D);
        for (size_t k = 0; k < 99; k++)
            sc[k] = recd_nn_dot(D, u, m->item->w + (size_t)v->neg[i * 99 + k] * D);
        double r = tf_rank_of(s0, sc, 99);
        if (r < 10) {
            hr += 1;
            ndcg += 1.0 / log2(r + 2.0);
        }
    }
out:
    free(scratch);
    free(u);
    free(hist);
    if (hr_out)
        *hr_out = v->n ? hr / (double)v->n : 0;
    return v->n ? ndcg / (double)v->n : 0;
}

/* Scale row i of the softmax gradient G[nb, w] by its example's user
 * weight (uw[user of example ex[i]]). */
static void weigh_rows(float *g, size_t nb, size_t w, const float *uw, const uint32_t *ex_user,
                       const uint32_t *ex)
{
    for (size_t i = 0; i < nb; i++) {
        float wi = uw[ex_user[ex[i]]];
        for (size_t j = 0; j < w; j++)
            g[i * w + j] *= wi;
    }
}

/* ---- training -------------------------------------------------------------------- */

static size_t cand_params(tf_cand_t *m, recd_param_t **ps)
{
    size_t n = 0;
    if (!m->tied)
        ps[n++] = m->hist;
    ps[n++] = m->item;
    for (size_t j = 1; j < m->ninputs; j++)
        ps[n++] = m->ftab[j];
    for (size_t l = 0; l < m->nlayers; l++) {
        ps[n++] = m->w[l];
        ps[n++] = m->b[l];
    }
    return n;
}

tf_cand_t *tf_cand_fit(const tf_cand_opts_t *o, const tf_schema_t *s, const recd_dataset_t *ds,
                       const tf_split_t *sp, recd_err_t *err)
{
    if (o->dim == 0 || o->embed_dim == 0 || o->nhidden > TF_MAX_LAYERS - 1 || o->batch == 0 ||
        o->negatives == 0 || o->max_len == 0 || o->max_epochs < 0) {
        recd_err_set(err, RECD_EINVAL, "candidate model: dim, embed, batch, negatives and "
                                       "history length must be positive");
        return NULL;
    }
    size_t N = sp->n_items;
    if (N < 2) {
        recd_err_set(err, RECD_EINVAL, "candidate model: the catalog needs at least 2 items");
        return NULL;
    }
    tf_cand_t *m = calloc(1, sizeof *m);
    if (!m) {
        recd_err_set(err, RECD_ENOMEM, "out of memory");
        return NULL;
    }
    m->o = *o;
    m->N = N;
    m->D = o->dim;
    m->E = o->embed_dim;
    size_t D = m->D, E = m->E;
    m->ninputs = 1;
    for (size_t i = 0; i < s->nf; i++)
        if (s->f[i].uses_cand && s->f[i].source == TF_SRC_USER && m->ninputs < TF_MAX_FIELDS)
            m->field_of[m->ninputs++] = (int)i;
    /* tower shapes: hidden..., then D; ReLU on every layer (BUNDLE.md) */
    m->nlayers = o->nhidden + 1;
    size_t prev = E * m->ninputs;
    for (size_t l = 0; l < m->nlayers; l++) {
        m->in[l] = prev;
        m->out[l] = l < o->nhidden ? o->hidden[l] : D;
        prev = m->out[l];
    }
    int ok = 1;
    m->tied = o->tie && E == D;
    if (!m->tied)
        ok &= (m->hist = param(m, "cand.hist_emb", N, E, 1)) != NULL;
    ok &= (m->item = param(m, "cand.item_emb", N, D, 1)) != NULL;
    for (size_t j = 1; ok && j < m->ninputs; j++) {
        char name[96];
        snprintf(name, sizeof name, "cand.field.%s", s->f[m->field_of[j]].name);
        ok &= (m->ftab[j] = param(m, name, s->f[m->field_of[j]].buckets, E, 1)) != NULL;
    }
    for (size_t l = 0; ok && l < m->nlayers; l++) {
        char name[64];
        snprintf(name, sizeof name, "cand.tower.%zu.w", l);
        ok &= (m->w[l] = param(m, name, m->in[l], m->out[l], 0)) != NULL;
        snprintf(name, sizeof name, "cand.tower.%zu.b", l);
        ok &= (m->b[l] = param(m, name, m->out[l], 1, 0)) != NULL;
    }
    if (!ok) {
        tf_cand_free(m);
        recd_err_set(err, RECD_ENOMEM, "out of memory (candidate model)");
        return NULL;
    }
    /* initialisation */
    uint64_t seed = o->seed * 1000003ULL;
    if (!m->tied)
        recd_nn_init_normal(m->hist->w, N * E, 0.05f, seed + 1);
    recd_nn_init_normal(m->item->w, N * D, 0.05f, seed + 2);
    for (size_t j = 1; j < m->ninputs; j++)
        recd_nn_init_normal(m->ftab[j]->w, m->ftab[j]->rows * E, 0.05f, seed + 10 + j);
    for (size_t l = 0; l < m->nlayers; l++) {
        recd_nn_init_glorot(m->w[l]->w, m->in[l], m->out[l], seed + 100 + l);
        for (size_t k = 0; k < m->out[l]; k++)
            m->b[l]->w[k] = 0.01f;
    }
    if (o->warm) {
        /* the live model's weights where the shapes agree (by tensor name;
         * a tied table is the bundle's cand.item_emb, what serving scores) */
        if (!m->tied)
            tf_warm_copy(o->warm, "cand.hist_emb", m->hist->w, N, E, 1);
        tf_warm_copy(o->warm, "cand.item_emb", m->item->w, N, D, 1);
        for (size_t j = 1; j < m->ninputs; j++)
            tf_warm_copy(o->warm, m->ftab[j]->name, m->ftab[j]->w, m->ftab[j]->rows, E, 0);
        for (size_t l = 0; l < m->nlayers; l++) {
            tf_warm_copy(o->warm, m->w[l]->name, m->w[l]->w, m->in[l], m->out[l], 0);
            tf_warm_copy(o->warm, m->b[l]->name, m->b[l]->w, m->out[l], 1, 0);
        }
    }
    m->item->l2 = o->l2_emb;
    if (!m->tied)
        m->hist->l2 = o->l2_emb;
    for (size_t j = 1; j < m->ninputs; j++)
        m->ftab[j]->l2 = o->l2_emb;
    for (size_t l = 0; l < m->nlayers; l++) {
        m->w[l]->l2 = o->l2_dense;
        m->b[l]->l2 = 0;
    }

    /* training examples: every training interaction */
    size_t nex = 0;
    for (size_t i = 0; i < sp->ninter; i++)
        nex += sp->role[i] == TF_TRAIN;
    uint32_t *ex = malloc((nex ? nex : 1) * sizeof *ex);
    uint32_t *ex_user = malloc((sp->ninter ? sp->ninter : 1) * sizeof *ex_user);
    /* as many negatives as items: the exact softmax over the catalog */
    int full = o->negatives >= N;
    size_t B = o->batch, S = full ? N : o->negatives, L = m->nlayers, W = full ? N : 1 + S;
    size_t maxw = m->in[0];
    for (size_t l = 0; l < L; l++)
        if (m->out[l] > maxw)
            maxw = m->out[l];
    float *act[TF_MAX_LAYERS + 1] = {0}, *dact[2] = {0};
    int alloc_ok = ex && ex_user;
    for (size_t l = 0; l <= L && alloc_ok; l++)
        alloc_ok &= (act[l] = malloc(B * (l == 0 ? m->in[0] : m->out[l - 1]) * sizeof(float))) !=
                    NULL;
    alloc_ok &= (dact[0] = malloc(B * maxw * sizeof(float))) != NULL;
    alloc_ok &= (dact[1] = malloc(B * maxw * sizeof(float))) != NULL;
    uint32_t *hist = malloc(B * o->max_len * sizeof *hist);
    size_t *nh = malloc(B * sizeof *nh);
    uint32_t *neg = malloc(S * sizeof *neg);
    uint32_t *tgt = malloc(B * sizeof *tgt);
    uint32_t *zero = calloc(B, sizeof *zero);
    float *negq = malloc(S * sizeof *negq);
    float *ES = malloc(S * D * sizeof *ES), *ET = malloc(B * D * sizeof *ET);
    float *Z = malloc(B * W * sizeof *Z);
    float *dES = malloc(S * D * sizeof *dES), *dU = malloc(B * D * sizeof *dU);
    alloc_ok &= hist && nh && neg && tgt && zero && negq && ES && ET && Z && dES && dU;
    sampler_t sm;
    valset_t vs;
    recd_param_snapshot_t snap = {0};
    float *uw = NULL; /* per-user example weights, or NULL */
    recd_param_t *ps[TF_MAX_FIELDS + 2 * TF_MAX_LAYERS + 4];
    size_t nps = cand_params(m, ps);
    alloc_ok &= sampler_init(&sm, o->sampler, sp->train_count, N) == 0;
    alloc_ok &= valset_build(&vs, sp, ds) == 0;
    if (!alloc_ok) {
        recd_err_set(err, RECD_ENOMEM, "out of memory (candidate training buffers)");
        goto fail;
    }
    nex = 0;
    for (uint32_t u = 0; u < sp->n_users; u++)
        for (uint32_t i = sp->uoff[u]; i < sp->uoff[u + 1]; i++) {
            ex_user[i] = u;
            if (sp->role[i] == TF_TRAIN)
                ex[nex++] = i;
        }
    /* Per-user example weights (Covington et al. §4.1 cap the examples per
     * user so heavy users do not dominate the loss): weight n_u^-power,
     * normalised to mean 1 over the examples. */
    if (o->user_weight_power > 0 && nex) {
        uw = malloc(sp->n_users * sizeof *uw);
        if (!uw) {
            recd_err_set(err, RECD_ENOMEM, "out of memory");
            goto fail;
        }
        double tot = 0;
        for (uint32_t u = 0; u < sp->n_users; u++) {
            size_t nu = 0;
            for (uint32_t i = sp->uoff[u]; i < sp->uoff[u + 1]; i++)
                nu += sp->role[i] == TF_TRAIN;
            uw[u] = nu ? (float)pow((double)nu, -o->user_weight_power) : 0.0f;
            tot += (double)nu * uw[u];
        }
        float norm = (float)((double)nex / tot);
        for (uint32_t u = 0; u < sp->n_users; u++)
            uw[u] *= norm;
    }

    recd_opt_t opt;
    recd_opt_init(&opt, (recd_opt_kind_t)o->optimizer);
    opt.lr = o->lr;
    recd_rng_t rng;
    recd_rng_seed_stream(&rng, o->seed, 7);
    double best = -1;
    int bad_epochs = 0;
    uint64_t t_start = recd_time_mono_us();
    double train_s = 0;
    size_t trained = 0;
    /* the time-ordered split has no validation items: every epoch asked
     * for runs and the last one is kept */
    int no_valid = sp->o.holdout == TF_HOLDOUT_TIME && vs.n == 0;
    for (int ep = 1; ep <= o->max_epochs; ep++) {
        if (TF_CANCELLED(o->cancel, o->cancel_ctx)) {
            recd_err_set(err, RECD_EAGAIN, "candidate model: cancelled");
            goto fail;
        }
        uint64_t t0 = recd_time_mono_us();
        /* shuffle */
        for (size_t i = nex; i > 1; i--) {
            size_t j = recd_rng_below(&rng, (uint32_t)i);
            uint32_t t = ex[i - 1];
            ex[i - 1] = ex[j];
            ex[j] = t;
        }
        double loss_sum = 0;
        for (size_t b0 = 0; b0 < nex; b0 += B) {
            size_t nb = nex - b0 < B ? nex - b0 : B;
            /* inputs */
            float *X = act[0];
            for (size_t i = 0; i < nb; i++) {
                uint32_t at = ex[b0 + i], u = ex_user[at];
                nh[i] = tf_history(sp, u, at, o->max_len, 0, hist + i * o->max_len);
                tgt[i] = sp->inter[at].item;
                cand_input(m, s, u, hist + i * o->max_len, nh[i], X + i * m->in[0]);
            }
            for (size_t l = 0; l < L; l++)
                recd_nn_dense_batch(m->w[l]->w, m->b[l]->w, (int)m->in[l], (int)m->out[l], 1,
                                    act[l], nb, act[l + 1]);
            float *U = act[L];
            if (full) {
                /* logits over the whole catalog; dE = G^T U touches every row */
                recd_nn_gemm(0, 1, nb, N, D, 1.0f, U, D, m->item->w, D, 0.0f, Z, N);
                loss_sum += recd_nn_softmax_xent(Z, nb, N, tgt, 1.0f / (float)nb);
                if (uw)
                    weigh_rows(Z, nb, N, uw, ex_user, ex + b0);
                recd_nn_gemm(1, 0, N, D, nb, 1.0f, Z, N, U, D, 0.0f, dES, D);
                recd_nn_gemm(0, 0, nb, D, N, 1.0f, Z, N, m->item->w, D, 0.0f, dU, D);
                for (size_t j = 0; j < N; j++)
                    recd_nn_axpy(D, 1.0f, dES + j * D, recd_param_row_grad(m->item, j));
                goto tower;
            }
            /* negatives and logits */
            for (size_t j = 0; j < S; j++) {
                neg[j] = sampler_draw(&sm, &rng);
                negq[j] = (float)(log((double)S) + sm.logq[neg[j]]);
                memcpy(ES + j * D, m->item->w + (size_t)neg[j] * D, D * sizeof *ES);
            }
            recd_nn_gemm(0, 1, nb, S, D, 1.0f, U, D, ES, D, 0.0f, Z + 1, W);
            for (size_t i = 0; i < nb; i++) {
                memcpy(ET + i * D, m->item->w + (size_t)tgt[i] * D, D * sizeof *ET);
                float *z = Z + i * W;
                z[0] = recd_nn_dot(D, U + i * D, ET + i * D) -
                       (float)(log((double)S) + sm.logq[tgt[i]]);
                for (size_t j = 0; j < S; j++)
                    z[1 + j] = neg[j] == tgt[i] ? -1e30f : z[1 + j] - negq[j];
            }
            loss_sum += recd_nn_softmax_xent(Z, nb, W, zero, 1.0f / (float)nb);
            if (uw)
                weigh_rows(Z, nb, W, uw, ex_user, ex + b0);
            /* output embeddings: dES = G^T U, dET_i = g_i0 u_i; dU = G ES + g_i0 ET */
            recd_nn_gemm(1, 0, S, D, nb, 1.0f, Z + 1, W, U, D, 0.0f, dES, D);
            for (size_t j = 0; j < S; j++)
                recd_nn_axpy(D, 1.0f, dES + j * D, recd_param_row_grad(m->item, neg[j]));
            recd_nn_gemm(0, 0, nb, D, S, 1.0f, Z + 1, W, ES, D, 0.0f, dU, D);
            for (size_t i = 0; i < nb; i++) {
                float g0 = Z[i * W];
                recd_nn_axpy(D, g0, U + i * D, recd_param_row_grad(m->item, tgt[i]));
                recd_nn_axpy(D, g0, ET + i * D, dU + i * D);
            }
        tower:;
            /* tower */
            float *dy = dU, *dx = dact[0];
            for (size_t l = L; l-- > 0;) {
                recd_nn_dense_batch_backward(m->w[l]->w, (int)m->in[l], (int)m->out[l], 1, act[l],
                                             act[l + 1], dy, nb, m->w[l]->g, m->b[l]->g, dx);
                dy = dx;
                dx = dx == dact[0] ? dact[1] : dact[0];
            }
            /* input embeddings: dy is dX [nb, E * ninputs] */
            for (size_t i = 0; i < nb; i++) {
                const float *g = dy + i * m->in[0];
                if (nh[i]) {
                    float inv = 1.0f / (float)nh[i];
                    for (size_t k = 0; k < nh[i]; k++)
                        recd_nn_axpy(E, inv, g,
                                     recd_param_row_grad(HIST(m), hist[i * o->max_len + k]));
                }
                uint32_t u = ex_user[ex[b0 + i]];
                for (size_t j = 1; j < m->ninputs; j++)
                    tf_field_scatter(&s->f[m->field_of[j]], u, m->ftab[j], E, g + j * E);
            }
            recd_opt_step(&opt, ps, nps);
        }
        double ep_s = (double)(recd_time_mono_us() - t0) / 1e6;
        train_s += ep_s;
        trained += nex;
        double hr = 0, ndcg = no_valid ? 0 : val_ndcg(m, s, sp, &vs, &hr);
        m->epochs = ep;
        if (no_valid) {
            m->best_epoch = ep;
            tf_progress(o->verbose, "candidate", ep, o->max_epochs,
                        nex ? loss_sum / (double)nex : 0, "(no validation)", 0,
                        ep_s > 0 ? (double)nex / ep_s : 0, ep_s * (o->max_epochs - ep));
            opt.lr *= o->lr_decay;
            continue;
        }
        double eps = ep_s > 0 ? (double)nex / ep_s : 0;
        tf_progress(o->verbose, "candidate", ep, o->max_epochs, nex ? loss_sum / (double)nex : 0,
                    "valid NDCG@10", ndcg, eps, ep_s * (o->max_epochs - ep));
        if (ndcg > best) {
            best = ndcg;
            m->best_epoch = ep;
            bad_epochs = 0;
            if (recd_param_snapshot_save(&snap, ps, nps) != 0) {
                recd_err_set(err, RECD_ENOMEM, "out of memory (snapshot)");
                goto fail;
            }
        } else if (++bad_epochs >= o->patience) {
            break;
        }
        opt.lr *= o->lr_decay;
    }
    recd_param_snapshot_restore(&snap, ps);
    m->best_valid = best;
    m->examples_per_s = train_s > 0 ? (double)trained / train_s : 0;
    m->seconds = (double)(recd_time_mono_us() - t_start) / 1e6;
    goto out;
fail:
    tf_cand_free(m);
    m = NULL;
out:
    free(uw);
    recd_param_snapshot_free(&snap);
    sampler_free(&sm);
    valset_free(&vs);
    for (size_t l = 0; l <= L; l++)
        free(act[l]);
    free(dact[0]);
    free(dact[1]);
    free(ex);
    free(ex_user);
    free(hist);
    free(nh);
    free(neg);
    free(tgt);
    free(zero);
    free(negq);
    free(ES);
    free(ET);
    free(Z);
    free(dES);
    free(dU);
    return m;
}

/* ---- export ---------------------------------------------------------------------- */


json_t *tf_cand_write(const tf_cand_t *m, const tf_schema_t *s, const float *item_emb,
                      struct recd_bundle_writer *w, recd_err_t *err)
{
    size_t N = m->N, D = m->D, E = m->E;
    if (tf_put(w, "cand.item_emb", item_emb, (int64_t)N, (int64_t)D, err) ||
        tf_put(w, "cand.hist_emb", HIST(m)->w, (int64_t)N, (int64_t)E, err))
        return NULL;
    json_t *fields = json_array(), *input = json_pack("[s]", "history"), *tower = json_array();
    if (!fields || !input || !tower)
        goto oom;
    for (size_t j = 1; j < m->ninputs; j++) {
        const char *f = s->f[m->field_of[j]].name;
        char name[96];
        snprintf(name, sizeof name, "cand.field.%s", f);
        if (tf_put(w, name, m->ftab[j]->w, (int64_t)m->ftab[j]->rows, (int64_t)E, err))
            goto fail;
        json_array_append_new(fields, json_pack("{s:s, s:s}", "name", f, "tensor", name));
        json_array_append_new(input, json_string(f));
    }
    for (size_t l = 0; l < m->nlayers; l++) {
        char wn[64], bn[64];
        snprintf(wn, sizeof wn, "cand.tower.%zu.w", l);
        snprintf(bn, sizeof bn, "cand.tower.%zu.b", l);
        if (tf_put(w, wn, m->w[l]->w, (int64_t)m->in[l], (int64_t)m->out[l], err) ||
            tf_put(w, bn, m->b[l]->w, (int64_t)m->out[l], 0, err))
            goto fail;
        json_array_append_new(tower, json_pack("{s:s, s:s, s:I, s:I, s:s}", "w", wn, "b", bn, "in",
                                               (json_int_t)m->in[l], "out",
                                               (json_int_t)m->out[l], "activation", "relu"));
    }
    json_t *c = json_pack("{s:s, s:I, s:I, s:{s:s, s:s, s:I}, s:o, s:o, s:o, s:s, s:s}", "type",
                          "youtube_dnn", "dim", (json_int_t)D, "embed_dim", (json_int_t)E,
                          "history", "tensor", "cand.hist_emb", "pooling", "mean", "max_len",
                          (json_int_t)m->o.max_len, "fields", fields, "input", input, "tower",
                          tower, "item_embedding", "cand.item_emb", "score", "inner_product");
    if (!c)
        recd_err_set(err, RECD_ENOMEM, "out of memory (manifest)");
    return c;
oom:
    recd_err_set(err, RECD_ENOMEM, "out of memory (manifest)");
fail:
    json_decref(fields);
    json_decref(input);
    json_decref(tower);
    return NULL;
}
