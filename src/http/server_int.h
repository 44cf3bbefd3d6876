/* Private to src/http: the server's internal structures. */
#ifndef RECD_HTTP_SERVER_INT_H
#define RECD_HTTP_SERVER_INT_H

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>

#include "recd/http.h"
#include "recd/stats.h"

struct event_base;
struct event;
struct evconnlistener;
struct bufferevent;

typedef struct conn conn_t;

/* One event loop: a public worker thread, or the admin listener on the
 * main thread's loop. Everything in it is touched only by its own thread,
 * except stop_ev/kill_ev, which other threads activate. */
typedef struct worker {
    unsigned idx; /* stats thread index */
    int is_admin; /* admin listener on the caller's loop */
    pthread_t tid;
    int started;
    struct event_base *base;
    int own_base; /* base created (and freed) by us */
    int lfd;      /* listening socket, -1 when none */
    struct evconnlistener *listener;
    struct event *stop_ev;     /* start draining */
    struct event *kill_ev;     /* close everything, leave the loop */
    struct event *tick_ev;     /* 1 s: Date cache */
    struct event *ping_ev;     /* main asks: bump heartbeat (watchdog) */
    struct event *wake_ev;     /* any thread asks: run the server's wake callback here */
    pthread_mutex_t post_lock; /* posted closures (recd_http_server_post) */
    struct posted *posted;     /* LIFO, reversed when run */
    struct event *resume_ev;   /* re-enable accept after EMFILE */
    struct recd_http_server *srv;
    recd_stats_thread_t *st;
    recd_reqid_gen_t ids;
    conn_t *conns; /* open connections (intrusive list) */
    uint64_t nconns;
    uint64_t inflight; /* requests admitted, not yet finished */
    int draining;
    char date[40];               /* "Date: ...\r\n" for the current second */
    struct recd_http_req *spare; /* one recycled request object */
    recd_http_head_t scratch;    /* head parse of bytes still in the input buffer */
} worker_t;

struct recd_http_server {
    recd_http_route_t *routes;
    size_t nroutes;
    worker_t *workers;
    unsigned nworkers;
    worker_t admin;
    int has_admin;
    SSL_CTX *ssl;
    _Atomic uint64_t open_public; /* connections on the public listener */
    int port, admin_port;
    uint64_t *last_heartbeat; /* per worker, main thread only */
    int pinged;               /* workers_alive has asked once */
    unsigned char admin_token_sha[32];
    int admin_token_set;
    void (*wake_fn)(unsigned worker, void *arg); /* see recd_http_server_set_wake */
    void *wake_arg;
};

/* tls.c */
SSL_CTX *recd_http_tls_ctx_new(const char *cert, const char *key, recd_err_t *err);

#endif
