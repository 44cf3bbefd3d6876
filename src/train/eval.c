/*
 * Evaluation on the split of split.c, with the same code for a model in
 * memory (fit, before it publishes) and for a published bundle (eval,
 * through the serving code: src/candgen's user tower and src/rank's
 * networks), so a bundle reproduces the metrics in its manifest.
 *
 * - Leave-one-out (the NCF protocol, He et al. 2017): each user's latest
 *   interaction ranked against 99 items the user never interacted with:
 *   HR@10 and NDCG@10; the same 100 items ordered by the ranker.
 * - Full catalog: the held-out item's rank among all items the user has not
 *   interacted with: Recall@20, NDCG@20.
 * - Ranker: AUC and logloss on the time-ordered test part, for users seen
 *   and unseen in the ranker's training examples.
 * - Cold start: for users who interacted with held-out (cold) items, the
 *   cold items ranked by the user vector against their content-model
 *   vectors: Recall@20.
 * ItemPop (training popularity) and Random rows use the same split.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval_int.h"
#include "recd/candgen.h"
#include "recd/model.h"
#include "recd/rank.h"
#include "recd/train.h"

#define LOO_NEG 99
#define MAX_EVAL_USERS 20000

/* Users evaluated: all, or an even spread of MAX_EVAL_USERS. */
static int user_selected(size_t u, size_t U)
{
    if (U <= MAX_EVAL_USERS)
        return 1;
    return (u * MAX_EVAL_USERS) / U != ((u + 1) * MAX_EVAL_USERS) / U;
}

int tf_evaluate(const recd_dataset_t *ds, const tf_split_t *sp, const tf_rex_t *ex, size_t nex,
                const tf_scorer_t *sc, size_t max_len, tf_metrics_t *m, recd_err_t *err)
{
    memset(m, 0, sizeof *m);
    size_t N = sp->n_items, U = sp->n_users;
    float *all = malloc(N * sizeof *all);
    uint8_t *mine = calloc(N, 1);
    uint32_t *hist = malloc((max_len + 1) * sizeof *hist);
    uint32_t *cand = malloc((LOO_NEG + 1) * sizeof *cand);
    float *cs = malloc((LOO_NEG + 1) * sizeof *cs);
    tf_rex_t *rx = malloc((LOO_NEG + 1) * sizeof *rx);
    uint32_t *cold_items = malloc((sp->ncold ? sp->ncold : 1) * sizeof *cold_items);
    float *cold_scores = malloc((sp->ncold ? sp->ncold : 1) * sizeof *cold_scores);
    int rc = 0;
    if (!all || !mine || !hist || !cand || !cs || !rx || !cold_items || !cold_scores) {
        rc = recd_err_set(err, RECD_ENOMEM, "out of memory (evaluation)");
        goto out;
    }
    size_t nc = 0;
    for (size_t i = 0; i < N; i++)
        if (sp->cold[i])
            cold_items[nc++] = (uint32_t)i;
    double hr = 0, nd = 0, rhr = 0, rnd = 0, rec = 0, nd20 = 0, cold_rec = 0;
    size_t nu = 0, nrank = 0, ncu = 0;
    for (uint32_t u = 0; u < U; u++) {
        uint32_t at = sp->test_at[u];
        if (!user_selected(u, U))
            continue;
        uint32_t a = sp->uoff[u], b = sp->uoff[u + 1];
        if (at != TF_NONE) {
            if (tf_loo_negatives(sp, ds, u, LOO_NEG, cand + 1) != LOO_NEG)
                continue;
            uint32_t target = sp->inter[at].item;
            cand[0] = target;
            size_t nh = tf_history(sp, u, at, max_len, 1, hist);
            /* LOO with the candidate model */
            sc->score(sc->ctx, u, hist, nh, cand, LOO_NEG + 1, cs);
            double r = tf_rank_of(cs[0], cs + 1, LOO_NEG);
            if (r < 10) {
                hr += 1;
                nd += 1.0 / log2(r + 2.0);
            }
            /* full catalog, minus the user's other interactions */
            sc->score(sc->ctx, u, hist, nh, NULL, N, all);
            for (uint32_t i = a; i < b; i++)
                mine[sp->inter[i].item] = 1;
            double s0 = all[target], rk = 0;
            for (size_t i = 0; i < N; i++)
                if (!mine[i])
                    rk += all[i] > s0 ? 1.0 : all[i] == s0 && i != target ? 0.5 : 0.0;
            for (uint32_t i = a; i < b; i++)
                mine[sp->inter[i].item] = 0;
            if (rk < 20) {
                rec += 1;
                nd20 += 1.0 / log2(rk + 2.0);
            }
            nu++;
            /* the ranker ordering the same 100 items, in the test event's context */
            if (sc->rank_prob) {
                for (size_t k = 0; k <= LOO_NEG; k++)
                    rx[k] = (tf_rex_t){u, cand[k], sp->inter[at].ev, sp->inter[at].ts, 0, 1};
                if ((rc = sc->rank_prob(sc->ctx, rx, LOO_NEG + 1, cs, err)) != 0)
                    goto out;
                r = tf_rank_of(cs[0], cs + 1, LOO_NEG);
                if (r < 10) {
                    rhr += 1;
                    rnd += 1.0 / log2(r + 2.0);
                }
                nrank++;
            }
        }
        /* cold start */
        if (nc) {
            size_t mc = 0;
            for (uint32_t i = a; i < b; i++)
                mc += sp->role[i] == TF_COLD;
            if (mc) {
                size_t nh = tf_history(sp, u, b, max_len, 1, hist);
                sc->score(sc->ctx, u, hist, nh, cold_items, nc, cold_scores);
                size_t hits = 0;
                for (uint32_t i = a; i < b; i++) {
                    if (sp->role[i] != TF_COLD)
                        continue;
                    size_t pos = 0;
                    while (cold_items[pos] != sp->inter[i].item)
                        pos++;
                    double r = tf_rank_of(cold_scores[pos], cold_scores, nc) - 0.5;
                    hits += r < 20;
                }
                cold_rec += (double)hits / (double)(mc < 20 ? mc : 20);
                ncu++;
            }
        }
    }
    m->n_test_users = nu;
    m->hr10 = nu ? hr / (double)nu : NAN;
    m->ndcg10 = nu ? nd / (double)nu : NAN;
    m->recall20 = nu ? rec / (double)nu : NAN;
    m->ndcg20 = nu ? nd20 / (double)nu : NAN;
    m->rank_hr10 = nrank ? rhr / (double)nrank : NAN;
    m->rank_ndcg10 = nrank ? rnd / (double)nrank : NAN;
    m->n_cold_users = ncu;
    m->cold_recall20 = ncu ? cold_rec / (double)ncu : NAN;
    m->auc = m->logloss = m->auc_seen = m->auc_unseen = NAN;
    m->logloss_seen = m->logloss_unseen = NAN;
    /* ranker on the time-ordered test part */
    if (sc->rank_prob && ex && nex) {
        uint8_t *seen = calloc(U ? U : 1, 1);
        size_t nt = 0;
        for (size_t i = 0; i < nex; i++)
            nt += ex[i].ts >= sp->time_cut;
        tf_rex_t *te = malloc((nt ? nt : 1) * sizeof *te);
        float *p = malloc((nt ? nt : 1) * sizeof *p), *y = malloc((nt ? nt : 1) * sizeof *y);
        uint8_t *ms = malloc(nt ? nt : 1), *mu = malloc(nt ? nt : 1);
        if (!seen || !te || !p || !y || !ms || !mu) {
            rc = recd_err_set(err, RECD_ENOMEM, "out of memory (evaluation)");
        } else {
            size_t k = 0;
            for (size_t i = 0; i < nex; i++) {
                if (ex[i].ts >= sp->time_cut)
                    te[k++] = ex[i];
                else if (tf_rex_trains(sp, &ex[i]))
                    seen[ex[i].user] = 1;
            }
            rc = nt ? sc->rank_prob(sc->ctx, te, nt, p, err) : 0;
            if (rc == 0 && nt) {
                for (size_t i = 0; i < nt; i++) {
                    y[i] = te[i].label;
                    ms[i] = seen[te[i].user];
                    mu[i] = !ms[i];
                    m->n_seen += ms[i];
                }
                m->n_unseen = nt - m->n_seen;
                m->n_rank_test = nt;
                m->auc = tf_auc(p, y, NULL, nt);
                m->logloss = tf_logloss(p, y, NULL, nt);
                m->auc_seen = tf_auc(p, y, ms, nt);
                m->logloss_seen = tf_logloss(p, y, ms, nt);
                m->auc_unseen = tf_auc(p, y, mu, nt);
                m->logloss_unseen = tf_logloss(p, y, mu, nt);
            }
        }
        free(seen);
        free(te);
        free(p);
        free(y);
        free(ms);
        free(mu);
    }
out:
    free(all);
    free(mine);
    free(hist);
    free(cand);
    free(cs);
    free(rx);
    free(cold_items);
    free(cold_scores);
    return rc;
}

int tf_rex_trains(const tf_split_t *sp, const tf_rex_t *x)
{
    if (x->ts >= sp->time_cut || sp->cold[x->item])
        return 0;
    if (sp->o.holdout != 1)
        return 1;
    /* never a pair held out for leave-one-out */
    uint32_t t = sp->test_at[x->user], v = sp->valid_at[x->user];
    if (t != TF_NONE && sp->inter[t].item == x->item)
        return 0;
    if (v != TF_NONE && sp->inter[v].item == x->item)
        return 0;
    return 1;
}

/* ---- baselines ----------------------------------------------------------------------- */

typedef struct base_ctx {
    const tf_split_t *sp;
    int random;
    uint64_t seed;
} base_ctx_t;

static float base_score(const base_ctx_t *c, uint32_t u, uint32_t item)
{
    if (!c->random)
        return (float)c->sp->train_count[item];
    uint64_t x = c->seed ^ ((uint64_t)u << 32) ^ item;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return (float)((double)(x >> 40) / (double)(1 << 24));
}

static void base_score_items(void *ctx, uint32_t u, const uint32_t *hist, size_t nh,
                             const uint32_t *items, size_t n, float *out)
{
    const base_ctx_t *c = ctx;
    for (size_t i = 0; i < n; i++)
        out[i] = base_score(c, u, items ? items[i] : (uint32_t)i);
}

/* ---- a published bundle through the serving code -------------------------------------- */

typedef struct bundle_ctx {
    const recd_dataset_t *ds;
    recd_bundle_t *b;
    recd_overlay_t *ov;
    const recd_ranker_t *rk;
    int64_t *index; /* dataset item row -> bundle index (-1: missing) */
    float *scratch, *u, *all;
    recd_arena_t arena;
    int output_exp;
} bundle_ctx_t;

/* Values of user and context fields for user u at event ev, hashed with the
 * bundle's own schema. */
static recd_field_buckets_t *bundle_fields(bundle_ctx_t *c, uint32_t u, uint32_t ev)
{
    const recd_bundle_t *b = c->b;
    const recd_dataset_t *ds = c->ds;
    recd_field_buckets_t *fb = recd_candgen_missing_fields(b, &c->arena);
    if (!fb)
        return NULL;
    for (size_t i = 0; i < b->nfeatures; i++) {
        const recd_feature_t *f = &b->features[i];
        const char *text = NULL;
        if (f->source == RECD_SRC_USER) {
            if (strcmp(f->name, "user_id") == 0) {
                text = ds->users.cells[(size_t)u * ds->users.ncols];
            } else {
                int c2 = recd_table_col(&ds->users, f->name);
                if (c2 > 0)
                    text = ds->users.cells[(size_t)u * ds->users.ncols + (size_t)c2];
            }
        } else if (f->source == RECD_SRC_CONTEXT && ev != TF_NONE) {
            for (size_t k = 0; k < ds->nctx; k++)
                if (strcmp(ds->ctx_names[k], f->name) == 0)
                    text = ds->ctx[(size_t)ev * ds->nctx + k];
        }
        if (!text || !*text)
            continue; /* missing: already "" */
        char num[32];
        if (f->bucketized) {
            char *end;
            double v = strtod(text, &end);
            if (*end || !isfinite(v))
                continue;
            snprintf(num, sizeof num, "%zu", recd_feature_bucketize(f, v));
            text = num;
        }
        size_t len = strlen(text);
        uint64_t *bk = recd_arena_alloc(&c->arena, sizeof *bk);
        const char **tx = recd_arena_alloc(&c->arena, sizeof *tx);
        uint32_t *tl = recd_arena_alloc(&c->arena, sizeof *tl);
        char *copy = recd_arena_strndup(&c->arena, text, len);
        if (!bk || !tx || !tl || !copy)
            return NULL;
        *bk = recd_feature_bucket(f->name, strlen(f->name), copy, len, f->buckets);
        *tx = copy;
        *tl = (uint32_t)len;
        fb[i] = (recd_field_buckets_t){bk, 1, tx, tl};
    }
    return fb;
}

static void bundle_score_items(void *ctx, uint32_t u, const uint32_t *hist, size_t nh,
                               const uint32_t *items, size_t n, float *out)
{
    bundle_ctx_t *c = ctx;
    const recd_bundle_t *b = c->b;
    recd_arena_reset(&c->arena);
    int64_t *h = recd_arena_alloc(&c->arena, (nh + 1) * sizeof *h);
    recd_field_buckets_t *fb = bundle_fields(c, u, TF_NONE);
    size_t D = b->dim;
    if (!h || !fb) {
        memset(out, 0, n * sizeof *out);
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < nh; i++)
        if (c->index[hist[i]] >= 0)
            h[k++] = c->index[hist[i]];
    recd_cand_request_t rq = {.history = h, .nhistory = k, .fields = fb};
    recd_candgen_user_vector(b, &rq, c->scratch, c->u);
    const float *E = b->item_emb->data;
    if (!items) {
        recd_nn_matvec(E, b->n_items, D, c->u, c->all);
        for (size_t i = 0; i < n; i++)
            out[i] = c->index[i] >= 0 ? c->all[c->index[i]] : -INFINITY;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        int64_t x = c->index[items[i]];
        out[i] = x >= 0 ? recd_nn_dot(D, c->u, E + (size_t)x * D) : -INFINITY;
    }
}

static int bundle_rank_prob(void *ctx, const tf_rex_t *ex, size_t n, float *p, recd_err_t *err)
{
    bundle_ctx_t *c = ctx;
    /* group consecutive examples of one (user, event): one call each */
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && ex[j].user == ex[i].user && ex[j].ev == ex[i].ev && j - i < 1000)
            j++;
        recd_arena_reset(&c->arena);
        recd_field_buckets_t *fb = bundle_fields(c, ex[i].user, ex[i].ev);
        recd_candidate_t *cd = recd_arena_alloc(&c->arena, (j - i) * sizeof *cd);
        if (!fb || !cd)
            return recd_err_set(err, RECD_ENOMEM, "out of memory (ranker evaluation)");
        for (size_t k = i; k < j; k++)
            cd[k - i] = (recd_candidate_t){c->index[ex[k].item], -1, 0};
        for (size_t k = i; k < j; k++)
            if (cd[k - i].index < 0)
                return recd_err_set(err, RECD_EINVAL, "item row %u is not in the bundle",
                                    ex[k].item);
        int rc = recd_rank_score(c->rk, c->b, c->ov, fb, cd, j - i, &c->arena, p + i, NULL, err);
        if (rc != 0)
            return rc;
        if (c->output_exp) /* exp(logit) = odds: p = odds / (1 + odds) */
            for (size_t k = i; k < j; k++)
                p[k] = p[k] / (1.0f + p[k]);
        i = j;
    }
    return 0;
}

int tf_eval_bundle(recd_bundle_t *b, const recd_dataset_t *ds, const tf_split_t *sp,
                   const tf_rex_t *ex, size_t nex, size_t max_len, tf_metrics_t *m, recd_err_t *err)
{
    bundle_ctx_t c = {.ds = ds, .b = b};
    recd_arena_init(&c.arena, 1 << 20);
    c.ov = recd_overlay_acquire(b);
    c.rk = recd_rank_of(b);
    c.output_exp = c.rk && strcmp(recd_rank_output(c.rk), "exp") == 0;
    c.index = malloc((ds->items.nrows ? ds->items.nrows : 1) * sizeof *c.index);
    c.scratch = malloc(recd_candgen_scratch(b) * sizeof(float));
    c.u = malloc(b->dim * sizeof(float));
    c.all = malloc(b->n_items * sizeof(float));
    int rc = !c.index || !c.scratch || !c.u || !c.all
                 ? recd_err_set(err, RECD_ENOMEM, "out of memory")
                 : 0;
    for (size_t k = 0; rc == 0 && k < ds->items.nrows; k++) {
        const char *id = ds->items.cells[k * ds->items.ncols];
        c.index[k] = recd_bundle_item_index(b, id, strlen(id));
    }
    if (rc == 0) {
        tf_scorer_t sc = {&c, bundle_score_items, c.rk ? bundle_rank_prob : NULL};
        rc = tf_evaluate(ds, sp, ex, nex, &sc, max_len, m, err);
    }
    recd_overlay_release(c.ov);
    recd_arena_free(&c.arena);
    free(c.index);
    free(c.scratch);
    free(c.u);
    free(c.all);
    return rc;
}

/* ---- table ---------------------------------------------------------------------------- */

json_t *tf_metrics_json(const tf_metrics_t *m)
{
    json_t *o = json_object();
#define PUT(k, v)                                                                                  \
    do {                                                                                           \
        if (isfinite(v))                                                                           \
            json_object_set_new(o, k, json_real(round((v)*1e6) / 1e6));                           \
    } while (0)
    PUT("hr@10", m->hr10);
    PUT("ndcg@10", m->ndcg10);
    PUT("recall@20", m->recall20);
    PUT("ndcg@20", m->ndcg20);
    PUT("ranker_hr@10", m->rank_hr10);
    PUT("ranker_ndcg@10", m->rank_ndcg10);
    PUT("auc", m->auc);
    PUT("logloss", m->logloss);
    PUT("auc_seen", m->auc_seen);
    PUT("logloss_seen", m->logloss_seen);
    PUT("auc_unseen", m->auc_unseen);
    PUT("logloss_unseen", m->logloss_unseen);
    PUT("cold_recall@20", m->cold_recall20);
#undef PUT
    json_object_set_new(o, "test_users", json_integer((json_int_t)m->n_test_users));
    json_object_set_new(o, "ranker_test_examples", json_integer((json_int_t)m->n_rank_test));
    json_object_set_new(o, "ranker_test_seen", json_integer((json_int_t)m->n_seen));
    json_object_set_new(o, "cold_users", json_integer((json_int_t)m->n_cold_users));
    return o;
}

static void cell(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, " %7.4f", v);
    else
        fprintf(f, " %7s", "-");
}

void tf_table_header(FILE *f)
{
    fprintf(f, "HR/NDCG@10: leave-one-out vs 99 sampled unseen items; R/NDCG@20: full catalog;\n"
               "rHR/rNDCG: the ranker ordering the same 100 items; AUC/LL (logloss): ranker on\n"
               "the time-ordered test part, all / users seen in training / new users;\n"
               "coldR20: Recall@20 among cold (held-out) items, content-model vectors\n\n");
    fprintf(f, "%-28s %7s %7s %7s %7s %7s %7s %7s %7s %7s %7s %7s %7s %7s\n", "model", "HR@10",
            "NDCG@10", "R@20", "NDCG@20", "rHR@10", "rNDCG10", "AUC", "AUCseen", "AUCnew",
            "LL", "LLseen", "LLnew", "coldR20");
}

void tf_table_row(FILE *f, const char *name, const tf_metrics_t *m)
{
    fprintf(f, "%-28.28s", name);
    cell(f, m->hr10);
    cell(f, m->ndcg10);
    cell(f, m->recall20);
    cell(f, m->ndcg20);
    cell(f, m->rank_hr10);
    cell(f, m->rank_ndcg10);
    cell(f, m->auc);
    cell(f, m->auc_seen);
    cell(f, m->auc_unseen);
    cell(f, m->logloss);
    cell(f, m->logloss_seen);
    cell(f, m->logloss_unseen);
    cell(f, m->cold_recall20);
    fputc('\n', f);
}

/* ---- recd_train_eval ---------------------------------------------------------------- */

static int split_from_manifest(const json_t *man, tf_split_opts_t *o, size_t *max_len,
                               recd_err_t *err)
{
    json_t *sp = json_object_get(json_object_get(man, "training"), "split");
    if (!json_is_object(sp) || !json_is_true(json_object_get(sp, "holdout")))
        return recd_err_set(err, RECD_EINVAL,
                            "the bundle was trained without a holdout (training.split): there "
                            "is nothing held out to evaluate it on");
    memset(o, 0, sizeof *o);
    const char *mode = json_string_value(json_object_get(sp, "mode"));
    o->holdout = mode && strcmp(mode, "time") == 0 ? TF_HOLDOUT_TIME : 1;
    o->cold_frac = json_number_value(json_object_get(sp, "cold_frac"));
    o->time_frac = json_number_value(json_object_get(sp, "time_frac"));
    o->seed = (uint64_t)json_integer_value(json_object_get(sp, "seed"));
    *max_len = (size_t)json_integer_value(
        json_object_get(json_object_get(json_object_get(man, "candidate"), "history"), "max_len"));
    if (*max_len == 0)
        *max_len = 50;
    return 0;
}

json_t *recd_train_eval(const char *const *bundles, size_t nb, const char *data_dir, FILE *out,
                        recd_err_t *err)
{
    if (nb == 0) {
        recd_err_set(err, RECD_EINVAL, "no bundle to evaluate");
        return NULL;
    }
    recd_dataset_t *ds = NULL;
    if (recd_dataset_load(data_dir, &ds, err) != 0)
        return NULL;
    json_t *rows = json_array(), *result = NULL;
    tf_split_t sp = {0};
    tf_rex_t *ex = NULL;
    size_t nex = 0;
    tf_split_opts_t so;
    size_t max_len = 50;
    for (size_t i = 0; i < nb; i++) {
        recd_model_opts_t mo = {.ann_factory = "", .use_index_file = 1,
                                .attach = recd_rank_attach};
        recd_bundle_t *b = recd_bundle_load(bundles[i], &mo, err);
        if (!b)
            goto fail;
        if (i == 0) {
            if (split_from_manifest(b->manifest, &so, &max_len, err) != 0 ||
                tf_split_build(&sp, ds, &so, err) != 0) {
                recd_bundle_unref(b);
                goto fail;
            }
            json_t *tr = json_object_get(b->manifest, "training");
            int ww = json_is_true(json_object_get(tr, "watch_weighted"));
            if (tf_rex_build(ds, ww, 4, so.seed, &ex, &nex, err) != 0) {
                recd_bundle_unref(b);
                goto fail;
            }
            if (out) {
                fprintf(out,
                        "dataset %s: %zu users, %zu items, %zu events; split: leave-one-out "
                        "(%zu test users, 99 sampled negatives), %zu cold items, ranker test = "
                        "last %.0f%% by time\n\n",
                        data_dir, ds->users.nrows, ds->items.nrows, ds->nevents, sp.n_users,
                        sp.ncold, so.time_frac * 100);
                tf_table_header(out);
            }
        }
        tf_metrics_t m;
        int rc = tf_eval_bundle(b, ds, &sp, ex, nex, max_len, &m, err);
        const recd_ranker_t *rk = recd_rank_of(b);
        if (rc == 0) {
            json_t *tr = json_object_get(b->manifest, "training");
            const char *kind = json_string_value(json_object_get(tr, "ranker"));
            char name[160];
            snprintf(name, sizeof name, "%s/%lld (%s)", b->name, (long long)b->version,
                     kind ? kind : (rk ? recd_rank_type(rk) : "no ranker"));
            if (out)
                tf_table_row(out, name, &m);
            json_t *row = tf_metrics_json(&m);
            json_object_set_new(row, "model", json_string(name));
            json_object_set_new(row, "bundle", json_string(bundles[i]));
            json_array_append_new(rows, row);
        }
        recd_bundle_unref(b);
        if (rc != 0)
            goto fail;
    }
    /* baselines on the same split */
    for (int r = 0; r < 2; r++) {
        base_ctx_t bc = {&sp, r, so.seed};
        tf_scorer_t sc = {&bc, base_score_items, NULL};
        tf_metrics_t m;
        if (tf_evaluate(ds, &sp, NULL, 0, &sc, max_len, &m, err) != 0)
            goto fail;
        if (!r)
            m.cold_recall20 = NAN; /* cold items have no training popularity */
        const char *name = r ? "Random" : "ItemPop";
        if (out)
            tf_table_row(out, name, &m);
        json_t *row = tf_metrics_json(&m);
        json_object_set_new(row, "model", json_string(name));
        json_array_append_new(rows, row);
    }
    result = json_pack("{s:{s:b, s:f, s:f, s:I, s:I, s:I}, s:O}", "split", "holdout", 1,
                       "cold_frac", so.cold_frac, "time_frac", so.time_frac, "seed",
                       (json_int_t)so.seed, "cold_items", (json_int_t)sp.ncold, "time_cut",
                       (json_int_t)sp.time_cut, "rows", rows);
fail:
    json_decref(rows);
    free(ex);
    tf_split_free(&sp);
    recd_dataset_free(ds);
    return result;
}
