/*
 * recd dataset: the trainer's input, in memory and on disk.
 *
 * A dataset is what `recd-train synth` generates and `recd-train import`
 * converts public data into; `recd-train fit` and `eval` read it (and the
 * embedded trainer builds one from the event log). Ids stay the source's
 * own ids, as text.
 *
 * On disk it is a directory (format "recd-dataset/1", documented in
 * docs/DATASET.md):
 *
 *   meta.json    {"format": "recd-dataset/1", "source": "...", "kind":
 *                 "explicit"|"implicit", "created": ISO-8601, "counts": {...},
 *                 "truth": bool}
 *   items.tsv    header "id\t<col>..." (recd writes id, title, genres, year,
 *                 tags); multi-valued cells joined by '|'; empty = missing
 *   users.tsv    header "id\t<col>..." (may have only the id column)
 *   events.tsv   header "user\titem\tts\ttype\tvalue[\t<context col>...]";
 *                 ts = unix seconds; type = rating|click|watch|purchase|
 *                 impression; value = the rating, the watch seconds, or 0
 *   truth/       synthetic data only: user_factors.tsv, item_factors.tsv
 *                 ("id\tf0\tf1..."), the generator's true latent factors
 *
 * Cells never contain tab, newline, CR or NUL. Saving publishes atomically
 * (write <dir>.tmp-<pid>/, fsync every file, rename, fsync the parent).
 */
#ifndef RECD_DATASET_H
#define RECD_DATASET_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "recd/core.h"

#define RECD_DATASET_FORMAT "recd-dataset/1"

typedef enum {
    RECD_EV_RATING = 0,
    RECD_EV_CLICK = 1,
    RECD_EV_WATCH = 2,
    RECD_EV_PURCHASE = 3,
    RECD_EV_IMPRESSION = 4,
} recd_ev_type_t;

/* "rating" ... "impression"; NULL for an unknown value. */
const char *recd_ev_type_name(recd_ev_type_t t);
/* Parse a type name (exact, lowercase); -1 when unknown. */
int recd_ev_type_parse(const char *s, size_t len);

/* A table of text cells: row r, column c is cells[r * ncols + c]; column 0
 * is "id". Cells are NUL-terminated, owned by the dataset. */
typedef struct recd_table {
    size_t nrows, ncols;
    char **names; /* [ncols] */
    char **cells; /* [nrows * ncols] */
} recd_table_t;

typedef struct recd_event {
    uint32_t user; /* row of users */
    uint32_t item; /* row of items */
    int64_t ts;    /* unix seconds */
    float value;   /* rating, watch seconds, or 0 */
    uint8_t type;  /* recd_ev_type_t */
} recd_event_t;

typedef struct recd_dataset {
    char *source; /* free text: what produced it */
    int implicit; /* 0: explicit ratings; 1: implicit events */
    recd_table_t items;
    recd_table_t users;
    /* events sorted by (ts, user, item, type, value): a canonical order, so
     * every split derived from it is the same on every run */
    recd_event_t *events;
    size_t nevents;
    /* context columns of events.tsv (after value): ctx[e * nctx + c] */
    size_t nctx;
    char **ctx_names; /* [nctx] */
    char **ctx;       /* [nevents * nctx], NULL when nctx == 0 */
    /* synthetic truth, or NULL: factors [rows, nfactors] */
    size_t nfactors;
    float *user_factors;
    float *item_factors;
    void *priv; /* storage */
} recd_dataset_t;

/* Column index of `name` in t, or -1. */
int recd_table_col(const recd_table_t *t, const char *name);
/* Row index of an id, or -1 (hash lookup built at load/creation). */
int64_t recd_dataset_item_row(const recd_dataset_t *ds, const char *id);
int64_t recd_dataset_user_row(const recd_dataset_t *ds, const char *id);

/* Read a dataset directory; every error names the file and line. */
int recd_dataset_load(const char *dir, recd_dataset_t **out, recd_err_t *err);
/* Write it (atomic publish as above); refuses an existing dir unless
 * overwrite, in which case the old one is replaced by rename. */
int recd_dataset_save(const recd_dataset_t *ds, const char *dir, int overwrite, recd_err_t *err);
void recd_dataset_free(recd_dataset_t *ds);

/* ---- import (MovieLens) -------------------------------------------------------
 * Layouts: ml-100k (u.data, u.item, u.user), ml-1m (ratings.dat, movies.dat,
 * users.dat with "::"), ml-latest / ml-latest-small (ratings.csv, movies.csv,
 * tags.csv with RFC 4180 quoting). RECD_ML_AUTO detects by the files present.
 * Items keep the dataset's movie ids, users its user ids (text). Item columns:
 * title (year stripped), genres ('|'), year (from the title or the release
 * date; empty when unknown), tags (ml-latest: distinct lowercased tags);
 * user columns where the layout has them: age, gender, occupation (ml-1m
 * and ml-100k; occupation as text). Every rating becomes a "rating" event.
 * Malformed lines are reported to `report` as "file:line: reason" and
 * skipped; with strict the first one fails the import. Items rated but
 * missing from the item file are added with empty columns (and reported). */
typedef enum { RECD_ML_AUTO = 0, RECD_ML_100K, RECD_ML_1M, RECD_ML_LATEST } recd_ml_layout_t;

typedef struct recd_import_stats {
    size_t lines, skipped; /* rating lines read, malformed lines skipped (all files) */
    recd_ml_layout_t layout;
} recd_import_stats_t;

int recd_dataset_import_movielens(const char *src_dir, recd_ml_layout_t layout, int strict,
                                  FILE *report, recd_dataset_t **out, recd_import_stats_t *st,
                                  recd_err_t *err);

/* ---- synthetic world ----------------------------------------------------------
 * A latent-factor world: users with tastes (mixtures of topics) and
 * demographics (age, gender, occupation correlated with taste), items with
 * factors, genres and years derived from them, Zipf popularity, timestamps
 * spread over `days` with slow taste drift, and feedback: explicit ratings
 * (1..5 in halves) or implicit impressions with clicks, watches (watch
 * seconds growing with affinity) and purchases. Deterministic by seed (own
 * PRNG, fixed arithmetic order): one seed gives byte-identical files on
 * every machine. The true factors are kept (dataset truth). */
typedef struct recd_world_opts {
    size_t n_users;   /* default 5000 */
    size_t n_items;   /* default 20000 */
    size_t n_events;  /* target number of events, default 200000 (10k..10M) */
    size_t n_factors; /* latent dimension, default 16 */
    size_t n_topics;  /* default 24 */
    int implicit;     /* default 1 (impressions, clicks, watches, purchases) */
    double zipf;      /* popularity exponent, default 1.0 */
    int days;         /* time span, default 180 */
    uint64_t seed;    /* default 1 */
} recd_world_opts_t;

void recd_world_defaults(recd_world_opts_t *o);
int recd_dataset_synth(const recd_world_opts_t *o, recd_dataset_t **out, recd_err_t *err);

#endif
