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
 * Gradient buffers must not overlap the inputs they are computed from.
 * Matrix dimensions go to cblas as int: each must be below 2^31.
 * Checked against finite differences in tests/unit/test_nn_grad.c. */

/* C[m, n] = alpha * op(A) @ op(B) + beta * C, row-major; op transposes when
 * ta / tb is set (A is then stored [k, m], B [n, k]). lda / ldb / ldc are
 * the row strides of A, B, C as stored (at least their column counts). With
 * k = 0, C = beta * C (C = 0 when beta is 0); m = 0 or n = 0 does nothing. */
void recd_nn_gemm(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *a,
                  size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc);

/* dy[i] = 0 where y[i] <= 0 (y: the ReLU's output). */
void recd_nn_relu_backward(const float *y, size_t n, float *dy);

/* Backward of Y[n, out] = act(X[n, in] @ w + b) given dY: when relu, dy is
 * first masked in place by the ReLU derivative (from y, which may be NULL
 * only when relu is 0); then dw[in, out] += X^T dY, db[out] += column sums
 * of dY (db may be NULL), and dx[n, in] = dY @ w^T (overwritten; dx may be
 * NULL). Two sgemm calls; n = 0 does nothing. */
void recd_nn_dense_batch_backward(const float *w, int in, int out, int relu, const float *x,
                                  const float *y, float *dy, size_t n, float *dw, float *db,
                                  float *dx);

/* Backward of recd_nn_embed_mean: rows ids[0..n) of dtable [rows, d] each
 * get += g[d] / n (a repeated id gets its share once per occurrence). ids
 * are not range-checked; n = 0 does nothing. */
void recd_nn_embed_mean_backward(const float *g, size_t d, const uint64_t *ids, size_t n,
                                 float *dtable);

/* Backward of the FM pairwise term for one example: with sum[k] = sum_f
 * v_f, d/dv_f of 1/2 (|sum|^2 - sum_f |v_f|^2) = sum - v_f, so
 * dv[f, k] += g * (sum[k] - v[f, k]). */
void recd_nn_fm_backward(const float *v, size_t nf, size_t k, const float *sum, float g, float *dv);

/* Weighted logistic loss on logits: returns sum_i w_i * (log(1 + e^z_i) -
 * y_i z_i) (as max(z, 0) - y z + log1p(e^-|z|), finite for any finite z;
 * terms and sum in double) and sets dz[i] = w_i * (sigmoid(z_i) - y_i).
 * w may be NULL (all 1); labels in [0, 1]; dz may be z. */
double recd_nn_logloss(const float *z, const float *y, const float *w, size_t n, float *dz);

/* Softmax cross-entropy over the rows of logits[n, c] (c >= 1) with target
 * column target[i]: returns sum_i -log softmax(row i)[target[i]] and
 * overwrites logits with scale * (softmax - onehot), the gradient of
 * scale * loss. Stable for large logits (the row maximum is subtracted);
 * exponentials in float, the loss summed in double. A target >= c makes the
 * result NaN (that row's gradient is then scale * softmax; nothing is read
 * or written out of bounds). */
double recd_nn_softmax_xent(float *logits, size_t n, size_t c, const uint32_t *target, float scale);

/* ---- optimisers -------------------------------------------------------------------
 * A parameter is a [rows, cols] float table with its gradient and the
 * optimiser's state. A dense parameter is updated whole at every step. A
 * sparse one (embedding tables) is updated lazily: only rows touched since
 * the last step (recd_param_row_grad) are updated, their moments included
 * (lazy Adam, each row's bias correction from its own update count), and L2
 * applies to those rows only; gradients written to a sparse parameter's g
 * without recd_param_row_grad are ignored. Touched rows are processed in
 * the order they were first touched, so a step is deterministic.
 * Adam: Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR
 * 2015 (Algorithm 1, bias-corrected moments);
 * Adagrad: Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online
 * Learning and Stochastic Optimization", JMLR 2011 (diagonal accumulator,
 * starting at 0). */
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
    float *w;          /* [rows, cols] the weights (owned unless `borrowed`) */
    float *g;          /* [rows, cols] gradient, zero after each step */
    float *m;          /* Adam first moment / Adagrad accumulator */
    float *v;          /* Adam second moment (NULL for Adagrad) */
    int64_t *row_step; /* sparse Adam: step count per row (bias correction) */
    size_t rows, cols;
    int sparse;
    recd_opt_kind_t kind; /* the optimiser the state was allocated for */
    int borrowed;         /* set when w points at memory recd_param_free must not free */
    uint32_t *touched;    /* sparse: rows with a gradient since the last step */
    size_t ntouched;
    uint8_t *mark; /* [rows] 1 when in touched */
    float l2;      /* per-parameter L2 (overrides opt->l2 when >= 0) */
} recd_param_t;

/* Defaults for kind (lr 1e-3 for Adam, 0.05 for Adagrad; l2 0; step 0). */
void recd_opt_init(recd_opt_t *o, recd_opt_kind_t kind);
/* A zeroed parameter (weights zero; callers initialise p->w) with state for
 * optimiser kind, l2 = -1 (use the optimiser's). NULL on OOM, when rows or
 * cols is 0, when rows * cols overflows, or when a sparse one has more than
 * 2^32 - 1 rows. To use weights held elsewhere: free(p->w), point p->w at
 * them and set p->borrowed. */
recd_param_t *recd_param_new(const char *name, size_t rows, size_t cols, int sparse,
                             recd_opt_kind_t kind);
/* Frees p and its buffers (w unless borrowed); NULL is a no-op. */
void recd_param_free(recd_param_t *p);
/* Gradient row `row` of a parameter, marking it touched (sparse; for a
 * dense one just the row). NULL when row >= rows. */
float *recd_param_row_grad(recd_param_t *p, size_t row);
/* Apply one step to every parameter (NULL entries are skipped), then zero
 * the gradients used (dense: all of g; sparse: the touched rows, and the
 * touched list is cleared); sets o->step += 1 first. Returns 0, or -1 when
 * a parameter's kind differs from o->kind (then nothing is changed). */
int recd_opt_step(recd_opt_t *o, recd_param_t *const *ps, size_t n);
/* A copy of parameters' weights, for early stopping's best epoch: save
 * allocates on first use and overwrites after; restore copies back into the
 * same parameters (same order); free releases (a zeroed snapshot is empty). */
typedef struct recd_param_snapshot {
    float **w; /* [n] copies, NULL until the first save */
    size_t n;
} recd_param_snapshot_t;
/* 0, or -1 when out of memory (the snapshot is then left empty). */
int recd_param_snapshot_save(recd_param_snapshot_t *s, recd_param_t *const *ps, size_t n);
/* No-op on an empty snapshot. */
void recd_param_snapshot_restore(const recd_param_snapshot_t *s, recd_param_t *const *ps);
void recd_param_snapshot_free(recd_param_snapshot_t *s);
/* Fill w[n] with N(0, std^2): Box-Muller over xoshiro256** (Blackman &
 * Vigna 2018) seeded through splitmix64; the same seed gives the same
 * values. */
void recd_nn_init_normal(float *w, size_t n, float std, uint64_t seed);
/* Glorot/Xavier uniform (Glorot & Bengio, AISTATS 2010) for a [in, out]
 * matrix: U(-a, a) with a = sqrt(6 / (in + out)); deterministic by seed. */
void recd_nn_init_glorot(float *w, size_t in, size_t out, uint64_t seed);

#endif
