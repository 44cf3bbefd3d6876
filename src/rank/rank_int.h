/*
 * Private to src/rank: the parts DeepFM and Wide&Deep share - the field
 * tables, the first-order terms and the deep MLP with its first layer split
 * into a user/context part (once per request) and an item part (one sgemm
 * over all candidates).
 *
 * Layer 0 of the MLP sees concat(v_f) in ranker.fields order, so its weight
 * rows come in K-row blocks, one per field. x @ W0 = x_user @ W0_user +
 * x_item @ W0_item, where W0_user / W0_item gather the blocks of the
 * user/context and the item fields (copied once at load into contiguous
 * matrices). The user part plus the bias becomes the bias of the batched
 * item product.
 */
#ifndef RECD_RANK_INT_H
#define RECD_RANK_INT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "recd/rank.h"

typedef struct rank_field {
    const char *name; /* borrowed from b->features */
    size_t feature;   /* index into b->features and the request's fields[] */
    int item;         /* item-source: values per candidate */
    const float *emb; /* [buckets, K] rank.emb.<f> */
    const float *lin; /* [buckets] rank.lin.<f> */
    uint64_t buckets; /* rows of both tables */
} rank_field_t;

typedef struct rank_layer {
    const float *w; /* [in, out] */
    const float *b; /* [out] */
    int in, out;
    int relu;
} rank_layer_t;

typedef struct rank_net {
    size_t k;             /* K: embed_dim */
    rank_field_t *fields; /* [nfields], manifest order */
    size_t nfields;
    size_t *ufield, nu;   /* indices into fields of the user/context fields */
    size_t *ifield, ni;   /* ... and of the item fields */
    float bias;           /* rank.bias */
    rank_layer_t *layers; /* [nlayers]: the mlp, then out (linear, out 1) */
    size_t nlayers;
    float *w0_user; /* [K*nu, layers[0].out], owned */
    float *w0_item; /* [K*ni, layers[0].out], owned */
    size_t widest;  /* largest layer width (scratch per candidate) */
} rank_net_t;

/* What one call computes for every network. Arena memory. */
typedef struct rank_pass {
    float *xu;   /* [K*nu] user/context field vectors */
    float *xi;   /* [n, K*ni] item field vectors of each candidate */
    float *lin;  /* [n] sum of first-order terms, all fields */
    float *deep; /* [n] MLP output incl. out.b */
} rank_pass_t;

/* Resolve fields, bias, mlp and out of the manifest's ranker section r
 * (borrowed) against b. 0 or RECD_E* with err naming the manifest key. */
int rank_net_init(rank_net_t *net, const recd_bundle_t *b, json_t *r, recd_err_t *err);
void rank_net_clear(rank_net_t *net);

/* Field vectors, first-order sums and the deep part for n candidates. */
int rank_net_forward(const rank_net_t *net, const recd_bundle_t *b, const recd_overlay_t *o,
                     const recd_field_buckets_t *fields, const recd_candidate_t *c, size_t n,
                     recd_arena_t *a, rank_pass_t *p, recd_err_t *err);

/* The values of feature index f for candidate c (validated), into *out. */
int rank_item_values(const recd_bundle_t *b, const recd_overlay_t *o, const recd_candidate_t *c,
                     size_t f, recd_field_buckets_t *out, recd_err_t *err);

/* Feature index of a field name, or -1. */
int rank_find_feature(const recd_bundle_t *b, const char *name);

extern const recd_rank_ops_t recd_rank_deepfm_ops;
extern const recd_rank_ops_t recd_rank_wide_deep_ops;

#endif
