/*
 * recd embedded trainer (DESIGN §5): a thread inside recd that retrains
 * the live model from the event log and publishes a new version only when
 * it is no worse than the live one.
 *
 * A cycle starts when trainer.interval_s has passed since the last one AND
 * the log holds trainer.min_new_events events since the last cycle, or
 * when triggered (POST /admin/train, recd_trainer_trigger). It:
 *  1. reads the newest trainer.max_events events of the log into a dataset
 *     whose item table is the live bundle's (recd_trainer_base_dataset: the
 *     bundle's items.tsv; events decoded as recd_dataset_import_events does),
 *     users from the events; events on items the live bundle does not have
 *     are left out and counted (the model scores its own catalogue);
 *  2. splits it by time: the newest trainer.holdout_pct percent is the
 *     holdout;
 *  3. trains warm-started from the live bundle: every parameter whose
 *     tensor exists in the bundle with the same shape starts from it
 *     (candidate tower and embeddings, ranker, content model), the rest is
 *     initialised as recd-train fit does; trainer.epochs epochs;
 *  4. evaluates the new model and the live one on the same holdout (the
 *     ranker's AUC when the holdout has impressions with outcomes, else the
 *     candidate model's HR@10) and publishes (recd_bundle_writer, atomic;
 *     the lifecycle manager loads it) only when new >= live - tolerance
 *     (trainer.tolerance_bp / 10000); otherwise records the rejection and
 *     why. The new version is written and fsynced by the bundle writer into
 *     a staging directory <models_dir>/<model>/.trainer/ (not a version
 *     name: never served, never deleted by keep_versions), loaded and
 *     validated from there for the evaluation, and published by one
 *     rename (RENAME_NOREPLACE) to <model>/<highest version on disk + 1>
 *     and an fsync of <model>/. The staging directory is removed after each
 *     cycle, when a cycle is abandoned, and at start (a crash's debris).
 * The published model is trained on everything but the holdout; the holdout
 * trains the next cycle.
 * It runs at trainer.nice with one BLAS thread and refuses a cycle whose
 * estimated memory exceeds trainer.max_memory_mb.
 */
#ifndef RECD_ONLINE_H
#define RECD_ONLINE_H

#include <jansson.h>

#include "recd/core.h"

typedef struct recd_trainer_opts {
    const char *events_dir; /* <data_dir>/events */
    const char *models_dir;
    const char *model;      /* name of the model to retrain */
} recd_trainer_opts_t;

/* Start the trainer thread (trainer.* keys read from the current config at
 * each cycle). Returns 0 or an error. */
int recd_trainer_start(const recd_trainer_opts_t *o, recd_err_t *err);
/* Stop it: a cycle in progress is abandoned at the next check point (its
 * temporary version directory removed); joins the thread. */
void recd_trainer_stop(void);
/* Ask for a cycle now (ignores interval and min_new_events). Returns 0, or
 * RECD_EAGAIN when a cycle is already running (it is not queued twice), or
 * RECD_EINVAL when the trainer is not running. */
int recd_trainer_trigger(recd_err_t *err);
/* /stats "trainer": {enabled, state: idle|reading|training|evaluating|
 * publishing, cycles, last: {started_at, duration_ms, events, examples,
 * metric, live, candidate, decision: published|rejected|failed|skipped,
 * reason, version}, next_check_at}. New reference.
 * In detail: times are unix seconds (started_at, next_check_at: null while
 * a cycle runs or the trainer is stopped); "last" is null before the first
 * cycle; metric is "auc", "hr@10" or "-" (not evaluated) and live /
 * candidate its values (null when not evaluated); decision "abandoned"
 * means recd_trainer_stop cut the cycle short; version is the published
 * version (null unless published). Beyond the list above: "model", "nice"
 * (the thread's nice value), "threads" {blas, openmp} (the OpenBLAS and
 * OpenMP thread counts seen on the trainer thread: 1 and 1; 0 before it
 * ran), "new_events" (counted since the last cycle,
 * when the interval has passed), last.live_version, last.detail {log_records,
 * unknown_items (events on items the live version does not have: left
 * out), undecodable, users, items, candidate_examples, ranker_examples,
 * candidate_examples_per_s, ranker_examples_per_s, warm_start {parameters,
 * copied}, memory_estimate_mb, timing_ms {read, train, eval, publish}} and
 * last.metrics {live, candidate} (every metric of the evaluation, as in a
 * manifest's training.metrics; null when not evaluated). */
json_t *recd_trainer_status_json(void);

/* ---- for tests and tools --------------------------------------------------------
 * Test hook: with the environment variable RECD_TRAINER_TEST_CORRUPT set to
 * "shuffle" or "invert" a cycle trains on corrupted labels
 * (recd_fit_opts_t.test_corrupt_labels 1 or 2): a worse model, which the
 * guard must reject (the tests of the guard use "invert": shuffled labels
 * move a warm-started model too little in a couple of epochs to be sure). */

struct recd_bundle;
struct recd_dataset;

/* Run one cycle now on the calling thread, as a trigger would (interval and
 * min_new_events ignored), with trainer.* from the current config (the
 * defaults when none is published) and no thread priority change; the
 * outcome is in recd_trainer_status_json()'s "last". Returns 0 when the
 * cycle reached a decision (published, rejected or skipped), else the
 * error of the failed cycle; RECD_EAGAIN while the thread runs. */
int recd_trainer_run_once(const recd_trainer_opts_t *o, recd_err_t *err);
/* Forget the status and log position (not while the thread runs). */
void recd_trainer_reset(void);

/* A dataset whose item table is bundle b's items.tsv (every column, row i =
 * item index i) and whose users table has only the id column, with no
 * events: the base of the trainer's dataset (and of
 * recd_dataset_import_events). Returns 0 and *out (free with
 * recd_dataset_free) or RECD_EINVAL / RECD_ENOMEM. */
int recd_trainer_base_dataset(const struct recd_bundle *b, struct recd_dataset **out,
                              recd_err_t *err);

#endif
