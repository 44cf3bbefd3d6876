/* Configuration table, parsing, validation and publication. */
#include "recd/conf.h"

#include "recd/ab.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define OFF(f) offsetof(recd_conf_t, f)
#define KB 1024
#define MB (1024 * 1024)

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const fsync_policies[] = {"always", "interval_ms", "never", NULL};

/* The table. For string types, `min` = 1 means the value may not be "". */
static const recd_conf_key_t keys[] = {
    {"http.listen", RECD_CONF_T_LISTEN, OFF(http_listen), 1, 0, 0, "0.0.0.0:8080", NULL, 0,
     "public listener, \"host:port\", \"[v6]:port\" or \":port\""},
    {"http.workers", RECD_CONF_T_INT, OFF(http_workers), 0, 256, 0, NULL, NULL, 0,
     "worker threads, each with its own event loop; 0 = one per online core"},
    {"http.backlog", RECD_CONF_T_INT, OFF(http_backlog), 1, 65535, 511, NULL, NULL, 0,
     "listen(2) backlog per worker socket"},
    {"http.max_header_bytes", RECD_CONF_T_INT, OFF(http_max_header_bytes), 256, MB, 16 * KB, NULL,
     NULL, 1, "request line + headers larger than this get 431"},
    {"http.max_headers", RECD_CONF_T_INT, OFF(http_max_headers), 1, 256, 100, NULL, NULL, 1,
     "more header lines than this get 431"},
    {"http.max_body_bytes", RECD_CONF_T_INT, OFF(http_max_body_bytes), 0, 1024LL * MB, MB, NULL,
     NULL, 1, "request bodies larger than this get 413"},
    {"http.read_timeout_ms", RECD_CONF_T_INT, OFF(http_read_timeout_ms), 10, 3600000, 30000, NULL,
     NULL, 1, "longest silence while a request body is arriving (408)"},
    {"http.write_timeout_ms", RECD_CONF_T_INT, OFF(http_write_timeout_ms), 10, 3600000, 30000, NULL,
     NULL, 1, "longest stall while writing a response before the connection is dropped"},
    {"http.header_deadline_ms", RECD_CONF_T_INT, OFF(http_header_deadline_ms), 10, 3600000, 10000,
     NULL, NULL, 1,
     "absolute time from a request's first byte to the end of its headers (408; slowloris)"},
    {"http.keepalive_timeout_ms", RECD_CONF_T_INT, OFF(http_keepalive_timeout_ms), 0, 3600000,
     60000, NULL, NULL, 1,
     "idle keep-alive connections are closed after this; 0 disables keep-alive"},
    {"http.max_connections", RECD_CONF_T_INT, OFF(http_max_connections), 1, 1000000, 10000, NULL,
     NULL, 1, "open connections across the public listener; past it 503 and close"},
    {"http.max_inflight_per_worker", RECD_CONF_T_INT, OFF(http_max_inflight_per_worker), 1, 1000000,
     1024, NULL, NULL, 1, "requests in progress per worker; past it 503 + Retry-After"},
    {"http.max_json_depth", RECD_CONF_T_INT, OFF(http_max_json_depth), 1, 1000, 32, NULL, NULL, 1,
     "deepest array/object nesting accepted in JSON bodies"},
    {"http.retry_after_s", RECD_CONF_T_INT, OFF(http_retry_after_s), 0, 3600, 1, NULL, NULL, 1,
     "Retry-After value sent with 503 and 429, seconds"},
    {"admin.listen", RECD_CONF_T_LISTEN, OFF(admin_listen), 0, 0, 0, "127.0.0.1:8081", NULL, 0,
     "admin listener (/admin/*, also health, stats, metrics); \"\" disables it"},
    {"admin.token", RECD_CONF_T_STRING, OFF(admin_token), 0, 0, 0, "", NULL, 1,
     "bearer token required on /admin/*; required for a non-loopback admin.listen"},
    {"admin.token_file", RECD_CONF_T_PATH, OFF(admin_token_file), 0, 0, 0, "", NULL, 1,
     "file whose first line is the admin token (instead of admin.token)"},
    {"tls.cert", RECD_CONF_T_PATH, OFF(tls_cert), 0, 0, 0, "", NULL, 0,
     "PEM certificate chain for the public listener; \"\" = plain HTTP"},
    {"tls.key", RECD_CONF_T_PATH, OFF(tls_key), 0, 0, 0, "", NULL, 0,
     "PEM private key matching tls.cert"},
    {"log.level", RECD_CONF_T_ENUM, OFF(log_level), 0, 0, 0, "info", log_levels, 1,
     "debug, info, warn or error"},
    {"log.file", RECD_CONF_T_PATH, OFF(log_file), 0, 0, 0, "", NULL, 1,
     "append logs to this file (reopened on SIGUSR1); \"\" = stderr"},
    {"log.access", RECD_CONF_T_BOOL, OFF(log_access), 0, 1, 0, NULL, NULL, 1,
     "log one line per request at info level"},
    {"data_dir", RECD_CONF_T_PATH, OFF(data_dir), 1, 0, 0, "/var/lib/recd", NULL, 0,
     "state: event log, user histories, trained models"},
    {"models_dir", RECD_CONF_T_PATH, OFF(models_dir), 1, 0, 0, "/usr/local/share/recd/models", NULL,
     0, "model bundles, <models_dir>/<name>/<version>/"},
    {"shutdown_deadline_ms", RECD_CONF_T_INT, OFF(shutdown_deadline_ms), 0, 600000, 10000, NULL,
     NULL, 1, "on SIGTERM, in-flight requests get this long to finish"},
    {"shutdown_delay_ms", RECD_CONF_T_INT, OFF(shutdown_delay_ms), 0, 600000, 0, NULL, NULL, 1,
     "on SIGTERM, /readyz answers 503 but recd keeps accepting and serving this long before it "
     "closes its listeners, so a load balancer's health check takes it out first"},
    {"models.serve", RECD_CONF_T_STRING, OFF(models_serve), 0, 0, 0, "default", NULL, 0,
     "comma-separated model names to load from models_dir; \"\" = every directory there"},
    {"models.default", RECD_CONF_T_STRING, OFF(models_default), 1, 0, 0, "default", NULL, 1,
     "model used when a request does not name one"},
    {"ann.factory", RECD_CONF_T_STRING, OFF(ann_factory), 0, 0, 0, "", NULL, 0,
     "index type overriding the manifest: Flat, IVF<nlist>,Flat or HNSW<M>; \"\" = manifest"},
    {"ann.nprobe", RECD_CONF_T_INT, OFF(ann_nprobe), 0, 65536, 0, NULL, NULL, 0,
     "IVF lists visited per query; 0 = the manifest's value"},
    {"ann.ef_search", RECD_CONF_T_INT, OFF(ann_ef_search), 0, 65536, 0, NULL, NULL, 0,
     "HNSW search beam; 0 = the manifest's value"},
    {"ann.use_index_file", RECD_CONF_T_BOOL, OFF(ann_use_index_file), 0, 1, 1, NULL, NULL, 0,
     "read the bundle's index.faiss when present and consistent (else build at load)"},
    {"candgen.candidates", RECD_CONF_T_INT, OFF(candgen_candidates), 1, 10000, 300, NULL, NULL, 1,
     "candidates retrieved per request when the request does not say"},
    {"candgen.max_history", RECD_CONF_T_INT, OFF(candgen_max_history), 1, 100000, 1000, NULL, NULL,
     1, "longest request history accepted (400 above)"},
    {"rank.max_items", RECD_CONF_T_INT, OFF(rank_max_items), 1, 10000, 1000, NULL, NULL, 1,
     "most items one /v1/score request may list (400 above)"},
    {"events.enabled", RECD_CONF_T_BOOL, OFF(events_enabled), 0, 1, 1, NULL, NULL, 0,
     "accept POST /v1/events into the log under data_dir/events (false: 404)"},
    {"events.fsync", RECD_CONF_T_ENUM, OFF(events_fsync), 0, 0, 0, "interval_ms", fsync_policies, 0,
     "when a batch is acknowledged: always (after its fsync), interval_ms (after the group "
     "commit fsync covering it), never (once written to the kernel)"},
    {"events.interval_ms", RECD_CONF_T_INT, OFF(events_interval_ms), 1, 60000, 100, NULL, NULL, 0,
     "interval_ms policy: fsync at most this often (acknowledgements wait for it)"},
    {"events.segment_bytes", RECD_CONF_T_INT, OFF(events_segment_bytes), 4096, 1LL << 40, 64LL * MB,
     NULL, NULL, 0, "start a new segment file before one would grow past this"},
    {"events.retain_bytes", RECD_CONF_T_INT, OFF(events_retain_bytes), 0, 1LL << 50, 0, NULL, NULL,
     0, "delete the oldest segments while the log is larger than this; 0 = no limit"},
    {"events.retain_age_s", RECD_CONF_T_INT, OFF(events_retain_age_s), 0, 1LL << 40, 0, NULL, NULL,
     0, "delete segments last written longer ago than this; 0 = no limit"},
    {"events.queue_bytes", RECD_CONF_T_INT, OFF(events_queue_bytes), 4096, 1LL << 34, 16LL * MB,
     NULL, NULL, 0,
     "events waiting for the writer thread, bytes; past it POST /v1/events gets 503"},
    {"events.max_batch", RECD_CONF_T_INT, OFF(events_max_batch), 1, 100000, 1000, NULL, NULL, 1,
     "most events one POST /v1/events may carry (400 above)"},
    {"events.skip_corrupt", RECD_CONF_T_BOOL, OFF(events_skip_corrupt), 0, 1, 0, NULL, NULL, 0,
     "start even when a segment is corrupt in the middle (skipping the damage) instead of "
     "refusing"},
    {"history.max_users", RECD_CONF_T_INT, OFF(history_max_users), 1, 1LL << 32, 1000000, NULL,
     NULL, 0, "users kept in the history store; the least recently used are evicted"},
    {"history.max_items", RECD_CONF_T_INT, OFF(history_max_items), 1, 10000, 50, NULL, NULL, 0,
     "most recent positive interactions kept per user"},
    {"history.watch_min_s", RECD_CONF_T_INT, OFF(history_watch_min_s), 0, 1LL << 31, 30, NULL, NULL,
     0, "a watch event of at least this many seconds is a positive interaction"},
    {"history.rating_min", RECD_CONF_T_INT, OFF(history_rating_min), 0, 10, 4, NULL, NULL, 0,
     "a rating of at least this many stars is a positive interaction"},
    {"history.replay_bytes", RECD_CONF_T_INT, OFF(history_replay_bytes), 0, 1LL << 40, 256LL * MB,
     NULL, NULL, 0, "at start, rebuild histories from at most this many trailing bytes of the log"},
    {"history.replay_window_s", RECD_CONF_T_INT, OFF(history_replay_window_s), 0, 1LL << 40,
     30LL * 86400, NULL, NULL, 0,
     "at start, replay only events at most this old (by event ts); 0 = no age limit"},
    {"experiments", RECD_CONF_T_JSON, OFF(experiments), 0, 0, 0, "[]", NULL, 1,
     "A/B experiments: a JSON array of {name, salt, variants: [{name, weight, model, version, "
     "candidates, rank, score}]} (README \"A/B experiments\")"},
    {"models.keep_versions", RECD_CONF_T_INT, OFF(models_keep_versions), 1, 1000, 3, NULL, NULL, 1,
     "versions kept on disk per model; older ones are deleted (never the serving or a pinned one)"},
    {"models.watch", RECD_CONF_T_BOOL, OFF(models_watch), 0, 1, 1, NULL, NULL, 0,
     "watch models_dir with inotify and load new versions as they are published"},
    {"models.retry_initial_ms", RECD_CONF_T_INT, OFF(models_retry_initial_ms), 10, 3600000, 1000,
     NULL, NULL, 1, "first retry of a version that failed to load (doubling per failure)"},
    {"models.retry_max_ms", RECD_CONF_T_INT, OFF(models_retry_max_ms), 10, 86400000, 300000, NULL,
     NULL, 1, "longest wait between retries of a version that failed to load"},
    {"models.headroom_mb", RECD_CONF_T_INT, OFF(models_headroom_mb), 0, 1LL << 30, 256, NULL, NULL,
     1, "refuse to load a version unless this much memory stays available after it (MiB)"},
    {"models.loader_nice", RECD_CONF_T_INT, OFF(models_loader_nice), 0, 19, 10, NULL, NULL, 0,
     "nice level of the thread that loads and validates new versions"},
    {"models.warmup_rounds", RECD_CONF_T_INT, OFF(models_warmup_rounds), 0, 10000, 16, NULL, NULL,
     1, "warmup requests through both stages before a version starts serving"},
    {"trainer.enabled", RECD_CONF_T_BOOL, OFF(trainer_enabled), 0, 1, 0, NULL, NULL, 0,
     "run the embedded trainer thread (retrains from the event log, publishes better versions)"},
    {"trainer.model", RECD_CONF_T_STRING, OFF(trainer_model), 0, 0, 0, "", NULL, 1,
     "model the trainer retrains; \"\" = models.default"},
    {"trainer.interval_s", RECD_CONF_T_INT, OFF(trainer_interval_s), 1, 1LL << 31, 3600, NULL, NULL,
     1, "at most one training cycle per this many seconds"},
    {"trainer.min_new_events", RECD_CONF_T_INT, OFF(trainer_min_new_events), 1, 1LL << 40, 10000,
     NULL, NULL, 1, "a cycle starts only when the log has this many events since the last one"},
    {"trainer.holdout_pct", RECD_CONF_T_INT, OFF(trainer_holdout_pct), 1, 50, 10, NULL, NULL, 1,
     "newest percent of the events held out to compare the new model with the live one"},
    {"trainer.tolerance_bp", RECD_CONF_T_INT, OFF(trainer_tolerance_bp), 0, 10000, 50, NULL, NULL,
     1,
     "publish unless the new model is worse than the live one by more than this (1/10000 of the "
     "metric)"},
    {"trainer.nice", RECD_CONF_T_INT, OFF(trainer_nice), 0, 19, 19, NULL, NULL, 0,
     "nice level of the trainer thread"},
    {"trainer.max_memory_mb", RECD_CONF_T_INT, OFF(trainer_max_memory_mb), 64, 1LL << 30, 2048,
     NULL, NULL, 1, "skip a cycle whose estimated memory is above this (MiB)"},
    {"trainer.epochs", RECD_CONF_T_INT, OFF(trainer_epochs), 1, 100, 2, NULL, NULL, 1,
     "fine-tuning epochs per cycle (warm start from the live model)"},
    {"trainer.max_events", RECD_CONF_T_INT, OFF(trainer_max_events), 1000, 1LL << 32, 2000000, NULL,
     NULL, 1, "newest events of the log a cycle trains on"},
};

#define NKEYS (sizeof keys / sizeof keys[0])

const recd_conf_key_t *recd_conf_keys(size_t *n)
{
    *n = NKEYS;
    return keys;
}

const recd_conf_key_t *recd_conf_key_find(const char *path)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].path, path) == 0)
            return &keys[i];
    return NULL;
}

static int is_string_type(recd_conf_type_t t)
{
    return t == RECD_CONF_T_STRING || t == RECD_CONF_T_ENUM || t == RECD_CONF_T_LISTEN ||
           t == RECD_CONF_T_PATH || t == RECD_CONF_T_JSON;
}

static int64_t *int_at(recd_conf_t *c, const recd_conf_key_t *k)
{
    return (int64_t *)(void *)((char *)c + k->offset);
}
static int *bool_at(recd_conf_t *c, const recd_conf_key_t *k)
{
    return (int *)(void *)((char *)c + k->offset);
}
static char **str_at(recd_conf_t *c, const recd_conf_key_t *k)
{
    return (char **)(void *)((char *)c + k->offset);
}
static const int64_t *cint_at(const recd_conf_t *c, const recd_conf_key_t *k)
{
    return (const int64_t *)(const void *)((const char *)c + k->offset);
}
static const int *cbool_at(const recd_conf_t *c, const recd_conf_key_t *k)
{
    return (const int *)(const void *)((const char *)c + k->offset);
}
static char *const *cstr_at(const recd_conf_t *c, const recd_conf_key_t *k)
{
    return (char *const *)(const void *)((const char *)c + k->offset);
}

/* ---- errors ---------------------------------------------------------------- */

__attribute__((format(printf, 2, 3))) static void adderr(recd_conf_errors_t *e, const char *fmt,
                                                         ...)
{
    if (!e)
        return;
    char buf[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 8;
        char **nl = realloc(e->lines, cap * sizeof *nl);
        if (!nl)
            return;
        e->lines = nl;
        e->cap = cap;
    }
    char *s = strdup(buf);
    if (s)
        e->lines[e->n++] = s;
}

void recd_conf_errors_free(recd_conf_errors_t *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->lines[i]);
    free(e->lines);
    e->lines = NULL;
    e->n = e->cap = 0;
}

/* ---- snapshots -------------------------------------------------------------- */

void recd_conf_free(recd_conf_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < NKEYS; i++)
        if (is_string_type(keys[i].type))
            free(*str_at(c, &keys[i]));
    free(c);
}

recd_conf_t *recd_conf_new_defaults(void)
{
    recd_conf_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    for (size_t i = 0; i < NKEYS; i++) {
        const recd_conf_key_t *k = &keys[i];
        if (k->type == RECD_CONF_T_INT)
            *int_at(c, k) = k->def_int;
        else if (k->type == RECD_CONF_T_BOOL)
            *bool_at(c, k) = (int)k->def_int;
        else if (!(*str_at(c, k) = strdup(k->def_str ? k->def_str : ""))) {
            recd_conf_free(c);
            return NULL;
        }
    }
    return c;
}

recd_conf_t *recd_conf_dup(const recd_conf_t *src)
{
    recd_conf_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    memcpy(c, src, sizeof *c);
    for (size_t i = 0; i < NKEYS; i++)
        if (is_string_type(keys[i].type))
            *str_at(c, &keys[i]) = NULL;
    for (size_t i = 0; i < NKEYS; i++) {
        if (!is_string_type(keys[i].type))
            continue;
        if (!(*str_at(c, &keys[i]) = strdup(*cstr_at(src, &keys[i])))) {
            recd_conf_free(c);
            return NULL;
        }
    }
    return c;
}

/* ---- listen addresses ---------------------------------------------------------- */

int recd_conf_parse_listen(const char *s, struct sockaddr_storage *ss, unsigned *sslen,
                           recd_err_t *err)
{
    char host[64];
    const char *port;
    memset(ss, 0, sizeof *ss);
    if (!s || !*s)
        return recd_err_set(err, RECD_EINVAL, "empty address");
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':')
            return recd_err_set(err, RECD_EINVAL, "'%s': expected \"[v6addr]:port\"", s);
        size_t hl = (size_t)(end - s - 1);
        if (hl == 0 || hl >= sizeof host)
            return recd_err_set(err, RECD_EINVAL, "'%s': bad IPv6 address", s);
        memcpy(host, s + 1, hl);
        host[hl] = '\0';
        port = end + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon)
            return recd_err_set(err, RECD_EINVAL, "'%s': expected \"host:port\"", s);
        size_t hl = (size_t)(colon - s);
        if (hl >= sizeof host)
            return recd_err_set(err, RECD_EINVAL, "'%s': host too long", s);
        memcpy(host, s, hl);
        host[hl] = '\0';
        if (memchr(host, ':', hl))
            return recd_err_set(err, RECD_EINVAL, "'%s': IPv6 addresses need brackets", s);
        port = colon + 1;
    }
    if (!*port || strlen(port) > 5)
        return recd_err_set(err, RECD_EINVAL, "'%s': bad port", s);
    long p = 0;
    for (const char *q = port; *q; q++) {
        if (*q < '0' || *q > '9')
            return recd_err_set(err, RECD_EINVAL, "'%s': bad port", s);
        p = p * 10 + (*q - '0');
    }
    if (p > 65535)
        return recd_err_set(err, RECD_EINVAL, "'%s': port must be 0..65535", s);
    if (s[0] == '[') {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
            return recd_err_set(err, RECD_EINVAL, "'%s': bad IPv6 address", s);
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)p);
        *sslen = sizeof *a6;
        return 0;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    if (!*host || strcmp(host, "*") == 0)
        a4->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (strcmp(host, "localhost") == 0)
        a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
        return recd_err_set(err, RECD_EINVAL, "'%s': bad IPv4 address (hostnames are not resolved)",
                            s);
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)p);
    *sslen = sizeof *a4;
    return 0;
}

int recd_conf_listen_is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)ss;
        return (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)ss;
        return IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
    }
    return 0;
}

/* ---- setting values ---------------------------------------------------------------- */

static const char *type_name(recd_conf_type_t t)
{
    switch (t) {
    case RECD_CONF_T_INT: return "an integer";
    case RECD_CONF_T_BOOL: return "a boolean";
    case RECD_CONF_T_JSON: return "a JSON array";
    default: return "a string";
    }
}

static int set_int(recd_conf_t *c, const recd_conf_key_t *k, long long v, recd_conf_errors_t *e)
{
    if (v < k->min || v > k->max) {
        adderr(e, "%s: must be %lld..%lld, got %lld", k->path, (long long)k->min, (long long)k->max,
               v);
        return 1;
    }
    *int_at(c, k) = v;
    return 0;
}

static int set_str(recd_conf_t *c, const recd_conf_key_t *k, const char *v, recd_conf_errors_t *e)
{
    if (k->min == 1 && !*v) {
        adderr(e, "%s: must not be empty", k->path);
        return 1;
    }
    if (strlen(v) > 4096) {
        adderr(e, "%s: longer than 4096 bytes", k->path);
        return 1;
    }
    if (k->type == RECD_CONF_T_ENUM) {
        int ok = 0;
        for (const char *const *ev = k->enum_values; *ev; ev++)
            ok |= strcmp(*ev, v) == 0;
        if (!ok) {
            char allowed[256] = "";
            for (const char *const *ev = k->enum_values; *ev; ev++) {
                strncat(allowed, *ev, sizeof allowed - strlen(allowed) - 1);
                if (ev[1])
                    strncat(allowed, ", ", sizeof allowed - strlen(allowed) - 1);
            }
            adderr(e, "%s: must be one of %s, got \"%s\"", k->path, allowed, v);
            return 1;
        }
    }
    if (k->type == RECD_CONF_T_LISTEN && *v) {
        struct sockaddr_storage ss;
        unsigned len;
        recd_err_t err;
        if (recd_conf_parse_listen(v, &ss, &len, &err) < 0) {
            adderr(e, "%s: %s", k->path, err.msg);
            return 1;
        }
    }
    char *dup = strdup(v);
    if (!dup) {
        adderr(e, "%s: out of memory", k->path);
        return 1;
    }
    free(*str_at(c, k));
    *str_at(c, k) = dup;
    return 0;
}

/* A JSON-typed key: validate (experiments: the whole A/B definition, with
 * the offending field's path in the message) and store compact text. */
static int set_json(recd_conf_t *c, const recd_conf_key_t *k, json_t *v, recd_conf_errors_t *e)
{
    if (!json_is_array(v) && !json_is_null(v)) {
        adderr(e, "%s: expected %s", k->path, type_name(k->type));
        return 1;
    }
    if (strcmp(k->path, "experiments") == 0) {
        recd_ab_set_t set;
        recd_err_t err;
        if (recd_ab_set_parse(v, "experiments", &set, &err) < 0) {
            adderr(e, "%s", err.msg);
            return 1;
        }
        recd_ab_set_free(&set);
    }
    char *text = json_is_null(v) ? strdup("[]") : json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text) {
        adderr(e, "%s: out of memory", k->path);
        return 1;
    }
    free(*str_at(c, k));
    *str_at(c, k) = text;
    return 0;
}

/* Apply one JSON value to key k. */
static int apply_value(recd_conf_t *c, const recd_conf_key_t *k, json_t *v, recd_conf_errors_t *e)
{
    switch (k->type) {
    case RECD_CONF_T_JSON: return set_json(c, k, v, e);
    case RECD_CONF_T_INT:
        if (!json_is_integer(v)) {
            adderr(e, "%s: expected %s", k->path, type_name(k->type));
            return 1;
        }
        return set_int(c, k, (long long)json_integer_value(v), e);
    case RECD_CONF_T_BOOL:
        if (!json_is_boolean(v)) {
            adderr(e, "%s: expected %s", k->path, type_name(k->type));
            return 1;
        }
        *bool_at(c, k) = json_is_true(v);
        return 0;
    default:
        if (!json_is_string(v)) {
            adderr(e, "%s: expected %s", k->path, type_name(k->type));
            return 1;
        }
        if (strlen(json_string_value(v)) != json_string_length(v)) {
            adderr(e, "%s: contains a NUL byte", k->path);
            return 1;
        }
        return set_str(c, k, json_string_value(v), e);
    }
}

/* Is `prefix` the start of some key path followed by '.'? */
static int is_section(const char *prefix)
{
    size_t n = strlen(prefix);
    for (size_t i = 0; i < NKEYS; i++)
        if (strncmp(keys[i].path, prefix, n) == 0 && keys[i].path[n] == '.')
            return 1;
    return 0;
}

static int walk(recd_conf_t *c, json_t *obj, const char *prefix, recd_conf_errors_t *e)
{
    int nerr = 0;
    const char *name;
    json_t *v;
    json_object_foreach (obj, name, v) {
        char path[256];
        int n = snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", name);
        if (n < 0 || (size_t)n >= sizeof path) {
            adderr(e, "%.64s...: key path too long", path);
            nerr++;
            continue;
        }
        const recd_conf_key_t *k = recd_conf_key_find(path);
        if (json_is_object(v) && !(k && k->type == RECD_CONF_T_JSON)) {
            if (k) {
                adderr(e, "%s: expected %s, got an object", path, type_name(k->type));
                nerr++;
            } else if (is_section(path)) {
                nerr += walk(c, v, path, e);
            } else {
                adderr(e, "%s: unknown key", path);
                nerr++;
            }
            continue;
        }
        if (!k) {
            if (is_section(path))
                adderr(e, "%s: expected an object", path);
            else
                adderr(e, "%s: unknown key", path);
            nerr++;
            continue;
        }
        nerr += apply_value(c, k, v, e);
    }
    return nerr;
}

int recd_conf_apply_json_text(recd_conf_t *c, const char *text, size_t len, const char *origin,
                              recd_conf_errors_t *errs)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        adderr(errs, "%s: line %d, column %d: %s", origin ? origin : "config", jerr.line,
               jerr.column, jerr.text);
        return 1;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        adderr(errs, "%s: the top level must be an object", origin ? origin : "config");
        return 1;
    }
    int n = walk(c, root, "", errs);
    json_decref(root);
    return n;
}

int recd_conf_apply_file(recd_conf_t *c, const char *path, recd_conf_errors_t *errs)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        adderr(errs, "%s: cannot open: %s", path, strerror(errno));
        return 1;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 8192;
            if (cap > 16 * MB) {
                free(buf);
                fclose(f);
                adderr(errs, "%s: larger than 16 MiB", path);
                return 1;
            }
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                adderr(errs, "%s: out of memory", path);
                return 1;
            }
            buf = nb;
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0)
            break;
    }
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        free(buf);
        adderr(errs, "%s: read error", path);
        return 1;
    }
    int n = recd_conf_apply_json_text(c, buf ? buf : "", len, path, errs);
    free(buf);
    return n;
}

int recd_conf_apply_set(recd_conf_t *c, const char *kv, recd_conf_errors_t *errs)
{
    const char *eq = strchr(kv, '=');
    if (!eq) {
        adderr(errs, "--set %s: expected key=value", kv);
        return 1;
    }
    char path[256];
    size_t pl = (size_t)(eq - kv);
    if (pl == 0 || pl >= sizeof path) {
        adderr(errs, "--set %s: bad key", kv);
        return 1;
    }
    memcpy(path, kv, pl);
    path[pl] = '\0';
    const char *v = eq + 1;
    const recd_conf_key_t *k = recd_conf_key_find(path);
    if (!k) {
        adderr(errs, "%s: unknown key", path);
        return 1;
    }
    if (k->type == RECD_CONF_T_INT) {
        errno = 0;
        char *end;
        long long x = strtoll(v, &end, 10);
        if (!*v || *end || errno == ERANGE || *v == ' ' || *v == '+') {
            adderr(errs, "%s: expected an integer, got \"%s\"", path, v);
            return 1;
        }
        return set_int(c, k, x, errs);
    }
    if (k->type == RECD_CONF_T_BOOL) {
        if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
            *bool_at(c, k) = 1;
        else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
            *bool_at(c, k) = 0;
        else {
            adderr(errs, "%s: expected true or false, got \"%s\"", path, v);
            return 1;
        }
        return 0;
    }
    if (k->type == RECD_CONF_T_JSON) {
        json_error_t jerr;
        json_t *j = json_loads(v, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
        if (!j) {
            adderr(errs, "%s: not JSON: %s (column %d)", path, jerr.text, jerr.column);
            return 1;
        }
        int r = set_json(c, k, j, errs);
        json_decref(j);
        return r;
    }
    return set_str(c, k, v, errs);
}

static unsigned port_of(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET ? ntohs(((const struct sockaddr_in *)ss)->sin_port)
                                    : ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static int is_any(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

static int same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
}

int recd_conf_validate(const recd_conf_t *c, recd_conf_errors_t *errs)
{
    int n = 0;
    if (!*c->tls_cert != !*c->tls_key) {
        adderr(errs, "%s: tls.cert and tls.key must be set together",
               *c->tls_cert ? "tls.key" : "tls.cert");
        n++;
    }
    if (*c->admin_token && *c->admin_token_file) {
        adderr(errs, "admin.token_file: set either admin.token or admin.token_file, not both");
        n++;
    }
    if (*c->admin_listen) {
        struct sockaddr_storage a, p;
        unsigned al, pl;
        if (recd_conf_parse_listen(c->admin_listen, &a, &al, NULL) == 0) {
            if (!recd_conf_listen_is_loopback(&a) && !*c->admin_token && !*c->admin_token_file) {
                adderr(errs,
                       "admin.listen: %s is not a loopback address; set admin.token or "
                       "admin.token_file",
                       c->admin_listen);
                n++;
            }
            /* Same port and family with equal or wildcard addresses: with
             * SO_REUSEPORT both binds could succeed and split traffic. */
            if (recd_conf_parse_listen(c->http_listen, &p, &pl, NULL) == 0 &&
                a.ss_family == p.ss_family && port_of(&a) != 0 && port_of(&a) == port_of(&p) &&
                (same_host(&a, &p) || is_any(&a) || is_any(&p))) {
                adderr(errs, "admin.listen: %s overlaps http.listen (%s)", c->admin_listen,
                       c->http_listen);
                n++;
            }
        }
    }
    return n;
}

recd_conf_t *recd_conf_load(const char *file, const char *const *sets, size_t nsets,
                            recd_conf_errors_t *errs)
{
    recd_conf_t *c = recd_conf_new_defaults();
    if (!c) {
        adderr(errs, "out of memory");
        return NULL;
    }
    int n = 0;
    if (file)
        n += recd_conf_apply_file(c, file, errs);
    for (size_t i = 0; i < nsets; i++)
        n += recd_conf_apply_set(c, sets[i], errs);
    if (n == 0)
        n += recd_conf_validate(c, errs);
    if (n) {
        recd_conf_free(c);
        return NULL;
    }
    return c;
}

static int values_equal(const recd_conf_t *a, const recd_conf_t *b, const recd_conf_key_t *k)
{
    if (k->type == RECD_CONF_T_INT)
        return *cint_at(a, k) == *cint_at(b, k);
    if (k->type == RECD_CONF_T_BOOL)
        return *cbool_at(a, k) == *cbool_at(b, k);
    return strcmp(*cstr_at(a, k), *cstr_at(b, k)) == 0;
}

recd_conf_t *recd_conf_merge_reload(const recd_conf_t *cur, const recd_conf_t *next,
                                    recd_conf_errors_t *ignored)
{
    recd_conf_t *c = recd_conf_dup(next);
    if (!c)
        return NULL;
    for (size_t i = 0; i < NKEYS; i++) {
        const recd_conf_key_t *k = &keys[i];
        if (k->reloadable || values_equal(cur, next, k))
            continue;
        adderr(ignored, "%s changed; restart to apply it (keeping the running value)", k->path);
        if (k->type == RECD_CONF_T_INT)
            *int_at(c, k) = *cint_at(cur, k);
        else if (k->type == RECD_CONF_T_BOOL)
            *bool_at(c, k) = *cbool_at(cur, k);
        else {
            char *d = strdup(*cstr_at(cur, k));
            if (!d) {
                recd_conf_free(c);
                return NULL;
            }
            free(*str_at(c, k));
            *str_at(c, k) = d;
        }
    }
    return c;
}

/* ---- publication ---------------------------------------------------------------------- */

static _Atomic(recd_conf_t *) current;
/* Retired snapshots, freed at shutdown. Protected by retired_lock. */
static pthread_mutex_t retired_lock = PTHREAD_MUTEX_INITIALIZER;
static recd_conf_t **retired;
static size_t nretired, capretired;

void recd_conf_publish(recd_conf_t *c)
{
    recd_conf_t *old = atomic_exchange_explicit(&current, c, memory_order_acq_rel);
    if (!old)
        return;
    pthread_mutex_lock(&retired_lock);
    if (nretired == capretired) {
        size_t cap = capretired ? capretired * 2 : 8;
        recd_conf_t **n = realloc(retired, cap * sizeof *n);
        if (n) {
            retired = n;
            capretired = cap;
        }
    }
    if (nretired < capretired)
        retired[nretired++] = old;
    /* else: leak rather than free under a reader */
    pthread_mutex_unlock(&retired_lock);
}

const recd_conf_t *recd_conf_current(void)
{
    return atomic_load_explicit(&current, memory_order_acquire);
}

void recd_conf_shutdown(void)
{
    recd_conf_free(atomic_exchange(&current, NULL));
    pthread_mutex_lock(&retired_lock);
    for (size_t i = 0; i < nretired; i++)
        recd_conf_free(retired[i]);
    free(retired);
    retired = NULL;
    nretired = capretired = 0;
    pthread_mutex_unlock(&retired_lock);
}

char *recd_conf_dump_json(const recd_conf_t *c)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    for (size_t i = 0; i < NKEYS; i++) {
        const recd_conf_key_t *k = &keys[i];
        json_t *v;
        if (k->type == RECD_CONF_T_INT)
            v = json_integer((json_int_t)*cint_at(c, k));
        else if (k->type == RECD_CONF_T_BOOL)
            v = json_boolean(*cbool_at(c, k));
        else if (strcmp(k->path, "admin.token") == 0 && **cstr_at(c, k))
            v = json_string("<redacted>");
        else if (k->type == RECD_CONF_T_JSON)
            v = json_loads(*cstr_at(c, k), JSON_DECODE_ANY, NULL);
        else
            v = json_string(*cstr_at(c, k));
        json_object_set_new(o, k->path, v);
    }
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}
