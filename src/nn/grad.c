/* Training kernels: general matrix product, backward passes of the forward
 * kernels in dense.c, and the losses (logistic, softmax cross-entropy).
 *
 * Elementwise loops are written as blocks of 8 with a scalar tail, as in
 * dense.c: GCC's -O2 vectoriser (the "very cheap" cost model) only
 * vectorises a loop whose vector code replaces the scalar code entirely,
 * and a fixed 8-wide body qualifies where an open-ended loop does not. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "recd/nn.h"

/* y[i] += a * x[i] */
static inline void axpy(float *restrict y, const float *restrict x, float a, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (size_t j = 0; j < 8; j++)
            y[i + j] += a * x[i + j];
    for (; i < n; i++)
        y[i] += a * x[i];
}

/* x[i] *= a */
static inline void scal(float *restrict x, float a, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (size_t j = 0; j < 8; j++)
            x[i + j] *= a;
    for (; i < n; i++)
        x[i] *= a;
}

void recd_nn_gemm(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *a,
                  size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc)
{
    if (m == 0 || n == 0)
        return;
    if (k == 0) {
        /* nothing to multiply: C = beta * C, without cblas's argument
         * checks on lda / ldb, which want at least 1 */
        for (size_t i = 0; i < m; i++) {
            float *row = c + i * ldc;
            if (beta == 0.0f)
                memset(row, 0, n * sizeof *row);
            else
                for (size_t j = 0; j < n; j++)
                    row[j] *= beta;
        }
        return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

void recd_nn_relu_backward(const float *restrict y, size_t n, float *restrict dy)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (size_t j = 0; j < 8; j++)
            dy[i + j] = y[i + j] > 0.0f ? dy[i + j] : 0.0f;
    for (; i < n; i++)
        dy[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

void recd_nn_dense_batch_backward(const float *w, int in, int out, int relu, const float *x,
                                  const float *y, float *dy, size_t n, float *dw, float *db,
                                  float *dx)
{
    if (n == 0 || in <= 0 || out <= 0)
        return;
    if (relu)
        recd_nn_relu_backward(y, n * (size_t)out, dy);
    /* dW[in, out] += X^T[in, n] @ dY[n, out] */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, in, out, (int)n, 1.0f, x, in, dy, out,
                1.0f, dw, out);
    if (db)
        for (size_t i = 0; i < n; i++)
            axpy(db, dy + i * (size_t)out, 1.0f, (size_t)out);
    /* dX[n, in] = dY[n, out] @ W^T[out, in] */
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, in, out, 1.0f, dy, out, w, out,
                    0.0f, dx, in);
}

void recd_nn_embed_mean_backward(const float *g, size_t d, const uint64_t *ids, size_t n,
                                 float *dtable)
{
    if (n == 0)
        return;
    float share = 1.0f / (float)n;
    for (size_t i = 0; i < n; i++)
        axpy(dtable + ids[i] * d, g, share, d);
}

/* df[j] += g * (s[j] - v[j]) */
static inline void fm_row(float *restrict df, const float *restrict s, const float *restrict v,
                          float g, size_t k)
{
    size_t j = 0;
    for (; j + 8 <= k; j += 8)
        for (size_t t = 0; t < 8; t++)
            df[j + t] += g * (s[j + t] - v[j + t]);
    for (; j < k; j++)
        df[j] += g * (s[j] - v[j]);
}

void recd_nn_fm_backward(const float *v, size_t nf, size_t k, const float *sum, float g, float *dv)
{
    for (size_t f = 0; f < nf; f++)
        fm_row(dv + f * k, sum, v + f * k, g, k);
}

double recd_nn_logloss(const float *z, const float *y, const float *w, size_t n, float *dz)
{
    double loss = 0.0;
    for (size_t i = 0; i < n; i++) {
        float zi = z[i], yi = y[i], wi = w ? w[i] : 1.0f;
        /* e = exp(-|z|) lies in (0, 1]: neither the sigmoid nor the loss
         * term can overflow, whatever the size of z */
        float e = expf(-fabsf(zi));
        float s = zi >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
        double term = (zi > 0.0f ? (double)zi : 0.0) - (double)yi * zi + log1p((double)e);
        loss += (double)wi * term;
        dz[i] = wi * (s - yi);
    }
    return loss;
}

/* largest of x[0..n), n >= 1 (NaNs are skipped unless x[0] is one) */
static float max_of(const float *restrict x, size_t n)
{
    float mx = x[0];
    size_t i = 0;
    if (n >= 8) { /* eight running maxima, combined at the end */
        float m8[8];
        memcpy(m8, x, sizeof m8);
        for (i = 8; i + 8 <= n; i += 8)
            for (size_t j = 0; j < 8; j++)
                m8[j] = x[i + j] > m8[j] ? x[i + j] : m8[j];
        for (size_t j = 0; j < 8; j++)
            mx = m8[j] > mx ? m8[j] : mx;
    }
    for (; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    return mx;
}

/* sum of x[0..n) in double, as eight partial sums (no loop-carried
 * dependency on one register; the order is fixed, so the result is
 * deterministic) */
static double sum_of(const float *restrict x, size_t n)
{
    double s8[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (size_t j = 0; j < 8; j++)
            s8[j] += (double)x[i + j];
    double s = 0.0;
    for (; i < n; i++)
        s += (double)x[i];
    for (size_t j = 0; j < 8; j++)
        s += s8[j];
    return s;
}

double recd_nn_softmax_xent(float *logits, size_t n, size_t c, const uint32_t *target, float scale)
{
    double loss = 0.0;
    if (c == 0)
        return n ? NAN : 0.0;
    for (size_t i = 0; i < n; i++) {
        float *row = logits + i * c;
        float mx = max_of(row, c);
        uint32_t t = target[i];
        float zt = t < c ? row[t] - mx : 0.0f;
        for (size_t j = 0; j < c; j++)
            row[j] = expf(row[j] - mx); /* <= 1 */
        double sum = sum_of(row, c);    /* >= 1: the maximum's term is 1 */
        /* -log softmax_t = log(sum_j e^(z_j - max)) - (z_t - max) */
        loss += t < c ? log(sum) - (double)zt : NAN;
        scal(row, (float)((double)scale / sum), c);
        if (t < c)
            row[t] -= scale;
    }
    return loss;
}
