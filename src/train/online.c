/*
 * The embedded trainer (include/recd/online.h): a thread inside recd that
 * retrains the live model from the event log, warm-started from it, and
 * publishes the result only when it is no worse on a time-ordered holdout.
 *
 * One cycle:
 *   reading     pass 1 over the log (from where the previous window began)
 *               keeps the offsets of the newest trainer.max_events records
 *               in a ring; the memory estimate is checked; pass 2 decodes
 *               exactly those records into a dataset whose item table is the
 *               live bundle's items.tsv (events on items the bundle does not
 *               have are left out and counted: the model can only score its
 *               own catalogue) and whose users are the log's;
 *   training    recd_train_fit with the dataset in memory, holdout by time
 *               (the newest trainer.holdout_pct percent), trainer.epochs for
 *               every model, warm-started from the live bundle; the bundle
 *               writer publishes the candidate into a staging models
 *               directory <models_dir>/<model>/.trainer/ (not a version
 *               name, so nothing serves or deletes it);
 *   evaluating  the staged candidate is loaded and validated like any
 *               version, and both it and the live bundle are evaluated
 *               through the serving code on the same split
 *               (tf_eval_bundle): the ranker's AUC when the holdout has
 *               impressions with outcomes, else the candidate model's
 *               HR@10 (leave-one-out against 99 sampled items);
 *   publishing  when candidate >= live - trainer.tolerance_bp / 10000: one
 *               rename of the staged directory to <models_dir>/<model>/<v>
 *               (RENAME_NOREPLACE: a version someone else published is never
 *               replaced) and an fsync of <model>/ - the writer already
 *               fsynced every file and the directory - so the version appears
 *               complete or not at all; the lifecycle manager loads it.
 * The staging directory is removed after every cycle, when a cycle is
 * abandoned (stop) and when the trainer starts (debris of a crash).
 *
 * The published model is the one evaluated: trained on everything but the
 * holdout. The holdout's events train the next cycle.
 *
 * Threads: one trainer thread; status readers on any thread take the
 * mutex, which is never held while training.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "../ann/faissx.h"
#include "eval_int.h"
#include "recd/conf.h"
#include "recd/dataset.h"
#include "recd/events.h"
#include "recd/evrec.h"
#include "recd/lifecycle.h"
#include "recd/model.h"
#include "recd/nn.h"
#include "recd/online.h"
#include "recd/rank.h"
#include "recd/train.h"

/* OpenBLAS (the pthreads build Debian links: one process-wide thread count,
 * set to 1 by recd_nn_init for serving and for this thread alike) and
 * libgomp (per thread: FAISS index builds) */
int openblas_get_num_threads(void);
int omp_get_max_threads(void);

#define STAGING ".trainer"
#define RECHECK_MAX_S 30.0 /* interval passed but too few events: look again this often */

/* trainer.* values of one cycle */
typedef struct cfg {
    char model[128];
    int64_t interval_s, min_new_events, holdout_pct, tolerance_bp, nice, max_memory_mb, epochs,
        max_events;
    int enabled;
} cfg_t;

/* The outcome of the last cycle (online.h: /stats "trainer".last). */
typedef struct last {
    double started_at, duration_ms;
    uint64_t events;        /* events in the dataset */
    uint64_t log_records;   /* records read from the log (window) */
    uint64_t unknown_items; /* events on items the live bundle lacks (left out) */
    uint64_t undecodable;
    size_t users, items;
    size_t cand_examples, rank_examples;
    double cand_examples_per_s, rank_examples_per_s;
    char metric[16];
    double live, candidate;
    char decision[16];
    char reason[512];
    int64_t version, live_version;
    size_t warm_offered, warm_copied;
    double memory_estimate_mb;
    double read_ms, train_ms, eval_ms, publish_ms;
    json_t *live_metrics, *cand_metrics;
} last_t;

static struct trainer {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int cv_ready;
    int started;
    pthread_t th;
    atomic_int stop;
    int trigger, busy;
    char *events_dir, *models_dir, *model;
    const char *state;
    uint64_t cycles;
    int has_last;
    last_t last;
    double next_check_wall;
    /* log position (the thread's own; not under the mutex) */
    uint64_t count_from;         /* new events are counted from here */
    _Atomic uint64_t new_events; /* records at or after the last cycle's window end */
    uint64_t window_start;       /* the last window's first record */
    int64_t window_max;          /* max_events of that window */
    double last_cycle_mono;
    int nice_applied;
    int blas_threads, omp_threads; /* as seen on the trainer thread */
} T = {.mu = PTHREAD_MUTEX_INITIALIZER, .state = "idle"};

/* ---- small helpers ------------------------------------------------------------------ */

static double mono_s(void)
{
    return (double)recd_time_mono_us() / 1e6;
}

static int cancelled(void *ctx)
{
    (void)ctx;
    return atomic_load(&T.stop);
}

static void set_state(const char *st)
{
    pthread_mutex_lock(&T.mu);
    T.state = st;
    pthread_mutex_unlock(&T.mu);
}

/* Default of an integer key, from the config table (the one source). */
static int64_t key_default(const char *path)
{
    const recd_conf_key_t *k = recd_conf_key_find(path);
    return k ? k->def_int : 0;
}

static void read_cfg(const char *model, cfg_t *c)
{
    const recd_conf_t *cur = recd_conf_current();
    recd_conf_t *def = cur ? NULL : recd_conf_new_defaults();
    const recd_conf_t *k = cur ? cur : def;
    memset(c, 0, sizeof *c);
    if (k) {
        c->enabled = k->trainer_enabled;
        c->interval_s = k->trainer_interval_s;
        c->min_new_events = k->trainer_min_new_events;
        c->holdout_pct = k->trainer_holdout_pct;
        c->tolerance_bp = k->trainer_tolerance_bp;
        c->nice = k->trainer_nice;
        c->max_memory_mb = k->trainer_max_memory_mb;
        c->epochs = k->trainer_epochs;
        c->max_events = k->trainer_max_events;
    } else { /* out of memory: the config table's defaults */
        c->interval_s = key_default("trainer.interval_s");
        c->min_new_events = key_default("trainer.min_new_events");
        c->holdout_pct = key_default("trainer.holdout_pct");
        c->tolerance_bp = key_default("trainer.tolerance_bp");
        c->nice = key_default("trainer.nice");
        c->max_memory_mb = key_default("trainer.max_memory_mb");
        c->epochs = key_default("trainer.epochs");
        c->max_events = key_default("trainer.max_events");
    }
    const char *name = model && *model                                ? model
                       : k && k->trainer_model && *k->trainer_model   ? k->trainer_model
                       : k && k->models_default && *k->models_default ? k->models_default
                                                                      : "default";
    snprintf(c->model, sizeof c->model, "%s", name);
    recd_conf_free(def);
}

/* Highest version directory of models_dir/model (0: none). */
static int64_t highest_version(const char *models_dir, const char *model)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", models_dir, model);
    int64_t v;
    return recd_model_list_versions(path, &v, 1, 0) ? v : 0;
}

/* The live bundle: the registry's serving version (*from_registry = 1), or
 * else the highest version on disk that loads (with its ranker). */
static recd_bundle_t *live_bundle(const char *models_dir, const char *model, int *from_registry,
                                  recd_err_t *err)
{
    recd_bundle_t *b = recd_model_acquire(model);
    if (b) {
        *from_registry = 1;
        return b;
    }
    *from_registry = 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", models_dir, model);
    DIR *d = opendir(path);
    if (!d) {
        recd_err_set(err, RECD_ENOENT, "%s: no such model directory", path);
        return NULL;
    }
    closedir(d);
    /* the registry's listing, highest first (the same cap as the model
     * manager's: 4096 versions looked at) */
    enum { MAX_VERSIONS = 4096 };
    int64_t *v = malloc(MAX_VERSIONS * sizeof *v);
    size_t n = v ? recd_model_list_versions(path, v, MAX_VERSIONS, 0) : 0;
    recd_model_opts_t mo = {.ann_factory = "", .use_index_file = 1, .attach = recd_rank_attach};
    recd_err_t e1 = {0};
    for (size_t i = 0; i < n && !b; i++) {
        snprintf(path, sizeof path, "%s/%s/%lld", models_dir, model, (long long)v[i]);
        b = recd_bundle_load(path, &mo, &e1);
    }
    free(v);
    if (!b)
        recd_err_set(err, RECD_ENOENT, "no servable version of model %s in %s%s%s", model,
                     models_dir, e1.msg[0] ? " (last error: " : "", e1.msg[0] ? e1.msg : "");
    if (!b && e1.msg[0] && err)
        snprintf(err->msg + strlen(err->msg), sizeof err->msg - strlen(err->msg), ")");
    return b;
}

static void live_release(recd_bundle_t *b, int from_registry)
{
    if (!b)
        return;
    if (from_registry)
        recd_model_release(b);
    else
        recd_bundle_unref(b);
}

/* ---- the base dataset ------------------------------------------------------------------ */

int recd_trainer_base_dataset(const recd_bundle_t *b, recd_dataset_t **out, recd_err_t *err)
{
    *out = NULL;
    if (!b || b->ncols < 1 || strcmp(b->col_names[0], "id") != 0)
        return recd_err_set(err, RECD_EINVAL,
                            "base dataset: the bundle's items.tsv has no id "
                            "column first");
    static const char *const ID[] = {"id"};
    char source[1200];
    snprintf(source, sizeof source, "items of %s", b->dir);
    recd_dataset_t *ds = recd_dataset_new(source, 1, (const char *const *)b->col_names, b->ncols,
                                          ID, 1, NULL, 0, err);
    if (!ds)
        return err && err->code < 0 ? err->code : RECD_ENOMEM;
    for (size_t i = 0; i < b->n_items; i++)
        if (recd_dataset_add_item(ds, (const char *const *)b->cells + i * b->ncols, err) < 0) {
            recd_dataset_free(ds);
            return err && err->code < 0 ? err->code : RECD_EINVAL;
        }
    *out = ds;
    return 0;
}

/* ---- reading the log ---------------------------------------------------------------------- */

/* pass 1: the offsets of the newest `cap` records (a ring once full) */
typedef struct ring {
    uint64_t *off;
    size_t cap, n, head; /* n <= cap records; head: next slot to overwrite once full */
    size_t alloc;        /* slots allocated (grows by doubling up to cap) */
    uint64_t total, end; /* records seen; end offset of the last one */
    int oom;
} ring_t;

static int ring_cb(void *ctx, uint64_t offset, const void *payload, uint32_t len)
{
    (void)payload;
    ring_t *r = ctx;
    if (atomic_load(&T.stop))
        return 1;
    r->total++;
    r->end = offset + RECD_EVLOG_HEADER + len;
    if (r->n < r->cap) {
        if (r->n == r->alloc) {
            /* grow by doubling up to cap, so a short log costs little */
            size_t want = r->alloc ? 2 * r->alloc : 1024;
            if (want > r->cap)
                want = r->cap;
            uint64_t *p = realloc(r->off, want * sizeof *p);
            if (!p) {
                r->oom = 1;
                return 1;
            }
            r->off = p;
            r->alloc = want;
        }
        r->off[r->n++] = offset;
        return 0;
    }
    r->off[r->head] = offset;
    r->head = (r->head + 1) % r->cap;
    return 0;
}

static uint64_t ring_oldest(const ring_t *r)
{
    return r->n < r->cap ? r->off[0] : r->off[r->head];
}

/* pass 2: decode the window into the dataset */
typedef struct fill {
    recd_dataset_t *ds;
    const recd_bundle_t *b;
    uint64_t end;
    uint64_t unknown_items, undecodable, n;
    recd_err_t *err;
} fill_t;

static int fill_cb(void *ctx, uint64_t offset, const void *payload, uint32_t len)
{
    fill_t *f = ctx;
    if (offset >= f->end)
        return 1; /* appended after pass 1: the next cycle's */
    if ((f->n & 1023) == 0 && atomic_load(&T.stop))
        return RECD_EAGAIN;
    f->n++;
    recd_evrec_t ev;
    json_t *hold = NULL;
    if (recd_evrec_decode(payload, len, &ev, &hold, NULL) != 0) {
        f->undecodable++;
        json_decref(hold);
        return 0;
    }
    int64_t item = recd_bundle_item_index(f->b, ev.item_id, ev.item_len);
    double v = ev.type == RECD_EV_RATING || ev.type == RECD_EV_WATCH ? ev.value : 0.0;
    int rc = 0;
    if (item < 0) {
        f->unknown_items++;
    } else if (!isfinite((float)v)) {
        f->undecodable++;
    } else {
        int64_t u = recd_dataset_user_row(f->ds, ev.user_id);
        if (u < 0) {
            const char *cells[1] = {ev.user_id};
            u = recd_dataset_add_user(f->ds, cells, f->err);
        }
        rc = u < 0 ? (int)u
                   : recd_dataset_add_event(f->ds, (uint32_t)u, (uint32_t)item, ev.ts,
                                            (recd_ev_type_t)ev.type, (float)v, NULL, f->err);
    }
    json_decref(hold);
    return rc;
}

/* Count the records from T.count_from on (the new events since the last
 * cycle; incremental). */
typedef struct counter {
    uint64_t n, end;
} counter_t;

static int count_cb(void *ctx, uint64_t offset, const void *payload, uint32_t len)
{
    (void)payload;
    counter_t *c = ctx;
    c->n++;
    c->end = offset + RECD_EVLOG_HEADER + len;
    return atomic_load(&T.stop) ? 1 : 0;
}

static int count_new_events(const char *events_dir, recd_err_t *err)
{
    counter_t c = {0, T.count_from};
    int rc = recd_evlog_iterate(events_dir, T.count_from, 0, 1, count_cb, &c, NULL, err);
    if (rc < 0)
        return rc;
    T.new_events += c.n;
    T.count_from = c.end;
    return 0;
}

/* ---- the memory estimate ----------------------------------------------------------------- */

/* Bytes a cycle needs at its peak, roughly: every parameter of the three
 * models with its gradient, two optimiser moments and a best-epoch copy
 * (5 floats per weight: the bundle's tensor bytes x 5), the candidate
 * bundle loaded for evaluation (about the live one's size), and per event
 * the dataset row, the split, the ranker examples (up to 5 per event
 * without impressions) and their hashed slots. */
static double estimate_mb(const recd_bundle_t *b, uint64_t events)
{
    double tensors = 0;
    for (size_t i = 0; i < b->ntensors; i++)
        tensors += (double)b->tensors[i].count * sizeof(float);
    size_t nslots = b->nfeatures + 8;
    double per_event = 64 + 32 + 5 * (32 + 12.0 * (double)nslots);
    double bytes = 5 * tensors + (double)b->bytes + (double)b->n_items * 256 +
                   (double)events * per_event + 8.0 * (double)events;
    return bytes / (1024.0 * 1024.0);
}

/* ---- one cycle ------------------------------------------------------------------------------- */

static void last_reset(last_t *l)
{
    json_decref(l->live_metrics);
    json_decref(l->cand_metrics);
    memset(l, 0, sizeof *l);
}

static void decide(last_t *l, const char *decision, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void decide(last_t *l, const char *decision, const char *fmt, ...)
{
    snprintf(l->decision, sizeof l->decision, "%s", decision);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->reason, sizeof l->reason, fmt, ap);
    va_end(ap);
}

static int has_holdout_impressions(const recd_dataset_t *ds, int64_t cut)
{
    for (size_t i = ds->nevents; i-- > 0 && ds->events[i].ts >= cut;)
        if (ds->events[i].type == RECD_EV_IMPRESSION)
            return 1;
    return 0;
}

/* Run one cycle; fills *l. Returns 0 when it reached a decision
 * (published, rejected, skipped), else the error (decision failed, or
 * RECD_EAGAIN when stopped: decision "abandoned"). */
static int cycle(const char *events_dir, const char *models_dir, const cfg_t *c, int announce,
                 last_t *l, recd_err_t *err)
{
    double t0 = mono_s();
    l->started_at = recd_time_wall();
    snprintf(l->metric, sizeof l->metric, "-");
    l->live = l->candidate = NAN;
    int rc = 0, from_registry = 0;
    recd_bundle_t *live = NULL, *cand = NULL;
    recd_dataset_t *ds = NULL;
    ring_t ring = {0};
    tf_split_t sp = {0};
    tf_rex_t *ex = NULL;
    size_t nex = 0;
    recd_fit_result_t fr = {0};
    char staging[4096], staged[4200], final[4200], model_dir[4096];
    snprintf(model_dir, sizeof model_dir, "%s/%s", models_dir, c->model);
    snprintf(staging, sizeof staging, "%s/%s", model_dir, STAGING);
    int made_staging = 0;

    set_state("reading");
    if (!(live = live_bundle(models_dir, c->model, &from_registry, err))) {
        rc = err->code ? err->code : RECD_ENOENT;
        decide(l, "failed", "%s", err->msg);
        goto out;
    }
    l->live_version = live->version;

    /* pass 1: where the newest max_events records start */
    if (c->max_events > T.window_max)
        T.window_start = 0; /* a larger window than last time reaches further back */
    ring.cap = (size_t)c->max_events;
    rc = recd_evlog_iterate(events_dir, T.window_start, 0, 1, ring_cb, &ring, NULL, err);
    if (rc == 0 && ring.oom)
        rc = recd_err_set(err, RECD_ENOMEM, "out of memory (log window)");
    if (rc == 0 && atomic_load(&T.stop))
        rc = recd_err_set(err, RECD_EAGAIN, "stopped");
    if (rc < 0 && rc != RECD_EAGAIN) {
        decide(l, "failed", "reading the event log %s: %s", events_dir, err->msg);
        goto out;
    }
    if (rc != 0)
        goto out;
    /* the events seen so far are this cycle's: count anew after them */
    T.new_events = 0;
    if (ring.end > T.count_from)
        T.count_from = ring.end;
    if (ring.n == 0) {
        decide(l, "skipped", "the event log %s holds no events", events_dir);
        goto out;
    }
    l->log_records = ring.n;
    l->memory_estimate_mb = estimate_mb(live, ring.n);
    if (l->memory_estimate_mb > (double)c->max_memory_mb) {
        decide(l, "skipped",
               "estimated memory %.0f MiB is above trainer.max_memory_mb %lld (%llu events, a "
               "model of %.0f MiB): lower trainer.max_events or raise the limit",
               l->memory_estimate_mb, (long long)c->max_memory_mb, (unsigned long long)ring.n,
               (double)live->bytes / 1048576.0);
        goto out;
    }

    /* pass 2: the window into a dataset on the live bundle's items */
    uint64_t from = ring_oldest(&ring);
    if ((rc = recd_trainer_base_dataset(live, &ds, err)) != 0 ||
        (rc = recd_dataset_reserve_events(ds, ring.n, err)) != 0) {
        decide(l, "failed", "%s", err->msg);
        goto out;
    }
    fill_t f = {ds, live, ring.end, 0, 0, 0, err};
    rc = recd_evlog_iterate(events_dir, from, 0, 1, fill_cb, &f, NULL, err);
    if (rc == 1)
        rc = 0; /* stopped at pass 1's end */
    if (rc == 0 && atomic_load(&T.stop))
        rc = RECD_EAGAIN;
    if (rc == RECD_EAGAIN)
        goto out;
    if (rc == 0)
        rc = recd_dataset_sort_events(ds, err);
    if (rc != 0) {
        decide(l, "failed", "reading the event log %s: %s", events_dir, err->msg);
        goto out;
    }
    T.window_start = from;
    T.window_max = c->max_events;
    size_t ratings = 0;
    for (size_t i = 0; i < ds->nevents; i++)
        ratings += ds->events[i].type == RECD_EV_RATING;
    ds->implicit = !(ds->nevents && ratings == ds->nevents);
    l->events = ds->nevents;
    l->unknown_items = f.unknown_items;
    l->undecodable = f.undecodable;
    l->users = ds->users.nrows;
    l->items = ds->items.nrows;
    l->read_ms = (mono_s() - t0) * 1e3;
    if (ds->nevents < 10) {
        decide(l, "skipped",
               "%zu usable events in the window (%llu on items the live version does not "
               "have, %llu undecodable)",
               ds->nevents, (unsigned long long)f.unknown_items, (unsigned long long)f.undecodable);
        goto out;
    }

    /* training */
    set_state("training");
    double t1 = mono_s();
    int64_t version = highest_version(models_dir, c->model);
    if (version < live->version)
        version = live->version;
    version++;
    if (recd_remove_tree(staging) != 0 || mkdir(staging, 0755) != 0) {
        rc = recd_err_set(err, RECD_EIO, "%s: cannot create the staging directory: %s", staging,
                          strerror(errno));
        decide(l, "failed", "%s", err->msg);
        goto out;
    }
    made_staging = 1;
    const char *corrupt = getenv("RECD_TRAINER_TEST_CORRUPT");
    recd_fit_opts_t fo;
    recd_fit_defaults(&fo);
    fo.dataset = ds;
    fo.data_dir = events_dir;
    fo.models_dir = staging;
    fo.name = c->model;
    fo.version = version;
    fo.holdout = 2;
    fo.time_frac = (double)c->holdout_pct / 100.0;
    fo.seed = (uint64_t)version;
    fo.warm_bundle = live;
    fo.cand_epochs = fo.rank_epochs = fo.content_epochs = (int)c->epochs;
    /* at least about 64 steps per epoch: a small window with the default
     * batches would hardly move the weights */
    size_t per = ds->nevents / 64;
    fo.cand_batch = per < 32 ? 32 : per > fo.cand_batch ? fo.cand_batch : per;
    fo.rank_batch = per < 32 ? 32 : per > fo.rank_batch ? fo.rank_batch : per;
    fo.cancel = cancelled;
    fo.test_corrupt_labels = !corrupt                          ? 0
                             : strcmp(corrupt, "shuffle") == 0 ? 1
                             : strcmp(corrupt, "invert") == 0  ? 2
                                                               : 0;
    rc = recd_train_fit(&fo, &fr, err);
    l->train_ms = (mono_s() - t1) * 1e3;
    if (rc == RECD_EAGAIN && atomic_load(&T.stop))
        goto out;
    if (rc != 0) {
        decide(l, "failed", "training: %s", err->msg);
        goto out;
    }
    l->cand_examples = fr.cand_examples;
    l->rank_examples = fr.rank_examples;
    l->cand_examples_per_s = fr.cand_examples_per_s;
    l->rank_examples_per_s = fr.rank_examples_per_s;
    l->warm_offered = fr.warm_offered;
    l->warm_copied = fr.warm_copied;
    if (atomic_load(&T.stop)) {
        rc = RECD_EAGAIN;
        goto out;
    }

    /* evaluation: both through the serving code on the same split */
    set_state("evaluating");
    double t2 = mono_s();
    snprintf(staged, sizeof staged, "%s/%s/%lld", staging, c->model, (long long)version);
    recd_model_opts_t mo = {.ann_factory = "", .use_index_file = 1, .attach = recd_rank_attach};
    if (!(cand = recd_bundle_load(staged, &mo, err))) {
        rc = err->code ? err->code : RECD_ERR;
        decide(l, "failed", "the new version does not load: %s", err->msg);
        goto out;
    }
    tf_split_opts_t so = {2, 0, fo.time_frac, fo.seed};
    const json_t *man = live->manifest;
    const char *out_kind =
        json_string_value(json_object_get(json_object_get(man, "ranker"), "output"));
    int ww = out_kind && strcmp(out_kind, "exp") == 0;
    size_t max_len = (size_t)json_integer_value(
        json_object_get(json_object_get(json_object_get(man, "candidate"), "history"), "max_len"));
    if (max_len == 0)
        max_len = 50;
    tf_metrics_t ml, mc;
    if ((rc = tf_split_build(&sp, ds, &so, err)) != 0 ||
        (rc = tf_rex_build(ds, ww, 4, fo.seed, &ex, &nex, err)) != 0 ||
        (rc = tf_eval_bundle(live, ds, &sp, ex, nex, max_len, &ml, err)) != 0 ||
        (rc = tf_eval_bundle(cand, ds, &sp, ex, nex, max_len, &mc, err)) != 0) {
        decide(l, "failed", "evaluation: %s", err->msg);
        goto out;
    }
    l->live_metrics = tf_metrics_json(&ml);
    l->cand_metrics = tf_metrics_json(&mc);
    l->eval_ms = (mono_s() - t2) * 1e3;
    if (isfinite(ml.auc) && isfinite(mc.auc) && has_holdout_impressions(ds, sp.time_cut)) {
        snprintf(l->metric, sizeof l->metric, "auc");
        l->live = ml.auc;
        l->candidate = mc.auc;
    } else if (isfinite(ml.hr10) && isfinite(mc.hr10)) {
        snprintf(l->metric, sizeof l->metric, "hr@10");
        l->live = ml.hr10;
        l->candidate = mc.hr10;
    } else {
        decide(l, "rejected",
               "nothing to compare on: the holdout (newest %lld%% of %zu events) has neither "
               "impressions with outcomes nor users with earlier interactions",
               (long long)c->holdout_pct, ds->nevents);
        goto out;
    }
    double tol = (double)c->tolerance_bp / 10000.0;
    if (!(l->candidate >= l->live - tol)) {
        decide(l, "rejected",
               "%s %.4f of the new model is below the live version %lld's %.4f by more than "
               "the tolerance %.4f%s",
               l->metric, l->candidate, (long long)live->version, l->live, tol,
               fo.test_corrupt_labels ? " (trained on corrupted labels: test hook)" : "");
        goto out;
    }
    if (atomic_load(&T.stop)) {
        rc = RECD_EAGAIN;
        goto out;
    }

    /* publishing: one rename */
    set_state("publishing");
    double t3 = mono_s();
    recd_bundle_unref(cand);
    cand = NULL;
    snprintf(final, sizeof final, "%s/%lld", model_dir, (long long)version);
    if (renameat2(AT_FDCWD, staged, AT_FDCWD, final, RENAME_NOREPLACE) != 0) {
        int e = errno;
        rc = recd_err_set(
            err, e == EEXIST || e == ENOTEMPTY ? RECD_EINVAL : RECD_EIO, "publish %s: %s", final,
            e == EEXIST || e == ENOTEMPTY ? "that version appeared meanwhile" : strerror(e));
        decide(l, "failed", "%s", err->msg);
        goto out;
    }
    if (recd_fsync_dir(model_dir) != 0)
        recd_log_warn("trainer: fsync %s: %s", model_dir, strerror(errno));
    l->version = version;
    l->publish_ms = (mono_s() - t3) * 1e3;
    decide(l, "published", "%s %.4f >= live version %lld's %.4f - tolerance %.4f", l->metric,
           l->candidate, (long long)live->version, l->live, tol);
    if (announce)
        recd_lc_rescan(c->model, NULL, NULL);
out:
    if (rc == RECD_EAGAIN && atomic_load(&T.stop))
        decide(l, "abandoned", "the trainer was stopped during the cycle");
    if (cand)
        recd_bundle_unref(cand);
    live_release(live, from_registry);
    recd_dataset_free(ds);
    free(ring.off);
    tf_split_free(&sp);
    free(ex);
    json_decref(fr.metrics);
    if (made_staging && recd_remove_tree(staging) != 0)
        recd_log_warn("trainer: cannot remove %s: %s", staging, strerror(errno));
    l->duration_ms = (mono_s() - t0) * 1e3;
    return rc;
}

/* A cycle with its status bookkeeping and log line. */
static int run_cycle(const cfg_t *c, int announce, recd_err_t *err)
{
    last_t l;
    memset(&l, 0, sizeof l);
    T.last_cycle_mono = mono_s();
    int rc = cycle(T.events_dir, T.models_dir, c, announce, &l, err);
    if (!l.decision[0])
        decide(&l, "failed", "%s", err && err->msg[0] ? err->msg : "unknown error");
    if (strcmp(l.decision, "published") == 0)
        recd_log_info("trainer: published %s/%lld (%s %.4f vs live %lld %.4f; %llu events, %zu + "
                      "%zu examples, %.1f s)",
                      c->model, (long long)l.version, l.metric, l.candidate,
                      (long long)l.live_version, l.live, (unsigned long long)l.events,
                      l.cand_examples, l.rank_examples, l.duration_ms / 1e3);
    else
        recd_log_info("trainer: cycle %s: %s (%.1f s)", l.decision, l.reason, l.duration_ms / 1e3);
    pthread_mutex_lock(&T.mu);
    T.cycles++;
    last_reset(&T.last);
    T.last = l;
    T.has_last = 1;
    T.state = "idle";
    pthread_mutex_unlock(&T.mu);
    return rc;
}

/* ---- the thread --------------------------------------------------------------------------------
 */

static void *trainer_main(void *arg)
{
    (void)arg;
    cfg_t c;
    read_cfg(T.model, &c);
    /* low priority: nice applies to this thread alone (Linux: per task) */
    pid_t tid = (pid_t)syscall(SYS_gettid);
    errno = 0;
    if (setpriority(PRIO_PROCESS, (id_t)tid, (int)c.nice) != 0)
        recd_log_warn("trainer: setpriority(%lld): %s", (long long)c.nice, strerror(errno));
    errno = 0;
    int pr = getpriority(PRIO_PROCESS, (id_t)tid);
    pthread_mutex_lock(&T.mu);
    T.nice_applied = errno ? 0 : pr;
    pthread_mutex_unlock(&T.mu);
    /* one thread for FAISS's OpenMP (index builds), like the workers */
    recd_faissx_omp_single_thread();
    pthread_mutex_lock(&T.mu);
    T.blas_threads = openblas_get_num_threads();
    T.omp_threads = omp_get_max_threads();
    pthread_mutex_unlock(&T.mu);
    double next = mono_s() + (double)c.interval_s;
    for (;;) {
        pthread_mutex_lock(&T.mu);
        T.next_check_wall = recd_time_wall() + (next - mono_s());
        while (!atomic_load(&T.stop) && !T.trigger && mono_s() < next) {
            double at = next;
            struct timespec ts;
            ts.tv_sec = (time_t)at;
            ts.tv_nsec = (long)((at - (double)ts.tv_sec) * 1e9);
            pthread_cond_timedwait(&T.cv, &T.mu, &ts);
        }
        if (atomic_load(&T.stop)) {
            pthread_mutex_unlock(&T.mu);
            break;
        }
        int forced = T.trigger;
        T.trigger = 0;
        T.busy = 1;
        pthread_mutex_unlock(&T.mu);
        read_cfg(T.model, &c);
        recd_err_t err = {0};
        int run = forced;
        if (!run) {
            /* the interval has passed: enough new events? */
            if (count_new_events(T.events_dir, &err) != 0)
                recd_log_warn("trainer: counting new events: %s", err.msg);
            run = T.new_events >= (uint64_t)c.min_new_events;
        }
        if (run) {
            run_cycle(&c, 1, &err);
            next = T.last_cycle_mono + (double)c.interval_s;
            if (next < mono_s())
                next = mono_s() + (double)c.interval_s;
        } else {
            double wait =
                (double)c.interval_s < RECHECK_MAX_S ? (double)c.interval_s : RECHECK_MAX_S;
            next = mono_s() + wait;
        }
        pthread_mutex_lock(&T.mu);
        T.busy = 0;
        pthread_mutex_unlock(&T.mu);
    }
    return NULL;
}

/* Replace the paths (under the mutex: the status reads T.model), freeing
 * the old ones. */
static void swap_opts(char *events_dir, char *models_dir, char *model)
{
    pthread_mutex_lock(&T.mu);
    char *a = T.events_dir, *b = T.models_dir, *c = T.model;
    T.events_dir = events_dir;
    T.models_dir = models_dir;
    T.model = model;
    pthread_mutex_unlock(&T.mu);
    free(a);
    free(b);
    free(c);
}

static void free_opts(void)
{
    swap_opts(NULL, NULL, NULL);
}

static int set_opts(const recd_trainer_opts_t *o, recd_err_t *err)
{
    if (!o || !o->events_dir || !*o->events_dir || !o->models_dir || !*o->models_dir)
        return recd_err_set(err, RECD_EINVAL, "trainer: events_dir and models_dir are required");
    char *a = strdup(o->events_dir), *b = strdup(o->models_dir);
    char *c = strdup(o->model ? o->model : "");
    if (!a || !b || !c) {
        free(a);
        free(b);
        free(c);
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    }
    swap_opts(a, b, c);
    return 0;
}

static void init_cv(void)
{
    if (T.cv_ready)
        return;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&T.cv, &ca);
    pthread_condattr_destroy(&ca);
    T.cv_ready = 1;
}

/* Remove a staging directory left by a crash. */
static void clean_staging(const cfg_t *c)
{
    char staging[4096];
    snprintf(staging, sizeof staging, "%s/%s/%s", T.models_dir, c->model, STAGING);
    if (recd_remove_tree(staging) != 0)
        recd_log_warn("trainer: cannot remove %s: %s", staging, strerror(errno));
}

int recd_trainer_start(const recd_trainer_opts_t *o, recd_err_t *err)
{
    pthread_mutex_lock(&T.mu);
    int started = T.started || T.busy;
    pthread_mutex_unlock(&T.mu);
    if (started)
        return recd_err_set(err, RECD_EINVAL, "trainer: already started");
    int rc = set_opts(o, err);
    if (rc != 0)
        return rc;
    recd_nn_init(); /* one OpenBLAS thread (process-wide; serving sets the same) */
    init_cv();
    cfg_t c;
    read_cfg(T.model, &c);
    clean_staging(&c);
    atomic_store(&T.stop, 0);
    T.trigger = 0;
    T.count_from = T.window_start = 0;
    T.new_events = 0;
    T.window_max = 0;
    T.last_cycle_mono = mono_s();
    pthread_mutex_lock(&T.mu);
    T.next_check_wall = recd_time_wall() + (double)c.interval_s;
    T.started = 1;
    T.state = "idle";
    pthread_mutex_unlock(&T.mu);
    int e = pthread_create(&T.th, NULL, trainer_main, NULL);
    if (e != 0) {
        pthread_mutex_lock(&T.mu);
        T.started = 0;
        pthread_mutex_unlock(&T.mu);
        free_opts();
        return recd_err_set(err, RECD_ERR, "trainer: cannot start its thread: %s", strerror(e));
    }
    recd_log_info("trainer: started for model %s (every %lld s with %lld new events, %lld "
                  "epochs, holdout %lld%%, tolerance %lld bp, nice %lld)",
                  c.model, (long long)c.interval_s, (long long)c.min_new_events,
                  (long long)c.epochs, (long long)c.holdout_pct, (long long)c.tolerance_bp,
                  (long long)c.nice);
    return 0;
}

void recd_trainer_stop(void)
{
    pthread_mutex_lock(&T.mu);
    int started = T.started;
    if (started) {
        atomic_store(&T.stop, 1);
        pthread_cond_broadcast(&T.cv);
    }
    pthread_mutex_unlock(&T.mu);
    if (!started)
        return;
    pthread_join(T.th, NULL);
    pthread_mutex_lock(&T.mu);
    T.started = 0;
    T.state = "idle";
    pthread_mutex_unlock(&T.mu);
}

int recd_trainer_trigger(recd_err_t *err)
{
    pthread_mutex_lock(&T.mu);
    int rc = 0;
    if (!T.started)
        rc = recd_err_set(err, RECD_EINVAL, "the trainer is not running (trainer.enabled)");
    else if (T.busy || T.trigger)
        rc = recd_err_set(err, RECD_EAGAIN, "a training cycle is already %s",
                          T.busy ? "running" : "queued");
    else {
        T.trigger = 1;
        pthread_cond_broadcast(&T.cv);
    }
    pthread_mutex_unlock(&T.mu);
    return rc;
}

int recd_trainer_run_once(const recd_trainer_opts_t *o, recd_err_t *err)
{
    pthread_mutex_lock(&T.mu);
    int busy = T.started || T.busy;
    if (!busy)
        T.busy = 1;
    pthread_mutex_unlock(&T.mu);
    if (busy)
        return recd_err_set(err, RECD_EAGAIN, "the trainer thread is running");
    int rc = set_opts(o, err);
    if (rc == 0) {
        cfg_t c;
        read_cfg(T.model, &c);
        atomic_store(&T.stop, 0);
        recd_nn_init();
        rc = run_cycle(&c, 0, err);
    }
    pthread_mutex_lock(&T.mu);
    T.busy = 0;
    pthread_mutex_unlock(&T.mu);
    return rc;
}

void recd_trainer_reset(void)
{
    pthread_mutex_lock(&T.mu);
    int idle = !T.started && !T.busy;
    if (idle) {
        last_reset(&T.last);
        T.has_last = 0;
        T.cycles = 0;
        T.count_from = T.window_start = 0;
        T.new_events = 0;
        T.window_max = 0;
    }
    pthread_mutex_unlock(&T.mu);
    if (idle)
        free_opts();
}

static json_t *num_or_null(double v)
{
    return isfinite(v) ? json_real(round(v * 1e6) / 1e6) : json_null();
}

json_t *recd_trainer_status_json(void)
{
    cfg_t c;
    pthread_mutex_lock(&T.mu);
    read_cfg(T.model, &c);
    json_t *o = json_object();
    json_object_set_new(o, "enabled", json_boolean(T.started));
    json_object_set_new(o, "model", json_string(c.model));
    json_object_set_new(o, "state", json_string(T.state));
    json_object_set_new(o, "cycles", json_integer((json_int_t)T.cycles));
    json_object_set_new(o, "nice", json_integer(T.nice_applied));
    json_object_set_new(o, "threads",
                        json_pack("{s:i, s:i}", "blas", T.blas_threads, "openmp", T.omp_threads));
    json_object_set_new(o, "new_events", json_integer((json_int_t)T.new_events));
    json_object_set_new(o, "next_check_at",
                        T.started && !T.busy ? num_or_null(T.next_check_wall) : json_null());
    if (!T.has_last) {
        json_object_set_new(o, "last", json_null());
    } else {
        const last_t *l = &T.last;
        json_t *j = json_object();
        json_object_set_new(j, "started_at", num_or_null(l->started_at));
        json_object_set_new(j, "duration_ms", num_or_null(l->duration_ms));
        json_object_set_new(j, "events", json_integer((json_int_t)l->events));
        json_object_set_new(j, "examples",
                            json_integer((json_int_t)(l->cand_examples + l->rank_examples)));
        json_object_set_new(j, "metric", json_string(l->metric));
        json_object_set_new(j, "live", num_or_null(l->live));
        json_object_set_new(j, "candidate", num_or_null(l->candidate));
        json_object_set_new(j, "decision", json_string(l->decision));
        json_object_set_new(j, "reason", json_string(l->reason));
        json_object_set_new(j, "version",
                            l->version ? json_integer((json_int_t)l->version) : json_null());
        json_object_set_new(j, "live_version",
                            l->live_version ? json_integer((json_int_t)l->live_version)
                                            : json_null());
        json_object_set_new(
            j, "detail",
            json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:{s:I, s:I}, s:o, "
                      "s:{s:o, s:o, s:o, s:o}}",
                      "log_records", (json_int_t)l->log_records, "unknown_items",
                      (json_int_t)l->unknown_items, "undecodable", (json_int_t)l->undecodable,
                      "users", (json_int_t)l->users, "items", (json_int_t)l->items,
                      "candidate_examples", (json_int_t)l->cand_examples, "ranker_examples",
                      (json_int_t)l->rank_examples, "candidate_examples_per_s",
                      num_or_null(l->cand_examples_per_s), "ranker_examples_per_s",
                      num_or_null(l->rank_examples_per_s), "warm_start", "parameters",
                      (json_int_t)l->warm_offered, "copied", (json_int_t)l->warm_copied,
                      "memory_estimate_mb", num_or_null(l->memory_estimate_mb), "timing_ms", "read",
                      num_or_null(l->read_ms), "train", num_or_null(l->train_ms), "eval",
                      num_or_null(l->eval_ms), "publish", num_or_null(l->publish_ms)));
        json_object_set_new(
            j, "metrics",
            json_pack("{s:O?, s:O?}", "live", l->live_metrics, "candidate", l->cand_metrics));
        json_object_set_new(o, "last", j);
    }
    pthread_mutex_unlock(&T.mu);
    return o;
}
