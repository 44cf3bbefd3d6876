/*
 * recd-load: the request builder. From a scenario, a bundle and a seed it
 * draws one request after another: the endpoint by the mix weights, the
 * user by Zipf over a seeded permutation of the user ids (or a fresh cold
 * user), items by Zipf over the catalog ranked by popularity, histories of
 * log-normal length, event batches, and the user/context features of the
 * bundle's schema. Bodies are compact JSON written directly into a buffer
 * (no JSON library on the hot path).
 *
 * Determinism: the same scenario, bundle and seed give the same sequence of
 * requests (except the events' "ts", which is the time passed in). A
 * user's features depend on the user id only.
 */
#ifndef RECD_LOAD_REQGEN_H
#define RECD_LOAD_REQGEN_H

#include <stddef.h>
#include <stdint.h>

#include "recd/core.h"

#include "buf.h"
#include "bundle.h"
#include "scenario.h"
#include "zipf.h"

/* How one feature field gets its value: a pick from pre-rendered JSON
 * texts, or a uniform integer in [lo, hi]. */
typedef struct lg_valgen {
    const char *field; /* borrowed from the bundle */
    char **vals;       /* JSON texts ("\"F\"", "31") */
    size_t nvals;      /* 0: use the range */
    long long lo, hi;
} lg_valgen_t;

typedef struct lg_gen {
    const lg_scenario_t *s;
    const lg_bundle_t *b;
    recd_rng_t rng;     /* request contents */
    recd_rng_t mix_rng; /* endpoint choice, a separate stream so it can be drawn early */
    lg_zipf_t users, items;
    uint32_t *user_of_rank; /* rank → user number */
    uint32_t *item_of_rank; /* rank → item index */
    uint32_t *seen;         /* per item: stamp of the last request that drew it */
    uint32_t stamp;
    lg_valgen_t *ufeat, *cfeat;
    size_t nufeat, ncfeat;
    uint32_t mix_total, ev_total;
    uint64_t cold_seq;
    double ln_median;
    int ranked_by_popularity; /* 1 when items.tsv popularity was used */
    lg_buf_t scratch;
} lg_gen_t;

/* One request as drawn. The buffers are reused by lg_gen_next(). */
typedef struct lg_request {
    int ep;             /* LG_EP_* */
    const char *method; /* "GET" or "POST" */
    lg_buf_t path;      /* with the query string */
    lg_buf_t body;      /* compact JSON; empty for GET */
    uint32_t nevents;   /* events in an events batch */
    int cold;           /* recommend/score from a cold user */
    uint32_t nhistory;  /* history ids sent (0: none) */
} lg_request_t;

/* Prepare a builder. Checks the scenario's features/context against the
 * bundle's schema: errors name the path ("scenario features.colour: ...").
 * 0 or -1 (err set); g needs lg_gen_free() either way. s and b must outlive
 * g. */
int lg_gen_init(lg_gen_t *g, const lg_scenario_t *s, const lg_bundle_t *b, uint64_t seed, char *err,
                size_t errlen);
/* Draw the endpoint of the next request (LG_EP_*) by the mix weights. */
int lg_gen_pick(lg_gen_t *g);
/* Build a request for endpoint ep into r (its buffers reset first); now_s
 * is the events' "ts". Endpoints and contents come from separate random
 * streams: picking every endpoint first and building later gives the same
 * requests as lg_gen_next(), as long as they are built in order. 0, or -1
 * when out of memory. */
int lg_gen_build(lg_gen_t *g, int ep, lg_request_t *r, int64_t now_s);
/* lg_gen_build(g, lg_gen_pick(g), r, now_s). */
int lg_gen_next(lg_gen_t *g, lg_request_t *r, int64_t now_s);
/* Append the request as HTTP/1.1 bytes (keep-alive, Content-Length) for
 * the Host header value host. */
void lg_request_http(const lg_request_t *r, const char *host, lg_buf_t *out);
/* The features recorded for a user id, as a JSON object text appended to
 * out ("{}" when the bundle has no user fields besides user_id). */
void lg_gen_user_features(const lg_gen_t *g, const char *user_id, lg_buf_t *out);
/* Release the request's buffers. */
void lg_request_free(lg_request_t *r);
/* Release the builder. */
void lg_gen_free(lg_gen_t *g);

#endif
