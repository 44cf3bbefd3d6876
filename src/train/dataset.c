/*
 * Datasets (recd-dataset/1, include/recd/dataset.h): memory layout, the
 * building functions, loading with full validation, and atomic saving.
 *
 * Memory: every string (cells, names, context values) lives in a pool of
 * large blocks owned by the dataset, so a table costs one pointer per cell
 * plus the text, and 10M events cost 24 bytes each plus one pointer per
 * context cell (context values are interned: "mobile" is stored once).
 * Id lookups go through open-addressing hash tables of row numbers keyed by
 * FNV-1a of the id.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "recd/dataset.h"

/* ---- event types ---------------------------------------------------------------------- */

static const char *const EV_NAMES[RECD_EV_NTYPES] = {"rating", "click", "watch", "purchase",
                                                     "impression"};

const char *recd_ev_type_name(recd_ev_type_t t)
{
    return (unsigned)t < RECD_EV_NTYPES ? EV_NAMES[t] : NULL;
}

int recd_ev_type_parse(const char *s, size_t len)
{
    for (int i = 0; i < RECD_EV_NTYPES; i++)
        if (strlen(EV_NAMES[i]) == len && memcmp(EV_NAMES[i], s, len) == 0)
            return i;
    return -1;
}

/* ---- storage ---------------------------------------------------------------------------- */

#define POOL_BLOCK (1u << 20)

typedef struct pool_blk {
    struct pool_blk *next;
    size_t cap, used;
    char data[];
} pool_blk_t;

/* Row index: slots hold row + 1 (0 = empty); capacity a power of two, at
 * most half full. */
typedef struct idx {
    uint32_t *slots;
    size_t cap;
} idx_t;

typedef struct ds_priv {
    pool_blk_t *pool;
    idx_t item_idx, user_idx;
    size_t item_rows_cap, user_rows_cap; /* rows the cells arrays can hold */
    size_t ev_cap;                       /* events the events / ctx arrays can hold */
    char **intern;                       /* context value set (open addressing) */
    size_t intern_cap, intern_n;
} ds_priv_t;

static ds_priv_t *P(const recd_dataset_t *ds)
{
    return (ds_priv_t *)ds->priv;
}

/* n bytes from the pool (no alignment: text only). */
static char *pool_alloc(ds_priv_t *p, size_t n)
{
    pool_blk_t *b = p->pool;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > POOL_BLOCK / 4 ? n : POOL_BLOCK;
        pool_blk_t *nb = malloc(sizeof *nb + cap);
        if (!nb)
            return NULL;
        nb->cap = cap;
        nb->used = 0;
        if (cap == n && b) {
            /* a large one-off: keep the current block as the head */
            nb->next = b->next;
            b->next = nb;
            nb->used = n;
            return nb->data;
        }
        nb->next = b;
        p->pool = b = nb;
    }
    char *s = b->data + b->used;
    b->used += n;
    return s;
}

static char *pool_strndup(ds_priv_t *p, const char *s, size_t n)
{
    char *d = pool_alloc(p, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static uint64_t hash_str(const char *s)
{
    return recd_fnv1a64(RECD_FNV1A64_INIT, s, strlen(s));
}

static int64_t idx_find(const idx_t *ix, const recd_table_t *t, const char *id)
{
    if (!ix->cap)
        return -1;
    size_t mask = ix->cap - 1;
    for (size_t pos = hash_str(id) & mask;; pos = (pos + 1) & mask) {
        uint32_t v = ix->slots[pos];
        if (!v)
            return -1;
        if (strcmp(t->cells[(size_t)(v - 1) * t->ncols], id) == 0)
            return (int64_t)v - 1;
    }
}

static void idx_put_slot(idx_t *ix, const char *id, uint32_t v)
{
    size_t mask = ix->cap - 1;
    size_t pos = hash_str(id) & mask;
    while (ix->slots[pos])
        pos = (pos + 1) & mask;
    ix->slots[pos] = v;
}

/* Make room for one more row (t->nrows + 1 rows, half full at most). */
static int idx_reserve(idx_t *ix, const recd_table_t *t)
{
    size_t need = (t->nrows + 1) * 2;
    if (need <= ix->cap)
        return 0;
    size_t cap = ix->cap ? ix->cap : 64;
    while (cap < need)
        cap *= 2;
    uint32_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    free(ix->slots);
    ix->slots = slots;
    ix->cap = cap;
    for (size_t r = 0; r < t->nrows; r++)
        idx_put_slot(ix, t->cells[r * t->ncols], (uint32_t)(r + 1));
    return 0;
}

/* The interned copy of a context value. */
static char *intern(ds_priv_t *p, const char *s, size_t n)
{
    if ((p->intern_n + 1) * 2 > p->intern_cap) {
        size_t cap = p->intern_cap ? p->intern_cap * 2 : 64;
        char **tab = calloc(cap, sizeof *tab);
        if (!tab)
            return NULL;
        for (size_t i = 0; i < p->intern_cap; i++) {
            char *v = p->intern[i];
            if (!v)
                continue;
            size_t pos = hash_str(v) & (cap - 1);
            while (tab[pos])
                pos = (pos + 1) & (cap - 1);
            tab[pos] = v;
        }
        free(p->intern);
        p->intern = tab;
        p->intern_cap = cap;
    }
    size_t mask = p->intern_cap - 1;
    size_t pos = recd_fnv1a64(RECD_FNV1A64_INIT, s, n) & mask;
    for (;; pos = (pos + 1) & mask) {
        char *v = p->intern[pos];
        if (!v)
            break;
        if (strncmp(v, s, n) == 0 && v[n] == '\0')
            return v;
    }
    char *v = pool_strndup(p, s, n);
    if (!v)
        return NULL;
    p->intern[pos] = v;
    p->intern_n++;
    return v;
}

/* ---- lookups ----------------------------------------------------------------------------- */

int recd_table_col(const recd_table_t *t, const char *name)
{
    for (size_t c = 0; c < t->ncols; c++)
        if (strcmp(t->names[c], name) == 0)
            return (int)c;
    return -1;
}

int64_t recd_dataset_item_row(const recd_dataset_t *ds, const char *id)
{
    return idx_find(&P(ds)->item_idx, &ds->items, id);
}

int64_t recd_dataset_user_row(const recd_dataset_t *ds, const char *id)
{
    return idx_find(&P(ds)->user_idx, &ds->users, id);
}

/* ---- construction ------------------------------------------------------------------------- */

void recd_dataset_free(recd_dataset_t *ds)
{
    if (!ds)
        return;
    ds_priv_t *p = P(ds);
    if (p) {
        for (pool_blk_t *b = p->pool, *n; b; b = n) {
            n = b->next;
            free(b);
        }
        free(p->item_idx.slots);
        free(p->user_idx.slots);
        free(p->intern);
        free(p);
    }
    free(ds->items.names);
    free(ds->items.cells);
    free(ds->users.names);
    free(ds->users.cells);
    free(ds->events);
    free(ds->ctx_names);
    free(ds->ctx);
    free(ds->user_factors);
    free(ds->item_factors);
    free(ds->item_bias);
    free(ds);
}

/* Bytes of s that may not appear in a cell. */
static int bad_cell_char(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
            return 1;
    return 0;
}

static int set_names(ds_priv_t *p, char ***out, const char *const *names, size_t n,
                     const char *what, recd_err_t *err)
{
    *out = calloc(n ? n : 1, sizeof **out);
    if (!*out)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *s = names[i];
        if (!s || !*s || bad_cell_char(s, strlen(s)))
            return recd_err_set(err, RECD_EINVAL, "%s column %zu: empty name or tab/CR/LF in it",
                                what, i + 1);
        for (size_t j = 0; j < i; j++)
            if (strcmp(names[j], s) == 0)
                return recd_err_set(err, RECD_EINVAL, "%s column '%s' appears twice", what, s);
        if (!((*out)[i] = pool_strndup(p, s, strlen(s))))
            return recd_err_set(err, RECD_ENOMEM, "out of memory");
    }
    return 0;
}

recd_dataset_t *recd_dataset_new(const char *source, int implicit, const char *const *item_cols,
                                 size_t n_item_cols, const char *const *user_cols,
                                 size_t n_user_cols, const char *const *ctx_names, size_t nctx,
                                 recd_err_t *err)
{
    recd_dataset_t *ds = calloc(1, sizeof *ds);
    ds_priv_t *p = calloc(1, sizeof *p);
    if (!ds || !p) {
        free(ds);
        free(p);
        recd_err_set(err, RECD_ENOMEM, "out of memory");
        return NULL;
    }
    ds->priv = p;
    ds->implicit = implicit ? 1 : 0;
    if (!item_cols || !n_item_cols || !item_cols[0] || strcmp(item_cols[0], "id") != 0 ||
        !user_cols || !n_user_cols || !user_cols[0] || strcmp(user_cols[0], "id") != 0) {
        recd_err_set(err, RECD_EINVAL, "item and user columns must start with \"id\"");
        goto fail;
    }
    if (nctx && !ctx_names) {
        recd_err_set(err, RECD_EINVAL, "context column names missing");
        goto fail;
    }
    if (!(ds->source = pool_strndup(p, source ? source : "", source ? strlen(source) : 0))) {
        recd_err_set(err, RECD_ENOMEM, "out of memory");
        goto fail;
    }
    if (set_names(p, &ds->items.names, item_cols, n_item_cols, "item", err) != 0 ||
        set_names(p, &ds->users.names, user_cols, n_user_cols, "user", err) != 0 ||
        set_names(p, &ds->ctx_names, ctx_names, nctx, "context", err) != 0)
        goto fail;
    for (size_t c = 0; c < nctx; c++)
        if (strcmp(ctx_names[c], "user") == 0 || strcmp(ctx_names[c], "item") == 0 ||
            strcmp(ctx_names[c], "ts") == 0 || strcmp(ctx_names[c], "type") == 0 ||
            strcmp(ctx_names[c], "value") == 0) {
            recd_err_set(err, RECD_EINVAL, "context column '%s' clashes with an event column",
                         ctx_names[c]);
            goto fail;
        }
    ds->items.ncols = n_item_cols;
    ds->users.ncols = n_user_cols;
    ds->nctx = nctx;
    return ds;
fail:
    recd_dataset_free(ds);
    return NULL;
}

static int grow_rows(recd_table_t *t, size_t *cap)
{
    if (t->nrows < *cap)
        return 0;
    if (t->nrows >= UINT32_MAX - 1)
        return -1;
    size_t ncap = *cap ? *cap * 2 : 256;
    char **cells = realloc(t->cells, ncap * t->ncols * sizeof *cells);
    if (!cells)
        return -1;
    t->cells = cells;
    *cap = ncap;
    return 0;
}

static int64_t add_row(recd_dataset_t *ds, int user, const char *const *cells, recd_err_t *err)
{
    ds_priv_t *p = P(ds);
    recd_table_t *t = user ? &ds->users : &ds->items;
    idx_t *ix = user ? &p->user_idx : &p->item_idx;
    const char *what = user ? "user" : "item";
    const char *id = cells[0] ? cells[0] : "";
    size_t total = 0;
    if (!*id)
        return recd_err_set(err, RECD_EINVAL, "%s with an empty id", what);
    for (size_t c = 0; c < t->ncols; c++) {
        const char *s = cells[c] ? cells[c] : "";
        size_t n = strlen(s);
        if (bad_cell_char(s, n))
            return recd_err_set(err, RECD_EINVAL, "%s '%s': column '%s' contains a tab, CR or LF",
                                what, id, t->names[c]);
        total += n + 1;
    }
    if (idx_find(ix, t, id) >= 0)
        return recd_err_set(err, RECD_EINVAL, "duplicate %s id '%s'", what, id);
    if (grow_rows(t, user ? &p->user_rows_cap : &p->item_rows_cap) != 0 || idx_reserve(ix, t) != 0)
        return recd_err_set(err, RECD_ENOMEM, "out of memory (%s table)", what);
    char *buf = pool_alloc(p, total);
    if (!buf)
        return recd_err_set(err, RECD_ENOMEM, "out of memory (%s table)", what);
    char **row = t->cells + t->nrows * t->ncols;
    for (size_t c = 0; c < t->ncols; c++) {
        const char *s = cells[c] ? cells[c] : "";
        size_t n = strlen(s) + 1;
        memcpy(buf, s, n);
        row[c] = buf;
        buf += n;
    }
    idx_put_slot(ix, row[0], (uint32_t)(t->nrows + 1));
    return (int64_t)t->nrows++;
}

int64_t recd_dataset_add_item(recd_dataset_t *ds, const char *const *cells, recd_err_t *err)
{
    return add_row(ds, 0, cells, err);
}

int64_t recd_dataset_add_user(recd_dataset_t *ds, const char *const *cells, recd_err_t *err)
{
    return add_row(ds, 1, cells, err);
}

int recd_dataset_set_cell(recd_dataset_t *ds, recd_table_t *t, size_t row, size_t col,
                          const char *value, recd_err_t *err)
{
    if (t != &ds->items && t != &ds->users)
        return recd_err_set(err, RECD_EINVAL, "not a table of this dataset");
    if (row >= t->nrows || col == 0 || col >= t->ncols)
        return recd_err_set(err, RECD_EINVAL, "cell %zu,%zu out of range (or the id column)", row,
                            col);
    const char *s = value ? value : "";
    size_t n = strlen(s);
    if (bad_cell_char(s, n))
        return recd_err_set(err, RECD_EINVAL, "column '%s': value contains a tab, CR or LF",
                            t->names[col]);
    char *d = pool_strndup(P(ds), s, n);
    if (!d)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    t->cells[row * t->ncols + col] = d;
    return 0;
}

int recd_dataset_reserve_events(recd_dataset_t *ds, size_t n, recd_err_t *err)
{
    ds_priv_t *p = P(ds);
    if (n > SIZE_MAX / 64 - ds->nevents)
        return recd_err_set(err, RECD_ENOMEM, "too many events");
    size_t need = ds->nevents + n;
    if (need <= p->ev_cap)
        return 0;
    recd_event_t *ev = realloc(ds->events, need * sizeof *ev);
    if (!ev)
        return recd_err_set(err, RECD_ENOMEM, "out of memory (%zu events)", need);
    ds->events = ev;
    if (ds->nctx) {
        char **ctx = realloc(ds->ctx, need * ds->nctx * sizeof *ctx);
        if (!ctx)
            return recd_err_set(err, RECD_ENOMEM, "out of memory (%zu events)", need);
        ds->ctx = ctx;
    }
    p->ev_cap = need;
    return 0;
}

/* Append without checks other than capacity; ctx values already interned. */
static int push_event(recd_dataset_t *ds, const recd_event_t *e, recd_err_t *err)
{
    ds_priv_t *p = P(ds);
    if (ds->nevents == p->ev_cap) {
        size_t more = p->ev_cap ? p->ev_cap : 1024;
        if (recd_dataset_reserve_events(ds, more, err) != 0)
            return err ? err->code : RECD_ENOMEM;
    }
    ds->events[ds->nevents++] = *e;
    return 0;
}

int recd_dataset_add_event(recd_dataset_t *ds, uint32_t user, uint32_t item, int64_t ts,
                           recd_ev_type_t type, float value, const char *const *ctx,
                           recd_err_t *err)
{
    if (user >= ds->users.nrows)
        return recd_err_set(err, RECD_EINVAL, "event user row %u out of range (%zu users)", user,
                            ds->users.nrows);
    if (item >= ds->items.nrows)
        return recd_err_set(err, RECD_EINVAL, "event item row %u out of range (%zu items)", item,
                            ds->items.nrows);
    if ((unsigned)type >= RECD_EV_NTYPES)
        return recd_err_set(err, RECD_EINVAL, "unknown event type %d", (int)type);
    if (!isfinite(value))
        return recd_err_set(err, RECD_EINVAL, "event value is not a finite number");
    char *vals[64];
    char **cv = ds->nctx <= 64 ? vals : malloc(ds->nctx * sizeof *cv);
    if (!cv)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t c = 0; c < ds->nctx && rc == 0; c++) {
        const char *s = ctx && ctx[c] ? ctx[c] : "";
        size_t n = strlen(s);
        if (bad_cell_char(s, n))
            rc = recd_err_set(err, RECD_EINVAL, "context '%s' contains a tab, CR or LF",
                              ds->ctx_names[c]);
        else if (!(cv[c] = intern(P(ds), s, n)))
            rc = recd_err_set(err, RECD_ENOMEM, "out of memory");
    }
    recd_event_t e = {
        .user = user, .item = item, .ts = ts, .value = value + 0.0f, .type = (uint8_t)type};
    if (rc == 0)
        rc = push_event(ds, &e, err);
    if (rc == 0 && ds->nctx)
        memcpy(ds->ctx + (ds->nevents - 1) * ds->nctx, cv, ds->nctx * sizeof *cv);
    if (cv != vals)
        free(cv);
    return rc;
}

void recd_dataset_set_truth(recd_dataset_t *ds, size_t nfactors, float *user_factors,
                            float *item_factors, float *item_bias)
{
    free(ds->user_factors);
    free(ds->item_factors);
    free(ds->item_bias);
    ds->nfactors = nfactors;
    ds->user_factors = user_factors;
    ds->item_factors = item_factors;
    ds->item_bias = item_bias;
}

/* ---- canonical order ----------------------------------------------------------------------- */

static int cmp_ev(const recd_event_t *a, const recd_event_t *b)
{
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    if (a->user != b->user)
        return a->user < b->user ? -1 : 1;
    if (a->item != b->item)
        return a->item < b->item ? -1 : 1;
    if (a->type != b->type)
        return a->type < b->type ? -1 : 1;
    if (a->value != b->value)
        return a->value < b->value ? -1 : 1;
    return 0;
}

static int cmp_ev_plain(const void *a, const void *b)
{
    return cmp_ev(a, b);
}

static int cmp_ctx(const recd_dataset_t *ds, size_t i, size_t j)
{
    char **a = ds->ctx + i * ds->nctx, **b = ds->ctx + j * ds->nctx;
    for (size_t c = 0; c < ds->nctx; c++) {
        if (a[c] == b[c])
            continue;
        int r = strcmp(a[c], b[c]);
        if (r)
            return r;
    }
    return 0;
}

static int cmp_ev_full(const recd_dataset_t *ds, size_t i, size_t j)
{
    int r = cmp_ev(&ds->events[i], &ds->events[j]);
    return r ? r : ds->nctx ? cmp_ctx(ds, i, j) : 0;
}

static int cmp_perm(const void *a, const void *b, void *arg)
{
    return cmp_ev_full(arg, *(const uint32_t *)a, *(const uint32_t *)b);
}

/* Stable LSD radix sort of perm[] by key[] (11-bit digits, only as many
 * passes as the key range needs); k2 / p2 are scratch of the same size. */
static void radix_sort(uint64_t *key, uint32_t *perm, uint64_t *k2, uint32_t *p2, size_t n,
                       uint64_t range)
{
    int bits = 0;
    while (bits < 64 && (range >> bits))
        bits++;
    size_t cnt[2048];
    for (int shift = 0; shift < bits; shift += 11) {
        memset(cnt, 0, sizeof cnt);
        for (size_t i = 0; i < n; i++)
            cnt[(key[i] >> shift) & 2047]++;
        size_t sum = 0;
        for (size_t d = 0; d < 2048; d++) {
            size_t c = cnt[d];
            cnt[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++) {
            size_t pos = cnt[(key[i] >> shift) & 2047]++;
            k2[pos] = key[i];
            p2[pos] = perm[i];
        }
        memcpy(key, k2, n * sizeof *key);
        memcpy(perm, p2, n * sizeof *perm);
    }
}

/* Sort the run [lo, lo + len) of equal timestamps by the rest of the key. */
static int sort_run(recd_dataset_t *ds, size_t lo, size_t len, uint32_t *perm, recd_event_t *tev,
                    char **tctx)
{
    size_t nc = ds->nctx;
    if (nc == 0) {
        qsort(ds->events + lo, len, sizeof *ds->events, cmp_ev_plain);
        return 0;
    }
    for (size_t k = 0; k < len; k++)
        perm[k] = (uint32_t)(lo + k);
    qsort_r(perm, len, sizeof *perm, cmp_perm, ds);
    for (size_t k = 0; k < len; k++) {
        tev[k] = ds->events[perm[k]];
        memcpy(tctx + k * nc, ds->ctx + (size_t)perm[k] * nc, nc * sizeof *tctx);
    }
    memcpy(ds->events + lo, tev, len * sizeof *tev);
    memcpy(ds->ctx + lo * nc, tctx, len * nc * sizeof *tctx);
    return 0;
}

/* The canonical order: a radix sort by timestamp (streaming passes, fast
 * at 10M events), a gather into new arrays, then each run of equal
 * timestamps (a session's impressions, usually short) sorted by the rest. */
int recd_dataset_sort_events(recd_dataset_t *ds, recd_err_t *err)
{
    size_t n = ds->nevents, nc = ds->nctx;
    size_t i = 1;
    while (i < n && cmp_ev_full(ds, i - 1, i) <= 0)
        i++;
    if (i >= n)
        return 0; /* already canonical: the usual case on load */
    if (n > UINT32_MAX)
        return recd_err_set(err, RECD_ERANGE, "too many events to sort (%zu)", n);
    int64_t lo = ds->events[0].ts, hi = lo;
    for (size_t k = 1; k < n; k++) {
        if (ds->events[k].ts < lo)
            lo = ds->events[k].ts;
        if (ds->events[k].ts > hi)
            hi = ds->events[k].ts;
    }
    uint64_t *key = malloc(n * sizeof *key), *k2 = malloc(n * sizeof *k2);
    uint32_t *perm = malloc(n * sizeof *perm), *p2 = malloc(n * sizeof *p2);
    recd_event_t *nev = NULL;
    char **nctx = NULL;
    if (!key || !k2 || !perm || !p2)
        goto oom;
    for (size_t k = 0; k < n; k++) {
        key[k] = (uint64_t)ds->events[k].ts - (uint64_t)lo;
        perm[k] = (uint32_t)k;
    }
    radix_sort(key, perm, k2, p2, n, (uint64_t)hi - (uint64_t)lo);
    free(key);
    free(k2);
    free(p2);
    key = k2 = NULL;
    p2 = NULL;
    nev = malloc(P(ds)->ev_cap * sizeof *nev);
    nctx = nc ? malloc(P(ds)->ev_cap * nc * sizeof *nctx) : NULL;
    if (!nev || (nc && !nctx))
        goto oom;
    for (size_t k = 0; k < n; k++) {
        nev[k] = ds->events[perm[k]];
        if (nc)
            memcpy(nctx + k * nc, ds->ctx + (size_t)perm[k] * nc, nc * sizeof *nctx);
    }
    free(ds->events);
    free(ds->ctx);
    ds->events = nev;
    ds->ctx = nctx;
    nev = NULL;
    nctx = NULL;
    /* runs of equal ts; scratch sized for the longest */
    size_t longest = 1;
    for (size_t a = 0, b; a < n; a = b) {
        for (b = a + 1; b < n && ds->events[b].ts == ds->events[a].ts; b++)
            ;
        if (b - a > longest)
            longest = b - a;
    }
    nev = malloc(longest * sizeof *nev);
    nctx = nc ? malloc(longest * nc * sizeof *nctx) : NULL;
    if (!nev || (nc && !nctx))
        goto oom;
    for (size_t a = 0, b; a < n; a = b) {
        for (b = a + 1; b < n && ds->events[b].ts == ds->events[a].ts; b++)
            ;
        if (b - a > 1)
            sort_run(ds, a, b - a, perm, nev, nctx);
    }
    free(nev);
    free(nctx);
    free(perm);
    return 0;
oom:
    free(key);
    free(k2);
    free(perm);
    free(p2);
    free(nev);
    free(nctx);
    return recd_err_set(err, RECD_ENOMEM, "out of memory (sorting %zu events)", n);
}

/* ---- number formatting --------------------------------------------------------------------- */

/* Decimal int64 into buf (>= 21 bytes); returns the length. */
static size_t fmt_i64(char *buf, int64_t v)
{
    char tmp[24];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t len = 0;
    if (v < 0)
        buf[len++] = '-';
    while (n)
        buf[len++] = tmp[--n];
    buf[len] = '\0';
    return len;
}

/* The file format of a float: "%.6g", or "%.9g" when "%.6g" does not read
 * back as the same float. Halves below 100000 (ratings, whole seconds) take
 * a fast path that prints exactly what "%.6g" would. buf >= 32 bytes. */
static size_t fmt_float(char *buf, float v)
{
    double d = v;
    if (d > -100000.0 && d < 100000.0 && d * 2.0 == (double)(long)(d * 2.0)) {
        long twice = (long)(d * 2.0);
        if (twice == 0) {
            buf[0] = '0';
            buf[1] = '\0';
            return 1;
        }
        size_t n = 0;
        if (twice < 0) {
            buf[n++] = '-';
            twice = -twice;
        }
        n += fmt_i64(buf + n, twice / 2);
        if (twice % 2) {
            buf[n++] = '.';
            buf[n++] = '5';
            buf[n] = '\0';
        }
        return n;
    }
    int n = snprintf(buf, 32, "%.6g", d);
    if (strtof(buf, NULL) != v)
        n = snprintf(buf, 32, "%.9g", d);
    return (size_t)n;
}

/* ---- saving ---------------------------------------------------------------------------------- */

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

static int fsync_path(const char *path, recd_err_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return recd_err_set(err, RECD_EIO, "%s: cannot open for fsync: %s", path, strerror(errno));
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        return recd_err_set(err, RECD_EIO, "%s: fsync: %s", path, strerror(e));
    }
    close(fd);
    return 0;
}

/* mkdir -p of the parent of path. */
static int make_parents(const char *path, recd_err_t *err)
{
    char *p = strdup(path);
    if (!p)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    char *slash = strrchr(p, '/');
    int rc = 0;
    if (slash && slash != p) {
        *slash = '\0';
        for (char *q = p + 1; rc == 0; q++) {
            if (*q != '/' && *q != '\0')
                continue;
            char saved = *q;
            *q = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST)
                rc = recd_err_set(err, RECD_EIO, "%s: cannot create directory: %s", p,
                                  strerror(errno));
            *q = saved;
            if (saved == '\0')
                break;
        }
    }
    free(p);
    return rc;
}

/* The directory that holds path (for the final fsync). */
static char *parent_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

typedef struct wfile {
    FILE *f;
    char *path;
    char *buf;
} wfile_t;

static int wopen(wfile_t *w, const char *dir, const char *name, recd_err_t *err)
{
    w->f = NULL;
    w->buf = NULL;
    if (!(w->path = xasprintf("%s/%s", dir, name)))
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    if (!(w->f = fopen(w->path, "wbx"))) {
        int rc = recd_err_set(err, RECD_EIO, "%s: cannot create: %s", w->path, strerror(errno));
        free(w->path);
        return rc;
    }
    if ((w->buf = malloc(1 << 20)))
        setvbuf(w->f, w->buf, _IOFBF, 1 << 20);
    return 0;
}

/* Flush, fsync and close; reports any write error that happened on the way. */
static int wclose(wfile_t *w, int rc, recd_err_t *err)
{
    if (!w->f)
        return rc;
    if (rc == 0 && (ferror(w->f) || fflush(w->f) != 0 || fsync(fileno(w->f)) != 0))
        rc = recd_err_set(err, RECD_EIO, "%s: write: %s", w->path, strerror(errno));
    if (fclose(w->f) != 0 && rc == 0)
        rc = recd_err_set(err, RECD_EIO, "%s: close: %s", w->path, strerror(errno));
    w->f = NULL;
    free(w->path);
    free(w->buf);
    return rc;
}

static int has_truth(const recd_dataset_t *ds)
{
    return ds->user_factors && ds->item_factors && ds->nfactors;
}

static int write_meta(const recd_dataset_t *ds, const char *dir, recd_err_t *err)
{
    size_t by_type[RECD_EV_NTYPES] = {0};
    for (size_t e = 0; e < ds->nevents; e++)
        by_type[ds->events[e].type]++;
    char created[32];
    recd_time_created_utc(created, sizeof created);
    json_t *bt = json_object();
    int ok = bt != NULL;
    for (int t = 0; t < RECD_EV_NTYPES && ok; t++)
        if (by_type[t] &&
            json_object_set_new(bt, EV_NAMES[t], json_integer((json_int_t)by_type[t])))
            ok = 0;
    if (!ok) {
        json_decref(bt);
        bt = NULL;
    }
    json_t *m =
        bt ? json_pack("{s:s, s:s, s:s, s:s, s:{s:I, s:I, s:I, s:o}, s:b}", "format",
                       RECD_DATASET_FORMAT, "source", ds->source ? ds->source : "", "kind",
                       ds->implicit ? "implicit" : "explicit", "created", created, "counts",
                       "users", (json_int_t)ds->users.nrows, "items", (json_int_t)ds->items.nrows,
                       "events", (json_int_t)ds->nevents, "by_type", bt, "truth", has_truth(ds))
           : NULL;
    char *text = m ? json_dumps(m, JSON_INDENT(2)) : NULL;
    json_decref(m);
    if (!text)
        return recd_err_set(err, RECD_ENOMEM, "out of memory (meta.json)");
    wfile_t w;
    int rc = wopen(&w, dir, "meta.json", err);
    if (rc == 0) {
        fputs(text, w.f);
        fputc('\n', w.f);
        rc = wclose(&w, 0, err);
    }
    free(text);
    return rc;
}

/* The writers below use the stdio *_unlocked calls: a FILE here belongs to
 * one thread, and the per-call lock of fputc dominated writing 10M events. */
static void put_row(FILE *f, char *const *cells, size_t n)
{
    for (size_t c = 0; c < n; c++) {
        if (c)
            fputc_unlocked('\t', f);
        fputs_unlocked(cells[c], f);
    }
    fputc_unlocked('\n', f);
}

static int write_table(const recd_table_t *t, const char *dir, const char *name, recd_err_t *err)
{
    wfile_t w;
    int rc = wopen(&w, dir, name, err);
    if (rc)
        return rc;
    put_row(w.f, t->names, t->ncols);
    for (size_t r = 0; r < t->nrows; r++)
        put_row(w.f, t->cells + r * t->ncols, t->ncols);
    return wclose(&w, 0, err);
}

static int write_events(const recd_dataset_t *ds, const char *dir, recd_err_t *err)
{
    wfile_t w;
    int rc = wopen(&w, dir, "events.tsv", err);
    if (rc)
        return rc;
    FILE *f = w.f;
    fputs_unlocked("user\titem\tts\ttype\tvalue", f);
    for (size_t c = 0; c < ds->nctx; c++) {
        fputc_unlocked('\t', f);
        fputs_unlocked(ds->ctx_names[c], f);
    }
    fputc_unlocked('\n', f);
    size_t ui = 0, ii = 0; /* id columns */
    char num[48];
    for (size_t e = 0; e < ds->nevents; e++) {
        const recd_event_t *ev = &ds->events[e];
        fputs_unlocked(ds->users.cells[(size_t)ev->user * ds->users.ncols + ui], f);
        fputc_unlocked('\t', f);
        fputs_unlocked(ds->items.cells[(size_t)ev->item * ds->items.ncols + ii], f);
        fputc_unlocked('\t', f);
        size_t n = fmt_i64(num, ev->ts);
        num[n++] = '\t';
        fwrite_unlocked(num, 1, n, f);
        fputs_unlocked(EV_NAMES[ev->type], f);
        fputc_unlocked('\t', f);
        n = fmt_float(num, ev->value);
        fwrite_unlocked(num, 1, n, f);
        for (size_t c = 0; c < ds->nctx; c++) {
            fputc_unlocked('\t', f);
            fputs_unlocked(ds->ctx[e * ds->nctx + c], f);
        }
        fputc_unlocked('\n', f);
    }
    return wclose(&w, 0, err);
}

static int write_factors(const recd_table_t *t, const float *fac, const float *bias, size_t k,
                         const char *dir, const char *name, recd_err_t *err)
{
    wfile_t w;
    int rc = wopen(&w, dir, name, err);
    if (rc)
        return rc;
    char num[48];
    fputs_unlocked("id", w.f);
    for (size_t j = 0; j < k; j++)
        fprintf(w.f, "\tf%zu", j);
    fputs_unlocked(bias ? "\tbias\n" : "\n", w.f);
    for (size_t r = 0; r < t->nrows; r++) {
        fputs_unlocked(t->cells[r * t->ncols], w.f);
        for (size_t j = 0; j < k + (bias ? 1 : 0); j++) {
            fputc_unlocked('\t', w.f);
            size_t n = fmt_float(num, j < k ? fac[r * k + j] : bias[r]);
            fwrite_unlocked(num, 1, n, w.f);
        }
        fputc_unlocked('\n', w.f);
    }
    return wclose(&w, 0, err);
}

/* Refuse to replace anything that is not (or no longer) a dataset. */
static int replaceable(const char *dir, recd_err_t *err)
{
    struct stat st;
    if (lstat(dir, &st) != 0)
        return recd_err_set(err, RECD_EIO, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return recd_err_set(err, RECD_EINVAL, "%s exists and is not a directory", dir);
    char *meta = xasprintf("%s/meta.json", dir);
    if (!meta)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    int has_meta = lstat(meta, &st) == 0;
    free(meta);
    if (has_meta)
        return 0;
    int rc = rmdir(dir) == 0 || errno == ENOENT ? 0 : -1; /* empty: just remove it */
    if (rc == 0)
        return 0;
    return recd_err_set(err, RECD_EINVAL,
                        "%s exists and is not a dataset (no meta.json); not replacing it", dir);
}

static int save(const recd_dataset_t *ds, const char *dir, int overwrite, recd_err_t *err);

int recd_dataset_save(const recd_dataset_t *ds, const char *dir, int overwrite, recd_err_t *err)
{
    if (!ds || !dir || !*dir)
        return recd_err_set(err, RECD_EINVAL, "no dataset or directory");
    /* "out/" names the directory out: the temporary must be its sibling */
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (n == 1 && dir[0] == '/')
        return recd_err_set(err, RECD_EINVAL, "cannot write a dataset to /");
    char *d = strndup(dir, n);
    if (!d)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    int rc = save(ds, d, overwrite, err);
    free(d);
    return rc;
}

static int save(const recd_dataset_t *ds, const char *dir, int overwrite, recd_err_t *err)
{
    for (size_t e = 0; e < ds->nevents; e++) {
        const recd_event_t *ev = &ds->events[e];
        if (ev->user >= ds->users.nrows || ev->item >= ds->items.nrows ||
            ev->type >= RECD_EV_NTYPES)
            return recd_err_set(err, RECD_EINVAL, "event %zu refers to no user, item or type", e);
    }
    struct stat st;
    int exists = lstat(dir, &st) == 0;
    if (exists && !overwrite)
        return recd_err_set(err, RECD_EINVAL, "%s already exists (overwrite not requested)", dir);
    if (exists) {
        int rc = replaceable(dir, err);
        if (rc)
            return rc;
        exists = lstat(dir, &st) == 0;
    }
    int rc = make_parents(dir, err);
    if (rc)
        return rc;
    char *tmp = xasprintf("%s.tmp-%ld", dir, (long)getpid());
    char *truth = tmp ? xasprintf("%s/truth", tmp) : NULL;
    char *parent = parent_of(dir);
    if (!tmp || !truth || !parent) {
        rc = recd_err_set(err, RECD_ENOMEM, "out of memory");
        goto out;
    }
    recd_remove_tree(tmp); /* a leftover of a crashed run with our pid */
    if (mkdir(tmp, 0755) != 0) {
        rc = recd_err_set(err, RECD_EIO, "%s: cannot create directory: %s", tmp, strerror(errno));
        goto out;
    }
    if ((rc = write_table(&ds->items, tmp, "items.tsv", err)) ||
        (rc = write_table(&ds->users, tmp, "users.tsv", err)) || (rc = write_events(ds, tmp, err)))
        goto fail;
    if (has_truth(ds)) {
        if (mkdir(truth, 0755) != 0) {
            rc = recd_err_set(err, RECD_EIO, "%s: cannot create directory: %s", truth,
                              strerror(errno));
            goto fail;
        }
        if ((rc = write_factors(&ds->users, ds->user_factors, NULL, ds->nfactors, truth,
                                "user_factors.tsv", err)) ||
            (rc = write_factors(&ds->items, ds->item_factors, ds->item_bias, ds->nfactors, truth,
                                "item_factors.tsv", err)) ||
            (rc = fsync_path(truth, err)))
            goto fail;
    }
    /* meta.json last: a directory with meta.json is a complete dataset */
    if ((rc = write_meta(ds, tmp, err)) || (rc = fsync_path(tmp, err)))
        goto fail;
    if (!exists) {
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_NOREPLACE) != 0) {
            int e = errno;
            if (e == EINVAL || e == ENOSYS)
                e = lstat(dir, &st) == 0 ? EEXIST : rename(tmp, dir) == 0 ? 0 : errno;
            if (e) {
                rc =
                    e == EEXIST || e == ENOTEMPTY
                        ? recd_err_set(err, RECD_EINVAL, "%s appeared while writing", dir)
                        : recd_err_set(err, RECD_EIO, "rename %s -> %s: %s", tmp, dir, strerror(e));
                goto fail;
            }
        }
    } else if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_EXCHANGE) != 0) {
        int e = errno;
        if (e != EINVAL && e != ENOSYS) {
            rc = recd_err_set(err, RECD_EIO, "rename %s <-> %s: %s", tmp, dir, strerror(e));
            goto fail;
        }
        /* no atomic exchange on this file system: move the old one aside */
        char *old = xasprintf("%s.old-%ld", dir, (long)getpid());
        if (!old) {
            rc = recd_err_set(err, RECD_ENOMEM, "out of memory");
            goto fail;
        }
        recd_remove_tree(old);
        if (rename(dir, old) != 0 || rename(tmp, dir) != 0) {
            rc = recd_err_set(err, RECD_EIO, "replacing %s: %s", dir, strerror(errno));
            free(old);
            goto fail;
        }
        recd_remove_tree(old);
        free(old);
    } else {
        recd_remove_tree(tmp); /* now the old dataset */
    }
    rc = fsync_path(parent, err);
    goto out;
fail:
    recd_remove_tree(tmp);
out:
    free(tmp);
    free(truth);
    free(parent);
    return rc;
}

/* ---- loading ------------------------------------------------------------------------------- */

/* Split line in place at tabs into at most cap fields; returns the number
 * of fields found (which may exceed cap: the rest are not stored). */
static size_t split_tabs(char *line, size_t len, char **fields, size_t cap)
{
    size_t n = 0;
    char *s = line, *end = line + len;
    for (;;) {
        char *t = memchr(s, '\t', (size_t)(end - s));
        if (n < cap)
            fields[n] = s;
        n++;
        if (!t)
            break;
        if (fields)
            *t = '\0';
        s = t + 1;
    }
    return n;
}

static int check_cr(const tf_lines_t *r, const char *s, size_t len, recd_err_t *err)
{
    if (memchr(s, '\r', len))
        return recd_err_set(err, RECD_EINVAL,
                            "%s:%zu: carriage return in the line (CRLF line ends are not allowed)",
                            r->path, r->line);
    return 0;
}

/* Strict parsers: the whole cell must be the number. */
static int parse_i64(const char *s, int64_t *out)
{
    const char *p = s;
    int neg = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    if (*p < '0' || *p > '9')
        return -1;
    uint64_t v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (*p || v > (uint64_t)INT64_MAX + (uint64_t)neg)
        return -1;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

static int parse_float(const char *s, float *out)
{
    if (!*s)
        return -1;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '+' || *p == 'e' ||
              *p == 'E'))
            return -1;
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (*end || end == s || !isfinite(v))
        return -1;
    *out = v + 0.0f;
    return 0;
}

static char *path_join(const char *dir, const char *name)
{
    return xasprintf("%s/%s", dir, name);
}

/* Read a header line and check it: names non-empty and distinct. */
static int read_header(tf_lines_t *r, char ***names, size_t *n, recd_err_t *err)
{
    char *line;
    size_t len;
    int got = tf_lines_next(r, &line, &len, err);
    if (got < 0)
        return got;
    if (got == 0)
        return recd_err_set(err, RECD_EINVAL, "%s:1: empty file (a header line is required)",
                            r->path);
    if (check_cr(r, line, len, err))
        return RECD_EINVAL;
    size_t cnt = 1;
    for (size_t i = 0; i < len; i++)
        cnt += line[i] == '\t';
    char **v = calloc(cnt, sizeof *v);
    if (!v)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    split_tabs(line, len, v, cnt);
    for (size_t i = 0; i < cnt; i++) {
        if (!*v[i]) {
            free(v);
            return recd_err_set(err, RECD_EINVAL, "%s:1: header column %zu has no name", r->path,
                                i + 1);
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(v[i], v[j]) == 0) {
                int rc = recd_err_set(err, RECD_EINVAL, "%s:1: column '%s' appears twice", r->path,
                                      v[i]);
                free(v);
                return rc;
            }
    }
    *names = v;
    *n = cnt;
    return 0;
}

/* items.tsv / users.tsv into ds (user selects the table). */
static int load_table(recd_dataset_t *ds, const char *dir, const char *file, int user,
                      recd_err_t *err)
{
    ds_priv_t *p = P(ds);
    recd_table_t *t = user ? &ds->users : &ds->items;
    idx_t *ix = user ? &p->user_idx : &p->item_idx;
    char *path = path_join(dir, file);
    if (!path)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    tf_lines_t r;
    char **names = NULL;
    size_t nnames = 0;
    int rc = tf_lines_open(&r, path, 0, err);
    if (rc) {
        free(path);
        return rc;
    }
    if ((rc = read_header(&r, &names, &nnames, err)))
        goto out;
    if (strcmp(names[0], "id") != 0) {
        rc = recd_err_set(err, RECD_EINVAL, "%s:1: the first column must be \"id\", not '%s'", path,
                          names[0]);
        goto out;
    }
    if (!(t->names = calloc(nnames, sizeof *t->names))) {
        rc = recd_err_set(err, RECD_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t c = 0; c < nnames; c++)
        if (!(t->names[c] = pool_strndup(p, names[c], strlen(names[c])))) {
            rc = recd_err_set(err, RECD_ENOMEM, "out of memory");
            goto out;
        }
    t->ncols = nnames;
    char *line;
    size_t len;
    while ((rc = tf_lines_next(&r, &line, &len, err)) == 1) {
        rc = 0;
        if (check_cr(&r, line, len, err)) {
            rc = RECD_EINVAL;
            goto out;
        }
        char *copy = pool_strndup(p, line, len);
        if (!copy || grow_rows(t, user ? &p->user_rows_cap : &p->item_rows_cap) != 0 ||
            idx_reserve(ix, t) != 0) {
            rc = recd_err_set(err, RECD_ENOMEM, "%s:%zu: out of memory", path, r.line);
            goto out;
        }
        char **row = t->cells + t->nrows * t->ncols;
        size_t got = split_tabs(copy, len, row, t->ncols);
        if (got != t->ncols) {
            rc = recd_err_set(err, RECD_EINVAL, "%s:%zu: expected %zu columns, found %zu", path,
                              r.line, t->ncols, got);
            goto out;
        }
        if (!*row[0]) {
            rc = recd_err_set(err, RECD_EINVAL, "%s:%zu: empty id", path, r.line);
            goto out;
        }
        int64_t dup = idx_find(ix, t, row[0]);
        if (dup >= 0) {
            rc = recd_err_set(err, RECD_EINVAL, "%s:%zu: duplicate id '%s' (first on line %lld)",
                              path, r.line, row[0], (long long)dup + 2);
            goto out;
        }
        idx_put_slot(ix, row[0], (uint32_t)(t->nrows + 1));
        t->nrows++;
    }
out:
    tf_lines_close(&r);
    free(names);
    free(path);
    return rc < 0 ? rc : 0;
}

static int load_events(recd_dataset_t *ds, const char *dir, size_t expect, recd_err_t *err)
{
    static const char *const FIXED[5] = {"user", "item", "ts", "type", "value"};
    ds_priv_t *p = P(ds);
    char *path = path_join(dir, "events.tsv");
    if (!path)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    tf_lines_t r;
    char **names = NULL, **f = NULL;
    size_t nnames = 0;
    int rc = tf_lines_open(&r, path, 0, err);
    if (rc) {
        free(path);
        return rc;
    }
    if ((rc = read_header(&r, &names, &nnames, err)))
        goto out;
    for (size_t c = 0; c < 5; c++)
        if (c >= nnames || strcmp(names[c], FIXED[c]) != 0) {
            rc = recd_err_set(err, RECD_EINVAL,
                              "%s:1: header must start with user, item, ts, type, value", path);
            goto out;
        }
    ds->nctx = nnames - 5;
    if (!(ds->ctx_names = calloc(ds->nctx ? ds->nctx : 1, sizeof *ds->ctx_names)) ||
        !(f = calloc(nnames, sizeof *f))) {
        rc = recd_err_set(err, RECD_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t c = 0; c < ds->nctx; c++)
        if (!(ds->ctx_names[c] = pool_strndup(p, names[5 + c], strlen(names[5 + c])))) {
            rc = recd_err_set(err, RECD_ENOMEM, "out of memory");
            goto out;
        }
    /* reserve what meta.json announces, within what events.tsv can hold
     * (a line has at least 10 bytes), so a wrong count cannot exhaust memory */
    struct stat st;
    if (expect && fstat(r.fd, &st) == 0) {
        size_t cap = (size_t)st.st_size / 10 + 1;
        if ((rc = recd_dataset_reserve_events(ds, expect < cap ? expect : cap, err)))
            goto out;
    }
    char *line;
    size_t len;
    while ((rc = tf_lines_next(&r, &line, &len, err)) == 1) {
        rc = 0;
        if (check_cr(&r, line, len, err)) {
            rc = RECD_EINVAL;
            goto out;
        }
        size_t got = split_tabs(line, len, f, nnames);
        if (got != nnames) {
            rc = recd_err_set(err, RECD_EINVAL, "%s:%zu: expected %zu columns, found %zu", path,
                              r.line, nnames, got);
            goto out;
        }
        recd_event_t e = {0};
        int64_t u = recd_dataset_user_row(ds, f[0]);
        int64_t it = recd_dataset_item_row(ds, f[1]);
        int type = recd_ev_type_parse(f[3], strlen(f[3]));
        if (u < 0)
            rc = recd_err_set(err, RECD_EINVAL, "%s:%zu: unknown user '%s' (not in users.tsv)",
                              path, r.line, f[0]);
        else if (it < 0)
            rc = recd_err_set(err, RECD_EINVAL, "%s:%zu: unknown item '%s' (not in items.tsv)",
                              path, r.line, f[1]);
        else if (parse_i64(f[2], &e.ts) != 0)
            rc = recd_err_set(err, RECD_EINVAL, "%s:%zu: ts '%s' is not an integer", path, r.line,
                              f[2]);
        else if (type < 0)
            rc = recd_err_set(err, RECD_EINVAL,
                              "%s:%zu: unknown type '%s' (rating, click, watch, purchase or "
                              "impression)",
                              path, r.line, f[3]);
        else if (parse_float(f[4], &e.value) != 0)
            rc = recd_err_set(err, RECD_EINVAL, "%s:%zu: value '%s' is not a finite number", path,
                              r.line, f[4]);
        if (rc)
            goto out;
        e.user = (uint32_t)u;
        e.item = (uint32_t)it;
        e.type = (uint8_t)type;
        if ((rc = push_event(ds, &e, err)))
            goto out;
        for (size_t c = 0; c < ds->nctx; c++) {
            char *v = intern(p, f[5 + c], strlen(f[5 + c]));
            if (!v) {
                rc = recd_err_set(err, RECD_ENOMEM, "out of memory");
                goto out;
            }
            ds->ctx[(ds->nevents - 1) * ds->nctx + c] = v;
        }
    }
out:
    tf_lines_close(&r);
    free(names);
    free(f);
    free(path);
    return rc < 0 ? rc : 0;
}

/* truth/<file>: one row per row of t (any order), k factors (+ bias). */
static int load_factors(recd_dataset_t *ds, const char *dir, const char *file, int user,
                        size_t *k_io, float **fac_out, float **bias_out, recd_err_t *err)
{
    const recd_table_t *t = user ? &ds->users : &ds->items;
    char *path = path_join(dir, file);
    if (!path)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    tf_lines_t r;
    char **names = NULL, **f = NULL;
    float *fac = NULL, *bias = NULL;
    uint8_t *seen = NULL;
    size_t nnames = 0;
    int rc = tf_lines_open(&r, path, 0, err);
    if (rc) {
        free(path);
        return rc;
    }
    if ((rc = read_header(&r, &names, &nnames, err)))
        goto out;
    size_t k = 0;
    while (1 + k < nnames) {
        char want[32];
        snprintf(want, sizeof want, "f%zu", k);
        if (strcmp(names[1 + k], want) != 0)
            break;
        k++;
    }
    int has_bias = !user && 1 + k + 1 == nnames && strcmp(names[1 + k], "bias") == 0;
    if (strcmp(names[0], "id") != 0 || k == 0 || 1 + k + (has_bias ? 1 : 0) != nnames) {
        rc = recd_err_set(err, RECD_EINVAL, "%s:1: header must be id, f0, f1, ...%s", path,
                          user ? "" : " [, bias]");
        goto out;
    }
    if (*k_io && *k_io != k) {
        rc = recd_err_set(err, RECD_EINVAL, "%s:1: %zu factors, but the user factors have %zu",
                          path, k, *k_io);
        goto out;
    }
    size_t nrows = t->nrows ? t->nrows : 1;
    fac = calloc(nrows * k, sizeof *fac);
    bias = has_bias ? calloc(nrows, sizeof *bias) : NULL;
    seen = calloc(nrows, 1);
    f = calloc(nnames, sizeof *f);
    if (!fac || !seen || !f || (has_bias && !bias)) {
        rc = recd_err_set(err, RECD_ENOMEM, "out of memory");
        goto out;
    }
    char *line;
    size_t len;
    size_t rows = 0;
    while ((rc = tf_lines_next(&r, &line, &len, err)) == 1) {
        rc = 0;
        if (check_cr(&r, line, len, err)) {
            rc = RECD_EINVAL;
            goto out;
        }
        size_t got = split_tabs(line, len, f, nnames);
        if (got != nnames) {
            rc = recd_err_set(err, RECD_EINVAL, "%s:%zu: expected %zu columns, found %zu", path,
                              r.line, nnames, got);
            goto out;
        }
        int64_t row = user ? recd_dataset_user_row(ds, f[0]) : recd_dataset_item_row(ds, f[0]);
        if (row < 0) {
            rc = recd_err_set(err, RECD_EINVAL, "%s:%zu: unknown %s '%s'", path, r.line,
                              user ? "user" : "item", f[0]);
            goto out;
        }
        if (seen[row]) {
            rc = recd_err_set(err, RECD_EINVAL, "%s:%zu: duplicate id '%s'", path, r.line, f[0]);
            goto out;
        }
        seen[row] = 1;
        rows++;
        for (size_t j = 0; j + 1 < nnames; j++) {
            float v;
            if (parse_float(f[1 + j], &v) != 0) {
                /* the column's name, not names[]: those point into the
                 * header line, which later reads may have moved */
                char col[32];
                if (j < k)
                    snprintf(col, sizeof col, "f%zu", j);
                else
                    snprintf(col, sizeof col, "bias");
                rc = recd_err_set(err, RECD_EINVAL, "%s:%zu: %s '%s' is not a finite number", path,
                                  r.line, col, f[1 + j]);
                goto out;
            }
            if (j < k)
                fac[(size_t)row * k + j] = v;
            else
                bias[row] = v;
        }
    }
    if (rc < 0)
        goto out;
    rc = 0;
    if (rows != t->nrows) {
        rc = recd_err_set(err, RECD_EINVAL, "%s: %zu rows, but there are %zu %s", path, rows,
                          t->nrows, user ? "users" : "items");
        goto out;
    }
    *k_io = k;
    *fac_out = fac;
    *bias_out = bias;
    fac = bias = NULL;
out:
    tf_lines_close(&r);
    free(names);
    free(f);
    free(fac);
    free(bias);
    free(seen);
    free(path);
    return rc;
}

static int meta_count(const char *path, json_t *counts, const char *key, size_t *out,
                      recd_err_t *err)
{
    json_t *v = json_object_get(counts, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return recd_err_set(err, RECD_EINVAL, "%s: counts.%s must be a non-negative integer", path,
                            key);
    *out = (size_t)json_integer_value(v);
    return 0;
}

int recd_dataset_load(const char *dir, recd_dataset_t **out, recd_err_t *err)
{
    *out = NULL;
    char *mpath = path_join(dir, "meta.json");
    char *tdir = path_join(dir, "truth");
    if (!mpath || !tdir) {
        free(mpath);
        free(tdir);
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    }
    recd_dataset_t *ds = NULL;
    json_error_t jerr;
    json_t *m = json_load_file(mpath, JSON_REJECT_DUPLICATES, &jerr);
    int rc = 0;
    size_t n_users = 0, n_items = 0, n_events = 0;
    int truth = 0;
    if (!m) {
        struct stat st;
        if (stat(mpath, &st) != 0)
            rc = recd_err_set(err, errno == ENOENT ? RECD_ENOENT : RECD_EIO, "%s: %s", mpath,
                              strerror(errno));
        else
            rc = recd_err_set(err, RECD_EINVAL, "%s:%d: %s", mpath, jerr.line, jerr.text);
        goto fail;
    }
    json_t *fmt = json_object_get(m, "format"), *kind = json_object_get(m, "kind");
    json_t *src = json_object_get(m, "source"), *counts = json_object_get(m, "counts");
    json_t *tr = json_object_get(m, "truth");
    if (!json_is_object(m)) {
        rc = recd_err_set(err, RECD_EINVAL, "%s: not a JSON object", mpath);
        goto fail;
    }
    if (!json_is_string(fmt) || strcmp(json_string_value(fmt), RECD_DATASET_FORMAT) != 0) {
        rc =
            recd_err_set(err, RECD_EINVAL, "%s: format must be \"%s\"", mpath, RECD_DATASET_FORMAT);
        goto fail;
    }
    if (!json_is_string(kind) || (strcmp(json_string_value(kind), "explicit") != 0 &&
                                  strcmp(json_string_value(kind), "implicit") != 0)) {
        rc = recd_err_set(err, RECD_EINVAL, "%s: kind must be \"explicit\" or \"implicit\"", mpath);
        goto fail;
    }
    if (src && !json_is_string(src)) {
        rc = recd_err_set(err, RECD_EINVAL, "%s: source must be a string", mpath);
        goto fail;
    }
    if (tr && !json_is_boolean(tr)) {
        rc = recd_err_set(err, RECD_EINVAL, "%s: truth must be true or false", mpath);
        goto fail;
    }
    truth = json_is_true(tr);
    if (!json_is_object(counts)) {
        rc = recd_err_set(err, RECD_EINVAL, "%s: counts must be an object", mpath);
        goto fail;
    }
    if ((rc = meta_count(mpath, counts, "users", &n_users, err)) ||
        (rc = meta_count(mpath, counts, "items", &n_items, err)) ||
        (rc = meta_count(mpath, counts, "events", &n_events, err)))
        goto fail;

    ds = calloc(1, sizeof *ds);
    ds_priv_t *p = calloc(1, sizeof *p);
    if (!ds || !p) {
        free(p);
        rc = recd_err_set(err, RECD_ENOMEM, "out of memory");
        goto fail;
    }
    ds->priv = p;
    ds->implicit = strcmp(json_string_value(kind), "implicit") == 0;
    const char *s = src ? json_string_value(src) : "";
    if (!(ds->source = pool_strndup(p, s, strlen(s)))) {
        rc = recd_err_set(err, RECD_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = load_table(ds, dir, "items.tsv", 0, err)) ||
        (rc = load_table(ds, dir, "users.tsv", 1, err)))
        goto fail;
    if ((rc = load_events(ds, dir, n_events, err)))
        goto fail;
    if (ds->items.nrows != n_items || ds->users.nrows != n_users || ds->nevents != n_events) {
        rc = recd_err_set(err, RECD_EINVAL,
                          "%s: counts say %zu users, %zu items, %zu events; the files have %zu, "
                          "%zu, %zu",
                          mpath, n_users, n_items, n_events, ds->users.nrows, ds->items.nrows,
                          ds->nevents);
        goto fail;
    }
    if (truth) {
        size_t k = 0;
        float *uf = NULL, *itf = NULL, *ib = NULL, *unused = NULL;
        if ((rc = load_factors(ds, tdir, "user_factors.tsv", 1, &k, &uf, &unused, err)))
            goto fail;
        if ((rc = load_factors(ds, tdir, "item_factors.tsv", 0, &k, &itf, &ib, err))) {
            free(uf);
            goto fail;
        }
        recd_dataset_set_truth(ds, k, uf, itf, ib);
    }
    if ((rc = recd_dataset_sort_events(ds, err)))
        goto fail;
    json_decref(m);
    free(mpath);
    free(tdir);
    *out = ds;
    return 0;
fail:
    json_decref(m);
    free(mpath);
    free(tdir);
    recd_dataset_free(ds);
    return rc ? rc : RECD_ERR;
}
