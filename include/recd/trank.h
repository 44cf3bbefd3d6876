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
 * Models: DeepFM (Guo et al. 2017): logit = bias + sum w_f + FM pairwise
 * term + deep; Wide&Deep (Cheng et al. 2016): bias + sum w_f + crosses +
 * deep; LR: bias + sum w_f (+ crosses when given). deep = ReLU MLP over the
 * concatenated field vectors, then a linear output. Forward passes match
 * src/rank exactly, so a written bundle scores what the trainer scored.
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
 * ids[off[i * nslots + s] .. off[i * nslots + s + 1]) (at least one). */
typedef struct recd_trank_data {
    size_t n;             /* examples */
    size_t nfields;       /* ranker fields, in manifest order */
    size_t ncrosses;      /* Wide&Deep crosses (0 for DeepFM) */
    const uint64_t *off;  /* [n * (nfields + ncrosses) + 1] */
    const uint32_t *ids;  /* bucket ids */
    const float *label;   /* [n] in [0, 1] */
    const float *weight;  /* [n] > 0, or NULL (all 1) */
} recd_trank_data_t;

typedef struct recd_trank_opts {
    recd_trank_kind_t kind;
    size_t embed_dim;  /* K (default 16) */
    size_t hidden[8];  /* MLP sizes (default 256, 128, 64) */
    size_t nhidden;
    int optimizer;     /* RECD_OPT_ADAM (default) or RECD_OPT_ADAGRAD */
    float lr;          /* default 1e-3 (Adam) */
    float l2_emb;      /* L2 on embedding / first-order rows (lazy), default 1e-6 */
    float l2_dense;    /* L2 on MLP weights, default 0 */
    float lr_decay;    /* per-epoch multiplicative decay, default 1 (none) */
    size_t batch;      /* default 256 */
    int max_epochs;    /* default 10 */
    int patience;      /* early stopping: epochs without validation improvement (default 2) */
    uint64_t seed;     /* init and shuffling */
    int verbose;       /* progress lines on stderr (epoch, loss, examples/s, ETA) */
} recd_trank_opts_t;

/* Field and cross descriptions, for the hash sizes and the manifest. */
typedef struct recd_trank_schema {
    size_t nfields;
    const char *const *field_names; /* [nfields] */
    const uint64_t *field_buckets;  /* [nfields] */
    size_t ncrosses;
    const char *const *cross_names; /* [ncrosses] "<f1>x<f2>" */
    const uint64_t *cross_buckets;  /* [ncrosses] */
    const size_t (*cross_fields)[2];/* [ncrosses] field indices */
} recd_trank_schema_t;

typedef struct recd_trank recd_trank_t;

void recd_trank_defaults(recd_trank_opts_t *o, recd_trank_kind_t kind);

/* Train on `train`, early-stopping on `valid` (logloss; may be NULL: then
 * max_epochs are run). Deterministic for a seed. Returns NULL with err set
 * on bad options or OOM. */
recd_trank_t *recd_trank_fit(const recd_trank_opts_t *o, const recd_trank_schema_t *s,
                             const recd_trank_data_t *train, const recd_trank_data_t *valid,
                             recd_err_t *err);
/* logits[d->n] */
void recd_trank_predict(const recd_trank_t *m, const recd_trank_data_t *d, float *logits);
/* Training summary: epochs run, best epoch, best validation logloss,
 * examples/s of the training loop. */
typedef struct recd_trank_summary {
    int epochs, best_epoch;
    double best_valid_logloss;
    double examples_per_s;
    double seconds;
} recd_trank_summary_t;
void recd_trank_summary(const recd_trank_t *m, recd_trank_summary_t *out);
/* Write the rank.* tensors (names of BUNDLE.md) into w and return the
 * manifest's "ranker" object (new reference) with "output" set to
 * `output` ("sigmoid" or "exp"). Only for DEEPFM and WIDE_DEEP. */
struct json_t *recd_trank_write(const recd_trank_t *m, struct recd_bundle_writer *w,
                                const char *output, recd_err_t *err);
void recd_trank_free(recd_trank_t *m);

#endif
