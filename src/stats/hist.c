/* Log-linear latency histogram (the HdrHistogram idea, reduced to fixed
 * 2^5 sub-buckets per power of two). */
#include "recd/stats.h"

#include <math.h>

const double recd_prom_bounds_s[RECD_PROM_NBUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
};

/* The same bounds in microseconds, so the hot path compares integers. */
static const uint64_t prom_bounds_us[RECD_PROM_NBUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000,
};

unsigned recd_hist_bucket(uint64_t v)
{
    if (v < RECD_HIST_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    if (msb >= RECD_HIST_MAX_BITS)
        return RECD_HIST_NBUCKETS - 1;
    unsigned shift = msb - RECD_HIST_SUB_BITS;
    unsigned sub = (unsigned)(v >> shift) - RECD_HIST_SUB;
    return (shift + 1) * RECD_HIST_SUB + sub;
}

uint64_t recd_hist_bucket_upper(unsigned b)
{
    if (b < RECD_HIST_SUB)
        return b;
    unsigned shift = b / RECD_HIST_SUB - 1;
    uint64_t lower = (uint64_t)(RECD_HIST_SUB + b % RECD_HIST_SUB) << shift;
    return lower + ((uint64_t)1 << shift) - 1;
}

void recd_hist_record(recd_hist_t *h, uint64_t v)
{
    recd_stats_add(&h->buckets[recd_hist_bucket(v)], 1);
    for (unsigned i = 0; i < RECD_PROM_NBUCKETS; i++) {
        if (v <= prom_bounds_us[i]) {
            recd_stats_add(&h->prom[i], 1);
            break;
        }
    }
    recd_stats_add(&h->count, 1);
    recd_stats_add(&h->sum_us, v);
    if (v > recd_stats_get(&h->max_us))
        atomic_store_explicit(&h->max_us, v, memory_order_relaxed);
}

void recd_hist_merge(recd_hist_snap_t *s, const recd_hist_t *h)
{
    for (unsigned i = 0; i < RECD_HIST_NBUCKETS; i++)
        s->buckets[i] += recd_stats_get(&h->buckets[i]);
    for (unsigned i = 0; i < RECD_PROM_NBUCKETS; i++)
        s->prom[i] += recd_stats_get(&h->prom[i]);
    s->count += recd_stats_get(&h->count);
    s->sum_us += recd_stats_get(&h->sum_us);
    uint64_t m = recd_stats_get(&h->max_us);
    if (m > s->max_us)
        s->max_us = m;
}

uint64_t recd_hist_quantile(const recd_hist_snap_t *s, double q)
{
    /* Readers run concurrently with writers, so count may disagree with
     * the bucket sum by a few; use the bucket sum. */
    uint64_t total = 0;
    for (unsigned i = 0; i < RECD_HIST_NBUCKETS; i++)
        total += s->buckets[i];
    if (total == 0)
        return 0;
    if (q < 0)
        q = 0;
    if (q > 1)
        q = 1;
    uint64_t rank = (uint64_t)ceil(q * (double)total);
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < RECD_HIST_NBUCKETS; i++) {
        seen += s->buckets[i];
        if (seen >= rank) {
            uint64_t up = recd_hist_bucket_upper(i);
            return (s->max_us && up > s->max_us) ? s->max_us : up;
        }
    }
    return s->max_us;
}
