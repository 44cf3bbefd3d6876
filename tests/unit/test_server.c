/*
 * Drive the real connection code (parser, limits, router, handlers,
 * response writer) through recd_http_selftest_feed with a route table of
 * our own, and check the bytes that come back. The last test runs a real
 * server to check recd_http_server_post across threads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <jansson.h>

#include "recd/conf.h"
#include "recd/http.h"
#include "recd/stats.h"

/* ---- handlers ------------------------------------------------------------------ */

static int calls_hello, calls_echo, calls_json;

static int h_hello(recd_http_req_t *r, void *arg)
{
    calls_hello++;
    recd_http_respond_json(r, 200, json_pack("{s:s}", "hello", "world"));
    return 0;
}

static int h_item(recd_http_req_t *r, void *arg)
{
    const char *id = recd_http_req_param(r, "id");
    const char *missing = recd_http_req_param(r, "nope");
    recd_http_respond_json(r, 200,
                           json_pack("{s:s?,s:b,s:s}", "id", id, "missing_is_null", missing == NULL,
                                     "path", recd_http_req_path(r)));
    return 0;
}

static int h_query(recd_http_req_t *r, void *arg)
{
    recd_http_respond_json(r, 200,
                           json_pack("{s:s?,s:s?,s:s?,s:s?}", "a", recd_http_req_query(r, "a"), "b",
                                     recd_http_req_query(r, "b"), "c", recd_http_req_query(r, "c"),
                                     "k y", recd_http_req_query(r, "k y")));
    return 0;
}

static int h_header(recd_http_req_t *r, void *arg)
{
    recd_http_resp_header(r, "X-Custom", "yes");
    recd_http_respond_json(r, 200,
                           json_pack("{s:s?,s:s?,s:s}", "thing", recd_http_req_header(r, "x-thing"),
                                     "absent", recd_http_req_header(r, "X-Absent"), "id",
                                     recd_http_req_id(r)));
    return 0;
}

static int h_echo(recd_http_req_t *r, void *arg)
{
    calls_echo++;
    size_t len = 0;
    const char *b = recd_http_req_body(r, &len);
    recd_http_respond(r, 200, "application/octet-stream", b ? b : "", b ? len : 0);
    return 0;
}

static int h_json(recd_http_req_t *r, void *arg)
{
    calls_json++;
    json_t *j = recd_http_req_json(r);
    if (!j)
        return 0; /* already answered */
    recd_http_respond_json(r, 200, json_pack("{s:o}", "got", j));
    return 0;
}

static int h_fail(recd_http_req_t *r, void *arg)
{
    recd_http_respond_error(r, 422, "invalid_thing", "thing", "thing must be %d..%d", 1, 10);
    return 0;
}

static int h_busy(recd_http_req_t *r, void *arg)
{
    recd_http_respond_error(r, 503, "overloaded", NULL, "try later");
    return 0;
}

static const recd_http_route_t routes[] = {
    {RECD_HTTP_GET, "/hello", 0, h_hello, NULL, 0},
    {RECD_HTTP_GET | RECD_HTTP_DELETE, "/items/{id}", 0, h_item, NULL, 0},
    {RECD_HTTP_GET, "/items/{id}/sub", 0, h_item, NULL, 0},
    {RECD_HTTP_GET, "/q", 0, h_query, NULL, 0},
    {RECD_HTTP_GET, "/hdr", 0, h_header, NULL, 0},
    {RECD_HTTP_POST | RECD_HTTP_PUT, "/echo", 0, h_echo, NULL, 0},
    {RECD_HTTP_POST, "/json", RECD_ROUTE_JSON_BODY, h_json, NULL, 0},
    {RECD_HTTP_GET, "/fail", 0, h_fail, NULL, 0},
    {RECD_HTTP_GET, "/busy", 0, h_busy, NULL, 0},
};
#define NROUTES (sizeof routes / sizeof routes[0])

/* ---- response parsing ---------------------------------------------------------------- */

typedef struct resp {
    int status;
    char headers[40][2][256];
    int nheaders;
    char *body;
    size_t body_len;
} resp_t;

typedef struct result {
    char *raw;
    size_t raw_len;
    resp_t r[16];
    int n;
    int trailing_garbage; /* bytes left that do not form a response */
} result_t;

static const char *rh(const resp_t *r, const char *name)
{
    for (int i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i][0], name) == 0)
            return r->headers[i][1];
    return NULL;
}

static int rh_count(const resp_t *r, const char *name)
{
    int n = 0;
    for (int i = 0; i < r->nheaders; i++)
        n += strcasecmp(r->headers[i][0], name) == 0;
    return n;
}

/* Parse responses; `head_mask` bit i set = response i answers a HEAD. */
static void parse_responses(result_t *res, unsigned head_mask)
{
    const char *p = res->raw, *end = res->raw + res->raw_len;
    res->n = 0;
    while (p < end && res->n < 16) {
        const char *hend = strstr(p, "\r\n\r\n");
        if (!hend || strncmp(p, "HTTP/1.1 ", 9) != 0)
            break;
        resp_t *r = &res->r[res->n];
        memset(r, 0, sizeof *r);
        r->status = atoi(p + 9);
        const char *line = strstr(p, "\r\n") + 2;
        while (line < hend + 2) {
            const char *le = strstr(line, "\r\n");
            const char *colon = memchr(line, ':', (size_t)(le - line));
            assert_non_null(colon);
            assert_true(r->nheaders < 40);
            snprintf(r->headers[r->nheaders][0], 256, "%.*s", (int)(colon - line), line);
            const char *v = colon + 1;
            while (*v == ' ')
                v++;
            snprintf(r->headers[r->nheaders][1], 256, "%.*s", (int)(le - v), v);
            r->nheaders++;
            line = le + 2;
        }
        p = hend + 4;
        if (r->status == 100) { /* interim: no body, no Content-Length */
            res->n++;
            continue;
        }
        const char *cl = rh(r, "Content-Length");
        assert_non_null(cl);
        size_t blen = strtoul(cl, NULL, 10);
        if (head_mask & (1u << res->n))
            blen = 0;
        if ((size_t)(end - p) < blen)
            break;
        r->body = malloc(blen + 1);
        memcpy(r->body, p, blen);
        r->body[blen] = '\0';
        r->body_len = blen;
        p += blen;
        res->n++;
    }
    res->trailing_garbage = (int)(end - p);
}

static void feed(result_t *res, const char *in, size_t len, unsigned head_mask)
{
    memset(res, 0, sizeof *res);
    int rc = recd_http_selftest_feed(routes, NROUTES, in, len, &res->raw, &res->raw_len);
    assert_int_equal(rc, 0);
    assert_non_null(res->raw);
    parse_responses(res, head_mask);
    if (res->trailing_garbage)
        print_message("unparsed output: %s\n", res->raw);
}

static void feed_s(result_t *res, const char *in)
{
    feed(res, in, strlen(in), 0);
}

static void result_free(result_t *res)
{
    for (int i = 0; i < res->n; i++)
        free(res->r[i].body);
    free(res->raw);
}

static json_t *body_json(const resp_t *r)
{
    json_error_t je;
    json_t *j = json_loadb(r->body, r->body_len, 0, &je);
    if (!j)
        print_message("body is not JSON: %.*s\n", (int)r->body_len, r->body);
    assert_non_null(j);
    return j;
}

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* {"error":{"code","message","field"}} */
static void check_error(const resp_t *r, int status, const char *code)
{
    if (r->status != status)
        print_message("status %d, want %d; body %s\n", r->status, status, r->body);
    assert_int_equal(r->status, status);
    const char *ct = rh(r, "Content-Type");
    assert_non_null(ct);
    assert_true(strncmp(ct, "application/json", 16) == 0);
    json_t *j = body_json(r);
    json_t *e = json_object_get(j, "error");
    assert_true(json_is_object(e));
    assert_string_equal(jstr(e, "code"), code);
    assert_true(json_is_string(json_object_get(e, "message")));
    json_t *f = json_object_get(e, "field");
    assert_true(f != NULL && (json_is_string(f) || json_is_null(f)));
    json_decref(j);
}

static const char *error_field(const resp_t *r)
{
    static char buf[128];
    json_t *j = body_json(r);
    const char *f = json_string_value(json_object_get(json_object_get(j, "error"), "field"));
    snprintf(buf, sizeof buf, "%s", f ? f : "(null)");
    json_decref(j);
    return buf;
}

static int is_hex16(const char *s)
{
    if (!s || strlen(s) != 16)
        return 0;
    for (int i = 0; i < 16; i++)
        if (!isdigit((unsigned char)s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
            return 0;
    return 1;
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_get_basic(void **state)
{
    result_t res;
    calls_hello = 0;
    feed_s(&res, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(res.n, 1);
    assert_int_equal(res.trailing_garbage, 0);
    resp_t *r = &res.r[0];
    assert_int_equal(r->status, 200);
    assert_true(strncmp(res.raw, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_true(is_hex16(rh(r, "X-Request-Id")));
    assert_int_equal(rh_count(r, "X-Request-Id"), 1);
    assert_int_equal(rh_count(r, "Content-Length"), 1);
    assert_int_equal(strtoul(rh(r, "Content-Length"), NULL, 10), r->body_len);
    assert_true(strncmp(rh(r, "Content-Type"), "application/json", 16) == 0);
    json_t *j = body_json(r);
    assert_string_equal(jstr(j, "hello"), "world");
    json_decref(j);
    assert_int_equal(calls_hello, 1);
    result_free(&res);
}

static void test_pipelined_in_order(void **state)
{
    result_t res;
    const char *in = "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"
                     "GET /items/abc HTTP/1.1\r\nHost: t\r\n\r\n"
                     "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n"
                     "GET /q?a=first HTTP/1.1\r\nHost: t\r\n\r\n"
                     "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyz"
                     "GET /items/last HTTP/1.1\r\nHost: t\r\n\r\n";
    feed_s(&res, in);
    assert_int_equal(res.n, 6);
    assert_int_equal(res.trailing_garbage, 0);
    json_t *j = body_json(&res.r[0]);
    assert_string_equal(jstr(j, "hello"), "world");
    json_decref(j);
    j = body_json(&res.r[1]);
    assert_string_equal(jstr(j, "id"), "abc");
    json_decref(j);
    check_error(&res.r[2], 404, "not_found");
    j = body_json(&res.r[3]);
    assert_string_equal(jstr(j, "a"), "first");
    json_decref(j);
    assert_int_equal(res.r[4].status, 200);
    assert_int_equal(res.r[4].body_len, 3);
    assert_memory_equal(res.r[4].body, "xyz", 3);
    j = body_json(&res.r[5]);
    assert_string_equal(jstr(j, "id"), "last");
    json_decref(j);
    /* each response has its own id */
    for (int i = 0; i < 6; i++)
        for (int k = 0; k < i; k++)
            assert_string_not_equal(rh(&res.r[i], "X-Request-Id"), rh(&res.r[k], "X-Request-Id"));
    result_free(&res);
}

static void test_404_405(void **state)
{
    result_t res;
    feed_s(&res, "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n"
                 "POST /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"
                 "GET /hello/ HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /items/ HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /items/a/b HTTP/1.1\r\nHost: t\r\n\r\n"
                 "PUT /items/x HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(res.n, 6);
    check_error(&res.r[0], 404, "not_found");
    check_error(&res.r[1], 405, "method_not_allowed");
    const char *allow = rh(&res.r[1], "Allow");
    assert_non_null(allow);
    assert_non_null(strstr(allow, "GET"));
    assert_non_null(strstr(allow, "HEAD"));
    assert_null(strstr(allow, "POST"));
    check_error(&res.r[2], 404, "not_found");
    check_error(&res.r[3], 404, "not_found"); /* {id} matches one non-empty segment */
    check_error(&res.r[4], 404, "not_found");
    check_error(&res.r[5], 405, "method_not_allowed");
    allow = rh(&res.r[5], "Allow");
    assert_non_null(allow);
    assert_non_null(strstr(allow, "GET"));
    assert_non_null(strstr(allow, "DELETE"));
    assert_null(strstr(allow, "PUT"));
    result_free(&res);

    /* an unknown method: 405 and the connection is closed */
    feed_s(&res, "FOO /hello HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(res.n, 1);
    check_error(&res.r[0], 405, "method_not_allowed");
    assert_non_null(rh(&res.r[0], "Connection"));
    assert_string_equal(rh(&res.r[0], "Connection"), "close");
    result_free(&res);
}

static void test_head_request(void **state)
{
    result_t res;
    feed(&res,
         "HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n"
         "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n",
         strlen("HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n"
                "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"),
         1u);
    assert_int_equal(res.n, 2);
    assert_int_equal(res.trailing_garbage, 0);
    assert_int_equal(res.r[0].status, 200);
    assert_int_equal(res.r[1].status, 200);
    /* HEAD announces the GET body's length but sends no body */
    assert_string_equal(rh(&res.r[0], "Content-Length"), rh(&res.r[1], "Content-Length"));
    assert_true(res.r[1].body_len > 0);
    result_free(&res);
}

static void test_request_id_echo(void **state)
{
    result_t res;
    feed_s(&res, "GET /hdr HTTP/1.1\r\nHost: t\r\nX-Request-Id: my-id.123_ABC\r\n\r\n"
                 "GET /hdr HTTP/1.1\r\nHost: t\r\nX-Request-Id: bad\"id\r\n\r\n"
                 "GET /hdr HTTP/1.1\r\nHost: t\r\nx-request-id: lower\r\n\r\n");
    assert_int_equal(res.n, 3);
    assert_string_equal(rh(&res.r[0], "X-Request-Id"), "my-id.123_ABC");
    json_t *j = body_json(&res.r[0]);
    assert_string_equal(jstr(j, "id"), "my-id.123_ABC");
    json_decref(j);
    assert_true(is_hex16(rh(&res.r[1], "X-Request-Id")));
    assert_string_equal(rh(&res.r[2], "X-Request-Id"), "lower");
    result_free(&res);

    /* 128 characters echoed, 129 replaced */
    char in[1024], id[200];
    memset(id, 'k', 128);
    id[128] = '\0';
    snprintf(in, sizeof in, "GET /hello HTTP/1.1\r\nHost: t\r\nX-Request-Id: %s\r\n\r\n", id);
    feed_s(&res, in);
    assert_int_equal(res.n, 1);
    assert_string_equal(rh(&res.r[0], "X-Request-Id"), id);
    result_free(&res);
    id[128] = 'k';
    id[129] = '\0';
    snprintf(in, sizeof in, "GET /hello HTTP/1.1\r\nHost: t\r\nX-Request-Id: %s\r\n\r\n", id);
    feed_s(&res, in);
    assert_int_equal(res.n, 1);
    assert_true(is_hex16(rh(&res.r[0], "X-Request-Id")));
    result_free(&res);
}

static void test_headers_accessor(void **state)
{
    result_t res;
    feed_s(&res, "GET /hdr HTTP/1.1\r\nHost: t\r\nX-THING:  value 1 \r\n\r\n");
    assert_int_equal(res.n, 1);
    json_t *j = body_json(&res.r[0]);
    assert_string_equal(jstr(j, "thing"), "value 1");
    assert_true(json_is_null(json_object_get(j, "absent")));
    json_decref(j);
    assert_string_equal(rh(&res.r[0], "X-Custom"), "yes");
    result_free(&res);
}

static void test_cl_te_rejected(void **state)
{
    result_t res;
    calls_echo = calls_hello = 0;
    feed_s(&res, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n"
                 "3\r\nabc\r\n0\r\n\r\n"
                 "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(res.n, 1);
    check_error(&res.r[0], 400, "bad_request");
    assert_string_equal(rh(&res.r[0], "Connection"), "close");
    assert_int_equal(calls_echo, 0);
    assert_int_equal(calls_hello, 0);
    assert_int_equal(res.trailing_garbage, 0);
    result_free(&res);
}

static void test_chunked_body(void **state)
{
    result_t res;
    calls_echo = 0;
    feed_s(&res, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "4;ext=\"x\"\r\nWiki\r\n5\r\npedia\r\ne\r\n in\r\n\r\nchunks.\r\n"
                 "0\r\nTrailer-A: 1\r\n\r\n"
                 "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(res.n, 2);
    assert_int_equal(res.r[0].status, 200);
    const char *want = "Wikipedia in\r\n\r\nchunks.";
    assert_int_equal(res.r[0].body_len, strlen(want));
    assert_memory_equal(res.r[0].body, want, strlen(want));
    assert_int_equal(res.r[1].status, 200);
    assert_int_equal(calls_echo, 1);
    result_free(&res);

    /* a bad chunk size: 400, closed */
    feed_s(&res, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "zz\r\nabc\r\n0\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(res.n, 1);
    check_error(&res.r[0], 400, "bad_request");
    result_free(&res);
}

static void test_content_length_body(void **state)
{
    result_t res;
    /* body bytes exactly as sent, including NUL and CRLF */
    static const char in[] = "PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n\r\na\0b\r\nc";
    feed(&res, in, sizeof in - 1, 0);
    assert_int_equal(res.n, 1);
    assert_int_equal(res.r[0].body_len, 6);
    assert_memory_equal(res.r[0].body, "a\0b\r\nc", 6);
    result_free(&res);

    /* oversized by Content-Length: 413 before the body is read, closed */
    feed_s(&res, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1048577\r\n\r\nabc");
    assert_int_equal(res.n, 1);
    check_error(&res.r[0], 413, "body_too_large");
    assert_string_equal(rh(&res.r[0], "Connection"), "close");
    result_free(&res);

    /* truncated body: the client half-closed; no response to a request
     * that never completed is fine, but nothing may be garbage */
    feed_s(&res, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
    assert_int_equal(res.trailing_garbage, 0);
    for (int i = 0; i < res.n; i++)
        assert_int_not_equal(res.r[i].status, 200);
    result_free(&res);
}

static void test_path_params(void **state)
{
    result_t res;
    feed_s(&res, "GET /items/caf%C3%A9%20x HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /items/a%2Fb HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /items/x+y HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /items/k9/sub?z=1 HTTP/1.1\r\nHost: t\r\n\r\n"
                 "DELETE /items/d1 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(res.n, 5);
    json_t *j = body_json(&res.r[0]);
    assert_string_equal(jstr(j, "id"), "caf\xc3\xa9 x");
    assert_true(json_is_true(json_object_get(j, "missing_is_null")));
    json_decref(j);
    j = body_json(&res.r[1]);
    assert_string_equal(jstr(j, "id"), "a/b");
    json_decref(j);
    j = body_json(&res.r[2]);
    assert_string_equal(jstr(j, "id"), "x+y"); /* '+' is only a space in queries */
    json_decref(j);
    j = body_json(&res.r[3]);
    assert_string_equal(jstr(j, "id"), "k9");
    assert_string_equal(jstr(j, "path"), "/items/k9/sub");
    json_decref(j);
    j = body_json(&res.r[4]);
    assert_string_equal(jstr(j, "id"), "d1");
    json_decref(j);
    result_free(&res);
}

static void test_query_params(void **state)
{
    result_t res;
    feed_s(&res, "GET /q?a=1+2&b=%20x%2By&a=second&k+y=v HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /q HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /q?c=&a HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(res.n, 3);
    json_t *j = body_json(&res.r[0]);
    assert_string_equal(jstr(j, "a"), "1 2");
    assert_string_equal(jstr(j, "b"), " x+y");
    assert_true(json_is_null(json_object_get(j, "c")));
    assert_string_equal(jstr(j, "k y"), "v");
    json_decref(j);
    j = body_json(&res.r[1]);
    assert_true(json_is_null(json_object_get(j, "a")));
    json_decref(j);
    j = body_json(&res.r[2]);
    assert_string_equal(jstr(j, "c"), "");
    json_decref(j);
    result_free(&res);
}

static void test_json_route(void **state)
{
    result_t res;
    calls_json = 0;
    feed_s(&res,
           "POST /json HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
           "Content-Length: 16\r\n\r\n{\"a\": [1, 2, 3]}"
           "POST /json HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\n"
           "Content-Length: 2\r\n\r\n{}"
           "POST /json HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
           "Content-Length: 9\r\n\r\n{\n \"a\": }"
           "POST /json HTTP/1.1\r\nHost: t\r\nContent-Type: application/json; charset=utf-8\r\n"
           "Content-Length: 2\r\n\r\n[]");
    assert_int_equal(res.n, 4);
    assert_int_equal(res.r[0].status, 200);
    json_t *j = body_json(&res.r[0]);
    json_t *got = json_object_get(j, "got");
    assert_int_equal(json_array_size(json_object_get(got, "a")), 3);
    json_decref(j);
    check_error(&res.r[1], 415, "unsupported_media_type");
    assert_string_equal(error_field(&res.r[1]), "header:Content-Type");
    check_error(&res.r[2], 400, "bad_json");
    j = body_json(&res.r[2]);
    const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    assert_non_null(msg);
    assert_non_null(strstr(msg, "line 2"));
    assert_non_null(strstr(msg, "column"));
    json_decref(j);
    assert_int_equal(res.r[3].status, 200);
    result_free(&res);

    /* deeper than http.max_json_depth (32) */
    char body[200], in[512];
    memset(body, '[', 33);
    memset(body + 33, ']', 33);
    body[66] = '\0';
    snprintf(in, sizeof in,
             "POST /json HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             strlen(body), body);
    feed_s(&res, in);
    assert_int_equal(res.n, 1);
    check_error(&res.r[0], 400, "json_too_deep");
    result_free(&res);
    /* exactly 32 is fine */
    body[32] = '\0';
    memset(body + 32, ']', 32);
    body[64] = '\0';
    memset(body, '[', 32);
    snprintf(in, sizeof in,
             "POST /json HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             strlen(body), body);
    feed_s(&res, in);
    assert_int_equal(res.n, 1);
    assert_int_equal(res.r[0].status, 200);
    result_free(&res);
}

static void test_error_helpers(void **state)
{
    result_t res;
    feed_s(&res, "GET /fail HTTP/1.1\r\nHost: t\r\n\r\nGET /busy HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(res.n, 2);
    check_error(&res.r[0], 422, "invalid_thing");
    json_t *j = body_json(&res.r[0]);
    json_t *e = json_object_get(j, "error");
    assert_string_equal(jstr(e, "message"), "thing must be 1..10");
    assert_string_equal(jstr(e, "field"), "thing");
    json_decref(j);
    check_error(&res.r[1], 503, "overloaded");
    assert_non_null(rh(&res.r[1], "Retry-After"));
    assert_true(atoi(rh(&res.r[1], "Retry-After")) >= 1);
    j = body_json(&res.r[1]);
    assert_true(json_is_null(json_object_get(json_object_get(j, "error"), "field")));
    json_decref(j);
    result_free(&res);

    char buf[256];
    memset(buf, 'Z', sizeof buf);
    size_t n = recd_http_error_body(buf, sizeof buf, "headers_too_large", NULL, "too \"big\"");
    assert_true(n > 0 && n < sizeof buf);
    json_error_t je;
    j = json_loadb(buf, n, 0, &je);
    assert_non_null(j);
    e = json_object_get(j, "error");
    assert_string_equal(jstr(e, "code"), "headers_too_large");
    assert_string_equal(jstr(e, "message"), "too \"big\"");
    assert_true(json_is_null(json_object_get(e, "field")));
    json_decref(j);
}

static void test_expect_continue(void **state)
{
    result_t res;
    feed_s(&res, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n"
                 "Expect: 100-continue\r\n\r\nhi");
    assert_true(strncmp(res.raw, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0);
    assert_int_equal(res.n, 2);
    assert_int_equal(res.r[1].status, 200);
    assert_memory_equal(res.r[1].body, "hi", 2);
    result_free(&res);

    feed_s(&res, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n"
                 "Expect: teapot\r\n\r\nhi");
    assert_int_equal(res.n, 1);
    check_error(&res.r[0], 417, "expectation_failed");
    result_free(&res);
}

static void test_connection_close(void **state)
{
    result_t res;
    feed_s(&res, "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                 "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(res.n, 1);
    assert_string_equal(rh(&res.r[0], "Connection"), "close");
    result_free(&res);

    feed_s(&res, "GET /hello HTTP/1.0\r\n\r\nGET /hello HTTP/1.0\r\n\r\n");
    assert_int_equal(res.n, 1);
    assert_int_equal(res.r[0].status, 200);
    result_free(&res);

    feed_s(&res, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                 "GET /hello HTTP/1.0\r\n\r\n");
    assert_int_equal(res.n, 2);
    result_free(&res);

    /* malformed head: 400, closed, nothing after it */
    feed_s(&res, "GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n"
                 "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(res.n, 1);
    check_error(&res.r[0], 400, "bad_request");
    result_free(&res);

    /* no input at all: no output */
    feed(&res, "", 0, 0);
    assert_int_equal(res.raw_len, 0);
    result_free(&res);
}

static void test_headers_too_large(void **state)
{
    result_t res;
    size_t n = 20000;
    char *in = malloc(n + 64);
    size_t o = (size_t)sprintf(in, "GET /hello HTTP/1.1\r\nHost: t\r\nX-Big: ");
    memset(in + o, 'b', n - o);
    memcpy(in + n, "\r\n\r\n", 4);
    feed(&res, in, n + 4, 0);
    assert_int_equal(res.n, 1);
    check_error(&res.r[0], 431, "headers_too_large");
    result_free(&res);
    free(in);
}

/* A long run of empty lines before the request line must not leave the
 * connection buffering without an answer. */
static void test_leading_crlf_flood(void **state)
{
    result_t res;
    size_t n = 100000;
    char *in = malloc(n + 64);
    for (size_t i = 0; i < n; i += 2)
        memcpy(in + i, "\r\n", 2);
    strcpy(in + n, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    feed_s(&res, in);
    if (res.n != 1)
        print_message("%zu bytes of CRLF + GET: %d responses, %zu bytes of output\n", n, res.n,
                      res.raw_len);
    assert_int_equal(res.n, 1);
    check_error(&res.r[0], 431, "headers_too_large");
    result_free(&res);
    free(in);
}

/* The client half-closes after pipelined requests and a partial one: the
 * server answers the complete ones and then closes at once (selftest_feed
 * otherwise runs into its 5 s guard; a real connection would sit until
 * http.header_deadline_ms). */
static void test_eof_after_partial_pipelined(void **state)
{
    static const char *const inputs[] = {
        "GET /hello HTTP/1.1\r\nHost: t\r\n\r\nGET /x",
        "GET /hello HTTP/1.1\r\nHost: t\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\nGET /x",
        "GET /hello HTTP/1.1\r\nHost: t\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\n"
        "GET /hello HTTP/1.1\r\nHost: t\r\n\r\nPOST /echo HTTP/1.1\r\nHost: t\r\n"
        "Content-Length: 9\r\n\r\nab",
    };
    static const int want[] = {1, 2, 3};
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        result_t res;
        uint64_t t0 = recd_time_mono_us();
        feed_s(&res, inputs[i]);
        uint64_t ms = (recd_time_mono_us() - t0) / 1000;
        if (ms >= 1000 || res.n != want[i])
            print_message("input %zu: %d responses in %llu ms\n", i, res.n, (unsigned long long)ms);
        assert_int_equal(res.n, want[i]);
        assert_true(ms < 1000);
        result_free(&res);
    }
}

/* ---- recd_http_server_post on a real server ------------------------------------------------
 * An async handler on the admin listener (which runs on the caller's loop,
 * here this thread's) hands its work to a coordinator thread; two poster
 * threads post closures to the admin loop concurrently, then the
 * coordinator posts the closure that answers. Every closure must run on
 * this thread, each poster's closures in the order posted, and the answer
 * after all of them. */

#define POSTS_PER_THREAD 200

static struct {
    pthread_t main_tid;
    recd_http_server_t *srv;
    recd_http_req_t *req;
    unsigned worker;
    pthread_t coord;
    int coord_started;
    int next[2];       /* next sequence number expected from each poster */
    int ran, off_loop; /* closures run; closures run on another thread */
    int out_of_order;
    int worker_ran_on_main; /* closure posted to worker 0 ran on the main thread */
    _Atomic int worker_ran;
    _Atomic int dropped_ran;
    _Atomic int client_done;
    char got[2048];
    struct event_base *base;
} pt;

typedef struct post_item {
    int thread, seq;
} post_item_t;

static post_item_t post_items[2][POSTS_PER_THREAD];

static void closure_count(void *arg)
{
    post_item_t *it = arg;
    if (!pthread_equal(pthread_self(), pt.main_tid))
        pt.off_loop++;
    if (it->seq != pt.next[it->thread])
        pt.out_of_order++;
    pt.next[it->thread] = it->seq + 1;
    pt.ran++;
}

static void closure_answer(void *arg)
{
    (void)arg;
    recd_http_respond_json(pt.req, 200,
                           json_pack("{s:i,s:i,s:i,s:b}", "ran", pt.ran, "off_loop", pt.off_loop,
                                     "out_of_order", pt.out_of_order, "on_main",
                                     pthread_equal(pthread_self(), pt.main_tid)));
}

static void *poster(void *arg)
{
    int t = (int)(intptr_t)arg;
    for (int i = 0; i < POSTS_PER_THREAD; i++) {
        post_items[t][i].thread = t;
        post_items[t][i].seq = i;
        if (recd_http_server_post(pt.srv, pt.worker, closure_count, &post_items[t][i]) != 0)
            return (void *)1;
    }
    return NULL;
}

static void closure_on_worker(void *arg)
{
    (void)arg;
    pt.worker_ran_on_main = pthread_equal(pthread_self(), pt.main_tid);
    atomic_store(&pt.worker_ran, 1);
}

static void *coordinator(void *arg)
{
    (void)arg;
    pthread_t a, b;
    void *ra = (void *)1, *rb = (void *)1;
    if (pthread_create(&a, NULL, poster, (void *)(intptr_t)0) == 0) {
        if (pthread_create(&b, NULL, poster, (void *)(intptr_t)1) == 0)
            pthread_join(b, &rb);
        pthread_join(a, &ra);
    }
    /* a worker thread's loop: the closure runs there, not on main */
    recd_http_server_post(pt.srv, 0, closure_on_worker, NULL);
    if (ra || rb)
        pt.out_of_order = -1000; /* a post failed: make the check fail */
    recd_http_server_post(pt.srv, pt.worker, closure_answer, NULL);
    return NULL;
}

static int h_async(recd_http_req_t *r, void *arg)
{
    (void)arg;
    pt.req = r;
    pt.worker = recd_http_req_worker(r);
    if (recd_http_req_server(r) != pt.srv || pthread_create(&pt.coord, NULL, coordinator, NULL)) {
        recd_http_respond_error(r, 500, "internal", NULL, "set-up failed");
        return 0;
    }
    pt.coord_started = 1;
    return RECD_HTTP_ASYNC;
}

static void *post_client(void *arg)
{
    int port = (int)(intptr_t)arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        static const char req[] = "GET /async HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        if (send(fd, req, sizeof req - 1, 0) == (ssize_t)(sizeof req - 1)) {
            size_t n = 0;
            ssize_t r;
            while (n + 1 < sizeof pt.got &&
                   (r = recv(fd, pt.got + n, sizeof pt.got - 1 - n, 0)) > 0)
                n += (size_t)r;
            pt.got[n] = '\0';
        }
    }
    if (fd >= 0)
        close(fd);
    atomic_store(&pt.client_done, 1);
    event_base_loopbreak(pt.base);
    return NULL;
}

static void closure_dropped(void *arg)
{
    (void)arg;
    atomic_store(&pt.dropped_ran, 1);
}

static void test_server_post_in_order(void **state)
{
    (void)state;
    static const recd_http_route_t aroutes[] = {
        {RECD_HTTP_GET, "/async", RECD_ROUTE_ADMIN, h_async, NULL, 0},
    };
    static const char *const sets[] = {"http.listen=127.0.0.1:0", "admin.listen=127.0.0.1:0",
                                       "http.workers=1"};
    recd_conf_errors_t errs = {0};
    recd_conf_t *c = recd_conf_load(NULL, sets, 3, &errs);
    recd_conf_errors_free(&errs);
    assert_non_null(c);
    recd_conf_publish(c);
    recd_stats_shutdown(); /* the selftests set it up for one thread */
    assert_int_equal(recd_stats_init(2), 0);

    memset(&pt, 0, sizeof pt);
    pt.main_tid = pthread_self();
    /* before the base exists, so other threads can break its loop */
    assert_int_equal(evthread_use_pthreads(), 0);
    pt.base = event_base_new();
    assert_non_null(pt.base);
    recd_err_t err = {0};
    recd_http_server_opts_t so = {aroutes, 1, 1};
    pt.srv = recd_http_server_new(&so, pt.base, &err);
    if (!pt.srv)
        print_message("server: %s\n", err.msg);
    assert_non_null(pt.srv);
    assert_int_equal(recd_http_server_start(pt.srv, &err), 0);
    /* no such loop: refused, fn never runs */
    assert_int_equal(recd_http_server_post(pt.srv, 99, closure_dropped, NULL), -1);

    pthread_t cl;
    assert_int_equal(
        pthread_create(&cl, NULL, post_client, (void *)(intptr_t)recd_http_server_port(pt.srv, 1)),
        0);
    struct timeval guard = {20, 0}; /* the client breaks the loop when it has the answer */
    event_base_loopexit(pt.base, &guard);
    event_base_dispatch(pt.base);
    pthread_join(cl, NULL);
    if (pt.coord_started)
        pthread_join(pt.coord, NULL);
    for (int i = 0; i < 500 && !atomic_load(&pt.worker_ran); i++)
        usleep(2000);

    /* posted after the loop stopped: dropped without running when freed */
    assert_int_equal(recd_http_server_post(pt.srv, pt.worker, closure_dropped, NULL), 0);
    recd_http_server_free(pt.srv);
    event_base_free(pt.base);
    recd_stats_shutdown();
    recd_conf_shutdown();

    const char *body = strstr(pt.got, "\r\n\r\n");
    if (strncmp(pt.got, "HTTP/1.1 200", 12) != 0 || !body)
        print_message("response: %s\n", pt.got);
    assert_true(strncmp(pt.got, "HTTP/1.1 200", 12) == 0 && body);
    json_t *j = json_loads(body + 4, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "ran")), 2 * POSTS_PER_THREAD);
    assert_int_equal(json_integer_value(json_object_get(j, "off_loop")), 0);
    assert_int_equal(json_integer_value(json_object_get(j, "out_of_order")), 0);
    assert_true(json_is_true(json_object_get(j, "on_main")));
    json_decref(j);
    assert_int_equal(pt.next[0], POSTS_PER_THREAD);
    assert_int_equal(pt.next[1], POSTS_PER_THREAD);
    assert_true(atomic_load(&pt.worker_ran));
    assert_false(pt.worker_ran_on_main);
    assert_false(atomic_load(&pt.dropped_ran));
}

static int teardown_all(void **state)
{
    recd_stats_shutdown();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_basic),
        cmocka_unit_test(test_pipelined_in_order),
        cmocka_unit_test(test_404_405),
        cmocka_unit_test(test_head_request),
        cmocka_unit_test(test_request_id_echo),
        cmocka_unit_test(test_headers_accessor),
        cmocka_unit_test(test_cl_te_rejected),
        cmocka_unit_test(test_chunked_body),
        cmocka_unit_test(test_content_length_body),
        cmocka_unit_test(test_path_params),
        cmocka_unit_test(test_query_params),
        cmocka_unit_test(test_json_route),
        cmocka_unit_test(test_error_helpers),
        cmocka_unit_test(test_expect_continue),
        cmocka_unit_test(test_connection_close),
        cmocka_unit_test(test_headers_too_large),
        cmocka_unit_test(test_leading_crlf_flood),
        cmocka_unit_test(test_eof_after_partial_pipelined),
        cmocka_unit_test(test_server_post_in_order), /* last: publishes a config */
    };
    return cmocka_run_group_tests(tests, NULL, teardown_all);
}
