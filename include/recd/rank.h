/*
 * recd rank: the second stage of the funnel. A ranking network scores every
 * retrieved candidate with user, item and context features:
 *   DeepFM (Guo et al., IJCAI 2017) and Wide&Deep (Cheng et al., DLRS 2016),
 * exactly as ../shared/BUNDLE.md ("Feature hashing and the forward passes")
 * pins them. Networks plug in through recd_rank_ops_t (xDeepFM, NFM and
 * NeuMF later) without touching the API code.
 *
 * A ranker is built once per bundle (recd_rank_attach, the model loader's
 * attach hook) and is immutable: scoring is thread-safe and uses only the
 * caller's arena for scratch. Work that does not depend on the candidate
 * (user and context fields) is done once per call; per-candidate work is
 * batched through cblas_sgemm (src/nn).
 */
#ifndef RECD_RANK_H
#define RECD_RANK_H

#include <stddef.h>

#include "recd/candgen.h"
#include "recd/core.h"
#include "recd/model.h"

/* Per-candidate contributions to the logit, for "explain": true. */
typedef struct recd_rank_explain {
    float bias;
    float first_order;  /* sum of first-order weights */
    float second_order; /* DeepFM: FM pairwise term; Wide&Deep: sum of crosses */
    float deep;         /* MLP output */
    float logit;
} recd_rank_explain_t;

typedef struct recd_ranker recd_ranker_t;

/* One network type. */
typedef struct recd_rank_ops {
    const char *type; /* manifest ranker.type, e.g. "deepfm" */
    /* Build from a validated bundle (tensors borrowed from b, which outlives
     * the ranker). NULL + err on failure. */
    void *(*load)(const recd_bundle_t *b, recd_err_t *err);
    /* Logits of n candidates; see recd_rank_score. */
    int (*logits)(const void *net, const recd_bundle_t *b, const recd_overlay_t *o,
                  const recd_field_buckets_t *fields, const recd_candidate_t *c, size_t n,
                  recd_arena_t *a, float *logits, recd_rank_explain_t *explain, recd_err_t *err);
    void (*free)(void *net);
} recd_rank_ops_t;

/* Attach the ranker named by the bundle's manifest to b (b->ranker,
 * b->ranker_free). A bundle without a "ranker" section is left without one
 * (returns 0). An unknown type or a build failure returns an error, which
 * rejects the bundle. Signature fits recd_model_opts_t.attach. */
int recd_rank_attach(recd_bundle_t *b, recd_err_t *err);

/* The ranker attached to b, or NULL. */
const recd_ranker_t *recd_rank_of(const recd_bundle_t *b);

/* Score n candidates for one request. fields: [b->nfeatures] values of the
 * user and context fields (item fields come from the bundle / overlay).
 * scores[n] receive sigmoid(logit) ("output": "sigmoid", pCTR) or
 * exp(logit) ("output": "exp", expected watch time, the YouTube weighted
 * logistic model). explain may be NULL, else [n]. Thread-safe. */
int recd_rank_score(const recd_ranker_t *r, const recd_bundle_t *b, const recd_overlay_t *o,
                    const recd_field_buckets_t *fields, const recd_candidate_t *c, size_t n,
                    recd_arena_t *a, float *scores, recd_rank_explain_t *explain, recd_err_t *err);

/* recd_rank_score with the output transform chosen by the caller (an A/B
 * variant's score formula): RECD_RANK_OUTPUT_BUNDLE as the manifest says,
 * RECD_RANK_OUTPUT_SIGMOID (pCTR) or RECD_RANK_OUTPUT_EXP (watch time). */
enum { RECD_RANK_OUTPUT_BUNDLE = -1, RECD_RANK_OUTPUT_SIGMOID = 0, RECD_RANK_OUTPUT_EXP = 1 };
int recd_rank_score_as(const recd_ranker_t *r, const recd_bundle_t *b, const recd_overlay_t *o,
                       const recd_field_buckets_t *fields, const recd_candidate_t *c, size_t n,
                       recd_arena_t *a, int output, float *scores, recd_rank_explain_t *explain,
                       recd_err_t *err);

/* Warm both stages: recd_candgen_warmup, then `rounds` rankings of 300
 * items with no feature values (when b has a ranker). */
int recd_rank_warmup(const recd_bundle_t *b, size_t rounds, recd_err_t *err);

/* "deepfm" / "wide_deep"; output "sigmoid" or "exp". */
const char *recd_rank_type(const recd_ranker_t *r);
const char *recd_rank_output(const recd_ranker_t *r);

#endif
