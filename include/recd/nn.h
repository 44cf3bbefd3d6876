/*
 * recd nn: dense math for the networks (all BLAS calls live here).
 * Forward passes now; the trainer adds backward passes to this module.
 * Weights are row-major [in, out] so a layer computes y = x @ w + b.
 * OpenBLAS runs single-threaded (recd_nn_init); parallelism comes from
 * recd's own threads. Every function is thread-safe (no shared state).
 */
#ifndef RECD_NN_H
#define RECD_NN_H

#include <stddef.h>

/* Pin OpenBLAS to one thread; call once at start. */
void recd_nn_init(void);

/* y[out] = act(x[in] @ w[in, out] + b[out]); b may be NULL. */
void recd_nn_dense(const float *w, const float *b, int in, int out, int relu, const float *x,
                   float *y);
/* Batched: Y[n, out] = act(X[n, in] @ w + b). */
void recd_nn_dense_batch(const float *w, const float *b, int in, int out, int relu,
                         const float *x, size_t n, float *y);
/* scores[n] = M[n, d] @ v[d] (inner products with every row). */
void recd_nn_matvec(const float *m, size_t n, size_t d, const float *v, float *scores);
/* acc[d] += row[d] * scale */
void recd_nn_axpy(size_t d, float scale, const float *row, float *acc);
float recd_nn_dot(size_t d, const float *a, const float *b);

#endif
