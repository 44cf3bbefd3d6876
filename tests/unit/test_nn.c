/*
 * Unit tests for src/nn: every kernel against plain loops in double
 * precision (dense layers, batched layers, mean-pooled embeddings, the
 * factorization-machine pairwise term, sigmoid and exp outputs).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recd/nn.h"

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static float frand(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    uint64_t x = rng * 0x2545f4914f6cdd1dULL;
    return (float)((double)(x >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static float *rand_vec(size_t n)
{
    float *v = malloc((n ? n : 1) * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = frand();
    return v;
}

static void near(double got, double want)
{
    if (fabs(got - want) > 1e-4 * (1.0 + fabs(want)))
        fail_msg("%.8g, expected %.8g", got, want);
}

static void test_dense(void **state)
{
    int in = 37, out = 23;
    size_t n = 9;
    float *w = rand_vec((size_t)in * out), *b = rand_vec(out), *x = rand_vec(n * in);
    float *y = malloc(n * out * sizeof *y), *y1 = malloc(out * sizeof *y1);
    for (int relu = 0; relu < 2; relu++) {
        recd_nn_dense_batch(w, b, in, out, relu, x, n, y);
        for (size_t i = 0; i < n; i++) {
            recd_nn_dense(w, b, in, out, relu, x + i * in, y1);
            for (int j = 0; j < out; j++) {
                double s = b[j];
                for (int k = 0; k < in; k++)
                    s += (double)x[i * in + k] * w[k * out + j];
                if (relu && s < 0)
                    s = 0;
                near(y[i * out + j], s);
                near(y1[j], s);
            }
        }
    }
    /* no bias */
    recd_nn_dense(w, NULL, in, out, 0, x, y1);
    for (int j = 0; j < out; j++) {
        double s = 0;
        for (int k = 0; k < in; k++)
            s += (double)x[k] * w[k * out + j];
        near(y1[j], s);
    }
    free(w);
    free(b);
    free(x);
    free(y);
    free(y1);
}

static void test_embed_mean(void **state)
{
    size_t rows = 50, d = 7;
    float *t = rand_vec(rows * d), out[7];
    uint64_t ids[] = {3, 49, 3, 0};
    for (size_t n = 1; n <= 4; n++) {
        recd_nn_embed_mean(t, d, ids, n, out);
        for (size_t j = 0; j < d; j++) {
            double s = 0;
            for (size_t i = 0; i < n; i++)
                s += t[ids[i] * d + j];
            near(out[j], s / (double)n);
        }
    }
    /* d = 1: first-order weights, sum / n */
    float w;
    recd_nn_embed_mean(t, 1, ids, 3, &w);
    near(w, ((double)t[3] + t[49] + t[3]) / 3.0);
    free(t);
}

static void test_fm(void **state)
{
    size_t nf = 6, k = 5;
    float *v = rand_vec(nf * k);
    double pairs = 0;
    for (size_t f = 0; f < nf; f++)
        for (size_t g = f + 1; g < nf; g++)
            for (size_t j = 0; j < k; j++)
                pairs += (double)v[f * k + j] * v[g * k + j];
    /* all at once, and in two parts (the request / candidate split) */
    float sum[5] = {0}, sq = 0;
    recd_nn_fm_accum(v, nf, k, sum, &sq);
    near(recd_nn_fm_pairwise(sum, k, sq), pairs);
    float sum2[5] = {0}, sq2 = 0;
    recd_nn_fm_accum(v, 2, k, sum2, &sq2);
    recd_nn_fm_accum(v + 2 * k, nf - 2, k, sum2, &sq2);
    near(recd_nn_fm_pairwise(sum2, k, sq2), pairs);
    /* one field: no pairs */
    float s1[5] = {0}, q1 = 0;
    recd_nn_fm_accum(v, 1, k, s1, &q1);
    near(recd_nn_fm_pairwise(s1, k, q1), 0.0);
    free(v);
}

static void test_outputs(void **state)
{
    float x[] = {0.0f, 1.5f, -2.25f, 30.0f, -30.0f, 200.0f, -200.0f, 88.0f, 89.0f, 1000.0f};
    size_t n = sizeof x / sizeof x[0];
    float y[10];
    recd_nn_sigmoid(x, n, y);
    for (size_t i = 0; i < n; i++) {
        assert_true(isfinite(y[i]) && y[i] >= 0.0f && y[i] <= 1.0f);
        near(y[i], 1.0 / (1.0 + exp(-(double)x[i])));
    }
    recd_nn_exp(x, n, y);
    for (size_t i = 0; i < n; i++) {
        assert_true(isfinite(y[i]));
        double want = exp((double)x[i]);
        if (want > FLT_MAX)
            assert_true(y[i] == FLT_MAX);
        else
            near(y[i], want);
    }
    /* in place */
    float z[] = {0.5f, -0.5f};
    recd_nn_sigmoid(z, 2, z);
    near(z[0], 1.0 / (1.0 + exp(-0.5)));
    near(z[1], 1.0 / (1.0 + exp(0.5)));
}

static void test_matvec_dot(void **state)
{
    size_t n = 11, d = 13;
    float *m = rand_vec(n * d), *v = rand_vec(d), s[11];
    recd_nn_matvec(m, n, d, v, s);
    for (size_t i = 0; i < n; i++) {
        double r = 0;
        for (size_t j = 0; j < d; j++)
            r += (double)m[i * d + j] * v[j];
        near(s[i], r);
        near(recd_nn_dot(d, m + i * d, v), r);
    }
    free(m);
    free(v);
}

int main(void)
{
    recd_nn_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense),      cmocka_unit_test(test_embed_mean),
        cmocka_unit_test(test_fm),         cmocka_unit_test(test_outputs),
        cmocka_unit_test(test_matvec_dot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
