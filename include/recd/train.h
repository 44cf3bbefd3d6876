/*
 * recd train: model training shared by the recd-train program and the
 * embedded trainer thread, and the synthetic bundle generator.
 *
 * The synthetic generator writes a complete, valid recd-bundle/1
 * (models/FORMAT.md) whose weights are constructed rather than trained, but
 * structured: items belong to latent topics (correlated with their genres
 * and years), and the candidate tower maps a history concentrated on one
 * topic to a user vector whose nearest items are mostly from that topic.
 * Recall, A/B and correctness tests therefore have something to measure.
 * The ranker's weights are small random values.
 *
 * Output is a pure function of the options: the generator uses its own
 * PRNG (xoshiro256** seeded through splitmix64) and only IEEE-exact
 * arithmetic (+ - * / sqrt) in a fixed order, so one seed gives
 * byte-identical tensors.bin and items.tsv on every machine.
 */
#ifndef RECD_TRAIN_H
#define RECD_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include <stdio.h>

#include "recd/core.h"

struct json_t;
struct recd_dataset;
struct recd_bundle;

#define RECD_SYNTH_MAX_LAYERS 8

typedef enum {
    RECD_RANKER_DEEPFM = 1,    /* Guo et al. 2017 */
    RECD_RANKER_WIDE_DEEP = 2, /* Cheng et al. 2016, with the crosses of FORMAT.md */
} recd_ranker_kind_t;

typedef struct recd_synth_opts {
    const char *models_dir;               /* bundle goes to <models_dir>/<name>/<version>/ */
    const char *name;                     /* model name (default "default") */
    int64_t version;                      /* >= 1 (default 1) */
    size_t n_items;                       /* N (default 20000) */
    size_t dim;                           /* D: item and user vectors, ANN dimension (default 64) */
    size_t embed_dim;                     /* E: history and user-field embeddings (default 32) */
    size_t hidden[RECD_SYNTH_MAX_LAYERS]; /* candidate tower hidden sizes (default {256}) */
    size_t nhidden;                       /* >= 1; the tower's last layer (out D) is added */
    size_t rank_embed_dim;                /* K: ranker field embeddings (default 16) */
    size_t rank_hidden[RECD_SYNTH_MAX_LAYERS]; /* ranker MLP (default {256, 128, 64}) */
    size_t nrank_hidden;                       /* >= 1 */
    size_t history_max_len;                    /* candidate.history.max_len (default 50) */
    uint64_t seed;                             /* <= INT64_MAX (default 1) */
    recd_ranker_kind_t ranker;                 /* default DeepFM */
    const char *index;    /* "Flat" | "IVF<nlist>,Flat" | "HNSW<M>"; NULL = by size,
                             recd_train_synth_default_index() */
    int nprobe;           /* IVF lists searched (default 32) */
    int ef_search;        /* HNSW search beam (default 128) */
    int write_index_file; /* build index.faiss with src/ann (default 1) */
} recd_synth_opts_t;

/* Fill o with the defaults above (models_dir = "models"). */
void recd_train_synth_defaults(recd_synth_opts_t *o);
/* The index a catalog of n_items gets when none is asked for: Flat up to
 * 50k items, else IVF<pow2 nearest 4*sqrt(n)>,Flat. Writes into buf. */
const char *recd_train_synth_default_index(size_t n_items, char *buf, size_t cap);

/* Validate o, generate the bundle and publish it atomically (refusing an
 * existing version). Returns 0, or a negative RECD_E* code with err naming
 * the option, path or tensor. Not thread-safe with respect to another
 * writer of the same name and version; otherwise shares nothing. */
int recd_train_synth_bundle(const recd_synth_opts_t *o, recd_err_t *err);

/* The latent topic of every item as the generator assigns it for o (only
 * n_items, hidden and seed matter): fills topic[n_items] when topic is not
 * NULL and returns the number of topics. For tests and diagnostics. */
size_t recd_train_synth_topics(const recd_synth_opts_t *o, uint32_t *topic);

/* ---- fit and eval (recd-train fit / eval, the embedded trainer) -----------------
 * fit trains, from a dataset (include/recd/dataset.h), the candidate model
 * (YouTube DNN with sampled softmax), a ranker (DeepFM, Wide&Deep, or LR
 * written as a DeepFM without embeddings) and the content model, and
 * publishes a bundle. With a holdout it first cuts the evaluation split
 * (leave-one-out per user, cold items, last part by time) and trains only
 * on the training part; the manifest records the split and the metrics
 * measured on it, which `eval` on the same dataset reproduces. */

typedef enum { RECD_FIT_DEEPFM = 1, RECD_FIT_WIDE_DEEP = 2, RECD_FIT_LR = 3 } recd_fit_ranker_t;

typedef struct recd_fit_opts {
    const char *data_dir;   /* dataset directory (required) */
    const char *models_dir; /* bundle goes to <models_dir>/<name>/<version>/ */
    const char *name;       /* default "default" */
    int64_t version;        /* 0: one past the highest existing version */
    recd_fit_ranker_t ranker;
    int holdout;       /* 1: evaluation split (default); 0: train on everything; 2: split by
                          time only: the newest time_frac of the events (by time) is held
                          out for every model, nothing else (the embedded trainer) */
    double cold_frac;  /* items held out for the cold-start metric (0.05) */
    double time_frac;  /* ranker's time-ordered test part (0.10) */
    uint64_t seed;
    /* candidate model */
    size_t dim, embed_dim, hidden[RECD_SYNTH_MAX_LAYERS], nhidden, history_max_len, negatives;
    int sampler; /* 0 log-uniform (default), 1 popularity^0.75 */
    int cand_epochs;
    float cand_lr;
    float cand_l2;
    size_t cand_batch;
    double cand_user_weight; /* example weight n_u^-w for a user with n_u examples */
    int cand_tie;            /* history embeddings tied to the output embeddings (E == D) */
    /* ranker */
    size_t rank_embed_dim, rank_hidden[RECD_SYNTH_MAX_LAYERS], nrank_hidden;
    int rank_epochs;
    float rank_lr;
    size_t rank_batch;
    float rank_unseen; /* share of training examples that see user_id as never trained (0.2) */
    int rank_warm_lr;  /* DeepFM / Wide&Deep start from a fitted LR's first-order weights (1) */
    float rank_l2;     /* L2 on the ranker's embedding rows; < 0: the trainer's default */
    float rank_lr_sparse; /* learning rate of the ranker's tables; 0: the trainer's default */
    int watch_weight; /* -1 auto (when the data has watch times), 0 off, 1 on */
    /* content model */
    int content; /* 1 default */
    int content_epochs;
    /* ANN */
    const char *index; /* NULL: by size as recd_train_synth_default_index */
    int nprobe, ef_search;
    int verbose; /* progress on stderr */
    /* ---- optional: in-memory data, warm start, cancellation (the embedded
     * trainer, include/recd/online.h) ---- */
    /* Train on this dataset (borrowed) instead of loading data_dir (which
     * then only names the source in the manifest; may be NULL). */
    const struct recd_dataset *dataset;
    /* Warm start: a published bundle to start from, by directory or already
     * loaded (borrowed; wins over warm_dir). The architecture is the
     * bundle's (feature schema with its buckets, candidate dims and tower,
     * tied tables, ranker kind and sizes, watch weighting, content model,
     * ANN index): the options for those are ignored. After the usual
     * initialisation every parameter whose tensor the bundle has with the
     * same name and shape starts from it (item tables row by row, matched
     * by item id); the ranker starts from it instead of from a fitted LR,
     * with the gentler rates used after LR (unless rank_lr / rank_lr_sparse
     * are set); epochs may then be 0 (the bundle's weights unchanged).
     * Without a warm start the outputs are exactly those of a fit without
     * these fields. */
    const char *warm_dir;
    const struct recd_bundle *warm_bundle;
    /* Polled between stages and epochs (may be NULL): non-zero abandons the
     * fit, which returns RECD_EAGAIN ("cancelled") and publishes nothing. */
    int (*cancel)(void *ctx);
    void *cancel_ctx;
    /* Test hook, to get a model that is worse: 1 trains on shuffled labels
     * (the candidate model's target items permuted among the training
     * interactions, the ranker's labels and weights among its training
     * examples); 2 the same but the ranker's labels inverted (1 - label)
     * instead of shuffled, which moves a warm-started ranker much further in
     * a few epochs. The evaluation split is left intact. */
    int test_corrupt_labels;
} recd_fit_opts_t;

void recd_fit_defaults(recd_fit_opts_t *o);

/* What fit did: the published version, timings and the metrics. */
typedef struct recd_fit_result {
    int64_t version;
    char dir[1024];
    double seconds, cand_seconds, rank_seconds, content_seconds;
    double cand_examples_per_s, rank_examples_per_s;
    struct json_t *metrics; /* the manifest's training.metrics (owned; json_decref) */
    size_t cand_examples, rank_examples; /* training examples of the candidate model, ranker */
    size_t warm_offered, warm_copied;    /* warm start: parameters offered, started from it */
    char warm_missed[256];               /* the first parameters not started from it */
} recd_fit_result_t;

/* Run a fit (see above). Returns 0 with res filled (free res->metrics), or
 * a negative RECD_E* code with err set; RECD_EAGAIN when o->cancel stopped
 * it. Thread-safe (no shared state besides the published directory). */
int recd_train_fit(const recd_fit_opts_t *o, recd_fit_result_t *res, recd_err_t *err);

/* Evaluate bundle directories (each trained with a holdout on this dataset)
 * with the split recorded in the first one's manifest. Prints the table to
 * `out` (when not NULL) and returns a JSON object {"split": ..., "rows":
 * [...]} with ItemPop and Random rows computed on the same split. */
struct json_t *recd_train_eval(const char *const *bundles, size_t nbundles, const char *data_dir,
                               FILE *out, recd_err_t *err);

#endif
