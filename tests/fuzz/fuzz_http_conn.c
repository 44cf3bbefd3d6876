/*
 * Fuzz the whole connection path: parser, limits, router, handlers (one
 * of which parses a JSON body with recd_http_req_json) and the response
 * writer, through recd_http_selftest_feed. The output must be a sequence of
 * well-formed HTTP/1.1 responses.
 */
#include <string.h>

#include <jansson.h>

#include "fuzz_common.h"
#include "recd/http.h"

static int h_ok(recd_http_req_t *r, void *arg)
{
    recd_http_respond_json(r, 200, json_pack("{s:s}", "path", recd_http_req_path(r)));
    return 0;
}

static int h_item(recd_http_req_t *r, void *arg)
{
    const char *id = recd_http_req_param(r, "id");
    FUZZ_CHECK(id != NULL);
    recd_http_respond_json(r, 200,
                           json_pack("{s:s?,s:s?,s:s?}", "id", id, "q", recd_http_req_query(r, "q"),
                                     "h", recd_http_req_header(r, "x-h")));
    return 0;
}

static int h_json(recd_http_req_t *r, void *arg)
{
    json_t *j = recd_http_req_json(r);
    if (!j)
        return 0;
    FUZZ_CHECK(json_is_object(j) || json_is_array(j));
    recd_http_respond_json(r, 200, json_pack("{s:o}", "got", j));
    return 0;
}

static int h_echo(recd_http_req_t *r, void *arg)
{
    size_t n = 0;
    const char *b = recd_http_req_body(r, &n);
    recd_http_respond(r, 200, "application/octet-stream", b ? b : "", b ? n : 0);
    return 0;
}

static int h_err(recd_http_req_t *r, void *arg)
{
    recd_http_respond_error(r, 503, "overloaded", NULL, "busy %s", recd_http_req_id(r));
    return 0;
}

static const recd_http_route_t routes[] = {
    {RECD_HTTP_GET, "/", 0, h_ok, NULL, 0},
    {RECD_HTTP_GET | RECD_HTTP_DELETE, "/v1/items/{id}", 0, h_item, NULL, 0},
    {RECD_HTTP_POST | RECD_HTTP_PUT, "/v1/json", RECD_ROUTE_JSON_BODY, h_json, NULL, 0},
    {RECD_HTTP_POST, "/echo", 0, h_echo, NULL, 0},
    {RECD_HTTP_GET, "/err", 0, h_err, NULL, 0},
};

/* Can [p, end) be read as a sequence of responses (status line, headers,
 * Content-Length body)? A HEAD response announces a length it does not
 * send, so where the next bytes could start a response both readings are
 * tried. */
static int responses_ok(const char *p, const char *end, int depth)
{
    if (p == end)
        return 1;
    if (depth > 64 || (size_t)(end - p) < 12 || memcmp(p, "HTTP/1.1 ", 9) != 0)
        return 0;
    int status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    if (status < 100 || status > 599)
        return 0;
    const char *hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
    if (!hend)
        return 0;
    const char *body = hend + 4;
    if (status == 100)
        return responses_ok(body, end, depth + 1);
    const char *cl = memmem(p, (size_t)(hend - p), "\r\nContent-Length: ", 18);
    if (!cl)
        return 0;
    size_t blen = strtoul(cl + 18, NULL, 10);
    if (blen == 0 || (size_t)(end - body) == 0)
        return responses_ok(body, end, depth + 1);
    if ((size_t)(end - body) >= 9 && memcmp(body, "HTTP/1.1 ", 9) == 0 &&
        responses_ok(body, end, depth + 1))
        return 1; /* HEAD */
    if ((size_t)(end - body) < blen)
        return 0;
    return responses_ok(body + blen, end, depth + 1);
}

static void check_output(const char *p, size_t n)
{
    if (!responses_ok(p, p + n, 0)) {
        fprintf(stderr, "malformed output (%zu bytes):\n%.*s\n", n, (int)(n > 2000 ? 2000 : n), p);
        FUZZ_CHECK(0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int once;
    if (!once) {
        once = 1;
        recd_log_set_level(RECD_LOG_ERROR);
    }
    char *out = NULL;
    size_t out_len = 0;
    int rc = recd_http_selftest_feed(routes, sizeof routes / sizeof routes[0], (const char *)data,
                                     size, &out, &out_len);
    FUZZ_CHECK(rc == 0);
    if (out)
        check_output(out, out_len);
    free(out);
    return 0;
}
