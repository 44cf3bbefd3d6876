/*
 * recd trainer: ranking models (DeepFM, Wide&Deep, logistic regression)
 * trained with weighted logistic loss on hashed categorical features.
 *
 * The caller (src/train/fit.c) turns a dataset into examples: every example
 * has, per ranker field, one or more bucket ids (a multi-valued field such
 * as genres has several: the field vector is their mean, the first-order
 * term their sum / n, exactly as serving computes it, BUNDLE.md), per
 * Wide&Deep cross one or more cross bucket ids (averaged), a label in
 * [0, 1] and a weight (1, or the watch time for watch positives: the
 * YouTube ranking model's weighted logistic regression, so that exp(logit)
 * estimates the expected watch time).
 *
 * Bucket ids must be the ones serving computes: recd_feature_bucket(field,
 * text) for a field, and for a cross (f1, f2) recd_feature_bucket("<f1>x<f2>",
 * t1 "\x1f" t2) for every value pair (t1, t2), t1 outer, in that order.
 *
 * Models: DeepFM (Guo et al. 2017): logit = bias + sum w_f + FM pairwise
 * term + deep; Wide&Deep (Cheng et al. 2016): bias + sum w_f + crosses +
 * deep; LR: bias + sum w_f (+ crosses when given). deep = ReLU MLP over the
 * concatenated field vectors, then a linear output. Forward passes match
 * src/rank exactly, so a written bundle scores what the trainer scored.
 * DeepFM has no crosses: it skips the cross slots of the data.
 *
 * Training: shuffled minibatches, Adam (Kingma & Ba 2015) or Adagrad
 * (Duchi et al. 2011) with lazy sparse updates of the embedding,
 * first-order and cross tables (only rows a batch touched, L2 on those
 * rows), dense updates of the MLP; the loss is the weighted logloss
 * divided by (batch size * mean training weight), so its scale does not
 * depend on the weights' unit. After each epoch the validation set's
 * weighted logloss decides early stopping; the best epoch's weights are
 * restored at the end.
 *
 * Thread-safety: no global state. A model being fitted belongs to the
 * fitting thread; a fitted model is immutable except through the test
 * hooks, and predict / eval / write may run concurrently on it.
 */
#ifndef RECD_TRANK_H
#define RECD_TRANK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "recd/core.h"

struct json_t;
struct recd_bundle_writer;

typedef enum {
    RECD_TRANK_DEEPFM = 1,
    RECD_TRANK_WIDE_DEEP = 2,
    RECD_TRANK_LR = 3, /* baseline; written bundles need deepfm or wide_deep */
} recd_trank_kind_t;

/* Examples in compressed rows: example i, slot s (fields first, then
 * crosses: nslots = nfields + ncrosses) has bucket ids
 * ids[off[i * nslots + s] .. off[i * nslots + s + 1]) (at least one).
 * off need not start at 0 (a view into a larger set is fine) but must not
 * decrease. Borrowed by every call; never modified. */
typedef struct recd_trank_data {
    size_t n;            /* examples */
    size_t nfields;      /* ranker fields, in manifest order */
    size_t ncrosses;     /* crosses (as in the schema; DeepFM ignores them) */
    const uint64_t *off; /* [n * (nfields + ncrosses) + 1] */
    const uint32_t *ids; /* bucket ids, < the slot's buckets */
    const float *label;  /* [n] in [0, 1]; may be NULL for predict */
    const float *weight; /* [n] > 0, or NULL (all 1) */
} recd_trank_data_t;

#define RECD_TRANK_MAX_HIDDEN 8

typedef struct recd_trank_opts {
    recd_trank_kind_t kind;
    size_t embed_dim;                     /* K (default 16); unused by LR */
    size_t hidden[RECD_TRANK_MAX_HIDDEN]; /* MLP sizes (default 256, 128, 64); unused by LR */
    size_t nhidden;                       /* 0..8 (0: the output layer sees the field vectors) */
    int optimizer;                        /* RECD_OPT_ADAM (default) or RECD_OPT_ADAGRAD */
    /* learning rates; 0 (the default) picks by optimiser and kind: Adam
     * 1e-3 for the MLP and bias and 1e-2 for the sparse tables (LR: 1e-2
     * for all), Adagrad 0.05 for all; lr_sparse 0 with lr set: lr for LR
     * and Adagrad, 1e-2 for Adam */
    float lr;        /* MLP and global bias */
    float lr_sparse; /* embedding / first-order / cross tables */
    float l2_emb;    /* L2 on embedding / first-order / cross rows (touched rows), 1e-3 */
    float l2_dense;  /* L2 on MLP weights (not biases); < 0 (default): Adam 3e-3, Adagrad 0 */
    float dropout;   /* hidden units dropped while training, 0..0.9 (default 0) */
    /* Unseen-id training: with probability unseen_rate a training example
     * sees field unseen_field (an index; SIZE_MAX = none, the default) and
     * the crosses built on it as an id never trained, i.e. zero vector and
     * zero first-order weight, so the MLP and the FM term also learn the
     * regime of users the model has never seen (most users at serving
     * time, whose hashed id lands in an untouched bucket). 0..0.9. */
    size_t unseen_field;
    float unseen_rate;
    /* Warm start (may be NULL): a fitted model of the same fields, buckets
     * and crosses whose bias, first-order tables and cross tables are
     * copied before training. fit trains an LR first and starts DeepFM /
     * Wide&Deep from it, so the deep model begins at the LR's solution and
     * early stopping can only keep an epoch that beats it on validation. */
    const struct recd_trank *warm;
    float lr_decay;  /* per-epoch multiplicative decay in (0, 1], default 1 (none) */
    size_t batch;    /* default 256 */
    int max_epochs;  /* default 10 */
    int patience;    /* early stopping: epochs without validation improvement (default 2) */
    uint64_t seed;   /* init and shuffling (default 1) */
    int verbose;     /* progress lines on stderr (epoch, loss, valid logloss/AUC, ex/s, ETA) */
    /* Warm start from named tensors (may be NULL; the embedded trainer
     * starts from the live bundle): after initialisation (and `warm`) it is
     * called once per parameter with the parameter's bundle tensor name, its
     * weights w[rows * cols] and shape, and may overwrite w; the return
     * value is 1 when it did, else 0. With it, max_epochs may be 0 (the
     * warm weights are kept as they are). */
    int (*warm_tensor)(void *ctx, const char *name, float *w, size_t rows, size_t cols);
    void *warm_ctx;
    /* Polled before each epoch (may be NULL): non-zero abandons the fit
     * (NULL returned, RECD_EAGAIN "cancelled"). */
    int (*cancel)(void *ctx);
    void *cancel_ctx;
} recd_trank_opts_t;

/* Field and cross descriptions, for the hash sizes and the manifest.
 * Borrowed by recd_trank_fit (copied). */
typedef struct recd_trank_schema {
    size_t nfields;
    const char *const *field_names; /* [nfields] */
    const uint64_t *field_buckets;  /* [nfields], 1..2^32 */
    size_t ncrosses;
    const char *const *cross_names;  /* [ncrosses] "<f1>x<f2>" (checked) */
    const uint64_t *cross_buckets;   /* [ncrosses], 1..2^32 */
    const size_t (*cross_fields)[2]; /* [ncrosses] field indices */
} recd_trank_schema_t;

typedef struct recd_trank recd_trank_t;

/* Defaults for kind, chosen on MovieLens (ml-latest-small, ratings >= 4
 * positive, time-ordered 80/20 split): see the comment in trank.c. */
void recd_trank_defaults(recd_trank_opts_t *o, recd_trank_kind_t kind);

/* Train on `train`, early-stopping on `valid` (weighted logloss; NULL or
 * empty: max_epochs are run and the last epoch is kept). Deterministic for
 * a seed (bit-identical weights). Returns a new model, or NULL with err
 * set on bad options, schema or data (naming the example and slot) or OOM.
 * Thread-safe (no shared state); the data are borrowed for the call.
 * Memory: per weight, the weight, its gradient and the optimiser state
 * (Adam: 4 floats, Adagrad 3), plus one copy of the weights for the best
 * epoch when validating. */
recd_trank_t *recd_trank_fit(const recd_trank_opts_t *o, const recd_trank_schema_t *s,
                             const recd_trank_data_t *train, const recd_trank_data_t *valid,
                             recd_err_t *err);

/* logits[d->n] of the examples of d (labels and weights unused). Returns 0,
 * RECD_EINVAL (d does not fit the model: slot counts, a slot without ids, a
 * bucket id out of range; logits untouched) or RECD_ENOMEM. Thread-safe. */
int recd_trank_predict(const recd_trank_t *m, const recd_trank_data_t *d, float *logits);

/* Weighted logloss (sum w * loss / sum w) and weighted AUC (ties count
 * half; a soft label y counts y as positive and 1 - y as negative mass) of
 * the model on d, which needs labels. auc may be NULL; it is NaN without
 * both classes. Returns 0 or RECD_EINVAL / RECD_ENOMEM with err. Thread-safe. */
int recd_trank_eval(const recd_trank_t *m, const recd_trank_data_t *d, double *logloss, double *auc,
                    recd_err_t *err);

/* Training summary: epochs run, best epoch (1-based; the weights kept),
 * its validation logloss and AUC (NaN without a validation set), the last
 * epoch's mean training loss, examples/s of the training loop (forward,
 * backward, updates; validation excluded) and wall seconds of the fit. */
typedef struct recd_trank_summary {
    int epochs, best_epoch;
    double best_valid_logloss;
    double best_valid_auc;
    double train_loss;
    double examples_per_s;
    double seconds;
} recd_trank_summary_t;
void recd_trank_summary(const recd_trank_t *m, recd_trank_summary_t *out);

/* "deepfm", "wide_deep" or "lr". */
const char *recd_trank_kind_name(recd_trank_kind_t kind);

/* Write the rank.* tensors (names of BUNDLE.md) into w and return the
 * manifest's "ranker" object (new reference) with "output" set to
 * `output` ("sigmoid" or "exp"). Only for DEEPFM and WIDE_DEEP (LR and a
 * bad output are RECD_EINVAL); NULL with err on failure (w is left to the
 * caller to abort). */
struct json_t *recd_trank_write(const recd_trank_t *m, struct recd_bundle_writer *w,
                                const char *output, recd_err_t *err);
void recd_trank_free(recd_trank_t *m);

/* ---- test hooks (tests/unit/test_trank.c: gradient checks) ------------------------
 * Not for production use; they break the immutability of a fitted model. */

/* The weights of the tensor `name` (bundle names: "rank.emb.<f>",
 * "rank.lin.<f>", "rank.wide.<cross>", "rank.bias", "rank.mlp.<i>.w" /
 * ".b", "rank.out.w" / ".b"), writable; *count = floats. NULL if unknown. */
float *recd_trank_debug_tensor(recd_trank_t *m, const char *name, size_t *count);
/* Loss sum_i w_i * logloss_i over all of d as one batch (no L2) at the
 * current weights; when grad is not NULL, also its analytic gradient with
 * respect to the tensor `name` into grad[count] (by the training code's
 * backward pass). With dropout, a training pass whose mask is the same on
 * every call. NaN on bad data or an unknown name. Not thread-safe for m. */
double recd_trank_debug_loss_grad(recd_trank_t *m, const recd_trank_data_t *d, const char *name,
                                  float *grad);

#endif
