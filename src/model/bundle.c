/* recd-bundle/1 loading and validation. Every check runs before a bundle
 * can be published; a failure names the file, the tensor and the reason. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model_int.h"

#define MAX_MANIFEST_BYTES ((size_t)64 << 20)
#define MAX_ITEMS_BYTES ((size_t)4096 << 20)

/* ---- small helpers ------------------------------------------------------------ */

static int read_file(const char *path, size_t max, char **out, size_t *len, recd_err_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return recd_err_set(err, RECD_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return recd_err_set(err, RECD_EIO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return recd_err_set(err, RECD_EINVAL, "%s: larger than %zu bytes", path, max);
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return recd_err_set(err, RECD_ENOMEM, "%s: out of memory", path);
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            free(buf);
            close(fd);
            return recd_err_set(err, RECD_EIO, "%s: read error: %s", path,
                                r < 0 ? strerror(errno) : "short read");
        }
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return 0;
}

static int sha256_file(const char *path, char hex[65], uint64_t *bytes, recd_err_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return recd_err_set(err, RECD_EIO, "%s: cannot open: %s", path, strerror(errno));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        close(fd);
        return recd_err_set(err, RECD_ENOMEM, "%s: sha256 init failed", path);
    }
    static __thread unsigned char buf[1 << 16];
    uint64_t total = 0;
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            EVP_MD_CTX_free(ctx);
            close(fd);
            return recd_err_set(err, RECD_EIO, "%s: read error: %s", path, strerror(errno));
        }
        if (r == 0)
            break;
        EVP_DigestUpdate(ctx, buf, (size_t)r);
        total += (uint64_t)r;
    }
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    close(fd);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    *bytes = total;
    return 0;
}

/* Manifest access with messages naming the key path. */
static json_t *jreq(json_t *o, const char *key, const char *where, recd_err_t *err)
{
    json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    if (!v)
        recd_err_set(err, RECD_EINVAL, "manifest.json: %s.%s: missing", where, key);
    return v;
}

static int jint(json_t *o, const char *key, const char *where, int64_t min, int64_t max,
                int64_t *out, recd_err_t *err)
{
    json_t *v = jreq(o, key, where, err);
    if (!v)
        return RECD_EINVAL;
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

static const char *jstr(json_t *o, const char *key, const char *where, recd_err_t *err)
{
    json_t *v = jreq(o, key, where, err);
    if (!v)
        return NULL;
    if (!json_is_string(v) || !*json_string_value(v)) {
        recd_err_set(err, RECD_EINVAL, "manifest.json: %s.%s: expected a non-empty string", where,
                     key);
        return NULL;
    }
    return json_string_value(v);
}

static json_t *jarr(json_t *o, const char *key, const char *where, recd_err_t *err)
{
    json_t *v = jreq(o, key, where, err);
    if (v && !json_is_array(v)) {
        recd_err_set(err, RECD_EINVAL, "manifest.json: %s.%s: expected an array", where, key);
        return NULL;
    }
    return v;
}

/* ---- id hash ------------------------------------------------------------------------- */

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n)
        c <<= 1;
    return c;
}

int64_t recd_bundle_item_index(const recd_bundle_t *b, const char *id, size_t len)
{
    if (!b->id_hash)
        return -1;
    size_t mask = b->id_hash_cap - 1;
    size_t h = (size_t)recd_fnv1a64(RECD_FNV1A64_INIT, id, len) & mask;
    for (;;) {
        uint64_t e = b->id_hash[h];
        if (!e)
            return -1;
        const char *cand = b->cells[(e - 1) * b->ncols];
        if (strlen(cand) == len && memcmp(cand, id, len) == 0)
            return (int64_t)(e - 1);
        h = (h + 1) & mask;
    }
}

const recd_tensor_t *recd_bundle_tensor(const recd_bundle_t *b, const char *name)
{
    for (size_t i = 0; i < b->ntensors; i++)
        if (strcmp(b->tensors[i].name, name) == 0)
            return &b->tensors[i];
    return NULL;
}

/* ---- features ------------------------------------------------------------------------------ */

uint64_t recd_feature_bucket(const char *field, size_t flen, const char *text, size_t tlen,
                             uint64_t buckets)
{
    uint64_t h = recd_fnv1a64(RECD_FNV1A64_INIT, field, flen);
    h = recd_fnv1a64(h, "\x1f", 1);
    h = recd_fnv1a64(h, text, tlen);
    return buckets ? h % buckets : 0;
}

size_t recd_feature_bucketize(const recd_feature_t *f, double v)
{
    /* bisect right: number of boundaries <= v */
    size_t lo = 0, hi = f->nboundaries;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (f->boundaries[mid] <= v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int parse_features(recd_bundle_t *b, json_t *m, recd_err_t *err)
{
    json_t *feat = jreq(m, "features", "", err);
    if (!feat)
        return RECD_EINVAL;
    const char *hash = jstr(feat, "hash", "features", err);
    if (!hash)
        return RECD_EINVAL;
    if (strcmp(hash, "fnv1a64") != 0)
        return recd_err_set(err, RECD_EINVAL, "manifest.json: features.hash: unsupported \"%s\"",
                            hash);
    json_t *fields = jarr(feat, "fields", "features", err);
    if (!fields)
        return RECD_EINVAL;
    b->nfeatures = json_array_size(fields);
    b->features = calloc(b->nfeatures ? b->nfeatures : 1, sizeof *b->features);
    if (!b->features)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    for (size_t i = 0; i < b->nfeatures; i++) {
        json_t *f = json_array_get(fields, i);
        recd_feature_t *x = &b->features[i];
        char where[64];
        snprintf(where, sizeof where, "features.fields[%zu]", i);
        x->column_idx = -1;
        const char *name = jstr(f, "name", where, err);
        const char *src = name ? jstr(f, "source", where, err) : NULL;
        const char *type = src ? jstr(f, "type", where, err) : NULL;
        if (!type)
            return RECD_EINVAL;
        for (size_t j = 0; j < i; j++)
            if (strcmp(b->features[j].name, name) == 0)
                return recd_err_set(err, RECD_EINVAL, "manifest.json: %s: duplicate field \"%s\"",
                                    where, name);
        x->name = strdup(name);
        if (strcmp(src, "user") == 0)
            x->source = RECD_SRC_USER;
        else if (strcmp(src, "item") == 0)
            x->source = RECD_SRC_ITEM;
        else if (strcmp(src, "context") == 0)
            x->source = RECD_SRC_CONTEXT;
        else
            return recd_err_set(err, RECD_EINVAL, "manifest.json: %s.source: unknown \"%s\"", where,
                                src);
        int64_t buckets;
        if (jint(f, "buckets", where, 1, INT64_MAX, &buckets, err) < 0)
            return RECD_EINVAL;
        x->buckets = (uint64_t)buckets;
        json_t *mv = json_object_get(f, "multi_valued");
        x->multi_valued = mv && json_is_true(mv);
        if (strcmp(type, "bucketized") == 0) {
            json_t *bd = jarr(f, "boundaries", where, err);
            if (!bd)
                return RECD_EINVAL;
            x->bucketized = 1;
            x->nboundaries = json_array_size(bd);
            x->boundaries = calloc(x->nboundaries ? x->nboundaries : 1, sizeof(double));
            if (!x->boundaries)
                return recd_err_set(err, RECD_ENOMEM, "out of memory");
            for (size_t k = 0; k < x->nboundaries; k++) {
                json_t *v = json_array_get(bd, k);
                if (!json_is_number(v) || (k && json_number_value(v) < x->boundaries[k - 1]))
                    return recd_err_set(err, RECD_EINVAL,
                                        "manifest.json: %s.boundaries: must be ascending numbers",
                                        where);
                x->boundaries[k] = json_number_value(v);
            }
        } else if (strcmp(type, "categorical") != 0) {
            return recd_err_set(err, RECD_EINVAL, "manifest.json: %s.type: unknown \"%s\"", where,
                                type);
        }
        if (x->source == RECD_SRC_ITEM) {
            json_t *col = json_object_get(f, "column");
            const char *c = json_is_string(col)            ? json_string_value(col)
                            : strcmp(name, "item_id") == 0 ? "id"
                                                           : name;
            x->column = strdup(c);
            for (size_t k = 0; k < b->ncols; k++)
                if (strcmp(b->col_names[k], c) == 0)
                    x->column_idx = (int)k;
            if (x->column_idx < 0)
                return recd_err_set(err, RECD_EINVAL,
                                    "items.tsv: no column \"%s\" for item field \"%s\"", c, name);
        }
        if (!x->name || (x->source == RECD_SRC_ITEM && !x->column))
            return recd_err_set(err, RECD_ENOMEM, "out of memory");
    }
    return 0;
}

static const recd_feature_t *find_feature(const recd_bundle_t *b, const char *name, int *idx)
{
    for (size_t i = 0; i < b->nfeatures; i++)
        if (strcmp(b->features[i].name, name) == 0) {
            if (idx)
                *idx = (int)i;
            return &b->features[i];
        }
    return NULL;
}

/* Hash every item's values of every item-source field once, at load. */
static int hash_item_fields(recd_bundle_t *b, recd_err_t *err)
{
    b->item_fields = calloc(b->nfeatures ? b->nfeatures : 1, sizeof *b->item_fields);
    if (!b->item_fields)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    for (size_t fi = 0; fi < b->nfeatures; fi++) {
        const recd_feature_t *f = &b->features[fi];
        if (f->source != RECD_SRC_ITEM)
            continue;
        recd_item_field_t *x = &b->item_fields[fi];
        size_t nl = strlen(f->name);
        /* count values: multi-valued cells split on '|' */
        size_t total = 0;
        x->off = calloc(b->n_items + 1, sizeof *x->off);
        if (!x->off)
            return recd_err_set(err, RECD_ENOMEM, "out of memory");
        for (size_t i = 0; i < b->n_items; i++) {
            const char *cell = b->cells[i * b->ncols + (size_t)f->column_idx];
            size_t n = 1;
            if (f->multi_valued)
                for (const char *p = cell; *p; p++)
                    n += *p == '|';
            x->off[i] = (uint32_t)total;
            total += n;
            if (total > UINT32_MAX)
                return recd_err_set(err, RECD_EINVAL, "items.tsv: too many values in column %s",
                                    f->column);
        }
        x->off[b->n_items] = (uint32_t)total;
        x->buckets = malloc((total ? total : 1) * sizeof *x->buckets);
        x->texts = malloc((total ? total : 1) * sizeof *x->texts);
        x->tlen = malloc((total ? total : 1) * sizeof *x->tlen);
        /* bucket-index texts of a bucketized field: at most 20 digits + NUL */
        x->text_pool = f->bucketized ? malloc((total ? total : 1) * 21) : NULL;
        if (!x->buckets || !x->texts || !x->tlen || (f->bucketized && !x->text_pool))
            return recd_err_set(err, RECD_ENOMEM, "out of memory");
        size_t k = 0;
        for (size_t i = 0; i < b->n_items; i++) {
            const char *p = b->cells[i * b->ncols + (size_t)f->column_idx];
            for (;;) {
                const char *e = f->multi_valued ? strchr(p, '|') : NULL;
                size_t len = e ? (size_t)(e - p) : strlen(p);
                const char *t = p;
                if (f->bucketized && len) {
                    char num[64], *end;
                    if (len >= sizeof num)
                        return recd_err_set(err, RECD_EINVAL,
                                            "items.tsv: line %zu: column %s: not a number", i + 2,
                                            f->column);
                    memcpy(num, p, len);
                    num[len] = '\0';
                    double v = strtod(num, &end);
                    if (*end || !isfinite(v))
                        return recd_err_set(
                            err, RECD_EINVAL,
                            "items.tsv: line %zu: column %s: \"%s\" is not a number", i + 2,
                            f->column, num);
                    char *dst = x->text_pool + k * 21;
                    len = (size_t)snprintf(dst, 21, "%zu", recd_feature_bucketize(f, v));
                    t = dst;
                }
                x->texts[k] = t;
                x->tlen[k] = (uint32_t)len;
                x->buckets[k] = recd_feature_bucket(f->name, nl, t, len, f->buckets);
                k++;
                if (!e)
                    break;
                p = e + 1;
            }
        }
    }
    return 0;
}

void recd_item_values(const recd_bundle_t *b, const recd_overlay_t *o, int64_t index, int64_t slot,
                      size_t f, recd_field_buckets_t *out)
{
    if (index >= 0) {
        const recd_item_field_t *x = &b->item_fields[f];
        uint32_t a = x->off[index], e = x->off[index + 1];
        out->b = x->buckets + a;
        out->n = e - a;
        out->t = x->texts + a;
        out->tlen = x->tlen + a;
        return;
    }
    *out = o->live[slot]->fields[f];
}

/* ---- tensors --------------------------------------------------------------------------------- */

static int cmp_by_offset(const void *a, const void *b)
{
    const recd_tensor_t *x = *(recd_tensor_t *const *)a, *y = *(recd_tensor_t *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int load_tensors(recd_bundle_t *b, json_t *m, recd_err_t *err)
{
    json_t *al = json_object_get(m, "tensor_alignment");
    if (al && (!json_is_integer(al) || json_integer_value(al) != RECD_TENSOR_ALIGN))
        return recd_err_set(err, RECD_EINVAL, "manifest.json: tensor_alignment must be %d",
                            RECD_TENSOR_ALIGN);
    json_t *arr = jarr(m, "tensors", "", err);
    if (!arr)
        return RECD_EINVAL;
    char path[4096];
    snprintf(path, sizeof path, "%s/tensors.bin", b->dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return recd_err_set(err, RECD_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    fstat(fd, &st);
    b->map_len = (size_t)st.st_size;
    if (b->map_len) {
        b->map = mmap(NULL, b->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (b->map == MAP_FAILED) {
            b->map = NULL;
            close(fd);
            return recd_err_set(err, RECD_EIO, "%s: mmap: %s", path, strerror(errno));
        }
    }
    close(fd);
    b->ntensors = json_array_size(arr);
    b->tensors = calloc(b->ntensors ? b->ntensors : 1, sizeof *b->tensors);
    recd_tensor_t **order = calloc(b->ntensors ? b->ntensors : 1, sizeof *order);
    if (!b->tensors || !order) {
        free(order);
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    }
    int rc = 0;
    for (size_t i = 0; i < b->ntensors && rc == 0; i++) {
        json_t *t = json_array_get(arr, i);
        recd_tensor_t *x = &b->tensors[i];
        order[i] = x;
        char where[48];
        snprintf(where, sizeof where, "tensors[%zu]", i);
        const char *name = jstr(t, "name", where, err);
        json_t *shape = name ? jarr(t, "shape", where, err) : NULL;
        int64_t off;
        if (!shape || jint(t, "offset", where, 0, INT64_MAX, &off, err) < 0) {
            rc = RECD_EINVAL;
            break;
        }
        x->name = json_string_value(json_object_get(t, "name")); /* lives in the manifest */
        for (size_t j = 0; j < i; j++)
            if (strcmp(b->tensors[j].name, name) == 0) {
                rc = recd_err_set(err, RECD_EINVAL, "manifest.json: tensor %s: listed twice", name);
                break;
            }
        size_t nd = json_array_size(shape);
        if (rc || nd < 1 || nd > 2) {
            if (!rc)
                rc = recd_err_set(err, RECD_EINVAL,
                                  "manifest.json: tensor %s: shape must have 1 or 2 dimensions",
                                  name);
            break;
        }
        x->ndim = (int)nd;
        x->shape[1] = 1;
        uint64_t count = 1;
        for (size_t k = 0; k < nd; k++) {
            json_t *d = json_array_get(shape, k);
            if (!json_is_integer(d) || json_integer_value(d) <= 0 ||
                json_integer_value(d) > (1LL << 40)) {
                rc = recd_err_set(err, RECD_EINVAL, "manifest.json: tensor %s: bad shape", name);
                break;
            }
            x->shape[k] = json_integer_value(d);
            count *= (uint64_t)x->shape[k];
        }
        if (rc)
            break;
        if (count > (1ULL << 40)) {
            rc = recd_err_set(err, RECD_EINVAL, "tensors.bin: tensor %s: too large", name);
            break;
        }
        x->count = (size_t)count;
        x->offset = (uint64_t)off;
        if (x->offset % RECD_TENSOR_ALIGN) {
            rc = recd_err_set(err, RECD_EINVAL,
                              "tensors.bin: tensor %s: offset %llu is not %d-byte aligned", name,
                              (unsigned long long)x->offset, RECD_TENSOR_ALIGN);
            break;
        }
        if (x->offset > b->map_len || count * 4 > b->map_len - x->offset) {
            rc = recd_err_set(err, RECD_EINVAL,
                              "tensors.bin: tensor %s: bytes %llu..%llu lie outside the file "
                              "(%zu bytes)",
                              name, (unsigned long long)x->offset,
                              (unsigned long long)(x->offset + count * 4), b->map_len);
            break;
        }
        x->data = (const float *)(const void *)((const char *)b->map + x->offset);
        for (size_t k = 0; k < x->count; k++) {
            if (!isfinite(x->data[k])) {
                rc = recd_err_set(err, RECD_EINVAL, "tensors.bin: tensor %s: element %zu is %s",
                                  name, k, isnan(x->data[k]) ? "NaN" : "infinite");
                break;
            }
        }
    }
    if (rc == 0 && b->ntensors > 1) {
        qsort(order, b->ntensors, sizeof *order, cmp_by_offset);
        for (size_t i = 1; i < b->ntensors; i++) {
            if (order[i]->offset < order[i - 1]->offset + order[i - 1]->count * 4) {
                rc = recd_err_set(err, RECD_EINVAL, "tensors.bin: tensors %s and %s overlap",
                                  order[i - 1]->name, order[i]->name);
                break;
            }
        }
    }
    free(order);
    return rc;
}

/* A tensor that must exist with the given shape (cols 0 = 1-D). */
static const recd_tensor_t *want(const recd_bundle_t *b, const char *name, int64_t rows,
                                 int64_t cols, recd_err_t *err)
{
    const recd_tensor_t *t = name ? recd_bundle_tensor(b, name) : NULL;
    if (!t) {
        recd_err_set(err, RECD_EINVAL, "manifest.json: tensor %s: not in the tensor table",
                     name ? name : "(unnamed)");
        return NULL;
    }
    int ok = cols == 0 ? (t->ndim == 1 && t->shape[0] == rows)
                       : (t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols);
    if (!ok) {
        if (cols == 0)
            recd_err_set(err, RECD_EINVAL,
                         "tensors.bin: tensor %s: shape [%lld%s%lld], expected [%lld]", name,
                         (long long)t->shape[0], t->ndim == 2 ? ", " : "",
                         t->ndim == 2 ? (long long)t->shape[1] : 0LL, (long long)rows);
        else
            recd_err_set(err, RECD_EINVAL,
                         "tensors.bin: tensor %s: shape [%lld, %lld], expected [%lld, %lld]", name,
                         (long long)t->shape[0], (long long)(t->ndim == 2 ? t->shape[1] : 1),
                         (long long)rows, (long long)cols);
        return NULL;
    }
    return t;
}

/* A chain of dense layers from a manifest array; returns the last width. */
static int parse_layers(const recd_bundle_t *b, json_t *arr, const char *where, int64_t in0,
                        recd_layer_t *out, int64_t *last_out, recd_err_t *err)
{
    int64_t in = in0;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *l = json_array_get(arr, i);
        char w[64];
        snprintf(w, sizeof w, "%s[%zu]", where, i);
        int64_t lin, lout;
        if (jint(l, "in", w, 1, 1 << 24, &lin, err) < 0 ||
            jint(l, "out", w, 1, 1 << 24, &lout, err) < 0)
            return RECD_EINVAL;
        if (lin != in)
            return recd_err_set(err, RECD_EINVAL, "manifest.json: %s.in = %lld, expected %lld", w,
                                (long long)lin, (long long)in);
        const char *wn = jstr(l, "w", w, err), *bn = wn ? jstr(l, "b", w, err) : NULL;
        if (!bn)
            return RECD_EINVAL;
        const recd_tensor_t *wt = want(b, wn, lin, lout, err);
        const recd_tensor_t *bt = wt ? want(b, bn, lout, 0, err) : NULL;
        if (!bt)
            return RECD_EINVAL;
        json_t *act = json_object_get(l, "activation");
        const char *a = json_is_string(act) ? json_string_value(act) : "relu";
        if (strcmp(a, "relu") != 0 && strcmp(a, "linear") != 0 && strcmp(a, "none") != 0)
            return recd_err_set(err, RECD_EINVAL, "manifest.json: %s.activation: unknown \"%s\"", w,
                                a);
        if (out) {
            out[i].w = wt;
            out[i].b = bt;
            out[i].in = (int)lin;
            out[i].out = (int)lout;
            out[i].relu = strcmp(a, "relu") == 0;
        }
        in = lout;
    }
    *last_out = in;
    return 0;
}

static int parse_candidate(recd_bundle_t *b, json_t *m, recd_err_t *err)
{
    json_t *c = jreq(m, "candidate", "", err);
    if (!c)
        return RECD_EINVAL;
    const char *type = jstr(c, "type", "candidate", err);
    if (!type)
        return RECD_EINVAL;
    if (strcmp(type, "youtube_dnn") != 0)
        return recd_err_set(err, RECD_EINVAL, "manifest.json: candidate.type: unsupported \"%s\"",
                            type);
    int64_t dim, edim;
    if (jint(c, "dim", "candidate", 1, 65536, &dim, err) < 0 ||
        jint(c, "embed_dim", "candidate", 1, 65536, &edim, err) < 0)
        return RECD_EINVAL;
    b->dim = (size_t)dim;
    b->embed_dim = (size_t)edim;
    const char *ie = jstr(c, "item_embedding", "candidate", err);
    if (!ie || !(b->item_emb = want(b, ie, (int64_t)b->n_items, dim, err)))
        return RECD_EINVAL;
    json_t *h = jreq(c, "history", "candidate", err);
    const char *ht = h ? jstr(h, "tensor", "candidate.history", err) : NULL;
    if (!ht || !(b->hist_emb = want(b, ht, (int64_t)b->n_items, edim, err)))
        return RECD_EINVAL;
    int64_t ml = 50;
    if (json_object_get(h, "max_len") &&
        jint(h, "max_len", "candidate.history", 1, 100000, &ml, err) < 0)
        return RECD_EINVAL;
    b->hist_max_len = (size_t)ml;
    json_t *fields = json_object_get(c, "fields");
    json_t *input = jarr(c, "input", "candidate", err);
    if (!input)
        return RECD_EINVAL;
    b->ninputs = json_array_size(input);
    b->inputs = calloc(b->ninputs ? b->ninputs : 1, sizeof *b->inputs);
    if (!b->inputs)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    for (size_t i = 0; i < b->ninputs; i++) {
        json_t *e = json_array_get(input, i);
        if (!json_is_string(e))
            return recd_err_set(err, RECD_EINVAL,
                                "manifest.json: candidate.input[%zu]: expected a string", i);
        const char *nm = json_string_value(e);
        if (strcmp(nm, "history") == 0) {
            b->inputs[i].is_history = 1;
            continue;
        }
        const char *tn = NULL;
        for (size_t k = 0; k < json_array_size(fields); k++) {
            json_t *f = json_array_get(fields, k);
            if (json_is_string(json_object_get(f, "name")) &&
                strcmp(json_string_value(json_object_get(f, "name")), nm) == 0)
                tn = json_string_value(json_object_get(f, "tensor"));
        }
        int fi;
        const recd_feature_t *feat = find_feature(b, nm, &fi);
        if (!tn || !feat)
            return recd_err_set(err, RECD_EINVAL,
                                "manifest.json: candidate.input: \"%s\" is neither history nor a "
                                "candidate field with a feature",
                                nm);
        if (feat->source == RECD_SRC_ITEM)
            return recd_err_set(err, RECD_EINVAL,
                                "manifest.json: candidate.input: \"%s\" is an item field", nm);
        b->inputs[i].feature = fi;
        if (!(b->inputs[i].table = want(b, tn, (int64_t)feat->buckets, edim, err)))
            return RECD_EINVAL;
    }
    json_t *tower = jarr(c, "tower", "candidate", err);
    if (!tower)
        return RECD_EINVAL;
    b->ntower = json_array_size(tower);
    if (b->ntower == 0)
        return recd_err_set(err, RECD_EINVAL, "manifest.json: candidate.tower: empty");
    b->tower = calloc(b->ntower, sizeof *b->tower);
    if (!b->tower)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    int64_t last;
    if (parse_layers(b, tower, "candidate.tower", edim * (int64_t)b->ninputs, b->tower, &last,
                     err) < 0)
        return RECD_EINVAL;
    if (last != dim)
        return recd_err_set(
            err, RECD_EINVAL,
            "manifest.json: candidate.tower: last layer gives %lld, expected dim %lld",
            (long long)last, (long long)dim);
    return 0;
}

/* The ranker's tensors are validated here so a bundle is checked whole at
 * load; the ranker module builds its own view of them. */
static int check_ranker(recd_bundle_t *b, json_t *m, recd_err_t *err)
{
    json_t *r = json_object_get(m, "ranker");
    if (!r)
        return 0;
    const char *type = jstr(r, "type", "ranker", err);
    if (!type)
        return RECD_EINVAL;
    if (strcmp(type, "deepfm") != 0 && strcmp(type, "wide_deep") != 0)
        return recd_err_set(err, RECD_EINVAL, "manifest.json: ranker.type: unsupported \"%s\"",
                            type);
    int64_t k;
    if (jint(r, "embed_dim", "ranker", 1, 65536, &k, err) < 0)
        return RECD_EINVAL;
    json_t *fields = jarr(r, "fields", "ranker", err);
    if (!fields)
        return RECD_EINVAL;
    for (size_t i = 0; i < json_array_size(fields); i++) {
        json_t *f = json_array_get(fields, i);
        char w[48];
        snprintf(w, sizeof w, "ranker.fields[%zu]", i);
        const char *nm = jstr(f, "name", w, err);
        const char *en = nm ? jstr(f, "emb", w, err) : NULL;
        const char *ln = en ? jstr(f, "lin", w, err) : NULL;
        if (!ln)
            return RECD_EINVAL;
        const recd_feature_t *feat = find_feature(b, nm, NULL);
        if (!feat)
            return recd_err_set(err, RECD_EINVAL, "manifest.json: %s: no feature \"%s\"", w, nm);
        if (!want(b, en, (int64_t)feat->buckets, k, err) ||
            !want(b, ln, (int64_t)feat->buckets, 0, err))
            return RECD_EINVAL;
    }
    const char *bias = jstr(r, "bias", "ranker", err);
    if (!bias || !want(b, bias, 1, 0, err))
        return RECD_EINVAL;
    json_t *mlp = jarr(r, "mlp", "ranker", err);
    int64_t last;
    if (!mlp || parse_layers(b, mlp, "ranker.mlp", k * (int64_t)json_array_size(fields), NULL,
                             &last, err) < 0)
        return RECD_EINVAL;
    json_t *out = jreq(r, "out", "ranker", err);
    const char *ow = out ? jstr(out, "w", "ranker.out", err) : NULL;
    const char *ob = ow ? jstr(out, "b", "ranker.out", err) : NULL;
    if (!ob || !want(b, ow, last, 1, err) || !want(b, ob, 1, 0, err))
        return RECD_EINVAL;
    json_t *crosses = json_object_get(r, "crosses");
    for (size_t i = 0; json_is_array(crosses) && i < json_array_size(crosses); i++) {
        json_t *x = json_array_get(crosses, i);
        char w[48];
        snprintf(w, sizeof w, "ranker.crosses[%zu]", i);
        int64_t buckets;
        const char *tn = jstr(x, "tensor", w, err);
        if (!tn || jint(x, "buckets", w, 1, INT64_MAX, &buckets, err) < 0 ||
            !want(b, tn, buckets, 0, err))
            return RECD_EINVAL;
        json_t *fs = jarr(x, "fields", w, err);
        if (!fs || json_array_size(fs) != 2)
            return recd_err_set(err, RECD_EINVAL, "manifest.json: %s.fields: expected two fields",
                                w);
        for (size_t j = 0; j < 2; j++) {
            json_t *fn = json_array_get(fs, j);
            if (!json_is_string(fn) || !find_feature(b, json_string_value(fn), NULL))
                return recd_err_set(err, RECD_EINVAL, "manifest.json: %s.fields: unknown field", w);
        }
    }
    return 0;
}

/* The optional content model (src/model/content.c); without a "content"
 * key the bundle loads as before. */
static int parse_content(recd_bundle_t *b, json_t *m, recd_err_t *err)
{
    json_t *c = json_object_get(m, "content");
    return c ? recd_content_parse(b, c, err) : 0;
}

/* ---- items.tsv ----------------------------------------------------------------------------------
 */

static int cmp_pop(const void *a, const void *b, void *arg)
{
    const double *pop = arg;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    if (pop[x] != pop[y])
        return pop[x] > pop[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

static int load_items(recd_bundle_t *b, recd_err_t *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/items.tsv", b->dir);
    size_t len;
    if (read_file(path, MAX_ITEMS_BYTES, &b->items_text, &len, err) < 0)
        return RECD_EIO;
    b->bytes += len; /* the rest is added when loading completes */
    char *p = b->items_text, *end = p + len;
    if (memchr(p, '\0', len))
        return recd_err_set(err, RECD_EINVAL, "items.tsv: contains a NUL byte");
    char *nl = memchr(p, '\n', len);
    if (!nl)
        return recd_err_set(err, RECD_EINVAL, "items.tsv: no header line");
    *nl = '\0';
    if (nl > p && nl[-1] == '\r')
        nl[-1] = '\0';
    b->ncols = 1;
    for (char *q = p; *q; q++)
        b->ncols += *q == '\t';
    b->col_names = calloc(b->ncols, sizeof *b->col_names);
    if (!b->col_names)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    for (size_t c = 0; c < b->ncols; c++) {
        b->col_names[c] = p;
        char *t = strchr(p, '\t');
        if (t) {
            *t = '\0';
            p = t + 1;
        }
    }
    if (strcmp(b->col_names[0], "id") != 0)
        return recd_err_set(err, RECD_EINVAL,
                            "items.tsv: the first column must be \"id\", got \"%s\"",
                            b->col_names[0]);
    b->cells = calloc(b->n_items * b->ncols + 1, sizeof *b->cells);
    b->popularity = calloc(b->n_items + 1, sizeof *b->popularity);
    b->by_popularity = calloc(b->n_items + 1, sizeof *b->by_popularity);
    b->id_hash_cap = pow2_at_least(b->n_items * 2 + 1);
    b->id_hash = calloc(b->id_hash_cap, sizeof *b->id_hash);
    if (!b->cells || !b->popularity || !b->by_popularity || !b->id_hash)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    int popcol = -1;
    for (size_t c = 0; c < b->ncols; c++)
        if (strcmp(b->col_names[c], "popularity") == 0)
            popcol = (int)c;
    p = nl + 1;
    size_t row = 0;
    while (p < end) {
        char *e = memchr(p, '\n', (size_t)(end - p));
        char *lend = e ? e : end;
        if (lend == p && !e)
            break;
        if (row >= b->n_items)
            return recd_err_set(err, RECD_EINVAL, "items.tsv: more than n_items = %zu rows",
                                b->n_items);
        if (lend > p && lend[-1] == '\r')
            lend[-1] = '\0';
        *lend = '\0';
        size_t c = 0;
        char *q = p;
        for (;;) {
            if (c >= b->ncols)
                return recd_err_set(err, RECD_EINVAL, "items.tsv: line %zu: more than %zu columns",
                                    row + 2, b->ncols);
            b->cells[row * b->ncols + c++] = q;
            char *t = strchr(q, '\t');
            if (!t)
                break;
            *t = '\0';
            q = t + 1;
        }
        if (c != b->ncols)
            return recd_err_set(err, RECD_EINVAL, "items.tsv: line %zu: %zu columns, expected %zu",
                                row + 2, c, b->ncols);
        const char *id = b->cells[row * b->ncols];
        size_t idlen = strlen(id);
        if (idlen == 0)
            return recd_err_set(err, RECD_EINVAL, "items.tsv: line %zu: empty id", row + 2);
        size_t mask = b->id_hash_cap - 1;
        size_t h = (size_t)recd_fnv1a64(RECD_FNV1A64_INIT, id, idlen) & mask;
        while (b->id_hash[h]) {
            const char *o = b->cells[(b->id_hash[h] - 1) * b->ncols];
            if (strcmp(o, id) == 0)
                return recd_err_set(err, RECD_EINVAL, "items.tsv: line %zu: duplicate id \"%s\"",
                                    row + 2, id);
            h = (h + 1) & mask;
        }
        b->id_hash[h] = row + 1;
        if (popcol >= 0) {
            char *ep;
            double v = strtod(b->cells[row * b->ncols + (size_t)popcol], &ep);
            if (*ep || !isfinite(v))
                return recd_err_set(err, RECD_EINVAL,
                                    "items.tsv: line %zu: popularity is not a number", row + 2);
            b->popularity[row] = v;
        }
        b->by_popularity[row] = (uint32_t)row;
        row++;
        p = e ? e + 1 : end;
    }
    if (row != b->n_items)
        return recd_err_set(err, RECD_EINVAL, "items.tsv: %zu rows, manifest n_items = %zu", row,
                            b->n_items);
    qsort_r(b->by_popularity, b->n_items, sizeof *b->by_popularity, cmp_pop, b->popularity);
    return 0;
}

/* ---- checksums ----------------------------------------------------------------------------------
 */

static int check_files(recd_bundle_t *b, json_t *m, recd_err_t *err)
{
    json_t *files = jreq(m, "files", "", err);
    if (!files)
        return RECD_EINVAL;
    if (!json_is_object(files))
        return recd_err_set(err, RECD_EINVAL, "manifest.json: files: expected an object");
    static const char *const required[] = {"tensors.bin", "items.tsv"};
    for (size_t i = 0; i < 2; i++)
        if (!json_object_get(files, required[i]))
            return recd_err_set(err, RECD_EINVAL, "manifest.json: files: %s is not listed",
                                required[i]);
    const char *fname;
    json_t *f;
    json_object_foreach (files, fname, f) {
        if (!*fname || strchr(fname, '/') || strcmp(fname, "..") == 0 ||
            strcmp(fname, "manifest.json") == 0)
            return recd_err_set(err, RECD_EINVAL, "manifest.json: files: bad file name \"%s\"",
                                fname);
        const char *want_hex = json_string_value(json_object_get(f, "sha256"));
        json_t *wb = json_object_get(f, "bytes");
        if (!want_hex || strlen(want_hex) != 64)
            return recd_err_set(err, RECD_EINVAL,
                                "manifest.json: files.%s.sha256: missing or malformed", fname);
        char path[4096], hex[65];
        uint64_t bytes = 0;
        snprintf(path, sizeof path, "%s/%s", b->dir, fname);
        if (sha256_file(path, hex, &bytes, err) < 0)
            return RECD_EIO;
        if (json_is_integer(wb) && (uint64_t)json_integer_value(wb) != bytes)
            return recd_err_set(err, RECD_EINVAL, "%s: %llu bytes, manifest says %lld (truncated?)",
                                fname, (unsigned long long)bytes,
                                (long long)json_integer_value(wb));
        if (strcasecmp(hex, want_hex) != 0)
            return recd_err_set(err, RECD_EINVAL, "%s: SHA-256 mismatch (file %s, manifest %s)",
                                fname, hex, want_hex);
    }
    return 0;
}

/* ---- ANN
 * ------------------------------------------------------------------------------------------ */

static int setup_ann(recd_bundle_t *b, json_t *m, const recd_model_opts_t *o, recd_err_t *err)
{
    json_t *a = jreq(m, "ann", "", err);
    if (!a)
        return RECD_EINVAL;
    const char *metric = json_string_value(json_object_get(a, "metric"));
    if (metric && strcmp(metric, "inner_product") != 0)
        return recd_err_set(err, RECD_EINVAL, "manifest.json: ann.metric: only inner_product");
    const char *vec = json_string_value(json_object_get(a, "vectors"));
    if (vec && strcmp(vec, b->item_emb->name) != 0)
        return recd_err_set(err, RECD_EINVAL,
                            "manifest.json: ann.vectors: \"%s\" is not the item embedding", vec);
    json_t *d = json_object_get(a, "dim");
    if (d && (!json_is_integer(d) || (size_t)json_integer_value(d) != b->dim))
        return recd_err_set(err, RECD_EINVAL,
                            "manifest.json: ann.dim does not match candidate.dim");
    const char *factory = jstr(a, "factory", "ann", err);
    if (!factory)
        return RECD_EINVAL;
    recd_err_t perr;
    if (recd_ann_spec_parse(factory, &b->ann_spec, &perr) < 0)
        return recd_err_set(err, RECD_EINVAL, "manifest.json: ann.factory: %s", perr.msg);
    json_t *v;
    if ((v = json_object_get(a, "nprobe")) && json_is_integer(v) && json_integer_value(v) > 0)
        b->ann_spec.nprobe = (int)json_integer_value(v);
    if ((v = json_object_get(a, "efSearch")) && json_is_integer(v) && json_integer_value(v) > 0)
        b->ann_spec.ef_search = (int)json_integer_value(v);
    if ((v = json_object_get(a, "kmeans_seed")) && json_is_integer(v))
        b->ann_spec.kmeans_seed = (uint64_t)json_integer_value(v);
    int overridden = 0;
    if (o && o->ann_factory && *o->ann_factory && strcmp(o->ann_factory, factory) != 0) {
        recd_ann_spec_t s2;
        if (recd_ann_spec_parse(o->ann_factory, &s2, &perr) < 0)
            return recd_err_set(err, RECD_EINVAL, "ann.factory: %s", perr.msg);
        s2.kmeans_seed = b->ann_spec.kmeans_seed;
        b->ann_spec = s2;
        overridden = 1;
    }
    if (o && o->nprobe > 0)
        b->ann_spec.nprobe = o->nprobe;
    if (o && o->ef_search > 0)
        b->ann_spec.ef_search = o->ef_search;
    const char *file = json_string_value(json_object_get(a, "file"));
    uint64_t t0 = recd_time_mono_us();
    if (file && !overridden && (!o || o->use_index_file)) {
        if (strchr(file, '/'))
            return recd_err_set(err, RECD_EINVAL, "manifest.json: ann.file: bad file name");
        if (!json_object_get(json_object_get(m, "files"), file))
            return recd_err_set(err, RECD_EINVAL, "manifest.json: files: %s is not listed", file);
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", b->dir, file);
        b->ann = recd_ann_load(path, &b->ann_spec, b->n_items, b->dim, err);
        if (!b->ann)
            return RECD_EINVAL;
        b->ann_from_file = 1;
    } else {
        b->ann = recd_ann_build(&b->ann_spec, b->item_emb->data, b->n_items, b->dim, err);
        if (!b->ann)
            return RECD_EINVAL;
    }
    b->ann_build_us = recd_time_mono_us() - t0;
    return 0;
}

/* ---- load / free
 * --------------------------------------------------------------------------------- */

static void bundle_free(recd_bundle_t *b)
{
    if (!b)
        return;
    if (b->ranker && b->ranker_free)
        b->ranker_free(b->ranker);
    recd_content_free(b->content);
    if (b->ann)
        recd_ann_free(b->ann);
    if (b->map)
        munmap(b->map, b->map_len);
    if (b->overlay)
        recd_overlay_release(b->overlay);
    if (b->overlay_lock) {
        pthread_mutex_destroy(b->overlay_lock);
        free(b->overlay_lock);
    }
    if (b->writer_lock) {
        pthread_mutex_destroy(b->writer_lock);
        free(b->writer_lock);
    }
    for (size_t i = 0; b->features && i < b->nfeatures; i++) {
        free(b->features[i].name);
        free(b->features[i].boundaries);
        free(b->features[i].column);
    }
    for (size_t i = 0; b->item_fields && i < b->nfeatures; i++) {
        free(b->item_fields[i].off);
        free(b->item_fields[i].buckets);
        free(b->item_fields[i].texts);
        free(b->item_fields[i].tlen);
        free(b->item_fields[i].text_pool);
    }
    free(b->item_fields);
    free(b->features);
    free(b->tensors);
    free(b->inputs);
    free(b->tower);
    free(b->items_text);
    free(b->col_names);
    free(b->cells);
    free(b->popularity);
    free(b->by_popularity);
    free(b->id_hash);
    free(b->name);
    free(b->dir);
    free(b->created);
    json_decref(b->manifest);
    free(b);
}

void recd_bundle_unref(recd_bundle_t *b)
{
    if (b && atomic_fetch_sub(&b->refs, 1) == 1)
        bundle_free(b);
}

/* Prefix err's message with the bundle directory. */
static recd_bundle_t *fail(recd_bundle_t *b, const char *dir, recd_err_t *err)
{
    if (err && strncmp(err->msg, dir, strlen(dir)) != 0) {
        char msg[sizeof err->msg + 4200];
        snprintf(msg, sizeof msg, "%s: %s", dir, err->msg);
        size_t n = strlen(msg); /* truncation of very long paths is fine */
        if (n >= sizeof err->msg)
            n = sizeof err->msg - 1;
        memcpy(err->msg, msg, n);
        err->msg[n] = '\0';
    }
    if (err && !err->code)
        err->code = RECD_EINVAL;
    bundle_free(b);
    return NULL;
}

recd_bundle_t *recd_bundle_load(const char *dir, const recd_model_opts_t *opts, recd_err_t *err)
{
    uint64_t t0 = recd_time_mono_us();
    recd_err_t local;
    if (!err)
        err = &local;
    err->code = 0;
    recd_bundle_t *b = calloc(1, sizeof *b);
    if (!b) {
        recd_err_set(err, RECD_ENOMEM, "out of memory");
        return NULL;
    }
    atomic_init(&b->refs, 1);
    b->dir = strdup(dir);
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    char *text;
    size_t len;
    if (!b->dir || read_file(path, MAX_MANIFEST_BYTES, &text, &len, err) < 0)
        return fail(b, dir, err);
    json_error_t je;
    b->manifest = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (!b->manifest || !json_is_object(b->manifest)) {
        recd_err_set(err, RECD_EINVAL, "manifest.json: line %d, column %d: %s", je.line, je.column,
                     b->manifest ? "the top level must be an object" : je.text);
        return fail(b, dir, err);
    }
    json_t *m = b->manifest;
    const char *format = jstr(m, "format", "", err);
    if (!format)
        return fail(b, dir, err);
    if (strcmp(format, RECD_BUNDLE_FORMAT) != 0) {
        recd_err_set(err, RECD_EINVAL, "manifest.json: format \"%s\", expected \"%s\"", format,
                     RECD_BUNDLE_FORMAT);
        return fail(b, dir, err);
    }
    const char *name = jstr(m, "name", "", err);
    int64_t nitems;
    if (!name || jint(m, "version", "", 1, INT64_MAX, &b->version, err) < 0 ||
        jint(m, "n_items", "", 1, 1LL << 31, &nitems, err) < 0)
        return fail(b, dir, err);
    b->name = strdup(name);
    b->n_items = (size_t)nitems;
    json_t *cr = json_object_get(m, "created");
    b->created = strdup(json_is_string(cr) ? json_string_value(cr) : "");
    /* the directory is <name>/<version> */
    const char *base = strrchr(dir, '/');
    base = base ? base + 1 : dir;
    char vbuf[32];
    snprintf(vbuf, sizeof vbuf, "%lld", (long long)b->version);
    if (strcmp(base, vbuf) != 0) {
        recd_err_set(err, RECD_EINVAL,
                     "manifest.json: version %lld does not match directory \"%s\"",
                     (long long)b->version, base);
        return fail(b, dir, err);
    }
    if (check_files(b, m, err) < 0 || load_tensors(b, m, err) < 0 || load_items(b, err) < 0 ||
        parse_features(b, m, err) < 0 || hash_item_fields(b, err) < 0 ||
        parse_candidate(b, m, err) < 0 || check_ranker(b, m, err) < 0 ||
        parse_content(b, m, err) < 0 || setup_ann(b, m, opts, err) < 0)
        return fail(b, dir, err);
    b->overlay_lock = malloc(sizeof(pthread_mutex_t));
    b->writer_lock = malloc(sizeof(pthread_mutex_t));
    b->overlay = recd_overlay_new_empty(b->n_items);
    if (!b->overlay_lock || !b->writer_lock || !b->overlay) {
        free(b->overlay_lock);
        free(b->writer_lock);
        b->overlay_lock = b->writer_lock = NULL;
        recd_err_set(err, RECD_ENOMEM, "out of memory");
        return fail(b, dir, err);
    }
    pthread_mutex_init(b->overlay_lock, NULL);
    pthread_mutex_init(b->writer_lock, NULL);
    if (opts && opts->attach && opts->attach(b, err) < 0)
        return fail(b, dir, err);
    /* items.tsv text was counted by load_items; the manifest is small */
    b->bytes += b->map_len + recd_ann_bytes(b->ann) +
                b->n_items * (b->ncols * sizeof(char *) + sizeof(double) + sizeof(uint32_t)) +
                b->id_hash_cap * sizeof(uint64_t);
    for (size_t i = 0; i < b->nfeatures; i++)
        if (b->item_fields[i].off)
            b->bytes += (b->n_items + 1) * sizeof(uint32_t) +
                        b->item_fields[i].off[b->n_items] *
                            (sizeof(uint64_t) + sizeof(char *) + sizeof(uint32_t)) +
                        (b->item_fields[i].text_pool ? b->item_fields[i].off[b->n_items] * 21 : 0);
    b->load_us = recd_time_mono_us() - t0;
    return b;
}
