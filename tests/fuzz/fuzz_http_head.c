/*
 * Fuzz the request-head parser with small limits and check what it returns:
 * pointers stay inside the consumed bytes, counts stay under the limits,
 * errors carry a status and a code, and a complete head parses the same
 * way when given exactly its own bytes.
 */
#include <string.h>

#include "fuzz_common.h"
#include "recd/http.h"

static int inside(const char *p, size_t n, const char *lo, const char *hi)
{
    return p >= lo && p <= hi && (size_t)(hi - p) >= n;
}

static void check_head(const char *buf, const recd_http_head_t *h, const recd_http_limits_t *l)
{
    const char *end = buf + h->head_len;
    FUZZ_CHECK(h->head_len > 0);
    FUZZ_CHECK(h->method != 0);
    FUZZ_CHECK(inside(h->method_str, h->method_len, buf, end) && h->method_len > 0);
    FUZZ_CHECK(inside(h->target, h->target_len, buf, end) && h->target_len > 0);
    FUZZ_CHECK(inside(h->path, h->path_len, buf, end));
    FUZZ_CHECK(h->path_len <= h->target_len);
    if (h->query)
        FUZZ_CHECK(inside(h->query, h->query_len, buf, end));
    FUZZ_CHECK(h->minor == 0 || h->minor == 1);
    FUZZ_CHECK(h->nheaders <= l->max_headers && h->nheaders <= RECD_HTTP_MAX_HEADERS_HARD);
    for (size_t i = 0; i < h->nheaders; i++) {
        const recd_http_header_t *x = &h->headers[i];
        FUZZ_CHECK(x->name_len > 0);
        FUZZ_CHECK(inside(x->name, x->name_len, buf, end));
        FUZZ_CHECK(inside(x->value, x->value_len, buf, end));
        FUZZ_CHECK(memchr(x->name, ':', x->name_len) == NULL);
        for (size_t k = 0; k < x->value_len; k++)
            FUZZ_CHECK(x->value[k] != '\0' && x->value[k] != '\r' && x->value[k] != '\n');
        if (x->value_len) {
            FUZZ_CHECK(x->value[0] != ' ' && x->value[0] != '\t');
            FUZZ_CHECK(x->value[x->value_len - 1] != ' ' && x->value[x->value_len - 1] != '\t');
        }
    }
    if (h->request_id)
        FUZZ_CHECK(inside(h->request_id, h->request_id_len, buf, end));
    if (h->content_type)
        FUZZ_CHECK(inside(h->content_type, h->content_type_len, buf, end));
    FUZZ_CHECK(!(h->chunked && h->content_length >= 0));
    FUZZ_CHECK(h->content_length >= -1 && h->content_length <= l->max_body_bytes);
    FUZZ_CHECK(!(h->chunked && h->minor == 0));
    if (h->minor == 1) {
        size_t n = 0;
        FUZZ_CHECK(recd_http_head_get(h, "host", &n) != NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static recd_http_head_t h, h2;
    recd_http_perr_t e, e2;
    recd_http_limits_t l = {.max_header_bytes = 1024, .max_headers = 16, .max_body_bytes = 4096};
    /* an exact-size copy so ASan sees any read past the end */
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    memset(&e, 0, sizeof e);
    int rc = recd_http_parse_head(buf, size, &l, &h, &e);
    FUZZ_CHECK(rc == 1 || rc == 0 || rc == -1);
    if (rc == 1) {
        FUZZ_CHECK(h.head_len <= size);
        FUZZ_CHECK(h.head_len <= l.max_header_bytes);
        check_head(buf, &h, &l);
        /* the head alone parses identically */
        memset(&e2, 0, sizeof e2);
        int rc2 = recd_http_parse_head(buf, h.head_len, &l, &h2, &e2);
        FUZZ_CHECK(rc2 == 1);
        FUZZ_CHECK(h2.head_len == h.head_len && h2.nheaders == h.nheaders);
        FUZZ_CHECK(h2.method == h.method && h2.content_length == h.content_length);
        FUZZ_CHECK(h2.chunked == h.chunked && h2.keep_alive == h.keep_alive);
        /* any shorter prefix is incomplete or an error, never a different head */
        if (h.head_len > 1) {
            int rc3 = recd_http_parse_head(buf, h.head_len - 1, &l, &h2, &e2);
            FUZZ_CHECK(rc3 != 1 || h2.head_len < h.head_len);
        }
    } else if (rc == 0) {
        FUZZ_CHECK(size <= l.max_header_bytes);
    } else {
        FUZZ_CHECK(e.status == 400 || e.status == 413 || e.status == 417 || e.status == 431 ||
                   e.status == 501 || e.status == 505);
        FUZZ_CHECK(e.code != NULL && e.code[0] != '\0');
        FUZZ_CHECK(memchr(e.field, '\0', sizeof e.field) != NULL);
        FUZZ_CHECK(memchr(e.msg, '\0', sizeof e.msg) != NULL && e.msg[0] != '\0');
    }
    free(buf);
    return 0;
}
