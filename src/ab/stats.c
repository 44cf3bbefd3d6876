/*
 * A/B readout statistics: CTR, Wilson score intervals, relative lift and the
 * pooled two-proportion z-test. Formulas and edge cases in include/recd/ab.h.
 */
#include "recd/ab.h"

#include <math.h>

static uint64_t cap(uint64_t n, uint64_t k)
{
    return k > n ? n : k;
}

double recd_ab_ctr(uint64_t impressions, uint64_t clicks)
{
    if (impressions == 0)
        return NAN;
    return (double)cap(impressions, clicks) / (double)impressions;
}

void recd_ab_wilson(uint64_t impressions, uint64_t clicks, double z, double *lo, double *hi)
{
    if (impressions == 0) {
        *lo = NAN;
        *hi = NAN;
        return;
    }
    uint64_t k = cap(impressions, clicks);
    double n = (double)impressions;
    double p = (double)k / n;
    double z2 = z * z;
    double denom = 1.0 + z2 / n;
    double centre = (p + z2 / (2.0 * n)) / denom;
    double half = z / denom * sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n));
    double l = centre - half, h = centre + half;
    /* the exact interval touches 0 (resp. 1) when k == 0 (resp. k == n) */
    if (k == 0 || l < 0.0)
        l = 0.0;
    if (k == impressions || h > 1.0)
        h = 1.0;
    *lo = l;
    *hi = h;
}

void recd_ab_ztest(uint64_t n_a, uint64_t k_a, uint64_t n_b, uint64_t k_b, double *z, double *p)
{
    double zz, pp;
    if (n_a == 0 || n_b == 0) {
        zz = NAN;
        pp = NAN;
    } else {
        k_a = cap(n_a, k_a);
        k_b = cap(n_b, k_b);
        double na = (double)n_a, nb = (double)n_b;
        double pa = (double)k_a / na, pb = (double)k_b / nb;
        double pool = ((double)k_a + (double)k_b) / (na + nb);
        double var = pool * (1.0 - pool) * (1.0 / na + 1.0 / nb);
        if (!(var > 0.0) || pa == pb) {
            zz = 0.0; /* pooled rate 0 or 1, or equal rates: no evidence */
            pp = 1.0;
        } else {
            zz = (pb - pa) / sqrt(var);
            pp = erfc(fabs(zz) / sqrt(2.0));
        }
    }
    if (z)
        *z = zz;
    if (p)
        *p = pp;
}

double recd_ab_lift(uint64_t n_c, uint64_t k_c, uint64_t n_v, uint64_t k_v)
{
    double cc = recd_ab_ctr(n_c, k_c), cv = recd_ab_ctr(n_v, k_v);
    if (isnan(cc) || isnan(cv) || cc == 0.0)
        return NAN;
    return (cv - cc) / cc;
}

void recd_ab_readout(const uint64_t *impressions, const uint64_t *clicks, size_t n,
                     recd_ab_readout_t *out)
{
    for (size_t i = 0; i < n; i++) {
        recd_ab_readout_t *r = &out[i];
        r->impressions = impressions[i];
        r->clicks = clicks[i];
        r->ctr = recd_ab_ctr(impressions[i], clicks[i]);
        recd_ab_wilson(impressions[i], clicks[i], RECD_AB_Z95, &r->ci_lo, &r->ci_hi);
        r->lift = recd_ab_lift(impressions[0], clicks[0], impressions[i], clicks[i]);
        if (i == 0) {
            r->z = NAN;
            r->p_value = NAN;
        } else {
            recd_ab_ztest(impressions[0], clicks[0], impressions[i], clicks[i], &r->z, &r->p_value);
        }
    }
}
