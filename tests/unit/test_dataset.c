/*
 * Unit tests for datasets (src/train/dataset.c), the synthetic world
 * (src/train/world.c) and the MovieLens importer (src/train/import.c).
 * Fixtures are tiny hand-written files in a temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "recd/core.h"
#include "recd/dataset.h"

/* ---- helpers ------------------------------------------------------------------------- */

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)f;
    return flag == FTW_DP ? rmdir(p) : unlink(p);
}

static void rm_rf(const char *path)
{
    nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/recd-test-dataset-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static void write_file(const char *dir, const char *name, const char *data, size_t len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void write_str(const char *dir, const char *name, const char *data)
{
    write_file(dir, name, data, strlen(data));
}

static char *slurp(const char *dir, const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

static void assert_same_file(const char *a, const char *b, const char *name)
{
    size_t la, lb;
    char *x = slurp(a, name, &la), *y = slurp(b, name, &lb);
    assert_non_null(x);
    assert_non_null(y);
    if (la != lb || memcmp(x, y, la) != 0)
        fail_msg("%s differs between %s and %s", name, a, b);
    free(x);
    free(y);
}

static int path_exists(const char *fmt, ...)
{
    char path[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    struct stat st;
    return lstat(path, &st) == 0;
}

static const char *cell(const recd_table_t *t, size_t row, const char *col)
{
    int c = recd_table_col(t, col);
    assert_true(c >= 0);
    return t->cells[row * t->ncols + (size_t)c];
}

static const char *ITEM_COLS[] = {"id", "title", "genres"};
static const char *USER_COLS[] = {"id", "age"};
static const char *CTX[] = {"device"};

/* A small dataset with context and truth. */
static recd_dataset_t *small_dataset(void)
{
    recd_err_t err = {0};
    recd_dataset_t *ds = recd_dataset_new("unit test", 1, ITEM_COLS, 3, USER_COLS, 2, CTX, 1, &err);
    assert_non_null(ds);
    const char *items[][3] = {{"a", "Alpha", "Comedy|Drama"}, {"b", "Béta", ""}, {"c", "", "War"}};
    for (int i = 0; i < 3; i++)
        assert_int_equal(recd_dataset_add_item(ds, items[i], &err), i);
    const char *users[][2] = {{"u1", "30"}, {"u2", ""}};
    for (int i = 0; i < 2; i++)
        assert_int_equal(recd_dataset_add_user(ds, users[i], &err), i);
    const char *m[1] = {"mobile"}, *t[1] = {"tv"}, *e[1] = {""};
    assert_int_equal(recd_dataset_add_event(ds, 1, 2, 200, RECD_EV_WATCH, 0.1f, t, &err), 0);
    assert_int_equal(recd_dataset_add_event(ds, 0, 0, 100, RECD_EV_IMPRESSION, 0, m, &err), 0);
    assert_int_equal(recd_dataset_add_event(ds, 0, 0, 100, RECD_EV_CLICK, 0, m, &err), 0);
    assert_int_equal(recd_dataset_add_event(ds, 0, 1, -5, RECD_EV_PURCHASE, 123456.7f, e, &err), 0);
    assert_int_equal(recd_dataset_add_event(ds, 1, 0, 100, RECD_EV_WATCH, 1e-7f, m, &err), 0);
    assert_int_equal(recd_dataset_sort_events(ds, &err), 0);
    float *uf = malloc(2 * 2 * sizeof *uf), *itf = malloc(3 * 2 * sizeof *itf),
          *ib = malloc(3 * sizeof *ib);
    for (int i = 0; i < 4; i++)
        uf[i] = (float)i * 0.1f - 0.2f;
    for (int i = 0; i < 6; i++)
        itf[i] = 1.0f / (float)(i + 3);
    for (int i = 0; i < 3; i++)
        ib[i] = (float)i - 1.5f;
    recd_dataset_set_truth(ds, 2, uf, itf, ib);
    return ds;
}

static void assert_same_dataset(const recd_dataset_t *a, const recd_dataset_t *b)
{
    assert_string_equal(a->source, b->source);
    assert_int_equal(a->implicit, b->implicit);
    const recd_table_t *ta[2] = {&a->items, &a->users}, *tb[2] = {&b->items, &b->users};
    for (int t = 0; t < 2; t++) {
        assert_int_equal(ta[t]->nrows, tb[t]->nrows);
        assert_int_equal(ta[t]->ncols, tb[t]->ncols);
        for (size_t c = 0; c < ta[t]->ncols; c++)
            assert_string_equal(ta[t]->names[c], tb[t]->names[c]);
        for (size_t k = 0; k < ta[t]->nrows * ta[t]->ncols; k++)
            assert_string_equal(ta[t]->cells[k], tb[t]->cells[k]);
    }
    assert_int_equal(a->nevents, b->nevents);
    assert_int_equal(a->nctx, b->nctx);
    for (size_t e = 0; e < a->nevents; e++) {
        const recd_event_t *x = &a->events[e], *y = &b->events[e];
        assert_int_equal(x->user, y->user);
        assert_int_equal(x->item, y->item);
        assert_int_equal(x->ts, y->ts);
        assert_int_equal(x->type, y->type);
        assert_true(x->value == y->value);
        for (size_t c = 0; c < a->nctx; c++)
            assert_string_equal(a->ctx[e * a->nctx + c], b->ctx[e * b->nctx + c]);
    }
    assert_int_equal(a->nfactors, b->nfactors);
    assert_int_equal(!!a->user_factors, !!b->user_factors);
    assert_int_equal(!!a->item_bias, !!b->item_bias);
    if (a->user_factors) {
        assert_memory_equal(a->user_factors, b->user_factors,
                            a->users.nrows * a->nfactors * sizeof(float));
        assert_memory_equal(a->item_factors, b->item_factors,
                            a->items.nrows * a->nfactors * sizeof(float));
    }
    if (a->item_bias)
        assert_memory_equal(a->item_bias, b->item_bias, a->items.nrows * sizeof(float));
}

static const char *const FILES[] = {"meta.json",
                                    "items.tsv",
                                    "users.tsv",
                                    "events.tsv",
                                    "truth/user_factors.tsv",
                                    "truth/item_factors.tsv"};

/* ---- types, building, lookups ---------------------------------------------------------- */

static void test_type_names(void **state)
{
    for (int t = 0; t < RECD_EV_NTYPES; t++) {
        const char *n = recd_ev_type_name((recd_ev_type_t)t);
        assert_non_null(n);
        assert_int_equal(recd_ev_type_parse(n, strlen(n)), t);
    }
    assert_string_equal(recd_ev_type_name(RECD_EV_IMPRESSION), "impression");
    assert_null(recd_ev_type_name((recd_ev_type_t)5));
    assert_int_equal(recd_ev_type_parse("Click", 5), -1);
    assert_int_equal(recd_ev_type_parse("clicks", 6), -1);
    assert_int_equal(recd_ev_type_parse("click", 4), -1);
    assert_int_equal(recd_ev_type_parse("rating", 6), RECD_EV_RATING);
}

static void test_build_and_lookup(void **state)
{
    recd_err_t err = {0};
    /* columns must start with id and be distinct */
    const char *bad_cols[] = {"title", "id"};
    assert_null(recd_dataset_new("x", 0, bad_cols, 2, USER_COLS, 2, NULL, 0, &err));
    const char *dup_cols[] = {"id", "t", "t"};
    assert_null(recd_dataset_new("x", 0, dup_cols, 3, USER_COLS, 2, NULL, 0, &err));
    assert_non_null(strstr(err.msg, "'t' appears twice"));
    const char *clash[] = {"ts"};
    assert_null(recd_dataset_new("x", 0, ITEM_COLS, 3, USER_COLS, 2, clash, 1, &err));

    recd_dataset_t *ds = small_dataset();
    assert_int_equal(recd_table_col(&ds->items, "id"), 0);
    assert_int_equal(recd_table_col(&ds->items, "genres"), 2);
    assert_int_equal(recd_table_col(&ds->items, "nope"), -1);
    assert_int_equal(recd_dataset_item_row(ds, "a"), 0);
    assert_int_equal(recd_dataset_item_row(ds, "c"), 2);
    assert_int_equal(recd_dataset_item_row(ds, "d"), -1);
    assert_int_equal(recd_dataset_item_row(ds, ""), -1);
    assert_int_equal(recd_dataset_user_row(ds, "u2"), 1);
    assert_int_equal(recd_dataset_user_row(ds, "a"), -1);

    /* refused rows and events */
    const char *dup[3] = {"b", "x", "y"};
    assert_true(recd_dataset_add_item(ds, dup, &err) < 0);
    assert_non_null(strstr(err.msg, "duplicate item id 'b'"));
    const char *noid[3] = {"", "x", "y"};
    assert_true(recd_dataset_add_item(ds, noid, &err) < 0);
    const char *tab[3] = {"d", "x\ty", ""};
    assert_true(recd_dataset_add_item(ds, tab, &err) < 0);
    assert_non_null(strstr(err.msg, "title"));
    const char *nl[2] = {"u3", "1\n"};
    assert_true(recd_dataset_add_user(ds, nl, &err) < 0);
    assert_int_equal(ds->items.nrows, 3);
    assert_int_equal(ds->users.nrows, 2);
    assert_int_equal(recd_dataset_add_event(ds, 2, 0, 1, RECD_EV_CLICK, 0, NULL, &err),
                     RECD_EINVAL);
    assert_int_equal(recd_dataset_add_event(ds, 0, 3, 1, RECD_EV_CLICK, 0, NULL, &err),
                     RECD_EINVAL);
    assert_int_equal(recd_dataset_add_event(ds, 0, 0, 1, (recd_ev_type_t)9, 0, NULL, &err),
                     RECD_EINVAL);
    assert_int_equal(recd_dataset_add_event(ds, 0, 0, 1, RECD_EV_WATCH, NAN, NULL, &err),
                     RECD_EINVAL);
    const char *cr[1] = {"a\rb"};
    assert_int_equal(recd_dataset_add_event(ds, 0, 0, 1, RECD_EV_WATCH, 1, cr, &err), RECD_EINVAL);
    assert_int_equal(ds->nevents, 5);

    /* set_cell: not the id, not out of range */
    assert_int_equal(recd_dataset_set_cell(ds, &ds->items, 1, 2, "Horror", &err), 0);
    assert_string_equal(cell(&ds->items, 1, "genres"), "Horror");
    assert_int_equal(recd_dataset_set_cell(ds, &ds->items, 1, 0, "z", &err), RECD_EINVAL);
    assert_int_equal(recd_dataset_set_cell(ds, &ds->items, 3, 1, "z", &err), RECD_EINVAL);
    assert_int_equal(recd_dataset_set_cell(ds, &ds->users, 0, 1, "a\tb", &err), RECD_EINVAL);

    /* many rows: the hash tables grow and keep every id */
    for (int i = 0; i < 5000; i++) {
        char id[16];
        snprintf(id, sizeof id, "n%d", i);
        const char *row[3] = {id, "t", ""};
        assert_int_equal(recd_dataset_add_item(ds, row, &err), 3 + i);
    }
    for (int i = 0; i < 5000; i += 7) {
        char id[16];
        snprintf(id, sizeof id, "n%d", i);
        assert_int_equal(recd_dataset_item_row(ds, id), 3 + i);
    }
    assert_int_equal(recd_dataset_item_row(ds, "a"), 0);
    recd_dataset_free(ds);
    recd_dataset_free(NULL);
}

/* Reference order for the canonical sort. */
static const recd_dataset_t *g_ref;
static int ref_cmp(const void *pa, const void *pb)
{
    size_t i = *(const size_t *)pa, j = *(const size_t *)pb;
    const recd_event_t *a = &g_ref->events[i], *b = &g_ref->events[j];
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    if (a->user != b->user)
        return a->user < b->user ? -1 : 1;
    if (a->item != b->item)
        return a->item < b->item ? -1 : 1;
    if (a->type != b->type)
        return a->type < b->type ? -1 : 1;
    if (a->value != b->value)
        return a->value < b->value ? -1 : 1;
    return strcmp(g_ref->ctx[i], g_ref->ctx[j]);
}

static void test_canonical_sort(void **state)
{
    recd_err_t err = {0};
    recd_dataset_t *ds = recd_dataset_new("s", 1, ITEM_COLS, 3, USER_COLS, 2, CTX, 1, &err);
    assert_non_null(ds);
    for (int i = 0; i < 5; i++) {
        char id[8];
        snprintf(id, sizeof id, "i%d", i);
        const char *r[3] = {id, "", ""};
        assert_true(recd_dataset_add_item(ds, r, &err) >= 0);
        snprintf(id, sizeof id, "u%d", i);
        const char *ur[2] = {id, ""};
        assert_true(recd_dataset_add_user(ds, ur, &err) >= 0);
    }
    /* many ties: few timestamps (also far apart, negative), users, items */
    static const char *const DEV[] = {"tv", "mobile", "desktop"};
    static const int64_t TS[] = {-100, 0, 7, 1LL << 40, 5};
    uint64_t x = 42;
    size_t n = 3000;
    for (size_t k = 0; k < n; k++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        uint32_t h = (uint32_t)(x >> 33);
        const char *c[1] = {DEV[h % 3]};
        assert_int_equal(recd_dataset_add_event(ds, (h >> 2) % 5, (h >> 5) % 5, TS[(h >> 8) % 5],
                                                (recd_ev_type_t)((h >> 11) % 5),
                                                (float)((h >> 14) % 3) * 0.5f, c, &err),
                         0);
    }
    /* the expected order, from a copy */
    size_t *perm = malloc(n * sizeof *perm);
    for (size_t k = 0; k < n; k++)
        perm[k] = k;
    g_ref = ds;
    qsort(perm, n, sizeof *perm, ref_cmp);
    recd_event_t *want = malloc(n * sizeof *want);
    const char **want_ctx = malloc(n * sizeof *want_ctx);
    for (size_t k = 0; k < n; k++) {
        want[k] = ds->events[perm[k]];
        want_ctx[k] = ds->ctx[perm[k]];
    }
    assert_int_equal(recd_dataset_sort_events(ds, &err), 0);
    for (size_t k = 0; k < n; k++) {
        assert_int_equal(ds->events[k].ts, want[k].ts);
        assert_int_equal(ds->events[k].user, want[k].user);
        assert_int_equal(ds->events[k].item, want[k].item);
        assert_int_equal(ds->events[k].type, want[k].type);
        assert_true(ds->events[k].value == want[k].value);
        assert_string_equal(ds->ctx[k], want_ctx[k]);
    }
    /* sorting a sorted dataset changes nothing */
    assert_int_equal(recd_dataset_sort_events(ds, &err), 0);
    assert_string_equal(ds->ctx[n - 1], want_ctx[n - 1]);
    free(perm);
    free(want);
    free(want_ctx);
    recd_dataset_free(ds);

    /* without context columns */
    ds = recd_dataset_new("s", 0, ITEM_COLS, 3, USER_COLS, 2, NULL, 0, &err);
    const char *r[3] = {"i", "", ""}, *ur[2] = {"u", ""}, *ur2[2] = {"v", ""};
    recd_dataset_add_item(ds, r, &err);
    recd_dataset_add_user(ds, ur, &err);
    recd_dataset_add_user(ds, ur2, &err);
    recd_dataset_add_event(ds, 1, 0, 5, RECD_EV_RATING, 4, NULL, &err);
    recd_dataset_add_event(ds, 0, 0, 5, RECD_EV_RATING, 3, NULL, &err);
    recd_dataset_add_event(ds, 0, 0, 1, RECD_EV_RATING, 5, NULL, &err);
    recd_dataset_add_event(ds, 0, 0, 5, RECD_EV_RATING, 2.5f, NULL, &err);
    assert_int_equal(recd_dataset_sort_events(ds, &err), 0);
    assert_int_equal(ds->events[0].ts, 1);
    assert_true(ds->events[1].value == 2.5f && ds->events[1].user == 0);
    assert_true(ds->events[2].value == 3.0f);
    assert_int_equal(ds->events[3].user, 1);
    recd_dataset_free(ds);
}

/* ---- save / load ---------------------------------------------------------------------------- */

static void test_round_trip(void **state)
{
    setenv("SOURCE_DATE_EPOCH", "1767225600", 1);
    char *root = make_tmpdir();
    char d1[1100], d2[1100];
    snprintf(d1, sizeof d1, "%s/sub/one", root); /* parents are created */
    snprintf(d2, sizeof d2, "%s/two", root);
    recd_err_t err = {0};
    recd_dataset_t *ds = small_dataset();
    assert_int_equal(recd_dataset_save(ds, d1, 0, &err), 0);
    assert_false(path_exists("%s.tmp-%ld", d1, (long)getpid()));
    recd_dataset_t *back = NULL;
    if (recd_dataset_load(d1, &back, &err) != 0)
        fail_msg("load: %s", err.msg);
    assert_same_dataset(ds, back);
    assert_string_equal(cell(&back->items, 1, "title"), "Béta");
    assert_true(back->events[0].ts == -5);
    assert_true(back->events[0].value == 123456.7f);
    assert_string_equal(back->ctx[0], "");
    assert_int_equal(recd_dataset_item_row(back, "c"), 2);
    /* a second save of the loaded copy is byte-identical */
    assert_int_equal(recd_dataset_save(back, d2, 0, &err), 0);
    for (size_t f = 0; f < sizeof FILES / sizeof FILES[0]; f++)
        assert_same_file(d1, d2, FILES[f]);
    size_t len;
    char *ev = slurp(d1, "events.tsv", &len);
    assert_non_null(strstr(ev, "user\titem\tts\ttype\tvalue\tdevice\n"));
    assert_non_null(strstr(ev, "u2\tc\t200\twatch\t0.1\ttv\n"));
    assert_non_null(strstr(ev, "u2\ta\t100\twatch\t1e-07\tmobile\n"));
    assert_non_null(strstr(ev, "u1\tb\t-5\tpurchase\t123456.7"));
    free(ev);
    char *meta = slurp(d1, "meta.json", &len);
    assert_non_null(strstr(meta, "\"created\": \"2026-01-01T00:00:00Z\""));
    assert_non_null(strstr(meta, "\"truth\": true"));
    assert_non_null(strstr(meta, "\"kind\": \"implicit\""));
    free(meta);

    /* an existing directory is refused without overwrite ... */
    assert_int_equal(recd_dataset_save(ds, d1, 0, &err), RECD_EINVAL);
    assert_non_null(strstr(err.msg, "already exists"));
    /* ... and replaced with it */
    recd_dataset_free(back);
    const char *r[3] = {"zz", "new", ""};
    assert_true(recd_dataset_add_item(ds, r, &err) >= 0);
    recd_dataset_set_truth(ds, 0, NULL, NULL, NULL);
    assert_int_equal(recd_dataset_save(ds, d1, 1, &err), 0);
    assert_int_equal(recd_dataset_load(d1, &back, &err), 0);
    assert_int_equal(back->items.nrows, 4);
    assert_null(back->user_factors);
    assert_false(path_exists("%s/truth", d1));
    recd_dataset_free(back);
    /* a directory that is not a dataset is never replaced; an empty one is */
    char other[1100];
    snprintf(other, sizeof other, "%s/other", root);
    mkdir(other, 0755);
    write_str(other, "precious.txt", "keep me");
    assert_int_equal(recd_dataset_save(ds, other, 1, &err), RECD_EINVAL);
    assert_non_null(strstr(err.msg, "not a dataset"));
    assert_true(path_exists("%s/precious.txt", other));
    unlink(strcat(other, "/precious.txt"));
    other[strlen(other) - strlen("/precious.txt")] = '\0';
    assert_int_equal(recd_dataset_save(ds, other, 1, &err), 0);
    assert_true(path_exists("%s/meta.json", other));
    /* a trailing slash names the same directory */
    char slash[1200];
    snprintf(slash, sizeof slash, "%s/slash/", root);
    assert_int_equal(recd_dataset_save(ds, slash, 0, &err), 0);
    assert_true(path_exists("%s/slash/events.tsv", root));
    assert_int_equal(recd_dataset_save(ds, slash, 1, &err), 0);
    assert_int_equal(recd_dataset_load(slash, &back, &err), 0);
    recd_dataset_free(back);
    assert_int_equal(recd_dataset_save(ds, "/", 1, &err), RECD_EINVAL);
    /* a missing directory */
    assert_int_equal(recd_dataset_load("/nonexistent/recd-dataset", &back, &err), RECD_ENOENT);
    assert_non_null(strstr(err.msg, "meta.json"));
    recd_dataset_free(ds);
    rm_rf(root);
    free(root);
    unsetenv("SOURCE_DATE_EPOCH");
}

typedef struct load_case {
    const char *file;    /* replaced file */
    const char *content; /* its new content (NULL: delete it) */
    size_t len;          /* 0: strlen(content) */
    const char *expect;  /* substring of the error */
} load_case_t;

static void test_load_errors(void **state)
{
    static const char META_OK[] =
        "{\"format\": \"recd-dataset/1\", \"source\": \"t\", \"kind\": \"explicit\", "
        "\"created\": \"x\", \"counts\": {\"users\": 2, \"items\": 2, \"events\": 2}, "
        "\"truth\": true}\n";
    static const char ITEMS_OK[] = "id\ttitle\na\tA\nb\tB\n";
    static const char USERS_OK[] = "id\nu1\nu2\n";
    static const char EVENTS_OK[] = "user\titem\tts\ttype\tvalue\nu1\ta\t5\trating\t4\n"
                                    "u2\tb\t3\trating\t3.5\n";
    static const char UF_OK[] = "id\tf0\tf1\nu1\t1\t2\nu2\t3\t4\n";
    static const char IF_OK[] = "id\tf0\tf1\tbias\na\t1\t2\t0.5\nb\t3\t4\t-1\n";
    static const load_case_t cases[] = {
        {"items.tsv", "id\ttitle\na\tA\na\tB\n", 0,
         "items.tsv:3: duplicate id 'a' (first on line 2)"},
        {"items.tsv", "id\ttitle\na\tA\tX\nb\tB\n", 0, "items.tsv:2: expected 2 columns, found 3"},
        {"items.tsv", "id\ttitle\na\nb\tB\n", 0, "items.tsv:2: expected 2 columns, found 1"},
        {"items.tsv", "name\ttitle\na\tA\nb\tB\n", 0, "items.tsv:1: the first column must be"},
        {"items.tsv", "id\ttitle\na\tA\r\nb\tB\r\n", 0, "items.tsv:2: carriage return"},
        {"items.tsv", "", 0, "items.tsv:1: empty file"},
        {"items.tsv", "id\ttitle\n\tA\nb\tB\n", 0, "items.tsv:2: empty id"},
        {"items.tsv", "id\ttitle\ttitle\n", 0, "items.tsv:1: column 'title' appears twice"},
        {"items.tsv", "id\t\n", 0, "items.tsv:1: header column 2 has no name"},
        {"items.tsv", "id\ttitle\na\tA\0x\nb\tB\n", 20, "items.tsv:2: NUL byte"},
        {"items.tsv", NULL, 0, "items.tsv: No such file"},
        {"users.tsv", "id\nu1\nu1\n", 0, "users.tsv:3: duplicate id 'u1'"},
        {"users.tsv", "id\nu1\n\n", 0, "users.tsv:3: empty id"},
        {"events.tsv", "user\titem\tts\ttype\tvalue\nu1\ta\t5\tclack\t4\nu2\tb\t3\trating\t3\n", 0,
         "events.tsv:2: unknown type 'clack'"},
        {"events.tsv", "user\titem\tts\ttype\tvalue\nu1\ta\t5\trating\t4\nu2\tb\t3x\trating\t3\n",
         0, "events.tsv:3: ts '3x' is not an integer"},
        {"events.tsv", "user\titem\tts\ttype\tvalue\nu1\ta\t\trating\t4\nu2\tb\t3\trating\t3\n", 0,
         "events.tsv:2: ts '' is not an integer"},
        {"events.tsv",
         "user\titem\tts\ttype\tvalue\nu1\ta\t99999999999999999999\trating\t4\nu2\tb\t3\trating\t3"
         "\n",
         0, "events.tsv:2: ts '99999999999999999999'"},
        {"events.tsv", "user\titem\tts\ttype\tvalue\nu1\ta\t5\trating\tfour\nu2\tb\t3\trating\t3\n",
         0, "events.tsv:2: value 'four' is not a finite number"},
        {"events.tsv", "user\titem\tts\ttype\tvalue\nu1\ta\t5\trating\tnan\nu2\tb\t3\trating\t3\n",
         0, "events.tsv:2: value 'nan'"},
        {"events.tsv",
         "user\titem\tts\ttype\tvalue\nu1\ta\t5\trating\t1e999\nu2\tb\t3\trating\t3\n", 0,
         "events.tsv:2: value '1e999'"},
        {"events.tsv", "user\titem\tts\ttype\tvalue\nu1\ta\t5\trating\t4\nu9\tb\t3\trating\t3\n", 0,
         "events.tsv:3: unknown user 'u9'"},
        {"events.tsv", "user\titem\tts\ttype\tvalue\nu1\tzz\t5\trating\t4\nu2\tb\t3\trating\t3\n",
         0, "events.tsv:2: unknown item 'zz'"},
        {"events.tsv", "user\titem\tts\ttype\tvalue\nu1\ta\t5\trating\nu2\tb\t3\trating\t3\n", 0,
         "events.tsv:2: expected 5 columns, found 4"},
        {"events.tsv", "user\titem\tts\tkind\tvalue\n", 0, "events.tsv:1: header must start"},
        {"events.tsv", "user\titem\tts\ttype\tvalue\nu1\ta\t5\trating\t4\n", 0,
         "counts say 2 users, 2 items, 2 events; the files have 2, 2, 1"},
        {"meta.json", "{\"format\": \"recd-dataset/1\",\n \"kind\": }\n", 0, "meta.json:2:"},
        {"meta.json",
         "{\"format\": \"recd-dataset/2\", \"kind\": \"explicit\", \"counts\": {\"users\": 2, "
         "\"items\": 2, \"events\": 2}}",
         0, "format must be \"recd-dataset/1\""},
        {"meta.json",
         "{\"format\": \"recd-dataset/1\", \"kind\": \"both\", \"counts\": {\"users\": 2, "
         "\"items\": 2, \"events\": 2}}",
         0, "kind must be"},
        {"meta.json", "{\"format\": \"recd-dataset/1\", \"kind\": \"explicit\", \"counts\": {}}", 0,
         "counts.users must be"},
        {"truth/user_factors.tsv", "id\tf0\tf1\nu1\t1\t2\nu2\t3\tx\n", 0,
         "user_factors.tsv:3: f1 'x' is not a finite number"},
        {"truth/user_factors.tsv", "id\tf0\tf1\nu1\t1\t2\n", 0,
         "user_factors.tsv: 1 rows, but there are 2 users"},
        {"truth/user_factors.tsv", "id\tf0\tf1\nu1\t1\t2\nu1\t1\t2\n", 0,
         "user_factors.tsv:3: duplicate id 'u1'"},
        {"truth/user_factors.tsv", "id\tf0\tf1\nu1\t1\t2\nu7\t1\t2\n", 0,
         "user_factors.tsv:3: unknown user 'u7'"},
        {"truth/item_factors.tsv", "id\tf0\tbias\na\t1\t0\nb\t1\t0\n", 0,
         "item_factors.tsv:1: 1 factors, but the user factors have 2"},
        {"truth/item_factors.tsv", "id\tg0\ta\t1\n", 0, "item_factors.tsv:1: header must be"},
        {"truth/item_factors.tsv", NULL, 0, "item_factors.tsv: No such file"},
    };
    char *root = make_tmpdir();
    char truth[1100];
    snprintf(truth, sizeof truth, "%s/truth", root);
    mkdir(truth, 0755);
    recd_err_t err = {0};
    recd_dataset_t *ds = NULL;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        write_str(root, "meta.json", META_OK);
        write_str(root, "items.tsv", ITEMS_OK);
        write_str(root, "users.tsv", USERS_OK);
        write_str(root, "events.tsv", EVENTS_OK);
        write_str(root, "truth/user_factors.tsv", UF_OK);
        write_str(root, "truth/item_factors.tsv", IF_OK);
        if (k == 0) { /* the fixture itself is valid */
            if (recd_dataset_load(root, &ds, &err) != 0)
                fail_msg("valid fixture: %s", err.msg);
            assert_int_equal(ds->nevents, 2);
            assert_int_equal(ds->events[0].ts, 3); /* sorted at load */
            assert_true(ds->item_bias[1] == -1.0f);
            assert_true(ds->user_factors[3] == 4.0f);
            recd_dataset_free(ds);
        }
        const load_case_t *c = &cases[k];
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", root, c->file);
        if (c->content)
            write_file(root, c->file, c->content, c->len ? c->len : strlen(c->content));
        else
            unlink(path);
        memset(&err, 0, sizeof err);
        ds = (recd_dataset_t *)1;
        int rc = recd_dataset_load(root, &ds, &err);
        if (rc == 0)
            fail_msg("case %zu (%s) loaded; expected '%s'", k, c->file, c->expect);
        assert_null(ds);
        if (!strstr(err.msg, c->expect))
            fail_msg("case %zu: error '%s' lacks '%s'", k, err.msg, c->expect);
        /* every message names the file by its path */
        if (!strstr(err.msg, root))
            fail_msg("case %zu: error '%s' lacks the path", k, err.msg);
    }
    /* a last line without '\n' is accepted */
    write_str(root, "meta.json", META_OK);
    write_str(root, "events.tsv", EVENTS_OK);
    write_str(root, "items.tsv", ITEMS_OK);
    write_str(root, "truth/user_factors.tsv", UF_OK);
    write_str(root, "truth/item_factors.tsv", IF_OK);
    write_str(root, "users.tsv", "id\nu1\nu2");
    assert_int_equal(recd_dataset_load(root, &ds, &err), 0);
    assert_string_equal(ds->users.cells[1], "u2");
    recd_dataset_free(ds);
    rm_rf(root);
    free(root);
}

/* ---- synthetic world -------------------------------------------------------------------- */

static recd_dataset_t *synth(size_t users, size_t items, size_t events, int implicit, uint64_t seed)
{
    recd_world_opts_t o;
    recd_world_defaults(&o);
    o.n_users = users;
    o.n_items = items;
    o.n_events = events;
    o.implicit = implicit;
    o.seed = seed;
    recd_err_t err = {0};
    recd_dataset_t *ds = NULL;
    if (recd_dataset_synth(&o, &ds, &err) != 0)
        fail_msg("synth: %s", err.msg);
    return ds;
}

static void test_synth_deterministic(void **state)
{
    setenv("SOURCE_DATE_EPOCH", "1767225600", 1);
    for (int implicit = 0; implicit <= 1; implicit++) {
        recd_dataset_t *a = synth(300, 800, 8000, implicit, 7);
        recd_dataset_t *b = synth(300, 800, 8000, implicit, 7);
        assert_same_dataset(a, b);
        char *root = make_tmpdir();
        char d1[1100], d2[1100];
        snprintf(d1, sizeof d1, "%s/a", root);
        snprintf(d2, sizeof d2, "%s/b", root);
        recd_err_t err = {0};
        assert_int_equal(recd_dataset_save(a, d1, 0, &err), 0);
        assert_int_equal(recd_dataset_save(b, d2, 0, &err), 0);
        for (size_t f = 0; f < sizeof FILES / sizeof FILES[0]; f++)
            assert_same_file(d1, d2, FILES[f]);
        /* and it loads back as the same dataset */
        recd_dataset_t *c = NULL;
        if (recd_dataset_load(d1, &c, &err) != 0)
            fail_msg("load: %s", err.msg);
        assert_same_dataset(a, c);
        recd_dataset_free(c);
        /* another seed, another world */
        recd_dataset_t *d = synth(300, 800, 8000, implicit, 8);
        int differs = d->nevents != a->nevents ||
                      memcmp(d->events, a->events, a->nevents * sizeof *a->events) != 0;
        assert_true(differs);
        recd_dataset_free(a);
        recd_dataset_free(b);
        recd_dataset_free(d);
        rm_rf(root);
        free(root);
    }
    unsetenv("SOURCE_DATE_EPOCH");
}

static double dotf(const float *a, const float *b, size_t k)
{
    double s = 0;
    for (size_t j = 0; j < k; j++)
        s += (double)a[j] * b[j];
    return s;
}

static double corr(const double *x, const double *y, size_t n)
{
    double mx = 0, my = 0;
    for (size_t i = 0; i < n; i++) {
        mx += x[i];
        my += y[i];
    }
    mx /= (double)n;
    my /= (double)n;
    double sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < n; i++) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
    }
    return sxy / sqrt(sxx * syy);
}

static int cmp_size_desc(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x < y) - (x > y);
}

/* Share of all events that go to the top 1% of items. */
static double top1_share(const recd_dataset_t *ds)
{
    size_t n = ds->items.nrows;
    size_t *cnt = calloc(n, sizeof *cnt);
    for (size_t e = 0; e < ds->nevents; e++)
        cnt[ds->events[e].item]++;
    qsort(cnt, n, sizeof *cnt, cmp_size_desc);
    size_t top = 0, k = n / 100 ? n / 100 : 1;
    for (size_t i = 0; i < k; i++)
        top += cnt[i];
    free(cnt);
    return (double)top / (double)ds->nevents;
}

static void check_common(const recd_dataset_t *ds, size_t users, size_t items)
{
    assert_int_equal(ds->users.nrows, users);
    assert_int_equal(ds->items.nrows, items);
    assert_int_equal(ds->nfactors, 16);
    assert_non_null(ds->user_factors);
    assert_non_null(ds->item_factors);
    assert_non_null(ds->item_bias);
    assert_int_equal(ds->items.ncols, 5);
    assert_int_equal(ds->users.ncols, 4);
    const int64_t t_end = RECD_WORLD_T0 + 180LL * 86400;
    for (size_t e = 0; e < ds->nevents; e++) {
        assert_true(ds->events[e].ts >= RECD_WORLD_T0);
        assert_true(ds->events[e].ts < t_end + 86400); /* watches end after the span */
        if (e)
            assert_true(ds->events[e].ts >= ds->events[e - 1].ts);
    }
    for (size_t i = 0; i < items; i++) {
        int year = atoi(cell(&ds->items, i, "year"));
        assert_true(year >= 1930 && year <= 2020);
        assert_true(strlen(cell(&ds->items, i, "genres")) > 0);
        assert_true(strchr(cell(&ds->items, i, "title"), ' ') != NULL); /* 2-4 words */
    }
    for (size_t u = 0; u < users; u++) {
        int age = atoi(cell(&ds->users, u, "age"));
        assert_true(age >= 13 && age <= 70);
        const char *g = cell(&ds->users, u, "gender");
        assert_true(strcmp(g, "M") == 0 || strcmp(g, "F") == 0);
        assert_true(strlen(cell(&ds->users, u, "occupation")) > 0);
    }
    /* popularity is skewed: the top 1% of items get far more than 1% */
    assert_true(top1_share(ds) > 0.15);
}

static void test_synth_explicit(void **state)
{
    size_t U = 400, I = 2000, E = 20000;
    recd_dataset_t *ds = synth(U, I, E, 0, 3);
    check_common(ds, U, I);
    assert_int_equal(ds->implicit, 0);
    assert_int_equal(ds->nctx, 0);
    assert_int_equal(ds->nevents, E); /* exact when no user hits the cap */
    size_t *per_user = calloc(U, sizeof *per_user);
    double *aff = malloc(E * sizeof *aff), *val = malloc(E * sizeof *val);
    for (size_t e = 0; e < ds->nevents; e++) {
        const recd_event_t *ev = &ds->events[e];
        assert_int_equal(ev->type, RECD_EV_RATING);
        assert_true(ev->value >= 0.5f && ev->value <= 5.0f);
        assert_true(ev->value * 2 == floorf(ev->value * 2));
        per_user[ev->user]++;
        aff[e] = dotf(ds->user_factors + (size_t)ev->user * 16,
                      ds->item_factors + (size_t)ev->item * 16, 16);
        val[e] = ev->value;
    }
    for (size_t u = 0; u < U; u++)
        assert_true(per_user[u] >= 5);
    /* a user rates an item once */
    for (size_t e = 1; e < ds->nevents; e++)
        for (size_t f = e; f-- > 0 && f + 50 > e;)
            assert_false(ds->events[f].user == ds->events[e].user &&
                         ds->events[f].item == ds->events[e].item);
    /* ratings follow the true affinity */
    double c = corr(aff, val, ds->nevents);
    assert_true(c > 0.4);
    free(per_user);
    free(aff);
    free(val);
    recd_dataset_free(ds);
}

static void test_synth_implicit(void **state)
{
    size_t U = 400, I = 2000, E = 30000;
    recd_dataset_t *ds = synth(U, I, E, 1, 5);
    check_common(ds, U, I);
    assert_int_equal(ds->implicit, 1);
    assert_int_equal(ds->nctx, 1);
    assert_string_equal(ds->ctx_names[0], "device");
    /* total near the target */
    assert_true(ds->nevents > E * 85 / 100 && ds->nevents < E * 115 / 100);
    size_t n[RECD_EV_NTYPES] = {0}, nw = 0;
    double *aff = malloc(ds->nevents * sizeof *aff), *lw = malloc(ds->nevents * sizeof *lw);
    for (size_t e = 0; e < ds->nevents; e++) {
        const recd_event_t *ev = &ds->events[e];
        assert_true(ev->type != RECD_EV_RATING);
        n[ev->type]++;
        const char *d = ds->ctx[e];
        assert_true(strcmp(d, "mobile") == 0 || strcmp(d, "desktop") == 0 ||
                    strcmp(d, "tablet") == 0 || strcmp(d, "tv") == 0);
        if (ev->type == RECD_EV_WATCH) {
            assert_true(ev->value >= 5.0f && ev->value <= 14400.0f);
            aff[nw] = dotf(ds->user_factors + (size_t)ev->user * 16,
                           ds->item_factors + (size_t)ev->item * 16, 16);
            lw[nw++] = log(ev->value);
        } else {
            assert_true(ev->value == 0.0f);
        }
    }
    double ctr = (double)n[RECD_EV_CLICK] / (double)n[RECD_EV_IMPRESSION];
    assert_true(ctr >= 0.05 && ctr <= 0.15);
    assert_true(n[RECD_EV_WATCH] <= n[RECD_EV_CLICK]);
    assert_true(n[RECD_EV_PURCHASE] > 0 && n[RECD_EV_PURCHASE] < n[RECD_EV_WATCH]);
    /* watch seconds grow with the true affinity */
    assert_true(nw > 100);
    assert_true(corr(aff, lw, nw) > 0.2);
    free(aff);
    free(lw);
    recd_dataset_free(ds);
}

static void test_synth_zipf(void **state)
{
    /* zipf 0 spreads events evenly; a high exponent concentrates them
     * (implicit: explicit ratings are capped at one per user and item) */
    recd_world_opts_t o;
    recd_world_defaults(&o);
    o.n_users = 200;
    o.n_items = 1000;
    o.n_events = 10000;
    o.implicit = 1;
    recd_err_t err = {0};
    recd_dataset_t *flat = NULL, *steep = NULL;
    o.zipf = 0.0;
    assert_int_equal(recd_dataset_synth(&o, &flat, &err), 0);
    o.zipf = 1.5;
    assert_int_equal(recd_dataset_synth(&o, &steep, &err), 0);
    double f = top1_share(flat), s = top1_share(steep);
    print_message("top 1%% share: zipf 0 %.3f, zipf 1.5 %.3f\n", f, s);
    assert_true(s > 0.3);
    assert_true(f < s / 2);
    recd_dataset_free(flat);
    recd_dataset_free(steep);
    /* tiny worlds work: fewer events than users, a single item */
    recd_dataset_t *tiny = synth(50, 1, 20, 0, 1);
    assert_true(tiny->nevents <= 20);
    recd_dataset_free(tiny);
    tiny = synth(3, 2, 1, 1, 1);
    assert_true(tiny->nevents >= 1);
    recd_dataset_free(tiny);
}

static void test_synth_bad_options(void **state)
{
    recd_world_opts_t d, o;
    recd_world_defaults(&d);
    assert_int_equal(d.n_users, 5000);
    assert_int_equal(d.n_items, 20000);
    recd_err_t err = {0};
    recd_dataset_t *ds = (recd_dataset_t *)1;
    o = d;
    o.n_users = 0;
    assert_int_equal(recd_dataset_synth(&o, &ds, &err), RECD_EINVAL);
    assert_null(ds);
    assert_non_null(strstr(err.msg, "users"));
    o = d;
    o.n_items = 0;
    assert_int_equal(recd_dataset_synth(&o, &ds, &err), RECD_EINVAL);
    assert_non_null(strstr(err.msg, "items"));
    o = d;
    o.n_events = 0;
    assert_int_equal(recd_dataset_synth(&o, &ds, &err), RECD_EINVAL);
    assert_non_null(strstr(err.msg, "events"));
    o = d;
    o.n_factors = 1;
    assert_int_equal(recd_dataset_synth(&o, &ds, &err), RECD_EINVAL);
    assert_non_null(strstr(err.msg, "factors"));
    o = d;
    o.n_topics = 0;
    assert_int_equal(recd_dataset_synth(&o, &ds, &err), RECD_EINVAL);
    assert_non_null(strstr(err.msg, "topics"));
    o = d;
    o.zipf = NAN;
    assert_int_equal(recd_dataset_synth(&o, &ds, &err), RECD_EINVAL);
    assert_non_null(strstr(err.msg, "zipf"));
    o = d;
    o.days = 0;
    assert_int_equal(recd_dataset_synth(&o, &ds, &err), RECD_EINVAL);
    assert_non_null(strstr(err.msg, "days"));
    o = d;
    o.implicit = 2;
    assert_int_equal(recd_dataset_synth(&o, &ds, &err), RECD_EINVAL);
}

/* ---- import ------------------------------------------------------------------------------- */

/* Import from dir, the report captured into *report (caller frees). */
static int import(const char *dir, recd_ml_layout_t layout, int strict, recd_dataset_t **ds,
                  recd_import_stats_t *st, char **report, recd_err_t *err)
{
    size_t len = 0;
    FILE *f = open_memstream(report, &len);
    assert_non_null(f);
    int rc = recd_dataset_import_movielens(dir, layout, strict, f, ds, st, err);
    fclose(f);
    return rc;
}

static void test_import_100k(void **state)
{
    char *dir = make_tmpdir();
    /* line 3 has three fields, line 5 a rating of 6, line 6 a non-numeric
     * user; CRLF on line 2; no newline at the end */
    write_str(dir, "u.data",
              "1\t10\t5\t881250949\n"
              "2\t10\t3\t881250950\r\n"
              "1\t20\t4\n"
              "2\t20\t1\t881250951\n"
              "1\t30\t6\t881250952\n"
              "x\t30\t2\t881250953\n"
              "3\t99\t2\t881250954");
    /* 24 fields; a Latin-1 title; the unknown flag; a wrong field count */
    static const char ITEM[] =
        "10|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
        "20|Mis\xe9rables, Les (1995)|01-Jan-1995||http://y|0|0|0|0|0|0|0|0|1|0|0|0|0|0|0|0|0|1|0\n"
        "30|unknown||||1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
        "40|Short line|01-Jan-1995\n";
    write_str(dir, "u.item", ITEM);
    write_str(dir, "u.user", "1|24|M|technician|85711\n2|53|F|other|94043\n4|33|F|writer|1\n");
    recd_dataset_t *ds = NULL;
    recd_import_stats_t st;
    recd_err_t err = {0};
    char *report = NULL;
    if (import(dir, RECD_ML_AUTO, 0, &ds, &st, &report, &err) != 0)
        fail_msg("import: %s", err.msg);
    assert_int_equal(st.layout, RECD_ML_100K);
    assert_int_equal(st.lines, 7);
    assert_int_equal(st.skipped, 4);     /* 3 ratings + 1 item line */
    assert_int_equal(st.added_items, 1); /* 99 */
    char want[1200];
    snprintf(want, sizeof want, "%s/u.data:3: expected 4 tab-separated fields", dir);
    assert_non_null(strstr(report, want));
    snprintf(want, sizeof want, "%s/u.data:5: rating 6 out of range", dir);
    assert_non_null(strstr(report, want));
    snprintf(want, sizeof want, "%s/u.data:6: user id 'x' is not a number", dir);
    assert_non_null(strstr(report, want));
    snprintf(want, sizeof want, "%s/u.item:4: expected 24 '|'-separated fields, found 3", dir);
    assert_non_null(strstr(report, want));
    snprintf(want, sizeof want, "%s/u.data:7: movie 99 is not in the item file", dir);
    assert_non_null(strstr(report, want));

    assert_int_equal(ds->nevents, 4);
    assert_int_equal(ds->items.nrows, 4); /* 10, 20, 30, 99 */
    int64_t r = recd_dataset_item_row(ds, "10");
    assert_true(r >= 0);
    assert_string_equal(cell(&ds->items, (size_t)r, "title"), "Toy Story");
    assert_string_equal(cell(&ds->items, (size_t)r, "year"), "1995");
    assert_string_equal(cell(&ds->items, (size_t)r, "genres"), "Animation|Children|Comedy");
    r = recd_dataset_item_row(ds, "20");
    assert_string_equal(cell(&ds->items, (size_t)r, "title"), "Mis\xc3\xa9rables, Les");
    assert_string_equal(cell(&ds->items, (size_t)r, "genres"), "Drama|War");
    r = recd_dataset_item_row(ds, "30");
    assert_string_equal(cell(&ds->items, (size_t)r, "genres"), "");
    assert_string_equal(cell(&ds->items, (size_t)r, "year"), "");
    r = recd_dataset_item_row(ds, "99");
    assert_string_equal(cell(&ds->items, (size_t)r, "title"), "");
    /* users: the file's (also 4, without ratings), then 3 from u.data */
    assert_int_equal(ds->users.nrows, 4);
    assert_int_equal(recd_dataset_user_row(ds, "4"), 2);
    assert_int_equal(recd_dataset_user_row(ds, "3"), 3);
    r = recd_dataset_user_row(ds, "1");
    assert_string_equal(cell(&ds->users, (size_t)r, "age"), "24");
    assert_string_equal(cell(&ds->users, (size_t)r, "gender"), "M");
    assert_string_equal(cell(&ds->users, (size_t)r, "occupation"), "technician");
    assert_string_equal(cell(&ds->users, 3, "occupation"), "");
    /* events sorted, values kept */
    assert_int_equal(ds->events[0].ts, 881250949);
    assert_true(ds->events[0].value == 5.0f);
    assert_int_equal(ds->events[1].ts, 881250950); /* the CRLF line */
    assert_true(ds->events[1].value == 3.0f);
    assert_int_equal(ds->events[3].ts, 881250954); /* no final newline */
    for (size_t e = 0; e < ds->nevents; e++)
        assert_int_equal(ds->events[e].type, RECD_EV_RATING);
    recd_dataset_free(ds);
    free(report);

    /* strict: the first malformed line fails the import */
    report = NULL;
    ds = (recd_dataset_t *)1;
    assert_int_equal(import(dir, RECD_ML_100K, 1, &ds, &st, &report, &err), RECD_EINVAL);
    assert_null(ds);
    snprintf(want, sizeof want, "%s/u.item:4: expected 24", dir);
    assert_non_null(strstr(err.msg, want));
    free(report);
    rm_rf(dir);
    free(dir);
}

static void test_import_1m(void **state)
{
    char *dir = make_tmpdir();
    write_str(dir, "ratings.dat",
              "1::1193::5::978300760\r\n1::661::3::978302109\r\n2::1193::4.5::978298413\r\n"
              "2::661::0::978299000\r\n2::661\r\n");
    write_str(dir, "movies.dat",
              "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
              "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
              "3::Caf\xe9 Society: a::b (1995)::Comedy\n"
              "bad line\n");
    write_str(dir, "users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::21::1\n");
    recd_dataset_t *ds = NULL;
    recd_import_stats_t st;
    recd_err_t err = {0};
    char *report = NULL;
    if (import(dir, RECD_ML_AUTO, 0, &ds, &st, &report, &err) != 0)
        fail_msg("import: %s", err.msg);
    assert_int_equal(st.layout, RECD_ML_1M);
    assert_int_equal(st.lines, 5);
    assert_int_equal(st.skipped, 4); /* rating 0, short rating, bad movie line, occupation 21 */
    char want[1200];
    snprintf(want, sizeof want, "%s/ratings.dat:4: rating 0 out of range", dir);
    assert_non_null(strstr(report, want));
    snprintf(want, sizeof want, "%s/ratings.dat:5: expected 4 '::'-separated fields", dir);
    assert_non_null(strstr(report, want));
    snprintf(want, sizeof want, "%s/movies.dat:4: expected MovieID::Title::Genres", dir);
    assert_non_null(strstr(report, want));
    snprintf(want, sizeof want, "%s/users.dat:3: occupation '21' is not a code 0..20", dir);
    assert_non_null(strstr(report, want));
    assert_int_equal(ds->nevents, 3);
    assert_int_equal(ds->items.nrows, 3);
    int64_t r = recd_dataset_item_row(ds, "661");
    assert_string_equal(cell(&ds->items, (size_t)r, "title"), "James and the Giant Peach");
    assert_string_equal(cell(&ds->items, (size_t)r, "year"), "1996");
    assert_string_equal(cell(&ds->items, (size_t)r, "genres"), "Animation|Children|Musical");
    r = recd_dataset_item_row(ds, "3");
    assert_string_equal(cell(&ds->items, (size_t)r, "title"), "Caf\xc3\xa9 Society: a::b");
    r = recd_dataset_user_row(ds, "1");
    assert_string_equal(cell(&ds->users, (size_t)r, "occupation"), "K-12 student");
    assert_string_equal(cell(&ds->users, (size_t)r, "age"), "1");
    assert_string_equal(cell(&ds->users, (size_t)r, "gender"), "F");
    r = recd_dataset_user_row(ds, "2");
    assert_string_equal(cell(&ds->users, (size_t)r, "occupation"), "self-employed");
    assert_int_equal(ds->users.nrows, 2);
    /* 4.5 is a valid half-star rating */
    int found = 0;
    for (size_t e = 0; e < ds->nevents; e++)
        found |= ds->events[e].value == 4.5f;
    assert_true(found);
    recd_dataset_free(ds);
    free(report);
    rm_rf(dir);
    free(dir);
}

static void test_import_latest(void **state)
{
    char *dir = make_tmpdir();
    write_str(dir, "ratings.csv",
              "userId,movieId,rating,timestamp\r\n"
              "1,1,4.0,964982703\r\n"
              "1,2,0.5,964981247\r\n"
              "2,1,5.5,964982224\r\n"
              "2,7,3.5,964983815\r\n"
              "3,2,abc,964982931\r\n"
              "3,3,2.0\r\n"
              "4,1,2.5,964982400");
    write_str(dir, "movies.csv",
              "\xef\xbb\xbfmovieId,title,genres\n"
              "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
              "2,\"American President, The (1995)\",Comedy|Drama|Romance\n"
              "3,\"11'09\"\"01 - September 11 (2002)\",Drama\n"
              "4,Babylon 5,(no genres listed)\n"
              "5,\"Death Note: Desu n\xc3\xb4to (2006\xe2\x80\x93\x32\x30\x30\x37)\",Anime\n"
              "6,\"Fawlty Towers (1975-1979)\",Comedy\n"
              "7,\"Two\nLines (1999)\",Drama\n"
              "8,\"bad\" quote,Drama\n"
              "9,Too,many,fields\n");
    write_str(dir, "tags.csv",
              "userId,movieId,tag,timestamp\n"
              "2,1,Pixar,1\n"
              "3,1,  pixar ,2\n"
              "3,1,\"fun, for | kids\",3\n"
              "4,1,Tab\tbed,4\n"
              "2,2,politics,5\n"
              "2,1,PIXAR,6\n"
              "2,1,,7\n"
              "2,555,orphan,8\n");
    recd_dataset_t *ds = NULL;
    recd_import_stats_t st;
    recd_err_t err = {0};
    char *report = NULL;
    if (import(dir, RECD_ML_AUTO, 0, &ds, &st, &report, &err) != 0)
        fail_msg("import: %s", err.msg);
    assert_int_equal(st.layout, RECD_ML_LATEST);
    assert_int_equal(st.lines, 7);
    assert_int_equal(st.skipped, 5); /* 3 ratings, 2 movies */
    assert_int_equal(st.added_items, 0);
    char want[1200];
    snprintf(want, sizeof want, "%s/ratings.csv:4: rating 5.5 out of range", dir);
    assert_non_null(strstr(report, want));
    snprintf(want, sizeof want, "%s/ratings.csv:6: rating 'abc' is not a number", dir);
    assert_non_null(strstr(report, want));
    snprintf(want, sizeof want, "%s/ratings.csv:7: expected 4 fields", dir);
    assert_non_null(strstr(report, want));
    snprintf(want, sizeof want, "%s/movies.csv:10: text after a closing quote", dir);
    assert_non_null(strstr(report, want)); /* line 10: the record of line 8 spans two */
    snprintf(want, sizeof want, "%s/movies.csv:11: expected 3 fields", dir);
    assert_non_null(strstr(report, want));
    snprintf(want, sizeof want, "%s/tags.csv:9: movie 555", dir);
    assert_non_null(strstr(report, want));

    assert_int_equal(ds->nevents, 4);
    assert_int_equal(ds->users.nrows, 3); /* 1, 2, 4: user 3 has no valid rating */
    assert_int_equal(recd_dataset_user_row(ds, "3"), -1);
    assert_int_equal(ds->users.ncols, 1);
    assert_int_equal(ds->items.nrows, 7);
    int64_t r = recd_dataset_item_row(ds, "1");
    assert_string_equal(cell(&ds->items, (size_t)r, "title"), "Toy Story");
    assert_string_equal(cell(&ds->items, (size_t)r, "year"), "1995");
    assert_string_equal(cell(&ds->items, (size_t)r, "genres"),
                        "Adventure|Animation|Children|Comedy|Fantasy");
    assert_string_equal(cell(&ds->items, (size_t)r, "tags"), "pixar|fun, for  kids|tabbed");
    r = recd_dataset_item_row(ds, "2");
    assert_string_equal(cell(&ds->items, (size_t)r, "title"), "American President, The");
    assert_string_equal(cell(&ds->items, (size_t)r, "tags"), "politics");
    r = recd_dataset_item_row(ds, "3");
    assert_string_equal(cell(&ds->items, (size_t)r, "title"), "11'09\"01 - September 11");
    assert_string_equal(cell(&ds->items, (size_t)r, "year"), "2002");
    assert_string_equal(cell(&ds->items, (size_t)r, "tags"), "");
    r = recd_dataset_item_row(ds, "4");
    assert_string_equal(cell(&ds->items, (size_t)r, "title"), "Babylon 5");
    assert_string_equal(cell(&ds->items, (size_t)r, "year"), "");
    assert_string_equal(cell(&ds->items, (size_t)r, "genres"), "");
    r = recd_dataset_item_row(ds, "5");
    assert_string_equal(cell(&ds->items, (size_t)r, "title"), "Death Note: Desu n\xc3\xb4to");
    assert_string_equal(cell(&ds->items, (size_t)r, "year"), "2006");
    r = recd_dataset_item_row(ds, "6");
    assert_string_equal(cell(&ds->items, (size_t)r, "title"), "Fawlty Towers");
    assert_string_equal(cell(&ds->items, (size_t)r, "year"), "1975");
    r = recd_dataset_item_row(ds, "7");
    assert_string_equal(cell(&ds->items, (size_t)r, "title"), "Two Lines"); /* LF -> space */
    assert_int_equal(recd_dataset_item_row(ds, "8"), -1);
    assert_true(ds->events[0].value == 2.5f || ds->events[0].value == 0.5f);
    recd_dataset_free(ds);
    free(report);

    /* a wrong header is an error of the file, not a skipped line */
    write_str(dir, "ratings.csv", "user,movie,rating,ts\n1,1,4,5\n");
    report = NULL;
    assert_int_equal(import(dir, RECD_ML_AUTO, 0, &ds, &st, &report, &err), RECD_EINVAL);
    snprintf(want, sizeof want, "%s/ratings.csv:1: header is 'user,movie,rating,ts'", dir);
    assert_non_null(strstr(err.msg, want));
    free(report);

    /* empty files import as empty tables */
    write_str(dir, "ratings.csv", "");
    write_str(dir, "movies.csv", "");
    unlink(strcat(strcpy(want, dir), "/tags.csv"));
    report = NULL;
    assert_int_equal(import(dir, RECD_ML_LATEST, 1, &ds, &st, &report, &err), 0);
    assert_int_equal(ds->nevents, 0);
    assert_int_equal(ds->items.nrows, 0);
    assert_int_equal(st.lines, 0);
    recd_dataset_free(ds);
    free(report);

    /* the item file is required */
    unlink(strcat(strcpy(want, dir), "/movies.csv"));
    report = NULL;
    assert_int_equal(import(dir, RECD_ML_AUTO, 0, &ds, &st, &report, &err), RECD_ENOENT);
    assert_non_null(strstr(err.msg, "movies.csv"));
    free(report);
    rm_rf(dir);
    free(dir);
}

static void test_import_layouts(void **state)
{
    char *dir = make_tmpdir();
    recd_dataset_t *ds = NULL;
    recd_err_t err = {0};
    char *report = NULL;
    /* nothing known in the directory */
    write_str(dir, "README", "hello");
    assert_int_equal(import(dir, RECD_ML_AUTO, 0, &ds, NULL, &report, &err), RECD_ENOENT);
    assert_non_null(strstr(err.msg, "no MovieLens layout"));
    free(report);
    /* a layout asked for whose files are missing */
    report = NULL;
    assert_int_equal(import(dir, RECD_ML_1M, 0, &ds, NULL, &report, &err), RECD_ENOENT);
    assert_non_null(strstr(err.msg, "movies.dat"));
    free(report);
    report = NULL;
    assert_int_equal(import("/nonexistent/ml", RECD_ML_AUTO, 0, &ds, NULL, &report, &err),
                     RECD_ENOENT);
    free(report);
    report = NULL;
    assert_int_equal(import(dir, (recd_ml_layout_t)9, 0, &ds, NULL, &report, &err), RECD_EINVAL);
    free(report);
    assert_int_equal(recd_ml_layout_parse("ml-latest-small"), RECD_ML_LATEST);
    assert_int_equal(recd_ml_layout_parse("ml-20m"), -1);
    assert_string_equal(recd_ml_layout_name(RECD_ML_1M), "ml-1m");
    /* the item file must exist for ml-100k; the user file need not */
    write_str(dir, "u.data", "1\t1\t3\t5\n");
    write_str(dir, "u.item", "1|A (2000)|||u|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|1\n");
    report = NULL;
    assert_int_equal(import(dir, RECD_ML_AUTO, 1, &ds, NULL, &report, &err), 0);
    assert_int_equal(ds->users.ncols, 4);
    assert_string_equal(cell(&ds->items, 0, "genres"), "Western");
    assert_string_equal(cell(&ds->items, 0, "year"), "2000");
    assert_string_equal(report, "");
    recd_dataset_free(ds);
    free(report);
    rm_rf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_names),     cmocka_unit_test(test_build_and_lookup),
        cmocka_unit_test(test_canonical_sort), cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_load_errors),    cmocka_unit_test(test_synth_deterministic),
        cmocka_unit_test(test_synth_explicit), cmocka_unit_test(test_synth_implicit),
        cmocka_unit_test(test_synth_zipf),     cmocka_unit_test(test_synth_bad_options),
        cmocka_unit_test(test_import_100k),    cmocka_unit_test(test_import_1m),
        cmocka_unit_test(test_import_latest),  cmocka_unit_test(test_import_layouts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
