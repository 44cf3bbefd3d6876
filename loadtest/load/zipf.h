/*
 * recd-load: a Zipf sampler over ranks 0..n-1, P(k) = (k+1)^-s / H(n,s),
 * by inversion: a precomputed cumulative table and a binary search per
 * draw (exact; n up to a few million costs 8 bytes per rank).
 */
#ifndef RECD_LOAD_ZIPF_H
#define RECD_LOAD_ZIPF_H

#include <stddef.h>

#include "recd/core.h"

typedef struct lg_zipf {
    size_t n;
    double s;
    double *cum; /* cum[k] = sum_{j<=k} (j+1)^-s (unnormalised) */
} lg_zipf_t;

/* Build the table for n >= 1 ranks and exponent s >= 0 (s = 0: uniform).
 * 0, or -1 (n == 0, s out of range or out of memory). */
int lg_zipf_init(lg_zipf_t *z, size_t n, double s);
/* One rank in [0, n), most likely 0. */
size_t lg_zipf_sample(const lg_zipf_t *z, recd_rng_t *r);
/* The exact probability of rank k. */
double lg_zipf_pmf(const lg_zipf_t *z, size_t k);
/* Release the table (a zeroed or freed sampler may be freed again). */
void lg_zipf_free(lg_zipf_t *z);

#endif
