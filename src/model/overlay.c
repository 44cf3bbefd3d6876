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

static void overlay_free(recd_overlay_t *o)
{
    for (size_t i = 0; i < o->n_added; i++)
        free(o->added_ids[i]);
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
        size_t h = (size_t)recd_fnv1a64(RECD_FNV1A64_INIT, o->added_ids[i],
                                        strlen(o->added_ids[i])) &
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
    if (!o->deleted || !o->added_ids || !o->added_vecs) {
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

int recd_overlay_put(recd_bundle_t *b, const char *id, const float *vec, int *created,
                     recd_err_t *err)
{
    size_t len = strlen(id);
    pthread_mutex_lock(b->writer_lock);
    recd_overlay_t *cur = b->overlay; /* stable: only writers replace it */
    recd_overlay_t *o = copy(cur, b->dim);
    if (!o) {
        pthread_mutex_unlock(b->writer_lock);
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
            return recd_err_set(err, RECD_ENOMEM, "out of memory");
        }
        o->n_added++;
    }
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
        if ((size_t)slot != last) {
            o->added_ids[slot] = o->added_ids[last];
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
