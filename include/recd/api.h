/*
 * recd api: the HTTP handlers and the route table. Handlers run on the
 * worker (or admin) thread that owns the request.
 */
#ifndef RECD_API_H
#define RECD_API_H

#include <stddef.h>

#include "recd/http.h"

/* Hooks the daemon gives the API (all called on the admin/main thread). */
typedef struct recd_api_hooks {
    /* POST /admin/reload: reload config like SIGHUP. Returns 0 or fills
     * err; msg_out receives a short summary. */
    int (*reload)(void *arg, recd_err_t *err);
    /* PUT /admin/config: apply "key=value" overrides (reloadable keys only)
     * atomically; returns 0 or fills err (message names the key). */
    int (*set_config)(void *arg, const char *const *sets, size_t nsets, recd_err_t *err);
    void *arg;
    /* POST /admin/train: start a trainer cycle now. Returns 0, RECD_EAGAIN
     * (a cycle is running) or RECD_ENOENT (no trainer); NULL = no trainer. */
    int (*train)(void *arg, recd_err_t *err);
} recd_api_hooks_t;

/* The route table (static storage). */
const recd_http_route_t *recd_api_routes(size_t *n, const recd_api_hooks_t *hooks);

/* Readiness: /readyz answers 503 until set (start-up complete; later
 * issues add "models loaded and warmed"). Thread-safe. */
void recd_api_set_ready(int ready);
/* Message of the 503 while not ready; `why` must stay valid (a literal or
 * a buffer that lives as long as the process). */
void recd_api_set_not_ready_reason(const char *why);
int recd_api_is_ready(void);

/* ---- events and history (events.c) -----------------------------------------
 * Set-up order: recd_api_events_init (before the log opens: the log's
 * on_ack callback reads this state), recd_evlog_open with
 * opts.on_ack = recd_api_events_on_ack, recd_api_events_set_log,
 * recd_api_events_replay, then recd_api_events_attach_server before the
 * server starts. Tear-down: detach_server, free the server, close the log,
 * recd_api_events_shutdown (which does not touch the closed log). */
#include "recd/events.h"
#include "recd/history.h"

/* State for nthreads request threads (stats thread indexes); hist may be
 * NULL (no history store). Adds the "events" and "history" stats sections. */
int recd_api_events_init(unsigned nthreads, recd_history_t *hist, recd_err_t *err);
/* The open log (NULL: events disabled, POST /v1/events answers 404); dir is
 * shown in /stats and must outlive the server. */
void recd_api_events_set_log(recd_evlog_t *log, const char *dir);
/* For recd_evlog_opts_t.on_ack: wake the workers with parked requests. */
void recd_api_events_on_ack(void *ctx);
void recd_api_events_attach_server(recd_http_server_t *srv);
void recd_api_events_detach_server(void);
void recd_api_events_shutdown(void);
/* 1 when the log has failed (why: a sentence for /readyz). */
int recd_api_events_failed(char *why, size_t cap);
/* The history store, or NULL. */
recd_history_t *recd_api_history(void);

/* Rebuild the history store (and the A/B event counters) from the log
 * records at offsets [from, ...) of dir (events.skip_corrupt applies):
 * positives per history.* with ts no older than history.replay_window_s.
 * to is recorded for /stats only. Returns 0 or the reader's error. */
typedef struct recd_api_replay_stats {
    uint64_t from_offset, to_offset;
    uint64_t records, replayed, positives, too_old, undecodable, corrupt_regions;
    double duration_ms;
} recd_api_replay_stats_t;
int recd_api_events_replay(const char *dir, uint64_t from, uint64_t to, recd_err_t *err);

#endif
