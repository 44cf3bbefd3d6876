/*
 * recd http: an HTTP/1.1 server on libevent bufferevents (optionally TLS
 * through bufferevent_openssl), one event loop per worker thread, each
 * worker accepting on its own SO_REUSEPORT socket, plus an admin listener on
 * the main thread's loop.
 *
 * Why not evhttp: libevent 2.1.12's evhttp answers malformed requests with
 * its own HTML bodies and status codes (413 for oversized headers, no 431),
 * accepts Content-Length together with Transfer-Encoding, and has only idle
 * timeouts, no connection cap and no hook to answer before headers complete.
 * Every one of those is a requirement here, so recd parses requests itself
 * (parse.c, a pure function fuzzed on its own) and keeps libevent for the
 * loop, sockets, timers, buffering and TLS.
 */
#ifndef RECD_HTTP_H
#define RECD_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "recd/conf.h"
#include "recd/core.h"

/* ---- methods --------------------------------------------------------------- */
enum {
    RECD_HTTP_GET = 1 << 0,
    RECD_HTTP_HEAD = 1 << 1,
    RECD_HTTP_POST = 1 << 2,
    RECD_HTTP_PUT = 1 << 3,
    RECD_HTTP_DELETE = 1 << 4,
    RECD_HTTP_OPTIONS = 1 << 5,
    RECD_HTTP_PATCH = 1 << 6,
    RECD_HTTP_OTHER = 1 << 7, /* syntactically valid token we do not know */
};
const char *recd_http_method_name(int m);
const char *recd_http_status_text(int status);

/* ---- request head parser (pure, no I/O; parse.c) ---------------------------- */

#define RECD_HTTP_MAX_HEADERS_HARD 256

typedef struct recd_http_header {
    const char *name; /* points into the parsed buffer; not NUL-terminated */
    size_t name_len;
    const char *value; /* OWS trimmed */
    size_t value_len;
} recd_http_header_t;

typedef struct recd_http_head {
    int method;             /* RECD_HTTP_* */
    const char *method_str; /* as sent */
    size_t method_len;
    const char *target; /* request-target as sent */
    size_t target_len;
    const char *path; /* target up to '?' */
    size_t path_len;
    const char *query; /* after '?', or NULL */
    size_t query_len;
    int minor; /* HTTP/1.<minor>: 0 or 1 */
    recd_http_header_t headers[RECD_HTTP_MAX_HEADERS_HARD];
    size_t nheaders;
    size_t head_len; /* bytes consumed, including the blank line */
    /* framing, derived from the headers */
    int chunked;            /* Transfer-Encoding: chunked */
    int64_t content_length; /* -1 when absent */
    int keep_alive;         /* after this request */
    int expect_continue;    /* Expect: 100-continue */
    const char *request_id; /* X-Request-Id as sent, or NULL */
    size_t request_id_len;
    const char *content_type; /* or NULL */
    size_t content_type_len;
} recd_http_head_t;

/* A parse failure: the status to answer, an error code, the field at fault
 * ("header:Content-Length", "method", "target", ...) and a message. */
typedef struct recd_http_perr {
    int status;       /* 400, 405(unused here), 413, 417, 431, 501, 505 */
    const char *code; /* "bad_request", "headers_too_large", ... */
    char field[64];
    char msg[160];
} recd_http_perr_t;

typedef struct recd_http_limits {
    size_t max_header_bytes;
    size_t max_headers;
    int64_t max_body_bytes;
} recd_http_limits_t;

/* Parse one request head from buf[0..len). Leading CRLFs are skipped (and
 * counted in head_len). Returns:
 *   1  head complete, *h filled (pointers into buf), h->head_len consumed;
 *   0  need more bytes (and len is still within the header limit);
 *  -1  error, *e filled; the connection must be answered and closed.
 * Strict: CRLF line ends only, no obs-fold, no NUL/CTL bytes, token header
 * names with no space before ':', one Host (HTTP/1.1), Content-Length
 * digits only and consistent, Transfer-Encoding only "chunked" and never
 * with Content-Length, body limit checked against Content-Length. */
int recd_http_parse_head(const char *buf, size_t len, const recd_http_limits_t *lim,
                         recd_http_head_t *h, recd_http_perr_t *e);

/* Find a header (case-insensitive name); returns value or NULL. */
const char *recd_http_head_get(const recd_http_head_t *h, const char *name, size_t *value_len);

/* Incremental chunked-body decoder. */
typedef struct recd_http_chunked {
    int state;          /* internal */
    uint64_t remaining; /* bytes left in the current chunk */
    int64_t total;      /* decoded bytes so far */
    size_t line_len;    /* bytes of the current size/trailer line seen */
    size_t trailer_bytes;
} recd_http_chunked_t;

void recd_http_chunked_init(recd_http_chunked_t *c);
/* Feed in[0..len). Decoded data is appended to out (capacity out_cap,
 * *out_len updated); *consumed is set to the input bytes used. Returns
 * 1 when the body (including trailers) is complete, 0 when more input is
 * needed, -1 on error with *e filled (413 past max_body, 431 for trailers
 * larger than max_header_bytes, 400 otherwise). */
int recd_http_chunked_feed(recd_http_chunked_t *c, const char *in, size_t len, size_t *consumed,
                           char *out, size_t out_cap, size_t *out_len,
                           const recd_http_limits_t *lim, recd_http_perr_t *e);

/* ---- limit arithmetic (limits.c; pure) -------------------------------------- */

/* Strict decimal parse of a Content-Length value: digits only, no sign, no
 * spaces, no overflow (<= INT64_MAX). Returns 0 and *out, or -1. */
int recd_http_parse_content_length(const char *s, size_t len, int64_t *out);
/* Hex chunk size (1..16 hex digits, value <= INT64_MAX). Returns 0 or -1. */
int recd_http_parse_chunk_size(const char *s, size_t len, uint64_t *out);
/* Would a body of `have` bytes plus `add` exceed max? (no overflow) */
int recd_http_body_exceeds(int64_t have, uint64_t add, int64_t max);
/* May a new request start on a worker with `inflight` requests? */
int recd_http_inflight_admit(uint64_t inflight, int64_t max_inflight);
/* May a new connection be accepted with `open` connections? */
int recd_http_conn_admit(uint64_t open, int64_t max_connections);
/* Milliseconds left before an absolute deadline (0 if passed). */
uint64_t recd_http_deadline_left_ms(uint64_t start_us, uint64_t now_us, int64_t deadline_ms);

/* ---- JSON bodies (json.c) ---------------------------------------------------- */

/* Maximum nesting depth of arrays/objects in text, ignoring brackets inside
 * strings; stops early once depth exceeds limit (returns limit + 1). */
int recd_json_depth(const char *text, size_t len, int limit);

/* ---- server ------------------------------------------------------------------ */

typedef struct recd_http_req recd_http_req_t;
typedef struct recd_http_server recd_http_server_t;

/* A handler answers with one of the recd_http_respond* calls before it
 * returns (or later on the same thread, then it returns RECD_HTTP_ASYNC and
 * must eventually respond). */
#define RECD_HTTP_ASYNC 1
typedef int (*recd_http_handler_fn)(recd_http_req_t *req, void *arg);

enum {
    RECD_ROUTE_JSON_BODY = 1 << 0, /* body must be application/json (415) */
    RECD_ROUTE_ADMIN = 1 << 1,     /* admin listener only, bearer token */
    RECD_ROUTE_BOTH = 1 << 2,      /* served on public and admin listeners */
};

typedef struct recd_http_route {
    int methods;         /* RECD_HTTP_* mask; HEAD is implied by GET */
    const char *pattern; /* "/v1/similar/{item_id}": {x} matches one segment */
    unsigned flags;      /* RECD_ROUTE_* */
    recd_http_handler_fn fn;
    void *arg;
    unsigned stats_id; /* filled by recd_http_server_new */
} recd_http_route_t;

typedef struct recd_http_server_opts {
    const recd_http_route_t *routes; /* copied */
    size_t nroutes;
    unsigned workers; /* >= 1 */
} recd_http_server_opts_t;

/* Create the server: binds the public listener (one SO_REUSEPORT socket per
 * worker) and the admin listener from the current config, loads TLS
 * material. Nothing is accepted until recd_http_server_start(). The admin
 * listener runs on main_base (the caller's loop, which also handles
 * signals). Returns NULL and fills err on failure (address in use, bad
 * certificate, ...). */
struct event_base;
recd_http_server_t *recd_http_server_new(const recd_http_server_opts_t *o,
                                         struct event_base *main_base, recd_err_t *err);
/* Set (or clear with NULL/"") the admin bearer token; only its SHA-256 is
 * kept. Main thread only (the admin listener runs there). */
void recd_http_server_set_admin_token(recd_http_server_t *s, const char *token);
/* Start the worker threads. */
int recd_http_server_start(recd_http_server_t *s, recd_err_t *err);
/* Stop accepting on every listener, close idle connections, let in-flight
 * requests finish (their responses carry Connection: close). Callable from
 * the main thread. */
void recd_http_server_drain(recd_http_server_t *s);
/* Open connections across all workers and the admin listener. */
uint64_t recd_http_server_open_conns(recd_http_server_t *s);
/* Force-close everything, stop and join the workers, free. */
void recd_http_server_free(recd_http_server_t *s);
/* Actual bound port of the public / admin listener (for --set ...:0). */
int recd_http_server_port(recd_http_server_t *s, int admin);
/* True when every worker's heartbeat advanced since the previous call
 * (used to gate systemd watchdog pings). Main thread only. */
int recd_http_server_workers_alive(recd_http_server_t *s);

/* Cross-thread wake-up for async handlers (RECD_HTTP_ASYNC): after
 * recd_http_server_wake(s, i) from any thread, fn(i, arg) runs on thread
 * i's event loop (i = recd_http_req_worker of the request; wakes before fn
 * runs may coalesce into one call). Set before recd_http_server_start. */
void recd_http_server_set_wake(recd_http_server_t *s, void (*fn)(unsigned worker, void *arg),
                               void *arg);
void recd_http_server_wake(recd_http_server_t *s, unsigned worker);
/* Run fn(arg) on thread `worker`'s loop (a request's recd_http_req_worker,
 * which for the admin listener is the main thread), after the current
 * callback; closures run in the order posted. For async handlers whose work
 * finishes on another thread. Returns 0, or -1 (no such worker, out of
 * memory: fn will not run). Closures still queued when the server is freed
 * are dropped without running. Thread-safe. */
int recd_http_server_post(recd_http_server_t *s, unsigned worker, void (*fn)(void *arg), void *arg);

/* ---- request accessors (valid until the response is sent) ------------------ */
int recd_http_req_method(const recd_http_req_t *r);
const char *recd_http_req_path(const recd_http_req_t *r); /* NUL-terminated */
const char *recd_http_req_id(const recd_http_req_t *r);   /* NUL-terminated */
/* Path parameter {name} (percent-decoded) or NULL. */
const char *recd_http_req_param(const recd_http_req_t *r, const char *name);
/* Query parameter (percent-decoded, '+' = space) or NULL; first wins. */
const char *recd_http_req_query(const recd_http_req_t *r, const char *name);
/* First query parameter name not in `allowed` (NULL-terminated list), as a
 * decoded copy in the request arena, or NULL when every name is allowed. */
const char *recd_http_req_query_unknown(const recd_http_req_t *r, const char *const *allowed);
/* Request header (case-insensitive) as a NUL-terminated copy, or NULL. */
const char *recd_http_req_header(const recd_http_req_t *r, const char *name);
const char *recd_http_req_body(const recd_http_req_t *r, size_t *len);
int recd_http_req_is_admin(const recd_http_req_t *r);
unsigned recd_http_req_worker(const recd_http_req_t *r);
recd_http_server_t *recd_http_req_server(const recd_http_req_t *r);
recd_arena_t *recd_http_req_arena(recd_http_req_t *r);

/* Parse the body as a JSON object/array with the configured depth limit;
 * on failure answers 400 (with line and column) or 415 itself and returns
 * NULL. Returns a new reference. */
struct json_t *recd_http_req_json(recd_http_req_t *r);

/* ---- responses (exactly one per request) ------------------------------------ */
/* Add a response header (copied). */
void recd_http_resp_header(recd_http_req_t *r, const char *name, const char *value);
/* Send status with body (copied) and content type. */
void recd_http_respond(recd_http_req_t *r, int status, const char *ctype, const char *body,
                       size_t len);
/* Send a JSON value (steals the reference). */
void recd_http_respond_json(recd_http_req_t *r, int status, struct json_t *body);
/* Send {"error":{"code","message","field"}}; field may be NULL. 503 and 429
 * get Retry-After. */
void recd_http_respond_error(recd_http_req_t *r, int status, const char *code, const char *field,
                             const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Render an error body into buf (used for responses sent outside a
 * request, e.g. 408 and 431). Returns the length written; buf is
 * NUL-terminated. */
size_t recd_http_error_body(char *buf, size_t cap, const char *code, const char *field,
                            const char *msg);

/* ---- testing and fuzzing ------------------------------------------------------
 * Run `in` through the real connection code (parser, limits, router,
 * handlers, response writer) on a private event loop over a socketpair, as
 * if one client connection sent those bytes and then half-closed. The
 * current config snapshot applies (defaults when none is published). The
 * bytes the server wrote come back in *out (malloc'd, caller frees).
 * Returns 0, or a negative RECD_E* on set-up failure. Not thread-safe. */
int recd_http_selftest_feed(const recd_http_route_t *routes, size_t nroutes, const char *in,
                            size_t len, char **out, size_t *out_len);

#endif
