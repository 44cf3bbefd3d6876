/*
 * recd configuration: one table of keys (type, bounds, default, whether the
 * key is applied on reload) drives parsing of the JSON file, --set
 * overrides, validation, documentation and the effective-config dump.
 *
 * A recd_conf_t is an immutable snapshot once built. The daemon publishes
 * the current snapshot with recd_conf_publish(); readers on any thread get
 * it with recd_conf_current() (an acquire load, no lock). Old snapshots stay
 * allocated until recd_conf_shutdown() so a reader never sees freed memory;
 * reloads are rare, so this costs a few KiB per reload.
 */
#ifndef RECD_CONF_H
#define RECD_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "recd/core.h"

typedef struct recd_conf {
    /* http (public listener) */
    char *http_listen;                    /* "host:port" or "[v6]:port" */
    int64_t http_workers;                 /* threads; 0 = online cores */
    int64_t http_backlog;                 /* listen(2) backlog */
    int64_t http_max_header_bytes;        /* request line + headers, bytes */
    int64_t http_max_headers;             /* header lines per request */
    int64_t http_max_body_bytes;          /* request body, bytes */
    int64_t http_read_timeout_ms;         /* idle gap allowed while reading a body */
    int64_t http_write_timeout_ms;        /* idle gap allowed while writing */
    int64_t http_header_deadline_ms;      /* absolute: first byte -> end of headers */
    int64_t http_keepalive_timeout_ms;    /* idle keep-alive connection */
    int64_t http_max_connections;         /* open connections, all listeners */
    int64_t http_max_inflight_per_worker; /* requests in progress per worker */
    int64_t http_max_json_depth;          /* nesting of arrays/objects in bodies */
    int64_t http_retry_after_s;           /* Retry-After on 503/429, seconds */
    /* admin listener */
    char *admin_listen;     /* "" disables the admin listener */
    char *admin_token;      /* bearer token; "" = none (loopback only) */
    char *admin_token_file; /* file holding the token (first line) */
    /* tls (public listener) */
    char *tls_cert; /* PEM certificate chain; "" = plain HTTP */
    char *tls_key;  /* PEM private key */
    /* logging */
    char *log_level; /* debug|info|warn|error */
    char *log_file;  /* "" = stderr */
    int log_access;  /* one line per request at info */
    /* paths and process */
    char *data_dir;
    char *models_dir;
    int64_t shutdown_deadline_ms; /* drain in-flight requests on SIGTERM */
    int64_t shutdown_delay_ms;    /* on SIGTERM, /readyz 503 but keep serving this long first */
    /* models and candidate generation */
    char *models_serve;          /* comma-separated model names; "" = every directory */
    char *models_default;        /* model used when a request names none */
    char *ann_factory;           /* override the manifest's index ("" = manifest) */
    int64_t ann_nprobe;          /* IVF lists probed; 0 = manifest */
    int64_t ann_ef_search;       /* HNSW beam; 0 = manifest */
    int ann_use_index_file;      /* read index.faiss when present */
    int64_t candgen_candidates;  /* default number of retrieved candidates */
    int64_t candgen_max_history; /* longest request history accepted */
    int64_t rank_max_items;      /* most items one /v1/score request may give */
    /* event log (data_dir/events) */
    int events_enabled;           /* accept POST /v1/events and keep the log */
    char *events_fsync;           /* always | interval_ms | never */
    int64_t events_interval_ms;   /* interval_ms: fsync at most this often */
    int64_t events_segment_bytes; /* rotate segments at this size */
    int64_t events_retain_bytes;  /* delete oldest segments past this total; 0 = keep */
    int64_t events_retain_age_s;  /* delete segments older than this; 0 = keep */
    int64_t events_queue_bytes;   /* writer queue bound; past it 503 */
    int64_t events_max_batch;     /* events per POST /v1/events */
    int events_skip_corrupt;      /* start despite mid-segment corruption */
    /* user-history store */
    int64_t history_max_users;       /* users kept (LRU) */
    int64_t history_max_items;       /* positives kept per user */
    int64_t history_watch_min_s;     /* a watch this long is positive */
    int64_t history_rating_min;      /* a rating of this many stars or more is positive */
    int64_t history_replay_bytes;    /* log bytes replayed at start */
    int64_t history_replay_window_s; /* events older than this are not replayed */
    /* A/B experiments: compact JSON text of the `experiments` array */
    char *experiments;
    /* model lifecycle */
    int64_t models_keep_versions;    /* versions kept on disk per model */
    int models_watch;                /* inotify on models_dir */
    int64_t models_retry_initial_ms; /* first retry of a failed load */
    int64_t models_retry_max_ms;     /* backoff cap */
    int64_t models_headroom_mb;      /* MemAvailable left after a load */
    int64_t models_loader_nice;      /* nice level of the loader thread */
    int64_t models_warmup_rounds;    /* warmup requests before a swap */
    /* embedded trainer */
    int trainer_enabled;
    char *trainer_model;            /* model it retrains; "" = models.default */
    int64_t trainer_interval_s;     /* at most one cycle per interval */
    int64_t trainer_min_new_events; /* ... and only with this many new events */
    int64_t trainer_holdout_pct;    /* last % of events by time held out */
    int64_t trainer_tolerance_bp;   /* publish unless worse by more (1/10000) */
    int64_t trainer_nice;           /* nice level of the trainer thread */
    int64_t trainer_max_memory_mb;  /* refuse a cycle estimated above this */
    int64_t trainer_epochs;         /* fine-tuning epochs per cycle */
    int64_t trainer_max_events;     /* newest events read per cycle */
} recd_conf_t;

typedef enum {
    RECD_CONF_T_INT,
    RECD_CONF_T_BOOL,
    RECD_CONF_T_STRING,
    RECD_CONF_T_ENUM,   /* string from a fixed set */
    RECD_CONF_T_LISTEN, /* string parsed as a listen address */
    RECD_CONF_T_PATH,   /* string naming a file or directory */
    RECD_CONF_T_JSON,   /* a JSON value, stored as compact JSON text */
} recd_conf_type_t;

/* One row of the table. Exposed read-only for docs, tests and dumps. */
typedef struct recd_conf_key {
    const char *path; /* dotted key path, e.g. "http.max_body_bytes" */
    recd_conf_type_t type;
    size_t offset;                  /* offsetof(recd_conf_t, field) */
    int64_t min, max;               /* bounds for INT */
    int64_t def_int;                /* default for INT and BOOL */
    const char *def_str;            /* default for string types */
    const char *const *enum_values; /* NULL-terminated, for ENUM */
    int reloadable;                 /* applied on SIGHUP without restart */
    const char *doc;                /* one line for README/--help */
} recd_conf_key_t;

/* The table and its length. */
const recd_conf_key_t *recd_conf_keys(size_t *n);
/* Row for a dotted path, or NULL. */
const recd_conf_key_t *recd_conf_key_find(const char *path);

/* A list of error lines ("http.workers: must be 0..256, got 999"). */
typedef struct recd_conf_errors {
    char **lines;
    size_t n, cap;
} recd_conf_errors_t;

void recd_conf_errors_free(recd_conf_errors_t *e);

/* A new snapshot holding every default. NULL on out of memory. */
recd_conf_t *recd_conf_new_defaults(void);
/* Deep copy. NULL on out of memory. */
recd_conf_t *recd_conf_dup(const recd_conf_t *c);
void recd_conf_free(recd_conf_t *c);

/* Apply a JSON document (nested objects map to dotted paths). Every
 * unknown key, wrong type and out-of-range value appends an error naming
 * the key path; parse errors name line and column. Values that are fine
 * are applied even when others fail; callers discard c on any error.
 * Returns the number of errors added. */
int recd_conf_apply_json_text(recd_conf_t *c, const char *text, size_t len, const char *origin,
                              recd_conf_errors_t *errs);
int recd_conf_apply_file(recd_conf_t *c, const char *path, recd_conf_errors_t *errs);
/* Apply one "key=value" override (value text parsed by the key's type:
 * integers in decimal, booleans true/false/1/0, strings verbatim).
 * Returns the number of errors added (0 or 1). */
int recd_conf_apply_set(recd_conf_t *c, const char *kv, recd_conf_errors_t *errs);
/* Cross-key checks run after everything is applied (e.g. tls.cert and
 * tls.key set together, admin on a non-loopback address needs a token,
 * public and admin addresses differ). Returns the number of errors added. */
int recd_conf_validate(const recd_conf_t *c, recd_conf_errors_t *errs);

/* Build a snapshot from defaults + file (NULL = none) + overrides, then
 * validate. Returns NULL and fills errs on any error. */
recd_conf_t *recd_conf_load(const char *file, const char *const *sets, size_t nsets,
                            recd_conf_errors_t *errs);

/* Reload: returns a new snapshot equal to `next` for reloadable keys and
 * to `cur` for the others; each non-reloadable key that differs appends a
 * line to `ignored` ("http.listen changed; restart to apply"). */
recd_conf_t *recd_conf_merge_reload(const recd_conf_t *cur, const recd_conf_t *next,
                                    recd_conf_errors_t *ignored);

/* Publish / read the process-wide current snapshot (see top comment).
 * publish takes ownership of c. current returns a borrowed pointer valid
 * until recd_conf_shutdown(). Thread-safe. */
void recd_conf_publish(recd_conf_t *c);
const recd_conf_t *recd_conf_current(void);
void recd_conf_shutdown(void);

/* Effective configuration as JSON text (secrets shown as "<redacted>").
 * Caller frees with free(). */
char *recd_conf_dump_json(const recd_conf_t *c);

/* Parse "host:port", "[v6addr]:port" or ":port" (all interfaces).
 * Fills a sockaddr_storage; returns 0 or RECD_EINVAL with a message. */
struct sockaddr_storage;
int recd_conf_parse_listen(const char *s, struct sockaddr_storage *ss, unsigned *sslen,
                           recd_err_t *err);
/* True if the address is loopback (127.0.0.0/8 or ::1). */
int recd_conf_listen_is_loopback(const struct sockaddr_storage *ss);

#endif
