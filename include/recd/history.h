/*
 * recd user-history store (DESIGN §5): per user id, the last `max_items`
 * positive interactions (item ids with their timestamps), most recent last,
 * for at most `max_users` users with least-recently-used eviction. Kept in
 * memory only; the daemon rebuilds it from the event log at start.
 *
 * Order. Items are kept in the order they were added (arrival order), not
 * sorted by timestamp; the timestamp is stored as given. Adding an item that
 * is already in the user's list moves it to the most recent position (with
 * the new timestamp) instead of duplicating it, so a list never holds the
 * same id twice. When the list is full the oldest item is dropped.
 *
 * Eviction. "Use" of a user is an add OR a successful get: a user read by
 * /v1/recommend counts as recently used as one that just had an event. The
 * store is split into shards by FNV-1a-64 of the user id (finished with the
 * MurmurHash3 fmix64 mixer); each shard owns a fixed share of max_users (the
 * shares differ by at most one and add up to exactly max_users) and its own
 * LRU list, so the total number of users never exceeds max_users, and inside
 * a shard the least recently used user is evicted first. Across shards the
 * order is approximate (a full shard evicts its own LRU user even if another
 * shard holds an older one). A store with one shard
 * (recd_history_new_shards(..., 1, ...)) is exactly LRU.
 *
 * Locking. One mutex per shard guards its hash table, LRU list, entries and
 * counters. Every call locks at most one shard at a time (stats locks them
 * one after another), never calls back into caller code while holding a
 * lock, and copies everything it returns; all functions except
 * recd_history_free may be called from any number of threads concurrently.
 *
 * Memory. One malloc'd block per user holds the user id and the user's items
 * packed back to back, each as [u16 length][i64 ts][id bytes] (10 bytes of
 * header per item), plus a 48-byte entry header; each shard has a hash
 * bucket array of 8 bytes per slot, at most 2 slots per user. Hence
 *
 *     bytes <= users * (48 + 16 + user id bytes + max_items * (10 + item id bytes))
 *              + shards * (192 + 128) + malloc overhead (about 16 bytes per block),
 *
 * where "item id bytes" is the length of the ids actually stored (at most
 * RECD_HISTORY_ID_MAX each). recd_history_stats reports the exact figure
 * without malloc overhead.
 */
#ifndef RECD_HISTORY_H
#define RECD_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "recd/core.h"

#define RECD_HISTORY_ID_MAX 1024       /* longest user or item id accepted, bytes */
#define RECD_HISTORY_ITEMS_MAX 10000   /* largest max_items accepted */
#define RECD_HISTORY_SHARDS_DEFAULT 64 /* shards of recd_history_new */
#define RECD_HISTORY_SHARDS_MAX 4096   /* largest shard count accepted */

typedef struct recd_history recd_history_t;

/* One item returned by recd_history_get. id points into the caller's arena
 * and is NUL-terminated (len excludes the NUL). */
typedef struct recd_history_item {
    const char *id;
    size_t len;
    int64_t ts; /* as passed to recd_history_add */
} recd_history_item_t;

/* Counters and sizes, summed over the shards (each shard is read under its
 * own lock, so the sum is not one atomic snapshot while writers run). */
typedef struct recd_history_stats {
    uint64_t users;     /* users held now */
    uint64_t items;     /* items held now, over all users */
    uint64_t bytes;     /* bytes allocated for entries, hash tables, shards */
    uint64_t adds;      /* successful recd_history_add calls */
    uint64_t lookups;   /* recd_history_get calls on valid arguments */
    uint64_t hits;      /* ... of which found the user */
    uint64_t evictions; /* users dropped to respect max_users */
    uint64_t max_users; /* the bound, as configured */
    uint64_t max_items;
} recd_history_stats_t;

/* A store for at most max_users users (>= 1) of at most max_items items each
 * (1..RECD_HISTORY_ITEMS_MAX), in min(RECD_HISTORY_SHARDS_DEFAULT,
 * max_users) shards. NULL with err set (RECD_EINVAL, RECD_ENOMEM) on
 * failure. */
recd_history_t *recd_history_new(uint64_t max_users, uint32_t max_items, recd_err_t *err);

/* The same with an explicit shard count, 1..RECD_HISTORY_SHARDS_MAX and at
 * most max_users (every shard holds at least one user). */
recd_history_t *recd_history_new_shards(uint64_t max_users, uint32_t max_items, uint32_t nshards,
                                        recd_err_t *err);

/* Free the store and everything in it; NULL is a no-op. No other call may
 * run concurrently. */
void recd_history_free(recd_history_t *h);

/* Record that user (ulen bytes) positively interacted with item (ilen
 * bytes) at ts: the item becomes the user's most recent (moved there if
 * already present; the oldest dropped if the list is full), and the user
 * the most recently used of its shard (a new user may evict that shard's
 * least recently used one). Ids are 1..RECD_HISTORY_ID_MAX arbitrary bytes.
 * Returns 0, RECD_EINVAL (bad id length or NULL) or RECD_ENOMEM (the store
 * is unchanged). */
int recd_history_add(recd_history_t *h, const char *user, size_t ulen, const char *item,
                     size_t ilen, int64_t ts, recd_err_t *err);

/* Copy the user's most recent min(count, cap) items into out[0..n), oldest
 * first and most recent last; the id strings are copied into arena (one
 * allocation), so the result stays valid whatever other threads do until
 * the arena is reset. A hit marks the user as recently used. Returns n
 * (0 when the user is unknown; a known user always has at least one item),
 * RECD_EINVAL (NULL h/user/out/arena, cap 0 or a bad user id length) or
 * RECD_ENOMEM (arena exhausted). */
int recd_history_get(recd_history_t *h, const char *user, size_t ulen, recd_history_item_t *out,
                     size_t cap, recd_arena_t *arena, recd_err_t *err);

/* Fill st with the current counters. */
void recd_history_stats(recd_history_t *h, recd_history_stats_t *st);

/* Whether an event counts as a positive interaction: click and purchase
 * always; watch when value (seconds watched) >= watch_min_s; rating when
 * value >= rating_min; impression and unknown types never. type is a
 * recd_ev_type_t (include/recd/dataset.h). A NaN value is never positive. */
int recd_history_is_positive(int type, double value, double watch_min_s, double rating_min);

#endif
