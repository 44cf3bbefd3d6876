/* recd-load: keep-alive connection pool over libevent (see client.h). */
#include "client.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/util.h>

#include "recd/core.h"

#include "httpresp.h"

enum { P_HEAD, P_BODY, P_UNTIL_CLOSE };

/* Per-connection input buffer: room for the largest head plus a read. */
#define IN_CAP (LG_RESP_HEAD_MAX + 16384)

typedef struct conn {
    lg_client_t *c;
    int fd;
    struct event *rev;   /* persistent read readiness (once connected) */
    struct event *wev;   /* connect completion and blocked writes */
    struct event *timer; /* the request's timeout */
    lg_req_t *req;       /* in flight, or NULL */
    size_t out_off;      /* bytes of req->data written */
    int connected;
    int idle;
    int parse;
    int64_t body_left;
    lg_resp_head_t head;
    char *in;
    size_t in_off, in_len, scanned;
    struct conn *prev, *next;           /* all connections */
    struct conn *idle_prev, *idle_next; /* idle stack */
} conn_t;

struct lg_client {
    struct event_base *base;
    struct sockaddr_storage sa;
    socklen_t salen;
    unsigned max_conns;
    const struct timeval *tv_timeout; /* a libevent common timeout */
    lg_done_fn done;
    lg_fill_fn fill;
    void *arg;
    conn_t *all, *idle;
    unsigned nconns;
    lg_req_t *q_head, *q_tail;
    size_t nqueued, inflight;
    uint64_t opened, established;
};

static uint64_t now_ns(void)
{
    return recd_time_mono_ns();
}

/* ---- connection list bookkeeping --------------------------------------------- */

static void idle_push(lg_client_t *c, conn_t *k)
{
    k->idle = 1;
    k->idle_prev = NULL;
    k->idle_next = c->idle;
    if (c->idle)
        c->idle->idle_prev = k;
    c->idle = k;
}

static void idle_remove(lg_client_t *c, conn_t *k)
{
    if (!k->idle)
        return;
    if (k->idle_prev)
        k->idle_prev->idle_next = k->idle_next;
    else
        c->idle = k->idle_next;
    if (k->idle_next)
        k->idle_next->idle_prev = k->idle_prev;
    k->idle = 0;
    k->idle_prev = k->idle_next = NULL;
}

static void conn_close(conn_t *k)
{
    lg_client_t *c = k->c;
    idle_remove(c, k);
    if (k->prev)
        k->prev->next = k->next;
    else
        c->all = k->next;
    if (k->next)
        k->next->prev = k->prev;
    c->nconns--;
    if (k->rev)
        event_free(k->rev);
    if (k->wev)
        event_free(k->wev);
    if (k->timer)
        event_free(k->timer);
    if (k->fd >= 0)
        close(k->fd);
    free(k->in);
    free(k);
}

/* Detach the request in flight (the caller reports it). */
static lg_req_t *take_req(conn_t *k)
{
    lg_req_t *r = k->req;
    if (r) {
        k->req = NULL;
        k->c->inflight--;
        evtimer_del(k->timer);
        event_del(k->wev);
        free(r->data);
        r->data = NULL;
    }
    return r;
}

static lg_req_t *q_pop(lg_client_t *c)
{
    lg_req_t *r = c->q_head;
    if (r) {
        c->q_head = r->next;
        if (!c->q_head)
            c->q_tail = NULL;
        r->next = NULL;
        c->nqueued--;
    }
    return r;
}

static void q_push(lg_client_t *c, lg_req_t *r)
{
    r->next = NULL;
    if (c->q_tail)
        c->q_tail->next = r;
    else
        c->q_head = r;
    c->q_tail = r;
    c->nqueued++;
}

static void pump(lg_client_t *c);

/* End the request in flight with outcome out, close the connection, and
 * give queued requests to other connections. */
static void fail_conn(conn_t *k, lg_outcome_t out)
{
    lg_client_t *c = k->c;
    lg_req_t *r = take_req(k);
    conn_close(k);
    if (r)
        c->done(c->arg, r, out, 0, now_ns());
    pump(c);
}

/* ---- sending -------------------------------------------------------------------- */

static void read_cb(evutil_socket_t fd, short what, void *arg);
static void write_cb(evutil_socket_t fd, short what, void *arg);
static void timer_cb(evutil_socket_t fd, short what, void *arg);

/* A connection on the non-blocking socket fd (closed on failure), already
 * connected or with a connect in progress. NULL on failure (errno set). */
static conn_t *conn_new(lg_client_t *c, int fd, int connected)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn_t *k = calloc(1, sizeof *k);
    if (!k) {
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    k->c = c;
    k->fd = fd;
    k->in = malloc(IN_CAP);
    k->rev = event_new(c->base, fd, EV_READ | EV_PERSIST, read_cb, k);
    k->wev = event_new(c->base, fd, EV_WRITE, write_cb, k);
    k->timer = evtimer_new(c->base, timer_cb, k);
    k->next = c->all;
    if (c->all)
        c->all->prev = k;
    c->all = k;
    c->nconns++;
    c->opened++;
    if (!k->in || !k->rev || !k->wev || !k->timer) {
        conn_close(k);
        errno = ENOMEM;
        return NULL;
    }
    if (connected) {
        k->connected = 1;
        c->established++;
        event_add(k->rev, NULL);
    } else {
        event_add(k->wev, NULL);
    }
    return k;
}

/* Open a connection (connect in progress or done); NULL with errno. */
static conn_t *conn_open(lg_client_t *c)
{
    int fd = socket(c->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    int connected = 1;
    if (connect(fd, (struct sockaddr *)&c->sa, c->salen) < 0) {
        if (errno != EINPROGRESS) {
            int e = errno;
            close(fd);
            c->opened++;
            errno = e;
            return NULL;
        }
        connected = 0;
    }
    return conn_new(c, fd, connected);
}

/* Write what is left of the request. A failed write is not handled here:
 * the broken socket also becomes readable (EOF, reset), and the read side
 * ends the request, so this never frees k. */
static void try_write(conn_t *k)
{
    lg_req_t *r = k->req;
    if (k->out_off == 0)
        r->sent_ns = now_ns(); /* service time starts with the first byte written */
    while (r->data && k->out_off < r->len) {
        ssize_t n = send(k->fd, r->data + k->out_off, r->len - k->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            k->out_off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            event_add(k->wev, NULL);
            return;
        } else {
            break;
        }
    }
    free(r->data);
    r->data = NULL;
}

static void conn_send(conn_t *k, lg_req_t *r)
{
    lg_client_t *c = k->c;
    idle_remove(c, k);
    k->req = r;
    k->out_off = 0;
    k->parse = P_HEAD;
    k->body_left = 0;
    k->scanned = 0;
    c->inflight++;
    evtimer_add(k->timer, c->tv_timeout); /* the timeout includes a connect */
    if (k->connected)
        try_write(k);
}

/* Hand queued requests to idle or new connections, in FIFO order. */
static void pump(lg_client_t *c)
{
    while (c->q_head && (c->idle || c->nconns < c->max_conns)) {
        lg_req_t *r = q_pop(c);
        if (!r->data && (!c->fill || c->fill(c->arg, r) < 0)) {
            c->done(c->arg, r, LG_OUT_CONN_ERROR, 0, now_ns());
            continue;
        }
        conn_t *k = c->idle ? c->idle : conn_open(c);
        if (k)
            conn_send(k, r);
        else
            c->done(c->arg, r, LG_OUT_CONN_ERROR, 0, now_ns());
    }
}

void lg_client_submit(lg_client_t *c, lg_req_t *r)
{
    q_push(c, r);
    pump(c);
}

static void write_cb(evutil_socket_t fd, short what, void *arg)
{
    conn_t *k = arg;
    lg_client_t *c = k->c;
    if (!k->connected) {
        int err = 0;
        socklen_t l = sizeof err;
        if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
            err = errno;
        if (err) {
            fail_conn(k, LG_OUT_CONN_ERROR);
            return;
        }
        k->connected = 1;
        c->established++;
        event_add(k->rev, NULL);
    }
    if (k->req)
        try_write(k);
}

/* ---- receiving ------------------------------------------------------------------ */

/* The response is complete. Returns 1 when the connection stays usable. */
static int complete(conn_t *k)
{
    lg_client_t *c = k->c;
    lg_req_t *r = take_req(k);
    int status = k->head.status;
    int keep = !k->head.close && k->parse != P_UNTIL_CLOSE;
    if (!keep)
        conn_close(k);
    c->done(c->arg, r, LG_OUT_RESPONSE, status, now_ns());
    if (keep)
        idle_push(c, k);
    pump(c); /* the most recently used connection is the first idle one */
    return keep;
}

/* Consume buffered input. Returns 0, or -1 when k was freed. */
static int consume(conn_t *k)
{
    for (;;) {
        size_t avail = k->in_len - k->in_off;
        if (!k->req) {
            if (avail) { /* bytes nobody asked for */
                fail_conn(k, LG_OUT_CONN_ERROR);
                return -1;
            }
            break;
        }
        if (k->parse == P_HEAD) {
            const char *base = k->in + k->in_off;
            size_t from = k->scanned > 3 ? k->scanned - 3 : 0;
            const char *end = NULL;
            for (const char *p = base + from; p + 4 <= base + avail; p++) {
                p = memchr(p, '\r', (size_t)(base + avail - p));
                if (!p || p + 4 > base + avail)
                    break;
                if (p[1] == '\n' && p[2] == '\r' && p[3] == '\n') {
                    end = p + 4;
                    break;
                }
            }
            if (!end) {
                k->scanned = avail;
                if (avail > LG_RESP_HEAD_MAX) {
                    fail_conn(k, LG_OUT_CONN_ERROR);
                    return -1;
                }
                break;
            }
            size_t hlen = (size_t)(end - base);
            const char *why;
            if (lg_resp_parse_head(base, hlen, &k->head, &why) < 0 || k->head.chunked) {
                fail_conn(k, LG_OUT_CONN_ERROR);
                return -1;
            }
            k->in_off += hlen;
            k->scanned = 0;
            if (k->head.status < 200)
                continue; /* interim response: the final one follows */
            if (k->head.content_length >= 0) {
                k->parse = P_BODY;
                k->body_left = k->head.content_length;
            } else {
                k->parse = P_UNTIL_CLOSE;
            }
            continue;
        }
        if (k->parse == P_BODY) {
            size_t n = avail < (uint64_t)k->body_left ? avail : (size_t)k->body_left;
            k->in_off += n;
            k->body_left -= (int64_t)n;
            if (k->body_left > 0)
                break;
            if (!complete(k))
                return -1;
            continue;
        }
        k->in_off = k->in_len; /* P_UNTIL_CLOSE: the body runs to EOF */
        break;
    }
    /* keep unconsumed bytes at the front */
    if (k->in_off == k->in_len) {
        k->in_off = k->in_len = 0;
    } else if (k->in_off > 0) {
        memmove(k->in, k->in + k->in_off, k->in_len - k->in_off);
        k->in_len -= k->in_off;
        k->in_off = 0;
    }
    return 0;
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
    conn_t *k = arg;
    ssize_t n = read(k->fd, k->in + k->in_len, IN_CAP - k->in_len);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n > 0) {
        k->in_len += (size_t)n;
        consume(k);
        return;
    }
    /* EOF or an error */
    if (n == 0 && k->req && k->parse == P_UNTIL_CLOSE) {
        k->head.close = 1;
        complete(k);
        return;
    }
    fail_conn(k, LG_OUT_CONN_ERROR);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    fail_conn(arg, LG_OUT_TIMEOUT);
}

/* ---- the client ------------------------------------------------------------------ */

lg_client_t *lg_client_new(struct event_base *base, const struct sockaddr *sa, socklen_t salen,
                           unsigned max_conns, unsigned timeout_ms, lg_done_fn done,
                           lg_fill_fn fill, void *arg)
{
    lg_client_t *c = calloc(1, sizeof *c);
    if (!c || salen > sizeof c->sa) {
        free(c);
        return NULL;
    }
    c->base = base;
    memcpy(&c->sa, sa, salen);
    c->salen = salen;
    c->max_conns = max_conns ? max_conns : 1;
    struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};
    c->tv_timeout = event_base_init_common_timeout(base, &tv);
    if (!c->tv_timeout) {
        free(c);
        return NULL;
    }
    c->done = done;
    c->fill = fill;
    c->arg = arg;
    return c;
}

int lg_client_preconnect(lg_client_t *c, unsigned timeout_ms)
{
    int fd = socket(c->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    int err = 0;
    if (connect(fd, (struct sockaddr *)&c->sa, c->salen) < 0) {
        err = errno;
        if (err == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int n;
            do {
                n = poll(&p, 1, (int)timeout_ms);
            } while (n < 0 && errno == EINTR);
            socklen_t l = sizeof err;
            if (n == 0)
                err = ETIMEDOUT;
            else if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
                err = errno;
        }
    }
    if (err) {
        close(fd);
        return err;
    }
    conn_t *k = conn_new(c, fd, 1);
    if (!k)
        return errno;
    idle_push(c, k);
    return 0;
}

size_t lg_client_drop_queued(lg_client_t *c)
{
    size_t n = 0;
    lg_req_t *r;
    while ((r = q_pop(c)) != NULL) {
        c->done(c->arg, r, LG_OUT_NOT_SENT, 0, now_ns());
        n++;
    }
    return n;
}

void lg_client_abort(lg_client_t *c)
{
    while (c->all) {
        conn_t *k = c->all;
        lg_req_t *r = take_req(k);
        conn_close(k);
        if (r)
            c->done(c->arg, r, LG_OUT_TIMEOUT, 0, now_ns());
    }
}

size_t lg_client_inflight(const lg_client_t *c)
{
    return c->inflight;
}

size_t lg_client_queued(const lg_client_t *c)
{
    return c->nqueued;
}

uint64_t lg_client_opened(const lg_client_t *c)
{
    return c->opened;
}

uint64_t lg_client_established(const lg_client_t *c)
{
    return c->established;
}

void lg_client_free(lg_client_t *c)
{
    if (!c)
        return;
    while (c->all) {
        conn_t *k = c->all;
        lg_req_t *r = take_req(k);
        conn_close(k);
        if (r) {
            free(r->data);
            free(r);
        }
    }
    lg_req_t *r;
    while ((r = q_pop(c)) != NULL) {
        free(r->data);
        free(r);
    }
    free(c);
}
