/*
 * recd A/B runtime: the live experiment set of a running server, user
 * assignment per request, per-variant counters (requests, latency,
 * impressions, clicks) and their readout for /stats and /metrics
 * (DESIGN §6). Definitions, assignment and the statistics themselves are
 * the pure functions of include/recd/ab.h; this module adds the state.
 *
 * Experiments. Every live experiment splits all users; a request is
 * assigned one variant in each. Overrides are merged in config order, a
 * later experiment's override winning over an earlier one's for the same
 * setting; a variant's model and its pinned version count as one setting (a
 * later "model" without "version" means that model's latest version). The
 * response names the first experiment as "experiment".
 *
 * Snapshots. recd_abrt_set publishes a new immutable snapshot (a deep copy);
 * older snapshots stay allocated until recd_abrt_shutdown, so a pointer
 * taken from one (experiment, variant, names) stays valid for the process's
 * life. Reloads are rare; each costs one recd_ab_set_t copy.
 *
 * Counters. Each (experiment name, variant name) pair ever published gets a
 * slot, kept across later sets: changing weights keeps the readout of
 * variants that still exist, and a variant that is dropped and comes back
 * finds its counters again. The table holds 1024 pairs until restart. Slot
 * counters are per thread (single writer, relaxed atomics, as
 * include/recd/stats.h), merged on read. A thread index that is neither a
 * request thread nor RECD_ABRT_REPLAY is ignored (its counts are dropped).
 *
 * Forced requests (X-Recd-Variant) and the events attributed to them are
 * counted apart ("forced") and left out of the readout.
 *
 * Threads: set/init/shutdown on the main thread; everything else from any
 * thread (thread = the caller's stats thread index, see recd_abrt_init).
 */
#ifndef RECD_ABRT_H
#define RECD_ABRT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "recd/ab.h"
#include "recd/core.h"
#include "recd/evrec.h"

/* One experiment's assignment for a request. */
typedef struct recd_abrt_pick {
    const recd_ab_exp_t *exp;         /* in the live snapshot */
    const recd_ab_variant_t *variant; /* in exp */
    uint32_t slot;                    /* counter slot */
    int forced;                       /* chosen by X-Recd-Variant */
} recd_abrt_pick_t;

/* A request's assignment over all live experiments, with the merged
 * overrides ("not set" values as in recd_ab_variant_t). */
typedef struct recd_abrt_assignment {
    size_t n;
    recd_abrt_pick_t picks[RECD_AB_MAX_EXPERIMENTS];
    const char *model; /* NULL = not overridden */
    int64_t version;   /* 0 = latest */
    int32_t candidates;
    int rank; /* -1 not set, 0 off, 1 on */
    recd_ab_score_t score;
} recd_abrt_assignment_t;

/* Set up counters for nthreads request threads (indexes 0..nthreads-1, the
 * stats thread indexes) plus one internal thread used by
 * recd_abrt_count_event(RECD_ABRT_REPLAY, ...) during start-up replay.
 * Starts with no experiments; calling it again shuts the previous state
 * down first. Returns 0 or RECD_ENOMEM. */
int recd_abrt_init(unsigned nthreads, recd_err_t *err);
#define RECD_ABRT_REPLAY UINT32_MAX
void recd_abrt_shutdown(void);

/* Publish a deep copy of set as the live experiments (NULL or empty: none).
 * Returns 0, RECD_ENOMEM, or RECD_ERANGE when the pairs ever published
 * would exceed the slot table; RECD_EINVAL before recd_abrt_init or for a
 * set recd_ab_set_parse would not produce (bad or duplicate names, 0 or
 * more than RECD_AB_MAX_VARIANTS variants, bucket ranges not laid out by
 * recd_ab_exp_layout). On any error the live set is unchanged. */
int recd_abrt_set(const recd_ab_set_t *set, recd_err_t *err);

/* Number of live experiments. */
size_t recd_abrt_count(void);

/* Assign user (ulen bytes) in every live experiment into *out. forced is
 * the X-Recd-Variant value or NULL: it picks the variant of that name in
 * every experiment that has one (others assign normally). Returns 0, or
 * RECD_ENOENT when forced names no variant of any live experiment (out is
 * then not usable). */
int recd_abrt_assign(const char *user, size_t ulen, const char *forced,
                     recd_abrt_assignment_t *out, recd_err_t *err);

/* Count one finished request for each pick (forced ones apart), with its
 * latency (non-forced picks only). Per pick: in a request forced in one
 * experiment, the others' picks count as normal requests, whereas its events
 * carry a single forced flag and are all counted as forced. */
void recd_abrt_record_request(unsigned thread, const recd_abrt_assignment_t *a,
                              uint64_t latency_us);

/* Remember which variants answered request_id (len bytes) for events that
 * carry it: the first RECD_EVREC_MAX_AB picks, and "forced" when any pick
 * was. The table holds 65536 requests, keyed by a 64-bit hash of the id,
 * 4-way set-associative: a new id replaces the oldest entry of its set, the
 * same id again replaces its own entry. An assignment with no picks is
 * remembered too (its events then get no attribution). */
void recd_abrt_remember(const char *request_id, size_t len, const recd_abrt_assignment_t *a);

/* Fill ev->ab / n_ab / forced: from the request-id table when ev->request_id
 * is found there (forced as remembered); else from the hint
 * (ev->hint_experiment/hint_variant: that variant of the named live
 * experiment, or of every live experiment with a variant of that name);
 * else, and when the hint names nothing live, the user's current assignment
 * in every live experiment. At most RECD_EVREC_MAX_AB pairs, in config
 * order; forced is 0 unless it came from the table. Names point into the
 * runtime's storage (snapshots or the slot table), valid until shutdown. */
void recd_abrt_attribute(recd_evrec_t *ev);

/* Count an accepted event for the pairs in ev->ab that have a slot:
 * impressions (type impression) and clicks (type click); other types are
 * ignored. Forced events are counted apart. */
void recd_abrt_count_event(unsigned thread, const recd_evrec_t *ev);

/* /stats section: {"experiments":[{"name","salt","variants":[{"name",
 * "weight","buckets":[lo,hi],"requests","latency_us":{"p50","p90","p99",
 * "p999","max"},"impressions","clicks","ctr","ctr_ci95":[lo,hi],"lift",
 * "z","p_value","forced":{"requests","impressions","clicks"}}]}]}
 * with NaN rendered as null. New reference. */
json_t *recd_abrt_stats_json(void);
/* /metrics lines (HELP/TYPE included) appended to a growable buffer. */
void recd_abrt_stats_prom(char **buf, size_t *len, size_t *cap);
/* The live definitions as the config's "experiments" array (GET
 * /admin/experiments), with each variant's bucket range. New reference. */
json_t *recd_abrt_defs_json(void);

#endif
