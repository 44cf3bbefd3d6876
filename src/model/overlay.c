/* Live items over an immutable bundle: copy-on-write snapshots.
 *
 * A request takes a reference to the current snapshot once and sees one
 * consistent catalog for its whole life; a writer copies the snapshot,
 * changes the copy and swaps the pointer. The swap and the reader's
 * reference increment happen under overlay_lock, which protects only the
 * pointer (no BLAS, FAISS or I/O under it). Writers are serialised by
 * writer_lock so no update is lost. A snapshot costs O(live items * dim +
 * base items / 8) to copy, which suits a trickle of catalog changes between
 * model versions; a retrain folds live items into the next bundle. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "model_int.h"

recd_overlay_t *recd_overlay_new_empty(size_t n_items_base)
{
    recd_overlay_t *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    atomic_init(&o->refs, 1);
    o->n_items_base = n_items_base;
    return o;
}

static void live_release(recd_live_item_t *li)
{
    if (li && atomic_fetch_sub(&li->refs, 1) == 1) {
        free(li->storage);
        free(li);
    }
}

/* A live item's item-field values, copied from `given` into one block; the
 * field whose column is "id" takes the id itself, absent fields hash "". */
static recd_live_item_t *live_new(const recd_bundle_t *b, const char *id,
                                  const recd_field_buckets_t *given)
{
    size_t nf = b->nfeatures, nvals = 0, tbytes = 0;
    for (size_t f = 0; f < nf; f++) {
        const recd_feature_t *F = &b->features[f];
        if (F->source != RECD_SRC_ITEM)
            continue;
        if (strcmp(F->column, "id") == 0) {
            nvals += 1;
            tbytes += strlen(id) + 1;
        } else if (given && given[f].n) {
            nvals += given[f].n;
            for (size_t i = 0; i < given[f].n; i++)
                tbytes += (given[f].t ? given[f].tlen[i] : 0) + 1;
        } else {
            nvals += 1;
            tbytes += 1;
        }
    }
    recd_live_item_t *li = calloc(1, sizeof *li);
    size_t bytes = nf * sizeof(recd_field_buckets_t) +
                   nvals * (sizeof(uint64_t) + sizeof(char *) + sizeof(uint32_t)) + tbytes + 16;
    char *blk = li ? calloc(1, bytes) : NULL;
    if (!blk) {
        free(li);
        return NULL;
    }
    atomic_init(&li->refs, 1);
    li->storage = blk;
    li->fields = (recd_field_buckets_t *)(void *)blk;
    uint64_t *bk = (uint64_t *)(void *)(blk + nf * sizeof(recd_field_buckets_t));
    const char **tp = (const char **)(void *)(bk + nvals);
    uint32_t *tl = (uint32_t *)(void *)(tp + nvals);
    char *tx = (char *)(tl + nvals);
    for (size_t f = 0; f < nf; f++) {
        const recd_feature_t *F = &b->features[f];
        if (F->source != RECD_SRC_ITEM)
            continue;
        size_t n = strcmp(F->column, "id") == 0 ? 1 : (given && given[f].n ? given[f].n : 1);
        li->fields[f] = (recd_field_buckets_t){bk, n, tp, tl};
        for (size_t i = 0; i < n; i++) {
            const char *t = "";
            size_t len = 0;
            if (strcmp(F->column, "id") == 0) {
                t = id;
                len = strlen(id);
            } else if (given && given[f].n && given[f].t) {
                t = given[f].t[i];
                len = given[f].tlen[i];
            }
            memcpy(tx, t, len);
            tx[len] = '\0';
            tp[i] = tx;
            tl[i] = (uint32_t)len;
            bk[i] = given && given[f].n && strcmp(F->column, "id") != 0
                        ? given[f].b[i]
                        : recd_feature_bucket(F->name, strlen(F->name), tx, len, F->buckets);
            tx += len + 1;
        }
        bk += n;
        tp += n;
        tl += n;
    }
    return li;
}

static void overlay_free(recd_overlay_t *o)
{
    for (size_t i = 0; i < o->n_added; i++) {
        free(o->added_ids[i]);
        if (o->live)
            live_release(o->live[i]);
    }
    free(o->live);
    free(o->added_ids);
    free(o->added_vecs);
    free(o->added_hash);
    free(o->deleted);
    free(o);
}

void recd_overlay_release(recd_overlay_t *o)
{
    if (o && atomic_fetch_sub(&o->refs, 1) == 1)
        overlay_free(o);
}

recd_overlay_t *recd_overlay_acquire(recd_bundle_t *b)
{
    pthread_mutex_lock(b->overlay_lock);
    recd_overlay_t *o = b->overlay;
    atomic_fetch_add(&o->refs, 1);
    pthread_mutex_unlock(b->overlay_lock);
    return o;
}

int64_t recd_overlay_find(const recd_overlay_t *o, const char *id, size_t len)
{
    if (!o->hash_cap)
        return -1;
    size_t mask = o->hash_cap - 1;
    size_t h = (size_t)recd_fnv1a64(RECD_FNV1A64_INIT, id, len) & mask;
    for (;;) {
        uint64_t e = o->added_hash[h];
        if (!e)
            return -1;
        const char *c = o->added_ids[e - 1];
        if (strlen(c) == len && memcmp(c, id, len) == 0)
            return (int64_t)(e - 1);
        h = (h + 1) & mask;
    }
}

int recd_overlay_item_known(const recd_bundle_t *b, const recd_overlay_t *o, const char *id,
                            size_t len, int64_t *base_index, int64_t *slot)
{
    int64_t s = recd_overlay_find(o, id, len);
    if (slot)
        *slot = s;
    if (base_index)
        *base_index = -1;
    if (s >= 0)
        return 1;
    int64_t i = recd_bundle_item_index(b, id, len);
    if (i < 0 || recd_overlay_deleted(o, (size_t)i))
        return 0;
    if (base_index)
        *base_index = i;
    return 1;
}

static int rehash(recd_overlay_t *o)
{
    size_t cap = 16;
    while (cap < o->n_added * 2 + 2)
        cap <<= 1;
    uint64_t *t = calloc(cap, sizeof *t);
    if (!t)
        return RECD_ENOMEM;
    for (size_t i = 0; i < o->n_added; i++) {
        size_t h =
            (size_t)recd_fnv1a64(RECD_FNV1A64_INIT, o->added_ids[i], strlen(o->added_ids[i])) &
            (cap - 1);
        while (t[h])
            h = (h + 1) & (cap - 1);
        t[h] = i + 1;
    }
    free(o->added_hash);
    o->added_hash = t;
    o->hash_cap = cap;
    return 0;
}

/* Deep copy with room for one more live item. */
static recd_overlay_t *copy(const recd_overlay_t *src, size_t dim)
{
    recd_overlay_t *o = recd_overlay_new_empty(src->n_items_base);
    if (!o)
        return NULL;
    size_t bm = (src->n_items_base + 7) / 8;
    o->deleted = calloc(bm ? bm : 1, 1);
    o->cap_added = src->n_added + 1;
    o->added_ids = calloc(o->cap_added, sizeof *o->added_ids);
    o->added_vecs = malloc(o->cap_added * dim * sizeof(float));
    o->live = calloc(o->cap_added, sizeof *o->live);
    if (!o->deleted || !o->added_ids || !o->added_vecs || !o->live) {
        overlay_free(o);
        return NULL;
    }
    if (src->deleted)
        memcpy(o->deleted, src->deleted, bm);
    o->n_deleted = src->n_deleted;
    for (size_t i = 0; i < src->n_added; i++) {
        o->added_ids[i] = strdup(src->added_ids[i]);
        if (!o->added_ids[i]) {
            o->n_added = i;
            overlay_free(o);
            return NULL;
        }
        o->live[i] = src->live[i];
        atomic_fetch_add(&o->live[i]->refs, 1);
    }
    o->n_added = src->n_added;
    if (src->n_added)
        memcpy(o->added_vecs, src->added_vecs, src->n_added * dim * sizeof(float));
    return o;
}

static void publish(recd_bundle_t *b, recd_overlay_t *o)
{
    pthread_mutex_lock(b->overlay_lock);
    recd_overlay_t *old = b->overlay;
    b->overlay = o;
    pthread_mutex_unlock(b->overlay_lock);
    recd_overlay_release(old);
}

static void mark_deleted(recd_overlay_t *o, size_t i)
{
    if (!((o->deleted[i >> 3] >> (i & 7)) & 1)) {
        o->deleted[i >> 3] |= (uint8_t)(1u << (i & 7));
        o->n_deleted++;
    }
}

int recd_overlay_put(recd_bundle_t *b, const char *id, const float *vec,
                     const recd_field_buckets_t *item_fields, int *created, recd_err_t *err)
{
    size_t len = strlen(id);
    recd_live_item_t *li = live_new(b, id, item_fields);
    if (!li)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    pthread_mutex_lock(b->writer_lock);
    recd_overlay_t *cur = b->overlay; /* stable: only writers replace it */
    recd_overlay_t *o = copy(cur, b->dim);
    if (!o) {
        pthread_mutex_unlock(b->writer_lock);
        live_release(li);
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    }
    int64_t slot = recd_overlay_find(cur, id, len);
    int64_t base = recd_bundle_item_index(b, id, len);
    int existed = slot >= 0 || (base >= 0 && !recd_overlay_deleted(cur, (size_t)base));
    if (base >= 0)
        mark_deleted(o, (size_t)base); /* the live copy replaces the bundle's row */
    if (slot < 0) {
        slot = (int64_t)o->n_added;
        o->added_ids[slot] = strdup(id);
        if (!o->added_ids[slot]) {
            overlay_free(o);
            pthread_mutex_unlock(b->writer_lock);
            live_release(li);
            return recd_err_set(err, RECD_ENOMEM, "out of memory");
        }
        o->live[slot] = NULL;
        o->n_added++;
    }
    live_release(o->live[slot]);
    o->live[slot] = li;
    memcpy(o->added_vecs + (size_t)slot * b->dim, vec, b->dim * sizeof(float));
    if (rehash(o) < 0) {
        overlay_free(o);
        pthread_mutex_unlock(b->writer_lock);
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    }
    publish(b, o);
    pthread_mutex_unlock(b->writer_lock);
    if (created)
        *created = !existed;
    return 0;
}

int recd_overlay_delete(recd_bundle_t *b, const char *id, recd_err_t *err)
{
    size_t len = strlen(id);
    pthread_mutex_lock(b->writer_lock);
    recd_overlay_t *cur = b->overlay;
    int64_t slot = recd_overlay_find(cur, id, len);
    int64_t base = recd_bundle_item_index(b, id, len);
    int known = slot >= 0 || (base >= 0 && !recd_overlay_deleted(cur, (size_t)base));
    if (!known) {
        pthread_mutex_unlock(b->writer_lock);
        return recd_err_set(err, RECD_ENOENT, "no such item: %s", id);
    }
    recd_overlay_t *o = copy(cur, b->dim);
    if (!o) {
        pthread_mutex_unlock(b->writer_lock);
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    }
    if (base >= 0)
        mark_deleted(o, (size_t)base);
    if (slot >= 0) {
        /* move the last live item into the hole */
        size_t last = o->n_added - 1;
        free(o->added_ids[slot]);
        live_release(o->live[slot]);
        if ((size_t)slot != last) {
            o->added_ids[slot] = o->added_ids[last];
            o->live[slot] = o->live[last];
            memcpy(o->added_vecs + (size_t)slot * b->dim, o->added_vecs + last * b->dim,
                   b->dim * sizeof(float));
        }
        o->n_added--;
    }
    if (rehash(o) < 0) {
        overlay_free(o);
        pthread_mutex_unlock(b->writer_lock);
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    }
    publish(b, o);
    pthread_mutex_unlock(b->writer_lock);
    return 0;
}
