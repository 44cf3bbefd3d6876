/* Strict HTTP/1.1 request-head parser and chunked-body decoder (RFC 9110,
 * RFC 9112). Pure functions over caller buffers: no I/O, no allocation, so
 * they are unit-tested and fuzzed on their own.
 *
 * Strictness is deliberate: every ambiguity a proxy in front of recd could
 * resolve differently (bare LF, obs-fold, whitespace before ':', CL+TE,
 * conflicting lengths) is refused, which closes request-smuggling gaps. */
#include <stdio.h>
#include <string.h>

#include "recd/http.h"

static const unsigned char tchar_tab[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,  ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1,  ['N'] = 1, ['O'] = 1,
    ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,  ['V'] = 1, ['W'] = 1,
    ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,  ['d'] = 1, ['e'] = 1,
    ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1,  ['l'] = 1, ['m'] = 1,
    ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,  ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

static int fail(recd_http_perr_t *e, int status, const char *code, const char *field,
                const char *msg)
{
    e->status = status;
    e->code = code;
    snprintf(e->field, sizeof e->field, "%s", field ? field : "");
    snprintf(e->msg, sizeof e->msg, "%s", msg);
    return -1;
}

static int bad(recd_http_perr_t *e, const char *field, const char *msg)
{
    return fail(e, 400, "bad_request", field, msg);
}

static int ieq(const char *a, size_t alen, const char *b)
{
    size_t bl = strlen(b);
    if (alen != bl)
        return 0;
    for (size_t i = 0; i < bl; i++) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z')
            x = (char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (char)(y - 'A' + 'a');
        if (x != y)
            return 0;
    }
    return 1;
}

static const struct {
    const char *name;
    int m;
} methods[] = {
    {"GET", RECD_HTTP_GET},     {"HEAD", RECD_HTTP_HEAD},     {"POST", RECD_HTTP_POST},
    {"PUT", RECD_HTTP_PUT},     {"DELETE", RECD_HTTP_DELETE}, {"OPTIONS", RECD_HTTP_OPTIONS},
    {"PATCH", RECD_HTTP_PATCH},
};

const char *recd_http_method_name(int m)
{
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (methods[i].m == m)
            return methods[i].name;
    return "OTHER";
}

static int parse_request_line(const char *p, size_t n, recd_http_head_t *h, recd_http_perr_t *e)
{
    size_t i = 0;
    while (i < n && tchar_tab[(unsigned char)p[i]])
        i++;
    if (i == 0 || i >= n || p[i] != ' ')
        return bad(e, "method", "malformed request line: bad method");
    if (i > 32)
        return bad(e, "method", "method longer than 32 characters");
    h->method_str = p;
    h->method_len = i;
    h->method = RECD_HTTP_OTHER;
    for (size_t k = 0; k < sizeof methods / sizeof methods[0]; k++)
        if (strlen(methods[k].name) == i && memcmp(methods[k].name, p, i) == 0)
            h->method = methods[k].m;
    size_t t0 = ++i;
    while (i < n && p[i] != ' ') {
        unsigned char c = (unsigned char)p[i];
        if (c <= 0x20 || c >= 0x7f)
            return bad(e, "target", "request target contains a control, space or non-ASCII byte");
        i++;
    }
    if (i == t0 || i >= n)
        return bad(e, "target", "malformed request line: missing target or version");
    h->target = p + t0;
    h->target_len = i - t0;
    if (h->target[0] != '/' &&
        !(h->target_len == 1 && h->target[0] == '*' && h->method == RECD_HTTP_OPTIONS))
        return bad(e, "target", "request target must be an absolute path");
    const char *q = memchr(h->target, '?', h->target_len);
    h->path = h->target;
    h->path_len = q ? (size_t)(q - h->target) : h->target_len;
    h->query = q ? q + 1 : NULL;
    h->query_len = q ? h->target_len - h->path_len - 1 : 0;
    i++; /* the space */
    const char *v = p + i;
    size_t vl = n - i;
    if (vl != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
        v[7] < '0' || v[7] > '9')
        return bad(e, "version", "malformed request line: bad HTTP version");
    if (v[5] != '1')
        return fail(e, 505, "version_not_supported", "version", "only HTTP/1.x is supported");
    h->minor = v[7] == '0' ? 0 : 1;
    return 0;
}

/* Walk the comma-separated elements of a header value. */
static const char *next_elem(const char **pp, const char *end, size_t *len)
{
    const char *p = *pp;
    while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
        p++;
    if (p >= end) {
        *pp = p;
        return NULL;
    }
    const char *s = p;
    while (p < end && *p != ',')
        p++;
    const char *t = p;
    while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
        t--;
    *len = (size_t)(t - s);
    *pp = p;
    return s;
}

static int derive(recd_http_head_t *h, const recd_http_limits_t *lim, recd_http_perr_t *e)
{
    int hosts = 0, te_seen = 0, te_ok = 0;
    h->content_length = -1;
    h->keep_alive = h->minor >= 1;
    for (size_t i = 0; i < h->nheaders; i++) {
        recd_http_header_t *x = &h->headers[i];
        const char *end = x->value + x->value_len;
        if (ieq(x->name, x->name_len, "host")) {
            hosts++;
        } else if (ieq(x->name, x->name_len, "content-length")) {
            const char *p = x->value, *el;
            size_t len;
            int any = 0;
            while ((el = next_elem(&p, end, &len))) {
                int64_t v;
                if (recd_http_parse_content_length(el, len, &v) < 0)
                    return bad(e, "header:Content-Length", "Content-Length is not a valid length");
                if (h->content_length >= 0 && v != h->content_length)
                    return bad(e, "header:Content-Length", "conflicting Content-Length values");
                h->content_length = v;
                any = 1;
            }
            if (!any)
                return bad(e, "header:Content-Length", "empty Content-Length");
        } else if (ieq(x->name, x->name_len, "transfer-encoding")) {
            const char *p = x->value, *el;
            size_t len;
            while ((el = next_elem(&p, end, &len))) {
                te_seen++;
                te_ok = ieq(el, len, "chunked");
            }
            if (x->value_len == 0)
                te_seen++;
        } else if (ieq(x->name, x->name_len, "connection")) {
            const char *p = x->value, *el;
            size_t len;
            while ((el = next_elem(&p, end, &len))) {
                if (ieq(el, len, "close"))
                    h->keep_alive = 0;
                else if (ieq(el, len, "keep-alive") && h->minor == 0)
                    h->keep_alive = 1;
            }
        } else if (ieq(x->name, x->name_len, "expect")) {
            if (!ieq(x->value, x->value_len, "100-continue"))
                return fail(e, 417, "expectation_failed", "header:Expect",
                            "only \"Expect: 100-continue\" is supported");
            h->expect_continue = 1;
        } else if (ieq(x->name, x->name_len, "x-request-id")) {
            h->request_id = x->value;
            h->request_id_len = x->value_len;
        } else if (ieq(x->name, x->name_len, "content-type")) {
            h->content_type = x->value;
            h->content_type_len = x->value_len;
        }
    }
    if (h->minor >= 1 && hosts != 1)
        return bad(e, "header:Host",
                   hosts ? "more than one Host header" : "HTTP/1.1 request without Host");
    if (h->minor == 0 && hosts > 1)
        return bad(e, "header:Host", "more than one Host header");
    if (te_seen) {
        if (h->minor == 0)
            return bad(e, "header:Transfer-Encoding", "Transfer-Encoding in an HTTP/1.0 request");
        if (h->content_length >= 0)
            return bad(e, "header:Transfer-Encoding",
                       "Transfer-Encoding together with Content-Length");
        if (te_seen != 1 || !te_ok)
            return bad(e, "header:Transfer-Encoding",
                       "only \"Transfer-Encoding: chunked\" is supported");
        h->chunked = 1;
    }
    if (h->content_length > lim->max_body_bytes) {
        char msg[96];
        snprintf(msg, sizeof msg, "request body exceeds %lld bytes",
                 (long long)lim->max_body_bytes);
        return fail(e, 413, "body_too_large", "body", msg);
    }
    return 0;
}

int recd_http_parse_head(const char *buf, size_t len, const recd_http_limits_t *lim,
                         recd_http_head_t *h, recd_http_perr_t *e)
{
    memset(h, 0, offsetof(recd_http_head_t, headers));
    h->nheaders = 0;
    h->head_len = 0;
    h->chunked = h->keep_alive = h->expect_continue = 0;
    h->request_id = h->content_type = NULL;
    h->request_id_len = h->content_type_len = 0;
    size_t pos = 0;
    /* RFC 9112 §2.2: ignore empty lines before the request line */
    while (pos + 1 < len && buf[pos] == '\r' && buf[pos + 1] == '\n')
        pos += 2;
    int line_no = 0;
    size_t max_headers = lim->max_headers < RECD_HTTP_MAX_HEADERS_HARD ? lim->max_headers
                                                                       : RECD_HTTP_MAX_HEADERS_HARD;
    for (;;) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t line_end = nl ? (size_t)(nl - buf) : len;
        /* measured from the buffer start: leading empty lines count too,
         * or a flood of CRLFs could be buffered without bound */
        if (line_end + (nl ? 1 : 0) > lim->max_header_bytes)
            return fail(e, 431, "headers_too_large", "headers",
                        "request line and headers exceed http.max_header_bytes");
        if (!nl)
            return 0;
        if (line_end == pos || buf[line_end - 1] != '\r')
            return bad(e, line_no ? "headers" : "request_line", "line not terminated by CRLF");
        const char *p = buf + pos;
        size_t n = line_end - 1 - pos; /* without CRLF */
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)p[i];
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return bad(e, line_no ? "headers" : "request_line",
                           "control character (CR, NUL, ...) inside a line");
        }
        pos = line_end + 1;
        if (line_no == 0) {
            if (parse_request_line(p, n, h, e) < 0)
                return -1;
            line_no++;
            continue;
        }
        if (n == 0)
            break; /* end of head */
        if (p[0] == ' ' || p[0] == '\t')
            return bad(e, "headers", "obsolete header line folding");
        if (h->nheaders >= max_headers)
            return fail(e, 431, "headers_too_large", "headers", "too many header lines");
        size_t i = 0;
        while (i < n && tchar_tab[(unsigned char)p[i]])
            i++;
        if (i == 0 || i == n || p[i] != ':') {
            if (i < n && (p[i] == ' ' || p[i] == '\t'))
                return bad(e, "headers", "whitespace between header name and colon");
            return bad(e, "headers", "malformed header line");
        }
        recd_http_header_t *x = &h->headers[h->nheaders++];
        x->name = p;
        x->name_len = i;
        size_t v0 = i + 1, v1 = n;
        while (v0 < v1 && (p[v0] == ' ' || p[v0] == '\t'))
            v0++;
        while (v1 > v0 && (p[v1 - 1] == ' ' || p[v1 - 1] == '\t'))
            v1--;
        x->value = p + v0;
        x->value_len = v1 - v0;
        line_no++;
    }
    h->head_len = pos;
    if (derive(h, lim, e) < 0)
        return -1;
    return 1;
}

const char *recd_http_head_get(const recd_http_head_t *h, const char *name, size_t *vlen)
{
    for (size_t i = 0; i < h->nheaders; i++) {
        if (ieq(h->headers[i].name, h->headers[i].name_len, name)) {
            if (vlen)
                *vlen = h->headers[i].value_len;
            return h->headers[i].value;
        }
    }
    return NULL;
}

/* ---- chunked bodies --------------------------------------------------------- */

enum {
    CH_SIZE,
    CH_EXT,
    CH_SIZE_LF,
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TRAILER_START,
    CH_TRAILER_LINE,
    CH_TRAILER_LF,
    CH_END_LF,
    CH_DONE
};

#define CH_MAX_LINE 1024 /* size line incl. extensions */

void recd_http_chunked_init(recd_http_chunked_t *c)
{
    memset(c, 0, sizeof *c);
    c->state = CH_SIZE;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

int recd_http_chunked_feed(recd_http_chunked_t *c, const char *in, size_t len, size_t *consumed,
                           char *out, size_t out_cap, size_t *out_len,
                           const recd_http_limits_t *lim, recd_http_perr_t *e)
{
    size_t i = 0;
    int rc = 0;
    while (i < len && rc == 0) {
        char ch = in[i];
        switch (c->state) {
        case CH_SIZE: {
            int v = hexval(ch);
            if (v >= 0) {
                if (c->line_len >= 16) {
                    rc = bad(e, "body", "chunk size too large");
                    break;
                }
                c->remaining = c->remaining * 16 + (uint64_t)v;
                c->line_len++;
                i++;
                break;
            }
            if (c->line_len == 0) {
                rc = bad(e, "body", "invalid chunk size");
                break;
            }
            if (c->remaining > (uint64_t)INT64_MAX) {
                rc = bad(e, "body", "chunk size too large");
                break;
            }
            if (ch == ';' || ch == ' ' || ch == '\t') {
                c->state = CH_EXT;
            } else if (ch == '\r') {
                c->state = CH_SIZE_LF;
                i++;
            } else {
                rc = bad(e, "body", "invalid chunk size");
            }
            break;
        }
        case CH_EXT:
            if (ch == '\r') {
                c->state = CH_SIZE_LF;
            } else if ((unsigned char)ch < 0x20 && ch != '\t') {
                rc = bad(e, "body", "control character in chunk extension");
                break;
            } else if (++c->line_len > CH_MAX_LINE) {
                rc = bad(e, "body", "chunk extension too long");
                break;
            }
            i++;
            break;
        case CH_SIZE_LF:
            if (ch != '\n') {
                rc = bad(e, "body", "chunk size line not terminated by CRLF");
                break;
            }
            i++;
            c->line_len = 0;
            if (c->remaining == 0) {
                c->state = CH_TRAILER_START;
            } else if (recd_http_body_exceeds(c->total, c->remaining, lim->max_body_bytes)) {
                char msg[96];
                snprintf(msg, sizeof msg, "request body exceeds %lld bytes",
                         (long long)lim->max_body_bytes);
                rc = fail(e, 413, "body_too_large", "body", msg);
            } else {
                c->state = CH_DATA;
            }
            break;
        case CH_DATA: {
            size_t room = out_cap - *out_len;
            size_t n = len - i;
            if (n > c->remaining)
                n = (size_t)c->remaining;
            if (n > room)
                n = room;
            if (n == 0) {
                /* output full: hand back what we have, caller grows out */
                *consumed = i;
                return 0;
            }
            memcpy(out + *out_len, in + i, n);
            *out_len += n;
            i += n;
            c->remaining -= n;
            c->total += (int64_t)n;
            if (c->remaining == 0)
                c->state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            if (ch != '\r') {
                rc = bad(e, "body", "chunk data not followed by CRLF");
                break;
            }
            c->state = CH_DATA_LF;
            i++;
            break;
        case CH_DATA_LF:
            if (ch != '\n') {
                rc = bad(e, "body", "chunk data not followed by CRLF");
                break;
            }
            c->state = CH_SIZE;
            c->line_len = 0;
            i++;
            break;
        case CH_TRAILER_START:
            if (ch == '\r') {
                c->state = CH_END_LF;
                i++;
                break;
            }
            c->state = CH_TRAILER_LINE;
            break;
        case CH_TRAILER_LINE:
            if (++c->trailer_bytes > lim->max_header_bytes) {
                rc = fail(e, 431, "headers_too_large", "trailers", "chunked trailers too large");
                break;
            }
            if (ch == '\r')
                c->state = CH_TRAILER_LF;
            else if ((unsigned char)ch < 0x20 && ch != '\t')
                rc = bad(e, "trailers", "control character in a trailer");
            i++;
            break;
        case CH_TRAILER_LF:
            if (ch != '\n') {
                rc = bad(e, "trailers", "trailer line not terminated by CRLF");
                break;
            }
            c->state = CH_TRAILER_START;
            i++;
            break;
        case CH_END_LF:
            if (ch != '\n') {
                rc = bad(e, "body", "chunked body not terminated by CRLF");
                break;
            }
            c->state = CH_DONE;
            i++;
            rc = 1;
            break;
        default: rc = 1; break;
        }
    }
    *consumed = i;
    return rc;
}
