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

#endif
