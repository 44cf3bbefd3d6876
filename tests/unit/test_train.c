/*
 * Unit tests for the trainer's split and metrics (src/train/split.c): the
 * leave-one-out cut (latest by time, ties by item id compared as numbers),
 * validation items, cold items, the time cut, LOO negatives, histories,
 * AUC / logloss / rank against hand computations.
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

#include "../../src/train/internal.h"

/* A dataset built by hand: U users, items "1".."N" (numeric ids, stored in
 * a shuffled row order so that id order != row order). */
typedef struct fixture {
    recd_dataset_t ds;
    char *item_cells[64];
    char *item_names[1];
    char *user_cells[16];
    char *user_names[1];
    recd_event_t ev[256];
    char buf[64][8];
    char ubuf[16][8];
} fixture_t;

static void fx_init(fixture_t *f, size_t U, size_t N)
{
    memset(f, 0, sizeof *f);
    f->item_names[0] = f->user_names[0] = "id";
    for (size_t i = 0; i < N; i++) {
        /* row i holds id (N - i): reversed */
        snprintf(f->buf[i], sizeof f->buf[i], "%zu", N - i);
        f->item_cells[i] = f->buf[i];
    }
    for (size_t u = 0; u < U; u++) {
        snprintf(f->ubuf[u], sizeof f->ubuf[u], "u%zu", u);
        f->user_cells[u] = f->ubuf[u];
    }
    f->ds.items = (recd_table_t){N, 1, f->item_names, f->item_cells};
    f->ds.users = (recd_table_t){U, 1, f->user_names, f->user_cells};
    f->ds.events = f->ev;
}

static void fx_rate(fixture_t *f, uint32_t u, uint32_t item, int64_t ts, float r)
{
    f->ev[f->ds.nevents++] = (recd_event_t){u, item, ts, r, RECD_EV_RATING};
}

static void test_loo_latest_ties_by_numeric_id(void **state)
{
    fixture_t *f = malloc(sizeof *f);
    assert_non_null(f);
    fx_init(f, 2, 12);
    /* user 0: items at ts 1, 2, 3, and two at ts 5: rows 2 (id "10") and 9
     * (id "3"); by numeric id "10" is later, so it is the test item (as
     * bytes "10" < "3" would pick the other) */
    fx_rate(f, 0, 0, 1, 4);
    fx_rate(f, 0, 1, 2, 4);
    fx_rate(f, 0, 5, 3, 4);
    fx_rate(f, 0, 2, 5, 4);
    fx_rate(f, 0, 9, 5, 4);
    fx_rate(f, 1, 3, 1, 2);
    fx_rate(f, 1, 4, 2, 5);
    tf_split_opts_t o = {1, 0.0, 0.1, 7};
    tf_split_t sp;
    recd_err_t err = {0};
    assert_int_equal(tf_split_build(&sp, &f->ds, &o, &err), 0);
    assert_int_equal(sp.ninter, 7);
    assert_int_not_equal(sp.test_at[0], TF_NONE);
    assert_int_equal(sp.inter[sp.test_at[0]].item, 2); /* id "10" */
    assert_int_equal(sp.inter[sp.valid_at[0]].item, 9);
    /* user 1 has two interactions: a test item, no validation item */
    assert_int_equal(sp.inter[sp.test_at[1]].item, 4);
    assert_int_equal(sp.valid_at[1], TF_NONE);
    /* training counts exclude test and validation */
    assert_int_equal(sp.train_count[2], 0);
    assert_int_equal(sp.train_count[0], 1);
    /* history for the test item: train + valid before it, in time order */
    uint32_t h[8];
    size_t nh = tf_history(&sp, 0, sp.test_at[0], 8, 1, h);
    assert_int_equal(nh, 4);
    assert_int_equal(h[0], 0);
    assert_int_equal(h[3], 9);
    nh = tf_history(&sp, 0, sp.test_at[0], 8, 0, h);
    assert_int_equal(nh, 3);
    nh = tf_history(&sp, 0, sp.test_at[0], 2, 1, h); /* the most recent 2 */
    assert_int_equal(nh, 2);
    assert_int_equal(h[0], 5);
    assert_int_equal(h[1], 9);
    tf_split_free(&sp);
    free(f);
}

static void test_no_holdout_trains_everything(void **state)
{
    fixture_t *f = malloc(sizeof *f);
    assert_non_null(f);
    fx_init(f, 1, 4);
    fx_rate(f, 0, 0, 1, 4);
    fx_rate(f, 0, 1, 2, 4);
    fx_rate(f, 0, 2, 3, 4);
    fx_rate(f, 0, 2, 4, 1); /* a repeat of (user, item): one interaction */
    tf_split_opts_t o = {0, 0.5, 0.5, 1};
    tf_split_t sp;
    recd_err_t err = {0};
    assert_int_equal(tf_split_build(&sp, &f->ds, &o, &err), 0);
    assert_int_equal(sp.ninter, 3);
    assert_int_equal(sp.test_at[0], TF_NONE);
    assert_int_equal(sp.ncold, 0);
    assert_true(sp.time_cut == INT64_MAX);
    for (size_t i = 0; i < sp.ninter; i++)
        assert_int_equal(sp.role[i], TF_TRAIN);
    tf_split_free(&sp);
    free(f);
}

static void test_cold_items_and_time_cut(void **state)
{
    fixture_t *f = malloc(sizeof *f);
    assert_non_null(f);
    fx_init(f, 10, 60);
    /* 10 users x 20 interactions over 60 items, times 0..199 */
    int64_t ts = 0;
    for (uint32_t u = 0; u < 10; u++)
        for (uint32_t k = 0; k < 20; k++)
            fx_rate(f, u, (u * 7 + k * 3) % 60, ts++, 3);
    /* events must be sorted by time: they are (ts increases) */
    tf_split_opts_t o = {1, 0.3, 0.25, 3};
    tf_split_t sp, sp2;
    recd_err_t err = {0};
    assert_int_equal(tf_split_build(&sp, &f->ds, &o, &err), 0);
    assert_true(sp.ncold > 0);
    /* never a test or validation item; roles say COLD for every interaction with one */
    for (size_t i = 0; i < sp.ninter; i++) {
        if (sp.role[i] == TF_TEST || sp.role[i] == TF_VALID)
            assert_int_equal(sp.cold[sp.inter[i].item], 0);
        if (sp.cold[sp.inter[i].item])
            assert_int_equal(sp.role[i], TF_COLD);
    }
    /* the time cut leaves the last quarter of events */
    assert_int_equal(sp.time_cut, 150);
    /* deterministic */
    assert_int_equal(tf_split_build(&sp2, &f->ds, &o, &err), 0);
    assert_memory_equal(sp.cold, sp2.cold, 60);
    assert_memory_equal(sp.role, sp2.role, sp.ninter);
    /* LOO negatives: never an item of the user, distinct, deterministic */
    uint32_t neg[30], neg2[30];
    size_t n = tf_loo_negatives(&sp, &f->ds, 4, 30, neg);
    assert_int_equal(n, 30);
    assert_int_equal(tf_loo_negatives(&sp2, &f->ds, 4, 30, neg2), 30);
    assert_memory_equal(neg, neg2, sizeof neg);
    for (size_t i = 0; i < n; i++) {
        for (uint32_t k = sp.uoff[4]; k < sp.uoff[5]; k++)
            assert_int_not_equal(neg[i], sp.inter[k].item);
        for (size_t j = 0; j < i; j++)
            assert_int_not_equal(neg[i], neg[j]);
    }
    /* more negatives asked than exist: capped at the unseen count */
    uint32_t all[60];
    assert_int_equal(tf_loo_negatives(&sp, &f->ds, 4, 60, all), 40);
    tf_split_free(&sp);
    tf_split_free(&sp2);
    free(f);
}

static void test_auc_logloss_rank(void **state)
{
    /* AUC by hand: positives {0.9, 0.4}, negatives {0.8, 0.4, 0.1}: pairs
     * (0.9 > all 3) = 3, (0.4 > 0.1) = 1, (0.4 = 0.4) = 0.5 -> 4.5 / 6 */
    float p[] = {0.9f, 0.4f, 0.8f, 0.4f, 0.1f};
    float y[] = {1, 1, 0, 0, 0};
    assert_true(fabs(tf_auc(p, y, NULL, 5) - 0.75) < 1e-12);
    uint8_t mask[] = {1, 0, 1, 1, 1}; /* without the 0.4 positive: 3 / 3 */
    assert_true(fabs(tf_auc(p, y, mask, 5) - 1.0) < 1e-12);
    uint8_t none[] = {0, 0, 1, 1, 1};
    assert_true(isnan(tf_auc(p, y, none, 5)));
    double want = -(log(0.9) + log(0.4) + log(0.2) + log(0.6) + log(0.9)) / 5;
    assert_true(fabs(tf_logloss(p, y, NULL, 5) - want) < 1e-6);
    float q[] = {1.0f, 0.0f};
    float yq[] = {0, 1};
    assert_true(isfinite(tf_logloss(q, yq, NULL, 2))); /* clipped, not inf */
    float s[] = {3, 1, 2, 2, 5};
    assert_true(tf_rank_of(2, s, 5) == 2 + 1.0); /* 3 and 5 above, two ties */
    assert_true(tf_rank_of(9, s, 5) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loo_latest_ties_by_numeric_id),
        cmocka_unit_test(test_no_holdout_trains_everything),
        cmocka_unit_test(test_cold_items_and_time_cut),
        cmocka_unit_test(test_auc_logloss_rank),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
