/*
 * Wide & Deep: Cheng et al., "Wide & Deep Learning for Recommender
 * Systems" (DLRS 2016). The wide part is first-order weights plus hashed
 * cross-product features; the deep part is the shared MLP (rank_int.h):
 *   logit = bias + sum_f w_f + sum_crosses wide + deep
 * A cross (f1, f2) is hashed as a field named "<f1>x<f2>" whose value is
 * t1 "\x1f" t2, and averages its weights over every value pair (BUNDLE.md).
 *
 * FNV-1a runs byte by byte, so the hash state after the constant prefix
 * "<f1>x<f2>\x1f" is computed at load, and - when f1 is a user/context
 * field - the state after t1 "\x1f" once per request; a cross of two
 * non-item fields is a constant of the request.
 */
#include <stdlib.h>
#include <string.h>

#include "recd/nn.h"
#include "rank_int.h"

typedef struct wd_cross {
    size_t f1, f2;    /* feature indices */
    int item1, item2; /* item-source */
    char *name;       /* "<f1>x<f2>" (owned) */
    const float *w;   /* [buckets] rank.wide.<f1>x<f2> */
    uint64_t buckets;
    uint64_t h0; /* FNV-1a state after "<f1>x<f2>\x1f" */
} wd_cross_t;

typedef struct wd_net {
    rank_net_t net;
    wd_cross_t *cross;
    size_t ncross;
} wd_net_t;

static void wd_free(void *p)
{
    wd_net_t *wd = p;
    if (!wd)
        return;
    rank_net_clear(&wd->net);
    for (size_t i = 0; i < wd->ncross; i++)
        free(wd->cross[i].name);
    free(wd->cross);
    free(wd);
}

static int load_crosses(wd_net_t *wd, const recd_bundle_t *b, json_t *r, recd_err_t *err)
{
    json_t *xs = json_object_get(r, "crosses");
    if (xs && !json_is_array(xs))
        return recd_err_set(err, RECD_EINVAL, "manifest.json: ranker.crosses: expected an array");
    size_t nx = json_array_size(xs);
    wd->cross = calloc(nx ? nx : 1, sizeof *wd->cross);
    if (!wd->cross)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    for (size_t i = 0; i < nx; i++) {
        json_t *x = json_array_get(xs, i), *fs = json_object_get(x, "fields");
        json_t *tn = json_object_get(x, "tensor"), *bk = json_object_get(x, "buckets");
        wd_cross_t *c = &wd->cross[i];
        wd->ncross = i + 1;
        const char *n1 = json_string_value(json_array_get(fs, 0));
        const char *n2 = json_string_value(json_array_get(fs, 1));
        int i1 = n1 ? rank_find_feature(b, n1) : -1, i2 = n2 ? rank_find_feature(b, n2) : -1;
        if (!json_is_array(fs) || json_array_size(fs) != 2 || i1 < 0 || i2 < 0)
            return recd_err_set(
                err, RECD_EINVAL,
                "manifest.json: ranker.crosses[%zu].fields: expected two known fields", i);
        if (!json_is_integer(bk) || json_integer_value(bk) < 1)
            return recd_err_set(err, RECD_EINVAL,
                                "manifest.json: ranker.crosses[%zu].buckets: expected >= 1", i);
        c->buckets = (uint64_t)json_integer_value(bk);
        const recd_tensor_t *t =
            json_is_string(tn) ? recd_bundle_tensor(b, json_string_value(tn)) : NULL;
        if (!t || t->count != c->buckets || t->shape[0] != (int64_t)c->buckets)
            return recd_err_set(err, RECD_EINVAL,
                                "manifest.json: ranker.crosses[%zu].tensor: missing or not [%llu]",
                                i, (unsigned long long)c->buckets);
        c->w = t->data;
        c->f1 = (size_t)i1;
        c->f2 = (size_t)i2;
        c->item1 = b->features[i1].source == RECD_SRC_ITEM;
        c->item2 = b->features[i2].source == RECD_SRC_ITEM;
        size_t l1 = strlen(n1), l2 = strlen(n2);
        c->name = malloc(l1 + l2 + 2);
        if (!c->name)
            return recd_err_set(err, RECD_ENOMEM, "out of memory");
        memcpy(c->name, n1, l1);
        c->name[l1] = 'x';
        memcpy(c->name + l1 + 1, n2, l2 + 1);
        c->h0 = recd_fnv1a64(recd_fnv1a64(RECD_FNV1A64_INIT, c->name, l1 + l2 + 1), "\x1f", 1);
    }
    return 0;
}

static void *wd_load(const recd_bundle_t *b, recd_err_t *err)
{
    wd_net_t *wd = calloc(1, sizeof *wd);
    if (!wd) {
        recd_err_set(err, RECD_ENOMEM, "out of memory");
        return NULL;
    }
    json_t *r = json_object_get((json_t *)b->manifest, "ranker");
    if (rank_net_init(&wd->net, b, r, err) != 0 || load_crosses(wd, b, r, err) != 0) {
        wd_free(wd);
        return NULL;
    }
    return wd;
}

static size_t text_len(const recd_field_buckets_t *v, size_t j)
{
    return v->tlen ? v->tlen[j] : strlen(v->t[j]);
}

/* FNV states after prefix t1 "\x1f" for every value of v1. */
static void prefix_states(const wd_cross_t *x, const recd_field_buckets_t *v1, uint64_t *st)
{
    for (size_t j = 0; j < v1->n; j++)
        st[j] = recd_fnv1a64(recd_fnv1a64(x->h0, v1->t[j], text_len(v1, j)), "\x1f", 1);
}

/* Mean weight over the value pairs, given the prefix states of v1. */
static float cross_mean(const wd_cross_t *x, const uint64_t *st, size_t n1,
                        const recd_field_buckets_t *v2)
{
    float s = 0.0f;
    for (size_t a = 0; a < n1; a++)
        for (size_t j = 0; j < v2->n; j++)
            s += x->w[recd_fnv1a64(st[a], v2->t[j], text_len(v2, j)) % x->buckets];
    return s / (float)(n1 * v2->n);
}

static int need_texts(const wd_cross_t *x, const recd_bundle_t *b, size_t f,
                      const recd_field_buckets_t *v, recd_err_t *err)
{
    if (v->n == 0 || !v->t)
        return recd_err_set(err, RECD_EINVAL, "ranker: cross %s: field %s has no value texts",
                            x->name, b->features[f].name);
    return 0;
}

static int wd_logits(const void *p, const recd_bundle_t *b, const recd_overlay_t *o,
                     const recd_field_buckets_t *fields, const recd_candidate_t *c, size_t n,
                     recd_arena_t *a, float *logits, recd_rank_explain_t *explain, recd_err_t *err)
{
    const wd_net_t *wd = p;
    const rank_net_t *net = &wd->net;
    rank_pass_t pass;
    int rc = rank_net_forward(net, b, o, fields, c, n, a, &pass, err);
    if (rc != 0)
        return rc;
    float *wide = recd_arena_alloc(a, (n ? n : 1) * sizeof(float));
    if (!wide)
        return recd_err_set(err, RECD_ENOMEM, "out of memory (ranker scratch)");
    memset(wide, 0, n * sizeof *wide);

    for (size_t xi = 0; xi < wd->ncross; xi++) {
        const wd_cross_t *x = &wd->cross[xi];
        const recd_field_buckets_t *u1 = x->item1 ? NULL : &fields[x->f1];
        const recd_field_buckets_t *u2 = x->item2 ? NULL : &fields[x->f2];
        uint64_t *st = NULL;
        if (u1) { /* once per request */
            if ((rc = need_texts(x, b, x->f1, u1, err)) != 0)
                return rc;
            st = recd_arena_alloc(a, u1->n * sizeof *st);
            if (!st)
                return recd_err_set(err, RECD_ENOMEM, "out of memory (ranker scratch)");
            prefix_states(x, u1, st);
        }
        if (u2 && (rc = need_texts(x, b, x->f2, u2, err)) != 0)
            return rc;
        if (u1 && u2) { /* no item field: the same for every candidate */
            float v = cross_mean(x, st, u1->n, u2);
            for (size_t i = 0; i < n; i++)
                wide[i] += v;
            continue;
        }
        uint64_t st_local[16];
        for (size_t i = 0; i < n; i++) {
            recd_field_buckets_t v1, v2;
            if (!u1) {
                if ((rc = rank_item_values(b, o, &c[i], x->f1, &v1, err)) != 0 ||
                    (rc = need_texts(x, b, x->f1, &v1, err)) != 0)
                    return rc;
            } else {
                v1 = *u1;
            }
            if (!u2) {
                if ((rc = rank_item_values(b, o, &c[i], x->f2, &v2, err)) != 0 ||
                    (rc = need_texts(x, b, x->f2, &v2, err)) != 0)
                    return rc;
            } else {
                v2 = *u2;
            }
            const uint64_t *s1 = st;
            if (!u1) {
                uint64_t *buf = st_local;
                if (v1.n > sizeof st_local / sizeof st_local[0] &&
                    !(buf = recd_arena_alloc(a, v1.n * sizeof *buf)))
                    return recd_err_set(err, RECD_ENOMEM, "out of memory (ranker scratch)");
                prefix_states(x, &v1, buf);
                s1 = buf;
            }
            wide[i] += cross_mean(x, s1, v1.n, &v2);
        }
    }

    for (size_t i = 0; i < n; i++) {
        logits[i] = net->bias + pass.lin[i] + wide[i] + pass.deep[i];
        if (explain)
            explain[i] = (recd_rank_explain_t){.bias = net->bias,
                                               .first_order = pass.lin[i],
                                               .second_order = wide[i],
                                               .deep = pass.deep[i],
                                               .logit = logits[i]};
    }
    return 0;
}

const recd_rank_ops_t recd_rank_wide_deep_ops = {
    .type = "wide_deep",
    .load = wd_load,
    .logits = wd_logits,
    .free = wd_free,
};
