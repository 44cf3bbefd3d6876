/*
 * recd user-history store: see include/recd/history.h for the contract.
 *
 * Layout. Each shard is a chained hash table (bucket count a power of two,
 * doubled when users > buckets) plus a doubly linked LRU list (head = most
 * recently used). Each user is one malloc'd block: the entry header, then
 * the user id, then the items packed oldest first as [u16 len][i64 ts][id].
 * An add edits the block in place (memmove) and reallocs it to its new
 * size; while that happens the entry is unlinked from its chain and from
 * the LRU list, and relinked at the heads afterwards, so no stale pointer
 * to the old block survives a move.
 */
#include "recd/history.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "recd/dataset.h"

#define ITEM_HDR 10u /* u16 length + i64 ts */
#define MIN_BUCKETS 16u

typedef struct hent {
    struct hent *hnext; /* hash chain */
    struct hent *lprev; /* LRU: towards the head (more recent) */
    struct hent *lnext; /* LRU: towards the tail (less recent) */
    uint64_t hash;
    uint32_t cap;  /* bytes of data[] allocated */
    uint32_t used; /* bytes of data[] in use: ulen + items */
    uint16_t ulen; /* user id bytes at data[0] */
    uint16_t pad;
    uint32_t nitems; /* items packed after the user id */
    unsigned char data[];
} hent_t;

typedef struct shard {
    pthread_mutex_t mu;
    hent_t **buckets;
    size_t nbuckets; /* power of two */
    hent_t *lru_head, *lru_tail;
    uint64_t users, cap_users;
    uint64_t items, bytes;
    uint64_t adds, lookups, hits, evictions;
} __attribute__((aligned(64))) shard_t;

/* The memory bound in history.h quotes these sizes. */
_Static_assert(sizeof(hent_t) == 48, "entry header is 48 bytes");
_Static_assert(sizeof(shard_t) <= 192, "shard is at most 192 bytes");

struct recd_history {
    shard_t *shards;
    uint32_t nshards;
    uint32_t max_items;
    uint64_t max_users;
};

/* ---- packed item helpers --------------------------------------------------- */

static uint16_t rd_len(const unsigned char *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static int64_t rd_ts(const unsigned char *p)
{
    int64_t v;
    memcpy(&v, p + 2, sizeof v);
    return v;
}

static void wr_item(unsigned char *p, const char *id, uint16_t len, int64_t ts)
{
    memcpy(p, &len, sizeof len);
    memcpy(p + 2, &ts, sizeof ts);
    memcpy(p + ITEM_HDR, id, len);
}

/* ---- lists ----------------------------------------------------------------- */

static void lru_unlink(shard_t *s, hent_t *e)
{
    if (e->lprev)
        e->lprev->lnext = e->lnext;
    else
        s->lru_head = e->lnext;
    if (e->lnext)
        e->lnext->lprev = e->lprev;
    else
        s->lru_tail = e->lprev;
    e->lprev = e->lnext = NULL;
}

static void lru_push_head(shard_t *s, hent_t *e)
{
    e->lprev = NULL;
    e->lnext = s->lru_head;
    if (s->lru_head)
        s->lru_head->lprev = e;
    else
        s->lru_tail = e;
    s->lru_head = e;
}

static void chain_push(shard_t *s, hent_t *e)
{
    size_t b = e->hash & (s->nbuckets - 1);
    e->hnext = s->buckets[b];
    s->buckets[b] = e;
}

/* Remove e from its chain; e must be in the table. */
static void chain_unlink(shard_t *s, hent_t *e)
{
    hent_t **pp = &s->buckets[e->hash & (s->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    e->hnext = NULL;
}

static hent_t *find(shard_t *s, uint64_t hash, const char *user, size_t ulen)
{
    for (hent_t *e = s->buckets[hash & (s->nbuckets - 1)]; e; e = e->hnext)
        if (e->hash == hash && e->ulen == ulen && memcmp(e->data, user, ulen) == 0)
            return e;
    return NULL;
}

/* Double the bucket array; on allocation failure keep the old one (chains
 * just get longer). */
static void grow_buckets(shard_t *s)
{
    size_t nb = s->nbuckets * 2;
    hent_t **nbk = calloc(nb, sizeof *nbk);
    if (!nbk)
        return;
    for (size_t i = 0; i < s->nbuckets; i++) {
        hent_t *e = s->buckets[i];
        while (e) {
            hent_t *next = e->hnext;
            size_t b = e->hash & (nb - 1);
            e->hnext = nbk[b];
            nbk[b] = e;
            e = next;
        }
    }
    free(s->buckets);
    s->bytes += (nb - s->nbuckets) * sizeof *nbk;
    s->buckets = nbk;
    s->nbuckets = nb;
}

static void drop_entry(shard_t *s, hent_t *e)
{
    chain_unlink(s, e);
    lru_unlink(s, e);
    s->users--;
    s->items -= e->nitems;
    s->bytes -= sizeof *e + e->cap;
    free(e);
}

/* ---- life cycle ------------------------------------------------------------ */

recd_history_t *recd_history_new_shards(uint64_t max_users, uint32_t max_items, uint32_t nshards,
                                        recd_err_t *err)
{
    if (max_users < 1) {
        recd_err_set(err, RECD_EINVAL, "history: max_users must be at least 1");
        return NULL;
    }
    if (max_items < 1 || max_items > RECD_HISTORY_ITEMS_MAX) {
        recd_err_set(err, RECD_EINVAL, "history: max_items must be 1..%d, got %u",
                     RECD_HISTORY_ITEMS_MAX, max_items);
        return NULL;
    }
    if (nshards < 1 || nshards > RECD_HISTORY_SHARDS_MAX || nshards > max_users) {
        recd_err_set(err, RECD_EINVAL,
                     "history: shard count must be 1..%d and at most max_users, got %u",
                     RECD_HISTORY_SHARDS_MAX, nshards);
        return NULL;
    }
    recd_history_t *h = calloc(1, sizeof *h);
    shard_t *shards = NULL;
    if (h && posix_memalign((void **)&shards, 64, nshards * sizeof *shards) != 0)
        shards = NULL;
    if (!h || !shards) {
        free(h);
        free(shards);
        recd_err_set(err, RECD_ENOMEM, "history: out of memory");
        return NULL;
    }
    memset(shards, 0, nshards * sizeof *shards);
    h->shards = shards;
    h->nshards = nshards;
    h->max_items = max_items;
    h->max_users = max_users;
    for (uint32_t i = 0; i < nshards; i++) {
        shard_t *s = &shards[i];
        /* shares differ by at most one and add up to exactly max_users */
        s->cap_users = max_users / nshards + (i < max_users % nshards ? 1 : 0);
        s->nbuckets = MIN_BUCKETS;
        s->buckets = calloc(s->nbuckets, sizeof *s->buckets);
        s->bytes = sizeof *s + s->nbuckets * sizeof *s->buckets;
        if (!s->buckets || pthread_mutex_init(&s->mu, NULL) != 0) {
            free(s->buckets);
            for (uint32_t j = 0; j < i; j++) {
                free(shards[j].buckets);
                pthread_mutex_destroy(&shards[j].mu);
            }
            free(shards);
            free(h);
            recd_err_set(err, RECD_ENOMEM, "history: out of memory");
            return NULL;
        }
    }
    return h;
}

recd_history_t *recd_history_new(uint64_t max_users, uint32_t max_items, recd_err_t *err)
{
    uint32_t n = RECD_HISTORY_SHARDS_DEFAULT;
    if (max_users >= 1 && max_users < n)
        n = (uint32_t)max_users;
    return recd_history_new_shards(max_users, max_items, n, err);
}

void recd_history_free(recd_history_t *h)
{
    if (!h)
        return;
    for (uint32_t i = 0; i < h->nshards; i++) {
        shard_t *s = &h->shards[i];
        hent_t *e = s->lru_head;
        while (e) {
            hent_t *next = e->lnext;
            free(e);
            e = next;
        }
        free(s->buckets);
        pthread_mutex_destroy(&s->mu);
    }
    free(h->shards);
    free(h);
}

/* ---- add / get ------------------------------------------------------------- */

static uint64_t user_hash(const char *user, size_t ulen)
{
    /* FNV-1a alone mixes the last bytes of a key only into its low bits
     * (user-1 ... user-9 share bits 32..37), so finish with the 64-bit
     * avalanche step of Appleby's MurmurHash3 (fmix64) before taking shard
     * and bucket bits. */
    uint64_t x = recd_fnv1a64(RECD_FNV1A64_INIT, user, ulen);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static shard_t *shard_of(recd_history_t *h, uint64_t hash)
{
    /* high bits pick the shard, low bits the bucket inside it */
    return &h->shards[(hash >> 32) % h->nshards];
}

static int check_id(const char *what, const char *id, size_t len, recd_err_t *err)
{
    if (!id || len < 1 || len > RECD_HISTORY_ID_MAX)
        return recd_err_set(err, RECD_EINVAL, "history: %s id must be 1..%d bytes, got %zu", what,
                            RECD_HISTORY_ID_MAX, id ? len : (size_t)0);
    return 0;
}

int recd_history_add(recd_history_t *h, const char *user, size_t ulen, const char *item,
                     size_t ilen, int64_t ts, recd_err_t *err)
{
    if (!h)
        return recd_err_set(err, RECD_EINVAL, "history: NULL store");
    int rc = check_id("user", user, ulen, err);
    if (rc || (rc = check_id("item", item, ilen, err)))
        return rc;
    uint64_t hash = user_hash(user, ulen);
    shard_t *s = shard_of(h, hash);
    const uint32_t rec = ITEM_HDR + (uint32_t)ilen;

    pthread_mutex_lock(&s->mu);
    hent_t *e = find(s, hash, user, ulen);
    if (!e) {
        uint32_t cap = (uint32_t)ulen + rec;
        hent_t *n = malloc(sizeof *n + cap);
        if (!n) {
            pthread_mutex_unlock(&s->mu);
            return recd_err_set(err, RECD_ENOMEM, "history: out of memory");
        }
        if (s->users >= s->cap_users && s->lru_tail) {
            drop_entry(s, s->lru_tail);
            s->evictions++;
        }
        memset(n, 0, sizeof *n);
        n->hash = hash;
        n->cap = n->used = cap;
        n->ulen = (uint16_t)ulen;
        n->nitems = 1;
        memcpy(n->data, user, ulen);
        wr_item(n->data + ulen, item, (uint16_t)ilen, ts);
        if (s->users >= s->nbuckets)
            grow_buckets(s);
        chain_push(s, n);
        lru_push_head(s, n);
        s->users++;
        s->items++;
        s->bytes += sizeof *n + cap;
        s->adds++;
        pthread_mutex_unlock(&s->mu);
        return 0;
    }

    /* Find what leaves the list: the same id (moved to the end), else the
     * oldest item when the list is full, else nothing. */
    unsigned char *items = e->data + e->ulen;
    unsigned char *end = e->data + e->used;
    unsigned char *gone = NULL;
    for (unsigned char *p = items; p < end; p += ITEM_HDR + rd_len(p)) {
        if (rd_len(p) == ilen && memcmp(p + ITEM_HDR, item, ilen) == 0) {
            gone = p;
            break;
        }
    }
    if (!gone && e->nitems >= h->max_items)
        gone = items;
    uint32_t gone_bytes = gone ? ITEM_HDR + rd_len(gone) : 0;
    size_t gone_off = gone ? (size_t)(gone - e->data) : 0; /* survives a realloc */
    uint32_t need = e->used - gone_bytes + rec;

    /* The block may move: take it out of the chain and LRU list first. */
    chain_unlink(s, e);
    lru_unlink(s, e);
    if (need > e->cap) {
        hent_t *ne = realloc(e, sizeof *e + need);
        if (!ne) {
            chain_push(s, e);
            lru_push_head(s, e);
            pthread_mutex_unlock(&s->mu);
            return recd_err_set(err, RECD_ENOMEM, "history: out of memory");
        }
        s->bytes += need - ne->cap;
        ne->cap = need;
        e = ne;
    }
    if (gone_bytes) {
        unsigned char *t = e->data + gone_off;
        memmove(t, t + gone_bytes, e->used - gone_off - gone_bytes);
        e->used -= gone_bytes;
        e->nitems--;
        s->items--;
    }
    wr_item(e->data + e->used, item, (uint16_t)ilen, ts);
    e->used += rec;
    e->nitems++;
    s->items++;
    if (e->used < e->cap) {
        hent_t *ne = realloc(e, sizeof *e + e->used);
        if (ne) { /* on failure keep the larger block */
            s->bytes -= ne->cap - ne->used;
            ne->cap = ne->used;
            e = ne;
        }
    }
    chain_push(s, e);
    lru_push_head(s, e);
    s->adds++;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

int recd_history_get(recd_history_t *h, const char *user, size_t ulen, recd_history_item_t *out,
                     size_t cap, recd_arena_t *arena, recd_err_t *err)
{
    if (!h || !out || !arena || cap == 0)
        return recd_err_set(err, RECD_EINVAL,
                            "history: get needs a store, an output array of cap >= 1 "
                            "and an arena");
    int rc = check_id("user", user, ulen, err);
    if (rc)
        return rc;
    uint64_t hash = user_hash(user, ulen);
    shard_t *s = shard_of(h, hash);

    pthread_mutex_lock(&s->mu);
    s->lookups++;
    hent_t *e = find(s, hash, user, ulen);
    if (!e) {
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    s->hits++;
    lru_unlink(s, e);
    lru_push_head(s, e);

    size_t n = e->nitems < cap ? e->nitems : cap;
    size_t skip = e->nitems - n;
    const unsigned char *p = e->data + e->ulen;
    for (size_t i = 0; i < skip; i++)
        p += ITEM_HDR + rd_len(p);
    /* one arena allocation for all strings: the item bytes left plus NULs */
    size_t str_bytes = (size_t)(e->data + e->used - p) - n * ITEM_HDR + n;
    char *buf = recd_arena_alloc(arena, str_bytes);
    if (!buf) {
        pthread_mutex_unlock(&s->mu);
        return recd_err_set(err, RECD_ENOMEM, "history: arena out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        uint16_t len = rd_len(p);
        memcpy(buf, p + ITEM_HDR, len);
        buf[len] = '\0';
        out[i].id = buf;
        out[i].len = len;
        out[i].ts = rd_ts(p);
        buf += len + 1;
        p += ITEM_HDR + len;
    }
    pthread_mutex_unlock(&s->mu);
    return (int)n;
}

void recd_history_stats(recd_history_t *h, recd_history_stats_t *st)
{
    memset(st, 0, sizeof *st);
    if (!h)
        return;
    st->max_users = h->max_users;
    st->max_items = h->max_items;
    st->bytes = sizeof *h;
    for (uint32_t i = 0; i < h->nshards; i++) {
        shard_t *s = &h->shards[i];
        pthread_mutex_lock(&s->mu);
        st->users += s->users;
        st->items += s->items;
        st->bytes += s->bytes;
        st->adds += s->adds;
        st->lookups += s->lookups;
        st->hits += s->hits;
        st->evictions += s->evictions;
        pthread_mutex_unlock(&s->mu);
    }
}

int recd_history_is_positive(int type, double value, double watch_min_s, double rating_min)
{
    switch (type) {
    case RECD_EV_CLICK:
    case RECD_EV_PURCHASE: return 1;
    case RECD_EV_WATCH: return !isnan(value) && value >= watch_min_s;
    case RECD_EV_RATING: return !isnan(value) && value >= rating_min;
    default: return 0;
    }
}
