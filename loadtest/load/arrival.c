/* recd-load: arrival processes (see arrival.h). */
#include "arrival.h"

#include <math.h>
#include <string.h>

int lg_arrival_parse(const char *name, lg_arrival_kind_t *kind)
{
    if (strcmp(name, "poisson") == 0)
        *kind = LG_ARRIVAL_POISSON;
    else if (strcmp(name, "constant") == 0)
        *kind = LG_ARRIVAL_CONSTANT;
    else
        return -1;
    return 0;
}

const char *lg_arrival_name(lg_arrival_kind_t kind)
{
    return kind == LG_ARRIVAL_CONSTANT ? "constant" : "poisson";
}

void lg_arrival_init(lg_arrival_t *a, lg_arrival_kind_t kind, double rate, uint64_t seed)
{
    memset(a, 0, sizeof *a);
    a->kind = kind;
    a->rate = rate;
    /* stream 1 of the run's seed: the request builder uses other streams */
    recd_rng_seed_stream(&a->rng, seed, 1);
}

double lg_arrival_next(lg_arrival_t *a)
{
    uint64_t i = a->i++;
    if (a->kind == LG_ARRIVAL_CONSTANT)
        return (double)i / a->rate;
    if (i > 0)
        a->t += -log(recd_rng_open(&a->rng)) / a->rate;
    return a->t;
}
