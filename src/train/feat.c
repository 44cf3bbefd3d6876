/* The trainer's feature schema: which fields a dataset gives the models,
 * and every value hashed once (BUNDLE.md: FNV-1a-64 of "<field>\x1f<text>"
 * mod buckets; bucketized numbers become the decimal bucket index first). */
#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "recd/model.h"

/* ---- a chunked string pool ---------------------------------------------------- */
typedef struct pool_chunk {
    struct pool_chunk *next;
    size_t used, cap;
    char data[];
} pool_chunk_t;

static char *pool_dup(void **pool, const char *s, size_t len)
{
    pool_chunk_t *c = *pool;
    if (!c || c->cap - c->used < len + 1) {
        size_t cap = len + 1 > (1u << 20) ? len + 1 : (1u << 20);
        pool_chunk_t *n = malloc(sizeof *n + cap);
        if (!n)
            return NULL;
        n->next = c;
        n->used = 0;
        n->cap = cap;
        *pool = c = n;
    }
    char *d = c->data + c->used;
    memcpy(d, s, len);
    d[len] = '\0';
    c->used += len + 1;
    return d;
}

static void pool_free(void *pool)
{
    for (pool_chunk_t *c = pool, *n; c; c = n) {
        n = c->next;
        free(c);
    }
}

/* ---- hashing ---------------------------------------------------------------------- */

uint32_t tf_bucket(const tf_field_t *f, const char *text)
{
    return (uint32_t)recd_feature_bucket(f->name, strlen(f->name), text, strlen(text), f->buckets);
}

static size_t bisect(const tf_field_t *f, double v)
{
    size_t lo = 0, hi = f->nbounds;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (f->bounds[mid] <= v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int tf_field_index(const tf_schema_t *s, const char *name)
{
    for (size_t i = 0; i < s->nf; i++)
        if (strcmp(s->f[i].name, name) == 0)
            return (int)i;
    return -1;
}

static uint64_t pow2_at_least(uint64_t n, uint64_t lo)
{
    uint64_t p = lo;
    while (p < n)
        p *= 2;
    return p;
}

/* Hash space of an id field: sparse (`spread` buckets per id, at least
 * 4096) while that stays small, so that an id never seen in training (a
 * new user, at serving time or in the time-ordered test set) usually lands
 * in an untrained bucket rather than sharing a trained one with another
 * id; 2 buckets per id for large populations. */
static uint64_t id_buckets(size_t n, uint64_t spread)
{
    uint64_t b = pow2_at_least(spread * n, 4096);
    return b <= (1u << 18) ? b : pow2_at_least(2 * n, 1u << 18);
}

static tf_field_t *add_field(tf_schema_t *s, const char *name, tf_src_t src, uint64_t buckets)
{
    if (s->nf == TF_MAX_FIELDS)
        return NULL;
    tf_field_t *f = &s->f[s->nf++];
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    f->source = src;
    f->buckets = buckets;
    return f;
}

/* Hash the cells (one per row; multi-valued split on '|') of a field. */
static int hash_cells(tf_schema_t *s, tf_field_t *f, const char *const *cells, size_t stride,
                      size_t rows, recd_err_t *err)
{
    size_t total = 0;
    for (size_t r = 0; r < rows; r++) {
        const char *c = cells ? cells[r * stride] : "";
        size_t n = 1;
        if (f->multi)
            for (const char *p = c; *p; p++)
                n += *p == '|';
        total += n;
    }
    if (total > UINT32_MAX)
        return recd_err_set(err, RECD_EINVAL, "field %s: too many values", f->name);
    f->v.off = malloc((rows + 1) * sizeof *f->v.off);
    f->v.ids = malloc((total ? total : 1) * sizeof *f->v.ids);
    f->v.txt = malloc((total ? total : 1) * sizeof *f->v.txt);
    if (!f->v.off || !f->v.ids || !f->v.txt)
        return recd_err_set(err, RECD_ENOMEM, "out of memory (field %s)", f->name);
    size_t k = 0;
    char num[64];
    for (size_t r = 0; r < rows; r++) {
        f->v.off[r] = (uint32_t)k;
        const char *p = cells ? cells[r * stride] : "";
        for (;;) {
            const char *e = f->multi ? strchr(p, '|') : NULL;
            size_t len = e ? (size_t)(e - p) : strlen(p);
            const char *t;
            if (f->bucketized && len) {
                char *end;
                double v = NAN;
                if (len < sizeof num) {
                    memcpy(num, p, len);
                    num[len] = '\0';
                    v = strtod(num, &end);
                    if (*end)
                        v = NAN;
                }
                if (!isfinite(v)) {
                    t = ""; /* not a number: treated as missing */
                } else {
                    snprintf(num, sizeof num, "%zu", bisect(f, v));
                    t = pool_dup(&s->pool, num, strlen(num));
                }
            } else {
                /* the last value of a cell ends where the cell does: borrow it */
                t = e ? NULL : p;
            }
            if (!t)
                t = pool_dup(&s->pool, p, len);
            if (!t)
                return recd_err_set(err, RECD_ENOMEM, "out of memory (field %s)", f->name);
            f->v.txt[k] = t;
            f->v.ids[k] = tf_bucket(f, t);
            k++;
            if (!e)
                break;
            p = e + 1;
        }
    }
    f->v.off[rows] = (uint32_t)k;
    return 0;
}

/* Title words: lowercase ASCII letters and digits (other bytes >= 0x80 kept
 * as part of a word), split on everything else; words of one character
 * dropped; each word once, in order. */
static char *title_words(void **pool, const char *title)
{
    char buf[1024];
    size_t n = 0;
    const char *p = title;
    while (*p && n + 2 < sizeof buf) {
        while (*p && !(isalnum((unsigned char)*p) || (unsigned char)*p >= 0x80))
            p++;
        const char *w = p;
        while (*p && (isalnum((unsigned char)*p) || (unsigned char)*p >= 0x80))
            p++;
        size_t len = (size_t)(p - w);
        if (len < 2 || n + len + 2 >= sizeof buf)
            continue;
        char word[256];
        if (len >= sizeof word)
            len = sizeof word - 1;
        for (size_t i = 0; i < len; i++)
            word[i] = (char)tolower((unsigned char)w[i]);
        word[len] = '\0';
        /* once per title */
        int dup = 0;
        for (const char *q = buf; q < buf + n && !dup;) {
            const char *bar = memchr(q, '|', (size_t)(buf + n - q));
            size_t ql = bar ? (size_t)(bar - q) : (size_t)(buf + n - q);
            dup = ql == len && memcmp(q, word, len) == 0;
            q += ql + 1;
        }
        if (dup)
            continue;
        if (n)
            buf[n++] = '|';
        memcpy(buf + n, word, len);
        n += len;
    }
    return pool_dup(pool, buf, n);
}

int tf_schema_build(tf_schema_t *s, const recd_dataset_t *ds, recd_err_t *err)
{
    memset(s, 0, sizeof *s);
    s->user_id = s->item_id = -1;
    const recd_table_t *U = &ds->users, *I = &ds->items;
    int rc;
    /* user fields */
    tf_field_t *f = add_field(s, "user_id", TF_SRC_USER, id_buckets(U->nrows, 16));
    f->uses_cand = f->uses_rank = 1;
    s->user_id = 0;
    if ((rc = hash_cells(s, f, (const char *const *)U->cells, U->ncols, U->nrows, err)) != 0)
        goto fail;
    for (size_t c = 1; c < U->ncols; c++) {
        const char *name = U->names[c];
        if (strcmp(name, "zip") == 0 || tf_field_index(s, name) >= 0)
            continue; /* identifying, not a feature; or a duplicate name */
        if (strcmp(name, "age") == 0) {
            f = add_field(s, name, TF_SRC_USER, 16);
            if (!f)
                break;
            static const double b[] = {18, 25, 35, 45, 50, 56};
            memcpy(f->bounds, b, sizeof b);
            f->nbounds = 6;
            f->bucketized = 1;
        } else {
            f = add_field(s, name, TF_SRC_USER, 64);
            if (!f)
                break;
        }
        f->uses_cand = f->uses_rank = 1;
        if ((rc = hash_cells(s, f, (const char *const *)U->cells + c, U->ncols, U->nrows, err)))
            goto fail;
    }
    /* item fields */
    f = add_field(s, "item_id", TF_SRC_ITEM, id_buckets(I->nrows, 8));
    if (!f) {
        rc = recd_err_set(err, RECD_EINVAL, "too many user columns (at most %d fields)",
                          TF_MAX_FIELDS - 6);
        goto fail;
    }
    snprintf(f->column, sizeof f->column, "id");
    f->uses_rank = 1;
    s->item_id = (int)s->nf - 1;
    if ((rc = hash_cells(s, f, (const char *const *)I->cells, I->ncols, I->nrows, err)) != 0)
        goto fail;
    int gc = recd_table_col(I, "genres"), yc = recd_table_col(I, "year");
    int tc = recd_table_col(I, "tags"), ttl = recd_table_col(I, "title");
    if (gc > 0 && (f = add_field(s, "genres", TF_SRC_ITEM, 64))) {
        snprintf(f->column, sizeof f->column, "genres");
        f->multi = 1;
        f->uses_rank = f->uses_content = 1;
        if ((rc = hash_cells(s, f, (const char *const *)I->cells + gc, I->ncols, I->nrows, err)))
            goto fail;
    }
    if (yc > 0 && (f = add_field(s, "year", TF_SRC_ITEM, 32))) {
        snprintf(f->column, sizeof f->column, "year");
        for (int i = 0; i < 9; i++)
            f->bounds[i] = 1940 + 10 * i;
        f->nbounds = 9;
        f->bucketized = 1;
        f->uses_rank = f->uses_content = 1;
        if ((rc = hash_cells(s, f, (const char *const *)I->cells + yc, I->ncols, I->nrows, err)))
            goto fail;
    }
    if (ttl > 0 && (f = add_field(s, "title_words", TF_SRC_ITEM, 16384))) {
        snprintf(f->column, sizeof f->column, "title_words");
        f->multi = 1;
        f->uses_content = 1;
        s->title_words = malloc((I->nrows ? I->nrows : 1) * sizeof *s->title_words);
        if (!s->title_words) {
            rc = recd_err_set(err, RECD_ENOMEM, "out of memory (title words)");
            goto fail;
        }
        for (size_t i = 0; i < I->nrows; i++)
            if (!(s->title_words[i] = title_words(&s->pool, I->cells[i * I->ncols + ttl]))) {
                rc = recd_err_set(err, RECD_ENOMEM, "out of memory (title words)");
                goto fail;
            }
        if ((rc = hash_cells(s, f, (const char *const *)s->title_words, 1, I->nrows, err)))
            goto fail;
    }
    if (tc > 0 && (f = add_field(s, "tags", TF_SRC_ITEM, 4096))) {
        snprintf(f->column, sizeof f->column, "tags");
        f->multi = 1;
        f->uses_content = 1;
        if ((rc = hash_cells(s, f, (const char *const *)I->cells + tc, I->ncols, I->nrows, err)))
            goto fail;
    }
    /* context fields: one per context column of the events */
    for (size_t c = 0; c < ds->nctx; c++) {
        if (tf_field_index(s, ds->ctx_names[c]) >= 0)
            continue;
        f = add_field(s, ds->ctx_names[c], TF_SRC_CONTEXT, 16);
        if (!f)
            break;
        f->uses_rank = 1;
        if ((rc = hash_cells(s, f, (const char *const *)ds->ctx + c, ds->nctx, ds->nevents, err)))
            goto fail;
    }
    return 0;
fail:
    tf_schema_free(s);
    return rc;
}

/* Is `name` among the "name"s of the array `list` (a manifest field list)? */
static int listed(const json_t *list, const char *name)
{
    size_t i;
    const json_t *v;
    json_array_foreach (list, i, v) {
        const char *n = json_string_value(json_object_get(v, "name"));
        if (n && strcmp(n, name) == 0)
            return 1;
    }
    return 0;
}

int tf_schema_build_like(tf_schema_t *s, const recd_dataset_t *ds, const json_t *man,
                         recd_err_t *err)
{
    memset(s, 0, sizeof *s);
    s->user_id = s->item_id = -1;
    const recd_table_t *U = &ds->users, *I = &ds->items;
    const json_t *fields = json_object_get(json_object_get(man, "features"), "fields");
    const json_t *cand = json_object_get(json_object_get(man, "candidate"), "fields");
    const json_t *rank = json_object_get(json_object_get(man, "ranker"), "fields");
    const json_t *content = json_object_get(json_object_get(man, "content"), "fields");
    if (!json_is_array(fields) || json_array_size(fields) == 0)
        return recd_err_set(err, RECD_EINVAL, "warm start: the manifest has no features.fields");
    if (json_array_size(fields) > TF_MAX_FIELDS)
        return recd_err_set(err, RECD_EINVAL, "warm start: %zu feature fields (at most %d)",
                            json_array_size(fields), TF_MAX_FIELDS);
    int rc = 0;
    size_t i;
    const json_t *jf;
    json_array_foreach (fields, i, jf) {
        const char *name = json_string_value(json_object_get(jf, "name"));
        const char *src = json_string_value(json_object_get(jf, "source"));
        const char *type = json_string_value(json_object_get(jf, "type"));
        const char *column = json_string_value(json_object_get(jf, "column"));
        json_int_t buckets = json_integer_value(json_object_get(jf, "buckets"));
        const json_t *bounds = json_object_get(jf, "boundaries");
        tf_src_t source = !src                          ? (tf_src_t)-1
                          : strcmp(src, "user") == 0    ? TF_SRC_USER
                          : strcmp(src, "item") == 0    ? TF_SRC_ITEM
                          : strcmp(src, "context") == 0 ? TF_SRC_CONTEXT
                                                        : (tf_src_t)-1;
        if (!name || !*name || strlen(name) >= sizeof s->f[0].name || (int)source < 0 ||
            buckets < 1 || buckets > (json_int_t)UINT32_MAX + 1 ||
            (source == TF_SRC_ITEM && (!column || strlen(column) >= sizeof s->f[0].column))) {
            rc = recd_err_set(err, RECD_EINVAL, "warm start: features.fields[%zu] is malformed", i);
            goto fail;
        }
        tf_field_t *f = add_field(s, name, source, (uint64_t)buckets);
        f->multi = json_is_true(json_object_get(jf, "multi_valued"));
        if (type && strcmp(type, "bucketized") == 0) {
            if (!json_is_array(bounds) || json_array_size(bounds) > 16) {
                rc = recd_err_set(err, RECD_EINVAL,
                                  "warm start: field %s: boundaries missing or more than 16", name);
                goto fail;
            }
            f->bucketized = 1;
            f->nbounds = json_array_size(bounds);
            for (size_t k = 0; k < f->nbounds; k++)
                f->bounds[k] = json_number_value(json_array_get(bounds, k));
        }
        if (column)
            snprintf(f->column, sizeof f->column, "%s", column);
        f->uses_cand = source == TF_SRC_USER && listed(cand, name);
        f->uses_rank = listed(rank, name);
        f->uses_content = source == TF_SRC_ITEM && listed(content, name);
        /* the values: a column of the dataset, or missing */
        const char *const *cells = NULL;
        size_t stride = 1, rows = 0;
        if (source == TF_SRC_USER) {
            int c = strcmp(name, "user_id") == 0 ? 0 : recd_table_col(U, name);
            if (c == 0)
                s->user_id = (int)s->nf - 1;
            if (c >= 0)
                cells = (const char *const *)U->cells + c;
            stride = U->ncols;
            rows = U->nrows;
        } else if (source == TF_SRC_ITEM) {
            int c = recd_table_col(I, column);
            if (strcmp(name, "item_id") == 0)
                s->item_id = (int)s->nf - 1;
            stride = I->ncols;
            rows = I->nrows;
            int ttl = recd_table_col(I, "title");
            if (strcmp(column, "title_words") == 0 && (ttl > 0 || c > 0)) {
                /* derived from the titles as tf_schema_build does (items.tsv
                 * is then written with them), else the column as given */
                s->title_words = malloc((rows ? rows : 1) * sizeof *s->title_words);
                if (!s->title_words) {
                    rc = recd_err_set(err, RECD_ENOMEM, "out of memory (title words)");
                    goto fail;
                }
                for (size_t r = 0; r < rows; r++) {
                    s->title_words[r] =
                        ttl > 0 ? title_words(&s->pool, I->cells[r * I->ncols + (size_t)ttl])
                                : I->cells[r * I->ncols + (size_t)c];
                    if (!s->title_words[r]) {
                        rc = recd_err_set(err, RECD_ENOMEM, "out of memory (title words)");
                        goto fail;
                    }
                }
                cells = (const char *const *)s->title_words;
                stride = 1;
            } else if (c >= 0) {
                cells = (const char *const *)I->cells + c;
            }
        } else {
            for (size_t c = 0; c < ds->nctx && !cells; c++)
                if (strcmp(ds->ctx_names[c], name) == 0)
                    cells = (const char *const *)ds->ctx + c;
            stride = ds->nctx;
            rows = ds->nevents;
        }
        if ((rc = hash_cells(s, f, cells, stride, rows, err)) != 0)
            goto fail;
    }
    return 0;
fail:
    tf_schema_free(s);
    return rc;
}

void tf_schema_free(tf_schema_t *s)
{
    for (size_t i = 0; i < s->nf; i++) {
        free(s->f[i].v.off);
        free(s->f[i].v.ids);
        free(s->f[i].v.txt);
    }
    free(s->title_words);
    pool_free(s->pool);
    memset(s, 0, sizeof *s);
}

json_t *tf_schema_json(const tf_schema_t *s)
{
    static const char *const SRC[] = {"user", "item", "context"};
    json_t *fields = json_array();
    for (size_t i = 0; fields && i < s->nf; i++) {
        const tf_field_t *f = &s->f[i];
        json_t *o = json_pack("{s:s, s:s, s:s, s:I}", "name", f->name, "source", SRC[f->source],
                              "type", f->bucketized ? "bucketized" : "categorical", "buckets",
                              (json_int_t)f->buckets);
        if (!o)
            goto oom;
        if (f->bucketized) {
            json_t *b = json_array();
            for (size_t k = 0; b && k < f->nbounds; k++)
                json_array_append_new(b, f->bounds[k] == floor(f->bounds[k]) && fabs(f->bounds[k]) < 1e15
                                              ? json_integer((json_int_t)f->bounds[k])
                                              : json_real(f->bounds[k]));
            json_object_set_new(o, "boundaries", b);
        }
        if (f->multi)
            json_object_set_new(o, "multi_valued", json_true());
        if (f->source == TF_SRC_ITEM)
            json_object_set_new(o, "column", json_string(f->column));
        json_array_append_new(fields, o);
    }
    return json_pack("{s:s, s:s, s:s, s:o}", "hash", "fnv1a64", "separator", "\x1f", "missing", "",
                     "fields", fields);
oom:
    json_decref(fields);
    return NULL;
}

int tf_put(struct recd_bundle_writer *w, const char *name, const float *data, int64_t d0,
           int64_t d1, recd_err_t *err)
{
    int64_t shape[2] = {d0, d1};
    return recd_bundle_writer_tensor(w, name, data, d1 > 0 ? 2 : 1, shape, err);
}

void tf_field_mean(const tf_field_t *f, uint32_t row, const float *table, size_t k, float *out)
{
    uint32_t a = f->v.off[row], b = f->v.off[row + 1];
    float inv = 1.0f / (float)(b - a);
    for (uint32_t i = a; i < b; i++)
        recd_nn_axpy(k, inv, table + (size_t)f->v.ids[i] * k, out);
}

void tf_field_scatter(const tf_field_t *f, uint32_t row, recd_param_t *p, size_t k,
                      const float *g)
{
    uint32_t a = f->v.off[row], b = f->v.off[row + 1];
    float inv = 1.0f / (float)(b - a);
    for (uint32_t i = a; i < b; i++)
        recd_nn_axpy(k, inv, g, recd_param_row_grad(p, f->v.ids[i]));
}
