/* HTTP/1.1 server: listeners, connections, request state machine,
 * responses. One connection belongs to one loop for its whole life. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "recd/http.h"
#include "recd/stats.h"
#include "server_int.h"

enum { C_IDLE, C_HEAD, C_BODY, C_HANDLER, C_WRITING, C_CLOSING, C_LINGER };

/* After an error answer the client may still be sending (a body we refused
 * to read). Closing with unread input makes the kernel send RST, which can
 * destroy our answer before the client reads it; so half-close and discard
 * input for a while first (nginx's lingering close). */
#define LINGER_MS 2000

#define MAX_PARAMS 8

struct recd_http_req {
    conn_t *c; /* NULL when the connection died while async */
    worker_t *w;
    recd_arena_t arena;
    recd_http_head_t head; /* pointers into head_buf */
    char *head_buf;
    char *path; /* NUL-terminated copy of the path */
    char *body;
    size_t body_len, body_cap;
    recd_http_chunked_t chunk;
    char id[RECD_REQID_MAX + 1];
    const recd_http_route_t *route;
    const char *pnames[MAX_PARAMS];
    size_t pname_len[MAX_PARAMS];
    char *pvalues[MAX_PARAMS];
    unsigned nparams;
    struct evbuffer *extra; /* extra response headers */
    int responded;
    int status;
    uint64_t t_start_us;
    int admitted; /* counted in the worker's in-flight requests */
    unsigned stats_ep;
};

struct conn {
    worker_t *w;
    struct bufferevent *bev;
    conn_t *prev, *next;
    int state;
    int is_public;
    int tls;
    int tls_ready; /* handshake completed */
    unsigned nreq;
    int close_after; /* close once the output is flushed */
    int peer_eof;
    size_t scanned; /* head bytes already searched for '\n' */
    struct event *deadline_ev;
    recd_http_req_t *req;
    size_t read_hw; /* read high-water mark in force, bytes */
    char peer[64];
};

static void conn_process(conn_t *c);
static void conn_free(conn_t *c);
static void req_free(recd_http_req_t *r);

static const recd_conf_t *conf(void)
{
    static recd_conf_t *defaults; /* for the self-test before any publish */
    const recd_conf_t *c = recd_conf_current();
    if (c)
        return c;
    if (!defaults)
        defaults = recd_conf_new_defaults();
    return defaults;
}

static recd_http_limits_t limits_now(void)
{
    const recd_conf_t *c = conf();
    recd_http_limits_t l = {(size_t)c->http_max_header_bytes, (size_t)c->http_max_headers,
                            c->http_max_body_bytes};
    return l;
}

static struct timeval ms_tv(int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    return tv;
}

const char *recd_http_status_text(int s)
{
    switch (s) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

static void update_date(worker_t *w)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(w->date, sizeof w->date, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
}

/* ---- error bodies ---------------------------------------------------------- */

size_t recd_http_error_body(char *buf, size_t cap, const char *code, const char *field,
                            const char *msg)
{
    json_t *err = json_pack("{s:s,s:s,s:o}", "code", code, "message", msg ? msg : "", "field",
                            field && *field ? json_string(field) : json_null());
    json_t *o = err ? json_pack("{s:o}", "error", err) : NULL;
    size_t n = o ? json_dumpb(o, buf, cap, JSON_COMPACT | JSON_PRESERVE_ORDER) : 0;
    json_decref(o);
    if (n > 0 && n < cap) {
        buf[n] = '\0';
    } else {
        n = (size_t)snprintf(buf, cap,
                             "{\"error\":{\"code\":\"%s\",\"message\":\"\",\"field\":null}}", code);
        if (n >= cap)
            n = cap ? cap - 1 : 0;
    }
    return n;
}

/* ---- connection life ---------------------------------------------------------- */

static void set_read_timeout(conn_t *c, int64_t ms)
{
    struct timeval wt = ms_tv(conf()->http_write_timeout_ms);
    if (ms > 0) {
        struct timeval rt = ms_tv(ms);
        bufferevent_set_timeouts(c->bev, &rt, &wt);
    } else {
        bufferevent_set_timeouts(c->bev, NULL, &wt);
    }
}

static void arm_deadline(conn_t *c)
{
    struct timeval tv = ms_tv(conf()->http_header_deadline_ms);
    evtimer_add(c->deadline_ev, &tv);
}

static void worker_maybe_done(worker_t *w)
{
    if (w->draining && w->nconns == 0 && !w->is_admin)
        event_base_loopexit(w->base, NULL);
}

static void conn_free(conn_t *c)
{
    worker_t *w = c->w;
    if (c->req) {
        recd_http_req_t *r = c->req;
        c->req = NULL;
        if (r->responded || c->state != C_HANDLER) {
            req_free(r);
        } else {
            r->c = NULL; /* async handler still owns it; respond() frees */
        }
    }
    if (c->deadline_ev)
        event_free(c->deadline_ev);
    if (c->bev)
        bufferevent_free(c->bev);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nconns--;
    recd_stats_sub(&w->st->conns_open, 1);
    if (c->is_public)
        atomic_fetch_sub(&w->srv->open_public, 1);
    free(c);
    worker_maybe_done(w);
}

/* Queue a complete response on the connection. */
static void write_response(conn_t *c, recd_http_req_t *r, int status, const char *ctype,
                           const char *body, size_t len, const char *rid, int head_only,
                           const char *extra_line)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    const recd_conf_t *cf = conf();
    int keep = !c->close_after && r && r->head.keep_alive && !c->w->draining &&
               cf->http_keepalive_timeout_ms > 0;
    if (!keep)
        c->close_after = 1;
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nServer: recd/" RECD_VERSION "\r\n%s"
                        "Content-Type: %s\r\nContent-Length: %zu\r\nX-Request-Id: %s\r\n",
                        status, recd_http_status_text(status), c->w->date, ctype, len, rid);
    if (status == 503 || status == 429)
        evbuffer_add_printf(out, "Retry-After: %lld\r\n", (long long)cf->http_retry_after_s);
    if (extra_line)
        evbuffer_add(out, extra_line, strlen(extra_line));
    if (r && r->extra)
        evbuffer_add_buffer(out, r->extra);
    if (!keep)
        evbuffer_add(out, "Connection: close\r\n", 19);
    else if (r && r->head.minor == 0)
        evbuffer_add(out, "Connection: keep-alive\r\n", 24);
    evbuffer_add(out, "\r\n", 2);
    if (!head_only && len)
        evbuffer_add(out, body, len);
    recd_stats_add(&c->w->st->bytes_out, evbuffer_get_length(out));
}

/* Answer a request-level failure that happens before (or instead of) a
 * handler: parse errors, limits, timeouts. Always closes afterwards. */
static void conn_fail(conn_t *c, int status, const char *code, const char *field, const char *msg,
                      const char *extra_line)
{
    char body[512];
    size_t n = recd_http_error_body(body, sizeof body, code, field, msg);
    char rid[RECD_REQID_MAX + 1];
    recd_http_req_t *r = c->req;
    if (r) {
        memcpy(rid, r->id, sizeof rid);
    } else {
        recd_reqid_next(&c->w->ids, rid);
    }
    /* overload answers (503) are counted in /stats; a log line each would
     * only add load when the server is already saturated */
    recd_log_write(status >= 500 && status != 503 ? RECD_LOG_WARN : RECD_LOG_DEBUG, rid,
                   "%s: %d %s (%s)", c->peer, status, code, msg);
    c->close_after = 1;
    write_response(c, NULL, status, "application/json", body, n, rid, 0, extra_line);
    uint64_t t0 = r ? r->t_start_us : recd_time_mono_us();
    recd_stats_record(c->w->st, r ? r->stats_ep : 0, status, recd_time_mono_us() - t0);
    if (r)
        r->responded = 1;
    evtimer_del(c->deadline_ev);
    c->state = C_CLOSING;
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_enable(c->bev, EV_WRITE);
}

/* ---- requests ---------------------------------------------------------------------- */

/* Requests are recycled through one spare per worker: a request object is
 * ~9 KiB (the header table), and allocating, zeroing and freeing it on every
 * request showed up as page faults in profiles. */
static recd_http_req_t *req_new(conn_t *c)
{
    recd_http_req_t *r = c->w->spare;
    if (r) {
        c->w->spare = NULL;
        recd_arena_t arena = r->arena;
        /* everything but the header table, which the parser rewrites */
        memset(r, 0, offsetof(recd_http_req_t, head));
        memset((char *)r + offsetof(recd_http_req_t, head_buf), 0,
               sizeof *r - offsetof(recd_http_req_t, head_buf));
        r->arena = arena;
    } else {
        r = calloc(1, sizeof *r);
        if (!r)
            return NULL;
        recd_arena_init(&r->arena, 4096);
    }
    r->c = c;
    r->w = c->w;
    return r;
}

static void req_finish_inflight(recd_http_req_t *r)
{
    if (r->w && r->admitted) {
        r->w->inflight--;
        recd_stats_sub(&r->w->st->inflight, 1);
        r->admitted = 0;
    }
}

static void req_free(recd_http_req_t *r)
{
    if (!r)
        return;
    req_finish_inflight(r);
    if (r->extra)
        evbuffer_free(r->extra);
    free(r->body);
    worker_t *w = r->w;
    if (w && !w->spare && r->c) {
        recd_arena_reset(&r->arena);
        w->spare = r;
        return;
    }
    recd_arena_free(&r->arena);
    free(r);
}

int recd_http_req_method(const recd_http_req_t *r)
{
    return r->head.method;
}
const char *recd_http_req_path(const recd_http_req_t *r)
{
    return r->path;
}
const char *recd_http_req_id(const recd_http_req_t *r)
{
    return r->id;
}
int recd_http_req_is_admin(const recd_http_req_t *r)
{
    return r->w->is_admin;
}
unsigned recd_http_req_worker(const recd_http_req_t *r)
{
    return r->w->idx;
}
recd_http_server_t *recd_http_req_server(const recd_http_req_t *r)
{
    return r->w->srv;
}
recd_arena_t *recd_http_req_arena(recd_http_req_t *r)
{
    return &r->arena;
}

const char *recd_http_req_body(const recd_http_req_t *r, size_t *len)
{
    if (len)
        *len = r->body_len;
    return r->body ? r->body : "";
}

static int hexdig(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..n) into the arena; plus_space turns '+' into ' '.
 * Malformed escapes are kept literally. */
static char *pct_decode(recd_arena_t *a, const char *s, size_t n, int plus_space)
{
    char *o = recd_arena_alloc(a, n + 1);
    if (!o)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexdig(s[i + 1]) >= 0 && hexdig(s[i + 2]) >= 0) {
            o[j++] = (char)(hexdig(s[i + 1]) * 16 + hexdig(s[i + 2]));
            i += 2;
        } else if (plus_space && s[i] == '+') {
            o[j++] = ' ';
        } else {
            o[j++] = s[i];
        }
    }
    o[j] = '\0';
    return o;
}

const char *recd_http_req_param(const recd_http_req_t *r, const char *name)
{
    size_t nl = strlen(name);
    for (unsigned i = 0; i < r->nparams; i++)
        if (r->pname_len[i] == nl && memcmp(r->pnames[i], name, nl) == 0)
            return r->pvalues[i];
    return NULL;
}

/* Walk the query string: each call decodes the next non-empty name into
 * the arena and returns 1, with *val pointing at the raw value (or NULL
 * when there is no '='); 0 at the end. */
typedef struct qiter {
    const char *q, *end;
} qiter_t;

static int query_next(const recd_http_req_t *r, qiter_t *it, char **key, const char **val,
                      size_t *vlen)
{
    while (it->q && it->q < it->end) {
        const char *amp = memchr(it->q, '&', (size_t)(it->end - it->q));
        const char *pe = amp ? amp : it->end;
        const char *eq = memchr(it->q, '=', (size_t)(pe - it->q));
        const char *ke = eq ? eq : pe;
        const char *k0 = it->q;
        it->q = pe + 1;
        if (ke == k0)
            continue;
        *key = pct_decode((recd_arena_t *)&r->arena, k0, (size_t)(ke - k0), 1);
        *val = eq ? eq + 1 : NULL;
        *vlen = eq ? (size_t)(pe - eq - 1) : 0;
        return *key != NULL;
    }
    return 0;
}

const char *recd_http_req_query(const recd_http_req_t *r, const char *name)
{
    qiter_t it = {r->head.query, r->head.query ? r->head.query + r->head.query_len : NULL};
    char *key;
    const char *val;
    size_t vlen;
    while (query_next(r, &it, &key, &val, &vlen))
        if (strcmp(key, name) == 0)
            return val ? pct_decode((recd_arena_t *)&r->arena, val, vlen, 1) : "";
    return NULL;
}

const char *recd_http_req_query_unknown(const recd_http_req_t *r, const char *const *allowed)
{
    qiter_t it = {r->head.query, r->head.query ? r->head.query + r->head.query_len : NULL};
    char *key;
    const char *val;
    size_t vlen;
    while (query_next(r, &it, &key, &val, &vlen)) {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            ok |= strcmp(*a, key) == 0;
        if (!ok)
            return key;
    }
    return NULL;
}

const char *recd_http_req_header(const recd_http_req_t *r, const char *name)
{
    size_t vl;
    const char *v = recd_http_head_get(&r->head, name, &vl);
    if (!v)
        return NULL;
    return recd_arena_strndup((recd_arena_t *)&r->arena, v, vl);
}

void recd_http_resp_header(recd_http_req_t *r, const char *name, const char *value)
{
    if (!r->extra)
        r->extra = evbuffer_new();
    if (r->extra)
        evbuffer_add_printf(r->extra, "%s: %s\r\n", name, value);
}

static void access_log(recd_http_req_t *r, int status, size_t len)
{
    if (!conf()->log_access)
        return;
    recd_log_write(RECD_LOG_INFO, r->id, "%s %.*s %.*s %d %lluus %zuB", r->c ? r->c->peer : "-",
                   (int)r->head.method_len, r->head.method_str,
                   (int)r->head.target_len > 512 ? 512 : (int)r->head.target_len, r->head.target,
                   status, (unsigned long long)(recd_time_mono_us() - r->t_start_us), len);
}

void recd_http_respond(recd_http_req_t *r, int status, const char *ctype, const char *body,
                       size_t len)
{
    if (r->responded)
        return;
    r->responded = 1;
    r->status = status;
    conn_t *c = r->c;
    uint64_t lat = recd_time_mono_us() - r->t_start_us;
    recd_stats_record(r->w->st, r->stats_ep, status, lat);
    access_log(r, status, len);
    if (!c) { /* connection gone while the handler was async */
        req_free(r);
        return;
    }
    write_response(c, r, status, ctype, body, len, r->id, r->head.method == RECD_HTTP_HEAD, NULL);
    c->state = C_WRITING;
    bufferevent_enable(c->bev, EV_WRITE);
}

void recd_http_respond_json(recd_http_req_t *r, int status, json_t *body)
{
    char *s = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(body);
    if (!s) {
        static const char oom[] =
            "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\",\"field\":null}}";
        recd_http_respond(r, 500, "application/json", oom, sizeof oom - 1);
        return;
    }
    recd_http_respond(r, status, "application/json", s, strlen(s));
    free(s);
}

void recd_http_respond_error(recd_http_req_t *r, int status, const char *code, const char *field,
                             const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char body[1024];
    size_t n = recd_http_error_body(body, sizeof body, code, field, msg);
    if (status >= 500)
        recd_log_write(RECD_LOG_WARN, r->id, "%d %s: %s", status, code, msg);
    recd_http_respond(r, status, "application/json", body, n);
}

static int is_json_ctype(const recd_http_req_t *r)
{
    const char *ct = r->head.content_type;
    size_t n = r->head.content_type_len;
    if (!ct)
        return 0;
    static const char want[] = "application/json";
    size_t wl = sizeof want - 1;
    if (n < wl || strncasecmp(ct, want, wl) != 0)
        return 0;
    return n == wl || ct[wl] == ';' || ct[wl] == ' ' || ct[wl] == '\t';
}

json_t *recd_http_req_json(recd_http_req_t *r)
{
    if (r->body_len == 0) {
        recd_http_respond_error(r, 400, "bad_json", "body", "empty body; expected a JSON document");
        return NULL;
    }
    if (!is_json_ctype(r)) {
        recd_http_respond_error(r, 415, "unsupported_media_type", "header:Content-Type",
                                "expected Content-Type: application/json");
        return NULL;
    }
    int max = (int)conf()->http_max_json_depth;
    if (recd_json_depth(r->body, r->body_len, max) > max) {
        recd_http_respond_error(r, 400, "json_too_deep", "body",
                                "JSON nesting deeper than %d levels", max);
        return NULL;
    }
    json_error_t e;
    json_t *j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &e);
    if (!j) {
        recd_http_respond_error(r, 400, "bad_json", "body",
                                "malformed JSON at line %d, column %d: %s", e.line, e.column,
                                e.text);
        return NULL;
    }
    return j;
}

/* ---- routing -------------------------------------------------------------------- */

/* Match path against pattern; fills params on success. */
static int route_match(const char *pat, const char *path, recd_http_req_t *r)
{
    unsigned np = 0;
    const char *p = pat, *s = path;
    while (*p && *s) {
        if (*p == '{') {
            const char *pe = strchr(p, '}');
            if (!pe)
                return 0;
            const char *se = strchr(s, '/');
            if (!se)
                se = s + strlen(s);
            if (se == s || np >= MAX_PARAMS)
                return 0;
            if (r) {
                r->pnames[np] = p + 1;
                r->pname_len[np] = (size_t)(pe - p - 1);
                r->pvalues[np] = pct_decode(&r->arena, s, (size_t)(se - s), 0);
            }
            np++;
            p = pe + 1;
            s = se;
            continue;
        }
        if (*p != *s)
            return 0;
        p++;
        s++;
    }
    if (*p || *s)
        return 0;
    if (r)
        r->nparams = np;
    return 1;
}

static int route_visible(const recd_http_route_t *rt, const worker_t *w)
{
    if (rt->flags & RECD_ROUTE_BOTH)
        return 1;
    if (rt->flags & RECD_ROUTE_ADMIN)
        return w->is_admin;
    return !w->is_admin;
}

static void allow_list(const recd_http_server_t *s, const worker_t *w, const char *path, char *buf,
                       size_t cap)
{
    int mask = 0;
    for (size_t i = 0; i < s->nroutes; i++)
        if (route_visible(&s->routes[i], w) && route_match(s->routes[i].pattern, path, NULL))
            mask |= s->routes[i].methods |
                    ((s->routes[i].methods & RECD_HTTP_GET) ? RECD_HTTP_HEAD : 0);
    buf[0] = '\0';
    for (int b = 0; b < 7; b++) {
        if (!(mask & (1 << b)))
            continue;
        size_t l = strlen(buf);
        snprintf(buf + l, cap - l, "%s%s", l ? ", " : "", recd_http_method_name(1 << b));
    }
}

static int admin_authorized(recd_http_req_t *r)
{
    recd_http_server_t *s = r->w->srv;
    if (!s->admin_token_set)
        return 1;
    size_t vl;
    const char *v = recd_http_head_get(&r->head, "authorization", &vl);
    if (!v || vl < 7 || strncasecmp(v, "Bearer ", 7) != 0)
        return 0;
    unsigned char d[32];
    SHA256((const unsigned char *)v + 7, vl - 7, d);
    /* digests have a fixed length, so the comparison time does not depend
     * on the token's length or content */
    return CRYPTO_memcmp(d, s->admin_token_sha, 32) == 0;
}

static void dispatch(conn_t *c)
{
    recd_http_req_t *r = c->req;
    recd_http_server_t *s = c->w->srv;
    c->state = C_HANDLER;
    const recd_http_route_t *hit = NULL;
    int path_known = 0;
    for (size_t i = 0; i < s->nroutes; i++) {
        const recd_http_route_t *rt = &s->routes[i];
        if (!route_visible(rt, c->w) || !route_match(rt->pattern, r->path, NULL))
            continue;
        path_known = 1;
        int m = rt->methods | ((rt->methods & RECD_HTTP_GET) ? RECD_HTTP_HEAD : 0);
        if (m & r->head.method) {
            hit = rt;
            break;
        }
    }
    if (!hit) {
        if (!path_known) {
            recd_http_respond_error(r, 404, "not_found", "path", "no such endpoint: %s", r->path);
            return;
        }
        char allow[128], line[160];
        allow_list(s, c->w, r->path, allow, sizeof allow);
        snprintf(line, sizeof line, "%s", allow);
        recd_http_resp_header(r, "Allow", line);
        for (size_t i = 0; i < s->nroutes; i++)
            if (route_visible(&s->routes[i], c->w) &&
                route_match(s->routes[i].pattern, r->path, NULL)) {
                r->stats_ep = s->routes[i].stats_id;
                break;
            }
        if (r->head.method == RECD_HTTP_OTHER)
            c->close_after = 1;
        recd_http_respond_error(r, 405, "method_not_allowed", "method",
                                "method %.*s not allowed on %s (allowed: %s)",
                                (int)r->head.method_len, r->head.method_str, r->path, allow);
        return;
    }
    route_match(hit->pattern, r->path, r);
    r->route = hit;
    r->stats_ep = hit->stats_id;
    if ((hit->flags & RECD_ROUTE_ADMIN) && !admin_authorized(r)) {
        recd_http_resp_header(r, "WWW-Authenticate", "Bearer realm=\"recd-admin\"");
        recd_http_respond_error(r, 401, "unauthorized", "header:Authorization",
                                "missing or wrong admin bearer token");
        return;
    }
    if ((hit->flags & RECD_ROUTE_JSON_BODY) && (r->body_len > 0 || r->head.content_type) &&
        !is_json_ctype(r)) {
        recd_http_respond_error(r, 415, "unsupported_media_type", "header:Content-Type",
                                "expected Content-Type: application/json");
        return;
    }
    int rc = hit->fn(r, hit->arg);
    if (rc == RECD_HTTP_ASYNC && !r->responded)
        return;
    if (!r->responded)
        recd_http_respond_error(r, 500, "internal", NULL, "handler returned without a response");
}

/* ---- reading ------------------------------------------------------------------------- */

static void start_request(conn_t *c, const char *data, size_t head_len)
{
    worker_t *w = c->w;
    recd_http_req_t *r = req_new(c);
    if (!r) {
        conn_fail(c, 503, "overloaded", NULL, "out of memory", NULL);
        return;
    }
    c->req = r;
    c->nreq++;
    r->head_buf = recd_arena_alloc(&r->arena, head_len);
    recd_http_limits_t lim = limits_now();
    recd_http_perr_t pe;
    if (!r->head_buf) {
        conn_fail(c, 503, "overloaded", NULL, "out of memory", NULL);
        return;
    }
    memcpy(r->head_buf, data, head_len);
    /* parse the private copy so the head outlives the input buffer */
    recd_http_parse_head(r->head_buf, head_len, &lim, &r->head, &pe);
    r->path = recd_arena_strndup(&r->arena, r->head.path, r->head.path_len);
    if (r->head.request_id && recd_reqid_valid(r->head.request_id, r->head.request_id_len)) {
        memcpy(r->id, r->head.request_id, r->head.request_id_len);
        r->id[r->head.request_id_len] = '\0';
    } else {
        recd_reqid_next(&w->ids, r->id);
    }
    r->t_start_us = recd_time_mono_us();
    if (!recd_http_inflight_admit(w->inflight, conf()->http_max_inflight_per_worker)) {
        recd_stats_add(&w->st->rejected_busy, 1);
        conn_fail(c, 503, "overloaded", NULL, "too many requests in progress on this worker", NULL);
        return;
    }
    r->admitted = 1;
    w->inflight++;
    recd_stats_add(&w->st->inflight, 1);
    if (r->head.content_length > 0 || r->head.chunked) {
        if (r->head.content_length > 0) {
            r->body_cap = (size_t)r->head.content_length;
            r->body = malloc(r->body_cap);
            if (!r->body) {
                conn_fail(c, 503, "overloaded", NULL, "out of memory", NULL);
                return;
            }
        } else {
            recd_http_chunked_init(&r->chunk);
        }
        if (r->head.expect_continue && r->head.minor >= 1)
            bufferevent_write(c->bev, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        c->state = C_BODY;
        set_read_timeout(c, conf()->http_read_timeout_ms);
        return;
    }
    dispatch(c);
}

/* Consume body bytes from input; returns 1 when the body is complete, 0
 * when more is needed, -1 after answering an error. */
static int read_body(conn_t *c, struct evbuffer *in)
{
    recd_http_req_t *r = c->req;
    if (!r->head.chunked) {
        size_t need = r->body_cap - r->body_len;
        size_t n = evbuffer_remove(in, r->body + r->body_len, need);
        r->body_len += n;
        return r->body_len == r->body_cap;
    }
    recd_http_limits_t lim = limits_now();
    for (;;) {
        size_t avail = evbuffer_get_length(in);
        if (avail == 0)
            return 0;
        const char *data = (const char *)evbuffer_pullup(in, (ev_ssize_t)avail);
        if (r->body_cap - r->body_len < 4096) {
            size_t ncap = r->body_cap ? r->body_cap * 2 : 8192;
            if ((int64_t)ncap > lim.max_body_bytes + 1)
                ncap = (size_t)lim.max_body_bytes + 1;
            if (ncap <= r->body_cap)
                ncap = r->body_cap + 1;
            char *nb = realloc(r->body, ncap);
            if (!nb) {
                conn_fail(c, 503, "overloaded", NULL, "out of memory", NULL);
                return -1;
            }
            r->body = nb;
            r->body_cap = ncap;
        }
        size_t used = 0;
        recd_http_perr_t pe;
        int rc = recd_http_chunked_feed(&r->chunk, data, avail, &used, r->body, r->body_cap,
                                        &r->body_len, &lim, &pe);
        evbuffer_drain(in, used);
        if (rc < 0) {
            conn_fail(c, pe.status, pe.code, pe.field, pe.msg, NULL);
            return -1;
        }
        if (rc == 1)
            return 1;
        if (used == avail)
            return 0;
        /* out of room: loop grows the buffer */
    }
}

static void conn_process(conn_t *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    for (;;) {
        if (c->state == C_IDLE) {
            if (evbuffer_get_length(in) == 0)
                return;
            c->state = C_HEAD;
            c->scanned = 0;
            size_t hw = (size_t)conf()->http_max_header_bytes + 4 + 65536;
            if (hw != c->read_hw) {
                bufferevent_setwatermark(c->bev, EV_READ, 0, hw);
                c->read_hw = hw;
            }
            /* from the request's first byte; a TLS connection's first
             * request keeps the deadline armed at accept, which also
             * bounds the handshake */
            if (!(c->tls && c->nreq == 0))
                arm_deadline(c);
            set_read_timeout(c, 0);
        }
        if (c->state == C_HEAD) {
            size_t len = evbuffer_get_length(in);
            recd_http_limits_t lim = limits_now();
            size_t want = len < lim.max_header_bytes + 4 ? len : lim.max_header_bytes + 4;
            const char *data = (const char *)evbuffer_pullup(in, (ev_ssize_t)want);
            if (!data)
                return;
            /* parse only when a new line ended or the limit is crossed */
            if (!memchr(data + c->scanned, '\n', want - c->scanned) &&
                want <= lim.max_header_bytes) {
                c->scanned = want;
                return;
            }
            recd_http_perr_t pe;
            int rc = recd_http_parse_head(data, want, &lim, &c->w->scratch, &pe);
            size_t head_len = c->w->scratch.head_len;
            if (rc == 0 && want > lim.max_header_bytes) {
                /* the parser answers 431 before this; never buffer past the cap */
                conn_fail(c, 431, "headers_too_large", "headers",
                          "request head exceeds http.max_header_bytes", NULL);
                return;
            }
            if (rc == 0) {
                c->scanned = want;
                return;
            }
            if (rc < 0) {
                conn_fail(c, pe.status, pe.code, pe.field, pe.msg, NULL);
                return;
            }
            evtimer_del(c->deadline_ev);
            recd_stats_add(&c->w->st->bytes_in, head_len);
            start_request(c, data, head_len);
            evbuffer_drain(in, head_len);
            if (c->state == C_CLOSING || c->state == C_HANDLER || c->state == C_WRITING)
                return;
        }
        if (c->state == C_BODY) {
            size_t before = evbuffer_get_length(in);
            int rc = read_body(c, in);
            recd_stats_add(&c->w->st->bytes_in, before - evbuffer_get_length(in));
            if (rc <= 0)
                return;
            set_read_timeout(c, 0);
            dispatch(c);
            return;
        }
        return;
    }
}

static void conn_readcb(struct bufferevent *bev, void *arg)
{
    conn_t *c = arg;
    if (c->state == C_LINGER) {
        struct evbuffer *in = bufferevent_get_input(bev);
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    /* Reading stays enabled while a request is handled or its answer is
     * written (toggling it costs two epoll_ctl calls per request); bytes of
     * a pipelined next request wait in the input buffer, bounded by the
     * read high-water mark, until the current response is flushed. */
    if (c->state == C_HANDLER || c->state == C_WRITING)
        return;
    conn_process(c);
}

static void conn_linger(conn_t *c)
{
    if (c->peer_eof) {
        conn_free(c);
        return;
    }
    c->state = C_LINGER;
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    if (fd >= 0)
        shutdown(fd, SHUT_WR);
    struct evbuffer *in = bufferevent_get_input(c->bev);
    evbuffer_drain(in, evbuffer_get_length(in));
    struct timeval tv = ms_tv(LINGER_MS);
    bufferevent_set_timeouts(c->bev, &tv, NULL);
    evtimer_add(c->deadline_ev, &tv);
    bufferevent_disable(c->bev, EV_WRITE);
    bufferevent_enable(c->bev, EV_READ);
}

/* Response flushed. */
static void conn_writecb(struct bufferevent *bev, void *arg)
{
    conn_t *c = arg;
    if (evbuffer_get_length(bufferevent_get_output(bev)) > 0)
        return;
    if (c->state == C_CLOSING || (c->state == C_WRITING && c->close_after)) {
        conn_linger(c);
        return;
    }
    if (c->state != C_WRITING)
        return;
    req_free(c->req);
    c->req = NULL;
    c->state = C_IDLE;
    if (c->w->draining) {
        conn_free(c);
        return;
    }
    set_read_timeout(c, conf()->http_keepalive_timeout_ms);
    conn_process(c); /* pipelined bytes already buffered */
    /* the peer has half-closed: nothing more will complete a partial
     * request, and no second EOF event will come */
    if (c->peer_eof && (c->state == C_IDLE || c->state == C_HEAD || c->state == C_BODY))
        conn_free(c);
}

static void conn_eventcb(struct bufferevent *bev, short what, void *arg)
{
    conn_t *c = arg;
    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        c->tls_ready = 1; /* TLS handshake finished */
        return;
    }
    if (c->state == C_LINGER) {
        conn_free(c);
        return;
    }
    if (what & BEV_EVENT_EOF) {
        c->peer_eof = 1;
        if (c->state == C_IDLE || c->state == C_HEAD || c->state == C_BODY) {
            conn_process(c);
            if (c->state == C_IDLE || c->state == C_HEAD || c->state == C_BODY)
                conn_free(c);
        }
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        if ((what & BEV_EVENT_READING) && c->state == C_BODY) {
            conn_fail(c, 408, "request_timeout", "body",
                      "request body stalled past http.read_timeout_ms", NULL);
            return;
        }
        conn_free(c); /* idle keep-alive or a stalled writer */
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        if (c->tls) {
            unsigned long e = bufferevent_get_openssl_error(c->bev);
            if (e && c->nreq == 0) {
                recd_stats_add(&c->w->st->tls_handshake_failures, 1);
                char buf[160];
                ERR_error_string_n(e, buf, sizeof buf);
                recd_log_debug("%s: TLS: %s", c->peer, buf);
            }
            while (bufferevent_get_openssl_error(c->bev))
                ;
        }
        conn_free(c);
    }
}

static void conn_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    conn_t *c = arg;
    (void)fd;
    (void)what;
    if (c->state == C_LINGER || (c->tls && !c->tls_ready))
        conn_free(c); /* no handshake, no channel to answer on */
    else if (c->state == C_IDLE || c->state == C_HEAD)
        conn_fail(c, 408, "request_timeout", "headers",
                  "request headers not complete within http.header_deadline_ms", NULL);
}

/* ---- accepting ------------------------------------------------------------------------ */

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    worker_t *w = arg;
    (void)l;
    (void)salen;
    recd_http_server_t *s = w->srv;
    conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        evutil_closesocket(fd);
        return;
    }
    c->w = w;
    c->is_public = !w->is_admin;
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa && sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, host, sizeof host);
        port = ntohs(((struct sockaddr_in *)sa)->sin_port);
        snprintf(c->peer, sizeof c->peer, "%s:%d", host, port);
    } else if (sa && sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, host, sizeof host);
        port = ntohs(((struct sockaddr_in6 *)sa)->sin6_port);
        snprintf(c->peer, sizeof c->peer, "[%s]:%d", host, port);
    } else {
        snprintf(c->peer, sizeof c->peer, "local");
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    evutil_make_socket_nonblocking(fd);
    if (s->ssl && c->is_public) {
        SSL *ssl = SSL_new(s->ssl);
        if (!ssl) {
            evutil_closesocket(fd);
            free(c);
            return;
        }
        c->tls = 1;
        c->bev = bufferevent_openssl_socket_new(w->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                BEV_OPT_CLOSE_ON_FREE);
        if (c->bev)
            bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    } else {
        c->bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    c->deadline_ev = c->bev ? evtimer_new(w->base, conn_deadline_cb, c) : NULL;
    if (!c->bev || !c->deadline_ev) {
        if (c->bev)
            bufferevent_free(c->bev);
        else
            evutil_closesocket(fd);
        free(c);
        return;
    }
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    recd_stats_add(&w->st->conns_open, 1);
    recd_stats_add(&w->st->conns_accepted, 1);
    uint64_t open = c->is_public ? atomic_fetch_add(&s->open_public, 1) : 0;
    bufferevent_setcb(c->bev, conn_readcb, conn_writecb, conn_eventcb, c);
    c->state = C_IDLE;
    if (c->is_public && !recd_http_conn_admit(open, conf()->http_max_connections)) {
        recd_stats_add(&w->st->conns_rejected, 1);
        conn_fail(c, 503, "too_many_connections", NULL,
                  "connection limit reached (http.max_connections)", NULL);
        return;
    }
    /* a connection that never sends a byte is idle, not slow: it gets the
     * keep-alive idle timeout (the header deadline when keep-alive is off) */
    const recd_conf_t *cf = conf();
    set_read_timeout(c, cf->http_keepalive_timeout_ms > 0 ? cf->http_keepalive_timeout_ms
                                                          : cf->http_header_deadline_ms);
    if (c->tls)
        arm_deadline(c); /* handshake + first request head, trickling or not */
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void resume_accept_cb(evutil_socket_t fd, short what, void *arg)
{
    worker_t *w = arg;
    (void)fd;
    (void)what;
    if (w->listener && !w->draining)
        evconnlistener_enable(w->listener);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    worker_t *w = arg;
    int e = EVUTIL_SOCKET_ERROR();
    recd_log_warn("accept: %s; pausing accept for 100 ms", evutil_socket_error_to_string(e));
    /* EMFILE/ENFILE would otherwise spin the loop: back off briefly */
    evconnlistener_disable(l);
    struct timeval tv = {0, 100000};
    evtimer_add(w->resume_ev, &tv);
}

/* ---- workers ---------------------------------------------------------------------------- */

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    worker_t *w = arg;
    (void)fd;
    (void)what;
    if (w->draining)
        return;
    w->draining = 1;
    if (w->listener) {
        evconnlistener_free(w->listener); /* closes the socket */
        w->listener = NULL;
        w->lfd = -1;
    }
    /* idle connections close now; busy ones after their response */
    conn_t *c = w->conns;
    while (c) {
        conn_t *next = c->next;
        if (c->state == C_IDLE && evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
            conn_free(c);
        c = next;
    }
    worker_maybe_done(w);
}

static void kill_cb(evutil_socket_t fd, short what, void *arg)
{
    worker_t *w = arg;
    (void)fd;
    (void)what;
    stop_cb(-1, 0, w);
    while (w->conns)
        conn_free(w->conns);
    if (!w->is_admin)
        event_base_loopbreak(w->base);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    worker_t *w = arg;
    (void)fd;
    (void)what;
    update_date(w);
}

static void ping_cb(evutil_socket_t fd, short what, void *arg)
{
    worker_t *w = arg;
    (void)fd;
    (void)what;
    recd_stats_add(&w->st->heartbeat, 1);
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    event_base_dispatch(w->base);
    return NULL;
}

static int bind_socket(const char *addr, int port_override, int backlog, int *port_out,
                       recd_err_t *err)
{
    struct sockaddr_storage ss;
    unsigned sl;
    if (recd_conf_parse_listen(addr, &ss, &sl, err) < 0)
        return -1;
    if (port_override > 0) {
        if (ss.ss_family == AF_INET)
            ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port_override);
        else
            ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port_override);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        recd_err_set(err, RECD_EIO, "%s: socket: %s", addr, strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, backlog) < 0) {
        recd_err_set(err, RECD_EIO, "cannot listen on %s: %s", addr, strerror(errno));
        close(fd);
        return -1;
    }
    struct sockaddr_storage got;
    socklen_t gl = sizeof got;
    getsockname(fd, (struct sockaddr *)&got, &gl);
    *port_out = ntohs(got.ss_family == AF_INET ? ((struct sockaddr_in *)&got)->sin_port
                                               : ((struct sockaddr_in6 *)&got)->sin6_port);
    return fd;
}

typedef struct posted {
    struct posted *next;
    void (*fn)(void *arg);
    void *arg;
} posted_t;

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    worker_t *w = arg;
    (void)fd;
    (void)what;
    pthread_mutex_lock(&w->post_lock);
    posted_t *list = w->posted;
    w->posted = NULL;
    pthread_mutex_unlock(&w->post_lock);
    posted_t *rev = NULL; /* run in the order posted */
    while (list) {
        posted_t *n = list->next;
        list->next = rev;
        rev = list;
        list = n;
    }
    while (rev) {
        posted_t *n = rev->next;
        rev->fn(rev->arg);
        free(rev);
        rev = n;
    }
    if (w->srv->wake_fn)
        w->srv->wake_fn(w->idx, w->srv->wake_arg);
}

static int worker_init(worker_t *w, recd_http_server_t *s, unsigned idx, struct event_base *base,
                       int is_admin, int lfd, recd_err_t *err)
{
    w->idx = idx;
    w->srv = s;
    w->is_admin = is_admin;
    w->lfd = lfd;
    w->st = recd_stats_thread(idx);
    if (!w->st)
        return recd_err_set(err, RECD_ERR, "stats not initialised for thread %u", idx);
    recd_reqid_init(&w->ids, 0, idx);
    if (base) {
        w->base = base;
    } else {
        w->base = event_base_new();
        w->own_base = 1;
    }
    if (!w->base)
        return recd_err_set(err, RECD_ENOMEM, "event_base_new failed");
    w->stop_ev = event_new(w->base, -1, 0, stop_cb, w);
    w->kill_ev = event_new(w->base, -1, 0, kill_cb, w);
    w->tick_ev = event_new(w->base, -1, EV_PERSIST, tick_cb, w);
    w->resume_ev = evtimer_new(w->base, resume_accept_cb, w);
    w->ping_ev = event_new(w->base, -1, 0, ping_cb, w);
    w->wake_ev = event_new(w->base, -1, 0, wake_cb, w);
    pthread_mutex_init(&w->post_lock, NULL);
    if (!w->stop_ev || !w->kill_ev || !w->tick_ev || !w->resume_ev || !w->ping_ev || !w->wake_ev)
        return recd_err_set(err, RECD_ENOMEM, "event_new failed");
    struct timeval sec = {1, 0};
    event_add(w->tick_ev, &sec);
    update_date(w);
    if (lfd >= 0) {
        w->listener = evconnlistener_new(w->base, accept_cb, w, LEV_OPT_CLOSE_ON_FREE, 0, lfd);
        if (!w->listener) {
            close(lfd);
            w->lfd = -1;
            return recd_err_set(err, RECD_ERR, "evconnlistener_new failed");
        }
        evconnlistener_set_error_cb(w->listener, accept_error_cb);
        evconnlistener_disable(w->listener); /* until start */
    }
    return 0;
}

static void worker_destroy(worker_t *w)
{
    while (w->conns)
        conn_free(w->conns);
    if (w->spare) {
        recd_arena_free(&w->spare->arena);
        free(w->spare);
        w->spare = NULL;
    }
    if (w->listener)
        evconnlistener_free(w->listener);
    else if (w->lfd >= 0)
        close(w->lfd);
    w->listener = NULL;
    w->lfd = -1;
    if (w->stop_ev)
        event_free(w->stop_ev);
    if (w->kill_ev)
        event_free(w->kill_ev);
    if (w->tick_ev)
        event_free(w->tick_ev);
    if (w->resume_ev)
        event_free(w->resume_ev);
    if (w->ping_ev)
        event_free(w->ping_ev);
    if (w->wake_ev)
        event_free(w->wake_ev);
    while (w->posted) { /* never run: the loop is gone */
        posted_t *n = w->posted->next;
        free(w->posted);
        w->posted = n;
    }
    w->stop_ev = w->kill_ev = w->tick_ev = w->resume_ev = w->ping_ev = w->wake_ev = NULL;
    if (w->own_base && w->base)
        event_base_free(w->base);
    w->base = NULL;
}

static int copy_routes(recd_http_server_t *s, const recd_http_route_t *routes, size_t n,
                       recd_err_t *err)
{
    s->routes = calloc(n ? n : 1, sizeof *s->routes);
    if (!s->routes)
        return recd_err_set(err, RECD_ENOMEM, "out of memory");
    memcpy(s->routes, routes, n * sizeof *routes);
    s->nroutes = n;
    for (size_t i = 0; i < n; i++) {
        int id = recd_stats_endpoint_register(routes[i].pattern);
        s->routes[i].stats_id = id < 0 ? 0 : (unsigned)id;
    }
    return 0;
}

recd_http_server_t *recd_http_server_new(const recd_http_server_opts_t *o,
                                         struct event_base *main_base, recd_err_t *err)
{
    static int threads_ready;
    if (!threads_ready) {
        if (evthread_use_pthreads() < 0) {
            recd_err_set(err, RECD_ERR, "evthread_use_pthreads failed");
            return NULL;
        }
        threads_ready = 1;
    }
    const recd_conf_t *cf = conf();
    recd_http_server_t *s = calloc(1, sizeof *s);
    if (!s) {
        recd_err_set(err, RECD_ENOMEM, "out of memory");
        return NULL;
    }
    s->admin.lfd = -1;
    if (copy_routes(s, o->routes, o->nroutes, err) < 0)
        goto fail;
    if (*cf->tls_cert) {
        s->ssl = recd_http_tls_ctx_new(cf->tls_cert, cf->tls_key, err);
        if (!s->ssl)
            goto fail;
    }
    s->nworkers = o->workers ? o->workers : 1;
    s->workers = calloc(s->nworkers, sizeof *s->workers);
    s->last_heartbeat = calloc(s->nworkers, sizeof *s->last_heartbeat);
    if (!s->workers || !s->last_heartbeat) {
        recd_err_set(err, RECD_ENOMEM, "out of memory");
        goto fail;
    }
    for (unsigned i = 0; i < s->nworkers; i++)
        s->workers[i].lfd = -1;
    int port = 0;
    for (unsigned i = 0; i < s->nworkers; i++) {
        int fd = bind_socket(cf->http_listen, port, (int)cf->http_backlog, &port, err);
        if (fd < 0)
            goto fail;
        if (worker_init(&s->workers[i], s, i, NULL, 0, fd, err) < 0)
            goto fail;
    }
    s->port = port;
    if (*cf->admin_listen) {
        int aport = 0;
        int fd = bind_socket(cf->admin_listen, 0, 64, &aport, err);
        if (fd < 0)
            goto fail;
        s->has_admin = 1;
        if (worker_init(&s->admin, s, s->nworkers, main_base, 1, fd, err) < 0)
            goto fail;
        s->admin_port = aport;
    }
    return s;
fail:
    recd_http_server_free(s);
    return NULL;
}

void recd_http_server_set_admin_token(recd_http_server_t *s, const char *token)
{
    if (token && *token) {
        SHA256((const unsigned char *)token, strlen(token), s->admin_token_sha);
        s->admin_token_set = 1;
    } else {
        s->admin_token_set = 0;
    }
}

int recd_http_server_start(recd_http_server_t *s, recd_err_t *err)
{
    sigset_t all, old;
    sigfillset(&all);
    /* workers never take signals: the main loop handles them */
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (unsigned i = 0; i < s->nworkers; i++) {
        worker_t *w = &s->workers[i];
        evconnlistener_enable(w->listener);
        if (pthread_create(&w->tid, NULL, worker_main, w) != 0) {
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            return recd_err_set(err, RECD_ERR, "pthread_create failed");
        }
        w->started = 1;
        char name[16];
        snprintf(name, sizeof name, "recd-w%u", i % 1000u);
        pthread_setname_np(w->tid, name);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (s->has_admin)
        evconnlistener_enable(s->admin.listener);
    return 0;
}

void recd_http_server_drain(recd_http_server_t *s)
{
    for (unsigned i = 0; i < s->nworkers; i++)
        if (s->workers[i].stop_ev)
            event_active(s->workers[i].stop_ev, EV_READ, 0);
    if (s->has_admin)
        stop_cb(-1, 0, &s->admin);
}

uint64_t recd_http_server_open_conns(recd_http_server_t *s)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < recd_stats_nthreads(); i++)
        n += recd_stats_get(&recd_stats_thread(i)->conns_open);
    (void)s;
    return n;
}

int recd_http_server_port(recd_http_server_t *s, int admin)
{
    return admin ? s->admin_port : s->port;
}

int recd_http_server_workers_alive(recd_http_server_t *s)
{
    /* Each call checks that every worker ran the ping posted by the
     * previous call, then posts a new one: a loop stuck in a handler for a
     * whole watchdog half-interval withholds the next WATCHDOG=1. */
    int alive = 1;
    for (unsigned i = 0; i < s->nworkers; i++) {
        uint64_t hb = recd_stats_get(&s->workers[i].st->heartbeat);
        if (s->pinged && hb == s->last_heartbeat[i])
            alive = 0;
        s->last_heartbeat[i] = hb;
        event_active(s->workers[i].ping_ev, EV_READ, 0);
    }
    s->pinged = 1;
    return alive;
}

void recd_http_server_free(recd_http_server_t *s)
{
    if (!s)
        return;
    for (unsigned i = 0; s->workers && i < s->nworkers; i++) {
        worker_t *w = &s->workers[i];
        if (w->started) {
            event_active(w->kill_ev, EV_READ, 0);
            pthread_join(w->tid, NULL);
        }
        worker_destroy(w);
    }
    worker_destroy(&s->admin);
    free(s->workers);
    free(s->last_heartbeat);
    free(s->routes);
    if (s->ssl)
        SSL_CTX_free(s->ssl);
    free(s);
}

/* ---- self-test driver -------------------------------------------------------------------- */

typedef struct st_client {
    struct evbuffer *got;
    struct event_base *base;
    int fd;
    int shut;
} st_client_t;

static void st_readcb(struct bufferevent *bev, void *arg)
{
    st_client_t *cl = arg;
    evbuffer_add_buffer(cl->got, bufferevent_get_input(bev));
}

static void st_writecb(struct bufferevent *bev, void *arg)
{
    st_client_t *cl = arg;
    if (!cl->shut && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        shutdown(cl->fd, SHUT_WR);
        cl->shut = 1;
    }
}

static void st_eventcb(struct bufferevent *bev, short what, void *arg)
{
    st_client_t *cl = arg;
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        event_base_loopexit(cl->base, NULL);
}

int recd_http_selftest_feed(const recd_http_route_t *routes, size_t nroutes, const char *in,
                            size_t len, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (recd_stats_nthreads() == 0 && recd_stats_init(1) < 0)
        return RECD_ENOMEM;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        return RECD_EIO;
    recd_http_server_t s;
    memset(&s, 0, sizeof s);
    recd_err_t err;
    int rc = RECD_OK;
    worker_t *w = &s.admin; /* any worker slot: it is public (is_admin = 0) */
    if (copy_routes(&s, routes, nroutes, &err) < 0 ||
        worker_init(w, &s, 0, NULL, 0, -1, &err) < 0) {
        close(sv[0]);
        close(sv[1]);
        free(s.routes);
        worker_destroy(w);
        return RECD_ENOMEM;
    }
    st_client_t cl = {evbuffer_new(), w->base, sv[1], 0};
    struct bufferevent *cb = bufferevent_socket_new(w->base, sv[1], BEV_OPT_CLOSE_ON_FREE);
    struct sockaddr_in fake = {.sin_family = AF_INET};
    accept_cb(NULL, sv[0], (struct sockaddr *)&fake, sizeof fake, w);
    bufferevent_setcb(cb, st_readcb, st_writecb, st_eventcb, &cl);
    bufferevent_enable(cb, EV_READ | EV_WRITE);
    if (len)
        bufferevent_write(cb, in, len);
    else
        st_writecb(cb, &cl);
    struct timeval guard = {5, 0};
    event_base_loopexit(w->base, &guard);
    event_base_dispatch(w->base);
    evbuffer_add_buffer(cl.got, bufferevent_get_input(cb));
    size_t n = evbuffer_get_length(cl.got);
    *out = malloc(n + 1);
    if (*out) {
        evbuffer_remove(cl.got, *out, n);
        (*out)[n] = '\0';
        *out_len = n;
    } else {
        rc = RECD_ENOMEM;
    }
    bufferevent_free(cb);
    evbuffer_free(cl.got);
    worker_destroy(w);
    free(s.routes);
    return rc;
}

void recd_http_server_set_wake(recd_http_server_t *s, void (*fn)(unsigned worker, void *arg),
                               void *arg)
{
    s->wake_fn = fn;
    s->wake_arg = arg;
}

void recd_http_server_wake(recd_http_server_t *s, unsigned worker)
{
    if (worker < s->nworkers)
        event_active(s->workers[worker].wake_ev, EV_READ, 0);
    else if (s->has_admin && worker == s->admin.idx)
        event_active(s->admin.wake_ev, EV_READ, 0);
}

static worker_t *worker_of(recd_http_server_t *s, unsigned worker)
{
    if (worker < s->nworkers)
        return &s->workers[worker];
    if (s->has_admin && worker == s->admin.idx)
        return &s->admin;
    return NULL;
}

int recd_http_server_post(recd_http_server_t *s, unsigned worker, void (*fn)(void *arg), void *arg)
{
    worker_t *w = worker_of(s, worker);
    posted_t *p = w ? malloc(sizeof *p) : NULL;
    if (!p)
        return -1;
    p->fn = fn;
    p->arg = arg;
    pthread_mutex_lock(&w->post_lock);
    p->next = w->posted;
    w->posted = p;
    pthread_mutex_unlock(&w->post_lock);
    event_active(w->wake_ev, EV_READ, 0);
    return 0;
}
