/*
 * recd candgen: candidate generation, the first stage of the funnel of
 * Covington, Adams, Sargin, "Deep Neural Networks for YouTube
 * Recommendations" (RecSys 2016), §3: a user tower turns the watch history
 * (mean of history embeddings) and user features into a vector u, and an
 * inner-product search over the item output embeddings returns the items
 * with the highest u·v. Serving semantics follow BUNDLE.md.
 *
 * Everything here runs on the request's worker thread with a bundle and an
 * overlay snapshot the caller holds; scratch memory comes from the
 * caller's arena. No locks, no I/O.
 */
#ifndef RECD_CANDGEN_H
#define RECD_CANDGEN_H

#include <stddef.h>
#include <stdint.h>

#include "recd/core.h"
#include "recd/model.h"

/* A retrieval request with ids already resolved against bundle+overlay. */
typedef struct recd_cand_request {
    const int64_t *history; /* known base item indices, request order */
    size_t nhistory;
    const recd_field_buckets_t *fields; /* [b->nfeatures]; only user/context fields read */
    const int64_t *ban_base;            /* base indices never returned */
    size_t nban_base;
    const int64_t *ban_live; /* overlay slots never returned */
    size_t nban_live;
    size_t candidates; /* how many to retrieve */
} recd_cand_request_t;

/* One candidate: a base item (index >= 0) or a live item (slot >= 0). */
typedef struct recd_candidate {
    int64_t index;   /* base item index, or -1 */
    int64_t slot;    /* overlay slot, or -1 */
    float retrieval; /* inner product, or popularity in the fallback */
} recd_candidate_t;

typedef struct recd_cand_result {
    recd_candidate_t *items; /* arena memory */
    size_t n;
    int fallback_popular; /* no known history: most popular items */
    uint64_t tower_us, ann_us;
} recd_cand_result_t;

/* The user vector u[b->dim] for a request (history may be empty: its part
 * of the input is then zeros). scratch must hold recd_candgen_scratch(b)
 * floats. */
size_t recd_candgen_scratch(const recd_bundle_t *b);
void recd_candgen_user_vector(const recd_bundle_t *b, const recd_cand_request_t *rq, float *scratch,
                              float *u);

/* Retrieve candidates: popularity fallback when rq has no history, else
 * tower + ANN + live items, minus deleted and banned items, best first. */
int recd_candgen_retrieve(const recd_bundle_t *b, const recd_overlay_t *o,
                          const recd_cand_request_t *rq, recd_arena_t *arena,
                          recd_cand_result_t *res, recd_err_t *err);

/* Items nearest to vector v (item embedding space), excluding one base
 * index / overlay slot (the query item itself; -1 for none). */
int recd_candgen_nearest(const recd_bundle_t *b, const recd_overlay_t *o, const float *v, size_t k,
                         int64_t skip_index, int64_t skip_slot, recd_arena_t *arena,
                         recd_cand_result_t *res, recd_err_t *err);

/* Values of every field for a request that gives none (each hashes "";
 * arena memory), or NULL on out of memory. */
recd_field_buckets_t *recd_candgen_missing_fields(const recd_bundle_t *b, recd_arena_t *a);

/* Run `rounds` retrievals with synthetic histories and no feature values,
 * so the first real requests do not pay for cold pages and caches. */
int recd_candgen_warmup(const recd_bundle_t *b, size_t rounds, recd_err_t *err);

/* Id of a candidate. */
const char *recd_candgen_id(const recd_bundle_t *b, const recd_overlay_t *o,
                            const recd_candidate_t *c);

#endif
