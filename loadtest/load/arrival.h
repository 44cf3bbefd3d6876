/*
 * recd-load: the arrival process of an open-loop load test. A pure
 * function of (kind, rate, seed): no clock, no network, so tests can check
 * it directly.
 *
 * Request i (i = 0, 1, ...) has an intended send time t_i seconds after the
 * start of the schedule. Constant arrivals: t_i = i / R exactly (computed
 * by multiplication, so no rounding error accumulates). Poisson arrivals:
 * t_0 = 0 and t_i = t_{i-1} + E_i / R with E_i ~ Exp(1) drawn by inversion
 * (E = -ln U, U uniform on (0,1) from recd's xoshiro256** generator): the
 * gaps of a homogeneous Poisson process of rate R.
 */
#ifndef RECD_LOAD_ARRIVAL_H
#define RECD_LOAD_ARRIVAL_H

#include <stdint.h>

#include "recd/core.h"

typedef enum { LG_ARRIVAL_POISSON = 0, LG_ARRIVAL_CONSTANT = 1 } lg_arrival_kind_t;

typedef struct lg_arrival {
    lg_arrival_kind_t kind;
    double rate; /* requests per second, > 0 */
    recd_rng_t rng;
    uint64_t i; /* index of the next time returned */
    double t;   /* last Poisson time */
} lg_arrival_t;

/* "poisson" / "constant" → kind; 0, or -1 for any other name. */
int lg_arrival_parse(const char *name, lg_arrival_kind_t *kind);
/* The name of a kind ("poisson" or "constant"). */
const char *lg_arrival_name(lg_arrival_kind_t kind);
/* Start a schedule of the given kind and rate (> 0); seed only matters for
 * Poisson. */
void lg_arrival_init(lg_arrival_t *a, lg_arrival_kind_t kind, double rate, uint64_t seed);
/* Intended time of the next request, seconds from the schedule's start
 * (the first call returns 0). Non-decreasing. */
double lg_arrival_next(lg_arrival_t *a);

#endif
