/*
 * Unit tests for src/history: order of items, the max_items bound, repeats
 * moving to the end, exact LRU eviction with one shard and the max_users
 * bound with many, unknown users, bad arguments, counters and the memory
 * figure, the is_positive table, and a 4-thread stress run with invariants
 * checked at the end. test_throughput prints single-threaded add/get
 * rates (informational, nothing asserted about speed).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recd/dataset.h"
#include "recd/history.h"

static recd_history_t *mk(uint64_t users, uint32_t items, uint32_t shards)
{
    recd_err_t err = {0};
    recd_history_t *h = recd_history_new_shards(users, items, shards, &err);
    if (!h)
        fail_msg("new failed: %s", err.msg);
    return h;
}

static void add(recd_history_t *h, const char *u, const char *i, int64_t ts)
{
    recd_err_t err = {0};
    int rc = recd_history_add(h, u, strlen(u), i, strlen(i), ts, &err);
    if (rc)
        fail_msg("add(%s, %s) failed: %s", u, i, err.msg);
}

/* Get u's items as "a,b,c" (most recent last) into buf; returns the count. */
static int get_str(recd_history_t *h, const char *u, size_t cap, char *buf, size_t bufcap)
{
    recd_arena_t a;
    recd_arena_init(&a, 4096);
    recd_history_item_t out[64];
    assert_true(cap <= 64);
    recd_err_t err = {0};
    int n = recd_history_get(h, u, strlen(u), out, cap, &a, &err);
    if (n < 0)
        fail_msg("get(%s) failed: %s", u, err.msg);
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        assert_int_equal(strlen(out[i].id), out[i].len);
        if (i)
            strncat(buf, ",", bufcap - strlen(buf) - 1);
        strncat(buf, out[i].id, bufcap - strlen(buf) - 1);
    }
    recd_arena_free(&a);
    return n;
}

static void test_add_get_order(void **state)
{
    recd_history_t *h = mk(10, 5, 1);
    add(h, "u1", "i1", 100);
    add(h, "u1", "i2", 200);
    add(h, "u1", "i3", 150); /* arrival order, not timestamp order */
    add(h, "u2", "x", 1);
    char buf[256];
    assert_int_equal(get_str(h, "u1", 64, buf, sizeof buf), 3);
    assert_string_equal(buf, "i1,i2,i3");
    assert_int_equal(get_str(h, "u2", 64, buf, sizeof buf), 1);
    assert_string_equal(buf, "x");
    /* cap smaller than the list: the most recent cap items */
    assert_int_equal(get_str(h, "u1", 2, buf, sizeof buf), 2);
    assert_string_equal(buf, "i2,i3");

    /* timestamps come back as given, ids are copies in the arena */
    recd_arena_t a;
    recd_arena_init(&a, 64);
    recd_history_item_t out[4];
    assert_int_equal(recd_history_get(h, "u1", 2, out, 4, &a, NULL), 3);
    assert_int_equal(out[0].ts, 100);
    assert_int_equal(out[1].ts, 200);
    assert_int_equal(out[2].ts, 150);
    add(h, "u1", "i4", 300); /* changes the store, not our copies */
    assert_string_equal(out[0].id, "i1");
    assert_string_equal(out[2].id, "i3");
    recd_arena_free(&a);

    /* ids are bytes: embedded NUL and the length limit */
    assert_int_equal(recd_history_add(h, "u3", 3, "a\0b", 3, 7, NULL), 0);
    recd_arena_init(&a, 64);
    assert_int_equal(recd_history_get(h, "u3", 2, out, 4, &a, NULL), 0); /* "u3" != "u3\0" */
    assert_int_equal(recd_history_get(h, "u3", 3, out, 4, &a, NULL), 1);
    assert_int_equal(out[0].len, 3);
    assert_memory_equal(out[0].id, "a\0b", 3);
    recd_arena_free(&a);
    recd_history_free(h);
}

static void test_max_items(void **state)
{
    recd_history_t *h = mk(10, 3, 1);
    add(h, "u", "a", 1);
    add(h, "u", "bb", 2);
    add(h, "u", "ccc", 3);
    add(h, "u", "dddd", 4);
    add(h, "u", "e", 5);
    char buf[256];
    assert_int_equal(get_str(h, "u", 64, buf, sizeof buf), 3);
    assert_string_equal(buf, "ccc,dddd,e");
    recd_history_stats_t st;
    recd_history_stats(h, &st);
    assert_int_equal(st.items, 3);
    assert_int_equal(st.users, 1);
    assert_int_equal(st.adds, 5);
    /* max_items 1 keeps only the last */
    recd_history_t *h1 = mk(1, 1, 1);
    add(h1, "u", "a", 1);
    add(h1, "u", "b", 2);
    assert_int_equal(get_str(h1, "u", 64, buf, sizeof buf), 1);
    assert_string_equal(buf, "b");
    recd_history_free(h1);
    recd_history_free(h);
}

static void test_repeat_moves_to_end(void **state)
{
    recd_history_t *h = mk(10, 3, 1);
    add(h, "u", "a", 1);
    add(h, "u", "b", 2);
    add(h, "u", "c", 3);
    add(h, "u", "a", 4); /* full list, a repeat: nothing is dropped */
    char buf[256];
    assert_int_equal(get_str(h, "u", 64, buf, sizeof buf), 3);
    assert_string_equal(buf, "b,c,a");
    add(h, "u", "a", 5); /* already the most recent: unchanged order */
    assert_int_equal(get_str(h, "u", 64, buf, sizeof buf), 3);
    assert_string_equal(buf, "b,c,a");
    add(h, "u", "c", 6); /* from the middle */
    assert_int_equal(get_str(h, "u", 64, buf, sizeof buf), 3);
    assert_string_equal(buf, "b,a,c");
    /* the repeat carries the new timestamp */
    recd_arena_t a;
    recd_arena_init(&a, 64);
    recd_history_item_t out[3];
    assert_int_equal(recd_history_get(h, "u", 1, out, 3, &a, NULL), 3);
    assert_int_equal(out[1].ts, 5);
    assert_int_equal(out[2].ts, 6);
    recd_arena_free(&a);
    /* a longer id sharing a prefix is not a repeat */
    add(h, "u", "cc", 7);
    assert_int_equal(get_str(h, "u", 64, buf, sizeof buf), 3);
    assert_string_equal(buf, "a,c,cc");
    recd_history_stats_t st;
    recd_history_stats(h, &st);
    assert_int_equal(st.items, 3);
    recd_history_free(h);
}

static void test_lru_exact(void **state)
{
    char buf[256];
    recd_history_t *h = mk(3, 4, 1);
    add(h, "u1", "a", 1);
    add(h, "u2", "a", 1);
    add(h, "u3", "a", 1);
    add(h, "u1", "b", 2);                               /* an add is a use: order u2 < u3 < u1 */
    assert_int_equal(get_str(h, "u2", 4, buf, 256), 1); /* a read is a use: u3 < u1 < u2 */
    add(h, "u4", "a", 1);                               /* evicts u3 */
    assert_int_equal(get_str(h, "u3", 4, buf, 256), 0);
    recd_history_stats_t st;
    recd_history_stats(h, &st);
    assert_int_equal(st.users, 3);
    assert_int_equal(st.evictions, 1);
    add(h, "u5", "a", 1); /* evicts u1 (u1 < u2 < u4) */
    assert_int_equal(get_str(h, "u1", 4, buf, 256), 0);
    assert_int_equal(get_str(h, "u2", 4, buf, 256), 1);
    assert_int_equal(get_str(h, "u4", 4, buf, 256), 1);
    assert_int_equal(get_str(h, "u5", 4, buf, 256), 1);
    recd_history_stats(h, &st);
    assert_int_equal(st.users, 3);
    assert_int_equal(st.items, 3);
    assert_int_equal(st.evictions, 2);
    /* a miss is not a use and adds nobody */
    assert_int_equal(get_str(h, "nobody", 4, buf, 256), 0);
    recd_history_stats(h, &st);
    assert_int_equal(st.users, 3);
    recd_history_free(h);

    /* max_users 1 */
    h = mk(1, 2, 1);
    add(h, "a", "x", 1);
    add(h, "b", "y", 1);
    assert_int_equal(get_str(h, "a", 4, buf, 256), 0);
    assert_int_equal(get_str(h, "b", 4, buf, 256), 1);
    recd_history_free(h);
}

/* Many shards: never more than max_users, and each shard's share filled. */
static void test_bound_sharded(void **state)
{
    recd_err_t err = {0};
    recd_history_t *h = recd_history_new(100, 2, &err);
    assert_non_null(h);
    char u[32];
    recd_history_stats_t st;
    for (int i = 0; i < 5000; i++) {
        snprintf(u, sizeof u, "user%d", i);
        add(h, u, "i", i);
        if (i % 97 == 0) {
            recd_history_stats(h, &st);
            assert_true(st.users <= 100);
        }
    }
    recd_history_stats(h, &st);
    /* 64 shards with shares of 1 or 2: after 5000 users all are full */
    assert_int_equal(st.users, 100);
    assert_int_equal(st.evictions, 4900);
    assert_int_equal(st.max_users, 100);
    /* the last user added is always present (its shard evicts someone else) */
    char buf[64];
    assert_int_equal(get_str(h, "user4999", 4, buf, sizeof buf), 1);
    recd_history_free(h);

    /* fewer users than the default shard count */
    h = recd_history_new(5, 1, &err);
    assert_non_null(h);
    for (int i = 0; i < 50; i++) {
        snprintf(u, sizeof u, "user%d", i);
        add(h, u, "i", i);
    }
    recd_history_stats(h, &st);
    assert_int_equal(st.users, 5);
    recd_history_free(h);
}

static void test_unknown_and_errors(void **state)
{
    recd_err_t err = {0};
    assert_null(recd_history_new(0, 5, &err));
    assert_int_equal(err.code, RECD_EINVAL);
    assert_non_null(strstr(err.msg, "max_users"));
    assert_null(recd_history_new(5, 0, &err));
    assert_non_null(strstr(err.msg, "max_items"));
    assert_null(recd_history_new(5, RECD_HISTORY_ITEMS_MAX + 1, &err));
    assert_non_null(strstr(err.msg, "max_items"));
    assert_null(recd_history_new_shards(5, 5, 0, &err));
    assert_non_null(strstr(err.msg, "shard"));
    assert_null(recd_history_new_shards(5, 5, 6, &err));
    assert_non_null(strstr(err.msg, "shard"));
    assert_null(recd_history_new_shards(1u << 20, 5, RECD_HISTORY_SHARDS_MAX + 1, &err));
    assert_non_null(strstr(err.msg, "shard"));

    recd_history_t *h = mk(4, 4, 2);
    recd_arena_t a;
    recd_arena_init(&a, 64);
    recd_history_item_t out[4];
    assert_int_equal(recd_history_get(h, "ghost", 5, out, 4, &a, &err), 0);

    static char big[RECD_HISTORY_ID_MAX + 1];
    memset(big, 'x', sizeof big);
    err.code = 0;
    assert_int_equal(recd_history_add(h, "", 0, "i", 1, 1, &err), RECD_EINVAL);
    assert_non_null(strstr(err.msg, "user id"));
    assert_int_equal(recd_history_add(h, NULL, 1, "i", 1, 1, &err), RECD_EINVAL);
    assert_int_equal(recd_history_add(h, "u", 1, "", 0, 1, &err), RECD_EINVAL);
    assert_non_null(strstr(err.msg, "item id"));
    assert_int_equal(recd_history_add(h, "u", 1, NULL, 1, 1, &err), RECD_EINVAL);
    assert_int_equal(recd_history_add(h, big, sizeof big, "i", 1, 1, &err), RECD_EINVAL);
    assert_int_equal(recd_history_add(h, "u", 1, big, sizeof big, 1, &err), RECD_EINVAL);
    assert_int_equal(recd_history_add(NULL, "u", 1, "i", 1, 1, &err), RECD_EINVAL);
    /* the longest ids are fine */
    assert_int_equal(
        recd_history_add(h, big, RECD_HISTORY_ID_MAX, big, RECD_HISTORY_ID_MAX, 1, &err), 0);
    assert_int_equal(recd_history_get(h, big, RECD_HISTORY_ID_MAX, out, 4, &a, &err), 1);
    assert_int_equal(out[0].len, RECD_HISTORY_ID_MAX);

    assert_int_equal(recd_history_get(h, "u", 1, out, 0, &a, &err), RECD_EINVAL);
    assert_int_equal(recd_history_get(h, "u", 1, NULL, 4, &a, &err), RECD_EINVAL);
    assert_int_equal(recd_history_get(h, "u", 1, out, 4, NULL, &err), RECD_EINVAL);
    assert_int_equal(recd_history_get(NULL, "u", 1, out, 4, &a, &err), RECD_EINVAL);
    assert_int_equal(recd_history_get(h, "", 0, out, 4, &a, &err), RECD_EINVAL);
    assert_int_equal(recd_history_get(h, big, sizeof big, out, 4, &a, &err), RECD_EINVAL);
    /* nothing invalid was stored or counted */
    recd_history_stats_t st;
    recd_history_stats(h, &st);
    assert_int_equal(st.users, 1);
    assert_int_equal(st.adds, 1);
    assert_int_equal(st.lookups, 2);
    assert_int_equal(st.hits, 1);
    recd_arena_free(&a);
    recd_history_free(h);
    recd_history_free(NULL);
}

static void test_stats(void **state)
{
    recd_history_t *h = mk(2, 3, 1);
    recd_history_stats_t st0, st;
    recd_history_stats(h, &st0);
    assert_int_equal(st0.users, 0);
    assert_int_equal(st0.items, 0);
    assert_true(st0.bytes > 0);
    assert_int_equal(st0.max_items, 3);
    add(h, "alice", "i1", 1);
    add(h, "alice", "i2", 2);
    add(h, "bob", "i1", 3);
    char buf[64];
    get_str(h, "alice", 4, buf, sizeof buf);
    get_str(h, "carol", 4, buf, sizeof buf);
    get_str(h, "bob", 4, buf, sizeof buf);
    recd_history_stats(h, &st);
    assert_int_equal(st.users, 2);
    assert_int_equal(st.items, 3);
    assert_int_equal(st.adds, 3);
    assert_int_equal(st.lookups, 3);
    assert_int_equal(st.hits, 2);
    assert_int_equal(st.evictions, 0);
    /* bytes: the two entries on top of the empty store, inside the bound
     * of history.h (48 header + user id + 10 per item + item ids) */
    uint64_t entries = st.bytes - st0.bytes;
    assert_int_equal(entries, (48 + 5 + 2 * (10 + 2)) + (48 + 3 + (10 + 2)));
    add(h, "carol", "i9", 4); /* evicts alice (bob was read after her) */
    recd_history_stats(h, &st);
    assert_int_equal(st.evictions, 1);
    assert_int_equal(st.items, 2);
    assert_int_equal(st.bytes - st0.bytes, (48 + 3 + 12) + (48 + 5 + 12));
    recd_history_free(h);
}

static void test_is_positive(void **state)
{
    static const struct {
        int type;
        double value;
        int want;
    } cases[] = {
        {RECD_EV_CLICK, 0.0, 1},      {RECD_EV_CLICK, -1.0, 1}, {RECD_EV_PURCHASE, 0.0, 1},
        {RECD_EV_WATCH, 29.9, 0},     {RECD_EV_WATCH, 30.0, 1}, {RECD_EV_WATCH, 600.0, 1},
        {RECD_EV_WATCH, NAN, 0},      {RECD_EV_RATING, 3.9, 0}, {RECD_EV_RATING, 4.0, 1},
        {RECD_EV_RATING, 5.0, 1},     {RECD_EV_RATING, NAN, 0}, {RECD_EV_IMPRESSION, 1.0, 0},
        {RECD_EV_IMPRESSION, 1e9, 0}, {RECD_EV_NTYPES, 1.0, 0}, {-1, 1.0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = recd_history_is_positive(cases[i].type, cases[i].value, 30.0, 4.0);
        if (got != cases[i].want)
            fail_msg("case %zu: type %d value %g: got %d want %d", i, cases[i].type, cases[i].value,
                     got, cases[i].want);
    }
    /* thresholds are parameters */
    assert_true(recd_history_is_positive(RECD_EV_WATCH, 5.0, 0.0, 4.0));
    assert_false(recd_history_is_positive(RECD_EV_RATING, 4.0, 30.0, 4.5));
}

/* ---- concurrency ----------------------------------------------------------- */

#define CT_USERS 2000
#define CT_BOUND 300
#define CT_ITEMS 8

typedef struct {
    recd_history_t *h;
    unsigned seed;
    uint64_t ops;
    int bad;
} ct_arg_t;

static void *ct_worker(void *p)
{
    ct_arg_t *a = p;
    recd_rng_t rng;
    recd_rng_seed(&rng, a->seed);
    recd_arena_t arena;
    recd_arena_init(&arena, 4096);
    recd_history_item_t out[CT_ITEMS + 4];
    uint64_t t_end = recd_time_mono_us() + 500000;
    char u[32], it[32];
    while (recd_time_mono_us() < t_end) {
        for (int k = 0; k < 64; k++) {
            unsigned uid = recd_rng_below(&rng, CT_USERS);
            int ul = snprintf(u, sizeof u, "user-%u", uid);
            if (recd_rng_below(&rng, 2)) {
                /* item ids of varying length, tagged with the user */
                int il = snprintf(it, sizeof it, "%u:%u%.*s", uid, recd_rng_below(&rng, 20),
                                  (int)recd_rng_below(&rng, 12), "xxxxxxxxxxxx");
                if (recd_history_add(a->h, u, (size_t)ul, it, (size_t)il, (int64_t)a->ops, NULL))
                    a->bad++;
            } else {
                int n = recd_history_get(a->h, u, (size_t)ul, out, CT_ITEMS + 4, &arena, NULL);
                if (n < 0 || n > CT_ITEMS)
                    a->bad++;
                /* every item belongs to this user and no id repeats */
                char pre[16];
                int pl = snprintf(pre, sizeof pre, "%u:", uid);
                for (int i = 0; i < n; i++) {
                    if (out[i].len != strlen(out[i].id) || strncmp(out[i].id, pre, (size_t)pl))
                        a->bad++;
                    for (int j = 0; j < i; j++)
                        if (strcmp(out[i].id, out[j].id) == 0)
                            a->bad++;
                }
                recd_arena_reset(&arena);
            }
            a->ops++;
        }
    }
    recd_arena_free(&arena);
    return NULL;
}

static void test_concurrent(void **state)
{
    recd_err_t err = {0};
    recd_history_t *h = recd_history_new(CT_BOUND, CT_ITEMS, &err);
    assert_non_null(h);
    pthread_t th[4];
    ct_arg_t args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (ct_arg_t){.h = h, .seed = 1000u + (unsigned)i};
        assert_int_equal(pthread_create(&th[i], NULL, ct_worker, &args[i]), 0);
    }
    /* a stats reader alongside */
    recd_history_stats_t st;
    for (int k = 0; k < 50; k++) {
        recd_history_stats(h, &st);
        assert_true(st.users <= CT_BOUND);
        assert_true(st.items <= st.users * CT_ITEMS);
    }
    uint64_t ops = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].bad, 0);
        ops += args[i].ops;
    }
    recd_history_stats(h, &st);
    assert_true(st.users <= CT_BOUND);
    assert_true(st.users >= CT_BOUND - 64); /* 2000 random users fill every shard */
    assert_true(st.items >= st.users && st.items <= st.users * CT_ITEMS);
    assert_true(st.lookups + st.adds == ops);
    assert_true(st.hits <= st.lookups);
    /* walk every user: counts add up to the stats */
    recd_arena_t arena;
    recd_arena_init(&arena, 4096);
    recd_history_item_t out[CT_ITEMS];
    uint64_t users = 0, items = 0;
    char u[32];
    for (unsigned i = 0; i < CT_USERS; i++) {
        int ul = snprintf(u, sizeof u, "user-%u", i);
        int n = recd_history_get(h, u, (size_t)ul, out, CT_ITEMS, &arena, NULL);
        assert_true(n >= 0);
        users += n > 0;
        items += (uint64_t)n;
        recd_arena_reset(&arena);
    }
    recd_arena_free(&arena);
    assert_int_equal(users, st.users);
    assert_int_equal(items, st.items);
    print_message("concurrent: %llu ops in 0.5 s over 4 threads, %llu users, %llu evictions\n",
                  (unsigned long long)ops, (unsigned long long)st.users,
                  (unsigned long long)st.evictions);
    recd_history_free(h);
}

/* Single-threaded rates, printed only. */
static void test_throughput(void **state)
{
    recd_err_t err = {0};
    recd_history_t *h = recd_history_new(100000, 50, &err);
    assert_non_null(h);
    enum { N = 400000, U = 50000 };
    char u[32], it[32];
    recd_rng_t rng;
    recd_rng_seed(&rng, 7);
    uint64_t t0 = recd_time_mono_ns();
    for (int i = 0; i < N; i++) {
        int ul = snprintf(u, sizeof u, "user-%u", recd_rng_below(&rng, U));
        int il = snprintf(it, sizeof it, "item-%u", recd_rng_below(&rng, 10000));
        assert_int_equal(recd_history_add(h, u, (size_t)ul, it, (size_t)il, i, NULL), 0);
    }
    uint64_t t1 = recd_time_mono_ns();
    recd_arena_t arena;
    recd_arena_init(&arena, 8192);
    recd_history_item_t out[50];
    uint64_t got = 0;
    for (int i = 0; i < N; i++) {
        int ul = snprintf(u, sizeof u, "user-%u", recd_rng_below(&rng, U));
        int n = recd_history_get(h, u, (size_t)ul, out, 50, &arena, NULL);
        assert_true(n >= 0);
        got += (uint64_t)n;
        recd_arena_reset(&arena);
    }
    uint64_t t2 = recd_time_mono_ns();
    recd_arena_free(&arena);
    recd_history_stats_t st;
    recd_history_stats(h, &st);
    assert_true(got > 0);
    print_message("throughput (1 thread, %d users, ~8 items each): add %.2f M/s, get %.2f M/s "
                  "(%.1f items per get), %.1f MB, %.0f bytes per user\n",
                  U, N / ((t1 - t0) / 1e9) / 1e6, N / ((t2 - t1) / 1e9) / 1e6, (double)got / N,
                  st.bytes / 1e6, (double)st.bytes / (double)st.users);
    recd_history_free(h);
}

int main(void)
{
    /* HISTORY_TEST_FILTER=pattern runs a subset (e.g. under valgrind --tool=helgrind) */
    const char *filter = getenv("HISTORY_TEST_FILTER");
    if (filter && *filter)
        cmocka_set_test_filter(filter);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_get_order),
        cmocka_unit_test(test_max_items),
        cmocka_unit_test(test_repeat_moves_to_end),
        cmocka_unit_test(test_lru_exact),
        cmocka_unit_test(test_bound_sharded),
        cmocka_unit_test(test_unknown_and_errors),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_is_positive),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_throughput),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
