/* Dense layers and vector kernels on OpenBLAS (cblas). */
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "recd/nn.h"

void openblas_set_num_threads(int n);

void recd_nn_init(void)
{
    openblas_set_num_threads(1);
}

/* max(y, 0) over n floats. Written as fixed blocks of 8 so that GCC's -O2
 * (cheap vectoriser cost model, which will not add scalar epilogues)
 * still turns it into vector max instructions; this pass used to cost a
 * fifth of the ranker's time as a scalar loop. */
static void relu(float *restrict y, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (size_t j = 0; j < 8; j++)
            y[i + j] = y[i + j] > 0.0f ? y[i + j] : 0.0f;
    for (; i < n; i++)
        y[i] = y[i] > 0.0f ? y[i] : 0.0f;
}

void recd_nn_dense(const float *w, const float *b, int in, int out, int relu_on, const float *x,
                   float *y)
{
    /* y = b + w^T x with w stored [in, out] row-major: the bias is the
     * starting value (beta = 1), not a second pass */
    if (b)
        memcpy(y, b, (size_t)out * sizeof *y);
    cblas_sgemv(CblasRowMajor, CblasTrans, in, out, 1.0f, w, out, x, 1, b ? 1.0f : 0.0f, y, 1);
    if (relu_on)
        relu(y, (size_t)out);
}

void recd_nn_dense_batch(const float *w, const float *b, int in, int out, int relu_on,
                         const float *x, size_t n, float *y)
{
    if (n == 0)
        return;
    if (b)
        for (size_t i = 0; i < n; i++)
            memcpy(y + i * (size_t)out, b, (size_t)out * sizeof *y);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, out, in, 1.0f, x, in, w, out,
                b ? 1.0f : 0.0f, y, out);
    if (relu_on)
        relu(y, n * (size_t)out);
}

void recd_nn_matvec(const float *m, size_t n, size_t d, const float *v, float *scores)
{
    if (n == 0)
        return;
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)d, 1.0f, m, (int)d, v, 1, 0.0f, scores,
                1);
}

void recd_nn_axpy(size_t d, float scale, const float *row, float *acc)
{
    cblas_saxpy((int)d, scale, row, 1, acc, 1);
}

float recd_nn_dot(size_t d, const float *a, const float *b)
{
    return cblas_sdot((int)d, a, 1, b, 1);
}

/* ---- embeddings, FM, outputs ------------------------------------------------ */

void recd_nn_embed_mean(const float *table, size_t d, const uint64_t *ids, size_t n, float *out)
{
    if (n == 1) { /* the common case: one value, no scaling */
        memcpy(out, table + ids[0] * d, d * sizeof *out);
        return;
    }
    memset(out, 0, d * sizeof *out);
    for (size_t i = 0; i < n; i++) {
        const float *row = table + ids[i] * d;
        for (size_t j = 0; j < d; j++)
            out[j] += row[j];
    }
    float inv = 1.0f / (float)(n ? n : 1);
    for (size_t j = 0; j < d; j++)
        out[j] *= inv;
}

void recd_nn_fm_accum(const float *v, size_t nf, size_t k, float *sum, float *sq)
{
    float s2 = 0.0f;
    for (size_t f = 0; f < nf; f++) {
        const float *x = v + f * k;
        for (size_t j = 0; j < k; j++) {
            sum[j] += x[j];
            s2 += x[j] * x[j];
        }
    }
    *sq += s2;
}

float recd_nn_fm_pairwise(const float *sum, size_t k, float sq)
{
    float s2 = 0.0f;
    for (size_t j = 0; j < k; j++)
        s2 += sum[j] * sum[j];
    return 0.5f * (s2 - sq);
}

void recd_nn_sigmoid(const float *x, size_t n, float *y)
{
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        if (v >= 0.0f) {
            y[i] = 1.0f / (1.0f + expf(-v));
        } else {
            float e = expf(v); /* in (0, 1): no overflow */
            y[i] = e / (1.0f + e);
        }
    }
}

void recd_nn_exp(const float *x, size_t n, float *y)
{
    for (size_t i = 0; i < n; i++) {
        float e = expf(x[i]);
        y[i] = isinf(e) ? FLT_MAX : e; /* NaN stays NaN */
    }
}
