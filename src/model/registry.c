/* The registry of named models: the current bundle per name, refcounted,
 * and a background thread that frees released bundles off the event loops
 * (the Redis lazyfree idea). */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "recd/model.h"
#include "recd/stats.h"

#define MAX_MODELS 64

typedef struct entry {
    pthread_mutex_t lock;   /* protects `current` (pointer swap + incref only) */
    recd_bundle_t *current; /* NULL until a version loads */
    recd_model_status_t st; /* protected by status_lock */
} entry_t;

static entry_t entries[MAX_MODELS];
static _Atomic size_t nentries;
static pthread_mutex_t status_lock = PTHREAD_MUTEX_INITIALIZER; /* every entry's st */

/* free queue */
static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER; /* q_items, q_n, q_stop */
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER;
static recd_bundle_t **q_items;
static size_t q_n, q_cap;
static int q_stop;
static pthread_t q_thread;
static int q_started;

/* Retired versions (replaced by a publish) not yet freed; protected by
 * q_lock. A bundle leaves the set just before it is freed. */
static recd_bundle_t **r_items;
static size_t r_n, r_cap;

/* Replaceable source of the "models" stats section. */
typedef json_t *(*stats_json_fn)(void);
typedef void (*stats_prom_fn)(char **buf, size_t *len, size_t *cap);
static _Atomic(stats_json_fn) stats_json_hook;
static _Atomic(stats_prom_fn) stats_prom_hook;

/* Drop b from the retired set (q_lock held). */
static void forget_retired(recd_bundle_t *b)
{
    for (size_t i = 0; i < r_n; i++)
        if (r_items[i] == b) {
            r_items[i] = r_items[--r_n];
            return;
        }
}

static void *reaper_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&q_lock);
    for (;;) {
        while (q_n == 0 && !q_stop)
            pthread_cond_wait(&q_cond, &q_lock);
        if (q_n == 0 && q_stop)
            break;
        recd_bundle_t *b = q_items[--q_n];
        forget_retired(b);
        pthread_mutex_unlock(&q_lock);
        recd_log_info("model %s version %lld freed", b->name, (long long)b->version);
        recd_bundle_unref(b);
        pthread_mutex_lock(&q_lock);
    }
    pthread_mutex_unlock(&q_lock);
    return NULL;
}

static json_t *models_json(void *arg);
static void models_prom(void *arg, char **buf, size_t *len, size_t *cap);

int recd_model_registry_init(recd_err_t *err)
{
    if (q_started)
        return 0;
    if (pthread_create(&q_thread, NULL, reaper_main, NULL) != 0)
        return recd_err_set(err, RECD_ERR, "cannot start the model reaper thread");
    pthread_setname_np(q_thread, "recd-reaper");
    q_started = 1;
    recd_stats_section_t sec = {"models", models_json, models_prom, NULL};
    recd_stats_add_section(&sec);
    return 0;
}

void recd_model_release(recd_bundle_t *b)
{
    if (!b)
        return;
    long prev = atomic_fetch_sub(&b->refs, 1);
    if (prev != 1)
        return;
    /* last reference: hand over to the reaper (refs back to 1 for it) */
    atomic_store(&b->refs, 1);
    pthread_mutex_lock(&q_lock);
    if (q_started && !q_stop) {
        if (q_n == q_cap) {
            size_t cap = q_cap ? q_cap * 2 : 8;
            recd_bundle_t **n = realloc(q_items, cap * sizeof *n);
            if (n) {
                q_items = n;
                q_cap = cap;
            }
        }
        if (q_n < q_cap) {
            q_items[q_n++] = b;
            pthread_cond_signal(&q_cond);
            pthread_mutex_unlock(&q_lock);
            return;
        }
    }
    forget_retired(b);
    pthread_mutex_unlock(&q_lock);
    recd_bundle_unref(b); /* no reaper: free here */
}

static entry_t *find_entry(const char *name)
{
    size_t n = atomic_load(&nentries);
    for (size_t i = 0; i < n; i++)
        if (strcmp(entries[i].st.name, name) == 0)
            return &entries[i];
    return NULL;
}

static entry_t *get_entry(const char *name)
{
    entry_t *e = find_entry(name);
    if (e)
        return e;
    size_t n = atomic_load(&nentries);
    if (n >= MAX_MODELS)
        return NULL;
    e = &entries[n];
    memset(e, 0, sizeof *e);
    pthread_mutex_init(&e->lock, NULL);
    snprintf(e->st.name, sizeof e->st.name, "%s", name);
    atomic_store(&nentries, n + 1); /* publish after initialisation */
    return e;
}

recd_bundle_t *recd_model_acquire(const char *name)
{
    entry_t *e = find_entry(name);
    if (!e)
        return NULL;
    pthread_mutex_lock(&e->lock);
    recd_bundle_t *b = e->current;
    if (b)
        atomic_fetch_add(&b->refs, 1);
    pthread_mutex_unlock(&e->lock);
    return b;
}

void recd_model_publish(recd_bundle_t *b)
{
    pthread_mutex_lock(&status_lock);
    entry_t *e = get_entry(b->name);
    pthread_mutex_unlock(&status_lock);
    if (!e) {
        recd_log_error("model registry full; cannot publish %s", b->name);
        recd_model_release(b);
        return;
    }
    /* room to count the version being replaced as waiting until it is freed */
    pthread_mutex_lock(&q_lock);
    if (r_n == r_cap) {
        size_t cap = r_cap ? r_cap * 2 : 8;
        recd_bundle_t **n = realloc(r_items, cap * sizeof *n);
        if (n) {
            r_items = n;
            r_cap = cap;
        }
    }
    pthread_mutex_unlock(&q_lock);
    uint64_t t0 = recd_time_mono_ns();
    pthread_mutex_lock(&e->lock);
    recd_bundle_t *old = e->current;
    e->current = b;
    pthread_mutex_unlock(&e->lock);
    double swap_us = (double)(recd_time_mono_ns() - t0) / 1000.0;
    if (old) {
        pthread_mutex_lock(&q_lock);
        if (r_n < r_cap) /* else (no memory) it is simply not counted */
            r_items[r_n++] = old;
        pthread_mutex_unlock(&q_lock);
    }
    pthread_mutex_lock(&status_lock);
    recd_model_status_t *s = &e->st;
    s->published++;
    s->loaded_at = recd_time_wall();
    s->last_from = old ? old->version : 0;
    s->last_swap_us = swap_us;
    s->version = b->version;
    s->n_items = b->n_items;
    s->dim = b->dim;
    char idx[64];
    snprintf(s->index, sizeof s->index, "%s", recd_ann_spec_factory(&b->ann_spec, idx, sizeof idx));
    s->ann_from_file = b->ann_from_file;
    s->load_ms = (double)b->load_us / 1000.0;
    s->ann_build_ms = (double)b->ann_build_us / 1000.0;
    s->bytes = b->bytes;
    pthread_mutex_unlock(&status_lock);
    if (old)
        recd_model_release(old);
}

void recd_model_set_error(const char *name, int64_t version, const char *msg)
{
    pthread_mutex_lock(&status_lock);
    entry_t *e = get_entry(name);
    if (e) {
        snprintf(e->st.last_error, sizeof e->st.last_error, "%s", msg);
        e->st.failed_version = version;
    }
    pthread_mutex_unlock(&status_lock);
}

int recd_model_version_name(const char *s, int64_t *version)
{
    if (!*s || *s == '0')
        return 0;
    int64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || v > (INT64_MAX - 9) / 10)
            return 0;
        v = v * 10 + (*p - '0');
    }
    *version = v;
    return 1;
}

size_t recd_model_list_versions(const char *model_dir, int64_t *out, size_t cap, int dirs_only)
{
    if (cap == 0)
        return 0;
    DIR *d = opendir(model_dir);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        int64_t v;
        if (!recd_model_version_name(de->d_name, &v))
            continue;
        if (n == cap && v <= out[cap - 1])
            continue; /* not among the cap highest */
        if (dirs_only && de->d_type != DT_DIR) {
            struct stat st;
            if (de->d_type != DT_UNKNOWN && de->d_type != DT_LNK)
                continue;
            if (fstatat(dirfd(d), de->d_name, &st, 0) != 0 || !S_ISDIR(st.st_mode))
                continue;
        }
        /* insert v into the descending out[0..n), dropping the lowest when full */
        size_t i = n < cap ? n++ : cap - 1;
        for (; i > 0 && out[i - 1] < v; i--)
            out[i] = out[i - 1];
        out[i] = v;
    }
    closedir(d);
    return n;
}

static int load_one(const char *models_dir, const char *name, const recd_model_opts_t *opts)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", models_dir, name);
    int64_t versions[256];
    size_t nv = recd_model_list_versions(dir, versions, 256, 0);
    if (nv == 0) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s: no version directories", dir);
        recd_log_error("model %s: %s", name, msg);
        recd_model_set_error(name, 0, msg);
        return -1;
    }
    int first_failure = 1;
    for (size_t i = 0; i < nv; i++) {
        char vdir[4200];
        snprintf(vdir, sizeof vdir, "%s/%lld", dir, (long long)versions[i]);
        recd_err_t err;
        recd_bundle_t *b = recd_bundle_load(vdir, opts, &err);
        if (!b) {
            recd_log_error("model %s version %lld rejected: %s", name, (long long)versions[i],
                           err.msg);
            if (first_failure)
                recd_model_set_error(name, versions[i], err.msg);
            first_failure = 0;
            continue;
        }
        if (strcmp(b->name, name) != 0) {
            recd_log_error("model %s version %lld rejected: manifest name is \"%s\"", name,
                           (long long)versions[i], b->name);
            if (first_failure) {
                char msg[512];
                snprintf(msg, sizeof msg, "%s: manifest.json: name \"%s\" does not match directory",
                         vdir, b->name);
                recd_model_set_error(name, versions[i], msg);
            }
            first_failure = 0;
            recd_bundle_unref(b);
            continue;
        }
        char idx[64];
        recd_log_info("model %s version %lld loaded: %zu items, dim %zu, index %s (%s, %.1f ms), "
                      "load %.1f ms",
                      name, (long long)b->version, b->n_items, b->dim,
                      recd_ann_spec_factory(&b->ann_spec, idx, sizeof idx),
                      b->ann_from_file ? "read from index.faiss" : "built at load",
                      (double)b->ann_build_us / 1000.0, (double)b->load_us / 1000.0);
        if (first_failure)
            recd_model_set_error(name, 0, "");
        recd_model_publish(b);
        return 0;
    }
    return -1;
}

int recd_model_registry_load(const char *models_dir, const char *names,
                             const recd_model_opts_t *opts)
{
    int missing = 0;
    if (names && *names) {
        char *copy = strdup(names), *save = NULL;
        if (!copy)
            return 1;
        for (char *t = strtok_r(copy, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
            missing += load_one(models_dir, t, opts) < 0;
        free(copy);
        return missing;
    }
    DIR *d = opendir(models_dir);
    if (!d) {
        recd_log_error("models_dir %s: %s", models_dir, strerror(errno));
        return 1;
    }
    struct dirent *de;
    char names_found[MAX_MODELS][64];
    size_t n = 0;
    while ((de = readdir(d)) && n < MAX_MODELS) {
        if (de->d_name[0] == '.' || strlen(de->d_name) >= 64)
            continue;
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", models_dir, de->d_name);
        DIR *sub = opendir(p);
        if (!sub)
            continue;
        closedir(sub);
        snprintf(names_found[n++], 64, "%s", de->d_name);
    }
    closedir(d);
    if (n == 0) {
        /* models.serve = "" serves whatever is there; nothing is allowed */
        recd_log_warn("models_dir %s holds no models; only the health, stats and admin "
                      "endpoints are useful",
                      models_dir);
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        missing += load_one(models_dir, names_found[i], opts) < 0;
    return missing;
}

size_t recd_model_waiting_to_free(const char *name)
{
    size_t n = 0;
    pthread_mutex_lock(&q_lock);
    for (size_t i = 0; i < r_n; i++)
        n += !name || strcmp(r_items[i]->name, name) == 0;
    pthread_mutex_unlock(&q_lock);
    return n;
}

void recd_model_registry_set_stats(json_t *(*json)(void),
                                   void (*prom_extra)(char **buf, size_t *len, size_t *cap))
{
    atomic_store(&stats_json_hook, json);
    atomic_store(&stats_prom_hook, prom_extra);
}

size_t recd_model_status_list(recd_model_status_t *out, size_t cap)
{
    pthread_mutex_lock(&status_lock);
    size_t n = atomic_load(&nentries);
    if (n > cap)
        n = cap;
    for (size_t i = 0; i < n; i++)
        out[i] = entries[i].st;
    pthread_mutex_unlock(&status_lock);
    pthread_mutex_lock(&q_lock);
    for (size_t i = 0; i < n; i++) {
        out[i].waiting_to_free = 0;
        for (size_t j = 0; j < r_n; j++)
            out[i].waiting_to_free += strcmp(r_items[j]->name, out[i].name) == 0;
    }
    pthread_mutex_unlock(&q_lock);
    return n;
}

void recd_model_registry_shutdown(void)
{
    size_t n = atomic_load(&nentries);
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&entries[i].lock);
        recd_bundle_t *b = entries[i].current;
        entries[i].current = NULL;
        pthread_mutex_unlock(&entries[i].lock);
        if (b)
            recd_model_release(b);
    }
    if (q_started) {
        pthread_mutex_lock(&q_lock);
        q_stop = 1;
        pthread_cond_signal(&q_cond);
        pthread_mutex_unlock(&q_lock);
        pthread_join(q_thread, NULL);
        q_started = 0;
    }
    free(q_items);
    q_items = NULL;
    q_n = q_cap = 0;
    q_stop = 0;
    free(r_items);
    r_items = NULL;
    r_n = r_cap = 0;
    for (size_t i = 0; i < n; i++)
        pthread_mutex_destroy(&entries[i].lock);
    atomic_store(&nentries, 0);
}

/* ---- stats ------------------------------------------------------------------------------- */

static json_t *models_json(void *arg)
{
    (void)arg;
    stats_json_fn hook = atomic_load(&stats_json_hook);
    if (hook)
        return hook();
    recd_model_status_t st[MAX_MODELS];
    size_t n = recd_model_status_list(st, MAX_MODELS);
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_pack(
            "{s:I,s:I,s:I,s:s,s:s,s:f,s:f,s:I}", "version", (json_int_t)st[i].version, "items",
            (json_int_t)st[i].n_items, "dim", (json_int_t)st[i].dim, "index", st[i].index,
            "index_source", st[i].ann_from_file ? "file" : "built", "load_ms", st[i].load_ms,
            "index_build_ms", st[i].ann_build_ms, "bytes", (json_int_t)st[i].bytes);
        if (st[i].last_error[0])
            json_object_set_new(m, "last_error",
                                json_pack("{s:I,s:s}", "version", (json_int_t)st[i].failed_version,
                                          "message", st[i].last_error));
        json_object_set_new(o, st[i].name, m);
    }
    return o;
}

static void models_prom(void *arg, char **buf, size_t *len, size_t *cap)
{
    (void)arg;
    recd_model_status_t st[MAX_MODELS];
    size_t n = recd_model_status_list(st, MAX_MODELS);
#define P(...) recd_stats_bufprintf(buf, len, cap, __VA_ARGS__)
    P("# HELP recd_model_info Served model version and index (always 1).\n"
      "# TYPE recd_model_info gauge\n");
    for (size_t i = 0; i < n; i++)
        P("recd_model_info{model=\"%s\",version=\"%lld\",index=\"%s\"} 1\n", st[i].name,
          (long long)st[i].version, st[i].index);
    P("# HELP recd_model_items Items in the served model version.\n"
      "# TYPE recd_model_items gauge\n");
    for (size_t i = 0; i < n; i++)
        P("recd_model_items{model=\"%s\"} %zu\n", st[i].name, st[i].n_items);
    P("# HELP recd_model_dim Item vector dimension.\n# TYPE recd_model_dim gauge\n");
    for (size_t i = 0; i < n; i++)
        P("recd_model_dim{model=\"%s\"} %zu\n", st[i].name, st[i].dim);
    P("# HELP recd_model_bytes Memory held by the served model version.\n"
      "# TYPE recd_model_bytes gauge\n");
    for (size_t i = 0; i < n; i++)
        P("recd_model_bytes{model=\"%s\"} %zu\n", st[i].name, st[i].bytes);
    P("# HELP recd_model_load_seconds Time to load and validate the served version.\n"
      "# TYPE recd_model_load_seconds gauge\n");
    for (size_t i = 0; i < n; i++)
        P("recd_model_load_seconds{model=\"%s\"} %.6f\n", st[i].name, st[i].load_ms / 1000.0);
    P("# HELP recd_model_load_failed 1 when the newest version on disk failed validation.\n"
      "# TYPE recd_model_load_failed gauge\n");
    for (size_t i = 0; i < n; i++)
        P("recd_model_load_failed{model=\"%s\"} %d\n", st[i].name, st[i].last_error[0] != 0);
#undef P
    stats_prom_fn hook = atomic_load(&stats_prom_hook);
    if (hook)
        hook(buf, len, cap);
}
