/*
 * recd A/B experiments: definitions, user assignment and readout statistics
 * (DESIGN §6). Pure library: no I/O, no globals, no locking. Parsed
 * experiments are immutable and may be shared between threads.
 *
 * Assignment. bucket(user) = FNV-1a-64(salt + ":" + user_id) mod 10000.
 * Weights are integers >= 0 with a positive sum W; they are relative, not
 * required to add up to 100 or 10000. Variant i (in config order) owns the
 * contiguous bucket range [b(i-1), b(i)) with
 *
 *     b(i) = floor(10000 * (w_0 + ... + w_i) / W),  b(-1) = 0,
 *
 * so the bucket->variant map is a pure function of the weight list: every
 * replica and every restart computes the same map from the config alone.
 * The salted hash already scatters users uniformly over the buckets, so a
 * further permutation of the buckets would change nothing statistically;
 * contiguous ranges keep the movement analysis exact.
 *
 * Movement guarantee when weights change (same variants, same order). Let
 * b and b' be the old and new boundaries. A bucket changes variant only if
 * it lies between b(i) and b'(i) for some boundary i; nothing else moves.
 * Consequences:
 *  - two variants: exactly |b'(0) - b(0)| buckets move, all in one
 *    direction, which is the minimum possible (50/50 -> 60/40 moves buckets
 *    5000..5999, exactly 1000 = 10%, all from the second to the first);
 *  - k variants, the total W unchanged, weight moved between two adjacent
 *    variants i and i+1: only the buckets between their shared boundary
 *    move, from one to the other (minimal);
 *  - k variants, weight moved from variant i to a non-adjacent variant j:
 *    every boundary between them shifts by the same amount d, so d buckets
 *    move at each of the |j - i| boundaries (variants in between keep their
 *    size but slide); d * |j - i| buckets move instead of the minimal d;
 *  - if W itself changes, every boundary whose cumulative share changes
 *    moves by the difference of floor(10000 * share) (rounding to whole
 *    buckets: at most one bucket per boundary beyond the exact share).
 * Operators who want minimal movement with several variants should shift
 * weight between neighbours, keep W constant (e.g. weights summing to 100
 * or 10000), and append new variants at the end.
 */
#ifndef RECD_AB_H
#define RECD_AB_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "recd/core.h"

#define RECD_AB_BUCKETS 10000u  /* buckets per experiment */
#define RECD_AB_MAX_VARIANTS 16 /* variants per experiment */
#define RECD_AB_MAX_EXPERIMENTS 64
#define RECD_AB_NAME_MAX 64  /* bytes in an experiment/variant/model name */
#define RECD_AB_SALT_MAX 256 /* bytes in a salt */
#define RECD_AB_MAX_CANDIDATES 100000
#define RECD_AB_MAX_WEIGHT 1000000 /* per variant; keeps sums far from overflow */

/* Score formula override of a variant. */
typedef enum {
    RECD_AB_SCORE_DEFAULT = 0, /* not overridden */
    RECD_AB_SCORE_PCTR = 1,
    RECD_AB_SCORE_WATCH_TIME = 2,
} recd_ab_score_t;

/* One variant. Overrides that were not given keep the "not set" value. */
typedef struct recd_ab_variant {
    char name[RECD_AB_NAME_MAX + 1];
    uint32_t weight;                  /* as configured */
    char model[RECD_AB_NAME_MAX + 1]; /* "" = the server's default model */
    int64_t version;                  /* pinned model version, 0 = latest */
    int32_t candidates;               /* 0 = server default */
    int rank;                         /* -1 = server default, 0 off, 1 on */
    recd_ab_score_t score;
    uint32_t bucket_lo, bucket_hi; /* owned buckets [lo, hi); empty if weight 0 */
} recd_ab_variant_t;

/* One experiment. variants[0] is the control. */
typedef struct recd_ab_exp {
    char name[RECD_AB_NAME_MAX + 1];
    char salt[RECD_AB_SALT_MAX + 1];
    size_t salt_len;
    size_t n_variants; /* 1..RECD_AB_MAX_VARIANTS */
    recd_ab_variant_t variants[RECD_AB_MAX_VARIANTS];
} recd_ab_exp_t;

/* The configured experiments (the `experiments` array). */
typedef struct recd_ab_set {
    size_t n;
    recd_ab_exp_t *exps; /* n entries, heap; NULL when n == 0 */
} recd_ab_set_t;

/* ---- definitions ----------------------------------------------------------
 * Names (experiment, variant, model) are 1..64 bytes of [A-Za-z0-9_.-] (they
 * end up in headers, JSON and Prometheus labels); salts 1..256 bytes of any
 * printable ASCII. Unknown keys are rejected. Errors are RECD_EINVAL with a
 * message starting with the path of the offending field, e.g.
 * "experiments[0].variants[1].weight: must be an integer >= 0". */

/* Parse one experiment object into *out. path names the object in error
 * messages (e.g. "experiments[2]"; NULL or "" gives "experiment"). Computes
 * the bucket ranges. Returns 0 or RECD_EINVAL. */
int recd_ab_exp_parse(const json_t *j, const char *path, recd_ab_exp_t *out, recd_err_t *err);

/* Parse an array of experiments with unique names into *out (which is
 * overwritten; free with recd_ab_set_free). JSON null means no experiments.
 * path names the array in errors (NULL or "" gives "experiments"). On error
 * *out is left empty. Returns 0, RECD_EINVAL or RECD_ENOMEM. */
int recd_ab_set_parse(const json_t *j, const char *path, recd_ab_set_t *out, recd_err_t *err);

/* Release the experiments of s and leave it empty. s may be NULL. */
void recd_ab_set_free(recd_ab_set_t *s);

/* Experiment by name, or NULL. */
const recd_ab_exp_t *recd_ab_set_find(const recd_ab_set_t *s, const char *name, size_t len);

/* Recompute the bucket ranges of exp from its variants' weights (the layout
 * above). Called by recd_ab_exp_parse; for callers that edit weights in
 * place. Returns 0, or RECD_EINVAL when the weights sum to 0. */
int recd_ab_exp_layout(recd_ab_exp_t *exp, recd_err_t *err);

/* ---- assignment ----------------------------------------------------------- */

/* FNV-1a-64 over salt, ":", user_id, reduced mod RECD_AB_BUCKETS. */
uint32_t recd_ab_bucket(const char *salt, size_t salt_len, const char *user_id, size_t len);

/* Index of the variant that owns bucket (< RECD_AB_BUCKETS). */
size_t recd_ab_variant_of_bucket(const recd_ab_exp_t *exp, uint32_t bucket);

/* Index of the variant user_id (len bytes) is assigned to in exp. Pure: the
 * same for the same (salt, weights, user_id) in every process. */
size_t recd_ab_assign(const recd_ab_exp_t *exp, const char *user_id, size_t len);

/* Index of the variant called name (len bytes) in exp, or -1 when there is
 * none (a forced variant, X-Recd-Variant). Weight-0 variants can be forced. */
int recd_ab_variant_by_name(const recd_ab_exp_t *exp, const char *name, size_t len);

/* ---- readout statistics (src/ab/stats.c) ----------------------------------
 * Conventions: clicks above impressions are capped at impressions (CTR is a
 * proportion); a quantity that is undefined is NaN (callers render it as
 * JSON null). */

#define RECD_AB_Z95 1.959963984540054 /* standard normal quantile 0.975 */

/* clicks / impressions; NaN when impressions == 0. */
double recd_ab_ctr(uint64_t impressions, uint64_t clicks);

/* Wilson score interval (Wilson, "Probable inference, the law of
 * succession, and statistical inference", JASA 1927) for clicks successes
 * in impressions trials at normal quantile z (RECD_AB_Z95 for 95%):
 *   centre = (p + z^2/2n) / (1 + z^2/n),
 *   half   = z / (1 + z^2/n) * sqrt(p(1-p)/n + z^2/4n^2),
 * clamped to [0, 1]; lo is exactly 0 when clicks == 0 and hi exactly 1 when
 * clicks == impressions. Both NaN when impressions == 0. */
void recd_ab_wilson(uint64_t impressions, uint64_t clicks, double z, double *lo, double *hi);

/* Two-proportion z-test with pooled standard error, variant b against a:
 *   p = (k_a + k_b) / (n_a + n_b), se = sqrt(p(1-p)(1/n_a + 1/n_b)),
 *   z = (ctr_b - ctr_a) / se, two-sided p-value = erfc(|z| / sqrt 2).
 * When the pooled rate is 0 or 1 (se = 0, both rates equal) z = 0 and
 * p = 1. Either sample empty: both NaN. z or p may be NULL. */
void recd_ab_ztest(uint64_t n_a, uint64_t k_a, uint64_t n_b, uint64_t k_b, double *z, double *p);

/* Relative lift (ctr_v - ctr_c) / ctr_c. NaN when either CTR is undefined
 * (no impressions) or ctr_c == 0 (lift of anything over nothing is
 * undefined, even when ctr_v == 0). */
double recd_ab_lift(uint64_t n_c, uint64_t k_c, uint64_t n_v, uint64_t k_v);

/* Readout of one variant against the control (index 0). */
typedef struct recd_ab_readout {
    uint64_t impressions, clicks; /* clicks as given (uncapped) */
    double ctr;                   /* NaN without impressions */
    double ci_lo, ci_hi;          /* Wilson 95% */
    double lift;       /* vs control (recd_ab_lift); for the control 0, or NaN if its CTR is 0 */
    double z, p_value; /* vs control; NaN for the control itself */
} recd_ab_readout_t;

/* Fill out[0..n) from per-variant impressions and clicks; variant 0 is the
 * control. n may be 0. */
void recd_ab_readout(const uint64_t *impressions, const uint64_t *clicks, size_t n,
                     recd_ab_readout_t *out);

#endif /* RECD_AB_H */
