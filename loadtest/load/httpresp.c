/* recd-load: response head parser (see httpresp.h). */
#include "httpresp.h"

#include <string.h>
#include <strings.h>

#include "recd/http.h"

/* Does the comma-separated header value v[0..n) hold token tok? */
static int has_token(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok);
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(v + s, tok, tl) == 0)
            return 1;
    }
    return 0;
}

static int name_is(const char *p, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(p, name, n) == 0;
}

int lg_resp_parse_head(const char *p, size_t len, lg_resp_head_t *h, const char **why)
{
    memset(h, 0, sizeof *h);
    h->content_length = -1;
    const char *end = p + len;
    /* status line: HTTP/1.x SP DDD [SP reason] CRLF */
    if (len < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ') {
        *why = "bad status line";
        return -1;
    }
    int http10 = p[7] == '0';
    if (p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9') {
        *why = "bad status code";
        return -1;
    }
    h->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    const char *line = memchr(p, '\n', len);
    if (!line) {
        *why = "unterminated status line";
        return -1;
    }
    int keep_alive_token = 0;
    line++;
    while (line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl) {
            *why = "unterminated header line";
            return -1;
        }
        const char *le = nl;
        if (le > line && le[-1] == '\r')
            le--;
        if (le == line)
            break; /* the empty line */
        const char *colon = memchr(line, ':', (size_t)(le - line));
        if (!colon || colon == line) {
            *why = "header line without a name";
            return -1;
        }
        size_t nlen = (size_t)(colon - line);
        const char *v = colon + 1;
        while (v < le && (*v == ' ' || *v == '\t'))
            v++;
        size_t vlen = (size_t)(le - v);
        while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
            vlen--;
        if (name_is(line, nlen, "content-length")) {
            int64_t cl = 0;
            if (vlen > 15 || recd_http_parse_content_length(v, vlen, &cl) != 0) {
                *why = "bad Content-Length";
                return -1;
            }
            if (h->content_length >= 0 && h->content_length != cl) {
                *why = "conflicting Content-Length headers";
                return -1;
            }
            h->content_length = cl;
        } else if (name_is(line, nlen, "transfer-encoding")) {
            if (has_token(v, vlen, "chunked"))
                h->chunked = 1;
        } else if (name_is(line, nlen, "connection")) {
            if (has_token(v, vlen, "close"))
                h->close = 1;
            if (has_token(v, vlen, "keep-alive"))
                keep_alive_token = 1;
        }
        line = nl + 1;
    }
    if (http10 && !keep_alive_token)
        h->close = 1;
    return 0;
}
