/*
 * Internals of the trainer (src/train): the feature schema built from a
 * dataset, the evaluation split, the candidate and content models, and the
 * metrics. Shared by fit.c and eval.c; not a public API.
 */
#ifndef RECD_TRAIN_INTERNAL_H
#define RECD_TRAIN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "recd/core.h"
#include "recd/dataset.h"
#include "recd/nn.h"

struct json_t;
struct recd_bundle_writer;

#define TF_MAX_FIELDS 32
#define TF_MAX_LAYERS 8
#define TF_NONE UINT32_MAX

/* Randomness: the shared xoshiro256** of recd/core.h, one stream per purpose
 * (recd_rng_seed_stream(r, seed, stream)), bounded draws unbiased
 * (recd_rng_below). */

/* Buffered line reader (lines.c). Lines come back in place, NUL-terminated,
 * without the line end, valid until the next call; `line` is the 1-based
 * number of the line last returned. text = 1 (MovieLens files): a "\r"
 * before the "\n" and a UTF-8 BOM at the start of the file are dropped;
 * text = 0 (recd's own formats): lines are exact and a NUL byte in a line
 * is an error naming the file and line. Lines are bounded (64 MiB). */
typedef struct tf_lines {
    int fd;
    const char *path;
    char *buf;
    size_t cap, pos, len;
    int eof, text;
    size_t line;
} tf_lines_t;
int tf_lines_open(tf_lines_t *r, const char *path, int text, recd_err_t *err);
/* 1: a line in *line (*n bytes); 0: end of file; < 0: error with err set. */
int tf_lines_next(tf_lines_t *r, char **line, size_t *n, recd_err_t *err);
void tf_lines_close(tf_lines_t *r);

/* The 18 MovieLens genres (ml-latest spelling, "Children" without the
 * apostrophe) and the 21 occupations of ml-1m (index = its code): shared by
 * the generators and the importer. */
#define TF_NGENRES 18
#define TF_NOCCUPATIONS 21
extern const char *const tf_genres[TF_NGENRES];
extern const char *const tf_occupations[TF_NOCCUPATIONS];

/* Append tensor `name` [d0, d1] (d1 = 0: 1-D [d0]) to a bundle writer. */
int tf_put(struct recd_bundle_writer *w, const char *name, const float *data, int64_t d0,
           int64_t d1, recd_err_t *err);

/* ---- warm start (warm.c) ---------------------------------------------------------
 * A source of initial weights by bundle tensor name: the model a fit starts
 * from (the embedded trainer's live version, or recd_fit_opts_t.warm_dir).
 * Each trainer creates and initialises its parameters exactly as without a
 * warm start (same random draws), then offers every one of them here; a
 * parameter whose tensor exists in the bundle with the same shape is
 * overwritten with it, any other keeps its fresh initialisation. Tables
 * indexed by item row (cand.item_emb, cand.hist_emb) are copied row by
 * row through item_map, so a dataset whose catalogue differs from the
 * bundle's still starts every known item from its trained row. */
struct recd_bundle;
typedef struct tf_warm {
    const struct recd_bundle *b;
    const int64_t *item_map; /* [n_items] dataset item row -> bundle item index, -1: none */
    size_t n_items;
    size_t offered, copied; /* parameters offered and copied */
    char missed[256];       /* names of the first parameters not copied (", "-separated) */
} tf_warm_t;
/* Overwrite w[rows, cols] (the parameter `name`; item_rows: its rows are
 * dataset item rows) from the bundle when the tensor matches: the same
 * element count and, for a 2-D tensor, the same [rows, cols] (item tables:
 * the same cols and the bundle's item count as rows). Returns 1 when
 * copied, 0 when not (w untouched); NULL wm is 0. Counts in wm. */
int tf_warm_copy(tf_warm_t *wm, const char *name, float *w, size_t rows, size_t cols,
                 int item_rows);

/* Cancellation (the embedded trainer's stop): polled between epochs; when
 * it returns non-zero the fit fails with RECD_EAGAIN and a message saying
 * so. NULL: never. */
typedef int (*tf_cancel_fn)(void *ctx);
#define TF_CANCELLED(fn, ctx) ((fn) && (fn)(ctx))

/* ---- feature schema ------------------------------------------------------------
 * Every field of the bundle's schema with its values hashed for every row
 * of its source: user fields per user, item fields per item, context
 * fields per event. A value is a bucket id plus its text (for Wide&Deep
 * crosses). */
typedef enum { TF_SRC_USER = 0, TF_SRC_ITEM = 1, TF_SRC_CONTEXT = 2 } tf_src_t;

typedef struct tf_values {
    uint32_t *off;     /* [rows + 1] */
    uint32_t *ids;     /* bucket ids */
    const char **txt;  /* value texts (NUL-terminated) */
} tf_values_t;

typedef struct tf_field {
    char name[48];
    tf_src_t source;
    int bucketized;
    double bounds[16];
    size_t nbounds;
    uint64_t buckets;
    int multi;
    char column[48]; /* items.tsv column of an item field */
    int uses_cand;    /* a candidate tower input (user fields) */
    int uses_rank;    /* a ranker field */
    int uses_content; /* a content-model input */
    tf_values_t v;
} tf_field_t;

typedef struct tf_schema {
    tf_field_t f[TF_MAX_FIELDS];
    size_t nf;
    int user_id, item_id; /* field indices */
    char **title_words;   /* [n_items] "w1|w2" derived from titles (or NULL) */
    void *pool;           /* text storage */
} tf_schema_t;

/* out[k] += the mean of table's rows [*, k] over field f's values for row
 * `row` (a user, item or event, by the field's source); and the matching
 * backward pass: each of those rows of p's gradient += g / n. */
void tf_field_mean(const tf_field_t *f, uint32_t row, const float *table, size_t k, float *out);
void tf_field_scatter(const tf_field_t *f, uint32_t row, recd_param_t *p, size_t k,
                      const float *g);

/* Build the schema for a dataset: user_id, the users.tsv columns (age
 * bucketized, others categorical), item_id, genres, year (bucketized),
 * title_words and tags (content only), and the context columns. */
int tf_schema_build(tf_schema_t *s, const recd_dataset_t *ds, recd_err_t *err);
void tf_schema_free(tf_schema_t *s);
/* The schema of a warm start: exactly the fields of a bundle's manifest
 * "features" (names, order, sources, buckets, boundaries, multi-valued,
 * columns), so every tensor keeps its shape and every value its bucket,
 * with each field's values taken from the dataset where it has them (user
 * fields from users.tsv columns of the same name, item fields from their
 * items.tsv column, title_words derived from a title column when there is
 * one, context fields from the events' context columns) and missing ("")
 * where it does not. uses_cand / uses_rank / uses_content follow the
 * manifest's candidate, ranker and content field lists. */
int tf_schema_build_like(tf_schema_t *s, const recd_dataset_t *ds, const struct json_t *manifest,
                         recd_err_t *err);
/* The manifest's "features" object (new reference). */
struct json_t *tf_schema_json(const tf_schema_t *s);
/* Bucket of one value text for field f (FNV-1a as BUNDLE.md). */
uint32_t tf_bucket(const tf_field_t *f, const char *text);
/* Index of a named field, or -1. */
int tf_field_index(const tf_schema_t *s, const char *name);

/* ---- split ------------------------------------------------------------------------
 * Interactions (the candidate model's positives: every rating of an
 * explicit dataset, the first click/watch/purchase of a (user, item) pair
 * of an implicit one), grouped by user in time order (ties by item id).
 * With holdout: each user's latest interaction is the leave-one-out test
 * item, the one before it the validation item; `cold_frac` of the items
 * (never a test item) are held out of training entirely; the ranker's test
 * set is the last `time_frac` of its examples by time.
 * With holdout = TF_HOLDOUT_TIME (the embedded trainer) the split is by
 * time alone: every interaction and ranker example at or after the time of
 * the event at the (1 - time_frac) quantile is held out; each user's first
 * held-out interaction is the leave-one-out test item (its history: the
 * user's training interactions); no validation items, no cold items. */
typedef struct tf_inter {
    uint32_t user, item;
    int64_t ts;
    uint32_t ev; /* event index */
} tf_inter_t;

enum { TF_TRAIN = 0, TF_VALID = 1, TF_TEST = 2, TF_COLD = 3 };

#define TF_HOLDOUT_TIME 2

typedef struct tf_split_opts {
    int holdout;      /* 0: everything trains (a production model); 1: the split above;
                         TF_HOLDOUT_TIME: by time only */
    double cold_frac; /* default 0.05 */
    double time_frac; /* default 0.10 */
    uint64_t seed;
} tf_split_opts_t;

typedef struct tf_split {
    tf_split_opts_t o;
    size_t n_users, n_items;
    tf_inter_t *inter; /* grouped by user, time order */
    size_t ninter;
    uint32_t *uoff;     /* [n_users + 1] */
    uint8_t *role;      /* [ninter] TF_* */
    uint32_t *test_at;  /* [n_users] index into inter, or TF_NONE */
    uint32_t *valid_at; /* [n_users] */
    uint8_t *cold;      /* [n_items] */
    size_t ncold;
    uint32_t *train_count; /* [n_items] training interactions */
    int64_t time_cut;      /* ranker examples with ts >= time_cut are its test set */
} tf_split_t;

int tf_split_build(tf_split_t *sp, const recd_dataset_t *ds, const tf_split_opts_t *o,
                   recd_err_t *err);
void tf_split_free(tf_split_t *sp);
/* The 99 (or n) LOO negatives of user u: items the user never interacted
 * with, drawn uniformly without replacement with a PRNG seeded by (seed,
 * u). Deterministic. Returns the number written. */
size_t tf_loo_negatives(const tf_split_t *sp, const recd_dataset_t *ds, uint32_t u, size_t n,
                        uint32_t *out);
/* The history visible for predicting interaction `at` of user u (index into
 * inter): training and validation items before it (cold items excluded),
 * most recent `max_len`; returns the count written to out. */
size_t tf_history(const tf_split_t *sp, uint32_t u, uint32_t at, size_t max_len, int include_valid,
                  uint32_t *out);

/* ---- candidate model (Covington et al. 2016, §3) ------------------------------ */
typedef struct tf_cand_opts {
    size_t dim, embed_dim;
    size_t hidden[TF_MAX_LAYERS];
    size_t nhidden;
    size_t max_len;   /* history items averaged */
    size_t negatives; /* sampled per batch (shared) */
    int sampler;      /* 0 log-uniform over popularity rank, 1 popularity^0.75 */
    int optimizer;    /* RECD_OPT_ADAM / ADAGRAD */
    float lr, lr_decay, l2_emb, l2_dense;
    size_t batch;
    int max_epochs, patience;
    double user_weight_power; /* example weight n_u^-power per user (0: none) */
    int tie;                  /* history embeddings = output embeddings (needs E == D) */
    uint64_t seed;
    int verbose;
    tf_warm_t *warm;     /* start from a bundle (may be NULL) */
    tf_cancel_fn cancel; /* may be NULL */
    void *cancel_ctx;
} tf_cand_opts_t;

typedef struct tf_cand {
    tf_cand_opts_t o;
    size_t N, D, E;
    size_t ninputs;             /* 1 (history) + user fields */
    int field_of[TF_MAX_FIELDS]; /* input j >= 1: schema field index */
    recd_param_t *hist, *item; /* hist is NULL when tied to item */
    int tied;
    recd_param_t *ftab[TF_MAX_FIELDS]; /* per input j >= 1 */
    recd_param_t *w[TF_MAX_LAYERS + 1], *b[TF_MAX_LAYERS + 1];
    size_t in[TF_MAX_LAYERS + 1], out[TF_MAX_LAYERS + 1];
    size_t nlayers;
    /* summary */
    int epochs, best_epoch;
    double best_valid, examples_per_s, seconds;
} tf_cand_t;

void tf_cand_defaults(tf_cand_opts_t *o);
tf_cand_t *tf_cand_fit(const tf_cand_opts_t *o, const tf_schema_t *s, const recd_dataset_t *ds,
                       const tf_split_t *sp, recd_err_t *err);
/* User vector: history items (item rows) + user u's field values. */
void tf_cand_user_vec(const tf_cand_t *m, const tf_schema_t *s, uint32_t u, const uint32_t *hist,
                      size_t nh, float *scratch, float *out);
size_t tf_cand_scratch(const tf_cand_t *m);
/* Write cand.* tensors (item_emb as given, so cold rows can be replaced)
 * and return the manifest "candidate" object. */
struct json_t *tf_cand_write(const tf_cand_t *m, const tf_schema_t *s, const float *item_emb,
                             struct recd_bundle_writer *w, recd_err_t *err);
void tf_cand_free(tf_cand_t *m);

/* ---- content model (van den Oord et al. 2013: content -> latent factors) ---- */
typedef struct tf_content_opts {
    size_t embed_dim;
    size_t hidden[TF_MAX_LAYERS];
    size_t nhidden;
    float lr, l2_emb;
    size_t batch;
    int max_epochs, patience;
    uint32_t min_count; /* items with at least this many training interactions are targets */
    uint64_t seed;
    int verbose;
    tf_warm_t *warm;     /* start from a bundle (may be NULL); with one, too few target
                            items is not an error: the warm weights are kept untrained */
    tf_cancel_fn cancel; /* may be NULL */
    void *cancel_ctx;
} tf_content_opts_t;

typedef struct tf_content tf_content_t;
void tf_content_defaults(tf_content_opts_t *o);
/* Learn item content -> target[n_items, D] on items with count >= min_count. */
tf_content_t *tf_content_fit(const tf_content_opts_t *o, const tf_schema_t *s, size_t n_items,
                             const float *target, size_t D, const uint32_t *count,
                             recd_err_t *err);
void tf_content_embed(const tf_content_t *m, const tf_schema_t *s, uint32_t item, float *out);
struct json_t *tf_content_write(const tf_content_t *m, const tf_schema_t *s,
                                struct recd_bundle_writer *w, recd_err_t *err);
/* Validation MSE of the returned model and the target's mean square (for
 * the summary). */
void tf_content_summary(const tf_content_t *m, double *valid_mse, double *target_ms,
                        int *epochs);
void tf_content_free(tf_content_t *m);


/* ---- ranker examples ----------------------------------------------------------------
 * Explicit data: every rating, label rating >= 4. Implicit data: every
 * impression, positive when the same user clicked, watched or purchased
 * the item within an hour after it (weight: the watch seconds when watch
 * weighting is on, the YouTube ranking model), else negative; without any
 * impressions, every interaction is a positive and `neg_per_pos` sampled
 * items (uniform, seeded) at the same moment are negatives. */
typedef struct tf_rex {
    uint32_t user, item, ev; /* ev: the event whose context applies */
    int64_t ts;
    float label, weight;
} tf_rex_t;

int tf_rex_build(const recd_dataset_t *ds, int watch_weight, size_t neg_per_pos, uint64_t seed,
                 tf_rex_t **out, size_t *n, recd_err_t *err);
/* Does the dataset have watch events with positive seconds? */
int tf_has_watch(const recd_dataset_t *ds);

/* Wide&Deep crosses: every user and context ranker field crossed with
 * genres (when both exist). */
typedef struct tf_cross {
    int f1, f2;
    uint64_t buckets;
    char name[100];
} tf_cross_t;
size_t tf_crosses(const tf_schema_t *s, tf_cross_t *out, size_t cap);

/* Examples in the ranker trainer's layout (include/recd/trank.h): the
 * ranker fields of the schema in order, then the crosses. */
typedef struct tf_rdata {
    size_t n, nfields, ncrosses;
    int field_of[TF_MAX_FIELDS];
    uint64_t *off;
    uint32_t *ids;
    float *label, *weight;
} tf_rdata_t;
int tf_rdata_build(const tf_schema_t *s, const tf_cross_t *cr, size_t ncr, const tf_rex_t *ex,
                   size_t n, tf_rdata_t *out, recd_err_t *err);
void tf_rdata_free(tf_rdata_t *d);

/* ---- metrics ----------------------------------------------------------------------- */
/* AUC (ties count half) and mean logloss of probabilities p for labels y
 * (0/1), over the n examples with mask[i] != 0 (mask may be NULL). */
double tf_auc(const float *p, const float *y, const uint8_t *mask, size_t n);
double tf_logloss(const float *p, const float *y, const uint8_t *mask, size_t n);
/* Rank of score s0 among s[0..n) (number strictly greater, plus half the
 * ties: the expected rank under random tie breaking; 0 = first). */
double tf_rank_of(float s0, const float *s, size_t n);

/* ---- progress ---------------------------------------------------------------------- */
void tf_progress(int verbose, const char *what, int epoch, int max_epochs, double train_loss,
                 const char *valid_name, double valid, double ex_per_s, double eta_s);

#endif
