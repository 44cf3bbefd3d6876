/*
 * Model lifecycle manager (include/recd/lifecycle.h): one low-priority
 * thread that finds new model versions (inotify, rescans, admin commands),
 * loads and validates them, checks memory headroom, warms them up and
 * publishes them in the registry, and applies each model's policy (latest
 * valid unless pinned, keep_versions, rollback, retry with backoff).
 *
 * Locking: `L.lock` protects every field of L and of the models. Only the
 * manager thread changes the model table; it never holds the lock while it
 * loads a bundle, deletes a directory or calls a completion, so status
 * readers (/stats, /metrics, the admin API) never wait for a load. The lock
 * order is L.lock, then the registry's locks (status readers take registry
 * status under L.lock); the registry never calls back into this file while
 * holding one of its own locks.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "recd/conf.h"
#include "recd/lifecycle.h"
#include "recd/rank.h"
#include "recd/stats.h"

#define LC_MAX_MODELS 64
#define LC_MAX_VERSIONS 4096 /* version directories looked at per model */
#define LC_MAX_PINS 64
#define LC_KEEP_DELETED 8          /* deleted versions still listed in the status */
#define LC_DEBOUNCE_US 150000      /* quiet time after a directory event before a rescan */
#define LC_DEBOUNCE_MAX_US 1000000 /* a steady stream of events waits at most this */
#define LC_STATE_FORMAT "recd-models-state/1"
/* A writer's .tmp-* directory untouched this long is debris of a writer
 * that died (a live writer keeps writing into it). */
#define LC_STALE_TMP_S 600

/* ---- pure helpers (unit-tested through tests/unit/test_lifecycle.c) -------------------------- */

/* Version directories of dir (names accepted by recd_model_version_name
 * that are directories; ".tmp-*" and every other name are ignored),
 * highest first. Returns the count (<= cap); 0 when dir cannot be read. */
static size_t lc_list_versions(const char *dir, int64_t *out, size_t cap)
{
    return recd_model_list_versions(dir, out, cap, 1);
}

/* Wait before retry number `failures` (>= 1) of a failed load:
 * initial_ms doubling per failure, capped at max_ms. */
static int64_t lc_backoff_ms(int64_t initial_ms, int64_t max_ms, int failures)
{
    if (initial_ms < 1)
        initial_ms = 1;
    if (max_ms < initial_ms)
        max_ms = initial_ms;
    int64_t d = initial_ms;
    for (int i = 1; i < failures && d < max_ms; i++)
        d = d > max_ms / 2 ? max_ms : d * 2;
    return d < max_ms ? d : max_ms;
}

/* Which on-disk versions (desc[n], highest first) to delete after a swap:
 * everything beyond the newest `keep`, except the serving version, the
 * pinned one and the rollback target (0 = none for each). Writes them to
 * out (capacity n) and returns the count. */
static size_t lc_pick_deletions(const int64_t *desc, size_t n, int64_t keep, int64_t serving,
                                int64_t pinned, int64_t rollback, int64_t *out)
{
    size_t k = 0;
    if (keep < 1)
        keep = 1;
    for (size_t i = 0; i < n; i++) {
        if ((int64_t)i < keep)
            continue;
        int64_t v = desc[i];
        if (v == serving || v == pinned || v == rollback)
            continue;
        out[k++] = v;
    }
    return k;
}

/* MemAvailable of a /proc/meminfo text, in bytes. Returns 0, or -1 when
 * the line is missing or malformed. */
static int lc_parse_meminfo(const char *text, uint64_t *bytes)
{
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, "MemAvailable:", 13) != 0)
            continue;
        p += 13;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p < '0' || *p > '9')
            return -1;
        uint64_t kb = 0;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (kb > (UINT64_MAX - 9) / 10 / 1024)
                return -1;
            kb = kb * 10 + (uint64_t)(*p - '0');
        }
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncmp(p, "kB", 2) != 0)
            return -1;
        *bytes = kb * 1024;
        return 0;
    }
    return -1;
}

/* Is s a model name (1..63 of [A-Za-z0-9._-], not starting with '.')? */
static int lc_valid_name(const char *s)
{
    return recd_model_name_ok(s);
}

typedef struct lc_pin {
    char name[64];
    int64_t version;
} lc_pin_t;

/* Parse the state file's text: {"format": LC_STATE_FORMAT, "pins":
 * {name: version, ...}}. Returns the number of pins (<= cap) or -1 with
 * err saying what is wrong (nothing is used from a bad file). */
static int lc_state_parse(const char *text, size_t len, lc_pin_t *pins, size_t cap, recd_err_t *err)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return recd_err_set(err, RECD_EINVAL, "not JSON (line %d: %s)", je.line, je.text), -1;
    int n = 0;
    const char *fmt = json_string_value(json_object_get(root, "format"));
    json_t *p = json_object_get(root, "pins");
    if (!json_is_object(root) || !fmt || strcmp(fmt, LC_STATE_FORMAT) != 0) {
        recd_err_set(err, RECD_EINVAL, "format is not \"%s\"", LC_STATE_FORMAT);
        n = -1;
    } else if (!json_is_object(p)) {
        recd_err_set(err, RECD_EINVAL, "pins: expected an object");
        n = -1;
    } else {
        const char *k;
        json_t *v;
        json_object_foreach (p, k, v) {
            if (!lc_valid_name(k)) {
                recd_err_set(err, RECD_EINVAL, "pins: bad model name \"%s\"", k);
                n = -1;
                break;
            }
            if (!json_is_integer(v) || json_integer_value(v) < 1) {
                recd_err_set(err, RECD_EINVAL, "pins.%s: expected a version >= 1", k);
                n = -1;
                break;
            }
            if ((size_t)n == cap) {
                recd_err_set(err, RECD_ERANGE, "pins: more than %zu models", cap);
                n = -1;
                break;
            }
            snprintf(pins[n].name, sizeof pins[n].name, "%s", k);
            pins[n].version = (int64_t)json_integer_value(v);
            n++;
        }
    }
    json_decref(root);
    return n;
}

/* Read the state file. A missing file is no pins (0); an unreadable or
 * corrupt one is -1 with err (the caller logs it and goes on with none). */
static int lc_state_read(const char *path, lc_pin_t *pins, size_t cap, recd_err_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return recd_err_set(err, RECD_EIO, "%s: %s", path, strerror(errno)), -1;
    }
    char *buf = NULL;
    size_t len = 0, capb = 0;
    for (;;) {
        if (len == capb) {
            if (capb >= (1u << 20)) {
                free(buf);
                close(fd);
                return recd_err_set(err, RECD_ERANGE, "%s: larger than 1 MiB", path), -1;
            }
            capb = capb ? capb * 2 : 4096;
            char *nb = realloc(buf, capb);
            if (!nb) {
                free(buf);
                close(fd);
                return recd_err_set(err, RECD_ENOMEM, "out of memory"), -1;
            }
            buf = nb;
        }
        ssize_t r = read(fd, buf + len, capb - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            recd_err_set(err, RECD_EIO, "%s: %s", path, strerror(errno));
            free(buf);
            close(fd);
            return -1;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    recd_err_t perr;
    int n = lc_state_parse(buf ? buf : "", len, pins, cap, &perr);
    free(buf);
    if (n < 0)
        return recd_err_set(err, RECD_EINVAL, "%s: %s", path, perr.msg), -1;
    return n;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Write the pins atomically: <path>.tmp, fsync, rename over path, fsync
 * the directory. Returns 0 or RECD_EIO / RECD_ENOMEM with err. */
static int lc_state_write(const char *path, const lc_pin_t *pins, size_t n, recd_err_t *err)
{
    json_t *p = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(p, pins[i].name, json_integer((json_int_t)pins[i].version));
    json_t *root = json_pack("{s:s,s:o}", "format", LC_STATE_FORMAT, "pins", p);
    char *text = root ? json_dumps(root, JSON_SORT_KEYS | JSON_INDENT(2)) : NULL;
    json_decref(root);
    if (!text)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    char tmp[4200], dir[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        free(text);
        return recd_err_set(err, RECD_EINVAL, "state file path too long: %s", path);
    }
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0 && errno == ENOENT && mkdir(dir, 0750) == 0)
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        recd_err_set(err, RECD_EIO, "cannot write %s: %s", tmp, strerror(errno));
        free(text);
        return RECD_EIO;
    }
    size_t len = strlen(text);
    int ok = write_all(fd, text, len) == 0 && write_all(fd, "\n", 1) == 0 && fsync(fd) == 0;
    int e = errno;
    free(text);
    if (close(fd) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    if (!ok || rename(tmp, path) != 0) {
        if (ok)
            e = errno;
        unlink(tmp);
        return recd_err_set(err, RECD_EIO, "cannot write %s: %s", path, strerror(e));
    }
    recd_fsync_dir(dir); /* best effort: the rename is done */
    return 0;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)f;
    int r = (flag == FTW_DP) ? rmdir(path) : unlink(path);
    if (r != 0 && errno != ENOENT)
        recd_log_warn("cannot remove %s: %s", path, strerror(errno));
    return 0;
}

/* Remove the ".tmp-*" directories of model_dir in which nothing (the
 * directory or a file directly in it) changed for max_age_s seconds before
 * now. Returns how many were removed. */
static int lc_clean_stale_tmp(const char *model_dir, const char *name, time_t now, int max_age_s)
{
    DIR *d = opendir(model_dir);
    if (!d)
        return 0;
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, ".tmp-", 5) != 0)
            continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", model_dir, de->d_name);
        struct stat st;
        if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        time_t newest = st.st_mtime;
        DIR *t = opendir(path);
        if (t) {
            struct dirent *fe;
            while ((fe = readdir(t))) {
                struct stat fs;
                if (strcmp(fe->d_name, ".") == 0 || strcmp(fe->d_name, "..") == 0)
                    continue;
                if (fstatat(dirfd(t), fe->d_name, &fs, AT_SYMLINK_NOFOLLOW) == 0 &&
                    fs.st_mtime > newest)
                    newest = fs.st_mtime;
            }
            closedir(t);
        }
        if (now - newest < max_age_s)
            continue;
        nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
        if (lstat(path, &st) != 0) {
            removed++;
            recd_log_info("model %s: removed %s, a writer's temporary directory untouched for "
                          "%lld s (its writer died before publishing)",
                          name, path, (long long)(now - newest));
        }
    }
    closedir(d);
    return removed;
}

/* ---- manager state --------------------------------------------------------------------------- */

typedef enum { VS_PENDING, VS_READY, VS_FAILED, VS_SERVING, VS_DELETED } vstate_t;

static const char *const VS_NAMES[] = {"pending", "ready", "failed", "serving", "deleted"};

typedef struct lc_ver {
    int64_t version;
    vstate_t state;
    int on_disk;
    int failures;      /* consecutive failed loads */
    uint64_t retry_at; /* monotonic us of the next attempt (failed) */
    double retry_wall; /* the same on the wall clock, for the status */
    char error[512];   /* why the last load failed */
    int wd;            /* inotify watch on the directory while it is failed, or -1 */
} lc_ver_t;

typedef struct lc_model {
    char name[64];
    int required; /* counts in `missing` (configured, or present at start) */
    int wd;       /* inotify watch on <models_dir>/<name>, or -1 */
    lc_ver_t *v;  /* highest version first */
    size_t nv, capv;
    int64_t serving, pinned;
    int64_t previous; /* served before the current one (0 = none) */
    int64_t hold;     /* after an unpinned load: ignore versions <= hold */
    int dirty;        /* rescan at the end of the debounce */
    int64_t swaps, loads_failed;
    double last_swap_at, last_swap_ms;
    int64_t last_swap_from, last_swap_to;
    int has_error;
    int64_t err_version;
    char err_reason[512];
    double err_at;
} lc_model_t;

typedef enum { CMD_RESCAN, CMD_LOAD, CMD_UNPIN, CMD_ROLLBACK } cmd_kind_t;

static const char *const CMD_NAMES[] = {"rescan", "load", "unpin", "rollback"};

typedef struct lc_cmd {
    cmd_kind_t kind;
    int has_name;
    char name[64];
    int64_t version;
    int pin;
    recd_lc_done_fn done;
    void *ctx;
    struct lc_cmd *next;
} lc_cmd_t;

static struct {
    pthread_mutex_t lock;
    int running;  /* between start and stop */
    int stopping; /* stop asked */
    pthread_t thread;
    /* options (copies) */
    char *models_dir, *names, *state_file, *ann_factory;
    recd_model_opts_t mopts;
    int watch, loader_nice;
    void (*on_change)(void *ctx, int initial_done, int missing);
    void *ctx;
    /* wake-up and inotify */
    int efd, ifd, root_wd;
    int watching;
    uint64_t debounce_at, debounce_first;
    /* models and pins */
    lc_model_t *models[LC_MAX_MODELS];
    size_t nmodels;
    lc_pin_t pins[LC_MAX_PINS];
    size_t npins;
    int initial_done;
    /* commands */
    lc_cmd_t *q_head, *q_tail;
    size_t q_len;
} L = {.lock = PTHREAD_MUTEX_INITIALIZER, .efd = -1, .ifd = -1, .root_wd = -1};

static int conf_int(int64_t (*get)(const recd_conf_t *), int64_t dflt)
{
    const recd_conf_t *c = recd_conf_current();
    return (int)(c ? get(c) : dflt);
}

static int64_t get_keep(const recd_conf_t *c)
{
    return c->models_keep_versions;
}
static int64_t get_retry0(const recd_conf_t *c)
{
    return c->models_retry_initial_ms;
}
static int64_t get_retrymax(const recd_conf_t *c)
{
    return c->models_retry_max_ms;
}
static int64_t get_headroom(const recd_conf_t *c)
{
    return c->models_headroom_mb;
}
static int64_t get_warmup(const recd_conf_t *c)
{
    return c->models_warmup_rounds;
}

static void wake(void)
{
    if (L.efd >= 0) {
        uint64_t one = 1;
        ssize_t r = write(L.efd, &one, sizeof one);
        (void)r;
    }
}

/* Is name one of models.serve (or is every name served)? */
static int name_configured(const char *name)
{
    if (!L.names || !*L.names)
        return 1;
    const char *p = L.names;
    size_t n = strlen(name);
    while (*p) {
        while (*p == ',' || *p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ')
            e++;
        if ((size_t)(e - p) == n && strncmp(p, name, n) == 0)
            return 1;
        p = e;
    }
    return 0;
}

/* lock held */
static lc_model_t *find_model(const char *name)
{
    for (size_t i = 0; i < L.nmodels; i++)
        if (strcmp(L.models[i]->name, name) == 0)
            return L.models[i];
    return NULL;
}

static int64_t pin_of(const char *name)
{
    for (size_t i = 0; i < L.npins; i++)
        if (strcmp(L.pins[i].name, name) == 0)
            return L.pins[i].version;
    return 0;
}

static lc_ver_t *find_ver(lc_model_t *m, int64_t v)
{
    for (size_t i = 0; i < m->nv; i++)
        if (m->v[i].version == v)
            return &m->v[i];
    return NULL;
}

/* Stop watching a version's directory (a version is watched only while it
 * may still be completed by a copy-in). */
static void unwatch(lc_ver_t *x)
{
    if (x->wd >= 0 && L.ifd >= 0)
        inotify_rm_watch(L.ifd, x->wd);
    x->wd = -1;
}

static int on_disk(lc_model_t *m, int64_t v)
{
    lc_ver_t *x = find_ver(m, v);
    return x && x->on_disk;
}

/* The version rollback would serve: the previous one if it is older than
 * the serving one, on disk and not known bad, else the highest such
 * version below the serving one. 0 = none. lock held. */
static int64_t rollback_target(lc_model_t *m)
{
    if (!m->serving)
        return 0;
    lc_ver_t *p = m->previous ? find_ver(m, m->previous) : NULL;
    if (p && p->on_disk && p->version < m->serving && p->state != VS_FAILED)
        return p->version;
    for (size_t i = 0; i < m->nv; i++) {
        lc_ver_t *x = &m->v[i];
        if (x->on_disk && x->version < m->serving && x->state != VS_FAILED)
            return x->version;
    }
    return 0;
}

/* Models with no serving version among those that must have one. lock held. */
static int count_missing(void)
{
    int n = 0;
    for (size_t i = 0; i < L.nmodels; i++)
        n += L.models[i]->required && !L.models[i]->serving;
    return n;
}

static void notify_change(void)
{
    pthread_mutex_lock(&L.lock);
    int initial = L.initial_done, missing = count_missing();
    pthread_mutex_unlock(&L.lock);
    if (L.on_change && initial)
        L.on_change(L.ctx, 1, missing);
}

static void add_model_watch(lc_model_t *m)
{
    if (!L.watching || m->wd >= 0)
        return;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/%s", L.models_dir, m->name);
    int wd = inotify_add_watch(L.ifd, dir,
                               IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                                   IN_CLOSE_WRITE | IN_ONLYDIR);
    if (wd >= 0) {
        pthread_mutex_lock(&L.lock);
        m->wd = wd;
        pthread_mutex_unlock(&L.lock);
    } else if (errno != ENOENT) {
        recd_log_warn("model %s: cannot watch %s: %s (new versions need a rescan)", m->name, dir,
                      strerror(errno));
    }
}

/* A model entry for name, created when new (manager thread). */
static lc_model_t *get_model(const char *name, int required)
{
    pthread_mutex_lock(&L.lock);
    lc_model_t *m = find_model(name);
    if (m || L.nmodels >= LC_MAX_MODELS) {
        if (m && required)
            m->required = 1;
        pthread_mutex_unlock(&L.lock);
        if (!m)
            recd_log_error("model %s: more than %d models; ignored", name, LC_MAX_MODELS);
        return m;
    }
    m = calloc(1, sizeof *m);
    if (!m) {
        pthread_mutex_unlock(&L.lock);
        recd_log_error("model %s: out of memory", name);
        return NULL;
    }
    snprintf(m->name, sizeof m->name, "%s", name);
    m->required = required;
    m->wd = -1;
    m->pinned = pin_of(name);
    m->dirty = 1;
    L.models[L.nmodels++] = m;
    pthread_mutex_unlock(&L.lock);
    add_model_watch(m);
    return m;
}

static void free_model(lc_model_t *m)
{
    free(m->v);
    free(m);
}

/* Bring m's version list up to date with its directory (manager thread). */
static void scan_model(lc_model_t *m)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/%s", L.models_dir, m->name);
    int64_t *vs = malloc(LC_MAX_VERSIONS * sizeof *vs);
    if (!vs)
        return;
    size_t n = lc_list_versions(dir, vs, LC_MAX_VERSIONS);
    pthread_mutex_lock(&L.lock);
    /* new list: every on-disk version (old records kept), then the most
     * recently deleted ones */
    lc_ver_t *nv = calloc(n + LC_KEEP_DELETED + 1, sizeof *nv);
    if (!nv) {
        pthread_mutex_unlock(&L.lock);
        free(vs);
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        lc_ver_t *old = find_ver(m, vs[i]);
        if (old && old->state != VS_DELETED) {
            nv[k] = *old;
        } else {
            nv[k] = (lc_ver_t){.version = vs[i], .state = VS_PENDING, .wd = -1};
            if (old)
                unwatch(old);
        }
        if (nv[k].version == m->serving)
            nv[k].state = VS_SERVING;
        nv[k].on_disk = 1;
        k++;
    }
    size_t ndel = 0;
    for (size_t i = 0; i < m->nv && ndel < LC_KEEP_DELETED; i++) {
        lc_ver_t *x = &m->v[i];
        int still = 0;
        for (size_t j = 0; j < n && !still; j++)
            still = vs[j] == x->version;
        if (still)
            continue;
        unwatch(x);
        if (x->state == VS_DELETED) {
            nv[k] = *x;
            k++;
            ndel++;
        }
    }
    /* keep it sorted (deleted entries may interleave) */
    for (size_t i = 1; i < k; i++)
        for (size_t j = i; j > 0 && nv[j - 1].version < nv[j].version; j--) {
            lc_ver_t t = nv[j];
            nv[j] = nv[j - 1];
            nv[j - 1] = t;
        }
    free(m->v);
    m->v = nv;
    m->nv = k;
    m->capv = n + LC_KEEP_DELETED + 1;
    /* an error about a version that has gone is no longer news */
    if (m->has_error && m->err_version != 0 && !on_disk(m, m->err_version)) {
        m->has_error = 0;
        pthread_mutex_unlock(&L.lock);
        recd_model_set_error(m->name, 0, "");
        pthread_mutex_lock(&L.lock);
    }
    m->dirty = 0;
    pthread_mutex_unlock(&L.lock);
    free(vs);
}

/* Sum of the sizes of the regular files in dir, plus the ANN index when
 * recd will build it at load (about the item matrix again, more for HNSW
 * graphs): the memory a version will take, roughly. */
static uint64_t estimate_bytes(const char *dir)
{
    uint64_t total = 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        struct stat st;
        if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        total += (uint64_t)st.st_size;
    }
    closedir(d);
    char mpath[4300];
    snprintf(mpath, sizeof mpath, "%s/manifest.json", dir);
    json_t *m = json_load_file(mpath, 0, NULL);
    if (!m)
        return total;
    json_t *ann = json_object_get(m, "ann");
    const char *file = json_string_value(json_object_get(ann, "file"));
    const char *factory = json_string_value(json_object_get(ann, "factory"));
    int from_file =
        file && L.mopts.use_index_file &&
        (!L.ann_factory || !*L.ann_factory || (factory && strcmp(factory, L.ann_factory) == 0));
    if (!from_file) {
        int64_t n = json_integer_value(json_object_get(m, "n_items"));
        int64_t dim = json_integer_value(json_object_get(json_object_get(m, "candidate"), "dim"));
        if (n > 0 && dim > 0) {
            uint64_t idx = (uint64_t)n * (uint64_t)dim * 4;
            const char *f = L.ann_factory && *L.ann_factory ? L.ann_factory : factory;
            if (f && strncmp(f, "HNSW", 4) == 0)
                idx += (uint64_t)n * 2 * (uint64_t)(atoi(f + 4) > 0 ? atoi(f + 4) : 32) * 4;
            total += idx;
        }
    }
    json_decref(m);
    return total;
}

static int mem_available(uint64_t *bytes)
{
    char buf[8192];
    int fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    return lc_parse_meminfo(buf, bytes);
}

/* Refuse a load that would leave less than models.headroom_mb available. */
static int check_headroom(const char *dir, int64_t version, recd_err_t *err)
{
    uint64_t avail;
    if (mem_available(&avail) < 0) {
        recd_log_debug("model lifecycle: MemAvailable unknown; headroom not checked");
        return 0;
    }
    uint64_t need = estimate_bytes(dir);
    uint64_t headroom = (uint64_t)conf_int(get_headroom, 256) << 20;
    if (need > avail || avail - need < headroom)
        return recd_err_set(err, RECD_ENOMEM,
                            "%s: not enough memory to load version %lld: it needs about %.1f MiB, "
                            "MemAvailable is %.1f MiB and models.headroom_mb requires %.1f MiB "
                            "to stay available",
                            dir, (long long)version, (double)need / 1048576.0,
                            (double)avail / 1048576.0, (double)headroom / 1048576.0);
    return 0;
}

static void watch_failed_dir(lc_model_t *m, int64_t version)
{
    if (!L.watching)
        return;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/%s/%lld", L.models_dir, m->name, (long long)version);
    int wd = inotify_add_watch(L.ifd, dir,
                               IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE | IN_ONLYDIR);
    if (wd < 0)
        return;
    pthread_mutex_lock(&L.lock);
    lc_ver_t *x = find_ver(m, version);
    if (x)
        x->wd = wd;
    pthread_mutex_unlock(&L.lock);
}

/* Load, validate, check, warm up and publish one version (manager thread,
 * lock not held). On failure the version is recorded as failed with its
 * retry time; serving is untouched. Returns 0 or an error code. */
static int try_load(lc_model_t *m, int64_t version, recd_err_t *err)
{
    uint64_t t0 = recd_time_mono_us();
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/%s/%lld", L.models_dir, m->name, (long long)version);
    recd_bundle_t *b = NULL;
    int rc = check_headroom(dir, version, err);
    if (rc == 0) {
        b = recd_bundle_load(dir, &L.mopts, err);
        if (!b)
            rc = err->code ? err->code : RECD_ERR;
    }
    if (rc == 0 && strcmp(b->name, m->name) != 0)
        rc = recd_err_set(err, RECD_EINVAL,
                          "%s: manifest.json: name \"%s\" does not match directory", dir, b->name);
    uint64_t t1 = recd_time_mono_us();
    if (rc == 0) {
        recd_err_t werr;
        int rounds = conf_int(get_warmup, 16);
        if (rounds > 0 && recd_rank_warmup(b, (size_t)rounds, &werr) < 0)
            rc = recd_err_set(err, werr.code ? werr.code : RECD_ERR, "%s: warmup failed: %s", dir,
                              werr.msg);
    }
    if (rc != 0) {
        if (b)
            recd_bundle_unref(b);
        int64_t backoff;
        pthread_mutex_lock(&L.lock);
        lc_ver_t *x = find_ver(m, version);
        int failures = 1;
        if (x) {
            x->state = VS_FAILED;
            failures = ++x->failures;
            snprintf(x->error, sizeof x->error, "%s", err->msg);
        }
        backoff =
            lc_backoff_ms(conf_int(get_retry0, 1000), conf_int(get_retrymax, 300000), failures);
        if (x) {
            x->retry_at = recd_time_mono_us() + (uint64_t)backoff * 1000;
            x->retry_wall = recd_time_wall() + (double)backoff / 1000.0;
        }
        m->loads_failed++;
        m->has_error = 1;
        m->err_version = version;
        m->err_at = recd_time_wall();
        snprintf(m->err_reason, sizeof m->err_reason, "%s", err->msg);
        int need_watch = x && x->wd < 0;
        pthread_mutex_unlock(&L.lock);
        recd_model_set_error(m->name, version, err->msg);
        recd_log_error("model %s version %lld rejected: %s (attempt %d; next retry in %.1f s)",
                       m->name, (long long)version, err->msg, failures, (double)backoff / 1000.0);
        if (need_watch)
            watch_failed_dir(m, version);
        return rc;
    }
    char idx[64];
    recd_log_info("model %s version %lld loaded: %zu items, dim %zu, index %s (%s, %.1f ms), "
                  "load %.1f ms, warmup %.1f ms",
                  m->name, (long long)b->version, b->n_items, b->dim,
                  recd_ann_spec_factory(&b->ann_spec, idx, sizeof idx),
                  b->ann_from_file ? "read from index.faiss" : "built at load",
                  (double)b->ann_build_us / 1000.0, (double)b->load_us / 1000.0,
                  (double)(recd_time_mono_us() - t1) / 1000.0);
    /* the one pointer swap (the old version is released), under L.lock so
     * the status never shows the new version with the old bookkeeping */
    pthread_mutex_lock(&L.lock);
    recd_model_publish(b);
    double ms = (double)(recd_time_mono_us() - t0) / 1000.0;
    int64_t from = m->serving;
    lc_ver_t *old = from ? find_ver(m, from) : NULL;
    if (old && old->state == VS_SERVING)
        old->state = VS_READY;
    lc_ver_t *x = find_ver(m, version);
    if (x) {
        unwatch(x);
        x->state = VS_SERVING;
        x->failures = 0;
        x->error[0] = '\0';
    }
    if (from)
        m->previous = from;
    m->serving = version;
    m->swaps++;
    m->last_swap_at = recd_time_wall();
    m->last_swap_ms = ms;
    m->last_swap_from = from;
    m->last_swap_to = version;
    int cleared = m->has_error && m->err_version <= version;
    if (cleared)
        m->has_error = 0;
    pthread_mutex_unlock(&L.lock);
    if (cleared)
        recd_model_set_error(m->name, 0, "");
    recd_log_info("model %s: now serving version %lld (was %lld); swap took %.1f ms from the start "
                  "of the load",
                  m->name, (long long)version, (long long)from, ms);
    return 0;
}

/* Delete what keep_versions leaves over after a swap (manager thread). */
static void apply_keep(lc_model_t *m)
{
    int64_t keep = conf_int(get_keep, 3);
    pthread_mutex_lock(&L.lock);
    int64_t *desc = malloc((m->nv + 1) * sizeof *desc), *del = malloc((m->nv + 1) * sizeof *del);
    size_t n = 0, nd = 0;
    if (desc && del) {
        for (size_t i = 0; i < m->nv; i++)
            if (m->v[i].on_disk)
                desc[n++] = m->v[i].version;
        nd = lc_pick_deletions(desc, n, keep, m->serving, m->pinned, rollback_target(m), del);
    }
    pthread_mutex_unlock(&L.lock);
    for (size_t i = 0; i < nd; i++) {
        char dir[4200];
        snprintf(dir, sizeof dir, "%s/%s/%lld", L.models_dir, m->name, (long long)del[i]);
        struct stat st;
        if (lstat(dir, &st) != 0)
            continue;
        if (S_ISLNK(st.st_mode))
            unlink(dir);
        else
            nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
        int gone = lstat(dir, &st) != 0;
        if (gone)
            recd_log_info("model %s: deleted version %lld from disk (models.keep_versions = %lld)",
                          m->name, (long long)del[i], (long long)keep);
        else
            recd_log_warn("model %s: could not delete version %lld (%s)", m->name,
                          (long long)del[i], dir);
        pthread_mutex_lock(&L.lock);
        lc_ver_t *x = find_ver(m, del[i]);
        if (x && gone) {
            unwatch(x);
            x->state = VS_DELETED;
            x->on_disk = 0;
            x->error[0] = '\0';
        }
        pthread_mutex_unlock(&L.lock);
    }
    free(desc);
    free(del);
    if (nd)
        scan_model(m); /* trims the deleted entries to LC_KEEP_DELETED */
}

/* Persist L.pins (lock not held). Returns 0 or an error with err. */
static int save_pins(recd_err_t *err)
{
    if (!L.state_file || !*L.state_file)
        return 0;
    lc_pin_t pins[LC_MAX_PINS];
    pthread_mutex_lock(&L.lock);
    size_t n = L.npins;
    memcpy(pins, L.pins, n * sizeof *pins);
    pthread_mutex_unlock(&L.lock);
    int rc = lc_state_write(L.state_file, pins, n, err);
    if (rc < 0)
        recd_log_error("model pins not saved: %s", err->msg);
    return rc;
}

/* Set (version > 0) or drop (0) the pin of m, in memory (lock held). */
static void set_pin_locked(lc_model_t *m, int64_t version)
{
    m->pinned = version;
    for (size_t i = 0; i < L.npins; i++)
        if (strcmp(L.pins[i].name, m->name) == 0) {
            if (version)
                L.pins[i].version = version;
            else
                L.pins[i] = L.pins[--L.npins];
            return;
        }
    if (version && L.npins < LC_MAX_PINS) {
        snprintf(L.pins[L.npins].name, sizeof L.pins[0].name, "%s", m->name);
        L.pins[L.npins++].version = version;
    }
}

/* Is version v of m to be tried now? force ignores the retry backoff. */
static int due(const lc_ver_t *x, uint64_t now, int force)
{
    return x->on_disk && (force || x->state != VS_FAILED || x->retry_at <= now);
}

/* Serve what the policy says (manager thread): the pinned version, else
 * the highest valid one above the serving one (and above a hold). Failed
 * versions are retried when their backoff has passed (or force; force
 * also removes stale writer temp directories). Returns 1 when the serving
 * version changed, 0 when not, -1 when a load failed and nothing better
 * was found. */
static int reconcile(lc_model_t *m, int force)
{
    if (force) { /* start, SIGHUP, admin: also clear a dead writer's debris */
        char dir[4200];
        snprintf(dir, sizeof dir, "%s/%s", L.models_dir, m->name);
        lc_clean_stale_tmp(dir, m->name, time(NULL), LC_STALE_TMP_S);
    }
    scan_model(m);
    pthread_mutex_lock(&L.lock);
    int64_t pinned = m->pinned;
    if (pinned && !on_disk(m, pinned)) {
        recd_log_warn("model %s: pinned version %lld is not on disk; pin dropped", m->name,
                      (long long)pinned);
        set_pin_locked(m, 0);
        pinned = 0;
        pthread_mutex_unlock(&L.lock);
        recd_err_t err;
        save_pins(&err);
        pthread_mutex_lock(&L.lock);
    }
    int64_t *cand = malloc((m->nv + 2) * sizeof *cand);
    size_t nc = 0;
    int nothing_on_disk = 1;
    uint64_t now = recd_time_mono_us();
    if (cand) {
        lc_ver_t *p = pinned ? find_ver(m, pinned) : NULL;
        if (p && p->version != m->serving && due(p, now, force))
            cand[nc++] = pinned;
        int64_t floor = m->serving > m->hold ? m->serving : m->hold;
        for (size_t i = 0; i < m->nv; i++) {
            lc_ver_t *x = &m->v[i];
            nothing_on_disk &= !x->on_disk;
            if (x->version == pinned || !due(x, now, force))
                continue;
            if (pinned ? m->serving == 0 : x->version > floor)
                cand[nc++] = x->version;
        }
    }
    int64_t serving = m->serving;
    pthread_mutex_unlock(&L.lock);
    if (!cand)
        return -1;
    if (nothing_on_disk && !serving) {
        char msg[4300];
        snprintf(msg, sizeof msg, "%s/%s: no version directories", L.models_dir, m->name);
        pthread_mutex_lock(&L.lock);
        int first = !m->has_error || strcmp(m->err_reason, msg) != 0;
        m->has_error = 1;
        m->err_version = 0;
        m->err_at = recd_time_wall();
        snprintf(m->err_reason, sizeof m->err_reason, "%s", msg);
        pthread_mutex_unlock(&L.lock);
        recd_model_set_error(m->name, 0, msg);
        if (first)
            recd_log_error("model %s: %s", m->name, msg);
        free(cand);
        return -1;
    }
    int result = 0, failed = 0;
    for (size_t i = 0; i < nc; i++) {
        recd_err_t err;
        if (try_load(m, cand[i], &err) == 0) {
            result = 1;
            break;
        }
        failed = 1;
        if (cand[i] == pinned && serving)
            break; /* the pin keeps the current version until it loads */
    }
    free(cand);
    if (result == 1)
        apply_keep(m);
    return result ? result : failed ? -1 : 0;
}

/* ---- commands ---------------------------------------------------------------------------------
 */

static void finish(lc_cmd_t *c, recd_lc_result_t *res)
{
    const char *subject = c->has_name ? c->name : "(every model)";
    if (c->kind == CMD_LOAD)
        recd_log_write(res->rc ? RECD_LOG_WARN : RECD_LOG_INFO, NULL,
                       "model command %s %s version %lld%s: %s: %s", CMD_NAMES[c->kind], subject,
                       (long long)c->version, c->pin ? " (pin)" : "", res->rc ? "failed" : "ok",
                       res->msg);
    else
        recd_log_write(res->rc ? RECD_LOG_WARN : RECD_LOG_INFO, NULL, "model command %s %s: %s: %s",
                       CMD_NAMES[c->kind], subject, res->rc ? "failed" : "ok", res->msg);
    if (c->done)
        c->done(c->ctx, res);
}

static int64_t serving_of(lc_model_t *m)
{
    pthread_mutex_lock(&L.lock);
    int64_t v = m->serving;
    pthread_mutex_unlock(&L.lock);
    return v;
}

/* Models named in models_dir that should be managed but are not yet (for
 * models.serve = ""), or the configured names; creates their entries. */
static void discover_models(int required)
{
    if (L.names && *L.names) {
        char *copy = strdup(L.names), *save = NULL;
        if (!copy)
            return;
        for (char *t = strtok_r(copy, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
            if (lc_valid_name(t))
                get_model(t, required);
            else
                recd_log_error("models.serve: \"%s\" is not a valid model name; ignored", t);
        free(copy);
        return;
    }
    DIR *d = opendir(L.models_dir);
    if (!d) {
        recd_log_error("models_dir %s: %s", L.models_dir, strerror(errno));
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!lc_valid_name(de->d_name))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, 0) != 0 || !S_ISDIR(st.st_mode))
            continue;
        pthread_mutex_lock(&L.lock);
        int known = find_model(de->d_name) != NULL;
        pthread_mutex_unlock(&L.lock);
        if (!known)
            get_model(de->d_name, required);
    }
    closedir(d);
}

static void run_command(lc_cmd_t *c)
{
    recd_lc_result_t res = {0};
    lc_model_t *m = NULL;
    if (c->has_name) {
        pthread_mutex_lock(&L.lock);
        m = find_model(c->name);
        pthread_mutex_unlock(&L.lock);
        if (!m && name_configured(c->name)) {
            char dir[4200];
            struct stat st;
            snprintf(dir, sizeof dir, "%s/%s", L.models_dir, c->name);
            if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
                m = get_model(c->name, 0);
        }
        if (!m) {
            res.rc = RECD_ENOENT;
            snprintf(res.msg, sizeof res.msg, "no model named \"%s\" is served", c->name);
            finish(c, &res);
            return;
        }
        res.previous = serving_of(m);
    }
    recd_err_t err;
    switch (c->kind) {
    case CMD_RESCAN: {
        if (!m) {
            discover_models(0);
            int changed = 0, failed = 0;
            pthread_mutex_lock(&L.lock);
            size_t n = L.nmodels;
            lc_model_t *ms[LC_MAX_MODELS];
            memcpy(ms, L.models, n * sizeof *ms);
            pthread_mutex_unlock(&L.lock);
            for (size_t i = 0; i < n; i++) {
                int r = reconcile(ms[i], 1);
                changed += r == 1;
                failed += r < 0;
            }
            snprintf(res.msg, sizeof res.msg,
                     "rescanned %zu model(s): %d swapped, %d with a failed load", n, changed,
                     failed);
        } else {
            int r = reconcile(m, 1);
            res.version = serving_of(m);
            if (r == 1)
                snprintf(res.msg, sizeof res.msg, "now serving version %lld",
                         (long long)res.version);
            else if (r < 0) {
                pthread_mutex_lock(&L.lock);
                snprintf(res.msg, sizeof res.msg, "no newer version loaded: %s",
                         m->has_error ? m->err_reason : "load failed");
                pthread_mutex_unlock(&L.lock);
            } else
                snprintf(res.msg, sizeof res.msg, "no newer version; serving version %lld",
                         (long long)res.version);
        }
        break;
    }
    case CMD_LOAD: {
        scan_model(m);
        pthread_mutex_lock(&L.lock);
        int present = on_disk(m, c->version);
        int64_t cur = m->serving;
        pthread_mutex_unlock(&L.lock);
        if (!present) {
            res.rc = RECD_ENOENT;
            snprintf(res.msg, sizeof res.msg, "model %s has no version %lld on disk", m->name,
                     (long long)c->version);
            res.version = cur;
            break;
        }
        if (cur != c->version && try_load(m, c->version, &err) < 0) {
            res.rc = err.code ? err.code : RECD_ERR;
            snprintf(res.msg, sizeof res.msg, "%s", err.msg);
            res.version = serving_of(m);
            break;
        }
        pthread_mutex_lock(&L.lock);
        int64_t before = m->pinned;
        if (c->pin) {
            set_pin_locked(m, c->version);
            m->hold = 0;
        } else {
            set_pin_locked(m, 0);
            m->hold = c->version; /* until something newer than today's newest */
            for (size_t i = 0; i < m->nv; i++)
                if (m->v[i].on_disk) {
                    m->hold = m->v[i].version;
                    break;
                }
        }
        int64_t after = m->pinned;
        pthread_mutex_unlock(&L.lock);
        int saved = before == after ? 0 : save_pins(&err);
        res.version = c->version;
        snprintf(res.msg, sizeof res.msg, "%s version %lld%s%s%s",
                 cur == c->version ? "already serving" : "now serving", (long long)c->version,
                 c->pin ? ", pinned" : ", until a newer version is published",
                 saved < 0 ? "; the pin could not be saved: " : "", saved < 0 ? err.msg : "");
        if (cur != c->version)
            apply_keep(m);
        break;
    }
    case CMD_UNPIN: {
        pthread_mutex_lock(&L.lock);
        int64_t was = m->pinned;
        set_pin_locked(m, 0);
        m->hold = 0;
        pthread_mutex_unlock(&L.lock);
        int saved = was ? save_pins(&err) : 0;
        char serr[512];
        snprintf(serr, sizeof serr, "%s", saved < 0 ? err.msg : "");
        int r = reconcile(m, 1);
        res.version = serving_of(m);
        char why[512] = "";
        if (r < 0) {
            pthread_mutex_lock(&L.lock);
            snprintf(why, sizeof why, "; a newer version failed to load: %s", m->err_reason);
            pthread_mutex_unlock(&L.lock);
        }
        snprintf(res.msg, sizeof res.msg, "%s; serving version %lld%s%s%s",
                 was ? "pin dropped" : "was not pinned", (long long)res.version, why,
                 serr[0] ? "; the state could not be saved: " : "", serr);
        break;
    }
    case CMD_ROLLBACK: {
        scan_model(m);
        int done = 0;
        char last[512] = "";
        for (;;) {
            pthread_mutex_lock(&L.lock);
            int64_t target = rollback_target(m);
            pthread_mutex_unlock(&L.lock);
            if (!target)
                break;
            if (try_load(m, target, &err) < 0) {
                snprintf(last, sizeof last, "version %lld: %s", (long long)target, err.msg);
                continue; /* now failed: rollback_target moves on to a lower one */
            }
            pthread_mutex_lock(&L.lock);
            set_pin_locked(m, target);
            m->hold = 0;
            pthread_mutex_unlock(&L.lock);
            int saved = save_pins(&err);
            res.version = target;
            snprintf(res.msg, sizeof res.msg, "rolled back from version %lld to %lld, pinned%s%s",
                     (long long)res.previous, (long long)target,
                     saved < 0 ? "; the pin could not be saved: " : "", saved < 0 ? err.msg : "");
            done = 1;
            apply_keep(m);
            break;
        }
        if (!done) {
            res.version = serving_of(m);
            res.rc = last[0] ? RECD_EINVAL : RECD_ENOENT;
            if (!res.previous)
                snprintf(res.msg, sizeof res.msg, "model %s serves no version", m->name);
            else if (last[0])
                snprintf(res.msg, sizeof res.msg,
                         "no older version of model %s could be loaded (last: %s)", m->name, last);
            else
                snprintf(res.msg, sizeof res.msg,
                         "model %s has no valid version older than %lld on disk", m->name,
                         (long long)res.previous);
        }
        break;
    }
    }
    finish(c, &res);
}

static int enqueue(cmd_kind_t kind, const char *name, int64_t version, int pin,
                   recd_lc_done_fn done, void *ctx)
{
    if (name && !lc_valid_name(name))
        return RECD_EINVAL;
    if (!name && kind != CMD_RESCAN)
        return RECD_EINVAL;
    if (kind == CMD_LOAD && version < 1)
        return RECD_EINVAL;
    lc_cmd_t *c = calloc(1, sizeof *c);
    if (!c)
        return RECD_ENOMEM;
    c->kind = kind;
    c->has_name = name != NULL;
    if (name)
        snprintf(c->name, sizeof c->name, "%s", name);
    c->version = version;
    c->pin = pin != 0;
    c->done = done;
    c->ctx = ctx;
    pthread_mutex_lock(&L.lock);
    if (!L.running || L.stopping) {
        pthread_mutex_unlock(&L.lock);
        free(c);
        return RECD_EAGAIN;
    }
    if (name && !find_model(name) && !name_configured(name)) {
        pthread_mutex_unlock(&L.lock);
        free(c);
        return RECD_EINVAL;
    }
    if (L.q_tail)
        L.q_tail->next = c;
    else
        L.q_head = c;
    L.q_tail = c;
    L.q_len++;
    pthread_mutex_unlock(&L.lock);
    wake();
    return 0;
}

int recd_lc_rescan(const char *name, recd_lc_done_fn done, void *ctx)
{
    return enqueue(CMD_RESCAN, name, 0, 0, done, ctx);
}

int recd_lc_load(const char *name, int64_t version, int pin, recd_lc_done_fn done, void *ctx)
{
    return enqueue(CMD_LOAD, name, version, pin, done, ctx);
}

int recd_lc_unpin(const char *name, recd_lc_done_fn done, void *ctx)
{
    return enqueue(CMD_UNPIN, name, 0, 0, done, ctx);
}

int recd_lc_rollback(const char *name, recd_lc_done_fn done, void *ctx)
{
    return enqueue(CMD_ROLLBACK, name, 0, 0, done, ctx);
}

/* ---- inotify ----------------------------------------------------------------------------------
 */

static void mark_dirty_locked(lc_model_t *m, uint64_t now)
{
    m->dirty = 1;
    if (!L.debounce_at)
        L.debounce_first = now;
    uint64_t at = now + LC_DEBOUNCE_US, cap = L.debounce_first + LC_DEBOUNCE_MAX_US;
    L.debounce_at = at < cap ? at : cap;
}

static void handle_event(const struct inotify_event *ev, uint64_t now)
{
    if (ev->mask & IN_Q_OVERFLOW) {
        pthread_mutex_lock(&L.lock);
        for (size_t i = 0; i < L.nmodels; i++)
            mark_dirty_locked(L.models[i], now);
        pthread_mutex_unlock(&L.lock);
        recd_log_warn("model lifecycle: inotify queue overflowed; rescanning every model");
        return;
    }
    const char *name = ev->len ? ev->name : "";
    if (ev->wd == L.root_wd) {
        if (ev->mask & IN_IGNORED) {
            L.root_wd = -1;
            recd_log_warn("models_dir %s is no longer watched (removed or moved?)", L.models_dir);
            return;
        }
        if (!(ev->mask & IN_ISDIR) || !lc_valid_name(name) || !name_configured(name))
            return;
        lc_model_t *m = get_model(name, 0); /* adds the watch */
        if (m) {
            add_model_watch(m); /* again: a re-created directory */
            pthread_mutex_lock(&L.lock);
            if (ev->mask & (IN_DELETE | IN_MOVED_FROM))
                m->wd = -1; /* the kernel drops it (IN_IGNORED follows) */
            mark_dirty_locked(m, now);
            pthread_mutex_unlock(&L.lock);
        }
        return;
    }
    pthread_mutex_lock(&L.lock);
    for (size_t i = 0; i < L.nmodels; i++) {
        lc_model_t *m = L.models[i];
        if (m->wd == ev->wd) {
            if (ev->mask & IN_IGNORED) {
                m->wd = -1;
                break;
            }
            int64_t v;
            if (name[0] == '.' || !recd_model_version_name(name, &v))
                break; /* a writer's .tmp-* directory or anything else */
            lc_ver_t *x = find_ver(m, v);
            if (x && (ev->mask & (IN_CREATE | IN_MOVED_TO))) {
                /* new contents under a known number: start afresh */
                x->state = x->version == m->serving ? VS_SERVING : VS_PENDING;
                x->failures = 0;
                x->retry_at = 0;
            }
            mark_dirty_locked(m, now);
            break;
        }
        for (size_t j = 0; j < m->nv; j++) {
            lc_ver_t *x = &m->v[j];
            if (x->wd != ev->wd)
                continue;
            if (ev->mask & IN_IGNORED) {
                x->wd = -1;
            } else if (x->state == VS_FAILED) {
                x->retry_at = 0; /* its contents changed: try again after the quiet time */
                mark_dirty_locked(m, now);
            }
            goto out;
        }
    }
out:
    pthread_mutex_unlock(&L.lock);
}

static void read_inotify(void)
{
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(L.ifd, buf, sizeof buf);
        if (n <= 0)
            return;
        uint64_t now = recd_time_mono_us();
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            handle_event(ev, now);
            p += sizeof *ev + ev->len;
        }
    }
}

static void setup_watch(void)
{
    if (!L.watch)
        return;
    L.ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (L.ifd < 0) {
        recd_log_warn("model lifecycle: inotify unavailable (%s); new versions need SIGHUP or "
                      "the admin API",
                      strerror(errno));
        return;
    }
    L.root_wd = inotify_add_watch(L.ifd, L.models_dir,
                                  IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ONLYDIR);
    if (L.root_wd < 0) {
        recd_log_warn("model lifecycle: cannot watch models_dir %s (%s); new versions need SIGHUP "
                      "or the admin API",
                      L.models_dir, strerror(errno));
        close(L.ifd);
        L.ifd = -1;
        return;
    }
    pthread_mutex_lock(&L.lock);
    L.watching = 1;
    pthread_mutex_unlock(&L.lock);
}

/* ---- the manager thread ------------------------------------------------------------------------
 */

/* The earliest moment something is due (debounce end, a retry), or 0. */
static uint64_t next_due_locked(void)
{
    uint64_t t = L.debounce_at;
    for (size_t i = 0; i < L.nmodels; i++) {
        lc_model_t *m = L.models[i];
        int64_t floor = m->serving > m->hold ? m->serving : m->hold;
        for (size_t j = 0; j < m->nv; j++) {
            lc_ver_t *x = &m->v[j];
            if (!x->on_disk || x->state != VS_FAILED)
                continue;
            int candidate =
                m->pinned ? (x->version == m->pinned || m->serving == 0) : x->version > floor;
            if (candidate && (!t || x->retry_at < t))
                t = x->retry_at ? x->retry_at : 1;
        }
    }
    return t;
}

static void *manager_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "recd-models");
    if (L.loader_nice > 0 && setpriority(PRIO_PROCESS, (id_t)gettid(), L.loader_nice) != 0)
        recd_log_warn("model lifecycle: setpriority(%d): %s", L.loader_nice, strerror(errno));
    setup_watch();

    /* initial load: every configured model (or every directory) */
    discover_models(1);
    pthread_mutex_lock(&L.lock);
    size_t n0 = L.nmodels;
    lc_model_t *ms[LC_MAX_MODELS];
    memcpy(ms, L.models, n0 * sizeof *ms);
    pthread_mutex_unlock(&L.lock);
    if (n0 == 0)
        recd_log_warn("models_dir %s holds no models; only the health, stats and admin "
                      "endpoints are useful",
                      L.models_dir);
    for (size_t i = 0; i < n0; i++) {
        pthread_mutex_lock(&L.lock);
        int stop = L.stopping;
        pthread_mutex_unlock(&L.lock);
        if (stop)
            break;
        reconcile(ms[i], 1);
    }
    pthread_mutex_lock(&L.lock);
    L.initial_done = 1;
    int missing = count_missing();
    pthread_mutex_unlock(&L.lock);
    if (L.on_change)
        L.on_change(L.ctx, 1, missing);

    for (;;) {
        pthread_mutex_lock(&L.lock);
        if (L.stopping) {
            pthread_mutex_unlock(&L.lock);
            break;
        }
        lc_cmd_t *c = L.q_head;
        if (c) {
            L.q_head = c->next;
            if (!L.q_head)
                L.q_tail = NULL;
            L.q_len--;
            pthread_mutex_unlock(&L.lock);
            int64_t before[LC_MAX_MODELS];
            pthread_mutex_lock(&L.lock);
            size_t nm = L.nmodels;
            for (size_t i = 0; i < nm; i++)
                before[i] = L.models[i]->loads_failed * 1000003 + L.models[i]->swaps;
            pthread_mutex_unlock(&L.lock);
            run_command(c);
            free(c);
            int changed = 0;
            pthread_mutex_lock(&L.lock);
            for (size_t i = 0; i < L.nmodels; i++)
                changed |= i >= nm ||
                           before[i] != L.models[i]->loads_failed * 1000003 + L.models[i]->swaps;
            pthread_mutex_unlock(&L.lock);
            if (changed)
                notify_change();
            continue;
        }
        uint64_t now = recd_time_mono_us();
        uint64_t t = next_due_locked();
        if (t && t <= now) {
            /* debounce over, or a retry is due: reconcile what needs it */
            int debounce = L.debounce_at && L.debounce_at <= now;
            if (debounce)
                L.debounce_at = 0;
            size_t nm = L.nmodels;
            memcpy(ms, L.models, nm * sizeof *ms);
            int want[LC_MAX_MODELS];
            for (size_t i = 0; i < nm; i++) {
                want[i] = debounce && ms[i]->dirty;
                int64_t floor = ms[i]->serving > ms[i]->hold ? ms[i]->serving : ms[i]->hold;
                for (size_t j = 0; j < ms[i]->nv && !want[i]; j++) {
                    lc_ver_t *x = &ms[i]->v[j];
                    int candidate = ms[i]->pinned
                                        ? (x->version == ms[i]->pinned || ms[i]->serving == 0)
                                        : x->version > floor;
                    want[i] =
                        x->on_disk && x->state == VS_FAILED && candidate && x->retry_at <= now;
                }
            }
            pthread_mutex_unlock(&L.lock);
            int changed = 0;
            for (size_t i = 0; i < nm; i++)
                if (want[i])
                    changed |= reconcile(ms[i], 0) != 0;
            if (changed)
                notify_change();
            continue;
        }
        int timeout = -1;
        if (t) {
            uint64_t ms_left = (t - now + 999) / 1000;
            timeout = ms_left > INT_MAX ? INT_MAX : (int)ms_left;
        }
        int ifd = L.ifd;
        pthread_mutex_unlock(&L.lock);
        struct pollfd pfd[2] = {{L.efd, POLLIN, 0}, {ifd, POLLIN, 0}};
        int r = poll(pfd, ifd >= 0 ? 2 : 1, timeout);
        if (r < 0 && errno != EINTR) {
            recd_log_error("model lifecycle: poll: %s", strerror(errno));
            usleep(100000);
            continue;
        }
        if (r > 0 && (pfd[0].revents & POLLIN)) {
            uint64_t v;
            ssize_t rr = read(L.efd, &v, sizeof v);
            (void)rr;
        }
        if (r > 0 && ifd >= 0 && (pfd[1].revents & POLLIN))
            read_inotify();
    }
    return NULL;
}

/* ---- status ------------------------------------------------------------------------------------
 */

static json_t *opt_int(int64_t v)
{
    return v ? json_integer((json_int_t)v) : json_null();
}

/* One model's object (lock held). st: its registry status or NULL.
 * legacy_errors: last_error absent (not null) when there is none. */
static json_t *model_json(lc_model_t *m, const recd_model_status_t *st, int stats_form)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(m ? m->name : st->name));
    /* the flat fields /stats "models" has always had */
    json_object_set_new(o, "version", json_integer(st ? (json_int_t)st->version : 0));
    json_object_set_new(o, "items", json_integer(st ? (json_int_t)st->n_items : 0));
    json_object_set_new(o, "dim", json_integer(st ? (json_int_t)st->dim : 0));
    json_object_set_new(o, "index", json_string(st ? st->index : ""));
    json_object_set_new(o, "index_source", json_string(st && st->ann_from_file ? "file" : "built"));
    json_object_set_new(o, "load_ms", json_real(st ? st->load_ms : 0.0));
    json_object_set_new(o, "index_build_ms", json_real(st ? st->ann_build_ms : 0.0));
    json_object_set_new(o, "bytes", json_integer(st ? (json_int_t)st->bytes : 0));
    if (st && st->version)
        json_object_set_new(
            o, "serving",
            json_pack("{s:I,s:I,s:I,s:s,s:s,s:I,s:f,s:f}", "version", (json_int_t)st->version,
                      "n_items", (json_int_t)st->n_items, "dim", (json_int_t)st->dim, "index",
                      st->index, "index_source", st->ann_from_file ? "file" : "built", "bytes",
                      (json_int_t)st->bytes, "load_ms", st->load_ms, "loaded_at", st->loaded_at));
    else
        json_object_set_new(o, "serving", json_null());
    json_t *err = NULL;
    if (m && m->has_error)
        err = json_pack("{s:I,s:s,s:s,s:f}", "version", (json_int_t)m->err_version, "reason",
                        m->err_reason, "message", m->err_reason, "at", m->err_at);
    else if (!m && st && st->last_error[0])
        err = json_pack("{s:I,s:s,s:s}", "version", (json_int_t)st->failed_version, "reason",
                        st->last_error, "message", st->last_error);
    if (err)
        json_object_set_new(o, "last_error", err);
    else if (!stats_form)
        json_object_set_new(o, "last_error", json_null());
    json_object_set_new(o, "pinned", opt_int(m ? m->pinned : 0));
    json_object_set_new(o, "previous", opt_int(m ? rollback_target(m) : 0));
    json_t *disk = json_array();
    size_t ndisk = 0;
    for (size_t i = 0; m && i < m->nv; i++) {
        const lc_ver_t *x = &m->v[i];
        ndisk += x->on_disk;
        /* never loaded and older than what serves: a newer version arrived
         * first; nothing will load it unless asked (load, rollback) */
        const char *state = x->state == VS_PENDING && m->serving && x->version < m->serving
                                ? "superseded"
                                : VS_NAMES[x->state];
        json_t *e = json_pack("{s:I,s:s}", "version", (json_int_t)x->version, "state", state);
        if (x->state == VS_FAILED) {
            json_object_set_new(e, "error", json_string(x->error));
            json_object_set_new(e, "retry_at", json_real(x->retry_wall));
            json_object_set_new(e, "failures", json_integer(x->failures));
        }
        json_array_append_new(disk, e);
    }
    json_object_set_new(o, "on_disk", disk);
    json_object_set_new(o, "versions_on_disk", json_integer((json_int_t)ndisk));
    if (m && m->swaps)
        json_object_set_new(
            o, "last_swap",
            json_pack("{s:f,s:f,s:f,s:I,s:I}", "at", m->last_swap_at, "duration_ms",
                      m->last_swap_ms, "pointer_swap_us", st ? st->last_swap_us : 0.0, "from",
                      (json_int_t)m->last_swap_from, "to", (json_int_t)m->last_swap_to));
    else
        json_object_set_new(o, "last_swap", json_null());
    json_object_set_new(o, "swaps", json_integer(m ? (json_int_t)m->swaps : 0));
    json_object_set_new(o, "loads_failed", json_integer(m ? (json_int_t)m->loads_failed : 0));
    json_object_set_new(o, "waiting_to_free",
                        json_integer(st ? (json_int_t)st->waiting_to_free : 0));
    return o;
}

/* name -> model object, for every managed or registered model. */
static json_t *models_map(int stats_form)
{
    static recd_model_status_t st[LC_MAX_MODELS]; /* under L.lock */
    json_t *map = json_object();
    pthread_mutex_lock(&L.lock);
    size_t ns = recd_model_status_list(st, LC_MAX_MODELS);
    for (size_t i = 0; i < L.nmodels; i++) {
        const recd_model_status_t *s = NULL;
        for (size_t j = 0; j < ns && !s; j++)
            if (strcmp(st[j].name, L.models[i]->name) == 0)
                s = &st[j];
        json_object_set_new(map, L.models[i]->name, model_json(L.models[i], s, stats_form));
    }
    for (size_t j = 0; j < ns; j++)
        if (!json_object_get(map, st[j].name))
            json_object_set_new(map, st[j].name, model_json(NULL, &st[j], stats_form));
    pthread_mutex_unlock(&L.lock);
    return map;
}

static json_t *stats_models_json(void)
{
    return models_map(1);
}

json_t *recd_lc_status_json(void)
{
    json_t *map = models_map(0);
    pthread_mutex_lock(&L.lock);
    json_t *o = json_pack("{s:o,s:b,s:I}", "models", map, "watching", L.running && L.watching,
                          "queue", (json_int_t)L.q_len);
    pthread_mutex_unlock(&L.lock);
    return o;
}

void recd_lc_status_prom(char **buf, size_t *len, size_t *cap)
{
    static recd_model_status_t st[LC_MAX_MODELS]; /* under L.lock */
#define P(...) recd_stats_bufprintf(buf, len, cap, __VA_ARGS__)
    pthread_mutex_lock(&L.lock);
    size_t ns = recd_model_status_list(st, LC_MAX_MODELS);
    P("# HELP recd_model_version Version each model serves (0 = none).\n"
      "# TYPE recd_model_version gauge\n");
    for (size_t i = 0; i < L.nmodels; i++)
        P("recd_model_version{model=\"%s\"} %lld\n", L.models[i]->name,
          (long long)L.models[i]->serving);
    P("# HELP recd_model_swaps_total Versions put into service.\n"
      "# TYPE recd_model_swaps_total counter\n");
    for (size_t i = 0; i < L.nmodels; i++)
        P("recd_model_swaps_total{model=\"%s\"} %lld\n", L.models[i]->name,
          (long long)L.models[i]->swaps);
    P("# HELP recd_model_loads_failed_total Version loads that failed (validation, memory "
      "headroom, warmup).\n"
      "# TYPE recd_model_loads_failed_total counter\n");
    for (size_t i = 0; i < L.nmodels; i++)
        P("recd_model_loads_failed_total{model=\"%s\"} %lld\n", L.models[i]->name,
          (long long)L.models[i]->loads_failed);
    P("# HELP recd_model_versions_on_disk Version directories of each model.\n"
      "# TYPE recd_model_versions_on_disk gauge\n");
    for (size_t i = 0; i < L.nmodels; i++) {
        size_t n = 0;
        for (size_t j = 0; j < L.models[i]->nv; j++)
            n += L.models[i]->v[j].on_disk;
        P("recd_model_versions_on_disk{model=\"%s\"} %zu\n", L.models[i]->name, n);
    }
    P("# HELP recd_model_waiting_to_free Replaced versions still held by requests.\n"
      "# TYPE recd_model_waiting_to_free gauge\n");
    for (size_t i = 0; i < L.nmodels; i++) {
        size_t w = 0;
        for (size_t j = 0; j < ns; j++)
            if (strcmp(st[j].name, L.models[i]->name) == 0)
                w = st[j].waiting_to_free;
        P("recd_model_waiting_to_free{model=\"%s\"} %zu\n", L.models[i]->name, w);
    }
    P("# HELP recd_model_last_swap_seconds Time from the start of the last successful load to "
      "its swap into service.\n"
      "# TYPE recd_model_last_swap_seconds gauge\n");
    for (size_t i = 0; i < L.nmodels; i++)
        P("recd_model_last_swap_seconds{model=\"%s\"} %.6f\n", L.models[i]->name,
          L.models[i]->last_swap_ms / 1000.0);
    pthread_mutex_unlock(&L.lock);
#undef P
}

/* ---- start / stop ------------------------------------------------------------------------------
 */

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

static void free_opts(void)
{
    free(L.models_dir);
    free(L.names);
    free(L.state_file);
    free(L.ann_factory);
    L.models_dir = L.names = L.state_file = L.ann_factory = NULL;
}

int recd_lc_start(const recd_lc_opts_t *o, recd_err_t *err)
{
    if (!o || !o->models_dir || !*o->models_dir)
        return recd_err_set(err, RECD_EINVAL, "model lifecycle: models_dir is required");
    pthread_mutex_lock(&L.lock);
    int running = L.running;
    pthread_mutex_unlock(&L.lock);
    if (running)
        return recd_err_set(err, RECD_EINVAL, "model lifecycle: already started");
    L.models_dir = dup_or_empty(o->models_dir);
    L.names = dup_or_empty(o->names);
    L.state_file = dup_or_empty(o->state_file);
    L.ann_factory = dup_or_empty(o->model.ann_factory);
    if (!L.models_dir || !L.names || !L.state_file || !L.ann_factory) {
        free_opts();
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    }
    L.mopts = o->model;
    L.mopts.ann_factory = L.ann_factory;
    L.watch = o->watch;
    L.loader_nice = o->loader_nice;
    L.on_change = o->on_change;
    L.ctx = o->ctx;
    L.npins = 0;
    if (*L.state_file) {
        recd_err_t serr;
        int n = lc_state_read(L.state_file, L.pins, LC_MAX_PINS, &serr);
        if (n < 0)
            recd_log_error("model state file ignored (no pins applied): %s", serr.msg);
        else
            L.npins = (size_t)n;
        for (size_t i = 0; i < L.npins; i++)
            recd_log_info("model %s: pinned to version %lld (from %s)", L.pins[i].name,
                          (long long)L.pins[i].version, L.state_file);
    }
    L.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (L.efd < 0) {
        free_opts();
        return recd_err_set(err, RECD_EIO, "model lifecycle: eventfd: %s", strerror(errno));
    }
    L.stopping = 0;
    L.initial_done = 0;
    L.debounce_at = 0;
    L.running = 1;
    recd_model_registry_set_stats(stats_models_json, recd_lc_status_prom);
    if (pthread_create(&L.thread, NULL, manager_main, NULL) != 0) {
        recd_model_registry_set_stats(NULL, NULL);
        L.running = 0;
        close(L.efd);
        L.efd = -1;
        free_opts();
        return recd_err_set(err, RECD_ERR, "model lifecycle: cannot start the manager thread");
    }
    return 0;
}

void recd_lc_stop(void)
{
    pthread_mutex_lock(&L.lock);
    if (!L.running) {
        pthread_mutex_unlock(&L.lock);
        return;
    }
    L.stopping = 1;
    pthread_mutex_unlock(&L.lock);
    wake();
    pthread_join(L.thread, NULL);
    recd_model_registry_set_stats(NULL, NULL);
    /* commands nobody will run: tell their owners */
    pthread_mutex_lock(&L.lock);
    lc_cmd_t *c = L.q_head;
    L.q_head = L.q_tail = NULL;
    L.q_len = 0;
    pthread_mutex_unlock(&L.lock);
    while (c) {
        lc_cmd_t *next = c->next;
        recd_lc_result_t res = {0};
        res.rc = RECD_EAGAIN;
        snprintf(res.msg, sizeof res.msg, "recd is shutting down");
        finish(c, &res);
        free(c);
        c = next;
    }
    pthread_mutex_lock(&L.lock);
    for (size_t i = 0; i < L.nmodels; i++)
        free_model(L.models[i]);
    L.nmodels = 0;
    if (L.ifd >= 0)
        close(L.ifd);
    L.ifd = -1;
    L.root_wd = -1;
    L.watching = 0;
    close(L.efd);
    L.efd = -1;
    L.running = 0;
    L.stopping = 0;
    pthread_mutex_unlock(&L.lock);
    free_opts();
}
