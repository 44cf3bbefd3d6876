/*
 * Unit tests for the pure parts of src/http: limit arithmetic, the JSON
 * depth scanner, the request-head parser and the chunked decoder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recd/http.h"

/* ---- limit arithmetic ------------------------------------------------------------- */

static void test_content_length(void **state)
{
    static const struct {
        const char *s;
        int64_t v;
    } ok[] = {
        {"0", 0},
        {"123", 123},
        {"00042", 42},
        {"9223372036854775807", INT64_MAX},
        {"1048576", 1048576},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t v = -77;
        assert_int_equal(recd_http_parse_content_length(ok[i].s, strlen(ok[i].s), &v), 0);
        assert_true(v == ok[i].v);
    }
    static const char *const bad[] = {
        "",
        "-1",
        "+1",
        " 1",
        "1 ",
        "1e3",
        "9223372036854775808",
        "99999999999999999999",
        "0x1",
        "1,2",
        "1.0",
        "\t1",
        "a",
        "18446744073709551616",
        "1\r",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v = 0;
        if (recd_http_parse_content_length(bad[i], strlen(bad[i]), &v) != -1)
            print_message("accepted Content-Length \"%s\"\n", bad[i]);
        assert_int_equal(recd_http_parse_content_length(bad[i], strlen(bad[i]), &v), -1);
    }
    /* only len bytes are read */
    int64_t v = 0;
    assert_int_equal(recd_http_parse_content_length("12x", 2, &v), 0);
    assert_int_equal(v, 12);
}

static void test_chunk_size(void **state)
{
    static const struct {
        const char *s;
        uint64_t v;
    } ok[] = {
        {"0", 0},
        {"a", 10},
        {"FF", 255},
        {"ff", 255},
        {"7fffffffffffffff", 0x7fffffffffffffffULL},
        {"000000000000000A", 10},
        {"1000", 4096},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t v = 77;
        assert_int_equal(recd_http_parse_chunk_size(ok[i].s, strlen(ok[i].s), &v), 0);
        assert_true(v == ok[i].v);
    }
    static const char *const bad[] = {
        "",   "g",    "-1", "10000000000000000", "8000000000000000", "ffffffffffffffff", " a",
        "a ", "0x10", "+1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 0;
        if (recd_http_parse_chunk_size(bad[i], strlen(bad[i]), &v) != -1)
            print_message("accepted chunk size \"%s\"\n", bad[i]);
        assert_int_equal(recd_http_parse_chunk_size(bad[i], strlen(bad[i]), &v), -1);
    }
}

static void test_body_exceeds(void **state)
{
    assert_false(recd_http_body_exceeds(0, 10, 10));
    assert_true(recd_http_body_exceeds(0, 11, 10));
    assert_false(recd_http_body_exceeds(10, 0, 10));
    assert_true(recd_http_body_exceeds(11, 0, 10));
    assert_false(recd_http_body_exceeds(5, 5, 10));
    assert_true(recd_http_body_exceeds(5, 6, 10));
    assert_false(recd_http_body_exceeds(0, 0, 0));
    assert_true(recd_http_body_exceeds(0, 1, 0));
    /* near INT64_MAX, no overflow */
    assert_false(recd_http_body_exceeds(INT64_MAX - 1, 1, INT64_MAX));
    assert_true(recd_http_body_exceeds(INT64_MAX, 1, INT64_MAX));
    assert_false(recd_http_body_exceeds(INT64_MAX, 0, INT64_MAX));
    assert_true(recd_http_body_exceeds(INT64_MAX - 5, 6, INT64_MAX));
    assert_true(recd_http_body_exceeds(0, (uint64_t)INT64_MAX + 1, INT64_MAX));
    assert_true(recd_http_body_exceeds(5, UINT64_MAX, 100));
    assert_true(recd_http_body_exceeds(INT64_MAX, UINT64_MAX, INT64_MAX));
    assert_true(recd_http_body_exceeds(1, UINT64_MAX - 1, 1048576));
    assert_false(recd_http_body_exceeds(1048575, 1, 1048576));
    assert_true(recd_http_body_exceeds(1048576, 1, 1048576));
}

static void test_admit(void **state)
{
    assert_true(recd_http_inflight_admit(0, 1));
    assert_false(recd_http_inflight_admit(1, 1));
    assert_true(recd_http_inflight_admit(99, 100));
    assert_false(recd_http_inflight_admit(100, 100));
    assert_false(recd_http_inflight_admit(101, 100));
    assert_false(recd_http_inflight_admit(UINT64_MAX, INT64_MAX));
    assert_true(recd_http_inflight_admit((uint64_t)INT64_MAX - 1, INT64_MAX));
    assert_false(recd_http_inflight_admit((uint64_t)INT64_MAX + 1, INT64_MAX));

    assert_true(recd_http_conn_admit(0, 1));
    assert_false(recd_http_conn_admit(1, 1));
    assert_true(recd_http_conn_admit(1023, 1024));
    assert_false(recd_http_conn_admit(1024, 1024));
    assert_false(recd_http_conn_admit(5000, 1024));
    assert_false(recd_http_conn_admit(UINT64_MAX, INT64_MAX));
}

static void test_deadline_left(void **state)
{
    /* start, now in us; deadline in ms */
    assert_int_equal(recd_http_deadline_left_ms(0, 0, 1000), 1000);
    assert_int_equal(recd_http_deadline_left_ms(5000000, 5000000, 10000), 10000);
    assert_int_equal(recd_http_deadline_left_ms(5000000, 6000000, 10000), 9000);
    assert_int_equal(recd_http_deadline_left_ms(5000000, 15000000, 10000), 0); /* equal */
    assert_int_equal(recd_http_deadline_left_ms(5000000, 15000001, 10000), 0);
    assert_int_equal(recd_http_deadline_left_ms(5000000, 99000000, 10000), 0);
    assert_int_equal(recd_http_deadline_left_ms(1000, UINT64_MAX, 10000), 0);
    assert_int_equal(recd_http_deadline_left_ms(0, 0, 0), 0);
    uint64_t big = 1ULL << 62;
    assert_int_equal(recd_http_deadline_left_ms(big, big + 2000, 10000), 9998);
    /* part of a millisecond left is not "no time left" */
    uint64_t l = recd_http_deadline_left_ms(0, 999500, 1000);
    assert_true(l <= 1);
}

/* ---- JSON depth ---------------------------------------------------------------------------- */

static int depth(const char *s, int limit)
{
    return recd_json_depth(s, strlen(s), limit);
}

static void test_json_depth(void **state)
{
    assert_int_equal(depth("{}", 32), 1);
    assert_int_equal(depth("[]", 32), 1);
    assert_int_equal(depth("[[]]", 32), 2);
    assert_int_equal(depth("[{\"a\":[1,{\"b\":2}]},[]]", 32), 4);
    assert_int_equal(depth("[[],[],[[]]]", 32), 3);
    assert_int_equal(depth("\"[[[\"", 32), 0);
    assert_int_equal(depth("{\"a\\\"[[\": 1}", 32), 1);  /* escaped quote in string */
    assert_int_equal(depth("{\"a\\\\\": [1]}", 32), 2);  /* escaped backslash ends */
    assert_int_equal(depth("[\"\\\\\\\"]]]\"]", 32), 1); /* \\ then \" inside string */
    assert_int_equal(depth("{\"}\": {\"]\": 1}}", 32), 2);
    assert_int_equal(depth("1", 32), 0);
    assert_int_equal(depth("true", 32), 0);
    assert_int_equal(depth("null", 32), 0);
    assert_int_equal(depth("\"x\"", 32), 0);
    assert_int_equal(depth("", 32), 0);
    /* early stop */
    assert_int_equal(depth("[[[[[", 3), 4);
    assert_int_equal(depth("[[[]]]", 3), 3);
    assert_int_equal(depth("[[[[]]]]", 3), 4);
    char deep[2001];
    memset(deep, '[', 1000);
    memset(deep + 1000, ']', 1000);
    deep[2000] = '\0';
    assert_int_equal(depth(deep, 32), 33);
    assert_int_equal(depth(deep, 1000), 1000);
    assert_int_equal(depth(deep, 999), 1000);
    /* len bounds the scan */
    assert_int_equal(recd_json_depth("[[[[", 2, 32), 2);
    /* an unterminated string hides the rest */
    assert_int_equal(depth("[\"[[[[", 32), 1);
}

/* ---- head parser ---------------------------------------------------------------------------- */

static recd_http_limits_t lim_default(void)
{
    recd_http_limits_t l = {
        .max_header_bytes = 16384, .max_headers = 100, .max_body_bytes = 1048576};
    return l;
}

static recd_http_head_t H;
static recd_http_perr_t E;

static int parse_lim(const char *s, size_t len, const recd_http_limits_t *l)
{
    memset(&H, 0xa5, sizeof H);
    memset(&E, 0, sizeof E);
    return recd_http_parse_head(s, len, l, &H, &E);
}

static int parse(const char *s)
{
    recd_http_limits_t l = lim_default();
    return parse_lim(s, strlen(s), &l);
}

static int span_eq(const char *p, size_t n, const char *want)
{
    return p && n == strlen(want) && memcmp(p, want, n) == 0;
}

static void test_head_valid_get(void **state)
{
    const char *req = "GET /v1/items/42?k=10&x=%20y HTTP/1.1\r\n"
                      "Host: example.com\r\n"
                      "User-Agent:  curl/8.0 \t\r\n"
                      "X-Request-Id: abc-123\r\n"
                      "Accept:\r\n"
                      "Content-Type: application/json\r\n"
                      "\r\n"
                      "GET /next";
    size_t head = strlen(req) - strlen("GET /next");
    assert_int_equal(parse(req), 1);
    assert_int_equal(H.method, RECD_HTTP_GET);
    assert_true(span_eq(H.method_str, H.method_len, "GET"));
    assert_true(span_eq(H.target, H.target_len, "/v1/items/42?k=10&x=%20y"));
    assert_true(span_eq(H.path, H.path_len, "/v1/items/42"));
    assert_true(span_eq(H.query, H.query_len, "k=10&x=%20y"));
    assert_int_equal(H.minor, 1);
    assert_int_equal(H.head_len, head);
    assert_int_equal(H.nheaders, 5);
    assert_true(span_eq(H.headers[0].name, H.headers[0].name_len, "Host"));
    assert_true(span_eq(H.headers[0].value, H.headers[0].value_len, "example.com"));
    assert_true(span_eq(H.headers[1].name, H.headers[1].name_len, "User-Agent"));
    assert_true(span_eq(H.headers[1].value, H.headers[1].value_len, "curl/8.0"));
    assert_true(span_eq(H.headers[3].name, H.headers[3].name_len, "Accept"));
    assert_int_equal(H.headers[3].value_len, 0);
    assert_int_equal(H.content_length, -1);
    assert_int_equal(H.chunked, 0);
    assert_int_equal(H.keep_alive, 1);
    assert_int_equal(H.expect_continue, 0);
    assert_true(span_eq(H.request_id, H.request_id_len, "abc-123"));
    assert_true(span_eq(H.content_type, H.content_type_len, "application/json"));

    size_t vl = 0;
    const char *v = recd_http_head_get(&H, "user-agent", &vl);
    assert_true(span_eq(v, vl, "curl/8.0"));
    v = recd_http_head_get(&H, "HOST", &vl);
    assert_true(span_eq(v, vl, "example.com"));
    v = recd_http_head_get(&H, "x-request-ID", &vl);
    assert_true(span_eq(v, vl, "abc-123"));
    assert_null(recd_http_head_get(&H, "Hos", &vl));
    assert_null(recd_http_head_get(&H, "Hostx", &vl));
    assert_null(recd_http_head_get(&H, "Cookie", &vl));

    /* no query, no request id, no content type */
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 1);
    assert_true(span_eq(H.path, H.path_len, "/"));
    assert_null(H.query);
    assert_null(H.request_id);
    assert_null(H.content_type);
    /* empty query */
    assert_int_equal(parse("GET /a? HTTP/1.1\r\nHost: a\r\n\r\n"), 1);
    assert_true(span_eq(H.path, H.path_len, "/a"));
    assert_non_null(H.query);
    assert_int_equal(H.query_len, 0);
}

static void test_head_methods(void **state)
{
    static const struct {
        const char *m;
        int v;
    } ms[] = {
        {"GET", RECD_HTTP_GET},     {"HEAD", RECD_HTTP_HEAD},      {"POST", RECD_HTTP_POST},
        {"PUT", RECD_HTTP_PUT},     {"DELETE", RECD_HTTP_DELETE},  {"OPTIONS", RECD_HTTP_OPTIONS},
        {"PATCH", RECD_HTTP_PATCH}, {"FOO", RECD_HTTP_OTHER},      {"get", RECD_HTTP_OTHER},
        {"GETX", RECD_HTTP_OTHER},  {"M-SEARCH", RECD_HTTP_OTHER}, {"GE", RECD_HTTP_OTHER},
    };
    char buf[256];
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        snprintf(buf, sizeof buf, "%s /x HTTP/1.1\r\nHost: a\r\n\r\n", ms[i].m);
        int rc = parse(buf);
        if (rc != 1 || H.method != ms[i].v)
            print_message("method %s: rc=%d method=%d\n", ms[i].m, rc, H.method);
        assert_int_equal(rc, 1);
        assert_int_equal(H.method, ms[i].v);
        assert_true(span_eq(H.method_str, H.method_len, ms[i].m));
    }
    assert_string_equal(recd_http_method_name(RECD_HTTP_GET), "GET");
    assert_string_equal(recd_http_method_name(RECD_HTTP_PATCH), "PATCH");
    assert_string_equal(recd_http_status_text(404), "Not Found");
    assert_string_equal(recd_http_status_text(431), "Request Header Fields Too Large");
    assert_string_equal(recd_http_status_text(200), "OK");
    assert_non_null(recd_http_status_text(599));
}

static void test_head_keepalive(void **state)
{
    assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n"), 1);
    assert_int_equal(H.minor, 0);
    assert_int_equal(H.keep_alive, 0);
    assert_int_equal(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), 1);
    assert_int_equal(H.keep_alive, 1);
    assert_int_equal(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), 1);
    assert_int_equal(H.keep_alive, 1);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"), 1);
    assert_int_equal(H.keep_alive, 0);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n"), 1);
    assert_int_equal(H.keep_alive, 0);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n"),
                     1);
    assert_int_equal(H.keep_alive, 0);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n"), 1);
    assert_int_equal(H.keep_alive, 1);
    /* HTTP/1.0 without Host is fine */
    assert_int_equal(parse("GET / HTTP/1.0\r\nX: y\r\n\r\n"), 1);
}

static void test_head_need_more(void **state)
{
    const char *full = "GET /abc HTTP/1.1\r\nHost: a\r\nX-Y: z\r\n\r\n";
    recd_http_limits_t l = lim_default();
    for (size_t n = 0; n < strlen(full); n++) {
        int rc = parse_lim(full, n, &l);
        if (rc != 0)
            print_message("prefix of %zu bytes: rc=%d (%d %s %s)\n", n, rc, E.status, E.code,
                          E.msg);
        assert_int_equal(rc, 0);
    }
    assert_int_equal(parse_lim(full, strlen(full), &l), 1);
    assert_int_equal(H.head_len, strlen(full));
    assert_int_equal(parse("\r\n"), 0);
    assert_int_equal(parse("\r\n\r\n"), 0);
}

static void test_head_leading_crlf(void **state)
{
    const char *req = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_int_equal(parse(req), 1);
    assert_int_equal(H.method, RECD_HTTP_GET);
    assert_int_equal(H.head_len, strlen(req));
    assert_true(span_eq(H.path, H.path_len, "/"));
}

/* Leading empty lines count against max_header_bytes: otherwise a client
 * can stream CRLFs forever while the parser keeps answering "need more". */
static void test_head_leading_crlf_limit(void **state)
{
    recd_http_limits_t l = lim_default();
    l.max_header_bytes = 64;
    size_t n = 2000;
    char *buf = malloc(n + 64);
    for (size_t i = 0; i < n; i += 2)
        memcpy(buf + i, "\r\n", 2);
    strcpy(buf + n, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    int rc = parse_lim(buf, n, &l);
    if (rc != -1)
        print_message("2000 bytes of CRLF with max_header_bytes 64: rc=%d\n", rc);
    assert_int_equal(rc, -1);
    assert_int_equal(E.status, 431);
    rc = parse_lim(buf, strlen(buf), &l);
    if (rc == 1)
        print_message("CRLFs + GET: head_len %zu > max_header_bytes 64\n", H.head_len);
    assert_int_equal(rc, -1);
    assert_int_equal(E.status, 431);
    free(buf);
}

static void test_head_size_limits(void **state)
{
    recd_http_limits_t l = lim_default();
    l.max_header_bytes = 64;
    char buf[512];
    /* exactly 64 bytes, complete: accepted */
    const char *pre = "GET /";
    const char *post = " HTTP/1.1\r\nHost: a\r\n\r\n";
    size_t pad = 64 - strlen(pre) - strlen(post);
    snprintf(buf, sizeof buf, "%s%.*s%s", pre, (int)pad,
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", post);
    assert_int_equal(strlen(buf), 64);
    assert_int_equal(parse_lim(buf, 64, &l), 1);
    /* 65 bytes: too large */
    snprintf(buf, sizeof buf, "%s%.*s%s", pre, (int)pad + 1,
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", post);
    assert_int_equal(parse_lim(buf, 65, &l), -1);
    assert_int_equal(E.status, 431);
    assert_string_equal(E.code, "headers_too_large");
    /* over the limit with no terminator in sight */
    memset(buf, 'a', sizeof buf);
    memcpy(buf, "GET /", 5);
    assert_int_equal(parse_lim(buf, 64, &l), 0);
    assert_int_equal(parse_lim(buf, 65, &l), -1);
    assert_int_equal(E.status, 431);
    assert_int_equal(parse_lim(buf, 300, &l), -1);
    assert_int_equal(E.status, 431);

    /* header count */
    l = lim_default();
    l.max_headers = 4;
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"), 1);
    const char *five = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
    assert_int_equal(parse_lim(five, strlen(five), &l), -1);
    assert_int_equal(E.status, 431);
    assert_string_equal(E.code, "headers_too_large");
    const char *four = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert_int_equal(parse_lim(four, strlen(four), &l), 1);
    assert_int_equal(H.nheaders, 4);
    /* the hard cap applies even with a larger configured limit */
    l.max_headers = 100000;
    l.max_header_bytes = 100000;
    char *many = malloc(20000);
    size_t o = (size_t)sprintf(many, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < RECD_HTTP_MAX_HEADERS_HARD + 5; i++)
        o += (size_t)sprintf(many + o, "X%d: v\r\n", i);
    o += (size_t)sprintf(many + o, "\r\n");
    assert_int_equal(parse_lim(many, o, &l), -1);
    assert_int_equal(E.status, 431);
    free(many);
}

typedef struct reject_case {
    const char *req;
    int status;
    const char *code;
    const char *field; /* NULL: not checked; "a|b": either */
} reject_case_t;

static int field_matches(const char *got, const char *want)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", want);
    for (char *save = NULL, *t = strtok_r(buf, "|", &save); t; t = strtok_r(NULL, "|", &save))
        if (strcmp(got, t) == 0)
            return 1;
    return 0;
}

static void test_head_rejections(void **state)
{
    static const reject_case_t cases[] = {
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
         400, "bad_request", "header:Transfer-Encoding|header:Content-Length"},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
         400, "bad_request", "header:Transfer-Encoding|header:Content-Length"},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400,
         "bad_request", "header:Content-Length"},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\n", 400, "bad_request",
         "header:Content-Length"},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400, "bad_request",
         "header:Content-Length"},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", 400, "bad_request",
         "header:Content-Length"},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400, "bad_request",
         "header:Transfer-Encoding"},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400,
         "bad_request", "header:Transfer-Encoding"},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
         "chunked\r\n\r\n",
         400, "bad_request", "header:Transfer-Encoding"},
        {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "bad_request",
         "header:Transfer-Encoding"},
        {"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400, "bad_request", NULL},
        {"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n", 400, "bad_request", NULL},
        {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, "bad_request", NULL},
        {"GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400, "bad_request", NULL},
        {"GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400, "bad_request", NULL},
        {"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400, "bad_request", NULL},
        {"GET / HTTP/1.1\r\nHost: a\r\n: empty-name\r\n\r\n", 400, "bad_request", NULL},
        {"GET / HTTP/1.1\r\nHost: a\r\nX(y): z\r\n\r\n", 400, "bad_request", NULL},
        {"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01"
         "c\r\n\r\n",
         400, "bad_request", NULL},
        {"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x7f\r\n\r\n", 400, "bad_request", NULL},
        {"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", 400, "bad_request", NULL},
        {"GET / HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n", 400, "bad_request", NULL},
        {"GET / HTTP/1.1\nHost: a\r\n\r\n", 400, "bad_request", NULL},
        {"GET / HTTP/1.1\r\nHost: a\n\r\n", 400, "bad_request", NULL},
        {"GET / HTTP/1.1\nHost: a\n\n", 400, "bad_request", NULL},
        {"GET / HTTP/1.1\r\n\r\n", 400, "bad_request", "header:Host"},
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "bad_request", "header:Host"},
        {"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 400, "bad_request", "header:Host"},
        {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, "version_not_supported", NULL},
        {"GET / HTTP/3.1\r\nHost: a\r\n\r\n", 505, "version_not_supported", NULL},
        {"GET / HTTP/1.1x\r\nHost: a\r\n\r\n", 400, "bad_request", NULL},
        {"GET / HTTP/1.\r\nHost: a\r\n\r\n", 400, "bad_request", NULL},
        {"GET / HTTP/11\r\nHost: a\r\n\r\n", 400, "bad_request", NULL},
        {"GET / http/1.1\r\nHost: a\r\n\r\n", 400, "bad_request", NULL},
        {"GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad_request", NULL},
        {"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400, "bad_request", NULL},
        {"GET /\r\nHost: a\r\n\r\n", 400, "bad_request", NULL},
        {"GET\r\n\r\n", 400, "bad_request", NULL},
        {" GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad_request", NULL},
        {"GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad_request", "method"},
        {"G\"T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad_request", "method"},
        {"GET abc HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad_request", "target"},
        {"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad_request", "target"},
        {"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad_request", NULL},
        {"GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad_request", NULL},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1048577\r\n\r\n", 413, "body_too_large",
         "body|header:Content-Length"},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400,
         "bad_request", "header:Content-Length"},
        {"POST / HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n", 417, "expectation_failed",
         "header:Expect"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = parse(cases[i].req);
        int ok = rc == -1 && E.status == cases[i].status && E.code &&
                 strcmp(E.code, cases[i].code) == 0 &&
                 (!cases[i].field || field_matches(E.field, cases[i].field));
        if (!ok) {
            print_message("case %zu: %s\n  rc=%d status=%d code=%s field=%s msg=%s\n", i,
                          cases[i].req, rc, rc == -1 ? E.status : 0,
                          rc == -1 && E.code ? E.code : "-", rc == -1 ? E.field : "-",
                          rc == -1 ? E.msg : "-");
        }
        assert_int_equal(rc, -1);
        assert_int_equal(E.status, cases[i].status);
        assert_string_equal(E.code, cases[i].code);
        if (cases[i].field)
            assert_true(field_matches(E.field, cases[i].field));
        assert_true(E.msg[0] != '\0');
    }
}

static void test_head_nul_byte(void **state)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\n\r\n";
    recd_http_limits_t l = lim_default();
    assert_int_equal(parse_lim(req, sizeof req - 1, &l), -1);
    assert_int_equal(E.status, 400);
    static const char req2[] = "GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_int_equal(parse_lim(req2, sizeof req2 - 1, &l), -1);
    assert_int_equal(E.status, 400);
    /* a NUL must be rejected even before the head is complete */
    static const char req3[] = "GET / HTTP/1.1\r\nHost: a\0";
    int rc = parse_lim(req3, sizeof req3 - 1, &l);
    assert_true(rc == -1 || rc == 0);
}

static void test_head_accepted_variants(void **state)
{
    /* identical duplicate Content-Length */
    assert_int_equal(
        parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n"), 1);
    assert_int_equal(H.content_length, 5);
    /* exactly the body limit */
    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n"), 1);
    assert_int_equal(H.content_length, 1048576);
    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"), 1);
    assert_int_equal(H.content_length, 0);
    /* chunked, case-insensitive value */
    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n"), 1);
    assert_int_equal(H.chunked, 1);
    assert_int_equal(H.content_length, -1);
    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: chunked\r\n\r\n"), 1);
    assert_int_equal(H.chunked, 1);
    /* Expect: 100-continue */
    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                           "Expect: 100-continue\r\n\r\n"),
                     1);
    assert_int_equal(H.expect_continue, 1);
    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n\r\n"), 1);
    assert_int_equal(H.expect_continue, 1);
    /* OPTIONS * */
    assert_int_equal(parse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), 1);
    assert_int_equal(H.method, RECD_HTTP_OPTIONS);
    assert_true(span_eq(H.target, H.target_len, "*"));
    /* header names are tokens: odd but legal characters */
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nX-!#$%&'*+.^_`|~: v\r\n\r\n"), 1);
    /* obs-text in values (bytes >= 0x80) is allowed by RFC 9110 */
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nX-A: caf\xc3\xa9\r\n\r\n"), 1);
    /* tab inside a value */
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nX-A: a\tb\r\n\r\n"), 1);
    size_t vl;
    const char *v = recd_http_head_get(&H, "x-a", &vl);
    assert_true(span_eq(v, vl, "a\tb"));
    /* empty Host is allowed (RFC 9112 3.2) */
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost:\r\n\r\n"), 1);
}

static void test_head_pointers_inside(void **state)
{
    const char *req = "\r\nPOST /p?q=1 HTTP/1.1\r\nHost: h\r\nA: 1\r\nB:2\r\n"
                      "Content-Length: 4\r\n\r\nbody";
    size_t len = strlen(req);
    assert_int_equal(parse(req), 1);
    assert_int_equal(H.head_len, len - 4);
    const char *end = req + H.head_len;
    assert_true(H.method_str >= req && H.method_str + H.method_len <= end);
    assert_true(H.target >= req && H.target + H.target_len <= end);
    for (size_t i = 0; i < H.nheaders; i++) {
        assert_true(H.headers[i].name >= req && H.headers[i].name + H.headers[i].name_len <= end);
        assert_true(H.headers[i].value >= req &&
                    H.headers[i].value + H.headers[i].value_len <= end);
    }
    assert_true(span_eq(H.headers[2].value, H.headers[2].value_len, "2"));
    assert_int_equal(H.content_length, 4);
}

/* ---- chunked decoder ------------------------------------------------------------------------- */

typedef struct chunk_result {
    int rc;
    size_t consumed;
    char out[4096];
    size_t out_len;
    recd_http_perr_t e;
} chunk_result_t;

/* Feed `in` with at most `step` new bytes per call, keeping unconsumed bytes
 * like a connection's input buffer does. */
static void chunk_run(const char *in, size_t len, size_t step, int64_t max, chunk_result_t *r)
{
    recd_http_chunked_t c;
    recd_http_chunked_init(&c);
    recd_http_limits_t l = lim_default();
    l.max_body_bytes = max;
    memset(r, 0, sizeof *r);
    size_t off = 0, avail = 0;
    for (int iter = 0; iter < 100000; iter++) {
        avail = avail + step > len ? len : avail + step;
        size_t used = 0;
        r->rc = recd_http_chunked_feed(&c, in + off, avail - off, &used, r->out, sizeof r->out,
                                       &r->out_len, &l, &r->e);
        assert_true(used <= avail - off);
        off += used;
        if (r->rc != 0)
            break;
        if (avail == len && used == 0)
            break; /* needs more than we have */
    }
    r->consumed = off;
    if (r->rc == 1)
        assert_int_equal(c.total, (int64_t)r->out_len);
}

static void test_chunked_decode(void **state)
{
    const char *body = "5;name=value\r\nhello\r\n6\r\n world\r\n"
                       "1A\r\nabcdefghijklmnopqrstuvwxyz\r\n"
                       "0\r\nX-Trailer: yes\r\nAnother: 1\r\n\r\n";
    const char *want = "hello worldabcdefghijklmnopqrstuvwxyz";
    size_t blen = strlen(body);
    char *in = malloc(blen + 64);
    memcpy(in, body, blen);
    strcpy(in + blen, "GET /next HTTP/1.1\r\n");
    size_t steps[] = {1, 2, 3, 7, 16, 1000};
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        chunk_result_t r;
        chunk_run(in, strlen(in), steps[s], 1 << 20, &r);
        if (r.rc != 1)
            print_message("step %zu: rc=%d %d %s\n", steps[s], r.rc, r.e.status, r.e.msg);
        assert_int_equal(r.rc, 1);
        assert_int_equal(r.out_len, strlen(want));
        assert_memory_equal(r.out, want, strlen(want));
        assert_int_equal(r.consumed, blen); /* the next request is left alone */
    }
    free(in);

    chunk_result_t r;
    chunk_run("0\r\n\r\n", 5, 1, 100, &r);
    assert_int_equal(r.rc, 1);
    assert_int_equal(r.out_len, 0);
    assert_int_equal(r.consumed, 5);

    /* incomplete: needs more */
    chunk_run("5\r\nhel", 7, 100, 100, &r);
    assert_int_equal(r.rc, 0);
    chunk_run("5\r\nhello\r\n0\r\n", 13, 100, 100, &r);
    assert_int_equal(r.rc, 0);
    chunk_run("5\r\nhello\r\n0\r\nX: y\r\n", 19, 1, 100, &r);
    assert_int_equal(r.rc, 0);

    /* exactly the limit is fine */
    chunk_run("a\r\n0123456789\r\n0\r\n\r\n", 20, 3, 10, &r);
    assert_int_equal(r.rc, 1);
    assert_int_equal(r.out_len, 10);
}

static void expect_chunk_error(const char *in, int64_t max, int status, size_t step)
{
    chunk_result_t r;
    chunk_run(in, strlen(in), step, max, &r);
    if (r.rc != -1 || r.e.status != status)
        print_message("chunked %s (step %zu): rc=%d status=%d\n", in, step, r.rc, r.e.status);
    assert_int_equal(r.rc, -1);
    assert_int_equal(r.e.status, status);
    assert_non_null(r.e.code);
    assert_string_equal(r.e.code, status == 413 ? "body_too_large" : "bad_request");
    assert_true(r.out_len <= (size_t)max);
}

static void test_chunked_errors(void **state)
{
    for (size_t step = 1; step <= 64; step *= 4) {
        expect_chunk_error("zz\r\nab\r\n0\r\n\r\n", 100, 400, step);
        expect_chunk_error("\r\n", 100, 400, step);
        expect_chunk_error("-1\r\n", 100, 400, step);
        expect_chunk_error(" 5\r\nhello\r\n0\r\n\r\n", 100, 400, step);
        expect_chunk_error("10000000000000000\r\n", 1000, 400, step);
        expect_chunk_error("ffffffffffffffff\r\n", 1000, 400, step);
        expect_chunk_error("3\r\nabcX\r\n0\r\n\r\n", 100, 400, step);
        expect_chunk_error("3\r\nabc\n0\r\n\r\n", 100, 400, step);
        expect_chunk_error("3\nabc\r\n0\r\n\r\n", 100, 400, step);
        expect_chunk_error("b\r\n0123456789a\r\n0\r\n\r\n", 10, 413, step);
        expect_chunk_error("6\r\n012345\r\n5\r\n01234\r\n0\r\n\r\n", 10, 413, step);
        expect_chunk_error("7fffffffffffffff\r\n", 1000, 413, step);
        expect_chunk_error("0\r\nX: a\nY: b\r\n\r\n", 100, 400, step);
    }
    /* a size line that never ends is cut off */
    char *longline = malloc(100001);
    memset(longline, '0', 100000);
    longline[100000] = '\0';
    expect_chunk_error(longline, 100, 400, 4096);
    /* an endless trailer section is cut off too */
    size_t o = (size_t)sprintf(longline, "0\r\n");
    while (o < 99000)
        o += (size_t)sprintf(longline + o, "X-Trailer-%zu: vvvvvvvvvvvvvvvvvvvvvvvvv\r\n", o);
    chunk_result_t r;
    chunk_run(longline, o, 4096, 100, &r);
    assert_int_equal(r.rc, -1);
    free(longline);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length),       cmocka_unit_test(test_chunk_size),
        cmocka_unit_test(test_body_exceeds),         cmocka_unit_test(test_admit),
        cmocka_unit_test(test_deadline_left),        cmocka_unit_test(test_json_depth),
        cmocka_unit_test(test_head_valid_get),       cmocka_unit_test(test_head_methods),
        cmocka_unit_test(test_head_keepalive),       cmocka_unit_test(test_head_need_more),
        cmocka_unit_test(test_head_leading_crlf),    cmocka_unit_test(test_head_leading_crlf_limit),
        cmocka_unit_test(test_head_size_limits),     cmocka_unit_test(test_head_rejections),
        cmocka_unit_test(test_head_nul_byte),        cmocka_unit_test(test_head_accepted_variants),
        cmocka_unit_test(test_head_pointers_inside), cmocka_unit_test(test_chunked_decode),
        cmocka_unit_test(test_chunked_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
