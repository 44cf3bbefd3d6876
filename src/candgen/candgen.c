/* Candidate generation: YouTube DNN user tower + ANN + live items. */
#include "recd/candgen.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recd/ann.h"
#include "recd/nn.h"

size_t recd_candgen_scratch(const recd_bundle_t *b)
{
    size_t widest = b->embed_dim * b->ninputs;
    for (size_t i = 0; i < b->ntower; i++)
        if ((size_t)b->tower[i].out > widest)
            widest = (size_t)b->tower[i].out;
    return 2 * widest;
}

/* Mean of table rows [rows given by idx], into out[d]. */
static void mean_rows(const float *table, size_t d, const int64_t *idx, size_t n, float *out)
{
    memset(out, 0, d * sizeof *out);
    if (n == 0)
        return;
    for (size_t i = 0; i < n; i++)
        recd_nn_axpy(d, 1.0f, table + (size_t)idx[i] * d, out);
    float inv = 1.0f / (float)n;
    for (size_t j = 0; j < d; j++)
        out[j] *= inv;
}

void recd_candgen_user_vector(const recd_bundle_t *b, const recd_cand_request_t *rq, float *scratch,
                              float *u)
{
    size_t e = b->embed_dim;
    size_t widest = recd_candgen_scratch(b) / 2;
    float *x = scratch, *y = scratch + widest;
    /* the most recent hist_max_len known history items, duplicates counted */
    size_t nh = rq->nhistory, h0 = 0;
    if (nh > b->hist_max_len) {
        h0 = nh - b->hist_max_len;
        nh = b->hist_max_len;
    }
    for (size_t i = 0; i < b->ninputs; i++) {
        const recd_cand_input_t *in = &b->inputs[i];
        float *part = x + i * e;
        if (in->is_history) {
            mean_rows(b->hist_emb->data, e, rq->history + h0, nh, part);
        } else {
            const recd_field_buckets_t *fb = &rq->fields[in->feature];
            mean_rows(in->table->data, e, (const int64_t *)(const void *)fb->b, fb->n, part);
        }
    }
    for (size_t l = 0; l < b->ntower; l++) {
        const recd_layer_t *L = &b->tower[l];
        float *dst = l + 1 == b->ntower ? u : y;
        recd_nn_dense(L->w->data, L->b->data, L->in, L->out, L->relu, x, dst);
        float *t = x;
        x = y;
        y = t;
    }
}

/* ---- small sets ------------------------------------------------------------------ */

static int in_list(const int64_t *v, size_t n, int64_t x)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == x)
            return 1;
    return 0;
}

/* Sorted copy for binary search when lists are long. */
static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct banset {
    const int64_t *v;
    size_t n;
    int sorted;
} banset_t;

static void banset_init(banset_t *s, const int64_t *v, size_t n, recd_arena_t *a)
{
    s->v = v;
    s->n = n;
    s->sorted = 0;
    if (n > 16) {
        int64_t *c = recd_arena_alloc(a, n * sizeof *c);
        if (c) {
            memcpy(c, v, n * sizeof *c);
            qsort(c, n, sizeof *c, cmp_i64);
            s->v = c;
            s->sorted = 1;
        }
    }
}

static int banset_has(const banset_t *s, int64_t x)
{
    if (!s->sorted)
        return in_list(s->v, s->n, x);
    return bsearch(&x, s->v, s->n, sizeof x, cmp_i64) != NULL;
}

/* ---- merging base results with live items ------------------------------------------- */

static int cmp_cand(const void *a, const void *b)
{
    const recd_candidate_t *x = a, *y = b;
    if (x->retrieval != y->retrieval)
        return x->retrieval > y->retrieval ? -1 : 1;
    /* stable, deterministic tie-break: base before live, lower index first */
    if ((x->index >= 0) != (y->index >= 0))
        return x->index >= 0 ? -1 : 1;
    int64_t xi = x->index >= 0 ? x->index : x->slot, yi = y->index >= 0 ? y->index : y->slot;
    return xi < yi ? -1 : xi > yi;
}

/* Search the base index for `want` results past the items it must drop,
 * add scored live items, keep the best `want`. */
static int search_merge(const recd_bundle_t *b, const recd_overlay_t *o, const float *q,
                        size_t want, const banset_t *ban_base, const banset_t *ban_live,
                        int64_t skip_index, int64_t skip_slot, recd_arena_t *a,
                        recd_cand_result_t *res, recd_err_t *err)
{
    size_t extra = ban_base->n + o->n_deleted + (skip_index >= 0);
    size_t k = want + extra;
    if (k > b->n_items)
        k = b->n_items;
    size_t cap = want + o->n_added;
    recd_candidate_t *out = recd_arena_alloc(a, (cap ? cap : 1) * sizeof *out);
    float *scores = recd_arena_alloc(a, (k ? k : 1) * sizeof *scores);
    int64_t *ids = recd_arena_alloc(a, (k ? k : 1) * sizeof *ids);
    if (!out || !scores || !ids)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    uint64_t t0 = recd_time_mono_us();
    if (k && recd_ann_search(b->ann, q, 1, k, scores, ids, err) < 0)
        return RECD_ERR;
    res->ann_us = recd_time_mono_us() - t0;
    size_t n = 0;
    for (size_t i = 0; i < k && n < want; i++) {
        int64_t id = ids[i];
        if (id < 0 || (size_t)id >= b->n_items || id == skip_index ||
            recd_overlay_deleted(o, (size_t)id) || banset_has(ban_base, id))
            continue;
        out[n++] = (recd_candidate_t){id, -1, scores[i]};
    }
    if (o->n_added) {
        float *ls = recd_arena_alloc(a, o->n_added * sizeof *ls);
        if (!ls)
            return recd_err_set(err, RECD_ENOMEM, "out of memory");
        recd_nn_matvec(o->added_vecs, o->n_added, b->dim, q, ls);
        for (size_t s = 0; s < o->n_added; s++) {
            if ((int64_t)s == skip_slot || banset_has(ban_live, (int64_t)s))
                continue;
            out[n++] = (recd_candidate_t){-1, (int64_t)s, ls[s]};
        }
        qsort(out, n, sizeof *out, cmp_cand);
        if (n > want)
            n = want;
    }
    res->items = out;
    res->n = n;
    return 0;
}

int recd_candgen_retrieve(const recd_bundle_t *b, const recd_overlay_t *o,
                          const recd_cand_request_t *rq, recd_arena_t *a, recd_cand_result_t *res,
                          recd_err_t *err)
{
    memset(res, 0, sizeof *res);
    banset_t bb, bl;
    banset_init(&bb, rq->ban_base, rq->nban_base, a);
    banset_init(&bl, rq->ban_live, rq->nban_live, a);
    if (rq->nhistory == 0) {
        /* BUNDLE.md §3: most popular items, minus banned and deleted */
        res->fallback_popular = 1;
        recd_candidate_t *out =
            recd_arena_alloc(a, (rq->candidates ? rq->candidates : 1) * sizeof *out);
        if (!out)
            return recd_err_set(err, RECD_ENOMEM, "out of memory");
        size_t n = 0;
        for (size_t i = 0; i < b->n_items && n < rq->candidates; i++) {
            int64_t idx = b->by_popularity[i];
            if (recd_overlay_deleted(o, (size_t)idx) || banset_has(&bb, idx))
                continue;
            out[n++] = (recd_candidate_t){idx, -1, (float)b->popularity[idx]};
        }
        res->items = out;
        res->n = n;
        return 0;
    }
    float *scratch = recd_arena_alloc(a, recd_candgen_scratch(b) * sizeof(float));
    float *u = recd_arena_alloc(a, b->dim * sizeof(float));
    if (!scratch || !u)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    uint64_t t0 = recd_time_mono_us();
    recd_candgen_user_vector(b, rq, scratch, u);
    res->tower_us = recd_time_mono_us() - t0;
    return search_merge(b, o, u, rq->candidates, &bb, &bl, -1, -1, a, res, err);
}

int recd_candgen_nearest(const recd_bundle_t *b, const recd_overlay_t *o, const float *v, size_t k,
                         int64_t skip_index, int64_t skip_slot, recd_arena_t *a,
                         recd_cand_result_t *res, recd_err_t *err)
{
    memset(res, 0, sizeof *res);
    banset_t none = {NULL, 0, 0};
    return search_merge(b, o, v, k, &none, &none, skip_index, skip_slot, a, res, err);
}

const char *recd_candgen_id(const recd_bundle_t *b, const recd_overlay_t *o,
                            const recd_candidate_t *c)
{
    if (c->index >= 0)
        return b->cells[(size_t)c->index * b->ncols];
    return o->added_ids[c->slot];
}

recd_field_buckets_t *recd_candgen_missing_fields(const recd_bundle_t *b, recd_arena_t *a)
{
    recd_field_buckets_t *fb = recd_arena_alloc(a, (b->nfeatures + 1) * sizeof *fb);
    uint64_t *bk = recd_arena_alloc(a, (b->nfeatures + 1) * sizeof *bk);
    if (!fb || !bk)
        return NULL;
    for (size_t i = 0; i < b->nfeatures; i++) {
        const recd_feature_t *f = &b->features[i];
        bk[i] = recd_feature_bucket(f->name, strlen(f->name), "", 0, f->buckets);
        static const char *const empty_text[1] = {""};
        static const uint32_t empty_len[1] = {0};
        fb[i] = (recd_field_buckets_t){&bk[i], 1, empty_text, empty_len};
    }
    return fb;
}

int recd_candgen_warmup(const recd_bundle_t *b, size_t rounds, recd_err_t *err)
{
    recd_arena_t a;
    recd_arena_init(&a, 1 << 16);
    int rc = 0;
    recd_overlay_t *o = recd_overlay_acquire((recd_bundle_t *)b);
    for (size_t r = 0; r < rounds && rc == 0; r++) {
        recd_field_buckets_t *fb = recd_candgen_missing_fields(b, &a);
        if (!fb) {
            rc = recd_err_set(err, RECD_ENOMEM, "out of memory");
            break;
        }
        int64_t hist[4];
        for (size_t j = 0; j < 4; j++)
            hist[j] = (int64_t)((r * 7919 + j * 104729) % b->n_items);
        recd_cand_request_t rq = {hist, 4, fb, NULL, 0, NULL, 0, 100};
        recd_cand_result_t res;
        rc = recd_candgen_retrieve(b, o, &rq, &a, &res, err);
        recd_arena_reset(&a);
    }
    recd_overlay_release(o);
    recd_arena_free(&a);
    return rc;
}
