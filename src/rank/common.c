/* Shared by the ranking networks: field tables, first-order terms and the
 * split-first-layer MLP (see rank_int.h). */
#include <stdlib.h>
#include <string.h>

#include "recd/nn.h"
#include "rank_int.h"

/* Candidates per MLP block: activations of one block ([BLOCK, widest]
 * floats, two buffers) stay in L2 while the weights stream through. */
#define BLOCK 256

int rank_find_feature(const recd_bundle_t *b, const char *name)
{
    for (size_t i = 0; i < b->nfeatures; i++)
        if (strcmp(b->features[i].name, name) == 0)
            return (int)i;
    return -1;
}

static const char *jstring(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Tensor `name` with shape [rows, cols] (cols 0: 1-D of rows, or [rows, 1]). */
static const float *tensor(const recd_bundle_t *b, const char *name, int64_t rows, int64_t cols,
                           const char *where, recd_err_t *err)
{
    if (!name) {
        recd_err_set(err, RECD_EINVAL, "manifest.json: %s: missing tensor name", where);
        return NULL;
    }
    const recd_tensor_t *t = recd_bundle_tensor(b, name);
    if (!t) {
        recd_err_set(err, RECD_EINVAL, "manifest.json: %s: no tensor \"%s\"", where, name);
        return NULL;
    }
    int64_t c = cols ? cols : 1;
    if (t->shape[0] != rows || (int64_t)t->count != rows * c ||
        (cols > 1 && (t->ndim != 2 || t->shape[1] != cols))) {
        recd_err_set(err, RECD_EINVAL,
                     "manifest.json: %s: tensor \"%s\" has %zu floats, expected [%lld, %lld]",
                     where, name, t->count, (long long)rows, (long long)c);
        return NULL;
    }
    return t->data;
}

static int load_fields(rank_net_t *net, const recd_bundle_t *b, json_t *r, recd_err_t *err)
{
    json_t *fs = json_object_get(r, "fields");
    if (!json_is_array(fs) || json_array_size(fs) == 0)
        return recd_err_set(err, RECD_EINVAL,
                            "manifest.json: ranker.fields: expected a non-empty array");
    size_t nf = json_array_size(fs);
    net->fields = calloc(nf, sizeof *net->fields);
    net->ufield = calloc(nf, sizeof *net->ufield);
    net->ifield = calloc(nf, sizeof *net->ifield);
    if (!net->fields || !net->ufield || !net->ifield)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    net->nfields = nf;
    for (size_t i = 0; i < nf; i++) {
        json_t *f = json_array_get(fs, i);
        char where[48];
        snprintf(where, sizeof where, "ranker.fields[%zu]", i);
        const char *name = jstring(f, "name");
        int fi = name ? rank_find_feature(b, name) : -1;
        if (fi < 0)
            return recd_err_set(err, RECD_EINVAL, "manifest.json: %s.name: no feature \"%s\"",
                                where, name ? name : "(missing)");
        const recd_feature_t *feat = &b->features[fi];
        rank_field_t *x = &net->fields[i];
        x->name = feat->name;
        x->feature = (size_t)fi;
        x->item = feat->source == RECD_SRC_ITEM;
        x->buckets = feat->buckets;
        x->emb = tensor(b, jstring(f, "emb"), (int64_t)feat->buckets, (int64_t)net->k, where, err);
        x->lin =
            x->emb ? tensor(b, jstring(f, "lin"), (int64_t)feat->buckets, 0, where, err) : NULL;
        if (!x->lin)
            return RECD_EINVAL;
        if (x->item)
            net->ifield[net->ni++] = i;
        else
            net->ufield[net->nu++] = i;
    }
    return 0;
}

static int load_layers(rank_net_t *net, const recd_bundle_t *b, json_t *r, recd_err_t *err)
{
    json_t *mlp = json_object_get(r, "mlp");
    if (mlp && !json_is_array(mlp))
        return recd_err_set(err, RECD_EINVAL, "manifest.json: ranker.mlp: expected an array");
    size_t nm = json_array_size(mlp);
    net->nlayers = nm + 1;
    net->layers = calloc(net->nlayers, sizeof *net->layers);
    if (!net->layers)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    int64_t in = (int64_t)(net->k * net->nfields);
    net->widest = (size_t)in;
    for (size_t i = 0; i < nm; i++) {
        json_t *l = json_array_get(mlp, i);
        char where[48];
        snprintf(where, sizeof where, "ranker.mlp[%zu]", i);
        json_t *jo = json_object_get(l, "out");
        if (!json_is_integer(jo) || json_integer_value(jo) < 1 || json_integer_value(jo) > 1 << 24)
            return recd_err_set(err, RECD_EINVAL, "manifest.json: %s.out: expected 1..2^24", where);
        int64_t out = json_integer_value(jo);
        const char *act = jstring(l, "activation");
        if (act && strcmp(act, "relu") != 0 && strcmp(act, "linear") != 0 &&
            strcmp(act, "none") != 0)
            return recd_err_set(err, RECD_EINVAL, "manifest.json: %s.activation: unknown \"%s\"",
                                where, act);
        rank_layer_t *L = &net->layers[i];
        L->w = tensor(b, jstring(l, "w"), in, out, where, err);
        L->b = L->w ? tensor(b, jstring(l, "b"), out, 0, where, err) : NULL;
        if (!L->b)
            return RECD_EINVAL;
        L->in = (int)in;
        L->out = (int)out;
        L->relu = !act || strcmp(act, "relu") == 0;
        if ((size_t)out > net->widest)
            net->widest = (size_t)out;
        in = out;
    }
    json_t *o = json_object_get(r, "out");
    rank_layer_t *L = &net->layers[nm];
    L->w = tensor(b, jstring(o, "w"), in, 1, "ranker.out", err);
    L->b = L->w ? tensor(b, jstring(o, "b"), 1, 0, "ranker.out", err) : NULL;
    if (!L->b)
        return RECD_EINVAL;
    L->in = (int)in;
    L->out = 1;
    L->relu = 0;
    return 0;
}

/* Copy layer 0's K-row blocks of the user/context and of the item fields
 * into two contiguous matrices. */
static int split_first_layer(rank_net_t *net, recd_err_t *err)
{
    const rank_layer_t *L = &net->layers[0];
    size_t k = net->k, h = (size_t)L->out, blk = k * h;
    net->w0_user = malloc((net->nu ? net->nu : 1) * blk * sizeof(float));
    net->w0_item = malloc((net->ni ? net->ni : 1) * blk * sizeof(float));
    if (!net->w0_user || !net->w0_item)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    for (size_t j = 0; j < net->nu; j++)
        memcpy(net->w0_user + j * blk, L->w + net->ufield[j] * blk, blk * sizeof(float));
    for (size_t j = 0; j < net->ni; j++)
        memcpy(net->w0_item + j * blk, L->w + net->ifield[j] * blk, blk * sizeof(float));
    return 0;
}

int rank_net_init(rank_net_t *net, const recd_bundle_t *b, json_t *r, recd_err_t *err)
{
    memset(net, 0, sizeof *net);
    json_t *k = json_object_get(r, "embed_dim");
    if (!json_is_integer(k) || json_integer_value(k) < 1 || json_integer_value(k) > 65536)
        return recd_err_set(err, RECD_EINVAL, "manifest.json: ranker.embed_dim: expected 1..65536");
    net->k = (size_t)json_integer_value(k);
    int rc;
    if ((rc = load_fields(net, b, r, err)) != 0 || (rc = load_layers(net, b, r, err)) != 0 ||
        (rc = split_first_layer(net, err)) != 0)
        return rc;
    const float *bias = tensor(b, jstring(r, "bias"), 1, 0, "ranker.bias", err);
    if (!bias)
        return RECD_EINVAL;
    net->bias = bias[0];
    return 0;
}

void rank_net_clear(rank_net_t *net)
{
    free(net->fields);
    free(net->ufield);
    free(net->ifield);
    free(net->layers);
    free(net->w0_user);
    free(net->w0_item);
    memset(net, 0, sizeof *net);
}

int rank_item_values(const recd_bundle_t *b, const recd_overlay_t *o, const recd_candidate_t *c,
                     size_t f, recd_field_buckets_t *out, recd_err_t *err)
{
    if (c->index >= 0 ? (size_t)c->index >= b->n_items
                      : c->slot < 0 || !o || (size_t)c->slot >= o->n_added)
        return recd_err_set(err, RECD_EINVAL, "ranker: candidate (index %lld, slot %lld) unknown",
                            (long long)c->index, (long long)c->slot);
    recd_item_values(b, o, c->index >= 0 ? c->index : -1, c->index >= 0 ? -1 : c->slot, f, out);
    return 0;
}

/* v_f into out[K] and w_f into *w, after checking the bucket ids. */
static int field_vector(const rank_field_t *f, size_t k, const recd_field_buckets_t *v, float *out,
                        float *w, recd_err_t *err)
{
    if (v->n == 0 || !v->b)
        return recd_err_set(err, RECD_EINVAL, "ranker: field %s has no value", f->name);
    for (size_t j = 0; j < v->n; j++)
        if (v->b[j] >= f->buckets)
            return recd_err_set(err, RECD_EINVAL, "ranker: field %s: bucket %llu out of range",
                                f->name, (unsigned long long)v->b[j]);
    recd_nn_embed_mean(f->emb, k, v->b, v->n, out);
    recd_nn_embed_mean(f->lin, 1, v->b, v->n, w);
    return 0;
}

int rank_net_forward(const rank_net_t *net, const recd_bundle_t *b, const recd_overlay_t *o,
                     const recd_field_buckets_t *fields, const recd_candidate_t *c, size_t n,
                     recd_arena_t *a, rank_pass_t *p, recd_err_t *err)
{
    size_t k = net->k, nu = net->nu, ni = net->ni, ku = k * nu, ki = k * ni;
    const rank_layer_t *L0 = &net->layers[0];
    size_t h0 = (size_t)L0->out, bl = n < BLOCK ? n : BLOCK;
    p->xu = recd_arena_alloc(a, (ku ? ku : 1) * sizeof(float));
    p->xi = recd_arena_alloc(a, (n * ki > 0 ? n * ki : 1) * sizeof(float));
    p->lin = recd_arena_alloc(a, (n ? n : 1) * sizeof(float));
    p->deep = recd_arena_alloc(a, (n ? n : 1) * sizeof(float));
    float *u0 = recd_arena_alloc(a, h0 * sizeof(float));
    float *h = recd_arena_alloc(a, (bl ? bl : 1) * net->widest * sizeof(float));
    float *g = recd_arena_alloc(a, (bl ? bl : 1) * net->widest * sizeof(float));
    if (!p->xu || !p->xi || !p->lin || !p->deep || !u0 || !h || !g)
        return recd_err_set(err, RECD_ENOMEM, "out of memory (ranker scratch)");

    /* once per request: user/context field vectors, their first-order sum
     * and their share of layer 0 (with its bias) */
    float lin_u = 0.0f;
    for (size_t j = 0; j < nu; j++) {
        const rank_field_t *f = &net->fields[net->ufield[j]];
        float w;
        int rc = field_vector(f, k, &fields[f->feature], p->xu + j * k, &w, err);
        if (rc != 0)
            return rc;
        lin_u += w;
    }
    if (nu)
        recd_nn_dense(net->w0_user, L0->b, (int)ku, (int)h0, 0, p->xu, u0);
    else
        memcpy(u0, L0->b, h0 * sizeof *u0);

    /* per candidate: item field vectors and first-order terms */
    for (size_t i = 0; i < n; i++) {
        float lin = lin_u;
        for (size_t j = 0; j < ni; j++) {
            const rank_field_t *f = &net->fields[net->ifield[j]];
            recd_field_buckets_t v;
            float w;
            int rc = rank_item_values(b, o, &c[i], f->feature, &v, err);
            if (rc == 0)
                rc = field_vector(f, k, &v, p->xi + i * ki + j * k, &w, err);
            if (rc != 0)
                return rc;
            lin += w;
        }
        p->lin[i] = lin;
    }

    /* the MLP, block by block: layer 0 = one sgemm of the item part with
     * the user part as bias, then the remaining layers batched */
    for (size_t s = 0; s < n; s += bl) {
        size_t m = n - s < bl ? n - s : bl;
        float *x = h, *y = g;
        if (ni) {
            recd_nn_dense_batch(net->w0_item, u0, (int)ki, (int)h0, L0->relu, p->xi + s * ki, m, x);
        } else {
            for (size_t i = 0; i < m; i++)
                for (size_t j = 0; j < h0; j++)
                    x[i * h0 + j] = L0->relu && u0[j] < 0.0f ? 0.0f : u0[j];
        }
        float *deep = p->deep + s;
        if (net->nlayers == 1) { /* no hidden layers: layer 0 was out */
            memcpy(deep, x, m * sizeof *deep);
            continue;
        }
        for (size_t l = 1; l + 1 < net->nlayers; l++) {
            const rank_layer_t *L = &net->layers[l];
            recd_nn_dense_batch(L->w, L->b, L->in, L->out, L->relu, x, m, y);
            float *t = x;
            x = y;
            y = t;
        }
        const rank_layer_t *out = &net->layers[net->nlayers - 1];
        recd_nn_matvec(x, m, (size_t)out->in, out->w, deep);
        for (size_t i = 0; i < m; i++)
            deep[i] += out->b[0];
    }
    return 0;
}
