/*
 * recd nn: dense math for the networks (all BLAS calls live here).
 * Forward passes for serving; backward passes, losses and optimisers for
 * the trainer.
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

/* ---- training: general matrix product, backward passes, losses ----------------
 * Backward kernels accumulate (+=) into gradients unless they say
 * otherwise, so a parameter shared by several uses sums its gradients.
 * Checked against finite differences in tests/unit/test_nn_grad.c. */

/* C[m, n] = alpha * op(A) @ op(B) + beta * C, row-major; op transposes when
 * ta / tb is set (A is then stored [k, m], B [n, k]). */
void recd_nn_gemm(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *a,
                  size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc);

/* dy[i] = 0 where y[i] <= 0 (y: the ReLU's output). */
void recd_nn_relu_backward(const float *y, size_t n, float *dy);

/* Backward of Y[n, out] = act(X[n, in] @ w + b) given dY: when relu, dy is
 * first masked in place by the ReLU derivative (from y); then
 * dw[in, out] += X^T dY, db[out] += column sums of dY (db may be NULL), and
 * dx[n, in] = dY @ w^T (overwritten; dx may be NULL). */
void recd_nn_dense_batch_backward(const float *w, int in, int out, int relu, const float *x,
                                  const float *y, float *dy, size_t n, float *dw, float *db,
                                  float *dx);

/* Backward of recd_nn_embed_mean: rows ids[0..n) of dtable [rows, d] each
 * get += g[d] / n (a repeated id gets its share once per occurrence). */
void recd_nn_embed_mean_backward(const float *g, size_t d, const uint64_t *ids, size_t n,
                                 float *dtable);

/* Backward of the FM pairwise term for one example: with sum[k] = sum_f
 * v_f, d/dv_f of 1/2 (|sum|^2 - sum_f |v_f|^2) = sum - v_f, so
 * dv[f, k] += g * (sum[k] - v[f, k]). */
void recd_nn_fm_backward(const float *v, size_t nf, size_t k, const float *sum, float g,
                         float *dv);

/* Weighted logistic loss on logits: returns sum_i w_i * (log(1 + e^z_i) -
 * y_i z_i) (computed without overflow) and sets dz[i] = w_i * (sigmoid(z_i)
 * - y_i). w may be NULL (all 1); labels in [0, 1]. */
double recd_nn_logloss(const float *z, const float *y, const float *w, size_t n, float *dz);

/* Softmax cross-entropy over the rows of logits[n, c] with target column
 * target[i]: returns sum_i -log softmax(row i)[target[i]] and overwrites
 * logits with scale * (softmax - onehot), the gradient of scale * loss. */
double recd_nn_softmax_xent(float *logits, size_t n, size_t c, const uint32_t *target,
                            float scale);

/* ---- optimisers -------------------------------------------------------------------
 * A parameter is a [rows, cols] float table with its gradient and the
 * optimiser's state. A dense parameter is updated whole at every step. A
 * sparse one (embedding tables) is updated lazily: only rows touched since
 * the last step (recd_param_row_grad) are updated, their moments included
 * (lazy Adam), and L2 applies to those rows only. Adam: Kingma & Ba 2015;
 * Adagrad: Duchi et al. 2011. */
typedef enum { RECD_OPT_ADAM = 0, RECD_OPT_ADAGRAD = 1 } recd_opt_kind_t;

typedef struct recd_opt {
    recd_opt_kind_t kind;
    float lr;           /* learning rate (current: schedules change it) */
    float beta1, beta2; /* Adam (0.9, 0.999) */
    float eps;          /* Adam 1e-8, Adagrad 1e-10 */
    float l2;           /* added to the gradient: g += l2 * w */
    int64_t step;       /* steps taken */
} recd_opt_t;

typedef struct recd_param {
    char name[64];
    float *w;  /* [rows, cols] the weights (owned unless `borrowed`) */
    float *g;  /* [rows, cols] gradient, zero after each step */
    float *m;  /* Adam first moment / Adagrad accumulator */
    float *v;  /* Adam second moment (NULL for Adagrad) */
    int64_t *row_step; /* sparse Adam: step count per row (bias correction) */
    size_t rows, cols;
    int sparse;
    uint32_t *touched; /* sparse: rows with a gradient since the last step */
    size_t ntouched;
    uint8_t *mark; /* [rows] 1 when in touched */
    float l2;      /* per-parameter L2 (overrides opt->l2 when >= 0) */
} recd_param_t;

/* Defaults for kind (lr 1e-3 for Adam, 0.05 for Adagrad). */
void recd_opt_init(recd_opt_t *o, recd_opt_kind_t kind);
/* A zeroed parameter (weights zero; callers initialise p->w); NULL on OOM. */
recd_param_t *recd_param_new(const char *name, size_t rows, size_t cols, int sparse,
                             recd_opt_kind_t kind);
void recd_param_free(recd_param_t *p);
/* Gradient row `row` of a parameter, marking it touched (sparse). */
float *recd_param_row_grad(recd_param_t *p, size_t row);
/* Apply one step to every parameter, then zero the gradients used; sets
 * o->step += 1 first. */
void recd_opt_step(recd_opt_t *o, recd_param_t *const *ps, size_t n);
/* Fill w with N(0, std^2) from a seeded PRNG (xoshiro256**), deterministic. */
void recd_nn_init_normal(float *w, size_t n, float std, uint64_t seed);
/* Glorot/Xavier uniform for a [in, out] matrix, deterministic by seed. */
void recd_nn_init_glorot(float *w, size_t in, size_t out, uint64_t seed);

#endif
