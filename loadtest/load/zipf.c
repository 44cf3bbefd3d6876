/* recd-load: Zipf sampling by inversion (see zipf.h). */
#include "zipf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int lg_zipf_init(lg_zipf_t *z, size_t n, double s)
{
    memset(z, 0, sizeof *z);
    if (n == 0 || !(s >= 0.0) || s > 100.0)
        return -1;
    z->cum = malloc(n * sizeof *z->cum);
    if (!z->cum)
        return -1;
    z->n = n;
    z->s = s;
    /* Kahan summation keeps the tail's many small terms from being lost. */
    double sum = 0.0, comp = 0.0;
    for (size_t k = 0; k < n; k++) {
        double w = s == 0.0 ? 1.0 : pow((double)(k + 1), -s);
        double y = w - comp;
        double t = sum + y;
        comp = (t - sum) - y;
        sum = t;
        z->cum[k] = sum;
    }
    return 0;
}

size_t lg_zipf_sample(const lg_zipf_t *z, recd_rng_t *r)
{
    double u = recd_rng_unit(r) * z->cum[z->n - 1];
    /* first k with cum[k] > u */
    size_t lo = 0, hi = z->n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->cum[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

double lg_zipf_pmf(const lg_zipf_t *z, size_t k)
{
    if (k >= z->n)
        return 0.0;
    double w = z->s == 0.0 ? 1.0 : pow((double)(k + 1), -z->s);
    return w / z->cum[z->n - 1];
}

void lg_zipf_free(lg_zipf_t *z)
{
    free(z->cum);
    memset(z, 0, sizeof *z);
}
