/*
 * recd-load: the HTTP/1.1 client: a pool of at most max_conns keep-alive
 * connections to one address, on one libevent event_base (one thread).
 *
 * A submitted request goes at once to an idle connection (the most
 * recently used one), else to a newly opened connection while fewer than
 * max_conns are open, else into a FIFO served as connections free up. One
 * request per connection at a time (no pipelining). Responses are framed
 * by Content-Length (a response without one is read until the server
 * closes; chunked responses are refused as a protocol error). A connection
 * the server closes (Connection: close, HTTP/1.0, an idle keep-alive
 * timeout) is dropped and replaced on demand. Each request has its own
 * timeout from when it was handed to a connection; on expiry the
 * connection is closed.
 *
 * Every submitted request ends in exactly one call of the done callback:
 * LG_OUT_RESPONSE, LG_OUT_TIMEOUT, LG_OUT_CONN_ERROR (connect failure,
 * reset, EOF before the full response, malformed response) or
 * LG_OUT_NOT_SENT (lg_client_drop_queued). The callback may read the
 * client's counters and stop the event loop, but must not call the other
 * lg_client functions.
 */
#ifndef RECD_LOAD_CLIENT_H
#define RECD_LOAD_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "report.h"

struct event_base;

/* One request. Its bytes are made by the fill callback when a connection
 * takes it (so a long queue holds no request bodies) and freed once
 * written. */
typedef struct lg_req {
    struct lg_req *next; /* FIFO link */
    uint64_t t_ns;       /* intended send time (monotonic ns) */
    uint64_t sent_ns;    /* first byte written (monotonic ns; 0 before) */
    char *data;          /* the HTTP request bytes, or NULL until filled */
    size_t len;
    uint32_t nevents;
    uint8_t ep;
    uint8_t measured; /* after the warmup */
} lg_req_t;

typedef void (*lg_done_fn)(void *arg, lg_req_t *req, lg_outcome_t out, int status, uint64_t now_ns);
/* Set req->data/len (malloc'ed) just before req is written; 0, or -1 (the
 * request then ends as LG_OUT_CONN_ERROR). Called in FIFO order. Must not
 * call the lg_client functions. */
typedef int (*lg_fill_fn)(void *arg, lg_req_t *req);

typedef struct lg_client lg_client_t;

/* A client for the address sa (copied). timeout_ms > 0; fill may be NULL
 * when every submitted request already has its data. NULL when out of
 * memory. */
lg_client_t *lg_client_new(struct event_base *base, const struct sockaddr *sa, socklen_t salen,
                           unsigned max_conns, unsigned timeout_ms, lg_done_fn done,
                           lg_fill_fn fill, void *arg);
/* Open one connection ahead of the run, waiting for it (blocking) at most
 * timeout_ms; it becomes idle in the pool. 0, or the errno of the failure
 * (ECONNREFUSED, ETIMEDOUT, ...). */
int lg_client_preconnect(lg_client_t *c, unsigned timeout_ms);
/* Send r (the client owns it until the done callback). */
void lg_client_submit(lg_client_t *c, lg_req_t *r);
/* End every queued (never sent) request with LG_OUT_NOT_SENT; returns how
 * many. */
size_t lg_client_drop_queued(lg_client_t *c);
/* End every request in flight with LG_OUT_TIMEOUT and close all
 * connections. */
void lg_client_abort(lg_client_t *c);
/* Requests written and not yet answered / waiting for a connection. */
size_t lg_client_inflight(const lg_client_t *c);
size_t lg_client_queued(const lg_client_t *c);
/* Connections opened so far (successful or not), and established. */
uint64_t lg_client_opened(const lg_client_t *c);
uint64_t lg_client_established(const lg_client_t *c);
/* Close everything and free the client. Requests still held are freed
 * without a callback. */
void lg_client_free(lg_client_t *c);

#endif
