/* The content model: an item's vector from its content features.
 *
 * For items the catalog has never seen (no interactions, so no learned
 * cand.item_emb row) the bundle may carry a small MLP that maps the item's
 * content features to the candidate model's item-vector space. This is the
 * cold-start approach of van den Oord, Dieleman and Schrauwen, "Deep
 * content-based music recommendation" (NIPS 2013): train a network to
 * regress the latent factors learned from usage data from content alone,
 * then use its prediction for new items.
 *
 * Forward pass (models/FORMAT.md, "content"): each field's vector is the
 * mean of its content.emb.<f> rows over the field's hashed values; x is
 * their concatenation in manifest order; each layer computes
 * act(x @ w + b) with act relu or linear; the last output (candidate.dim
 * wide) is the item vector. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_int.h"
#include "recd/nn.h"

#define MAX_WIDTH (1 << 24)

/* ---- manifest access (messages name the key path) ----------------------------------- */

static const char *cstr(json_t *o, const char *key, const char *where, recd_err_t *err)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        recd_err_set(err, RECD_EINVAL, "manifest.json: %s.%s: missing", where, key);
        return NULL;
    }
    if (!json_is_string(v) || !*json_string_value(v)) {
        recd_err_set(err, RECD_EINVAL, "manifest.json: %s.%s: expected a non-empty string", where,
                     key);
        return NULL;
    }
    return json_string_value(v);
}

static int cint(json_t *o, const char *key, const char *where, int64_t min, int64_t max,
                int64_t *out, recd_err_t *err)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return recd_err_set(err, RECD_EINVAL, "manifest.json: %s.%s: missing", where, key);
    if (!json_is_integer(v))
        return recd_err_set(err, RECD_EINVAL, "manifest.json: %s.%s: expected an integer", where,
                            key);
    int64_t x = json_integer_value(v);
    if (x < min || x > max)
        return recd_err_set(err, RECD_EINVAL, "manifest.json: %s.%s: %lld outside %lld..%lld",
                            where, key, (long long)x, (long long)min, (long long)max);
    *out = x;
    return 0;
}

static json_t *carr(json_t *o, const char *key, const char *where, recd_err_t *err)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        recd_err_set(err, RECD_EINVAL, "manifest.json: %s.%s: missing", where, key);
        return NULL;
    }
    if (!json_is_array(v) || json_array_size(v) == 0) {
        recd_err_set(err, RECD_EINVAL, "manifest.json: %s.%s: expected a non-empty array", where,
                     key);
        return NULL;
    }
    return v;
}

/* Tensor `name` with shape [rows, cols] (cols 0: 1-D [rows]); `where`
 * is the manifest key that named it. */
static const recd_tensor_t *ctensor(const recd_bundle_t *b, const char *name, int64_t rows,
                                    int64_t cols, const char *where, recd_err_t *err)
{
    const recd_tensor_t *t = recd_bundle_tensor(b, name);
    if (!t) {
        recd_err_set(err, RECD_EINVAL, "manifest.json: %s: tensor %s: not in the tensor table",
                     where, name);
        return NULL;
    }
    int ok = cols == 0 ? (t->ndim == 1 && t->shape[0] == rows)
                       : (t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols);
    if (ok)
        return t;
    char got[64], want[64];
    if (t->ndim == 1)
        snprintf(got, sizeof got, "[%lld]", (long long)t->shape[0]);
    else
        snprintf(got, sizeof got, "[%lld, %lld]", (long long)t->shape[0], (long long)t->shape[1]);
    if (cols == 0)
        snprintf(want, sizeof want, "[%lld]", (long long)rows);
    else
        snprintf(want, sizeof want, "[%lld, %lld]", (long long)rows, (long long)cols);
    recd_err_set(err, RECD_EINVAL, "tensors.bin: tensor %s (%s): shape %s, expected %s", name,
                 where, got, want);
    return NULL;
}

/* ---- parse and validate ------------------------------------------------------------------ */

void recd_content_free(recd_content_t *c)
{
    if (!c)
        return;
    free(c->fields);
    free(c->layers);
    free(c);
}

static int parse_fields(const recd_bundle_t *b, json_t *arr, recd_content_t *c, recd_err_t *err)
{
    c->nfields = json_array_size(arr);
    c->fields = calloc(c->nfields, sizeof *c->fields);
    if (!c->fields)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    for (size_t i = 0; i < c->nfields; i++) {
        json_t *f = json_array_get(arr, i);
        char where[64];
        snprintf(where, sizeof where, "content.fields[%zu]", i);
        if (!json_is_object(f))
            return recd_err_set(err, RECD_EINVAL, "manifest.json: %s: expected an object", where);
        const char *name = cstr(f, "name", where, err);
        const char *tname = name ? cstr(f, "tensor", where, err) : NULL;
        if (!tname)
            return RECD_EINVAL;
        int fi = -1;
        for (size_t k = 0; k < b->nfeatures; k++)
            if (strcmp(b->features[k].name, name) == 0)
                fi = (int)k;
        if (fi < 0)
            return recd_err_set(err, RECD_EINVAL,
                                "manifest.json: %s.name: no field \"%s\" in features.fields", where,
                                name);
        const recd_feature_t *feat = &b->features[fi];
        if (feat->source != RECD_SRC_ITEM)
            return recd_err_set(err, RECD_EINVAL,
                                "manifest.json: %s.name: \"%s\" is a %s field; the content model "
                                "takes item fields only",
                                where, name, feat->source == RECD_SRC_USER ? "user" : "context");
        if (strcmp(feat->column, "id") == 0)
            return recd_err_set(err, RECD_EINVAL,
                                "manifest.json: %s.name: \"%s\" reads the item id (column "
                                "\"id\"); the content model is for items never seen, so it "
                                "cannot use the id",
                                where, name);
        for (size_t k = 0; k < i; k++)
            if (c->fields[k].feature == fi)
                return recd_err_set(err, RECD_EINVAL,
                                    "manifest.json: %s.name: duplicate field \"%s\"", where, name);
        char twhere[80];
        snprintf(twhere, sizeof twhere, "%s.tensor", where);
        const recd_tensor_t *t =
            ctensor(b, tname, (int64_t)feat->buckets, (int64_t)c->embed_dim, twhere, err);
        if (!t)
            return RECD_EINVAL;
        c->fields[i].feature = fi;
        c->fields[i].table = t;
        c->fields[i].missing =
            recd_feature_bucket(feat->name, strlen(feat->name), "", 0, feat->buckets);
    }
    return 0;
}

static int parse_layers(const recd_bundle_t *b, json_t *arr, recd_content_t *c, recd_err_t *err)
{
    c->nlayers = json_array_size(arr);
    c->layers = calloc(c->nlayers, sizeof *c->layers);
    if (!c->layers)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    int64_t in = (int64_t)(c->embed_dim * c->nfields);
    c->max_width = (size_t)in;
    for (size_t i = 0; i < c->nlayers; i++) {
        json_t *l = json_array_get(arr, i);
        char where[64];
        snprintf(where, sizeof where, "content.layers[%zu]", i);
        if (!json_is_object(l))
            return recd_err_set(err, RECD_EINVAL, "manifest.json: %s: expected an object", where);
        int64_t lin, lout;
        if (cint(l, "in", where, 1, MAX_WIDTH, &lin, err) < 0 ||
            cint(l, "out", where, 1, MAX_WIDTH, &lout, err) < 0)
            return RECD_EINVAL;
        if (lin != in) {
            if (i == 0)
                return recd_err_set(err, RECD_EINVAL,
                                    "manifest.json: %s.in = %lld, expected %lld (embed_dim %zu x "
                                    "%zu fields)",
                                    where, (long long)lin, (long long)in, c->embed_dim, c->nfields);
            return recd_err_set(err, RECD_EINVAL,
                                "manifest.json: %s.in = %lld, expected %lld (the previous "
                                "layer's out)",
                                where, (long long)lin, (long long)in);
        }
        const char *act = cstr(l, "activation", where, err);
        if (!act)
            return RECD_EINVAL;
        if (strcmp(act, "relu") != 0 && strcmp(act, "linear") != 0)
            return recd_err_set(err, RECD_EINVAL,
                                "manifest.json: %s.activation: unknown \"%s\" (relu or linear)",
                                where, act);
        const char *wn = cstr(l, "w", where, err);
        const char *bn = wn ? cstr(l, "b", where, err) : NULL;
        if (!bn)
            return RECD_EINVAL;
        char kw[80], kb[80];
        snprintf(kw, sizeof kw, "%s.w", where);
        snprintf(kb, sizeof kb, "%s.b", where);
        const recd_tensor_t *wt = ctensor(b, wn, lin, lout, kw, err);
        const recd_tensor_t *bt = wt ? ctensor(b, bn, lout, 0, kb, err) : NULL;
        if (!bt)
            return RECD_EINVAL;
        c->layers[i] = (recd_layer_t){wt, bt, (int)lin, (int)lout, strcmp(act, "relu") == 0};
        if ((size_t)lout > c->max_width)
            c->max_width = (size_t)lout;
        in = lout;
    }
    if (in != (int64_t)b->dim)
        return recd_err_set(err, RECD_EINVAL,
                            "manifest.json: content.layers: the last layer gives %lld, expected "
                            "candidate.dim %zu",
                            (long long)in, b->dim);
    return 0;
}

int recd_content_parse(recd_bundle_t *b, json_t *section, recd_err_t *err)
{
    if (!json_is_object(section))
        return recd_err_set(err, RECD_EINVAL, "manifest.json: content: expected an object");
    const char *type = cstr(section, "type", "content", err);
    if (!type)
        return RECD_EINVAL;
    if (strcmp(type, "mlp") != 0)
        return recd_err_set(err, RECD_EINVAL,
                            "manifest.json: content.type: unsupported \"%s\" (only \"mlp\")", type);
    int64_t edim;
    if (cint(section, "embed_dim", "content", 1, 65536, &edim, err) < 0)
        return RECD_EINVAL;
    const char *output = cstr(section, "output", "content", err);
    if (!output)
        return RECD_EINVAL;
    if (!b->item_emb || strcmp(output, b->item_emb->name) != 0)
        return recd_err_set(err, RECD_EINVAL,
                            "manifest.json: content.output: \"%s\", expected \"%s\" (the "
                            "candidate model's item embedding)",
                            output, b->item_emb ? b->item_emb->name : "cand.item_emb");
    json_t *fields = carr(section, "fields", "content", err);
    json_t *layers = fields ? carr(section, "layers", "content", err) : NULL;
    if (!layers)
        return RECD_EINVAL;
    recd_content_t *c = calloc(1, sizeof *c);
    if (!c)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    c->embed_dim = (size_t)edim;
    if (parse_fields(b, fields, c, err) < 0 || parse_layers(b, layers, c, err) < 0) {
        recd_content_free(c);
        return err && err->code ? err->code : RECD_EINVAL;
    }
    recd_content_free(b->content);
    b->content = c;
    return 0;
}

/* ---- forward ------------------------------------------------------------------------------ */

size_t recd_content_scratch_floats(const recd_bundle_t *b)
{
    return b->content ? 2 * b->content->max_width : 0;
}

int recd_content_value_missing(const recd_field_buckets_t *f)
{
    if (f->n == 0)
        return 1;
    if (!f->t)
        return 0;
    for (size_t i = 0; i < f->n; i++)
        if (f->tlen[i] != 0)
            return 0;
    return 1;
}

static int all_finite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return 0;
    return 1;
}

int recd_content_embed(const recd_bundle_t *b, const recd_field_buckets_t *fields, float *out,
                       float *scratch, recd_err_t *err)
{
    const recd_content_t *c = b->content;
    if (!c)
        return recd_err_set(err, RECD_EINVAL, "model %s version %lld has no content model", b->name,
                            (long long)b->version);
    float *x = scratch, *y = scratch + c->max_width;
    size_t e = c->embed_dim;
    for (size_t i = 0; i < c->nfields; i++) {
        const recd_content_field_t *cf = &c->fields[i];
        const recd_field_buckets_t *v = &fields[cf->feature];
        const uint64_t *ids = v->n ? v->b : &cf->missing;
        size_t n = v->n ? v->n : 1;
        for (size_t k = 0; k < n; k++)
            if (ids[k] >= (uint64_t)cf->table->shape[0])
                return recd_err_set(err, RECD_EINVAL,
                                    "content field %s: bucket %llu outside its table of %lld rows",
                                    b->features[cf->feature].name, (unsigned long long)ids[k],
                                    (long long)cf->table->shape[0]);
        recd_nn_embed_mean(cf->table->data, e, ids, n, x + i * e);
    }
    if (!all_finite(x, e * c->nfields))
        return recd_err_set(err, RECD_ERANGE,
                            "the content model overflowed (a field vector is not finite)");
    for (size_t l = 0; l < c->nlayers; l++) {
        const recd_layer_t *L = &c->layers[l];
        float *dst = l + 1 == c->nlayers ? out : y;
        /* the ReLU is applied here, after the check: inside the kernel it
         * would turn NaN into 0 and hide an overflow */
        recd_nn_dense(L->w->data, L->b->data, L->in, L->out, 0, x, dst);
        if (!all_finite(dst, (size_t)L->out))
            return recd_err_set(err, RECD_ERANGE,
                                "the content model overflowed (layer %zu gives a non-finite value)",
                                l);
        if (L->relu)
            for (int k = 0; k < L->out; k++)
                dst[k] = dst[k] > 0.0f ? dst[k] : 0.0f;
        y = x;
        x = dst;
    }
    return 0;
}
