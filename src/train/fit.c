/*
 * recd_train_fit: dataset -> schema -> split -> candidate model -> content
 * model -> ranker -> metrics -> bundle (atomic publish, DESIGN §3).
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eval_int.h"
#include "recd/ann.h"
#include "recd/model.h"
#include "recd/train.h"
#include "recd/trank.h"

void recd_fit_defaults(recd_fit_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->models_dir = "models";
    o->name = "default";
    o->ranker = RECD_FIT_DEEPFM;
    o->holdout = 1;
    o->cold_frac = 0.05;
    o->time_frac = 0.10;
    o->seed = 1;
    tf_cand_opts_t c;
    tf_cand_defaults(&c);
    o->dim = c.dim;
    o->embed_dim = c.embed_dim;
    memcpy(o->hidden, c.hidden, sizeof c.hidden[0] * c.nhidden);
    o->nhidden = c.nhidden;
    o->history_max_len = c.max_len;
    o->negatives = c.negatives;
    o->sampler = c.sampler;
    o->cand_epochs = c.max_epochs;
    o->cand_lr = c.lr;
    o->cand_l2 = c.l2_emb;
    o->cand_batch = c.batch;
    o->cand_user_weight = c.user_weight_power;
    o->cand_tie = c.tie;
    o->rank_embed_dim = 16;
    o->rank_hidden[0] = 256;
    o->rank_hidden[1] = 128;
    o->rank_hidden[2] = 64;
    o->nrank_hidden = 3;
    o->rank_epochs = 10;
    o->rank_lr = 0; /* the ranker trainer's default */
    o->rank_batch = 256;
    o->rank_unseen = 0.2f;
    o->rank_warm_lr = 1;
    o->rank_l2 = -1;
    o->watch_weight = -1;
    o->content = 1;
    o->content_epochs = 40;
    o->nprobe = 32;
    o->ef_search = 128;
}

/* ---- the in-memory scorer (same metrics code as eval on a bundle) ------------------ */

typedef struct mem_ctx {
    const tf_cand_t *cand;
    const tf_schema_t *s;
    const float *item_emb;
    size_t N, D;
    float *scratch, *u;
    const recd_trank_t *rank;
    const tf_cross_t *cr;
    size_t ncr;
} mem_ctx_t;

static void mem_score(void *ctx, uint32_t u, const uint32_t *hist, size_t nh, const uint32_t *items,
                      size_t n, float *out)
{
    mem_ctx_t *c = ctx;
    tf_cand_user_vec(c->cand, c->s, u, hist, nh, c->scratch, c->u);
    if (!items) {
        recd_nn_matvec(c->item_emb, c->N, c->D, c->u, out);
        return;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = recd_nn_dot(c->D, c->u, c->item_emb + (size_t)items[i] * c->D);
}

static int mem_rank_prob(void *ctx, const tf_rex_t *ex, size_t n, float *p, recd_err_t *err)
{
    mem_ctx_t *c = ctx;
    tf_rdata_t d;
    int rc = tf_rdata_build(c->s, c->cr, c->ncr, ex, n, &d, err);
    if (rc != 0)
        return rc;
    recd_trank_data_t td = {d.n, d.nfields, d.ncrosses, d.off, d.ids, NULL, NULL};
    rc = recd_trank_predict(c->rank, &td, p);
    if (rc != 0)
        recd_err_set(err, rc, "ranker: cannot score the evaluation examples");
    if (rc == 0)
        recd_nn_sigmoid(p, n, p);
    tf_rdata_free(&d);
    return rc;
}

/* ---- bundle pieces ------------------------------------------------------------------ */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf_t;

static void sb_put(sbuf_t *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void sb_str(sbuf_t *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

/* items.tsv: the selected columns of the dataset's item table, then
 * title_words and popularity (the training interactions, for the
 * popularity fallback), which are always written afresh.
 *   all = 0: id, title, genres, year, tags (those the table has);
 *   all = 1: every column of the table but title_words and popularity (a
 *            warm-started fit: the live bundle's columns, when the embedded
 *            trainer built the table). */
static int items_tsv(const recd_dataset_t *ds, const tf_schema_t *s, const uint32_t *count, int all,
                     sbuf_t *b)
{
    static const char *const COLS[] = {"title", "genres", "year", "tags"};
    const recd_table_t *I = &ds->items;
    size_t *col = malloc((I->ncols + 1) * sizeof *col);
    if (!col)
        return RECD_ENOMEM;
    size_t ncol = 0;
    col[ncol++] = 0; /* id */
    if (all) {
        for (size_t c = 1; c < I->ncols; c++)
            if (strcmp(I->names[c], "title_words") != 0 && strcmp(I->names[c], "popularity") != 0)
                col[ncol++] = c;
    } else {
        for (int k = 0; k < 4; k++) {
            int c = recd_table_col(I, COLS[k]);
            if (c > 0)
                col[ncol++] = (size_t)c;
        }
    }
    for (size_t k = 0; k < ncol; k++) {
        if (k > 0)
            sb_str(b, "\t");
        sb_str(b, I->names[col[k]]);
    }
    if (s->title_words)
        sb_str(b, "\ttitle_words");
    sb_str(b, "\tpopularity\n");
    char num[32];
    for (size_t i = 0; i < I->nrows; i++) {
        for (size_t k = 0; k < ncol; k++) {
            if (k > 0)
                sb_str(b, "\t");
            sb_str(b, I->cells[i * I->ncols + col[k]]);
        }
        if (s->title_words) {
            sb_str(b, "\t");
            sb_str(b, s->title_words[i]);
        }
        snprintf(num, sizeof num, "\t%u\n", count[i]);
        sb_str(b, num);
    }
    free(col);
    return b->oom ? RECD_ENOMEM : 0;
}

static int64_t next_version(const char *models_dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", models_dir, name);
    int64_t v;
    return recd_model_list_versions(path, &v, 1, 0) ? v + 1 : 1;
}

static json_t *ann_json(const recd_ann_spec_t *sp, const char *factory, size_t D, uint64_t seed)
{
    json_t *a = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s}", "library", "faiss", "metric",
                          "inner_product", "vectors", "cand.item_emb", "dim", (json_int_t)D,
                          "factory", factory, "file", "index.faiss");
    if (!a)
        return NULL;
    if (sp->kind == RECD_ANN_IVF) {
        json_object_set_new(a, "nlist", json_integer(sp->nlist));
        json_object_set_new(a, "nprobe", json_integer(sp->nprobe));
        json_object_set_new(a, "kmeans_seed", json_integer((json_int_t)seed));
    } else if (sp->kind == RECD_ANN_HNSW) {
        json_object_set_new(a, "M", json_integer(sp->M));
        json_object_set_new(a, "efSearch", json_integer(sp->ef_search));
    }
    return a;
}

/* ---- warm start ---------------------------------------------------------------------- */

/* Layer output sizes of a manifest layer list ("tower", "mlp", "layers"),
 * all but the last into hidden[]; returns the count or -1. */
static int hidden_of(const json_t *layers, int keep_last, size_t *hidden)
{
    size_t n = json_array_size(layers);
    if (!json_is_array(layers) || (!keep_last && n == 0))
        return -1;
    size_t m = keep_last ? n : n - 1;
    if (m > RECD_SYNTH_MAX_LAYERS)
        return -1;
    for (size_t i = 0; i < m; i++) {
        json_int_t out = json_integer_value(json_object_get(json_array_get(layers, i), "out"));
        if (out < 1)
            return -1;
        hidden[i] = (size_t)out;
    }
    return (int)m;
}

/* The architecture options of o set to the warm bundle's (train.h), and
 * the content model's into *to. */
static int warm_arch(const recd_bundle_t *b, recd_fit_opts_t *o, tf_content_opts_t *to,
                     recd_err_t *err)
{
    const json_t *man = b->manifest;
    const json_t *c = json_object_get(man, "candidate"), *r = json_object_get(man, "ranker");
    const json_t *ct = json_object_get(man, "content"), *a = json_object_get(man, "ann");
    json_int_t D = json_integer_value(json_object_get(c, "dim"));
    json_int_t E = json_integer_value(json_object_get(c, "embed_dim"));
    json_int_t L = json_integer_value(json_object_get(json_object_get(c, "history"), "max_len"));
    int nh = hidden_of(json_object_get(c, "tower"), 0, o->hidden);
    if (D < 1 || E < 1 || nh < 0)
        return recd_err_set(err, RECD_EINVAL, "warm start: %s: unusable candidate section", b->dir);
    o->dim = (size_t)D;
    o->embed_dim = (size_t)E;
    o->nhidden = (size_t)nh;
    if (L > 0)
        o->history_max_len = (size_t)L;
    /* tied tables: the bundle stores both; they agree row for row except
     * where cold items got content vectors */
    o->cand_tie = 0;
    const recd_tensor_t *ti = recd_bundle_tensor(b, "cand.item_emb");
    const recd_tensor_t *th = recd_bundle_tensor(b, "cand.hist_emb");
    if (D == E && ti && th && ti->count == th->count) {
        size_t same = 0;
        for (size_t i = 0; i < b->n_items; i++)
            same += memcmp(ti->data + i * (size_t)D, th->data + i * (size_t)D,
                           (size_t)D * sizeof(float)) == 0;
        o->cand_tie = 2 * same >= b->n_items;
    }
    const char *type = json_string_value(json_object_get(r, "type"));
    const char *trained =
        json_string_value(json_object_get(json_object_get(man, "training"), "ranker"));
    if (!type || (strcmp(type, "deepfm") != 0 && strcmp(type, "wide_deep") != 0))
        return recd_err_set(err, RECD_EINVAL, "warm start: %s: no deepfm or wide_deep ranker",
                            b->dir);
    o->ranker = trained && strcmp(trained, "lr") == 0 ? RECD_FIT_LR
                : strcmp(type, "wide_deep") == 0      ? RECD_FIT_WIDE_DEEP
                                                      : RECD_FIT_DEEPFM;
    json_int_t K = json_integer_value(json_object_get(r, "embed_dim"));
    int nr = hidden_of(json_object_get(r, "mlp"), 1, o->rank_hidden);
    if (K < 1 || nr < 0)
        return recd_err_set(err, RECD_EINVAL, "warm start: %s: unusable ranker section", b->dir);
    o->rank_embed_dim = (size_t)K;
    o->nrank_hidden = (size_t)nr;
    const char *output = json_string_value(json_object_get(r, "output"));
    o->watch_weight = output && strcmp(output, "exp") == 0;
    o->content = json_is_object(ct);
    if (o->content) {
        json_int_t CE = json_integer_value(json_object_get(ct, "embed_dim"));
        int nc = hidden_of(json_object_get(ct, "layers"), 0, to->hidden);
        if (CE < 1 || nc < 0)
            return recd_err_set(err, RECD_EINVAL, "warm start: %s: unusable content section",
                                b->dir);
        to->embed_dim = (size_t)CE;
        to->nhidden = (size_t)nc;
    }
    const char *factory = json_string_value(json_object_get(a, "factory"));
    if (factory)
        o->index = factory;
    json_int_t np = json_integer_value(json_object_get(a, "nprobe"));
    json_int_t ef = json_integer_value(json_object_get(a, "efSearch"));
    if (np > 0)
        o->nprobe = (int)np;
    if (ef > 0)
        o->ef_search = (int)ef;
    return 0;
}

static int rank_warm_tensor(void *ctx, const char *name, float *w, size_t rows, size_t cols)
{
    return tf_warm_copy(ctx, name, w, rows, cols, 0);
}

/* Fisher-Yates over n elements of size sz, seeded. */
static void shuffle_bytes(void *base, size_t n, size_t sz, recd_rng_t *r)
{
    char tmp[64], *p = base;
    for (size_t i = n; i > 1; i--) {
        size_t j = recd_rng_below64_fast(r, i);
        memcpy(tmp, p + (i - 1) * sz, sz);
        memcpy(p + (i - 1) * sz, p + j * sz, sz);
        memcpy(p + j * sz, tmp, sz);
    }
}

/* ---- fit ----------------------------------------------------------------------------- */

static double now_s(void)
{
    return (double)recd_time_mono_us() / 1e6;
}

#define CANCELLED(o) ((o)->cancel && (o)->cancel((o)->cancel_ctx))

int recd_train_fit(const recd_fit_opts_t *o, recd_fit_result_t *res, recd_err_t *err)
{
    memset(res, 0, sizeof *res);
    if ((!o->data_dir && !o->dataset) || !o->models_dir || !o->name)
        return recd_err_set(err, RECD_EINVAL, "fit: data_dir, models_dir and name are required");
    if (o->cold_frac < 0 || o->cold_frac > 0.5 || o->time_frac < 0 || o->time_frac > 0.5)
        return recd_err_set(err, RECD_EINVAL, "fit: cold_frac and time_frac must be in 0..0.5");
    if (o->holdout < 0 || o->holdout > TF_HOLDOUT_TIME)
        return recd_err_set(err, RECD_EINVAL, "fit: holdout %d: expected 0, 1 or 2", o->holdout);
    if (o->holdout == TF_HOLDOUT_TIME && o->time_frac <= 0)
        return recd_err_set(err, RECD_EINVAL, "fit: a time-ordered holdout needs time_frac > 0");
    const char *data_name = o->data_dir ? o->data_dir : "(in memory)";
    double t_all = now_s();
    int rc = 0;
    recd_dataset_t *ds_owned = NULL;
    const recd_dataset_t *ds = o->dataset;
    recd_bundle_t *warm_owned = NULL;
    const recd_bundle_t *wb = o->warm_bundle;
    tf_warm_t tw = {0};
    int64_t *item_map = NULL;
    recd_fit_opts_t ow;
    tf_content_opts_t to;
    tf_content_defaults(&to);
    tf_schema_t s = {0};
    tf_split_t sp = {0};
    tf_cand_t *cand = NULL;
    tf_content_t *content = NULL;
    recd_trank_t *rank = NULL;
    tf_rex_t *ex = NULL, *trx = NULL;
    tf_rdata_t dtr = {0}, dva = {0};
    float *item_emb = NULL;
    recd_bundle_writer_t *w = NULL;
    json_t *metrics = NULL, *man = NULL;
    sbuf_t items = {0};
    recd_ann_t *ann = NULL;

    if (!ds) {
        if ((rc = recd_dataset_load(o->data_dir, &ds_owned, err)) != 0)
            goto out;
        ds = ds_owned;
    }
    if (ds->items.nrows < 2 || ds->nevents == 0) {
        rc = recd_err_set(err, RECD_EINVAL, "%s: a dataset needs at least 2 items and 1 event",
                          data_name);
        goto out;
    }
    if (!wb && o->warm_dir) {
        recd_model_opts_t mo = {.ann_factory = "", .use_index_file = 1};
        if (!(warm_owned = recd_bundle_load(o->warm_dir, &mo, err))) {
            rc = err->code ? err->code : RECD_ERR;
            goto out;
        }
        wb = warm_owned;
    }
    if (wb) {
        /* the architecture of the bundle; its weights after initialisation */
        ow = *o;
        if ((rc = warm_arch(wb, &ow, &to, err)) != 0)
            goto out;
        o = &ow;
        item_map = malloc(ds->items.nrows * sizeof *item_map);
        if (!item_map) {
            rc = recd_err_set(err, RECD_ENOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < ds->items.nrows; i++) {
            const char *id = ds->items.cells[i * ds->items.ncols];
            item_map[i] = recd_bundle_item_index(wb, id, strlen(id));
        }
        tw = (tf_warm_t){.b = wb, .item_map = item_map, .n_items = ds->items.nrows};
        rc = tf_schema_build_like(&s, ds, wb->manifest, err);
    } else {
        rc = tf_schema_build(&s, ds, err);
    }
    if (rc != 0)
        goto out;
    tf_split_opts_t so = {o->holdout, o->cold_frac, o->time_frac, o->seed};
    if ((rc = tf_split_build(&sp, ds, &so, err)) != 0)
        goto out;
    if (sp.ninter == 0) {
        rc = recd_err_set(err, RECD_EINVAL,
                          "%s: no interactions (ratings, clicks, watches or purchases)", data_name);
        goto out;
    }
    if (o->test_corrupt_labels) {
        /* test hook: every training interaction gets another one's item */
        recd_rng_t r;
        recd_rng_seed_stream(&r, o->seed, 0x5348);
        size_t nt = 0;
        for (size_t i = 0; i < sp.ninter; i++)
            nt += sp.role[i] == TF_TRAIN;
        uint32_t *perm = malloc((nt ? nt : 1) * sizeof *perm);
        if (!perm) {
            rc = recd_err_set(err, RECD_ENOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0, k = 0; i < sp.ninter; i++)
            if (sp.role[i] == TF_TRAIN)
                perm[k++] = sp.inter[i].item;
        shuffle_bytes(perm, nt, sizeof *perm, &r);
        for (size_t i = 0, k = 0; i < sp.ninter; i++)
            if (sp.role[i] == TF_TRAIN)
                sp.inter[i].item = perm[k++];
        free(perm);
    }
    if (o->verbose)
        fprintf(stderr, "recd-train fit: %zu users, %zu items, %zu events, %zu interactions%s\n",
                ds->users.nrows, ds->items.nrows, ds->nevents, sp.ninter,
                o->holdout ? " (holdout: leave-one-out, cold items, last part by time)" : "");

    /* 1. candidate model */
    tf_cand_opts_t co;
    tf_cand_defaults(&co);
    co.dim = o->dim;
    co.embed_dim = o->embed_dim;
    memcpy(co.hidden, o->hidden, sizeof o->hidden[0] * o->nhidden);
    co.nhidden = o->nhidden;
    co.max_len = o->history_max_len;
    co.negatives = o->negatives < ds->items.nrows ? o->negatives : ds->items.nrows;
    co.sampler = o->sampler;
    co.max_epochs = o->cand_epochs;
    co.lr = o->cand_lr;
    co.l2_emb = o->cand_l2;
    co.user_weight_power = o->cand_user_weight;
    co.tie = o->cand_tie;
    co.batch = o->cand_batch;
    co.seed = o->seed;
    co.verbose = o->verbose;
    co.warm = wb ? &tw : NULL;
    co.cancel = o->cancel;
    co.cancel_ctx = o->cancel_ctx;
    double t0 = now_s();
    if (!(cand = tf_cand_fit(&co, &s, ds, &sp, err))) {
        rc = err->code ? err->code : RECD_ERR;
        goto out;
    }
    res->cand_seconds = now_s() - t0;
    res->cand_examples_per_s = cand->examples_per_s;
    size_t N = ds->items.nrows, D = cand->D;
    item_emb = malloc(N * D * sizeof *item_emb);
    if (!item_emb) {
        rc = recd_err_set(err, RECD_ENOMEM, "out of memory");
        goto out;
    }
    memcpy(item_emb, cand->item->w, N * D * sizeof *item_emb);

    for (size_t i = 0; i < sp.ninter; i++)
        res->cand_examples += sp.role[i] == TF_TRAIN;

    /* 2. content model: items nobody interacted with in training get its vector */
    size_t ncold_filled = 0;
    if (CANCELLED(o)) {
        rc = recd_err_set(err, RECD_EAGAIN, "fit: cancelled");
        goto out;
    }
    if (o->content) {
        to.warm = wb ? &tw : NULL;
        to.cancel = o->cancel;
        to.cancel_ctx = o->cancel_ctx;
        to.max_epochs = o->content_epochs;
        to.seed = o->seed;
        to.verbose = o->verbose;
        t0 = now_s();
        content = tf_content_fit(&to, &s, N, item_emb, D, sp.train_count, err);
        if (!content) {
            rc = err->code ? err->code : RECD_ERR;
            goto out;
        }
        res->content_seconds = now_s() - t0;
        for (size_t i = 0; i < N; i++)
            if (sp.train_count[i] == 0) {
                tf_content_embed(content, &s, (uint32_t)i, item_emb + i * D);
                ncold_filled++;
            }
    }

    /* 3. ranker */
    int ww = o->watch_weight < 0 ? tf_has_watch(ds) : o->watch_weight;
    size_t nex = 0;
    if ((rc = tf_rex_build(ds, ww, 4, o->seed, &ex, &nex, err)) != 0)
        goto out;
    trx = malloc((nex ? nex : 1) * sizeof *trx);
    if (!trx) {
        rc = recd_err_set(err, RECD_ENOMEM, "out of memory");
        goto out;
    }
    size_t ntr = 0;
    for (size_t i = 0; i < nex; i++)
        if (tf_rex_trains(&sp, &ex[i]))
            trx[ntr++] = ex[i];
    if (ntr < 10) {
        rc = recd_err_set(err, RECD_EINVAL, "too few ranker training examples (%zu)", ntr);
        goto out;
    }
    if (o->test_corrupt_labels) {
        /* test hook: labels and weights of the training examples permuted */
        recd_rng_t r;
        recd_rng_seed_stream(&r, o->seed, 0x5349);
        float *lw = malloc(ntr * 2 * sizeof *lw);
        if (!lw) {
            rc = recd_err_set(err, RECD_ENOMEM, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < ntr; i++) {
            lw[2 * i] = trx[i].label;
            lw[2 * i + 1] = trx[i].weight;
        }
        shuffle_bytes(lw, ntr, 2 * sizeof *lw, &r);
        for (size_t i = 0; i < ntr; i++) {
            trx[i].label = o->test_corrupt_labels == 2 ? 1.0f - trx[i].label : lw[2 * i];
            trx[i].weight = o->test_corrupt_labels == 2 ? trx[i].weight : lw[2 * i + 1];
        }
        free(lw);
    }
    res->rank_examples = ntr;
    if (CANCELLED(o)) {
        rc = recd_err_set(err, RECD_EAGAIN, "fit: cancelled");
        goto out;
    }
    /* examples are in time order: the last 10% validate (early stopping) */
    size_t nva = ntr / 10, nfit = ntr - nva;
    tf_cross_t cr[TF_MAX_FIELDS];
    size_t ncr = o->ranker == RECD_FIT_WIDE_DEEP ? tf_crosses(&s, cr, TF_MAX_FIELDS) : 0;
    if ((rc = tf_rdata_build(&s, cr, ncr, trx, nfit, &dtr, err)) != 0 ||
        (rc = tf_rdata_build(&s, cr, ncr, trx + nfit, nva, &dva, err)) != 0)
        goto out;
    {
        const char *fnames[TF_MAX_FIELDS], *cnames[TF_MAX_FIELDS];
        uint64_t fb[TF_MAX_FIELDS], cb[TF_MAX_FIELDS];
        size_t cf[TF_MAX_FIELDS][2];
        for (size_t j = 0; j < dtr.nfields; j++) {
            fnames[j] = s.f[dtr.field_of[j]].name;
            fb[j] = s.f[dtr.field_of[j]].buckets;
        }
        for (size_t c = 0; c < ncr; c++) {
            cnames[c] = cr[c].name;
            cb[c] = cr[c].buckets;
            for (int k = 0; k < 2; k++) {
                int f = k ? cr[c].f2 : cr[c].f1;
                for (size_t j = 0; j < dtr.nfields; j++)
                    if (dtr.field_of[j] == f)
                        cf[c][k] = j;
            }
        }
        recd_trank_schema_t rs = {dtr.nfields, fnames, fb, ncr, cnames, cb, (const size_t(*)[2])cf};
        recd_trank_kind_t kind = o->ranker == RECD_FIT_WIDE_DEEP ? RECD_TRANK_WIDE_DEEP
                                 : o->ranker == RECD_FIT_LR      ? RECD_TRANK_LR
                                                                 : RECD_TRANK_DEEPFM;
        recd_trank_opts_t ro;
        recd_trank_defaults(&ro, kind);
        ro.embed_dim = o->rank_embed_dim;
        memcpy(ro.hidden, o->rank_hidden, sizeof o->rank_hidden[0] * o->nrank_hidden);
        ro.nhidden = o->nrank_hidden;
        ro.max_epochs = o->rank_epochs;
        if (kind != RECD_TRANK_LR && (o->rank_warm_lr || wb)) {
            /* from a fitted LR the deep models need gentler steps: on
             * ml-latest-small (docs/QUALITY.md) the trainer's from-scratch
             * rates (MLP 1e-3, tables 1e-2) left DeepFM 0.015 AUC behind LR
             * for users seen in training; these keep both deep models level
             * with or above LR on every slice */
            ro.lr = 3e-4f;
            ro.lr_sparse = 1e-3f;
        }
        if (o->rank_lr > 0)
            ro.lr = o->rank_lr;
        ro.batch = o->rank_batch;
        for (size_t j = 0; j < dtr.nfields; j++)
            if (dtr.field_of[j] == s.user_id)
                ro.unseen_field = j;
        ro.unseen_rate = o->rank_unseen;
        if (o->rank_l2 >= 0)
            ro.l2_emb = o->rank_l2;
        if (o->rank_lr_sparse > 0)
            ro.lr_sparse = o->rank_lr_sparse;
        ro.seed = o->seed;
        ro.verbose = o->verbose;
        ro.cancel = o->cancel;
        ro.cancel_ctx = o->cancel_ctx;
        if (wb) {
            /* from the live ranker: no LR first */
            ro.warm_tensor = rank_warm_tensor;
            ro.warm_ctx = &tw;
        }
        recd_trank_data_t a = {dtr.n,   dtr.nfields, dtr.ncrosses, dtr.off,
                               dtr.ids, dtr.label,   dtr.weight};
        recd_trank_data_t v = {dva.n,   dva.nfields, dva.ncrosses, dva.off,
                               dva.ids, dva.label,   dva.weight};
        t0 = now_s();
        recd_trank_t *lr = NULL;
        if (kind != RECD_TRANK_LR && o->rank_warm_lr && !wb) {
            /* the deep models start from a logistic regression's first-order
             * weights (see trank.h, warm) */
            recd_trank_opts_t lo;
            recd_trank_defaults(&lo, RECD_TRANK_LR);
            lo.batch = ro.batch;
            lo.seed = ro.seed;
            lo.unseen_field = ro.unseen_field;
            lo.unseen_rate = ro.unseen_rate;
            if (!(lr = recd_trank_fit(&lo, &rs, &a, nva ? &v : NULL, err))) {
                rc = err->code ? err->code : RECD_ERR;
                goto out;
            }
            ro.warm = lr;
        }
        rank = recd_trank_fit(&ro, &rs, &a, nva ? &v : NULL, err);
        recd_trank_free(lr);
        if (!rank) {
            rc = err->code ? err->code : RECD_ERR;
            goto out;
        }
        res->rank_seconds = now_s() - t0;
        recd_trank_summary_t rsum;
        recd_trank_summary(rank, &rsum);
        res->rank_examples_per_s = rsum.examples_per_s;
    }

    if (CANCELLED(o)) {
        rc = recd_err_set(err, RECD_EAGAIN, "fit: cancelled");
        goto out;
    }
    /* 4. metrics on the split (in memory; eval on the bundle reproduces them) */
    if (o->holdout) {
        mem_ctx_t mc = {cand, &s, item_emb, N, D, NULL, NULL, rank, cr, ncr};
        mc.scratch = malloc(tf_cand_scratch(cand) * sizeof(float));
        mc.u = malloc(D * sizeof(float));
        tf_metrics_t m;
        tf_scorer_t sc = {&mc, mem_score, mem_rank_prob};
        rc = !mc.scratch || !mc.u ? recd_err_set(err, RECD_ENOMEM, "out of memory")
                                  : tf_evaluate(ds, &sp, ex, nex, &sc, co.max_len, &m, err);
        free(mc.scratch);
        free(mc.u);
        if (rc != 0)
            goto out;
        metrics = tf_metrics_json(&m);
        if (o->verbose) {
            fprintf(stderr, "\n");
            tf_table_header(stderr);
            tf_table_row(stderr, "this model (in memory)", &m);
        }
    } else {
        metrics = json_object();
    }

    /* 5. the bundle */
    int64_t version = o->version > 0 ? o->version : next_version(o->models_dir, o->name);
    if (!(w = recd_bundle_writer_new(o->models_dir, o->name, version, err))) {
        rc = err->code ? err->code : RECD_ERR;
        goto out;
    }
    if ((rc = items_tsv(ds, &s, sp.train_count, wb != NULL, &items)) != 0) {
        recd_err_set(err, rc, "out of memory (items.tsv)");
        goto out;
    }
    if ((rc = recd_bundle_writer_items(w, items.p, items.len, err)) != 0)
        goto out;
    json_t *jc = tf_cand_write(cand, &s, item_emb, w, err);
    json_t *jr = jc ? recd_trank_write(rank, w, ww ? "exp" : "sigmoid", err) : NULL;
    json_t *jt = jr && content ? tf_content_write(content, &s, w, err) : NULL;
    if (!jc || !jr || (content && !jt)) {
        json_decref(jc);
        json_decref(jr);
        rc = err->code ? err->code : RECD_ERR;
        goto out;
    }
    /* ANN index over the final item vectors */
    char fbuf[32];
    const char *factory =
        o->index ? o->index : recd_train_synth_default_index(N, fbuf, sizeof fbuf);
    recd_ann_spec_t as;
    json_t *ja = NULL;
    if ((rc = recd_ann_spec_parse(factory, &as, err)) == 0) {
        as.nprobe = o->nprobe;
        as.ef_search = o->ef_search;
        as.kmeans_seed = o->seed;
        if (!(ann = recd_ann_build(&as, item_emb, N, D, err)))
            rc = err->code ? err->code : RECD_ERR;
        else
            rc = recd_ann_save(ann, recd_bundle_writer_path(w, "index.faiss"), err);
        if (rc == 0 && !(ja = ann_json(&as, factory, D, o->seed)))
            rc = recd_err_set(err, RECD_ENOMEM, "out of memory");
    }
    if (rc != 0) {
        json_decref(jc);
        json_decref(jr);
        json_decref(jt);
        goto out;
    }
    char created[32], src[1200];
    recd_time_created_utc(created, sizeof created);
    snprintf(src, sizeof src, "recd-train fit on %s (%s)", data_name,
             ds->source ? ds->source : "dataset");
    static const char *const RANKERS[] = {"", "deepfm", "wide_deep", "lr"};
    json_t *jtrain = json_pack(
        "{s:s, s:I, s:s, s:b, s:{s:b, s:f, s:f, s:I}, s:{s:I, s:I, s:I, s:I}, s:O, "
        "s:{s:f, s:f, s:f, s:f, s:f, s:f}}",
        "source", src, "seed", (json_int_t)o->seed, "ranker", RANKERS[o->ranker], "watch_weighted",
        ww, "split", "holdout", o->holdout, "cold_frac", o->cold_frac, "time_frac", o->time_frac,
        "seed", (json_int_t)o->seed, "dataset", "users", (json_int_t)ds->users.nrows, "items",
        (json_int_t)N, "events", (json_int_t)ds->nevents, "interactions", (json_int_t)sp.ninter,
        "metrics", metrics, "timing", "candidate_s", res->cand_seconds, "ranker_s",
        res->rank_seconds, "content_s", res->content_seconds, "candidate_examples_per_s",
        res->cand_examples_per_s, "ranker_examples_per_s", res->rank_examples_per_s, "total_s",
        now_s() - t_all);
    if (jtrain && o->holdout == TF_HOLDOUT_TIME)
        json_object_set_new(json_object_get(jtrain, "split"), "mode", json_string("time"));
    if (jtrain && wb)
        json_object_set_new(jtrain, "warm_start",
                            json_pack("{s:s, s:I, s:I, s:I}", "from", wb->dir, "version",
                                      (json_int_t)wb->version, "parameters", (json_int_t)tw.offered,
                                      "copied", (json_int_t)tw.copied));
    if (jtrain && o->test_corrupt_labels)
        json_object_set_new(jtrain, "test_corrupted_labels",
                            json_string(o->test_corrupt_labels == 2 ? "inverted" : "shuffled"));
    man = json_pack("{s:s, s:s, s:I, s:s, s:o, s:I, s:o, s:o, s:o, s:o}", "format",
                    RECD_BUNDLE_FORMAT, "name", o->name, "version", (json_int_t)version, "created",
                    created, "training", jtrain, "n_items", (json_int_t)N, "features",
                    tf_schema_json(&s), "candidate", jc, "ranker", jr, "ann", ja);
    if (man && jt)
        json_object_set_new(man, "content", jt);
    else
        json_decref(jt);
    if (!man) {
        rc = recd_err_set(err, RECD_ENOMEM, "out of memory (manifest)");
        goto out;
    }
    rc = recd_bundle_writer_commit(w, man, err);
    w = NULL;
    if (rc != 0)
        goto out;
    res->version = version;
    snprintf(res->dir, sizeof res->dir, "%s/%s/%lld", o->models_dir, o->name, (long long)version);
    res->seconds = now_s() - t_all;
    res->metrics = json_incref(metrics);
    res->warm_offered = tw.offered;
    res->warm_copied = tw.copied;
    snprintf(res->warm_missed, sizeof res->warm_missed, "%s", tw.missed);
    if (o->verbose)
        fprintf(stderr,
                "\n  %-10s %8s %10s %12s\n  %-10s %8.1f %10d %12.0f\n  %-10s %8.1f %10s %12.0f\n"
                "  %-10s %8.1f %10s %12s\n  cold-start vectors from the content model: %zu "
                "items\n",
                "stage", "seconds", "epochs", "examples/s", "candidate", res->cand_seconds,
                cand->epochs, res->cand_examples_per_s, "ranker", res->rank_seconds, "-",
                res->rank_examples_per_s, "content", res->content_seconds, "-", "-", ncold_filled);
out:
    if (w)
        recd_bundle_writer_abort(w);
    recd_ann_free(ann);
    json_decref(man);
    json_decref(metrics);
    free(items.p);
    tf_rdata_free(&dtr);
    tf_rdata_free(&dva);
    free(ex);
    free(trx);
    free(item_emb);
    recd_trank_free(rank);
    tf_content_free(content);
    tf_cand_free(cand);
    tf_split_free(&sp);
    tf_schema_free(&s);
    recd_dataset_free(ds_owned);
    free(item_map);
    if (warm_owned)
        recd_bundle_unref(warm_owned);
    return rc;
}
