/* Ranker examples: labels from a dataset's events, and their hashed
 * features in the layout of include/recd/trank.h. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "recd/model.h"

#define CLICK_WINDOW_S 3600

int tf_has_watch(const recd_dataset_t *ds)
{
    for (size_t i = 0; i < ds->nevents; i++)
        if (ds->events[i].type == RECD_EV_WATCH && ds->events[i].value > 0)
            return 1;
    return 0;
}

static int is_pos(const recd_event_t *e)
{
    return e->type == RECD_EV_CLICK || e->type == RECD_EV_WATCH || e->type == RECD_EV_PURCHASE;
}

/* qsort_r order of positive event indices: (user, item, ts, index); ctx
 * is the event array */
static int pos_cmp(const void *a, const void *b, void *ctx)
{
    const recd_event_t *ev = ctx;
    const recd_event_t *x = &ev[*(const uint32_t *)a], *y = &ev[*(const uint32_t *)b];
    if (x->user != y->user)
        return x->user < y->user ? -1 : 1;
    if (x->item != y->item)
        return x->item < y->item ? -1 : 1;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return *(const uint32_t *)a < *(const uint32_t *)b ? -1 : 1;
}

int tf_rex_build(const recd_dataset_t *ds, int watch_weight, size_t neg_per_pos, uint64_t seed,
                 tf_rex_t **out, size_t *n_out, recd_err_t *err)
{
    size_t nimp = 0, npos = 0;
    for (size_t i = 0; i < ds->nevents; i++) {
        nimp += ds->events[i].type == RECD_EV_IMPRESSION;
        npos += is_pos(&ds->events[i]);
    }
    tf_rex_t *ex = NULL;
    size_t n = 0;
    if (!ds->implicit) {
        ex = malloc((ds->nevents ? ds->nevents : 1) * sizeof *ex);
        if (!ex)
            goto oom;
        for (size_t i = 0; i < ds->nevents; i++) {
            const recd_event_t *e = &ds->events[i];
            if (e->type != RECD_EV_RATING)
                continue;
            ex[n++] = (tf_rex_t){e->user, e->item, (uint32_t)i, e->ts,
                                 e->value >= 4.0f ? 1.0f : 0.0f, 1.0f};
        }
    } else if (nimp > 0) {
        uint32_t *pos = malloc((npos ? npos : 1) * sizeof *pos);
        ex = malloc(nimp * sizeof *ex);
        if (!pos || !ex) {
            free(pos);
            goto oom;
        }
        size_t k = 0;
        for (size_t i = 0; i < ds->nevents; i++)
            if (is_pos(&ds->events[i]))
                pos[k++] = (uint32_t)i;
        qsort_r(pos, k, sizeof *pos, pos_cmp, ds->events);
        for (size_t i = 0; i < ds->nevents; i++) {
            const recd_event_t *e = &ds->events[i];
            if (e->type != RECD_EV_IMPRESSION)
                continue;
            /* first positive of (user, item) at or after the impression */
            size_t lo = 0, hi = k;
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                const recd_event_t *p = &ds->events[pos[mid]];
                int less = p->user < e->user ||
                           (p->user == e->user &&
                            (p->item < e->item || (p->item == e->item && p->ts < e->ts)));
                if (less)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            float label = 0, weight = 1;
            int watched = 0;
            for (size_t j = lo; j < k; j++) {
                const recd_event_t *p = &ds->events[pos[j]];
                if (p->user != e->user || p->item != e->item || p->ts > e->ts + CLICK_WINDOW_S)
                    break;
                label = 1;
                if (watch_weight && p->type == RECD_EV_WATCH && p->value > 0 && !watched) {
                    weight = p->value;
                    watched = 1;
                }
            }
            ex[n++] = (tf_rex_t){e->user, e->item, (uint32_t)i, e->ts, label, weight};
        }
        free(pos);
    } else {
        /* only positives: each first positive of a pair, plus sampled negatives */
        ex = malloc((npos ? npos : 1) * (1 + neg_per_pos) * sizeof *ex);
        if (!ex)
            goto oom;
        recd_rng_t r;
        recd_rng_seed_stream(&r, seed, 23);
        size_t N = ds->items.nrows;
        for (size_t i = 0; i < ds->nevents; i++) {
            const recd_event_t *e = &ds->events[i];
            if (!is_pos(e))
                continue;
            float w = watch_weight && e->type == RECD_EV_WATCH && e->value > 0 ? e->value : 1;
            ex[n++] = (tf_rex_t){e->user, e->item, (uint32_t)i, e->ts, 1.0f, w};
            for (size_t j = 0; j < neg_per_pos && N > 1; j++) {
                uint32_t it = recd_rng_below(&r, (uint32_t)N);
                if (it == e->item)
                    it = (it + 1) % (uint32_t)N;
                ex[n++] = (tf_rex_t){e->user, it, (uint32_t)i, e->ts, 0.0f, 1.0f};
            }
        }
    }
    *out = ex;
    *n_out = n;
    return 0;
oom:
    free(ex);
    return recd_err_set(err, RECD_ENOMEM, "out of memory (ranker examples)");
}

size_t tf_crosses(const tf_schema_t *s, tf_cross_t *out, size_t cap)
{
    int g = tf_field_index(s, "genres");
    size_t n = 0;
    if (g < 0)
        return 0;
    for (size_t i = 0; i < s->nf && n < cap; i++) {
        const tf_field_t *f = &s->f[i];
        if (!f->uses_rank || f->source == TF_SRC_ITEM)
            continue;
        tf_cross_t *c = &out[n++];
        c->f1 = (int)i;
        c->f2 = g;
        /* user_id x genres is large (every user's genre taste) */
        c->buckets = (int)i == s->user_id ? f->buckets * 16 : 4096;
        if (c->buckets > (1u << 22))
            c->buckets = 1u << 22;
        snprintf(c->name, sizeof c->name, "%sx%s", f->name, s->f[g].name);
    }
    return n;
}

void tf_rdata_free(tf_rdata_t *d)
{
    free(d->off);
    free(d->ids);
    free(d->label);
    free(d->weight);
    memset(d, 0, sizeof *d);
}

/* rows of field f for example x */
static uint32_t row_of(const tf_field_t *f, const tf_rex_t *x)
{
    return f->source == TF_SRC_USER ? x->user : f->source == TF_SRC_ITEM ? x->item : x->ev;
}

int tf_rdata_build(const tf_schema_t *s, const tf_cross_t *cr, size_t ncr, const tf_rex_t *ex,
                   size_t n, tf_rdata_t *d, recd_err_t *err)
{
    memset(d, 0, sizeof *d);
    for (size_t i = 0; i < s->nf; i++)
        if (s->f[i].uses_rank)
            d->field_of[d->nfields++] = (int)i;
    d->ncrosses = ncr;
    size_t slots = d->nfields + ncr;
    /* count values */
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < d->nfields; j++) {
            const tf_field_t *f = &s->f[d->field_of[j]];
            uint32_t r = row_of(f, &ex[i]);
            total += f->v.off[r + 1] - f->v.off[r];
        }
        for (size_t c = 0; c < ncr; c++) {
            const tf_field_t *a = &s->f[cr[c].f1], *b = &s->f[cr[c].f2];
            uint32_t ra = row_of(a, &ex[i]), rb = row_of(b, &ex[i]);
            total += (size_t)(a->v.off[ra + 1] - a->v.off[ra]) * (b->v.off[rb + 1] - b->v.off[rb]);
        }
    }
    d->n = n;
    d->off = malloc((n * slots + 1) * sizeof *d->off);
    d->ids = malloc((total ? total : 1) * sizeof *d->ids);
    d->label = malloc((n ? n : 1) * sizeof *d->label);
    d->weight = malloc((n ? n : 1) * sizeof *d->weight);
    if (!d->off || !d->ids || !d->label || !d->weight) {
        tf_rdata_free(d);
        return recd_err_set(err, RECD_ENOMEM, "out of memory (ranker data, %zu values)", total);
    }
    size_t k = 0;
    char buf[1024];
    for (size_t i = 0; i < n; i++) {
        d->label[i] = ex[i].label;
        d->weight[i] = ex[i].weight;
        for (size_t j = 0; j < d->nfields; j++) {
            const tf_field_t *f = &s->f[d->field_of[j]];
            uint32_t r = row_of(f, &ex[i]);
            d->off[i * slots + j] = k;
            for (uint32_t v = f->v.off[r]; v < f->v.off[r + 1]; v++)
                d->ids[k++] = f->v.ids[v];
        }
        for (size_t c = 0; c < ncr; c++) {
            const tf_field_t *a = &s->f[cr[c].f1], *b = &s->f[cr[c].f2];
            uint32_t ra = row_of(a, &ex[i]), rb = row_of(b, &ex[i]);
            d->off[i * slots + d->nfields + c] = k;
            size_t nl = strlen(cr[c].name);
            for (uint32_t va = a->v.off[ra]; va < a->v.off[ra + 1]; va++)
                for (uint32_t vb = b->v.off[rb]; vb < b->v.off[rb + 1]; vb++) {
                    int len = snprintf(buf, sizeof buf, "%s\x1f%s", a->v.txt[va], b->v.txt[vb]);
                    if (len < 0 || (size_t)len >= sizeof buf)
                        len = (int)sizeof buf - 1;
                    d->ids[k++] = (uint32_t)recd_feature_bucket(cr[c].name, nl, buf, (size_t)len,
                                                                cr[c].buckets);
                }
        }
    }
    d->off[n * slots] = k;
    return 0;
}
