/*
 * Unit tests for the model lifecycle manager (src/model/lifecycle.c).
 *
 * The pure parts (version listing and order, backoff, which versions
 * keep_versions deletes, MemAvailable parsing, the pin state file) are
 * tested directly: this file includes lifecycle.c to reach its static
 * helpers. Then the manager itself runs on small synthetic bundles and is
 * driven through the C API: load with and without pin, unpin, rollback,
 * rescans, keep_versions deletion, bad names, pins restored at start and
 * a corrupt state file ignored.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../src/model/lifecycle.c"

#include "recd/train.h"

/* ---- helpers ----------------------------------------------------------------------------------
 */

static int rmrf_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)f;
    return flag == FTW_DP ? rmdir(p) : unlink(p);
}

static void rm_rf(const char *path)
{
    nftw(path, rmrf_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static char *make_tmpdir(void)
{
    char *t = strdup("/tmp/recd-lc-XXXXXX");
    assert_non_null(t);
    assert_non_null(mkdtemp(t));
    return t;
}

static void mkdirf(const char *fmt, ...)
{
    char p[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p, sizeof p, fmt, ap);
    va_end(ap);
    assert_int_equal(mkdir(p, 0755), 0);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int path_exists(const char *fmt, ...)
{
    char p[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p, sizeof p, fmt, ap);
    va_end(ap);
    struct stat st;
    return lstat(p, &st) == 0;
}

/* ---- version listing ------------------------------------------------------------------------- */

static void test_list_versions(void **state)
{
    (void)state;
    char *d = make_tmpdir();
    mkdirf("%s/1", d);
    mkdirf("%s/10", d);
    mkdirf("%s/2", d);
    mkdirf("%s/007", d);    /* leading zero: not a version */
    mkdirf("%s/.tmp-3", d); /* a writer's temporary directory */
    mkdirf("%s/abc", d);
    mkdirf("%s/-4", d);
    mkdirf("%s/99999999999999999999", d); /* beyond int64 */
    char p[1100], target[1100];
    snprintf(p, sizeof p, "%s/5", d);
    write_text(p, "a file, not a directory");
    snprintf(target, sizeof target, "%s/10", d);
    snprintf(p, sizeof p, "%s/6", d);
    assert_int_equal(symlink(target, p), 0); /* a link to a directory counts */
    snprintf(p, sizeof p, "%s/7", d);
    assert_int_equal(symlink("/nonexistent/recd", p), 0); /* a dangling one does not */
    int64_t v[16];
    size_t n = lc_list_versions(d, v, 16);
    assert_int_equal(n, 4);
    assert_int_equal(v[0], 10);
    assert_int_equal(v[1], 6);
    assert_int_equal(v[2], 2);
    assert_int_equal(v[3], 1);
    /* capacity is respected */
    assert_true(lc_list_versions(d, v, 2) == 2);
    /* a missing directory has no versions */
    snprintf(p, sizeof p, "%s/nope", d);
    assert_int_equal(lc_list_versions(p, v, 16), 0);
    rm_rf(d);
    free(d);
}

/* ---- stale writer directories -------------------------------------------------------------- */

static void set_mtime(const char *path, time_t t)
{
    struct timespec ts[2] = {{t, 0}, {t, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static void test_clean_stale_tmp(void **state)
{
    (void)state;
    char *d = make_tmpdir();
    char p[1100];
    time_t now = time(NULL);
    /* old: the directory and its file untouched for an hour */
    mkdirf("%s/.tmp-2", d);
    snprintf(p, sizeof p, "%s/.tmp-2/tensors.bin", d);
    write_text(p, "x");
    set_mtime(p, now - 3600);
    snprintf(p, sizeof p, "%s/.tmp-2", d);
    set_mtime(p, now - 3600);
    /* an old directory with a file written just now: a live writer */
    mkdirf("%s/.tmp-3", d);
    snprintf(p, sizeof p, "%s/.tmp-3/tensors.bin", d);
    write_text(p, "x");
    snprintf(p, sizeof p, "%s/.tmp-3", d);
    set_mtime(p, now - 3600);
    /* fresh and empty */
    mkdirf("%s/.tmp-4", d);
    /* old, but not a temp directory: a version, a hidden directory */
    mkdirf("%s/1", d);
    mkdirf("%s/.keep", d);
    snprintf(p, sizeof p, "%s/1", d);
    set_mtime(p, now - 3600);
    snprintf(p, sizeof p, "%s/.keep", d);
    set_mtime(p, now - 3600);
    /* a file named like one is left alone */
    snprintf(p, sizeof p, "%s/.tmp-5", d);
    write_text(p, "x");
    set_mtime(p, now - 3600);
    assert_int_equal(lc_clean_stale_tmp(d, "m", now, 600), 1);
    assert_false(path_exists("%s/.tmp-2", d));
    assert_true(path_exists("%s/.tmp-3/tensors.bin", d));
    assert_true(path_exists("%s/.tmp-4", d));
    assert_true(path_exists("%s/1", d));
    assert_true(path_exists("%s/.keep", d));
    assert_true(path_exists("%s/.tmp-5", d));
    /* with a shorter limit the fresh ones go too (clocks: "now" 2 s ahead) */
    assert_int_equal(lc_clean_stale_tmp(d, "m", now + 2, 1), 2);
    assert_false(path_exists("%s/.tmp-3", d));
    assert_false(path_exists("%s/.tmp-4", d));
    /* a missing directory is nothing to do */
    snprintf(p, sizeof p, "%s/nope", d);
    assert_int_equal(lc_clean_stale_tmp(p, "m", now, 600), 0);
    rm_rf(d);
    free(d);
}

/* ---- backoff ----------------------------------------------------------------------------------
 */

static void test_backoff(void **state)
{
    (void)state;
    assert_int_equal(lc_backoff_ms(1000, 300000, 1), 1000);
    assert_int_equal(lc_backoff_ms(1000, 300000, 2), 2000);
    assert_int_equal(lc_backoff_ms(1000, 300000, 3), 4000);
    assert_int_equal(lc_backoff_ms(1000, 300000, 9), 256000);
    assert_int_equal(lc_backoff_ms(1000, 300000, 10), 300000);
    assert_int_equal(lc_backoff_ms(1000, 300000, 1000000), 300000);
    assert_int_equal(lc_backoff_ms(10, 10, 5), 10);
    /* a cap below the first delay: the first delay */
    assert_int_equal(lc_backoff_ms(500, 100, 3), 500);
    /* no overflow near INT64_MAX */
    assert_int_equal(lc_backoff_ms(INT64_MAX / 3, INT64_MAX, 10), INT64_MAX);
    /* never shrinks with more failures */
    int64_t prev = 0;
    for (int f = 1; f < 40; f++) {
        int64_t d = lc_backoff_ms(7, 86400000, f);
        assert_true(d >= prev);
        prev = d;
    }
}

/* ---- keep_versions ----------------------------------------------------------------------------
 */

static void test_pick_deletions(void **state)
{
    (void)state;
    const int64_t desc[] = {9, 8, 7, 6, 5, 4, 3, 2, 1};
    int64_t out[9];
    /* the newest 3 stay, plus the rollback target */
    size_t n = lc_pick_deletions(desc, 9, 3, 9, 0, 8, out);
    assert_int_equal(n, 6);
    assert_int_equal(out[0], 6);
    assert_int_equal(out[5], 1);
    /* an old serving version, its rollback target and a pin survive */
    n = lc_pick_deletions(desc, 9, 3, 2, 4, 1, out);
    assert_int_equal(n, 3);
    assert_int_equal(out[0], 6);
    assert_int_equal(out[1], 5);
    assert_int_equal(out[2], 3);
    /* keep_versions 1 with the newest serving: only it and the rollback target */
    n = lc_pick_deletions(desc, 9, 1, 9, 0, 5, out);
    assert_int_equal(n, 7);
    for (size_t i = 0; i < n; i++)
        assert_true(out[i] != 9 && out[i] != 5);
    /* nothing beyond keep: nothing deleted */
    assert_int_equal(lc_pick_deletions(desc, 9, 9, 9, 0, 0, out), 0);
    assert_int_equal(lc_pick_deletions(desc, 9, 100, 1, 0, 0, out), 0);
    assert_int_equal(lc_pick_deletions(desc, 0, 3, 0, 0, 0, out), 0);
    /* keep < 1 behaves as 1 (the serving version is never deleted anyway) */
    n = lc_pick_deletions(desc, 9, 0, 0, 0, 0, out);
    assert_int_equal(n, 8);
    assert_int_equal(out[0], 8);
}

/* ---- MemAvailable -----------------------------------------------------------------------------
 */

static void test_meminfo(void **state)
{
    (void)state;
    uint64_t b = 0;
    assert_int_equal(lc_parse_meminfo("MemTotal:       24683620 kB\n"
                                      "MemFree:         1000000 kB\n"
                                      "MemAvailable:   24197992 kB\n"
                                      "Buffers:           1234 kB\n",
                                      &b),
                     0);
    assert_true(b == 24197992ull * 1024);
    assert_int_equal(lc_parse_meminfo("MemAvailable: 0 kB", &b), 0);
    assert_true(b == 0);
    assert_int_equal(lc_parse_meminfo("MemTotal: 1 kB\nMemFree: 1 kB\n", &b), -1);
    assert_int_equal(lc_parse_meminfo("MemAvailable:  abc kB\n", &b), -1);
    assert_int_equal(lc_parse_meminfo("MemAvailable:  123\n", &b), -1);
    assert_int_equal(lc_parse_meminfo("MemAvailable:  99999999999999999999999 kB\n", &b), -1);
    assert_int_equal(lc_parse_meminfo("", &b), -1);
    /* a name that merely starts like it does not count */
    assert_int_equal(lc_parse_meminfo("XMemAvailable: 5 kB\n", &b), -1);
    /* the real file parses */
    uint64_t real = 0;
    assert_int_equal(mem_available(&real), 0);
    assert_true(real > 0);
}

/* ---- state file -------------------------------------------------------------------------------
 */

static void test_state_roundtrip(void **state)
{
    (void)state;
    char *d = make_tmpdir();
    char path[1100];
    snprintf(path, sizeof path, "%s/models.json", d);
    recd_err_t err;
    lc_pin_t pins[4] = {{"default", 7}, {"other.model-2", 123456789012LL}};
    lc_pin_t got[4];
    /* no file: no pins */
    assert_int_equal(lc_state_read(path, got, 4, &err), 0);
    assert_int_equal(lc_state_write(path, pins, 2, &err), 0);
    assert_false(path_exists("%s.tmp", path));
    int n = lc_state_read(path, got, 4, &err);
    assert_int_equal(n, 2);
    int seen = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(got[i].name, "default") == 0 && got[i].version == 7)
            seen |= 1;
        if (strcmp(got[i].name, "other.model-2") == 0 && got[i].version == 123456789012LL)
            seen |= 2;
    }
    assert_int_equal(seen, 3);
    /* an empty set round-trips too */
    assert_int_equal(lc_state_write(path, pins, 0, &err), 0);
    assert_int_equal(lc_state_read(path, got, 4, &err), 0);
    /* a missing directory is created (one level) */
    char sub[1200];
    snprintf(sub, sizeof sub, "%s/data/models.json", d);
    assert_int_equal(lc_state_write(sub, pins, 1, &err), 0);
    assert_int_equal(lc_state_read(sub, got, 4, &err), 1);
    /* an unwritable place fails with a message naming it */
    assert_int_equal(lc_state_write("/nonexistent/a/b/models.json", pins, 1, &err), RECD_EIO);
    assert_non_null(strstr(err.msg, "/nonexistent/a/b/models.json"));
    rm_rf(d);
    free(d);
}

static void test_state_corrupt(void **state)
{
    (void)state;
    static const struct {
        const char *text, *words;
    } bad[] = {
        {"", "not JSON"},
        {"{\"format\": \"recd-models-state/1\", \"pins\": {\"a\": 1}", "not JSON"},
        {"[]", "format"},
        {"{\"pins\": {}}", "format"},
        {"{\"format\": \"recd-models-state/2\", \"pins\": {}}", "format"},
        {"{\"format\": \"recd-models-state/1\"}", "pins"},
        {"{\"format\": \"recd-models-state/1\", \"pins\": []}", "pins"},
        {"{\"format\": \"recd-models-state/1\", \"pins\": {\"../x\": 1}}", "bad model name"},
        {"{\"format\": \"recd-models-state/1\", \"pins\": {\".hidden\": 1}}", "bad model name"},
        {"{\"format\": \"recd-models-state/1\", \"pins\": {\"a\": 0}}", "pins.a"},
        {"{\"format\": \"recd-models-state/1\", \"pins\": {\"a\": \"3\"}}", "pins.a"},
        {"{\"format\": \"recd-models-state/1\", \"pins\": {\"a\": 1.5}}", "pins.a"},
        {"{\"format\": \"recd-models-state/1\", \"pins\": {\"a\": 1, \"a\": 2}}", "not JSON"},
    };
    char *d = make_tmpdir();
    char path[1100];
    snprintf(path, sizeof path, "%s/models.json", d);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text(path, bad[i].text);
        lc_pin_t got[4];
        recd_err_t err = {0};
        assert_int_equal(lc_state_read(path, got, 4, &err), -1);
        if (!strstr(err.msg, bad[i].words) || !strstr(err.msg, path))
            fail_msg("case %zu: \"%s\" lacks \"%s\" or the path", i, err.msg, bad[i].words);
    }
    /* more pins than room */
    write_text(path, "{\"format\": \"recd-models-state/1\", \"pins\": {\"a\": 1, \"b\": 2}}");
    lc_pin_t one[1];
    recd_err_t err;
    assert_int_equal(lc_state_read(path, one, 1, &err), -1);
    /* unreadable: a directory */
    assert_int_equal(lc_state_read(d, one, 1, &err), -1);
    rm_rf(d);
    free(d);
}

static void test_valid_name(void **state)
{
    (void)state;
    assert_true(lc_valid_name("default"));
    assert_true(lc_valid_name("A-b_c.9"));
    assert_false(lc_valid_name(""));
    assert_false(lc_valid_name(NULL));
    assert_false(lc_valid_name(".x"));
    assert_false(lc_valid_name("a/b"));
    assert_false(lc_valid_name(".."));
    assert_false(lc_valid_name("a b"));
    char longname[80];
    memset(longname, 'a', 64);
    longname[64] = '\0';
    assert_false(lc_valid_name(longname));
    longname[63] = '\0';
    assert_true(lc_valid_name(longname));
}

/* ---- the manager on real bundles
 * ------------------------------------------------------------------ */

static pthread_mutex_t t_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t t_cond = PTHREAD_COND_INITIALIZER;
static int t_initial, t_missing, t_changes;

static void on_change(void *ctx, int initial_done, int missing)
{
    (void)ctx;
    pthread_mutex_lock(&t_lock);
    t_initial |= initial_done;
    t_missing = missing;
    t_changes++;
    pthread_cond_broadcast(&t_cond);
    pthread_mutex_unlock(&t_lock);
}

typedef struct waiter {
    int done;
    recd_lc_result_t res;
} waiter_t;

static void on_done(void *ctx, const recd_lc_result_t *res)
{
    waiter_t *w = ctx;
    pthread_mutex_lock(&t_lock);
    w->res = *res;
    w->done = 1;
    pthread_cond_broadcast(&t_cond);
    pthread_mutex_unlock(&t_lock);
}

static void wait_flag(int *flag)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 120;
    pthread_mutex_lock(&t_lock);
    while (!*flag)
        if (pthread_cond_timedwait(&t_cond, &t_lock, &ts) != 0)
            break;
    int ok = *flag;
    pthread_mutex_unlock(&t_lock);
    if (!ok)
        fail_msg("timed out waiting for the manager");
}

/* Run a command and wait for its result. */
#define RUN(call, w)                                                                               \
    do {                                                                                           \
        memset(&(w), 0, sizeof(w));                                                                \
        assert_int_equal((call), 0);                                                               \
        wait_flag(&(w).done);                                                                      \
    } while (0)

static void synth(const char *models, int64_t version)
{
    recd_synth_opts_t o;
    recd_train_synth_defaults(&o);
    o.models_dir = models;
    o.name = "m";
    o.version = version;
    o.n_items = 150;
    o.dim = 16;
    o.embed_dim = 8;
    o.hidden[0] = 16;
    o.rank_embed_dim = 4;
    o.rank_hidden[0] = 8;
    o.nrank_hidden = 1;
    o.seed = (uint64_t)version;
    o.write_index_file = 0;
    recd_err_t err;
    if (recd_train_synth_bundle(&o, &err) != 0)
        fail_msg("synth-bundle v%lld: %s", (long long)version, err.msg);
}

static int64_t serving_now(void)
{
    recd_bundle_t *b = recd_model_acquire("m");
    int64_t v = b ? b->version : 0;
    recd_model_release(b);
    return v;
}

static void start(const char *models, const char *state_file)
{
    pthread_mutex_lock(&t_lock);
    t_initial = 0;
    pthread_mutex_unlock(&t_lock);
    recd_lc_opts_t o = {
        .models_dir = models,
        .names = "m",
        .model = {"", 0, 0, 1, recd_rank_attach},
        .state_file = state_file,
        .watch = 0,
        .loader_nice = 5,
        .on_change = on_change,
        .ctx = NULL,
    };
    recd_err_t err;
    if (recd_lc_start(&o, &err) != 0)
        fail_msg("recd_lc_start: %s", err.msg);
    assert_int_not_equal(recd_lc_start(&o, &err), 0); /* only once */
    wait_flag(&t_initial);
}

/* The model's object in the status JSON (borrowed from *root). */
static json_t *model_status(json_t **root)
{
    *root = recd_lc_status_json();
    assert_non_null(*root);
    json_t *m = json_object_get(json_object_get(*root, "models"), "m");
    assert_non_null(m);
    return m;
}

static int64_t status_int(const char *key)
{
    json_t *root;
    json_t *m = model_status(&root);
    json_t *v = json_object_get(m, key);
    int64_t x = json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
    json_decref(root);
    return x;
}

static void test_manager_policy(void **state)
{
    (void)state;
    char *d = make_tmpdir();
    char models[1100], statef[1100];
    snprintf(models, sizeof models, "%s/models", d);
    snprintf(statef, sizeof statef, "%s/data/models.json", d);
    mkdirf("%s", models);
    synth(models, 1);
    synth(models, 2);
    recd_err_t err;
    assert_int_equal(recd_model_registry_init(&err), 0);

    /* commands are refused before the start */
    assert_int_equal(recd_lc_rescan(NULL, NULL, NULL), RECD_EAGAIN);

    start(models, statef);
    assert_int_equal(t_missing, 0);
    assert_int_equal(serving_now(), 2);
    assert_int_equal(status_int("pinned"), 0);
    assert_int_equal(status_int("previous"), 1); /* the rollback target */
    json_t *root = recd_lc_status_json();
    assert_true(json_is_false(json_object_get(root, "watching")));
    assert_int_equal(json_integer_value(json_object_get(root, "queue")), 0);
    json_decref(root);

    /* bad names are refused at once; unknown versions through the result */
    assert_int_equal(recd_lc_load("../m", 1, 1, NULL, NULL), RECD_EINVAL);
    assert_int_equal(recd_lc_load("other", 1, 1, NULL, NULL), RECD_EINVAL); /* not served */
    assert_int_equal(recd_lc_load("m", 0, 1, NULL, NULL), RECD_EINVAL);
    assert_int_equal(recd_lc_rollback(NULL, NULL, NULL), RECD_EINVAL);
    waiter_t w;
    RUN(recd_lc_load("m", 99, 1, on_done, &w), w);
    assert_int_equal(w.res.rc, RECD_ENOENT);
    assert_non_null(strstr(w.res.msg, "99"));
    assert_int_equal(w.res.version, 2);

    /* rollback: version 1, pinned, persisted */
    RUN(recd_lc_rollback("m", on_done, &w), w);
    assert_int_equal(w.res.rc, 0);
    assert_int_equal(w.res.version, 1);
    assert_int_equal(w.res.previous, 2);
    assert_int_equal(serving_now(), 1);
    assert_int_equal(status_int("pinned"), 1);
    lc_pin_t pins[4];
    assert_int_equal(lc_state_read(statef, pins, 4, &err), 1);
    assert_string_equal(pins[0].name, "m");
    assert_int_equal(pins[0].version, 1);
    /* nothing older: rollback says so */
    RUN(recd_lc_rollback("m", on_done, &w), w);
    assert_int_equal(w.res.rc, RECD_ENOENT);
    assert_int_equal(serving_now(), 1);

    /* a new version does not replace a pinned one */
    synth(models, 3);
    RUN(recd_lc_rescan("m", on_done, &w), w);
    assert_int_equal(w.res.rc, 0);
    assert_int_equal(serving_now(), 1);

    /* unpin: the newest valid version */
    RUN(recd_lc_unpin("m", on_done, &w), w);
    assert_int_equal(w.res.rc, 0);
    assert_int_equal(w.res.version, 3);
    assert_int_equal(serving_now(), 3);
    assert_int_equal(status_int("pinned"), 0);
    assert_int_equal(lc_state_read(statef, pins, 4, &err), 0);

    /* load without pin: held until something newer appears */
    RUN(recd_lc_load("m", 2, 0, on_done, &w), w);
    assert_int_equal(w.res.rc, 0);
    assert_int_equal(serving_now(), 2);
    RUN(recd_lc_rescan(NULL, on_done, &w), w);
    assert_int_equal(serving_now(), 2);
    synth(models, 4);
    RUN(recd_lc_rescan(NULL, on_done, &w), w);
    assert_int_equal(serving_now(), 4);
    /* keep_versions (3 by default): 4, 3 and 2 stay; 2 is also the
     * rollback target (served before 4); 1 is deleted */
    assert_false(path_exists("%s/m/1", models));
    assert_true(path_exists("%s/m/2", models));
    assert_true(path_exists("%s/m/3", models));
    assert_int_equal(status_int("previous"), 2);
    assert_int_equal(status_int("versions_on_disk"), 3);
    root = NULL;
    json_t *m = model_status(&root);
    json_t *disk = json_object_get(m, "on_disk");
    assert_int_equal(json_array_size(disk), 4); /* 4 3 2 on disk, 1 deleted */
    assert_string_equal(json_string_value(json_object_get(json_array_get(disk, 0), "state")),
                        "serving");
    assert_string_equal(json_string_value(json_object_get(json_array_get(disk, 3), "state")),
                        "deleted");
    json_t *ls = json_object_get(m, "last_swap");
    assert_int_equal(json_integer_value(json_object_get(ls, "from")), 2);
    assert_int_equal(json_integer_value(json_object_get(ls, "to")), 4);
    assert_true(json_real_value(json_object_get(ls, "duration_ms")) > 0);
    assert_true(json_is_null(json_object_get(m, "last_error")));
    assert_int_equal(json_integer_value(json_object_get(m, "swaps")), 5);
    json_decref(root);

    /* pin through load, then a restart restores it */
    RUN(recd_lc_load("m", 3, 1, on_done, &w), w);
    assert_int_equal(w.res.rc, 0);
    assert_int_equal(serving_now(), 3);
    recd_lc_stop();
    assert_int_equal(recd_lc_rescan(NULL, NULL, NULL), RECD_EAGAIN);
    recd_model_registry_shutdown();

    assert_int_equal(recd_model_registry_init(&err), 0);
    start(models, statef);
    assert_int_equal(serving_now(), 3);
    assert_int_equal(status_int("pinned"), 3);
    recd_lc_stop();
    recd_model_registry_shutdown();

    /* a corrupt state file is ignored: the newest version serves */
    write_text(statef, "{\"format\": \"recd-models-state/1\", \"pins\": {\"m\": \"3\"");
    assert_int_equal(recd_model_registry_init(&err), 0);
    start(models, statef);
    assert_int_equal(serving_now(), 4);
    assert_int_equal(status_int("pinned"), 0);
    recd_lc_stop();
    recd_model_registry_shutdown();

    /* a pin on a version no longer on disk is dropped at start */
    lc_pin_t gone = {"m", 1};
    assert_int_equal(lc_state_write(statef, &gone, 1, &err), 0);
    assert_int_equal(recd_model_registry_init(&err), 0);
    start(models, statef);
    assert_int_equal(serving_now(), 4);
    assert_int_equal(status_int("pinned"), 0);
    assert_int_equal(lc_state_read(statef, pins, 4, &err), 0);
    recd_lc_stop();
    recd_model_registry_shutdown();
    rm_rf(d);
    free(d);
}

/* Bad versions are never served, retried with backoff, and commands still
 * work; a missing model makes `missing` non-zero. */
static void test_manager_failures(void **state)
{
    (void)state;
    char *d = make_tmpdir();
    char models[1100], p[1200];
    snprintf(models, sizeof models, "%s/models", d);
    mkdirf("%s", models);
    synth(models, 1);
    synth(models, 2);
    /* version 2: a damaged tensor file */
    snprintf(p, sizeof p, "%s/m/2/tensors.bin", models);
    FILE *f = fopen(p, "r+b");
    assert_non_null(f);
    fseek(f, 100, SEEK_SET);
    fputc(0x5a, f);
    fclose(f);
    recd_err_t err;
    assert_int_equal(recd_model_registry_init(&err), 0);
    start(models, "");
    assert_int_equal(t_missing, 0);
    assert_int_equal(serving_now(), 1);
    json_t *root;
    json_t *m = model_status(&root);
    json_t *le = json_object_get(m, "last_error");
    assert_int_equal(json_integer_value(json_object_get(le, "version")), 2);
    assert_non_null(strstr(json_string_value(json_object_get(le, "reason")), "SHA-256"));
    assert_int_equal(json_integer_value(json_object_get(m, "loads_failed")), 1);
    json_t *v2 = json_array_get(json_object_get(m, "on_disk"), 0);
    assert_string_equal(json_string_value(json_object_get(v2, "state")), "failed");
    assert_true(json_real_value(json_object_get(v2, "retry_at")) > recd_time_wall());
    json_decref(root);
    /* loading it by hand fails the same way and changes nothing */
    waiter_t w;
    RUN(recd_lc_load("m", 2, 1, on_done, &w), w);
    assert_int_not_equal(w.res.rc, 0);
    assert_non_null(strstr(w.res.msg, "SHA-256"));
    assert_int_equal(w.res.version, 1);
    assert_int_equal(serving_now(), 1);
    assert_int_equal(status_int("pinned"), 0);
    /* the backoff retry (1 s, then 2 s) happens without anyone asking */
    uint64_t t0 = recd_time_mono_us();
    while (status_int("loads_failed") < 3 && recd_time_mono_us() - t0 < 10000000)
        usleep(50000);
    assert_true(status_int("loads_failed") >= 3);
    assert_int_equal(serving_now(), 1);
    /* the Prometheus lines */
    char *buf = NULL;
    size_t len = 0, cap = 0;
    recd_lc_status_prom(&buf, &len, &cap);
    assert_non_null(buf);
    assert_non_null(strstr(buf, "recd_model_version{model=\"m\"} 1\n"));
    assert_non_null(strstr(buf, "recd_model_versions_on_disk{model=\"m\"} 2\n"));
    assert_non_null(strstr(buf, "recd_model_waiting_to_free{model=\"m\"} "));
    assert_non_null(strstr(buf, "# TYPE recd_model_swaps_total counter"));
    free(buf);
    recd_lc_stop();
    recd_model_registry_shutdown();
    rm_rf(d);
    free(d);
}

static void test_manager_missing_model(void **state)
{
    (void)state;
    char *d = make_tmpdir();
    recd_err_t err;
    assert_int_equal(recd_model_registry_init(&err), 0);
    start(d, NULL);
    assert_int_equal(t_missing, 1);
    json_t *root;
    json_t *m = model_status(&root);
    assert_true(json_is_null(json_object_get(m, "serving")));
    assert_non_null(
        strstr(json_string_value(json_object_get(json_object_get(m, "last_error"), "message")),
               "no version directories"));
    json_decref(root);
    waiter_t w;
    RUN(recd_lc_rollback("m", on_done, &w), w);
    assert_int_equal(w.res.rc, RECD_ENOENT);
    recd_lc_stop();
    recd_model_registry_shutdown();
    rm_rf(d);
    free(d);
}

int main(void)
{
    recd_log_set_level(RECD_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_versions),
        cmocka_unit_test(test_clean_stale_tmp),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_pick_deletions),
        cmocka_unit_test(test_meminfo),
        cmocka_unit_test(test_state_roundtrip),
        cmocka_unit_test(test_state_corrupt),
        cmocka_unit_test(test_valid_name),
        cmocka_unit_test(test_manager_policy),
        cmocka_unit_test(test_manager_failures),
        cmocka_unit_test(test_manager_missing_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
