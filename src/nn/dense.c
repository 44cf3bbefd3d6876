/* Dense layers and vector kernels on OpenBLAS (cblas). */
#include <cblas.h>
#include <string.h>

#include "recd/nn.h"

void openblas_set_num_threads(int n);

void recd_nn_init(void) { openblas_set_num_threads(1); }

static void bias_act(float *y, const float *b, int out, int relu)
{
    if (b)
        for (int j = 0; j < out; j++)
            y[j] += b[j];
    if (relu)
        for (int j = 0; j < out; j++)
            y[j] = y[j] > 0.0f ? y[j] : 0.0f;
}

void recd_nn_dense(const float *w, const float *b, int in, int out, int relu, const float *x,
                   float *y)
{
    /* y = w^T x with w stored [in, out] row-major */
    cblas_sgemv(CblasRowMajor, CblasTrans, in, out, 1.0f, w, out, x, 1, 0.0f, y, 1);
    bias_act(y, b, out, relu);
}

void recd_nn_dense_batch(const float *w, const float *b, int in, int out, int relu,
                         const float *x, size_t n, float *y)
{
    if (n == 0)
        return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, out, in, 1.0f, x, in, w, out,
                0.0f, y, out);
    for (size_t i = 0; i < n; i++)
        bias_act(y + i * (size_t)out, b, out, relu);
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
