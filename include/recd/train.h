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

#include "recd/core.h"

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

#endif
