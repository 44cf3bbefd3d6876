/*
 * Unit tests for src/ab/runtime.c: the live experiment set (snapshots, slot
 * table), assignment with forced variants and merged overrides, request-id
 * attribution, event counting, the /stats, /metrics and definitions
 * renderers, the slot-table limit, and a concurrency smoke test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "recd/ab.h"
#include "recd/abrt.h"
#include "recd/dataset.h"
#include "recd/evrec.h"
#include "recd/stats.h"

#define N_USERS 100000
#define NTHREADS 2

/* ---- helpers ------------------------------------------------------------------ */

static int setup(void **state)
{
    (void)state;
    recd_err_t err = {0};
    return recd_abrt_init(NTHREADS, &err);
}

static int teardown(void **state)
{
    (void)state;
    recd_abrt_shutdown();
    return 0;
}

/* Parse an experiments array; fails the test on error. */
static void parse_set(const char *text, recd_ab_set_t *set)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    if (!j)
        fail_msg("bad test JSON: %s", jerr.text);
    recd_err_t err = {0};
    int rc = recd_ab_set_parse(j, NULL, set, &err);
    json_decref(j);
    if (rc)
        fail_msg("parse failed: %s", err.msg);
}

/* Parse and publish; returns recd_abrt_set's code. */
static int publish_rc(const char *text, recd_err_t *err)
{
    recd_ab_set_t set;
    parse_set(text, &set);
    int rc = recd_abrt_set(&set, err);
    recd_ab_set_free(&set);
    return rc;
}

static void publish(const char *text)
{
    recd_err_t err = {0};
    int rc = publish_rc(text, &err);
    if (rc)
        fail_msg("recd_abrt_set: %d %s", rc, err.msg);
}

static size_t uid(unsigned i, char *buf, size_t cap)
{
    return (size_t)snprintf(buf, cap, "u%u", i);
}

static void assign_ok(const char *user, const char *forced, recd_abrt_assignment_t *a)
{
    recd_err_t err = {0};
    int rc = recd_abrt_assign(user, strlen(user), forced, a, &err);
    if (rc)
        fail_msg("assign: %d %s", rc, err.msg);
}

/* The stats object of variant var of experiment exp (borrowed from st). */
static json_t *stats_var(json_t *st, const char *exp, const char *var)
{
    json_t *exps = json_object_get(st, "experiments");
    size_t i, k;
    json_t *x, *v;
    json_array_foreach (exps, i, x) {
        if (strcmp(json_string_value(json_object_get(x, "name")), exp) != 0)
            continue;
        json_array_foreach (json_object_get(x, "variants"), k, v)
            if (strcmp(json_string_value(json_object_get(v, "name")), var) == 0)
                return v;
    }
    return NULL;
}

/* An integer counter of a variant's stats ("requests", "forced.clicks"). */
static json_int_t stat_int(const char *exp, const char *var, const char *key)
{
    json_t *st = recd_abrt_stats_json();
    json_t *v = stats_var(st, exp, var);
    if (!v) {
        json_decref(st);
        fail_msg("no stats for %s/%s", exp, var);
    }
    json_t *x;
    if (strncmp(key, "forced.", 7) == 0)
        x = json_object_get(json_object_get(v, "forced"), key + 7);
    else
        x = json_object_get(v, key);
    assert_true(json_is_integer(x));
    json_int_t r = json_integer_value(x);
    json_decref(st);
    return r;
}

/* An event carrying the given pairs. */
static void make_event(recd_evrec_t *ev, int type, int forced, size_t n, const char *const *pairs)
{
    memset(ev, 0, sizeof *ev);
    ev->user_id = "u0";
    ev->user_len = 2;
    ev->item_id = "i0";
    ev->item_len = 2;
    ev->type = type;
    ev->value = 1;
    ev->forced = forced;
    ev->n_ab = n;
    for (size_t i = 0; i < n; i++) {
        ev->ab[i].experiment = pairs[2 * i];
        ev->ab[i].variant = pairs[2 * i + 1];
    }
}

static void count_n(unsigned thread, int type, int forced, size_t n, const char *const *pairs,
                    unsigned times)
{
    recd_evrec_t ev;
    make_event(&ev, type, forced, n, pairs);
    for (unsigned i = 0; i < times; i++)
        recd_abrt_count_event(thread, &ev);
}

static char *prom_text(void)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    recd_abrt_stats_prom(&buf, &len, &cap);
    if (!buf)
        return calloc(1, 1);
    return buf;
}

static const char *const TWO_EXPS =
    "[{\"name\":\"e1\",\"salt\":\"s-e1\",\"variants\":[{\"name\":\"a\",\"weight\":70},"
    "{\"name\":\"b\",\"weight\":20},{\"name\":\"c\",\"weight\":10}]},"
    "{\"name\":\"e2\",\"salt\":\"s-e2\",\"variants\":[{\"name\":\"x\",\"weight\":1},"
    "{\"name\":\"y\",\"weight\":1}]}]";

static const char *const AB_50_50 =
    "[{\"name\":\"e\",\"salt\":\"salt-e\",\"variants\":[{\"name\":\"a\",\"weight\":50},"
    "{\"name\":\"b\",\"weight\":50}]}]";
static const char *const AB_60_40 =
    "[{\"name\":\"e\",\"salt\":\"salt-e\",\"variants\":[{\"name\":\"a\",\"weight\":60},"
    "{\"name\":\"b\",\"weight\":40}]}]";

/* ---- tests --------------------------------------------------------------------- */

/* No experiments: everything answers "nothing". */
static void test_empty(void **state)
{
    (void)state;
    assert_int_equal(recd_abrt_count(), 0);
    recd_abrt_assignment_t a;
    assign_ok("u1", NULL, &a);
    assert_int_equal(a.n, 0);
    assert_null(a.model);
    assert_int_equal(a.rank, -1);
    recd_abrt_record_request(0, &a, 10);
    recd_abrt_remember("r1", 2, &a);
    recd_evrec_t ev;
    make_event(&ev, RECD_EV_CLICK, 0, 0, NULL);
    ev.request_id = "r1";
    recd_abrt_attribute(&ev);
    assert_int_equal(ev.n_ab, 0);
    ev.request_id = NULL;
    recd_abrt_attribute(&ev);
    assert_int_equal(ev.n_ab, 0);

    json_t *st = recd_abrt_stats_json();
    char *s = json_dumps(st, JSON_COMPACT);
    assert_string_equal(s, "{\"experiments\":[]}");
    free(s);
    json_decref(st);
    json_t *defs = recd_abrt_defs_json();
    assert_true(json_is_array(defs) && json_array_size(defs) == 0);
    json_decref(defs);
    char *p = prom_text();
    assert_string_equal(p, "");
    free(p);

    /* a forced variant that no live experiment has */
    recd_err_t err = {0};
    assert_int_equal(recd_abrt_assign("u1", 2, "a", &a, &err), RECD_ENOENT);
    assert_int_equal(err.code, RECD_ENOENT);
    /* NULL set: none */
    assert_int_equal(recd_abrt_set(NULL, &err), 0);
    assert_int_equal(recd_abrt_count(), 0);
}

/* 100k users split within 1% of the weights in each experiment, each pick
 * the pure assignment of include/recd/ab.h. */
static void test_assign_shares(void **state)
{
    (void)state;
    publish(TWO_EXPS);
    assert_int_equal(recd_abrt_count(), 2);
    unsigned cnt[2][3] = {{0}};
    uint32_t slot_of[2][3];
    memset(slot_of, 0xff, sizeof slot_of);
    for (unsigned i = 0; i < N_USERS; i++) {
        char u[32];
        size_t ul = uid(i, u, sizeof u);
        recd_abrt_assignment_t a;
        recd_err_t err = {0};
        assert_int_equal(recd_abrt_assign(u, ul, NULL, &a, &err), 0);
        assert_int_equal(a.n, 2);
        for (size_t e = 0; e < 2; e++) {
            const recd_abrt_pick_t *p = &a.picks[e];
            assert_string_equal(p->exp->name, e ? "e2" : "e1");
            assert_int_equal(p->forced, 0);
            size_t v = (size_t)(p->variant - p->exp->variants);
            assert_int_equal(v, recd_ab_assign(p->exp, u, ul));
            cnt[e][v]++;
            if (slot_of[e][v] == UINT32_MAX)
                slot_of[e][v] = p->slot;
            assert_int_equal(slot_of[e][v], p->slot); /* one slot per pair */
        }
    }
    const double want[2][3] = {{0.7, 0.2, 0.1}, {0.5, 0.5, 0}};
    for (int e = 0; e < 2; e++)
        for (int v = 0; v < (e ? 2 : 3); v++) {
            double share = (double)cnt[e][v] / N_USERS;
            if (fabs(share - want[e][v]) > 0.01)
                fail_msg("e%d v%d share %.4f, want %.2f", e + 1, v, share, want[e][v]);
        }
    /* five pairs, five different slots */
    uint32_t all[5] = {slot_of[0][0], slot_of[0][1], slot_of[0][2], slot_of[1][0], slot_of[1][1]};
    for (int i = 0; i < 5; i++)
        for (int k = 0; k < i; k++)
            assert_int_not_equal(all[i], all[k]);
}

/* Publishing an equal copy changes no assignment and no slot; pointers into
 * the older snapshot stay valid. */
static void test_set_equal_copy(void **state)
{
    (void)state;
    enum { N = 20000 };
    publish(TWO_EXPS);
    static const recd_ab_variant_t *v1[N][2];
    static uint32_t s1[N][2];
    const recd_ab_exp_t *old_e1 = NULL;
    for (unsigned i = 0; i < N; i++) {
        char u[32];
        uid(i, u, sizeof u);
        recd_abrt_assignment_t a;
        assign_ok(u, NULL, &a);
        old_e1 = a.picks[0].exp;
        for (int e = 0; e < 2; e++) {
            v1[i][e] = a.picks[e].variant;
            s1[i][e] = a.picks[e].slot;
        }
    }
    publish(TWO_EXPS); /* a separately parsed, equal set */
    for (unsigned i = 0; i < N; i++) {
        char u[32];
        uid(i, u, sizeof u);
        recd_abrt_assignment_t a;
        assign_ok(u, NULL, &a);
        assert_ptr_not_equal(a.picks[0].exp, old_e1); /* a new snapshot */
        for (int e = 0; e < 2; e++) {
            assert_string_equal(a.picks[e].variant->name, v1[i][e]->name);
            assert_int_equal(a.picks[e].slot, s1[i][e]);
        }
    }
    /* the old snapshot is still readable (ASan would flag a free) */
    assert_string_equal(old_e1->name, "e1");
    assert_int_equal(old_e1->n_variants, 3);
}

/* 50/50 -> 60/40 moves exactly the users of buckets 5000..5999 (10%), all
 * from b to a; counters of both variants carry over. */
static void test_weight_change(void **state)
{
    (void)state;
    publish(AB_50_50);
    static uint8_t before[N_USERS];
    for (unsigned i = 0; i < N_USERS; i++) {
        char u[32];
        uid(i, u, sizeof u);
        recd_abrt_assignment_t a;
        assign_ok(u, NULL, &a);
        before[i] = (uint8_t)(a.picks[0].variant - a.picks[0].exp->variants);
        recd_abrt_record_request(i % NTHREADS, &a, 100);
    }
    static const char *const ea[] = {"e", "a"}, *const eb[] = {"e", "b"};
    count_n(0, RECD_EV_IMPRESSION, 0, 1, ea, 40);
    count_n(1, RECD_EV_CLICK, 0, 1, eb, 7);
    json_int_t req_a = stat_int("e", "a", "requests"), req_b = stat_int("e", "b", "requests");
    assert_int_equal(req_a + req_b, N_USERS);

    publish(AB_60_40);
    unsigned moved = 0, in_band = 0;
    for (unsigned i = 0; i < N_USERS; i++) {
        char u[32];
        size_t ul = uid(i, u, sizeof u);
        recd_abrt_assignment_t a;
        assign_ok(u, NULL, &a);
        uint8_t now = (uint8_t)(a.picks[0].variant - a.picks[0].exp->variants);
        uint32_t b = recd_ab_bucket("salt-e", 6, u, ul);
        int band = b >= 5000 && b < 6000;
        in_band += (unsigned)band;
        if (now != before[i]) {
            moved++;
            assert_true(band);
            assert_int_equal(before[i], 1);
            assert_int_equal(now, 0);
        } else {
            assert_false(band);
        }
    }
    assert_int_equal(moved, in_band);
    if (fabs((double)moved / N_USERS - 0.10) > 0.01)
        fail_msg("moved %u of %u users, want 10%%", moved, N_USERS);
    /* counters carried over */
    assert_int_equal(stat_int("e", "a", "requests"), req_a);
    assert_int_equal(stat_int("e", "b", "requests"), req_b);
    assert_int_equal(stat_int("e", "a", "impressions"), 40);
    assert_int_equal(stat_int("e", "b", "clicks"), 7);

    /* a new variant starts at zero; a dropped one is not rendered but keeps
     * its counters for when it comes back */
    publish("[{\"name\":\"e\",\"salt\":\"salt-e\",\"variants\":[{\"name\":\"a\",\"weight\":60},"
            "{\"name\":\"c\",\"weight\":40}]}]");
    assert_int_equal(stat_int("e", "c", "requests"), 0);
    json_t *st = recd_abrt_stats_json();
    assert_null(stats_var(st, "e", "b"));
    json_decref(st);
    publish(AB_60_40);
    assert_int_equal(stat_int("e", "b", "requests"), req_b);
}

/* X-Recd-Variant: the named variant where it exists (weight 0 included),
 * normal assignment elsewhere, RECD_ENOENT when nothing has it. */
static void test_forced(void **state)
{
    (void)state;
    publish("[{\"name\":\"e1\",\"salt\":\"s1\",\"variants\":[{\"name\":\"a\",\"weight\":1},"
            "{\"name\":\"b\",\"weight\":1},{\"name\":\"q\",\"weight\":0}]},"
            "{\"name\":\"e2\",\"salt\":\"s2\",\"variants\":[{\"name\":\"x\",\"weight\":1},"
            "{\"name\":\"y\",\"weight\":1}]}]");
    for (unsigned i = 0; i < 200; i++) {
        char u[32];
        size_t ul = uid(i, u, sizeof u);
        recd_abrt_assignment_t a;
        assign_ok(u, "q", &a);
        assert_int_equal(a.n, 2);
        assert_string_equal(a.picks[0].variant->name, "q");
        assert_int_equal(a.picks[0].forced, 1);
        assert_int_equal(a.picks[1].forced, 0);
        assert_ptr_equal(a.picks[1].variant,
                         &a.picks[1].exp->variants[recd_ab_assign(a.picks[1].exp, u, ul)]);
    }
    recd_abrt_assignment_t a;
    assign_ok("u1", "y", &a);
    assert_int_equal(a.picks[0].forced, 0);
    assert_string_equal(a.picks[1].variant->name, "y");
    assert_int_equal(a.picks[1].forced, 1);

    recd_err_t err = {0};
    assert_int_equal(recd_abrt_assign("u1", 2, "nope", &a, &err), RECD_ENOENT);
    assert_int_equal(err.code, RECD_ENOENT);
    assert_non_null(strstr(err.msg, "\"nope\""));

    /* forced requests are counted apart */
    assign_ok("u1", "q", &a);
    const char *other = a.picks[1].variant->name;
    recd_abrt_record_request(0, &a, 50);
    recd_abrt_record_request(RECD_ABRT_REPLAY, &a, 50);
    assert_int_equal(stat_int("e1", "q", "requests"), 0);
    assert_int_equal(stat_int("e1", "q", "forced.requests"), 2);
    assert_int_equal(stat_int("e2", other, "requests"), 2);
    assert_int_equal(stat_int("e2", other, "forced.requests"), 0);
    /* an index that is no thread's is dropped, not a crash */
    recd_abrt_record_request(NTHREADS, &a, 50);
    recd_abrt_record_request(12345, &a, 50);
    assert_int_equal(stat_int("e1", "q", "forced.requests"), 2);
}

static void assign_single(recd_abrt_assignment_t *a)
{
    assign_ok("anyone", NULL, a);
}

/* Overrides merge in config order, later experiments winning; "not set"
 * never overrides; a model and its pinned version go together. */
static void test_override_merge(void **state)
{
    (void)state;
    const char *e1 = "{\"name\":\"e1\",\"salt\":\"s\",\"variants\":[{\"name\":\"v\",\"weight\":1,"
                     "\"model\":\"m1\",\"version\":3,\"candidates\":100,\"rank\":true,"
                     "\"score\":\"pctr\"}]}";
    const char *e2 = "{\"name\":\"e2\",\"salt\":\"s\",\"variants\":[{\"name\":\"v\",\"weight\":1,"
                     "\"model\":\"m2\",\"rank\":false}]}";
    const char *e3 = "{\"name\":\"e3\",\"salt\":\"s\",\"variants\":[{\"name\":\"v\",\"weight\":1,"
                     "\"candidates\":50,\"score\":\"watch_time\"}]}";
    const char *e4 =
        "{\"name\":\"e4\",\"salt\":\"s\",\"variants\":[{\"name\":\"v\",\"weight\":1}]}";
    char text[2048];
    recd_abrt_assignment_t a;

    snprintf(text, sizeof text, "[%s]", e4);
    publish(text);
    assign_single(&a);
    assert_null(a.model);
    assert_int_equal(a.version, 0);
    assert_int_equal(a.candidates, 0);
    assert_int_equal(a.rank, -1);
    assert_int_equal(a.score, RECD_AB_SCORE_DEFAULT);

    snprintf(text, sizeof text, "[%s,%s]", e1, e4);
    publish(text);
    assign_single(&a);
    assert_string_equal(a.model, "m1");
    assert_int_equal(a.version, 3);
    assert_int_equal(a.candidates, 100);
    assert_int_equal(a.rank, 1);
    assert_int_equal(a.score, RECD_AB_SCORE_PCTR);

    snprintf(text, sizeof text, "[%s,%s,%s]", e1, e2, e3);
    publish(text);
    assign_single(&a);
    assert_string_equal(a.model, "m2");
    assert_int_equal(a.version, 0); /* m2 unpinned: not m1's version 3 */
    assert_int_equal(a.candidates, 50);
    assert_int_equal(a.rank, 0);
    assert_int_equal(a.score, RECD_AB_SCORE_WATCH_TIME);

    snprintf(text, sizeof text, "[%s,%s,%s]", e3, e2, e1); /* reversed: e1 wins all */
    publish(text);
    assign_single(&a);
    assert_string_equal(a.model, "m1");
    assert_int_equal(a.version, 3);
    assert_int_equal(a.candidates, 100);
    assert_int_equal(a.rank, 1);
    assert_int_equal(a.score, RECD_AB_SCORE_PCTR);
}

static void assert_ab(const recd_evrec_t *ev, size_t n, const char *const *pairs)
{
    assert_int_equal(ev->n_ab, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(ev->ab[i].experiment, pairs[2 * i]);
        assert_string_equal(ev->ab[i].variant, pairs[2 * i + 1]);
    }
}

static const char *const SET_A = /* everyone in a and x */
    "[{\"name\":\"e\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\",\"weight\":1},"
    "{\"name\":\"b\",\"weight\":0}]},"
    "{\"name\":\"f\",\"salt\":\"t\",\"variants\":[{\"name\":\"x\",\"weight\":1},"
    "{\"name\":\"y\",\"weight\":0}]}]";
static const char *const SET_B = /* everyone in b and y */
    "[{\"name\":\"e\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\",\"weight\":0},"
    "{\"name\":\"b\",\"weight\":1}]},"
    "{\"name\":\"f\",\"salt\":\"t\",\"variants\":[{\"name\":\"x\",\"weight\":0},"
    "{\"name\":\"y\",\"weight\":1}]}]";

static void attribute_req(recd_evrec_t *ev, const char *rid, const char *hexp, const char *hvar)
{
    make_event(ev, RECD_EV_CLICK, 0, 0, NULL);
    ev->request_id = rid;
    ev->hint_experiment = hexp;
    ev->hint_variant = hvar;
    recd_abrt_attribute(ev);
}

/* Attribution: the remembered request beats the current assignment; then
 * the hint; then the current assignment. */
static void test_remember_attribute(void **state)
{
    (void)state;
    static const char *const AX[] = {"e", "a", "f", "x"}, *const BY[] = {"e", "b", "f", "y"};
    publish(SET_A);
    recd_abrt_assignment_t a;
    assign_ok("u1", NULL, &a);
    recd_abrt_remember("r1", 2, &a);
    publish(SET_B);

    recd_evrec_t ev;
    attribute_req(&ev, "r1", NULL, NULL);
    assert_ab(&ev, 2, AX);
    assert_int_equal(ev.forced, 0);
    attribute_req(&ev, "r1", "f", "y"); /* the table beats the hint */
    assert_ab(&ev, 2, AX);
    attribute_req(&ev, "r-unknown", NULL, NULL);
    assert_ab(&ev, 2, BY);
    attribute_req(&ev, NULL, NULL, NULL);
    assert_ab(&ev, 2, BY);

    /* hints */
    static const char *const FY[] = {"f", "y"}, *const EA[] = {"e", "a"};
    attribute_req(&ev, NULL, NULL, "y");
    assert_ab(&ev, 1, FY);
    attribute_req(&ev, "r-unknown", "e", "a");
    assert_ab(&ev, 1, EA);
    attribute_req(&ev, NULL, "f", "a"); /* f has no a: current assignment */
    assert_ab(&ev, 2, BY);
    attribute_req(&ev, NULL, NULL, "zzz");
    assert_ab(&ev, 2, BY);
    attribute_req(&ev, NULL, "gone", "a");
    assert_ab(&ev, 2, BY);

    /* forced requests are remembered as forced */
    static const char *const AY[] = {"e", "a", "f", "y"};
    assign_ok("u2", "a", &a);
    recd_abrt_remember("r2", 2, &a);
    attribute_req(&ev, "r2", NULL, NULL);
    assert_ab(&ev, 2, AY);
    assert_int_equal(ev.forced, 1);

    /* the same id again replaces its entry */
    assign_ok("u1", NULL, &a);
    recd_abrt_remember("r1", 2, &a);
    attribute_req(&ev, "r1", NULL, NULL);
    assert_ab(&ev, 2, BY);

    /* the id is hashed over len bytes, as events carry it NUL-terminated */
    recd_abrt_remember("r3-and-more", 2, &a);
    attribute_req(&ev, "r3", NULL, NULL);
    assert_ab(&ev, 2, BY);

    /* names outlive the experiment */
    publish(SET_A);
    assign_ok("u1", NULL, &a);
    recd_abrt_remember("r4", 2, &a);
    publish("[]");
    attribute_req(&ev, "r4", NULL, NULL);
    assert_ab(&ev, 2, AX);
    attribute_req(&ev, "r-unknown", NULL, NULL);
    assert_int_equal(ev.n_ab, 0);
}

/* The table is bounded: old entries are overwritten, recent ones kept. */
static void test_remember_bounded(void **state)
{
    (void)state;
    enum { FLOOD = 300000 };
    publish(SET_A);
    recd_abrt_assignment_t a;
    assign_ok("u1", "a", &a); /* forced: a hit is told apart by ev.forced */
    recd_abrt_remember("first", 5, &a);
    recd_evrec_t ev;
    attribute_req(&ev, "first", NULL, NULL);
    assert_int_equal(ev.forced, 1);
    char id[32];
    for (unsigned i = 0; i < FLOOD; i++) {
        int n = snprintf(id, sizeof id, "q%u", i);
        recd_abrt_remember(id, (size_t)n, &a);
    }
    attribute_req(&ev, "first", NULL, NULL);
    assert_int_equal(ev.forced, 0); /* gone: current assignment */
    unsigned hits = 0;
    for (unsigned i = FLOOD - 1000; i < FLOOD; i++) {
        snprintf(id, sizeof id, "q%u", i);
        attribute_req(&ev, id, NULL, NULL);
        hits += (unsigned)ev.forced;
    }
    assert_int_equal(hits, 1000);
}

/* Impressions and clicks per pair, forced ones apart; other types and
 * unknown pairs ignored. */
static void test_count_event(void **state)
{
    (void)state;
    publish("[{\"name\":\"e\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\",\"weight\":1},"
            "{\"name\":\"b\",\"weight\":1}]},"
            "{\"name\":\"f\",\"salt\":\"t\",\"variants\":[{\"name\":\"x\",\"weight\":1}]}]");
    /* names in caller buffers: lookups are by name, not pointer */
    char e[8] = "e", va[8] = "a", f[8] = "f", x[8] = "x";
    const char *pairs[] = {e, va, f, x};
    count_n(0, RECD_EV_IMPRESSION, 0, 2, pairs, 3);
    count_n(1, RECD_EV_CLICK, 0, 2, pairs, 1);
    count_n(RECD_ABRT_REPLAY, RECD_EV_IMPRESSION, 1, 2, pairs, 2);
    count_n(0, RECD_EV_CLICK, 1, 2, pairs, 1);
    count_n(0, RECD_EV_WATCH, 0, 2, pairs, 5);
    count_n(0, RECD_EV_PURCHASE, 0, 2, pairs, 5);
    count_n(0, RECD_EV_RATING, 0, 2, pairs, 5);
    count_n(NTHREADS, RECD_EV_IMPRESSION, 0, 2, pairs, 5); /* no such thread */
    count_n(UINT32_MAX - 1, RECD_EV_CLICK, 0, 2, pairs, 5);
    static const char *const unknown[] = {"e", "zz", "nope", "a"};
    count_n(0, RECD_EV_IMPRESSION, 0, 2, unknown, 5);
    static const char *const nulls[] = {NULL, "a"};
    count_n(0, RECD_EV_IMPRESSION, 0, 1, nulls, 5);

    const char *who[][2] = {{"e", "a"}, {"f", "x"}};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(stat_int(who[i][0], who[i][1], "impressions"), 3);
        assert_int_equal(stat_int(who[i][0], who[i][1], "clicks"), 1);
        assert_int_equal(stat_int(who[i][0], who[i][1], "forced.impressions"), 2);
        assert_int_equal(stat_int(who[i][0], who[i][1], "forced.clicks"), 1);
    }
    assert_int_equal(stat_int("e", "b", "impressions"), 0);
    assert_int_equal(stat_int("e", "b", "clicks"), 0);

    /* attribute + count: the path /v1/events takes */
    recd_abrt_assignment_t a;
    assign_ok("u9", "b", &a);
    recd_abrt_remember("r9", 2, &a);
    recd_evrec_t ev;
    attribute_req(&ev, "r9", NULL, NULL);
    ev.type = RECD_EV_CLICK;
    recd_abrt_count_event(1, &ev);
    assert_int_equal(stat_int("e", "b", "forced.clicks"), 1);
    assert_int_equal(stat_int("e", "b", "clicks"), 0);
}

static const char *const THREE =
    "[{\"name\":\"e\",\"salt\":\"salt\",\"variants\":[{\"name\":\"c\",\"weight\":1},"
    "{\"name\":\"t\",\"weight\":1},{\"name\":\"u\",\"weight\":1}]}]";

/* c: 1000 impressions 100 clicks, 100 requests of 1..100 us; t: 1000/130;
 * u: nothing. */
static void fill_three(void)
{
    publish(THREE);
    static const char *const ec[] = {"e", "c"}, *const et[] = {"e", "t"};
    count_n(0, RECD_EV_IMPRESSION, 0, 1, ec, 600);
    count_n(1, RECD_EV_IMPRESSION, 0, 1, ec, 400);
    count_n(0, RECD_EV_CLICK, 0, 1, ec, 100);
    count_n(RECD_ABRT_REPLAY, RECD_EV_IMPRESSION, 0, 1, et, 1000);
    count_n(1, RECD_EV_CLICK, 0, 1, et, 130);
    count_n(1, RECD_EV_CLICK, 1, 1, et, 4);
    recd_abrt_assignment_t a;
    assign_ok("someone", "c", &a);
    a.picks[0].forced = 0; /* counted as a normal request of c */
    for (unsigned i = 1; i <= 100; i++)
        recd_abrt_record_request(i % 2, &a, i);
}

static void assert_num(json_t *j, double want)
{
    if (isnan(want)) {
        assert_true(json_is_null(j));
    } else {
        assert_true(json_is_real(j));
        assert_true(json_real_value(j) == want);
    }
}

/* /stats: every documented field, the readout exactly recd_ab_readout's,
 * NaN as null, percentiles from the merged histograms. */
static void test_stats_json(void **state)
{
    (void)state;
    fill_three();
    json_t *st = recd_abrt_stats_json();
    json_t *exps = json_object_get(st, "experiments");
    assert_int_equal(json_array_size(exps), 1);
    json_t *x = json_array_get(exps, 0);
    assert_string_equal(json_string_value(json_object_get(x, "name")), "e");
    assert_string_equal(json_string_value(json_object_get(x, "salt")), "salt");
    json_t *vars = json_object_get(x, "variants");
    assert_int_equal(json_array_size(vars), 3);

    const uint64_t imp[] = {1000, 1000, 0}, clk[] = {100, 130, 0};
    recd_ab_readout_t ro[3];
    recd_ab_readout(imp, clk, 3, ro);
    static const char *const keys[] = {
        "name", "weight",   "buckets", "requests", "latency_us", "impressions", "clicks",
        "ctr",  "ctr_ci95", "lift",    "z",        "p_value",    "forced"};
    const uint32_t lo[] = {0, 3333, 6666}, hi[] = {3333, 6666, 10000};
    for (size_t v = 0; v < 3; v++) {
        json_t *o = json_array_get(vars, v);
        assert_int_equal(json_object_size(o), sizeof keys / sizeof keys[0]);
        size_t k = 0;
        const char *key;
        json_t *val;
        json_object_foreach (o, key, val) /* documented order */
            assert_string_equal(key, keys[k++]);
        assert_int_equal(json_integer_value(json_object_get(o, "weight")), 1);
        json_t *b = json_object_get(o, "buckets");
        assert_int_equal(json_integer_value(json_array_get(b, 0)), lo[v]);
        assert_int_equal(json_integer_value(json_array_get(b, 1)), hi[v]);
        assert_int_equal(json_integer_value(json_object_get(o, "impressions")), imp[v]);
        assert_int_equal(json_integer_value(json_object_get(o, "clicks")), clk[v]);
        assert_num(json_object_get(o, "ctr"), ro[v].ctr);
        assert_num(json_array_get(json_object_get(o, "ctr_ci95"), 0), ro[v].ci_lo);
        assert_num(json_array_get(json_object_get(o, "ctr_ci95"), 1), ro[v].ci_hi);
        assert_num(json_object_get(o, "lift"), ro[v].lift);
        assert_num(json_object_get(o, "z"), ro[v].z);
        assert_num(json_object_get(o, "p_value"), ro[v].p_value);
        json_t *lat = json_object_get(o, "latency_us");
        assert_int_equal(json_object_size(lat), 5);
        json_t *fo = json_object_get(o, "forced");
        assert_int_equal(json_object_size(fo), 3);
        assert_int_equal(json_integer_value(json_object_get(fo, "clicks")), v == 1 ? 4 : 0);
    }
    /* spot values, independent of recd_ab_readout */
    json_t *c = json_array_get(vars, 0), *t = json_array_get(vars, 1), *u = json_array_get(vars, 2);
    assert_true(fabs(json_real_value(json_object_get(c, "ctr")) - 0.1) < 1e-15);
    assert_true(fabs(json_real_value(json_object_get(t, "lift")) - 0.3) < 1e-12);
    assert_true(json_is_null(json_object_get(c, "z")));
    assert_true(json_is_null(json_object_get(u, "ctr")));
    double p = json_real_value(json_object_get(t, "p_value"));
    assert_true(p > 0.01 && p < 0.05); /* 10% vs 13% on 1000 each: z = 2.1 */

    /* latency: 1..100 us on two threads, merged */
    recd_hist_t *h = calloc(1, sizeof *h);
    recd_hist_snap_t *hs = calloc(1, sizeof *hs);
    for (unsigned i = 1; i <= 100; i++)
        recd_hist_record(h, i);
    recd_hist_merge(hs, h);
    json_t *lat = json_object_get(c, "latency_us");
    assert_int_equal(json_integer_value(json_object_get(lat, "p50")), 50);
    assert_int_equal(json_integer_value(json_object_get(lat, "p90")), recd_hist_quantile(hs, 0.9));
    assert_int_equal(json_integer_value(json_object_get(lat, "p99")), recd_hist_quantile(hs, 0.99));
    assert_int_equal(json_integer_value(json_object_get(lat, "p999")), 100);
    assert_int_equal(json_integer_value(json_object_get(lat, "max")), 100);
    assert_int_equal(json_integer_value(json_object_get(c, "requests")), 100);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(u, "latency_us"), "max")),
                     0);
    free(h);
    free(hs);

    char *s = json_dumps(st, JSON_COMPACT);
    assert_non_null(strstr(s, "\"ctr\":null"));
    assert_non_null(strstr(s, "\"ctr_ci95\":[null,null]"));
    free(s);
    json_decref(st);
}

/* Run promtool on the text when it is installed (Debian package
 * `prometheus`); returns 1 when it ran and accepted it, -1 when absent. */
static int promtool_ok(const char *text)
{
    const char *tool = "/usr/bin/promtool";
    if (access(tool, X_OK) != 0)
        return -1;
    char path[] = "/tmp/test_abrt_prom.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "%s check metrics < %s > /dev/null 2>&1", tool, path);
    int rc = system(cmd);
    unlink(path);
    return rc == 0;
}

/* /metrics: the families and lines of include/recd/abrt.h; NaN samples left
 * out; only live experiments. */
static void test_prom(void **state)
{
    (void)state;
    fill_three();
    char *p = prom_text();
    static const char *const want[] = {
        "# TYPE recd_ab_requests_total counter\n",
        "recd_ab_requests_total{experiment=\"e\",variant=\"c\",forced=\"0\"} 100\n",
        "recd_ab_requests_total{experiment=\"e\",variant=\"u\",forced=\"1\"} 0\n",
        "# TYPE recd_ab_impressions_total counter\n",
        "recd_ab_impressions_total{experiment=\"e\",variant=\"t\",forced=\"0\"} 1000\n",
        "# TYPE recd_ab_clicks_total counter\n",
        "recd_ab_clicks_total{experiment=\"e\",variant=\"t\",forced=\"1\"} 4\n",
        "recd_ab_clicks_total{experiment=\"e\",variant=\"c\",forced=\"0\"} 100\n",
        "# TYPE recd_ab_request_duration_seconds histogram\n",
        "recd_ab_request_duration_seconds_bucket{experiment=\"e\",variant=\"c\",le=\"0.0001\"} "
        "100\n",
        "recd_ab_request_duration_seconds_bucket{experiment=\"e\",variant=\"c\",le=\"+Inf\"} 100\n",
        "recd_ab_request_duration_seconds_sum{experiment=\"e\",variant=\"c\"} 0.005050\n",
        "recd_ab_request_duration_seconds_count{experiment=\"e\",variant=\"c\"} 100\n",
        "recd_ab_request_duration_seconds_count{experiment=\"e\",variant=\"u\"} 0\n",
        "# TYPE recd_ab_ctr gauge\n",
        "recd_ab_ctr{experiment=\"e\",variant=\"c\"} 0.1\n",
        "recd_ab_ctr{experiment=\"e\",variant=\"t\"} 0.13\n",
        "# TYPE recd_ab_ctr_ci95_lower gauge\n",
        "# TYPE recd_ab_ctr_ci95_upper gauge\n",
        "# TYPE recd_ab_lift gauge\n",
        "recd_ab_lift{experiment=\"e\",variant=\"c\"} 0\n",
        "# TYPE recd_ab_p_value gauge\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(p, want[i]))
            fail_msg("missing line: %s---\n%s", want[i], p);
    /* computed values, as printed */
    const uint64_t imp[] = {1000, 1000, 0}, clk[] = {100, 130, 0};
    recd_ab_readout_t ro[3];
    recd_ab_readout(imp, clk, 3, ro);
    char line[256];
    snprintf(line, sizeof line, "recd_ab_p_value{experiment=\"e\",variant=\"t\"} %.15g\n",
             ro[1].p_value);
    assert_non_null(strstr(p, line));
    snprintf(line, sizeof line, "recd_ab_ctr_ci95_lower{experiment=\"e\",variant=\"t\"} %.15g\n",
             ro[1].ci_lo);
    assert_non_null(strstr(p, line));
    /* NaN samples are left out */
    assert_null(strstr(p, "recd_ab_ctr{experiment=\"e\",variant=\"u\"}"));
    assert_null(strstr(p, "recd_ab_p_value{experiment=\"e\",variant=\"c\"}"));
    assert_null(strstr(p, "recd_ab_lift{experiment=\"e\",variant=\"u\"}"));
    assert_null(strstr(p, "NaN"));
    assert_null(strstr(p, "nan"));
    /* each family declared once */
    const char *q = strstr(p, "# TYPE recd_ab_ctr gauge");
    assert_null(strstr(q + 1, "# TYPE recd_ab_ctr gauge"));
    assert_int_not_equal(promtool_ok(p), 0);
    free(p);

    /* a dropped experiment disappears from /metrics */
    publish("[{\"name\":\"other\",\"salt\":\"s\",\"variants\":[{\"name\":\"c\",\"weight\":1}]}]");
    p = prom_text();
    assert_null(strstr(p, "experiment=\"e\""));
    assert_non_null(strstr(p, "recd_ab_requests_total{experiment=\"other\",variant=\"c\","
                              "forced=\"0\"} 0\n"));
    assert_int_not_equal(promtool_ok(p), 0);
    free(p);
}

static void assert_exp_equal(const recd_ab_exp_t *a, const recd_ab_exp_t *b)
{
    assert_string_equal(a->name, b->name);
    assert_string_equal(a->salt, b->salt);
    assert_int_equal(a->salt_len, b->salt_len);
    assert_int_equal(a->n_variants, b->n_variants);
    for (size_t v = 0; v < a->n_variants; v++) {
        const recd_ab_variant_t *x = &a->variants[v], *y = &b->variants[v];
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->weight, y->weight);
        assert_string_equal(x->model, y->model);
        assert_int_equal(x->version, y->version);
        assert_int_equal(x->candidates, y->candidates);
        assert_int_equal(x->rank, y->rank);
        assert_int_equal(x->score, y->score);
        assert_int_equal(x->bucket_lo, y->bucket_lo);
        assert_int_equal(x->bucket_hi, y->bucket_hi);
    }
}

/* GET /admin/experiments: the config's shape plus bucket ranges; without
 * "buckets" it parses back into the same definitions. */
static void test_defs_json(void **state)
{
    (void)state;
    const char *text =
        "[{\"name\":\"e1\",\"salt\":\"a salt!\",\"variants\":[{\"name\":\"ctl\",\"weight\":3},"
        "{\"name\":\"m\",\"weight\":1,\"model\":\"deep\",\"version\":7,\"candidates\":300,"
        "\"rank\":false,\"score\":\"watch_time\"},{\"name\":\"z\",\"weight\":0,\"rank\":true,"
        "\"score\":\"pctr\"}]},"
        "{\"name\":\"e2\",\"salt\":\"s2\",\"variants\":[{\"name\":\"only\",\"weight\":5}]}]";
    recd_ab_set_t orig;
    parse_set(text, &orig);
    publish(text);
    json_t *defs = recd_abrt_defs_json();
    assert_int_equal(json_array_size(defs), 2);
    json_t *m = json_array_get(json_object_get(json_array_get(defs, 0), "variants"), 1);
    assert_string_equal(json_string_value(json_object_get(m, "model")), "deep");
    assert_int_equal(json_integer_value(json_object_get(m, "version")), 7);
    assert_int_equal(json_integer_value(json_object_get(m, "candidates")), 300);
    assert_true(json_is_false(json_object_get(m, "rank")));
    assert_string_equal(json_string_value(json_object_get(m, "score")), "watch_time");
    json_t *b = json_object_get(m, "buckets");
    assert_int_equal(json_integer_value(json_array_get(b, 0)), 7500);
    assert_int_equal(json_integer_value(json_array_get(b, 1)), 10000);
    json_t *ctl = json_array_get(json_object_get(json_array_get(defs, 0), "variants"), 0);
    assert_int_equal(json_object_size(ctl), 3); /* name, weight, buckets: nothing unset */

    size_t i, k;
    json_t *x, *v;
    json_array_foreach (defs, i, x)
        json_array_foreach (json_object_get(x, "variants"), k, v)
            assert_int_equal(json_object_del(v, "buckets"), 0);
    recd_ab_set_t back;
    recd_err_t err = {0};
    if (recd_ab_set_parse(defs, NULL, &back, &err))
        fail_msg("defs do not parse back: %s", err.msg);
    assert_int_equal(back.n, orig.n);
    for (i = 0; i < orig.n; i++)
        assert_exp_equal(&back.exps[i], &orig.exps[i]);
    recd_ab_set_free(&back);
    recd_ab_set_free(&orig);
    json_decref(defs);
}

/* Build 64 experiments of 16 variants (1024 pairs); variant `rename` of
 * experiment 0 is called "new" when rename >= 0. */
static char *full_set_text(int rename)
{
    size_t cap = 64 * 16 * 48 + 64 * 64, off = 0;
    char *t = malloc(cap);
    off += (size_t)snprintf(t + off, cap - off, "[");
    for (int e = 0; e < RECD_AB_MAX_EXPERIMENTS; e++) {
        off +=
            (size_t)snprintf(t + off, cap - off,
                             "%s{\"name\":\"x%d\",\"salt\":\"s\",\"variants\":[", e ? "," : "", e);
        for (int v = 0; v < RECD_AB_MAX_VARIANTS; v++) {
            if (e == 0 && v == rename)
                off += (size_t)snprintf(t + off, cap - off, "%s{\"name\":\"new\",\"weight\":1}",
                                        v ? "," : "");
            else
                off += (size_t)snprintf(t + off, cap - off, "%s{\"name\":\"v%d\",\"weight\":1}",
                                        v ? "," : "", v);
        }
        off += (size_t)snprintf(t + off, cap - off, "]}");
    }
    snprintf(t + off, cap - off, "]");
    return t;
}

/* More pairs than the slot table holds: RECD_ERANGE, live set unchanged. */
static void test_slots_full(void **state)
{
    (void)state;
    char *full = full_set_text(-1), *more = full_set_text(3);
    publish(full); /* exactly 1024 pairs */
    assert_int_equal(recd_abrt_count(), 64);
    recd_err_t err = {0};
    assert_int_equal(publish_rc(more, &err), RECD_ERANGE);
    assert_int_equal(err.code, RECD_ERANGE);
    assert_non_null(strstr(err.msg, "1024"));
    assert_int_equal(recd_abrt_count(), 64);
    json_t *defs = recd_abrt_defs_json();
    json_t *v3 = json_array_get(json_object_get(json_array_get(defs, 0), "variants"), 3);
    assert_string_equal(json_string_value(json_object_get(v3, "name")), "v3");
    json_decref(defs);
    recd_abrt_assignment_t a;
    assign_ok("u1", "v3", &a);
    assert_int_equal(a.n, 64);
    /* known pairs still publish: a subset and the same set again */
    publish("[{\"name\":\"x5\",\"salt\":\"s\",\"variants\":[{\"name\":\"v1\",\"weight\":1}]}]");
    assert_int_equal(recd_abrt_count(), 1);
    publish(full);
    assert_int_equal(recd_abrt_count(), 64);
    free(full);
    free(more);
}

/* Sets recd_ab_set_parse would never produce are refused; the live set
 * stays. */
static void test_set_invalid(void **state)
{
    (void)state;
    publish(AB_50_50);
    recd_ab_set_t set;
    recd_err_t err = {0};

    parse_set(AB_50_50, &set);
    set.exps[0].n_variants = 0;
    assert_int_equal(recd_abrt_set(&set, &err), RECD_EINVAL);
    assert_non_null(strstr(err.msg, "variants"));
    set.exps[0].n_variants = RECD_AB_MAX_VARIANTS + 1;
    assert_int_equal(recd_abrt_set(&set, &err), RECD_EINVAL);
    set.exps[0].n_variants = 2;
    strcpy(set.exps[0].variants[1].name, "a b");
    assert_int_equal(recd_abrt_set(&set, &err), RECD_EINVAL);
    strcpy(set.exps[0].variants[1].name, "a");
    assert_int_equal(recd_abrt_set(&set, &err), RECD_EINVAL);
    assert_non_null(strstr(err.msg, "duplicate"));
    strcpy(set.exps[0].variants[1].name, "b");
    set.exps[0].variants[0].weight = 90; /* weights edited without a layout */
    set.exps[0].variants[0].bucket_hi = 9000;
    assert_int_equal(recd_abrt_set(&set, &err), RECD_EINVAL);
    assert_non_null(strstr(err.msg, "recd_ab_exp_layout"));
    assert_int_equal(recd_ab_exp_layout(&set.exps[0], &err), 0);
    set.exps[0].salt_len = 0;
    assert_int_equal(recd_abrt_set(&set, &err), RECD_EINVAL);
    recd_ab_set_free(&set);

    /* still the 50/50 set */
    json_t *defs = recd_abrt_defs_json();
    json_t *b = json_object_get(
        json_array_get(json_object_get(json_array_get(defs, 0), "variants"), 0), "buckets");
    assert_int_equal(json_integer_value(json_array_get(b, 1)), 5000);
    json_decref(defs);

    /* before init */
    recd_abrt_shutdown();
    parse_set(AB_50_50, &set);
    assert_int_equal(recd_abrt_set(&set, &err), RECD_EINVAL);
    recd_ab_set_free(&set);
    assert_int_equal(recd_abrt_count(), 0);
    assert_int_equal(recd_abrt_init(NTHREADS, &err), 0);
}

/* ---- concurrency smoke ------------------------------------------------------------ */

enum { SMOKE_ITERS = 20000 };
static _Atomic int smoke_done;

static void *smoke_worker(void *arg)
{
    unsigned t = (unsigned)(uintptr_t)arg;
    for (unsigned i = 0; i < SMOKE_ITERS; i++) {
        char u[32], rid[32];
        size_t ul = (size_t)snprintf(u, sizeof u, "u%u", i);
        size_t rl = (size_t)snprintf(rid, sizeof rid, "t%u-r%u", t, i);
        recd_abrt_assignment_t a;
        recd_err_t err;
        if (recd_abrt_assign(u, ul, NULL, &a, &err) != 0 || a.n != 1)
            abort();
        recd_abrt_record_request(t, &a, 10 + i % 100);
        recd_abrt_remember(rid, rl, &a);
        recd_evrec_t ev;
        memset(&ev, 0, sizeof ev);
        ev.user_id = u;
        ev.user_len = ul;
        ev.type = RECD_EV_IMPRESSION;
        ev.request_id = rid;
        recd_abrt_attribute(&ev);
        if (ev.n_ab != 1 || strcmp(ev.ab[0].variant, a.picks[0].variant->name) != 0)
            abort();
        recd_abrt_count_event(t, &ev);
    }
    atomic_fetch_add(&smoke_done, 1);
    return NULL;
}

/* Two threads assign, record and count while the main thread republishes
 * and renders; nothing is lost. */
static void test_concurrency(void **state)
{
    (void)state;
    recd_ab_set_t s1, s2;
    parse_set(AB_50_50, &s1);
    parse_set(AB_60_40, &s2);
    recd_err_t err = {0};
    assert_int_equal(recd_abrt_set(&s1, &err), 0);
    pthread_t th[NTHREADS];
    for (uintptr_t t = 0; t < NTHREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, smoke_worker, (void *)t), 0);
    /* republish until both workers are done (at least 200 times) */
    atomic_store(&smoke_done, 0);
    for (int i = 0; i < 200 || atomic_load(&smoke_done) < NTHREADS; i++) {
        assert_int_equal(recd_abrt_set(i % 2 ? &s1 : &s2, &err), 0);
        json_t *st = recd_abrt_stats_json();
        json_decref(st);
        char *p = prom_text();
        free(p);
        usleep(200);
    }
    for (int t = 0; t < NTHREADS; t++)
        pthread_join(th[t], NULL);
    json_int_t req = stat_int("e", "a", "requests") + stat_int("e", "b", "requests");
    json_int_t imp = stat_int("e", "a", "impressions") + stat_int("e", "b", "impressions");
    assert_int_equal(req, NTHREADS * SMOKE_ITERS);
    assert_int_equal(imp, NTHREADS * SMOKE_ITERS);
    recd_ab_set_free(&s1);
    recd_ab_set_free(&s2);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_empty),
        T(test_assign_shares),
        T(test_set_equal_copy),
        T(test_weight_change),
        T(test_forced),
        T(test_override_merge),
        T(test_remember_attribute),
        T(test_remember_bounded),
        T(test_count_event),
        T(test_stats_json),
        T(test_prom),
        T(test_defs_json),
        T(test_slots_full),
        T(test_set_invalid),
        T(test_concurrency),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
