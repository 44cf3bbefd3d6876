/* The evaluation split and the metrics. The split is a pure function of the
 * dataset and the options, so `fit` and `eval` (and any later run) cut the
 * same way. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- split ------------------------------------------------------------------------- */

/* Item ids compare as numbers when both are all digits (MovieLens), else
 * as bytes: "ties broken by item id". */
static int id_cmp(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    int da = la > 0 && strspn(a, "0123456789") == la, db = lb > 0 && strspn(b, "0123456789") == lb;
    if (da && db) {
        while (la > 1 && *a == '0')
            a++, la--;
        while (lb > 1 && *b == '0')
            b++, lb--;
        if (la != lb)
            return la < lb ? -1 : 1;
    }
    return strcmp(a, b);
}

/* qsort_r order of interactions; ctx is the dataset */
static int inter_cmp(const void *pa, const void *pb, void *ctx)
{
    const tf_inter_t *a = pa, *b = pb;
    if (a->user != b->user)
        return a->user < b->user ? -1 : 1;
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    const recd_table_t *I = &((const recd_dataset_t *)ctx)->items;
    int c = id_cmp(I->cells[(size_t)a->item * I->ncols], I->cells[(size_t)b->item * I->ncols]);
    if (c)
        return c;
    return a->ev < b->ev ? -1 : a->ev > b->ev;
}

static int is_positive(const recd_dataset_t *ds, const recd_event_t *e)
{
    if (!ds->implicit)
        return e->type == RECD_EV_RATING;
    return e->type == RECD_EV_CLICK || e->type == RECD_EV_WATCH || e->type == RECD_EV_PURCHASE ||
           (e->type == RECD_EV_RATING && e->value >= 4.0f);
}

static uint64_t mix(uint64_t x)
{
    return recd_splitmix64(&x);
}

int tf_split_build(tf_split_t *sp, const recd_dataset_t *ds, const tf_split_opts_t *o,
                   recd_err_t *err)
{
    memset(sp, 0, sizeof *sp);
    sp->o = *o;
    size_t U = ds->users.nrows, N = ds->items.nrows;
    sp->n_users = U;
    sp->n_items = N;
    sp->inter = malloc((ds->nevents ? ds->nevents : 1) * sizeof *sp->inter);
    sp->uoff = calloc(U + 1, sizeof *sp->uoff);
    sp->test_at = malloc((U ? U : 1) * sizeof *sp->test_at);
    sp->valid_at = malloc((U ? U : 1) * sizeof *sp->valid_at);
    sp->cold = calloc(N ? N : 1, 1);
    sp->train_count = calloc(N ? N : 1, sizeof *sp->train_count);
    if (!sp->inter || !sp->uoff || !sp->test_at || !sp->valid_at || !sp->cold ||
        !sp->train_count)
        goto oom;
    /* interactions: first positive of each (user, item) pair */
    size_t n = 0;
    for (size_t i = 0; i < ds->nevents; i++) {
        const recd_event_t *e = &ds->events[i];
        if (is_positive(ds, e))
            sp->inter[n++] = (tf_inter_t){e->user, e->item, e->ts, (uint32_t)i};
    }
    qsort_r(sp->inter, n, sizeof *sp->inter, inter_cmp, (void *)ds);
    /* drop repeats of a (user, item) pair: a per-user item mark */
    uint32_t *seen = malloc((N ? N : 1) * sizeof *seen);
    if (!seen)
        goto oom;
    for (size_t i = 0; i < N; i++)
        seen[i] = TF_NONE;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        tf_inter_t *x = &sp->inter[i];
        if (seen[x->item] == x->user)
            continue;
        seen[x->item] = x->user;
        sp->inter[m++] = *x;
    }
    free(seen);
    sp->ninter = m;
    sp->role = calloc(m ? m : 1, 1);
    if (!sp->role)
        goto oom;
    for (size_t i = 0; i < m; i++)
        sp->uoff[sp->inter[i].user + 1]++;
    for (size_t u = 0; u < U; u++)
        sp->uoff[u + 1] += sp->uoff[u];
    sp->time_cut = INT64_MAX;
    if (o->holdout && o->time_frac > 0 && ds->nevents) {
        size_t k = (size_t)floor((1.0 - o->time_frac) * (double)ds->nevents);
        if (k >= ds->nevents)
            k = ds->nevents - 1;
        sp->time_cut = ds->events[k].ts; /* events are sorted by time */
    }
    for (size_t u = 0; u < U; u++) {
        sp->test_at[u] = sp->valid_at[u] = TF_NONE;
        uint32_t a = sp->uoff[u], b = sp->uoff[u + 1];
        if (o->holdout == TF_HOLDOUT_TIME) {
            /* by time: everything from the cut on; the first is the LOO item */
            for (uint32_t i = a; i < b; i++)
                if (sp->inter[i].ts >= sp->time_cut) {
                    sp->role[i] = TF_TEST;
                    if (sp->test_at[u] == TF_NONE)
                        sp->test_at[u] = i;
                }
            continue;
        }
        if (!o->holdout || b == a)
            continue;
        sp->test_at[u] = b - 1;
        sp->role[b - 1] = TF_TEST;
        if (b - a >= 3) {
            sp->valid_at[u] = b - 2;
            sp->role[b - 2] = TF_VALID;
        }
    }
    if (o->holdout == 1 && o->cold_frac > 0) {
        /* cold items: a hash of (seed, id) picks them; never an item that is
         * some user's test or validation item, and only items that occur */
        uint8_t *protect = calloc(N ? N : 1, 1);
        uint8_t *occurs = calloc(N ? N : 1, 1);
        if (!protect || !occurs) {
            free(protect);
            free(occurs);
            goto oom;
        }
        for (size_t i = 0; i < m; i++) {
            occurs[sp->inter[i].item] = 1;
            if (sp->role[i] != TF_TRAIN)
                protect[sp->inter[i].item] = 1;
        }
        const recd_table_t *I = &ds->items;
        for (size_t i = 0; i < N; i++) {
            const char *id = I->cells[i * I->ncols];
            uint64_t h = mix(recd_fnv1a64(RECD_FNV1A64_INIT, id, strlen(id)) ^ mix(o->seed));
            if (occurs[i] && !protect[i] && (double)(h >> 11) * 0x1.0p-53 < o->cold_frac) {
                sp->cold[i] = 1;
                sp->ncold++;
            }
        }
        free(protect);
        free(occurs);
        for (size_t i = 0; i < m; i++)
            if (sp->cold[sp->inter[i].item])
                sp->role[i] = TF_COLD;
    }
    for (size_t i = 0; i < m; i++)
        if (sp->role[i] == TF_TRAIN)
            sp->train_count[sp->inter[i].item]++;
    return 0;
oom:
    tf_split_free(sp);
    return recd_err_set(err, RECD_ENOMEM, "out of memory (split)");
}

void tf_split_free(tf_split_t *sp)
{
    free(sp->inter);
    free(sp->uoff);
    free(sp->role);
    free(sp->test_at);
    free(sp->valid_at);
    free(sp->cold);
    free(sp->train_count);
    memset(sp, 0, sizeof *sp);
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int sorted_has(const uint32_t *v, size_t n, uint32_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && v[lo] == x;
}

size_t tf_loo_negatives(const tf_split_t *sp, const recd_dataset_t *ds, uint32_t u, size_t n,
                        uint32_t *out)
{
    uint32_t a = sp->uoff[u], b = sp->uoff[u + 1];
    size_t nu = b - a;
    size_t N = sp->n_items;
    if (N <= nu)
        return 0;
    if (n > N - nu)
        n = N - nu;
    uint32_t *mine = malloc((nu ? nu : 1) * sizeof *mine);
    if (!mine)
        return 0;
    for (size_t i = 0; i < nu; i++)
        mine[i] = sp->inter[a + i].item;
    qsort(mine, nu, sizeof *mine, u32_cmp);
    recd_rng_t r;
    recd_rng_seed_stream(&r, sp->o.seed, 0x100000000ULL + u);
    size_t k = 0;
    while (k < n) {
        uint32_t x = recd_rng_below(&r, (uint32_t)N);
        if (sorted_has(mine, nu, x))
            continue;
        int dup = 0;
        for (size_t j = 0; j < k && !dup; j++)
            dup = out[j] == x;
        if (!dup)
            out[k++] = x;
    }
    free(mine);
    (void)ds;
    return k;
}

size_t tf_history(const tf_split_t *sp, uint32_t u, uint32_t at, size_t max_len, int include_valid,
                  uint32_t *out)
{
    uint32_t a = sp->uoff[u];
    size_t k = 0;
    /* walk back from `at`, then reverse: the most recent max_len */
    for (uint32_t i = at; i > a && k < max_len; i--) {
        uint8_t r = sp->role[i - 1];
        if (r == TF_TRAIN || (include_valid && r == TF_VALID))
            out[k++] = sp->inter[i - 1].item;
    }
    for (size_t i = 0; i < k / 2; i++) {
        uint32_t t = out[i];
        out[i] = out[k - 1 - i];
        out[k - 1 - i] = t;
    }
    return k;
}

/* ---- metrics ---------------------------------------------------------------------- */

typedef struct sy {
    float s, y;
} sy_t;

static int sy_cmp(const void *a, const void *b)
{
    float x = ((const sy_t *)a)->s, y = ((const sy_t *)b)->s;
    return x < y ? -1 : x > y;
}

double tf_auc(const float *p, const float *y, const uint8_t *mask, size_t n)
{
    size_t m = 0;
    sy_t *v = malloc((n ? n : 1) * sizeof *v);
    if (!v)
        return NAN;
    for (size_t i = 0; i < n; i++)
        if (!mask || mask[i])
            v[m++] = (sy_t){p[i], y[i] >= 0.5f ? 1.0f : 0.0f};
    qsort(v, m, sizeof *v, sy_cmp);
    /* Mann-Whitney U with average ranks for ties */
    double npos = 0, rank_sum = 0;
    for (size_t i = 0; i < m;) {
        size_t j = i;
        while (j < m && v[j].s == v[i].s)
            j++;
        double avg = (double)(i + j + 1) / 2.0; /* 1-based average rank */
        for (size_t k = i; k < j; k++)
            if (v[k].y > 0) {
                npos += 1;
                rank_sum += avg;
            }
        i = j;
    }
    double nneg = (double)m - npos;
    free(v);
    if (npos == 0 || nneg == 0)
        return NAN;
    return (rank_sum - npos * (npos + 1) / 2.0) / (npos * nneg);
}

double tf_logloss(const float *p, const float *y, const uint8_t *mask, size_t n)
{
    double s = 0;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (mask && !mask[i])
            continue;
        double q = p[i] < 1e-7f ? 1e-7 : p[i] > 1 - 1e-7f ? 1 - 1e-7 : p[i];
        s -= y[i] * log(q) + (1 - y[i]) * log(1 - q);
        m++;
    }
    return m ? s / (double)m : NAN;
}

double tf_rank_of(float s0, const float *s, size_t n)
{
    double r = 0;
    for (size_t i = 0; i < n; i++)
        r += s[i] > s0 ? 1.0 : s[i] == s0 ? 0.5 : 0.0;
    return r;
}

void tf_progress(int verbose, const char *what, int epoch, int max_epochs, double train_loss,
                 const char *valid_name, double valid, double ex_per_s, double eta_s)
{
    if (!verbose)
        return;
    fprintf(stderr, "  %-9s epoch %2d/%-2d  loss %.4f  %s %.4f  %8.0f ex/s  ETA %4.0f s\n", what,
            epoch, max_epochs, train_loss, valid_name, valid, ex_per_s, eta_s);
}
