/*
 * Unit tests for src/ab: experiment parsing and validation (every error names
 * its field), the bucket layout and assignment (shares, determinism, the
 * movement guarantee of include/recd/ab.h), forced variants, and the readout
 * statistics against independently computed values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "recd/ab.h"

#define N_USERS 100000

/* Parse one experiment from JSON text; fails the test on error. */
static void parse_exp(const char *text, recd_ab_exp_t *exp)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    assert_non_null(j);
    recd_err_t err = {0};
    int rc = recd_ab_exp_parse(j, "experiments[0]", exp, &err);
    if (rc)
        fail_msg("parse failed: %s", err.msg);
    json_decref(j);
}

/* An experiment with salt "s1" and the given weights, variants v0, v1, ... */
static void make_exp(recd_ab_exp_t *exp, const unsigned *w, size_t n)
{
    char text[2048];
    size_t off =
        (size_t)snprintf(text, sizeof text, "{\"name\":\"e\",\"salt\":\"s1\",\"variants\":[");
    for (size_t i = 0; i < n; i++)
        off += (size_t)snprintf(text + off, sizeof text - off,
                                "%s{\"name\":\"v%zu\",\"weight\":%u}", i ? "," : "", i, w[i]);
    snprintf(text + off, sizeof text - off, "]}");
    parse_exp(text, exp);
}

static size_t assign_user(const recd_ab_exp_t *exp, unsigned i)
{
    char uid[32];
    int len = snprintf(uid, sizeof uid, "u%u", i);
    return recd_ab_assign(exp, uid, (size_t)len);
}

/* ---- parsing ----------------------------------------------------------------- */

static void test_parse_valid(void **state)
{
    (void)state;
    const char *text =
        "[{\"name\":\"ranker-v2\",\"salt\":\"2026-11 ranker\",\"variants\":["
        "{\"name\":\"control\",\"weight\":50,\"model\":\"default\"},"
        "{\"name\":\"treat\",\"weight\":50,\"model\":\"default\",\"version\":3,"
        "\"candidates\":300,\"rank\":false,\"score\":\"watch_time\"}]},"
        "{\"name\":\"second\",\"salt\":\"x\",\"variants\":[{\"name\":\"only\",\"weight\":1}]}]";
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    recd_ab_set_t set;
    recd_err_t err = {0};
    assert_int_equal(recd_ab_set_parse(j, NULL, &set, &err), 0);
    json_decref(j);
    assert_int_equal(set.n, 2);
    const recd_ab_exp_t *e = recd_ab_set_find(&set, "ranker-v2", 9);
    assert_non_null(e);
    assert_string_equal(e->salt, "2026-11 ranker");
    assert_int_equal(e->salt_len, 14);
    assert_int_equal(e->n_variants, 2);
    const recd_ab_variant_t *c = &e->variants[0], *t = &e->variants[1];
    assert_string_equal(c->name, "control");
    assert_string_equal(c->model, "default");
    assert_int_equal(c->version, 0);
    assert_int_equal(c->candidates, 0);
    assert_int_equal(c->rank, -1);
    assert_int_equal(c->score, RECD_AB_SCORE_DEFAULT);
    assert_int_equal(c->bucket_lo, 0);
    assert_int_equal(c->bucket_hi, 5000);
    assert_int_equal(t->version, 3);
    assert_int_equal(t->candidates, 300);
    assert_int_equal(t->rank, 0);
    assert_int_equal(t->score, RECD_AB_SCORE_WATCH_TIME);
    assert_int_equal(t->bucket_lo, 5000);
    assert_int_equal(t->bucket_hi, 10000);
    e = recd_ab_set_find(&set, "second", 6);
    assert_non_null(e);
    assert_int_equal(e->variants[0].bucket_hi, RECD_AB_BUCKETS);
    assert_null(recd_ab_set_find(&set, "secon", 5));
    assert_null(recd_ab_set_find(&set, "nope", 4));
    recd_ab_set_free(&set);
    assert_int_equal(set.n, 0);
    assert_null(set.exps);
    recd_ab_set_free(NULL);

    /* null and [] are "no experiments" */
    json_t *nul = json_null();
    assert_int_equal(recd_ab_set_parse(nul, NULL, &set, &err), 0);
    assert_int_equal(set.n, 0);
    json_decref(nul);
    json_t *empty = json_array();
    assert_int_equal(recd_ab_set_parse(empty, NULL, &set, &err), 0);
    assert_int_equal(set.n, 0);
    json_decref(empty);
}

/* Each bad input must be rejected with a message that starts with the path
 * of the offending field. The experiment under test is experiments[1]; [0]
 * is valid. */
static void test_parse_errors(void **state)
{
    (void)state;
    static const struct {
        const char *exp; /* JSON of experiments[1] */
        const char *prefix;
    } cases[] = {
        {"3", "experiments[1]: must be an object"},
        {"{\"salt\":\"s\",\"variants\":[{\"name\":\"a\",\"weight\":1}]}",
         "experiments[1].name: missing"},
        {"{\"name\":\"b\",\"variants\":[{\"name\":\"a\",\"weight\":1}]}",
         "experiments[1].salt: missing"},
        {"{\"name\":\"b\",\"salt\":\"s\"}", "experiments[1].variants: missing"},
        {"{\"name\":\"b c\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\",\"weight\":1}]}",
         "experiments[1].name: must be"},
        {"{\"name\":\"\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\",\"weight\":1}]}",
         "experiments[1].name: must be"},
        {"{\"name\":7,\"salt\":\"s\",\"variants\":[{\"name\":\"a\",\"weight\":1}]}",
         "experiments[1].name: must be a string"},
        {"{\"name\":\"b\",\"salt\":\"\",\"variants\":[{\"name\":\"a\",\"weight\":1}]}",
         "experiments[1].salt: must be"},
        {"{\"name\":\"b\",\"salt\":\"a\\nb\",\"variants\":[{\"name\":\"a\",\"weight\":1}]}",
         "experiments[1].salt: must be"},
        {"{\"name\":\"b\",\"salt\":5,\"variants\":[{\"name\":\"a\",\"weight\":1}]}",
         "experiments[1].salt: must be"},
        {"{\"name\":\"b\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\",\"weight\":1}],\"x\":1}",
         "experiments[1].x: unknown key"},
        {"{\"name\":\"b\",\"salt\":\"s\",\"variants\":[]}",
         "experiments[1].variants: must be an array"},
        {"{\"name\":\"b\",\"salt\":\"s\",\"variants\":{}}",
         "experiments[1].variants: must be an array"},
        {"{\"name\":\"b\",\"salt\":\"s\",\"variants\":[\"a\"]}",
         "experiments[1].variants[0]: must be an object"},
        {"{\"name\":\"b\",\"salt\":\"s\",\"variants\":[{\"weight\":1}]}",
         "experiments[1].variants[0].name: missing"},
        {"{\"name\":\"b\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\"}]}",
         "experiments[1].variants[0].weight: missing"},
        {"{\"name\":\"b\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\",\"weight\":1},{\"name\":"
         "\"c\",\"weight\":-1}]}",
         "experiments[1].variants[1].weight: must be an integer"},
        {"{\"name\":\"b\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\",\"weight\":1},{\"name\":"
         "\"c\",\"weight\":1.5}]}",
         "experiments[1].variants[1].weight: must be an integer"},
        {"{\"name\":\"b\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\",\"weight\":1},{\"name\":"
         "\"c\",\"weight\":\"5\"}]}",
         "experiments[1].variants[1].weight: must be an integer"},
        {"{\"name\":\"b\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\",\"weight\":1},{\"name\":"
         "\"c\",\"weight\":1000001}]}",
         "experiments[1].variants[1].weight: must be an integer"},
        {"{\"name\":\"b\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\",\"weight\":0},{\"name\":"
         "\"c\",\"weight\":0}]}",
         "experiments[1].variants: weights must sum to more than 0"},
        {"{\"name\":\"b\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\",\"weight\":1},{\"name\":"
         "\"a\",\"weight\":1}]}",
         "experiments[1].variants[1].name: duplicate variant name"},
        {"{\"name\":\"b\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\",\"weight\":1,\"modle\":"
         "\"x\"}]}",
         "experiments[1].variants[0].modle: unknown key"},
        {"{\"name\":\"b\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\",\"weight\":1,\"model\":\"x/"
         "y\"}]}",
         "experiments[1].variants[0].model: must be"},
        {"{\"name\":\"b\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\",\"weight\":1,\"model\":"
         "\"m\",\"version\":0}]}",
         "experiments[1].variants[0].version: must be an integer"},
        {"{\"name\":\"b\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\",\"weight\":1,\"version\":2}]"
         "}",
         "experiments[1].variants[0].version: a pinned version needs"},
        {"{\"name\":\"b\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\",\"weight\":1,\"candidates\":"
         "0}]}",
         "experiments[1].variants[0].candidates: must be an integer"},
        {"{\"name\":\"b\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\",\"weight\":1,\"candidates\":"
         "100001}]}",
         "experiments[1].variants[0].candidates: must be an integer"},
        {"{\"name\":\"b\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\",\"weight\":1,\"rank\":1}]}",
         "experiments[1].variants[0].rank: must be true or false"},
        {"{\"name\":\"b\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\",\"weight\":1,\"score\":"
         "\"ctr\"}]}",
         "experiments[1].variants[0].score: must be"},
        {"{\"name\":\"b\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\",\"weight\":1,\"score\":null}"
         "]}",
         "experiments[1].variants[0].score: must be"},
        /* same name as experiments[0] */
        {"{\"name\":\"first\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\",\"weight\":1}]}",
         "experiments[1].name: duplicate experiment name"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[4096];
        snprintf(
            text, sizeof text,
            "[{\"name\":\"first\",\"salt\":\"s\",\"variants\":[{\"name\":\"a\",\"weight\":1}]},%s]",
            cases[i].exp);
        json_error_t jerr;
        json_t *j = json_loads(text, 0, &jerr);
        if (!j)
            fail_msg("case %zu: bad test JSON: %s", i, jerr.text);
        recd_ab_set_t set = {.n = 99, .exps = NULL};
        recd_err_t err = {0};
        int rc = recd_ab_set_parse(j, "experiments", &set, &err);
        json_decref(j);
        if (rc != RECD_EINVAL || err.code != RECD_EINVAL)
            fail_msg("case %zu: rc %d, wanted RECD_EINVAL", i, rc);
        if (strncmp(err.msg, cases[i].prefix, strlen(cases[i].prefix)) != 0)
            fail_msg("case %zu: message \"%s\", wanted prefix \"%s\"", i, err.msg, cases[i].prefix);
        assert_int_equal(set.n, 0);
        assert_null(set.exps);
    }

    /* 17 variants, and a top level that is not an array */
    char text[8192];
    size_t off =
        (size_t)snprintf(text, sizeof text, "[{\"name\":\"b\",\"salt\":\"s\",\"variants\":[");
    for (int i = 0; i < 17; i++)
        off += (size_t)snprintf(text + off, sizeof text - off, "%s{\"name\":\"v%d\",\"weight\":1}",
                                i ? "," : "", i);
    snprintf(text + off, sizeof text - off, "]}]");
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    recd_ab_set_t set;
    recd_err_t err = {0};
    assert_int_equal(recd_ab_set_parse(j, "experiments", &set, &err), RECD_EINVAL);
    assert_non_null(strstr(err.msg, "experiments[0].variants: must be an array of 1..16"));
    json_decref(j);
    j = json_object();
    assert_int_equal(recd_ab_set_parse(j, "experiments", &set, &err), RECD_EINVAL);
    assert_non_null(strstr(err.msg, "experiments: must be an array"));
    json_decref(j);

    /* exactly 16 variants are fine */
    off = (size_t)snprintf(text, sizeof text, "{\"name\":\"b\",\"salt\":\"s\",\"variants\":[");
    for (int i = 0; i < 16; i++)
        off += (size_t)snprintf(text + off, sizeof text - off, "%s{\"name\":\"v%d\",\"weight\":1}",
                                i ? "," : "", i);
    snprintf(text + off, sizeof text - off, "]}");
    recd_ab_exp_t exp;
    parse_exp(text, &exp);
    assert_int_equal(exp.n_variants, 16);
    assert_int_equal(exp.variants[15].bucket_hi, RECD_AB_BUCKETS);
}

/* ---- assignment -------------------------------------------------------------- */

/* Known FNV-1a-64(salt ":" user) mod 10000 values, computed in Python:
 *   h = 0xcbf29ce484222325; for c in b: h ^= c; h = h * 0x100000001b3 % 2**64 */
static void test_bucket_known_values(void **state)
{
    (void)state;
    assert_int_equal(recd_ab_bucket("s1", 2, "u0", 2), 4876);
    assert_int_equal(recd_ab_bucket("exp-salt", 8, "alice", 5), 5377);
    assert_int_equal(recd_ab_bucket("", 0, "", 0), 8189);
}

static void test_layout(void **state)
{
    (void)state;
    recd_ab_exp_t e;
    /* weight-0 variants own nothing; floors of cumulative shares */
    make_exp(&e, (const unsigned[]){0, 1, 0, 2, 0}, 5);
    assert_int_equal(e.variants[0].bucket_lo, 0);
    assert_int_equal(e.variants[0].bucket_hi, 0);
    assert_int_equal(e.variants[1].bucket_hi, 3333);
    assert_int_equal(e.variants[2].bucket_lo, 3333);
    assert_int_equal(e.variants[2].bucket_hi, 3333);
    assert_int_equal(e.variants[3].bucket_hi, 10000);
    assert_int_equal(e.variants[4].bucket_lo, 10000);
    assert_int_equal(e.variants[4].bucket_hi, 10000);
    assert_int_equal(recd_ab_variant_of_bucket(&e, 0), 1);
    assert_int_equal(recd_ab_variant_of_bucket(&e, 3332), 1);
    assert_int_equal(recd_ab_variant_of_bucket(&e, 3333), 3);
    assert_int_equal(recd_ab_variant_of_bucket(&e, 9999), 3);
    /* nobody lands in a zero-weight variant */
    for (unsigned i = 0; i < 2000; i++) {
        size_t v = assign_user(&e, i);
        assert_true(v == 1 || v == 3);
    }
    /* editing weights in place and re-running the layout */
    e.variants[1].weight = 0;
    e.variants[3].weight = 0;
    recd_err_t err = {0};
    assert_int_equal(recd_ab_exp_layout(&e, &err), RECD_EINVAL);
    e.variants[0].weight = 7;
    assert_int_equal(recd_ab_exp_layout(&e, &err), 0);
    assert_int_equal(e.variants[0].bucket_hi, 10000);
    assert_int_equal(assign_user(&e, 42), 0);
}

/* Over users "u0".."u99999" each variant's share is within 1% (absolute) of
 * its weight share. */
static void test_shares(void **state)
{
    (void)state;
    static const unsigned sets[][4] = {
        {50, 50},     {90, 10},     {1, 1},    {6000, 4000},
        {33, 33, 34}, {70, 20, 10}, {1, 2, 3}, {25, 25, 25, 25},
    };
    static const size_t nset[] = {2, 2, 2, 2, 3, 3, 3, 4};
    for (size_t s = 0; s < sizeof nset / sizeof nset[0]; s++) {
        recd_ab_exp_t e;
        make_exp(&e, sets[s], nset[s]);
        unsigned count[4] = {0};
        for (unsigned i = 0; i < N_USERS; i++)
            count[assign_user(&e, i)]++;
        double total = 0;
        for (size_t v = 0; v < nset[s]; v++)
            total += sets[s][v];
        for (size_t v = 0; v < nset[s]; v++) {
            double share = (double)count[v] / N_USERS, want = sets[s][v] / total;
            if (fabs(share - want) > 0.01)
                fail_msg("weights set %zu variant %zu: share %.4f, weight %.4f", s, v, share, want);
        }
    }
}

/* Two experiment objects built separately from the same config (different
 * key order, separate parses) assign every user identically; a different
 * salt gives an unrelated assignment. */
static void test_determinism(void **state)
{
    (void)state;
    recd_ab_exp_t a, b, c;
    parse_exp("{\"name\":\"e\",\"salt\":\"s1\",\"variants\":[{\"name\":\"x\",\"weight\":30},"
              "{\"name\":\"y\",\"weight\":30},{\"name\":\"z\",\"weight\":40}]}",
              &a);
    parse_exp("{\"variants\":[{\"weight\":30,\"name\":\"x\"},{\"weight\":30,\"name\":\"y\"},"
              "{\"name\":\"z\",\"weight\":40,\"rank\":true}],\"salt\":\"s1\",\"name\":\"e\"}",
              &b);
    parse_exp("{\"name\":\"e\",\"salt\":\"s2\",\"variants\":[{\"name\":\"x\",\"weight\":30},"
              "{\"name\":\"y\",\"weight\":30},{\"name\":\"z\",\"weight\":40}]}",
              &c);
    unsigned same_c = 0;
    for (unsigned i = 0; i < N_USERS; i++) {
        size_t va = assign_user(&a, i);
        assert_int_equal(va, assign_user(&b, i));
        same_c += va == assign_user(&c, i);
    }
    /* independent salts agree with probability .3^2 + .3^2 + .4^2 = 0.34 */
    double agree = (double)same_c / N_USERS;
    assert_true(agree > 0.32 && agree < 0.36);
}

/* Count buckets whose variant differs between a and b; moved[i][j] counts
 * buckets moving from variant i to variant j. */
static unsigned bucket_moves(const recd_ab_exp_t *a, const recd_ab_exp_t *b, unsigned moved[4][4])
{
    unsigned n = 0;
    memset(moved, 0, sizeof(unsigned[4][4]));
    for (uint32_t k = 0; k < RECD_AB_BUCKETS; k++) {
        size_t va = recd_ab_variant_of_bucket(a, k), vb = recd_ab_variant_of_bucket(b, k);
        if (va != vb) {
            moved[va][vb]++;
            n++;
        }
    }
    return n;
}

/* 50/50 -> 60/40 moves exactly 1000 buckets (10%), all from A to B, and the
 * users in them: the moved share of users is 10% up to sampling noise
 * (bucket occupancy varies; sd ~0.1% at 100k users, we allow 0.5%). Every
 * user whose assignment changes goes from B (the shrinking variant) to A. */
static void test_move_two_variants(void **state)
{
    (void)state;
    recd_ab_exp_t a, b;
    make_exp(&a, (const unsigned[]){50, 50}, 2);
    make_exp(&b, (const unsigned[]){60, 40}, 2);
    unsigned moved[4][4];
    assert_int_equal(bucket_moves(&a, &b, moved), 1000);
    assert_int_equal(moved[1][0], 1000);
    for (uint32_t k = 0; k < RECD_AB_BUCKETS; k++)
        if (recd_ab_variant_of_bucket(&a, k) != recd_ab_variant_of_bucket(&b, k))
            assert_true(k >= 5000 && k < 6000);
    unsigned users = 0;
    for (unsigned i = 0; i < N_USERS; i++) {
        size_t va = assign_user(&a, i), vb = assign_user(&b, i);
        if (va != vb) {
            assert_int_equal(va, 1);
            assert_int_equal(vb, 0);
            users++;
        }
    }
    double frac = (double)users / N_USERS;
    if (fabs(frac - 0.10) > 0.005)
        fail_msg("moved %.4f of users, wanted 0.10", frac);

    /* the same change written with other totals (5/5 -> 3/2) moves the same */
    recd_ab_exp_t c, d;
    make_exp(&c, (const unsigned[]){5, 5}, 2);
    make_exp(&d, (const unsigned[]){3, 2}, 2);
    assert_int_equal(bucket_moves(&c, &d, moved), 1000);
    assert_int_equal(bucket_moves(&a, &c, moved), 0);
}

/* Three variants, per the guarantee in include/recd/ab.h. */
static void test_move_three_variants(void **state)
{
    (void)state;
    recd_ab_exp_t a, b;
    unsigned moved[4][4];

    /* adjacent 1 -> 2, total constant: minimal, [7000, 8000) from v1 to v2 */
    make_exp(&a, (const unsigned[]){50, 30, 20}, 3);
    make_exp(&b, (const unsigned[]){50, 20, 30}, 3);
    assert_int_equal(bucket_moves(&a, &b, moved), 1000);
    assert_int_equal(moved[1][2], 1000);

    /* adjacent 0 -> 1 */
    make_exp(&a, (const unsigned[]){40, 30, 30}, 3);
    make_exp(&b, (const unsigned[]){35, 35, 30}, 3);
    assert_int_equal(bucket_moves(&a, &b, moved), 500);
    assert_int_equal(moved[0][1], 500);

    /* non-adjacent 0 -> 2 by d = 1000: the middle slides, 2 * d move */
    make_exp(&a, (const unsigned[]){40, 30, 30}, 3);
    make_exp(&b, (const unsigned[]){30, 30, 40}, 3);
    assert_int_equal(bucket_moves(&a, &b, moved), 2000);
    assert_int_equal(moved[0][1], 1000);
    assert_int_equal(moved[1][2], 1000);

    /* appending a variant by taking from the last one, total constant */
    make_exp(&a, (const unsigned[]){50, 50, 0}, 3);
    make_exp(&b, (const unsigned[]){50, 40, 10}, 3);
    assert_int_equal(bucket_moves(&a, &b, moved), 1000);
    assert_int_equal(moved[1][2], 1000);

    /* total changes: 50/50 -> 50/50/10 moves only between old and new
     * boundaries: b(0) 5000 -> 4545, b(1) 10000 -> 9090 */
    make_exp(&a, (const unsigned[]){50, 50}, 2);
    make_exp(&b, (const unsigned[]){50, 50, 10}, 3);
    assert_int_equal(bucket_moves(&a, &b, moved), 455 + 910);
    assert_int_equal(moved[0][1], 455);
    assert_int_equal(moved[1][2], 910);

    /* users follow their buckets */
    make_exp(&a, (const unsigned[]){50, 30, 20}, 3);
    make_exp(&b, (const unsigned[]){50, 20, 30}, 3);
    unsigned users = 0;
    for (unsigned i = 0; i < N_USERS; i++) {
        size_t va = assign_user(&a, i), vb = assign_user(&b, i);
        if (va != vb) {
            assert_int_equal(va, 1);
            assert_int_equal(vb, 2);
            users++;
        }
    }
    assert_true(fabs((double)users / N_USERS - 0.10) < 0.005);
}

static void test_variant_by_name(void **state)
{
    (void)state;
    recd_ab_exp_t e;
    parse_exp("{\"name\":\"e\",\"salt\":\"s\",\"variants\":[{\"name\":\"control\",\"weight\":1},"
              "{\"name\":\"treat\",\"weight\":1},{\"name\":\"dark\",\"weight\":0}]}",
              &e);
    assert_int_equal(recd_ab_variant_by_name(&e, "control", 7), 0);
    assert_int_equal(recd_ab_variant_by_name(&e, "treat", 5), 1);
    assert_int_equal(recd_ab_variant_by_name(&e, "dark", 4), 2); /* weight 0 can be forced */
    assert_int_equal(recd_ab_variant_by_name(&e, "treatment", 9), -1);
    assert_int_equal(recd_ab_variant_by_name(&e, "trea", 4), -1);
    assert_int_equal(recd_ab_variant_by_name(&e, "treatX", 5), 1); /* length-delimited */
    assert_int_equal(recd_ab_variant_by_name(&e, "", 0), -1);
    assert_int_equal(recd_ab_variant_by_name(&e, NULL, 0), -1);
}

/* ---- statistics -------------------------------------------------------------- */

#define TOL 1e-12

/* Reference values computed with /usr/bin/python3 + numpy, independently
 * of the closed form in src/ab/stats.c: the Wilson bounds as the two roots
 * (numpy.roots) of (1 + z^2/n) p^2 - (2 p^ + z^2/n) p + p^2 = 0, with
 * z = 1.959963984540053 found by bisection on 0.5 * erfc(-z / sqrt 2) =
 * 0.975. */
static void test_wilson(void **state)
{
    (void)state;
    static const struct {
        uint64_t n, k;
        double lo, hi;
    } cases[] = {
        {100, 10, 0.0552291370606751, 0.174365661504913},
        {1000, 37, 0.0269611808755548, 0.0505823974820693},
        {50, 0, 0.0, 0.0713475991333586},
        {20, 20, 0.83887484194718, 1.0},
        {1, 1, 0.206549314377238, 1.0},
        {12345, 678, 0.0510388277559349, 0.0590801225403594},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double lo, hi;
        recd_ab_wilson(cases[i].n, cases[i].k, RECD_AB_Z95, &lo, &hi);
        if (fabs(lo - cases[i].lo) > TOL || fabs(hi - cases[i].hi) > TOL)
            fail_msg("case %zu: [%.15g, %.15g], wanted [%.15g, %.15g]", i, lo, hi, cases[i].lo,
                     cases[i].hi);
        assert_true(lo <= (double)cases[i].k / cases[i].n && hi >= (double)cases[i].k / cases[i].n);
    }
    double lo, hi;
    recd_ab_wilson(0, 0, RECD_AB_Z95, &lo, &hi);
    assert_true(isnan(lo) && isnan(hi));
    recd_ab_wilson(50, 0, RECD_AB_Z95, &lo, &hi);
    assert_true(lo == 0.0); /* exactly */
    /* clicks above impressions are capped */
    double lo2, hi2;
    recd_ab_wilson(20, 25, RECD_AB_Z95, &lo, &hi);
    recd_ab_wilson(20, 20, RECD_AB_Z95, &lo2, &hi2);
    assert_true(lo == lo2 && hi == 1.0);
}

/* Reference values from /usr/bin/python3: pooled z by hand, p-value as
 * twice the normal upper tail integrated numerically with numpy.trapz over
 * [|z|, |z| + 40] (4e6 intervals), which agrees with erfc to ~1e-11. */
static void test_ztest(void **state)
{
    (void)state;
    static const struct {
        uint64_t na, ka, nb, kb;
        double z, p;
    } cases[] = {
        {1000, 100, 1000, 120, 1.42930084982323, 0.152917781867368},
        {10000, 500, 10000, 560, 1.89375297563567, 0.0582578060356119},
        {200, 30, 300, 30, -1.6854996561581, 0.0918922111013638},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double z, p;
        recd_ab_ztest(cases[i].na, cases[i].ka, cases[i].nb, cases[i].kb, &z, &p);
        if (fabs(z - cases[i].z) > 1e-12 || fabs(p - cases[i].p) > 1e-10)
            fail_msg("case %zu: z %.15g p %.15g, wanted z %.15g p %.15g", i, z, p, cases[i].z,
                     cases[i].p);
        /* symmetric in the order of the samples, up to the sign of z */
        double z2, p2;
        recd_ab_ztest(cases[i].nb, cases[i].kb, cases[i].na, cases[i].ka, &z2, &p2);
        assert_true(fabs(z + z2) < 1e-12 && fabs(p - p2) < 1e-15);
    }
    double z, p;
    /* identical rates, also with different n */
    recd_ab_ztest(5000, 250, 5000, 250, &z, &p);
    assert_true(z == 0.0 && p == 1.0);
    recd_ab_ztest(100, 10, 1000, 100, &z, &p);
    assert_true(z == 0.0 && p == 1.0);
    /* no clicks anywhere, all clicks everywhere: pooled se 0 */
    recd_ab_ztest(100, 0, 200, 0, &z, &p);
    assert_true(z == 0.0 && p == 1.0);
    recd_ab_ztest(100, 100, 200, 200, &z, &p);
    assert_true(z == 0.0 && p == 1.0);
    /* empty sample */
    recd_ab_ztest(0, 0, 200, 10, &z, &p);
    assert_true(isnan(z) && isnan(p));
    recd_ab_ztest(200, 10, 0, 0, &z, NULL);
    assert_true(isnan(z));
    /* zero clicks against some: significant */
    recd_ab_ztest(1000, 0, 1000, 30, NULL, &p);
    assert_true(p > 0.0 && p < 1e-6);
}

static void test_ctr_lift(void **state)
{
    (void)state;
    assert_true(isnan(recd_ab_ctr(0, 0)));
    assert_true(isnan(recd_ab_ctr(0, 5)));
    assert_true(recd_ab_ctr(10, 0) == 0.0);
    assert_true(fabs(recd_ab_ctr(1000, 37) - 0.037) < 1e-15);
    assert_true(recd_ab_ctr(10, 12) == 1.0);
    /* (0.12 - 0.10) / 0.10 = 0.2 */
    assert_true(fabs(recd_ab_lift(1000, 100, 1000, 120) - 0.2) < 1e-12);
    assert_true(fabs(recd_ab_lift(1000, 100, 500, 40) - (-0.2)) < 1e-12);
    assert_true(recd_ab_lift(1000, 100, 10, 1) == 0.0);
    assert_true(isnan(recd_ab_lift(1000, 0, 1000, 10))); /* control CTR 0 */
    assert_true(isnan(recd_ab_lift(1000, 0, 1000, 0)));
    assert_true(isnan(recd_ab_lift(0, 0, 1000, 10)));
    assert_true(isnan(recd_ab_lift(1000, 10, 0, 0)));
}

static void test_readout(void **state)
{
    (void)state;
    const uint64_t imp[] = {1000, 1000, 0, 500};
    const uint64_t clk[] = {100, 120, 0, 0};
    recd_ab_readout_t r[4];
    recd_ab_readout(imp, clk, 4, r);
    assert_int_equal(r[0].impressions, 1000);
    assert_int_equal(r[1].clicks, 120);
    assert_true(fabs(r[0].ctr - 0.1) < 1e-15);
    assert_true(r[0].lift == 0.0);
    assert_true(isnan(r[0].z) && isnan(r[0].p_value));
    assert_true(fabs(r[1].lift - 0.2) < 1e-12);
    assert_true(fabs(r[1].z - 1.42930084982323) < 1e-12);
    assert_true(fabs(r[1].p_value - 0.152917781867368) < 1e-10);
    assert_true(r[1].ci_lo < 0.12 && r[1].ci_hi > 0.12);
    assert_true(isnan(r[2].ctr) && isnan(r[2].ci_lo) && isnan(r[2].ci_hi));
    assert_true(isnan(r[2].lift) && isnan(r[2].z) && isnan(r[2].p_value));
    assert_true(r[3].ctr == 0.0 && r[3].ci_lo == 0.0 && r[3].ci_hi > 0.0);
    assert_true(fabs(r[3].lift - (-1.0)) < 1e-15);
    assert_true(r[3].p_value < 1e-10);
    /* control without clicks: lift undefined for everyone */
    const uint64_t imp2[] = {100, 100};
    const uint64_t clk2[] = {0, 5};
    recd_ab_readout(imp2, clk2, 2, r);
    assert_true(isnan(r[0].lift) && isnan(r[1].lift));
    assert_true(r[1].p_value > 0.0 && r[1].p_value < 0.05);
    recd_ab_readout(NULL, NULL, 0, r); /* n == 0 touches nothing */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_bucket_known_values),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_shares),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_move_two_variants),
        cmocka_unit_test(test_move_three_variants),
        cmocka_unit_test(test_variant_by_name),
        cmocka_unit_test(test_wilson),
        cmocka_unit_test(test_ztest),
        cmocka_unit_test(test_ctr_lift),
        cmocka_unit_test(test_readout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
