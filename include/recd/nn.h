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
#include <stdint.h>

/* Pin OpenBLAS to one thread; call once at start. */
void recd_nn_init(void);

/* y[out] = act(x[in] @ w[in, out] + b[out]); b may be NULL. */
void recd_nn_dense(const float *w, const float *b, int in, int out, int relu, const float *x,
                   float *y);
/* Batched: Y[n, out] = act(X[n, in] @ w + b). */
void recd_nn_dense_batch(const float *w, const float *b, int in, int out, int relu, const float *x,
                         size_t n, float *y);
/* scores[n] = M[n, d] @ v[d] (inner products with every row). */
void recd_nn_matvec(const float *m, size_t n, size_t d, const float *v, float *scores);
/* acc[d] += row[d] * scale */
void recd_nn_axpy(size_t d, float scale, const float *row, float *acc);
float recd_nn_dot(size_t d, const float *a, const float *b);

/* ---- embeddings, factorization machines, outputs (forward) -------------------
 * Shaped as per-field / per-row kernels so the trainer can add matching
 * backward passes (d mean = scatter of grad/n; d FM_f = sum - v_f). */

/* out[d] = mean of table rows ids[0..n) (table [rows, d] row-major); n >= 1.
 * ids are not range-checked: the caller owns that. */
void recd_nn_embed_mean(const float *table, size_t d, const uint64_t *ids, size_t n, float *out);
/* Factorization machine sum-of-squares identity (Rendle, "Factorization
 * Machines", ICDM 2010, eq. 5): sum_{f<g} <v_f, v_g> = 1/2 (|sum_f v_f|^2 -
 * sum_f |v_f|^2). recd_nn_fm_accum adds nf vectors v[nf, k] (contiguous)
 * into sum[k] and their squared norms into *sq, so parts of the field set can
 * be accumulated separately (once per request, then per candidate);
 * recd_nn_fm_pairwise finishes: 1/2 (|sum|^2 - sq). */
void recd_nn_fm_accum(const float *v, size_t nf, size_t k, float *sum, float *sq);
float recd_nn_fm_pairwise(const float *sum, size_t k, float sq);
/* y[i] = 1 / (1 + exp(-x[i])), without overflow for large |x|; y may be x. */
void recd_nn_sigmoid(const float *x, size_t n, float *y);
/* y[i] = exp(x[i]), overflow clamped to FLT_MAX (never +inf); y may be x. */
void recd_nn_exp(const float *x, size_t n, float *y);

#endif
