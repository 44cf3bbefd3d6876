/*
 * Unit tests for the embedded trainer (src/train/online.c) and the warm
 * start it relies on (recd_fit_opts_t.warm_dir / warm_bundle, tf_warm_copy):
 *
 * - a warm-started fit with 0 epochs reproduces the live bundle: the same
 *   tensors (bit for bit) and the same scores (every metric of an
 *   evaluation through the serving code identical);
 * - tf_warm_copy copies a tensor only with the same name and shape, item
 *   tables row by row by id;
 * - a cycle on a temporary models directory and an event log written with
 *   the real writer publishes a new version (warm-started, evaluated against
 *   the live one) and cleans its staging directory; the same cycle trained
 *   on inverted labels is rejected by the guard and publishes nothing;
 * - bad inputs end in a clear decision: no model, an empty log, events on
 *   unknown items only, an estimate above trainer.max_memory_mb;
 * - the status JSON has the documented fields; the thread starts, runs a
 *   triggered cycle, refuses a second trigger while busy, and stops.
 *
 * The world: recd_dataset_synth's users and items (150, 200) with sessions
 * of impressions in which each user clicks items of its two liked genres
 * far more often (about 20k events over 20 days: a click signal strong
 * enough that a ranker's AUC is well above chance, so a worse model shows);
 * the live version is fitted on the first 14 days, the log holds the rest.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../../src/train/eval_int.h"
#include "recd/conf.h"
#include "recd/core.h"
#include "recd/dataset.h"
#include "recd/events.h"
#include "recd/evrec.h"
#include "recd/model.h"
#include "recd/nn.h"
#include "recd/online.h"
#include "recd/rank.h"
#include "recd/train.h"

#define DAY 86400

typedef struct fx {
    char top[PATH_MAX];
    char models[PATH_MAX]; /* top/models: live version default/1 */
    char log[PATH_MAX];    /* top/events: the later events */
    recd_dataset_t *world, *early;
} fx_t;

static fx_t *F;

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_tree(const char *p)
{
    nftw(p, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* The events of ds with lo <= ts < hi, on the same tables. */
static recd_dataset_t *subset(const recd_dataset_t *ds, int64_t lo, int64_t hi)
{
    recd_err_t err = {0};
    recd_dataset_t *o =
        recd_dataset_new("subset", ds->implicit, (const char *const *)ds->items.names,
                         ds->items.ncols, (const char *const *)ds->users.names, ds->users.ncols,
                         (const char *const *)ds->ctx_names, ds->nctx, &err);
    assert_non_null(o);
    for (size_t r = 0; r < ds->items.nrows; r++)
        assert_true(recd_dataset_add_item(
                        o, (const char *const *)ds->items.cells + r * ds->items.ncols, &err) >= 0);
    for (size_t r = 0; r < ds->users.nrows; r++)
        assert_true(recd_dataset_add_user(
                        o, (const char *const *)ds->users.cells + r * ds->users.ncols, &err) >= 0);
    for (size_t e = 0; e < ds->nevents; e++) {
        const recd_event_t *x = &ds->events[e];
        if (x->ts < lo || x->ts >= hi)
            continue;
        assert_int_equal(recd_dataset_add_event(
                             o, x->user, x->item, x->ts, (recd_ev_type_t)x->type, x->value,
                             ds->nctx ? (const char *const *)ds->ctx + e * ds->nctx : NULL, &err),
                         0);
    }
    assert_int_equal(recd_dataset_sort_events(o, &err), 0);
    return o;
}

/* A world with a strong signal: the synthetic world's users and items, and
 * sessions of 8 impressions of random items in which a user clicks (and
 * watches) items of the two genres it likes with probability 0.5, others
 * with 0.04; `days` days from RECD_WORLD_T0. */
static recd_dataset_t *genre_world(const recd_dataset_t *w, int days, size_t sessions_per_user)
{
    recd_err_t err = {0};
    recd_dataset_t *o =
        recd_dataset_new("genre world", 1, (const char *const *)w->items.names, w->items.ncols,
                         (const char *const *)w->users.names, w->users.ncols,
                         (const char *const *)w->ctx_names, w->nctx, &err);
    assert_non_null(o);
    for (size_t r = 0; r < w->items.nrows; r++)
        assert_true(recd_dataset_add_item(
                        o, (const char *const *)w->items.cells + r * w->items.ncols, &err) >= 0);
    for (size_t r = 0; r < w->users.nrows; r++)
        assert_true(recd_dataset_add_user(
                        o, (const char *const *)w->users.cells + r * w->users.ncols, &err) >= 0);
    int gc = recd_table_col(&w->items, "genres");
    assert_true(gc > 0);
    /* the genres that occur, in order of first appearance */
    const char *genres[64];
    size_t ng = 0;
    for (size_t i = 0; i < w->items.nrows; i++) {
        char buf[512];
        snprintf(buf, sizeof buf, "%s", w->items.cells[i * w->items.ncols + (size_t)gc]);
        for (char *t = strtok(buf, "|"); t; t = strtok(NULL, "|")) {
            size_t k = 0;
            while (k < ng && strcmp(genres[k], t) != 0)
                k++;
            if (k == ng && ng < 64)
                genres[ng++] = strdup(t);
        }
    }
    assert_true(ng >= 4);
    recd_rng_t r;
    recd_rng_seed(&r, 11);
    const char *dev[1] = {"mobile"};
    for (uint32_t u = 0; u < w->users.nrows; u++) {
        const char *like[2] = {genres[recd_rng_below(&r, (uint32_t)ng)],
                               genres[recd_rng_below(&r, (uint32_t)ng)]};
        for (size_t k = 0; k < sessions_per_user; k++) {
            int64_t ts = RECD_WORLD_T0 + (int64_t)recd_rng_below(&r, (uint32_t)days * DAY);
            for (int j = 0; j < 8; j++) {
                uint32_t it = recd_rng_below(&r, (uint32_t)w->items.nrows);
                const char *g = w->items.cells[(size_t)it * w->items.ncols + (size_t)gc];
                int liked = strstr(g, like[0]) || strstr(g, like[1]);
                assert_int_equal(
                    recd_dataset_add_event(o, u, it, ts + j, RECD_EV_IMPRESSION, 0, dev, &err), 0);
                if (recd_rng_unit(&r) < (liked ? 0.5 : 0.04)) {
                    assert_int_equal(
                        recd_dataset_add_event(o, u, it, ts + j + 5, RECD_EV_CLICK, 0, dev, &err),
                        0);
                    assert_int_equal(recd_dataset_add_event(o, u, it, ts + j + 9, RECD_EV_WATCH,
                                                            (float)(200 + recd_rng_below(&r, 600)),
                                                            dev, &err),
                                     0);
                }
            }
        }
    }
    for (size_t k = 0; k < ng; k++)
        free((void *)genres[k]);
    assert_int_equal(recd_dataset_sort_events(o, &err), 0);
    return o;
}

/* Small fit options (seconds, not minutes). */
static void small_fit(recd_fit_opts_t *o)
{
    recd_fit_defaults(o);
    o->dim = o->embed_dim = 16;
    o->hidden[0] = 32;
    o->nhidden = 1;
    o->negatives = 128;
    o->cand_epochs = 20;
    o->cand_batch = 32;
    o->rank_warm_lr = 0;
    o->watch_weight = 0;
    o->rank_embed_dim = 8;
    o->rank_hidden[0] = 16;
    o->nrank_hidden = 1;
    o->rank_epochs = 10;
    o->content_epochs = 5;
    o->index = "Flat";
}

/* Append every event of ds with ts >= lo to the log in dir (records as
 * recd writes them); extra events (user, item, type) may follow. */
static void write_log(const char *dir, const recd_dataset_t *ds, int64_t lo,
                      const char *const (*extra)[2], size_t nextra)
{
    recd_evlog_opts_t lo_opts;
    recd_evlog_opts_default(&lo_opts);
    lo_opts.fsync = RECD_EVLOG_FSYNC_NEVER;
    recd_evlog_t *log = NULL;
    recd_err_t err = {0};
    assert_int_equal(recd_evlog_open(dir, &lo_opts, &log, &err), 0);
    char buf[1024];
    for (size_t e = 0; e < ds->nevents + nextra; e++) {
        recd_evrec_t r;
        memset(&r, 0, sizeof r);
        if (e < ds->nevents) {
            const recd_event_t *x = &ds->events[e];
            if (x->ts < lo)
                continue;
            r.ts = x->ts;
            r.user_id = ds->users.cells[(size_t)x->user * ds->users.ncols];
            r.item_id = ds->items.cells[(size_t)x->item * ds->items.ncols];
            r.type = x->type;
            r.value = x->type == RECD_EV_RATING || x->type == RECD_EV_WATCH ? x->value : 1;
        } else {
            r.ts = RECD_WORLD_T0 + 30 * DAY;
            r.user_id = extra[e - ds->nevents][0];
            r.item_id = extra[e - ds->nevents][1];
            r.type = RECD_EV_CLICK;
            r.value = 1;
        }
        r.user_len = strlen(r.user_id);
        r.item_len = strlen(r.item_id);
        r.recv_ms = r.ts * 1000;
        size_t n = recd_evrec_encode(&r, buf, sizeof buf);
        struct iovec iov = {buf, n};
        assert_int_equal(recd_evlog_append(log, &iov, 1, NULL, &err), 0);
    }
    recd_evlog_close(log);
}

static void publish_conf(const char *const *sets, size_t n)
{
    recd_conf_errors_t errs = {0};
    recd_conf_t *c = recd_conf_load(NULL, sets, n, &errs);
    if (!c)
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "conf: %s\n", errs.lines[i]);
    assert_non_null(c);
    recd_conf_errors_free(&errs);
    recd_conf_publish(c);
}

static const char *const CONF_DEFAULT[] = {"trainer.epochs=2", "trainer.holdout_pct=20",
                                           "trainer.tolerance_bp=50"};

static int group_setup(void **state)
{
    (void)state;
    recd_nn_init();
    recd_log_set_level(RECD_LOG_WARN);
    F = calloc(1, sizeof *F);
    const char *t = getenv("TMPDIR");
    snprintf(F->top, sizeof F->top, "%s/recd-online-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(F->top))
        return -1;
    snprintf(F->models, sizeof F->models, "%s/models", F->top);
    snprintf(F->log, sizeof F->log, "%s/events", F->top);
    recd_world_opts_t wo;
    recd_world_defaults(&wo);
    wo.n_users = 150;
    wo.n_items = 200;
    wo.n_events = 2000;
    wo.n_topics = 6;
    wo.days = 20;
    wo.seed = 3;
    recd_err_t err = {0};
    recd_dataset_t *w = NULL;
    if (recd_dataset_synth(&wo, &w, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    F->world = genre_world(w, 20, 12);
    recd_dataset_free(w);
    F->early = subset(F->world, 0, RECD_WORLD_T0 + 14 * DAY);
    recd_fit_opts_t o;
    small_fit(&o);
    o.dataset = F->early;
    o.models_dir = F->models;
    o.holdout = 0;
    recd_fit_result_t res;
    if (recd_train_fit(&o, &res, &err) != 0) {
        fprintf(stderr, "live fit: %s\n", err.msg);
        return -1;
    }
    json_decref(res.metrics);
    write_log(F->log, F->world, RECD_WORLD_T0 + 14 * DAY, NULL, 0);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    recd_trainer_reset();
    rm_tree(F->top);
    recd_dataset_free(F->world);
    recd_dataset_free(F->early);
    free(F);
    recd_conf_shutdown();
    return 0;
}

static recd_bundle_t *load(const char *dir)
{
    recd_model_opts_t mo = {.ann_factory = "", .use_index_file = 1, .attach = recd_rank_attach};
    recd_err_t err = {0};
    recd_bundle_t *b = recd_bundle_load(dir, &mo, &err);
    if (!b)
        fprintf(stderr, "load %s: %s\n", dir, err.msg);
    assert_non_null(b);
    return b;
}

/* Evaluate b on ds (time split, newest 20%) through the serving code. */
static void eval_on(recd_bundle_t *b, const recd_dataset_t *ds, tf_metrics_t *m)
{
    tf_split_t sp;
    tf_split_opts_t so = {TF_HOLDOUT_TIME, 0, 0.2, 7};
    recd_err_t err = {0};
    tf_rex_t *ex = NULL;
    size_t nex = 0;
    assert_int_equal(tf_split_build(&sp, ds, &so, &err), 0);
    assert_int_equal(tf_rex_build(ds, 1, 4, 7, &ex, &nex, &err), 0);
    assert_int_equal(tf_eval_bundle(b, ds, &sp, ex, nex, 50, m, &err), 0);
    free(ex);
    tf_split_free(&sp);
}

/* ---- warm start ------------------------------------------------------------------- */

static void test_warm_zero_epochs_reproduces_live(void **state)
{
    (void)state;
    char mdir[PATH_MAX], live[PATH_MAX + 16], warm[PATH_MAX + 16];
    snprintf(mdir, sizeof mdir, "%s/warm0", F->top);
    snprintf(live, sizeof live, "%s/default/1", F->models);
    recd_fit_opts_t o;
    recd_fit_defaults(&o); /* architecture options are ignored: the bundle's win */
    o.dataset = F->early;
    o.models_dir = mdir;
    o.holdout = 0;
    o.warm_dir = live;
    o.cand_epochs = o.rank_epochs = o.content_epochs = 0;
    o.index = "Flat";
    recd_fit_result_t res;
    recd_err_t err = {0};
    int rc = recd_train_fit(&o, &res, &err);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_true(res.warm_offered > 20);
    assert_int_equal(res.warm_copied, res.warm_offered); /* every parameter */
    json_decref(res.metrics);
    snprintf(warm, sizeof warm, "%s/default/1", mdir);
    recd_bundle_t *a = load(live), *b = load(warm);
    assert_int_equal(a->ntensors, b->ntensors);
    /* every tensor bit for bit; the tied history table may differ only on
     * items nobody interacted with (the live bundle kept their raw rows,
     * the warm start took the content-model vectors serving scores) */
    for (size_t i = 0; i < a->ntensors; i++) {
        const recd_tensor_t *x = &a->tensors[i], *y = recd_bundle_tensor(b, x->name);
        assert_non_null(y);
        assert_int_equal(x->count, y->count);
        if (strcmp(x->name, "cand.hist_emb") == 0) {
            size_t cols = (size_t)x->shape[1];
            for (size_t r = 0; r < a->n_items; r++)
                if (a->popularity[r] > 0)
                    assert_memory_equal(x->data + r * cols, y->data + r * cols,
                                        cols * sizeof(float));
            continue;
        }
        if (memcmp(x->data, y->data, x->count * sizeof(float)) != 0)
            fail_msg("tensor %s differs after a 0-epoch warm start", x->name);
    }
    /* the same scores: every metric through the serving code, on the later
     * events (exact equality: the same floats in the same order) */
    tf_metrics_t ma, mb;
    eval_on(a, F->world, &ma);
    eval_on(b, F->world, &mb);
    assert_true(ma.n_test_users > 20 && ma.n_rank_test > 100);
    assert_true(ma.hr10 == mb.hr10 && ma.ndcg10 == mb.ndcg10 && ma.recall20 == mb.recall20);
    assert_true(ma.auc == mb.auc && ma.logloss == mb.logloss);
    assert_true(ma.rank_hr10 == mb.rank_hr10);
    recd_bundle_unref(a);
    recd_bundle_unref(b);

    /* with epochs the weights move, the shapes stay */
    o.cand_epochs = o.rank_epochs = o.content_epochs = 1;
    o.dataset = F->world;
    assert_int_equal(recd_train_fit(&o, &res, &err), 0);
    assert_int_equal(res.warm_copied, res.warm_offered);
    json_decref(res.metrics);
    snprintf(warm, sizeof warm, "%s/default/2", mdir);
    a = load(live);
    b = load(warm);
    const recd_tensor_t *x = recd_bundle_tensor(a, "cand.tower.0.w");
    const recd_tensor_t *y = recd_bundle_tensor(b, "cand.tower.0.w");
    assert_int_equal(x->count, y->count);
    assert_true(memcmp(x->data, y->data, x->count * sizeof(float)) != 0);
    recd_bundle_unref(a);
    recd_bundle_unref(b);
    rm_tree(mdir);
}

static void test_warm_copy_matches_name_and_shape(void **state)
{
    (void)state;
    char live[PATH_MAX + 16];
    snprintf(live, sizeof live, "%s/default/1", F->models);
    recd_bundle_t *b = load(live);
    const recd_tensor_t *t = recd_bundle_tensor(b, "cand.tower.0.w");
    assert_non_null(t);
    size_t rows = (size_t)t->shape[0], cols = (size_t)t->shape[1];
    float *w = calloc(rows * cols + cols, sizeof *w);
    tf_warm_t wm = {.b = b};
    assert_int_equal(tf_warm_copy(&wm, "cand.tower.0.w", w, rows, cols, 0), 1);
    assert_memory_equal(w, t->data, rows * cols * sizeof *w);
    memset(w, 0, rows * cols * sizeof *w);
    /* another shape, an unknown name: untouched, counted, named */
    assert_int_equal(tf_warm_copy(&wm, "cand.tower.0.w", w, rows + 1, cols, 0), 0);
    assert_int_equal(tf_warm_copy(&wm, "cand.tower.0.w", w, cols, rows, 0), 0);
    assert_int_equal(tf_warm_copy(&wm, "rank.nothing", w, 1, 1, 0), 0);
    for (size_t i = 0; i < rows * cols; i++)
        assert_true(w[i] == 0.0f);
    assert_int_equal(wm.offered, 4);
    assert_int_equal(wm.copied, 1);
    assert_non_null(strstr(wm.missed, "rank.nothing"));
    assert_int_equal(tf_warm_copy(NULL, "cand.tower.0.w", w, rows, cols, 0), 0);
    /* item tables by id: rows of the dataset in another order, one unknown */
    const recd_tensor_t *e = recd_bundle_tensor(b, "cand.item_emb");
    size_t D = (size_t)e->shape[1];
    int64_t map[3] = {5, -1, 0};
    float *x = calloc(3 * D, sizeof *x);
    for (size_t k = 0; k < D; k++)
        x[D + k] = 7.0f;
    tf_warm_t wi = {.b = b, .item_map = map, .n_items = 3};
    assert_int_equal(tf_warm_copy(&wi, "cand.item_emb", x, 3, D, 1), 1);
    assert_memory_equal(x, e->data + 5 * D, D * sizeof *x);
    assert_true(x[D] == 7.0f && x[2 * D - 1] == 7.0f); /* the unknown item kept its init */
    assert_memory_equal(x + 2 * D, e->data, D * sizeof *x);
    /* another width is refused */
    assert_int_equal(tf_warm_copy(&wi, "cand.item_emb", x, 3, D - 1, 1), 0);
    free(x);
    free(w);
    recd_bundle_unref(b);
}

/* ---- cycles ------------------------------------------------------------------------ */

static json_t *status_last(void)
{
    json_t *s = recd_trainer_status_json();
    assert_non_null(s);
    json_t *l = json_incref(json_object_get(s, "last"));
    json_decref(s);
    assert_true(json_is_object(l));
    return l;
}

static const char *str(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    assert_non_null(v);
    return v;
}

static int64_t count_versions(const char *models)
{
    char p[PATH_MAX + 16];
    int64_t n = 0;
    for (int v = 1; v < 10; v++) {
        snprintf(p, sizeof p, "%s/default/%d", models, v);
        n += exists(p);
    }
    return n;
}

static void test_cycle_publishes_a_warm_started_version(void **state)
{
    (void)state;
    publish_conf(CONF_DEFAULT, 3);
    recd_trainer_reset();
    recd_trainer_opts_t o = {F->log, F->models, "default"};
    recd_err_t err = {0};
    int rc = recd_trainer_run_once(&o, &err);
    json_t *l = status_last();
    if (rc || strcmp(str(l, "decision"), "published") != 0)
        fprintf(stderr, "%s: %s\n", str(l, "decision"), str(l, "reason"));
    assert_int_equal(rc, 0);
    assert_string_equal(str(l, "decision"), "published");
    assert_int_equal(json_integer_value(json_object_get(l, "version")), 2);
    assert_int_equal(json_integer_value(json_object_get(l, "live_version")), 1);
    assert_string_equal(str(l, "metric"), "auc"); /* the log has impressions */
    double live = json_number_value(json_object_get(l, "live"));
    double cand = json_number_value(json_object_get(l, "candidate"));
    assert_true(live > 0.4 && live < 1 && cand > 0.4 && cand < 1);
    assert_true(cand >= live - 0.005);
    json_t *d = json_object_get(l, "detail");
    assert_int_equal(json_integer_value(json_object_get(d, "unknown_items")), 0);
    json_t *ws = json_object_get(d, "warm_start");
    assert_true(json_integer_value(json_object_get(ws, "copied")) > 20);
    assert_int_equal(json_integer_value(json_object_get(ws, "copied")),
                     json_integer_value(json_object_get(ws, "parameters")));
    fprintf(stderr,
            "    cycle: %lld events, %lld examples, %.0f ms (read %.0f, train %.0f, eval %.0f); "
            "candidate %.0f ex/s, ranker %.0f ex/s; auc live %.4f new %.4f\n",
            (long long)json_integer_value(json_object_get(l, "events")),
            (long long)json_integer_value(json_object_get(l, "examples")),
            json_number_value(json_object_get(l, "duration_ms")),
            json_number_value(json_object_get(json_object_get(d, "timing_ms"), "read")),
            json_number_value(json_object_get(json_object_get(d, "timing_ms"), "train")),
            json_number_value(json_object_get(json_object_get(d, "timing_ms"), "eval")),
            json_number_value(json_object_get(d, "candidate_examples_per_s")),
            json_number_value(json_object_get(d, "ranker_examples_per_s")), live, cand);
    json_decref(l);
    /* the new version is complete and servable; its manifest tells its origin */
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/default/2", F->models);
    recd_bundle_t *b = load(p);
    json_t *tr = json_object_get(b->manifest, "training");
    assert_string_equal(json_string_value(json_object_get(json_object_get(tr, "split"), "mode")),
                        "time");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(tr, "warm_start"), "version")), 1);
    recd_bundle_unref(b);
    snprintf(p, sizeof p, "%s/default/.trainer", F->models);
    assert_false(exists(p)); /* staging removed */
    /* the next cycle starts from version 2 and would publish 3 */
    rm_tree(p); /* (nothing) */
    snprintf(p, sizeof p, "%s/default/2", F->models);
    rm_tree(p);
}

static void test_cycle_rejects_a_worse_model(void **state)
{
    (void)state;
    static const char *const SETS[] = {"trainer.epochs=8", "trainer.holdout_pct=20",
                                       "trainer.tolerance_bp=50"};
    publish_conf(SETS, 3);
    recd_trainer_reset();
    setenv("RECD_TRAINER_TEST_CORRUPT", "invert", 1);
    recd_trainer_opts_t o = {F->log, F->models, "default"};
    recd_err_t err = {0};
    int rc = recd_trainer_run_once(&o, &err);
    unsetenv("RECD_TRAINER_TEST_CORRUPT");
    assert_int_equal(rc, 0);
    json_t *l = status_last();
    fprintf(stderr, "    corrupted: %s: %s\n", str(l, "decision"), str(l, "reason"));
    assert_string_equal(str(l, "decision"), "rejected");
    assert_non_null(strstr(str(l, "reason"), "below the live version"));
    assert_non_null(strstr(str(l, "reason"), "corrupted labels"));
    double live = json_number_value(json_object_get(l, "live"));
    double cand = json_number_value(json_object_get(l, "candidate"));
    fprintf(stderr, "    inverted labels: auc live %.4f, new %.4f\n", live, cand);
    assert_true(cand < live);
    assert_true(json_is_null(json_object_get(l, "version")));
    json_decref(l);
    assert_int_equal(count_versions(F->models), 1);
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/default/.trainer", F->models);
    assert_false(exists(p));
}

static void test_cycle_bad_inputs(void **state)
{
    (void)state;
    publish_conf(CONF_DEFAULT, 3);
    recd_trainer_reset();
    recd_err_t err = {0};
    /* missing options */
    recd_trainer_opts_t bad = {NULL, F->models, "default"};
    assert_int_equal(recd_trainer_run_once(&bad, &err), RECD_EINVAL);
    assert_non_null(strstr(err.msg, "events_dir"));
    /* no such model */
    recd_trainer_opts_t o = {F->log, F->models, "nosuch"};
    assert_int_equal(recd_trainer_run_once(&o, &err), RECD_ENOENT);
    json_t *l = status_last();
    assert_string_equal(str(l, "decision"), "failed");
    assert_non_null(strstr(str(l, "reason"), "nosuch"));
    json_decref(l);
    /* an empty log, a log of unknown items only */
    char empty[PATH_MAX + 16], unknown[PATH_MAX + 16];
    snprintf(empty, sizeof empty, "%s/empty", F->top);
    snprintf(unknown, sizeof unknown, "%s/unknown", F->top);
    write_log(empty, F->world, INT64_MAX, NULL, 0);
    static const char *const EXTRA[][2] = {{"u1", "nope1"}, {"u2", "nope2"}, {"u3", "nope3"}};
    write_log(unknown, F->world, INT64_MAX, EXTRA, 3);
    recd_trainer_opts_t oe = {empty, F->models, "default"};
    assert_int_equal(recd_trainer_run_once(&oe, &err), 0);
    l = status_last();
    assert_string_equal(str(l, "decision"), "skipped");
    assert_non_null(strstr(str(l, "reason"), "no events"));
    json_decref(l);
    recd_trainer_reset();
    recd_trainer_opts_t ou = {unknown, F->models, "default"};
    assert_int_equal(recd_trainer_run_once(&ou, &err), 0);
    l = status_last();
    assert_string_equal(str(l, "decision"), "skipped");
    assert_non_null(strstr(str(l, "reason"), "3 on items the live version does not have"));
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(l, "detail"), "unknown_items")), 3);
    json_decref(l);
    /* a missing log directory */
    recd_trainer_reset();
    char none[PATH_MAX + 16];
    snprintf(none, sizeof none, "%s/none", F->top);
    recd_trainer_opts_t on = {none, F->models, "default"};
    assert_int_equal(recd_trainer_run_once(&on, &err), RECD_ENOENT);
    l = status_last();
    assert_string_equal(str(l, "decision"), "failed");
    assert_non_null(strstr(str(l, "reason"), "event log"));
    json_decref(l);
    assert_int_equal(count_versions(F->models), 1);
}

static void test_cycle_memory_bound(void **state)
{
    (void)state;
    /* a bigger live model (synthetic, 40k items x 64) than 64 MiB allows */
    char mdir[PATH_MAX + 16];
    snprintf(mdir, sizeof mdir, "%s/big", F->top);
    recd_synth_opts_t so;
    recd_train_synth_defaults(&so);
    so.models_dir = mdir;
    so.n_items = 40000;
    so.dim = 64;
    so.embed_dim = 64;
    so.hidden[0] = 64;
    so.rank_hidden[0] = 32;
    so.nrank_hidden = 1;
    so.write_index_file = 1;
    so.index = "Flat";
    recd_err_t err = {0};
    assert_int_equal(recd_train_synth_bundle(&so, &err), 0);
    static const char *const SETS[] = {"trainer.max_memory_mb=64"};
    publish_conf(SETS, 1);
    recd_trainer_reset();
    recd_trainer_opts_t o = {F->log, mdir, "default"};
    assert_int_equal(recd_trainer_run_once(&o, &err), 0);
    json_t *l = status_last();
    assert_string_equal(str(l, "decision"), "skipped");
    assert_non_null(strstr(str(l, "reason"), "trainer.max_memory_mb 64"));
    assert_true(json_number_value(
                    json_object_get(json_object_get(l, "detail"), "memory_estimate_mb")) > 64);
    json_decref(l);
    rm_tree(mdir);
}

/* ---- status and the thread --------------------------------------------------------- */

static void check_status_shape(const json_t *s)
{
    static const char *const TOP[] = {"enabled", "state",      "cycles", "last",
                                      "model",   "new_events", "nice",   "next_check_at"};
    for (size_t i = 0; i < sizeof TOP / sizeof TOP[0]; i++)
        if (!json_object_get(s, TOP[i]))
            fail_msg("status lacks %s", TOP[i]);
    const json_t *l = json_object_get(s, "last");
    if (json_is_null(l))
        return;
    static const char *const LAST[] = {"started_at", "duration_ms", "events",    "examples",
                                       "metric",     "live",        "candidate", "decision",
                                       "reason",     "version",     "detail",    "metrics"};
    for (size_t i = 0; i < sizeof LAST / sizeof LAST[0]; i++)
        if (!json_object_get(l, LAST[i]))
            fail_msg("status.last lacks %s", LAST[i]);
}

static void test_status_json(void **state)
{
    (void)state;
    publish_conf(CONF_DEFAULT, 3);
    recd_trainer_reset();
    json_t *s = recd_trainer_status_json();
    check_status_shape(s);
    assert_false(json_is_true(json_object_get(s, "enabled")));
    assert_string_equal(json_string_value(json_object_get(s, "state")), "idle");
    assert_int_equal(json_integer_value(json_object_get(s, "cycles")), 0);
    assert_true(json_is_null(json_object_get(s, "last")));
    json_decref(s);
    recd_err_t err = {0};
    assert_int_equal(recd_trainer_trigger(&err), RECD_EINVAL);
    assert_non_null(strstr(err.msg, "not running"));
    /* after a (rejected) cycle: every field, with types */
    setenv("RECD_TRAINER_TEST_CORRUPT", "invert", 1);
    recd_trainer_opts_t o = {F->log, F->models, "default"};
    assert_int_equal(recd_trainer_run_once(&o, &err), 0);
    unsetenv("RECD_TRAINER_TEST_CORRUPT");
    s = recd_trainer_status_json();
    check_status_shape(s);
    assert_int_equal(json_integer_value(json_object_get(s, "cycles")), 1);
    assert_string_equal(json_string_value(json_object_get(s, "model")), "default");
    json_t *l = json_object_get(s, "last");
    assert_true(json_number_value(json_object_get(l, "started_at")) > 1.7e9);
    assert_true(json_number_value(json_object_get(l, "duration_ms")) > 0);
    assert_true(json_integer_value(json_object_get(l, "events")) > 1000);
    assert_true(json_integer_value(json_object_get(l, "examples")) > 1000);
    assert_true(json_is_number(json_object_get(l, "live")));
    assert_true(json_is_number(json_object_get(l, "candidate")));
    json_t *m = json_object_get(l, "metrics");
    assert_true(json_is_number(json_object_get(json_object_get(m, "live"), "auc")));
    assert_true(json_is_number(json_object_get(json_object_get(m, "candidate"), "hr@10")));
    json_decref(s);
}

static int wait_cycles(json_int_t n, double seconds)
{
    for (int i = 0; i < (int)(seconds * 20); i++) {
        json_t *s = recd_trainer_status_json();
        json_int_t c = json_integer_value(json_object_get(s, "cycles"));
        json_decref(s);
        if (c >= n)
            return 1;
        usleep(50000);
    }
    return 0;
}

static void test_thread_trigger_and_stop(void **state)
{
    (void)state;
    static const char *const SETS[] = {"trainer.epochs=1", "trainer.holdout_pct=20",
                                       "trainer.interval_s=3600", "trainer.nice=5"};
    publish_conf(SETS, 4);
    recd_trainer_reset();
    recd_trainer_opts_t o = {F->log, F->models, "default"};
    recd_err_t err = {0};
    /* debris of a crashed cycle is removed at start */
    char stg[PATH_MAX + 32];
    snprintf(stg, sizeof stg, "%s/default/.trainer/default/.tmp-9", F->models);
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", stg);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(recd_trainer_start(&o, &err), 0);
    snprintf(stg, sizeof stg, "%s/default/.trainer", F->models);
    assert_false(exists(stg));
    assert_int_equal(recd_trainer_start(&o, &err), RECD_EINVAL); /* twice */
    assert_int_equal(recd_trainer_run_once(&o, &err), RECD_EAGAIN);
    json_t *s = recd_trainer_status_json();
    assert_true(json_is_true(json_object_get(s, "enabled")));
    assert_true(json_number_value(json_object_get(s, "next_check_at")) > 1.7e9);
    json_decref(s);
    /* the interval is an hour: nothing happens until triggered */
    usleep(200000);
    s = recd_trainer_status_json();
    assert_int_equal(json_integer_value(json_object_get(s, "cycles")), 0);
    json_decref(s);
    assert_int_equal(recd_trainer_trigger(&err), 0);
    int again = recd_trainer_trigger(&err); /* queued or running: not twice */
    assert_int_equal(again, RECD_EAGAIN);
    assert_true(wait_cycles(1, 60));
    s = recd_trainer_status_json();
    assert_int_equal(json_integer_value(json_object_get(s, "nice")), 5);
    /* one BLAS thread, one OpenMP thread on the trainer thread */
    json_t *th = json_object_get(s, "threads");
    assert_int_equal(json_integer_value(json_object_get(th, "blas")), 1);
    assert_int_equal(json_integer_value(json_object_get(th, "openmp")), 1);
    json_t *l = json_object_get(s, "last");
    const char *dec = json_string_value(json_object_get(l, "decision"));
    assert_true(strcmp(dec, "published") == 0 || strcmp(dec, "rejected") == 0);
    int published = strcmp(dec, "published") == 0;
    json_decref(s);
    /* stop in the middle of a cycle: abandoned (or finished), no debris */
    assert_int_equal(recd_trainer_trigger(&err), 0);
    usleep(30000);
    recd_trainer_stop();
    assert_false(exists(stg));
    s = recd_trainer_status_json();
    assert_false(json_is_true(json_object_get(s, "enabled")));
    l = json_object_get(s, "last");
    dec = json_string_value(json_object_get(l, "decision"));
    fprintf(stderr, "    stop during the second cycle: %s\n", dec ? dec : "(none)");
    json_decref(s);
    recd_trainer_stop(); /* twice: no-op */
    /* clean up what the cycles published */
    char p[PATH_MAX + 32];
    for (int v = 2; v < 10; v++) {
        snprintf(p, sizeof p, "%s/default/%d", F->models, v);
        rm_tree(p);
    }
    (void)published;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_warm_zero_epochs_reproduces_live),
        cmocka_unit_test(test_warm_copy_matches_name_and_shape),
        cmocka_unit_test(test_cycle_publishes_a_warm_started_version),
        cmocka_unit_test(test_cycle_rejects_a_worse_model),
        cmocka_unit_test(test_cycle_bad_inputs),
        cmocka_unit_test(test_cycle_memory_bound),
        cmocka_unit_test(test_status_json),
        cmocka_unit_test(test_thread_trigger_and_stop),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
