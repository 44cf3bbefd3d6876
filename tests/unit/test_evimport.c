/*
 * Unit tests for src/train/evimport.c (recd_dataset_import_events): logs
 * written with the real writer (recd_evlog_open/append, payloads from
 * recd_evrec_encode) in a temporary directory, imported alone and on top of
 * a base dataset built with the dataset API; undecodable payloads skipped
 * and counted; framing damage refused or skipped; the result saved and
 * loaded back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "recd/core.h"
#include "recd/dataset.h"
#include "recd/events.h"
#include "recd/evrec.h"

/* ---- fixture ----------------------------------------------------------------- */

typedef struct fx {
    char top[PATH_MAX];
    char log[PATH_MAX]; /* top/events */
    char out[PATH_MAX]; /* top/ds */
} fx_t;

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    const char *t = getenv("TMPDIR");
    snprintf(f->top, sizeof f->top, "%s/recd-evimport-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(f->top)) {
        free(f);
        return -1;
    }
    snprintf(f->log, sizeof f->log, "%s/events", f->top);
    snprintf(f->out, sizeof f->out, "%s/ds", f->top);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    nftw(f->top, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* ---- writing logs ------------------------------------------------------------------ */

typedef struct ev {
    int64_t ts;
    const char *user, *item;
    recd_ev_type_t type;
    double value;
} ev_t;

static const ev_t EVENTS[] = {
    {1795820400, "u1", "i1", RECD_EV_IMPRESSION, 1},
    {1795820410, "u1", "i1", RECD_EV_CLICK, 1},
    {1795820420, "u1", "i1", RECD_EV_WATCH, 42.5},
    {1795820500, "u2", "i2", RECD_EV_RATING, 4.5},
    {1795820600, "u2", "i3", RECD_EV_PURCHASE, 3},
    {1795820000, "u3", "i1", RECD_EV_IMPRESSION, 1}, /* out of ts order on purpose */
};
#define NEVENTS (sizeof EVENTS / sizeof EVENTS[0])

/* Encode e into buf (as recd does) and return its length. */
static size_t encode(const ev_t *e, char *buf, size_t cap)
{
    recd_evrec_t r;
    memset(&r, 0, sizeof r);
    r.ts = e->ts;
    r.user_id = e->user;
    r.user_len = strlen(e->user);
    r.item_id = e->item;
    r.item_len = strlen(e->item);
    r.type = (int)e->type;
    r.value = e->value;
    r.recv_ms = e->ts * 1000 + 5;
    assert_true(recd_evrec_encoded_max(&r) <= cap);
    return recd_evrec_encode(&r, buf, cap);
}

/* Append the events (and raw extra payloads, in between, after event
 * extra_after) to the log in dir as single-record batches; return each
 * raw payload's log offset in extra_off. */
static void write_log(const char *dir, const ev_t *evs, size_t n, const char *const *extra,
                      size_t nextra, size_t extra_after, uint64_t *extra_off)
{
    recd_evlog_opts_t o;
    recd_evlog_opts_default(&o);
    o.fsync = RECD_EVLOG_FSYNC_NEVER;
    recd_evlog_t *log = NULL;
    recd_err_t err = {0};
    assert_int_equal(recd_evlog_open(dir, &o, &log, &err), 0);
    uint64_t ticket = 0;
    for (size_t i = 0; i < n; i++) {
        char buf[2048];
        struct iovec iv = {buf, encode(&evs[i], buf, sizeof buf)};
        assert_int_equal(recd_evlog_append(log, &iv, 1, &ticket, &err), 0);
        if (i == extra_after) {
            for (size_t k = 0; k < nextra; k++) {
                struct iovec x = {(void *)extra[k], strlen(extra[k])};
                if (extra_off)
                    extra_off[k] = ticket;
                assert_int_equal(recd_evlog_append(log, &x, 1, &ticket, &err), 0);
            }
        }
    }
    assert_int_equal(recd_evlog_flush(log, &err), 0);
    recd_evlog_close(log);
}

static const char *cell(const recd_table_t *t, size_t row, size_t col)
{
    return t->cells[row * t->ncols + col];
}

static const char *user_id(const recd_dataset_t *ds, uint32_t row)
{
    return cell(&ds->users, row, 0);
}

static const char *item_id(const recd_dataset_t *ds, uint32_t row)
{
    return cell(&ds->items, row, 0);
}

/* Index in ds->events of the event equal to e (ts, ids, type), or -1. */
static long find_event(const recd_dataset_t *ds, const ev_t *e)
{
    for (size_t k = 0; k < ds->nevents; k++) {
        const recd_event_t *x = &ds->events[k];
        if (x->ts == e->ts && x->type == e->type && strcmp(user_id(ds, x->user), e->user) == 0 &&
            strcmp(item_id(ds, x->item), e->item) == 0)
            return (long)k;
    }
    return -1;
}

static void check_sorted(const recd_dataset_t *ds)
{
    for (size_t k = 1; k < ds->nevents; k++)
        assert_true(ds->events[k - 1].ts <= ds->events[k].ts);
}

/* ---- tests ------------------------------------------------------------------------- */

static void test_import_alone(void **state)
{
    fx_t *f = *state;
    write_log(f->log, EVENTS, NEVENTS, NULL, 0, 0, NULL);
    recd_dataset_t *ds = NULL;
    recd_import_stats_t st;
    recd_err_t err = {0};
    assert_int_equal(recd_dataset_import_events(f->log, NULL, 0, NULL, &ds, &st, &err), 0);
    assert_non_null(ds);
    assert_int_equal(st.lines, NEVENTS);
    assert_int_equal(st.skipped, 0);
    assert_int_equal(st.added_items, 3);
    assert_int_equal(ds->users.ncols, 1);
    assert_int_equal(ds->items.ncols, 1);
    assert_int_equal(ds->users.nrows, 3);
    assert_int_equal(ds->items.nrows, 3);
    assert_int_equal(ds->nctx, 0);
    assert_true(ds->implicit);
    assert_non_null(strstr(ds->source, f->log));
    assert_true(recd_dataset_user_row(ds, "u3") >= 0);
    assert_true(recd_dataset_item_row(ds, "i3") >= 0);
    assert_int_equal(ds->nevents, NEVENTS);
    check_sorted(ds);
    assert_int_equal(ds->events[0].ts, 1795820000); /* sorted by ts, not log order */
    for (size_t i = 0; i < NEVENTS; i++) {
        long k = find_event(ds, &EVENTS[i]);
        assert_true(k >= 0);
        float want = EVENTS[i].type == RECD_EV_RATING || EVENTS[i].type == RECD_EV_WATCH
                         ? (float)EVENTS[i].value
                         : 0.0f;
        assert_true(ds->events[k].value == want);
    }
    /* what was imported saves and loads back as a valid dataset */
    assert_int_equal(recd_dataset_save(ds, f->out, 0, &err), 0);
    recd_dataset_t *back = NULL;
    assert_int_equal(recd_dataset_load(f->out, &back, &err), 0);
    assert_int_equal(back->nevents, NEVENTS);
    assert_true(back->implicit);
    recd_dataset_free(back);
    recd_dataset_free(ds);
}

static void test_ratings_only_is_explicit(void **state)
{
    fx_t *f = *state;
    const ev_t r[] = {{100, "a", "x", RECD_EV_RATING, 3}, {200, "b", "x", RECD_EV_RATING, 5}};
    write_log(f->log, r, 2, NULL, 0, 0, NULL);
    recd_dataset_t *ds = NULL;
    recd_err_t err = {0};
    assert_int_equal(recd_dataset_import_events(f->log, NULL, 0, NULL, &ds, NULL, &err), 0);
    assert_false(ds->implicit);
    assert_int_equal(ds->nevents, 2);
    assert_true(ds->events[1].value == 5.0f);
    recd_dataset_free(ds);
}

static void test_empty_log(void **state)
{
    fx_t *f = *state;
    write_log(f->log, EVENTS, 0, NULL, 0, 0, NULL); /* creates the first segment only */
    recd_dataset_t *ds = NULL;
    recd_err_t err = {0};
    assert_int_equal(recd_dataset_import_events(f->log, NULL, 0, NULL, &ds, NULL, &err), 0);
    assert_int_equal(ds->nevents, 0);
    assert_int_equal(ds->users.nrows, 0);
    assert_true(ds->implicit);
    recd_dataset_free(ds);
}

/* A base with feature columns, a context column, truth and two events. */
static recd_dataset_t *make_base(void)
{
    static const char *const icols[] = {"id", "title", "genres"};
    static const char *const ucols[] = {"id", "age"};
    static const char *const ctx[] = {"device"};
    recd_err_t err = {0};
    recd_dataset_t *b = recd_dataset_new("hand-made base", 1, icols, 3, ucols, 2, ctx, 1, &err);
    assert_non_null(b);
    const char *i1[] = {"i1", "One", "Drama"}, *i9[] = {"i9", "Nine", "Comedy|Drama"};
    const char *u1[] = {"u1", "30"}, *u8[] = {"u8", "41"};
    assert_int_equal(recd_dataset_add_item(b, i1, &err), 0);
    assert_int_equal(recd_dataset_add_item(b, i9, &err), 1);
    assert_int_equal(recd_dataset_add_user(b, u1, &err), 0);
    assert_int_equal(recd_dataset_add_user(b, u8, &err), 1);
    const char *tv[] = {"tv"}, *mob[] = {"mobile"};
    assert_int_equal(recd_dataset_add_event(b, 1, 1, 1795810000, RECD_EV_CLICK, 0, tv, &err), 0);
    /* the same event as EVENTS[0]: the union keeps both */
    assert_int_equal(recd_dataset_add_event(b, 0, 0, 1795820400, RECD_EV_IMPRESSION, 0, mob, &err),
                     0);
    float *uf = calloc(2 * 2, sizeof *uf), *itf = calloc(2 * 2, sizeof *itf);
    assert_non_null(uf);
    assert_non_null(itf);
    recd_dataset_set_truth(b, 2, uf, itf, NULL);
    assert_int_equal(recd_dataset_sort_events(b, &err), 0);
    return b;
}

static void test_import_with_base(void **state)
{
    fx_t *f = *state;
    write_log(f->log, EVENTS, NEVENTS, NULL, 0, 0, NULL);
    recd_dataset_t *base = make_base();
    recd_dataset_t *ds = NULL;
    recd_import_stats_t st;
    recd_err_t err = {0};
    assert_int_equal(recd_dataset_import_events(f->log, base, 0, NULL, &ds, &st, &err), 0);
    /* tables: base rows first with their features, then the log's new ids */
    assert_int_equal(ds->items.ncols, 3);
    assert_int_equal(ds->users.ncols, 2);
    assert_string_equal(ds->items.names[2], "genres");
    assert_string_equal(ds->users.names[1], "age");
    assert_int_equal(ds->items.nrows, 4); /* i1 i9 + i2 i3 */
    assert_int_equal(ds->users.nrows, 4); /* u1 u8 + u2 u3 */
    assert_int_equal(st.added_items, 2);
    assert_string_equal(cell(&ds->items, 1, 0), "i9");
    assert_string_equal(cell(&ds->items, 1, 2), "Comedy|Drama");
    assert_string_equal(cell(&ds->users, 1, 1), "41");
    int64_t i3 = recd_dataset_item_row(ds, "i3"), u3 = recd_dataset_user_row(ds, "u3");
    assert_true(i3 >= 2 && u3 >= 2);
    assert_string_equal(cell(&ds->items, (size_t)i3, 1), "");
    assert_string_equal(cell(&ds->items, (size_t)i3, 2), "");
    assert_string_equal(cell(&ds->users, (size_t)u3, 1), "");
    /* events: the union, base context kept, the log's empty */
    assert_int_equal(ds->nctx, 1);
    assert_string_equal(ds->ctx_names[0], "device");
    assert_int_equal(ds->nevents, NEVENTS + 2);
    check_sorted(ds);
    assert_int_equal(ds->events[0].ts, 1795810000);
    assert_string_equal(user_id(ds, ds->events[0].user), "u8");
    assert_string_equal(ds->ctx[0], "tv");
    size_t dup = 0, with_ctx = 0;
    for (size_t k = 0; k < ds->nevents; k++) {
        const recd_event_t *x = &ds->events[k];
        if (x->ts == 1795820400 && x->type == RECD_EV_IMPRESSION) {
            dup++;
            with_ctx += strcmp(ds->ctx[k], "mobile") == 0;
            if (strcmp(ds->ctx[k], "mobile") != 0)
                assert_string_equal(ds->ctx[k], "");
        }
    }
    assert_int_equal(dup, 2);
    assert_int_equal(with_ctx, 1);
    for (size_t i = 0; i < NEVENTS; i++)
        assert_true(find_event(ds, &EVENTS[i]) >= 0);
    /* truth is not carried over (new rows would have none) */
    assert_null(ds->user_factors);
    assert_null(ds->item_factors);
    assert_int_equal(ds->nfactors, 0);
    assert_non_null(strstr(ds->source, "hand-made base"));
    /* the base is untouched */
    assert_int_equal(base->nevents, 2);
    assert_int_equal(base->items.nrows, 2);
    assert_int_equal(recd_dataset_save(ds, f->out, 0, &err), 0);
    recd_dataset_t *back = NULL;
    assert_int_equal(recd_dataset_load(f->out, &back, &err), 0);
    assert_int_equal(back->nevents, NEVENTS + 2);
    recd_dataset_free(back);
    recd_dataset_free(ds);
    recd_dataset_free(base);
}

static void test_explicit_base_plus_clicks(void **state)
{
    fx_t *f = *state;
    static const char *const id[] = {"id"};
    recd_err_t err = {0};
    recd_dataset_t *base = recd_dataset_new("ratings", 0, id, 1, id, 1, NULL, 0, &err);
    const char *a[] = {"u1"}, *x[] = {"i1"};
    assert_int_equal(recd_dataset_add_user(base, a, &err), 0);
    assert_int_equal(recd_dataset_add_item(base, x, &err), 0);
    assert_int_equal(recd_dataset_add_event(base, 0, 0, 5, RECD_EV_RATING, 4, NULL, &err), 0);
    recd_dataset_t *ds = NULL;
    /* an empty log keeps the base's kind */
    write_log(f->log, EVENTS, 0, NULL, 0, 0, NULL);
    assert_int_equal(recd_dataset_import_events(f->log, base, 0, NULL, &ds, NULL, &err), 0);
    assert_false(ds->implicit);
    assert_int_equal(ds->nevents, 1);
    recd_dataset_free(ds);
    /* clicks make it implicit */
    write_log(f->log, EVENTS, 2, NULL, 0, 0, NULL);
    assert_int_equal(recd_dataset_import_events(f->log, base, 0, NULL, &ds, NULL, &err), 0);
    assert_true(ds->implicit);
    assert_int_equal(ds->nevents, 3);
    recd_dataset_free(ds);
    recd_dataset_free(base);
}

static void test_undecodable_skipped(void **state)
{
    fx_t *f = *state;
    const char *bad[] = {
        "not json at all",
        "{\"ts\":1,\"item_id\":\"i1\",\"type\":\"click\",\"value\":1}", /* no user_id */
        "{\"ts\":1,\"user_id\":\"u1\",\"item_id\":\"i1\",\"type\":\"like\",\"value\":1}",
        /* decodes, but the rating does not fit a float */
        "{\"ts\":1,\"user_id\":\"u1\",\"item_id\":\"i1\",\"type\":\"rating\",\"value\":1e300}",
    };
    uint64_t off[4];
    write_log(f->log, EVENTS, NEVENTS, bad, 4, 2, off);
    char *text = NULL;
    size_t tlen = 0;
    FILE *warn = open_memstream(&text, &tlen);
    assert_non_null(warn);
    recd_dataset_t *ds = NULL;
    recd_import_stats_t st;
    recd_err_t err = {0};
    assert_int_equal(recd_dataset_import_events(f->log, NULL, 0, warn, &ds, &st, &err), 0);
    fclose(warn);
    assert_int_equal(st.lines, NEVENTS + 4);
    assert_int_equal(st.skipped, 4);
    assert_int_equal(ds->nevents, NEVENTS);
    for (size_t k = 0; k < 4; k++) {
        char want[PATH_MAX + 64];
        snprintf(want, sizeof want, "%s: record at log offset %llu: ", f->log,
                 (unsigned long long)off[k]);
        assert_non_null(strstr(text, want));
    }
    assert_non_null(strstr(text, "payload is not JSON"));
    assert_non_null(strstr(text, "user_id is missing or malformed"));
    assert_non_null(strstr(text, "type is missing or malformed"));
    assert_non_null(strstr(text, "does not fit a 32-bit float"));
    assert_non_null(strstr(text, "; skipped\n"));
    free(text);
    recd_dataset_free(ds);
    /* no warn stream: still skipped and counted */
    assert_int_equal(recd_dataset_import_events(f->log, NULL, 0, NULL, &ds, &st, &err), 0);
    assert_int_equal(st.skipped, 4);
    recd_dataset_free(ds);
}

/* Flip one payload byte of the second record of the first segment. */
static void damage(const char *dir)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%020d.seg", dir, 0);
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    unsigned char hdr[4];
    assert_int_equal(fread(hdr, 1, 4, fp), 4);
    long second = 8 + (long)(hdr[0] | hdr[1] << 8 | hdr[2] << 16 | (unsigned)hdr[3] << 24);
    assert_int_equal(fseek(fp, second + 8 + 5, SEEK_SET), 0);
    int c = fgetc(fp);
    assert_int_equal(fseek(fp, second + 8 + 5, SEEK_SET), 0);
    fputc(c ^ 0x20, fp);
    fclose(fp);
}

static void test_damage(void **state)
{
    fx_t *f = *state;
    write_log(f->log, EVENTS, NEVENTS, NULL, 0, 0, NULL);
    damage(f->log);
    recd_dataset_t *ds = NULL;
    recd_err_t err = {0};
    assert_int_equal(recd_dataset_import_events(f->log, NULL, 0, NULL, &ds, NULL, &err), RECD_EIO);
    assert_null(ds);
    assert_non_null(strstr(err.msg, "00000000000000000000.seg: corrupt record at byte offset"));
    char *text = NULL;
    size_t tlen = 0;
    FILE *warn = open_memstream(&text, &tlen);
    recd_import_stats_t st;
    assert_int_equal(recd_dataset_import_events(f->log, NULL, 1, warn, &ds, &st, &err), 0);
    fclose(warn);
    assert_int_equal(ds->nevents, NEVENTS - 1);
    assert_int_equal(st.skipped, 0);
    assert_non_null(strstr(text, "skipped 1 damaged region ("));
    free(text);
    recd_dataset_free(ds);
}

static void test_torn_tail_left_out(void **state)
{
    fx_t *f = *state;
    write_log(f->log, EVENTS, NEVENTS, NULL, 0, 0, NULL);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%020d.seg", f->log, 0);
    FILE *fp = fopen(path, "ab");
    assert_non_null(fp);
    fwrite("\x30\0\0\0\1\2\3\4{\"ts\"", 1, 13, fp); /* header + part of a payload */
    fclose(fp);
    char *text = NULL;
    size_t tlen = 0;
    FILE *warn = open_memstream(&text, &tlen);
    recd_dataset_t *ds = NULL;
    recd_err_t err = {0};
    assert_int_equal(recd_dataset_import_events(f->log, NULL, 0, warn, &ds, NULL, &err), 0);
    fclose(warn);
    assert_int_equal(ds->nevents, NEVENTS);
    assert_non_null(strstr(text, "torn tail of 13 bytes"));
    free(text);
    recd_dataset_free(ds);
}

static void test_bad_arguments(void **state)
{
    fx_t *f = *state;
    recd_dataset_t *ds = (recd_dataset_t *)1;
    recd_err_t err = {0};
    char missing[PATH_MAX + 16];
    snprintf(missing, sizeof missing, "%s/nope", f->top);
    assert_int_equal(recd_dataset_import_events(missing, NULL, 0, NULL, &ds, NULL, &err),
                     RECD_ENOENT);
    assert_null(ds);
    assert_non_null(strstr(err.msg, "nope"));
    assert_int_equal(recd_dataset_import_events(NULL, NULL, 0, NULL, &ds, NULL, &err), RECD_EINVAL);
    assert_int_equal(recd_dataset_import_events("", NULL, 0, NULL, &ds, NULL, &err), RECD_EINVAL);
    assert_int_equal(recd_dataset_import_events(f->log, NULL, 0, NULL, NULL, NULL, &err),
                     RECD_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_import_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ratings_only_is_explicit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_with_base, setup, teardown),
        cmocka_unit_test_setup_teardown(test_explicit_base_plus_clicks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_undecodable_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_left_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
