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
 *                 "explicit"|"implicit", "created": ISO-8601, "counts":
 *                 {"users": U, "items": I, "events": E, "by_type": {...}},
 *                 "truth": bool}
 *   items.tsv    header "id\t<col>..." (recd writes id, title, genres, year,
 *                 tags); multi-valued cells joined by '|'; empty = missing
 *   users.tsv    header "id\t<col>..." (may have only the id column)
 *   events.tsv   header "user\titem\tts\ttype\tvalue[\t<context col>...]";
 *                 ts = unix seconds; type = rating|click|watch|purchase|
 *                 impression; value = the rating, the watch seconds, or 0
 *   truth/       synthetic data only: user_factors.tsv ("id\tf0\tf1..."),
 *                 item_factors.tsv ("id\tf0\tf1...\tbias"), the generator's
 *                 true latent factors and item popularity bias
 *
 * Every line ends with '\n' (a missing one after the last line is accepted
 * on load). Cells never contain tab, newline, CR or NUL; ids are non-empty
 * and unique within their table; every event names a user of users.tsv and
 * an item of items.tsv. Numbers are written in a fixed format: integers in
 * decimal, floats with "%.6g" unless that does not read back as the same
 * float, then "%.9g" (so files are byte-identical for identical data).
 * Saving publishes atomically (write <dir>.tmp-<pid>/, fsync every file and
 * directory, rename, fsync the parent). meta.json's "created" honours
 * SOURCE_DATE_EPOCH.
 *
 * Thread safety: a dataset is a plain value; concurrent readers are fine,
 * any writer (the building functions below) needs exclusive access.
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
#define RECD_EV_NTYPES 5

/* "rating" ... "impression"; NULL for an unknown value. */
const char *recd_ev_type_name(recd_ev_type_t t);
/* Parse a type name (exact, lowercase, len bytes of s); -1 when unknown. */
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
    /* events sorted by (ts, user, item, type, value, then the context
     * cells): a canonical order, so every split derived from it is the same
     * on every run */
    recd_event_t *events;
    size_t nevents;
    /* context columns of events.tsv (after value): ctx[e * nctx + c];
     * equal values share one string */
    size_t nctx;
    char **ctx_names; /* [nctx] */
    char **ctx;       /* [nevents * nctx], NULL when nctx == 0 */
    /* synthetic truth, or all NULL / 0: factors [rows, nfactors] in the
     * row order of users / items; item_bias [items.nrows]. The generator's
     * choice logit of user u for item i (at t = 0) is
     * dot(user_factors[u], item_factors[i]) + item_bias[i]. */
    size_t nfactors;
    float *user_factors;
    float *item_factors;
    float *item_bias;
    void *priv; /* storage: string pool, id hash tables */
} recd_dataset_t;

/* Column index of `name` in t, or -1. */
int recd_table_col(const recd_table_t *t, const char *name);
/* Row index of an id, or -1 (hash lookup kept up to date while building).
 * Thread-safe for concurrent readers. */
int64_t recd_dataset_item_row(const recd_dataset_t *ds, const char *id);
int64_t recd_dataset_user_row(const recd_dataset_t *ds, const char *id);

/* Read a dataset directory into a new dataset (*out, free with
 * recd_dataset_free). Validates everything; every error names the file and
 * the line ("events.tsv:12: unknown item 'x'"). Events are sorted
 * canonically. Returns 0 or a negative RECD_E* code (RECD_ENOENT for a
 * missing file, RECD_EIO for an unreadable one, RECD_EINVAL for bad
 * content). */
int recd_dataset_load(const char *dir, recd_dataset_t **out, recd_err_t *err);
/* Write ds to dir (atomic publish as above); events are written in their
 * current order (canonical when built through recd_dataset_sort_events).
 * Refuses an existing dir unless overwrite; then the old directory is
 * replaced by an atomic rename exchange and removed, but only when it is
 * empty or holds a meta.json (so a mistaken path is not wiped). Borrows
 * ds. */
int recd_dataset_save(const recd_dataset_t *ds, const char *dir, int overwrite, recd_err_t *err);
/* Free everything; NULL is a no-op. */
void recd_dataset_free(recd_dataset_t *ds);

/* ---- building a dataset in memory ---------------------------------------------
 * recd_dataset_new, then rows and events, then recd_dataset_sort_events.
 * Strings passed in are copied (borrowed for the call only). The tables'
 * `cells` arrays and `events` may move while rows/events are added, so do
 * not keep pointers into them across calls; the cell strings themselves
 * never move. */

/* An empty dataset. item_cols / user_cols are the full column lists and
 * must start with "id"; ctx_names may be NULL when nctx is 0. Names must be
 * non-empty, distinct, and free of tab/CR/LF. */
recd_dataset_t *recd_dataset_new(const char *source, int implicit, const char *const *item_cols,
                                 size_t n_item_cols, const char *const *user_cols,
                                 size_t n_user_cols, const char *const *ctx_names, size_t nctx,
                                 recd_err_t *err);
/* Append a row (cells[ncols], cells[0] = id; a NULL cell means ""); returns
 * its row index, or a negative RECD_E* code (RECD_EINVAL for a duplicate or
 * empty id or a cell with tab/CR/LF). */
int64_t recd_dataset_add_item(recd_dataset_t *ds, const char *const *cells, recd_err_t *err);
/* The same for a user row. */
int64_t recd_dataset_add_user(recd_dataset_t *ds, const char *const *cells, recd_err_t *err);
/* Replace one non-id cell (col >= 1) of &ds->items or &ds->users. */
int recd_dataset_set_cell(recd_dataset_t *ds, recd_table_t *t, size_t row, size_t col,
                          const char *value, recd_err_t *err);
/* Room for n more events without reallocation (optional). */
int recd_dataset_reserve_events(recd_dataset_t *ds, size_t n, recd_err_t *err);
/* Append an event; ctx[nctx] (NULL entries mean ""; ctx may be NULL when
 * nctx is 0). RECD_EINVAL for a row out of range, an unknown type, a
 * non-finite value or a context cell with tab/CR/LF. */
int recd_dataset_add_event(recd_dataset_t *ds, uint32_t user, uint32_t item, int64_t ts,
                           recd_ev_type_t type, float value, const char *const *ctx,
                           recd_err_t *err);
/* Attach truth: takes ownership of the three malloc'd arrays (item_bias may
 * be NULL), sized for the tables' current row counts; frees any previous. */
void recd_dataset_set_truth(recd_dataset_t *ds, size_t nfactors, float *user_factors,
                            float *item_factors, float *item_bias);
/* Sort the events into the canonical order (see recd_dataset_t). */
int recd_dataset_sort_events(recd_dataset_t *ds, recd_err_t *err);

/* ---- import (MovieLens) -------------------------------------------------------
 * Layouts: ml-100k (u.data, u.item, u.user), ml-1m (ratings.dat, movies.dat,
 * users.dat with "::"), ml-latest / ml-latest-small (ratings.csv, movies.csv,
 * tags.csv with RFC 4180 quoting). RECD_ML_AUTO detects by the files present.
 * The ratings and the item file are required; the user file and tags.csv
 * are optional. Items keep the dataset's movie ids, users its user ids
 * (text). Item columns: title (year stripped), genres ('|'; "Children's" is
 * spelled "Children" and "unknown" / "(no genres listed)" are dropped, as
 * in ml-latest), year (from the title or the release date; empty when
 * unknown), tags (ml-latest: distinct lowercased tags in order of first
 * appearance); user columns where the layout has them: age, gender,
 * occupation (ml-1m and ml-100k; occupation as text). Text that is not
 * valid UTF-8 is read as ISO-8859-1 and converted. Users are those of the
 * user file plus those appearing in ratings. Every rating becomes a
 * "rating" event. Malformed lines are reported to `report` (may be NULL)
 * as "path:line: reason" and skipped; with strict the first one fails the
 * import (RECD_EINVAL, the same text in err). Items rated but missing from
 * the item file are added with empty columns (and reported, not counted as
 * skipped). Returns 0 and *out, or a negative RECD_E* code (RECD_ENOENT
 * when no layout is found, RECD_EIO on read errors). st may be NULL. */
typedef enum { RECD_ML_AUTO = 0, RECD_ML_100K, RECD_ML_1M, RECD_ML_LATEST } recd_ml_layout_t;

typedef struct recd_import_stats {
    size_t lines, skipped;   /* rating lines read, malformed lines skipped (all files) */
    size_t added_items;      /* items rated but missing from the item file */
    recd_ml_layout_t layout; /* the layout used (detected when AUTO) */
} recd_import_stats_t;

/* "auto", "ml-100k", "ml-1m", "ml-latest"; NULL for an unknown value. */
const char *recd_ml_layout_name(recd_ml_layout_t l);
/* Parse one of the names above (also "ml-latest-small"); -1 when unknown. */
int recd_ml_layout_parse(const char *s);

/* Import src_dir (see above) into a new dataset *out (free with
 * recd_dataset_free); borrows report, which may be NULL. Thread-safe. */
int recd_dataset_import_movielens(const char *src_dir, recd_ml_layout_t layout, int strict,
                                  FILE *report, recd_dataset_t **out, recd_import_stats_t *st,
                                  recd_err_t *err);

/* Import recd's event log in dir (include/recd/events.h; read without its
 * lock, so a running recd may keep appending) into a new dataset *out (free
 * with recd_dataset_free). Every record whose payload decodes
 * (recd_evrec_decode) becomes an event: ts, user, item, type, and as value
 * the rating or the seconds watched, 0 for the other types (docs/DATASET.md).
 * With base (may be NULL; borrowed) the result starts as a copy of it: its
 * tables with every feature column, its context columns and all its events
 * (the union: duplicates are not removed); its truth is not carried over.
 * Without base the tables have only the id column. Ids of the log missing
 * from the tables become new rows with empty feature cells (and empty
 * context cells for the log's events). The dataset is explicit only when
 * every event is a rating (no events: base's kind, else implicit); events
 * are sorted canonically. A record that does not decode is reported to warn
 * (may be NULL) as "dir: record at log offset N: reason; skipped" (at most
 * 1000 lines, then a count) and skipped. Damaged framing is an error
 * (RECD_EIO naming file and offset) unless skip_corrupt, which skips it and
 * reports the count to warn; a torn tail of the last segment is left out
 * and reported. st (may be NULL): lines = records read, skipped =
 * undecodable records, added_items = item rows created for the log (not in
 * base), layout unused (RECD_ML_AUTO). Returns 0, RECD_ENOENT (no such
 * directory), RECD_EIO, RECD_EINVAL or RECD_ENOMEM. Thread-safe. */
int recd_dataset_import_events(const char *dir, const recd_dataset_t *base, int skip_corrupt,
                               FILE *warn, recd_dataset_t **out, recd_import_stats_t *st,
                               recd_err_t *err);

/* ---- synthetic world ----------------------------------------------------------
 * A latent-factor world: users with tastes (mixtures of topics) and
 * demographics (age, gender, occupation correlated with taste), items with
 * factors, genres, years, titles and tags derived from them, Zipf
 * popularity, timestamps spread over `days` from 2026-01-01T00:00:00Z with
 * slow taste drift, and feedback: explicit ratings (0.5..5 in halves) or
 * implicit sessions of impressions with clicks, watches (watch seconds
 * growing with affinity) and purchases, with a "device" context column.
 * Deterministic by seed (own PRNG, fixed arithmetic order): one seed gives
 * byte-identical files on one machine (exp/log come from the C library).
 * The true factors are kept (dataset truth). docs/DATASET.md describes the
 * model. */
typedef struct recd_world_opts {
    size_t n_users;   /* 1..10M, default 5000 */
    size_t n_items;   /* 1..10M, default 20000 */
    size_t n_events;  /* target number of events, 1..100M, default 200000 */
    size_t n_factors; /* latent dimension, 2..256, default 16 */
    size_t n_topics;  /* 1..10000, default 24 */
    int implicit;     /* default 1 (impressions, clicks, watches, purchases) */
    double zipf;      /* popularity exponent, 0..5, default 1.0 */
    int days;         /* time span, 1..3650, default 180 */
    uint64_t seed;    /* default 1 */
} recd_world_opts_t;

/* Base time of the synthetic world: 2026-01-01T00:00:00Z. */
#define RECD_WORLD_T0 1767225600

/* Fill o with the defaults above. */
void recd_world_defaults(recd_world_opts_t *o);
/* Generate a world into a new dataset (*out). RECD_EINVAL names the bad
 * option. Thread-safe (no shared state). */
int recd_dataset_synth(const recd_world_opts_t *o, recd_dataset_t **out, recd_err_t *err);

#endif
