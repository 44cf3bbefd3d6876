/* The shared pseudo-random generator: xoshiro256** (Blackman & Vigna) with
 * its state filled by splitmix64 (Steele, Lea & Flood). The per-draw
 * functions are static inline in recd/core.h; the seeding and the normal
 * deviates live here. */
#include "recd/core.h"

#include <math.h>

uint64_t recd_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void recd_rng_seed(recd_rng_t *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = recd_splitmix64(&seed);
}

void recd_rng_seed_stream(recd_rng_t *r, uint64_t seed, uint64_t stream)
{
    /* an odd multiplier spreads small stream numbers over all 64 bits */
    recd_rng_seed(r, seed ^ (stream * 0xd1342543de82ef95ULL));
}

/* Marsaglia & Bray (1964), "A convenient method for generating normal
 * variables": a point uniform in the unit disc gives a normal deviate
 * without trigonometry. The second deviate of the pair is dropped. */
double recd_rng_gauss(recd_rng_t *r)
{
    for (;;) {
        double a = 2.0 * recd_rng_unit(r) - 1.0, b = 2.0 * recd_rng_unit(r) - 1.0;
        double s = a * a + b * b;
        if (s > 0.0 && s < 1.0)
            return a * sqrt(-2.0 * log(s) / s);
    }
}
