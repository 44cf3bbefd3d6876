/*
 * Unit tests for feature hashing (BUNDLE.md "text(v)" and "bucket(f, text)"):
 * recd_feature_bucket and recd_feature_bucketize at their edges.
 *
 * Expected buckets were computed independently with a few lines of Python
 * (FNV-1a-64 over utf8(field + "\x1f" + text), mod buckets); the first ones
 * are BUNDLE.md's own test vectors. Non-finite numbers never reach
 * bucketize from the API (it answers 400), so NaN is only required not to
 * crash or leave the range 0..n.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <string.h>

#include "recd/model.h"

static uint64_t bucket(const char *field, const char *text, size_t tlen, uint64_t n)
{
    return recd_feature_bucket(field, strlen(field), text, tlen, n);
}

static uint64_t bucket_s(const char *field, const char *text, uint64_t n)
{
    return bucket(field, text, strlen(text), n);
}

static void test_bundle_vectors(void **state)
{
    (void)state;
    assert_int_equal(bucket_s("user_id", "u42", 100000), 68100);
    assert_int_equal(bucket_s("age", "2", 16), 1);
    assert_int_equal(bucket_s("hour", "6", 16), 2);
    assert_int_equal(bucket_s("gender", "", 8), 5);
    assert_int_equal(bucket_s("genres", "Comedy", 64), 57);
    assert_int_equal(bucket_s("agexgenres",
                              "2\x1f"
                              "Comedy",
                              10000),
                     3285);
}

static void test_bucket_lengths_not_nul(void **state)
{
    (void)state;
    /* the text is length-delimited: an embedded NUL is a byte like any other */
    assert_int_equal(bucket("f", "a\0b", 3, 1000003), 55835);
    assert_int_equal(bucket("f", "a\0b", 1, 1000003), 973773);
    /* the field name too: only flen bytes of it count */
    assert_int_equal(recd_feature_bucket("user_idXYZ", 7, "u42", 3, 100000), 68100);
    assert_int_equal(recd_feature_bucket("usXX", 2, "u42", 3, 100000), 14467);
    /* the empty text */
    assert_int_equal(bucket_s("genres", "", 64), 2);
}

static void test_bucket_spaces(void **state)
{
    (void)state;
    /* one bucket: always 0 */
    assert_int_equal(bucket_s("x", "", 1), 0);
    assert_int_equal(bucket_s("x", "anything at all", 1), 0);
    /* the whole 64-bit space: the hash itself mod 2^64-1 */
    assert_true(bucket_s("f", "a", UINT64_MAX) == UINT64_C(15918125822415178313));
    /* UTF-8 bytes as they are: NFC and NFD "Café" differ */
    assert_int_equal(bucket_s("occupation", "Caf\xc3\xa9", 64), 3);
    assert_int_equal(bucket_s("occupation", "Cafe\xcc\x81", 64), 9);
}

static recd_feature_t bucketized(double *b, size_t n)
{
    recd_feature_t f;
    memset(&f, 0, sizeof f);
    f.name = "age";
    f.bucketized = 1;
    f.boundaries = b;
    f.nboundaries = n;
    f.buckets = 16;
    return f;
}

static void test_bucketize_boundaries(void **state)
{
    (void)state;
    double b[] = {18, 25, 35, 45, 50, 56};
    recd_feature_t f = bucketized(b, 6);
    for (size_t i = 0; i < 6; i++) {
        /* on a boundary: the bucket above it (bisect right) */
        assert_int_equal(recd_feature_bucketize(&f, b[i]), i + 1);
        /* the largest double below it: the bucket below */
        assert_int_equal(recd_feature_bucketize(&f, nextafter(b[i], -INFINITY)), i);
        assert_int_equal(recd_feature_bucketize(&f, nextafter(b[i], INFINITY)), i + 1);
    }
    assert_int_equal(recd_feature_bucketize(&f, 31), 2); /* BUNDLE.md: age 31 -> "2" */
    assert_int_equal(recd_feature_bucketize(&f, 0), 0);
    assert_int_equal(recd_feature_bucketize(&f, -5), 0);
    assert_int_equal(recd_feature_bucketize(&f, -DBL_MAX), 0);
    assert_int_equal(recd_feature_bucketize(&f, DBL_MAX), 6);
    assert_int_equal(recd_feature_bucketize(&f, 1e300), 6);
    assert_int_equal(recd_feature_bucketize(&f, -INFINITY), 0);
    assert_int_equal(recd_feature_bucketize(&f, INFINITY), 6);
    assert_true(recd_feature_bucketize(&f, NAN) <= 6);
}

static void test_bucketize_negative_and_zero_boundaries(void **state)
{
    (void)state;
    double b[] = {-10, -0.5, 0, 7};
    recd_feature_t f = bucketized(b, 4);
    assert_int_equal(recd_feature_bucketize(&f, -11), 0);
    assert_int_equal(recd_feature_bucketize(&f, -10), 1);
    assert_int_equal(recd_feature_bucketize(&f, -0.5), 2);
    assert_int_equal(recd_feature_bucketize(&f, -0.25), 2);
    /* -0.0 == 0: on the boundary 0 */
    assert_int_equal(recd_feature_bucketize(&f, -0.0), 3);
    assert_int_equal(recd_feature_bucketize(&f, 0.0), 3);
    assert_int_equal(recd_feature_bucketize(&f, 7), 4);
}

static void test_bucketize_degenerate(void **state)
{
    (void)state;
    /* no boundaries: everything is bucket 0 */
    recd_feature_t f = bucketized(NULL, 0);
    assert_int_equal(recd_feature_bucketize(&f, -1), 0);
    assert_int_equal(recd_feature_bucketize(&f, 1e9), 0);
    /* one boundary */
    double one[] = {5};
    f = bucketized(one, 1);
    assert_int_equal(recd_feature_bucketize(&f, 4.999), 0);
    assert_int_equal(recd_feature_bucketize(&f, 5), 1);
    /* repeated boundaries: #{b <= v} counts both */
    double rep[] = {1, 1, 2};
    f = bucketized(rep, 3);
    assert_int_equal(recd_feature_bucketize(&f, 0.5), 0);
    assert_int_equal(recd_feature_bucketize(&f, 1), 2);
    assert_int_equal(recd_feature_bucketize(&f, 1.5), 2);
    assert_int_equal(recd_feature_bucketize(&f, 2), 3);
    /* many boundaries: every integer 0..999 lands in its own bucket */
    static double many[1000];
    for (int i = 0; i < 1000; i++)
        many[i] = i;
    f = bucketized(many, 1000);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(recd_feature_bucketize(&f, i), (size_t)i + 1);
        assert_int_equal(recd_feature_bucketize(&f, i - 0.5), (size_t)i);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bundle_vectors),
        cmocka_unit_test(test_bucket_lengths_not_nul),
        cmocka_unit_test(test_bucket_spaces),
        cmocka_unit_test(test_bucketize_boundaries),
        cmocka_unit_test(test_bucketize_negative_and_zero_boundaries),
        cmocka_unit_test(test_bucketize_degenerate),
    };
    return cmocka_run_group_tests_name("features", tests, NULL, NULL);
}
