/*
 * recd model lifecycle (DESIGN §3, §4): one manager thread per process that
 * loads, validates, warms up and swaps model versions while requests keep
 * being served, applies each model's policy (latest valid version unless
 * pinned; keep_versions on disk; rollback; retry with backoff), and reports
 * all of it for /stats, /metrics and the admin API.
 *
 * Sources of new versions: the atomic publish of DESIGN §3 (a complete
 * version directory renamed into <models_dir>/<name>/<version>) by the
 * embedded trainer, by `recd-train fit` or by copying a directory in. The
 * manager notices them through inotify on models_dir and every model
 * directory (models.watch), through recd_lc_rescan (SIGHUP), and through
 * the admin commands below.
 *
 * Swap. The manager loads a version on its own low-priority thread
 * (models.loader_nice), validates it completely (recd_bundle_load),
 * checks memory headroom first (models.headroom_mb against MemAvailable),
 * runs models.warmup_rounds warmup requests through both stages, and only
 * then publishes it in the registry (recd_model_publish: one pointer swap).
 * Requests in flight keep the version they acquired; the old version is
 * freed on the registry's reaper thread when its last reference goes.
 *
 * Policy per model: serve the highest valid version unless pinned. A
 * version that fails to load is recorded with its reason and retried with
 * exponential backoff (models.retry_initial_ms doubling up to
 * models.retry_max_ms) while a good version keeps serving. After each
 * successful swap, versions beyond the newest models.keep_versions are
 * deleted from disk, never the serving one, a pinned one or the rollback
 * target. Pins survive restarts: they are kept in <data_dir>/models.json
 * (written atomically: temp file, fsync, rename, fsync of the directory);
 * a corrupt state file is logged and ignored, and a pin on a version no
 * longer on disk is dropped. A pinned version that fails to load while
 * nothing serves yet does not keep the model down: the highest valid
 * version serves until the pinned one loads. A load without a pin holds
 * its version until a version newer than every one on disk at that time
 * appears.
 *
 * Directory events are debounced (150 ms of quiet, 1 s at most), so a
 * version copied in file by file is tried once the copying pauses; while
 * incomplete it fails validation and is retried (its directory is watched
 * while it is failed, so the next write retries it at once). ".tmp-*"
 * directories (recd_bundle_writer) are never versions; the ones untouched
 * for 10 minutes are a dead writer's debris and are removed at start and
 * on every explicit rescan.
 *
 * Threads: start/stop on the main thread; every other call from any thread.
 */
#ifndef RECD_LIFECYCLE_H
#define RECD_LIFECYCLE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "recd/core.h"
#include "recd/model.h"

typedef struct recd_lc_opts {
    const char *models_dir;
    const char *names;       /* models.serve: comma-separated, "" = every directory */
    recd_model_opts_t model; /* passed to recd_bundle_load */
    const char *state_file;  /* pins; NULL or "" = not persisted */
    int watch;               /* inotify */
    int loader_nice;         /* setpriority of the manager thread */
    /* Called on the manager thread after the initial load finished
     * (missing = models with no servable version) and after every later
     * swap or failed load; keep it short (e.g. event_active). */
    void (*on_change)(void *ctx, int initial_done, int missing);
    void *ctx;
} recd_lc_opts_t;

/* Start the manager thread; it first loads every configured model (as the
 * old synchronous loader did), then serves commands and watches. The
 * option strings are copied. While it runs it also supplies the /stats
 * "models" section and the model lines of /metrics (through
 * recd_model_registry_set_stats). Reads
 * models.keep_versions, retry, headroom and warmup keys from the current
 * config snapshot at each use (they are reloadable). Returns 0 or an error
 * (inotify set-up failure is logged and watching disabled, not an error). */
int recd_lc_start(const recd_lc_opts_t *o, recd_err_t *err);
/* Stop the manager (a load in progress finishes first) and join it. */
void recd_lc_stop(void);

/* Result of a command, passed to its completion callback. */
typedef struct recd_lc_result {
    int rc;           /* 0 or a RECD_E* code */
    char msg[512];    /* what happened, or why it failed */
    int64_t version;  /* the version serving afterwards (0 = none) */
    int64_t previous; /* the version serving before */
} recd_lc_result_t;

/* Completion: runs on the manager thread once the command is done. */
typedef void (*recd_lc_done_fn)(void *ctx, const recd_lc_result_t *res);

/* Commands. Each is queued for the manager thread and returns at once
 * (0, or RECD_ENOMEM / RECD_EINVAL for a bad name); done (may be NULL)
 * is called with the outcome. Every command is logged with its outcome.
 *  rescan:   look for new versions of name (NULL = every model), like an
 *            inotify event or SIGHUP;
 *  load:     load and serve exactly `version` (it must exist on disk and
 *            validate); pin != 0 also pins it (kept across new versions
 *            and restarts), else the next newer version replaces it;
 *  unpin:    drop the pin; the highest valid version is loaded;
 *  rollback: serve the previous valid version (the one served before the
 *            current one, or else the next lower valid version on disk)
 *            and pin it, so a bad new version does not come straight back;
 *            RECD_ENOENT when there is none.
 * Return codes at the call: RECD_EINVAL for a name that is not a model
 * name or not a served model (models.serve; with models.serve = "" any
 * directory name is accepted and looked up when the command runs), for
 * load with version < 1 and for a NULL name except with rescan;
 * RECD_EAGAIN when the manager is not running (not started, stopping).
 * Outcomes in res: rc 0; RECD_ENOENT for a model that is not there, a
 * version not on disk, or no version to roll back to; the loader's code
 * (RECD_EINVAL, RECD_EIO; RECD_ENOMEM for the headroom refusal) when the
 * asked version fails to load; RECD_EAGAIN for commands still queued at
 * recd_lc_stop (their done runs on the stopping thread). A load that
 * fails is recorded like any failed load (retry with backoff). */
int recd_lc_rescan(const char *name, recd_lc_done_fn done, void *ctx);
int recd_lc_load(const char *name, int64_t version, int pin, recd_lc_done_fn done, void *ctx);
int recd_lc_unpin(const char *name, recd_lc_done_fn done, void *ctx);
int recd_lc_rollback(const char *name, recd_lc_done_fn done, void *ctx);

/* GET /admin/models: {"models": {<name>: M, ...}, "watching": bool,
 * "queue": n}, where M is {name, serving {version, n_items, dim, index,
 * index_source, bytes, load_ms, loaded_at} or null, pinned (version or
 * null), previous (the rollback target or null), on_disk [newest first,
 * each {version, state: serving|ready|failed|pending|superseded|deleted
 * (superseded: never loaded, older than the serving one), and when
 * failed: error, retry_at, failures}; the last few deleted versions are
 * listed too], versions_on_disk, last_swap {at, duration_ms (from the
 * start of the load to serving), pointer_swap_us (the registry's swap
 * itself), from, to} or null, swaps, loads_failed, last_error {version, reason, message, at} or
 * null, waiting_to_free (replaced versions still referenced by requests)}
 * plus the flat fields /stats has always had (version, items, dim, index,
 * index_source, load_ms, index_build_ms, bytes). Times ("at", "loaded_at",
 * "retry_at") are seconds since the epoch. /stats "models" is the same
 * name -> M object except that last_error is absent when there is none.
 * last_error is the latest failed load, cleared when a version at least as
 * new starts serving or the failed directory goes. New reference. */
json_t *recd_lc_status_json(void);
/* The same as Prometheus lines (recd_model_version, recd_model_swaps_total,
 * recd_model_loads_failed_total, recd_model_versions_on_disk,
 * recd_model_waiting_to_free, recd_model_last_swap_seconds). */
void recd_lc_status_prom(char **buf, size_t *len, size_t *cap);

#endif
